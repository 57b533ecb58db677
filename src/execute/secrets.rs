//! Build secrets (`--secret id=NAME,src=FILE`, BuildKit's syntax): files mounted at
//! `/run/secrets/NAME` into install steps and build customization commands only.
//!
//! Like the install-only network settings ([`super::network`]) they reach a step on a volume
//! that exists for the step's duration, so they are never in a layer, the image config, the
//! container's environment or command. They are no part of any cache key (BuildKit's rule: a
//! changed secret does not rebuild), and only their ids are ever printed.

use std::path::{Path, PathBuf};

/// Where secrets appear in a step, as with BuildKit's `RUN --mount=type=secret`.
pub const SECRETS_DIR: &str = "/run/secrets";

#[derive(Clone)]
pub struct Secret {
    pub id: String,
    value: Vec<u8>,
}

// Never the value.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("id", &self.id)
            .field("value", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("`--secret {spec}`: {reason}; expected id=NAME,src=FILE (or id=NAME,env=VARIABLE)")]
    Syntax { spec: String, reason: String },
    #[error("--secret id={id}: cannot read {path}")]
    Read {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--secret id={id}: the environment variable {variable} is not set")]
    NoVariable { id: String, variable: String },
    #[error("--secret id={id} is given twice")]
    Twice { id: String },
}

impl Secret {
    /// Parses one `--secret` value and reads the secret; `lookup` reads the environment.
    pub fn parse(
        spec: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Secret, SecretError> {
        let syntax = |reason: String| SecretError::Syntax {
            spec: spec.to_string(),
            reason,
        };
        let (mut id, mut src, mut env) = (None, None, None);
        for part in spec.split(',') {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| syntax(format!("`{part}` is not KEY=VALUE")))?;
            match key {
                "id" => id = Some(value),
                "src" | "source" => src = Some(value),
                "env" => env = Some(value),
                "type" if value == "file" || value == "env" => {}
                other => return Err(syntax(format!("unknown key `{other}`"))),
            }
        }
        let id = id
            .filter(|i| !i.is_empty())
            .ok_or_else(|| syntax("no id".into()))?;
        if id.contains('/') || id == "." || id == ".." {
            return Err(syntax(format!("the id `{id}` is not a file name")));
        }
        let value = match (src, env) {
            (Some(path), None) => std::fs::read(path).map_err(|source| SecretError::Read {
                id: id.to_string(),
                path: Path::new(path).to_path_buf(),
                source,
            })?,
            (None, Some(variable)) => lookup(variable)
                .ok_or_else(|| SecretError::NoVariable {
                    id: id.to_string(),
                    variable: variable.to_string(),
                })?
                .into_bytes(),
            // BuildKit reads a variable named like the id when no source is given.
            (None, None) => lookup(id)
                .ok_or_else(|| SecretError::NoVariable {
                    id: id.to_string(),
                    variable: id.to_string(),
                })?
                .into_bytes(),
            (Some(_), Some(_)) => return Err(syntax("both src and env".into())),
        };
        Ok(Secret {
            id: id.to_string(),
            value,
        })
    }

    pub fn value(&self) -> &[u8] {
        &self.value
    }
}

