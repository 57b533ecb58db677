//! Releasing a new connector version: `dockerImageTag` in metadata.yaml, the version in
//! pyproject.toml when it has one, and a row in the changelog table of the connector's
//! documentation page when it exists. Used by `bump-version` and by the migration. Bumps
//! follow airbyte-ci, which used Python's `semver`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use crate::edit::{self, ChangelogEntry, EditError, FileChange};
use crate::error::error_chain;
use crate::model::connector::folder_name;
use crate::model::connector::METADATA_FILE;
use crate::model::version::{Version, VersionError};
use crate::model::{Connector, MetadataError};

/// How to change a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bump {
    Major,
    Minor,
    Patch,
    /// A release candidate: `1.2.3` -> `1.2.4-rc.1`, `1.2.4-rc.1` -> `1.2.4-rc.2`.
    Rc,
    /// `version:X.Y.Z`: exactly this version.
    To(Version),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BumpParseError {
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error("`{text}` is not a bump: use major, minor, patch, rc or version:X.Y.Z")]
    Unknown { text: String },
}

impl FromStr for Bump {
    type Err = BumpParseError;

    fn from_str(text: &str) -> Result<Self, BumpParseError> {
        match text {
            "major" => Ok(Bump::Major),
            "minor" => Ok(Bump::Minor),
            "patch" => Ok(Bump::Patch),
            "rc" => Ok(Bump::Rc),
            _ => match text.strip_prefix("version:") {
                Some(v) => Ok(Bump::To(v.parse()?)),
                None => Err(BumpParseError::Unknown {
                    text: text.to_string(),
                }),
            },
        }
    }
}

/// The version after `bump`. major/minor/patch always increment and drop any pre-release
/// and build metadata, as Python's `semver` (and so airbyte-ci) did: `1.2.4-rc.1` -> patch
/// -> `1.2.5`; releasing the candidate itself is `version:1.2.4`.
pub fn bumped(v: &Version, bump: &Bump) -> Result<Version, VersionError> {
    let semver::Version {
        major,
        minor,
        patch,
        ..
    } = v.0;
    Ok(match bump {
        Bump::Major => Version::release(major + 1, 0, 0),
        Bump::Minor => Version::release(major, minor + 1, 0),
        Bump::Patch => Version::release(major, minor, patch + 1),
        Bump::Rc if v.0.pre.is_empty() => {
            with_pre(Version::release(major, minor, patch + 1), "rc.1")?
        }
        Bump::Rc => with_pre(
            Version::release(major, minor, patch),
            &next_prerelease(v.0.pre.as_str()),
        )?,
        Bump::To(v) => v.clone(),
    })
}

fn with_pre(mut v: Version, pre: &str) -> Result<Version, VersionError> {
    v.0.pre = semver::Prerelease::new(pre).map_err(|e| VersionError {
        text: format!("{v}-{pre}"),
        reason: e.to_string(),
    })?;
    Ok(v)
}

/// `rc.1` -> `rc.2`, `beta` -> `beta.1`: the last numeric identifier goes up by one, or
/// `.1` is appended.
fn next_prerelease(pre: &str) -> String {
    let mut ids: Vec<String> = pre.split('.').map(str::to_string).collect();
    match ids.last().and_then(|id| id.parse::<u64>().ok()) {
        Some(n) => {
            if let Some(last) = ids.last_mut() {
                *last = (n + 1).to_string();
            }
        }
        None => ids.push("1".into()),
    }
    ids.join(".")
}

/// The version after applying `bump` to `current`.
pub fn bump_text(current: &str, bump: &Bump) -> Result<String, VersionError> {
    Ok(bumped(&current.parse()?, bump)?.to_string())
}

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
    let new_version = bump_text(&tag.value, bump).map_err(|source| BumpError::Version {
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

    fn b(current: &str, how: &str) -> String {
        bump_text(current, &how.parse().unwrap()).unwrap()
    }

    #[test]
    fn bumps_like_airbyte_ci() {
        assert_eq!(b("1.2.3", "patch"), "1.2.4");
        assert_eq!(b("1.2.3", "minor"), "1.3.0");
        assert_eq!(b("1.2.3", "major"), "2.0.0");
        assert_eq!(b("0.9.19", "patch"), "0.9.20");
        assert_eq!(b("1.2.3", "rc"), "1.2.4-rc.1");
        assert_eq!(b("1.2.4-rc.1", "rc"), "1.2.4-rc.2");
        assert_eq!(b("1.2.4-rc.9", "rc"), "1.2.4-rc.10");
        assert_eq!(b("1.2.4-beta", "rc"), "1.2.4-beta.1");
        assert_eq!(b("1.2.4-rc.1", "patch"), "1.2.5");
        assert_eq!(b("1.2.4-rc.1", "minor"), "1.3.0");
        assert_eq!(b("1.2.3+build.7", "patch"), "1.2.4");
        assert_eq!(b("1.2.4-rc.2", "version:1.2.4"), "1.2.4");
        assert_eq!(b("1.2.3", "version:3.0.0-rc.1"), "3.0.0-rc.1");
    }

    #[test]
    fn bad_input_is_an_error_that_says_why() {
        assert!("huge"
            .parse::<Bump>()
            .unwrap_err()
            .to_string()
            .contains("major, minor, patch, rc or version:X.Y.Z"));
        assert!("version:1.2"
            .parse::<Bump>()
            .unwrap_err()
            .to_string()
            .contains("`1.2` is not a semantic version"));
        assert!(bump_text("latest", &Bump::Patch).is_err());
        assert!(bump_text("1.0.0-rc.01", &Bump::Rc).is_err());
    }

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
