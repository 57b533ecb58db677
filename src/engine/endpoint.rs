//! Which Docker engine to talk to, and how, in the Docker CLI's order: an explicit host
//! (`--engine`, `connector-build.toml`), then `DOCKER_HOST`, then the client's current context
//! (`DOCKER_CONTEXT`, else `currentContext` in `$DOCKER_CONFIG/config.json`), then the local
//! socket.
//!
//! TLS for `tcp://` and `https://` hosts: `DOCKER_TLS_VERIFY` with `ca.pem`, `cert.pem` and
//! `key.pem` from `DOCKER_CERT_PATH` (default `~/.docker`), or a context's own TLS material.
//! The context store's layout (`contexts/meta/<sha256 of the name>/meta.json`,
//! `contexts/tls/<sha256 of the name>/docker/*.pem`) is the Docker CLI's; no crate reads it.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::auth::config_path;
use super::DEFAULT_HOST;

/// Where an engine is and the client certificates to reach it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub tls: Option<TlsFiles>,
    /// Where the host came from, for messages: `--engine`, `DOCKER_HOST`, `context foo`.
    pub source: String,
}

/// PEM files of a TLS client: the CA that signed the engine's certificate, and ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("Docker context `{name}` (from {from}) does not exist: no {path}\nhint: list the contexts with `docker context ls`, or unset {from}")]
    NoContext {
        name: String,
        from: &'static str,
        path: PathBuf,
    },
    #[error("{path}: not a Docker context description ({message})\nhint: recreate the context with `docker context create`")]
    BadContext { path: PathBuf, message: String },
    #[error("Docker context `{name}` has no docker endpoint host")]
    NoHost { name: String },
    #[error("{source_of}: TLS needs {path}, which cannot be read ({message})\nhint: point DOCKER_CERT_PATH at the folder holding ca.pem, cert.pem and key.pem")]
    TlsFile {
        source_of: String,
        path: PathBuf,
        message: String,
    },
}

/// What the environment says, read once so resolution is a pure function (and testable).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    pub tls_verify: bool,
    pub cert_path: Option<PathBuf>,
    pub home: Option<PathBuf>,
    /// `config.json` of the Docker client.
    pub config: Option<PathBuf>,
}

impl Environment {
    pub fn current() -> Environment {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Environment {
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            // The Docker CLI turns verification on for any non-empty value.
            tls_verify: var("DOCKER_TLS_VERIFY").is_some(),
            cert_path: var("DOCKER_CERT_PATH").map(PathBuf::from),
            home: var("HOME").map(PathBuf::from),
            config: config_path(),
        }
    }
}

/// The endpoint for `explicit` (a flag or config value), or else what the environment says.
pub fn resolve(explicit: Option<&str>, env: &Environment) -> Result<Endpoint, EndpointError> {
    let from_host = |host: &str, source: &str| -> Result<Endpoint, EndpointError> {
        let tls = if env.tls_verify || host.starts_with("https://") {
            let dir = env
                .cert_path
                .clone()
                .or_else(|| env.home.as_ref().map(|h| h.join(".docker")))
                .unwrap_or_default();
            Some(tls_files(&dir, source)?)
        } else {
            None
        };
        Ok(Endpoint {
            host: host.to_string(),
            tls: tls.filter(|_| is_tcp(host)),
            source: source.to_string(),
        })
    };
    if let Some(host) = explicit {
        return from_host(host, "--engine");
    }
    if let Some(host) = &env.docker_host {
        return from_host(host, "DOCKER_HOST");
    }
    let context = match &env.docker_context {
        Some(name) => Some((name.clone(), "DOCKER_CONTEXT")),
        None => {
            current_context(env.config.as_deref()).map(|n| (n, "currentContext in config.json"))
        }
    };
    match context {
        Some((name, from)) if name != "default" => context_endpoint(&name, from, env),
        _ => from_host(DEFAULT_HOST, "the default socket"),
    }
}

fn is_tcp(host: &str) -> bool {
    host.starts_with("tcp://") || host.starts_with("https://")
}

fn tls_files(dir: &Path, source: &str) -> Result<TlsFiles, EndpointError> {
    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    for path in [&files.ca, &files.cert, &files.key] {
        if let Err(e) = std::fs::metadata(path) {
            return Err(EndpointError::TlsFile {
                source_of: source.to_string(),
                path: path.clone(),
                message: e.to_string(),
            });
        }
    }
    Ok(files)
}

#[derive(Deserialize)]
struct ClientConfig {
    #[serde(rename = "currentContext", default)]
    current_context: Option<String>,
}

fn current_context(config: Option<&Path>) -> Option<String> {
    let text = std::fs::read_to_string(config?).ok()?;
    // A config.json that does not parse is reported by the credential lookup, which needs it.
    let config: ClientConfig = serde_json::from_str(&text).ok()?;
    config.current_context.filter(|c| !c.is_empty())
}

