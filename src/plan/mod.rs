//! The build plan: a plain value describing an image build step by step.
//!
//! It can be printed (`--plan`), snapshot-tested and hashed without an engine. Cache keys are
//! chained sha256 digests over a canonical JSON encoding of each step, so a step's key covers
//! the base image digest and everything before it, and nothing else: not the host paths, not the
//! output tag, not the step's display name.

pub mod canonical;
pub mod context;
pub mod java;
pub mod manifest_only;
pub mod python;
pub mod to_dockerfile;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use canonical::{CacheKey, KeyChain};
pub use python::PlanOptions;

use crate::model::{Connector, ConnectorKind};

/// What the names of the steps a build customization adds start with (`<hook>: <label>`):
/// its two hooks, and the evaluation of a container it asks about.
pub const HOOK_STEP_PREFIXES: [&str; 3] = [
    "pre_connector_install",
    "post_connector_install",
    "evaluate",
];

/// Whether `step` is a command a build customization runs (its name is `<hook>: <label>`, as
/// `hooks::ops::to_steps` names it): those get the build's secrets.
pub fn is_hook_command(step: &Step) -> bool {
    matches!(step.action, Action::Run(_))
        && HOOK_STEP_PREFIXES.iter().any(|hook| {
            step.name
                .strip_prefix(hook)
                .is_some_and(|rest| rest.starts_with(": "))
        })
}

/// The `spec` smoke test every connector image (and the declarative base image) passes.
pub fn spec_smoke_test() -> SmokeTest {
    SmokeTest {
        args: vec!["spec".into()],
        expect_message_type: "SPEC".into(),
    }
}

/// A connector's plan from its base and its kind's steps, ending as every kind ends: the
/// labels, then the `spec` smoke test.
pub fn connector_plan(
    connector: &Connector,
    output_tag: String,
    base: Base,
    mut steps: Vec<Step>,
    warnings: Vec<String>,
) -> BuildPlan {
    steps.extend(label_steps(connector));
    BuildPlan {
        connector: connector.name.clone(),
        context_dir: connector.dir.clone(),
        output_tag,
        customization: None,
        platform: None,
        base,
        steps,
        smoke_test: Some(spec_smoke_test()),
        warnings,
    }
}

/// The `io.airbyte.version` and `io.airbyte.name` labels, the steps every kind ends with.
pub fn label_steps(connector: &Connector) -> Vec<Step> {
    [
        (
            "io.airbyte.version",
            &connector.metadata.docker_image_tag.value,
        ),
        (
            "io.airbyte.name",
            &connector.metadata.docker_repository.value,
        ),
    ]
    .into_iter()
    .map(|(name, value)| Step {
        name: python::LABELS_STEP.into(),
        action: Action::Config(ConfigOp::Label {
            name: name.into(),
            value: value.clone(),
        }),
    })
    .collect()
}

/// The plan for `connector`, by its kind (without its build customization).
pub fn plan_connector(
    connector: &Connector,
    opts: &PlanOptions,
) -> Result<BuildPlan, python::PlanError> {
    match ConnectorKind::of(connector) {
        ConnectorKind::Python => python::plan_connector(connector, opts),
        ConnectorKind::ManifestOnly => manifest_only::plan_manifest_only(connector, opts),
        ConnectorKind::Java => java::plan_java(connector, opts),
    }
}

/// Bumped when the meaning of a plan changes, so old cache entries stop matching.
pub const PLAN_FORMAT: &str = "connector-build/plan/v1";

