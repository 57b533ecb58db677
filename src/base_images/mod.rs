//! Base image families: declared in the repository, built on the engine through the same
//! plans and cache as connectors, sanity-checked, published to a registry, documented, and
//! used by `upgrade-base-image` to move connectors onto their latest release.
//!
//! - [`declare`]: the declaration files and their validation
//! - [`plan`]: a declared version as a build plan, and its Dockerfile for reading
//! - [`root`]: root images, pinned by digest or built with debootstrap
//! - [`index`]: a version's tag as one index over its platforms' images
//! - [`check`]: the sanity checks
//! - [`docs`]: the generated documentation and its drift check
//! - [`upgrade`]: moving connectors onto the latest published release
//! - [`state`]: what this machine built and published
//!
//! Published state is always read from the registry (through the engine, so the engine's
//! registry settings and the Docker client's credentials apply); the machine state only
//! records addresses for people and scripts.

pub mod check;
pub mod docs;
pub mod index;
pub mod plan;
pub mod root;
pub mod state;
pub mod upgrade;

use std::collections::BTreeMap;

use serde::Serialize;

use self::check::CheckReport;
use self::index::{IndexError, Tagged, Update};
use self::root::RootError;
use self::state::{PublishedRecord, State, StateError};
use crate::engine::{Engine, EngineError};
use crate::execute::network::NetworkSettings;
use crate::execute::tools::{find_uv, Tools};
use crate::execute::{BuildError, BuildOutcome, Builder};
use crate::model::families::{
    DeclarationError, Declarations, Family, FamilyBase, FamilyKind, FamilyVersion,
};
use crate::plan::python::InstallerChoice;
use crate::plan::Base;
use crate::platform::Platform;
use crate::progress::{Event, Reporter};
use crate::registry::RegistryError;

/// Where base images are published when neither `--registry` nor `registry` in
/// connector-build.toml says otherwise: the set-up's local registry.
pub const DEFAULT_REGISTRY: &str = "127.0.0.1:5000";

#[derive(Debug, thiserror::Error)]
pub enum BaseImageError {
    #[error(transparent)]
    Declaration(#[from] DeclarationError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Root(#[from] RootError),
    #[error(transparent)]
    Tool(#[from] crate::execute::tools::ToolError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("{reference} is published as an index ({digest}) that has no {platform} image; a published tag is not overwritten without --force\nhint: publish every platform at once: `connector-build base-images publish {family} --platform linux/amd64,linux/arm64`")]
    IndexLacks {
        reference: String,
        digest: String,
        platform: Platform,
        family: String,
    },
    #[error("{family} {version} has no {platform} image in {registry} to put in its index\nhint: publish it first (`connector-build base-images publish {family} {version} --platform {platform}`)")]
    NotPublishedFor {
        family: String,
        version: String,
        platform: Platform,
        registry: String,
    },
    #[error("{family} builds on {base} {version}, which is not published to {registry}\nhint: publish it first (`connector-build base-images publish {base} {version}`)")]
    BaseUnpublished {
        family: String,
        base: String,
        version: String,
        registry: String,
    },
    #[error("{image} is not in the engine\nhint: build it first (`connector-build base-images build {family} {version}`) or pass --image")]
    NotBuilt {
        image: String,
        family: String,
        version: String,
    },
    #[error("{family} {version} is not released: the previous version {previous} is not published to {registry}\nhint: publish it first (`connector-build base-images publish {family} {previous}`), or pass --with-older to publish every missing older version first")]
    PreviousUnpublished {
        family: String,
        version: String,
        previous: String,
        registry: String,
    },
    #[error("{reference} is already published as {digest}, and the image built from the declaration is a different one; a published tag is not overwritten without --force (connectors pinned to {digest} keep it only while the registry does)")]
    AlreadyPublished { reference: String, digest: String },
    #[error("{family} {version} failed its checks, so it was not published:\n{report}")]
    ChecksFailed {
        family: String,
        version: String,
        report: String,
    },
    #[error(
        "the registry has no digest for {reference} right after pushing it; nothing was recorded"
    )]
    NoDigest { reference: String },
    #[error("the push of {reference} reported digest {pushed} but the registry serves {served}; nothing was recorded")]
    DigestDiffers {
        reference: String,
        pushed: String,
        served: String,
    },
    #[error("no release of {family} ({repository}) is published to {registry} (pre-releases are never chosen)\nhint: publish one with `connector-build base-images publish {family}`")]
    NothingPublished {
        family: String,
        repository: String,
        registry: String,
    },
}

