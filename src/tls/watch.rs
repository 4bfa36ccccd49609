//! What a long-lived stream waits on to re-check its caller at once: a registry change
//! (suspension, unbinding) or a TLS reload (a new CRL, CA bundle). As linkerd2-proxy's
//! inbound policy does with `policy.changed()`: the change is pushed through a tokio watch
//! channel, so an idle stream learns of it without waiting for its next event or heartbeat.
use tokio::sync::watch;

use super::incoming::ConnInfo;
use crate::{
    domain::member::{Binding, Registry},
    store::Store,
};

/// The registry's and the connection's TLS change signals, awaited as one.
#[derive(Debug)]
pub struct PolicyWatch {
    registry: Option<watch::Receiver<u64>>,
    tls: Option<watch::Receiver<u64>>,
}

impl PolicyWatch {
    /// Watches the registry of `store` and, when the stream came through the TLS accept loop,
    /// the TLS configuration its certificate is re-checked against. Changes made before this
    /// call are not reported (the caller has just checked against them).
    pub fn new(store: &Store, conn: Option<&ConnInfo>) -> PolicyWatch {
        PolicyWatch {
            registry: Some(store.registry_changes()),
            tls: conn.map(|c| c.tls.changes()),
        }
    }

    /// Completes when either changed since the last call. Never completes once both senders
    /// are gone (the hub is stopping: the stream ends through its shutdown token instead).
    pub async fn changed(&mut self) {
        loop {
            let (registry, tls) = (&mut self.registry, &mut self.tls);
            let closed = tokio::select! {
                r = changed(registry) => r.is_err().then_some(Which::Registry),
                r = changed(tls) => r.is_err().then_some(Which::Tls),
            };
            match closed {
                None => return,
                // A closed channel would complete at once forever: stop watching it.
                Some(Which::Registry) => self.registry = None,
                Some(Which::Tls) => self.tls = None,
            }
        }
    }
}

/// Whether the stream's connection still resolves to `member` in `registry` (checked after a
/// registry change): its binding may have been removed, given to a CA other than the one its
/// certificate chains to, or the member removed. Without connection facts, whether `binding`
/// still belongs to the member.
pub fn still_bound(
    conn: Option<&ConnInfo>,
    registry: &Registry,
    binding: &Binding,
    member: &str,
) -> bool {
    match conn.filter(|c| c.cert.is_some()) {
        Some(conn) => conn.member_of(registry).is_ok_and(|(m, _)| m.id == member),
        None => registry.owner_of(binding) == Some(member),
    }
}

enum Which {
    Registry,
    Tls,
}

async fn changed(rx: &mut Option<watch::Receiver<u64>>) -> Result<(), watch::error::RecvError> {
    match rx {
        Some(rx) => rx.changed().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn watch_of(registry: &watch::Sender<u64>, tls: &watch::Sender<u64>) -> PolicyWatch {
        PolicyWatch {
            registry: Some(registry.subscribe()),
            tls: Some(tls.subscribe()),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn either_change_wakes_the_watcher_once() {
        let (registry, tls) = (watch::Sender::new(0), watch::Sender::new(0));
        let mut w = watch_of(&registry, &tls);
        let idle = tokio::time::timeout(Duration::from_secs(300), w.changed()).await;
        assert!(idle.is_err(), "nothing changed: the watcher waits");
        registry.send_modify(|g| *g += 1);
        tokio::time::timeout(Duration::from_secs(1), w.changed())
            .await
            .expect("a registry change wakes it");
        tls.send_modify(|g| *g += 1);
        tokio::time::timeout(Duration::from_secs(1), w.changed())
            .await
            .expect("a TLS reload wakes it");
        let again = tokio::time::timeout(Duration::from_secs(300), w.changed()).await;
        assert!(again.is_err(), "each change is reported once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_channel_does_not_spin() {
        let (registry, tls) = (watch::Sender::new(0), watch::Sender::new(0));
        let mut w = watch_of(&registry, &tls);
        drop(registry);
        let waited = tokio::time::timeout(Duration::from_secs(300), w.changed()).await;
        assert!(waited.is_err(), "a closed registry channel is not a change");
        tls.send_modify(|g| *g += 1);
        tokio::time::timeout(Duration::from_secs(1), w.changed())
            .await
            .expect("the other channel still wakes it");
    }
}
