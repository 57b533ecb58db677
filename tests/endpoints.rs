//! Reaching the engine as the Docker client does: `tcp://` with TLS (`DOCKER_TLS_VERIFY`,
//! `DOCKER_CERT_PATH`) and the client's current context (`docker context use`).
//!
//! The TLS endpoint is real: stunnel terminates mutual TLS with certificates made here by
//! openssl and forwards to the engine's socket, so a build goes through a TLS handshake and
//! the Docker API on the other side.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const FIXTURE: &str = "source-fixture-requirements";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        text(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, in the file names
/// DOCKER_CERT_PATH expects (ca.pem, cert.pem, key.pem).
fn certificates(dir: &Path) {
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    let days = ["-days", "2"];
    openssl(
        dir,
        &[
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca-key.pem",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=connector-build test CA",
            ][..],
            &days,
        ]
        .concat(),
    );
    for (name, csr, ext) in [
        ("server", "server.csr", "server.ext"),
        ("client", "client.csr", "client.ext"),
    ] {
        let key = if name == "server" {
            "server-key.pem"
        } else {
            "key.pem"
        };
        let cert = if name == "server" {
            "server.pem"
        } else {
            "cert.pem"
        };
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                key,
                "-out",
                csr,
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        openssl(
            dir,
            &[
                &[
                    "x509",
                    "-req",
                    "-in",
                    csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca-key.pem",
                    "-CAcreateserial",
                    "-out",
                    cert,
                    "-extfile",
                    ext,
                ][..],
                &days,
            ]
            .concat(),
        );
    }
}

/// stunnel speaking mutual TLS on a free port, forwarding to the engine's socket. (socat
/// cannot: it leaves OpenSSL's session id context unset, so a client resuming a session,
/// as rustls does on its second connection, is refused.)
struct TlsProxy {
    child: Child,
    port: u16,
}

impl TlsProxy {
    fn start(certs: &Path) -> TlsProxy {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = certs.join("stunnel.conf");
        std::fs::write(
            &config,
            format!(
                "foreground = yes\npid =\n[docker]\naccept = 127.0.0.1:{port}\nconnect = /var/run/docker.sock\ncert = {}\nkey = {}\nCAfile = {}\nverifyChain = yes\n",
                certs.join("server.pem").display(),
                certs.join("server-key.pem").display(),
                certs.join("ca.pem").display()
            ),
        )
        .unwrap();
        let child = Command::new("stunnel")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run stunnel (the set-up installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "stunnel did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsProxy { child, port }
    }

    fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `connector-build build --json` of the fixture with only `env` telling where the engine is.
fn build_with(ws: &Workspace, tag: &str, env: &[(&str, &str)]) -> (serde_json::Value, Output) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_connector-build"));
    cmd.args(["--connectors-dir"])
        .arg(ws.path())
        .args(["build", FIXTURE, "--json", "--tag", tag, "--report-dir"])
        .arg(ws.path().join("reports"))
        .env("NO_COLOR", "1")
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env("DOCKER_CONFIG", ws.path().join("docker-config"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run connector-build");
    (common::results(&out.stdout), out)
}

#[test]
fn builds_over_tcp_with_tls_from_the_environment_and_from_a_docker_context() {
    let ws = Workspace::new();
    ws.add_fixture(FIXTURE);
    let certs = ws.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    certificates(&certs);
    let proxy = TlsProxy::start(&certs);
    let host = proxy.host();
    let tag = "connector-build-test/endpoints:tls";

    // DOCKER_HOST + DOCKER_TLS_VERIFY + DOCKER_CERT_PATH, as `docker` takes them.
    let (json, out) = build_with(
        &ws,
        tag,
        &[
            ("DOCKER_HOST", &host),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", certs.to_str().unwrap()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(json[0]["status"], "built", "{json}");
    assert_eq!(json[0]["engine"], host.as_str());
    assert_eq!(run_spec(tag)["type"], "SPEC");

    // The same endpoint without client certificates is refused by the TLS server.
    let (_, out) = build_with(&ws, tag, &[("DOCKER_HOST", &host)]);
    assert_eq!(out.status.code(), Some(75));
    assert!(
        text(&out.stderr).contains("engine unreachable"),
        "{}",
        text(&out.stderr)
    );

    // `docker context create` + `docker context use` with Debian's client, then nothing in
    // the environment but DOCKER_CONFIG.
    let config = ws.path().join("docker-config");
    let docker_cli = |args: &[&str]| {
        let out = Command::new("/usr/bin/docker")
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("DOCKER_HOST")
            .output()
            .expect("run /usr/bin/docker");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            text(&out.stderr)
        );
    };
    let endpoint = format!(
        "host={host},ca={},cert={},key={}",
        certs.join("ca.pem").display(),
        certs.join("cert.pem").display(),
        certs.join("key.pem").display()
    );
    docker_cli(&["context", "create", "cb-tls", "--docker", &endpoint]);
    docker_cli(&["context", "use", "cb-tls"]);
    let (json, out) = build_with(&ws, tag, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(json[0]["engine"], host.as_str(), "{json}");

    // DOCKER_CONTEXT naming a context that does not exist is said so.
    let (_, out) = build_with(&ws, tag, &[("DOCKER_CONTEXT", "nope")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Docker context `nope` (from DOCKER_CONTEXT) does not exist"),
        "{}",
        text(&out.stderr)
    );
    let _ = docker(&["rmi", tag]);
}
