//! The one error type of every `wse` command, and the exit status it maps
//! to.

use std::io;
use std::path::PathBuf;

use wse_log::LogError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The data directory is held by a running writer (`wse serve` or
    /// another `wse log append`), so it cannot be opened for appending.
    #[error(
        "data directory {} is locked by another process (lock file {}); \
         is a server running on it? Stop it, or append through the server; \
         the read-only commands (topics, inspect, dump, tail, verify) work beside it",
        dir.display(),
        lock.display()
    )]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The lock file that is held.
        lock: PathBuf,
    },
    /// The log crate failed (I/O, corruption, metadata, ...).
    #[error(transparent)]
    Log(LogError),
    /// The directory is not a WSE data directory.
    #[error(
        "{} is not a WSE data directory (expected topics/ and meta/ inside, \
         as `wse serve --data-dir` creates them)",
        .0.display()
    )]
    NotADataDir(PathBuf),
    /// No such topic in the data directory.
    #[error("no topic {topic:?} in {} (`wse log topics` lists them)", dir.display())]
    UnknownTopic {
        /// The data directory.
        dir: PathBuf,
        /// The topic asked for.
        topic: String,
    },
    /// Offsets vanished while being read (retention deleted their segment).
    #[error(
        "topic {topic:?}: offsets from {from} on are no longer stored \
         (retention removed them while they were being read)"
    )]
    Removed {
        /// The topic.
        topic: String,
        /// The first offset that could not be read.
        from: u64,
    },
    /// An I/O error outside the log crate, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the file.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Arguments that clap accepts but that do not make sense together.
    #[error("{0}")]
    Usage(String),
    /// A benchmark could not produce its figures.
    #[error("benchmark failed: {0}")]
    Bench(String),
    /// The server could not be configured or started.
    #[error(transparent)]
    Server(#[from] wse::ServerError),
    /// The configuration (flags, file, environment) is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// `wse cert` could not make or read a certificate.
    #[error(transparent)]
    Cert(#[from] crate::cert_cmd::CertError),
    /// `wse token` could not mint a token.
    #[error(transparent)]
    Token(#[from] crate::token_cmd::TokenError),
    /// `wse replay` could not read, publish or resume.
    #[error(transparent)]
    Replay(#[from] crate::replay::ReplayError),
    /// An export file could not be written or read.
    #[error("{}: {source}", file.display())]
    Archive {
        /// The export file.
        file: PathBuf,
        /// What is wrong with it.
        #[source]
        source: crate::log_cmd::archive::ArchiveError,
    },
    /// A backup does not match its manifest (a file changed, is missing or
    /// cut short), or the log restored from it does not.
    #[error("damaged backup: {0}")]
    DamagedBackup(String),
    /// Standard output was closed by its reader; not reported, exit 0.
    #[error("standard output closed")]
    BrokenPipe,
}

impl From<LogError> for CliError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::Locked { dir, lock } => Self::Locked { dir, lock },
            other => Self::Log(other),
        }
    }
}

impl CliError {
    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }

    /// The process exit status for this error: 1 when the data itself is
    /// bad (a damaged range of records), 2 for everything else (usage, I/O, a locked
    /// or missing directory, an unknown topic).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Log(LogError::Damaged(_)) | Self::DamagedBackup(_) => 1,
            Self::Archive {
                source: crate::log_cmd::archive::ArchiveError::Damaged(_),
                ..
            } => 1,
            Self::BrokenPipe => 0,
            _ => 2,
        }
    }
}
