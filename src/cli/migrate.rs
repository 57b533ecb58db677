//! `connector-build migrate-to-base-image`: results and refusals printed; the one-engine
//! builder and interrupt handling that `analyze-dockerfiles` shares.

use std::collections::BTreeMap;
use std::path::Path;

use connector_build::base_images::state::State;
use connector_build::base_images::BaseImages;
use connector_build::clock;
use connector_build::engine::Engine;
use connector_build::execute::network::NetworkSettings;
use connector_build::execute::tools::Tools;
use connector_build::execute::Builder;
use connector_build::migrate::bump::ReleaseNote;
use connector_build::migrate::resolve::{self, BaseImageResolver, Fixed, LatestRelease};
use connector_build::migrate::{self, Migration, MigrationOutcome};
use connector_build::model::families::Declarations;
use connector_build::progress::Silent;

use super::args::{MigrateArgs, PlanArgs};
use super::base_images::{declarations_dir, registry_of};
use super::changes::{print_diffs, release_line};
use super::context::Context;
use super::exit::{fail, shutdown_signal, Exit, Outcome};
use super::progress::Lines;

/// What builds on the engine: its connection, install settings and plan options.
pub(super) struct EngineParts {
    pub engine: Engine,
    pub network: NetworkSettings,
    pub tools: Tools,
    pub plan: connector_build::plan::PlanOptions,
    pub hooks: connector_build::hooks::customize::HookOptions,
}

pub(super) async fn engine_parts(ctx: &Context, args: &PlanArgs) -> Result<EngineParts, Exit> {
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
    pub fn builder(&self) -> Builder<'_> {
        Builder {
            engine: &self.engine,
            network: &self.network,
            tools: &self.tools,
            reporter: &Silent,
            remote: None,
            rebase: false,
        }
    }
}

/// Runs `work` unless interrupted; an interrupt removes the containers the tool started.
pub(super) async fn interruptible<T>(
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

pub async fn run(ctx: &Context, args: MigrateArgs) -> Outcome {
    let config = &ctx.config;
    if let Some(to) = &args.target.to {
        resolve::pinned(to).map_err(|e| fail(&e))?;
    }
    let has_dockerfile = |d: &Path| d.join("Dockerfile").is_file();
    let Some(dirs) = ctx.selected_dirs(&args.selection, has_dockerfile)? else {
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
        insecure: &config.insecure_registries,
        // Connectors pin the linux/amd64 tags (or, once published, the index under them).
        platform: connector_build::platform::Platform::LinuxAmd64,
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
    let reporter = Lines::new(ctx.style());
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

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
