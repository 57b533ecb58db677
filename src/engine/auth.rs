//! Registry credentials, found the way the Docker client finds them: a credential helper for
//! the registry (`credHelpers`), else the default store (`credsStore`), else the `auths`
//! entries of `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`).
//!
//! They are handed to the engine for one pull or push and never printed: `RegistryAuth`'s
//! Debug output shows only whether a user name is set.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use serde::Deserialize;

use crate::model::image_ref::DEFAULT_REGISTRY;

/// The address Docker Hub's credentials are stored under.
const DOCKER_HUB_ADDRESS: &str = "https://index.docker.io/v1/";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the Docker client configuration {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON ({message})\nhint: fix it or point DOCKER_CONFIG elsewhere")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: the `auth` entry for {registry} is not base64 of `user:password`\nhint: run `docker login {registry}` again")]
    BadAuth { path: PathBuf, registry: String },
    #[error("credential helper `{program}` failed for {registry}: {message}")]
    Helper {
        program: String,
        registry: String,
        message: String,
    },
}

/// Credentials for one registry. Not `Display`, and `Debug` hides them.
#[derive(Clone, Default)]
pub struct RegistryAuth(DockerCredentials);

impl RegistryAuth {
    pub fn into_inner(self) -> DockerCredentials {
        self.0
    }

    pub fn username(&self) -> Option<&str> {
        self.0.username.as_deref()
    }
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("serveraddress", &self.0.serveraddress)
            .field("username", &self.0.username.as_ref().map(|_| "<set>"))
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// What a credential helper's `get` prints.
#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// Credentials for `registry` (`docker.io`, `ghcr.io`, `127.0.0.1:5000`), if any are configured.
pub fn credentials_for(registry: &str) -> Result<Option<RegistryAuth>, AuthError> {
    let Some(path) = config_path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(AuthError::Read { path, source }),
    };
    credentials_from(&path, &text, registry, |helper, server| {
        run_helper(&format!("docker-credential-{helper}"), server, registry)
    })
}

/// The address credentials for `registry` are stored under.
fn server_address(registry: &str) -> String {
    if registry == DEFAULT_REGISTRY {
        DOCKER_HUB_ADDRESS.to_string()
    } else {
        registry.to_string()
    }
}

