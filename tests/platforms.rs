//! linux/arm64 builds on the real (linux/amd64) engine, with QEMU from the set-up: the
//! image's config says arm64, it answers `spec` under emulation with the same SPEC as the
//! amd64 image, and a wheel-only install ran without emulation while one with an sdist-only
//! dependency ran under it, naming the package; manifest-only and java connectors too.
//!
//! Need the set-up's arm64 part (`/var/lib/connector-build/arm64-base-image.ref`; for the
//! java and manifest-only ones, `arm64-java-base-image.ref`, which it writes last). The
//! set-up builds it in the background; `SETUP_ARM64=wait bash scripts/setup.sh` waits.

mod common;

use common::*;

fn architecture(reference: &str) -> String {
    docker_ok(&[
        "image",
        "inspect",
        reference,
        "--format",
        "{{.Os}}/{{.Architecture}}",
    ])
    .trim()
    .to_string()
}

/// The connector's one result, built; panics with the output otherwise.
fn built<'a>(results: &'a serde_json::Value, out: &std::process::Output) -> &'a serde_json::Value {
    let r = &results[0];
    assert_eq!(r["status"], "built", "{r}\nstderr:\n{}", text(&out.stderr));
    r
}

struct Arm64Tag(TestTag);

impl Arm64Tag {
    fn new(test: &str) -> Self {
        Arm64Tag(TestTag::new(test))
    }
    fn arm64(&self) -> String {
        format!("{}-linux-arm64", self.0 .0)
    }
}

impl Drop for Arm64Tag {
    fn drop(&mut self) {
        let _ = docker(&["image", "rm", &self.arm64()]);
    }
}

#[test]
fn a_wheel_only_connector_builds_for_both_platforms_without_emulated_install() {
    arm64_ready();
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-uv");
    let tag = Arm64Tag::new("platforms-uv");
    let both = || {
        build_json(&[
            dir.to_str().unwrap(),
            "--tag",
            &tag.0 .0,
            "--platform",
            "linux/amd64,linux/arm64",
            "--installer",
            "uv",
        ])
    };
    let (results, out) = both();
    let r = built(&results, &out);
    assert_eq!(r["tag"], tag.0 .0, "{r}");
    let arm = &r["platforms"][0];
    assert_eq!(arm["platform"], "linux/arm64", "{r}");
    assert_eq!(arm["tag"], tag.arm64(), "{r}");
    assert_eq!(arm["emulated"], true, "{r}");
    let cross = arm["cross"].as_array().expect("cross steps");
    assert_eq!(cross.len(), 1, "{r}");
    assert_eq!(cross[0]["step"], "install dependencies", "{r}");
    assert_eq!(cross[0]["native"], true, "{r}");
    assert_ne!(arm["cache_key"], r["cache_key"], "{r}");

    assert_eq!(architecture(&tag.0 .0), "linux/amd64");
    assert_eq!(architecture(&tag.arm64()), "linux/arm64");
    assert_eq!(
        run_spec_for("linux/arm64", &tag.arm64()),
        run_spec(&tag.0 .0)
    );
    // The copied layer is whole: the modules import under emulation, with their bytecode.
    let listing = docker_ok(&[
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        "--network",
        "none",
        "--entrypoint",
        "python",
        &tag.arm64(),
        "-c",
        "import dateutil, six, os, platform, importlib.util as u; print(platform.machine(), dateutil.__version__, os.path.exists(u.cache_from_source(six.__file__)))",
    ]);
    assert_eq!(listing.trim(), "aarch64 2.9.0.post0 True");

    // Nothing changed: both platforms from cache.
    let (again, out) = both();
    let r2 = built(&again, &out);
    assert_eq!(r2["containers_started"], 0, "{r2}");
    assert_eq!(r2["platforms"][0]["containers_started"], 0, "{r2}");
}

#[test]
fn an_sdist_only_dependency_installs_under_emulation_and_is_named() {
    arm64_ready();
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-requirements");
    // docopt 0.6.2 is published as an sdist only (pure Python, small to build).
    let reqs = dir.join("requirements.txt");
    let before = std::fs::read_to_string(&reqs).unwrap();
    std::fs::write(&reqs, format!("{before}docopt==0.6.2\n")).unwrap();
    let tag = Arm64Tag::new("platforms-sdist");
    let (results, out) = build_json(&[
        dir.to_str().unwrap(),
        "--tag",
        &tag.0 .0,
        "--platform",
        "linux/arm64",
        "--installer",
        "uv",
    ]);
    let r = built(&results, &out);
    assert_eq!(r["tag"], tag.arm64(), "{r}");
    let cross = &r["platforms"][0]["cross"][0];
    assert_eq!(cross["native"], false, "{r}");
    assert_eq!(cross["packages"], serde_json::json!(["docopt"]), "{r}");
    assert_eq!(architecture(&tag.arm64()), "linux/arm64");
    assert_eq!(
        run_spec_for("linux/arm64", &tag.arm64())["type"],
        "SPEC",
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_unknown_platform_is_refused_before_anything_runs() {
    let out = cli(&["build", "source-fixture-uv", "--platform", "linux/riscv64"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("unknown platform `linux/riscv64`"), "{err}");
    assert!(err.contains("linux/amd64 or linux/arm64"), "{err}");
}

#[test]
fn manifest_only_and_java_connectors_build_for_arm64_on_their_index_bases() {
    // Both bases' arm64 images, and their indexes: the set-up's arm64 part ends with java.
    setup_arm64_wrote(ARM64_JAVA_REF_FILE);
    let ws = Workspace::new();
    let manifest = ws.add_fixture("source-fixture-manifest");
    let java = ws.add_fixture("source-fixture-java");
    make_java_distribution(&java, "source-fixture-java");
    for (dir, test) in [(manifest, "platforms-manifest"), (java, "platforms-java")] {
        let tag = Arm64Tag::new(test);
        let (results, out) = build_json(&[
            dir.to_str().unwrap(),
            "--tag",
            &tag.0 .0,
            "--platform",
            "linux/amd64,linux/arm64",
        ]);
        let r = built(&results, &out);
        assert_eq!(r["platforms"][0]["tag"], tag.arm64(), "{r}");
        assert_eq!(architecture(&tag.0 .0), "linux/amd64");
        assert_eq!(architecture(&tag.arm64()), "linux/arm64");
        let spec = run_spec(&tag.0 .0);
        assert_eq!(spec["type"], "SPEC", "{spec}");
        assert_eq!(run_spec_for("linux/arm64", &tag.arm64()), spec, "{test}");
    }
}
