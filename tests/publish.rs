//! `connector-build publish` on the real engine and real registries (the set-up's, and
//! `docker-registry` instances of the tests' own for faults and passwords). What was pushed is
//! read with clients no one here wrote: `skopeo`, `docker pull`, the registry's HTTP API and
//! cyclonedx-python-lib's validator.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const EPOCH: &str = "1700000000";

/// A copy of `fixture` in its own workspace whose `dockerRepository` is unique to this run.
fn fixture(fixture: &str) -> (Workspace, PathBuf, String) {
    let ws = Workspace::new();
    let dir = ws.add_fixture(fixture);
    let repository = format!("cb-tests/publish-{}", nonce());
    let meta = dir.join("metadata.yaml");
    let text = std::fs::read_to_string(&meta).unwrap();
    let text = text.replace(&format!("airbyte/{fixture}"), &repository);
    std::fs::write(&meta, text).unwrap();
    (ws, dir, repository)
}

/// `publish` of one platform (linux/amd64, a plain manifest) unless `args` name platforms:
/// only the index tests pay for the arm64 build (its `spec` runs under QEMU).
fn publish(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Output {
    let one_platform: &[&str] = if args.contains(&"--platform") {
        &[]
    } else {
        &["--platform", "linux/amd64"]
    };
    Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .arg("--connectors-dir")
        .arg(ws.path())
        .arg("publish")
        .args(args)
        .args(one_platform)
        .env("NO_COLOR", "1")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .envs(env.iter().copied())
        .output()
        .expect("run connector-build")
}

fn tags(registry: &str, repository: &str) -> Vec<String> {
    let out = skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{registry}/{repository}"),
    ]);
    if !out.status.success() {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut t: Vec<String> = v["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    t.sort();
    t
}

/// A rerun that succeeded, said "already published" and printed `reference` alone.
fn assert_already_published(out: &Output, reference: &str) {
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("already published"), "{stderr}");
    assert_eq!(text(&out.stdout).trim(), reference);
}

fn published(out: &Output) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON on stdout: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    v["connectors"][0].clone()
}

