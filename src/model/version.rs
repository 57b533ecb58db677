//! Semantic versions: connectors' `dockerImageTag` and base image families' versions, one
//! type on the `semver` crate, so both accept and order exactly what semver 2.0 does
//! (`1.0.0-rc.01` is refused everywhere: numeric pre-release identifiers have no leading
//! zeros).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a semantic version (MAJOR.MINOR.PATCH, optionally -PRERELEASE and +BUILD): {reason}")]
pub struct VersionError {
    pub text: String,
    pub reason: String,
}

/// A semantic version, displayed as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub semver::Version);

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, VersionError> {
        semver::Version::parse(text)
            .map(Version)
            .map_err(|e| VersionError {
                text: text.to_string(),
                reason: e.to_string(),
            })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Version {
    pub fn release(major: u64, minor: u64, patch: u64) -> Version {
        Version(semver::Version::new(major, minor, patch))
    }

    pub fn is_prerelease(&self) -> bool {
        !self.0.pre.is_empty()
    }

    pub fn has_build_metadata(&self) -> bool {
        !self.0.build.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
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
        assert!(v("1.0.0+b.7").has_build_metadata());
    }

    /// The two hand-written parsers this replaced disagreed on this one.
    #[test]
    fn rc_01_is_refused_as_semver_refuses_it() {
        let e = "1.0.0-rc.01".parse::<Version>().unwrap_err();
        assert!(e.reason.contains("leading zero"), "{e}");
    }

    #[test]
    fn bad_versions_say_why() {
        for (bad, why) in [
            ("1.0", "unexpected end of input"),
            ("1.0.x", "unexpected character"),
            ("01.0.0", "leading zero"),
            ("1.0.0-", "empty identifier"),
            ("1.0.0-rc..1", "empty identifier"),
            ("v1.2.3", "unexpected character"),
            ("", "empty string"),
        ] {
            let e = bad.parse::<Version>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains("is not a semantic version"), "{bad}: {e}");
        }
    }
}
