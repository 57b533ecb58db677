//! `migrate-to-base-image`, `bump-version` and `analyze-dockerfiles` on the Dockerfile
//! fixtures (`connectors-fixtures/dockerfiles/`), each in a private copy, on the real engine.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use connector_build::clock::today;

/// A workspace with the Dockerfile fixtures' documentation pages, as `docs/` beside the
/// connectors.
fn workspace() -> Workspace {
    let ws = Workspace::new();
    copy_dir(&fixtures().join("docs"), &ws.path().join("docs"));
    ws
}

fn docs_page(ws: &Workspace, name: &str) -> PathBuf {
    let short = name.strip_prefix("source-").unwrap();
    ws.path()
        .join(format!("docs/integrations/sources/{short}.md"))
}

/// Every file under `dir`, with its contents.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in walkdir(dir) {
        out.insert(
            entry.strip_prefix(dir).unwrap().to_path_buf(),
            std::fs::read(&entry).unwrap(),
        );
    }
    out
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn migrate(ws: &Workspace, extra: &[&str]) -> std::process::Output {
    let base = base_ref();
    let mut args = vec![
        "--connectors-dir",
        ws.path().to_str().unwrap(),
        "migrate-to-base-image",
        "--to",
        &base,
        "--pr",
        "4242",
    ];
    args.extend_from_slice(extra);
    cli(&args)
}

/// The `spec` of the image the connector's Dockerfile builds, with plain `docker build`.
fn dockerfile_spec(dir: &Path, test: &str) -> serde_json::Value {
    let tag = TestTag::new(&format!("{test}-dockerfile"));
    docker_ok(&["build", "-q", "-t", &tag.0, dir.to_str().unwrap()]);
    run_spec(&tag.0)
}

struct Expect {
    old: &'static str,
    new: &'static str,
    pyproject: bool,
    docs: bool,
}

const PR_4242: &str = "[4242](https://github.com/airbytehq/airbyte/pull/4242)";

/// The cells of a Markdown table row, with their padding.
fn cells(row: &str) -> Vec<&str> {
    let t = row.trim();
    t[1..t.len() - 1].split('|').collect()
}

