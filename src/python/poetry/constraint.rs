//! Poetry version constraints (`^1.2`, `~1.2`, `1.*`, `>=1,<2 || >3`) translated to PEP 440
//! clauses, and whether a locked version satisfies them.
//!
//! The translation is hand-written because no crate does it: `pep440_rs` knows only PEP 440
//! specifiers. Matching is `pep440_rs`'s, except for one rule (see [`clause_matches`]).

use std::cmp::Ordering;
use std::str::FromStr;

use pep440_rs::{Operator, Version, VersionSpecifier};

/// One PEP 440 clause as written to requirement files; `version` may end in `.*` for
/// `==`/`!=`, and is kept as text so `===` can carry a non-PEP 440 string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Clause {
    pub op: Op,
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
    Compatible,
    Arbitrary,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Compatible => "~=",
            Op::Arbitrary => "===",
        }
    }
}

impl Clause {
    fn new(op: Op, version: impl Into<String>) -> Self {
        Clause {
            op,
            version: version.into(),
        }
    }

    pub fn render(&self) -> String {
        format!("{}{}", self.op.as_str(), self.version)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoetryOp {
    Bare,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Compatible,
    Tilde,
    Caret,
    Arbitrary,
}

/// Parses a Poetry constraint into alternatives (`||`) of clause lists that
/// must all hold; `[[]]` means any version.
pub(super) fn parse_poetry_constraint(text: &str) -> Result<Vec<Vec<Clause>>, String> {
    let mut alternatives = Vec::new();
    // Poetry accepts both `||` and `|`; splitting on `|` leaves empty pieces between bars.
    for piece in text.split('|').map(str::trim).filter(|p| !p.is_empty()) {
        alternatives.push(parse_constraint_group(piece)?);
    }
    if alternatives.is_empty() {
        alternatives.push(Vec::new());
    }
    Ok(alternatives)
}

fn parse_constraint_group(text: &str) -> Result<Vec<Clause>, String> {
    let mut clauses = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.is_empty() {
            return Ok(clauses);
        }
        let (op, op_text, after) = split_operator(rest);
        let after = after.trim_start();
        let end = after
            .find(|c: char| c.is_whitespace() || c == ',')
            .unwrap_or(after.len());
        let (version, tail) = after.split_at(end);
        if version.is_empty() {
            return Err(format!("operator `{op_text}` is not followed by a version"));
        }
        expand_clause(op, version, &mut clauses)?;
        rest = tail;
    }
}

fn split_operator(text: &str) -> (PoetryOp, &'static str, &str) {
    const OPERATORS: [(&str, PoetryOp); 12] = [
        ("===", PoetryOp::Arbitrary),
        ("~=", PoetryOp::Compatible),
        ("==", PoetryOp::Eq),
        ("!=", PoetryOp::Ne),
        ("<>", PoetryOp::Ne),
        (">=", PoetryOp::Ge),
        ("<=", PoetryOp::Le),
        ("<", PoetryOp::Lt),
        (">", PoetryOp::Gt),
        ("=", PoetryOp::Eq),
        ("^", PoetryOp::Caret),
        ("~", PoetryOp::Tilde),
    ];
    for (token, op) in OPERATORS {
        if let Some(rest) = text.strip_prefix(token) {
            return (op, token, rest);
        }
    }
    (PoetryOp::Bare, "", text)
}

fn expand_clause(op: PoetryOp, raw: &str, out: &mut Vec<Clause>) -> Result<(), String> {
    if op == PoetryOp::Arbitrary {
        out.push(Clause::new(Op::Arbitrary, raw));
        return Ok(());
    }
    let version = raw
        .strip_prefix(['v', 'V'])
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(raw);
    if matches!(version, "*" | "x" | "X") {
        return match op {
            PoetryOp::Bare | PoetryOp::Eq | PoetryOp::Ge => Ok(()),
            _ => Err(format!("the wildcard `{raw}` cannot follow an operator")),
        };
    }
    let (base, wildcard) = strip_wildcard(version);
    if wildcard {
        match split_release(base) {
            Some((_, _, "")) => {}
            _ => return Err(format!("`{raw}` is not a valid version wildcard")),
        }
    } else if Version::from_str(version).is_err() {
        return Err(format!("`{raw}` is not a valid version"));
    }
    let no_wildcard = |what: &str| {
        Err(format!(
            "`{what}` cannot be combined with the wildcard `{raw}`"
        ))
    };
    match op {
        PoetryOp::Bare | PoetryOp::Eq if wildcard => {
            out.push(Clause::new(Op::Eq, format!("{base}.*")))
        }
        PoetryOp::Bare | PoetryOp::Eq => out.push(Clause::new(Op::Eq, version)),
        PoetryOp::Ne if wildcard => out.push(Clause::new(Op::Ne, format!("{base}.*"))),
        PoetryOp::Ne => out.push(Clause::new(Op::Ne, version)),
        // Poetry ignores a wildcard after an ordering operator.
        PoetryOp::Lt => out.push(Clause::new(Op::Lt, base)),
        PoetryOp::Le => out.push(Clause::new(Op::Le, base)),
        PoetryOp::Gt => out.push(Clause::new(Op::Gt, base)),
        PoetryOp::Ge => out.push(Clause::new(Op::Ge, base)),
        PoetryOp::Compatible | PoetryOp::Tilde | PoetryOp::Caret if wildcard => {
            return no_wildcard(match op {
                PoetryOp::Compatible => "~=",
                PoetryOp::Tilde => "~",
                _ => "^",
            })
        }
        PoetryOp::Compatible | PoetryOp::Tilde | PoetryOp::Caret => {
            let (epoch, release, _) =
                split_release(version).ok_or_else(|| format!("`{raw}` is not a valid version"))?;
            let single = release.len() == 1;
            if op == PoetryOp::Compatible && !single {
                out.push(Clause::new(Op::Compatible, version));
                return Ok(());
            }
            let bump_at = match op {
                // `~=1` is not valid PEP 440; Poetry reads it like `~1`.
                PoetryOp::Compatible => 0,
                PoetryOp::Tilde if single => 0,
                PoetryOp::Tilde => 1,
                _ => caret_index(&release),
            };
            let upper = bump(epoch, &release, bump_at)
                .ok_or_else(|| format!("`{raw}` has a release number too large to bump"))?;
            out.push(Clause::new(Op::Ge, version));
            out.push(Clause::new(Op::Lt, upper));
        }
        PoetryOp::Arbitrary => out.push(Clause::new(Op::Arbitrary, raw)),
    }
    Ok(())
}

/// `1.2.*`, `1.x`, `1.*.*` -> (`1.2` / `1` / `1`, true).
fn strip_wildcard(version: &str) -> (&str, bool) {
    let mut base = version;
    let mut wildcard = false;
    while let Some(stripped) = [".*", ".x", ".X"].iter().find_map(|w| base.strip_suffix(w)) {
        base = stripped;
        wildcard = true;
    }
    (base, wildcard)
}

/// The component a caret bumps: the left-most non-zero one, within the
/// precision given (`^0.0` bumps the minor, `^0` the major).
fn caret_index(release: &[u64]) -> usize {
    let major = release.first().copied().unwrap_or(0);
    let minor = release.get(1).copied();
    if major > 0 || release.len() == 1 {
        0
    } else if minor.is_some_and(|m| m > 0) || release.len() == 2 {
        1
    } else {
        2
    }
}

/// Increments `release[index]` and zeroes what follows, keeping the precision
/// the user wrote (`^1.2` -> `2.0`, `^1` -> `2`).
fn bump(epoch: &str, release: &[u64], index: usize) -> Option<String> {
    let len = release.len().max(index + 1);
    let mut parts = Vec::with_capacity(len);
    for i in 0..len {
        let current = release.get(i).copied().unwrap_or(0);
        parts.push(match i.cmp(&index) {
            Ordering::Less => current,
            Ordering::Equal => current.checked_add(1)?,
            Ordering::Greater => 0,
        });
    }
    let joined = parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".");
    Some(if epoch.is_empty() {
        joined
    } else {
        format!("{epoch}!{joined}")
    })
}

