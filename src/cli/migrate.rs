//! `migrate-to-base-image`, `bump-version` and `analyze-dockerfiles`: arguments and output.

use connector_build::analyze;
use connector_build::base_images::declare::Declarations;
use connector_build::base_images::state::State;
use connector_build::base_images::BaseImages;
use connector_build::clock;
use connector_build::edit::FileChange;
use connector_build::engine::Engine;
use connector_build::execute::network::NetworkSettings;
use connector_build::execute::tools::Tools;
use connector_build::execute::Builder;
use connector_build::migrate::bump::{self, BumpOutcome, Release, ReleaseNote};
use connector_build::migrate::resolve::{self, BaseImageResolver, Fixed, LatestRelease};
use connector_build::migrate::{self, Migration, MigrationOutcome};
use connector_build::progress::Silent;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::args::{AnalyzeArgs, BumpArgs, MigrateArgs, PlanArgs, SelectionArgs};
use super::base_images::{declarations_dir, registry_of};
use super::context::Context;
use super::exit::{fail, shutdown_signal, usage, Exit, Outcome};
use super::progress::Lines;

/// The selected connectors' folders, or every connector's that `keep` accepts when nothing
/// is selected. `Ok(None)`: a selection matched nothing (said on stderr).
fn selection(
    ctx: &Context,
    args: &SelectionArgs,
    keep: impl Fn(&Path) -> bool,
) -> Result<Option<Vec<PathBuf>>, Exit> {
    match ctx.selected(args)? {
        None => Ok(Some(
            ctx.locator.all().into_iter().filter(|d| keep(d)).collect(),
        )),
        Some(result) if result.connectors.is_empty() => {
            eprintln!("no connector matches the selection");
            Ok(None)
        }
        Some(result) => Ok(Some(result.connectors.into_iter().map(|c| c.dir).collect())),
    }
}

fn lines(ctx: &Context) -> Lines {
    Lines::new(ctx.style())
}

/// A path as the user would type it: relative to the current folder when inside it.
fn shown(path: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

fn print_diffs(changes: &[FileChange]) {
    for c in changes {
        let c = FileChange {
            path: shown(&c.path),
            ..c.clone()
        };
        print!("{}", c.diff());
    }
}

/// What builds on the engine: its connection, install settings and plan options.
struct EngineParts {
    engine: Engine,
    network: NetworkSettings,
    tools: Tools,
    plan: connector_build::plan::PlanOptions,
    hooks: connector_build::hooks::customize::HookOptions,
}

async fn engine_parts(ctx: &Context, args: &PlanArgs) -> Result<EngineParts, Exit> {
    let planning = ctx.planning(args)?;
    // One engine: a migration compares two images built side by side.
    let engine = ctx.connect_engine().await?;
    Ok(EngineParts {
        plan: planning.options,
        hooks: planning.hooks,
        engine,
        network: planning.network,
        tools: planning.tools,
    })
}

impl EngineParts {
    /// Builds quietly: these commands report their own phases.
    fn builder(&self) -> Builder<'_> {
        Builder {
            engine: &self.engine,
            network: &self.network,
            tools: &self.tools,
            reporter: &Silent,
        }
    }
}

/// Runs `work` unless interrupted; an interrupt removes the containers the tool started.
async fn interruptible<T>(
    engine: &Engine,
    work: impl std::future::Future<Output = T>,
) -> Result<T, Exit> {
    tokio::select! {
        out = work => Ok(out),
        signal = shutdown_signal() => {
            let removed = engine.remove_all_containers().await;
            eprintln!("interrupted: removed {removed} container(s); no connector was changed");
            Err(Exit::Signal(signal))
        }
    }
}

pub async fn migrate_to_base_image(ctx: &Context, args: MigrateArgs) -> Outcome {
    let config = &ctx.config;
    if let Some(to) = &args.target.to {
        resolve::pinned(to).map_err(|e| fail(&e))?;
    }
    let has_dockerfile = |d: &Path| d.join("Dockerfile").is_file();
    let Some(dirs) = selection(ctx, &args.selection, has_dockerfile)? else {
        return Ok(());
    };
    if dirs.is_empty() {
        eprintln!("no connector with a Dockerfile found: nothing to migrate");
        return Ok(());
    }
    let parts = engine_parts(ctx, &args.plan).await?;
    // Without --to, each connector's family's newest release, read from the registry.
    let declarations = match &args.target.to {
        Some(_) => None,
        None => Some(
            Declarations::from(
                declarations_dir(args.target.declarations.as_deref(), config).as_deref(),
            )
            .map_err(|e| fail(&e))?,
        ),
    };
    let state = State::locate(config.state_dir.as_deref());
    let registry = registry_of(args.target.registry.as_deref(), config);
    let no_mirrors = BTreeMap::new();
    let images = declarations.as_ref().map(|declarations| BaseImages {
        engine: &parts.engine,
        network: &parts.network,
        reporter: &Silent,
        declarations,
        state: &state,
        registry: &registry,
        mirrors: &no_mirrors,
    });
    let fixed;
    let latest;
    let resolver: &dyn BaseImageResolver = match &images {
        Some(images) => {
            latest = LatestRelease { images };
            &latest
        }
        None => {
            fixed = Fixed(args.target.to.clone().unwrap_or_default());
            &fixed
        }
    };
    let builder = parts.builder();
    let options = migrate::MigrateOptions {
        plan: parts.plan.clone(),
        hooks: parts.hooks.clone(),
        resolver,
        note: ReleaseNote {
            subject: args.message.clone(),
            pull_request: args.pr.clone(),
            date: clock::today(),
        },
        dry_run: args.dry_run,
    };
    let reporter = lines(ctx);
    let results = interruptible(
        &parts.engine,
        migrate::migrate_all(&builder, &reporter, &dirs, &options),
    )
    .await?;
    report_migrations(ctx, &results, &args)
}

