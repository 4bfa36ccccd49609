//! The gRPC server: thin handlers over the domain and the store, served over the TLS accept
//! loop with explicit HTTP/2 limits, plus grpc.health.v1 and server reflection.
mod admin;
mod audit;
pub mod auth;
mod catalogue;
mod consistency;
mod deadlines;
mod directory;
mod feed;
pub(crate) mod hub;
mod integrity;
pub(crate) mod listing;
mod receipt;
mod status;
pub mod tls_watch;
mod undecodable;

use std::{net::SocketAddr, sync::Arc};

use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

pub use admin::AdminService;
pub use audit::{AuditService, WHOLE_VERIFICATION_EVERY};
pub use catalogue::CatalogueService;
pub use directory::DirectoryService;
pub use feed::FeedService;
pub use hub::HubService;
pub use integrity::INTEGRITY_HEALTH;
pub use status::code_name;

use crate::{
    config::Config,
    metrics::{Metrics, rpc::RpcMetricsLayer},
    pb::{
        audit_server::AuditServer, catalogue_server::CatalogueServer,
        directory_server::DirectoryServer, feed_server::FeedServer, hub_server::HubServer,
        member_admin_server::MemberAdminServer,
    },
    store::{Store, StoreError},
    tls::{self, TlsError, incoming},
};

/// Why the hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("opening the store: {0}")]
    Store(#[from] StoreError),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("metrics endpoint on {addr}: {source}")]
    Metrics {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("web portal on {addr}: {source}")]
    Web {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection service: {0}")]
    Reflection(String),
    #[error(
        "the store is damaged; refusing to serve it (restore the data directory from a backup, or \
         inspect it with `cbm-hub check`):\n  - {}",
        .0.join("\n  - ")
    )]
    Damaged(Vec<String>),
}

/// Why a hub did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("serving: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error("closing the store: {0}")]
    Store(#[from] StoreError),
}

/// A hub that is serving. Dropping it does not stop it; call [`RunningHub::stop`].
pub struct RunningHub {
    /// The address actually bound (useful with port 0).
    pub addr: SocketAddr,
    pub store: Store,
    /// The TLS configuration, for reloads (SIGHUP).
    pub tls: Arc<tls::reload::TlsState>,
    /// Where `GET /metrics` is served, when enabled.
    pub metrics_addr: Option<SocketAddr>,
    /// Where the web portal is served (HTTPS), when enabled.
    pub web_addr: Option<SocketAddr>,
    /// This hub's metrics (also readable without the endpoint).
    pub metrics: Metrics,
    shutdown: CancellationToken,
    /// Background tasks (checkpoints, TLS reload), ended by the shutdown token.
    background: Vec<JoinHandle<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl RunningHub {
    /// A token that stops the hub when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the server has stopped (after the token is cancelled), then closes the store
    /// and waits until its data directory is released: once this returns, the directory can be
    /// opened again at once (except after a storage failure, see below).
    pub async fn wait(self) -> Result<(), StopError> {
        let result = match self.task.await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "server task failed");
                Ok(())
            }
        };
        for task in self.background {
            let _ = task.await;
        }
        // Streams and requests still finishing hold the store; the data directory is released
        // only when the last handle is gone (so a new hub can open it at once).
        let store = self.store;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.handles() > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        if store.failure().is_some() {
            // After an I/O error sled's own shutdown (run when its last handle drops) waits
            // forever for a flush that cannot happen. Nothing more can be made durable, so the
            // handle is deliberately leaked: the process exits and the next start recovers.
            std::mem::forget(store);
            return Ok(result?);
        }
        tokio::task::spawn_blocking(move || store.close_and_release())
            .await
            .map_err(|e| StoreError::Io(format!("closing the store: {e}")))??;
        Ok(result?)
    }

    /// Stops accepting, ends open streams, lets in-flight requests finish, closes the store and
    /// waits until its data directory is released.
    pub async fn stop(self) -> Result<(), StopError> {
        self.shutdown.cancel();
        self.wait().await
    }
}

