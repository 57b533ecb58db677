//! `docker save` streams read, `docker load` streams written.
//!
//! Written by hand over the `tar` crate: no maintained crate reads the engine's save format
//! (the classic `manifest.json` + `<id>/layer.tar` layout, and the OCI layout newer engines
//! add) and writes a load stream with chosen layers left out.
//!
//! A save stream is written to one file as it is read, and each member's place in that file
//! is recorded (and each layer hashed against its diff id on the way): layers are then read
//! in place, by offset, never extracted, so a saved image costs its size on disk once. Both
//! publishing (layers rewritten, SBOM) and rebases (layers loaded on a new base) read them so.
//!
//! Leaving layers out is what makes a load cheap: dockerd's loader (moby
//! `image/tarexport/load.go`) walks the config's `rootfs.diff_ids`, and for each one asks its
//! layer store for the chain id so far; a layer it already has is used without opening its
//! file. So a load stream needs the config and only the layer tars the engine lacks; the
//! manifest still names every layer's path (an absent file is never read). The
//! `load_skips_layers_the_engine_has` test checks this on the real engine.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Take, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fault::FaultClass;

const HINT: &str = "hint: the engine's `docker save` output was not understood; run `docker save IMAGE | tar -t` to see what it wrote";

#[derive(Debug, thiserror::Error)]
pub enum ImageArchiveError {
    #[error("cannot write the saved image to {path}\nhint: check the free space under {}", path.parent().unwrap_or(path).display())]
    Save {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the saved image {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the saved image {path} is not what `docker save` writes: its {member} {message}\n{HINT}"
    )]
    Invalid {
        path: PathBuf,
        member: String,
        message: String,
    },
    #[error("the saved image {path} has no {member}\n{HINT}")]
    Missing { path: PathBuf, member: String },
    #[error(
        "layer {member} of the saved image {path} hashes to {actual}, but its config says {expected}\nhint: the image changed while it was saved, or the engine's store is damaged; save it again"
    )]
    DiffIdMismatch {
        path: PathBuf,
        member: String,
        expected: String,
        actual: String,
    },
    #[error("the config of the image to load is not valid: {message}")]
    LoadConfig { message: String },
    #[error("cannot read the layer tar {path} for a load stream")]
    LoadLayer {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the load stream to the engine")]
    Load(#[source] std::io::Error),
}

impl ImageArchiveError {
    /// Reading or writing is a fault a retry may fix; what the engine wrote, or was given, is
    /// not.
    pub fn class(&self) -> FaultClass {
        match self {
            Self::Save { .. } | Self::Read { .. } | Self::LoadLayer { .. } | Self::Load(_) => {
                FaultClass::Infrastructure
            }
            Self::Invalid { .. }
            | Self::Missing { .. }
            | Self::DiffIdMismatch { .. }
            | Self::LoadConfig { .. } => FaultClass::Build,
        }
    }
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

/// A slice of a saved image's file: one member of the outer tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub offset: u64,
    pub size: u64,
}

/// A layer of a saved image: its diff id and where its tar lies in the saved file.
#[derive(Debug, Clone)]
pub struct SavedLayer {
    /// `sha256:<hex>` of the uncompressed tar (checked while it was saved).
    pub diff_id: String,
    pub data: Member,
}

/// One image of a save stream: its raw config and its layers in order, bottom first.
#[derive(Debug, Clone)]
pub struct SavedImage {
    /// The config exactly as saved (its sha256 is the image id).
    pub config: Vec<u8>,
    pub repo_tags: Vec<String>,
    pub layers: Vec<SavedLayer>,
    /// The saved file the layers are in.
    pub path: PathBuf,
    /// The file is removed when the last image of it goes.
    _file: Arc<tempfile::TempPath>,
}

impl SavedImage {
    /// The config parsed.
    pub fn config_json(&self) -> Result<serde_json::Value, ImageArchiveError> {
        serde_json::from_slice(&self.config).map_err(|e| ImageArchiveError::Invalid {
            path: self.path.clone(),
            member: "image config".into(),
            message: format!("is not JSON: {e}"),
        })
    }

    pub fn id(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(&self.config)))
    }

    /// A layer's tar, read in place.
    pub fn open_layer(&self, layer: &SavedLayer) -> Result<Take<File>, ImageArchiveError> {
        open_member(&self.path, layer.data)
    }

    /// A layer's tar for a load stream, read in place; valid while this image lives.
    pub fn layer_tar(&self, layer: &SavedLayer) -> LayerTar {
        LayerTar {
            path: self.path.clone(),
            data: Some(layer.data),
        }
    }
}

