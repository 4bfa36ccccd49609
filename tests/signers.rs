//! The hub's check of an author signature's signer, as a table: the same function the Hub
//! service calls before a change is queued, over the TLS material the hub loads (a CA bundle
//! and its CRL, files as an operator writes them). Each refusal names what failed.
use std::path::Path;

use cbm_hub::{
    domain::member::{Binding, BoundCertificate, Member, MemberStatus, Registry, Role},
    provenance::{ProvenanceError, cose::SigningKey, signer},
    tls::{
        ServerTlsFiles,
        devpki::{DevCa, Issued, LeafSpec},
        load_certs, load_key,
        reload::TlsState,
    },
};
use rustls_pki_types::UnixTime;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn key_of(dir: &Path, name: &str, issued: &Issued) -> SigningKey {
    let cert = write(dir, &format!("{name}.pem"), &issued.cert_pem);
    let key = write(dir, &format!("{name}-key.pem"), &issued.key_pem);
    SigningKey::new(&load_key(&key).unwrap(), load_certs(&cert).unwrap()).unwrap()
}

#[test]
fn a_signer_must_chain_to_the_bundle_be_current_unrevoked_fit_for_signing_and_bound() {
    cbm_hub::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = DevCa::generate("Signing test CA").unwrap();
    let server = ca.issue(&LeafSpec::server(&[], 30)).unwrap();
    let uri = |member: &str| LeafSpec {
        uri_sans: vec![format!("urn:cbm:signer:{member}")],
        ..LeafSpec::client(member, 30)
    };
    let good = ca.issue(&uri("EE-MFA")).unwrap();
    let revoked = ca.issue(&uri("EE-MFA")).unwrap();
    let mut expired_spec = uri("EE-MFA");
    expired_spec.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(10);
    expired_spec.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    let expired = ca.issue(&expired_spec).unwrap();
    let mut server_only = uri("EE-MFA");
    server_only.client_auth = false;
    server_only.server_auth = true;
    let server_only = ca.issue(&server_only).unwrap();
    // Without clientAuth the dev PKI marks a certificate codeSigning: fit for signing only.
    let mut signing_only = uri("EE-MFA");
    signing_only.client_auth = false;
    let signing_only = ca.issue(&signing_only).unwrap();
    let other_member = ca.issue(&uri("EE-CERT")).unwrap();
    let stranger_ca = DevCa::generate("Another CA").unwrap();
    let stranger = stranger_ca.issue(&uri("EE-MFA")).unwrap();

    let files = ServerTlsFiles {
        client_ca: write(d, "ca.pem", &ca.cert_pem),
        cert: write(d, "server.pem", &server.cert_pem),
        key: write(d, "server-key.pem", &server.key_pem),
        crls: vec![write(
            d,
            "ca.crl",
            &ca.crl(std::slice::from_ref(&revoked.serial), 1, 30)
                .unwrap(),
        )],
    };
    let tls = TlsState::load(files).unwrap();
    let ca_spki = tls.bundle().cas[0].spki_sha256.clone();
    let member = |id: &str| Member {
        id: id.into(),
        state: "EE".into(),
        display_name: id.into(),
        roles: [Role::Publisher].into_iter().collect(),
        communities: vec![],
        status: MemberStatus::Active,
        bindings: vec![BoundCertificate {
            binding: Binding::UriSan(format!("urn:cbm:signer:{id}")),
            note: String::new(),
            issuer: Some(ca_spki.clone()),
        }],
        require_signed: false,
        created_at: String::new(),
        updated_at: String::new(),
    };
    let registry = Registry::new([member("EE-MFA"), member("EE-CERT")]);
    let content = b"the exact bytes of a submission's content";
    let check = |issued: &Issued, name: &str, payload: &[u8]| {
        let key = key_of(d, name, issued);
        signer::check(
            &tls.verifier(),
            &registry,
            "EE-MFA",
            payload,
            &key.sign(content).unwrap(),
            UnixTime::now(),
        )
    };

    assert!(check(&good, "good", content).is_ok());
    assert!(check(&signing_only, "signing-only", content).is_ok());
    let refusals: [(&Issued, &str, &[u8], &str); 7] = [
        (
            &good,
            "changed",
            b"other bytes",
            "signature: does not match content",
        ),
        (
            &revoked,
            "revoked",
            content,
            "signature: certificate chain has a revoked certificate",
        ),
        (
            &expired,
            "expired",
            content,
            "signature: certificate chain has an expired certificate",
        ),
        (
            &server_only,
            "server-only",
            content,
            "signature: certificate chain has an extended key usage that excludes signing",
        ),
        (
            &stranger,
            "stranger",
            content,
            "signature: certificate chain does not reach a trusted CA",
        ),
        (
            &other_member,
            "other-member",
            content,
            "signature: signer urn:cbm:signer:EE-CERT is not bound to publisher EE-MFA",
        ),
        (&good, "good-again", content, ""),
    ];
    for (issued, name, payload, expected) in refusals {
        let result = check(issued, name, payload);
        if expected.is_empty() {
            assert!(result.is_ok(), "{name}: {result:?}");
            continue;
        }
        let e = result.expect_err(name);
        assert!(e.to_string().starts_with(expected), "{name}: {e}");
        let code = tonic::Status::from(e).code();
        let wanted = if name == "changed" {
            tonic::Code::InvalidArgument
        } else {
            tonic::Code::PermissionDenied
        };
        assert_eq!(code, wanted, "{name}");
    }
    // Not a COSE_Sign1 at all.
    let e = signer::check(
        &tls.verifier(),
        &registry,
        "EE-MFA",
        content,
        b"not cbor",
        UnixTime::now(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, ProvenanceError::Malformed(m) if m.starts_with("is not a COSE_Sign1")),
        "{e}"
    );
}
