//! Outputs of commands that build customizations asked about (`stdout()`, `exit_code()`),
//! remembered by the command's cache key so a rebuild does not run them again.
//!
//! Kept in the user's cache folder rather than the engine: as an image label the output
//! would be inherited by every image built on that layer. An entry is only used while the
//! layer it belongs to is still cached in the engine.

use std::path::PathBuf;

use crate::engine::RunOutput;
use crate::plan::CacheKey;

/// Larger outputs are not worth a file; the command runs again.
const MAX_OUTPUT: usize = 1024 * 1024;

fn dir() -> Option<PathBuf> {
    Some(super::user_cache_dir()?.join("outputs"))
}

pub fn load(key: &CacheKey) -> Option<RunOutput> {
    let text = std::fs::read_to_string(dir()?.join(format!("{key}.json"))).ok()?;
    serde_json::from_str(&text).ok()
}

/// Best effort: a cache that cannot be written only costs a rerun.
pub fn store(key: &CacheKey, output: &RunOutput) {
    if output.stdout.len() + output.stderr.len() > MAX_OUTPUT {
        return;
    }
    let Some(dir) = dir() else { return };
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    if let Ok(text) = serde_json::to_vec(output) {
        let _ = crate::edit::write_atomic(&dir.join(format!("{key}.json")), &text);
    }
}
