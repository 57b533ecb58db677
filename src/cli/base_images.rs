//! `connector-build base-images ...` and `upgrade-base-image` without `--to`: arguments and
//! printing around `connector_build::base_images`.
//!
//! Results (addresses, reports, tables) go to stdout; progress and errors to stderr.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use connector_build::base_images::declare::{
    DeclarationError, Declarations, Family, FamilyVersion, RootSource,
};
use connector_build::base_images::docs::{self, PublishedState};
use connector_build::base_images::root::RootBuild;
use connector_build::base_images::state::State;
use connector_build::base_images::upgrade::upgrade_to_latest;
use connector_build::base_images::{BaseImages, DEFAULT_REGISTRY};
use connector_build::build::network::NetworkSettings;
use connector_build::commands::error_chain;
use connector_build::config::Config;
use connector_build::engine::Engine;
use connector_build::model::ConnectorLocator;
use connector_build::report::{Reporter, Silent};

use super::progress::{Bars, Lines, Style};

#[derive(Args)]
pub struct BaseImagesArgs {
    /// A folder of declarations (roots.toml and one <family>.toml per family) instead of the
    /// built-in ones. Default: `base_images` in connector-build.toml.
    #[arg(long, global = true, value_name = "DIR")]
    declarations: Option<PathBuf>,
    /// Registry (host[:port]) to publish to and read published state from. Default:
    /// `registry` in connector-build.toml, else 127.0.0.1:5000.
    #[arg(long, global = true, value_name = "REGISTRY")]
    registry: Option<String>,
    #[command(subcommand)]
    command: BaseImagesCommand,
}

#[derive(Args)]
struct NetArgs {
    /// CA bundle given to the download steps. Default: $SSL_CERT_FILE when set.
    #[arg(long, value_name = "FILE")]
    ca_bundle: Option<PathBuf>,
    /// Pull a registry's root images from a mirror, e.g. docker.io=127.0.0.1:5000 (repeatable).
    #[arg(long, value_name = "REGISTRY=MIRROR", value_parser = crate::parse_mirror)]
    mirror: Vec<(String, String)>,
}

