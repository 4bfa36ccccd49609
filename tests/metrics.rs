//! The Prometheus endpoint of a real hub: scraped over HTTP, parsed, and the counters checked
//! to move by exactly what the test did. Also: the health service follows storage health.
mod common;

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use cbm_hub::pb::{PublishRequest, feed_client::FeedClient};
use common::{MEMBERS, TestHub, feed, samples};
use tonic::{
    Code,
    transport::{Certificate, ClientTlsConfig, Endpoint, Identity},
};

/// One scrape: series ("name{k=\"v\",...}" with labels sorted) to value.
#[derive(Debug)]
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    /// Parses the Prometheus text format: comment lines, then `name{labels} value` lines.
    fn parse(text: &str) -> Scrape {
        let mut series = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (key, value) = line.rsplit_once(' ').expect("series line");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
            };
            let (name, labels) = match key.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}').expect("closing brace")),
                None => (key, ""),
            };
            let mut pairs: Vec<&str> = if labels.is_empty() {
                vec![]
            } else {
                labels.split(',').collect()
            };
            pairs.sort_unstable();
            series.insert(format!("{name}{{{}}}", pairs.join(",")), value);
        }
        Scrape(series)
    }

    /// The value of `name` with exactly `labels`; 0 when absent (a counter not yet created).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        pairs.sort_unstable();
        self.0
            .get(&format!("{name}{{{}}}", pairs.join(",")))
            .copied()
            .unwrap_or(0.0)
    }

    /// The sum of `name` over every label set.
    fn sum(&self, name: &str) -> f64 {
        self.0
            .iter()
            .filter(|(k, _)| k.split('{').next() == Some(name))
            .map(|(_, v)| v)
            .sum()
    }
}

async fn scrape(addr: SocketAddr) -> Scrape {
    let (status, content_type, body) = common::http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    Scrape::parse(&body)
}

async fn hub_with_metrics(
    adjust: impl FnOnce(&mut cbm_hub::config::Config),
) -> (TestHub, SocketAddr) {
    let t = TestHub::start_configured(MEMBERS, |c| {
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        adjust(c);
    })
    .await;
    let addr = t
        .hub
        .as_ref()
        .unwrap()
        .metrics_addr
        .expect("metrics endpoint");
    (t, addr)
}

fn publish_request(title: &str) -> PublishRequest {
    PublishRequest {
        content: Some(samples::envelope(
            title,
            "TLP:CLEAR",
            samples::policy_document(),
        )),
        ..Default::default()
    }
}

/// A notice with a 128 KiB attachment.
fn big_request(i: u8) -> PublishRequest {
    use sha2::Digest;
    let data = vec![i; 128 * 1024];
    let mut c = samples::envelope(&format!("big {i}"), "TLP:CLEAR", samples::notice());
    c.attachments = vec![cbm_hub::pb::Attachment {
        name: "a.bin".into(),
        media_type: "application/octet-stream".into(),
        sha256: hex::encode(sha2::Sha256::digest(&data)),
        content: data.into(),
    }];
    PublishRequest {
        content: Some(c),
        ..Default::default()
    }
}

