//! The command line's arguments resolved once into settings (the repository's config, where
//! connectors are found, engines, install settings), and the small helpers every command
//! shares: warnings, reporters, engine connections, selections.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use connector_build::ci::github::Github;
use connector_build::ci::shard;
use connector_build::config::Config;
use connector_build::engine::Engine;
use connector_build::error::error_chain;
use connector_build::execute::network::NetworkSettings;
use connector_build::execute::remote::{CacheMode, RemoteCache};
use connector_build::execute::secrets::{self, SecretError};
use connector_build::execute::tools::{self, Tools};
use connector_build::hooks::customize::HookOptions;
use connector_build::model::ConnectorLocator;
use connector_build::plan::python::InstallerChoice;
use connector_build::plan::PlanOptions;
use connector_build::progress::{Reporter, Silent};
use connector_build::report::RunReport;
use connector_build::select::{self, Modified, Query, Selection, SelectionResult};

use super::args::{
    CacheArgs, CacheModeArg, Global, InstallerArg, PlanArgs, ProgressArg, SelectionArgs,
};
use super::exit::{fail, fail_as, failed, usage, Exit};
use super::progress::{Bars, Grouped, Lines, Style};

/// What every command starts from.
pub struct Context {
    pub config: Config,
    pub locator: ConnectorLocator,
    pub verbose: u8,
    /// Colours on stderr: a terminal, and NO_COLOR unset.
    pub color: bool,
    /// Engines to build on: flags, then the config file, then DOCKER_HOST or the default.
    pub engines: Vec<Option<String>>,
    pub progress: ProgressArg,
    /// Set when running in GitHub Actions (`GITHUB_ACTIONS=true`).
    pub github: Option<Github>,
}

impl Context {
    pub fn resolve(global: &Global) -> Result<Context, Exit> {
        let config =
            Config::discover(&std::env::current_dir().unwrap_or_default()).map_err(|e| fail(&e))?;
        let locator = if !global.connectors_dir.is_empty() {
            ConnectorLocator::given(global.connectors_dir.clone())
        } else if !config.connectors_dirs.is_empty() {
            ConnectorLocator::given(config.connectors_dirs.clone())
        } else {
            Ok(ConnectorLocator::for_repository(&config.root))
        }
        .map_err(|e| fail(&e))?;
        let engines = engine_hosts(&global.engine, &config);
        Ok(Context {
            locator,
            verbose: global.verbose,
            color: use_color(),
            engines,
            config,
            progress: global.progress,
            github: Github::from_lookup(|k| std::env::var(k).ok()),
        })
    }

    /// The style of one-off lines (warnings, results): colours only, never verbose.
    pub fn style(&self) -> Style {
        Style {
            color: self.color,
            verbose: false,
        }
    }

    pub fn warn(&self, message: impl std::fmt::Display) {
        eprintln!("{} {message}", self.style().warn("warning:"));
    }

    /// Progress for a long command, as `--progress` says; for `auto`: bars on a terminal,
    /// plain lines otherwise, nothing when `quiet` (the command prints its own result)
    /// unless -v. Plain lines are grouped per connector under GitHub Actions.
    pub fn reporter(&self, quiet: bool) -> Box<dyn Reporter> {
        let style = Style {
            color: self.color,
            verbose: self.verbose > 0,
        };
        let mode = match self.progress {
            ProgressArg::Auto if quiet && self.verbose == 0 => ProgressArg::Quiet,
            ProgressArg::Auto if self.github.is_none() && std::io::stderr().is_terminal() => {
                ProgressArg::Tty
            }
            ProgressArg::Auto => ProgressArg::Plain,
            explicit => explicit,
        };
        match mode {
            ProgressArg::Quiet => Box::new(Silent),
            ProgressArg::Tty => Box::new(Bars::new(style)),
            _ if self.github.is_some() => Box::new(Grouped::new(Lines::new(style))),
            _ => Box::new(Lines::new(style)),
        }
    }

