//! Health name `integrity`: SERVING while no damage is known, NOT_SERVING once the background
//! check (or any check) has found some (see `store::background_check`).
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Health name of the stored data's integrity.
pub const INTEGRITY_HEALTH: &str = "integrity";

/// Reports the store's integrity under [`INTEGRITY_HEALTH`] from now until `shutdown`.
pub async fn spawn_health(
    store: Store,
    health: tonic_health::server::HealthReporter,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let mut integrity = store.integrity();
    drop(store);
    let status = |damaged: bool| match damaged {
        true => tonic_health::ServingStatus::NotServing,
        false => tonic_health::ServingStatus::Serving,
    };
    let mut damaged = !integrity.borrow_and_update().problems.is_empty();
    health
        .set_service_status(INTEGRITY_HEALTH, status(damaged))
        .await;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = integrity.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            let now = !integrity.borrow_and_update().problems.is_empty();
            if now != damaged {
                damaged = now;
                health
                    .set_service_status(INTEGRITY_HEALTH, status(damaged))
                    .await;
            }
        }
    })
}
