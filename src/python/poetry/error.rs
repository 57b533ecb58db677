//! Why requirements could not be computed for a Poetry project.

use std::path::PathBuf;

use crate::python::toml_fields::FieldError;

pub(super) const RELOCK: &str = "run `poetry lock` in the connector folder (Poetry 1.x: \
                      `poetry lock --no-update`) and commit poetry.lock";
pub(super) const PATH_HINT: &str =
    "the connector folder is not part of the dependency install layer; \
                         publish the package to PyPI or depend on it through git";
pub(super) const INDEX_HINT: &str =
    "connector-build installs from PyPI only; publish the package to \
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
    #[error(transparent)]
    InvalidField(#[from] FieldError),

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

    #[error(
        "{}: the dependency graph did not settle after {visits} package visits; \
         regenerate the lock with `poetry lock`",
        .lock.display()
    )]
    LockTooComplex { lock: PathBuf, visits: usize },
}
