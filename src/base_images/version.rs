//! Semantic versions of base images (`1.2.0`, `1.3.0-rc.1`), ordered as semver orders them.
//!
//! Build metadata (`+...`) is refused: a version is also an image tag, and tags cannot hold `+`.

use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: Vec<PreId>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PreId {
    Num(u64),
    Alpha(String),
}

impl Version {
    pub fn parse(s: &str) -> Result<Version, String> {
        const FORM: &str = "expected MAJOR.MINOR.PATCH with an optional pre-release suffix, e.g. 1.2.0 or 1.3.0-rc.1";
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (s, None),
        };
        let nums: Vec<&str> = core.split('.').collect();
        if nums.len() != 3 {
            return Err(FORM.into());
        }
        let num = |n: &str| -> Result<u64, String> {
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(FORM.into());
            }
            if n.len() > 1 && n.starts_with('0') {
                return Err(format!("`{n}` has a leading zero"));
            }
            n.parse().map_err(|_| format!("`{n}` is too large"))
        };
        let mut ids = Vec::new();
        if let Some(pre) = pre {
            for id in pre.split('.') {
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    return Err(format!(
                        "pre-release `{pre}`: identifiers are letters, digits and `-`, separated by `.`"
                    ));
                }
                ids.push(if id.bytes().all(|b| b.is_ascii_digit()) {
                    PreId::Num(num(id)?)
                } else {
                    PreId::Alpha(id.to_string())
                });
            }
        }
        Ok(Version {
            major: num(nums[0])?,
            minor: num(nums[1])?,
            patch: num(nums[2])?,
            pre: ids,
            text: s.to_string(),
        })
    }

    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for PreId {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PreId::Num(a), PreId::Num(b)) => a.cmp(b),
            (PreId::Num(_), PreId::Alpha(_)) => Ordering::Less,
            (PreId::Alpha(_), PreId::Num(_)) => Ordering::Greater,
            (PreId::Alpha(a), PreId::Alpha(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for PreId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                // A release ranks above its pre-releases.
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn semver_precedence() {
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.2.0",
            "1.10.0",
            "2.0.0",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert!(v("1.0.0-rc.1").is_prerelease());
        assert!(!v("1.0.0").is_prerelease());
    }

    #[test]
    fn bad_versions_say_why() {
        for (bad, why) in [
            ("1.0", "MAJOR.MINOR.PATCH"),
            ("1.0.x", "MAJOR.MINOR.PATCH"),
            ("01.0.0", "leading zero"),
            ("1.0.0-", "pre-release"),
            ("1.0.0+build", "MAJOR.MINOR.PATCH"),
            ("1.0.0-rc..1", "pre-release"),
        ] {
            let e = Version::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
