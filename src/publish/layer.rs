//! Rewrites a layer the engine produced into a deterministic one: the same files give the
//! same bytes on any engine, at any time.
//!
//! - entries sorted by path (hard links after everything else, so their targets come first);
//! - modification times clamped to the epoch (`SOURCE_DATE_EPOCH`, else the connector's last
//!   commit time);
//! - numeric owners, modes, link targets and device numbers kept; user and group names,
//!   extended attributes and PAX records dropped;
//! - timestamp-based `.pyc` files get the clamped source time in their header, so they stay
//!   valid for the clamped `.py` and no install time is left in the layer;
//! - gzip with no name and no time in its header, at a fixed level.
//!
//! The digest of the uncompressed tar (the diff ID) and of the gzip stream (the blob) are
//! computed while writing.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use sha2::{Digest as _, Sha256};
use tar::EntryType;

use crate::model::image_ref::Digest;

use crate::engine::image_archive::Member;

/// A layer written by [`rewrite`]: a gzip file and its two digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub path: PathBuf,
    /// sha256 of the gzip file: the blob's digest.
    pub digest: Digest,
    /// sha256 of the tar: the config's `rootfs.diff_ids` entry.
    pub diff_id: Digest,
    pub size: u64,
}

struct Item {
    path: PathBuf,
    kind: EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: Option<PathBuf>,
    device: (u32, u32),
    /// Where the entry's data is in the saved file, and how long.
    data: Member,
}

/// Rewrites the layer tar at `layer` (in `saved`) to `out`, gzip-compressed.
pub fn rewrite(saved: &Path, layer: Member, epoch: u64, out: &Path) -> io::Result<Layer> {
    let mut items = read_items(saved, layer)?;
    // Hard links point at a path the extractor must have written already.
    items.sort_by(|a, b| {
        (
            a.kind == EntryType::Link,
            a.path.as_os_str().as_encoded_bytes(),
        )
            .cmp(&(
                b.kind == EntryType::Link,
                b.path.as_os_str().as_encoded_bytes(),
            ))
    });
    let file = File::create(out)?;
    let blob = Hashing::new(BufWriter::new(file));
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(blob, Compression::new(6));
    let mut builder = tar::Builder::new(Hashing::new(gz));
    let mut source = File::open(saved)?;
    for item in &items {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(item.kind);
        header.set_mode(item.mode);
        header.set_uid(item.uid);
        header.set_gid(item.gid);
        header.set_mtime(item.mtime.min(epoch));
        header.set_size(0);
        match item.kind {
            EntryType::Regular | EntryType::Continuous => {
                source.seek(SeekFrom::Start(item.data.offset))?;
                let mut reader = (&mut source).take(item.data.size);
                if is_pyc(&item.path) && item.data.size >= 16 {
                    let mut bytes = Vec::with_capacity(item.data.size as usize);
                    reader.read_to_end(&mut bytes)?;
                    clamp_pyc_time(&mut bytes, epoch);
                    header.set_size(bytes.len() as u64);
                    builder.append_data(&mut header, &item.path, bytes.as_slice())?;
                } else {
                    header.set_size(item.data.size);
                    builder.append_data(&mut header, &item.path, reader)?;
                }
            }
            EntryType::Symlink | EntryType::Link => {
                let target = item.link.clone().unwrap_or_default();
                builder.append_link(&mut header, &item.path, &target)?;
            }
            EntryType::Char | EntryType::Block => {
                header.set_device_major(item.device.0)?;
                header.set_device_minor(item.device.1)?;
                builder.append_data(&mut header, &item.path, io::empty())?;
            }
            _ => builder.append_data(&mut header, &item.path, io::empty())?,
        }
    }
    let raw = builder.into_inner()?;
    let (gz, diff_id) = raw.finish();
    let blob = gz.finish()?;
    let (mut file, digest) = blob.finish();
    file.flush()?;
    let size = file.get_ref().metadata()?.len();
    Ok(Layer {
        path: out.to_path_buf(),
        digest,
        diff_id,
        size,
    })
}

fn read_items(saved: &Path, layer: Member) -> io::Result<Vec<Item>> {
    let mut file = File::open(saved)?;
    file.seek(SeekFrom::Start(layer.offset))?;
    let mut archive = tar::Archive::new(file.take(layer.size));
    let mut items = Vec::new();
    for entry in archive.entries()? {
        let entry = entry?;
        let header = entry.header();
        let kind = header.entry_type();
        let path = entry.path()?.into_owned();
        if path.as_os_str().is_empty() || path == Path::new(".") || path == Path::new("./") {
            continue;
        }
        match kind {
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::Directory
            | EntryType::Symlink
            | EntryType::Link
            | EntryType::Char
            | EntryType::Block
            | EntryType::Fifo => {}
            other => {
                return Err(io::Error::other(format!(
                    "{}: entry type {other:?} is not supported in a layer",
                    path.display()
                )))
            }
        }
        items.push(Item {
            link: entry.link_name()?.map(|l| l.into_owned()),
            kind,
            mode: header.mode()?,
            uid: header.uid()?,
            gid: header.gid()?,
            mtime: header.mtime()?,
            // Only devices have meaningful numbers; other writers leave the fields blank.
            device: if matches!(kind, EntryType::Char | EntryType::Block) {
                (
                    header.device_major()?.unwrap_or(0),
                    header.device_minor()?.unwrap_or(0),
                )
            } else {
                (0, 0)
            },
            data: Member {
                offset: layer.offset + entry.raw_file_position(),
                size: entry.size(),
            },
            path,
        });
    }
    Ok(items)
}

