//! Where replayed records come from: a data directory (read with
//! [`wse_log::DirReader`], which takes no lock, so it works beside the
//! server that writes it) or a running server's HTTP API (`GET
//! /v1/topics/{topic}/records`, whose `text` is each record's exact stored
//! payload).
//!
//! Both give the same thing: the topic's current history (epoch, first and
//! next offset) and its records in offset order, page by page. A source
//! that starts a new history under a replay is an error
//! ([`ReplayError::HistoryChanged`]): the range's offsets would name other
//! records.

use std::path::PathBuf;

use bytes::Bytes;
use hyper::Method;
use serde_json::Value;
use wse_log::{DirReader, ReadLimits, RecordKind, TopicSummary};

use super::error::ReplayError;
use super::http::{HttpClient, path_segment};
use crate::error::CliError;

/// Records one read asks for (the HTTP API gives at most 1,000).
pub(crate) const PAGE: usize = 1000;

/// A topic's current history, as the source holds it.
#[derive(Clone, Debug)]
pub(crate) struct SourceTopic {
    /// The topic.
    pub(crate) name: String,
    /// Its epoch, 8 hex digits.
    pub(crate) epoch: String,
    /// The oldest stored offset.
    pub(crate) first_offset: u64,
    /// The offset after the newest record.
    pub(crate) next_offset: u64,
}

/// One stored record.
#[derive(Clone, Debug)]
pub(crate) struct SourceRecord {
    /// Its offset.
    pub(crate) offset: u64,
    /// When it was appended, microseconds since the Unix epoch.
    pub(crate) timestamp_us: u64,
    /// Message, presence or control.
    pub(crate) kind: RecordKind,
    /// The stored text; `None` when the payload is not UTF-8.
    pub(crate) text: Option<String>,
}

/// A source of records.
// One per run: the size of the directory variant does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Source {
    /// A data directory.
    Dir {
        /// The directory.
        dir: PathBuf,
        /// Its reader.
        reader: DirReader,
        /// The topic as loaded at the start (reads go by its segments).
        summary: Option<TopicSummary>,
    },
    /// A running server's HTTP API.
    Http {
        /// The API's client, with the admin token.
        client: HttpClient,
        /// The epoch the replay reads, once known.
        epoch: Option<String>,
    },
}

impl Source {
    /// The data directory `dir`.
    pub(crate) fn dir(dir: PathBuf) -> Result<Self, CliError> {
        let reader = DirReader::open(&dir)?;
        Ok(Self::Dir {
            dir,
            reader,
            summary: None,
        })
    }

    /// The server at `url`, asked with `token`.
    pub(crate) fn http(url: &str, token: Option<&str>) -> Result<Self, CliError> {
        Ok(Self::Http {
            client: HttpClient::new("--source-http", url, token)?,
            epoch: None,
        })
    }

    /// The source's name, for messages and the checkpoint.
    pub(crate) fn name(&self) -> String {
        match self {
            Self::Dir { dir, .. } => dir.display().to_string(),
            Self::Http { client, .. } => client.url().to_owned(),
        }
    }

    /// `topic` as the source holds it now; [`ReplayError::UnknownTopic`]
    /// when it holds no history of it.
    pub(crate) async fn topic(&mut self, topic: &str) -> Result<SourceTopic, CliError> {
        let source_name = self.name();
        let unknown = || ReplayError::UnknownTopic {
            source_name,
            topic: topic.to_owned(),
        };
        match self {
            Self::Dir {
                reader, summary, ..
            } => {
                let found = tokio::task::block_in_place(|| reader.topic(topic))?;
                let Some(t) = found else {
                    return Err(unknown().into());
                };
                let out = SourceTopic {
                    name: t.name.clone(),
                    epoch: t.epoch.to_string(),
                    first_offset: t.first_offset,
                    next_offset: t.next_offset,
                };
                *summary = Some(t);
                Ok(out)
            }
            Self::Http { client, epoch } => {
                let path = format!("/v1/topics/{}/records?limit=0", path_segment(topic));
                let page = match client.json(Method::GET, &path, Bytes::new()).await {
                    Err(ReplayError::Http { status: 404, .. }) => return Err(unknown().into()),
                    other => other?,
                };
                let field = |name: &str| page[name].as_u64();
                let (Some(e), Some(first), Some(next)) = (
                    page["epoch"].as_str(),
                    field("first_offset"),
                    field("next_offset"),
                ) else {
                    return Err(protocol(client, format!("{path}: no epoch and offsets")));
                };
                *epoch = Some(e.to_owned());
                Ok(SourceTopic {
                    name: topic.to_owned(),
                    epoch: e.to_owned(),
                    first_offset: first,
                    next_offset: next,
                })
            }
        }
    }

