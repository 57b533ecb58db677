//! The bad input corpus (tests/bad_inputs/cases.toml): every case runs the real command line
//! on a fresh repository and must fail with the message in its snapshot, with the right exit
//! code, without a panic, without changing a file and without tagging an image.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde::Deserialize;

/// The connector every case gets, a renamed copy of `FIXTURE` (or the case's `fixture`).
const CONNECTOR: &str = "source-bad";
const FIXTURE: &str = "source-fixture-requirements";

#[derive(Deserialize)]
struct Manifest {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    about: String,
    #[serde(default)]
    args: Option<Vec<String>>,
    #[serde(default)]
    extra: Vec<String>,
    #[serde(default = "one")]
    exit: i32,
    #[serde(default)]
    engine: bool,
    #[serde(default)]
    fixture: Option<String>,
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    setup: Option<String>,
}

fn one() -> i32 {
    1
}

fn corpus() -> PathBuf {
    repo_root().join("tests/bad_inputs")
}

fn load_manifest() -> Manifest {
    let path = corpus().join("cases.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A file or link as found on disk; large files by size and time, to keep this quick.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Dir,
    File(Vec<u8>),
    Large(u64, std::time::SystemTime),
    Link(PathBuf),
    /// A FIFO or socket: never opened, since opening a FIFO blocks.
    Special,
}

fn tree(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).follow_links(false) {
        let e = e.unwrap();
        let meta = e.path().symlink_metadata().unwrap();
        let entry = if meta.file_type().is_symlink() {
            Entry::Link(std::fs::read_link(e.path()).unwrap())
        } else if meta.is_dir() {
            Entry::Dir
        } else if !meta.is_file() {
            Entry::Special
        } else if meta.len() > 1 << 20 {
            Entry::Large(meta.len(), meta.modified().unwrap())
        } else {
            Entry::File(std::fs::read(e.path()).unwrap())
        };
        out.insert(e.path().to_path_buf(), entry);
    }
    out
}

/// Preparations that cannot be committed as files.
fn setup(action: &str, repo: &Path, connector: &Path, args: &mut Vec<String>) {
    let package = connector.join(CONNECTOR.replace('-', "_"));
    match action {
        // Sparse: the size without the disk space, over the 256 MiB limit.
        "enormous-file" => {
            let f = std::fs::File::create(package.join("dump.json")).unwrap();
            f.set_len(300 << 20).unwrap();
        }
        "symlink-absolute" => {
            std::os::unix::fs::symlink("/etc/passwd", package.join("passwd.txt")).unwrap()
        }
        "symlink-relative" => {
            std::fs::write(repo.join("outside.json"), "{}").unwrap();
            std::os::unix::fs::symlink("../../outside.json", package.join("shared.json")).unwrap();
        }
        "file-name-not-utf8" => {
            use std::os::unix::ffi::OsStrExt;
            let name = std::ffi::OsStr::from_bytes(b"caf\xe9.json");
            std::fs::write(package.join(name), "{}").unwrap();
        }
        "metadata-is-directory" => {
            std::fs::remove_file(connector.join("metadata.yaml")).unwrap();
            std::fs::create_dir(connector.join("metadata.yaml")).unwrap();
        }
        "package-is-file" => {
            std::fs::remove_dir_all(&package).unwrap();
            std::fs::write(&package, "not a folder\n").unwrap();
        }
        "requirements-is-directory" => {
            std::fs::remove_file(connector.join("requirements.txt")).unwrap();
            std::fs::create_dir(connector.join("requirements.txt")).unwrap();
        }
        "deep-yaml" => {
            let deep = format!("data: {}{}\n", "[".repeat(50_000), "]".repeat(50_000));
            std::fs::write(connector.join("metadata.yaml"), deep).unwrap();
        }
        "deep-query" => args.push(format!("{}data{}", "(".repeat(10_000), ")".repeat(10_000))),
        // Opening either blocks or fails: they must be refused before anything reads them.
        "fifo-in-package" => {
            let fifo = package.join("events.pipe");
            let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
            assert!(made.success(), "mkfifo {}", fifo.display());
        }
        "socket-in-package" => {
            drop(std::os::unix::net::UnixListener::bind(package.join("control.sock")).unwrap());
        }
        "main-is-directory" => {
            std::fs::remove_file(connector.join("main.py")).unwrap();
            std::fs::create_dir(connector.join("main.py")).unwrap();
        }
        other => panic!("unknown setup `{other}`"),
    }
}

