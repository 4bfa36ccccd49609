//! The integrity check: every stored value against its checksum, the feed gapless from 1, the
//! indexes (`heads`, `by_kind`) against what they point to, and the audit log against its chain
//! and signed checkpoints. Run at start (unless disabled) and by `cbm-hub check`.
use super::{
    Store, StoreError, codec, key_u64, read_head,
    records::{AudienceRecord, StoredEvent, SubmissionHead},
};
use crate::pb;

/// Problems reported at most; the first ones name where the damage starts.
const MAX_PROBLEMS: usize = 20;

impl Store {
    /// Checks everything; returns the problems found (empty: healthy).
    pub fn check(&self) -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        let mut note = |p: String| {
            if problems.len() < MAX_PROBLEMS {
                problems.push(p);
            }
        };
        let t = &self.inner.trees;
        let mut expected = 1u64;
        for item in t.events.iter() {
            let (k, v) = item?;
            let seq = key_u64(&k);
            if seq != expected {
                note(format!(
                    "feed: sequence {expected} is missing (next stored is {seq})"
                ));
            }
            expected = seq + 1;
            match codec::unframe::<StoredEvent>(&v, || format!("event {seq}")) {
                Ok(e) if e.sequence != seq => {
                    note(format!("event {seq}: says it is {}", e.sequence))
                }
                Ok(_) => {}
                Err(e) => note(e.to_string()),
            }
        }
        let head = expected - 1;
        for item in t.heads.iter() {
            let (k, v) = item?;
            let id = String::from_utf8_lossy(&k).into_owned();
            let h: SubmissionHead = match codec::unframe(&v, || format!("index of submission {id}"))
            {
                Ok(h) => h,
                Err(e) => {
                    note(e.to_string());
                    continue;
                }
            };
            for (i, seq) in h.revision_seqs.iter().enumerate() {
                if *seq > head {
                    note(format!(
                        "submission {id}: revision {} points past the feed head {head}",
                        i + 1
                    ));
                    continue;
                }
                match self.event(*seq) {
                    Ok(e) => {
                        let s = e.submission.unwrap_or_default();
                        if s.id != id || s.revision as usize != i + 1 {
                            note(format!(
                                "submission {id}: revision {} points to event {seq} of {} r{}",
                                i + 1,
                                s.id,
                                s.revision
                            ));
                        }
                        // The audience decision reads the head's copy of each revision's
                        // audience: it must be the revision's own.
                        if h.audiences.get(i) != Some(&AudienceRecord::of(&s)) {
                            note(format!(
                                "submission {id}: the index holds another audience for revision {} than its event {seq}",
                                i + 1
                            ));
                        }
                    }
                    Err(e) => note(format!("submission {id}: {e}")),
                }
            }
        }
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
                    "verification" => {
                        codec::unframe::<super::records::Verified>(&v, what).map(drop)
                    }
                    "catalogue framework" => codec::unframe::<pb::Framework>(&v, what).map(drop),
                    _ => codec::unframe::<super::records::IdempotencyRecord>(&v, what).map(drop),
                };
                if let Err(e) = result {
                    note(e.to_string());
                }
            }
        }
        for item in t.by_kind.iter() {
            let (k, v) = item?;
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
                    note(e.to_string());
                    continue;
                }
            };
            if !indexed {
                note(format!(
                    "by_kind: the entry for {id} does not match its submission"
                ));
            }
        }
        if t.by_kind.len() != t.heads.len() {
            note(format!(
                "by_kind: {} entries for {} submissions",
                t.by_kind.len(),
                t.heads.len()
            ));
        }
        let audit = self.verify_audit()?;
        if !audit.ok {
            note(format!("audit log: {}", audit.problem));
        }
        Ok(problems)
    }
}
