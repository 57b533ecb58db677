//! Requirement lines for Poetry projects, computed without running Poetry.
//!
//! Poetry's resolver does not work on the build machines, so Poetry connectors
//! are installed with pip/uv from lines computed here: the locked closure of
//! the main group when `poetry.lock` exists, otherwise the main group's
//! constraints translated to PEP 440.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use toml::{Table, Value};

/// One PEP 508 requirement line, e.g. `requests==2.31.0 ; python_version >= "3.8"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Requirement {
    /// PEP 503-normalised distribution name; the sort and match key.
    pub name: String,
    /// The full PEP 508 line.
    pub spec: String,
}

/// What to install for a Poetry project's main group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoetryInstall {
    /// Lines to write into a requirements file, sorted by normalised name, deterministic.
    pub requirements: Vec<String>,
    /// true when every line is an exact pin from poetry.lock covering the whole closure,
    /// so the caller may install with `--no-deps`.
    pub fully_pinned: bool,
}

const RELOCK: &str = "run `poetry lock` in the connector folder (Poetry 1.x: \
                      `poetry lock --no-update`) and commit poetry.lock";
const PATH_HINT: &str = "the connector folder is not part of the dependency install layer; \
                         publish the package to PyPI or depend on it through git";
const INDEX_HINT: &str = "connector-build installs from PyPI only; publish the package to \
                          PyPI or depend on it through git";

/// Why requirements could not be computed; [`PoetryError::kind`] tells which case.
///
/// Boxed so that results carrying it stay one pointer wide inside callers'
/// error enums (clippy's `result_large_err`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct PoetryError(Box<PoetryErrorKind>);

impl PoetryError {
    pub fn kind(&self) -> &PoetryErrorKind {
        &self.0
    }

    pub fn into_kind(self) -> PoetryErrorKind {
        *self.0
    }
}

impl From<PoetryErrorKind> for PoetryError {
    fn from(kind: PoetryErrorKind) -> Self {
        PoetryError(Box::new(kind))
    }
}

/// Everything that stops requirements from being computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoetryErrorKind {
    /// The file is not valid TOML; `at` is `path:line:col`.
    #[error("{at}: invalid TOML: {detail}")]
    InvalidToml {
        path: PathBuf,
        at: String,
        detail: String,
    },

    #[error(
        "{}: neither [tool.poetry] nor [project] is present, so this is not a Poetry project",
        .path.display()
    )]
    NotPoetryProject { path: PathBuf },

    /// A key has the wrong type or shape.
    #[error("{}: `{key}` {message}", .path.display())]
    InvalidField {
        path: PathBuf,
        key: String,
        message: String,
    },

    /// A Poetry version or python constraint that cannot be expressed for pip.
    #[error("{}: dependency `{package}` has constraint `{constraint}`: {reason}", .path.display())]
    UnsupportedConstraint {
        path: PathBuf,
        package: String,
        constraint: String,
        reason: String,
    },

    /// A dependency that cannot be installed from inside the image build
    /// (path/file dependencies, private package indexes).
    #[error("{}: dependency `{package}` is a {kind}, which cannot be installed: {hint}", .path.display())]
    UnsupportedDependency {
        path: PathBuf,
        package: String,
        kind: String,
        hint: String,
    },

    #[error(
        "{}: main dependency `{package}` declared in {} has no [[package]] entry; \
         the lock file is out of date: {RELOCK}",
        .lock.display(), .pyproject.display()
    )]
    MissingFromLock {
        lock: PathBuf,
        pyproject: PathBuf,
        package: String,
    },

    #[error(
        "{}: locked package `{package}` requires `{dependency}`, which has no [[package]] \
         entry; the lock file is incomplete: {RELOCK}",
        .lock.display()
    )]
    LockedDependencyMissing {
        lock: PathBuf,
        package: String,
        dependency: String,
    },

    #[error(
        "{}: `{package}` is locked at {locked}, which does not satisfy `{constraint}` from {}; \
         the lock file is out of date: {RELOCK}",
        .lock.display(), .pyproject.display()
    )]
    LockOutdated {
        lock: PathBuf,
        pyproject: PathBuf,
        package: String,
        locked: String,
        constraint: String,
    },

    #[error(
        "{}: lock-version `{version}` is not supported (only 1.x and 2.x are understood); \
         regenerate the lock with Poetry 1.x or 2.x",
        .lock.display()
    )]
    UnsupportedLockVersion { lock: PathBuf, version: String },
}

/// Whether pyproject.toml is a Poetry project (`[tool.poetry]` table present).
///
/// Unparsable TOML falls back to looking for a `[tool.poetry...]` header so the
/// caller still routes the file to [`poetry_requirements`], which reports the
/// parse error with its line.
pub fn is_poetry_project(pyproject: &str) -> bool {
    match toml::from_str::<Table>(pyproject) {
        Ok(doc) => doc
            .get("tool")
            .and_then(Value::as_table)
            .and_then(|tool| tool.get("poetry"))
            .is_some_and(Value::is_table),
        Err(_) => pyproject.lines().any(|line| {
            let line = line.trim_start();
            line.starts_with("[tool.poetry]")
                || line.starts_with("[tool.poetry.")
                || line.starts_with("[[tool.poetry.")
        }),
    }
}

/// Main-group, non-root requirements (what `poetry install --no-root --only main` would install).
pub fn poetry_requirements(
    pyproject_path: &Path,
    pyproject: &str,
    lock_path: &Path,
    lock: Option<&str>,
) -> Result<PoetryInstall, PoetryError> {
    requirements_for(pyproject_path, pyproject, lock_path, lock).map_err(PoetryError::from)
}

fn requirements_for(
    pyproject_path: &Path,
    pyproject: &str,
    lock_path: &Path,
    lock: Option<&str>,
) -> Result<PoetryInstall, PoetryErrorKind> {
    let doc = parse_toml(pyproject_path, pyproject)?;
    let project = read_project(pyproject_path, &doc)?;
    let resolved = match lock {
        Some(text) => {
            let lock_doc = parse_toml(lock_path, text)?;
            let lock = parse_lock(lock_path, &lock_doc)?;
            resolve_locked(&project, &lock)?
        }
        None => Resolved {
            requirements: project
                .deps
                .iter()
                .map(|dep| unlocked_requirement(pyproject_path, dep))
                .collect::<Result<_, _>>()?,
            notes: BTreeMap::new(),
            fully_pinned: false,
        },
    };
    Ok(PoetryInstall {
        requirements: render_lines(resolved.requirements, &resolved.notes),
        fully_pinned: resolved.fully_pinned,
    })
}

struct Resolved {
    requirements: Vec<Requirement>,
    /// Comment lines to put before a package's lines, by normalised name.
    notes: BTreeMap<String, String>,
    fully_pinned: bool,
}

fn render_lines(
    mut requirements: Vec<Requirement>,
    notes: &BTreeMap<String, String>,
) -> Vec<String> {
    requirements.sort();
    requirements.dedup();
    let mut lines = Vec::with_capacity(requirements.len() + notes.len());
    let mut previous: Option<&str> = None;
    for req in &requirements {
        if previous != Some(req.name.as_str()) {
            if let Some(note) = notes.get(&req.name) {
                lines.push(format!("# {note}"));
            }
        }
        previous = Some(req.name.as_str());
        lines.push(req.spec.clone());
    }
    lines
}

fn parse_toml(path: &Path, text: &str) -> Result<Table, PoetryErrorKind> {
    toml::from_str::<Table>(text).map_err(|err| {
        let (at, detail) = crate::model::toml_error::locate(path, text, &err);
        PoetryErrorKind::InvalidToml {
            path: path.to_path_buf(),
            at,
            detail,
        }
    })
}

// ---------------------------------------------------------------------------
// Names and small TOML helpers

/// PEP 503 normalisation: lowercase, runs of `-`, `_`, `.` become one `-`.
fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
            continue;
        }
        if separator && !out.is_empty() {
            out.push('-');
        }
        separator = false;
        out.extend(c.to_lowercase());
    }
    out
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Splits the distribution name off the front of a requirement string such as
/// `PySocks (>=1.5.6,!=1.5.7)`.
fn leading_name(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    let end = text.find(|c: char| !is_name_char(c)).unwrap_or(text.len());
    let (name, rest) = text.split_at(end);
    if name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        Some((name, rest))
    } else {
        None
    }
}

fn invalid(path: &Path, key: impl Into<String>, message: impl Into<String>) -> PoetryErrorKind {
    PoetryErrorKind::InvalidField {
        path: path.to_path_buf(),
        key: key.into(),
        message: message.into(),
    }
}

fn opt_str(
    table: &Table,
    field: &str,
    path: &Path,
    key: &str,
) -> Result<Option<String>, PoetryErrorKind> {
    match table.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(path, format!("{key}.{field}"), "must be a string")),
    }
}

fn opt_bool(
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

fn opt_table<'t>(
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

fn str_array(
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

fn join_key(key: &str, field: &str) -> String {
    if key.is_empty() {
        field.to_string()
    } else {
        format!("{key}.{field}")
    }
}

// ---------------------------------------------------------------------------
// pyproject.toml

/// Where a main-group dependency comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// From PyPI; every constraint (Poetry syntax, PEP 440 is a subset) must hold.
    Registry(Vec<String>),
    Git {
        url: String,
        reference: Option<String>,
        subdirectory: Option<String>,
    },
    Url {
        url: String,
        subdirectory: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct RootDep {
    /// As written in pyproject.toml.
    name: String,
    origin: Origin,
    extras: Vec<String>,
    marker: Dnf,
}

struct Project<'a> {
    path: &'a Path,
    deps: Vec<RootDep>,
    /// Pythons the project supports; tells a deliberately unlocked dependency
    /// (never needed on those Pythons) from a stale lock.
    python: Dnf,
}

fn read_project<'a>(path: &'a Path, doc: &Table) -> Result<Project<'a>, PoetryErrorKind> {
    let tool_poetry = match opt_table(doc, "tool", path, "")? {
        Some(tool) => opt_table(tool, "poetry", path, "tool")?,
        None => None,
    };
    let project = opt_table(doc, "project", path, "")?;
    if tool_poetry.is_none() && project.is_none() {
        return Err(PoetryErrorKind::NotPoetryProject {
            path: path.to_path_buf(),
        });
    }
    let empty = Table::new();
    let tool_poetry = tool_poetry.unwrap_or(&empty);
    let poetry_deps = opt_table(tool_poetry, "dependencies", path, "tool.poetry")?;
    // `[tool.poetry.group.main.dependencies]` is the main group under another spelling.
    let main_group = match opt_table(tool_poetry, "group", path, "tool.poetry")? {
        Some(groups) => groups
            .iter()
            .find(|(name, _)| normalize_name(name) == "main")
            .map(|(name, group)| {
                let key = format!("tool.poetry.group.{name}");
                match group {
                    Value::Table(t) => Ok((key.clone(), opt_table(t, "dependencies", path, &key)?)),
                    _ => Err(invalid(path, key, "must be a table")),
                }
            })
            .transpose()?
            .and_then(|(key, deps)| deps.map(|d| (key + ".dependencies", d))),
        None => None,
    };
    let mut poetry_tables: Vec<(String, &Table)> = Vec::new();
    if let Some(deps) = poetry_deps {
        poetry_tables.push(("tool.poetry.dependencies".to_string(), deps));
    }
    if let Some(group) = main_group {
        poetry_tables.push(group);
    }

    let project = project.unwrap_or(&empty);
    let project_deps = str_array(project, "dependencies", path, "project")?;
    let dynamic = str_array(project, "dynamic", path, "project")?;
    let has_optional = opt_table(project, "optional-dependencies", path, "project")?
        .is_some_and(|t| !t.is_empty());
    let dynamic_deps = dynamic
        .iter()
        .any(|d| d == "dependencies" || d == "optional-dependencies");
    // Poetry 2 takes the main group from [project] whenever it declares any
    // dependencies; [tool.poetry.dependencies] then only enriches those.
    let project_mode = !project_deps.is_empty() || (has_optional && !dynamic_deps);

    let mut python_constraint = opt_str(project, "requires-python", path, "project")?;
    if python_constraint.is_none() {
        if let Some(deps) = poetry_deps {
            python_constraint = deps
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("python"))
                .and_then(|(_, v)| v.as_str().map(str::to_string));
        }
    }
    let python = python_constraint
        .and_then(|c| python_dnf(&c).ok())
        .unwrap_or_else(Dnf::always);

    let mut deps = Vec::new();
    if project_mode {
        for (i, line) in project_deps.iter().enumerate() {
            let key = format!("project.dependencies[{i}]");
            deps.extend(project_dependency(doc, path, &key, line, &poetry_tables)?);
        }
    } else {
        for (table_key, table) in &poetry_tables {
            for (name, value) in table.iter() {
                if name.eq_ignore_ascii_case("python") {
                    continue;
                }
                for (key, value) in entry_values(&format!("{table_key}.{name}"), value) {
                    let Some(entry) = poetry_entry(doc, path, name, &key, value)? else {
                        continue;
                    };
                    deps.push(RootDep {
                        name: name.clone(),
                        origin: entry.origin,
                        extras: entry.extras,
                        marker: entry.marker,
                    });
                }
            }
        }
    }
    Ok(Project { path, deps, python })
}

/// A dependency value may be a list of alternatives (multiple-constraint form).
fn entry_values<'v>(key: &str, value: &'v Value) -> Vec<(String, &'v Value)> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| (format!("{key}[{i}]"), item))
            .collect(),
        other => vec![(key.to_string(), other)],
    }
}

struct PoetryEntry {
    origin: Origin,
    extras: Vec<String>,
    marker: Dnf,
}

const DEPENDENCY_KEYS: [&str; 18] = [
    "version",
    "python",
    "platform",
    "markers",
    "optional",
    "allow-prereleases",
    "allows-prereleases",
    "extras",
    "source",
    "develop",
    "git",
    "branch",
    "tag",
    "rev",
    "subdirectory",
    "path",
    "file",
    "url",
];

