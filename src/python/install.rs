//! Choosing the dependency install command from the files a connector has.
//!
//! The install step sees only the dependency manifests, so that editing code never
//! invalidates it. Poetry projects are installed with pip from requirements computed from
//! `poetry.lock` (or the Poetry constraints), which is what `poetry install --no-root --only
//! main` would install, without needing Poetry's resolver. uv projects are installed the
//! same way from `uv.lock`, and PEP 751 projects from `pylock.toml`. Locked installs check
//! the lock's file hashes whenever it records them for every package.

use std::path::Path;

use serde::Serialize;

use super::poetry::{self, PoetryError};
use super::pylock::{self, PylockError};
use super::requirements::{self, RequirementsError};
use super::uv_lock::{self, UvLockError};

/// The only files the dependency layer may see, in the order they are copied.
pub const DEPENDENCY_FILES: [&str; 8] = [
    "pyproject.toml",
    "poetry.lock",
    "poetry.toml",
    "uv.lock",
    "pylock.toml",
    "setup.py",
    "requirements.txt",
    "README.md",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallMethod {
    /// Poetry project: main group only, not the project itself.
    Poetry { locked: bool },
    /// uv project: the main dependencies locked in `uv.lock`, not the project itself.
    UvLock,
    /// PEP 751 `pylock.toml`: the locked packages, not the project itself.
    Pylock,
    /// `pip install -r requirements.txt`, plus `.` when a project file exists and the
    /// requirements do not already install it.
    Requirements { with_project: bool },
    /// `pip install .` from `setup.py` or a PEP 517 `pyproject.toml`.
    Project,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyInstall {
    pub method: InstallMethod,
    pub args: Vec<String>,
    /// Files the command reads from the scratch folder, never from the image.
    pub scratch_files: Vec<GeneratedFile>,
    /// What the user should know that does not stop the build (a stale lock, no hashes).
    pub warnings: Vec<String>,
    /// Files the install reads besides `DEPENDENCY_FILES` (what a requirements file
    /// includes), relative to the connector folder: copied with the manifests.
    pub extra_manifests: Vec<String>,
}

/// A file computed here for the install command (e.g. pinned requirements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    pub name: String,
    pub contents: String,
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{dir}: no dependency manifest; a Python connector needs one of pyproject.toml, setup.py or requirements.txt")]
    NoManifest { dir: String },
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{at}: invalid TOML: {message}; the project cannot be installed from it")]
    BadPyproject {
        path: String,
        at: String,
        message: String,
    },
    #[error("{path} is {kind}, not a regular file; a dependency manifest must be a file")]
    Special { path: String, kind: &'static str },
    #[error(transparent)]
    Poetry(#[from] PoetryError),
    #[error(transparent)]
    Requirements(#[from] RequirementsError),
    // Boxed: these errors are rare and large, and plan errors carry this one.
    #[error(transparent)]
    UvLock(Box<UvLockError>),
    #[error(transparent)]
    Pylock(Box<PylockError>),
}

/// Which program installs the dependencies. Both give the same packages; uv is several
/// times faster and is what the benchmark measures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Installer {
    #[default]
    Pip,
    /// uv, run from `program` (a path inside the container).
    Uv { program: String },
}

impl Installer {
    /// The command that installs packages into the system Python, arguments to follow.
    pub fn install_command(&self) -> Vec<String> {
        let words: &[&str] = match self {
            Installer::Pip => &["python", "-m", "pip", "install"],
            // Bytecode compiled like pip does, so images start equally fast.
            Installer::Uv { program } => {
                return [
                    program.as_str(),
                    "pip",
                    "install",
                    "--system",
                    "--compile-bytecode",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect()
            }
        };
        words.iter().map(|s| s.to_string()).collect()
    }
}

fn read(dir: &Path, name: &str) -> Result<Option<String>, InstallError> {
    read_path(&dir.join(name))
}

/// A manifest's text; `None` when it does not exist. A FIFO or socket is refused unopened.
fn read_path(path: &Path) -> Result<Option<String>, InstallError> {
    if let Some(kind) = std::fs::metadata(path)
        .ok()
        .and_then(|m| crate::model::files::special_kind(&m))
    {
        return Err(InstallError::Special {
            path: path.display().to_string(),
            kind,
        });
    }
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(InstallError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Whether a requirements file already installs the project in the current folder.
fn installs_project(requirements: &str) -> bool {
    requirements.lines().any(|line| {
        let line = line.split('#').next().unwrap_or("").trim();
        let target = line
            .strip_prefix("-e")
            .or_else(|| line.strip_prefix("--editable"))
            .map_or(line, str::trim);
        matches!(target, "." | "./" | "file:." | "file:./") || target.starts_with(".[")
    })
}

/// Pinned requirement lines installed as they are: `--no-deps` when they are the whole
/// closure, `--require-hashes` when every line carries its hashes.
fn locked_install(
    method: InstallMethod,
    installer: &Installer,
    scratch_dir: &str,
    lines: &[String],
    whole_closure: bool,
    require_hashes: bool,
    warnings: Vec<String>,
) -> DependencyInstall {
    let mut contents = lines.join("\n");
    contents.push('\n');
    let mut args = installer.install_command();
    if whole_closure {
        // The lock is the whole closure: install exactly it.
        args.push("--no-deps".into());
    }
    if require_hashes {
        args.push("--require-hashes".into());
    }
    args.push("-r".into());
    args.push(format!("{scratch_dir}/requirements.txt"));
    DependencyInstall {
        method,
        args,
        scratch_files: vec![GeneratedFile {
            name: "requirements.txt".into(),
            contents,
        }],
        warnings,
        extra_manifests: vec![],
    }
}

/// How to install a connector's dependencies; generated files are read from `scratch_dir`
/// inside the install step.
pub fn dependency_install(
    dir: &Path,
    installer: &Installer,
    scratch_dir: &str,
) -> Result<DependencyInstall, InstallError> {
    let pyproject = read(dir, "pyproject.toml")?;
    let has_setup = dir.join("setup.py").is_file();
    // A project file that does not parse fails every install that reads it; say so now,
    // with its line, rather than from inside the install step.
    if let Some(text) = pyproject.as_deref() {
        if let Err(e) = toml::from_str::<toml::Table>(text) {
            if !poetry::is_poetry_project(text) {
                let path = dir.join("pyproject.toml");
                let (at, message) = crate::model::toml_error::locate(&path, text, &e);
                return Err(InstallError::BadPyproject {
                    path: path.display().to_string(),
                    at,
                    message,
                });
            }
        }
    }

    if let Some(text) = pyproject
        .as_deref()
        .filter(|t| poetry::is_poetry_project(t))
    {
        let lock = read(dir, "poetry.lock")?;
        let computed = poetry::poetry_requirements(
            &dir.join("pyproject.toml"),
            text,
            &dir.join("poetry.lock"),
            lock.as_deref(),
        )?;
        return Ok(locked_install(
            InstallMethod::Poetry {
                locked: lock.is_some(),
            },
            installer,
            scratch_dir,
            &computed.requirements,
            computed.fully_pinned,
            computed.require_hashes,
            computed.warnings,
        ));
    }

    let from_lock = if let Some(text) = read(dir, "uv.lock")? {
        let computed = uv_lock::uv_requirements(&dir.join("uv.lock"), &text)
            .map_err(|e| InstallError::UvLock(Box::new(e)))?;
        Some((InstallMethod::UvLock, computed))
    } else if let Some(text) = read(dir, "pylock.toml")? {
        let computed = pylock::pylock_requirements(&dir.join("pylock.toml"), &text)
            .map_err(|e| InstallError::Pylock(Box::new(e)))?;
        Some((InstallMethod::Pylock, computed))
    } else {
        None
    };
    if let Some((method, computed)) = from_lock {
        return Ok(locked_install(
            method,
            installer,
            scratch_dir,
            &computed.requirements,
            true,
            computed.require_hashes,
            computed.warnings,
        ));
    }

    let has_project = has_setup || pyproject.is_some();
    if let Some(reqs) = read(dir, "requirements.txt")? {
        let with_project = has_project && !installs_project(&reqs);
        let extra_manifests = requirements::includes(dir, "requirements.txt")?;
        let mut args = installer.install_command();
        args.extend(["-r".to_string(), "requirements.txt".to_string()]);
        if with_project {
            args.push(".".into());
        }
        return Ok(DependencyInstall {
            method: InstallMethod::Requirements { with_project },
            args,
            scratch_files: vec![],
            warnings: vec![],
            extra_manifests,
        });
    }
    if has_project {
        let mut args = installer.install_command();
        args.push(".".into());
        return Ok(DependencyInstall {
            method: InstallMethod::Project,
            args,
            scratch_files: vec![],
            warnings: vec![],
            extra_manifests: vec![],
        });
    }
    Err(InstallError::NoManifest {
        dir: dir.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_local_project_in_requirements() {
        assert!(installs_project("-e .\n"));
        assert!(installs_project("requests==2\n--editable ./  # local\n"));
        assert!(installs_project(".[tests]\n"));
        assert!(!installs_project("requests==2\n# -e .\n"));
    }

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }

    #[test]
    fn chooses_the_install_method() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), &[("setup.py", "")]);
        let i = dependency_install(d.path(), &Installer::Pip, "/scratch").unwrap();
        assert_eq!(i.method, InstallMethod::Project);
        assert_eq!(i.args.join(" "), "python -m pip install .");

        write(d.path(), &[("requirements.txt", "six==1.16.0\n")]);
        let i = dependency_install(d.path(), &Installer::Pip, "/scratch").unwrap();
        assert_eq!(
            i.args.join(" "),
            "python -m pip install -r requirements.txt ."
        );

        write(d.path(), &[("requirements.txt", "-e .\n")]);
        let i = dependency_install(d.path(), &Installer::Pip, "/scratch").unwrap();
        assert_eq!(
            i.method,
            InstallMethod::Requirements {
                with_project: false
            }
        );

        // A lock beats requirements.txt and `pip install .`: pinned, hashed, no project.
        write(
            d.path(),
            &[(
                "pylock.toml",
                "lock-version = \"1.0\"\n[[packages]]\nname = \"six\"\nversion = \"1.17.0\"\n\
                 sdist = { url = \"https://files.pythonhosted.org/six.tar.gz\", hashes = { sha256 = \"ab\" } }\n",
            )],
        );
        let i = dependency_install(d.path(), &Installer::Pip, "/scratch").unwrap();
        assert_eq!(i.method, InstallMethod::Pylock);
        assert_eq!(
            i.args.join(" "),
            "python -m pip install --no-deps --require-hashes -r /scratch/requirements.txt"
        );
        assert_eq!(
            i.scratch_files[0].contents,
            "six==1.17.0 \\\n    --hash=sha256:ab\n"
        );

        let e = tempfile::tempdir().unwrap();
        let err = dependency_install(e.path(), &Installer::Pip, "/scratch")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no dependency manifest"), "{err}");
    }
}
