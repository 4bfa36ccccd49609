//! Reports on ping campaigns. A campaign stores no contact content, and every line of a report
//! passes the one audience decision ([`visibility::view`]) for its reader against the contact's
//! latest revision: a reader learns nothing of a tested contact it may not read now (not its
//! line, not its answer, not its count), whoever started the campaign and whatever it could
//! read then.
use std::collections::{BTreeMap, HashSet};

use tonic::Status;

use super::contacts;
use crate::{
    domain::{acks, campaign, member::Member, visibility},
    pb::{self, submission_content::Body},
    store::Store,
};

/// The tested contacts `reader` may read now, each with what it may read of it.
fn visible(
    store: &Store,
    c: &pb::PingCampaign,
    reader: &Member,
) -> Result<Vec<(pb::ContactResult, pb::Submission)>, Status> {
    let mut shown = Vec::new();
    for line in &c.results {
        let Some((head, latest)) = store.latest_seen_by(reader, &line.contact_id)? else {
            continue;
        };
        if let Some(view) = latest
            .submission
            .and_then(|s| visibility::view(reader, &head.standing(), &s, &s))
        {
            shown.push((line.clone(), view));
        }
    }
    Ok(shown)
}

/// The report of a stored campaign for `reader`: the lines of the tested contacts it may read
/// now, with their level, organisation and function from the contact's latest revision (none
/// once withdrawn), and the figures over those lines.
pub fn report(
    store: &Store,
    mut stored: pb::PingCampaign,
    detail: bool,
    reader: &Member,
) -> Result<pb::PingCampaign, Status> {
    let acks = store.campaign_acks(&stored)?;
    stored.results = visible(store, &stored, reader)?
        .into_iter()
        .map(|(mut line, view)| {
            line.level = contacts::level_of(&view).to_string();
            if let Some(Body::PointOfContact(p)) = view.content.and_then(|c| c.body) {
                line.organisation = p.organisation;
                line.function = p.function;
            }
            line
        })
        .collect();
    Ok(campaign::report(stored, &acks, detail))
}

/// The contacts whose content a report shows: the reads the access log records.
pub fn contacts_shown(report: &pb::PingCampaign) -> Vec<String> {
    report
        .results
        .iter()
        .filter(|l| !l.level.is_empty())
        .map(|l| l.contact_id.clone())
        .collect()
}

/// The acknowledgement report of campaign `c` (`notice`: of that one ping notice of it) for
/// `reader`, reported as `id`: one line per member whose tested contacts `reader` may read now,
/// counting only answers for those contacts.
pub fn acknowledgements(
    store: &Store,
    id: &str,
    c: &pb::PingCampaign,
    notice: Option<&str>,
    reader: &Member,
) -> Result<pb::AcknowledgementReport, Status> {
    let lines: Vec<pb::ContactResult> = visible(store, c, reader)?
        .into_iter()
        .map(|(line, _)| line)
        .filter(|l| notice.is_none_or(|n| l.notice_id == n))
        .collect();
    let contacts: HashSet<&str> = lines.iter().map(|l| l.contact_id.as_str()).collect();
    let members: BTreeMap<&str, &str> = lines
        .iter()
        .map(|l| (l.member.as_str(), l.state.as_str()))
        .collect();
    let answers: Vec<pb::Acknowledgement> = store
        .campaign_acks(c)?
        .into_iter()
        .filter(|a| {
            notice.is_none_or(|n| a.notice_id == n)
                && members.contains_key(a.member.as_str())
                && a.contact_ids.iter().any(|c| contacts.contains(c.as_str()))
        })
        .collect();
    let expected = members
        .iter()
        .map(|(member, state)| acks::line(member, state))
        .collect();
    Ok(acks::tally(
        id,
        1,
        c.deadline.clone(),
        expected,
        &answers,
        time::OffsetDateTime::now_utc(),
    ))
}