/// Opens the store, binds the listener and starts serving.
pub async fn start(config: &Config) -> Result<RunningHub, StartError> {
    let tls_state = tls::reload::TlsState::load(config.tls.clone())?;
    let data_dir = config.data_dir.clone();
    let store_options = config.store.clone();
    // Every byte budget derives from the message limit (see `domain::budget`).
    let budget = crate::domain::budget::Budget::new(config.limits.max_message_bytes);
    let store = tokio::task::spawn_blocking(move || {
        Store::open_with_budget(&data_dir, store_options, budget)
    })
    .await
    .map_err(|e| StoreError::Io(e.to_string()))??;
    if config.store.check_on_start {
        let checked = store.clone();
        // The tail since the last clean stop or check; the rest in the background below.
        let problems = tokio::task::spawn_blocking(move || checked.start_check())
            .await
            .map_err(|e| StoreError::Io(e.to_string()))??;
        if !problems.is_empty() {
            // Released before returning, so that the caller can repair or inspect it at once.
            tokio::task::spawn_blocking(move || store.close_and_release())
                .await
                .map_err(|e| StoreError::Io(e.to_string()))??;
            return Err(StartError::Damaged(problems));
        }
    }
    warn_bindings_without_issuer(&store, &tls_state);
    let metrics = Metrics::new();
    metrics.started(&store);
    metrics.watch_tls(tls_state.clone());
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            crate::metrics::http::bind(addr)
                .await
                .map_err(|source| StartError::Metrics { addr, source })?,
        ),
        None => None,
    };
    let web_listener = match config.web_listen {
        Some(addr) => {
            let web = |source| StartError::Web { addr, source };
            let listener = TcpListener::bind(addr).await.map_err(web)?;
            let bound = listener.local_addr().map_err(web)?;
            Some((listener, bound))
        }
        None => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let shutdown = CancellationToken::new();
    let limits = &config.limits;
    let accept_limits = incoming::AcceptLimits {
        max_connections: limits.max_connections,
        handshake_timeout: limits.handshake_timeout,
        http1: false,
    };
    // One quota per member across gRPC and the web portal.
    let admission = Arc::new(crate::limits::Admission::new(
        limits.member_requests_per_second,
        limits.member_request_burst,
        limits.max_subscriptions_per_member,
    ));
    let incoming = incoming::accept(
        listener,
        tls_state.clone(),
        accept_limits,
        handshake_audit(store.clone(), metrics.clone()),
        admission.clone(),
        shutdown.clone(),
    );

    let max = limits.max_message_bytes;
    let hub_service = HubService {
        store: store.clone(),
        metrics: metrics.clone(),
        tls: tls_state.clone(),
    };
    let hub = HubServer::new(hub_service.clone())
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let admin = MemberAdminServer::new(AdminService {
        store: store.clone(),
    })
    .max_decoding_message_size(max)
    .max_encoding_message_size(max);

    let feed = FeedServer::new(FeedService {
        store: store.clone(),
        shutdown: shutdown.clone(),
        metrics: metrics.feed.clone(),
    })
    .max_decoding_message_size(max)
    .max_encoding_message_size(max);

    let audit = AuditServer::new(AuditService {
        store: store.clone(),
    })
    .max_decoding_message_size(max)
    .max_encoding_message_size(max);

    let open_campaigns = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || directory::open_deadlines(&store))
            .await
            .map_err(|e| StoreError::Io(e.to_string()))?
            .map_err(|s| StoreError::Corrupt(s.message().to_string()))?
    };
    let closing = store.clone();
    let (deadlines, deadline_task) = deadlines::spawn(
        open_campaigns,
        move |id| directory::close_at_deadline(closing.clone(), id),
        shutdown.clone(),
    );
    let directory_service = DirectoryService {
        store: store.clone(),
        deadlines,
    };
    let directory = DirectoryServer::new(directory_service.clone())
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let catalogue = CatalogueServer::new(CatalogueService {
        store: store.clone(),
    })
    .max_decoding_message_size(max)
    .max_encoding_message_size(max);

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<HubServer<HubService>>().await;
    health_reporter
        .set_serving::<MemberAdminServer<AdminService>>()
        .await;
    let writable = !store.disk_low().0;
    let storage = if writable {
        tonic_health::ServingStatus::Serving
    } else {
        tonic_health::ServingStatus::NotServing
    };
    health_reporter
        .set_service_status(STORAGE_HEALTH, storage)
        .await;
    let mut background = vec![
        spawn_failure_watch(
            store.clone(),
            health_reporter.clone(),
            writable,
            shutdown.clone(),
        ),
        spawn_checkpoints(
            store.clone(),
            config.audit_checkpoint_interval,
            shutdown.clone(),
        ),
        tls_watch::spawn(
            tls_state.clone(),
            config.tls_reload_check,
            health_reporter.clone(),
            shutdown.clone(),
        )
        .await,
        spawn_noise_flush(store.clone(), config.audit_noise_interval, shutdown.clone()),
        deadline_task,
        integrity::spawn_health(store.clone(), health_reporter.clone(), shutdown.clone()).await,
    ];
    let web_addr = match web_listener {
        Some((listener, addr)) => {
            // The same accept loop as gRPC: TLS state (CRL reloads), limits, refusal audit.
            let accepted = incoming::accept(
                listener,
                tls_state.clone(),
                incoming::AcceptLimits {
                    http1: true,
                    ..accept_limits
                },
                handshake_audit(store.clone(), metrics.clone()),
                admission.clone(),
                shutdown.clone(),
            );
            let services = crate::web::Services {
                hub: hub_service.clone(),
                directory: directory_service.clone(),
                catalogue: CatalogueService {
                    store: store.clone(),
                },
                audit: AuditService {
                    store: store.clone(),
                },
                admin: AdminService {
                    store: store.clone(),
                },
            };
            background.push(crate::web::serve(
                accepted,
                services,
                limits.request_timeout,
                shutdown.clone(),
            ));
            tracing::info!(%addr, "web portal served");
            Some(addr)
        }
        None => None,
    };
    if config.store.check_on_start {
        background.push(crate::store::background_check::spawn(
            store.clone(),
            config.store.background_check,
            shutdown.clone(),
        ));
    }
    let metrics_addr = metrics_listener.map(|(listener, addr)| {
        background.push(crate::metrics::http::serve(
            listener,
            metrics.clone(),
            store.clone(),
            shutdown.clone(),
        ));
        tracing::info!(%addr, "metrics served at /metrics");
        addr
    });
    // Reflection in both versions: v1, and v1alpha, which many tools still speak only (the
    // official Python grpcio-reflection client among them). Both describe the same services,
    // the two reflection services included.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .include_reflection_service(false)
            .register_encoded_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
    };
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| StartError::Reflection(e.to_string()))?;
    let reflection = reflection()
        .build_v1()
        .map_err(|e| StartError::Reflection(e.to_string()))?;

    let router = Server::builder()
        // Outermost, so that it sees the codes as clients get them (after the rewrite below).
        .layer(RpcMetricsLayer::new(metrics.clone()))
        .layer(undecodable::UndecodableLayer::new(store.clone()))
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .http2_max_local_error_reset_streams(Some(limits.max_local_error_reset_streams))
        .http2_max_pending_accept_reset_streams(Some(limits.max_pending_accept_reset_streams))
        .http2_max_header_list_size(limits.max_header_list_bytes)
        .timeout(limits.request_timeout)
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(hub)
        .add_service(admin)
        .add_service(feed)
        .add_service(audit)
        .add_service(directory)
        .add_service(catalogue);
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        let result = router
            .serve_with_incoming_shutdown(incoming, token.cancelled())
            .await;
        health_reporter
            .set_not_serving::<HubServer<HubService>>()
            .await;
        result
    });
    tracing::info!(%addr, "cbm-hub serving");
    Ok(RunningHub {
        addr,
        store,
        tls: tls_state,
        metrics_addr,
        web_addr,
        metrics,
        shutdown,
        background,
        task,
    })
}

