//! `connector-build publish`: `build`'s selection and build, then each built image pushed to
//! the registry (see `connector_build::publish`); the pushed digest-pinned addresses on
//! stdout, and in `--json`, the run report and `--metadata-file`.

use std::sync::Arc;

use connector_build::error::error_chain;
use connector_build::model::connector::folder_name;
use connector_build::model::Connector;
use connector_build::progress::Reporter;
use connector_build::publish::{self, Request};
use connector_build::registry::Registry;
use connector_build::report::Status;

use super::args::PublishArgs;
use super::base_images::registry_of;
use super::build;
use super::context::Context;
use super::exit::{fail, Exit, Outcome};

pub async fn run(ctx: &Context, mut args: PublishArgs) -> Outcome {
    let name = registry_of(args.registry.as_deref(), &ctx.config);
    let insecure = &ctx.config.insecure_registries;
    let registry = Registry::connect(&name, insecure).map_err(|e| fail(&e))?;
    // The registry first: one that is down or refuses the credentials stops the run before
    // any build.
    if let Err(e) = registry.ping().await {
        eprintln!("error: {}", error_chain(&e));
        return Err(if e.retryable() {
            Exit::Infrastructure
        } else {
            Exit::Failed
        });
    }
    let Some((mut report, engines, dirs)) = build::execute(ctx, &args.build).await? else {
        return Ok(());
    };
    // The report folder now: the SBOMs go there, beside report.json.
    let report_dir = args
        .build
        .report_dir
        .clone()
        .unwrap_or_else(|| build::default_report_dir(ctx, report.started_at));
    args.build.report_dir = Some(report_dir.clone());
    let reporter: Arc<dyn Reporter> = Arc::from(ctx.reporter(args.build.json));
    let work = tempfile::tempdir().map_err(|e| fail(&e))?;
    for i in 0..report.connectors.len() {
        let c = &report.connectors[i];
        if c.status != Status::Built {
            continue;
        }
        let name = c.connector.clone();
        let (Some(image), Some(engine)) = (
            c.image_id.clone(),
            engines
                .iter()
                .find(|e| Some(e.host()) == c.engine.as_deref()),
        ) else {
            continue;
        };
        let outcome = async {
            // The report names connectors by folder name, as the selection's folders are.
            let dir = dirs
                .iter()
                .find(|d| folder_name(d) == name)
                .ok_or_else(|| {
                    (
                        connector_build::fault::FaultClass::Input,
                        format!("{name}: its folder is not in the selection"),
                    )
                })?;
            let connector = Connector::load(dir)
                .map_err(|e| (connector_build::fault::FaultClass::Input, error_chain(&e)))?;
            let scratch = work.path().join(&name);
            std::fs::create_dir_all(&scratch).map_err(|e| {
                (
                    connector_build::fault::FaultClass::Infrastructure,
                    error_chain(&e),
                )
            })?;
            let registry = registry.clone().with_reporter(reporter.clone(), &name);
            let result = publish::publish(Request {
                engine,
                image: &image,
                connector: &connector,
                registry: &registry,
                insecure,
                pre_release: args.pre_release,
                latest: args.latest,
                work_dir: &scratch,
            })
            .await;
            let _ = std::fs::remove_dir_all(&scratch);
            result.map_err(|e| (e.class(), error_chain(&e)))
        }
        .await;
        match outcome {
            Ok(mut published) => {
                let file = report_dir.join("sbom").join(format!("{name}.cdx.json"));
                let written = std::fs::create_dir_all(report_dir.join("sbom"))
                    .and_then(|_| connector_build::edit::replace_file(&file, &published.sbom));
                match written {
                    Ok(()) => published.sbom_file = Some(file),
                    Err(e) => eprintln!("warning: cannot write {}: {e}", file.display()),
                }
                if !args.build.json {
                    println!("{}", published.image);
                }
                report.connectors[i].published = Some(published);
            }
            Err((class, error)) => report.fail_built(i, class, error),
        }
    }
    drop(reporter);
    build::finish(ctx, &args.build, report, "published")
}
