//! Why a replay stops: each case says what was asked, what was found and,
//! where there is one, what to do instead.

use std::path::PathBuf;

/// A replay that cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The source has no such topic.
    #[error("no topic {topic:?} in {source_name}")]
    UnknownTopic {
        /// The data directory or server URL.
        source_name: String,
        /// The topic asked for.
        topic: String,
    },
    /// The range holds no record.
    #[error(
        "nothing to replay: the range {from}..{to} of {topic:?} is empty \
         (the topic holds offsets {first}..{next})"
    )]
    EmptyRange {
        /// The topic.
        topic: String,
        /// First offset of the range.
        from: u64,
        /// Offset after the range.
        to: u64,
        /// The topic's oldest stored offset.
        first: u64,
        /// The topic's next offset.
        next: u64,
    },
    /// `--from` names offsets retention already removed.
    #[error(
        "--from {from} is before the oldest stored offset of {topic:?} ({first}): \
         retention removed offsets {from}..{first}; start at {first} or later"
    )]
    BeforeRetention {
        /// The topic.
        topic: String,
        /// The offset asked for.
        from: u64,
        /// The oldest stored offset.
        first: u64,
    },
    /// A URL this command cannot use.
    #[error("{arg} {url:?}: {why}")]
    BadUrl {
        /// The flag.
        arg: &'static str,
        /// What was given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// A server could not be reached or the connection broke.
    #[error("{what} {url}: {why}")]
    Unreachable {
        /// What was being done (`connect to`, `read records from`, ...).
        what: &'static str,
        /// The server.
        url: String,
        /// The underlying error.
        why: String,
    },
    /// A server answered with an error.
    #[error("{url}{path}: HTTP {status}: {body}")]
    Http {
        /// The server.
        url: String,
        /// The request path.
        path: String,
        /// The status code.
        status: u16,
        /// The answer's body (the API's error object).
        body: String,
    },
    /// A server answered something this command does not understand.
    #[error("{url}: unexpected answer: {why}")]
    Protocol {
        /// The server.
        url: String,
        /// What was wrong.
        why: String,
    },
    /// The destination refused a record.
    #[error("the destination refused source offset {offset}: {code}: {message}")]
    Refused {
        /// The source offset of the refused record.
        offset: u64,
        /// The error code (`PUBLISH_DISABLED`, `MESSAGE_TOO_LARGE`, ...).
        code: String,
        /// The server's message.
        message: String,
    },
    /// The source topic started a new history since the range was chosen.
    #[error(
        "topic {topic:?} changed history (epoch {was} -> {now}): the range \
         refers to offsets of the old one; start a new replay"
    )]
    HistoryChanged {
        /// The topic.
        topic: String,
        /// The epoch the replay started with.
        was: String,
        /// The epoch now.
        now: String,
    },
    /// The checkpoint file is unusable.
    #[error("checkpoint {}: {why}", path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}
