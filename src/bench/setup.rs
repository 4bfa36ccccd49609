//! A hub for benchmarks: started on 127.0.0.1:0 with a fresh PKI and a temporary data
//! directory, either in this process or in a child process (so that its resident memory is
//! its own), and clients over real mTLS.
use std::{
    io::{BufRead, Write},
    path::PathBuf,
    process::{Child, ChildStdin, Stdio},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::{
    config::{Config, Limits},
    domain::member::{Binding, BoundCertificate, Member, MemberStatus, Role},
    service::{self, RunningHub},
    store::{MemberOp, Store, StoreOptions},
    tls::{
        ServerTlsFiles,
        devpki::{DevCa, LeafSpec},
    },
};

/// The publisher and the readers of the benchmarks.
pub const PUBLISHER: &str = "BENCH-PUB";
pub const READER: &str = "BENCH-READ";

/// Where a benchmark hub listens and the credentials to reach it: all a client needs, also
/// handed from a child process to its parent as one JSON line.
#[derive(Clone, Serialize, Deserialize)]
pub struct Target {
    pub addr: std::net::SocketAddr,
    pub ca_pem: String,
    /// (member id, certificate PEM, key PEM).
    pub certs: Vec<(String, String, String)>,
    /// The server's certificate and key, for a baseline server with the same TLS setup.
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

impl Target {
    fn tls(&self, member: &str) -> anyhow::Result<ClientTlsConfig> {
        let (_, cert, key) = self
            .certs
            .iter()
            .find(|(id, _, _)| id == member)
            .ok_or_else(|| anyhow::anyhow!("no member {member}"))?;
        Ok(ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(cert, key))
            .domain_name("localhost"))
    }

    /// A new mTLS connection as `member` to `addr` (the hub's, or a baseline server's). Each
    /// call builds its own TLS client configuration, so no session is resumed: every
    /// connection makes a full handshake.
    pub async fn channel_to(
        &self,
        addr: std::net::SocketAddr,
        member: &str,
    ) -> anyhow::Result<Channel> {
        Ok(Endpoint::from_shared(format!("https://{addr}"))?
            .tls_config(self.tls(member)?)?
            .tcp_nodelay(true)
            .connect()
            .await?)
    }

    /// A new mTLS connection to the hub as `member`.
    pub async fn channel(&self, member: &str) -> anyhow::Result<Channel> {
        self.channel_to(self.addr, member).await
    }
}

pub struct BenchHub {
    pub hub: RunningHub,
    pub dir: PathBuf,
    pub target: Target,
}

/// The sled page cache of a benchmark hub unless told otherwise (the hub's default).
pub const CACHE_MB: u64 = 128;

impl BenchHub {
    pub async fn start() -> anyhow::Result<BenchHub> {
        Self::start_with(CACHE_MB).await
    }

    /// A benchmark hub whose sled page cache is `cache_mb` MiB.
    pub async fn start_with(cache_mb: u64) -> anyhow::Result<BenchHub> {
        crate::tls::install_crypto_provider();
        let dir = std::env::temp_dir().join(format!("cbm-hub-bench-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let ca = DevCa::generate("bench CA").map_err(anyhow::Error::msg)?;
        let server = ca
            .issue(&LeafSpec::server(&[], 2))
            .map_err(anyhow::Error::msg)?;
        std::fs::write(dir.join("ca.pem"), &ca.cert_pem)?;
        std::fs::write(dir.join("server.pem"), &server.cert_pem)?;
        std::fs::write(dir.join("server-key.pem"), &server.key_pem)?;
        let limits = Limits {
            // The benchmark is one member pushing as hard as it can: quotas off the path.
            member_requests_per_second: 10_000_000,
            member_request_burst: 10_000_000,
            max_subscriptions_per_member: 100_000,
            max_connections: 100_000,
            max_concurrent_streams: 100_000,
            ..Limits::default()
        };
        let config = Config {
            metrics_listen: None,
            web_listen: None,
            log: Default::default(),
            listen: "127.0.0.1:0".parse()?,
            data_dir: dir.join("data"),
            tls: ServerTlsFiles {
                client_ca: dir.join("ca.pem"),
                cert: dir.join("server.pem"),
                key: dir.join("server-key.pem"),
                crls: vec![],
            },
            limits,
            store: StoreOptions {
                check_on_start: false,
                cache_capacity: cache_mb * 1024 * 1024,
                ..StoreOptions::default()
            },
            audit_checkpoint_interval: Duration::from_secs(60),
            audit_noise_interval: Duration::from_secs(60),
            tls_reload_check: Duration::from_secs(60),
        };
        let store = Store::open(&config.data_dir, config.store.clone())?;
        let (certs, _) = register_members(&store, &ca).await?;
        tokio::task::spawn_blocking(move || store.close_and_release()).await??;
        let hub = service::start(&config).await?;
        let target = Target {
            addr: hub.addr,
            ca_pem: ca.cert_pem.clone(),
            certs,
            server_cert_pem: server.cert_pem,
            server_key_pem: server.key_pem,
        };
        Ok(BenchHub { hub, dir, target })
    }

    /// A new mTLS connection as `member`.
    pub async fn channel(&self, member: &str) -> anyhow::Result<Channel> {
        self.target.channel(member).await
    }

    pub async fn stop(self) {
        let _ = self.hub.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The child side of [`ChildHub`]: starts a hub, prints its [`Target`] as one JSON line on
/// stdout, serves until stdin closes (the parent exited or is done), then stops.
pub async fn serve_child(cache_mb: u64) -> anyhow::Result<()> {
    let hub = BenchHub::start_with(cache_mb).await?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &hub.target)?;
    writeln!(out)?;
    out.flush()?;
    drop(out);
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    })
    .await?;
    hub.stop().await;
    Ok(())
}

/// A hub in a child process of this one (`cbm-hub bench --serve-child`), so that its resident
/// memory can be read from /proc without the clients' memory in it.
pub struct ChildHub {
    pub target: Target,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ChildHub {
    pub async fn start() -> anyhow::Result<ChildHub> {
        Self::start_with(CACHE_MB).await
    }

    /// A child hub whose sled page cache is `cache_mb` MiB.
    pub async fn start_with(cache_mb: u64) -> anyhow::Result<ChildHub> {
        let exe = std::env::current_exe()?;
        let mut child = std::process::Command::new(exe)
            .args(["--log", "error", "bench", "--serve-child", "--cache-mb"])
            .arg(cache_mb.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout of the child hub"))?;
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .map(|_| line)
        })
        .await??;
        let target: Target = serde_json::from_str(&line).map_err(|e| {
            anyhow::anyhow!("the child hub did not start (its first line: {line:?}): {e}")
        })?;
        Ok(ChildHub {
            target,
            child,
            stdin,
        })
    }

    /// Resident memory of the child hub, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib_of(&self.status_path())
    }

    /// The child's /proc status file.
    pub fn status_path(&self) -> String {
        format!("/proc/{}/status", self.child.id())
    }

    /// Closes the child's stdin (it stops itself) and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        let mut child = self.child;
        tokio::task::spawn_blocking(move || child.wait()).await??;
        Ok(())
    }
}

