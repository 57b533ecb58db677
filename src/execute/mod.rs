//! Runs a build plan on an engine, with content-addressed caching.
//!
//! The plan's steps are grouped into layers: each layer is the config changes and files
//! leading up to (and including) one command, or, at the end, the remaining files and
//! config. A layer's result is tagged `connector-build-cache:<key>` only once it is complete,
//! so an entry exists only for finished work and survives restarts of the tool. The finished
//! image is tagged with the plan's final key only after its smoke test passed: a rebuild with
//! nothing changed is one engine query and a tag, with no container.

pub mod archive;
pub mod cross;
pub mod deps;
pub mod lock;
pub mod network;
pub mod outputs;
pub mod prune;
pub mod remote;
pub mod secrets;
pub mod tools;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::ContainerConfig;
use serde::Serialize;

use self::archive::{ArchiveError, TarBuilder};
use self::network::NetworkSettings;
use self::tools::Tools;
use crate::clock::{duration_ms, unix_now};
use crate::engine::{ContainerSpec, Engine, EngineError, ImageInfo, RunOutput};
use crate::plan::{
    Action, Base, BuildPlan, CacheKey, ConfigOp, FileEntry, ImageConfig, KeyChain, Run, SmokeTest,
    Step, SCRATCH_DIR,
};
use crate::platform::Platform;
use crate::progress::{Event, Reporter};

pub const CACHE_REPOSITORY: &str = "connector-build-cache";

/// `$XDG_CACHE_HOME/connector-build` (default `~/.cache/connector-build`): what this user's
/// builds keep outside the engine.
pub fn user_cache_dir() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    Some(base.join("connector-build"))
}

pub fn cache_ref(key: &CacheKey) -> String {
    format!("{CACHE_REPOSITORY}:{}", key.0)
}

/// Attempts at a command whose failure looks like a passing network problem.
const NETWORK_ATTEMPTS: u32 = 3;

/// Whether a failed command's output shows a network problem that may pass (DNS, resets,
/// timeouts), as apt, pip and uv word them.
fn is_transient_network_failure(failure: &StepFailure) -> bool {
    let text = format!("{}\n{}", failure.stdout, failure.stderr).to_lowercase();
    TRANSIENT_NETWORK_SIGNS.iter().any(|s| text.contains(s))
}

pub(crate) const TRANSIENT_NETWORK_SIGNS: &[&str] = &[
    "temporary failure in name resolution",
    "temporary failure resolving",
    "failed to lookup address",
    "dns error",
    "could not resolve host",
    "connection reset by peer",
    "connection timed out",
    "read timed out",
    "max retries exceeded",
    "error sending request for url",
    "could not connect to",
];

/// How many output lines an error shows.
const TAIL_LINES: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub name: String,
    pub cached: bool,
    /// Wall-clock start, seconds since the Unix epoch, so steps of different connectors can
    /// be drawn on one time axis.
    pub started_at: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildOutcome {
    pub connector: String,
    pub tag: String,
    pub image_id: String,
    pub size: i64,
    pub base_digest: Option<String>,
    pub cache_key: String,
    pub steps: Vec<StepReport>,
    /// Containers started for this build (0 when everything came from cache).
    pub containers_started: usize,
    /// How the dependency layer was made when it was not in the cache: a clean install, a
    /// delta on the previous one, or the existing one rebased on a new base (with why not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependency_layer: Option<String>,
    pub seconds: f64,
    /// For a platform that is not the engine's: how each install step ran (natively, or
    /// under emulation and why).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cross: Vec<cross::CrossStep>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the base image {reference} has no {wanted} image (the engine got {actual})\nhint: use a multi-platform base image, or build for the platforms it has")]
    WrongPlatform {
        reference: String,
        wanted: Platform,
        actual: String,
    },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    StepFailed(Box<StepFailure>),
    #[error("step `{step}` cannot be built: {reason}")]
    Unsupported { step: String, reason: String },
    #[error("smoke test failed: `{command}` {reason}; the image was not tagged{}", tail(.output))]
    SmokeTest {
        command: String,
        reason: String,
        output: Vec<String>,
    },
    /// A failure of one platform's image in a build for a platform that is not the engine's.
    #[error("the {platform} image failed to build (its commands ran under QEMU)")]
    OnPlatform {
        platform: Platform,
        #[source]
        source: Box<BuildError>,
    },
}

impl BuildError {
    /// The failure itself, under any [`BuildError::OnPlatform`] naming where it happened.
    pub fn cause(&self) -> &BuildError {
        match self {
            BuildError::OnPlatform { source, .. } => source.cause(),
            e => e,
        }
    }
}

/// A command that ended with an exit code its step does not accept.
#[derive(Debug, thiserror::Error)]
#[error("step `{step}` failed: `{command}` exited with code {exit_code}{}", tail(.output))]
pub struct StepFailure {
    pub step: String,
    pub command: String,
    pub exit_code: i64,
    /// The last lines of output, for messages.
    pub output: Vec<String>,
    /// The whole output, for build customizations that catch the failure.
    pub stdout: String,
    pub stderr: String,
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n  last lines of output:");
    for l in lines {
        s.push_str("\n    ");
        s.push_str(l);
    }
    s
}

fn last_lines(output: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// What building a plan's layers left.
struct Layered {
    image: ImageInfo,
    /// Output of the last layer's command, when it ran in this build.
    last_output: Option<RunOutput>,
    containers_started: usize,
    /// The last layer's cache entry, held back until the image is verified.
    unverified: Option<String>,
    /// How the dependency layer was made, when it was built.
    dependency_layer: Option<String>,
    cross: Vec<cross::CrossStep>,
}

/// Where a step's result goes: committed from its own container, or copied into a
/// container of `parent` (the target platform's) and committed from there.
struct Graft {
    parent: String,
    platform: Platform,
    mounts: Vec<String>,
}

/// A run of steps committed as one image.
struct Layer<'p> {
    steps: &'p [Step],
    /// Index of the last step, whose key names the layer's cache entry.
    last: usize,
}

