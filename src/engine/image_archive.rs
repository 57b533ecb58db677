//! `docker save` streams read, `docker load` streams written.
//!
//! Written by hand over the `tar` crate: no maintained crate reads the engine's save format
//! (the classic `manifest.json` + `<id>/layer.tar` layout, and the OCI layout newer engines
//! add) and writes a load stream with chosen layers left out.
//!
//! Leaving layers out is what makes a load cheap: dockerd's loader (moby
//! `image/tarexport/load.go`) walks the config's `rootfs.diff_ids`, and for each one asks its
//! layer store for the chain id so far; a layer it already has is used without opening its
//! file. So a load stream needs the config and only the layer tars the engine lacks; the
//! manifest still names every layer's path (an absent file is never read). The
//! `load_skips_layers_the_engine_has` test checks this on the real engine.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum ImageArchiveError {
    #[error("cannot read the image archive")]
    Io(#[from] std::io::Error),
    #[error("the image archive's {file} is not valid: {message}")]
    Invalid { file: String, message: String },
    #[error("the image archive has no {0}")]
    Missing(String),
    #[error(
        "layer {path} of the image archive hashes to {actual}, but its config says {expected}"
    )]
    DiffIdMismatch {
        path: String,
        expected: String,
        actual: String,
    },
}

/// One entry of `manifest.json`, in the engine's spelling.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManifestEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

/// A layer tar taken out of a save stream, kept as a file in the archive's folder.
#[derive(Debug, Clone)]
pub struct LayerFile {
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    pub path: PathBuf,
    pub size: u64,
}

/// One image of a save stream: its raw config and its layers in order.
#[derive(Debug, Clone)]
pub struct SavedImage {
    /// The config exactly as saved (its sha256 is the image id).
    pub config: Vec<u8>,
    pub repo_tags: Vec<String>,
    pub layers: Vec<LayerFile>,
    /// The folder the layer files are in, removed when the last image of it goes.
    _dir: std::sync::Arc<tempfile::TempDir>,
}

impl SavedImage {
    /// The config parsed.
    pub fn config_json(&self) -> Result<serde_json::Value, ImageArchiveError> {
        serde_json::from_slice(&self.config).map_err(|e| ImageArchiveError::Invalid {
            file: "config".into(),
            message: e.to_string(),
        })
    }

    pub fn id(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(&self.config)))
    }
}

/// A save stream unpacked into a temporary folder (layer tars are large: never in memory).
pub struct ImageArchive {
    pub images: Vec<SavedImage>,
}

/// Copies `reader` into `out`, returning the `sha256:` digest and size of what went through.
fn copy_hashing(mut reader: impl Read, mut out: impl Write) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        size += n as u64;
    }
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
}

