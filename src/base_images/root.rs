//! Root images: obtaining the image a base image family builds on.
//!
//! A `reference` root is used by digest (through a mirror when one is configured). A
//! `debootstrap` root is built here from Debian packages, imported into the engine, pushed to
//! a registry, and its digest-pinned address recorded in the machine's state. The recipe
//! key names a recipe (suite, variant, packages, revision); an image carrying the same key,
//! in the registry or the engine, is reused instead of rebuilt, and so is a rootfs tarball.
//!
//! A debootstrap root is built per platform: linux/amd64 under the declared tag, another
//! platform under `<tag>-linux-<arch>` from Debian's packages for that architecture
//! (`debootstrap --foreign`, the second stage under QEMU), with the architecture in its
//! recipe key and its own machine-state record. [`RootBuild::index`] then puts the index
//! over every platform's root under the declared tag.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest as _, Sha256};

use super::state::{RootRecord, State, StateError};
use crate::engine::{ContainerSpec, Engine, EngineError};
use crate::model::families::{Debootstrap, Root, RootSource};
use crate::model::ImageRef;
use crate::plan::Base;
use crate::platform::Platform;
use crate::progress::{Event, Reporter};

/// The image label that carries the recipe key.
pub const KEY_LABEL: &str = "org.connector-build.rootfs-key";

