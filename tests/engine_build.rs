//! End-to-end builds on the real Docker engine: each test builds a fixture, runs the image
//! and inspects what the engine holds.

mod common;

use common::*;

#[test]
fn requirements_connector_builds_with_the_reference_layout() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-requirements");
    let tag = TestTag::new("requirements");
    let (results, out) = build_json(&[dir.to_str().unwrap(), "--tag", &tag.0]);
    let result = built(&results, &out);

    let spec = run_spec(&tag.0);
    assert!(
        spec["spec"]["connectionSpecification"].is_object(),
        "{spec}"
    );

    let config = image_config(&tag.0);
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["python", "/airbyte/integration_code/main.py"])
    );
    assert_eq!(config["WorkingDir"], "/airbyte/integration_code");
    let env = image_env(&config);
    assert!(env.contains(&"AIRBYTE_ENTRYPOINT=python /airbyte/integration_code/main.py".into()));
    // Install-only settings never reach the image.
    for var in [
        "PIP_CERT",
        "SSL_CERT_FILE",
        "PIP_CACHE_DIR",
        "PIP_INDEX_URL",
        "HTTPS_PROXY",
    ] {
        assert!(
            !env.iter().any(|e| e.starts_with(var)),
            "{var} leaked: {env:?}"
        );
    }
    assert_airbyte_labels(&config, "airbyte/source-fixture-requirements", "0.1.0");
    assert!(config["Cmd"].is_null(), "{config}");

    // Only the main file and the package are in the code directory, beside the manifests.
    let listing = in_image(&tag.0, "sh", &["-c",
        "ls -A /airbyte/integration_code; ls -A /run/connector-build; python -m pip list 2>/dev/null"]);
    for want in [
        "main.py",
        "requirements.txt",
        "source_fixture_requirements",
        "six",
        "idna",
    ] {
        assert!(listing.contains(want), "{want} missing: {listing}");
    }
    assert!(
        !listing.contains("env\n") && !listing.contains("ca-bundle.pem"),
        "{listing}"
    );
    assert!(result["image_id"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn setup_py_connector_rebuilds_from_cache_and_reuses_dependencies_after_a_code_edit() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-setup");
    let tag = TestTag::new("setup");
    let path = dir.to_str().unwrap();
    let (results, out) = build_json(&[path, "--tag", &tag.0]);
    let first = built(&results, &out);
    run_spec(&tag.0);
    let layers_before = image_layers(&tag.0);

    // Nothing changed: no container at all, same image.
    let (results, out) = build_json(&[path, "--tag", &tag.0]);
    let again = built(&results, &out);
    assert_eq!(again["containers_started"], 0, "{again}");
    assert_eq!(again["image_id"], first["image_id"]);

    // A code-only edit: the dependency layer is reused, only the code layer is new.
    let init = dir.join("source_fixture_setup/__init__.py");
    let mut code = std::fs::read_to_string(&init).unwrap();
    // Unique per run: the same edit made by an earlier run would rightly be a cache hit.
    code.push_str(&format!(
        "\n# edited by the test at {:?}\n",
        std::time::SystemTime::now()
    ));
    std::fs::write(&init, code).unwrap();
    let (results, out) = build_json(&[path, "--tag", &tag.0]);
    let edited = built(&results, &out);
    assert_eq!(
        step(&edited, "install dependencies")["cached"],
        true,
        "{edited}"
    );
    assert_eq!(
        step(&edited, "copy connector code")["cached"],
        false,
        "{edited}"
    );
    assert_ne!(edited["image_id"], first["image_id"]);
    let layers_after = image_layers(&tag.0);
    assert_eq!(layers_after.len(), layers_before.len());
    assert_eq!(
        layers_after[..layers_after.len() - 1],
        layers_before[..layers_before.len() - 1],
        "only the code layer may differ"
    );
    assert_ne!(layers_after.last(), layers_before.last());
    let history = image_history(&tag.0);
    // One dependency install in the connector's layers (the base image has its own pip
    // install of pip and poetry).
    assert_eq!(
        history
            .lines()
            .filter(|l| l.contains("pip install") && l.ends_with(" ."))
            .count(),
        1,
        "{history}"
    );
    run_spec(&tag.0);
}

#[test]
fn poetry_connector_installs_the_main_group_only_and_ships_no_secrets() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-poetry");
    let tag = TestTag::new("poetry");
    let (results, out) = build_json(&[dir.to_str().unwrap(), "--tag", &tag.0]);
    built(&results, &out);
    run_spec(&tag.0);
    let listing = in_image(
        &tag.0,
        "sh",
        &[
            "-c",
            "python -m pip list 2>/dev/null; ls -A /airbyte/integration_code",
        ],
    );
    for want in [
        "python-dateutil",
        "attrs",
        "six",
        "pyproject.toml",
        "poetry.lock",
    ] {
        assert!(listing.contains(want), "{want} missing: {listing}");
    }
    for unwanted in [
        "pytest",
        "pluggy",
        "secrets",
        "unit_tests",
        "airbyte-source-fixture-poetry",
    ] {
        assert!(!listing.contains(unwanted), "{unwanted} present: {listing}");
    }
    // No layer carries the fixture's fake secret.
    let saved = saved_bytes(&tag.0);
    let needle = b"FIXTURE-SECRET-DO-NOT-SHIP";
    assert!(
        memchr::memmem::find(&saved, needle).is_none(),
        "the secret reached the image"
    );
}

