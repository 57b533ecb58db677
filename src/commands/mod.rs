//! The operations behind the command line, independent of how they are shown.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::build::{BuildError, Builder};
use crate::edit::{self, Change, EditError};
use crate::hooks::customize::{plan_customized, CustomizeError, HookOptions};
use crate::hooks::HookError;
use crate::model::{
    Connector, ConnectorLocator, DiscoveryError, ImageRef, ImageRefError, MetadataError,
};
use crate::plan::python::PlanError;
use crate::plan::{BuildPlan, PlanOptions};
use crate::report::{Event, Silent};

/// Why one connector could not be built. Each connector fails on its own; a bulk run goes on.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error("interrupted")]
    Interrupted,
}

impl From<CustomizeError> for ConnectorError {
    fn from(e: CustomizeError) -> Self {
        match e {
            CustomizeError::Plan(e) => ConnectorError::Plan(e),
            CustomizeError::Hook(e) => ConnectorError::Hook(e),
        }
    }
}

/// Loads and plans one connector given by name or path, with its build customization;
/// `builder` answers hooks that ask about their container.
pub async fn plan_one(
    locator: &ConnectorLocator,
    name_or_path: &str,
    options: &PlanOptions,
    hooks: &HookOptions,
    builder: Option<&Builder<'_>>,
) -> Result<(Connector, BuildPlan), ConnectorError> {
    let dir = locator.locate(name_or_path)?;
    let connector = Connector::load(&dir)?;
    let plan = plan_customized(&connector, options, hooks, builder).await?;
    Ok((connector, plan))
}

/// Full error text with its causes, one per line; for reports and `--json`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str("\n  caused by: ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// Plans one connector given by name or path (with its build customization) and announces
/// its build to the builder's reporter.
pub async fn prepare(
    builder: &Builder<'_>,
    locator: &ConnectorLocator,
    name_or_path: &str,
    options: &PlanOptions,
    hooks: &HookOptions,
) -> Result<BuildPlan, ConnectorError> {
    // Hooks that ask about their container are answered without drawing progress: the
    // connector's own build, which reuses those layers, reports them.
    let quiet = Builder {
        engine: builder.engine,
        network: builder.network,
        tools: builder.tools,
        reporter: &Silent,
    };
    let (connector, plan) = plan_one(locator, name_or_path, options, hooks, Some(&quiet)).await?;
    builder.reporter.report(Event::Started {
        connector: plan.connector.clone(),
        steps: crate::build::progress_steps(&plan),
    });
    if connector.metadata.base_image().is_none() {
        builder.reporter.report(Event::Warning {
            connector: plan.connector.clone(),
            message: "no connectorBuildOptions.baseImage: building from the Dockerfile, a deprecated path; migrate to a base image".into(),
        });
    }
    Ok(plan)
}

