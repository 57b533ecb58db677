//! Container image references: `[registry/]repository[:tag][@sha256:digest]`.
//!
//! Parsed the way the Docker engine and the distribution spec read them, so a reference
//! means the same thing here as in `docker pull`: a first component with a `.` or `:`, or
//! `localhost`, is a registry; otherwise the registry is `docker.io`, where single-component
//! repositories live under `library/`.

use std::fmt;

use serde::{Deserialize, Serialize};

pub const DEFAULT_REGISTRY: &str = "docker.io";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    #[error("the image reference is empty")]
    Empty,
    #[error("`{reference}` has white space in it")]
    WhiteSpace { reference: String },
    #[error("`{reference}`: an image reference is not a URL\nhint: drop `{scheme}://`")]
    Scheme { reference: String, scheme: String },
    #[error("`{reference}`: repository component `{component}` is not valid (lowercase letters, digits and single `.`, `_`, `__` or `-` separators only)")]
    BadComponent {
        reference: String,
        component: String,
    },
    #[error("`{reference}`: registry `{registry}` is not a valid host[:port]")]
    BadRegistry { reference: String, registry: String },
    #[error("`{reference}`: tag `{tag}` is not valid (up to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`)")]
    BadTag { reference: String, tag: String },
    #[error("`{reference}`: digest `{digest}` is not valid: {reason}")]
    BadDigest {
        reference: String,
        digest: String,
        reason: String,
    },
    #[error("`{reference}`: the repository name is longer than 255 characters")]
    TooLong { reference: String },
}

