//! Drawing progress: bars on a terminal, plain lines elsewhere (CI logs, pipes).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use connector_build::ci::github;
use connector_build::progress::{Event, Reporter};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Style {
    pub color: bool,
    pub verbose: bool,
}

impl Style {
    fn paint(&self, text: &str, color: console::Color) -> String {
        if self.color {
            console::style(text).fg(color).to_string()
        } else {
            text.to_string()
        }
    }

    pub fn ok(&self, text: &str) -> String {
        self.paint(text, console::Color::Green)
    }

    pub fn bad(&self, text: &str) -> String {
        self.paint(text, console::Color::Red)
    }

    pub fn dim(&self, text: &str) -> String {
        if self.color {
            console::style(text).dim().to_string()
        } else {
            text.to_string()
        }
    }

    pub fn warn(&self, text: &str) -> String {
        self.paint(text, console::Color::Yellow)
    }
}

fn step_line(style: &Style, connector: &str, step: &str, cached: bool, d: Duration) -> String {
    let how = if cached {
        style.dim("cached")
    } else {
        format!("{:.1}s", d.as_secs_f64())
    };
    format!("{connector}: {step} {how}")
}

/// How far a run is: connectors finished and failed out of the total.
#[derive(Default)]
struct Counts {
    total: AtomicUsize,
    done: AtomicUsize,
    failed: AtomicUsize,
}

impl Counts {
    /// Records a finished connector; returns (done, failed, total).
    fn finish(&self, ok: bool) -> (usize, usize, usize) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let failed = self.failed.load(Ordering::Relaxed) + usize::from(!ok);
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        (done, failed, self.total.load(Ordering::Relaxed))
    }
}

/// A connector's warning, as both renderers print it.
fn warning_line(style: &Style, connector: &str, message: &str) -> String {
    format!("{connector}: {} {message}", style.warn("warning:"))
}

fn retry_line(style: &Style, connector: &str, engine: &str, reason: &str) -> String {
    warning_line(
        style,
        connector,
        &format!("the engine {engine} stopped answering ({reason}); retrying on another engine"),
    )
}

/// An overall bar (done/failed/total, elapsed, ETA) above one bar per connector in flight,
/// showing its current step.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    overall: Mutex<Option<ProgressBar>>,
    counts: Counts,
    style: Style,
}

impl Bars {
    pub fn new(style: Style) -> Self {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
            overall: Mutex::new(None),
            counts: Counts::default(),
            style,
        }
    }

    fn start_run(&self, total: usize) {
        self.counts.total.store(total, Ordering::Relaxed);
        if total < 2 {
            return;
        }
        let bar = self.multi.insert(0, ProgressBar::new(total as u64));
        let template = if self.style.color {
            "{prefix:.bold} [{bar:30.green/blue}] {pos}/{len} done, {msg}  {elapsed} elapsed, ETA {eta}"
        } else {
            "{prefix} [{bar:30}] {pos}/{len} done, {msg}  {elapsed} elapsed, ETA {eta}"
        };
        if let Ok(s) = ProgressStyle::with_template(template) {
            bar.set_style(s.progress_chars("=> "));
        }
        bar.set_prefix("all connectors");
        bar.set_message("0 failed");
        bar.enable_steady_tick(Duration::from_millis(500));
        if let Ok(mut overall) = self.overall.lock() {
            *overall = Some(bar);
        }
    }

    fn finish_one(&self, ok: bool) {
        let (done, failed, total) = self.counts.finish(ok);
        if let Some(bar) = self.overall.lock().ok().and_then(|o| o.clone()) {
            bar.set_position(done as u64);
            let msg = format!("{failed} failed");
            bar.set_message(if failed > 0 {
                self.style.bad(&msg)
            } else {
                msg
            });
            if done >= total {
                bar.finish();
            }
        }
    }

    fn bar(&self, connector: &str, total: u64) -> ProgressBar {
        let mut bars = match self.bars.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        bars.entry(connector.to_string())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new(total));
                let template = if self.style.color {
                    "{spinner:.cyan} {prefix:.bold} [{bar:12.cyan/blue}] {pos}/{len} {wide_msg} {elapsed:.dim}"
                } else {
                    "{spinner} {prefix} [{bar:12}] {pos}/{len} {wide_msg} {elapsed}"
                };
                if let Ok(s) = ProgressStyle::with_template(template) {
                    bar.set_style(s.progress_chars("=> "));
                }
                bar.set_prefix(connector.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .clone()
    }
}

