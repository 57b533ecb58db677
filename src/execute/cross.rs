//! Installing a foreign platform's Python dependencies without emulation.
//!
//! For an image whose platform is not the engine's, the uv install step runs natively in a
//! container of the base image's engine-platform counterpart, with uv told the target
//! (`--python-platform <arch>-manylinux_2_<glibc>`, `--python-version`, wheels only). What
//! that container changed (`docker diff`) is copied into a container of the target parent
//! and committed there: the target's dependency layer. The bytecode is the same (same Python
//! version), and wheels carry no host code. What the install deleted (a distribution of the
//! base image it replaced) is removed with one `rm` on the target, the only target program
//! run, as the archive API cannot delete.
//!
//! Used only when that is equivalent to running the step on the target: the step is the
//! plan's first layer (so both parents are the base image), the two base images report the
//! same Python and install paths, and every distribution has a wheel for the target. Otherwise the step runs under emulation and the outcome says why (naming the
//! packages that must be built, when that is the reason).

use serde::{Deserialize, Serialize};

use crate::engine::{ContainerSpec, Engine, EngineError, ImageInfo};
use crate::plan::{Base, BuildPlan, CacheKey, Run};
use crate::platform::Platform;

/// How one install step of a foreign-platform build ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CrossStep {
    pub step: String,
    /// Installed on the engine's own architecture (no emulation).
    pub native: bool,
    /// Why it ran under emulation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The distributions with no wheel for the target, which forced emulation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
}

impl CrossStep {
    /// `install dependencies: natively for the platform`, or `...: under emulation (why:
    /// packages)`.
    pub fn describe(&self) -> String {
        if self.native {
            return format!("{}: installed natively for the platform", self.step);
        }
        let mut why = self.reason.clone().unwrap_or_default();
        if !self.packages.is_empty() {
            why.push_str(&format!(": {}", self.packages.join(", ")));
        }
        format!("{}: under emulation ({why})", self.step)
    }

    pub fn emulated(step: &str, reason: impl Into<String>, packages: Vec<String>) -> Self {
        CrossStep {
            step: step.into(),
            native: false,
            reason: Some(reason.into()),
            packages,
        }
    }
}

/// How a layer's install step ran, remembered by its key (as `outputs` remembers command
/// outputs, and for the same reason: not a label every later image inherits), so a build
/// from cache reports it too.
pub fn remember(key: &CacheKey, step: &CrossStep) {
    let Some(dir) = notes_dir() else { return };
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    if let Ok(text) = serde_json::to_vec(step) {
        let _ = crate::edit::write_atomic(&dir.join(format!("{key}.json")), &text);
    }
}

pub fn recall(key: &CacheKey) -> Option<CrossStep> {
    let text = std::fs::read_to_string(notes_dir()?.join(format!("{key}.json"))).ok()?;
    serde_json::from_str(&text).ok()
}

fn notes_dir() -> Option<std::path::PathBuf> {
    Some(super::user_cache_dir()?.join("cross"))
}

/// What a base image reports about its Python, probed by [`PROBE`].
pub const PROBE: &str = "import platform, sys, sysconfig; print(sys.version.split()[0]); print(platform.libc_ver()[1]); print(sysconfig.get_path('purelib')); print(sysconfig.get_path('scripts'))";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonProbe {
    pub version: String,
    pub glibc: (u32, u32),
    pub paths: String,
}

impl PythonProbe {
    pub fn parse(out: &str) -> Option<PythonProbe> {
        let mut lines = out.lines().map(str::trim);
        let version = lines.next()?.to_string();
        let mut glibc = lines.next()?.split('.');
        let glibc = (glibc.next()?.parse().ok()?, glibc.next()?.parse().ok()?);
        let paths = lines.collect::<Vec<_>>().join("\n");
        Some(PythonProbe {
            version,
            glibc,
            paths,
        })
    }