/// Polls the endpoint until `ready` holds of a scrape (bounded).
async fn scrape_until(addr: SocketAddr, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    for _ in 0..100 {
        let s = scrape(addr).await;
        if ready(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the metrics did not reach the expected state");
}

#[tokio::test]
async fn counters_move_by_exactly_what_happened() {
    let (t, addr) = hub_with_metrics(|_| {}).await;
    let before = scrape(addr).await;
    assert_eq!(before.get("cbm_hub_subscribers", &[]), 0.0);
    assert_eq!(before.get("cbm_hub_storage_healthy", &[]), 1.0);

    // A subscriber following the live feed.
    let mut stream = FeedClient::new(t.channel("CL-CSIRT").await)
        .subscribe(cbm_hub::pb::SubscribeRequest {
            from_now: true,
            heartbeat_seconds: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let during = scrape_until(addr, |s| s.get("cbm_hub_subscribers", &[]) == 1.0).await;
    assert_eq!(during.get("cbm_hub_subscribers", &[]), 1.0);

    // One publish accepted, delivered live to the subscriber.
    let accepted = t
        .hub("EE-MFA")
        .await
        .publish(publish_request("metrics"))
        .await
        .unwrap()
        .into_inner();
    let seen = feed::read_until(&mut stream, accepted.sequence, Duration::from_secs(10)).await;
    assert_eq!(feed::sequences(&seen), vec![accepted.sequence]);

    // One refusal: a subscriber-only member may not publish.
    let refused = t
        .hub("CL-CSIRT")
        .await
        .publish(publish_request("not allowed"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // The subscriber leaves; its deliveries are audited as it ends.
    drop(stream);
    scrape_until(addr, |s| s.get("cbm_hub_subscribers", &[]) == 0.0).await;
    // Everything queued for the writer (audit entries) is applied once a checkpoint returns.
    t.store().checkpoint().await.unwrap();
    let after = scrape(addr).await;

    let delta =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    let publishes = "cbm_hub_publishes_total";
    let pd = ("kind", "policy_document");
    let op = ("operation", "publish");
    assert_eq!(delta(publishes, &[op, pd, ("outcome", "accepted")]), 1.0);
    assert_eq!(delta(publishes, &[op, pd, ("outcome", "refused")]), 1.0);
    assert_eq!(after.sum(publishes) - before.sum(publishes), 2.0);

    let refusals = "cbm_hub_refusals_total";
    assert_eq!(
        delta(
            refusals,
            &[("code", "permission_denied"), ("reason", "missing_role")]
        ),
        1.0,
        "{after:?}"
    );
    assert_eq!(after.sum(refusals) - before.sum(refusals), 1.0);

    assert_eq!(
        delta("cbm_hub_deliveries_total", &[("source", "live")]),
        1.0
    );
    assert_eq!(
        after.sum("cbm_hub_deliveries_total") - before.sum("cbm_hub_deliveries_total"),
        1.0
    );
    assert_eq!(after.get("cbm_hub_subscribers", &[]), 0.0);
    assert_eq!(after.sum("cbm_hub_subscriber_lags_total"), 0.0);

    // feed.subscribe, submission.publish, the refused publish, feed.deliver.
    assert_eq!(delta("cbm_hub_audit_entries_appended_total", &[]), 4.0);
    assert_eq!(
        after.get("cbm_hub_audit_log_entries", &[]),
        t.store().audit_len() as f64
    );
    assert_eq!(
        after.get("cbm_hub_feed_head_sequence", &[]),
        accepted.sequence as f64
    );
    assert!(after.get("cbm_hub_storage_size_bytes", &[]) > 0.0);

    let publish = ("method", "cbm.v1.Hub/Publish");
    let responses = "cbm_hub_rpc_responses_total";
    assert_eq!(delta(responses, &[publish, ("code", "ok")]), 1.0);
    assert_eq!(
        delta(responses, &[publish, ("code", "permission_denied")]),
        1.0
    );
    assert_eq!(
        delta(
            responses,
            &[("method", "cbm.v1.Feed/Subscribe"), ("code", "cancelled")]
        ),
        1.0,
        "{after:?}"
    );
    assert_eq!(delta("cbm_hub_rpc_duration_seconds_count", &[publish]), 2.0);
    assert_eq!(
        delta(
            "cbm_hub_rpc_duration_seconds_bucket",
            &[publish, ("le", "+Inf")]
        ),
        2.0
    );

    assert!(after.get("cbm_hub_storage_free_bytes", &[]) > 0.0);
    assert_eq!(after.get("cbm_hub_storage_writable", &[]), 1.0);

    // A bare connect-and-close is a refused handshake: counted as a refusal and as
    // unauthenticated noise for the audit log's aggregate entries.
    drop(tokio::net::TcpStream::connect(t.addr()).await.unwrap());
    let noisy = scrape_until(addr, |s| {
        s.sum("cbm_hub_audit_noise_events_total") > after.sum("cbm_hub_audit_noise_events_total")
    })
    .await;
    assert_eq!(
        noisy.sum("cbm_hub_audit_noise_events_total")
            - after.sum("cbm_hub_audit_noise_events_total"),
        1.0
    );
    assert_eq!(
        noisy.get(
            refusals,
            &[("code", "unauthenticated"), ("reason", "tls_handshake")]
        ) - after.get(
            refusals,
            &[("code", "unauthenticated"), ("reason", "tls_handshake")]
        ),
        1.0
    );

    // Anything but /metrics is not found.
    assert_eq!(common::http_get(addr, "/").await.0, 404);
    t.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_counts_as_lagging_until_it_catches_up() {
    // A live buffer of one event: a subscriber that does not read falls behind at once.
    let (t, addr) = hub_with_metrics(|c| c.store.live_buffer = 1).await;
    // HTTP/2 windows of 64 KiB (hyper's client defaults are megabytes): the connection holds
    // less than one event the subscriber has not read.
    let cert = &t.certs["CL-CSIRT"];
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&t.ca.cert_pem))
        .identity(Identity::from_pem(&cert.cert_pem, &cert.key_pem))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://{}", t.addr()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut stream = FeedClient::new(channel)
        .subscribe(feed::request(0))
        .await
        .unwrap()
        .into_inner();
    let mut hub = t.hub("EE-MFA").await;
    let mut last = 0;
    // More than the subscriber's buffers hold while it does not read: the HTTP/2 window takes
    // less than one of these, the channel to the connection 32 of them.
    for i in 0..40 {
        last = hub
            .publish(big_request(i))
            .await
            .unwrap()
            .into_inner()
            .sequence;
    }
    let seen = feed::read_until(&mut stream, last, Duration::from_secs(30)).await;
    assert_eq!(seen.len(), 40, "every change delivered once, lag or not");
    let s = scrape_until(addr, |s| s.get("cbm_hub_lagging_subscribers", &[]) == 0.0).await;
    assert!(s.sum("cbm_hub_subscriber_lags_total") >= 1.0, "{s:?}");
    assert_eq!(s.sum("cbm_hub_deliveries_total"), 40.0);
    assert!(
        s.get("cbm_hub_deliveries_total", &[("source", "replay")]) >= 1.0,
        "{s:?}"
    );
    drop(stream);
    t.stop().await;
}

#[tokio::test]
async fn health_follows_storage_and_the_endpoint_is_off_by_default() {
    let t = TestHub::start().await;
    assert!(t.hub.as_ref().unwrap().metrics_addr.is_none());
    let mut health = tonic_health::pb::health_client::HealthClient::new(t.channel("AUDITOR").await);
    let mut watch = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: "cbm.v1.Hub".into(),
        })
        .await
        .unwrap()
        .into_inner();
    use tonic_health::pb::health_check_response::ServingStatus;
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
    // `storage`: whether changes are accepted (the disk reserve, a storage failure).
    let mut storage = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: "storage".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        storage.message().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );
    // Storage fails (as after an I/O error): health turns NOT_SERVING, then the hub stops.
    let _ = t
        .store()
        .failure_cell()
        .set("injected storage failure".into());
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("health changed in time");
    match next {
        Ok(Some(r)) => assert_eq!(r.status(), ServingStatus::NotServing),
        other => panic!("expected NOT_SERVING before the hub stopped, got {other:?}"),
    }
    match storage.message().await {
        Ok(Some(r)) => assert_eq!(r.status(), ServingStatus::NotServing),
        other => panic!("expected storage NOT_SERVING, got {other:?}"),
    }
}

/// The binary: `--metrics-listen` on the command line, the address announced on stdout, and
/// `--log-json` turning every log line into one JSON object.
#[tokio::test]
async fn serve_flags_enable_metrics_and_json_logs() {
    use std::io::{BufRead, BufReader, Read};
    let home = tempfile::tempdir().unwrap();
    common::process::init(home.path());
    let mut child = std::process::Command::new(common::process::BIN)
        .arg("--home")
        .arg(home.path())
        .args(["--log-json", "serve", "--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut metrics = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while metrics.is_none() && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100))
            && let Some(rest) = line.strip_prefix("cbm-hub metrics on http://")
        {
            metrics = rest.strip_suffix("/metrics").map(|a| a.parse().unwrap());
        }
    }
    let addr: SocketAddr = metrics.expect("serve announced its metrics address");
    let s = scrape(addr).await;
    assert_eq!(s.get("cbm_hub_storage_healthy", &[]), 1.0);
    let _ = child.kill();
    let _ = child.wait();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    let lines: Vec<&str> = logs.lines().collect();
    assert!(!lines.is_empty(), "serve logged nothing");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
}
