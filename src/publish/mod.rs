//! Publishing a built connector image to a registry: immutable versions, reproducible
//! digests.
//!
//! The build stays what it is (the engine's layer cache, `docker commit`); publishing then
//! normalises its result: the image is read back from the engine (`docker save`), the base
//! image's layers are referenced as the base's own blobs (by its manifest in its registry), and
//! only the layers connector-build added are rewritten deterministically
//! ([`layer::rewrite`]), under a config and manifest whose bytes depend on the content alone
//! ([`image::assemble`]). Each platform's image is done so on that platform's base image;
//! several platforms become one OCI index over their manifests ([`index::index`]), one stays
//! a plain manifest. The digest is known before anything is sent, so the version tag's state
//! decides what happens: absent → push every platform's blobs, config, manifest (by digest)
//! and SBOM, then the index by digest, then the tags last; present with this digest → nothing
//! to do; present with another → refused, nothing pushed. [`run`] does this for a build run.

pub mod image;
pub mod index;
pub mod layer;
pub mod run;
pub mod source;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::engine::{Engine, EngineError};
use crate::fault::FaultClass;
use crate::model::image_ref::{Digest, ImageRef};
use crate::model::Connector;
use crate::platform::Platform;
use crate::registry::{
    BlobSource, Registry, RegistryError, Upload, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX,
    OCI_MANIFEST,
};
pub use crate::report::{PublishOutcome, Published, PublishedPlatform};

use self::image::{Assembled, Base, Descriptor};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Archive(#[from] crate::engine::image_archive::ImageArchiveError),
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{connector}: no connectorBuildOptions.baseImage in {metadata}; only images built on a base image can be published\nhint: migrate it with `connector-build migrate-to-base-image`")]
    NoBase {
        connector: String,
        metadata: PathBuf,
    },
    #[error("{connector}: the base image {base} is not pinned by digest")]
    BaseNotPinned { connector: String, base: String },
    #[error("the base image {base} is not in its registry (manifest {digest})")]
    BaseMissing { base: String, digest: String },
    #[error("the base image {base} is an index with no {platform} image\nhint: publish the base image for {platform}, or leave {platform} out (--platform, or `platforms` in connector-build.toml)")]
    NoPlatform { base: String, platform: String },
    #[error("the base image {base} is a {found} image, and no `-linux-<arch>` tag beside it gives a {platform} one\nhint: publish the base image for {platform} (`connector-build base-images --platform {platform} publish`), or leave {platform} out (--platform, or `platforms` in connector-build.toml)")]
    BaseWrongPlatform {
        base: String,
        platform: Platform,
        found: String,
    },
    #[error("the image {image} built for {platform} has the architecture `{architecture}` in its config")]
    WrongArchitecture {
        image: String,
        platform: Platform,
        architecture: String,
    },
    #[error("{connector}: no image was built to publish")]
    NoImage { connector: String },
    #[error("{reference} is already published with another image ({existing}; this build is {built}): a version is never overwritten\nhint: bump the version (`connector-build bump-version {connector}`), or publish a pre-release with --pre-release")]
    VersionExists {
        connector: String,
        reference: String,
        existing: String,
        built: String,
    },
    #[error("{connector}: --pre-release needs the connector's git commit, and {dir} is not in a git repository")]
    NoCommit { connector: String, dir: PathBuf },
}

impl PublishError {
    pub fn class(&self) -> FaultClass {
        match self {
            PublishError::Registry(e) => e.class(),
            PublishError::Engine(e) => e.class(),
            PublishError::Io { .. } => FaultClass::Infrastructure,
            PublishError::Archive(_)
            | PublishError::Image(_)
            | PublishError::WrongArchitecture { .. }
            | PublishError::NoImage { .. } => FaultClass::Build,
            _ => FaultClass::Input,
        }
    }
}

