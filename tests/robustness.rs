//! Inputs and situations a CI job meets that once hung the tool, gave a wrong or silent
//! result, or refused something good (issue 17). Hangs are run with a time limit, and the
//! test checks the process is gone afterwards; bad inputs that fail cleanly are in the bad
//! input corpus (tests/bad_inputs/cases.toml) instead.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Runs `connector-build` with a time limit; on time out it is killed (and reaped) and the
/// test fails, saying so.
fn run_limited(
    args: &[&str],
    cwd: &Path,
    env: &[(&str, &str)],
    limit: Duration,
) -> (ExitStatus, String) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`connector-build {}` still ran after {limit:?}; it was ended:\n{}",
                args.join(" "),
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, std::fs::read_to_string(log.path()).unwrap())
}

/// A connector with this `build_customization.py`, planned (no engine needed) within a
/// time limit well below the hook timeout, so a hook that blocks fails the test.
fn plan_with_hook(hook: &str, env: &[(&str, &str)]) -> (ExitStatus, String) {
    let ws = Workspace::new();
    let dir = ws.add_renamed("source-fixture-requirements", "source-hooked");
    std::fs::write(dir.join("build_customization.py"), hook).unwrap();
    run_limited(
        &["plan", dir.to_str().unwrap(), "--hook-timeout", "100"],
        ws.path(),
        env,
        Duration::from_secs(60),
    )
}

#[test]
fn a_hook_that_prints_megabytes_does_not_block() {
    let hook = r#"
import os, sys

def post_connector_install(container):
    print("x" * 2_000_000)
    sys.stderr.write("e" * 2_000_000)
    os.system("head -c 3000000 /dev/zero")
    return container
"#;
    let (status, stderr) = plan_with_hook(hook, &[]);
    assert!(status.success(), "{}", tail(&stderr));
}

#[test]
fn a_hook_reading_stdin_gets_end_of_input() {
    let hook = r#"
import subprocess, sys

def post_connector_install(container):
    assert sys.stdin.read() == ""
    assert subprocess.run(["cat"], capture_output=True).stdout == b""
    return container
"#;
    let (status, stderr) = plan_with_hook(hook, &[]);
    assert!(status.success(), "{}", tail(&stderr));
}

#[test]
fn programs_a_hook_starts_end_with_the_run() {
    let pids = tempfile::tempdir().unwrap();
    let pid_file = pids.path().join("pid");
    let hook = r#"
import os, subprocess

def post_connector_install(container):
    child = subprocess.Popen(["sleep", "400"])
    with open(os.environ["HOOK_CHILD_PID"], "w") as f:
        f.write(str(child.pid))
    return container
"#;
    let (status, stderr) = plan_with_hook(hook, &[("HOOK_CHILD_PID", pid_file.to_str().unwrap())]);
    assert!(status.success(), "{}", tail(&stderr));
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        if Instant::now() > deadline {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("`sleep 400`, started by the hook, outlived the run (pid {pid})");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Running (a zombie waiting to be reaped by init counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// `connector-build ARGS` with stdout a pipe whose reading end is already closed.
fn with_closed_stdout(args: &[&str], cwd: &Path) -> (ExitStatus, String) {
    let mut fds = [0; 2];
    // SAFETY: pipe() fills two descriptors this test then owns.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors came from pipe() above and are owned once each.
    let (read, write) = unsafe {
        use std::os::fd::FromRawFd;
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    drop(read);
    let out = Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (out.status, text(&out.stderr))
}

#[test]
fn a_closed_stdout_ends_the_program_quietly() {
    let ws = Workspace::new();
    ws.add_fixture("source-fixture-requirements");
    for args in [
        &["plan", "source-fixture-requirements"][..],
        &["list", "--json"],
        &["list"],
    ] {
        let (status, stderr) = with_closed_stdout(args, ws.path());
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
        // As command-line tools do: ended by SIGPIPE, nothing said.
        assert_eq!(
            status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {status:?} {stderr}"
        );
        assert_eq!(stderr, "", "{args:?}");
    }
}

#[test]
fn an_engine_that_accepts_but_never_answers_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    // Accepts and holds every connection, answering nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let ws = Workspace::new();
    ws.add_fixture("source-fixture-requirements");
    let reports = tempfile::tempdir().unwrap();
    let host = format!("tcp://{address}");
    let (status, stderr) = run_limited(
        &[
            "build",
            "source-fixture-requirements",
            "--report-dir",
            reports.path().to_str().unwrap(),
        ],
        ws.path(),
        &[("DOCKER_HOST", &host)],
        Duration::from_secs(90),
    );
    // An infrastructure fault: 75, worth a retry.
    assert_eq!(status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "engine unreachable: cannot talk to the Docker engine at {host}"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("no answer within"), "{stderr}");
}

/// A connector using what airbyte-ci accepted: `data:` fields from a YAML merge key, a
/// requirements file that includes another, and the package folder as a link.
#[test]
fn merge_keys_included_requirements_and_a_linked_package_build_and_run() {
    let ws = Workspace::new();
    let dir = ws.add_renamed("source-fixture-requirements", "source-linked");
    let meta = std::fs::read_to_string(dir.join("metadata.yaml")).unwrap();
    let repository = "  dockerRepository: airbyte/source-linked\n";
    assert!(meta.contains(repository));
    let meta = format!(
        "ids: &ids\n{repository}  dockerImageTag: 0.1.0\n{}",
        meta.replace(repository, "")
            .replace("  dockerImageTag: 0.1.0\n", "")
            .replace("data:\n", "data:\n  <<: *ids\n")
    );
    std::fs::write(dir.join("metadata.yaml"), meta).unwrap();
    std::fs::rename(
        dir.join("requirements.txt"),
        dir.join("requirements-base.txt"),
    )
    .unwrap();
    std::fs::write(dir.join("requirements.txt"), "-r requirements-base.txt\n").unwrap();
    std::fs::create_dir(dir.join("src")).unwrap();
    std::fs::rename(dir.join("source_linked"), dir.join("src/source_linked")).unwrap();
    std::os::unix::fs::symlink("src/source_linked", dir.join("source_linked")).unwrap();

    // The plan copies the included file with the manifests, and the package once, as files.
    let plan = cli(&["plan", dir.to_str().unwrap()]);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let files = |step: &str| -> Vec<String> {
        let step = plan["plan"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == step)
            .unwrap();
        step["action"]["files"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(files("copy dependency manifests").contains(&"requirements-base.txt".to_string()));
    let code = files("copy connector code");
    assert!(!code.contains(&"source_linked".to_string()), "{code:?}");
    assert!(
        code.contains(&"source_linked/__init__.py".to_string()),
        "{code:?}"
    );

    let tag = TestTag::new("linked");
    let (results, out) = build_json(&[dir.to_str().unwrap(), "--tag", &tag.0]);
    assert_eq!(
        results[0]["status"],
        "built",
        "{results}\n{}",
        text(&out.stderr)
    );
    let spec = run_spec(&tag.0);
    assert!(
        spec["spec"]["connectionSpecification"].is_object(),
        "{spec}"
    );
    let listing = docker_ok(&[
        "run", "--rm", "--entrypoint", "sh", &tag.0, "-c",
        "test -d source_linked && ! test -L source_linked && python -c 'import six, idna' && echo ok",
    ]);
    assert_eq!(listing.trim(), "ok");
    assert_eq!(
        image_config(&tag.0)["Labels"]["io.airbyte.name"],
        "airbyte/source-linked"
    );
}
