//! What CI acts on: exit codes and failure classes, GitHub Actions output, shards.
//! Builds run on the real engine (see tests/common/mod.rs).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// The exit status of a retryable infrastructure fault (README: "Exit codes").
const INFRASTRUCTURE: i32 = 75;

/// `connector-build --connectors-dir <dir> ARGS` with `env` set.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_connector-build"));
    cmd.arg("--connectors-dir")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run connector-build")
}

/// Builds `connector` with `--json` and a report; the results, the report and the output.
fn build_reported(
    ws: &Workspace,
    connector: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (serde_json::Value, serde_json::Value, Output) {
    let reports = ws.path().join("reports");
    let tag = TestTag::new(connector);
    let mut args = vec![
        "build",
        connector,
        "--json",
        "--tag",
        &tag.0,
        "--report-dir",
        reports.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = run_in(ws.path(), &args, env);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON on stdout ({e}); stderr:\n{}", text(&out.stderr)));
    (json, read_report(&reports), out)
}

/// The class in `--json` and report.json, checked to be the same, with the schema version.
fn class_of(json: &serde_json::Value, report: &serde_json::Value) -> String {
    assert_eq!(json["schema_version"], 1, "{json}");
    assert_eq!(report["schema_version"], 1, "{report}");
    let class = json["connectors"][0]["failure_class"].clone();
    assert_eq!(report["connectors"][0]["failure_class"], class, "{report}");
    class.as_str().unwrap_or_default().to_string()
}

#[test]
fn no_engine_answering_is_a_retryable_fault() {
    let ws = Workspace::new();
    ws.add_fixture("source-fixture-requirements");
    let (json, report, out) = build_reported(
        &ws,
        "source-fixture-requirements",
        &[],
        &[(
            "DOCKER_HOST",
            "unix:///tmp/connector-build-ci-no-engine.sock",
        )],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(INFRASTRUCTURE), "{stderr}");
    assert!(stderr.contains("engine unreachable"), "{stderr}");
    assert_eq!(class_of(&json, &report), "infrastructure");
}

#[test]
fn an_unreachable_registry_is_a_retryable_fault() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-requirements");
    let meta = dir.join("metadata.yaml");
    let yaml = std::fs::read_to_string(&meta).unwrap();
    // Nothing listens there, and the engine has no image with that digest.
    let base = base_ref();
    let (_, digest) = base.split_once("@sha256:").unwrap();
    let elsewhere = format!(
        "127.0.0.1:5999/airbyte/python-connector-base:1.0.0@sha256:{}",
        "1e".repeat(32)
    );
    assert_ne!(digest, "1e".repeat(32));
    std::fs::write(&meta, yaml.replace(&base, &elsewhere)).unwrap();
    let (json, report, out) = build_reported(&ws, "source-fixture-requirements", &[], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(INFRASTRUCTURE), "{stderr}");
    assert_eq!(class_of(&json, &report), "infrastructure", "{stderr}");
}

#[test]
fn an_unreachable_package_index_is_a_retryable_fault() {
    let ws = Workspace::new();
    ws.add_fixture("source-fixture-requirements");
    let (json, report, out) = build_reported(
        &ws,
        "source-fixture-requirements",
        &["--installer", "pip"],
        &[
            ("PIP_INDEX_URL", "http://127.0.0.1:9/simple"),
            ("PIP_RETRIES", "0"),
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(INFRASTRUCTURE), "{stderr}");
    assert_eq!(class_of(&json, &report), "infrastructure", "{stderr}");
}

#[test]
fn a_failing_spec_is_a_failed_build() {
    let ws = Workspace::new();
    ws.add_fixture("broken/source-spec-fails");
    let (json, report, out) = build_reported(&ws, "source-spec-fails", &[], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(class_of(&json, &report), "build", "{stderr}");
}

#[test]
fn bad_metadata_is_bad_input_located_in_its_file() {
    let ws = Workspace::new();
    ws.add_fixture("broken/source-broken-yaml");
    let (json, report, out) = build_reported(&ws, "source-broken-yaml", &[], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(class_of(&json, &report), "input", "{stderr}");
    let location = &report["connectors"][0]["location"];
    assert!(
        location["file"]
            .as_str()
            .unwrap()
            .ends_with("source-broken-yaml/metadata.yaml"),
        "{location}"
    );
    assert_eq!(location["line"], 6, "{location}");
    assert!(location["col"].is_u64(), "{location}");
}
