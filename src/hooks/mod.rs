//! Build customizations: a connector's `build_customization.py`, run as airbyte-ci did.
//!
//! The module runs in `connector-build-hooks` (embedded Python), one process per connector,
//! so each gets a fresh module and a hook that never returns can be stopped. The hook
//! receives a Dagger-compatible `Container` that records operations; when it asks about its
//! container (`stdout()`, `env_variable()`, `await container`, ...) the runner sends the
//! operations here, the container is built on the engine, and the answer goes back. What the
//! hook returns becomes steps of the build plan, cached like the others.
//!
//! Protocol: JSON lines. To the runner: `{"load": {"path"}}`, then `{"call": {"hook", "base"}}`
//! per hook. From it: `{"loaded": {"main_file", "hooks"}}`, `{"evaluate": {"base", "ops",
//! "query"}}` (answered with one line), `{"returned": {"ops"}}` or `{"failed": {...}}`.

pub mod customize;
pub mod ops;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::plan::manifest_only::ManifestError;

pub use ops::{Op, OpError};

pub const HOOK_FILE: &str = "build_customization.py";
pub const RUNNER: &str = "connector-build-hooks";
pub const PRE_INSTALL: &str = crate::plan::HOOK_STEP_PREFIXES[0];
pub const POST_INSTALL: &str = crate::plan::HOOK_STEP_PREFIXES[1];
/// The steps built when a hook asks about its container.
pub const EVALUATE: &str = crate::plan::HOOK_STEP_PREFIXES[2];

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{file}: build customizations need the hooks runner `{RUNNER}`, which is not at {runner}\nhint: install it next to connector-build (`cargo build` builds both) or pass --no-hooks")]
    RunnerMissing { file: PathBuf, runner: PathBuf },
    #[error("{file}: cannot run build customizations: the hooks runner cannot load Python ({detail})\nhint: install Python 3.10 or newer with its shared library (Debian: libpython3.11) or pass --no-hooks")]
    PythonUnavailable { file: PathBuf, detail: String },
    #[error("{file}: cannot start the hooks runner {runner}")]
    Spawn {
        file: PathBuf,
        runner: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", failure_text(.file, .failure))]
    Failed { file: PathBuf, failure: Failure },
    #[error("{file}: {hook} did not finish within {seconds} s (--hook-timeout); it was stopped")]
    Timeout {
        file: PathBuf,
        hook: String,
        seconds: u64,
    },
    #[error("{file}: the hooks runner stopped unexpectedly: {detail}")]
    Crashed { file: PathBuf, detail: String },
    #[error("{file}: {hook} returned operations connector-build cannot build")]
    Operation {
        file: PathBuf,
        hook: String,
        #[source]
        source: OpError,
    },
}

/// A failure reported by the runner: the module did not load, or a hook raised or returned
/// something other than a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// `syntax`, `import`, `exception`, `return`, `main_file` or `runner`.
    pub kind: String,
    pub hook: Option<String>,
    pub message: String,
    pub line: Option<u32>,
    pub traceback: String,
}