/// A content digest; only `sha256` is accepted since that is what registries serve.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Result<Self, String> {
        let Some((algorithm, hex)) = s.split_once(':') else {
            return Err("expected `sha256:` followed by 64 hex digits".into());
        };
        if algorithm != "sha256" {
            return Err(format!(
                "algorithm `{algorithm}` is not supported; use a sha256 digest"
            ));
        }
        if hex.len() != 64 {
            return Err(format!(
                "a sha256 digest has 64 hex digits, this one has {}",
                hex.len()
            ));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err("a sha256 digest has only lowercase hex digits (0-9, a-f)".into());
        }
        Ok(Digest(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageRef {
    /// Registry host with optional port, e.g. `docker.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path within the registry, e.g. `library/python`, `airbyte/python-connector-base`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl ImageRef {
    pub fn parse(reference: &str) -> Result<Self, ImageRefError> {
        if reference.is_empty() {
            return Err(ImageRefError::Empty);
        }
        if reference.chars().any(char::is_whitespace) {
            return Err(ImageRefError::WhiteSpace {
                reference: reference.into(),
            });
        }
        let err_ref = || reference.to_string();
        if let Some((scheme, _)) = reference.split_once("://") {
            return Err(ImageRefError::Scheme {
                reference: err_ref(),
                scheme: scheme.into(),
            });
        }

        let (name_and_tag, digest) = match reference.split_once('@') {
            Some((_, d)) if d.contains('@') => {
                return Err(ImageRefError::BadDigest {
                    reference: err_ref(),
                    digest: d.into(),
                    reason: "a reference has one `@digest` at most".into(),
                })
            }
            Some((n, d)) => {
                let digest = Digest::parse(d).map_err(|reason| ImageRefError::BadDigest {
                    reference: err_ref(),
                    digest: d.into(),
                    reason,
                })?;
                (n, Some(digest))
            }
            None => (reference, None),
        };

        // A tag is whatever follows the last `:` that comes after the last `/`, so that a
        // registry port (`host:5000/repo`) is not mistaken for a tag.
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&name_and_tag[..at], Some(&name_and_tag[at + 1..]))
            }
            None => (name_and_tag, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(ImageRefError::BadTag {
                    reference: err_ref(),
                    tag: tag.into(),
                });
            }
        }
        if name.is_empty() {
            return Err(ImageRefError::BadComponent {
                reference: err_ref(),
                component: String::new(),
            });
        }

        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                if !valid_registry(first) {
                    return Err(ImageRefError::BadRegistry {
                        reference: err_ref(),
                        registry: first.into(),
                    });
                }
                (first.to_string(), rest)
            }
            _ => (DEFAULT_REGISTRY.to_string(), name),
        };
        // `index.docker.io` and `registry-1.docker.io` are the same registry as `docker.io`.
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DEFAULT_REGISTRY.to_string(),
            _ => registry,
        };
        for component in path.split('/') {
            if !valid_component(component) {
                return Err(ImageRefError::BadComponent {
                    reference: err_ref(),
                    component: component.into(),
                });
            }
        }
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        if repository.len() > 255 {
            return Err(ImageRefError::TooLong {
                reference: err_ref(),
            });
        }
        Ok(ImageRef {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// `registry/repository`, fully qualified.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The reference that pins content: `registry/repository@sha256:...`, if a digest is known.
    pub fn pinned(&self) -> Option<String> {
        self.digest
            .as_ref()
            .map(|d| format!("{}@{}", self.name(), d))
    }

    /// The same image served from another registry (a mirror); repository, tag and digest stay.
    pub fn with_registry(&self, registry: &str) -> ImageRef {
        ImageRef {
            registry: registry.to_string(),
            ..self.clone()
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+ ( ( [._] | __ | -+ ) [a-z0-9]+ )*
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// An image tag as registries accept it: up to 128 of `[A-Za-z0-9_.-]`, not starting with
/// `.` or `-`.
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

fn valid_registry(r: &str) -> bool {
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (r, None),
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:44b7f161ed03f85e96d423b9916cdc8cb0509fb970fd643bdbc9896d49e1cad0";

    #[test]
    fn docker_hub_defaults() {
        let r = ImageRef::parse("python:3.9-slim").unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/python");
        assert_eq!(r.tag.as_deref(), Some("3.9-slim"));
        assert_eq!(r.digest, None);
        assert_eq!(r.to_string(), "docker.io/library/python:3.9-slim");
    }

    #[test]
    fn airbyte_base_image_with_digest() {
        let s = format!("docker.io/airbyte/python-connector-base:1.0.0@{D}");
        let r = ImageRef::parse(&s).unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "airbyte/python-connector-base");
        assert_eq!(r.tag.as_deref(), Some("1.0.0"));
        assert_eq!(r.digest.as_ref().unwrap().as_str(), D);
        assert_eq!(r.to_string(), s);
        assert_eq!(
            r.pinned().unwrap(),
            format!("docker.io/airbyte/python-connector-base@{D}")
        );
    }

    #[test]
    fn registry_with_port_is_not_a_tag() {
        let r = ImageRef::parse("127.0.0.1:5000/connector-build/debian-python").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "connector-build/debian-python");
        assert_eq!(r.tag, None);
        let r = ImageRef::parse(&format!("localhost:5000/a/b:1@{D}")).unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.tag.as_deref(), Some("1"));
        let r = ImageRef::parse("localhost/x").unwrap();
        assert_eq!(r.registry, "localhost");
    }

    #[test]
    fn index_docker_io_is_docker_io() {
        let r = ImageRef::parse("index.docker.io/python").unwrap();
        assert_eq!(r.name(), "docker.io/library/python");
    }

    #[test]
    fn mirror_keeps_digest() {
        let r = ImageRef::parse(&format!("python@{D}")).unwrap();
        let m = r.with_registry("127.0.0.1:5000");
        assert_eq!(
            m.pinned().unwrap(),
            format!("127.0.0.1:5000/library/python@{D}")
        );
    }

    #[test]
    fn bad_references() {
        let cases = [
            ("", "empty"),
            ("Python:3", "component"),
            ("python:3 slim", "white space"),
            ("python@sha256:abc", "64 hex digits, this one has 3"),
            ("python@md5:abcd", "algorithm `md5`"),
            (
                &format!("python@{}", D.to_uppercase().replace("SHA256", "sha256")),
                "lowercase hex",
            ),
            ("python:-bad", "tag"),
            ("a//b", "component"),
            ("my_host.com:port/x", "registry"),
            ("python@", "expected `sha256:`"),
            (
                "https://127.0.0.1:5000/a/b:1",
                "not a URL\nhint: drop `https://`",
            ),
            (&format!("python@{D}@{D}"), "one `@digest` at most"),
        ];
        for (input, needle) in cases {
            let err = ImageRef::parse(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
    }
}
