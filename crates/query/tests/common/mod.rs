//! What the query crate's test files share.

#![allow(clippy::unwrap_used)]

use store::{Store, StoreConfig};

/// A store in a new temporary directory that persists and compacts only
/// when a test says so; the directory lives as long as the `TempDir`.
pub(crate) fn manual_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        background_persist: false,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), config).unwrap();
    (dir, store)
}
