//! A hub for benchmarks: started in this process on 127.0.0.1:0 with a fresh PKI and a
//! temporary data directory, and clients over real mTLS.
use std::{path::PathBuf, time::Duration};

use sha2::{Digest, Sha256};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::{
    config::{Config, Limits},
    domain::member::{Binding, BoundCertificate, Member, MemberStatus, Role},
    service::{self, RunningHub},
    store::{MemberOp, Store, StoreOptions},
    tls::{
        ServerTlsFiles,
        devpki::{DevCa, Issued, LeafSpec},
    },
};

/// The publisher and the readers of the benchmarks.
pub const PUBLISHER: &str = "BENCH-PUB";
pub const READER: &str = "BENCH-READ";

pub struct BenchHub {
    pub hub: RunningHub,
    pub dir: PathBuf,
    ca: DevCa,
    certs: Vec<(String, Issued)>,
}

impl BenchHub {
    pub async fn start() -> anyhow::Result<BenchHub> {
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
                ..StoreOptions::default()
            },
            audit_checkpoint_interval: Duration::from_secs(60),
            tls_reload_check: Duration::from_secs(60),
        };
        let store = Store::open(&config.data_dir, config.store.clone())?;
        let mut certs = Vec::new();
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
                }],
                created_at: String::new(),
                updated_at: String::new(),
            };
            store
                .member(MemberOp::Register(member), Default::default())
                .await?;
            certs.push((id.to_string(), cert));
        }
        tokio::task::spawn_blocking(move || store.close()).await?;
        let hub = service::start(&config).await?;
        Ok(BenchHub {
            hub,
            dir,
            ca,
            certs,
        })
    }

    /// A new mTLS connection as `member`.
    pub async fn channel(&self, member: &str) -> anyhow::Result<Channel> {
        let cert = &self
            .certs
            .iter()
            .find(|(id, _)| id == member)
            .ok_or_else(|| anyhow::anyhow!("no member {member}"))?
            .1;
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca.cert_pem))
            .identity(Identity::from_pem(&cert.cert_pem, &cert.key_pem))
            .domain_name("localhost");
        Ok(Endpoint::from_shared(format!("https://{}", self.hub.addr))?
            .tls_config(tls)?
            .tcp_nodelay(true)
            .connect()
            .await?)
    }

    pub async fn stop(self) {
        let _ = self.hub.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
