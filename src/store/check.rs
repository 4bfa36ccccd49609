//! The integrity check: every stored value against its checksum, the feed gapless from 1, the
//! indexes (`heads`, `by_kind`, `by_created`) against what they point to, and the audit log
//! against its chain and signed checkpoints.
//!
//! It is offered in parts, so that a start can check only what changed since the last clean
//! stop or the last check ([`super::seal`]) and the background check can pace itself
//! ([`super::background_check`]): the events in a range of sequences (with the heads and
//! indexes they touch), every head up to a sequence, the other records, and the audit log from
//! a known state. Each part reads only what is durable up to the bound it is given, so it can
//! run while the writer commits. `cbm-hub check` runs them all ([`Store::check`]).
use super::{
    Store, StoreError, codec, durable_part, key_after, key_u64, read_head,
    records::{self, AudienceRecord, StoredEvent, SubmissionHead},
};
use crate::{
    audit::{Coverage, LogState, Verifier},
    pb,
};

/// Problems reported at most; the first ones name where the damage starts.
const MAX_PROBLEMS: usize = 20;

/// Told the bytes of every value read: the background check bounds its rate here, and is
/// ended here (an error) when the hub stops. The start check and `cbm-hub check` use [`unpaced`].
pub(crate) type Pace<'a> = &'a mut dyn FnMut(usize) -> Result<(), StoreError>;

/// A pace that never waits.
pub(crate) fn unpaced(_: usize) -> Result<(), StoreError> {
    Ok(())
}

/// Problems found, at most [`MAX_PROBLEMS`].
#[derive(Debug, Default)]
pub(crate) struct Problems(pub Vec<String>);