struct Run {
    out: Output,
    stdout: String,
    stderr: String,
}

/// No case takes this long; one that does hangs, and is ended and reported.
const CASE_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

fn run(repo: &Path, args: &[String], env: &[(&str, &str)]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(args)
        .current_dir(repo)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("GITHUB_STEP_SUMMARY")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run connector-build");
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + CASE_TIME_LIMIT;
    let mut hung = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            hung = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    let mut stderr = text(&out.stderr);
    if hung {
        stderr.push_str(&format!(
            "[the test ended it: still running after {} s]\n",
            CASE_TIME_LIMIT.as_secs()
        ));
    }
    Run {
        stdout: text(&out.stdout),
        stderr,
        out,
    }
}

/// Replaces what differs between runs and machines.
fn normalise(s: &str, replacements: &[(&str, &str)]) -> String {
    let mut s = s.to_string();
    for (from, to) in replacements {
        if !from.is_empty() {
            s = s.replace(from, to);
        }
    }
    s
}

fn check(case: &Case) -> Result<(), String> {
    let ws = Workspace::new();
    let repo = ws.path().canonicalize().unwrap();
    let reports = tempfile::tempdir().unwrap();
    let connector = ws.add_renamed(case.fixture.as_deref().unwrap_or(FIXTURE), CONNECTOR);
    let files = corpus().join(&case.name);
    if files.is_dir() {
        copy_dir(&files, &repo);
        // Overlaid metadata refers to the base image by the fixtures' placeholder.
        let meta = connector.join("metadata.yaml");
        if let Ok(text) = std::fs::read_to_string(&meta) {
            std::fs::write(&meta, fill_placeholders(text)).unwrap();
        }
    }
    for rel in &case.remove {
        let p = repo.join(rel);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else {
            std::fs::remove_file(&p).unwrap();
        }
    }
    let tag = format!(
        "connector-build-bad-input/{}:{}",
        case.name,
        std::process::id()
    );
    let reports_dir = reports.path().join("reports");
    let fill = |a: &String| {
        a.replace("{tag}", &tag)
            .replace("{reports}", reports_dir.to_str().unwrap())
    };
    let default_build = case.args.is_none();
    let mut args: Vec<String> = match &case.args {
        Some(args) => args.iter().map(fill).collect(),
        None => [
            "build",
            CONNECTOR,
            "--tag",
            "{tag}",
            "--report-dir",
            "{reports}",
        ]
        .iter()
        .map(|a| fill(&a.to_string()))
        .collect(),
    };
    args.extend(case.extra.iter().map(fill));
    if let Some(action) = &case.setup {
        setup(action, &repo, &connector, &mut args);
    }

    let before = tree(&repo);
    let r = run(&repo, &args, &[]);
    let after = tree(&repo);

    let mut problems = Vec::new();
    if r.out.status.code() != Some(case.exit) {
        problems.push(format!(
            "exit code {:?}, expected {}",
            r.out.status.code(),
            case.exit
        ));
    }
    for out in [&r.stdout, &r.stderr] {
        if out.contains("panicked")
            || out.contains("stack backtrace")
            || out.contains("RUST_BACKTRACE")
        {
            problems.push("it panicked".into());
        }
    }
    if before != after {
        let changed: Vec<_> = after
            .iter()
            .filter(|(p, e)| before.get(*p) != Some(e))
            .map(|(p, _)| p.display().to_string())
            .chain(
                before
                    .keys()
                    .filter(|p| !after.contains_key(*p))
                    .map(|p| format!("{} (removed)", p.display())),
            )
            .collect();
        problems.push(format!("files changed: {changed:?}"));
    }
    if image_exists(&tag) {
        let _ = docker(&["image", "rm", &tag]);
        problems.push(format!("an image was tagged {tag}"));
    }

    // A connector that fails before the engine needs none: `plan` gives the same message
    // with no engine anywhere.
    let connector_failure = r
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix(&format!("failed {CONNECTOR}: ")))
        .map(str::to_string);
    if let (true, false, Some(first)) = (default_build, case.engine, connector_failure) {
        let mut plan_args = vec!["plan".to_string(), CONNECTOR.to_string()];
        plan_args.extend(case.extra.iter().map(fill));
        let plan = run(
            &repo,
            &plan_args,
            &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        );
        if plan.out.status.code() != Some(1) || !plan.stderr.contains(&first) {
            problems.push(format!(
                "`plan` without an engine did not fail the same way (exit {:?}):\n{}",
                plan.out.status.code(),
                plan.stderr
            ));
        }
    }

    let base = base_ref();
    let root = repo_root();
    let replacements = [
        (reports_dir.to_str().unwrap(), "[reports]"),
        (repo.to_str().unwrap(), "[repo]"),
        (ws.path().to_str().unwrap(), "[repo]"),
        (tag.as_str(), "[tag]"),
        (base.as_str(), "[base-image]"),
        (root.to_str().unwrap(), "[source]"),
    ];
    let shown_args: Vec<String> = args
        .iter()
        .map(|a| {
            if a.len() > 200 {
                format!("{}...({} characters)", &a[..20], a.len())
            } else {
                a.clone()
            }
        })
        .collect();
    let snapshot = format!(
        "$ connector-build {}\nexit code: {}\n--- stdout\n{}--- stderr\n{}",
        normalise(&shown_args.join(" "), &replacements),
        r.out.status.code().map_or("none".into(), |c| c.to_string()),
        normalise(&r.stdout, &replacements),
        normalise(&r.stderr, &replacements),
    );
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("bad_inputs/snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_description(case.about.clone());
    settings.set_omit_expression(true);
    // Digests differ per machine; the runner's own line numbers change with its code.
    settings.add_filter(r"sha256:[0-9a-f]{64}\b", "sha256:[digest]");
    settings.add_filter(
        r#""<connector-build>/([^"]+)", line \d+"#,
        r#""<connector-build>/$1", line [n]"#,
    );
    settings.add_filter(r"\b\d+\.\d+s\b", "[secs]");
    settings.add_filter(r"repeated \d+ more times", "repeated [n] more times");
    let snapshot_result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_snapshot!(case.name.clone(), snapshot));
    }));
    if snapshot_result.is_err() {
        problems.push("the output differs from its snapshot (see above)".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}\n  stderr:\n{}",
            case.name,
            problems.join("\n  "),
            r.stderr
        ))
    }
}

