//! The `connector-build` command: parses arguments, sets up logging, dispatches to one
//! command in `cli/`, and turns its outcome into the exit status.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::args::{with_default_subcommand, Cli, Command};
use cli::context::Context;
use cli::exit::Outcome;

fn main() -> ExitCode {
    cli::stdout::exit_quietly_when_closed();
    let cli = Cli::parse_from(with_default_subcommand(std::env::args().collect()));
    init_tracing(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(exit) => exit.into(),
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,connector_build=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .try_init();
}

async fn run(cli: Cli) -> Outcome {
    let ctx = Context::resolve(&cli.global)?;
    match cli.command {
        Command::Build(args) => cli::build::run(&ctx, args).await,
        Command::Publish(args) => cli::publish::run(&ctx, args).await,
        Command::List {
            selection,
            json,
            output,
        } => cli::list::run(&ctx, &selection, json, output.as_deref()),
        Command::Plan { connectors, plan } => cli::plan::run(&ctx, &connectors, &plan).await,
        Command::UpgradeBaseImage {
            selection,
            target,
            set_if_not_exists,
            dry_run,
        } => cli::upgrade::run(&ctx, &selection, &target, set_if_not_exists, dry_run).await,
        Command::BaseImages(args) => cli::base_images::run(&ctx, args).await,
        Command::MigrateToBaseImage(args) => cli::migrate::run(&ctx, args).await,
        Command::BumpVersion(args) => cli::bump::run(&ctx, args),
        Command::AnalyzeDockerfiles(args) => cli::analyze::run(&ctx, args).await,
        Command::Report(command) => cli::report::run(&ctx, command),
        Command::Cache(command) => cli::cache::run(&ctx, command).await,
    }
}
