//! The file hashes a lock records, from the pinned requirements the install step reads (the
//! `requirements.txt` scratch file of a locked install: `name==version \ --hash=sha256:...`).

use std::collections::BTreeMap;

use crate::python::poetry::names::{leading_name, normalize_name};
use crate::python::requirements::logical_lines;

/// A pinned distribution's version and the sha256 (hex) of every file the lock allows for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub version: String,
    pub sha256: Vec<String>,
}

/// By PEP 503-normalised name.
pub type LockHashes = BTreeMap<String, Pin>;

/// The `==` pins of a requirements text that carry `--hash=sha256:` options. Other lines
/// (ranges, URLs, unhashed pins, pip options) are skipped: they have no lock hashes.
pub fn hashes_from_requirements(text: &str) -> LockHashes {
    let mut out = LockHashes::new();
    for (_, line) in logical_lines(text) {
        let (requirement, options) = line
            .split_once("--")
            .map_or((line.as_str(), ""), |(r, o)| (r, o));
        let sha256: Vec<String> = options
            .split(|c: char| c.is_whitespace() || c == '=')
            .filter_map(|word| word.strip_prefix("sha256:"))
            .map(str::to_string)
            .collect();
        let Some((name, rest)) = leading_name(requirement) else {
            continue;
        };
        // After optional extras: `==version`, then a marker or nothing.
        let rest = rest.trim_start();
        let rest = match rest.strip_prefix('[') {
            Some(extras) => extras.split_once(']').map_or("", |(_, r)| r).trim_start(),
            None => rest,
        };
        let Some(version) = rest
            .strip_prefix("===")
            .or_else(|| rest.strip_prefix("=="))
            .map(|v| v.split(';').next().unwrap_or_default().trim())
        else {
            continue;
        };
        if sha256.is_empty() || version.is_empty() || version.contains([',', '*', ' ']) {
            continue;
        }
        out.insert(
            normalize_name(name),
            Pin {
                version: version.to_string(),
                sha256,
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_with_hashes() {
        let text = "# from uv.lock\n\
            Six==1.17.0 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n\
            colorama==0.4.6 ; sys_platform == 'win32' --hash sha256:cc\n\
            requests[socks]==2.32.0 --hash=sha256:dd\n\
            idna>=3 --hash=sha256:ee\n\
            unhashed==1.0\n\
            -r other.txt\n";
        let got = hashes_from_requirements(text);
        let pin = |v: &str, h: &[&str]| Pin {
            version: v.into(),
            sha256: h.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            got,
            LockHashes::from([
                ("six".into(), pin("1.17.0", &["aa", "bb"])),
                ("colorama".into(), pin("0.4.6", &["cc"])),
                ("requests".into(), pin("2.32.0", &["dd"])),
            ])
        );
    }
}
