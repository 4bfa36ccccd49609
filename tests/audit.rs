//! The audit log over real mTLS: what each request leaves, the publisher's access log, and
//! tamper detection in exports and in the store.
mod common;

use std::time::Duration;

use cbm_hub::{
    audit::verify_export,
    pb::{
        self, AuditEntry, GetRequest, ListRequest, PublishRequest, ReviseRequest, WithdrawRequest,
        audit_client::AuditClient,
    },
    store::keyspace::{self, Rec},
    tls::devpki::{DevCa, LeafSpec},
};
use common::{
    TestHub,
    feed::{read_until, request, subscribe},
    samples, sha256_hex,
};
use tonic::Code;

async fn entries_after(t: &TestHub, after: u64) -> Vec<AuditEntry> {
    let mut client = AuditClient::new(t.channel("AUDITOR").await);
    let mut out = Vec::new();
    let mut req = pb::AuditQuery {
        page_size: 1000,
        ..Default::default()
    };
    loop {
        let page = client.query(req.clone()).await.unwrap().into_inner();
        out.extend(page.entries.into_iter().filter(|e| e.sequence > after));
        if page.next_page_token.is_empty() {
            return out;
        }
        req.page_token = page.next_page_token;
    }
}

/// Polls until an entry matching `pred` is recorded (asynchronous sources: handshakes, deliveries).
async fn wait_for(t: &TestHub, after: u64, pred: impl Fn(&AuditEntry) -> bool) -> AuditEntry {
    for _ in 0..100 {
        if let Some(e) = entries_after(t, after).await.into_iter().find(&pred) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected audit entry never recorded");
}

/// Waits until the hub has noted `noted` unauthenticated refusals in all (they are noted as the
/// refused handshake or request ends), then writes their aggregate entries.
async fn flush_noise(t: &TestHub, noted: u64) {
    for _ in 0..200 {
        if t.store().noise().noted() >= noted {
            t.store().flush_noise().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{noted} unauthenticated refusals never noted");
}

fn notice(tlp: &str, recipients: &[&str]) -> PublishRequest {
    let mut c = samples::envelope("n", tlp, samples::notice());
    c.recipients = recipients.iter().map(|s| s.to_string()).collect();
    PublishRequest {
        content: Some(c),
        idempotency_key: String::new(),
        ..Default::default()
    }
}

#[tokio::test]
async fn every_request_leaves_exactly_the_expected_entry() {
    let t = TestHub::start().await;
    let base = entries_after(&t, 0).await.last().map_or(0, |e| e.sequence) + 1; // + the query's own entry
    let mut ee = t.hub("EE-MFA").await;
    let mut csirt = t.hub("CL-CSIRT").await;
    let mut minrel = t.hub("CL-MINREL").await;
    let mut admin = t.admin("ADMIN").await;

    let clear = ee
        .publish(notice("TLP:CLEAR", &[]))
        .await
        .unwrap()
        .into_inner();
    let mut bad = notice("TLP:CLEAR", &[]);
    bad.content.as_mut().unwrap().title.clear();
    ee.publish(bad).await.unwrap_err();
    csirt.publish(notice("TLP:CLEAR", &[])).await.unwrap_err();
    csirt
        .get(GetRequest {
            id: clear.id.clone(),
            revision: 0,
        })
        .await
        .unwrap();
    let red = ee
        .publish(notice("TLP:RED", &["EE-CERT"]))
        .await
        .unwrap()
        .into_inner();
    csirt
        .get(GetRequest {
            id: red.id.clone(),
            revision: 0,
        })
        .await
        .unwrap_err();
    minrel.list(ListRequest::default()).await.unwrap();
    let content = notice("TLP:CLEAR", &[]).content;
    minrel
        .revise(ReviseRequest {
            id: clear.id.clone(),
            content,
            expected_revision: 0,
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    ee.withdraw(WithdrawRequest {
        id: red.id.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    admin
        .suspend_member(pb::SetMemberStatusRequest {
            id: "CL-CSIRT".into(),
            reason: "audit test".into(),
        })
        .await
        .unwrap();
    let dup = pb::Member {
        id: "EE-MFA".into(),
        state: "EE".into(),
        display_name: "x".into(),
        roles: vec!["subscriber".into()],
        ..Default::default()
    };
    admin
        .register_member(pb::RegisterMemberRequest { member: Some(dup) })
        .await
        .unwrap_err();
    let stranger = t.ca.issue(&LeafSpec::client("XX-NOBODY", 30)).unwrap();
    let mut stranger_hub = pb::hub_client::HubClient::new(t.channel_with(&stranger).await.unwrap());
    stranger_hub
        .publish(notice("TLP:CLEAR", &[]))
        .await
        .unwrap_err();

    // An unbound certificate is unauthenticated noise: counted, then written as one aggregate
    // entry per source, certificate and interval (here: at once).
    flush_noise(&t, 1).await;
    wait_for(&t, base, |e| e.action == "request.unauthenticated").await;
    let got: Vec<_> = entries_after(&t, base)
        .await
        .into_iter()
        // The wait above queried the log; those queries are checked further down.
        .filter(|e| e.action != "audit.query")
        .map(|e| {
            (
                e.member,
                e.action,
                e.object_id,
                e.outcome,
                e.revision,
                e.label,
                e.reason.split(':').next().unwrap_or("").to_string(),
            )
        })
        .collect();
    let s = |x: &str| x.to_string();
    let expected = vec![
        (
            s("EE-MFA"),
            s("submission.publish"),
            clear.id.clone(),
            s("allowed"),
            1,
            s("TLP:CLEAR"),
            s(""),
        ),
        (
            s("EE-MFA"),
            s("submission.publish"),
            s(""),
            s("refused"),
            0,
            s(""),
            s("invalid_argument"),
        ),
        (
            s("CL-CSIRT"),
            s("submission.publish"),
            s(""),
            s("refused"),
            0,
            s(""),
            s("permission_denied"),
        ),
        (
            s("CL-CSIRT"),
            s("submission.get"),
            clear.id.clone(),
            s("allowed"),
            1,
            s("TLP:CLEAR"),
            s(""),
        ),
        (
            s("EE-MFA"),
            s("submission.publish"),
            red.id.clone(),
            s("allowed"),
            1,
            s("TLP:RED"),
            s(""),
        ),
        (
            s("CL-CSIRT"),
            s("submission.get"),
            red.id.clone(),
            s("refused"),
            0,
            s(""),
            s("not_found"),
        ),
        (
            s("CL-MINREL"),
            s("submission.list"),
            s(""),
            s("allowed"),
            0,
            s(""),
            s(""),
        ),
        (
            s("CL-MINREL"),
            s("submission.revise"),
            clear.id.clone(),
            s("refused"),
            0,
            s(""),
            s("permission_denied"),
        ),
        (
            s("EE-MFA"),
            s("submission.withdraw"),
            red.id.clone(),
            s("allowed"),
            2,
            s("TLP:RED"),
            s(""),
        ),
        (
            s("ADMIN"),
            s("member.suspend"),
            s("CL-CSIRT"),
            s("allowed"),
            0,
            s(""),
            s(""),
        ),
        (
            s("ADMIN"),
            s("member.register"),
            s("EE-MFA"),
            s("refused"),
            0,
            s(""),
            s("already_exists"),
        ),
        (
            s(""),
            s("request.unauthenticated"),
            s(""),
            s("refused"),
            0,
            s(""),
            s("unauthenticated"),
        ),
    ];
    assert_eq!(got, expected);
    // Certificate fingerprints and peers are recorded, also for a refused unknown certificate.
    let all = entries_after(&t, base).await;
    assert_eq!(all[11].cert_sha256, sha256_hex(&stranger.cert_der));
    assert_eq!((all[11].count, all[11].peer.as_str()), (1, "127.0.0.1"));
    assert_eq!(
        all[11].reason,
        "unauthenticated: submission.publish:certificate_unbound"
    );
    assert!(
        all.iter()
            .all(|e| e.peer.starts_with("127.0.0.1") && !e.at.is_empty())
    );
    // Reasons name the fields at fault, never the request's text.
    assert_eq!(
        all[1].reason,
        "invalid_argument: invalid_field (content.title)"
    );
    // The list entry names what it returned; the write entries carry their feed sequence.
    assert!(all[6].object_ids.contains(&clear.id));
    assert_eq!(all[0].feed_sequence, clear.sequence);

    // WhoAmI answers are not audited, its refusals are: an unbound certificate trying the hub.
    let after_first = all.last().unwrap().sequence;
    stranger_hub
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap_err();
    let suspended = wait_for(&t, base, |e| e.action == "member.suspend").await;
    assert_eq!(suspended.detail, "audit test", "the reason is kept");
    flush_noise(&t, 2).await;
    let who = wait_for(&t, after_first, |e| e.action == "request.unauthenticated").await;
    assert_eq!(
        (who.outcome.as_str(), who.reason.as_str(), who.count),
        (
            "refused",
            "unauthenticated: member.whoami:certificate_unbound",
            1
        )
    );
    assert_eq!(who.cert_sha256, sha256_hex(&stranger.cert_der));

    // A refused handshake is recorded with the fingerprint presented.
    let rogue = DevCa::generate("rogue")
        .unwrap()
        .issue(&LeafSpec::client("EE-MFA", 30))
        .unwrap();
    let rogue_sha = sha256_hex(&rogue.cert_der);
    if let Ok(ch) = common::connect(t.addr(), &t.ca.cert_pem, &rogue).await {
        let _ = pb::hub_client::HubClient::new(ch)
            .who_am_i(pb::WhoAmIRequest {})
            .await;
    }
    flush_noise(&t, 3).await;
    let hs = wait_for(&t, base, |e| e.action == "tls.handshake").await;
    assert_eq!(
        (hs.outcome.as_str(), hs.cert_sha256.as_str()),
        ("refused", rogue_sha.as_str())
    );
    // A client may retry the handshake: one entry counts them all.
    assert!(hs.count >= 1, "{hs:?}");
    assert_eq!(hs.reason, "unauthenticated: unknown_issuer");

    // Queries of the audit log are audited too.
    let q = wait_for(&t, base, |e| e.action == "audit.query").await;
    assert_eq!(q.member, "AUDITOR");
    // Non-auditors may not query.
    let mut not_auditor = AuditClient::new(t.channel("EE-MFA").await);
    assert_eq!(
        not_auditor
            .query(pb::AuditQuery::default())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    t.stop().await;
}

#[tokio::test]
async fn a_publisher_sees_who_read_or_received_its_submission_and_no_one_elses() {
    let t = TestHub::start().await;
    let mut feed = subscribe(&t, "EE-CERT", request(0)).await;
    let mut ee = t.hub("EE-MFA").await;
    let r = ee
        .publish(notice("TLP:GREEN", &[]))
        .await
        .unwrap()
        .into_inner();
    read_until(&mut feed, r.sequence, Duration::from_secs(20)).await;
    drop(feed); // the stream's deliveries are recorded when it ends
    // A subscriber that receives it from history (replay) is recorded as well.
    let mut replayed = subscribe(&t, "CL-CSIRT", request(0)).await;
    read_until(&mut replayed, r.sequence, Duration::from_secs(20)).await;
    drop(replayed);
    t.hub("CL-CSIRT")
        .await
        .get(GetRequest {
            id: r.id.clone(),
            revision: 0,
        })
        .await
        .unwrap();
    t.hub("CL-MINREL")
        .await
        .list(ListRequest::default())
        .await
        .unwrap();
    ee.get(GetRequest {
        id: r.id.clone(),
        revision: 0,
    })
    .await
    .unwrap(); // the publisher's own read is not listed

    for member in ["EE-CERT", "CL-CSIRT"] {
        wait_for(&t, 0, |e| e.action == "feed.deliver" && e.member == member).await;
    }
    let mut audit = AuditClient::new(t.channel("EE-MFA").await);
    let log = audit
        .access_log(pb::AccessLogRequest {
            submission_id: r.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen: Vec<_> = log
        .records
        .iter()
        .map(|a| (a.member.as_str(), a.via.as_str()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("CL-CSIRT", "feed"),
            ("CL-CSIRT", "get"),
            ("CL-MINREL", "list"),
            ("EE-CERT", "feed")
        ]
    );
    // Someone else's submission: not found, whether or not it exists.
    let mut other = AuditClient::new(t.channel("CL-MINREL").await);
    let e = other
        .access_log(pb::AccessLogRequest {
            submission_id: r.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    t.stop().await;
}

async fn export_lines(t: &TestHub) -> Vec<String> {
    let mut audit = AuditClient::new(t.channel("AUDITOR").await);
    let mut stream = audit
        .export(pb::ExportRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut lines = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        lines.push(serde_json::to_string(&item).unwrap());
    }
    lines
}

fn verify(t: &TestHub, lines: &[String]) -> pb::VerifyReport {
    verify_export(
        lines.iter().cloned().map(Ok),
        &t.store().audit_public_key(),
        None,
    )
    .unwrap()
}

#[tokio::test]
async fn tampering_in_the_store_is_found_and_checkpoints_survive_restarts() {
    let mut t = TestHub::start().await;
    let mut ee = t.hub("EE-MFA").await;
    for _ in 0..3 {
        ee.publish(notice("TLP:CLEAR", &[])).await.unwrap();
    }
    t.restart().await; // stopping signs a checkpoint
    let mut ee = t.hub("EE-MFA").await;
    for _ in 0..3 {
        ee.publish(notice("TLP:CLEAR", &[])).await.unwrap();
    }
    let lines = export_lines(&t).await;
    let report = verify(&t, &lines);
    assert!(report.ok && report.checkpoints >= 2, "{report:?}");
    let mut client = AuditClient::new(t.channel("AUDITOR").await);
    assert!(
        client
            .verify(pb::VerifyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ok
    );

    // Edit entry 4 directly in sled, with a valid frame checksum, while the hub is stopped.
    t.hub.take().unwrap().stop().await.unwrap();
    {
        let db = keyspace::open_raw(&t.config.data_dir).unwrap();
        let tree = db.open_tree(keyspace::TREE).unwrap();
        let key = Rec::Audit.key(&4u64.to_be_bytes());
        let raw = tree.get(&key).unwrap().unwrap();
        let mut entry: AuditEntry = cbm_hub::store::codec::unframe(&raw, String::new).unwrap();
        entry.outcome = "refused".into();
        tree.insert(key, cbm_hub::store::codec::frame(&entry))
            .unwrap();
        db.flush().unwrap();
    }
    // The edit is before the seal of the clean stop: the background check finds it...
    let names_entry_4 = |problems: &[String]| {
        problems
            .iter()
            .any(|p| p.contains("audit log") && p.contains("entry 4"))
    };
    t.hub = Some(cbm_hub::service::start(&t.config).await.unwrap());
    let mut integrity = t.store().integrity();
    let found = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        integrity.wait_for(|i| !i.problems.is_empty()),
    )
    .await
    .expect("the background check reports the edit")
    .unwrap()
    .problems
    .clone();
    assert!(names_entry_4(&found), "{found:?}");
    drop(integrity);
    t.hub.take().unwrap().stop().await.unwrap();
    // ...and the next start, which then checks everything, refuses to serve it...
    match cbm_hub::service::start(&t.config).await {
        Err(cbm_hub::service::StartError::Damaged(problems)) => {
            assert!(names_entry_4(&problems), "{problems:?}")
        }
        other => panic!("a tampered audit log must not start: {:?}", other.err()),
    }
    // ...and so does the Verify RPC when the start check is off.
    t.config.store.check_on_start = false;
    t.hub = Some(cbm_hub::service::start(&t.config).await.unwrap());
    let mut client = AuditClient::new(t.channel("AUDITOR").await);
    let report = client
        .verify(pb::VerifyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (report.ok, report.first_bad_entry),
        (false, 4),
        "{report:?}"
    );
    t.stop().await;
}

#[tokio::test]
async fn only_auditors_and_admins_may_export_or_verify() {
    let t = TestHub::start().await;
    let mut ee = AuditClient::new(t.channel("EE-MFA").await);
    assert_eq!(
        ee.export(pb::ExportRequest::default())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        ee.verify(pb::VerifyRequest {}).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let refused = wait_for(&t, 0, |e| {
        e.action == "audit.export" && e.outcome == "refused"
    })
    .await;
    assert_eq!(refused.member, "EE-MFA");
    let mut admin = AuditClient::new(t.channel("ADMIN").await);
    assert!(
        admin
            .verify(pb::VerifyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ok
    );
    t.stop().await;
}
