//! Revocation as PKIs ship it, end to end over mTLS: CRL files in PEM and DER, unusable ones
//! (empty, truncated, expired) refused at start with the file and reason and kept out at reload
//! (the previous CRLs stay, the failure is logged, counted and shown in health), a CA without
//! a CRL named at start and by `config check`, and revocation or suspension closing an idle
//! stream at once whatever its heartbeat.
mod common;

use std::{path::Path, time::Duration};

use cbm_hub::{
    pb::{self, WhoAmIRequest, feed_client::FeedClient, hub_client::HubClient},
    tls::devpki::{DevCa, Issued, LeafSpec},
};
use common::{TestHub, sha256_hex};
use rustls_pki_types::{CertificateRevocationListDer, pem::PemObject};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Replaces a file atomically, as a CRL refresh job should.
fn replace(path: &Path, bytes: impl AsRef<[u8]>) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn der_of(pem: &str) -> Vec<u8> {
    CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// True when the hub refuses `cert` (at the handshake, or on first use with TLS 1.3).
async fn refused(t: &TestHub, cert: &Issued) -> bool {
    match t.channel_with(cert).await {
        Err(_) => true,
        Ok(ch) => HubClient::new(ch).who_am_i(WhoAmIRequest {}).await.is_err(),
    }
}

/// Registers a subscriber bound to `cert`'s hash.
async fn register(t: &TestHub, id: &str, cert: &Issued) {
    let member = pb::Member {
        id: id.into(),
        state: "FI".into(),
        display_name: id.into(),
        roles: vec!["subscriber".into()],
        bindings: vec![pb::CertificateBinding {
            binding: Some(pb::certificate_binding::Binding::CertSha256(sha256_hex(
                &cert.cert_der,
            ))),
            ..Default::default()
        }],
        ..Default::default()
    };
    t.admin("ADMIN")
        .await
        .register_member(pb::RegisterMemberRequest {
            member: Some(member),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn crl_files_load_as_pem_or_der_and_unusable_ones_stop_the_start_naming_file_and_reason() {
    // A DER CRL (as most CAs publish it) in force from the start.
    let mut issued = None;
    let t = TestHub::start_with_ca(common::MEMBERS, |config, ca| {
        let revoked = ca.issue(&LeafSpec::client("FI-REVOKED", 30)).unwrap();
        let crl = ca.crl(std::slice::from_ref(&revoked.serial), 1, 7).unwrap();
        let path = config.tls.client_ca.with_file_name("ca.crl");
        std::fs::write(&path, der_of(&crl)).unwrap();
        config.tls.crls = vec![path];
        issued = Some((revoked, crl));
    })
    .await;
    let (revoked, pem) = issued.unwrap();
    register(&t, "FI-REVOKED", &revoked).await;
    assert!(refused(&t, &revoked).await, "revoked by the DER CRL");
    t.hub("EE-MFA")
        .await
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("others are unaffected");

    let der = der_of(&pem);
    let now = time::OffsetDateTime::now_utc();
    let expired =
        t.ca.crl_between(
            &[],
            1,
            now - time::Duration::days(8),
            now - time::Duration::days(1),
        )
        .unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.crl", vec![], "is empty"),
        (
            "cut.der",
            der[..der.len() - 10].to_vec(),
            "truncated or damaged",
        ),
        (
            "cut.pem",
            pem.as_bytes()[..pem.len() - 40].to_vec(),
            "malformed or truncated PEM",
        ),
        (
            "expired.pem",
            expired.into_bytes(),
            "expired: its nextUpdate",
        ),
    ];
    for (name, bytes, reason) in cases {
        let path = t.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let mut config = t.config.clone();
        config.tls.crls = vec![path.clone()];
        // The TLS files are read before the store is opened: the running hub is not touched.
        let e = match cbm_hub::service::start(&config).await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{name}: the hub started with an unusable CRL"),
        };
        assert!(
            e.contains(&path.display().to_string()) && e.contains(reason),
            "{name}: {e}"
        );
    }
    t.stop().await;
}

/// Waits (bounded) until the `cbm-hub.tls` health service reports `want`.
async fn tls_health_becomes(t: &TestHub, want: ServingStatus) {
    let mut health = HealthClient::new(t.channel("EE-MFA").await);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "cbm-hub.tls".into(),
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(r) = watch.message().await.unwrap() {
            if r.status == want as i32 {
                return;
            }
        }
        panic!("health watch ended");
    })
    .await
    .unwrap_or_else(|_| panic!("cbm-hub.tls never became {want:?}"));
}

