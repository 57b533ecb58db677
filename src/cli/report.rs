//! `connector-build report merge`: the shards' reports joined into one run report.

use connector_build::report::RunReport;

use super::args::ReportCommand;
use super::context::Context;
use super::exit::{fail, Outcome};

pub fn run(ctx: &Context, command: ReportCommand) -> Outcome {
    let ReportCommand::Merge { reports, output } = command;
    let read = reports
        .iter()
        .map(|path| {
            RunReport::read(path).map(|r| (connector_build::report::merge::report_file(path), r))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(&e))?;
    let shards = read.len();
    let merged = RunReport::merge(read).map_err(|e| fail(&e))?;
    merged
        .write(&output, ctx.step_summary().as_deref())
        .map_err(|e| fail(&e))?;
    eprintln!(
        "merged {shards} report(s): {}; report: {}",
        merged.headline(),
        output.join("report.html").display()
    );
    Ok(())
}
