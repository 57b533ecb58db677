//! `analyze-dockerfiles`: how the Dockerfiles that remain differ, as the 2023 analysis
//! notebook did it, for the connectors given: their variants (Dockerfiles normalised so that
//! only the build differs), the root images they start from, the environment variables their
//! images carry (common with one value, common with several, specific to some), and the
//! system packages each image adds to its root image. It also lists which connectors are
//! migrated to a base image and which are not.
//!
//! The connectors analysed are whatever the caller selected (names, or every connector
//! found); a metadata query only changes that selection.

pub mod markdown;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::engine::ImageInfo;
use crate::error::error_chain;
use crate::execute::Builder;
use crate::migrate::build_dockerfile;
use crate::migrate::compare::{env_map, packages};
use crate::model::connector::folder_name;
use crate::model::dockerfile::Dockerfile;
use crate::model::Connector;
use crate::plan::PlanOptions;
use crate::progress::{Event, Reporter};

/// What the notebook replaced the connector's own names with.
const NAME_PLACEHOLDER: &str = "connector-technical-name";
const PACKAGE_PLACEHOLDER: &str = "connector_technical_name";

/// A Dockerfile with what makes it one connector's removed, exactly as the notebook's
/// `get_dockerfile_variant` did it, quirks included, so that ids match its:
///
/// 1. line endings made `\n` (Python's `read_text` reads in universal-newline mode);
/// 2. the connector's name, then its package name, replaced by placeholders;
/// 3. for each line (Python's `splitlines` boundaries) that starts with `#` *before any
///    stripping*, or with `LABEL io.airbyte.version`, every occurrence of that line's text
///    is removed from the whole text (`str.replace(line, "")`): an indented `# comment`
///    inside a `RUN` continuation stays, and a comment's text is also cut out of any other
///    line that contains it;
/// 4. lines that are blank once stripped dropped, and every line stripped (Python's
///    `str.strip`, whose whitespace also counts U+001C..U+001F).
pub fn normalise(dockerfile: &str, technical_name: &str) -> String {
    let mut text = dockerfile
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace(technical_name, NAME_PLACEHOLDER)
        .replace(&technical_name.replace('-', "_"), PACKAGE_PLACEHOLDER);
    let lines: Vec<String> = py_splitlines(&text).map(str::to_string).collect();
    for line in lines {
        if line.starts_with('#') || line.starts_with("LABEL io.airbyte.version") {
            text = text.replace(&line, "");
        }
    }
    text.split('\n')
        .map(|l| l.trim_matches(py_isspace))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Python's `str.isspace` for one character: Unicode whitespace and the four separators
/// U+001C..U+001F, which Rust's `char::is_whitespace` does not count.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.splitlines()`: the lines without their endings, split at `\n`, `\r`,
/// `\r\n`, `\v`, `\f`, U+001C..U+001E, U+0085, U+2028 and U+2029.
fn py_splitlines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let boundary = |c: char| {
            matches!(
                c,
                '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{1c}'
                    ..='\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}'
            )
        };
        match rest.char_indices().find(|(_, c)| boundary(*c)) {
            Some((i, c)) => {
                let line = &rest[..i];
                let mut next = i + c.len_utf8();
                if c == '\r' && rest[next..].starts_with('\n') {
                    next += 1;
                }
                rest = &rest[next..];
                Some(line)
            }
            None => {
                let line = rest;
                rest = "";
                Some(line)
            }
        }
    })
}