/// The value of a metric line `name{labels} value` in the scrape, 0 if absent.
fn metric(t: &TestHub, series: &str) -> f64 {
    let hub = t.hub.as_ref().unwrap();
    let text = hub.metrics.render(&hub.store);
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_bad_crl_at_reload_keeps_the_previous_crls_and_is_logged_counted_and_shown_in_health() {
    let mut issued = None;
    let t = TestHub::start_with_ca(common::MEMBERS, |config, ca| {
        let revoked = ca.issue(&LeafSpec::client("FI-REVOKED", 30)).unwrap();
        let first = ca.crl(std::slice::from_ref(&revoked.serial), 1, 7).unwrap();
        let path = config.tls.client_ca.with_file_name("ca.crl.pem");
        std::fs::write(&path, &first).unwrap();
        config.tls.crls = vec![path.clone()];
        issued = Some((revoked, first, path));
    })
    .await;
    let (revoked, first, crl_path) = issued.unwrap();
    let good = t.ca.issue(&LeafSpec::client("FI-GOOD", 30)).unwrap();
    register(&t, "FI-REVOKED", &revoked).await;
    register(&t, "FI-GOOD", &good).await;
    tls_health_becomes(&t, ServingStatus::Serving).await;
    assert!(refused(&t, &revoked).await);
    assert!(!refused(&t, &good).await);
    let tls = t.hub.as_ref().unwrap().tls.clone();
    let next_update = metric(&t, "cbm_hub_crl_next_update_timestamp_seconds");
    assert!(next_update > time::OffsetDateTime::now_utc().unix_timestamp() as f64);

    // A failed refresh leaves an empty file, then a truncated one: both refused, the first CRL
    // stays in force.
    let der = der_of(&first);
    for (bytes, reason) in [
        (Vec::new(), "is empty"),
        (der[..der.len() / 2].to_vec(), "truncated or damaged"),
    ] {
        replace(&crl_path, &bytes);
        let e = tls
            .reload()
            .expect_err("an unusable CRL is refused")
            .to_string();
        assert!(e.contains("ca.crl.pem") && e.contains(reason), "{e}");
        let status = tls.status(time::OffsetDateTime::now_utc().unix_timestamp());
        assert!(
            status
                .failing
                .as_deref()
                .is_some_and(|f| f.contains(reason))
        );
        assert!(
            refused(&t, &revoked).await,
            "still revoked by the CRL in force"
        );
        assert!(!refused(&t, &good).await, "still accepted");
    }
    tls_health_becomes(&t, ServingStatus::NotServing).await;
    assert!(metric(&t, "cbm_hub_tls_reloads_total{outcome=\"refused\"}") >= 2.0);
    assert_eq!(metric(&t, "cbm_hub_tls_healthy"), 0.0);
    // The hub as a whole keeps serving.
    let overall = HealthClient::new(t.channel("EE-MFA").await)
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overall.status, ServingStatus::Serving as i32);

    // A current CRL (in DER this time) takes effect and clears the alarm.
    let second = t.ca.crl(std::slice::from_ref(&good.serial), 2, 7).unwrap();
    replace(&crl_path, der_of(&second));
    tls.reload().expect("a usable CRL loads");
    assert!(refused(&t, &good).await, "the new CRL is in force");
    tls_health_becomes(&t, ServingStatus::Serving).await;
    assert!(metric(&t, "cbm_hub_tls_reloads_total{outcome=\"applied\"}") >= 1.0);
    assert_eq!(metric(&t, "cbm_hub_tls_healthy"), 1.0);
    t.stop().await;
}

