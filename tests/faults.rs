//! Faults during real builds: the engine stopping mid-build (on an engine of this test's own),
//! SIGINT and SIGTERM during a bulk build, and two processes building the same connector at
//! once. Registry faults are in base_images.rs and the bad input corpus.

mod common;

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A connector copied from `fixture` as `name`, whose setup.py sleeps `seconds` when pip
/// builds it: an install slow enough to be caught in flight, and new to every cache.
fn slow_connector(ws: &Workspace, name: &str, seconds: u32) {
    let dir = ws.add_renamed("source-fixture-setup", name);
    let setup = dir.join("setup.py");
    let original = std::fs::read_to_string(&setup).unwrap();
    let unique = format!("{:?} {}", std::time::SystemTime::now(), std::process::id());
    std::fs::write(
        &setup,
        format!("import time; time.sleep({seconds})  # {unique}\n{original}"),
    )
    .unwrap();
}

/// `connector-build` in the background, its stderr in `log`.
fn spawn(args: &[&str], log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    None
}

/// Build containers of process `pid` on the engine at `host`, running or not.
fn containers_of(host: &str, pid: u32, running_only: bool) -> Vec<String> {
    let filter = format!("name=connector-build-step-{pid}-");
    let mut args = vec!["-H", host, "ps", "-q", "--filter", &filter];
    if !running_only {
        args.push("-a");
    }
    let out = Command::new("docker").args(&args).output().unwrap();
    text(&out.stdout).lines().map(str::to_string).collect()
}

