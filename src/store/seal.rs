//! A start in time proportional to what changed: the seal of a clean stop and the "checked up
//! to" mark.
//!
//! Two records in `meta`, each a checksummed [`Mark`] of the store's state (last event sequence,
//! the audit log's state: size, chain hash and Merkle frontier, whose root signed checkpoints
//! carry; the last checkpoint's size, the last key of `by_created`, the number of members):
//!
//! - the **seal**, written by a clean stop ([`Store::close`]) once the writer has stopped. A
//!   start reads it, compares it with what is stored and deletes it durably before the writer
//!   takes any command: a crash after the start leaves no valid seal. A seal that matches
//!   leaves nothing to check at start (no event or audit entry after it).
//! - the **checked mark**: everything up to it was checked, or left sealed by a clean stop. A
//!   start writes it after its own check passes, and the background check advances it as it
//!   goes ([`super::background_check`]), always to durable state only (events up to the durable
//!   head, audit entries up to the latest signed checkpoint). After a crash there is no seal,
//!   and the start checks the tail after this mark: the events after it (with the heads and
//!   indexes they touch) and the audit entries after it (continuing its chain and Merkle
//!   frontier to the stored state, against the checkpoints signed since).
//!
//! Without either (a new store, a store from before this mark, or after damage was found) the
//! start runs the full check, as `cbm-hub check` does. Damage found by any check removes the
//! checked mark and keeps the next clean stop from sealing, so the next start checks everything
//! and refuses to serve damaged data.
use std::{fs::File, path::Path, sync::Mutex};

use super::{
    Store, StoreError, Trees, audit_log,
    check::{Problems, unpaced},
    codec, key_u64, writer,
};
use crate::{audit::LogState, domain::clock};

const SEAL_KEY: &[u8] = b"seal";
const CHECKED_KEY: &[u8] = b"checked";

/// The state of the store at a point: what a seal or a checked mark records.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Mark {
    /// The last event sequence.
    #[prost(uint64, tag = "1")]
    pub events: u64,
    /// The audit log's state ([`LogState::to_bytes`]: chain hash, Merkle frontier and size).
    #[prost(bytes = "vec", tag = "2")]
    pub audit_state: Vec<u8>,
    /// The tree size of the latest signed checkpoint (seal only).
    #[prost(uint64, tag = "3")]
    pub checkpoint: u64,
    /// The last key of `by_created`: the first sequence of the newest submission (seal only).
    #[prost(uint64, tag = "4")]
    pub last_created: u64,
    /// Registered members (seal only).
    #[prost(uint64, tag = "5")]
    pub members: u64,
    /// When it was written (for the log).
    #[prost(string, tag = "6")]
    pub at: String,
}

impl Mark {
    fn audit(&self) -> Option<LogState> {
        LogState::from_bytes(&self.audit_state)
    }
}

/// What [`take`] found when the store was opened: where the start check begins.
#[derive(Debug, Clone)]
pub(crate) enum Base {
    /// A seal matching what is stored: a clean stop, nothing written since.
    Sealed(Mark),
    /// No valid seal, a checked mark: check the tail after it.
    Checked(Mark),
    /// Neither: check everything.
    Nothing,
}

/// The seal, the marks and the integrity status of an open store.
pub(crate) struct StartState {
    pub base: Base,
    pub integrity: tokio::sync::watch::Sender<super::Integrity>,
    /// Serialises the writes of marks (start, background check, close).
    marks: Mutex<()>,
    /// Set by [`Store::forget_marks`]: no seal at stop, no checked mark.
    forgotten: std::sync::atomic::AtomicBool,
}

impl StartState {
    pub fn new(base: Base) -> StartState {
        StartState {
            base,
            integrity: tokio::sync::watch::Sender::new(Default::default()),
            marks: Mutex::new(()),
            forgotten: Default::default(),
        }
    }
}

