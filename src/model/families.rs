//! Base image declarations: `base-images/<family>.toml` (one family per language, its
//! versions newest first) and `base-images/roots.toml` (the root images they build on).
//!
//! Declarative files rather than Rust code so that a release is a reviewable diff of data:
//! a new `[[versions]]` block. The tool embeds the repository's files at compile time;
//! `--declarations DIR` (or `base_images` in connector-build.toml) reads another folder.
//! Every value that ends up in a shell command is checked here against a strict character
//! set, so plans never need to trust the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::version::{Version, VersionError};
use crate::model::ImageRef;

pub const ROOTS_FILE: &str = "roots.toml";

/// The repository's declarations, compiled in: (file name, contents).
pub const EMBEDDED: &[(&str, &str)] = &[
    (ROOTS_FILE, include_str!("../../base-images/roots.toml")),
    // In file name order, as `load` reads a folder.
    ("java.toml", include_str!("../../base-images/java.toml")),
    ("python.toml", include_str!("../../base-images/python.toml")),
    (
        "source-declarative-manifest.toml",
        include_str!("../../base-images/source-declarative-manifest.toml"),
    ),
];

/// What the tool says when it names the embedded declarations.
pub const EMBEDDED_DIR: &str = "base-images";

#[derive(Debug, thiserror::Error)]
pub enum DeclarationError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("no base image family `{name}`; declared: {known}")]
    UnknownFamily { name: String, known: String },
    #[error("{path}: family `{family}` has no version `{version}`; declared: {known}")]
    UnknownVersion {
        path: PathBuf,
        family: String,
        version: String,
        known: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FamilyFile {
    family: String,
    #[serde(default)]
    kind: FamilyKind,
    repository: String,
    #[serde(default)]
    languages: Vec<String>,
    versions: Vec<VersionDecl>,
}

/// What a family's images hold, which decides how a version is built and checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FamilyKind {
    /// A Python interpreter with pip and poetry, on a root image.
    #[default]
    Python,
    /// The declarative (low-code) runtime: the Airbyte CDK on another family's image, with
    /// the `source-declarative-manifest` entrypoint that runs a connector's `manifest.yaml`.
    Declarative,
    /// A Java runtime and `/airbyte/base.sh`, which runs a Gradle distribution.
    Java,
}

/// Another family's version a family builds on (instead of a root image).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyBase {
    pub family: String,
    pub version: String,
}

