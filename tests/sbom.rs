//! SBOMs of images built on the real engine, read from `docker save` and checked with a
//! validator no one here wrote (cyclonedx-python-lib, installed by `scripts/setup.sh`).

mod common;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use common::*;
use connector_build::model::image_ref::ImageRef;
use connector_build::python::{dependency_install, Installer};
use connector_build::sbom::{self, hashes_from_requirements, Inventory, LockHashes, Subject};

/// The layer tars of a `docker save` archive, bottom first, each as a bounded reader.
fn saved_layers(archive: &Path) -> Vec<std::io::Take<File>> {
    // Where each member's bytes are, so each layer is read in place, not extracted.
    let mut members = std::collections::HashMap::new();
    let mut links = std::collections::HashMap::new();
    let mut manifest = None;
    let mut tar = tar::Archive::new(File::open(archive).unwrap());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if entry.header().entry_type().is_symlink() {
            let target = entry
                .link_name()
                .unwrap()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let dir = Path::new(&path).parent().unwrap().join(target);
            links.insert(path, dir.to_string_lossy().into_owned());
        } else if path == "manifest.json" {
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            manifest = Some(serde_json::from_str::<serde_json::Value>(&text).unwrap());
        } else {
            members.insert(path, (entry.raw_file_position(), entry.size()));
        }
    }
    let manifest = manifest.expect("docker save wrote no manifest.json");
    manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let mut name = l.as_str().unwrap().to_string();
            while let Some(target) = links.get(&name) {
                name = normalize(target);
            }
            let (at, size) = members[&name];
            let mut file = File::open(archive).unwrap();
            file.seek(SeekFrom::Start(at)).unwrap();
            file.take(size)
        })
        .collect()
}

/// `a/../b/x` as `b/x` (symlinked layers in older `docker save` archives point at `../id/`).
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            ".." => {
                parts.pop();
            }
            "." | "" => {}
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn inventory_of(image: &str) -> Inventory {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("image.tar");
    docker_ok(&["save", "-o", archive.to_str().unwrap(), image]);
    Inventory::from_layers(saved_layers(&archive)).unwrap()
}

fn subject(name: &str, base: &str) -> Subject {
    Subject {
        name: name.into(),
        version: "0.1.0".into(),
        image: ImageRef::parse(&format!("127.0.0.1:5000/airbyte/{name}")).unwrap(),
        base_image: ImageRef::parse(base).unwrap(),
        timestamp: 1_764_633_600,
    }
}

fn component<'a>(bom: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
}

/// Builds a private copy of fixture `name` under a test tag.
fn build_fixture(name: &str) -> (Workspace, std::path::PathBuf, TestTag) {
    let ws = Workspace::new();
    let dir = ws.add_fixture(name);
    let tag = TestTag::new(&format!("sbom-{name}"));
    let (results, out) = build_json(&[dir.to_str().unwrap(), "--tag", &tag.0]);
    built(&results, &out);
    (ws, dir, tag)
}

#[test]
fn sbom_of_a_manifest_only_image_lists_the_cdk_and_debian_and_validates() {
    let (_ws, _, tag) = build_fixture("source-fixture-manifest");

    let inventory = inventory_of(&tag.0);
    let base = published_ref("/var/lib/connector-build/declarative-base-image.ref");
    let bom = sbom::cyclonedx(
        &subject("source-fixture-manifest", &base),
        &inventory,
        &LockHashes::new(),
    );
    let bytes = sbom::to_bytes(&bom);
    validate_sbom(&bytes);

    let cdk = component(&bom, "airbyte-cdk").unwrap_or_else(|| panic!("no airbyte-cdk in {bom:#}"));
    assert!(
        cdk["purl"]
            .as_str()
            .unwrap()
            .starts_with("pkg:pypi/airbyte-cdk@7."),
        "{cdk}"
    );
    let libc = component(&bom, "libc6").expect("no libc6");
    assert!(
        libc["purl"]
            .as_str()
            .unwrap()
            .starts_with("pkg:deb/debian/libc6@"),
        "{libc}"
    );
    let os = inventory.os.as_ref().expect("no os-release");
    assert_eq!(os.id, "debian");
    // The base image by digest.
    let digest = base.split('@').nth(1).unwrap();
    assert!(
        bom["components"][0]["purl"]
            .as_str()
            .unwrap()
            .contains(digest),
        "{}",
        bom["components"][0]
    );
    assert!(inventory.python.len() > 20, "{:?}", inventory.python);
    assert!(inventory.debian.len() > 20, "{:?}", inventory.debian);
    // Same image, same inputs: the same bytes.
    let again = sbom::cyclonedx(
        &subject("source-fixture-manifest", &base),
        &inventory_of(&tag.0),
        &LockHashes::new(),
    );
    assert_eq!(sbom::to_bytes(&again), bytes);
}

#[test]
fn locked_python_distributions_carry_the_lock_hashes() {
    let (_ws, dir, tag) = build_fixture("source-fixture-uv");

    // The pinned requirements the install step read, as the plan carries them.
    let install = dependency_install(&dir, &Installer::Pip, "/scratch").unwrap();
    let requirements = &install
        .scratch_files
        .iter()
        .find(|f| f.name == "requirements.txt")
        .expect("a uv.lock install has pinned requirements")
        .contents;
    let hashes = hashes_from_requirements(requirements);
    let six = hashes.get("six").expect("uv.lock pins six with hashes");

    let bom = sbom::cyclonedx(
        &subject("source-fixture-uv", &base_ref()),
        &inventory_of(&tag.0),
        &hashes,
    );
    validate_sbom(&sbom::to_bytes(&bom));
    let installed = component(&bom, "six").expect("no six");
    let listed: Vec<&str> = installed["hashes"]
        .as_array()
        .unwrap_or_else(|| panic!("six has no hashes: {installed}"))
        .iter()
        .map(|h| h["content"].as_str().unwrap())
        .collect();
    assert_eq!(listed, six.sha256);
    assert_eq!(installed["version"], six.version.as_str());
    // pip is in the base image, not in the lock: no hashes.
    let pip = component(&bom, "pip").expect("no pip");
    assert!(pip.get("hashes").is_none(), "{pip}");
}
