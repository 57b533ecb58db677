//! build_customization.py hooks, run for real: embedded Python in the hooks runner, builds on
//! the Docker engine, images inspected afterwards.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

fn build_with_env(dir: &Path, tag: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_connector-build"));
    cmd.args(["build", dir.to_str().unwrap(), "--tag", tag])
        .args(extra)
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn env_of(tag: &str) -> Vec<String> {
    serde_json::from_value(image_config(tag)["Env"].clone()).unwrap()
}

#[test]
fn a_customized_connector_builds_with_every_hook_style() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-hooks");
    let tag = TestTag::new("hooks");
    let out = build_with_env(
        &dir,
        &tag.0,
        &[],
        &[("FIXTURE_HOOK_FLAVOUR", "from-the-host")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    run_spec(&tag.0);

    let config = image_config(&tag.0);
    assert_eq!(
        config["User"], "airbyte",
        "the user toggle must end where it began"
    );
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["python", "/airbyte/integration_code/run_connector.py"])
    );
    assert_eq!(config["Labels"]["io.airbyte.fixture"], "hooks");
    assert_eq!(config["Labels"]["io.airbyte.version"], "0.1.0");
    let env = env_of(&tag.0);
    for want in [
        "FIXTURE_FLAVOUR=from-the-host",
        "AIRBYTE_ENTRYPOINT=python /airbyte/integration_code/run_connector.py",
        "FIXTURE_ORIGINAL_USER=airbyte",
        "FIXTURE_HELLO=hello from root in /airbyte/integration_code",
    ] {
        assert!(
            env.contains(&want.to_string()),
            "{want} missing from {env:?}"
        );
    }
    assert!(
        env.iter()
            .any(|e| e.starts_with("FIXTURE_PATH_COPY=/usr/local/sbin:")),
        "expand=True: {env:?}"
    );
    let inside = docker_ok(&[
        "run", "--rm", "--entrypoint", "sh", &tag.0, "-c",
        "whoami; jq --version; cat /opt/fixture-hello.txt; cat /opt/fixture-spec.json; ls /airbyte/integration_code",
    ]);
    for want in [
        "airbyte\n",
        "jq-1.",
        "hello from root",
        "\"type\": \"SPEC\"",
        "run_connector.py",
    ] {
        assert!(inside.contains(want), "{want} missing: {inside}");
    }
    assert!(
        !inside.contains("main.py"),
        "MAIN_FILE_NAME replaces main.py: {inside}"
    );

    // The hook file is part of the key: the same build again is all cache and starts no
    // container, even though the hooks ask about their container (the answers are
    // remembered); an edited hook file is not.
    let since = docker_ok(&["system", "info", "--format", "{{.SystemTime}}"]);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(["build", "--json", dir.to_str().unwrap(), "--tag", &tag.0])
        .env("FIXTURE_HOOK_FLAVOUR", "from-the-host")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ours = format!("connector-build-step-{}-", child.id());
    let out = child.wait_with_output().unwrap();
    let results = common::results(&out.stdout);
    assert_eq!(results[0]["status"], "built", "{}", text(&out.stderr));
    let until = docker_ok(&["system", "info", "--format", "{{.SystemTime}}"]);
    let started = docker_ok(&[
        "events",
        "--since",
        since.trim(),
        "--until",
        until.trim(),
        "--filter",
        "type=container",
        "--filter",
        "event=start",
        "--format",
        "{{.Actor.Attributes.name}}",
    ]);
    assert!(
        !started.lines().any(|n| n.starts_with(&ours)),
        "a rebuild with nothing changed started containers: {started}"
    );
    let hook = dir.join("build_customization.py");
    let mut code = std::fs::read_to_string(&hook).unwrap();
    code.push_str(&format!(
        "\n# edited at {:?}\n",
        std::time::SystemTime::now()
    ));
    std::fs::write(&hook, code).unwrap();
    let (edited, out) = build_json(&[dir.to_str().unwrap(), "--tag", &tag.0]);
    assert_eq!(edited[0]["status"], "built", "{}", text(&out.stderr));
    assert_ne!(edited[0]["cache_key"], results[0]["cache_key"]);
}

/// A copy of the requirements fixture with `hook` as its build_customization.py.
fn customized(ws: &Workspace, hook: &str) -> std::path::PathBuf {
    let dir = ws.add_fixture("source-fixture-requirements");
    std::fs::write(dir.join("build_customization.py"), hook).unwrap();
    dir
}