/// Where the integration code lives in every connector image.
pub const CODE_DIR: &str = "/airbyte/integration_code";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildPlan {
    pub connector: String,
    /// The connector folder files are read from; never part of a cache key.
    pub context_dir: PathBuf,
    /// The tag given to the image once the smoke test passed.
    pub output_tag: String,
    /// sha256 of `build_customization.py`, when hooks ran: part of every key, since the hook
    /// file decided the hook steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customization: Option<String>,
    pub base: Base,
    /// The platform the image is for; `None`: the base image's (the engine's). Part of every
    /// key unless linux/amd64 (whose keys predate platforms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<crate::platform::Platform>,
    pub steps: Vec<Step>,
    pub smoke_test: Option<SmokeTest>,
    /// What planning found that does not stop the build (e.g. a stale lock); shown as
    /// warnings, never part of a cache key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Base {
    /// A registry image used by content: `pull` is the digest-pinned address to fetch
    /// (after mirror rewriting), `digest` what the engine must hold.
    Image {
        reference: String,
        pull: String,
        digest: Option<String>,
    },
    /// The deprecated path: the connector's own Dockerfile, with the files it may see.
    Dockerfile {
        dockerfile: String,
        context: Vec<FileEntry>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Short name shown in progress and reports, e.g. `install dependencies`.
    pub name: String,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Image configuration only; folded into the next layer, no container runs for it.
    Config(ConfigOp),
    /// Files written under `dest` as one layer, without running anything.
    Files { dest: String, files: Vec<FileEntry> },
    /// A command run in a container; its filesystem changes become one layer.
    Run(Run),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigOp {
    Env {
        name: String,
        value: String,
        /// Expand `${VAR}` / `$VAR` against the environment at that point.
        #[serde(default, skip_serializing_if = "is_false")]
        expand: bool,
    },
    UnsetEnv(String),
    Workdir(String),
    User(String),
    Entrypoint(Vec<String>),
    /// An entrypoint that keeps the image's default arguments.
    EntrypointKeepingArgs(Vec<String>),
    Cmd(Vec<String>),
    Label {
        name: String,
        value: String,
    },
    ExposePort {
        port: u16,
        protocol: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub args: Vec<String>,
    /// Files the command reads that must not stay in the image (e.g. computed requirements).
    /// They are placed in `SCRATCH_DIR`, which is a volume and never committed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scratch_files: Vec<ScratchFile>,
    /// Install steps get the host's package index, proxy and CA settings; this fingerprint of
    /// the index settings makes them part of the key without putting credentials in the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Persistent cache volumes (e.g. the pip cache) mounted for this command only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caches: Vec<CacheMount>,
    /// Environment for this command only (e.g. where the pip cache is); never in the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_env: Vec<(String, String)>,
    /// Run through the image's entrypoint instead of replacing it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub use_entrypoint: bool,
    #[serde(default, skip_serializing_if = "Expect::is_success")]
    pub expect: Expect,
    /// A `sh -c` script the command runs inside, as `"$@"` (stdin, redirects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<ShellWrap>,
    /// Host programs made available read-only for this command only (e.g. uv).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolMount>,
    /// Secrets a build customization gave this command (`with_mounted_secret`,
    /// `with_secret_variable`); their values are never serialized, so never in a key or
    /// a printed plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretUse>,
}

/// A secret of a build customization (`dag.set_secret`) given to one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretUse {
    /// The name the hook gave it.
    pub secret: String,
    pub target: SecretTarget,
    #[serde(skip)]
    pub value: SecretValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretTarget {
    /// A file at this absolute path, for the command's duration.
    File(String),
    /// An environment variable of the command's process.
    Env(String),
}

/// A secret's plaintext: never printed (`Debug` redacts it) nor serialized.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A program from the host, mounted into a command's container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolMount {
    pub name: String,
    /// What identifies the program: its own version line and size (hashing a 40 MB binary
    /// on every run would cost more than the no-op build itself).
    pub identity: String,
    /// The folder it appears in; the program is `<dir>/<name>`.
    pub dir: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShellWrap {
    pub script: String,
    /// The script's `$0`, e.g. the text fed to stdin.
    pub arg0: String,
}

impl Run {
    /// The command line for a container whose entrypoint is `entrypoint`.
    pub fn argv(&self, entrypoint: &[String]) -> Vec<String> {
        let mut argv: Vec<String> = if self.use_entrypoint {
            entrypoint.to_vec()
        } else {
            Vec::new()
        };
        argv.extend(self.args.iter().cloned());
        if let Some(wrap) = &self.shell {
            let mut wrapped = vec![
                "/bin/sh".to_string(),
                "-c".to_string(),
                wrap.script.clone(),
                wrap.arg0.clone(),
            ];
            wrapped.extend(argv);
            argv = wrapped;
        }
        argv
    }
}

/// Which exit codes a command may end with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    #[default]
    Success,
    Failure,
    Any,
}

impl Expect {
    pub fn is_success(&self) -> bool {
        *self == Expect::Success
    }

    pub fn accepts(&self, exit_code: i64) -> bool {
        match self {
            Expect::Success => exit_code == 0,
            Expect::Failure => exit_code != 0,
            Expect::Any => true,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Where scratch files and build-only settings appear inside a running step.
pub const SCRATCH_DIR: &str = "/run/connector-build";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScratchFile {
    pub name: String,
    pub contents: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CacheMount {
    pub target: String,
    pub volume: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path under the step's `dest`, `/`-separated.
    pub path: String,
    pub source: FileSource,
    pub mode: u32,
    /// sha256 of the contents (or of the link target for symlinks).
    pub sha256: String,
    /// Numeric owner; root when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub uid: u64,
    pub gid: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileSource {
    /// A file in the connector folder, path relative to it.
    Context(String),
    /// A symbolic link with this target.
    Symlink(String),
    /// Contents given in the plan itself.
    Inline(String),
    /// A file elsewhere on the host (from a build customization), absolute path.
    Host(String),
    /// A tar archive in the connector folder (path relative to it), unpacked: its members
    /// land under the step's `dest` with their first `strip` path components removed, as
    /// `tar --strip-components` does (a Gradle distribution's top folder). The entry's
    /// `path` is unused; its `sha256` is the archive's.
    Unpack { archive: String, strip: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeTest {
    pub args: Vec<String>,
    /// The Airbyte message type a line of stdout must carry, e.g. `SPEC`.
    pub expect_message_type: String,
}

/// The image configuration a plan produces, folded from its config steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImageConfig {
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
}

impl ImageConfig {
    pub fn apply(&mut self, op: &ConfigOp) {
        match op {
            ConfigOp::Env {
                name,
                value,
                expand,
            } => {
                let value = if *expand {
                    expand_vars(value, &self.env)
                } else {
                    value.clone()
                };
                match self.env.iter_mut().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value,
                    None => self.env.push((name.clone(), value)),
                }
            }
            ConfigOp::UnsetEnv(name) => self.env.retain(|(n, _)| n != name),
            ConfigOp::Workdir(w) => self.workdir = Some(w.clone()),
            ConfigOp::User(u) => self.user = Some(u.clone()),
            ConfigOp::Entrypoint(e) => {
                // As in a Dockerfile: a new entrypoint drops default arguments.
                self.entrypoint = Some(e.clone());
                self.cmd = None;
            }
            ConfigOp::EntrypointKeepingArgs(e) => self.entrypoint = Some(e.clone()),
            ConfigOp::Cmd(c) => self.cmd = Some(c.clone()),
            ConfigOp::Label { name, value } => {
                self.labels.insert(name.clone(), value.clone());
            }
            ConfigOp::ExposePort { port, protocol } => {
                let p = format!("{port}/{protocol}");
                if !self.exposed_ports.contains(&p) {
                    self.exposed_ports.push(p);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == ImageConfig::default()
    }

    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl BuildPlan {
    /// Each step's cache key, in order; the last entry is the key of the finished image
    /// (it also covers the smoke test, so an image is only reused once it passed).
    pub fn keys(&self) -> KeyChain {
        KeyChain::for_plan(self)
    }
}

/// `${NAME}` and `$NAME` replaced from `env` (unset names become empty), as a shell would.
fn expand_vars(value: &str, env: &[(String, String)]) -> String {
    let lookup = |name: &str| {
        env.iter()
            .find(|(n, _)| n == name)
            .map_or(String::new(), |(_, v)| v.clone())
    };
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(braced) = after.strip_prefix('{') {
            if let Some(end) = braced.find('}') {
                out.push_str(&lookup(&braced[..end]));
                rest = &braced[end + 1..];
                continue;
            }
        }
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if len == 0 {
            out.push('$');
        } else {
            out.push_str(&lookup(&after[..len]));
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str, value: &str, expand: bool) -> ConfigOp {
        ConfigOp::Env {
            name: name.into(),
            value: value.into(),
            expand,
        }
    }

    #[test]
    fn env_expansion_and_removal() {
        let mut c = ImageConfig::default();
        c.apply(&env("A", "1", false));
        c.apply(&env("B", "${A}/x:$A:$NOPE:$", true));
        assert_eq!(c.env_var("B"), Some("1/x:1::$"));
        c.apply(&env("C", "$A", false));
        assert_eq!(c.env_var("C"), Some("$A"));
        c.apply(&ConfigOp::UnsetEnv("A".into()));
        assert_eq!(c.env_var("A"), None);
    }

    #[test]
    fn entrypoint_resets_default_args_unless_kept() {
        let mut c = ImageConfig {
            cmd: Some(vec!["x".into()]),
            ..Default::default()
        };
        c.apply(&ConfigOp::EntrypointKeepingArgs(vec!["e".into()]));
        assert_eq!(c.cmd, Some(vec!["x".into()]));
        c.apply(&ConfigOp::Entrypoint(vec!["e".into()]));
        assert_eq!(c.cmd, None);
    }
}