fn is_pyc(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "pyc")
}

/// A PEP 552 `.pyc` header: magic (4), flags (4), then for flags 0 the source's mtime (4)
/// and size (4). Checked- and unchecked-hash files hold no time and are left alone.
fn clamp_pyc_time(bytes: &mut [u8], epoch: u64) {
    let flags = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if flags != 0 || bytes[2..4] != [0x0d, 0x0a] {
        return;
    }
    let mtime = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as u64;
    let clamped = mtime.min(epoch) as u32;
    bytes[8..12].copy_from_slice(&clamped.to_le_bytes());
}

/// A writer that hashes what goes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
        }
    }

    fn finish(self) -> (W, Digest) {
        let hex = hex::encode(self.hash.finalize());
        (
            self.inner,
            Digest::parse(&format!("sha256:{hex}")).expect("a sha256 digest"),
        )
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar with `entries` (path, mtime, uname) in the given order, as a saved-image member.
    fn layer_tar(dir: &Path, entries: &[(&str, u64, &str)]) -> (PathBuf, Member) {
        let path = dir.join("saved.tar");
        let mut b = tar::Builder::new(File::create(&path).unwrap());
        for (name, mtime, user) in entries {
            let mut h = tar::Header::new_gnu();
            let data: &[u8] = if name.ends_with(".pyc") {
                // magic for 3.11, flags 0, mtime, size, then code.
                &[
                    0xa7, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 3, 0, 0, 0, 1, 2,
                ]
            } else {
                b"hello"
            };
            h.set_size(data.len() as u64);
            h.set_mode(0o640);
            h.set_uid(1000);
            h.set_gid(1000);
            h.set_mtime(*mtime);
            h.set_username(user).unwrap();
            h.set_entry_type(EntryType::Regular);
            b.append_data(&mut h, name, data).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::Link);
        h.set_size(0);
        h.set_mode(0o640);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(0);
        b.append_link(&mut h, "a/0-link", "a/z").unwrap();
        b.finish().unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        (path, Member { offset: 0, size })
    }

    #[test]
    fn the_same_files_give_the_same_bytes_whatever_the_order_times_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let one = dir.path().join("1");
        let two = dir.path().join("2");
        std::fs::create_dir_all(&one).unwrap();
        std::fs::create_dir_all(&two).unwrap();
        let (p1, m1) = layer_tar(
            &one,
            &[("a/z", 2_000_000_000, "alice"), ("a/b.pyc", 5, "x")],
        );
        let (p2, m2) = layer_tar(&two, &[("a/b.pyc", 5, "bob"), ("a/z", 2_100_000_000, "y")]);
        let l1 = rewrite(&p1, m1, 1_700_000_000, &one.join("l.gz")).unwrap();
        let l2 = rewrite(&p2, m2, 1_700_000_000, &two.join("l.gz")).unwrap();
        assert_eq!(l1.digest, l2.digest);
        assert_eq!(l1.diff_id, l2.diff_id);
        assert_eq!(
            std::fs::read(&l1.path).unwrap(),
            std::fs::read(&l2.path).unwrap()
        );

        // What is in it: sorted, hard link last, times clamped, names gone, owners kept.
        let gz = flate2::read::GzDecoder::new(File::open(&l1.path).unwrap());
        let mut a = tar::Archive::new(gz);
        let mut seen = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            assert_eq!(h.username().unwrap(), Some(""));
            assert_eq!(
                (h.uid().unwrap(), h.gid().unwrap(), h.mode().unwrap()),
                (1000, 1000, 0o640)
            );
            let path = e.path().unwrap().display().to_string();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            if path == "a/b.pyc" {
                assert_eq!(h.mtime().unwrap(), 5, "older times are kept");
                assert_eq!(
                    &data[8..12],
                    &1_700_000_000u32.to_le_bytes(),
                    "pyc time clamped"
                );
            }
            if path == "a/z" {
                assert_eq!(h.mtime().unwrap(), 1_700_000_000);
            }
            seen.push(path);
        }
        assert_eq!(seen, ["a/b.pyc", "a/z", "a/0-link"]);
    }
}
