//! Finding connector folders by name or path.

use std::path::{Path, PathBuf};

use serde::Serialize;

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

/// How a connector is built, from its `language:` tag, as airbyte-ci dispatched: python and
/// low-code (and no tag) are Python builds, manifest-only and java have their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectorKind {
    Python,
    ManifestOnly,
    Java,
}

impl ConnectorKind {
    pub fn of(connector: &Connector) -> ConnectorKind {
        Self::for_language(connector.metadata.language())
    }

    pub fn for_language(language: Option<&str>) -> ConnectorKind {
        match language {
            Some("manifest-only") => ConnectorKind::ManifestOnly,
            Some("java") => ConnectorKind::Java,
            _ => ConnectorKind::Python,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ConnectorKind::Python => "python",
            ConnectorKind::ManifestOnly => "manifest-only",
            ConnectorKind::Java => "java",
        }
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
    #[error("connector `{name}` is ambiguous: it is both {} (in the current folder) and {}; write `./{name}` for the first, or the full path of the second", .here.display(), .found.display())]
    Ambiguous {
        name: String,
        here: PathBuf,
        found: PathBuf,
    },
    #[error("--connectors-dir {}: {reason}", .path.display())]
    BadConnectorsDir { path: PathBuf, reason: String },
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

    /// Folders given by the user (`--connectors-dir`, `connectors_dirs` in the config file):
    /// each must be an existing folder, since a mistyped one would silently find nothing.
    pub fn given(dirs: Vec<PathBuf>) -> Result<Self, DiscoveryError> {
        for dir in &dirs {
            let reason = match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => "not a folder".to_string(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "no such folder".to_string(),
                Err(e) => e.to_string(),
            };
            return Err(DiscoveryError::BadConnectorsDir {
                path: dir.clone(),
                reason,
            });
        }
        Ok(ConnectorLocator { dirs })
    }

    /// A name (`source-foo`) or a path to a connector folder. A path (`./source-foo`, an
    /// absolute path, anything with a `/`) is taken as it is; a name is looked up in the
    /// connector folders, and in the current folder only when they do not have it. A name
    /// both places give differently is refused, so the wrong connector is never built.
    pub fn locate(&self, name_or_path: &str) -> Result<PathBuf, DiscoveryError> {
        let as_path = Path::new(name_or_path);
        let looks_like_path = name_or_path.contains(std::path::MAIN_SEPARATOR)
            || name_or_path.contains('/')
            || name_or_path.starts_with('.')
            || as_path.is_absolute();
        if looks_like_path {
            if as_path.join(METADATA_FILE).is_file() {
                return Ok(as_path.to_path_buf());
            }
            return Err(DiscoveryError::NoMetadata {
                path: as_path.to_path_buf(),
            });
        }
        let here = (as_path.is_dir() && as_path.join(METADATA_FILE).is_file())
            .then(|| as_path.to_path_buf());
        let searched: Vec<PathBuf> = self.dirs.iter().map(|d| d.join(name_or_path)).collect();
        if let Some(found) = searched.iter().find(|c| c.join(METADATA_FILE).is_file()) {
            if let Some(here) = here {
                let same = match (here.canonicalize(), found.canonicalize()) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => false,
                };
                if !same {
                    return Err(DiscoveryError::Ambiguous {
                        name: name_or_path.to_string(),
                        here: Path::new(".").join(here),
                        found: found.clone(),
                    });
                }
                // The same folder: messages name it as the user would.
                return Ok(here);
            }
            return Ok(found.clone());
        }
        if let Some(here) = here {
            return Ok(here);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(METADATA_FILE), "data: {}\n").unwrap();
    }

    #[test]
    fn names_resolve_in_the_connector_folders_and_paths_are_paths() {
        let t = tempfile::tempdir().unwrap();
        let elsewhere = t.path().join("elsewhere");
        connector(&elsewhere.join("source-tiny"));
        let locator = ConnectorLocator::given(vec![elsewhere.clone()]).unwrap();
        assert_eq!(
            locator.locate("source-tiny").unwrap(),
            elsewhere.join("source-tiny")
        );
        let absolute = elsewhere.join("source-tiny");
        assert_eq!(
            locator.locate(absolute.to_str().unwrap()).unwrap(),
            absolute
        );
        assert!(matches!(
            locator.locate("./source-nowhere"),
            Err(DiscoveryError::NoMetadata { .. })
        ));
    }

    #[test]
    fn a_name_in_the_current_folder_and_a_connector_folder_is_ambiguous() {
        // Relative to the current folder, as users type names: a folder made there.
        let cwd = std::env::current_dir().unwrap();
        let here = tempfile::Builder::new()
            .prefix("source-ambiguous-")
            .tempdir_in(&cwd)
            .unwrap();
        let name = here
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        std::fs::write(here.path().join(METADATA_FILE), "data: {}\n").unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        connector(&elsewhere.path().join(&name));
        let locator = ConnectorLocator::given(vec![elsewhere.path().to_path_buf()]).unwrap();
        let err = locator.locate(&name).unwrap_err().to_string();
        assert!(err.contains("is ambiguous"), "{err}");
        assert!(err.contains(&format!("./{name}")), "{err}");
        assert!(
            err.contains(&elsewhere.path().join(&name).display().to_string()),
            "{err}"
        );
        // Written as a path, it is that folder; and the current folder itself as the
        // connector folder is no ambiguity.
        assert_eq!(
            locator.locate(&format!("./{name}")).unwrap(),
            Path::new(&format!("./{name}"))
        );
        let same = ConnectorLocator::given(vec![cwd]).unwrap();
        assert_eq!(same.locate(&name).unwrap(), Path::new(&name));
    }

    #[test]
    fn a_connectors_dir_that_does_not_exist_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let err = ConnectorLocator::given(vec![t.path().join("nope")])
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("nope: no such folder"), "{err}");
        std::fs::write(t.path().join("file"), "").unwrap();
        let err = ConnectorLocator::given(vec![t.path().join("file")])
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("file: not a folder"), "{err}");
    }
}
