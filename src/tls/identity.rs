//! What a verified client certificate offers for binding to a member.
use sha2::{Digest, Sha256};
use x509_parser::{extensions::GeneralName, prelude::FromDer};

use crate::domain::member::CertificateFacts;

/// Digests and URI SANs of a DER certificate whose verified chain ends at the bundle CA with
/// SPKI SHA-256 `ca_spki_sha256`. The certificate was verified by the TLS layer; parsing it
/// again here only extracts facts.
pub fn certificate_facts(der: &[u8], ca_spki_sha256: &str) -> Result<CertificateFacts, String> {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|e| format!("unparsable client certificate: {e}"))?;
    let spki = cert.tbs_certificate.subject_pki.raw;
    let mut uri_sans = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name {
                uri_sans.push((*uri).to_string());
            }
        }
    }
    Ok(CertificateFacts {
        cert_sha256: hex::encode(Sha256::digest(der)),
        spki_sha256: hex::encode(Sha256::digest(spki)),
        uri_sans,
        ca_spki_sha256: ca_spki_sha256.to_string(),
    })
}
