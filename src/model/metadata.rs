//! `metadata.yaml`, read into typed values that remember where they came from.
//!
//! Only the fields the build needs are typed; every other key is left alone (the upstream
//! schema has many more and grows), but the ones we do read are checked strictly so a typo is
//! reported with its file and line instead of silently building the wrong thing.

use std::fmt;
use std::path::{Path, PathBuf};

use super::image_ref::{ImageRef, ImageRefError};
use super::yaml::{self, Document, Loc, Node};

/// A value read from the file with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub path: PathBuf,
    pub docker_repository: Located<String>,
    pub docker_image_tag: Located<String>,
    pub connector_type: Option<String>,
    pub support_level: Option<String>,
    pub name: Option<String>,
    /// All `data.tags`, e.g. `language:python`.
    pub tags: Vec<String>,
    pub build_options: Option<ConnectorBuildOptions>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorBuildOptions {
    pub base_image: Located<ImageRef>,
}

impl Metadata {
    /// The `language:*` tag's value (`python`, `low-code`, `manifest-only`, `java`, ...).
    pub fn language(&self) -> Option<&str> {
        self.tags.iter().find_map(|t| t.strip_prefix("language:"))
    }

    pub fn base_image(&self) -> Option<&Located<ImageRef>> {
        self.build_options.as_ref().map(|o| &o.base_image)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: invalid YAML: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{path}:{line}:{col}: the file is not UTF-8 text; save it as UTF-8")]
    NotUtf8 {
        path: PathBuf,
        line: usize,
        col: usize,
    },
    #[error("{path}: the file is empty (or only comments); it needs a `data:` mapping with at least `dockerRepository` and `dockerImageTag`")]
    Empty { path: PathBuf },
    #[error(
        "{path}:{line}: the file must be a mapping with a top-level `data:` key, found {found}"
    )]
    NotAMapping {
        path: PathBuf,
        line: usize,
        found: &'static str,
    },
    #[error("{path}:{line}: `{field}` is missing\nhint: {hint}")]
    Missing {
        path: PathBuf,
        line: usize,
        field: String,
        hint: &'static str,
    },
    #[error("{path}:{line}: `{field}` must be {expected}, found {found}")]
    WrongType {
        path: PathBuf,
        line: usize,
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{path}:{line}: unknown key `{key}` in `data.connectorBuildOptions`; the only allowed key is `baseImage` (as in the upstream metadata schema)")]
    UnknownBuildOption {
        path: PathBuf,
        line: usize,
        key: String,
    },
    #[error("{path}:{line}: `{field}` is `{value}`, {reason}")]
    Invalid {
        path: PathBuf,
        line: usize,
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("{path}:{line}: `{field}` is not a valid image reference")]
    BadImage {
        path: PathBuf,
        line: usize,
        field: &'static str,
        #[source]
        source: ImageRefError,
    },
}

impl MetadataError {
    pub fn path(&self) -> &Path {
        match self {
            MetadataError::Read { path, .. }
            | MetadataError::Syntax { path, .. }
            | MetadataError::NotUtf8 { path, .. }
            | MetadataError::Empty { path }
            | MetadataError::NotAMapping { path, .. }
            | MetadataError::Missing { path, .. }
            | MetadataError::WrongType { path, .. }
            | MetadataError::UnknownBuildOption { path, .. }
            | MetadataError::Invalid { path, .. }
            | MetadataError::BadImage { path, .. } => path,
        }
    }
}

pub fn load(path: &Path) -> Result<Metadata, MetadataError> {
    parse(path, &read_text(path)?)
}

/// The file as text; bytes that are not UTF-8 are reported with their line and column.
pub fn read_text(path: &Path) -> Result<String, MetadataError> {
    let bytes = std::fs::read(path).map_err(|source| MetadataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        MetadataError::NotUtf8 {
            path: path.to_path_buf(),
            line: good.iter().filter(|&&b| b == b'\n').count() + 1,
            // Valid UTF-8 up to here, so this counts characters.
            col: String::from_utf8_lossy(&good[line_start..]).chars().count() + 1,
        }
    })
}

