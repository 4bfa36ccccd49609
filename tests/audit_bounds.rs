//! A log nobody can flood, over real mTLS: hostile request fields enter entries bounded, for
//! members, suspended members, members over their quota and unbound certificates alike; every
//! entry stays deliverable by Query and Export; and 10,000 bad handshakes leave a few hundred
//! bytes per source.
mod common;

use std::time::{Duration, Instant};

use cbm_hub::{
    audit::{bound::MAX_ENTRY_BYTES, noise},
    pb::{self, AuditEntry, GetRequest, audit_client::AuditClient, feed_client::FeedClient},
    tls::devpki::{DevCa, LeafSpec},
};
use common::{MEMBERS, TestHub, sha256_hex};
use prost::Message;

/// Waits until `n` unauthenticated refusals were noted in all, then writes their entries.
async fn flush_noise(t: &TestHub, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while t.store().noise().noted() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} refusals noted",
            t.store().noise().noted()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.store().flush_noise().await;
}

/// Every entry, through Query pages (which must all be deliverable) after the writer applied
/// what was queued.
async fn query_all(t: &TestHub) -> Vec<AuditEntry> {
    t.store().checkpoint().await.unwrap();
    let mut audit = AuditClient::new(t.channel("AUDITOR").await);
    let mut req = pb::AuditQuery {
        page_size: 1000,
        ..Default::default()
    };
    let mut out = Vec::new();
    loop {
        let page = audit.query(req.clone()).await.unwrap().into_inner();
        out.extend(page.entries);
        if page.next_page_token.is_empty() {
            return out;
        }
        req.page_token = page.next_page_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fields_enter_the_log_bounded_whoever_sends_them() {
    let t = TestHub::start_configured(MEMBERS, |c| {
        c.limits.member_requests_per_second = 1;
        c.limits.member_request_burst = 20;
    })
    .await;
    let huge_id = "\u{1b}[2J".repeat(1_000_000); // 4 MB of terminal escapes
    let get = || GetRequest {
        id: huge_id.clone(),
        revision: 0,
    };
    // A member, a member over its quota, a suspended member and an unbound certificate.
    let mut csirt = t.hub("CL-CSIRT").await;
    let e = csirt.get(get()).await.unwrap_err();
    assert!(e.code() != tonic::Code::Ok);
    let mut minrel = t.hub("CL-MINREL").await;
    let mut quota_refusals = 0;
    for _ in 0..40 {
        if let Err(e) = minrel.get(get()).await
            && e.code() == tonic::Code::ResourceExhausted
        {
            quota_refusals += 1;
        }
    }
    assert!(quota_refusals > 0);
    t.admin("ADMIN")
        .await
        .suspend_member(pb::SetMemberStatusRequest {
            id: "EE-CERT".into(),
            reason: "x\u{7}".repeat(5_000),
        })
        .await
        .unwrap_err(); // a reason over its limit is refused, and audited bounded
    t.admin("ADMIN")
        .await
        .suspend_member(pb::SetMemberStatusRequest {
            id: "EE-CERT".into(),
            reason: "bounds test".into(),
        })
        .await
        .unwrap();
    let e = t.hub("EE-CERT").await.get(get()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    let stranger = t.ca.issue(&LeafSpec::client("XX-NOBODY", 30)).unwrap();
    let mut stranger_hub = pb::hub_client::HubClient::new(t.channel_with(&stranger).await.unwrap());
    stranger_hub.get(get()).await.unwrap_err();
    // Feed filter details from a member: long, escaped, many.
    let mut feed = FeedClient::new(t.channel("CL-CSIRT").await);
    let filters = pb::SubscribeRequest {
        kinds: (0..500)
            .map(|i| format!("{i}\"\u{1b}]0;{}", "k".repeat(2000)))
            .collect(),
        states: vec!["\u{0}".repeat(100_000)],
        ..Default::default()
    };
    let _ = feed.subscribe(filters).await;
    flush_noise(&t, 1).await;

    let entries = query_all(&t).await;
    for e in &entries {
        let size = e.encoded_len();
        assert!(
            size <= MAX_ENTRY_BYTES,
            "entry {} is {size} bytes",
            e.sequence
        );
        let fields = [
            &e.member,
            &e.cert_sha256,
            &e.peer,
            &e.action,
            &e.object_id,
            &e.label,
            &e.outcome,
            &e.reason,
            &e.detail,
        ];
        for f in fields.into_iter().chain(&e.object_ids) {
            assert!(
                !f.chars().any(char::is_control),
                "entry {}: {f:.200}",
                e.sequence
            );
        }
    }
    let gets: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "submission.get")
        .collect();
    assert!(gets.len() >= 3, "{gets:?}");
    let marker = format!(
        "invalid id, 4000000 bytes, sha256:{}",
        sha256_hex(huge_id.as_bytes())
    );
    for e in &gets {
        assert_eq!(e.object_id, marker, "{e:?}");
        assert!(e.reason.len() < 100, "{}", e.reason);
    }
    let members: Vec<_> = gets
        .iter()
        .map(|e| (e.member.as_str(), e.reason.as_str()))
        .collect();
    assert!(
        members.contains(&("CL-MINREL", "resource_exhausted: request_quota")),
        "{members:?}"
    );
    assert!(
        members.contains(&("EE-CERT", "permission_denied: member_suspended")),
        "{members:?}"
    );
    // The unbound certificate's request is counted into an aggregate entry.
    let unbound = entries
        .iter()
        .find(|e| e.action == noise::UNAUTHENTICATED)
        .expect("aggregate entry");
    assert_eq!(unbound.cert_sha256, sha256_hex(&stranger.cert_der));
    assert_eq!(
        unbound.reason,
        "unauthenticated: submission.get:certificate_unbound"
    );
    let sub = entries
        .iter()
        .find(|e| e.action == "feed.subscribe")
        .unwrap();
    assert!(
        sub.detail.len() < 1200 && sub.detail.contains("and 492 more"),
        "{}",
        sub.detail
    );
    let refused_suspend = entries
        .iter()
        .find(|e| e.action == "member.suspend" && e.outcome == "refused")
        .unwrap();
    assert_eq!(
        refused_suspend.reason,
        "invalid_argument: invalid_field (reason)"
    );
    // The export delivers every entry too, and verifies.
    let mut audit = AuditClient::new(t.channel("AUDITOR").await);
    let mut stream = audit
        .export(pb::ExportRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut lines = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        lines.push(Ok(serde_json::to_string(&item).unwrap()));
    }
    let report =
        cbm_hub::audit::verify_export(lines.into_iter(), &t.store().audit_public_key(), None)
            .unwrap();
    assert!(
        report.ok && report.entries >= entries.len() as u64 - 1,
        "{report:?}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_bad_handshakes_add_a_few_hundred_bytes_per_source() {
    // One interval for the whole test: the test writes the aggregate entries itself.
    let t = TestHub::start_configured(MEMBERS, |c| {
        c.audit_noise_interval = Duration::from_secs(3600)
    })
    .await;
    let before = query_all(&t).await.last().map_or(0, |e| e.sequence);
    let addr = t.addr();
    let started = Instant::now();
    // Bare TCP connect-and-close, in batches so the hub's accept loop keeps up.
    for batch in 0..10u64 {
        for _ in 0..1000 {
            drop(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while t.store().noise().noted() < (batch + 1) * 1000 {
            assert!(Instant::now() < deadline, "handshakes not noted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // Full TLS handshakes with a certificate of an unknown CA, and requests on an unbound one.
    let rogue = DevCa::generate("rogue")
        .unwrap()
        .issue(&LeafSpec::client("EE-MFA", 30))
        .unwrap();
    for _ in 0..100 {
        if let Ok(ch) = common::connect(addr, &t.ca.cert_pem, &rogue).await {
            let _ = pb::hub_client::HubClient::new(ch)
                .who_am_i(pb::WhoAmIRequest {})
                .await;
        }
    }
    let stranger = t.ca.issue(&LeafSpec::client("XX-NOBODY", 30)).unwrap();
    let mut stranger_hub = pb::hub_client::HubClient::new(t.channel_with(&stranger).await.unwrap());
    for _ in 0..100 {
        stranger_hub
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .unwrap_err();
    }
    flush_noise(&t, 10_200).await;
    let elapsed = started.elapsed();

    let added: Vec<AuditEntry> = query_all(&t)
        .await
        .into_iter()
        .filter(|e| e.sequence > before && e.action != "audit.query")
        .collect();
    let noted = t.store().noise().noted();
    let bytes: Vec<usize> = added.iter().map(|e| e.encoded_len()).collect();
    eprintln!(
        "{noted} unauthenticated refusals in {elapsed:?} -> {} entries, {} bytes ({:?} per source)",
        added.len(),
        bytes.iter().sum::<usize>(),
        bytes
    );
    // One entry per source and certificate: the bare connections, the rogue certificate, the
    // unbound one.
    assert_eq!(added.len(), 3, "{added:#?}");
    assert_eq!(added.iter().map(|e| e.count).sum::<u64>(), noted);
    let bare = added.iter().find(|e| e.cert_sha256.is_empty()).unwrap();
    assert!(
        bare.count >= 10_000 && bare.reason == "unauthenticated: connection_closed",
        "{bare:?}"
    );
    assert!(
        added
            .iter()
            .any(|e| e.cert_sha256 == sha256_hex(&rogue.cert_der))
    );
    assert!(
        added
            .iter()
            .any(|e| e.cert_sha256 == sha256_hex(&stranger.cert_der) && e.count == 100)
    );
    assert!(bytes.iter().all(|b| *b < 400), "{bytes:?}");
    t.stop().await;
}
