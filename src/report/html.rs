//! `report.html`: one self-contained page (inline CSS and SVG, no scripts, no external
//! assets) with the run summary and a timeline of every connector's steps on a shared time
//! axis, so a reader sees where the time went and what ran in parallel.

use std::fmt::Write;

use super::record::{
    duration, outcome_label, reproducible_label, short_id, ConnectorReport, RunReport, Status,
    StepTiming,
};
use crate::clock::utc;

/// Step colours, assigned to step names in order of first appearance. Red is kept for
/// failures.
const PALETTE: &[&str] = &[
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7",
];
const FAILED: &str = "#d62728";
const LOST: &str = "#9aa0a6";

const WIDTH: f64 = 1160.0;
const LABEL_W: f64 = 250.0;
const RIGHT_PAD: f64 = 24.0;
const TOP: f64 = 30.0;
const ROW_H: f64 = 24.0;
const BAR_H: f64 = 14.0;

pub fn render(r: &RunReport) -> String {
    let mut h = String::new();
    let title = format!("connector-build: {}", r.headline());
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    let interrupted = match &r.interrupted {
        Some(i) => format!(
            " <span class=\"n interrupted\">{} interrupted by {}</span>",
            r.totals.interrupted,
            esc(&i.signal)
        ),
        None => String::new(),
    };
    let _ = write!(
        h,
        "<h1>connector-build report</h1>\n<p class=\"headline\"><span class=\"n built\">{} built</span> <span class=\"n failed\">{} failed</span> <span class=\"n skipped\">{} skipped</span>{interrupted}</p>\n",
        r.totals.built, r.totals.failed, r.totals.skipped
    );
    let _ = writeln!(
        h,
        "<p class=\"meta\">{} connector(s), started {}, took {}; connector-build {}.</p>",
        r.connectors.len(),
        utc(r.started_at),
        duration(r.seconds()),
        esc(&r.tool_version)
    );
    h.push_str("<table class=\"engines\">\n<tr><th></th><th>engine</th><th>built</th><th>failed</th><th></th></tr>\n");
    for (i, e) in r.engines.iter().enumerate() {
        let _ = writeln!(
            h,
            "<tr><td class=\"tag\">e{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            esc(&e.host),
            e.built,
            e.failed,
            e.lost
                .as_ref()
                .map(|why| format!("<span class=\"badge failed\">stopped answering</span> {}", esc(why)))
                .unwrap_or_default()
        );
    }
    h.push_str("</table>\n<h2>Timeline</h2>\n");
    h.push_str(&timeline(r));
    h.push_str("<h2>Connectors</h2>\n");
    h.push_str(&summary_table(r));
    h.push_str(&published(r));
    let failures = r.failures();
    if !failures.is_empty() {
        h.push_str("<h2>Failures</h2>\n");
        for (c, e) in failures {
            let _ = writeln!(
                h,
                "<details open id=\"fail-{}\"><summary><strong>{}</strong>: {}</summary><pre>{}</pre></details>",
                esc(&c.connector),
                esc(&c.connector),
                esc(c.error_summary().unwrap_or_default()),
                esc(e)
            );
        }
    }
    if !r.warnings.is_empty() {
        h.push_str("<h2>Warnings</h2>\n<ul class=\"warnings\">\n");
        for w in &r.warnings {
            let _ = writeln!(h, "<li>{}</li>", esc(w));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</body>\n</html>\n");
    h
}

/// What `publish` pushed: each image's digest-pinned address (empty when nothing was
/// published).
fn published(r: &RunReport) -> String {
    let published = r.published();
    if published.is_empty() {
        return String::new();
    }
    let mut h = String::from(
        "<h2>Published</h2>\n<table class=\"published\">\n<tr><th>connector</th><th>image</th><th>outcome</th><th>reproducible</th></tr>\n",
    );
    for (c, p) in published {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&c.connector),
            esc(&p.image),
            outcome_label(p),
            esc(&reproducible_label(p))
        );
    }
    h.push_str("</table>\n");
    h
}