/// Reads the seal and the checked mark at open, and deletes the seal durably, before the
/// writer starts. A damaged or stale seal or mark is not trusted (a larger check follows).
pub(super) fn take(db: &sled::Db, trees: &Trees, dir: &Path) -> Result<Base, StoreError> {
    let read = |key: &[u8]| -> Result<Option<Mark>, StoreError> {
        let Some(v) = trees.meta.get(key)? else {
            return Ok(None);
        };
        match codec::unframe::<Mark>(&v, || String::from_utf8_lossy(key).into_owned()) {
            Ok(m) => Ok(Some(m)),
            Err(e) => {
                tracing::warn!(error = %e, "start mark damaged; not trusted");
                Ok(None)
            }
        }
    };
    let seal = read(SEAL_KEY)?;
    let checked = read(CHECKED_KEY)?;
    if trees.meta.contains_key(SEAL_KEY)? {
        trees.meta.remove(SEAL_KEY)?;
        sync(db, dir)?;
    }
    if let Some(seal) = seal {
        let now = current(trees)?;
        if (Mark {
            at: seal.at.clone(),
            ..now.clone()
        }) == seal
        {
            return Ok(Base::Sealed(seal));
        }
        tracing::warn!(
            sealed = ?(seal.events, seal.checkpoint, seal.last_created, seal.members),
            stored = ?(now.events, now.checkpoint, now.last_created, now.members),
            "the seal of the last clean stop does not match what is stored; checking from the last checked mark"
        );
    }
    Ok(checked.map_or(Base::Nothing, Base::Checked))
}

/// The store's state now, as a seal records it.
fn current(trees: &Trees) -> Result<Mark, StoreError> {
    let last = |tree: &super::keyspace::Part| -> Result<u64, StoreError> {
        Ok(tree.last()?.map_or(0, |(k, _)| key_u64(&k)))
    };
    Ok(Mark {
        events: last(&trees.events)?,
        audit_state: trees
            .meta
            .get(writer::AUDIT_STATE_KEY)?
            .map(|v| v.to_vec())
            .unwrap_or_else(|| LogState::default().to_bytes()),
        checkpoint: last(&trees.checkpoints)?,
        last_created: last(&trees.by_created)?,
        members: trees.members.count()? as u64,
        at: String::new(),
    })
}

/// sled's flush, then an fdatasync of its data file in `dir` (as the group commit makes its
/// groups durable): a mark, or its removal, survives a power loss as the data it describes does.
fn sync(db: &sled::Db, dir: &Path) -> Result<(), StoreError> {
    db.flush()?;
    let path = dir.join("db");
    File::open(&path)
        .and_then(|f| f.sync_data())
        .map_err(|e| StoreError::Io(format!("fdatasync of {}: {e}", path.display())))
}

impl Store {
    /// The start check: the tail after the seal or the checked mark, or everything when there
    /// is neither. Returns the problems found (empty: the hub may serve). Blocking.
    pub fn start_check(&self) -> Result<Vec<String>, StoreError> {
        let start = &self.inner.start;
        let (kind, from) = match &start.base {
            Base::Sealed(m) => ("sealed", m.audit().map(|a| (m.events, a))),
            Base::Checked(m) => ("checked", m.audit().map(|a| (m.events, a))),
            Base::Nothing => ("full", None),
        };
        let mut problems = Problems::default();
        let head = self.head();
        // The writer has taken no command yet: this is the stored state.
        let stored = audit_log::load_audit_state(&self.inner.trees)?;
        let (kind, events, entries) = match from {
            Some((after, audit)) => {
                if after > head {
                    problems.note(format!(
                        "feed: events up to {after} were checked or sealed, the feed ends at {head}: events are missing"
                    ));
                }
                let size = audit.frontier.size();
                if size > stored.frontier.size() {
                    problems.note(format!(
                        "audit log: {size} entries were checked or sealed, the log holds {}: entries are missing",
                        stored.frontier.size()
                    ));
                }
                let events = self.check_events(after, head, &mut problems, &mut unpaced)?;
                let end =
                    self.check_audit(audit, stored.frontier.size(), &mut problems, &mut unpaced)?;
                if problems.is_empty() && end != stored {
                    problems.note(
                        "audit log: its stored state is not where the entries after the mark lead"
                            .into(),
                    );
                }
                (kind, events, end.frontier.size().saturating_sub(size))
            }
            None => {
                let covered = self.check_all(u64::MAX, &mut problems, &mut unpaced)?;
                ("full", covered.events, covered.audit.frontier.size())
            }
        };
        tracing::info!(
            start = kind,
            events,
            audit_entries = entries,
            problems = problems.0.len(),
            "start check"
        );
        start.integrity.send_modify(|i| {
            i.start = kind;
            i.start_events = events;
            i.start_audit_entries = entries;
        });
        if problems.is_empty() {
            self.mark_checked(head, &stored)?;
        } else {
            self.damage_found(&problems.0);
        }
        Ok(problems.0)
    }

