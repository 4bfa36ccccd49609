//! Ping campaigns over real mTLS: which contacts a campaign tests and counts (only those its
//! admin may read), one notice per tested member naming only that member, acknowledgements and
//! reports across a campaign's notices, closing at the deadline, campaigns of more than 500
//! members, and campaigns stored by an earlier version (one notice to every member).
mod common;

use std::time::Duration;

use cbm_hub::{
    domain::member::Role,
    pb::{self, submission_content::Body},
};
use common::{MEMBERS, Spec, TestHub};
use common::{
    publish,
    samples::{in_seconds, poc},
};
use tonic::Code;

fn ack(notice_id: &str, contact: &str) -> pb::AcknowledgeRequest {
    pb::AcknowledgeRequest {
        notice_id: notice_id.into(),
        reply: String::new(),
        contact_id: contact.into(),
    }
}

fn start(deadline: &str, community: &str) -> pb::StartPingCampaignRequest {
    pb::StartPingCampaignRequest {
        deadline: deadline.into(),
        community: community.into(),
        ..Default::default()
    }
}

/// The test members plus two admins that read: a secretariat in the OAS that also publishes,
/// and an OSCE secretariat that only reads.
fn with_secretariats() -> Vec<Spec> {
    let mut members = MEMBERS.to_vec();
    members.push(Spec {
        id: "SECRETARIAT",
        state: "HUB",
        roles: &[Role::Admin, Role::Publisher, Role::Subscriber],
        communities: &["OAS"],
    });
    members.push(Spec {
        id: "OSCE-SEC",
        state: "HUB",
        roles: &[Role::Admin, Role::Subscriber],
        communities: &["OSCE"],
    });
    members
}

