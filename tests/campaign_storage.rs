//! Ping campaigns at scale and across versions, over real mTLS: a campaign over more than 500
//! contact-holding members (more than a notice may name as recipients), and a campaign stored
//! by an earlier version as one notice addressed to every tested member.
mod common;

use std::{sync::Arc, time::Duration};

use cbm_hub::{
    audit::Origin,
    domain::{
        clock,
        kind::Kind,
        member::{Binding, BoundCertificate, Member, MemberStatus, Role},
    },
    pb::{
        self, directory_client::DirectoryClient, hub_client::HubClient, submission_content::Body,
    },
    store::{
        CampaignStart, Change, ChangeOp, MemberOp, codec,
        keyspace::{self, Rec},
    },
    tls::devpki::LeafSpec,
};
use common::samples::in_seconds;
use common::{MEMBERS, Spec, TestHub, samples, sha256_hex};
use futures_util::future::join_all;
use tonic::Code;

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

fn contact(organisation: &str) -> pb::SubmissionContent {
    let mut body = samples::point_of_contact();
    if let Body::PointOfContact(p) = &mut body {
        p.organisation = organisation.into();
    }
    samples::envelope(&format!("{organisation} contact"), "TLP:CLEAR", body)
}

fn member(id: &str, cert_sha256: String) -> Member {
    Member {
        id: id.into(),
        state: "ZZ".into(),
        display_name: format!("{id} (test)"),
        roles: [Role::Publisher, Role::Subscriber].into_iter().collect(),
        communities: vec![],
        status: MemberStatus::Active,
        bindings: vec![BoundCertificate {
            binding: Binding::CertSha256(cert_sha256),
            note: String::new(),
            // A certificate-hash binding fixes its issuer already.
            issuer: None,
        }],
        created_at: String::new(),
        updated_at: String::new(),
        require_signed: false,
    }
}

const MANY: usize = 520;