/// Splits `[N!]1.2.3<tail>` into epoch text, release numbers and the rest: the caret and
/// tilde arithmetic works on the numbers as written (`pep440_rs` would normalise them).
pub(super) fn split_release(version: &str) -> Option<(&str, Vec<u64>, &str)> {
    let (epoch, mut rest) = match version.split_once('!') {
        Some((epoch, rest)) => {
            if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (epoch, rest)
        }
        None => ("", version),
    };
    let mut release = Vec::new();
    loop {
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        let (digits, tail) = rest.split_at(end);
        release.push(digits.parse::<u64>().ok()?);
        rest = tail;
        match rest.strip_prefix('.') {
            Some(next) if next.starts_with(|c: char| c.is_ascii_digit()) => rest = next,
            _ => break,
        }
    }
    Some((epoch, release, rest))
}

/// PEP 440 specifier for constraints that must all hold; the error carries the
/// offending constraint and why.
pub(super) fn pep440_spec(constraints: &[String]) -> Result<String, (String, String)> {
    let mut clauses = Vec::new();
    for constraint in constraints {
        let mut alternatives =
            parse_poetry_constraint(constraint).map_err(|r| (constraint.clone(), r))?;
        if alternatives.len() > 1 {
            return Err((
                constraint.clone(),
                "`||` alternatives have no PEP 440 equivalent; use a single range, or a list of \
                 constraints each with its own `python`/`markers`"
                    .to_string(),
            ));
        }
        clauses.extend(alternatives.pop().unwrap_or_default());
    }
    Ok(clauses
        .iter()
        .map(Clause::render)
        .collect::<Vec<_>>()
        .join(","))
}