/// A version's state in a registry.
#[derive(Debug, Clone, Serialize)]
pub struct VersionState {
    pub version: String,
    pub prerelease: bool,
    pub changelog: String,
    pub published: bool,
    pub digest: Option<String>,
    /// `registry/repository:version@sha256:...` when published.
    pub reference: Option<String>,
}

/// The outcome of publishing one version.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub family: String,
    pub version: String,
    pub reference: String,
    pub digest: String,
    /// False when the registry already had this very image under the tag.
    pub pushed: bool,
    /// For an index: the platforms it lists (empty for one platform's image).
    pub platforms: Vec<Platform>,
    /// For an index put where the tag held one platform's image alone: that platform.
    pub extended: Option<Platform>,
}

/// What the base image operations work with.
#[derive(Clone, Copy)]
pub struct BaseImages<'a> {
    pub engine: &'a Engine,
    pub network: &'a NetworkSettings,
    pub reporter: &'a dyn Reporter,
    pub declarations: &'a Declarations,
    pub state: &'a State,
    /// Registry host[:port] to publish to and read published state from.
    pub registry: &'a str,
    /// Registry -> mirror, for roots pulled from a registry.
    pub mirrors: &'a BTreeMap<String, String>,
    /// Registries spoken to over plain HTTP (`insecure_registries` in connector-build.toml).
    pub insecure: &'a [String],
    /// The platform built, checked and published: linux/amd64 under the version's tags,
    /// another under `<version>-linux-<arch>` (see [`root::for_platform`]).
    pub platform: Platform,
}

