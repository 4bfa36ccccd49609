//! The client CA bundle (`tls.client_ca`): the trust anchors client chains must end at, and
//! what the hub needs to name each CA (in errors, in `member` bindings) and to check its CRL.
use std::path::Path;

use rustls_pki_types::{CertificateDer, TrustAnchor};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{TlsError, file_error, load_certs};

/// One CA of the bundle.
#[derive(Debug, Clone)]
pub struct BundleCa {
    /// The subject as text ("CN=Ministry PKI, O=..."), for messages.
    pub subject: String,
    /// The subject as DER: a CRL is this CA's when its issuer is these exact bytes (the
    /// comparison webpki makes).
    pub subject_der: Vec<u8>,
    /// Lowercase hex SHA-256 of the CA's DER SubjectPublicKeyInfo: how bindings name their
    /// issuing CA (`issuer_spki_sha256`).
    pub spki_sha256: String,
    /// The certificate, to check its CRLs' signatures.
    pub der: CertificateDer<'static>,
    /// The anchor webpki builds paths to.
    pub anchor: TrustAnchor<'static>,
}

/// The CAs of the bundle, in file order.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    pub cas: Vec<BundleCa>,
    /// The SPKI hash of the only CA, when there is one (computed once: every request's
    /// binding check asks).
    sole: Option<String>,
}

impl Bundle {
    /// Reads the bundle; every certificate must be a usable CA certificate.
    pub fn load(path: &Path) -> Result<Bundle, TlsError> {
        let mut cas = Vec::new();
        for der in load_certs(path)? {
            let (_, cert) = X509Certificate::from_der(der.as_ref())
                .map_err(|e| file_error(path, format!("not a usable CA certificate: {e}")))?;
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|e| file_error(path, format!("not a usable CA certificate: {e:?}")))?
                .to_owned();
            cas.push(BundleCa {
                subject: cert.subject().to_string(),
                subject_der: cert.subject().as_raw().to_vec(),
                spki_sha256: hex::encode(Sha256::digest(cert.public_key().raw)),
                anchor,
                der: der.clone(),
            });
        }
        let mut bundle = Bundle { cas, sole: None };
        bundle.sole = match bundle.distinct_spkis().as_slice() {
            [one] => Some(one.to_string()),
            _ => None,
        };
        Ok(bundle)
    }

    /// The trust anchors, in bundle order.
    pub fn anchors(&self) -> Vec<TrustAnchor<'static>> {
        self.cas.iter().map(|c| c.anchor.clone()).collect()
    }

    /// The CA whose anchor `anchor` is (webpki hands back the anchor a path ended at).
    pub fn ca_of(&self, anchor: &TrustAnchor<'_>) -> Option<&BundleCa> {
        self.cas.iter().find(|c| {
            c.anchor.subject.as_ref() == anchor.subject.as_ref()
                && c.anchor.subject_public_key_info.as_ref()
                    == anchor.subject_public_key_info.as_ref()
        })
    }

    /// The SPKI hashes of the distinct CAs (a CA listed twice counts once).
    pub fn distinct_spkis(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for c in &self.cas {
            if !seen.contains(&c.spki_sha256.as_str()) {
                seen.push(&c.spki_sha256);
            }
        }
        seen
    }

    /// The SPKI hash of the bundle's only CA; None when it holds several.
    pub fn sole_ca(&self) -> Option<&str> {
        self.sole.as_deref()
    }

    /// The CAs as an administrator reads them: `subject (spki_sha256 HASH)`, one per CA.
    pub fn describe(&self) -> String {
        self.cas
            .iter()
            .map(|c| format!("{} (spki_sha256 {})", c.subject, c.spki_sha256))
            .collect::<Vec<_>>()
            .join("; ")
    }
}
