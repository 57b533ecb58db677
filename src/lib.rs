//! connector-build: builds container images for Airbyte-style Python connectors from their
//! `metadata.yaml`, without a Dockerfile per connector.
//!
//! The pipeline, in the order a connector goes through it:
//!
//! - [`model`]: what is read from a repository: metadata, image references, versions,
//!   connector folders, Dockerfiles
//! - [`select`]: choosing connectors (names, language, support level, git changes, queries)
//! - [`python`]: how a Python project's dependencies are installed (Poetry, uv.lock, pylock)
//! - [`hooks`]: `build_customization.py`, run in the embedded-Python runner
//! - [`plan`]: the build plan, a plain value, and its cache keys
//! - [`pipeline`]: one connector from its name to its plan
//! - [`engine`]: the Docker engine API, and which engine to talk to
//! - [`execute`]: runs a plan on an engine with caching
//! - [`bulk`]: many connectors over several engines
//! - [`report`]: the run report (JSON, Markdown, HTML)
//! - [`fault`]: what kind of failure an error is (input, build, infrastructure) and where
//!   it points, so CI can retry or report
//! - [`ci`]: CI-native output (GitHub Actions), buildx-style metadata files, shards
//! - [`sbom`]: what an image holds (from its layer tars) as a CycloneDX SBOM
//!
//! Around it: [`base_images`] (families: declare, build, check, publish, document, upgrade),
//! [`migrate`] (off Dockerfiles; version bumps), [`analyze`] (how Dockerfiles differ),
//! [`edit`] (layout-preserving edits of users' files), [`config`] (`connector-build.toml`),
//! and the ground floor every layer may use: [`error`] (error text with hints), [`progress`]
//! (events for whoever draws them), [`platform`] (target platforms), [`clock`] (times as reports write them).
//!
//! The binary (`src/main.rs`, `src/cli/`) parses arguments, draws progress and prints.

pub mod analyze;
pub mod base_images;
pub mod bulk;
pub mod ci;
pub mod clock;
pub mod config;
pub mod edit;
pub mod engine;
pub mod error;
pub mod execute;
pub mod fault;
pub mod hooks;
pub mod migrate;
pub mod model;
pub mod pipeline;
pub mod plan;
pub mod platform;
pub mod progress;
pub mod publish;
pub mod python;
pub mod registry;
pub mod report;
pub mod sbom;
pub mod select;