impl Reporter for Bars {
    fn report(&self, event: Event) {
        match event {
            Event::RunStarted { total, .. } => self.start_run(total),
            Event::Retrying {
                connector,
                engine,
                reason,
            } => {
                let _ = self
                    .multi
                    .println(retry_line(&self.style, &connector, &engine, &reason));
            }
            Event::Started { connector, steps } => {
                // A retried connector starts over on its new engine.
                let bar = self.bar(&connector, steps.len() as u64);
                bar.set_length(steps.len() as u64);
                bar.set_position(0);
            }
            Event::StepStarted { connector, step } => self.bar(&connector, 0).set_message(step),
            Event::StepFinished {
                connector,
                step,
                cached,
                duration,
            } => {
                let bar = self.bar(&connector, 0);
                bar.inc(1);
                let _ =
                    self.multi
                        .println(step_line(&self.style, &connector, &step, cached, duration));
            }
            Event::Output { connector, line } => {
                if self.style.verbose {
                    let _ = self
                        .multi
                        .println(self.style.dim(&format!("{connector}| {line}")));
                }
            }
            Event::Warning { connector, message } => {
                let _ = self
                    .multi
                    .println(warning_line(&self.style, &connector, &message));
            }
            // The connector's build bar is finished by then: a line per blob once it is in.
            Event::Transfer {
                connector,
                item,
                done,
                total,
            } => {
                if done == total {
                    let _ = self.multi.println(format!(
                        "{connector}: {}",
                        transfer_message(&item, done, total)
                    ));
                }
            }
            Event::Finished { connector, ok } => {
                let bar = self.bars.lock().ok().and_then(|mut b| b.remove(&connector));
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                self.finish_one(ok);
            }
        }
    }
}

/// Line-by-line output for logs, with a progress count on each finished connector.
pub struct Lines {
    style: Style,
    counts: Counts,
    started: Instant,
}

impl Lines {
    pub fn new(style: Style) -> Self {
        Lines {
            style,
            counts: Counts::default(),
            started: Instant::now(),
        }
    }
}

impl Lines {
    /// The line `event` shows, if any.
    fn render(&self, event: Event) -> Option<String> {
        match event {
            Event::RunStarted { total, engines } => {
                self.counts.total.store(total, Ordering::Relaxed);
                (total > 1).then(|| {
                    format!(
                        "building {total} connectors on {} engine(s): {}",
                        engines.len(),
                        engines.join(", ")
                    )
                })
            }
            Event::Retrying {
                connector,
                engine,
                reason,
            } => Some(retry_line(&self.style, &connector, &engine, &reason)),
            Event::Started { connector, steps } => {
                Some(format!("{connector}: building ({} steps)", steps.len()))
            }
            Event::StepStarted { connector, step } => self
                .style
                .verbose
                .then(|| format!("{connector}: {step} ...")),
            Event::StepFinished {
                connector,
                step,
                cached,
                duration,
            } => Some(step_line(&self.style, &connector, &step, cached, duration)),
            Event::Output { connector, line } => {
                self.style.verbose.then(|| format!("{connector}| {line}"))
            }
            Event::Warning { connector, message } => {
                Some(warning_line(&self.style, &connector, &message))
            }
            // Plain logs get one line per blob, when it is complete.
            Event::Transfer {
                connector,
                item,
                done,
                total,
            } => (done == total && self.style.verbose)
                .then(|| format!("{connector}: {}", transfer_message(&item, done, total))),
            Event::Finished { connector, ok } => {
                let (done, failed, total) = self.counts.finish(ok);
                (total > 1).then(|| {
                    let what = if ok {
                        self.style.ok("built")
                    } else {
                        self.style.bad("FAILED")
                    };
                    format!(
                        "[{done}/{total}] {connector}: {what}  ({failed} failed so far, {:.0}s elapsed)",
                        self.started.elapsed().as_secs_f64()
                    )
                })
            }
        }
    }
}

impl Reporter for Lines {
    fn report(&self, event: Event) {
        if let Some(line) = self.render(event) {
            eprintln!("{line}");
        }
    }
}

/// Lines for GitHub Actions: each connector's lines held until it finishes, then printed as
/// one collapsed `::group::`, so builds running at once do not interleave in a group.
pub struct Grouped {
    lines: Lines,
    held: Mutex<HashMap<String, Vec<String>>>,
}

impl Grouped {
    pub fn new(lines: Lines) -> Self {
        Grouped {
            lines,
            held: Mutex::new(HashMap::new()),
        }
    }
}

impl Reporter for Grouped {
    fn report(&self, event: Event) {
        let connector = match &event {
            Event::RunStarted { .. } => None,
            Event::Retrying { connector, .. }
            | Event::Started { connector, .. }
            | Event::StepStarted { connector, .. }
            | Event::StepFinished { connector, .. }
            | Event::Output { connector, .. }
            | Event::Warning { connector, .. }
            | Event::Transfer { connector, .. } => Some(connector.clone()),
            Event::Finished { connector, ok } => {
                let held = self
                    .held
                    .lock()
                    .map(|mut h| h.remove(connector))
                    .unwrap_or_default()
                    .unwrap_or_default();
                let status = if *ok { "built" } else { "failed" };
                eprintln!("{}", github::group(&format!("{connector}: {status}")));
                for line in held {
                    eprintln!("{line}");
                }
                eprintln!("{}", github::END_GROUP);
                None
            }
        };
        let Some(line) = self.lines.render(event) else {
            return;
        };
        match connector {
            Some(c) => {
                if let Ok(mut held) = self.held.lock() {
                    held.entry(c).or_default().push(line);
                }
            }
            None => eprintln!("{line}"),
        }
    }
}

/// `pushed blob sha256:ab12…  48.5 MiB`, or `pushing … 12.0/48.5 MiB` while under way.
fn transfer_message(item: &str, done: u64, total: u64) -> String {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    if done >= total {
        format!("pushed {item}  {:.1} MiB", mib(total))
    } else {
        format!("pushing {item}  {:.1}/{:.1} MiB", mib(done), mib(total))
    }
}
