//! `cbm-hub migrate`: converts a data directory of layout version 1 (one sled tree per record
//! kind, committed by a transaction across them) into layout version 2 (one keyspace tree,
//! see [`super::keyspace`]).
//!
//! The old directory is only read. The new keyspace is written beside it (`<dir>.migrating`),
//! made durable, given the directory's other files (the audit signing key), and verified by the
//! full check; only then is the old directory renamed to `<dir>.layout1-backup` and the new one
//! put in its place. A failure at any step leaves the old directory as it was.
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{
    DEFAULT_COMPRESSION_LEVEL, LAYOUT_VERSION, Store, StoreError, StoreOptions, durable,
    keyspace::{self, Rec, TREE},
    release,
};

/// Records written per batch while copying: bounds the memory of one batch.
const BATCH: usize = 4096;
/// How long the migration waits for sled to release a directory it closed.
const RELEASE: Duration = Duration::from_secs(10);
/// sled's own files in a data directory; every other file (the audit key) is carried over.
const SLED_FILES: [&str; 3] = ["db", "conf", "blobs"];

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// Where the old directory is kept.
    pub backup: PathBuf,
    /// Records copied.
    pub records: u64,
}

/// Whether an open sled database is of layout version 1 (it has the old `meta` tree).
pub(super) fn is_layout1(db: &sled::Db) -> Result<bool, StoreError> {
    Ok(db
        .tree_names()
        .iter()
        .any(|name| Some(name.as_ref()) == Rec::Meta.layout1_tree().map(str::as_bytes)))
}

/// Migrates the stopped hub's data directory `dir` from layout 1 to layout 2 (see the module
/// comment). Refuses a directory that is not of layout 1, and one that a hub is using.
pub fn migrate(dir: &Path) -> Result<Migrated, StoreError> {
    let dir = dir
        .canonicalize()
        .map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))?;
    let staging = sibling(&dir, "migrating");
    let backup = sibling(&dir, "layout1-backup");
    for path in [&staging, &backup] {
        if path.exists() {
            return Err(StoreError::Io(format!(
                "{} exists (from an earlier migration?): move it away first",
                path.display()
            )));
        }
    }
    let records = copy(&dir, &staging)?;
    let verified = carry_files(&dir, &staging).and_then(|()| verify(&staging));
    if let Err(e) = verified {
        // The old directory is untouched; the half-made copy would only mislead.
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    rename(&dir, &backup)?;
    rename(&staging, &dir)?;
    if let Some(parent) = dir.parent() {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::Io(format!("{}: {e}", parent.display())))?;
    }
    Ok(Migrated { backup, records })
}

/// Copies every record of the layout-1 trees in `from` into a new keyspace in `to`, made
/// durable (flushed and fsynced as a group commit is). Returns how many records it copied.
fn copy(from: &Path, to: &Path) -> Result<u64, StoreError> {
    let old = release::open_locked(
        &keyspace::sled_config(from, DEFAULT_COMPRESSION_LEVEL),
        from,
    )?;
    if !is_layout1(&old)? {
        return Err(StoreError::Io(format!(
            "{} is not a data directory of layout version 1: nothing to migrate",
            from.display()
        )));
    }
    std::fs::create_dir_all(to).map_err(|e| StoreError::Io(format!("{}: {e}", to.display())))?;
    // The new directory gets this build's layout, compression included.
    let new = release::open_locked(&keyspace::sled_config(to, DEFAULT_COMPRESSION_LEVEL), to)?;
    let keyspace = new.open_tree(TREE)?;
    let mut records = 0u64;
    for rec in Rec::ALL {
        // Kinds added after layout 1 are built when the migrated store is first opened.
        let Some(name) = rec.layout1_tree() else {
            continue;
        };
        let tree = old.open_tree(name)?;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for item in tree.iter() {
            let (k, v) = item?;
            batch.insert(rec.key(&k), v);
            in_batch += 1;
            records += 1;
            if in_batch == BATCH {
                keyspace.apply_batch(std::mem::take(&mut batch))?;
                in_batch = 0;
            }
        }
        keyspace.apply_batch(batch)?;
    }
    keyspace.insert(Rec::Meta.key(b"format"), LAYOUT_VERSION)?;
    // Layout 1 had no `Revised` records: whatever its meta says, they are built at first open.
    keyspace.remove(Rec::Meta.key(b"revised"))?;
    let mut sync = durable::Syncer::open(to, Default::default())?;
    sync.flush(&new)?;
    drop((keyspace, new, old));
    let deadline = Instant::now() + RELEASE;
    release::wait_unlocked(from, deadline)?;
    release::wait_unlocked(to, deadline)?;
    Ok(records)
}

/// Copies the files of `from` that are not sled's (the audit signing key) into `to`.
fn carry_files(from: &Path, to: &Path) -> Result<(), StoreError> {
    let io = |p: &Path, e: std::io::Error| StoreError::Io(format!("{}: {e}", p.display()));
    for entry in std::fs::read_dir(from).map_err(|e| io(from, e))? {
        let entry = entry.map_err(|e| io(from, e))?;
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        let is_file = entry
            .file_type()
            .map_err(|e| io(&entry.path(), e))?
            .is_file();
        if !is_file || SLED_FILES.contains(&name_str.as_ref()) || name_str.starts_with("snap.") {
            continue;
        }
        let target = to.join(&name);
        std::fs::copy(entry.path(), &target).map_err(|e| io(&target, e))?;
        std::fs::File::open(&target)
            .and_then(|f| f.sync_all())
            .map_err(|e| io(&target, e))?;
    }
    Ok(())
}

/// The full check of the new keyspace: every record against its checksum, the feed, the
/// indexes and the audit chain with its signed checkpoints.
fn verify(dir: &Path) -> Result<(), StoreError> {
    let options = StoreOptions {
        check_on_start: false,
        min_free_bytes: 0,
        ..StoreOptions::default()
    };
    let store = Store::open(dir, options)?;
    let problems = store.check();
    store.close_and_release()?;
    let problems = problems?;
    if problems.is_empty() {
        return Ok(());
    }
    Err(StoreError::Corrupt(format!(
        "the migrated copy fails the check, so the old directory is kept as it is: {}",
        problems.join("; ")
    )))
}

/// `<dir>.<suffix>`, beside `dir`.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

fn rename(from: &Path, to: &Path) -> Result<(), StoreError> {
    std::fs::rename(from, to).map_err(|e| {
        StoreError::Io(format!(
            "renaming {} to {}: {e}",
            from.display(),
            to.display()
        ))
    })
}