/// The media type of the SBOM layer and artifact.
pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// One connector's publication.
pub struct Request<'a> {
    pub engine: &'a Engine,
    /// The built images (IDs or local tags), one per platform: several make an OCI index,
    /// one is published as a plain manifest.
    pub images: &'a [(Platform, String)],
    pub connector: &'a Connector,
    /// Where it goes.
    pub registry: &'a Registry,
    /// Plain-HTTP registries, for reading the base image's registry.
    pub insecure: &'a [String],
    pub pre_release: bool,
    pub latest: bool,
    /// A scratch folder for the saved images and the rewritten layers.
    pub work_dir: &'a Path,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PublishError {
    let what = what.into();
    move |source| PublishError::Io { what, source }
}

/// One platform's image, assembled and ready to push.
struct Prepared {
    platform: Platform,
    /// This platform's base image (digest-pinned) and a client for its registry.
    base_ref: ImageRef,
    base_registry: Registry,
    assembled: Assembled,
    new_layers: Vec<layer::Layer>,
    sbom: Vec<u8>,
}

impl Prepared {
    fn sbom_tag(&self) -> String {
        format!("{}.sbom", self.assembled.digest.as_str().replace(':', "-"))
    }
}

/// What the version tag points at: the one manifest, or the index of several.
struct Top {
    bytes: Vec<u8>,
    digest: Digest,
    media_type: &'static str,
}

/// Builds the images to push from the engine's images and publishes them: one manifest, or
/// (for several platforms) each platform's manifest by digest and an OCI index over them.
pub async fn publish(req: Request<'_>) -> Result<Published, PublishError> {
    let connector = &req.connector.name;
    let metadata = &req.connector.metadata;
    let base_ref = metadata
        .base_image()
        .map(|b| b.value.clone())
        .ok_or_else(|| PublishError::NoBase {
            connector: connector.clone(),
            metadata: metadata.path.clone(),
        })?;
    let base_digest = base_ref
        .digest
        .clone()
        .ok_or_else(|| PublishError::BaseNotPinned {
            connector: connector.clone(),
            base: base_ref.to_string(),
        })?;
    let repository = metadata.docker_repository.value.clone();
    let version = metadata.docker_image_tag.value.clone();
    let src = source::Source::of(&req.connector.dir);
    let tag = if req.pre_release {
        let commit = src
            .revision
            .as_deref()
            .ok_or_else(|| PublishError::NoCommit {
                connector: connector.clone(),
                dir: req.connector.dir.clone(),
            })?;
        format!("{version}-dev.{}", &commit[..commit.len().min(10)])
    } else {
        version.clone()
    };

    // The index lists platforms in a fixed order, whichever the engine's is.
    let mut images: Vec<&(Platform, String)> = req.images.iter().collect();
    images.sort_by_key(|(p, _)| *p);
    images.dedup_by_key(|(p, _)| *p);
    if images.is_empty() {
        return Err(PublishError::NoImage {
            connector: connector.clone(),
        });
    }
    let mut prepared = Vec::new();
    for (platform, image) in images {
        let dir = req.work_dir.join(platform.tag_suffix());
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        let one = prepare(
            &req,
            *platform,
            image,
            &base_ref,
            &base_digest,
            &src,
            (&tag, &version, &repository),
            &dir,
        )
        .await?;
        // The rewritten layers stay until pushed; the caller removes the folder.
        prepared.push(one);
    }

    let top = match prepared.as_slice() {
        [one] => Top {
            bytes: one.assembled.manifest.clone(),
            digest: one.assembled.digest.clone(),
            media_type: OCI_MANIFEST,
        },
        several => {
            let i = index::index(
                &several.iter().map(|p| &p.assembled).collect::<Vec<_>>(),
                // The index says what the connector declares; each manifest its own base.
                &annotations(&base_ref, &base_digest, &src, &version),
            );
            Top {
                bytes: i.bytes,
                digest: i.digest,
                media_type: OCI_INDEX,
            }
        }
    };

    let registry = req.registry;
    let name = format!("{}/{repository}", registry.name());
    let mut reproducibility = source::reproducibility_risks(&req.connector.dir);
    if src.epoch_source == "none" {
        reproducibility.push(
            "no SOURCE_DATE_EPOCH and the connector folder is not in git: file times are fixed to 1970-01-01"
                .into(),
        );
    }
    if src.dirty {
        reproducibility.push(
            "the connector folder has uncommitted changes: its commit does not describe what was built"
                .into(),
        );
    }
    let platforms: Vec<PublishedPlatform> = prepared
        .iter()
        .map(|p| PublishedPlatform {
            platform: p.platform.to_string(),
            digest: p.assembled.digest.to_string(),
            config_digest: p.assembled.config_digest.to_string(),
            base_image: p.base_ref.to_string(),
            sbom_tag: p.sbom_tag(),
            sbom_file: None,
            sbom: p.sbom.clone(),
        })
        .collect();
    let single = (platforms.len() == 1).then(|| &platforms[0]);
    let mut published = Published {
        image: format!("{name}:{tag}@{}", top.digest),
        name: name.clone(),
        tag: tag.clone(),
        digest: top.digest.to_string(),
        media_type: top.media_type.to_string(),
        config_digest: single.map(|p| p.config_digest.clone()),
        tags: vec![tag.clone()],
        outcome: PublishOutcome::Pushed,
        reproducible: reproducibility.is_empty(),
        reproducibility,
        epoch: src.epoch,
        epoch_source: src.epoch_source.clone(),
        revision: src.revision.clone(),
        blobs_uploaded: 0,
        blobs_mounted: 0,
        blobs_present: 0,
        bytes_uploaded: 0,
        sbom_tag: single.map(|p| p.sbom_tag.clone()),
        sbom_file: None,
        platforms,
    };

    match registry.manifest_digest(&repository, &tag).await? {
        Some(existing) if existing == top.digest => {
            published.outcome = PublishOutcome::AlreadyPublished;
        }
        Some(existing) => {
            return Err(PublishError::VersionExists {
                connector: connector.clone(),
                reference: format!("{name}:{tag}"),
                existing: existing.to_string(),
                built: top.digest.to_string(),
            })
        }
        None => {
            // Every platform's image and SBOM first, then the index, by digest.
            for p in &prepared {
                push_image(
                    registry,
                    &p.base_registry,
                    &p.base_ref.repository,
                    &repository,
                    &p.assembled,
                    &p.new_layers,
                    &mut published,
                )
                .await?;
                push_sbom(
                    registry,
                    &repository,
                    &p.assembled,
                    &p.sbom,
                    &p.sbom_tag(),
                    src.epoch,
                )
                .await?;
            }
            if top.media_type == OCI_INDEX {
                registry
                    .put_manifest(&repository, top.digest.as_str(), &top.bytes, OCI_INDEX)
                    .await?;
            }
            // The version tag last: until here no tag points at a partial image.
            registry
                .put_manifest(&repository, &tag, &top.bytes, top.media_type)
                .await?;
        }
    }
    if req.latest
        && registry.manifest_digest(&repository, "latest").await? != Some(top.digest.clone())
    {
        registry
            .put_manifest(&repository, "latest", &top.bytes, top.media_type)
            .await?;
    }
    if req.latest {
        published.tags.push("latest".into());
    }
    Ok(published)
}

