//! Bindings tied to their issuing CA: the decision as a table, and resolution with two CAs.
use super::*;

const CA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn bound(binding: Binding, issuer: Option<&str>) -> BoundCertificate {
    BoundCertificate {
        binding,
        note: String::new(),
        issuer: issuer.map(str::to_string),
    }
}

fn uri() -> Binding {
    Binding::UriSan("urn:cbm:member:FI-MFA".into())
}

#[test]
fn issuer_check_table() {
    use IssuerMismatch::*;
    let spki = Binding::SpkiSha256("c".repeat(64));
    let cert = Binding::CertSha256("d".repeat(64));
    // (binding, its issuer, the CA the certificate chains to, the bundle's sole CA, expected)
    type Row<'a> = (
        Binding,
        Option<&'a str>,
        &'a str,
        Option<&'a str>,
        Result<(), IssuerMismatch>,
    );
    let table: Vec<Row> = vec![
        (uri(), Some(CA_A), CA_A, None, Ok(())),
        (uri(), Some(CA_A), CA_B, None, Err(Other)),
        (uri(), Some(CA_A), CA_B, Some(CA_B), Err(Other)),
        (spki.clone(), Some(CA_A), CA_A, Some(CA_A), Ok(())),
        (spki.clone(), Some(CA_B), CA_A, None, Err(Other)),
        // Stored before issuers were recorded: only while the bundle holds one CA.
        (uri(), None, CA_A, Some(CA_A), Ok(())),
        (uri(), None, CA_A, None, Err(NotRecorded)),
        (spki.clone(), None, CA_B, None, Err(NotRecorded)),
        (uri(), None, CA_B, Some(CA_A), Err(NotRecorded)),
        // A certificate hash fixes its issuer: no CA needed or checked.
        (cert.clone(), None, CA_A, None, Ok(())),
        (cert, None, CA_B, Some(CA_A), Ok(())),
    ];
    for (i, (binding, issuer, cert_ca, sole, expected)) in table.into_iter().enumerate() {
        let b = bound(binding, issuer);
        assert_eq!(issuer_check(&b, cert_ca, sole), expected, "row {i}: {b:?}");
    }
}

#[test]
fn settle_issuer_table() {
    // One CA: recorded for the administrator. Several: must be named, and be one of them.
    let mut b = bound(uri(), None);
    settle_issuer(&mut b, &[CA_A]).unwrap();
    assert_eq!(b.issuer.as_deref(), Some(CA_A));

    let mut b = bound(uri(), None);
    let e = settle_issuer(&mut b, &[CA_A, CA_B]).unwrap_err();
    assert!(e.contains("required") && e.contains("2 CAs"), "{e}");
    assert_eq!(
        b.issuer, None,
        "nothing chosen on the administrator's behalf"
    );

    let mut b = bound(Binding::SpkiSha256("c".repeat(64)), Some(CA_B));
    settle_issuer(&mut b, &[CA_A, CA_B]).unwrap();
    assert_eq!(b.issuer.as_deref(), Some(CA_B));

    let mut b = bound(uri(), Some(&"e".repeat(64)));
    let e = settle_issuer(&mut b, &[CA_A, CA_B]).unwrap_err();
    assert!(e.contains("is not the SPKI SHA-256 of a CA"), "{e}");

    let mut b = bound(Binding::CertSha256("d".repeat(64)), Some(CA_A));
    let e = settle_issuer(&mut b, &[CA_A]).unwrap_err();
    assert!(e.contains("leave the issuer empty"), "{e}");
    let mut b = bound(Binding::CertSha256("d".repeat(64)), None);
    settle_issuer(&mut b, &[CA_A, CA_B]).unwrap();
    assert_eq!(b.issuer, None);
}

fn member(id: &str, bindings: Vec<BoundCertificate>) -> Member {
    Member {
        id: id.into(),
        state: "FI".into(),
        display_name: id.into(),
        roles: [Role::Subscriber].into_iter().collect(),
        communities: vec![],
        status: MemberStatus::Active,
        bindings,
        created_at: String::new(),
        updated_at: String::new(),
        require_signed: false,
    }
}

fn facts(uri: &str, ca: &str) -> CertificateFacts {
    CertificateFacts {
        cert_sha256: "1".repeat(64),
        spki_sha256: "2".repeat(64),
        uri_sans: vec![uri.into()],
        ca_spki_sha256: ca.into(),
    }
}

#[test]
fn another_ca_of_the_bundle_cannot_mint_a_member() {
    let reg = Registry::new([member("FI-MFA", vec![bound(uri(), Some(CA_A))])]);
    let (m, b) = reg
        .resolve(&facts("urn:cbm:member:FI-MFA", CA_A), None)
        .unwrap();
    assert_eq!((m.id.as_str(), b), ("FI-MFA", uri()));
    match reg.resolve(&facts("urn:cbm:member:FI-MFA", CA_B), None) {
        Err(Unresolved::Issuer { member, why, .. }) => {
            assert_eq!((member.as_str(), why), ("FI-MFA", IssuerMismatch::Other));
        }
        other => panic!("CA B minted FI-MFA: {other:?}"),
    }
    // Another binding of the same member that the certificate does satisfy still resolves.
    let reg = Registry::new([member(
        "FI-MFA",
        vec![
            bound(uri(), Some(CA_A)),
            bound(Binding::CertSha256("1".repeat(64)), None),
        ],
    )]);
    assert!(
        reg.resolve(&facts("urn:cbm:member:FI-MFA", CA_B), None)
            .is_ok()
    );
    // An unrelated certificate is simply unbound.
    let mut other = facts("urn:cbm:member:SE-MFA", CA_B);
    other.cert_sha256 = "3".repeat(64);
    assert_eq!(reg.resolve(&other, None).unwrap_err(), Unresolved::Unbound);
}

#[test]
fn bindings_without_issuer_resolve_only_under_a_single_ca() {
    let reg = Registry::new([member("FI-MFA", vec![bound(uri(), None)])]);
    assert!(
        reg.resolve(&facts("urn:cbm:member:FI-MFA", CA_A), Some(CA_A))
            .is_ok()
    );
    assert!(matches!(
        reg.resolve(&facts("urn:cbm:member:FI-MFA", CA_A), None),
        Err(Unresolved::Issuer {
            why: IssuerMismatch::NotRecorded,
            ..
        })
    ));
    assert_eq!(
        reg.bindings_without_issuer(),
        vec!["FI-MFA uri_san:urn:cbm:member:FI-MFA".to_string()]
    );
}
