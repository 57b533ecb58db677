//! `connector-build base-images ...`: arguments to `connector_build::base_images`, results
//! printed.
//!
//! Results (addresses, reports, tables) go to stdout; progress and errors to stderr.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use connector_build::base_images::docs::{self, PublishedState};
use connector_build::base_images::root::{self, RootBuild};
use connector_build::base_images::state::State;
use connector_build::base_images::{BaseImages, DEFAULT_REGISTRY};
use connector_build::config::Config;
use connector_build::model::families::{
    DeclarationError, Declarations, Family, FamilyVersion, RootSource,
};
use connector_build::platform::Platform;

use super::args::{BaseImagesArgs, BaseImagesCommand, RootCommand};
use super::context::Context;
use super::exit::{fail, failed, shutdown_signal, Exit, Outcome};

pub fn registry_of(flag: Option<&str>, config: &Config) -> String {
    flag.map(str::to_string)
        .or_else(|| config.registry.clone())
        .unwrap_or_else(|| DEFAULT_REGISTRY.to_string())
}

pub fn declarations_dir(flag: Option<&Path>, config: &Config) -> Option<PathBuf> {
    flag.map(Path::to_path_buf)
        .or_else(|| config.base_images.clone())
}

pub async fn run(ctx: &Context, args: BaseImagesArgs) -> Outcome {
    let config = &ctx.config;
    let dir = declarations_dir(args.declarations.as_deref(), config);
    let declarations = Declarations::from(dir.as_deref()).map_err(|e| fail(&e))?;
    // Docs from the declarations alone need no engine.
    if let BaseImagesCommand::Docs {
        check,
        out,
        from_registry: false,
    } = &args.command
    {
        let out = docs_dir(out.as_deref(), dir.as_deref())?;
        return write_docs(&out, &docs::render_checked_in(&declarations), *check);
    }
    let net = match &args.command {
        BaseImagesCommand::Build { net, .. } | BaseImagesCommand::Publish { net, .. } => Some(net),
        _ => None,
    };
    let network = ctx.network(net.and_then(|n| n.ca_bundle.clone()))?;
    let mut mirrors: BTreeMap<String, String> = config.mirrors.clone();
    mirrors.extend(net.iter().flat_map(|n| n.mirror.iter().cloned()));
    let engine = ctx.connect_engine().await?;
    let state = State::locate(config.state_dir.as_deref());
    let registry = registry_of(args.registry.as_deref(), config);
    let quiet = matches!(
        args.command,
        BaseImagesCommand::List { .. }
            | BaseImagesCommand::Check { .. }
            | BaseImagesCommand::Docs { .. }
    );
    let reporter = ctx.reporter(quiet);
    let images = BaseImages {
        engine: &engine,
        network: &network,
        reporter: reporter.as_ref(),
        declarations: &declarations,
        state: &state,
        registry: &registry,
        mirrors: &mirrors,
        insecure: &config.insecure_registries,
        // The first for what reads one tag (list, docs); each in turn for the rest.
        platform: args
            .platform
            .first()
            .copied()
            .unwrap_or(Platform::LinuxAmd64),
    };
    let work = command(&images, &args.platform, args.command, dir.as_deref());
    tokio::select! {
        outcome = work => outcome,
        signal = shutdown_signal() => {
            let removed = engine.remove_all_containers().await;
            eprintln!("interrupted: removed {removed} container(s); nothing was tagged or recorded from an unfinished step");
            Err(Exit::Signal(signal))
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
    platforms: &[Platform],
    command: BaseImagesCommand,
    dir: Option<&Path>,
) -> Outcome {
    let declarations = images.declarations;
    match command {
        BaseImagesCommand::Build {
            family, version, ..
        } => {
            let (family, v) =
                family_version(declarations, &family, version.as_deref()).map_err(|e| fail(&e))?;
            for &p in platforms {
                let o = images.on(p).build(family, v).await.map_err(|e| fail(&e))?;
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
            }
            Ok(())
        }
        BaseImagesCommand::Check {
            family,
            version,
            image,
            json,
        } => {
            let (family, v) =
                family_version(declarations, &family, version.as_deref()).map_err(|e| fail(&e))?;
            let mut reports = Vec::new();
            for &p in platforms {
                let report = images
                    .on(p)
                    .check(family, v, image.as_deref())
                    .await
                    .map_err(|e| fail(&e))?;
                if !json {
                    print!("{}", report.render());
                }
                reports.push((p, report));
            }
            if json {
                // One document: the report, or for several platforms the list of them.
                let value = match reports.as_slice() {
                    [(_, one)] => serde_json::to_value(one),
                    all => serde_json::to_value(all.iter().map(|(_, r)| r).collect::<Vec<_>>()),
                };
                println!(
                    "{}",
                    value
                        .and_then(|v| serde_json::to_string_pretty(&v))
                        .unwrap_or_default()
                );
            }
            match reports.iter().find(|(_, r)| !r.passed()) {
                Some((p, report)) => Err(failed(format_args!(
                    "{} {} ({p}): {} check(s) failed; the image does not hold what {} declares",
                    family.name,
                    v.version,
                    report.failed(),
                    family.path.display()
                ))),
                None => Ok(()),
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
                Err(e) => return Err(fail(&e)),
            };
            let done = images
                .publish_platforms(family, version.as_deref(), force, with_older, platforms)
                .await
                .map_err(|e| fail(&e))?;
            for p in &done {
                let what = if p.platforms.is_empty() {
                    "image"
                } else {
                    "index"
                };
                let state = match (p.pushed, p.extended) {
                    (false, _) => format!("{what} already published (the registry has it)"),
                    (true, None) => format!("{what} published"),
                    (true, Some(was)) => format!(
                        "index published; the tag held the {was} image alone, which it still lists unchanged"
                    ),
                };
                let listed = p
                    .platforms
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                if listed.is_empty() {
                    eprintln!("{} {}: {state}", p.family, p.version);
                } else {
                    eprintln!("{} {}: {state} ({listed})", p.family, p.version);
                }
                println!("{}", p.reference);
            }
            Ok(())
        }
        BaseImagesCommand::List { family, json } => {
            let families: Vec<_> = match &family {
                Some(name) => match declarations.family(name) {
                    Ok(f) => vec![f],
                    Err(e) => return Err(fail(&e)),
                },
                None => declarations.families.iter().collect(),
            };
            let mut listed = Vec::new();
            for f in families {
                match images.list(f).await {
                    Ok(versions) => listed.push((f, versions)),
                    Err(e) => return Err(fail(&e)),
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
            Ok(())
        }
        BaseImagesCommand::Docs { check, out, .. } => {
            let mut files = Vec::new();
            for f in &declarations.families {
                let versions = match images.list(f).await {
                    Ok(v) => v,
                    Err(e) => return Err(fail(&e)),
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
            write_docs(&docs_dir(out.as_deref(), dir)?, &files, check)
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
            let build = |platform| RootBuild {
                engine: images.engine,
                reporter: images.reporter,
                state: images.state,
                registry: images.registry,
                insecure: images.insecure,
                platform,
            };
            for name in names {
                let Some(root) = declarations.root(&name) else {
                    return Err(failed(format_args!(
                        "no root image `{name}` in {}; declared: {}",
                        declarations.dir.join("roots.toml").display(),
                        declarations
                            .roots
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                };
                for &p in platforms {
                    let reference = build(p).ensure(root).await.map_err(|e| fail(&e))?;
                    eprintln!(
                        "root {name}: {reference} (recorded in {})",
                        images
                            .state
                            .root_path(&root::for_platform(&name, p))
                            .display()
                    );
                    println!("{reference}");
                }
                if platforms.len() > 1 {
                    let reference = build(platforms[0])
                        .index(root, platforms)
                        .await
                        .map_err(|e| fail(&e))?;
                    eprintln!("root {name}: index over {} at {reference}", platforms.len());
                    println!("{reference}");
                }
            }
            Ok(())
        }
    }
}

/// `--out`, else `generated/` beside the declarations: the given folder's, or the
/// repository's `base-images/` for the built-in ones (so from the repository root).
fn docs_dir(out: Option<&Path>, declarations: Option<&Path>) -> Result<PathBuf, Exit> {
    if let Some(out) = out {
        return Ok(out.to_path_buf());
    }
    let source = declarations
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(docs::SOURCE_DIR));
    if !source.is_dir() {
        return Err(failed(format_args!(
            "no {} folder here\nhint: run from the connector-build repository, or pass --out DIR",
            source.display()
        )));
    }
    Ok(source.join(docs::GENERATED_DIR))
}

fn write_docs(out: &Path, files: &[docs::DocFile], check: bool) -> Outcome {
    if check {
        return match docs::stale(out, files) {
            Ok(stale) if stale.is_empty() => {
                eprintln!("{}: up to date", out.display());
                Ok(())
            }
            Ok(stale) => {
                Err(failed(format_args!(
                    "the generated documentation in {} does not match the declarations. Differing: {}\nhint: run `connector-build base-images docs` and commit the result",
                    out.display(),
                    stale
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
            Err(e) => Err(fail(&e)),
        };
    }
    match docs::write(out, files) {
        Ok(()) => {
            eprintln!("wrote {} file(s) under {}", files.len(), out.display());
            Ok(())
        }
        Err(e) => Err(fail(&e)),
    }
}
