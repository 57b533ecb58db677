//! Operations recorded by the Dagger-compatible `Container` and their plan steps.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::plan::canonical::sha256_hex;
use crate::plan::{
    Action, CacheMount, ConfigOp, Expect, FileEntry, FileSource, Owner, Run, SecretTarget,
    SecretUse, SecretValue, ShellWrap, Step,
};

/// One recorded `Container` call, as the shim (hooks/dagger/__init__.py) writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    Exec {
        args: Vec<String>,
        use_entrypoint: bool,
        stdin: Option<String>,
        redirect_stdout: Option<String>,
        redirect_stderr: Option<String>,
        expect: String,
    },
    Env {
        name: String,
        value: String,
        expand: bool,
    },
    UnsetEnv {
        name: String,
    },
    NewFile {
        path: String,
        contents: String,
        permissions: Option<u32>,
        owner: Option<String>,
    },
    HostFile {
        path: String,
        source: String,
        permissions: Option<u32>,
        owner: Option<String>,
    },
    HostDirectory {
        path: String,
        source: String,
        exclude: Vec<String>,
        include: Vec<String>,
        owner: Option<String>,
    },
    Workdir {
        path: String,
    },
    User {
        name: String,
    },
    Label {
        name: String,
        value: String,
    },
    Entrypoint {
        args: Vec<String>,
        keep_default_args: bool,
    },
    DefaultArgs {
        args: Vec<String>,
    },
    Cache {
        path: String,
        volume: String,
    },
    Expose {
        port: u16,
        protocol: String,
    },
    /// `with_mounted_secret(path, secret)`: the plaintext travels with the operation and
    /// leaves it for the command's `SecretUse`, which never serializes it.
    SecretFile {
        path: String,
        secret: String,
        plaintext: SecretValue,
    },
    /// `with_secret_variable(name, secret)`.
    SecretEnv {
        name: String,
        secret: String,
        plaintext: SecretValue,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{call}: owner `{owner}` must be numeric (`uid` or `uid:gid`); connector-build writes layers directly, without the container's user database")]
    Owner { call: String, owner: String },
    #[error("{call}: cannot read {path}")]
    Read {
        call: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{call}: {reason}")]
    Invalid { call: String, reason: String },
}

/// Converts `ops`, recorded by `hook` on a container whose working directory is `workdir`,
/// into plan steps.
pub fn to_steps(hook: &str, ops: &[Op], workdir: &str) -> Result<Vec<Step>, OpError> {
    let mut steps = Vec::with_capacity(ops.len());
    let mut workdir = workdir.to_string();
    let mut caches: Vec<CacheMount> = Vec::new();
    let mut secrets: Vec<SecretUse> = Vec::new();
    let step = |label: String, action: Action| Step {
        name: format!("{hook}: {label}"),
        action,
    };
    for op in ops {
        match op {
            Op::Exec {
                args,
                use_entrypoint,
                stdin,
                redirect_stdout,
                redirect_stderr,
                expect,
            } => {
                let call = format!("with_exec({args:?})");
                let expect = match expect.as_str() {
                    "SUCCESS" => Expect::Success,
                    "FAILURE" => Expect::Failure,
                    "ANY" => Expect::Any,
                    other => {
                        return Err(OpError::Invalid {
                            call,
                            reason: format!("expect={other} is not SUCCESS, FAILURE or ANY"),
                        })
                    }
                };
                let wrapped =
                    stdin.is_some() || redirect_stdout.is_some() || redirect_stderr.is_some();
                let shell = wrapped.then(|| {
                    shell_wrap(
                        stdin.as_deref(),
                        redirect_stdout.as_deref(),
                        redirect_stderr.as_deref(),
                        &workdir,
                    )
                });
                steps.push(step(
                    short(&args_label(op)),
                    Action::Run(Run {
                        args: args.clone(),
                        scratch_files: vec![],
                        network: None,
                        caches: caches.clone(),
                        build_env: vec![],
                        use_entrypoint: *use_entrypoint,
                        expect,
                        shell,
                        tools: vec![],
                        secrets: secrets.clone(),
                    }),
                ));
            }
            Op::Env {
                name,
                value,
                expand,
            } => steps.push(step(
                format!("env {name}"),
                Action::Config(ConfigOp::Env {
                    name: name.clone(),
                    value: value.clone(),
                    expand: *expand,
                }),
            )),
            Op::UnsetEnv { name } => steps.push(step(
                format!("unset {name}"),
                Action::Config(ConfigOp::UnsetEnv(name.clone())),
            )),
            Op::NewFile {
                path,
                contents,
                permissions,
                owner,
            } => {
                let call = format!("with_new_file({path:?})");
                let dest = absolute(&workdir, path);
                steps.push(step(
                    format!("file {dest}"),
                    Action::Files {
                        dest: "/".into(),
                        files: vec![FileEntry {
                            path: dest.trim_start_matches('/').to_string(),
                            source: FileSource::Inline(contents.clone()),
                            mode: permissions.unwrap_or(0o644),
                            sha256: sha256_hex(contents.as_bytes()),
                            owner: parse_owner(&call, owner.as_deref())?,
                        }],
                    },
                ));
            }
            Op::HostFile {
                path,
                source,
                permissions,
                owner,
            } => {
                let call = format!("with_file({path:?})");
                let dest = absolute(&workdir, path);
                let entry = host_entry(
                    &call,
                    Path::new(source),
                    dest.trim_start_matches('/'),
                    *permissions,
                    owner.as_deref(),
                )?;
                steps.push(step(
                    format!("file {dest}"),
                    Action::Files {
                        dest: "/".into(),
                        files: vec![entry],
                    },
                ));
            }
            Op::HostDirectory {
                path,
                source,
                exclude,
                include,
                owner,
            } => {
                let call = format!("with_directory({path:?})");
                let dest = absolute(&workdir, path);
                let files = host_tree(
                    &call,
                    Path::new(source),
                    dest.trim_matches('/'),
                    exclude,
                    include,
                    owner.as_deref(),
                )?;
                steps.push(step(
                    format!("directory {dest}"),
                    Action::Files {
                        dest: "/".into(),
                        files,
                    },
                ));
            }
            Op::Workdir { path } => {
                workdir = absolute(&workdir, path);
                steps.push(step(
                    format!("workdir {workdir}"),
                    Action::Config(ConfigOp::Workdir(workdir.clone())),
                ));
            }
            Op::User { name } => steps.push(step(
                format!("user {name}"),
                Action::Config(ConfigOp::User(name.clone())),
            )),
            Op::Label { name, value } => steps.push(step(
                format!("label {name}"),
                Action::Config(ConfigOp::Label {
                    name: name.clone(),
                    value: value.clone(),
                }),
            )),
            Op::Entrypoint {
                args,
                keep_default_args,
            } => steps.push(step(
                "entrypoint".into(),
                Action::Config(if *keep_default_args {
                    ConfigOp::EntrypointKeepingArgs(args.clone())
                } else {
                    ConfigOp::Entrypoint(args.clone())
                }),
            )),
            Op::DefaultArgs { args } => steps.push(step(
                "default args".into(),
                Action::Config(ConfigOp::Cmd(args.clone())),
            )),
            Op::Cache { path, volume } => {
                // Like Dagger, a mounted cache applies to every later command.
                let target = absolute(&workdir, path);
                caches.retain(|c| c.target != target);
                caches.push(CacheMount {
                    target,
                    volume: cache_volume_name(volume),
                });
            }
            // Like Dagger, a secret applies to every later command of the container.
            Op::SecretFile {
                path,
                secret,
                plaintext,
            } => {
                let target = SecretTarget::File(absolute(&workdir, path));
                secrets.retain(|s| s.target != target);
                secrets.push(SecretUse {
                    secret: secret.clone(),
                    target,
                    value: plaintext.clone(),
                });
            }
            Op::SecretEnv {
                name,
                secret,
                plaintext,
            } => {
                if name.is_empty() || name.contains('=') || name.contains('\0') {
                    return Err(OpError::Invalid {
                        call: format!("with_secret_variable({name:?})"),
                        reason: "not an environment variable name".into(),
                    });
                }
                let target = SecretTarget::Env(name.clone());
                secrets.retain(|s| s.target != target);
                secrets.push(SecretUse {
                    secret: secret.clone(),
                    target,
                    value: plaintext.clone(),
                });
            }
            Op::Expose { port, protocol } => steps.push(step(
                format!("expose {port}/{protocol}"),
                Action::Config(ConfigOp::ExposePort {
                    port: *port,
                    protocol: protocol.clone(),
                }),
            )),
        }
    }
    Ok(steps)
}

fn args_label(op: &Op) -> String {
    match op {
        Op::Exec { args, .. } => args.join(" "),
        _ => String::new(),
    }
}

fn short(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let cut: String = s.chars().take(MAX - 1).collect();
        format!("{cut}…")
    }
}

