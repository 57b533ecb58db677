//! Releasing a new connector version: `dockerImageTag` in metadata.yaml, the version in
//! pyproject.toml when it has one, and a row in the changelog table of the connector's
//! documentation page when it exists. Used by `bump-version` and by the migration.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::version::{Bump, VersionError};
use crate::edit::{self, ChangelogEntry, EditError, FileChange};
use crate::error::error_chain;
use crate::model::connector::folder_name;
use crate::model::connector::METADATA_FILE;
use crate::model::{Connector, MetadataError};

#[derive(Debug, thiserror::Error)]
pub enum BumpError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    Edit(#[from] EditError),
    #[error("{path}:{line}: `data.dockerImageTag` cannot be bumped")]
    Version {
        path: PathBuf,
        line: usize,
        #[source]
        source: VersionError,
    },
}

/// The changelog row's text and links.
#[derive(Debug, Clone)]
pub struct ReleaseNote {
    pub subject: String,
    pub pull_request: Option<String>,
    /// `YYYY-MM-DD`.
    pub date: String,
}

/// A version change of one connector, not yet written.
#[derive(Debug, Clone, Serialize)]
pub struct Release {
    pub old_version: String,
    pub new_version: String,
    /// The documentation page given a changelog row; `None` when the connector has none.
    pub docs_page: Option<PathBuf>,
    #[serde(skip)]
    pub changes: Vec<FileChange>,
}

/// `docs/integrations/<sources|destinations>/<name>.md` in the nearest folder above the
/// connector that has `docs/integrations`, where `<name>` is the connector's name without
/// its type prefix (`source-faker` -> `faker.md`), as Airbyte's repository lays it out.
pub fn docs_page(connector: &Connector) -> Option<PathBuf> {
    let name = &connector.name;
    let (kind, short) = match connector.metadata.connector_type.as_deref() {
        Some(t) => (
            t.to_string(),
            name.strip_prefix(&format!("{t}-")).unwrap_or(name),
        ),
        None => {
            let (t, rest) = name.split_once('-')?;
            (t.to_string(), rest)
        }
    };
    let dir = std::path::absolute(&connector.dir).unwrap_or_else(|_| connector.dir.clone());
    for ancestor in dir.ancestors().skip(1) {
        let pages = ancestor
            .join("docs")
            .join("integrations")
            .join(format!("{kind}s"));
        if pages.is_dir() {
            return [short, name.as_str()]
                .iter()
                .map(|n| pages.join(format!("{n}.md")))
                .find(|p| p.is_file());
        }
        // The repository's root: a docs folder further up belongs to something else.
        if ancestor.join(".git").exists() {
            return None;
        }
    }
    None
}

