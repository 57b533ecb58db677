//! `--modified`: which files changed against a base, read from the `git` command (the
//! repository's own configuration and credentials apply, nothing is reimplemented).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Branches whose merge base with HEAD is the default diff base, in order of preference.
pub const DEFAULT_BASES: &[&str] = &["origin/master", "origin/main", "master", "main"];

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run `git {args}` in {dir}; --modified needs the git command")]
    Spawn {
        args: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`git {args}` failed in {dir}: {stderr}")]
    Failed {
        args: String,
        dir: PathBuf,
        stderr: String,
    },
    #[error("no diff base for --modified: none of {} exists in {dir}\nhint: pass --diff-base REF", DEFAULT_BASES.join(", "))]
    NoBase { dir: PathBuf },
    #[error("--diff-base `{base}` is not a commit in {dir}")]
    BadBase { base: String, dir: PathBuf },
}

fn git(dir: &Path, args: &[&str]) -> Result<std::process::Output, GitError> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|source| GitError::Spawn {
            args: args.join(" "),
            dir: dir.to_path_buf(),
            source,
        })
}

fn git_ok(dir: &Path, args: &[&str]) -> Result<Vec<u8>, GitError> {
    let out = git(dir, args)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(GitError::Failed {
            args: args.join(" "),
            dir: dir.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn is_commit(dir: &Path, rev: &str) -> Result<bool, GitError> {
    let spec = format!("{rev}^{{commit}}");
    Ok(git(dir, &["rev-parse", "--verify", "--quiet", &spec])?
        .status
        .success())
}

/// The commit changes are compared against: `base` itself, or the merge base of HEAD with
/// the first of [`DEFAULT_BASES`] that exists.
pub fn diff_base(dir: &Path, base: Option<&str>) -> Result<String, GitError> {
    if let Some(base) = base {
        if !is_commit(dir, base)? {
            return Err(GitError::BadBase {
                base: base.into(),
                dir: dir.to_path_buf(),
            });
        }
        return Ok(base.to_string());
    }
    for candidate in DEFAULT_BASES {
        if is_commit(dir, candidate)? {
            let out = git_ok(dir, &["merge-base", "HEAD", candidate])?;
            return Ok(String::from_utf8_lossy(&out).trim().to_string());
        }
    }
    Err(GitError::NoBase {
        dir: dir.to_path_buf(),
    })
}

/// Absolute paths of the files that differ from `base` in the working tree (committed or
/// not), plus untracked files that are not ignored.
pub fn changed_files(dir: &Path, base: Option<&str>) -> Result<BTreeSet<PathBuf>, GitError> {
    let top = PathBuf::from(
        String::from_utf8_lossy(&git_ok(dir, &["rev-parse", "--show-toplevel"])?)
            .trim()
            .to_string(),
    );
    let base = diff_base(&top, base)?;
    let mut files = BTreeSet::new();
    for args in [
        vec!["diff", "--name-only", "--no-relative", "-z", base.as_str()],
        vec![
            "ls-files",
            "--others",
            "--exclude-standard",
            "--full-name",
            "-z",
        ],
    ] {
        let out = git_ok(&top, &args)?;
        files.extend(
            out.split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| top.join(String::from_utf8_lossy(p).as_ref())),
        );
    }
    Ok(files)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn run(dir: &Path, args: &[&str]) {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.invalid",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn changes_against_the_merge_base_include_uncommitted_and_untracked_files() {
        let repo = tempfile::tempdir().unwrap();
        let dir = repo.path();
        run(dir, &["init", "-q", "-b", "main"]);
        std::fs::write(dir.join("a"), "1").unwrap();
        std::fs::write(dir.join("b"), "1").unwrap();
        run(dir, &["add", "."]);
        run(dir, &["commit", "-q", "-m", "one"]);
        run(dir, &["checkout", "-q", "-b", "work"]);
        std::fs::write(dir.join("a"), "2").unwrap();
        run(dir, &["commit", "-q", "-am", "two"]);
        // main moves on after the branch point: its changes are not ours.
        run(dir, &["checkout", "-q", "main"]);
        std::fs::write(dir.join("c"), "1").unwrap();
        run(dir, &["add", "c"]);
        run(dir, &["commit", "-q", "-m", "three"]);
        run(dir, &["checkout", "-q", "work"]);
        std::fs::write(dir.join("untracked"), "1").unwrap();
        std::fs::write(dir.join("b"), "2").unwrap();

        let top = std::fs::canonicalize(dir).unwrap();
        let names = |set: BTreeSet<PathBuf>| -> Vec<String> {
            set.iter()
                .map(|p| p.strip_prefix(&top).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(
            names(changed_files(dir, None).unwrap()),
            ["a", "b", "untracked"]
        );
        assert_eq!(
            names(changed_files(dir, Some("HEAD")).unwrap()),
            ["b", "untracked"]
        );
        let err = changed_files(dir, Some("nope")).unwrap_err().to_string();
        assert!(err.contains("`nope` is not a commit"), "{err}");
    }
}
