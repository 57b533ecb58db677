//! An [`Inventory`] as a CycloneDX 1.5 JSON document, reproducibly: the timestamp is given,
//! the serial number is derived from the content, components are sorted.

use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use super::inventory::{Inventory, License, PythonDistribution};
use super::lock::LockHashes;
use crate::model::image_ref::ImageRef;
use crate::python::poetry::names::normalize_name;

pub const SPEC_VERSION: &str = "1.5";

/// What the SBOM describes: the connector image and what it was built on.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The connector's name, e.g. `source-faker`.
    pub name: String,
    /// The version it is published as (`dockerImageTag`, or a pre-release tag).
    pub version: String,
    /// Where it is published; its registry and repository make the purl (the tag is unused).
    pub image: ImageRef,
    /// The base image, digest-pinned.
    pub base_image: ImageRef,
    /// The document's timestamp, seconds since the epoch (`SOURCE_DATE_EPOCH`, the commit time).
    pub timestamp: i64,
}

/// A purl; the names given here are never empty and qualifier keys are constants, which is all
/// `packageurl` can refuse, so the hand-made fallback is only a safety net.
fn purl(
    ty: &str,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    qualifiers: &[(&str, Option<&str>)],
) -> String {
    let build = || -> Result<String, packageurl::Error> {
        let mut p = packageurl::PackageUrl::new(ty, name)?;
        if let Some(ns) = namespace {
            p.with_namespace(ns)?;
        }
        p.with_version(version)?;
        for (key, value) in qualifiers {
            if let Some(value) = value {
                p.add_qualifier(*key, *value)?;
            }
        }
        Ok(p.to_string())
    };
    build().unwrap_or_else(|_| format!("pkg:{ty}/{name}@{version}"))
}

/// The connector: `pkg:docker/<namespace>/<name>@<version>?repository_url=<registry>`.
fn connector_purl(subject: &Subject) -> String {
    let repo = &subject.image.repository;
    let (namespace, name) = repo
        .rsplit_once('/')
        .map_or((None, repo.as_str()), |(n, r)| (Some(n), r));
    let registry =
        (subject.image.registry != "docker.io").then_some(subject.image.registry.as_str());
    purl(
        "docker",
        namespace,
        name,
        &subject.version,
        &[("repository_url", registry)],
    )
}

/// The base image: `pkg:oci/<name>@sha256:...?repository_url=<registry>/<repository>&tag=<tag>`.
fn base_component(base: &ImageRef) -> Value {
    let name = base
        .repository
        .rsplit('/')
        .next()
        .unwrap_or(&base.repository);
    let (version, tag) = match (&base.digest, &base.tag) {
        (Some(d), tag) => (d.as_str(), tag.as_deref()),
        (None, tag) => (tag.as_deref().unwrap_or("latest"), None),
    };
    let repository_url = base.name();
    let purl = purl(
        "oci",
        None,
        name,
        version,
        &[("repository_url", Some(&repository_url)), ("tag", tag)],
    );
    json!({
        "type": "container",
        "bom-ref": purl,
        "name": base.name(),
        "version": base.tag.as_deref().unwrap_or(version),
        "purl": purl,
    })
}

fn debian_components(inventory: &Inventory) -> Vec<Value> {
    let os = inventory.os.as_ref();
    let namespace = os.map_or("debian", |o| o.id.as_str());
    let distro = os.and_then(|o| Some(format!("{}-{}", o.id, o.version_id.as_ref()?)));
    inventory
        .debian
        .iter()
        .map(|p| {
            let upstream = p.source.as_deref().filter(|s| *s != p.name);
            let purl = purl(
                "deb",
                Some(namespace),
                &p.name,
                &p.version,
                &[
                    ("arch", Some(&p.architecture)),
                    ("distro", distro.as_deref()),
                    ("upstream", upstream),
                ],
            );
            json!({"type": "library", "bom-ref": purl, "name": p.name, "version": p.version, "purl": purl})
        })
        .collect()
}

