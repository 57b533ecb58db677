//! Shortcuts for a connector's dependency layer, when its cache entry is missing:
//!
//! - **delta**: the pins changed and the connector's previous dependency layer (same base,
//!   same installer and arguments) is in the engine: start from it, uninstall what the new
//!   lock dropped and install the lock over it (`--no-deps`, every pin exact), so the new
//!   layer holds only what changed. At most `MAX_DELTAS` stack up; past that, a clean install.
//! - **rebase**: the base image changed and the very same dependency layer exists on the old
//!   base: its tar is loaded on the new base (`engine::image_archive`) when the new base has
//!   the same Python version and platform and the layer holds no wheel built for the old base.
//!
//! What was built for which connector is remembered in the user's cache folder (one file per
//! connector, as `outputs` does): an engine label would be inherited by every later layer.
//! A record is only used while its cache entry is still in the engine.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{cache_ref, config_of, BuildError, Builder, Layer};
use crate::engine::image_archive::LoadLayer;
use crate::engine::{ImageInfo, RunOutput};
use crate::plan::canonical::{canonical_json, sha256_hex};
use crate::plan::{Action, Base, BuildPlan, CacheKey, ConfigOp, KeyChain, Run, Step};

/// Stacked delta layers allowed on a clean install before the next change installs clean.
pub const MAX_DELTAS: u32 = 3;

/// Records kept per connector.
const KEEP: usize = 8;

/// The label a base image may carry with its Python version (`3.11.2`).
pub const PYTHON_LABEL: &str = "org.connector-build.python";

/// A dependency layer built for a connector.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// Cache key of the layer's last step (its entry is `connector-build-cache:<key>`).
    pub key: String,
    /// The layer's steps without the base: equal for the same install on another base.
    pub steps_key: String,
    pub base_digest: Option<String>,
    /// The engine's id of the base image (its Python distributions are compared on rebase).
    #[serde(default)]
    pub base_id: String,
    /// Layers of the base image under it.
    pub base_layers: usize,
    /// Delta layers on top of the clean install (0: a clean install).
    pub depth: u32,
    /// The install arguments and requirements (pins), to compute a delta from.
    pub args: Vec<String>,
    pub requirements: String,
    /// The manifest files copied in the layer.
    pub manifests: Vec<String>,
    /// `os/architecture` of the base.
    pub platform: String,
    /// `major.minor` of the base's Python, when known.
    pub python: Option<String>,
    /// For an install that resolves: the `name==version` pins it added to the base (what uv
    /// printed), and the names of the base's distributions it replaced.
    #[serde(default)]
    pub resolved: Option<Vec<String>>,
    #[serde(default)]
    pub replaced: Vec<String>,
}

impl Record {
    /// A clean install's record of `dep`, keyed `key`, on `parent` (over `base`).
    fn new(
        plan: &BuildPlan,
        key: &crate::plan::CacheKey,
        dep: &DependencyLayer<'_>,
        (base, parent): (&ImageInfo, &ImageInfo),
    ) -> Record {
        let (reference, digest) = match &plan.base {
            Base::Image {
                reference, digest, ..
            } => (reference.as_str(), digest.clone()),
            Base::Dockerfile { .. } => ("", None),
        };
        Record {
            key: key.0.clone(),
            steps_key: dep.steps_key.clone(),
            base_digest: digest,
            base_id: base.id.clone(),
            base_layers: parent.layers.len(),
            depth: 0,
            args: dep.run.args.clone(),
            requirements: dep.requirements.clone(),
            manifests: dep.manifests.clone(),
            platform: platform(base),
            python: base_python(reference, base),
            resolved: None,
            replaced: Vec::new(),
        }
    }
}

fn path(connector: &str) -> Option<PathBuf> {
    Some(
        super::user_cache_dir()?
            .join("dependency-layers")
            .join(format!("{}.json", sha256_hex(connector.as_bytes()))),
    )
}

