//! Tar archives for layers, built in memory from plan entries.
//!
//! Timestamps and ownership are fixed so the same inputs give the same bytes; contents are
//! re-hashed as they are read, so a file edited after planning cannot slip in under a stale
//! cache key.

use std::path::{Path, PathBuf};

use crate::plan::canonical::sha256_hex;
use crate::plan::{FileEntry, FileSource, Owner};

/// 2000-01-01T00:00:00Z: not zero, because wheel builds reject timestamps before 1980.
pub const FIXED_MTIME: u64 = 946_684_800;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} changed while the build was running\nhint: run the build again")]
    Changed { path: PathBuf },
    #[error("cannot add {path} to the layer archive")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub struct TarBuilder {
    inner: tar::Builder<Vec<u8>>,
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    pub fn new() -> Self {
        let mut inner = tar::Builder::new(Vec::new());
        inner.mode(tar::HeaderMode::Deterministic);
        TarBuilder { inner }
    }

    fn header(size: u64, mode: u32, kind: tar::EntryType, owner: Option<Owner>) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        let owner = owner.unwrap_or(Owner { uid: 0, gid: 0 });
        h.set_uid(owner.uid);
        h.set_gid(owner.gid);
        h.set_mtime(FIXED_MTIME);
        h
    }

    pub fn add_bytes(&mut self, path: &str, bytes: &[u8], mode: u32) -> Result<(), ArchiveError> {
        self.add_owned(path, bytes, mode, None)
    }

    fn add_owned(
        &mut self,
        path: &str,
        bytes: &[u8],
        mode: u32,
        owner: Option<Owner>,
    ) -> Result<(), ArchiveError> {
        let mut h = Self::header(bytes.len() as u64, mode, tar::EntryType::Regular, owner);
        self.inner
            .append_data(&mut h, path, bytes)
            .map_err(|source| ArchiveError::Write {
                path: path.into(),
                source,
            })
    }

    fn add_symlink(&mut self, path: &str, target: &str) -> Result<(), ArchiveError> {
        let mut h = Self::header(0, 0o777, tar::EntryType::Symlink, None);
        self.inner
            .append_link(&mut h, path, target)
            .map_err(|source| ArchiveError::Write {
                path: path.into(),
                source,
            })
    }

    /// Adds plan entries under `dest` (an absolute path in the image).
    pub fn add_entries(
        &mut self,
        context_dir: &Path,
        dest: &str,
        files: &[FileEntry],
    ) -> Result<(), ArchiveError> {
        let dest = dest.trim_matches('/');
        for f in files {
            let path = if dest.is_empty() {
                f.path.clone()
            } else {
                format!("{dest}/{}", f.path)
            };
            let from_disk = |src: PathBuf| -> Result<Vec<u8>, ArchiveError> {
                let bytes = std::fs::read(&src).map_err(|source| ArchiveError::Read {
                    path: src.clone(),
                    source,
                })?;
                if sha256_hex(&bytes) != f.sha256 {
                    return Err(ArchiveError::Changed { path: src });
                }
                Ok(bytes)
            };
            match &f.source {
                FileSource::Context(rel) => {
                    let bytes = from_disk(context_dir.join(rel))?;
                    self.add_owned(&path, &bytes, f.mode, f.owner)?;
                }
                FileSource::Host(abs) => {
                    let bytes = from_disk(PathBuf::from(abs))?;
                    self.add_owned(&path, &bytes, f.mode, f.owner)?;
                }
                FileSource::Inline(text) => {
                    self.add_owned(&path, text.as_bytes(), f.mode, f.owner)?
                }
                FileSource::Symlink(target) => self.add_symlink(&path, target)?,
                FileSource::Unpack { archive, strip } => {
                    let src = context_dir.join(archive);
                    let bytes = from_disk(src.clone())?;
                    self.add_unpacked(&src, &bytes, dest, *strip)?;
                }
            }
        }
        Ok(())
    }

    /// The members of the tar archive `bytes` (read from `src`) under `dest`, with `strip`
    /// leading path components removed; members left with no path (the top folder) are
    /// skipped. Modes and link targets are kept; owners and times are fixed as for every
    /// entry. Only files, folders and links can enter a layer: anything else is refused.
    fn add_unpacked(
        &mut self,
        src: &Path,
        bytes: &[u8],
        dest: &str,
        strip: usize,
    ) -> Result<(), ArchiveError> {
        let read = |source: std::io::Error| ArchiveError::Read {
            path: src.to_path_buf(),
            source,
        };
        let mut archive = tar::Archive::new(bytes);
        for entry in archive.entries().map_err(read)? {
            let mut entry = entry.map_err(read)?;
            let member = entry.path().map_err(read)?.into_owned();
            let rest: PathBuf = member
                .components()
                .filter(|c| matches!(c, std::path::Component::Normal(_)))
                .skip(strip)
                .collect();
            if rest.as_os_str().is_empty() {
                continue;
            }
            let rest = rest.to_string_lossy().into_owned();
            let path = if dest.is_empty() {
                rest
            } else {
                format!("{dest}/{rest}")
            };
            let mode = entry.header().mode().map_err(read)? & 0o7777;
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let mut data = Vec::new();
                    std::io::Read::read_to_end(&mut entry, &mut data).map_err(read)?;
                    self.add_owned(&path, &data, mode, None)?;
                }
                tar::EntryType::Directory => {
                    let mut h = Self::header(0, mode, tar::EntryType::Directory, None);
                    self.inner
                        .append_data(&mut h, &path, std::io::empty())
                        .map_err(|source| ArchiveError::Write {
                            path: path.clone(),
                            source,
                        })?;
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name()
                        .map_err(read)?
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    self.add_symlink(&path, &target)?;
                }
                other => {
                    return Err(ArchiveError::Read {
                        path: src.to_path_buf(),
                        source: std::io::Error::other(format!(
                            "member `{}` is a {other:?} entry; only files, folders and symbolic links can be unpacked into an image",
                            member.display()
                        )),
                    })
                }
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Result<Vec<u8>, ArchiveError> {
        self.inner
            .into_inner()
            .map_err(|source| ArchiveError::Write {
                path: "<archive>".into(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_bytes_and_changes_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.py"), "print(1)\n").unwrap();
        let entry = crate::plan::context::file_entry(dir.path(), "main.py", "main.py").unwrap();
        let build = || {
            let mut t = TarBuilder::new();
            t.add_entries(
                dir.path(),
                "/airbyte/integration_code",
                std::slice::from_ref(&entry),
            )?;
            t.finish()
        };
        let a = build().unwrap();
        assert_eq!(a, build().unwrap());
        let mut archive = tar::Archive::new(a.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["airbyte/integration_code/main.py"]);
        std::fs::write(dir.path().join("main.py"), "print(2)\n").unwrap();
        assert!(matches!(build(), Err(ArchiveError::Changed { .. })));
    }
}