/// Waits until `n` build containers of `child` run on `host`, failing with its log if the
/// run ends or takes too long first.
fn wait_for_containers(child: &mut Child, host: &str, n: usize, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while containers_of(host, child.id(), true).len() < n {
        let log_text = || std::fs::read_to_string(log).unwrap_or_default();
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before {n} build(s) were in flight:\n{}",
            log_text()
        );
        assert!(
            Instant::now() < deadline,
            "no build in flight:\n{}",
            log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

const MAIN_ENGINE: &str = "unix:///var/run/docker.sock";

fn signal_stops_the_run_and_the_report_says_what_was_interrupted(signal: &str, code: i32) {
    let ws = Workspace::new();
    let prefix = format!("source-{}", signal.to_lowercase());
    let names: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|s| format!("{prefix}-{s}"))
        .collect();
    for name in &names {
        slow_connector(&ws, name, 300);
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let tags = BulkTags::new(&prefix, &refs, &[MAIN_ENGINE]);
    let reports = tempfile::tempdir().unwrap();
    let log = reports.path().join("stderr.log");
    let report_dir = reports.path().join("run");
    let mut args = vec!["--connectors-dir", ws.path().to_str().unwrap(), "build"];
    for name in &refs {
        args.extend(["--name", name]);
    }
    args.extend(["--concurrency", "2", "--tag", &tags.tag]);
    args.extend(["--report-dir", report_dir.to_str().unwrap()]);
    let mut child = spawn(&args, &log);
    // Two installs running (sleeping in setup.py), the third connector waiting.
    wait_for_containers(&mut child, MAIN_ENGINE, 2, &log);
    std::thread::sleep(Duration::from_millis(500));

    let sent = Instant::now();
    let kill = Command::new("kill")
        .args([
            &format!("-{}", signal.trim_start_matches("SIG")),
            &child.id().to_string(),
        ])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_for(&mut child, Duration::from_secs(30));
    let took = sent.elapsed();
    let stderr = std::fs::read_to_string(&log).unwrap();
    eprintln!("{signal}: the run stopped {took:?} after the signal");
    let status = status.unwrap_or_else(|| panic!("still running 30 s after {signal}:\n{stderr}"));
    assert_eq!(status.code(), Some(code), "{stderr}");
    assert!(took < Duration::from_secs(10), "{took:?}:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("interrupted: removed"), "{stderr}");

    // Every container the run made is gone, and nothing was tagged.
    let left = containers_of(MAIN_ENGINE, child.id(), false);
    assert!(
        left.is_empty(),
        "containers left behind: {left:?}\n{stderr}"
    );
    for name in &refs {
        assert!(!image_exists(&tags.image(name)), "{name} was tagged");
    }

    // The report says what was interrupted and what never started.
    let report = read_report(&report_dir);
    assert_eq!(report["interrupted"]["signal"], signal, "{report}");
    assert_eq!(report["totals"]["interrupted"], 2, "{report}");
    assert_eq!(report["totals"]["skipped"], 1, "{report}");
    for name in &refs[..2] {
        let entry = report_entry(&report, name);
        assert_eq!(entry["status"], "interrupted", "{entry}");
        let error = entry["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!(
                "interrupted by {signal} during `install dependencies`"
            )),
            "{entry}"
        );
    }
    let last = report_entry(&report, refs[2]);
    assert_eq!(last["status"], "skipped", "{last}");
    assert_eq!(
        last["error"],
        format!("not started: the run was interrupted by {signal}")
    );
    let md = std::fs::read_to_string(report_dir.join("report.md")).unwrap();
    assert!(md.contains("**interrupted**") && md.contains(&format!("interrupted by {signal}")));
    let html = std::fs::read_to_string(report_dir.join("report.html")).unwrap();
    assert!(html.contains("badge interrupted"));
}

#[test]
fn sigint_stops_a_bulk_build_removes_its_containers_and_writes_the_report() {
    signal_stops_the_run_and_the_report_says_what_was_interrupted("SIGINT", 130);
}

#[test]
fn sigterm_stops_a_bulk_build_removes_its_containers_and_writes_the_report() {
    signal_stops_the_run_and_the_report_says_what_was_interrupted("SIGTERM", 143);
}

#[test]
fn an_engine_that_stops_mid_build_fails_fast_and_a_rerun_reuses_what_finished() {
    // An engine of this test's own, so stopping it touches nothing else.
    let engine = ExtraEngine::start("cb-rel-docker", "cb-rel-br", "172.31.252");
    let ws = Workspace::new();
    // Built one after the other: `a` completes, `b` is in its install when the engine
    // stops, `c` never starts.
    let names = ["source-stop-a", "source-stop-b", "source-stop-c"];
    for name in [names[0], names[2]] {
        let dir = ws.add_renamed("source-fixture-requirements", name);
        // The same manifests (README.md is one), so `c` can reuse `a`'s install.
        std::fs::write(dir.join("README.md"), "# a connector\n").unwrap();
    }
    slow_connector(&ws, names[1], 8);
    let tags = BulkTags::new("engine-stop", &names, &[]);
    let reports = tempfile::tempdir().unwrap();
    let log = reports.path().join("first.log");
    let build_args = |report_dir: &Path| -> Vec<String> {
        let mut args: Vec<String> = ["--connectors-dir", ws.path().to_str().unwrap(), "build"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for name in names {
            args.extend(["--name".into(), name.into()]);
        }
        args.extend(["--engine".into(), engine.host.clone()]);
        args.extend([
            "--concurrency".into(),
            "1".into(),
            "--tag".into(),
            tags.tag.clone(),
        ]);
        args.extend(["--report-dir".into(), report_dir.display().to_string()]);
        args
    };
    let first_dir = reports.path().join("first");
    let args = build_args(&first_dir);
    let started = Instant::now();
    let mut child = spawn(&args.iter().map(String::as_str).collect::<Vec<_>>(), &log);
    let deadline = Instant::now() + Duration::from_secs(300);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains(&format!("{}: building", names[1]))
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        assert!(Instant::now() < deadline, "{} never started", names[1]);
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_for_containers(&mut child, &engine.host, 1, &log);
    std::thread::sleep(Duration::from_secs(1));
    eprintln!(
        "{} built and {} installing after {:?}",
        names[0],
        names[1],
        started.elapsed()
    );

    // dockerd closes its socket at once, then spends up to 10 s stopping containers: the
    // run must end with the socket, not wait for the rest.
    let stopped = Instant::now();
    let (status, after) = std::thread::scope(|s| {
        let killer = s.spawn(|| engine.kill());
        let status = wait_for(&mut child, Duration::from_secs(60));
        let after = stopped.elapsed();
        killer.join().unwrap();
        (status, after)
    });
    let killed_in = stopped.elapsed();
    let stderr = std::fs::read_to_string(&log).unwrap();
    let status =
        status.unwrap_or_else(|| panic!("no end 60 s after the engine stopped:\n{stderr}"));
    eprintln!(
        "the run ended {after:?} after the engine began to stop (its shutdown took {killed_in:?})"
    );
    // Every failure is the engine's: an infrastructure fault, worth a retry.
    assert_eq!(status.code(), Some(75), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(after < Duration::from_secs(8), "{after:?}\n{stderr}");

    let report = read_report(&first_dir);
    assert_eq!(
        report_entry(&report, names[0])["status"],
        "built",
        "{report}"
    );
    for name in &names[1..] {
        let entry = report_entry(&report, name);
        assert_eq!(entry["status"], "failed", "{entry}");
        let error = entry["error"].as_str().unwrap();
        assert!(error.starts_with("engine unreachable"), "{entry}");
    }
    assert!(report["engines"][0]["lost"].is_string(), "{report}");

    // The engine comes back with its data: nothing of the partial build is tagged, and a
    // re-run builds the rest, reusing what had finished.
    assert_eq!(engine.run("resume"), engine.host);
    for name in &names[1..] {
        let image = tags.image(name);
        assert!(
            !engine
                .docker(&["image", "inspect", &image])
                .status
                .success(),
            "{image} exists"
        );
    }
    let second_dir = reports.path().join("second");
    let args = build_args(&second_dir);
    let out = Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(&args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = read_report(&second_dir);
    let first = report_entry(&report, names[0]);
    assert_eq!(first["containers_started"], 0, "{first}");
    assert!(first["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["cached"] == true));
    // `c` has `a`'s dependencies: its install comes from the cache too.
    let install = |name: &str| report_step(&report, name, "install dependencies")["cached"].clone();
    assert_eq!(install(names[2]), true, "{report}");
    assert_eq!(install(names[1]), false, "{report}");
    for name in names {
        run_spec_on(&engine.host, &tags.image(name));
    }
    eprintln!("whole test: {:?}", started.elapsed());
}

/// The parts of an image's configuration a build decides.
fn decided_config(reference: &str) -> serde_json::Value {
    let c = image_config(reference);
    serde_json::json!({
        "Env": c["Env"], "Entrypoint": c["Entrypoint"], "Cmd": c["Cmd"],
        "WorkingDir": c["WorkingDir"], "User": c["User"], "Labels": c["Labels"],
    })
}

/// One `build` of `dir` per tag, at once; build `i` writes `reports/r<i>/` and `reports/<i>.log`.
fn spawn_builds(dir: &Path, tags: &[&str], reports: &Path) -> Vec<Child> {
    tags.iter()
        .enumerate()
        .map(|(i, tag)| {
            let report = reports.join(format!("r{i}"));
            spawn(
                &[
                    "build",
                    dir.to_str().unwrap(),
                    "--tag",
                    tag,
                    "--report-dir",
                    report.to_str().unwrap(),
                ],
                &reports.join(format!("{i}.log")),
            )
        })
        .collect()
}

#[test]
fn two_processes_building_the_same_connector_agree_and_leave_a_sound_cache() {
    let ws = Workspace::new();
    let name = "source-twice";
    slow_connector(&ws, name, 5);
    let dir = ws.path().join(name);
    let plan = cli(&["plan", dir.to_str().unwrap()]);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let steps: Vec<&str> = plan["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let keys = &plan["keys"];
    let install = steps
        .iter()
        .position(|s| *s == "install dependencies")
        .unwrap();
    let entry =
        |key: &serde_json::Value| format!("connector-build-cache:{}", key.as_str().unwrap());
    let install_entry = entry(&keys["steps"][install]);
    let image_entry = entry(&keys["image"]);
    let tag_a = TestTag::new("twice-a");
    let tag_b = TestTag(format!("{}-b", tag_a.0));
    let reports = tempfile::tempdir().unwrap();

    let started = Instant::now();
    let mut children = spawn_builds(&dir, &[&tag_a.0, &tag_b.0], reports.path());
    // Each cache entry, the moment it appears, is complete: the dependency layer has the
    // dependencies, the finished image answers `spec`.
    let (mut install_seen, mut image_seen) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(300);
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        assert!(Instant::now() < deadline, "the builds did not finish");
        if !install_seen && image_exists(&install_entry) {
            install_seen = true;
            let out = docker(&[
                "run",
                "--rm",
                "--network",
                "none",
                "--entrypoint",
                "python",
                &install_entry,
                "-c",
                "import requests",
            ]);
            assert!(
                out.status.success(),
                "incomplete dependency layer: {}",
                text(&out.stderr)
            );
        }
        if !image_seen && image_exists(&image_entry) {
            image_seen = true;
            run_spec(&image_entry);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("two concurrent builds in {:?}", started.elapsed());
    for (i, child) in children.iter_mut().enumerate() {
        let status = child.wait().unwrap();
        let log = std::fs::read_to_string(reports.path().join(format!("{i}.log"))).unwrap();
        assert!(status.success(), "build {i}:\n{log}");
    }
    assert!(install_seen && image_seen);
    assert_eq!(decided_config(&tag_a.0), decided_config(&tag_b.0));
    assert_eq!(run_spec(&tag_a.0), run_spec(&tag_b.0));

    // A third build is all cache hits, with no container, and answers spec.
    let tag_c = TestTag(format!("{}-c", tag_a.0));
    let (results, out) = build_json(&[dir.to_str().unwrap(), "--tag", &tag_c.0]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let result = &results[0];
    assert_eq!(result["containers_started"], 0, "{result}");
    assert!(result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["cached"] == true));
    assert_eq!(run_spec(&tag_c.0), run_spec(&tag_a.0));
}

#[test]
fn a_second_sigterm_cuts_the_cleanup_short_and_still_writes_the_report() {
    let ws = Workspace::new();
    let name = "source-sigterm-twice";
    slow_connector(&ws, name, 300);
    let tags = BulkTags::new("sigterm-twice", &[name], &[MAIN_ENGINE]);
    let reports = tempfile::tempdir().unwrap();
    let log = reports.path().join("stderr.log");
    let report_dir = reports.path().join("run");
    let mut child = spawn(
        &[
            "--connectors-dir",
            ws.path().to_str().unwrap(),
            "build",
            name,
            "--tag",
            &tags.tag,
            "--report-dir",
            report_dir.to_str().unwrap(),
        ],
        &log,
    );
    wait_for_containers(&mut child, MAIN_ENGINE, 1, &log);
    let term = || {
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    term();
    // The second arrives while the containers are being removed (that takes over 500 ms).
    std::thread::sleep(Duration::from_millis(200));
    term();
    let status = wait_for(&mut child, Duration::from_secs(30));
    let stderr = std::fs::read_to_string(&log).unwrap();
    for id in containers_of(MAIN_ENGINE, child.id(), false) {
        let _ = docker(&["rm", "-f", &id]);
    }
    let status =
        status.unwrap_or_else(|| panic!("still running 30 s after two SIGTERMs:\n{stderr}"));
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report = read_report(&report_dir);
    assert_eq!(report["interrupted"]["signal"], "SIGTERM", "{report}");
    assert_eq!(
        report_entry(&report, name)["status"],
        "interrupted",
        "{report}"
    );
    assert!(!image_exists(&tags.image(name)));
}

#[test]
fn two_processes_building_the_same_folder_and_tag_report_the_image_that_is_tagged() {
    let ws = Workspace::new();
    let name = "source-same-tag";
    slow_connector(&ws, name, 5);
    let dir = ws.path().join(name);
    let tag = TestTag::new("same-tag");
    let reports = tempfile::tempdir().unwrap();
    let mut children = spawn_builds(&dir, &[&tag.0, &tag.0], reports.path());
    let mut ids = Vec::new();
    let mut containers = Vec::new();
    for (i, child) in children.iter_mut().enumerate() {
        let status = wait_for(child, Duration::from_secs(300));
        let log = std::fs::read_to_string(reports.path().join(format!("{i}.log"))).unwrap();
        assert!(status.is_some_and(|s| s.success()), "build {i}:\n{log}");
        let report = read_report(&reports.path().join(format!("r{i}")));
        let entry = report_entry(&report, name);
        ids.push(entry["image_id"].as_str().unwrap().to_string());
        containers.push(entry["containers_started"].as_u64().unwrap());
    }
    // One install: the second build waited for the first and took its image from the cache.
    let tagged = docker_ok(&["image", "inspect", "--format", "{{.Id}}", &tag.0]);
    assert_eq!(ids[0], ids[1], "two images for one folder");
    assert_eq!(
        ids[0],
        tagged.trim(),
        "the reports name an image not tagged"
    );
    assert!(
        containers.contains(&0),
        "both builds ran containers: {containers:?}"
    );
}