/// One platform's image: the base's manifest for that platform, the engine's image read back
/// and its own layers rewritten, its SBOM, config and manifest.
#[allow(clippy::too_many_arguments)]
async fn prepare(
    req: &Request<'_>,
    platform: Platform,
    image: &str,
    declared: &ImageRef,
    declared_digest: &Digest,
    src: &source::Source,
    (tag, version, repository): (&str, &str, &str),
    work_dir: &Path,
) -> Result<Prepared, PublishError> {
    let base_ref = platform_base(req.engine, declared, declared_digest, platform).await?;
    let base_digest = base_ref.digest.clone().unwrap_or(declared_digest.clone());
    // The base image as its registry serves it (same registry: one client).
    let base_registry = if base_ref.registry == req.registry.name() {
        req.registry.clone()
    } else {
        Registry::connect(&base_ref.registry, req.insecure)?
    };
    let base = fetch_base(&base_registry, &base_ref, &base_digest, platform).await?;

    // The image the engine built, read back and normalised.
    let saved = req.engine.save_image(image, work_dir).await?;
    let engine_config = saved.config_json()?;
    let built_arch = engine_config["architecture"].as_str().unwrap_or_default();
    if built_arch != platform.arch() {
        return Err(PublishError::WrongArchitecture {
            image: image.to_string(),
            platform,
            architecture: built_arch.to_string(),
        });
    }
    let base_count = base.layers.len();
    if saved.layers.len() < base_count {
        return Err(image::ImageError::NotOnBase {
            base: base_ref.to_string(),
            detail: format!(
                "{} layers, fewer than the base's {base_count}",
                saved.layers.len()
            ),
        }
        .into());
    }
    let mut new_layers = Vec::new();
    for (i, member) in saved.layers[base_count..].iter().enumerate() {
        let out = work_dir.join(format!("layer-{i}.tar.gz"));
        let (path, member, epoch) = (saved.path.clone(), member.data, src.epoch);
        let layer = tokio::task::spawn_blocking(move || layer::rewrite(&path, member, epoch, &out))
            .await
            .map_err(|e| PublishError::Io {
                what: "rewriting a layer".into(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map_err(io(format!("rewriting layer {} of {image}", i + 1)))?;
        new_layers.push(layer);
    }
    let sbom = make_sbom(
        req.connector,
        &saved,
        tag,
        registry_name(req.registry, repository),
        &base_ref,
        src.epoch,
    )?;
    // The saved image is the largest file here; the rewritten layers are all that is needed.
    drop(saved);

    let annotations = annotations(&base_ref, &base_digest, src, version);
    let base_name = base_name(&base_ref);
    let assembled = image::assemble(
        &engine_config,
        &Base {
            name: &base_name,
            config: &base.config,
            layers: &base.layers,
        },
        &new_layers,
        src.epoch,
        &annotations,
    )?;
    Ok(Prepared {
        platform,
        base_ref,
        base_registry,
        assembled,
        new_layers,
        sbom,
    })
}

/// The base `platform`'s image was built on: for a platform other than linux/amd64 and a
/// single-platform base, the registry's `<tag>-linux-<arch>` beside it, pinned to its digest
/// (the rule the build follows, [`crate::execute::cross::platform_base`]); else the declared
/// base (an index is resolved by [`fetch_base`]).
async fn platform_base(
    engine: &Engine,
    declared: &ImageRef,
    digest: &Digest,
    platform: Platform,
) -> Result<ImageRef, PublishError> {
    let reference = declared.to_string();
    let base = crate::plan::Base::Image {
        reference: reference.clone(),
        pull: reference,
        digest: Some(digest.to_string()),
    };
    match crate::execute::cross::platform_base(engine, &base, platform).await? {
        Some(crate::plan::Base::Image { reference, .. }) => {
            ImageRef::parse(&reference).map_err(|e| PublishError::Io {
                what: format!("the base image {reference}"),
                source: std::io::Error::other(e.to_string()),
            })
        }
        _ => Ok(declared.clone()),
    }
}

/// Every blob, the config and the manifest by digest; no tag.
async fn push_image(
    registry: &Registry,
    base_registry: &Registry,
    base_repository: &str,
    repository: &str,
    assembled: &Assembled,
    new_layers: &[layer::Layer],
    published: &mut Published,
) -> Result<(), PublishError> {
    let count = |up: Upload, p: &mut Published| match up {
        Upload::Present => p.blobs_present += 1,
        Upload::Mounted => p.blobs_mounted += 1,
        Upload::Uploaded(n) => {
            p.blobs_uploaded += 1;
            p.bytes_uploaded += n;
        }
    };
    let base_count = assembled.layers.len() - new_layers.len();
    for d in &assembled.layers[..base_count] {
        let up = copy_blob(base_registry, base_repository, registry, repository, d).await?;
        count(up, published);
    }
    for l in new_layers {
        let up = registry
            .upload_blob(repository, &l.digest, BlobSource::File(&l.path), None)
            .await?;
        count(up, published);
    }
    let up = registry
        .upload_blob(
            repository,
            &assembled.config_digest,
            BlobSource::Bytes(&assembled.config),
            None,
        )
        .await?;
    count(up, published);
    registry
        .put_manifest(
            repository,
            assembled.digest.as_str(),
            &assembled.manifest,
            OCI_MANIFEST,
        )
        .await?;
    Ok(())
}

/// `registry/repository` as an image reference, for the SBOM's purl.
fn registry_name(registry: &Registry, repository: &str) -> String {
    format!("{}/{repository}", registry.name())
}

/// The image's SBOM, from the saved image's layers (all of them, base first).
fn make_sbom(
    connector: &Connector,
    saved: &crate::engine::image_archive::SavedImage,
    tag: &str,
    name: String,
    base: &ImageRef,
    epoch: u64,
) -> Result<Vec<u8>, PublishError> {
    let mut layers = Vec::new();
    for l in &saved.layers {
        layers.push(saved.open_layer(l)?);
    }
    let inventory = crate::sbom::Inventory::from_layers(layers).map_err(|e| PublishError::Io {
        what: "reading the image's layers for its SBOM".into(),
        source: std::io::Error::other(crate::error::error_chain(&e)),
    })?;
    // The lock's hashes, as the install step's pinned requirements carry them.
    let hashes = crate::python::install::dependency_install(
        &connector.dir,
        &crate::python::install::Installer::Pip,
        "/scratch",
    )
    .ok()
    .and_then(|i| {
        i.scratch_files
            .into_iter()
            .find(|f| f.name == "requirements.txt")
            .map(|f| crate::sbom::hashes_from_requirements(&f.contents))
    })
    .unwrap_or_default();
    let image = ImageRef::parse(&name).map_err(|e| PublishError::Io {
        what: format!("the image name {name}"),
        source: std::io::Error::other(e.to_string()),
    })?;
    let subject = crate::sbom::Subject {
        name: connector.name.clone(),
        version: tag.to_string(),
        image,
        base_image: base.clone(),
        timestamp: epoch as i64,
    };
    Ok(crate::sbom::to_bytes(&crate::sbom::cyclonedx(
        &subject, &inventory, &hashes,
    )))
}

/// The SBOM as an OCI artifact tagged `sha256-<digest>.sbom` (cosign's attachment scheme,
/// which every registry serves), with a `subject` for registries with the referrers API.
async fn push_sbom(
    registry: &Registry,
    repository: &str,
    assembled: &Assembled,
    sbom: &[u8],
    sbom_tag: &str,
    epoch: u64,
) -> Result<(), PublishError> {
    let sbom_digest = crate::registry::sha256_digest(sbom);
    let empty = b"{}";
    let empty_digest = crate::registry::sha256_digest(empty);
    registry
        .upload_blob(repository, &empty_digest, BlobSource::Bytes(empty), None)
        .await?;
    registry
        .upload_blob(repository, &sbom_digest, BlobSource::Bytes(sbom), None)
        .await?;
    let manifest = image::canonical(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": CYCLONEDX_JSON,
        "config": {"mediaType": OCI_EMPTY, "digest": empty_digest.as_str(), "size": empty.len()},
        "layers": [{"mediaType": CYCLONEDX_JSON, "digest": sbom_digest.as_str(), "size": sbom.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": assembled.digest.as_str(), "size": assembled.manifest.len()},
        "annotations": {"org.opencontainers.image.created": image::rfc3339(epoch)},
    }));
    registry
        .put_manifest(repository, sbom_tag, &manifest, OCI_MANIFEST)
        .await?;
    Ok(())
}

/// A base layer into `repository`: there already, mounted (same registry), or copied.
async fn copy_blob(
    from: &Registry,
    from_repository: &str,
    to: &Registry,
    repository: &str,
    d: &Descriptor,
) -> Result<Upload, PublishError> {
    if to.blob_exists(repository, &d.digest).await? {
        return Ok(Upload::Present);
    }
    if from.name() == to.name()
        && to
            .mount_blob(repository, &d.digest, from_repository)
            .await?
    {
        return Ok(Upload::Mounted);
    }
    let tmp = tempfile::NamedTempFile::new().map_err(io("a temporary file for a base layer"))?;
    from.download_blob(from_repository, &d.digest, tmp.path())
        .await?;
    Ok(to
        .upload_blob(repository, &d.digest, BlobSource::File(tmp.path()), None)
        .await?)
}

struct BaseImage {
    config: serde_json::Value,
    layers: Vec<Descriptor>,
}

/// The base image's platform manifest and config, from its registry, by digest.
async fn fetch_base(
    registry: &Registry,
    base: &ImageRef,
    digest: &Digest,
    platform: Platform,
) -> Result<BaseImage, PublishError> {
    let missing = || PublishError::BaseMissing {
        base: base.to_string(),
        digest: digest.to_string(),
    };
    let mut manifest = registry
        .manifest(&base.repository, digest.as_str())
        .await?
        .ok_or_else(missing)?;
    if manifest.media_type == OCI_INDEX || manifest.media_type == DOCKER_LIST {
        let index: serde_json::Value = serde_json::from_slice(&manifest.bytes)
            .map_err(|e| image_error(base, &format!("its index is not JSON: {e}")))?;
        let chosen = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| {
                Platform::from_os_arch(
                    m["platform"]["os"].as_str().unwrap_or_default(),
                    m["platform"]["architecture"].as_str().unwrap_or_default(),
                ) == Some(platform)
            })
            .and_then(|m| m["digest"].as_str())
            .ok_or_else(|| PublishError::NoPlatform {
                base: base.to_string(),
                platform: platform.to_string(),
            })?
            .to_string();
        manifest = registry
            .manifest(&base.repository, &chosen)
            .await?
            .ok_or_else(missing)?;
    }
    if manifest.media_type != OCI_MANIFEST && manifest.media_type != DOCKER_MANIFEST {
        return Err(image_error(
            base,
            &format!("its manifest is of type {}", manifest.media_type),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| image_error(base, &format!("its manifest is not JSON: {e}")))?;
    let descriptor = |v: &serde_json::Value| -> Option<Descriptor> {
        Some(Descriptor {
            media_type: v["mediaType"].as_str()?.to_string(),
            digest: Digest::parse(v["digest"].as_str()?).ok()?,
            size: v["size"].as_u64()?,
        })
    };
    let config_d = descriptor(&value["config"])
        .ok_or_else(|| image_error(base, "its manifest has no config descriptor"))?;
    let layers = value["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(descriptor)
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| image_error(base, "a layer descriptor is incomplete"))?;
    let config = registry.blob(&base.repository, &config_d.digest).await?;
    let config: serde_json::Value = serde_json::from_slice(&config)
        .map_err(|e| image_error(base, &format!("its config is not JSON: {e}")))?;
    // A single-platform base must be the platform's own (an image for another one would give
    // a manifest whose config says one architecture over binaries of another).
    let found = Platform::from_os_arch(
        config["os"].as_str().unwrap_or_default(),
        config["architecture"].as_str().unwrap_or_default(),
    );
    if found != Some(platform) {
        return Err(PublishError::BaseWrongPlatform {
            base: base.to_string(),
            platform,
            found: format!(
                "{}/{}",
                config["os"].as_str().unwrap_or("?"),
                config["architecture"].as_str().unwrap_or("?")
            ),
        });
    }
    Ok(BaseImage { config, layers })
}

fn image_error(base: &ImageRef, what: &str) -> PublishError {
    PublishError::Image(image::ImageError::BaseConfig {
        base: base.to_string(),
        what: what.to_string(),
    })
}

/// `registry/repository:tag` of the base, without its digest.
fn base_name(base: &ImageRef) -> String {
    match &base.tag {
        Some(t) => format!("{}:{t}", base.name()),
        None => base.name(),
    }
}

/// The OCI annotations, also set as labels.
fn annotations(
    base: &ImageRef,
    base_digest: &Digest,
    src: &source::Source,
    version: &str,
) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let key = |k: &str| format!("org.opencontainers.image.{k}");
    a.insert(key("base.name"), base_name(base));
    a.insert(key("base.digest"), base_digest.to_string());
    a.insert(key("version"), version.to_string());
    a.insert(key("created"), image::rfc3339(src.epoch));
    if let Some(s) = &src.url {
        a.insert(key("source"), s.clone());
    }
    if let Some(r) = &src.revision {
        a.insert(key("revision"), r.clone());
    }
    a
}
