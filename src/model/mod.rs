//! What the tool reads from a connectors repository: connector folders, their
//! `metadata.yaml`, and the image references inside.

pub mod connector;
pub mod dockerfile;
pub mod families;
pub mod files;
pub mod image_ref;
pub mod metadata;
pub mod toml_error;
pub mod version;
pub mod yaml;

pub use connector::{Connector, ConnectorKind, ConnectorLocator, DiscoveryError};
pub use image_ref::{Digest, ImageRef, ImageRefError};
pub use metadata::{Located, Metadata, MetadataError};