#[tokio::test]
async fn a_campaign_over_520_members_works() {
    let t = TestHub::start_with(&with_secretariat()).await;
    // Registered and publishing through the store directly (the set-up is not under test);
    // concurrently, so that the writer commits them in a few groups. Two of them get real
    // certificates to answer over mTLS.
    let ids: Vec<String> = (0..MANY).map(|i| format!("ZZ-M{i:03}")).collect();
    let answering = [ids[0].clone(), ids[MANY - 1].clone()];
    let mut certs = std::collections::HashMap::new();
    for id in &answering {
        certs.insert(id.clone(), t.ca.issue(&LeafSpec::client(id, 1)).unwrap());
    }
    let store = t.store().clone();
    let members: Vec<Member> = ids
        .iter()
        .map(|id| {
            let fingerprint = match certs.get(id) {
                Some(c) => sha256_hex(&c.cert_der),
                None => sha256_hex(id.as_bytes()),
            };
            member(id, fingerprint)
        })
        .collect();
    let registered = join_all(
        members
            .iter()
            .map(|m| store.member(MemberOp::Register(m.clone()), Origin::hub())),
    )
    .await;
    assert!(registered.iter().all(Result::is_ok));
    let published = join_all(members.iter().map(|m| {
        let change = Change::new(
            ChangeOp::Publish {
                content: contact(&m.id),
                kind: Kind::PointOfContact,
            },
            None,
        );
        store.change(Arc::new(m.clone()), Origin::hub(), change)
    }))
    .await;
    assert!(published.iter().all(Result::is_ok));

    let started = t
        .directory("SECRETARIAT")
        .await
        .start_ping_campaign(pb::StartPingCampaignRequest {
            deadline: in_seconds(3600),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.contacts as usize, MANY);
    let notices: std::collections::HashSet<_> = started
        .results
        .iter()
        .map(|l| l.notice_id.clone())
        .collect();
    assert_eq!(notices.len(), MANY, "one notice per member");

    for id in &answering {
        let channel = t.channel_with(&certs[id]).await.unwrap();
        let listed = HubClient::new(channel.clone())
            .list(pb::ListRequest {
                kinds: vec!["notice".into()],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.submissions.len(), 1, "{id}");
        let ping = &listed.submissions[0];
        assert_eq!(
            ping.content.as_ref().unwrap().recipients,
            std::slice::from_ref(id)
        );
        DirectoryClient::new(channel)
            .acknowledge(pb::AcknowledgeRequest {
                notice_id: ping.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let mut sec = t.directory("SECRETARIAT").await;
    let report = sec
        .get_ping_campaign(pb::GetPingCampaignRequest {
            id: started.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((report.contacts as usize, report.answered), (MANY, 2));
    let acks = sec
        .acknowledgement_report(pb::AcknowledgementReportRequest {
            notice_id: started.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((acks.expected as usize, acks.acknowledged), (MANY, 2));
}

/// Opens the stopped hub's sled store, waiting (bounded) for the lock its last handle held.
fn open_sled(dir: &std::path::Path) -> sled::Db {
    for _ in 0..150 {
        match keyspace::open_raw(dir) {
            Ok(db) => return db,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    panic!("{} still locked after 3 s", dir.display());
}

#[tokio::test]
async fn a_campaign_stored_as_one_notice_to_every_member_still_reports_and_closes() {
    let mut t = TestHub::start_with(&with_secretariat()).await;
    let mut ids = Vec::new();
    for (member, org) in [
        ("EE-CERT", "CERT-EE"),
        ("EE-MFA", "EE MFA"),
        ("CL-MINREL", "MINREL policy"),
        ("CL-MINREL", "MINREL legal"),
    ] {
        let r = t
            .hub(member)
            .await
            .publish(pb::PublishRequest {
                content: Some(contact(org)),
                idempotency_key: String::new(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        ids.push((member, r.id));
    }
    // What an earlier version stored: one ping notice to every tested member, and a campaign
    // under that notice's id whose targets name no notice.
    let deadline = in_seconds(2);
    let mut notice = samples::envelope(
        "Points-of-contact directory ping",
        "TLP:AMBER",
        Body::Notice(pb::Notice {
            category: "ping".into(),
            subject: "Please confirm your point of contact".into(),
            text: "A test of the directory.".into(),
            ack_deadline: deadline.clone(),
            ..Default::default()
        }),
    );
    notice.recipients = vec!["CL-MINREL".into(), "EE-CERT".into(), "EE-MFA".into()];
    let sent = t
        .hub("SECRETARIAT")
        .await
        .publish(pb::PublishRequest {
            content: Some(notice),
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let stored = pb::PingCampaign {
        id: sent.id.clone(),
        started_by: "SECRETARIAT".into(),
        started_at: sent.accepted_at.clone(),
        deadline: deadline.clone(),
        status: "open".into(),
        results: ids
            .iter()
            .map(|(member, contact)| pb::ContactResult {
                state: member[..2].into(),
                member: member.to_string(),
                contact_id: contact.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    t.hub.take().unwrap().stop().await.unwrap();
    {
        let db = open_sled(&t.config.data_dir);
        db.open_tree(keyspace::TREE)
            .unwrap()
            .insert(
                Rec::Campaigns.key(sent.id.as_bytes()),
                codec::frame(&stored),
            )
            .unwrap();
        db.flush().unwrap();
    }
    // The deadline passes while the hub is down: it closes the campaign when it starts.
    let wait = clock::parse_instant(&deadline).unwrap() - time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::try_from(wait).unwrap_or_default() + Duration::from_millis(200))
        .await;
    t.hub = Some(cbm_hub::service::start(&t.config).await.unwrap());

    let mut sec = t.directory("SECRETARIAT").await;
    let mut closed = None;
    for _ in 0..100 {
        let c = sec
            .get_ping_campaign(pb::GetPingCampaignRequest {
                id: sent.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if c.status == "closed" {
            closed = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let closed = closed.expect("closed within 10 s of starting");
    assert_eq!((closed.contacts, closed.answered), (4, 0));
    assert!(closed.results.iter().all(|l| l.notice_id == sent.id));

    // Members answer the one notice, late; the answers count per contact.
    let cl_legal = &ids[3].1;
    let answered = t
        .directory("EE-CERT")
        .await
        .acknowledge(pb::AcknowledgeRequest {
            notice_id: sent.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered.contact_ids, [ids[0].1.clone()]);
    t.directory("CL-MINREL")
        .await
        .acknowledge(pb::AcknowledgeRequest {
            notice_id: sent.id.clone(),
            contact_id: cl_legal.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let report = sec
        .get_ping_campaign(pb::GetPingCampaignRequest {
            id: sent.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (report.contacts, report.answered, report.answered_on_time),
        (4, 2, 0)
    );
    let statuses: Vec<_> = ids
        .iter()
        .map(|(_, c)| {
            let l = report.results.iter().find(|l| l.contact_id == *c).unwrap();
            l.status.clone()
        })
        .collect();
    assert_eq!(statuses, ["late", "missed", "missed", "late"]);
    let acks = sec
        .acknowledgement_report(pb::AcknowledgementReportRequest {
            notice_id: sent.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((acks.expected, acks.acknowledged, acks.on_time), (3, 2, 0));
    // The campaign's reports follow its reader: ADMIN reads no contact.
    let for_admin = t
        .directory("ADMIN")
        .await
        .get_ping_campaign(pb::GetPingCampaignRequest {
            id: sent.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((for_admin.contacts, for_admin.results.len()), (0, 0));
    // Still the campaign's ping: it cannot be withdrawn.
    let err = t
        .hub("SECRETARIAT")
        .await
        .withdraw(pb::WithdrawRequest {
            id: sent.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    let audit: Vec<_> = t.store().audit_after(0).map(Result::unwrap).collect();
    assert!(
        audit.iter().any(|e| e.action == "ping.campaign.close"
            && e.object_id == sent.id
            && e.detail.contains("0 of 4 contacts answered")),
        "closed with its figures"
    );
}

/// A ping notice to `member` as the service builds it (`severity`: to make the writer refuse it,
/// since the sender has no severity schema).
fn ping_to(member: &str, severity: &str) -> Change {
    let mut content = samples::envelope(
        "Points-of-contact directory ping",
        "TLP:AMBER",
        Body::Notice(pb::Notice {
            category: "ping".into(),
            subject: "Please confirm your point of contact".into(),
            text: "A test of the directory.".into(),
            ack_deadline: in_seconds(3600),
            severity: severity.into(),
            ..Default::default()
        }),
    );
    content.recipients = vec![member.into()];
    Change::new(
        ChangeOp::Publish {
            content,
            kind: Kind::Notice,
        },
        None,
    )
}

#[tokio::test]
async fn a_campaign_whose_notice_is_refused_sends_nothing() {
    let t = TestHub::start_with(&with_secretariat()).await;
    let mut lines = Vec::new();
    for member in ["EE-CERT", "EE-MFA"] {
        let r = t
            .hub(member)
            .await
            .publish(pb::PublishRequest {
                content: Some(contact(member)),
                idempotency_key: String::new(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        lines.push(pb::ContactResult {
            state: "EE".into(),
            member: member.into(),
            contact_id: r.id,
            ..Default::default()
        });
    }
    let store = t.store().clone();
    let admin = store.registry().get("SECRETARIAT").unwrap().clone();
    let campaign = |second_severity: &str| CampaignStart {
        record: pb::PingCampaign {
            started_by: "SECRETARIAT".into(),
            deadline: in_seconds(3600),
            status: "open".into(),
            results: lines.clone(),
            ..Default::default()
        },
        notices: vec![
            ("EE-CERT".into(), ping_to("EE-CERT", "")),
            ("EE-MFA".into(), ping_to("EE-MFA", second_severity)),
        ],
        idempotency_key: Some("atomic".into()),
        fingerprint: b"the request".to_vec(),
    };
    let head = store.head();
    let err = store
        .start_campaign(admin.clone(), Origin::hub(), campaign("high"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("severity"), "{err}");
    // Nothing of it: no notice for the first member, no campaign, no number used, key free.
    assert_eq!(store.head(), head);
    assert!(store.campaigns().unwrap().is_empty());
    let listed = t
        .hub("EE-CERT")
        .await
        .list(pb::ListRequest {
            kinds: vec!["notice".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.submissions.is_empty(), "{listed:?}");
    let started = store
        .start_campaign(admin, Origin::hub(), campaign(""))
        .await
        .unwrap();
    assert!(!started.replayed);
    assert_eq!(started.sequence, head + 2, "gapless: two notices");
    let stored = store.campaign(&started.id).unwrap().unwrap();
    assert_eq!(stored.results.len(), 2);
    assert!(store.check().unwrap().is_empty());
    let audit: Vec<_> = store.audit_after(0).map(Result::unwrap).collect();
    let outcomes: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "ping.campaign.start")
        .map(|e| e.outcome.as_str())
        .collect();
    assert_eq!(outcomes, ["refused", "allowed"]);
}
