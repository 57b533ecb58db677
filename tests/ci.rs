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

/// The value of output `name` in a `$GITHUB_OUTPUT` file, in either of GitHub's forms.
fn github_output(text: &str, name: &str) -> Option<String> {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(value) = line.strip_prefix(&format!("{name}=")) {
            return Some(value.to_string());
        }
        if let Some(delimiter) = line.strip_prefix(&format!("{name}<<")) {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
            return Some(value.join("\n"));
        }
    }
    None
}

#[test]
fn github_actions_gets_groups_annotations_outputs_and_buildx_metadata() {
    let ws = Workspace::new();
    ws.add_fixture("source-fixture-requirements");
    ws.add_fixture("broken/source-broken-yaml");
    let outputs = ws.path().join("github-output");
    let metadata = ws.path().join("metadata.json");
    let tag = format!("ci-github-{}", std::process::id());
    let image = format!("airbyte/source-fixture-requirements:{tag}");
    let _cleanup = TestTag(image.clone());
    let out = run_in(
        ws.path(),
        &[
            "build",
            "source-fixture-requirements",
            "source-broken-yaml",
            "--tag",
            &tag,
            "--concurrency",
            "2",
            "--metadata-file",
            metadata.to_str().unwrap(),
            "--report-dir",
            ws.path().join("reports").to_str().unwrap(),
        ],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_OUTPUT", outputs.to_str().unwrap()),
            ("GITHUB_WORKSPACE", ws.path().to_str().unwrap()),
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");

    // One group per connector, holding its own lines only.
    let lines: Vec<&str> = stderr.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == "::group::source-fixture-requirements: built")
        .unwrap_or_else(|| panic!("no group: {stderr}"));
    let end = start
        + lines[start..]
            .iter()
            .position(|l| *l == "::endgroup::")
            .unwrap();
    assert!(end > start + 1, "{stderr}");
    assert!(
        lines[start + 1..end]
            .iter()
            .all(|l| l.starts_with("source-fixture-requirements")),
        "{stderr}"
    );
    assert!(
        lines.contains(&"::group::source-broken-yaml: failed"),
        "{stderr}"
    );

    // The YAML error points at its file, line and column, relative to the workspace.
    let annotation = lines
        .iter()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("no annotation: {stderr}"));
    assert!(
        annotation.starts_with("::error file=source-broken-yaml/metadata.yaml,line=6,col="),
        "{annotation}"
    );
    assert!(
        annotation.contains(",title=source-broken-yaml::"),
        "{annotation}"
    );
    assert!(!annotation[9..].contains('\n'));

    // Results in $GITHUB_OUTPUT, the JSON in GitHub's multi-line form.
    let written = std::fs::read_to_string(&outputs).unwrap();
    let results: serde_json::Value =
        serde_json::from_str(&github_output(&written, "results").unwrap()).unwrap();
    let built = &results[0];
    assert_eq!(
        built["connector"], "source-fixture-requirements",
        "{written}"
    );
    assert_eq!(built["status"], "built");
    assert_eq!(built["image"], image.as_str());
    let id = docker_ok(&["image", "inspect", "--format", "{{.Id}}", &image]);
    assert_eq!(built["digest"], id.trim());
    assert_eq!(results[1]["status"], "failed");
    assert_eq!(results[1]["failure_class"], "input");
    assert_eq!(
        github_output(&written, "built").as_deref(),
        Some("source-fixture-requirements")
    );
    assert_eq!(
        github_output(&written, "failed").as_deref(),
        Some("source-broken-yaml")
    );
    assert_eq!(
        github_output(&written, "failure_class").as_deref(),
        Some("input")
    );

    // buildx's metadata file: the built connector only.
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
    assert_eq!(meta.as_object().unwrap().len(), 1, "{meta}");
    assert_eq!(
        meta["source-fixture-requirements"]["image.name"],
        image.as_str()
    );
    assert_eq!(
        meta["source-fixture-requirements"]["containerimage.digest"],
        id.trim()
    );
}

