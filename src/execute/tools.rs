//! Host programs the build mounts into install steps (uv).
//!
//! A program reaches containers through a named volume per engine, filled once and marked
//! complete, so remote engines work as well as the local one and nothing is copied per build.

use std::path::{Path, PathBuf};

use crate::plan::canonical::sha256_hex;

/// Where the set-up installs uv (the static musl build, which runs in any base image).
pub const DEFAULT_UV: &str = "/var/lib/connector-build/tools/uv";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub name: String,
    pub identity: String,
    pub path: PathBuf,
}

impl Tool {
    /// The volume holding this program on an engine.
    pub fn volume(&self) -> String {
        format!(
            "connector-build-tool-{}-{}",
            self.name,
            &sha256_hex(self.identity.as_bytes())[..12]
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{path}: cannot run it to read its version; point --uv (or $CONNECTOR_BUILD_UV) at a working program, or pass --installer pip")]
    Run {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: `{name} --version` failed; is it a working {name} program?")]
    Version { path: PathBuf, name: String },
}

/// The programs available to this run.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    tools: Vec<Tool>,
}

impl Tools {
    pub fn none() -> Self {
        Tools::default()
    }

    /// Adds a program, identified by its `--version` line and file size.
    pub fn with(mut self, name: &str, path: &Path) -> Result<Self, ToolError> {
        let out = std::process::Command::new(path)
            .arg("--version")
            .output()
            .map_err(|source| ToolError::Run {
                path: path.to_path_buf(),
                source,
            })?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || version.is_empty() {
            return Err(ToolError::Version {
                path: path.to_path_buf(),
                name: name.into(),
            });
        }
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        self.tools.push(Tool {
            name: name.into(),
            identity: format!("{version}; {size} bytes"),
            path: path.to_path_buf(),
        });
        Ok(self)
    }

    pub fn get(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| t.name == name)
    }

    pub fn by_identity(&self, name: &str, identity: &str) -> Option<&Tool> {
        self.tools
            .iter()
            .find(|t| t.name == name && t.identity == identity)
    }
}

/// uv from `explicit`, `CONNECTOR_BUILD_UV`, the set-up's place, or PATH.
pub fn find_uv(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("CONNECTOR_BUILD_UV").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if Path::new(DEFAULT_UV).is_file() {
        return Some(PathBuf::from(DEFAULT_UV));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("uv"))
            .find(|p| p.is_file())
    })
}
