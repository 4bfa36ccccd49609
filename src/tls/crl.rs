//! CRL files as PKIs ship them: PEM (one or more `X509 CRL` blocks) or a single DER CRL.
//!
//! A CRL that cannot be used is an error naming the file and why, never "zero CRLs": an empty
//! or truncated file is what a failed download leaves behind, and silently loading nothing
//! from it would let revoked certificates in. A CRL is refused when it is expired (its
//! nextUpdate has passed), when it names a CA of the bundle as issuer but that CA's key did
//! not sign it, or when webpki (which checks it at every handshake) cannot use it.
//!
//! With `tls.crls` set, every CA of the bundle must have a CRL: rustls treats a certificate
//! whose revocation status is unknown as refused (the policy is set explicitly in
//! [`super::server_config`]), so a CA without one would lock out every member it certified
//! with nothing but "transport error" on the client side.
use std::path::{Path, PathBuf};

use rustls_pki_types::{CertificateRevocationListDer, pem::PemObject};
use x509_parser::{
    prelude::{FromDer, X509Certificate},
    revocation_list::CertificateRevocationList,
};

use super::{TlsError, bundle::Bundle, file_error};

/// One usable CRL and what the hub reports about it.
#[derive(Debug)]
pub struct LoadedCrl {
    /// The file it came from.
    pub path: PathBuf,
    /// Its issuer as text, for messages.
    pub issuer: String,
    /// Its issuer as DER, to match it to a CA (see [`super::bundle::BundleCa::subject_der`]).
    pub issuer_der: Vec<u8>,
    /// Its nextUpdate, in Unix seconds: after this the CRL is stale and webpki refuses the
    /// certificates of its CA.
    pub next_update: i64,
    /// The DER, as rustls' verifier takes it.
    pub der: CertificateRevocationListDer<'static>,
    /// The parsed form webpki checks revocation against.
    pub parsed: webpki::OwnedCertRevocationList,
}

/// Reads every CRL of one file, PEM or DER. `now` is Unix seconds.
pub fn load_file(path: &Path, now: i64) -> Result<Vec<LoadedCrl>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(file_error(
            path,
            "is empty (a failed download leaves an empty file): it holds no CRL",
        ));
    }
    let ders: Vec<CertificateRevocationListDer<'static>> =
        if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            let ders = CertificateRevocationListDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| file_error(path, format!("malformed or truncated PEM: {e}")))?;
            if ders.is_empty() {
                return Err(file_error(
                    path,
                    "holds PEM but no `-----BEGIN X509 CRL-----` block",
                ));
            }
            ders
        } else {
            vec![CertificateRevocationListDer::from(bytes)]
        };
    ders.into_iter()
        .enumerate()
        .map(|(i, der)| {
            let which = if i == 0 {
                String::new()
            } else {
                format!("CRL #{}: ", i + 1)
            };
            parse(path, der, now).map_err(|reason| file_error(path, format!("{which}{reason}")))
        })
        .collect()
}

fn parse(
    path: &Path,
    der: CertificateRevocationListDer<'static>,
    now: i64,
) -> Result<LoadedCrl, String> {
    let (rest, crl) = CertificateRevocationList::from_der(der.as_ref())
        .map_err(|e| format!("not a DER or PEM CRL (truncated or damaged?): {e}"))?;
    if !rest.is_empty() {
        return Err(format!(
            "{} bytes of trailing data after the CRL",
            rest.len()
        ));
    }
    let next_update = crl
        .next_update()
        .ok_or("has no nextUpdate: a CRL must say until when it is current")?
        .timestamp();
    if next_update <= now {
        return Err(format!(
            "expired: its nextUpdate {} has passed; fetch a current CRL from {}",
            rfc3339(next_update),
            crl.issuer()
        ));
    }
    let parsed = webpki::OwnedCertRevocationList::from_der(der.as_ref())
        .map_err(|e| format!("not a CRL the TLS layer can use: {e:?}"))?;
    Ok(LoadedCrl {
        path: path.to_path_buf(),
        issuer: crl.issuer().to_string(),
        issuer_der: crl.issuer().as_raw().to_vec(),
        next_update,
        der,
        parsed,
    })
}

/// Checks the CRLs against the bundle: a CRL claiming a bundle CA as issuer must be signed by
/// it, and every CA of the bundle must have a CRL.
pub fn check_against(bundle: &Bundle, crls: &[LoadedCrl]) -> Result<(), TlsError> {
    for crl in crls {
        let Some(ca) = bundle
            .cas
            .iter()
            .find(|ca| ca.subject_der == crl.issuer_der)
        else {
            // Issued by an intermediate CA (not a trust anchor): webpki checks its signature
            // against the intermediate at each handshake.
            continue;
        };
        let (_, ca_cert) = X509Certificate::from_der(ca.der.as_ref())
            .map_err(|e| TlsError::Config(format!("CA {}: {e}", ca.subject)))?;
        let (_, parsed) = CertificateRevocationList::from_der(crl.der.as_ref())
            .map_err(|e| file_error(&crl.path, e))?;
        parsed.verify_signature(ca_cert.public_key()).map_err(|e| {
            file_error(
                &crl.path,
                format!(
                    "the CRL of {} is not signed by that CA's key in tls.client_ca ({e})",
                    crl.issuer
                ),
            )
        })?;
    }
    if crls.is_empty() {
        return Ok(());
    }
    let missing: Vec<String> = bundle
        .cas
        .iter()
        .filter(|ca| !crls.iter().any(|crl| crl.issuer_der == ca.subject_der))
        .map(|ca| format!("{} (spki_sha256 {})", ca.subject, ca.spki_sha256))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(TlsError::MissingCrl(missing))
    }
}

