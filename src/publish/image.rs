//! The image that is pushed, assembled from the engine's config, the base image's own
//! manifest and config, and the rewritten layers: an OCI manifest and config whose bytes
//! depend only on those inputs.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::model::image_ref::Digest;
use crate::registry::{sha256_digest, OCI_MANIFEST};

use super::layer::Layer;

pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Config keys taken from the engine's image: what a container runs with.
const RUNTIME_KEYS: &[&str] = &[
    "Env",
    "Entrypoint",
    "Cmd",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
];

/// A blob the manifest points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

impl Descriptor {
    fn to_json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest.as_str(), "size": self.size})
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("the built image does not start with its base image's layers ({detail}): was it built on {base}?")]
    NotOnBase { base: String, detail: String },
    #[error("the base image {base} has a config without {what}")]
    BaseConfig { base: String, what: String },
}

/// The base image as its registry serves it.
pub struct Base<'a> {
    /// `registry/repository:tag` (what `org.opencontainers.image.base.name` says).
    pub name: &'a str,
    pub config: &'a Value,
    /// Its layer descriptors, bottom first.
    pub layers: &'a [Descriptor],
}

/// The assembled image: config and manifest bytes, and the manifest's digest.
#[derive(Debug, Clone)]
pub struct Assembled {
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub manifest: Vec<u8>,
    pub digest: Digest,
    /// Descriptors of every layer, base ones first.
    pub layers: Vec<Descriptor>,
}

/// `engine_config` is the config the engine wrote for the built image; `new_layers` are its
/// layers above the base, rewritten; `annotations` go into the manifest and the labels.
pub fn assemble(
    engine_config: &Value,
    base: &Base<'_>,
    new_layers: &[Layer],
    epoch: u64,
    annotations: &BTreeMap<String, String>,
) -> Result<Assembled, ImageError> {
    let base_ids = diff_ids(base.config).ok_or_else(|| ImageError::BaseConfig {
        base: base.name.into(),
        what: "rootfs.diff_ids".into(),
    })?;
    let built_ids = diff_ids(engine_config).unwrap_or_default();
    if built_ids.len() != base_ids.len() + new_layers.len()
        || built_ids[..base_ids.len()] != base_ids[..]
    {
        return Err(ImageError::NotOnBase {
            base: base.name.into(),
            detail: format!(
                "{} layers, {} of them the base's {}",
                built_ids.len(),
                built_ids
                    .iter()
                    .zip(&base_ids)
                    .take_while(|(a, b)| a == b)
                    .count(),
                base_ids.len()
            ),
        });
    }
    if base.layers.len() != base_ids.len() {
        return Err(ImageError::BaseConfig {
            base: base.name.into(),
            what: format!(
                "as many diff_ids as its manifest has layers ({} vs {})",
                base_ids.len(),
                base.layers.len()
            ),
        });
    }
    let created = rfc3339(epoch);

    let mut runtime = Map::new();
    let engine_runtime = &engine_config["config"];
    for key in RUNTIME_KEYS {
        match &engine_runtime[*key] {
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            v => {
                runtime.insert(key.to_string(), v.clone());
            }
        }
    }
    let mut labels: BTreeMap<String, Value> = engine_runtime["Labels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    for (k, v) in annotations {
        labels.insert(k.clone(), Value::String(v.clone()));
    }
    runtime.insert("Labels".into(), json!(labels));

    let mut history: Vec<Value> = base.config["history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // The engine's entries above the base keep what made them; only their time is fixed.
    let engine_history = engine_config["history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let own: Vec<Value> = engine_history.iter().skip(history.len()).cloned().collect();
    let own_layers = own
        .iter()
        .filter(|h| !h["empty_layer"].as_bool().unwrap_or(false))
        .count();
    if own_layers == new_layers.len() {
        for mut h in own {
            h["created"] = json!(created);
            history.push(h);
        }
    } else {
        for i in 0..new_layers.len() {
            history.push(json!({"created": created, "created_by": format!("connector-build layer {}", i + 1)}));
        }
    }

    let all_ids: Vec<&str> = base_ids
        .iter()
        .map(String::as_str)
        .chain(new_layers.iter().map(|l| l.diff_id.as_str()))
        .collect();
    let mut config = json!({
        "created": created,
        "architecture": engine_config["architecture"].as_str().unwrap_or("amd64"),
        "os": engine_config["os"].as_str().unwrap_or("linux"),
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": all_ids},
        "history": history,
    });
    if let Some(v) = engine_config["variant"].as_str() {
        config["variant"] = json!(v);
    }
    let config = canonical(&config);
    let config_digest = sha256_digest(&config);

    let layers: Vec<Descriptor> = base
        .layers
        .iter()
        .map(|d| Descriptor {
            media_type: oci_layer_type(&d.media_type),
            ..d.clone()
        })
        .chain(new_layers.iter().map(|l| Descriptor {
            media_type: OCI_LAYER_GZIP.into(),
            digest: l.digest.clone(),
            size: l.size,
        }))
        .collect();
    let manifest = canonical(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest.as_str(), "size": config.len()},
        "layers": layers.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
        "annotations": annotations,
    }));
    let digest = sha256_digest(&manifest);
    Ok(Assembled {
        config,
        config_digest,
        manifest,
        digest,
        layers,
    })
}