/// The same, as a connector named `name`.
fn customized_as(ws: &Workspace, name: &str, hook: &str) -> std::path::PathBuf {
    let dir = ws.add_renamed("source-fixture-requirements", name);
    std::fs::write(dir.join("build_customization.py"), hook).unwrap();
    dir
}

#[test]
fn broken_hooks_fail_that_connector_with_a_message_to_act_on() {
    let unique = format!("{:?}", std::time::SystemTime::now());
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "syntax error",
            "async def pre_connector_install(c)\n    return c\n".into(),
            vec!["build_customization.py:1: SyntaxError", "expected ':'"],
        ),
        (
            "raises",
            "def helper():\n    raise ValueError('boom')\n\nasync def post_connector_install(c):\n    helper()\n    return c\n".into(),
            vec![
                "build_customization.py:2: post_connector_install raised ValueError: boom",
                "Traceback (most recent call last)",
                "line 5, in post_connector_install",
            ],
        ),
        (
            "returns None",
            "async def pre_connector_install(c):\n    c.with_env_variable('A', '1')\n".into(),
            vec!["pre_connector_install returned NoneType", "expected a Container"],
        ),
        (
            "unknown method",
            "async def pre_connector_install(c):\n    return c.with_magic('x')\n".into(),
            vec![
                "Container.with_magic is not supported by connector-build",
                "supported: with_exec, with_env_variable",
                "build_customization.py:2",
            ],
        ),
        (
            "failing with_exec",
            format!("async def pre_connector_install(c):\n    return c.with_exec(['sh', '-c', 'echo {unique}; echo about to fail >&2; exit 3'])\n"),
            vec!["exited with code 3", "about to fail", "pre_connector_install: sh -c echo"],
        ),
        (
            "failing with_exec read by stdout()",
            format!("async def pre_connector_install(c):\n    await c.with_exec(['sh', '-c', 'echo {unique}; exit 4']).stdout()\n    return c\n"),
            vec!["pre_connector_install raised ExecError", "exited with code 4", "build_customization.py:2"],
        ),
        (
            "removing an inherited variable",
            "def post_connector_install(c):\n    return c.without_env_variable('PATH')\n".into(),
            vec!["`PATH` comes from an earlier layer", "set it to an empty value instead"],
        ),
        (
            "bad MAIN_FILE_NAME",
            "MAIN_FILE_NAME = 42\n".into(),
            vec!["MAIN_FILE_NAME must be a file name"],
        ),
    ];
    let ws = Workspace::new();
    for (case, hook, needles) in cases {
        let dir = customized(&ws, &hook);
        let tag = TestTag::new("broken-hook");
        let out = build_with_env(&dir, &tag.0, &[], &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{case}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{case}: want `{n}` in\n{stderr}");
        }
        assert!(!stderr.contains("panicked"), "{case}: {stderr}");
        assert!(!image_exists(&tag.0), "{case}: tagged an image");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_hook_that_never_returns_is_stopped_after_the_timeout() {
    let ws = Workspace::new();
    let dir = customized(
        &ws,
        "import time\n\ndef pre_connector_install(c):\n    while True:\n        time.sleep(0.1)\n",
    );
    let tag = TestTag::new("hook-timeout");
    let started = std::time::Instant::now();
    let out = build_with_env(&dir, &tag.0, &["--hook-timeout", "2"], &[]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("pre_connector_install did not finish within 2 s"),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(!image_exists(&tag.0));
}

#[test]
fn no_hooks_builds_without_the_customization_and_one_failure_does_not_stop_the_others() {
    let ws = Workspace::new();
    let counting = "import os\n\nCOUNT = 0\n\ndef post_connector_install(c):\n    global COUNT\n    COUNT += 1\n    return c.with_env_variable('HOOK_COUNT', str(COUNT)).with_env_variable('FROM_HOST', os.environ['FIXTURE_FROM_HOST'])\n";
    let good = customized(&ws, counting);
    // A second connector with the same module-level state: each gets a fresh module.
    let second = customized_as(&ws, "source-fixture-second", counting);
    let broken = customized_as(
        &ws,
        "source-fixture-broken-hook",
        "raise RuntimeError('module level')\n",
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(["build", "--json", "--concurrency", "3"])
        .args([&good, &second, &broken].map(|p| p.to_str().unwrap().to_string()))
        .env("FIXTURE_FROM_HOST", "yes")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let results = common::results(&out.stdout);
    assert!(
        results.is_array(),
        "no JSON on stdout; stderr:\n{}",
        text(&out.stderr)
    );
    assert_eq!(results[0]["status"], "built", "{results}");
    assert_eq!(results[1]["status"], "built", "{results}");
    assert_eq!(results[2]["status"], "failed");
    assert!(results[2]["error"]
        .as_str()
        .unwrap()
        .contains("loading the module raised RuntimeError: module level"));
    for r in &results.as_array().unwrap()[..2] {
        let env = env_of(r["tag"].as_str().unwrap());
        assert!(env.contains(&"HOOK_COUNT=1".to_string()), "{env:?}");
        assert!(env.contains(&"FROM_HOST=yes".to_string()), "{env:?}");
    }

    let tag = TestTag::new("no-hooks");
    let out = build_with_env(&good, &tag.0, &["--no-hooks"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!env_of(&tag.0).iter().any(|e| e.starts_with("HOOK_COUNT")));
}

#[test]
fn a_missing_runner_or_python_is_a_clear_error() {
    let ws = Workspace::new();
    let dir = customized(&ws, "def pre_connector_install(c):\n    return c\n");
    let tag = TestTag::new("no-runner");
    let out = build_with_env(
        &dir,
        &tag.0,
        &[],
        &[(
            "CONNECTOR_BUILD_HOOKS_RUNNER",
            "/nonexistent/connector-build-hooks",
        )],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "need the hooks runner `connector-build-hooks`, which is not at /nonexistent"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("--no-hooks"), "{stderr}");

    // A runner whose libpython cannot be loaded dies in the dynamic loader before any Python
    // runs; this stand-in fails the same way, so what is checked is the message.
    let fake = ws.path().join("connector-build-hooks");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'connector-build-hooks: error while loading shared libraries: libpython3.11.so.1.0: cannot open shared object file: No such file or directory' >&2\nexit 127\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", fake.to_str().unwrap()])
        .status()
        .unwrap();
    let out = build_with_env(
        &dir,
        &tag.0,
        &[],
        &[("CONNECTOR_BUILD_HOOKS_RUNNER", fake.to_str().unwrap())],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("cannot load Python"), "{stderr}");
    assert!(stderr.contains("libpython3.11.so.1.0"), "{stderr}");
    assert!(!image_exists(&tag.0));
}

#[test]
fn every_supported_container_method_shows_in_the_image() {
    let ws = Workspace::new();
    let example = repo_root().join("hooks/examples/every_method.py");
    let dir = customized(&ws, &std::fs::read_to_string(example).unwrap());
    let assets = dir.join("assets");
    std::fs::create_dir_all(assets.join("tree/sub")).unwrap();
    std::fs::create_dir_all(assets.join("tree/__pycache__")).unwrap();
    std::fs::write(assets.join("extra.txt"), "extra\n").unwrap();
    std::fs::write(assets.join("tree/a.txt"), "a\n").unwrap();
    std::fs::write(assets.join("tree/sub/b.txt"), "b\n").unwrap();
    std::fs::write(assets.join("tree/__pycache__/junk.pyc"), "junk").unwrap();
    let tag = TestTag::new("every-method");
    let out = build_with_env(&dir, &tag.0, &[], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let config = image_config(&tag.0);
    assert_eq!(config["Labels"]["io.airbyte.every-method"], "yes");
    assert!(config["ExposedPorts"]["8080/tcp"].is_object(), "{config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/run-connector"])
    );
    assert_eq!(config["Cmd"], serde_json::json!(["spec"]));
    assert_eq!(config["WorkingDir"], "/airbyte/integration_code");
    let env = env_of(&tag.0);
    assert!(
        env.contains(&"PROBE_RESULT=7:to-stderr".to_string()),
        "{env:?}"
    );
    assert!(!env.iter().any(|e| e.starts_with("TEMPORARY=")), "{env:?}");

    let inside = docker_ok(&[
        "run", "--rm", "--entrypoint", "sh", &tag.0, "-c",
        "stat -c '%u:%g %a' /opt/every/extra.txt; find /opt/tree | sort; test -s /opt/every/stamp && echo stamped",
    ]);
    assert!(inside.contains("1000:1000 600"), "{inside}");
    assert!(
        inside.contains("/opt/tree/a.txt") && inside.contains("/opt/tree/sub/b.txt"),
        "{inside}"
    );
    assert!(!inside.contains("__pycache__"), "{inside}");
    assert!(inside.contains("stamped"), "{inside}");
    docker_ok(&[
        "volume",
        "inspect",
        "connector-build-hook-cache-every-method-pip",
    ]);
    // The default arguments make a bare `docker run` print the spec through the wrapper.
    let bare = docker_ok(&["run", "--rm", "--network", "none", &tag.0]);
    assert!(bare.contains("\"type\": \"SPEC\""), "{bare}");
}
