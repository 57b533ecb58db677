//! Reading `report.json` back, and joining the reports of a run's shards into one
//! (`connector-build report merge`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::record::{Interruption, RunReport, Status};
use crate::fault::SCHEMA_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read the report {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: not JSON: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{path}: {}, this connector-build reads version {SCHEMA_VERSION}\nhint: write it again with this version of connector-build", found.map_or("no `schema_version` (written before reports had one)".to_string(), |v| format!("`schema_version` is {v}")))]
    Version { path: PathBuf, found: Option<u64> },
    #[error("{path}: not a connector-build run report: {message}")]
    Shape { path: PathBuf, message: String },
    #[error("{connector} is in two reports, {first} and {second}; the shards of one run hold each connector once\nhint: merge the reports of one run only, each once")]
    Duplicate {
        connector: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("no report to merge")]
    Nothing,
}

/// `path` itself, or its `report.json` when it is a folder.
pub fn report_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    }
}

impl RunReport {
    /// Reads a `report.json` (or the one in a report folder) of this schema version.
    pub fn read(path: &Path) -> Result<RunReport, ReadError> {
        let path = report_file(path);
        let text = std::fs::read_to_string(&path).map_err(|source| ReadError::Read {
            path: path.clone(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ReadError::Syntax {
                path: path.clone(),
                line: e.line(),
                col: e.column(),
                message: e.to_string(),
            })?;
        let found = value.get("schema_version").and_then(|v| v.as_u64());
        if found != Some(u64::from(SCHEMA_VERSION)) {
            return Err(ReadError::Version { path, found });
        }
        RunReport::deserialize(value).map_err(|e| ReadError::Shape {
            path,
            message: e.to_string(),
        })
    }

    /// Seconds each connector took, for `--shard --balance-from`; connectors never started
    /// are left out.
    pub fn durations(&self) -> BTreeMap<String, f64> {
        self.connectors
            .iter()
            .filter(|c| c.status != Status::Skipped)
            .map(|c| (c.connector.clone(), c.seconds))
            .collect()
    }

    /// One report of the shards' reports (each with the file it came from): the connectors
    /// in the order given, the run from the first start to the last finish, engines and
    /// warnings joined. A connector in two reports is refused.
    pub fn merge(reports: Vec<(PathBuf, RunReport)>) -> Result<RunReport, ReadError> {
        if reports.is_empty() {
            return Err(ReadError::Nothing);
        }
        let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut hosts: Vec<String> = Vec::new();
        let mut lost: Vec<Option<String>> = Vec::new();
        let mut warnings: Vec<String> = Vec::new();
        let mut connectors = Vec::new();
        let mut interrupted: Option<Interruption> = None;
        let (mut started, mut finished) = (f64::INFINITY, f64::NEG_INFINITY);
        for (path, report) in reports {
            started = started.min(report.started_at);
            finished = finished.max(report.finished_at);
            for e in report.engines {
                match hosts.iter().position(|h| *h == e.host) {
                    Some(i) => {
                        if lost[i].is_none() {
                            lost[i] = e.lost;
                        }
                    }
                    None => {
                        hosts.push(e.host);
                        lost.push(e.lost);
                    }
                }
            }
            for w in report.warnings {
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
            if let Some(i) = report.interrupted {
                let removed = interrupted.as_ref().map_or(0, |x| x.containers_removed);
                interrupted = Some(Interruption {
                    containers_removed: removed + i.containers_removed,
                    ..interrupted.unwrap_or(i)
                });
            }
            for c in report.connectors {
                if let Some(first) = seen.get(&c.connector) {
                    return Err(ReadError::Duplicate {
                        connector: c.connector,
                        first: first.clone(),
                        second: path,
                    });
                }
                seen.insert(c.connector.clone(), path.clone());
                connectors.push(c);
            }
        }
        let mut merged = RunReport::new(started, finished, &hosts, &lost, warnings, connectors);
        merged.interrupted = interrupted;
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::record::tests::sample;

    fn split(report: &RunReport, at: usize) -> (RunReport, RunReport) {
        let mut a = report.clone();
        let mut b = report.clone();
        a.connectors.truncate(at);
        b.connectors.drain(..at);
        b.warnings.push("only in the second shard".into());
        (a, b)
    }

    #[test]
    fn a_report_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        sample().write(dir.path(), None).unwrap();
        assert_eq!(RunReport::read(dir.path()).unwrap(), sample());
    }

    #[test]
    fn reports_of_other_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, r#"{"tool_version": "0.1.0", "connectors": []}"#).unwrap();
        let e = RunReport::read(&path).unwrap_err().to_string();
        assert!(e.contains("no `schema_version`"), "{e}");
        std::fs::write(&path, "{\n  \"schema_version\": 1,\n  oops\n}").unwrap();
        let e = RunReport::read(&path).unwrap_err().to_string();
        assert!(e.contains("report.json:3:3: not JSON"), "{e}");
    }

    #[test]
    fn shards_join_into_the_run_they_split() {
        let whole = sample();
        let (a, b) = split(&whole, 2);
        let merged = RunReport::merge(vec![("a".into(), a), ("b".into(), b)]).unwrap();
        assert_eq!(merged.connectors, whole.connectors);
        assert_eq!(merged.totals, whole.totals);
        assert_eq!(merged.engines, whole.engines);
        assert_eq!(merged.started_at, whole.started_at);
        assert_eq!(merged.finished_at, whole.finished_at);
        assert_eq!(merged.warnings.len(), 2);
        assert_eq!(merged.failure_class(), whole.failure_class());
    }

    #[test]
    fn a_connector_in_two_shards_is_refused() {
        let whole = sample();
        let (a, _) = split(&whole, 2);
        let e = RunReport::merge(vec![("a".into(), a.clone()), ("b".into(), a)])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("source-faker is in two reports, a and b"),
            "{e}"
        );
    }
}
