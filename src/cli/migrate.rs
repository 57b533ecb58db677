//! `migrate-to-base-image`, `bump-version` and `analyze-dockerfiles`: arguments and output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use connector_build::analyze;
use connector_build::base_images::declare::Declarations;
use connector_build::base_images::state::State;
use connector_build::base_images::BaseImages;
use connector_build::build::network::NetworkSettings;
use connector_build::build::tools::Tools;
use connector_build::build::Builder;
use connector_build::config::Config;
use connector_build::edit::FileChange;
use connector_build::engine::Engine;
use connector_build::migrate::bump::{self, BumpOutcome, Release, ReleaseNote};
use connector_build::migrate::resolve::{self, BaseImageResolver, Fixed, LatestRelease};
use connector_build::migrate::version::Bump;
use connector_build::migrate::{self, Migration, MigrationOutcome};
use connector_build::model::ConnectorLocator;
use connector_build::report::Silent;

use super::progress::{Lines, Style};
use crate::{BaseImageTarget, Global, PlanArgs, SelectionArgs};

#[derive(Args)]
pub(crate) struct MigrateArgs {
    /// Which connectors; default: every connector found that has a Dockerfile.
    #[command(flatten)]
    selection: SelectionArgs,
    #[command(flatten)]
    target: BaseImageTarget,
    /// Pull request number for the changelog row's link.
    #[arg(long, value_name = "N", value_parser = parse_pr)]
    pr: Option<String>,
    /// The changelog row's subject.
    #[arg(long, value_name = "TEXT", default_value = migrate::DEFAULT_MESSAGE)]
    message: String,
    /// Build and compare, then print the changes as a diff instead of writing them.
    #[arg(long)]
    dry_run: bool,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    plan: PlanArgs,
}

#[derive(Args)]
pub(crate) struct BumpArgs {
    /// major, minor, patch, rc (1.2.3 -> 1.2.4-rc.1 -> 1.2.4-rc.2) or version:X.Y.Z.
    #[arg(value_parser = parse_bump)]
    bump: Bump,
    /// The changelog row's subject.
    entry: String,
    /// Which connectors (at least one name or selection flag).
    #[command(flatten)]
    selection: SelectionArgs,
    /// Pull request number for the changelog row's link.
    #[arg(long, value_name = "N", value_parser = parse_pr)]
    pr: Option<String>,
    /// Print the changes as a diff instead of writing them.
    #[arg(long)]
    dry_run: bool,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct AnalyzeArgs {
    /// Which connectors; default: every connector found. `--metadata-query
    /// "data.supportLevel == 'certified'"` narrows the progress listing too.
    #[command(flatten)]
    selection: SelectionArgs,
    /// Write dockerfile-analysis.md and dockerfile-analysis.json into DIR (else Markdown on
    /// stdout).
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Print the JSON report on stdout instead of Markdown.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    plan: PlanArgs,
}

fn parse_pr(s: &str) -> Result<String, String> {
    let n = s.trim_start_matches('#');
    if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
        Ok(n.to_string())
    } else {
        Err(format!("`{s}`: expected a pull request number, e.g. 31234"))
    }
}

fn parse_bump(s: &str) -> Result<Bump, String> {
    s.parse()
        .map_err(|e: migrate::version::VersionError| e.to_string())
}

/// The selected connectors' folders, or every connector's that `keep` accepts when nothing
/// is selected. `Ok(None)`: a selection matched nothing (said on stderr).
fn selection(
    locator: &ConnectorLocator,
    args: &SelectionArgs,
    verbose: u8,
    keep: impl Fn(&Path) -> bool,
) -> Result<Option<Vec<PathBuf>>, ExitCode> {
    match crate::selected(locator, args, verbose)? {
        None => Ok(Some(
            locator.all().into_iter().filter(|d| keep(d)).collect(),
        )),
        Some(result) if result.connectors.is_empty() => {
            eprintln!("no connector matches the selection");
            Ok(None)
        }
        Some(result) => Ok(Some(result.connectors.into_iter().map(|c| c.dir).collect())),
    }
}

fn style() -> Style {
    Style {
        color: crate::use_color(),
        verbose: false,
    }
}

