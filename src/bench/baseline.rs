//! The fan-out baseline: a gRPC server with the hub's TLS accept loop and the same Feed
//! service definition, whose subscriptions only forward pre-encoded messages from one
//! broadcast channel. Its subscription tasks have the hub's shape (broadcast receiver -> small
//! per-subscriber queue -> HTTP/2 stream) without the audience decision, storage or audit:
//! what the transport alone does on this machine in the same run.
use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::{net::TcpListener, sync::broadcast};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, transport::Server};

use crate::{
    feed::wire::FeedEvent,
    limits::Admission,
    pb::{
        self,
        feed_server::{Feed, FeedServer},
    },
    tls::{
        ServerTlsFiles,
        incoming::{self, AcceptLimits},
        reload::TlsState,
    },
};

/// Messages buffered for subscribers that are behind, as the hub's live buffer.
pub const BUFFER: usize = 4096;

#[derive(Clone)]
struct BaselineFeed {
    tx: broadcast::Sender<Bytes>,
    /// Messages subscribers missed by falling more than [`BUFFER`] behind.
    lost: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl Feed for BaselineFeed {
    type SubscribeStream = ReceiverStream<Result<FeedEvent, Status>>;

    async fn subscribe(
        &self,
        _req: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let mut rx = self.tx.subscribe();
        let lost = self.lost.clone();
        let (sink, stream) = tokio::sync::mpsc::channel(32);
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(bytes) => {
                        if sink.send(Ok(FeedEvent::Encoded(bytes))).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        lost.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(stream)))
    }
}

/// A running baseline server.
pub struct Baseline {
    pub addr: std::net::SocketAddr,
    pub tx: broadcast::Sender<Bytes>,
    pub lost: Arc<AtomicU64>,
    shutdown: CancellationToken,
}

impl Baseline {
    /// Serves on 127.0.0.1:0 with the TLS files of the bench hub in `dir`.
    pub async fn start(dir: &Path) -> anyhow::Result<Baseline> {
        let tls = TlsState::load(ServerTlsFiles {
            client_ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server-key.pem"),
            crls: vec![],
        })?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let incoming = incoming::accept(
            listener,
            tls,
            AcceptLimits {
                max_connections: 100_000,
                handshake_timeout: Duration::from_secs(10),
                http1: false,
            },
            Arc::new(|_, _, _| {}),
            Arc::new(Admission::new(10_000_000, 10_000_000, 100_000)),
            shutdown.clone(),
        );
        let (tx, _) = broadcast::channel(BUFFER);
        let lost = Arc::new(AtomicU64::new(0));
        let service = BaselineFeed {
            tx: tx.clone(),
            lost: lost.clone(),
        };
        let token = shutdown.clone();
        tokio::spawn(async move {
            let _ = Server::builder()
                .max_concurrent_streams(100_000)
                .add_service(FeedServer::new(service))
                .serve_with_incoming_shutdown(incoming, token.cancelled())
                .await;
        });
        Ok(Baseline {
            addr,
            tx,
            lost,
            shutdown,
        })
    }

    /// Sends message number `seq`: `change` (an encoded `FeedChange` field, tag included)
    /// behind the sequence, as the hub encodes one event once for all its subscribers.
    pub fn send(&self, seq: u64, change: &[u8]) {
        let mut msg = BytesMut::with_capacity(11 + change.len());
        msg.put_u8(0x08);
        prost::encoding::encode_varint(seq, &mut msg);
        msg.put_slice(change);
        let _ = self.tx.send(msg.freeze());
    }

    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}
