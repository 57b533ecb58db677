//! Planning a connector with its build customization.
//!
//! `pre_connector_install` gets the base image; its steps go first, under everything else.
//! `post_connector_install` gets the connector container (code, entrypoint and env in
//! place); its steps go before the labels and the smoke test. `MAIN_FILE_NAME` replaces
//! `main.py`. The hook file's digest is part of every cache key.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use super::ops::to_steps;
use super::{
    EvalReply, EvalRequest, Evaluator, HookError, Query, Session, HOOK_FILE, POST_INSTALL,
    PRE_INSTALL,
};
use crate::error::error_chain;
use crate::execute::{BuildError, Builder, StepFailure};
use crate::model::Connector;
use crate::plan::canonical::sha256_hex;
use crate::plan::manifest_only::COMPONENTS_FILE;
use crate::plan::python::{PlanError, LABELS_STEP};
use crate::plan::{plan_connector, Base, BuildPlan, PlanOptions, CODE_DIR};

#[derive(Debug, Clone)]
pub struct HookOptions {
    pub enabled: bool,
    pub runner: PathBuf,
    /// How long the hook's Python code may run between two messages.
    pub timeout: Duration,
}

impl Default for HookOptions {
    fn default() -> Self {
        HookOptions {
            enabled: true,
            runner: super::default_runner(),
            timeout: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CustomizeError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Hook(#[from] HookError),
}

/// The plan for `connector`, with its build customization applied when it has one.
/// `builder` answers hooks that evaluate their container; without it they get an error.
pub async fn plan_customized(
    connector: &Connector,
    options: &PlanOptions,
    hooks: &HookOptions,
    builder: Option<&Builder<'_>>,
) -> Result<BuildPlan, CustomizeError> {
    let components = connector.dir.join(COMPONENTS_FILE);
    if connector.metadata.language() == Some("manifest-only") && components.is_file() {
        super::check_components(&components, &hooks.runner).map_err(PlanError::ManifestOnly)?;
    }
    let file = connector.dir.join(HOOK_FILE);
    if hooks.enabled {
        crate::plan::context::check_not_special(&file).map_err(PlanError::Context)?;
    }
    if !hooks.enabled || !file.is_file() {
        return Ok(plan_connector(connector, options)?);
    }
    let bytes = std::fs::read(&file).map_err(|source| {
        PlanError::Context(crate::plan::context::ContextError::Io {
            path: file.clone(),
            source,
        })
    })?;
    let (mut session, loaded) = Session::start(&hooks.runner, &file, hooks.timeout).await?;
    let result = async {
        let mut options = options.clone();
        if loaded.main_file.is_some() {
            options.main_file = loaded.main_file.clone();
        }
        let mut plan = plan_connector(connector, &options)?;
        plan.customization = Some(sha256_hex(&bytes));
        if matches!(plan.base, Base::Dockerfile { .. }) {
            // airbyte-ci ignored customizations for Dockerfile builds; so do we.
            return Ok(plan);
        }
        if loaded.has(PRE_INSTALL) {
            let evaluator = PlanEvaluator {
                builder,
                token: "pre",
                prefix: BuildPlan {
                    steps: vec![],
                    ..plan.clone()
                },
                workdir: "/",
            };
            let ops = session.call(PRE_INSTALL, "pre", &evaluator).await?;
            let steps =
                to_steps(PRE_INSTALL, &ops, "/").map_err(|source| HookError::Operation {
                    file: file.clone(),
                    hook: PRE_INSTALL.into(),
                    source,
                })?;
            plan.steps.splice(0..0, steps);
        }
        if loaded.has(POST_INSTALL) {
            let at = plan
                .steps
                .iter()
                .position(|s| s.name == LABELS_STEP)
                .unwrap_or(plan.steps.len());
            let evaluator = PlanEvaluator {
                builder,
                token: "post",
                prefix: BuildPlan {
                    steps: plan.steps[..at].to_vec(),
                    ..plan.clone()
                },
                workdir: CODE_DIR,
            };
            let ops = session.call(POST_INSTALL, "post", &evaluator).await?;
            let steps =
                to_steps(POST_INSTALL, &ops, CODE_DIR).map_err(|source| HookError::Operation {
                    file: file.clone(),
                    hook: POST_INSTALL.into(),
                    source,
                })?;
            plan.steps.splice(at..at, steps);
        }
        Ok(plan)
    }
    .await;
    session.finish().await;
    result
}

/// Builds what a hook recorded on top of the plan so far, and answers its question.
struct PlanEvaluator<'a> {
    builder: Option<&'a Builder<'a>>,
    token: &'static str,
    prefix: BuildPlan,
    workdir: &'static str,
}

impl Evaluator for PlanEvaluator<'_> {
    fn evaluate<'a>(
        &'a self,
        request: EvalRequest,
    ) -> Pin<Box<dyn Future<Output = EvalReply> + Send + 'a>> {
        Box::pin(async move {
            match self.answer(request).await {
                Ok(reply) => reply,
                Err(message) => EvalReply::Error(message),
            }
        })
    }
}

