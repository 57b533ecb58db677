//! Choosing connectors: by name, language, support level, changes against a git base, or a
//! query over their metadata. Every criterion given narrows the set (they intersect).

pub mod git;
pub mod query;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::connector::METADATA_FILE;
use crate::model::metadata::{self, Metadata, MetadataError};
use crate::model::yaml::{self, Document};
use crate::model::ConnectorKind;
use crate::model::{ConnectorLocator, DiscoveryError};

pub use self::query::{EvalError, Query, QueryData, QueryError};

/// What the user asked for. An empty selection means every connector found.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Names or folder paths.
    pub names: Vec<String>,
    /// `language:*` tag values; a connector matches any of them.
    pub languages: Vec<String>,
    /// `supportLevel` values; a connector matches any of them.
    pub support_levels: Vec<String>,
    pub modified: Modified,
    pub query: Option<Query>,
}

/// `--modified` and `--diff-base`: only connectors whose folder changed against a base.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Modified {
    /// Changes do not matter.
    #[default]
    No,
    /// Against the merge base with the default branch (see [`git::changed_files`]).
    SinceDefaultBase,
    /// Against this git revision.
    Since(String),
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
            && self.languages.is_empty()
            && self.support_levels.is_empty()
            && self.modified == Modified::No
            && self.query.is_none()
    }

    /// Whether a criterion needs the connector's metadata to be readable.
    fn reads_metadata(&self) -> bool {
        !self.languages.is_empty() || !self.support_levels.is_empty() || self.query.is_some()
    }
}

/// One selected connector. Its metadata is kept as read, so a listing can show a broken file
/// instead of hiding the connector.
#[derive(Debug)]
pub struct Selected {
    pub name: String,
    pub dir: PathBuf,
    pub metadata: Result<Metadata, MetadataError>,
}

/// The selected connectors (sorted by name, or in the order named) and what the user should
/// hear about.
#[derive(Debug, Default)]
pub struct SelectionResult {
    pub connectors: Vec<Selected>,
    /// Connectors left out because a criterion could not be decided for them (unreadable
    /// metadata, a query that raised), one line each.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    Git(#[from] git::GitError),
}

/// Applies `selection` to the connectors `locator` finds.
pub fn select(
    locator: &ConnectorLocator,
    selection: &Selection,
) -> Result<SelectionResult, SelectError> {
    let mut dirs: Vec<PathBuf> = if selection.names.is_empty() {
        locator.all()
    } else {
        selection
            .names
            .iter()
            .map(|n| locator.locate(n))
            .collect::<Result<_, _>>()?
    };
    let mut seen = BTreeSet::new();
    dirs.retain(|d| seen.insert(canonical(d)));

    let base = match &selection.modified {
        Modified::No => None,
        Modified::SinceDefaultBase => Some(None),
        Modified::Since(rev) => Some(Some(rev.as_str())),
    };
    let changed = match base {
        None => None,
        Some(base) => {
            let Some(repo_dir) = dirs.first().or(locator.dirs.iter().find(|d| d.is_dir())) else {
                return Ok(SelectionResult::default());
            };
            Some(git::changed_files(repo_dir, base)?)
        }
    };

    let mut result = SelectionResult::default();
    for dir in dirs {
        let name = folder_name(&dir);
        if let Some(changed) = &changed {
            let here = canonical(&dir);
            if !changed.iter().any(|f| f.starts_with(&here)) {
                continue;
            }
        }
        let (metadata, data) = load(&dir);
        if selection.reads_metadata() {
            let meta = match &metadata {
                Ok(m) => m,
                Err(e) => {
                    result.warnings.push(format!(
                        "{name}: left out, its metadata cannot be read: {e}"
                    ));
                    continue;
                }
            };
            if !selection.languages.is_empty()
                && !meta
                    .language()
                    .is_some_and(|l| selection.languages.iter().any(|w| w == l))
            {
                continue;
            }
            if !selection.support_levels.is_empty()
                && !meta
                    .support_level
                    .as_deref()
                    .is_some_and(|l| selection.support_levels.iter().any(|w| w == l))
            {
                continue;
            }
            if let Some(query) = &selection.query {
                match query.matches(&data) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        result.warnings.push(format!(
                            "{name}: --metadata-query raised `{e}`; counted as no match"
                        ));
                        continue;
                    }
                }
            }
        }
        result.connectors.push(Selected {
            name,
            dir,
            metadata,
        });
    }
    // `locator.all()` is sorted by name; named connectors keep the order they were given in.
    Ok(result)
}

