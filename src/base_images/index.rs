//! Multi-platform base images: `<tag>` as an OCI image index over the image each platform
//! published on its own (linux/amd64 under `<tag>`, another platform under
//! `<tag>-linux-<arch>`), and reading a tag that may hold either.
//!
//! A tag that holds one platform's image alone may become the index that holds that very
//! image beside the others: every digest pin keeps resolving to the same bytes, and pulling
//! the tag on that platform gives the same image. Any other change of a published tag is a
//! conflict (see [`update`]).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::engine::{Engine, EngineError};
use crate::model::image_ref::Digest;
use crate::platform::Platform;
use crate::publish::index::{index_of, platform_of, Entry, Index};
use crate::registry::{Registry, RegistryError, DOCKER_LIST, OCI_INDEX};

/// What a registry tag holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tagged {
    /// One image (its platform is the caller's to check).
    Image { digest: String },
    /// An index: the platforms it lists, each with its image's digest.
    Index {
        digest: String,
        images: BTreeMap<Platform, String>,
    },
}

impl Tagged {
    /// The tag's own digest (an index's, for an index).
    pub fn digest(&self) -> &str {
        match self {
            Tagged::Image { digest } | Tagged::Index { digest, .. } => digest,
        }
    }

    /// The image the tag gives `platform`: an index's entry for it, or the single image.
    pub fn image_for(&self, platform: Platform) -> Option<&str> {
        match self {
            Tagged::Image { digest } => Some(digest),
            Tagged::Index { images, .. } => images.get(&platform).map(String::as_str),
        }
    }
}

/// Where a tag is read from: the engine (so its registry settings and errors apply, as for
/// every other registry lookup of base images), and for an index its listing, which the
/// engine does not give, from the registry directly.
pub struct Reader<'a> {
    pub engine: &'a Engine,
    /// `host[:port]`.
    pub registry: &'a str,
    pub insecure: &'a [String],
}

impl Reader<'_> {
    /// What `repository:tag` holds in the registry; `None` when there is no such tag.
    pub async fn read(&self, repository: &str, tag: &str) -> Result<Option<Tagged>, IndexError> {
        let reference = format!("{}/{repository}:{tag}", self.registry);
        let Some((digest, media_type)) = self.engine.registry_descriptor(&reference).await? else {
            return Ok(None);
        };
        if !matches!(media_type.as_deref(), Some(OCI_INDEX | DOCKER_LIST)) {
            return Ok(Some(Tagged::Image { digest }));
        }
        let m = self
            .client()?
            .manifest(repository, &digest)
            .await?
            .ok_or_else(|| IndexError::Missing {
                repository: repository.to_string(),
                digest: digest.clone(),
                platform: None,
            })?;
        Ok(Some(Tagged::Index {
            digest,
            images: listed(&m.bytes),
        }))
    }

    pub fn client(&self) -> Result<Registry, RegistryError> {
        Registry::connect(self.registry, self.insecure)
    }
}

/// The platforms an index lists (entries for other platforms, or attestations, are skipped).
fn listed(bytes: &[u8]) -> BTreeMap<Platform, String> {
    let v: Value = serde_json::from_slice(bytes).unwrap_or_default();
    let mut out = BTreeMap::new();
    for m in v["manifests"].as_array().into_iter().flatten() {
        let p = &m["platform"];
        let platform = Platform::from_os_arch(
            p["os"].as_str().unwrap_or_default(),
            p["architecture"].as_str().unwrap_or_default(),
        );
        if let (Some(platform), Some(d)) = (platform, m["digest"].as_str()) {
            out.entry(platform).or_insert_with(|| d.to_string());
        }
    }
    out
}

/// Why an index could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{repository}@{digest} is missing from the registry{}; nothing was changed", .platform.map(|p| format!(" (listed for {p})")).unwrap_or_default())]
    Missing {
        repository: String,
        digest: String,
        platform: Option<Platform>,
    },
    #[error("{repository}@{digest} is for {actual}, not {platform}; nothing was changed\nhint: publish that platform's image again (`--platform {platform}`)")]
    WrongPlatform {
        repository: String,
        digest: String,
        platform: Platform,
        actual: String,
    },
}