fn layers(steps: &[Step]) -> Vec<Layer<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, s) in steps.iter().enumerate() {
        if matches!(s.action, Action::Run(_)) {
            out.push(Layer {
                steps: &steps[start..=i],
                last: i,
            });
            start = i + 1;
        }
    }
    if start < steps.len() {
        out.push(Layer {
            steps: &steps[start..],
            last: steps.len() - 1,
        });
    }
    out
}

impl Layer<'_> {
    /// The name shown for the layer: its command's, else its first files step's.
    fn name(&self) -> String {
        self.steps
            .iter()
            .rev()
            .find(|s| !matches!(s.action, Action::Config(_)))
            .or(self.steps.last())
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }
}

/// The step names a plan's progress goes through, in order.
pub fn progress_steps(plan: &BuildPlan) -> Vec<String> {
    let mut names = vec!["base image".to_string()];
    names.extend(layers(&plan.steps).iter().map(Layer::name));
    if plan.smoke_test.is_some() {
        names.push("smoke test".into());
    }
    names
}

pub struct Builder<'a> {
    pub engine: &'a Engine,
    pub network: &'a NetworkSettings,
    pub tools: &'a Tools,
    pub reporter: &'a dyn Reporter,
    /// The registry cache, when `--cache-registry` gave one.
    pub remote: Option<&'a remote::RemoteCache>,
    /// Whether a dependency layer may be reused on a new base (`--rebase`).
    pub rebase: bool,
}

struct Progress<'a> {
    connector: &'a str,
    reporter: &'a dyn Reporter,
    steps: Vec<StepReport>,
}

impl Progress<'_> {
    fn start(&self, step: &str) -> (Instant, f64) {
        self.reporter.report(Event::StepStarted {
            connector: self.connector.into(),
            step: step.into(),
        });
        (Instant::now(), unix_now())
    }

    fn finish(&mut self, step: &str, (started, started_at): (Instant, f64), cached: bool) {
        let duration = started.elapsed();
        self.reporter.report(Event::StepFinished {
            connector: self.connector.into(),
            step: step.into(),
            cached,
            duration,
        });
        self.steps.push(StepReport {
            name: step.into(),
            cached,
            started_at: (started_at * 1000.0).round() / 1000.0,
            seconds: duration_ms(duration),
        });
    }
}

