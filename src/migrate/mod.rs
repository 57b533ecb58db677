//! `migrate-to-base-image`: moves connectors off their Dockerfiles only when that changes
//! nothing their users rely on, and `bump-version`.
//!
//! For each connector with a Dockerfile: build the Dockerfile's image, and the image the
//! standard procedure builds from the base image (in a scratch copy of the connector with
//! `baseImage` set, so nothing of the user's is touched yet); compare them (see
//! [`compare`]). What differs and a build customization can carry (custom variables, apt
//! packages, another main file, ...) becomes a generated `build_customization.py`, and the
//! image is built and compared again. Only a clean comparison leads to the edits: Dockerfile
//! removed, `baseImage` set, version bumped by a patch, changelog row added; all written
//! together or not at all. Otherwise the differences are reported and the connector is left
//! as it was.

pub mod bump;
pub mod compare;
pub mod drift;
pub mod hook;
pub mod resolve;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use self::bump::Bump;
use self::bump::{BumpError, Release, ReleaseNote};
use self::compare::{Difference, Snapshot, SpecResult};
use self::drift::Drift;
use self::hook::Customization;
use self::resolve::{BaseImageResolver, ResolveError};
use crate::edit::{self, EditError, FileChange};
use crate::engine::{EngineError, ImageInfo};
use crate::error::error_chain;
use crate::execute::{BuildError, Builder};
use crate::hooks::customize::{plan_customized, CustomizeError, HookOptions};
use crate::hooks::{HookError, HOOK_FILE};
use crate::model::connector::folder_name;
use crate::model::connector::METADATA_FILE;
use crate::model::dockerfile::Dockerfile;
use crate::model::{Connector, MetadataError};
use crate::plan::python::PlanError;
use crate::plan::{plan_connector, Base, PlanOptions};
use crate::progress::{Event, Reporter};

