//! What a `requirements.txt` needs besides itself: the files it includes (`-r`, `-c`), which
//! join the dependency manifests (and so the install step's cache key), and local path
//! requirements, which the install step cannot see and are refused with their line.
//!
//! Hand-written: pip's own parser is Python, and the crates that parse requirement lines
//! (pep508_rs) leave pip's file options (`-r`, `-c`, `-e`) to the caller; only those options and
//! the shape of a local path are looked at here.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RequirementsError {
    #[error("{file}:{line}: `{text}` includes {target}, which is outside the connector folder; the install step sees only the connector's own files: copy it into the connector folder")]
    IncludeOutside {
        file: PathBuf,
        line: usize,
        text: String,
        target: String,
    },
    #[error("{file}:{line}: `{text}` includes {target}, which does not exist")]
    IncludeMissing {
        file: PathBuf,
        line: usize,
        text: String,
        target: String,
    },
    #[error("{file}:{line}: `{text}` is a local path dependency; the install step sees only the connector's dependency manifests, not other folders: publish the package to PyPI or depend on it through git")]
    LocalPath {
        file: PathBuf,
        line: usize,
        text: String,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The logical lines of a requirements file (continuations joined, comments removed), with
/// the 1-based number of the line each starts on.
pub(crate) fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (start, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        if let Some(body) = raw.strip_suffix('\\') {
            acc.push_str(body);
            pending = Some((start, acc));
            continue;
        }
        acc.push_str(raw);
        // As pip: `#` starts a comment at the line's start or after whitespace.
        let line = match acc.find(" #").or(acc.find("\t#")) {
            _ if acc.trim_start().starts_with('#') => String::new(),
            Some(i) => acc[..i].to_string(),
            None => acc,
        };
        let line = line.trim().to_string();
        if !line.is_empty() {
            out.push((start, line));
        }
    }
    if let Some((start, acc)) = pending {
        let acc = acc.trim().to_string();
        if !acc.is_empty() && !acc.starts_with('#') {
            out.push((start, acc));
        }
    }
    out
}

/// The file an include option names: `-r x`, `-rx`, `--requirement x`, `--requirement=x`, and
/// the same for `-c`/`--constraint`.
fn included(line: &str) -> Option<&str> {
    for long in ["--requirement", "--constraint"] {
        if let Some(rest) = line.strip_prefix(long) {
            if rest.starts_with(['=', ' ', '\t']) {
                let rest = rest.trim_start_matches('=').trim();
                return (!rest.is_empty()).then_some(rest);
            }
        }
    }
    for short in ["-r", "-c"] {
        if let Some(rest) = line.strip_prefix(short) {
            let rest = rest.trim();
            if !rest.is_empty() {
                return Some(rest);
            }
        }
    }
    None
}

/// A requirement that is a local path rather than a name: `../lib`, `-e ./lib`, `/abs`,
/// `file:...`, `name @ file:...`. The connector's own folder (`.`) is not one: the project
/// itself is installed from its manifests.
fn local_path(line: &str) -> Option<&str> {
    let target = line
        .strip_prefix("--editable")
        .or_else(|| line.strip_prefix("-e"))
        .map_or(line, str::trim);
    let target = match target.split_once(" @ ") {
        Some((_, url)) => url.trim(),
        None => target,
    };
    let path = target
        .strip_prefix("file://")
        .or(target.strip_prefix("file:"));
    let path = path.unwrap_or(target);
    let looks_local = target.starts_with("file:")
        || path.starts_with("./")
        || path.starts_with("../")
        || path == ".."
        || path.starts_with('/');
    if !looks_local {
        return None;
    }
    let bare = path.split(['[', ';', ' ']).next().unwrap_or(path);
    let bare = bare.trim_end_matches('/');
    if matches!(bare, "." | "" | "./.") && !path.starts_with('/') {
        return None;
    }
    Some(path)
}