/// The variant id: the first 7 hex digits of the normalised text's sha256.
pub fn variant_id(normalised: &str) -> String {
    hex::encode(Sha256::digest(normalised.as_bytes()))[..7].to_string()
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectorRow {
    pub name: String,
    /// `data.connectorBuildOptions.baseImage`, when migrated.
    pub base_image: Option<String>,
    pub has_dockerfile: bool,
    pub variant: Option<String>,
    /// The images its stages start from (not earlier stages).
    pub root_images: Vec<String>,
    /// The image built from its Dockerfile.
    pub image_id: Option<String>,
    /// Its metadata.yaml was read.
    #[serde(skip)]
    pub readable: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// Declare `data.connectorBuildOptions.baseImage`.
    pub migrated: Vec<String>,
    pub not_migrated: Vec<String>,
    /// Their metadata.yaml could not be read.
    pub unreadable: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    pub id: String,
    pub count: usize,
    pub connectors: Vec<String>,
    pub example: String,
    /// The example's Dockerfile as written.
    pub dockerfile: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RootImage {
    pub image: String,
    pub connectors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvValue {
    pub value: String,
    pub connectors: Vec<String>,
}

/// Variables of the images' configuration, over every image that built.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnvGroups {
    pub images: usize,
    pub common_same_value: BTreeMap<String, String>,
    pub common_different_values: BTreeMap<String, Vec<EnvValue>>,
    pub specific: BTreeMap<String, Vec<EnvValue>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExtraPackages {
    pub connector: String,
    pub root_image: String,
    pub packages: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub connectors: Vec<ConnectorRow>,
    pub progress: Progress,
    pub variants: Vec<Variant>,
    pub root_images: Vec<RootImage>,
    pub env: EnvGroups,
    /// Images that add system packages to their root image; `None` entries are left out.
    pub system_packages: Vec<ExtraPackages>,
}

/// Groups each image's variables: same name and value everywhere, same name with several
/// values, or only in some images.
pub fn env_groups(images: &[(String, BTreeMap<String, String>)]) -> EnvGroups {
    let mut by_name: BTreeMap<&str, BTreeMap<&str, Vec<String>>> = BTreeMap::new();
    for (connector, env) in images {
        for (k, v) in env {
            by_name
                .entry(k)
                .or_default()
                .entry(v)
                .or_default()
                .push(connector.clone());
        }
    }
    let mut groups = EnvGroups {
        images: images.len(),
        ..Default::default()
    };
    for (name, values) in by_name {
        let count: usize = values.values().map(Vec::len).sum();
        let listed: Vec<EnvValue> = values
            .iter()
            .map(|(v, c)| EnvValue {
                value: v.to_string(),
                connectors: c.clone(),
            })
            .collect();
        if count < images.len() {
            groups.specific.insert(name.to_string(), listed);
        } else if values.len() == 1 {
            groups
                .common_same_value
                .insert(name.to_string(), listed[0].value.clone());
        } else {
            groups
                .common_different_values
                .insert(name.to_string(), listed);
        }
    }
    groups
}

struct Built {
    connector: String,
    env: BTreeMap<String, String>,
    root: String,
    extra: Option<Vec<String>>,
}

/// Builds each Dockerfile image (the engine's own cache applies) and reads it.
pub async fn analyze(
    builder: &Builder<'_>,
    reporter: &dyn Reporter,
    dirs: &[PathBuf],
    plan: &PlanOptions,
) -> Analysis {
    let mut rows = Vec::new();
    let mut built = Vec::new();
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    let mut root_packages: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    // Announced as a run, so each connector's outcome is reported as it comes, as `build`'s.
    reporter.report(Event::RunStarted {
        total: dirs.len(),
        engines: vec![builder.engine.host().to_string()],
    });
    for dir in dirs {
        let mut row = ConnectorRow {
            name: folder_name(dir),
            base_image: None,
            has_dockerfile: false,
            variant: None,
            root_images: vec![],
            image_id: None,
            readable: false,
            error: None,
        };
        let connector = match Connector::load(dir) {
            Ok(c) => c,
            Err(e) => {
                row.error = Some(error_chain(&e));
                rows.push(row);
                continue;
            }
        };
        row.readable = true;
        row.base_image = connector.metadata.base_image().map(|b| b.value.to_string());
        if let Some(path) = connector.dockerfile() {
            row.has_dockerfile = true;
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    row.variant = Some(variant_id(&normalise(&text, &connector.name)));
                    let parsed = Dockerfile::parse(&text);
                    row.root_images = parsed.root_images();
                    texts.insert(row.name.clone(), text);
                    let started = Instant::now();
                    reporter.report(Event::StepStarted {
                        connector: row.name.clone(),
                        step: "build and inspect the Dockerfile image".into(),
                    });
                    match inspect(builder, plan, &connector, &parsed, &mut root_packages).await {
                        Ok((image, b)) => {
                            reporter.report(Event::StepFinished {
                                connector: row.name.clone(),
                                step: "build and inspect the Dockerfile image".into(),
                                cached: false,
                                duration: started.elapsed(),
                            });
                            row.image_id = Some(image.id);
                            built.push(b);
                        }
                        Err(e) => row.error = Some(e),
                    }
                }
                Err(e) => row.error = Some(format!("cannot read {}: {e}", path.display())),
            }
        }
        reporter.report(Event::Finished {
            connector: row.name.clone(),
            ok: row.error.is_none(),
        });
        rows.push(row);
    }
    summarise(rows, &texts, built)
}

async fn inspect(
    builder: &Builder<'_>,
    plan: &PlanOptions,
    connector: &Connector,
    parsed: &Dockerfile,
    root_packages: &mut BTreeMap<String, Option<BTreeSet<String>>>,
) -> Result<(ImageInfo, Built), String> {
    let image = build_dockerfile(builder, connector, plan, parsed)
        .await
        .map_err(|e| error_chain(&e))?;
    let engine = builder.engine;
    let root = parsed
        .final_root()
        .map(|(r, _)| r.to_string())
        .unwrap_or_default();
    if !root_packages.contains_key(&root) {
        let packages = match engine.inspect_image(&root).await {
            Ok(Some(info)) => packages(engine, &info).await.map_err(|e| error_chain(&e))?,
            Ok(None) => None,
            Err(e) => return Err(error_chain(&e)),
        };
        root_packages.insert(root.clone(), packages);
    }
    let mine = packages(engine, &image)
        .await
        .map_err(|e| error_chain(&e))?;
    let extra = match (mine, root_packages.get(&root).and_then(Option::as_ref)) {
        (Some(m), Some(r)) => Some(m.difference(r).cloned().collect()),
        _ => None,
    };
    let built = Built {
        connector: connector.name.clone(),
        env: env_map(&image),
        root,
        extra,
    };
    Ok((image, built))
}

fn summarise(
    rows: Vec<ConnectorRow>,
    texts: &BTreeMap<String, String>,
    built: Vec<Built>,
) -> Analysis {
    let mut variants: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut roots: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in &rows {
        if let Some(v) = &r.variant {
            variants.entry(v).or_default().push(r.name.clone());
        }
        for root in &r.root_images {
            roots.entry(root).or_default().push(r.name.clone());
        }
    }
    let mut variants: Vec<Variant> = variants
        .into_iter()
        .map(|(id, mut connectors)| {
            connectors.sort();
            let example = connectors[0].clone();
            Variant {
                id: id.to_string(),
                count: connectors.len(),
                dockerfile: texts.get(&example).cloned().unwrap_or_default(),
                example,
                connectors,
            }
        })
        .collect();
    variants.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.id.cmp(&b.id)));
    let root_images = roots
        .into_iter()
        .map(|(image, connectors)| RootImage {
            image: image.to_string(),
            connectors,
        })
        .collect();
    let envs: Vec<(String, BTreeMap<String, String>)> = built
        .iter()
        .map(|b| (b.connector.clone(), b.env.clone()))
        .collect();
    let system_packages = built
        .iter()
        .filter_map(|b| {
            let packages = b.extra.clone().filter(|p| !p.is_empty())?;
            Some(ExtraPackages {
                connector: b.connector.clone(),
                root_image: b.root.clone(),
                packages,
            })
        })
        .collect();
    let names = |keep: &dyn Fn(&ConnectorRow) -> bool| {
        rows.iter()
            .filter(|r| keep(r))
            .map(|r| r.name.clone())
            .collect()
    };
    let progress = Progress {
        migrated: names(&|r| r.readable && r.base_image.is_some()),
        not_migrated: names(&|r| r.readable && r.base_image.is_none()),
        unreadable: names(&|r| !r.readable),
    };
    Analysis {
        progress,
        variants,
        root_images,
        env: env_groups(&envs),
        system_packages,
        connectors: rows,
    }
}