/// VmRSS of a /proc status file, in KiB (0 if unreadable).
pub fn rss_kib_of(status: &str) -> u64 {
    std::fs::read_to_string(status)
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
            })
        })
        .unwrap_or(0)
}

/// The bench's members (a publisher that also reads, a reader) registered in `store`, each
/// bound to a fresh certificate of `ca`: their credentials (id, certificate PEM, key PEM) and
/// the publisher as registered.
pub(super) async fn register_members(
    store: &Store,
    ca: &DevCa,
) -> anyhow::Result<(Vec<(String, String, String)>, Member)> {
    let mut certs = Vec::new();
    let mut publisher = None;
    for (id, roles) in [
        (PUBLISHER, &[Role::Publisher, Role::Subscriber][..]),
        (READER, &[Role::Subscriber][..]),
    ] {
        let cert = ca
            .issue(&LeafSpec::client(id, 2))
            .map_err(anyhow::Error::msg)?;
        let member = Member {
            id: id.into(),
            state: "EE".into(),
            display_name: id.into(),
            roles: roles.iter().copied().collect(),
            communities: vec!["OSCE".into()],
            status: MemberStatus::Active,
            bindings: vec![BoundCertificate {
                binding: Binding::CertSha256(hex::encode(Sha256::digest(&cert.cert_der))),
                note: String::new(),
                issuer: None,
            }],
            created_at: String::new(),
            updated_at: String::new(),
            require_signed: false,
        };
        let member = store
            .member(MemberOp::Register(member), Default::default())
            .await?;
        if id == PUBLISHER {
            publisher = Some(member);
        }
        certs.push((id.to_string(), cert.cert_pem, cert.key_pem));
    }
    let publisher = publisher.ok_or_else(|| anyhow::anyhow!("no publisher"))?;
    Ok((certs, publisher))
}
