//! What users of a connector image rely on, read from the engine, and the differences
//! between two images: `spec` output, entrypoint and default arguments, environment,
//! `io.airbyte.*` labels, working directory, user and system packages.
//!
//! Environment variables and packages that come from an image's own base are left out on
//! both sides: an image is compared by what it adds to its base, so the Dockerfile's
//! `python:3.9-slim` and the new base image may differ in `PYTHON_VERSION` without that
//! counting.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::engine::{ContainerSpec, Engine, EngineError, ImageInfo, RunOutput};

/// The variable the standard procedure always sets; a Dockerfile that did not set it loses
/// nothing by gaining it.
pub const AIRBYTE_ENTRYPOINT: &str = "AIRBYTE_ENTRYPOINT";

/// How many lines of a failing command's output are kept.
const TAIL: usize = 12;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum SpecResult {
    /// The parsed `SPEC` message.
    Ok {
        message: serde_json::Value,
    },
    Failed {
        exit_code: i64,
        output: Vec<String>,
    },
}

impl SpecResult {
    fn text(&self) -> String {
        match self {
            SpecResult::Ok { message } => {
                let mut s = serde_json::to_string_pretty(message).unwrap_or_default();
                s.push('\n');
                s
            }
            SpecResult::Failed { exit_code, output } => {
                let mut s = format!("`spec` failed with exit code {exit_code}\n");
                for l in output {
                    s.push_str(l);
                    s.push('\n');
                }
                s
            }
        }
    }
}

/// An image as its users see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// The image's id.
    #[serde(skip)]
    pub image: String,
    /// The id of the image it was built on (the Dockerfile's root image, or the base image).
    #[serde(skip)]
    pub base: String,
    pub spec: SpecResult,
    pub entrypoint: Vec<String>,
    pub default_args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Names of variables the image sets beyond its base (added or changed).
    pub own_env: BTreeSet<String>,
    /// `io.airbyte.*` labels.
    pub labels: BTreeMap<String, String>,
    pub workdir: String,
    /// Empty for root, however the image spells it.
    pub user: String,
    /// Installed Debian packages; `None` when the image has no dpkg.
    pub packages: Option<BTreeSet<String>>,
    /// Packages beyond the image's base.
    pub extra_packages: Option<BTreeSet<String>>,
}

pub fn env_map(image: &ImageInfo) -> BTreeMap<String, String> {
    image
        .env
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .collect()
}

/// Variables `image` sets that its base does not have with the same value.
pub fn own_env(image: &ImageInfo, base: &ImageInfo) -> BTreeSet<String> {
    let base = env_map(base);
    env_map(image)
        .into_iter()
        .filter(|(k, v)| base.get(k) != Some(v))
        .map(|(k, _)| k)
        .collect()
}

fn normal_user(user: Option<&str>) -> String {
    match user.unwrap_or("") {
        "root" | "0" | "0:0" | "root:root" => String::new(),
        u => u.to_string(),
    }
}

/// Runs `cmd` in a fresh container of `image`, without network, and removes it.
/// `entrypoint` replaces the image's (`Some(vec![])` runs `cmd` directly).
pub async fn run_in_image(
    engine: &Engine,
    image: &str,
    entrypoint: Option<Vec<String>>,
    cmd: Vec<String>,
) -> Result<RunOutput, EngineError> {
    let spec = ContainerSpec {
        image: image.to_string(),
        entrypoint,
        cmd: Some(cmd),
        network_disabled: true,
        ..Default::default()
    };
    let container = engine.create_container(&spec).await?;
    let result = engine.run(&container).await;
    let removed = engine.remove_container(&container).await;
    let out = result?;
    removed?;
    Ok(out)
}

