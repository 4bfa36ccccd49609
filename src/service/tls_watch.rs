//! Keeps the TLS material current and says how it stands: polls the files and reloads them
//! when they change, and reports the state as the `cbm-hub.tls` service of grpc.health.v1:
//! SERVING while what is in force is what the files say and no CRL in force has passed its
//! nextUpdate; NOT_SERVING while a changed file could not be loaded (the previous certificates
//! and CRLs stay in force) or a CRL in force is stale (its CA's certificates are refused until
//! a current CRL is installed). The hub as a whole (`""`) keeps serving either way.
use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::tls::{
    crl,
    reload::{TlsState, TlsStatus},
};

/// The health service name that reports the TLS material.
pub const HEALTH_SERVICE: &str = "cbm-hub.tls";

/// Reports the state now, then polls every `every`; returns the task, ended by `shutdown`.
pub async fn spawn(
    tls: Arc<TlsState>,
    every: Duration,
    health: HealthReporter,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let status = tls.status(crl::now());
    report(&health, &status, None).await;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        let mut last = Some(status);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let polled = tls.clone();
            // Errors are logged and counted by the reload itself.
            if let Err(e) = tokio::task::spawn_blocking(move || polled.reload_if_changed()).await {
                tracing::error!(error = %e, "TLS reload task failed");
            }
            let status = tls.status(crl::now());
            if last.as_ref() != Some(&status) {
                report(&health, &status, last.as_ref()).await;
                last = Some(status);
            }
        }
    })
}

async fn report(health: &HealthReporter, status: &TlsStatus, before: Option<&TlsStatus>) {
    let newly_expired = status
        .crls_expired
        .iter()
        .filter(|c| before.is_none_or(|b| !b.crls_expired.contains(c)));
    for c in newly_expired {
        tracing::error!(crl = %c, "CRL in force has passed its nextUpdate: certificates of its CA are refused until a current CRL is installed");
    }
    let serving = if status.is_healthy() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    health.set_service_status(HEALTH_SERVICE, serving).await;
}
