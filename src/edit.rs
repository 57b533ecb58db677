//! Edits to users' files that change one value and keep every other byte.
//!
//! Writes go to a temporary file in the same folder that is renamed over the original, so a
//! failure at any point leaves the old file whole.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::model::yaml::{self, Document};

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}; the original file is unchanged")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: invalid YAML: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{path}: `{field}` is not in the file{hint}")]
    Missing {
        path: PathBuf,
        field: String,
        hint: &'static str,
    },
    #[error("{path}: invalid TOML: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("{path}: no changelog table; it needs a header row like `| Version | Date | Pull Request | Subject |` followed by `|---|---|---|---|`, under a `## Changelog` heading")]
    NoChangelog { path: PathBuf },
    #[error("{path} changed since it was read; nothing was written, run the command again")]
    Changed { path: PathBuf },
    #[error("cannot remove {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{failed}; the files already written were restored{}", unrestored_text(.unrestored))]
    Apply {
        failed: Box<EditError>,
        unrestored: Vec<PathBuf>,
    },
}

fn unrestored_text(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return String::new();
    }
    let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    format!(
        ", except {} (restore them from version control)",
        list.join(", ")
    )
}

/// Writes `contents` to `path` atomically, keeping the file's permissions.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), EditError> {
    replace_file(path, contents).map_err(|source| EditError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// [`write_atomic`] for callers with their own error type: through a temporary file beside
/// `path` (synced, then renamed), so a reader never sees half a file.
pub fn replace_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions())?;
    } else {
        // A new file: readable like any other in the repository, not the temp file's 0600.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))?;
        }
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// What setting a metadata value did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Unchanged,
    Replaced { old: String },
    Inserted,
}

/// Sets `data.connectorBuildOptions.baseImage` in the text of a metadata.yaml. With `insert`,
/// adds the key (and its parent mapping) when missing, indented like its siblings.
pub fn set_base_image(
    path: &Path,
    text: &str,
    value: &str,
    insert: bool,
) -> Result<(String, Change), EditError> {
    let doc = parse_yaml(path, text)?;
    let missing = |field: &str| EditError::Missing {
        path: path.to_path_buf(),
        field: field.into(),
        hint: "\nhint: pass --set-if-not-exists to add it",
    };
    let data = doc
        .root()
        .and_then(|r| yaml::get(r, "data"))
        .ok_or_else(|| EditError::Missing {
            path: path.to_path_buf(),
            field: "data".into(),
            hint: "",
        })?;
    let options = yaml::get(data, "connectorBuildOptions");
    if let Some(node) = options.and_then(|o| yaml::get(o, "baseImage")) {
        let old = yaml::scalar_text(&doc, node)
            .unwrap_or_default()
            .into_owned();
        if old == value {
            return Ok((text.to_string(), Change::Unchanged));
        }
        let out = yaml::replace_scalar(text, doc.loc(node), value);
        return Ok((out, Change::Replaced { old }));
    }
    if !insert {
        return Err(missing("data.connectorBuildOptions.baseImage"));
    }
    // Inside an existing non-empty `connectorBuildOptions` mapping: as its first key.
    if let Some(o) = options {
        let first = yaml::entries(&doc, o)
            .and_then(|e| e.first().map(|(_, k, _)| doc.loc(k)))
            // `connectorBuildOptions:` with an empty or non-mapping value: too ambiguous.
            .ok_or_else(|| missing("data.connectorBuildOptions.baseImage"))?;
        let at = line_start(text, first.start);
        let indent = block_indent(text, at, first.start)
            .ok_or_else(|| missing("data.connectorBuildOptions.baseImage"))?;
        let insertion = format!("{indent}baseImage: {}\n", yaml::render_scalar(value));
        return Ok((splice(text, at, &insertion), Change::Inserted));
    }
    // A new `connectorBuildOptions` where upstream puts it: after the connectorSubtype /
    // connectorType keys, else at the end of `data`; indented like `data`'s keys.
    let entries = yaml::entries(&doc, data)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| missing("data (a non-empty mapping)"))?;
    let first = doc.loc(entries[0].1);
    let indent = block_indent(text, line_start(text, first.start), first.start)
        .ok_or_else(|| missing("data.connectorBuildOptions.baseImage"))?;
    let after = entries
        .iter()
        .rposition(|(k, _, _)| k == "connectorSubtype" || k == "connectorType")
        .unwrap_or(entries.len() - 1);
    // The key that follows: the next one in `data`, else the next top-level one.
    let next = entries
        .get(after + 1)
        .map(|(_, k, _)| doc.loc(k))
        .or_else(|| {
            let top = doc.root().and_then(|r| yaml::entries(&doc, r))?;
            let i = top.iter().position(|(k, _, _)| k == "data")?;
            top.get(i + 1).map(|(_, k, _)| doc.loc(k))
        });
    let step = if indent.is_empty() { "  " } else { indent };
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let lines = format!(
        "{indent}connectorBuildOptions:{newline}{indent}{step}baseImage: {}",
        yaml::render_scalar(value)
    );
    let out = match next {
        Some(key) => splice(
            text,
            before_leading_comments(text, line_start(text, key.start)),
            &format!("{lines}{newline}"),
        ),
        // At the end of the file, after its last line; its trailing line breaks stay last.
        None => splice(
            text,
            text.trim_end_matches(['\n', '\r', ' ', '\t']).len(),
            &format!("{newline}{lines}"),
        ),
    };
    Ok((out, Change::Inserted))
}

