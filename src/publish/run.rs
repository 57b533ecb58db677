//! Publishing what a build run built: for each built connector of the run's report, its
//! images for the requested platforms (the engine's platform's image is the connector's own
//! record, the others are in its `platforms`) go to [`super::publish`] together, and the
//! result (or the failure) is recorded in the report; the SBOMs are written beside it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::engine::Engine;
use crate::error::error_chain;
use crate::fault::FaultClass;
use crate::model::connector::folder_name;
use crate::model::Connector;
use crate::platform::Platform;
use crate::progress::Reporter;
use crate::registry::Registry;
use crate::report::{ConnectorReport, Published, RunReport, Status};

use super::{publish, PublishError, Request};

/// What a run publishes with.
pub struct Publishing<'a> {
    /// The engines the build ran on (each connector's images are read from its own).
    pub engines: &'a [Engine],
    /// The selected connector folders (the report names connectors by folder name).
    pub dirs: &'a [PathBuf],
    pub registry: &'a Registry,
    /// Plain-HTTP registries, for reading base images' registries.
    pub insecure: &'a [String],
    /// The platforms the run built; empty: the engine's.
    pub platforms: &'a [Platform],
    pub pre_release: bool,
    pub latest: bool,
    /// The run's report folder: the SBOMs go to its `sbom/`.
    pub report_dir: &'a Path,
    pub reporter: Arc<dyn Reporter>,
}

/// The platforms `publish` builds and pushes: `--platform` when given, else `platforms` in
/// connector-build.toml, else linux/amd64 and linux/arm64.
pub fn platforms(flag: &[Platform], config: &[Platform]) -> Vec<Platform> {
    match (flag, config) {
        ([_, ..], _) => flag.to_vec(),
        ([], [_, ..]) => config.to_vec(),
        ([], []) => Platform::ALL.to_vec(),
    }
}

/// Publishes every connector `report` has as built, one after the other, and records each
/// result in it: `published`, or the connector failed with the error's class. Fails as a
/// whole only when there is no scratch space.
pub async fn publish_built(
    report: &mut RunReport,
    with: &Publishing<'_>,
) -> Result<(), PublishError> {
    let work = tempfile::tempdir().map_err(|source| PublishError::Io {
        what: "a scratch folder for the saved images".into(),
        source,
    })?;
    for i in 0..report.connectors.len() {
        let c = &report.connectors[i];
        if c.status != Status::Built {
            continue;
        }
        let Some(engine) = with
            .engines
            .iter()
            .find(|e| Some(e.host()) == c.engine.as_deref())
        else {
            continue;
        };
        let scratch = work.path().join(&c.connector);
        let outcome = publish_one(c, engine, with, &scratch).await;
        let _ = std::fs::remove_dir_all(&scratch);
        match outcome {
            Ok(mut published) => {
                write_sboms(
                    &mut published,
                    &report.connectors[i].connector,
                    with.report_dir,
                );
                report.connectors[i].published = Some(published);
            }
            Err((class, error)) => report.fail_built(i, class, error),
        }
    }
    Ok(())
}

async fn publish_one(
    c: &ConnectorReport,
    engine: &Engine,
    with: &Publishing<'_>,
    scratch: &Path,
) -> Result<Published, (FaultClass, String)> {
    let name = &c.connector;
    let dir = with
        .dirs
        .iter()
        .find(|d| folder_name(d) == *name)
        .ok_or_else(|| {
            (
                FaultClass::Input,
                format!("{name}: its folder is not in the selection"),
            )
        })?;
    let connector = Connector::load(dir).map_err(|e| (FaultClass::Input, error_chain(&e)))?;
    let own = engine
        .platform()
        .await
        .map_err(|e| (e.class(), error_chain(&e)))?;
    let images = images_of(c, own, with.platforms).map_err(|e| (FaultClass::Build, e))?;
    std::fs::create_dir_all(scratch).map_err(|e| (FaultClass::Infrastructure, error_chain(&e)))?;
    let registry = with
        .registry
        .clone()
        .with_reporter(with.reporter.clone(), name);
    publish(Request {
        engine,
        images: &images,
        connector: &connector,
        registry: &registry,
        insecure: with.insecure,
        pre_release: with.pre_release,
        latest: with.latest,
        work_dir: scratch,
    })
    .await
    .map_err(|e| (e.class(), error_chain(&e)))
}

