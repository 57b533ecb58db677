//! End-to-end builds of the other connector kinds on the real Docker engine: manifest-only
//! connectors on the declarative base image, Java connectors from their Gradle distribution.

mod common;

use common::*;

const MANIFEST_DIR: &str = "/airbyte/integration_code/source_declarative_manifest";

#[test]
fn manifest_only_connector_answers_its_own_spec_and_rebuilds_from_cache() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-manifest");
    let tag = TestTag::new("manifest-only");
    let path = dir.to_str().unwrap();
    let (results, out) = build_json(&[path, "--tag", &tag.0]);
    let first = built(&results, &out);

    // This manifest's spec, not the declarative base's generic one.
    let spec = run_spec(&tag.0);
    let connection = &spec["spec"]["connectionSpecification"];
    assert_eq!(
        connection["required"],
        serde_json::json!(["fixture_api_key"]),
        "{spec}"
    );
    assert_eq!(connection["title"], "Fixture Manifest Spec");

    let config = image_config(&tag.0);
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["python", "/airbyte/integration_code/main.py"])
    );
    assert_eq!(config["User"], "airbyte");
    let env = image_env(&config);
    assert!(env.contains(&"AIRBYTE_ENTRYPOINT=python /airbyte/integration_code/main.py".into()));
    assert_airbyte_labels(&config, "airbyte/source-fixture-manifest", "0.1.0");

    // The manifest, owned by the image's user, beside the runtime; nothing else of the folder.
    let listing = in_image(
        &tag.0,
        "sh",
        &[
            "-c",
            &format!(
                "cd {MANIFEST_DIR} && stat -c '%n %u:%g' * && ls -A /airbyte/integration_code"
            ),
        ],
    );
    assert!(listing.contains("manifest.yaml 1000:1000"), "{listing}");
    for absent in ["metadata.yaml", "README.md", "components.py"] {
        assert!(
            !listing.contains(absent),
            "{absent} in the image: {listing}"
        );
    }

    // Nothing changed: no container, the same image.
    let (results, out) = build_json(&[path, "--tag", &tag.0]);
    let again = built(&results, &out);
    assert_eq!(again["containers_started"], 0, "{again}");
    assert_eq!(again["image_id"], first["image_id"]);

    // A manifest edit (unique to this run, so not in the cache): one new small layer, written
    // without a container, and the smoke test again, its only container.
    let manifest = dir.join("manifest.yaml");
    let edited_title = format!("Fixture Manifest Spec {}", std::process::id());
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "title: Fixture Manifest Spec",
        &format!("title: {edited_title}"),
    );
    std::fs::write(&manifest, text).unwrap();
    let layers_before = image_layers(&tag.0);
    let (results, out) = build_json(&[path, "--tag", &tag.0]);
    let edited = built(&results, &out);
    assert_eq!(step(&edited, "base image")["cached"], true, "{edited}");
    assert_eq!(step(&edited, "copy manifest")["cached"], false, "{edited}");
    assert_eq!(edited["containers_started"], 1, "{edited}");
    let layers_after = image_layers(&tag.0);
    assert_eq!(layers_after.len(), layers_before.len());
    assert_eq!(
        layers_after[..layers_after.len() - 1],
        layers_before[..layers_before.len() - 1]
    );
    let spec = run_spec(&tag.0);
    assert_eq!(
        spec["spec"]["connectionSpecification"]["title"],
        edited_title
    );
}

#[test]
fn manifest_only_connector_with_components_uses_them() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-manifest-components");
    let tag = TestTag::new("manifest-components");
    let (results, out) = build_json(&[dir.to_str().unwrap(), "--tag", &tag.0]);
    built(&results, &out);
    let spec = run_spec(&tag.0);
    assert_eq!(
        spec["spec"]["connectionSpecification"]["required"],
        serde_json::json!(["fixture_components_token"]),
        "{spec}"
    );
    // `discover` builds the streams, which loads the manifest's class from components.py:
    // a catalog proves the runtime found and imported it (no network needed).
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        r#"{"fixture_components_token": "x"}"#,
    )
    .unwrap();
    // The config folder is readable by the image's user (uid 1000).
    let mount = format!("{}:/config:ro", config.path().display());
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &mount,
        &tag.0,
        "discover",
        "--config",
        "/config/config.json",
    ]);
    let stdout = text(&out.stdout);
    let catalog = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "CATALOG")
        .unwrap_or_else(|| panic!("no CATALOG: {stdout}\n{}", text(&out.stderr)));
    assert_eq!(catalog["catalog"]["streams"][0]["name"], "items");
    let owners = in_image(
        &tag.0,
        "stat",
        &["-c", "%n %u", &format!("{MANIFEST_DIR}/components.py")],
    );
    assert!(owners.contains("components.py 1000"), "{owners}");
}

