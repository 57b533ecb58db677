//! Reading the TOML files of Python projects and their locks (pyproject.toml, poetry.lock,
//! uv.lock, pylock.toml): one error for a key of the wrong type or shape, and the readers
//! the lock formats share.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

/// A key has the wrong type or shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: `{key}` {message}", .path.display())]
pub struct FieldError {
    pub path: PathBuf,
    pub key: String,
    pub message: String,
}

pub fn invalid(path: &Path, key: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        path: path.to_path_buf(),
        key: key.into(),
        message: message.into(),
    }
}

/// `table.field` as a string, if present; `key` names the table in messages.
pub fn opt_str(
    table: &Table,
    field: &str,
    path: &Path,
    key: &str,
) -> Result<Option<String>, FieldError> {
    match table.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(path, format!("{key}.{field}"), "must be a string")),
    }
}

/// A lock's `[[package]]` entries, each a table with a `name`, with the key that names it in
/// messages (`package[3] (requests)`).
pub fn packages<'d>(
    doc: &'d Table,
    path: &Path,
) -> Result<Vec<(String, &'d Table, String)>, FieldError> {
    let entries: &[Value] = match doc.get("package") {
        None => &[],
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(invalid(
                path,
                "package",
                "must be an array of tables ([[package]])",
            ))
        }
    };
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let key = format!("package[{i}]");
            let table = entry
                .as_table()
                .ok_or_else(|| invalid(path, &key, "must be a table"))?;
            let name = opt_str(table, "name", path, &key)?
                .ok_or_else(|| invalid(path, format!("{key}.name"), "is missing"))?;
            Ok((format!("package[{i}] ({name})"), table, name))
        })
        .collect()
}
