//! The record of a run, as plain data: per connector its status, engine, image and steps;
//! `report.json` is its serialisation.

use serde::{Deserialize, Serialize};

use crate::execute::{BuildOutcome, StepReport};
use crate::fault::{FaultClass, Location, SCHEMA_VERSION};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// [`SCHEMA_VERSION`]: the shape of this record.
    pub schema_version: u32,
    pub tool_version: String,
    /// Seconds since the Unix epoch.
    pub started_at: f64,
    pub finished_at: f64,
    pub engines: Vec<EngineReport>,
    pub totals: Totals,
    /// Connectors the selection left out, and similar notices.
    pub warnings: Vec<String>,
    /// Set when a signal stopped the run before every connector was done.
    pub interrupted: Option<Interruption>,
    /// In the order they were asked for.
    pub connectors: Vec<ConnectorReport>,
}

/// How a run was cut short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interruption {
    /// `SIGINT` or `SIGTERM`.
    pub signal: String,
    /// Build containers of the run removed afterwards.
    pub containers_removed: usize,
    /// A second signal ended the removal early: build containers may be left.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cleanup_cut_short: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineReport {
    pub host: String,
    pub built: usize,
    pub failed: usize,
    /// Why the run stopped using this engine, when it did.
    pub lost: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub built: usize,
    pub failed: usize,
    /// Not started: `--fail-fast` or an interruption stopped the run first.
    pub skipped: usize,
    /// In progress when a signal stopped the run.
    pub interrupted: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Built,
    Failed,
    Skipped,
    Interrupted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Built => "built",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorReport {
    pub connector: String,
    pub status: Status,
    /// The engine that built it (or failed to); `None` when it never reached one.
    pub engine: Option<String>,
    pub tag: Option<String>,
    pub image_id: Option<String>,
    pub size: Option<i64>,
    pub base_digest: Option<String>,
    pub cache_key: Option<String>,
    pub containers_started: Option<usize>,
    /// How the dependency layer was made when it was built (clean, delta, rebased; why not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependency_layer: Option<String>,
    pub seconds: f64,
    pub steps: Vec<StepTiming>,
    /// Why it failed (or was not started): the error with its causes, one per line.
    pub error: Option<String>,
    /// For a failed connector: `input`, `build` or `infrastructure` (retryable).
    pub failure_class: Option<FaultClass>,
    /// The file (line, column) the error is about, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// The last lines of the failing command's output, when a command failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_output: Vec<String>,
    /// Earlier attempts on engines that stopped answering.
    pub lost_attempts: Vec<LostAttempt>,
    /// What `publish` pushed (or found already published).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<super::published::Published>,
    /// With `--platform`: the image built for each platform other than the engine's (the
    /// fields above are the engine's platform's, or the first one's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformImage>,
}

/// One platform's image of a connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformImage {
    pub platform: String,
    pub tag: String,
    pub image_id: String,
    pub cache_key: String,
    pub containers_started: usize,
    pub seconds: f64,
    /// Whether the image's commands ran under emulation (the platform is not the engine's).
    pub emulated: bool,
    /// How its install steps ran: natively (uv for the target) or emulated, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cross: Vec<crate::execute::cross::CrossStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    pub name: String,
    pub cached: bool,
    /// Seconds since the Unix epoch.
    pub started_at: f64,
    pub seconds: f64,
    /// The step the build failed in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
}