#[test]
fn java_connector_builds_from_its_gradle_distribution() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-java");
    make_java_distribution(&dir, "source-fixture-java");
    let tag = TestTag::new("java");
    let path = dir.to_str().unwrap();
    let (results, out) = build_json(&[path, "--tag", &tag.0]);
    let first = built(&results, &out);

    let spec = run_spec(&tag.0);
    assert_eq!(
        spec["spec"]["connectionSpecification"]["required"],
        serde_json::json!(["fixture_java_host"]),
        "{spec}"
    );
    let config = image_config(&tag.0);
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/airbyte/base.sh"])
    );
    assert_eq!(config["WorkingDir"], "/airbyte");
    let env = image_env(&config);
    assert!(
        env.contains(&"APPLICATION=source-fixture-java".into()),
        "{env:?}"
    );
    assert_airbyte_labels(&config, "airbyte/source-fixture-java", "0.1.0");

    // The distribution with its top folder stripped, next to base.sh; nothing else.
    let listing = in_image(
        &tag.0,
        "sh",
        &[
            "-c",
            "ls -A /airbyte; stat -c '%a' /airbyte/bin/source-fixture-java",
        ],
    );
    for want in ["base.sh", "bin", "lib", "755"] {
        assert!(listing.contains(want), "{want} missing: {listing}");
    }
    for absent in ["src", "metadata.yaml", "README.md", "build"] {
        assert!(
            !listing.lines().any(|l| l == absent),
            "{absent} in the image: {listing}"
        );
    }
    assert!(!listing.contains("source-fixture-java\n"), "{listing}");

    // Nothing changed: no container, the same image.
    let (results, out) = build_json(&[path, "--tag", &tag.0]);
    let again = built(&results, &out);
    assert_eq!(again["containers_started"], 0, "{again}");
    assert_eq!(again["image_id"], first["image_id"]);
}

/// `upgrade-base-image --set-if-not-exists` picks the family by the `language:` tag: a
/// manifest-only connector without a base image gets the declarative family's latest release,
/// and the connector then builds on it.
#[test]
fn a_manifest_only_connector_without_a_base_image_is_moved_onto_the_declarative_family() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-manifest");
    let meta = dir.join("metadata.yaml");
    let original = std::fs::read_to_string(&meta).unwrap();
    let without: String = original
        .lines()
        .filter(|l| !l.contains("connectorBuildOptions") && !l.contains("baseImage"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&meta, without).unwrap();
    let out = cli(&[
        "upgrade-base-image",
        dir.to_str().unwrap(),
        "--set-if-not-exists",
        "--registry",
        "127.0.0.1:5000",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let upgraded = std::fs::read_to_string(&meta).unwrap();
    assert!(
        upgraded.contains("baseImage: 127.0.0.1:5000/airbyte/source-declarative-manifest:")
            && upgraded.contains("@sha256:"),
        "{upgraded}"
    );
    let tag = TestTag::new("manifest-upgraded");
    let (results, out) = build_json(&[dir.to_str().unwrap(), "--tag", &tag.0]);
    built(&results, &out);
    assert_eq!(run_spec(&tag.0)["type"], "SPEC");
}

/// A manifest-only connector's `build_customization.py` runs as a Python connector's does.
#[test]
fn a_manifest_only_connector_runs_its_build_customization() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-manifest");
    std::fs::write(
        dir.join("build_customization.py"),
        "async def pre_connector_install(base):\n    return base.with_env_variable('FIXTURE_PRE', 'pre')\n\n\
         async def post_connector_install(c):\n    return c.with_env_variable('FIXTURE_POST', 'post')\n",
    )
    .unwrap();
    let tag = TestTag::new("manifest-hooks");
    let (results, out) = build_json(&[dir.to_str().unwrap(), "--tag", &tag.0]);
    built(&results, &out);
    let env: Vec<String> = serde_json::from_value(image_config(&tag.0)["Env"].clone()).unwrap();
    for want in ["FIXTURE_PRE=pre", "FIXTURE_POST=post"] {
        assert!(env.iter().any(|e| e == want), "{want} missing: {env:?}");
    }
    assert_eq!(run_spec(&tag.0)["type"], "SPEC");
}

/// A Java connector's `build_customization.py` runs, as real ones do to add a CA to the JVM
/// trust store (`keytool` in `pre_connector_install`).
#[test]
fn a_java_connector_runs_its_build_customization() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-java");
    make_java_distribution(&dir, "source-fixture-java");
    std::fs::write(
        dir.join("build_customization.py"),
        "async def pre_connector_install(base):\n    return base.with_exec(['sh', '-c', 'command -v keytool > /etc/fixture-keytool'])\n\n\
         async def post_connector_install(c):\n    return c.with_env_variable('FIXTURE_JAVA_HOOK', 'post')\n",
    )
    .unwrap();
    let tag = TestTag::new("java-hooks");
    let (results, out) = build_json(&[dir.to_str().unwrap(), "--tag", &tag.0]);
    built(&results, &out);
    let env: Vec<String> = serde_json::from_value(image_config(&tag.0)["Env"].clone()).unwrap();
    assert!(env.iter().any(|e| e == "FIXTURE_JAVA_HOOK=post"), "{env:?}");
    let keytool = in_image(&tag.0, "cat", &["/etc/fixture-keytool"]);
    assert!(keytool.contains("keytool"), "{keytool}");
    assert_eq!(run_spec(&tag.0)["type"], "SPEC");
}