impl Builder<'_> {
    pub async fn build(&self, plan: &BuildPlan) -> Result<BuildOutcome, BuildError> {
        let started = Instant::now();
        let keys = plan.keys();
        let mut progress = Progress {
            connector: &plan.connector,
            reporter: self.reporter,
            steps: Vec::new(),
        };
        let base_digest = match &plan.base {
            Base::Image { digest, .. } => digest.clone(),
            Base::Dockerfile { .. } => None,
        };

        // Another build of this very image on this engine (another process, or another
        // connector of this run with the same key) finishes first; its result is then reused.
        let _lock = lock::acquire(self.engine.host(), &keys.image.0).await;

        // The no-op path: one query, one tag, no container; on an engine without the entry,
        // a pull from the registry cache and a tag.
        let done = match self.engine.inspect_image(&cache_ref(&keys.image)).await? {
            Some(done) => Some(done),
            None => match keys.steps.last() {
                Some(last) => self.fetch_remote(plan, &keys.image, last).await,
                None => None,
            },
        };
        if let Some(done) = done {
            tracing::debug!(connector = %plan.connector, key = %keys.image, "finished image in cache");
            for name in progress_steps(plan) {
                let t = progress.start(&name);
                progress.finish(&name, t, true);
            }
            self.engine.tag(&done.id, &plan.output_tag).await?;
            self.remember_dependency_layer(plan, &keys, None).await?;
            return Ok(BuildOutcome {
                connector: plan.connector.clone(),
                tag: plan.output_tag.clone(),
                image_id: done.id,
                size: done.size,
                base_digest,
                cache_key: keys.image.0.clone(),
                steps: progress.steps,
                containers_started: 0,
                dependency_layer: None,
                seconds: duration_ms(started.elapsed()),
                cross: if plan.platform.is_some() {
                    layers(&plan.steps)
                        .iter()
                        .filter_map(|l| cross::recall(&keys.steps[l.last]))
                        .collect()
                } else {
                    vec![]
                },
            });
        }

        // The last layer's cache entry waits for the smoke test, so a candidate that fails it
        // is neither reused nor kept.
        let Layered {
            image,
            unverified,
            mut containers_started,
            dependency_layer,
            cross,
            ..
        } = self
            .run_layers(plan, &keys, &mut progress, plan.smoke_test.is_some(), false)
            .await?;

        if let Some(test) = &plan.smoke_test {
            let t = progress.start("smoke test");
            containers_started += 1;
            if let Err(e) = self.smoke_test(&image, test, plan.platform).await {
                if unverified.is_some() || matches!(plan.base, Base::Dockerfile { .. }) {
                    let _ = self.engine.remove_image(&image.id).await;
                }
                return Err(e);
            }
            progress.finish("smoke test", t, false);
        }
        // Three names of one image: asked at once, not one round trip after another.
        let final_entry = cache_ref(&keys.image);
        let names = unverified
            .iter()
            .chain([&final_entry, &plan.output_tag])
            .map(|name| self.engine.tag(&image.id, name));
        futures_util::future::try_join_all(names).await?;
        // Pushed only now, verified, as the engine's entries are tagged only now.
        if unverified.is_some() {
            if let Some(last) = keys.steps.last() {
                self.store_remote(plan, &image.id, last).await;
            }
        }
        self.store_remote(plan, &image.id, &keys.image).await;
        Ok(BuildOutcome {
            connector: plan.connector.clone(),
            tag: plan.output_tag.clone(),
            image_id: image.id,
            size: image.size,
            base_digest,
            cache_key: keys.image.0.clone(),
            steps: progress.steps,
            containers_started,
            dependency_layer,
            seconds: duration_ms(started.elapsed()),
            cross,
        })
    }

    /// Builds a plan's steps without smoke test or output tag, for a build customization
    /// that asks about its container. With `capture`, the last layer runs even when cached,
    /// so the output of its command can be returned.
    pub async fn evaluate(
        &self,
        plan: &BuildPlan,
        capture: bool,
    ) -> Result<(ImageInfo, Option<RunOutput>), BuildError> {
        let keys = plan.keys();
        let mut progress = Progress {
            connector: &plan.connector,
            reporter: self.reporter,
            steps: Vec::new(),
        };
        // A command's output is determined by its key, like its layer: while the layer is
        // cached, the output remembered with it answers without running the command again.
        let last_key = keys.steps.last();
        if capture {
            if let Some(key) = last_key {
                if let Some(output) = outputs::load(key) {
                    if let Some(image) = self.engine.inspect_image(&cache_ref(key)).await? {
                        return Ok((image, Some(output)));
                    }
                }
            }
        }
        let layered = self
            .run_layers(plan, &keys, &mut progress, false, capture)
            .await?;
        if let (Some(key), Some(output)) = (last_key, &layered.last_output) {
            outputs::store(key, output);
        }
        Ok((layered.image, layered.last_output))
    }

    async fn run_layers(
        &self,
        plan: &BuildPlan,
        keys: &KeyChain,
        progress: &mut Progress<'_>,
        defer_last_entry: bool,
        capture_last: bool,
    ) -> Result<Layered, BuildError> {
        let mut containers_started = 0;
        let t = progress.start("base image");
        let (mut image, base_cached) = match &plan.base {
            Base::Image {
                reference,
                pull,
                digest,
            } => {
                self.resolve_base(plan, reference, pull, digest.as_deref())
                    .await?
            }
            Base::Dockerfile {
                dockerfile,
                context,
            } => (
                self.build_dockerfile(plan, dockerfile, context).await?,
                false,
            ),
        };
        progress.finish("base image", t, base_cached);
        let base_image = image.clone();

        // Resume after the last layer already in the cache.
        let layers = layers(&plan.steps);
        let searchable = if capture_last {
            layers.len().saturating_sub(1)
        } else {
            layers.len()
        };
        let mut first_missing = 0;
        for (i, layer) in layers[..searchable].iter().enumerate().rev() {
            if let Some(hit) = self
                .engine
                .inspect_image(&cache_ref(&keys.steps[layer.last]))
                .await?
            {
                tracing::debug!(connector = %plan.connector, layer = %layer.name(), key = %keys.steps[layer.last], "resuming after cached layer");
                image = hit;
                first_missing = i + 1;
                break;
            }
        }
        // Layers after the engine's last entry: the latest one the registry cache has.
        if self.remote.is_some() {
            for (i, layer) in layers[..searchable]
                .iter()
                .enumerate()
                .skip(first_missing)
                .rev()
            {
                let key = &keys.steps[layer.last];
                if let Some(hit) = self.fetch_remote(plan, key, key).await {
                    image = hit;
                    first_missing = i + 1;
                    break;
                }
            }
        }
        let mut crossed = Vec::new();
        for layer in &layers[..first_missing] {
            let name = layer.name();
            let t = progress.start(&name);
            progress.finish(&name, t, true);
            if plan.platform.is_some() {
                crossed.extend(cross::recall(&keys.steps[layer.last]));
            }
        }
        if first_missing > 0 {
            self.remember_dependency_layer(plan, keys, Some(&base_image))
                .await?;
        }
        let mut unverified = None;
        let mut last_output = None;
        let mut dependency_layer = None;
        for (i, layer) in layers.iter().enumerate().skip(first_missing) {
            let name = layer.name();
            let t = progress.start(&name);
            tracing::debug!(connector = %plan.connector, layer = %name, key = %keys.steps[layer.last], "building layer");
            let key = &keys.steps[layer.last];
            // Deltas and rebases are for the engine's own platform; another platform's
            // install goes through the cross-platform path of `build_or_run_layer`.
            let dep = match deps::dependency_layer(layer.steps) {
                Some(dep) if self.is_native(plan).await? => Some(dep),
                _ => None,
            };
            let (id, output, note) = match dep {
                Some(dep) => {
                    let (id, output, how) = self
                        .build_dependency_layer(plan, keys, (&base_image, &image), layer, &dep)
                        .await?;
                    dependency_layer = Some(how);
                    (id, output, None)
                }
                _ => {
                    self.build_or_run_layer(plan, &image, layer, key, i == 0, true)
                        .await?
                }
            };
            if let Some(n) = &note {
                cross::remember(key, n);
            }
            crossed.extend(note);
            containers_started += usize::from(output.is_some());
            let entry = cache_ref(key);
            let deferred = i + 1 == layers.len() && defer_last_entry;
            // The entry's tag and the read-back of the layer are independent: at once.
            let (tagged, read) = tokio::join!(
                async {
                    match deferred {
                        true => Ok(()),
                        false => self.engine.tag(&id, &entry).await,
                    }
                },
                self.engine.inspect_image(&id)
            );
            tagged?;
            if deferred {
                unverified = Some(entry);
            } else {
                self.store_remote(plan, &id, key).await;
            }
            image = read?.ok_or_else(|| EngineError::Refused {
                host: self.engine.host().into(),
                action: "read back a committed layer".into(),
                status: 404,
                message: format!("image {id} vanished"),
            })?;
            last_output = output;
            progress.finish(&name, t, false);
        }
        Ok(Layered {
            image,
            last_output,
            containers_started,
            unverified,
            dependency_layer,
            cross: crossed,
        })
    }

    /// The registry cache's entry for `key`, pulled and tagged as the engine's entry.
    async fn fetch_remote(
        &self,
        plan: &BuildPlan,
        key: &CacheKey,
        label_key: &CacheKey,
    ) -> Option<ImageInfo> {
        let remote = self.remote?;
        remote
            .fetch(
                self.engine,
                self.reporter,
                &plan.connector,
                key,
                label_key,
                &cache_ref(key),
            )
            .await
    }

    /// Pushes a completed entry to the registry cache (readwrite mode).
    async fn store_remote(&self, plan: &BuildPlan, image: &str, key: &CacheKey) {
        if let Some(remote) = self.remote {
            remote
                .store(self.engine, self.reporter, &plan.connector, image, key)
                .await;
        }
    }

    /// The base image by digest: used as is when the engine has it (offline builds work),
    /// pulled otherwise, and checked against the digest either way.
    async fn resolve_base(
        &self,
        plan: &BuildPlan,
        reference: &str,
        pull: &str,
        digest: Option<&str>,
    ) -> Result<(ImageInfo, bool), BuildError> {
        // With a platform, the engine's image must be that platform's: a multi-platform
        // reference names one image at a time in the engine, the last one pulled.
        let held = self
            .engine
            .inspect_image(pull)
            .await?
            .filter(|i| plan.platform.is_none() || i.platform() == plan.platform);
        let (info, cached) =
            match held {
                Some(info) => (info, true),
                None => {
                    let connector = plan.connector.clone();
                    let reporter = self.reporter;
                    self.engine
                        .pull_for(pull, plan.platform, |line| {
                            reporter.report(Event::Output {
                                connector: connector.clone(),
                                line: line.to_string(),
                            })
                        })
                        .await
                        .map_err(|e| match e {
                            EngineError::Pull {
                                reference: r,
                                message,
                            } if through_mirror(pull, reference) => EngineError::Pull {
                                reference: format!("{r} (the mirror's copy of {reference})"),
                                message,
                            },
                            e => e,
                        })?;
                    let info = self.engine.inspect_image(pull).await?.ok_or_else(|| {
                        EngineError::Pull {
                            reference: pull.into(),
                            message: "the engine does not have the image after pulling it".into(),
                        }
                    })?;
                    (info, false)
                }
            };
        if let Some(wanted) = plan.platform.filter(|p| info.platform() != Some(*p)) {
            return Err(BuildError::WrongPlatform {
                reference: reference.into(),
                wanted,
                actual: format!("{}/{}", info.os, info.architecture),
            });
        }
        if let Some(digest) = digest {
            let matches = info
                .repo_digests
                .iter()
                .any(|d| d.rsplit_once('@').is_some_and(|(_, x)| x == digest));
            if !matches {
                return Err(EngineError::DigestMismatch {
                    reference: reference.into(),
                    expected: digest.into(),
                    actual: if info.repo_digests.is_empty() {
                        "none".into()
                    } else {
                        info.repo_digests.join(", ")
                    },
                }
                .into());
            }
        }
        Ok((info, cached))
    }

    async fn build_dockerfile(
        &self,
        plan: &BuildPlan,
        dockerfile: &str,
        context: &[FileEntry],
    ) -> Result<ImageInfo, BuildError> {
        let mut tar = TarBuilder::new();
        tar.add_entries(&plan.context_dir, "", context)?;
        let connector = plan.connector.clone();
        let reporter = self.reporter;
        let id = self
            .engine
            .build_dockerfile(tar.finish()?, dockerfile, |line| {
                reporter.report(Event::Output {
                    connector: connector.clone(),
                    line: line.to_string(),
                })
            })
            .await?;
        Ok(self
            .engine
            .inspect_image(&id)
            .await?
            .ok_or_else(|| EngineError::DockerfileBuild {
                message: format!("built image {id} is missing"),
                log: vec![],
            })?)
    }

    /// Whether the plan builds for the engine's own platform (no emulation, no cross install).
    async fn is_native(&self, plan: &BuildPlan) -> Result<bool, BuildError> {
        Ok(match plan.platform {
            None => true,
            Some(p) => self.engine.platform().await? == p,
        })
    }

    /// Builds one layer on `parent` (on the engine's platform); returns the new image id and
    /// the output of its command when one ran.
    async fn build_layer(
        &self,
        plan: &BuildPlan,
        parent: &ImageInfo,
        layer: &Layer<'_>,
        key: &CacheKey,
    ) -> Result<(String, Option<RunOutput>), BuildError> {
        let (id, output, _) = self
            .build_or_run_layer(plan, parent, layer, key, false, true)
            .await?;
        Ok((id, output))
    }

    /// `build_layer` for the plan's platform, also saying how a foreign platform's install
    /// step ran (`first`: the plan's first layer, whose parent is the base image); with
    /// `commit` false only its command runs (for what it prints) and the id is empty.
    async fn build_or_run_layer(
        &self,
        plan: &BuildPlan,
        parent: &ImageInfo,
        layer: &Layer<'_>,
        key: &CacheKey,
        first: bool,
        commit: bool,
    ) -> Result<(String, Option<RunOutput>, Option<cross::CrossStep>), BuildError> {
        let mut config = config_of(parent);
        let mut files = TarBuilder::new();
        let mut has_files = false;
        let mut run: Option<(&Step, &Run)> = None;
        for step in layer.steps {
            match &step.action {
                Action::Config(ConfigOp::UnsetEnv(name))
                    if parent
                        .env
                        .iter()
                        .any(|e| e.split('=').next() == Some(name.as_str())) =>
                {
                    return Err(BuildError::Unsupported {
                        step: step.name.clone(),
                        reason: format!("`{name}` comes from an earlier layer, and the Docker engine cannot remove an inherited variable\nhint: set it to an empty value instead"),
                    });
                }
                Action::Config(op) => config.apply(op),
                Action::Files {
                    dest,
                    files: entries,
                } => {
                    files.add_entries(&plan.context_dir, dest, entries)?;
                    has_files = true;
                }
                Action::Run(r) => run = Some((step, r)),
            }
        }
        let files = files.finish()?;
        label_entry(&mut config, &plan.connector, key);

        let mut spec = container_spec(&parent.id, plan.platform, &config);
        let mut secrets = None;
        let mut unchecked_tools = Vec::new();
        let scratch = match run {
            Some((step, r)) => {
                let with_cli_secrets = gets_secrets(step, r) && !self.network.secrets().is_empty();
                if with_cli_secrets || !r.secrets.is_empty() {
                    spec.volumes
                        .push((String::new(), secrets::SECRETS_DIR.to_string()));
                    secrets = Some(self.secrets_archive(with_cli_secrets, &r.secrets)?);
                }
                // The command replaces the image's entrypoint for this step only (prefixing
                // it when asked to use it); the commit below restores the configured one.
                spec.entrypoint = Some(vec![]);
                spec.cmd = Some(wrap_command(
                    r,
                    secrets::wrap(
                        &r.secrets,
                        r.argv(config.entrypoint.as_deref().unwrap_or_default()),
                    ),
                ));
                if needs_scratch(r) {
                    spec.volumes.push((String::new(), SCRATCH_DIR.to_string()));
                }
                for c in &r.caches {
                    self.engine.ensure_volume(&c.volume).await?;
                    spec.volumes.push((c.volume.clone(), c.target.clone()));
                }
                for mount in &r.tools {
                    let Some(tool) = self.tools.by_identity(&mount.name, &mount.identity) else {
                        return Err(BuildError::Unsupported {
                            step: layer.name(),
                            reason: format!("it needs {} ({}), which this machine does not have\nhint: run the set-up command, or pass --installer pip", mount.name, mount.identity),
                        });
                    };
                    // Whether the volume is complete is asked of the step's own container
                    // below: no helper container on an engine prepared before.
                    if !self.engine.program_volume_ready(&tool.volume()) {
                        // Made here, labelled, rather than implicitly by the mount.
                        self.engine.ensure_volume(&tool.volume()).await?;
                        unchecked_tools.push((tool, mount.dir.clone()));
                    }
                    spec.readonly_volumes
                        .push((tool.volume(), mount.dir.clone()));
                }
                Some(self.scratch_archive(r)?)
            }
            None => {
                spec.entrypoint = config.entrypoint.clone();
                spec.cmd = config.cmd.clone();
                None
            }
        };

        let files = has_files.then_some(files);
        let volumes = (scratch, secrets);
        let mut note = None;
        if let (Some(target), Some((step, r))) = (plan.platform, run) {
            if cross::is_uv_install(r) {
                let own = self.engine.platform().await?;
                if target != own && cross::emulation_forced() {
                    note = Some(cross::CrossStep::emulated(
                        &step.name,
                        format!("{}=1", cross::EMULATE_ENV),
                        vec![],
                    ));
                } else if target != own {
                    let native = self
                        .native_install(plan, (step, r), &spec, &config, target, own, first)
                        .await?;
                    match native {
                        Ok((native_spec, native_run)) => {
                            let graft = Graft {
                                parent: parent.id.clone(),
                                platform: target,
                                mounts: spec
                                    .volumes
                                    .iter()
                                    .chain(&spec.readonly_volumes)
                                    .map(|(_, t)| t.clone())
                                    .collect(),
                            };
                            let tools = unchecked_tools.clone();
                            let done = self
                                .attempts(
                                    plan,
                                    &native_spec,
                                    tools,
                                    &files,
                                    &volumes,
                                    Some((step, &native_run)),
                                    (&config, commit),
                                    Some(&graft),
                                )
                                .await;
                            match done {
                                Ok((id, out)) => {
                                    let note = cross::CrossStep {
                                        step: step.name.clone(),
                                        native: true,
                                        reason: None,
                                        packages: vec![],
                                    };
                                    return Ok((id, out, Some(note)));
                                }
                                Err(BuildError::StepFailed(f)) => {
                                    let text = format!("{}{}", f.stdout, f.stderr);
                                    let packages = cross::packages_without_wheels(&text);
                                    if packages.is_empty()
                                        && !text.contains("from source is disabled")
                                    {
                                        return Err(BuildError::StepFailed(f));
                                    }
                                    note = Some(cross::CrossStep::emulated(
                                        &step.name,
                                        "some distributions have no wheel for the platform and must be built on it",
                                        packages,
                                    ));
                                }
                                Err(BuildError::Unsupported { reason, .. }) => {
                                    note = Some(cross::CrossStep::emulated(
                                        &step.name,
                                        reason,
                                        vec![],
                                    ));
                                }
                                Err(e) => return Err(e),
                            }
                        }
                        Err(reason) => {
                            note = Some(cross::CrossStep::emulated(&step.name, reason, vec![]));
                        }
                    }
                    if let Some(n) = &note {
                        self.reporter.report(Event::Output {
                            connector: plan.connector.clone(),
                            line: format!(
                                "{}: under emulation: {}{}",
                                n.step,
                                n.reason.as_deref().unwrap_or_default(),
                                if n.packages.is_empty() {
                                    String::new()
                                } else {
                                    format!(" ({})", n.packages.join(", "))
                                }
                            ),
                        });
                    }
                }
            }
        }
        let (id, out) = self
            .attempts(
                plan,
                &spec,
                unchecked_tools,
                &files,
                &volumes,
                run,
                (&config, commit),
                None,
            )
            .await?;
        Ok((id, out, note))
    }

    /// How a foreign platform's uv install runs natively: the container spec on the base
    /// image's engine-platform counterpart and the uv command for the target; `Err(reason)`
    /// when it cannot (see [`cross`]).
    #[allow(clippy::too_many_arguments)]
    async fn native_install(
        &self,
        plan: &BuildPlan,
        (step, run): (&Step, &Run),
        spec: &ContainerSpec,
        config: &ImageConfig,
        target: Platform,
        own: Platform,
        first: bool,
    ) -> Result<Result<(ContainerSpec, Run), String>, BuildError> {
        if !first {
            return Ok(Err(format!(
                "`{}` follows other layers, which would have to be built for {own} too",
                step.name
            )));
        }
        let Some(native) = cross::native_base(self.engine, plan, own).await? else {
            return Ok(Err(format!(
                "the base image has no {own} image to install on"
            )));
        };
        let Base::Image { pull, .. } = &plan.base else {
            return Ok(Err("the base is a Dockerfile".into()));
        };
        let theirs = cross::probe(self.engine, pull, target).await?;
        let mine = cross::probe(self.engine, &native.id, own).await?;
        let (Some(theirs), Some(mine)) = (theirs, mine) else {
            return Ok(Err("the base images' Python could not be probed".into()));
        };
        if theirs.version != mine.version || theirs.paths != mine.paths {
            return Ok(Err(format!(
                "the {own} base image has another Python ({} at {}) than the {target} one ({} at {})",
                mine.version,
                mine.paths.replace('\n', ", "),
                theirs.version,
                theirs.paths.replace('\n', ", ")
            )));
        }
        let mut native_run = run.clone();
        native_run.args = cross::native_args(&run.args, target, &theirs);
        let mut native_spec = spec.clone();
        native_spec.image = native.id.clone();
        native_spec.platform = Some(own);
        native_spec.cmd = Some(wrap_command(
            &native_run,
            native_run.argv(config.entrypoint.as_deref().unwrap_or_default()),
        ));
        Ok(Ok((native_spec, native_run)))
    }

    /// Creates the step's container and fills, runs and commits it (into `graft`'s parent
    /// when given), trying again on a network hiccup.
    #[allow(clippy::too_many_arguments)]
    async fn attempts(
        &self,
        plan: &BuildPlan,
        spec: &ContainerSpec,
        mut unchecked_tools: Vec<(&tools::Tool, String)>,
        files: &Option<Vec<u8>>,
        volumes: &(Option<Option<Vec<u8>>>, Option<Vec<u8>>),
        run: Option<(&Step, &Run)>,
        (config, commit): (&ImageConfig, bool),
        graft: Option<&Graft>,
    ) -> Result<(String, Option<RunOutput>), BuildError> {
        let mut attempt = 1;
        loop {
            let mut container = self.engine.create_container(spec).await?;
            if !unchecked_tools.is_empty() {
                container = self
                    .ready_program_volumes(spec, container, &spec.image, &unchecked_tools)
                    .await?;
                unchecked_tools.clear();
            }
            let result = self
                .fill_run_commit(
                    &container,
                    files.clone(),
                    volumes.clone(),
                    run,
                    (config, commit),
                    graft,
                )
                .await;
            match result {
                // Each attempt starts from the same parent in a new container, so running the
                // command again is safe; only network hiccups are worth it.
                Err(BuildError::StepFailed(failure))
                    if attempt < NETWORK_ATTEMPTS && is_transient_network_failure(&failure) =>
                {
                    self.engine.remove_container(&container).await?;
                    self.reporter.report(Event::Warning {
                        connector: plan.connector.clone(),
                        message: format!(
                            "`{}` hit a network error ({}); trying again ({} of {NETWORK_ATTEMPTS})",
                            failure.command,
                            failure.output.last().map_or("", String::as_str),
                            attempt + 1
                        ),
                    });
                    tokio::time::sleep(Duration::from_secs(3 * attempt as u64)).await;
                    attempt += 1;
                }
                // Removed whatever happened, so failed steps leave nothing behind; the next
                // step does not wait for it when the engine defers removals.
                result => {
                    let removed = self.engine.discard_container(&container).await;
                    let built = result?;
                    removed?;
                    return Ok(built);
                }
            }
        }
    }

    /// Copies what `container` changed into a new container of the graft's parent (for its
    /// platform) and commits that one: the step's layer for the target platform.
    async fn graft(
        &self,
        container: &str,
        g: &Graft,
        run: Option<(&Step, &Run)>,
        config: &ImageConfig,
    ) -> Result<String, BuildError> {
        let changes = self.engine.changes(container).await?;
        let paths = cross::graft_paths(&changes, &g.mounts);
        let mut spec = ContainerSpec {
            entrypoint: config.entrypoint.clone(),
            cmd: config.cmd.clone(),
            ..container_spec(&g.parent, Some(g.platform), config)
        };
        if !paths.delete.is_empty() {
            // What the install removed (a distribution the base has, replaced): `rm` on the
            // target (under emulation, one short process), as the archive API cannot delete.
            spec.entrypoint = Some(vec![]);
            spec.cmd = Some(
                ["rm", "-rf", "--"]
                    .iter()
                    .map(|s| s.to_string())
                    .chain(paths.delete.iter().cloned())
                    .collect(),
            );
            spec.network_disabled = true;
        }
        let target = self.engine.create_container(&spec).await?;
        let copied = async {
            cross::copy_paths(self.engine, container, &target, &paths.copy).await?;
            if !paths.delete.is_empty() {
                let out = self.engine.run(&target).await?;
                if out.exit_code != 0 {
                    return Err(BuildError::Unsupported {
                        step: run.map(|(s, _)| s.name.clone()).unwrap_or_default(),
                        reason: format!(
                            "removing what the install replaced failed: {}",
                            out.stderr.trim()
                        ),
                    });
                }
            }
            Ok(self.engine.commit(&target, commit_config(config)).await?)
        };
        let id = copied.await;
        let removed = self.engine.discard_container(&target).await;
        let id = id?;
        removed?;
        Ok(id)
    }

    /// Makes sure the program volumes `container` mounts are complete: asked of `container`
    /// itself; when one is not, it is filled (with a helper container, which needs it
    /// writable) and the step's container made again. Returns the container to use.
    async fn ready_program_volumes(
        &self,
        spec: &ContainerSpec,
        container: String,
        helper_image: &str,
        tools: &[(&tools::Tool, String)],
    ) -> Result<String, BuildError> {
        let mut missing = Vec::new();
        for (tool, dir) in tools {
            if !self
                .engine
                .note_program_volume(&container, &tool.volume(), dir)
                .await
            {
                missing.push(*tool);
            }
        }
        if missing.is_empty() {
            return Ok(container);
        }
        self.engine.remove_container(&container).await?;
        for tool in missing {
            self.engine
                .ensure_program_volume(&tool.volume(), &tool.name, &tool.path, helper_image)
                .await?;
        }
        Ok(self.engine.create_container(spec).await?)
    }

    fn scratch_archive(&self, run: &Run) -> Result<Option<Vec<u8>>, BuildError> {
        if !needs_scratch(run) {
            return Ok(None);
        }
        let mut tar = TarBuilder::new();
        let mut files = if run.network.is_some() {
            self.network.files(&run.build_env)
        } else {
            network::NetworkSettings::default().files(&run.build_env)
        };
        files.extend(
            run.scratch_files
                .iter()
                .map(|f| (f.name.clone(), f.contents.clone().into_bytes())),
        );
        for (name, bytes) in files {
            tar.add_bytes(&name, &bytes, 0o600)?;
        }
        Ok(Some(tar.finish()?))
    }

    /// The `--secret`s (with `cli`) as files named by their ids, readable by root only
    /// (BuildKit's default), and a build customization's, which the command's wrapper copies
    /// to their paths as the command's user.
    fn secrets_archive(
        &self,
        cli: bool,
        hook: &[crate::plan::SecretUse],
    ) -> Result<Vec<u8>, BuildError> {
        let mut tar = TarBuilder::new();
        if cli {
            for secret in self.network.secrets() {
                tar.add_bytes(&secret.id, secret.value(), 0o400)?;
            }
        }
        for (i, s) in hook.iter().enumerate() {
            let name = format!("{}/{i}", secrets::HOOK_SECRETS);
            tar.add_bytes(&name, s.value.expose().as_bytes(), 0o444)?;
        }
        Ok(tar.finish()?)
    }

    /// The secret values a command's output must not show.
    fn secret_values<'r>(&'r self, step: &Step, run: &'r Run) -> Vec<&'r [u8]> {
        let mut values: Vec<&[u8]> = run
            .secrets
            .iter()
            .map(|s| s.value.expose().as_bytes())
            .collect();
        if gets_secrets(step, run) {
            values.extend(self.network.secrets().iter().map(|s| s.value()));
        }
        values
    }

    /// `volumes`: the scratch archive (when the step has one) and the secrets archive, each
    /// uploaded to its volume.
    async fn fill_run_commit(
        &self,
        container: &str,
        files: Option<Vec<u8>>,
        volumes: (Option<Option<Vec<u8>>>, Option<Vec<u8>>),
        run: Option<(&Step, &Run)>,
        (config, commit): (&ImageConfig, bool),
        graft: Option<&Graft>,
    ) -> Result<(String, Option<RunOutput>), BuildError> {
        let (scratch, secrets) = volumes;
        if let Some(tar) = files {
            self.engine.upload(container, tar).await?;
        }
        if let Some(Some(tar)) = scratch {
            self.engine.upload_to(container, SCRATCH_DIR, tar).await?;
        }
        if let Some(tar) = secrets {
            self.engine
                .upload_to(container, secrets::SECRETS_DIR, tar)
                .await?;
        }
        let mut output = None;
        if let Some((step, r)) = run {
            let mut out = self.engine.run(container).await?;
            let hidden = self.secret_values(step, r);
            if !hidden.is_empty() {
                out.stdout = secrets::scrub(&out.stdout, &hidden);
                out.stderr = secrets::scrub(&out.stderr, &hidden);
            }
            tracing::debug!(container, exit_code = out.exit_code, step = %step.name, "command finished");
            if !r.expect.accepts(out.exit_code) {
                let mut combined = out.stdout.clone();
                combined.push_str(&out.stderr);
                return Err(BuildError::StepFailed(Box::new(StepFailure {
                    step: step.name.clone(),
                    command: r.args.join(" "),
                    exit_code: out.exit_code,
                    output: last_lines(&combined, TAIL_LINES),
                    stdout: out.stdout,
                    stderr: out.stderr,
                })));
            }
            output = Some(out);
        }
        let id = match graft {
            _ if !commit => String::new(),
            None => self.engine.commit(container, commit_config(config)).await?,
            Some(g) => self.graft(container, g, run, config).await?,
        };
        Ok((id, output))
    }

    async fn smoke_test(
        &self,
        image: &ImageInfo,
        test: &SmokeTest,
        platform: Option<Platform>,
    ) -> Result<(), BuildError> {
        let command = format!(
            "{} {}",
            image.entrypoint.clone().unwrap_or_default().join(" "),
            test.args.join(" ")
        )
        .trim()
        .to_string();
        let spec = ContainerSpec {
            image: image.id.clone(),
            cmd: Some(test.args.clone()),
            entrypoint: image.entrypoint.clone(),
            env: image.env.clone(),
            workdir: image.workdir.clone(),
            user: image.user.clone(),
            // `spec` needs no network; cutting it makes the check hermetic.
            network_disabled: true,
            // Under emulation when the platform is not the engine's.
            platform,
            ..Default::default()
        };
        let container = self.engine.create_container(&spec).await?;
        let result = self.engine.run(&container).await;
        let removed = self.engine.discard_container(&container).await;
        let out = result?;
        removed?;
        let found = out.stdout.lines().any(|line| {
            serde_json::from_str::<serde_json::Value>(line.trim())
                .ok()
                .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
                .is_some_and(|t| t == test.expect_message_type)
        });
        let mut combined = out.stdout.clone();
        combined.push_str(&out.stderr);
        if out.exit_code != 0 {
            return Err(BuildError::SmokeTest {
                command,
                reason: format!("exited with code {}", out.exit_code),
                output: last_lines(&combined, TAIL_LINES),
            });
        }
        if !found {
            return Err(BuildError::SmokeTest {
                command,
                reason: format!(
                    "printed no JSON line with \"type\": \"{}\"",
                    test.expect_message_type
                ),
                output: last_lines(&combined, TAIL_LINES),
            });
        }
        Ok(())
    }
}

