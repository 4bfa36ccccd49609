//! Bindings tied to their issuing CA, with two national CAs in the bundle: a URI SAN or key
//! bound for one CA cannot be claimed with a certificate of the other; bindings stored before
//! issuers were recorded hold while the bundle has one CA and are refused, with a message for
//! the administrator, once it has several, until they are bound again with their CA.
mod common;

use std::time::Duration;

use cbm_hub::{
    domain::member::{Binding, BoundCertificate, Member, MemberStatus, Role},
    pb::{self, WhoAmIRequest, certificate_binding::Binding as PbBinding, hub_client::HubClient},
    store::MemberOp,
    tls::{
        bundle::Bundle,
        devpki::{DevCa, Issued, LeafSpec},
    },
};
use common::{
    TestHub,
    process::{HubProcess, cli, init},
};
use tonic::{
    Code,
    transport::{Certificate, ClientTlsConfig, Endpoint, Identity},
};

fn spki_of(ca: &DevCa) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, &ca.cert_pem).unwrap();
    Bundle::load(&path).unwrap().cas[0].spki_sha256.clone()
}

fn with_uri(ca: &DevCa, member: &str) -> Issued {
    let mut spec = LeafSpec::client(member, 30);
    spec.uri_sans = vec![format!("urn:cbm:member:{member}")];
    ca.issue(&spec).unwrap()
}

/// The member `cert` authenticates as, or the refusal.
async fn who(t: &TestHub, cert: &Issued) -> Result<String, tonic::Status> {
    let channel = t
        .channel_with(cert)
        .await
        .expect("the handshake accepts both CAs");
    HubClient::new(channel)
        .who_am_i(WhoAmIRequest {})
        .await
        .map(|r| r.into_inner().member.unwrap_or_default().id)
}

fn binding(b: PbBinding, issuer: &str) -> pb::CertificateBinding {
    pb::CertificateBinding {
        binding: Some(b),
        issuer_spki_sha256: issuer.into(),
        ..Default::default()
    }
}

