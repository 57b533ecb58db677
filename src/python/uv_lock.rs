//! Requirement lines from a `uv.lock`: the locked closure of the project's main
//! dependencies (no dev groups, no optional extras, not the project itself), pinned and with
//! the lock's file hashes, so pip or uv installs exactly what `uv sync --no-dev
//! --no-install-project` would.
//!
//! uv.lock records each dependency edge with its marker (already simplified by uv against
//! `requires-python`), and names the version when a package is locked more than once, so the
//! walk needs no resolution: it follows edges, and-ing markers on the way.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use pep508_rs::MarkerTree;
use toml::{Table, Value};

use super::poetry::names::normalize_name;
use super::toml_fields::{self, invalid, opt_str, FieldError};
use super::LockedRequirements;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UvLockError {
    #[error("{at}: invalid TOML: {detail}")]
    InvalidToml { at: String, detail: String },
    #[error(transparent)]
    InvalidField(#[from] FieldError),
    #[error("{}: no project entry (a package whose source is `editable = \".\"` or `virtual = \".\"`); run `uv lock` in the connector folder", .path.display())]
    NoProject { path: PathBuf },
    #[error("{}: `{package}` requires `{dependency}`, which has no [[package]] entry; the lock is incomplete: run `uv lock`", .path.display())]
    MissingPackage {
        path: PathBuf,
        package: String,
        dependency: String,
    },
    #[error("{}: `{package}` comes from {what}, which cannot be installed in the image build; {hint}", .path.display())]
    Unsupported {
        path: PathBuf,
        package: String,
        what: String,
        hint: String,
    },
}

struct Package {
    name: String,
    version: Option<String>,
    source: Table,
    /// (target name, target version if named, marker, extras requested).
    dependencies: Vec<Edge>,
    optional: BTreeMap<String, Vec<Edge>>,
    hashes: Vec<String>,
}

#[derive(Clone)]
struct Edge {
    name: String,
    version: Option<String>,
    marker: MarkerTree,
    extras: Vec<String>,
}

fn edges(path: &Path, key: &str, value: Option<&Value>) -> Result<Vec<Edge>, FieldError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let items = value
        .as_array()
        .ok_or_else(|| invalid(path, key, "must be an array of tables"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let key = format!("{key}[{i}]");
            let t = item
                .as_table()
                .ok_or_else(|| invalid(path, &key, "must be a table"))?;
            let name = opt_str(t, "name", path, &key)?
                .ok_or_else(|| invalid(path, format!("{key}.name"), "is missing"))?;
            let marker = match opt_str(t, "marker", path, &key)? {
                Some(text) => text.parse::<MarkerTree>().map_err(|e| {
                    invalid(
                        path,
                        format!("{key}.marker"),
                        format!(
                            "is not a PEP 508 marker: {}",
                            e.to_string().lines().next().unwrap_or_default()
                        ),
                    )
                })?,
                None => MarkerTree::TRUE,
            };
            let extras = match t.get("extra") {
                None => Vec::new(),
                Some(Value::Array(list)) => list
                    .iter()
                    .filter_map(Value::as_str)
                    .map(normalize_name)
                    .collect(),
                Some(_) => return Err(invalid(path, format!("{key}.extra"), "must be an array")),
            };
            Ok(Edge {
                name: normalize_name(&name),
                version: opt_str(t, "version", path, &key)?,
                marker,
                extras,
            })
        })
        .collect()
}

