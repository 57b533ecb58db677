//! Requirement lines for Poetry projects, computed without running Poetry.
//!
//! Poetry's resolver does not work on the build machines, so Poetry connectors
//! are installed with pip/uv from lines computed here: the locked closure of
//! the main group when `poetry.lock` exists, otherwise the main group's
//! constraints translated to PEP 440.
//!
//! - [`pyproject`] reads the main group from pyproject.toml;
//! - [`constraint`] translates Poetry constraints (`^`, `~`, wildcards) to PEP 440;
//! - [`markers`] builds environment markers (on `pep508_rs`);
//! - [`lock`] reads poetry.lock, [`closure`] walks it from the main group;
//! - [`content_hash`] tells a lock that is stale against pyproject.toml.

mod closure;
mod constraint;
mod content_hash;
mod error;
mod fields;
mod lock;
mod markers;
pub(crate) mod names;
mod pyproject;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use toml::{Table, Value};

pub use error::{PoetryError, PoetryErrorKind};
use fields::parse_toml;

/// One PEP 508 requirement line, e.g. `requests==2.31.0 ; python_version >= "3.8"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Requirement {
    /// PEP 503-normalised distribution name; the sort and match key.
    pub name: String,
    /// The full PEP 508 line.
    pub spec: String,
    /// `sha256:...` of the files the lock allows for this line; empty when unknown.
    pub hashes: Vec<String>,
}

/// What to install for a Poetry project's main group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoetryInstall {
    /// Lines to write into a requirements file, sorted by normalised name, deterministic.
    pub requirements: Vec<String>,
    /// true when every line is an exact pin from poetry.lock covering the whole closure,
    /// so the caller may install with `--no-deps`.
    pub fully_pinned: bool,
    /// Every line carries the lock's file hashes: install with `--require-hashes`.
    pub require_hashes: bool,
    /// What the user should know that does not stop the build (a stale lock, no hashes).
    pub warnings: Vec<String>,
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
    let project = pyproject::read_project(pyproject_path, &doc)?;
    let mut warnings = Vec::new();
    let resolved = match lock {
        Some(text) => {
            let lock_doc = parse_toml(lock_path, text)?;
            if let Some(recorded) = content_hash::stale(&doc, &lock_doc) {
                warnings.push(format!(
                    "{}: content-hash {} does not match {}: the lock may be out of date \
                     (installing what it pins); {}",
                    lock_path.display(),
                    short(&recorded),
                    pyproject_path.display(),
                    error::RELOCK
                ));
            }
            let lock = lock::parse_lock(lock_path, &lock_doc)?;
            closure::resolve_locked(&project, &lock)?
        }
        None => Resolved {
            requirements: project
                .deps
                .iter()
                .map(|dep| pyproject::unlocked_requirement(pyproject_path, dep))
                .collect::<Result<_, _>>()?,
            notes: BTreeMap::new(),
            fully_pinned: false,
        },
    };
    let unhashed: Vec<&str> = resolved
        .requirements
        .iter()
        .filter(|r| r.hashes.is_empty())
        .map(|r| r.name.as_str())
        .collect();
    // pip's hash-checking mode needs every line pinned and hashed (git and URL lines
    // cannot be); a partial set would fail the install, so hashes go all or nothing.
    let require_hashes = lock.is_some() && resolved.fully_pinned && unhashed.is_empty();
    if lock.is_some() && !require_hashes {
        let names: Vec<String> = unhashed.iter().map(|n| n.to_string()).collect();
        warnings.push(super::unhashed_warning(lock_path, &names));
    }
    Ok(PoetryInstall {
        requirements: render_lines(resolved.requirements, &resolved.notes, require_hashes),
        fully_pinned: resolved.fully_pinned,
        require_hashes,
        warnings,
    })
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

struct Resolved {
    pub requirements: Vec<Requirement>,
    /// Comment lines to put before a package's lines, by normalised name.
    pub notes: BTreeMap<String, String>,
    pub fully_pinned: bool,
}

fn render_lines(
    mut requirements: Vec<Requirement>,
    notes: &BTreeMap<String, String>,
    with_hashes: bool,
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
        lines.push(super::with_hashes(
            req.spec.clone(),
            &req.hashes,
            with_hashes,
        ));
    }
    lines
}
