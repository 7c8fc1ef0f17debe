//! Read-only access to a data directory, for tools: list topics, inspect,
//! dump, follow, verify. It takes no lock and never writes, so it works on
//! the directory of a running server: segments describe themselves, and a
//! record still being written at the end of a segment is simply not there
//! yet.

use std::path::{Path, PathBuf};

use crate::error::{LogError, Result};
use crate::files::FileCache;
use crate::layout::Layout;
use crate::load::{self, Finding, Loaded, LoadedTopic, ScanSettings};
use crate::position::Epoch;
use crate::read::{DiskRead, ReadLimits, seek_in};
use crate::record::Record;
use crate::topic_name::topic_key;

/// Opens a data directory for reading only.
pub struct DirReader {
    layout: Layout,
    files: FileCache,
    settings: ScanSettings,
}

/// A topic as stored on disk.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TopicSummary {
    /// The topic name.
    pub name: String,
    /// The stored history's epoch.
    pub epoch: Epoch,
    /// Oldest stored offset.
    pub first_offset: u64,
    /// Offset after the newest stored record.
    pub next_offset: u64,
    /// Bytes of all segments.
    pub bytes: u64,
    /// The topic's directory.
    pub dir: PathBuf,
    /// Its segments, oldest first.
    pub segments: Vec<SegmentSummary>,
    /// Torn tails and corruption seen while loading (not repaired here).
    #[serde(skip)]
    pub findings: Vec<Finding>,
}

/// One segment file as stored.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SegmentSummary {
    /// The segment file.
    pub path: PathBuf,
    /// Offset of its first record.
    pub base_offset: u64,
    /// Offset after its last record.
    pub end_offset: u64,
    /// Bytes (header included).
    pub bytes: u64,
    /// Time of the first record, microseconds since the Unix epoch.
    pub first_ts_us: u64,
    /// Time of the last record.
    pub last_ts_us: u64,
    /// Position of a corrupt record, if any.
    pub corrupt_at: Option<u64>,
}

/// A topic directory that could not be loaded as a topic.
#[derive(Clone, Debug)]
pub struct Unreadable {
    /// The directory.
    pub dir: PathBuf,
    /// Why.
    pub why: String,
}

