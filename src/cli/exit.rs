//! How a command ends. A command prints what it has to say where it happens and returns
//! `Err(Exit)` for any status but 0, so `?` carries a failure up to `main`.

use std::process::ExitCode;

use connector_build::error::error_chain;
use connector_build::fault::FaultClass;

/// The status of a command that did not fully succeed (README: "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: something asked for was not done (bad input, a failed build or `spec`).
    Failed,
    /// 75 (sysexits' EX_TEMPFAIL): not done because the engine, a registry or the network
    /// failed; running again may succeed.
    Infrastructure,
    /// 2: the command line itself is wrong.
    Usage,
    /// 128 + the signal's number.
    Signal(Signal),
}

/// What every command returns.
pub type Outcome = Result<(), Exit>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The shell's convention, 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }

    pub fn from_name(name: &str) -> Signal {
        if name == "SIGTERM" {
            Signal::Terminate
        } else {
            Signal::Interrupt
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        match exit {
            Exit::Failed => ExitCode::FAILURE,
            Exit::Infrastructure => ExitCode::from(INFRASTRUCTURE_CODE),
            Exit::Usage => ExitCode::from(2),
            Exit::Signal(s) => ExitCode::from(s.exit_code()),
        }
    }
}

/// The exit status of an infrastructure fault.
pub const INFRASTRUCTURE_CODE: u8 = 75;

impl Exit {
    /// The status for a failure of `class`.
    pub fn of(class: FaultClass) -> Exit {
        if class.retryable() {
            Exit::Infrastructure
        } else {
            Exit::Failed
        }
    }
}

/// Prints `e` with its causes and hints; the command has failed for `class`.
pub fn fail_as(e: &dyn std::error::Error, class: FaultClass) -> Exit {
    fail(e);
    Exit::of(class)
}

/// Prints `e` with its causes and hints; the command has failed.
pub fn fail(e: &dyn std::error::Error) -> Exit {
    eprintln!("error: {}", error_chain(e));
    Exit::Failed
}

/// Prints a usage error; the command line is wrong.
pub fn usage(message: impl std::fmt::Display) -> Exit {
    eprintln!("error: {message}");
    Exit::Usage
}

/// Prints an error that is no library error (a refusal the command itself decides).
pub fn failed(message: impl std::fmt::Display) -> Exit {
    eprintln!("error: {message}");
    Exit::Failed
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn shutdown_signal() -> Signal {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => Signal::Interrupt,
                    _ = term.recv() => Signal::Terminate,
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                Signal::Interrupt
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Interrupt
    }
}
