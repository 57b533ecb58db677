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
}

/// Writes `contents` to `path` atomically, keeping the file's permissions.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), EditError> {
    let err = |source| EditError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    tmp.write_all(contents).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions()).map_err(err)?;
    }
    tmp.persist(path).map_err(|e| err(e.error))?;
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
    let doc = Document::parse(text).map_err(|e| EditError::Syntax {
        path: path.to_path_buf(),
        line: e.line,
        col: e.col,
        message: e.message,
    })?;
    let missing = |field: &str| EditError::Missing {
        path: path.to_path_buf(),
        field: field.into(),
        hint: "; pass --set-if-not-exists to add it",
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
    // Insert at the start of the line of `data`'s first key, with its indentation; inside
    // an existing `connectorBuildOptions` mapping when there is one.
    let (anchor, extra_indent, header) = match options {
        Some(o) if yaml::entries(&doc, o).is_some_and(|e| !e.is_empty()) => (o, "", false),
        _ => (data, "", true),
    };
    let first_key = yaml::entries(&doc, anchor)
        .and_then(|e| e.first().map(|(_, k, _)| doc.loc(k)))
        .ok_or_else(|| missing("data (a non-empty mapping)"))?;
    if options.is_some() && header {
        // `connectorBuildOptions:` with an empty or non-mapping value: too ambiguous to edit.
        return Err(missing("data.connectorBuildOptions.baseImage"));
    }
    let line_start = text[..first_key.start].rfind('\n').map_or(0, |i| i + 1);
    let indent = &text[line_start..first_key.start];
    if !indent.chars().all(|c| c == ' ') {
        return Err(missing("data.connectorBuildOptions.baseImage"));
    }
    let step = if indent.is_empty() { "  " } else { indent };
    let rendered = yaml::render_scalar(value);
    let insertion = if header {
        format!(
            "{indent}connectorBuildOptions:\n{indent}{step}{extra_indent}baseImage: {rendered}\n"
        )
    } else {
        format!("{indent}baseImage: {rendered}\n")
    };
    let mut out = String::with_capacity(text.len() + insertion.len());
    out.push_str(&text[..line_start]);
    out.push_str(&insertion);
    out.push_str(&text[line_start..]);
    Ok((out, Change::Inserted))
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
        let text = "data:\n  dockerRepository: airbyte/x # repo\n  dockerImageTag: 0.1.0\n  tags:\n    - language:python\n";
        assert!(set_base_image(Path::new("m.yaml"), text, REF, false).is_err());
        let (out, change) = set_base_image(Path::new("m.yaml"), text, REF, true).unwrap();
        assert_eq!(change, Change::Inserted);
        assert_eq!(
            out,
            format!("data:\n  connectorBuildOptions:\n    baseImage: {REF}\n  dockerRepository: airbyte/x # repo\n  dockerImageTag: 0.1.0\n  tags:\n    - language:python\n")
        );
        let m = crate::model::metadata::parse(Path::new("m.yaml"), &out).unwrap();
        assert_eq!(m.base_image().unwrap().value.repository, "a/b");
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
}