/// The typed metadata and the whole `data` mapping as a generic value for queries.
fn load(dir: &Path) -> (Result<Metadata, MetadataError>, QueryData) {
    let path = dir.join(METADATA_FILE);
    let text = match metadata::read_text(&path) {
        Ok(t) => t,
        Err(e) => return (Err(e), QueryData::default()),
    };
    let data = Document::parse(&text)
        .ok()
        .and_then(|doc| {
            doc.root()
                .and_then(|root| yaml::get(root, "data"))
                .map(|d| QueryData::from_yaml(&doc, d))
        })
        .unwrap_or_default();
    (metadata::parse(&path, &text), data)
}

fn folder_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

fn canonical(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// One row of `connector-build list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing {
    pub name: String,
    pub language: Option<String>,
    /// How it is built, from the language: `python`, `manifest-only` or `java`.
    pub kind: Option<ConnectorKind>,
    pub support_level: Option<String>,
    pub version: Option<String>,
    pub connector_type: Option<String>,
    pub docker_repository: Option<String>,
    /// The full base image reference, or `None` when the connector has none.
    pub base_image: Option<String>,
    /// `base-image`, `dockerfile`, or `none`.
    pub build: &'static str,
    pub folder: PathBuf,
    /// Why the metadata could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Listing {
    pub fn of(s: &Selected) -> Listing {
        let dockerfile = s.dir.join("Dockerfile").is_file();
        let mut row = Listing {
            name: s.name.clone(),
            language: None,
            kind: None,
            support_level: None,
            version: None,
            connector_type: None,
            docker_repository: None,
            base_image: None,
            build: if dockerfile { "dockerfile" } else { "none" },
            folder: s.dir.clone(),
            error: None,
        };
        match &s.metadata {
            Ok(m) => {
                row.language = m.language().map(str::to_string);
                row.kind = Some(ConnectorKind::for_language(m.language()));
                row.support_level = m.support_level.clone();
                row.version = Some(m.docker_image_tag.value.clone());
                row.connector_type = m.connector_type.clone();
                row.docker_repository = Some(m.docker_repository.value.clone());
                if let Some(base) = m.base_image() {
                    row.base_image = Some(base.value.to_string());
                    row.build = "base-image";
                }
            }
            Err(e) => row.error = Some(e.to_string()),
        }
        row
    }
}

/// A plain-text table of listings, columns padded to their widest cell.
pub fn render_table(rows: &[Listing], cwd: &Path) -> String {
    let header = [
        "NAME",
        "LANGUAGE",
        "KIND",
        "SUPPORT",
        "VERSION",
        "BASE IMAGE",
        "FOLDER",
    ];
    let dash = || "-".to_string();
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let base = match (&r.base_image, r.build, &r.error) {
                (_, _, Some(_)) => "invalid metadata.yaml".to_string(),
                (Some(b), ..) => short_digest(b),
                (None, "dockerfile", _) => "Dockerfile".to_string(),
                _ => dash(),
            };
            [
                r.name.clone(),
                r.language.clone().unwrap_or_else(dash),
                r.kind.map_or_else(dash, |k| k.name().to_string()),
                r.support_level.clone().unwrap_or_else(dash),
                r.version.clone().unwrap_or_else(dash),
                base,
                r.folder
                    .strip_prefix(cwd)
                    .unwrap_or(&r.folder)
                    .display()
                    .to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cols: &[String]| {
        let mut l = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i + 1 == cols.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_string));
    for row in &cells {
        line(row);
    }
    out
}