/// Whether `pull` is `reference` rewritten to a mirror (another registry).
fn through_mirror(pull: &str, reference: &str) -> bool {
    let registry = |r: &str| crate::model::ImageRef::parse(r).map(|i| i.registry).ok();
    registry(pull) != registry(reference)
}

/// Install steps and build customization commands get the `--secret`s; nothing else does
/// (not the smoke test, not a Dockerfile's RUN).
fn gets_secrets(step: &Step, run: &Run) -> bool {
    run.network.is_some() || crate::plan::is_hook_command(step)
}

fn needs_scratch(run: &Run) -> bool {
    run.network.is_some() || !run.build_env.is_empty() || !run.scratch_files.is_empty()
}

/// Commands that get build-only settings source them from the scratch volume first.
fn wrap_command(run: &Run, argv: Vec<String>) -> Vec<String> {
    if !needs_scratch(run) {
        return argv;
    }
    let mut cmd = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        format!(". {SCRATCH_DIR}/{} && exec \"$@\"", network::ENV_FILE),
        "sh".to_string(),
    ];
    cmd.extend(argv);
    cmd
}

/// A container of `image` with the layer's configuration (what its commit keeps).
fn container_spec(image: &str, platform: Option<Platform>, config: &ImageConfig) -> ContainerSpec {
    ContainerSpec {
        image: image.to_string(),
        platform,
        env: env_list(&config.env),
        workdir: config.workdir.clone(),
        user: config.user.clone(),
        labels: config.labels.clone().into_iter().collect(),
        exposed_ports: config.exposed_ports.clone(),
        ..Default::default()
    }
}