fn diff_ids(config: &Value) -> Option<Vec<String>> {
    config["rootfs"]["diff_ids"].as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    })
}

/// The OCI name of a Docker layer media type (same bytes).
fn oci_layer_type(media_type: &str) -> String {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => OCI_LAYER_GZIP.into(),
        "application/vnd.docker.image.rootfs.diff.tar" => {
            "application/vnd.oci.image.layer.v1.tar".into()
        }
        other => other.into(),
    }
}

/// JSON with object keys sorted and no white space, so equal values give equal bytes.
pub fn canonical(value: &Value) -> Vec<u8> {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let b: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, sorted(v))).collect();
                let mut out = Map::new();
                for (k, v) in b {
                    out.insert(k.clone(), v);
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sorted(value)).expect("JSON values serialise")
}

/// `2023-11-14T22:13:20Z`.
pub fn rfc3339(epoch: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap()
    }

    #[test]
    fn the_image_is_the_base_layers_then_the_rewritten_ones_with_fixed_times() {
        let base_config = json!({"rootfs": {"diff_ids": [d(1).as_str()]}, "history": [{"created": "2020-01-01T00:00:00Z", "created_by": "debootstrap"}]});
        let base_layers = [Descriptor {
            media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
            digest: d(2),
            size: 10,
        }];
        let engine = json!({
            "architecture": "amd64", "os": "linux", "created": "2026-12-02T05:00:00.123Z",
            "container": "abc", "docker_version": "20.10",
            "config": {"Env": ["A=1"], "Entrypoint": ["python", "main.py"], "Cmd": null, "WorkingDir": "/airbyte", "User": "", "Hostname": "abc", "Labels": {"io.airbyte.version": "0.1.0"}},
            "rootfs": {"type": "layers", "diff_ids": [d(1).as_str(), d(3).as_str()]},
            "history": [{"created": "2020-01-01T00:00:00Z"}, {"created": "2026-12-02T05:00:00Z", "created_by": "install"}]
        });
        let layer = Layer {
            path: "l".into(),
            digest: d(4),
            diff_id: d(3),
            size: 7,
        };
        let base = Base {
            name: "r/base:1",
            config: &base_config,
            layers: &base_layers,
        };
        let mut ann = BTreeMap::new();
        ann.insert(
            "org.opencontainers.image.version".to_string(),
            "0.1.0".to_string(),
        );
        let a = assemble(
            &engine,
            &base,
            std::slice::from_ref(&layer),
            1_700_000_000,
            &ann,
        )
        .unwrap();
        let config: Value = serde_json::from_slice(&a.config).unwrap();
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        assert_eq!(config["history"][1]["created"], "2023-11-14T22:13:20Z");
        assert_eq!(config["history"][1]["created_by"], "install");
        assert_eq!(
            config["config"]["Labels"]["org.opencontainers.image.version"],
            "0.1.0"
        );
        assert!(config["config"].get("Hostname").is_none() && config.get("container").is_none());
        assert!(config["config"].get("User").is_none());
        let manifest: Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(manifest["layers"][0]["mediaType"], OCI_LAYER_GZIP);
        assert_eq!(manifest["layers"][1]["digest"], d(4).as_str());
        assert_eq!(manifest["config"]["digest"], a.config_digest.as_str());
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.version"],
            "0.1.0"
        );

        // Not on that base: refused.
        let other = json!({"rootfs": {"diff_ids": [d(5).as_str(), d(3).as_str()]}});
        assert!(matches!(
            assemble(&other, &base, std::slice::from_ref(&layer), 0, &ann),
            Err(ImageError::NotOnBase { .. })
        ));
    }
}
