//! Who may acknowledge a notice, for which contacts, and when an acknowledgement is the same
//! answer again (domain.md, acknowledgements and ping tests: "Recipients acknowledge it").
use super::{Refusal, View};
use crate::{
    domain::{audience::sees, kind::Kind, member::Member},
    pb,
};

/// What acknowledging a notice comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum AckDecision {
    /// The same answer was given before: the first acknowledgement, marked replayed.
    Repeat(pb::Acknowledgement),
    /// A new acknowledgement of the notice's latest revision.
    New {
        /// Boxed: a whole revision, next to the small repeat.
        notice: Box<pb::Submission>,
        /// The campaign's contacts it answers for (none outside a campaign).
        contact_ids: Vec<String>,
        /// The campaign's id, empty outside a campaign.
        campaign: String,
        /// The notice's acknowledgement deadline, empty if none.
        deadline: String,
    },
}

/// Decides `actor`'s acknowledgement of notice `notice_id` for `contact_id` (empty: all the
/// actor's contacts tested by it, or a plain notice): only a recipient who may see the notice
/// now acknowledges it, not its sender; a withdrawn notice takes no new acknowledgement.
pub fn may_acknowledge<V: View>(
    view: &V,
    actor: &Member,
    notice_id: &str,
    contact_id: &str,
) -> Result<AckDecision, V::Error> {
    let id = notice_id;
    // Absent and invisible get the same answer, so existence does not leak.
    let not_found = || Refusal::not_found(format!("no notice {id} visible to {}", actor.id));
    let (head, latest) = view.latest(id)?.ok_or_else(not_found)?;
    let notice = latest.submission.ok_or_else(not_found)?;
    if !sees(actor, &head.standing()) {
        return Err(not_found().into());
    }
    if head.kind != Kind::Notice.as_str() {
        return Err(Refusal::precondition(
            "not_a_notice",
            "",
            format!("{id} is a {}; only notices are acknowledged", head.kind),
        )
        .into());
    }
    if head.publisher == actor.id {
        return Err(Refusal::precondition(
            "own_notice",
            "",
            format!(
                "{} sent notice {id}; only its recipients acknowledge it",
                actor.id
            ),
        )
        .into());
    }
    if let Some(mut first) = view.ack(id, &actor.id, contact_id)? {
        first.replayed = true;
        return Ok(AckDecision::Repeat(first));
    }
    if head.withdrawn {
        return Err(
            Refusal::precondition("withdrawn", "", format!("notice {id} is withdrawn")).into(),
        );
    }
    let (contact_ids, campaign) = answered_contacts(view, actor, id, contact_id)?;
    // Acknowledging "all my contacts" and then one of them by name (or the other way round)
    // is the same answer again: nothing new is recorded.
    if !contact_ids.is_empty() {
        let earlier = view.acks_by(id, &actor.id)?;
        let answered = |c: &String| earlier.iter().any(|a| a.contact_ids.contains(c));
        if contact_ids.iter().all(answered)
            && let Some(mut first) = earlier.into_iter().min_by_key(|a| a.sequence)
        {
            first.replayed = true;
            return Ok(AckDecision::Repeat(first));
        }
    }
    let deadline = match notice.content.as_ref().and_then(|c| c.body.as_ref()) {
        Some(pb::submission_content::Body::Notice(n)) => n.ack_deadline.clone(),
        _ => String::new(),
    };
    Ok(AckDecision::New {
        notice: Box::new(notice),
        contact_ids,
        campaign,
        deadline,
    })
}

