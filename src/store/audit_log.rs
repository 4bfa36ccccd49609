//! Reading the audit log and its checkpoints, and verifying them; loading the log's state.
use std::sync::atomic::Ordering;

use super::{Store, StoreError, codec, key_after, key_u64, keyspace::Trees, writer};
use crate::{
    audit::{Coverage, LogState, Verifier},
    pb::{AuditEntry, Checkpoint, VerifyReport, export_item::Item},
};

impl Store {
    /// Unauthenticated refusals are noted here rather than written one by one.
    pub fn noise(&self) -> &crate::audit::noise::Noise {
        &self.inner.noise
    }

    /// Writes the aggregate entries of the unauthenticated refusals noted so far (within the
    /// per-minute bound; the rest waits for a later call).
    pub async fn flush_noise(&self) {
        let entries = self.inner.noise.drain(std::time::Instant::now());
        if !entries.is_empty() {
            self.audit(entries).await;
        }
    }

    /// The audit checkpoint signing public key (raw Ed25519).
    pub fn audit_public_key(&self) -> Vec<u8> {
        self.inner.shared.signer.public_key().to_vec()
    }

    /// Audit entries after `after`, in order, checksum verified.
    pub fn audit_after(
        &self,
        after: u64,
    ) -> impl Iterator<Item = Result<AuditEntry, StoreError>> + use<> {
        self.inner
            .trees
            .audit
            .range_from(key_after(after))
            .map(|item| {
                let (k, v) = item?;
                codec::unframe(&v, || format!("audit entry {}", key_u64(&k)))
            })
    }

    /// Stored checkpoints of `from` entries or more, by tree size, checksum verified.
    pub fn checkpoints_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<Checkpoint, StoreError>> + use<> {
        self.inner
            .trees
            .checkpoints
            .range_from(from.to_be_bytes())
            .map(|item| {
                let (k, v) = item?;
                codec::unframe(&v, || format!("checkpoint {}", key_u64(&k)))
            })
    }

    /// The stored checkpoint at exactly `size` entries, if one was signed.
    pub fn checkpoint_at(&self, size: u64) -> Result<Option<Checkpoint>, StoreError> {
        match self.inner.trees.checkpoints.get(size.to_be_bytes())? {
            None => Ok(None),
            Some(v) => codec::unframe(&v, || format!("checkpoint {size}")).map(Some),
        }
    }

    /// What an export of entries `after+1..=covered` holds, in order: the public key; then
    /// checkpoints covering no exported entry; then the entries, each checkpoint right after
    /// the last entry it covers, ending with the checkpoint at `covered` (which the caller
    /// signed for the export).
    pub fn audit_export(
        &self,
        after: u64,
        covered: u64,
    ) -> impl Iterator<Item = Result<Item, StoreError>> + use<> {
        let key = std::iter::once(Ok(Item::PublicKey(self.audit_public_key().into())));
        let mut checkpoints = self
            .checkpoints_from(0)
            .take_while(move |c| c.as_ref().map_or(true, |c| c.tree_size <= covered))
            .peekable();
        let mut entries = self
            .audit_after(after)
            .take_while(move |e| e.as_ref().map_or(true, |e| e.sequence <= covered));
        let mut sent = after;
        let rest = std::iter::from_fn(move || {
            if let Some(c) =
                checkpoints.next_if(|c| c.as_ref().map_or(true, |c| c.tree_size <= sent))
            {
                return Some(c.map(Item::Checkpoint));
            }
            match entries.next() {
                Some(Ok(e)) => {
                    sent = e.sequence;
                    Some(Ok(Item::Entry(e)))
                }
                Some(Err(e)) => Some(Err(e)),
                None => checkpoints.next().map(|c| c.map(Item::Checkpoint)),
            }
        });
        key.chain(rest)
    }

