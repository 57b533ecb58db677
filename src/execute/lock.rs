//! One build of a given image key at a time per engine, across processes: two `build`s of the
//! same connector started together would otherwise both run the install and tag different
//! images, and the first one's report would name an image no longer tagged. The second waits
//! for the first and then takes its result from the cache.
//!
//! An advisory `flock` on a file per (engine, key) in the user's cache folder; it is released
//! when the build's future ends, however it ends (the file is closed), and by the kernel if
//! the process dies. Hand-written over libc: std's `File::try_lock` is newer than this
//! crate's minimum Rust version, and the lock must be awaited without blocking a thread.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use crate::plan::canonical::sha256_hex;

/// How often a waiting build tries the lock again.
const POLL: Duration = Duration::from_millis(200);

/// Held while one build of a key runs on one engine.
pub struct BuildLock {
    _file: File,
}

/// Whether the lock was taken at once, or after waiting for another build.
pub enum Acquired {
    AtOnce(BuildLock),
    AfterWaiting(BuildLock),
}

/// Takes the lock for `key` on the engine at `host`, waiting (without blocking a thread) for
/// another process or task that holds it. `None` when no lock file can be made (no cache
/// folder): the build then runs unserialised, as before, rather than not at all.
pub async fn acquire(host: &str, key: &str) -> Option<Acquired> {
    acquire_in(super::user_cache_dir()?.join("locks"), host, key).await
}

async fn acquire_in(dir: PathBuf, host: &str, key: &str) -> Option<Acquired> {
    std::fs::create_dir_all(&dir).ok()?;
    let name = sha256_hex(format!("{host}\n{key}").as_bytes());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{name}.lock")))
        .ok()?;
    let mut waited = false;
    loop {
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            let lock = BuildLock { _file: file };
            return Some(if waited {
                Acquired::AfterWaiting(lock)
            } else {
                Acquired::AtOnce(lock)
            });
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            tracing::debug!(error = %err, "build lock unavailable; building unserialised");
            return None;
        }
        if !waited {
            tracing::info!(
                key,
                "another build of the same image is running; waiting for it"
            );
            waited = true;
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_taker_waits_until_the_first_lets_go() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().to_path_buf();
        let first = acquire_in(dir.clone(), "unix:///x", "k").await.unwrap();
        assert!(matches!(first, Acquired::AtOnce(_)));
        let again = dir.clone();
        let second = tokio::spawn(async move {
            matches!(
                acquire_in(again, "unix:///x", "k").await,
                Some(Acquired::AfterWaiting(_))
            )
        });
        // Another key, or the same key on another engine, is free meanwhile.
        for (host, key) in [("unix:///x", "other"), ("tcp://y:2375", "k")] {
            assert!(matches!(
                acquire_in(dir.clone(), host, key).await,
                Some(Acquired::AtOnce(_))
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!second.is_finished());
        drop(first);
        assert!(second.await.unwrap());
    }
}
