//! TLS material that changes without a restart: the CA bundle, CRLs, or the server's own
//! certificate are re-read when their files change (polled) or on SIGHUP. New handshakes use
//! the new configuration at once; open connections re-check their client certificate against
//! it on their next request or stream event, so a revoked certificate loses access within a
//! bounded time without waiting for its connection to end.
use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use rustls::{ServerConfig, server::danger::ClientCertVerifier};
use rustls_pki_types::{CertificateDer, UnixTime};

use super::{ServerTlsFiles, TlsError, server_config};

/// The current TLS configuration and its generation.
pub struct TlsState {
    files: ServerTlsFiles,
    config: RwLock<Arc<ServerConfig>>,
    verifier: RwLock<Arc<dyn ClientCertVerifier>>,
    /// Bumped on every reload that changed something.
    generation: AtomicU64,
    /// Modification times of the files at the last load.
    stamps: Mutex<Vec<Option<SystemTime>>>,
}

impl std::fmt::Debug for TlsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsState(generation {})", self.generation())
    }
}

impl TlsState {
    pub fn load(files: ServerTlsFiles) -> Result<Arc<TlsState>, TlsError> {
        let (config, verifier) = server_config(&files)?;
        let stamps = stamps(&files);
        Ok(Arc::new(TlsState {
            files,
            config: RwLock::new(config),
            verifier: RwLock::new(verifier),
            generation: AtomicU64::new(0),
            stamps: Mutex::new(stamps),
        }))
    }

    pub fn config(&self) -> Arc<ServerConfig> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Re-reads the files. On error the previous configuration stays in force.
    pub fn reload(&self) -> Result<(), TlsError> {
        let (config, verifier) = server_config(&self.files)?;
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
        *self.verifier.write().unwrap_or_else(|p| p.into_inner()) = verifier;
        *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) = stamps(&self.files);
        self.generation.fetch_add(1, Ordering::AcqRel);
        tracing::info!(generation = self.generation(), "TLS configuration reloaded");
        Ok(())
    }

    /// Reloads if any file changed since the last load; true if it reloaded.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = stamps(&self.files);
        if *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) == now {
            return Ok(false);
        }
        self.reload().map(|()| true)
    }

    /// Checks a client certificate (already verified at its handshake) against the current
    /// configuration: the CA bundle, CRLs and validity period as they are now.
    pub fn still_accepted(&self, cert_der: &[u8]) -> Result<(), String> {
        let verifier = self
            .verifier
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        verifier
            .verify_client_cert(&CertificateDer::from(cert_der), &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

fn stamps(files: &ServerTlsFiles) -> Vec<Option<SystemTime>> {
    let paths: Vec<&PathBuf> = [&files.client_ca, &files.cert, &files.key]
        .into_iter()
        .chain(files.crls.iter())
        .collect();
    paths
        .into_iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

/// A connection's client certificate with the TLS generation it was last checked against.
#[derive(Debug, Clone)]
pub struct PeerCertificate {
    pub der: Arc<Vec<u8>>,
    /// Shared by every request of the connection.
    pub checked_generation: Arc<AtomicU64>,
}

impl PeerCertificate {
    pub fn new(der: Vec<u8>, generation: u64) -> PeerCertificate {
        PeerCertificate {
            der: Arc::new(der),
            checked_generation: Arc::new(AtomicU64::new(generation)),
        }
    }

    /// Re-checks the certificate if the TLS configuration changed since it was last checked.
    pub fn ensure_accepted(&self, tls: &TlsState) -> Result<(), String> {
        let current = tls.generation();
        if self.checked_generation.load(Ordering::Acquire) == current {
            return Ok(());
        }
        tls.still_accepted(&self.der)?;
        self.checked_generation.store(current, Ordering::Release);
        Ok(())
    }
}
