//! Acknowledgements of notices: allowed by `domain::rules::acks`, staged by the writer (one per
//! member and contact, repeated requests answered with the first), read back for reports and
//! the directory.
use super::{
    Store, StoreError, codec,
    group::Group,
    keyspace::Rec,
    records::{self, StoredEvent, Verified},
    writer::Writer,
};
use crate::{
    domain::{
        clock,
        member::Member,
        rules::acks::{AckDecision, may_acknowledge},
    },
    pb,
};

/// A member's acknowledgement of a notice, as asked for (reply already checked).
#[derive(Debug, Clone)]
pub struct AckRequest {
    pub notice_id: String,
    pub reply: String,
    /// For a ping campaign: the contact answered for; empty: all the member's tested contacts.
    pub contact_id: String,
}

pub(super) fn ack_prefix(notice_id: &str) -> Vec<u8> {
    let mut key = notice_id.as_bytes().to_vec();
    key.push(0);
    key
}

pub(super) fn ack_key(notice_id: &str, member: &str, contact_id: &str) -> Vec<u8> {
    let mut key = ack_prefix(notice_id);
    key.extend_from_slice(member.as_bytes());
    key.push(0);
    key.extend_from_slice(contact_id.as_bytes());
    key
}

impl Writer {
    /// Asks the rules about an acknowledgement and stages it: the acknowledged event, the
    /// acknowledgement record and the verification of each contact it answers for.
    pub(super) fn prepare_ack(
        &self,
        actor: &Member,
        req: AckRequest,
        group: &mut Group,
    ) -> Result<pb::Acknowledgement, StoreError> {
        let decision = may_acknowledge(&self.view(group), actor, &req.notice_id, &req.contact_id)?;
        let (notice, contact_ids, campaign, deadline) = match decision {
            AckDecision::Repeat(first) => return Ok(first),
            AckDecision::New {
                notice,
                contact_ids,
                campaign,
                deadline,
            } => (notice, contact_ids, campaign, deadline),
        };
        let now = clock::now_rfc3339();
        let seq = group.next_seq;
        let ack = pb::Acknowledgement {
            notice_id: req.notice_id.clone(),
            notice_revision: notice.revision,
            member: actor.id.clone(),
            state: actor.state.clone(),
            contact_ids,
            reply: req.reply,
            on_time: on_time(&now, &deadline),
            deadline,
            acknowledged_at: now.clone(),
            sequence: seq,
            replayed: false,
        };
        let event = StoredEvent {
            sequence: seq,
            action: records::ACKNOWLEDGED.into(),
            submission: Some(*notice),
            acknowledgement: Some(ack.clone()),
            // Its audit entry is sealed right after this (see `Writer::prepare`): a subscriber's
            // check covers it by that number (`Audit.ConsistencyProof`'s cover_sequence).
            audit_sequence: group.audit.next_sequence(),
        };
        let framed = codec::frame(&event);
        // An acknowledgement for very many contacts at once could outgrow the budget.
        group.fits(self.budget(), &framed, || {
            "contact_id: the acknowledgement names too many contacts at once; acknowledge them one by one".into()
        })?;
        for contact in &ack.contact_ids {
            let verified = Verified {
                at: now.clone(),
                campaign: campaign.clone(),
            };
            group.put(Rec::Verified, contact.as_bytes(), codec::frame(&verified));
        }
        let encoded = framed.len() - codec::HEADER;
        group.put(Rec::Events, &seq.to_be_bytes(), framed);
        group.put(
            Rec::Acks,
            &ack_key(&req.notice_id, &actor.id, &req.contact_id),
            codec::frame(&ack),
        );
        group.events.push((std::sync::Arc::new(event), encoded));
        group.next_seq += 1;
        Ok(ack)
    }
}

/// Whether an acknowledgement at `at` meets `deadline` (none: always). Parsed rather than
/// compared as text: a publisher may write the deadline with any offset.
pub fn on_time(at: &str, deadline: &str) -> bool {
    match (clock::parse_instant(at), clock::parse_instant(deadline)) {
        (Ok(at), Ok(deadline)) => at <= deadline,
        _ => deadline.is_empty(),
    }
}

impl Store {
    /// Every durable acknowledgement of a notice, by member then contact.
    pub fn acks_of(&self, notice_id: &str) -> Result<Vec<pb::Acknowledgement>, StoreError> {
        let durable = self.head();
        let mut acks = Vec::new();
        for item in self.inner.trees.acks.scan_prefix(ack_prefix(notice_id)) {
            let (_, v) = item?;
            let ack: pb::Acknowledgement =
                codec::unframe(&v, || format!("acknowledgement of {notice_id}"))?;
            if ack.sequence <= durable {
                acks.push(ack);
            }
        }
        Ok(acks)
    }

    /// Acknowledges a notice; resolves once durable.
    pub async fn acknowledge(
        &self,
        actor: std::sync::Arc<Member>,
        origin: crate::audit::Origin,
        request: AckRequest,
    ) -> Result<pb::Acknowledgement, StoreError> {
        self.ask(|reply| super::writer::Command::Acknowledge {
            actor,
            origin,
            request,
            reply,
        })
        .await
    }

    /// When a point of contact last answered a ping, if it has.
    pub fn verified(&self, contact_id: &str) -> Result<Option<Verified>, StoreError> {
        match self.inner.trees.verified.get(contact_id.as_bytes())? {
            None => Ok(None),
            Some(v) => codec::unframe(&v, || format!("verification of {contact_id}")).map(Some),
        }
    }
}
