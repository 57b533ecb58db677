//! Stable encoding and cache keys.
//!
//! JSON with object keys sorted and no insignificant white space, written here rather than
//! left to serde_json's map ordering (which a feature flag anywhere in the tree can change).

use std::fmt;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{Base, BuildPlan, PLAN_FORMAT};

/// A content-addressed key: 64 lowercase hex digits of sha256.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct CacheKey(pub String);

impl CacheKey {
    pub fn short(&self) -> &str {
        &self.0[..12.min(self.0.len())]
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Canonical JSON of any serialisable value.
pub fn canonical_json<T: Serialize>(value: &T) -> String {
    // Serialising plain data structs to a Value cannot fail (no maps with non-string keys).
    let v = serde_json::to_value(value).unwrap_or(Value::Null);
    let mut out = String::new();
    write_value(&v, &mut out);
    out
}

fn write_value(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_value(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn chain(parent: &CacheKey, kind: &str, body: &str) -> CacheKey {
    let mut h = Sha256::new();
    h.update(PLAN_FORMAT.as_bytes());
    h.update(b"\n");
    h.update(parent.0.as_bytes());
    h.update(b"\n");
    h.update(kind.as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    CacheKey(hex::encode(h.finalize()))
}

/// The keys of a plan: one for the base, one per step, one for the finished image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyChain {
    pub base: CacheKey,
    pub steps: Vec<CacheKey>,
    pub image: CacheKey,
}

impl KeyChain {
    pub fn for_plan(plan: &BuildPlan) -> KeyChain {
        let root = CacheKey(String::new());
        let base = match &plan.base {
            // A pinned base is keyed by its digest alone, so a mirror or a re-tag does not
            // invalidate; an unpinned one (only with --allow-unpinned) by its reference.
            Base::Image {
                digest: Some(d), ..
            } => chain(&root, "base-digest", d),
            Base::Image { reference, .. } => chain(&root, "base-reference", reference),
            Base::Dockerfile { .. } => chain(&root, "dockerfile", &canonical_json(&plan.base)),
        };
        let base = match &plan.customization {
            Some(digest) => chain(&base, "customization", digest),
            None => base,
        };
        let base = match plan.platform {
            Some(p) if p != crate::platform::Platform::LinuxAmd64 => {
                chain(&base, "platform", p.as_str())
            }
            _ => base,
        };
        let mut steps = Vec::with_capacity(plan.steps.len());
        let mut parent = base.clone();
        for step in &plan.steps {
            let key = chain(&parent, "step", &canonical_json(&step.action));
            steps.push(key.clone());
            parent = key;
        }
        let image = chain(&parent, "smoke-test", &canonical_json(&plan.smoke_test));
        KeyChain { base, steps, image }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"z": [1, {"y": 2, "x": 3}], "c": "é\""}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"é\"","z":[1,{"x":3,"y":2}]},"b":1}"#
        );
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
