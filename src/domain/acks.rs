//! The acknowledgement report of a notice: who was expected to acknowledge, who did, when, and
//! against the deadline.
use time::OffsetDateTime;

use super::{
    audience::{Standing, sees},
    clock,
    member::Registry,
};
use crate::pb;

/// What the hub says of one recipient or contact, given its answer (if any) and the deadline.
pub fn status(answered_on_time: Option<bool>, deadline: &str, now: OffsetDateTime) -> &'static str {
    match answered_on_time {
        Some(true) => "acknowledged",
        Some(false) => "late",
        None if deadline_passed(deadline, now) => "missed",
        None => "pending",
    }
}

pub fn deadline_passed(deadline: &str, now: OffsetDateTime) -> bool {
    clock::parse_instant(deadline).is_ok_and(|d| now > d)
}

/// The report on `notice` (its latest revision, whose standing is `standing`): one line per
/// expected recipient, that is every active member other than the sender that the audience
/// decision lets see it now, plus anyone else who acknowledged while it could.
pub fn report(
    notice: &pb::Submission,
    standing: &Standing<'_>,
    registry: &Registry,
    acks: &[pb::Acknowledgement],
    now: OffsetDateTime,
) -> pb::AcknowledgementReport {
    let deadline = match notice.content.as_ref().and_then(|c| c.body.as_ref()) {
        Some(pb::submission_content::Body::Notice(n)) => n.ack_deadline.clone(),
        _ => String::new(),
    };
    // Who the notice is for is the one audience decision, asked member by member.
    let expected = registry
        .members()
        .iter()
        .filter(|m| m.id != notice.publisher && sees(m, standing))
        .map(|m| line(&m.id, &m.state))
        .collect();
    tally(&notice.id, notice.revision, deadline, expected, acks, now)
}

/// An expected recipient, before any answer.
pub fn line(member: &str, state: &str) -> pb::RecipientStatus {
    pb::RecipientStatus {
        member: member.into(),
        state: state.into(),
        ..Default::default()
    }
}

/// The report on `expected` recipients given `acks` (a member's earliest answer counts; an
/// acknowledgement by a member not expected adds its line). Callers pass only what the reader
/// may learn of.
pub fn tally(
    notice_id: &str,
    revision: u32,
    deadline: String,
    mut recipients: Vec<pb::RecipientStatus>,
    acks: &[pb::Acknowledgement],
    now: OffsetDateTime,
) -> pb::AcknowledgementReport {
    for ack in acks {
        let line = match recipients.iter_mut().find(|r| r.member == ack.member) {
            Some(line) => line,
            None => {
                recipients.push(line(&ack.member, &ack.state));
                recipients.last_mut().expect("just pushed")
            }
        };
        // A member acknowledging several contacts of a campaign: its first answer counts.
        if !line.acknowledged || ack.acknowledged_at < line.acknowledged_at {
            line.acknowledged = true;
            line.acknowledged_at = ack.acknowledged_at.clone();
            line.on_time = ack.on_time;
            line.reply = ack.reply.clone();
        }
    }
    for r in &mut recipients {
        r.status = status(r.acknowledged.then_some(r.on_time), &deadline, now).into();
    }
    recipients.sort_by(|a, b| a.member.cmp(&b.member));
    let count = |f: &dyn Fn(&pb::RecipientStatus) -> bool| {
        recipients.iter().filter(|r| f(r)).count() as u32
    };
    pb::AcknowledgementReport {
        notice_id: notice_id.to_string(),
        notice_revision: revision,
        deadline_passed: deadline_passed(&deadline, now),
        deadline,
        expected: recipients.len() as u32,
        acknowledged: count(&|r| r.acknowledged),
        on_time: count(&|r| r.acknowledged && r.on_time),
        recipients,
    }
}
