//! `report.md`: the run as a Markdown summary (also appended to GitHub's step summary).

use super::record::{duration, outcome_label, reproducible_label, short_id, RunReport, Status};

pub fn render(r: &RunReport) -> String {
    let mut md = format!("## connector-build: {}\n\n", r.headline());
    md.push_str(&format!(
        "{} connector(s) in {} on {} engine(s): {}.\n\n",
        r.connectors.len(),
        duration(r.seconds()),
        r.engines.len(),
        r.engines
            .iter()
            .map(|e| match &e.lost {
                Some(_) => format!("`{}` (stopped answering)", e.host),
                None => format!("`{}`", e.host),
            })
            .collect::<Vec<_>>()
            .join(", ")
    ));
    md.push_str("| connector | status | engine | image | time | from cache | error |\n");
    md.push_str("|---|---|---|---|---:|---:|---|\n");
    for c in &r.connectors {
        let status = match c.status {
            Status::Built => "built".to_string(),
            Status::Failed => "**FAILED**".to_string(),
            Status::Skipped => "skipped".to_string(),
            Status::Interrupted => "**interrupted**".to_string(),
        };
        let retried = if c.lost_attempts.is_empty() {
            String::new()
        } else {
            format!(
                " (retried after {})",
                c.lost_attempts
                    .iter()
                    .map(|a| format!("`{}` stopped answering", a.engine))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let image = match (&c.tag, &c.image_id) {
            (Some(tag), Some(id)) => format!("`{tag}` `{}`", short_id(id)),
            _ => String::new(),
        };
        let (cached, time) = (c.cache_hits(), c.shown_time());
        md.push_str(&format!(
            "| {} | {status}{} | {} | {image} | {time} | {cached} | {} |\n",
            cell(&c.connector),
            cell(&retried),
            c.engine.as_deref().map(cell).unwrap_or_default(),
            c.error_summary()
                .filter(|_| matches!(c.status, Status::Failed | Status::Interrupted))
                .map(cell)
                .unwrap_or_default(),
        ));
    }
    md.push_str(&published(r));
    if let Some(i) = &r.interrupted {
        md.push_str(&format!(
            "\nThe run was interrupted by {}: connectors in progress were stopped, {} build container(s) removed, and nothing was tagged from an unfinished build.\n",
            i.signal, i.containers_removed
        ));
    }
    let failures = r.failures();
    if !failures.is_empty() {
        md.push_str("\n### Failures\n");
        for (c, e) in failures {
            md.push_str(&format!(
                "\n#### {}\n\n```text\n{}\n```\n",
                c.connector,
                fence_safe(e)
            ));
        }
    }
    if !r.warnings.is_empty() {
        md.push_str("\n### Warnings\n\n");
        for w in &r.warnings {
            md.push_str(&format!("- {}\n", w.replace('\n', " ")));
        }
    }
    md
}

/// What `publish` pushed: each image's digest-pinned address (empty when nothing was
/// published).
fn published(r: &RunReport) -> String {
    let published = r.published();
    if published.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\n### Published\n\n| connector | image | outcome | reproducible |\n|---|---|---|---|\n",
    );
    for (c, p) in published {
        md.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            cell(&c.connector),
            cell(&p.image),
            outcome_label(p),
            cell(&reproducible_label(p)),
        ));
    }
    md
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Text safe inside a ``` fence.
fn fence_safe(text: &str) -> String {
    text.replace("```", "`\u{200b}``")
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_report() {
        insta::assert_snapshot!(super::render(&crate::report::record::tests::sample()));
    }

    #[test]
    fn published_images_are_listed_with_their_pinned_address() {
        let r = crate::report::record::tests::published_sample();
        let section = super::published(&r);
        insta::assert_snapshot!(section);
        assert!(super::render(&r).contains(&section));
        // A build without `publish` has no such section.
        let plain = crate::report::record::tests::sample();
        assert!(!super::render(&plain).contains("### Published"));
    }
}
