//! The report of a run: the record ([`record`]), and the three files written from it
//! (`report.json`, `report.md` also appended to the GitHub step summary, `report.html`), and
//! [`merge`] to read reports back and join a sharded run's.
//!
//! Rendering is a pure function of [`RunReport`], so every format is snapshot-tested without
//! an engine.

pub mod html;
pub mod markdown;
pub mod merge;
pub mod published;
pub mod record;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use self::published::{PublishOutcome, Published, PublishedPlatform};
pub use self::record::{
    duration, short_id, ConnectorReport, EngineReport, Interruption, LostAttempt, PlatformImage,
    RunReport, Status, StepTiming, Totals,
};

impl RunReport {
    /// Writes `report.json`, `report.md` and `report.html` into `dir` (created), and appends
    /// the Markdown to `step_summary` when given (GitHub's `$GITHUB_STEP_SUMMARY`).
    pub fn write(
        &self,
        dir: &Path,
        step_summary: Option<&Path>,
    ) -> Result<Vec<PathBuf>, WriteError> {
        let wrap = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WriteError { path, source }
        };
        std::fs::create_dir_all(dir).map_err(wrap(dir))?;
        let md = markdown::render(self);
        let mut written = Vec::new();
        for (name, body) in [
            ("report.json", self.to_json()),
            ("report.md", md.clone()),
            ("report.html", html::render(self)),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, body).map_err(wrap(&path))?;
            written.push(path);
        }
        if let Some(summary) = step_summary {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(summary)
                .and_then(|mut f| f.write_all(format!("{md}\n").as_bytes()))
                .map_err(wrap(summary))?;
        }
        Ok(written)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write the report {path}")]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// A report folder that cannot be used, found before anything is built.
#[derive(Debug, thiserror::Error)]
#[error("--report-dir {}: {reason}; nothing was built, since the run's reports would be lost", .path.display())]
pub struct ReportDirError {
    pub path: PathBuf,
    pub reason: String,
    #[source]
    pub source: Option<std::io::Error>,
}

/// Makes sure reports can be written to `dir` before a run starts, so a run whose reports
/// would be lost fails at once rather than after its builds: creates it and writes a probe.
pub fn prepare_dir(dir: &Path) -> Result<(), ReportDirError> {
    let refuse = |reason: String, source: Option<std::io::Error>| ReportDirError {
        path: dir.to_path_buf(),
        reason,
        source,
    };
    // What is in the way, when something is: the folder itself or one above it is a file.
    if let Some(file) = dir
        .ancestors()
        .find(|a| std::fs::metadata(a).is_ok_and(|m| !m.is_dir()))
    {
        return Err(refuse(
            if file == dir {
                "it is a file, not a folder".to_string()
            } else {
                format!("{} is a file, so the folder cannot be made", file.display())
            },
            None,
        ));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| refuse("the folder cannot be made".into(), Some(e)))?;
    tempfile::Builder::new()
        .prefix(".write-check")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| refuse("files cannot be written there".into(), Some(e)))
}

#[cfg(test)]
mod tests {
    use super::record::tests::sample;

    #[test]
    fn written_files_and_the_step_summary() {
        let dir = tempfile::tempdir().unwrap();
        let summary = dir.path().join("summary.md");
        std::fs::write(&summary, "before\n").unwrap();
        let out = dir.path().join("a/b");
        let written = sample().write(&out, Some(&summary)).unwrap();
        assert_eq!(written.len(), 3);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(json["connectors"][3]["status"], "failed");
        let appended = std::fs::read_to_string(&summary).unwrap();
        assert!(
            appended.starts_with("before\n## connector-build: 3 built"),
            "{appended}"
        );
    }
}
