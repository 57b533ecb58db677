//! The packages of a poetry.lock (lock-version 1.x and 2.x).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pep508_rs::MarkerTree;
use toml::{Table, Value};

use super::error::PoetryErrorKind;
use super::fields::{entry_values, invalid, opt_bool, opt_str, opt_table, str_array};
use super::markers;
use super::names::{leading_name, normalize_name};
use super::pyproject::is_pypi_url;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LockSource {
    Registry,
    Git {
        url: String,
        reference: Option<String>,
        resolved: Option<String>,
        subdirectory: Option<String>,
    },
    Url {
        url: String,
        subdirectory: Option<String>,
    },
    /// directory/file sources, relative to the connector folder.
    Local {
        kind: String,
        url: String,
    },
    /// A private index or another source type pip cannot be pointed at here.
    Other {
        kind: String,
        url: String,
    },
}

#[derive(Debug, Clone)]
pub(super) struct LockEdge {
    /// Normalised.
    pub name: String,
    pub display: String,
    pub constraint: Option<String>,
    /// `markers`, `python` and `platform` together, `extra` undecided.
    marker: MarkerTree,
    /// Whether `marker` compares `extra`, decided per visit from the parent's extras.
    marker_has_extra: bool,
    pub extras: Vec<String>,
    pub optional: bool,
}