/// The recipe script, embedded so the tool works outside its repository.
const RECIPE: &str = include_str!("../../base-images/roots/debootstrap.sh");

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Index(#[from] super::index::IndexError),
    #[error("the root image `{name}` has not been built on this machine (no {path})\nhint: build it with `connector-build base-images root build {name}` (needs root and debootstrap), or pin a digest-pinned `reference` for it in roots.toml")]
    NotBuilt { name: String, path: PathBuf },
    #[error("the root image `{name}` on this machine ({reference}) was built from another recipe (key {recorded}, now {current}); rebuild it with `connector-build base-images root build {name}`")]
    StaleRecipe {
        name: String,
        reference: String,
        recorded: String,
        current: String,
    },
    #[error("{path}: the recorded root image `{reference}` is not a digest-pinned reference; rebuild it with `connector-build base-images root build`")]
    BadRecord { path: PathBuf, reference: String },
    #[error("the root image `{name}` is a registry image ({reference}); there is nothing to build, it is pulled by digest when needed")]
    NotBuildable { name: String, reference: String },
    #[error("building a root image needs root (debootstrap and chroot)\nhint: run it as root")]
    NotRoot,
    #[error("debootstrap is not installed\nhint: install it (`apt-get install debootstrap`)")]
    NoDebootstrap,
    #[error("cannot prepare {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the root filesystem recipe failed ({status}); full log: {log}{}", tail(.last_lines))]
    Recipe {
        status: String,
        log: PathBuf,
        last_lines: Vec<String>,
    },
    #[error("the registry has no digest for {reference} right after pushing it")]
    NoDigest { reference: String },
    #[error("the root image {reference} is for {actual}, not {expected}")]
    WrongPlatform {
        reference: String,
        expected: Platform,
        actual: String,
    },
    #[error("the root image {reference} does not work: `{command}` printed `{output}`")]
    Broken {
        reference: String,
        command: String,
        output: String,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

fn tail(lines: &[String]) -> String {
    let mut s = String::new();
    if !lines.is_empty() {
        s.push_str("\n  last lines of the log:");
        for l in lines {
            s.push_str("\n    ");
            s.push_str(l);
        }
    }
    s
}

/// The recipe's key: for linux/amd64 the same formula the set-up script used before this
/// module existed, so images and tarballs it made are recognised; another platform adds its
/// architecture.
pub fn recipe_key(recipe: &Debootstrap, platform: Platform) -> String {
    let mut text = format!(
        "{}\n{}\n{}\n{}\n",
        recipe.suite,
        recipe.variant,
        recipe.include.join(","),
        recipe.revision
    );
    if platform != Platform::LinuxAmd64 {
        text.push_str(&format!("{}\n", platform.arch()));
    }
    hex::encode(Sha256::digest(text.as_bytes()))[..16].to_string()
}

/// A tag or record name for `platform`: linux/amd64 keeps the declared one, another platform
/// gets `-linux-<arch>`.
pub fn for_platform(name: &str, platform: Platform) -> String {
    match platform {
        Platform::LinuxAmd64 => name.to_string(),
        p => format!("{name}-{}", p.tag_suffix()),
    }
}

/// The base a family version builds on, on this machine, for `platform`.
pub fn resolve(
    root: &Root,
    state: &State,
    mirrors: &BTreeMap<String, String>,
    platform: Platform,
) -> Result<Base, RootError> {
    let (image, reference) = match &root.source {
        RootSource::Reference(image) => (image.clone(), image.to_string()),
        RootSource::Debootstrap { recipe, .. } => {
            let record_name = for_platform(&root.name, platform);
            let Some(record) = state.root(&record_name)? else {
                return Err(RootError::NotBuilt {
                    name: root.name.clone(),
                    path: state.root_path(&record_name),
                });
            };
            let current = recipe_key(recipe, platform);
            if record.recipe_key != current {
                return Err(RootError::StaleRecipe {
                    name: root.name.clone(),
                    reference: record.reference,
                    recorded: record.recipe_key,
                    current,
                });
            }
            let image = ImageRef::parse(&record.reference)
                .ok()
                .filter(|i| i.digest.is_some())
                .ok_or_else(|| RootError::BadRecord {
                    path: state.root_path(&root.name),
                    reference: record.reference.clone(),
                })?;
            (image, record.reference)
        }
    };
    let source = match mirrors.get(&image.registry) {
        Some(mirror) => image.with_registry(mirror),
        None => image.clone(),
    };
    Ok(Base::Image {
        reference,
        pull: source.pinned().unwrap_or_else(|| source.to_string()),
        digest: image.digest.as_ref().map(ToString::to_string),
    })
}

pub struct RootBuild<'a> {
    pub engine: &'a Engine,
    pub reporter: &'a dyn Reporter,
    pub state: &'a State,
    pub registry: &'a str,
    /// Registries spoken to over plain HTTP (`insecure_registries` in connector-build.toml).
    pub insecure: &'a [String],
    /// The platform whose root is built.
    pub platform: Platform,
}

impl RootBuild<'_> {
    fn reader(&self) -> super::index::Reader<'_> {
        super::index::Reader {
            engine: self.engine,
            registry: self.registry,
            insecure: self.insecure,
        }
    }

    fn say(&self, label: &str, line: String) {
        tracing::info!("{label}: {line}");
        self.reporter.report(Event::Output {
            connector: label.to_string(),
            line,
        });
    }

    fn step<T>(
        &self,
        label: &str,
        step: &str,
        started: std::time::Instant,
        cached: bool,
        v: T,
    ) -> T {
        self.reporter.report(Event::StepFinished {
            connector: label.into(),
            step: step.into(),
            cached,
            duration: started.elapsed(),
        });
        v
    }

    /// Makes sure the registry holds the root image for the current recipe, building it if
    /// needed, and records its digest-pinned address. Returns that address.
    pub async fn ensure(&self, root: &Root) -> Result<String, RootError> {
        let (repository, tag, recipe) = match &root.source {
            RootSource::Debootstrap {
                repository,
                tag,
                recipe,
            } => (repository, tag, recipe),
            RootSource::Reference(image) => {
                return Err(RootError::NotBuildable {
                    name: root.name.clone(),
                    reference: image.to_string(),
                })
            }
        };
        let label = match self.platform {
            Platform::LinuxAmd64 => format!("root {}", root.name),
            p => format!("root {} ({p})", root.name),
        };
        let key = recipe_key(recipe, self.platform);
        let tagged = format!(
            "{}/{repository}:{}",
            self.registry,
            for_platform(tag, self.platform)
        );
        let name = format!("{}/{repository}", self.registry);
        self.reporter.report(Event::Started {
            connector: label.clone(),
            steps: vec!["registry".into(), "root filesystem".into(), "push".into()],
        });

        let t = std::time::Instant::now();
        self.reporter.report(Event::StepStarted {
            connector: label.clone(),
            step: "registry".into(),
        });
        // This platform's image, also when the tag is the index over every platform's.
        let published = self
            .reader()
            .read(repository, &for_platform(tag, self.platform))
            .await?
            .and_then(|t| t.image_for(self.platform).map(str::to_string));
        if let Some(digest) = published {
            let pinned = format!("{name}@{digest}");
            if self.image_key(&pinned, true).await?.as_deref() == Some(key.as_str()) {
                self.say(
                    &label,
                    format!("{tagged} is current (recipe {key}); not rebuilding"),
                );
                for step in ["registry", "root filesystem", "push"] {
                    self.step(&label, step, t, true, ());
                }
                return self.record(root, &tagged, &digest, &key, &pinned).await;
            }
            self.say(
                &label,
                format!("{tagged} is from another recipe; rebuilding"),
            );
        }
        self.step(&label, "registry", t, false, ());

        let t = std::time::Instant::now();
        self.reporter.report(Event::StepStarted {
            connector: label.clone(),
            step: "root filesystem".into(),
        });
        let cached = self.image_key(&tagged, false).await?.as_deref() == Some(key.as_str());
        if cached {
            self.say(
                &label,
                format!("the engine already has {tagged} for recipe {key}"),
            );
        } else {
            let tarball = self.tarball(root, recipe, &key, &label).await?;
            let changes = vec![
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
                "ENV LANG=C.UTF-8".to_string(),
                format!("LABEL {KEY_LABEL}={key}"),
                "CMD [\"python3\"]".to_string(),
            ];
            let message = format!(
                "connector-build root image: debian {} {} + {} (recipe {key})",
                recipe.suite,
                recipe.variant,
                recipe.include.join(",")
            );
            if self.platform == self.engine.platform().await? {
                self.engine
                    .import(&tarball, &tagged, &changes, &message, None)
                    .await?;
            } else {
                // `docker import` records the engine's architecture whatever it is told
                // (Docker 20.10), so another platform's root is loaded with its own config.
                let config = foreign_config(&tarball, self.platform, &key, &message)?;
                self.engine
                    .load_image(
                        config.config,
                        vec![tagged.clone()],
                        vec![crate::engine::image_archive::LoadLayer {
                            diff_id: config.diff_id,
                            tar: Some(tarball.clone().into()),
                        }],
                    )
                    .await?;
            }
        }
        self.step(&label, "root filesystem", t, cached, ());

        let t = std::time::Instant::now();
        self.reporter.report(Event::StepStarted {
            connector: label.clone(),
            step: "push".into(),
        });
        let reporter = self.reporter;
        let pushed = self
            .engine
            .push(&tagged, |line| {
                reporter.report(Event::Output {
                    connector: label.clone(),
                    line: line.to_string(),
                })
            })
            .await?;
        let digest =
            match pushed {
                Some(d) => d,
                None => self.engine.registry_digest(&tagged).await?.ok_or_else(|| {
                    RootError::NoDigest {
                        reference: tagged.clone(),
                    }
                })?,
            };
        self.step(&label, "push", t, false, ());
        let pinned = format!("{name}@{digest}");
        self.record(root, &tagged, &digest, &key, &pinned).await
    }

    /// Puts the index over `platforms`' roots (each built and recorded on this machine, by
    /// [`RootBuild::ensure`]) under the declared tag; returns its digest-pinned address.
    /// A root's tag follows its recipe, so an older index or image there is replaced.
    pub async fn index(&self, root: &Root, platforms: &[Platform]) -> Result<String, RootError> {
        let (repository, tag) = match &root.source {
            RootSource::Debootstrap {
                repository, tag, ..
            } => (repository, tag),
            // A pinned registry image is the same on every machine: its own index, if any.
            RootSource::Reference(image) => {
                return Err(RootError::NotBuildable {
                    name: root.name.clone(),
                    reference: image.to_string(),
                })
            }
        };
        let mut images = Vec::new();
        for &p in platforms {
            let name = for_platform(&root.name, p);
            let record = self.state.root(&name)?.ok_or_else(|| RootError::NotBuilt {
                name: root.name.clone(),
                path: self.state.root_path(&name),
            })?;
            let digest = record.reference.split_once('@').map(|(_, d)| d.to_string());
            let digest = digest.ok_or_else(|| RootError::BadRecord {
                path: self.state.root_path(&name),
                reference: record.reference.clone(),
            })?;
            images.push((p, digest));
        }
        let client = self.reader().client()?;
        let index = super::index::assemble(&client, repository, &images).await?;
        let existing = self.reader().read(repository, tag).await?;
        if super::index::update(existing.as_ref(), &index) != super::index::Update::Unchanged {
            super::index::push(&client, repository, tag, &index).await?;
        }
        Ok(format!(
            "{}/{repository}:{tag}@{}",
            self.registry, index.digest
        ))
    }

    /// The recipe key an image of this platform carries; with `pull`, fetched from its
    /// registry when the engine does not have it.
    async fn image_key(&self, reference: &str, pull: bool) -> Result<Option<String>, RootError> {
        let mut info = self.engine.inspect_image(reference).await?;
        if info.is_none() && pull {
            self.engine
                .pull_for(reference, Some(self.platform), |_| {})
                .await?;
            info = self.engine.inspect_image(reference).await?;
        }
        // An image of another platform is not this recipe's, whatever its label says.
        Ok(info
            .filter(|i| i.platform() == Some(self.platform))
            .and_then(|i| i.labels.get(KEY_LABEL).cloned()))
    }

    async fn record(
        &self,
        root: &Root,
        tagged: &str,
        digest: &str,
        key: &str,
        pinned: &str,
    ) -> Result<String, RootError> {
        self.verify(root, pinned).await?;
        let reference = format!("{tagged}@{digest}");
        self.state.set_root(
            &for_platform(&root.name, self.platform),
            &RootRecord {
                reference: reference.clone(),
                recipe_key: key.to_string(),
            },
        )?;
        Ok(reference)
    }

    /// The image is for the platform, runs what its packages promise (Python, or Java; under
    /// emulation for a foreign platform) and is on UTC.
    async fn verify(&self, root: &Root, pinned: &str) -> Result<(), RootError> {
        let info = self.engine.inspect_image(pinned).await?;
        let actual = info
            .as_ref()
            .map(|i| format!("{}/{}", i.os, i.architecture))
            .unwrap_or_default();
        if info.and_then(|i| i.platform()) != Some(self.platform) {
            return Err(RootError::WrongPlatform {
                reference: pinned.into(),
                expected: self.platform,
                actual,
            });
        }
        let java = matches!(&root.source, RootSource::Debootstrap { recipe, .. }
            if recipe.include.iter().any(|p| p.starts_with("openjdk-")));
        let (command, expect) = if java {
            ("java -version 2>&1 && cat /etc/timezone", "openjdk version")
        } else {
            ("python --version && cat /etc/timezone", "Python 3")
        };
        let spec = ContainerSpec {
            image: pinned.to_string(),
            entrypoint: Some(vec![]),
            cmd: Some(vec!["/bin/sh".into(), "-c".into(), command.into()]),
            network_disabled: true,
            platform: Some(self.platform),
            ..Default::default()
        };
        let container = self.engine.create_container(&spec).await?;
        let out = self.engine.run(&container).await;
        self.engine.remove_container(&container).await?;
        let out = out?;
        let text = format!("{}{}", out.stdout, out.stderr);
        if out.exit_code != 0 || !text.starts_with(expect) {
            return Err(RootError::Broken {
                reference: pinned.into(),
                command: command.into(),
                output: text.trim().into(),
            });
        }
        Ok(())
    }

    /// The rootfs tarball for `key`, built with the recipe script unless already cached.
    async fn tarball(
        &self,
        root: &Root,
        recipe: &Debootstrap,
        key: &str,
        label: &str,
    ) -> Result<PathBuf, RootError> {
        let cache = State::cache_dir();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RootError::Io { path, source }
        };
        std::fs::create_dir_all(&cache).map_err(io(&cache))?;
        let stem = for_platform(&format!("rootfs-{}", recipe.suite), self.platform);
        let tarball = cache.join(format!("{stem}-{key}.tar"));
        if tarball.is_file() {
            self.say(label, format!("reusing {}", tarball.display()));
            return Ok(tarball);
        }
        if !is_root() {
            return Err(RootError::NotRoot);
        }
        if Command::new("debootstrap")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            return Err(RootError::NoDebootstrap);
        }
        // Leftovers of an interrupted build are never reused.
        for entry in std::fs::read_dir(&cache).map_err(io(&cache))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("build.") {
                self.say(
                    label,
                    format!("removing leftover {}", entry.path().display()),
                );
                remove_build_dir(&entry.path());
            } else if name.ends_with(".tar.part") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let work = tempfile::Builder::new()
            .prefix("build.")
            .tempdir_in(&cache)
            .map_err(io(&cache))?
            .keep();
        let script = work.join("debootstrap.sh");
        std::fs::write(&script, RECIPE).map_err(io(&script))?;
        let log = cache.join(format!(
            "rootfs-{}.log",
            for_platform(&root.name, self.platform)
        ));
        let log_file = std::fs::File::create(&log).map_err(io(&log))?;
        let log_err = log_file.try_clone().map_err(io(&log))?;
        let part = cache.join(format!("{stem}-{key}.tar.part"));
        self.say(
            label,
            format!(
                "debootstrap {} ({}, +{}); log: {}",
                recipe.suite,
                recipe.variant,
                recipe.include.join(","),
                log.display()
            ),
        );
        let mut command = tokio::process::Command::new("bash");
        command
            .arg(&script)
            .env("ROOT", work.join("rootfs"))
            .env("OUT", &part)
            .env("SUITE", &recipe.suite)
            .env("VARIANT", &recipe.variant)
            .env("INCLUDE", recipe.include.join(","))
            .env("MIRROR", &recipe.mirror)
            .env("SECURITY_MIRROR", &recipe.security_mirror)
            .env("DEBS_CACHE", cache.join("debs"))
            .env("ARCH", self.platform.arch())
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .kill_on_drop(true);
        let status = command.status().await;
        // Whatever happened, nothing stays mounted and the work folder goes.
        remove_build_dir(&work);
        let status = status.map_err(io(&script))?;
        if !status.success() {
            let _ = std::fs::remove_file(&part);
            return Err(RootError::Recipe {
                status: status.to_string(),
                last_lines: last_lines(&log, 30),
                log,
            });
        }
        std::fs::rename(&part, &tarball).map_err(io(&tarball))?;
        // Tarballs of older recipes are of no further use (another platform's are kept: an
        // amd64 name is `rootfs-<suite>-<16 hex>.tar`, another's `rootfs-<suite>-linux-...`).
        let prefix = format!("{stem}-");
        for entry in std::fs::read_dir(&cache).map_err(io(&cache))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let same_platform = name
                .strip_prefix(&prefix)
                .is_some_and(|rest| !rest.starts_with("linux-"));
            if same_platform && name.ends_with(".tar") && entry.path() != tarball {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(tarball)
    }
}

