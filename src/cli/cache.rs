//! `connector-build cache prune`: what goes (or would go) on stdout, one line per entry; the
//! totals on stderr.

use connector_build::clock::unix_now;
use connector_build::execute::prune::{self, Policy, PolicyError};
use connector_build::report::{duration, short_id};

use super::args::CacheCommand;
use super::context::Context;
use super::exit::{fail, fail_as, usage, Outcome};

pub async fn run(ctx: &Context, command: CacheCommand) -> Outcome {
    let CacheCommand::Prune {
        older_than,
        keep_last,
        max_size,
        dry_run,
    } = command;
    let policy = Policy::parse(older_than.as_deref(), keep_last, max_size.as_deref())
        .map_err(|e: PolicyError| usage(connector_build::error::error_chain(&e)))?;
    let now = unix_now();
    for engine in ctx.connect_engines().await? {
        let images = prune::engine_images(&engine)
            .await
            .map_err(|e| fail_as(&e, e.class()))?;
        let (entries, tagged) = prune::entries(&images);
        let gone = prune::decide(&entries, &tagged, &policy, now);
        let mut freed = 0;
        for (i, reason) in &gone {
            let entry = &entries[*i];
            if !dry_run {
                prune::remove(&engine, entry).await.map_err(|e| fail(&e))?;
            }
            freed += entry.added;
            println!(
                "{} {} {} {} old, {} ({})",
                if dry_run { "would remove" } else { "removed" },
                short_id(entry.tags[0].rsplit(':').next().unwrap_or_default()),
                entry.connector,
                duration(now - entry.created),
                bytesize::ByteSize::b(entry.added as u64),
                reason.describe()
            );
        }
        eprintln!(
            "{}: {} of {} cache entries {}, {}; {} kept",
            engine.host(),
            gone.len(),
            entries.len(),
            if dry_run { "would go" } else { "removed" },
            bytesize::ByteSize::b(freed as u64),
            entries.len() - gone.len()
        );
    }
    Ok(())
}
