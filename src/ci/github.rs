//! GitHub Actions: workflow commands in the log (`::group::`, `::error file=…::`), and the
//! step's outputs in `$GITHUB_OUTPUT`. Written by hand: the format is a few escaping rules
//! (those of `@actions/core`), and no maintained crate covers groups, annotations and
//! multi-line outputs together.

use std::io::Write;
use std::path::PathBuf;

use crate::fault::Location;
use crate::plan::canonical::sha256_hex;
use crate::report::{RunReport, Status};

/// A run inside GitHub Actions, and where its outputs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Github {
    /// `$GITHUB_OUTPUT`.
    pub output: Option<PathBuf>,
    /// `$GITHUB_WORKSPACE`: annotation paths are relative to it.
    pub workspace: Option<PathBuf>,
}

impl Github {
    /// `Some` when `GITHUB_ACTIONS` is `true`, as the runner sets it.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<Github> {
        if lookup("GITHUB_ACTIONS").as_deref() != Some("true") {
            return None;
        }
        let path = |name: &str| lookup(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Some(Github {
            output: path("GITHUB_OUTPUT"),
            workspace: path("GITHUB_WORKSPACE"),
        })
    }

    /// One `::error` line per failed connector: with its file, line and column when the
    /// error is about a file, so it shows on the pull request's diff.
    pub fn annotations(&self, report: &RunReport) -> Vec<String> {
        report
            .connectors
            .iter()
            .filter(|c| c.status == Status::Failed)
            .map(|c| {
                let mut props = Vec::new();
                if let Some(at) = &c.location {
                    props.extend(self.location_properties(at));
                }
                props.push(format!("title={}", escape_property(&c.connector)));
                error_command(&props, c.error.as_deref().unwrap_or("failed"))
            })
            .collect()
    }

    fn location_properties(&self, at: &Location) -> Vec<String> {
        // Relative paths stay as they are: the runner's working folder is the workspace.
        let file = self
            .workspace
            .as_deref()
            .and_then(|w| at.file.strip_prefix(w).ok())
            .unwrap_or(&at.file);
        let mut props = vec![format!("file={}", escape_property(&file.to_string_lossy()))];
        if let Some(line) = at.line {
            props.push(format!("line={line}"));
        }
        if let Some(col) = at.col {
            props.push(format!("col={col}"));
        }
        props
    }

    /// Appends the run's results to `$GITHUB_OUTPUT` (nothing without one).
    pub fn write_outputs(&self, report: &RunReport) -> Result<(), OutputError> {
        let Some(path) = &self.output else {
            return Ok(());
        };
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(outputs(report).as_bytes()))
            .map_err(|source| OutputError {
                path: path.clone(),
                source,
            })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write the step outputs to {path} ($GITHUB_OUTPUT)")]
pub struct OutputError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Starts a collapsed section of the log.
pub fn group(title: &str) -> String {
    format!("::group::{}", escape_data(title))
}

pub const END_GROUP: &str = "::endgroup::";

fn error_command(props: &[String], message: &str) -> String {
    format!("::error {}::{}", props.join(","), escape_data(message))
}

/// `@actions/core`'s escaping of a command's message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// `@actions/core`'s escaping of a command's property value.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The outputs: `results` (a JSON array of connector, image, digest, status and failure
/// class), `built` and `failed` (connector names, space-separated) and `failure_class`.
pub fn outputs(report: &RunReport) -> String {
    let results: Vec<serde_json::Value> = report
        .connectors
        .iter()
        .map(|c| {
            serde_json::json!({
                "connector": c.connector,
                "image": c.tag,
                "digest": c.image_id,
                "status": c.status,
                "failure_class": c.failure_class,
            })
        })
        .collect();
    let names = |status: Status| {
        report
            .connectors
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.connector.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = String::new();
    output(
        &mut out,
        "results",
        &serde_json::to_string_pretty(&results).unwrap_or_default(),
    );
    output(&mut out, "built", &names(Status::Built));
    output(&mut out, "failed", &names(Status::Failed));
    output(
        &mut out,
        "failure_class",
        report.failure_class().map_or("", |c| c.as_str()),
    );
    out
}

/// `name=value`, or GitHub's heredoc form for a value with line breaks, with a delimiter
/// that does not occur in the value.
fn output(out: &mut String, name: &str, value: &str) {
    if !value.contains('\n') && !value.contains('\r') {
        out.push_str(&format!("{name}={value}\n"));
        return;
    }
    let mut seed = value.to_string();
    let delimiter = loop {
        let d = format!("ghadelimiter_{}", &sha256_hex(seed.as_bytes())[..32]);
        if !value.contains(&d) {
            break d;
        }
        seed.push('+');
    };
    out.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::record::tests::sample;

    fn github() -> Github {
        Github::from_lookup(|k| match k {
            "GITHUB_ACTIONS" => Some("true".into()),
            "GITHUB_WORKSPACE" => Some("/w/repo".into()),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn detected_only_when_the_runner_says_so() {
        assert!(Github::from_lookup(|_| None).is_none());
        assert!(Github::from_lookup(|k| (k == "GITHUB_ACTIONS").then(|| "false".into())).is_none());
        assert_eq!(github().workspace, Some(PathBuf::from("/w/repo")));
    }

    #[test]
    fn located_errors_become_annotations_on_the_file() {
        let mut report = sample();
        let broken = report
            .connectors
            .iter_mut()
            .find(|c| c.connector == "source-broken")
            .unwrap();
        broken.location = Some(Location {
            file: "/w/repo/connectors/source-broken/metadata.yaml".into(),
            line: Some(6),
            col: Some(4),
        });
        broken.error = Some("metadata.yaml:6:4: invalid YAML: 50%\nhint: fix it".into());
        let lines = github().annotations(&report);
        assert_eq!(
            lines,
            ["::error file=connectors/source-broken/metadata.yaml,line=6,col=4,title=source-broken::metadata.yaml:6:4: invalid YAML: 50%25%0Ahint: fix it"]
        );
    }

    #[test]
    fn outputs_use_the_heredoc_form_for_several_lines() {
        let text = outputs(&sample());
        let (name, rest) = text.split_once("<<").unwrap();
        assert_eq!(name, "results");
        let (delimiter, rest) = rest.split_once('\n').unwrap();
        assert!(delimiter.starts_with("ghadelimiter_"));
        let (value, rest) = rest.split_once(&format!("\n{delimiter}\n")).unwrap();
        let results: serde_json::Value = serde_json::from_str(value).unwrap();
        assert_eq!(results[0]["connector"], "source-faker");
        assert_eq!(results[0]["image"], "airbyte/source-faker:dev");
        assert_eq!(results[3]["status"], "failed");
        assert_eq!(results[3]["failure_class"], "build");
        assert_eq!(
            rest,
            "built=source-faker source-cached source-retried\nfailed=source-broken\nfailure_class=build\n"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
        assert_eq!(group("x\ny"), "::group::x%0Ay");
    }
}
