//! `connector-build list`: the selected connectors as a table or JSON.

use std::path::Path;

use connector_build::select::{self, Listing, Selection};

use super::args::SelectionArgs;
use super::context::Context;
use super::exit::{fail, failed, Outcome};

pub fn run(ctx: &Context, args: &SelectionArgs, json: bool, output: Option<&Path>) -> Outcome {
    let result = match ctx.selected(args)? {
        Some(r) => r,
        None => ctx.sharded(
            args,
            select::select(&ctx.locator, &Selection::default()).map_err(|e| fail(&e))?,
        )?,
    };
    let mut rows: Vec<Listing> = result.connectors.iter().map(Listing::of).collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    for r in &rows {
        if let Some(e) = &r.error {
            ctx.warn(format_args!("{}: {e}", r.name));
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
            std::fs::write(path, text)
                .map_err(|e| failed(format_args!("cannot write {}: {e}", path.display())))?;
            eprintln!("{} connector(s) written to {}", rows.len(), path.display());
        }
    }
    Ok(())
}
