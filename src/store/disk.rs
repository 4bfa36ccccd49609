//! Free space on the disk holding the data directory. Below a reserve, changes are refused
//! (RESOURCE_EXHAUSTED, naming the directory) before the disk is full, so that sled never
//! meets a full disk in the middle of a write (after which it cannot continue and the hub must
//! stop); the reserve leaves room for the audit entries of reads and refusals meanwhile.
use std::{
    path::PathBuf,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

use super::{Store, StoreError};

const MIB: u64 = 1024 * 1024;

#[derive(Debug)]
pub(super) struct DiskWatch {
    dir: PathBuf,
    /// Bytes that must stay free; 0 turns the watch off.
    reserve: u64,
    /// Free bytes at the last look.
    free: AtomicU64,
    /// Whether the last look found less than the reserve.
    low: AtomicBool,
}

impl DiskWatch {
    pub fn new(dir: PathBuf, reserve: u64) -> DiskWatch {
        let watch = DiskWatch {
            dir,
            reserve,
            free: AtomicU64::new(u64::MAX),
            low: AtomicBool::new(false),
        };
        watch.look();
        watch
    }

    /// Reads the free space now (one statvfs: cheap next to a group commit's fsync).
    /// Returns whether it is below the reserve.
    pub fn look(&self) -> bool {
        match fs2::available_space(&self.dir) {
            Ok(free) => {
                self.free.store(free, Ordering::Relaxed);
                let low = self.reserve > 0 && free < self.reserve;
                if low != self.low.swap(low, Ordering::Relaxed) {
                    if low {
                        tracing::error!(dir = %self.dir.display(), free_mib = free / MIB, reserve_mib = self.reserve / MIB, "disk space below the reserve: changes are refused");
                    } else {
                        tracing::warn!(dir = %self.dir.display(), free_mib = free / MIB, "disk space above the reserve again: changes are accepted");
                    }
                }
                low
            }
            Err(e) => {
                // Not knowing is not a reason to refuse: sled's own errors still stop the hub
                // safely if the disk really is full.
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read free disk space");
                false
            }
        }
    }

    /// Free bytes at the last look (u64::MAX when unknown).
    pub fn free(&self) -> u64 {
        self.free.load(Ordering::Relaxed)
    }

    /// Refuses a change when the disk is below the reserve, looking now.
    pub fn admit(&self) -> Result<(), StoreError> {
        if !self.look() {
            return Ok(());
        }
        Err(StoreError::DiskLow(format!(
            "the disk holding {} has {} MiB free, under the {} MiB reserve (store.min_free_mb): changes are refused until space is freed; nothing was changed",
            self.dir.display(),
            self.free() / MIB,
            self.reserve / MIB
        )))
    }
}

impl Store {
    /// Looks at the free space of the data directory's disk now: whether it is below the
    /// reserve (changes refused), and the free bytes (u64::MAX when unknown).
    pub fn disk_low(&self) -> (bool, u64) {
        let low = self.inner.shared.disk.look();
        (low, self.inner.shared.disk.free())
    }
}
