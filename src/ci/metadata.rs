//! `--metadata-file`, as `docker buildx bake --metadata-file` writes it: one entry per target
//! (here a connector) that produced an image, with BuildKit's exporter keys.
//!
//! The image is only in the engine (as with buildx's `docker` driver and `--load`), so it has
//! no manifest yet: `containerimage.digest` is the image ID, the digest of its config, as
//! buildx writes it for that driver.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::report::{RunReport, Status};

/// The metadata of the connectors built in `report`, keyed by connector name.
pub fn render(report: &RunReport) -> Value {
    let mut targets = Map::new();
    for c in &report.connectors {
        if c.status != Status::Built {
            continue;
        }
        // A published image has a manifest: its digest and its address in the registry.
        if let Some(p) = &c.published {
            // An index has no config of its own: buildx leaves the key out there too.
            let mut entry = json!({
                "containerimage.digest": p.digest,
                "image.name": format!("{}:{}", p.name, p.tag),
            });
            if let Some(config) = &p.config_digest {
                entry["containerimage.config.digest"] = json!(config);
            }
            targets.insert(c.connector.clone(), entry);
            continue;
        }
        let (Some(id), Some(tag)) = (&c.image_id, &c.tag) else {
            continue;
        };
        targets.insert(
            c.connector.clone(),
            json!({
                "containerimage.config.digest": id,
                "containerimage.digest": id,
                "image.name": tag,
            }),
        );
    }
    Value::Object(targets)
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write the metadata file {path}")]
pub struct MetadataFileError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes [`render`] to `path`, whole or not at all.
pub fn write(path: &Path, report: &RunReport) -> Result<(), MetadataFileError> {
    let body = serde_json::to_string_pretty(&render(report)).unwrap_or_default() + "\n";
    crate::edit::replace_file(path, body.as_bytes()).map_err(|source| MetadataFileError {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use crate::report::record::tests::sample;

    #[test]
    fn one_entry_per_built_connector_with_buildx_keys() {
        let meta = super::render(&sample());
        let targets: Vec<&String> = meta.as_object().unwrap().keys().collect();
        assert_eq!(targets, ["source-cached", "source-faker", "source-retried"]);
        let faker = &meta["source-faker"];
        assert_eq!(faker["image.name"], "airbyte/source-faker:dev");
        assert!(faker["containerimage.digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
        assert_eq!(
            faker["containerimage.digest"],
            faker["containerimage.config.digest"]
        );
    }
}