/// The earliest nextUpdate among `crls`, in Unix seconds.
pub fn earliest_next_update(crls: &[LoadedCrl]) -> Option<i64> {
    crls.iter().map(|c| c.next_update).min()
}

/// Unix seconds as RFC 3339, for messages.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{unix} (Unix time)"))
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::devpki::DevCa;

    /// A CA, its bundle file, and a directory to write CRL files into.
    struct Fixture {
        dir: tempfile::TempDir,
        ca: DevCa,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture {
                dir: tempfile::tempdir().unwrap(),
                ca: DevCa::generate("CRL test CA").unwrap(),
            }
        }

        fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
            let p = self.dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        }

        fn pem(&self) -> String {
            self.ca.crl(&[], 1, 7).unwrap()
        }

        fn der(&self) -> Vec<u8> {
            CertificateRevocationListDer::from_pem_slice(self.pem().as_bytes())
                .unwrap()
                .to_vec()
        }

        fn bundle(&self, cas: &[&DevCa]) -> Bundle {
            let text: String = cas.iter().map(|c| c.cert_pem.clone()).collect();
            Bundle::load(&self.write("bundle.pem", text.as_bytes())).unwrap()
        }
    }

    fn refused(path: &Path) -> String {
        let e = load_file(path, now())
            .expect_err("must be refused")
            .to_string();
        assert!(
            e.starts_with(&path.display().to_string()),
            "names the file: {e}"
        );
        e
    }

    #[test]
    fn pem_and_der_files_load() {
        let f = Fixture::new();
        let other = DevCa::generate("another CA").unwrap();
        let two = format!("{}{}", f.pem(), other.crl(&[], 1, 7).unwrap());
        for (name, bytes, count) in [
            ("one.pem", f.pem().into_bytes(), 1),
            ("two.pem", two.into_bytes(), 2),
            ("one.der", f.der(), 1),
        ] {
            let crls = load_file(&f.write(name, &bytes), now()).unwrap();
            assert_eq!(crls.len(), count, "{name}");
            assert!(crls[0].issuer.contains("CN=CRL test CA"), "{name}");
        }
    }

    #[test]
    fn unusable_files_are_errors_naming_the_file_and_why() {
        let f = Fixture::new();
        let pem = f.pem();
        let der = f.der();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty.crl", vec![], "is empty"),
            ("blank.crl", b"\n  \n".to_vec(), "is empty"),
            (
                "cut.der",
                der[..der.len() / 2].to_vec(),
                "not a DER or PEM CRL",
            ),
            (
                "cut.pem",
                pem.as_bytes()[..pem.len() / 2].to_vec(),
                "malformed or truncated PEM",
            ),
            (
                "cert.pem",
                f.ca.cert_pem.clone().into_bytes(),
                "no `-----BEGIN X509 CRL-----`",
            ),
            ("junk.der", b"\x30\x03abc".to_vec(), "not a DER or PEM CRL"),
            (
                "trailing.der",
                [der.clone(), b"xx".to_vec()].concat(),
                "trailing data",
            ),
        ];
        for (name, bytes, reason) in cases {
            let e = refused(&f.write(name, &bytes));
            assert!(e.contains(reason), "{name}: {e}");
        }
    }

    #[test]
    fn an_expired_crl_is_refused_with_its_next_update() {
        let f = Fixture::new();
        let now_t = time::OffsetDateTime::now_utc();
        let expired =
            f.ca.crl_between(
                &[],
                1,
                now_t - time::Duration::days(8),
                now_t - time::Duration::days(1),
            )
            .unwrap();
        let e = refused(&f.write("old.pem", expired.as_bytes()));
        assert!(e.contains("expired: its nextUpdate"), "{e}");
        assert!(
            e.contains("CN=CRL test CA"),
            "names the CA to fetch from: {e}"
        );
    }

    #[test]
    fn every_ca_of_the_bundle_needs_a_crl_signed_by_it() {
        let f = Fixture::new();
        let other = DevCa::generate("Ministry PKI").unwrap();
        let bundle = f.bundle(&[&f.ca, &other]);
        let ours = load_file(&f.write("ours.pem", f.pem().as_bytes()), now()).unwrap();
        match check_against(&bundle, &ours) {
            Err(TlsError::MissingCrl(missing)) => {
                assert_eq!(missing.len(), 1);
                assert!(missing[0].contains("CN=Ministry PKI"), "{missing:?}");
                assert!(missing[0].contains(&bundle.cas[1].spki_sha256));
            }
            other => panic!("expected a missing CRL, got {other:?}"),
        }
        // No CRLs at all: revocation is not checked, nothing is missing.
        check_against(&bundle, &[]).unwrap();
        // A CRL in the CA's name but signed by another key (an impostor with the same name).
        let impostor = DevCa::generate("CRL test CA").unwrap();
        let forged = impostor.crl(&[], 1, 7).unwrap();
        let forged = load_file(&f.write("forged.pem", forged.as_bytes()), now()).unwrap();
        let e = check_against(&f.bundle(&[&f.ca]), &forged)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("forged.pem") && e.contains("not signed by that CA"),
            "{e}"
        );
        check_against(&f.bundle(&[&f.ca]), &ours).unwrap();
    }
}