impl DirReader {
    /// Read the data directory `dir`, with the default limits.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let defaults = crate::LogConfig::default();
        Self::with_settings(
            dir,
            defaults.max_record_bytes,
            defaults.index_interval_bytes,
        )
    }

    /// Read `dir`, accepting records of up to `max_record_bytes` payload.
    pub fn with_settings(
        dir: impl AsRef<Path>,
        max_record_bytes: usize,
        index_interval_bytes: u64,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(LogError::io(
                "open",
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such data directory"),
            ));
        }
        Ok(Self {
            layout: Layout::new(dir),
            files: FileCache::new(
                std::sync::Arc::new(crate::storage::FsStorage),
                64,
                false,
                false,
            ),
            settings: ScanSettings {
                max_payload: max_record_bytes,
                index_interval: index_interval_bytes,
            },
        })
    }

    /// The directory's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Every topic, sorted by name, and the directories that are not
    /// readable topics.
    pub fn topics(&self) -> Result<(Vec<TopicSummary>, Vec<Unreadable>)> {
        self.files.clear();
        let dirs = self
            .layout
            .list_topic_dirs()
            .map_err(|e| LogError::io("list", self.layout.topics_dir(), e))?;
        let mut topics = Vec::new();
        let mut bad = Vec::new();
        for (key, dir) in dirs {
            match self.load(key, &dir)? {
                Loaded::Topic(lt) => topics.push(summary(lt, dir)),
                Loaded::Empty => {}
                Loaded::Unprovable { why, .. } => bad.push(Unreadable {
                    dir,
                    why: why.to_string(),
                }),
            }
        }
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((topics, bad))
    }

    /// One topic, if it is stored here.
    pub fn topic(&self, name: &str) -> Result<Option<TopicSummary>> {
        // Files of a topic deleted and recreated since the last look have
        // the same names: forget the old handles.
        self.files.clear();
        let key = topic_key(name);
        let dir = self.layout.topic_dir(key);
        if !dir.is_dir() {
            return Ok(None);
        }
        match self.load(key, &dir)? {
            Loaded::Topic(lt) if lt.name == name => Ok(Some(summary(lt, dir))),
            Loaded::Topic(_) | Loaded::Empty => Ok(None),
            Loaded::Unprovable { why, .. } => Err(LogError::Unreadable {
                dir,
                why: why.to_string(),
            }),
        }
    }

    /// Records of `topic` from offset `from`, within `limits` (validated).
    /// A batch stops right before damage; a read that starts in it gets
    /// [`LogError::Damaged`], whose `resume_at` is where to read on.
    pub fn read(&self, topic: &TopicSummary, from: u64, limits: ReadLimits) -> Result<Vec<Record>> {
        if from < topic.first_offset {
            return Err(LogError::NotRecoverable(crate::error::NotRecoverable {
                topic: topic.name.clone(),
                requested: crate::Position::new(topic.epoch, from),
                reason: crate::error::NotRecoverableReason::Removed,
                epoch: topic.epoch,
                first_offset: topic.first_offset,
                next_offset: topic.next_offset,
            }));
        }
        let infos = self.segment_infos(topic)?;
        let disk = DiskRead {
            files: &self.files,
            topic: &topic.name,
            epoch: topic.epoch,
            max_payload: self.settings.max_payload,
        };
        match disk.read(from, topic.next_offset, limits, |o| seek_in(&infos, o)) {
            Ok(r) => Ok(r),
            Err(None) => Ok(Vec::new()),
            Err(Some(e)) => Err(e),
        }
    }

    /// The offset of the first record of `topic` appended at or after
    /// `ts_us` (microseconds since the Unix epoch); the topic's next offset
    /// when every stored record is older. For `--since` and replay ranges
    /// given by time.
    ///
    /// Timestamps are append times, which follow the server's wall clock:
    /// the segment whose last record is at or after `ts_us` is found from
    /// the segment summaries, then read from its start.
    pub fn offset_at_time(&self, topic: &TopicSummary, ts_us: u64) -> Result<u64> {
        let Some(seg) = topic.segments.iter().find(|s| s.last_ts_us >= ts_us) else {
            return Ok(topic.next_offset);
        };
        let mut next = seg.base_offset.max(topic.first_offset);
        while next < topic.next_offset {
            let page = self.read(topic, next, ReadLimits::default())?;
            let Some(last) = page.last() else { break };
            if let Some(r) = page.iter().find(|r| r.timestamp_us() >= ts_us) {
                return Ok(r.offset());
            }
            next = last.offset() + 1;
        }
        Ok(topic.next_offset)
    }

    fn segment_infos(
        &self,
        topic: &TopicSummary,
    ) -> Result<Vec<crate::segment::info::SegmentInfo>> {
        match self.load(topic_key(&topic.name), &topic.dir)? {
            Loaded::Topic(lt) => Ok(lt.segments),
            _ => Ok(Vec::new()),
        }
    }

    fn load(&self, key: u128, dir: &Path) -> Result<Loaded> {
        load::load_topic_dir(dir, key, self.settings).map_err(|e| LogError::io("scan", dir, e))
    }

    /// Check every segment, record and index entry, and list every damaged
    /// range (see [`crate::verify`]).
    pub fn verify(&self) -> Result<crate::verify::VerifyReport> {
        self.files.clear();
        crate::verify::verify_dir(&self.layout, &self.files, self.settings)
    }
}

fn summary(lt: LoadedTopic, dir: PathBuf) -> TopicSummary {
    let next_offset = lt.next_offset();
    TopicSummary {
        first_offset: lt.segments.first().map_or(0, |s| s.base),
        next_offset,
        bytes: lt.segments.iter().map(|s| s.len).sum(),
        segments: lt
            .segments
            .iter()
            .map(|s| SegmentSummary {
                path: s.path.clone(),
                base_offset: s.base,
                end_offset: s.end_offset,
                bytes: s.len,
                first_ts_us: s.first_ts_us,
                last_ts_us: s.last_ts_us,
                corrupt_at: s.corrupt_at,
            })
            .collect(),
        name: lt.name,
        epoch: lt.epoch,
        dir,
        findings: lt.findings,
    }
}
