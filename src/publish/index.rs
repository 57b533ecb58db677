//! The OCI image index a multi-platform publish tags: one descriptor per platform manifest,
//! with its `platform` read from that image's config, in canonical JSON so equal images give
//! equal bytes (and the same digest) wherever they are published from.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::model::image_ref::Digest;
use crate::registry::{sha256_digest, OCI_INDEX, OCI_MANIFEST};

use super::image::{canonical, Assembled};

/// An index's bytes and digest.
#[derive(Debug, Clone)]
pub struct Index {
    pub bytes: Vec<u8>,
    pub digest: Digest,
}

/// One manifest an index lists: its media type, digest and size, and its image's config
/// (where the platform is read from).
pub struct Entry<'a> {
    pub media_type: &'a str,
    pub digest: &'a Digest,
    pub size: usize,
    pub config: &'a [u8],
}

/// The index of `images` (in the order given), annotated like their manifests.
pub fn index(images: &[&Assembled], annotations: &BTreeMap<String, String>) -> Index {
    let entries: Vec<Entry> = images
        .iter()
        .map(|a| Entry {
            media_type: OCI_MANIFEST,
            digest: &a.digest,
            size: a.manifest.len(),
            config: &a.config,
        })
        .collect();
    index_of(&entries, annotations)
}

/// The index over `entries` (in the order given).
pub fn index_of(entries: &[Entry], annotations: &BTreeMap<String, String>) -> Index {
    let manifests: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "mediaType": e.media_type,
                "digest": e.digest.as_str(),
                "size": e.size,
                "platform": platform_of(e.config),
            })
        })
        .collect();
    let bytes = canonical(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
        "annotations": annotations,
    }));
    let digest = sha256_digest(&bytes);
    Index { bytes, digest }
}

/// `{os, architecture[, variant]}` as the image's config states them.
pub fn platform_of(config: &[u8]) -> Value {
    let config: Value = serde_json::from_slice(config).unwrap_or_default();
    let mut p = json!({
        "os": config["os"].as_str().unwrap_or("linux"),
        "architecture": config["architecture"].as_str().unwrap_or("amd64"),
    });
    if let Some(v) = config["variant"].as_str() {
        p["variant"] = json!(v);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(arch: &str, n: u8) -> Assembled {
        let config = canonical(&json!({"os": "linux", "architecture": arch}));
        let manifest = vec![n; 10 + n as usize];
        Assembled {
            config_digest: sha256_digest(&config),
            config,
            digest: sha256_digest(&manifest),
            manifest,
            layers: Vec::new(),
        }
    }

    #[test]
    fn one_descriptor_per_platform_in_canonical_bytes() {
        let (amd, arm) = (image("amd64", 1), image("arm64", 2));
        let mut ann = BTreeMap::new();
        ann.insert(
            "org.opencontainers.image.version".to_string(),
            "0.1.0".to_string(),
        );
        let i = index(&[&amd, &arm], &ann);
        assert_eq!(i.digest, sha256_digest(&i.bytes));
        let v: Value = serde_json::from_slice(&i.bytes).unwrap();
        assert_eq!(v["mediaType"], OCI_INDEX);
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["manifests"][0]["platform"]["architecture"], "amd64");
        assert_eq!(v["manifests"][1]["platform"]["architecture"], "arm64");
        assert_eq!(v["manifests"][1]["platform"]["os"], "linux");
        assert_eq!(v["manifests"][1]["digest"], arm.digest.as_str());
        assert_eq!(v["manifests"][1]["size"], 12);
        assert_eq!(
            v["annotations"]["org.opencontainers.image.version"],
            "0.1.0"
        );
        // Canonical: re-serialising the parsed value with sorted keys gives the same bytes.
        assert_eq!(canonical(&v), i.bytes);
        assert_eq!(index(&[&amd, &arm], &ann).bytes, i.bytes);
    }
}