/// One `[tool.poetry.dependencies]` value. `None` for dependencies that are
/// never installed: optional ones (root extras are not requested) and ones
/// whose markers can never hold.
fn poetry_entry(
    doc: &Table,
    path: &Path,
    name: &str,
    key: &str,
    value: &Value,
) -> Result<Option<PoetryEntry>, PoetryErrorKind> {
    let table = match value {
        Value::String(constraint) => {
            return Ok(Some(PoetryEntry {
                origin: Origin::Registry(vec![constraint.clone()]),
                extras: Vec::new(),
                marker: Dnf::always(),
            }))
        }
        Value::Table(t) => t,
        _ => {
            return Err(invalid(
                path,
                key,
                "must be a version string or a table such as { version = \"^1.0\" }",
            ))
        }
    };
    if let Some(unknown) = table
        .keys()
        .find(|k| !DEPENDENCY_KEYS.contains(&k.as_str()))
    {
        return Err(invalid(
            path,
            format!("{key}.{unknown}"),
            "is not a Poetry dependency setting (a package name containing dots must be \
             quoted, e.g. `\"ruamel.yaml\" = \"*\"`)",
        ));
    }
    if opt_bool(table, "optional", path, key)? == Some(true) {
        return Ok(None);
    }
    let mut marker = match opt_str(table, "markers", path, key)? {
        Some(text) => marker_or_raw(&text, &BTreeSet::new()),
        None => Dnf::always(),
    };
    if let Some(python) = opt_str(table, "python", path, key)? {
        let dnf = python_dnf(&python).map_err(|reason| PoetryErrorKind::UnsupportedConstraint {
            path: path.to_path_buf(),
            package: name.to_string(),
            constraint: python.clone(),
            reason: format!("invalid `python` constraint: {reason}"),
        })?;
        marker = marker.and(&dnf);
    }
    if let Some(platform) = opt_str(table, "platform", path, key)? {
        marker = marker.and(&platform_dnf(&platform));
    }
    if marker.is_never() {
        return Ok(None);
    }
    let extras = str_array(table, "extras", path, key)?;
    if let Some(source) = opt_str(table, "source", path, key)? {
        check_source(doc, path, name, &source)?;
    }
    let subdirectory = opt_str(table, "subdirectory", path, key)?;
    let origin = if let Some(url) = opt_str(table, "git", path, key)? {
        let rev = opt_str(table, "rev", path, key)?;
        let tag = opt_str(table, "tag", path, key)?;
        let branch = opt_str(table, "branch", path, key)?;
        Origin::Git {
            url,
            reference: rev.or(tag).or(branch),
            subdirectory,
        }
    } else if let Some(local) =
        opt_str(table, "path", path, key)?.or(opt_str(table, "file", path, key)?)
    {
        return Err(unsupported_path(path, name, &local));
    } else if let Some(url) = opt_str(table, "url", path, key)? {
        if url.starts_with("file:") {
            return Err(unsupported_path(path, name, &url));
        }
        Origin::Url { url, subdirectory }
    } else {
        Origin::Registry(opt_str(table, "version", path, key)?.into_iter().collect())
    };
    Ok(Some(PoetryEntry {
        origin,
        extras,
        marker,
    }))
}

fn unsupported_path(path: &Path, package: &str, location: &str) -> PoetryErrorKind {
    PoetryErrorKind::UnsupportedDependency {
        path: path.to_path_buf(),
        package: package.to_string(),
        kind: format!("path dependency (`{location}`)"),
        hint: PATH_HINT.to_string(),
    }
}

/// `source = "name"` pins a dependency to a `[[tool.poetry.source]]`; only
/// PyPI itself is reachable from the image build.
fn check_source(
    doc: &Table,
    path: &Path,
    package: &str,
    source: &str,
) -> Result<(), PoetryErrorKind> {
    if source.eq_ignore_ascii_case("pypi") {
        return Ok(());
    }
    let url = doc
        .get("tool")
        .and_then(|t| t.get("poetry"))
        .and_then(|t| t.get("source"))
        .and_then(Value::as_array)
        .and_then(|sources| {
            sources.iter().filter_map(Value::as_table).find(|s| {
                s.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(source))
            })
        })
        .and_then(|s| s.get("url"))
        .and_then(Value::as_str);
    if url.is_some_and(is_pypi_url) {
        return Ok(());
    }
    Err(PoetryErrorKind::UnsupportedDependency {
        path: path.to_path_buf(),
        package: package.to_string(),
        kind: format!(
            "package from the package source `{source}` ({})",
            url.unwrap_or("not declared in [[tool.poetry.source]]")
        ),
        hint: INDEX_HINT.to_string(),
    })
}

fn is_pypi_url(url: &str) -> bool {
    [
        "://pypi.org/",
        "://pypi.python.org/",
        "://files.pythonhosted.org/",
    ]
    .iter()
    .any(|host| url.contains(host))
}

/// A PEP 508 `[project].dependencies` line, enriched by same-named
/// `[tool.poetry.dependencies]` entries the way Poetry 2 does for locking:
/// constraints intersect, markers are and-ed, and a git/url source replaces a
/// plain version requirement.
fn project_dependency(
    doc: &Table,
    path: &Path,
    key: &str,
    line: &str,
    poetry_tables: &[(String, &Table)],
) -> Result<Vec<RootDep>, PoetryErrorKind> {
    let req =
        parse_pep508(line).map_err(|reason| invalid(path, key, format!("`{line}` {reason}")))?;
    let norm = normalize_name(&req.name);
    // `extra == ...` markers evaluate to never: root extras are not requested.
    let marker = match &req.marker {
        Some(text) => marker_or_raw(text, &BTreeSet::new()),
        None => Dnf::always(),
    };
    let base_origin = match &req.url {
        Some(url) if url.starts_with("file:") => {
            return Err(unsupported_path(path, &req.name, url))
        }
        Some(url) => Origin::Url {
            url: url.clone(),
            subdirectory: None,
        },
        None => Origin::Registry(req.spec.iter().cloned().collect()),
    };
    let base = RootDep {
        name: req.name.clone(),
        origin: base_origin,
        extras: req.extras.clone(),
        marker,
    };
    if base.marker.is_never() {
        return Ok(Vec::new());
    }

    let mut enriched = Vec::new();
    for (table_key, table) in poetry_tables {
        for (name, value) in table.iter() {
            if normalize_name(name) != norm {
                continue;
            }
            for (entry_key, value) in entry_values(&format!("{table_key}.{name}"), value) {
                let Some(entry) = poetry_entry(doc, path, name, &entry_key, value)? else {
                    continue;
                };
                let marker = base.marker.and(&entry.marker);
                if marker.is_never() {
                    continue;
                }
                let origin = match (&base.origin, entry.origin) {
                    (Origin::Registry(mine), Origin::Registry(theirs)) => {
                        Origin::Registry(mine.iter().cloned().chain(theirs).collect())
                    }
                    (Origin::Registry(_), other) => other,
                    (own, _) => own.clone(),
                };
                enriched.push(RootDep {
                    name: base.name.clone(),
                    origin,
                    extras: base.extras.clone(),
                    marker,
                });
            }
        }
    }
    if enriched.is_empty() {
        enriched.push(base);
    }
    Ok(enriched)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pep508 {
    name: String,
    extras: Vec<String>,
    spec: Option<String>,
    url: Option<String>,
    marker: Option<String>,
}

fn parse_pep508(text: &str) -> Result<Pep508, String> {
    let (name, rest) = leading_name(text).ok_or("does not start with a package name")?;
    let mut rest = rest.trim_start();
    let mut extras = Vec::new();
    if let Some(after) = rest.strip_prefix('[') {
        let (inner, tail) = after.split_once(']').ok_or("has an unclosed `[`")?;
        extras = inner
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect();
        rest = tail.trim_start();
    }
    let non_empty = |s: &str| {
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_string())
    };
    if let Some(after) = rest.strip_prefix('@') {
        let after = after.trim_start();
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        if url.is_empty() {
            return Err("has `@` but no URL".to_string());
        }
        let tail = tail.trim_start();
        let marker = if tail.is_empty() {
            None
        } else if let Some(m) = tail.strip_prefix(';') {
            non_empty(m)
        } else {
            return Err("has text after the URL that is not a `; marker`".to_string());
        };
        return Ok(Pep508 {
            name: name.to_string(),
            extras,
            spec: None,
            url: Some(url.to_string()),
            marker,
        });
    }
    let (spec, marker) = match rest.split_once(';') {
        Some((spec, marker)) => (spec, non_empty(marker)),
        None => (rest, None),
    };
    let spec = spec.trim();
    let spec = spec
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or(spec);
    Ok(Pep508 {
        name: name.to_string(),
        extras,
        spec: non_empty(spec),
        url: None,
        marker,
    })
}

// ---------------------------------------------------------------------------
// Output without a lock

fn unlocked_requirement(path: &Path, dep: &RootDep) -> Result<Requirement, PoetryErrorKind> {
    let mut line = dep.name.clone();
    if !dep.extras.is_empty() {
        line.push('[');
        line.push_str(&dep.extras.join(","));
        line.push(']');
    }
    match &dep.origin {
        Origin::Registry(constraints) => {
            let spec = pep440_spec(constraints).map_err(|(constraint, reason)| {
                PoetryErrorKind::UnsupportedConstraint {
                    path: path.to_path_buf(),
                    package: dep.name.clone(),
                    constraint,
                    reason,
                }
            })?;
            line.push_str(&spec);
        }
        Origin::Git {
            url,
            reference,
            subdirectory,
        } => {
            line.push_str(" @ ");
            line.push_str(&git_requirement_url(
                url,
                reference.as_deref(),
                subdirectory.as_deref(),
            ));
        }
        Origin::Url { url, subdirectory } => {
            line.push_str(" @ ");
            line.push_str(&with_subdirectory(url.clone(), subdirectory.as_deref()));
        }
    }
    if let Some(marker) = dep.marker.render() {
        line.push_str(" ; ");
        line.push_str(&marker);
    }
    Ok(Requirement {
        name: normalize_name(&dep.name),
        spec: line,
    })
}

/// PEP 440 specifier for constraints that must all hold; the error carries the
/// offending constraint and why.
fn pep440_spec(constraints: &[String]) -> Result<String, (String, String)> {
    let mut clauses = Vec::new();
    for constraint in constraints {
        let mut alternatives =
            parse_poetry_constraint(constraint).map_err(|r| (constraint.clone(), r))?;
        if alternatives.len() > 1 {
            return Err((
                constraint.clone(),
                "`||` alternatives have no PEP 440 equivalent; use a single range, or a list of \
                 constraints each with its own `python`/`markers`"
                    .to_string(),
            ));
        }
        clauses.extend(alternatives.pop().unwrap_or_default());
    }
    Ok(clauses
        .iter()
        .map(Clause::render)
        .collect::<Vec<_>>()
        .join(","))
}

fn git_requirement_url(url: &str, reference: Option<&str>, subdirectory: Option<&str>) -> String {
    let mut out = if url.starts_with("git+") {
        url.to_string()
    } else if let Some(ssh) = scp_to_ssh(url) {
        format!("git+{ssh}")
    } else {
        format!("git+{url}")
    };
    if let Some(reference) = reference {
        out.push('@');
        out.push_str(reference);
    }
    with_subdirectory(out, subdirectory)
}

/// pip does not understand scp-style `git@host:org/repo.git`.
fn scp_to_ssh(url: &str) -> Option<String> {
    if url.contains("://") {
        return None;
    }
    let (user_host, repo) = url.split_once(':')?;
    user_host
        .contains('@')
        .then(|| format!("ssh://{user_host}/{}", repo.trim_start_matches('/')))
}

fn with_subdirectory(mut url: String, subdirectory: Option<&str>) -> String {
    if let Some(sub) = subdirectory {
        url.push_str("#subdirectory=");
        url.push_str(sub);
    }
    url
}

// ---------------------------------------------------------------------------
// Poetry version constraints

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
    Compatible,
    Arbitrary,
    In,
    NotIn,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Compatible => "~=",
            Op::Arbitrary => "===",
            Op::In => "in",
            Op::NotIn => "not in",
        }
    }

    fn negate(self) -> Option<Op> {
        Some(match self {
            Op::Lt => Op::Ge,
            Op::Le => Op::Gt,
            Op::Ge => Op::Lt,
            Op::Gt => Op::Le,
            Op::Eq => Op::Ne,
            Op::Ne => Op::Eq,
            Op::In => Op::NotIn,
            Op::NotIn => Op::In,
            Op::Compatible | Op::Arbitrary => return None,
        })
    }

    /// The operator for the swapped operands (`"3.8" <= v` is `v >= "3.8"`).
    fn flip(self) -> Option<Op> {
        Some(match self {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Ge => Op::Le,
            Op::Gt => Op::Lt,
            Op::Eq => Op::Eq,
            Op::Ne => Op::Ne,
            Op::Compatible | Op::Arbitrary | Op::In | Op::NotIn => return None,
        })
    }
}

/// One PEP 440 clause; `version` may end in `.*` for `==`/`!=`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Clause {
    op: Op,
    version: String,
}

impl Clause {
    fn new(op: Op, version: impl Into<String>) -> Self {
        Clause {
            op,
            version: version.into(),
        }
    }

    fn render(&self) -> String {
        format!("{}{}", self.op.as_str(), self.version)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoetryOp {
    Bare,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Compatible,
    Tilde,
    Caret,
    Arbitrary,
}

/// Parses a Poetry constraint into alternatives (`||`) of clause lists that
/// must all hold; `[[]]` means any version.
fn parse_poetry_constraint(text: &str) -> Result<Vec<Vec<Clause>>, String> {
    let mut alternatives = Vec::new();
    // Poetry accepts both `||` and `|`; splitting on `|` leaves empty pieces between bars.
    for piece in text.split('|').map(str::trim).filter(|p| !p.is_empty()) {
        alternatives.push(parse_constraint_group(piece)?);
    }
    if alternatives.is_empty() {
        alternatives.push(Vec::new());
    }
    Ok(alternatives)
}

fn parse_constraint_group(text: &str) -> Result<Vec<Clause>, String> {
    let mut clauses = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.is_empty() {
            return Ok(clauses);
        }
        let (op, op_text, after) = split_operator(rest);
        let after = after.trim_start();
        let end = after
            .find(|c: char| c.is_whitespace() || c == ',')
            .unwrap_or(after.len());
        let (version, tail) = after.split_at(end);
        if version.is_empty() {
            return Err(format!("operator `{op_text}` is not followed by a version"));
        }
        expand_clause(op, version, &mut clauses)?;
        rest = tail;
    }
}

fn split_operator(text: &str) -> (PoetryOp, &'static str, &str) {
    const OPERATORS: [(&str, PoetryOp); 12] = [
        ("===", PoetryOp::Arbitrary),
        ("~=", PoetryOp::Compatible),
        ("==", PoetryOp::Eq),
        ("!=", PoetryOp::Ne),
        ("<>", PoetryOp::Ne),
        (">=", PoetryOp::Ge),
        ("<=", PoetryOp::Le),
        ("<", PoetryOp::Lt),
        (">", PoetryOp::Gt),
        ("=", PoetryOp::Eq),
        ("^", PoetryOp::Caret),
        ("~", PoetryOp::Tilde),
    ];
    for (token, op) in OPERATORS {
        if let Some(rest) = text.strip_prefix(token) {
            return (op, token, rest);
        }
    }
    (PoetryOp::Bare, "", text)
}

fn expand_clause(op: PoetryOp, raw: &str, out: &mut Vec<Clause>) -> Result<(), String> {
    if op == PoetryOp::Arbitrary {
        out.push(Clause::new(Op::Arbitrary, raw));
        return Ok(());
    }
    let version = raw
        .strip_prefix(['v', 'V'])
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(raw);
    if matches!(version, "*" | "x" | "X") {
        return match op {
            PoetryOp::Bare | PoetryOp::Eq | PoetryOp::Ge => Ok(()),
            _ => Err(format!("the wildcard `{raw}` cannot follow an operator")),
        };
    }
    let (base, wildcard) = strip_wildcard(version);
    if wildcard {
        match split_release(base) {
            Some((_, _, "")) => {}
            _ => return Err(format!("`{raw}` is not a valid version wildcard")),
        }
    } else if Version::parse(version).is_none() {
        return Err(format!("`{raw}` is not a valid version"));
    }
    let no_wildcard = |what: &str| {
        Err(format!(
            "`{what}` cannot be combined with the wildcard `{raw}`"
        ))
    };
    match op {
        PoetryOp::Bare | PoetryOp::Eq if wildcard => {
            out.push(Clause::new(Op::Eq, format!("{base}.*")))
        }
        PoetryOp::Bare | PoetryOp::Eq => out.push(Clause::new(Op::Eq, version)),
        PoetryOp::Ne if wildcard => out.push(Clause::new(Op::Ne, format!("{base}.*"))),
        PoetryOp::Ne => out.push(Clause::new(Op::Ne, version)),
        // Poetry ignores a wildcard after an ordering operator.
        PoetryOp::Lt => out.push(Clause::new(Op::Lt, base)),
        PoetryOp::Le => out.push(Clause::new(Op::Le, base)),
        PoetryOp::Gt => out.push(Clause::new(Op::Gt, base)),
        PoetryOp::Ge => out.push(Clause::new(Op::Ge, base)),
        PoetryOp::Compatible | PoetryOp::Tilde | PoetryOp::Caret if wildcard => {
            return no_wildcard(match op {
                PoetryOp::Compatible => "~=",
                PoetryOp::Tilde => "~",
                _ => "^",
            })
        }
        PoetryOp::Compatible | PoetryOp::Tilde | PoetryOp::Caret => {
            let (epoch, release, _) =
                split_release(version).ok_or_else(|| format!("`{raw}` is not a valid version"))?;
            let single = release.len() == 1;
            if op == PoetryOp::Compatible && !single {
                out.push(Clause::new(Op::Compatible, version));
                return Ok(());
            }
            let bump_at = match op {
                // `~=1` is not valid PEP 440; Poetry reads it like `~1`.
                PoetryOp::Compatible => 0,
                PoetryOp::Tilde if single => 0,
                PoetryOp::Tilde => 1,
                _ => caret_index(&release),
            };
            let upper = bump(epoch, &release, bump_at)
                .ok_or_else(|| format!("`{raw}` has a release number too large to bump"))?;
            out.push(Clause::new(Op::Ge, version));
            out.push(Clause::new(Op::Lt, upper));
        }
        PoetryOp::Arbitrary => out.push(Clause::new(Op::Arbitrary, raw)),
    }
    Ok(())
}

/// `1.2.*`, `1.x`, `1.*.*` -> (`1.2` / `1` / `1`, true).
fn strip_wildcard(version: &str) -> (&str, bool) {
    let mut base = version;
    let mut wildcard = false;
    while let Some(stripped) = [".*", ".x", ".X"].iter().find_map(|w| base.strip_suffix(w)) {
        base = stripped;
        wildcard = true;
    }
    (base, wildcard)
}

/// The component a caret bumps: the left-most non-zero one, within the
/// precision given (`^0.0` bumps the minor, `^0` the major).
fn caret_index(release: &[u64]) -> usize {
    let major = release.first().copied().unwrap_or(0);
    let minor = release.get(1).copied();
    if major > 0 || release.len() == 1 {
        0
    } else if minor.is_some_and(|m| m > 0) || release.len() == 2 {
        1
    } else {
        2
    }
}

/// Increments `release[index]` and zeroes what follows, keeping the precision
/// the user wrote (`^1.2` -> `2.0`, `^1` -> `2`).
fn bump(epoch: &str, release: &[u64], index: usize) -> Option<String> {
    let len = release.len().max(index + 1);
    let mut parts = Vec::with_capacity(len);
    for i in 0..len {
        let current = release.get(i).copied().unwrap_or(0);
        parts.push(match i.cmp(&index) {
            Ordering::Less => current,
            Ordering::Equal => current.checked_add(1)?,
            Ordering::Greater => 0,
        });
    }
    let joined = parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".");
    Some(if epoch.is_empty() {
        joined
    } else {
        format!("{epoch}!{joined}")
    })
}

