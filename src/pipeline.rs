//! One connector's way from a name to a build plan: find its folder, read its metadata,
//! plan it with its build customization; and why that can fail (`ConnectorError`).

use crate::execute::{BuildError, Builder};
use crate::hooks::customize::{plan_customized, CustomizeError, HookOptions};
use crate::hooks::HookError;
use crate::model::{Connector, ConnectorLocator, DiscoveryError, MetadataError};
use crate::plan::python::PlanError;
use crate::plan::{BuildPlan, PlanOptions};
use crate::progress::{Event, Silent};

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
        remote: builder.remote,
        rebase: builder.rebase,
    };
    let (connector, plan) = plan_one(locator, name_or_path, options, hooks, Some(&quiet)).await?;
    builder.reporter.report(Event::Started {
        connector: plan.connector.clone(),
        steps: crate::execute::progress_steps(&plan),
    });
    if connector.metadata.base_image().is_none() {
        builder.reporter.report(Event::Warning {
            connector: plan.connector.clone(),
            message: "no connectorBuildOptions.baseImage: building from the Dockerfile, a deprecated path; migrate to a base image".into(),
        });
    }
    for message in &plan.warnings {
        builder.reporter.report(Event::Warning {
            connector: plan.connector.clone(),
            message: message.clone(),
        });
    }
    Ok(plan)
}