fn tail(out: &RunOutput) -> Vec<String> {
    let text = format!("{}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(TAIL)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The image's `spec` message, run through its own entrypoint.
pub async fn spec(engine: &Engine, image: &ImageInfo) -> Result<SpecResult, EngineError> {
    let out = run_in_image(engine, &image.id, None, vec!["spec".into()]).await?;
    let message = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .find(|v| v.get("type").and_then(|t| t.as_str()) == Some("SPEC"));
    Ok(match message {
        Some(message) if out.exit_code == 0 => SpecResult::Ok { message },
        _ => SpecResult::Failed {
            exit_code: out.exit_code,
            output: tail(&out),
        },
    })
}

/// Installed Debian packages (`dpkg-query`), `None` when the image has no dpkg.
pub async fn packages(
    engine: &Engine,
    image: &ImageInfo,
) -> Result<Option<BTreeSet<String>>, EngineError> {
    let out = run_in_image(
        engine,
        &image.id,
        Some(vec![]),
        vec![
            "dpkg-query".into(),
            "-W".into(),
            "-f".into(),
            "${db:Status-Abbrev} ${Package}\\n".into(),
        ],
    )
    .await;
    let out = match out {
        Ok(o) if o.exit_code == 0 => o,
        // No dpkg (e.g. Alpine): the engine cannot start the command, or it fails.
        Ok(_) => return Ok(None),
        Err(EngineError::Refused { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(
        out.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("ii "))
            .map(|p| p.trim().to_string())
            .collect(),
    ))
}

/// Reads what users rely on from `image`, with `base` (the image it was built on) telling
/// which variables and packages are its own.
pub async fn snapshot(
    engine: &Engine,
    image: &ImageInfo,
    base: &ImageInfo,
) -> Result<Snapshot, EngineError> {
    let spec = spec(engine, image).await?;
    let packages = packages(engine, image).await?;
    let base_packages = self::packages(engine, base).await?;
    let extra_packages = match (&packages, &base_packages) {
        (Some(p), Some(b)) => Some(p.difference(b).cloned().collect()),
        _ => None,
    };
    Ok(Snapshot {
        image: image.id.clone(),
        base: base.id.clone(),
        spec,
        entrypoint: image.entrypoint.clone().unwrap_or_default(),
        default_args: image.cmd.clone().unwrap_or_default(),
        env: env_map(image),
        own_env: own_env(image, base),
        labels: image
            .labels
            .iter()
            .filter(|(k, _)| k.starts_with("io.airbyte."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        workdir: image.workdir.clone().unwrap_or_else(|| "/".into()),
        user: normal_user(image.user.as_deref()),
        packages,
        extra_packages,
    })
}

/// One way the image built from the base image differs from the Dockerfile's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Difference {
    Spec {
        dockerfile: SpecResult,
        base_image: SpecResult,
    },
    Entrypoint {
        dockerfile: Vec<String>,
        base_image: Vec<String>,
    },
    DefaultArgs {
        dockerfile: Vec<String>,
        base_image: Vec<String>,
    },
    Env {
        name: String,
        dockerfile: Option<String>,
        base_image: Option<String>,
    },
    Label {
        name: String,
        dockerfile: Option<String>,
        base_image: Option<String>,
    },
    Workdir {
        dockerfile: String,
        base_image: String,
    },
    User {
        dockerfile: String,
        base_image: String,
    },
    /// Packages the Dockerfile image added that the new image does not have.
    MissingPackages { packages: Vec<String> },
}

fn opt(v: &Option<String>) -> String {
    match v {
        Some(v) => format!("`{v}`"),
        None => "unset".into(),
    }
}

fn user_text(u: &str) -> &str {
    if u.is_empty() {
        "root"
    } else {
        u
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Spec {
                dockerfile,
                base_image,
            } => {
                let diff = similar::TextDiff::from_lines(&dockerfile.text(), &base_image.text())
                    .unified_diff()
                    .context_radius(2)
                    .header("Dockerfile image", "base image build")
                    .to_string();
                write!(f, "`spec` output differs:\n{}", diff.trim_end())
            }
            Difference::Entrypoint {
                dockerfile,
                base_image,
            } => write!(
                f,
                "entrypoint: Dockerfile {dockerfile:?}, base image build {base_image:?}"
            ),
            Difference::DefaultArgs {
                dockerfile,
                base_image,
            } => write!(
                f,
                "default arguments (CMD): Dockerfile {dockerfile:?}, base image build {base_image:?}"
            ),
            Difference::Env {
                name,
                dockerfile,
                base_image,
            } => write!(
                f,
                "environment variable {name}: Dockerfile {}, base image build {}",
                opt(dockerfile),
                opt(base_image)
            ),
            Difference::Label {
                name,
                dockerfile,
                base_image,
            } => write!(
                f,
                "label {name}: Dockerfile {}, base image build {}",
                opt(dockerfile),
                opt(base_image)
            ),
            Difference::Workdir {
                dockerfile,
                base_image,
            } => write!(
                f,
                "working directory: Dockerfile `{dockerfile}`, base image build `{base_image}`"
            ),
            Difference::User {
                dockerfile,
                base_image,
            } => write!(
                f,
                "user: Dockerfile `{}`, base image build `{}`",
                user_text(dockerfile),
                user_text(base_image)
            ),
            Difference::MissingPackages { packages } => write!(
                f,
                "system packages the Dockerfile image has and the base image build lacks: {}",
                packages.join(", ")
            ),
        }
    }
}

fn changed<T: PartialEq + Clone>(a: &T, b: &T) -> Option<(T, T)> {
    (a != b).then(|| (a.clone(), b.clone()))
}

/// How `new` (built from the base image) differs from `old` (built from the Dockerfile).
pub fn compare(old: &Snapshot, new: &Snapshot) -> Vec<Difference> {
    let mut out = Vec::new();
    if old.spec != new.spec {
        out.push(Difference::Spec {
            dockerfile: old.spec.clone(),
            base_image: new.spec.clone(),
        });
    }
    if let Some((dockerfile, base_image)) = changed(&old.entrypoint, &new.entrypoint) {
        out.push(Difference::Entrypoint {
            dockerfile,
            base_image,
        });
    }
    if let Some((dockerfile, base_image)) = changed(&old.default_args, &new.default_args) {
        out.push(Difference::DefaultArgs {
            dockerfile,
            base_image,
        });
    }
    for name in old.own_env.union(&new.own_env) {
        let (a, b) = (old.env.get(name), new.env.get(name));
        if a == b || (name == AIRBYTE_ENTRYPOINT && a.is_none()) {
            continue;
        }
        out.push(Difference::Env {
            name: name.clone(),
            dockerfile: a.cloned(),
            base_image: b.cloned(),
        });
    }
    let names: BTreeSet<&String> = old.labels.keys().chain(new.labels.keys()).collect();
    for name in names {
        let (a, b) = (old.labels.get(name), new.labels.get(name));
        if a != b {
            out.push(Difference::Label {
                name: name.clone(),
                dockerfile: a.cloned(),
                base_image: b.cloned(),
            });
        }
    }
    if let Some((dockerfile, base_image)) = changed(&old.workdir, &new.workdir) {
        out.push(Difference::Workdir {
            dockerfile,
            base_image,
        });
    }
    if let Some((dockerfile, base_image)) = changed(&old.user, &new.user) {
        out.push(Difference::User {
            dockerfile,
            base_image,
        });
    }
    if let (Some(extra), Some(have)) = (&old.extra_packages, &new.packages) {
        let missing: Vec<String> = extra.difference(have).cloned().collect();
        if !missing.is_empty() {
            out.push(Difference::MissingPackages { packages: missing });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn snap() -> Snapshot {
        Snapshot {
            image: "sha256:1".into(),
            base: "sha256:0".into(),
            spec: SpecResult::Ok {
                message: serde_json::json!({"type": "SPEC", "spec": {"a": 1}}),
            },
            entrypoint: vec!["python".into(), "/airbyte/integration_code/main.py".into()],
            default_args: vec![],
            env: [
                ("PATH", "/usr/bin"),
                (
                    "AIRBYTE_ENTRYPOINT",
                    "python /airbyte/integration_code/main.py",
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            own_env: ["AIRBYTE_ENTRYPOINT".to_string()].into(),
            labels: [("io.airbyte.version".to_string(), "1.0.0".to_string())].into(),
            workdir: "/airbyte/integration_code".into(),
            user: String::new(),
            packages: Some(["bash".to_string()].into()),
            extra_packages: Some(BTreeSet::new()),
        }
    }

    #[test]
    fn equal_images_have_no_differences() {
        assert!(compare(&snap(), &snap()).is_empty());
    }

    #[test]
    fn base_variables_do_not_count_but_own_ones_do() {
        let mut old = snap();
        let mut new = snap();
        // The Dockerfile's root image had PYTHON_VERSION; the new base has another one.
        old.env.insert("PYTHON_VERSION".into(), "3.9.18".into());
        new.env.insert("PYTHON_VERSION".into(), "3.11.2".into());
        assert!(compare(&old, &new).is_empty());
        // A variable the Dockerfile set itself must be there.
        old.env
            .insert("AIRBYTE_IMPL_MODULE".into(), "source_x".into());
        old.own_env.insert("AIRBYTE_IMPL_MODULE".into());
        let d = compare(&old, &new);
        assert_eq!(
            d,
            [Difference::Env {
                name: "AIRBYTE_IMPL_MODULE".into(),
                dockerfile: Some("source_x".into()),
                base_image: None
            }]
        );
        assert_eq!(
            d[0].to_string(),
            "environment variable AIRBYTE_IMPL_MODULE: Dockerfile `source_x`, base image build unset"
        );
        // A Dockerfile that never set AIRBYTE_ENTRYPOINT loses nothing by gaining it.
        let mut old = snap();
        old.env.remove(AIRBYTE_ENTRYPOINT);
        old.own_env.clear();
        assert!(compare(&old, &snap()).is_empty());
    }

    #[test]
    fn every_kind_of_difference_is_shown() {
        let old = snap();
        let mut new = snap();
        new.spec = SpecResult::Ok {
            message: serde_json::json!({"type": "SPEC", "spec": {"a": 2}}),
        };
        new.entrypoint = vec![
            "python".into(),
            "/airbyte/integration_code/main_dev.py".into(),
        ];
        new.labels
            .insert("io.airbyte.version".into(), "1.0.1".into());
        new.workdir = "/".into();
        new.user = "airbyte".into();
        new.packages = Some(BTreeSet::new());
        let mut old = old;
        old.extra_packages = Some(["jq".to_string()].into());
        let d = compare(&old, &new);
        let text: Vec<String> = d.iter().map(|d| d.to_string()).collect();
        assert_eq!(text.len(), 6, "{text:#?}");
        assert!(
            text[0].contains("-    \"a\": 1\n+    \"a\": 2"),
            "{}",
            text[0]
        );
        assert!(text[1].starts_with("entrypoint: Dockerfile"));
        assert_eq!(
            text[2],
            "label io.airbyte.version: Dockerfile `1.0.0`, base image build `1.0.1`"
        );
        assert_eq!(
            text[4],
            "user: Dockerfile `root`, base image build `airbyte`"
        );
        assert!(text[5].ends_with("lacks: jq"));
    }
}
