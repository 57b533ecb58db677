//! Build plans and cache keys of the fixtures, snapshot-tested without an engine.

mod common;

use std::path::Path;

use connector_build::edit;
use connector_build::model::Connector;
use connector_build::plan::{plan_connector, BuildPlan, PlanOptions};

/// A fixed base so the snapshots do not depend on the digest the set-up produced.
const BASE: &str = "127.0.0.1:5000/connector-build/debian-python:3.11-bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn plan_fixture(name: &str, edit_code: bool) -> BuildPlan {
    let ws = common::Workspace::new();
    let dir = ws.path().join(name);
    common::copy_dir(&common::fixtures().join(name), &dir);
    let meta = dir.join("metadata.yaml");
    let text = std::fs::read_to_string(&meta).unwrap();
    if text.contains("baseImage:") {
        let (text, _) = edit::set_base_image(&meta, &text, BASE, false).unwrap();
        std::fs::write(&meta, text).unwrap();
    }
    if edit_code {
        let pkg = dir.join(name.replace('-', "_")).join("__init__.py");
        let mut code = std::fs::read_to_string(&pkg).unwrap();
        code.push_str("# edit\n");
        std::fs::write(&pkg, code).unwrap();
    }
    let connector = Connector::load(&dir).unwrap();
    let options = PlanOptions {
        network_fingerprint: "index:test".into(),
        ..Default::default()
    };
    let mut plan = plan_connector(&connector, &options).unwrap();
    plan.context_dir = Path::new("<fixture>").join(name);
    plan
}

fn snapshot(name: &str) {
    let plan = plan_fixture(name, false);
    let keys = plan.keys();
    insta::assert_json_snapshot!(name, serde_json::json!({ "plan": plan, "keys": keys }));
}

#[test]
fn poetry_plan() {
    snapshot("source-fixture-poetry");
}

#[test]
fn setup_py_plan() {
    snapshot("source-fixture-setup");
}

#[test]
fn requirements_plan() {
    snapshot("source-fixture-requirements");
}

#[test]
fn uv_lock_plan() {
    snapshot("source-fixture-uv");
}

#[test]
fn dockerfile_plan() {
    snapshot("source-fixture-dockerfile");
}

#[test]
fn a_code_edit_changes_only_the_keys_after_the_install() {
    for name in [
        "source-fixture-poetry",
        "source-fixture-setup",
        "source-fixture-requirements",
        "source-fixture-uv",
    ] {
        let before = plan_fixture(name, false).keys();
        let after = plan_fixture(name, true).keys();
        let install = plan_fixture(name, false)
            .steps
            .iter()
            .position(|s| s.name == "install dependencies")
            .unwrap();
        assert_eq!(before.base, after.base);
        assert_eq!(before.steps[..=install], after.steps[..=install], "{name}");
        for i in install + 1..before.steps.len() {
            assert_ne!(before.steps[i], after.steps[i], "{name} step {i}");
        }
        assert_ne!(before.image, after.image);
    }
}

#[test]
fn keys_are_stable_across_runs_and_folders() {
    let a = plan_fixture("source-fixture-setup", false);
    let b = plan_fixture("source-fixture-setup", false);
    assert_eq!(a.keys(), b.keys());
}

#[test]
fn manifest_only_plan() {
    snapshot("source-fixture-manifest");
}

#[test]
fn manifest_only_with_components_plan() {
    snapshot("source-fixture-manifest-components");
}