fn summary_table(r: &RunReport) -> String {
    let mut h = String::from(
        "<table class=\"connectors\">\n<tr><th>connector</th><th>status</th><th>engine</th><th>image</th><th>base digest</th><th>time</th><th>from cache</th><th>error</th></tr>\n",
    );
    for c in &r.connectors {
        let engine = c
            .engine
            .as_ref()
            .map(|e| engine_tag(r, e))
            .unwrap_or_default();
        let retried = c
            .lost_attempts
            .iter()
            .map(|a| {
                format!(
                    " <span class=\"badge lost\">retried: {} stopped answering</span>",
                    esc(&engine_tag(r, &a.engine))
                )
            })
            .collect::<String>();
        let image = match (&c.tag, &c.image_id) {
            (Some(t), Some(id)) => format!(
                "<code>{}</code> <code class=\"id\">{}</code>",
                esc(t),
                esc(short_id(id))
            ),
            _ => String::new(),
        };
        let cached = c.cache_hits();
        let error = match (c.error_summary(), c.status) {
            (Some(e), Status::Failed) => {
                format!("<a href=\"#fail-{}\">{}</a>", esc(&c.connector), esc(e))
            }
            (Some(e), _) => esc(e),
            _ => String::new(),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><span class=\"badge {}\">{}</span>{retried}</td><td>{}</td><td>{image}</td><td><code class=\"id\">{}</code></td><td class=\"num\">{}</td><td class=\"num\">{cached}</td><td class=\"error {}\">{error}</td></tr>",
            esc(&c.connector),
            c.status.as_str(),
            c.status.as_str(),
            esc(&engine),
            esc(c.base_digest.as_deref().map(short_id).unwrap_or("")),
            c.shown_time(),
            c.status.as_str(),
        );
    }
    h.push_str("</table>\n");
    h
}

/// `e1`, `e2`...: the engine's position in the run, as in the engine table.
fn engine_tag(r: &RunReport, host: &str) -> String {
    r.engines
        .iter()
        .position(|e| e.host == host)
        .map_or_else(|| host.to_string(), |i| format!("e{}", i + 1))
}

/// One drawn bar.
struct Bar<'a> {
    step: &'a StepTiming,
    lost: bool,
}