/// Migrates one fixture and checks every edit byte for byte, then builds the migrated
/// connector and compares its `spec` with the Dockerfile image's. Returns the image's tag.
fn migrate_fixture(name: &str, expect: Expect) -> (Workspace, PathBuf, TestTag) {
    let ws = workspace();
    let dir = ws.add_fixture(&format!("dockerfiles/{name}"));
    let before = files(&dir);
    let docs = docs_page(&ws, name);
    let docs_before = std::fs::read_to_string(&docs).ok();
    assert_eq!(docs_before.is_some(), expect.docs, "{}", docs.display());
    let spec_before = dockerfile_spec(&dir, name);

    let out = migrate(&ws, &[name]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "migrated {name}: {} -> {}",
            expect.old, expect.new
        )),
        "{stderr}"
    );

    // The Dockerfile is gone; metadata.yaml has baseImage inserted (after connectorSubtype,
    // as upstream places it) and the tag bumped, and not one other byte changed.
    assert!(!dir.join("Dockerfile").exists());
    let meta_before = String::from_utf8(before[Path::new("metadata.yaml")].clone()).unwrap();
    let expected = meta_before
        .replace(
            &format!("dockerImageTag: {} ", expect.old),
            &format!("dockerImageTag: {} ", expect.new),
        )
        .replace(
            "  connectorSubtype: api\n",
            &format!(
                "  connectorSubtype: api\n  connectorBuildOptions:\n    baseImage: {}\n",
                base_ref()
            ),
        );
    assert_eq!(read(&dir.join("metadata.yaml")), expected);

    if expect.pyproject {
        let text = String::from_utf8(before[Path::new("pyproject.toml")].clone()).unwrap();
        assert_eq!(
            read(&dir.join("pyproject.toml")),
            text.replace(
                &format!("version = \"{}\"", expect.old),
                &format!("version = \"{}\"", expect.new)
            )
        );
    }
    if let Some(docs_before) = docs_before {
        let after = read(&docs);
        let subject =
            "Base image migration: remove Dockerfile and use the python-connector-base image";
        let at = after
            .find(&format!("| {}", expect.new))
            .expect("the changelog row");
        let (head, tail) = after.split_at(at);
        let (row, rest) = tail.split_once('\n').unwrap();
        let previous = rest.lines().next().unwrap();
        // Right under the table's separator row, before the previous release.
        assert!(head.ends_with("|\n") && head.trim_end().ends_with('|'));
        assert!(
            previous.starts_with(&format!("| {}", expect.old)),
            "{after}"
        );
        assert_eq!(format!("{head}{rest}"), docs_before);
        let (new_cells, old_cells) = (cells(row), cells(previous));
        let texts: Vec<&str> = new_cells.iter().map(|c| c.trim()).collect();
        assert_eq!(texts, [expect.new, &today(), PR_4242, subject], "{row}");
        // Padded like the rows already there: the version, date and pull request cells
        // (shorter than their columns) line up; the subject is longer than its column.
        let padded = old_cells[0].trim().len() + 2 < old_cells[0].len();
        for i in 0..3 {
            if padded {
                assert_eq!(new_cells[i].len(), old_cells[i].len(), "{row}\n{previous}");
            } else {
                assert_eq!(new_cells[i], format!(" {} ", texts[i]), "{row}");
            }
        }
    }
    // Every other file is as it was.
    let after = files(&dir);
    for (path, bytes) in &before {
        let edited = ["Dockerfile", "metadata.yaml", "pyproject.toml"]
            .iter()
            .any(|f| path == Path::new(f));
        if !edited {
            assert_eq!(after.get(path), Some(bytes), "{} changed", path.display());
        }
    }

    // It builds from its base image, with the same spec.
    let tag = TestTag::new(&format!("{name}-migrated"));
    let (results, out) = build_json(&[dir.to_str().unwrap(), "--tag", &tag.0]);
    assert_eq!(
        results[0]["status"],
        "built",
        "{results}\n{}",
        text(&out.stderr)
    );
    assert_eq!(run_spec(&tag.0), spec_before);
    let config = image_config(&tag.0);
    assert_eq!(config["Labels"]["io.airbyte.version"], expect.new);
    (ws, dir, tag)
}

#[test]
fn plain_slim_dockerfile_migrates_without_a_hook() {
    let (_ws, dir, _tag) = migrate_fixture(
        "source-dockerfile-slim",
        Expect {
            old: "1.0.11",
            new: "1.0.12",
            pyproject: false,
            docs: true,
        },
    );
    // `apt-get install bash` added nothing the base image lacks: no hook.
    assert!(!dir.join("build_customization.py").exists());
}

#[test]
fn deps_first_dockerfile_migrates_and_bumps_pyproject() {
    let (_ws, dir, _tag) = migrate_fixture(
        "source-dockerfile-deps-first",
        Expect {
            old: "0.3.1",
            new: "0.3.2",
            pyproject: true,
            docs: true,
        },
    );
    assert!(!dir.join("build_customization.py").exists());
}

#[test]
fn multi_stage_dockerfile_migrates_without_a_docs_page() {
    let (_ws, dir, _tag) = migrate_fixture(
        "source-dockerfile-multistage",
        Expect {
            old: "2.1.0",
            new: "2.1.1",
            pyproject: false,
            docs: false,
        },
    );
    assert!(!dir.join("build_customization.py").exists());
}