pub fn parse(path: &Path, text: &str) -> Result<Metadata, MetadataError> {
    let doc = Document::parse(text).map_err(|e| MetadataError::Syntax {
        path: path.to_path_buf(),
        line: e.line,
        col: e.col,
        message: e.message,
    })?;
    let reader = Reader { path, doc: &doc };
    let Some(root) = doc.root() else {
        return Err(MetadataError::Empty {
            path: path.to_path_buf(),
        });
    };
    if yaml::entries(&doc, root).is_none() {
        return Err(MetadataError::NotAMapping {
            path: path.to_path_buf(),
            line: doc.loc(root).line,
            found: yaml::kind(root),
        });
    }
    let data = yaml::get(root, "data").ok_or_else(|| MetadataError::Missing {
        path: path.to_path_buf(),
        line: 1,
        field: "data".into(),
        hint: "connector metadata lives under a top-level `data:` mapping",
    })?;
    if yaml::entries(&doc, data).is_none() {
        return Err(reader.wrong_type(data, "data", "a mapping"));
    }

    let docker_repository = reader.required_string(
        data,
        "data",
        "dockerRepository",
        "set it to the image repository, e.g. `airbyte/source-foo`",
    )?;
    let docker_image_tag = reader.required_string(
        data,
        "data",
        "dockerImageTag",
        "set it to the connector version, e.g. `0.1.0`",
    )?;
    // The upstream schema wants a string: `dockerRepository: 42` would name an image `42`.
    if let Some(node) = yaml::get(data, "dockerRepository").filter(|n| !yaml::is_string(n)) {
        return Err(reader.wrong_type(node, "data.dockerRepository", "a string"));
    }
    // Both end up in image names and labels: checked here, where the line is known.
    match ImageRef::parse(&docker_repository.value) {
        Ok(r) if r.tag.is_none() && r.digest.is_none() => {}
        Ok(_) => {
            return Err(reader.invalid(
                &docker_repository,
                "data.dockerRepository",
                "an image repository without a tag or digest (the version is `dockerImageTag`), e.g. `airbyte/source-foo`".into(),
            ))
        }
        Err(e) => {
            // The error repeats the value; it is said once already.
            let e = e.to_string();
            let quoted = format!("`{}`: ", docker_repository.value);
            return Err(reader.invalid(
                &docker_repository,
                "data.dockerRepository",
                format!("not an image repository: {}", e.trim_start_matches(&quoted)),
            ));
        }
    }
    if !super::image_ref::valid_tag(&docker_image_tag.value) {
        return Err(reader.invalid(
            &docker_image_tag,
            "data.dockerImageTag",
            "not a valid image tag (up to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`), e.g. `0.1.0`".into(),
        ));
    }
    let connector_type = reader.optional_string(data, "data", "connectorType")?;
    let support_level = reader.optional_string(data, "data", "supportLevel")?;
    let name = reader.optional_string(data, "data", "name")?;

    let mut tags = Vec::new();
    if let Some(node) = yaml::get(data, "tags") {
        let Some(items) = yaml::sequence(node) else {
            return Err(reader.wrong_type(node, "data.tags", "a list of strings"));
        };
        for item in items {
            match yaml::scalar_text(&doc, item) {
                Some(s) => tags.push(s.into_owned()),
                None => return Err(reader.wrong_type(item, "data.tags[]", "a string")),
            }
        }
    }

    let build_options = match yaml::get(data, "connectorBuildOptions") {
        None => None,
        Some(node) => Some(reader.build_options(node)?),
    };

    Ok(Metadata {
        path: path.to_path_buf(),
        docker_repository,
        docker_image_tag,
        connector_type,
        support_level,
        name,
        tags,
        build_options,
    })
}

