//! Closing a store so that its data directory can be opened again at once.
//!
//! sled releases its lock on the data file when the file is closed, which its own threads (the
//! flusher, log writes and file truncations in its thread pool) do some time after the last
//! handle is dropped. A close therefore waits for the last handle, then for the lock itself.
use std::{
    path::Path,
    sync::mpsc::RecvTimeoutError,
    time::{Duration, Instant},
};

use super::{Store, StoreError};

impl Store {
    /// Closes the store and returns once sled has released the data directory, so that it can be
    /// opened again at once, by this process or another. Blocking. Fails if other handles to
    /// this store (or to its sled trees) are still held after [`RELEASE_WAIT`].
    pub fn close_and_release(self) -> Result<(), StoreError> {
        self.close_and_release_within(RELEASE_WAIT)
    }

    pub(super) fn close_and_release_within(self, wait: Duration) -> Result<(), StoreError> {
        self.close();
        let deadline = Instant::now() + wait;
        let dropped = self
            .inner
            .dropped_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let dir = self.inner.path.clone();
        let handles = self.handles();
        drop(self);
        if let Some(dropped) = dropped {
            // Disconnected (never sent to) once the last handle has dropped sled's.
            if let Err(RecvTimeoutError::Timeout) =
                dropped.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                return Err(StoreError::Io(format!(
                    "{} is still in use by {} other handle(s) after {wait:?}",
                    dir.display(),
                    handles - 1
                )));
            }
        }
        wait_unlocked(&dir, deadline)
    }
}

/// How long closing waits for the other handles to go and for sled to release its lock.
pub const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// Opens sled. Its lock on the data file is taken by another process, or by a store of this
/// one that was not closed with [`Store::close_and_release`].
pub(super) fn open_locked(config: &sled::Config, dir: &Path) -> Result<sled::Db, StoreError> {
    config.open().map_err(|e| match e {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StoreError::Io(format!(
                "{} is in use by another process (its lock on the data file is held): {io}",
                dir.display()
            ))
        }
        other => other.into(),
    })
}

/// Waits until nothing holds sled's lock on the data file in `dir`: a lock taken here blocks
/// until sled's threads have closed the file.
pub(super) fn wait_unlocked(dir: &Path, deadline: Instant) -> Result<(), StoreError> {
    use fs2::FileExt;
    let path = dir.join("db");
    let file = std::fs::File::open(&path)
        .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("cbm-store-release".into())
        .spawn(move || {
            let locked = file.lock_exclusive();
            // Closing the file releases the lock before anyone learns that it is free.
            drop(file);
            let _ = tx.send(locked);
        })
        .map_err(|e| StoreError::Io(format!("starting the lock wait: {e}")))?;
    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(StoreError::Io(format!("locking {}: {e}", path.display()))),
        Err(_) => Err(StoreError::Io(format!(
            "sled still holds {} after the wait for its release",
            path.display()
        ))),
    }
}