/// The byte offset where the line holding `pos` starts.
fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// The spaces before a key that starts its line; `None` for a key in a flow mapping or
/// after tabs.
fn block_indent(text: &str, line_start: usize, key: usize) -> Option<&str> {
    let indent = &text[line_start..key];
    indent.chars().all(|c| c == ' ').then_some(indent)
}

/// Moves `at` (a line start) up over the blank and comment lines right above it: they
/// belong to the key on its line.
fn before_leading_comments(text: &str, mut at: usize) -> usize {
    while at > 0 {
        let prev = line_start(text, at - 1);
        let line = text[prev..at].trim();
        if !(line.is_empty() || line.starts_with('#')) {
            break;
        }
        at = prev;
    }
    at
}

fn splice(text: &str, at: usize, insertion: &str) -> String {
    let mut out = String::with_capacity(text.len() + insertion.len());
    out.push_str(&text[..at]);
    out.push_str(insertion);
    out.push_str(&text[at..]);
    out
}

fn parse_yaml<'a>(path: &Path, text: &'a str) -> Result<Document<'a>, EditError> {
    Document::parse(text).map_err(|e| EditError::Syntax {
        path: path.to_path_buf(),
        line: e.line,
        col: e.col,
        message: e.message,
    })
}

/// Sets `data.dockerImageTag`, replacing only its scalar. Returns the new text and the old
/// value.
pub fn set_docker_image_tag(
    path: &Path,
    text: &str,
    value: &str,
) -> Result<(String, String), EditError> {
    let doc = parse_yaml(path, text)?;
    let node = doc
        .root()
        .and_then(|r| yaml::get(r, "data"))
        .and_then(|d| yaml::get(d, "dockerImageTag"))
        .ok_or_else(|| EditError::Missing {
            path: path.to_path_buf(),
            field: "data.dockerImageTag".into(),
            hint: "",
        })?;
    let old = yaml::scalar_text(&doc, node)
        .unwrap_or_default()
        .into_owned();
    Ok((yaml::replace_scalar(text, doc.loc(node), value), old))
}

/// The `version` of a pyproject.toml: `[project]` and `[tool.poetry]` (a file may have both,
/// they are kept equal). `None` when it declares none (e.g. a file of tool settings only, or
/// a dynamic version).
pub fn pyproject_version(path: &Path, text: &str) -> Result<Option<String>, EditError> {
    Ok(pyproject_version_spans(path, text)?
        .first()
        .map(|(_, v)| v.clone()))
}

fn pyproject_version_spans(
    path: &Path,
    text: &str,
) -> Result<Vec<(std::ops::Range<usize>, String)>, EditError> {
    let doc = toml_edit::Document::parse(text).map_err(|e| EditError::Toml {
        path: path.to_path_buf(),
        message: e.message().to_string(),
    })?;
    let mut spans = Vec::new();
    let tables = [
        doc.get("project"),
        doc.get("tool").and_then(|t| t.get("poetry")),
    ];
    for item in tables.into_iter().flatten() {
        if let Some(v) = item.get("version") {
            if let (Some(value), Some(span)) = (v.as_str(), v.span()) {
                spans.push((span, value.to_string()));
            }
        }
    }
    spans.sort_by_key(|(span, _)| span.start);
    Ok(spans)
}