fn config_of(image: &ImageInfo) -> ImageConfig {
    ImageConfig {
        env: image
            .env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect(),
        workdir: image.workdir.clone(),
        user: image.user.clone(),
        entrypoint: image.entrypoint.clone(),
        cmd: image.cmd.clone(),
        labels: image.labels.clone().into_iter().collect(),
        exposed_ports: image.exposed_ports.clone(),
    }
}

fn env_list(env: &[(String, String)]) -> Vec<String> {
    env.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn commit_config(config: &ImageConfig) -> ContainerConfig {
    ContainerConfig {
        env: Some(env_list(&config.env)),
        entrypoint: config.entrypoint.clone(),
        cmd: config.cmd.clone(),
        working_dir: config.workdir.clone(),
        user: config.user.clone(),
        labels: Some(config.labels.clone().into_iter().collect::<HashMap<_, _>>()),
        exposed_ports: (!config.exposed_ports.is_empty()).then(|| config.exposed_ports.clone()),
        ..Default::default()
    }
}

/// What a registry cache checks a pulled entry against, and what `cache prune` groups entries
/// by; each layer's labels replace the inherited ones.
fn label_entry(config: &mut ImageConfig, connector: &str, key: &CacheKey) {
    config
        .labels
        .insert(remote::KEY_LABEL.into(), key.0.clone());
    config
        .labels
        .insert(remote::CONNECTOR_LABEL.into(), connector.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{CacheMount, ConfigOp, ScratchFile};

    fn run_step(name: &str) -> Step {
        Step {
            name: name.into(),
            action: Action::Run(Run {
                args: vec!["true".into()],
                scratch_files: vec![],
                network: None,
                caches: vec![],
                build_env: vec![],
                use_entrypoint: false,
                expect: Default::default(),
                shell: None,
                tools: vec![],
                secrets: vec![],
            }),
        }
    }

    fn config_step(name: &str) -> Step {
        Step {
            name: name.into(),
            action: Action::Config(ConfigOp::Workdir("/x".into())),
        }
    }

    #[test]
    fn layers_end_at_each_command() {
        let steps = vec![
            config_step("workdir"),
            run_step("install"),
            config_step("env"),
            run_step("hook"),
            config_step("labels"),
        ];
        let l = layers(&steps);
        assert_eq!(l.iter().map(|l| l.last).collect::<Vec<_>>(), [1, 3, 4]);
        assert_eq!(
            l.iter().map(Layer::name).collect::<Vec<_>>(),
            ["install", "hook", "labels"]
        );
    }

    #[test]
    fn build_only_settings_are_sourced_not_passed() {
        let r = Run {
            args: vec!["python".into(), "-m".into(), "pip".into()],
            scratch_files: vec![ScratchFile {
                name: "requirements.txt".into(),
                contents: "six\n".into(),
            }],
            network: Some("index:x".into()),
            caches: vec![CacheMount {
                target: "/c".into(),
                volume: "v".into(),
            }],
            build_env: vec![],
            use_entrypoint: false,
            expect: Default::default(),
            shell: None,
            tools: vec![],
            secrets: vec![],
        };
        let cmd = wrap_command(&r, r.argv(&[]));
        assert_eq!(cmd[..2], ["/bin/sh", "-c"]);
        assert_eq!(cmd[4..], ["python", "-m", "pip"]);
        assert!(!cmd.join(" ").contains("PIP_INDEX_URL"));
    }

    #[test]
    fn secrets_go_to_installs_and_hook_commands_only() {
        let gets = |step: &Step| {
            let Action::Run(r) = &step.action else {
                panic!()
            };
            gets_secrets(step, r)
        };
        let mut install = run_step("install dependencies");
        if let Action::Run(r) = &mut install.action {
            r.network = Some("index:x".into());
        }
        assert!(gets(&install));
        assert!(gets(&run_step("post_connector_install: sh -c ...")));
        // A Dockerfile's RUN: no.
        assert!(!gets(&run_step("RUN make")));
    }

    #[test]
    fn only_network_failures_are_retried() {
        let failure = |stderr: &str| StepFailure {
            step: "install".into(),
            command: "uv pip install".into(),
            exit_code: 2,
            output: vec![],
            stdout: String::new(),
            stderr: stderr.into(),
        };
        assert!(is_transient_network_failure(&failure(
            "error: Request failed after 3 retries\n  cause: dns error\n  cause: failed to lookup address information: Try again"
        )));
        assert!(is_transient_network_failure(&failure(
            "W: Failed to fetch http://deb.debian.org/x  Temporary failure resolving 'deb.debian.org'"
        )));
        assert!(!is_transient_network_failure(&failure(
            "ERROR: No matching distribution found for nope==9"
        )));
    }

    #[test]
    fn output_tail_skips_blank_lines() {
        assert_eq!(last_lines("a\n\nb\nc\n", 2), ["b", "c"]);
    }
}
