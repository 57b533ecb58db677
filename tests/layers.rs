//! Image layers handled without `docker commit`: load streams that leave out the layers the
//! engine has (`engine::image_archive`), dependency delta layers and rebases onto a new base.
//! On the real engine.

mod common;

use common::sha256 as digest;
use connector_build::engine::image_archive::LoadLayer;
use connector_build::engine::Engine;

fn layer_tar(file: &str, contents: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(contents.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(946_684_800);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, file, contents).unwrap();
    b.into_inner().unwrap()
}

fn config(diff_ids: &[String], marker: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": {"test": marker}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// dockerd's loader uses a layer whose chain id it has without opening its file: a load
/// stream with only the new layer's tar makes the whole image, and saving it back gives every
/// layer, each matching its diff id.
#[tokio::test]
async fn load_skips_layers_the_engine_has() {
    let engine = Engine::connect(None)
        .await
        .expect("the engine (run scripts/setup.sh)");
    let dir = tempfile::tempdir().unwrap();
    let marker = common::nonce();
    let layers: Vec<Vec<u8>> = ["a", "b", "c"]
        .iter()
        .map(|f| layer_tar(f, format!("{f} {marker}").as_bytes()))
        .collect();
    let paths: Vec<_> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let p = dir.path().join(format!("{i}.tar"));
            std::fs::write(&p, l).unwrap();
            p
        })
        .collect();
    let ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
    let tag = common::TestTag::new("archive-two");
    let tag3 = common::TestTag::new("archive-three");

    // Two layers, both sent.
    let two = config(&ids[..2], &marker);
    let id = engine
        .load_image(
            two.clone(),
            vec![tag.0.clone()],
            ids[..2]
                .iter()
                .zip(&paths)
                .map(|(d, p)| LoadLayer {
                    diff_id: d.clone(),
                    tar: Some(p.clone().into()),
                })
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(id, digest(&two));

    // Three layers, only the third sent: the first two are the engine's.
    let three = config(&ids, &marker);
    let layers3: Vec<LoadLayer> = ids
        .iter()
        .enumerate()
        .map(|(i, d)| LoadLayer {
            diff_id: d.clone(),
            tar: (i == 2).then(|| paths[2].clone().into()),
        })
        .collect();
    engine
        .load_image(three.clone(), vec![tag3.0.clone()], layers3)
        .await
        .expect("a load without the layers the engine has");
    assert_eq!(common::image_layers(&tag3.0), ids);

    // Saved back: all three, checked against their diff ids, the config unchanged.
    let saved = engine.save_image(&tag3.0, dir.path()).await.unwrap();
    assert_eq!(saved.config, three);
    let back: Vec<Vec<u8>> = saved
        .layers
        .iter()
        .map(|l| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut saved.open_layer(l).unwrap(), &mut bytes).unwrap();
            bytes
        })
        .collect();
    assert_eq!(back, layers);

    // A layer the engine lacks, left out: refused, nothing tagged.
    let other = layer_tar("d", format!("d {marker}").as_bytes());
    let mut missing = ids.clone();
    missing.push(digest(&other));
    let tag4 = common::TestTag::new("archive-missing");
    let err = engine
        .load_image(
            config(&missing, &marker),
            vec![tag4.0.clone()],
            missing
                .iter()
                .map(|d| LoadLayer {
                    diff_id: d.clone(),
                    tar: None,
                })
                .collect(),
        )
        .await
        .unwrap_err();
    assert!(!common::image_exists(&tag4.0), "{err}");
    let _ = common::docker(&["image", "rm", &id]);
}

const UV: &str = "/var/lib/connector-build/tools/uv";

