//! `connector-build build`: the selected connectors over the engines, a summary on stderr,
//! results with `--json`, and the run report's files.

use std::path::PathBuf;

use connector_build::bulk::{self, BulkRequest};
use connector_build::clock;
use connector_build::engine::Engine;
use connector_build::progress::Reporter;
use connector_build::publish::PublishOutcome;
use connector_build::report::{self, duration, short_id, RunReport, Status};

use super::args::BuildArgs;
use super::context::Context;
use super::exit::{fail, shutdown_signal, usage, Exit, Outcome, Signal};

pub async fn run(ctx: &Context, args: BuildArgs) -> Outcome {
    match execute(ctx, &args).await? {
        Some((report, _, _)) => finish(ctx, &args, report, "built"),
        None => Ok(()),
    }
}

/// What [`execute`] ran: the report, the engines that took part, the selected folders.
pub(super) type Executed = (RunReport, Vec<Engine>, Vec<PathBuf>);

/// Builds the selection. `None` when nothing is selected.
pub(super) async fn execute(ctx: &Context, args: &BuildArgs) -> Result<Option<Executed>, Exit> {
    let selection = ctx.selected(&args.selection)?.ok_or_else(|| {
        usage("nothing to build: name connectors (`build source-foo`, --name), or select them with --language, --support-level, --modified or --metadata-query")
    })?;
    if selection.connectors.is_empty() {
        eprintln!("no connector matches the selection; nothing to build");
        return Ok(None);
    }
    if let Some(dir) = &args.report_dir {
        report::prepare_dir(dir).map_err(|e| fail(&e))?;
    }
    let planning = ctx.planning(&args.plan)?;
    // No engine answering is an infrastructure fault the report records per connector, so
    // CI sees the same class in the exit status, `--json` and report.json.
    let engines = match ctx.connect_engines().await {
        Err(Exit::Infrastructure) => Vec::new(),
        other => other?,
    };
    let reporter: Box<dyn Reporter> = ctx.reporter(args.json);
    let concurrency = args.concurrency.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let request = BulkRequest {
        locator: &ctx.locator,
        connectors: selection
            .connectors
            .iter()
            .map(|c| c.dir.to_string_lossy().into_owned())
            .collect(),
        plan: planning.options,
        hooks: planning.hooks,
        concurrency,
        fail_fast: args.fail_fast,
        warnings: selection.warnings.clone(),
        cache: ctx.remote_cache(&args.cache)?,
        platforms: args.platform.clone(),
        rebase: args.rebase,
    };
    // The first signal stops the builds; a second one cuts the container removal short.
    // Either way the report is written.
    let stop = futures_util::stream::unfold(0, |n| async move {
        let signal = shutdown_signal().await;
        if n == 0 {
            eprintln!(
                "\n{}: stopping the builds and removing their containers (again to stop removing them)",
                signal.name()
            );
        } else {
            eprintln!(
                "{}: leaving the remaining containers; writing the report",
                signal.name()
            );
        }
        Some((signal.name().to_string(), n + 1))
    });
    let report = bulk::run(
        &engines,
        &planning.network,
        &planning.tools,
        reporter.as_ref(),
        request,
        stop,
    )
    .await;
    drop(reporter);
    let dirs = selection.connectors.iter().map(|c| c.dir.clone()).collect();
    Ok(Some((report, engines, dirs)))
}

