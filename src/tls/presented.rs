//! The client-certificate check of the handshake, and what it learned about the connection:
//! the certificate presented (known even when the handshake refuses it, so that refused
//! handshakes are audited with its fingerprint), the bundle CA its chain ends at (bindings are
//! tied to it), and a precise reason when revocation status is unknown.
//!
//! The accept loop runs each handshake inside [`PRESENTED`]'s task-local scope; the verifier,
//! which rustls calls synchronously while that handshake future is polled, records there.
//!
//! The decision is webpki's path building with exactly the options rustls' own
//! `WebPkiClientVerifier` uses (same anchors, signature algorithms, CRLs and revocation
//! policies, client-auth usage, the intermediates the client sent), called directly because
//! rustls does not say which anchor a path ended at. A refusal is handed to the rustls verifier
//! as well, only to produce rustls' own error (and so the TLS alert it maps to).
use std::{cell::RefCell, sync::Arc};

use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    server::danger::{ClientCertVerified, ClientCertVerifier},
};
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use sha2::{Digest, Sha256};
use webpki::{ExpirationPolicy, RevocationCheckDepth, UnknownStatusPolicy};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::bundle::Bundle;

/// What the handshake in progress learned.
#[derive(Debug, Default)]
pub struct Presented {
    /// SHA-256 of the end-entity certificate presented.
    pub cert_sha256: Option<String>,
    /// SPKI SHA-256 of the bundle CA the verified chain ends at.
    pub ca_spki_sha256: Option<String>,
    /// Why the certificate was refused, when the TLS error alone would not say enough.
    pub why: Option<String>,
}

tokio::task_local! {
    /// Filled by the verifier during the current handshake.
    pub static PRESENTED: RefCell<Presented>;
}

/// Verifies client chains against the bundle and CRLs, noting what it learns.
pub struct ChainVerifier {
    /// rustls' verifier over the same roots and CRLs: signatures of the handshake, hints, and
    /// the rustls error of a refused certificate.
    pub inner: Arc<dyn ClientCertVerifier>,
    pub bundle: Arc<Bundle>,
    anchors: Vec<TrustAnchor<'static>>,
    crls: Vec<webpki::CertRevocationList<'static>>,
    /// The CRLs' issuers (DER as x509-parser gives it), to name a CA without one.
    crl_issuers: Vec<Vec<u8>>,
    algs: &'static [&'static dyn SignatureVerificationAlgorithm],
}

impl std::fmt::Debug for ChainVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ChainVerifier({} CAs, {} CRLs)",
            self.anchors.len(),
            self.crls.len()
        )
    }
}

/// Why a chain was refused: webpki's error, and a sentence for the audit log when it adds to it.
#[derive(Debug)]
pub struct Refusal {
    pub error: webpki::Error,
    pub detail: Option<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.detail {
            Some(d) => f.write_str(d),
            None => write!(f, "{:?}", self.error),
        }
    }
}

