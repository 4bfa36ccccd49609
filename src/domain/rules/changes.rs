//! Who may revise or withdraw a submission, and when (domain.md: "Each body decides what it
//! shares ... and can revise or withdraw it"; "A revision may change the label or recipients
//! only by the publisher").
use super::{Refusal, View};
use crate::domain::{
    audience::sees,
    kind::Kind,
    member::Member,
    records::{StoredEvent, SubmissionHead},
};

/// The submission `id` as it stands, if `actor` may change it now: it exists and is visible to
/// the actor (absent and invisible are answered alike, so existence does not leak), the actor
/// published it, it is not withdrawn, it is not a campaign's ping (its deadline and recipients
/// are the campaign's), and it is at `expected_revision` (0: any).
pub fn may_change<V: View>(
    view: &V,
    actor: &Member,
    id: &str,
    expected_revision: u32,
) -> Result<(SubmissionHead, StoredEvent), V::Error> {
    let not_found = || Refusal::not_found(format!("no submission {id}"));
    let (head, latest) = view.latest(id)?.ok_or_else(not_found)?;
    if head.publisher != actor.id {
        return Err(if sees(actor, &head.standing()) {
            Refusal::denied(
                "not_publisher",
                format!(
                    "only its publisher {} may change submission {id}",
                    head.publisher
                ),
            )
        } else {
            not_found()
        }
        .into());
    }
    if head.withdrawn {
        return Err(Refusal::precondition(
            "withdrawn",
            "",
            format!("submission {id} is withdrawn and cannot change"),
        )
        .into());
    }
    if view.campaign_of_notice(id)?.is_some() {
        return Err(Refusal::precondition(
            "campaign_ping",
            "",
            format!("submission {id} is the ping of a campaign and cannot change"),
        )
        .into());
    }
    if expected_revision != 0 && expected_revision != head.latest_revision() {
        return Err(Refusal::precondition(
            "revision_conflict",
            "expected_revision",
            format!(
                "submission {id} is at revision {}, not {expected_revision}",
                head.latest_revision()
            ),
        )
        .into());
    }
    Ok((head, latest))
}

/// A revision keeps the submission's kind.
pub fn same_kind(head: &SubmissionHead, kind: Kind) -> Result<(), Refusal> {
    if head.kind == kind.as_str() {
        return Ok(());
    }
    Err(Refusal::invalid(
        "content.body",
        format!(
            "a revision keeps the kind; this submission is a {}",
            head.kind
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rules::{RefusalCode, testview::TestView};

    #[test]
    fn who_may_change_a_submission() {
        let mut v = TestView::default();
        // EE-MFA's AMBER to CL-CSIRT at revision 2; a withdrawn one; a campaign's ping.
        v.submission(
            "amber",
            "EE-MFA",
            Kind::Notice,
            "TLP:AMBER",
            &["CL-CSIRT"],
            2,
        );
        v.submission("gone", "EE-MFA", Kind::Notice, "TLP:CLEAR", &[], 1);
        v.withdraw("gone");
        v.submission(
            "ping",
            "EE-MFA",
            Kind::Notice,
            "TLP:AMBER",
            &["CL-CSIRT"],
            1,
        );
        v.campaign_ping("ping");
        // (actor, id, expected revision, expected outcome)
        let table: &[(&str, &str, u32, Result<u32, RefusalCode>)] = &[
            ("EE-MFA", "amber", 0, Ok(2)),
            ("EE-MFA", "amber", 2, Ok(2)),
            ("EE-MFA", "amber", 1, Err(RefusalCode::FailedPrecondition)),
            // A recipient sees it but is not its publisher.
            ("CL-CSIRT", "amber", 0, Err(RefusalCode::PermissionDenied)),
            // Someone outside the audience is told nothing more than for an absent id.
            ("EE-CERT", "amber", 0, Err(RefusalCode::NotFound)),
            ("EE-MFA", "absent", 0, Err(RefusalCode::NotFound)),
            ("EE-MFA", "gone", 0, Err(RefusalCode::FailedPrecondition)),
            ("EE-MFA", "ping", 0, Err(RefusalCode::FailedPrecondition)),
        ];
        for (actor, id, expected, want) in table {
            let got = may_change(&v, &TestView::member(actor), id, *expected);
            match (&got, want) {
                (Ok((head, _)), Ok(rev)) => assert_eq!(head.latest_revision(), *rev),
                (Err(r), Err(code)) => assert_eq!(r.code, *code, "{actor} {id}: {r}"),
                _ => panic!("{actor} {id} {expected}: {got:?}"),
            }
        }
        let e = may_change(&v, &TestView::member("EE-MFA"), "amber", 1).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.cause),
            ("expected_revision", "revision_conflict")
        );
        let e = may_change(&v, &TestView::member("CL-CSIRT"), "amber", 0).unwrap_err();
        assert_eq!(e.cause, "not_publisher");
    }

    #[test]
    fn a_revision_keeps_the_kind() {
        let mut v = TestView::default();
        v.submission("n", "EE-MFA", Kind::Notice, "TLP:CLEAR", &[], 1);
        let head = v.latest("n").unwrap().unwrap().0;
        assert!(same_kind(&head, Kind::Notice).is_ok());
        let e = same_kind(&head, Kind::PolicyDocument).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_str()),
            (RefusalCode::InvalidArgument, "content.body")
        );
    }
}
