//! Which client certificate a connection presented, known even when the handshake refuses it,
//! so that refused handshakes are audited with the fingerprint presented.
//!
//! The accept loop runs each handshake inside [`PRESENTED`]'s task-local scope; the verifier,
//! which rustls calls synchronously while that handshake future is polled, records the
//! certificate's SHA-256 there before delegating to the real (webpki) verifier.
use std::{cell::RefCell, sync::Arc};

use rustls::{
    DigitallySignedStruct, DistinguishedName, Error, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    server::danger::{ClientCertVerified, ClientCertVerifier},
};
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};

tokio::task_local! {
    /// SHA-256 of the end-entity certificate presented in the current handshake.
    pub static PRESENTED: RefCell<Option<String>>;
}

/// Wraps a verifier, noting the presented certificate.
#[derive(Debug)]
pub struct NotingVerifier {
    pub inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for NotingVerifier {
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
        // Outside a scope (not through the accept loop) there is nothing to note.
        let _ = PRESENTED.try_with(|p| *p.borrow_mut() = Some(sha));
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
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