#[tokio::test]
async fn a_client_ca_without_a_crl_is_named_at_start_and_by_config_check() {
    let t = TestHub::start().await;
    let ministry = DevCa::generate("Ministry PKI").unwrap();
    let dir = t.dir.path();
    std::fs::write(
        dir.join("bundle.pem"),
        format!("{}{}", t.ca.cert_pem, ministry.cert_pem),
    )
    .unwrap();
    std::fs::write(dir.join("ca.crl.pem"), t.ca.crl(&[], 1, 7).unwrap()).unwrap();
    let mut config = t.config.clone();
    config.tls.client_ca = dir.join("bundle.pem");
    config.tls.crls = vec![dir.join("ca.crl.pem")];
    let e = match cbm_hub::service::start(&config).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("started with a CA whose revocation cannot be checked"),
    };
    assert!(
        e.contains("no CRL for client CA CN=Ministry PKI") && e.contains("tls.crls"),
        "{e}"
    );

    let toml = "listen = \"127.0.0.1:0\"\ndata_dir = \"check-data\"\n[tls]\nclient_ca = \"bundle.pem\"\ncert = \"server.pem\"\nkey = \"server-key.pem\"\ncrls = [\"ca.crl.pem\"]\n";
    std::fs::write(dir.join("hub.toml"), toml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cbm-hub"))
        .args(["config", "check", "--no-env"])
        .arg(dir.join("hub.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("error: tls.crls: no CRL for client CA CN=Ministry PKI"),
        "{stdout}"
    );
    // With the Ministry's CRL added, both the check and the start pass.
    std::fs::write(
        dir.join("ministry.crl"),
        der_of(&ministry.crl(&[], 1, 7).unwrap()),
    )
    .unwrap();
    let toml = std::fs::read_to_string(dir.join("hub.toml"))
        .unwrap()
        .replace("[\"ca.crl.pem\"]", "[\"ca.crl.pem\", \"ministry.crl\"]");
    std::fs::write(dir.join("hub.toml"), toml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cbm-hub"))
        .args(["config", "check", "--no-env"])
        .arg(dir.join("hub.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    t.stop().await;
}

/// Opens a `from_now` subscription with the longest heartbeat (300 s) and reads its opening
/// heartbeat, so the stream is known to be live and idle.
async fn idle_stream(
    channel: tonic::transport::Channel,
) -> tonic::Streaming<cbm_hub::feed::wire::FeedEvent> {
    let mut stream = FeedClient::new(channel)
        .subscribe(pb::SubscribeRequest {
            from_now: true,
            heartbeat_seconds: 300,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().expect("opening heartbeat");
    stream
}

/// Waits for the stream to end, bounded well under the 300 s heartbeat, and returns its status.
async fn ended(mut stream: tonic::Streaming<cbm_hub::feed::wire::FeedEvent>) -> tonic::Status {
    let started = std::time::Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("stream ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("an idle stream of a revoked member ends without waiting for its heartbeat");
    eprintln!("stream ended after {:?}: {status:?}", started.elapsed());
    status
}

#[tokio::test]
async fn suspension_and_unbinding_close_an_idle_stream_at_once() {
    let t = TestHub::start().await;
    let stream = idle_stream(t.channel("EE-CERT").await).await;
    t.admin("ADMIN")
        .await
        .suspend_member(pb::SetMemberStatusRequest {
            id: "EE-CERT".into(),
            reason: "test".into(),
        })
        .await
        .unwrap();
    let status = ended(stream).await;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("suspended"), "{status:?}");

    // Unbinding the certificate in use (after binding another, so the member keeps one).
    let old = &t.certs["CL-CSIRT"];
    let new = t.ca.issue(&LeafSpec::client("CL-CSIRT", 30)).unwrap();
    let mut admin = t.admin("ADMIN").await;
    let binding = |der: &[u8]| pb::CertificateBinding {
        binding: Some(pb::certificate_binding::Binding::CertSha256(sha256_hex(
            der,
        ))),
        ..Default::default()
    };
    admin
        .bind_certificate(pb::BindCertificateRequest {
            id: "CL-CSIRT".into(),
            binding: Some(binding(&new.cert_der)),
        })
        .await
        .unwrap();
    let stream = idle_stream(t.channel("CL-CSIRT").await).await;
    admin
        .unbind_certificate(pb::UnbindCertificateRequest {
            id: "CL-CSIRT".into(),
            binding: Some(binding(&old.cert_der)),
        })
        .await
        .unwrap();
    let status = ended(stream).await;
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    t.stop().await;
}

#[tokio::test]
async fn a_crl_revocation_closes_an_idle_stream_within_the_reload_poll() {
    let t = TestHub::start_with_ca(common::MEMBERS, |config, ca| {
        let path = config.tls.client_ca.with_file_name("ca.crl.pem");
        std::fs::write(&path, ca.crl(&[], 1, 7).unwrap()).unwrap();
        config.tls.crls = vec![path];
    })
    .await;
    let crl_path = t.config.tls.crls[0].clone();
    let cert = t.ca.issue(&LeafSpec::client("FI-IDLE", 30)).unwrap();
    register(&t, "FI-IDLE", &cert).await;
    let stream = idle_stream(t.channel_with(&cert).await.unwrap()).await;
    // No signal, no explicit reload: the hub's poll (every 200 ms here) finds the new file.
    replace(
        &crl_path,
        t.ca.crl(std::slice::from_ref(&cert.serial), 2, 7).unwrap(),
    );
    let status = ended(stream).await;
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().to_lowercase().contains("revoked"),
        "{status:?}"
    );
    t.stop().await;
}
