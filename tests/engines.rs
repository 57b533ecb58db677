//! Builds spread over two real engines: the one the set-up runs and a second `dockerd` this
//! test starts beside it (scripts/second-engine.sh), with its own socket, data root and cache.

mod common;

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

const FIRST: &str = "unix:///var/run/docker.sock";

/// The tests share the second engine's socket and data root: one at a time.
static SECOND_ENGINE: Mutex<()> = Mutex::new(());

/// The second engine, under scripts/second-engine.sh's default name, bridge and network.
fn second_engine() -> ExtraEngine {
    ExtraEngine::start("cb-test-docker2", "cb-test-br2", "172.31.254")
}

fn on_engine(host: &str, image: &str) -> bool {
    Command::new("docker")
        .args(["-H", host, "image", "inspect", image])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn two_engines_share_the_work_and_each_keeps_its_images() {
    let _one_at_a_time = SECOND_ENGINE.lock().unwrap_or_else(|p| p.into_inner());
    let second = second_engine();
    let ws = Workspace::new();
    let names = [
        "source-two-a",
        "source-two-b",
        "source-two-c",
        "source-two-d",
    ];
    for (i, name) in names.iter().enumerate() {
        let fixture = if i % 2 == 0 {
            "source-fixture-requirements"
        } else {
            "source-fixture-setup"
        };
        ws.add_renamed(fixture, name);
    }
    let tags = BulkTags::new("two-engines", &names, &[FIRST, &second.host]);
    let reports = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = cli(&[
        "--connectors-dir",
        ws.path().to_str().unwrap(),
        "build",
        "--language",
        "python",
        "--engine",
        FIRST,
        "--engine",
        &second.host,
        "--concurrency",
        "1",
        "--tag",
        &tags.tag,
        "--report-dir",
        reports.path().to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    eprintln!("4 connectors on 2 engines in {:?}", started.elapsed());

    let report = read_report(reports.path());
    let engines = report["engines"].as_array().unwrap();
    assert_eq!(engines.len(), 2);
    assert!(engines[0]["built"].as_u64().unwrap() >= 1, "{report}");
    assert!(engines[1]["built"].as_u64().unwrap() >= 1, "{report}");
    for name in names {
        let entry = report_entry(&report, name);
        assert_eq!(entry["status"], "built", "{entry}");
        // Built where the report says, and only there: each engine has its own images.
        let host = entry["engine"].as_str().unwrap();
        let other = if host == FIRST {
            second.host.as_str()
        } else {
            FIRST
        };
        assert!(on_engine(host, &tags.image(name)), "{name} not on {host}");
        assert!(
            !on_engine(other, &tags.image(name)),
            "{name} also on {other}"
        );
    }
    let on_second = names
        .iter()
        .find(|n| report_entry(&report, n)["engine"] == second.host.as_str())
        .unwrap();
    run_spec_on(&second.host, &tags.image(on_second));
    let html = std::fs::read_to_string(reports.path().join("report.html")).unwrap();
    assert!(html.contains(&second.host) && html.contains(">e2</text>"));
    drop(tags);
}

#[test]
fn connectors_of_an_engine_that_stops_are_retried_on_the_other() {
    let _one_at_a_time = SECOND_ENGINE.lock().unwrap_or_else(|p| p.into_inner());
    let second = second_engine();
    let ws = Workspace::new();
    // Two go to the first engine's two slots, one to the second engine, which is stopped
    // under it; the first engine then builds that one again.
    let names = ["source-lost-a", "source-lost-b", "source-lost-c"];
    let unique = format!("{:?}", std::time::SystemTime::now());
    for name in names {
        let dir = ws.add_renamed("source-fixture-setup", name);
        // An install slow enough to be caught in flight, and new to both engines' caches.
        let setup = dir.join("setup.py");
        let original = std::fs::read_to_string(&setup).unwrap();
        std::fs::write(
            &setup,
            format!("import time; time.sleep(3)  # {unique}\n{original}"),
        )
        .unwrap();
    }
    let tags = BulkTags::new("lost-engine", &names, &[FIRST, &second.host]);
    let reports = tempfile::tempdir().unwrap();
    let log = reports.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(["--connectors-dir", ws.path().to_str().unwrap()])
        .args(["build", "--support-level", "certified"])
        .args(["--engine", FIRST, "--engine", &second.host])
        .args(["--concurrency", "2", "--tag", &tags.tag])
        .arg("--report-dir")
        .arg(reports.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    // Wait for a build container on the second engine, then stop that engine under it.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ps = second.docker(&["ps", "-q", "--filter", "name=connector-build-step-"]);
        if !text(&ps.stdout).trim().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no build ever ran on the second engine: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the build ended before the engine was stopped"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    let stopped_at = Instant::now();
    second.kill();
    eprintln!("second engine stopped in {:?}", stopped_at.elapsed());

    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the run did not finish");
        std::thread::sleep(Duration::from_millis(200));
    };
    let stderr = std::fs::read_to_string(&log).unwrap();
    eprintln!(
        "run finished {:?} after the engine was stopped",
        stopped_at.elapsed()
    );
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("stopped answering"), "{stderr}");

    let report = read_report(reports.path());
    assert_eq!(report["totals"]["built"], 3, "{report}");
    assert!(report["engines"][1]["lost"].is_string(), "{report}");
    let mut retried = 0;
    for name in names {
        let entry = report_entry(&report, name);
        assert_eq!(entry["status"], "built", "{entry}");
        assert_eq!(entry["engine"], FIRST, "{entry}");
        assert!(on_engine(FIRST, &tags.image(name)));
        if let Some(lost) = entry["lost_attempts"].as_array().filter(|a| !a.is_empty()) {
            assert_eq!(lost[0]["engine"], second.host.as_str(), "{entry}");
            retried += 1;
        }
    }
    assert!(retried >= 1, "nothing was retried: {report}");
    let md = std::fs::read_to_string(reports.path().join("report.md")).unwrap();
    assert!(md.contains("stopped answering"), "{md}");
    eprintln!("{stderr}");
}