    /// The latest signed checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        // Only a durable one (see `Shared::audit_durable`).
        let durable = self.inner.shared.audit_durable.load(Ordering::Acquire);
        match self
            .inner
            .trees
            .checkpoints
            .range(0u64.to_be_bytes()..durable.saturating_add(1).to_be_bytes())
            .next_back()
            .transpose()?
        {
            None => Ok(None),
            Some((k, v)) => codec::unframe(&v, || format!("checkpoint {}", key_u64(&k))).map(Some),
        }
    }

    /// Verifies the stored audit log against its chain and signed checkpoints. Entries after
    /// the latest checkpoint are normal here (one is signed every interval while the log grows).
    pub fn verify_audit(&self) -> Result<VerifyReport, StoreError> {
        let all = self.audit_len();
        let bound = Bound {
            entries: all,
            checkpoints: all,
        };
        Ok(
            match self.continue_verify(self.fresh_verifier(), Resume::START, bound)? {
                Run::Damaged(report) => report,
                Run::Done { report, .. } => report,
            },
        )
    }

    fn fresh_verifier(&self) -> Verifier {
        Verifier::new(self.audit_public_key(), Coverage::Optional)
    }

    /// The same, continuing the last whole verification that passed with the entries and
    /// checkpoints written since, while it is younger than `max_age` (a whole verification
    /// reads every entry: seconds for a log of millions, on every view of the portal's audit
    /// page otherwise). Returns the report and when the whole log was last verified.
    pub fn verify_audit_recent(
        &self,
        max_age: std::time::Duration,
    ) -> Result<(VerifyReport, String), StoreError> {
        // Held throughout: concurrent views wait for one verification instead of each
        // reading the whole log.
        let mut kept = self
            .inner
            .audit_verified
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Every entry applied; the checkpoints up to the durable entries only: every
        // checkpoint of fewer is stored by then (the commit thread stores them before raising
        // it), so one stored after this run can only be of exactly that size, and the next run
        // continues from there (the entries after it are read again).
        let bound = Bound {
            entries: self.audit_len(),
            checkpoints: self.inner.shared.audit_durable.load(Ordering::Acquire),
        };
        let (run, whole_at, whole) = match kept.take() {
            Some(v) if v.whole.elapsed() < max_age => (
                self.continue_verify(*v.resume.verifier, v.resume.from, bound)?,
                v.whole_at,
                v.whole,
            ),
            _ => {
                let at = crate::domain::clock::now_rfc3339();
                let whole = std::time::Instant::now();
                let run = self.continue_verify(self.fresh_verifier(), Resume::START, bound)?;
                (run, at, whole)
            }
        };
        match run {
            Run::Damaged(report) => Ok((report, whole_at)),
            Run::Done { report, resume } => {
                // Only a log that verifies is continued: a problem is found again (and
                // reported) by every later view.
                if report.ok {
                    *kept = Some(Verified {
                        resume,
                        whole_at: whole_at.clone(),
                        whole,
                    });
                }
                Ok((report, whole_at))
            }
        }
    }

    /// Feeds `verifier`, which has verified the first `from.size` entries and the checkpoints
    /// before `from.checkpoints_from`, with the rest of the log up to `bound.entries` entries
    /// and the checkpoints of at most `bound.checkpoints` entries. (Bounded so that entries and
    /// checkpoints written while it reads, which its iterators may or may not see, cannot look
    /// like a truncation or a moved checkpoint.) The run to continue from is the verifier as it
    /// stood at `bound.checkpoints` entries.
    fn continue_verify(
        &self,
        mut verifier: Verifier,
        from: Resume,
        bound: Bound,
    ) -> Result<Run, StoreError> {
        let mut size = from.size;
        let mut next_checkpoint = from.checkpoints_from;
        let damaged = |m: String| {
            Run::Damaged(VerifyReport {
                ok: false,
                problem: format!("stored entry damaged: {m}"),
                ..Default::default()
            })
        };
        // Each checkpoint is fed right after the last entry it covers: memory stays flat.
        let mut checkpoints = self
            .checkpoints_from(next_checkpoint)
            .take_while(|c| {
                c.as_ref()
                    .map_or(true, |c| c.tree_size <= bound.checkpoints)
            })
            .peekable();
        let mut entries = self
            .audit_after(size)
            .take(bound.entries.saturating_sub(size) as usize);
        let mut resume = None;
        loop {
            while let Some(c) =
                checkpoints.next_if(|c| c.as_ref().map_or(true, |c| c.tree_size <= size))
            {
                match c {
                    Ok(c) => {
                        next_checkpoint = c.tree_size + 1;
                        verifier.checkpoint(c);
                    }
                    Err(StoreError::Corrupt(m)) => return Ok(damaged(m)),
                    Err(e) => return Err(e),
                }
            }
            if resume.is_none() && size >= bound.checkpoints {
                resume = Some(Continue::at(&verifier, size, next_checkpoint));
            }
            match entries.next() {
                None => break,
                Some(Ok(e)) => {
                    if !verifier.entry(&e) {
                        break;
                    }
                    size += 1;
                }
                Some(Err(StoreError::Corrupt(m))) => return Ok(damaged(m)),
                Some(Err(e)) => return Err(e),
            }
        }
        let resume = resume.unwrap_or_else(|| Continue::at(&verifier, size, next_checkpoint));
        // Checkpoints beyond the last entry: the verifier reports the truncation.
        for c in checkpoints {
            match c {
                Ok(c) => verifier.checkpoint(c),
                Err(StoreError::Corrupt(m)) => return Ok(damaged(m)),
                Err(e) => return Err(e),
            }
        }
        Ok(Run::Done {
            report: verifier.finish(),
            resume,
        })
    }
}

