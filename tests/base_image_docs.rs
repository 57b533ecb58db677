//! The generated base image documentation against the declarations, without an engine: the
//! CI drift check. The checked-in files depend on the declarations only, so this means the
//! same on a fresh machine as on one that has published images.

mod common;

use std::path::Path;

use common::*;
use connector_build::base_images::docs;
use connector_build::model::families::Declarations;

fn generated() -> std::path::PathBuf {
    repo_root().join("base-images").join(docs::GENERATED_DIR)
}

#[test]
fn the_checked_in_docs_match_the_declarations() {
    let embedded = docs::render_checked_in(&Declarations::embedded().unwrap());
    let on_disk =
        docs::render_checked_in(&Declarations::load(&repo_root().join("base-images")).unwrap());
    assert_eq!(embedded, on_disk, "the tool embeds what base-images/ holds");
    let stale = docs::stale(&generated(), &embedded).unwrap();
    assert!(
        stale.is_empty(),
        "base-images/generated does not match the declarations ({stale:?}); run `cargo run -- base-images docs` from the repository root and commit the result"
    );
    // And the command says so too.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(["base-images", "docs", "--check"])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_new_version_is_drift_until_the_docs_are_regenerated() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["roots.toml", "python.toml"] {
        std::fs::copy(
            repo_root().join("base-images").join(name),
            dir.path().join(name),
        )
        .unwrap();
    }
    copy_dir(&generated(), &dir.path().join(docs::GENERATED_DIR));
    let python = dir.path().join("python.toml");
    let text_before = std::fs::read_to_string(&python).unwrap();
    // A release: the newest block copied above itself with a new version and pip.
    let start = text_before.find("\n[[versions]]").unwrap() + 1;
    let newest = &text_before[start..];
    let newest = &newest[..newest[1..]
        .find("\n[[versions]]")
        .map_or(newest.len(), |i| i + 2)];
    let release = newest
        .replace(
            &newest
                .lines()
                .find(|l| l.starts_with("version = "))
                .unwrap()
                .to_string(),
            "version = \"9.0.0\"",
        )
        .replace(
            &newest
                .lines()
                .find(|l| l.starts_with("changelog = "))
                .unwrap()
                .to_string(),
            "changelog = \"Upgrade pip to 24.0\"",
        )
        .replace(
            &newest
                .lines()
                .find(|l| l.starts_with("pip = "))
                .unwrap()
                .to_string(),
            "pip = \"24.0\"",
        );
    std::fs::write(
        &python,
        format!(
            "{}{release}\n{}",
            &text_before[..start],
            &text_before[start..]
        ),
    )
    .unwrap();

    let docs_check = |dir: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_connector-build"))
            .args(["base-images", "--declarations"])
            .arg(dir)
            .args(["docs", "--check"])
            .output()
            .unwrap()
    };
    let out = docs_check(dir.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for stale in [
        "python/changelog.json",
        "python/README.md",
        "python/dockerfiles/9.0.0.Dockerfile",
    ] {
        assert!(stderr.contains(stale), "{stale} not reported: {stderr}");
    }
    assert!(stderr.contains("base-images docs"), "{stderr}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args(["base-images", "--declarations"])
        .arg(dir.path())
        .arg("docs")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(docs_check(dir.path()).status.success());

    let out_dir = dir.path().join(docs::GENERATED_DIR).join("python");
    let changelog: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("changelog.json")).unwrap())
            .unwrap();
    assert_eq!(changelog[0]["version"], "9.0.0", "newest first");
    assert_eq!(changelog[0]["changelog_entry"], "Upgrade pip to 24.0");
    let dockerfile = std::fs::read_to_string(out_dir.join("dockerfiles/9.0.0.Dockerfile")).unwrap();
    assert_eq!(changelog[0]["dockerfile_example"], dockerfile.as_str());
    assert!(dockerfile.contains("pip==24.0"), "{dockerfile}");
    let table = std::fs::read_to_string(out_dir.join("README.md")).unwrap();
    assert!(
        table.contains("| Version | Published | digest-pinned address | Changelog |"),
        "{table}"
    );
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ")).collect();
    assert!(rows[1].starts_with("| 9.0.0 |"), "{table}");
    assert!(rows[1].ends_with("| Upgrade pip to 24.0 |"), "{table}");
    // The older version's files did not change.
    assert_eq!(
        std::fs::read_to_string(out_dir.join("dockerfiles/1.0.0.Dockerfile")).unwrap(),
        std::fs::read_to_string(generated().join("python/dockerfiles/1.0.0.Dockerfile")).unwrap()
    );
}