impl Problems {
    pub fn note(&mut self, p: String) {
        if self.0.len() < MAX_PROBLEMS {
            self.0.push(p);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a full check covered.
pub(crate) struct Covered {
    /// Events 1..=events were checked.
    pub events: u64,
    /// The audit log state after the entries checked (its size is how many).
    pub audit: LogState,
}

impl Store {
    /// Checks everything; returns the problems found (empty: healthy). Blocking. Damage found
    /// here keeps the next start from trusting its seal (see [`super::seal`]).
    pub fn check(&self) -> Result<Vec<String>, StoreError> {
        let mut problems = Problems::default();
        self.check_all(u64::MAX, &mut problems, &mut unpaced)?;
        if !problems.is_empty() {
            self.damage_found(&problems.0);
        }
        Ok(problems.0)
    }

    /// The full check of events up to the durable head, every head and record, and audit
    /// entries up to `audit_upto` (all when larger than the log).
    pub(crate) fn check_all(
        &self,
        audit_upto: u64,
        problems: &mut Problems,
        pace: Pace,
    ) -> Result<Covered, StoreError> {
        let head = self.head();
        // With the heads and indexes each event touches: an event nothing points to (written
        // outside the writer, say) is found too.
        self.check_events(0, head, problems, pace)?;
        self.check_heads(head, problems, pace)?;
        self.check_records(problems, pace)?;
        let audit = self.check_audit(LogState::default(), audit_upto, problems, pace)?;
        Ok(Covered {
            events: head,
            audit,
        })
    }

    /// Events `after+1..=upto`: each present, framed, numbered as its key, and pointed to by
    /// the heads and indexes it touches. Returns how many events were read.
    pub(crate) fn check_events(
        &self,
        after: u64,
        upto: u64,
        problems: &mut Problems,
        pace: Pace,
    ) -> Result<u64, StoreError> {
        let t = &self.inner.trees;
        if after >= upto {
            return Ok(0);
        }
        let mut expected = after + 1;
        let mut read = 0;
        for item in t.events.range(key_after(after)..key_after(upto)) {
            let (k, v) = item?;
            pace(v.len())?;
            read += 1;
            let seq = key_u64(&k);
            if seq != expected {
                problems.note(format!(
                    "feed: sequence {expected} is missing (next stored is {seq})"
                ));
            }
            expected = seq + 1;
            match codec::unframe::<StoredEvent>(&v, || format!("event {seq}")) {
                Ok(e) if e.sequence != seq => {
                    problems.note(format!("event {seq}: says it is {}", e.sequence))
                }
                Ok(e) => self.check_touched(&e, problems)?,
                Err(e) => problems.note(e.to_string()),
            }
        }
        if upto != u64::MAX && expected <= upto {
            problems.note(format!(
                "feed: events {expected}..={upto} are missing (the feed ends at {})",
                expected - 1
            ));
        }
        Ok(read)
    }

    /// The head of an event's submission points back to it with its audience, and a first
    /// revision is in `by_created` and `by_kind`.
    fn check_touched(&self, e: &StoredEvent, problems: &mut Problems) -> Result<(), StoreError> {
        let t = &self.inner.trees;
        let seq = e.sequence;
        let Some(s) = &e.submission else {
            problems.note(format!("event {seq}: holds no submission"));
            return Ok(());
        };
        let head = match read_head(&t.heads, &s.id) {
            Ok(Some(h)) => h,
            Ok(None) => {
                problems.note(format!("event {seq}: submission {} has no index", s.id));
                return Ok(());
            }
            Err(err) => {
                problems.note(err.to_string());
                return Ok(());
            }
        };
        let i = (s.revision as usize).wrapping_sub(1);
        if e.action == records::ACKNOWLEDGED {
            // Carries a copy of the notice's revision: the revision must exist.
            if i >= head.revision_seqs.len() {
                problems.note(format!(
                    "event {seq}: acknowledges revision {} of {}, which has {}",
                    s.revision,
                    s.id,
                    head.revision_seqs.len()
                ));
            }
            return Ok(());
        }
        if head.revision_seqs.get(i) != Some(&seq) {
            problems.note(format!(
                "submission {}: the index does not point to event {seq} for revision {}",
                s.id, s.revision
            ));
        } else if head.audiences.get(i) != Some(&AudienceRecord::of(s)) {
            problems.note(format!(
                "submission {}: the index holds another audience for revision {} than its event {seq}",
                s.id, s.revision
            ));
        }
        // Replay decides a submission without a `Revised` record from its first event alone:
        // every submission revised or withdrawn must have one.
        if s.revision > 1 && t.revised.get(s.id.as_bytes())?.is_none() {
            problems.note(format!(
                "submission {}: has {} revisions but no revision mark",
                s.id, s.revision
            ));
        }
        if s.revision == 1 {
            let created = t.by_created.get(seq.to_be_bytes())?;
            if created.as_deref() != Some(s.id.as_bytes()) {
                problems.note(format!("by_created: no entry for {} at {seq}", s.id));
            }
            let indexed = head
                .kind
                .parse::<crate::domain::kind::Kind>()
                .ok()
                .map(|kind| super::indexes::by_kind_key(kind, &head.publisher, seq))
                .map(|key| t.by_kind.get(key))
                .transpose()?
                .flatten();
            if indexed.as_deref() != Some(s.id.as_bytes()) {
                problems.note(format!("by_kind: no entry for {} at {seq}", s.id));
            }
        }
        Ok(())
    }

    /// Every head, as far as sequence `upto`: each revision's event is that revision with the
    /// audience the head keeps; `by_kind` holds exactly the submissions created up to `upto`.
    pub(crate) fn check_heads(
        &self,
        upto: u64,
        problems: &mut Problems,
        pace: Pace,
    ) -> Result<(), StoreError> {
        let t = &self.inner.trees;
        let mut heads = 0u64;
        let mut revised_heads = 0usize;
        for item in t.heads.iter() {
            let (k, v) = item?;
            pace(v.len())?;
            let id = String::from_utf8_lossy(&k).into_owned();
            let h: SubmissionHead = match codec::unframe(&v, || format!("index of submission {id}"))
            {
                Ok(h) => h,
                Err(e) => {
                    problems.note(e.to_string());
                    continue;
                }
            };
            // Revisions after `upto` are not durable yet (or not checked by this pass).
            let Some(h) = durable_part(h, upto) else {
                continue;
            };
            heads += 1;
            if h.revision_seqs.len() > 1 {
                revised_heads += 1;
                if t.revised.get(&k)?.is_none() {
                    problems.note(format!(
                        "submission {id}: has {} revisions but no revision mark",
                        h.revision_seqs.len()
                    ));
                }
            }
            for (i, seq) in h.revision_seqs.iter().enumerate() {
                match self.event(*seq) {
                    Ok(e) => {
                        let s = e.submission.unwrap_or_default();
                        if s.id != id || s.revision as usize != i + 1 {
                            problems.note(format!(
                                "submission {id}: revision {} points to event {seq} of {} r{}",
                                i + 1,
                                s.id,
                                s.revision
                            ));
                        }
                        // The audience decision reads the head's copy of each revision's
                        // audience: it must be the revision's own.
                        if h.audiences.get(i) != Some(&AudienceRecord::of(&s)) {
                            problems.note(format!(
                                "submission {id}: the index holds another audience for revision {} than its event {seq}",
                                i + 1
                            ));
                        }
                    }
                    Err(e) => problems.note(format!("submission {id}: {e}")),
                }
            }
        }
        let mut by_kind = 0u64;
        for item in t.by_kind.iter() {
            let (k, v) = item?;
            pace(k.len() + v.len())?;
            // The key ends with the submission's first sequence.
            let created = k.len().checked_sub(8).map_or(0, |at| key_u64(&k[at..]));
            if created > upto {
                continue;
            }
            by_kind += 1;
            let id = String::from_utf8_lossy(&v).into_owned();
            let indexed = match read_head(&t.heads, &id) {
                Ok(Some(h)) => h
                    .kind
                    .parse::<crate::domain::kind::Kind>()
                    .is_ok_and(|kind| {
                        super::indexes::by_kind_key(kind, &h.publisher, h.created_seq) == k.as_ref()
                    }),
                Ok(None) => false,
                Err(e) => {
                    problems.note(e.to_string());
                    continue;
                }
            };
            if !indexed {
                problems.note(format!(
                    "by_kind: the entry for {id} does not match its submission"
                ));
            }
        }
        if by_kind != heads {
            problems.note(format!(
                "by_kind: {by_kind} entries for {heads} submissions"
            ));
        }
        // Marks of revisions not durable yet are not counted by this pass either way, so the
        // count is compared only on a full pass.
        if upto == u64::MAX {
            let marks = t.revised.count()?;
            if marks != revised_heads {
                problems.note(format!(
                    "revision marks: {marks} for {revised_heads} submissions with more than one revision"
                ));
            }
        }
        Ok(())
    }

    /// Every other record against its checksum (and a ping notice's campaign exists).
    pub(crate) fn check_records(
        &self,
        problems: &mut Problems,
        pace: Pace,
    ) -> Result<(), StoreError> {
        let t = &self.inner.trees;
        for (tree, name) in [
            (&t.members, "member"),
            (&t.idempotency, "idempotency record"),
            (&t.checkpoints, "checkpoint"),
            (&t.acks, "acknowledgement"),
            (&t.campaigns, "ping campaign"),
            (&t.campaign_notices, "ping notice"),
            (&t.verified, "verification"),
            (&t.catalogue, "catalogue framework"),
        ] {
            for item in tree.iter() {
                let (k, v) = item?;
                pace(k.len() + v.len())?;
                let what = || format!("{name} {}", String::from_utf8_lossy(&k));
                let result = match name {
                    "member" => codec::unframe::<pb::Member>(&v, what).map(drop),
                    "checkpoint" => codec::unframe::<pb::Checkpoint>(&v, what).map(drop),
                    "acknowledgement" => codec::unframe::<pb::Acknowledgement>(&v, what).map(drop),
                    "ping campaign" => codec::unframe::<pb::PingCampaign>(&v, what).map(drop),
                    // A campaign id, as written with the notice: it must name a campaign.
                    "ping notice" => match t.campaigns.get(&v)? {
                        Some(_) => Ok(()),
                        None => Err(StoreError::Corrupt(format!(
                            "{}: names no stored campaign",
                            what()
                        ))),
                    },
                    "verification" => codec::unframe::<records::Verified>(&v, what).map(drop),
                    "catalogue framework" => codec::unframe::<pb::Framework>(&v, what).map(drop),
                    _ => codec::unframe::<records::IdempotencyRecord>(&v, what).map(drop),
                };
                if let Err(e) = result {
                    problems.note(e.to_string());
                }
            }
        }
        Ok(())
    }

    /// Audit entries after the state `from` up to entry `upto` (all when larger than the log),
    /// continuing its chain and Merkle tree, with the signed checkpoints of sizes from
    /// `from`'s up to `upto`. Returns the state after the entries checked.
    pub(crate) fn check_audit(
        &self,
        from: LogState,
        upto: u64,
        problems: &mut Problems,
        pace: Pace,
    ) -> Result<LogState, StoreError> {
        let start = from.frontier.size();
        let mut verifier = Verifier::resume(self.audit_public_key(), Coverage::Optional, from);
        // Each checkpoint is fed right after the last entry it covers: memory stays flat.
        let mut checkpoints = self
            .checkpoints_from(start)
            .take_while(|c| c.as_ref().map_or(true, |c| c.tree_size <= upto))
            .peekable();
        let mut entries = self.audit_after(start);
        let mut size = start;
        let damaged = |m: String| format!("audit log: stored entry damaged: {m}");
        loop {
            while let Some(c) =
                checkpoints.next_if(|c| c.as_ref().map_or(true, |c| c.tree_size <= size))
            {
                match c {
                    Ok(c) => verifier.checkpoint(c),
                    Err(StoreError::Corrupt(m)) => {
                        problems.note(damaged(m));
                        return Ok(verifier.state().clone());
                    }
                    Err(e) => return Err(e),
                }
            }
            if size >= upto {
                break;
            }
            match entries.next() {
                None => break,
                Some(Ok(e)) => {
                    pace(prost::Message::encoded_len(&e))?;
                    if !verifier.entry(&e) {
                        break;
                    }
                    size += 1;
                }
                Some(Err(StoreError::Corrupt(m))) => {
                    problems.note(damaged(m));
                    return Ok(verifier.state().clone());
                }
                Some(Err(e)) => return Err(e),
            }
        }
        // Checkpoints beyond the last entry: the verifier reports the truncation.
        for c in checkpoints {
            match c {
                Ok(c) => verifier.checkpoint(c),
                Err(StoreError::Corrupt(m)) => problems.note(damaged(m)),
                Err(e) => return Err(e),
            }
        }
        if upto != u64::MAX && size < upto {
            problems.note(format!(
                "audit log: entries {}..={upto} are missing (the log ends at {size})",
                size + 1
            ));
        }
        let state = verifier.state().clone();
        let report = verifier.finish();
        if !report.ok {
            problems.note(format!("audit log: {}", report.problem));
        }
        Ok(state)
    }
}