/// CycloneDX `licenses`: one SPDX expression, or named licenses (the field, then classifiers).
fn licenses(license: &License) -> Option<Value> {
    if let Some(expression) = &license.expression {
        return Some(json!([{ "expression": expression }]));
    }
    let mut named: Vec<Value> = Vec::new();
    if let Some(text) = &license.text {
        // Some projects put the whole license text in the field: keep it as text, not a name.
        named.push(if text.len() <= 100 && !text.contains('\n') {
            json!({"license": {"name": text}})
        } else {
            json!({"license": {"name": "declared license text", "text": {"content": text}}})
        });
    }
    named.extend(
        license
            .classifiers
            .iter()
            .map(|c| json!({"license": {"name": c}})),
    );
    (!named.is_empty()).then_some(Value::Array(named))
}

/// Hashes match only when the installed version is the locked one (PEP 440 equality).
fn lock_hashes(dist: &PythonDistribution, name: &str, hashes: &LockHashes) -> Option<Value> {
    let pin = hashes.get(name)?;
    let same = match (
        pin.version.parse::<pep440_rs::Version>(),
        dist.version.parse::<pep440_rs::Version>(),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => pin.version == dist.version,
    };
    same.then(|| {
        pin.sha256
            .iter()
            .map(|h| json!({"alg": "SHA-256", "content": h}))
            .collect()
    })
}

fn python_components(inventory: &Inventory, hashes: &LockHashes) -> Vec<Value> {
    inventory
        .python
        .iter()
        .map(|dist| {
            let name = normalize_name(&dist.name);
            let purl = purl("pypi", None, &name, &dist.version, &[]);
            let mut c = Map::new();
            c.insert("type".into(), json!("library"));
            // The path keeps two environments' copies of one distribution apart.
            c.insert("bom-ref".into(), json!(format!("python:{}", dist.path)));
            c.insert("name".into(), json!(dist.name));
            c.insert("version".into(), json!(dist.version));
            c.insert("purl".into(), json!(purl));
            if let Some(l) = licenses(&dist.license) {
                c.insert("licenses".into(), l);
            }
            if let Some(h) = lock_hashes(dist, &name, hashes) {
                c.insert("hashes".into(), h);
            }
            c.insert(
                "evidence".into(),
                json!({"occurrences": [{"location": dist.path}]}),
            );
            Value::Object(c)
        })
        .collect()
}

fn rfc3339(epoch: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// `urn:uuid:` from the first 16 bytes of a sha256, marked as a name-based (version 5) UUID,
/// which is what the schema accepts; the same content always gets the same serial number.
fn serial_number(content: &[u8]) -> String {
    let mut b: [u8; 16] = Sha256::digest(content)[..16].try_into().unwrap_or_default();
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The CycloneDX 1.5 document for `subject` holding `inventory`; Python distributions get the
/// lock's file hashes when `hashes` pins them at the installed version.
pub fn cyclonedx(subject: &Subject, inventory: &Inventory, hashes: &LockHashes) -> Value {
    let connector = connector_purl(subject);
    let base = base_component(&subject.base_image);
    let mut rest = debian_components(inventory);
    rest.extend(python_components(inventory, hashes));
    rest.sort_by(|a, b| a["bom-ref"].as_str().cmp(&b["bom-ref"].as_str()));
    let components: Vec<Value> = std::iter::once(base).chain(rest).collect();
    let refs: Vec<&Value> = components.iter().map(|c| &c["bom-ref"]).collect();
    let mut bom = json!({
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(subject.timestamp),
            "tools": {"components": [{
                "type": "application",
                "name": "connector-build",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": {
                "type": "application",
                "bom-ref": connector,
                "name": subject.name,
                "version": subject.version,
                "purl": connector,
            },
        },
        "components": components,
        "dependencies": [{"ref": connector, "dependsOn": refs}],
    });
    let serial = serial_number(&to_bytes(&bom));
    if let Value::Object(map) = &mut bom {
        map.insert("serialNumber".into(), json!(serial));
    }
    bom
}

/// The document as written to a file or a registry blob: pretty JSON and a final newline.
/// serde_json's maps keep a fixed key order, so equal documents are equal bytes.
pub fn to_bytes(bom: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(bom).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}
