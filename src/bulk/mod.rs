//! Building many connectors: spread over one or more engines, a few at a time on each, each
//! connector failing on its own, and a connector whose engine stops answering retried on
//! another engine. The run's record is a [`crate::report::RunReport`], written even when a signal
//! stops the run.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::engine::Engine;
use crate::error::error_chain;
use crate::execute::network::NetworkSettings;
use crate::execute::tools::Tools;
use crate::execute::{BuildError, Builder};
use crate::fault::FaultClass;
use crate::hooks::customize::HookOptions;
use crate::model::connector::folder_name;
use crate::model::ConnectorLocator;
use crate::pipeline::{prepare, ConnectorError};
use crate::plan::{Action, BuildPlan, PlanOptions};
use crate::platform::Platform;
use crate::progress::{Event, Reporter};

use crate::clock::{duration_ms, round_ms, unix_now};
use crate::report::{
    self, ConnectorReport, Interruption, LostAttempt, PlatformImage, RunReport, StepTiming,
};

/// How long an engine gets to answer a ping before it counts as gone.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

pub struct BulkRequest<'a> {
    pub locator: &'a ConnectorLocator,
    /// Connector names or folder paths, in the order results are reported.
    pub connectors: Vec<String>,
    pub plan: PlanOptions,
    pub hooks: HookOptions,
    /// Builds at once on each engine.
    pub concurrency: usize,
    /// Start nothing new after the first failure.
    pub fail_fast: bool,
    /// Notices from selection, carried into the report.
    pub warnings: Vec<String>,
    /// The registry cache (`--cache-registry`).
    pub cache: Option<crate::execute::remote::RemoteCache>,
    /// `--rebase`: dependency layers may be reused on a new base image.
    pub rebase: bool,
    /// `--platform`: the platforms to build, each its own plan; empty: the engine's.
    pub platforms: Vec<Platform>,
}

/// What the workers share.
struct State {
    queue: VecDeque<usize>,
    in_flight: usize,
    /// Per engine: why the run stopped using it.
    lost: Vec<Option<String>>,
    stopped: bool,
    done: Vec<Option<ConnectorReport>>,
    lost_attempts: Vec<Vec<LostAttempt>>,
    /// Builds in progress: (engine, connector, keys of their command steps).
    building: Vec<(usize, usize, Vec<String>)>,
    /// Per connector, its attempt in progress, so an interrupted run can say where it was.
    running: Vec<Option<Running>>,
}

struct Running {
    engine: usize,
    started: Instant,
    steps: Steps,
}

/// Steps seen so far, each with whether it is still open.
type Steps = Arc<Mutex<Vec<(StepTiming, bool)>>>;

enum Take {
    Job(usize),
    Wait,
    Exit,
}

impl State {
    fn take(&mut self, engine: usize) -> Take {
        if self.lost[engine].is_some() || self.stopped {
            return Take::Exit;
        }
        if let Some(i) = self.queue.pop_front() {
            self.in_flight += 1;
            return Take::Job(i);
        }
        // Work in flight elsewhere may come back if its engine goes away.
        if self.in_flight > 0 {
            Take::Wait
        } else {
            Take::Exit
        }
    }
}

struct Run<'a> {
    engines: &'a [Engine],
    network: &'a NetworkSettings,
    tools: &'a Tools,
    reporter: &'a dyn Reporter,
    request: &'a BulkRequest<'a>,
    state: Mutex<State>,
    changed: Notify,
}

enum AttemptEnd {
    Done(Box<ConnectorReport>),
    EngineLost(LostAttempt),
}