/// How far a run reads: the entries, and the checkpoints (of at most that many entries).
#[derive(Clone, Copy)]
struct Bound {
    entries: u64,
    checkpoints: u64,
}

/// A verifier to continue from, and where.
pub(super) struct Continue {
    /// Boxed: it is large next to a report.
    verifier: Box<Verifier>,
    from: Resume,
}

impl Continue {
    fn at(verifier: &Verifier, size: u64, checkpoints_from: u64) -> Continue {
        Continue {
            verifier: Box::new(verifier.clone()),
            from: Resume {
                size,
                checkpoints_from,
            },
        }
    }
}

/// Where a verification continues: after `size` entries, with the checkpoints of
/// `checkpoints_from` entries or more (those before were fed).
#[derive(Clone, Copy)]
struct Resume {
    size: u64,
    checkpoints_from: u64,
}

impl Resume {
    const START: Resume = Resume {
        size: 0,
        checkpoints_from: 0,
    };
}

/// A whole verification of the store's audit log that passed, kept to be continued.
pub(super) struct Verified {
    /// The verifier after the entries and checkpoints it names.
    resume: Continue,
    /// When the whole log was last read (RFC 3339, and for its age).
    whole_at: String,
    whole: std::time::Instant,
}

/// The outcome of feeding a verifier the stored log.
enum Run {
    /// A stored record could not be read.
    Damaged(VerifyReport),
    Done {
        report: VerifyReport,
        /// Where to continue from.
        resume: Continue,
    },
}

impl StoreError {
    /// The reason an audit entry records: the code and a cause in fixed words (a refusal's
    /// rule), with the names of invalid fields; never the message, which may quote the request.
    pub fn audit_reason(&self) -> String {
        let code = self.code_name();
        let cause = match self {
            StoreError::Refused(r) => r.cause,
            StoreError::Invalid(_) => "invalid_field",
            StoreError::DiskLow(_) => "disk_low",
            _ => code,
        };
        let fields = match self {
            StoreError::Invalid(i) => i.0.iter().map(|f| f.field.as_str()).collect(),
            StoreError::Refused(r)
                if r.code == crate::domain::rules::RefusalCode::InvalidArgument =>
            {
                vec![r.field.as_str()]
            }
            _ => Vec::new(),
        };
        crate::audit::bound::reason(code, cause, fields)
    }
}