pub fn load(connector: &str) -> Vec<Record> {
    path(connector)
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Best effort: a record that cannot be written only costs a clean install later.
pub fn store(connector: &str, record: Record) {
    let Some(path) = path(connector) else { return };
    let mut records = load(connector);
    records.retain(|r| r.key != record.key);
    records.insert(0, record);
    records.truncate(KEEP);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(bytes) = serde_json::to_vec(&records) {
        let _ = crate::edit::write_atomic(&path, &bytes);
    }
}

/// The parts of a dependency layer a shortcut needs: its install command and manifests.
pub struct DependencyLayer<'a> {
    pub run: &'a Run,
    pub requirements: String,
    pub manifests: Vec<String>,
    pub steps_key: String,
}

/// The dependency layer among `steps` (a layer's), when it is one: its command is the
/// `install dependencies` step.
pub fn dependency_layer(steps: &[Step]) -> Option<DependencyLayer<'_>> {
    let run = steps.iter().find_map(|s| match &s.action {
        Action::Run(r) if s.name == "install dependencies" => Some(r),
        _ => None,
    })?;
    let requirements = run
        .scratch_files
        .iter()
        .find(|f| f.name == "requirements.txt")
        .map(|f| f.contents.clone())
        .unwrap_or_default();
    let manifests = steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Files { files, .. } => Some(files.iter().map(|f| f.path.clone())),
            _ => None,
        })
        .flatten()
        .collect();
    let actions: Vec<&Action> = steps.iter().map(|s| &s.action).collect();
    Some(DependencyLayer {
        run,
        requirements,
        manifests,
        steps_key: sha256_hex(canonical_json(&actions).as_bytes()),
    })
}

/// PEP 503 normalized name.
fn normalize(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The names pinned in a requirements file (`name==version`, markers and hashes allowed).
pub fn pinned_names(requirements: &str) -> BTreeSet<String> {
    requirements
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('-'))
        .filter_map(|l| {
            let end = l
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                .unwrap_or(l.len());
            (end > 0).then(|| normalize(&l[..end]))
        })
        .collect()
}

/// Whether the install is fully pinned (every dependency listed, none resolved): then
/// installing the new lock over the old one and removing what it dropped is the new lock.
pub fn whole_closure(args: &[String]) -> bool {
    args.iter().any(|a| a == "--no-deps")
}

/// Whether an install that resolves can be brought to a delta: uv, from the computed
/// requirements file only (no project or local path to build).
pub fn resolvable(run: &Run) -> bool {
    let uv = run.args.first().is_some_and(|a| a.ends_with("/uv"));
    let scratch = format!("{}/requirements.txt", crate::plan::SCRATCH_DIR);
    let only_scratch = run.args.iter().filter(|a| !a.starts_with('-')).count() == 4
        && run.args.last() == Some(&scratch);
    uv && only_scratch
}

/// `args` with `flag` right after `install`.
pub fn with_flag(args: &[String], flag: &str) -> Vec<String> {
    let mut out = args.to_vec();
    let at = out
        .iter()
        .position(|a| a == "install")
        .map_or(out.len(), |i| i + 1);
    out.insert(at, flag.to_string());
    out
}

/// What uv says an install did (or would do): the `name==version` pins added and the names
/// removed; `None` when something came from elsewhere than an index (` (from ...)`).
pub fn uv_changes(output: &str) -> Option<(Vec<String>, Vec<String>)> {
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for line in output.lines() {
        let line = line.trim();
        if let Some(pin) = line.strip_prefix("+ ") {
            if pin.contains(' ') || !pin.contains("==") {
                return None;
            }
            added.push(pin.to_string());
        } else if let Some(pin) = line.strip_prefix("- ") {
            removed.push(normalize(pin.split("==").next().unwrap_or(pin)));
        }
    }
    added.sort();
    removed.sort();
    Some((added, removed))
}

