//! Secrets stay out of images: a build with credentials everywhere a CI job has them, then
//! every layer and the configuration of the exported image searched for them.

mod common;

use common::*;

/// Certificates of the host's CA bundle that the image's own bundle does not have (the
/// ones install steps are given): what would betray the bundle if it reached a layer.
fn host_only_certificates(image: &str) -> Vec<String> {
    let bodies = |pem: &str| -> Vec<String> {
        pem.split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .filter_map(|c| c.split("-----END CERTIFICATE-----").next())
            .map(|c| c.split_whitespace().collect::<String>())
            .collect()
    };
    let host_bundle = std::env::var("SSL_CERT_FILE")
        .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());
    let host = bodies(&std::fs::read_to_string(host_bundle).unwrap());
    let image_bundle = docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "cat",
        image,
        "/etc/ssl/certs/ca-certificates.crt",
    ]);
    let in_image = bodies(&image_bundle);
    host.into_iter().filter(|c| !in_image.contains(c)).collect()
}

#[test]
fn no_secret_reaches_a_layer_the_config_or_the_output() {
    let ws = Workspace::new();
    let dir = ws.add_fixture("source-fixture-poetry");
    // Everything a connector folder may hold that must never ship.
    std::fs::write(dir.join(".env"), "API_TOKEN=s3cret-dotenv\n").unwrap();
    std::fs::create_dir_all(dir.join(".venv/lib")).unwrap();
    std::fs::write(dir.join(".venv/lib/leak.txt"), "s3cret-venv\n").unwrap();
    std::fs::write(
        dir.join("source_fixture_poetry/.env"),
        "s3cret-package-dotenv\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("source_fixture_poetry/secrets")).unwrap();
    std::fs::write(
        dir.join("source_fixture_poetry/secrets/x.json"),
        "s3cret-package-secrets\n",
    )
    .unwrap();
    // Registry credentials in the Docker config, as CI jobs have them.
    let home = ws.path().join("home");
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    std::fs::write(
        home.join(".docker/config.json"),
        // base64("ci-user:s3cret-registry")
        r#"{"auths": {"registry.example": {"auth": "Y2ktdXNlcjpzM2NyZXQtcmVnaXN0cnk="}}}"#,
    )
    .unwrap();

    let tag = TestTag::new("secrets");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_connector-build"))
        .args([
            "build",
            "--json",
            dir.to_str().unwrap(),
            "--tag",
            &tag.0,
            "-v",
        ])
        .env("HOME", &home)
        .env("NO_COLOR", "1")
        // An index URL with a token, and proxy settings with a password (bypassed for every
        // host, so the install still works here).
        .env(
            "PIP_INDEX_URL",
            "https://token:s3cret-index@pypi.org/simple",
        )
        .env("HTTPS_PROXY", "http://proxy-user:s3cret-proxy@127.0.0.1:9")
        .env("NO_PROXY", "*")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    run_spec(&tag.0);

    let secrets = [
        "FIXTURE-SECRET-DO-NOT-SHIP",
        "s3cret-dotenv",
        "s3cret-venv",
        "s3cret-package-dotenv",
        "s3cret-package-secrets",
        "s3cret-registry",
        "Y2ktdXNlcjpzM2NyZXQtcmVnaXN0cnk=",
        "s3cret-index",
        "s3cret-proxy",
    ];
    let image = saved_bytes(&tag.0);
    let history = image_history(&tag.0);
    let config = docker_ok(&["image", "inspect", &tag.0]);
    let found = |hay: &[u8], needle: &str| memchr::memmem::find(hay, needle.as_bytes()).is_some();
    for secret in secrets {
        assert!(
            !found(&image, secret),
            "{secret} is in a layer of the image"
        );
        assert!(
            !history.contains(secret) && !config.contains(secret),
            "{secret} is in the image config"
        );
        // Credentials are never printed either (the fixture secret is not a credential the
        // tool handles, but it must not be echoed).
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} was printed"
        );
    }
    for var in [
        "PIP_INDEX_URL",
        "HTTPS_PROXY",
        "PIP_CERT",
        "SSL_CERT_FILE",
        "UV_INDEX_URL",
    ] {
        assert!(
            !config.contains(&format!("{var}=")),
            "{var} is in the image config"
        );
    }
    // The base layers may carry some of these certificates (Debian ships more than its
    // bundle enables); what the build adds must carry none that the base does not.
    let base = saved_bytes(&base_ref());
    let mut only_on_host = 0;
    for cert in host_only_certificates(&tag.0) {
        // A line's worth of the certificate is enough to recognise it.
        let probe = &cert[cert.len() / 2..cert.len() / 2 + 64.min(cert.len() / 2)];
        if found(&base, probe) {
            continue;
        }
        only_on_host += 1;
        assert!(
            !found(&image, probe),
            "a host CA certificate given to the install is in the image"
        );
    }
    assert!(
        only_on_host > 0,
        "expected the host CA bundle to hold a certificate the images lack"
    );
}

