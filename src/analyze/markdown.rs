//! The analysis as a Markdown report.

use std::fmt::Write;

use super::{Analysis, EnvValue};

/// A table cell: pipes escaped, on one line.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}

fn code(s: &str) -> String {
    if s.is_empty() {
        "(empty)".into()
    } else {
        format!("`{}`", cell(s).replace('`', "'"))
    }
}

fn values_table(out: &mut String, rows: &std::collections::BTreeMap<String, Vec<EnvValue>>) {
    out.push_str("| Variable | Value | Connectors |\n|---|---|---|\n");
    for (name, values) in rows {
        for v in values {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                cell(name),
                code(&v.value),
                v.connectors.join(", ")
            );
        }
    }
}

pub fn render(a: &Analysis) -> String {
    let mut out = String::from("# Dockerfile analysis\n\n");
    let with_dockerfile = a.connectors.iter().filter(|c| c.has_dockerfile).count();
    let _ = writeln!(
        out,
        "{} connectors: {} migrated to a base image, {} not yet; {} still have a Dockerfile.\n",
        a.connectors.len(),
        a.progress.migrated.len(),
        a.progress.not_migrated.len(),
        with_dockerfile
    );

    out.push_str(
        "## Migration progress\n\n| Connector | Base image | Dockerfile |\n|---|---|---|\n",
    );
    for c in &a.connectors {
        let base = match (&c.base_image, c.readable) {
            (Some(b), _) => code(b),
            (None, true) => "not migrated".into(),
            (None, false) => "metadata.yaml unreadable".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {base} | {} |",
            c.name,
            if c.has_dockerfile { "yes" } else { "no" }
        );
    }

    let _ = writeln!(
        out,
        "\n## Dockerfile variants\n\n{} variants among {with_dockerfile} Dockerfiles. A variant is the \
         Dockerfile with the connector's own names replaced, the text of its unindented comment \
         lines and `LABEL io.airbyte.version` lines removed, then blank lines and surrounding \
         spaces; its id is the first 7 hex digits of that text's sha256, as the 2023 notebook's \
         `get_dockerfile_variant` computes it.\n",
        a.variants.len()
    );
    out.push_str("| Variant | Connectors | Count | Example |\n|---|---|---|---|\n");
    for v in &a.variants {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            v.id,
            v.connectors.join(", "),
            v.count,
            v.example
        );
    }
    for v in &a.variants {
        let fence = if v.dockerfile.contains("```") {
            "````"
        } else {
            "```"
        };
        let _ = writeln!(
            out,
            "\n### Variant `{}`: {} connector(s), e.g. {}\n\n{fence}Dockerfile\n{}{}{fence}",
            v.id,
            v.count,
            v.example,
            v.dockerfile,
            if v.dockerfile.ends_with('\n') {
                ""
            } else {
                "\n"
            }
        );
    }

    out.push_str("\n## Root images\n\nThe images Dockerfile stages start from (stages built on an earlier stage are not counted).\n\n| Image | Connectors |\n|---|---|\n");
    for r in &a.root_images {
        let _ = writeln!(out, "| {} | {} |", code(&r.image), r.connectors.join(", "));
    }

    let env = &a.env;
    let not_built = a.connectors.iter().filter(|c| c.error.is_some()).count();
    let _ = writeln!(
        out,
        "\n## Environment variables\n\nFrom the configuration of the {} image(s) built from the Dockerfiles.\n\n### Common to all images, same value\n",
        env.images
    );
    out.push_str("| Variable | Value |\n|---|---|\n");
    for (name, value) in &env.common_same_value {
        let _ = writeln!(out, "| `{}` | {} |", cell(name), code(value));
    }
    out.push_str("\n### Common to all images, different values\n\n");
    values_table(&mut out, &env.common_different_values);
    out.push_str("\n### Specific to some images\n\n");
    values_table(&mut out, &env.specific);

    let _ = writeln!(
        out,
        "\n## System packages beyond the root image\n\nFrom the {} image(s) built from the Dockerfiles{}.\n",
        env.images,
        match not_built {
            0 => String::new(),
            n => format!("; the {n} connector(s) under \"Not analysed\" are not covered"),
        }
    );
    if a.system_packages.is_empty() {
        let _ = writeln!(
            out,
            "None of the {} image(s) built adds Debian packages to its root image.",
            env.images
        );
    } else {
        out.push_str("| Connector | Root image | Packages |\n|---|---|---|\n");
        for p in &a.system_packages {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                p.connector,
                code(&p.root_image),
                p.packages.join(", ")
            );
        }
    }

    let errors: Vec<_> = a.connectors.iter().filter(|c| c.error.is_some()).collect();
    if !errors.is_empty() {
        out.push_str("\n## Not analysed\n\n");
        // One line per cause of the error chain, nested under the first.
        for c in errors {
            let mut lines = c.error.as_deref().unwrap_or_default().lines();
            let _ = writeln!(out, "- {}: {}", c.name, lines.next().unwrap_or_default());
            for l in lines.map(str::trim).filter(|l| !l.is_empty()) {
                let _ = writeln!(out, "  - {l}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{ConnectorRow, EnvGroups, Progress};
    use super::*;

    fn row(name: &str, error: Option<&str>) -> ConnectorRow {
        ConnectorRow {
            name: name.into(),
            base_image: None,
            has_dockerfile: true,
            variant: None,
            root_images: vec![],
            image_id: error.is_none().then(|| "sha256:1".into()),
            readable: true,
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn says_what_was_not_built_and_each_cause() {
        let a = Analysis {
            connectors: vec![
                row("source-a", None),
                row(
                    "source-b",
                    Some("building the image from the Dockerfile failed\n  caused by: step 3 failed\n  caused by: exit code 1"),
                ),
            ],
            progress: Progress {
                migrated: vec![],
                not_migrated: vec!["source-a".into(), "source-b".into()],
                unreadable: vec![],
            },
            variants: vec![],
            root_images: vec![],
            env: EnvGroups {
                images: 1,
                ..Default::default()
            },
            system_packages: vec![],
        };
        let md = render(&a);
        assert!(md.contains("From the 1 image(s) built from the Dockerfiles; the 1 connector(s) under \"Not analysed\" are not covered.\n\nNone of the 1 image(s) built adds Debian packages to its root image.\n"), "{md}");
        assert!(md.ends_with("## Not analysed\n\n- source-b: building the image from the Dockerfile failed\n  - caused by: step 3 failed\n  - caused by: exit code 1\n"), "{md}");
    }
}