impl From<&StepReport> for StepTiming {
    fn from(s: &StepReport) -> Self {
        StepTiming {
            name: s.name.clone(),
            cached: s.cached,
            started_at: s.started_at,
            seconds: s.seconds,
            failed: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LostAttempt {
    pub engine: String,
    pub error: String,
    pub steps: Vec<StepTiming>,
}

impl ConnectorReport {
    pub fn built(outcome: BuildOutcome, engine: &str) -> Self {
        ConnectorReport {
            connector: outcome.connector,
            status: Status::Built,
            engine: Some(engine.to_string()),
            tag: Some(outcome.tag),
            image_id: Some(outcome.image_id),
            size: Some(outcome.size),
            base_digest: outcome.base_digest,
            cache_key: Some(outcome.cache_key),
            containers_started: Some(outcome.containers_started),
            dependency_layer: outcome.dependency_layer,
            seconds: outcome.seconds,
            steps: outcome.steps.iter().map(StepTiming::from).collect(),
            error: None,
            failure_class: None,
            location: None,
            error_output: Vec::new(),
            lost_attempts: Vec::new(),
            published: None,
            platforms: Vec::new(),
        }
    }

    pub fn failed(
        connector: String,
        engine: Option<&str>,
        class: FaultClass,
        (error, error_output): (String, Vec<String>),
        steps: Vec<StepTiming>,
        seconds: f64,
    ) -> Self {
        ConnectorReport {
            connector,
            status: Status::Failed,
            engine: engine.map(str::to_string),
            tag: None,
            image_id: None,
            size: None,
            base_digest: None,
            cache_key: None,
            containers_started: None,
            dependency_layer: None,
            seconds,
            steps,
            error: Some(error),
            failure_class: Some(class),
            location: None,
            error_output,
            lost_attempts: Vec::new(),
            published: None,
            platforms: Vec::new(),
        }
    }

    /// Never started; `why` says what stopped the run first.
    pub fn skipped(connector: String, why: &str) -> Self {
        ConnectorReport {
            status: Status::Skipped,
            failure_class: None,
            ..ConnectorReport::failed(
                connector,
                None,
                FaultClass::Build,
                (format!("not started: {why}"), vec![]),
                vec![],
                0.0,
            )
        }
    }

    /// Cut short by `signal` on `engine`, during the last of `steps` (if any began).
    pub fn interrupted(
        connector: String,
        engine: &str,
        signal: &str,
        steps: Vec<StepTiming>,
        seconds: f64,
    ) -> Self {
        let during = steps
            .last()
            .map(|s| format!(" during `{}`", s.name))
            .unwrap_or_default();
        ConnectorReport {
            status: Status::Interrupted,
            failure_class: None,
            ..ConnectorReport::failed(
                connector,
                Some(engine),
                FaultClass::Build,
                (
                    format!("interrupted by {signal}{during}; nothing was tagged"),
                    vec![],
                ),
                steps,
                seconds,
            )
        }
    }
}

impl ConnectorReport {
    /// The error's first line, for tables.
    pub fn error_summary(&self) -> Option<&str> {
        self.error.as_deref().and_then(|e| e.lines().next())
    }

    /// `cached/steps`, or nothing when no step ran.
    pub fn cache_hits(&self) -> String {
        if self.steps.is_empty() {
            return String::new();
        }
        let cached = self.steps.iter().filter(|s| s.cached).count();
        format!("{cached}/{}", self.steps.len())
    }

    /// The build time, or nothing for a connector that never started.
    pub fn shown_time(&self) -> String {
        if self.status == Status::Skipped {
            String::new()
        } else {
            duration(self.seconds)
        }
    }
}

impl RunReport {
    /// Totals and per-engine counts, from the connectors.
    pub fn new(
        started_at: f64,
        finished_at: f64,
        hosts: &[String],
        lost: &[Option<String>],
        warnings: Vec<String>,
        connectors: Vec<ConnectorReport>,
    ) -> RunReport {
        let count = |status: Status, engine: Option<&str>| {
            connectors
                .iter()
                .filter(|c| {
                    c.status == status && (engine.is_none() || c.engine.as_deref() == engine)
                })
                .count()
        };
        let engines = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| EngineReport {
                host: h.clone(),
                built: count(Status::Built, Some(h)),
                failed: count(Status::Failed, Some(h)),
                lost: lost.get(i).cloned().flatten(),
            })
            .collect();
        RunReport {
            schema_version: SCHEMA_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at,
            finished_at,
            engines,
            totals: Totals {
                built: count(Status::Built, None),
                failed: count(Status::Failed, None),
                skipped: count(Status::Skipped, None),
                interrupted: count(Status::Interrupted, None),
            },
            warnings,
            interrupted: None,
            connectors,
        }
    }

    pub fn seconds(&self) -> f64 {
        (self.finished_at - self.started_at).max(0.0)
    }

    /// A built connector whose publication failed: it counts as failed, for `class`.
    pub fn fail_built(&mut self, index: usize, class: FaultClass, error: String) {
        let Some(c) = self.connectors.get_mut(index) else {
            return;
        };
        if c.status != Status::Built {
            return;
        }
        c.status = Status::Failed;
        c.failure_class = Some(class);
        c.error = Some(error);
        self.totals.built -= 1;
        self.totals.failed += 1;
        if let Some(e) = self
            .engines
            .iter_mut()
            .find(|e| Some(&e.host) == c.engine.as_ref())
        {
            e.built -= 1;
            e.failed += 1;
        }
    }

    pub fn ok(&self) -> bool {
        self.totals.failed == 0 && self.totals.skipped == 0 && self.interrupted.is_none()
    }

    /// What kind of failure the run as a whole is: `infrastructure` only when every failed
    /// connector failed for that reason (so a retry may pass); `None` when nothing failed.
    pub fn failure_class(&self) -> Option<FaultClass> {
        let classes: Vec<FaultClass> = self
            .connectors
            .iter()
            .filter(|c| c.status == Status::Failed)
            .map(|c| c.failure_class.unwrap_or(FaultClass::Build))
            .collect();
        if !classes.is_empty() && classes.iter().all(|c| c.retryable()) {
            return Some(FaultClass::Infrastructure);
        }
        classes.into_iter().filter(|c| !c.retryable()).min()
    }

    /// The failed connectors with their errors, in report order.
    /// The connectors `publish` pushed or found already published, with what it pushed.
    pub fn published(&self) -> Vec<(&ConnectorReport, &crate::publish::Published)> {
        self.connectors
            .iter()
            .filter_map(|c| c.published.as_ref().map(|p| (c, p)))
            .collect()
    }

    pub fn failures(&self) -> Vec<(&ConnectorReport, &str)> {
        self.connectors
            .iter()
            .filter(|c| c.status == Status::Failed)
            .filter_map(|c| c.error.as_deref().map(|e| (c, e)))
            .collect()
    }

    /// `build --json`: the schema version and the connectors' results.
    pub fn results_json(&self) -> String {
        serde_json::to_string_pretty(&serde_json::json!({
            "schema_version": self.schema_version,
            "connectors": self.connectors,
        }))
        .unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// `N built, N failed, N skipped, N interrupted`, without the zero counts that say
    /// nothing.
    pub fn headline(&self) -> String {
        let t = self.totals;
        let mut parts = vec![format!("{} built", t.built)];
        if t.failed > 0 || (t.skipped == 0 && t.interrupted == 0) {
            parts.push(format!("{} failed", t.failed));
        }
        if t.skipped > 0 {
            parts.push(format!("{} skipped", t.skipped));
        }
        match &self.interrupted {
            Some(i) => parts.push(format!("{} interrupted by {}", t.interrupted, i.signal)),
            None if t.interrupted > 0 => parts.push(format!("{} interrupted", t.interrupted)),
            None => {}
        }
        parts.join(", ")
    }
}

pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// `42.6s`, `3m 05s`, `1h 02m`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        let whole = s.round() as u64;
        format!("{}m {:02}s", whole / 60, whole % 60)
    } else {
        let minutes = (s / 60.0).round() as u64;
        format!("{}h {:02}m", minutes / 60, minutes % 60)
    }
}

/// A publication's outcome, for the HTML and Markdown reports.
pub fn outcome_label(p: &crate::publish::Published) -> &'static str {
    match p.outcome {
        crate::publish::PublishOutcome::Pushed => "pushed",
        crate::publish::PublishOutcome::AlreadyPublished => "already published",
    }
}