struct Reader<'d, 'a> {
    path: &'d Path,
    doc: &'d Document<'a>,
}

impl<'a> Reader<'_, 'a> {
    fn wrong_type(&self, node: &Node<'a>, field: &str, expected: &'static str) -> MetadataError {
        MetadataError::WrongType {
            path: self.path.to_path_buf(),
            line: self.doc.loc(node).line,
            field: field.to_string(),
            expected,
            found: yaml::kind(node),
        }
    }

    fn invalid(
        &self,
        value: &Located<String>,
        field: &'static str,
        reason: String,
    ) -> MetadataError {
        MetadataError::Invalid {
            path: self.path.to_path_buf(),
            line: value.loc.line,
            field,
            value: value.value.clone(),
            reason,
        }
    }

    fn required_string(
        &self,
        parent: &Node<'a>,
        parent_name: &str,
        key: &str,
        hint: &'static str,
    ) -> Result<Located<String>, MetadataError> {
        let Some(node) = yaml::get(parent, key) else {
            return Err(MetadataError::Missing {
                path: self.path.to_path_buf(),
                line: self.doc.loc(parent).line,
                field: format!("{parent_name}.{key}"),
                hint,
            });
        };
        let field = format!("{parent_name}.{key}");
        match yaml::scalar_text(self.doc, node) {
            Some(s) if !s.trim().is_empty() => Ok(Located {
                value: s.into_owned(),
                loc: self.doc.loc(node),
            }),
            Some(_) => Err(MetadataError::WrongType {
                path: self.path.to_path_buf(),
                line: self.doc.loc(node).line,
                field,
                expected: "a non-empty string",
                found: "an empty string",
            }),
            None => Err(self.wrong_type(node, &field, "a non-empty string")),
        }
    }

    fn optional_string(
        &self,
        parent: &Node<'a>,
        parent_name: &str,
        key: &str,
    ) -> Result<Option<String>, MetadataError> {
        match yaml::get(parent, key) {
            None => Ok(None),
            Some(node) => match yaml::scalar_text(self.doc, node) {
                Some(s) => Ok(Some(s.into_owned())),
                None => Err(self.wrong_type(node, &format!("{parent_name}.{key}"), "a string")),
            },
        }
    }

    fn build_options(&self, node: &Node<'a>) -> Result<ConnectorBuildOptions, MetadataError> {
        let Some(entries) = yaml::entries(self.doc, node) else {
            return Err(self.wrong_type(node, "data.connectorBuildOptions", "a mapping"));
        };
        if let Some((key, key_node, _)) = entries.iter().find(|(k, _, _)| k != "baseImage") {
            return Err(MetadataError::UnknownBuildOption {
                path: self.path.to_path_buf(),
                line: self.doc.loc(key_node).line,
                key: key.to_string(),
            });
        }
        let base = self.required_string(
            node,
            "data.connectorBuildOptions",
            "baseImage",
            "set it to a digest-pinned base image, e.g. `docker.io/airbyte/python-connector-base:1.0.0@sha256:...`",
        )?;
        let image = ImageRef::parse(&base.value).map_err(|source| MetadataError::BadImage {
            path: self.path.to_path_buf(),
            line: base.loc.line,
            field: "data.connectorBuildOptions.baseImage",
            source,
        })?;
        Ok(ConnectorBuildOptions {
            base_image: Located {
                value: image,
                loc: base.loc,
            },
        })
    }
}

impl fmt::Display for Located<String> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Metadata, MetadataError> {
        parse(Path::new("c/metadata.yaml"), text)
    }

    const GOOD: &str = "data:
  connectorType: source
  dockerImageTag: 0.1.0
  dockerRepository: airbyte/source-foo
  supportLevel: certified
  tags:
    - language:python
    - cdk:python
  unknownThing: {a: 1}
  connectorBuildOptions:
    baseImage: docker.io/airbyte/python-connector-base:1.1.0@sha256:bd98f6505c6764b1b5f99d3aedc23dfc9e9af631a62533f60eb32b1d3dbab20c
