//! Publishing a built connector image to a registry: immutable versions, reproducible
//! digests.
//!
//! The build stays what it is (the engine's layer cache, `docker commit`); publishing then
//! normalises its result: the image is read back from the engine (`docker save`), the base
//! image's layers are referenced as the base's own blobs (by its manifest in its registry), and
//! only the layers connector-build added are rewritten deterministically
//! ([`layer::rewrite`]), under a config and manifest whose bytes depend on the content alone
//! ([`image::assemble`]). The digest is known before anything is sent, so the version tag's
//! state decides what happens: absent → push every blob, the config and the manifest by
//! digest, then the tags last; present with this digest → nothing to do; present with another
//! → refused, nothing pushed.

pub mod image;
pub mod layer;
pub mod source;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, EngineError};
use crate::fault::FaultClass;
use crate::model::image_ref::{Digest, ImageRef};
use crate::model::Connector;
use crate::registry::{
    BlobSource, Registry, RegistryError, Upload, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX,
    OCI_MANIFEST,
};

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
    #[error("the base image {base} is an index with no {platform} image")]
    NoPlatform { base: String, platform: String },
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
            PublishError::Archive(_) | PublishError::Image(_) => FaultClass::Build,
            _ => FaultClass::Input,
        }
    }
}

/// What became of a connector's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishOutcome {
    Pushed,
    AlreadyPublished,
}

/// A published image, for stdout, `--json`, the run report and the metadata file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    /// `registry/repository:tag@sha256:...`.
    pub image: String,
    /// `registry/repository`.
    pub name: String,
    pub tag: String,
    pub digest: String,
    pub config_digest: String,
    /// Every tag it has now (the version, and `latest` with `--latest`).
    pub tags: Vec<String>,
    pub outcome: PublishOutcome,
    /// Whether a rebuild from the same commit gives the same digest, as far as can be told.
    pub reproducible: bool,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reproducibility: Vec<String>,
    /// The time every file and the config carry (seconds since the epoch), and where it
    /// came from.
    pub epoch: u64,
    pub epoch_source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub blobs_uploaded: usize,
    pub blobs_mounted: usize,
    pub blobs_present: usize,
    pub bytes_uploaded: u64,
    /// The tag the SBOM is attached under (cosign's scheme: `sha256-<hex>.sbom`).
    pub sbom_tag: String,
    /// Where the SBOM was written (set by the caller that writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom_file: Option<PathBuf>,
    /// The SBOM itself (CycloneDX 1.5 JSON).
    #[serde(skip)]
    pub sbom: Vec<u8>,
}

/// The media type of the SBOM layer and artifact.
pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// One connector's publication.
pub struct Request<'a> {
    pub engine: &'a Engine,
    /// The built image (its ID or local tag).
    pub image: &'a str,
    pub connector: &'a Connector,
    /// Where it goes.
    pub registry: &'a Registry,
    /// Plain-HTTP registries, for reading the base image's registry.
    pub insecure: &'a [String],
    pub pre_release: bool,
    pub latest: bool,
    /// A scratch folder for the saved image and the rewritten layers.
    pub work_dir: &'a Path,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PublishError {
    let what = what.into();
    move |source| PublishError::Io { what, source }
}

/// Builds the image to push from the engine's image and publishes it.
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

    // The base image as its registry serves it (same registry: one client).
    let base_registry = if base_ref.registry == req.registry.name() {
        req.registry.clone()
    } else {
        Registry::connect(&base_ref.registry, req.insecure)?
    };
    let base = fetch_base(&base_registry, &base_ref, &base_digest).await?;

    // The image the engine built, read back and normalised.
    let saved = req.engine.save_image(req.image, req.work_dir).await?;
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
        let out = req.work_dir.join(format!("layer-{i}.tar.gz"));
        let (path, member, epoch) = (saved.path.clone(), member.data, src.epoch);
        let layer = tokio::task::spawn_blocking(move || layer::rewrite(&path, member, epoch, &out))
            .await
            .map_err(|e| PublishError::Io {
                what: "rewriting a layer".into(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map_err(io(format!("rewriting layer {} of {}", i + 1, req.image)))?;
        new_layers.push(layer);
    }
    let sbom = make_sbom(
        req.connector,
        &saved,
        &tag,
        registry_name(req.registry, &repository),
        &base_ref,
        src.epoch,
    )?;
    // The saved image is the largest file here; the rewritten layers are all that is needed.
    let engine_config = saved.config_json()?;
    drop(saved);

    let annotations = annotations(&base_ref, &base_digest, &src, &version);
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
    let mut published = Published {
        image: format!("{name}:{tag}@{}", assembled.digest),
        name: name.clone(),
        tag: tag.clone(),
        digest: assembled.digest.to_string(),
        config_digest: assembled.config_digest.to_string(),
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
        sbom_tag: format!("{}.sbom", assembled.digest.as_str().replace(':', "-")),
        sbom_file: None,
        sbom,
    };

    match registry.manifest_digest(&repository, &tag).await? {
        Some(existing) if existing == assembled.digest => {
            published.outcome = PublishOutcome::AlreadyPublished;
        }
        Some(existing) => {
            return Err(PublishError::VersionExists {
                connector: connector.clone(),
                reference: format!("{name}:{tag}"),
                existing: existing.to_string(),
                built: assembled.digest.to_string(),
            })
        }
        None => {
            push_image(
                registry,
                &base_registry,
                &base_ref.repository,
                &repository,
                &assembled,
                &new_layers,
                &mut published,
            )
            .await?;
            push_sbom(registry, &repository, &assembled, &published).await?;
            // The version tag last: until here no tag points at a partial image.
            registry
                .put_manifest(&repository, &tag, &assembled.manifest, OCI_MANIFEST)
                .await?;
        }
    }
    if req.latest
        && registry.manifest_digest(&repository, "latest").await? != Some(assembled.digest.clone())
    {
        registry
            .put_manifest(&repository, "latest", &assembled.manifest, OCI_MANIFEST)
            .await?;
    }
    if req.latest {
        published.tags.push("latest".into());
    }
    Ok(published)
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
    published: &Published,
) -> Result<(), PublishError> {
    let sbom_digest = crate::registry::sha256_digest(&published.sbom);
    let empty = b"{}";
    let empty_digest = crate::registry::sha256_digest(empty);
    registry
        .upload_blob(repository, &empty_digest, BlobSource::Bytes(empty), None)
        .await?;
    registry
        .upload_blob(
            repository,
            &sbom_digest,
            BlobSource::Bytes(&published.sbom),
            None,
        )
        .await?;
    let manifest = image::canonical(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": CYCLONEDX_JSON,
        "config": {"mediaType": OCI_EMPTY, "digest": empty_digest.as_str(), "size": empty.len()},
        "layers": [{"mediaType": CYCLONEDX_JSON, "digest": sbom_digest.as_str(), "size": published.sbom.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": assembled.digest.as_str(), "size": assembled.manifest.len()},
        "annotations": {"org.opencontainers.image.created": image::rfc3339(published.epoch)},
    }));
    registry
        .put_manifest(repository, &published.sbom_tag, &manifest, OCI_MANIFEST)
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
        let platform = "linux/amd64";
        let chosen = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == "amd64")
            .and_then(|m| m["digest"].as_str())
            .ok_or_else(|| PublishError::NoPlatform {
                base: base.to_string(),
                platform: platform.into(),
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
    let config = serde_json::from_slice(&config)
        .map_err(|e| image_error(base, &format!("its config is not JSON: {e}")))?;
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
