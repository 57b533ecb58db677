//! What `publish` pushed for a connector, as the run report, `--json` and `--metadata-file`
//! carry it. Kept beside the report's record (not in `publish`), so the report depends on no
//! pipeline stage that reads it back.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What became of a connector's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishOutcome {
    Pushed,
    AlreadyPublished,
}

/// A published image, for stdout, `--json`, the run report and the metadata file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    /// `registry/repository:tag@sha256:...`: the index's address when several platforms were
    /// published, the manifest's for one.
    pub image: String,
    /// `registry/repository`.
    pub name: String,
    pub tag: String,
    /// What the tag points at: the OCI index's digest, or the one manifest's.
    pub digest: String,
    /// `application/vnd.oci.image.index.v1+json` or `application/vnd.oci.image.manifest.v1+json`.
    #[serde(default = "manifest_type")]
    pub media_type: String,
    /// The config's digest when the tag points at one image (an index has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    /// Every tag it has now (the version, and `latest` with `--latest`).
    pub tags: Vec<String>,
    pub outcome: PublishOutcome,
    /// Whether a rebuild from the same commit gives the same digest, as far as can be told.
    pub reproducible: bool,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reproducibility: Vec<String>,
    /// The time every file and the config carry (seconds since the epoch), and where it
    /// came from.
    pub epoch: u64,
    pub epoch_source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Over every platform's image.
    pub blobs_uploaded: usize,
    pub blobs_mounted: usize,
    pub blobs_present: usize,
    pub bytes_uploaded: u64,
    /// For one platform: the tag its SBOM is attached under (cosign's `sha256-<hex>.sbom`),
    /// and the file it was written to. With several, each platform's entry has its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom_file: Option<PathBuf>,
    /// Each platform's image, in the index's order (amd64 first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PublishedPlatform>,
}

/// One platform's image of a published connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedPlatform {
    /// `linux/arm64`.
    pub platform: String,
    /// The platform manifest's digest (pushed by digest, no tag of its own).
    pub digest: String,
    pub config_digest: String,
    /// The base image it is built on, digest-pinned (this platform's image of the base).
    pub base_image: String,
    /// The tag its SBOM is attached under, `sha256-<manifest hex>.sbom`.
    pub sbom_tag: String,
    /// Where the SBOM was written (set by the caller that writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom_file: Option<PathBuf>,
    /// The SBOM itself (CycloneDX 1.5 JSON).
    #[serde(skip)]
    pub sbom: Vec<u8>,
}

fn manifest_type() -> String {
    "application/vnd.oci.image.manifest.v1+json".into()
}