/// The index over `images` (platform, digest of its image in `repository`), in the order
/// given, from each manifest and config as the registry serves them.
pub async fn assemble(
    client: &Registry,
    repository: &str,
    images: &[(Platform, String)],
) -> Result<Index, IndexError> {
    let mut fetched = Vec::new();
    for (platform, digest) in images {
        let missing = || IndexError::Missing {
            repository: repository.to_string(),
            digest: digest.clone(),
            platform: Some(*platform),
        };
        let m = client
            .manifest(repository, digest)
            .await?
            .ok_or_else(missing)?;
        let manifest: Value = serde_json::from_slice(&m.bytes).unwrap_or_default();
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .and_then(|d| Digest::parse(d).ok())
            .ok_or_else(missing)?;
        let config = client.blob(repository, &config_digest).await?;
        let actual = platform_of(&config);
        let (os, arch) = (
            actual["os"].as_str().unwrap_or_default(),
            actual["architecture"].as_str().unwrap_or_default(),
        );
        if Platform::from_os_arch(os, arch) != Some(*platform) {
            return Err(IndexError::WrongPlatform {
                repository: repository.to_string(),
                digest: digest.clone(),
                platform: *platform,
                actual: format!("{os}/{arch}"),
            });
        }
        fetched.push((m, config));
    }
    let entries: Vec<Entry> = fetched
        .iter()
        .map(|(m, config)| Entry {
            media_type: &m.media_type,
            digest: &m.digest,
            size: m.bytes.len(),
            config,
        })
        .collect();
    Ok(index_of(&entries, &BTreeMap::new()))
}

/// What publishing `index` under a tag that holds `existing` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// The tag holds this very index.
    Unchanged,
    /// No such tag yet.
    New,
    /// The tag holds one of the index's images alone: it gains the other platforms.
    Extends { platform: Platform },
    /// The tag holds something else (another index, or an image the index does not list).
    Conflicts { existing: String },
}

/// Decides [`Update`] from what the tag holds and the index's own listing.
pub fn update(existing: Option<&Tagged>, index: &Index) -> Update {
    let Some(existing) = existing else {
        return Update::New;
    };
    if existing.digest() == index.digest.as_str() {
        return Update::Unchanged;
    }
    if let Tagged::Image { digest } = existing {
        if let Some((platform, _)) = listed(&index.bytes).into_iter().find(|(_, d)| d == digest) {
            return Update::Extends { platform };
        }
    }
    Update::Conflicts {
        existing: existing.digest().to_string(),
    }
}

/// Puts `index` under `repository:tag`; returns its digest.
pub async fn push(
    client: &Registry,
    repository: &str,
    tag: &str,
    index: &Index,
) -> Result<Digest, RegistryError> {
    client
        .put_manifest(repository, tag, &index.bytes, OCI_INDEX)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::sha256_digest;

    fn entry_config(arch: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"os": "linux", "architecture": arch})).unwrap()
    }

    fn two() -> (Index, String, String) {
        let (a, b) = (sha256_digest(b"amd64"), sha256_digest(b"arm64"));
        let (ca, cb) = (entry_config("amd64"), entry_config("arm64"));
        let entries = [
            Entry {
                media_type: crate::registry::DOCKER_MANIFEST,
                digest: &a,
                size: 5,
                config: &ca,
            },
            Entry {
                media_type: crate::registry::DOCKER_MANIFEST,
                digest: &b,
                size: 5,
                config: &cb,
            },
        ];
        let index = index_of(&entries, &BTreeMap::new());
        (index, a.as_str().to_string(), b.as_str().to_string())
    }

    #[test]
    fn a_tag_gains_platforms_but_never_changes_an_image() {
        let (index, amd, arm) = two();
        assert_eq!(update(None, &index), Update::New);
        let same = Tagged::Index {
            digest: index.digest.as_str().to_string(),
            images: listed(&index.bytes),
        };
        assert_eq!(update(Some(&same), &index), Update::Unchanged);
        assert_eq!(same.image_for(Platform::LinuxArm64), Some(arm.as_str()));
        assert_eq!(same.image_for(Platform::LinuxAmd64), Some(amd.as_str()));
        let alone = Tagged::Image {
            digest: amd.clone(),
        };
        assert_eq!(
            update(Some(&alone), &index),
            Update::Extends {
                platform: Platform::LinuxAmd64
            }
        );
        let other = Tagged::Image {
            digest: sha256_digest(b"rebuilt").as_str().to_string(),
        };
        assert!(matches!(
            update(Some(&other), &index),
            Update::Conflicts { .. }
        ));
        let other_index = Tagged::Index {
            digest: sha256_digest(b"another index").as_str().to_string(),
            images: BTreeMap::from([(Platform::LinuxAmd64, amd)]),
        };
        assert!(matches!(
            update(Some(&other_index), &index),
            Update::Conflicts { .. }
        ));
        assert_eq!(other_index.image_for(Platform::LinuxArm64), None);
    }
}
