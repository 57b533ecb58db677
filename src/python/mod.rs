//! Python packaging: how a connector's dependencies are installed, decided from its manifests.
//!
//! [`install`] picks the method; [`poetry`], [`uv_lock`] and [`pylock`] turn a project's
//! manifests and lock into pinned requirement lines. Nothing here knows about build plans:
//! the planner turns a [`DependencyInstall`] into a step.

pub mod install;
pub mod poetry;
pub mod pylock;
pub mod requirements;
pub mod toml_fields;
pub mod uv_lock;

use std::path::Path;

pub use install::{
    dependency_install, DependencyInstall, GeneratedFile, InstallError, InstallMethod, Installer,
    DEPENDENCY_FILES,
};

/// Pinned requirement lines computed from a lock that lists the whole closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedRequirements {
    /// Sorted, with `--hash` continuations when `require_hashes`.
    pub requirements: Vec<String>,
    /// Every line carries the lock's file hashes: install with `--require-hashes`.
    pub require_hashes: bool,
    /// What the user should know that does not stop the build.
    pub warnings: Vec<String>,
}

impl LockedRequirements {
    /// From pinned lines (in their final order) and their file hashes; hash checking only
    /// when no package is in `unhashed`, with a warning otherwise.
    fn from_pins(lock: &Path, lines: Vec<(String, Vec<String>)>, unhashed: &[String]) -> Self {
        let require_hashes = unhashed.is_empty();
        let mut warnings = Vec::new();
        if !require_hashes {
            warnings.push(unhashed_warning(lock, unhashed));
        }
        LockedRequirements {
            requirements: lines
                .into_iter()
                .map(|(line, hashes)| with_hashes(line, &hashes, require_hashes))
                .collect(),
            require_hashes,
            warnings,
        }
    }
}

/// A requirement line followed by one `--hash=` per continued line (the layout
/// `poetry export` and `uv export` write), when hashes are used at all.
fn with_hashes(mut line: String, hashes: &[String], use_them: bool) -> String {
    if use_them {
        for hash in hashes {
            line.push_str(" \\\n    --hash=");
            line.push_str(hash);
        }
    }
    line
}

/// The warning for a lock whose hashes cannot all be checked.
fn unhashed_warning(lock: &Path, names: &[String]) -> String {
    let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
    names.dedup();
    let listed = match names.len() {
        0 => "some entries are not exact pins".to_string(),
        n if n > 5 => format!(
            "no file hashes for {} and {} more",
            names[..5].join(", "),
            n - 5
        ),
        _ => format!("no file hashes for {}", names.join(", ")),
    };
    format!(
        "{}: {listed}; installing without hash checking",
        lock.display()
    )
}
