//! Opening a log: take the directory lock, find out whether the last run
//! ended cleanly, load every topic from its segments, repair torn tails and
//! damaged indexes, and decide each topic's epoch.
//!
//! Epochs are kept whenever the history on disk is intact. A topic gets a
//! new epoch (and its old files are set aside in `lost+found/`) only when
//! its history cannot be proven intact: no segment header left to name it,
//! segments that disagree, a registered history whose files are gone, or an
//! OS crash under a policy that does not fsync every append. A single
//! segment with a damaged header is quarantined alone (`quarantine`): the
//! topic keeps its epoch and its other segments.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Durability;
use crate::error::{LogError, Result};
use crate::layout::{self, Layout};
use crate::load::{self, Finding, Loaded, LoadedTopic, ScanSettings, Unprovable};
use crate::meta::TopicMeta;
use crate::position::Epoch;
use crate::quarantine;
use crate::shared::Shared;
use crate::storage::{self, OpenMode, Storage, write_all_at};
use crate::topic::{Topic, persist_index};
use crate::topic_name::{key_hex, topic_key};

/// What opening a log found and did.
#[derive(Clone, Debug, Default)]
pub struct OpenReport {
    /// The previous run did not close the log.
    pub unclean_shutdown: bool,
    /// The previous run ended with the operating system going down (its
    /// boot id differs), so data not yet fsynced may be lost.
    pub os_restarted: bool,
    /// Topics loaded.
    pub topics: usize,
    /// Repairs and corruption found, per topic.
    pub findings: Vec<(String, Finding)>,
    /// Topics whose history was replaced by a new epoch, and why.
    pub new_epochs: Vec<EpochChange>,
}

/// A topic whose stored history could not be kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochChange {
    /// The topic, when known.
    pub topic: Option<String>,
    /// The epoch of the history that was set aside.
    pub old: Option<Epoch>,
    /// Why.
    pub reason: String,
    /// Where its files went.
    pub set_aside: Option<PathBuf>,
}

/// The held directory lock; released when dropped.
pub struct DirLock {
    _file: File,
}

/// Take the writer's lock on the data directory.
pub fn lock_dir(layout: &Layout) -> Result<DirLock> {
    let path = layout.lock_file();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LogError::io("open", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(_) => Err(LogError::Locked {
            dir: layout.root().to_owned(),
            lock: path,
        }),
    }
}

/// Record that a writer runs, and read what the previous run left.
/// Returns (unclean shutdown, OS restarted since).
pub fn mark_running(
    storage: &dyn Storage,
    layout: &Layout,
    boot_id_path: &Path,
) -> Result<(bool, bool)> {
    let path = layout.running_file();
    let previous = match fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(LogError::io("read", &path, e)),
    };
    let boot = layout::boot_id(boot_id_path);
    let prev_boot = previous.as_deref().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("boot_id "))
            .map(str::to_owned)
    });
    let os_restarted = matches!((&prev_boot, &boot), (Some(a), Some(b)) if a != b);
    let body = format!(
        "boot_id {}\npid {}\n",
        boot.as_deref().unwrap_or("unknown"),
        std::process::id()
    );
    let f = storage
        .open(&path, OpenMode::CreateTruncate)
        .map_err(|e| LogError::io("create", &path, e))?;
    write_all_at(&*f, body.as_bytes(), 0)
        .and_then(|()| f.sync_all())
        .map_err(|e| LogError::io("write", &path, e))?;
    storage
        .sync_dir(layout.root())
        .map_err(|e| LogError::io("fsync", layout.root(), e))?;
    Ok((previous.is_some(), os_restarted))
}

/// Remove the running marker at a clean close.
pub fn mark_stopped(storage: &dyn Storage, layout: &Layout) -> Result<()> {
    let path = layout.running_file();
    storage::remove_if_present(storage, &path).map_err(|e| LogError::io("remove", &path, e))?;
    storage
        .sync_dir(layout.root())
        .map_err(|e| LogError::io("fsync", layout.root(), e))
}

/// Load every topic of the data directory into `shared.topics`: each
/// directory is loaded (or set aside, or removed when empty), then the
/// registered histories whose files are gone are retired.
pub fn load_topics(shared: &Shared, unclean: bool, os_restarted: bool) -> Result<OpenReport> {
    let mut loading = Loading::new(shared, unclean, os_restarted)?;
    let dirs = shared
        .layout
        .list_topic_dirs()
        .map_err(|e| LogError::io("list", shared.layout.topics_dir(), e))?;
    for (key, dir) in dirs {
        loading.topic_dir(key, dir)?;
    }
    loading.retire_missing()?;
    loading.finish()
}

