//! Bulk builds on the real engine: a selection of connectors, one of them broken, built
//! concurrently; the others finish and the broken one is reported in every report format.

mod common;

use std::process::Command;

use common::*;

#[test]
fn a_bulk_build_with_one_broken_connector_finishes_the_others_and_reports_it() {
    let ws = Workspace::new();
    ws.add_renamed("source-fixture-requirements", "source-bulk-req");
    ws.add_renamed("source-fixture-setup", "source-bulk-setup");
    ws.add_fixture("broken/source-spec-fails");
    // Not certified: the selection leaves it out.
    let community = ws.add_renamed("source-fixture-requirements", "source-bulk-community");
    let meta = community.join("metadata.yaml");
    let yaml = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(
        &meta,
        yaml.replace("supportLevel: certified", "supportLevel: community"),
    )
    .unwrap();

    let tags = BulkTags::new(
        "bulk",
        &["source-bulk-req", "source-bulk-setup", "source-spec-fails"],
        &["unix:///var/run/docker.sock"],
    );
    let reports = tempfile::tempdir().unwrap();
    let summary = reports.path().join("step-summary.md");
    let out = Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(["--connectors-dir", ws.path().to_str().unwrap()])
        .args([
            "build",
            "--support-level",
            "certified",
            "--concurrency",
            "2",
        ])
        .args(["--tag", &tags.tag])
        .arg("--report-dir")
        .arg(reports.path().join("run"))
        .env("NO_COLOR", "1")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("building 3 connectors"), "{stderr}");
    assert!(stderr.contains("source-spec-fails: FAILED"), "{stderr}");
    assert!(stderr.contains("2 built, 1 failed"), "{stderr}");

    let report = read_report(&reports.path().join("run"));
    assert_eq!(report["totals"]["built"], 2, "{report}");
    assert_eq!(report["totals"]["failed"], 1, "{report}");
    assert_eq!(report["connectors"].as_array().unwrap().len(), 3);
    for name in ["source-bulk-req", "source-bulk-setup"] {
        let entry = report_entry(&report, name);
        assert_eq!(entry["status"], "built", "{entry}");
        assert_eq!(entry["engine"], "unix:///var/run/docker.sock");
        assert!(entry["image_id"].as_str().unwrap().starts_with("sha256:"));
        assert!(entry["base_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
        let steps = entry["steps"].as_array().unwrap();
        assert!(steps.iter().any(|s| s["name"] == "install dependencies"));
        assert!(steps
            .iter()
            .all(|s| s["seconds"].is_number() && s["started_at"].is_number()));
        run_spec(&tags.image(name));
    }
    let broken = report_entry(&report, "source-spec-fails");
    assert_eq!(broken["status"], "failed");
    assert!(
        broken["error"]
            .as_str()
            .unwrap()
            .starts_with("smoke test failed"),
        "{broken}"
    );
    let output = broken["error_output"].as_array().unwrap();
    assert!(
        output
            .iter()
            .any(|l| l.as_str().unwrap().contains("Traceback")
                || l.as_str().unwrap().contains("RuntimeError")),
        "{broken}"
    );
    // The step it failed in is marked, so the timeline can show it.
    let last = broken["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["name"].as_str(), last["failed"].as_bool()),
        (Some("smoke test"), Some(true)),
        "{broken}"
    );
    assert!(!image_exists(&tags.image("source-spec-fails")));

    let md = std::fs::read_to_string(reports.path().join("run/report.md")).unwrap();
    assert!(md.contains("| source-spec-fails | **FAILED** |"), "{md}");
    assert!(md.contains("#### source-spec-fails"), "{md}");
    let html = std::fs::read_to_string(reports.path().join("run/report.html")).unwrap();
    assert!(html.contains("<svg class=\"timeline\""));
    assert!(html.contains("failed: smoke test"));
    assert!(html.contains("id=\"fail-source-spec-fails\""));
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.starts_with("## connector-build: 2 built, 1 failed"),
        "{summary}"
    );
}

