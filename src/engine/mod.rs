//! The Docker engine, through its HTTP API (bollard).
//!
//! Only the calls the builder needs, with errors that say which engine and what was being
//! done. Every container the tool creates is tracked so that it can be removed when a step
//! fails or the user interrupts the run.

pub mod auth;
pub mod endpoint;
pub mod image_archive;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::models::{
    ContainerConfig, ContainerCreateBody, HostConfig, ImageInspect, Mount, MountType,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CommitContainerOptionsBuilder, CreateImageOptionsBuilder,
    LogsOptionsBuilder, PushImageOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder, TagImageOptionsBuilder, UploadToContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use crate::platform::Platform;

/// Every container the tool creates is named with this prefix.
pub const CONTAINER_PREFIX: &str = "connector-build-step-";

static NEXT_CONTAINER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Docker's own default when DOCKER_HOST is unset.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How long the engine may take to answer the first request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// While a long request runs (a build step, a pull), the engine is pinged this often...
const WATCH_INTERVAL: Duration = Duration::from_secs(3);
/// ...and counts as gone when a ping fails or takes longer than this.
const WATCH_PING_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the Docker engine runs on {os}/{arch}, which connector-build does not build for\nhint: use an engine on linux/amd64 or linux/arm64")]
    UnsupportedPlatform { os: String, arch: String },
    /// Boxed: the error type stays small on the hot path of every engine call.
    #[error(transparent)]
    Endpoint(Box<endpoint::EndpointError>),
    #[error("engine unreachable: cannot talk to the Docker engine at {host} while trying to {action}; is dockerd running (the README set-up command starts it) and is DOCKER_HOST right?")]
    Unreachable {
        host: String,
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("the Docker engine at {host} refused to {action}: {message}")]
    Refused {
        host: String,
        action: String,
        status: u16,
        message: String,
    },
    #[error("pulling {reference} failed: {message}\nhint: check that the registry is reachable (or configure a mirror) and that the digest exists there")]
    Pull { reference: String, message: String },
    #[error("{reference}: the engine holds digest(s) {actual}, not {expected}; the image was altered or the mirror serves something else")]
    DigestMismatch {
        reference: String,
        expected: String,
        actual: String,
    },
    #[error("building the Dockerfile failed: {message}")]
    DockerfileBuild { message: String, log: Vec<String> },
    #[error("pushing {reference} failed: {message}\nhint: check that the registry is up and that you may push there (credentials come from `docker login`)")]
    Push { reference: String, message: String },
    #[error("cannot read {reference} from its registry: {message}\nhint: check that the registry is up and reachable from the Docker engine (a plain-HTTP registry must be in the engine's insecure-registries; 127.0.0.0/8 is by default)")]
    Registry { reference: String, message: String },
    #[error("the registry refused to show {reference} (HTTP {status}): {message}; log in with `docker login {registry}`")]
    RegistryAuth {
        reference: String,
        registry: String,
        status: u16,
        message: String,
    },
    #[error("importing {path} as {reference} failed: {message}")]
    Import {
        path: std::path::PathBuf,
        reference: String,
        message: String,
    },
    #[error(transparent)]
    Credentials(#[from] auth::AuthError),
    #[error("the Docker engine at {host} could not {action}")]
    Archive {
        host: String,
        action: String,
        // Boxed: its paths and digests would make every engine result large.
        #[source]
        source: Box<image_archive::ImageArchiveError>,
    },
}

/// Written into a program volume after the program: the volume is complete.
const PROGRAM_MARKER: &str = ".complete";

/// One engine endpoint.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    host: String,
    containers: Arc<Mutex<HashSet<String>>>,
    /// Program volumes known to be complete on this engine.
    ready_volumes: Arc<Mutex<HashSet<String>>>,
    /// Whether finished containers are removed in the background (see `discard_container`).
    defer_removals: Arc<AtomicBool>,
    /// Removals still in flight; `settle` waits for them.
    pending_removals: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    /// The engine's platform, asked once: every connector's plans and layers need it.
    platform: Arc<tokio::sync::OnceCell<Platform>>,
}

/// What a finished container run produced.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RunOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

/// The parts of an image's configuration the builder reads back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    pub size: i64,
    pub repo_digests: Vec<String>,
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub labels: HashMap<String, String>,
    pub exposed_ports: Vec<String>,
    pub layers: Vec<String>,
    /// When the image was made (RFC 3339, as the engine says it).
    pub created: Option<String>,
    /// `os`/`architecture` of the image config (`linux`, `arm64`).
    pub os: String,
    pub architecture: String,
}

impl ImageInfo {
    /// The platform the image config declares, when it is one this tool builds for.
    pub fn platform(&self) -> Option<Platform> {
        Platform::from_os_arch(&self.os, &self.architecture)
    }
}

