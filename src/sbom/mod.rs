//! Software bills of materials for connector images: what an image holds, read from its layer
//! tars ([`Inventory`]), and that inventory as CycloneDX 1.5 JSON ([`cyclonedx`]).
//!
//! Pure logic: no engine, no network. The caller hands in the layer streams (as `docker save`
//! writes them, bottom layer first), the connector's identity and the lock's file hashes
//! ([`hashes_from_requirements`]); the result is a `serde_json::Value` that is the same for
//! the same inputs, byte for byte once written with [`to_bytes`].
//!
//! Parsing: Python `METADATA` files and the dpkg database are RFC 822-style headers, read with
//! `mailparse`; purls are written with `packageurl` (it knows each type's encoding rules). Only
//! the layer walk (whiteouts) and the pick of fields are written here: no crate applies OCI
//! whiteouts to a stream of tars.

mod cyclonedx;
mod inventory;
mod lock;

pub use cyclonedx::{cyclonedx, to_bytes, Subject, SPEC_VERSION};
pub use inventory::{DebianPackage, Inventory, License, OsRelease, PythonDistribution};
pub use lock::{hashes_from_requirements, LockHashes, Pin};

/// Reading an image's layers failed.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error("cannot read layer {layer} of the image as a tar stream")]
    Layer {
        /// 0-based, bottom layer first.
        layer: usize,
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests;
