//! TLS: certificate files, the rustls server configuration with client-certificate
//! verification, the identity facts of a verified peer, the accept loop, and the dev PKI.
pub mod bundle;
pub mod check;
pub mod crl;
pub mod devpki;
pub mod identity;
pub mod incoming;
pub mod presented;
pub mod reload;
pub mod watch;

use std::{path::Path, sync::Arc};

use rustls::{ServerConfig, server::WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// Errors loading certificates or building TLS configurations.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
    /// `tls.crls` is set but these CAs of the bundle have none.
    #[error(
        "tls.crls: no CRL for client CA {}: with tls.crls set, every CA of tls.client_ca needs \
         its current CRL (certificates it issued would be refused, revocation status unknown); \
         add its CRL file to tls.crls, or remove the CA from tls.client_ca",
        .0.join(", CA ")
    )]
    MissingCrl(Vec<String>),
}

pub(crate) fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
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

/// Reads every CRL of a file (PEM or DER); an unusable, empty or expired one is an error.
pub fn load_crls(path: &Path) -> Result<Vec<crl::LoadedCrl>, TlsError> {
    crl::load_file(path, crl::now())
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

/// What one load of the TLS files produced.
pub struct Loaded {
    pub config: Arc<ServerConfig>,
    /// The same, also offering HTTP/1.1 (the web portal: browsers and their tools may not
    /// speak HTTP/2).
    pub web_config: Arc<ServerConfig>,
    /// The client-certificate check, also used to re-check open connections after a reload.
    pub verifier: Arc<presented::ChainVerifier>,
    /// The CRLs in force (file, issuer, nextUpdate).
    pub crls: Vec<crl::LoadedCrl>,
}

/// Builds the server configuration: TLS 1.2/1.3, a client certificate chaining to the CA bundle
/// is required (every certificate of its chain checked against the CRLs), ALPN `h2` only.
///
/// Revocation policy, explicit: when CRLs are configured, every certificate of the chain (not
/// only the end entity) is checked; a certificate whose status is unknown (its CA has no CRL)
/// is refused; an expired CRL refuses the certificates of its CA. Each CA of the bundle must
/// have a CRL (checked here, so that the gap is an error naming the CA at start and in
/// `config check` rather than refused handshakes).
pub fn server_config(files: &ServerTlsFiles) -> Result<Loaded, TlsError> {
    install_crypto_provider();
    let bundle = Arc::new(bundle::Bundle::load(&files.client_ca)?);
    let mut roots = rustls::RootCertStore::empty();
    roots.roots = bundle.anchors();
    let now = crl::now();
    let mut crls = Vec::new();
    for path in &files.crls {
        crls.extend(crl::load_file(path, now)?);
    }
    crl::check_against(&bundle, &crls)?;
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .with_crls(crls.iter().map(|c| c.der.clone()));
    if !crls.is_empty() {
        builder = builder.enforce_revocation_expiration();
    }
    let inner = builder
        .build()
        .map_err(|e| TlsError::Config(format!("client verifier: {e}")))?;
    let verifier = Arc::new(presented::ChainVerifier::new(
        inner,
        bundle,
        crls.iter()
            .map(|c| (c.parsed.clone(), c.issuer_der.clone()))
            .collect(),
        provider.signature_verification_algorithms.all,
    ));
    let chain = load_certs(&files.cert)?;
    let key = load_key(&files.key)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(format!("protocol versions: {e}")))?
        .with_client_cert_verifier(verifier.clone())
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(format!("server certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    let mut web_config = config.clone();
    web_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        web_config: Arc::new(web_config),
        verifier,
        crls,
    })
}
