//! Base image families end to end, on the real engine: build, sanity checks, publishing rules
//! against a private registry started for the test, `upgrade-base-image` to the latest
//! release, registry failures, the root image, pulls through a mirror, and versions published
//! for linux/amd64 and linux/arm64 as one index.
//!
//! The declarations are copies of the repository's with a repository name private to the
//! test, so tags never collide with the set-up's; the builds reuse the set-up's layer cache.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A unique repository for one test's base image family.
fn test_repository(test: &str) -> String {
    format!(
        "connector-build-test/{test}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The repository's declarations, copied, with `repository` as the python family's.
struct Decl {
    dir: tempfile::TempDir,
    repository: String,
}

impl Decl {
    fn new(test: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repository = test_repository(test);
        for name in ["roots.toml", "python.toml"] {
            let text = std::fs::read_to_string(repo_root().join("base-images").join(name)).unwrap();
            let text = text.replace(
                "repository = \"airbyte/python-connector-base\"",
                &format!("repository = \"{repository}\""),
            );
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Decl { dir, repository }
    }

    fn python(&self) -> PathBuf {
        self.dir.path().join("python.toml")
    }

    fn edit(&self, f: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(self.python()).unwrap();
        std::fs::write(self.python(), f(text)).unwrap();
    }

    /// Declares `version` above the others: the newest block with `version` and one more
    /// env variable (so only the last layer differs and the build is quick).
    fn add_version(&self, version: &str) {
        self.edit(|text| {
            let start = text.find("\n[[versions]]").unwrap() + 1;
            let end = text[start + 1..]
                .find("\n[[versions]]")
                .map_or(text.len(), |i| start + 1 + i + 1);
            // Without the previous test release's own marks.
            let block: String = text[start..end]
                .lines()
                .filter(|l| !l.starts_with("CONNECTOR_BUILD_TEST_VERSION"))
                .map(|l| format!("{l}\n"))
                .collect();
            let old_version = block
                .lines()
                .find_map(|l| l.strip_prefix("version = "))
                .unwrap()
                .to_string();
            let new = block
                .replace(
                    &format!("version = {old_version}"),
                    &format!("version = \"{version}\""),
                )
                .replace(
                    "[versions.env]\n",
                    &format!("[versions.env]\nCONNECTOR_BUILD_TEST_VERSION = \"{version}\"\n"),
                )
                .replace(
                    "changelog = \"",
                    &format!("changelog = \"Test release {version}. "),
                );
            format!("{}{new}\n{}", &text[..start], &text[start..])
        });
    }

    fn local_tag(&self, version: &str) -> String {
        format!("{}:{version}", self.repository)
    }
}

impl Drop for Decl {
    fn drop(&mut self) {
        // The test family's tags, local and pushed, and the digests the engine remembers.
        let out = docker(&[
            "images",
            "--digests",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.Repository}}@{{.Digest}}",
        ]);
        for reference in text(&out.stdout)
            .split_whitespace()
            .filter(|r| r.contains(&self.repository) && !r.contains("<none>"))
        {
            let _ = docker(&["image", "rm", reference]);
        }
    }
}

/// A machine state folder for one test, with the set-up's root image record in it (builds
/// need it), so publishing records never touch the machine's own.
struct TestState {
    dir: tempfile::TempDir,
}

impl TestState {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let from = Path::new("/var/lib/connector-build/root-images/debian-python.json");
        assert!(
            from.is_file(),
            "no root image record {}: run `bash scripts/setup.sh` first",
            from.display()
        );
        std::fs::create_dir_all(dir.path().join("root-images")).unwrap();
        std::fs::copy(from, dir.path().join("root-images/debian-python.json")).unwrap();
        // The arm64 root's record too, where the set-up's arm64 part has made it.
        let arm64 = from.with_file_name("debian-python-linux-arm64.json");
        if arm64.is_file() {
            std::fs::copy(
                arm64,
                dir.path()
                    .join("root-images/debian-python-linux-arm64.json"),
            )
            .unwrap();
        }
        TestState { dir }
    }

    fn published(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("base-images/published.json")).ok()
    }
}

