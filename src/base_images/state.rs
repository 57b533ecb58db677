//! Machine-local state: what this machine built and published, which the repository cannot
//! hold because it differs per machine (a debootstrap root's digest, and so the digests of
//! everything built on it).
//!
//! `<state dir>/root-images/<name>.json`   a root image's digest-pinned address
//! `<state dir>/base-images/published.json` the base image versions published from here
//!
//! The state dir is `$CONNECTOR_BUILD_STATE_DIR`, else `state_dir` in connector-build.toml,
//! else /var/lib/connector-build. Writes are atomic.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::edit::{write_atomic, EditError};

pub const STATE_DIR_ENV: &str = "CONNECTOR_BUILD_STATE_DIR";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/connector-build";
pub const CACHE_DIR_ENV: &str = "CONNECTOR_BUILD_CACHE_DIR";
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/connector-build";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is damaged ({message})\nhint: delete it and run the command that wrote it again"
    )]
    Parse { path: PathBuf, message: String },
    #[error("cannot create {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] EditError),
}

#[derive(Debug, Clone)]
pub struct State {
    pub dir: PathBuf,
}

/// A root image this machine built and pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootRecord {
    /// `registry/repository:tag@sha256:...`
    pub reference: String,
    /// The recipe it was built from; a changed recipe means a rebuild.
    pub recipe_key: String,
}

/// A base image version this machine published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedRecord {
    pub family: String,
    pub version: String,
    pub registry: String,
    pub repository: String,
    pub digest: String,
    /// `registry/repository:version@sha256:...`
    pub reference: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PublishedFile {
    published: Vec<PublishedRecord>,
}

impl State {
    /// `$CONNECTOR_BUILD_STATE_DIR`, else `configured`, else the default.
    pub fn locate(configured: Option<&Path>) -> State {
        let dir = std::env::var_os(STATE_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| configured.map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        State { dir }
    }

    /// Where rootfs tarballs and debootstrap's package cache go.
    pub fn cache_dir() -> PathBuf {
        std::env::var_os(CACHE_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR))
    }

    pub fn root_path(&self, name: &str) -> PathBuf {
        self.dir.join("root-images").join(format!("{name}.json"))
    }

    pub fn published_path(&self) -> PathBuf {
        self.dir.join("base-images").join("published.json")
    }

    pub fn root(&self, name: &str) -> Result<Option<RootRecord>, StateError> {
        read_json(&self.root_path(name))
    }

    pub fn set_root(&self, name: &str, record: &RootRecord) -> Result<(), StateError> {
        write_json(&self.root_path(name), record)
    }

    pub fn published(&self) -> Result<Vec<PublishedRecord>, StateError> {
        Ok(read_json::<PublishedFile>(&self.published_path())?
            .unwrap_or_default()
            .published)
    }

    /// Adds `record`, replacing an earlier one for the same registry, repository and version.
    pub fn record_published(&self, record: PublishedRecord) -> Result<(), StateError> {
        let mut all = self.published()?;
        all.retain(|r| {
            !(r.registry == record.registry
                && r.repository == record.repository
                && r.version == record.version)
        });
        all.push(record);
        all.sort_by(|a, b| {
            (&a.registry, &a.repository, &a.version).cmp(&(&b.registry, &b.repository, &b.version))
        });
        write_json(&self.published_path(), &PublishedFile { published: all })
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StateError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| StateError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    write_atomic(path, text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_replace_their_own_version_only() {
        let dir = tempfile::tempdir().unwrap();
        let state = State {
            dir: dir.path().join("state"),
        };
        assert!(state.published().unwrap().is_empty());
        let rec = |version: &str, digest: &str| PublishedRecord {
            family: "python".into(),
            version: version.into(),
            registry: "r:5000".into(),
            repository: "a/b".into(),
            digest: digest.into(),
            reference: format!("r:5000/a/b:{version}@{digest}"),
        };
        state.record_published(rec("1.0.0", "sha256:1")).unwrap();
        state.record_published(rec("1.1.0", "sha256:2")).unwrap();
        state.record_published(rec("1.0.0", "sha256:3")).unwrap();
        let all = state.published().unwrap();
        assert_eq!(all, [rec("1.0.0", "sha256:3"), rec("1.1.0", "sha256:2")]);
        std::fs::write(state.published_path(), "{").unwrap();
        let e = state.published().unwrap_err().to_string();
        assert!(e.contains("published.json is damaged"), "{e}");
    }
}
