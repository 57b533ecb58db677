//! Requirement lines from a PEP 751 `pylock.toml`: every locked package whose marker holds
//! (pip decides the marker), pinned and with the lock's hashes, except the project itself.
//!
//! PEP 751 lists the packages flat, so no walk is needed. Markers on the `extras` or
//! `dependency_groups` variables (a lock covering several groups) are refused with a hint:
//! which groups are "main" cannot be told from the file, and pip cannot evaluate them.

use std::path::{Path, PathBuf};

use pep508_rs::MarkerTree;
use toml::{Table, Value};

use super::poetry::names::normalize_name;
use super::toml_fields::{self, FieldError};
use super::LockedRequirements;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PylockError {
    #[error("{at}: invalid TOML: {detail}")]
    InvalidToml { at: String, detail: String },
    #[error(transparent)]
    InvalidField(#[from] FieldError),
    #[error("{}: `{key}` {what}, which cannot be installed in the image build; {hint}", .path.display())]
    Unsupported {
        path: PathBuf,
        key: String,
        what: String,
        hint: String,
    },
}

const LOCAL_HINT: &str = "the connector folder is not part of the dependency install layer; \
                          publish the package to PyPI or depend on it through git";

fn sha256s(file: &Value) -> Option<String> {
    let hash = file.get("hashes")?.get("sha256")?.as_str()?;
    Some(format!("sha256:{hash}"))
}

pub fn pylock_requirements(path: &Path, text: &str) -> Result<LockedRequirements, PylockError> {
    let doc: Table = toml::from_str(text).map_err(|err| {
        let (at, detail) = crate::model::toml_error::locate(path, text, &err);
        PylockError::InvalidToml { at, detail }
    })?;
    let invalid = |key: &str, message: &str| {
        PylockError::InvalidField(toml_fields::invalid(path, key, message))
    };
    match doc.get("lock-version").and_then(Value::as_str) {
        Some(v) if v.split('.').next() == Some("1") => {}
        Some(v) => {
            return Err(invalid(
                "lock-version",
                &format!("is `{v}`; only 1.x is understood"),
            ))
        }
        None => {
            return Err(invalid(
                "lock-version",
                "is missing; this is not a PEP 751 lock",
            ))
        }
    }
    let packages = match doc.get("packages") {
        None => &[][..],
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(invalid(
                "packages",
                "must be an array of tables ([[packages]])",
            ))
        }
    };
    let mut lines = Vec::new();
    let mut unhashed = Vec::new();
    for (i, entry) in packages.iter().enumerate() {
        let key = format!("packages[{i}]");
        let p = entry
            .as_table()
            .ok_or_else(|| invalid(&key, "must be a table"))?;
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&format!("{key}.name"), "is missing"))?;
        let key = format!("packages[{i}] ({name})");
        let unsupported = |what: String, hint: &str| PylockError::Unsupported {
            path: path.to_path_buf(),
            key: key.clone(),
            what,
            hint: hint.to_string(),
        };
        let mut hashes = Vec::new();
        let mut line = if let Some(directory) = p.get("directory") {
            let local = directory.get("path").and_then(Value::as_str).unwrap_or("");
            if matches!(local, "." | "./" | "") {
                // The project itself: its code is copied after the dependency layer.
                continue;
            }
            return Err(unsupported(
                format!("is a local directory (`{local}`)"),
                LOCAL_HINT,
            ));
        } else if let Some(vcs) = p.get("vcs") {
            let url = vcs.get("url").and_then(Value::as_str).unwrap_or_default();
            let commit = vcs
                .get("commit-id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut line = format!("{name} @ git+{url}@{commit}");
            if let Some(sub) = vcs.get("subdirectory").and_then(Value::as_str) {
                line.push_str("#subdirectory=");
                line.push_str(sub);
            }
            line
        } else if let Some(archive) = p.get("archive") {
            let Some(url) = archive.get("url").and_then(Value::as_str) else {
                let local = archive
                    .get("path")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                return Err(unsupported(
                    format!("is a local archive (`{local}`)"),
                    LOCAL_HINT,
                ));
            };
            hashes.extend(sha256s(archive));
            format!("{name} @ {url}")
        } else {
            if let Some(index) = p.get("index").and_then(Value::as_str) {
                if !(index.contains("://pypi.org/") || index.contains("://files.pythonhosted.org/"))
                {
                    return Err(unsupported(
                        format!("comes from the package index {index}"),
                        "connector-build installs from PyPI only",
                    ));
                }
            }
            let version = p
                .get("version")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(&format!("{key}.version"), "is missing"))?;
            hashes.extend(p.get("sdist").and_then(sha256s));
            for wheel in p
                .get("wheels")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                hashes.extend(sha256s(wheel));
            }
            format!("{name}=={version}")
        };
        if let Some(marker) = p.get("marker").and_then(Value::as_str) {
            if marker.contains("dependency_groups") || marker.contains("extras") {
                return Err(unsupported(
                    format!("has the marker `{marker}`, on extras or dependency groups,"),
                    "lock the main dependencies alone (e.g. `uv export --format pylock.toml \
                     --no-dev -o pylock.toml`)",
                ));
            }
            marker.parse::<MarkerTree>().map_err(|e| {
                let reason = e.to_string();
                invalid(
                    &format!("{key}.marker"),
                    &format!(
                        "is not a PEP 508 marker: {}",
                        reason.lines().next().unwrap_or_default()
                    ),
                )
            })?;
            line.push_str(" ; ");
            line.push_str(marker);
        }
        if hashes.is_empty() {
            unhashed.push(normalize_name(name));
        }
        hashes.sort();
        hashes.dedup();
        lines.push((normalize_name(name), line, hashes));
    }
    // Sorted by normalized name first, as the other locks' lines are.
    lines.sort();
    let lines = lines
        .into_iter()
        .map(|(_, line, hashes)| (line, hashes))
        .collect();
    Ok(LockedRequirements::from_pins(path, lines, &unhashed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"lock-version = "1.0"
requires-python = ">=3.10"
created-by = "uv"

[[packages]]
name = "colorama"
version = "0.4.6"
marker = "sys_platform == 'win32'"
index = "https://pypi.org/simple"
wheels = [{ url = "https://files.pythonhosted.org/packages/colorama-0.4.6-py2.py3-none-any.whl", hashes = { sha256 = "4f1d9991f5acc0ca119f9d443620b77f9d6b33703e51011c16baf57afb285fc6" } }]

[[packages]]
name = "six"
version = "1.17.0"
index = "https://pypi.org/simple"
sdist = { url = "https://files.pythonhosted.org/packages/six-1.17.0.tar.gz", hashes = { sha256 = "ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81" } }

[[packages]]
name = "source-example"
directory = { path = ".", editable = true }
"#;

    #[test]
    fn locked_packages_with_hashes_without_the_project() {
        let install = pylock_requirements(Path::new("pylock.toml"), LOCK).unwrap();
        assert!(install.require_hashes);
        assert_eq!(
            install.requirements,
            [
                "colorama==0.4.6 ; sys_platform == 'win32' \\\n    --hash=sha256:4f1d9991f5acc0ca119f9d443620b77f9d6b33703e51011c16baf57afb285fc6",
                "six==1.17.0 \\\n    --hash=sha256:ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81",
            ]
        );
    }

    #[test]
    fn group_markers_and_local_packages_are_refused() {
        let path = Path::new("pylock.toml");
        let grouped = LOCK.replace("sys_platform == 'win32'", "'dev' in dependency_groups");
        let err = pylock_requirements(path, &grouped).unwrap_err();
        assert!(err.to_string().contains("--no-dev"), "{err}");
        let local = LOCK.replace("path = \".\"", "path = \"../common\"");
        assert!(matches!(
            pylock_requirements(path, &local),
            Err(PylockError::Unsupported { .. })
        ));
        assert!(pylock_requirements(path, "packages = []\n").is_err());
    }
}
