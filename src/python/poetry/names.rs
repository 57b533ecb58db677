//! Distribution names.

/// PEP 503 normalisation: lowercase, runs of `-`, `_`, `.` become one `-`.
///
/// Hand-written rather than `pep508_rs::PackageName`, which refuses names it finds invalid:
/// a pyproject key is matched against the lock whatever it holds.
pub(crate) fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
            continue;
        }
        if separator && !out.is_empty() {
            out.push('-');
        }
        separator = false;
        out.extend(c.to_lowercase());
    }
    out
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Splits the distribution name off the front of a requirement string such as
/// `PySocks (>=1.5.6,!=1.5.7)`.
pub(crate) fn leading_name(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    let end = text.find(|c: char| !is_name_char(c)).unwrap_or(text.len());
    let (name, rest) = text.split_at(end);
    if name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        Some((name, rest))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_names() {
        assert_eq!(normalize_name("Zope_Interface"), "zope-interface");
        assert_eq!(normalize_name("ruamel.yaml"), "ruamel-yaml");
        assert_eq!(normalize_name("Foo.-_Bar"), "foo-bar");
        assert_eq!(normalize_name("PySocks"), "pysocks");
        assert_eq!(
            leading_name("PySocks (>=1.5.6)"),
            Some(("PySocks", " (>=1.5.6)"))
        );
        assert_eq!(leading_name("(x)"), None);
    }
}
