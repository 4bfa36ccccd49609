//! The accept loop: TCP connections, bounded in number, each TLS handshake concurrent and timed
//! out, yielding established connections that carry the verified peer's identity facts.
use std::{
    cell::RefCell,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;

use super::{
    identity::certificate_facts,
    reload::{PeerCertificate, TlsState},
};
use crate::{
    domain::member::{Binding, CertificateFacts, Member, Registry, Unresolved},
    limits::Admission,
};

/// Facts about a connection, available to every request on it.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// Facts of the verified client certificate; None only if the certificate could not be
    /// parsed after verification (requests are then refused).
    pub cert: Option<Arc<CertificateFacts>>,
    /// The certificate itself, re-checked after TLS reloads (revocation of open connections).
    pub peer_cert: Option<PeerCertificate>,
    pub tls: Arc<TlsState>,
    /// The hub's per-member quotas.
    pub admission: Arc<Admission>,
}

impl ConnInfo {
    /// The member the connection's certificate is bound to in `registry`, its bindings
    /// checked against the CA the certificate chains to and the CA bundle in force.
    pub fn member_of(&self, registry: &Registry) -> Result<(Arc<Member>, Binding), Unresolved> {
        let cert = self.cert.as_ref().ok_or(Unresolved::Unbound)?;
        registry.resolve(cert, self.tls.bundle().sole_ca())
    }

    /// Is the connection's certificate still accepted by the current TLS configuration?
    pub fn ensure_accepted(&self) -> Result<(), String> {
        match &self.peer_cert {
            Some(pc) => pc.ensure_accepted(&self.tls),
            None => Err("no client certificate".into()),
        }
    }
}

/// An established TLS connection. Holds its slot of the connection limit until it closes.
pub struct TlsConn {
    stream: TlsStream<TcpStream>,
    info: ConnInfo,
    _permit: OwnedSemaphorePermit,
}

impl Connected for TlsConn {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct AcceptLimits {
    /// Open connections at most, handshakes included; further ones are closed at once.
    pub max_connections: usize,
    /// Time a client has to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// Offer HTTP/1.1 besides HTTP/2 (the web portal; gRPC needs HTTP/2).
    pub http1: bool,
}

/// Told about every refused handshake: peer, the certificate presented (SHA-256, if any), why.
pub type RefusalSink = Arc<dyn Fn(SocketAddr, Option<String>, String) + Send + Sync>;

/// Accepts connections on `listener` until `shutdown`, yielding established TLS connections.
pub fn accept(
    listener: TcpListener,
    tls: Arc<TlsState>,
    limits: AcceptLimits,
    refusals: RefusalSink,
    admission: Arc<Admission>,
    shutdown: CancellationToken,
) -> ReceiverStream<Result<TlsConn, io::Error>> {
    // A small queue: handshaken connections are taken by the server at once.
    let (tx, rx) = mpsc::channel(64);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tracing::warn!(%peer, limit = limits.max_connections, "connection limit reached; closing");
                drop(tcp);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let generation = tls.generation();
            let acceptor = TlsAcceptor::from(if limits.http1 {
                tls.web_config()
            } else {
                tls.config()
            });
            let tls = tls.clone();
            let admission = admission.clone();
            let tx = tx.clone();
            let refusals = refusals.clone();
            tokio::spawn(super::presented::PRESENTED.scope(RefCell::new(Default::default()), async move {
                let handshake = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await;
                let refuse = |why: String| {
                    let (presented, detail) = super::presented::PRESENTED.with(|p| {
                        let p = p.borrow();
                        (p.cert_sha256.clone(), p.why.clone())
                    });
                    // The verifier's own reason, when it has one, says more than rustls' error
                    // (which CA lacks a CRL).
                    let why = detail.map_or(why.clone(), |d| format!("{why}: {d}"));
                    tracing::info!(%peer, cert = ?presented, why, "TLS handshake refused");
                    refusals(peer, presented, why);
                };
                match handshake {
                    Ok(Ok(stream)) => {
                        let chain: Vec<_> = stream.get_ref().1.peer_certificates().unwrap_or_default().iter().map(|c| c.clone().into_owned()).collect();
                        // Noted by the verifier; a resumed session skips the verifier, so the
                        // chain it carries is checked again here.
                        let noted = super::presented::PRESENTED.with(|p| p.borrow().ca_spki_sha256.clone());
                        let ca = match noted {
                            Some(ca) => Ok(ca),
                            None => tls.check_chain(&chain),
                        };
                        let ca = match ca {
                            Ok(ca) => ca,
                            Err(why) => return refuse(why),
                        };
                        let Some(leaf) = chain.first() else {
                            return refuse("no client certificate".into());
                        };
                        let cert = match certificate_facts(leaf, &ca) {
                            Ok(f) => Some(Arc::new(f)),
                            Err(e) => {
                                tracing::warn!(%peer, error = %e, "verified certificate not parsable");
                                None
                            }
                        };
                        let peer_cert = Some(PeerCertificate::new(chain, &ca, generation));
                        let info = ConnInfo { peer, cert, peer_cert, tls, admission };
                        let conn = TlsConn { stream, info, _permit: permit };
                        let _ = tx.send(Ok(conn)).await;
                    }
                    Ok(Err(e)) => refuse(e.to_string()),
                    Err(_) => refuse(format!("handshake not completed within {:?}", limits.handshake_timeout)),
                }
            }));
        }
    });
    ReceiverStream::new(rx)
}