/// The changelog subject airbyte-ci used for this migration.
pub const DEFAULT_MESSAGE: &str =
    "Base image migration: remove Dockerfile and use the python-connector-base image";

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Hook(Box<HookError>),
    #[error("building the image from {what} failed")]
    Build {
        what: &'static str,
        #[source]
        source: Box<BuildError>,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(
        "{path}: no FROM line, so there is no image to compare with\nhint: fix the Dockerfile"
    )]
    NoFrom { path: PathBuf },
    #[error("{path}:{line}: the image the Dockerfile starts from, `{image}`, is not on the engine after building it\nhint: write its name as the engine knows it")]
    RootMissing {
        path: PathBuf,
        line: usize,
        image: String,
    },
    #[error("{path}:{line}: cannot pull `{image}`, the image this Dockerfile starts from; check the name, that the engine reaches its registry (or load the image into the engine), then run again")]
    RootPull {
        path: PathBuf,
        line: usize,
        image: String,
        #[source]
        source: Box<EngineError>,
    },
    #[error("the image built from the Dockerfile fails its own `spec` (exit code {exit_code}), so there is no behaviour to compare the base image build with; the connector was left as it was. Make the Dockerfile build a working image first; its last output:{}", indented(.output))]
    DockerfileSpecFails { exit_code: i64, output: Vec<String> },
    #[error("the base image `{reference}` is not on the engine after building on it")]
    BaseMissing { reference: String },
    #[error("cannot copy {path} into a scratch folder to build it from the base image")]
    Stage {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Edit(#[from] EditError),
    #[error(transparent)]
    Bump(#[from] BumpError),
}

fn indented(lines: &[String]) -> String {
    lines.iter().map(|l| format!("\n    {l}")).collect()
}

impl From<CustomizeError> for MigrateError {
    fn from(e: CustomizeError) -> Self {
        match e {
            CustomizeError::Plan(e) => MigrateError::Plan(e),
            CustomizeError::Hook(e) => MigrateError::Hook(Box::new(e)),
        }
    }
}

pub struct MigrateOptions<'a> {
    pub plan: PlanOptions,
    pub hooks: HookOptions,
    pub resolver: &'a dyn BaseImageResolver,
    pub note: ReleaseNote,
    /// Compute everything, write nothing: the changes are in the result to be shown.
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
pub struct Migration {
    pub connector: String,
    #[serde(flatten)]
    pub outcome: MigrationOutcome,
}

#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MigrationOutcome {
    Migrated {
        base_image: String,
        #[serde(flatten)]
        release: Release,
        /// What the generated build_customization.py carries, if one was needed.
        customization: Option<Customization>,
        files: Vec<PathBuf>,
        written: bool,
        /// Every file change (also what `--dry-run` shows).
        #[serde(skip)]
        changes: Vec<FileChange>,
    },
    Skipped {
        reason: String,
    },
    /// The images differ in ways no generated customization removes; nothing was written.
    Refused {
        base_image: String,
        differences: Vec<Difference>,
        /// The customization that was tried, if any.
        customization: Option<Customization>,
        /// What to do; when `spec` differs, its likely cause first.
        note: String,
        /// When `spec` differs: how the Python environments differ.
        likely_cause: Option<Drift>,
    },
    Failed {
        error: String,
    },
}

impl Migration {
    pub fn ok(&self) -> bool {
        matches!(
            self.outcome,
            MigrationOutcome::Migrated { .. } | MigrationOutcome::Skipped { .. }
        )
    }
}

/// Migrates each connector in turn; one that fails or is refused does not stop the others.
pub async fn migrate_all(
    builder: &Builder<'_>,
    reporter: &dyn Reporter,
    dirs: &[PathBuf],
    options: &MigrateOptions<'_>,
) -> Vec<Migration> {
    let mut out = Vec::new();
    for dir in dirs {
        let name = folder_name(dir);
        let run = Run {
            builder,
            reporter,
            options,
            connector: name.clone(),
        };
        let outcome = match run.migrate(dir).await {
            Ok(o) => o,
            Err(e) => MigrationOutcome::Failed {
                error: error_chain(&e),
            },
        };
        let migration = Migration {
            connector: name.clone(),
            outcome,
        };
        reporter.report(Event::Finished {
            connector: name,
            ok: migration.ok(),
        });
        out.push(migration);
    }
    out
}

/// The image the connector's own Dockerfile builds (whatever its metadata declares), with
/// the engine's builder and cache. The images its stages start from are pulled first when
/// the engine lacks them, so that one that cannot be pulled is named with its `FROM` line
/// (the engine's own build error names neither).
pub async fn build_dockerfile(
    builder: &Builder<'_>,
    connector: &Connector,
    plan: &PlanOptions,
    dockerfile: &Dockerfile,
) -> Result<ImageInfo, MigrateError> {
    let path = connector.dir.join("Dockerfile");
    pull_roots(builder, &connector.name, &path, dockerfile).await?;
    let mut as_dockerfile = connector.clone();
    as_dockerfile.metadata.build_options = None;
    let plan = plan_connector(&as_dockerfile, plan)?;
    let (image, _) =
        builder
            .evaluate(&plan, false)
            .await
            .map_err(|source| MigrateError::Build {
                what: "the Dockerfile",
                source: Box::new(source),
            })?;
    Ok(image)
}

/// Pulls each root image of `dockerfile` the engine does not have. `scratch` and names
/// with an unresolved `$VARIABLE` are left to the engine's build.
async fn pull_roots(
    builder: &Builder<'_>,
    connector: &str,
    path: &Path,
    dockerfile: &Dockerfile,
) -> Result<(), MigrateError> {
    let engine = builder.engine;
    let mut seen = BTreeSet::new();
    for stage in dockerfile.stages.iter().filter(|s| s.parent.is_none()) {
        let image = stage.from.as_str();
        if image.eq_ignore_ascii_case("scratch") || image.contains('$') || !seen.insert(image) {
            continue;
        }
        if engine.inspect_image(image).await?.is_some() {
            continue;
        }
        let pulled = engine
            .pull(image, |line| {
                builder.reporter.report(Event::Output {
                    connector: connector.to_string(),
                    line: line.to_string(),
                })
            })
            .await;
        match pulled {
            Ok(()) => {}
            // The engine itself is gone: not this image's fault.
            Err(e @ EngineError::Unreachable { .. }) => return Err(e.into()),
            Err(source) => {
                return Err(MigrateError::RootPull {
                    path: path.to_path_buf(),
                    line: stage.line,
                    image: image.to_string(),
                    source: Box::new(source),
                })
            }
        }
    }
    Ok(())
}

struct Run<'a> {
    builder: &'a Builder<'a>,
    reporter: &'a dyn Reporter,
    options: &'a MigrateOptions<'a>,
    connector: String,
}