#[test]
fn progress_modes_choose_what_is_drawn() {
    let ws = Workspace::new();
    ws.add_fixture("broken/source-broken-yaml");
    let build = |mode: &str, env: &[(&str, &str)]| {
        let out = run_in(
            ws.path(),
            &["build", "source-broken-yaml", "--progress", mode],
            env,
        );
        assert_eq!(out.status.code(), Some(1));
        text(&out.stderr)
    };
    let quiet = build("quiet", &[("GITHUB_ACTIONS", "true")]);
    assert!(!quiet.contains("::group::"), "{quiet}");
    let plain = build("plain", &[]);
    assert!(!plain.contains("::group::"), "{plain}");
    let grouped = build("plain", &[("GITHUB_ACTIONS", "true")]);
    assert!(
        grouped.contains("::group::source-broken-yaml: failed"),
        "{grouped}"
    );
    let bad = run_in(
        ws.path(),
        &["build", "source-broken-yaml", "--progress", "fancy"],
        &[],
    );
    assert_eq!(bad.status.code(), Some(2));
}

/// `list --json` names under `dir` with `extra` flags.
fn listed(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["list", "--json"];
    args.extend_from_slice(extra);
    let out = run_in(dir, &args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    rows.iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn shards_of_a_listing_cover_it_exactly_once() {
    let dir = fixtures();
    let all = listed(&dir, &[]);
    assert!(all.len() >= 5, "{all:?}");
    let shards: Vec<Vec<String>> = (1..=3)
        .map(|i| listed(&dir, &["--shard", &format!("{i}/3")]))
        .collect();
    assert!(shards.iter().all(|s| !s.is_empty()), "{shards:?}");
    let mut joined = shards.concat();
    joined.sort();
    assert_eq!(joined, all);
    // The same again: stable.
    assert_eq!(listed(&dir, &["--shard", "2/3"]), shards[1]);
    // With a criterion, the share is of what it selects.
    let python = listed(&dir, &["--language", "python"]);
    let mut halves = [
        listed(&dir, &["--language", "python", "--shard", "1/2"]),
        listed(&dir, &["--language", "python", "--shard", "2/2"]),
    ]
    .concat();
    halves.sort();
    assert_eq!(halves, python);

    let bad = run_in(&dir, &["list", "--shard", "4/3"], &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("`--shard 4/3`: INDEX is out of range"),
        "{}",
        text(&bad.stderr)
    );
    let lone = run_in(&dir, &["list", "--balance-from", "report.json"], &[]);
    assert_eq!(lone.status.code(), Some(2));
}

#[test]
fn sharded_builds_merge_into_one_report_and_balance_the_next_run() {
    let ws = Workspace::new();
    let names = ["source-fixture-requirements", "source-fixture-setup"];
    for n in names {
        ws.add_fixture(n);
    }
    let tag = format!("ci-shard-{}", std::process::id());
    let _cleanup: Vec<TestTag> = names
        .iter()
        .map(|n| TestTag(format!("airbyte/{n}:{tag}")))
        .collect();
    let mut dirs = Vec::new();
    for i in 1..=2 {
        let dir = ws.path().join(format!("report-{i}"));
        let out = run_in(
            ws.path(),
            &[
                "build",
                names[0],
                names[1],
                "--shard",
                &format!("{i}/2"),
                "--tag",
                &tag,
                "--report-dir",
                dir.to_str().unwrap(),
            ],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(read_report(&dir)["connectors"].as_array().unwrap().len(), 1);
        dirs.push(dir);
    }
    let merged = ws.path().join("merged");
    let out = run_in(
        ws.path(),
        &[
            "report",
            "merge",
            dirs[0].to_str().unwrap(),
            dirs[1].join("report.json").to_str().unwrap(),
            "-o",
            merged.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = read_report(&merged);
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["totals"]["built"], 2, "{report}");
    let mut built: Vec<&str> = report["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["connector"].as_str().unwrap())
        .collect();
    built.sort();
    assert_eq!(built, names);
    for file in ["report.md", "report.html"] {
        let body = std::fs::read_to_string(merged.join(file)).unwrap();
        assert!(body.contains(names[0]) && body.contains(names[1]), "{file}");
    }

    // Merging a shard twice is refused, and writes nothing.
    let again = ws.path().join("again");
    let out = run_in(
        ws.path(),
        &[
            "report",
            "merge",
            dirs[0].to_str().unwrap(),
            dirs[0].to_str().unwrap(),
            "-o",
            again.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is in two reports"),
        "{}",
        text(&out.stderr)
    );
    assert!(!again.exists());

    // The merged report balances the next run's shards; together they still cover it.
    let balanced: Vec<String> = (1..=2)
        .flat_map(|i| {
            listed(
                ws.path(),
                &[
                    "--shard",
                    &format!("{i}/2"),
                    "--balance-from",
                    merged.to_str().unwrap(),
                ],
            )
        })
        .collect();
    assert_eq!(balanced.len(), 2, "{balanced:?}");
    assert_ne!(balanced[0], balanced[1]);
}

/// `value` is in no layer of `image` (`docker save`), not in its config or history, not in
/// the run's output and not in the report in `report_dir`.
fn assert_nowhere(value: &str, image: &str, out: &Output, report_dir: &Path) {
    assert!(
        memchr::memmem::find(&saved_bytes(image), value.as_bytes()).is_none(),
        "the secret is in a layer"
    );
    let config = docker_ok(&["image", "inspect", image]);
    let history = image_history(image);
    assert!(!config.contains(value) && !history.contains(value));
    assert!(
        !text(&out.stdout).contains(value) && !text(&out.stderr).contains(value),
        "printed"
    );
    for file in ["report.json", "report.md", "report.html"] {
        let body = std::fs::read_to_string(report_dir.join(file)).unwrap();
        assert!(!body.contains(value), "{file}");
    }
}

#[test]
fn a_secret_reaches_the_hook_commands_and_nothing_keeps_it() {
    let ws = Workspace::new();
    let dir = ws.add_renamed("source-fixture-requirements", "source-ci-secret");
    // The run's own marker in the command gives it a key of its own: a secret is in no key,
    // so a layer built by an earlier run with another secret would otherwise be reused.
    std::fs::write(
        dir.join("build_customization.py"),
        format!(
            r#"async def pre_connector_install(base_image_container):
    return base_image_container.with_exec(
        ["sh", "-c", "sha256sum /run/secrets/token | cut -c1-64 > /opt/token.sha256 # {}"]
    )
"#,
            std::process::id()
        ),
    )
    .unwrap();
    let value = format!("cb-secret-{}-f7c1d2", std::process::id());
    let changed = format!("cb-secret-{}-changed-9a3e", std::process::id());
    let secret_file = ws.path().join("token");
    std::fs::write(&secret_file, &value).unwrap();
    let changed_file = ws.path().join("token-changed");
    std::fs::write(&changed_file, &changed).unwrap();
    let flag = |file: &Path| format!("id=token,src={}", file.display());
    let tag = format!("ci-secret-{}", std::process::id());
    let image = format!("airbyte/source-ci-secret:{tag}");
    let _cleanup = TestTag(image.clone());
    let reports = ws.path().join("reports");
    let metadata = ws.path().join("metadata.json");

    let build = |secret: &Path, report: &str| {
        run_in(
            ws.path(),
            &[
                "-v",
                "build",
                "source-ci-secret",
                "--json",
                "--tag",
                &tag,
                "--secret",
                &flag(secret),
                "--metadata-file",
                metadata.to_str().unwrap(),
                "--report-dir",
                reports.join(report).to_str().unwrap(),
            ],
            &[("GITHUB_ACTIONS", "true")],
        )
    };
    let out = build(&secret_file, "first");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    // The hook's command read it...
    let digest = in_image(&image, "cat", &["/opt/token.sha256"]);
    let expected = sha256(value.as_bytes());
    assert_eq!(format!("sha256:{}", digest.trim()), expected);
    // ...and it is in no layer, no config, no output, no report.
    let listing = in_image(
        &image,
        "sh",
        &["-c", "ls -A /run/secrets 2>/dev/null; true"],
    );
    assert_eq!(listing.trim(), "", "files left in /run/secrets");
    assert_nowhere(&value, &image, &out, &reports.join("first"));
    assert!(!std::fs::read_to_string(&metadata).unwrap().contains(&value));

    // A changed secret changes no key: the same plan, and a build all from cache.
    let plan = |args: &[&str]| {
        let mut full = vec!["plan", "source-ci-secret", "--tag", &tag];
        full.extend_from_slice(args);
        let out = run_in(ws.path(), &full, &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let with = plan(&["--secret", &flag(&secret_file)]);
    assert_eq!(with, plan(&["--secret", &flag(&changed_file)]));
    assert_eq!(with, plan(&[]));
    let again = build(&changed_file, "second");
    assert!(again.status.success(), "{}", text(&again.stderr));
    let report = read_report(&reports.join("second"));
    assert_eq!(report["connectors"][0]["containers_started"], 0, "{report}");

    // A secret that cannot be read fails before any build, naming the file.
    let missing = run_in(
        ws.path(),
        &[
            "plan",
            "source-ci-secret",
            "--secret",
            "id=token,src=/nonexistent/token",
        ],
        &[],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("--secret id=token: cannot read /nonexistent/token"));
    let bad = run_in(
        ws.path(),
        &["plan", "source-ci-secret", "--secret", "token"],
        &[],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
}

#[test]
fn a_hook_secret_reaches_its_commands_and_nothing_keeps_it() {
    let ws = Workspace::new();
    let dir = ws.add_renamed("source-fixture-requirements", "source-ci-hook-secret");
    // The run's own marker gives the commands keys of their own (a secret is in no key).
    std::fs::write(
        dir.join("build_customization.py"),
        format!(
            r#"import os
from dagger import Container, dag

async def post_connector_install(c: Container) -> Container:
    token = dag.set_secret("token", os.environ["CB_TEST_HOOK_SECRET"])
    with_secret = c.with_mounted_secret("/opt/cb-secret/netrc", token).with_secret_variable("TOKEN", token)
    # The file and the variable hold the value; output shows it scrubbed. (`plan` has no
    # engine to answer with.)
    seen = "" if os.environ.get("CB_TEST_PLAN") else await with_secret.with_exec(
        ["sh", "-c", "test \"$(cat /opt/cb-secret/netrc)\" = \"$TOKEN\" && echo \"token=$TOKEN\""]
    ).stdout()
    return (
        with_secret.with_user("root")
        .with_exec(["sh", "-c", "sha256sum /opt/cb-secret/netrc | cut -c1-64 > /opt/token.sha256 # {}"])
        .with_label("io.cb.seen", seen.strip())
    )
"#,
            std::process::id()
        ),
    )
    .unwrap();
    let value = format!("cb-hook-secret-{}-5e2b9c", std::process::id());
    let tag = format!("ci-hook-secret-{}", std::process::id());
    let image = format!("airbyte/source-ci-hook-secret:{tag}");
    let _cleanup = TestTag(image.clone());
    let reports = ws.path().join("reports");
    let build = |secret: &str, report: &str| {
        run_in(
            ws.path(),
            &[
                "-v",
                "build",
                "source-ci-hook-secret",
                "--json",
                "--tag",
                &tag,
                "--report-dir",
                reports.join(report).to_str().unwrap(),
            ],
            &[("CB_TEST_HOOK_SECRET", secret)],
        )
    };
    let out = build(&value, "first");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    // The commands got it (file and variable)...
    let digest = in_image(&image, "cat", &["/opt/token.sha256"]);
    let expected = sha256(value.as_bytes());
    assert_eq!(format!("sha256:{}", digest.trim()), expected);
    let config = docker_ok(&["image", "inspect", &image]);
    assert!(config.contains("\"io.cb.seen\": \"token=***\""), "{config}");
    // ...and its file, its folder and its value are gone from the image.
    let listing = in_image(&image, "sh", &["-c", "ls -A /opt"]);
    assert!(listing.lines().any(|l| l == "token.sha256"), "{listing}");
    assert!(!listing.lines().any(|l| l == "cb-secret"), "{listing}");
    assert_nowhere(&value, &image, &out, &reports.join("first"));

    // Not in the plan or a key: a changed value plans the same and builds from cache.
    let plan = |secret: &str| {
        let out = run_in(
            ws.path(),
            &["plan", "source-ci-hook-secret", "--tag", &tag],
            &[("CB_TEST_HOOK_SECRET", secret), ("CB_TEST_PLAN", "1")],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let planned = plan(&value);
    assert!(!planned.contains(&value));
    assert!(planned.contains("/opt/cb-secret/netrc"), "{planned}");
    assert_eq!(planned, plan("another-value"));
    let again = build("another-value", "second");
    assert!(again.status.success(), "{}", text(&again.stderr));
    let report = read_report(&reports.join("second"));
    assert_eq!(report["connectors"][0]["containers_started"], 0, "{report}");
}