fn failure_text(file: &Path, f: &Failure) -> String {
    let at = match f.line {
        Some(line) => format!("{}:{line}", file.display()),
        None => file.display().to_string(),
    };
    let what = match (f.kind.as_str(), f.hook.as_deref()) {
        ("syntax", _) => format!("{at}: {}", f.message),
        ("import", _) => format!("{at}: loading the module raised {}", f.message),
        ("exception", Some(hook)) => format!("{at}: {hook} raised {}", f.message),
        ("runner", _) => format!("{at}: the hooks runner failed: {}", f.message),
        _ => format!("{at}: {}", f.message),
    };
    if f.traceback.trim().is_empty() {
        what
    } else {
        format!("{what}\n{}", indent(f.traceback.trim_end()))
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a hook asks about its container.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Query {
    Sync,
    Stdout,
    Stderr,
    ExitCode,
    EnvVariables,
    User,
    Workdir,
    Entrypoint,
    DefaultArgs,
    EnvVariable(String),
    Label(String),
    FileContents(String),
}

impl Query {
    /// Queries about the last command's output need it to run, even if cached.
    pub fn needs_output(&self) -> bool {
        matches!(self, Query::Stdout | Query::Stderr | Query::ExitCode)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct EvalRequest {
    /// Which container the operations start from: the `base` a hook was called with,
    /// `image:<address>` (from `from_`), or `scratch`.
    pub base: String,
    pub ops: Vec<Op>,
    pub query: Query,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalReply {
    Value(serde_json::Value),
    ExecError {
        message: String,
        cmd: Vec<String>,
        exit_code: i64,
        stdout: String,
        stderr: String,
    },
    Error(String),
}

/// Answers a hook's questions about its container (the engine side of `evaluate`).
pub trait Evaluator: Sync {
    fn evaluate<'a>(
        &'a self,
        request: EvalRequest,
    ) -> Pin<Box<dyn Future<Output = EvalReply> + Send + 'a>>;
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Loaded {
    pub main_file: Option<String>,
    pub hooks: Vec<String>,
}

impl Loaded {
    pub fn has(&self, hook: &str) -> bool {
        self.hooks.iter().any(|h| h == hook)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum FromRunner {
    Loaded(Loaded),
    Failed(Failure),
    Evaluate(EvalRequest),
    Returned { ops: Vec<Op> },
}

/// Compiles `components.py` with the hooks runner's embedded Python, as `py_compile` does.
///
/// A file that compiled once is remembered (by its bytes and the runner's), so a no-change
/// rebuild starts no Python process for it.
pub fn check_components(path: &Path, runner: &Path) -> Result<(), ManifestError> {
    let compiler = |message: String| ManifestError::Compiler {
        path: path.to_path_buf(),
        runner: runner.to_path_buf(),
        message,
    };
    let seen = compiled_marker(path, runner);
    if seen.as_ref().is_some_and(|m| m.exists()) {
        return Ok(());
    }
    let out = std::process::Command::new(runner)
        .arg("--compile")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| compiler(e.to_string()))?;
    let answer: serde_json::Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| {
            compiler(format!(
                "no answer (exit {}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        })?;
    if answer["ok"].as_bool() == Some(true) {
        // Best effort: a marker that cannot be written only costs compiling again.
        if let Some(marker) = seen {
            if let Some(dir) = marker.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = std::fs::write(marker, b"");
        }
        return Ok(());
    }
    let message = answer["message"]
        .as_str()
        .unwrap_or("does not compile")
        .to_string();
    match answer["line"].as_u64() {
        Some(line) => Err(ManifestError::ComponentsSyntax {
            path: path.to_path_buf(),
            line: line as usize,
            message,
        }),
        None => Err(ManifestError::ComponentsInvalid {
            path: path.to_path_buf(),
            message,
        }),
    }
}

/// The file that says `path`, as it is now, compiled with this runner; `None` when either
/// cannot be read (then it is compiled every time).
fn compiled_marker(path: &Path, runner: &Path) -> Option<PathBuf> {
    let file = crate::plan::canonical::sha256_hex(&std::fs::read(path).ok()?);
    let runner = crate::execute::tools::content_digest(runner).ok()?;
    let key = crate::plan::canonical::sha256_hex(format!("{runner}\n{file}").as_bytes());
    Some(crate::execute::user_cache_dir()?.join("compiled").join(key))
}

/// Where the runner is: `CONNECTOR_BUILD_HOOKS_RUNNER`, else beside the running program.
pub fn default_runner() -> PathBuf {
    if let Some(p) = std::env::var_os("CONNECTOR_BUILD_HOOKS_RUNNER").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().unwrap_or(Path::new("."));
    // Test binaries live one folder below the programs (target/debug/deps).
    [dir.join(RUNNER), dir.join("..").join(RUNNER)]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| dir.join(RUNNER))
}

/// How much of the runner's stderr (the hook's own output) is kept for messages.
const STDERR_TAIL: usize = 64 * 1024;

/// One connector's customization module, loaded in its own runner process.
///
/// The runner leads its own process group, and the group is ended when the session ends, so
/// programs a hook starts do not outlive the build. Its stderr (where hook code prints) is
/// read as it comes, keeping the last `STDERR_TAIL` bytes, so a hook that prints a lot never
/// blocks on a full pipe.
pub struct Session {
    child: Child,
    /// The process group the runner leads (its pid).
    group: Option<u32>,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: Option<tokio::task::JoinHandle<Vec<u8>>>,
    file: PathBuf,
    timeout: Duration,
}

impl Drop for Session {
    fn drop(&mut self) {
        kill_group(self.group.take());
    }
}

/// Kills every process of the group the runner leads, if there is one.
fn kill_group(group: Option<u32>) {
    if let Some(group) = group.and_then(|g| i32::try_from(g).ok()) {
        // SAFETY: signals the group this session's runner leads; nothing else.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }
}

/// Reads a stream to its end, keeping the last `STDERR_TAIL` bytes.
async fn keep_tail(mut stream: impl tokio::io::AsyncRead + Unpin) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return tail,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
        }
    }
}

impl Session {
    pub async fn start(
        runner: &Path,
        file: &Path,
        timeout: Duration,
    ) -> Result<(Session, Loaded), HookError> {
        if !runner.is_file() {
            return Err(HookError::RunnerMissing {
                file: file.to_path_buf(),
                runner: runner.to_path_buf(),
            });
        }
        let mut child = tokio::process::Command::new(runner)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| HookError::Spawn {
                file: file.to_path_buf(),
                runner: runner.to_path_buf(),
                source,
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(HookError::Crashed {
                file: file.to_path_buf(),
                detail: "no pipes to the runner".into(),
            });
        };
        let stderr = child.stderr.take().map(|e| tokio::spawn(keep_tail(e)));
        let mut session = Session {
            group: child.id(),
            child,
            stdin: Some(stdin),
            lines: BufReader::new(stdout).lines(),
            stderr,
            file: file.to_path_buf(),
            timeout,
        };
        session
            .send(&serde_json::json!({"load": {"path": file}}))
            .await?;
        match session.receive("loading the module").await? {
            FromRunner::Loaded(loaded) => Ok((session, loaded)),
            FromRunner::Failed(failure) => Err(HookError::Failed {
                file: file.to_path_buf(),
                failure,
            }),
            _ => Err(session.crashed("an unexpected message while loading").await),
        }
    }

    /// Calls `hook` with a container standing for `base`; returns the operations the hook
    /// recorded on it, answering its questions through `evaluator` meanwhile.
    pub async fn call(
        &mut self,
        hook: &str,
        base: &str,
        evaluator: &dyn Evaluator,
    ) -> Result<Vec<Op>, HookError> {
        self.send(&serde_json::json!({"call": {"hook": hook, "base": base}}))
            .await?;
        loop {
            match self.receive(hook).await? {
                FromRunner::Returned { ops } => return Ok(ops),
                FromRunner::Failed(failure) => {
                    return Err(HookError::Failed {
                        file: self.file.clone(),
                        failure,
                    })
                }
                FromRunner::Evaluate(request) => {
                    // Building can take long: the timeout covers the hook's own time only.
                    let reply = evaluator.evaluate(request).await;
                    self.send(&reply).await?;
                }
                FromRunner::Loaded(_) => {
                    return Err(self.crashed("an unexpected message during a call").await)
                }
            }
        }
    }

    /// Ends the runner (it exits when its input closes), then what it started (on drop).
    pub async fn finish(mut self) {
        drop(self.stdin.take());
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    async fn send<T: Serialize>(&mut self, message: &T) -> Result<(), HookError> {
        let mut line = serde_json::to_string(message).unwrap_or_default();
        line.push('\n');
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(self.crashed("its input was closed").await);
        };
        if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            return Err(self.crashed("it stopped reading").await);
        }
        Ok(())
    }

    async fn receive(&mut self, doing: &str) -> Result<FromRunner, HookError> {
        let line = match tokio::time::timeout(self.timeout, self.lines.next_line()).await {
            Err(_) => {
                let _ = self.child.kill().await;
                return Err(HookError::Timeout {
                    file: self.file.clone(),
                    hook: doing.to_string(),
                    seconds: self.timeout.as_secs(),
                });
            }
            Ok(Ok(Some(line))) => line,
            Ok(_) => {
                let what = format!("its process ended during {doing}");
                return Err(self.crashed(&what).await);
            }
        };
        serde_json::from_str(&line).map_err(|e| HookError::Crashed {
            file: self.file.clone(),
            detail: format!(
                "unreadable message ({e}): {}",
                line.chars().take(200).collect::<String>()
            ),
        })
    }

    /// The error for a runner that went away, from what it left on stderr.
    async fn crashed(&mut self, what: &str) -> HookError {
        let _ = self.child.start_kill();
        let status = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
        // Programs the hook started may hold stderr open: end them, then read what is left.
        kill_group(self.group.take());
        let mut stderr = String::new();
        if let Some(task) = self.stderr.take() {
            if let Ok(Ok(tail)) = tokio::time::timeout(Duration::from_secs(2), task).await {
                stderr = String::from_utf8_lossy(&tail).into_owned();
            }
        }
        if let Some(line) = stderr
            .lines()
            .find(|l| l.contains("error while loading shared libraries") || l.contains("libpython"))
        {
            return HookError::PythonUnavailable {
                file: self.file.clone(),
                detail: line.trim().to_string(),
            };
        }
        let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        HookError::Crashed {
            file: self.file.clone(),
            detail: format!(
                "{what}{}{}",
                match status {
                    Ok(Ok(s)) => format!(" ({s})"),
                    _ => String::new(),
                },
                if tail.is_empty() {
                    String::new()
                } else {
                    format!("\n    {}", tail.join("\n    "))
                }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A components.py that compiled is not compiled again: no Python process on a
    /// no-change rebuild.
    #[test]
    fn a_components_file_that_compiled_is_not_compiled_again() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        let runner = dir.path().join("runner");
        std::fs::write(
            &runner,
            format!(
                "#!/bin/sh\n# {}\necho x >> {}\necho '{{\"ok\": true}}'\n",
                dir.path().display(),
                count.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&runner, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.path().join("components.py");
        std::fs::write(&file, "x = 1\n").unwrap();
        check_components(&file, &runner).unwrap();
        check_components(&file, &runner).unwrap();
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 1);
        // Another text is compiled.
        std::fs::write(&file, "x = 2\n").unwrap();
        check_components(&file, &runner).unwrap();
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 2);
    }

    #[test]
    fn failures_name_the_file_and_line_and_keep_the_traceback() {
        let f = Failure {
            kind: "exception".into(),
            hook: Some(POST_INSTALL.into()),
            message: "ValueError: boom".into(),
            line: Some(12),
            traceback:
                "Traceback (most recent call last):\n  File \"x\", line 12\nValueError: boom\n"
                    .into(),
        };
        let text = HookError::Failed {
            file: "c/build_customization.py".into(),
            failure: f,
        }
        .to_string();
        assert!(text.starts_with("c/build_customization.py:12: post_connector_install raised ValueError: boom\n    Traceback"), "{text}");
    }

    #[test]
    fn queries_parse_from_the_shim_shapes() {
        let q: Query = serde_json::from_str("\"stdout\"").unwrap();
        assert!(q.needs_output());
        let q: Query = serde_json::from_str("{\"env_variable\": \"X\"}").unwrap();
        assert_eq!(q, Query::EnvVariable("X".into()));
    }
}