/// Builds every requested connector and returns the run's record. Never fails as a whole:
/// each connector's failure is in the report. When `stop` gives a first item (a signal's
/// name), the builds in progress are dropped, every container the run made is removed, and
/// the report marks those connectors `interrupted`; a second item cuts the removal short, and
/// the record is still returned, so the report is written either way.
pub async fn run(
    engines: &[Engine],
    network: &NetworkSettings,
    tools: &Tools,
    reporter: &dyn Reporter,
    request: BulkRequest<'_>,
    stop: impl futures_util::Stream<Item = String>,
) -> RunReport {
    let mut stop = std::pin::pin!(stop);
    let started_at = unix_now();
    let n = request.connectors.len();
    reporter.report(Event::RunStarted {
        total: n,
        engines: engines.iter().map(|e| e.host().to_string()).collect(),
    });
    let run = Run {
        engines,
        network,
        tools,
        reporter,
        request: &request,
        state: Mutex::new(State {
            queue: (0..n).collect(),
            in_flight: 0,
            lost: vec![None; engines.len()],
            stopped: false,
            done: (0..n).map(|_| None).collect(),
            lost_attempts: (0..n).map(|_| Vec::new()).collect(),
            building: Vec::new(),
            running: (0..n).map(|_| None).collect(),
        }),
        changed: Notify::new(),
    };
    // Finished build containers go in the background; `settle` below waits for them.
    for engine in engines {
        engine.defer_removals();
    }
    let per_engine = request.concurrency.max(1);
    let workers = (0..engines.len())
        .flat_map(|e| std::iter::repeat_n(e, per_engine))
        .map(|e| run.worker(e));
    let signal = tokio::select! {
        _ = futures_util::future::join_all(workers) => None,
        signal = next_signal(&mut stop) => Some(signal),
    };
    // The builds in progress are gone with their futures (hook runners are killed on drop);
    // their containers are not, and a request dropped mid-way may still create one: two
    // passes by name.
    let interrupted = match signal {
        None => None,
        Some(signal) => {
            let removed = std::sync::atomic::AtomicUsize::new(0);
            let cleanup = async {
                for pass in 0..2 {
                    if pass > 0 {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    for engine in engines {
                        let n = engine.remove_all_containers().await;
                        removed.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            };
            let cleanup_cut_short = tokio::select! {
                _ = cleanup => false,
                _ = next_signal(&mut stop) => true,
            };
            Some(Interruption {
                signal,
                containers_removed: removed.into_inner(),
                cleanup_cut_short,
            })
        }
    };
    for engine in engines {
        engine.settle().await;
    }

    let state = run.state.into_inner().unwrap_or_else(|p| p.into_inner());
    let every_engine_lost = !engines.is_empty() && state.lost.iter().all(Option::is_some);
    let gone = engines
        .iter()
        .zip(&state.lost)
        .filter_map(|(e, why)| why.as_ref().map(|why| format!("{} {why}", e.host())))
        .collect::<Vec<_>>()
        .join(", ");
    let gone = if gone.is_empty() {
        "no engine answered".to_string()
    } else {
        gone
    };
    let connectors = state
        .done
        .into_iter()
        .zip(state.running)
        .zip(state.lost_attempts)
        .zip(&request.connectors)
        .map(|(((done, running), lost), name)| {
            let mut report = done.unwrap_or_else(|| {
                let name = folder_name(Path::new(name));
                match (&interrupted, running) {
                    (Some(i), Some(r)) => ConnectorReport::interrupted(
                        name,
                        engines[r.engine].host(),
                        &i.signal,
                        close_steps(&r.steps, false),
                        duration_ms(r.started.elapsed()),
                    ),
                    (Some(i), None) => ConnectorReport::skipped(
                        name,
                        &format!("the run was interrupted by {}", i.signal),
                    ),
                    (None, _) if every_engine_lost || engines.is_empty() => {
                        let why = format!("engine unreachable: not built; {gone}");
                        ConnectorReport::failed(
                            name,
                            None,
                            FaultClass::Infrastructure,
                            (why, vec![]),
                            vec![],
                            0.0,
                        )
                    }
                    (None, _) => ConnectorReport::skipped(
                        name,
                        "--fail-fast stopped the run after a failure",
                    ),
                }
            });
            report.lost_attempts = lost;
            report
        })
        .collect();
    let hosts: Vec<String> = engines.iter().map(|e| e.host().to_string()).collect();
    let mut report = RunReport::new(
        started_at,
        unix_now(),
        &hosts,
        &state.lost,
        request.warnings.clone(),
        connectors,
    );
    report.interrupted = interrupted;
    report
}

/// The next signal `stop` gives; never, once it has no more.
async fn next_signal<S: futures_util::Stream<Item = String>>(
    stop: &mut std::pin::Pin<&mut S>,
) -> String {
    match futures_util::StreamExt::next(stop).await {
        Some(signal) => signal,
        None => std::future::pending().await,
    }
}

/// One plan per platform, the engine's first: its image keeps the plan's tag, another
/// platform's gets `-linux-<arch>` (airbyte-ci's `dev-linux-arm64`). Each carries its platform,
/// so its keys are its own and its containers are created for it (under QEMU when foreign).
pub fn platform_plans(plan: &BuildPlan, own: Platform, platforms: &[Platform]) -> Vec<BuildPlan> {
    let mut wanted: Vec<Platform> = Vec::new();
    for p in platforms {
        if !wanted.contains(p) {
            wanted.push(*p);
        }
    }
    if wanted.is_empty() {
        wanted.push(own);
    }
    wanted.sort_by_key(|p| *p != own);
    wanted
        .into_iter()
        .map(|p| {
            let mut one = plan.clone();
            one.platform = Some(p);
            if p != own {
                one.output_tag = format!("{}-{}", plan.output_tag, p.tag_suffix());
                one.connector = format!("{} ({p})", plan.connector);
            }
            one
        })
        .collect()
}

impl Run<'_> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn worker(&self, engine: usize) {
        loop {
            // Registered before looking at the state, so no wake-up is missed.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let take = self.lock().take(engine);
            let i = match take {
                Take::Exit => return,
                Take::Wait => {
                    changed.await;
                    continue;
                }
                Take::Job(i) => i,
            };
            let end = self.attempt(engine, i).await;
            {
                let mut state = self.lock();
                state.in_flight -= 1;
                state.running[i] = None;
                match end {
                    AttemptEnd::Done(report) => {
                        let failed = report.status == report::Status::Failed;
                        self.reporter.report(Event::Finished {
                            connector: report.connector.clone(),
                            ok: !failed,
                        });
                        if failed && self.request.fail_fast {
                            state.stopped = true;
                        }
                        state.done[i] = Some(*report);
                    }
                    AttemptEnd::EngineLost(attempt) => {
                        let connector = folder_name(Path::new(&self.request.connectors[i]));
                        if state.lost[engine].is_none() {
                            state.lost[engine] =
                                Some(format!("stopped answering while building {connector}"));
                        }
                        self.reporter.report(Event::Retrying {
                            connector,
                            engine: attempt.engine.clone(),
                            reason: attempt.error.lines().next().unwrap_or_default().to_string(),
                        });
                        state.lost_attempts[i].push(attempt);
                        state.queue.push_front(i);
                    }
                }
            }
            self.changed.notify_waiters();
        }
    }

    async fn attempt(&self, engine_index: usize, i: usize) -> AttemptEnd {
        let engine = &self.engines[engine_index];
        let name = &self.request.connectors[i];
        let recorder = Recorder {
            inner: self.reporter,
            steps: Steps::default(),
        };
        self.lock().running[i] = Some(Running {
            engine: engine_index,
            started: Instant::now(),
            steps: recorder.steps.clone(),
        });
        let builder = Builder {
            engine,
            network: self.network,
            tools: self.tools,
            reporter: &recorder,
            remote: self.request.cache.as_ref(),
            rebase: self.request.rebase,
        };
        let started = std::time::Instant::now();
        let result = async {
            let plan = prepare(
                &builder,
                self.request.locator,
                name,
                &self.request.plan,
                &self.request.hooks,
            )
            .await?;
            let own = engine.platform().await.map_err(BuildError::from)?;
            let mut first = None;
            let mut others = Vec::new();
            for mut p in platform_plans(&plan, own, &self.request.platforms) {
                if let Some(target) = p.platform {
                    let found = crate::execute::cross::platform_base(engine, &p.base, target)
                        .await
                        .map_err(BuildError::from)?;
                    if let Some(base) = found {
                        p.base = base;
                    }
                }
                if p.connector != plan.connector {
                    recorder.report(Event::Started {
                        connector: p.connector.clone(),
                        steps: crate::execute::progress_steps(&p),
                    });
                }
                self.claim(engine_index, i, &p, &recorder).await;
                let built = builder.build(&p).await;
                self.release(engine_index, i);
                let emulated = p.platform != Some(own);
                let built = built.map_err(|e| match p.platform {
                    Some(platform) if emulated => BuildError::OnPlatform {
                        platform,
                        source: Box::new(e),
                    },
                    _ => e,
                })?;
                // Every platform but the engine's is listed, also when it is the only one.
                if emulated {
                    others.push(PlatformImage {
                        platform: p.platform.map(|x| x.to_string()).unwrap_or_default(),
                        tag: built.tag.clone(),
                        image_id: built.image_id.clone(),
                        cache_key: built.cache_key.clone(),
                        containers_started: built.containers_started,
                        seconds: built.seconds,
                        emulated,
                        cross: built.cross.clone(),
                    });
                }
                first.get_or_insert(built);
            }
            Ok::<_, ConnectorError>((first, others))
        }
        .await;
        match result {
            Ok((Some(outcome), platforms)) => AttemptEnd::Done(Box::new(ConnectorReport {
                platforms,
                ..ConnectorReport::built(outcome, engine.host())
            })),
            Ok((None, _)) => unreachable!("platform_plans gives at least one plan"),
            Err(e) => {
                let steps = recorder.finish();
                if engine_lost(engine, &e).await {
                    return AttemptEnd::EngineLost(LostAttempt {
                        engine: engine.host().to_string(),
                        error: error_chain(&e),
                        steps,
                    });
                }
                // Errors before the engine was involved (metadata, plan) name no engine.
                let engine = matches!(e, ConnectorError::Build(_) | ConnectorError::Hook(_))
                    .then(|| engine.host());
                AttemptEnd::Done(Box::new(ConnectorReport {
                    location: e.location(),
                    ..ConnectorReport::failed(
                        folder_name(Path::new(name)),
                        engine,
                        e.class(),
                        error_report(&e),
                        steps,
                        duration_ms(started.elapsed()),
                    )
                }))
            }
        }
    }
}

impl Run<'_> {
    /// Waits until no other build on this engine runs one of this plan's commands, then
    /// registers this one. Connectors with the same dependency set thus install once: the
    /// second finds the first one's layer in the engine's cache instead of installing again
    /// beside it.
    async fn claim(&self, engine: usize, i: usize, plan: &BuildPlan, reporter: &dyn Reporter) {
        let keys = command_keys(plan);
        let mut announced = false;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.lock();
                let busy = state
                    .building
                    .iter()
                    .find(|(e, _, k)| *e == engine && k.iter().any(|x| keys.contains(x)))
                    .map(|(_, other, _)| *other);
                match busy {
                    None => {
                        state.building.push((engine, i, keys));
                        return;
                    }
                    Some(other) if !announced => {
                        announced = true;
                        reporter.report(Event::Output {
                            connector: plan.connector.clone(),
                            line: format!(
                                "waiting for {}, which runs the same install on this engine",
                                folder_name(Path::new(&self.request.connectors[other]))
                            ),
                        });
                    }
                    Some(_) => {}
                }
            }
            changed.await;
        }
    }

    fn release(&self, engine: usize, i: usize) {
        self.lock()
            .building
            .retain(|(e, c, _)| !(*e == engine && *c == i));
        self.changed.notify_waiters();
    }
}

