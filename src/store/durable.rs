//! What a group commit fsyncs before it is acknowledged: sled's blob files and its data file.
//!
//! sled 0.34 writes a page to a file of its own under `blobs/` (named by the page's log sequence
//! number) when its serialized form is over a quarter of a 512 KiB log segment, less headers:
//! about 128 KiB. That is not only a large value: a leaf holds up to 16 entries, so 20 KiB
//! values already make blob pages (measured: 200 values of 20 KB left 27 blob files). sled never
//! fsyncs these files, and its flush only orders the data file with `sync_file_range`; the data
//! file then refers to a blob that a power loss can leave empty or missing, and the store fails
//! its start check. Keeping every value under the threshold would take values under about
//! 7 KiB (17 per leaf) and chunked records everywhere; fsyncing the blob files is contained here.
//!
//! The order makes it exact for what the group wrote: (1) list `blobs/`; (2) sled's flush, which
//! waits for every log reservation made before it started, and sled names and writes a blob
//! inside its reservation, so every file listed in (1) is complete after (2); (3) fsync each
//! listed file not synced before, then the directory (the new names); (4) fdatasync the data
//! file. The group's own blobs are written by the writer thread before (1). A page that another
//! thread rewrites as a blob after (1) (sled splits and merges pages on reads too) is synced by
//! the next group commit or checkpoint.
//!
//! Listing costs about 1 µs per file (1.2 ms for 1,000 files measured here), and a store can
//! hold thousands of blob pages; so a commit lists only when the directory's modification time
//! has changed since a listing taken at least [`SETTLE`] after it, and otherwise only stats it.
use std::{
    collections::HashSet,
    ffi::OsString,
    fs::File,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use super::StoreError;

/// Called with the path of every file and directory the store fsyncs, once the fsync has
/// returned and before the group it belongs to is acknowledged (diagnostics and tests).
pub type SyncObserver = Arc<dyn Fn(&Path) + Send + Sync>;

/// Where the observer is kept: set at any time through [`super::Store::observe_syncs`].
pub(super) type ObserverSlot = Arc<Mutex<Option<SyncObserver>>>;

/// Longer than the coarsest modification-time granularity of a local file system (FAT: 2 s):
/// a file created after a listing taken this long after the directory's last change moves the
/// directory's modification time.
const SETTLE: Duration = Duration::from_secs(3);

/// The directory's state when it was last listed.
struct Listed {
    /// Its modification time, read before the listing.
    modified: SystemTime,
    /// When the listing started.
    at: SystemTime,
}

/// The fsyncs of the group commit (present only with `store.fsync` on).
pub(crate) struct Syncer {
    /// sled's data file.
    datafile: File,
    datafile_path: PathBuf,
    /// sled's `blobs/` directory.
    blobs: PathBuf,
    /// Blob files already fsynced (and named in a synced directory); files sled has removed are
    /// forgotten at the next listing, so this stays as large as the directory.
    synced: HashSet<OsString>,
    /// The last listing, when the directory may be left unlisted while unchanged.
    listed: Option<Listed>,
    observer: ObserverSlot,
}

impl Syncer {
    /// Opens the data file of the store in `dir` for fsync. Blob files already present are
    /// synced by the first group commit (a previous run may have stopped before syncing them).
    pub fn open(dir: &Path, observer: ObserverSlot) -> Result<Syncer, StoreError> {
        let datafile_path = dir.join("db");
        let datafile = File::open(&datafile_path)
            .map_err(|e| StoreError::Io(format!("opening the data file for fsync: {e}")))?;
        // sled created `blobs/` and the data file in this directory: make the names durable.
        sync_dir(dir)?;
        Ok(Syncer {
            datafile,
            datafile_path,
            blobs: dir.join("blobs"),
            synced: HashSet::new(),
            listed: None,
            observer,
        })
    }

    /// sled's flush, then everything it wrote made durable, in the order explained above.
    pub fn flush(&mut self, db: &sled::Db) -> Result<(), StoreError> {
        let listed = self.list_if_changed()?;
        db.flush()?;
        if let Some(listed) = listed {
            self.sync_blobs(listed)?;
        }
        self.datafile
            .sync_data()
            .map_err(|e| StoreError::Io(format!("fdatasync of the data file: {e}")))?;
        self.observed(&self.datafile_path);
        Ok(())
    }

    /// The names now in `blobs/`, or None when no file can have been added since the last
    /// listing: the directory's modification time is the one read then, and that listing
    /// started [`SETTLE`] or more after it, so any later creation would have moved it.
    fn list_if_changed(&mut self) -> Result<Option<Vec<OsString>>, StoreError> {
        let io =
            |e: std::io::Error| StoreError::Io(format!("listing {}: {e}", self.blobs.display()));
        let modified = std::fs::metadata(&self.blobs)
            .and_then(|m| m.modified())
            .map_err(io)?;
        if let Some(last) = &self.listed
            && last.modified == modified
            && last.modified + SETTLE <= last.at
        {
            return Ok(None);
        }
        let at = SystemTime::now();
        let names = std::fs::read_dir(&self.blobs)
            .map_err(io)?
            .map(|entry| entry.map(|e| e.file_name()).map_err(io))
            .collect::<Result<Vec<_>, _>>()?;
        self.listed = Some(Listed { modified, at });
        Ok(Some(names))
    }

    /// fsyncs the listed files not synced before, then the directory if there were any.
    fn sync_blobs(&mut self, listed: Vec<OsString>) -> Result<(), StoreError> {
        let mut new = false;
        for name in &listed {
            if self.synced.contains(name) {
                continue;
            }
            let path = self.blobs.join(name);
            match File::open(&path) {
                Ok(f) => f
                    .sync_data()
                    .map_err(|e| StoreError::Io(format!("fsync of {}: {e}", path.display())))?,
                // sled removed it since the listing (its page was replaced): nothing to keep.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(StoreError::Io(format!("opening {}: {e}", path.display())));
                }
            }
            self.observed(&path);
            new = true;
        }
        if new {
            sync_dir(&self.blobs)?;
            self.observed(&self.blobs);
        }
        self.synced = listed.into_iter().collect();
        Ok(())
    }

    fn observed(&self, path: &Path) {
        let observer = self
            .observer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(observe) = observer {
            observe(path);
        }
    }
}