/// Sets the uv fixture's dependencies to `deps` and locks them with uv on the host.
fn lock_with(dir: &std::path::Path, deps: &[&str]) {
    let py = dir.join("pyproject.toml");
    let text = std::fs::read_to_string(&py).unwrap();
    let start = text.find("dependencies = [").unwrap();
    let end = start + text[start..].find(']').unwrap() + 1;
    let list: Vec<String> = deps.iter().map(|d| format!("    \"{d}\",")).collect();
    let text = format!(
        "{}dependencies = [\n{}\n]{}",
        &text[..start],
        list.join("\n"),
        &text[end..]
    );
    std::fs::write(&py, text).unwrap();
    let out = std::process::Command::new(UV)
        .args(["lock", "-q"])
        .current_dir(dir)
        .env("UV_CACHE_DIR", dir.parent().unwrap().join("uv-cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out.stderr));
}

fn build(dir: &std::path::Path, xdg: &std::path::Path, tag: &str) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args([
            "build",
            "--rebase",
            "--installer",
            "uv",
            "--json",
            "--tag",
            tag,
        ])
        .arg(dir)
        .env("XDG_CACHE_HOME", xdg)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let results = common::results(&out.stdout);
    common::built(&results, &out).clone()
}

/// What a dependency layer leaves in the image: the installed distributions, every path of
/// site-packages and the scripts folder with mode and owner, the contents of all but
/// bytecode (whose header holds a timestamp), and `spec`.
fn installed_content(image: &str) -> (String, String, serde_json::Value) {
    let dirs = "/usr/local/lib/python3.11/dist-packages /usr/local/bin";
    let listing = common::docker_ok(&[
        "run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c",
        &format!("find {dirs} -printf '%p %M %U:%G\\n' | sort; find {dirs} -type f ! -name '*.pyc' -exec sha256sum {{}} + | sort"),
    ]);
    let dists = common::docker_ok(&[
        "run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c",
        "import importlib.metadata as m\nprint(sorted((d.metadata['Name'], d.version) for d in m.distributions()))",
    ]);
    (dists, listing, common::run_spec(image))
}

fn unique_readme(dir: &std::path::Path, test: &str) {
    // A manifest of the dependency layer: unique keys, so no earlier run's cache answers.
    std::fs::write(
        dir.join("README.md"),
        format!("{test} {}\n", common::nonce()),
    )
    .unwrap();
}

/// A private copy of `fixture` whose dependency layer has a cache key of its own, its XDG
/// cache folder, and three test tags.
fn case(
    fixture: &str,
    test: &str,
    tags: [&str; 3],
) -> (
    common::Workspace,
    std::path::PathBuf,
    std::path::PathBuf,
    (common::TestTag, common::TestTag, common::TestTag),
) {
    let ws = common::Workspace::new();
    let dir = ws.add_fixture(fixture);
    let xdg = ws.path().join("xdg");
    unique_readme(&dir, test);
    let [a, b, c] = tags.map(common::TestTag::new);
    (ws, dir, xdg, (a, b, c))
}

/// A pin change builds a delta layer on the previous dependency layer (uninstalling what
/// the lock dropped); the image holds what a clean install of the same lock holds.
#[test]
fn dependency_delta_matches_a_clean_install() {
    let (ws, dir, xdg, (t1, t2, t3)) = case(
        "source-fixture-uv",
        "delta",
        ["delta-1", "delta-2", "delta-clean"],
    );
    lock_with(
        &dir,
        &[
            "python-dateutil==2.9.0.post0",
            "six==1.16.0",
            "pytz==2024.1",
        ],
    );
    let first = build(&dir, &xdg, &t1.0);
    assert!(
        first["dependency_layer"]
            .as_str()
            .unwrap()
            .starts_with("clean install"),
        "{first}"
    );

    lock_with(&dir, &["python-dateutil==2.9.0.post0", "six==1.17.0"]);
    let delta = build(&dir, &xdg, &t2.0);
    let how = delta["dependency_layer"].as_str().unwrap();
    assert!(how.starts_with("delta 1 of 3"), "{how}");
    assert!(how.contains("1 removed"), "{how}");
    let (l1, l2) = (common::image_layers(&t1.0), common::image_layers(&t2.0));
    assert_eq!(
        l2.len(),
        l1.len() + 1,
        "one delta layer on the previous ones"
    );

    assert_same_as_clean(&ws, &dir, &t2.0, &t3.0);
}

/// Builds the connector clean as `clean` (no records, and a cache key of its own: another
/// README, outside the compared folders) and compares it with `delta` (six 1.17.0, no pytz).
fn assert_same_as_clean(ws: &common::Workspace, dir: &std::path::Path, delta: &str, clean: &str) {
    unique_readme(dir, "clean");
    let built = build(dir, &ws.path().join("xdg-clean"), clean);
    assert!(built["dependency_layer"]
        .as_str()
        .unwrap()
        .starts_with("clean install"));
    let (a, b) = (installed_content(delta), installed_content(clean));
    assert!(
        a.0.contains("('six', '1.17.0')") && !a.0.contains("pytz"),
        "{}",
        a.0
    );
    assert_eq!(a.0, b.0, "installed distributions");
    assert_eq!(a.1, b.1, "files, modes, owners");
    assert_eq!(a.2, b.2, "spec");
}

/// A base image made from the set-up's python base: one more file (`/etc/base-release`)
/// and a Python version label, pushed to the local registry; its digest-pinned address.
fn derived_base(name: &str, python: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let base = common::base_ref();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {base}\nRUN echo {name} > /etc/base-release\nLABEL org.connector-build.python={python}\n"
        ),
    )
    .unwrap();
    let tag = format!(
        "127.0.0.1:5000/connector-build-test/python-connector-base:{name}-{}",
        std::process::id()
    );
    let out = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &tag])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    common::docker_ok(&["push", "-q", &tag]);
    let digest = common::docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{index .RepoDigests 0}}",
        &tag,
    ]);
    let digest = digest.trim().rsplit_once('@').unwrap().1.to_string();
    format!("{tag}@{digest}")
}