/// The connector's image for each of `wanted` (its own record holds the engine's platform's,
/// or the first platform's when the engine's was not asked for; `platforms` every other).
fn images_of(
    c: &ConnectorReport,
    own: Platform,
    wanted: &[Platform],
) -> Result<Vec<(Platform, String)>, String> {
    let wanted = if wanted.is_empty() {
        &[own][..]
    } else {
        wanted
    };
    let mut images = Vec::new();
    for p in wanted {
        let id = if *p == own {
            c.image_id.clone()
        } else {
            c.platforms
                .iter()
                .find(|x| x.platform == p.as_str())
                .map(|x| x.image_id.clone())
        };
        let id = id.ok_or_else(|| format!("{}: no {p} image was built", c.connector))?;
        if !images.iter().any(|(q, _)| q == p) {
            images.push((*p, id));
        }
    }
    Ok(images)
}

/// Each platform's SBOM to `<report dir>/sbom/`: `<connector>.cdx.json` for a one-platform
/// publish, `<connector>-linux-<arch>.cdx.json` per platform otherwise. A file that cannot be
/// written is a warning: the SBOM is in the registry.
fn write_sboms(published: &mut Published, connector: &str, report_dir: &Path) {
    let folder = report_dir.join("sbom");
    let single = published.platforms.len() == 1;
    for p in &mut published.platforms {
        let file = if single {
            folder.join(format!("{connector}.cdx.json"))
        } else {
            folder.join(format!(
                "{connector}-{}.cdx.json",
                p.platform.replace('/', "-")
            ))
        };
        let written = std::fs::create_dir_all(&folder)
            .and_then(|_| crate::edit::replace_file(&file, &p.sbom));
        match written {
            Ok(()) => p.sbom_file = Some(file),
            Err(e) => eprintln!("warning: cannot write {}: {e}", file.display()),
        }
    }
    if single {
        published.sbom_file = published.platforms[0].sbom_file.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::PlatformImage;

    fn built(platforms: &[(&str, &str)]) -> ConnectorReport {
        let mut c = ConnectorReport::skipped("source-x".into(), "-");
        c.status = Status::Built;
        c.image_id = Some("sha256:own".into());
        c.platforms = platforms
            .iter()
            .map(|(p, id)| PlatformImage {
                platform: p.to_string(),
                tag: "t".into(),
                image_id: id.to_string(),
                cache_key: "k".into(),
                containers_started: 0,
                seconds: 0.0,
                emulated: true,
                cross: Vec::new(),
            })
            .collect();
        c
    }

    #[test]
    fn the_flag_then_the_config_then_both() {
        let (amd, arm) = (Platform::LinuxAmd64, Platform::LinuxArm64);
        assert_eq!(platforms(&[amd], &[arm]), [amd]);
        assert_eq!(platforms(&[], &[arm]), [arm]);
        assert_eq!(platforms(&[], &[]), [amd, arm]);
    }

    #[test]
    fn each_platform_takes_its_own_image() {
        let (amd, arm) = (Platform::LinuxAmd64, Platform::LinuxArm64);
        let c = built(&[("linux/arm64", "sha256:arm")]);
        assert_eq!(
            images_of(&c, amd, &[arm, amd]).unwrap(),
            [(arm, "sha256:arm".into()), (amd, "sha256:own".into())]
        );
        assert_eq!(
            images_of(&c, amd, &[]).unwrap(),
            [(amd, "sha256:own".into())]
        );
        // Only arm64 asked for: its image is also the connector's own record.
        assert_eq!(
            images_of(&c, amd, &[arm]).unwrap(),
            [(arm, "sha256:arm".into())]
        );
        let e = images_of(&built(&[]), amd, &[amd, arm]).unwrap_err();
        assert!(e.contains("no linux/arm64 image"), "{e}");
    }
}