pub fn display_name(name_or_path: &str) -> String {
    Path::new(name_or_path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| name_or_path.to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("`{reference}` cannot be used as a base image: {reason}")]
    NotPinned { reference: String, reason: String },
    #[error(transparent)]
    BadReference(#[from] ImageRefError),
    #[error(transparent)]
    Edit(#[from] EditError),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
}

#[derive(Debug, Serialize)]
pub struct UpgradeResult {
    pub connector: String,
    pub path: PathBuf,
    pub old: Option<String>,
    pub new: String,
    pub changed: bool,
    /// Why a connector the user named was not moved; such a run fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_alone: Option<String>,
}

impl UpgradeResult {
    /// Whether every named connector was moved (or was already there).
    pub fn all_done(results: &[UpgradeResult]) -> bool {
        results.iter().all(|r| r.left_alone.is_none())
    }
}

/// What a named connector that is not moved reports; nothing for one found by a search.
fn left_alone(
    named: bool,
    dir: &Path,
    path: PathBuf,
    old: Option<String>,
    reason: String,
) -> Option<UpgradeResult> {
    named.then(|| UpgradeResult {
        connector: display_name(&dir.to_string_lossy()),
        path,
        new: old.clone().unwrap_or_default(),
        old,
        changed: false,
        left_alone: Some(reason),
    })
}

/// Points connectors' `baseImage` at `reference` (digest-pinned). Connectors already on a
/// base image of the same repository are updated; others only with `insert`, and connectors
/// on another image family are left alone.
pub fn upgrade_base_image(
    locator: &ConnectorLocator,
    names: &[String],
    reference: &str,
    insert: bool,
    dry_run: bool,
) -> Result<Vec<UpgradeResult>, UpgradeError> {
    let target = ImageRef::parse(reference)?;
    if target.digest.is_none() {
        return Err(UpgradeError::NotPinned {
            reference: reference.into(),
            reason: "it has no @sha256: digest".into(),
        });
    }
    let dirs = connector_dirs(locator, names)?;
    let mut results = Vec::new();
    for dir in dirs {
        let target = |_: Option<&ImageRef>| Some(reference.to_string());
        if let Some(r) = upgrade_connector(&dir, target, !names.is_empty(), insert, dry_run)? {
            results.push(r);
        }
    }
    Ok(results)
}

/// The named connectors' folders, or every connector's when no name is given.
pub fn connector_dirs(
    locator: &ConnectorLocator,
    names: &[String],
) -> Result<Vec<PathBuf>, DiscoveryError> {
    if names.is_empty() {
        return Ok(locator.all());
    }
    names.iter().map(|n| locator.locate(n)).collect()
}

/// Sets one connector's `baseImage` to what `target` answers for its current base image
/// (`None`: leave it). Connectors on another image family than the target's are left alone,
/// and connectors without the key too unless `insert`. `named`: the user asked for this
/// connector, so a metadata.yaml that does not parse is an error rather than skipped.
pub fn upgrade_connector(
    dir: &Path,
    target: impl FnOnce(Option<&ImageRef>) -> Option<String>,
    named: bool,
    insert: bool,
    dry_run: bool,
) -> Result<Option<UpgradeResult>, UpgradeError> {
    let path = dir.join(crate::model::connector::METADATA_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| EditError::Read {
        path: path.clone(),
        source,
    })?;
    // A file that does not parse is reported by the edit below; one whose current base
    // belongs to another family is not ours to move.
    let reference = match crate::model::metadata::parse(&path, &text) {
        Ok(meta) => {
            let current = meta.base_image().map(|b| &b.value);
            let old = current.map(ToString::to_string);
            let no_key = || {
                "it has no `data.connectorBuildOptions.baseImage`; --set-if-not-exists adds one"
                    .to_string()
            };
            let Some(reference) = target(current) else {
                let reason = match current {
                    None if !insert => no_key(),
                    None => "its `language:` tag has no base image family".into(),
                    Some(c) => format!(
                        "its base image {} is not a declared base image family",
                        c.name()
                    ),
                };
                return Ok(left_alone(named, dir, path, old, reason));
            };
            let wanted = ImageRef::parse(&reference)?;
            match current {
                Some(current) if current.repository != wanted.repository => {
                    let reason = format!(
                        "its base image {} is in another repository than {}; only images of the same family are moved",
                        current.name(),
                        wanted.name()
                    );
                    return Ok(left_alone(named, dir, path, old, reason));
                }
                None if !insert => return Ok(left_alone(named, dir, path, old, no_key())),
                _ => {}
            }
            reference
        }
        Err(_) if !named => return Ok(None),
        Err(_) => target(None).unwrap_or_default(),
    };
    let (new_text, change) = edit::set_base_image(&path, &text, &reference, insert)?;
    if change != Change::Unchanged && !dry_run {
        edit::write_atomic(&path, new_text.as_bytes())?;
    }
    Ok(Some(UpgradeResult {
        connector: display_name(&dir.to_string_lossy()),
        path,
        old: match &change {
            Change::Replaced { old } => Some(old.clone()),
            _ => None,
        },
        new: reference,
        changed: change != Change::Unchanged,
        left_alone: None,
    }))
}