/// `yes`, or `no: ` and why not.
pub fn reproducible_label(p: &crate::publish::Published) -> String {
    if p.reproducible {
        "yes".into()
    } else {
        format!("no: {}", p.reproducibility.join("; "))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn step(name: &str, cached: bool, started_at: f64, seconds: f64) -> StepTiming {
        StepTiming {
            name: name.into(),
            cached,
            started_at,
            seconds,
            failed: false,
        }
    }

    /// [`sample`] after a `publish`: the first connector pushed (reproducible), the second
    /// already published (not reproducible, with why).
    pub fn published_sample() -> RunReport {
        let mut r = sample();
        let published = |name: &str, digest: char, outcome, reasons: &[&str]| {
            let digest = format!("sha256:{}", digest.to_string().repeat(64));
            crate::publish::Published {
                image: format!("127.0.0.1:5000/airbyte/{name}:1.2.3@{digest}"),
                name: format!("127.0.0.1:5000/airbyte/{name}"),
                tag: "1.2.3".into(),
                digest: digest.clone(),
                media_type: crate::registry::OCI_MANIFEST.into(),
                config_digest: Some(format!("sha256:{}", "c".repeat(64))),
                tags: vec!["1.2.3".into()],
                outcome,
                reproducible: reasons.is_empty(),
                reproducibility: reasons.iter().map(|r| r.to_string()).collect(),
                epoch: 1_700_000_000,
                epoch_source: "git".into(),
                revision: Some("0123456789abcdef0123456789abcdef01234567".into()),
                blobs_uploaded: 3,
                blobs_mounted: 2,
                blobs_present: 0,
                bytes_uploaded: 1234,
                sbom_tag: Some(format!("{}.sbom", digest.replace(':', "-"))),
                sbom_file: None,
                platforms: Vec::new(),
            }
        };
        r.connectors[0].published = Some(published(
            &r.connectors[0].connector.clone(),
            'a',
            crate::publish::PublishOutcome::Pushed,
            &[],
        ));
        r.connectors[1].published = Some(published(
            &r.connectors[1].connector.clone(),
            'b',
            crate::publish::PublishOutcome::AlreadyPublished,
            &["requirements without `==` pins: a|b <c>"],
        ));
        r
    }

    /// A run over two engines: a fresh build, a cached one, one retried after its engine
    /// stopped answering, one that failed in its install, and one skipped.
    pub fn sample() -> RunReport {
        let t0 = 1_800_000_000.0;
        let e1 = "unix:///var/run/docker.sock".to_string();
        let e2 = "unix:///run/cb-test-docker2.sock".to_string();
        let built = |name: &str, engine: &str, offset: f64, cached: bool| ConnectorReport {
            connector: name.into(),
            status: Status::Built,
            engine: Some(engine.into()),
            tag: Some(format!("airbyte/{name}:dev")),
            image_id: Some(format!("sha256:{}", "4e99e65e88a0".repeat(5))),
            size: Some(312_400_000),
            base_digest: Some(format!("sha256:{}", "b8".repeat(32))),
            cache_key: Some("ab".repeat(32)),
            containers_started: Some(if cached { 0 } else { 3 }),
            dependency_layer: None,
            seconds: if cached { 0.2 } else { 44.0 },
            steps: if cached {
                vec![
                    step("base image", true, t0 + offset, 0.0),
                    step("install dependencies", true, t0 + offset, 0.0),
                    step("copy connector code", true, t0 + offset + 0.1, 0.0),
                    step("smoke test", true, t0 + offset + 0.1, 0.0),
                ]
            } else {
                vec![
                    step("base image", true, t0 + offset, 0.1),
                    step("install dependencies", false, t0 + offset + 0.1, 41.2),
                    step("copy connector code", false, t0 + offset + 41.3, 0.4),
                    step("smoke test", false, t0 + offset + 41.7, 2.3),
                ]
            },
            error: None,
            failure_class: None,
            location: None,
            error_output: vec![],
            lost_attempts: vec![],
            published: None,
            platforms: Vec::new(),
        };
        let mut retried = built("source-retried", &e1, 30.0, false);
        retried.lost_attempts.push(LostAttempt {
            engine: e2.clone(),
            error: "engine unreachable: cannot talk to the Docker engine".into(),
            steps: vec![
                step("base image", true, t0 + 1.0, 0.1),
                StepTiming {
                    failed: true,
                    ..step("install dependencies", false, t0 + 1.1, 27.5)
                },
            ],
        });
        let failed = ConnectorReport::failed(
            "source-broken".into(),
            Some(&e2),
            FaultClass::Build,
            (
                "step `install dependencies` failed: `python -m pip install -r requirements.txt` exited with code 1\n  last lines of output:\n    ERROR: No matching distribution found for nope==0.0.0 | <b>".into(),
                vec!["ERROR: No matching distribution found for nope==0.0.0 | <b>".into()],
            ),
            vec![
                step("base image", true, t0 + 2.0, 0.1),
                StepTiming {
                    failed: true,
                    ..step("install dependencies", false, t0 + 2.1, 6.4)
                },
            ],
            8.5,
        );
        let connectors = vec![
            built("source-faker", &e1, 0.0, false),
            built("source-cached", &e1, 0.5, true),
            retried,
            failed,
            ConnectorReport::skipped(
                "source-after".into(),
                "--fail-fast stopped the run after a failure",
            ),
        ];
        RunReport::new(
            t0 - 0.5,
            t0 + 75.0,
            &[e1, e2.clone()],
            &[
                None,
                Some("stopped answering while building source-retried".into()),
            ],
            vec!["source-yaml: left out, its metadata cannot be read".into()],
            connectors,
        )
    }

    #[test]
    fn totals_and_engine_counts() {
        let r = sample();
        assert_eq!(
            r.totals,
            Totals {
                built: 3,
                failed: 1,
                skipped: 1,
                interrupted: 0,
            }
        );
        assert_eq!((r.engines[0].built, r.engines[0].failed), (3, 0));
        assert_eq!((r.engines[1].built, r.engines[1].failed), (0, 1));
        assert!(!r.ok());
        assert_eq!(r.headline(), "3 built, 1 failed, 1 skipped");
    }

    #[test]
    fn an_interrupted_run_says_what_was_interrupted() {
        let t0 = 1_795_255_383.0;
        let steps = vec![
            step("base image", true, t0, 0.1),
            step("install dependencies", false, t0 + 0.1, 3.0),
        ];
        let connectors = vec![
            ConnectorReport::interrupted(
                "source-slow".into(),
                "unix:///var/run/docker.sock",
                "SIGINT",
                steps,
                3.1,
            ),
            ConnectorReport::skipped("source-next".into(), "the run was interrupted by SIGINT"),
        ];
        let hosts = ["unix:///var/run/docker.sock".to_string()];
        let mut r = RunReport::new(t0, t0 + 3.2, &hosts, &[None], vec![], connectors);
        r.interrupted = Some(Interruption {
            cleanup_cut_short: false,
            signal: "SIGINT".into(),
            containers_removed: 1,
        });
        assert!(!r.ok());
        assert_eq!(r.totals.interrupted, 1);
        assert_eq!(r.headline(), "0 built, 1 skipped, 1 interrupted by SIGINT");
        let md = crate::report::markdown::render(&r);
        assert!(md.contains("| source-slow | **interrupted** |"), "{md}");
        assert!(
            md.contains("interrupted by SIGINT during `install dependencies`; nothing was tagged"),
            "{md}"
        );
        assert!(md.contains("1 build container(s) removed"), "{md}");
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["connectors"][0]["status"], "interrupted");
        assert_eq!(
            json["connectors"][1]["error"],
            "not started: the run was interrupted by SIGINT"
        );
        assert_eq!(json["interrupted"]["signal"], "SIGINT");
        let html = crate::report::html::render(&r);
        assert!(html.contains("<span class=\"badge interrupted\">interrupted</span>"));
    }

    #[test]
    fn json_report() {
        insta::assert_snapshot!(sample().to_json());
    }

    #[test]
    fn durations() {
        assert_eq!(duration(42.64), "42.6s");
        assert_eq!(duration(185.0), "3m 05s");
        assert_eq!(duration(3720.0), "1h 02m");
    }
}