impl From<ImageInspect> for ImageInfo {
    fn from(i: ImageInspect) -> Self {
        let config = i.config.unwrap_or_default();
        ImageInfo {
            id: i.id.unwrap_or_default(),
            size: i.size.unwrap_or_default(),
            repo_digests: i.repo_digests.unwrap_or_default(),
            env: config.env.unwrap_or_default(),
            entrypoint: config.entrypoint,
            cmd: config.cmd,
            workdir: config.working_dir.filter(|w| !w.is_empty()),
            user: config.user.filter(|u| !u.is_empty()),
            labels: config.labels.unwrap_or_default(),
            exposed_ports: config.exposed_ports.unwrap_or_default(),
            layers: i.root_fs.and_then(|r| r.layers).unwrap_or_default(),
            created: i.created,
            os: i.os.unwrap_or_default(),
            architecture: i.architecture.unwrap_or_default(),
        }
    }
}

/// How a container for a step is set up.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub image: String,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub labels: HashMap<String, String>,
    pub exposed_ports: Vec<String>,
    /// Named volumes: (volume, target). An empty volume name makes an anonymous volume,
    /// removed with the container.
    pub volumes: Vec<(String, String)>,
    /// Named volumes mounted read-only: (volume, target).
    pub readonly_volumes: Vec<(String, String)>,
    pub network_disabled: bool,
    /// Create the container for this platform (`linux/arm64`): a foreign one runs under
    /// QEMU user-mode emulation. `None`: the image's own.
    pub platform: Option<Platform>,
}

