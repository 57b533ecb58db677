//! `list` and the selection flags through the binary, on the bundled fixtures (no engine).

mod common;

use common::*;

fn list(args: &[&str]) -> (Vec<String>, String) {
    let fixtures = fixtures();
    let broken = fixtures.join("broken");
    let mut full = vec![
        "--connectors-dir",
        fixtures.to_str().unwrap(),
        "--connectors-dir",
        broken.to_str().unwrap(),
        "list",
        "--json",
    ];
    full.extend_from_slice(args);
    let out = cli(&full);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    (
        rows.iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect(),
        stderr,
    )
}

#[test]
fn list_with_each_selection_flag() {
    let (all, stderr) = list(&[]);
    assert_eq!(all.len(), 15, "{all:?}");
    assert!(
        stderr.contains("source-broken-yaml"),
        "invalid files are pointed out: {stderr}"
    );

    let (names, _) = list(&[
        "--metadata-query",
        "data.connectorBuildOptions.baseImage is not None",
    ]);
    assert_eq!(
        names,
        [
            "source-fixture-hooks",
            "source-fixture-java",
            "source-fixture-manifest",
            "source-fixture-manifest-components",
            "source-fixture-poetry",
            "source-fixture-requirements",
            "source-fixture-setup",
            "source-fixture-uv",
            "source-missing-package",
            "source-spec-fails",
            "source-tag-only"
        ]
    );
    let (names, stderr) = list(&[
        "--metadata-query",
        "data.supportLevel == 'certified' and 'connectorBuildOptions' not in data.keys()",
    ]);
    assert_eq!(names, ["source-fixture-dockerfile"]);
    assert!(
        stderr.contains("left out, its metadata cannot be read"),
        "{stderr}"
    );

    let (names, _) = list(&[
        "--language",
        "python",
        "--name",
        "source-fixture-setup",
        "source-spec-fails",
    ]);
    assert_eq!(names, ["source-fixture-setup", "source-spec-fails"]);
    let (names, _) = list(&["--support-level", "community"]);
    assert!(names.is_empty(), "{names:?}");

    let out = cli(&[
        "list",
        "--metadata-query",
        "__import__('os').system('true')",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("column 1: `__import__`: names containing `__` are not allowed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn list_writes_a_table_or_json_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("connectors.txt");
    let out = cli(&[
        "--connectors-dir",
        fixtures().to_str().unwrap(),
        "list",
        "-o",
        table.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let text_table = std::fs::read_to_string(&table).unwrap();
    assert!(text_table.starts_with("NAME "), "{text_table}");
    assert!(text_table.contains("source-fixture-dockerfile") && text_table.contains("Dockerfile"));
    let json = dir.path().join("connectors.json");
    let out = cli(&[
        "--connectors-dir",
        fixtures().to_str().unwrap(),
        "list",
        "--support-level",
        "certified",
        "-o",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 9);
    assert_eq!(rows[0]["build"], "dockerfile");
}

#[test]
fn build_needs_something_to_build() {
    let out = cli(&["build"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("nothing to build"),
        "{}",
        text(&out.stderr)
    );
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
}

#[test]
fn modified_and_upgrade_base_image_take_the_selection() {
    let ws = Workspace::new();
    for f in [
        "source-fixture-requirements",
        "source-fixture-setup",
        "source-fixture-dockerfile",
    ] {
        ws.add_fixture(f);
    }
    let dir = ws.path();
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "fixtures"]);
    std::fs::write(dir.join("source-fixture-setup/main.py"), "# edited\n").unwrap();

    let modified = cli(&[
        "--connectors-dir",
        dir.to_str().unwrap(),
        "list",
        "--json",
        "--modified",
    ]);
    assert!(modified.status.success(), "{}", text(&modified.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&modified.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["name"], "source-fixture-setup");

    // upgrade-base-image on the modified certified connectors only.
    let (repo, _) = base_ref()
        .split_once('@')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap();
    let target = format!("{repo}@sha256:{}", "a".repeat(64));
    let out = cli(&[
        "--connectors-dir",
        dir.to_str().unwrap(),
        "upgrade-base-image",
        "--to",
        &target,
        "--modified",
        "--support-level",
        "certified",
        "--dry-run",
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "source-fixture-setup: {} -> {target} (dry run)",
            base_ref()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("source-fixture-requirements"), "{stderr}");
}

/// `connector-build build .` inside a connector folder named the connector `.`.
#[test]
fn a_connector_given_as_dot_is_named_after_its_folder() {
    let dir = fixtures().join("source-fixture-requirements");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(["plan", ".", "--allow-unpinned"])
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["plan"]["connector"], "source-fixture-requirements");
}

/// `connector-build biuld` said "connector biuld not found".
#[test]
fn a_misspelt_command_is_refused_with_a_suggestion() {
    let out = cli(&["biuld", "source-foo"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("similar subcommand exists: 'build'"), "{err}");
}
