//! `--checkpoint FILE`: how far a replay got, so `--resume` goes on from
//! there without sending anything twice.
//!
//! The file names the source, topic, history (epoch), range and run id,
//! and `next`: the first source offset the destination has not
//! acknowledged. Everything before `next` is stored at the destination;
//! records from `next` on may or may not be (they were in flight when the
//! replay stopped), and are sent again with the same publish ids, which the
//! destination's dedup window turns into no-ops.
//!
//! Writes are atomic: a temporary file beside it, fsynced, renamed over the
//! old one, and the directory fsynced, so a crash leaves the old checkpoint
//! or the new one, never a torn one. They run on a task of their own that
//! always writes the latest acknowledged offset: a slow disk makes the
//! checkpoint lag by one write, never the replay.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::error::ReplayError;
use crate::error::CliError;

/// The format's version: a resume refuses files of another.
const VERSION: u32 = 1;

/// What a checkpoint file holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// [`VERSION`].
    pub(crate) version: u32,
    /// The source: a data directory or a server URL.
    pub(crate) source: String,
    /// The source topic.
    pub(crate) topic: String,
    /// The source history the offsets belong to.
    pub(crate) epoch: String,
    /// The destination (as given on the command line).
    pub(crate) destination: String,
    /// The destination topic.
    pub(crate) to_topic: String,
    /// The run id in every publish id.
    pub(crate) run: String,
    /// The range's first offset.
    pub(crate) from: u64,
    /// The offset after the range.
    pub(crate) to: u64,
    /// The first offset not acknowledged by the destination.
    pub(crate) next: u64,
}

impl Checkpoint {
    /// Read `path`.
    pub(crate) fn load(path: &Path) -> Result<Self, CliError> {
        let bad = |why: String| ReplayError::Checkpoint {
            path: path.to_owned(),
            why,
        };
        let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let c: Self =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a checkpoint: {e}")))?;
        if c.version != VERSION {
            return Err(bad(format!("version {} (this wse reads {VERSION})", c.version)).into());
        }
        if !(c.from <= c.next && c.next <= c.to) {
            return Err(bad(format!("next {} is outside {}..{}", c.next, c.from, c.to)).into());
        }
        Ok(c)
    }

    /// Write it to `path` atomically (temporary file, fsync, rename,
    /// directory fsync).
    pub(crate) fn store(&self, path: &Path) -> Result<(), CliError> {
        let io = |what: &str, e| CliError::io(format!("{what} {}", path.display()), e);
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)
            .map_err(|e| io("create a temporary file beside", e))?;
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other);
        let text = text.map_err(|e| io("encode", e))?;
        tmp.write_all(&text)
            .and_then(|()| tmp.write_all(b"\n"))
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| io("write", e))?;
        tmp.persist(path).map_err(|e| io("replace", e.error))?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("fsync the directory of", e))
    }
}

/// Writes the latest acknowledged offset, one write at a time.
pub(crate) struct CheckpointWriter {
    /// The latest `next` to write.
    latest: watch::Sender<u64>,
    /// The writing task; its error, if a write failed.
    task: JoinHandle<Result<(), CliError>>,
}

impl CheckpointWriter {
    /// Store `first` now, then keep `path` up to date on a task.
    pub(crate) fn start(path: PathBuf, first: Checkpoint) -> Result<Self, CliError> {
        first.store(&path)?;
        let (latest, mut rx) = watch::channel(first.next);
        let task = tokio::spawn(async move {
            let mut c = first;
            // Ends when the sender is dropped, after the last value.
            while rx.changed().await.is_ok() {
                let next = *rx.borrow_and_update();
                if next == c.next {
                    continue;
                }
                c.next = next;
                let (p, one) = (path.clone(), c.clone());
                tokio::task::spawn_blocking(move || one.store(&p))
                    .await
                    .map_err(|e| {
                        CliError::io("write the checkpoint", std::io::Error::other(e))
                    })??;
            }
            // The last value may have come with the close.
            let next = *rx.borrow();
            if next != c.next {
                c.next = next;
                tokio::task::spawn_blocking(move || c.store(&path))
                    .await
                    .map_err(|e| {
                        CliError::io("write the checkpoint", std::io::Error::other(e))
                    })??;
            }
            Ok(())
        });
        Ok(Self { latest, task })
    }

    /// Everything before `next` is acknowledged.
    pub(crate) fn advance(&self, next: u64) {
        self.latest.send_replace(next);
    }

    /// Write the last value and stop.
    pub(crate) async fn finish(self) -> Result<(), CliError> {
        drop(self.latest);
        self.task
            .await
            .map_err(|e| CliError::io("write the checkpoint", std::io::Error::other(e)))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_round_trips_and_a_bad_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        let c = Checkpoint {
            version: VERSION,
            source: "/data".into(),
            topic: "chat".into(),
            epoch: "6b238eba".into(),
            destination: "http://127.0.0.1:5008".into(),
            to_topic: "chat".into(),
            run: "0000abcd".into(),
            from: 10,
            to: 20,
            next: 15,
        };
        c.store(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), c);
        let bad = Checkpoint { next: 25, ..c };
        bad.store(&path).unwrap();
        assert!(Checkpoint::load(&path).is_err());
        std::fs::write(&path, "{").unwrap();
        assert!(Checkpoint::load(&path).is_err());
    }
}
