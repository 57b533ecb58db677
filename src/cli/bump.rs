//! `connector-build bump-version`: a release per selected connector.

use connector_build::clock;
use connector_build::migrate::bump::{self, BumpOutcome, ReleaseNote};

use super::args::BumpArgs;
use super::changes::{print_diffs, release_line};
use super::context::Context;
use super::exit::{usage, Exit, Outcome};

pub fn run(ctx: &Context, args: BumpArgs) -> Outcome {
    // Never every connector by default: a release is per connector.
    let Some(dirs) = ctx.selected_dirs(&args.selection, |_| false)? else {
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