struct ForeignConfig {
    config: Vec<u8>,
    diff_id: String,
}

/// The image config of a one-layer root image for `platform`: what `docker import` with the
/// changes above would write, with the platform's architecture.
fn foreign_config(
    tarball: &Path,
    platform: Platform,
    key: &str,
    message: &str,
) -> Result<ForeignConfig, RootError> {
    let io = |source| RootError::Io {
        path: tarball.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(tarball).map_err(io)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io)?;
    let diff_id = format!("sha256:{}", hex::encode(hasher.finalize()));
    let created = crate::clock::rfc3339(crate::clock::unix_now());
    let config = serde_json::json!({
        "architecture": platform.arch(),
        "os": "linux",
        "created": created,
        "config": {
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG=C.UTF-8"
            ],
            "Cmd": ["python3"],
            "Labels": { KEY_LABEL: key }
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": created, "comment": message, "created_by": "connector-build root image" }]
    });
    Ok(ForeignConfig {
        config: serde_json::to_vec(&config).expect("a JSON value serializes"),
        diff_id,
    })
}

/// Effective uid 0, read from /proc so no unsafe call is needed.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Unmounts whatever is mounted under `dir` (deepest first), then removes it, staying on its
/// file system so a mount that would not go away is never emptied.
fn remove_build_dir(dir: &Path) {
    let prefix = format!("{}/", dir.display());
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    mounts.sort();
    for m in mounts.iter().rev() {
        let _ = Command::new("umount").arg("-l").arg(m).status();
    }
    let _ = Command::new("rm")
        .args(["-rf", "--one-file-system"])
        .arg(dir)
        .status();
}

