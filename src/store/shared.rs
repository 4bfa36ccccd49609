//! The state the writer publishes and readers read: one struct, shared by the store's handles
//! and its writer thread, instead of one `Arc` per field threaded through both.
use std::{
    collections::HashSet,
    sync::{Arc, OnceLock, RwLock, atomic::AtomicU64},
};

use tokio::sync::broadcast;

use super::{Committed, disk::DiskWatch};
use crate::{
    audit::signing::Signer,
    domain::{budget::Budget, catalogue::Catalogue, member::Registry},
};

pub(crate) struct Shared {
    /// Current registry snapshot, replaced whole by the writer after each committed change.
    pub registry: RwLock<Arc<Registry>>,
    /// Current CBM catalogue (built-in plus added frameworks), replaced whole like the registry.
    pub catalogue: RwLock<Arc<Catalogue>>,
    /// Highest committed (durable) feed sequence.
    pub head: AtomicU64,
    /// See [`super::Store::audience_generation`].
    pub audience_generation: AtomicU64,
    /// Bumped after every registry change, so long-lived streams re-check their member cheaply;
    /// a watch, so that they can also wait for it (see `tls::watch`).
    pub registry_generation: tokio::sync::watch::Sender<u64>,
    /// Entries in the audit log (applied), for metrics.
    pub audit_len: AtomicU64,
    /// Entries of the audit log made durable by a flush: a checkpoint beyond them (signed and
    /// stored in the instant before its flush) is not shown, since a crash could take it and
    /// its entries, and a later checkpoint of that size would then look like a fork.
    pub audit_durable: AtomicU64,
    /// Committed events, in sequence order, for live subscribers.
    pub live: broadcast::Sender<Arc<Committed>>,
    /// Why storage failed, once it has; writes are refused from then on. An `Arc` of its own
    /// so that it can be read after the store is closed.
    pub failure: Arc<OnceLock<String>>,
    /// Signs audit checkpoints.
    pub signer: Signer,
    /// Free space on the data directory's disk: changes are refused below the reserve.
    pub disk: DiskWatch,
    /// The byte budgets derived from the message limit: no record over them is stored.
    pub budget: Budget,
    /// Ids of the submissions with more than one revision (the `Revised` records): replay
    /// reads the head of these and decides the others from their one event. Grown by the
    /// writer when a group is applied, before it is durable (a reader that meets an id here
    /// whose revision is not durable yet reads the durable part of its head).
    pub revised: RwLock<HashSet<Box<str>>>,
}

impl Shared {
    /// The current registry snapshot.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The current catalogue snapshot.
    pub fn catalogue(&self) -> Arc<Catalogue> {
        self.catalogue
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