async fn register(
    t: &TestHub,
    id: &str,
    b: pb::CertificateBinding,
) -> Result<pb::Member, tonic::Status> {
    t.admin("ADMIN")
        .await
        .register_member(pb::RegisterMemberRequest {
            member: Some(pb::Member {
                id: id.into(),
                state: "FI".into(),
                display_name: id.into(),
                roles: vec!["subscriber".into()],
                bindings: vec![b],
                ..Default::default()
            }),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn another_ca_of_the_bundle_cannot_mint_a_member_by_uri_or_key() {
    let ministry = DevCa::generate("Ministry PKI").unwrap();
    let t = TestHub::start_with_ca(common::MEMBERS, |config, ca| {
        std::fs::write(
            &config.tls.client_ca,
            format!("{}{}", ca.cert_pem, ministry.cert_pem),
        )
        .unwrap();
    })
    .await;
    let (hub_ca, ministry_ca) = (spki_of(&t.ca), spki_of(&ministry));

    // A URI SAN binding for the hub's CA.
    let uri = || PbBinding::UriSan("urn:cbm:member:FI-MFA".into());
    register(&t, "FI-MFA", binding(uri(), &hub_ca))
        .await
        .unwrap();
    assert_eq!(who(&t, &with_uri(&t.ca, "FI-MFA")).await.unwrap(), "FI-MFA");
    let minted = who(&t, &with_uri(&ministry, "FI-MFA")).await.unwrap_err();
    assert_eq!(minted.code(), Code::Unauthenticated, "{minted:?}");
    assert!(minted.message().contains("another CA"), "{minted:?}");

    // A key binding for the Ministry's CA: the same key certified by the hub's CA is refused.
    let own = ministry.issue(&LeafSpec::client("SE-MFA", 30)).unwrap();
    let facts = cbm_hub::tls::identity::certificate_facts(&own.cert_der, "").unwrap();
    let key = || PbBinding::SpkiSha256(facts.spki_sha256.clone());
    register(&t, "SE-MFA", binding(key(), &ministry_ca))
        .await
        .unwrap();
    assert_eq!(who(&t, &own).await.unwrap(), "SE-MFA");
    let same_key =
        t.ca.issue_with_key(&LeafSpec::client("SE-MFA", 30), &own.key_pem)
            .unwrap();
    let e = who(&t, &same_key).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

    // With two CAs, the administrator must say which one; a wrong one is refused, and a
    // certificate hash takes none. Refusals store nothing.
    let e = register(&t, "FI-CERT", binding(uri(), ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message()
            .contains("member.bindings[0].issuer_spki_sha256: required")
            && e.message().contains(&hub_ca)
            && e.message().contains(&ministry_ca),
        "{}",
        e.message()
    );
    let mut admin = t.admin("ADMIN").await;
    let e = admin
        .bind_certificate(pb::BindCertificateRequest {
            id: "FI-MFA".into(),
            binding: Some(binding(uri(), &"0".repeat(64))),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("binding.issuer_spki_sha256"),
        "{}",
        e.message()
    );
    let hash = PbBinding::CertSha256(common::sha256_hex(&own.cert_der));
    let e = register(&t, "FI-HASH", binding(hash, &hub_ca))
        .await
        .unwrap_err();
    assert!(
        e.message().contains("leave the issuer empty"),
        "{}",
        e.message()
    );
    for id in ["FI-CERT", "FI-HASH"] {
        let e = admin
            .get_member(pb::GetMemberRequest { id: id.into() })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
    }
    let stored = admin
        .get_member(pb::GetMemberRequest {
            id: "FI-MFA".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.bindings[0].issuer_spki_sha256, hub_ca, "unchanged");
    t.stop().await;
}

#[tokio::test]
async fn a_binding_stored_without_its_issuer_holds_under_one_ca_and_is_refused_under_two_until_bound_again()
 {
    let t = TestHub::start().await;
    // As a store written before issuers were recorded holds it (the admin service would now
    // record the single CA).
    let legacy = Member {
        id: "FI-OLD".into(),
        state: "FI".into(),
        display_name: "Finland (legacy binding)".into(),
        roles: [Role::Subscriber].into_iter().collect(),
        communities: vec![],
        status: MemberStatus::Active,
        bindings: vec![BoundCertificate {
            binding: Binding::UriSan("urn:cbm:member:FI-OLD".into()),
            note: String::new(),
            issuer: None,
        }],
        created_at: String::new(),
        updated_at: String::new(),
        require_signed: false,
    };
    t.store()
        .member(MemberOp::Register(legacy), Default::default())
        .await
        .unwrap();
    let ours = with_uri(&t.ca, "FI-OLD");
    assert_eq!(
        who(&t, &ours).await.unwrap(),
        "FI-OLD",
        "one CA: nothing else could mint it"
    );

    // A second national CA joins the bundle (reloaded, no restart).
    let ministry = DevCa::generate("Ministry PKI").unwrap();
    std::fs::write(
        &t.config.tls.client_ca,
        format!("{}{}", t.ca.cert_pem, ministry.cert_pem),
    )
    .unwrap();
    t.hub.as_ref().unwrap().tls.reload().unwrap();
    let theirs = with_uri(&ministry, "FI-OLD");
    for cert in [&ours, &theirs] {
        let e = who(&t, cert).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
        assert!(
            e.message().contains("registered without its issuing CA"),
            "{}",
            e.message()
        );
    }
    // The administrator binds it again with its CA: the hub's certificate works again, the
    // Ministry's never does.
    t.admin("ADMIN")
        .await
        .bind_certificate(pb::BindCertificateRequest {
            id: "FI-OLD".into(),
            binding: Some(binding(
                PbBinding::UriSan("urn:cbm:member:FI-OLD".into()),
                &spki_of(&t.ca),
            )),
        })
        .await
        .unwrap();
    assert_eq!(who(&t, &ours).await.unwrap(), "FI-OLD");
    assert!(who(&t, &theirs).await.is_err());
    t.stop().await;
}

#[tokio::test]
async fn the_cli_registers_a_key_binding_with_its_issuing_ca() {
    let home_dir = tempfile::tempdir().unwrap();
    let home = home_dir.path();
    init(home);
    // The home's dev CA, and a second national CA added to the bundle.
    let ca_path = home.join("pki/ca.pem");
    let dev_ca = std::fs::read_to_string(&ca_path).unwrap();
    std::fs::write(home.join("dev-ca.pem"), &dev_ca).unwrap();
    let ministry = DevCa::generate("Ministry PKI").unwrap();
    std::fs::write(&ca_path, format!("{dev_ca}{}", ministry.cert_pem)).unwrap();
    let hub = HubProcess::start(home);
    let ep = format!("https://localhost:{}", hub.port);

    let (ok, out, err) = cli(home, &ep, &["pki", "issue", "FI-NEW"]);
    assert!(ok, "{err}");
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {out}"))
            .trim()
            .to_string()
    };
    let (spki, issuer) = (field("spki_sha256:"), field("issuer_spki_sha256:"));
    let register = |extra: &[&str]| {
        let mut args = vec![
            "member",
            "register",
            "FI-NEW",
            "--state",
            "FI",
            "--name",
            "Finland",
            "--role",
            "subscriber",
            "--spki-sha256",
            &spki,
            "-p",
            "HUB-ADMIN",
        ];
        args.extend(extra);
        cli(home, &ep, &args)
    };
    let (ok, _, err) = register(&[]);
    assert!(
        !ok && err.contains("member.bindings[0].issuer_spki_sha256: required"),
        "{err}"
    );
    let bundle_path = ca_path.to_str().unwrap();
    let (ok, _, err) = register(&["--issuer-ca", bundle_path]);
    assert!(!ok && err.contains("holds 2 CA certificates"), "{err}");
    let dev_ca_path = home.join("dev-ca.pem");
    let (ok, out, err) = register(&["--issuer-ca", dev_ca_path.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "spki_sha256 {spki} issued by CA spki_sha256 {issuer}"
        )),
        "{out}"
    );
    let (ok, out, err) = cli(home, &ep, &["whoami", "-p", "FI-NEW"]);
    assert!(ok && out.contains("FI-NEW"), "{out}{err}");

    // The same key certified by the Ministry's CA does not make FI-NEW.
    let key = std::fs::read_to_string(home.join("pki/members/FI-NEW-key.pem")).unwrap();
    let forged = ministry
        .issue_with_key(&LeafSpec::client("FI-NEW", 30), &key)
        .unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&dev_ca))
        .identity(Identity::from_pem(&forged.cert_pem, &key))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://127.0.0.1:{}", hub.port))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    let e = HubClient::new(channel)
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    hub.kill();
}