/// The images of a save stream, sharing one saved file.
pub struct ImageArchive {
    pub images: Vec<SavedImage>,
}

fn open_member(path: &Path, m: Member) -> Result<Take<File>, ImageArchiveError> {
    let read = |source| ImageArchiveError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read)?;
    file.seek(SeekFrom::Start(m.offset)).map_err(read)?;
    Ok(file.take(m.size))
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

/// A reader that writes what it reads to `out`; a failed write is kept apart, so it is not
/// taken for a failed read.
struct Tee<R, W> {
    inner: R,
    out: W,
    write_error: Option<std::io::Error>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            let message = e.to_string();
            self.write_error = Some(e);
            return Err(std::io::Error::other(message));
        }
        Ok(n)
    }
}

/// What a walk over the outer tar found: each member's place and digest, and symlinks.
#[derive(Default)]
struct Members {
    found: HashMap<String, (Member, String)>,
    /// `docker save` writes a layer that occurs twice once, and a symlink for the other.
    links: HashMap<String, String>,
}

fn scan(reader: impl Read) -> std::io::Result<Members> {
    let mut members = Members::default();
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let kind = entry.header().entry_type();
        if kind.is_symlink() {
            if let Some(target) = entry.link_name()? {
                let parent = Path::new(&name).parent().unwrap_or(Path::new(""));
                let target = normalize(&parent.join(target));
                members.links.insert(name, target);
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let offset = entry.raw_file_position();
        let expected = entry.size();
        let (digest, size) = hash(&mut entry)?;
        if size != expected {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{name} ends after {size} of its {expected} bytes"),
            ));
        }
        members
            .found
            .insert(name, (Member { offset, size }, digest));
    }
    Ok(members)
}

/// The `sha256:` digest and size of what `reader` gives.
fn hash(mut reader: impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
}

/// `a/../b/./c` as `b/c`: where a relative symlink in the archive points.
fn normalize(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                parts.pop();
            }
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

/// Reads a `docker save` stream (classic or OCI layout) into a file under `parent` (removed
/// with the last image returned). Every layer is checked against its config's diff id.
pub fn read_save(reader: impl Read, parent: &Path) -> Result<ImageArchive, ImageArchiveError> {
    let (file, temp) = tempfile::Builder::new()
        .prefix("image-")
        .suffix(".tar")
        .tempfile_in(parent)
        .map_err(|source| ImageArchiveError::Save {
            path: parent.join("image-*.tar"),
            source,
        })?
        .into_parts();
    let path = temp.to_path_buf();
    let mut tee = Tee {
        inner: reader,
        out: BufWriter::with_capacity(1 << 20, file),
        write_error: None,
    };
    // The stream is read to its end (padding after the tar's end too), so the engine's side
    // finishes and the file is the whole stream.
    let walked = scan(&mut tee).and_then(|m| {
        std::io::copy(&mut tee, &mut std::io::sink())?;
        Ok(m)
    });
    let members = match (walked, tee.write_error.take()) {
        (_, Some(source)) => return Err(ImageArchiveError::Save { path, source }),
        (Err(source), None) => return Err(ImageArchiveError::Read { path, source }),
        (Ok(m), None) => m,
    };
    tee.out
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_data())
        .map_err(|source| ImageArchiveError::Save {
            path: path.clone(),
            source,
        })?;
    images_of(&members, &path, Arc::new(temp)).map(|images| ImageArchive { images })
}

