//! The cache shared through a registry (`--cache-registry`) and `cache prune`, on a real
//! engine of the test's own (scripts/second-engine.sh, started empty) and the set-up's
//! registry at 127.0.0.1:5000. Each test uses a cache repository of its own.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;

use common::*;

const REGISTRY: &str = "127.0.0.1:5000";
const CONNECTOR: &str = "source-fixture-requirements";

/// The tests share the engine's name and data root: one at a time.
static ENGINE: Mutex<()> = Mutex::new(());

fn engine() -> ExtraEngine {
    ExtraEngine::start("cb-cicache-docker", "cb-cicache-br", "172.31.237")
}

/// A cache repository of this test's own, its manifests deleted from the registry at the end.
struct CacheRepo(String);

impl CacheRepo {
    fn new(test: &str) -> CacheRepo {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        CacheRepo(format!(
            "cicache-test/{test}-{}-{nanos}",
            std::process::id()
        ))
    }

    fn flag(&self) -> String {
        format!("{REGISTRY}/{}", self.0)
    }

    /// The registry's tags of the repository, sorted.
    fn tags(&self) -> Vec<String> {
        let body = curl(&[&format!("http://{REGISTRY}/v2/{}/tags/list", self.0)]);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let mut tags: Vec<String> = v["tags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        tags
    }
}

impl Drop for CacheRepo {
    fn drop(&mut self) {
        for tag in self.tags() {
            let url = format!("http://{REGISTRY}/v2/{}/manifests/{tag}", self.0);
            let headers = curl(&[
                "-I",
                "-H",
                "Accept: application/vnd.docker.distribution.manifest.v2+json",
                &url,
            ]);
            if let Some(digest) = headers.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .starts_with("docker-content-digest:")
                    .then(|| l.split_once(':').unwrap().1.trim().to_string())
            }) {
                let url = format!("http://{REGISTRY}/v2/{}/manifests/{digest}", self.0);
                curl(&["-X", "DELETE", &url]);
            }
        }
    }
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").arg("-s").args(args).output().unwrap();
    text(&out.stdout)
}

/// `build` of the workspace's connector on `host` with the registry cache: (results, output).
fn build(ws: &Path, host: &str, tag: &str, extra: &[&str]) -> (serde_json::Value, Output) {
    let mut args = vec![
        "--connectors-dir",
        ws.to_str().unwrap(),
        "build",
        "--json",
        CONNECTOR,
        "--engine",
        host,
        "--tag",
        tag,
        // Warnings go to stderr (with --json alone, progress and warnings are quiet).
        "--progress",
        "plain",
    ];
    args.extend_from_slice(extra);
    let out = cli(&args);
    (results(&out.stdout), out)
}

/// The engine's clock, for `docker events --since/--until`.
fn engine_time(engine: &ExtraEngine) -> String {
    text(
        &engine
            .docker(&["system", "info", "--format", "{{.SystemTime}}"])
            .stdout,
    )
    .trim()
    .to_string()
}

/// Container events (`create`, `start`, ...) on the engine between `since` and now.
fn container_events(engine: &ExtraEngine, since: &str, action: &str) -> Vec<String> {
    let until = engine_time(engine);
    let out = engine.docker(&[
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--filter",
        "type=container",
        "--filter",
        &format!("event={action}"),
        "--format",
        "{{.ID}}",
    ]);
    text(&out.stdout).lines().map(String::from).collect()
}

fn edit_code(dir: &Path, note: &str) {
    let main = dir.join("main.py");
    let mut code = std::fs::read_to_string(&main).unwrap();
    code.push_str(&format!("\n# {note}\n"));
    std::fs::write(&main, code).unwrap();
}

fn cache_entries(engine: &ExtraEngine) -> Vec<String> {
    let out = engine.docker(&["images", "connector-build-cache", "--format", "{{.Tag}}"]);
    let mut tags: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    tags.sort();
    tags
}

fn warnings(out: &Output) -> Vec<String> {
    text(&out.stderr)
        .lines()
        .filter(|l| l.contains("registry cache"))
        .map(String::from)
        .collect()
}

