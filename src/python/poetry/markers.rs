//! Environment markers, on `pep508_rs`'s canonical marker trees.
//!
//! A tree stays exact whatever its size (no "too big, assume always" fallback), and two
//! equivalent markers compare equal, which the lock walk uses to know when it is done.
//! What is Poetry's own: `python = "^3.9"` and `platform = "linux"` as markers, and `extra`
//! decided here, because pip treats `extra` as unset in a requirements file.

use std::collections::BTreeSet;
use std::str::FromStr;

use pep508_rs::{ExtraOperator, MarkerExpression, MarkerTree};

use super::constraint::{parse_poetry_constraint, split_release, Clause, Op};
use super::names::normalize_name;

/// `a and b`.
pub(super) fn and(a: &MarkerTree, b: &MarkerTree) -> MarkerTree {
    let mut out = a.clone();
    out.and(b.clone());
    out
}

/// Adds `other` to `marker`; whether that allowed any new environment.
pub(super) fn or_in(marker: &mut MarkerTree, other: &MarkerTree) -> bool {
    let before = marker.clone();
    marker.or(other.clone());
    *marker != before
}

/// The marker text for a requirement line; `None` when it always holds.
pub(super) fn render(marker: &MarkerTree) -> Option<String> {
    marker.try_to_string()
}

/// Parses a PEP 508 marker with `extra == "x"` decided from `extras` (normalised names of
/// the extras enabled on the package owning the marker).
pub(super) fn parse(text: &str, extras: &BTreeSet<String>) -> Result<MarkerTree, String> {
    let tree = parse_raw(text)?;
    Ok(if mentions_extra(text) {
        decide_extras(&tree, extras)
    } else {
        tree
    })
}

/// Parses a PEP 508 marker, leaving `extra` undecided.
pub(super) fn parse_raw(text: &str) -> Result<MarkerTree, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(MarkerTree::TRUE);
    }
    check_nesting(text)?;
    MarkerTree::from_str(text).map_err(|e| first_line(&e.to_string()))
}

/// The crate's parser recurses per parenthesis without a limit; hostile input must not
/// exhaust the stack.
pub(super) fn check_nesting(text: &str) -> Result<(), String> {
    const MAX_DEPTH: usize = 32;
    let (mut depth, mut quote) = (0usize, None);
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(') => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!("markers nested more than {MAX_DEPTH} deep"));
                }
            }
            (None, ')') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Whether marker text may compare `extra`; markers without it skip [`decide_extras`].
pub(super) fn mentions_extra(text: &str) -> bool {
    text.contains("extra")
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_string()
}

/// `extra` replaced by true for the enabled extras and false for the others.
pub(super) fn decide_extras(tree: &MarkerTree, extras: &BTreeSet<String>) -> MarkerTree {
    // The decision diagram cannot be restricted to `false` through the crate's API, so the
    // restriction goes through its exact DNF: each conjunction keeps its other atoms when
    // its `extra` atoms hold, and goes when one fails.
    if tree.is_true() || tree.is_false() {
        return tree.clone();
    }
    let mut out = MarkerTree::FALSE;
    'conjunctions: for conjunction in tree.to_dnf() {
        let mut conj = MarkerTree::TRUE;
        for expression in conjunction {
            match expression {
                MarkerExpression::Extra { operator, name } => {
                    let enabled = extras.contains(&normalize_name(&name.to_string()));
                    if enabled != (operator == ExtraOperator::Equal) {
                        continue 'conjunctions;
                    }
                }
                other => conj.and(MarkerTree::expression(other)),
            }
        }
        out.or(conj);
    }
    out
}

/// A Poetry `python = "..."` constraint as a marker, like Poetry's own
/// translation: `python_version` for X.Y precision, `python_full_version` beyond.
pub(super) fn python(constraint: &str) -> Result<MarkerTree, String> {
    let mut out = MarkerTree::FALSE;
    for clauses in parse_poetry_constraint(constraint)? {
        let mut conj = MarkerTree::TRUE;
        for clause in &clauses {
            conj.and(python_clause(clause)?);
        }
        out.or(conj);
    }
    Ok(out)
}

fn python_clause(clause: &Clause) -> Result<MarkerTree, String> {
    let version = clause.version.as_str();
    let text = match clause.op {
        Op::Compatible => {
            let prefix = split_release(version).and_then(|(epoch, release, _)| {
                let (_, init) = release.split_last()?;
                let joined = init
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(".");
                Some(if epoch.is_empty() {
                    format!("{joined}.*")
                } else {
                    format!("{epoch}!{joined}.*")
                })
            });
            let lower = format!("{} >= \"{version}\"", python_var(version));
            match prefix {
                Some(prefix) => format!("{lower} and {} == \"{prefix}\"", python_var(&prefix)),
                None => lower,
            }
        }
        op => format!("{} {} \"{version}\"", python_var(version), op.as_str()),
    };
    MarkerTree::from_str(&text).map_err(|e| first_line(&e.to_string()))
}

