//! What can go wrong when enrichment is set up or applied.

use std::path::PathBuf;

/// Why enrichment could not be set up, or a batch not rewritten. The
/// message includes the cause's (so it is not also a `source`, which
/// would print it twice in a chain).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrichError {
    /// A setting is out of range or inconsistent; `key` is its name in the
    /// configuration (`ipv4-mask`, `ip-tags` …).
    #[error("{key}: {reason}")]
    Setting {
        /// The setting's key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The MaxMind DB file could not be read or is not one.
    #[error("MaxMind database {path}: {error}")]
    Mmdb {
        /// The file.
        path: PathBuf,
        /// The reader's error.
        error: maxminddb::MaxMindDbError,
    },
    /// An enriched line could not be written back as line protocol. Lines
    /// that parse always encode again, so this means a bug; the batch is
    /// refused rather than stored with its addresses unmasked.
    #[error("line {line}: the enriched line cannot be written as line protocol: {error}")]
    Encode {
        /// The 1-based line of the batch.
        line: usize,
        /// The encoder's error.
        error: lineproto::EncodeError,
    },
}
