//! Figures about the store for monitoring: read without going through the writer.
use std::sync::atomic::Ordering;

use super::{Store, StoreError};

impl Store {
    /// Entries in the audit log, as applied by the writer.
    pub fn audit_len(&self) -> u64 {
        self.inner.shared.audit_len.load(Ordering::Acquire)
    }

    /// Bytes the data directory takes on disk. Blocking: sled walks its files.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.inner.db.size_on_disk()?)
    }
}