/// fsyncs a directory, so that the names of the files created in it survive a power loss.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::Io(format!("fsync of the directory {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A syncer over a fresh sled database, recording every path it syncs.
    fn setup(dir: &Path) -> (sled::Db, Syncer, Arc<Mutex<Vec<PathBuf>>>) {
        let db = sled::Config::new().path(dir).open().unwrap();
        let synced: Arc<Mutex<Vec<PathBuf>>> = Arc::default();
        let log = synced.clone();
        let slot = ObserverSlot::default();
        *slot.lock().unwrap() = Some(Arc::new(move |p: &Path| {
            log.lock().unwrap().push(p.to_path_buf())
        }));
        (db, Syncer::open(dir, slot).unwrap(), synced)
    }

    fn blob_files(paths: &[PathBuf]) -> Vec<PathBuf> {
        paths
            .iter()
            .filter(|p| p.parent().is_some_and(|d| d.ends_with("blobs")))
            .cloned()
            .collect()
    }

    #[test]
    fn a_large_value_is_in_a_blob_file_synced_before_the_data_file() {
        let dir = tempfile::tempdir().unwrap();
        let (db, mut syncer, synced) = setup(dir.path());
        let value: Vec<u8> = (0..300 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
        db.insert("big", value.as_slice()).unwrap();
        syncer.flush(&db).unwrap();
        let paths = synced.lock().unwrap().clone();
        let blobs = blob_files(&paths);
        assert_eq!(blobs.len(), 1, "{paths:?}");
        let bytes = std::fs::read(&blobs[0]).unwrap();
        assert!(
            bytes.windows(value.len()).any(|w| w == value.as_slice()),
            "the synced blob holds the value"
        );
        // The blob, then the directory naming it, then the data file referring to it.
        assert_eq!(
            paths,
            [
                blobs[0].clone(),
                dir.path().join("blobs"),
                dir.path().join("db")
            ]
        );

        // Nothing new: only the data file is synced again.
        synced.lock().unwrap().clear();
        db.insert("small", "x").unwrap();
        syncer.flush(&db).unwrap();
        assert_eq!(*synced.lock().unwrap(), [dir.path().join("db")]);
    }

    #[test]
    fn pages_of_moderate_values_that_become_blobs_are_synced_too() {
        let dir = tempfile::tempdir().unwrap();
        let (db, mut syncer, synced) = setup(dir.path());
        for i in 0..200u64 {
            db.insert(i.to_be_bytes(), vec![i as u8; 20_000]).unwrap();
            syncer.flush(&db).unwrap();
        }
        let on_disk: HashSet<OsString> = std::fs::read_dir(dir.path().join("blobs"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(!on_disk.is_empty(), "20 KB values make blob pages");
        let synced: HashSet<OsString> = blob_files(&synced.lock().unwrap())
            .iter()
            .filter_map(|p| p.file_name().map(OsString::from))
            .collect();
        assert!(
            on_disk.is_subset(&synced),
            "every blob file present was synced: {on_disk:?} {synced:?}"
        );
    }

    #[test]
    fn an_unchanged_directory_is_not_listed_again_and_a_new_blob_is_still_found() {
        let dir = tempfile::tempdir().unwrap();
        let (db, mut syncer, synced) = setup(dir.path());
        db.insert("first", vec![1u8; 300 * 1024]).unwrap();
        syncer.flush(&db).unwrap();
        // As if the blob had been created long ago: listings from now on are past SETTLE.
        let old = SystemTime::now() - 2 * SETTLE;
        File::open(dir.path().join("blobs"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        syncer.flush(&db).unwrap();
        let listed_at = syncer.listed.as_ref().unwrap().at;
        db.insert("small", "x").unwrap();
        syncer.flush(&db).unwrap();
        assert_eq!(
            syncer.listed.as_ref().unwrap().at,
            listed_at,
            "nothing changed: only a stat"
        );
        synced.lock().unwrap().clear();
        db.insert("second", vec![2u8; 300 * 1024]).unwrap();
        syncer.flush(&db).unwrap();
        let paths = synced.lock().unwrap().clone();
        assert_eq!(
            blob_files(&paths).len(),
            1,
            "the new blob is synced: {paths:?}"
        );
    }
}