impl Engine {
    /// Connects to `host` (`unix://`, `tcp://`, `http://`), or DOCKER_HOST, or the default
    /// socket, and negotiates the API version so old and new engines both work.
    pub async fn connect(host: Option<&str>) -> Result<Engine, EngineError> {
        let endpoint = endpoint::resolve(host, &endpoint::Environment::current())
            .map_err(|e| EngineError::Endpoint(Box::new(e)))?;
        tracing::debug!(host = %endpoint.host, source = %endpoint.source, tls = endpoint.tls.is_some(), "engine endpoint");
        let host = endpoint.host.clone();
        if endpoint.tls.is_some() {
            // bollard (ring) and reqwest (aws-lc-rs, for the registry client) both enable a
            // rustls provider, so rustls cannot pick one itself: name bollard's. Idempotent;
            // an error only says one is installed already.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        // A client speaking `version`, for the schemes connected here; `None` for any other,
        // which bollard connects (and negotiates for) by itself.
        let client = |version: &bollard::ClientVersion| match &endpoint.tls {
            Some(tls) => Some(Docker::connect_with_ssl(
                &host, &tls.key, &tls.cert, &tls.ca, 120, version,
            )),
            // Plain TCP by choice: bollard would switch to TLS on an empty DOCKER_TLS_VERIFY.
            None if host.starts_with("tcp://") || host.starts_with("http://") => {
                Some(Docker::connect_with_http(&host, 120, version))
            }
            None if host.starts_with("unix://") => {
                Some(Docker::connect_with_unix(&host, 120, version))
            }
            None => None,
        };
        let unreachable = |source| EngineError::Unreachable {
            host: host.clone(),
            action: "connect".into(),
            source,
        };
        let docker = client(bollard::API_DEFAULT_VERSION)
            .unwrap_or_else(|| Docker::connect_with_host(&host))
            .map_err(unreachable)?;
        // The first request is bounded: a server that accepts connections and never answers
        // (a wrong port, a hung engine) is as unreachable as a closed port. One `/version`
        // answers both the API version and the engine's platform: dockerd runs `runc` and
        // `docker-init` for every such request, so a second one costs 10-50 ms.
        let action = "negotiate the API version";
        let answer = match tokio::time::timeout(CONNECT_TIMEOUT, docker.version()).await {
            Ok(answer) => answer.map_err(|e| classify(&host, action, e))?,
            Err(_) => {
                return Err(EngineError::Unreachable {
                    host: host.clone(),
                    action: format!(
                        "{action} (no answer within {} s)",
                        CONNECT_TIMEOUT.as_secs()
                    ),
                    source: bollard::errors::Error::RequestTimeoutError,
                })
            }
        };
        let server = answer
            .api_version
            .as_deref()
            .and_then(parse_api_version)
            .ok_or_else(|| EngineError::Unreachable {
                host: host.clone(),
                action: format!("{action}: the engine gave no API version"),
                source: bollard::errors::Error::APIVersionParseError {},
            })?;
        let docker = if server < docker.client_version() {
            match client(&server) {
                Some(older) => older.map_err(unreachable)?,
                None => docker
                    .negotiate_version()
                    .await
                    .map_err(|e| classify(&host, action, e))?,
            }
        } else {
            docker
        };
        // Image builds and installs can be slow; the default 2 minutes would cut them off.
        let docker = docker.with_timeout(Duration::from_secs(3600));
        let platform = tokio::sync::OnceCell::new();
        if let Some(p) = Platform::from_os_arch(
            answer.os.as_deref().unwrap_or_default(),
            answer.arch.as_deref().unwrap_or_default(),
        ) {
            let _ = platform.set(p);
        }
        Ok(Engine {
            docker,
            host,
            containers: Arc::new(Mutex::new(HashSet::new())),
            ready_volumes: Arc::new(Mutex::new(HashSet::new())),
            defer_removals: Arc::new(AtomicBool::new(false)),
            pending_removals: Arc::new(Mutex::new(Vec::new())),
            platform: Arc::new(platform),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn err(&self, action: &str) -> impl FnOnce(bollard::errors::Error) -> EngineError + '_ {
        let action = action.to_string();
        move |e| classify(&self.host, &action, e)
    }

    /// The image, if the engine has it; `None` only for "no such image".
    pub async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(i) => Ok(Some(i.into())),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(classify(
                &self.host,
                &format!("inspect image {reference}"),
                e,
            )),
        }
    }

    /// Pulls `reference` (digest-pinned where possible); progress lines go to `on_line`.
    pub async fn pull(
        &self,
        reference: &str,
        on_line: impl FnMut(&str),
    ) -> Result<(), EngineError> {
        self.pull_for(reference, None, on_line).await
    }

    /// [`Engine::pull`] of one platform's image of a multi-platform reference.
    pub async fn pull_for(
        &self,
        reference: &str,
        platform: Option<Platform>,
        on_line: impl FnMut(&str),
    ) -> Result<(), EngineError> {
        let mut options = CreateImageOptionsBuilder::default().from_image(reference);
        if let Some(p) = platform {
            options = options.platform(p.as_str());
        }
        let options = options.build();
        tracing::info!(reference, "pulling");
        let credentials = credentials_for_reference(reference)?;
        let stream = self.docker.create_image(Some(options), None, credentials);
        self.follow(
            stream,
            &format!("pull {reference}"),
            |i| (i.error_detail.and_then(|d| d.message), i.status),
            |message| EngineError::Pull {
                reference: reference.into(),
                message,
            },
            on_line,
        )
        .await
    }

    /// Follows a pull, push or import progress stream: status lines go to `on_line`; the
    /// first error, in an item or from the engine, becomes `fail(message)`.
    async fn follow<T>(
        &self,
        stream: impl futures_util::Stream<Item = Result<T, bollard::errors::Error>>,
        action: &str,
        parts: impl Fn(T) -> (Option<String>, Option<String>),
        fail: impl Fn(String) -> EngineError,
        on_line: impl FnMut(&str),
    ) -> Result<(), EngineError> {
        self.watched(
            action,
            self.follow_unwatched(stream, action, parts, fail, on_line),
        )
        .await
    }

    async fn follow_unwatched<T>(
        &self,
        stream: impl futures_util::Stream<Item = Result<T, bollard::errors::Error>>,
        action: &str,
        parts: impl Fn(T) -> (Option<String>, Option<String>),
        fail: impl Fn(String) -> EngineError,
        mut on_line: impl FnMut(&str),
    ) -> Result<(), EngineError> {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    let (error, status) = parts(info);
                    if let Some(message) = error {
                        return Err(fail(tidy(&message)));
                    }
                    if let Some(status) = status {
                        on_line(&status);
                    }
                }
                Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                | Err(bollard::errors::Error::DockerStreamError { error: message }) => {
                    return Err(fail(tidy(&message)))
                }
                Err(e) => return Err(classify(&self.host, action, e)),
            }
        }
        Ok(())
    }

    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        let mounts: Vec<Mount> = spec
            .volumes
            .iter()
            .map(|(volume, target)| (volume, target, false))
            .chain(spec.readonly_volumes.iter().map(|(v, t)| (v, t, true)))
            .map(|(volume, target, read_only)| Mount {
                target: Some(target.clone()),
                source: (!volume.is_empty()).then(|| volume.clone()),
                typ: Some(MountType::VOLUME),
                read_only: read_only.then_some(true),
                ..Default::default()
            })
            .collect();
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: spec.cmd.clone(),
            entrypoint: spec.entrypoint.clone(),
            env: Some(spec.env.clone()),
            working_dir: spec.workdir.clone(),
            user: spec.user.clone(),
            // Labels on the container become the image's labels at commit: only the image's own.
            labels: Some(spec.labels.clone()),
            exposed_ports: (!spec.exposed_ports.is_empty()).then(|| spec.exposed_ports.clone()),
            network_disabled: spec.network_disabled.then_some(true),
            host_config: Some(HostConfig {
                mounts: (!mounts.is_empty()).then_some(mounts),
                network_mode: spec.network_disabled.then(|| "none".to_string()),
                ..Default::default()
            }),
            ..Default::default()
        };
        // Named, not labelled, so leftovers of a killed run can be found without touching
        // what gets committed.
        let name = format!(
            "{CONTAINER_PREFIX}{}-{}",
            std::process::id(),
            NEXT_CONTAINER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut options =
            bollard::query_parameters::CreateContainerOptionsBuilder::default().name(&name);
        if let Some(p) = spec.platform {
            options = options.platform(p.as_str());
        }
        let options = options.build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(self.err(&format!("create a container from {}", spec.image)))?;
        if let Ok(mut set) = self.containers.lock() {
            set.insert(created.id.clone());
        }
        tracing::debug!(container = %name, image = %spec.image, "created container");
        Ok(created.id)
    }

    /// Extracts a tar archive at `/` in the container.
    pub async fn upload(&self, container: &str, tar: Vec<u8>) -> Result<(), EngineError> {
        self.upload_to(container, "/", tar).await
    }

    pub async fn upload_to(
        &self,
        container: &str,
        path: &str,
        tar: Vec<u8>,
    ) -> Result<(), EngineError> {
        let options = UploadToContainerOptionsBuilder::default()
            .path(path)
            .build();
        self.docker
            .upload_to_container(container, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(self.err("copy files into a build container"))
    }

    /// Runs `work`, a request that may take long, and fails it as unreachable as soon as the
    /// engine stops answering pings. A stopping dockerd closes its socket at once but keeps
    /// streams open while it stops containers (10 s and more), and one that hangs would
    /// keep them open for good: neither should hold a build.
    async fn watched<T>(
        &self,
        action: &str,
        work: impl std::future::Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        let watchdog = async {
            loop {
                tokio::time::sleep(WATCH_INTERVAL).await;
                let source =
                    match tokio::time::timeout(WATCH_PING_TIMEOUT, self.docker.ping()).await {
                        Ok(Ok(_)) => continue,
                        Ok(Err(e)) => e,
                        Err(_) => bollard::errors::Error::RequestTimeoutError,
                    };
                tracing::debug!(host = %self.host, action, "the engine stopped answering pings");
                return EngineError::Unreachable {
                    host: self.host.clone(),
                    action: action.to_string(),
                    source,
                };
            }
        };
        tokio::select! {
            result = work => result,
            gone = watchdog => Err(gone),
        }
    }

    /// Starts the container and waits for it, collecting its output.
    pub async fn run(&self, container: &str) -> Result<RunOutput, EngineError> {
        self.watched("run a build container", self.run_unwatched(container))
            .await
    }

    async fn run_unwatched(&self, container: &str) -> Result<RunOutput, EngineError> {
        self.docker
            .start_container(container, None)
            .await
            .map_err(self.err("start a build container"))?;
        let mut wait = self.docker.wait_container(
            container,
            Some(
                WaitContainerOptionsBuilder::default()
                    .condition("not-running")
                    .build(),
            ),
        );
        let mut exit_code = 0;
        while let Some(item) = wait.next().await {
            match item {
                Ok(r) => exit_code = r.status_code,
                // bollard reports a non-zero exit as an error; it is a result here.
                Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => {
                    exit_code = code
                }
                Err(e) => return Err(classify(&self.host, "wait for a build container", e)),
            }
        }
        let (stdout, stderr) = self.logs(container).await?;
        Ok(RunOutput {
            exit_code,
            stdout,
            stderr,
        })
    }

    async fn logs(&self, container: &str) -> Result<(String, String), EngineError> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .build();
        let mut stream = self.docker.logs(container, Some(options));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(item) = stream.next().await {
            match item.map_err(self.err("read a build container's output"))? {
                bollard::container::LogOutput::StdOut { message } => {
                    out.extend_from_slice(&message)
                }
                bollard::container::LogOutput::StdErr { message } => {
                    err.extend_from_slice(&message)
                }
                bollard::container::LogOutput::Console { message } => {
                    out.extend_from_slice(&message)
                }
                bollard::container::LogOutput::StdIn { .. } => {}
            }
        }
        Ok((
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        ))
    }

    /// Commits the container's filesystem as a new image with exactly `config`.
    pub async fn commit(
        &self,
        container: &str,
        config: ContainerConfig,
    ) -> Result<String, EngineError> {
        let options = CommitContainerOptionsBuilder::default()
            .container(container)
            .pause(false)
            .build();
        let id = self
            .docker
            .commit_container(options, config)
            .await
            .map_err(self.err("commit a build step"))?;
        tracing::debug!(container, image = %id.id, "committed");
        Ok(id.id)
    }

    /// Removes a container and its anonymous volumes; a container already gone is fine.
    pub async fn remove_container(&self, container: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        let result = self.docker.remove_container(container, Some(options)).await;
        if let Ok(mut set) = self.containers.lock() {
            set.remove(container);
        }
        match result {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(classify(&self.host, "remove a build container", e)),
        }
    }

    /// From now on, `discard_container` removes in the background: removing a container and
    /// its anonymous volumes takes the engine a second or two that the next step need not
    /// wait for. Whoever turns this on calls `settle` before the process ends.
    pub fn defer_removals(&self) {
        self.defer_removals.store(true, Ordering::Relaxed);
    }

    /// Removes a container whose work is done (committed or read): now, or in the background
    /// when removals are deferred. A deferred container stays in the set
    /// `remove_all_containers` works from until it is gone, so an interrupt still removes it.
    pub async fn discard_container(&self, container: &str) -> Result<(), EngineError> {
        if !self.defer_removals.load(Ordering::Relaxed) {
            return self.remove_container(container).await;
        }
        let engine = self.clone();
        let container = container.to_string();
        let handle = tokio::spawn(async move {
            if let Err(e) = engine.remove_container(&container).await {
                tracing::warn!(container, error = %e, "could not remove a finished build container");
            }
        });
        if let Ok(mut pending) = self.pending_removals.lock() {
            pending.retain(|h| !h.is_finished());
            pending.push(handle);
        }
        Ok(())
    }

    /// Waits for the background removals `discard_container` started.
    pub async fn settle(&self) {
        let pending: Vec<_> = self
            .pending_removals
            .lock()
            .map(|mut p| p.drain(..).collect())
            .unwrap_or_default();
        for handle in pending {
            let _ = handle.await;
        }
    }

    /// Removes every container this process created; for interrupts. Those it holds, and
    /// those found by name: a request dropped mid-way may have created one it never heard of.
    pub async fn remove_all_containers(&self) -> usize {
        let mut ids: HashSet<String> = self
            .containers
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        ids.extend(self.own_containers().await);
        let mut removed = 0;
        for id in ids {
            if self.remove_container(&id).await.is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// Ids of the containers on the engine named as this process names its own.
    async fn own_containers(&self) -> Vec<String> {
        let prefix = format!("{CONTAINER_PREFIX}{}-", std::process::id());
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&HashMap::from([("name", vec![prefix.as_str()])]))
            .build();
        let Ok(found) = self.docker.list_containers(Some(options)).await else {
            return Vec::new();
        };
        // The name filter matches anywhere in the name; keep exact prefixes only.
        found
            .into_iter()
            .filter(|c| {
                c.names
                    .iter()
                    .flatten()
                    .any(|n| n.trim_start_matches('/').starts_with(&prefix))
            })
            .filter_map(|c| c.id)
            .collect()
    }

    /// Points `name:tag` at `image`.
    pub async fn tag(&self, image: &str, reference: &str) -> Result<(), EngineError> {
        let (repo, tag) = split_tag(reference);
        let options = TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        self.docker
            .tag_image(image, Some(options))
            .await
            .map_err(self.err(&format!("tag {reference}")))
    }

    /// Removes an image we made that must not survive (e.g. one whose smoke test failed).
    pub async fn remove_image(&self, image: &str) -> Result<(), EngineError> {
        let options = RemoveImageOptionsBuilder::default().force(true).build();
        match self.docker.remove_image(image, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(classify(&self.host, &format!("remove image {image}"), e)),
        }
    }

    /// Removes the name `reference` (`repo:tag` or `repo@digest`) without force: the image
    /// stays while other names or child images hold it.
    pub async fn untag(&self, reference: &str) -> Result<(), EngineError> {
        match self
            .docker
            .remove_image(
                reference,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(classify(&self.host, &format!("untag {reference}"), e)),
        }
    }

    /// `docker build` of a tar context; returns the image id. Used only for the deprecated
    /// Dockerfile path, so the engine's own builder and cache apply.
    pub async fn build_dockerfile(
        &self,
        context_tar: Vec<u8>,
        dockerfile: &str,
        on_line: impl FnMut(&str),
    ) -> Result<String, EngineError> {
        self.watched(
            "build the Dockerfile",
            self.build_dockerfile_unwatched(context_tar, dockerfile, on_line),
        )
        .await
    }

    async fn build_dockerfile_unwatched(
        &self,
        context_tar: Vec<u8>,
        dockerfile: &str,
        mut on_line: impl FnMut(&str),
    ) -> Result<String, EngineError> {
        let options = BuildImageOptionsBuilder::default()
            .dockerfile(dockerfile)
            .rm(true)
            .forcerm(true)
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(context_tar.into())));
        let mut id = None;
        let mut log = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(message) = info.error_detail.and_then(|d| d.message) {
                        return Err(EngineError::DockerfileBuild { message, log });
                    }
                    if let Some(s) = info.stream {
                        for line in s.lines().filter(|l| !l.trim().is_empty()) {
                            on_line(line);
                            log.push(line.to_string());
                            if let Some(rest) = line.strip_prefix("Successfully built ") {
                                id = Some(rest.trim().to_string());
                            }
                        }
                    }
                    if let Some(aux) = info.aux.and_then(|a| a.id) {
                        id = Some(aux);
                    }
                }
                Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                | Err(bollard::errors::Error::DockerStreamError { error: message }) => {
                    return Err(EngineError::DockerfileBuild { message, log })
                }
                Err(e) => return Err(classify(&self.host, "build the Dockerfile", e)),
            }
        }
        id.ok_or_else(|| EngineError::DockerfileBuild {
            message: "the engine did not report an image id".into(),
            log,
        })
    }

    pub async fn ensure_volume(&self, name: &str) -> Result<(), EngineError> {
        if self.docker.inspect_volume(name).await.is_ok() {
            return Ok(());
        }
        let options = bollard::models::VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(HashMap::from([(
                "io.connector-build.cache".to_string(),
                "1".to_string(),
            )])),
            ..Default::default()
        };
        self.docker
            .create_volume(options)
            .await
            .map(|_| ())
            .map_err(self.err(&format!("create volume {name}")))
    }

    /// Whether `ensure_program_volume` (or `note_program_volume`) saw `volume` complete.
    pub fn program_volume_ready(&self, volume: &str) -> bool {
        self.ready_volumes.lock().is_ok_and(|v| v.contains(volume))
    }

    /// Checks, on a container that mounts `volume` at `dir` (created, not necessarily
    /// started), whether the volume is complete, and remembers it if so: the step's own
    /// container answers, so a run on an engine prepared before starts no helper container.
    pub async fn note_program_volume(&self, container: &str, volume: &str, dir: &str) -> bool {
        let marker = bollard::query_parameters::ContainerArchiveInfoOptionsBuilder::default()
            .path(&format!("{}/{PROGRAM_MARKER}", dir.trim_end_matches('/')))
            .build();
        let complete = self
            .docker
            .get_container_archive_info(container, Some(marker))
            .await
            .is_ok();
        if complete {
            if let Ok(mut ready) = self.ready_volumes.lock() {
                ready.insert(volume.to_string());
            }
        }
        complete
    }

    /// Makes `volume` hold the program at `source` as `file_name`, once per engine: a marker
    /// written after the program says the volume is complete.
    pub async fn ensure_program_volume(
        &self,
        volume: &str,
        file_name: &str,
        source: &std::path::Path,
        helper_image: &str,
    ) -> Result<(), EngineError> {
        if self.program_volume_ready(volume) {
            return Ok(());
        }
        self.ensure_volume(volume).await?;
        let spec = ContainerSpec {
            image: helper_image.to_string(),
            entrypoint: Some(vec![]),
            cmd: Some(vec!["true".into()]),
            volumes: vec![(volume.to_string(), "/mnt/program".into())],
            ..Default::default()
        };
        let container = self.create_container(&spec).await?;
        let result = async {
            let marker = bollard::query_parameters::ContainerArchiveInfoOptionsBuilder::default()
                .path(&format!("/mnt/program/{PROGRAM_MARKER}"))
                .build();
            if self
                .docker
                .get_container_archive_info(&container, Some(marker))
                .await
                .is_ok()
            {
                return Ok(());
            }
            let pack_error = |e: std::io::Error| EngineError::Refused {
                host: self.host.clone(),
                action: format!("copy {} into volume {volume}", source.display()),
                status: 0,
                message: e.to_string(),
            };
            // Read straight into the archive: the program is large, one copy is enough.
            let mut file = std::fs::File::open(source).map_err(pack_error)?;
            let size = file.metadata().map_err(pack_error)?.len();
            let mut tar = tar::Builder::new(Vec::with_capacity(size as usize + 4096));
            let mut h = tar::Header::new_gnu();
            h.set_size(size);
            h.set_mode(0o755);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, file_name, &mut file)
                .map_err(pack_error)?;
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, PROGRAM_MARKER, std::io::empty())
                .map_err(pack_error)?;
            let tar = tar.into_inner().map_err(pack_error)?;
            self.upload_to(&container, "/mnt/program", tar).await
        }
        .await;
        let removed = self.remove_container(&container).await;
        result?;
        removed?;
        if let Ok(mut ready) = self.ready_volumes.lock() {
            ready.insert(volume.to_string());
        }
        Ok(())
    }

    /// `docker history`: each entry's `created_by` and size, newest first.
    pub async fn history(&self, image: &str) -> Result<Vec<(String, String, i64)>, EngineError> {
        let h = self
            .docker
            .image_history(image)
            .await
            .map_err(self.err(&format!("read the history of {image}")))?;
        Ok(h.into_iter()
            .map(|i| (i.id, i.created_by, i.size))
            .collect())
    }

    /// `path` in a container as a tar archive (entries named from its last component);
    /// `None` when it does not exist.
    pub async fn download(
        &self,
        container: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self
            .docker
            .download_from_container(container, Some(options));
        let mut tar = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => tar.extend_from_slice(&bytes),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => return Ok(None),
                Err(e) => return Err(classify(&self.host, &format!("read {path}"), e)),
            }
        }
        Ok(Some(tar))
    }

    /// What a container changed in its file system: (path, kind), kind 0 modified, 1 added,
    /// 2 deleted (`docker diff`).
    pub async fn changes(&self, container: &str) -> Result<Vec<(String, u8)>, EngineError> {
        use bollard::models::ChangeType;
        let changes = self
            .docker
            .container_changes(container)
            .await
            .map_err(self.err("list a container's changes"))?
            .unwrap_or_default();
        Ok(changes
            .into_iter()
            .map(|c| {
                let kind = match c.kind {
                    ChangeType::_0 => 0,
                    ChangeType::_1 => 1,
                    ChangeType::_2 => 2,
                };
                (c.path, kind)
            })
            .collect())
    }

    /// The contents of a file in an image, read without running anything.
    pub async fn read_file(&self, image: &str, path: &str) -> Result<Option<Vec<u8>>, EngineError> {
        let spec = ContainerSpec {
            image: image.to_string(),
            entrypoint: Some(vec![]),
            cmd: Some(vec!["true".into()]),
            ..Default::default()
        };
        let container = self.create_container(&spec).await?;
        let downloaded = self.download(&container, path).await;
        self.remove_container(&container).await?;
        let Some(tar) = downloaded? else {
            return Ok(None);
        };
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries = archive.entries().map_err(|e| EngineError::Refused {
            host: self.host.clone(),
            action: format!("read {path} from {image}"),
            status: 500,
            message: e.to_string(),
        })?;
        for entry in entries.flatten() {
            if entry.header().entry_type().is_file() {
                let mut entry = entry;
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(|e| {
                    EngineError::Refused {
                        host: self.host.clone(),
                        action: format!("read {path} from {image}"),
                        status: 500,
                        message: e.to_string(),
                    }
                })?;
                return Ok(Some(bytes));
            }
        }
        Ok(None)
    }

    /// Pushes `reference` (`registry/repository:tag`) with the credentials the Docker client
    /// would use; returns the manifest digest the registry reported.
    pub async fn push(
        &self,
        reference: &str,
        mut on_line: impl FnMut(&str),
    ) -> Result<Option<String>, EngineError> {
        let (repository, tag) = split_tag(reference);
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let credentials = credentials_for_reference(reference)?;
        tracing::info!(reference, "pushing");
        let stream = self
            .docker
            .push_image(repository, Some(options), credentials);
        let mut digest = None;
        self.follow(
            stream,
            &format!("push {reference}"),
            |i| (i.error_detail.and_then(|d| d.message), i.status),
            |message| EngineError::Push {
                reference: reference.into(),
                message,
            },
            |line| {
                if let Some(d) = pushed_digest(line) {
                    digest = Some(d);
                }
                on_line(line);
            },
        )
        .await?;
        Ok(digest)
    }

    /// The manifest digest `reference` has in its registry, asked through the engine (so its
    /// registry settings apply); `None` when the registry does not have it.
    pub async fn registry_digest(&self, reference: &str) -> Result<Option<String>, EngineError> {
        Ok(self
            .registry_descriptor(reference)
            .await?
            .map(|(digest, _)| digest))
    }

    /// [`Engine::registry_digest`] with the manifest's media type (an index's or one image's).
    pub async fn registry_descriptor(
        &self,
        reference: &str,
    ) -> Result<Option<(String, Option<String>)>, EngineError> {
        let credentials = credentials_for_reference(reference)?;
        match self
            .docker
            .inspect_registry_image(reference, credentials)
            .await
        {
            Ok(found) => Ok(found
                .descriptor
                .digest
                .map(|d| (d, found.descriptor.media_type))),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: status @ (401 | 403),
                message,
            }) => Err(EngineError::RegistryAuth {
                reference: reference.into(),
                registry: crate::model::ImageRef::parse(reference)
                    .map(|r| r.registry)
                    .unwrap_or_default(),
                status,
                message,
            }),
            Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
                Err(EngineError::Registry {
                    reference: reference.into(),
                    message,
                })
            }
            Err(e) => Err(classify(
                &self.host,
                &format!("look up {reference} in its registry"),
                e,
            )),
        }
    }

    /// `docker import`: a root filesystem tarball as a one-layer image tagged `reference`,
    /// with Dockerfile-style `changes` (`ENV ...`, `LABEL ...`, `CMD [...]`). Returns its id.
    pub async fn import(
        &self,
        tarball: &std::path::Path,
        reference: &str,
        changes: &[String],
        message: &str,
        platform: Option<Platform>,
    ) -> Result<String, EngineError> {
        let fail = |message: String| EngineError::Import {
            path: tarball.to_path_buf(),
            reference: reference.into(),
            message,
        };
        let file = tokio::fs::File::open(tarball)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(file));
        let (repository, tag) = split_tag(reference);
        let options = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repository)
            .tag(tag)
            .changes(changes.to_vec())
            .message(message);
        let options = match platform {
            Some(p) => options.platform(p.as_str()),
            None => options,
        }
        .build();
        let stream = self.docker.create_image(Some(options), Some(body), None);
        self.follow(
            stream,
            &format!("import {reference}"),
            |i| (i.error_detail.and_then(|d| d.message), None),
            fail,
            |_| {},
        )
        .await?;
        let info = self
            .inspect_image(reference)
            .await?
            .ok_or_else(|| fail("the engine does not have the image after importing it".into()))?;
        Ok(info.id)
    }

    /// The engine's own platform (what its containers run natively).
    pub async fn platform(&self) -> Result<Platform, EngineError> {
        self.platform
            .get_or_try_init(|| self.ask_platform())
            .await
            .copied()
    }

    async fn ask_platform(&self) -> Result<Platform, EngineError> {
        let v = self
            .docker
            .version()
            .await
            .map_err(self.err("read the engine's version"))?;
        let os = v.os.unwrap_or_default();
        let arch = v.arch.unwrap_or_default();
        Platform::from_os_arch(&os, &arch).ok_or(EngineError::UnsupportedPlatform { os, arch })
    }

    /// `docker save` of `image`, written to a file under `parent` as it streams in (each
    /// layer checked against its diff id on the way; layers are then read in place).
    pub async fn save_image(
        &self,
        image: &str,
        parent: &std::path::Path,
    ) -> Result<image_archive::SavedImage, EngineError> {
        let action = format!("save image {image}");
        let docker = self.docker.clone();
        let stream = docker
            .export_image(image)
            .map(|chunk| chunk.map_err(std::io::Error::other));
        let reader =
            tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(Box::pin(stream)));
        let folder = parent.to_path_buf();
        let parent = folder.clone();
        let read = tokio::task::spawn_blocking(move || {
            image_archive::read_save(std::io::BufReader::new(reader), &parent)
        });
        let archive_error = |source| EngineError::Archive {
            host: self.host.clone(),
            action: action.clone(),
            source: Box::new(source),
        };
        let archive = self
            .watched(&action, async {
                read.await
                    .map_err(|e| image_archive::ImageArchiveError::Read {
                        path: folder.clone(),
                        source: std::io::Error::other(e),
                    })
                    .and_then(|r| r)
                    .map_err(archive_error)
            })
            .await?;
        let mut archive = archive;
        archive.images.pop().ok_or_else(|| EngineError::Archive {
            host: self.host.clone(),
            action: action.clone(),
            source: Box::new(image_archive::ImageArchiveError::Missing {
                path: folder,
                member: "image".into(),
            }),
        })
    }

    /// `docker load` of one image made of `config` and `layers` (only those the engine lacks
    /// need a tar), tagged `repo_tags`; returns its id (the config's digest).
    pub async fn load_image(
        &self,
        config: Vec<u8>,
        repo_tags: Vec<String>,
        layers: Vec<image_archive::LoadLayer>,
    ) -> Result<String, EngineError> {
        let action = "load an image".to_string();
        let id = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&config))
        );
        let (writer, reader) = tokio::io::duplex(1 << 20);
        let bridge = tokio_util::io::SyncIoBridge::new(writer);
        let write = tokio::task::spawn_blocking(move || {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, bridge);
            image_archive::write_load(&mut out, &config, &repo_tags, &layers)?;
            let mut bridge = out
                .into_inner()
                .map_err(|e| image_archive::ImageArchiveError::Load(e.into_error()))?;
            bridge
                .shutdown()
                .map_err(image_archive::ImageArchiveError::Load)
        });
        let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(reader));
        let options = bollard::query_parameters::ImportImageOptionsBuilder::default()
            .quiet(true)
            .build();
        let stream = self.docker.import_image(options, body, None);
        let host = self.host.clone();
        let fail = |message: String| EngineError::Refused {
            host: host.clone(),
            action: action.clone(),
            status: 500,
            message,
        };
        let loaded = self
            .follow(
                stream,
                &action,
                |i| (i.error_detail.and_then(|d| d.message), None),
                fail,
                |_| {},
            )
            .await;
        let written = write
            .await
            .map_err(|e| image_archive::ImageArchiveError::Load(std::io::Error::other(e)))
            .and_then(|r| r);
        loaded?;
        written.map_err(|source| EngineError::Archive {
            host: self.host.clone(),
            action: action.clone(),
            source: Box::new(source),
        })?;
        Ok(id)
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }
}