/// The lookup, with helpers run by `helper(name, server_address)`.
pub fn credentials_from(
    path: &Path,
    config_text: &str,
    registry: &str,
    helper: impl Fn(&str, &str) -> Result<Option<(String, String)>, AuthError>,
) -> Result<Option<RegistryAuth>, AuthError> {
    let config: DockerConfig = serde_json::from_str(config_text).map_err(|e| AuthError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let server = server_address(registry);
    let helper_name = config
        .cred_helpers
        .get(registry)
        .or(config.cred_helpers.get(&server))
        .or(config.creds_store.as_ref())
        .filter(|h| !h.is_empty());
    if let Some(name) = helper_name {
        if let Some((username, secret)) = helper(name, &server)? {
            // Helpers store identity tokens under the user name `<token>`.
            let credentials = if username == "<token>" {
                DockerCredentials {
                    identitytoken: Some(secret),
                    serveraddress: Some(server),
                    ..Default::default()
                }
            } else {
                DockerCredentials {
                    username: Some(username),
                    password: Some(secret),
                    serveraddress: Some(server),
                    ..Default::default()
                }
            };
            return Ok(Some(RegistryAuth(credentials)));
        }
    }
    let candidates = [
        server.clone(),
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
    ];
    let Some(entry) = candidates.iter().find_map(|k| config.auths.get(k)) else {
        return Ok(None);
    };
    let mut credentials = DockerCredentials {
        serveraddress: Some(server),
        identitytoken: entry.identitytoken.clone().filter(|t| !t.is_empty()),
        ..Default::default()
    };
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = || AuthError::BadAuth {
            path: path.to_path_buf(),
            registry: registry.to_string(),
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (user, password) = decoded.split_once(':').ok_or_else(bad)?;
        credentials.username = Some(user.to_string());
        credentials.password = Some(password.to_string());
    }
    if credentials.username.is_none() && credentials.identitytoken.is_none() {
        return Ok(None);
    }
    Ok(Some(RegistryAuth(credentials)))
}

/// How long a credential helper may take: one waiting for a locked keychain or a prompt
/// would otherwise hang a CI run for good.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `<program> get` with the server address on stdin, as the Docker client does.
/// `None` when the helper has no credentials for it.
pub fn run_helper(
    program: &str,
    server: &str,
    registry: &str,
) -> Result<Option<(String, String)>, AuthError> {
    run_helper_within(program, server, registry, HELPER_TIMEOUT)
}

/// [`run_helper`] with its own time limit; a helper still running then is killed.
pub fn run_helper_within(
    program: &str,
    server: &str,
    registry: &str,
    timeout: Duration,
) -> Result<Option<(String, String)>, AuthError> {
    let fail = |message: String| AuthError::Helper {
        program: program.to_string(),
        registry: registry.to_string(),
        message,
    };
    let mut child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run it ({e}); is it installed and on PATH?")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading gives EPIPE here; its exit status says more.
        let _ = stdin.write_all(server.as_bytes());
    }
    // Its answer is a few hundred bytes, far below a pipe's buffer, so polling for the exit
    // cannot deadlock on a full pipe.
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "it did not answer within {}s and was stopped (is it waiting for a keychain or a prompt?)",
                    timeout.as_secs_f32()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(fail(format!("it did not finish: {e}"))),
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    if !status.success() {
        // The helper protocol's answer for "nothing stored", printed on stdout.
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        // Only the helper's own message: it never holds the secret, which is on stdout.
        return Err(fail(format!("{status} {}", stderr.trim())));
    }
    let answer: HelperAnswer = serde_json::from_str(stdout.trim())
        .map_err(|_| fail("its answer is not the credential helper JSON".into()))?;
    Ok(Some((answer.username, answer.secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_helper(_: &str, _: &str) -> Result<Option<(String, String)>, AuthError> {
        panic!("no helper is configured")
    }

    #[test]
    fn auths_entries_decode_and_never_print() {
        let auth = base64::engine::general_purpose::STANDARD.encode("robot:s3cret-pass");
        let config = format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{auth}"}}, "127.0.0.1:5000": {{"auth": "{auth}"}}}}}}"#
        );
        let p = Path::new("config.json");
        let hub = credentials_from(p, &config, "docker.io", no_helper)
            .unwrap()
            .unwrap();
        assert_eq!(hub.username(), Some("robot"));
        let inner = hub.clone().into_inner();
        assert_eq!(inner.password.as_deref(), Some("s3cret-pass"));
        assert_eq!(inner.serveraddress.as_deref(), Some(DOCKER_HUB_ADDRESS));
        assert!(!format!("{hub:?}").contains("s3cret"));
        assert!(!format!("{hub:?}").contains("robot"));
        assert!(credentials_from(p, &config, "127.0.0.1:5000", no_helper)
            .unwrap()
            .is_some());
        assert!(credentials_from(p, &config, "ghcr.io", no_helper)
            .unwrap()
            .is_none());
        let e = credentials_from(
            p,
            r#"{"auths": {"ghcr.io": {"auth": "!!"}}}"#,
            "ghcr.io",
            no_helper,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("docker login ghcr.io") && !e.contains("!!"),
            "{e}"
        );
    }

    #[test]
    fn helpers_win_and_tokens_are_identity_tokens() {
        let config = r#"{"credsStore": "desktop", "credHelpers": {"ghcr.io": "gh"}}"#;
        let p = Path::new("config.json");
        let helper = |name: &str, server: &str| {
            Ok(match (name, server) {
                ("gh", "ghcr.io") => Some(("<token>".to_string(), "tok".to_string())),
                ("desktop", DOCKER_HUB_ADDRESS) => Some(("me".to_string(), "pw".to_string())),
                _ => None,
            })
        };
        let gh = credentials_from(p, config, "ghcr.io", helper)
            .unwrap()
            .unwrap()
            .into_inner();
        assert_eq!(gh.identitytoken.as_deref(), Some("tok"));
        assert_eq!(gh.username, None);
        let hub = credentials_from(p, config, "docker.io", helper)
            .unwrap()
            .unwrap()
            .into_inner();
        assert_eq!(hub.username.as_deref(), Some("me"));
        assert!(credentials_from(p, config, "quay.io", helper)
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_helper_program_is_asked_on_stdin() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("docker-credential-fake");
        std::fs::write(
            &program,
            "#!/bin/sh\nread server\nif [ \"$server\" = ghcr.io ]; then echo '{\"ServerURL\":\"ghcr.io\",\"Username\":\"u\",\"Secret\":\"s\"}'; else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let program = program.to_str().unwrap();
        assert_eq!(
            run_helper(program, "ghcr.io", "ghcr.io").unwrap(),
            Some(("u".into(), "s".into()))
        );
        assert_eq!(run_helper(program, "quay.io", "quay.io").unwrap(), None);
        let e = run_helper("/nonexistent/docker-credential-x", "a", "a")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is it installed"), "{e}");
    }

    #[test]
    fn a_helper_that_hangs_is_stopped_and_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("docker-credential-stuck");
        let pid_file = dir.path().join("pid");
        std::fs::write(
            &program,
            format!(
                "#!/bin/sh\necho $$ > {}\nexec sleep 30\n",
                pid_file.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let program = program.to_str().unwrap();
        let e = run_helper_within(program, "ghcr.io", "ghcr.io", Duration::from_millis(500))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("docker-credential-stuck") && e.contains("did not answer within 0.5s"),
            "{e}"
        );
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        assert!(
            !Path::new(&format!("/proc/{}", pid.trim())).exists(),
            "the helper still runs"
        );
    }
}
