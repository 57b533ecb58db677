//! `connector-build publish`: `build`'s selection and build (for the publish platforms), then
//! each built connector published (see `connector_build::publish::run`); the pushed
//! digest-pinned addresses on stdout, and in `--json`, the run report and `--metadata-file`.

use std::sync::Arc;

use connector_build::error::error_chain;
use connector_build::progress::Reporter;
use connector_build::publish::run::{self, Publishing};
use connector_build::registry::Registry;

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
    args.build.platform = run::platforms(&args.build.platform, &ctx.config.platforms);
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
    let with = Publishing {
        engines: &engines,
        dirs: &dirs,
        registry: &registry,
        insecure,
        platforms: &args.build.platform,
        pre_release: args.pre_release,
        latest: args.latest,
        report_dir: &report_dir,
        reporter: reporter.clone(),
    };
    run::publish_built(&mut report, &with)
        .await
        .map_err(|e| fail(&e))?;
    drop(with);
    drop(reporter);
    if !args.build.json {
        for p in report
            .connectors
            .iter()
            .filter_map(|c| c.published.as_ref())
        {
            println!("{}", p.image);
        }
    }
    build::finish(ctx, &args.build, report, "published")
}
