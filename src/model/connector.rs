//! Finding connector folders by name or path.

use std::path::{Path, PathBuf};

use super::metadata::{self, Metadata, MetadataError};

pub const METADATA_FILE: &str = "metadata.yaml";

#[derive(Debug, Clone)]
pub struct Connector {
    /// The technical name: the folder name, e.g. `source-foo`.
    pub name: String,
    pub dir: PathBuf,
    pub metadata: Metadata,
}

impl Connector {
    pub fn load(dir: &Path) -> Result<Connector, MetadataError> {
        let metadata = metadata::load(&dir.join(METADATA_FILE))?;
        Ok(Connector {
            name: folder_name(dir),
            dir: dir.to_path_buf(),
            metadata,
        })
    }

    /// The Python package folder the connector's code lives in: `source-foo` -> `source_foo`.
    pub fn package_name(&self) -> String {
        self.name.replace('-', "_")
    }

    pub fn dockerfile(&self) -> Option<PathBuf> {
        let p = self.dir.join("Dockerfile");
        p.is_file().then_some(p)
    }
}

/// A connector's technical name from its folder: the last component, also for paths that
/// end in `.` or `..` (`connector-build build .` inside `source-foo` means `source-foo`).
pub fn folder_name(dir: &Path) -> String {
    let named = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    named(dir)
        .filter(|_| !dir.ends_with(".") && !dir.ends_with(".."))
        .or_else(|| dir.canonicalize().ok().as_deref().and_then(named))
        .unwrap_or_else(|| dir.display().to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("connector `{name}` not found; looked for {}\nhint: pass a folder path, or point --connectors-dir at the folder holding the connectors", list(.searched))]
    NotFound {
        name: String,
        searched: Vec<PathBuf>,
    },
    #[error("{path} is not a connector folder: it has no {METADATA_FILE}")]
    NoMetadata { path: PathBuf },
    #[error(
        "{path} is not a file; a connector folder holds its metadata in a {METADATA_FILE} file"
    )]
    MetadataNotAFile { path: PathBuf },
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where connectors are looked up by name.
#[derive(Debug, Clone)]
pub struct ConnectorLocator {
    /// Folders whose children are connector folders, in search order.
    pub dirs: Vec<PathBuf>,
}

impl ConnectorLocator {
    /// The airbyte monorepo layout under `root` first, then `root` itself.
    pub fn for_repository(root: &Path) -> Self {
        ConnectorLocator {
            dirs: vec![
                root.join("airbyte-integrations").join("connectors"),
                root.to_path_buf(),
            ],
        }
    }

    /// A name (`source-foo`) or a path to a connector folder.
    pub fn locate(&self, name_or_path: &str) -> Result<PathBuf, DiscoveryError> {
        let as_path = Path::new(name_or_path);
        let looks_like_path = name_or_path.contains(std::path::MAIN_SEPARATOR)
            || name_or_path.starts_with('.')
            || as_path.is_absolute();
        if looks_like_path || (as_path.is_dir() && as_path.join(METADATA_FILE).is_file()) {
            if as_path.join(METADATA_FILE).is_file() {
                return Ok(as_path.to_path_buf());
            }
            if looks_like_path {
                return Err(DiscoveryError::NoMetadata {
                    path: as_path.to_path_buf(),
                });
            }
        }
        let searched: Vec<PathBuf> = self.dirs.iter().map(|d| d.join(name_or_path)).collect();
        if let Some(found) = searched.iter().find(|c| c.join(METADATA_FILE).is_file()) {
            return Ok(found.clone());
        }
        // A folder with something else under the file's name is not "not found".
        if let Some(odd) = searched
            .iter()
            .map(|c| c.join(METADATA_FILE))
            .find(|m| m.exists())
        {
            return Err(DiscoveryError::MetadataNotAFile { path: odd });
        }
        Err(DiscoveryError::NotFound {
            name: name_or_path.to_string(),
            searched,
        })
    }

    /// Every connector folder under the search folders, sorted by name, each name once.
    pub fn all(&self) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for dir in &self.dirs {
            let Ok(read) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut here: Vec<PathBuf> = read
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.join(METADATA_FILE).is_file())
                .collect();
            here.sort();
            for p in here {
                if let Some(name) = p.file_name() {
                    if names.insert(name.to_os_string()) {
                        found.push(p);
                    }
                }
            }
        }
        found.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        found
    }
}
