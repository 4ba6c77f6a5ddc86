//! Errors of the storage engine, each a sentence a user can act on.

use std::path::{Path, PathBuf};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What the store was doing.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Another process has the data directory open.
    #[error("data directory {0} is in use by another weir process (a running `weir server` is asked with `weir query --url`)")]
    Locked(PathBuf),
    /// A rollup file holds something rollups never hold.
    #[error("rollups of {table} are corrupt: {reason}")]
    CorruptRollup {
        /// The rollup table.
        table: String,
        /// What was wrong.
        reason: String,
    },
    /// The saved catalog cannot be read.
    #[error("catalog {path} is corrupt: {reason}")]
    CorruptCatalog {
        /// The catalog file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// A write named a database that does not exist and auto-creation is off.
    #[error("database {0:?} not found")]
    DatabaseNotFound(String),
    /// A database name the store cannot use.
    #[error("invalid database name {0:?}: use 1 to 255 bytes without '/', '\\', control characters, and not \".\" or \"..\"")]
    InvalidDatabaseName(String),
    /// A retention shorter than a second.
    #[error("a retention must be at least one second; use no retention to keep everything")]
    InvalidRetention,
    /// One write is larger than one log record may be.
    #[error("a write of {bytes} bytes is larger than the limit of {limit} bytes; split it into smaller writes")]
    WriteTooLarge {
        /// The write's size as logged.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The write buffer stayed full (persisting could not keep up with
    /// writes) for longer than a write may wait.
    #[error(
        "the write buffer is full and persisting has not caught up after {waited:?}; retry later"
    )]
    BufferFull {
        /// How long the write waited for room.
        waited: std::time::Duration,
    },
    /// The write-ahead log stopped (its thread ended or failed).
    #[error("the write-ahead log is unavailable: {0}")]
    WalUnavailable(String),
    /// A Parquet file could not be written or read.
    #[error("{what} Parquet file {path}: {reason}")]
    Parquet {
        /// What the store was doing.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the Parquet library said.
        reason: String,
    },
    /// Arrow could not assemble a batch.
    #[error("building record batch for table {table:?}: {source}")]
    Arrow {
        /// The table.
        table: String,
        /// Arrow's error.
        source: arrow::error::ArrowError,
    },
}

impl StoreError {
    pub(crate) fn io(what: &'static str, path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            what,
            path: path.to_owned(),
            source,
        }
    }
}
