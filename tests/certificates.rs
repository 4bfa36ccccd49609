//! Certificates the handshake must refuse, each tested: none, unknown CA, expired, not yet
//! valid, without clientAuth, revoked by a CRL.
mod common;

use cbm_hub::{
    pb::{WhoAmIRequest, hub_client::HubClient},
    tls::devpki::{Issued, LeafSpec},
};
use common::{TestHub, sha256_hex};
use time::{Duration, OffsetDateTime};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// True when the hub refuses the connection (at the handshake, or on first use: TLS 1.3
/// clients learn of a refused certificate with the first response).
async fn refused(t: &TestHub, cert: &Issued) -> bool {
    match t.channel_with(cert).await {
        Err(_) => true,
        Ok(ch) => HubClient::new(ch).who_am_i(WhoAmIRequest {}).await.is_err(),
    }
}

/// Registers `cert` for a fresh member, so that only the TLS layer can refuse it.
async fn register(t: &TestHub, id: &str, cert: &Issued) {
    let mut admin = t.admin("ADMIN").await;
    let member = cbm_hub::pb::Member {
        id: id.into(),
        state: "FI".into(),
        display_name: id.into(),
        roles: vec!["subscriber".into()],
        bindings: vec![cbm_hub::pb::CertificateBinding {
            binding: Some(cbm_hub::pb::certificate_binding::Binding::CertSha256(
                sha256_hex(&cert.cert_der),
            )),
            note: String::new(),
            ..Default::default()
        }],
        ..Default::default()
    };
    admin
        .register_member(cbm_hub::pb::RegisterMemberRequest {
            member: Some(member),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_handshake_refuses_bad_certificates_even_when_bound() {
    let t = TestHub::start().await;
    let now = OffsetDateTime::now_utc();

    let mut expired = LeafSpec::client("FI-EXPIRED", 1);
    expired.not_before = now - Duration::days(30);
    expired.not_after = now - Duration::days(1);
    let mut future = LeafSpec::client("FI-FUTURE", 30);
    future.not_before = now + Duration::days(1);
    let mut no_client_auth = LeafSpec::client("FI-NOAUTH", 30);
    no_client_auth.client_auth = false;

    for (id, spec) in [
        ("FI-EXPIRED", expired),
        ("FI-FUTURE", future),
        ("FI-NOAUTH", no_client_auth),
    ] {
        let cert = t.ca.issue(&spec).unwrap();
        register(&t, id, &cert).await;
        assert!(
            refused(&t, &cert).await,
            "{id} must be refused at the handshake"
        );
    }
    // The control: a good certificate registered the same way works.
    let good = t.ca.issue(&LeafSpec::client("FI-GOOD", 30)).unwrap();
    register(&t, "FI-GOOD", &good).await;
    assert!(!refused(&t, &good).await);
    t.stop().await;
}

#[tokio::test]
async fn no_client_certificate_is_refused() {
    let t = TestHub::start().await;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&t.ca.cert_pem))
        .domain_name("localhost");
    let result = Endpoint::from_shared(format!("https://{}", t.addr()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await;
    let refused = match result {
        Err(_) => true,
        Ok(ch) => HubClient::new(ch).who_am_i(WhoAmIRequest {}).await.is_err(),
    };
    assert!(refused);
    t.stop().await;
}

#[tokio::test]
async fn a_certificate_revoked_by_the_crl_is_refused() {
    let mut t = TestHub::start().await;
    let revoked = t.ca.issue(&LeafSpec::client("FI-REVOKED", 30)).unwrap();
    register(&t, "FI-REVOKED", &revoked).await;
    assert!(!refused(&t, &revoked).await, "accepted before revocation");
    let crl =
        t.ca.crl(std::slice::from_ref(&revoked.serial), 1, 7)
            .unwrap();
    let crl_path = t.dir.path().join("ca.crl.pem");
    std::fs::write(&crl_path, crl).unwrap();
    t.config.tls.crls = vec![crl_path];
    t.restart().await;
    assert!(refused(&t, &revoked).await, "refused after revocation");
    // Others are unaffected.
    let mut ee = t.hub("EE-MFA").await;
    ee.who_am_i(WhoAmIRequest {}).await.unwrap();
    t.stop().await;
}

#[tokio::test]
async fn revocation_takes_effect_without_a_restart_on_open_connections_and_streams() {
    let mut t = TestHub::start().await;
    let crl_path = t.dir.path().join("ca.crl.pem");
    std::fs::write(&crl_path, t.ca.crl(&[], 1, 7).unwrap()).unwrap();
    t.config.tls.crls = vec![crl_path.clone()];
    t.restart().await;
    let cert = t.ca.issue(&LeafSpec::client("FI-LATER", 30)).unwrap();
    register(&t, "FI-LATER", &cert).await;

    // An open connection and an open stream of the member.
    let channel = t.channel_with(&cert).await.unwrap();
    let mut hub = HubClient::new(channel.clone());
    hub.who_am_i(WhoAmIRequest {}).await.unwrap();
    let mut feed = cbm_hub::pb::feed_client::FeedClient::new(channel);
    let mut stream = feed
        .subscribe(common::feed::request(0))
        .await
        .unwrap()
        .into_inner();

    // Revoke by replacing the CRL file: no restart, no signal.
    std::fs::write(
        &crl_path,
        t.ca.crl(std::slice::from_ref(&cert.serial), 2, 7).unwrap(),
    )
    .unwrap();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("stream ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the open stream is closed within a bounded time");
    assert_eq!(ended.code(), tonic::Code::Unauthenticated, "{ended:?}");
    // The open connection's next request is refused, and so is a new connection.
    let e = hub.who_am_i(WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    assert!(
        e.message().contains("no longer accepted"),
        "{}",
        e.message()
    );
    assert!(refused(&t, &cert).await);
    // Other members are unaffected.
    t.hub("EE-MFA")
        .await
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap();
    t.stop().await;
}

/// Runs openssl with `args` in `dir`; panics with its output on failure.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn certificates_made_with_openssl_work_like_generated_ones() {
    let mut t = TestHub::start().await;
    let dir = t.dir.path().join("openssl");
    std::fs::create_dir(&dir).unwrap();
    // A separate CA, RSA this time, and a client certificate it signs with clientAuth.
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Ministry PKI",
        ],
    );
    std::fs::write(dir.join("ext.cnf"), "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\nsubjectAltName=URI:urn:cbm:member:FI-OPENSSL\n").unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
            "-subj",
            "/CN=FI-OPENSSL",
        ],
    );
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "client.pem",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
        ],
    );
    // The hub trusts both CAs (a bundle).
    let bundle = format!(
        "{}{}",
        t.ca.cert_pem,
        std::fs::read_to_string(dir.join("ca.pem")).unwrap()
    );
    std::fs::write(&t.config.tls.client_ca, bundle).unwrap();
    t.restart().await;
    // Bound by its URI SAN, as a ministry's own PKI would allow, and tied to that PKI's CA
    // (the bundle holds two, either of which could write the URI).
    let ministry_ca = cbm_hub::tls::bundle::Bundle::load(&dir.join("ca.pem"))
        .unwrap()
        .cas[0]
        .spki_sha256
        .clone();
    let mut admin = t.admin("ADMIN").await;
    let member = cbm_hub::pb::Member {
        id: "FI-OPENSSL".into(),
        state: "FI".into(),
        display_name: "Finland (own PKI)".into(),
        roles: vec!["subscriber".into()],
        bindings: vec![cbm_hub::pb::CertificateBinding {
            binding: Some(cbm_hub::pb::certificate_binding::Binding::UriSan(
                "urn:cbm:member:FI-OPENSSL".into(),
            )),
            note: String::new(),
            issuer_spki_sha256: ministry_ca,
        }],
        ..Default::default()
    };
    admin
        .register_member(cbm_hub::pb::RegisterMemberRequest {
            member: Some(member),
        })
        .await
        .unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&t.ca.cert_pem))
        .identity(tonic::transport::Identity::from_pem(
            std::fs::read(dir.join("client.pem")).unwrap(),
            std::fs::read(dir.join("client.key")).unwrap(),
        ))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://{}", t.addr()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let who = HubClient::new(channel)
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (who.member.unwrap().id.as_str(), who.bound_by.as_str()),
        ("FI-OPENSSL", "uri_san")
    );
    t.stop().await;
}
