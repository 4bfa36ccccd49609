//! TLS: certificate files, the rustls server configuration with client-certificate
//! verification, the identity facts of a verified peer, the accept loop, and the dev PKI.
pub mod devpki;
pub mod identity;
pub mod incoming;
pub mod presented;
pub mod reload;

use std::{path::Path, sync::Arc};

use rustls::{
    ServerConfig,
    server::{WebPkiClientVerifier, danger::ClientCertVerifier},
};
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, pem::PemObject,
};

/// Errors loading certificates or building TLS configurations.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Installs the one rustls crypto provider of the process (ring). Safe to call repeatedly.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Reads every certificate of a PEM file; at least one is required.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// Reads the private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| file_error(path, format!("no usable private key: {e}")))
}

/// Reads every CRL of a PEM file.
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))
}

/// Where the server's TLS material lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// CA bundle client certificates must chain to.
    pub client_ca: std::path::PathBuf,
    /// The server's certificate chain and key.
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    /// Optional CRL files checked for every client certificate.
    pub crls: Vec<std::path::PathBuf>,
}

/// Builds the server configuration: TLS 1.2/1.3, a client certificate chaining to the CA bundle
/// is required (and checked against the CRLs), ALPN `h2` only.
///
/// Returns the client verifier too, to re-check the certificates of open connections after a
/// reload (see [`reload`]).
pub fn server_config(
    files: &ServerTlsFiles,
) -> Result<(Arc<ServerConfig>, Arc<dyn ClientCertVerifier>), TlsError> {
    install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for ca in load_certs(&files.client_ca)? {
        roots.add(ca).map_err(|e| {
            file_error(
                &files.client_ca,
                format!("not a usable CA certificate: {e}"),
            )
        })?;
    }
    let mut crls = Vec::new();
    for path in &files.crls {
        crls.extend(load_crls(path)?);
    }
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
        .with_crls(crls)
        .build()
        .map_err(|e| TlsError::Config(format!("client verifier: {e}")))?;
    let chain = load_certs(&files.cert)?;
    let key = load_key(&files.key)?;
    let noting = Arc::new(presented::NotingVerifier {
        inner: verifier.clone(),
    });
    let mut config = ServerConfig::builder()
        .with_client_cert_verifier(noting)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(format!("server certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok((Arc::new(config), verifier))
}