#[test]
fn fail_fast_starts_nothing_after_the_first_failure() {
    let ws = Workspace::new();
    let broken = ws.add_fixture("broken/source-spec-fails");
    let fine = ws.add_renamed("source-fixture-requirements", "source-after-failure");
    let tags = BulkTags::new(
        "failfast",
        &["source-after-failure", "source-spec-fails"],
        &["unix:///var/run/docker.sock"],
    );
    let reports = tempfile::tempdir().unwrap();
    let out = cli(&[
        "build",
        broken.to_str().unwrap(),
        fine.to_str().unwrap(),
        "--fail-fast",
        "--concurrency",
        "1",
        "--tag",
        &tags.tag,
        "--report-dir",
        reports.path().to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("skipped source-after-failure"), "{stderr}");
    let report = read_report(reports.path());
    assert_eq!(
        report_entry(&report, "source-spec-fails")["status"],
        "failed"
    );
    assert_eq!(
        report_entry(&report, "source-after-failure")["status"],
        "skipped"
    );
    assert!(!image_exists(&tags.image("source-after-failure")));
}

#[test]
fn connectors_with_the_same_dependencies_install_them_once() {
    let ws = Workspace::new();
    let names = ["source-same-deps-a", "source-same-deps-b"];
    // Same manifests in both (new to the cache), different code.
    let unique = format!("# {:?}\n", std::time::SystemTime::now());
    for name in names {
        let dir = ws.add_renamed("source-fixture-requirements", name);
        let reqs = std::fs::read_to_string(dir.join("requirements.txt")).unwrap();
        std::fs::write(dir.join("requirements.txt"), format!("{unique}{reqs}")).unwrap();
        std::fs::write(dir.join("README.md"), "# same dependencies\n").unwrap();
    }
    let tags = BulkTags::new("same-deps", &names, &["unix:///var/run/docker.sock"]);
    let reports = tempfile::tempdir().unwrap();
    let out = cli(&[
        "--connectors-dir",
        ws.path().to_str().unwrap(),
        "build",
        "--name",
        names[0],
        "--name",
        names[1],
        "--concurrency",
        "2",
        "--tag",
        &tags.tag,
        "--report-dir",
        reports.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = read_report(reports.path());
    let install = |name: &str| report_step(&report, name, "install dependencies");
    let (a, b) = (install(names[0]), install(names[1]));
    let cached = [
        a["cached"].as_bool().unwrap(),
        b["cached"].as_bool().unwrap(),
    ];
    assert!(
        cached == [true, false] || cached == [false, true],
        "exactly one install ran: {a} {b}"
    );
    for name in names {
        run_spec(&tags.image(name));
    }
}

#[test]
fn a_mixed_repository_builds_each_kind_its_own_way() {
    let ws = Workspace::new();
    ws.add_renamed("source-fixture-requirements", "source-mixed-python");
    ws.add_renamed("source-fixture-manifest", "source-mixed-manifest");
    ws.add_renamed(
        "source-fixture-manifest-components",
        "source-mixed-components",
    );
    let java = ws.add_renamed("source-fixture-java", "source-mixed-java");
    std::fs::rename(
        java.join("src/dist/bin/source-fixture-java"),
        java.join("src/dist/bin/source-mixed-java"),
    )
    .unwrap();
    make_java_distribution(&java, "source-mixed-java");
    // Archived, with no build options at all, as many old connectors in Airbyte's repository:
    // not selected, so it fails nothing.
    let archived = ws.path().join("source-mixed-archived");
    std::fs::create_dir_all(&archived).unwrap();
    std::fs::write(
        archived.join("metadata.yaml"),
        "data:\n  connectorType: source\n  dockerImageTag: 0.1.0\n  dockerRepository: airbyte/source-mixed-archived\n  name: Archived\n  supportLevel: archived\n  tags:\n    - language:python\n",
    )
    .unwrap();

    let built = [
        ("source-mixed-python", "python", "install dependencies"),
        ("source-mixed-manifest", "manifest-only", "copy manifest"),
        ("source-mixed-components", "manifest-only", "copy manifest"),
        ("source-mixed-java", "java", "unpack distribution"),
    ];
    let names: Vec<&str> = built.iter().map(|b| b.0).collect();
    let tags = BulkTags::new("mixed", &names, &["unix:///var/run/docker.sock"]);

    let listed = Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(["--connectors-dir", ws.path().to_str().unwrap()])
        .args(["list", "--json"])
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    for (name, kind, _) in built {
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {rows}"));
        assert_eq!(row["kind"], kind, "{row}");
        assert!(row["base_image"].as_str().unwrap().contains("@sha256:"));
    }

    let reports = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(["--connectors-dir", ws.path().to_str().unwrap()])
        .args([
            "build",
            "--support-level",
            "certified",
            "--concurrency",
            "2",
        ])
        .args(["--tag", &tags.tag])
        .arg("--report-dir")
        .arg(reports.path().join("run"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("4 built, 0 failed"), "{stderr}");

    let report = read_report(&reports.path().join("run"));
    assert_eq!(report["totals"]["built"], 4, "{report}");
    assert_eq!(report["connectors"].as_array().unwrap().len(), 4);
    for (name, _, own_step) in built {
        let entry = report_entry(&report, name);
        assert_eq!(entry["status"], "built", "{entry}");
        assert!(entry["base_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
        // Each kind went through its own procedure.
        report_step(&report, name, own_step);
        let spec = run_spec(&tags.image(name));
        assert!(spec["spec"]["connectionSpecification"].is_object());
    }
    let spec = |name: &str| run_spec(&tags.image(name))["spec"]["connectionSpecification"].clone();
    assert_eq!(
        spec("source-mixed-manifest")["required"],
        serde_json::json!(["fixture_api_key"])
    );
    assert_eq!(
        spec("source-mixed-components")["required"],
        serde_json::json!(["fixture_components_token"])
    );
    assert_eq!(
        spec("source-mixed-java")["required"],
        serde_json::json!(["fixture_java_host"])
    );
}