#[derive(Deserialize)]
struct ContextMeta {
    #[serde(rename = "Endpoints", default)]
    endpoints: std::collections::BTreeMap<String, ContextEndpoint>,
}

#[derive(Deserialize)]
struct ContextEndpoint {
    #[serde(rename = "Host", default)]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

fn context_endpoint(
    name: &str,
    from: &'static str,
    env: &Environment,
) -> Result<Endpoint, EndpointError> {
    let store = env
        .config
        .as_deref()
        .and_then(Path::parent)
        .map(|d| d.join("contexts"))
        .unwrap_or_default();
    let id = hex::encode(Sha256::digest(name.as_bytes()));
    let path = store.join("meta").join(&id).join("meta.json");
    let text = std::fs::read_to_string(&path).map_err(|_| EndpointError::NoContext {
        name: name.to_string(),
        from,
        path: path.clone(),
    })?;
    let meta: ContextMeta = serde_json::from_str(&text).map_err(|e| EndpointError::BadContext {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let endpoint = meta.endpoints.get("docker");
    let host = endpoint
        .and_then(|e| e.host.clone())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| EndpointError::NoHost {
            name: name.to_string(),
        })?;
    let source = format!("Docker context `{name}`");
    let tls_dir = store.join("tls").join(&id).join("docker");
    let tls = if is_tcp(&host) && tls_dir.join("ca.pem").exists() {
        Some(tls_files(&tls_dir, &source)?)
    } else {
        None
    };
    if endpoint.is_some_and(|e| e.skip_tls_verify) {
        tracing::warn!(
            context = name,
            "SkipTLSVerify is not supported; verifying the engine's certificate"
        );
    }
    Ok(Endpoint { host, tls, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(dir: &Path) -> Environment {
        Environment {
            home: Some(dir.to_path_buf()),
            config: Some(dir.join(".docker/config.json")),
            ..Default::default()
        }
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn context(dir: &Path, name: &str, host: &str, tls: bool) {
        let id = hex::encode(Sha256::digest(name.as_bytes()));
        let store = dir.join(".docker/contexts");
        write(
            &store.join("meta").join(&id).join("meta.json"),
            &format!(
                r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
            ),
        );
        if tls {
            for f in ["ca.pem", "cert.pem", "key.pem"] {
                write(&store.join("tls").join(&id).join("docker").join(f), "pem");
            }
        }
    }

    #[test]
    fn the_docker_cli_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = env(dir.path());
        assert_eq!(resolve(None, &e).unwrap().host, DEFAULT_HOST);
        context(dir.path(), "remote", "tcp://10.0.0.9:2376", true);
        write(
            &dir.path().join(".docker/config.json"),
            r#"{"auths":{},"currentContext":"remote"}"#,
        );
        let via_context = resolve(None, &e).unwrap();
        assert_eq!(via_context.host, "tcp://10.0.0.9:2376");
        assert_eq!(via_context.source, "Docker context `remote`");
        assert!(via_context.tls.is_some());
        e.docker_host = Some("unix:///run/other.sock".into());
        assert_eq!(resolve(None, &e).unwrap().host, "unix:///run/other.sock");
        assert_eq!(resolve(Some("unix:///x"), &e).unwrap().host, "unix:///x");
        e.docker_host = None;
        e.docker_context = Some("default".into());
        assert_eq!(resolve(None, &e).unwrap().host, DEFAULT_HOST);
    }

    #[test]
    fn tls_from_docker_tls_verify_and_cert_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = env(dir.path());
        e.docker_host = Some("tcp://127.0.0.1:2376".into());
        e.tls_verify = true;
        e.cert_path = Some(dir.path().join("certs"));
        let err = resolve(None, &e).unwrap_err().to_string();
        assert!(err.contains("certs/ca.pem"), "{err}");
        assert!(err.contains("\nhint: point DOCKER_CERT_PATH"), "{err}");
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            write(&dir.path().join("certs").join(f), "pem");
        }
        let tls = resolve(None, &e).unwrap().tls.unwrap();
        assert_eq!(tls.key, dir.path().join("certs/key.pem"));
        // Verification is about TCP; a socket never uses it.
        e.docker_host = Some("unix:///var/run/docker.sock".into());
        assert_eq!(resolve(None, &e).unwrap().tls, None);
    }

    #[test]
    fn a_missing_context_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = env(dir.path());
        e.docker_context = Some("gone".into());
        let err = resolve(None, &e).unwrap_err().to_string();
        assert!(
            err.starts_with("Docker context `gone` (from DOCKER_CONTEXT) does not exist"),
            "{err}"
        );
    }
}