#[test]
fn registry_passwords_never_appear_in_logs_reports_or_errors() {
    use base64::Engine as _;
    let password = format!("s3cret-registry-pw-{}", std::process::id());
    let user_pass = format!("ci-user:{password}");
    let failing = failing_registry();
    // Port 9 (discard) is closed here: a registry that is down.
    let registries = ["127.0.0.1:9".to_string(), failing.clone()];
    let ws = Workspace::new();
    let docker_config = ws.path().join("docker-config");
    std::fs::create_dir_all(&docker_config).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(&user_pass);
    let auths: serde_json::Map<String, serde_json::Value> = registries
        .iter()
        .map(|r| (r.clone(), serde_json::json!({ "auth": auth })))
        .collect();
    std::fs::write(
        docker_config.join("config.json"),
        serde_json::json!({ "auths": auths }).to_string(),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_connector-build"))
            .args(args)
            .env("DOCKER_CONFIG", &docker_config)
            .env("CONNECTOR_BUILD_STATE_DIR", state.path())
            // Every log of every library, as verbose as it gets.
            .env("RUST_LOG", "trace")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let secrets = [
        password.clone(),
        auth.clone(),
        base64::engine::general_purpose::URL_SAFE.encode(&user_pass),
        // The header bollard sends them in, should a log print request headers.
        "x-registry-auth".into(),
        "X-Registry-Auth".into(),
    ];
    let mut checked = 0;
    for registry in &registries {
        // A pull of the base image, through `build --json` with a report.
        let dir = ws.add_renamed("source-fixture-requirements", "source-creds");
        let meta = dir.join("metadata.yaml");
        let yaml = std::fs::read_to_string(&meta).unwrap();
        std::fs::write(
            &meta,
            yaml.replace("127.0.0.1:5000/", &format!("{registry}/")),
        )
        .unwrap();
        let reports = tempfile::tempdir().unwrap();
        let tag = TestTag::new("creds");
        let out = run(&[
            "build",
            "--json",
            "-vv",
            dir.to_str().unwrap(),
            "--tag",
            &tag.0,
            "--report-dir",
            reports.path().to_str().unwrap(),
        ]);
        // A registry that is down or fails is an infrastructure fault: 75, retry.
        assert_eq!(out.status.code(), Some(75), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(&format!("pulling {registry}/")));
        let mut outputs = vec![
            ("build stdout", text(&out.stdout)),
            ("build stderr", text(&out.stderr)),
        ];
        for file in ["report.json", "report.md", "report.html"] {
            outputs.push((
                file,
                std::fs::read_to_string(reports.path().join(file)).unwrap(),
            ));
        }
        // Reading and publishing base images in that registry.
        for args in [&["list", "python"][..], &["publish", "python"][..]] {
            let mut full = vec!["base-images", "-vv", "--registry", registry];
            full.extend_from_slice(args);
            let out = run(&full);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{args:?}: {}",
                text(&out.stderr)
            );
            assert!(
                text(&out.stderr).contains(&format!("cannot read {registry}/")),
                "{}",
                text(&out.stderr)
            );
            outputs.push(("base-images stdout", text(&out.stdout)));
            outputs.push(("base-images stderr", text(&out.stderr)));
        }
        for (what, output) in &outputs {
            for secret in &secrets {
                assert!(
                    !output.contains(secret.as_str()),
                    "{secret} in the {what}:\n{output}"
                );
            }
            checked += output.len();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    assert!(checked > 10_000, "the trace logs are there to be searched");
    // Nothing was recorded as published.
    assert!(!state.path().join("base-images/published.json").exists());
}
