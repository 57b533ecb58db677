//! `upgrade-base-image` without `--to`: each connector moves to the newest published release
//! of its family, digest-pinned, as read from the registry.
//!
//! A connector's family is the one whose repository its current `baseImage` is in (whatever
//! the registry); one without a `baseImage` gets the family of its `language:` tag, and only
//! with `--set-if-not-exists`. Connectors on an image that is no declared family are left
//! alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{BaseImageError, BaseImages};
use crate::edit::{self, Change, EditError};
use crate::model::connector::folder_name;
use crate::model::{ConnectorLocator, DiscoveryError, ImageRef, ImageRefError};

#[derive(Debug, thiserror::Error)]
pub enum UpgradeToLatestError {
    #[error(transparent)]
    Upgrade(#[from] UpgradeError),
    #[error(transparent)]
    BaseImage(#[from] BaseImageError),
}

impl From<DiscoveryError> for UpgradeToLatestError {
    fn from(e: DiscoveryError) -> Self {
        UpgradeToLatestError::Upgrade(e.into())
    }
}

/// A connector that was not moved, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    pub connector: String,
    pub reason: String,
}

pub async fn upgrade_to_latest(
    images: &BaseImages<'_>,
    locator: &ConnectorLocator,
    names: &[String],
    insert: bool,
    dry_run: bool,
) -> Result<(Vec<UpgradeResult>, Vec<Skipped>), UpgradeToLatestError> {
    let dirs = connector_dirs(locator, names)?;
    let declarations = images.declarations;
    // Which family each connector belongs to, read first so the registry is asked once per
    // family.
    let mut family_of = Vec::new();
    let mut skipped = Vec::new();
    for dir in &dirs {
        let path = dir.join(crate::model::connector::METADATA_FILE);
        let family = match crate::model::metadata::load(&path) {
            Ok(meta) => match meta.base_image() {
                Some(b) => {
                    let family = declarations.family_by_repository(&b.value.repository);
                    // A named connector is reported by `upgrade_connector`.
                    if family.is_none() && names.is_empty() {
                        skipped.push(Skipped {
                            connector: folder_name(dir),
                            reason: format!(
                                "its base image {} is not a declared base image family",
                                b.value.name()
                            ),
                        });
                    }
                    family
                }
                None if insert => meta
                    .language()
                    .and_then(|l| declarations.family_for_language(l)),
                None => None,
            },
            // Reported by the edit when the connector was named; skipped otherwise.
            Err(_) => None,
        };
        family_of.push(family.map(|f| f.name.clone()));
    }
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    for name in family_of.iter().flatten() {
        if !latest.contains_key(name) {
            let family = declarations.family(name).map_err(BaseImageError::from)?;
            latest.insert(name.clone(), images.latest_release(family).await?);
        }
    }
    let mut results = Vec::new();
    for (dir, family) in dirs.iter().zip(&family_of) {
        let target = family.as_ref().and_then(|f| latest.get(f)).cloned();
        let named = !names.is_empty();
        if target.is_none() && !named {
            continue;
        }
        if let Some(r) = upgrade_connector(dir, |_| target, named, insert, dry_run)? {
            results.push(r);
        }
    }
    Ok((results, skipped))
}

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("`{reference}` cannot be used as a base image: {reason}")]
    NotPinned { reference: String, reason: String },
    #[error(transparent)]
    BadReference(#[from] ImageRefError),
    #[error(transparent)]
    Edit(#[from] EditError),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
}

#[derive(Debug, Serialize)]
pub struct UpgradeResult {
    pub connector: String,
    pub path: PathBuf,
    pub old: Option<String>,
    pub new: String,
    pub changed: bool,
    /// Why a connector the user named was not moved; such a run fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_alone: Option<String>,
}

impl UpgradeResult {
    /// Whether every named connector was moved (or was already there).
    pub fn all_done(results: &[UpgradeResult]) -> bool {
        results.iter().all(|r| r.left_alone.is_none())
    }
}

/// What a named connector that is not moved reports; nothing for one found by a search.
fn left_alone(
    named: bool,
    dir: &Path,
    path: PathBuf,
    old: Option<String>,
    reason: String,
) -> Option<UpgradeResult> {
    named.then(|| UpgradeResult {
        connector: folder_name(dir),
        path,
        new: old.clone().unwrap_or_default(),
        old,
        changed: false,
        left_alone: Some(reason),
    })
}

/// Points connectors' `baseImage` at `reference` (digest-pinned). Connectors already on a
/// base image of the same repository are updated; others only with `insert`, and connectors
/// on another image family are left alone.
pub fn upgrade_base_image(
    locator: &ConnectorLocator,
    names: &[String],
    reference: &str,
    insert: bool,
    dry_run: bool,
) -> Result<Vec<UpgradeResult>, UpgradeError> {
    let target = ImageRef::parse(reference)?;
    if target.digest.is_none() {
        return Err(UpgradeError::NotPinned {
            reference: reference.into(),
            reason: "it has no @sha256: digest".into(),
        });
    }
    let dirs = connector_dirs(locator, names)?;
    let mut results = Vec::new();
    for dir in dirs {
        let target = |_: Option<&ImageRef>| Some(reference.to_string());
        if let Some(r) = upgrade_connector(&dir, target, !names.is_empty(), insert, dry_run)? {
            results.push(r);
        }
    }
    Ok(results)
}

/// The named connectors' folders, or every connector's when no name is given.
pub fn connector_dirs(
    locator: &ConnectorLocator,
    names: &[String],
) -> Result<Vec<PathBuf>, DiscoveryError> {
    if names.is_empty() {
        return Ok(locator.all());
    }
    names.iter().map(|n| locator.locate(n)).collect()
}

/// Sets one connector's `baseImage` to what `target` answers for its current base image
/// (`None`: leave it). Connectors on another image family than the target's are left alone,
/// and connectors without the key too unless `insert`. `named`: the user asked for this
/// connector, so a metadata.yaml that does not parse is an error rather than skipped.
pub fn upgrade_connector(
    dir: &Path,
    target: impl FnOnce(Option<&ImageRef>) -> Option<String>,
    named: bool,
    insert: bool,
    dry_run: bool,
) -> Result<Option<UpgradeResult>, UpgradeError> {
    let path = dir.join(crate::model::connector::METADATA_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| EditError::Read {
        path: path.clone(),
        source,
    })?;
    // A file that does not parse is reported by the edit below; one whose current base
    // belongs to another family is not ours to move.
    let reference = match crate::model::metadata::parse(&path, &text) {
        Ok(meta) => {
            let current = meta.base_image().map(|b| &b.value);
            let old = current.map(ToString::to_string);
            let no_key = || {
                "it has no `data.connectorBuildOptions.baseImage`; --set-if-not-exists adds one"
                    .to_string()
            };
            let Some(reference) = target(current) else {
                let reason = match current {
                    None if !insert => no_key(),
                    None => "its `language:` tag has no base image family".into(),
                    Some(c) => format!(
                        "its base image {} is not a declared base image family",
                        c.name()
                    ),
                };
                return Ok(left_alone(named, dir, path, old, reason));
            };
            let wanted = ImageRef::parse(&reference)?;
            match current {
                Some(current) if current.repository != wanted.repository => {
                    let reason = format!(
                        "its base image {} is in another repository than {}; only images of the same family are moved",
                        current.name(),
                        wanted.name()
                    );
                    return Ok(left_alone(named, dir, path, old, reason));
                }
                None if !insert => return Ok(left_alone(named, dir, path, old, no_key())),
                _ => {}
            }
            reference
        }
        Err(_) if !named => return Ok(None),
        Err(_) => target(None).unwrap_or_default(),
    };
    let (new_text, change) = edit::set_base_image(&path, &text, &reference, insert)?;
    if change != Change::Unchanged && !dry_run {
        edit::write_atomic(&path, new_text.as_bytes())?;
    }
    Ok(Some(UpgradeResult {
        connector: folder_name(dir),
        path,
        old: match &change {
            Change::Replaced { old } => Some(old.clone()),
            _ => None,
        },
        new: reference,
        changed: change != Change::Unchanged,
        left_alone: None,
    }))
}