/// Loading a log's topics: the registry, brought in line with the
/// segments on disk directory by directory, and what is reported.
struct Loading<'a> {
    shared: &'a Shared,
    /// The OS restarted since the last run: a topic not fsynced at every
    /// append cannot prove its tail.
    os_restarted: bool,
    settings: ScanSettings,
    /// The registered topics by name, updated as directories load.
    registry: HashMap<String, TopicMeta>,
    /// Registered names by directory key: the name of a directory whose
    /// segment headers cannot say it.
    by_key: HashMap<u128, String>,
    /// Topics whose directory was found; the rest of the registry lost
    /// its files.
    seen: HashSet<String>,
    report: OpenReport,
}

impl<'a> Loading<'a> {
    /// Start from the registry as the metadata store has it.
    fn new(shared: &'a Shared, unclean: bool, os_restarted: bool) -> Result<Self> {
        let registry: HashMap<String, TopicMeta> = shared
            .meta
            .load()
            .map_err(LogError::Meta)?
            .into_iter()
            .map(|m| (m.name.clone(), m))
            .collect();
        let by_key = registry.keys().map(|n| (topic_key(n), n.clone())).collect();
        Ok(Self {
            shared,
            os_restarted,
            settings: ScanSettings {
                max_payload: shared.config.max_record_bytes,
                index_interval: shared.config.index_interval_bytes,
            },
            registry,
            by_key,
            seen: HashSet::new(),
            report: OpenReport {
                unclean_shutdown: unclean,
                os_restarted,
                ..OpenReport::default()
            },
        })
    }

    /// Load the topic directory `dir` (named by `key`).
    fn topic_dir(&mut self, key: u128, dir: PathBuf) -> Result<()> {
        let loaded = load::load_topic_dir(&dir, key, self.settings)
            .map_err(|e| LogError::io("scan", &dir, e))?;
        match loaded {
            Loaded::Empty => {
                // A directory created by a run that crashed before its first
                // segment was complete: nothing to keep.
                let _ = self.shared.files.storage().remove_dir_all(&dir);
                Ok(())
            }
            Loaded::Unprovable { name, epoch, why } => {
                self.unprovable(key, &dir, name, epoch, &why)
            }
            Loaded::Topic(lt) => self.topic(key, dir, lt),
        }
    }

    /// A history that cannot be proven intact: its files go aside and its
    /// epoch is retired, so the topic's next append starts a new one.
    fn unprovable(
        &mut self,
        key: u128,
        dir: &Path,
        name: Option<String>,
        epoch: Option<Epoch>,
        why: &Unprovable,
    ) -> Result<()> {
        let name = name.or_else(|| self.by_key.get(&key).cloned());
        let aside = set_aside(self.shared, dir, key, epoch)?;
        if let Some(n) = &name {
            let m = self
                .registry
                .entry(n.clone())
                .or_insert_with(|| TopicMeta::new(n, epoch.map_or(0, |e| e.0)));
            if let Some(e) = epoch {
                m.epoch = Some(e.0);
            }
            m.retire();
            self.shared.meta.put(m).map_err(LogError::Meta)?;
            self.seen.insert(n.clone());
        }
        self.report.new_epochs.push(EpochChange {
            topic: name,
            old: epoch,
            reason: why.to_string(),
            set_aside: Some(aside),
        });
        Ok(())
    }

    /// A topic whose history loaded: quarantine its bad headers, repair
    /// it, and keep it, unless an OS restart may have cost it appends.
    fn topic(&mut self, key: u128, dir: PathBuf, lt: LoadedTopic) -> Result<()> {
        let shared = self.shared;
        let mut lt = quarantine::quarantine_bad_headers(shared, &dir, key, lt, self.settings)?;
        repair(shared.files.storage(), &dir, &mut lt)?;
        for f in &lt.findings {
            self.report.findings.push((lt.name.clone(), f.clone()));
        }
        self.seen.insert(lt.name.clone());
        let meta = self
            .registry
            .entry(lt.name.clone())
            .or_insert_with(|| TopicMeta::new(&lt.name, lt.epoch.0));
        let unsynced = shared.config.durability != Durability::Always;
        if self.os_restarted && unsynced && lt.next_offset() > 0 {
            let change = lost_to_os_restart(shared, &dir, key, &lt, meta)?;
            self.report.new_epochs.push(change);
            return Ok(());
        }
        follow_segments(shared, meta, lt.epoch)?;
        let name: Arc<str> = Arc::from(lt.name.as_str());
        let topic = Topic::new(
            name.clone(),
            dir,
            lt.epoch,
            lt.segments,
            0,
            meta.retention,
            shared.now_ms(),
        );
        shared.topics.insert(name, Arc::new(topic));
        Ok(())
    }

    /// Retire the registered histories whose files are gone: the topic
    /// cannot serve them, so its next append starts a new epoch.
    fn retire_missing(&mut self) -> Result<()> {
        for (name, meta) in self.registry.iter_mut() {
            if self.seen.contains(name) || meta.epoch.is_none() {
                continue;
            }
            self.report.new_epochs.push(EpochChange {
                topic: Some(name.clone()),
                old: meta.epoch.map(Epoch),
                reason: "its segment files are missing".into(),
                set_aside: None,
            });
            meta.retire();
            self.shared.meta.put(meta).map_err(LogError::Meta)?;
        }
        Ok(())
    }

