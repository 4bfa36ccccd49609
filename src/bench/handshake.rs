//! Connections: full mTLS handshakes per second. Against the hub, each is a new TCP connection,
//! a full handshake (no session resumption: a new client configuration each time), HTTP/2
//! setup and one `WhoAmI` (the registry lookup of the certificate). The baseline, in the same
//! run, is a bare handshake with the hub's own rustls server configuration and a one-byte
//! echo: what TLS alone costs on this machine.
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::Instant,
};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::setup::{BenchHub, PUBLISHER, Target};
use crate::{
    pb::{self, hub_client::HubClient},
    tls::{ServerTlsFiles, reload::TlsState},
};

/// Connections completed per second by `concurrency` clients in a loop for `duration`.
#[derive(Debug, Clone, Default)]
pub struct Handshakes {
    pub completed: u64,
    pub errors: u64,
    pub per_second: f64,
}

async fn run_loop<F, Fut>(concurrency: usize, duration: Duration, one: F) -> Handshakes
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let start = Instant::now();
    let end = start + duration;
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (one, done, errors) = (one.clone(), done.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                match one().await {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let completed = done.load(Ordering::Relaxed);
    Handshakes {
        completed,
        errors: errors.load(Ordering::Relaxed),
        per_second: completed as f64 / start.elapsed().as_secs_f64(),
    }
}

/// New connection + WhoAmI against the hub.
pub async fn hub(hub: &BenchHub, concurrency: usize, duration: Duration) -> Handshakes {
    let target = Arc::new(hub.target.clone());
    run_loop(concurrency, duration, move || {
        let target = target.clone();
        async move {
            let channel = target.channel(PUBLISHER).await?;
            HubClient::new(channel)
                .who_am_i(pb::WhoAmIRequest {})
                .await?;
            Ok(())
        }
    })
    .await
}

/// A rustls client configuration for `member`, without session resumption.
fn client_config(target: &Target, member: &str) -> anyhow::Result<rustls::ClientConfig> {
    let (_, cert, key) = target
        .certs
        .iter()
        .find(|(id, _, _)| id == member)
        .ok_or_else(|| anyhow::anyhow!("no member {member}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(target.ca_pem.as_bytes()) {
        roots.add(ca?)?;
    }
    let chain = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes())?;
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// The baseline: bare mTLS handshakes with the hub's server configuration, one-byte echo.
pub async fn bare(
    hub: &BenchHub,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Handshakes> {
    let tls = TlsState::load(ServerTlsFiles {
        client_ca: hub.dir.join("ca.pem"),
        cert: hub.dir.join("server.pem"),
        key: hub.dir.join("server-key.pem"),
        crls: vec![],
    })?;
    let acceptor = TlsAcceptor::from(tls.config());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut b = [0u8; 1];
                    if tls.read_exact(&mut b).await.is_ok() {
                        let _ = tls.write_all(&b).await;
                        let _ = tls.flush().await;
                    }
                }
            });
        }
    });
    let target = Arc::new(hub.target.clone());
    let result = run_loop(concurrency, duration, move || {
        let target = target.clone();
        async move {
            // Built per connection, as the hub's clients above build theirs.
            let connector = TlsConnector::from(Arc::new(client_config(&target, PUBLISHER)?));
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let mut tls = connector
                .connect(ServerName::try_from("localhost")?, tcp)
                .await?;
            tls.write_all(b"x").await?;
            let mut b = [0u8; 1];
            tls.read_exact(&mut b).await?;
            Ok(())
        }
    })
    .await;
    server.abort();
    Ok(result)
}
