//! Client certificates issued by an intermediate CA, from a three-level PKI made with the
//! openssl command line (root -> issuing CA -> client, as national PKIs run them): verified at
//! the handshake with the chain the client sends, and again, with the same chain, whenever the
//! TLS files are reloaded while a connection and its subscription stay open.
mod common;

use std::{path::Path, process::Command, time::Duration};

use cbm_hub::{
    feed::wire::FeedEvent,
    pb::{self, PublishRequest, WhoAmIRequest, feed_client::FeedClient, hub_client::HubClient},
};
use common::{TestHub, feed::read_until, samples};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Runs openssl with `args` in `dir`; panics with its output on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
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

const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

/// Makes, in `dir`: `root.pem` (self-signed), `int.pem` (signed by the root, pathlen 0),
/// `client.pem`/`client.key` (signed by the intermediate, clientAuth, URI SAN
/// `urn:cbm:member:FI-CHAIN`), and an `openssl ca` set-up per CA to issue CRLs.
fn three_level_pki(dir: &Path) {
    let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    let req = |key: &str, out: &str, subj: &str| {
        let mut args = vec!["req"];
        args.extend(EC);
        args.extend(["-nodes", "-keyout", key, "-out", out, "-subj", subj]);
        openssl(dir, &args);
    };
    let mut root = vec!["req", "-x509"];
    root.extend(EC);
    root.extend([
        "-nodes",
        "-keyout",
        "root.key",
        "-out",
        "root.pem",
        "-days",
        "30",
        "-subj",
        "/CN=Ministry Root CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &root);
    w(
        "int.ext",
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    );
    req("int.key", "int.csr", "/CN=Ministry Issuing CA");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "int.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-out",
            "int.pem",
            "-days",
            "30",
            "-extfile",
            "int.ext",
        ],
    );
    w(
        "client.ext",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=URI:urn:cbm:member:FI-CHAIN\nauthorityKeyIdentifier=keyid\n",
    );
    req("client.key", "client.csr", "/CN=FI-CHAIN");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "int.pem",
            "-CAkey",
            "int.key",
            "-CAcreateserial",
            "-out",
            "client.pem",
            "-days",
            "30",
            "-extfile",
            "client.ext",
        ],
    );
    for ca in ["root", "int"] {
        w(&format!("index-{ca}.txt"), "");
        w(&format!("crlnumber-{ca}"), "01\n");
        w(
            &format!("{ca}.cnf"),
            &format!(
                "[ca]\ndefault_ca = d\n[d]\ndatabase = index-{ca}.txt\ncrlnumber = crlnumber-{ca}\ndefault_md = sha256\ndefault_crl_days = 7\ncrl_extensions = e\n[e]\nauthorityKeyIdentifier=keyid\n"
            ),
        );
    }
}

/// `openssl ca -gencrl` for `ca` ("root" or "int") into `out` (PEM).
fn gencrl(dir: &Path, ca: &str, out: &str) {
    let (cnf, key, cert) = (
        format!("{ca}.cnf"),
        format!("{ca}.key"),
        format!("{ca}.pem"),
    );
    openssl(
        dir,
        &[
            "ca", "-gencrl", "-config", &cnf, "-keyfile", &key, "-cert", &cert, "-out", out,
        ],
    );
}

/// Connects presenting `cert_pem` (which may hold the chain) with `key`.
async fn connect(
    t: &TestHub,
    cert_pem: Vec<u8>,
    key: Vec<u8>,
) -> Result<Channel, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&t.ca.cert_pem))
        .identity(Identity::from_pem(cert_pem, key))
        .domain_name("localhost");
    Endpoint::from_shared(format!("https://{}", t.addr()))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

/// The PKI: files, the client's chain as it sends it.
struct Pki {
    dir: tempfile::TempDir,
    chain_pem: Vec<u8>,
    leaf_pem: Vec<u8>,
    key: Vec<u8>,
}

impl Pki {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    async fn chain_channel(&self, t: &TestHub) -> Result<Channel, tonic::transport::Error> {
        connect(t, self.chain_pem.clone(), self.key.clone()).await
    }

    fn chain_der(&self) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(&self.chain_pem)
            .collect::<Result<_, _>>()
            .unwrap()
    }
}