/// The command of a delta: uninstall `removed`, then the usual install.
pub fn delta_args(args: &[String], removed: &BTreeSet<String>) -> Vec<String> {
    if removed.is_empty() {
        return args.to_vec();
    }
    let uninstall: Vec<String> = if args.first().is_some_and(|a| a.ends_with("/uv")) {
        vec![
            args[0].clone(),
            "pip".into(),
            "uninstall".into(),
            "--system".into(),
        ]
    } else {
        ["python", "-m", "pip", "uninstall", "-y"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    // Names are PEP 503 normalized: letters, digits and `-` only, nothing to quote.
    let script = format!(
        "{} {} && exec \"$@\"",
        uninstall.join(" "),
        removed.iter().cloned().collect::<Vec<_>>().join(" ")
    );
    let mut out = vec!["/bin/sh".into(), "-c".into(), script, "sh".into()];
    out.extend(args.iter().cloned());
    out
}

/// The previous layer a delta can start from, or why none can.
pub fn delta_parent<'r>(
    records: &'r [Record],
    layer: &DependencyLayer<'_>,
    base_digest: Option<&str>,
) -> Result<&'r Record, String> {
    if !whole_closure(&layer.run.args) && !resolvable(layer.run) {
        return Err("the install resolves dependencies and installs more than pins".into());
    }
    let same_install = |r: &&Record| {
        r.base_digest.as_deref() == base_digest
            && r.args == layer.run.args
            && r.manifests == layer.manifests
    };
    let Some(previous) = records.iter().find(same_install) else {
        return Err("no previous dependency layer of this connector on this base".into());
    };
    if !whole_closure(&layer.run.args) && previous.resolved.is_none() {
        return Err("what the previous install resolved is not known".into());
    }
    if previous.depth >= MAX_DELTAS {
        return Err(format!(
            "the previous dependency layer already has {MAX_DELTAS} delta layers"
        ));
    }
    Ok(previous)
}

/// The Python version a base image declares: its label, else the family declaration of its
/// repository and tag.
pub fn base_python(reference: &str, base: &ImageInfo) -> Option<String> {
    if let Some(v) = base.labels.get(PYTHON_LABEL) {
        return Some(minor(v));
    }
    let image = crate::model::ImageRef::parse(reference).ok()?;
    let family = crate::plan::python::declared_family(&image.repository)?;
    let tag = image.tag?;
    family
        .versions
        .iter()
        .find(|v| v.version.to_string() == tag)
        .map(|v| minor(&v.decl.python))
}

fn minor(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

pub fn platform(image: &ImageInfo) -> String {
    format!("{}/{}", image.os, image.architecture)
}

/// Why a saved dependency layer cannot go on another base: a wheel built on the old base
/// (platform tag `linux_*`, not a portable `manylinux`/`musllinux`/`any` one).
pub fn built_for_base(layer_tar: impl std::io::Read) -> std::io::Result<Option<String>> {
    let mut archive = tar::Archive::new(std::io::BufReader::new(layer_tar));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        if !path.ends_with(".dist-info/WHEEL") {
            continue;
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text)?;
        for tag in text.lines().filter_map(|l| l.strip_prefix("Tag:")) {
            let platform = tag.trim().rsplit('-').next().unwrap_or("");
            if platform.starts_with("linux_") {
                let dist = path.rsplit('/').nth(1).unwrap_or(&path);
                return Ok(Some(format!(
                    "{} was built from source on the old base (wheel tag {})",
                    dist.trim_end_matches(".dist-info"),
                    tag.trim()
                )));
            }
        }
    }
    Ok(None)
}

