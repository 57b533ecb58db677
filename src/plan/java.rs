//! The build procedure for Java connectors (`language:java`), as a plan.
//!
//! As airbyte-ci: Gradle's `distTar` output, `build/distributions/<one>.tar`, unpacked into
//! `/airbyte` with its top folder stripped (one layer, written without a container), on the
//! java base image (by digest), with `APPLICATION=<connector name>` and `WORKDIR /airbyte`;
//! the base image's entrypoint, `/airbyte/base.sh`, runs `/airbyte/bin/$APPLICATION`.
//! Running Gradle is not this tool's job: a missing distribution names the task to run.

use std::path::PathBuf;

use super::canonical::sha256_hex;
use super::python::{image_base, output_tag, PlanError, PlanOptions};
use super::{Action, BuildPlan, ConfigOp, FileEntry, FileSource, Step};
use crate::model::families::FamilyKind;
use crate::model::Connector;

/// Where a Java connector's distribution is unpacked.
pub const JAVA_HOME_DIR: &str = "/airbyte";

/// Where Gradle's distribution plugin writes `distTar`'s output, in the connector folder.
pub const DISTRIBUTIONS_DIR: &str = "build/distributions";
pub const DISTRIBUTION_STEP: &str = "unpack distribution";

#[derive(Debug, thiserror::Error)]
pub enum JavaError {
    #[error("{dir}/{DISTRIBUTIONS_DIR}: no distribution tar; a Java connector's image is its Gradle distribution\nhint: run `./gradlew :airbyte-integrations:connectors:{name}:distTar` first")]
    NoDistribution { dir: PathBuf, name: String },
    #[error("{dir}/{DISTRIBUTIONS_DIR}: {count} distribution tars ({names}); which one is the connector is not clear\nhint: remove the stale ones and run `./gradlew :airbyte-integrations:connectors:{name}:distTar` again")]
    SeveralDistributions {
        dir: PathBuf,
        count: usize,
        names: String,
        name: String,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The one `*.tar` in `build/distributions/`, relative to the connector folder.
fn distribution(connector: &Connector) -> Result<String, JavaError> {
    let dir = connector.dir.join(DISTRIBUTIONS_DIR);
    let none = || JavaError::NoDistribution {
        dir: connector.dir.clone(),
        name: connector.name.clone(),
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(none()),
        Err(source) => return Err(JavaError::Read { path: dir, source }),
    };
    let mut tars: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tar"))
        .collect();
    tars.sort();
    match tars.as_slice() {
        [] => Err(none()),
        [one] => Ok(format!("{DISTRIBUTIONS_DIR}/{one}")),
        many => Err(JavaError::SeveralDistributions {
            dir: connector.dir.clone(),
            count: many.len(),
            names: many.join(", "),
            name: connector.name.clone(),
        }),
    }
}

pub fn plan_java(connector: &Connector, opts: &PlanOptions) -> Result<BuildPlan, PlanError> {
    let output_tag = output_tag(connector, opts.tag.as_deref())?;
    let dir = &connector.dir;
    let Some(base_image) = connector.metadata.base_image() else {
        return Err(PlanError::NoBase { dir: dir.clone() });
    };
    let base = image_base(connector, base_image, FamilyKind::Java, opts)?;
    let archive = distribution(connector)?;
    let path = dir.join(&archive);
    let bytes = std::fs::read(&path).map_err(|source| JavaError::Read {
        path: path.clone(),
        source,
    })?;
    let config = |name: &str, op: ConfigOp| Step {
        name: name.into(),
        action: Action::Config(op),
    };
    let steps = vec![
        config("workdir", ConfigOp::Workdir(JAVA_HOME_DIR.into())),
        Step {
            name: DISTRIBUTION_STEP.into(),
            action: Action::Files {
                dest: JAVA_HOME_DIR.into(),
                files: vec![FileEntry {
                    path: String::new(),
                    source: FileSource::Unpack {
                        archive: archive.clone(),
                        strip: 1,
                    },
                    mode: 0o644,
                    sha256: sha256_hex(&bytes),
                    owner: None,
                }],
            },
        },
        config(
            "application",
            ConfigOp::Env {
                name: "APPLICATION".into(),
                value: connector.name.clone(),
                expand: false,
            },
        ),
    ];
    Ok(super::connector_plan(
        connector,
        output_tag,
        base,
        steps,
        vec![],
    ))
}