/// Sets the version in a pyproject.toml, replacing only the string(s), with their quotes.
/// `None` when the file declares no version.
pub fn set_pyproject_version(
    path: &Path,
    text: &str,
    value: &str,
) -> Result<Option<(String, String)>, EditError> {
    let spans = pyproject_version_spans(path, text)?;
    let Some((_, old)) = spans.first().cloned() else {
        return Ok(None);
    };
    let mut out = String::with_capacity(text.len() + value.len());
    let mut at = 0;
    for (span, _) in &spans {
        let quote = if text[span.clone()].starts_with('\'') {
            "'"
        } else {
            "\""
        };
        out.push_str(&text[at..span.start]);
        out.push_str(&format!("{quote}{value}{quote}"));
        at = span.end;
    }
    out.push_str(&text[at..]);
    Ok(Some((out, old)))
}

/// Where Airbyte links pull requests from changelog rows.
pub const PULL_REQUEST_URL: &str = "https://github.com/airbytehq/airbyte/pull/";

/// One row of a documentation page's changelog table.
#[derive(Debug, Clone)]
pub struct ChangelogEntry<'a> {
    pub version: &'a str,
    /// `YYYY-MM-DD`.
    pub date: &'a str,
    /// The pull request number; the cell stays empty without one.
    pub pull_request: Option<&'a str>,
    pub subject: &'a str,
}

impl ChangelogEntry<'_> {
    pub fn row(&self) -> String {
        self.row_aligned(&[])
    }

    /// The row with each cell padded to `widths`, the table's column widths (longer text
    /// is kept whole).
    pub fn row_aligned(&self, widths: &[usize]) -> String {
        let pr = self
            .pull_request
            .map(|n| format!("[{n}]({PULL_REQUEST_URL}{n})"))
            .unwrap_or_default();
        // A `|` in the text would end the cell; newlines would end the row.
        let subject = self.subject.replace('|', "\\|").replace(['\r', '\n'], " ");
        let cells = [self.version, self.date, &pr, subject.trim()];
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0)))
            .collect();
        format!("| {} |", padded.join(" | "))
    }
}

fn row_cells(row: &str) -> Vec<&str> {
    let t = row.trim();
    let t = t.strip_prefix('|').unwrap_or(t);
    let t = t.strip_suffix('|').unwrap_or(t);
    t.split('|').collect()
}

/// The column widths to pad a new row to: those of the separator row (each cell's length
/// less the two spaces around a cell's text, so `| :----- |` and `|:-------|` are both 6)
/// when the table's first row is padded; none when its rows are written compactly
/// (`| 0.3.1 | ... |`) or it has no row to tell.
fn column_widths(separator: &str, first_row: Option<&str>) -> Vec<usize> {
    let padded = first_row.is_some_and(|row| {
        row_cells(row)
            .iter()
            .any(|c| c.trim().chars().count() + 2 < c.chars().count())
    });
    if !padded {
        return vec![];
    }
    row_cells(separator)
        .iter()
        .map(|c| c.chars().count().saturating_sub(2))
        .collect()
}

fn is_changelog_header(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    l.trim_start().starts_with('|')
        && ["version", "date", "pull request", "subject"]
            .iter()
            .all(|w| l.contains(w))
}

fn is_separator_row(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('|') && t.contains('-') && t.chars().all(|c| "|-: ".contains(c))
}

/// Adds `entry` as the first row of the changelog table (the one under a "Changelog"
/// heading, else the first with Version/Date/Pull Request/Subject columns); every other byte
/// stays.
pub fn add_changelog_row(
    path: &Path,
    text: &str,
    entry: &ChangelogEntry<'_>,
) -> Result<String, EditError> {
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    // Byte offset where each line starts, and the line without its ending.
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut start = 0;
    for piece in text.split_inclusive('\n') {
        lines.push((start, piece.trim_end_matches(['\n', '\r'])));
        start += piece.len();
    }
    let heading = lines
        .iter()
        .position(|(_, l)| l.starts_with('#') && l.to_ascii_lowercase().contains("changelog"));
    let table_after = |from: usize| {
        (from..lines.len().saturating_sub(1))
            .find(|&i| is_changelog_header(lines[i].1) && is_separator_row(lines[i + 1].1))
    };
    let header = heading
        .and_then(table_after)
        .or_else(|| table_after(0))
        .ok_or_else(|| EditError::NoChangelog {
            path: path.to_path_buf(),
        })?;
    let separator_end = match lines.get(header + 2) {
        Some((offset, _)) => *offset,
        None => text.len(),
    };
    let mut out = String::with_capacity(text.len() + 120);
    out.push_str(&text[..separator_end]);
    if !out.ends_with('\n') {
        // The separator was the last line, without a line break.
        out.push_str(newline);
    }
    let first_row = lines
        .get(header + 2)
        .map(|(_, l)| *l)
        .filter(|l| l.trim_start().starts_with('|'));
    out.push_str(&entry.row_aligned(&column_widths(lines[header + 1].1, first_row)));
    out.push_str(newline);
    out.push_str(&text[separator_end..]);
    Ok(out)
}