metadataSpecVersion: \"1.0\"
";

    #[test]
    fn reads_the_typed_fields() {
        let m = p(GOOD).unwrap();
        assert_eq!(m.docker_repository.value, "airbyte/source-foo");
        assert_eq!(m.docker_image_tag.value, "0.1.0");
        assert_eq!(m.connector_type.as_deref(), Some("source"));
        assert_eq!(m.support_level.as_deref(), Some("certified"));
        assert_eq!(m.language(), Some("python"));
        let base = m.base_image().unwrap();
        assert_eq!(base.value.repository, "airbyte/python-connector-base");
        assert_eq!(base.loc.line, 11);
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let cases: &[(&str, &str)] = &[
            ("", "c/metadata.yaml: the file is empty"),
            ("- a\n", "c/metadata.yaml:1: the file must be a mapping with a top-level `data:` key, found a list"),
            ("data:\n  dockerRepository: ''\n", "`data.dockerRepository` must be a non-empty string, found an empty string"),
            ("foo: 1\n", "c/metadata.yaml:1: `data` is missing"),
            ("data: 3\n", "`data` must be a mapping, found a number"),
            ("data:\n  dockerImageTag: 1.0.0\n", "c/metadata.yaml:2: `data.dockerRepository` is missing"),
            ("data:\n  dockerRepository: [a]\n  dockerImageTag: 1\n", "c/metadata.yaml:2: `data.dockerRepository` must be a non-empty string, found a list"),
            ("data:\n  dockerRepository: 42\n  dockerImageTag: 1\n", "c/metadata.yaml:2: `data.dockerRepository` must be a string, found a number"),
            ("data:\n  dockerRepository: a/b\n  dockerImageTag: 1\n  tags: x\n", "c/metadata.yaml:4: `data.tags` must be a list of strings"),
            ("data:\n  dockerRepository: a/b\n  dockerImageTag: 1\n  connectorBuildOptions:\n    baseImage: a/b:1\n    extra: 2\n",
             "c/metadata.yaml:6: unknown key `extra` in `data.connectorBuildOptions`"),
            ("data:\n  dockerRepository: a/b\n  dockerImageTag: 1\n  connectorBuildOptions:\n    baseImage: A/b:1\n",
             "c/metadata.yaml:5: `data.connectorBuildOptions.baseImage` is not a valid image reference"),
            ("data:\n  dockerRepository: a/b\n  dockerImageTag: 1\n  connectorBuildOptions: {}\n",
             "`data.connectorBuildOptions.baseImage` is missing"),
            ("data:\n  a: 'x\n", "c/metadata.yaml:"),
            ("data:\n  dockerRepository: Airbyte/Foo\n  dockerImageTag: 1\n",
             "c/metadata.yaml:2: `data.dockerRepository` is `Airbyte/Foo`, not an image repository"),
            ("data:\n  dockerRepository: airbyte/foo:1.0\n  dockerImageTag: 1\n",
             "`data.dockerRepository` is `airbyte/foo:1.0`, an image repository without a tag"),
            ("data:\n  dockerRepository: a/b\n  dockerImageTag: 0.1 beta\n",
             "c/metadata.yaml:3: `data.dockerImageTag` is `0.1 beta`, not a valid image tag"),
        ];
        for (text, needle) in cases {
            let err = p(text).unwrap_err().to_string();
            assert!(
                err.contains(needle),
                "{text:?}\n  got: {err}\n  want: {needle}"
            );
        }
    }

    #[test]
    fn numeric_tags_keep_their_spelling() {
        let m = p("data:\n  dockerRepository: a/b\n  dockerImageTag: 1.10\n").unwrap();
        assert_eq!(m.docker_image_tag.value, "1.10");
    }
}
