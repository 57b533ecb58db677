//! `connector-build plan`: build plans and cache keys as JSON, without an engine.

use connector_build::pipeline::plan_one;

use super::args::PlanArgs;
use super::context::Context;
use super::exit::{fail, Outcome};

pub async fn run(ctx: &Context, connectors: &[String], args: &PlanArgs) -> Outcome {
    let planning = ctx.planning(args)?;
    let mut plans = Vec::with_capacity(connectors.len());
    for connector in connectors {
        let (_, plan) = plan_one(
            &ctx.locator,
            connector,
            &planning.options,
            &planning.hooks,
            None,
        )
        .await
        .map_err(|e| fail(&e))?;
        plans.push(serde_json::json!({ "plan": plan, "keys": plan.keys() }));
    }
    let out = if plans.len() == 1 {
        plans.swap_remove(0)
    } else {
        serde_json::Value::Array(plans)
    };
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(())
}
