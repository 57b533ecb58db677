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
    let saved = std::process::Command::new("docker")
        .args(["save", &tag.0])
        .output()
        .unwrap();
    assert!(saved.status.success());
    let image = saved.stdout;
    let history = docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        &tag.0,
    ]);
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
    let base = std::process::Command::new("docker")
        .args(["save", &base_ref()])
        .output()
        .unwrap()
        .stdout;
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
