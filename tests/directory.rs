//! The points-of-contact directory and acknowledgements over real mTLS (ping campaigns:
//! `tests/campaigns.rs`).
mod common;

use std::time::Duration;

use cbm_hub::pb::{self, submission_content::Body};
use common::{TestHub, feed, samples};
use common::{
    publish,
    samples::{in_seconds, poc},
};
use tonic::Code;

fn notice(tlp: &str, recipients: &[&str], deadline: &str) -> pb::SubmissionContent {
    let mut c = samples::envelope(
        "Notice",
        tlp,
        Body::Notice(pb::Notice {
            category: "information".into(),
            subject: "Please confirm receipt".into(),
            text: "A notice to acknowledge.".into(),
            ack_deadline: deadline.into(),
            ..Default::default()
        }),
    );
    c.recipients = recipients.iter().map(|r| r.to_string()).collect();
    c
}

fn ack(notice_id: &str, reply: &str, contact: &str) -> pb::AcknowledgeRequest {
    pb::AcknowledgeRequest {
        notice_id: notice_id.into(),
        reply: reply.into(),
        contact_id: contact.into(),
    }
}

async fn contacts(t: &TestHub, member: &str, r: pb::ListContactsRequest) -> Vec<(String, String)> {
    t.directory(member)
        .await
        .list_contacts(r)
        .await
        .unwrap()
        .into_inner()
        .contacts
        .into_iter()
        .map(|e| (e.submission.unwrap().id, e.verified_by))
        .collect()
}