fn python_var(version: &str) -> &'static str {
    match split_release(version.trim_end_matches(".*")) {
        Some(("", release, "")) if release.len() <= 2 => "python_version",
        _ => "python_full_version",
    }
}

/// Poetry's `platform = "linux"` (also `!=win32`, `linux || darwin`); text that is not a
/// platform name restricts nothing.
pub(super) fn platform(platform: &str) -> MarkerTree {
    let mut out = MarkerTree::FALSE;
    for alternative in platform.split('|').map(str::trim).filter(|a| !a.is_empty()) {
        let mut conj = MarkerTree::TRUE;
        for part in alternative
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (op, value) = match part.strip_prefix("!=") {
                Some(value) => ("!=", value.trim()),
                None => ("==", part.trim_start_matches("==").trim()),
            };
            let text = format!("sys_platform {op} {}", quote(value));
            if let Ok(atom) = MarkerTree::from_str(&text) {
                conj.and(atom);
            }
        }
        out.or(conj);
    }
    if out.is_false() {
        MarkerTree::TRUE
    } else {
        out
    }
}

fn quote(value: &str) -> String {
    if value.contains('"') {
        format!("'{value}'")
    } else {
        format!("\"{value}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> MarkerTree {
        parse(text, &BTreeSet::new()).unwrap()
    }

    #[test]
    fn marker_algebra() {
        let none = BTreeSet::new();
        assert_eq!(
            render(&m(
                r#"python_version < "3.8" and (sys_platform == "win32" or sys_platform == 'cygwin')"#
            ))
            .as_deref(),
            Some(
                "(python_full_version < '3.8' and sys_platform == 'cygwin') or (python_full_version < '3.8' and sys_platform == 'win32')"
            )
        );
        // Contradictions vanish; redundant bounds are dropped.
        assert!(m(r#"python_version < "3.8" and python_version >= "3.9""#).is_false());
        assert_eq!(
            render(&m(r#"python_version < "3.12" and python_version < "3.10""#)).as_deref(),
            Some("python_full_version < '3.10'")
        );
        assert!(m(r#"sys_platform == "linux" and sys_platform == "win32""#).is_false());
        // Reversed operands and `in`.
        assert_eq!(
            render(&m(r#""3.8" <= python_version and "linux" in sys_platform"#)).as_deref(),
            Some("python_full_version >= '3.8' and 'linux' in sys_platform")
        );
        // `extra` is decided from the enabled extras.
        let socks: BTreeSet<String> = ["socks".to_string()].into();
        assert!(parse(r#"extra == "socks""#, &socks).unwrap().is_true());
        assert!(parse(r#"extra == "socks""#, &none).unwrap().is_false());
        assert_eq!(
            render(&parse(r#"python_version < "3.8" and extra == "Socks""#, &socks).unwrap())
                .as_deref(),
            Some("python_full_version < '3.8'")
        );
        assert!(parse(r#"extra != "socks""#, &socks).unwrap().is_false());
        // Negation.
        let py = python(">=3.9,<4.0").unwrap();
        assert_eq!(
            render(&py.negate()).as_deref(),
            Some("python_full_version < '3.9' or python_full_version >= '4.0'")
        );
        // Absorption: `a or (a and b)` is `a`.
        let mut a = m(r#"sys_platform == "win32""#);
        let ab = and(&a, &m(r#"python_version < "3.8""#));
        assert!(!or_in(&mut a, &ab));
        assert_eq!(render(&a).as_deref(), Some("sys_platform == 'win32'"));
        // Unparsable text is an error naming what is wrong.
        assert!(parse("os_name == ", &none).is_err());
    }

    #[test]
    fn python_and_platform_constraints() {
        let r = |c: &str| render(&python(c).unwrap());
        assert_eq!(
            r("^3.9").as_deref(),
            Some("python_full_version >= '3.9' and python_full_version < '4.0'")
        );
        assert_eq!(
            r(">=3.8.1").as_deref(),
            Some("python_full_version >= '3.8.1'")
        );
        assert_eq!(r("*"), None);
        assert!(python("^").is_err());
        assert_eq!(
            render(&platform("linux || darwin")).as_deref(),
            Some("sys_platform == 'darwin' or sys_platform == 'linux'")
        );
        assert_eq!(
            render(&platform("!=win32")).as_deref(),
            Some("sys_platform != 'win32'")
        );
        assert!(platform("").is_true());
    }

    #[test]
    fn oversized_markers_stay_exact() {
        // A Windows-only pin must stay Windows-only however large its marker grows.
        let wide = (0..200)
            .map(|i| format!("os_name == \"{i}\""))
            .collect::<Vec<_>>()
            .join(" or ");
        let wide = m(&format!("({wide}) and ({wide})"));
        assert!(!wide.is_true(), "oversized markers fall back to always");
        let mut windows = m(r#"sys_platform == "win32""#);
        let pythons = (0..100)
            .map(|i| format!("(python_full_version == \"3.{i}.1\" and os_name == \"n{i}\")"))
            .collect::<Vec<_>>()
            .join(" or ");
        windows.and(m(&pythons));
        assert!(windows.is_disjoint(&m(r#"sys_platform == "linux""#)));
    }
}
