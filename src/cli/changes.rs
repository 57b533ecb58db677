//! Printing what an edit of users' files did or would do: diffs for `--dry-run`, and the
//! one-line release summary of `migrate-to-base-image` and `bump-version`.

use std::path::{Path, PathBuf};

use connector_build::edit::FileChange;
use connector_build::migrate::bump::Release;

/// A path as the user would type it: relative to the current folder when inside it.
pub fn shown(path: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

pub fn print_diffs(changes: &[FileChange]) {
    for c in changes {
        let c = FileChange {
            path: shown(&c.path),
            ..c.clone()
        };
        print!("{}", c.diff());
    }
}

/// `migrated source-foo: 1.0.0 -> 1.0.1<extra>`, saying when no changelog row was added.
pub fn release_line(verb: &str, connector: &str, release: &Release, extra: &str) -> String {
    let no_row = if release.docs_page.is_none() {
        " (no documentation page, so no changelog row)"
    } else {
        ""
    };
    format!(
        "{verb} {connector}: {} -> {}{extra}{no_row}",
        release.old_version, release.new_version
    )
}
