//! `connector-build cache prune`: what goes (or would go) on stdout, one line per entry; the
//! totals on stderr.

use connector_build::clock::unix_now;
use connector_build::execute::prune::{self, Entry, Policy, PolicyError, Reason};
use connector_build::execute::remote::{CacheMode, RemoteCache};
use connector_build::fault::FaultClass;
use connector_build::registry::{Registry, RegistryError};
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
        cache_registry,
    } = command;
    let policy = Policy::parse(older_than.as_deref(), keep_last, max_size.as_deref())
        .map_err(|e: PolicyError| usage(connector_build::error::error_chain(&e)))?;
    let remote = cache_registry
        .as_deref()
        .map(|r| RemoteCache::new(r, CacheMode::ReadWrite))
        .transpose()
        .map_err(|e| usage(connector_build::error::error_chain(&e)))?;
    let now = unix_now();
    // Images tagged in any engine protect registry entries too.
    let mut tagged_anywhere = Vec::new();
    for engine in ctx.connect_engines().await? {
        let images = prune::engine_images(&engine)
            .await
            .map_err(|e| fail_as(&e, e.class()))?;
        let (entries, tagged) = prune::entries(&images);
        let gone = prune::decide(&entries, &tagged, &policy, now);
        for (i, _) in &gone {
            if !dry_run {
                prune::remove(&engine, &entries[*i])
                    .await
                    .map_err(|e| fail(&e))?;
            }
        }
        print_pruned(engine.host(), &entries, &gone, dry_run, now);
        tagged_anywhere.extend(tagged);
    }
    if let Some(remote) = remote {
        let (host, path) = remote.registry_and_path();
        let registry = Registry::connect(host, &ctx.config.insecure_registries)
            .map_err(|e| fail_as(&e, retryable(&e)))?;
        let images = prune::registry_images(&registry, path)
            .await
            .map_err(|e| fail_as(&e, retryable(&e)))?;
        let (entries, _) = prune::entries(&images);
        let gone = prune::decide(&entries, &tagged_anywhere, &policy, now);
        for (i, _) in &gone {
            if !dry_run {
                prune::remove_from_registry(&registry, path, &entries[*i])
                    .await
                    .map_err(|e| fail_as(&e, retryable(&e)))?;
            }
        }
        print_pruned(remote.repository(), &entries, &gone, dry_run, now);
    }
    Ok(())
}

fn retryable(e: &RegistryError) -> FaultClass {
    if e.retryable() {
        FaultClass::Infrastructure
    } else {
        FaultClass::Input
    }
}

/// One line per entry that goes on stdout, the totals of `place` on stderr.
fn print_pruned(place: &str, entries: &[Entry], gone: &[(usize, Reason)], dry_run: bool, now: f64) {
    let mut freed = 0;
    for (i, reason) in gone {
        let entry = &entries[*i];
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
        "{place}: {} of {} cache entries {}, {}; {} kept",
        gone.len(),
        entries.len(),
        if dry_run { "would go" } else { "removed" },
        bytesize::ByteSize::b(freed as u64),
        entries.len() - gone.len()
    );
}
