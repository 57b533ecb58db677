//! What kind of failure an error is, so CI can act on it: retry an infrastructure fault (an
//! engine or registry that does not answer, a network failure after the installer's own
//! retries), report a failed build (bad input, a failing step, a failing `spec`) and stop.
//! Also where an error points in the user's files, for CI annotations.
//!
//! Classification is by variant wherever the error carries structure. Two places only have
//! text: the engine reports pull and push failures as a message, and an install step's
//! failure is the installer's output; those are matched against the few phrases Go's
//! network stack and pip/uv print for a network failure ([`network_failure`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engine::EngineError;
use crate::execute::BuildError;
use crate::hooks::HookError;
use crate::model::MetadataError;
use crate::pipeline::ConnectorError;
use crate::plan::python::PlanError;

/// The version of the JSON shapes written by `build --json` and `report.json`; raised when a
/// field changes meaning or goes away (new fields do not raise it).
pub const SCHEMA_VERSION: u32 = 1;

/// Why a connector failed, from CI's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultClass {
    /// The connector's files are wrong (metadata, build customization, missing code): fix them.
    Input,
    /// A build step, the smoke test or the `spec` check failed: fix the connector.
    Build,
    /// The engine, a registry or the network failed: the same run may pass when retried.
    Infrastructure,
}

impl FaultClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultClass::Input => "input",
            FaultClass::Build => "build",
            FaultClass::Infrastructure => "infrastructure",
        }
    }

    pub fn retryable(self) -> bool {
        self == FaultClass::Infrastructure
    }
}

/// A place in a file an error is about (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub file: PathBuf,
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub col: Option<usize>,
}

impl Location {
    fn at(file: &std::path::Path, line: usize, col: Option<usize>) -> Location {
        Location {
            file: file.to_path_buf(),
            line: Some(line),
            col,
        }
    }
}

/// Phrases of a network failure beyond those a build step retries on
/// ([`crate::execute::TRANSIENT_NETWORK_SIGNS`]): Go's net package (the engine pulling and
/// pushing), and a server that refuses or is down, which a retry a little later may pass.
const NETWORK_MARKERS: &[&str] = &[
    "dial tcp",
    "connection refused",
    "no such host",
    "i/o timeout",
    "tls handshake timeout",
    "network is unreachable",
    "name or service not known",
    "newconnectionerror",
    "failed to establish a new connection",
    "connecttimeouterror",
    // The engine's words for a registry answering 5xx: its fault, not the reference's.
    "unexpected http status: 5",
    "503 service unavailable",
    "502 bad gateway",
];

/// Whether `text` tells of a network failure.
pub fn network_failure(text: &str) -> bool {
    let lower = text.to_lowercase();
    crate::execute::TRANSIENT_NETWORK_SIGNS
        .iter()
        .chain(NETWORK_MARKERS)
        .any(|m| lower.contains(m))
}

impl EngineError {
    pub fn class(&self) -> FaultClass {
        match self {
            // An endpoint no engine can be at, whether one runs or not.
            EngineError::Unreachable {
                source: bollard::errors::Error::UnsupportedURISchemeError { .. },
                ..
            } => FaultClass::Input,
            EngineError::Unreachable { .. } => FaultClass::Infrastructure,
            EngineError::Registry { .. } => FaultClass::Infrastructure,
            EngineError::Pull { message, .. }
            | EngineError::Push { message, .. }
            | EngineError::Refused { message, .. }
            | EngineError::DockerfileBuild { message, .. }
                if network_failure(message) =>
            {
                FaultClass::Infrastructure
            }
            EngineError::Endpoint(_)
            | EngineError::RegistryAuth { .. }
            | EngineError::Credentials(_)
            | EngineError::DigestMismatch { .. }
            | EngineError::UnsupportedPlatform { .. }
            | EngineError::Pull { .. }
            | EngineError::Push { .. } => FaultClass::Input,
            EngineError::Refused { .. }
            | EngineError::DockerfileBuild { .. }
            | EngineError::Import { .. } => FaultClass::Build,
            // A save or load stream cut off or unreadable: the engine's side, worth a retry.
            EngineError::Archive { source, .. } => source.class(),
        }
    }
}

impl crate::registry::RegistryError {
    /// A registry that does not answer, times out or fails (5xx) is infrastructure; a
    /// request it refuses (credentials, a bad manifest) is input.
    pub fn class(&self) -> FaultClass {
        if self.retryable() {
            FaultClass::Infrastructure
        } else {
            FaultClass::Input
        }
    }
}

