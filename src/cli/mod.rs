//! The binary's half: arguments (`args`), their resolution into settings (`context`), one
//! file per command, progress drawing and exit statuses.

pub mod analyze;
pub mod args;
pub mod base_images;
pub mod build;
pub mod bump;
pub mod cache;
pub mod changes;
pub mod context;
pub mod exit;
pub mod list;
pub mod migrate;
pub mod plan;
pub mod progress;
pub mod publish;
pub mod report;
pub mod stdout;
pub mod upgrade;
