//! Target platforms (`linux/amd64`, `linux/arm64`): names as OCI and Docker spell them, and
//! what each one means to Debian, uv and image tags.
//!
//! Written by hand: only two platforms are supported, and the mapping to Debian
//! architectures, uv targets and airbyte-ci's tag suffixes is this project's, not a crate's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A platform images are built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Platform {
    #[serde(rename = "linux/amd64")]
    LinuxAmd64,
    #[serde(rename = "linux/arm64")]
    LinuxArm64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown platform `{0}`\nhint: use linux/amd64 or linux/arm64 (several: --platform linux/amd64,linux/arm64)")]
pub struct UnknownPlatform(pub String);

impl Platform {
    pub const ALL: [Platform; 2] = [Platform::LinuxAmd64, Platform::LinuxArm64];

    /// `linux/arm64`.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::LinuxAmd64 => "linux/amd64",
            Platform::LinuxArm64 => "linux/arm64",
        }
    }

    /// The OCI/Go architecture (`arm64`), also Debian's name for it.
    pub fn arch(self) -> &'static str {
        match self {
            Platform::LinuxAmd64 => "amd64",
            Platform::LinuxArm64 => "arm64",
        }
    }

    /// What `uname -m` prints on it.
    pub fn machine(self) -> &'static str {
        match self {
            Platform::LinuxAmd64 => "x86_64",
            Platform::LinuxArm64 => "aarch64",
        }
    }

    /// Suffix of tags for a platform that is not the engine's (airbyte-ci's `dev-linux-arm64`).
    pub fn tag_suffix(self) -> String {
        format!("linux-{}", self.arch())
    }

    /// uv's `--python-platform` for a base image with glibc `major.minor`: the manylinux
    /// level of that glibc, capped at the newest uv names.
    pub fn uv_python_platform(self, glibc: (u32, u32)) -> String {
        // uv 0.13 knows manylinux_2_17 .. manylinux_2_40.
        let minor = if glibc.0 == 2 {
            glibc.1.clamp(17, 40)
        } else {
            17
        };
        format!("{}-manylinux_2_{minor}", self.machine())
    }

    /// The platform of an engine or image that reports `os` and `architecture` (Docker's
    /// `docker version` and image inspect use Go's names; `x86_64`/`aarch64` accepted too).
    pub fn from_os_arch(os: &str, arch: &str) -> Option<Platform> {
        if os != "linux" {
            return None;
        }
        match arch {
            "amd64" | "x86_64" => Some(Platform::LinuxAmd64),
            "arm64" | "aarch64" => Some(Platform::LinuxArm64),
            _ => None,
        }
    }

    /// Platforms from a comma-separated list, in order, without repeats.
    pub fn parse_list(text: &str) -> Result<Vec<Platform>, UnknownPlatform> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let p: Platform = part.parse()?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
        if out.is_empty() {
            return Err(UnknownPlatform(text.to_string()));
        }
        Ok(out)
    }
}

impl FromStr for Platform {
    type Err = UnknownPlatform;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "linux/amd64" | "amd64" => Ok(Platform::LinuxAmd64),
            "linux/arm64" | "linux/arm64/v8" | "arm64" | "aarch64" => Ok(Platform::LinuxArm64),
            other => Err(UnknownPlatform(other.to_string())),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_lists() {
        assert_eq!(
            Platform::parse_list("linux/amd64, linux/arm64,linux/arm64").unwrap(),
            vec![Platform::LinuxAmd64, Platform::LinuxArm64]
        );
        assert_eq!(
            "linux/arm64/v8".parse::<Platform>(),
            Ok(Platform::LinuxArm64)
        );
        let e = "linux/s390x".parse::<Platform>().unwrap_err().to_string();
        assert!(e.contains("linux/s390x") && e.contains("hint:"), "{e}");
        assert!(Platform::parse_list(" , ").is_err());
        assert_eq!(Platform::LinuxArm64.tag_suffix(), "linux-arm64");
        assert_eq!(
            Platform::from_os_arch("linux", "aarch64"),
            Some(Platform::LinuxArm64)
        );
    }

    #[test]
    fn uv_targets_follow_the_glibc() {
        assert_eq!(
            Platform::LinuxArm64.uv_python_platform((2, 36)),
            "aarch64-manylinux_2_36"
        );
        assert_eq!(
            Platform::LinuxAmd64.uv_python_platform((2, 12)),
            "x86_64-manylinux_2_17"
        );
    }
}
