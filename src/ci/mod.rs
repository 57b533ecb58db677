//! What CI needs from a run beyond the report: GitHub Actions' log commands and outputs
//! ([`github`]), buildx's metadata file ([`metadata`]), and splitting a fleet over a job
//! matrix ([`shard`]).

pub mod github;
pub mod metadata;
pub mod shard;

use std::io::Write;
use std::path::Path;

/// Writes `body` to `path` through a temporary file beside it, so a reader never sees half
/// a file.
pub fn write_atomically(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(body)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
