//! An in-memory [`View`] for the rules' table tests.
use std::collections::BTreeMap;

use super::{Refusal, View};
use crate::{
    domain::{
        audience::AudienceRecord,
        kind::Kind,
        member::{Member, MemberStatus, Role, Roles},
        records::{IdempotencyRecord, StoredEvent, SubmissionHead},
    },
    pb::{self, submission_content::Body},
};

#[derive(Default)]
pub struct TestView {
    latest: BTreeMap<String, (SubmissionHead, StoredEvent)>,
    campaigns: BTreeMap<String, pb::PingCampaign>,
    /// (notice, member, contact asked for) -> acknowledgement.
    acks: BTreeMap<(String, String, String), pb::Acknowledgement>,
}

impl TestView {
    /// An active member with every role, registered long before anything was published.
    pub fn member(id: &str) -> Member {
        let mut roles = Roles::default();
        for r in Role::ALL {
            roles.insert(r);
        }
        Member {
            id: id.into(),
            state: id[..2].into(),
            display_name: id.into(),
            roles,
            communities: Vec::new(),
            status: MemberStatus::Active,
            bindings: Vec::new(),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            require_signed: false,
        }
    }

    /// A submission at `revisions` revisions, each with the same audience.
    pub fn submission(
        &mut self,
        id: &str,
        publisher: &str,
        kind: Kind,
        tlp: &str,
        recipients: &[&str],
        revisions: u32,
    ) {
        let content = pb::SubmissionContent {
            tlp: tlp.into(),
            recipients: recipients.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        };
        self.put(id, publisher, kind, content, revisions);
    }

    /// An active incident severity schema of `publisher` with `levels`.
    pub fn schema(&mut self, id: &str, publisher: &str, levels: &[&str]) {
        let content = pb::SubmissionContent {
            tlp: "TLP:CLEAR".into(),
            body: Some(Body::IncidentSeveritySchema(pb::IncidentSeveritySchema {
                levels: levels
                    .iter()
                    .map(|l| pb::SeverityLevel {
                        name: l.to_string(),
                        ..Default::default()
                    })
                    .collect(),
            })),
            ..Default::default()
        };
        self.put(id, publisher, Kind::IncidentSeveritySchema, content, 1);
    }

    fn put(
        &mut self,
        id: &str,
        publisher: &str,
        kind: Kind,
        content: pb::SubmissionContent,
        n: u32,
    ) {
        let submission = pb::Submission {
            id: id.into(),
            revision: n,
            publisher: publisher.into(),
            kind: kind.as_str().into(),
            status: "active".into(),
            updated_at: "2026-06-01T00:00:00Z".into(),
            content: Some(content),
            ..Default::default()
        };
        let head = SubmissionHead {
            created_seq: 1,
            publisher: publisher.into(),
            kind: kind.as_str().into(),
            revision_seqs: (1..=u64::from(n)).collect(),
            audiences: vec![AudienceRecord::of(&submission); n as usize],
            latest_at: submission.updated_at.clone(),
            ..Default::default()
        };
        let event = StoredEvent {
            sequence: u64::from(n),
            submission: Some(submission),
            ..Default::default()
        };
        self.latest.insert(id.into(), (head, event));
    }

    pub fn withdraw(&mut self, id: &str) {
        let (head, _) = self.latest.get_mut(id).expect("known submission");
        head.withdrawn = true;
        let last = head.audiences.last().cloned().unwrap_or_default();
        head.audiences.push(last);
        head.revision_seqs.push(head.revision_seqs.len() as u64 + 1);
    }

    /// Makes `notice` the ping of a campaign testing nobody.
    pub fn campaign_ping(&mut self, notice: &str) {
        self.campaign_ping_testing(notice, "", &[]);
    }

    /// Makes `notice` the ping of a campaign testing `member`'s `contacts`.
    pub fn campaign_ping_testing(&mut self, notice: &str, member: &str, contacts: &[&str]) {
        let campaign = pb::PingCampaign {
            id: format!("campaign-of-{notice}"),
            results: contacts
                .iter()
                .map(|c| pb::ContactResult {
                    member: member.into(),
                    contact_id: c.to_string(),
                    notice_id: notice.into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        self.campaigns.insert(notice.into(), campaign);
    }

    pub fn acked(&mut self, notice: &str, member: &str, asked: &str, contacts: &[&str], seq: u64) {
        let ack = pb::Acknowledgement {
            notice_id: notice.into(),
            member: member.into(),
            contact_ids: contacts.iter().map(|c| c.to_string()).collect(),
            sequence: seq,
            ..Default::default()
        };
        self.acks
            .insert((notice.into(), member.into(), asked.into()), ack);
    }
}

impl View for TestView {
    type Error = Refusal;

    fn latest(&self, id: &str) -> Result<Option<(SubmissionHead, StoredEvent)>, Refusal> {
        Ok(self.latest.get(id).cloned())
    }

    fn idempotency(&self, _: &str, _: &str) -> Result<Option<IdempotencyRecord>, Refusal> {
        Ok(None)
    }

    fn ack(
        &self,
        notice: &str,
        member: &str,
        contact: &str,
    ) -> Result<Option<pb::Acknowledgement>, Refusal> {
        let key = (notice.to_string(), member.to_string(), contact.to_string());
        Ok(self.acks.get(&key).cloned())
    }

    fn acks_by(&self, notice: &str, member: &str) -> Result<Vec<pb::Acknowledgement>, Refusal> {
        Ok(self
            .acks
            .iter()
            .filter(|((n, m, _), _)| n == notice && m == member)
            .map(|(_, a)| a.clone())
            .collect())
    }

    fn campaign_of_notice(&self, notice: &str) -> Result<Option<pb::PingCampaign>, Refusal> {
        Ok(self.campaigns.get(notice).cloned())
    }

    fn ids_of_kind(&self, kind: Kind, publisher: &str) -> Result<Vec<String>, Refusal> {
        Ok(self
            .latest
            .iter()
            .filter(|(_, (h, _))| h.publisher == publisher && h.kind == kind.as_str())
            .map(|(id, _)| id.clone())
            .collect())
    }
}
