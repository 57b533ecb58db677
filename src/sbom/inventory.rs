//! What an image holds: its layers applied in order with OCI whiteouts, then the dpkg database,
//! every `*.dist-info/METADATA` and `os-release` read from the result.
//!
//! Only the files read here are kept while walking the layers (a few MB), never the image.
//! Legacy `*.egg-info` folders are not read: on these images they are Debian's own Python
//! packages, which the dpkg database lists already.

use std::collections::BTreeMap;
use std::io::Read;

use tar::EntryType;

use super::SbomError;

/// Everything found in an image, sorted (Debian by name and architecture, Python by path).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub os: Option<OsRelease>,
    pub debian: Vec<DebianPackage>,
    pub python: Vec<PythonDistribution>,
    /// Files found but not understood (a METADATA without a name), one line each.
    pub warnings: Vec<String>,
}

/// `ID` and `VERSION_ID` of `/etc/os-release` (or `/usr/lib/os-release`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsRelease {
    pub id: String,
    pub version_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DebianPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The source package, when it has another name (dpkg's `Source:` without its version).
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonDistribution {
    /// As declared in METADATA (not normalised).
    pub name: String,
    pub version: String,
    pub license: License,
    /// The `.dist-info` folder, absolute (`/usr/local/lib/python3.11/site-packages/x-1.dist-info`):
    /// two environments holding the same distribution are two entries.
    pub path: String,
}

/// A distribution's declared license: PEP 639's `License-Expression` when given (it then
/// replaces the others), else the `License` field and the `License ::` classifiers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct License {
    pub expression: Option<String>,
    pub text: Option<String>,
    /// Each classifier after `License :: `, e.g. `OSI Approved :: MIT License`.
    pub classifiers: Vec<String>,
}

const DPKG_STATUS: &str = "var/lib/dpkg/status";
const OS_RELEASE: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];

/// A file this module reads.
fn wanted(path: &str) -> bool {
    path == DPKG_STATUS
        || OS_RELEASE.contains(&path)
        || path
            .strip_suffix("/METADATA")
            .is_some_and(|dir| dir.ends_with(".dist-info"))
}

/// A tar path as a key: no leading `./` or `/`, no trailing `/`.
fn normal(path: &str) -> &str {
    let path = path.trim_start_matches("./").trim_start_matches('/');
    path.trim_end_matches('/')
}

/// Removes every file whose path starts with `prefix`.
fn remove_prefixed(files: &mut BTreeMap<String, Vec<u8>>, prefix: &str) {
    let doomed: Vec<String> = files
        .range(prefix.to_string()..)
        .map(|(k, _)| k)
        .take_while(|k| k.starts_with(prefix))
        .cloned()
        .collect();
    for k in doomed {
        files.remove(&k);
    }
}

/// Applies one layer to `files` (the wanted files of the layers below).
fn apply_layer(files: &mut BTreeMap<String, Vec<u8>>, layer: impl Read) -> std::io::Result<()> {
    // Whiteouts hide only what is below this layer, whatever their place in the tar: gather
    // the layer first, then apply hides, then its own files.
    let mut hidden: Vec<String> = Vec::new();
    let mut opaque: Vec<String> = Vec::new();
    let mut added: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut archive = tar::Archive::new(layer);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = normal(&raw);
        let (dir, base) = path.rsplit_once('/').unwrap_or(("", path));
        if base == ".wh..wh..opq" {
            opaque.push(dir.to_string());
            continue;
        }
        if let Some(name) = base.strip_prefix(".wh.") {
            hidden.push(if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            });
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        // Anything but a folder replaces what was below at its path, folder or not.
        hidden.push(path.to_string());
        if !wanted(path) {
            continue;
        }
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes)?;
                added.insert(path.to_string(), bytes);
            }
            EntryType::Link => {
                // A hard link to an earlier file of this layer (or, rarely, below).
                let target = entry
                    .link_name_bytes()
                    .map(|t| normal(&String::from_utf8_lossy(&t)).to_string());
                if let Some(bytes) = target.and_then(|t| added.get(&t).or(files.get(&t)).cloned()) {
                    added.insert(path.to_string(), bytes);
                }
            }
            // A symlinked file is read through its target's own entry (os-release), or not at all.
            _ => {}
        }
    }
    for path in &hidden {
        files.remove(path);
        remove_prefixed(files, &format!("{path}/"));
    }
    for dir in &opaque {
        remove_prefixed(
            files,
            &if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            },
        );
    }
    files.extend(added);
    Ok(())
}

