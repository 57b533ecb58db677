//! The cache shared through a registry (`--cache-registry REPO`), like buildx's
//! `type=registry` cache: an entry missing from the engine is looked up as `REPO:<key>` and
//! pulled instead of running its step; a completed entry is pushed there (readwrite mode).
//!
//! Pulls and pushes go through the engine (its registry settings and the Docker client's
//! credentials apply), so the images pulled are exactly the ones pushed, with the same ids.
//! An entry carries its key in the `KEY_LABEL` label, set when its layer was committed; a
//! pulled image whose label names another key is refused (a re-tag or a tampered tag).
//! The registry being down, or any pull or push failing, turns the cache off for the rest of
//! the run with one warning: the build goes on locally, it never fails for the cache.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::engine::{Engine, ImageInfo};
use crate::model::ImageRef;
use crate::plan::CacheKey;
use crate::progress::{Event, Reporter};

/// The label naming the cache key of the layer an image was committed for.
pub const KEY_LABEL: &str = "io.connector-build.cache-key";
/// The label naming the connector whose build committed the layer (for `cache prune`).
pub const CONNECTOR_LABEL: &str = "io.connector-build.connector";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// Pull entries, push none (pull requests from forks).
    Read,
    /// Pull entries and push the ones this run completes.
    #[default]
    ReadWrite,
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteCacheError {
    #[error("--cache-registry `{given}` is not a repository")]
    Reference {
        given: String,
        #[source]
        source: crate::model::ImageRefError,
    },
    #[error("--cache-registry `{given}` names a tag or digest; give a repository only (entries are tagged with their keys)\nhint: e.g. --cache-registry ghcr.io/acme/connector-build-cache")]
    Tagged { given: String },
}

pub struct RemoteCache {
    /// `registry/repository`.
    repository: String,
    /// Its registry (`host[:port]`) and repository path apart.
    parts: (String, String),
    mode: CacheMode,
    /// Set after the first failure: the cache is off for the rest of the run.
    off: AtomicBool,
}

impl RemoteCache {
    pub fn new(repository: &str, mode: CacheMode) -> Result<RemoteCache, RemoteCacheError> {
        let parsed = ImageRef::parse(repository).map_err(|source| RemoteCacheError::Reference {
            given: repository.into(),
            source,
        })?;
        if parsed.tag.is_some() || parsed.digest.is_some() {
            return Err(RemoteCacheError::Tagged {
                given: repository.into(),
            });
        }
        Ok(RemoteCache {
            repository: format!("{}/{}", parsed.registry, parsed.repository),
            parts: (parsed.registry, parsed.repository),
            mode,
            off: AtomicBool::new(false),
        })
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The registry (`host[:port]`) and the repository's path in it.
    pub fn registry_and_path(&self) -> (&str, &str) {
        (&self.parts.0, &self.parts.1)
    }

    pub fn mode(&self) -> CacheMode {
        self.mode
    }

    fn reference(&self, key: &CacheKey) -> String {
        format!("{}:{}", self.repository, key.0)
    }

    /// Turns the cache off; the first time, with a warning.
    fn give_up(
        &self,
        reporter: &dyn Reporter,
        connector: &str,
        what: &str,
        error: &dyn std::error::Error,
    ) {
        if !self.off.swap(true, Ordering::SeqCst) {
            reporter.report(Event::Warning {
                connector: connector.into(),
                message: format!(
                    "registry cache {} unusable ({what}: {}); building without it for the rest of this run",
                    self.repository,
                    crate::error::error_chain(error).replace('\n', " ")
                ),
            });
        }
    }

    /// The entry for `key` pulled from the registry and tagged `local` in the engine, when
    /// the registry has it and it carries `label_key` (the key of the layer it was committed
    /// for; for a finished image, its last step's). `None` on a miss or any failure.
    pub async fn fetch(
        &self,
        engine: &Engine,
        reporter: &dyn Reporter,
        connector: &str,
        key: &CacheKey,
        label_key: &CacheKey,
        local: &str,
    ) -> Option<ImageInfo> {
        if self.off.load(Ordering::SeqCst) {
            return None;
        }
        let reference = self.reference(key);
        let digest = match engine.registry_digest(&reference).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                tracing::debug!(%reference, "not in the registry cache");
                return None;
            }
            Err(e) => {
                self.give_up(reporter, connector, "looking up an entry", &e);
                return None;
            }
        };
        // By digest: what was looked up is what is pulled, and no `REPO:` tag is left.
        let pinned = format!("{}@{digest}", self.repository);
        if let Err(e) = engine.pull(&pinned, |_| {}).await {
            self.give_up(reporter, connector, "pulling an entry", &e);
            return None;
        }
        let image = match engine.inspect_image(&pinned).await {
            Ok(Some(image)) => image,
            Ok(None) => return None,
            Err(e) => {
                self.give_up(reporter, connector, "reading a pulled entry", &e);
                return None;
            }
        };
        if image.labels.get(KEY_LABEL) != Some(&label_key.0) {
            reporter.report(Event::Warning {
                connector: connector.into(),
                message: format!(
                    "registry cache entry {reference} refused: it carries key {}, not {}; building the step instead",
                    image.labels.get(KEY_LABEL).map_or("none", String::as_str),
                    label_key.0
                ),
            });
            let _ = engine.untag(&pinned).await;
            return None;
        }
        if let Err(e) = engine.tag(&image.id, local).await {
            self.give_up(reporter, connector, "tagging a pulled entry", &e);
            return None;
        }
        // The entry's tag holds the image now; the pull's own name is not needed.
        let _ = engine.untag(&pinned).await;
        tracing::debug!(%reference, "pulled from the registry cache");
        Some(image)
    }

    /// Pushes `image` as the entry for `key` (readwrite mode only).
    pub async fn store(
        &self,
        engine: &Engine,
        reporter: &dyn Reporter,
        connector: &str,
        image: &str,
        key: &CacheKey,
    ) {
        if self.mode == CacheMode::Read || self.off.load(Ordering::SeqCst) {
            return;
        }
        let reference = self.reference(key);
        let pushed = async {
            engine.tag(image, &reference).await?;
            let pushed = engine.push(&reference, |_| {}).await;
            // The `REPO:` tag was only the push's handle.
            let _ = engine.untag(&reference).await;
            pushed
        }
        .await;
        match pushed {
            Ok(_) => tracing::debug!(%reference, "pushed to the registry cache"),
            Err(e) => self.give_up(reporter, connector, "pushing an entry", &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_is_required() {
        let c = RemoteCache::new("127.0.0.1:5000/ci/cache", CacheMode::Read).unwrap();
        assert_eq!(c.repository(), "127.0.0.1:5000/ci/cache");
        assert_eq!(
            c.reference(&CacheKey("ab".into())),
            "127.0.0.1:5000/ci/cache:ab"
        );
        assert!(matches!(
            RemoteCache::new("127.0.0.1:5000/cache:v1", CacheMode::Read),
            Err(RemoteCacheError::Tagged { .. })
        ));
        assert!(matches!(
            RemoteCache::new("Not A Repo", CacheMode::Read),
            Err(RemoteCacheError::Reference { .. })
        ));
    }
}