#[test]
fn uv_lock_connector_installs_the_locked_main_dependencies_with_hashes() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-uv");
    for installer in ["pip", "uv"] {
        let tag = TestTag::new(&format!("uv-lock-{installer}"));
        let (results, out) = build_json(&[
            dir.to_str().unwrap(),
            "--tag",
            &tag.0,
            "--installer",
            installer,
        ]);
        built(&results, &out);
        // The install may come from the engine's cache (an earlier run of this test on this
        // engine); either way the image must hold exactly what the lock says.
        let spec = run_spec(&tag.0);
        assert!(
            spec["spec"]["connectionSpecification"].is_object(),
            "{spec}"
        );
        let packages = in_image(&tag.0, "python", &["-c",
            "import importlib.metadata as m; print(sorted((d.metadata['Name'].lower(), d.version) for d in m.distributions()))"]);
        // Pinned as locked; the Windows-only pin, the dev group and the project stay out.
        for want in ["('python-dateutil', '2.9.0.post0')", "('six', '1.17.0')"] {
            assert!(packages.contains(want), "{want} missing: {packages}");
        }
        for unwanted in ["colorama", "iniconfig", "source-fixture-uv"] {
            assert!(
                !packages.contains(unwanted),
                "{unwanted} present: {packages}"
            );
        }
    }
    // The plan says how: from the lock, hash-checked, exactly the closure.
    let out = cli(&["plan", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let text = text(&out.stdout);
    for want in ["--require-hashes", "--no-deps", "--hash=sha256:"] {
        assert!(text.contains(want), "{want} missing from the plan: {text}");
    }
}

#[test]
fn dockerfile_connector_builds_with_a_deprecation_warning() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-dockerfile");
    let tag = TestTag::new("dockerfile");
    let out = cli(&["build", dir.to_str().unwrap(), "--tag", &tag.0]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("deprecated"),
        "{}",
        text(&out.stderr)
    );
    run_spec(&tag.0);
}

#[test]
fn a_failing_spec_fails_the_build_and_tags_nothing() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("broken/source-spec-fails");
    let tag = TestTag::new("spec-fails");
    let out = cli(&["build", dir.to_str().unwrap(), "--tag", &tag.0]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("smoke test failed"), "{stderr}");
    assert!(stderr.contains("exited with code 1"), "{stderr}");
    assert!(
        stderr.contains("RuntimeError") || stderr.contains("Traceback"),
        "{stderr}"
    );
    assert!(!image_exists(&tag.0));
    // Still failing, still nothing tagged, on a rebuild that reuses the layers.
    let out = cli(&["build", dir.to_str().unwrap(), "--tag", &tag.0]);
    assert!(!out.status.success());
    assert!(!image_exists(&tag.0));
}