/// Splits `[N!]1.2.3<tail>` into epoch text, release numbers and the rest.
fn split_release(version: &str) -> Option<(&str, Vec<u64>, &str)> {
    let (epoch, mut rest) = match version.split_once('!') {
        Some((epoch, rest)) => {
            if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (epoch, rest)
        }
        None => ("", version),
    };
    let mut release = Vec::new();
    loop {
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        let (digits, tail) = rest.split_at(end);
        release.push(digits.parse::<u64>().ok()?);
        rest = tail;
        match rest.strip_prefix('.') {
            Some(next) if next.starts_with(|c: char| c.is_ascii_digit()) => rest = next,
            _ => break,
        }
    }
    Some((epoch, release, rest))
}

// ---------------------------------------------------------------------------
// PEP 440 versions, enough to match locked versions against constraints

#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    epoch: u64,
    release: Vec<u64>,
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Option<String>,
}

impl Version {
    fn parse(text: &str) -> Option<Version> {
        let lower = text.trim().to_ascii_lowercase();
        let text = lower.strip_prefix('v').unwrap_or(&lower);
        let (text, local) = match text.split_once('+') {
            Some((public, local)) => {
                let valid = !local.is_empty()
                    && local
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
                if !valid {
                    return None;
                }
                (public, Some(local.replace(['-', '_'], ".")))
            }
            None => (text, None),
        };
        let (epoch, release, mut rest) = split_release(text)?;
        let epoch = if epoch.is_empty() {
            0
        } else {
            epoch.parse().ok()?
        };
        let (mut pre, mut post, mut dev) = (None, None, None);
        // Each of pre, post and dev may appear once, in that order.
        let mut stage = 0u8;
        while !rest.is_empty() {
            let dash = rest.starts_with('-');
            let trimmed = rest.trim_start_matches(['.', '-', '_']);
            let word_end = trimmed
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(trimmed.len());
            let (word, after) = trimmed.split_at(word_end);
            let (number, after) = take_number(after);
            match word {
                "a" | "alpha" | "b" | "beta" | "c" | "rc" | "pre" | "preview" if stage == 0 => {
                    let kind = match word {
                        "a" | "alpha" => 0,
                        "b" | "beta" => 1,
                        _ => 2,
                    };
                    pre = Some((kind, number.unwrap_or(0)));
                    stage = 1;
                }
                "post" | "rev" | "r" if stage <= 1 => {
                    post = Some(number.unwrap_or(0));
                    stage = 2;
                }
                "" if dash && stage <= 1 && number.is_some() => {
                    post = number;
                    stage = 2;
                }
                "dev" if stage <= 2 => {
                    dev = Some(number.unwrap_or(0));
                    stage = 3;
                }
                _ => return None,
            }
            rest = after;
        }
        Some(Version {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    /// PEP 440 ordering, ignoring the local label.
    fn cmp_public(&self, other: &Version) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| cmp_release(&self.release, &other.release))
            .then_with(|| self.pre_key().cmp(&other.pre_key()))
            .then_with(|| self.post_key().cmp(&other.post_key()))
            .then_with(|| self.dev_key().cmp(&other.dev_key()))
    }

    fn pre_key(&self) -> (u8, u8, u64) {
        match self.pre {
            Some((kind, n)) => (1, kind, n),
            // 1.0.dev1 sorts before 1.0a1.
            None if self.post.is_none() && self.dev.is_some() => (0, 0, 0),
            None => (2, 0, 0),
        }
    }

    fn post_key(&self) -> (u8, u64) {
        self.post.map_or((0, 0), |n| (1, n))
    }

    fn dev_key(&self) -> (u8, u64) {
        self.dev.map_or((1, 0), |n| (0, n))
    }

    fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    fn release_starts_with(&self, prefix: &[u64]) -> bool {
        prefix
            .iter()
            .enumerate()
            .all(|(i, p)| self.release.get(i).copied().unwrap_or(0) == *p)
    }
}

fn take_number(text: &str) -> (Option<u64>, &str) {
    let trimmed = text.trim_start_matches(['.', '-', '_']);
    let end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    if end == 0 {
        return (None, text);
    }
    let (digits, rest) = trimmed.split_at(end);
    (Some(digits.parse().unwrap_or(u64::MAX)), rest)
}

fn cmp_release(a: &[u64], b: &[u64]) -> Ordering {
    let len = a.len().max(b.len());
    (0..len)
        .map(|i| {
            let x = a.get(i).copied().unwrap_or(0);
            let y = b.get(i).copied().unwrap_or(0);
            x.cmp(&y)
        })
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// Whether `version` satisfies a clause. Anything this module cannot parse
/// counts as satisfied: these checks only refine choices and catch stale
/// locks, and must not reject what pip would accept.
fn clause_matches(clause: &Clause, version: &Version, raw: &str) -> bool {
    let target = || Version::parse(&clause.version);
    match clause.op {
        Op::Eq | Op::Ne => {
            let equal = if let Some(prefix) = clause.version.strip_suffix(".*") {
                match split_release(prefix) {
                    Some((epoch, release, "")) => {
                        let epoch: u64 = if epoch.is_empty() {
                            0
                        } else {
                            epoch.parse().unwrap_or(0)
                        };
                        version.epoch == epoch && version.release_starts_with(&release)
                    }
                    _ => return true,
                }
            } else {
                match target() {
                    Some(t) => {
                        version.cmp_public(&t) == Ordering::Equal
                            && (t.local.is_none() || t.local == version.local)
                    }
                    None => return true,
                }
            };
            equal == (clause.op == Op::Eq)
        }
        Op::Lt => target().is_none_or(|t| {
            // `<2.0` excludes 2.0's own pre-releases.
            let pre_of_bound = !t.is_prerelease()
                && version.is_prerelease()
                && version.epoch == t.epoch
                && cmp_release(&version.release, &t.release) == Ordering::Equal;
            version.cmp_public(&t) == Ordering::Less && !pre_of_bound
        }),
        Op::Le => target().is_none_or(|t| version.cmp_public(&t) != Ordering::Greater),
        Op::Gt => target().is_none_or(|t| version.cmp_public(&t) == Ordering::Greater),
        Op::Ge => target().is_none_or(|t| version.cmp_public(&t) != Ordering::Less),
        Op::Compatible => target().is_none_or(|t| {
            let prefix = t.release.split_last().map_or(&[][..], |(_, init)| init);
            version.cmp_public(&t) != Ordering::Less && version.release_starts_with(prefix)
        }),
        Op::Arbitrary => raw.trim().eq_ignore_ascii_case(clause.version.trim()),
        Op::In | Op::NotIn => true,
    }
}

/// Whether a locked version satisfies every constraint.
fn satisfies(constraints: &[String], version_text: &str) -> bool {
    let Some(version) = Version::parse(version_text) else {
        return true;
    };
    constraints
        .iter()
        .all(|constraint| match parse_poetry_constraint(constraint) {
            Ok(alternatives) => alternatives.iter().any(|clauses| {
                clauses
                    .iter()
                    .all(|clause| clause_matches(clause, &version, version_text))
            }),
            Err(_) => true,
        })
}

// ---------------------------------------------------------------------------
// Environment markers in disjunctive normal form

#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    /// `var op "value"`.
    Cmp { var: String, op: Op, value: String },
    /// `"value" in var` / `"value" not in var`.
    ValueIn { value: String, op: Op, var: String },
    /// Marker text this module could not parse; passed through untouched.
    Raw(String),
}

impl Atom {
    fn cmp(var: &str, op: Op, value: impl Into<String>) -> Atom {
        Atom::Cmp {
            var: var.to_string(),
            op,
            value: value.into(),
        }
    }

    fn negate(&self) -> Option<Atom> {
        match self {
            Atom::Cmp { var, op, value } => Some(Atom::Cmp {
                var: var.clone(),
                op: op.negate()?,
                value: value.clone(),
            }),
            Atom::ValueIn { value, op, var } => Some(Atom::ValueIn {
                value: value.clone(),
                op: op.negate()?,
                var: var.clone(),
            }),
            Atom::Raw(_) => None,
        }
    }

    fn render(&self, in_conjunction: bool) -> String {
        match self {
            Atom::Cmp { var, op, value } => format!("{var} {} {}", op.as_str(), quote(value)),
            Atom::ValueIn { value, op, var } => format!("{} {} {var}", quote(value), op.as_str()),
            Atom::Raw(text) if in_conjunction && text.contains(" or ") => format!("({text})"),
            Atom::Raw(text) => text.clone(),
        }
    }
}

fn quote(value: &str) -> String {
    if value.contains('"') {
        format!("'{value}'")
    } else {
        format!("\"{value}\"")
    }
}

/// Past this many alternatives a marker is dropped (the package is installed
/// everywhere): over-installing beats an exponential blow-up on odd locks.
const MAX_ALTERNATIVES: usize = 32;

/// An or of and-ed atoms. No alternatives = never; an empty one = always.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dnf(Vec<Vec<Atom>>);

impl Dnf {
    fn always() -> Dnf {
        Dnf(vec![Vec::new()])
    }

    fn never() -> Dnf {
        Dnf(Vec::new())
    }

    fn atom(atom: Atom) -> Dnf {
        Dnf(vec![vec![atom]])
    }

    fn from_bool(value: bool) -> Dnf {
        if value {
            Dnf::always()
        } else {
            Dnf::never()
        }
    }

    fn is_always(&self) -> bool {
        self.0.iter().any(Vec::is_empty)
    }

    fn is_never(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `other`'s alternatives; returns whether that allowed anything new.
    fn or_in(&mut self, other: &Dnf) -> bool {
        let mut changed = false;
        for conj in &other.0 {
            if self.0.iter().any(|mine| conj_implies(conj, mine)) {
                continue;
            }
            self.0.retain(|mine| !conj_implies(mine, conj));
            self.0.push(conj.clone());
            changed = true;
        }
        if changed {
            self.resolve();
        }
        if self.0.len() > MAX_ALTERNATIVES {
            *self = Dnf::always();
        }
        changed
    }

    /// `(a and P) or (not a and Q)` with P implying Q is `P or (not a and Q)`;
    /// this folds the complementary python ranges that version selection and
    /// edge markers produce (`(py < 3.10 and py >= 3.9) or py >= 3.10`).
    fn resolve(&mut self) {
        'again: loop {
            for (i, p) in self.0.iter().enumerate() {
                for (j, q) in self.0.iter().enumerate() {
                    if i == j {
                        continue;
                    }
                    for atom in p {
                        let Some(negated) = atom.negate() else {
                            continue;
                        };
                        if !q.contains(&negated) {
                            continue;
                        }
                        let rest_p: Vec<Atom> = p.iter().filter(|a| *a != atom).cloned().collect();
                        let rest_q: Vec<Atom> =
                            q.iter().filter(|a| **a != negated).cloned().collect();
                        if conj_implies(&rest_p, &rest_q) {
                            let mut alternatives = std::mem::take(&mut self.0);
                            alternatives.swap_remove(i);
                            for conj in [rest_p].iter().chain(alternatives.iter()) {
                                if !self.0.iter().any(|mine| conj_implies(conj, mine)) {
                                    self.0.retain(|mine| !conj_implies(mine, conj));
                                    self.0.push(conj.clone());
                                }
                            }
                            continue 'again;
                        }
                    }
                }
            }
            return;
        }
    }

    fn and(&self, other: &Dnf) -> Dnf {
        let mut out = Dnf::never();
        for a in &self.0 {
            for b in &other.0 {
                let mut conj = a.clone();
                for atom in b {
                    if !conj.contains(atom) {
                        conj.push(atom.clone());
                    }
                }
                if let Some(conj) = simplify_conjunction(conj) {
                    out.or_in(&Dnf(vec![conj]));
                }
            }
        }
        out
    }

    /// `None` when an atom cannot be negated (unparsed marker text, `~=`).
    fn not(&self) -> Option<Dnf> {
        let mut out = Dnf::always();
        for conj in &self.0 {
            let mut negated = Dnf::never();
            for atom in conj {
                negated.or_in(&Dnf::atom(atom.negate()?));
            }
            out = out.and(&negated);
        }
        Some(out)
    }