#[derive(Subcommand)]
enum BaseImagesCommand {
    /// Build a version (default: the newest) on its root image; tags it `<repository>:<version>`.
    Build {
        family: String,
        version: Option<String>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Check a built version against its declaration and print a report; fails if any check does.
    Check {
        family: String,
        version: Option<String>,
        /// Check this image instead of the version's local tag.
        #[arg(long, value_name = "REFERENCE")]
        image: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build, check and push a version (default: the newest); prints its digest-pinned address.
    Publish {
        family: String,
        version: Option<String>,
        /// Overwrite the tag when the registry has another image under it.
        #[arg(long)]
        force: bool,
        /// First publish every older declared version the registry lacks, oldest first.
        #[arg(long)]
        with_older: bool,
        #[command(flatten)]
        net: NetArgs,
    },
    /// List declared versions with their published state, read from the registry.
    List {
        /// One family; default: all.
        family: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Regenerate the documentation: changelog JSON, versions table and Dockerfiles.
    Docs {
        /// Compare with the files instead of writing them; fails when they differ.
        #[arg(long)]
        check: bool,
        /// Write here instead of `<declarations>/generated` (base-images/generated).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Fill the Published columns from the registry (machine-specific; use with --out).
        #[arg(long)]
        from_registry: bool,
    },
    /// Root images the families build on.
    Root {
        #[command(subcommand)]
        command: RootCommand,
    },
}

#[derive(Subcommand)]
enum RootCommand {
    /// Build debootstrap roots from Debian packages (unless the registry already has the
    /// current recipe's image), push them and record their digests; prints their addresses.
    Build {
        /// Root names; default: every debootstrap root a declared version uses.
        names: Vec<String>,
    },
}

pub struct Context<'a> {
    pub config: &'a Config,
    pub engine: Option<&'a str>,
    pub verbose: u8,
    pub color: bool,
}

fn fail(e: &dyn std::error::Error) -> ExitCode {
    eprintln!("error: {}", error_chain(e));
    ExitCode::FAILURE
}

fn reporter(ctx: &Context<'_>, quiet: bool) -> Box<dyn Reporter> {
    let style = Style {
        color: ctx.color,
        verbose: ctx.verbose > 0,
    };
    if quiet && ctx.verbose == 0 {
        Box::new(Silent)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bars::new(style))
    } else {
        Box::new(Lines::new(style))
    }
}

pub(crate) fn registry_of(flag: Option<&str>, config: &Config) -> String {
    flag.map(str::to_string)
        .or_else(|| config.registry.clone())
        .unwrap_or_else(|| DEFAULT_REGISTRY.to_string())
}

pub(crate) fn declarations_dir(flag: Option<&Path>, config: &Config) -> Option<PathBuf> {
    flag.map(Path::to_path_buf)
        .or_else(|| config.base_images.clone())
}

pub async fn run(args: BaseImagesArgs, ctx: Context<'_>) -> ExitCode {
    let config = ctx.config;
    let dir = declarations_dir(args.declarations.as_deref(), config);
    let declarations = match Declarations::from(dir.as_deref()) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    // Docs from the declarations alone need no engine.
    if let BaseImagesCommand::Docs {
        check,
        out,
        from_registry: false,
    } = &args.command
    {
        let out = match docs_dir(out.as_deref(), dir.as_deref()) {
            Ok(o) => o,
            Err(code) => return code,
        };
        return write_docs(&out, &docs::render_checked_in(&declarations), *check);
    }
    let net = match &args.command {
        BaseImagesCommand::Build { net, .. } | BaseImagesCommand::Publish { net, .. } => Some(net),
        _ => None,
    };
    let network = match crate::network_from(net.and_then(|n| n.ca_bundle.clone()), config) {
        Ok(n) => n,
        Err(code) => return code,
    };
    let mut mirrors: BTreeMap<String, String> = config.mirrors.clone();
    mirrors.extend(net.iter().flat_map(|n| n.mirror.iter().cloned()));
    let engine = match Engine::connect(ctx.engine.or(config.engine.as_deref())).await {
        Ok(e) => e,
        Err(e) => return fail(&e),
    };
    let state = State::locate(config.state_dir.as_deref());
    let registry = registry_of(args.registry.as_deref(), config);
    let quiet = matches!(
        args.command,
        BaseImagesCommand::List { .. }
            | BaseImagesCommand::Check { .. }
            | BaseImagesCommand::Docs { .. }
    );
    let reporter = reporter(&ctx, quiet);
    let images = BaseImages {
        engine: &engine,
        network: &network,
        reporter: reporter.as_ref(),
        declarations: &declarations,
        state: &state,
        registry: &registry,
        mirrors: &mirrors,
    };
    let work = command(&images, args.command, dir.as_deref());
    tokio::select! {
        code = work => code,
        _ = crate::shutdown_signal() => {
            let removed = engine.remove_all_containers().await;
            eprintln!("interrupted: removed {removed} container(s); nothing was tagged or recorded from an unfinished step");
            ExitCode::from(130)
        }
    }
}

fn family_version<'d>(
    declarations: &'d Declarations,
    family: &str,
    version: Option<&str>,
) -> Result<(&'d Family, &'d FamilyVersion), DeclarationError> {
    let family = declarations.family(family)?;
    Ok((family, family.version(version)?))
}

