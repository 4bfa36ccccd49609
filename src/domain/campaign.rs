//! Ping campaigns: which contacts a campaign tests, and its report.
use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::acks::status;
use crate::pb;

/// The report of a campaign as stored (targets in `results`), given the acknowledgements of its
/// ping notice. `detail` keeps the per-state and per-contact lines.
pub fn report(
    mut campaign: pb::PingCampaign,
    acks: &[pb::Acknowledgement],
    detail: bool,
) -> pb::PingCampaign {
    report_at(&mut campaign, acks, OffsetDateTime::now_utc());
    if !detail {
        campaign.results.clear();
        campaign.states.clear();
    }
    campaign
}

fn report_at(c: &mut pb::PingCampaign, acks: &[pb::Acknowledgement], now: OffsetDateTime) {
    let mut states: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for target in &mut c.results {
        // The earliest acknowledgement by the contact's member that answers for this contact.
        let answer = acks
            .iter()
            .filter(|a| a.member == target.member && a.contact_ids.contains(&target.contact_id))
            .min_by(|a, b| a.acknowledged_at.cmp(&b.acknowledged_at));
        target.answered = answer.is_some();
        target.answered_at = answer
            .map(|a| a.acknowledged_at.clone())
            .unwrap_or_default();
        target.on_time = answer.is_some_and(|a| a.on_time);
        target.reply = answer.map(|a| a.reply.clone()).unwrap_or_default();
        target.status = match status(answer.map(|a| a.on_time), &c.deadline, now) {
            "acknowledged" => "answered",
            other => other,
        }
        .into();
        let line = states.entry(target.state.clone()).or_default();
        line.0 += 1;
        line.1 += u32::from(target.answered);
    }
    c.contacts = c.results.len() as u32;
    c.answered = c.results.iter().filter(|t| t.answered).count() as u32;
    c.answered_on_time = c.results.iter().filter(|t| t.on_time).count() as u32;
    c.response_rate = rate(c.answered, c.contacts);
    c.states = states
        .into_iter()
        .map(|(state, (contacts, answered))| pb::StateResult {
            state,
            contacts,
            answered,
            response_rate: rate(answered, contacts),
        })
        .collect();
}

fn rate(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) / f64::from(whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(member: &str, state: &str, contact: &str) -> pb::ContactResult {
        pb::ContactResult {
            member: member.into(),
            state: state.into(),
            contact_id: contact.into(),
            ..Default::default()
        }
    }

    fn ack(member: &str, contacts: &[&str], at: &str, on_time: bool) -> pb::Acknowledgement {
        pb::Acknowledgement {
            member: member.into(),
            contact_ids: contacts.iter().map(|c| c.to_string()).collect(),
            acknowledged_at: at.into(),
            on_time,
            ..Default::default()
        }
    }

    #[test]
    fn counts_each_contact_by_its_own_answer() {
        let mut c = pb::PingCampaign {
            deadline: "2026-01-02T00:00:00.000Z".into(),
            results: vec![
                target("EE-MFA", "EE", "a"),
                target("EE-MFA", "EE", "b"),
                target("CL-CSIRT", "CL", "c"),
                target("FR-ANSSI", "FR", "d"),
            ],
            ..Default::default()
        };
        let acks = [
            ack("EE-MFA", &["a"], "2026-01-01T10:00:00.000Z", true),
            ack("EE-MFA", &["b"], "2026-01-03T10:00:00.000Z", false),
            // Answers for a contact of another member: counts for nothing.
            ack("CL-CSIRT", &["d"], "2026-01-01T11:00:00.000Z", true),
        ];
        let before = clock_at("2026-01-01T12:00:00Z");
        report_at(&mut c, &acks, before);
        let statuses: Vec<_> = c.results.iter().map(|t| t.status.as_str()).collect();
        assert_eq!(statuses, ["answered", "late", "pending", "pending"]);
        assert_eq!((c.contacts, c.answered, c.answered_on_time), (4, 2, 1));
        assert_eq!(c.response_rate, 0.5);
        let ee = c.states.iter().find(|s| s.state == "EE").unwrap();
        assert_eq!((ee.contacts, ee.answered, ee.response_rate), (2, 2, 1.0));

        report_at(&mut c, &acks, clock_at("2026-01-05T00:00:00Z"));
        assert_eq!(c.results[2].status, "missed");
    }

    fn clock_at(s: &str) -> OffsetDateTime {
        crate::domain::clock::parse_instant(s).unwrap()
    }
}