/// A hub trusting the test CA and the openssl root (not the intermediate), with `crls` (file
/// names in the PKI directory; `test-ca.crl.pem` is the test CA's) configured, and FI-CHAIN
/// registered by its URI SAN tied to the root.
async fn start(crls: &[&str]) -> (TestHub, Pki) {
    let dir = tempfile::tempdir().unwrap();
    three_level_pki(dir.path());
    gencrl(dir.path(), "root", "root.crl.pem");
    gencrl(dir.path(), "int", "int.crl.pem");
    let read = |n: &str| std::fs::read(dir.path().join(n)).unwrap();
    let t = TestHub::start_with_ca(common::MEMBERS, |config, ca| {
        let bundle = [ca.cert_pem.as_bytes(), &read("root.pem")].concat();
        std::fs::write(&config.tls.client_ca, bundle).unwrap();
        std::fs::write(
            dir.path().join("test-ca.crl.pem"),
            ca.crl(&[], 1, 7).unwrap(),
        )
        .unwrap();
        config.tls.crls = crls.iter().map(|c| dir.path().join(c)).collect();
    })
    .await;
    let root_ca = cbm_hub::tls::bundle::Bundle::load(&dir.path().join("root.pem"))
        .unwrap()
        .cas[0]
        .spki_sha256
        .clone();
    let member = pb::Member {
        id: "FI-CHAIN".into(),
        state: "FI".into(),
        display_name: "Finland (national PKI)".into(),
        roles: vec!["subscriber".into()],
        bindings: vec![pb::CertificateBinding {
            binding: Some(pb::certificate_binding::Binding::UriSan(
                "urn:cbm:member:FI-CHAIN".into(),
            )),
            issuer_spki_sha256: root_ca,
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
    let pki = Pki {
        chain_pem: [read("client.pem"), read("int.pem")].concat(),
        leaf_pem: read("client.pem"),
        key: read("client.key"),
        dir,
    };
    (t, pki)
}

async fn who(channel: Channel) -> Result<pb::WhoAmIResponse, tonic::Status> {
    HubClient::new(channel)
        .who_am_i(WhoAmIRequest {})
        .await
        .map(|r| r.into_inner())
}

/// Publishes a CLEAR notice as EE-MFA; returns its sequence.
async fn publish(t: &TestHub, title: &str) -> u64 {
    t.hub("EE-MFA")
        .await
        .publish(PublishRequest {
            content: Some(samples::envelope(title, "TLP:CLEAR", samples::notice())),
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .sequence
}

async fn open_stream(channel: Channel) -> tonic::Streaming<FeedEvent> {
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

async fn stream_ends(stream: &mut tonic::Streaming<FeedEvent>) -> tonic::Status {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("stream ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the stream ends")
}

#[tokio::test]
async fn an_intermediate_issued_certificate_survives_reloads_with_its_open_stream() {
    let (t, pki) = start(&[]).await;
    let channel = pki.chain_channel(&t).await.unwrap();
    let me = who(channel.clone())
        .await
        .expect("the chain is verified at the handshake");
    assert_eq!(
        (me.member.unwrap().id.as_str(), me.bound_by.as_str()),
        ("FI-CHAIN", "uri_san")
    );
    // Without the intermediate, nothing links the client to the root.
    let leaf_only = connect(&t, pki.leaf_pem.clone(), pki.key.clone()).await;
    assert!(match leaf_only {
        Err(_) => true,
        Ok(ch) => who(ch).await.is_err(),
    });

    let mut stream = open_stream(channel.clone()).await;
    // Reload the TLS files (the bundle rewritten, as a CA rotation would) while the
    // connection and the stream are open: both are re-checked, with the intermediates the
    // client sent, and stay.
    let tls = t.hub.as_ref().unwrap().tls.clone();
    for round in 0..2 {
        let before = tls.generation();
        let bundle = std::fs::read(&t.config.tls.client_ca).unwrap();
        std::fs::write(&t.config.tls.client_ca, bundle).unwrap();
        tls.reload().unwrap();
        assert!(tls.generation() > before);
        who(channel.clone())
            .await
            .unwrap_or_else(|e| panic!("round {round}: the open connection is refused: {e:?}"));
        let seq = publish(&t, &format!("after reload {round}")).await;
        let seen = read_until(&mut stream, seq, Duration::from_secs(30)).await;
        assert_eq!(seen.last().map(|s| s.sequence), Some(seq), "round {round}");
    }
    t.stop().await;
}

#[tokio::test]
async fn with_crls_every_ca_of_the_chain_is_checked_and_revocation_by_the_intermediate_closes_the_stream()
 {
    let (t, pki) = start(&["test-ca.crl.pem", "root.crl.pem", "int.crl.pem"]).await;
    let dir = pki.path().to_path_buf();
    let tls = t.hub.as_ref().unwrap().tls.clone();

    let channel = pki.chain_channel(&t).await.unwrap();
    who(channel.clone())
        .await
        .expect("every CA of the chain has its CRL");
    let mut stream = open_stream(channel.clone()).await;
    // A refreshed intermediate CRL (nothing revoked) reloads; the stream stays and delivers.
    gencrl(&dir, "int", "int.crl.pem");
    tls.reload().unwrap();
    who(channel.clone())
        .await
        .expect("still accepted after the reload");
    let seq = publish(&t, "after the CRL refresh").await;
    read_until(&mut stream, seq, Duration::from_secs(30)).await;

    // The issuing CA revokes the client: the open stream ends at once.
    openssl(
        &dir,
        &[
            "ca",
            "-config",
            "int.cnf",
            "-keyfile",
            "int.key",
            "-cert",
            "int.pem",
            "-revoke",
            "client.pem",
        ],
    );
    gencrl(&dir, "int", "int.crl.pem");
    tls.reload().unwrap();
    let status = stream_ends(&mut stream).await;
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().to_lowercase().contains("revoked"),
        "{status:?}"
    );
    assert!(
        pki.chain_channel(&t).await.is_err()
            || who(pki.chain_channel(&t).await.unwrap()).await.is_err()
    );

    // The intermediate's CRL replaced by another CA's (a wrong file deployed): the bundle's CAs
    // still have theirs, so the reload stands, but the intermediate's revocation status is
    // unknown, which is a refusal naming that CA.
    std::fs::copy(dir.join("root.crl.pem"), dir.join("int.crl.pem")).unwrap();
    tls.reload().unwrap();
    let e = tls.check_chain(&pki.chain_der()).unwrap_err();
    assert!(e.contains("no CRL from CA CN=Ministry Issuing CA"), "{e}");
    t.stop().await;
}