#[test]
fn custom_env_package_and_main_file_are_carried_by_a_generated_hook() {
    let (_ws, dir, tag) = migrate_fixture(
        "source-dockerfile-custom",
        Expect {
            old: "0.2.0",
            new: "0.2.1",
            pyproject: false,
            docs: true,
        },
    );
    let hook = read(&dir.join("build_customization.py"));
    for want in [
        "MAIN_FILE_NAME = \"main_dev.py\"",
        "async def pre_connector_install(base_image_container: Container) -> Container:",
        "apt-get install -y --no-install-recommends jq &&",
        ".with_env_variable(\"AIRBYTE_IMPL_MODULE\", \"source_dockerfile_custom\")",
        ".with_env_variable(\"AIRBYTE_IMPL_PATH\", \"SourceDockerfileCustom\")",
    ] {
        assert!(hook.contains(want), "{want} missing:\n{hook}");
    }
    // Only what differs: AIRBYTE_ENTRYPOINT follows from MAIN_FILE_NAME.
    assert!(!hook.contains("AIRBYTE_ENTRYPOINT"), "{hook}");
    let config = image_config(&tag.0);
    let env: Vec<String> = serde_json::from_value(config["Env"].clone()).unwrap();
    for want in [
        "AIRBYTE_IMPL_MODULE=source_dockerfile_custom",
        "AIRBYTE_IMPL_PATH=SourceDockerfileCustom",
        "AIRBYTE_ENTRYPOINT=python /airbyte/integration_code/main_dev.py",
    ] {
        assert!(env.contains(&want.to_string()), "{want}: {env:?}");
    }
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["python", "/airbyte/integration_code/main_dev.py"])
    );
    let jq = docker_ok(&["run", "--rm", "--entrypoint", "jq", &tag.0, "--version"]);
    assert!(jq.starts_with("jq-"), "{jq}");
}

#[test]
fn a_connector_whose_behaviour_differs_is_left_untouched() {
    let ws = workspace();
    let name = "source-dockerfile-unmatched";
    let dir = ws.add_fixture(&format!("dockerfiles/{name}"));
    let before = files(ws.path());
    let out = migrate(&ws, &[name]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let first = format!("not migrated {name}: the image built from the base image differs from the Dockerfile's; the connector was left as it was");
    for want in [
        first.as_str(),
        "`spec` output differs:",
        "-      \"title\": \"Dockerfile Unmatched (release build)\",",
        "+      \"title\": \"Dockerfile Unmatched Spec\",",
        "no build customization can carry these differences",
    ] {
        assert!(stderr.contains(want), "{want} missing:\n{stderr}");
    }
    // Same Python, same installed versions: nothing to blame on the dependencies.
    assert!(!stderr.contains("likely cause"), "{stderr}");
    assert_eq!(files(ws.path()), before);
    assert!(dir.join("Dockerfile").is_file());

    // --json reports the same, machine-readable.
    let out = migrate(&ws, &[name, "--json"]);
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results[0]["status"], "refused", "{results}");
    assert_eq!(results[0]["differences"][0]["what"], "spec");
    assert_eq!(results[0]["likely_cause"], serde_json::Value::Null);
    assert_eq!(files(ws.path()), before);
}