fn lines() -> Lines {
    Lines::new(style())
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

async fn engine_parts(
    global: &Global,
    config: &Config,
    args: &PlanArgs,
) -> Result<EngineParts, ExitCode> {
    let network = crate::network_settings(args, config)?;
    let (installer, tools) = crate::installer(args)?;
    // One engine: a migration compares two images built side by side.
    let host = crate::engine_hosts(global, config)
        .into_iter()
        .next()
        .flatten();
    let engine = Engine::connect(host.as_deref())
        .await
        .map_err(|e| crate::fail(&e))?;
    Ok(EngineParts {
        plan: crate::plan_options(args, config, &network, installer),
        hooks: crate::hook_options(args),
        engine,
        network,
        tools,
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
) -> Result<T, ExitCode> {
    tokio::select! {
        out = work => Ok(out),
        _ = crate::shutdown_signal() => {
            let removed = engine.remove_all_containers().await;
            eprintln!("interrupted: removed {removed} container(s); no connector was changed");
            Err(ExitCode::from(130))
        }
    }
}

pub(crate) async fn migrate_to_base_image(
    global: &Global,
    config: &Config,
    locator: &ConnectorLocator,
    args: MigrateArgs,
) -> ExitCode {
    if let Some(to) = &args.target.to {
        if let Err(e) = resolve::pinned(to) {
            return crate::fail(&e);
        }
    }
    let has_dockerfile = |d: &Path| d.join("Dockerfile").is_file();
    let dirs = match selection(locator, &args.selection, global.verbose, has_dockerfile) {
        Ok(Some(d)) => d,
        Ok(None) => return ExitCode::SUCCESS,
        Err(code) => return code,
    };
    if dirs.is_empty() {
        eprintln!("no connector with a Dockerfile found: nothing to migrate");
        return ExitCode::SUCCESS;
    }
    let parts = match engine_parts(global, config, &args.plan).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    // Without --to, each connector's family's newest release, read from the registry.
    let declarations = match &args.target.to {
        Some(_) => None,
        None => match Declarations::from(
            crate::cli::base_images::declarations_dir(args.target.declarations.as_deref(), config)
                .as_deref(),
        ) {
            Ok(d) => Some(d),
            Err(e) => return crate::fail(&e),
        },
    };
    let state = State::locate(config.state_dir.as_deref());
    let registry = crate::cli::base_images::registry_of(args.target.registry.as_deref(), config);
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
            date: bump::today(),
        },
        dry_run: args.dry_run,
    };
    let reporter = lines();
    let results = match interruptible(
        &parts.engine,
        migrate::migrate_all(&builder, &reporter, &dirs, &options),
    )
    .await
    {
        Ok(r) => r,
        Err(code) => return code,
    };
    report_migrations(&results, &args)
}

fn report_migrations(results: &[Migration], args: &MigrateArgs) -> ExitCode {
    let style = style();
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
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
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

pub(crate) fn bump_version(locator: &ConnectorLocator, verbose: u8, args: BumpArgs) -> ExitCode {
    // Never every connector by default: a release is per connector.
    let dirs = match selection(locator, &args.selection, verbose, |_| false) {
        Ok(Some(d)) if d.is_empty() => {
            eprintln!("error: bump-version needs connector names or selection flags");
            return ExitCode::from(2);
        }
        Ok(Some(d)) => d,
        Ok(None) => return ExitCode::SUCCESS,
        Err(code) => return code,
    };
    let note = ReleaseNote {
        subject: args.entry.clone(),
        pull_request: args.pr.clone(),
        date: bump::today(),
    };
    let results = bump::bump_versions(&dirs, &args.bump, &note, args.dry_run);
    let style = style();
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
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub(crate) async fn analyze_dockerfiles(
    global: &Global,
    config: &Config,
    locator: &ConnectorLocator,
    args: AnalyzeArgs,
) -> ExitCode {
    let dirs = match selection(locator, &args.selection, global.verbose, |_| true) {
        Ok(Some(d)) => d,
        Ok(None) => return ExitCode::SUCCESS,
        Err(code) => return code,
    };
    let parts = match engine_parts(global, config, &args.plan).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    let builder = parts.builder();
    let reporter = lines();
    let analysis = match interruptible(
        &parts.engine,
        analyze::analyze(&builder, &reporter, &dirs, &parts.plan),
    )
    .await
    {
        Ok(a) => a,
        Err(code) => return code,
    };
    if let Some(dir) = &args.output {
        match analyze::write_reports(&analysis, dir) {
            Ok(files) => {
                for f in files {
                    eprintln!("wrote {}", shown(&f).display());
                }
            }
            Err(e) => return crate::fail(&e),
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
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