/// Parses every `--secret`; an id given twice is refused.
pub fn parse_all(
    specs: &[String],
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Secret>, SecretError> {
    let mut secrets: Vec<Secret> = Vec::new();
    for spec in specs {
        let secret = Secret::parse(spec, &lookup)?;
        if secrets.iter().any(|s| s.id == secret.id) {
            return Err(SecretError::Twice { id: secret.id });
        }
        secrets.push(secret);
    }
    Ok(secrets)
}

/// Where a build customization's secrets (`dag.set_secret`) are in the secrets volume.
pub const HOOK_SECRETS: &str = ".hook";

/// A secret of a build customization, in the secrets volume.
pub fn hook_secret_file(index: usize) -> String {
    format!("{SECRETS_DIR}/{HOOK_SECRETS}/{index}")
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `argv` run inside a `sh -c` script that gives the command its build customization's
/// secrets (files at their paths, variables in its process) and removes the files, and the
/// folders made for them, before the step's container is committed: a secret's file is in
/// the container only while the command runs, so never in the layer. A file already at the
/// path is refused rather than hidden (it would come back as a copy in the layer).
pub fn wrap(uses: &[crate::plan::SecretUse], argv: Vec<String>) -> Vec<String> {
    use crate::plan::SecretTarget;
    if uses.is_empty() {
        return argv;
    }
    let mut before = String::new();
    let mut after = String::new();
    for (i, u) in uses.iter().enumerate() {
        let src = quote(&hook_secret_file(i));
        match &u.target {
            SecretTarget::File(path) => {
                let p = quote(path);
                before.push_str(&format!(
                    "if [ -e {p} ] || [ -L {p} ]; then echo \"with_mounted_secret: {path} already exists in the container; mount the secret at a new path\" >&2; exit 125; fi; \
                     top{i}=; d=$(dirname {p}); while [ ! -d \"$d\" ]; do top{i}=$d; d=$(dirname \"$d\"); done; \
                     mkdir -p \"$(dirname {p})\" && cp {src} {p} && chmod 0400 {p} || exit 125; "
                ));
                after.push_str(&format!(
                    "rm -f {p}; if [ -n \"$top{i}\" ]; then d=$(dirname {p}); while rmdir \"$d\" 2>/dev/null && [ \"$d\" != \"$top{i}\" ]; do d=$(dirname \"$d\"); done; fi; "
                ));
            }
            SecretTarget::Env(name) => {
                // Exactly the value, trailing newlines included.
                before.push_str(&format!(
                    "{name}=$(cat {src}; printf x) || exit 125; {name}=${{{name}%x}}; export {name}; "
                ));
            }
        }
    }
    let script = format!("{before}\"$@\"; rc=$?; {after}exit $rc");
    let mut cmd = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        script,
        "sh".to_string(),
    ];
    cmd.extend(argv);
    cmd
}

/// `text` with every secret value replaced by `***`, as Dagger shows secrets in output.
pub fn scrub(text: &str, values: &[&[u8]]) -> String {
    let mut out = text.to_string();
    for v in values {
        let v = String::from_utf8_lossy(v);
        // The trimmed form first, so lines keep their ends.
        for form in [v.trim(), v.as_ref()] {
            if !form.is_empty() {
                out = out.replace(form, "***");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_secrets_are_scripted_and_scrubbed() {
        use crate::plan::{SecretTarget, SecretUse};
        let uses: Vec<SecretUse> = serde_json::from_value(serde_json::json!([
            {"secret": "netrc", "target": {"file": "/root/.netrc"}},
            {"secret": "token", "target": {"env": "TOKEN"}},
        ]))
        .unwrap();
        assert_eq!(uses[1].target, SecretTarget::Env("TOKEN".into()));
        let cmd = wrap(&uses, vec!["pip".into(), "install".into()]);
        assert_eq!(cmd[..2], ["/bin/sh", "-c"]);
        assert!(cmd[2].contains("cp '/run/secrets/.hook/0' '/root/.netrc'"));
        assert!(cmd[2].contains("TOKEN=$(cat '/run/secrets/.hook/1'"));
        assert!(cmd[2].contains("rm -f '/root/.netrc'"));
        assert_eq!(cmd[4..], ["pip", "install"]);
        assert_eq!(
            scrub("login u password s3cr3t\n", &[b"s3cr3t\n"]),
            "login u password ***\n"
        );
    }

    #[test]
    fn file_and_environment_sources() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("netrc");
        std::fs::write(&file, "machine pypi login u password p4ss").unwrap();
        let spec = format!("id=netrc,src={}", file.display());
        let s = Secret::parse(&spec, |_| None).unwrap();
        assert_eq!(
            (s.id.as_str(), s.value()),
            ("netrc", &b"machine pypi login u password p4ss"[..])
        );
        assert!(!format!("{s:?}").contains("p4ss"));
        let env = |k: &str| (k == "TOKEN").then(|| "t0ken".to_string());
        assert_eq!(
            Secret::parse("id=token,env=TOKEN", env).unwrap().value(),
            b"t0ken"
        );
        assert_eq!(Secret::parse("id=TOKEN", env).unwrap().value(), b"t0ken");
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let err = |spec: &str| Secret::parse(spec, |_| None).unwrap_err().to_string();
        assert!(err("src=/x").contains("no id"));
        assert!(err("id=a,color=red").contains("unknown key `color`"));
        assert!(err("id=a/b,src=/x").contains("not a file name"));
        assert!(err("id=a,src=/nonexistent/file").contains("cannot read /nonexistent/file"));
        assert!(err("id=a,env=UNSET").contains("UNSET is not set"));
        let twice = parse_all(&["id=a,env=A".into(), "id=a,env=A".into()], |_| {
            Some("v".into())
        });
        assert!(twice.unwrap_err().to_string().contains("given twice"));
    }
}
