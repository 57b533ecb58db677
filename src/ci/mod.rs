//! What CI needs from a run beyond the report: GitHub Actions' log commands and outputs
//! ([`github`]), buildx's metadata file ([`metadata`]), and splitting a fleet over a job
//! matrix ([`shard`]).

pub mod github;
pub mod metadata;
pub mod shard;