/// One version of a family, as written. Which fields a version needs depends on its
/// family's `kind` (checked when read): python needs `root`, `python`, `pip`, `poetry`;
/// declarative needs `base`, `python` and `cdk`; java needs `root` and `java`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionDecl {
    pub version: String,
    pub changelog: String,
    #[serde(default)]
    pub root: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<FamilyBase>,
    #[serde(default)]
    pub python: String,
    #[serde(default)]
    pub pip: String,
    #[serde(default)]
    pub poetry: String,
    /// The `airbyte-cdk` release installed (declarative families).
    #[serde(default)]
    pub cdk: String,
    /// The Java feature release the image runs, e.g. `17` (java families).
    #[serde(default)]
    pub java: String,
    #[serde(default)]
    pub timezone: String,
    #[serde(default)]
    pub system_packages: Vec<String>,
    #[serde(default)]
    pub system_tools: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub user: UserDecl,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDecl {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    #[serde(default)]
    pub owns: Vec<String>,
    #[serde(default)]
    pub cannot_write: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Family {
    pub name: String,
    pub kind: FamilyKind,
    /// Repository path without a registry, e.g. `airbyte/python-connector-base`.
    pub repository: String,
    pub languages: Vec<String>,
    /// Newest first.
    pub versions: Vec<FamilyVersion>,
    /// The file it was read from, for messages.
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct FamilyVersion {
    pub version: Version,
    pub decl: VersionDecl,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RootDecl {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    debootstrap: Option<Debootstrap>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Debootstrap {
    pub suite: String,
    #[serde(default = "minbase")]
    pub variant: String,
    pub include: Vec<String>,
    pub mirror: String,
    pub security_mirror: String,
    pub revision: u32,
}

fn minbase() -> String {
    "minbase".into()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub name: String,
    pub description: String,
    pub source: RootSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSource {
    /// An image in a registry, pinned by digest.
    Reference(ImageRef),
    /// Built on each machine with debootstrap and pushed as `repository:tag`.
    Debootstrap {
        repository: String,
        tag: String,
        recipe: Debootstrap,
    },
}

#[derive(Debug, Clone)]
pub struct Declarations {
    /// Where they came from, for messages: a folder, or `base-images` for the embedded ones.
    pub dir: PathBuf,
    pub families: Vec<Family>,
    pub roots: BTreeMap<String, Root>,
}

impl Declarations {
    /// The declarations compiled into the tool.
    pub fn embedded() -> Result<Declarations, DeclarationError> {
        let files = EMBEDDED
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect();
        Self::parse(Path::new(EMBEDDED_DIR), files)
    }

    /// `roots.toml` and every other `*.toml` (one family each) in `dir`.
    pub fn load(dir: &Path) -> Result<Declarations, DeclarationError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| DeclarationError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        let entries = std::fs::read_dir(dir).map_err(|source| DeclarationError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut files = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".toml") && entry.path().is_file() {
                files.push((name, read(&entry.path())?));
            }
        }
        files.sort();
        Self::parse(dir, files)
    }

    /// The embedded declarations, or those in `dir` when given.
    pub fn from(dir: Option<&Path>) -> Result<Declarations, DeclarationError> {
        match dir {
            Some(d) => Self::load(d),
            None => Self::embedded(),
        }
    }

    fn parse(dir: &Path, files: Vec<(String, String)>) -> Result<Declarations, DeclarationError> {
        let roots_text = files
            .iter()
            .find(|(n, _)| n == ROOTS_FILE)
            .map(|(_, t)| t.as_str())
            .ok_or_else(|| DeclarationError::Invalid {
                path: dir.join(ROOTS_FILE),
                message: "missing: the root images the families build on are declared there".into(),
            })?;
        let roots = parse_roots(&dir.join(ROOTS_FILE), roots_text)?;
        let mut families: Vec<Family> = Vec::new();
        for (name, text) in files.iter().filter(|(n, _)| n != ROOTS_FILE) {
            let path = dir.join(name);
            let family = parse_family(&path, text, &roots)?;
            let stem = name.trim_end_matches(".toml");
            if family.name != stem {
                return Err(invalid(
                    &path,
                    format!(
                        "`family` is `{}` but the file is {name}; name the file {}.toml",
                        family.name, family.name
                    ),
                ));
            }
            if let Some(other) = families.iter().find(|f| f.repository == family.repository) {
                return Err(invalid(
                    &path,
                    format!(
                        "repository `{}` is already family `{}`'s",
                        family.repository, other.name
                    ),
                ));
            }
            families.push(family);
        }
        for family in &families {
            for v in &family.versions {
                let Some(base) = &v.decl.base else { continue };
                let found = families
                    .iter()
                    .find(|f| f.name == base.family)
                    .filter(|f| f.kind != FamilyKind::Declarative)
                    .and_then(|f| {
                        f.versions
                            .iter()
                            .find(|x| x.version.to_string() == base.version)
                    });
                if found.is_none() {
                    return Err(invalid(
                        &family.path,
                        format!(
                            "versions `{}`: `base` is {} {}, which is not a declared version of a python or java family",
                            v.version, base.family, base.version
                        ),
                    ));
                }
            }
        }
        Ok(Declarations {
            dir: dir.to_path_buf(),
            families,
            roots,
        })
    }

    pub fn family(&self, name: &str) -> Result<&Family, DeclarationError> {
        self.families
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| DeclarationError::UnknownFamily {
                name: name.into(),
                known: self.family_names(),
            })
    }

    fn family_names(&self) -> String {
        let names: Vec<&str> = self.families.iter().map(|f| f.name.as_str()).collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    /// The family whose images live in `repository` (any registry).
    pub fn family_by_repository(&self, repository: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.repository == repository)
    }

    /// The family for connectors tagged `language:<language>`.
    pub fn family_for_language(&self, language: &str) -> Option<&Family> {
        self.families
            .iter()
            .find(|f| f.languages.iter().any(|l| l == language))
    }

    pub fn root(&self, name: &str) -> Option<&Root> {
        self.roots.get(name)
    }
}

impl FamilyKind {
    pub fn name(self) -> &'static str {
        match self {
            FamilyKind::Python => "python",
            FamilyKind::Declarative => "declarative",
            FamilyKind::Java => "java",
        }
    }
}

impl Family {
    /// The newest version, or the one asked for.
    pub fn version(&self, version: Option<&str>) -> Result<&FamilyVersion, DeclarationError> {
        let found = match version {
            None => self.versions.first(),
            Some(v) => self.versions.iter().find(|x| x.version.to_string() == v),
        };
        found.ok_or_else(|| DeclarationError::UnknownVersion {
            path: self.path.clone(),
            family: self.name.clone(),
            version: version.unwrap_or("(latest)").into(),
            known: self
                .versions
                .iter()
                .map(|v| v.version.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// The version declared right before `version` (the previous release), if any.
    pub fn previous(&self, version: &Version) -> Option<&FamilyVersion> {
        self.versions.iter().find(|v| v.version < *version)
    }

    /// `repository:version`, the tag a build of it gets in the engine.
    pub fn local_tag(&self, version: &Version) -> String {
        format!("{}:{version}", self.repository)
    }

    /// `registry/repository:version`.
    pub fn registry_tag(&self, registry: &str, version: &Version) -> String {
        format!("{registry}/{}:{version}", self.repository)
    }
}

fn invalid(path: &Path, message: String) -> DeclarationError {
    DeclarationError::Invalid {
        path: path.to_path_buf(),
        message,
    }
}

fn toml_error(path: &Path, e: toml::de::Error) -> DeclarationError {
    // toml's messages carry the line and column.
    invalid(path, e.to_string().trim_end().to_string())
}

fn parse_roots(path: &Path, text: &str) -> Result<BTreeMap<String, Root>, DeclarationError> {
    let decls: BTreeMap<String, RootDecl> =
        toml::from_str(text).map_err(|e| toml_error(path, e))?;
    let mut roots = BTreeMap::new();
    for (name, d) in decls {
        let at = |msg: String| invalid(path, format!("[{name}]: {msg}"));
        check_chars(&name, NAME_CHARS).map_err(|m| at(format!("the name {m}")))?;
        let source = match (&d.reference, &d.debootstrap) {
            (Some(reference), None) => {
                if d.repository.is_some() || d.tag.is_some() {
                    return Err(at(
                        "`repository` and `tag` are for debootstrap roots; a `reference` root is used where it is".into(),
                    ));
                }
                let image = ImageRef::parse(reference).map_err(|e| at(format!("`reference`: {e}")))?;
                if image.digest.is_none() {
                    return Err(at(format!(
                        "`reference` `{reference}` has no @sha256: digest; pin it, so every machine builds on the same root"
                    )));
                }
                RootSource::Reference(image)
            }
            (None, Some(recipe)) => {
                let (Some(repository), Some(tag)) = (&d.repository, &d.tag) else {
                    return Err(at(
                        "a debootstrap root needs `repository` and `tag`: where it is pushed".into(),
                    ));
                };
                ImageRef::parse(&format!("example.com/{repository}:{tag}"))
                    .map_err(|e| at(format!("`repository`/`tag`: {e}")))?;
                for (field, value) in [
                    ("suite", &recipe.suite),
                    ("variant", &recipe.variant),
                ] {
                    check_chars(value, NAME_CHARS)
                        .map_err(|m| at(format!("`debootstrap.{field}` {m}")))?;
                }
                for p in &recipe.include {
                    check_chars(p, PACKAGE_CHARS)
                        .map_err(|m| at(format!("`debootstrap.include`: `{p}` {m}")))?;
                }
                for (field, url) in [
                    ("mirror", &recipe.mirror),
                    ("security_mirror", &recipe.security_mirror),
                ] {
                    if !(url.starts_with("http://") || url.starts_with("https://"))
                        || url.chars().any(|c| c.is_whitespace() || c == '\'' || c == '"')
                    {
                        return Err(at(format!(
                            "`debootstrap.{field}` `{url}` is not an http(s) URL"
                        )));
                    }
                }
                RootSource::Debootstrap {
                    repository: repository.clone(),
                    tag: tag.clone(),
                    recipe: recipe.clone(),
                }
            }
            _ => {
                return Err(at(
                    "declare exactly one of `reference` (a digest-pinned image) or `[debootstrap]` (a recipe)".into(),
                ))
            }
        };
        roots.insert(
            name.clone(),
            Root {
                name,
                description: d.description.unwrap_or_default(),
                source,
            },
        );
    }
    Ok(roots)
}

/// Letters, digits and `._-`: names, suites, users.
const NAME_CHARS: &str = "._-";
/// Debian package names: lowercase letters, digits, `.+-`.
const PACKAGE_CHARS: &str = ".+-";
/// Absolute paths in the image.
const PATH_CHARS: &str = "/._-";
/// Zoneinfo names, e.g. `Etc/UTC`, `America/Argentina/Buenos_Aires`.
const ZONE_CHARS: &str = "/_+-";

fn check_chars(value: &str, extra: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is empty".into());
    }
    match value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || extra.contains(*c)))
    {
        Some(c) => Err(format!(
            "has `{c}`; only letters, digits and `{extra}` are allowed"
        )),
        None => Ok(()),
    }
}

fn exact_version(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.split('.').count() >= 2
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
        && value.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{value}` is not an exact version (like 23.2.1): the check compares it with what the image reports"
        ))
    }
}

fn parse_family(
    path: &Path,
    text: &str,
    roots: &BTreeMap<String, Root>,
) -> Result<Family, DeclarationError> {
    let file: FamilyFile = toml::from_str(text).map_err(|e| toml_error(path, e))?;
    check_chars(&file.family, NAME_CHARS).map_err(|m| invalid(path, format!("`family` {m}")))?;
    ImageRef::parse(&format!("example.com/{}", file.repository))
        .map_err(|e| invalid(path, format!("`repository`: {e}")))?;
    if file.repository.matches('/').count() < 1 || file.repository.contains(':') {
        return Err(invalid(
            path,
            format!(
                "`repository` `{}` must be a path like `airbyte/python-connector-base`, without registry or tag",
                file.repository
            ),
        ));
    }
    if file.versions.is_empty() {
        return Err(invalid(
            path,
            "no [[versions]]: declare at least one".into(),
        ));
    }
    let mut versions: Vec<FamilyVersion> = Vec::new();
    for (i, decl) in file.versions.into_iter().enumerate() {
        let at = |msg: String| invalid(path, format!("versions[{i}] (`{}`): {msg}", decl.version));
        let version: Version = decl
            .version
            .parse()
            .map_err(|e: VersionError| at(format!("`version`: {e}")))?;
        if version.has_build_metadata() {
            return Err(at(
                "`version`: build metadata (`+...`) cannot be part of an image tag".into(),
            ));
        }
        if let Some(newer) = versions.last() {
            if version >= newer.version {
                return Err(at(format!(
                    "versions are listed newest first, and this one is not older than {} above it",
                    newer.version
                )));
            }
        }
        if decl.changelog.trim().is_empty() {
            return Err(at(
                "`changelog` is empty; say what this version changes".into()
            ));
        }
        if decl.changelog.contains('\n') || decl.changelog.contains('|') {
            return Err(at(
                "`changelog` is one line without `|` (it is a cell of the versions table)".into(),
            ));
        }
        type Fields<'f> = &'f [(&'f str, &'f String)];
        let (needed, unused): (Fields, Fields) = match file.kind {
            FamilyKind::Python => (
                &[
                    ("python", &decl.python),
                    ("pip", &decl.pip),
                    ("poetry", &decl.poetry),
                ],
                &[("cdk", &decl.cdk), ("java", &decl.java)],
            ),
            FamilyKind::Declarative => (
                &[("python", &decl.python), ("cdk", &decl.cdk)],
                &[
                    ("pip", &decl.pip),
                    ("poetry", &decl.poetry),
                    ("java", &decl.java),
                    ("root", &decl.root),
                    ("timezone", &decl.timezone),
                ],
            ),
            FamilyKind::Java => (
                &[],
                &[
                    ("python", &decl.python),
                    ("pip", &decl.pip),
                    ("poetry", &decl.poetry),
                    ("cdk", &decl.cdk),
                ],
            ),
        };
        for (field, value) in needed {
            exact_version(value).map_err(|m| at(format!("`{field}`: {m}")))?;
        }
        for (field, value) in unused {
            if !value.is_empty() {
                return Err(at(format!(
                    "`{field}` is not used by a {} family; remove it",
                    file.kind.name()
                )));
            }
        }
        match (file.kind, &decl.base) {
            (FamilyKind::Declarative, None) => {
                return Err(at(
                    "`base` is missing: a declarative family builds on another family's version, e.g. `base = { family = \"python\", version = \"1.0.0\" }`".into(),
                ))
            }
            (FamilyKind::Declarative, Some(_)) => {}
            (_, Some(_)) => {
                return Err(at(format!(
                    "`base` is for declarative families; a {} family builds on a `root`",
                    file.kind.name()
                )))
            }
            (_, None) => {
                if !roots.contains_key(&decl.root) {
                    return Err(at(format!(
                        "`root` `{}` is not declared in {ROOTS_FILE} (declared: {})",
                        decl.root,
                        roots.keys().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
                check_chars(&decl.timezone, ZONE_CHARS)
                    .map_err(|m| at(format!("`timezone` {m}")))?;
            }
        }
        if file.kind == FamilyKind::Java
            && (decl.java.is_empty() || !decl.java.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(at(format!(
                "`java` `{}` is not a Java feature release like `17`",
                decl.java
            )));
        }
        for p in &decl.system_packages {
            check_chars(p, PACKAGE_CHARS)
                .map_err(|m| at(format!("`system_packages`: `{p}` {m}")))?;
        }
        for t in &decl.system_tools {
            check_chars(t, "._+-").map_err(|m| at(format!("`system_tools`: `{t}` {m}")))?;
        }
        for (name, value) in &decl.env {
            let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(at(format!("`env`: `{name}` is not a variable name")));
            }
            if value.contains('\n') {
                return Err(at(format!("`env.{name}` has a line break")));
            }
        }
        let user = &decl.user;
        check_chars(&user.name, "_-").map_err(|m| at(format!("`user.name` {m}")))?;
        if user.uid == 0 || user.gid == 0 {
            return Err(at("`user` must not be root (uid/gid 0)".into()));
        }
        for (field, paths) in [
            ("home", std::slice::from_ref(&user.home)),
            ("owns", user.owns.as_slice()),
            ("cannot_write", user.cannot_write.as_slice()),
        ] {
            for p in paths {
                if !p.starts_with('/') || p.contains("..") {
                    return Err(at(format!("`user.{field}`: `{p}` is not an absolute path")));
                }
                check_chars(p, PATH_CHARS).map_err(|m| at(format!("`user.{field}`: `{p}` {m}")))?;
            }
        }
        versions.push(FamilyVersion { version, decl });
    }
    Ok(Family {
        name: file.family,
        kind: file.kind,
        repository: file.repository,
        languages: file.languages,
        versions,
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_python() -> String {
        EMBEDDED
            .iter()
            .find(|(n, _)| *n == "python.toml")
            .unwrap()
            .1
            .to_string()
    }

    fn parse_with(python: &str) -> Result<Declarations, DeclarationError> {
        let roots = EMBEDDED[0].1.to_string();
        Declarations::parse(
            Path::new("decl"),
            vec![
                (ROOTS_FILE.into(), roots),
                ("python.toml".into(), python.into()),
            ],
        )
    }

    #[test]
    fn the_repository_declarations_load() {
        let d = Declarations::embedded().unwrap();
        let python = d.family("python").unwrap();
        assert_eq!(python.repository, "airbyte/python-connector-base");
        let latest = python.version(None).unwrap();
        assert_eq!(latest.decl.user.uid, 1000);
        assert!(d.root(&latest.decl.root).is_some());
        assert!(d.family_for_language("python").is_some());
        assert!(d
            .family_by_repository("airbyte/python-connector-base")
            .is_some());
    }

    #[test]
    fn every_declaration_file_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(EMBEDDED_DIR);
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = EMBEDDED.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "add new declaration files to EMBEDDED");
        let loaded = Declarations::load(&dir).unwrap();
        assert_eq!(loaded.families.len(), EMBEDDED.len() - 1);
    }

    #[test]
    fn mistakes_name_the_file_and_field() {
        let base = repo_python();
        let cases = [
            (
                base.replace("pip = \"23.2.1\"", "pip = \"latest\""),
                "`pip`",
            ),
            (
                base.replace("root = \"debian-python\"", "root = \"nope\""),
                "`root` `nope` is not declared",
            ),
            (base.replace("uid = 1000", "uid = 0"), "must not be root"),
            (
                base.replace(
                    "system_packages = [\"curl\"]",
                    "system_packages = [\"curl; rm -rf /\"]",
                ),
                "`system_packages`",
            ),
            (
                base.replace("version = \"1.0.0\"", "version = \"1.0\""),
                "MAJOR.MINOR.PATCH",
            ),
            (
                base.replace("poetry = ", "poetryy = "),
                "unknown field `poetryy`",
            ),
            (
                base.replace("changelog = \"Initial", "changelog = \"\"\nx = \"Initial"),
                "unknown field `x`",
            ),
        ];
        for (text, needle) in cases {
            let e = parse_with(&text).unwrap_err().to_string();
            assert!(e.starts_with("decl/python.toml"), "{e}");
            assert!(e.contains(needle), "want `{needle}` in: {e}");
        }
    }

    #[test]
    fn versions_must_be_newest_first() {
        let base = repo_python();
        let block_start = base.find("\n[[versions]]").unwrap() + 1;
        let block = &base[block_start..];
        let older = block.replace("version = \"1.0.0\"", "version = \"0.9.0\"");
        let newer = block.replace("version = \"1.0.0\"", "version = \"1.1.0\"");
        let ok = format!("{}{newer}\n{block}\n{older}", &base[..block_start]);
        let d = parse_with(&ok).unwrap();
        let python = d.family("python").unwrap();
        assert_eq!(python.version(None).unwrap().version.to_string(), "1.1.0");
        let v100 = &python.version(Some("1.0.0")).unwrap().version;
        assert_eq!(python.previous(v100).unwrap().version.to_string(), "0.9.0");
        let bad = format!("{}{block}\n{newer}", &base[..block_start]);
        let e = parse_with(&bad).unwrap_err().to_string();
        assert!(e.contains("newest first"), "{e}");
        assert!(python
            .version(Some("9.9.9"))
            .unwrap_err()
            .to_string()
            .contains("1.1.0, 1.0.0, 0.9.0"));
    }

    #[test]
    fn roots_are_pinned_or_built() {
        let python = repo_python();
        let load = |roots: &str| {
            Declarations::parse(
                Path::new("decl"),
                vec![
                    (ROOTS_FILE.into(), roots.into()),
                    ("python.toml".into(), python.clone()),
                ],
            )
        };
        let e = load("[debian-python]\nreference = \"python:3.11-slim\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no @sha256: digest"), "{e}");
        let pinned = format!(
            "[debian-python]\nreference = \"python:3.11-slim@sha256:{}\"\n",
            "a".repeat(64)
        );
        let d = load(&pinned).unwrap();
        assert!(matches!(
            d.root("debian-python").unwrap().source,
            RootSource::Reference(_)
        ));
        let e = load("[debian-python]\n").unwrap_err().to_string();
        assert!(e.contains("exactly one of"), "{e}");
    }
}