#[test]
fn a_fresh_engine_reuses_the_registry_cache() {
    let _one_at_a_time = ENGINE.lock().unwrap_or_else(|p| p.into_inner());
    let repo = CacheRepo::new("fresh");
    let ws = Workspace::new();
    let dir = ws.add_fixture(CONNECTOR);
    edit_code(&dir, &format!("unique to {}", repo.0));
    let tag = "cicache-test";
    let cache = repo.flag();
    let rw = ["--cache-registry", cache.as_str()];

    // A first runner builds and fills the registry cache.
    let first = engine();
    let (r, out) = build(ws.path(), &first.host, tag, &rw);
    assert_eq!(r[0]["status"], "built", "{}", text(&out.stderr));
    let pushed = repo.tags();
    // The install layer, the code layer and the finished image (under two keys).
    assert!(pushed.len() >= 3, "{pushed:?}");
    assert!(pushed.contains(&r[0]["cache_key"].as_str().unwrap().to_string()));
    drop(first);

    // A fresh runner, empty cache: nothing changed is a pull and a tag, no container.
    let fresh = engine();
    assert!(cache_entries(&fresh).is_empty());
    let since = engine_time(&fresh);
    let (r, out) = build(ws.path(), &fresh.host, tag, &rw);
    let stderr = text(&out.stderr);
    assert_eq!(r[0]["status"], "built", "{stderr}");
    assert_eq!(r[0]["containers_started"], 0, "{stderr}");
    assert!(container_events(&fresh, &since, "create").is_empty());
    assert!(warnings(&out).is_empty(), "{stderr}");
    run_spec_on(&fresh.host, &format!("airbyte/{CONNECTOR}:{tag}"));

    // A code edit installs nothing: the install layer comes from the registry.
    edit_code(&dir, "a code edit");
    let since = engine_time(&fresh);
    let (r, out) = build(ws.path(), &fresh.host, tag, &rw);
    let stderr = text(&out.stderr);
    assert_eq!(r[0]["status"], "built", "{stderr}");
    assert_eq!(
        step(&r[0], "install dependencies")["cached"],
        true,
        "{stderr}"
    );
    // Only the smoke test runs a container (the code layer is written without running one).
    assert_eq!(
        container_events(&fresh, &since, "start").len(),
        1,
        "{stderr}"
    );
    let after_rw = repo.tags();
    assert!(after_rw.len() > pushed.len(), "{after_rw:?}");

    // Read-only (a fork's pull request): builds, pushes nothing.
    edit_code(&dir, "a fork's edit");
    let (r, out) = build(
        ws.path(),
        &fresh.host,
        tag,
        &["--cache-registry", &cache, "--cache-mode", "read"],
    );
    assert_eq!(r[0]["status"], "built", "{}", text(&out.stderr));
    assert_eq!(repo.tags(), after_rw);

    // An entry that does not carry its key is refused and the step built instead: the
    // finished image's tag pointed at the base image.
    edit_code(&dir, "a tampered entry");
    let (r, _) = build(ws.path(), &fresh.host, tag, &rw);
    let key = r[0]["cache_key"].as_str().unwrap().to_string();
    let image = r[0]["image_id"].as_str().unwrap().to_string();
    let remote = format!("{cache}:{key}");
    let base = base_ref();
    assert!(fresh.docker(&["tag", &base, &remote]).status.success());
    assert!(fresh.docker(&["push", &remote]).status.success());
    // This engine forgets the finished image.
    assert!(fresh
        .docker(&["rmi", &format!("connector-build-cache:{key}"), &remote])
        .status
        .success());
    let (r, out) = build(ws.path(), &fresh.host, tag, &rw);
    let stderr = text(&out.stderr);
    assert_eq!(r[0]["status"], "built", "{stderr}");
    assert_eq!(r[0]["image_id"], image.as_str(), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");

    // A registry that is down: one warning, a local build.
    edit_code(&dir, "the registry is down");
    let (r, out) = build(
        ws.path(),
        &fresh.host,
        tag,
        &["--cache-registry", "127.0.0.1:9/nowhere"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(r[0]["status"], "built", "{stderr}");
    assert_eq!(warnings(&out).len(), 1, "{stderr}");
    assert!(out.status.success());
}

#[test]
fn prune_removes_only_what_it_should() {
    let _one_at_a_time = ENGINE.lock().unwrap_or_else(|p| p.into_inner());
    let ws = Workspace::new();
    let dir = ws.add_fixture(CONNECTOR);
    let engine = engine();
    let repo = CacheRepo::new("prune");
    let cache = repo.flag();
    // Three builds: install layer shared, three code layers and finished images; the
    // registry cache gets the same entries.
    for i in 0..3 {
        edit_code(&dir, &format!("build {i} {}", repo.0));
        let (r, out) = build(
            ws.path(),
            &engine.host,
            "cicache-prune",
            &["--cache-registry", &cache],
        );
        assert_eq!(r[0]["status"], "built", "{}", text(&out.stderr));
    }
    let in_registry = repo.tags();
    assert_eq!(in_registry.len(), 7, "{in_registry:?}");
    let before = cache_entries(&engine);
    let prune = |extra: &[&str]| {
        let mut args = vec!["--engine", engine.host.as_str(), "cache", "prune"];
        args.extend_from_slice(extra);
        cli(&args)
    };

    let dry = prune(&["--keep-last", "1", "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let listed: Vec<String> = text(&dry.stdout).lines().map(String::from).collect();
    // The two older builds' finished images (their last layer holds the code).
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|l| l.starts_with("would remove")));
    assert_eq!(cache_entries(&engine), before);

    let real = prune(&["--keep-last", "1"]);
    assert!(real.status.success(), "{}", text(&real.stderr));
    let after = cache_entries(&engine);
    // Each older build's two tags (its last layer's key and its image key) went.
    assert_eq!(after.len(), before.len() - 4, "{before:?} -> {after:?}");
    // The tagged image and all it uses are kept: a rebuild starts no container.
    let (r, out) = build(ws.path(), &engine.host, "cicache-prune", &[]);
    assert_eq!(r[0]["containers_started"], 0, "{}", text(&out.stderr));

    // Everything older than now, but the tagged image's entries stay.
    let all = prune(&["--older-than", "0s"]);
    assert!(all.status.success(), "{}", text(&all.stderr));
    assert_eq!(cache_entries(&engine), after);

    // The registry cache by the same rules: the engine's tagged image protects its entries.
    let dry = prune(&[
        "--older-than",
        "0s",
        "--cache-registry",
        &cache,
        "--dry-run",
    ]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert_eq!(repo.tags(), in_registry);
    let real = prune(&["--older-than", "0s", "--cache-registry", &cache]);
    assert!(real.status.success(), "{}", text(&real.stderr));
    assert_eq!(
        text(&real.stdout).lines().count(),
        2,
        "{}",
        text(&real.stdout)
    );
    let left = repo.tags();
    assert_eq!(left.len(), 3, "{left:?}");
    // What is left is what the engine keeps: the install layer and the tagged image.
    assert!(
        left.iter().all(|t| after.contains(t)),
        "{left:?} vs {after:?}"
    );

    let bad = prune(&["--max-size", "lots"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("--max-size `lots` is not a size"));
}