fn report_migrations(ctx: &Context, results: &[Migration], args: &MigrateArgs) -> Outcome {
    let style = ctx.style();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(results).unwrap_or_default()
        );
    }
    for r in results {
        match &r.outcome {
            MigrationOutcome::Migrated {
                base_image,
                release,
                customization,
                changes,
                written,
                ..
            } => {
                if args.dry_run && !args.json {
                    print_diffs(changes);
                }
                let hook = match customization {
                    Some(_) => ", with a generated build_customization.py",
                    None => "",
                };
                let verb = if *written {
                    "migrated"
                } else {
                    "would migrate"
                };
                eprintln!(
                    "{}",
                    release_line(
                        &style.ok(verb),
                        &r.connector,
                        release,
                        &format!(", on {base_image}{hook}")
                    )
                );
                if args.pr.is_none() && release.docs_page.is_some() {
                    eprintln!(
                        "{}: the changelog row has no pull request link; pass --pr N or fill it in",
                        r.connector
                    );
                }
            }
            MigrationOutcome::Skipped { reason } => eprintln!("{}: skipped: {reason}", r.connector),
            MigrationOutcome::Refused {
                differences,
                customization,
                note,
                ..
            } => {
                eprintln!(
                    "{} {}: the image built from the base image differs from the Dockerfile's; the connector was left as it was",
                    style.bad("not migrated"),
                    r.connector
                );
                for d in differences {
                    let text = d.to_string().replace('\n', "\n    ");
                    eprintln!("  - {text}");
                }
                if let Some(c) = customization {
                    eprintln!(
                        "  tried this build_customization.py:\n{}",
                        indent(&c.render())
                    );
                }
                eprintln!("  {}", note.replace('\n', "\n  "));
            }
            MigrationOutcome::Failed { error } => {
                eprintln!("{} {}: {error}", style.bad("failed"), r.connector)
            }
        }
    }
    if results.iter().all(Migration::ok) {
        Ok(())
    } else {
        Err(Exit::Failed)
    }
}

/// `migrated source-foo: 1.0.0 -> 1.0.1<extra>`, saying when no changelog row was added.
fn release_line(verb: &str, connector: &str, release: &Release, extra: &str) -> String {
    let no_row = if release.docs_page.is_none() {
        " (no documentation page, so no changelog row)"
    } else {
        ""
    };
    format!(
        "{verb} {connector}: {} -> {}{extra}{no_row}",
        release.old_version, release.new_version
    )
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn bump_version(ctx: &Context, args: BumpArgs) -> Outcome {
    // Never every connector by default: a release is per connector.
    let Some(dirs) = selection(ctx, &args.selection, |_| false)? else {
        return Ok(());
    };
    if dirs.is_empty() {
        return Err(usage(
            "bump-version needs connector names or selection flags",
        ));
    }
    let note = ReleaseNote {
        subject: args.entry.clone(),
        pull_request: args.pr.clone(),
        date: clock::today(),
    };
    let results = bump::bump_versions(&dirs, &args.bump, &note, args.dry_run);
    let style = ctx.style();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&results).unwrap_or_default()
        );
    }
    let mut ok = true;
    for r in &results {
        match &r.outcome {
            BumpOutcome::Bumped {
                release, written, ..
            } => {
                if args.dry_run && !args.json {
                    print_diffs(&release.changes);
                }
                let verb = if *written { "bumped" } else { "would bump" };
                eprintln!(
                    "{}",
                    release_line(&style.ok(verb), &r.connector, release, "")
                );
            }
            BumpOutcome::Failed { error } => {
                ok = false;
                eprintln!(
                    "{} {}: {error}; nothing was changed",
                    style.bad("failed"),
                    r.connector
                );
            }
        }
    }
    if ok {
        Ok(())
    } else {
        Err(Exit::Failed)
    }
}

pub async fn analyze_dockerfiles(ctx: &Context, args: AnalyzeArgs) -> Outcome {
    let Some(dirs) = selection(ctx, &args.selection, |_| true)? else {
        return Ok(());
    };
    let parts = engine_parts(ctx, &args.plan).await?;
    let builder = parts.builder();
    let reporter = lines(ctx);
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