    /// Makes the next start check everything, as every start did before seals and marks: the
    /// checked mark is removed now, and the stop writes no seal. For `cbm-hub bench`, which
    /// measures that start next to the sealed one.
    pub fn forget_marks(&self) -> Result<(), StoreError> {
        let start = &self.inner.start;
        let _writing = start.marks.lock().unwrap_or_else(|p| p.into_inner());
        start
            .forgotten
            .store(true, std::sync::atomic::Ordering::Release);
        self.inner.trees.meta.remove(CHECKED_KEY)?;
        self.sync_marks()
    }

    /// The checked mark: events and the audit log's state up to which everything is checked.
    pub(crate) fn checked_mark(&self) -> Option<(u64, LogState)> {
        let v = self.inner.trees.meta.get(CHECKED_KEY).ok()??;
        let mark = codec::unframe::<Mark>(&v, String::new).ok()?;
        Some((mark.events, mark.audit()?))
    }

    /// Records durably that events up to `events` and the audit log up to `audit` are
    /// checked; each part only moves forward. Nothing once damage was found.
    pub(crate) fn mark_checked(&self, events: u64, audit: &LogState) -> Result<(), StoreError> {
        let start = &self.inner.start;
        let _writing = start.marks.lock().unwrap_or_else(|p| p.into_inner());
        // After a storage failure sled is not touched again; below the disk reserve only the
        // writer's own changes use what is left (the mark waits for the next pass).
        if !start.integrity.borrow().problems.is_empty()
            || start.forgotten.load(std::sync::atomic::Ordering::Acquire)
            || self.failure().is_some()
            || self.disk_low().0
        {
            return Ok(());
        }
        let meta = &self.inner.trees.meta;
        let old = meta
            .get(CHECKED_KEY)?
            .and_then(|v| codec::unframe::<Mark>(&v, String::new).ok());
        let mut mark = Mark {
            events,
            audit_state: audit.to_bytes(),
            at: clock::now_rfc3339(),
            ..Default::default()
        };
        if let Some(old) = old {
            mark.events = mark.events.max(old.events);
            if old
                .audit()
                .is_some_and(|a| a.frontier.size() > audit.frontier.size())
            {
                mark.audit_state = old.audit_state;
            }
        }
        let checked_audit = mark.audit().map_or(0, |a| a.frontier.size());
        meta.insert(CHECKED_KEY, codec::frame(&mark))?;
        self.sync_marks()?;
        start.integrity.send_modify(|i| {
            i.checked_events = mark.events;
            i.checked_audit = checked_audit;
        });
        Ok(())
    }

    /// Damage was found: reported (log, health, metrics), and the next start checks
    /// everything (the checked mark is removed, and no seal is written at stop).
    pub(crate) fn damage_found(&self, problems: &[String]) {
        let start = &self.inner.start;
        let _writing = start.marks.lock().unwrap_or_else(|p| p.into_inner());
        for p in problems {
            tracing::error!(problem = %p, "stored data is damaged");
        }
        start.integrity.send_modify(|i| {
            for p in problems {
                if !i.problems.contains(p) {
                    i.problems.push(p.clone());
                }
            }
        });
        if self.failure().is_some() {
            // Not touched again; the failure itself makes the next start check the tail.
            return;
        }
        let removed = self.inner.trees.meta.remove(CHECKED_KEY);
        if let Err(e) = removed
            .map_err(StoreError::from)
            .and_then(|_| self.sync_marks())
        {
            tracing::error!(error = %e, "removing the checked mark failed");
        }
    }

    /// Seals the store at a clean stop, once the writer has stopped; after damage was found,
    /// removes the checked mark instead. Blocking.
    pub(super) fn seal(&self) -> Result<(), StoreError> {
        let start = &self.inner.start;
        let _writing = start.marks.lock().unwrap_or_else(|p| p.into_inner());
        let meta = &self.inner.trees.meta;
        let forgotten = start.forgotten.load(std::sync::atomic::Ordering::Acquire);
        if start.integrity.borrow().problems.is_empty() && !forgotten {
            let mark = Mark {
                at: clock::now_rfc3339(),
                ..current(&self.inner.trees)?
            };
            meta.insert(SEAL_KEY, codec::frame(&mark))?;
        } else {
            meta.remove(CHECKED_KEY)?;
        }
        self.sync_marks()
    }