impl PlanEvaluator<'_> {
    async fn answer(&self, request: EvalRequest) -> Result<EvalReply, String> {
        let Some(builder) = self.builder else {
            // Planning without an engine: `await container` only checks, so it can wait for
            // the build; real questions cannot.
            if request.query == Query::Sync {
                return Ok(EvalReply::Value(serde_json::Value::Null));
            }
            return Err("this hook asks about its container, which needs the Docker engine: run `connector-build build`".into());
        };
        let mut plan = self.prefix.clone();
        plan.smoke_test = None;
        let workdir = if request.base == self.token {
            self.workdir
        } else if let Some(address) = request.base.strip_prefix("image:") {
            plan.steps.clear();
            plan.base = Base::Image {
                reference: address.to_string(),
                pull: address.to_string(),
                digest: None,
            };
            "/"
        } else {
            return Err("dag.container() has no image: call from_(address) on it, or use the container the hook was given".into());
        };
        let steps =
            to_steps(super::EVALUATE, &request.ops, workdir).map_err(|e| error_chain(&e))?;
        plan.steps.extend(steps);
        let capture = request.query.needs_output();
        if capture
            && !matches!(
                plan.steps.last().map(|s| &s.action),
                Some(crate::plan::Action::Run(_))
            )
        {
            return Err(
                "stdout(), stderr() and exit_code() need a with_exec right before them".into(),
            );
        }
        let (image, output) = match builder.evaluate(&plan, capture).await {
            Ok(built) => built,
            Err(BuildError::StepFailed(failure)) => {
                let StepFailure {
                    command,
                    exit_code,
                    stdout,
                    stderr,
                    output,
                    ..
                } = *failure;
                let message = format!(
                    "`{command}` exited with code {exit_code}{}",
                    if output.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", output.join(" | "))
                    }
                );
                return Ok(EvalReply::ExecError {
                    message,
                    cmd: command.split(' ').map(str::to_string).collect(),
                    exit_code,
                    stdout,
                    stderr,
                });
            }
            Err(e) => return Err(error_chain(&e)),
        };
        let env = |name: &str| {
            image
                .env
                .iter()
                .find_map(|e| e.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
                .map(str::to_string)
        };
        let value = match request.query {
            Query::Sync => serde_json::Value::Null,
            Query::Stdout => output.map(|o| o.stdout).unwrap_or_default().into(),
            Query::Stderr => output.map(|o| o.stderr).unwrap_or_default().into(),
            Query::ExitCode => output.map(|o| o.exit_code).unwrap_or_default().into(),
            Query::EnvVariable(name) => env(&name).into(),
            Query::EnvVariables => serde_json::json!(image
                .env
                .iter()
                .map(|e| e.split_once('=').unwrap_or((e, "")))
                .collect::<Vec<_>>()),
            Query::User => image.user.clone().unwrap_or_default().into(),
            Query::Workdir => image.workdir.clone().unwrap_or_else(|| "/".into()).into(),
            Query::Entrypoint => serde_json::json!(image.entrypoint.clone().unwrap_or_default()),
            Query::DefaultArgs => serde_json::json!(image.cmd.clone().unwrap_or_default()),
            Query::Label(name) => image.labels.get(&name).cloned().into(),
            Query::FileContents(path) => {
                let path = if path.starts_with('/') {
                    path
                } else {
                    format!(
                        "{}/{path}",
                        image
                            .workdir
                            .clone()
                            .unwrap_or_default()
                            .trim_end_matches('/')
                    )
                };
                match builder.engine.read_file(&image.id, &path).await {
                    Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned().into(),
                    Ok(None) => return Err(format!("{path}: no such file in the container")),
                    Err(e) => return Err(error_chain(&e)),
                }
            }
        };
        Ok(EvalReply::Value(value))
    }
}