/// `repo:tag@sha256:<12 hex>`: enough to tell images apart in a table.
fn short_digest(reference: &str) -> String {
    match reference.split_once("@sha256:") {
        Some((name, hex)) => format!("{name}@sha256:{}", &hex[..hex.len().min(12)]),
        None => reference.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEVELS: [&str; 3] = ["certified", "community", "archived"];
    const LANGUAGES: [&str; 4] = ["python", "low-code", "manifest-only", "java"];
    const COUNT: usize = 400;

    /// What the generator put in connector `i`.
    struct Gen {
        name: String,
        level: &'static str,
        language: &'static str,
        base_image: bool,
        /// `ab_internal.ql`: a number, a string (so `>` raises), or absent.
        ql: Option<Result<i64, &'static str>>,
        broken: bool,
    }

    fn gen(i: usize) -> Gen {
        Gen {
            name: format!(
                "{}-gen-{i:03}",
                if i % 7 == 0 { "destination" } else { "source" }
            ),
            level: LEVELS[i % 3],
            language: LANGUAGES[(i / 3) % 4],
            base_image: i % 5 != 0,
            ql: match i % 6 {
                0 => None,
                1 => Some(Err("high")),
                n => Some(Ok(n as i64 * 100)),
            },
            broken: i % 97 == 13,
        }
    }

    fn metadata_text(g: &Gen) -> String {
        if g.broken {
            return "data:\n  dockerRepository: [unclosed\n".into();
        }
        let mut s = format!(
            "data:\n  connectorType: {}\n  dockerRepository: airbyte/{}\n  dockerImageTag: 1.{}.0\n  supportLevel: {}\n  tags:\n    - language:{}\n    - cdk:python\n",
            g.name.split('-').next().unwrap_or("source"),
            g.name,
            g.name.len(),
            g.level,
            g.language
        );
        match g.ql {
            Some(Ok(n)) => s.push_str(&format!("  ab_internal:\n    ql: {n}\n    sl: 100\n")),
            Some(Err(text)) => s.push_str(&format!("  ab_internal:\n    ql: {text}\n")),
            None => {}
        }
        if g.base_image {
            s.push_str("  connectorBuildOptions:\n    baseImage: docker.io/airbyte/python-connector-base:1.1.0@sha256:bd98f6505c6764b1b5f99d3aedc23dfc9e9af631a62533f60eb32b1d3dbab20c\n");
        }
        s.push_str("metadataSpecVersion: \"1.0\"\n");
        s
    }

    /// A repository laid out like airbyte's, with `COUNT` generated connectors.
    fn repository() -> (tempfile::TempDir, ConnectorLocator, Vec<Gen>) {
        let root = tempfile::tempdir().unwrap();
        let connectors = root.path().join("airbyte-integrations/connectors");
        let gens: Vec<Gen> = (0..COUNT).map(gen).collect();
        for g in &gens {
            let dir = connectors.join(&g.name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(METADATA_FILE), metadata_text(g)).unwrap();
            if !g.base_image {
                std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
            }
        }
        // Not a connector: no metadata.yaml.
        std::fs::create_dir_all(connectors.join("README-only")).unwrap();
        let locator = ConnectorLocator::for_repository(root.path());
        (root, locator, gens)
    }

    fn names(r: &SelectionResult) -> Vec<String> {
        r.connectors.iter().map(|c| c.name.clone()).collect()
    }

    fn expected(gens: &[Gen], keep: impl Fn(&Gen) -> bool) -> Vec<String> {
        let mut v: Vec<String> = gens
            .iter()
            .filter(|g| !g.broken && keep(g))
            .map(|g| g.name.clone())
            .collect();
        v.sort();
        v
    }

    fn query(src: &str) -> Option<Query> {
        Some(Query::parse(src).unwrap())
    }

    #[test]
    fn each_criterion_and_their_intersection_on_a_large_repository() {
        let (_root, locator, gens) = repository();
        let broken = gens.iter().filter(|g| g.broken).count();
        assert!(broken >= 3);

        let all = select(&locator, &Selection::default()).unwrap();
        assert_eq!(all.connectors.len(), COUNT, "broken ones are listed too");
        assert!(all.warnings.is_empty());

        let by_language = select(
            &locator,
            &Selection {
                languages: vec!["low-code".into(), "java".into()],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            names(&by_language),
            expected(&gens, |g| matches!(g.language, "low-code" | "java"))
        );
        // Broken files cannot be judged: left out, each with a warning.
        assert_eq!(
            by_language.warnings.len(),
            broken,
            "{:?}",
            by_language.warnings
        );
        assert!(by_language.warnings[0].contains("left out, its metadata cannot be read"));

        let by_level = select(
            &locator,
            &Selection {
                support_levels: vec!["archived".into()],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(names(&by_level), expected(&gens, |g| g.level == "archived"));

        // The two queries from the migration guide.
        let migrated = select(
            &locator,
            &Selection {
                support_levels: vec!["certified".into()],
                query: query("data.connectorBuildOptions.baseImage is not None"),
                ..Default::default()
            },
        )
        .unwrap();
        let want = expected(&gens, |g| g.level == "certified" && g.base_image);
        assert!(want.len() > 50);
        assert_eq!(names(&migrated), want);
        assert_eq!(
            migrated.warnings.len(),
            broken,
            "a missing key is None, not an error"
        );

        let not_migrated = select(
            &locator,
            &Selection {
                query: query(
                    "data.supportLevel == 'certified' and 'connectorBuildOptions' not in data.keys()",
                ),
                ..Default::default()
            },
        )
        .unwrap();
        let want = expected(&gens, |g| g.level == "certified" && !g.base_image);
        assert!(want.len() > 10);
        assert_eq!(names(&not_migrated), want);

        // A query that raises for some connectors: those do not match, each with a warning.
        let raising = select(
            &locator,
            &Selection {
                query: query("data.ab_internal.ql >= 300"),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            names(&raising),
            expected(&gens, |g| matches!(g.ql, Some(Ok(n)) if n >= 300))
        );
        let raised: Vec<&String> = raising
            .warnings
            .iter()
            .filter(|w| w.contains("--metadata-query raised"))
            .collect();
        // As in Python, both a string and a missing value (None) cannot be ordered with 300.
        let unordered = gens
            .iter()
            .filter(|g| !g.broken && !matches!(g.ql, Some(Ok(_))))
            .count();
        assert_eq!(raised.len(), unordered);
        for kind in ["str", "NoneType"] {
            let message = format!("'>=' not supported between instances of '{kind}' and 'int'");
            assert!(raised.iter().any(|w| w.contains(&message)), "{raised:?}");
        }

        // Names intersect with the other criteria.
        let named = select(
            &locator,
            &Selection {
                names: vec![
                    gens[1].name.clone(),
                    gens[2].name.clone(),
                    gens[4].name.clone(),
                ],
                support_levels: vec!["community".into()],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            names(&named),
            expected(&gens[..5], |g| g.level == "community")
        );

        let missing = select(
            &locator,
            &Selection {
                names: vec!["source-nope".into()],
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(missing
            .to_string()
            .contains("connector `source-nope` not found"));
    }

    #[test]
    fn modified_connectors_are_those_whose_folder_changed_since_the_merge_base() {
        use super::git::tests::run;
        let (root, locator, gens) = repository();
        let dir = root.path();
        run(dir, &["init", "-q", "-b", "main"]);
        run(dir, &["add", "."]);
        run(dir, &["commit", "-q", "-m", "connectors"]);
        run(dir, &["checkout", "-q", "-b", "change"]);
        let connectors = dir.join("airbyte-integrations/connectors");
        // Committed, uncommitted, untracked and deleted changes all count.
        std::fs::write(connectors.join(&gens[3].name).join("main.py"), "x").unwrap();
        run(dir, &["add", "."]);
        run(dir, &["commit", "-q", "-m", "edit"]);
        std::fs::write(
            connectors.join(&gens[8].name).join(METADATA_FILE),
            metadata_text(&gens[8]) + "# edit\n",
        )
        .unwrap();
        std::fs::write(connectors.join(&gens[21].name).join("new.txt"), "x").unwrap();
        std::fs::remove_file(connectors.join(&gens[5].name).join("Dockerfile")).unwrap();
        // Outside any connector folder: selects nothing.
        std::fs::write(dir.join("top-level.md"), "x").unwrap();

        let modified = select(
            &locator,
            &Selection {
                modified: Modified::SinceDefaultBase,
                ..Default::default()
            },
        )
        .unwrap();
        let mut want: Vec<String> = [3, 5, 8, 21]
            .iter()
            .map(|i| gens[*i].name.clone())
            .collect();
        want.sort();
        assert_eq!(names(&modified), want);

        let and_certified = select(
            &locator,
            &Selection {
                modified: Modified::SinceDefaultBase,
                support_levels: vec!["certified".into()],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            names(&and_certified),
            expected(&gens[3..22], |g| g.level == "certified"
                && [3, 5, 8, 21].iter().any(|i| gens[*i].name == g.name))
        );

        let against_head = select(
            &locator,
            &Selection {
                modified: Modified::Since("HEAD".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            against_head.connectors.len(),
            3,
            "the committed edit is in HEAD"
        );
    }

    #[test]
    fn the_table_has_a_column_per_field() {
        let (root, locator, gens) = repository();
        let r = select(
            &locator,
            &Selection {
                names: vec![
                    gens[0].name.clone(),
                    gens[1].name.clone(),
                    gens[13].name.clone(),
                ],
                ..Default::default()
            },
        )
        .unwrap();
        let rows: Vec<Listing> = r.connectors.iter().map(Listing::of).collect();
        let table = render_table(&rows, root.path());
        insta::assert_snapshot!(table, @r"
        NAME                 LANGUAGE  KIND    SUPPORT    VERSION  BASE IMAGE                                                         FOLDER
        destination-gen-000  python    python  certified  1.19.0   Dockerfile                                                         airbyte-integrations/connectors/destination-gen-000
        source-gen-001       python    python  community  1.14.0   docker.io/airbyte/python-connector-base:1.1.0@sha256:bd98f6505c67  airbyte-integrations/connectors/source-gen-001
        source-gen-013       -         -       -          -        invalid metadata.yaml                                              airbyte-integrations/connectors/source-gen-013
        ");
    }
}
