//! Choosing and fingerprinting the files of a connector folder that go into an image.

use std::path::{Component, Path, PathBuf};

use super::canonical::sha256_hex;
use super::{FileEntry, FileSource};

/// Names that never enter a layer wherever they appear: credentials, local environments,
/// build debris and VCS data.
const EXCLUDED_NAMES: &[&str] = &[
    "secrets",
    ".env",
    ".venv",
    "__pycache__",
    "build",
    ".git",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".DS_Store",
];

/// A single file larger than this is almost certainly a mistake (a dump, a data set).
pub const MAX_FILE_SIZE: u64 = 256 * 1024 * 1024;

pub fn is_excluded(name: &str) -> bool {
    EXCLUDED_NAMES.contains(&name)
        || name.ends_with(".egg-info")
        || name.ends_with(".pyc")
        || name.ends_with(".pyo")
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is a symbolic link to `{target}`, outside the connector folder; copy the file in instead")]
    SymlinkOutside { path: PathBuf, target: String },
    #[error("{path} is {}, over the {} limit for one file that enters the image; a file this big is most likely a dump or a data set: remove it, or move it out of the connector's code", mib(*.size), mib(*.limit))]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{path}: file names must be valid UTF-8\nhint: rename it")]
    NotUtf8 { path: PathBuf },
    #[error("{path} is {kind}, not a regular file; only files, folders and symbolic links can enter an image: remove it or move it out of the connector's code")]
    NotRegular { path: PathBuf, kind: &'static str },
}

/// Refuses `path` when it is a FIFO, socket or device (following links), so that reading it
/// cannot block; a path that does not exist passes (the reader reports it).
pub fn check_not_special(path: &Path) -> Result<(), ContextError> {
    match std::fs::metadata(path) {
        Ok(meta) => match crate::model::files::special_kind(&meta) {
            Some(kind) => Err(ContextError::NotRegular {
                path: path.to_path_buf(),
                kind,
            }),
            None => Ok(()),
        },
        Err(_) => Ok(()),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One file of the connector folder, `rel` relative to `root`, placed at `dest_rel`.
pub fn file_entry(root: &Path, rel: &str, dest_rel: &str) -> Result<FileEntry, ContextError> {
    let path = root.join(rel);
    let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&path).map_err(io(&path))?;
        let target_str = target
            .to_str()
            .ok_or(ContextError::NotUtf8 { path: path.clone() })?;
        if !link_stays_inside(Path::new(rel), &target) {
            return Err(ContextError::SymlinkOutside {
                path,
                target: target_str.to_string(),
            });
        }
        return Ok(FileEntry {
            path: dest_rel.to_string(),
            source: FileSource::Symlink(target_str.to_string()),
            mode: 0o777,
            sha256: sha256_hex(target_str.as_bytes()),
            owner: None,
        });
    }
    if let Some(kind) = crate::model::files::special_kind(&meta) {
        return Err(ContextError::NotRegular { path, kind });
    }
    if meta.is_dir() {
        return Err(ContextError::NotRegular {
            path,
            kind: "a folder",
        });
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(ContextError::TooLarge {
            path,
            size: meta.len(),
            limit: MAX_FILE_SIZE,
        });
    }
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    Ok(FileEntry {
        path: dest_rel.to_string(),
        source: FileSource::Context(rel.to_string()),
        mode: normalised_mode(&meta),
        sha256: sha256_hex(&bytes),
        owner: None,
    })
}

/// Only the executable bit is kept, so a checkout's umask does not change cache keys.
#[cfg(unix)]
fn normalised_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

#[cfg(not(unix))]
fn normalised_mode(_meta: &std::fs::Metadata) -> u32 {
    0o644
}

/// A link is kept only if, resolved lexically from where it sits, it stays under `root`.
fn link_stays_inside(rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = 0;
    let parent = rel.parent().unwrap_or(Path::new(""));
    for c in parent.components().chain(target.components()) {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Every file under `root/rel_dir` (sorted, excluded names skipped), placed under `rel_dir`.
/// When `rel_dir` itself is a link to a folder inside `root` (`source_foo -> src/source_foo`),
/// what it points to is copied under `rel_dir`, once, and the link is not.
pub fn tree_entries(root: &Path, rel_dir: &str) -> Result<Vec<FileEntry>, ContextError> {
    let mut out = Vec::new();
    let start = root.join(rel_dir);
    let meta = std::fs::symlink_metadata(&start).map_err(io(&start))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&start).map_err(io(&start))?;
        if !link_stays_inside(Path::new(rel_dir), &target) {
            return Err(ContextError::SymlinkOutside {
                target: target.to_string_lossy().into_owned(),
                path: start,
            });
        }
    }
    let walker = walkdir::WalkDir::new(&start)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !is_excluded(&e.file_name().to_string_lossy()));
    for entry in walker {
        let entry = entry.map_err(|e| {
            let path = e.path().map_or_else(|| start.clone(), Path::to_path_buf);
            ContextError::Io {
                path,
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("file system loop")),
            }
        })?;
        // The root is the folder itself (or the link to it, followed by the walk).
        if entry.depth() == 0 || entry.file_type().is_dir() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(root)
            .ok()
            .and_then(Path::to_str)
            .ok_or_else(|| ContextError::NotUtf8 {
                path: entry.path().to_path_buf(),
            })?
            .replace(std::path::MAIN_SEPARATOR, "/");
        out.push(file_entry(root, &rel, &rel)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions() {
        for n in [
            "secrets",
            ".venv",
            "__pycache__",
            "build",
            "x.egg-info",
            ".git",
            "a.pyc",
            ".env",
        ] {
            assert!(is_excluded(n), "{n}");
        }
        for n in ["source_foo", "main.py", "schemas", "builder.py"] {
            assert!(!is_excluded(n), "{n}");
        }
    }

    #[test]
    fn symlinks_must_stay_inside() {
        assert!(link_stays_inside(
            Path::new("pkg/a.json"),
            Path::new("../shared/a.json")
        ));
        assert!(!link_stays_inside(
            Path::new("pkg/a.json"),
            Path::new("../../etc/passwd")
        ));
        assert!(!link_stays_inside(
            Path::new("pkg/a"),
            Path::new("/etc/passwd")
        ));
    }

    #[test]
    fn tree_skips_excluded_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("pkg/__pycache__")).unwrap();
        std::fs::create_dir_all(root.join("pkg/schemas")).unwrap();
        std::fs::write(root.join("pkg/__init__.py"), "x = 1\n").unwrap();
        std::fs::write(root.join("pkg/__pycache__/x.pyc"), "junk").unwrap();
        std::fs::write(root.join("pkg/schemas/a.json"), "{}").unwrap();
        let entries = tree_entries(root, "pkg").unwrap();
        let paths: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["pkg/__init__.py", "pkg/schemas/a.json"]);
        assert_eq!(entries[1].sha256, sha256_hex(b"{}"));
        assert_eq!(entries[0].mode, 0o644);
    }
}