/// A change to one file: created (`before` is `None`), edited, or removed (`after` is
/// `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: PathBuf,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl FileChange {
    /// A unified diff, as `git diff` shows it (`/dev/null` for a created or removed file).
    pub fn diff(&self) -> String {
        let shown = self.path.display().to_string();
        let old_name = if self.before.is_some() {
            format!("a/{shown}")
        } else {
            "/dev/null".into()
        };
        let new_name = if self.after.is_some() {
            format!("b/{shown}")
        } else {
            "/dev/null".into()
        };
        let before = self.before.as_deref().unwrap_or("");
        let after = self.after.as_deref().unwrap_or("");
        similar::TextDiff::from_lines(before, after)
            .unified_diff()
            .context_radius(3)
            .header(&old_name, &new_name)
            .missing_newline_hint(true)
            .to_string()
    }
}

/// Writes every change or none: new contents are staged next to their files first, removals
/// come last, and when a step fails the files already changed get their old contents back.
/// A file that changed on disk since `before` was read stops everything before any write.
pub fn apply_changes(changes: &[FileChange]) -> Result<(), EditError> {
    for c in changes {
        let now = match std::fs::read_to_string(&c.path) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(EditError::Read {
                    path: c.path.clone(),
                    source,
                })
            }
        };
        if now != c.before {
            return Err(EditError::Changed {
                path: c.path.clone(),
            });
        }
    }
    let mut ordered: Vec<&FileChange> = changes.iter().filter(|c| c.after.is_some()).collect();
    ordered.extend(changes.iter().filter(|c| c.after.is_none()));
    let mut done: Vec<&FileChange> = Vec::new();
    for c in ordered {
        let step = match &c.after {
            Some(after) => write_atomic(&c.path, after.as_bytes()),
            None => std::fs::remove_file(&c.path).map_err(|source| EditError::Remove {
                path: c.path.clone(),
                source,
            }),
        };
        if let Err(failed) = step {
            let mut unrestored = Vec::new();
            for d in done.iter().rev() {
                let undone = match &d.before {
                    Some(before) => write_atomic(&d.path, before.as_bytes()).is_ok(),
                    None => std::fs::remove_file(&d.path).is_ok(),
                };
                if !undone {
                    unrestored.push(d.path.clone());
                }
            }
            return Err(EditError::Apply {
                failed: Box::new(failed),
                unrestored,
            });
        }
        done.push(c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = "data:\n  # the base\n  connectorBuildOptions:\n    baseImage: a/b:1@sha256:00 # pinned\n  dockerRepository: airbyte/x\n";

    #[test]
    fn replaces_only_the_value() {
        let (out, change) =
            set_base_image(Path::new("m.yaml"), META, "c/d:2@sha256:11", false).unwrap();
        assert_eq!(out, META.replace("a/b:1@sha256:00", "c/d:2@sha256:11"));
        assert_eq!(
            change,
            Change::Replaced {
                old: "a/b:1@sha256:00".into()
            }
        );
        let (again, change) =
            set_base_image(Path::new("m.yaml"), &out, "c/d:2@sha256:11", false).unwrap();
        assert_eq!(again, out);
        assert_eq!(change, Change::Unchanged);
    }

    #[test]
    fn inserts_when_asked() {
        const REF: &str =
            "a/b:1@sha256:44b7f161ed03f85e96d423b9916cdc8cb0509fb970fd643bdbc9896d49e1cad0";
        let opts = format!("  connectorBuildOptions:\n    baseImage: {REF}\n");
        // No connectorSubtype/connectorType: at the end of `data`, here the end of the file.
        let text = "data:\n  dockerRepository: airbyte/x # repo\n  dockerImageTag: 0.1.0\n  tags:\n    - language:python\n";
        assert!(set_base_image(Path::new("m.yaml"), text, REF, false).is_err());
        let (out, change) = set_base_image(Path::new("m.yaml"), text, REF, true).unwrap();
        assert_eq!(change, Change::Inserted);
        assert_eq!(out, format!("{text}{opts}"));
        let m = crate::model::metadata::parse(Path::new("m.yaml"), &out).unwrap();
        assert_eq!(m.base_image().unwrap().value.repository, "a/b");
        // ... before the next top-level key (and the comments above it), without a final
        // line break too.
        let text = "data:\n  name: X\n  tags:\n    - language:python\n\n# the spec version\nmetadataSpecVersion: \"1.0\"";
        let (out, _) = set_base_image(Path::new("m.yaml"), text, REF, true).unwrap();
        assert_eq!(
            out,
            text.replace("\n\n# the spec", &format!("\n{opts}\n# the spec"))
        );
        let (out, _) = set_base_image(Path::new("m.yaml"), "data:\n  name: X", REF, true).unwrap();
        assert_eq!(out, format!("data:\n  name: X\n{}", opts.trim_end()));

        // After the connectorSubtype/connectorType keys, whichever comes last.
        let text = "data:\n  allowedHosts:\n    hosts: [x]\n  connectorSubtype: api\n  connectorType: source # kind\n  # the id\n  definitionId: 1\n  dockerImageTag: 0.1.0\n";
        let (out, _) = set_base_image(Path::new("m.yaml"), text, REF, true).unwrap();
        assert_eq!(
            out,
            text.replace("  # the id", &format!("{opts}  # the id"))
        );
        let text = "data:\n  connectorType: source\n  connectorSubtype: api\n  definitionId: 1\n";
        let (out, _) = set_base_image(Path::new("m.yaml"), text, REF, true).unwrap();
        assert_eq!(
            out,
            text.replace("  definitionId", &format!("{opts}  definitionId"))
        );
        // Inside an existing mapping, as its first key.
        let text = "data:\n  connectorBuildOptions:\n    other: 1\n  connectorType: source\n";
        let (out, _) = set_base_image(Path::new("m.yaml"), text, REF, true).unwrap();
        assert_eq!(
            out,
            text.replace("    other", &format!("    baseImage: {REF}\n    other"))
        );
        assert!(set_base_image(
            Path::new("m.yaml"),
            "data:\n  connectorBuildOptions:\n  name: X\n",
            REF,
            true
        )
        .is_err());
    }

    #[test]
    fn atomic_write_keeps_old_file_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metadata.yaml");
        std::fs::write(&p, "old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        let missing_dir = dir.path().join("nope/metadata.yaml");
        assert!(write_atomic(&missing_dir, b"x").is_err());
    }

    #[test]
    fn bumps_the_tag_and_nothing_else() {
        let text = "data:\n  # version\n  dockerImageTag: 1.0.11 # released\n  dockerRepository: airbyte/x\n";
        let (out, old) = set_docker_image_tag(Path::new("m.yaml"), text, "1.0.12").unwrap();
        assert_eq!(old, "1.0.11");
        assert_eq!(out, text.replace("1.0.11", "1.0.12"));
        let quoted = "data:\n  dockerImageTag: \"0.1.0\"\n";
        let (out, _) = set_docker_image_tag(Path::new("m.yaml"), quoted, "0.1.1-rc.1").unwrap();
        assert_eq!(out, "data:\n  dockerImageTag: \"0.1.1-rc.1\"\n");
        let err = set_docker_image_tag(Path::new("m.yaml"), "data:\n  a: 1\n", "1.0.0")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("m.yaml: `data.dockerImageTag` is not in the file"),
            "{err}"
        );
    }

    #[test]
    fn pyproject_versions_keep_quotes_comments_and_layout() {
        let text = "[tool.poetry]\nname = \"x\"\nversion   =   '0.3.1'  # same as the tag\n\n[project]\nversion = \"0.3.1\"\n[tool.black]\nline-length = 140\n";
        let (out, old) = set_pyproject_version(Path::new("p.toml"), text, "0.3.2")
            .unwrap()
            .unwrap();
        assert_eq!(old, "0.3.1");
        assert_eq!(out, text.replace("0.3.1", "0.3.2"));
        assert_eq!(
            pyproject_version(Path::new("p.toml"), &out)
                .unwrap()
                .as_deref(),
            Some("0.3.2")
        );
        let tools_only = "[tool.black]\nline-length = 140\n";
        assert!(
            set_pyproject_version(Path::new("p.toml"), tools_only, "1.0.0")
                .unwrap()
                .is_none()
        );
        let err = set_pyproject_version(Path::new("p.toml"), "[project\n", "1.0.0")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.toml: invalid TOML"), "{err}");
    }

    const DOC: &str = "# Foo\n\n| Version | Date | Pull Request | Subject |\n|--|--|--|--|\n| 9 | x | y | not the changelog |\n\n## Changelog\n\n<details>\n\n| Version | Date       | Pull Request                                             | Subject        |\n| :------ | :--------- | :------------------------------------------------------- | :------------- |\n| 0.1.0   | 2024-01-02 | [1](https://github.com/airbytehq/airbyte/pull/1)         | Initial        |\n\n</details>\n";

    #[test]
    fn changelog_row_goes_first_in_the_changelog_table() {
        let entry = ChangelogEntry {
            version: "0.1.1",
            date: "2024-06-30",
            pull_request: Some("123"),
            subject: "Fix | pipes\nand lines",
        };
        let out = add_changelog_row(Path::new("d.md"), DOC, &entry).unwrap();
        // Padded to the columns' widths, like the rows already there.
        let row = "| 0.1.1   | 2024-06-30 | [123](https://github.com/airbytehq/airbyte/pull/123)     | Fix \\| pipes and lines |\n";
        assert_eq!(out, DOC.replace("| 0.1.0 ", &format!("{row}| 0.1.0 ")));
        let lengths = |l: &str| l.split('|').map(str::len).collect::<Vec<_>>();
        let (new, old) = (row.lines().next().unwrap(), "| 0.1.0   | 2024-01-02 | [1](https://github.com/airbytehq/airbyte/pull/1)         | Initial        |");
        assert_eq!(lengths(new)[..4], lengths(old)[..4]);

        // Without a Changelog heading the first such table is used; a compact table gets
        // a compact row; CRLF files stay CRLF.
        let crlf = "| Version | Date | Pull Request | Subject |\r\n|---|---|---|---|";
        let entry = ChangelogEntry {
            pull_request: None,
            ..entry
        };
        let out = add_changelog_row(Path::new("d.md"), crlf, &entry).unwrap();
        assert_eq!(
            out,
            format!("{crlf}\r\n| 0.1.1 | 2024-06-30 |  | Fix \\| pipes and lines |\r\n")
        );
        let padded = Some("| 1.0   | x |");
        assert_eq!(column_widths("| :-- | --: |", padded), [3, 3]);
        assert_eq!(column_widths("|:-----|---|", padded), [4, 1]);
        // Rows written compactly get a compact row, whatever the separator.
        assert!(column_widths("|:-----|---|", Some("| 1.0 | x |")).is_empty());
        let err = add_changelog_row(Path::new("d.md"), "# Foo\n", &entry)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("d.md: no changelog table"), "{err}");
    }

    #[test]
    fn changes_apply_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        let gone = dir.path().join("Dockerfile");
        std::fs::write(&a, "old a").unwrap();
        std::fs::write(&gone, "FROM x").unwrap();
        let new = dir.path().join("new.py");
        let changes = vec![
            FileChange {
                path: gone.clone(),
                before: Some("FROM x".into()),
                after: None,
            },
            FileChange {
                path: a.clone(),
                before: Some("old a".into()),
                after: Some("new a".into()),
            },
            FileChange {
                path: new.clone(),
                before: None,
                after: Some("print()\n".into()),
            },
        ];
        assert!(changes[1]
            .diff()
            .contains("-old a\n\\ No newline at end of file\n+new a"));
        assert!(changes[2].diff().starts_with("--- /dev/null\n+++ b/"));
        assert!(changes[0].diff().contains("+++ /dev/null"));

        // A failing step (here: a file whose folder vanished) restores what was written.
        let broken = FileChange {
            path: dir.path().join("missing/x"),
            before: None,
            after: Some("x".into()),
        };
        let mut with_failure = changes.clone();
        with_failure.push(broken);
        let err = apply_changes(&with_failure).unwrap_err().to_string();
        assert!(
            err.contains("the files already written were restored"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old a");
        assert!(gone.is_file() && !new.exists());

        // A file edited behind our back stops everything.
        std::fs::write(&a, "edited").unwrap();
        let err = apply_changes(&changes).unwrap_err().to_string();
        assert!(err.contains("changed since it was read"), "{err}");
        std::fs::write(&a, "old a").unwrap();

        apply_changes(&changes).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new a");
        assert!(!gone.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&new).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }
}