/// Prints the results, writes the report and CI outputs, and gives the exit status.
/// `done` names what happened to a connector that succeeded (`built`, `published`).
pub(super) fn finish(ctx: &Context, args: &BuildArgs, report: RunReport, done: &str) -> Outcome {
    if args.json {
        println!("{}", report.results_json());
    }
    print_summary(ctx, &report, done);
    let dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| default_report_dir(ctx, report.started_at));
    let mut written = match report.write(&dir, ctx.step_summary().as_deref()) {
        Ok(_) => {
            eprintln!("report: {}", dir.join("report.html").display());
            true
        }
        Err(e) => {
            fail(&e);
            false
        }
    };
    // Outputs CI reads next: one not written fails the command even when the builds passed.
    if let Some(path) = &args.metadata_file {
        if let Err(e) = connector_build::ci::metadata::write(path, &report) {
            fail(&e);
            written = false;
        }
    }
    if let Some(github) = &ctx.github {
        for line in github.annotations(&report) {
            eprintln!("{line}");
        }
        if let Err(e) = github.write_outputs(&report) {
            fail(&e);
            written = false;
        }
    }
    if let Some(i) = &report.interrupted {
        eprintln!(
            "interrupted: removed {} build container(s); nothing was tagged from an unfinished build",
            i.containers_removed
        );
        return Err(Exit::Signal(Signal::from_name(&i.signal)));
    }
    match report.failure_class() {
        _ if report.ok() && written => Ok(()),
        _ if report.ok() => Err(Exit::Failed),
        Some(class) => Err(Exit::of(class)),
        None => Err(Exit::Failed),
    }
}

/// `<root>/.connector-build/reports/<UTC timestamp>/`, made unique if a run in the same
/// second already wrote there.
pub(super) fn default_report_dir(ctx: &Context, started: f64) -> PathBuf {
    let base = ctx
        .config
        .root
        .join(".connector-build")
        .join("reports")
        .join(clock::folder_timestamp(started));
    let mut dir = base.clone();
    let mut n = 2;
    while dir.exists() {
        dir = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    dir
}

fn print_summary(ctx: &Context, report: &RunReport, done: &str) {
    let style = ctx.style();
    let several_engines = report.engines.len() > 1;
    for c in &report.connectors {
        let on = match (&c.engine, several_engines) {
            (Some(e), true) => format!(" on {e}"),
            _ => String::new(),
        };
        match c.status {
            Status::Built => {
                let cached: Vec<&str> = c
                    .steps
                    .iter()
                    .filter(|s| s.cached)
                    .map(|s| s.name.as_str())
                    .collect();
                let note = if c.containers_started == Some(0) {
                    " (everything from cache, no container started)".to_string()
                } else if cached.is_empty() {
                    String::new()
                } else {
                    format!(" (from cache: {})", cached.join(", "))
                };
                let (image, done) = match &c.published {
                    Some(p) if p.outcome == PublishOutcome::AlreadyPublished => {
                        (p.image.clone(), "already published")
                    }
                    Some(p) => (p.image.clone(), done),
                    None => (c.tag.clone().unwrap_or_default(), done),
                };
                eprintln!(
                    "{} {} -> {image}  {}  {:.1} MB  {:.1}s{note}{on}",
                    style.ok(done),
                    c.connector,
                    short_id(c.image_id.as_deref().unwrap_or_default()),
                    c.size.unwrap_or_default() as f64 / 1e6,
                    c.seconds,
                );
                for p in &c.platforms {
                    let mut line = format!(
                        "  {} -> {}  {}  {:.1}s",
                        p.platform,
                        p.tag,
                        short_id(&p.image_id),
                        p.seconds
                    );
                    for step in &p.cross {
                        line.push_str(&format!("; {}", step.describe()));
                    }
                    eprintln!("{line}");
                }
            }
            Status::Failed => {
                let error = c.error.as_deref().unwrap_or_default();
                eprintln!("{} {}{on}: {error}", style.bad("failed"), c.connector);
            }
            Status::Skipped => eprintln!(
                "{} {}: {}",
                style.dim("skipped"),
                c.connector,
                c.error.as_deref().unwrap_or("not started")
            ),
            Status::Interrupted => eprintln!(
                "{} {}{on}: {}",
                style.warn("interrupted"),
                c.connector,
                c.error.as_deref().unwrap_or_default()
            ),
        }
    }
    if report.connectors.len() > 1 {
        eprintln!("{} in {}", report.headline(), duration(report.seconds()));
    }
}