    /// Make the registry durable, then log and return the report.
    fn finish(self) -> Result<OpenReport> {
        self.shared.meta.flush().map_err(LogError::Meta)?;
        let mut report = self.report;
        report.topics = self.shared.topics.len();
        for (topic, f) in &report.findings {
            tracing::warn!(topic = %topic, "{f}");
        }
        for c in &report.new_epochs {
            tracing::warn!(topic = ?c.topic, old = ?c.old, "history replaced: {}", c.reason);
        }
        Ok(report)
    }
}

/// A topic whose newest appends may be lost (the OS went down and the
/// durability policy does not fsync every append): its files go aside and
/// its epoch is retired, so clients holding a position in it learn that
/// their history is gone rather than miss records silently.
fn lost_to_os_restart(
    shared: &Shared,
    dir: &Path,
    key: u128,
    lt: &LoadedTopic,
    meta: &mut TopicMeta,
) -> Result<EpochChange> {
    let aside = set_aside(shared, dir, key, Some(lt.epoch))?;
    meta.epoch = Some(lt.epoch.0);
    meta.retire();
    shared.meta.put(meta).map_err(LogError::Meta)?;
    Ok(EpochChange {
        topic: Some(lt.name.clone()),
        old: Some(lt.epoch),
        reason: format!(
            "the OS restarted without a clean close and durability is {}: \
             appends after the last fsync may be lost",
            shared.config.durability.name()
        ),
        set_aside: Some(aside),
    })
}

/// The segments are the truth; the registry follows them: an epoch it
/// names that the segments do not is retired.
fn follow_segments(shared: &Shared, meta: &mut TopicMeta, epoch: Epoch) -> Result<()> {
    if meta.epoch != Some(epoch.0) {
        meta.retire();
        meta.retired_epochs.retain(|e| *e != epoch.0);
        meta.epoch = Some(epoch.0);
        shared.meta.put(meta).map_err(LogError::Meta)?;
    }
    Ok(())
}

/// Apply the repairs a scan proposes: cut torn tails, remove incomplete
/// segment files, rewrite damaged indexes.
fn repair(storage: &dyn Storage, dir: &Path, lt: &mut LoadedTopic) -> Result<()> {
    for f in &lt.findings {
        match f {
            Finding::TornTail { segment, at, .. } => {
                let file = storage
                    .open(segment, OpenMode::ReadWrite)
                    .map_err(|e| LogError::io("open", segment, e))?;
                file.set_len(*at)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| LogError::io("truncate", segment, e))?;
            }
            Finding::TornCreation { segment } => {
                storage
                    .remove_file(segment)
                    .map_err(|e| LogError::io("remove", segment, e))?;
                let _ = storage.remove_file(&segment.with_extension("idx"));
            }
            Finding::IndexRebuilt { .. }
            | Finding::Corruption { .. }
            | Finding::BadHeader { .. } => {}
        }
    }
    for seg in &mut lt.segments {
        if seg.index_persisted < seg.index.len() || seg.index_persisted == 0 {
            seg.index_persisted = 0;
            if !seg.index.is_empty() {
                persist_index(storage, dir, seg)
                    .map_err(|e| LogError::io("write index of", dir, e))?;
            }
        }
    }
    Ok(())
}

/// Move a topic directory into `lost+found/`, where nothing reads it.
fn set_aside(shared: &Shared, dir: &Path, key: u128, epoch: Option<Epoch>) -> Result<PathBuf> {
    let storage = shared.files.storage();
    let lf = shared.layout.lost_found_dir();
    storage
        .create_dir_all(&lf)
        .map_err(|e| LogError::io("create", &lf, e))?;
    let epoch = epoch.map_or_else(|| "unknown".to_owned(), |e| e.to_string());
    let dest = lf.join(format!("{}-{epoch}-{}", key_hex(key), shared.now_us()));
    storage
        .rename(dir, &dest)
        .map_err(|e| LogError::io("rename", dir, e))?;
    shared.files.forget_dir(dir);
    storage
        .sync_dir(&lf)
        .map_err(|e| LogError::io("fsync", &lf, e))?;
    if let Some(parent) = dir.parent() {
        storage
            .sync_dir(parent)
            .map_err(|e| LogError::io("fsync", parent, e))?;
    }
    Ok(dest)
}

/// A fresh epoch for a new history of the topic described by `meta`: random
/// and never one the topic used before.
pub fn fresh_epoch(meta: &TopicMeta) -> u32 {
    loop {
        let e: u32 = rand::random();
        if !meta.has_used(e) {
            return e;
        }
    }
}
