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
