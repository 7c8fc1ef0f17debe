//! The sled metadata (topic registry, retired epochs, retention
//! overrides), read from a copy: for `inspect` and `backup`.
//!
//! A running server holds `DIR/meta` open (sled locks it), so the tools
//! copy the directory to a temporary one and open the copy. sled's files
//! are crash-consistent, so a copy taken while the server writes is a valid
//! crash image: at worst it misses the newest change.

use std::fs;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use serde::Serialize;
use wse_log::layout::Layout;
use wse_log::{MetaStore, Retention, SledMeta, TopicMeta};

/// What the metadata says about one topic's retention.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum RetentionSetting {
    /// The topic has its own retention.
    Override {
        /// The topic's retention.
        retention: Retention,
    },
    /// The topic uses the server's configured default.
    Default,
    /// The metadata could not be read.
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// The retention of `topic` in the data directory `dir`.
pub fn topic_retention(dir: &Path, topic: &str) -> RetentionSetting {
    match read(dir, topic) {
        Ok(Some(retention)) => RetentionSetting::Override { retention },
        Ok(None) => RetentionSetting::Default,
        Err(reason) => RetentionSetting::Unavailable { reason },
    }
}

fn read(dir: &Path, topic: &str) -> Result<Option<Retention>, String> {
    let all = snapshot(dir)?;
    Ok(all
        .into_iter()
        .find(|m| m.name == topic)
        .and_then(|m| m.retention))
}

/// Every topic's metadata in the data directory `dir`, read from a copy
/// (a running server holds the store open).
pub fn snapshot(dir: &Path) -> Result<Vec<TopicMeta>, String> {
    let meta = Layout::new(dir).meta_dir();
    if !meta.is_dir() {
        return Err(format!("no metadata directory {}", meta.display()));
    }
    // Dropped last (declared first), after the store that uses it.
    let tmp = tempfile::Builder::new()
        .prefix("wse-meta-")
        .tempdir()
        .map_err(|e| format!("create a temporary directory: {e}"))?;
    let copy = tmp.path().join("meta");
    copy_dir(&meta, &copy).map_err(|e| format!("copy {}: {e}", meta.display()))?;
    quietly(|| SledMeta::open(&copy)?.load())
        .map_err(|panic| format!("reading the metadata copy failed: {panic}"))?
        .map_err(|e| e.to_string())
}

/// Copy the directory tree `from` to `to` (regular files and directories).
fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            match fs::copy(entry.path(), &target) {
                Ok(_) => {}
                // sled removed it (a compacted snapshot) while we copied.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Run `f`, turning a panic into an error message. sled's recovery can
/// panic on a damaged database; for `inspect` that is an unreadable
/// setting, not a crash. The panic hook is silenced meanwhile, so the
/// message is printed once, as part of the retention line.
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(hook);
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned())
    })
}
