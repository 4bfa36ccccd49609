//! A start in time proportional to what changed: a clean stop seals the store and the next
//! start reads nothing before the seal; after a SIGKILL there is no seal, and the start reads
//! only the tail after the checked mark the background check left; the full check then runs
//! in the background and reports through health and metrics.
mod common;

use std::{collections::HashMap, net::SocketAddr, process::Command, time::Duration};

use cbm_hub::{pb::GetRequest, service};
use common::{
    TestHub,
    process::{HubProcess, init},
    samples,
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Publishes `n` notices as `member`; returns their (id, sequence).
async fn publish_n(
    client: &mut cbm_hub::pb::hub_client::HubClient<tonic::transport::Channel>,
    n: usize,
) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for i in 0..n {
        let c = samples::envelope(&format!("tail {i}"), "TLP:CLEAR", samples::notice());
        let r = common::publish_on(client, c).await;
        out.push((r.id, r.sequence));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_seals_and_the_next_start_reads_nothing_before_the_seal() {
    let mut t = TestHub::start().await;
    let mut ee = t.hub("EE-MFA").await;
    let published = publish_n(&mut ee, 5).await;
    drop(ee);
    t.restart().await;

    // Nothing was written after the seal: the start read no event and no audit entry.
    let start = t.store().integrity_now();
    assert_eq!(
        (start.start, start.start_events, start.start_audit_entries),
        ("sealed", 0, 0),
        "{start:?}"
    );
    let hub = t.hub.as_ref().unwrap();
    let metrics = hub.metrics.render(&hub.store);
    for line in [
        "cbm_hub_start_check{start=\"sealed\"} 1",
        "cbm_hub_start_check_events 0",
        "cbm_hub_start_check_audit_entries 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }

    // The full check follows in the background: everything intact, health SERVING, and the
    // checked mark covers the feed.
    let mut integrity = t.store().integrity();
    let done = tokio::time::timeout(
        Duration::from_secs(60),
        integrity.wait_for(|i| i.passes >= 1 || !i.problems.is_empty()),
    )
    .await
    .expect("the background check completes")
    .unwrap()
    .clone();
    assert!(done.problems.is_empty(), "{:?}", done.problems);
    assert!(done.checked_events >= published[4].1, "{done:?}");
    let status = HealthClient::new(t.channel("CL-CSIRT").await)
        .check(HealthCheckRequest {
            service: service::INTEGRITY_HEALTH.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    let mut reader = t.hub("CL-CSIRT").await;
    assert_readable_at(&mut reader, &published).await;
    t.stop().await;
}

/// The figures of a Prometheus text page, by series (name and labels as printed).
async fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let (status, _, body) = common::http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

/// Scrapes until `ready` holds (bounded: 60 s).
async fn scrape_until(
    addr: SocketAddr,
    ready: impl Fn(&HashMap<String, f64>) -> bool,
) -> HashMap<String, f64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let m = scrape(addr).await;
        if ready(&m) {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metrics never got there: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn get(m: &HashMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("{series} missing: {m:?}"))
}

/// The background check has passed once, without damage.
fn checked(m: &HashMap<String, f64>) -> bool {
    m.get("cbm_hub_integrity_check_passes")
        .is_some_and(|p| *p >= 1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sigkill_the_start_reads_only_the_tail_after_the_checked_mark() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hub");
    init(&home);
    // No tail passes during the test: the mark stays where the full pass left it.
    let args = [
        "--metrics-listen",
        "127.0.0.1:0",
        "--set",
        "store.background_check_interval_s=3600",
    ];
    let hub = HubProcess::start_with(&home, &args);
    let m = scrape_until(hub.metrics.unwrap(), checked).await;
    assert_eq!(get(&m, "cbm_hub_integrity_problems"), 0.0);
    let mark = get(&m, "cbm_hub_integrity_checked_events") as u64;
    let audit_mark = get(&m, "cbm_hub_integrity_checked_audit_entries") as u64;
    let mut ee = hub.hub("EE-MFA").await;
    let published = publish_n(&mut ee, 5).await;
    let seqs: Vec<u64> = published.iter().map(|p| p.1).collect();
    assert_eq!(seqs, (mark + 1..=mark + 5).collect::<Vec<_>>());
    hub.kill();

    // No seal (the start deleted it); the tail after the mark is the five events.
    let hub = HubProcess::start_with(&home, &args);
    let m = scrape(hub.metrics.unwrap()).await;
    assert_eq!(get(&m, "cbm_hub_start_check{start=\"checked\"}"), 1.0);
    assert_eq!(get(&m, "cbm_hub_start_check_events"), 5.0);
    let entries = get(&m, "cbm_hub_start_check_audit_entries") as u64;
    assert!(entries >= 5, "the publishes' audit entries: {entries}");
    let m = scrape_until(hub.metrics.unwrap(), checked).await;
    assert_eq!(get(&m, "cbm_hub_integrity_problems"), 0.0);
    assert!(get(&m, "cbm_hub_integrity_checked_events") as u64 >= mark + 5);
    assert!(get(&m, "cbm_hub_integrity_checked_audit_entries") as u64 >= audit_mark + entries);
    let mut reader = hub.hub("CL-CSIRT").await;
    assert_readable_at(&mut reader, &published).await;

    // SIGTERM: the serve shutdown path seals; the next start reads nothing.
    let mut hub = hub;
    let term = Command::new("kill")
        .args(["-TERM", &hub.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = hub.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "serve did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
    let hub = HubProcess::start_with(&home, &args);
    let m = scrape(hub.metrics.unwrap()).await;
    assert_eq!(get(&m, "cbm_hub_start_check{start=\"sealed\"}"), 1.0);
    assert_eq!(get(&m, "cbm_hub_start_check_events"), 0.0);
    assert_eq!(get(&m, "cbm_hub_start_check_audit_entries"), 0.0);
    hub.kill();
}

/// Each acknowledged publication reads back at the sequence its publisher was told.
async fn assert_readable_at(
    reader: &mut cbm_hub::pb::hub_client::HubClient<tonic::transport::Channel>,
    published: &[(String, u64)],
) {
    for (id, seq) in published {
        let s = reader
            .get(GetRequest {
                id: id.clone(),
                revision: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(s.sequence, *seq);
    }
}