    /// Connects to every engine; with several, one that does not answer is left out with a
    /// warning, as long as one does.
    pub async fn connect_engines(&self) -> Result<Vec<Engine>, Exit> {
        let attempts = futures_util::future::join_all(
            self.engines.iter().map(|h| Engine::connect(h.as_deref())),
        )
        .await;
        let mut engines = Vec::new();
        let mut errors = Vec::new();
        for attempt in attempts {
            match attempt {
                Ok(e) => engines.push(e),
                Err(e) => errors.push(e),
            }
        }
        if engines.is_empty() {
            return Err(errors
                .first()
                .map_or(Exit::Failed, |e| fail_as(e, e.class())));
        }
        for e in &errors {
            self.warn(format_args!("left out of this run: {}", error_chain(e)));
        }
        Ok(engines)
    }

    /// The one engine of commands that build on one (base images, migrations): the first.
    pub async fn connect_engine(&self) -> Result<Engine, Exit> {
        let host = self.engines.first().cloned().flatten();
        Engine::connect(host.as_deref())
            .await
            .map_err(|e| fail_as(&e, e.class()))
    }

    /// Applies a selection; `None` when none was given. Selection warnings go to stderr.
    pub fn selected(&self, args: &SelectionArgs) -> Result<Option<SelectionResult>, Exit> {
        let selection = selection_of(args)?;
        if selection.is_empty() {
            return Ok(None);
        }
        let result = select::select(&self.locator, &selection).map_err(|e| fail(&e))?;
        self.print_warnings(&result.warnings);
        self.sharded(args, result).map(Some)
    }

    /// GitHub's `$GITHUB_STEP_SUMMARY`, which the run's Markdown is appended to.
    pub fn step_summary(&self) -> Option<PathBuf> {
        std::env::var_os("GITHUB_STEP_SUMMARY")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }

    /// The share `--shard` keeps of `result` (all of it without the flag).
    pub fn sharded(
        &self,
        args: &SelectionArgs,
        mut result: SelectionResult,
    ) -> Result<SelectionResult, Exit> {
        let Some(shard) = args.shard else {
            return Ok(result);
        };
        let durations = match &args.balance_from {
            Some(path) => RunReport::read(path).map_err(|e| fail(&e))?.durations(),
            None => Default::default(),
        };
        result.connectors = shard::select(result.connectors, |c| &c.name, shard, &durations);
        Ok(result)
    }

    /// The selected connectors' folders, or every connector's that `keep` accepts when nothing
    /// is selected. `Ok(None)`: a selection matched nothing (said on stderr).
    pub fn selected_dirs(
        &self,
        args: &SelectionArgs,
        keep: impl Fn(&Path) -> bool,
    ) -> Result<Option<Vec<PathBuf>>, Exit> {
        match self.selected(args)? {
            None => Ok(Some(
                self.locator.all().into_iter().filter(|d| keep(d)).collect(),
            )),
            Some(result) if result.connectors.is_empty() => {
                eprintln!("no connector matches the selection");
                Ok(None)
            }
            Some(result) => Ok(Some(result.connectors.into_iter().map(|c| c.dir).collect())),
        }
    }

    /// At most a screenful of warnings unless -v: a query can raise for hundreds of connectors.
    pub fn print_warnings(&self, warnings: &[String]) {
        const SHOWN: usize = 10;
        let limit = if self.verbose > 0 { usize::MAX } else { SHOWN };
        for w in warnings.iter().take(limit) {
            self.warn(w);
        }
        if warnings.len() > limit {
            self.warn(format_args!(
                "... and {} more (-v shows them all)",
                warnings.len() - limit
            ));
        }
    }

    /// Install-step settings from the environment, with the CA bundle from the flag, the
    /// config file or $SSL_CERT_FILE.
    pub fn network(&self, ca_bundle: Option<PathBuf>) -> Result<NetworkSettings, Exit> {
        let ca = ca_bundle
            .or_else(|| self.config.ca_bundle.clone())
            .or_else(|| {
                std::env::var_os("SSL_CERT_FILE")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            });
        NetworkSettings::from_env(ca.as_deref()).map_err(|e| fail(&e))
    }

