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

    // The Dockerfile is gone; metadata.yaml has baseImage inserted and the tag bumped, and
    // not one other byte changed.
    assert!(!dir.join("Dockerfile").exists());
    let meta_before = String::from_utf8(before[Path::new("metadata.yaml")].clone()).unwrap();
    let expected = meta_before
        .replace(
            &format!("dockerImageTag: {} ", expect.old),
            &format!("dockerImageTag: {} ", expect.new),
        )
        .replace(
            "  connectorType: source\n",
            &format!(
                "  connectorBuildOptions:\n    baseImage: {}\n  connectorType: source\n",
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
        let row = format!(
            "| {} | {} | [4242](https://github.com/airbytehq/airbyte/pull/4242) | Base image migration: remove Dockerfile and use the python-connector-base image |\n",
            expect.new,
            today()
        );
        let after = read(&docs);
        let at = after.find(&row).expect("the changelog row");
        // Right under the table's separator row, before the previous release.
        let (head, tail) = after.split_at(at);
        assert!(head.ends_with("|\n") && head.trim_end().ends_with('|'));
        assert!(
            tail[row.len()..].starts_with(&format!("| {}", expect.old)),
            "{after}"
        );
        assert_eq!(format!("{head}{}", &tail[row.len()..]), docs_before);
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
    assert_eq!(files(ws.path()), before);
    assert!(dir.join("Dockerfile").is_file());

    // --json reports the same, machine-readable.
    let out = migrate(&ws, &[name, "--json"]);
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results[0]["status"], "refused", "{results}");
    assert_eq!(results[0]["differences"][0]["what"], "spec");
    assert_eq!(files(ws.path()), before);
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
        format!("+| 1.0.12 | {} | [4242]", today()),
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

    // An unknown bump is refused before anything is read.
    let out = bump("huge");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("major, minor, patch, rc or version:X.Y.Z"));
    let out = bump("version:1.0.0");
    assert!(out.status.success());
    assert!(read(&dir.join("metadata.yaml")).contains("dockerImageTag: 1.0.0 # released"));
}

/// Machine-specific values out of the analysis: image ids and the set-up's base image.
fn redact(mut v: serde_json::Value) -> serde_json::Value {
    for c in v["connectors"].as_array_mut().unwrap() {
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
    assert!(out.status.success(), "{}", text(&out.stderr));
    let analysis: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&read(&out_dir.join("dockerfile-analysis.json"))).unwrap();
    assert_eq!(written, analysis);
    let markdown = read(&out_dir.join("dockerfile-analysis.md"));
    for want in [
        "| `7bc53df` | source-dockerfile-slim, source-dockerfile-twin | 2 | source-dockerfile-slim |",
        "| `AIRBYTE_IMPL_MODULE` | `source_dockerfile_custom` | source-dockerfile-custom |",
        "| source-dockerfile-custom | `127.0.0.1:5000/connector-build/debian-python:3.11-bookworm` | jq, libjq1, libonig5 |",
    ] {
        assert!(markdown.contains(want), "{want} missing:\n{markdown}");
    }
    insta::assert_json_snapshot!("dockerfile_analysis", redact(analysis));
}