#[test]
fn publish_pushes_once_then_skips_and_refuses_another_image_under_the_version() {
    let (ws, dir, repository) = fixture("source-fixture-uv");
    let reports = ws.path().join("reports");
    let metadata = ws.path().join("metadata.json");
    let out = publish(
        &ws,
        &[
            "source-fixture-uv",
            "--registry",
            "127.0.0.1:5000",
            "--latest",
            "--json",
            "--report-dir",
            reports.to_str().unwrap(),
            "--metadata-file",
            metadata.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let c = published(&out);
    assert_eq!(c["status"], "built", "{c:#}");
    let p = &c["published"];
    let digest = p["digest"].as_str().unwrap().to_string();
    let name = format!("127.0.0.1:5000/{repository}");
    assert_eq!(p["image"], format!("{name}:0.1.0@{digest}"));
    assert_eq!(p["outcome"], "pushed");
    assert_eq!(p["reproducible"], true, "{p:#}");
    // One platform: a plain manifest, as `docker push` of one image gives.
    assert_eq!(
        p["media_type"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(p["platforms"][0]["platform"], "linux/amd64", "{p:#}");
    assert_eq!(p["platforms"][0]["digest"], digest.as_str());

    // The manifest as skopeo reads it: its digest, OCI type, annotations; the tags.
    let raw = raw_manifest(&format!("{name}:0.1.0")).expect("the version tag");
    assert_eq!(sha256(&raw), digest);
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let ann = &manifest["annotations"];
    let base = base_ref();
    let (base_name, base_digest) = base.split_once('@').unwrap();
    assert_eq!(ann["org.opencontainers.image.base.name"], base_name);
    assert_eq!(ann["org.opencontainers.image.base.digest"], base_digest);
    assert_eq!(ann["org.opencontainers.image.version"], "0.1.0");
    assert_eq!(
        ann["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    let sbom_tag = format!("{}.sbom", digest.replace(':', "-"));
    assert_eq!(
        tags("127.0.0.1:5000", &repository),
        vec!["0.1.0".to_string(), "latest".into(), sbom_tag.clone()]
    );
    let config = skopeo(&[
        "inspect",
        "--config",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{name}@{digest}"),
    ]);
    let config: serde_json::Value = serde_json::from_slice(&config.stdout).unwrap();
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.base.digest"],
        base_digest
    );

    // The SBOM: attached under cosign's tag, the file in the report folder, and valid.
    let sbom_manifest: serde_json::Value =
        serde_json::from_slice(&raw_manifest(&format!("{name}:{sbom_tag}")).unwrap()).unwrap();
    assert_eq!(
        sbom_manifest["layers"][0]["mediaType"],
        "application/vnd.cyclonedx+json"
    );
    assert_eq!(sbom_manifest["subject"]["digest"], digest.as_str());
    let sbom_file = reports.join("sbom/source-fixture-uv.cdx.json");
    let sbom = std::fs::read(&sbom_file).unwrap();
    assert_eq!(
        sha256(&sbom),
        sbom_manifest["layers"][0]["digest"].as_str().unwrap()
    );
    validate_sbom(&sbom);

    // The run report and the buildx-shaped metadata file carry the pushed image.
    let report = read_report(&reports);
    assert_eq!(
        report_entry(&report, "source-fixture-uv")["published"]["digest"],
        digest.as_str()
    );
    // ...and so do the pages a reader opens: the digest-pinned address in both.
    let pinned = format!("{name}:0.1.0@{digest}");
    for page in ["report.md", "report.html"] {
        let body = std::fs::read_to_string(reports.join(page)).unwrap();
        assert!(body.contains(&pinned), "{page} lacks {pinned}:\n{body}");
    }
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
    assert_eq!(
        meta["source-fixture-uv"]["containerimage.digest"],
        digest.as_str()
    );
    assert_eq!(
        meta["source-fixture-uv"]["image.name"],
        format!("{name}:0.1.0")
    );

    // The engine pulls it by digest, and it answers `spec`.
    let pinned = format!("{name}@{digest}");
    docker_ok(&["pull", "-q", &pinned]);
    let spec = run_spec(&pinned);
    assert_eq!(spec["type"], "SPEC");
    let _ = docker(&["image", "rm", &pinned]);

    // Again: nothing to do.
    let again = publish(&ws, &["source-fixture-uv"], &[]);
    assert_already_published(&again, &format!("{name}:0.1.0@{digest}"));

    // Another image under the same version: refused, nothing pushed, the tag unmoved.
    let main = dir.join("main.py");
    let code = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, format!("{code}\n# changed without a version bump\n")).unwrap();
    let before = tags("127.0.0.1:5000", &repository);
    let refused = publish(
        &ws,
        &[
            "source-fixture-uv",
            "--json",
            "--report-dir",
            reports.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    let c = published(&refused);
    let error = c["error"].as_str().unwrap();
    assert!(
        error.contains("already published with another image")
            && error.contains("connector-build bump-version"),
        "{error}"
    );
    assert_eq!(c["failure_class"], "input");
    let other = error
        .split("this build is ")
        .nth(1)
        .and_then(|s| s.get(..71))
        .unwrap();
    assert!(
        raw_manifest(&format!("{name}@{other}")).is_none(),
        "{other} was pushed"
    );
    assert_eq!(tags("127.0.0.1:5000", &repository), before);
    assert_eq!(
        sha256(&raw_manifest(&format!("{name}:0.1.0")).unwrap()),
        digest
    );
}

#[test]
fn a_registry_that_is_down_at_the_start_is_an_infrastructure_fault() {
    let (ws, _dir, _repository) = fixture("source-fixture-uv");
    let address = format!("127.0.0.1:{}", free_port());
    let out = publish(&ws, &["source-fixture-uv", "--registry", &address], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains(&format!("registry {address} does not answer")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("building"),
        "it built before finding the registry down: {stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_registry_stopped_mid_push_leaves_no_tag_and_a_rerun_completes() {
    let (ws, _dir, repository) = fixture("source-fixture-uv");
    let mut registry = TestRegistry::start();
    // The base layers (over 100 MB) are copied into this registry: time to stop it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .arg("--connectors-dir")
        .arg(ws.path())
        .args([
            "-v",
            "publish",
            "source-fixture-uv",
            "--registry",
            &registry.addr,
            "--platform",
            "linux/amd64",
        ])
        .env("NO_COLOR", "1")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("pushed blob") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    // The first blob is in: stop the registry under the push.
    rx.recv_timeout(Duration::from_secs(120))
        .expect("no blob was pushed within 2 minutes");
    registry.stop();
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("publish did not stop after its registry went away");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = reader.join().unwrap();
    assert_eq!(status.code(), Some(75), "{stderr}");
    assert!(stderr.contains(&registry.addr), "{stderr}");

    registry.resume();
    assert!(
        tags(&registry.addr, &repository).is_empty(),
        "a tag points at a partial image"
    );
    let out = publish(
        &ws,
        &["source-fixture-uv", "--registry", &registry.addr],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let address = text(&out.stdout).trim().to_string();
    let digest = address.split('@').nth(1).unwrap();
    let raw = raw_manifest(&format!("{}/{repository}:0.1.0", registry.addr)).unwrap();
    assert_eq!(sha256(&raw), digest);
}

#[test]
fn a_password_registry_takes_the_docker_config_credentials_and_never_shows_the_password() {
    let (ws, _dir, repository) = fixture("source-fixture-uv");
    let password = format!("pw-{}-secret", nonce());
    let registry = TestRegistry::start_with("", Some(("robot", &password)));
    let config_dir = tempfile::tempdir().unwrap();
    let login = |pw: &str| {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("robot:{pw}"));
        std::fs::write(
            config_dir.path().join("config.json"),
            format!(
                r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
                registry.addr
            ),
        )
        .unwrap();
    };
    let docker_config = config_dir.path().to_str().unwrap().to_string();

    // A wrong password: a clear error, no build, and the password nowhere.
    let wrong = format!("wrong-{password}");
    login(&wrong);
    let reports = ws.path().join("reports");
    let out = publish(
        &ws,
        &[
            "source-fixture-uv",
            "--registry",
            &registry.addr,
            "--report-dir",
            reports.to_str().unwrap(),
        ],
        &[("DOCKER_CONFIG", &docker_config)],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused the credentials of user `robot`")
            && stderr.contains("docker login"),
        "{stderr}"
    );
    for shown in [text(&out.stdout), stderr] {
        assert!(
            !shown.contains(&password),
            "the password was shown: {shown}"
        );
    }

    // The right one: published, and read back with the same credentials.
    login(&password);
    let out = publish(
        &ws,
        &[
            "source-fixture-uv",
            "--registry",
            &registry.addr,
            "--json",
            "--report-dir",
            reports.to_str().unwrap(),
        ],
        &[("DOCKER_CONFIG", &docker_config)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let digest = published(&out)["published"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &format!("robot:{password}"),
        &format!("docker://{}/{repository}:0.1.0", registry.addr),
    ]);
    assert!(raw.status.success(), "{}", text(&raw.stderr));
    assert_eq!(sha256(&raw.stdout), digest);
    assert!(!text(&out.stdout).contains(&password) && !text(&out.stderr).contains(&password));
    for entry in walkdir::WalkDir::new(&reports) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let body = std::fs::read(entry.path()).unwrap();
            assert!(
                !text(&body).contains(&password),
                "{} holds the password",
                entry.path().display()
            );
        }
    }
}

/// The same connector at the same commit, built from empty caches on two engines, gives the
/// same image digest: the second publish finds its image already published.
#[test]
fn two_engines_from_empty_caches_publish_the_same_digest() {
    let (ws, dir, repository) = fixture("source-fixture-requirements");
    // A nonce in the dependency file: neither engine has this install in its cache.
    let requirements = dir.join("requirements.txt");
    let text_before = std::fs::read_to_string(&requirements).unwrap();
    std::fs::write(&requirements, format!("{text_before}# {repository}\n")).unwrap();
    let engine = ExtraEngine::start("cb-pub-docker", "cb-pub-br", "172.31.246");

    let first = publish(&ws, &["source-fixture-requirements", "--json"], &[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let first = published(&first);
    let install = step(&first, "install dependencies");
    assert_eq!(install["cached"], false, "{first:#}");

    let second = Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(["--engine", &engine.host, "--connectors-dir"])
        .arg(ws.path())
        .args([
            "publish",
            "source-fixture-requirements",
            "--json",
            "--platform",
            "linux/amd64",
        ])
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .unwrap();
    assert!(second.status.success(), "{}", text(&second.stderr));
    let second = published(&second);
    assert_eq!(step(&second, "install dependencies")["cached"], false);
    assert_ne!(
        first["image_id"], second["image_id"],
        "the engines' own images differ"
    );
    assert_eq!(
        second["published"]["outcome"], "already_published",
        "{second:#}"
    );
    assert_eq!(first["published"]["digest"], second["published"]["digest"]);
}

/// In a git repository: the times come from the connector folder's last commit, the commit and
/// the origin remote are annotated, and `--pre-release` publishes `<version>-dev.<commit>`.
#[test]
fn a_pre_release_from_git_is_tagged_with_the_commit_and_dated_by_it() {
    let (ws, dir, repository) = fixture("source-fixture-uv");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(ws.path())
            .args(args)
            .env("GIT_COMMITTER_DATE", "2024-01-02T03:04:05Z")
            .env("GIT_AUTHOR_DATE", "2024-01-02T03:04:05Z")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    git(&[
        "remote",
        "add",
        "origin",
        "https://example.invalid/connectors.git",
    ]);
    git(&["add", "."]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qm",
        "c",
    ]);
    let commit = git(&["rev-parse", "HEAD"]);

    let out = Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .arg("--connectors-dir")
        .arg(ws.path())
        // By path: the folder is found as given.
        .arg("publish")
        .arg(&dir)
        .args(["--pre-release", "--json", "--platform", "linux/amd64"])
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let p = published(&out)["published"].clone();
    let tag = format!("0.1.0-dev.{}", &commit[..10]);
    assert_eq!(p["tag"], tag.as_str(), "{p:#}");
    assert_eq!(p["epoch_source"], "git commit time");
    assert_eq!(p["reproducible"], true, "{p:#}");
    let raw = raw_manifest(&format!("127.0.0.1:5000/{repository}:{tag}")).unwrap();
    let ann = serde_json::from_slice::<serde_json::Value>(&raw).unwrap()["annotations"].clone();
    assert_eq!(ann["org.opencontainers.image.revision"], commit.as_str());
    assert_eq!(
        ann["org.opencontainers.image.source"],
        "https://example.invalid/connectors.git"
    );
    assert_eq!(
        ann["org.opencontainers.image.created"],
        "2024-01-02T03:04:05Z"
    );
    assert!(
        !tags("127.0.0.1:5000", &repository).contains(&"0.1.0".to_string()),
        "a pre-release does not take the version tag"
    );
}

/// The paths in a gzip layer blob, read from the registry's HTTP API with curl and tar.
fn layer_paths(registry: &str, repository: &str, digest: &str) -> Vec<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "curl -fsS http://{registry}/v2/{repository}/blobs/{digest} | tar -tz"
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_string).collect()
}

/// The default publish: both platforms in one OCI index, each platform's manifest (by
/// digest) with its own architecture, base and SBOM, the same code layer on both, the index
/// pulled by digest answering the same `spec` on each platform, and a re-run a no-op.
#[test]
fn publish_pushes_one_index_with_both_platforms() {
    arm64_ready();
    let (ws, _dir, repository) = fixture("source-fixture-uv");
    let registry = TestRegistry::start();
    let reports = ws.path().join("reports");
    let metadata = ws.path().join("metadata.json");
    // No --platform and no `platforms` in a connector-build.toml: both.
    let out = Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .arg("--connectors-dir")
        .arg(ws.path())
        .args(["publish", "source-fixture-uv", "--json", "--latest"])
        .args(["--registry", &registry.addr, "--report-dir"])
        .arg(&reports)
        .arg("--metadata-file")
        .arg(&metadata)
        .env("NO_COLOR", "1")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let c = published(&out);
    let p = &c["published"];
    assert_eq!(
        p["media_type"], "application/vnd.oci.image.index.v1+json",
        "{p:#}"
    );
    let digest = p["digest"].as_str().unwrap().to_string();
    let name = format!("{}/{repository}", registry.addr);
    assert_eq!(p["image"], format!("{name}:0.1.0@{digest}"));
    assert!(p.get("config_digest").is_none(), "{p:#}");

    // The index as skopeo reads it: under the version tag (and latest), its digest, both
    // platforms, the manifests the report names.
    let raw = raw_manifest(&format!("{name}:0.1.0")).expect("the version tag");
    assert_eq!(sha256(&raw), digest);
    assert_eq!(
        sha256(&raw_manifest(&format!("{name}:latest")).unwrap()),
        digest
    );
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        index["annotations"]["org.opencontainers.image.version"],
        "0.1.0"
    );
    let manifests = index["manifests"].as_array().unwrap();
    let platforms: Vec<String> = manifests
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);

    let mut code_layers = Vec::new();
    let mut sbom_tags = Vec::new();
    for (m, (reported, arch)) in manifests.iter().zip(
        p["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .zip(["amd64", "arm64"]),
    ) {
        let d = m["digest"].as_str().unwrap();
        assert_eq!(reported["digest"], d, "{p:#}");
        let raw = raw_manifest(&format!("{name}@{d}")).expect("the platform manifest");
        assert_eq!(sha256(&raw), d);
        assert_eq!(m["size"], raw.len());
        let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let config = raw_config(&format!("{name}@{d}"));
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["os"], "linux");
        // Each on its own platform's base image.
        let base = reported["base_image"].as_str().unwrap();
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.base.digest"],
            base.split('@').nth(1).unwrap()
        );
        if arch == "arm64" {
            assert!(base.contains("-linux-arm64@"), "{base}");
        }
        // The SBOM of this platform's image: attached to its manifest, written, valid.
        let sbom_tag = format!("{}.sbom", d.replace(':', "-"));
        assert_eq!(reported["sbom_tag"], sbom_tag.as_str());
        let sbom_manifest: serde_json::Value =
            serde_json::from_slice(&raw_manifest(&format!("{name}:{sbom_tag}")).unwrap()).unwrap();
        assert_eq!(sbom_manifest["subject"]["digest"], d);
        let sbom =
            std::fs::read(reports.join(format!("sbom/source-fixture-uv-linux-{arch}.cdx.json")))
                .unwrap();
        assert_eq!(
            sha256(&sbom),
            sbom_manifest["layers"][0]["digest"].as_str().unwrap()
        );
        validate_sbom(&sbom);
        sbom_tags.push(sbom_tag);
        let layers = manifest["layers"].as_array().unwrap();
        code_layers.push(
            layers.last().unwrap()["digest"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // The code layer: the same blob on both platforms, and it is the connector's code.
    assert_eq!(code_layers[0], code_layers[1]);
    let paths = layer_paths(&registry.addr, &repository, &code_layers[0]);
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with("integration_code/main.py")),
        "{paths:?}"
    );
    let mut expected = vec!["0.1.0".to_string(), "latest".into()];
    expected.extend(sbom_tags);
    expected.sort();
    assert_eq!(tags(&registry.addr, &repository), expected);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
    assert_eq!(
        meta["source-fixture-uv"]["containerimage.digest"],
        digest.as_str()
    );

    // The index by digest: each platform pulled and run answers the same SPEC.
    let pinned = format!("{name}@{digest}");
    docker_ok(&["pull", "-q", "--platform", "linux/amd64", &pinned]);
    let amd64 = run_spec(&pinned);
    // The engine's image store keeps one image per digest reference: the other one next.
    docker_ok(&["image", "rm", &pinned]);
    docker_ok(&["pull", "-q", "--platform", "linux/arm64", &pinned]);
    assert_eq!(
        docker_ok(&["image", "inspect", &pinned, "--format", "{{.Architecture}}"]).trim(),
        "arm64"
    );
    let arm64 = run_spec_for("linux/arm64", &pinned);
    assert_eq!(amd64["type"], "SPEC");
    assert_eq!(arm64, amd64);
    let _ = docker(&["image", "rm", &pinned]);

    // Again: the same index, already published, nothing pushed.
    let again = Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .arg("--connectors-dir")
        .arg(ws.path())
        .args(["publish", "source-fixture-uv", "--registry", &registry.addr])
        .env("NO_COLOR", "1")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .unwrap();
    assert_already_published(&again, &format!("{name}:0.1.0@{digest}"));
}

/// A connector whose arm64 image fails `spec` fails as a whole: nothing is pushed for
/// either platform, no tag.
#[test]
fn a_platform_that_fails_spec_fails_the_connector_and_pushes_nothing() {
    arm64_ready();
    let (ws, dir, repository) = fixture("source-fixture-uv");
    let main = dir.join("main.py");
    let code = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        code.replace(
            "if __name__ == \"__main__\":",
            "import platform, sys\nif platform.machine() == \"aarch64\":\n    sys.exit(\"no arm64 here\")\nif __name__ == \"__main__\":",
        ),
    )
    .unwrap();
    let registry = TestRegistry::start();
    let out = publish(
        &ws,
        &[
            "source-fixture-uv",
            "--registry",
            &registry.addr,
            "--platform",
            "linux/amd64,linux/arm64",
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let c = published(&out);
    assert_eq!(c["status"], "failed", "{c:#}");
    assert!(c.get("published").is_none(), "{c:#}");
    // The error says which platform failed, and why.
    let error = c["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("the linux/arm64 image failed to build") && error.contains("no arm64 here"),
        "{c:#}"
    );
    assert!(
        tags(&registry.addr, &repository).is_empty(),
        "something was tagged"
    );
    // Not even a blob: the registry has no such repository.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!(
            "http://{}/v2/{repository}/tags/list",
            registry.addr
        ))
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "404");
}