impl BaseImages<'_> {
    /// `repository:version` in the engine, for this platform.
    pub fn local_tag(&self, family: &Family, v: &FamilyVersion) -> String {
        root::for_platform(&family.local_tag(&v.version), self.platform)
    }

    /// `registry/repository:version`, for this platform.
    pub fn registry_tag(&self, family: &Family, v: &FamilyVersion) -> String {
        root::for_platform(
            &family.registry_tag(self.registry, &v.version),
            self.platform,
        )
    }

    /// The same operations for `platform`.
    pub fn on(&self, platform: Platform) -> BaseImages<'_> {
        BaseImages { platform, ..*self }
    }

    fn reader(&self) -> index::Reader<'_> {
        index::Reader {
            engine: self.engine,
            registry: self.registry,
            insecure: self.insecure,
        }
    }

    /// What the registry holds under `v`'s tag for this platform: one image, or an index.
    async fn tagged(
        &self,
        family: &Family,
        v: &FamilyVersion,
    ) -> Result<Option<Tagged>, BaseImageError> {
        let tag = root::for_platform(&v.version.to_string(), self.platform);
        Ok(self.reader().read(&family.repository, &tag).await?)
    }

    /// Builds `v` on its root image (reusing the layer cache) and tags it
    /// `repository:version` in the engine.
    pub async fn build(
        &self,
        family: &Family,
        v: &FamilyVersion,
    ) -> Result<BuildOutcome, BaseImageError> {
        let base = match &v.decl.base {
            Some(b) => self.family_base(family, b).await?,
            None => {
                let root = self.declarations.root(&v.decl.root).ok_or_else(|| {
                    DeclarationError::Invalid {
                        path: family.path.clone(),
                        message: format!("root `{}` is not declared", v.decl.root),
                    }
                })?;
                root::resolve(root, self.state, self.mirrors, self.platform)?
            }
        };
        // pip installs pip and poetry; the declarative family's CDK goes through uv when the
        // machine has it, as connector installs do.
        let (installer, tools) = match (family.kind, find_uv(None)) {
            (FamilyKind::Declarative, Some(path)) => {
                let tools = Tools::none().with("uv", &path)?;
                let identity = tools
                    .get("uv")
                    .map(|t| t.identity.clone())
                    .unwrap_or_default();
                (InstallerChoice::Uv { identity }, tools)
            }
            _ => (InstallerChoice::Pip, Tools::none()),
        };
        let mut plan = plan::plan_version(family, v, base, &self.network.fingerprint(), &installer);
        plan.platform = Some(self.platform);
        plan.output_tag = self.local_tag(family, v);
        self.reporter.report(Event::Started {
            connector: plan.connector.clone(),
            steps: crate::execute::progress_steps(&plan),
        });
        let builder = Builder {
            engine: self.engine,
            network: self.network,
            tools: &tools,
            reporter: self.reporter,
            remote: None,
            rebase: false,
        };
        let outcome = builder.build(&plan).await;
        self.reporter.report(Event::Finished {
            connector: plan.connector.clone(),
            ok: outcome.is_ok(),
        });
        Ok(outcome?)
    }

    /// The image a declarative family version builds on: the base family's version as
    /// published to the registry, by digest.
    async fn family_base(&self, family: &Family, b: &FamilyBase) -> Result<Base, BaseImageError> {
        let base_family = self.declarations.family(&b.family)?;
        let base_version = base_family.version(Some(&b.version))?;
        let tag = self.registry_tag(base_family, base_version);
        // This platform's image, also when the tag is an index: the build's base stays the
        // image it was before the tag gained other platforms.
        let tagged = self.tagged(base_family, base_version).await?;
        let Some(digest) = tagged
            .as_ref()
            .and_then(|t| t.image_for(self.platform))
            .map(str::to_string)
        else {
            return Err(BaseImageError::BaseUnpublished {
                family: family.name.clone(),
                base: b.family.clone(),
                version: b.version.clone(),
                registry: self.registry.to_string(),
            });
        };
        let pinned = format!("{tag}@{digest}");
        Ok(Base::Image {
            reference: pinned.clone(),
            pull: pinned,
            digest: Some(digest),
        })
    }

    /// Runs the sanity checks on `image`, by default the version's local tag.
    pub async fn check(
        &self,
        family: &Family,
        v: &FamilyVersion,
        image: Option<&str>,
    ) -> Result<CheckReport, BaseImageError> {
        let image = image
            .map(str::to_string)
            .unwrap_or_else(|| self.local_tag(family, v));
        let info =
            self.engine
                .inspect_image(&image)
                .await?
                .ok_or_else(|| BaseImageError::NotBuilt {
                    image: image.clone(),
                    family: family.name.clone(),
                    version: v.version.to_string(),
                })?;
        let mut report = check::check_image(self.engine, family, v, &image, &info).await?;
        // The probes above ran under emulation when the platform is not the engine's.
        report.checks.insert(
            0,
            check::Check {
                name: "platform".into(),
                ok: info.platform() == Some(self.platform),
                expected: self.platform.to_string(),
                actual: format!("{}/{}", info.os, info.architecture),
            },
        );
        Ok(report)
    }

    /// The digest `v` has in the registry, if published.
    pub async fn published_digest(
        &self,
        family: &Family,
        v: &FamilyVersion,
    ) -> Result<Option<String>, BaseImageError> {
        Ok(self
            .engine
            .registry_digest(&self.registry_tag(family, v))
            .await?)
    }

    /// Every declared version with its state in the registry, newest first.
    pub async fn list(&self, family: &Family) -> Result<Vec<VersionState>, BaseImageError> {
        let mut out = Vec::new();
        for v in &family.versions {
            let digest = self.published_digest(family, v).await?;
            out.push(VersionState {
                version: v.version.to_string(),
                prerelease: v.version.is_prerelease(),
                changelog: v.decl.changelog.clone(),
                published: digest.is_some(),
                reference: digest
                    .as_ref()
                    .map(|d| format!("{}@{d}", self.registry_tag(family, v))),
                digest,
            });
        }
        Ok(out)
    }

    /// The digest-pinned address of the newest published version that is not a pre-release.
    pub async fn latest_release(&self, family: &Family) -> Result<String, BaseImageError> {
        for v in family
            .versions
            .iter()
            .filter(|v| !v.version.is_prerelease())
        {
            if let Some(d) = self.published_digest(family, v).await? {
                return Ok(format!("{}@{d}", self.registry_tag(family, v)));
            }
        }
        Err(BaseImageError::NothingPublished {
            family: family.name.clone(),
            repository: family.repository.clone(),
            registry: self.registry.to_string(),
        })
    }

    /// Publishes `version` (default: the newest declared): builds it, checks it, pushes it
    /// and records its digest-pinned address. With `with_older`, every older declared version
    /// the registry lacks is published first, oldest first.
    pub async fn publish(
        &self,
        family: &Family,
        version: Option<&str>,
        force: bool,
        with_older: bool,
    ) -> Result<Vec<Published>, BaseImageError> {
        let target = family.version(version)?;
        let mut done = Vec::new();
        if with_older {
            for older in family
                .versions
                .iter()
                .rev()
                .filter(|v| v.version < target.version)
            {
                if self.published_digest(family, older).await?.is_none() {
                    done.push(self.publish_one(family, older, false).await?);
                }
            }
        }
        done.push(self.publish_one(family, target, force).await?);
        Ok(done)
    }

    async fn publish_one(
        &self,
        family: &Family,
        v: &FamilyVersion,
        force: bool,
    ) -> Result<Published, BaseImageError> {
        let tag = self.registry_tag(family, v);
        // Registry state first: a registry that is down fails here, before any work.
        let existing = self.tagged(family, v).await?;
        if let Some(previous) = family.previous(&v.version) {
            if self.published_digest(family, previous).await?.is_none() {
                return Err(BaseImageError::PreviousUnpublished {
                    family: family.name.clone(),
                    version: v.version.to_string(),
                    previous: previous.version.to_string(),
                    registry: self.registry.to_string(),
                });
            }
        }
        let built = self.build(family, v).await?;
        let report = self.check(family, v, Some(&built.tag)).await?;
        if !report.passed() {
            return Err(BaseImageError::ChecksFailed {
                family: family.name.clone(),
                version: v.version.to_string(),
                report: report.render(),
            });
        }
        let name = format!("{}/{}", self.registry, family.repository);
        if let Some(existing) = existing {
            let Some(mine) = existing.image_for(self.platform) else {
                if force {
                    return self.push_one(family, v, &built.image_id, tag).await;
                }
                return Err(BaseImageError::IndexLacks {
                    reference: tag,
                    digest: existing.digest().to_string(),
                    platform: self.platform,
                    family: family.name.clone(),
                });
            };
            // The engine remembers the digests an image was pushed or pulled as.
            let same = self
                .engine
                .inspect_image(&built.image_id)
                .await?
                .is_some_and(|i| i.repo_digests.contains(&format!("{name}@{mine}")));
            if same {
                self.engine.tag(&built.image_id, &tag).await?;
                // The tag's own digest: an index, once other platforms joined it.
                return self.record(family, v, self.platform, &tag, existing.digest(), false);
            }
            if !force {
                return Err(BaseImageError::AlreadyPublished {
                    reference: tag,
                    digest: existing.digest().to_string(),
                });
            }
        }
        self.push_one(family, v, &built.image_id, tag).await
    }

    /// Tags the built image as `tag` and pushes it.
    async fn push_one(
        &self,
        family: &Family,
        v: &FamilyVersion,
        image_id: &str,
        tag: String,
    ) -> Result<Published, BaseImageError> {
        self.engine.tag(image_id, &tag).await?;
        let label = plan::short_name(family).to_string();
        let reporter = self.reporter;
        let pushed = self
            .engine
            .push(&tag, |line| {
                reporter.report(Event::Output {
                    connector: format!("{label}:{}", v.version),
                    line: line.to_string(),
                })
            })
            .await?;
        let served =
            self.engine
                .registry_digest(&tag)
                .await?
                .ok_or_else(|| BaseImageError::NoDigest {
                    reference: tag.clone(),
                })?;
        if let Some(pushed) = pushed.filter(|p| *p != served) {
            return Err(BaseImageError::DigestDiffers {
                reference: tag,
                pushed,
                served,
            });
        }
        self.record(family, v, self.platform, &tag, &served, true)
    }

    /// Publishes `version` (default: the newest) for each of `platforms` as [`publish`]
    /// does, then, for more than one, each version published as one index under its tag
    /// over the platforms' images. Results: each platform's, then the indexes.
    ///
    /// [`publish`]: BaseImages::publish
    pub async fn publish_platforms(
        &self,
        family: &Family,
        version: Option<&str>,
        force: bool,
        with_older: bool,
        platforms: &[Platform],
    ) -> Result<Vec<Published>, BaseImageError> {
        let mut done = Vec::new();
        for &p in platforms {
            done.extend(
                self.on(p)
                    .publish(family, version, force, with_older)
                    .await?,
            );
        }
        if platforms.len() < 2 {
            return Ok(done);
        }
        let versions: Vec<&FamilyVersion> = family
            .versions
            .iter()
            .rev()
            .filter(|v| done.iter().any(|p| p.version == v.version.to_string()))
            .collect();
        for v in versions {
            done.push(self.publish_index(family, v, platforms, force).await?);
        }
        Ok(done)
    }

    /// Puts the index over `platforms`' published images of `v` under `v`'s tag. A tag that
    /// holds one of those images alone gains the others; any other image or index there is
    /// kept unless `force`.
    async fn publish_index(
        &self,
        family: &Family,
        v: &FamilyVersion,
        platforms: &[Platform],
        force: bool,
    ) -> Result<Published, BaseImageError> {
        let mut images = Vec::new();
        for &p in platforms {
            let tagged = self.on(p).tagged(family, v).await?;
            let digest = tagged
                .as_ref()
                .and_then(|t| t.image_for(p))
                .ok_or_else(|| BaseImageError::NotPublishedFor {
                    family: family.name.clone(),
                    version: v.version.to_string(),
                    platform: p,
                    registry: self.registry.to_string(),
                })?;
            images.push((p, digest.to_string()));
        }
        let client = self.reader().client()?;
        let index = index::assemble(&client, &family.repository, &images).await?;
        let version = v.version.to_string();
        let tag = family.registry_tag(self.registry, &v.version);
        let existing = self.reader().read(&family.repository, &version).await?;
        let (pushed, extended) = match index::update(existing.as_ref(), &index) {
            Update::Unchanged => (false, None),
            Update::New => (true, None),
            Update::Extends { platform } => (true, Some(platform)),
            Update::Conflicts { existing } if !force => {
                return Err(BaseImageError::AlreadyPublished {
                    reference: tag,
                    digest: existing,
                })
            }
            Update::Conflicts { .. } => (true, None),
        };
        if pushed {
            index::push(&client, &family.repository, &version, &index).await?;
        }
        // Recorded as the version itself, as linux/amd64's image was under the same tag.
        let digest = index.digest.as_str();
        let mut published = self.record(family, v, Platform::LinuxAmd64, &tag, digest, pushed)?;
        published.platforms = platforms.to_vec();
        published.extended = extended;
        Ok(published)
    }

    /// Records `tag@digest` as `v` published for `platform`, under the tag's version
    /// (`1.0.0-linux-arm64`), so platforms keep a record each.
    fn record(
        &self,
        family: &Family,
        v: &FamilyVersion,
        platform: Platform,
        tag: &str,
        digest: &str,
        pushed: bool,
    ) -> Result<Published, BaseImageError> {
        let reference = format!("{tag}@{digest}");
        self.state.record_published(PublishedRecord {
            family: family.name.clone(),
            version: root::for_platform(&v.version.to_string(), platform),
            registry: self.registry.to_string(),
            repository: family.repository.clone(),
            digest: digest.to_string(),
            reference: reference.clone(),
        })?;
        Ok(Published {
            family: family.name.clone(),
            version: v.version.to_string(),
            reference,
            digest: digest.to_string(),
            pushed,
            platforms: Vec::new(),
            extended: None,
        })
    }
}
