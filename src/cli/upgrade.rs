//! `connector-build upgrade-base-image`: to `--to`, or to each family's latest release.

use std::collections::BTreeMap;

use connector_build::base_images::state::State;
use connector_build::base_images::upgrade::{upgrade_base_image, upgrade_to_latest, UpgradeResult};
use connector_build::base_images::BaseImages;
use connector_build::execute::network::NetworkSettings;
use connector_build::model::families::Declarations;
use connector_build::progress::Silent;

use super::args::{BaseImageTarget, SelectionArgs};
use super::base_images::{declarations_dir, registry_of};
use super::context::Context;
use super::exit::{fail, Exit, Outcome};

pub async fn run(
    ctx: &Context,
    selection: &SelectionArgs,
    target: &BaseImageTarget,
    set_if_not_exists: bool,
    dry_run: bool,
) -> Outcome {
    // No selection keeps the "every connector found" behaviour, which skips files that do not
    // parse; a selection names folders.
    let names: Vec<String> = match ctx.selected(selection)? {
        None => Vec::new(),
        Some(result) if result.connectors.is_empty() => {
            eprintln!("no connector matches the selection");
            return Ok(());
        }
        Some(result) => result
            .connectors
            .iter()
            .map(|c| c.dir.to_string_lossy().into_owned())
            .collect(),
    };
    if let Some(to) = &target.to {
        let results = upgrade_base_image(&ctx.locator, &names, to, set_if_not_exists, dry_run)
            .map_err(|e| fail(&e))?;
        print_upgrades(&results, dry_run);
        return finished(&results);
    }
    let config = &ctx.config;
    let declarations =
        Declarations::from(declarations_dir(target.declarations.as_deref(), config).as_deref())
            .map_err(|e| fail(&e))?;
    let engine = ctx.connect_engine().await?;
    let state = State::locate(config.state_dir.as_deref());
    let registry = registry_of(target.registry.as_deref(), config);
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
        insecure: &config.insecure_registries,
        // Connectors pin the linux/amd64 tags (or, once published, the index under them).
        platform: connector_build::platform::Platform::LinuxAmd64,
    };
    let (results, skipped) =
        upgrade_to_latest(&images, &ctx.locator, &names, set_if_not_exists, dry_run)
            .await
            .map_err(|e| fail(&e))?;
    print_upgrades(&results, dry_run);
    for s in &skipped {
        eprintln!("{}: left alone: {}", s.connector, s.reason);
    }
    finished(&results)
}

/// A connector the user named and the command left alone fails the run.
fn finished(results: &[UpgradeResult]) -> Outcome {
    if UpgradeResult::all_done(results) {
        Ok(())
    } else {
        Err(Exit::Failed)
    }
}

/// One line per connector on stderr: what `upgrade-base-image` changed.
fn print_upgrades(results: &[UpgradeResult], dry_run: bool) {
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
