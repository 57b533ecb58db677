//! Error text for people and for reports: a message, its causes, and hints on lines of their
//! own after them (as uv's style guide puts them).
//!
//! Library errors write a hint into their `Display` text after [`HINT`] (`"\nhint: "`), so
//! it survives any wrapping by other errors; [`error_chain`] moves every hint of the chain
//! after the last cause. This module imports nothing of the crate: every layer may use it.

use std::error::Error;

/// What separates a message from its hint in an error's `Display` text.
pub const HINT: &str = "\nhint: ";

/// The message and causes of `e`, one per line (`  caused by: ...`), then its hints, one
/// per line (`hint: ...`). Used for the terminal (after `error: `), reports and `--json`.
pub fn error_chain(e: &dyn Error) -> String {
    let mut lines = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    let mut current: Option<&dyn Error> = Some(e);
    while let Some(err) = current {
        let text = err.to_string();
        let mut parts = text.split(HINT);
        let message = parts.next().unwrap_or_default().to_string();
        for hint in parts {
            if !hints.iter().any(|h| h == hint) {
                hints.push(hint.to_string());
            }
        }
        // A wrapper that prints its cause's text (`{0}`) would repeat it as the next line.
        if lines.last() != Some(&message) {
            lines.push(message);
        }
        current = err.source();
    }
    let mut out = lines.join("\n  caused by: ");
    for hint in hints {
        out.push_str(HINT);
        out.push_str(&hint);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read the file\nhint: check the path")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("the build failed")]
    struct Outer(#[source] Inner);

    #[test]
    fn hints_go_after_every_cause_on_their_own_line() {
        assert_eq!(
            error_chain(&Outer(Inner)),
            "the build failed\n  caused by: cannot read the file\nhint: check the path"
        );
    }

    #[test]
    fn an_error_without_hint_or_cause_is_its_message() {
        #[derive(Debug, thiserror::Error)]
        #[error("plain")]
        struct Plain;
        assert_eq!(error_chain(&Plain), "plain");
    }
}