async fn campaign(t: &TestHub, reader: &str, id: &str) -> pb::PingCampaign {
    t.directory(reader)
        .await
        .get_ping_campaign(pb::GetPingCampaignRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

async fn ack_report(t: &TestHub, reader: &str, id: &str) -> pb::AcknowledgementReport {
    t.directory(reader)
        .await
        .acknowledgement_report(pb::AcknowledgementReportRequest {
            notice_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// The ping notice `member` got in campaign `c`.
fn notice_of(c: &pb::PingCampaign, member: &str) -> String {
    let line = c.results.iter().find(|l| l.member == member).unwrap();
    assert!(!line.notice_id.is_empty(), "{line:?}");
    line.notice_id.clone()
}

fn tested(c: &pb::PingCampaign) -> Vec<String> {
    let mut ids: Vec<_> = c.results.iter().map(|l| l.contact_id.clone()).collect();
    ids.sort();
    ids
}

/// The ping notices `member` may list.
async fn pings_of(t: &TestHub, member: &str) -> Vec<pb::Submission> {
    let listed = t
        .hub(member)
        .await
        .list(pb::ListRequest {
            kinds: vec!["notice".into()],
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.next_page_token.is_empty());
    listed
        .submissions
        .into_iter()
        .filter(|s| {
            matches!(
                s.content.as_ref().and_then(|c| c.body.as_ref()),
                Some(Body::Notice(n)) if n.category == "ping"
            )
        })
        .collect()
}

/// Four contacts of three members in two states; returns their ids.
async fn four_contacts(t: &TestHub) -> [String; 4] {
    [
        publish(t, "EE-CERT", poc("technical", "CERT-EE", "TLP:GREEN", &[])).await,
        publish(t, "EE-MFA", poc("policy", "EE MFA", "TLP:CLEAR", &[])).await,
        publish(t, "CL-MINREL", poc("policy", "MINREL", "TLP:CLEAR", &[])).await,
        publish(t, "CL-MINREL", poc("legal", "MINREL", "TLP:CLEAR", &[])).await,
    ]
    .map(|r| r.id)
}

#[tokio::test]
async fn a_campaign_pings_and_counts_only_contacts_its_admin_may_read() {
    let t = TestHub::start_with(&with_secretariats()).await;
    let red = publish(
        &t,
        "EE-CERT",
        poc("legal", "Secret desk", "TLP:RED", &["CL-MINREL"]),
    )
    .await;
    let mut oas = poc("legal", "MINREL legal", "TLP:GREEN", &[]);
    oas.community = "OAS".into();
    let oas = publish(&t, "CL-MINREL", oas).await;
    let clear = publish(&t, "EE-MFA", poc("policy", "EE MFA", "TLP:CLEAR", &[])).await;
    let to_sec = poc("technical", "CERT-EE", "TLP:AMBER", &["SECRETARIAT"]);
    let to_sec = publish(&t, "EE-CERT", to_sec).await;
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };

    // An admin that reads nothing may ping nothing, and is told why.
    let err = t
        .directory("ADMIN")
        .await
        .start_ping_campaign(start("", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    assert!(err.message().contains("subscriber"), "{}", err.message());

    // The level filter reaches readable contacts only: the RED legal contact is not pinged.
    let mut sec = t.directory("SECRETARIAT").await;
    let legal = sec
        .start_ping_campaign(pb::StartPingCampaignRequest {
            levels: vec!["legal".into()],
            ..start(&in_seconds(3600), "")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tested(&legal), std::slice::from_ref(&oas.id));

    // Without a filter: the contacts SECRETARIAT may read, exactly the directory it is shown.
    let all = sec
        .start_ping_campaign(start(&in_seconds(3600), ""))
        .await
        .unwrap()
        .into_inner();
    let readable = sorted(vec![oas.id.clone(), clear.id.clone(), to_sec.id.clone()]);
    assert_eq!(tested(&all), readable);
    assert_eq!((all.contacts, all.answered), (3, 0));
    let listed = sec
        .list_contacts(pb::ListContactsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<_> = listed
        .contacts
        .iter()
        .map(|e| e.submission.as_ref().unwrap().id.clone())
        .collect();
    assert_eq!(sorted(listed), readable);
    // EE-CERT is pinged for the contact SECRETARIAT may read; its answer covers that one only.
    let answer = t
        .directory("EE-CERT")
        .await
        .acknowledge(ack(&notice_of(&all, "EE-CERT"), ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.contact_ids, std::slice::from_ref(&to_sec.id));
    let err = t
        .directory("EE-CERT")
        .await
        .acknowledge(ack(&notice_of(&all, "EE-CERT"), &red.id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());

    // Each report is its reader's: lines, contents and figures over what it may read now.
    let line = |r: &pb::PingCampaign, id: &str| {
        let l = r.results.iter().find(|l| l.contact_id == id).unwrap();
        (l.level.clone(), l.organisation.clone(), l.status.clone())
    };
    let for_sec = campaign(&t, "SECRETARIAT", &all.id).await;
    assert_eq!((for_sec.contacts, for_sec.answered), (3, 1));
    assert_eq!(
        line(&for_sec, &oas.id),
        ("legal".into(), "MINREL legal".into(), "pending".into())
    );
    let for_osce = campaign(&t, "OSCE-SEC", &all.id).await;
    assert_eq!(tested(&for_osce), std::slice::from_ref(&clear.id));
    assert_eq!((for_osce.contacts, for_osce.answered), (1, 0));
    let states: Vec<_> = for_osce.states.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(states, ["EE"]);
    let for_admin = campaign(&t, "ADMIN", &all.id).await;
    assert_eq!((for_admin.contacts, for_admin.results.len()), (0, 0));
    let summary = t
        .directory("OSCE-SEC")
        .await
        .list_ping_campaigns(pb::ListPingCampaignsRequest {})
        .await
        .unwrap()
        .into_inner();
    let listed = summary.campaigns.iter().find(|c| c.id == all.id).unwrap();
    assert_eq!((listed.contacts, listed.results.len()), (1, 0));

    // The acknowledgement report of the campaign, across its notices, per reader alike.
    let members = |r: &pb::AcknowledgementReport| {
        r.recipients
            .iter()
            .map(|l| (l.member.clone(), l.status.clone()))
            .collect::<Vec<_>>()
    };
    let report = ack_report(&t, "SECRETARIAT", &all.id).await;
    assert_eq!(
        members(&report),
        [
            ("CL-MINREL".into(), "pending".into()),
            ("EE-CERT".into(), "acknowledged".into()),
            ("EE-MFA".into(), "pending".into())
        ]
    );
    assert_eq!((report.expected, report.acknowledged), (3, 1));
    let report = ack_report(&t, "OSCE-SEC", &all.id).await;
    assert_eq!(members(&report), [("EE-MFA".into(), "pending".into())]);
    assert_eq!((report.expected, report.acknowledged), (1, 0));
    let report = ack_report(&t, "OSCE-SEC", &notice_of(&all, "EE-CERT")).await;
    assert_eq!((report.expected, report.recipients.len()), (0, 0));
    // The starting admin reads its campaign's report by one of its notices too.
    let report = ack_report(&t, "SECRETARIAT", &notice_of(&all, "EE-CERT")).await;
    assert_eq!(
        members(&report),
        [("EE-CERT".into(), "acknowledged".into())]
    );
    // An admin that reads nothing gets the report as it gets the campaign (GetPingCampaign):
    // over the contacts it may read, none; not a refusal for want of a reading role.
    let report = ack_report(&t, "ADMIN", &all.id).await;
    assert_eq!((report.expected, report.recipients.len()), (0, 0));
    let err = t
        .directory("AUDITOR")
        .await
        .acknowledgement_report(pb::AcknowledgementReportRequest {
            notice_id: all.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{}", err.message());
    let err = t
        .directory("EE-MFA")
        .await
        .acknowledgement_report(pb::AcknowledgementReportRequest {
            notice_id: all.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "not an admin, not the sender");

    // The latest revision decides: a contact narrowed away from the starter leaves its reports;
    // a withdrawn one stays, without content, for its former audience.
    let mut narrowed = poc("legal", "MINREL legal", "TLP:AMBER", &["EE-MFA"]);
    narrowed.summary = "Now for EE-MFA only.".into();
    t.hub("CL-MINREL")
        .await
        .revise(pb::ReviseRequest {
            id: oas.id.clone(),
            content: Some(narrowed),
            ..Default::default()
        })
        .await
        .unwrap();
    t.hub("EE-MFA")
        .await
        .withdraw(pb::WithdrawRequest {
            id: clear.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let for_sec = campaign(&t, "SECRETARIAT", &all.id).await;
    assert_eq!(
        tested(&for_sec),
        sorted(vec![clear.id.clone(), to_sec.id.clone()])
    );
    assert_eq!(
        line(&for_sec, &clear.id),
        (String::new(), String::new(), "pending".into())
    );
    let report = ack_report(&t, "SECRETARIAT", &all.id).await;
    assert_eq!((report.expected, report.acknowledged), (2, 1));
}

#[tokio::test]
async fn each_pinged_member_gets_a_notice_naming_only_itself_and_its_answers_count() {
    let t = TestHub::start_with(&with_secretariats()).await;
    let [ee_tech, ee_pol, cl_pol, cl_legal] = four_contacts(&t).await;
    let request = pb::StartPingCampaignRequest {
        idempotency_key: "ping-2026-q1".into(),
        ..start(&in_seconds(3600), "")
    };
    let mut sec = t.directory("SECRETARIAT").await;
    let started = sec
        .start_ping_campaign(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!((started.status.as_str(), started.contacts), ("open", 4));

    // One notice per member, TLP:AMBER to it alone; the campaign id is no notice.
    let mut notices = Vec::new();
    for member in ["EE-CERT", "EE-MFA", "CL-MINREL"] {
        let pings = pings_of(&t, member).await;
        assert_eq!(pings.len(), 1, "{member}: {pings:?}");
        let content = pings[0].content.as_ref().unwrap();
        assert_eq!(content.tlp, "TLP:AMBER");
        assert_eq!(content.recipients, [member], "names only {member}");
        assert_eq!(pings[0].id, notice_of(&started, member));
        assert_ne!(pings[0].id, started.id);
        notices.push(pings[0].id.clone());
    }
    notices.sort();
    notices.dedup();
    assert_eq!(notices.len(), 3);
    assert!(
        pings_of(&t, "CL-CSIRT").await.is_empty(),
        "holds no contact"
    );
    let ee_notice = notice_of(&started, "EE-CERT");
    let cl_notice = notice_of(&started, "CL-MINREL");
    let get = |id: &str| pb::GetRequest {
        id: id.into(),
        revision: 0,
    };
    let err = t
        .hub("EE-CERT")
        .await
        .get(get(&cl_notice))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "another member's ping");
    let err = t
        .hub("EE-CERT")
        .await
        .get(get(&started.id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "a campaign is not a submission");

    // A retry with the key is the same campaign, and sends nothing new; another request with
    // the same key is refused.
    let again = sec
        .start_ping_campaign(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (again.id.as_str(), again.contacts),
        (started.id.as_str(), 4)
    );
    assert_eq!(pings_of(&t, "EE-MFA").await.len(), 1);
    let err = sec
        .start_ping_campaign(pb::StartPingCampaignRequest {
            community: "OSCE".into(),
            ..request
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{}", err.message());

    // Each member answers its own notice; answers count for the campaign.
    let err = t
        .directory("EE-CERT")
        .await
        .acknowledge(ack(&cl_notice, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let answered = t
        .directory("EE-CERT")
        .await
        .acknowledge(ack(&ee_notice, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered.contact_ids, std::slice::from_ref(&ee_tech));
    let err = t
        .directory("CL-MINREL")
        .await
        .acknowledge(ack(&cl_notice, &ee_tech))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("contact_id"), "{}", err.message());
    t.directory("CL-MINREL")
        .await
        .acknowledge(ack(&cl_notice, &cl_legal))
        .await
        .unwrap();
    let report = campaign(&t, "SECRETARIAT", &started.id).await;
    assert_eq!(
        (report.contacts, report.answered, report.answered_on_time),
        (4, 2, 2)
    );
    let status = |id: &str| {
        let l = report.results.iter().find(|l| l.contact_id == *id).unwrap();
        l.status.clone()
    };
    assert_eq!(
        [&ee_tech, &ee_pol, &cl_pol, &cl_legal].map(|id| status(id)),
        ["answered", "pending", "pending", "answered"]
    );
    let acks = ack_report(&t, "SECRETARIAT", &started.id).await;
    assert_eq!((acks.expected, acks.acknowledged, acks.on_time), (3, 2, 2));
    assert_eq!(acks.notice_id, started.id);
    // One notice of it: that member only, for its sender and for any admin that may read it.
    for reader in ["SECRETARIAT", "OSCE-SEC"] {
        let one = ack_report(&t, reader, &ee_notice).await;
        let lines: Vec<_> = one.recipients.iter().map(|l| l.member.as_str()).collect();
        assert_eq!(lines, ["EE-CERT"], "{reader}");
        assert_eq!(one.acknowledged, 1);
    }

    // The pings belong to their campaign: their sender cannot revise or withdraw them.
    let err = t
        .hub("SECRETARIAT")
        .await
        .withdraw(pb::WithdrawRequest {
            id: ee_notice.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());

    // Audited: one start entry for the campaign, one publication per notice.
    let audit: Vec<_> = t.store().audit_after(0).map(Result::unwrap).collect();
    let starts: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "ping.campaign.start" && e.outcome == "allowed")
        .collect();
    assert_eq!(starts.len(), 2, "the start and its replay");
    assert!(starts.iter().all(|e| e.object_id == started.id));
    let published = audit
        .iter()
        .filter(|e| e.action == "submission.publish" && notices.contains(&e.object_id))
        .count();
    assert_eq!(published, 3);
}

async fn wait_closed(t: &TestHub, reader: &str, id: &str) -> pb::PingCampaign {
    for _ in 0..100 {
        let c = campaign(t, reader, id).await;
        if c.status == "closed" {
            assert!(!c.closed_at.is_empty());
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("campaign {id} not closed 10 s after its deadline");
}

#[tokio::test]
async fn a_campaign_closes_at_its_deadline_also_while_the_hub_is_down() {
    let mut t = TestHub::start_with(&with_secretariats()).await;
    let [ee_tech, _, cl_pol, _] = four_contacts(&t).await;
    let mut sec = t.directory("SECRETARIAT").await;
    let err = sec
        .start_ping_campaign(start(&in_seconds(-5), "NOPE"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("community") && err.message().contains("deadline"),
        "{}",
        err.message()
    );
    let err = t
        .directory("EE-MFA")
        .await
        .start_ping_campaign(start("", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let live = sec
        .start_ping_campaign(start(&in_seconds(4), ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(live.contacts, 4);
    t.directory("EE-CERT")
        .await
        .acknowledge(ack(&notice_of(&live, "EE-CERT"), ""))
        .await
        .unwrap();
    // Narrowed away from the starter before the deadline: no longer counted at the close.
    let mut narrowed = poc("policy", "MINREL", "TLP:AMBER", &["EE-MFA"]);
    narrowed.summary = "Now for EE-MFA only.".into();
    t.hub("CL-MINREL")
        .await
        .revise(pb::ReviseRequest {
            id: cl_pol.clone(),
            content: Some(narrowed),
            ..Default::default()
        })
        .await
        .unwrap();
    let closed = wait_closed(&t, "SECRETARIAT", &live.id).await;
    let status_of = |c: &pb::PingCampaign, id: &str| {
        c.results
            .iter()
            .find(|l| l.contact_id == id)
            .unwrap()
            .status
            .clone()
    };
    assert_eq!(status_of(&closed, &ee_tech), "answered");
    assert_eq!((closed.contacts, closed.answered), (3, 1));
    assert!(
        closed
            .results
            .iter()
            .filter(|l| l.contact_id != ee_tech)
            .all(|l| l.status == "missed")
    );

    // Only the OSCE members' contacts; its deadline passes while the hub is down.
    let down = sec
        .start_ping_campaign(start(&in_seconds(2), "OSCE"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(down.contacts, 2);
    t.stop_for(Duration::from_millis(2500)).await;
    let closed_down = wait_closed(&t, "SECRETARIAT", &down.id).await;
    assert_eq!(closed_down.answered, 0);
    let after = campaign(&t, "SECRETARIAT", &live.id).await;
    assert_eq!(after.closed_at, closed.closed_at, "persisted");
    let audit: Vec<_> = t.store().audit_after(0).map(Result::unwrap).collect();
    let closing: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "ping.campaign.close")
        .map(|e| (e.object_id.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(closing.len(), 2, "{closing:?}");
    assert!(
        closing
            .iter()
            .any(|(id, d)| *id == live.id && d.contains("1 of 3 contacts answered")),
        "{closing:?}"
    );
    assert!(
        closing
            .iter()
            .any(|(id, d)| *id == down.id && d.contains("0 of 2 contacts answered")),
        "{closing:?}"
    );
}

/// `require_signed` holds for campaigns: their notices are hub-written and unsigned, and would
/// be published as the starting admin's, so an admin that must sign cannot start one; the
/// refusal is audited, and nothing is pinged.
#[tokio::test]
async fn an_admin_that_must_sign_cannot_start_a_campaign_of_unsigned_notices() {
    let t = TestHub::start_with(&with_secretariats()).await;
    four_contacts(&t).await;
    let require = |on: bool| pb::UpdateMemberRequest {
        id: "SECRETARIAT".into(),
        set_require_signed: true,
        require_signed: on,
        ..Default::default()
    };
    t.admin("ADMIN")
        .await
        .update_member(require(true))
        .await
        .unwrap();
    let err = t
        .directory("SECRETARIAT")
        .await
        .start_ping_campaign(start(&in_seconds(3600), ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    assert!(
        err.message()
            .starts_with("signature: required: member SECRETARIAT must sign")
            && err.message().contains("written by the hub"),
        "{}",
        err.message()
    );
    assert!(pings_of(&t, "EE-MFA").await.is_empty(), "nothing pinged");
    let refused = pb::audit_client::AuditClient::new(t.channel("AUDITOR").await)
        .query(pb::AuditQuery {
            action: "ping.campaign.start".into(),
            member: "SECRETARIAT".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0].outcome.starts_with("refused"),
        "{:?}",
        refused[0]
    );
    // Once signatures are not required of it, the same admin starts it.
    t.admin("ADMIN")
        .await
        .update_member(require(false))
        .await
        .unwrap();
    t.directory("SECRETARIAT")
        .await
        .start_ping_campaign(start(&in_seconds(3600), ""))
        .await
        .unwrap();
    assert_eq!(pings_of(&t, "EE-MFA").await.len(), 1);
    t.stop().await;
}
