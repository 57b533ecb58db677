//! Whether poetry.lock's `content-hash` still matches pyproject.toml.
//!
//! Poetry hashes the dependency-related parts of pyproject.toml: sha256 of Python's
//! `json.dumps(content, sort_keys=True)` (default separators, ASCII escapes), where content is
//! - Poetry 2 with dependencies in `[project]`: `{"project": {requires-python, dependencies,
//!   optional-dependencies: those present}, "tool": {"poetry": {dependencies, source, extras,
//!   dev-dependencies, group: those present}}}`, later versions adding `dependency-groups`;
//! - otherwise (Poetry 1.x, 2.x without `[project]` dependencies): `{dependencies, source,
//!   extras, dev-dependencies}` of `[tool.poetry]`, `null` when missing, plus `group` when
//!   present (Poetry 1.1 and older leave `group` out).
//!
//! A lock matching any of these forms is fresh: which Poetry wrote it is not recorded.

use sha2::{Digest as _, Sha256};
use toml::{Table, Value};

const LEGACY_KEYS: [&str; 4] = ["dependencies", "source", "extras", "dev-dependencies"];
const PROJECT_KEYS: [&str; 3] = ["requires-python", "dependencies", "optional-dependencies"];

/// `Some(recorded hash)` when the lock records a content-hash that no form of pyproject's
/// content gives; `None` when it matches or records none.
pub(super) fn stale(pyproject: &Table, lock: &Table) -> Option<String> {
    let recorded = lock
        .get("metadata")
        .and_then(|m| m.get("content-hash"))
        .and_then(Value::as_str)?;
    let fresh = candidates(pyproject)
        .iter()
        .any(|content| sha256_hex(&python_json(content)) == recorded);
    (!fresh).then(|| recorded.to_string())
}

fn section<'t>(table: &'t Table, key: &str, empty: &'t Table) -> &'t Table {
    table.get(key).and_then(Value::as_table).unwrap_or(empty)
}

fn candidates(pyproject: &Table) -> Vec<Value> {
    let empty = Table::new();
    let poetry = section(section(pyproject, "tool", &empty), "poetry", &empty);
    let project = section(pyproject, "project", &empty);

    let mut out = Vec::new();
    let mut legacy = Table::new();
    for key in LEGACY_KEYS {
        let value = poetry
            .get(key)
            .cloned()
            .unwrap_or_else(|| Value::String(NULL.into()));
        legacy.insert(key.into(), value);
    }
    out.push(Value::Table(legacy.clone()));
    if let Some(group) = poetry.get("group") {
        legacy.insert("group".into(), group.clone());
        out.push(Value::Table(legacy));
    }

    let relevant_project: Table = PROJECT_KEYS
        .iter()
        .filter_map(|k| project.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    if !relevant_project.is_empty() {
        let relevant_poetry: Table = LEGACY_KEYS
            .iter()
            .chain(&["group"])
            .filter_map(|k| poetry.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        let mut content = Table::new();
        content.insert("project".into(), Value::Table(relevant_project));
        let mut tool = Table::new();
        tool.insert("poetry".into(), Value::Table(relevant_poetry));
        content.insert("tool".into(), Value::Table(tool));
        out.push(Value::Table(content.clone()));
        if let Some(groups) = pyproject.get("dependency-groups") {
            content.insert("dependency-groups".into(), groups.clone());
            out.push(Value::Table(content));
        }
    }
    out
}

/// Stands for Python's `None`: TOML has no null, and no real value is this string.
const NULL: &str = "\u{0}connector-build-null\u{0}";

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Python's `json.dumps(value, sort_keys=True)`.
fn python_json(value: &Value) -> String {
    let mut out = String::new();
    write_json(value, &mut out);
    out
}

fn write_json(value: &Value, out: &mut String) {
    match value {
        Value::String(s) if s == NULL => out.push_str("null"),
        Value::String(s) => write_string(s, out),
        Value::Integer(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&python_float(*f)),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Datetime(d) => write_string(&d.to_string(), out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Table(table) => {
            // Python sorts str keys by code point, which is UTF-8 byte order.
            let mut keys: Vec<&String> = table.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(key, out);
                out.push_str(": ");
                write_json(&table[key], out);
            }
            out.push('}');
        }
    }
}

fn python_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{f:?}")
    }
}

/// A JSON string as Python writes it with `ensure_ascii=True`.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn writes_json_like_python() {
        let value = Value::Table(table(
            "b = [1, 2.5, true]\na = { z = \"é\\\"\\n\", y = \"𝄞\" }\n",
        ));
        assert_eq!(
            python_json(&value),
            r#"{"a": {"y": "\ud834\udd1e", "z": "\u00e9\"\n"}, "b": [1, 2.5, true]}"#
        );
    }

    #[test]
    fn the_fixture_lock_written_by_poetry_is_fresh() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/connectors-fixtures/source-fixture-poetry"
        );
        let pyproject = table(&std::fs::read_to_string(format!("{dir}/pyproject.toml")).unwrap());
        let lock = table(&std::fs::read_to_string(format!("{dir}/poetry.lock")).unwrap());
        assert_eq!(stale(&pyproject, &lock), None);

        let mut edited = pyproject.clone();
        edited["tool"]["poetry"]["dependencies"]
            .as_table_mut()
            .unwrap()
            .insert("requests".into(), Value::String("^2".into()));
        assert!(stale(&edited, &lock).is_some());
        // A change outside the dependency keys leaves the hash alone.
        let mut described = pyproject;
        described["tool"]["poetry"]
            .as_table_mut()
            .unwrap()
            .insert("description".into(), Value::String("changed".into()));
        assert_eq!(stale(&described, &lock), None);
        // No recorded hash: nothing to compare.
        assert_eq!(stale(&edited, &table("[metadata]\n")), None);
    }

    #[test]
    fn poetry2_project_form() {
        let pyproject = table(
            "[project]\nname = \"x\"\nrequires-python = \">=3.10\"\ndependencies = [\"six>=1\"]\n\
             [tool.poetry]\npackages = [{ include = \"x\" }]\n",
        );
        let content = r#"{"project": {"dependencies": ["six>=1"], "requires-python": ">=3.10"}, "tool": {"poetry": {}}}"#;
        let lock = table(&format!(
            "[metadata]\ncontent-hash = \"{}\"\n",
            sha256_hex(content)
        ));
        assert_eq!(stale(&pyproject, &lock), None);
    }
}
