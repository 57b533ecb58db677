//! Progress reporting. The library emits events; the binary decides how to draw them
//! (bars on a terminal, plain lines in CI logs, nothing for `--json`).

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A run over several connectors began; `engines` are the endpoints it spreads over.
    RunStarted {
        total: usize,
        engines: Vec<String>,
    },
    /// The connector's engine stopped answering mid-build; it goes back in the queue for
    /// another engine.
    Retrying {
        connector: String,
        engine: String,
        reason: String,
    },
    /// A connector's build began; `steps` are the step names it will go through.
    Started {
        connector: String,
        steps: Vec<String>,
    },
    StepStarted {
        connector: String,
        step: String,
    },
    StepFinished {
        connector: String,
        step: String,
        cached: bool,
        #[serde(with = "secs")]
        duration: Duration,
    },
    /// A line of output from the current step (install logs, pull progress).
    Output {
        connector: String,
        line: String,
    },
    Warning {
        connector: String,
        message: String,
    },
    /// Bytes of `item` (a blob) sent to a registry so far, of `total`.
    Transfer {
        connector: String,
        item: String,
        done: u64,
        total: u64,
    },
    Finished {
        connector: String,
        ok: bool,
    },
}

pub trait Reporter: Send + Sync {
    fn report(&self, event: Event);
}

/// Reports nothing; for tests and `--json` runs.
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _event: Event) {}
}

mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}
