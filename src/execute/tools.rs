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

    /// Adds a program, identified by its `--version` line and the sha256 of its bytes (both
    /// remembered while the file is unchanged, so a run does not start the program).
    pub fn with(mut self, name: &str, path: &Path) -> Result<Self, ToolError> {
        let read = |source| ToolError::Read {
            path: path.to_path_buf(),
            source,
        };
        // A program that cannot be looked at is run anyway: its error says what to do.
        let version = match remembered(path).ok().flatten() {
            Some(Seen {
                version: Some(v), ..
            }) => v,
            _ => {
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
                version
            }
        };
        let digest = identify(path, Some(&version)).map_err(read)?;
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
    /// The program's `--version` line, when it is one (older stores have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

const DIGESTS_FILE: &str = "tool-digests.json";

/// The sha256 of the file at `path` (hex), from the remembered digests when the file is
/// unchanged since.
pub fn content_digest(path: &Path) -> std::io::Result<String> {
    identify(path, None)
}

/// Where a file's record lives and what it is now: (store, key, size, mtime, inode).
struct Lookup {
    store: Option<PathBuf>,
    key: String,
    path: PathBuf,
    size: u64,
    mtime_ns: i128,
    inode: u64,
}

fn lookup(path: &Path) -> std::io::Result<(Lookup, BTreeMap<String, Seen>)> {
    let path = path.canonicalize()?;
    let meta = std::fs::metadata(&path)?;
    let store = super::user_cache_dir().map(|d| d.join(DIGESTS_FILE));
    let seen: BTreeMap<String, Seen> = store
        .as_ref()
        .and_then(|f| std::fs::read(f).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let found = Lookup {
        store,
        key: path.to_string_lossy().into_owned(),
        size: meta.len(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        inode: meta.ino(),
        path,
    };
    Ok((found, seen))
}

impl Lookup {
    fn current<'s>(&self, seen: &'s BTreeMap<String, Seen>) -> Option<&'s Seen> {
        seen.get(&self.key)
            .filter(|s| s.size == self.size && s.mtime_ns == self.mtime_ns && s.inode == self.inode)
    }
}

/// The record of `path` when the file is unchanged since it was made.
fn remembered(path: &Path) -> std::io::Result<Option<Seen>> {
    let (l, seen) = lookup(path)?;
    Ok(l.current(&seen).cloned())
}

/// The file's sha256, remembered with `version` (the program's `--version` line) when given.
fn identify(path: &Path, version: Option<&str>) -> std::io::Result<String> {
    let (l, mut seen) = lookup(path)?;
    if let Some(s) = l.current(&seen) {
        if version.is_none() || s.version.as_deref() == version {
            return Ok(s.sha256.clone());
        }
    }
    let sha256 = match l.current(&seen) {
        Some(s) => s.sha256.clone(),
        None => {
            let mut hasher = Sha256::new();
            let mut file = std::fs::File::open(&l.path)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            hex::encode(hasher.finalize())
        }
    };
    let version = version
        .map(str::to_string)
        .or_else(|| l.current(&seen).and_then(|s| s.version.clone()));
    seen.insert(
        l.key.clone(),
        Seen {
            size: l.size,
            mtime_ns: l.mtime_ns,
            inode: l.inode,
            sha256: sha256.clone(),
            version,
        },
    );
    // Programs that are gone (a test's temporary copy) are forgotten, so the store stays small.
    seen.retain(|p, _| Path::new(p).exists());
    // Best effort: a store that cannot be written only costs reading the file next time.
    if let (Some(file), Ok(bytes)) = (l.store, serde_json::to_vec_pretty(&seen)) {
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

    #[test]
    fn an_unchanged_program_is_not_started_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tool");
        let count = dir.path().join("count");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho x >> {}\necho 'tool 1.0'\n",
                count.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let first = Tools::none().with("tool", &path).unwrap();
        let second = Tools::none().with("tool", &path).unwrap();
        assert_eq!(first.get("tool"), second.get("tool"));
        assert!(first
            .get("tool")
            .unwrap()
            .identity
            .starts_with("tool 1.0; sha256:"));
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 1);
        // Another program at the same path: started (and identified) again.
        std::fs::write(&path, "#!/bin/sh\necho 'tool 2.0 and more'\n").unwrap();
        let third = Tools::none().with("tool", &path).unwrap();
        assert!(third
            .get("tool")
            .unwrap()
            .identity
            .starts_with("tool 2.0 and more; "));
    }
}
