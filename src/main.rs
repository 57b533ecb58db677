//! The `connector-build` command: parses arguments, calls the library, prints.

mod cli;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use connector_build::build::network::NetworkSettings;
use connector_build::build::tools::{self, Tools};
use connector_build::commands::{self, error_chain, BuildRequest, Outcome};
use connector_build::config::Config;
use connector_build::engine::Engine;
use connector_build::hooks::customize::HookOptions;
use connector_build::model::ConnectorLocator;
use connector_build::plan::python::InstallerChoice;
use connector_build::plan::PlanOptions;
use connector_build::report::{Reporter, Silent};

use cli::progress::{Bars, Lines, Style};

#[derive(Parser)]
#[command(
    name = "connector-build",
    version,
    about = "Build container images for Airbyte-style Python connectors from their metadata.yaml",
    after_help = "`connector-build source-foo` is short for `connector-build build source-foo`."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// Folder holding connector folders (repeatable). Default: ./airbyte-integrations/connectors, then .
    #[arg(long, global = true, value_name = "DIR")]
    connectors_dir: Vec<PathBuf>,
    /// Docker engine endpoint (unix://, tcp://). Default: DOCKER_HOST, then the local socket.
    #[arg(long, global = true, value_name = "URL")]
    engine: Option<String>,
    /// More output: install logs and debug logs (RUST_LOG also works).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Build connector images and tag them `<dockerRepository>:dev`.
    Build(BuildArgs),
    /// Print build plans and cache keys as JSON, without an engine.
    Plan {
        /// Connector names or folders.
        #[arg(required = true)]
        connectors: Vec<String>,
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// Point connectors' `connectorBuildOptions.baseImage` at a digest-pinned image.
    UpgradeBaseImage {
        /// Connector names or folders; default: every connector found.
        connectors: Vec<String>,
        /// The digest-pinned image reference to set.
        #[arg(long, value_name = "REFERENCE")]
        to: String,
        /// Add the key to connectors that have none.
        #[arg(long)]
        set_if_not_exists: bool,
        /// Show what would change, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Move connectors off their Dockerfiles when the image built from the base image
    /// behaves the same: Dockerfile removed, baseImage set, patch release, changelog row.
    MigrateToBaseImage(cli::migrate::MigrateArgs),
    /// Release a new version: dockerImageTag, pyproject.toml version, changelog row.
    BumpVersion(cli::migrate::BumpArgs),
    /// Report how the connectors' Dockerfiles and their images differ, and which
    /// connectors are migrated to a base image.
    AnalyzeDockerfiles(cli::migrate::AnalyzeArgs),
}

#[derive(Args)]
struct PlanArgs {
    /// Tag for the built image: `name:tag`, or a tag for the connector's repository.
    #[arg(long)]
    tag: Option<String>,
    /// Accept a baseImage without a @sha256: digest (builds are then not reproducible).
    #[arg(long)]
    allow_unpinned: bool,
    /// Pull images of REGISTRY from MIRROR instead, e.g. docker.io=127.0.0.1:5000 (repeatable).
    #[arg(long, value_name = "REGISTRY=MIRROR", value_parser = parse_mirror)]
    mirror: Vec<(String, String)>,
    /// CA bundle given to install steps. Default: $SSL_CERT_FILE when set.
    #[arg(long, value_name = "FILE")]
    ca_bundle: Option<PathBuf>,
    /// Ignore build_customization.py (hooks are code from the repository and run with your
    /// rights, like any build script).
    #[arg(long)]
    no_hooks: bool,
    /// Stop a build customization whose Python code runs longer than this between two
    /// requests (evaluating its container does not count).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    hook_timeout: u64,
    /// The dependency installer: uv (several times faster; needs the uv program, which the
    /// set-up installs) or pip. Default: uv when found, else pip.
    #[arg(long, value_enum)]
    installer: Option<InstallerArg>,
    /// The uv program to mount into install steps. Default: $CONNECTOR_BUILD_UV, the set-up's
    /// copy, then PATH.
    #[arg(long, value_name = "FILE")]
    uv: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum InstallerArg {
    Uv,
    Pip,
}

/// The installer and the host programs it needs.
fn installer(args: &PlanArgs) -> Result<(InstallerChoice, Tools), ExitCode> {
    if args.installer == Some(InstallerArg::Pip) {
        return Ok((InstallerChoice::Pip, Tools::none()));
    }
    match tools::find_uv(args.uv.as_deref()) {
        Some(path) => match Tools::none().with("uv", &path) {
            Ok(tools) => {
                let identity = tools
                    .get("uv")
                    .map(|t| t.identity.clone())
                    .unwrap_or_default();
                Ok((InstallerChoice::Uv { identity }, tools))
            }
            Err(e) => Err(fail(&e)),
        },
        None if args.installer == Some(InstallerArg::Uv) => {
            eprintln!("error: --installer uv: no uv program found (--uv, $CONNECTOR_BUILD_UV, {}, PATH); run the set-up command or `pip install uv`", tools::DEFAULT_UV);
            Err(ExitCode::FAILURE)
        }
        None => Ok((InstallerChoice::Pip, Tools::none())),
    }
}

fn hook_options(args: &PlanArgs) -> HookOptions {
    HookOptions {
        enabled: !args.no_hooks,
        timeout: std::time::Duration::from_secs(args.hook_timeout.max(1)),
        ..Default::default()
    }
}

#[derive(Args)]
struct BuildArgs {
    /// Connector names or folders.
    #[arg(required = true)]
    connectors: Vec<String>,
    #[command(flatten)]
    plan: PlanArgs,
    /// How many connectors to build at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_mirror(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
        _ => Err(format!(
            "`{s}`: expected REGISTRY=MIRROR, e.g. docker.io=127.0.0.1:5000"
        )),
    }
}

const SUBCOMMANDS: &[&str] = &[
    "build",
    "plan",
    "upgrade-base-image",
    "migrate-to-base-image",
    "bump-version",
    "analyze-dockerfiles",
    "help",
];

/// Global options that take a value, so their value is not read as a subcommand.
const VALUE_OPTIONS: &[&str] = &["--connectors-dir", "--engine"];

/// `connector-build source-foo` means `connector-build build source-foo`.
fn with_default_subcommand(mut args: Vec<String>) -> Vec<String> {
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].as_str();
        if VALUE_OPTIONS.contains(&arg) {
            i += 2;
            continue;
        }
        if arg.starts_with('-') {
            i += 1;
            continue;
        }
        if !SUBCOMMANDS.contains(&arg) {
            args.insert(i, "build".to_string());
        }
        break;
    }
    args
}