fn file_hashes(package: &Table) -> Vec<String> {
    let mut hashes: Vec<String> = package
        .get("sdist")
        .into_iter()
        .chain(
            package
                .get("wheels")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .filter_map(|file| file.get("hash").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    hashes.sort();
    hashes.dedup();
    hashes
}

fn parse(path: &Path, text: &str) -> Result<Vec<Package>, UvLockError> {
    let doc: Table = toml::from_str(text).map_err(|err| {
        let (at, detail) = crate::model::toml_error::locate(path, text, &err);
        UvLockError::InvalidToml { at, detail }
    })?;
    let mut packages = Vec::new();
    for (key, t, name) in toml_fields::packages(&doc, path)? {
        let mut optional = BTreeMap::new();
        if let Some(table) = t.get("optional-dependencies").and_then(Value::as_table) {
            for (extra, list) in table {
                let list = edges(
                    path,
                    &format!("{key}.optional-dependencies.{extra}"),
                    Some(list),
                )?;
                optional.insert(normalize_name(extra), list);
            }
        }
        packages.push(Package {
            name: normalize_name(&name),
            version: opt_str(t, "version", path, &key)?,
            source: t
                .get("source")
                .and_then(Value::as_table)
                .cloned()
                .unwrap_or_default(),
            dependencies: edges(path, &format!("{key}.dependencies"), t.get("dependencies"))?,
            optional,
            hashes: file_hashes(t),
        });
    }
    Ok(packages)
}

fn is_root(source: &Table) -> bool {
    ["editable", "virtual"].iter().any(|k| {
        source
            .get(*k)
            .and_then(Value::as_str)
            .is_some_and(|p| matches!(p, "." | "./"))
    })
}

/// The main-dependency closure of the project in `uv.lock`.
pub fn uv_requirements(lock_path: &Path, text: &str) -> Result<LockedRequirements, UvLockError> {
    let packages = parse(lock_path, text)?;
    let Some(root) = packages.iter().position(|p| is_root(&p.source)) else {
        return Err(UvLockError::NoProject {
            path: lock_path.to_path_buf(),
        });
    };
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, p) in packages.iter().enumerate() {
        by_name.entry(p.name.as_str()).or_default().push(i);
    }
    let mut walk = Walk {
        path: lock_path,
        packages: &packages,
        by_name,
        reach: vec![None; packages.len()],
        extras: vec![BTreeSet::new(); packages.len()],
        queue: VecDeque::new(),
    };
    for edge in &packages[root].dependencies {
        walk.deliver(root, edge, &MarkerTree::TRUE)?;
    }
    while let Some(i) = walk.queue.pop_front() {
        let Some(marker) = walk.reach[i].clone() else {
            continue;
        };
        let package = &packages[i];
        let enabled: Vec<&Edge> = walk.extras[i]
            .iter()
            .filter_map(|extra| package.optional.get(extra))
            .flatten()
            .collect();
        for edge in package.dependencies.iter().chain(enabled) {
            walk.deliver(i, edge, &marker)?;
        }
    }
    let reach = walk.reach;

    let mut lines = Vec::new();
    let mut unhashed = Vec::new();
    for (i, marker) in reach.iter().enumerate() {
        let (Some(marker), package) = (marker, &packages[i]) else {
            continue;
        };
        if i == root {
            continue;
        }
        let mut line = requirement(lock_path, package)?;
        if let Some(marker) = marker.try_to_string() {
            line.push_str(" ; ");
            line.push_str(&marker);
        }
        if package.hashes.is_empty() {
            unhashed.push(package.name.clone());
        }
        lines.push((line, package.hashes.clone()));
    }
    lines.sort();
    Ok(LockedRequirements::from_pins(lock_path, lines, &unhashed))
}

struct Walk<'a> {
    path: &'a Path,
    packages: &'a [Package],
    by_name: BTreeMap<&'a str, Vec<usize>>,
    /// Under which environments each package is needed; `None` = not needed.
    reach: Vec<Option<MarkerTree>>,
    /// Extras requested on each package (normalised).
    extras: Vec<BTreeSet<String>>,
    queue: VecDeque<usize>,
}

impl Walk<'_> {
    /// Follows an edge from package `from`, reached under `parent`. Markers only grow and
    /// equal markers compare equal, so the walk settles.
    fn deliver(
        &mut self,
        from: usize,
        edge: &Edge,
        parent: &MarkerTree,
    ) -> Result<(), UvLockError> {
        let packages = self.packages;
        let targets: Vec<usize> = self
            .by_name
            .get(edge.name.as_str())
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| edge.version.is_none() || packages[i].version == edge.version)
            .collect();
        if targets.is_empty() {
            return Err(UvLockError::MissingPackage {
                path: self.path.to_path_buf(),
                package: packages[from].name.clone(),
                dependency: edge.name.clone(),
            });
        }
        let mut marker = parent.clone();
        marker.and(edge.marker.clone());
        if marker.is_false() {
            return Ok(());
        }
        for i in targets {
            let mut changed = match &mut self.reach[i] {
                Some(existing) => {
                    let before = existing.clone();
                    existing.or(marker.clone());
                    *existing != before
                }
                slot => {
                    *slot = Some(marker.clone());
                    true
                }
            };
            for extra in &edge.extras {
                changed |= self.extras[i].insert(extra.clone());
            }
            if changed && !self.queue.contains(&i) {
                self.queue.push_back(i);
            }
        }
        Ok(())
    }
}

