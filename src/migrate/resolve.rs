//! Which base image a migrated connector gets. The migration asks a [`BaseImageResolver`]:
//! [`Fixed`] for `--to`, [`LatestRelease`] for the newest published release of the
//! connector's base image family (what `upgrade-base-image` chooses).

use std::future::Future;
use std::pin::Pin;

use crate::base_images::BaseImages;
use crate::model::{Connector, ImageRef, ImageRefError};

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("`{reference}` cannot be a connector's base image: it has no @sha256: digest, so the same commit could build on a different base\nhint: pass a digest-pinned reference")]
    NotPinned { reference: String },
    #[error(transparent)]
    BadReference(#[from] ImageRefError),
    #[error("{connector}: no base image to migrate to: {reason}")]
    NoBaseImage { connector: String, reason: String },
    #[error("{connector}: cannot look up its base image")]
    Lookup {
        connector: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

pub type Resolved<'a> = Pin<Box<dyn Future<Output = Result<String, ResolveError>> + Send + 'a>>;

/// Answers the digest-pinned base image reference a connector should be built on.
pub trait BaseImageResolver: Send + Sync {
    fn resolve<'a>(&'a self, connector: &'a Connector) -> Resolved<'a>;
}

/// The same reference for every connector (`--to`).
#[derive(Debug, Clone)]
pub struct Fixed(pub String);

impl BaseImageResolver for Fixed {
    fn resolve<'a>(&'a self, _connector: &'a Connector) -> Resolved<'a> {
        Box::pin(async move { pinned(&self.0).map(|_| self.0.clone()) })
    }
}

/// `reference` parsed, refused unless it carries a digest.
pub fn pinned(reference: &str) -> Result<ImageRef, ResolveError> {
    let image = ImageRef::parse(reference)?;
    if image.digest.is_none() {
        return Err(ResolveError::NotPinned {
            reference: reference.to_string(),
        });
    }
    Ok(image)
}

/// The newest published release (not a pre-release) of the connector's family: the family of
/// its current `baseImage` when that is one, else the family for its `language:` tag.
pub struct LatestRelease<'a> {
    pub images: &'a BaseImages<'a>,
}

impl BaseImageResolver for LatestRelease<'_> {
    fn resolve<'a>(&'a self, connector: &'a Connector) -> Resolved<'a> {
        Box::pin(async move {
            let declarations = self.images.declarations;
            let meta = &connector.metadata;
            let family = meta
                .base_image()
                .and_then(|b| declarations.family_by_repository(&b.value.repository))
                .or_else(|| {
                    meta.language()
                        .and_then(|l| declarations.family_for_language(l))
                })
                .ok_or_else(|| ResolveError::NoBaseImage {
                    connector: connector.name.clone(),
                    reason: match meta.language() {
                        Some(l) => format!(
                            "no base image family is declared for `language:{l}`\nhint: pass --to"
                        ),
                        None => {
                            "it has no `language:` tag to choose a base image family by\nhint: pass --to"
                                .into()
                        }
                    },
                })?;
            self.images
                .latest_release(family)
                .await
                .map_err(|e| ResolveError::Lookup {
                    connector: connector.name.clone(),
                    source: Box::new(e),
                })
        })
    }
}
