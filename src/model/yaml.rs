//! A thin layer over saphyr's located YAML nodes: typed access that reports line numbers, and
//! in-place edits of a scalar that leave every other byte of the user's file untouched.

use std::borrow::Cow;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

/// Where a node sits in the source: 1-based line and column, and byte range for edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    pub line: usize,
    pub col: usize,
    pub start: usize,
    pub end: usize,
}

/// A YAML syntax error with its position (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// A parsed document that keeps the source text, for locations and edits.
pub struct Document<'a> {
    text: &'a str,
    root: Option<MarkedYaml<'a>>,
}

pub type Node<'a> = MarkedYaml<'a>;

impl<'a> Document<'a> {
    pub fn parse(text: &'a str) -> Result<Self, SyntaxError> {
        let mut docs = MarkedYaml::load_from_str(text).map_err(|e| SyntaxError {
            line: e.marker().line(),
            col: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        // A second document would be ignored by whoever reads the first: refuse it.
        if let Some(second) = docs.get(1).filter(|d| !is_null(d)) {
            return Err(SyntaxError {
                line: second.span.start.line().max(1),
                col: second.span.start.col() + 1,
                message: "a second YAML document starts here; the file must hold one".into(),
            });
        }
        let mut root = if docs.is_empty() {
            None
        } else {
            Some(docs.swap_remove(0))
        };
        if let Some(root) = root.as_mut() {
            resolve_merges(text, root)?;
        }
        Ok(Document { text, root })
    }

    pub fn root(&self) -> Option<&Node<'a>> {
        self.root.as_ref().filter(|n| !is_null(n))
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    pub fn loc(&self, node: &Node<'_>) -> Loc {
        let start = char_to_byte(self.text, node.span.start.index());
        let mut end = char_to_byte(self.text, node.span.end.index()).max(start);
        // The parser's end marker can run past a quoted scalar into a trailing comment, so
        // quoted scalars are measured here.
        if matches!(node.data, YamlData::Value(_) | YamlData::Representation(..)) {
            if let Some(e) = scalar_end(self.text, start) {
                end = e;
            }
        }
        Loc {
            line: node.span.start.line().max(1),
            col: node.span.start.col() + 1,
            start,
            end,
        }
    }
}

/// YAML 1.1 merge keys (`<<: *defaults`), as PyYAML (and so airbyte-ci) reads them: a
/// mapping's own keys win, then the merged mappings in the order given. saphyr implements
/// YAML 1.2, which has no merge keys, and would keep `<<` as an ordinary key.
fn resolve_merges(text: &str, node: &mut Node<'_>) -> Result<(), SyntaxError> {
    match &mut node.data {
        YamlData::Sequence(items) => {
            for item in items {
                resolve_merges(text, item)?;
            }
        }
        YamlData::Tagged(_, inner) => resolve_merges(text, inner)?,
        YamlData::Mapping(map) => {
            let mut own = std::mem::take(map);
            let mut merges = Vec::new();
            for (key, value) in own.iter_mut() {
                resolve_merges(text, value)?;
                if is_merge_key(text, key) {
                    merges.push(key.clone());
                }
            }
            for key in merges {
                let Some(value) = own.remove(&key) else {
                    continue;
                };
                let sources = match value.data {
                    YamlData::Mapping(m) => vec![m],
                    YamlData::Sequence(items) => items
                        .into_iter()
                        .map(|item| match item.data {
                            YamlData::Mapping(m) => Ok(m),
                            _ => Err(merge_error(&item)),
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err(merge_error(&value)),
                };
                for source in sources {
                    for (k, v) in source {
                        if !own.contains_key(&k) {
                            own.insert(k, v);
                        }
                    }
                }
            }
            *map = own;
        }
        _ => {}
    }
    Ok(())
}

/// A plain `<<` key; a quoted `"<<"` is an ordinary key, as in PyYAML.
fn is_merge_key(text: &str, key: &Node<'_>) -> bool {
    matches!(&key.data, YamlData::Value(Scalar::String(s)) if s == "<<")
        && text[char_to_byte(text, key.span.start.index())..].starts_with("<<")
}

fn merge_error(node: &Node<'_>) -> SyntaxError {
    SyntaxError {
        line: node.span.start.line().max(1),
        col: node.span.start.col() + 1,
        message: format!(
            "a merge key (`<<`) takes a mapping or a list of mappings, not {}",
            kind(node)
        ),
    }
}

/// The end of the single-line quoted scalar starting at byte `start`; `None` otherwise.
fn scalar_end(text: &str, start: usize) -> Option<usize> {
    let rest = text.get(start..)?;
    let line = rest.split('\n').next().unwrap_or("");
    match line.chars().next()? {
        '\'' => {
            let mut it = line.char_indices().skip(1).peekable();
            while let Some((i, c)) = it.next() {
                if c == '\'' {
                    if it.peek().is_some_and(|(_, n)| *n == '\'') {
                        it.next();
                        continue;
                    }
                    return Some(start + i + 1);
                }
            }
            None
        }
        '"' => {
            let mut escaped = false;
            for (i, c) in line.char_indices().skip(1) {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => return Some(start + i + 1),
                    _ => escaped = false,
                }
            }
            None
        }
        // Plain scalars (in flow context too) end where the parser says.
        _ => None,
    }
}

fn char_to_byte(text: &str, char_index: usize) -> usize {
    if text.is_ascii() {
        return char_index.min(text.len());
    }
    text.char_indices()
        .nth(char_index)
        .map_or(text.len(), |(b, _)| b)
}

fn is_null(node: &Node<'_>) -> bool {
    matches!(node.data, YamlData::Value(Scalar::Null))
}

/// A short description of what a node is, for "expected X, found Y" messages.
pub fn kind(node: &Node<'_>) -> &'static str {
    match &node.data {
        YamlData::Value(Scalar::Null) => "null",
        YamlData::Value(Scalar::Boolean(_)) => "a boolean",
        YamlData::Value(Scalar::Integer(_)) | YamlData::Value(Scalar::FloatingPoint(_)) => {
            "a number"
        }
        YamlData::Value(Scalar::String(_)) | YamlData::Representation(..) => "a string",
        YamlData::Sequence(_) => "a list",
        YamlData::Mapping(_) => "a mapping",
        YamlData::Tagged(..) => "a tagged value",
        YamlData::Alias(_) => "an alias",
        YamlData::BadValue => "an invalid value",
    }
}

/// The entries of a mapping node, keys as strings; `None` if the node is not a mapping.
/// Non-string keys are returned with their source text so they can be reported.
pub fn entries<'n, 'a>(
    doc: &Document<'a>,
    node: &'n Node<'a>,
) -> Option<Vec<(Cow<'a, str>, &'n Node<'a>, &'n Node<'a>)>> {
    match &node.data {
        YamlData::Mapping(map) => Some(
            map.iter()
                .map(|(k, v)| {
                    let key = match &k.data {
                        YamlData::Value(Scalar::String(s)) => s.clone(),
                        _ => {
                            let l = doc.loc(k);
                            Cow::Borrowed(doc.text.get(l.start..l.end).unwrap_or("?"))
                        }
                    };
                    (key, k, v)
                })
                .collect(),
        ),
        _ => None,
    }
}

/// The value under `key` in a mapping node.
pub fn get<'n, 'a>(node: &'n Node<'a>, key: &str) -> Option<&'n Node<'a>> {
    match &node.data {
        YamlData::Mapping(map) => map.iter().find_map(|(k, v)| match &k.data {
            YamlData::Value(Scalar::String(s)) if s == key => Some(v),
            _ => None,
        }),
        _ => None,
    }
}

/// A scalar read as text. Numbers keep their source spelling, so `dockerImageTag: 1.10`
/// stays `1.10` rather than becoming the float `1.1`.
pub fn scalar_text<'a>(doc: &Document<'a>, node: &Node<'a>) -> Option<Cow<'a, str>> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s.clone()),
        YamlData::Value(Scalar::Integer(_)) | YamlData::Value(Scalar::FloatingPoint(_)) => {
            let l = doc.loc(node);
            doc.text.get(l.start..l.end).map(Cow::Borrowed)
        }
        _ => None,
    }
}

/// Whether a scalar is a YAML string (quoted, or plain text that is no number, bool or null).
pub fn is_string(node: &Node<'_>) -> bool {
    matches!(&node.data, YamlData::Value(Scalar::String(_)))
}

pub fn sequence<'n, 'a>(node: &'n Node<'a>) -> Option<&'n [Node<'a>]> {
    match &node.data {
        YamlData::Sequence(items) => Some(items.as_slice()),
        _ => None,
    }
}