fn main() -> ExitCode {
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
    runtime.block_on(run(cli))
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,connector_build=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(use_color())
        .try_init();
}

fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

fn locator(global: &Global, config: &Config) -> ConnectorLocator {
    if !global.connectors_dir.is_empty() {
        ConnectorLocator {
            dirs: global.connectors_dir.clone(),
        }
    } else if !config.connectors_dirs.is_empty() {
        ConnectorLocator {
            dirs: config.connectors_dirs.clone(),
        }
    } else {
        ConnectorLocator::for_repository(&config.root)
    }
}

fn fail(e: &dyn std::error::Error) -> ExitCode {
    eprintln!("error: {}", error_chain(e));
    ExitCode::FAILURE
}

fn plan_options(
    args: &PlanArgs,
    config: &Config,
    network: &NetworkSettings,
    installer: InstallerChoice,
) -> PlanOptions {
    let mut mirrors = config.mirrors.clone();
    mirrors.extend(args.mirror.iter().cloned());
    PlanOptions {
        tag: args.tag.clone(),
        allow_unpinned: args.allow_unpinned,
        mirrors: mirrors.into_iter().collect::<BTreeMap<_, _>>(),
        network_fingerprint: network.fingerprint(),
        main_file: None,
        installer,
    }
}

fn network_settings(args: &PlanArgs, config: &Config) -> Result<NetworkSettings, ExitCode> {
    let ca = args
        .ca_bundle
        .clone()
        .or_else(|| config.ca_bundle.clone())
        .or_else(|| {
            std::env::var_os("SSL_CERT_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
    NetworkSettings::from_env(ca.as_deref()).map_err(|e| fail(&e))
}

async fn run(cli: Cli) -> ExitCode {
    let config = match Config::discover(&std::env::current_dir().unwrap_or_default()) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let locator = locator(&cli.global, &config);
    match cli.command {
        Command::Plan { connectors, plan } => {
            let network = match network_settings(&plan, &config) {
                Ok(n) => n,
                Err(code) => return code,
            };
            let (installer, _) = match installer(&plan) {
                Ok(i) => i,
                Err(code) => return code,
            };
            let options = plan_options(&plan, &config, &network, installer);
            let hooks = hook_options(&plan);
            let mut plans = Vec::with_capacity(connectors.len());
            for connector in &connectors {
                match commands::plan_one(&locator, connector, &options, &hooks, None).await {
                    Ok((_, plan)) => {
                        plans.push(serde_json::json!({ "plan": plan, "keys": plan.keys() }))
                    }
                    Err(e) => return fail(&e),
                }
            }
            let out = if plans.len() == 1 {
                plans.swap_remove(0)
            } else {
                serde_json::Value::Array(plans)
            };
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Command::UpgradeBaseImage {
            connectors,
            to,
            set_if_not_exists,
            dry_run,
        } => match commands::upgrade_base_image(
            &locator,
            &connectors,
            &to,
            set_if_not_exists,
            dry_run,
        ) {
            Ok(results) => {
                for r in &results {
                    let what = match (&r.old, r.changed) {
                        (_, false) => "already up to date".to_string(),
                        (Some(old), true) => format!("{old} -> {}", r.new),
                        (None, true) => format!("set to {}", r.new),
                    };
                    let verb = if dry_run && r.changed {
                        " (dry run)"
                    } else {
                        ""
                    };
                    eprintln!("{}: {what}{verb}", r.connector);
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Build(args) => build(&cli.global, &config, &locator, args).await,
        Command::MigrateToBaseImage(args) => {
            cli::migrate::migrate_to_base_image(&cli.global, &config, &locator, args).await
        }
        Command::BumpVersion(args) => cli::migrate::bump_version(&locator, args),
        Command::AnalyzeDockerfiles(args) => {
            cli::migrate::analyze_dockerfiles(&cli.global, &config, &locator, args).await
        }
    }
}

async fn build(
    global: &Global,
    config: &Config,
    locator: &ConnectorLocator,
    args: BuildArgs,
) -> ExitCode {
    let network = match network_settings(&args.plan, config) {
        Ok(n) => n,
        Err(code) => return code,
    };
    let (installer, tools) = match installer(&args.plan) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let engine = match Engine::connect(global.engine.as_deref().or(config.engine.as_deref())).await
    {
        Ok(e) => e,
        Err(e) => return fail(&e),
    };
    let style = Style {
        color: use_color(),
        verbose: global.verbose > 0,
    };
    let reporter: Box<dyn Reporter> = if args.json && global.verbose == 0 {
        Box::new(Silent)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bars::new(style))
    } else {
        Box::new(Lines { style })
    };
    let request = BuildRequest {
        locator,
        names: &args.connectors,
        plan: plan_options(&args.plan, config, &network, installer),
        hooks: hook_options(&args.plan),
        concurrency: args.concurrency,
    };
    let work = commands::build_all(&engine, &network, &tools, reporter.as_ref(), request);
    let results = tokio::select! {
        results = work => results,
        _ = shutdown_signal() => {
            let removed = engine.remove_all_containers().await;
            eprintln!("interrupted: removed {removed} build container(s); nothing was tagged from an unfinished build");
            return ExitCode::from(130);
        }
    };

    let style = Style {
        color: use_color(),
        verbose: false,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&results).unwrap_or_default()
        );
    }
    for r in &results {
        match &r.outcome {
            Outcome::Built(o) => {
                let cached: Vec<&str> = o
                    .steps
                    .iter()
                    .filter(|s| s.cached)
                    .map(|s| s.name.as_str())
                    .collect();
                eprintln!(
                    "{} {} -> {}  {}  {:.1} MB  {:.1}s{}",
                    style.ok("built"),
                    o.connector,
                    o.tag,
                    short_id(&o.image_id),
                    o.size as f64 / 1e6,
                    o.seconds,
                    if o.containers_started == 0 {
                        " (everything from cache, no container started)".to_string()
                    } else if cached.is_empty() {
                        String::new()
                    } else {
                        format!(" (from cache: {})", cached.join(", "))
                    }
                );
            }
            Outcome::Failed { error, .. } => {
                eprintln!("{} {}: {error}", style.bad("failed"), r.connector);
            }
        }
    }
    if results.iter().all(|r| r.ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