/// Hook caches are namespaced so they cannot collide with the tool's own volumes.
pub fn cache_volume_name(key: &str) -> String {
    let safe: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("connector-build-hook-cache-{safe}")
}

fn absolute(workdir: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), path)
    }
}

fn parse_owner(call: &str, owner: Option<&str>) -> Result<Option<Owner>, OpError> {
    let Some(owner) = owner.filter(|o| !o.is_empty()) else {
        return Ok(None);
    };
    let err = || OpError::Owner {
        call: call.to_string(),
        owner: owner.to_string(),
    };
    let (u, g) = owner.split_once(':').unwrap_or((owner, owner));
    Ok(Some(Owner {
        uid: u.parse().map_err(|_| err())?,
        gid: g.parse().map_err(|_| err())?,
    }))
}

fn shell_wrap(
    stdin: Option<&str>,
    stdout: Option<&str>,
    stderr: Option<&str>,
    workdir: &str,
) -> ShellWrap {
    use crate::execute::network::shell_quote;
    let mut script = String::new();
    if stdin.is_some() {
        script.push_str("printf '%s' \"$0\" | ");
    }
    script.push_str("\"$@\"");
    if let Some(p) = stdout {
        script.push_str(&format!(" > {}", shell_quote(&absolute(workdir, p))));
    }
    if let Some(p) = stderr {
        script.push_str(&format!(" 2> {}", shell_quote(&absolute(workdir, p))));
    }
    ShellWrap {
        script,
        arg0: stdin.unwrap_or("sh").to_string(),
    }
}

