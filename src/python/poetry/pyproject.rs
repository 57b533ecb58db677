//! Reading a Poetry project's main-group dependencies from pyproject.toml (Poetry 1's
//! `[tool.poetry.dependencies]` and Poetry 2's `[project]`), and the requirement lines for
//! them when there is no lock.

use std::collections::BTreeSet;
use std::path::Path;

use std::str::FromStr;

use pep508_rs::{MarkerTree, Pep508Url, Requirement, VersionOrUrl};
use toml::{Table, Value};

use super::constraint::pep440_spec;
use super::error::{PoetryErrorKind, INDEX_HINT, PATH_HINT};
use super::fields::{entry_values, invalid, opt_bool, opt_str, opt_table, str_array};
use super::markers;
use super::names::{leading_name, normalize_name};

/// Where a main-group dependency comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
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
pub(super) struct RootDep {
    /// As written in pyproject.toml.
    pub name: String,
    pub origin: Origin,
    pub extras: Vec<String>,
    pub marker: MarkerTree,
}

pub(super) struct Project<'a> {
    pub path: &'a Path,
    pub deps: Vec<RootDep>,
    /// Pythons the project supports; tells a deliberately unlocked dependency
    /// (never needed on those Pythons) from a stale lock.
    pub python: MarkerTree,
}

pub(super) fn read_project<'a>(
    path: &'a Path,
    doc: &Table,
) -> Result<Project<'a>, PoetryErrorKind> {
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
        .and_then(|c| markers::python(&c).ok())
        .unwrap_or(MarkerTree::TRUE);

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

struct PoetryEntry {
    origin: Origin,
    extras: Vec<String>,
    marker: MarkerTree,
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
                marker: MarkerTree::TRUE,
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
    // `extra == ...` markers evaluate to never: root extras are not requested.
    let mut marker = match opt_str(table, "markers", path, key)? {
        Some(text) => markers::parse(&text, &BTreeSet::new()).map_err(|reason| {
            invalid(
                path,
                format!("{key}.markers"),
                format!("is not a PEP 508 marker: {reason}"),
            )
        })?,
        None => MarkerTree::TRUE,
    };
    if let Some(python) = opt_str(table, "python", path, key)? {
        let python_marker =
            markers::python(&python).map_err(|reason| PoetryErrorKind::UnsupportedConstraint {
                path: path.to_path_buf(),
                package: name.to_string(),
                constraint: python.clone(),
                reason: format!("invalid `python` constraint: {reason}"),
            })?;
        marker.and(python_marker);
    }
    if let Some(platform) = opt_str(table, "platform", path, key)? {
        marker.and(markers::platform(&platform));
    }
    if marker.is_false() {
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

pub(super) fn is_pypi_url(url: &str) -> bool {
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
    let not_pep508 = |reason: &str| {
        invalid(
            path,
            key,
            format!("`{line}` is not a PEP 508 requirement: {reason}"),
        )
    };
    markers::check_nesting(line).map_err(|reason| not_pep508(&reason))?;
    let req = Requirement::<RawUrl>::from_str(line).map_err(|e| {
        let reason = e.to_string();
        not_pep508(reason.lines().next().unwrap_or_default())
    })?;
    // As written, for messages and output; the parser keeps only the normalised form.
    let name = leading_name(line).map_or_else(|| req.name.to_string(), |(n, _)| n.to_string());
    let norm = normalize_name(&name);
    // `extra == ...` markers evaluate to never: root extras are not requested.
    let marker = markers::decide_extras(&req.marker, &BTreeSet::new());
    let base_origin = match &req.version_or_url {
        Some(VersionOrUrl::Url(RawUrl(url))) if url.starts_with("file:") => {
            return Err(unsupported_path(path, &name, url))
        }
        Some(VersionOrUrl::Url(RawUrl(url))) => Origin::Url {
            url: url.clone(),
            subdirectory: None,
        },
        Some(VersionOrUrl::VersionSpecifier(specifiers)) if !specifiers.is_empty() => {
            Origin::Registry(vec![specifiers.to_string()])
        }
        Some(VersionOrUrl::VersionSpecifier(_)) | None => Origin::Registry(Vec::new()),
    };
    let base = RootDep {
        name,
        origin: base_origin,
        extras: req.extras.iter().map(ToString::to_string).collect(),
        marker,
    };
    if base.marker.is_false() {
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
                let marker = markers::and(&base.marker, &entry.marker);
                if marker.is_false() {
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

/// A URL as written: pip reads it, so it is passed on untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RawUrl(String);

impl std::fmt::Display for RawUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Pep508Url for RawUrl {
    type Err = std::convert::Infallible;

    fn parse_url(url: &str, _working_dir: Option<&Path>) -> Result<Self, Self::Err> {
        Ok(RawUrl(url.to_string()))
    }
}

pub(super) fn unlocked_requirement(
    path: &Path,
    dep: &RootDep,
) -> Result<super::Requirement, PoetryErrorKind> {
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
    if let Some(marker) = markers::render(&dep.marker) {
        line.push_str(" ; ");
        line.push_str(&marker);
    }
    Ok(super::Requirement {
        name: normalize_name(&dep.name),
        spec: line,
        hashes: Vec::new(),
    })
}

pub(super) fn git_requirement_url(
    url: &str,
    reference: Option<&str>,
    subdirectory: Option<&str>,
) -> String {
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

pub(super) fn with_subdirectory(mut url: String, subdirectory: Option<&str>) -> String {
    if let Some(sub) = subdirectory {
        url.push_str("#subdirectory=");
        url.push_str(sub);
    }
    url
}