fn timeline(r: &RunReport) -> String {
    // Rows in order of first activity, so the picture reads as a waterfall.
    let mut rows: Vec<(&ConnectorReport, Vec<Bar<'_>>)> = r
        .connectors
        .iter()
        .map(|c| {
            let mut bars: Vec<Bar<'_>> = c
                .lost_attempts
                .iter()
                .flat_map(|a| a.steps.iter().map(|step| Bar { step, lost: true }))
                .collect();
            bars.extend(c.steps.iter().map(|step| Bar { step, lost: false }));
            (c, bars)
        })
        .filter(|(_, bars)| !bars.is_empty())
        .collect();
    if rows.is_empty() {
        return "<p class=\"meta\">No connector reached an engine.</p>\n".into();
    }
    let first = |bars: &[Bar<'_>]| {
        bars.iter()
            .map(|b| b.step.started_at)
            .fold(f64::INFINITY, f64::min)
    };
    rows.sort_by(|a, b| first(&a.1).total_cmp(&first(&b.1)));

    let t0 = rows
        .iter()
        .map(|(_, b)| first(b))
        .fold(r.started_at, f64::min);
    let end = rows
        .iter()
        .flat_map(|(_, bars)| bars.iter().map(|b| b.step.started_at + b.step.seconds))
        .fold(r.finished_at, f64::max);
    let span = (end - t0).max(1.0);
    let chart_w = WIDTH - LABEL_W - RIGHT_PAD;
    let x = |t: f64| LABEL_W + (t - t0).max(0.0) / span * chart_w;

    let mut names: Vec<&str> = Vec::new();
    for (_, bars) in &rows {
        for b in bars {
            if !names.contains(&b.step.name.as_str()) {
                names.push(&b.step.name);
            }
        }
    }
    let colour = |name: &str| {
        let i = names.iter().position(|n| *n == name).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };

    let lost_any = rows.iter().any(|(_, bars)| bars.iter().any(|b| b.lost));
    let mut legend: Vec<(&str, bool, String)> = names
        .iter()
        .map(|n| (colour(n), false, n.to_string()))
        .collect();
    legend.push((PALETTE[0], true, "from cache (hatched)".into()));
    legend.push((FAILED, false, "failed".into()));
    if lost_any {
        legend.push((LOST, false, "lost with its engine".into()));
    }
    // Laid out left to right, wrapping at the chart's width.
    let legend_top = TOP + rows.len() as f64 * ROW_H + 18.0;
    let mut placed = Vec::new();
    let (mut lx, mut ly) = (LABEL_W, legend_top);
    for (fill, hatch, label) in legend {
        let w = 23.0 + label.chars().count() as f64 * 6.6 + 16.0;
        if lx + w > WIDTH && lx > LABEL_W {
            lx = LABEL_W;
            ly += 22.0;
        }
        placed.push((lx, ly, fill, hatch, label));
        lx += w;
    }
    let height = ly + 14.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"Timeline of every connector's build steps\">\n\
<defs><pattern id=\"cached\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#fff\" fill-opacity=\"0.55\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#fff\" stroke-width=\"3\"/></pattern></defs>\n"
    );

    // Axis: grid lines and labels at round intervals.
    let step = tick_step(span);
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let gx = x(t0 + t);
        let _ = writeln!(
            s,
            "<line x1=\"{gx:.1}\" y1=\"{:.1}\" x2=\"{gx:.1}\" y2=\"{:.1}\" class=\"grid\"/><text x=\"{gx:.1}\" y=\"{:.1}\" class=\"tick\">{}</text>",
            TOP - 6.0,
            TOP + rows.len() as f64 * ROW_H,
            TOP - 10.0,
            tick_label(t)
        );
        t += step;
    }

    for (i, (c, bars)) in rows.iter().enumerate() {
        let y = TOP + i as f64 * ROW_H;
        if i % 2 == 0 {
            let _ = writeln!(
                s,
                "<rect x=\"0\" y=\"{y:.1}\" width=\"{WIDTH}\" height=\"{ROW_H}\" class=\"stripe\"/>"
            );
        }
        let mid = y + ROW_H / 2.0;
        let _ = writeln!(
            s,
            "<circle cx=\"10\" cy=\"{mid:.1}\" r=\"5\" class=\"dot {}\"><title>{}</title></circle><text x=\"22\" y=\"{:.1}\" class=\"label\">{}</text>",
            c.status.as_str(),
            c.status.as_str(),
            mid + 4.0,
            esc(&truncate(&c.connector, 28))
        );
        if r.engines.len() > 1 {
            if let Some(e) = &c.engine {
                let _ = writeln!(
                    s,
                    "<text x=\"{:.1}\" y=\"{:.1}\" class=\"engine\">{}</text>",
                    LABEL_W - 10.0,
                    mid + 4.0,
                    esc(&engine_tag(r, e))
                );
            }
        }
        let by = mid - BAR_H / 2.0;
        for b in bars {
            let bx = x(b.step.started_at);
            // Cached steps take no time; a minimum width keeps their hatching visible.
            let min_w = if b.step.cached { 5.0 } else { 2.0 };
            let bw = (b.step.seconds / span * chart_w).max(min_w);
            let (fill, class, what) = if b.lost {
                (LOST, "bar lost", "lost: its engine stopped answering")
            } else if b.step.failed {
                (FAILED, "bar failed", "failed")
            } else if b.step.cached {
                (colour(&b.step.name), "bar cached", "from cache")
            } else {
                (colour(&b.step.name), "bar", "ran")
            };
            let tip = format!(
                "{} · {} · {} ({what}), at +{}",
                c.connector,
                b.step.name,
                duration(b.step.seconds),
                tick_label(b.step.started_at - t0)
            );
            let _ = write!(
                s,
                "<g class=\"{class}\"><title>{}</title><rect x=\"{bx:.1}\" y=\"{by:.1}\" width=\"{bw:.1}\" height=\"{BAR_H}\" fill=\"{fill}\"/>",
                esc(&tip)
            );
            if b.step.cached && !b.lost {
                let _ = write!(
                    s,
                    "<rect x=\"{bx:.1}\" y=\"{by:.1}\" width=\"{bw:.1}\" height=\"{BAR_H}\" fill=\"url(#cached)\"/>"
                );
            }
            s.push_str("</g>\n");
        }
        // A note beside the row's bars: after them when it fits, else before them.
        let drawn: Vec<&Bar<'_>> = bars.iter().filter(|b| !b.lost).collect();
        let note = if drawn.last().is_some_and(|b| b.step.failed) {
            drawn
                .last()
                .map(|b| (format!("failed: {}", b.step.name), "note failed"))
        } else if !drawn.is_empty() && drawn.iter().all(|b| b.step.cached) {
            Some(("all from cache".to_string(), "note"))
        } else {
            None
        };
        if let Some((text, class)) = note {
            let start = drawn
                .iter()
                .map(|b| x(b.step.started_at))
                .fold(WIDTH, f64::min);
            let end = drawn
                .iter()
                .map(|b| x(b.step.started_at) + (b.step.seconds / span * chart_w).max(5.0))
                .fold(LABEL_W, f64::max);
            let width = text.chars().count() as f64 * 6.2;
            let (nx, anchor) = if end + 4.0 + width <= WIDTH {
                (end + 4.0, "start")
            } else {
                (start - 4.0, "end")
            };
            let _ = writeln!(
                s,
                "<text x=\"{nx:.1}\" y=\"{:.1}\" class=\"{class}\" text-anchor=\"{anchor}\">{}</text>",
                mid + 4.0,
                esc(&text)
            );
        }
    }

    // Legend: one swatch per step name, then how cached, failed and lost steps look.
    for (lx, ly, fill, hatch, label) in placed {
        let sy = ly - BAR_H + 3.0;
        let _ = write!(
            s,
            "<rect x=\"{lx:.1}\" y=\"{sy:.1}\" width=\"18\" height=\"{BAR_H}\" fill=\"{fill}\"/>"
        );
        if hatch {
            let _ = write!(
                s,
                "<rect x=\"{lx:.1}\" y=\"{sy:.1}\" width=\"18\" height=\"{BAR_H}\" fill=\"url(#cached)\"/>"
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{ly:.1}\" class=\"legend\">{}</text>",
            lx + 23.0,
            esc(&label)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A round interval giving at most about ten ticks over `span` seconds.
fn tick_step(span: f64) -> f64 {
    const STEPS: &[f64] = &[
        0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 10.0)
        .unwrap_or_else(|| (span / 10.0 / 3600.0).ceil() * 3600.0)
}

fn tick_label(t: f64) -> String {
    let t = t.max(0.0);
    if t < 60.0 {
        if t.fract() == 0.0 {
            format!("{t:.0}s")
        } else {
            format!("{t:.1}s")
        }
    } else {
        let whole = t.round() as u64;
        match (whole / 60, whole % 60) {
            (m, 0) => format!("{m}m"),
            (m, s) => format!("{m}m{s:02}s"),
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2328;margin:24px 32px;max-width:1200px}
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:28px 0 10px}
.headline .n{display:inline-block;font-weight:600;padding:2px 10px;border-radius:12px;margin-right:6px}
.n.built{background:#dafbe1;color:#116329}.n.failed{background:#ffebe9;color:#a40e26}.n.skipped{background:#eaeef2;color:#57606a}.n.interrupted{background:#fff8c5;color:#7d4e00}
.meta{color:#57606a;margin:4px 0 10px}
table{border-collapse:collapse;font-size:13px}th,td{padding:4px 10px;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;white-space:nowrap}td.error{max-width:420px;color:#57606a}td.error.failed{color:#a40e26}
td.tag{font-weight:600;color:#57606a}table.connectors td:first-child{white-space:nowrap}code{font-size:12px;white-space:nowrap}code.id{color:#57606a}
.badge{display:inline-block;font-size:12px;padding:0 7px;border-radius:10px;white-space:nowrap}
.badge.built{background:#dafbe1;color:#116329}.badge.failed{background:#ffebe9;color:#a40e26}
.badge.skipped,.badge.lost{background:#eaeef2;color:#57606a}.badge.interrupted{background:#fff8c5;color:#7d4e00}
details{margin:8px 0;border:1px solid #d0d7de;border-radius:6px;padding:6px 10px}
pre{white-space:pre-wrap;font-size:12px;background:#f6f8fa;padding:8px;border-radius:4px;margin:6px 0 0}
svg.timeline{display:block;max-width:100%;height:auto;font-size:12px}
svg .grid{stroke:#d0d7de;stroke-width:1}svg .tick{fill:#57606a;text-anchor:middle;font-size:11px}
svg .stripe{fill:#f6f8fa}svg .label{fill:#1f2328}svg .engine{fill:#57606a;text-anchor:end;font-size:11px}
svg .dot.built{fill:#2da44e}svg .dot.failed{fill:#d62728}svg .dot.skipped{fill:#8c959f}svg .dot.interrupted{fill:#bf8700}
svg .bar rect:first-child{stroke:#fff;stroke-width:0.5}svg .bar.cached rect:first-child{opacity:0.75}
svg .bar.failed rect{stroke:#7a0a12;stroke-width:1}
svg .bar.lost rect{stroke:#5f6368;stroke-width:1;stroke-dasharray:3 2;opacity:0.8}
svg .note{fill:#57606a;font-size:11px}svg .note.failed{fill:#a40e26}svg .legend{fill:#1f2328;font-size:12px}
.warnings{color:#7d4e00}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_report() {
        insta::assert_snapshot!(render(&crate::report::record::tests::sample()));
    }

    #[test]
    fn published_images_are_listed_with_their_pinned_address() {
        let r = crate::report::record::tests::published_sample();
        let section = published(&r);
        insta::assert_snapshot!(section);
        assert!(section.contains("a|b &lt;c&gt;"), "escaped");
        assert!(render(&r).contains(&section));
        // A build without `publish` has no such section.
        let plain = crate::report::record::tests::sample();
        assert!(!render(&plain).contains("<h2>Published</h2>"));
    }

    #[test]
    fn everything_is_escaped_and_nothing_is_fetched() {
        let html = render(&crate::report::record::tests::sample());
        assert!(!html.contains("<b>"), "output text is escaped");
        assert!(html.contains("&lt;b&gt;"));
        for external in ["<script", "<link", "src=", "@import", "url(http"] {
            assert!(!html.contains(external), "{external}");
        }
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(4.0), 0.5);
        assert_eq!(tick_step(75.5), 10.0);
        assert_eq!(tick_step(1000.0), 120.0);
        assert_eq!(tick_label(90.0), "1m30s");
        assert_eq!(tick_label(120.0), "2m");
        assert_eq!(tick_label(2.5), "2.5s");
    }
}
