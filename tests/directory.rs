//! The points-of-contact directory, acknowledgements and ping campaigns over real mTLS.
mod common;

use std::time::Duration;

use cbm_hub::{
    domain::{clock, member::Role},
    pb::{self, PublishRequest, submission_content::Body},
};
use common::{MEMBERS, Spec, TestHub, feed, samples};
use tonic::Code;

async fn publish(t: &TestHub, member: &str, content: pb::SubmissionContent) -> pb::PublishResponse {
    t.hub(member)
        .await
        .publish(PublishRequest {
            content: Some(content),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// A point of contact of `level`, under `tlp` (recipients for AMBER).
fn poc(level: &str, organisation: &str, tlp: &str, recipients: &[&str]) -> pb::SubmissionContent {
    let mut body = samples::point_of_contact();
    if let Body::PointOfContact(p) = &mut body {
        p.level = level.into();
        p.organisation = organisation.into();
    }
    let mut c = samples::envelope(&format!("{organisation} {level}"), tlp, body);
    c.recipients = recipients.iter().map(|r| r.to_string()).collect();
    c
}

fn in_seconds(s: i64) -> String {
    clock::format_instant(time::OffsetDateTime::now_utc() + time::Duration::seconds(s))
}

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

/// Four contacts of three members in two states; returns their ids by organisation.
async fn four_contacts(t: &TestHub) -> [String; 4] {
    [
        publish(t, "EE-CERT", poc("technical", "CERT-EE", "TLP:GREEN", &[]))
            .await
            .id,
        publish(t, "EE-MFA", poc("policy", "EE MFA", "TLP:CLEAR", &[]))
            .await
            .id,
        publish(
            t,
            "CL-MINREL",
            poc("policy", "MINREL policy", "TLP:CLEAR", &[]),
        )
        .await
        .id,
        publish(
            t,
            "CL-MINREL",
            poc("legal", "MINREL legal", "TLP:CLEAR", &[]),
        )
        .await
        .id,
    ]
}

fn start(deadline: &str, community: &str) -> pb::StartPingCampaignRequest {
    pb::StartPingCampaignRequest {
        deadline: deadline.into(),
        community: community.into(),
        ..Default::default()
    }
}

async fn campaign(t: &TestHub, id: &str) -> pb::PingCampaign {
    t.directory("ADMIN")
        .await
        .get_ping_campaign(pb::GetPingCampaignRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_ping_campaign_reports_per_state_and_contact_and_closes_at_its_deadline() {
    let mut t = TestHub::start().await;
    let [ee_tech, _ee_pol, cl_pol, cl_legal] = four_contacts(&t).await;

    let err = t
        .directory("EE-MFA")
        .await
        .start_ping_campaign(start("", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = t
        .directory("ADMIN")
        .await
        .start_ping_campaign(start(&in_seconds(-5), "NOPE"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("community") && err.message().contains("deadline"),
        "{}",
        err.message()
    );

    let started = t
        .directory("ADMIN")
        .await
        .start_ping_campaign(start(&in_seconds(3), ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (started.status.as_str(), started.contacts, started.answered),
        ("open", 4, 0)
    );
    // The ping is a notice addressed to the members whose contacts are tested.
    let ping = t
        .hub("CL-CSIRT")
        .await
        .get(pb::GetRequest {
            id: started.id.clone(),
            revision: 0,
        })
        .await;
    assert_eq!(
        ping.unwrap_err().code(),
        Code::NotFound,
        "CL-CSIRT has no contact: not addressed"
    );

    let mut ee = t.directory("EE-CERT").await;
    let answered = ee
        .acknowledge(ack(&started.id, "Still current.", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered.contact_ids, std::slice::from_ref(&ee_tech));
    // Naming the contact already answered for is the same answer again.
    let again = ee
        .acknowledge(ack(&started.id, "Named this time.", &ee_tech))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    assert_eq!(
        (again.sequence, again.reply.as_str()),
        (answered.sequence, "Still current.")
    );
    let mut cl = t.directory("CL-MINREL").await;
    let err = cl
        .acknowledge(ack(&started.id, "", &ee_tech))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("contact_id"), "{}", err.message());
    cl.acknowledge(ack(&started.id, "", &cl_legal))
        .await
        .unwrap();

    let report = campaign(&t, &started.id).await;
    assert_eq!(
        (report.contacts, report.answered, report.answered_on_time),
        (4, 2, 2)
    );
    assert_eq!(report.response_rate, 0.5);
    let states: Vec<_> = report
        .states
        .iter()
        .map(|s| (s.state.as_str(), s.contacts, s.answered))
        .collect();
    assert_eq!(states, [("CL", 2, 1), ("EE", 2, 1)]);
    let status_of = |r: &pb::PingCampaign, id: &str| {
        r.results
            .iter()
            .find(|c| c.contact_id == id)
            .unwrap()
            .status
            .clone()
    };
    assert_eq!(status_of(&report, &cl_pol), "pending");
    assert_eq!(status_of(&report, &cl_legal), "answered");
    // The directory shows the answered contact as verified by the acknowledgement.
    let listed = contacts(&t, "CL-CSIRT", pb::ListContactsRequest::default()).await;
    assert!(
        listed.contains(&(ee_tech.clone(), "acknowledged".into())),
        "{listed:?}"
    );
    assert!(
        listed.contains(&(cl_pol.clone(), "published".into())),
        "{listed:?}"
    );

    // The hub closes the campaign at its deadline by itself.
    let closed = wait_closed(&t, &started.id).await;
    assert_eq!(status_of(&closed, &cl_pol), "missed");
    assert_eq!(closed.answered, 2);
    // Persisted: the same after a restart.
    t.restart().await;
    let after = campaign(&t, &started.id).await;
    assert_eq!(
        (after.status.as_str(), after.closed_at.as_str()),
        ("closed", closed.closed_at.as_str())
    );
    let listed = t
        .directory("ADMIN")
        .await
        .list_ping_campaigns(pb::ListPingCampaignsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.campaigns.len(), 1);
    assert!(
        listed.campaigns[0].results.is_empty(),
        "the list has no per-contact detail"
    );
}

async fn wait_closed(t: &TestHub, id: &str) -> pb::PingCampaign {
    for _ in 0..100 {
        let c = campaign(t, id).await;
        if c.status == "closed" {
            assert!(!c.closed_at.is_empty());
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("campaign {id} not closed 10 s after its deadline");
}

#[tokio::test]
async fn a_deadline_that_passes_while_the_hub_is_down_closes_the_campaign_at_start() {
    let mut t = TestHub::start().await;
    four_contacts(&t).await;
    let started = t
        .directory("ADMIN")
        .await
        .start_ping_campaign(start(&in_seconds(2), "OSCE"))
        .await
        .unwrap()
        .into_inner();
    // Only the OSCE members' contacts.
    assert_eq!(started.contacts, 2);
    t.stop_for(Duration::from_millis(2500)).await;
    let closed = wait_closed(&t, &started.id).await;
    assert_eq!(closed.answered, 0);
    assert!(closed.results.iter().all(|c| c.status == "missed"));
    let audit: Vec<_> = t.store().audit_after(0).map(Result::unwrap).collect();
    let closing: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "ping.campaign.close")
        .collect();
    assert_eq!(closing.len(), 1);
    assert!(
        closing[0].detail.contains("0 of 2 contacts answered"),
        "{}",
        closing[0].detail
    );
}

/// The test members plus a secretariat: an admin that also publishes and reads in the OAS.
fn with_secretariat() -> Vec<Spec> {
    let mut members = MEMBERS.to_vec();
    members.push(Spec {
        id: "SECRETARIAT",
        state: "HUB",
        roles: &[Role::Admin, Role::Publisher, Role::Subscriber],
        communities: &["OAS"],
    });
    members
}

#[tokio::test]
async fn a_campaign_report_shows_only_the_contact_content_its_reader_may_see() {
    let t = TestHub::start_with(&with_secretariat()).await;
    let red = publish(
        &t,
        "EE-CERT",
        poc("legal", "Secret legal desk", "TLP:RED", &["CL-MINREL"]),
    )
    .await
    .id;
    let clear = publish(
        &t,
        "CL-MINREL",
        poc("legal", "MINREL legal", "TLP:CLEAR", &[]),
    )
    .await
    .id;
    let legal = || pb::StartPingCampaignRequest {
        levels: vec!["legal".into()],
        ..start(&in_seconds(3600), "")
    };

    // Filtering on the level, which is content, reaches only contacts the caller may read: an
    // admin that reads nothing learns nothing from it, not even that a legal contact exists.
    let err = t
        .directory("ADMIN")
        .await
        .start_ping_campaign(legal())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    let mut secretariat = t.directory("SECRETARIAT").await;
    let by_level = secretariat
        .start_ping_campaign(legal())
        .await
        .unwrap()
        .into_inner();
    let tested: Vec<_> = by_level
        .results
        .iter()
        .map(|r| r.contact_id.as_str())
        .collect();
    assert_eq!(tested, [clear.as_str()]);

    // Without a filter every contact is tested, but each report leaves out what its reader
    // may not read, whoever started the campaign.
    let all = secretariat
        .start_ping_campaign(start(&in_seconds(3600), ""))
        .await
        .unwrap()
        .into_inner();
    let line = |r: &pb::PingCampaign, id: &str| {
        let l = r.results.iter().find(|l| l.contact_id == id).unwrap();
        (l.level.clone(), l.organisation.clone(), l.state.clone())
    };
    let hidden = (String::new(), String::new(), "EE".to_string());
    assert_eq!(line(&all, &red), hidden);
    assert_eq!(
        line(&all, &clear),
        ("legal".into(), "MINREL legal".into(), "CL".into())
    );
    let for_admin = campaign(&t, &all.id).await;
    assert_eq!(line(&for_admin, &red), hidden);
    assert_eq!(
        line(&for_admin, &clear),
        (String::new(), String::new(), "CL".into()),
        "ADMIN has no reading role"
    );

    // Without a deadline the contacts have the practice's 24 hours.
    let by_default = secretariat
        .start_ping_campaign(start("", "OAS"))
        .await
        .unwrap()
        .into_inner();
    let deadline = clock::parse_instant(&by_default.deadline).unwrap();
    let ahead = deadline - time::OffsetDateTime::now_utc();
    assert!(
        ahead <= time::Duration::hours(24)
            && ahead > time::Duration::hours(24) - time::Duration::minutes(1),
        "{ahead}"
    );

    // The ping belongs to its campaign: its sender cannot withdraw or revise it.
    let err = t
        .hub("SECRETARIAT")
        .await
        .withdraw(pb::WithdrawRequest {
            id: all.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
}
