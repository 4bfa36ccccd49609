//! Starting a ping campaign in the writer: one notice per tested member, staged together with
//! the campaign record and its index, in one group, so that either every notice is accepted or
//! none is.
use super::{
    StoreError,
    changes::{Change, Outcome},
    codec,
    group::Group,
    keyspace::Rec,
    records::IdempotencyRecord,
    writer::Writer,
};
use crate::{
    audit::Origin,
    domain::{
        member::Member,
        rules::{self, Refusal, View},
    },
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
        let key = start.idempotency_key.clone();
        let record = match &key {
            Some(k) => self.view(group).idempotency(&actor.id, k)?,
            None => None,
        };
        if let Some(response) = rules::idempotent_replay(record, &start.fingerprint)? {
            let mut entry = origin.entry(START);
            entry.object_id = response.id.clone();
            entry.detail = format!("idempotent replay of campaign {}", response.id);
            group.audit(entry);
            return Ok(response);
        }

        let mark = group.mark();
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
                    group.rollback(mark, &created);
                    return Err(e);
                }
            }
        }
        let (Some((_, first)), Some((_, last))) = (sent.first(), sent.last()) else {
            group.rollback(mark, &created);
            return Err(Refusal::precondition(
                "no_contact",
                "",
                "a ping campaign needs at least one contact to test".into(),
            )
            .into());
        };
        let id = uuid::Uuid::new_v4().to_string();
        let response = Outcome {
            id: id.clone(),
            revision: 1,
            sequence: last.sequence,
            content_hash: String::new(),
            accepted_at: first.accepted_at.clone(),
            replayed: false,
            ..Default::default()
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
            group.rollback(mark, &created);
            return Err(StoreError::Io(format!(
                "internal: no ping notice for {}, whose contact {} is tested",
                line.member, line.contact_id
            )));
        }
        for (_, outcome) in &sent {
            group.put(
                Rec::CampaignNotices,
                outcome.id.as_bytes(),
                id.as_bytes().to_vec(),
            );
        }
        group.put(Rec::Campaigns, id.as_bytes(), codec::frame(&record));
        if let Some(key) = key {
            let stored = IdempotencyRecord {
                request_hash: start.fingerprint,
                response: Some(response.clone()),
            };
            group.put(
                Rec::Idempotency,
                &super::group::idempotency_key(&actor.id, &key),
                codec::frame(&stored),
            );
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
        Ok(response)
    }
}