impl Inventory {
    /// Reads the image's layer tars (uncompressed, bottom layer first) and lists what the
    /// resulting file system holds.
    pub fn from_layers<R: Read>(layers: impl IntoIterator<Item = R>) -> Result<Self, SbomError> {
        let mut files = BTreeMap::new();
        for (layer, stream) in layers.into_iter().enumerate() {
            apply_layer(&mut files, stream).map_err(|source| SbomError::Layer { layer, source })?;
        }
        Ok(Self::from_files(&files))
    }

    fn from_files(files: &BTreeMap<String, Vec<u8>>) -> Self {
        let mut inventory = Inventory {
            os: OS_RELEASE
                .iter()
                .find_map(|p| files.get(*p))
                .and_then(|b| os_release(&String::from_utf8_lossy(b))),
            ..Inventory::default()
        };
        if let Some(status) = files.get(DPKG_STATUS) {
            inventory.debian = dpkg_status(status, &mut inventory.warnings);
        }
        for (path, bytes) in files {
            let Some(dir) = path.strip_suffix("/METADATA") else {
                continue;
            };
            match metadata(bytes, format!("/{dir}")) {
                Ok(dist) => inventory.python.push(dist),
                Err(why) => inventory
                    .warnings
                    .push(format!("/{path}: {why}; not listed")),
            }
        }
        inventory.debian.sort();
        inventory.python.sort_by(|a, b| a.path.cmp(&b.path));
        inventory
    }
}

/// `KEY=value` lines, values optionally quoted.
fn os_release(text: &str) -> Option<OsRelease> {
    let field = |key: &str| {
        text.lines().find_map(|l| {
            let v = l.strip_prefix(key)?.strip_prefix('=')?;
            Some(v.trim().trim_matches(['"', '\'']).to_string())
        })
    };
    Some(OsRelease {
        id: field("ID")?,
        version_id: field("VERSION_ID"),
    })
}

/// The headers of an RFC 822-style paragraph, by lowercase key, folded lines joined.
fn headers(bytes: &[u8]) -> Result<(Vec<(String, String)>, usize), mailparse::MailParseError> {
    let (parsed, end) = mailparse::parse_headers(bytes)?;
    let fields = parsed
        .iter()
        .map(|h| {
            (
                h.get_key().to_ascii_lowercase(),
                h.get_value().trim().to_string(),
            )
        })
        .collect();
    Ok((fields, end))
}

fn first<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// The installed packages of a dpkg `status` file: those whose state is `installed` (so
/// `install ok installed` and `hold ok installed`, not a removed package's config files).
fn dpkg_status(bytes: &[u8], warnings: &mut Vec<String>) -> Vec<DebianPackage> {
    let mut packages = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (fields, end) = match headers(rest) {
            Ok(parsed) => parsed,
            Err(e) => {
                warnings.push(format!(
                    "/{DPKG_STATUS}: {e}; the packages after it are not listed"
                ));
                break;
            }
        };
        rest = &rest[end.max(1).min(rest.len())..];
        let installed = first(&fields, "status")
            .is_some_and(|s| s.split_whitespace().nth(2) == Some("installed"));
        let (Some(name), Some(version), true) = (
            first(&fields, "package"),
            first(&fields, "version"),
            installed,
        ) else {
            continue;
        };
        packages.push(DebianPackage {
            name: name.to_string(),
            version: version.to_string(),
            architecture: first(&fields, "architecture").unwrap_or("all").to_string(),
            // `Source: glibc (2.36-9)` names the source package and, when it differs, its version.
            source: first(&fields, "source")
                .and_then(|s| s.split_whitespace().next())
                .map(str::to_string),
        });
    }
    packages
}

/// A distribution from its METADATA file (core metadata, any version).
fn metadata(bytes: &[u8], path: String) -> Result<PythonDistribution, String> {
    let (fields, _) = headers(bytes).map_err(|e| e.to_string())?;
    let name = first(&fields, "name").ok_or("no Name field")?;
    let version = first(&fields, "version").ok_or("no Version field")?;
    let expression = first(&fields, "license-expression").map(str::to_string);
    let license = if expression.is_some() {
        License {
            expression,
            ..License::default()
        }
    } else {
        License {
            expression: None,
            // Old setuptools wrote `UNKNOWN` for "not declared".
            text: first(&fields, "license")
                .filter(|t| *t != "UNKNOWN")
                .map(str::to_string),
            classifiers: fields
                .iter()
                .filter(|(k, _)| k == "classifier")
                .filter_map(|(_, v)| v.strip_prefix("License :: "))
                .map(str::to_string)
                .collect(),
        }
    };
    Ok(PythonDistribution {
        name: name.to_string(),
        version: version.to_string(),
        license,
        path,
    })
}
