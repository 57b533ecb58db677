//! The `connector-build` command: parses arguments, calls the library, prints.

mod cli;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use connector_build::build::network::NetworkSettings;
use connector_build::build::tools::{self, Tools};
use connector_build::bulk::report::{self as run_report, short_id, RunReport, Status};
use connector_build::bulk::{self, BulkRequest};
use connector_build::commands::{self, error_chain};
use connector_build::config::Config;
use connector_build::engine::Engine;
use connector_build::hooks::customize::HookOptions;
use connector_build::model::ConnectorLocator;
use connector_build::plan::python::InstallerChoice;
use connector_build::plan::PlanOptions;
use connector_build::report::{Reporter, Silent};
use connector_build::select::{self, Listing, Query, Selection, SelectionResult};

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
    /// Docker engine endpoint (unix://, tcp://, ssh://); repeat it to spread builds over
    /// several engines. Default: `engines`/`engine` in connector-build.toml, DOCKER_HOST, then
    /// the local socket.
    #[arg(long, global = true, value_name = "URL")]
    engine: Vec<String>,
    /// More output: install logs and debug logs (RUST_LOG also works).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Build connector images and tag them `<dockerRepository>:dev`.
    Build(BuildArgs),
    /// List connectors (all, or the selected ones) as a table or JSON.
    List {
        #[command(flatten)]
        selection: SelectionArgs,
        /// Print a JSON array (sorted by name) instead of a table.
        #[arg(long)]
        json: bool,
        /// Write to FILE instead of stdout (JSON when FILE ends in .json).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print build plans and cache keys as JSON, without an engine.
    Plan {
        /// Connector names or folders.
        #[arg(required = true)]
        connectors: Vec<String>,
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// Point connectors' `connectorBuildOptions.baseImage` at a digest-pinned image: the
    /// latest published release of their base image family, or `--to`.
    UpgradeBaseImage {
        /// Which connectors; default: every connector found.
        #[command(flatten)]
        selection: SelectionArgs,
        #[command(flatten)]
        target: BaseImageTarget,
        /// Add the key to connectors that have none.
        #[arg(long)]
        set_if_not_exists: bool,
        /// Show what would change, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Base image families: build, check, publish, list, document; root images.
    BaseImages(cli::base_images::BaseImagesArgs),
    /// Move connectors off their Dockerfiles when the image built from the base image
    /// behaves the same: Dockerfile removed, baseImage set, patch release, changelog row.
    MigrateToBaseImage(cli::migrate::MigrateArgs),
    /// Release a new version: dockerImageTag, pyproject.toml version, changelog row.
    BumpVersion(cli::migrate::BumpArgs),
    /// Report how the connectors' Dockerfiles and their images differ, and which
    /// connectors are migrated to a base image.
    AnalyzeDockerfiles(cli::migrate::AnalyzeArgs),
}

/// Which base image connectors move to.
#[derive(Args)]
struct BaseImageTarget {
    /// The digest-pinned image reference to set. Default: each connector's family's
    /// newest published release that is not a pre-release, read from the registry.
    #[arg(long, value_name = "REFERENCE")]
    to: Option<String>,
    /// Registry the families are published to (without --to). Default: `registry` in
    /// connector-build.toml, else 127.0.0.1:5000.
    #[arg(long, value_name = "REGISTRY", conflicts_with = "to")]
    registry: Option<String>,
    /// Base image declarations folder (without --to). Default: the built-in ones.
    #[arg(long, value_name = "DIR", conflicts_with = "to")]
    declarations: Option<PathBuf>,
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

/// Which connectors a command works on. Every criterion given narrows the set.
#[derive(Args, Clone, Default)]
struct SelectionArgs {
    /// Connector names or folders.
    connectors: Vec<String>,
    /// A connector name or folder (repeatable; same as a positional name).
    #[arg(long = "name", value_name = "NAME")]
    names: Vec<String>,
    /// Connectors with this `language:` tag (repeatable).
    #[arg(long, value_enum)]
    language: Vec<Language>,
    /// Connectors with this `supportLevel` (repeatable).
    #[arg(long, value_enum)]
    support_level: Vec<SupportLevel>,
    /// Connectors whose folder changed against --diff-base (committed, uncommitted or new).
    #[arg(long)]
    modified: bool,
    /// Base for --modified (implies it). Default: the merge base of HEAD with origin/master,
    /// origin/main, master or main, the first that exists.
    #[arg(long, value_name = "REF")]
    diff_base: Option<String>,
    /// A Python expression over `data` (the metadata's `data:` mapping), as airbyte-ci took,
    /// e.g. "data.connectorBuildOptions.baseImage is not None".
    #[arg(long, value_name = "EXPR")]
    metadata_query: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Language {
    Python,
    LowCode,
    ManifestOnly,
    Java,
}

#[derive(Clone, Copy, ValueEnum)]
enum SupportLevel {
    Certified,
    Community,
    Archived,
}

fn value_name(v: impl ValueEnum) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

impl SelectionArgs {
    fn to_selection(&self) -> Result<Selection, ExitCode> {
        let query = match &self.metadata_query {
            None => None,
            Some(q) => match Query::parse(q) {
                Ok(q) => Some(q),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Err(ExitCode::from(2));
                }
            },
        };
        Ok(Selection {
            names: self.connectors.iter().chain(&self.names).cloned().collect(),
            languages: self.language.iter().map(|l| value_name(*l)).collect(),
            support_levels: self.support_level.iter().map(|l| value_name(*l)).collect(),
            modified: (self.modified || self.diff_base.is_some()).then(|| self.diff_base.clone()),
            query,
        })
    }
}

#[derive(Args)]
struct BuildArgs {
    #[command(flatten)]
    selection: SelectionArgs,
    #[command(flatten)]
    plan: PlanArgs,
    /// How many connectors to build at once on each engine. Default: the number of cores.
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// Start no new build after the first failure.
    #[arg(long)]
    fail_fast: bool,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Where to write report.json, report.md and report.html. Default:
    /// <repository>/.connector-build/reports/<UTC timestamp>/.
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
}

pub(crate) fn parse_mirror(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
        _ => Err(format!(
            "`{s}`: expected REGISTRY=MIRROR, e.g. docker.io=127.0.0.1:5000"
        )),
    }
}

const SUBCOMMANDS: &[&str] = &[
    "build",
    "list",
    "plan",
    "upgrade-base-image",
    "base-images",
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

fn locator(
    global: &Global,
    config: &Config,
) -> Result<ConnectorLocator, connector_build::model::DiscoveryError> {
    if !global.connectors_dir.is_empty() {
        ConnectorLocator::given(global.connectors_dir.clone())
    } else if !config.connectors_dirs.is_empty() {
        ConnectorLocator::given(config.connectors_dirs.clone())
    } else {
        Ok(ConnectorLocator::for_repository(&config.root))
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
    network_from(args.ca_bundle.clone(), config)
}

/// Install-step settings from the environment, with the CA bundle from the flag, the config
/// file or $SSL_CERT_FILE.
pub(crate) fn network_from(
    ca_bundle: Option<PathBuf>,
    config: &Config,
) -> Result<NetworkSettings, ExitCode> {
    let ca = ca_bundle.or_else(|| config.ca_bundle.clone()).or_else(|| {
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
    let locator = match locator(&cli.global, &config) {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
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
            selection,
            target:
                BaseImageTarget {
                    to,
                    registry,
                    declarations,
                },
            set_if_not_exists,
            dry_run,
        } => {
            // No selection keeps the "every connector found" behaviour, which skips files that
            // do not parse; a selection names folders.
            let names = match selected(&locator, &selection, cli.global.verbose) {
                Err(code) => return code,
                Ok(None) => Vec::new(),
                Ok(Some(result)) if result.connectors.is_empty() => {
                    eprintln!("no connector matches the selection");
                    return ExitCode::SUCCESS;
                }
                Ok(Some(result)) => result
                    .connectors
                    .iter()
                    .map(|c| c.dir.to_string_lossy().into_owned())
                    .collect(),
            };
            match to {
                Some(to) => upgrade(&locator, &names, &to, set_if_not_exists, dry_run),
                None => {
                    let request = cli::base_images::UpgradeLatest {
                        locator: &locator,
                        names: &names,
                        insert: set_if_not_exists,
                        dry_run,
                        registry: registry.as_deref(),
                        declarations: declarations.as_deref(),
                    };
                    cli::base_images::upgrade_latest(
                        request,
                        base_images_context(&cli.global, &config),
                    )
                    .await
                }
            }
        }
        Command::List {
            selection,
            json,
            output,
        } => list(
            &locator,
            &selection,
            json,
            output.as_deref(),
            cli.global.verbose,
        ),
        Command::BaseImages(args) => {
            cli::base_images::run(args, base_images_context(&cli.global, &config)).await
        }
        Command::Build(args) => build(&cli.global, &config, &locator, args).await,
        Command::MigrateToBaseImage(args) => {
            cli::migrate::migrate_to_base_image(&cli.global, &config, &locator, args).await
        }
        Command::BumpVersion(args) => {
            cli::migrate::bump_version(&locator, cli.global.verbose, args)
        }
        Command::AnalyzeDockerfiles(args) => {
            cli::migrate::analyze_dockerfiles(&cli.global, &config, &locator, args).await
        }
    }
}

fn upgrade(
    locator: &ConnectorLocator,
    names: &[String],
    to: &str,
    set_if_not_exists: bool,
    dry_run: bool,
) -> ExitCode {
    match commands::upgrade_base_image(locator, names, to, set_if_not_exists, dry_run) {
        Ok(results) => {
            print_upgrades(&results, dry_run);
            if commands::UpgradeResult::all_done(&results) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => fail(&e),
    }
}

/// Applies a selection; `None` when none was given. Selection warnings go to stderr.
fn selected(
    locator: &ConnectorLocator,
    args: &SelectionArgs,
    verbose: u8,
) -> Result<Option<SelectionResult>, ExitCode> {
    let selection = args.to_selection()?;
    if selection.is_empty() {
        return Ok(None);
    }
    let result = select::select(locator, &selection).map_err(|e| fail(&e))?;
    print_warnings(&result.warnings, verbose);
    Ok(Some(result))
}

/// At most a screenful of warnings unless -v: a query can raise for hundreds of connectors.
fn print_warnings(warnings: &[String], verbose: u8) {
    const SHOWN: usize = 10;
    let style = Style {
        color: use_color(),
        verbose: false,
    };
    let limit = if verbose > 0 { usize::MAX } else { SHOWN };
    for w in warnings.iter().take(limit) {
        eprintln!("{} {w}", style.warn("warning:"));
    }
    if warnings.len() > limit {
        eprintln!(
            "{} ... and {} more (-v shows them all)",
            style.warn("warning:"),
            warnings.len() - limit
        );
    }
}

fn list(
    locator: &ConnectorLocator,
    args: &SelectionArgs,
    json: bool,
    output: Option<&std::path::Path>,
    verbose: u8,
) -> ExitCode {
    let result = match selected(locator, args, verbose) {
        Err(code) => return code,
        Ok(Some(r)) => r,
        Ok(None) => match select::select(locator, &Selection::default()) {
            Ok(r) => r,
            Err(e) => return fail(&e),
        },
    };
    let mut rows: Vec<Listing> = result.connectors.iter().map(Listing::of).collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    for r in &rows {
        if let Some(e) = &r.error {
            eprintln!(
                "{} {}: {e}",
                Style {
                    color: use_color(),
                    verbose: false
                }
                .warn("warning:"),
                r.name
            );
        }
    }
    let as_json = json || output.is_some_and(|p| p.extension().is_some_and(|e| e == "json"));
    let text = if as_json {
        serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n"
    } else {
        select::render_table(&rows, &std::env::current_dir().unwrap_or_default())
    };
    match output {
        None => print!("{text}"),
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            eprintln!("{} connector(s) written to {}", rows.len(), path.display());
        }
    }
    ExitCode::SUCCESS
}

/// The engines to build on: flags, then the config file, then DOCKER_HOST or the default.
fn engine_hosts(global: &Global, config: &Config) -> Vec<Option<String>> {
    let mut hosts: Vec<String> = if !global.engine.is_empty() {
        global.engine.clone()
    } else if !config.engines.is_empty() {
        config.engines.clone()
    } else {
        config.engine.iter().cloned().collect()
    };
    let mut seen = std::collections::BTreeSet::new();
    hosts.retain(|h| seen.insert(h.clone()));
    if hosts.is_empty() {
        vec![None]
    } else {
        hosts.into_iter().map(Some).collect()
    }
}

/// Connects to every engine; with several, one that does not answer is left out with a
/// warning, as long as one does.
async fn connect_engines(hosts: &[Option<String>]) -> Result<Vec<Engine>, ExitCode> {
    let attempts =
        futures_util::future::join_all(hosts.iter().map(|h| Engine::connect(h.as_deref()))).await;
    let mut engines = Vec::new();
    let mut errors = Vec::new();
    for attempt in attempts {
        match attempt {
            Ok(e) => engines.push(e),
            Err(e) => errors.push(e),
        }
    }
    if engines.is_empty() {
        return Err(match errors.first() {
            Some(e) => fail(e),
            None => ExitCode::FAILURE,
        });
    }
    let style = Style {
        color: use_color(),
        verbose: false,
    };
    for e in &errors {
        eprintln!(
            "{} left out of this run: {}",
            style.warn("warning:"),
            error_chain(e)
        );
    }
    Ok(engines)
}

/// `<root>/.connector-build/reports/<UTC timestamp>/`, made unique if a run in the same
/// second already wrote there.
fn default_report_dir(config: &Config, started: f64) -> PathBuf {
    let base = config
        .root
        .join(".connector-build")
        .join("reports")
        .join(run_report::timestamp(started));
    let mut dir = base.clone();
    let mut n = 2;
    while dir.exists() {
        dir = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    dir
}

fn base_images_context<'a>(
    global: &'a Global,
    config: &'a Config,
) -> cli::base_images::Context<'a> {
    cli::base_images::Context {
        config,
        // Base images are built on one engine: the first given.
        engine: global.engine.first().map(String::as_str),
        verbose: global.verbose,
        color: use_color(),
    }
}

/// One line per connector on stderr: what `upgrade-base-image` changed.
pub(crate) fn print_upgrades(results: &[commands::UpgradeResult], dry_run: bool) {
    for r in results {
        if let Some(reason) = &r.left_alone {
            eprintln!("{}: left alone: {reason}", r.connector);
            continue;
        }
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
}

async fn build(
    global: &Global,
    config: &Config,
    locator: &ConnectorLocator,
    args: BuildArgs,
) -> ExitCode {
    let selection = match selected(locator, &args.selection, global.verbose) {
        Err(code) => return code,
        Ok(Some(s)) => s,
        Ok(None) => {
            eprintln!(
                "error: nothing to build: name connectors (`build source-foo`, --name), or select them with --language, --support-level, --modified or --metadata-query"
            );
            return ExitCode::from(2);
        }
    };
    if selection.connectors.is_empty() {
        eprintln!("no connector matches the selection; nothing to build");
        return ExitCode::SUCCESS;
    }
    if let Some(dir) = &args.report_dir {
        if let Err(e) = run_report::prepare_dir(dir) {
            return fail(&e);
        }
    }
    let network = match network_settings(&args.plan, config) {
        Ok(n) => n,
        Err(code) => return code,
    };
    let (installer, tools) = match installer(&args.plan) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let engines = match connect_engines(&engine_hosts(global, config)).await {
        Ok(e) => e,
        Err(code) => return code,
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
        Box::new(Lines::new(style))
    };
    let concurrency = args.concurrency.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let request = BulkRequest {
        locator,
        connectors: selection
            .connectors
            .iter()
            .map(|c| c.dir.to_string_lossy().into_owned())
            .collect(),
        plan: plan_options(&args.plan, config, &network, installer),
        hooks: hook_options(&args.plan),
        concurrency,
        fail_fast: args.fail_fast,
        warnings: selection.warnings.clone(),
    };
    let stop = futures_util::stream::unfold(0, |n| async move {
        let signal = shutdown_signal().await;
        if n == 0 {
            eprintln!("\n{signal}: stopping the builds and removing their containers (again to stop removing them)");
        } else {
            eprintln!("{signal}: leaving the remaining containers; writing the report");
        }
        Some((signal.to_string(), n + 1))
    });
    let report = bulk::run(&engines, &network, &tools, reporter.as_ref(), request, stop).await;
    drop(reporter);

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.connectors).unwrap_or_default()
        );
    }
    print_summary(&report);
    let dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| default_report_dir(config, report.started_at));
    let step_summary = std::env::var_os("GITHUB_STEP_SUMMARY")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let written = match report.write(&dir, step_summary.as_deref()) {
        Ok(_) => {
            eprintln!("report: {}", dir.join("report.html").display());
            true
        }
        Err(e) => {
            fail(&e);
            false
        }
    };
    if let Some(i) = &report.interrupted {
        eprintln!(
            "interrupted: removed {} build container(s); nothing was tagged from an unfinished build",
            i.containers_removed
        );
        return ExitCode::from(signal_exit_code(&i.signal));
    }
    if report.ok() && written {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_summary(report: &RunReport) {
    let style = Style {
        color: use_color(),
        verbose: false,
    };
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
                eprintln!(
                    "{} {} -> {}  {}  {:.1} MB  {:.1}s{note}{on}",
                    style.ok("built"),
                    c.connector,
                    c.tag.as_deref().unwrap_or_default(),
                    short_id(c.image_id.as_deref().unwrap_or_default()),
                    c.size.unwrap_or_default() as f64 / 1e6,
                    c.seconds,
                );
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
        eprintln!(
            "{} in {}",
            report.headline(),
            run_report::duration(report.seconds())
        );
    }
}

/// Waits for Ctrl-C or SIGTERM; gives the signal's name.
pub(crate) async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// The shell's convention, 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM.
fn signal_exit_code(signal: &str) -> u8 {
    if signal == "SIGTERM" {
        143
    } else {
        130
    }
}