#[tokio::test]
async fn directory_shows_the_contacts_each_member_may_see_with_filters() {
    let t = TestHub::start().await;
    let ee_tech = publish(&t, "EE-CERT", poc("technical", "CERT-EE", "TLP:GREEN", &[])).await;
    let ee_pol = publish(&t, "EE-MFA", poc("policy", "MFA", "TLP:CLEAR", &[])).await;
    // Addressed to EE-MFA only: CL-CSIRT must not see it.
    let cl_amber = publish(
        &t,
        "CL-MINREL",
        poc("legal", "MINREL", "TLP:AMBER", &["EE-MFA"]),
    )
    .await;
    let cl_gone = publish(&t, "CL-MINREL", poc("policy", "MINREL", "TLP:CLEAR", &[])).await;
    t.hub("CL-MINREL")
        .await
        .withdraw(pb::WithdrawRequest {
            id: cl_gone.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    // Not a point of contact: never listed.
    publish(&t, "EE-MFA", samples::every_kind().remove(0).1).await;

    let all = pb::ListContactsRequest::default();
    let ids = |v: Vec<(String, String)>| v.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    // Ordered by state, then level.
    assert_eq!(
        ids(contacts(&t, "CL-CSIRT", all.clone()).await),
        [ee_pol.id.clone(), ee_tech.id.clone()]
    );
    assert_eq!(
        ids(contacts(&t, "EE-MFA", all.clone()).await),
        [cl_amber.id.clone(), ee_pol.id.clone(), ee_tech.id.clone()]
    );
    // Pages of two: the same entries in the same order, then no token.
    let mut dir = t.directory("EE-MFA").await;
    let page = |token: String| pb::ListContactsRequest {
        page_size: 2,
        page_token: token,
        ..Default::default()
    };
    let first = dir
        .list_contacts(page(String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.contacts.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = dir
        .list_contacts(page(first.next_page_token.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(second.next_page_token.is_empty());
    let paged: Vec<_> = first
        .contacts
        .iter()
        .chain(&second.contacts)
        .map(|e| e.submission.as_ref().unwrap().id.clone())
        .collect();
    assert_eq!(
        paged,
        [cl_amber.id.clone(), ee_pol.id.clone(), ee_tech.id.clone()]
    );
    let err = dir
        .list_contacts(pb::ListContactsRequest {
            page_size: 501,
            page_token: "not a token".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("page_size") && err.message().contains("page_token"),
        "{}",
        err.message()
    );
    let only = |states: &[&str], levels: &[&str], communities: &[&str]| pb::ListContactsRequest {
        states: states.iter().map(|s| s.to_string()).collect(),
        levels: levels.iter().map(|s| s.to_string()).collect(),
        communities: communities.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    assert_eq!(
        ids(contacts(&t, "EE-MFA", only(&["CL"], &[], &[])).await),
        std::slice::from_ref(&cl_amber.id)
    );
    assert_eq!(
        ids(contacts(&t, "EE-MFA", only(&[], &["technical"], &[])).await),
        std::slice::from_ref(&ee_tech.id)
    );
    assert_eq!(
        ids(contacts(&t, "EE-MFA", only(&[], &[], &["OAS"])).await),
        std::slice::from_ref(&cl_amber.id)
    );

    // Revising counts as verifying.
    let mut revised = poc("technical", "CERT-EE (renamed)", "TLP:GREEN", &[]);
    revised.summary = "Updated.".into();
    t.hub("EE-CERT")
        .await
        .revise(pb::ReviseRequest {
            id: ee_tech.id.clone(),
            content: Some(revised),
            ..Default::default()
        })
        .await
        .unwrap();
    let listed = contacts(&t, "CL-CSIRT", all).await;
    assert_eq!(
        listed,
        [
            (ee_pol.id.clone(), "published".into()),
            (ee_tech.id.clone(), "revised".into())
        ]
    );

    let err = t
        .directory("EE-MFA")
        .await
        .list_contacts(only(&[], &["diplomatic"], &[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("levels[0]"), "{}", err.message());

    // A suspended body's contacts are no longer current.
    t.admin("ADMIN")
        .await
        .suspend_member(pb::SetMemberStatusRequest {
            id: "EE-CERT".into(),
            reason: "directory test".into(),
        })
        .await
        .unwrap();
    let listed = contacts(&t, "CL-CSIRT", pb::ListContactsRequest::default()).await;
    assert_eq!(listed, [(ee_pol.id.clone(), "published".into())]);
}

#[tokio::test]
async fn recipients_acknowledge_once_and_the_sender_gets_the_report_and_the_feed_event() {
    let t = TestHub::start().await;
    let sent = publish(
        &t,
        "EE-MFA",
        notice("TLP:AMBER", &["CL-MINREL", "CL-CSIRT"], &in_seconds(3600)),
    )
    .await;
    let mut cl = t.directory("CL-MINREL").await;
    let first = cl
        .acknowledge(ack(&sent.id, "Received, thank you.", ""))
        .await
        .unwrap()
        .into_inner();
    assert!(first.on_time && !first.replayed);
    assert_eq!(
        (first.member.as_str(), first.notice_revision),
        ("CL-MINREL", 1)
    );
    assert_eq!(
        first.sequence,
        sent.sequence + 1,
        "an acknowledgement is a feed event"
    );
    // Twice: the first answer, nothing new.
    let again = cl
        .acknowledge(ack(&sent.id, "again", ""))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    assert_eq!(
        (
            again.sequence,
            again.acknowledged_at.clone(),
            again.reply.clone()
        ),
        (
            first.sequence,
            first.acknowledged_at.clone(),
            first.reply.clone()
        )
    );

    // Not a recipient: the notice does not exist for it. The sender cannot acknowledge.
    let err = t
        .directory("EE-CERT")
        .await
        .acknowledge(ack(&sent.id, "", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    let err = t
        .directory("EE-MFA")
        .await
        .acknowledge(ack(&sent.id, "", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    let err = cl.acknowledge(ack("not-an-id", "", "")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("notice_id"), "{}", err.message());

    let report = t
        .directory("EE-MFA")
        .await
        .acknowledgement_report(pb::AcknowledgementReportRequest {
            notice_id: sent.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (report.expected, report.acknowledged, report.on_time),
        (2, 1, 1)
    );
    let lines: Vec<_> = report
        .recipients
        .iter()
        .map(|r| (r.member.as_str(), r.status.as_str(), r.reply.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            ("CL-CSIRT", "pending", ""),
            ("CL-MINREL", "acknowledged", "Received, thank you.")
        ]
    );
    // Only the sender reads the report.
    let err = cl
        .acknowledgement_report(pb::AcknowledgementReportRequest {
            notice_id: sent.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // On the feed: the sender and the acknowledging member see it, the other recipient does not.
    let head = first.sequence;
    for (member, sees) in [("EE-MFA", true), ("CL-MINREL", true), ("CL-CSIRT", false)] {
        let mut s = feed::subscribe(&t, member, feed::request(sent.sequence)).await;
        let seen = feed::read_until(&mut s, head, Duration::from_secs(10)).await;
        let acks: Vec<_> = seen.iter().filter(|e| e.action == "acknowledged").collect();
        assert_eq!(acks.len(), usize::from(sees), "{member}: {seen:?}");
        if sees {
            assert_eq!(
                (acks[0].sequence, acks[0].id.as_str(), acks[0].has_content),
                (head, sent.id.as_str(), false)
            );
            assert_eq!(
                acks[0].acknowledged_by,
                Some(("CL-MINREL".into(), "Received, thank you.".into()))
            );
        }
    }
}

#[tokio::test]
async fn an_acknowledgement_after_the_deadline_is_late_and_silence_is_missed() {
    let t = TestHub::start().await;
    let sent_content = notice("TLP:AMBER", &["CL-MINREL", "CL-CSIRT"], &in_seconds(2));
    let sent = publish(&t, "EE-MFA", sent_content.clone()).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let late = t
        .directory("CL-MINREL")
        .await
        .acknowledge(ack(&sent.id, "", ""))
        .await
        .unwrap()
        .into_inner();
    assert!(!late.on_time);
    let report = t
        .directory("EE-MFA")
        .await
        .acknowledgement_report(pb::AcknowledgementReportRequest {
            notice_id: sent.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(report.deadline_passed);
    let statuses: Vec<_> = report
        .recipients
        .iter()
        .map(|r| r.status.as_str())
        .collect();
    assert_eq!(statuses, ["missed", "late"]);

    // After its deadline the sender can still correct the notice, keeping the deadline; a new
    // deadline must lie ahead.
    let deadline = match sent_content.body.as_ref() {
        Some(Body::Notice(n)) => n.ack_deadline.clone(),
        _ => unreachable!(),
    };
    let mut corrected = sent_content.clone();
    if let Some(Body::Notice(n)) = corrected.body.as_mut() {
        n.text = "A notice to acknowledge, corrected.".into();
    }
    let mut hub = t.hub("EE-MFA").await;
    let revise = |content: pb::SubmissionContent, expected_revision: u32| pb::ReviseRequest {
        id: sent.id.clone(),
        content: Some(content),
        expected_revision,
        ..Default::default()
    };
    hub.revise(revise(corrected.clone(), 1)).await.unwrap();
    if let Some(Body::Notice(n)) = corrected.body.as_mut() {
        n.ack_deadline = in_seconds(-60);
        assert_ne!(n.ack_deadline, deadline);
    }
    let err = hub.revise(revise(corrected, 2)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("notice.ack_deadline"),
        "{}",
        err.message()
    );
}
