//! TOML errors on one line with their place, `path:line:col: message`, like the YAML ones;
//! toml's own rendering spans several lines with a drawing of the source.

use std::path::Path;

/// `path:line:col` (or `path` when toml gives no place) and toml's message.
pub fn locate(path: &Path, text: &str, e: &toml::de::Error) -> (String, String) {
    let message = e.message().trim_end().to_string();
    let Some(span) = e.span() else {
        return (path.display().to_string(), message);
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (format!("{}:{line}:{col}", path.display()), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_of_the_error() {
        let text = "a = 1\nb = \"x\nc = 2\n";
        let e = toml::from_str::<toml::Table>(text).unwrap_err();
        let (at, message) = locate(Path::new("p.toml"), text, &e);
        assert_eq!(at, "p.toml:2:7");
        assert!(!message.contains('\n') && !message.is_empty(), "{message}");
    }
}