impl ChainVerifier {
    pub fn new(
        inner: Arc<dyn ClientCertVerifier>,
        bundle: Arc<Bundle>,
        crls: Vec<(webpki::OwnedCertRevocationList, Vec<u8>)>,
        algs: &'static [&'static dyn SignatureVerificationAlgorithm],
    ) -> ChainVerifier {
        let (crls, crl_issuers) = crls
            .into_iter()
            .map(|(c, issuer)| (webpki::CertRevocationList::Owned(c), issuer))
            .unzip();
        ChainVerifier {
            inner,
            anchors: bundle.anchors(),
            bundle,
            crls,
            crl_issuers,
            algs,
        }
    }

    /// Verifies `chain` (end entity first, then the intermediates as the client sent them) for
    /// client authentication at `now`, checking every certificate of the path against the CRLs.
    /// Returns the SPKI SHA-256 of the bundle CA the path ends at.
    pub fn verify_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<String, Refusal> {
        self.verify_path(
            end_entity,
            intermediates,
            now,
            webpki::KeyUsage::client_auth(),
        )
    }

    /// [`ChainVerifier::verify_chain`] with another extended key usage policy: the same
    /// anchors, CRLs and revocation policies check the certificates of author signatures
    /// (`crate::provenance`), whose signing certificates need not be client certificates.
    pub fn verify_path(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        usage: impl webpki::ExtendedKeyUsageValidator,
    ) -> Result<String, Refusal> {
        let refusal = |error| Refusal {
            error,
            detail: None,
        };
        let ee = webpki::EndEntityCert::try_from(end_entity).map_err(refusal)?;
        let crl_refs: Vec<&webpki::CertRevocationList<'static>> = self.crls.iter().collect();
        // The policies rustls' verifier is built with (see `super::server_config`): the whole
        // chain is checked, unknown status is a refusal, an expired CRL is a refusal.
        let revocation = webpki::RevocationOptionsBuilder::new(&crl_refs)
            .ok()
            .map(|b| {
                b.with_depth(RevocationCheckDepth::Chain)
                    .with_status_policy(UnknownStatusPolicy::Deny)
                    .with_expiration_policy(ExpirationPolicy::Enforce)
                    .build()
            });
        let verified = ee.verify_for_usage(
            self.algs,
            &self.anchors,
            intermediates,
            now,
            usage,
            revocation,
            None,
        );
        match verified {
            Ok(path) => self
                .bundle
                .ca_of(path.anchor())
                .map(|ca| ca.spki_sha256.clone())
                // Cannot happen: the anchors are the bundle's.
                .ok_or_else(|| refusal(webpki::Error::UnknownIssuer)),
            Err(webpki::Error::UnknownRevocationStatus) => Err(Refusal {
                error: webpki::Error::UnknownRevocationStatus,
                detail: Some(self.explain_unknown_status(&ee, intermediates, now)),
            }),
            // Name the CA the client's chain needed and the ones the hub trusts. (A bad
            // signature here means a CA of the same name, but another key, issued it.)
            Err(
                e @ (webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey),
            ) => {
                let chain: Vec<CertificateDer<'_>> = std::iter::once(end_entity.clone())
                    .chain(intermediates.iter().cloned())
                    .collect();
                let same_name = matches!(e, webpki::Error::InvalidSignatureForPublicKey);
                Err(Refusal {
                    detail: Some(super::check::unknown_issuer(
                        &chain,
                        &self.bundle,
                        same_name,
                    )),
                    error: e,
                })
            }
            Err(e) => Err(refusal(e)),
        }
    }

    /// Names the CA(s) of the path that have no CRL.
    fn explain_unknown_status(
        &self,
        ee: &webpki::EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> String {
        let generic = "revocation status unknown: a CA of the chain has no CRL in tls.crls \
                       (refused: with tls.crls set, unknown status is a refusal)"
            .to_string();
        let Ok(path) = ee.verify_for_usage(
            self.algs,
            &self.anchors,
            intermediates,
            now,
            webpki::KeyUsage::client_auth(),
            None,
            None,
        ) else {
            return generic;
        };
        let ders = std::iter::once(path.end_entity().der())
            .chain(path.intermediate_certificates().map(|c| c.der()));
        let mut missing = Vec::new();
        for der in ders {
            if let Ok((_, cert)) = X509Certificate::from_der(der.as_ref())
                && !self
                    .crl_issuers
                    .iter()
                    .any(|i| i.as_slice() == cert.issuer().as_raw())
            {
                missing.push(cert.issuer().to_string());
            }
        }
        if missing.is_empty() {
            return generic;
        }
        format!(
            "revocation status unknown: no CRL from CA {} in tls.crls (refused: with tls.crls \
             set, every CA of a client chain needs its CRL)",
            missing.join(", CA ")
        )
    }
}

fn note(f: impl FnOnce(&mut Presented)) {
    // Outside a scope (not through the accept loop) there is nothing to note.
    let _ = PRESENTED.try_with(|p| f(&mut p.borrow_mut()));
}

impl ClientCertVerifier for ChainVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let sha = hex::encode(Sha256::digest(end_entity.as_ref()));
        note(|p| p.cert_sha256 = Some(sha));
        match self.verify_chain(end_entity, intermediates, now) {
            Ok(ca) => {
                note(|p| p.ca_spki_sha256 = Some(ca));
                Ok(ClientCertVerified::assertion())
            }
            Err(refusal) => {
                note(|p| p.why = refusal.detail.clone());
                match self
                    .inner
                    .verify_client_cert(end_entity, intermediates, now)
                {
                    Err(e) => Err(e),
                    // The two never disagree (same inputs, same library); if they did, the
                    // refusal stands.
                    Ok(_) => Err(Error::InvalidCertificate(CertificateError::Other(
                        OtherError(Arc::new(refusal.error)),
                    ))),
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The refusal as a string for callers outside the handshake (re-checks after a reload).
pub fn describe(refusal: &Refusal) -> String {
    match &refusal.detail {
        Some(d) => d.clone(),
        None => rustls_reason(&refusal.error),
    }
}

/// webpki's errors in the words rustls uses for them (e.g. "certificate revoked").
fn rustls_reason(e: &webpki::Error) -> String {
    use webpki::Error as W;
    let c = match e {
        W::CertExpired { .. } => CertificateError::Expired,
        W::CertNotValidYet { .. } => CertificateError::NotValidYet,
        W::CertRevoked => CertificateError::Revoked,
        W::UnknownIssuer => CertificateError::UnknownIssuer,
        W::UnknownRevocationStatus => CertificateError::UnknownRevocationStatus,
        W::CrlExpired { .. } => CertificateError::ExpiredRevocationList,
        W::RequiredEkuNotFoundContext(_) => CertificateError::InvalidPurpose,
        other => return format!("invalid certificate: {other:?}"),
    };
    Error::InvalidCertificate(c).to_string()
}