#[test]
fn every_bad_input_fails_clearly_and_changes_nothing() {
    let manifest = load_manifest();
    assert!(
        manifest.case.len() >= 60,
        "the corpus has at least 60 cases"
    );
    let mut names = std::collections::BTreeSet::new();
    for case in &manifest.case {
        assert!(names.insert(case.name.clone()), "case {} twice", case.name);
    }
    // `BAD_INPUT_CASES=a,b` runs only those (while working on them; the suite runs all).
    let mut manifest = manifest;
    if let Ok(only) = std::env::var("BAD_INPUT_CASES") {
        let only: Vec<&str> = only.split(',').map(str::trim).collect();
        manifest.case.retain(|c| only.contains(&c.name.as_str()));
        assert!(
            !manifest.case.is_empty(),
            "no case is named in BAD_INPUT_CASES"
        );
    }
    // Cases are independent; two at a time keeps the run short on a small machine.
    let failures: Vec<String> = std::thread::scope(|s| {
        let chunks: Vec<&[Case]> = manifest
            .case
            .chunks(manifest.case.len().div_ceil(2))
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|c| check(c).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        manifest.case.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_case_folder_is_in_the_manifest() {
    let manifest = load_manifest();
    let names: std::collections::BTreeSet<_> =
        manifest.case.iter().map(|c| c.name.as_str()).collect();
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() && name != "snapshots" {
            assert!(
                names.contains(name.as_str()),
                "tests/bad_inputs/{name} is in no case"
            );
        }
    }
}