fn last_lines(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return vec![];
    };
    // The end of a long log is enough.
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    let mut text = String::new();
    let _ = f.read_to_string(&mut text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::families::Declarations;

    #[test]
    fn the_recipe_key_is_the_set_up_scripts() {
        let d = Declarations::embedded().unwrap();
        let RootSource::Debootstrap { recipe, .. } = &d.root("debian-python").unwrap().source
        else {
            panic!("debian-python is a debootstrap root")
        };
        // printf '%s\n' bookworm minbase python3,...,netbase 1 | sha256sum | cut -c1-16
        let text = "bookworm\nminbase\npython3,python3-pip,python3-venv,python-is-python3,tzdata,ca-certificates,netbase\n1\n";
        assert_eq!(
            recipe_key(recipe, Platform::LinuxAmd64),
            hex::encode(Sha256::digest(text.as_bytes()))[..16]
        );
        assert_ne!(
            recipe_key(recipe, Platform::LinuxArm64),
            recipe_key(recipe, Platform::LinuxAmd64)
        );
    }

    #[test]
    fn resolving_needs_a_current_record() {
        let d = Declarations::embedded().unwrap();
        let root = d.root("debian-python").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let state = State {
            dir: dir.path().into(),
        };
        let none = BTreeMap::new();
        let e = resolve(root, &state, &none, Platform::LinuxAmd64)
            .unwrap_err()
            .to_string();
        assert!(e.contains("base-images root build debian-python"), "{e}");
        let RootSource::Debootstrap { recipe, .. } = &root.source else {
            unreachable!()
        };
        let digest = format!("sha256:{}", "a".repeat(64));
        let reference =
            format!("127.0.0.1:5000/connector-build/debian-python:3.11-bookworm@{digest}");
        state
            .set_root(
                "debian-python",
                &RootRecord {
                    reference: reference.clone(),
                    recipe_key: "old".into(),
                },
            )
            .unwrap();
        let e = resolve(root, &state, &none, Platform::LinuxAmd64)
            .unwrap_err()
            .to_string();
        assert!(e.contains("another recipe"), "{e}");
        state
            .set_root(
                "debian-python",
                &RootRecord {
                    reference: reference.clone(),
                    recipe_key: recipe_key(recipe, Platform::LinuxAmd64),
                },
            )
            .unwrap();
        let Base::Image {
            pull, digest: d, ..
        } = resolve(root, &state, &none, Platform::LinuxAmd64).unwrap()
        else {
            panic!()
        };
        assert_eq!(d.as_deref(), Some(digest.as_str()));
        assert_eq!(
            pull,
            format!("127.0.0.1:5000/connector-build/debian-python@{digest}")
        );
    }

    #[test]
    fn a_pinned_reference_root_goes_through_the_mirror() {
        let digest = format!("sha256:{}", "b".repeat(64));
        let root = Root {
            name: "python-slim".into(),
            description: String::new(),
            source: RootSource::Reference(
                ImageRef::parse(&format!("python:3.11-slim@{digest}")).unwrap(),
            ),
        };
        let dir = tempfile::tempdir().unwrap();
        let state = State {
            dir: dir.path().into(),
        };
        let mirrors = BTreeMap::from([("docker.io".to_string(), "127.0.0.1:5000".to_string())]);
        let Base::Image {
            pull, reference, ..
        } = resolve(&root, &state, &mirrors, Platform::LinuxAmd64).unwrap()
        else {
            panic!()
        };
        assert_eq!(pull, format!("127.0.0.1:5000/library/python@{digest}"));
        assert!(reference.starts_with("docker.io/library/python:3.11-slim@"));
    }
}
