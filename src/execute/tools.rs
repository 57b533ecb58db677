//! Host programs the build mounts into install steps (uv).
//!
//! A program reaches containers through a named volume per engine, filled once and marked
//! complete, so remote engines work as well as the local one and nothing is copied per build.
//!
//! A program is identified by the sha256 of its bytes (what lands in the volume and in cache
//! keys), remembered per path, size, modification time and inode so a run does not read
//! 44 MB again on the no-change path.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::plan::canonical::sha256_hex;

/// Where the set-up installs uv (the static musl build, which runs in any base image).
pub const DEFAULT_UV: &str = "/var/lib/connector-build/tools/uv";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub name: String,
    pub identity: String,
    pub path: PathBuf,
}

impl Tool {
    /// The volume holding this program on an engine.
    pub fn volume(&self) -> String {
        format!(
            "connector-build-tool-{}-{}",
            self.name,
            &sha256_hex(self.identity.as_bytes())[..12]
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{path}: cannot run it to read its version; point --uv (or $CONNECTOR_BUILD_UV) at a working program, or pass --installer pip")]
    Run {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: `{name} --version` failed; is it a working {name} program?")]
    Version { path: PathBuf, name: String },
    #[error("{path}: cannot read it to identify it")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The programs available to this run.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    tools: Vec<Tool>,
}

impl Tools {
    pub fn none() -> Self {
        Tools::default()
    }

    /// Adds a program, identified by its `--version` line and the sha256 of its bytes.
    pub fn with(mut self, name: &str, path: &Path) -> Result<Self, ToolError> {
        let out = std::process::Command::new(path)
            .arg("--version")
            .output()
            .map_err(|source| ToolError::Run {
                path: path.to_path_buf(),
                source,
            })?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || version.is_empty() {
            return Err(ToolError::Version {
                path: path.to_path_buf(),
                name: name.into(),
            });
        }
        let digest = content_digest(path).map_err(|source| ToolError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.tools.push(Tool {
            name: name.into(),
            identity: format!("{version}; sha256:{digest}"),
            path: path.to_path_buf(),
        });
        Ok(self)
    }

    pub fn get(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| t.name == name)
    }

    pub fn by_identity(&self, name: &str, identity: &str) -> Option<&Tool> {
        self.tools
            .iter()
            .find(|t| t.name == name && t.identity == identity)
    }
}

/// What a file's digest was computed from: it is recomputed when any of these change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    sha256: String,
}

const DIGESTS_FILE: &str = "tool-digests.json";

/// The sha256 of the file at `path` (hex), from the remembered digests when the file is
/// unchanged since.
pub fn content_digest(path: &Path) -> std::io::Result<String> {
    let path = path.canonicalize()?;
    let meta = std::fs::metadata(&path)?;
    let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    let key = path.to_string_lossy().into_owned();
    let store = super::user_cache_dir().map(|d| d.join(DIGESTS_FILE));
    let mut seen: BTreeMap<String, Seen> = store
        .as_ref()
        .and_then(|f| std::fs::read(f).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if let Some(s) = seen.get(&key) {
        if s.size == meta.len() && s.mtime_ns == mtime_ns && s.inode == meta.ino() {
            return Ok(s.sha256.clone());
        }
    }
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(&path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let sha256 = hex::encode(hasher.finalize());
    seen.insert(
        key,
        Seen {
            size: meta.len(),
            mtime_ns,
            inode: meta.ino(),
            sha256: sha256.clone(),
        },
    );
    // Programs that are gone (a test's temporary copy) are forgotten, so the store stays small.
    seen.retain(|p, _| Path::new(p).exists());
    // Best effort: a store that cannot be written only costs reading the file next time.
    if let (Some(file), Ok(bytes)) = (store, serde_json::to_vec_pretty(&seen)) {
        if let Some(dir) = file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = crate::edit::write_atomic(&file, &bytes);
    }
    Ok(sha256)
}

/// uv from `explicit`, `CONNECTOR_BUILD_UV`, the set-up's place, or PATH.
pub fn find_uv(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("CONNECTOR_BUILD_UV").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if Path::new(DEFAULT_UV).is_file() {
        return Some(PathBuf::from(DEFAULT_UV));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("uv"))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_is_identified_by_its_bytes_not_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tool");
        std::fs::write(&path, b"one").unwrap();
        let first = content_digest(&path).unwrap();
        assert_eq!(first, hex::encode(Sha256::digest(b"one")));
        // Same size, other bytes: another identity (the size alone said "the same").
        std::fs::write(&path, b"two").unwrap();
        let second = content_digest(&path).unwrap();
        assert_eq!(second, hex::encode(Sha256::digest(b"two")));
        assert_ne!(first, second);
    }
}
