//! Helpers for tests that build on the real Docker engine.
//!
//! They need what the README set-up command provides: a running engine and the root image in
//! the local registry. Without them they fail with a message saying so, never pass silently.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The python base image the set-up published, digest-pinned.
pub const REF_FILE: &str = "/var/lib/connector-build/base-image.ref";

/// The fixtures' base image line before the set-up fills in the digest.
pub const PLACEHOLDER_BASE: &str = "127.0.0.1:5000/airbyte/python-connector-base:1.0.0@sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// The placeholders of the other families' fixtures, and the files the set-up writes their
/// published addresses to.
pub const OTHER_PLACEHOLDERS: &[(&str, &str)] = &[
    (
        "127.0.0.1:5000/airbyte/source-declarative-manifest:7.39.1@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "/var/lib/connector-build/declarative-base-image.ref",
    ),
    (
        "127.0.0.1:5000/airbyte/java-connector-base:1.0.0@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "/var/lib/connector-build/java-base-image.ref",
    ),
];

/// The digest-pinned address the set-up recorded in `file`.
pub fn published_ref(file: &str) -> String {
    match std::fs::read_to_string(file) {
        Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
        _ => panic!("no base image: {file} is missing; run `bash scripts/setup.sh` first (the README test command does)"),
    }
}

/// `text` with every family's placeholder base image replaced by what the set-up published
/// (each looked up only when used, so a test needs only the families it builds on).
pub fn fill_placeholders(mut text: String) -> String {
    if text.contains(PLACEHOLDER_BASE) {
        text = text.replace(PLACEHOLDER_BASE, &base_ref());
    }
    for (placeholder, file) in OTHER_PLACEHOLDERS {
        if text.contains(placeholder) {
            text = text.replace(placeholder, &published_ref(file));
        }
    }
    text
}

/// The digest-pinned base image the set-up produced.
pub fn base_ref() -> String {
    if let Ok(r) = std::env::var("CONNECTOR_BUILD_BASE_IMAGE") {
        return r;
    }
    match std::fs::read_to_string(REF_FILE) {
        Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
        _ => panic!(
            "no base image: {REF_FILE} is missing; run `bash scripts/setup.sh` first (the README test command does)"
        ),
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixtures() -> PathBuf {
    repo_root().join("connectors-fixtures")
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let ty = entry.file_type().unwrap();
        if ty.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if ty.is_symlink() {
            let link = std::fs::read_link(entry.path()).unwrap();
            std::os::unix::fs::symlink(link, &target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A private copy of a fixture (under `connectors-fixtures/<rel>`), pointed at the real base
/// image, so tests can edit it and run in parallel.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    pub fn new() -> Self {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn add_fixture(&self, rel: &str) -> PathBuf {
        let name = Path::new(rel)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        self.add_fixture_as(rel, &name)
    }

    /// The fixture copied into a folder called `name` (which is then its connector name).
    fn add_fixture_as(&self, rel: &str, name: &str) -> PathBuf {
        let from = fixtures().join(rel);
        let to = self.dir.path().join(name);
        copy_dir(&from, &to);
        let meta = to.join("metadata.yaml");
        if let Ok(text) = std::fs::read_to_string(&meta) {
            // The fixtures carry an all-zero placeholder digest the set-up fills in.
            std::fs::write(&meta, fill_placeholders(text)).unwrap();
        }
        to
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

pub fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run connector-build")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run docker")
}

pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

pub fn image_exists(reference: &str) -> bool {
    docker(&["image", "inspect", reference]).status.success()
}

/// `connector-build build --json ...`: the parsed results (the `connectors` array) and the
/// process output.
pub fn build_json(args: &[&str]) -> (serde_json::Value, Output) {
    let mut full = vec!["build", "--json"];
    full.extend_from_slice(args);
    let out = cli(&full);
    (results(&out.stdout), out)
}

/// The `connectors` array of `build --json` output (`Null` when stdout is no such JSON).
pub fn results(stdout: &[u8]) -> serde_json::Value {
    serde_json::from_slice::<serde_json::Value>(stdout)
        .map(|v| v["connectors"].clone())
        .unwrap_or(serde_json::Value::Null)
}

/// The image's `config` as JSON.
pub fn image_config(reference: &str) -> serde_json::Value {
    let out = docker_ok(&[
        "image",
        "inspect",
        reference,
        "--format",
        "{{json .Config}}",
    ]);
    serde_json::from_str(&out).unwrap()
}

pub fn image_layers(reference: &str) -> Vec<String> {
    let out = docker_ok(&[
        "image",
        "inspect",
        reference,
        "--format",
        "{{json .RootFS.Layers}}",
    ]);
    serde_json::from_str(&out).unwrap()
}

/// Runs the image with `spec` and returns the first SPEC message.
pub fn run_spec(reference: &str) -> serde_json::Value {
    run_spec_on("unix:///var/run/docker.sock", reference)
}

/// The same on the engine at `host`.
pub fn run_spec_on(host: &str, reference: &str) -> serde_json::Value {
    run_spec_with(&["-H", host], &[], reference)
}

/// The same with `docker run --platform <platform>` (under QEMU when not the engine's).
pub fn run_spec_for(platform: &str, reference: &str) -> serde_json::Value {
    run_spec_with(&[], &["--platform", platform], reference)
}

fn run_spec_with(global: &[&str], run: &[&str], reference: &str) -> serde_json::Value {
    let mut args = global.to_vec();
    args.extend(["run", "--rm", "--network", "none"]);
    args.extend(run);
    args.extend([reference, "spec"]);
    let out = docker_ok(&args);
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "SPEC")
        .unwrap_or_else(|| panic!("no SPEC message from {reference}: {out}"))
}

/// A tag private to one test, removed when dropped.
pub struct TestTag(pub String);

impl TestTag {
    pub fn new(test: &str) -> Self {
        TestTag(format!(
            "connector-build-test/{test}:{}",
            std::process::id()
        ))
    }
}

impl Drop for TestTag {
    fn drop(&mut self) {
        let _ = docker(&["image", "rm", &self.0]);
    }
}

/// Replaces every occurrence of `from` by `to` in the text files under `dir`.
fn replace_in_tree(dir: &Path, from: &str, to: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            replace_in_tree(&path, from, to);
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            if text.contains(from) {
                std::fs::write(&path, text.replace(from, to)).unwrap();
            }
        }
    }
}