impl LockEdge {
    pub fn marker(&self, parent_extras: &BTreeSet<String>) -> MarkerTree {
        if self.marker_has_extra {
            markers::decide_extras(&self.marker, parent_extras)
        } else {
            self.marker.clone()
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct LockPackage {
    pub name: String,
    pub version: String,
    pub deps: Vec<LockEdge>,
    /// Normalised extra -> normalised names of the optional deps it enables.
    pub extras: BTreeMap<String, BTreeSet<String>>,
    pub source: LockSource,
    pub python_versions: Option<String>,
    /// Marker Poetry 2 recorded for this entry in the main group.
    pub lock_marker: Option<MarkerTree>,
    /// From `groups` (Poetry 2) or `category` (Poetry < 1.5).
    pub in_main: Option<bool>,
    /// `sha256:...` of the files the lock allows (`files`, or `[metadata.files]` in 1.x).
    pub hashes: Vec<String>,
}

pub(super) struct Lock {
    pub path: PathBuf,
    pub packages: Vec<LockPackage>,
    pub by_name: BTreeMap<String, Vec<usize>>,
}

pub(super) fn parse_lock(path: &Path, doc: &Table) -> Result<Lock, PoetryErrorKind> {
    if let Some(metadata) = opt_table(doc, "metadata", path, "")? {
        if let Some(version) = opt_str(metadata, "lock-version", path, "metadata")? {
            let major = version
                .split('.')
                .next()
                .and_then(|m| m.trim().parse::<u64>().ok());
            if !matches!(major, Some(1 | 2)) {
                return Err(PoetryErrorKind::UnsupportedLockVersion {
                    lock: path.to_path_buf(),
                    version,
                });
            }
        }
    }
    let entries = crate::python::toml_fields::packages(doc, path)?;
    let legacy_files = legacy_file_hashes(path, doc)?;
    let mut packages = Vec::with_capacity(entries.len());
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, (key, table, name)) in entries.into_iter().enumerate() {
        let version = opt_str(table, "version", path, &key)?
            .ok_or_else(|| invalid(path, format!("{key}.version"), "is missing"))?;
        let mut package = parse_lock_package(path, &key, table, name, version)?;
        if table.get("files").is_none() {
            if let Some(hashes) = legacy_files.get(&normalize_name(&package.name)) {
                package.hashes = hashes.clone();
            }
        }
        by_name
            .entry(normalize_name(&package.name))
            .or_default()
            .push(i);
        packages.push(package);
    }
    Ok(Lock {
        path: path.to_path_buf(),
        packages,
        by_name,
    })
}

fn parse_lock_package(
    path: &Path,
    key: &str,
    table: &Table,
    name: String,
    version: String,
) -> Result<LockPackage, PoetryErrorKind> {
    let groups = match table.get("groups") {
        None => None,
        Some(_) => Some(str_array(table, "groups", path, key)?),
    };
    let category = opt_str(table, "category", path, key)?;
    let in_main = match (&groups, &category) {
        (Some(groups), _) => Some(groups.iter().any(|g| normalize_name(g) == "main")),
        (None, Some(category)) => Some(category == "main"),
        (None, None) => None,
    };
    let main_marker = match table.get("markers") {
        None => None,
        Some(Value::String(m)) => Some(m.clone()),
        Some(Value::Table(per_group)) => per_group
            .iter()
            .find(|(group, _)| normalize_name(group) == "main")
            .and_then(|(_, m)| m.as_str().map(str::to_string)),
        Some(_) => {
            return Err(invalid(
                path,
                format!("{key}.markers"),
                "must be a string or a table",
            ))
        }
    };
    // Poetry 2 locks (with `groups`) omit `markers` when the package is always needed.
    let lock_marker = match in_main {
        Some(true) if groups.is_some() => Some(
            markers::parse(&main_marker.unwrap_or_default(), &BTreeSet::new())
                .map_err(|reason| bad_marker(path, &format!("{key}.markers"), &reason))?,
        ),
        _ => None,
    };

    let mut deps = Vec::new();
    if let Some(dependencies) = opt_table(table, "dependencies", path, key)? {
        for (dep_name, value) in dependencies {
            let dep_key = format!("{key}.dependencies.{dep_name}");
            for (entry_key, value) in entry_values(&dep_key, value) {
                deps.push(lock_edge(path, &entry_key, dep_name, value)?);
            }
        }
    }

    let mut extras = BTreeMap::new();
    if let Some(extra_table) = opt_table(table, "extras", path, key)? {
        for extra in extra_table.keys() {
            let names = str_array(extra_table, extra, path, &format!("{key}.extras"))?
                .iter()
                .filter_map(|req| leading_name(req).map(|(n, _)| normalize_name(n)))
                .collect();
            extras.insert(normalize_name(extra), names);
        }
    }

    let source = match opt_table(table, "source", path, key)? {
        None => LockSource::Registry,
        Some(source) => lock_source(path, &format!("{key}.source"), source)?,
    };

    Ok(LockPackage {
        name,
        version,
        deps,
        extras,
        source,
        python_versions: opt_str(table, "python-versions", path, key)?,
        lock_marker,
        in_main,
        hashes: file_hashes(path, &format!("{key}.files"), table.get("files"))?,
    })
}

fn lock_edge(
    path: &Path,
    key: &str,
    name: &str,
    value: &Value,
) -> Result<LockEdge, PoetryErrorKind> {
    let mut edge = LockEdge {
        name: normalize_name(name),
        display: name.to_string(),
        constraint: None,
        marker: MarkerTree::TRUE,
        marker_has_extra: false,
        extras: Vec::new(),
        optional: false,
    };
    match value {
        Value::String(constraint) => edge.constraint = Some(constraint.clone()),
        Value::Table(t) => {
            edge.constraint = opt_str(t, "version", path, key)?;
            if let Some(text) = opt_str(t, "markers", path, key)? {
                edge.marker = markers::parse_raw(&text)
                    .map_err(|reason| bad_marker(path, &format!("{key}.markers"), &reason))?;
                edge.marker_has_extra = markers::mentions_extra(&text);
            }
            if let Some(python) = opt_str(t, "python", path, key)? {
                // An unparsable python range in a machine-written lock only widens the install.
                if let Ok(python) = markers::python(&python) {
                    edge.marker.and(python);
                }
            }
            if let Some(platform) = opt_str(t, "platform", path, key)? {
                edge.marker.and(markers::platform(&platform));
            }
            edge.extras = str_array(t, "extras", path, key)?;
            edge.optional = opt_bool(t, "optional", path, key)?.unwrap_or(false);
        }
        _ => return Err(invalid(path, key, "must be a version string or a table")),
    }
    Ok(edge)
}

fn bad_marker(path: &Path, key: &str, reason: &str) -> PoetryErrorKind {
    invalid(path, key, format!("is not a PEP 508 marker: {reason}"))
}

/// `files = [{file = "...", hash = "sha256:..."}]`.
fn file_hashes(
    path: &Path,
    key: &str,
    files: Option<&Value>,
) -> Result<Vec<String>, PoetryErrorKind> {
    let Some(files) = files else {
        return Ok(Vec::new());
    };
    let wrong = || invalid(path, key, "must be an array of { file, hash } tables");
    let mut hashes = Vec::new();
    for file in files.as_array().ok_or_else(wrong)? {
        let file = file.as_table().ok_or_else(wrong)?;
        if let Some(hash) = opt_str(file, "hash", path, key)? {
            hashes.push(hash);
        }
    }
    hashes.sort();
    hashes.dedup();
    Ok(hashes)
}

/// Lock-version 1.x keeps hashes apart, in `[metadata.files]`, by package name.
fn legacy_file_hashes(
    path: &Path,
    doc: &Table,
) -> Result<BTreeMap<String, Vec<String>>, PoetryErrorKind> {
    let Some(metadata) = opt_table(doc, "metadata", path, "")? else {
        return Ok(BTreeMap::new());
    };
    let Some(files) = opt_table(metadata, "files", path, "metadata")? else {
        return Ok(BTreeMap::new());
    };
    files
        .iter()
        .map(|(name, list)| {
            let key = format!("metadata.files.{name}");
            Ok((normalize_name(name), file_hashes(path, &key, Some(list))?))
        })
        .collect()
}

fn lock_source(path: &Path, key: &str, source: &Table) -> Result<LockSource, PoetryErrorKind> {
    let kind = opt_str(source, "type", path, key)?.unwrap_or_default();
    let url = opt_str(source, "url", path, key)?.unwrap_or_default();
    let subdirectory = opt_str(source, "subdirectory", path, key)?;
    Ok(match kind.as_str() {
        "git" => LockSource::Git {
            url,
            reference: opt_str(source, "reference", path, key)?,
            resolved: opt_str(source, "resolved_reference", path, key)?,
            subdirectory,
        },
        "url" => LockSource::Url { url, subdirectory },
        "directory" | "file" => LockSource::Local { kind, url },
        "legacy" | "" if url.is_empty() || is_pypi_url(&url) => LockSource::Registry,
        _ => LockSource::Other { kind, url },
    })
}
