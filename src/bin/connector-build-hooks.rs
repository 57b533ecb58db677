//! `connector-build-hooks`: runs one connector's `build_customization.py` with embedded
//! Python, for connector-build, which starts it and talks to it in JSON lines on
//! stdin/stdout. One process per connector: each gets a fresh interpreter and module, and a
//! hook that never returns can be stopped by ending the process.
//!
//! The protocol pipes are moved off descriptors 0 and 1 first thing: hook code (and the
//! programs it starts) then reads `/dev/null` as stdin and writes to stderr, so a hook that
//! reads input or prints cannot block on, or be mistaken for, the protocol.

use std::ffi::CString;
use std::fs::File;
use std::io::{BufReader, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Mutex, OnceLock};

use pyo3::prelude::*;

/// The protocol's ends, on descriptors no child process inherits (close-on-exec).
static FROM_CONNECTOR_BUILD: OnceLock<Mutex<BufReader<File>>> = OnceLock::new();
static TO_CONNECTOR_BUILD: OnceLock<Mutex<File>> = OnceLock::new();

/// Moves the protocol to private descriptors; stdin becomes `/dev/null`, stdout stderr.
fn take_protocol_pipes() -> std::io::Result<()> {
    let input = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let output = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let null = File::open("/dev/null")?;
    // SAFETY: dup2 on descriptors this process owns; 0 and 1 are replaced atomically.
    let ok = unsafe { libc::dup2(null.as_raw_fd(), 0) >= 0 && libc::dup2(2, 1) >= 0 };
    if !ok {
        return Err(std::io::Error::last_os_error());
    }
    let _ = FROM_CONNECTOR_BUILD.set(Mutex::new(BufReader::new(input)));
    let _ = TO_CONNECTOR_BUILD.set(Mutex::new(output));
    Ok(())
}

/// Writes one line to connector-build on the protocol's descriptor.
fn send_line(message: &str) -> std::io::Result<()> {
    let Some(out) = TO_CONNECTOR_BUILD.get() else {
        return Err(std::io::Error::other("no protocol channel"));
    };
    let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
    out.write_all(message.as_bytes())
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush())
}

const SHIM: &str = include_str!("../../hooks/dagger/__init__.py");
const RUNNER: &str = include_str!("../../hooks/runner.py");

#[pymodule]
mod _connector_build {
    use std::io::BufRead;

    use pyo3::exceptions::{PyEOFError, PyIOError};
    use pyo3::prelude::*;

    /// Writes one message line to connector-build.
    #[pyfunction]
    fn send(message: &str) -> PyResult<()> {
        super::send_line(message)
            .map_err(|e| PyIOError::new_err(format!("connector-build went away: {e}")))
    }

    /// Reads one message line from connector-build; `None` when it closed the channel.
    #[pyfunction]
    fn recv() -> PyResult<Option<String>> {
        let Some(input) = super::FROM_CONNECTOR_BUILD.get() else {
            return Ok(None);
        };
        let mut line = String::new();
        let read = input
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .read_line(&mut line);
        match read {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(line)),
            Err(e) => Err(PyIOError::new_err(format!(
                "connector-build went away: {e}"
            ))),
        }
    }

    /// Asks connector-build to run a container's operations and answer a query about the
    /// result; blocks until the answer (a JSON document) arrives.
    #[pyfunction]
    fn evaluate(request: &str) -> PyResult<String> {
        send(&format!("{{\"evaluate\":{request}}}"))?;
        recv()?.ok_or_else(|| PyEOFError::new_err("connector-build closed the channel"))
    }
}

fn run(py: Python<'_>) -> PyResult<()> {
    let version = py.version_info();
    if (version.major, version.minor) < (3, 10) {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
            "build customizations need Python 3.10 or newer; this runner embeds {}.{}",
            version.major, version.minor
        )));
    }
    let code = |s: &str| {
        CString::new(s).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
    };
    let dagger = PyModule::from_code(
        py,
        &code(SHIM)?,
        c"<connector-build>/dagger/__init__.py",
        c"dagger",
    )?;
    py.import("sys")?
        .getattr("modules")?
        .set_item("dagger", dagger)?;
    PyModule::from_code(
        py,
        &code(RUNNER)?,
        c"<connector-build>/runner.py",
        c"connector_build_runner",
    )?;
    Ok(())
}

/// `--compile FILE`: whether FILE compiles, as `python -m py_compile` decides, as one JSON
/// line: `{"ok": true}`, or `{"ok": false, "line": N|null, "message": "..."}`.
fn compile_file(py: Python<'_>, path: &str) -> serde_json::Value {
    let source = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            return serde_json::json!({"ok": false, "line": null, "message": format!("cannot read it: {e}")})
        }
    };
    let compiled = py.import("builtins").and_then(|b| {
        b.getattr("compile")?
            .call1((pyo3::types::PyBytes::new(py, &source), path, "exec"))
    });
    match compiled {
        Ok(_) => serde_json::json!({"ok": true}),
        Err(e) => {
            let value = e.value(py);
            let line = value
                .getattr("lineno")
                .ok()
                .and_then(|l| l.extract::<Option<u64>>().ok())
                .flatten();
            let message = value
                .getattr("msg")
                .ok()
                .and_then(|m| m.extract::<String>().ok())
                .unwrap_or_else(|| e.to_string());
            let kind = value
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default();
            serde_json::json!({"ok": false, "line": line, "message": format!("{kind}: {message}")})
        }
    }
}

fn main() {
    pyo3::append_to_inittab!(_connector_build);
    Python::initialize();
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!("connector-build-hooks (Python {})", Python::version_str());
        return;
    }
    if std::env::args().nth(1).as_deref() == Some("--compile") {
        let path = std::env::args().nth(2).unwrap_or_default();
        let answer = Python::attach(|py| compile_file(py, &path));
        println!("{answer}");
        return;
    }
    if let Err(e) = take_protocol_pipes() {
        eprintln!("connector-build-hooks: cannot set up the protocol channel: {e}");
        std::process::exit(1);
    }
    let result = Python::attach(|py| {
        run(py).map_err(|e| {
            let text = e
                .traceback(py)
                .and_then(|tb| tb.format().ok())
                .unwrap_or_default();
            format!("{text}{e}")
        })
    });
    if let Err(message) = result {
        // The runner itself failed (not the hook, whose failures are messages): tell
        // connector-build in the protocol, and people on stderr.
        let report = serde_json::json!({"failed": {"kind": "runner", "hook": null, "message": message, "line": null, "traceback": ""}});
        let _ = send_line(&report.to_string());
        eprintln!("connector-build-hooks: {message}");
        std::process::exit(1);
    }
}