/// Migrates one fixture that must not migrate; checks that nothing was written and returns
/// stderr and the `--json` result.
fn migrate_refused(name: &str) -> (String, serde_json::Value) {
    let ws = workspace();
    let dir = ws.add_fixture(&format!("dockerfiles/{name}"));
    let before = files(ws.path());
    let out = migrate(&ws, &[name]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(files(ws.path()), before);
    assert!(dir.join("Dockerfile").is_file());
    let out = migrate(&ws, &[name, "--json"]);
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(files(ws.path()), before);
    (stderr, results[0].clone())
}

#[test]
fn a_refusal_points_at_dependencies_that_resolve_differently() {
    // The Dockerfile image has six 1.16.0 (the wheel it ships); the base image build
    // resolves `six>=1.16` on PyPI to a newer release, whose version the spec shows.
    let (stderr, result) = migrate_refused("source-dockerfile-drift");
    assert_eq!(result["status"], "refused", "{result}");
    assert_eq!(result["differences"][0]["what"], "spec");
    let cause = &result["likely_cause"];
    // Both built on Python 3.11.2 here (no other Python is reachable offline); the real
    // case is python:3.9 against the base image's 3.11.
    assert_eq!(cause["dockerfile_python"], "3.11.2", "{cause}");
    assert_eq!(cause["base_image_python"], "3.11.2", "{cause}");
    // Only the connector's dependency: not the root image's pip, not poetry's packages.
    let changed = cause["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{cause}");
    assert_eq!(changed[0]["name"], "six");
    assert_eq!(changed[0]["dockerfile"], "1.16.0");
    let newer = changed[0]["base_image"].as_str().unwrap();
    assert_ne!(newer, "1.16.0");
    for want in [
        format!("+      \"title\": \"Dockerfile Drift Spec (six {newer})\","),
        "  likely cause: the dependencies resolve to other versions in the base image build (Python 3.11.2 in both); installed versions, Dockerfile image -> base image build:\n    six 1.16.0 -> ".to_string() + newer + "\n",
        "  pin the connector's requirements (setup.py or pyproject.toml) to versions that behave the same on Python 3.11.2".into(),
    ] {
        assert!(stderr.contains(&want), "{want} missing:\n{stderr}");
    }
}

#[test]
fn a_dockerfile_image_whose_spec_fails_is_said_so_not_called_a_difference() {
    // Its Dockerfile installs the package without its dependency.
    let (stderr, result) = migrate_refused("source-dockerfile-spec-fails");
    for want in [
        "failed source-dockerfile-spec-fails: the image built from the Dockerfile fails its own `spec` (exit code 1), so there is no behaviour to compare the base image build with; the connector was left as it was.",
        "    ModuleNotFoundError: No module named 'six'",
    ] {
        assert!(stderr.contains(want), "{want} missing:\n{stderr}");
    }
    assert!(!stderr.contains("differs"), "{stderr}");
    // Stopped before building from the base image.
    assert!(
        !stderr.contains("build and inspect the base image build"),
        "{stderr}"
    );
    assert_eq!(result["status"], "failed", "{result}");
}

#[test]
fn an_unpullable_root_image_is_named_with_its_from_line() {
    // source-google-sheets' shape: an Alpine root the engine cannot pull (here from a
    // registry address nobody answers at).
    let (stderr, result) = migrate_refused("source-dockerfile-unpullable");
    for want in [
        "source-dockerfile-unpullable/Dockerfile:1: cannot pull `127.0.0.1:9/library/python:3.9.11-alpine3.15`, the image this Dockerfile starts from",
        "  caused by: pulling 127.0.0.1:9/library/python:3.9.11-alpine3.15 failed:",
    ] {
        assert!(stderr.contains(want), "{want} missing:\n{stderr}");
    }
    assert_eq!(result["status"], "failed", "{result}");
}

#[test]
fn help_texts_do_not_end_mid_sentence() {
    // clap drops a help text's final period: "..., then ." would end in "then".
    for args in [&["--help"][..], &["migrate-to-base-image", "--help"]] {
        let out = cli(args);
        let help = text(&out.stdout);
        assert!(help.contains("--connectors-dir"), "{help}");
        for line in help.lines() {
            let l = line.trim_end();
            assert!(
                !(l.ends_with(" then") || l.ends_with(" ,") || l.ends_with(" .")),
                "{l}"
            );
        }
    }
}

#[test]
fn dry_run_on_the_latest_release_prints_the_diff_and_writes_nothing() {
    let ws = workspace();
    let name = "source-dockerfile-slim";
    ws.add_fixture(&format!("dockerfiles/{name}"));
    let before = files(ws.path());
    // Without --to: the newest published release of the python family, which the set-up
    // published (its base_ref).
    let out = cli(&[
        "--connectors-dir",
        ws.path().to_str().unwrap(),
        "migrate-to-base-image",
        "--pr",
        "4242",
        name,
        "--dry-run",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(files(ws.path()), before);
    let meta = format!("{}/metadata.yaml", ws.path().join(name).display());
    for want in [
        format!("--- a/{meta}\n+++ b/{meta}\n"),
        "+  connectorBuildOptions:\n".into(),
        format!("+    baseImage: {}\n", base_ref()),
        "-  dockerImageTag: 1.0.11 # released with the Dockerfile build\n+  dockerImageTag: 1.0.12 # released with the Dockerfile build\n".into(),
        "dockerfile-slim.md\n@@".into(),
        format!("+| 1.0.12  | {} | [4242]", today()),
        "Dockerfile\n+++ /dev/null\n".into(),
        "-FROM 127.0.0.1:5000/connector-build/debian-python:3.11-bookworm\n".into(),
    ] {
        assert!(stdout.contains(&want), "{want:?} missing:\n{stdout}");
    }
    assert!(text(&out.stderr).contains("would migrate source-dockerfile-slim: 1.0.11 -> 1.0.12"));
}

#[test]
fn a_failure_after_the_comparison_writes_nothing() {
    let ws = workspace();
    let name = "source-dockerfile-slim";
    ws.add_fixture(&format!("dockerfiles/{name}"));
    // A documentation page without a changelog table: the row cannot be added.
    std::fs::write(
        docs_page(&ws, name),
        "# Dockerfile Slim\n\nNo changelog yet.\n",
    )
    .unwrap();
    let before = files(ws.path());
    let out = migrate(&ws, &[name]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("dockerfile-slim.md: no changelog table"),
        "{stderr}"
    );
    assert_eq!(files(ws.path()), before);
}

#[test]
fn bump_version_edits_metadata_pyproject_and_changelog() {
    let ws = workspace();
    let name = "source-dockerfile-deps-first";
    let dir = ws.add_fixture(&format!("dockerfiles/{name}"));
    let docs = docs_page(&ws, name);
    let (meta, pyproject, page) = (
        read(&dir.join("metadata.yaml")),
        read(&dir.join("pyproject.toml")),
        read(&docs),
    );
    let bump = |kind: &str| {
        cli(&[
            "--connectors-dir",
            ws.path().to_str().unwrap(),
            "bump-version",
            kind,
            "Try | the candidate",
            name,
            "--pr",
            "77",
        ])
    };
    let out = bump("rc");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("bumped source-dockerfile-deps-first: 0.3.1 -> 0.3.2-rc.1"));
    let out = bump("rc");
    assert!(
        text(&out.stderr).contains("0.3.2-rc.1 -> 0.3.2-rc.2"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        read(&dir.join("metadata.yaml")),
        meta.replace("dockerImageTag: 0.3.1", "dockerImageTag: 0.3.2-rc.2")
    );
    assert_eq!(
        read(&dir.join("pyproject.toml")),
        pyproject.replace("version = \"0.3.1\"", "version = \"0.3.2-rc.2\"")
    );
    let row = |v: &str| {
        format!(
            "| {v} | {} | [77](https://github.com/airbytehq/airbyte/pull/77) | Try \\| the candidate |\n",
            today()
        )
    };
    assert_eq!(
        read(&docs),
        page.replace(
            "| 0.3.1 |",
            &format!("{}{}| 0.3.1 |", row("0.3.2-rc.2"), row("0.3.2-rc.1"))
        )
    );

    // A table whose rows are padded gets a padded row.
    let slim = "source-dockerfile-slim";
    ws.add_fixture(&format!("dockerfiles/{slim}"));
    let page = read(&docs_page(&ws, slim));
    let out = cli(&[
        "--connectors-dir",
        ws.path().to_str().unwrap(),
        "bump-version",
        "patch",
        "Fix",
        slim,
        "--pr",
        "77",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        read(&docs_page(&ws, slim)),
        page.replace(
            "| 1.0.11  |",
            &format!(
                "| 1.0.12  | {} | {:<56} | {:<44} |\n| 1.0.11  |",
                today(),
                "[77](https://github.com/airbytehq/airbyte/pull/77)",
                "Fix"
            )
        )
    );

    // An unknown bump is refused before anything is read.
    let out = bump("huge");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("major, minor, patch, rc or version:X.Y.Z"));
    let out = bump("version:1.0.0");
    assert!(out.status.success());
    assert!(read(&dir.join("metadata.yaml")).contains("dockerImageTag: 1.0.0 # released"));
}

/// Machine-specific values out of the analysis: image ids, the set-up's base image, the
/// workspace's path in errors.
fn redact(mut v: serde_json::Value, ws: &Path) -> serde_json::Value {
    for c in v["connectors"].as_array_mut().unwrap() {
        if let Some(e) = c["error"].as_str() {
            // The engine's own words for the failed pull vary with its version.
            let e = e.replace(ws.to_str().unwrap(), "[workspace]");
            let e = match e.split_once(" failed: ") {
                Some((head, _)) if head.contains("caused by: pulling") => {
                    format!("{head} failed: [engine message]")
                }
                _ => e,
            };
            c["error"] = e.into();
        }
        if c["image_id"].is_string() {
            c["image_id"] = "[image id]".into();
        }
        // The set-up's base image: its digest is this machine's.
        if c["base_image"].is_string() {
            c["base_image"] = "[base image]".into();
        }
    }
    v
}

#[test]
fn analysis_reports_variants_roots_env_groups_and_packages() {
    let ws = workspace();
    for name in [
        "source-dockerfile-custom",
        "source-dockerfile-deps-first",
        "source-dockerfile-multistage",
        "source-dockerfile-slim",
        "source-dockerfile-twin",
        "source-dockerfile-unmatched",
        "source-dockerfile-unpullable",
    ] {
        ws.add_fixture(&format!("dockerfiles/{name}"));
    }
    // One connector already on a base image, for the progress listing.
    ws.add_fixture("source-fixture-setup");
    let out_dir = ws.path().join("report");
    let out = cli(&[
        "--connectors-dir",
        ws.path().to_str().unwrap(),
        "analyze-dockerfiles",
        "--json",
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    // One connector's root image cannot be pulled: exit 1, the reports still written.
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for want in [
        // Each outcome as it comes, as `build` reports it.
        "[1/8] source-dockerfile-custom: built",
        "[7/8] source-dockerfile-unpullable: FAILED  (1 failed so far",
        "source-dockerfile-unpullable: not analysed: ",
        "Dockerfile:1: cannot pull `127.0.0.1:9/library/python:3.9.11-alpine3.15`",
        "; 1 of 8 connector(s) not analysed, listed above",
    ] {
        assert!(stderr.contains(want), "{want} missing:\n{stderr}");
    }
    let analysis: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&read(&out_dir.join("dockerfile-analysis.json"))).unwrap();
    assert_eq!(written, analysis);
    let markdown = read(&out_dir.join("dockerfile-analysis.md"));
    for want in [
        "| `7bc53df` | source-dockerfile-slim, source-dockerfile-twin | 2 | source-dockerfile-slim |",
        "| `AIRBYTE_IMPL_MODULE` | `source_dockerfile_custom` | source-dockerfile-custom |",
        "| source-dockerfile-custom | `127.0.0.1:5000/connector-build/debian-python:3.11-bookworm` | jq, libjq1, libonig5 |",
        // The notebook's id, whose text keeps the comment indented in a RUN continuation.
        "| `95e3387` | source-dockerfile-unpullable | 1 | source-dockerfile-unpullable |",
        "From the 6 image(s) built from the Dockerfiles; the 1 connector(s) under \"Not analysed\" are not covered.",
        // One line per cause.
        "/source-dockerfile-unpullable/Dockerfile:1: cannot pull `127.0.0.1:9/library/python:3.9.11-alpine3.15`, the image this Dockerfile starts from; check the name, that the engine reaches its registry (or load the image into the engine), then run again\n  - caused by: pulling 127.0.0.1:9/library/python:3.9.11-alpine3.15 failed: ",
    ] {
        assert!(markdown.contains(want), "{want} missing:\n{markdown}");
    }
    insta::assert_json_snapshot!("dockerfile_analysis", redact(analysis, ws.path()));
}