impl Workspace {
    /// A copy of fixture `rel` as connector `name`: the folder, its package folder
    /// (`<name with - as _>/`), the image repository and the imports follow the new name.
    pub fn add_renamed(&self, rel: &str, name: &str) -> PathBuf {
        let old = Path::new(rel)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let to = self.add_fixture_as(rel, name);
        let (old_pkg, new_pkg) = (old.replace('-', "_"), name.replace('-', "_"));
        if to.join(&old_pkg).is_dir() {
            std::fs::rename(to.join(&old_pkg), to.join(&new_pkg)).unwrap();
        }
        replace_in_tree(&to, &old, name);
        replace_in_tree(&to, &old_pkg, &new_pkg);
        to
    }
}

/// Images tagged `airbyte/<connector>:<tag>` by a bulk test, removed from the given engines
/// when dropped.
pub struct BulkTags {
    pub tag: String,
    pub connectors: Vec<String>,
    pub hosts: Vec<String>,
}

impl BulkTags {
    pub fn new(test: &str, connectors: &[&str], hosts: &[&str]) -> Self {
        BulkTags {
            tag: format!("{test}-{}", std::process::id()),
            connectors: connectors.iter().map(|c| c.to_string()).collect(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }
    }

    pub fn image(&self, connector: &str) -> String {
        format!("airbyte/{connector}:{}", self.tag)
    }
}

impl Drop for BulkTags {
    fn drop(&mut self) {
        for host in &self.hosts {
            for c in &self.connectors {
                let _ = Command::new("docker")
                    .args(["-H", host, "image", "rm", &self.image(c)])
                    .output();
            }
        }
    }
}

/// A report written by `build --report-dir`.
pub fn read_report(dir: &Path) -> serde_json::Value {
    let path = dir.join("report.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The report entry of `connector`'s step `step`.
pub fn report_step(report: &serde_json::Value, connector: &str, step: &str) -> serde_json::Value {
    report_entry(report, connector)["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == step)
        .cloned()
        .unwrap_or_else(|| panic!("{connector} has no step {step}: {report}"))
}

/// The report entry of `connector`.
pub fn report_entry<'a>(report: &'a serde_json::Value, connector: &str) -> &'a serde_json::Value {
    report["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["connector"] == connector)
        .unwrap_or_else(|| panic!("{connector} not in the report: {report}"))
}

/// A dockerd of a test's own beside the main engine (scripts/second-engine.sh) under its own
/// name, bridge and network, so several coexist and the main engine is never touched;
/// stopped and cleaned away when dropped.
pub struct ExtraEngine {
    pub host: String,
    env: [(&'static str, &'static str); 3],
}

impl ExtraEngine {
    pub fn start(name: &'static str, bridge: &'static str, net: &'static str) -> ExtraEngine {
        let mut engine = ExtraEngine {
            host: String::new(),
            env: [
                ("CB_ENGINE_NAME", name),
                ("CB_ENGINE_BRIDGE", bridge),
                ("CB_ENGINE_NET", net),
            ],
        };
        engine.host = engine.run("start");
        engine
    }

    fn script(&self, action: &str) -> Output {
        Command::new("bash")
            .arg(repo_root().join("scripts/second-engine.sh"))
            .arg(action)
            .envs(self.env)
            .output()
            .expect("run scripts/second-engine.sh")
    }

    /// `second-engine.sh ACTION`; its output.
    pub fn run(&self, action: &str) -> String {
        let out = self.script(action);
        assert!(
            out.status.success(),
            "second-engine.sh {action}: {}",
            text(&out.stderr)
        );
        text(&out.stdout).trim().to_string()
    }

    /// Stops the daemon only, as if the machine went away.
    pub fn kill(&self) {
        self.run("kill");
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(["-H", &self.host])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for ExtraEngine {
    fn drop(&mut self) {
        let out = self.script("stop");
        if !out.status.success() {
            eprintln!("cleaning up the engine: {}", text(&out.stderr));
        }
    }
}

/// Makes `<dir>/build/distributions/<name>.tar` the way Gradle's `distTar` lays it out
/// (`<name>/bin/<name>`, `<name>/lib/<name>.jar`) from the fixture's `src/`, with Debian's JDK
/// (`javac --release 17`, `jar`), which the set-up installs.
pub fn make_java_distribution(dir: &Path, name: &str) -> PathBuf {
    let work = tempfile::tempdir().unwrap();
    let classes = work.path().join("classes");
    let top = work.path().join(name);
    std::fs::create_dir_all(top.join("lib")).unwrap();
    let sources: Vec<PathBuf> = walk(&dir.join("src/main/java"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "java"))
        .collect();
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap_or_else(|e| {
            panic!("{cmd:?}: {e}; the set-up installs openjdk-17-jdk-headless")
        });
        assert!(out.status.success(), "{cmd:?}: {}", text(&out.stderr));
    };
    run(Command::new("javac")
        .args(["--release", "17", "-d"])
        .arg(&classes)
        .args(&sources));
    run(Command::new("jar")
        .arg("cf")
        .arg(top.join("lib").join(format!("{name}.jar")))
        .arg("-C")
        .arg(&classes)
        .arg("."));
    copy_dir(&dir.join("src/dist"), &top);
    let out_dir = dir.join("build/distributions");
    std::fs::create_dir_all(&out_dir).unwrap();
    let tar = out_dir.join(format!("{name}.tar"));
    run(Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(work.path())
        .arg(name));
    tar
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The first result of `build --json`, which must have built.
pub fn built(results: &serde_json::Value, out: &Output) -> serde_json::Value {
    let first = results.get(0).cloned().unwrap_or_default();
    assert_eq!(
        first["status"],
        "built",
        "build failed\nstdout: {results}\nstderr: {}",
        text(&out.stderr)
    );
    first
}

/// A build result's step called `name`.
pub fn step<'a>(result: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {result}"))
}

/// The SBOM validator's Python (cyclonedx-python-lib), installed by `scripts/setup.sh`.
pub const SBOM_VALIDATOR: &str = "/var/lib/connector-build/sbom-validator/bin/python";

/// Validates a CycloneDX 1.5 JSON SBOM with cyclonedx-python-lib's strict JSON schema
/// validator; panics with its findings, or when the validator is not installed.
pub fn validate_sbom(bom: &[u8]) {
    assert!(
        Path::new(SBOM_VALIDATOR).exists(),
        "no SBOM validator at {SBOM_VALIDATOR}: run `bash scripts/setup.sh` (the README test command does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bom.json");
    std::fs::write(&file, bom).unwrap();
    let script = "import sys\n\
        from cyclonedx.schema import SchemaVersion\n\
        from cyclonedx.validation.json import JsonStrictValidator\n\
        v = JsonStrictValidator(SchemaVersion.from_version(sys.argv[2]))\n\
        err = v.validate_str(open(sys.argv[1]).read())\n\
        print(err or 'valid')\n\
        sys.exit(1 if err else 0)\n";
    let out = Command::new(SBOM_VALIDATOR)
        .args([
            "-c",
            script,
            file.to_str().unwrap(),
            connector_build::sbom::SPEC_VERSION,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the SBOM does not validate: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A value unique to this run (process id and clock), for names no earlier run has used.
pub fn nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// `sha256:<hex>` of `bytes`, as registries and image configs spell digests.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// `docker run --rm --entrypoint ENTRYPOINT IMAGE ARGS...`: its stdout (it must succeed).
pub fn in_image(image: &str, entrypoint: &str, args: &[&str]) -> String {
    let mut full = vec!["run", "--rm", "--entrypoint", entrypoint, image];
    full.extend_from_slice(args);
    docker_ok(&full)
}

/// `docker save` of `image`, as bytes (every layer, config and manifest).
pub fn saved_bytes(image: &str) -> Vec<u8> {
    let out = docker(&["save", image]);
    assert!(
        out.status.success(),
        "docker save {image}: {}",
        text(&out.stderr)
    );
    out.stdout
}

/// The image's history, the commands that made it, one a line.
pub fn image_history(image: &str) -> String {
    docker_ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", image])
}

/// A TCP port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server that answers every request with HTTP 500, for "the registry answers an error".
pub fn failing_registry() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\nstorage down",
            );
        }
    });
    addr
}

/// A registry of the test's own (Debian's `docker-registry`, as the set-up runs) on a free
/// port, with its storage in a temporary folder; killed when dropped. Never the shared one
/// on port 5000.
pub struct TestRegistry {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    config: PathBuf,
    child: Option<std::process::Child>,
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    pub fn start() -> Self {
        Self::start_with("", None)
    }

    /// With `storage` settings added to its configuration (YAML, indented for `storage:`)
    /// and, with `htpasswd`, that one user required.
    pub fn start_with(storage: &str, htpasswd: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let auth = match htpasswd {
            Some((user, password)) => {
                let file = dir.path().join("htpasswd");
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("htpasswd (apache2-utils, installed by scripts/setup.sh)");
                assert!(out.status.success());
                std::fs::write(&file, &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n{storage}http:\n  addr: {addr}\n{auth}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut registry = TestRegistry {
            addr,
            config,
            child: None,
            _dir: dir,
        };
        registry.resume();
        registry
    }

    /// (Re)starts the process on the same storage and waits until it answers.
    pub fn resume(&mut self) {
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&self.config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package docker-registry; the set-up installs it)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(&self.addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "registry on {} did not start",
                self.addr
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An image config's `Env`, one `NAME=value` an entry.
pub fn image_env(config: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(config["Env"].clone()).unwrap_or_else(|e| panic!("Env: {e}: {config}"))
}

/// The labels Airbyte reads off a connector image: `io.airbyte.name` and `.version`.
pub fn assert_airbyte_labels(config: &serde_json::Value, name: &str, version: &str) {
    assert_eq!(config["Labels"]["io.airbyte.version"], version, "{config}");
    assert_eq!(config["Labels"]["io.airbyte.name"], name, "{config}");
}

/// The set-up's linux/arm64 python base image (`SETUP_ARM64`).
pub const ARM64_REF_FILE: &str = "/var/lib/connector-build/arm64-base-image.ref";

/// The set-up's linux/arm64 java base image: the last thing its arm64 part does, after every
/// root and family became an index over both platforms.
pub const ARM64_JAVA_REF_FILE: &str = "/var/lib/connector-build/arm64-java-base-image.ref";

pub const ARM64_LOCK: &str = "/var/lib/connector-build/setup-arm64.lock";

/// The set-up builds the arm64 base in the background (on a fresh machine it takes many
/// minutes under emulation): wait for it while that build holds its lock, then insist.
pub fn arm64_ready() {
    setup_arm64_wrote(ARM64_REF_FILE);
}

/// Waits while the set-up's arm64 part holds its lock and `file` is missing; returns its
/// reference.
pub fn setup_arm64_wrote(file: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(50 * 60);
    while !std::path::Path::new(file).exists() && std::time::Instant::now() < deadline {
        let held = std::process::Command::new("flock")
            .args(["-n", ARM64_LOCK, "true"])
            .status()
            .map(|s| !s.success())
            .unwrap_or(false);
        if !held {
            break;
        }
        eprintln!("waiting for the set-up's arm64 part ({file})");
        std::thread::sleep(std::time::Duration::from_secs(10));
    }
    published_ref(file)
}

pub fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo (installed by scripts/setup.sh)")
}

/// `skopeo inspect --raw` of `reference` (a plain-HTTP registry); `None` when absent.
pub fn raw_manifest(reference: &str) -> Option<Vec<u8>> {
    let out = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    out.status.success().then_some(out.stdout)
}

/// `skopeo inspect --config --raw` of `reference`.
pub fn raw_config(reference: &str) -> serde_json::Value {
    let out = skopeo(&[
        "inspect",
        "--config",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}