/// `path` relative to the connector folder when, resolved lexically, it stays inside it.
fn inside(rel_parent: &Path, target: &str) -> Option<PathBuf> {
    let target = Path::new(target);
    if target.is_absolute() {
        return None;
    }
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in rel_parent.components().chain(target.components()) {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

/// The files `requirements` (relative to `dir`) includes, directly or through other
/// included files, relative to `dir` and in the order first met; each once.
pub fn includes(dir: &Path, requirements: &str) -> Result<Vec<String>, RequirementsError> {
    let mut found: Vec<String> = Vec::new();
    let mut queue = vec![PathBuf::from(requirements)];
    let mut seen = std::collections::BTreeSet::from([PathBuf::from(requirements)]);
    while let Some(rel) = queue.pop() {
        let file = dir.join(&rel);
        if std::fs::metadata(&file)
            .ok()
            .and_then(|m| crate::model::files::special_kind(&m))
            .is_some()
        {
            // Said by the manifest check, which knows what the file is.
            continue;
        }
        let text = std::fs::read_to_string(&file).map_err(|source| RequirementsError::Read {
            path: file.clone(),
            source,
        })?;
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        for (line, content) in logical_lines(&text) {
            if let Some(target) = included(&content) {
                if target.contains("://") {
                    continue;
                }
                let Some(inner) = inside(&parent, target) else {
                    return Err(RequirementsError::IncludeOutside {
                        file,
                        line,
                        text: content.clone(),
                        target: target.to_string(),
                    });
                };
                if !dir.join(&inner).is_file() {
                    return Err(RequirementsError::IncludeMissing {
                        file,
                        line,
                        text: content.clone(),
                        target: target.to_string(),
                    });
                }
                if seen.insert(inner.clone()) {
                    found.push(inner.to_string_lossy().replace('\\', "/"));
                    queue.push(inner);
                }
            } else if local_path(&content).is_some() {
                return Err(RequirementsError::LocalPath {
                    file,
                    line,
                    text: content,
                });
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_include_options_in_every_spelling() {
        for line in [
            "-r base.txt",
            "-rbase.txt",
            "--requirement base.txt",
            "--requirement=base.txt",
            "-c base.txt",
            "--constraint=base.txt",
        ] {
            assert_eq!(included(line), Some("base.txt"), "{line}");
        }
        assert_eq!(included("requests==2"), None);
        assert_eq!(included("-e ."), None);
    }

    #[test]
    fn local_paths_but_not_the_project() {
        for line in [
            "../shared-lib",
            "-e ../shared-lib",
            "--editable=../x",
            "./vendor/pkg",
            "/opt/pkg",
            "file:../x",
            "pkg @ file:///opt/pkg",
        ] {
            let line = line.replace("--editable=", "--editable ");
            assert!(local_path(&line).is_some(), "{line}");
        }
        for line in [
            ".",
            "-e .",
            "./",
            ".[tests]",
            "requests==2",
            "pkg @ https://x/y.whl",
        ] {
            assert_eq!(local_path(line), None, "{line}");
        }
    }

    #[test]
    fn lines_join_continuations_and_drop_comments() {
        let lines = logical_lines("# c\nrequests==2 # pin\n-r \\\n  base.txt\n\n");
        assert_eq!(
            lines,
            [
                (2, "requests==2".to_string()),
                (3, "-r   base.txt".to_string())
            ]
        );
    }

    #[test]
    fn follows_includes_and_refuses_what_is_outside() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("c");
        std::fs::create_dir_all(dir.join("reqs")).unwrap();
        std::fs::write(dir.join("requirements.txt"), "-r reqs/base.txt\nsix\n").unwrap();
        std::fs::write(dir.join("reqs/base.txt"), "-c ../constraints.txt\n").unwrap();
        std::fs::write(dir.join("constraints.txt"), "six==1.16.0\n").unwrap();
        assert_eq!(
            includes(&dir, "requirements.txt").unwrap(),
            ["reqs/base.txt", "constraints.txt"]
        );

        std::fs::write(dir.join("requirements.txt"), "six\n-r ../outside.txt\n").unwrap();
        let e = includes(&dir, "requirements.txt").unwrap_err().to_string();
        assert!(e.contains("requirements.txt:2: `-r ../outside.txt`"), "{e}");
        assert!(e.contains("outside the connector folder"), "{e}");

        std::fs::write(dir.join("requirements.txt"), "-e ../shared-lib\n").unwrap();
        let e = includes(&dir, "requirements.txt").unwrap_err().to_string();
        assert!(
            e.contains("requirements.txt:1: `-e ../shared-lib` is a local path"),
            "{e}"
        );
    }
}