/// Credentials for the registry of `reference`, as the Docker client would send them.
fn credentials_for_reference(
    reference: &str,
) -> Result<Option<bollard::auth::DockerCredentials>, EngineError> {
    let Ok(image) = crate::model::ImageRef::parse(reference) else {
        return Ok(None);
    };
    Ok(auth::credentials_for(&image.registry)?.map(auth::RegistryAuth::into_inner))
}

/// An engine message without the repetition registries add (`manifest unknown: manifest
/// unknown`).
fn tidy(message: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in message.trim().split(": ") {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

/// The digest in a push's last status line, `<tag>: digest: sha256:<hex> size: <n>`.
fn pushed_digest(status: &str) -> Option<String> {
    let rest = status.split_once("digest: ")?.1;
    let digest = rest.split_whitespace().next()?;
    crate::model::Digest::parse(digest)
        .ok()
        .map(|d| d.to_string())
}

/// `repo:tag` -> (`repo`, `tag`), where a `:` in a registry port is not a tag separator.
/// `1.41` as bollard's version type.
fn parse_api_version(v: &str) -> Option<bollard::ClientVersion> {
    let (major, minor) = v.trim().split_once('.')?;
    Some(bollard::ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

pub fn split_tag(reference: &str) -> (&str, &str) {
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            &reference[last_slash + i + 1..],
        ),
        None => (reference, "latest"),
    }
}

fn classify(host: &str, action: &str, e: bollard::errors::Error) -> EngineError {
    use bollard::errors::Error as B;
    match e {
        B::DockerResponseServerError {
            status_code,
            message,
        } => EngineError::Refused {
            host: host.into(),
            action: action.into(),
            status: status_code,
            message,
        },
        other => EngineError::Unreachable {
            host: host.into(),
            action: action.into(),
            source: other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_status_digest() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            pushed_digest(&format!("1.0.0: digest: {d} size: 529")),
            Some(d)
        );
        assert_eq!(pushed_digest("Pushed"), None);
        assert_eq!(pushed_digest("x: digest: nonsense size: 1"), None);
    }

    #[test]
    fn repeated_parts_of_engine_messages_are_said_once() {
        assert_eq!(
            tidy("manifest for r@sha256:1 not found: manifest unknown: manifest unknown"),
            "manifest for r@sha256:1 not found: manifest unknown"
        );
        assert_eq!(tidy("a: b: a"), "a: b: a");
    }

    #[test]
    fn split_tag_ignores_registry_port() {
        assert_eq!(
            split_tag("127.0.0.1:5000/a/b:dev"),
            ("127.0.0.1:5000/a/b", "dev")
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/a/b"),
            ("127.0.0.1:5000/a/b", "latest")
        );
        assert_eq!(
            split_tag("airbyte/source-foo:dev"),
            ("airbyte/source-foo", "dev")
        );
    }
}
