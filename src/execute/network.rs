//! The host's package index, proxy and CA settings, given to install steps only.
//!
//! They travel in a file on a volume mounted at `SCRATCH_DIR` for the step's duration, never
//! in a container's environment or command, because the engine copies those into the
//! committed image's configuration.

use std::path::{Path, PathBuf};

use super::secrets::Secret;
use crate::plan::canonical::{canonical_json, sha256_hex};
use crate::plan::SCRATCH_DIR;

/// Settings that change what gets installed; they are part of the install step's key.
const INDEX_VARS: &[&str] = &[
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
];

/// Settings that only change how packages are reached.
const PROXY_VARS: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
];

pub const CA_FILE: &str = "ca-bundle.pem";
pub const ENV_FILE: &str = "env";

#[derive(Debug, thiserror::Error)]
#[error("cannot read the CA bundle {path} (from --ca-bundle or SSL_CERT_FILE)\nhint: fix the path or unset it")]
pub struct CaBundleError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

#[derive(Clone, Default)]
pub struct NetworkSettings {
    index: Vec<(String, String)>,
    proxy: Vec<(String, String)>,
    ca_bundle: Option<Vec<u8>>,
    /// `--secret`s, for install steps and build customization commands; in no key.
    secrets: Vec<Secret>,
}

// Values may hold credentials (`https://user:token@host/simple`): never print them.
impl std::fmt::Debug for NetworkSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkSettings")
            .field(
                "index",
                &self.index.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field(
                "proxy",
                &self.proxy.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("ca_bundle", &self.ca_bundle.as_ref().map(Vec::len))
            .field(
                "secrets",
                &self.secrets.iter().map(|s| &s.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl NetworkSettings {
    /// Reads the settings from `lookup` (the process environment in the binary).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        ca_bundle: Option<&Path>,
    ) -> Result<Self, CaBundleError> {
        let pick = |names: &[&str]| {
            names
                .iter()
                .filter_map(|n| {
                    lookup(n)
                        .filter(|v| !v.is_empty())
                        .map(|v| (n.to_string(), v))
                })
                .collect::<Vec<_>>()
        };
        let ca_bundle = match ca_bundle {
            Some(path) => Some(std::fs::read(path).map_err(|source| CaBundleError {
                path: path.to_path_buf(),
                source,
            })?),
            None => None,
        };
        Ok(NetworkSettings {
            index: pick(INDEX_VARS),
            proxy: pick(PROXY_VARS),
            ca_bundle,
            secrets: Vec::new(),
        })
    }

    pub fn with_secrets(self, secrets: Vec<Secret>) -> Self {
        NetworkSettings { secrets, ..self }
    }

    pub fn secrets(&self) -> &[Secret] {
        &self.secrets
    }

    pub fn from_env(ca_bundle: Option<&Path>) -> Result<Self, CaBundleError> {
        Self::from_lookup(|n| std::env::var(n).ok(), ca_bundle)
    }

    /// Identifies the package index settings without revealing them.
    pub fn fingerprint(&self) -> String {
        format!(
            "index:{}",
            &sha256_hex(canonical_json(&self.index).as_bytes())[..16]
        )
    }

    /// The shell script an install step sources, and the CA bundle if any.
    pub fn files(&self, build_env: &[(String, String)]) -> Vec<(String, Vec<u8>)> {
        let mut script = String::from("# written by connector-build for one install step\n");
        let mut export = |k: &str, v: &str| {
            script.push_str(&format!("export {k}={}\n", shell_quote(v)));
        };
        for (k, v) in self.index.iter().chain(&self.proxy) {
            export(k, v);
        }
        // uv reads its own variables: give it pip's index settings when it has none.
        for (pip, uv) in [
            ("PIP_INDEX_URL", "UV_INDEX_URL"),
            ("PIP_EXTRA_INDEX_URL", "UV_EXTRA_INDEX_URL"),
        ] {
            let has = |name: &str| self.index.iter().any(|(k, _)| k == name);
            if let Some((_, v)) = self.index.iter().find(|(k, _)| k == pip) {
                if !has(uv) {
                    export(uv, v);
                }
            }
        }
        for (k, v) in build_env {
            export(k, v);
        }
        let mut files = Vec::new();
        if let Some(ca) = &self.ca_bundle {
            let path = format!("{SCRATCH_DIR}/{CA_FILE}");
            for k in [
                "PIP_CERT",
                "SSL_CERT_FILE",
                "REQUESTS_CA_BUNDLE",
                "CURL_CA_BUNDLE",
            ] {
                export(k, &path);
            }
            files.push((CA_FILE.to_string(), ca.clone()));
        }
        files.push((ENV_FILE.to_string(), script.into_bytes()));
        files
    }
}

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_settings_change_the_fingerprint_proxies_do_not() {
        let with = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            NetworkSettings::from_lookup(
                |n| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()),
                None,
            )
            .unwrap()
        };
        let a = with(&[]);
        let b = with(&[("HTTPS_PROXY", "http://proxy:3128")]);
        let c = with(&[("PIP_INDEX_URL", "https://user:s3cret@pypi.example/simple")]);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert!(!c.fingerprint().contains("s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
        let files = c.files(&[]);
        let script = String::from_utf8(files.last().unwrap().1.clone()).unwrap();
        assert!(script.contains("export PIP_INDEX_URL='https://user:s3cret@pypi.example/simple'"));
        assert!(script.contains("export UV_INDEX_URL='https://user:s3cret@pypi.example/simple'"));
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
    }
}
