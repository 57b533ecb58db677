//! Reading a `docker save` stream saved to a file: its `manifest.json`, the image config and
//! where each layer's tar lies in the file, so layers are read in place (no extraction).
//!
//! Written here because `src/engine/image_archive.rs` (the `layers` branch) was not on main
//! yet; it should replace this reader once it lands.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read the saved image {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the saved image {path} is not what `docker save` writes: {message}")]
    Format { path: PathBuf, message: String },
}

/// A slice of the saved file: one member of the outer tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub offset: u64,
    pub size: u64,
}

#[derive(Debug)]
pub struct SavedImage {
    pub path: PathBuf,
    /// The image config as the engine wrote it.
    pub config: serde_json::Value,
    /// The layer tars (uncompressed), bottom first.
    pub layers: Vec<Member>,
}

#[derive(Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

impl SavedImage {
    pub fn read(path: &Path) -> Result<SavedImage, ArchiveError> {
        let io = |source| ArchiveError::Io {
            path: path.to_path_buf(),
            source,
        };
        let format = |message: String| ArchiveError::Format {
            path: path.to_path_buf(),
            message,
        };
        let mut members: HashMap<String, Member> = HashMap::new();
        // `docker save` writes a layer that occurs twice once, and a symlink for the other.
        let mut links: HashMap<String, String> = HashMap::new();
        let mut archive = tar::Archive::new(File::open(path).map_err(io)?);
        for entry in archive.entries().map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.path().map_err(io)?.to_string_lossy().into_owned();
            let name = name.trim_start_matches("./").to_string();
            if entry.header().entry_type().is_symlink() {
                if let Some(target) = entry.link_name().map_err(io)? {
                    let parent = Path::new(&name).parent().unwrap_or(Path::new(""));
                    let resolved = normalize(&parent.join(target));
                    links.insert(name, resolved);
                }
                continue;
            }
            members.insert(
                name,
                Member {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                },
            );
        }
        for (name, target) in links {
            if let Some(m) = members.get(&target).copied() {
                members.insert(name, m);
            }
        }
        let read = |name: &str| -> Result<Vec<u8>, ArchiveError> {
            let m = members
                .get(name)
                .ok_or_else(|| format(format!("it has no {name}")))?;
            let mut f = File::open(path).map_err(io)?;
            f.seek(SeekFrom::Start(m.offset)).map_err(io)?;
            let mut buf = Vec::with_capacity(m.size as usize);
            f.take(m.size).read_to_end(&mut buf).map_err(io)?;
            Ok(buf)
        };
        let manifest: Vec<ManifestEntry> = serde_json::from_slice(&read("manifest.json")?)
            .map_err(|e| format(format!("manifest.json: {e}")))?;
        let [entry] = manifest.as_slice() else {
            return Err(format(format!(
                "manifest.json lists {} images, not one",
                manifest.len()
            )));
        };
        let config = serde_json::from_slice(&read(&entry.config)?)
            .map_err(|e| format(format!("{}: {e}", entry.config)))?;
        let layers = entry
            .layers
            .iter()
            .map(|l| {
                members
                    .get(l.as_str())
                    .copied()
                    .ok_or_else(|| format(format!("manifest.json names {l}, which it lacks")))
            })
            .collect::<Result<_, _>>()?;
        Ok(SavedImage {
            path: path.to_path_buf(),
            config,
            layers,
        })
    }
}

/// `a/../b/./c` as `b/c`: where a relative symlink in the archive points.
fn normalize(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}