fn set_base(dir: &std::path::Path, reference: &str) {
    let meta = dir.join("metadata.yaml");
    let text = std::fs::read_to_string(&meta).unwrap();
    let text: Vec<String> = text
        .lines()
        .map(|l| match l.split_once("baseImage:") {
            Some((indent, _)) => format!("{indent}baseImage: {reference}"),
            None => l.to_string(),
        })
        .collect();
    let text = text.join("\n") + "\n";
    assert!(text.contains(reference));
    std::fs::write(&meta, text).unwrap();
}

/// After a base image patch release (same Python, same platform, wheels only), the
/// dependency layer is reused on the new base: no install runs, the new base's files are
/// there, `spec` passes. A base with another Python version installs again and says why.
#[test]
fn rebase_reuses_the_dependency_layer_when_it_may() {
    let (_ws, dir, xdg, (t1, t2, t3)) = case(
        "source-fixture-uv",
        "rebase",
        ["rebase-old", "rebase-new", "rebase-py312"],
    );
    let first = build(&dir, &xdg, &t1.0);
    assert!(first["dependency_layer"].is_string(), "{first}");

    let patch = derived_base("patch", "3.11.2");
    set_base(&dir, &patch);
    let rebased = build(&dir, &xdg, &t2.0);
    let how = rebased["dependency_layer"].as_str().unwrap();
    assert!(how.starts_with("rebased"), "{how}");
    // The smoke test only: no container installed anything.
    assert_eq!(rebased["containers_started"], 1, "{rebased}");
    let release = common::in_image(&t2.0, "cat", &["/etc/base-release"]);
    assert_eq!(release.trim(), "patch");
    let (old, new) = (installed_content(&t1.0), installed_content(&t2.0));
    assert_eq!(
        old, new,
        "the same distributions, files and spec on the new base"
    );

    // Another Python version: a clean install, and the reason.
    let other = derived_base("py312", "3.12.0");
    set_base(&dir, &other);
    let rebuilt = build(&dir, &xdg, &t3.0);
    let how = rebuilt["dependency_layer"].as_str().unwrap();
    assert!(how.starts_with("clean install"), "{how}");
    assert!(
        how.contains("not rebased: the Python version changed (3.11 to 3.12)"),
        "{how}"
    );
    for r in [&patch, &other] {
        let _ = common::docker(&["image", "rm", r.split('@').next().unwrap()]);
    }
}

/// Sets a Poetry project's runtime dependencies (no lock: the install resolves them).
fn poetry_deps(dir: &std::path::Path, deps: &[(&str, &str)]) {
    let py = dir.join("pyproject.toml");
    let text = std::fs::read_to_string(&py).unwrap();
    let start = text.find("[tool.poetry.dependencies]\n").unwrap();
    let end = start + text[start..].find("\n\n").unwrap();
    let mut section = String::from("[tool.poetry.dependencies]\npython = \"^3.11\"\n");
    for (name, constraint) in deps {
        section.push_str(&format!("{name} = \"{constraint}\"\n"));
    }
    let text = format!("{}{}{}", &text[..start], section.trim_end(), &text[end..]);
    std::fs::write(&py, text).unwrap();
}

/// An install that resolves (Poetry constraints, no lock) also goes as a delta: uv's dry run
/// on the base says what a clean install would hold, the delta installs exactly that over the
/// previous layer and removes the rest; the image holds what a clean install holds.
#[test]
fn resolved_dependency_delta_matches_a_clean_install() {
    let (ws, dir, xdg, (t1, t2, t3)) = case(
        "source-fixture-poetry",
        "resolved-delta",
        ["rdelta-1", "rdelta-2", "rdelta-clean"],
    );
    std::fs::remove_file(dir.join("poetry.lock")).unwrap();
    // attrs ^23.2 replaces the newer attrs the base image's Poetry brought.
    poetry_deps(
        &dir,
        &[
            ("python-dateutil", "^2.8"),
            ("attrs", "^23.2"),
            ("six", "1.16.0"),
            ("pytz", "2024.1"),
        ],
    );
    let first = build(&dir, &xdg, &t1.0);
    assert!(
        first["dependency_layer"]
            .as_str()
            .unwrap()
            .starts_with("clean install"),
        "{first}"
    );

    poetry_deps(
        &dir,
        &[
            ("python-dateutil", "^2.8"),
            ("attrs", "^23.2"),
            ("six", "1.17.0"),
        ],
    );
    let delta = build(&dir, &xdg, &t2.0);
    let how = delta["dependency_layer"].as_str().unwrap();
    assert!(
        how.starts_with("delta 1 of 3") && how.contains("1 removed"),
        "{how}"
    );

    assert_same_as_clean(&ws, &dir, &t2.0, &t3.0);
}
