//! A client for the OCI distribution API, over the `oci-client` crate: what publishing (and
//! the registry cache) needs of a registry without going through the engine.
//!
//! - Plain HTTP for loopback registries (`127.0.0.0/8`, `localhost`, `::1`) and those listed
//!   in `insecure_registries`, as the Docker engine decides; https otherwise.
//! - Credentials from the Docker client configuration and credential helpers
//!   ([`crate::engine::auth`], whose helpers run under a time limit).
//! - Every operation has a time limit, so a registry that stops answering mid-push fails the
//!   push instead of hanging it.
//! - Blob uploads stream from a file and report bytes through [`crate::progress`]; nothing is
//!   printed here.
//!
//! Deleting a manifest is the one operation `oci-client` lacks; it is a single DELETE sent
//! with `reqwest` (the client `oci-client` itself uses), authorised with the token
//! `oci-client` obtained.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth as OciAuth;
use oci_client::{Reference, RegistryOperation};

use crate::engine::auth::{self, AuthError};
use crate::model::image_ref::{Digest, DEFAULT_REGISTRY};
use crate::progress::{Event, Reporter};

/// How long one request may wait for a connection or for the next bytes of an answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Manifest media types this client reads.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const ACCEPTED: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "registry {registry} does not answer ({url})\nhint: is it running and reachable from here?"
    )]
    Unreachable {
        registry: String,
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("registry {registry} did not answer within {seconds}s ({what})")]
    Timeout {
        registry: String,
        what: String,
        seconds: u64,
    },
    #[error("registry {registry} refused the credentials {user} for {what}\nhint: check them with `docker login {registry}` (they come from {config})")]
    Credentials {
        registry: String,
        what: String,
        /// "of user `x`", "(none configured)": never the secret.
        user: String,
        config: String,
    },
    #[error("registry {registry} answered {what} with an error: {message}")]
    Server {
        registry: String,
        what: String,
        /// HTTP status when known; 5xx are the registry's fault (retryable).
        status: Option<u16>,
        message: String,
    },
    #[error("cannot read the credentials for {registry}")]
    Auth {
        registry: String,
        #[source]
        source: AuthError,
    },
    #[error("cannot read {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("registry {registry}: {what}: {message}")]
    Invalid {
        registry: String,
        what: String,
        message: String,
    },
}

impl RegistryError {
    /// Whether a retry later may pass: the registry or the network failed, not the request.
    pub fn retryable(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } | RegistryError::Timeout { .. } => true,
            RegistryError::Server { status, .. } => status.is_none_or(|s| s >= 500 || s == 429),
            _ => false,
        }
    }
}

/// Whether the engine would talk plain HTTP to `registry` (`host[:port]`): loopback
/// addresses, and those the user declared insecure (`host[:port]`, or a CIDR like
/// `10.0.0.0/8` as in the engine's `insecure-registries`).
pub fn plain_http(registry: &str, insecure: &[String]) -> bool {
    let host = host_of(registry);
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let ip = host.parse::<std::net::IpAddr>().ok();
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return true;
    }
    insecure.iter().any(|entry| {
        entry == registry
            || entry == host
            || match (ip, entry.split_once('/')) {
                (Some(ip), Some((net, bits))) => in_cidr(ip, net, bits),
                _ => false,
            }
    })
}

fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    }
}

fn in_cidr(ip: std::net::IpAddr, net: &str, bits: &str) -> bool {
    use std::net::IpAddr;
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// A manifest as the registry serves it: its bytes (which the digest is over) and media type.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// A connection to one registry, with its credentials.
#[derive(Clone)]
pub struct Registry {
    registry: String,
    scheme: &'static str,
    client: oci_client::Client,
    http: reqwest::Client,
    auth: OciAuth,
    /// Who the credentials are for, for error messages: never the secret.
    user: String,
    reporter: Arc<dyn Reporter>,
    /// The connector progress is reported for.
    subject: String,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("registry", &self.registry)
            .field("scheme", &self.scheme)
            .field("user", &self.user)
            .finish()
    }
}