/// Signs an audit checkpoint every `every` while the log grows (the writer skips a checkpoint
/// when nothing was added), so tampering with stored entries is caught against a signed root.
fn spawn_checkpoints(
    store: Store,
    every: std::time::Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = store.checkpoint().await {
                        tracing::error!(error = %e, "audit checkpoint failed");
                    }
                }
            }
        }
    })
}

/// Counts refused handshakes (with the fingerprint presented) for the audit log's aggregate
/// entries, and in the metrics. Anyone can cause them: they are not written one by one.
fn handshake_audit(store: Store, metrics: Metrics) -> incoming::RefusalSink {
    Arc::new(move |peer, presented, why| {
        metrics.refused("unauthenticated", crate::metrics::reason::TLS_HANDSHAKE);
        let cause = crate::audit::noise::handshake_cause(&why);
        store.noise().note(
            Some(peer.ip()),
            presented.as_deref(),
            crate::audit::noise::TLS_HANDSHAKE,
            cause,
        );
    })
}

/// Writes the aggregated unauthenticated refusals every `every`, and once more at shutdown.
fn spawn_noise_flush(
    store: Store,
    every: std::time::Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    store.flush_noise().await;
                    return;
                }
                _ = tick.tick() => store.flush_noise().await,
            }
        }
    })
}