/// The contacts an acknowledgement answers for: those of the actor that its campaign tested
/// through this notice (all, or the one named); none for a notice outside a campaign. With the
/// campaign's id (empty outside a campaign).
fn answered_contacts<V: View>(
    view: &V,
    actor: &Member,
    notice_id: &str,
    contact_id: &str,
) -> Result<(Vec<String>, String), V::Error> {
    let Some(campaign) = view.campaign_of_notice(notice_id)? else {
        return if contact_id.is_empty() {
            Ok((Vec::new(), String::new()))
        } else {
            Err(Refusal::invalid(
                "contact_id",
                format!("notice {notice_id} is not a ping campaign; leave contact_id empty"),
            )
            .into())
        };
    };
    let mine: Vec<String> = campaign
        .results
        .iter()
        .filter(|t| t.member == actor.id && t.notice_id == notice_id)
        .map(|t| t.contact_id.clone())
        .collect();
    if contact_id.is_empty() {
        return Ok((mine, campaign.id));
    }
    if mine.iter().any(|c| c == contact_id) {
        Ok((vec![contact_id.to_string()], campaign.id))
    } else {
        Err(Refusal::invalid(
            "contact_id",
            format!("{contact_id} is not one of your contacts tested by ping {notice_id}"),
        )
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rules::{RefusalCode, testview::TestView};

    fn view() -> TestView {
        let mut v = TestView::default();
        v.submission("n", "EE-MFA", Kind::Notice, "TLP:AMBER", &["CL-CSIRT"], 1);
        v.submission(
            "policy",
            "EE-MFA",
            Kind::PolicyDocument,
            "TLP:CLEAR",
            &[],
            1,
        );
        v.submission("gone", "EE-MFA", Kind::Notice, "TLP:CLEAR", &[], 1);
        v.withdraw("gone");
        // A ping testing two of CL-CSIRT's contacts.
        v.submission("ping", "ADMIN", Kind::Notice, "TLP:AMBER", &["CL-CSIRT"], 1);
        v.campaign_ping_testing("ping", "CL-CSIRT", &["poc-1", "poc-2"]);
        v
    }

    #[test]
    fn who_may_acknowledge_what() {
        let v = view();
        // (actor, notice, contact, expected: Ok(contacts answered) or refusal code)
        type Row<'a> = (
            &'a str,
            &'a str,
            &'a str,
            Result<&'a [&'a str], RefusalCode>,
        );
        let table: &[Row] = &[
            ("CL-CSIRT", "n", "", Ok(&[])),
            // The sender does not acknowledge its own notice.
            ("EE-MFA", "n", "", Err(RefusalCode::FailedPrecondition)),
            // Not a recipient, or no such notice: the same answer.
            ("EE-CERT", "n", "", Err(RefusalCode::NotFound)),
            ("CL-CSIRT", "absent", "", Err(RefusalCode::NotFound)),
            (
                "CL-CSIRT",
                "policy",
                "",
                Err(RefusalCode::FailedPrecondition),
            ),
            ("CL-CSIRT", "gone", "", Err(RefusalCode::FailedPrecondition)),
            // A contact only for a campaign's ping, and only one it tested of the actor's.
            ("CL-CSIRT", "n", "poc-1", Err(RefusalCode::InvalidArgument)),
            ("CL-CSIRT", "ping", "", Ok(&["poc-1", "poc-2"])),
            ("CL-CSIRT", "ping", "poc-2", Ok(&["poc-2"])),
            (
                "CL-CSIRT",
                "ping",
                "poc-9",
                Err(RefusalCode::InvalidArgument),
            ),
        ];
        for (actor, notice, contact, want) in table {
            let got = may_acknowledge(&v, &TestView::member(actor), notice, contact);
            match (&got, want) {
                (Ok(AckDecision::New { contact_ids, .. }), Ok(c)) => assert_eq!(contact_ids, c),
                (Err(r), Err(code)) => assert_eq!(r.code, *code, "{actor} {notice}: {r}"),
                _ => panic!("{actor} {notice} {contact}: {got:?}"),
            }
        }
    }

    #[test]
    fn the_same_answer_again_is_the_first_one() {
        let mut v = view();
        // CL-CSIRT answered for all its contacts at sequence 9.
        v.acked("ping", "CL-CSIRT", "", &["poc-1", "poc-2"], 9);
        let cl = TestView::member("CL-CSIRT");
        for contact in ["", "poc-1", "poc-2"] {
            match may_acknowledge(&v, &cl, "ping", contact).unwrap() {
                AckDecision::Repeat(a) => assert!(a.replayed && a.sequence == 9),
                other => panic!("{contact}: {other:?}"),
            }
        }
        // A repeat is answered even once the notice is withdrawn.
        v.acked("gone", "CL-CSIRT", "", &[], 4);
        assert!(matches!(
            may_acknowledge(&v, &cl, "gone", "").unwrap(),
            AckDecision::Repeat(_)
        ));
    }
}