    fn sync_marks(&self) -> Result<(), StoreError> {
        sync(&self.inner.db, &self.inner.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        pb,
        store::{StoreOptions, records::StoredEvent},
    };

    fn options() -> StoreOptions {
        StoreOptions {
            cache_capacity: 8 * 1024 * 1024,
            fsync: false,
            ..StoreOptions::default()
        }
    }

    async fn append(store: &Store, n: usize) {
        let entries = (0..n)
            .map(|i| crate::audit::Origin::hub().entry(&format!("test.{i}")))
            .collect();
        store.audit(entries).await;
        store.checkpoint().await.unwrap();
    }

    /// Runs `f` on the keyspace's parts, the store closed (writes behind its back).
    fn raw(dir: &Path, f: impl FnOnce(&super::super::keyspace::Trees)) {
        let db = super::super::keyspace::open_raw(dir).unwrap();
        let trees =
            super::super::keyspace::Trees::new(db.open_tree(super::super::keyspace::TREE).unwrap());
        f(&trees);
        db.flush().unwrap();
        // sled's lock goes with the last handle to its trees.
        drop(trees);
        drop(db);
        super::super::release::wait_unlocked(
            dir,
            std::time::Instant::now() + std::time::Duration::from_secs(10),
        )
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_clean_stop_seals_and_the_start_deletes_the_seal_and_reads_only_what_followed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), options()).unwrap();
        assert!(store.start_check().unwrap().is_empty());
        assert_eq!(store.integrity_now().start, "full");
        append(&store, 3).await;
        store.close_and_release().unwrap();

        let store = Store::open(dir.path(), options()).unwrap();
        // Gone before anything can be written: a crash from here on finds no seal.
        assert!(!store.inner.trees.meta.contains_key(SEAL_KEY).unwrap());
        assert!(store.start_check().unwrap().is_empty());
        let i = store.integrity_now();
        assert_eq!(
            (i.start, i.start_events, i.start_audit_entries),
            ("sealed", 0, 0)
        );
        assert_eq!(i.checked_audit, store.audit_len());
        store.close_and_release().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_seal_the_data_does_not_match_or_a_damaged_one_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), options()).unwrap();
        assert!(store.start_check().unwrap().is_empty());
        append(&store, 2).await;
        store.close_and_release().unwrap();

        // An event written behind the store's back after the seal.
        raw(dir.path(), |db| {
            let event = StoredEvent {
                sequence: 1,
                action: crate::store::records::PUBLISHED.into(),
                submission: Some(pb::Submission {
                    id: "stray".into(),
                    revision: 1,
                    ..Default::default()
                }),
                acknowledgement: None,
                audit_sequence: 0,
            };
            db.events
                .insert(1u64.to_be_bytes(), codec::frame(&event))
                .unwrap();
        });
        let store = Store::open(dir.path(), options()).unwrap();
        let problems = store.start_check().unwrap();
        let i = store.integrity_now();
        assert_eq!((i.start, i.start_events), ("checked", 1), "{i:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("stray") && p.contains("no index")),
            "{problems:?}"
        );
        // Damage known: no seal at stop, no checked mark: the next start checks everything.
        store.close_and_release().unwrap();
        let store = Store::open(dir.path(), options()).unwrap();
        assert!(!store.start_check().unwrap().is_empty());
        assert_eq!(store.integrity_now().start, "full");
        store.close_and_release().unwrap();

        // A damaged seal is not trusted either.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), options()).unwrap();
        assert!(store.start_check().unwrap().is_empty());
        append(&store, 1).await;
        store.close_and_release().unwrap();
        raw(dir.path(), |db| {
            let meta = &db.meta;
            let mut seal = meta.get(SEAL_KEY).unwrap().unwrap().to_vec();
            let last = seal.len() - 1;
            seal[last] ^= 1;
            meta.insert(SEAL_KEY, seal).unwrap();
        });
        let store = Store::open(dir.path(), options()).unwrap();
        assert!(store.start_check().unwrap().is_empty());
        assert_eq!(store.integrity_now().start, "checked");
        store.close_and_release().unwrap();
    }
}