/// `connector-build base-images ...` with the test's declarations, registry and state.
fn base_images(decl: &Decl, state: &TestState, registry: &str, args: &[&str]) -> Output {
    let mut full = vec![
        "base-images",
        "--declarations",
        decl.dir.path().to_str().unwrap(),
        "--registry",
        registry,
    ];
    full.extend_from_slice(args);
    Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(&full)
        .env("NO_COLOR", "1")
        .env("CONNECTOR_BUILD_STATE_DIR", state.dir.path())
        .output()
        .expect("run connector-build")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn list_json(decl: &Decl, state: &TestState, registry: &str) -> serde_json::Value {
    let out = base_images(decl, state, registry, &["list", "python", "--json"]);
    serde_json::from_str(&ok(&out)).unwrap()
}

fn published_versions(list: &serde_json::Value) -> Vec<(String, Option<String>)> {
    list[0]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap().to_string(),
                v["digest"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn check_reports_each_check_and_fails_on_a_wrongly_declared_pip_version() {
    let decl = Decl::new("check");
    let state = TestState::new();
    // Built from the repository's declaration (the set-up's cache makes this quick).
    let out = base_images(&decl, &state, "127.0.0.1:5000", &["build", "python"]);
    assert_eq!(ok(&out).trim(), decl.local_tag("1.0.0"));
    let out = base_images(&decl, &state, "127.0.0.1:5000", &["check", "python"]);
    let report = ok(&out);
    for want in [
        "ok    timezone",
        "ok    python ",
        "ok    pip ",
        "ok    poetry ",
        "ok    env POETRY_VIRTUALENVS_CREATE",
        "ok    default user ",
        "ok    user airbyte ",
        "ok    airbyte writes /airbyte ",
        "ok    airbyte cannot write /etc ",
        "ok    tool curl ",
        "checks passed",
    ] {
        assert!(report.contains(want), "`{want}` missing:\n{report}");
    }

    // The declaration now says another pip than the image holds.
    decl.edit(|t| t.replace("pip = \"23.2.1\"", "pip = \"23.3.1\""));
    let out = base_images(&decl, &state, "127.0.0.1:5000", &["check", "python"]);
    let report = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{report}\n{stderr}");
    let pip_line = report
        .lines()
        .find(|l| l.contains(" pip "))
        .unwrap_or_else(|| panic!("no pip line:\n{report}"));
    assert!(pip_line.trim_start().starts_with("FAIL"), "{pip_line}");
    assert!(
        pip_line.contains("declared 23.3.1, image has 23.2.1"),
        "{pip_line}"
    );
    assert!(report.contains("ok    poetry "), "{report}");
    assert!(report.contains("1 of "), "{report}");
    assert!(stderr.contains("1 check(s) failed"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // So does a wrong uid, in the same report.
    decl.edit(|t| t.replace("uid = 1000", "uid = 1001"));
    let out = base_images(
        &decl,
        &state,
        "127.0.0.1:5000",
        &["check", "python", "--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["pip", "user airbyte"], "{json}");
}

#[test]
fn publishing_follows_the_release_rules_and_upgrade_picks_the_latest_release() {
    let mut registry = TestRegistry::start();
    let r = registry.addr.clone();
    let decl = Decl::new("publish");
    let state = TestState::new();
    decl.add_version("1.1.0");
    let list = list_json(&decl, &state, &r);
    assert_eq!(
        published_versions(&list),
        [("1.1.0".to_string(), None), ("1.0.0".to_string(), None)]
    );

    // A new version while the previous one is unpublished: refused, nothing pushed.
    let out = base_images(&decl, &state, &r, &["publish", "python", "1.1.0"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the previous version 1.0.0 is not published"),
        "{stderr}"
    );
    assert!(published_versions(&list_json(&decl, &state, &r))
        .iter()
        .all(|(_, d)| d.is_none()));
    assert_eq!(state.published(), None);

    // The first release, then the same again: a no-op.
    let out = base_images(&decl, &state, &r, &["publish", "python", "1.0.0"]);
    let v100 = ok(&out).trim().to_string();
    assert!(
        v100.starts_with(&format!("{r}/{}:1.0.0@sha256:", decl.repository)),
        "{v100}"
    );
    assert!(state.published().unwrap().contains(&v100));
    let out = base_images(&decl, &state, &r, &["publish", "python", "1.0.0"]);
    assert_eq!(ok(&out).trim(), v100);
    assert!(text(&out.stderr).contains("already published"));

    // A connector on the family (under another registry: the family is the repository)
    // and one without a base image.
    let ws = Workspace::new();
    let conn = ws.add_fixture("source-fixture-requirements");
    let meta = conn.join("metadata.yaml");
    let original = std::fs::read_to_string(&meta).unwrap();
    let on_family = original.replace(
        &base_ref(),
        &format!(
            "docker.io/{}:0.9.0@sha256:{}",
            decl.repository,
            "0".repeat(64)
        ),
    );
    std::fs::write(&meta, &on_family).unwrap();
    let bare = ws.add_fixture("source-fixture-dockerfile");
    std::fs::remove_file(bare.join("Dockerfile")).unwrap();
    let try_upgrade = |extra: &[&str]| {
        let mut args = vec![
            "--connectors-dir",
            ws.path().to_str().unwrap(),
            "upgrade-base-image",
            "--declarations",
            decl.dir.path().to_str().unwrap(),
            "--registry",
            &r,
        ];
        args.extend_from_slice(extra);
        cli(&args)
    };
    let upgrade = |extra: &[&str]| {
        let out = try_upgrade(extra);
        ok(&out);
        text(&out.stderr)
    };
    let base_of = |dir: &Path| {
        let m = std::fs::read_to_string(dir.join("metadata.yaml")).unwrap();
        m.lines()
            .find_map(|l| l.trim().strip_prefix("baseImage: "))
            .map(str::to_string)
    };
    upgrade(&[]);
    assert_eq!(base_of(&conn).as_deref(), Some(v100.as_str()));
    // Only the value changed: comments, order and layout are the same.
    assert_eq!(
        std::fs::read_to_string(&meta).unwrap(),
        on_family.replace(
            &format!(
                "docker.io/{}:0.9.0@sha256:{}",
                decl.repository,
                "0".repeat(64)
            ),
            &v100
        )
    );
    assert_eq!(base_of(&bare), None, "no key without --set-if-not-exists");
    upgrade(&["--set-if-not-exists"]);
    assert_eq!(base_of(&bare).as_deref(), Some(v100.as_str()));

    // The next release; upgrade follows it.
    let out = base_images(&decl, &state, &r, &["publish", "python"]);
    let v110 = ok(&out).trim().to_string();
    assert!(v110.contains(":1.1.0@sha256:"), "{v110}");
    upgrade(&[]);
    assert_eq!(base_of(&conn).as_deref(), Some(v110.as_str()));

    // A pre-release is published but never chosen.
    decl.add_version("1.2.0-rc.1");
    let out = base_images(&decl, &state, &r, &["publish", "python"]);
    let rc = ok(&out).trim().to_string();
    assert!(rc.contains(":1.2.0-rc.1@sha256:"), "{rc}");
    let stderr = upgrade(&[]);
    assert_eq!(base_of(&conn).as_deref(), Some(v110.as_str()), "{stderr}");
    assert!(stderr.contains("already up to date"), "{stderr}");

    // The upgraded connector builds on the published release and answers spec.
    let tag = TestTag::new("on-published-base");
    let (results, out) = build_json(&[conn.to_str().unwrap(), "--tag", &tag.0]);
    assert_eq!(results[0]["status"], "built", "{}", text(&out.stderr));
    assert_eq!(
        results[0]["base_digest"].as_str(),
        v110.rsplit_once('@').map(|(_, d)| d)
    );
    run_spec(&tag.0);
    assert!(
        image_config(&tag.0)["Env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("CONNECTOR_BUILD_TEST_VERSION=1.1.0")),
        "built on 1.1.0"
    );

    // Overwriting a published tag with another image needs --force.
    decl.edit(|t| {
        t.replacen(
            "POETRY_NO_INTERACTION = \"1\"",
            "POETRY_NO_INTERACTION = \"1\"\nCONNECTOR_BUILD_TEST_REBUILT = \"yes\"",
            3,
        )
    });
    let out = base_images(&decl, &state, &r, &["publish", "python", "1.0.0"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("already published") && stderr.contains("--force"),
        "{stderr}"
    );
    let before = published_versions(&list_json(&decl, &state, &r));
    let out = base_images(
        &decl,
        &state,
        &r,
        &["publish", "python", "1.0.0", "--force"],
    );
    let forced = ok(&out).trim().to_string();
    assert_ne!(forced, v100);
    let after = published_versions(&list_json(&decl, &state, &r));
    assert_ne!(before[2], after[2], "1.0.0 has a new digest");
    assert_eq!(before[1], after[1], "1.1.0 is untouched");

    // The registry goes away: clear errors, nothing recorded.
    registry.stop();
    let recorded = state.published();
    decl.add_version("1.2.0");
    for args in [&["publish", "python"][..], &["list", "python"][..]] {
        let out = base_images(&decl, &state, &r, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot read {r}/")) && stderr.contains("connection refused"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(state.published(), recorded);
    let out = try_upgrade(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(base_of(&conn).as_deref(), Some(v110.as_str()));
}

#[test]
fn a_registry_that_answers_errors_is_a_clear_error_and_nothing_is_recorded() {
    let addr = failing_registry();
    let decl = Decl::new("failing");
    let state = TestState::new();
    for args in [&["publish", "python"][..], &["list"][..]] {
        let out = base_images(&decl, &state, &addr, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot read {addr}/")) && stderr.contains("500"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert_eq!(state.published(), None);
}

#[test]
fn a_push_the_registry_refuses_is_a_clear_error_and_nothing_is_recorded() {
    // Reads work (so publishing gets as far as the push); writes answer an error.
    let registry =
        TestRegistry::start_with("  maintenance:\n    readonly:\n      enabled: true\n", None);
    let decl = Decl::new("readonly");
    let state = TestState::new();
    let out = base_images(
        &decl,
        &state,
        &registry.addr,
        &["publish", "python", "1.0.0"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let pushed = format!("pushing {}/{}:1.0.0 failed", registry.addr, decl.repository);
    assert!(stderr.contains(&pushed), "{stderr}");
    assert!(stderr.contains("HTTP 405"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(state.published(), None);
    assert_eq!(
        published_versions(&list_json(&decl, &state, &registry.addr)),
        [("1.0.0".to_string(), None)]
    );
}

#[test]
fn the_root_image_of_the_current_recipe_is_reused_not_rebuilt() {
    let record = std::fs::read_to_string("/var/lib/connector-build/root-images/debian-python.json")
        .expect("the set-up records the root image");
    let started = Instant::now();
    let out = cli(&[
        "base-images",
        "root",
        "build",
        "debian-python",
        "--registry",
        "127.0.0.1:5000",
    ]);
    let reference = ok(&out).trim().to_string();
    assert!(record.contains(&reference), "{record} vs {reference}");
    assert!(
        text(&out.stderr).contains("registry cached"),
        "{}",
        text(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    // The engine holds it under exactly that digest.
    let id = docker_ok(&["image", "inspect", &reference, "--format", "{{.Id}}"]);
    assert!(id.starts_with("sha256:"));
}

#[test]
fn a_docker_io_reference_builds_through_a_mirror_and_a_wrong_digest_fails() {
    // The base image, published under docker.io's layout in the local registry, which then
    // serves as docker.io's mirror.
    let repo = "127.0.0.1:5000/library/connector-build-mirror-test";
    let tag = format!("{repo}:{}", std::process::id());
    docker_ok(&["tag", &base_ref(), &tag]);
    let pushed = docker_ok(&["push", &tag]);
    let digest = pushed
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in: {pushed}"))
        .to_string();
    // Forget it locally under the mirror's name, so the build has to pull it.
    docker_ok(&["image", "rm", &tag]);
    let _ = docker(&["image", "rm", &format!("{repo}@{digest}")]);
    assert!(!image_exists(&format!("{repo}@{digest}")));

    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-requirements");
    let meta = dir.join("metadata.yaml");
    let good = std::fs::read_to_string(&meta).unwrap();
    let via_hub = format!("docker.io/library/connector-build-mirror-test@{digest}");
    std::fs::write(&meta, good.replace(&base_ref(), &via_hub)).unwrap();
    // Code no earlier build had, so the build is not one cache hit and resolves its base.
    let init = dir.join("source_fixture_requirements/__init__.py");
    let mut code = std::fs::read_to_string(&init).unwrap();
    code.push_str(&format!(
        "\n# mirror test {:?}\n",
        std::time::SystemTime::now()
    ));
    std::fs::write(&init, code).unwrap();
    let out_tag = TestTag::new("mirror");
    let (results, out) = build_json(&[
        dir.to_str().unwrap(),
        "--tag",
        &out_tag.0,
        "--mirror",
        "docker.io=127.0.0.1:5000",
    ]);
    assert_eq!(results[0]["status"], "built", "{}", text(&out.stderr));
    assert_eq!(results[0]["base_digest"], digest.as_str());
    assert_eq!(
        results[0]["steps"][0]["cached"], false,
        "the base was pulled"
    );
    assert!(image_exists(&format!("{repo}@{digest}")));
    run_spec(&out_tag.0);

    // A digest the mirror does not have: a clear failure naming both addresses.
    let wrong = format!("sha256:{}", "1".repeat(64));
    std::fs::write(
        &meta,
        good.replace(
            &base_ref(),
            &format!("docker.io/library/connector-build-mirror-test@{wrong}"),
        ),
    )
    .unwrap();
    let wrong_tag = TestTag::new("mirror-wrong");
    let out = cli(&[
        "build",
        dir.to_str().unwrap(),
        "--tag",
        &wrong_tag.0,
        "--mirror",
        "docker.io=127.0.0.1:5000",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("pulling {repo}@{wrong}"))
            && stderr.contains(&format!(
                "the mirror's copy of docker.io/library/connector-build-mirror-test@{wrong}"
            )),
        "{stderr}"
    );
    assert!(!image_exists(&wrong_tag.0));
}

/// The index under `reference`, read with skopeo: each platform's architecture (from the
/// listed image's own config) and digest.
fn index_images(registry: &str, repository: &str, tag: &str) -> Vec<(String, String)> {
    let reference = format!("{registry}/{repository}:{tag}");
    let raw = raw_manifest(&reference).unwrap_or_else(|| panic!("{reference} is not published"));
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{reference}: {index}"
    );
    let mut out = Vec::new();
    for m in index["manifests"].as_array().unwrap() {
        let digest = m["digest"].as_str().unwrap().to_string();
        let config = raw_config(&format!("{registry}/{repository}@{digest}"));
        assert_eq!(
            m["platform"]["architecture"], config["architecture"],
            "{reference}"
        );
        out.push((config["architecture"].as_str().unwrap().to_string(), digest));
    }
    out
}

/// The digest skopeo reads for `reference`.
fn digest_of(reference: &str) -> String {
    let raw = raw_manifest(reference).unwrap_or_else(|| panic!("{reference} is not published"));
    sha256(&raw)
}

#[test]
fn a_version_published_for_both_platforms_is_one_index_that_keeps_the_amd64_image() {
    arm64_ready();
    let decl = Decl::new("index");
    let state = TestState::new();
    let registry = TestRegistry::start();
    let repo = &decl.repository;
    // First linux/amd64 alone, as the set-up's critical path does.
    let amd64 = ok(&base_images(
        &decl,
        &state,
        &registry.addr,
        &["publish", "python"],
    ));
    let amd64_digest = amd64.trim().rsplit_once('@').unwrap().1.to_string();
    let both = ["--platform", "linux/amd64,linux/arm64", "publish", "python"];
    let out = base_images(&decl, &state, &registry.addr, &both);
    let index_ref = ok(&out).lines().last().unwrap().to_string();
    assert!(
        text(&out.stderr).contains("the tag held the linux/amd64 image alone"),
        "{}",
        text(&out.stderr)
    );
    let index_digest = index_ref.rsplit_once('@').unwrap().1;
    assert_eq!(
        digest_of(&format!("{}/{repo}:1.0.0", registry.addr)),
        index_digest
    );
    // One entry per platform, each its config's architecture; the amd64 one is the image
    // the tag held before, the arm64 one the image under `1.0.0-linux-arm64`.
    let images = index_images(&registry.addr, repo, "1.0.0");
    let arm64_digest = digest_of(&format!("{}/{repo}:1.0.0-linux-arm64", registry.addr));
    assert_eq!(
        images,
        [
            ("amd64".to_string(), amd64_digest.clone()),
            ("arm64".to_string(), arm64_digest)
        ]
    );
    // Again, and one platform alone: nothing changes, and the address is the index's.
    let again = base_images(&decl, &state, &registry.addr, &both);
    assert_eq!(ok(&again).lines().last().unwrap(), index_ref);
    assert!(text(&again.stderr).contains("index already published"));
    let alone = ok(&base_images(
        &decl,
        &state,
        &registry.addr,
        &["publish", "python"],
    ));
    assert_eq!(alone.trim(), index_ref);
    // What a user pulls by the tag on each platform.
    let tagged = format!("{}/{repo}:1.0.0", registry.addr);
    for (platform, machine) in [("linux/arm64", "aarch64"), ("linux/amd64", "x86_64")] {
        docker_ok(&["pull", "--quiet", "--platform", platform, &tagged]);
        let uname = docker_ok(&[
            "run",
            "--rm",
            "--platform",
            platform,
            &tagged,
            "uname",
            "-m",
        ]);
        assert_eq!(uname.trim(), machine);
    }
}

#[test]
fn the_setup_publishes_every_root_and_family_as_one_index_over_both_platforms() {
    setup_arm64_wrote(ARM64_JAVA_REF_FILE);
    let registry = "127.0.0.1:5000";
    for (repository, tag) in [
        ("connector-build/debian-python", "3.11-bookworm"),
        ("connector-build/debian-java", "17-bookworm"),
        ("airbyte/python-connector-base", "1.0.0"),
        ("airbyte/java-connector-base", "1.0.0"),
        ("airbyte/source-declarative-manifest", "7.39.1"),
    ] {
        let images = index_images(registry, repository, tag);
        let arches: Vec<&str> = images.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(arches, ["amd64", "arm64"], "{repository}:{tag}");
        // The arm64 entry is the image checked under emulation and tagged for it.
        let arm64 = digest_of(&format!("{registry}/{repository}:{tag}-linux-arm64"));
        assert_eq!(images[1].1, arm64, "{repository}:{tag}");
    }
}
