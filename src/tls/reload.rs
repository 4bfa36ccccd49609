//! TLS material that changes without a restart: the CA bundle, CRLs, or the server's own
//! certificate are re-read when their files change (polled) or on SIGHUP. New handshakes use
//! the new configuration at once; open connections re-check their client chain against it on
//! their next request, and open feed streams at once (they watch [`TlsState::changes`]), so a
//! revoked certificate loses access within a bounded time without waiting for its connection
//! to end.
//!
//! A reload that fails (an unreadable, empty, truncated or expired CRL, a CA without a CRL, a
//! bad certificate) keeps the previous configuration in force, and says so: in the log, in
//! [`TlsState::status`] (metrics and the `cbm-hub.tls` health service), until a reload works.
use std::{
    path::PathBuf,
    sync::{Arc, Mutex, RwLock},
    time::SystemTime,
};

use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::sync::watch;

use super::{Loaded, ServerTlsFiles, TlsError, bundle::Bundle, presented, server_config};

/// The current TLS configuration and its generation.
pub struct TlsState {
    files: ServerTlsFiles,
    current: RwLock<Arc<Loaded>>,
    /// Bumped on every reload that changed something; open streams watch it.
    generation: watch::Sender<u64>,
    /// Modification times of the files at the last attempt to load them.
    stamps: Mutex<Vec<Option<SystemTime>>>,
    status: Mutex<Counts>,
}

/// Reload outcomes since start.
#[derive(Debug, Default, Clone)]
struct Counts {
    applied: u64,
    refused: u64,
    /// Why the last reload failed, while the files on disk are still the ones that failed.
    failing: Option<String>,
}

/// The state of the TLS material, for health and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsStatus {
    /// Reloads that took effect since start.
    pub reloads_applied: u64,
    /// Reloads refused since start (the previous configuration stayed in force).
    pub reloads_refused: u64,
    /// Why the files on disk are not in force, if they are not.
    pub failing: Option<String>,
    /// The earliest nextUpdate of the CRLs in force, Unix seconds (None: no CRLs).
    pub crl_next_update: Option<i64>,
    /// The CRLs in force that are past their nextUpdate: "file (issuer)".
    pub crls_expired: Vec<String>,
}

impl TlsStatus {
    /// Whether what is in force is what the files say and no CRL in force is stale.
    pub fn is_healthy(&self) -> bool {
        self.failing.is_none() && self.crls_expired.is_empty()
    }
}

impl std::fmt::Debug for TlsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsState(generation {})", self.generation())
    }
}

impl TlsState {
    pub fn load(files: ServerTlsFiles) -> Result<Arc<TlsState>, TlsError> {
        let loaded = server_config(&files)?;
        let stamps = stamps(&files);
        Ok(Arc::new(TlsState {
            files,
            current: RwLock::new(Arc::new(loaded)),
            generation: watch::Sender::new(0),
            stamps: Mutex::new(stamps),
            status: Mutex::new(Counts::default()),
        }))
    }

    fn current(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn config(&self) -> Arc<ServerConfig> {
        self.current().config.clone()
    }

    /// The configuration in force for the web portal: the same, also offering HTTP/1.1.
    pub fn web_config(&self) -> Arc<ServerConfig> {
        self.current().web_config.clone()
    }

    /// The chain verifier in force (bundle, CRLs, revocation policies).
    pub fn verifier(&self) -> Arc<presented::ChainVerifier> {
        self.current().verifier.clone()
    }

    /// The CA bundle in force.
    pub fn bundle(&self) -> Arc<Bundle> {
        self.current().verifier.bundle.clone()
    }

    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// Changes after every reload that took effect.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Re-reads the files. On error the previous configuration stays in force; the error is
    /// logged, counted and shown in [`TlsState::status`] until a reload succeeds.
    pub fn reload(&self) -> Result<(), TlsError> {
        // Stamped before reading: a file changed while it is read is read again next time.
        let stamped = stamps(&self.files);
        let result = server_config(&self.files);
        *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) = stamped;
        let mut counts = self.status.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(loaded) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
                counts.applied += 1;
                counts.failing = None;
                drop(counts);
                self.generation.send_modify(|g| *g += 1);
                tracing::info!(generation = self.generation(), "TLS configuration reloaded");
                Ok(())
            }
            Err(e) => {
                counts.refused += 1;
                counts.failing = Some(e.to_string());
                tracing::error!(error = %e, "TLS reload refused; the previous certificates and CRLs stay in force");
                Err(e)
            }
        }
    }

    /// Reloads if any file changed since the last attempt; true if it reloaded. A refused
    /// reload is not retried until a file changes again (it would fail the same way).
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = stamps(&self.files);
        if *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) == now {
            return Ok(false);
        }
        self.reload().map(|()| true)
    }

    /// The state of the material in force, at Unix time `now`.
    pub fn status(&self, now: i64) -> TlsStatus {
        let counts = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let current = self.current();
        TlsStatus {
            reloads_applied: counts.applied,
            reloads_refused: counts.refused,
            failing: counts.failing,
            crl_next_update: super::crl::earliest_next_update(&current.crls),
            crls_expired: current
                .crls
                .iter()
                .filter(|c| c.next_update <= now)
                .map(|c| format!("{} ({})", c.path.display(), c.issuer))
                .collect(),
        }
    }

    /// Checks a client chain (end entity first, then the intermediates the client sent)
    /// against the current configuration: the CA bundle, CRLs and validity periods as they are
    /// now. Returns the SPKI SHA-256 of the bundle CA it ends at.
    pub fn check_chain(&self, chain: &[CertificateDer<'static>]) -> Result<String, String> {
        let (end_entity, intermediates) = chain
            .split_first()
            .ok_or_else(|| "no client certificate".to_string())?;
        self.current()
            .verifier
            .verify_chain(end_entity, intermediates, UnixTime::now())
            .map_err(|r| presented::describe(&r))
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

/// A connection's client chain, the CA it was verified to end at, and the TLS generation it
/// was last checked against.
#[derive(Debug, Clone)]
pub struct PeerCertificate {
    /// End entity first, then the intermediates as the client sent them: a re-check needs
    /// them to build the same path (a client certificate from an intermediate CA would
    /// otherwise fail every re-check).
    pub chain: Arc<Vec<CertificateDer<'static>>>,
    /// SPKI SHA-256 of the bundle CA the chain ended at when the connection was made.
    pub ca_spki_sha256: Arc<str>,
    /// Shared by every request of the connection.
    pub checked_generation: Arc<std::sync::atomic::AtomicU64>,
}

impl PeerCertificate {
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        ca_spki_sha256: &str,
        generation: u64,
    ) -> PeerCertificate {
        PeerCertificate {
            chain: Arc::new(chain),
            ca_spki_sha256: ca_spki_sha256.into(),
            checked_generation: Arc::new(generation.into()),
        }
    }

    /// Re-checks the chain if the TLS configuration changed since it was last checked. The
    /// chain must still end at the same CA: bindings were matched against that CA.
    pub fn ensure_accepted(&self, tls: &TlsState) -> Result<(), String> {
        use std::sync::atomic::Ordering;
        let current = tls.generation();
        if self.checked_generation.load(Ordering::Acquire) == current {
            return Ok(());
        }
        let ca = tls.check_chain(&self.chain)?;
        if *ca != *self.ca_spki_sha256 {
            return Err(format!(
                "its chain now ends at another CA of the bundle (spki_sha256 {ca}); reconnect"
            ));
        }
        self.checked_generation.store(current, Ordering::Release);
        Ok(())
    }
}