/// The audit log state, as the last commit left it.
pub(super) fn load_audit_state(trees: &Trees) -> Result<LogState, StoreError> {
    let state = match trees.meta.get(writer::AUDIT_STATE_KEY)? {
        None => LogState::default(),
        Some(v) => {
            LogState::from_bytes(&v).ok_or_else(|| StoreError::Corrupt("audit log state".into()))?
        }
    };
    let last = trees.audit.last()?.map_or(0, |(k, _)| key_u64(&k));
    if last != state.frontier.size() {
        return Err(StoreError::Corrupt(format!(
            "the audit log holds {last} entries but its state says {}",
            state.frontier.size()
        )));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use std::time::Duration;

    use crate::{
        audit::{Origin, bound::MAX_ENTRY_BYTES},
        pb::Checkpoint,
        store::{Store, StoreOptions, scratch},
    };

    /// Long enough that no whole verification runs again within a test.
    const KEEP: Duration = Duration::from_secs(3600);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_stored_entry_exceeds_the_maximum_whatever_is_appended() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            fsync: false,
            check_on_start: false,
            ..Default::default()
        };
        let store = Store::open(dir.path(), options).unwrap();
        // A list of 30,000 submission ids and a 1 MB object id, as a caller might build them.
        let ids: Vec<String> = (0..30_000)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        let mut e = Origin::hub().entry("submission.list");
        e.object_ids = ids.clone();
        e.object_id = "x".repeat(1 << 20);
        store.audit(vec![e]).await;
        store.checkpoint().await.unwrap();
        let stored: Vec<_> = store.audit_after(0).map(Result::unwrap).collect();
        assert!(stored.len() > 1, "split into parts");
        for e in &stored {
            assert!(e.encoded_len() <= MAX_ENTRY_BYTES, "{}", e.encoded_len());
            assert!(e.object_id.starts_with("invalid id, 1048576 bytes"));
        }
        let kept: Vec<String> = stored.into_iter().flat_map(|e| e.object_ids).collect();
        assert_eq!(kept, ids, "every id kept, in order");
        assert!(store.verify_audit().unwrap().ok);
        store.close();
    }

    /// The portal's verification continues the last whole one with the entries written since:
    /// it counts them, catches an entry rewritten after it, and a whole verification (asked
    /// for, or once the last is too old) catches one rewritten inside what was verified.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_continued_verification_checks_new_entries_and_a_whole_one_everything() {
        let (_dir, store) = scratch::store();
        store.audit(scratch::entries(40)).await;
        store.checkpoint().await.unwrap();
        let (first, whole_at) = store.verify_audit_recent(KEEP).unwrap();
        assert!(first.ok && first.entries == 40, "{first:?}");

        // Continued: the new entries and checkpoint are verified and counted, the whole log
        // is not read again.
        store.audit(scratch::entries(25)).await;
        store.checkpoint().await.unwrap();
        let (next, at) = store.verify_audit_recent(KEEP).unwrap();
        assert!(
            next.ok && next.entries == 65 && next.checkpoints == 2,
            "{next:?}"
        );
        assert_eq!((next.covered, &at), (65, &whole_at));

        // An entry rewritten after the last verification is caught by the next view.
        store.audit(scratch::entries(10)).await;
        // Made durable (a continued verification reads no further than that).
        store.checkpoint().await.unwrap();
        scratch::rewrite_entry(&store, 70);
        let (caught, _) = store.verify_audit_recent(KEEP).unwrap();
        assert!(!caught.ok && caught.first_bad_entry == 70, "{caught:?}");
        assert!(!store.verify_audit().unwrap().ok);
    }

    /// An entry rewritten inside what a kept verification covers: only a whole verification
    /// reads it again, and it does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_whole_verification_catches_what_a_continued_one_has_passed() {
        let (_dir, store) = scratch::store();
        store.audit(scratch::entries(30)).await;
        store.checkpoint().await.unwrap();
        assert!(store.verify_audit_recent(KEEP).unwrap().0.ok);
        // Not read again while the kept verification is young: the rewrite passes unseen.
        scratch::rewrite_entry(&store, 10);
        assert!(store.verify_audit_recent(KEEP).unwrap().0.ok);
        let (whole, _) = store.verify_audit_recent(Duration::ZERO).unwrap();
        assert!(!whole.ok && whole.first_bad_entry == 10, "{whole:?}");
        // A failed verification is not kept: every later view reads the whole log again.
        assert!(!store.verify_audit_recent(KEEP).unwrap().0.ok);
    }

    /// A checkpoint stored after a continued verification read up to its size (the commit
    /// thread stores one at exactly the durable size a little later) is checked by the next
    /// view: counted when it matches, reported when its root does not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_checkpoint_stored_after_a_view_at_its_size_is_checked_by_the_next() {
        // The checkpoint of 12 entries, taken out before a first view; `replace` makes what
        // the commit thread stores later.
        let late = |replace: fn(&Store, Checkpoint) -> Checkpoint| async move {
            let (dir, store) = scratch::store();
            store.audit(scratch::entries(12)).await;
            let cp = store.checkpoint().await.unwrap();
            let key = cp.tree_size.to_be_bytes();
            store.inner.trees.checkpoints.remove(key).unwrap();
            let (first, _) = store.verify_audit_recent(KEEP).unwrap();
            assert!(first.ok && first.checkpoints == 0, "{first:?}");
            let stored = replace(&store, cp.clone());
            store
                .inner
                .trees
                .checkpoints
                .insert(key, crate::store::codec::frame(&stored))
                .unwrap();
            let (next, _) = store.verify_audit_recent(KEEP).unwrap();
            drop(dir);
            (cp, next)
        };
        let (cp, next) = late(|_, cp| cp).await;
        assert!(
            next.ok && next.checkpoints == 1 && next.covered == cp.tree_size,
            "{next:?}"
        );
        // A validly signed checkpoint whose root is not the log's.
        let (_, caught) = late(|store, cp| {
            store
                .inner
                .shared
                .signer
                .checkpoint(cp.tree_size, &[7u8; 32], cp.at)
        })
        .await;
        assert!(!caught.ok, "{caught:?}");
    }

    /// Entries applied but not yet flushed (reads are audited without a flush of their own) are
    /// verified and counted by a view like the others: the page shows as many as the log has.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_view_counts_the_entries_not_yet_flushed() {
        let (_dir, store) = scratch::store();
        store.audit(scratch::entries(20)).await;
        store.checkpoint().await.unwrap();
        assert_eq!(store.verify_audit_recent(KEEP).unwrap().0.entries, 20);
        store.audit(scratch::entries(7)).await;
        store.settled().await.unwrap();
        let (report, _) = store.verify_audit_recent(KEEP).unwrap();
        assert!(report.ok && report.entries == 27, "{report:?}");
        // And again: the unflushed ones are read again from the last durable point, not twice.
        store.audit(scratch::entries(3)).await;
        store.settled().await.unwrap();
        let (report, _) = store.verify_audit_recent(KEEP).unwrap();
        assert!(report.ok && report.entries == 30, "{report:?}");
    }
}
