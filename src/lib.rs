//! connector-build: builds container images for Airbyte-style Python connectors from their
//! `metadata.yaml`, without a Dockerfile per connector.
//!
//! - [`base_images`]: base image families: declare, build, check, publish, document
//! - [`model`]: what is read from a repository (metadata, image references, connector folders)
//! - [`python`]: how a Python project's dependencies are installed
//! - [`plan`]: the build plan, a plain value, and its cache keys
//! - [`engine`]: the Docker engine API
//! - [`build`]: runs a plan on an engine with caching
//! - [`bulk`]: many connectors over several engines, and the run report (JSON, Markdown, HTML)
//! - [`hooks`]: `build_customization.py`, run in the embedded-Python runner
//! - [`edit`]: layout-preserving edits of users' files
//! - [`report`]: progress events for whoever draws them
//! - [`commands`]: the operations the command line offers
//! - [`migrate`]: moving connectors off their Dockerfiles, and version bumps
//! - [`analyze`]: how the remaining Dockerfiles differ
//! - [`config`]: per-repository defaults from `connector-build.toml`
//! - [`select`]: choosing connectors (names, language, support level, git changes, queries)
//!
//! The binary (`src/main.rs`, `src/cli/`) parses arguments and draws progress.

pub mod analyze;
pub mod base_images;
pub mod bulk;
pub mod clock;
pub mod config;
pub mod edit;
pub mod engine;
pub mod error;
pub mod execute;
pub mod hooks;
pub mod migrate;
pub mod model;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod python;
pub mod report;
pub mod select;
