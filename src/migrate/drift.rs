//! Why a `spec` may differ after a migration: the Python each image runs and the versions
//! of the distributions installed in it. A Dockerfile on `python:3.9-slim` and the base
//! image's Python 3.11 resolve the same requirements to other releases (a CDK range that
//! ends at 3.x on 3.9 reaches 7.x on 3.11), and that is what a refusal should point at.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::compare::run_in_image;
use crate::engine::{Engine, EngineError};

/// Prints the interpreter's version and every installed distribution's name and version as
/// one JSON object. Names are PEP 503-normalised; the first found on `sys.path` wins, as
/// for imports.
const SCRIPT: &str = r#"import json, re, sys
from importlib import metadata
found = {}
for d in metadata.distributions():
    name = d.metadata["Name"]
    if name:
        found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), d.version)
print(json.dumps({"python": sys.version.split()[0], "distributions": found}))
"#;

/// One image's Python and installed distributions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Environment {
    pub python: String,
    pub distributions: BTreeMap<String, String>,
}

/// A distribution the two images have at other versions (`None`: not installed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionChange {
    pub name: String,
    pub dockerfile: Option<String>,
    pub base_image: Option<String>,
}

/// How the base image build's Python environment differs from the Dockerfile image's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub dockerfile_python: String,
    pub base_image_python: String,
    /// Distributions the Dockerfile installed (those its root image does not have at the
    /// same version) that the base image build has at another version or not at all. What
    /// the root image brings (its pip) and what only the base image build has (poetry and
    /// its dependencies) are left out.
    pub changed: Vec<VersionChange>,
}

/// The interpreter of an entrypoint like `["python", "/airbyte/integration_code/main.py"]`,
/// else `python`.
fn interpreter(entrypoint: &[String]) -> String {
    match entrypoint.first() {
        Some(p)
            if p.rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with("python")) =>
        {
            p.clone()
        }
        _ => "python".into(),
    }
}

/// Reads `image`'s Python environment with the interpreter its entrypoint runs. `None` when
/// that cannot be read (no such interpreter, a Python without `importlib.metadata`).
pub async fn environment(
    engine: &Engine,
    image: &str,
    entrypoint: &[String],
) -> Result<Option<Environment>, EngineError> {
    let cmd = vec![interpreter(entrypoint), "-c".into(), SCRIPT.into()];
    let out = match run_in_image(engine, image, Some(vec![]), cmd).await {
        Ok(o) => o,
        // The interpreter is not there: the engine cannot start the container.
        Err(EngineError::Refused { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    if out.exit_code != 0 {
        return Ok(None);
    }
    Ok(out
        .stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l.trim()).ok()))
}

/// What differs between the Dockerfile image's environment (`root`: that of the image it
/// starts from) and the base image build's; `None` when nothing does.
pub fn drift(
    dockerfile: &Environment,
    root: Option<&Environment>,
    base_image: &Environment,
) -> Option<Drift> {
    let from_root = |name: &String, version: &String| {
        root.is_some_and(|r| r.distributions.get(name) == Some(version))
    };
    let changed: Vec<VersionChange> = dockerfile
        .distributions
        .iter()
        .filter(|(name, version)| !from_root(name, version))
        .filter(|(name, version)| base_image.distributions.get(*name) != Some(version))
        .map(|(name, version)| VersionChange {
            name: name.clone(),
            dockerfile: Some(version.clone()),
            base_image: base_image.distributions.get(name).cloned(),
        })
        .collect();
    if changed.is_empty() && dockerfile.python == base_image.python {
        return None;
    }
    Some(Drift {
        dockerfile_python: dockerfile.python.clone(),
        base_image_python: base_image.python.clone(),
        changed,
    })
}

impl Drift {
    /// The refusal note for a `spec` that differs: the likely cause, then what to do.
    pub fn note(&self) -> String {
        let pythons = if self.dockerfile_python == self.base_image_python {
            format!("Python {} in both", self.dockerfile_python)
        } else {
            format!(
                "Python {} in the Dockerfile image, {} in the base image build",
                self.dockerfile_python, self.base_image_python
            )
        };
        if self.changed.is_empty() {
            return format!(
                "likely cause: the Python version ({pythons}); the installed distributions have the same versions. Make the connector work on Python {} (or change the Dockerfile), then migrate again",
                self.base_image_python
            );
        }
        let mut out = format!(
            "likely cause: the dependencies resolve to other versions in the base image build ({pythons}); installed versions, Dockerfile image -> base image build:"
        );
        for c in &self.changed {
            let v = |v: &Option<String>| v.clone().unwrap_or_else(|| "not installed".into());
            out.push_str(&format!(
                "\n  {} {} -> {}",
                c.name,
                v(&c.dockerfile),
                v(&c.base_image)
            ));
        }
        out.push_str(&format!(
            "\npin the connector's requirements (setup.py or pyproject.toml) to versions that behave the same on Python {}, or make the connector work with the new ones, then migrate again",
            self.base_image_python
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(python: &str, dists: &[(&str, &str)]) -> Environment {
        Environment {
            python: python.into(),
            distributions: dists
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn shows_changed_versions_and_both_pythons() {
        let old = env(
            "3.9.18",
            &[
                ("airbyte-cdk", "3.9.6"),
                ("pendulum", "2.1.2"),
                ("requests", "2.31.0"),
                ("source-google-sheets", "0.3.7"),
            ],
        );
        let new = env(
            "3.11.2",
            &[
                ("airbyte-cdk", "7.39.1"),
                ("pip", "23.2.1"),
                ("poetry", "1.6.1"),
                ("requests", "2.31.0"),
                ("source-google-sheets", "0.3.7"),
            ],
        );
        // python:3.9-slim's own pip is not the connector's dependency.
        let mut old = old;
        old.distributions.insert("pip".into(), "23.0.1".into());
        let root = env("3.9.18", &[("pip", "23.0.1"), ("setuptools", "58.1.0")]);
        let d = drift(&old, Some(&root), &new).unwrap();
        assert_eq!(
            d.note(),
            "likely cause: the dependencies resolve to other versions in the base image build (Python 3.9.18 in the Dockerfile image, 3.11.2 in the base image build); installed versions, Dockerfile image -> base image build:\n  airbyte-cdk 3.9.6 -> 7.39.1\n  pendulum 2.1.2 -> not installed\npin the connector's requirements (setup.py or pyproject.toml) to versions that behave the same on Python 3.11.2, or make the connector work with the new ones, then migrate again"
        );
        assert!(drift(&old, None, &old).is_none());
        // Without the root's environment, its pip counts.
        let without_root = drift(&old, None, &new).unwrap();
        assert_eq!(without_root.changed[2].name, "pip");
        let same_dists = env("3.11.2", &[("airbyte-cdk", "3.9.6")]);
        let only_python = drift(
            &env("3.9.18", &[("airbyte-cdk", "3.9.6")]),
            None,
            &same_dists,
        )
        .unwrap();
        assert!(only_python.changed.is_empty());
        assert!(only_python
            .note()
            .starts_with("likely cause: the Python version (Python 3.9.18 in the Dockerfile image, 3.11.2 in the base image build)"));
        assert_eq!(
            interpreter(&["/usr/local/bin/python3.9".into()]),
            "/usr/local/bin/python3.9"
        );
        assert_eq!(interpreter(&["/bin/sh".into(), "-c".into()]), "python");
    }
}