fn read(path: &Path) -> Result<String, EditError> {
    std::fs::read_to_string(path).map_err(|source| EditError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Copies a connector folder without its Dockerfile and what never enters an image.
fn stage_copy(from: &Path, to: &Path) -> Result<(), MigrateError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MigrateError::Stage { path, source }
    };
    std::fs::create_dir_all(to).map_err(err(to))?;
    for entry in std::fs::read_dir(from).map_err(err(from))? {
        let entry = entry.map_err(err(from))?;
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if crate::plan::context::is_excluded(&name_str) || name_str == "Dockerfile" {
            continue;
        }
        let (source, target) = (entry.path(), to.join(&name));
        let kind = entry.file_type().map_err(err(&source))?;
        if kind.is_symlink() {
            let link = std::fs::read_link(&source).map_err(err(&source))?;
            #[cfg(unix)]
            std::os::unix::fs::symlink(link, &target).map_err(err(&source))?;
        } else if kind.is_dir() {
            stage_copy(&source, &target)?;
        } else {
            std::fs::copy(&source, &target).map_err(err(&source))?;
        }
    }
    Ok(())
}

impl Run<'_> {
    async fn phase<T, E>(
        &self,
        step: &str,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        self.reporter.report(Event::StepStarted {
            connector: self.connector.clone(),
            step: step.into(),
        });
        let started = Instant::now();
        let result = work.await;
        if result.is_ok() {
            self.reporter.report(Event::StepFinished {
                connector: self.connector.clone(),
                step: step.into(),
                cached: false,
                duration: started.elapsed(),
            });
        }
        result
    }

    /// Builds the connector in `dir` (a scratch copy declaring its base image) and reads it.
    async fn build_from_base(
        &self,
        dir: &Path,
        plan: &PlanOptions,
    ) -> Result<Snapshot, MigrateError> {
        let connector = Connector::load(dir)?;
        let plan =
            plan_customized(&connector, plan, &self.options.hooks, Some(self.builder)).await?;
        let (image, _) = self
            .builder
            .evaluate(&plan, false)
            .await
            .map_err(|source| MigrateError::Build {
                what: "the base image",
                source: Box::new(source),
            })?;
        let Base::Image {
            pull, reference, ..
        } = &plan.base
        else {
            return Err(MigrateError::BaseMissing {
                reference: "(none)".into(),
            });
        };
        let engine = self.builder.engine;
        let base = engine
            .inspect_image(pull)
            .await?
            .ok_or_else(|| MigrateError::BaseMissing {
                reference: reference.clone(),
            })?;
        Ok(compare::snapshot(engine, &image, &base).await?)
    }

    async fn dockerfile_image(
        &self,
        connector: &Connector,
        path: &Path,
        parsed: &Dockerfile,
    ) -> Result<Snapshot, MigrateError> {
        let image = build_dockerfile(self.builder, connector, &self.options.plan, parsed).await?;
        let (root, line) = parsed.final_root().ok_or_else(|| MigrateError::NoFrom {
            path: path.to_path_buf(),
        })?;
        let engine = self.builder.engine;
        let root_image =
            engine
                .inspect_image(root)
                .await?
                .ok_or_else(|| MigrateError::RootMissing {
                    path: path.to_path_buf(),
                    line,
                    image: root.to_string(),
                })?;
        Ok(compare::snapshot(engine, &image, &root_image).await?)
    }

    /// A refusal. When `spec` differs, the two images' Python environments are read and
    /// what differs in them leads the note: that is the usual cause.
    async fn refusal(
        &self,
        base_image: &str,
        old: &Snapshot,
        new: &Snapshot,
        differences: Vec<Difference>,
        customization: Option<Customization>,
        note: &str,
    ) -> MigrationOutcome {
        let mut likely_cause = None;
        if differences
            .iter()
            .any(|d| matches!(d, Difference::Spec { .. }))
        {
            let engine = self.builder.engine;
            // Only a hint: a failure to read an environment leaves the plain note. The root
            // image is read with the Dockerfile image's interpreter.
            let env = |image: &str, entrypoint: &[String]| {
                let (image, entrypoint) = (image.to_string(), entrypoint.to_vec());
                async move {
                    drift::environment(engine, &image, &entrypoint)
                        .await
                        .ok()
                        .flatten()
                }
            };
            let before = env(&old.image, &old.entrypoint).await;
            let root = env(&old.base, &old.entrypoint).await;
            let after = env(&new.image, &new.entrypoint).await;
            if let (Some(before), Some(after)) = (before, after) {
                likely_cause = drift::drift(&before, root.as_ref(), &after);
            }
        }
        let note = match &likely_cause {
            Some(d) => format!("{}\n{note}", d.note()),
            None => note.to_string(),
        };
        MigrationOutcome::Refused {
            base_image: base_image.to_string(),
            differences,
            customization,
            note,
            likely_cause,
        }
    }

    async fn migrate(&self, dir: &Path) -> Result<MigrationOutcome, MigrateError> {
        let connector = Connector::load(dir)?;
        let Some(dockerfile_path) = connector.dockerfile() else {
            let reason = if connector.metadata.base_image().is_some() {
                "no Dockerfile: already built from its base image"
            } else {
                "no Dockerfile to migrate from"
            };
            return Ok(MigrationOutcome::Skipped {
                reason: reason.into(),
            });
        };
        let base_image = self.options.resolver.resolve(&connector).await?;
        let dockerfile_text = read(&dockerfile_path)?;
        let parsed = Dockerfile::parse(&dockerfile_text);

        let old = self
            .phase(
                "build and inspect the Dockerfile image",
                self.dockerfile_image(&connector, &dockerfile_path, &parsed),
            )
            .await?;
        // A Dockerfile image that does not work gives nothing to compare with.
        if let SpecResult::Failed { exit_code, output } = &old.spec {
            return Err(MigrateError::DockerfileSpecFails {
                exit_code: *exit_code,
                output: output.clone(),
            });
        }

        // The connector as it would be after the migration, in a scratch folder.
        let scratch = tempfile::tempdir().map_err(|source| MigrateError::Stage {
            path: dir.to_path_buf(),
            source,
        })?;
        let copy = scratch.path().join(&connector.name);
        stage_copy(dir, &copy)?;
        let meta_path = dir.join(METADATA_FILE);
        let metadata = read(&meta_path)?;
        let (with_base, _) = edit::set_base_image(&meta_path, &metadata, &base_image, true)?;
        edit::write_atomic(&copy.join(METADATA_FILE), with_base.as_bytes())?;

        let existing_hook = dir.join(HOOK_FILE).is_file();
        let main_file = hook::other_main_file(&old.entrypoint, dir);
        let mut plan = self.options.plan.clone();
        if !existing_hook {
            // What MAIN_FILE_NAME would give; without it there is no main.py to plan with.
            plan.main_file = main_file.clone();
        }
        let new = self
            .phase(
                "build and inspect the base image build",
                self.build_from_base(&copy, &plan),
            )
            .await?;
        let mut differences = compare::compare(&old, &new);

        let mut customization = None;
        if existing_hook {
            if !differences.is_empty() {
                return Ok(self.refusal(&base_image, &old, &new, differences, None, "the connector already has a build_customization.py, which connector-build does not rewrite: carry these differences into it by hand, then migrate again").await);
            }
        } else if !differences.is_empty() || main_file.is_some() {
            let c = Customization::derive(&differences, main_file, &parsed);
            if c.is_empty() {
                return Ok(self.refusal(&base_image, &old, &new, differences, None, "no build customization can carry these differences: make the connector behave the same without them (or change the Dockerfile), then migrate again").await);
            }
            if !self.options.hooks.enabled {
                return Ok(self
                    .refusal(
                        &base_image,
                        &old,
                        &new,
                        differences,
                        Some(c),
                        "a build_customization.py is needed, and hooks are disabled (--no-hooks)",
                    )
                    .await);
            }
            edit::write_atomic(&copy.join(HOOK_FILE), c.render().as_bytes())?;
            plan.main_file = None;
            let again = self
                .phase(
                    "build and inspect with the generated build_customization.py",
                    self.build_from_base(&copy, &plan),
                )
                .await?;
            differences = compare::compare(&old, &again);
            if !differences.is_empty() {
                return Ok(self.refusal(&base_image, &old, &again, differences, Some(c), "the generated build_customization.py does not remove these differences: make the connector behave the same without them (or change the Dockerfile), then migrate again").await);
            }
            customization = Some(c);
        }

        let release = bump::release(&connector, &with_base, &Bump::Patch, &self.options.note)?;
        let mut changes = release.changes.clone();
        if let Some(c) = &customization {
            changes.push(FileChange {
                path: dir.join(HOOK_FILE),
                before: None,
                after: Some(c.render()),
            });
        }
        changes.push(FileChange {
            path: dockerfile_path,
            before: Some(dockerfile_text),
            after: None,
        });
        if !self.options.dry_run {
            edit::apply_changes(&changes)?;
        }
        Ok(MigrationOutcome::Migrated {
            base_image,
            release,
            customization,
            files: changes
                .iter()
                .map(|c| c.path.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            written: !self.options.dry_run,
            changes,
        })
    }
}