    /// The marker text; `None` when the marker always holds.
    fn render(&self) -> Option<String> {
        if self.is_always() {
            return None;
        }
        if self.is_never() {
            return Some("python_version < \"0\"".to_string());
        }
        let mut alternatives: Vec<String> = self
            .0
            .iter()
            .map(|conj| {
                let multi = conj.len() > 1;
                conj.iter()
                    .map(|atom| atom.render(multi))
                    .collect::<Vec<_>>()
                    .join(" and ")
            })
            .collect();
        alternatives.sort();
        alternatives.dedup();
        if alternatives.len() == 1 {
            alternatives.pop()
        } else {
            Some(
                alternatives
                    .iter()
                    .map(|a| format!("({a})"))
                    .collect::<Vec<_>>()
                    .join(" or "),
            )
        }
    }
}

/// Whether `strong` implies `weak`, judged atom by atom.
fn conj_implies(strong: &[Atom], weak: &[Atom]) -> bool {
    weak.iter()
        .all(|w| strong.iter().any(|s| atom_implies(s, w)))
}

fn atom_implies(strong: &Atom, weak: &Atom) -> bool {
    if strong == weak {
        return true;
    }
    let (
        Atom::Cmp {
            var: sv,
            op: sop,
            value: sx,
        },
        Atom::Cmp {
            var: wv,
            op: wop,
            value: wx,
        },
    ) = (strong, weak)
    else {
        return false;
    };
    if sv != wv {
        return false;
    }
    if !PYTHON_VARS.contains(&sv.as_str()) {
        // `sys_platform == "linux"` implies `sys_platform != "win32"`.
        return *sop == Op::Eq && *wop == Op::Ne && sx != wx;
    }
    let (Some(s), Some(w)) = (Version::parse(sx), Version::parse(wx)) else {
        return false;
    };
    let order = s.cmp_public(&w);
    match (sop, wop) {
        (Op::Ge | Op::Gt | Op::Eq, Op::Ge) => order != Ordering::Less,
        (Op::Ge | Op::Eq, Op::Gt) => order == Ordering::Greater,
        (Op::Gt, Op::Gt) => order != Ordering::Less,
        (Op::Le | Op::Lt | Op::Eq, Op::Le) => order != Ordering::Greater,
        (Op::Le | Op::Eq, Op::Lt) => order == Ordering::Less,
        (Op::Lt, Op::Lt) => order != Ordering::Greater,
        _ => false,
    }
}

const PYTHON_VARS: [&str; 2] = ["python_version", "python_full_version"];

/// Drops redundant python bounds; `None` when the atoms contradict each other.
fn simplify_conjunction(atoms: Vec<Atom>) -> Option<Vec<Atom>> {
    for atom in &atoms {
        if atom
            .negate()
            .is_some_and(|negated| atoms.contains(&negated))
        {
            return None;
        }
    }
    for (i, a) in atoms.iter().enumerate() {
        for b in atoms.iter().skip(i + 1) {
            if let (
                Atom::Cmp {
                    var: va,
                    op: Op::Eq,
                    value: xa,
                },
                Atom::Cmp {
                    var: vb,
                    op: Op::Eq,
                    value: xb,
                },
            ) = (a, b)
            {
                if va != vb {
                    continue;
                }
                let differ = if PYTHON_VARS.contains(&va.as_str()) {
                    match (Version::parse(xa), Version::parse(xb)) {
                        (Some(x), Some(y)) => x.cmp_public(&y) != Ordering::Equal,
                        _ => false,
                    }
                } else {
                    xa != xb
                };
                if differ {
                    return None;
                }
            }
        }
    }

    let mut keep = vec![true; atoms.len()];
    for var in PYTHON_VARS {
        // (index, bound, strict)
        let mut lower: Option<(usize, Version, bool)> = None;
        let mut upper: Option<(usize, Version, bool)> = None;
        for (i, atom) in atoms.iter().enumerate() {
            let Atom::Cmp { var: v, op, value } = atom else {
                continue;
            };
            if v != var {
                continue;
            }
            let Some(bound) = Version::parse(value) else {
                continue;
            };
            let (slot, strict, tighter) = match op {
                Op::Ge | Op::Gt => (&mut lower, *op == Op::Gt, Ordering::Greater),
                Op::Le | Op::Lt => (&mut upper, *op == Op::Lt, Ordering::Less),
                _ => continue,
            };
            let replace = match slot {
                None => true,
                Some((_, current, current_strict)) => match bound.cmp_public(current) {
                    Ordering::Equal => strict && !*current_strict,
                    order => order == tighter,
                },
            };
            let loser = if replace {
                slot.replace((i, bound, strict)).map(|(j, _, _)| j)
            } else {
                Some(i)
            };
            if let Some(k) = loser.and_then(|j| keep.get_mut(j)) {
                *k = false;
            }
        }
        if let (Some((_, low, low_strict)), Some((_, high, high_strict))) = (&lower, &upper) {
            match low.cmp_public(high) {
                Ordering::Greater => return None,
                Ordering::Equal if *low_strict || *high_strict => return None,
                _ => {}
            }
        }
        for atom in &atoms {
            let Atom::Cmp {
                var: v,
                op: Op::Eq,
                value,
            } = atom
            else {
                continue;
            };
            let Some(exact) = Version::parse(value).filter(|_| v == var) else {
                continue;
            };
            if let Some((_, low, strict)) = &lower {
                match exact.cmp_public(low) {
                    Ordering::Less => return None,
                    Ordering::Equal if *strict => return None,
                    _ => {}
                }
            }
            if let Some((_, high, strict)) = &upper {
                match exact.cmp_public(high) {
                    Ordering::Greater => return None,
                    Ordering::Equal if *strict => return None,
                    _ => {}
                }
            }
        }
    }
    Some(
        atoms
            .into_iter()
            .zip(keep)
            .filter_map(|(atom, keep)| keep.then_some(atom))
            .collect(),
    )
}

/// Parses a marker; text this module cannot parse is kept verbatim so pip can
/// still evaluate it.
fn marker_or_raw(text: &str, extras: &BTreeSet<String>) -> Dnf {
    let text = text.trim();
    if text.is_empty() {
        return Dnf::always();
    }
    parse_marker(text, extras).unwrap_or_else(|_| Dnf::atom(Atom::Raw(text.to_string())))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Str(String),
    Op(Op),
    Open,
    Close,
    And,
    Or,
}

/// Parses a PEP 508 marker. `extra == "x"` is decided here from `extras`
/// (the extras enabled on the package owning the marker), because pip treats
/// `extra` as unset in a requirements file.
fn parse_marker(text: &str, extras: &BTreeSet<String>) -> Result<Dnf, String> {
    let tokens = tokenize_marker(text)?;
    let mut parser = MarkerParser {
        tokens,
        pos: 0,
        depth: 0,
        extras,
    };
    let dnf = parser.parse_or()?;
    if parser.pos != parser.tokens.len() {
        return Err("unexpected text after the marker".to_string());
    }
    Ok(dnf)
}

fn tokenize_marker(text: &str) -> Result<Vec<Tok>, String> {
    const OPERATORS: [(&str, Op); 8] = [
        ("===", Op::Arbitrary),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("~=", Op::Compatible),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let mut tokens = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        let Some(c) = rest.chars().next() else {
            break;
        };
        if let Some(after) = rest.strip_prefix('(') {
            tokens.push(Tok::Open);
            rest = after;
        } else if let Some(after) = rest.strip_prefix(')') {
            tokens.push(Tok::Close);
            rest = after;
        } else if c == '"' || c == '\'' {
            let body = rest.get(1..).unwrap_or("");
            let (value, after) = body.split_once(c).ok_or("unterminated string")?;
            tokens.push(Tok::Str(value.to_string()));
            rest = after;
        } else if let Some((op, after)) = OPERATORS
            .iter()
            .find_map(|(token, op)| rest.strip_prefix(token).map(|after| (*op, after)))
        {
            tokens.push(Tok::Op(op));
            rest = after;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let end = rest
                .find(|d: char| !(d.is_ascii_alphanumeric() || d == '_' || d == '.'))
                .unwrap_or(rest.len());
            let (word, after) = rest.split_at(end);
            let token = match word {
                "and" => Tok::And,
                "or" => Tok::Or,
                "in" if tokens.last() == Some(&Tok::Ident("not".to_string())) => {
                    tokens.pop();
                    Tok::Op(Op::NotIn)
                }
                "in" => Tok::Op(Op::In),
                _ => Tok::Ident(word.to_string()),
            };
            tokens.push(token);
            rest = after;
        } else {
            return Err(format!("unexpected character `{c}`"));
        }
    }
    Ok(tokens)
}

struct MarkerParser<'a> {
    tokens: Vec<Tok>,
    pos: usize,
    depth: usize,
    extras: &'a BTreeSet<String>,
}

impl MarkerParser<'_> {
    fn next(&mut self) -> Option<Tok> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn eat(&mut self, token: &Tok) -> bool {
        if self.tokens.get(self.pos) == Some(token) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn parse_or(&mut self) -> Result<Dnf, String> {
        let mut dnf = self.parse_and()?;
        while self.eat(&Tok::Or) {
            let right = self.parse_and()?;
            dnf.or_in(&right);
        }
        Ok(dnf)
    }

    fn parse_and(&mut self) -> Result<Dnf, String> {
        let mut dnf = self.parse_item()?;
        while self.eat(&Tok::And) {
            let right = self.parse_item()?;
            dnf = dnf.and(&right);
        }
        Ok(dnf)
    }

    fn parse_item(&mut self) -> Result<Dnf, String> {
        if self.eat(&Tok::Open) {
            // Bounded so hostile input cannot exhaust the stack.
            if self.depth >= 32 {
                return Err("markers nested too deeply".to_string());
            }
            self.depth += 1;
            let inner = self.parse_or()?;
            self.depth -= 1;
            if !self.eat(&Tok::Close) {
                return Err("missing `)`".to_string());
            }
            return Ok(inner);
        }
        let left = self.next().ok_or("marker ends early")?;
        let Some(Tok::Op(op)) = self.next() else {
            return Err("expected a comparison operator".to_string());
        };
        let right = self.next().ok_or("marker ends early")?;
        match (left, right) {
            (Tok::Ident(var), Tok::Str(value)) => self.compare(var, op, value),
            (Tok::Str(value), Tok::Ident(var)) => match op {
                Op::In | Op::NotIn if var != "extra" => {
                    Ok(Dnf::atom(Atom::ValueIn { value, op, var }))
                }
                _ => {
                    let flipped = op.flip().ok_or("unsupported reversed comparison")?;
                    self.compare(var, flipped, value)
                }
            },
            _ => Err("a marker compares a variable with a quoted string".to_string()),
        }
    }

    fn compare(&self, var: String, op: Op, value: String) -> Result<Dnf, String> {
        if var == "extra" {
            let enabled = self.extras.contains(&normalize_name(&value));
            return match op {
                Op::Eq => Ok(Dnf::from_bool(enabled)),
                Op::Ne => Ok(Dnf::from_bool(!enabled)),
                _ => Err("unsupported comparison on `extra`".to_string()),
            };
        }
        Ok(Dnf::atom(Atom::Cmp { var, op, value }))
    }
}

/// A Poetry `python = "..."` constraint as a marker, like Poetry's own
/// translation: `python_version` for X.Y precision, `python_full_version` beyond.
fn python_dnf(constraint: &str) -> Result<Dnf, String> {
    let mut out = Dnf::never();
    for clauses in parse_poetry_constraint(constraint)? {
        let mut conj = Dnf::always();
        for clause in &clauses {
            for atom in python_atoms(clause) {
                conj = conj.and(&Dnf::atom(atom));
            }
        }
        out.or_in(&conj);
    }
    Ok(out)
}

fn python_atoms(clause: &Clause) -> Vec<Atom> {
    let version = clause.version.as_str();
    match clause.op {
        Op::Compatible => {
            let prefix = split_release(version).and_then(|(epoch, release, _)| {
                let (_, init) = release.split_last()?;
                let joined = init
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(".");
                Some(if epoch.is_empty() {
                    format!("{joined}.*")
                } else {
                    format!("{epoch}!{joined}.*")
                })
            });
            let mut atoms = vec![Atom::cmp(python_var(version), Op::Ge, version)];
            if let Some(prefix) = prefix {
                atoms.push(Atom::cmp(python_var(&prefix), Op::Eq, prefix.clone()));
            }
            atoms
        }
        Op::Arbitrary => vec![Atom::cmp("python_full_version", Op::Arbitrary, version)],
        op => vec![Atom::cmp(python_var(version), op, version)],
    }
}

fn python_var(version: &str) -> &'static str {
    match split_release(version.trim_end_matches(".*")) {
        Some(("", release, "")) if release.len() <= 2 => "python_version",
        _ => "python_full_version",
    }
}

/// Poetry's `platform = "linux"` (also `!=win32`, `linux || darwin`).
fn platform_dnf(platform: &str) -> Dnf {
    let mut out = Dnf::never();
    for alternative in platform.split('|').map(str::trim).filter(|a| !a.is_empty()) {
        let mut conj = Dnf::always();
        for part in alternative
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let atom = match part.strip_prefix("!=") {
                Some(value) => Atom::cmp("sys_platform", Op::Ne, value.trim()),
                None => Atom::cmp("sys_platform", Op::Eq, part.trim_start_matches("==").trim()),
            };
            conj = conj.and(&Dnf::atom(atom));
        }
        out.or_in(&conj);
    }
    if out.is_never() {
        Dnf::always()
    } else {
        out
    }
}

// ---------------------------------------------------------------------------
// poetry.lock

#[derive(Debug, Clone, PartialEq, Eq)]
enum LockSource {
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
struct LockEdge {
    /// Normalised.
    name: String,
    display: String,
    constraint: Option<String>,
    markers: Option<String>,
    python: Option<String>,
    platform: Option<String>,
    extras: Vec<String>,
    optional: bool,
}

impl LockEdge {
    fn marker(&self, parent_extras: &BTreeSet<String>) -> Dnf {
        let mut marker = match &self.markers {
            Some(text) => marker_or_raw(text, parent_extras),
            None => Dnf::always(),
        };
        if let Some(python) = &self.python {
            // An unparsable python range in a machine-written lock only widens the install.
            if let Ok(dnf) = python_dnf(python) {
                marker = marker.and(&dnf);
            }
        }
        if let Some(platform) = &self.platform {
            marker = marker.and(&platform_dnf(platform));
        }
        marker
    }
}

#[derive(Debug, Clone)]
struct LockPackage {
    name: String,
    version: String,
    deps: Vec<LockEdge>,
    /// Normalised extra -> normalised names of the optional deps it enables.
    extras: BTreeMap<String, BTreeSet<String>>,
    source: LockSource,
    python_versions: Option<String>,
    /// Marker Poetry 2 recorded for this entry in the main group.
    lock_marker: Option<String>,
    /// From `groups` (Poetry 2) or `category` (Poetry < 1.5).
    in_main: Option<bool>,
}

struct Lock {
    path: PathBuf,
    packages: Vec<LockPackage>,
    by_name: BTreeMap<String, Vec<usize>>,
}

fn parse_lock(path: &Path, doc: &Table) -> Result<Lock, PoetryErrorKind> {
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
    let mut packages = Vec::with_capacity(entries.len());
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let key = format!("package[{i}]");
        let table = entry
            .as_table()
            .ok_or_else(|| invalid(path, &key, "must be a table"))?;
        let name = opt_str(table, "name", path, &key)?
            .ok_or_else(|| invalid(path, format!("{key}.name"), "is missing"))?;
        let key = format!("package[{i}] ({name})");
        let version = opt_str(table, "version", path, &key)?
            .ok_or_else(|| invalid(path, format!("{key}.version"), "is missing"))?;
        let package = parse_lock_package(path, &key, table, name, version)?;
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
        Some(true) if groups.is_some() => Some(main_marker.unwrap_or_default()),
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
        markers: None,
        python: None,
        platform: None,
        extras: Vec::new(),
        optional: false,
    };
    match value {
        Value::String(constraint) => edge.constraint = Some(constraint.clone()),
        Value::Table(t) => {
            edge.constraint = opt_str(t, "version", path, key)?;
            edge.markers = opt_str(t, "markers", path, key)?;
            edge.python = opt_str(t, "python", path, key)?;
            edge.platform = opt_str(t, "platform", path, key)?;
            edge.extras = str_array(t, "extras", path, key)?;
            edge.optional = opt_bool(t, "optional", path, key)?.unwrap_or(false);
        }
        _ => return Err(invalid(path, key, "must be a version string or a table")),
    }
    Ok(edge)
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

// ---------------------------------------------------------------------------
// Locked closure

/// Past this many package visits, markers stop being refined so that the walk
/// is guaranteed to finish; only pathological locks get there.
const VISIT_BUDGET: usize = 100_000;

struct Walker<'a> {
    lock: &'a Lock,
    /// Under which environments each lock entry is needed; `None` = not needed.
    reach: Vec<Option<Dnf>>,
    /// Extras requested on each entry (normalised).
    extras: Vec<BTreeSet<String>>,
    queued: Vec<bool>,
    queue: VecDeque<usize>,
    ambiguous: BTreeSet<String>,
    visits: usize,
}