    /// Everything a plan and its build need from the plan flags and the config file.
    pub fn planning(&self, args: &PlanArgs) -> Result<Planning, Exit> {
        let secrets =
            secrets::parse_all(&args.secret, |k| std::env::var(k).ok()).map_err(|e| match e {
                SecretError::Syntax { .. } | SecretError::Twice { .. } => usage(e),
                _ => fail(&e),
            })?;
        let network = self.network(args.ca_bundle.clone())?.with_secrets(secrets);
        let (installer, tools) = installer(args)?;
        let mut mirrors = self.config.mirrors.clone();
        mirrors.extend(args.mirror.iter().cloned());
        let options = PlanOptions {
            tag: args.tag.clone(),
            allow_unpinned: args.allow_unpinned,
            mirrors: mirrors.into_iter().collect::<BTreeMap<_, _>>(),
            network_fingerprint: network.fingerprint(),
            main_file: None,
            installer,
        };
        let hooks = HookOptions {
            enabled: !args.no_hooks,
            timeout: std::time::Duration::from_secs(args.hook_timeout.max(1)),
            ..Default::default()
        };
        Ok(Planning {
            options,
            hooks,
            network,
            tools,
        })
    }
}

impl Context {
    /// The registry cache from `--cache-registry` or `cache_registry` in the config file.
    pub fn remote_cache(&self, args: &CacheArgs) -> Result<Option<RemoteCache>, Exit> {
        let Some(repo) = args
            .cache_registry
            .as_deref()
            .or(self.config.cache_registry.as_deref())
        else {
            if args.cache_mode.is_some() {
                return Err(usage("--cache-mode needs a cache registry (--cache-registry REPO, or cache_registry in connector-build.toml)"));
            }
            return Ok(None);
        };
        let mode = match args.cache_mode {
            Some(CacheModeArg::Read) => CacheMode::Read,
            Some(CacheModeArg::Readwrite) | None => CacheMode::ReadWrite,
        };
        RemoteCache::new(repo, mode)
            .map(Some)
            .map_err(|e| usage(error_chain(&e)))
    }
}

/// Plan options, hook options, install settings and host tools, resolved from the flags.
pub struct Planning {
    pub options: PlanOptions,
    pub hooks: HookOptions,
    pub network: NetworkSettings,
    pub tools: Tools,
}

fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

fn engine_hosts(flags: &[String], config: &Config) -> Vec<Option<String>> {
    let mut hosts: Vec<String> = if !flags.is_empty() {
        flags.to_vec()
    } else if !config.engines.is_empty() {
        config.engines.clone()
    } else {
        config.engine.iter().cloned().collect()
    };
    let mut seen = BTreeSet::new();
    hosts.retain(|h| seen.insert(h.clone()));
    if hosts.is_empty() {
        vec![None]
    } else {
        hosts.into_iter().map(Some).collect()
    }
}

/// The installer and the host programs it needs.
fn installer(args: &PlanArgs) -> Result<(InstallerChoice, Tools), Exit> {
    if args.installer == Some(InstallerArg::Pip) {
        return Ok((InstallerChoice::Pip, Tools::none()));
    }
    match tools::find_uv(args.uv.as_deref()) {
        Some(path) => {
            let tools = Tools::none().with("uv", &path).map_err(|e| fail(&e))?;
            let identity = tools
                .get("uv")
                .map(|t| t.identity.clone())
                .unwrap_or_default();
            Ok((InstallerChoice::Uv { identity }, tools))
        }
        None if args.installer == Some(InstallerArg::Uv) => Err(failed(format_args!(
            "--installer uv: no uv program found (--uv, $CONNECTOR_BUILD_UV, {}, PATH)\nhint: run the set-up command or `pip install uv`",
            tools::DEFAULT_UV
        ))),
        None => Ok((InstallerChoice::Pip, Tools::none())),
    }
}

fn value_name(v: impl ValueEnum) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

fn selection_of(args: &SelectionArgs) -> Result<Selection, Exit> {
    let query = match &args.metadata_query {
        None => None,
        Some(q) => Some(Query::parse(q).map_err(usage)?),
    };
    let modified = match (&args.diff_base, args.modified) {
        (Some(base), _) => Modified::Since(base.clone()),
        (None, true) => Modified::SinceDefaultBase,
        (None, false) => Modified::No,
    };
    Ok(Selection {
        names: args.connectors.iter().chain(&args.names).cloned().collect(),
        languages: args.language.iter().map(|l| value_name(*l)).collect(),
        support_levels: args.support_level.iter().map(|l| value_name(*l)).collect(),
        modified,
        query,
    })
}