fn host_entry(
    call: &str,
    source: &Path,
    dest: &str,
    permissions: Option<u32>,
    owner: Option<&str>,
) -> Result<FileEntry, OpError> {
    let bytes = std::fs::read(source).map_err(|e| OpError::Read {
        call: call.into(),
        path: source.to_path_buf(),
        source: e,
    })?;
    let mode = permissions.unwrap_or_else(|| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(source)
                .map(|m| {
                    if m.permissions().mode() & 0o111 != 0 {
                        0o755
                    } else {
                        0o644
                    }
                })
                .unwrap_or(0o644)
        }
        #[cfg(not(unix))]
        0o644
    });
    Ok(FileEntry {
        path: dest.to_string(),
        source: FileSource::Host(source.to_string_lossy().into_owned()),
        mode,
        sha256: sha256_hex(&bytes),
        owner: parse_owner(call, owner)?,
    })
}

fn host_tree(
    call: &str,
    root: &Path,
    dest: &str,
    exclude: &[String],
    include: &[String],
    owner: Option<&str>,
) -> Result<Vec<FileEntry>, OpError> {
    if !root.is_dir() {
        return Err(OpError::Invalid {
            call: call.into(),
            reason: format!("{} is not a directory", root.display()),
        });
    }
    let exclude = PathPatterns::new(call, exclude)?;
    let include = PathPatterns::new(call, include)?;
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .follow_links(false)
    {
        let entry = entry.map_err(|e| OpError::Read {
            call: call.into(),
            path: e
                .path()
                .map_or_else(|| root.to_path_buf(), Path::to_path_buf),
            source: e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("file system loop")),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/"))
            .unwrap_or_default();
        if exclude.matches(&rel) || (!include.is_empty() && !include.matches(&rel)) {
            continue;
        }
        let dest_rel = if dest.is_empty() {
            rel.clone()
        } else {
            format!("{dest}/{rel}")
        };
        out.push(host_entry(call, entry.path(), &dest_rel, None, owner)?);
    }
    Ok(out)
}

/// `include`/`exclude` patterns as Dagger applies them (buildkit's `.dockerignore`-style
/// pattern matcher, on Go's `filepath.Match` syntax): a pattern matches a path or any folder
/// above it; `*`, `?` and `[...]` (`[!...]`/`[^...]` negated, ranges) stay within one
/// component, `**` spans any number of them, `\` escapes. Braces are not special there, so
/// they are escaped before globset, which would read `{a,b}` as alternatives.
struct PathPatterns(GlobSet);

impl PathPatterns {
    fn new(call: &str, patterns: &[String]) -> Result<PathPatterns, OpError> {
        let mut set = GlobSetBuilder::new();
        for pattern in patterns {
            let trimmed = pattern.trim_start_matches("./").trim_end_matches('/');
            let glob = GlobBuilder::new(&escape_braces(trimmed))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| OpError::Invalid {
                    call: call.into(),
                    reason: format!("invalid pattern `{pattern}`: {}", e.kind()),
                })?;
            set.add(glob);
        }
        let set = set.build().map_err(|e| OpError::Invalid {
            call: call.into(),
            reason: format!("invalid patterns: {e}"),
        })?;
        Ok(PathPatterns(set))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a pattern matches `path` (`/`-separated, relative) or a folder above it.
    fn matches(&self, path: &str) -> bool {
        path.match_indices('/')
            .map(|(i, _)| &path[..i])
            .chain([path])
            .any(|prefix| self.0.is_match(prefix))
    }
}

fn escape_braces(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                out.extend(chars.next());
                continue;
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '{' | '}' if !in_class => out.push('\\'),
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(args: &[&str]) -> Op {
        Op::Exec {
            args: args.iter().map(|s| s.to_string()).collect(),
            use_entrypoint: false,
            stdin: None,
            redirect_stdout: None,
            redirect_stderr: None,
            expect: "SUCCESS".into(),
        }
    }

    #[test]
    fn caches_apply_to_later_commands_and_paths_follow_the_workdir() {
        let ops = vec![
            exec(&["true"]),
            Op::Cache {
                path: "/root/.cache".into(),
                volume: "pip".into(),
            },
            Op::Workdir { path: "sub".into() },
            Op::NewFile {
                path: "a.sh".into(),
                contents: "echo".into(),
                permissions: Some(0o755),
                owner: Some("1000".into()),
            },
            exec(&["sh", "a.sh"]),
        ];
        let steps = to_steps("post_connector_install", &ops, "/airbyte/integration_code").unwrap();
        let Action::Run(first) = &steps[0].action else {
            panic!()
        };
        assert!(first.caches.is_empty());
        let Action::Files { files, .. } = &steps[2].action else {
            panic!()
        };
        assert_eq!(files[0].path, "airbyte/integration_code/sub/a.sh");
        assert_eq!(
            files[0].owner,
            Some(Owner {
                uid: 1000,
                gid: 1000
            })
        );
        let Action::Run(last) = &steps[3].action else {
            panic!()
        };
        assert_eq!(last.caches[0].volume, "connector-build-hook-cache-pip");
        assert_eq!(steps[3].name, "post_connector_install: sh a.sh");
    }

    #[test]
    fn names_as_owners_are_refused() {
        let ops = vec![Op::NewFile {
            path: "/a".into(),
            contents: String::new(),
            permissions: None,
            owner: Some("airbyte".into()),
        }];
        let err = to_steps("pre", &ops, "/").unwrap_err().to_string();
        assert!(err.contains("must be numeric"), "{err}");
    }

    #[test]
    fn redirects_become_a_shell_wrapper() {
        let ops = vec![Op::Exec {
            args: vec!["whoami".into()],
            use_entrypoint: false,
            stdin: None,
            redirect_stdout: Some("out.txt".into()),
            redirect_stderr: None,
            expect: "ANY".into(),
        }];
        let steps = to_steps("pre", &ops, "/w").unwrap();
        let Action::Run(r) = &steps[0].action else {
            panic!()
        };
        assert_eq!(
            r.argv(&[]),
            ["/bin/sh", "-c", "\"$@\" > '/w/out.txt'", "sh", "whoami"]
        );
        assert_eq!(r.expect, Expect::Any);
    }

    #[test]
    fn hook_commands_are_known_by_their_hook() {
        let ops = vec![
            Op::Exec {
                args: vec!["true".into()],
                use_entrypoint: false,
                stdin: None,
                redirect_stdout: None,
                redirect_stderr: None,
                expect: "SUCCESS".into(),
            },
            Op::Env {
                name: "A".into(),
                value: "1".into(),
                expand: false,
            },
        ];
        for hook in [
            super::super::PRE_INSTALL,
            super::super::POST_INSTALL,
            super::super::EVALUATE,
        ] {
            let steps = to_steps(hook, &ops, "/").unwrap();
            assert!(crate::plan::is_hook_command(&steps[0]), "{}", steps[0].name);
            assert!(
                !crate::plan::is_hook_command(&steps[1]),
                "{}",
                steps[1].name
            );
        }
        let mut other = to_steps(super::super::PRE_INSTALL, &ops, "/")
            .unwrap()
            .remove(0);
        other.name = "install dependencies".into();
        assert!(!crate::plan::is_hook_command(&other));
        other.name = "pre_connector_installer: true".into();
        assert!(!crate::plan::is_hook_command(&other));
    }

    fn matches_path(pattern: &str, path: &str) -> bool {
        PathPatterns::new("t", &[pattern.to_string()])
            .unwrap()
            .matches(path)
    }

    #[test]
    fn dockerignore_style_matching() {
        assert!(matches_path("**/__pycache__", "a/b/__pycache__/x.pyc"));
        assert!(matches_path("__pycache__", "__pycache__/x.pyc"));
        assert!(!matches_path("*.pyc", "a/x.pyc"));
        assert!(matches_path("**/*.pyc", "a/x.pyc"));
        assert!(matches_path("**/*.pyc", "x.pyc"));
        assert!(matches_path("secrets", "secrets/config.json"));
        assert!(!matches_path("secrets", "src/secrets.py"));
        assert!(matches_path("./src/", "src/a.py"));
        assert!(matches_path("src/**/test_*.py", "src/test_a.py"));
        assert!(matches_path("src/**/test_*.py", "src/a/b/test_a.py"));
        assert!(!matches_path("src/*.py", "src/a/b.py"));
        assert!(matches_path("a?c", "abc"));
        assert!(!matches_path("a?c", "a/c"));
    }

    /// The hand-written matcher backtracked exponentially: 38 s on this pattern and path.
    #[test]
    fn glob_many_stars_is_not_exponential() {
        let path = "a".repeat(40);
        assert!(!matches_path("*a*a*a*a*a*a*a*a*b", &path));
        assert!(matches_path("*a*a*a*a*a*a*a*a*", &path));
        assert!(matches_path("*a*a*a*a*a*a*a*a*b", &format!("{path}b")));
        let deep = format!("{}/x", ["aaaa"; 10].join("/"));
        assert!(!matches_path("**/*a*a*a*a*a*a*a*a*b", &deep));
    }

    /// The hand-written matcher had no `[...]` classes: `[` was a literal character.
    #[test]
    fn glob_bracket_classes() {
        assert!(matches_path("test_[0-9].py", "test_1.py"));
        assert!(!matches_path("test_[0-9].py", "test_x.py"));
        assert!(matches_path("[abc].txt", "b.txt"));
        assert!(!matches_path("[abc].txt", "d.txt"));
        assert!(matches_path("[!abc].txt", "d.txt"));
        assert!(matches_path("[^abc].txt", "d.txt"));
        assert!(!matches_path("[^abc].txt", "a.txt"));
        assert!(!matches_path("a[/]b", "a/b"));
        // Escapes, and braces as plain characters (Go's filepath.Match has no alternation).
        assert!(matches_path("\\[x\\].txt", "[x].txt"));
        assert!(matches_path("{a,b}.txt", "{a,b}.txt"));
        assert!(!matches_path("{a,b}.txt", "a.txt"));
        assert!(matches_path("[{]*", "{x"));
    }

    #[test]
    fn invalid_glob_is_a_located_error() {
        let err = PathPatterns::new("with_directory", &["ok".into(), "src/[a".into()])
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(
            text.starts_with("with_directory: invalid pattern `src/[a`"),
            "{text}"
        );
    }
}