fn read(path: &Path) -> Result<String, EditError> {
    std::fs::read_to_string(path).map_err(|source| EditError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The edits releasing `connector` at its bumped version. `metadata` is the text of its
/// metadata.yaml with any other edits of the same change already made (the migration sets
/// `baseImage` in the same write).
pub fn release(
    connector: &Connector,
    metadata: &str,
    bump: &Bump,
    note: &ReleaseNote,
) -> Result<Release, BumpError> {
    let tag = &connector.metadata.docker_image_tag;
    let meta_path = connector.dir.join(METADATA_FILE);
    let new_version =
        super::version::bump(&tag.value, bump).map_err(|source| BumpError::Version {
            path: meta_path.clone(),
            line: tag.loc.line,
            source,
        })?;
    let (meta_after, old_version) = edit::set_docker_image_tag(&meta_path, metadata, &new_version)?;
    let mut changes = vec![FileChange {
        before: Some(read(&meta_path)?),
        path: meta_path,
        after: Some(meta_after),
    }];

    let pyproject = connector.dir.join("pyproject.toml");
    if pyproject.is_file() {
        let text = read(&pyproject)?;
        if let Some((after, _)) = edit::set_pyproject_version(&pyproject, &text, &new_version)? {
            changes.push(FileChange {
                path: pyproject,
                before: Some(text),
                after: Some(after),
            });
        }
    }

    let docs = docs_page(connector);
    if let Some(page) = &docs {
        let text = read(page)?;
        let entry = ChangelogEntry {
            version: &new_version,
            date: &note.date,
            pull_request: note.pull_request.as_deref(),
            subject: &note.subject,
        };
        let after = edit::add_changelog_row(page, &text, &entry)?;
        changes.push(FileChange {
            path: page.clone(),
            before: Some(text),
            after: Some(after),
        });
    }
    Ok(Release {
        old_version,
        new_version,
        docs_page: docs,
        changes,
    })
}

#[derive(Debug, Serialize)]
pub struct BumpResult {
    pub connector: String,
    #[serde(flatten)]
    pub outcome: BumpOutcome,
}

#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BumpOutcome {
    Bumped {
        #[serde(flatten)]
        release: Release,
        /// The files changed (or that would be, with `--dry-run`).
        files: Vec<PathBuf>,
        written: bool,
    },
    Failed {
        error: String,
    },
}

/// `bump-version`: each connector on its own; one that fails is left untouched.
pub fn bump_versions(
    dirs: &[PathBuf],
    bump: &Bump,
    note: &ReleaseNote,
    dry_run: bool,
) -> Vec<BumpResult> {
    dirs.iter()
        .map(|dir| {
            let result = (|| -> Result<Release, BumpError> {
                let connector = Connector::load(dir)?;
                let metadata = read(&connector.dir.join(METADATA_FILE))?;
                let release = release(&connector, &metadata, bump, note)?;
                if !dry_run {
                    edit::apply_changes(&release.changes)?;
                }
                Ok(release)
            })();
            BumpResult {
                connector: folder_name(dir),
                outcome: match result {
                    Ok(release) => BumpOutcome::Bumped {
                        files: release.changes.iter().map(|c| c.path.clone()).collect(),
                        release,
                        written: !dry_run,
                    },
                    Err(e) => BumpOutcome::Failed {
                        error: error_chain(&e),
                    },
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(root: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (file, text) in files {
            let p = dir.join(file);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    const META: &str = "data:\n  connectorType: source\n  dockerImageTag: 1.2.3 # current\n  dockerRepository: airbyte/source-foo\n";

    #[test]
    fn a_release_edits_metadata_pyproject_and_changelog() {
        let root = tempfile::tempdir().unwrap();
        let docs = "# Foo\n\n## Changelog\n\n| Version | Date | Pull Request | Subject |\n|:--|:--|:--|:--|\n| 1.2.3 | 2024-01-01 | [1](https://github.com/airbytehq/airbyte/pull/1) | Old |\n";
        std::fs::create_dir_all(root.path().join("docs/integrations/sources")).unwrap();
        std::fs::write(root.path().join("docs/integrations/sources/foo.md"), docs).unwrap();
        let dir = connector(
            &root.path().join("airbyte-integrations/connectors"),
            "source-foo",
            &[
                ("metadata.yaml", META),
                ("pyproject.toml", "[tool.poetry]\nversion = \"1.2.3\"\n"),
            ],
        );
        let note = ReleaseNote {
            subject: "Bump".into(),
            pull_request: Some("42".into()),
            date: "2024-06-30".into(),
        };
        let results = bump_versions(
            std::slice::from_ref(&dir),
            &"rc".parse().unwrap(),
            &note,
            true,
        );
        let BumpOutcome::Bumped {
            release, written, ..
        } = &results[0].outcome
        else {
            panic!("{results:?}");
        };
        assert!(!written);
        assert_eq!(release.new_version, "1.2.4-rc.1");
        assert_eq!(release.changes.len(), 3);
        assert_eq!(
            release.changes[0].after.as_deref(),
            Some(META.replace("1.2.3", "1.2.4-rc.1").as_str())
        );
        assert_eq!(
            release.changes[1].after.as_deref(),
            Some("[tool.poetry]\nversion = \"1.2.4-rc.1\"\n")
        );
        assert!(release.changes[2]
            .after
            .as_deref()
            .unwrap()
            .contains("|:--|:--|:--|:--|\n| 1.2.4-rc.1 | 2024-06-30 | [42](https://github.com/airbytehq/airbyte/pull/42) | Bump |\n| 1.2.3 |"));
        // Dry run: nothing written.
        assert_eq!(
            std::fs::read_to_string(dir.join("metadata.yaml")).unwrap(),
            META
        );

        // A connector without docs page or pyproject gets the metadata edit only; a broken
        // one fails alone and is left as it was.
        let plain = connector(root.path(), "source-plain", &[("metadata.yaml", META)]);
        let broken = connector(
            root.path(),
            "source-broken",
            &[("metadata.yaml", &META.replace("1.2.3", "one"))],
        );
        let results = bump_versions(
            &[plain.clone(), broken.clone()],
            &"patch".parse().unwrap(),
            &note,
            false,
        );
        let BumpOutcome::Bumped { files, .. } = &results[0].outcome else {
            panic!("{results:?}");
        };
        assert_eq!(files, &[plain.join("metadata.yaml")]);
        assert_eq!(
            std::fs::read_to_string(plain.join("metadata.yaml")).unwrap(),
            META.replace("1.2.3", "1.2.4")
        );
        let BumpOutcome::Failed { error } = &results[1].outcome else {
            panic!("{results:?}");
        };
        assert!(
            error.contains("metadata.yaml:3: `data.dockerImageTag` cannot be bumped"),
            "{error}"
        );
        assert!(error.contains("`one` is not a semantic version"), "{error}");
    }
}
