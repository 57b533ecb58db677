//! `connector-build analyze-dockerfiles`: the analysis built on one engine, its reports
//! written or printed, and each connector's outcome as it comes.

use connector_build::analyze;

use super::args::AnalyzeArgs;
use super::changes::shown;
use super::context::Context;
use super::exit::{fail, Exit, Outcome};
use super::migrate::{engine_parts, interruptible};
use super::progress::Lines;

pub async fn run(ctx: &Context, args: AnalyzeArgs) -> Outcome {
    let Some(dirs) = ctx.selected_dirs(&args.selection, |_| true)? else {
        return Ok(());
    };
    let parts = engine_parts(ctx, &args.plan).await?;
    let builder = parts.builder();
    let reporter = Lines::new(ctx.style());
    let analysis = interruptible(
        &parts.engine,
        analyze::analyze(&builder, &reporter, &dirs, &parts.plan),
    )
    .await?;
    if let Some(dir) = &args.output {
        match analyze::write_reports(&analysis, dir) {
            Ok(files) => {
                for f in files {
                    eprintln!("wrote {}", shown(&f).display());
                }
            }
            Err(e) => return Err(fail(&e)),
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&analysis).unwrap_or_default()
        );
    } else if args.output.is_none() {
        print!("{}", analyze::markdown::render(&analysis));
    }
    let failed: Vec<_> = analysis
        .connectors
        .iter()
        .filter(|c| c.error.is_some())
        .collect();
    for c in &failed {
        eprintln!(
            "{}: not analysed: {}",
            c.name,
            c.error.as_deref().unwrap_or_default()
        );
    }
    let not_analysed = match failed.len() {
        0 => String::new(),
        n => format!(
            "; {n} of {} connector(s) not analysed, listed above (and under \"Not analysed\" in the report)",
            analysis.connectors.len()
        ),
    };
    eprintln!(
        "{} variant(s) among {} Dockerfile(s); {} migrated, {} not yet{not_analysed}",
        analysis.variants.len(),
        analysis
            .connectors
            .iter()
            .filter(|c| c.has_dockerfile)
            .count(),
        analysis.progress.migrated.len(),
        analysis.progress.not_migrated.len()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Exit::Failed)
    }
}