/// Whether `version` satisfies a clause. Anything that does not parse counts as satisfied:
/// these checks only refine choices and catch stale locks, and must not reject what pip
/// would accept.
///
/// `<V` is judged by PEP 440's text, which is also what Poetry (which wrote the lock) does:
/// it excludes the pre-releases *of V*, so `<1.0.post2` admits `1.0a1`. `pep440_rs` (like
/// `packaging`) excludes every pre-release sharing V's release numbers, hence the override.
fn clause_matches(clause: &Clause, version: &Version, raw: &str) -> bool {
    if clause.op == Op::Arbitrary {
        return raw.trim().eq_ignore_ascii_case(clause.version.trim());
    }
    let Ok(specifier) = VersionSpecifier::from_str(&clause.render()) else {
        return true;
    };
    if *specifier.operator() == Operator::LessThan {
        return less_than(specifier.version(), version);
    }
    specifier.contains(version)
}

fn less_than(bound: &Version, version: &Version) -> bool {
    let version = version.clone().without_local();
    if version >= *bound {
        return false;
    }
    if bound.any_prerelease() || !version.any_prerelease() {
        return true;
    }
    // The release this pre-release leads to: `1.0a1.post1` -> `1.0`, `1.0.post2.dev1` ->
    // `1.0.post2`.
    let target = if version.is_pre() {
        version.with_pre(None).with_post(None).with_dev(None)
    } else {
        version.with_dev(None)
    };
    target != *bound
}

/// Whether a locked version satisfies every constraint.
pub(super) fn satisfies(constraints: &[String], version_text: &str) -> bool {
    let Ok(version) = Version::from_str(version_text) else {
        return true;
    };
    constraints
        .iter()
        .all(|constraint| match parse_poetry_constraint(constraint) {
            Ok(alternatives) => alternatives.iter().any(|clauses| {
                clauses
                    .iter()
                    .all(|clause| clause_matches(clause, &version, version_text))
            }),
            Err(_) => true,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sat(constraint: &str, version: &str) -> bool {
        satisfies(&[constraint.to_string()], version)
    }

    #[test]
    fn version_matching() {
        assert!(sat("^2.0", "2.31.0"));
        assert!(!sat("^2.0", "3.0.0"));
        assert!(!sat("<2.0", "2.0.0rc1"));
        assert!(!sat("<2.0", "2.0.dev3"));
        assert!(sat("<2.0", "1.9rc1"));
        assert!(sat("<2.0rc2", "2.0rc1"));
        assert!(sat(">=1.5.6,<1.5.7 || >1.5.7", "1.7.1"));
        assert!(!sat(">=1.5.6,<1.5.7 || >1.5.7", "1.5.7"));
        assert!(sat("==1.2.*", "1.2.9"));
        assert!(sat("~=1.2", "1.9"));
        assert!(!sat("~=1.2.0", "1.3"));
        assert!(sat("==1.0", "1.0+cpu"));
        assert!(sat("===1.0-weird", "1.0-WEIRD"));
        assert!(sat("not a constraint", "1.0"));
        assert!(sat("^1", "not a version"));
    }

    #[test]
    fn greater_than_1_0_does_not_accept_1_0_post1() {
        // PEP 440: `>V` must not match a post-release of V unless V is one.
        assert!(!sat(">1.0", "1.0.post1"));
        assert!(sat(">1.0", "1.0.1"));
        assert!(sat(">1.0.post1", "1.0.post2"));
    }

    #[test]
    fn less_than_1_0_post2_accepts_1_0a1() {
        // `1.0a1` is a pre-release of 1.0, not of 1.0.post2, and sorts below it.
        assert!(sat("<1.0.post2", "1.0a1"));
        assert!(sat("<1.0.post2", "1.0"));
        // Pre-releases of the bound itself stay out.
        assert!(!sat("<1.0.post2", "1.0.post2.dev1"));
        assert!(!sat("<1.0", "1.0a1.post1"));
    }
}