/// Names the SPKI and URI SAN bindings stored without their issuing CA while the bundle holds
/// several CAs: they are refused (see `domain::member::issuer_check`) until an administrator
/// binds them again with their CA.
fn warn_bindings_without_issuer(store: &Store, tls: &tls::reload::TlsState) {
    let bundle = tls.bundle();
    if bundle.sole_ca().is_some() {
        return;
    }
    for binding in store.registry().bindings_without_issuer() {
        tracing::warn!(
            %binding,
            cas = bundle.cas.len(),
            "binding names no issuing CA and tls.client_ca holds several: its certificates are refused until it is bound again with its CA (`cbm-hub member bind ID --uri-san/--spki-sha256 ... --issuer-ca FILE`)"
        );
    }
}

/// Health name of the hub's storage: SERVING while changes are accepted; NOT_SERVING while
/// the disk is below its reserve (changes refused, reads served) or once storage failed.
pub const STORAGE_HEALTH: &str = "storage";

/// When storage fails, the hub reports NOT_SERVING and stops (streams end UNAVAILABLE); the
/// process exits non-zero so that a supervisor restarts it once the cause is fixed. While the
/// disk is below its reserve, the `storage` health name says so.
fn spawn_failure_watch(
    store: Store,
    health: tonic_health::server::HealthReporter,
    writable_at_start: bool,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        // As reported at start: only a change is reported again (a watcher sees every set,
        // repeated or not).
        let mut writable = Some(writable_at_start);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    if let Some(reason) = store.failure() {
                        tracing::error!(%reason, "stopping the hub");
                        health.set_service_status(STORAGE_HEALTH, tonic_health::ServingStatus::NotServing).await;
                        health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
                        health.set_not_serving::<HubServer<HubService>>().await;
                        health.set_not_serving::<MemberAdminServer<AdminService>>().await;
                        shutdown.cancel();
                        return;
                    }
                    let low = {
                        let store = store.clone();
                        tokio::task::spawn_blocking(move || store.disk_low().0).await.unwrap_or(false)
                    };
                    if writable != Some(!low) {
                        writable = Some(!low);
                        let status = if low {
                            tonic_health::ServingStatus::NotServing
                        } else {
                            tonic_health::ServingStatus::Serving
                        };
                        health.set_service_status(STORAGE_HEALTH, status).await;
                    }
                }
            }
        }
    })
}
