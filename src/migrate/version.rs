//! Connector versions (`dockerImageTag`): semantic versions and the bumps `bump-version` and
//! the migration apply, as airbyte-ci did them with Python's `semver`.

use std::fmt;
use std::str::FromStr;

/// How to change a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bump {
    Major,
    Minor,
    Patch,
    /// A release candidate: `1.2.3` -> `1.2.4-rc.1`, `1.2.4-rc.1` -> `1.2.4-rc.2`.
    Rc,
    /// `version:X.Y.Z`: exactly this version.
    To(Version),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("`{text}` is not a semantic version (MAJOR.MINOR.PATCH, optionally -PRERELEASE and +BUILD): {reason}")]
    Invalid { text: String, reason: String },
    #[error("`{text}` is not a bump: use major, minor, patch, rc or version:X.Y.Z")]
    UnknownBump { text: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// Dot-separated identifiers after `-`, e.g. `rc.1`.
    pub pre: Option<String>,
    /// After `+`; dropped by every bump, as semver does.
    pub build: Option<String>,
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, VersionError> {
        let invalid = |reason: &str| VersionError::Invalid {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let (rest, build) = match text.split_once('+') {
            Some((r, b)) => (r, Some(b)),
            None => (text, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (rest, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3 {
            return Err(invalid("it needs exactly three numbers separated by dots"));
        }
        let mut numbers = [0u64; 3];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(&format!("`{part}` is not a number")));
            }
            if part.len() > 1 && part.starts_with('0') {
                return Err(invalid(&format!("`{part}` has a leading zero")));
            }
            *slot = part
                .parse()
                .map_err(|_| invalid(&format!("`{part}` is too large")))?;
        }
        for (what, ids) in [("pre-release", pre), ("build metadata", build)] {
            if let Some(ids) = ids {
                let ok = ids.split('.').all(|id| {
                    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
                if !ok {
                    return Err(invalid(&format!(
                        "the {what} `{ids}` must be dot-separated [0-9A-Za-z-] identifiers"
                    )));
                }
            }
        }
        Ok(Version {
            major: numbers[0],
            minor: numbers[1],
            patch: numbers[2],
            pre: pre.map(str::to_string),
            build: build.map(str::to_string),
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        if let Some(build) = &self.build {
            write!(f, "+{build}")?;
        }
        Ok(())
    }
}

impl FromStr for Bump {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, VersionError> {
        match text {
            "major" => Ok(Bump::Major),
            "minor" => Ok(Bump::Minor),
            "patch" => Ok(Bump::Patch),
            "rc" => Ok(Bump::Rc),
            _ => match text.strip_prefix("version:") {
                Some(v) => Ok(Bump::To(v.parse()?)),
                None => Err(VersionError::UnknownBump {
                    text: text.to_string(),
                }),
            },
        }
    }
}

impl Version {
    fn release(major: u64, minor: u64, patch: u64) -> Version {
        Version {
            major,
            minor,
            patch,
            pre: None,
            build: None,
        }
    }

    /// The version after `bump`. major/minor/patch always increment and drop any
    /// pre-release, as Python's `semver` (and so airbyte-ci) did: `1.2.4-rc.1` -> patch ->
    /// `1.2.5`; releasing the candidate itself is `version:1.2.4`.
    pub fn bumped(&self, bump: &Bump) -> Version {
        match bump {
            Bump::Major => Version::release(self.major + 1, 0, 0),
            Bump::Minor => Version::release(self.major, self.minor + 1, 0),
            Bump::Patch => Version::release(self.major, self.minor, self.patch + 1),
            Bump::Rc => match &self.pre {
                None => Version {
                    pre: Some("rc.1".into()),
                    ..Version::release(self.major, self.minor, self.patch + 1)
                },
                Some(pre) => Version {
                    pre: Some(next_prerelease(pre)),
                    ..Version::release(self.major, self.minor, self.patch)
                },
            },
            Bump::To(v) => v.clone(),
        }
    }
}

/// `rc.1` -> `rc.2`, `beta` -> `beta.1`: the last numeric identifier goes up by one, or
/// `.1` is appended.
fn next_prerelease(pre: &str) -> String {
    let mut ids: Vec<String> = pre.split('.').map(str::to_string).collect();
    match ids.last().and_then(|id| id.parse::<u64>().ok()) {
        Some(n) => {
            if let Some(last) = ids.last_mut() {
                *last = (n + 1).to_string();
            }
        }
        None => ids.push("1".into()),
    }
    ids.join(".")
}

/// The version after applying `bump` to `current`.
pub fn bump(current: &str, bump: &Bump) -> Result<String, VersionError> {
    Ok(current.parse::<Version>()?.bumped(bump).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(current: &str, how: &str) -> String {
        bump(current, &how.parse().unwrap()).unwrap()
    }

    #[test]
    fn bumps_like_airbyte_ci() {
        assert_eq!(b("1.2.3", "patch"), "1.2.4");
        assert_eq!(b("1.2.3", "minor"), "1.3.0");
        assert_eq!(b("1.2.3", "major"), "2.0.0");
        assert_eq!(b("0.9.19", "patch"), "0.9.20");
        assert_eq!(b("1.2.3", "rc"), "1.2.4-rc.1");
        assert_eq!(b("1.2.4-rc.1", "rc"), "1.2.4-rc.2");
        assert_eq!(b("1.2.4-rc.9", "rc"), "1.2.4-rc.10");
        assert_eq!(b("1.2.4-beta", "rc"), "1.2.4-beta.1");
        assert_eq!(b("1.2.4-rc.1", "patch"), "1.2.5");
        assert_eq!(b("1.2.4-rc.1", "minor"), "1.3.0");
        assert_eq!(b("1.2.3+build.7", "patch"), "1.2.4");
        assert_eq!(b("1.2.4-rc.2", "version:1.2.4"), "1.2.4");
        assert_eq!(b("1.2.3", "version:3.0.0-rc.1"), "3.0.0-rc.1");
    }

    #[test]
    fn bad_input_is_an_error_that_says_why() {
        for (text, needle) in [
            ("1.2", "exactly three numbers"),
            ("1.2.x", "`x` is not a number"),
            ("01.2.3", "leading zero"),
            ("1.2.3-", "pre-release"),
            ("1.2.3-rc..1", "pre-release"),
            ("v1.2.3", "`v1` is not a number"),
            ("", "exactly three numbers"),
        ] {
            let err = text.parse::<Version>().unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        assert!("huge"
            .parse::<Bump>()
            .unwrap_err()
            .to_string()
            .contains("major, minor, patch, rc or version:X.Y.Z"));
        assert!("version:1.2"
            .parse::<Bump>()
            .unwrap_err()
            .to_string()
            .contains("`1.2` is not a semantic version"));
        assert!(bump("latest", &Bump::Patch).is_err());
    }
}
