//! Drawing progress: bars on a terminal, plain lines elsewhere (CI logs, pipes).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use connector_build::report::{Event, Reporter};
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

/// One bar per connector in flight, showing its current step.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    style: Style,
}

impl Bars {
    pub fn new(style: Style) -> Self {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
            style,
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
            Event::Started { connector, steps } => {
                self.bar(&connector, steps.len() as u64);
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
                let _ = self.multi.println(format!(
                    "{connector}: {} {message}",
                    self.style.warn("warning:")
                ));
            }
            Event::Finished { connector, .. } => {
                let bar = self.bars.lock().ok().and_then(|mut b| b.remove(&connector));
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
            }
        }
    }
}

/// Line-by-line output for logs.
pub struct Lines {
    pub style: Style,
}

impl Reporter for Lines {
    fn report(&self, event: Event) {
        match event {
            Event::Started { connector, steps } => {
                eprintln!("{connector}: building ({} steps)", steps.len())
            }
            Event::StepStarted { connector, step } => {
                if self.style.verbose {
                    eprintln!("{connector}: {step} ...")
                }
            }
            Event::StepFinished {
                connector,
                step,
                cached,
                duration,
            } => eprintln!(
                "{}",
                step_line(&self.style, &connector, &step, cached, duration)
            ),
            Event::Output { connector, line } => {
                if self.style.verbose {
                    eprintln!("{connector}| {line}")
                }
            }
            Event::Warning { connector, message } => {
                eprintln!("{connector}: {} {message}", self.style.warn("warning:"))
            }
            Event::Finished { .. } => {}
        }
    }
}