impl Registry {
    /// A client for `registry` (`host[:port]`), with the Docker client's credentials for it.
    pub fn connect(registry: &str, insecure: &[String]) -> Result<Registry, RegistryError> {
        let credentials =
            auth::credentials_for(registry).map_err(|source| RegistryError::Auth {
                registry: registry.to_string(),
                source,
            })?;
        let (auth, user) = match credentials.map(auth::RegistryAuth::into_inner) {
            Some(c) => match (c.username, c.password, c.identitytoken) {
                (Some(u), Some(p), _) => (OciAuth::Basic(u.clone(), p), format!("of user `{u}`")),
                // An identity token is exchanged like a password under the name `<token>`.
                (_, _, Some(t)) => (
                    OciAuth::Basic("<token>".into(), t),
                    "(an identity token)".into(),
                ),
                _ => (OciAuth::Anonymous, "(none configured)".into()),
            },
            None => (OciAuth::Anonymous, "(none configured)".into()),
        };
        Self::with_auth(registry, insecure, auth, user)
    }

    fn with_auth(
        registry: &str,
        insecure: &[String],
        auth: OciAuth,
        user: String,
    ) -> Result<Registry, RegistryError> {
        let http_only = plain_http(registry, insecure);
        let endpoint = endpoint_host(registry);
        let config = oci_client::client::ClientConfig {
            protocol: if http_only {
                oci_client::client::ClientProtocol::HttpsExcept(vec![endpoint.to_string()])
            } else {
                oci_client::client::ClientProtocol::Https
            },
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            // One PUT per blob, streamed: many times faster than 4 MiB PATCH chunks.
            use_monolithic_push: true,
            ..Default::default()
        };
        let client = oci_client::Client::try_from(config).map_err(|e| RegistryError::Invalid {
            registry: registry.to_string(),
            what: "client set-up".into(),
            message: e.to_string(),
        })?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| RegistryError::Invalid {
                registry: registry.to_string(),
                what: "client set-up".into(),
                message: e.to_string(),
            })?;
        Ok(Registry {
            registry: registry.to_string(),
            scheme: if http_only { "http" } else { "https" },
            client,
            http,
            auth,
            user,
            reporter: Arc::new(crate::progress::Silent),
            subject: String::new(),
        })
    }

    /// Reports upload progress for `subject` (a connector name) to `reporter`.
    pub fn with_reporter(mut self, reporter: Arc<dyn Reporter>, subject: &str) -> Registry {
        self.reporter = reporter;
        self.subject = subject.to_string();
        self
    }

    pub fn name(&self) -> &str {
        &self.registry
    }

    fn reference(&self, repository: &str, tag_or_digest: &str) -> Reference {
        let registry = endpoint_host(&self.registry).to_string();
        if tag_or_digest.starts_with("sha256:") {
            Reference::with_digest(registry, repository.into(), tag_or_digest.into())
        } else {
            Reference::with_tag(registry, repository.into(), tag_or_digest.into())
        }
    }

    fn error(&self, what: &str, e: OciDistributionError) -> RegistryError {
        classify(&self.registry, &self.user, what, e)
    }

    /// Runs `fut` with an overall limit (reqwest's own limits are per read).
    async fn bounded<T>(
        &self,
        what: &str,
        limit: Duration,
        fut: impl std::future::Future<Output = Result<T, RegistryError>>,
    ) -> Result<T, RegistryError> {
        tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| RegistryError::Timeout {
                registry: self.registry.clone(),
                what: what.to_string(),
                seconds: limit.as_secs(),
            })?
    }

    /// Checks the registry answers and accepts the credentials (`GET /v2/`).
    pub async fn ping(&self) -> Result<(), RegistryError> {
        let what = "the API check (/v2/)";
        let url = format!("{}://{}/v2/", self.scheme, self.registry);
        self.bounded(what, READ_TIMEOUT, async {
            let mut request = self.http.get(&url);
            if let OciAuth::Basic(u, p) = &self.auth {
                request = request.basic_auth(u, Some(p));
            }
            let response = request
                .send()
                .await
                .map_err(|e| self.request_error(what, &url, e))?;
            let status = response.status();
            // A 401 with a Bearer challenge is how token registries answer everyone here.
            let bearer = response
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.to_ascii_lowercase().starts_with("bearer"));
            match status.as_u16() {
                200..=299 => Ok(()),
                401 if bearer => Ok(()),
                401 | 403 => Err(self.credentials_error(what)),
                code => Err(RegistryError::Server {
                    registry: self.registry.clone(),
                    what: what.into(),
                    status: Some(code),
                    message: status.to_string(),
                }),
            }
        })
        .await
    }

    /// The digest the registry serves for `repository:tag`; `None` when there is no such tag.
    pub async fn manifest_digest(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<Digest>, RegistryError> {
        let what = format!("the manifest of {repository}:{tag}");
        let reference = self.reference(repository, tag);
        self.bounded(&what, READ_TIMEOUT, async {
            match self
                .client
                .fetch_manifest_digest(&reference, &self.auth)
                .await
            {
                Ok(d) => Digest::parse(&d)
                    .map(Some)
                    .map_err(|message| self.invalid(&what, message)),
                Err(e) if not_found(&e) => Ok(None),
                Err(e) => Err(self.error(&what, e)),
            }
        })
        .await
    }

    /// The manifest at `reference` (a tag or a digest) as served; `None` when absent.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Manifest>, RegistryError> {
        let what = format!("the manifest of {repository} {reference}");
        let r = self.reference(repository, reference);
        self.bounded(&what, READ_TIMEOUT, async {
            match self
                .client
                .pull_manifest_raw(&r, &self.auth, ACCEPTED)
                .await
            {
                Ok((bytes, digest)) => {
                    let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
                        .ok()
                        .and_then(|v| v["mediaType"].as_str().map(str::to_string))
                        .unwrap_or_else(|| OCI_MANIFEST.to_string());
                    let digest =
                        Digest::parse(&digest).map_err(|message| self.invalid(&what, message))?;
                    Ok(Some(Manifest {
                        bytes: bytes.to_vec(),
                        media_type,
                        digest,
                    }))
                }
                Err(e) if not_found(&e) => Ok(None),
                Err(e) => Err(self.error(&what, e)),
            }
        })
        .await
    }

    /// Whether `repository` has the blob `digest`.
    pub async fn blob_exists(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let what = format!("blob {} in {repository}", short(digest));
        let r = self.reference(repository, "latest");
        // The push scope also grants pull, and is what an upload that follows needs.
        self.authorize(&r, RegistryOperation::Push).await?;
        self.bounded(&what, READ_TIMEOUT, async {
            self.client
                .blob_exists(&r, digest.as_str())
                .await
                .map_err(|e| self.error(&what, e))
        })
        .await
    }

    /// The blob `digest` of `repository`, in memory (configs, small files); checked.
    pub async fn blob(&self, repository: &str, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        let what = format!("blob {} of {repository}", short(digest));
        let r = self.reference(repository, digest.as_str());
        self.authorize(&r, RegistryOperation::Pull).await?;
        let bytes = self
            .bounded(&what, READ_TIMEOUT * 5, async {
                let mut out = Vec::new();
                self.client
                    .pull_blob(&r, digest.as_str(), &mut out)
                    .await
                    .map_err(|e| self.error(&what, e))?;
                Ok(out)
            })
            .await?;
        if sha256_digest(&bytes) != *digest {
            return Err(self.invalid(&what, "its content does not match its digest".into()));
        }
        Ok(bytes)
    }

    /// Puts the blob `digest` (the file at `path`, `size` bytes) into `repository`, unless it
    /// is there already; mounted from `mount_from` (another repository of this registry that
    /// has it) when the registry supports mounting. Returns how it got there.
    pub async fn upload_blob(
        &self,
        repository: &str,
        digest: &Digest,
        source: BlobSource<'_>,
        mount_from: Option<&str>,
    ) -> Result<Upload, RegistryError> {
        if self.blob_exists(repository, digest).await? {
            return Ok(Upload::Present);
        }
        let what = format!("the upload of blob {} to {repository}", short(digest));
        let target = self.reference(repository, "latest");
        if let Some(from) = mount_from.filter(|f| *f != repository) {
            if self.mount_blob(repository, digest, from).await? {
                return Ok(Upload::Mounted);
            }
        }
        let item = format!("blob {}", short(digest));
        match source {
            BlobSource::Bytes(bytes) => {
                let total = bytes.len() as u64;
                let limit = upload_limit(total);
                self.bounded(&what, limit, async {
                    self.client
                        .push_blob(&target, bytes.to_vec(), digest.as_str())
                        .await
                        .map_err(|e| self.error(&what, e))
                })
                .await?;
                self.progress(&item, total, total);
                Ok(Upload::Uploaded(total))
            }
            BlobSource::File(path) => {
                let file =
                    tokio::fs::File::open(path)
                        .await
                        .map_err(|source| RegistryError::Read {
                            path: path.to_path_buf(),
                            source,
                        })?;
                let total = file
                    .metadata()
                    .await
                    .map_err(|source| RegistryError::Read {
                        path: path.to_path_buf(),
                        source,
                    })?
                    .len();
                let reporter = self.reporter.clone();
                let subject = self.subject.clone();
                let item2 = item.clone();
                let mut done = 0u64;
                let stream =
                    tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).map(move |chunk| {
                        let chunk = chunk.map_err(OciDistributionError::IoError)?;
                        done += chunk.len() as u64;
                        reporter.report(Event::Transfer {
                            connector: subject.clone(),
                            item: item2.clone(),
                            done,
                            total,
                        });
                        Ok(chunk)
                    });
                self.bounded(&what, upload_limit(total), async {
                    self.client
                        .push_blob_stream(&target, stream, digest.as_str(), Some(total))
                        .await
                        .map_err(|e| self.error(&what, e))
                })
                .await?;
                Ok(Upload::Uploaded(total))
            }
        }
    }

    /// Mounts blob `digest` from `from` (another repository of this registry) into
    /// `repository`; `false` when the registry would not (it does not support mounting, or
    /// `from` lacks the blob).
    pub async fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, RegistryError> {
        let what = format!("the mount of blob {} into {repository}", short(digest));
        let target = self.reference(repository, "latest");
        let src = self.reference(from, "latest");
        self.authorize(&target, RegistryOperation::Push).await?;
        let mounted = self
            .bounded(&what, READ_TIMEOUT, async {
                Ok(self
                    .client
                    .mount_blob(&target, &src, digest.as_str())
                    .await
                    .is_ok())
            })
            .await?;
        Ok(mounted && self.blob_exists(repository, digest).await?)
    }

    /// Downloads blob `digest` of `repository` to `path`, checking its digest.
    pub async fn download_blob(
        &self,
        repository: &str,
        digest: &Digest,
        path: &Path,
    ) -> Result<u64, RegistryError> {
        let what = format!("the download of blob {} from {repository}", short(digest));
        let r = self.reference(repository, digest.as_str());
        self.authorize(&r, RegistryOperation::Pull).await?;
        let write = |source| RegistryError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut file = tokio::fs::File::create(path).await.map_err(write)?;
        self.bounded(&what, upload_limit(1 << 32), async {
            self.client
                .pull_blob(&r, digest.as_str(), &mut file)
                .await
                .map_err(|e| self.error(&what, e))
        })
        .await?;
        use tokio::io::AsyncWriteExt as _;
        file.flush().await.map_err(write)?;
        drop(file);
        let (size, actual) = file_digest(path).map_err(write)?;
        if actual != *digest {
            return Err(self.invalid(&what, "its content does not match its digest".into()));
        }
        Ok(size)
    }

    fn progress(&self, item: &str, done: u64, total: u64) {
        self.reporter.report(Event::Transfer {
            connector: self.subject.clone(),
            item: item.to_string(),
            done,
            total,
        });
    }

    /// Puts a manifest at `reference` (a tag, or its own digest); returns its digest.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, RegistryError> {
        let what = format!("the manifest put {repository} {reference}");
        let digest = sha256_digest(bytes);
        if reference.starts_with("sha256:") && reference != digest.as_str() {
            return Err(self.invalid(
                &what,
                format!("the manifest's digest is {digest}, not {reference}"),
            ));
        }
        let r = self.reference(repository, reference);
        let content_type = reqwest::header::HeaderValue::from_str(media_type)
            .map_err(|e| self.invalid(&what, e.to_string()))?;
        self.bounded(&what, READ_TIMEOUT, async {
            self.client
                .push_manifest_raw(&r, bytes.to_vec(), content_type)
                .await
                .map_err(|e| self.error(&what, e))
        })
        .await?;
        Ok(digest)
    }

    /// Every tag of `repository` (empty when the repository does not exist).
    pub async fn list_tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        let what = format!("the tags of {repository}");
        let r = self.reference(repository, "latest");
        self.bounded(&what, READ_TIMEOUT, async {
            match self.client.list_tags(&r, &self.auth, None, None).await {
                Ok(t) => Ok(t.tags),
                Err(e) if not_found(&e) => Ok(Vec::new()),
                Err(e) => Err(self.error(&what, e)),
            }
        })
        .await
    }

    /// Deletes the manifest `digest` of `repository` (and so every tag on it). `Ok(false)`
    /// when it was not there.
    pub async fn delete_manifest(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let what = format!("the deletion of {repository}@{}", short(digest));
        let r = self.reference(repository, digest.as_str());
        let token = self.authorize(&r, RegistryOperation::Push).await?;
        let url = format!(
            "{}://{}/v2/{repository}/manifests/{digest}",
            self.scheme, self.registry
        );
        self.bounded(&what, READ_TIMEOUT, async {
            let mut request = self.http.delete(&url);
            request = match (&token, &self.auth) {
                (Some(t), _) => request.bearer_auth(t),
                (None, OciAuth::Basic(u, p)) => request.basic_auth(u, Some(p)),
                _ => request,
            };
            let response = request
                .send()
                .await
                .map_err(|e| self.request_error(&what, &url, e))?;
            match response.status().as_u16() {
                200..=299 => Ok(true),
                404 => Ok(false),
                401 | 403 => Err(self.credentials_error(&what)),
                code => Err(RegistryError::Server {
                    registry: self.registry.clone(),
                    what: what.clone(),
                    status: Some(code),
                    message: response.text().await.unwrap_or_default(),
                }),
            }
        })
        .await
    }

    /// Obtains (and caches in the client) a token for `operation` on `reference`'s repository;
    /// the bearer token when the registry uses tokens.
    async fn authorize(
        &self,
        reference: &Reference,
        operation: RegistryOperation,
    ) -> Result<Option<String>, RegistryError> {
        let what = format!("authorization for {}", reference.repository());
        self.bounded(&what, READ_TIMEOUT, async {
            self.client
                .auth(reference, &self.auth, operation)
                .await
                .map_err(|e| self.error(&what, e))
        })
        .await
    }

    fn request_error(&self, what: &str, url: &str, e: reqwest::Error) -> RegistryError {
        request_error(&self.registry, what, url, e)
    }

    fn credentials_error(&self, what: &str) -> RegistryError {
        RegistryError::Credentials {
            registry: self.registry.clone(),
            what: what.to_string(),
            user: self.user.clone(),
            config: auth::config_path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "the Docker client configuration".into()),
        }
    }

    fn invalid(&self, what: &str, message: String) -> RegistryError {
        RegistryError::Invalid {
            registry: self.registry.clone(),
            what: what.to_string(),
            message,
        }
    }
}

