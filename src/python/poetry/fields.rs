//! Reading typed fields out of TOML tables, with errors that name the key.

use std::path::Path;

use toml::{Table, Value};

use super::error::PoetryErrorKind;
use crate::python::toml_fields;

pub(super) fn parse_toml(path: &Path, text: &str) -> Result<Table, PoetryErrorKind> {
    toml::from_str::<Table>(text).map_err(|err| {
        let (at, detail) = crate::model::toml_error::locate(path, text, &err);
        PoetryErrorKind::InvalidToml {
            path: path.to_path_buf(),
            at,
            detail,
        }
    })
}

pub(super) fn invalid(
    path: &Path,
    key: impl Into<String>,
    message: impl Into<String>,
) -> PoetryErrorKind {
    PoetryErrorKind::InvalidField(toml_fields::invalid(path, key, message))
}

pub(super) fn opt_str(
    table: &Table,
    field: &str,
    path: &Path,
    key: &str,
) -> Result<Option<String>, PoetryErrorKind> {
    Ok(toml_fields::opt_str(table, field, path, key)?)
}

pub(super) fn opt_bool(
    table: &Table,
    field: &str,
    path: &Path,
    key: &str,
) -> Result<Option<bool>, PoetryErrorKind> {
    match table.get(field) {
        None => Ok(None),
        Some(Value::Boolean(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(
            path,
            format!("{key}.{field}"),
            "must be true or false",
        )),
    }
}

pub(super) fn opt_table<'t>(
    table: &'t Table,
    field: &str,
    path: &Path,
    key: &str,
) -> Result<Option<&'t Table>, PoetryErrorKind> {
    match table.get(field) {
        None => Ok(None),
        Some(Value::Table(t)) => Ok(Some(t)),
        Some(_) => Err(invalid(path, join_key(key, field), "must be a table")),
    }
}

pub(super) fn str_array(
    table: &Table,
    field: &str,
    path: &Path,
    key: &str,
) -> Result<Vec<String>, PoetryErrorKind> {
    let wrong = || invalid(path, join_key(key, field), "must be an array of strings");
    match table.get(field) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string).ok_or_else(wrong))
            .collect(),
        Some(_) => Err(wrong()),
    }
}

pub(super) fn join_key(key: &str, field: &str) -> String {
    if key.is_empty() {
        field.to_string()
    } else {
        format!("{key}.{field}")
    }
}

/// A dependency value may be a list of alternatives (multiple-constraint form).
pub(super) fn entry_values<'v>(key: &str, value: &'v Value) -> Vec<(String, &'v Value)> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| (format!("{key}[{i}]"), item))
            .collect(),
        other => vec![(key.to_string(), other)],
    }
}