/// Quote a string for a plain YAML scalar position, only when it needs it.
pub fn render_scalar(value: &str) -> String {
    let plain_ok = !value.is_empty()
        && !value.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@` ".contains(c))
        && !value.contains(": ")
        && !value.contains(" #")
        && !value.ends_with([':', ' '])
        && !value.contains(['\n', '\t'])
        && !matches!(
            value,
            "null" | "Null" | "NULL" | "~" | "true" | "false" | "True" | "False" | "yes" | "no"
        )
        && value.parse::<f64>().is_err();
    if plain_ok {
        value.to_string()
    } else {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    }
}

/// Replace the scalar at `loc` with `value`, keeping the quoting style the user wrote when the
/// new value allows it. Everything outside the scalar is byte-identical.
pub fn replace_scalar(text: &str, loc: Loc, value: &str) -> String {
    let old = text.get(loc.start..loc.end).unwrap_or("");
    let rendered = if old.starts_with('\'') && !value.contains('\'') {
        format!("'{value}'")
    } else if old.starts_with('"') {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        render_scalar(value)
    };
    let mut out = String::with_capacity(text.len() + rendered.len());
    out.push_str(&text[..loc.start]);
    out.push_str(&rendered);
    out.push_str(&text[loc.end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "data:\n  # keep me\n  dockerImageTag: 1.10\n  name: 'Fancy é'   # trailing\n  connectorBuildOptions:\n    baseImage: a/b:1@sha256:00\nother: [1, 2]\n";

    #[test]
    fn locations_are_one_based_and_byte_exact() {
        let doc = Document::parse(SRC).unwrap();
        let root = doc.root().unwrap();
        let data = get(root, "data").unwrap();
        let tag = get(data, "dockerImageTag").unwrap();
        assert_eq!(scalar_text(&doc, tag).as_deref(), Some("1.10"));
        let l = doc.loc(tag);
        assert_eq!((l.line, l.col), (3, 19));
        let name = get(data, "name").unwrap();
        assert_eq!(scalar_text(&doc, name).as_deref(), Some("Fancy é"));
        let l = doc.loc(name);
        assert_eq!(&SRC[l.start..l.end], "'Fancy é'");
        let base = get(get(data, "connectorBuildOptions").unwrap(), "baseImage").unwrap();
        let l = doc.loc(base);
        assert_eq!(&SRC[l.start..l.end], "a/b:1@sha256:00");
        assert_eq!(l.line, 6);
    }

    #[test]
    fn replace_keeps_everything_else() {
        let doc = Document::parse(SRC).unwrap();
        let data = get(doc.root().unwrap(), "data").unwrap();
        let base = get(get(data, "connectorBuildOptions").unwrap(), "baseImage").unwrap();
        let out = replace_scalar(SRC, doc.loc(base), "x/y:2@sha256:11");
        assert_eq!(out, SRC.replace("a/b:1@sha256:00", "x/y:2@sha256:11"));
        let name = get(data, "name").unwrap();
        let out = replace_scalar(SRC, doc.loc(name), "Plain");
        assert!(out.contains("  name: 'Plain'   # trailing\n"), "{out}");
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = Document::parse("data:\n  a: 'unclosed\n  b: 1\n")
            .err()
            .unwrap();
        assert!(err.line >= 2, "{err:?}");
        let err = Document::parse("data:\n  a: 1\n b: 2\n").err().unwrap();
        assert_eq!(err.line, 3, "{err:?}");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        assert!(Document::parse("a: 1\na: 2\n").is_err());
    }

    #[test]
    fn merge_keys_merge_as_pyyaml_does() {
        let src = "ids: &ids\n  dockerRepository: a/b\n  name: base\nmore: &more\n  license: MIT\n  name: more\ndata:\n  <<: [*ids, *more]\n  name: own\n  nested:\n    <<: *more\n";
        let doc = Document::parse(src).unwrap();
        let data = get(doc.root().unwrap(), "data").unwrap();
        let text = |node: &Node<'_>, key: &str| {
            get(node, key)
                .and_then(|n| scalar_text(&doc, n))
                .map(|t| t.into_owned())
        };
        assert_eq!(text(data, "name").as_deref(), Some("own"));
        assert_eq!(text(data, "dockerRepository").as_deref(), Some("a/b"));
        assert_eq!(text(data, "license").as_deref(), Some("MIT"));
        let nested = get(data, "nested").unwrap();
        assert_eq!(text(nested, "license").as_deref(), Some("MIT"));
        assert_eq!(text(nested, "name").as_deref(), Some("more"));
        // Locations are those of the anchored values.
        assert_eq!(doc.loc(get(data, "dockerRepository").unwrap()).line, 2);
        let quoted = Document::parse("data:\n  \"<<\": 1\n").unwrap();
        let data = get(quoted.root().unwrap(), "data").unwrap();
        assert!(get(data, "<<").is_some());
        let err = Document::parse("data:\n  <<: 3\n").err().unwrap();
        assert_eq!(err.line, 2, "{err:?}");
        assert!(err.message.contains("merge key"), "{err:?}");
    }

    #[test]
    fn render_scalar_quotes_only_when_needed() {
        assert_eq!(render_scalar("a/b:1@sha256:00"), "a/b:1@sha256:00");
        assert_eq!(render_scalar("1.0"), "\"1.0\"");
        assert_eq!(render_scalar("a: b"), "\"a: b\"");
        assert_eq!(render_scalar("true"), "\"true\"");
    }
}