/// The diff ids in a config's `rootfs`.
pub fn diff_ids(config: &serde_json::Value) -> Vec<String> {
    config
        .pointer("/rootfs/diff_ids")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a `docker save` stream (classic or OCI layout) into `parent` (a temporary folder
/// under it, removed with the returned archive). Every layer is checked against its config's
/// diff id.
pub fn read_save(reader: impl Read, parent: &Path) -> Result<ImageArchive, ImageArchiveError> {
    let dir = std::sync::Arc::new(
        tempfile::Builder::new()
            .prefix("image-archive-")
            .tempdir_in(parent)?,
    );
    // Small files (manifest, configs, index) in memory; anything else to a file.
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    let mut files: HashMap<String, (PathBuf, String, u64)> = HashMap::new();
    let mut archive = tar::Archive::new(reader);
    for (n, entry) in archive.entries()?.enumerate() {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let size = entry.header().size()?;
        let metadata = name.ends_with(".json")
            || name.ends_with("/json")
            || name.ends_with("/VERSION")
            || matches!(name.as_str(), "repositories" | "oci-layout");
        if metadata {
            let mut bytes = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut bytes)?;
            small.insert(name, bytes);
        } else {
            let path = dir.path().join(format!("{n}.tar"));
            let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
            let (digest, size) = copy_hashing(&mut entry, file)?;
            files.insert(name, (path, digest, size));
        }
    }
    let manifest = small
        .get("manifest.json")
        .ok_or_else(|| ImageArchiveError::Missing("manifest.json".into()))?;
    let manifest: Vec<ManifestEntry> =
        serde_json::from_slice(manifest).map_err(|e| ImageArchiveError::Invalid {
            file: "manifest.json".into(),
            message: e.to_string(),
        })?;
    let mut images = Vec::new();
    for m in manifest {
        // In the OCI layout a config is a small blob without `.json`: found in either map.
        let config = match small.get(&m.config) {
            Some(c) => c.clone(),
            None => match files.get(&m.config) {
                Some((path, _, _)) => std::fs::read(path)?,
                None => return Err(ImageArchiveError::Missing(m.config.clone())),
            },
        };
        let parsed: serde_json::Value =
            serde_json::from_slice(&config).map_err(|e| ImageArchiveError::Invalid {
                file: m.config.clone(),
                message: e.to_string(),
            })?;
        let expected = diff_ids(&parsed);
        if expected.len() != m.layers.len() {
            return Err(ImageArchiveError::Invalid {
                file: m.config.clone(),
                message: format!(
                    "{} diff ids for {} layers in manifest.json",
                    expected.len(),
                    m.layers.len()
                ),
            });
        }
        let mut layers = Vec::new();
        for (path, diff_id) in m.layers.iter().zip(expected) {
            let (file, actual, size) = files
                .get(path)
                .ok_or_else(|| ImageArchiveError::Missing(path.clone()))?;
            if *actual != diff_id {
                return Err(ImageArchiveError::DiffIdMismatch {
                    path: path.clone(),
                    expected: diff_id,
                    actual: actual.clone(),
                });
            }
            layers.push(LayerFile {
                diff_id,
                path: file.clone(),
                size: *size,
            });
        }
        images.push(SavedImage {
            config,
            repo_tags: m.repo_tags.unwrap_or_default(),
            layers,
            _dir: dir.clone(),
        });
    }
    Ok(ImageArchive { images })
}

/// A layer of an image to load: its diff id and, when the engine lacks it, its tar.
#[derive(Debug, Clone)]
pub struct LoadLayer {
    pub diff_id: String,
    pub tar: Option<PathBuf>,
}

/// Writes a `docker load` stream of one image: `config` (whose `rootfs.diff_ids` must list
/// the layers in order), tagged `repo_tags`, with the tars of the layers that have one. A
/// layer without a tar must be one the engine has at that place in the chain.
pub fn write_load(
    out: impl Write,
    config: &[u8],
    repo_tags: &[String],
    layers: &[LoadLayer],
) -> Result<(), ImageArchiveError> {
    let parsed: serde_json::Value =
        serde_json::from_slice(config).map_err(|e| ImageArchiveError::Invalid {
            file: "config".into(),
            message: e.to_string(),
        })?;
    let listed = diff_ids(&parsed);
    let given: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    if listed != given {
        return Err(ImageArchiveError::Invalid {
            file: "config".into(),
            message: "rootfs.diff_ids differ from the layers given".into(),
        });
    }
    let config_name = format!("{}.json", hex::encode(Sha256::digest(config)));
    let layer_names: Vec<String> = layers
        .iter()
        .map(|l| format!("{}/layer.tar", l.diff_id.trim_start_matches("sha256:")))
        .collect();
    let manifest = serde_json::to_vec(&[ManifestEntry {
        config: config_name.clone(),
        repo_tags: (!repo_tags.is_empty()).then(|| repo_tags.to_vec()),
        layers: layer_names.clone(),
    }])
    .expect("a manifest serializes");

    let mut tar = tar::Builder::new(out);
    let header = |size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(0);
        h
    };
    for (layer, name) in layers.iter().zip(&layer_names) {
        if let Some(path) = &layer.tar {
            let file = std::fs::File::open(path)?;
            let size = file.metadata()?.len();
            tar.append_data(&mut header(size), name, file)?;
        }
    }
    tar.append_data(&mut header(config.len() as u64), &config_name, config)?;
    tar.append_data(
        &mut header(manifest.len() as u64),
        "manifest.json",
        manifest.as_slice(),
    )?;
    tar.into_inner()?.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer_tar(file: &str, contents: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(contents.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, file, contents).unwrap();
        b.into_inner().unwrap()
    }

    fn digest(bytes: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
    }

    #[test]
    fn load_stream_reads_back_with_only_given_layers() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (layer_tar("a", b"one"), layer_tar("b", b"two"));
        let b_path = dir.path().join("b.tar");
        std::fs::write(&b_path, &b).unwrap();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [digest(&a), digest(&b)]},
        }))
        .unwrap();
        let layers = [
            LoadLayer {
                diff_id: digest(&a),
                tar: None,
            },
            LoadLayer {
                diff_id: digest(&b),
                tar: Some(b_path),
            },
        ];
        let mut stream = Vec::new();
        write_load(&mut stream, &config, &["x:y".into()], &layers).unwrap();
        // The first layer is named in the manifest but absent: reading it back says so.
        let err = read_save(stream.as_slice(), dir.path()).err().unwrap();
        assert!(matches!(err, ImageArchiveError::Missing(p) if p.ends_with("/layer.tar")));

        // With both layers, it reads back whole and checked.
        let a_path = dir.path().join("a.tar");
        std::fs::write(&a_path, &a).unwrap();
        let mut full = layers.clone();
        full[0].tar = Some(a_path);
        let mut stream = Vec::new();
        write_load(&mut stream, &config, &["x:y".into()], &full).unwrap();
        let read = read_save(stream.as_slice(), dir.path()).unwrap();
        let image = &read.images[0];
        assert_eq!(image.config, config);
        assert_eq!(image.repo_tags, ["x:y"]);
        assert_eq!(image.layers[1].diff_id, digest(&b));
        assert_eq!(std::fs::read(&image.layers[1].path).unwrap(), b);
    }

    #[test]
    fn a_layer_that_does_not_match_its_diff_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = layer_tar("a", b"one");
        let path = dir.path().join("a.tar");
        std::fs::write(&path, &a).unwrap();
        let wrong = digest(b"something else");
        let config = serde_json::to_vec(&serde_json::json!({
            "rootfs": {"type": "layers", "diff_ids": [wrong]},
        }))
        .unwrap();
        let mut stream = Vec::new();
        write_load(
            &mut stream,
            &config,
            &[],
            &[LoadLayer {
                diff_id: wrong,
                tar: Some(path),
            }],
        )
        .unwrap();
        let err = read_save(stream.as_slice(), dir.path()).err().unwrap();
        assert!(matches!(err, ImageArchiveError::DiffIdMismatch { .. }));
    }
}