impl BuildError {
    pub fn class(&self) -> FaultClass {
        match self {
            BuildError::Engine(e) => e.class(),
            BuildError::Archive(_)
            | BuildError::Unsupported { .. }
            | BuildError::WrongPlatform { .. } => FaultClass::Input,
            // The build already retried a failure that may pass (see `NETWORK_ATTEMPTS`).
            BuildError::StepFailed(f)
                if network_failure(&f.stdout) || network_failure(&f.stderr) =>
            {
                FaultClass::Infrastructure
            }
            BuildError::StepFailed(_) | BuildError::SmokeTest { .. } => FaultClass::Build,
            BuildError::OnPlatform { source, .. } => source.class(),
        }
    }
}

impl HookError {
    pub fn class(&self) -> FaultClass {
        match self {
            HookError::Timeout { .. } | HookError::Crashed { .. } => FaultClass::Build,
            _ => FaultClass::Input,
        }
    }

    pub fn location(&self) -> Option<Location> {
        match self {
            HookError::Failed { file, failure } => Some(Location {
                file: file.clone(),
                line: failure.line.map(|l| l as usize),
                col: None,
            }),
            HookError::RunnerMissing { file, .. }
            | HookError::PythonUnavailable { file, .. }
            | HookError::Spawn { file, .. }
            | HookError::Timeout { file, .. }
            | HookError::Crashed { file, .. }
            | HookError::Operation { file, .. } => Some(Location {
                file: file.clone(),
                line: None,
                col: None,
            }),
        }
    }
}

impl MetadataError {
    pub fn location(&self) -> Location {
        match self {
            MetadataError::Syntax {
                path, line, col, ..
            }
            | MetadataError::NotUtf8 { path, line, col } => Location::at(path, *line, Some(*col)),
            MetadataError::NotAMapping { path, line, .. }
            | MetadataError::Missing { path, line, .. }
            | MetadataError::WrongType { path, line, .. }
            | MetadataError::UnknownBuildOption { path, line, .. }
            | MetadataError::Invalid { path, line, .. }
            | MetadataError::BadImage { path, line, .. } => Location::at(path, *line, None),
            MetadataError::Read { path, .. } | MetadataError::Empty { path } => Location {
                file: path.clone(),
                line: None,
                col: None,
            },
        }
    }
}

impl ConnectorError {
    pub fn class(&self) -> FaultClass {
        match self {
            ConnectorError::Discovery(_)
            | ConnectorError::Metadata(_)
            | ConnectorError::Plan(_) => FaultClass::Input,
            ConnectorError::Build(e) => e.class(),
            ConnectorError::Hook(e) => e.class(),
            // A signal is neither; the exit status says which signal.
            ConnectorError::Interrupted => FaultClass::Infrastructure,
        }
    }

    /// The file (and line, column) the error is about, when it is about one.
    pub fn location(&self) -> Option<Location> {
        match self {
            ConnectorError::Metadata(e) => Some(e.location()),
            ConnectorError::Plan(PlanError::Unpinned { path, line, .. }) => {
                Some(Location::at(path, *line, None))
            }
            ConnectorError::Hook(e) => e.location(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::StepFailure;

    fn step_failed(output: &[&str]) -> BuildError {
        BuildError::StepFailed(Box::new(StepFailure {
            step: "install dependencies".into(),
            command: "pip install".into(),
            exit_code: 1,
            output: output.iter().map(|s| s.to_string()).collect(),
            stdout: String::new(),
            stderr: output.join("\n"),
        }))
    }

    #[test]
    fn a_failing_step_is_a_build_failure_unless_the_network_failed() {
        assert_eq!(
            step_failed(&["ERROR: No matching distribution found for nope==0.0.0"]).class(),
            FaultClass::Build
        );
        assert_eq!(
            step_failed(&[
                "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError(...)'",
                "ERROR: Could not find a version that satisfies the requirement requests"
            ])
            .class(),
            FaultClass::Infrastructure
        );
    }

    #[test]
    fn pulls_fail_for_the_network_or_for_the_reference() {
        let pull = |message: &str| EngineError::Pull {
            reference: "127.0.0.1:5999/x@sha256:00".into(),
            message: message.into(),
        };
        assert_eq!(
            pull("Get \"http://127.0.0.1:5999/v2/\": dial tcp 127.0.0.1:5999: connect: connection refused").class(),
            FaultClass::Infrastructure
        );
        assert_eq!(
            pull("received unexpected HTTP status: 500 Internal Server Error").class(),
            FaultClass::Infrastructure
        );
        assert_eq!(
            pull("manifest for x not found: manifest unknown").class(),
            FaultClass::Input
        );
    }

    #[test]
    fn metadata_errors_point_at_their_line_and_column() {
        let e = ConnectorError::Metadata(MetadataError::Syntax {
            path: "c/metadata.yaml".into(),
            line: 3,
            col: 7,
            message: "bad".into(),
        });
        assert_eq!(e.class(), FaultClass::Input);
        assert_eq!(
            e.location(),
            Some(Location {
                file: "c/metadata.yaml".into(),
                line: Some(3),
                col: Some(7)
            })
        );
    }
}