/// The config of the dependency layer(s) of `old` (a saved image's config) put on `base`:
/// `config` as the build computes it on the new base, the base's layers then the old
/// dependency layers, the base's history then the dependency layers'.
pub fn rebased_config(
    old: &serde_json::Value,
    base: &ImageInfo,
    base_history: &[(String, String, i64)],
    config: &crate::plan::ImageConfig,
    dependency_diff_ids: &[String],
) -> Vec<u8> {
    use serde_json::{json, Map, Value};
    let mut diff_ids = base.layers.clone();
    diff_ids.extend(dependency_diff_ids.iter().cloned());
    // Oldest first; an entry of size 0 counts as config-only (fewer non-empty entries than
    // layers is allowed, more is not).
    let mut history: Vec<Value> = base_history
        .iter()
        .rev()
        .map(|(_, created_by, size)| {
            let mut h = Map::new();
            h.insert("created_by".into(), json!(created_by));
            if *size == 0 {
                h.insert("empty_layer".into(), json!(true));
            }
            Value::Object(h)
        })
        .collect();
    let old_history = old
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut own: Vec<Value> = old_history
        .iter()
        .rev()
        .filter(|h| h.get("empty_layer").and_then(Value::as_bool) != Some(true))
        .take(dependency_diff_ids.len())
        .cloned()
        .collect();
    own.reverse();
    history.extend(own);
    let non_empty = history
        .iter()
        .filter(|h| h.get("empty_layer").and_then(Value::as_bool) != Some(true))
        .count();
    if non_empty > diff_ids.len() {
        history.clear();
    }
    let ports: Map<String, Value> = config
        .exposed_ports
        .iter()
        .map(|p| (p.clone(), json!({})))
        .collect();
    let mut c = Map::new();
    c.insert(
        "Env".into(),
        json!(config
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()),
    );
    c.insert("Entrypoint".into(), json!(config.entrypoint));
    c.insert("Cmd".into(), json!(config.cmd));
    c.insert(
        "WorkingDir".into(),
        json!(config.workdir.clone().unwrap_or_default()),
    );
    c.insert(
        "User".into(),
        json!(config.user.clone().unwrap_or_default()),
    );
    c.insert("Labels".into(), json!(config.labels));
    if !ports.is_empty() {
        c.insert("ExposedPorts".into(), Value::Object(ports));
    }
    let value = json!({
        "architecture": base.architecture,
        "os": base.os,
        "created": old.get("created").cloned().unwrap_or(Value::Null),
        "config": c,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    serde_json::to_vec(&value).expect("a config serializes")
}

impl Builder<'_> {
    /// Builds the dependency layer `layer` on `parent` (`base` being the plan's base image):
    /// rebased, as a delta, or clean; returns the image, the command's output and how.
    pub(super) async fn build_dependency_layer(
        &self,
        plan: &BuildPlan,
        keys: &KeyChain,
        (base, parent): (&ImageInfo, &ImageInfo),
        layer: &Layer<'_>,
        dep: &DependencyLayer<'_>,
    ) -> Result<(String, Option<RunOutput>, String), BuildError> {
        let records = load(&plan.connector);
        let mut record = Record::new(plan, &keys.steps[layer.last], dep, (base, parent));
        let (digest, python) = (record.base_digest.clone(), record.python.clone());

        // Rebase: the same layer on another base, when it sits right on the base.
        let mut why_not = Vec::new();
        let candidate = records
            .iter()
            .find(|r| r.steps_key == dep.steps_key && r.base_digest != digest);
        if candidate.is_some() && !self.rebase {
            why_not.push("not rebased: --rebase was not given".to_string());
        }
        if let Some(old) = candidate.filter(|_| self.rebase) {
            if parent.id != base.id {
                why_not.push(
                    "not rebased: build customization layers come before the install".to_string(),
                );
            } else {
                match self
                    .rebase(
                        old,
                        base,
                        layer,
                        (&plan.connector, &keys.steps[layer.last]),
                        python.as_deref(),
                    )
                    .await?
                {
                    Ok(id) => {
                        record.depth = old.depth;
                        record.resolved = old.resolved.clone();
                        record.replaced = old.replaced.clone();
                        store(&plan.connector, record);
                        return Ok((
                            id,
                            None,
                            format!(
                                "rebased: the dependency layer built on {} reused on the new base",
                                short(old.base_digest.as_deref())
                            ),
                        ));
                    }
                    Err(reason) => why_not.push(format!("not rebased: {reason}")),
                }
            }
        }

        // Delta: on the previous layer of this connector, on this very parent.
        match delta_parent(&records, dep, digest.as_deref()) {
            Ok(previous) => match self
                .engine
                .inspect_image(&cache_ref(&crate::plan::CacheKey(previous.key.clone())))
                .await?
            {
                Some(prev) if prev.layers.starts_with(&parent.layers) => {
                    match self
                        .delta(
                            plan,
                            (parent, &prev),
                            layer,
                            &keys.steps[layer.last],
                            dep,
                            previous,
                        )
                        .await?
                    {
                        Ok((id, output, removed, (resolved, replaced))) => {
                            record.depth = previous.depth + 1;
                            record.resolved = resolved;
                            record.replaced = replaced;
                            store(&plan.connector, record);
                            why_not.insert(
                                0,
                                format!(
                                "delta {} of {MAX_DELTAS} on the previous dependency layer ({removed} removed)",
                                previous.depth + 1,
                            ),
                            );
                            return Ok((id, output, why_not.join("; ")));
                        }
                        Err(reason) => why_not.push(format!("no delta: {reason}")),
                    }
                }
                _ => why_not.push(
                    "no delta: the previous dependency layer is no longer in the engine".into(),
                ),
            },
            Err(reason) => why_not.push(format!("no delta: {reason}")),
        }
        let (id, output) = self
            .build_layer(plan, parent, layer, &keys.steps[layer.last])
            .await?;
        if let Some((added, replaced)) = output.as_ref().and_then(|o| uv_changes(&o.stderr)) {
            if !whole_closure(&dep.run.args) && resolvable(dep.run) {
                record.resolved = Some(added);
            }
            record.replaced = replaced;
        }
        store(&plan.connector, record);
        why_not.insert(0, "clean install".into());
        Ok((id, output, why_not.join("; ")))
    }

    /// Records the plan's dependency layer (its first layer, right on the base), found in
    /// the cache (built by another run or machine), when this connector has no record of it:
    /// a later base bump can still rebase it. `base` when already inspected.
    pub(super) async fn remember_dependency_layer(
        &self,
        plan: &BuildPlan,
        keys: &KeyChain,
        base: Option<&ImageInfo>,
    ) -> Result<(), BuildError> {
        let layers = super::layers(&plan.steps);
        let Some((layer, dep)) = layers
            .first()
            .and_then(|l| Some((l, dependency_layer(l.steps)?)))
        else {
            return Ok(());
        };
        let Base::Image { pull, .. } = &plan.base else {
            return Ok(());
        };
        let key = &keys.steps[layer.last];
        if load(&plan.connector).iter().any(|r| r.key == key.0) {
            return Ok(());
        }
        let base = match base {
            Some(b) => b.clone(),
            None => match self.engine.inspect_image(pull).await? {
                Some(b) => b,
                None => return Ok(()),
            },
        };
        let Some(entry) = self.engine.inspect_image(&cache_ref(key)).await? else {
            return Ok(());
        };
        // What it resolved is not known: no delta on it, a rebase may.
        let mut record = Record::new(plan, key, &dep, (&base, &base));
        // Layers past the base and the clean install are deltas.
        record.depth = entry.layers.len().saturating_sub(base.layers.len() + 1) as u32;
        store(&plan.connector, record);
        Ok(())
    }

    /// The delta layer on `prev` (the previous dependency layer, on `parent`), or why not:
    /// its image, output, how many distributions it removed and, for an install that
    /// resolves, what a clean install adds and replaces (asked of uv with `--dry-run` on
    /// `parent`, so the delta reaches exactly what a clean install would).
    #[allow(clippy::type_complexity)]
    async fn delta(
        &self,
        plan: &BuildPlan,
        (parent, prev): (&ImageInfo, &ImageInfo),
        layer: &Layer<'_>,
        key: &CacheKey,
        dep: &DependencyLayer<'_>,
        previous: &Record,
    ) -> Result<
        Result<
            (
                String,
                Option<RunOutput>,
                usize,
                (Option<Vec<String>>, Vec<String>),
            ),
            String,
        >,
        BuildError,
    > {
        let with_run = |f: &dyn Fn(&mut Run)| {
            let mut steps = layer.steps.to_vec();
            for s in &mut steps {
                if let Action::Run(r) = &mut s.action {
                    if s.name == "install dependencies" {
                        f(r);
                    }
                }
            }
            steps
        };
        let (removed, pins, replaced): (BTreeSet<String>, Option<Vec<String>>, Vec<String>) =
            if whole_closure(&dep.run.args) {
                let removed: BTreeSet<String> = pinned_names(&previous.requirements)
                    .difference(&pinned_names(&dep.requirements))
                    .cloned()
                    .collect();
                let in_base = if removed.is_empty() {
                    BTreeSet::new()
                } else {
                    &self.installed_names(parent).await? & &removed
                };
                if !in_base.is_empty() {
                    return Ok(Err(format!(
                        "the lock drops {} which the base image also has",
                        in_base.into_iter().collect::<Vec<_>>().join(", ")
                    )));
                }
                (removed, None, Vec::new())
            } else {
                let steps = with_run(&|r| r.args = with_flag(&r.args, "--dry-run"));
                let dry = Layer {
                    steps: &steps,
                    last: layer.last,
                };
                let (_, output, _) = self
                    .build_or_run_layer(plan, parent, &dry, key, false, false)
                    .await?;
                let Some((pins, replaced)) = output.and_then(|o| uv_changes(&o.stderr)) else {
                    return Ok(Err("uv's resolution could not be read".into()));
                };
                let names = |pins: &[String]| -> BTreeSet<String> {
                    pins.iter()
                        .map(|p| normalize(p.split("==").next().unwrap_or(p)))
                        .collect()
                };
                let before = previous.resolved.as_deref().unwrap_or_default();
                let removed: BTreeSet<String> =
                    names(before).difference(&names(&pins)).cloned().collect();
                let lost: Vec<&String> = removed
                    .iter()
                    .filter(|n| previous.replaced.contains(n))
                    .collect();
                if !lost.is_empty() {
                    return Ok(Err(format!(
                        "the new resolution drops {} which the base image also has",
                        lost.into_iter().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
                (removed, Some(pins), replaced)
            };
        let steps = with_run(&|r| {
            if let Some(pins) = &pins {
                // Exactly what a clean install resolved, nothing resolved again.
                for f in &mut r.scratch_files {
                    if f.name == "requirements.txt" {
                        f.contents = pins.iter().map(|p| format!("{p}\n")).collect();
                    }
                }
                r.args = with_flag(&r.args, "--no-deps");
            }
            r.args = delta_args(&r.args, &removed);
        });
        let delta = Layer {
            steps: &steps,
            last: layer.last,
        };
        let (id, output) = self.build_layer(plan, prev, &delta, key).await?;
        Ok(Ok((id, output, removed.len(), (pins, replaced))))
    }

    /// Loads the dependency layers of `old`'s entry on `base`; returns the new image's id, or
    /// (the inner error) why it may not.
    async fn rebase(
        &self,
        old: &Record,
        base: &ImageInfo,
        layer: &Layer<'_>,
        (connector, key): (&str, &CacheKey),
        python: Option<&str>,
    ) -> Result<Result<String, String>, BuildError> {
        if old.platform != platform(base) {
            return Ok(Err(format!(
                "the platform changed ({} to {})",
                old.platform,
                platform(base)
            )));
        }
        match (old.python.as_deref(), python) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => return Ok(Err(format!("the Python version changed ({a} to {b})"))),
            _ => return Ok(Err("the Python version of a base image is unknown (no `org.connector-build.python` label or family declaration)".into())),
        }
        let entry = cache_ref(&crate::plan::CacheKey(old.key.clone()));
        if self.engine.inspect_image(&entry).await?.is_none() {
            return Ok(Err(
                "the old dependency layer is no longer in the engine".into()
            ));
        }
        let dir = super::user_cache_dir()
            .map(|d| d.join("tmp"))
            .unwrap_or_else(std::env::temp_dir);
        let _ = std::fs::create_dir_all(&dir);
        let saved = self.engine.save_image(&entry, &dir).await?;
        let own = saved.layers.get(old.base_layers..).unwrap_or_default();
        for l in own {
            let wheels = match saved.open_layer(l) {
                Ok(tar) => built_for_base(tar).map_err(|e| e.to_string()),
                Err(e) => Err(crate::error::error_chain(&e)),
            };
            match wheels {
                Ok(None) => {}
                Ok(Some(reason)) => return Ok(Err(reason)),
                Err(e) => return Ok(Err(format!("its layer could not be read: {e}"))),
            }
        }
        let mut config = config_of(base);
        for s in layer.steps {
            if let Action::Config(op) = &s.action {
                if matches!(op, ConfigOp::UnsetEnv(_)) {
                    return Ok(Err("the layer unsets a variable".into()));
                }
                config.apply(op);
            }
        }
        super::label_entry(&mut config, connector, key);
        let history = self.engine.history(&base.id).await?;
        let old_config =
            saved
                .config_json()
                .map_err(|source| crate::engine::EngineError::Archive {
                    host: self.engine.host().into(),
                    action: format!("read the config of {entry}"),
                    source: Box::new(source),
                })?;
        let diff_ids: Vec<String> = own.iter().map(|l| l.diff_id.clone()).collect();
        let bytes = rebased_config(&old_config, base, &history, &config, &diff_ids);
        let mut layers: Vec<LoadLayer> = base
            .layers
            .iter()
            .map(|d| LoadLayer {
                diff_id: d.clone(),
                tar: None,
            })
            .collect();
        // Read in place from the saved file, which `saved` keeps until the load is done.
        layers.extend(own.iter().map(|l| LoadLayer {
            diff_id: l.diff_id.clone(),
            tar: Some(saved.layer_tar(l)),
        }));
        let id = self.engine.load_image(bytes, vec![], layers).await?;
        Ok(Ok(id))
    }

    /// The normalized names of the distributions installed in `image`.
    async fn installed_names(&self, image: &ImageInfo) -> Result<BTreeSet<String>, BuildError> {
        Ok(self
            .installed_dists(image)
            .await?
            .unwrap_or_default()
            .iter()
            .map(|d| d.split("==").next().unwrap_or(d).to_string())
            .collect())
    }

    /// The distributions installed in `image`, as `name==version` (normalized names);
    /// remembered by image id, since an image never changes. `None` when Python cannot say.
    async fn installed_dists(
        &self,
        image: &ImageInfo,
    ) -> Result<Option<BTreeSet<String>>, BuildError> {
        let file = super::user_cache_dir().map(|d| {
            d.join("distributions")
                .join(format!("{}.json", image.id.trim_start_matches("sha256:")))
        });
        if let Some(found) = file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            return Ok(Some(found));
        }
        let spec = crate::engine::ContainerSpec {
            image: image.id.clone(),
            entrypoint: Some(vec![]),
            cmd: Some(vec![
                "python".into(),
                "-c".into(),
                "import importlib.metadata as m\nfor d in m.distributions(): print(d.metadata['Name'] + '==' + d.version)".into(),
            ]),
            network_disabled: true,
            ..Default::default()
        };
        let container = self.engine.create_container(&spec).await?;
        let out = self.engine.run(&container).await;
        let removed = self.engine.discard_container(&container).await;
        let out = out?;
        removed?;
        if out.exit_code != 0 {
            return Ok(None);
        }
        let dists: BTreeSet<String> = out
            .stdout
            .lines()
            .filter_map(|l| l.trim().split_once("=="))
            .map(|(name, version)| format!("{}=={version}", normalize(name)))
            .collect();
        if let (Some(file), Ok(bytes)) = (file, serde_json::to_vec(&dists)) {
            let _ = std::fs::create_dir_all(file.parent().unwrap_or(&file));
            let _ = crate::edit::write_atomic(&file, &bytes);
        }
        Ok(Some(dists))
    }
}

fn short(digest: Option<&str>) -> String {
    digest.map_or("an unpinned base".into(), |d| {
        let hex = d.trim_start_matches("sha256:");
        format!("sha256:{}", &hex[..hex.len().min(12)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_read_by_normalized_name() {
        let reqs = "# lock\nSix==1.16.0\nzope.interface==6.0 ; python_version >= \"3.8\" \\\n    --hash=sha256:ab\n-e .\nsome_pkg[extra]==1\n";
        assert_eq!(
            pinned_names(reqs).into_iter().collect::<Vec<_>>(),
            ["six", "some-pkg", "zope-interface"]
        );
    }

    #[test]
    fn a_delta_uninstalls_what_the_lock_dropped_then_installs() {
        let args: Vec<String> = [
            "/opt/uv/uv",
            "pip",
            "install",
            "--system",
            "--no-deps",
            "-r",
            "/r.txt",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let removed = BTreeSet::from(["six".to_string(), "attrs".to_string()]);
        let cmd = delta_args(&args, &removed);
        assert_eq!(
            cmd[2],
            "/opt/uv/uv pip uninstall --system attrs six && exec \"$@\""
        );
        assert_eq!(cmd[4..], args[..]);
        assert_eq!(delta_args(&args, &BTreeSet::new()), args);
        assert!(whole_closure(&args));
    }

    #[test]
    fn uv_output_gives_what_was_added_and_replaced() {
        let out = "Resolved 7 packages in 451ms\nWould install 2 packages\n - attrs==26.1.0\n + attrs==23.2.0\n + six==1.16.0\n";
        let (added, replaced) = uv_changes(out).unwrap();
        assert_eq!(added, ["attrs==23.2.0", "six==1.16.0"]);
        assert_eq!(replaced, ["attrs"]);
        assert!(uv_changes(" + source-x==0.1.0 (from file:///airbyte)\n").is_none());
        let args: Vec<String> = [
            "/u/uv",
            "pip",
            "install",
            "--system",
            "-r",
            "/run/connector-build/requirements.txt",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(with_flag(&args, "--dry-run")[3], "--dry-run");
    }

    #[test]
    fn deltas_stop_at_the_cap() {
        let run = Run {
            args: vec!["uv".into(), "--no-deps".into()],
            scratch_files: vec![],
            network: None,
            caches: vec![],
            build_env: vec![],
            use_entrypoint: false,
            expect: Default::default(),
            shell: None,
            tools: vec![],
            secrets: vec![],
        };
        let layer = DependencyLayer {
            run: &run,
            requirements: String::new(),
            manifests: vec!["pyproject.toml".into()],
            steps_key: String::new(),
        };
        let record = |depth| Record {
            key: "k".into(),
            steps_key: String::new(),
            base_digest: Some("d".into()),
            base_layers: 5,
            depth,
            args: run.args.clone(),
            requirements: String::new(),
            manifests: layer.manifests.clone(),
            platform: "linux/amd64".into(),
            python: Some("3.11".into()),
            resolved: None,
            replaced: vec![],
            base_id: String::new(),
        };
        assert!(delta_parent(&[record(2)], &layer, Some("d")).is_ok());
        assert!(delta_parent(&[record(3)], &layer, Some("d"))
            .unwrap_err()
            .contains("3 delta layers"));
        assert!(delta_parent(&[record(0)], &layer, Some("other")).is_err());
    }
}