    /// `3.11` of `3.11.2`.
    pub fn minor(&self) -> String {
        self.version
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// `CONNECTOR_BUILD_EMULATE_INSTALL=1`: every foreign install runs under emulation (to
/// measure what the native install saves; the result is the same image).
pub fn emulation_forced() -> bool {
    std::env::var_os(EMULATE_ENV).is_some_and(|v| v == "1")
}

pub const EMULATE_ENV: &str = "CONNECTOR_BUILD_EMULATE_INSTALL";

/// Whether `run` is a uv install (`<dir>/uv pip install ...`), the only step installed
/// natively.
pub fn is_uv_install(run: &Run) -> bool {
    matches!(run.args.as_slice(), [uv, pip, install, ..]
        if uv.ends_with("/uv") && pip == "pip" && install == "install")
}

/// The uv command for the target: after `pip install`, the target platform, Python version
/// and wheels only.
pub fn native_args(args: &[String], target: Platform, probe: &PythonProbe) -> Vec<String> {
    let mut out = args[..3].to_vec();
    out.extend([
        "--python-platform".to_string(),
        target.uv_python_platform(probe.glibc),
        "--python-version".to_string(),
        probe.minor(),
        "--only-binary".to_string(),
        ":all:".to_string(),
    ]);
    out.extend(args[3..].iter().cloned());
    out
}

/// The distributions uv names as having no usable wheel: `foo==1.0 has no usable wheels`
/// in its resolver's explanation, and `` Wheels are required for `foo` `` in its hint.
pub fn packages_without_wheels(output: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        let name = name.trim_matches(|c: char| !c.is_alphanumeric());
        if !name.is_empty() && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    };
    for line in output.lines() {
        if let Some(rest) = line.split("Wheels are required for `").nth(1) {
            if let Some(name) = rest.split('`').next() {
                add(name);
            }
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if w.contains("==") && words[i + 1..].starts_with(&["has", "no"]) {
                add(w.split("==").next().unwrap_or_default());
            }
        }
    }
    out
}

/// What to carry over from a container's changes: the paths to copy (whole added subtrees,
/// changed files; never a mount, whose content is a volume's, nor what holds one, whose
/// other entries are listed themselves) and the paths it deleted (an install replacing a
/// distribution the base image has), which a copy cannot express.
#[derive(Debug, PartialEq, Eq)]
pub struct GraftPaths {
    pub copy: Vec<String>,
    pub delete: Vec<String>,
}

pub fn graft_paths(changes: &[(String, u8)], mounts: &[String]) -> GraftPaths {
    let delete: Vec<String> = changes
        .iter()
        .filter(|(_, k)| *k == 2)
        .map(|(p, _)| p.clone())
        .collect();
    let under = |p: &str, dir: &str| p == dir || p.starts_with(&format!("{dir}/"));
    let mut sorted: Vec<&(String, u8)> = changes.iter().filter(|(_, k)| *k != 2).collect();
    sorted.sort();
    let mut out: Vec<String> = Vec::new();
    // Not only the last one taken: `foo-1.0.dist-info` sorts between `foo` and `foo/x.py`.
    let mut taken = std::collections::HashSet::new();
    for (path, kind) in sorted {
        let mut ancestor = path.as_str();
        let mut inside = false;
        while let Some((dir, _)) = ancestor.rsplit_once('/') {
            if taken.contains(dir) {
                inside = true;
                break;
            }
            ancestor = dir;
        }
        if inside {
            continue;
        }
        if mounts.iter().any(|m| under(path, m)) {
            continue;
        }
        let holds_mount = mounts.iter().any(|m| under(m, path));
        let has_child = changes
            .iter()
            .any(|(q, _)| q.starts_with(&format!("{path}/")));
        if holds_mount || (*kind == 0 && has_child) {
            continue;
        }
        taken.insert(path.as_str());
        out.push(path.clone());
    }
    GraftPaths { copy: out, delete }
}

/// The engine-platform image of the plan's base: the same reference pulled for `own` (a
/// multi-platform base), or, for a `<tag>-linux-<arch>` base, the image the registry has
/// under `<tag>` (how base images are published until they are indexes).
pub async fn native_base(
    engine: &Engine,
    plan: &BuildPlan,
    own: Platform,
) -> Result<Option<ImageInfo>, EngineError> {
    let Base::Image {
        reference, pull, ..
    } = &plan.base
    else {
        return Ok(None);
    };
    let mine = |i: Option<ImageInfo>| i.filter(|i| i.platform() == Some(own));
    if let Some(target) = plan.platform {
        let named = reference.split('@').next().unwrap_or(reference);
        if let Some(sibling) = named.strip_suffix(&format!("-{}", target.tag_suffix())) {
            let Some(digest) = engine.registry_digest(sibling).await? else {
                return Ok(None);
            };
            let repo = crate::engine::split_tag(sibling).0;
            let pinned = format!("{repo}@{digest}");
            if let Some(i) = mine(engine.inspect_image(&pinned).await?) {
                return Ok(Some(i));
            }
            engine.pull_for(&pinned, Some(own), |_| {}).await?;
            return Ok(mine(engine.inspect_image(&pinned).await?));
        }
    }
    if engine.pull_for(pull, Some(own), |_| {}).await.is_err() {
        return Ok(None);
    }
    Ok(mine(engine.inspect_image(pull).await?))
}

/// The base a `platform` plan builds on when the plan's base is one platform's image:
/// the registry's `<tag>-linux-<arch>` beside it (how base images are published for a
/// platform other than linux/amd64), pinned to the digest the registry has now. `None` when
/// there is no such tag (the base is then used as it is: a multi-platform index, or an image
/// for that platform).
pub async fn platform_base(
    engine: &Engine,
    base: &Base,
    platform: Platform,
) -> Result<Option<Base>, EngineError> {
    let Base::Image {
        reference, pull, ..
    } = base
    else {
        return Ok(None);
    };
    if platform == Platform::LinuxAmd64 {
        return Ok(None);
    }
    let named = reference.split('@').next().unwrap_or(reference);
    let (name, tag) = crate::engine::split_tag(named);
    if tag.ends_with(&platform.tag_suffix()) {
        return Ok(None);
    }
    let suffixed = format!("{tag}-{}", platform.tag_suffix());
    // Through the mirror when the plan pulls from one.
    let pull_name = pull.split('@').next().unwrap_or(pull);
    let pull_name = crate::engine::split_tag(pull_name).0;
    let Some(digest) = engine
        .registry_digest(&format!("{pull_name}:{suffixed}"))
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Base::Image {
        reference: format!("{name}:{suffixed}@{digest}"),
        pull: format!("{pull_name}@{digest}"),
        digest: Some(digest),
    }))
}