impl Walker<'_> {
    /// Routes an edge to the lock entries it selects. `false` when the lock
    /// has no entry with that name.
    fn deliver(
        &mut self,
        name: &str,
        constraints: &[String],
        marker: &Dnf,
        extras: &[String],
    ) -> bool {
        let lock = self.lock;
        let Some(entries) = lock.by_name.get(name) else {
            return false;
        };
        let (targets, ambiguous) = select_versions(lock, entries, constraints);
        if ambiguous {
            self.ambiguous.insert(name.to_string());
        }
        for (idx, selection) in targets {
            let contribution = if self.visits > VISIT_BUDGET {
                Dnf::always()
            } else {
                marker.and(&selection)
            };
            if contribution.is_never() {
                continue;
            }
            let mut changed = match self.reach.get_mut(idx) {
                Some(Some(existing)) => existing.or_in(&contribution),
                Some(slot) => {
                    *slot = Some(contribution);
                    true
                }
                None => false,
            };
            if let Some(requested) = self.extras.get_mut(idx) {
                for extra in extras {
                    changed |= requested.insert(normalize_name(extra));
                }
            }
            if changed {
                if let Some(queued) = self.queued.get_mut(idx) {
                    if !*queued {
                        *queued = true;
                        self.queue.push_back(idx);
                    }
                }
            }
        }
        true
    }

    fn run(&mut self) -> Result<(), PoetryErrorKind> {
        let lock = self.lock;
        while let Some(idx) = self.queue.pop_front() {
            self.visits += 1;
            if let Some(queued) = self.queued.get_mut(idx) {
                *queued = false;
            }
            let (Some(package), Some(Some(reach))) =
                (lock.packages.get(idx), self.reach.get(idx).cloned())
            else {
                continue;
            };
            let requested = self.extras.get(idx).cloned().unwrap_or_default();
            let enabled: BTreeSet<&String> = requested
                .iter()
                .filter_map(|extra| package.extras.get(extra))
                .flatten()
                .collect();
            for edge in &package.deps {
                if edge.optional && !enabled.contains(&edge.name) {
                    continue;
                }
                let edge_marker = edge.marker(&requested);
                let marker = reach.and(&edge_marker);
                if marker.is_never() {
                    continue;
                }
                let found = self.deliver(
                    &edge.name,
                    edge.constraint.as_slice(),
                    &marker,
                    &edge.extras,
                );
                // Poetry leaves out packages that only conditional edges need
                // when no supported Python satisfies the condition.
                if !found && edge_marker.is_always() {
                    return Err(PoetryErrorKind::LockedDependencyMissing {
                        lock: lock.path.clone(),
                        package: package.name.clone(),
                        dependency: edge.display.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Chooses among lock entries sharing a name, each paired with the extra
/// condition under which it is the one installed. The flag is set when the
/// lock gives no way to tell them apart.
fn select_versions(
    lock: &Lock,
    entries: &[usize],
    constraints: &[String],
) -> (Vec<(usize, Dnf)>, bool) {
    if let [only] = entries {
        return (vec![(*only, Dnf::always())], false);
    }
    let package = |i: usize| lock.packages.get(i);
    let mut candidates: Vec<usize> = entries
        .iter()
        .copied()
        .filter(|&i| package(i).is_some_and(|p| p.in_main != Some(false)))
        .collect();
    if candidates.is_empty() {
        candidates = entries.to_vec();
    }
    let matching: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&i| package(i).is_some_and(|p| satisfies(constraints, &p.version)))
        .collect();
    if !matching.is_empty() {
        candidates = matching;
    }
    if let [only] = candidates.as_slice() {
        return (vec![(*only, Dnf::always())], false);
    }
    let recorded: Option<Vec<(usize, Dnf)>> = candidates
        .iter()
        .map(|&i| {
            let marker = package(i)?.lock_marker.as_deref()?;
            Some((i, marker_or_raw(marker, &BTreeSet::new())))
        })
        .collect();
    // An unconditional entry next to others means the markers do not separate them.
    if let Some(recorded) = recorded.filter(|r| !r.iter().any(|(_, m)| m.is_always())) {
        return (recorded, false);
    }
    match python_selection(lock, &candidates) {
        Some(selection) => (selection, false),
        None => (
            candidates.into_iter().map(|i| (i, Dnf::always())).collect(),
            true,
        ),
    }
}

/// Locks without per-entry markers: Poetry picks the newest version whose
/// `python-versions` fit, so each older entry covers only the Pythons that
/// the newer ones leave out.
fn python_selection(lock: &Lock, candidates: &[usize]) -> Option<Vec<(usize, Dnf)>> {
    let mut versions = candidates
        .iter()
        .map(|&i| {
            let package = lock.packages.get(i)?;
            let version = Version::parse(&package.version)?;
            let python = python_dnf(package.python_versions.as_deref().unwrap_or("*")).ok()?;
            Some((i, version, python))
        })
        .collect::<Option<Vec<_>>>()?;
    versions.sort_by(|a, b| b.1.cmp_public(&a.1));
    let mut served = Dnf::never();
    let mut out = Vec::with_capacity(versions.len());
    for (i, _, python) in versions {
        let selection = python.and(&served.not()?);
        if selection.is_never() {
            return None;
        }
        served.or_in(&python);
        out.push((i, selection));
    }
    Some(out)
}

fn resolve_locked(project: &Project, lock: &Lock) -> Result<Resolved, PoetryErrorKind> {
    let count = lock.packages.len();
    let mut walker = Walker {
        lock,
        reach: vec![None; count],
        extras: vec![BTreeSet::new(); count],
        queued: vec![false; count],
        queue: VecDeque::new(),
        ambiguous: BTreeSet::new(),
        visits: 0,
    };
    for dep in &project.deps {
        let name = normalize_name(&dep.name);
        let constraints: &[String] = match &dep.origin {
            Origin::Registry(constraints) => constraints,
            Origin::Git { .. } | Origin::Url { .. } => &[],
        };
        if let Some(entries) = lock.by_name.get(&name) {
            let any_fits = entries
                .iter()
                .filter_map(|&i| lock.packages.get(i))
                .any(|p| satisfies(constraints, &p.version));
            if !any_fits {
                return Err(PoetryErrorKind::LockOutdated {
                    lock: lock.path.clone(),
                    pyproject: project.path.to_path_buf(),
                    package: dep.name.clone(),
                    locked: entries
                        .iter()
                        .filter_map(|&i| lock.packages.get(i))
                        .map(|p| p.version.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    constraint: constraints.join(", "),
                });
            }
        }
        if !walker.deliver(&name, constraints, &dep.marker, &dep.extras) {
            // Poetry does not lock what no supported Python needs.
            if dep.marker.and(&project.python).is_never() {
                continue;
            }
            return Err(PoetryErrorKind::MissingFromLock {
                lock: lock.path.clone(),
                pyproject: project.path.to_path_buf(),
                package: dep.name.clone(),
            });
        }
    }
    walker.run()?;

    let mut fully_pinned = walker.ambiguous.is_empty();
    let mut requirements = Vec::new();
    for (idx, reach) in walker.reach.iter().enumerate() {
        let (Some(reach), Some(package)) = (reach, lock.packages.get(idx)) else {
            continue;
        };
        let mut line = match &package.source {
            LockSource::Registry => format!("{}=={}", package.name, package.version),
            LockSource::Git {
                url,
                reference,
                resolved,
                subdirectory,
            } => {
                // A branch or tag name can move; only the resolved commit is a pin.
                fully_pinned &= resolved.is_some();
                let rev = resolved.as_deref().or(reference.as_deref());
                format!(
                    "{} @ {}",
                    package.name,
                    git_requirement_url(url, rev, subdirectory.as_deref())
                )
            }
            LockSource::Url { url, subdirectory } => format!(
                "{} @ {}",
                package.name,
                with_subdirectory(url.clone(), subdirectory.as_deref())
            ),
            LockSource::Local { kind, url } => {
                return Err(PoetryErrorKind::UnsupportedDependency {
                    path: lock.path.clone(),
                    package: package.name.clone(),
                    kind: format!("{kind} dependency (`{url}`)"),
                    hint: PATH_HINT.to_string(),
                })
            }
            LockSource::Other { kind, url } => {
                return Err(PoetryErrorKind::UnsupportedDependency {
                    path: lock.path.clone(),
                    package: package.name.clone(),
                    kind: format!("package from a `{kind}` source ({url})"),
                    hint: INDEX_HINT.to_string(),
                })
            }
        };
        if let Some(marker) = reach.render() {
            line.push_str(" ; ");
            line.push_str(&marker);
        }
        requirements.push(Requirement {
            name: normalize_name(&package.name),
            spec: line,
        });
    }
    let notes = walker
        .ambiguous
        .iter()
        .map(|name| {
            (
                name.clone(),
                format!(
                    "poetry.lock has several versions of {name} without markers or python \
                     ranges that tell them apart; all are listed, so pip will report a \
                     conflict until the lock is regenerated with `poetry lock`"
                ),
            )
        })
        .collect();
    Ok(Resolved {
        requirements,
        notes,
        fully_pinned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYPROJECT: &str = "connectors/source-example/pyproject.toml";
    const LOCK: &str = "connectors/source-example/poetry.lock";

    fn unlocked(pyproject: &str) -> Result<PoetryInstall, PoetryErrorKind> {
        poetry_requirements(Path::new(PYPROJECT), pyproject, Path::new(LOCK), None)
            .map_err(PoetryError::into_kind)
    }

    fn locked(pyproject: &str, lock: &str) -> Result<PoetryInstall, PoetryErrorKind> {
        poetry_requirements(Path::new(PYPROJECT), pyproject, Path::new(LOCK), Some(lock))
            .map_err(PoetryError::into_kind)
    }

    #[test]
    fn public_error_is_one_pointer_and_displays_its_kind() {
        assert_eq!(
            std::mem::size_of::<PoetryError>(),
            std::mem::size_of::<usize>()
        );
        let err = poetry_requirements(Path::new(PYPROJECT), "[tool.poetry", Path::new(LOCK), None)
            .unwrap_err();
        assert!(
            matches!(err.kind(), PoetryErrorKind::InvalidToml { .. }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), err.kind().to_string());
    }

    /// A Poetry 1.x-style pyproject with the given main dependencies.
    fn with_deps(body: &str) -> String {
        format!(
            "[tool.poetry]\nname = \"source-example\"\nversion = \"0.1.0\"\n\n\
             [tool.poetry.dependencies]\npython = \"^3.9\"\n{body}\n"
        )
    }

    fn lines(install: &PoetryInstall) -> Vec<&str> {
        install.requirements.iter().map(String::as_str).collect()
    }

    fn translate(constraint: &str) -> Result<String, PoetryErrorKind> {
        let install = unlocked(&with_deps(&format!("foo = \"{constraint}\"")))?;
        assert!(!install.fully_pinned);
        assert_eq!(install.requirements.len(), 1, "{install:?}");
        Ok(install.requirements.concat())
    }

    #[test]
    fn translates_each_constraint_form() {
        let cases = [
            ("^1.2.3", "foo>=1.2.3,<2.0.0"),
            ("^0.2.3", "foo>=0.2.3,<0.3.0"),
            ("^0.0.3", "foo>=0.0.3,<0.0.4"),
            ("^1.2", "foo>=1.2,<2.0"),
            ("^1", "foo>=1,<2"),
            ("^0", "foo>=0,<1"),
            ("^0.0", "foo>=0.0,<0.1"),
            ("^1.2.3.4", "foo>=1.2.3.4,<2.0.0.0"),
            ("~1.2.3", "foo>=1.2.3,<1.3.0"),
            ("~1.2", "foo>=1.2,<1.3"),
            ("~1", "foo>=1,<2"),
            ("~=1.2", "foo~=1.2"),
            ("~=1.2.3", "foo~=1.2.3"),
            ("~=1", "foo>=1,<2"),
            ("*", "foo"),
            ("", "foo"),
            ("1.2.3", "foo==1.2.3"),
            ("=1.2.3", "foo==1.2.3"),
            ("==2.31.0", "foo==2.31.0"),
            ("v1.2.3", "foo==1.2.3"),
            ("1.2.*", "foo==1.2.*"),
            ("1.2.x", "foo==1.2.*"),
            ("1.*.*", "foo==1.*"),
            ("!=1.5.7", "foo!=1.5.7"),
            ("<>1.5.7", "foo!=1.5.7"),
            ("!=1.5.*", "foo!=1.5.*"),
            (">=1.0,<2.0", "foo>=1.0,<2.0"),
            (">= 1.0, < 2.0", "foo>=1.0,<2.0"),
            (">=1.0 <2.0", "foo>=1.0,<2.0"),
            (">=1.0, <2.0, !=1.5", "foo>=1.0,<2.0,!=1.5"),
            (">=1.2.*", "foo>=1.2"),
            ("^3.9,<3.12", "foo>=3.9,<4.0,<3.12"),
            ("^1.0.0b1", "foo>=1.0.0b1,<2.0.0"),
            ("~2.1.0rc2", "foo>=2.1.0rc2,<2.2.0"),
            ("^0.3.0.dev4", "foo>=0.3.0.dev4,<0.4.0"),
            ("==1.0+cpu", "foo==1.0+cpu"),
            ("^1!2.3", "foo>=1!2.3,<1!3.0"),
            ("===1.0-weird", "foo===1.0-weird"),
        ];
        for (constraint, expected) in cases {
            assert_eq!(
                translate(constraint).as_deref(),
                Ok(expected),
                "constraint `{constraint}`"
            );
        }
    }

    #[test]
    fn rejects_constraints_without_pep440_equivalent() {
        for constraint in [
            "^1.0 || ^2.0",
            "1.0 | 2.0",
            "^",
            ">=",
            "~1.*",
            ">=abc",
            "^18446744073709551615",
        ] {
            match translate(constraint) {
                Err(PoetryErrorKind::UnsupportedConstraint {
                    path,
                    package,
                    constraint: reported,
                    reason,
                }) => {
                    assert_eq!(path, Path::new(PYPROJECT));
                    assert_eq!(package, "foo");
                    assert_eq!(reported, constraint);
                    assert!(!reason.is_empty());
                }
                other => panic!("`{constraint}` gave {other:?}"),
            }
        }
        let err = translate("^1.0 || ^2.0").unwrap_err().to_string();
        assert!(
            err.contains(PYPROJECT) && err.contains("`foo`") && err.contains("||"),
            "{err}"
        );
    }

    #[test]
    fn table_form_with_extras_markers_and_python() {
        let install = unlocked(&with_deps(
            r#"requests = { version = "^2.31", extras = ["socks", "security"], markers = "sys_platform == 'linux'", python = "^3.8" }
tomli = { version = ">=1.1", python = "<3.11" }
uvloop = { version = "^0.19", platform = "linux || darwin" }
typing-extensions = { version = ">=4.0", python = ">=3.8.1" }
futures = { version = "^3.3", python = "~2.7 || ^3.6" }"#,
        ))
        .unwrap();
        assert_eq!(
            lines(&install),
            [
                r#"futures>=3.3,<4.0 ; (python_version >= "2.7" and python_version < "2.8") or (python_version >= "3.6" and python_version < "4.0")"#,
                r#"requests[socks,security]>=2.31,<3.0 ; sys_platform == "linux" and python_version >= "3.8" and python_version < "4.0""#,
                r#"tomli>=1.1 ; python_version < "3.11""#,
                r#"typing-extensions>=4.0 ; python_full_version >= "3.8.1""#,
                r#"uvloop>=0.19,<0.20 ; (sys_platform == "darwin") or (sys_platform == "linux")"#,
            ]
        );
    }

    #[test]
    fn multiple_constraint_list_gives_one_line_per_entry() {
        let install = unlocked(&with_deps(
            r#"foo = [
    { version = "^1", python = "<3.8" },
    { version = "^2", python = ">=3.8" },
]"#,
        ))
        .unwrap();
        assert_eq!(
            lines(&install),
            [
                r#"foo>=1,<2 ; python_version < "3.8""#,
                r#"foo>=2,<3 ; python_version >= "3.8""#,
            ]
        );
    }

    #[test]
    fn only_the_main_group_is_installed() {
        let pyproject = with_deps(
            r#"Requests = "^2.31"
pendulum = { version = "^2.1", optional = true }

[tool.poetry.extras]
dates = ["pendulum"]

[tool.poetry.group.main.dependencies]
backoff = "^2.2"

[tool.poetry.group.dev.dependencies]
pytest = "^7.4"

[tool.poetry.group.lint]
optional = true

[tool.poetry.group.lint.dependencies]
ruff = "*"

[tool.poetry.dev-dependencies]
mypy = "^1.5""#,
        );
        let install = unlocked(&pyproject).unwrap();
        assert_eq!(
            lines(&install),
            ["backoff>=2.2,<3.0", "Requests>=2.31,<3.0"]
        );
    }

    #[test]
    fn git_and_url_dependencies_without_lock() {
        let install = unlocked(&with_deps(
            r#"airbyte-cdk = { git = "https://github.com/airbytehq/airbyte-python-cdk.git", branch = "main" }
internal = { git = "git@github.com:example/internal.git", tag = "v1.0", subdirectory = "python" }
latest = { git = "https://github.com/example/latest.git", extras = ["fast"], python = ">=3.10" }
wheel-dep = { url = "https://example.com/wheel_dep-1.0-py3-none-any.whl" }"#,
        ))
        .unwrap();
        assert_eq!(
            lines(&install),
            [
                "airbyte-cdk @ git+https://github.com/airbytehq/airbyte-python-cdk.git@main",
                "internal @ git+ssh://git@github.com/example/internal.git@v1.0#subdirectory=python",
                r#"latest[fast] @ git+https://github.com/example/latest.git ; python_version >= "3.10""#,
                "wheel-dep @ https://example.com/wheel_dep-1.0-py3-none-any.whl",
            ]
        );
    }

    #[test]
    fn path_dependency_is_an_error() {
        let pyproject = with_deps(r#"common-utils = { path = "../common-utils", develop = true }"#);
        for result in [unlocked(&pyproject), locked(&pyproject, POETRY1_LOCK)] {
            match result {
                Err(PoetryErrorKind::UnsupportedDependency {
                    path,
                    package,
                    kind,
                    ..
                }) => {
                    assert_eq!(path, Path::new(PYPROJECT));
                    assert_eq!(package, "common-utils");
                    assert!(
                        kind.contains("path dependency") && kind.contains("../common-utils"),
                        "{kind}"
                    );
                }
                other => panic!("expected UnsupportedDependency, got {other:?}"),
            }
        }
        let file = unlocked(&with_deps(r#"pkg = { url = "file:///tmp/pkg.whl" }"#));
        assert!(
            matches!(file, Err(PoetryErrorKind::UnsupportedDependency { .. })),
            "{file:?}"
        );
    }

    #[test]
    fn private_package_source_is_an_error_but_pypi_is_fine() {
        let pyproject = with_deps(
            r#"secret = { version = "^1.0", source = "corp" }
public = { version = "^1.0", source = "PyPI" }

[[tool.poetry.source]]
name = "corp"
url = "https://pkgs.example.com/simple/"
priority = "explicit""#,
        );
        match unlocked(&pyproject) {
            Err(PoetryErrorKind::UnsupportedDependency { package, kind, .. }) => {
                assert_eq!(package, "secret");
                assert!(
                    kind.contains("corp") && kind.contains("pkgs.example.com"),
                    "{kind}"
                );
            }
            other => panic!("expected UnsupportedDependency, got {other:?}"),
        }
        let ok = unlocked(&pyproject.replace("source = \"corp\"", "source = \"pypi\"")).unwrap();
        assert_eq!(lines(&ok), ["public>=1.0,<2.0", "secret>=1.0,<2.0"]);
    }

    #[test]
    fn malformed_toml_names_file_and_line() {
        let err =
            unlocked("[tool.poetry]\nname = \"x\"\n[tool.poetry.dependencies\nrequests = \"^2\"\n")
                .unwrap_err();
        assert!(
            matches!(err, PoetryErrorKind::InvalidToml { .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.starts_with(&format!("{PYPROJECT}:3:")), "{message}");

        let err = locked(
            &with_deps("requests = \"^2\""),
            "[[package]]\nname = \"requests\nversion = 1\n",
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with(&format!("{LOCK}:2:")), "{message}");
    }

    #[test]
    fn wrong_types_are_reported_with_their_key() {
        let err = unlocked(&with_deps("requests = 2")).unwrap_err();
        assert_eq!(
            err,
            PoetryErrorKind::InvalidField {
                path: PathBuf::from(PYPROJECT),
                key: "tool.poetry.dependencies.requests".to_string(),
                message: "must be a version string or a table such as { version = \"^1.0\" }"
                    .to_string(),
            }
        );
        let err = unlocked(&with_deps(
            "requests = { version = \"^2\", extras = \"socks\" }",
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("tool.poetry.dependencies.requests.extras"),
            "{err}"
        );
        // An unquoted dotted name is a nested table in TOML, not a package.
        let err = unlocked(&with_deps("ruamel.yaml = \"*\"")).unwrap_err();
        assert!(
            matches!(&err, PoetryErrorKind::InvalidField { key, .. } if key == "tool.poetry.dependencies.ruamel.yaml"),
            "{err:?}"
        );
        assert!(err.to_string().contains("quoted"), "{err}");
        let err = unlocked("[build-system]\nrequires = []\n").unwrap_err();
        assert!(
            matches!(err, PoetryErrorKind::NotPoetryProject { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn detects_poetry_projects() {
        assert!(is_poetry_project("[tool.poetry]\nname = \"x\"\n"));
        assert!(is_poetry_project(
            "[tool.poetry.dependencies]\npython = \"^3.9\"\n"
        ));
        assert!(is_poetry_project(&with_deps("")));
        assert!(!is_poetry_project(
            "[project]\nname = \"x\"\n[tool.setuptools]\n"
        ));
        assert!(!is_poetry_project("[tool]\npoetry = 1\n"));
        assert!(!is_poetry_project(""));
        // Broken TOML still routes to poetry_requirements, which reports the line.
        assert!(is_poetry_project("[tool.poetry]\nname = \n"));
        assert!(!is_poetry_project("[tool.black\n"));
    }

    // A Poetry 1.1 lock (with `category` and [metadata.files]).
    const POETRY1_PYPROJECT: &str = r#"[build-system]
requires = ["poetry-core>=1.0.0"]
build-backend = "poetry.core.masonry.api"

[tool.poetry]
name = "source-example"
version = "0.1.0"
description = "Source implementation for example."
authors = ["Airbyte <contact@airbyte.io>"]

[tool.poetry.dependencies]
python = "^3.9,<3.12"
airbyte-cdk = "^0.51.0"
click = "^8.1"
requests = { version = "^2.31.0", extras = ["socks"] }
importlib-metadata = { version = ">=4", python = "<3.8" }
pendulum = { version = "^2.1.2", optional = true }

[tool.poetry.extras]
dates = ["pendulum"]

[tool.poetry.group.dev.dependencies]
pytest = "^7.4"
requests-mock = "^1.11"

[tool.poetry.dev-dependencies]
mypy = "^1.5"
"#;

    const POETRY1_LOCK: &str = r#"[[package]]
name = "airbyte-cdk"
version = "0.51.0"
description = "A framework for writing Airbyte Connectors."
category = "main"
optional = false
python-versions = ">=3.8"

[package.dependencies]
backoff = "*"
importlib-metadata = {version = ">=4.0", markers = "python_version < \"3.8\""}
requests = "*"

[package.extras]
dev = ["pytest (>=6.2)"]
file-based = ["pyarrow (==12.0.1)"]

[[package]]
name = "backoff"
version = "2.2.1"
description = "Function decoration for backoff and retry"
category = "main"
optional = false
python-versions = ">=3.7,<4.0"

[[package]]
name = "certifi"
version = "2023.7.22"
description = "Python package for providing Mozilla's CA Bundle."
category = "main"
optional = false
python-versions = ">=3.6"

[[package]]
name = "charset-normalizer"
version = "3.2.0"
description = "The Real First Universal Charset Detector."
category = "main"
optional = false
python-versions = ">=3.7.0"

[[package]]
name = "click"
version = "8.1.7"
description = "Composable command line interface toolkit"
category = "main"
optional = false
python-versions = ">=3.7"

[package.dependencies]
colorama = {version = "*", markers = "platform_system == \"Windows\""}

[[package]]
name = "colorama"
version = "0.4.6"
description = "Cross-platform colored terminal text."
category = "main"
optional = false
python-versions = "!=3.0.*,!=3.1.*,!=3.2.*,!=3.3.*,!=3.4.*,!=3.5.*,!=3.6.*,>=2.7"

[[package]]
name = "exceptiongroup"
version = "1.1.3"
description = "Backport of PEP 654 (exception groups)"
category = "dev"
optional = false
python-versions = ">=3.7"

[package.extras]
test = ["pytest (>=6)"]

[[package]]
name = "idna"
version = "3.4"
description = "Internationalized Domain Names in Applications (IDNA)"
category = "main"
optional = false
python-versions = ">=3.5"

[[package]]
name = "iniconfig"
version = "2.0.0"
description = "brain-dead simple config-ini parsing"
category = "dev"
optional = false
python-versions = ">=3.7"

[[package]]
name = "packaging"
version = "23.1"
description = "Core utilities for Python packages"
category = "dev"
optional = false
python-versions = ">=3.7"

[[package]]
name = "pendulum"
version = "2.1.2"
description = "Python datetimes made easy"
category = "main"
optional = true
python-versions = ">=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*, !=3.4.*"

[package.dependencies]
python-dateutil = ">=2.6,<3.0"
pytzdata = ">=2020.1"

[[package]]
name = "pluggy"
version = "1.3.0"
description = "plugin and hook calling mechanisms for python"
category = "dev"
optional = false
python-versions = ">=3.8"

[package.extras]
dev = ["pre-commit", "tox"]
testing = ["pytest", "pytest-benchmark"]

[[package]]
name = "pysocks"
version = "1.7.1"
description = "A Python SOCKS client module. See https://github.com/Anorov/PySocks for more information."
category = "main"
optional = false
python-versions = ">=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*, !=3.4.*"

[[package]]
name = "pytest"
version = "7.4.2"
description = "pytest: simple powerful testing with Python"
category = "dev"
optional = false
python-versions = ">=3.7"

[package.dependencies]
colorama = {version = "*", markers = "sys_platform == \"win32\""}
exceptiongroup = {version = ">=1.0.0rc8", markers = "python_version < \"3.11\""}
iniconfig = "*"
packaging = "*"
pluggy = ">=0.12,<2.0"
tomli = {version = ">=1.0.0", markers = "python_version < \"3.11\""}

[package.extras]
testing = ["argcomplete", "attrs (>=19.2.0)", "hypothesis (>=3.56)", "mock", "nose", "pygments (>=2.7.2)", "requests", "setuptools", "xmlschema"]

[[package]]
name = "python-dateutil"
version = "2.8.2"
description = "Extensions to the standard Python datetime module"
category = "main"
optional = true
python-versions = "!=3.0.*,!=3.1.*,!=3.2.*,>=2.7"

[package.dependencies]
six = ">=1.5"

[[package]]
name = "pytzdata"
version = "2020.1"
description = "The Olson timezone database for Python."
category = "main"
optional = true
python-versions = ">=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*"

[[package]]
name = "requests"
version = "2.31.0"
description = "Python HTTP for Humans."
category = "main"
optional = false
python-versions = ">=3.7"

[package.dependencies]
certifi = ">=2017.4.17"
charset-normalizer = ">=2,<4"
idna = ">=2.5,<4"
PySocks = {version = ">=1.5.6,<1.5.7 || >1.5.7", optional = true, markers = "extra == \"socks\""}
urllib3 = ">=1.21.1,<3"

[package.extras]
socks = ["PySocks (>=1.5.6,!=1.5.7)"]
use-chardet-on-py3 = ["chardet (>=3.0.2,<6)"]

[[package]]
name = "requests-mock"
version = "1.11.0"
description = "Mock out responses from the requests package"
category = "dev"
optional = false
python-versions = "*"

[package.dependencies]
requests = ">=2.3,<3"
six = "*"

[package.extras]
fixture = ["fixtures"]
test = ["fixtures", "mock", "purl", "pytest", "requests-futures", "sphinx", "testrepository (>=0.0.18)", "testtools"]

[[package]]
name = "six"
version = "1.16.0"
description = "Python 2 and 3 compatibility utilities"
category = "main"
optional = false
python-versions = ">=2.7, !=3.0.*, !=3.1.*, !=3.2.*"

[[package]]
name = "tomli"
version = "2.0.1"
description = "A lil' TOML parser"
category = "dev"
optional = false
python-versions = ">=3.7"

[[package]]
name = "urllib3"
version = "2.0.4"
description = "HTTP library with thread-safe connection pooling, file post, and more."
category = "main"
optional = false
python-versions = ">=3.7"

[package.extras]
brotli = ["brotli (>=1.0.9)", "brotlicffi (>=0.8.0)"]
secure = ["certifi", "cryptography (>=1.9)", "idna (>=2.0.0)", "pyopenssl (>=17.1.0)", "urllib3-secure-extra"]
socks = ["pysocks (>=1.5.6,!=1.5.7,<2.0)"]
zstd = ["zstandard (>=0.18.0)"]

[metadata]
lock-version = "1.1"
python-versions = "^3.9,<3.12"
content-hash = "5d1f3c2b9a8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817065f4e"

[metadata.files]
airbyte-cdk = [
    {file = "airbyte-cdk-0.51.0.tar.gz", hash = "sha256:0000000000000000000000000000000000000000000000000000000000000000"},
]
requests = [
    {file = "requests-2.31.0-py3-none-any.whl", hash = "sha256:1111111111111111111111111111111111111111111111111111111111111111"},
]
"#;

    #[test]
    fn poetry1_lock_gives_pinned_main_closure() {
        let install = locked(POETRY1_PYPROJECT, POETRY1_LOCK).unwrap();
        assert_eq!(
            lines(&install),
            [
                "airbyte-cdk==0.51.0",
                "backoff==2.2.1",
                "certifi==2023.7.22",
                "charset-normalizer==3.2.0",
                "click==8.1.7",
                r#"colorama==0.4.6 ; platform_system == "Windows""#,
                "idna==3.4",
                "pysocks==1.7.1",
                "requests==2.31.0",
                "urllib3==2.0.4",
            ]
        );
        assert!(install.fully_pinned);
    }

    #[test]
    fn optional_dependency_needs_its_extra() {
        let pyproject = POETRY1_PYPROJECT.replace(
            r#"requests = { version = "^2.31.0", extras = ["socks"] }"#,
            r#"requests = "^2.31.0""#,
        );
        let install = locked(&pyproject, POETRY1_LOCK).unwrap();
        assert!(
            !install.requirements.iter().any(|l| l.contains("pysocks")),
            "{install:?}"
        );
        assert!(install
            .requirements
            .contains(&"requests==2.31.0".to_string()));

        // Requesting the root extra pulls in pendulum's subtree.
        let pyproject = POETRY1_PYPROJECT.replace(
            r#"pendulum = { version = "^2.1.2", optional = true }"#,
            r#"pendulum = "^2.1.2""#,
        );
        let install = locked(&pyproject, POETRY1_LOCK).unwrap();
        for line in [
            "pendulum==2.1.2",
            "python-dateutil==2.8.2",
            "pytzdata==2020.1",
            "six==1.16.0",
        ] {
            assert!(
                install.requirements.contains(&line.to_string()),
                "{line} missing: {install:?}"
            );
        }
    }

    #[test]
    fn main_dependency_missing_from_lock() {
        let pyproject =
            POETRY1_PYPROJECT.replace("click = \"^8.1\"", "click = \"^8.1\"\npendulum3 = \"^3.0\"");
        let err = locked(&pyproject, POETRY1_LOCK).unwrap_err();
        assert_eq!(
            err,
            PoetryErrorKind::MissingFromLock {
                lock: PathBuf::from(LOCK),
                pyproject: PathBuf::from(PYPROJECT),
                package: "pendulum3".to_string(),
            }
        );
        let message = err.to_string();
        assert!(
            message.contains("pendulum3") && message.contains("poetry lock"),
            "{message}"
        );
    }

    #[test]
    fn stale_lock_versions_are_reported() {
        let pyproject = POETRY1_PYPROJECT.replace("click = \"^8.1\"", "click = \"^9.0\"");
        match locked(&pyproject, POETRY1_LOCK) {
            Err(PoetryErrorKind::LockOutdated {
                package,
                locked,
                constraint,
                ..
            }) => {
                assert_eq!(
                    (package.as_str(), locked.as_str(), constraint.as_str()),
                    ("click", "8.1.7", "^9.0")
                );
            }
            other => panic!("expected LockOutdated, got {other:?}"),
        }
    }

    #[test]
    fn locked_package_with_missing_dependency() {
        let lock = POETRY1_LOCK.replace(
            "[[package]]\nname = \"idna\"\nversion = \"3.4\"",
            "[[package]]\nname = \"idna-renamed\"\nversion = \"3.4\"",
        );
        let err = locked(POETRY1_PYPROJECT, &lock).unwrap_err();
        assert_eq!(
            err,
            PoetryErrorKind::LockedDependencyMissing {
                lock: PathBuf::from(LOCK),
                package: "requests".to_string(),
                dependency: "idna".to_string(),
            }
        );
    }

    #[test]
    fn unsupported_lock_version() {
        let lock = POETRY1_LOCK.replace("lock-version = \"1.1\"", "lock-version = \"3.0\"");
        let err = locked(POETRY1_PYPROJECT, &lock).unwrap_err();
        assert!(
            matches!(err, PoetryErrorKind::UnsupportedLockVersion { ref version, .. } if version == "3.0"),
            "{err:?}"
        );
    }

    // Poetry 2: [project] dependencies and a lock-version 2.1 file with
    // `groups` and per-group `markers`.
    const POETRY2_PYPROJECT: &str = r#"[project]
name = "source-example"
version = "0.2.0"
description = "Source implementation for example."
requires-python = ">=3.10,<3.13"
dependencies = [
    "airbyte-cdk (>=6.33,<7.0)",
    "click>=8.1",
    "numpy (>=1.26)",
    "tzlocal (>=5.2) ; sys_platform == 'win32'",
]

[project.optional-dependencies]
speedups = ["orjson (>=3.10)"]

[tool.poetry]
packages = [{ include = "source_example" }]

[tool.poetry.dependencies]
unrelated = "^1.0"

[tool.poetry.group.dev.dependencies]
pytest = "^8.3"

[build-system]
requires = ["poetry-core>=2.0.0,<3.0.0"]
build-backend = "poetry.core.masonry.api"
"#;

    const POETRY2_LOCK: &str = r#"# This file is automatically @generated by Poetry 2.1.1 and should not be changed by hand.

[[package]]
name = "airbyte-cdk"
version = "6.36.0"
description = "A framework for writing Airbyte Connectors."
optional = false
python-versions = "<3.13,>=3.10"
groups = ["main"]
files = [
    {file = "airbyte_cdk-6.36.0-py3-none-any.whl", hash = "sha256:2222222222222222222222222222222222222222222222222222222222222222"},
]

[package.dependencies]
numpy = [
    {version = ">=1.26.0", markers = "python_version < \"3.12\""},
    {version = ">=2.0.0", markers = "python_version >= \"3.12\""},
]
orjson = {version = ">=3.10", optional = true, markers = "extra == \"speedups\""}
requests = "*"

[package.extras]
speedups = ["orjson (>=3.10)"]

[[package]]
name = "certifi"
version = "2025.1.31"
description = "Python package for providing Mozilla's CA Bundle."
optional = false
python-versions = ">=3.6"
groups = ["main"]
files = []

[[package]]
name = "charset-normalizer"
version = "3.4.1"
description = "The Real First Universal Charset Detector."
optional = false
python-versions = ">=3.7"
groups = ["main"]
files = []

[[package]]
name = "click"
version = "8.1.8"
description = "Composable command line interface toolkit"
optional = false
python-versions = ">=3.7"
groups = ["main"]
files = []

[package.dependencies]
colorama = {version = "*", markers = "platform_system == \"Windows\""}

[[package]]
name = "colorama"
version = "0.4.6"
description = "Cross-platform colored terminal text."
optional = false
python-versions = "!=3.0.*,!=3.1.*,!=3.2.*,!=3.3.*,!=3.4.*,!=3.5.*,!=3.6.*,>=2.7"
groups = ["main", "dev"]
markers = {main = "platform_system == \"Windows\"", dev = "sys_platform == \"win32\""}
files = []

[[package]]
name = "exceptiongroup"
version = "1.2.2"
description = "Backport of PEP 654 (exception groups)"
optional = false
python-versions = ">=3.7"
groups = ["dev"]
markers = "python_version < \"3.11\""
files = []

[package.extras]
test = ["pytest (>=6)"]

[[package]]
name = "idna"
version = "3.10"
description = "Internationalized Domain Names in Applications (IDNA)"
optional = false
python-versions = ">=3.6"
groups = ["main"]
files = []

[package.extras]
all = ["flake8 (>=7.1.1)", "mypy (>=1.11.2)", "pytest (>=8.3.2)", "ruff (>=0.6.2)"]

[[package]]
name = "iniconfig"
version = "2.0.0"
description = "brain-dead simple config-ini parsing"
optional = false
python-versions = ">=3.7"
groups = ["dev"]
files = []

[[package]]
name = "numpy"
version = "1.26.4"
description = "Fundamental package for array computing in Python"
optional = false
python-versions = ">=3.9"
groups = ["main"]
markers = "python_version < \"3.12\""
files = []

[[package]]
name = "numpy"
version = "2.1.3"
description = "Fundamental package for array computing in Python"
optional = false
python-versions = ">=3.10"
groups = ["main"]
markers = "python_version >= \"3.12\""
files = []

[[package]]
name = "packaging"
version = "24.2"
description = "Core utilities for Python packages"
optional = false
python-versions = ">=3.8"
groups = ["dev"]
files = []

[[package]]
name = "pluggy"
version = "1.5.0"
description = "plugin and hook calling mechanisms for python"
optional = false
python-versions = ">=3.8"
groups = ["dev"]
files = []

[[package]]
name = "pytest"
version = "8.3.4"
description = "pytest: simple powerful testing with Python"
optional = false
python-versions = ">=3.8"
groups = ["dev"]
files = []

[package.dependencies]
colorama = {version = "*", markers = "sys_platform == \"win32\""}
exceptiongroup = {version = ">=1.0.0rc8", markers = "python_version < \"3.11\""}
iniconfig = "*"
packaging = "*"
pluggy = ">=1.5,<2"
tomli = {version = ">=1", markers = "python_version < \"3.11\""}

[[package]]
name = "requests"
version = "2.32.3"
description = "Python HTTP for Humans."
optional = false
python-versions = ">=3.8"
groups = ["main"]
files = []

[package.dependencies]
certifi = ">=2017.4.17"
charset-normalizer = ">=2,<4"
idna = ">=2.5,<4"
urllib3 = ">=1.21.1,<3"

[package.extras]
socks = ["PySocks (>=1.5.6,!=1.5.7)"]
use-chardet-on-py3 = ["chardet (>=3.0.2,<6)"]

[[package]]
name = "tomli"
version = "2.2.1"
description = "A lil' TOML parser"
optional = false
python-versions = ">=3.8"
groups = ["dev"]
markers = "python_version < \"3.11\""
files = []

[[package]]
name = "tzdata"
version = "2025.1"
description = "Provider of IANA time zone data"
optional = false
python-versions = ">=2"
groups = ["main"]
markers = "sys_platform == \"win32\" and platform_system == \"Windows\""
files = []

[[package]]
name = "tzlocal"
version = "5.2"
description = "tzinfo object for the local timezone"
optional = false
python-versions = ">=3.8"
groups = ["main"]
markers = "sys_platform == \"win32\""
files = []

[package.dependencies]
tzdata = {version = "*", markers = "platform_system == \"Windows\""}

[[package]]
name = "urllib3"
version = "2.3.0"
description = "HTTP library with thread-safe connection pooling, file post, and more."
optional = false
python-versions = ">=3.9"
groups = ["main"]
files = []

[metadata]
lock-version = "2.1"
python-versions = ">=3.10,<3.13"
content-hash = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b"
"#;

    #[test]
    fn poetry2_lock_with_groups_and_markers() {
        let install = locked(POETRY2_PYPROJECT, POETRY2_LOCK).unwrap();
        assert_eq!(
            lines(&install),
            [
                "airbyte-cdk==6.36.0",
                "certifi==2025.1.31",
                "charset-normalizer==3.4.1",
                "click==8.1.8",
                r#"colorama==0.4.6 ; platform_system == "Windows""#,
                "idna==3.10",
                r#"numpy==1.26.4 ; python_version < "3.12""#,
                r#"numpy==2.1.3 ; python_version >= "3.12""#,
                "requests==2.32.3",
                r#"tzdata==2025.1 ; sys_platform == "win32" and platform_system == "Windows""#,
                r#"tzlocal==5.2 ; sys_platform == "win32""#,
                "urllib3==2.3.0",
            ]
        );
        assert!(install.fully_pinned);
    }

    #[test]
    fn poetry2_duplicates_without_separating_markers_fall_back_to_python_versions() {
        let lock = POETRY2_LOCK
            .replace(
                "markers = \"python_version < \\\"3.12\\\"\"\nfiles",
                "files",
            )
            .replace(
                "markers = \"python_version >= \\\"3.12\\\"\"\nfiles",
                "files",
            );
        assert_ne!(lock, POETRY2_LOCK);
        let install = locked(POETRY2_PYPROJECT, &lock).unwrap();
        let numpy: Vec<&str> = lines(&install)
            .into_iter()
            .filter(|l| l.starts_with("numpy"))
            .collect();
        assert_eq!(
            numpy,
            [
                r#"numpy==1.26.4 ; python_version >= "3.9" and python_version < "3.10""#,
                r#"numpy==2.1.3 ; python_version >= "3.10""#,
            ]
        );
        assert!(install.fully_pinned);
    }

    #[test]
    fn poetry2_project_dependencies_without_lock() {
        let install = unlocked(POETRY2_PYPROJECT).unwrap();
        assert_eq!(
            lines(&install),
            [
                "airbyte-cdk>=6.33,<7.0",
                "click>=8.1",
                "numpy>=1.26",
                r#"tzlocal>=5.2 ; sys_platform == "win32""#,
            ]
        );
    }

    #[test]
    fn poetry2_tool_poetry_entries_enrich_project_dependencies() {
        let pyproject = r#"[project]
name = "source-example"
version = "0.2.0"
dependencies = ["airbyte-cdk", "requests[socks]>=2.0", "pyjwt ; python_version >= '3.9'"]

[tool.poetry.dependencies]
airbyte-cdk = { git = "https://github.com/airbytehq/airbyte-python-cdk.git", rev = "1a2b3c4" }
requests = "<3"
pyjwt = { version = "^2.8", markers = "sys_platform != 'win32'" }
not-declared-in-project = "^1"
"#;
        let install = unlocked(pyproject).unwrap();
        assert_eq!(
            lines(&install),
            [
                "airbyte-cdk @ git+https://github.com/airbytehq/airbyte-python-cdk.git@1a2b3c4",
                r#"pyjwt>=2.8,<3.0 ; python_version >= "3.9" and sys_platform != "win32""#,
                "requests[socks]>=2.0,<3",
            ]
        );
    }

    #[test]
    fn git_dependency_with_lock_uses_resolved_commit() {
        let pyproject = with_deps(
            r#"airbyte-cdk = { git = "https://github.com/airbytehq/airbyte-python-cdk.git", branch = "main" }"#,
        );
        let lock = r#"[[package]]
name = "airbyte-cdk"
version = "6.36.0"
description = "A framework for writing Airbyte Connectors."
optional = false
python-versions = "^3.10,<3.13"
files = []
develop = false

[package.dependencies]
backoff = "*"

[package.source]
type = "git"
url = "https://github.com/airbytehq/airbyte-python-cdk.git"
reference = "main"
resolved_reference = "3f2c9a1d5e6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d"

[[package]]
name = "backoff"
version = "2.2.1"
description = "Function decoration for backoff and retry"
optional = false
python-versions = ">=3.7,<4.0"
files = []

[metadata]
lock-version = "2.0"
python-versions = "^3.10"
content-hash = "0000"
"#;
        let install = locked(&pyproject, lock).unwrap();
        assert_eq!(
            lines(&install),
            [
                "airbyte-cdk @ git+https://github.com/airbytehq/airbyte-python-cdk.git@3f2c9a1d5e6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d",
                "backoff==2.2.1",
            ]
        );
        assert!(install.fully_pinned);

        // Without the resolved commit the branch is used, which is not a pin.
        let install = locked(
            &pyproject,
            &lock.replace(
                "resolved_reference = \"3f2c9a1d5e6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d\"\n",
                "",
            ),
        )
        .unwrap();
        assert_eq!(
            install.requirements.first().map(String::as_str),
            Some("airbyte-cdk @ git+https://github.com/airbytehq/airbyte-python-cdk.git@main")
        );
        assert!(!install.fully_pinned);

        // A directory source in the lock cannot be installed either.
        let lock = lock.replace("type = \"git\"", "type = \"directory\"");
        match locked(&pyproject, &lock) {
            Err(PoetryErrorKind::UnsupportedDependency { path, package, .. }) => {
                assert_eq!(
                    (path.as_path(), package.as_str()),
                    (Path::new(LOCK), "airbyte-cdk")
                );
            }
            other => panic!("expected UnsupportedDependency, got {other:?}"),
        }
    }

    const DUPLICATE_LOCK: &str = r#"[[package]]
name = "numpy"
version = "1.24.4"
description = "Fundamental package for array computing in Python"
optional = false
python-versions = ">=3.8"
files = []

[[package]]
name = "numpy"
version = "1.26.4"
description = "Fundamental package for array computing in Python"
optional = false
python-versions = ">=3.9"
files = []

[[package]]
name = "pandas"
version = "2.0.3"
description = "Powerful data structures for data analysis, time series, and statistics"
optional = false
python-versions = ">=3.8"
files = []

[package.dependencies]
numpy = [
    {version = ">=1.20.3", markers = "python_version < \"3.10\""},
    {version = ">=1.21.0", markers = "python_version >= \"3.10\""},
]

[metadata]
lock-version = "2.0"
python-versions = ">=3.8,<3.12"
content-hash = "0000"
"#;

    #[test]
    fn duplicate_versions_split_by_python_versions() {
        let pyproject =
            with_deps("pandas = \"^2.0\"").replace("python = \"^3.9\"", "python = \">=3.8,<3.12\"");
        let install = locked(&pyproject, DUPLICATE_LOCK).unwrap();
        assert_eq!(
            lines(&install),
            [
                r#"numpy==1.24.4 ; python_version >= "3.8" and python_version < "3.9""#,
                r#"numpy==1.26.4 ; python_version >= "3.9""#,
                "pandas==2.0.3",
            ]
        );
        assert!(install.fully_pinned);
    }

    #[test]
    fn indistinguishable_duplicates_are_all_listed_with_a_comment() {
        let pyproject = with_deps("pandas = \"^2.0\"");
        let lock =
            DUPLICATE_LOCK.replace("python-versions = \">=3.9\"", "python-versions = \">=3.8\"");
        let install = locked(&pyproject, &lock).unwrap();
        let got = lines(&install);
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(
            got.first()
                .is_some_and(|l| l.starts_with("# ") && l.contains("numpy")),
            "{got:?}"
        );
        assert_eq!(
            got.get(1..),
            Some(&["numpy==1.24.4", "numpy==1.26.4", "pandas==2.0.3"][..])
        );
        assert!(!install.fully_pinned);
    }

    #[test]
    fn conditional_main_dependency_outside_project_python_may_be_unlocked() {
        // importlib-metadata is only for python < 3.8 and the project needs ^3.9.
        let install = locked(POETRY1_PYPROJECT, POETRY1_LOCK).unwrap();
        assert!(!install.requirements.iter().any(|l| l.contains("importlib")));
        // Reachable on supported Pythons yet unlocked: the lock is stale.
        let pyproject = POETRY1_PYPROJECT.replace("python = \"<3.8\"", "python = \">=3.10\"");
        let err = locked(&pyproject, POETRY1_LOCK).unwrap_err();
        assert!(
            matches!(err, PoetryErrorKind::MissingFromLock { ref package, .. } if package == "importlib-metadata"),
            "{err:?}"
        );
    }

    #[test]
    fn markers_propagate_through_conditional_parents() {
        let pyproject = with_deps(
            r#"pywin-helper = { version = "^1", markers = "sys_platform == 'win32'" }
other = "^1""#,
        );
        let lock = r#"[[package]]
name = "pywin-helper"
version = "1.0"
python-versions = "*"
[package.dependencies]
shared = "*"

[[package]]
name = "other"
version = "1.2"
python-versions = "*"
[package.dependencies]
shared = {version = "*", markers = "python_version < \"3.11\""}
cycle = "*"

[[package]]
name = "cycle"
version = "1.0"
python-versions = "*"
[package.dependencies]
other = "*"

[[package]]
name = "shared"
version = "3.0"
python-versions = "*"
"#;
        let install = locked(&pyproject, lock).unwrap();
        assert_eq!(
            lines(&install),
            [
                "cycle==1.0",
                "other==1.2",
                r#"pywin-helper==1.0 ; sys_platform == "win32""#,
                r#"shared==3.0 ; (python_version < "3.11") or (sys_platform == "win32")"#,
            ]
        );
    }

    const FAKER_PYPROJECT: &str = r#"[build-system]
requires = [ "poetry-core>=1.0.0",]
build-backend = "poetry.core.masonry.api"

[tool.poetry]
version = "7.2.1"
name = "airbyte-source-faker"
description = "Source implementation for fake but realistic looking data."
authors = [ "Airbyte <evan@airbyte.io>",]
license = "ELv2"
readme = ".airbyte-pypi-readme.md"
documentation = "https://docs.airbyte.com/integrations/sources/faker"
homepage = "https://airbyte.com"
repository = "https://github.com/airbytehq/airbyte"
[[tool.poetry.packages]]
include = "source_faker"

[tool.poetry.dependencies]
python = ">=3.10,<3.13"
airbyte-cdk = ">=6.61.6,<7.0"
mimesis = "==6.1.1"  # TODO: Consider broadening/bumping, but beware breaking changes.

[tool.poetry.scripts]
source-faker = "source_faker.run:run"

[tool.poetry.group.dev.dependencies]
requests-mock = ">=1.9.3"  # Intentionally broad to avoid conflicts with CDK
pytest-mock = ">=3.6.1"  # Intentionally broad to avoid conflicts with CDK
pytest = ">=8.0.0"  # Intentionally broad to avoid conflicts with CDK


[tool.poe]
include = [
    # Shared tasks definition file(s) can be imported here.
    # Run `poe` or `poe --help` to see the list of available tasks.
    "${POE_GIT_DIR}/poe-tasks/poetry-connector-tasks.toml",
]
"#;

    const POKEAPI_PYPROJECT: &str = r#"[build-system]
requires = [
    "poetry-core>=1.0.0",
]
build-backend = "poetry.core.masonry.api"

[tool.poetry]
version = "0.2.15"
name = "airbyte-source-pokeapi"
description = "Source implementation for pokeapi."
authors = [
    "Airbyte <contact@airbyte.io>",
]
license = "MIT"
readme = "README.md"
documentation = "https://docs.airbyte.com/integrations/sources/pokeapi"
homepage = "https://airbyte.com"
repository = "https://github.com/airbytehq/airbyte"
packages = [
    { include = "source_pokeapi" },
    { include = "main.py" },
]

[tool.poetry.dependencies]
python = "^3.9,<3.12"
airbyte-cdk = "^0"

[tool.poetry.scripts]
source-pokeapi = "source_pokeapi.run:run"

[tool.poetry.group.dev.dependencies]
requests-mock = "*"
pytest-mock = "*"
pytest = "*"
"#;

    #[test]
    fn real_world_connector_pyprojects_without_lock() {
        // pyproject.toml from the airbyte-source-faker 7.2.1 and
        // airbyte-source-pokeapi 0.2.15 sdists on PyPI.
        assert!(is_poetry_project(FAKER_PYPROJECT));
        let faker = unlocked(FAKER_PYPROJECT).unwrap();
        assert_eq!(
            lines(&faker),
            ["airbyte-cdk>=6.61.6,<7.0", "mimesis==6.1.1"]
        );
        assert!(!faker.fully_pinned);

        let pokeapi = unlocked(POKEAPI_PYPROJECT).unwrap();
        assert_eq!(lines(&pokeapi), ["airbyte-cdk>=0,<1"]);
    }

    #[test]
    fn output_is_sorted_by_normalised_name_and_deterministic() {
        let pyproject = with_deps(
            "Zope_Interface = \"*\"\naiohttp = \"^3\"\nPyYAML = \"^6.0\"\n\"ruamel.yaml\" = \"*\"",
        );
        let first = unlocked(&pyproject).unwrap();
        assert_eq!(
            lines(&first),
            [
                "aiohttp>=3,<4",
                "PyYAML>=6.0,<7.0",
                "ruamel.yaml",
                "Zope_Interface"
            ]
        );
        assert_eq!(first, unlocked(&pyproject).unwrap());
        let a = locked(POETRY2_PYPROJECT, POETRY2_LOCK).unwrap();
        assert_eq!(a, locked(POETRY2_PYPROJECT, POETRY2_LOCK).unwrap());
    }

    #[test]
    fn normalises_names() {
        assert_eq!(normalize_name("Zope_Interface"), "zope-interface");
        assert_eq!(normalize_name("ruamel.yaml"), "ruamel-yaml");
        assert_eq!(normalize_name("Foo.-_Bar"), "foo-bar");
        assert_eq!(normalize_name("PySocks"), "pysocks");
    }

    #[test]
    fn version_ordering_and_matching() {
        let order = [
            "1.0.dev1",
            "1.0a1",
            "1.0b2",
            "1.0rc1",
            "1.0",
            "1.0.post1",
            "1.1.dev0",
            "1.1",
            "1!0.1",
        ];
        for pair in order.windows(2) {
            if let [a, b] = pair {
                let (a, b) = (Version::parse(a).unwrap(), Version::parse(b).unwrap());
                assert_eq!(a.cmp_public(&b), Ordering::Less, "{a:?} < {b:?}");
            }
        }
        let same = |a: &str, b: &str| {
            Version::parse(a)
                .unwrap()
                .cmp_public(&Version::parse(b).unwrap())
        };
        assert_eq!(same("1.0", "1.0.0"), Ordering::Equal);
        assert_eq!(same("v1.0-1", "1.0.post1"), Ordering::Equal);
        assert!(satisfies(&["^2.0".to_string()], "2.31.0"));
        assert!(!satisfies(&["^2.0".to_string()], "3.0.0"));
        assert!(!satisfies(&["<2.0".to_string()], "2.0.0rc1"));
        assert!(satisfies(
            &[">=1.5.6,<1.5.7 || >1.5.7".to_string()],
            "1.7.1"
        ));
        assert!(!satisfies(
            &[">=1.5.6,<1.5.7 || >1.5.7".to_string()],
            "1.5.7"
        ));
        assert!(satisfies(&["==1.2.*".to_string()], "1.2.9"));
        assert!(satisfies(&["~=1.2".to_string()], "1.9"));
        assert!(!satisfies(&["~=1.2.0".to_string()], "1.3"));
        assert!(satisfies(&["==1.0".to_string()], "1.0+cpu"));
    }

    #[test]
    fn marker_algebra() {
        let none = BTreeSet::new();
        let m = parse_marker(
            r#"python_version < "3.8" and (sys_platform == "win32" or sys_platform == 'cygwin')"#,
            &none,
        )
        .unwrap();
        assert_eq!(
            m.render().as_deref(),
            Some(
                r#"(python_version < "3.8" and sys_platform == "cygwin") or (python_version < "3.8" and sys_platform == "win32")"#
            )
        );
        // Contradictions vanish; redundant bounds are dropped.
        let never = parse_marker(
            r#"python_version < "3.8" and python_version >= "3.9""#,
            &none,
        )
        .unwrap();
        assert!(never.is_never());
        let tight = parse_marker(
            r#"python_version < "3.12" and python_version < "3.10""#,
            &none,
        )
        .unwrap();
        assert_eq!(
            tight.render().as_deref(),
            Some(r#"python_version < "3.10""#)
        );
        assert!(parse_marker(
            r#"sys_platform == "linux" and sys_platform == "win32""#,
            &none
        )
        .unwrap()
        .is_never());
        // Reversed operands and `in`.
        let reversed = parse_marker(
            r#""3.8" <= python_version and "linux" in sys_platform"#,
            &none,
        )
        .unwrap();
        assert_eq!(
            reversed.render().as_deref(),
            Some(r#"python_version >= "3.8" and "linux" in sys_platform"#)
        );
        // `extra` is decided from the enabled extras.
        let socks: BTreeSet<String> = ["socks".to_string()].into();
        assert!(parse_marker(r#"extra == "socks""#, &socks)
            .unwrap()
            .is_always());
        assert!(parse_marker(r#"extra == "socks""#, &none)
            .unwrap()
            .is_never());
        // Negation.
        let py = python_dnf(">=3.9,<4.0").unwrap();
        assert_eq!(
            py.not().and_then(|n| n.render()).as_deref(),
            Some(r#"(python_version < "3.9") or (python_version >= "4.0")"#)
        );
        // Absorption: `a or (a and b)` is `a`.
        let mut a = Dnf::atom(Atom::cmp("sys_platform", Op::Eq, "win32"));
        let ab = a.and(&Dnf::atom(Atom::cmp("python_version", Op::Lt, "3.8")));
        assert!(!a.or_in(&ab));
        assert_eq!(a.render().as_deref(), Some(r#"sys_platform == "win32""#));
        // Unparsable text is kept verbatim.
        assert_eq!(
            marker_or_raw("os_name == ", &none).render().as_deref(),
            Some("os_name ==")
        );
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        let nasty = [
            "",
            " ",
            "^",
            "~",
            "~=",
            "||",
            "|",
            ",,,",
            "*",
            "x.y",
            "1!",
            "!1",
            "1..2",
            "1.",
            ".1",
            "🦀",
            "^🦀",
            "é1.0",
            "1.0+",
            "1.0+🦀",
            ">=1.0 <",
            "^99999999999999999999999",
            "^18446744073709551615",
            "~18446744073709551615.18446744073709551615",
            "1.0-",
            "1.0a1a2",
            "1.0.post1.post2",
            "===",
            "(",
            ")",
            "\"",
            "'",
            "python_version <",
            "extra ~= 'a'",
            "'a' == 'b'",
            "a == b",
            "not",
            "not in",
        ];
        let none = BTreeSet::new();
        for text in nasty {
            let _ = parse_poetry_constraint(text);
            let _ = python_dnf(text);
            let _ = platform_dnf(text);
            let _ = parse_marker(text, &none);
            let _ = marker_or_raw(text, &none);
            let _ = Version::parse(text);
            let _ = parse_pep508(text);
            let _ = satisfies(&[text.to_string()], text);
            let _ = unlocked(&with_deps(&format!(
                "foo = {{ version = {text:?}, python = {text:?}, markers = {text:?} }}"
            )));
            let _ = is_poetry_project(text);
        }
        let deep = format!(
            "{}python_version < \"3\"{}",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert!(parse_marker(&deep, &none).is_err());
        let wide = (0..200)
            .map(|i| format!("os_name == \"{i}\""))
            .collect::<Vec<_>>()
            .join(" or ");
        let wide = parse_marker(&format!("({wide}) and ({wide})"), &none).unwrap();
        assert!(wide.is_always(), "oversized markers fall back to always");
        for junk in [
            "package = 3",
            "[[package]]\nname = 1",
            "[[package]]\nversion = \"1\"",
            "[metadata]\nlock-version = 2",
        ] {
            assert!(
                locked(&with_deps("requests = \"^2\""), junk).is_err(),
                "{junk}"
            );
        }
    }
}