/// What a blob is uploaded from.
#[derive(Debug, Clone, Copy)]
pub enum BlobSource<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

/// How a blob came to be in the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    Present,
    Mounted,
    Uploaded(u64),
}

/// A whole upload's limit: a minute, plus a minute per 64 MiB (1 MiB/s at worst).
fn upload_limit(size: u64) -> Duration {
    Duration::from_secs(60 + size / (1 << 20))
}

/// The host the HTTP requests go to: Docker Hub's API is not at `docker.io`.
fn endpoint_host(registry: &str) -> &str {
    if registry == DEFAULT_REGISTRY {
        "registry-1.docker.io"
    } else {
        registry
    }
}

/// A file's size and sha256 digest.
pub fn file_digest(path: &Path) -> std::io::Result<(u64, Digest)> {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    let size = std::io::copy(&mut std::fs::File::open(path)?, &mut hash)?;
    let hex = hex::encode(hash.finalize());
    Ok((
        size,
        Digest::parse(&format!("sha256:{hex}")).expect("a sha256 digest"),
    ))
}

pub fn sha256_digest(bytes: &[u8]) -> Digest {
    use sha2::Digest as _;
    Digest::parse(&format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(bytes))
    ))
    .expect("a sha256 digest")
}

fn short(d: &Digest) -> &str {
    let s = d.as_str();
    &s[..s.len().min(19)]
}