#[test]
fn broken_connectors_fail_with_a_clear_message_and_tag_nothing() {
    let ws = Workspace::new();
    let cases: &[(&str, &[&str])] = &[
        (
            "broken/source-broken-yaml",
            &["metadata.yaml:6:", "invalid YAML"],
        ),
        (
            "broken/source-missing-fields",
            &["metadata.yaml:", "`data.dockerRepository` is missing"],
        ),
        (
            "broken/source-tag-only",
            &["metadata.yaml:", "no `@sha256:` digest", "--allow-unpinned"],
        ),
        (
            "broken/source-missing-package",
            &["source_missing_package/", "is missing"],
        ),
        (
            "broken/source-bad-connector-build-options",
            &["metadata.yaml:", "unknown key `baseImageTypo`"],
        ),
    ];
    for (fixture, needles) in cases {
        let dir = ws.add_fixture(fixture);
        let tag = TestTag::new("broken");
        let out = cli(&["build", dir.to_str().unwrap(), "--tag", &tag.0]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{fixture}: {stderr}");
        for n in *needles {
            assert!(stderr.contains(n), "{fixture}: want `{n}` in\n{stderr}");
        }
        assert!(!stderr.contains("panicked"), "{fixture}: {stderr}");
        assert!(!image_exists(&tag.0), "{fixture} tagged an image");
    }
}

#[test]
fn a_wrong_digest_is_refused_and_an_unpinned_base_needs_a_flag() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-requirements");
    let meta = dir.join("metadata.yaml");
    let good = std::fs::read_to_string(&meta).unwrap();
    let base = base_ref();
    let (name, _) = base.split_once('@').unwrap();
    let wrong = format!("{name}@sha256:{}", "1".repeat(64));
    std::fs::write(&meta, good.replace(&base, &wrong)).unwrap();
    let tag = TestTag::new("wrong-digest");
    let out = cli(&["build", dir.to_str().unwrap(), "--tag", &tag.0]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&"1".repeat(64)), "{stderr}");
    assert!(!image_exists(&tag.0));

    std::fs::write(&meta, good.replace(&base, name)).unwrap();
    let out = cli(&["build", dir.to_str().unwrap(), "--tag", &tag.0]);
    assert!(!out.status.success());
    let out = cli(&[
        "build",
        dir.to_str().unwrap(),
        "--tag",
        &tag.0,
        "--allow-unpinned",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    run_spec(&tag.0);
}

#[test]
fn a_real_connector_from_pypi_builds_and_answers_spec() {
    let ws = Workspace::new();
    let out = std::process::Command::new("bash")
        .arg(repo_root().join("scripts/fetch-pypi-connector.sh"))
        .args(["airbyte-source-faker", "7.2.1"])
        .arg(ws.path())
        .arg(base_ref())
        .output()
        .unwrap();
    assert!(out.status.success(), "fetch failed: {}", text(&out.stderr));
    let dir = ws.path().join("source-faker");
    let tag = TestTag::new("faker");
    let (results, out) = build_json(&[dir.to_str().unwrap(), "--tag", &tag.0]);
    built(&results, &out);
    let spec = run_spec(&tag.0);
    assert!(
        spec["spec"]["connectionSpecification"]["properties"]["count"].is_object(),
        "{spec}"
    );
}

#[test]
fn an_interrupted_build_removes_its_containers_and_tags_nothing() {
    use std::time::{Duration, Instant};
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-setup");
    // A slow install, unique to this run so that no cache entry can skip it.
    let setup = dir.join("setup.py");
    let original = std::fs::read_to_string(&setup).unwrap();
    let slow = format!(
        "import time; time.sleep(300)  # {:?}\n{original}",
        Instant::now()
    );
    std::fs::write(&setup, slow).unwrap();
    let tag = TestTag::new("interrupted");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(["build", dir.to_str().unwrap(), "--tag", &tag.0])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let prefix = format!("connector-build-step-{}-", child.id());
    let running = || {
        docker_ok(&[
            "ps",
            "-a",
            "--filter",
            &format!("name={prefix}"),
            "--format",
            "{{.Names}}",
        ])
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while running().trim().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the install container never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    let interrupted_at = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            interrupted_at.elapsed() < Duration::from_secs(30),
            "did not stop within 30 s of SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(130));
    assert_eq!(running().trim(), "", "build containers left behind");
    assert!(!image_exists(&tag.0));
}

#[test]
fn uv_and_pip_install_the_same_packages_and_the_image_answers_the_same_spec() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-poetry");
    let path = dir.to_str().unwrap();
    let uv = TestTag::new("installer-uv");
    let pip = TestTag::new("installer-pip");
    let (results, out) = build_json(&[path, "--tag", &uv.0, "--installer", "uv"]);
    built(&results, &out);
    let (results, out) = build_json(&[path, "--tag", &pip.0, "--installer", "pip"]);
    built(&results, &out);
    assert_eq!(run_spec(&uv.0), run_spec(&pip.0));
    let packages = |tag: &str| {
        in_image(tag, "python", &["-c",
            "import importlib.metadata as m; print(sorted((d.metadata['Name'].lower(), d.version) for d in m.distributions() if d.metadata['Name'].lower() in ('attrs', 'six', 'python-dateutil')))"])
    };
    assert_eq!(packages(&uv.0), packages(&pip.0));
    // uv itself is mounted for the install only; it is not in the image.
    let inside = in_image(
        &uv.0,
        "sh",
        &[
            "-c",
            "ls -A /opt/connector-build/uv; command -v uv || echo no-uv",
        ],
    );
    assert_eq!(inside.trim(), "no-uv", "{inside}");
}

/// The fast paths (program volume found complete by the step's own container, containers
/// removed in the background) build what the slow path (volume filled by a helper container
/// first) builds: the same installed distributions, files and `spec`, and leave no
/// container behind.
#[test]
fn fast_paths_build_the_same_image_content_as_the_slow_path() {
    use sha2::Digest;
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-poetry");
    let path = dir.to_str().unwrap();
    // A uv of its own (a few bytes more, which the program ignores, and different every run,
    // so an earlier run that failed leaves no volume in the way): a program volume that no
    // engine has yet, so the first build takes the slow path.
    let uv = ws.path().join("uv");
    let mut bytes = std::fs::read(connector_build::execute::tools::DEFAULT_UV).unwrap();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    bytes.extend_from_slice(format!("\0{}-{nonce}", std::process::id()).as_bytes());
    std::fs::write(&uv, &bytes).unwrap();
    std::fs::set_permissions(&uv, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let uv = uv.to_str().unwrap();
    let version = std::process::Command::new(uv)
        .arg("--version")
        .output()
        .unwrap();
    let identity = format!(
        "{}; sha256:{}",
        text(&version.stdout).trim(),
        hex::encode(sha2::Sha256::digest(&bytes))
    );
    let volume = format!(
        "connector-build-tool-uv-{}",
        &hex::encode(sha2::Sha256::digest(identity.as_bytes()))[..12]
    );
    assert!(!docker(&["volume", "inspect", &volume]).status.success());
    let plan: serde_json::Value =
        serde_json::from_slice(&cli(&["plan", "--installer", "uv", "--uv", uv, path]).stdout)
            .unwrap();
    let mut entries: Vec<String> = plan["keys"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .chain(std::iter::once(&plan["keys"]["image"]))
        .map(|k| format!("connector-build-cache:{}", k.as_str().unwrap()))
        .collect();
    entries.dedup();
    let build = |tag: &str| {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_connector-build"))
            .args(["build", "--json", "--installer", "uv", "--uv", uv, path])
            .args(["--tag", tag])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let prefix = format!("name=connector-build-step-{}-", child.id());
        let out = child.wait_with_output().unwrap();
        let results = results(&out.stdout);
        let result = built(&results, &out);
        assert!(
            !step(&result, "install dependencies")["cached"]
                .as_bool()
                .unwrap(),
            "{result}"
        );
        // Removed in the background, but removed before the run ended.
        let left = docker_ok(&["ps", "-aq", "--filter", &prefix]);
        assert_eq!(left.trim(), "", "build containers left behind");
    };
    let slow = TestTag::new("slow-path");
    build(&slow.0);
    assert!(docker(&["volume", "inspect", &volume]).status.success());
    // Forget the layers (the image keeps them), so the install runs again, now with the
    // program volume complete.
    for entry in &entries {
        let _ = docker(&["image", "rm", entry]);
    }
    let fast = TestTag::new("fast-path");
    build(&fast.0);
    let content = |tag: &str| {
        in_image(tag, "sh", &["-c",
            "python -c \"import importlib.metadata as m; print(sorted((d.metadata['Name'].lower(), d.version) for d in m.distributions()))\"; \
             find /usr/local/lib /airbyte -type f ! -name '*.pyc' ! -name RECORD ! -name direct_url.json | sort | xargs md5sum; \
             find /usr/local/lib /airbyte -name '*.pyc' | sort"])
    };
    let (slow_content, fast_content) = (content(&slow.0), content(&fast.0));
    assert!(slow_content.contains("('six', "), "{slow_content}");
    assert_eq!(slow_content, fast_content);
    assert_eq!(run_spec(&slow.0), run_spec(&fast.0));
    for entry in &entries {
        let _ = docker(&["image", "rm", entry]);
    }
    let _ = docker(&["volume", "rm", &volume]);
}