/// Runs [`PROBE`] in `image` (for `platform`), without network.
pub async fn probe(
    engine: &Engine,
    image: &str,
    platform: Platform,
) -> Result<Option<PythonProbe>, EngineError> {
    let spec = ContainerSpec {
        image: image.to_string(),
        entrypoint: Some(vec![]),
        cmd: Some(vec!["python3".into(), "-c".into(), PROBE.into()]),
        network_disabled: true,
        platform: Some(platform),
        ..Default::default()
    };
    let container = engine.create_container(&spec).await?;
    let out = engine.run(&container).await;
    engine.discard_container(&container).await?;
    let out = out?;
    Ok((out.exit_code == 0)
        .then(|| PythonProbe::parse(&out.stdout))
        .flatten())
}

/// Where the native side packs what is copied.
const GRAFT_TAR: &str = "/tmp/connector-build-graft.tar";

/// Copies `paths` of `from` (the native container) into `to`. A few paths go one archive
/// call each; more are packed by `tar` in a container of `from`'s commit (natively, no
/// network) and copied as one archive, since each archive call costs a round trip.
pub async fn copy_paths(
    engine: &Engine,
    from: &str,
    to: &str,
    paths: &[String],
) -> Result<(), EngineError> {
    if paths.len() <= 4 {
        for path in paths {
            let parent = match path.rsplit_once('/') {
                Some(("", _)) | None => "/",
                Some((dir, _)) => dir,
            };
            if let Some(tar) = engine.download(from, path).await? {
                engine.upload_to(to, parent, tar).await?;
            }
        }
        return Ok(());
    }
    let image = engine.commit(from, Default::default()).await?;
    let mut cmd: Vec<String> = ["tar", "-cf", GRAFT_TAR, "-C", "/", "--"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    cmd.extend(paths.iter().map(|p| p.trim_start_matches('/').to_string()));
    let spec = ContainerSpec {
        image: image.clone(),
        entrypoint: Some(vec![]),
        cmd: Some(cmd),
        network_disabled: true,
        ..Default::default()
    };
    let packed = async {
        let c = engine.create_container(&spec).await?;
        let out = engine.run(&c).await;
        let tar = match &out {
            Ok(o) if o.exit_code == 0 => engine.download(&c, GRAFT_TAR).await,
            _ => Ok(None),
        };
        engine.discard_container(&c).await?;
        let out = out?;
        match tar? {
            Some(t) => Ok(t),
            None => Err(EngineError::Refused {
                host: engine.host().into(),
                action: "pack the installed files".into(),
                status: 500,
                message: format!("tar exited with {}: {}", out.exit_code, out.stderr.trim()),
            }),
        }
    }
    .await;
    let _ = engine.remove_image(&image).await;
    // The download is an archive holding the archive.
    let outer = packed?;
    let inner = inner_file(&outer).ok_or_else(|| EngineError::Refused {
        host: engine.host().into(),
        action: "read the packed installed files".into(),
        status: 500,
        message: "the archive holds no file".into(),
    })?;
    engine.upload_to(to, "/", inner).await
}

fn inner_file(outer: &[u8]) -> Option<Vec<u8>> {
    let mut archive = tar::Archive::new(outer);
    for entry in archive.entries().ok()?.flatten() {
        if entry.header().entry_type().is_file() {
            let mut entry = entry;
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).ok()?;
            return Some(bytes);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(p: &str, k: u8) -> (String, u8) {
        (p.into(), k)
    }

    #[test]
    fn graft_takes_added_subtrees_and_skips_mounts() {
        let changes = vec![
            c("/usr", 0),
            c("/usr/local", 0),
            c("/usr/local/bin", 0),
            c("/usr/local/bin/tool", 1),
            c("/usr/local/lib/python3.11/dist-packages/six.py", 1),
            c("/usr/local/lib/python3.11/dist-packages/dateutil", 1),
            c(
                "/usr/local/lib/python3.11/dist-packages/dateutil-2.9.dist-info",
                1,
            ),
            c(
                "/usr/local/lib/python3.11/dist-packages/dateutil-2.9.dist-info/RECORD",
                1,
            ),
            c("/usr/local/lib/python3.11/dist-packages/dateutil/x.py", 1),
            c("/run/connector-build", 1),
            c("/var/cache/connector-build", 1),
            c("/var/cache/connector-build/uv", 1),
            c("/airbyte", 1),
            c("/airbyte/integration_code", 1),
            c("/airbyte/integration_code/uv.lock", 1),
        ];
        let mounts = vec![
            "/run/connector-build".to_string(),
            "/var/cache/connector-build/uv".to_string(),
        ];
        assert_eq!(
            graft_paths(&changes, &mounts).copy,
            vec![
                "/airbyte",
                "/usr/local/bin/tool",
                "/usr/local/lib/python3.11/dist-packages/dateutil",
                "/usr/local/lib/python3.11/dist-packages/dateutil-2.9.dist-info",
                "/usr/local/lib/python3.11/dist-packages/six.py",
            ]
        );
        let replaced = vec![
            c("/usr/local/lib/python3.11/dist-packages", 0),
            c("/usr/local/lib/python3.11/dist-packages/x-1.0.dist-info", 2),
            c("/usr/local/lib/python3.11/dist-packages/x-2.0.dist-info", 1),
        ];
        assert_eq!(
            graft_paths(&replaced, &[]),
            GraftPaths {
                copy: vec!["/usr/local/lib/python3.11/dist-packages/x-2.0.dist-info".into()],
                delete: vec!["/usr/local/lib/python3.11/dist-packages/x-1.0.dist-info".into()],
            }
        );
    }

    #[test]
    fn uv_args_for_the_target() {
        let args: Vec<String> = ["/opt/uv/uv", "pip", "install", "--system", "-r", "r.txt"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let probe = PythonProbe::parse(
            "3.11.2\n2.36\n/usr/local/lib/python3.11/dist-packages\n/usr/local/bin\n",
        )
        .unwrap();
        assert_eq!(
            native_args(&args, Platform::LinuxArm64, &probe).join(" "),
            "/opt/uv/uv pip install --python-platform aarch64-manylinux_2_36 --python-version 3.11 --only-binary :all: --system -r r.txt"
        );
    }

    #[test]
    fn packages_uv_could_not_find_wheels_for() {
        let out = "error: No solution found when resolving dependencies\n  cause: Because docopt==0.6.2 has no usable wheels and you require docopt==0.6.2, we can conclude that your requirements are unsatisfiable.\n\nhint: Wheels are required for `docopt` because building from source is disabled for all packages (i.e., with `--no-build`)\n";
        assert_eq!(packages_without_wheels(out), vec!["docopt"]);
        let two = "Because pendulum==2.1.2 has no usable wheels and a==1 has no wheels with a matching platform tag";
        assert_eq!(packages_without_wheels(two), vec!["pendulum", "a"]);
    }
}