fn not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().all(|e| {
            use oci_client::errors::OciErrorCode as C;
            matches!(
                e.code,
                C::ManifestUnknown | C::NameUnknown | C::BlobUnknown | C::NotFound
            )
        }),
        _ => false,
    }
}

fn request_error(registry: &str, what: &str, url: &str, e: reqwest::Error) -> RegistryError {
    if e.is_timeout() {
        return RegistryError::Timeout {
            registry: registry.to_string(),
            what: what.to_string(),
            seconds: READ_TIMEOUT.as_secs(),
        };
    }
    if e.is_connect() || e.is_request() || e.is_body() {
        return RegistryError::Unreachable {
            registry: registry.to_string(),
            url: url.to_string(),
            source: Box::new(e),
        };
    }
    RegistryError::Server {
        registry: registry.to_string(),
        what: what.to_string(),
        status: e.status().map(|s| s.as_u16()),
        message: crate::error::error_chain(&e),
    }
}

fn classify(registry: &str, user: &str, what: &str, e: OciDistributionError) -> RegistryError {
    let credentials = || RegistryError::Credentials {
        registry: registry.to_string(),
        what: what.to_string(),
        user: user.to_string(),
        config: auth::config_path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the Docker client configuration".into()),
    };
    match e {
        OciDistributionError::RequestError(e) => {
            let url = e.url().map(|u| u.to_string()).unwrap_or_default();
            match e.status().map(|s| s.as_u16()) {
                Some(401 | 403) => credentials(),
                _ => request_error(registry, what, &url, e),
            }
        }
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => credentials(),
        OciDistributionError::ServerError { code, message, .. } => match code {
            401 | 403 => credentials(),
            _ => RegistryError::Server {
                registry: registry.to_string(),
                what: what.to_string(),
                status: Some(code),
                message: message.chars().take(400).collect(),
            },
        },
        OciDistributionError::RegistryError { envelope, .. } => {
            use oci_client::errors::OciErrorCode as C;
            if envelope
                .errors
                .iter()
                .any(|e| matches!(e.code, C::Unauthorized | C::Denied))
            {
                return credentials();
            }
            let message = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            RegistryError::Server {
                registry: registry.to_string(),
                what: what.to_string(),
                status: Some(400),
                message,
            }
        }
        OciDistributionError::IoError(e) => RegistryError::Unreachable {
            registry: registry.to_string(),
            url: String::new(),
            source: Box::new(e),
        },
        other => RegistryError::Server {
            registry: registry.to_string(),
            what: what.to_string(),
            status: None,
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_declared_registries_are_plain_http() {
        assert!(plain_http("127.0.0.1:5000", &[]));
        assert!(plain_http("127.3.4.5", &[]));
        assert!(plain_http("localhost:5000", &[]));
        assert!(plain_http("[::1]:5000", &[]));
        assert!(!plain_http("ghcr.io", &[]));
        assert!(!plain_http("10.1.2.3:5000", &[]));
        let insecure = ["10.0.0.0/8".to_string(), "reg.lan:5000".to_string()];
        assert!(plain_http("10.1.2.3:5000", &insecure));
        assert!(plain_http("reg.lan:5000", &insecure));
        assert!(!plain_http("reg.lan", &insecure));
        assert!(!plain_http("11.0.0.1", &insecure));
    }

    #[tokio::test]
    async fn a_registry_that_is_not_there_is_unreachable_and_retryable() {
        // Port 1 on loopback: nothing listens there.
        let r = Registry::with_auth(
            "127.0.0.1:1",
            &[],
            OciAuth::Basic("robot".into(), "hunter2-secret".into()),
            "of user `robot`".into(),
        )
        .unwrap();
        for e in [
            r.ping().await.unwrap_err(),
            r.manifest_digest("a/b", "1.0.0").await.unwrap_err(),
        ] {
            assert!(e.retryable(), "{e:?}");
            let text = crate::error::error_chain(&e);
            assert!(text.contains("127.0.0.1:1 does not answer"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }
}
