//! The reference build procedure for Python connectors, as a plan.
//!
//! base image -> workdir -> dependency manifests + install (one layer, keyed only on the
//! manifests) -> main file and package (one layer) -> entrypoint and `AIRBYTE_ENTRYPOINT` ->
//! labels -> `spec` smoke test.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::context::{self, ContextError};
use super::{
    Action, Base, BuildPlan, CacheMount, ConfigOp, Expect, Run, ScratchFile, Step, ToolMount,
    CODE_DIR, SCRATCH_DIR,
};
use std::sync::OnceLock;

use crate::model::families::{Declarations, Family, FamilyKind};
use crate::model::metadata::Located;
use crate::model::{Connector, ImageRef};
use crate::python::{dependency_install, InstallError, Installer, DEPENDENCY_FILES};

pub const DEFAULT_MAIN_FILE: &str = "main.py";
/// The name of the label steps; post-install hooks go right before them.
pub const LABELS_STEP: &str = "labels";
pub const PIP_CACHE_VOLUME: &str = "connector-build-pip-cache";
/// Outside any home directory, so the cache works whatever user the base image runs as.
pub const PIP_CACHE_DIR: &str = "/var/cache/connector-build/pip";
pub const UV_CACHE_VOLUME: &str = "connector-build-uv-cache";
pub const UV_CACHE_DIR: &str = "/var/cache/connector-build/uv";
/// Where the uv program is mounted in install steps.
pub const UV_DIR: &str = "/opt/connector-build/uv";

