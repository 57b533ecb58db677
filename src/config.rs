//! `connector-build.toml`: per-repository defaults, found in the working directory or a
//! parent. Command-line flags override it.
//!
//! ```toml
//! connectors_dirs = ["airbyte-integrations/connectors"]   # relative to this file
//! engine = "unix:///var/run/docker.sock"              # or several, builds spread over them:
//! # engines = ["unix:///var/run/docker.sock", "ssh://builder@10.0.0.5"]
//! ca_bundle = "/etc/ssl/certs/ca-certificates.crt"
//! registry = "127.0.0.1:5000"        # where base images are published and read from
//! cache_registry = "ghcr.io/acme/connector-build-cache"   # cache shared through a registry
//! state_dir = "/var/lib/connector-build"   # this machine's built roots and published images
//! base_images = "base-images"         # base image declarations; default: the built-in ones
//! insecure_registries = ["10.0.0.0/8", "registry.lan:5000"]   # plain HTTP, as in dockerd
//! platforms = ["linux/amd64", "linux/arm64"]   # what `publish` builds (not `build`)
//! [mirrors]
//! "docker.io" = "127.0.0.1:5000"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const CONFIG_FILE: &str = "connector-build.toml";

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub connectors_dirs: Vec<PathBuf>,
    pub engine: Option<String>,
    /// Several engines to spread bulk builds over; wins over `engine`.
    #[serde(default)]
    pub engines: Vec<String>,
    pub ca_bundle: Option<PathBuf>,
    #[serde(default)]
    pub mirrors: BTreeMap<String, String>,
    /// Registry base images are published to and read from.
    pub registry: Option<String>,
    /// Repository of the cache shared through a registry (`--cache-registry`).
    pub cache_registry: Option<String>,
    /// Registries reached over plain HTTP besides loopback ones (`host[:port]` or a CIDR),
    /// as the engine's `insecure-registries`.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Machine-local state (see `base_images::state`).
    pub state_dir: Option<PathBuf>,
    /// A folder of base image declarations instead of the built-in ones.
    pub base_images: Option<PathBuf>,
    /// The platforms `publish` builds and pushes as one index (`build` builds the engine's
    /// unless `--platform` says otherwise).
    #[serde(default, deserialize_with = "platforms")]
    pub platforms: Vec<crate::platform::Platform>,
    /// The folder the file was found in; relative paths are taken from there.
    #[serde(skip)]
    pub root: PathBuf,
}

/// `platforms = [...]`, each parsed as `--platform` is, so a wrong one gets the same hint.
fn platforms<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<crate::platform::Platform>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    names
        .iter()
        .map(|n| {
            n.parse().map_err(|_| {
                serde::de::Error::custom(format!(
                    "`platforms`: unknown platform `{n}`\nhint: use linux/amd64 or linux/arm64, e.g. platforms = [\"linux/amd64\", \"linux/arm64\"]"
                ))
            })
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `at` is `path:line:col`.
    #[error("{at}: {message}")]
    Parse {
        path: PathBuf,
        at: String,
        message: String,
    },
}

impl Config {
    /// The nearest `connector-build.toml` from `start` upwards, or defaults rooted at `start`.
    pub fn discover(start: &Path) -> Result<Config, ConfigError> {
        for dir in start.ancestors() {
            let path = dir.join(CONFIG_FILE);
            if path.is_file() {
                return Self::load(&path);
            }
        }
        Ok(Config {
            root: start.to_path_buf(),
            ..Default::default()
        })
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| {
            let (at, message) = crate::model::toml_error::locate(path, &text, &e);
            ConfigError::Parse {
                path: path.to_path_buf(),
                at,
                message,
            }
        })?;
        config.root = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        config.connectors_dirs = config
            .connectors_dirs
            .iter()
            .map(|d| config.root.join(d))
            .collect();
        config.ca_bundle = config.ca_bundle.as_ref().map(|p| config.root.join(p));
        config.state_dir = config.state_dir.as_ref().map(|p| config.root.join(p));
        config.base_images = config.base_images.as_ref().map(|p| config.root.join(p));
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_upwards_with_paths_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "connectors_dirs = [\"conns\"]\n[mirrors]\n\"docker.io\" = \"127.0.0.1:5000\"\n",
        )
        .unwrap();
        let nested = dir.path().join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        let c = Config::discover(&nested).unwrap();
        assert_eq!(c.connectors_dirs, [dir.path().join("conns")]);
        assert_eq!(c.mirrors["docker.io"], "127.0.0.1:5000");
    }

    #[test]
    fn several_engines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(CONFIG_FILE);
        std::fs::write(
            &p,
            "engines = [\"unix:///a.sock\", \"tcp://10.0.0.5:2375\"]\n",
        )
        .unwrap();
        assert_eq!(
            Config::load(&p).unwrap().engines,
            ["unix:///a.sock", "tcp://10.0.0.5:2375"]
        );
    }

    #[test]
    fn platforms_as_the_flag_takes_them() {
        use crate::platform::Platform;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(CONFIG_FILE);
        std::fs::write(&p, "platforms = [\"linux/arm64\", \"amd64\"]\n").unwrap();
        assert_eq!(
            Config::load(&p).unwrap().platforms,
            [Platform::LinuxArm64, Platform::LinuxAmd64]
        );
        std::fs::write(&p, "platforms = [\"linux/s390x\"]\n").unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("connector-build.toml:1:13: `platforms`: unknown platform `linux/s390x`")
                && e.contains("hint:"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(CONFIG_FILE);
        std::fs::write(&p, "engine = \"unix:///x\"\nconnector_dirs = []\n").unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("connector_dirs") && e.contains("connector-build.toml:2:1: unknown field"),
            "{e}"
        );
    }
}