/// The pin for one locked package.
fn requirement(path: &Path, package: &Package) -> Result<String, UvLockError> {
    let source = &package.source;
    let unsupported = |what: String, hint: &str| UvLockError::Unsupported {
        path: path.to_path_buf(),
        package: package.name.clone(),
        what,
        hint: hint.to_string(),
    };
    if let Some(index) = source.get("registry").and_then(Value::as_str) {
        if !(index.contains("://pypi.org/") || index.contains("://files.pythonhosted.org/")) {
            return Err(unsupported(
                format!("the package index {index}"),
                "connector-build installs from PyPI only",
            ));
        }
        let version = package.version.as_deref().unwrap_or_default();
        return Ok(format!("{}=={version}", package.name));
    }
    if let Some(git) = source.get("git").and_then(Value::as_str) {
        // `https://host/repo?rev=main&subdirectory=x#<commit>`: pin the commit.
        let (rest, commit) = git.split_once('#').unwrap_or((git, ""));
        let (url, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut line = format!("{} @ git+{url}", package.name);
        if !commit.is_empty() {
            line.push('@');
            line.push_str(commit);
        }
        if let Some(sub) = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("subdirectory="))
        {
            line.push_str("#subdirectory=");
            line.push_str(sub);
        }
        return Ok(line);
    }
    if let Some(url) = source.get("url").and_then(Value::as_str) {
        return Ok(format!("{} @ {url}", package.name));
    }
    let (kind, location) = source
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .unwrap_or_default();
    Err(unsupported(
        format!("a {kind} source (`{location}`)"),
        "the connector folder is not part of the dependency install layer; publish the \
         package to PyPI or depend on it through git",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/connectors-fixtures/source-fixture-uv/uv.lock"
    ));

    #[test]
    fn main_closure_with_hashes_without_dev_or_the_project() {
        let install = uv_requirements(Path::new("uv.lock"), LOCK).unwrap();
        assert!(install.require_hashes, "{install:?}");
        let names: Vec<&str> = install
            .requirements
            .iter()
            .map(|l| l.split(" \\").next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "colorama==0.4.6 ; sys_platform == 'win32'",
                "python-dateutil==2.9.0.post0",
                "six==1.17.0",
            ]
        );
        assert!(install.requirements[2].contains(
            "--hash=sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"
        ));
        assert!(install.warnings.is_empty());
    }

    #[test]
    fn broken_locks_are_located_errors() {
        let path = Path::new("x/uv.lock");
        let no_root = LOCK.replace("editable = \".\"", "registry = \"https://pypi.org/simple\"");
        assert!(matches!(
            uv_requirements(path, &no_root),
            Err(UvLockError::NoProject { .. })
        ));
        let missing = LOCK.replace("name = \"six\"\nversion", "name = \"six-renamed\"\nversion");
        let err = uv_requirements(path, &missing).unwrap_err();
        assert!(
            matches!(err, UvLockError::MissingPackage { ref dependency, .. } if dependency == "six"),
            "{err}"
        );
        let private = LOCK.replace(
            "source = { registry = \"https://pypi.org/simple\" }",
            "source = { registry = \"https://pkgs.example.com/simple\" }",
        );
        assert!(matches!(
            uv_requirements(path, &private),
            Err(UvLockError::Unsupported { .. })
        ));
        let err = uv_requirements(path, "package = [").unwrap_err();
        assert!(err.to_string().starts_with("x/uv.lock:1:"), "{err}");
    }
}