/// The cache keys of a plan's command steps (installs, hook commands).
fn command_keys(plan: &BuildPlan) -> Vec<String> {
    let keys = plan.keys();
    plan.steps
        .iter()
        .zip(&keys.steps)
        .filter(|(step, _)| matches!(step.action, Action::Run(_)))
        .map(|(_, key)| key.0.clone())
        .collect()
}

/// Whether a failed build failed because its engine went away. Any error from work on the
/// engine (a build step, or a hook asking about its container) counts when the engine no
/// longer answers a ping: a stopping engine kills its containers first, so the step may fail
/// with a plain exit code before requests start failing.
async fn engine_lost(engine: &Engine, e: &ConnectorError) -> bool {
    if !matches!(e, ConnectorError::Build(_) | ConnectorError::Hook(_)) {
        return false;
    }
    !answers(engine).await
}

async fn answers(engine: &Engine) -> bool {
    matches!(
        tokio::time::timeout(PING_TIMEOUT, engine.docker().ping()).await,
        Ok(Ok(_))
    )
}

/// The error with its causes, and the last lines of output of a failed command.
pub fn error_report(e: &ConnectorError) -> (String, Vec<String>) {
    let output = match e {
        ConnectorError::Build(b) => match b.cause() {
            BuildError::StepFailed(failure) => failure.output.clone(),
            BuildError::SmokeTest { output, .. } => output.clone(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    (error_chain(e), output)
}

/// Passes events on and notes each step's wall-clock span, so a failed, lost or interrupted
/// attempt can still be drawn on the timeline.
struct Recorder<'a> {
    inner: &'a dyn Reporter,
    steps: Steps,
}

impl Recorder<'_> {
    /// The steps seen; one still open is where the build failed, and ends now.
    fn finish(&self) -> Vec<StepTiming> {
        close_steps(&self.steps, true)
    }
}

/// Takes the steps seen; one still open ends now, marked `failed` if asked.
fn close_steps(steps: &Steps, failed: bool) -> Vec<StepTiming> {
    let now = unix_now();
    let steps = std::mem::take(&mut *steps.lock().unwrap_or_else(|p| p.into_inner()));
    steps
        .into_iter()
        .map(|(mut s, open)| {
            if open {
                s.seconds = ((now - s.started_at) * 1000.0).round() / 1000.0;
                s.failed = failed;
            }
            s
        })
        .collect()
}

impl Reporter for Recorder<'_> {
    fn report(&self, event: Event) {
        match &event {
            Event::StepStarted { step, .. } => {
                if let Ok(mut steps) = self.steps.lock() {
                    steps.push((
                        StepTiming {
                            name: step.clone(),
                            cached: false,
                            started_at: round_ms(unix_now()),
                            seconds: 0.0,
                            failed: false,
                        },
                        true,
                    ));
                }
            }
            Event::StepFinished {
                step,
                cached,
                duration,
                ..
            } => {
                if let Ok(mut steps) = self.steps.lock() {
                    if let Some((s, open)) = steps
                        .iter_mut()
                        .rev()
                        .find(|(s, open)| *open && s.name == *step)
                    {
                        s.cached = *cached;
                        s.seconds = duration_ms(*duration);
                        *open = false;
                    }
                }
            }
            _ => {}
        }
        self.inner.report(event);
    }
}