/// Writes `dockerfile-analysis.json` and `dockerfile-analysis.md` into `dir`.
pub fn write_reports(
    analysis: &Analysis,
    dir: &Path,
) -> Result<Vec<PathBuf>, crate::edit::EditError> {
    std::fs::create_dir_all(dir).map_err(|source| crate::edit::EditError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let json = dir.join("dockerfile-analysis.json");
    let md = dir.join("dockerfile-analysis.md");
    let mut text = serde_json::to_string_pretty(analysis).unwrap_or_default();
    text.push('\n');
    crate::edit::write_atomic(&json, text.as_bytes())?;
    crate::edit::write_atomic(&md, markdown::render(analysis).as_bytes())?;
    Ok(vec![json, md])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_build_same_variant() {
        let a = "FROM python:3.9-slim\n\n# Bash for debugging.\nRUN apt-get install -y bash\nWORKDIR /airbyte/integration_code\nCOPY source_foo ./source_foo\n   RUN pip install .  \nLABEL io.airbyte.version=1.0.0\nLABEL io.airbyte.name=airbyte/source-foo\n";
        let b = "FROM python:3.9-slim\nRUN apt-get install -y bash\n\nWORKDIR /airbyte/integration_code\nCOPY source_bar_baz ./source_bar_baz\nRUN pip install .\nLABEL io.airbyte.version=0.2.0\nLABEL io.airbyte.name=airbyte/source-bar-baz\n";
        let na = normalise(a, "source-foo");
        assert_eq!(
            na,
            "FROM python:3.9-slim\nRUN apt-get install -y bash\nWORKDIR /airbyte/integration_code\nCOPY connector_technical_name ./connector_technical_name\nRUN pip install .\nLABEL io.airbyte.name=airbyte/connector-technical-name"
        );
        assert_eq!(na, normalise(b, "source-bar-baz"));
        // The id the notebook's get_dockerfile_variant gives for `a`.
        let id = variant_id(&na);
        assert_eq!(id, "c50b8f3");
        assert_ne!(
            id,
            variant_id(&normalise(&a.replace("bash", "jq"), "source-foo"))
        );
    }

    /// Ids computed by the notebook's `get_dockerfile_variant`, run verbatim by Python on
    /// these texts.
    #[test]
    fn variant_ids_equal_the_notebooks() {
        // source-google-sheets' shape: an indented comment inside a RUN continuation stays.
        let sheets = "FROM python:3.9.11-alpine3.15 as base\n\n# build and load all requirements\nFROM base as builder\nWORKDIR /airbyte/integration_code\nRUN apk --no-cache upgrade \\\n    # pip comes with the image: upgrade it\n    && pip install --upgrade pip \\\n    && apk --no-cache add tzdata build-base\nCOPY setup.py ./\nRUN pip install --prefix=/install .\n\nFROM base\nCOPY --from=builder /install /usr/local\nCOPY source_google_sheets ./source_google_sheets\nLABEL io.airbyte.version=0.3.7\nLABEL io.airbyte.name=airbyte/source-google-sheets\n";
        let n = normalise(sheets, "source-google-sheets");
        assert!(
            n.contains("upgrade \\\n# pip comes with the image: upgrade it\n&& pip"),
            "{n}"
        );
        assert_eq!(variant_id(&n), "cbf7c15");

        // The string-replace quirks: a lone `#` line removes every `#`, a comment's text is
        // cut out of other lines too, only unindented LABEL lines go; CRLF, form feed and
        // U+001C/U+001F count as Python counts them.
        let quirks = "FROM python:3.9-slim\r\n#\r\nRUN echo '#1' > /etc/n # bash\r\n# bash\r\n\tLABEL io.airbyte.version=1\r\nLABEL io.airbyte.version=1.2.3\x0cRUN true\x1c\nENV A=1 \x1f\n";
        let n = normalise(quirks, "source-quirks");
        assert_eq!(
            n,
            "FROM python:3.9-slim\nRUN echo '1' > /etc/n  bash\nbash\nLABEL io.airbyte.version=1\nRUN true\nENV A=1"
        );
        assert_eq!(variant_id(&n), "8049bc3");
    }

    #[test]
    fn env_var_groups() {
        let img = |name: &str, vars: &[(&str, &str)]| {
            (
                name.to_string(),
                vars.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let g = env_groups(&[
            img(
                "a",
                &[
                    ("LANG", "C.UTF-8"),
                    ("AIRBYTE_ENTRYPOINT", "python main.py"),
                ],
            ),
            img(
                "b",
                &[
                    ("LANG", "C.UTF-8"),
                    ("AIRBYTE_ENTRYPOINT", "python main_dev.py"),
                    ("AIRBYTE_IMPL_PATH", "X"),
                ],
            ),
        ]);
        assert_eq!(g.images, 2);
        assert_eq!(g.common_same_value["LANG"], "C.UTF-8");
        assert_eq!(g.common_different_values["AIRBYTE_ENTRYPOINT"].len(), 2);
        assert_eq!(
            g.specific["AIRBYTE_IMPL_PATH"],
            [EnvValue {
                value: "X".into(),
                connectors: vec!["b".into()]
            }]
        );
    }
}
