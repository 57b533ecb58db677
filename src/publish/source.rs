//! Where a connector's source stands: the time its image carries and the commit it was
//! built from, read from the `git` command (the repository's own configuration applies).

use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Seconds since the Unix epoch every file time and the config's `created` are fixed to.
    pub epoch: u64,
    /// `SOURCE_DATE_EPOCH`, `git commit time` or `none` (1970).
    pub epoch_source: String,
    /// The commit HEAD is at.
    pub revision: Option<String>,
    /// The `origin` remote's URL, for `org.opencontainers.image.source`.
    pub url: Option<String>,
    /// The connector folder has changes git does not have.
    pub dirty: bool,
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

impl Source {
    pub fn of(dir: &Path) -> Source {
        let revision = git(dir, &["rev-parse", "HEAD"]);
        let commit_time = revision
            .as_ref()
            .and_then(|_| git(dir, &["log", "-1", "--format=%ct", "--", "."]))
            .and_then(|t| t.parse::<u64>().ok());
        let from_env = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok());
        let (epoch, epoch_source) = match (from_env, commit_time) {
            (Some(e), _) => (e, "SOURCE_DATE_EPOCH"),
            (None, Some(t)) => (t, "git commit time"),
            (None, None) => (0, "none"),
        };
        let dirty = revision.is_some() && git(dir, &["status", "--porcelain", "--", "."]).is_some();
        Source {
            epoch,
            epoch_source: epoch_source.to_string(),
            url: revision
                .as_ref()
                .and_then(|_| git(dir, &["remote", "get-url", "origin"])),
            revision,
            dirty,
        }
    }
}

/// What may make a rebuild of `dir` at the same commit install something else, as far as the
/// connector's files tell: a build customization that refreshes package lists, dependencies
/// that are not locked.
pub fn reproducibility_risks(dir: &Path) -> Vec<String> {
    use crate::python::install::{dependency_install, InstallMethod, Installer};
    let mut risks = Vec::new();
    if let Ok(hook) = std::fs::read_to_string(dir.join("build_customization.py")) {
        if hook.contains("apt-get update") || hook.contains("apt update") {
            risks.push(
                "build_customization.py runs `apt-get update`: what it installs follows a moving mirror"
                    .into(),
            );
        }
    }
    let Ok(install) = dependency_install(dir, &Installer::Pip, "/scratch") else {
        return risks;
    };
    match install.method {
        InstallMethod::Poetry { locked: false } => {
            risks.push("a Poetry project without poetry.lock: dependencies are resolved at build time".into())
        }
        InstallMethod::Project => risks.push(
            "dependencies come from the project's version ranges with no lock: they are resolved at build time"
                .into(),
        ),
        InstallMethod::Requirements { with_project } => {
            let text = std::fs::read_to_string(dir.join("requirements.txt")).unwrap_or_default();
            let unpinned = unpinned_requirements(&text);
            if !unpinned.is_empty() {
                risks.push(format!(
                    "unpinned requirements (no `==`): {}",
                    unpinned.join(", ")
                ));
            }
            if with_project {
                risks.push(
                    "the project's own dependencies are installed from its version ranges, not a lock"
                        .into(),
                );
            }
        }
        InstallMethod::Poetry { locked: true } | InstallMethod::UvLock | InstallMethod::Pylock => {}
    }
    risks
}

/// Requirement lines of a requirements file that do not pin one version.
fn unpinned_requirements(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('-'))
        // A local path or URL is what it is; a name needs `==` (or `===`, or `@ url`).
        .filter(|l| !l.starts_with('.') && !l.starts_with('/') && !l.contains("://"))
        .filter(|l| !l.contains("==") && !l.contains(" @ "))
        .map(|l| {
            l.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_' || c == '.'))
                .next()
                .unwrap_or(l)
                .to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_without_one_version_are_unpinned() {
        let text = "# pins\nsix==1.16.0\nidna>=3\nrequests\n-r other.txt\n./local\nfoo @ https://x/y.whl\nbar[extra]~=1.0 ; python_version>'3'\n";
        assert_eq!(unpinned_requirements(text), ["idna", "requests", "bar"]);
    }

    #[test]
    fn a_hook_that_refreshes_package_lists_is_a_risk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "six==1.16.0\n").unwrap();
        assert!(reproducibility_risks(dir.path()).is_empty());
        std::fs::write(
            dir.path().join("build_customization.py"),
            "async def pre_connector_install(c):\n    return c.with_exec(['sh', '-c', 'apt-get update && apt-get install -y jq'])\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "six\n").unwrap();
        let risks = reproducibility_risks(dir.path());
        assert_eq!(risks.len(), 2, "{risks:?}");
        assert!(
            risks[0].contains("apt-get update") && risks[1].contains("six"),
            "{risks:?}"
        );
    }
}