async fn command(
    images: &BaseImages<'_>,
    command: BaseImagesCommand,
    dir: Option<&Path>,
) -> ExitCode {
    let declarations = images.declarations;
    match command {
        BaseImagesCommand::Build {
            family, version, ..
        } => {
            let (family, v) = match family_version(declarations, &family, version.as_deref()) {
                Ok(x) => x,
                Err(e) => return fail(&e),
            };
            match images.build(family, v).await {
                Ok(o) => {
                    eprintln!(
                        "built {} {} -> {} ({:.1}s{})",
                        family.name,
                        v.version,
                        o.tag,
                        o.seconds,
                        if o.containers_started == 0 {
                            ", everything from cache"
                        } else {
                            ""
                        }
                    );
                    println!("{}", o.tag);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        BaseImagesCommand::Check {
            family,
            version,
            image,
            json,
        } => {
            let (family, v) = match family_version(declarations, &family, version.as_deref()) {
                Ok(x) => x,
                Err(e) => return fail(&e),
            };
            match images.check(family, v, image.as_deref()).await {
                Ok(report) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&report).unwrap_or_default()
                        );
                    } else {
                        print!("{}", report.render());
                    }
                    if report.passed() {
                        ExitCode::SUCCESS
                    } else {
                        eprintln!(
                            "error: {} {}: {} check(s) failed; the image does not hold what {} declares",
                            family.name,
                            v.version,
                            report.failed(),
                            family.path.display()
                        );
                        ExitCode::FAILURE
                    }
                }
                Err(e) => fail(&e),
            }
        }
        BaseImagesCommand::Publish {
            family,
            version,
            force,
            with_older,
            ..
        } => {
            let family = match declarations.family(&family) {
                Ok(f) => f,
                Err(e) => return fail(&e),
            };
            match images
                .publish(family, version.as_deref(), force, with_older)
                .await
            {
                Ok(done) => {
                    for p in &done {
                        eprintln!(
                            "{} {}: {}",
                            p.family,
                            p.version,
                            if p.pushed {
                                "published"
                            } else {
                                "already published (the registry has this very image)"
                            }
                        );
                        println!("{}", p.reference);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        BaseImagesCommand::List { family, json } => {
            let families: Vec<_> = match &family {
                Some(name) => match declarations.family(name) {
                    Ok(f) => vec![f],
                    Err(e) => return fail(&e),
                },
                None => declarations.families.iter().collect(),
            };
            let mut listed = Vec::new();
            for f in families {
                match images.list(f).await {
                    Ok(versions) => listed.push((f, versions)),
                    Err(e) => return fail(&e),
                }
            }
            if json {
                let value: Vec<_> = listed
                    .iter()
                    .map(|(f, versions)| {
                        serde_json::json!({
                            "family": f.name,
                            "repository": f.repository,
                            "registry": images.registry,
                            "versions": versions,
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
            } else {
                for (f, versions) in &listed {
                    println!("{} ({} in {})", f.name, f.repository, images.registry);
                    for v in versions {
                        println!(
                            "  {:<16} {:<13} {}",
                            if v.prerelease {
                                format!("{} (pre)", v.version)
                            } else {
                                v.version.clone()
                            },
                            if v.published {
                                "published"
                            } else {
                                "not published"
                            },
                            v.reference.as_deref().unwrap_or(&v.changelog)
                        );
                    }
                }
            }
            ExitCode::SUCCESS
        }
        BaseImagesCommand::Docs { check, out, .. } => {
            let mut files = Vec::new();
            for f in &declarations.families {
                let versions = match images.list(f).await {
                    Ok(v) => v,
                    Err(e) => return fail(&e),
                };
                files.extend(docs::render_family(
                    declarations,
                    f,
                    &PublishedState::Registry {
                        registry: images.registry,
                        versions: &versions,
                    },
                ));
            }
            match docs_dir(out.as_deref(), dir) {
                Ok(out) => write_docs(&out, &files, check),
                Err(code) => code,
            }
        }
        BaseImagesCommand::Root {
            command: RootCommand::Build { names },
        } => {
            let names = if names.is_empty() {
                let mut used: Vec<String> = declarations
                    .families
                    .iter()
                    .flat_map(|f| f.versions.iter().map(|v| v.decl.root.clone()))
                    .filter(|r| {
                        matches!(
                            declarations.root(r).map(|r| &r.source),
                            Some(RootSource::Debootstrap { .. })
                        )
                    })
                    .collect();
                used.sort();
                used.dedup();
                used
            } else {
                names
            };
            let build = RootBuild {
                engine: images.engine,
                reporter: images.reporter,
                state: images.state,
                registry: images.registry,
            };
            for name in names {
                let Some(root) = declarations.root(&name) else {
                    eprintln!(
                        "error: no root image `{name}` in {}; declared: {}",
                        declarations.dir.join("roots.toml").display(),
                        declarations
                            .roots
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    return ExitCode::FAILURE;
                };
                match build.ensure(root).await {
                    Ok(reference) => {
                        eprintln!(
                            "root {name}: {reference} (recorded in {})",
                            images.state.root_path(&name).display()
                        );
                        println!("{reference}");
                    }
                    Err(e) => return fail(&e),
                }
            }
            ExitCode::SUCCESS
        }
    }
}

/// `--out`, else `generated/` beside the declarations: the given folder's, or the
/// repository's `base-images/` for the built-in ones (so from the repository root).
fn docs_dir(out: Option<&Path>, declarations: Option<&Path>) -> Result<PathBuf, ExitCode> {
    if let Some(out) = out {
        return Ok(out.to_path_buf());
    }
    let source = declarations
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(docs::SOURCE_DIR));
    if !source.is_dir() {
        eprintln!(
            "error: no {} folder here: run from the connector-build repository, or pass --out DIR",
            source.display()
        );
        return Err(ExitCode::FAILURE);
    }
    Ok(source.join(docs::GENERATED_DIR))
}

fn write_docs(out: &Path, files: &[docs::DocFile], check: bool) -> ExitCode {
    if check {
        return match docs::stale(out, files) {
            Ok(stale) if stale.is_empty() => {
                eprintln!("{}: up to date", out.display());
                ExitCode::SUCCESS
            }
            Ok(stale) => {
                eprintln!(
                    "error: the generated documentation in {} does not match the declarations; run `connector-build base-images docs` and commit the result. Differing: {}",
                    out.display(),
                    stale
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                ExitCode::FAILURE
            }
            Err(e) => fail(&e),
        };
    }
    match docs::write(out, files) {
        Ok(()) => {
            eprintln!("wrote {} file(s) under {}", files.len(), out.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// `upgrade-base-image` without `--to`.
pub struct UpgradeLatest<'a> {
    pub locator: &'a ConnectorLocator,
    pub names: &'a [String],
    pub insert: bool,
    pub dry_run: bool,
    pub registry: Option<&'a str>,
    pub declarations: Option<&'a Path>,
}

pub async fn upgrade_latest(req: UpgradeLatest<'_>, ctx: Context<'_>) -> ExitCode {
    let config = ctx.config;
    let declarations =
        match Declarations::from(declarations_dir(req.declarations, config).as_deref()) {
            Ok(d) => d,
            Err(e) => return fail(&e),
        };
    let engine = match Engine::connect(ctx.engine.or(config.engine.as_deref())).await {
        Ok(e) => e,
        Err(e) => return fail(&e),
    };
    let state = State::locate(config.state_dir.as_deref());
    let registry = registry_of(req.registry, config);
    let network = NetworkSettings::default();
    let mirrors = BTreeMap::new();
    let images = BaseImages {
        engine: &engine,
        network: &network,
        reporter: &Silent,
        declarations: &declarations,
        state: &state,
        registry: &registry,
        mirrors: &mirrors,
    };
    match upgrade_to_latest(&images, req.locator, req.names, req.insert, req.dry_run).await {
        Ok((results, skipped)) => {
            crate::print_upgrades(&results, req.dry_run);
            for s in &skipped {
                eprintln!("{}: left alone: {}", s.connector, s.reason);
            }
            if connector_build::commands::UpgradeResult::all_done(&results) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => fail(&e),
    }
}