    /// Records of `topic` from offset `from`, at most [`PAGE`], in order;
    /// empty when none is left. Call [`Source::topic`] first.
    pub(crate) async fn read(
        &mut self,
        topic: &SourceTopic,
        from: u64,
    ) -> Result<Vec<SourceRecord>, CliError> {
        self.read_at_most(topic, from, PAGE).await
    }

    /// [`Source::read`], at most `limit` records.
    async fn read_at_most(
        &mut self,
        topic: &SourceTopic,
        from: u64,
        limit: usize,
    ) -> Result<Vec<SourceRecord>, CliError> {
        match self {
            Self::Dir {
                reader, summary, ..
            } => {
                let Some(t) = summary.as_ref() else {
                    return Ok(Vec::new());
                };
                let records = tokio::task::block_in_place(|| {
                    reader.read(t, from, ReadLimits::records(limit))
                })?;
                Ok(records
                    .into_iter()
                    .map(|r| SourceRecord {
                        offset: r.offset(),
                        timestamp_us: r.timestamp_us(),
                        kind: r.kind(),
                        text: std::str::from_utf8(r.payload_ref()).ok().map(str::to_owned),
                    })
                    .collect())
            }
            Self::Http { client, epoch } => {
                let path = format!(
                    "/v1/topics/{}/records?from={from}&limit={limit}",
                    path_segment(&topic.name)
                );
                let page = client.json(Method::GET, &path, Bytes::new()).await?;
                let now = page["epoch"].as_str().unwrap_or_default();
                if Some(now) != epoch.as_deref() {
                    return Err(ReplayError::HistoryChanged {
                        topic: topic.name.clone(),
                        was: epoch.clone().unwrap_or_default(),
                        now: now.to_owned(),
                    }
                    .into());
                }
                if page["first_offset"].as_u64().is_some_and(|f| f > from) {
                    return Err(CliError::Removed {
                        topic: topic.name.clone(),
                        from,
                    });
                }
                let records = page["records"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                records
                    .iter()
                    .map(|r| http_record(client, r))
                    .collect::<Result<Vec<_>, _>>()
            }
        }
    }

    /// The offset of the first record of `topic` appended at or after
    /// `ts_us`; the topic's next offset when every record is older.
    ///
    /// A data directory answers from its segments' time ranges
    /// ([`DirReader::offset_at_time`]); a server, which has no such query,
    /// by a binary search over one-record reads (append times follow the
    /// server's clock, so they ascend with offsets).
    pub(crate) async fn offset_at_time(
        &mut self,
        topic: &SourceTopic,
        ts_us: u64,
    ) -> Result<u64, CliError> {
        if let Self::Dir {
            reader,
            summary: Some(t),
            ..
        } = self
        {
            return Ok(tokio::task::block_in_place(|| {
                reader.offset_at_time(t, ts_us)
            })?);
        }
        let (mut lo, mut hi) = (topic.first_offset, topic.next_offset);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.read_at_most(topic, mid, 1).await?.first() {
                Some(r) if r.timestamp_us >= ts_us => hi = mid,
                Some(r) => lo = r.offset + 1,
                None => hi = mid,
            }
        }
        Ok(lo)
    }
}

/// One record of the records endpoint.
fn http_record(client: &HttpClient, r: &Value) -> Result<SourceRecord, CliError> {
    let (Some(offset), Some(timestamp_us)) = (r["offset"].as_u64(), r["timestamp_us"].as_u64())
    else {
        return Err(protocol(
            client,
            format!("a record without offset or time: {r}"),
        ));
    };
    let Some(kind) = r["kind"].as_str() else {
        return Err(protocol(
            client,
            "records carry no `kind` and `text`: the server is older than this \
             `wse` (replay from its data directory instead, with --data-dir)"
                .into(),
        ));
    };
    let kind = kind
        .parse()
        .map_err(|e: String| protocol(client, format!("offset {offset}: {e}")))?;
    Ok(SourceRecord {
        offset,
        timestamp_us,
        kind,
        text: r["text"].as_str().map(str::to_owned),
    })
}

fn protocol(client: &HttpClient, why: String) -> CliError {
    ReplayError::Protocol {
        url: client.url().to_owned(),
        why,
    }
    .into()
}
