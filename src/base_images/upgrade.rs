//! `upgrade-base-image` without `--to`: each connector moves to the newest published release
//! of its family, digest-pinned, as read from the registry.
//!
//! A connector's family is the one whose repository its current `baseImage` is in (whatever
//! the registry); one without a `baseImage` gets the family of its `language:` tag, and only
//! with `--set-if-not-exists`. Connectors on an image that is no declared family are left
//! alone.

use std::collections::BTreeMap;

use super::{BaseImageError, BaseImages};
use crate::commands::{self, UpgradeError, UpgradeResult};
use crate::model::ConnectorLocator;

#[derive(Debug, thiserror::Error)]
pub enum UpgradeToLatestError {
    #[error(transparent)]
    Upgrade(#[from] UpgradeError),
    #[error(transparent)]
    BaseImage(#[from] BaseImageError),
}

impl From<crate::model::DiscoveryError> for UpgradeToLatestError {
    fn from(e: crate::model::DiscoveryError) -> Self {
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
    let dirs = commands::connector_dirs(locator, names)?;
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
                            connector: commands::display_name(&dir.to_string_lossy()),
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
        if let Some(r) = commands::upgrade_connector(dir, |_| target, named, insert, dry_run)? {
            results.push(r);
        }
    }
    Ok((results, skipped))
}