fn images_of(
    members: &Members,
    path: &Path,
    file: Arc<tempfile::TempPath>,
) -> Result<Vec<SavedImage>, ImageArchiveError> {
    let missing = |member: &str| ImageArchiveError::Missing {
        path: path.to_path_buf(),
        member: member.to_string(),
    };
    let invalid = |member: &str, message: String| ImageArchiveError::Invalid {
        path: path.to_path_buf(),
        member: member.to_string(),
        message,
    };
    let lookup = |name: &str| {
        let mut name = name.to_string();
        // A link to a link is followed too, a few times (a cycle ends as missing).
        for _ in 0..8 {
            match members.links.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        members.found.get(&name).ok_or_else(|| missing(&name))
    };
    // Small members (manifest, configs) read whole.
    let read = |name: &str| -> Result<Vec<u8>, ImageArchiveError> {
        let (m, _) = lookup(name)?;
        let mut bytes = Vec::with_capacity(m.size as usize);
        open_member(path, *m)?
            .read_to_end(&mut bytes)
            .map_err(|source| ImageArchiveError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(bytes)
    };
    let manifest: Vec<ManifestEntry> = serde_json::from_slice(&read("manifest.json")?)
        .map_err(|e| invalid("manifest.json", format!("is not valid: {e}")))?;
    let mut images = Vec::new();
    for m in manifest {
        // In the OCI layout a config is a blob without `.json`: any member will do.
        let config = read(&m.config)?;
        let parsed: serde_json::Value = serde_json::from_slice(&config)
            .map_err(|e| invalid(&m.config, format!("is not JSON: {e}")))?;
        let expected = diff_ids(&parsed);
        if expected.len() != m.layers.len() {
            return Err(invalid(
                &m.config,
                format!(
                    "lists {} diff ids for {} layers in manifest.json",
                    expected.len(),
                    m.layers.len()
                ),
            ));
        }
        let mut layers = Vec::new();
        for (name, diff_id) in m.layers.iter().zip(expected) {
            let (data, actual) = lookup(name)?;
            if *actual != diff_id {
                return Err(ImageArchiveError::DiffIdMismatch {
                    path: path.to_path_buf(),
                    member: name.clone(),
                    expected: diff_id,
                    actual: actual.clone(),
                });
            }
            layers.push(SavedLayer {
                diff_id,
                data: *data,
            });
        }
        images.push(SavedImage {
            config,
            repo_tags: m.repo_tags.unwrap_or_default(),
            layers,
            path: path.to_path_buf(),
            _file: file.clone(),
        });
    }
    Ok(images)
}

/// Where a layer's tar is: a whole file, or a slice of one (a saved image's member).
#[derive(Debug, Clone)]
pub struct LayerTar {
    pub path: PathBuf,
    /// `None`: the whole file.
    pub data: Option<Member>,
}

impl From<PathBuf> for LayerTar {
    fn from(path: PathBuf) -> Self {
        LayerTar { path, data: None }
    }
}

/// A layer of an image to load: its diff id and, when the engine lacks it, its tar.
#[derive(Debug, Clone)]
pub struct LoadLayer {
    pub diff_id: String,
    pub tar: Option<LayerTar>,
}

/// A reader that keeps its own failure, so a failed read of a layer is told from a failed
/// write of the stream.
struct Noted<R> {
    inner: R,
    error: Option<std::io::Error>,
}

impl<R: Read> Read for Noted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let message = e.to_string();
            self.error = Some(e);
            std::io::Error::other(message)
        })
    }
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
        serde_json::from_slice(config).map_err(|e| ImageArchiveError::LoadConfig {
            message: format!("it is not JSON: {e}"),
        })?;
    let listed = diff_ids(&parsed);
    let given: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    if listed != given {
        return Err(ImageArchiveError::LoadConfig {
            message: "its rootfs.diff_ids differ from the layers given".into(),
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
        let Some(source) = &layer.tar else { continue };
        let unreadable = |source_error| ImageArchiveError::LoadLayer {
            path: source.path.clone(),
            source: source_error,
        };
        let (reader, size) = match source.data {
            Some(m) => (open_member(&source.path, m)?, m.size),
            None => {
                let file = File::open(&source.path).map_err(unreadable)?;
                let size = file.metadata().map_err(unreadable)?.len();
                (file.take(size), size)
            }
        };
        let mut reader = Noted {
            inner: reader,
            error: None,
        };
        if let Err(e) = tar.append_data(&mut header(size), name, &mut reader) {
            return Err(match reader.error {
                Some(source) => unreadable(source),
                None => ImageArchiveError::Load(e),
            });
        }
    }
    tar.append_data(&mut header(config.len() as u64), &config_name, config)
        .map_err(ImageArchiveError::Load)?;
    tar.append_data(
        &mut header(manifest.len() as u64),
        "manifest.json",
        manifest.as_slice(),
    )
    .map_err(ImageArchiveError::Load)?;
    tar.into_inner()
        .and_then(|mut out| out.flush())
        .map_err(ImageArchiveError::Load)?;
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

    fn read_layer(image: &SavedImage, i: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        image
            .open_layer(&image.layers[i])
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
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
                tar: Some(b_path.into()),
            },
        ];
        let mut stream = Vec::new();
        write_load(&mut stream, &config, &["x:y".into()], &layers).unwrap();
        // The first layer is named in the manifest but absent: reading it back says so.
        let err = read_save(stream.as_slice(), dir.path()).err().unwrap();
        assert!(
            matches!(&err, ImageArchiveError::Missing { member, .. } if member.ends_with("/layer.tar")),
            "{err}"
        );
        assert!(err.to_string().contains(dir.path().to_str().unwrap()));

        // With both layers, it reads back whole and checked, each layer in place.
        let a_path = dir.path().join("a.tar");
        std::fs::write(&a_path, &a).unwrap();
        let mut full = layers.clone();
        full[0].tar = Some(a_path.into());
        let mut stream = Vec::new();
        write_load(&mut stream, &config, &["x:y".into()], &full).unwrap();
        let read = read_save(stream.as_slice(), dir.path()).unwrap();
        let image = &read.images[0];
        assert_eq!(image.config, config);
        assert_eq!(image.repo_tags, ["x:y"]);
        assert_eq!(image.layers[1].diff_id, digest(&b));
        assert_eq!(read_layer(image, 0), a);
        assert_eq!(read_layer(image, 1), b);
        assert_eq!(
            std::fs::read(&image.path).unwrap(),
            stream,
            "the file is the stream"
        );

        // A load stream made from the saved image's members in place is the same stream.
        let in_place: Vec<LoadLayer> = image
            .layers
            .iter()
            .map(|l| LoadLayer {
                diff_id: l.diff_id.clone(),
                tar: Some(image.layer_tar(l)),
            })
            .collect();
        let mut again = Vec::new();
        write_load(&mut again, &config, &["x:y".into()], &in_place).unwrap();
        assert_eq!(again, stream);

        // The saved file goes with the last image of it.
        let path = image.path.clone();
        drop(read);
        assert!(!path.exists());
    }

    #[test]
    fn symlinked_layers_are_read_through_their_link() {
        // Older engines save a layer that occurs twice once, and a relative symlink for the
        // other occurrence.
        let dir = tempfile::tempdir().unwrap();
        let a = layer_tar("a", b"one");
        let config = serde_json::to_vec(&serde_json::json!({
            "rootfs": {"type": "layers", "diff_ids": [digest(&a), digest(&a)]},
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!([{
            "Config": "c.json", "RepoTags": null, "Layers": ["1/layer.tar", "2/layer.tar"],
        }]))
        .unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(a.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "1/layer.tar", a.as_slice()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "2/layer.tar", "../1/layer.tar")
            .unwrap();
        for (name, bytes) in [("c.json", &config), ("manifest.json", &manifest)] {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, bytes.as_slice()).unwrap();
        }
        let stream = b.into_inner().unwrap();
        let read = read_save(stream.as_slice(), dir.path()).unwrap();
        let image = &read.images[0];
        assert_eq!(image.layers[0].data, image.layers[1].data);
        assert_eq!(read_layer(image, 1), a);
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
                tar: Some(path.into()),
            }],
        )
        .unwrap();
        let err = read_save(stream.as_slice(), dir.path()).err().unwrap();
        assert!(matches!(err, ImageArchiveError::DiffIdMismatch { .. }));
        assert_eq!(err.class(), FaultClass::Build);
    }

    #[test]
    fn a_truncated_stream_is_a_read_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = layer_tar("a", &[7u8; 4096]);
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(a.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "1/layer.tar", a.as_slice()).unwrap();
        let stream = b.into_inner().unwrap();
        let err = read_save(&stream[..1024], dir.path()).err().unwrap();
        assert!(matches!(err, ImageArchiveError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("image-"), "{err}");
        assert_eq!(err.class(), FaultClass::Infrastructure);
    }
}
