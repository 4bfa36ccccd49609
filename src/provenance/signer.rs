//! Who signed, and whether they may speak for the publisher.
//!
//! The signer's chain is checked with the hub's TLS chain verifier (the client CA bundle, its
//! CRLs and revocation policies), with a signing key-purpose policy instead of client
//! authentication. A national PKI is trusted by adding its root to the client CA bundle: its
//! certificates still let no one in unless an admin binds them to a member, and a signing
//! certificate whose extended key usage excludes client authentication can only sign.
//!
//! The binding rules are those of mTLS identity ([`crate::domain::member::Registry::resolve`]):
//! the member's certificate SHA-256, key SHA-256 or URI SAN, tied to the CA its chain ends at.
//! A member signs with its mTLS key, or with a signing certificate an admin bound to it
//! (`cbm-hub member bind`).
use rustls_pki_types::UnixTime;
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{ProvenanceError, cose::Signature};
use crate::{domain::member::Registry, tls::presented::ChainVerifier};

/// Extended key usages a signing certificate may have (any of them, or none at all):
/// clientAuth (a member's mTLS certificate), emailProtection, codeSigning, documentSigning
/// (RFC 9336), anyExtendedKeyUsage.
const SIGNING_PURPOSES: [&[usize]; 5] = [
    &[1, 3, 6, 1, 5, 5, 7, 3, 2],
    &[1, 3, 6, 1, 5, 5, 7, 3, 4],
    &[1, 3, 6, 1, 5, 5, 7, 3, 3],
    &[1, 3, 6, 1, 5, 5, 7, 3, 36],
    &[2, 5, 29, 37, 0],
];

/// webpki's extended key usage check for signing certificates.
pub(crate) struct SigningUsage;

impl webpki::ExtendedKeyUsageValidator for SigningUsage {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut any = false;
        for id in iter {
            any = true;
            let oid = id?.to_decoded_oid();
            if SIGNING_PURPOSES.contains(&oid.as_slice()) {
                return Ok(());
            }
        }
        if any {
            // The variant without context: the context's fields are webpki's to fill.
            #[allow(deprecated)]
            Err(webpki::Error::RequiredEkuNotFound)
        } else {
            Ok(())
        }
    }
}

/// The signer a signature was checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// Lowercase hex SHA-256 of the signer's certificate.
    pub cert_sha256: String,
}

/// Checks an author signature over `payload` by `publisher`: container, signature value,
/// chain to a trusted CA (not expired, not revoked), key usage, and binding to the publisher.
pub fn check(
    verifier: &ChainVerifier,
    registry: &Registry,
    publisher: &str,
    payload: &[u8],
    signature: &[u8],
    now: UnixTime,
) -> Result<Signer, ProvenanceError> {
    let sig = Signature::parse(signature)?;
    sig.verify(payload)?;
    let signer = sig.signer();
    let ca = verifier
        .verify_path(signer, &sig.chain[1..], now, SigningUsage)
        .map_err(|r| ProvenanceError::Chain(describe(&r.error, &r.to_string())))?;
    key_usage(signer.as_ref())?;
    let facts = crate::tls::identity::certificate_facts(signer.as_ref(), &ca)
        .map_err(ProvenanceError::Malformed)?;
    let bound = registry
        .resolve(&facts, verifier.bundle.sole_ca())
        .map(|(m, _)| m.id == publisher)
        .unwrap_or(false);
    if !bound {
        return Err(ProvenanceError::NotBound {
            signer: facts
                .uri_sans
                .first()
                .cloned()
                .unwrap_or_else(|| format!("certificate sha256:{}", facts.cert_sha256)),
            publisher: publisher.to_string(),
        });
    }
    Ok(Signer {
        cert_sha256: hex::encode(Sha256::digest(signer.as_ref())),
    })
}

/// webpki's refusal as what failed about the chain.
#[allow(deprecated)]
fn describe(e: &webpki::Error, detail: &str) -> String {
    match e {
        webpki::Error::UnknownIssuer => format!("does not reach a trusted CA ({detail})"),
        webpki::Error::CertRevoked => "has a revoked certificate".into(),
        webpki::Error::CertExpired { .. } => "has an expired certificate".into(),
        webpki::Error::CertNotValidYet { .. } => "has a certificate not valid yet".into(),
        webpki::Error::RequiredEkuNotFound | webpki::Error::RequiredEkuNotFoundContext(_) => {
            "has an extended key usage that excludes signing".into()
        }
        webpki::Error::UnknownRevocationStatus => {
            format!("has unknown revocation status ({detail})")
        }
        _ => format!("does not verify: {detail}"),
    }
}

/// A key usage extension, when present, must allow digitalSignature or nonRepudiation
/// (RFC 5280 section 4.2.1.3: absent means unrestricted).
pub(crate) fn key_usage(der: &[u8]) -> Result<(), ProvenanceError> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| ProvenanceError::Malformed(format!("signer certificate: {e}")))?;
    match cert.key_usage() {
        Ok(None) => Ok(()),
        Ok(Some(ku)) if ku.value.digital_signature() || ku.value.non_repudiation() => Ok(()),
        Ok(Some(_)) => Err(ProvenanceError::Usage(
            "lacks the digitalSignature key usage".into(),
        )),
        Err(e) => Err(ProvenanceError::Malformed(format!(
            "signer certificate key usage: {e}"
        ))),
    }
}
