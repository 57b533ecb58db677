//! The build procedure for manifest-only connectors (`language:manifest-only`), as a plan.
//!
//! As airbyte-ci's manifest-only step: the declarative base image (by digest), then
//! `manifest.yaml` and `components.py` (when present) written into the folder the CDK's
//! declarative runtime reads, owned by the image's user, as one layer without a container;
//! labels; the `spec` smoke test, which prints the manifest's own spec. Nothing else from the
//! folder enters the image, so the cache key is the two files' bytes and the base digest.
//!
//! The manifest is checked before anything is built (YAML, a mapping with `version` and
//! `spec`), and `components.py` is compiled by the hooks runner's embedded Python: the tool
//! already ships and starts that interpreter for build customizations, while a `python3` on
//! the host is not something the tool otherwise needs.

use std::path::{Path, PathBuf};

use super::context;
use super::python::{image_base, output_tag, PlanError, PlanOptions};
use super::{Action, BuildPlan, Owner, Step};
use crate::model::families::FamilyKind;
use crate::model::yaml::{self, Document};
use crate::model::Connector;

/// Where the declarative runtime looks for a connector's manifest (the CDK's
/// `source_declarative_manifest` run module checks this very path).
pub const MANIFEST_DIR: &str = "/airbyte/integration_code/source_declarative_manifest";
pub const MANIFEST_FILE: &str = "manifest.yaml";
pub const COMPONENTS_FILE: &str = "components.py";
/// The step that writes the two files.
pub const MANIFEST_STEP: &str = "copy manifest";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{dir}: no manifest.yaml; a `language:manifest-only` connector is its manifest\nhint: add manifest.yaml (the Connector Builder exports it), or fix the `language:` tag")]
    Missing { dir: PathBuf },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: not valid YAML: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error(
        "{path}: the manifest must be a mapping (with `version`, `spec` and `streams`), not {kind}"
    )]
    NotMapping { path: PathBuf, kind: &'static str },
    #[error("{path}: no `{key}` at the top level; {why}")]
    MissingKey {
        path: PathBuf,
        key: &'static str,
        why: &'static str,
    },
    #[error("{path}:{line}: {message}\nhint: the declarative runtime imports components.py when it loads the manifest; fix it so it compiles")]
    ComponentsSyntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: does not compile: {message}")]
    ComponentsInvalid { path: PathBuf, message: String },
    #[error("{path}: cannot check that it compiles with {runner}: {message}\nhint: build the hooks runner (`cargo build --bin connector-build-hooks`) or set CONNECTOR_BUILD_HOOKS_RUNNER")]
    Compiler {
        path: PathBuf,
        runner: PathBuf,
        message: String,
    },
}

/// The base image's user, which owns the files: the declarative family's (uid 1000, as
/// upstream's image), read from the declaration of the family the base belongs to.
fn manifest_owner(repository: &str) -> Owner {
    let user = super::python::declared_family(repository)
        .and_then(|f| f.versions.first())
        .map(|v| (v.decl.user.uid, v.decl.user.gid))
        .unwrap_or((1000, 1000));
    Owner {
        uid: user.0.into(),
        gid: user.1.into(),
    }
}

pub fn plan_manifest_only(
    connector: &Connector,
    opts: &PlanOptions,
) -> Result<BuildPlan, PlanError> {
    let output_tag = output_tag(connector, opts.tag.as_deref())?;
    let dir = &connector.dir;
    let Some(base_image) = connector.metadata.base_image() else {
        return Err(PlanError::NoBase { dir: dir.clone() });
    };
    let base = image_base(connector, base_image, FamilyKind::Declarative, opts)?;
    check_manifest(dir)?;
    let mut names = vec![MANIFEST_FILE];
    // Whether components.py compiles is checked by the hooks runner's Python before this
    // (hooks::check_components): planning runs no program.
    if dir.join(COMPONENTS_FILE).is_file() {
        names.push(COMPONENTS_FILE);
    }
    let owner = Some(manifest_owner(&base_image.value.repository));
    let files = names
        .iter()
        .map(|f| {
            let mut entry = context::file_entry(dir, f, f)?;
            entry.mode = 0o644;
            entry.owner = owner;
            Ok(entry)
        })
        .collect::<Result<Vec<_>, context::ContextError>>()?;
    let steps = vec![Step {
        name: MANIFEST_STEP.into(),
        action: Action::Files {
            dest: MANIFEST_DIR.into(),
            files,
        },
    }];
    Ok(super::connector_plan(
        connector,
        output_tag,
        base,
        steps,
        vec![],
    ))
}

/// `manifest.yaml` is YAML, a mapping, with `version` and `spec`: what the runtime needs
/// before it can answer anything.
pub fn check_manifest(dir: &Path) -> Result<(), ManifestError> {
    let path = dir.join(MANIFEST_FILE);
    if !path.is_file() {
        return Err(ManifestError::Missing {
            dir: dir.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Read {
        path: path.clone(),
        source,
    })?;
    let doc = Document::parse(&text).map_err(|e| ManifestError::Syntax {
        path: path.clone(),
        line: e.line,
        col: e.col,
        message: e.message,
    })?;
    let root = match doc.root() {
        Some(node) if yaml::kind(node) == "a mapping" => node,
        Some(node) => {
            return Err(ManifestError::NotMapping {
                path,
                kind: yaml::kind(node),
            })
        }
        None => {
            return Err(ManifestError::NotMapping {
                path,
                kind: "an empty file",
            })
        }
    };
    for (key, why) in [
        ("version", "it names the CDK version the manifest was written for (e.g. `version: 6.44.0`), and the runtime refuses a manifest without it"),
        ("spec", "it holds the connector's `connection_specification`, which the image prints for `spec`"),
    ] {
        if yaml::get(root, key).is_none() {
            return Err(ManifestError::MissingKey {
                path,
                key,
                why,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> Result<(), ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), text).unwrap();
        check_manifest(dir.path())
    }

    #[test]
    fn manifests_need_version_and_spec() {
        assert!(manifest("version: 6.44.0\nspec:\n  type: Spec\nstreams: []\n").is_ok());
        let e = manifest("spec:\n  type: Spec\n").unwrap_err().to_string();
        assert!(e.contains("no `version`"), "{e}");
        let e = manifest("version: 6.44.0\n").unwrap_err().to_string();
        assert!(e.contains("no `spec`"), "{e}");
        let e = manifest("version: [\n").unwrap_err().to_string();
        assert!(e.contains("not valid YAML"), "{e}");
        let e = manifest("- a\n").unwrap_err().to_string();
        assert!(e.contains("must be a mapping"), "{e}");
    }
}