/// The installer a plan uses; uv with the identity of the program (see `ToolMount`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum InstallerChoice {
    #[default]
    Pip,
    Uv {
        identity: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// `--tag`: a full `name:tag`, or a tag for the connector's own repository.
    pub tag: Option<String>,
    pub allow_unpinned: bool,
    /// Registry host -> mirror host.
    pub mirrors: BTreeMap<String, String>,
    /// Fingerprint of the package index settings given to install steps.
    pub network_fingerprint: String,
    /// `MAIN_FILE_NAME` from a build customization, if any.
    pub main_file: Option<String>,
    pub installer: InstallerChoice,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{path}:{line}: `data.connectorBuildOptions.baseImage` is `{reference}`, which has no `@sha256:` digest, so the same commit could build on a different base; pin it (`connector-build upgrade-base-image` does) or pass --allow-unpinned")]
    Unpinned {
        path: PathBuf,
        line: usize,
        reference: String,
    },
    #[error("{dir}: no `data.connectorBuildOptions.baseImage` in metadata.yaml and no Dockerfile\nhint: declare a base image (`connector-build upgrade-base-image --set-if-not-exists`)")]
    NoBase { dir: PathBuf },
    #[error("{dir}: the main file `{file}` is missing; the image's entrypoint runs it (set MAIN_FILE_NAME in build_customization.py if it has another name)")]
    MissingMainFile { dir: PathBuf, file: String },
    #[error("{dir}: the main file `{file}` is a folder; the image's entrypoint runs it as a Python file (`python {file}`)")]
    MainFileIsFolder { dir: PathBuf, file: String },
    #[error("{dir}/build_customization.py: MAIN_FILE_NAME is `{file}`, which is not in the connector folder; the image's entrypoint runs it")]
    MissingCustomMainFile { dir: PathBuf, file: String },
    #[error("{dir}: `{package}` is a file; a connector named `{connector}` keeps its code in the folder `{package}/`")]
    PackageNotAFolder {
        dir: PathBuf,
        package: String,
        connector: String,
    },
    #[error("{dir}: the package folder `{package}/` is missing; a connector named `{connector}` keeps its code in `{package}/`")]
    MissingPackage {
        dir: PathBuf,
        package: String,
        connector: String,
    },
    #[error("{dir}: cannot plan the dependency install")]
    Install {
        dir: PathBuf,
        #[source]
        source: InstallError,
    },
    #[error(transparent)]
    WrongFamily(Box<WrongFamily>),
    #[error(transparent)]
    ManifestOnly(#[from] super::manifest_only::ManifestError),
    #[error(transparent)]
    Java(#[from] super::java::JavaError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error("`--tag {tag}` is not a valid image name: {reason}")]
    BadTag { tag: String, reason: String },
}

/// A base image of another kind's family than the connector's.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: a `language:{language}` connector builds on {wanted}, but `data.connectorBuildOptions.baseImage` is `{reference}`, of the `{family}` family\nhint: `connector-build upgrade-base-image` with the right family, or fix the `language:` tag")]
pub struct WrongFamily {
    pub path: PathBuf,
    pub line: usize,
    pub language: String,
    pub reference: String,
    pub family: String,
    pub wanted: String,
}

/// The shared pip cache, mounted for pip install steps only.
pub fn pip_caches() -> Vec<CacheMount> {
    vec![CacheMount {
        target: PIP_CACHE_DIR.into(),
        volume: PIP_CACHE_VOLUME.into(),
    }]
}

/// pip settings for install steps only: quiet, non-interactive, root allowed, shared cache.
pub fn pip_build_env() -> Vec<(String, String)> {
    [
        ("PIP_CACHE_DIR", PIP_CACHE_DIR),
        ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
        ("PIP_NO_INPUT", "1"),
        ("PIP_PROGRESS_BAR", "off"),
        ("PIP_ROOT_USER_ACTION", "ignore"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The installer, the programs it mounts, its caches and its build-only environment.
pub type InstallerParts = (
    Installer,
    Vec<ToolMount>,
    Vec<CacheMount>,
    Vec<(String, String)>,
);

/// What an install step needs for `choice`: the installer, the host programs it mounts, its
/// cache volume and its build-only environment.
pub fn installer_parts(choice: &InstallerChoice) -> InstallerParts {
    match choice {
        InstallerChoice::Pip => (Installer::Pip, vec![], pip_caches(), pip_build_env()),
        InstallerChoice::Uv { identity } => (
            Installer::Uv {
                program: format!("{UV_DIR}/uv"),
            },
            vec![ToolMount {
                name: "uv".into(),
                identity: identity.clone(),
                dir: UV_DIR.into(),
            }],
            vec![CacheMount {
                target: UV_CACHE_DIR.into(),
                volume: UV_CACHE_VOLUME.into(),
            }],
            [
                ("UV_CACHE_DIR", UV_CACHE_DIR),
                // The cache is a volume, another file system: copy, don't try to link.
                ("UV_LINK_MODE", "copy"),
                ("UV_PYTHON_DOWNLOADS", "never"),
                ("UV_NO_PROGRESS", "1"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ),
    }
}

pub fn output_tag(connector: &Connector, tag: Option<&str>) -> Result<String, PlanError> {
    let repo = &connector.metadata.docker_repository.value;
    let full = match tag {
        None => format!("{repo}:dev"),
        Some(t) if t.contains(':') || t.contains('/') => t.to_string(),
        Some(t) => format!("{repo}:{t}"),
    };
    let parsed = crate::model::ImageRef::parse(&full).map_err(|e| PlanError::BadTag {
        tag: tag.unwrap_or_default().to_string(),
        reason: e.to_string(),
    })?;
    // The engine refuses to tag by digest, but only after the whole build: say it now.
    if parsed.digest.is_some() {
        return Err(PlanError::BadTag {
            tag: tag.unwrap_or_default().to_string(),
            reason: "a digest (`@sha256:...`) names an existing image and cannot be given to a new one; use `name:tag`".into(),
        });
    }
    Ok(full)
}

fn step(name: &str, action: Action) -> Step {
    Step {
        name: name.to_string(),
        action,
    }
}

fn config(name: &str, op: ConfigOp) -> Step {
    step(name, Action::Config(op))
}

/// The base image as a plan's base: pinned (unless allowed otherwise), through its mirror,
/// and of the family the connector's kind needs (`kind`), when it is a family we declare.
pub fn image_base(
    connector: &Connector,
    base_image: &Located<ImageRef>,
    kind: FamilyKind,
    opts: &PlanOptions,
) -> Result<Base, PlanError> {
    let image = &base_image.value;
    if image.digest.is_none() && !opts.allow_unpinned {
        return Err(PlanError::Unpinned {
            path: connector.metadata.path.clone(),
            line: base_image.loc.line,
            reference: image.to_string(),
        });
    }
    if let Some(family) = declared_family(&image.repository) {
        if family.kind != kind {
            let wanted = declared_families()
                .iter()
                .filter(|f| f.kind == kind)
                .map(|f| f.repository.as_str())
                .collect::<Vec<_>>()
                .join(" or ");
            return Err(PlanError::WrongFamily(Box::new(WrongFamily {
                path: connector.metadata.path.clone(),
                line: base_image.loc.line,
                language: connector
                    .metadata
                    .language()
                    .unwrap_or("python")
                    .to_string(),
                reference: image.to_string(),
                family: family.name.clone(),
                wanted,
            })));
        }
    }
    let source = match opts.mirrors.get(&image.registry) {
        Some(mirror) => image.with_registry(mirror),
        None => image.clone(),
    };
    Ok(Base::Image {
        reference: image.to_string(),
        pull: source.pinned().unwrap_or_else(|| source.to_string()),
        digest: image.digest.as_ref().map(|d| d.to_string()),
    })
}

/// The base image families compiled into the tool, read once.
pub fn declared_families() -> &'static [Family] {
    static FAMILIES: OnceLock<Vec<Family>> = OnceLock::new();
    FAMILIES.get_or_init(|| {
        Declarations::embedded()
            .map(|d| d.families)
            .unwrap_or_default()
    })
}

/// The declared family whose images live in `repository` (any registry).
pub fn declared_family(repository: &str) -> Option<&'static Family> {
    declared_families()
        .iter()
        .find(|f| f.repository == repository)
}

/// A Python (or low-code) connector's plan.
pub fn plan_connector(connector: &Connector, opts: &PlanOptions) -> Result<BuildPlan, PlanError> {
    let output_tag = output_tag(connector, opts.tag.as_deref())?;
    let smoke_test = Some(super::spec_smoke_test());
    let dir = &connector.dir;

    let Some(base_image) = connector.metadata.base_image() else {
        if connector.dockerfile().is_none() {
            return Err(PlanError::NoBase { dir: dir.clone() });
        }
        let mut context = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|source| ContextError::Io {
            path: dir.clone(),
            source,
        })? {
            let entry = entry.map_err(|source| ContextError::Io {
                path: dir.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if context::is_excluded(&name) {
                continue;
            }
            if entry.path().is_dir() && !entry.path().is_symlink() {
                context.extend(context::tree_entries(dir, &name)?);
            } else {
                context.push(context::file_entry(dir, &name, &name)?);
            }
        }
        context.sort_by(|a, b| a.path.cmp(&b.path));
        return Ok(BuildPlan {
            connector: connector.name.clone(),
            context_dir: dir.clone(),
            output_tag,
            customization: None,
            platform: None,
            base: Base::Dockerfile {
                dockerfile: "Dockerfile".into(),
                context,
            },
            steps: vec![],
            smoke_test,
            warnings: vec![],
        });
    };

    let base = image_base(connector, base_image, FamilyKind::Python, opts)?;

    // Check the code is there before planning anything that takes time.
    let main_file = opts.main_file.as_deref().unwrap_or(DEFAULT_MAIN_FILE);
    match std::fs::metadata(dir.join(main_file)) {
        Ok(meta) if meta.is_file() => {}
        Ok(meta) if meta.is_dir() => {
            return Err(PlanError::MainFileIsFolder {
                dir: dir.clone(),
                file: main_file.to_string(),
            })
        }
        // A FIFO or socket: `file_entry` below says what it is, without opening it.
        Ok(_) => {}
        Err(_) => {
            let (dir, file) = (dir.clone(), main_file.to_string());
            return Err(match opts.main_file {
                Some(_) => PlanError::MissingCustomMainFile { dir, file },
                None => PlanError::MissingMainFile { dir, file },
            });
        }
    }
    let package = connector.package_name();
    if !dir.join(&package).is_dir() {
        let (dir, connector) = (dir.clone(), connector.name.clone());
        return Err(if dir.join(&package).exists() {
            PlanError::PackageNotAFolder {
                dir,
                package,
                connector,
            }
        } else {
            PlanError::MissingPackage {
                dir,
                package,
                connector,
            }
        });
    }

    let (installer, tools, caches, installer_env) = installer_parts(&opts.installer);
    let install =
        dependency_install(dir, &installer, SCRATCH_DIR).map_err(|source| PlanError::Install {
            dir: dir.clone(),
            source,
        })?;
    let manifests = DEPENDENCY_FILES
        .iter()
        // Not `is_file`: a FIFO under a manifest's name is refused by `file_entry`, unopened.
        .filter(|f| std::fs::metadata(dir.join(f)).is_ok_and(|m| !m.is_dir()))
        .copied()
        .chain(install.extra_manifests.iter().map(String::as_str))
        .map(|f| context::file_entry(dir, f, f))
        .collect::<Result<Vec<_>, _>>()?;

    let mut code = vec![context::file_entry(dir, main_file, main_file)?];
    code.extend(context::tree_entries(dir, &package)?);

    let entrypoint = vec!["python".to_string(), format!("{CODE_DIR}/{main_file}")];
    let steps = vec![
        config("workdir", ConfigOp::Workdir(CODE_DIR.into())),
        step(
            "copy dependency manifests",
            Action::Files {
                dest: CODE_DIR.into(),
                files: manifests,
            },
        ),
        step(
            "install dependencies",
            Action::Run(Run {
                args: install.args,
                scratch_files: install
                    .scratch_files
                    .into_iter()
                    .map(|f| ScratchFile {
                        name: f.name,
                        contents: f.contents,
                    })
                    .collect(),
                network: Some(opts.network_fingerprint.clone()),
                caches,
                build_env: installer_env,
                use_entrypoint: false,
                expect: Expect::Success,
                shell: None,
                tools,
                secrets: vec![],
            }),
        ),
        step(
            "copy connector code",
            Action::Files {
                dest: CODE_DIR.into(),
                files: code,
            },
        ),
        config(
            "entrypoint",
            ConfigOp::Env {
                name: "AIRBYTE_ENTRYPOINT".into(),
                value: entrypoint.join(" "),
                expand: false,
            },
        ),
        config("entrypoint", ConfigOp::Entrypoint(entrypoint)),
    ];
    Ok(super::connector_plan(
        connector,
        output_tag,
        base,
        steps,
        install.warnings,
    ))
}
