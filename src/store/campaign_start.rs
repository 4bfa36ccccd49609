//! Starting a ping campaign in the writer: one notice per tested member, staged together with
//! the campaign record and its index, in one group, so that either every notice is accepted or
//! none is.
use super::{
    StoreError,
    changes::{Change, Outcome},
    codec,
    records::IdempotencyRecord,
    writer::{Group, T, Writer},
};
use crate::{
    audit::{LogState, Origin},
    domain::member::Member,
    pb,
};

/// The audit action of a campaign start (and of its refusal).
pub const START: &str = "ping.campaign.start";

/// A campaign as the service prepared it: its targets (without notice ids) and one notice per
/// tested member, content already validated.
#[derive(Debug, Clone)]
pub struct CampaignStart {
    /// Deadline, filters and targets; the writer sets the id, start time and notice ids.
    pub record: pb::PingCampaign,
    /// (member id, publication of the notice addressed to that member alone).
    pub notices: Vec<(String, Change)>,
    pub idempotency_key: Option<String>,
    /// What identifies the request for idempotency: the request the campaign was built from
    /// (a retry with a default deadline builds different notices from the same request).
    pub fingerprint: Vec<u8>,
}

/// How far a group had got before a campaign was staged, to undo the campaign if one of its
/// notices is refused.
struct Mark {
    writes: usize,
    events: usize,
    next_seq: u64,
    audit: LogState,
}

impl Mark {
    fn of(group: &Group) -> Mark {
        Mark {
            writes: group.writes.len(),
            events: group.events.len(),
            next_seq: group.next_seq,
            audit: group.audit.clone(),
        }
    }

    /// Undoes what was staged since the mark: `created` are the notices published since.
    fn rollback(self, group: &mut Group, created: &[String]) {
        group.writes.truncate(self.writes);
        group.events.truncate(self.events);
        group.next_seq = self.next_seq;
        group.audit = self.audit;
        for id in created {
            group.heads.remove(id);
        }
    }
}

impl Writer {
    /// Stages a campaign: its notices (each audited as a publication), the campaign record, the
    /// notice -> campaign index and the idempotency record. A refused notice undoes them all.
    pub(super) fn prepare_campaign(
        &self,
        actor: &Member,
        origin: &Origin,
        start: CampaignStart,
        group: &mut Group,
    ) -> Result<Outcome, StoreError> {
        let key = start.idempotency_key.as_ref().map(|k| {
            let mut key = actor.id.as_bytes().to_vec();
            key.push(0);
            key.extend_from_slice(k.as_bytes());
            key
        });
        if let Some(key) = &key
            && let Some(record) = self.idempotency_record(key, group)?
        {
            if record.request_hash != start.fingerprint {
                return Err(StoreError::AlreadyExists(
                    "idempotency_key: already used for a different request".into(),
                ));
            }
            let mut response = record.response.unwrap_or_default();
            response.replayed = true;
            let mut entry = origin.entry(START);
            entry.object_id = response.id.clone();
            entry.detail = format!("idempotent replay of campaign {}", response.id);
            group.audit(entry);
            return Ok(response);
        }

        let mark = Mark::of(group);
        let mut created: Vec<String> = Vec::new();
        let mut sent: Vec<(String, Outcome)> = Vec::new();
        for (member, change) in start.notices {
            let mut entry = origin.entry(change.op.action());
            match self.prepare_change(actor, change, group) {
                Ok((outcome, label)) => {
                    created.push(outcome.id.clone());
                    // Audited as any publication, right after it (its index entry expects the
                    // next audit number).
                    entry.object_id = outcome.id.clone();
                    entry.revision = outcome.revision;
                    entry.label = label;
                    entry.feed_sequence = outcome.sequence;
                    group.audit(entry);
                    sent.push((member, outcome));
                }
                Err(e) => {
                    mark.rollback(group, &created);
                    return Err(e);
                }
            }
        }
        let (Some((_, first)), Some((_, last))) = (sent.first(), sent.last()) else {
            mark.rollback(group, &created);
            return Err(StoreError::FailedPrecondition(
                "a ping campaign needs at least one contact to test".into(),
            ));
        };
        let id = uuid::Uuid::new_v4().to_string();
        let response = Outcome {
            id: id.clone(),
            revision: 1,
            sequence: last.sequence,
            content_hash: String::new(),
            accepted_at: first.accepted_at.clone(),
            replayed: false,
        };
        let mut record = start.record;
        record.id = id.clone();
        record.started_at = first.accepted_at.clone();
        for line in &mut record.results {
            if let Some((_, outcome)) = sent.iter().find(|(m, _)| *m == line.member) {
                line.notice_id = outcome.id.clone();
            }
        }
        if let Some(line) = record.results.iter().find(|l| l.notice_id.is_empty()) {
            mark.rollback(group, &created);
            return Err(StoreError::Io(format!(
                "internal: no ping notice for {}, whose contact {} is tested",
                line.member, line.contact_id
            )));
        }
        for (_, outcome) in &sent {
            group.writes.push((
                T::CampaignNotices,
                outcome.id.as_bytes().to_vec(),
                id.as_bytes().to_vec(),
            ));
            group
                .campaign_notices
                .insert(outcome.id.clone(), id.clone());
        }
        group
            .writes
            .push((T::Campaigns, id.as_bytes().to_vec(), codec::frame(&record)));
        if let Some(key) = key {
            let stored = IdempotencyRecord {
                request_hash: start.fingerprint,
                response: Some(response.clone()),
            };
            group
                .writes
                .push((T::Idempotency, key.clone(), codec::frame(&stored)));
            group.idempotency.insert(key, stored);
        }
        let mut entry = origin.entry(START);
        entry.object_id = id.clone();
        entry.detail = format!(
            "{} contacts of {} members, one ping notice each, deadline {}",
            record.results.len(),
            sent.len(),
            record.deadline
        );
        group.audit(entry);
        group.campaigns.insert(id, record);
        Ok(response)
    }
}
