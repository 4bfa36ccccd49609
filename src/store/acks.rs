//! Acknowledgements of notices: checked and staged by the writer (one per member and contact,
//! repeated requests answered with the first), read back for reports and the directory.
use super::{
    Store, StoreError, codec,
    records::{self, StoredEvent, Verified},
    writer::{Group, T, Writer},
};
use crate::{
    domain::{audience::sees, clock, kind::Kind, member::Member},
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

fn ack_prefix(notice_id: &str) -> Vec<u8> {
    let mut key = notice_id.as_bytes().to_vec();
    key.push(0);
    key
}

fn ack_key(notice_id: &str, member: &str, contact_id: &str) -> Vec<u8> {
    let mut key = ack_prefix(notice_id);
    key.extend_from_slice(member.as_bytes());
    key.push(0);
    key.extend_from_slice(contact_id.as_bytes());
    key
}

impl Writer {
    pub(super) fn prepare_ack(
        &self,
        actor: &Member,
        req: AckRequest,
        group: &mut Group,
    ) -> Result<pb::Acknowledgement, StoreError> {
        let id = &req.notice_id;
        // Absent and invisible get the same answer, so existence does not leak.
        let not_found = || StoreError::NotFound(format!("no notice {id} visible to {}", actor.id));
        let (head, latest) = self.latest_in(id, group)?.ok_or_else(not_found)?;
        let notice = latest.submission.as_ref().ok_or_else(not_found)?;
        if !sees(actor, &head.standing()) {
            return Err(not_found());
        }
        if head.kind != Kind::Notice.as_str() {
            return Err(StoreError::FailedPrecondition(format!(
                "{id} is a {}; only notices are acknowledged",
                head.kind
            )));
        }
        if head.publisher == actor.id {
            return Err(StoreError::FailedPrecondition(format!(
                "{} sent notice {id}; only its recipients acknowledge it",
                actor.id
            )));
        }
        let key = ack_key(id, &actor.id, &req.contact_id);
        if let Some(mut first) = self.stored_ack(&key, group)? {
            first.replayed = true;
            return Ok(first);
        }
        if head.withdrawn {
            return Err(StoreError::FailedPrecondition(format!(
                "notice {id} is withdrawn"
            )));
        }
        let (contact_ids, campaign) = self.answered_contacts(actor, &req, group)?;
        // Acknowledging "all my contacts" and then one of them by name (or the other way round)
        // is the same answer again: nothing new is recorded.
        if let Some(mut earlier) = self.covering_ack(id, &actor.id, &contact_ids, group)? {
            earlier.replayed = true;
            return Ok(earlier);
        }
        let deadline = match &notice.content.as_ref().and_then(|c| c.body.as_ref()) {
            Some(pb::submission_content::Body::Notice(n)) => n.ack_deadline.clone(),
            _ => String::new(),
        };
        let now = clock::now_rfc3339();
        let seq = group.next_seq;
        let ack = pb::Acknowledgement {
            notice_id: id.clone(),
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
            submission: Some(notice.clone()),
            acknowledgement: Some(ack.clone()),
        };
        let framed = codec::frame(&event);
        // An acknowledgement for very many contacts at once could outgrow the budget.
        group.fits(&self.budget, &framed, || {
            "contact_id: the acknowledgement names too many contacts at once; acknowledge them one by one".into()
        })?;
        for contact in &ack.contact_ids {
            let verified = Verified {
                at: now.clone(),
                campaign: campaign.clone(),
            };
            group.writes.push((
                T::Verified,
                contact.as_bytes().to_vec(),
                codec::frame(&verified),
            ));
        }
        let encoded = framed.len() - codec::HEADER;
        group
            .writes
            .push((T::Events, seq.to_be_bytes().to_vec(), framed));
        group
            .writes
            .push((T::Acks, key.clone(), codec::frame(&ack)));
        group.acks.insert(key, ack.clone());
        group.events.push((std::sync::Arc::new(event), encoded));
        group.next_seq += 1;
        Ok(ack)
    }

    fn stored_ack(
        &self,
        key: &[u8],
        group: &Group,
    ) -> Result<Option<pb::Acknowledgement>, StoreError> {
        if let Some(a) = group.acks.get(key) {
            return Ok(Some(a.clone()));
        }
        match self.trees.acks.get(key)? {
            None => Ok(None),
            Some(v) => codec::unframe(&v, || "acknowledgement".into()).map(Some),
        }
    }

    /// An earlier acknowledgement of `notice_id` by `member` that already answers for every one
    /// of `contacts` (campaign pings only: a plain notice has one key per member).
    fn covering_ack(
        &self,
        notice_id: &str,
        member: &str,
        contacts: &[String],
        group: &Group,
    ) -> Result<Option<pb::Acknowledgement>, StoreError> {
        if contacts.is_empty() {
            return Ok(None);
        }
        let mut prefix = ack_prefix(notice_id);
        prefix.extend_from_slice(member.as_bytes());
        prefix.push(0);
        let mut earlier: Vec<pb::Acknowledgement> = group
            .acks
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, a)| a.clone())
            .collect();
        for item in self.trees.acks.scan_prefix(&prefix) {
            let (_, v) = item?;
            earlier.push(codec::unframe(&v, || "acknowledgement".into())?);
        }
        let answered = |c: &String| earlier.iter().any(|a| a.contact_ids.contains(c));
        if !contacts.iter().all(answered) {
            return Ok(None);
        }
        Ok(earlier.into_iter().min_by_key(|a| a.sequence))
    }

    /// The contacts an acknowledgement answers for: those of the member that its campaign
    /// tested through this notice (all, or the one named); none for a notice outside a
    /// campaign. With the campaign's id (empty outside a campaign).
    fn answered_contacts(
        &self,
        actor: &Member,
        req: &AckRequest,
        group: &Group,
    ) -> Result<(Vec<String>, String), StoreError> {
        let campaign = self.campaign_of_notice_in(&req.notice_id, group)?;
        let invalid =
            |reason: String| StoreError::Invalid(crate::domain::Invalid::one("contact_id", reason));
        let Some(campaign) = campaign else {
            return if req.contact_id.is_empty() {
                Ok((Vec::new(), String::new()))
            } else {
                Err(invalid(format!(
                    "notice {} is not a ping campaign; leave contact_id empty",
                    req.notice_id
                )))
            };
        };
        let mine: Vec<String> = campaign
            .results
            .iter()
            .filter(|t| t.member == actor.id && t.notice_id == req.notice_id)
            .map(|t| t.contact_id.clone())
            .collect();
        if req.contact_id.is_empty() {
            return Ok((mine, campaign.id));
        }
        if mine.contains(&req.contact_id) {
            Ok((vec![req.contact_id.clone()], campaign.id))
        } else {
            Err(invalid(format!(
                "{} is not one of your contacts tested by ping {}",
                req.contact_id, req.notice_id
            )))
        }
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
