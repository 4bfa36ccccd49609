//! Test harness: a real hub on 127.0.0.1:0 with a fresh CA and member certificates per test,
//! reached through the generated clients over mutual TLS.
#![allow(dead_code)]

pub mod feed;
pub mod oasis;
pub mod process;
pub mod python;
pub mod samples;
pub mod stix_cli;

use std::{collections::HashMap, path::PathBuf};

use cbm_hub::{
    config::{Config, Limits},
    domain::member::{Binding, BoundCertificate, Member, MemberStatus, Role},
    pb::{hub_client::HubClient, member_admin_client::MemberAdminClient},
    service::{self, RunningHub},
    store::{MemberOp, Store, StoreOptions},
    tls::{
        ServerTlsFiles,
        devpki::{DevCa, Issued, LeafSpec},
    },
};
use sha2::{Digest, Sha256};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// A member to register before the hub starts.
#[derive(Clone)]
pub struct Spec {
    pub id: &'static str,
    pub state: &'static str,
    pub roles: &'static [Role],
    pub communities: &'static [&'static str],
}

/// The members most tests use: an admin, two publishers of different states and communities,
/// a subscriber-only CSIRT, and an auditor.
pub const MEMBERS: &[Spec] = &[
    Spec {
        id: "ADMIN",
        state: "HUB",
        roles: &[Role::Admin],
        communities: &[],
    },
    Spec {
        id: "EE-MFA",
        state: "EE",
        roles: &[Role::Publisher, Role::Subscriber],
        communities: &["OSCE", "UN"],
    },
    Spec {
        id: "EE-CERT",
        state: "EE",
        roles: &[Role::Publisher, Role::Subscriber],
        communities: &["OSCE", "UN"],
    },
    Spec {
        id: "CL-MINREL",
        state: "CL",
        roles: &[Role::Publisher, Role::Subscriber],
        communities: &["OAS", "UN"],
    },
    Spec {
        id: "CL-CSIRT",
        state: "CL",
        roles: &[Role::Subscriber],
        communities: &["OAS", "UN"],
    },
    Spec {
        id: "AUDITOR",
        state: "HUB",
        roles: &[Role::Auditor],
        communities: &[],
    },
];

pub struct TestHub {
    pub dir: tempfile::TempDir,
    pub ca: DevCa,
    pub certs: HashMap<String, Issued>,
    pub config: Config,
    pub hub: Option<RunningHub>,
}

pub fn sha256_hex(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

fn write(path: &PathBuf, text: &str) {
    std::fs::write(path, text).unwrap();
}

impl TestHub {
    /// A hub with [`MEMBERS`] registered.
    pub async fn start() -> TestHub {
        Self::start_with(MEMBERS).await
    }

    pub async fn start_with(members: &[Spec]) -> TestHub {
        Self::start_configured(members, |_| {}).await
    }

    /// A hub whose configuration `adjust` changes before it starts.
    pub async fn start_configured(members: &[Spec], adjust: impl FnOnce(&mut Config)) -> TestHub {
        Self::start_with_ca(members, |config, _| adjust(config)).await
    }

    /// A hub whose configuration `adjust` changes before it starts, given the test CA (to
    /// write CRLs or a larger bundle next to its files without a restart).
    pub async fn start_with_ca(
        members: &[Spec],
        adjust: impl FnOnce(&mut Config, &DevCa),
    ) -> TestHub {
        cbm_hub::tls::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::generate("test CA").unwrap();
        let server = ca.issue(&LeafSpec::server(&[], 30)).unwrap();
        let p = |n: &str| dir.path().join(n);
        write(&p("ca.pem"), &ca.cert_pem);
        write(&p("server.pem"), &server.cert_pem);
        write(&p("server-key.pem"), &server.key_pem);
        let config = Config {
            metrics_listen: None,
            log: Default::default(),
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: p("data"),
            tls: ServerTlsFiles {
                client_ca: p("ca.pem"),
                cert: p("server.pem"),
                key: p("server-key.pem"),
                crls: vec![],
            },
            limits: Limits::default(),
            audit_checkpoint_interval: std::time::Duration::from_secs(60),
            audit_noise_interval: std::time::Duration::from_secs(60),
            tls_reload_check: std::time::Duration::from_millis(200),
            store: StoreOptions {
                cache_capacity: 16 * 1024 * 1024,
                fsync: true,
                live_buffer: 4096,
                check_on_start: true,
                // Tests run on whatever disk holds /tmp: no reserve.
                min_free_bytes: 0,
                noise_entries_per_minute: 60,
            },
        };
        let mut config = config;
        adjust(&mut config, &ca);
        let store = Store::open(&config.data_dir, config.store.clone()).unwrap();
        let mut certs = HashMap::new();
        for spec in members {
            let issued = ca.issue(&LeafSpec::client(spec.id, 30)).unwrap();
            let member = Member {
                id: spec.id.into(),
                state: spec.state.into(),
                display_name: format!("{} (test)", spec.id),
                roles: spec.roles.iter().copied().collect(),
                communities: spec.communities.iter().map(|c| c.to_string()).collect(),
                status: MemberStatus::Active,
                bindings: vec![BoundCertificate {
                    binding: Binding::CertSha256(sha256_hex(&issued.cert_der)),
                    note: String::new(),
                    issuer: None,
                }],
                created_at: String::new(),
                updated_at: String::new(),
            };
            store
                .member(MemberOp::Register(member), Default::default())
                .await
                .unwrap();
            certs.insert(spec.id.to_string(), issued);
        }
        tokio::task::spawn_blocking(move || store.close_and_release())
            .await
            .unwrap()
            .unwrap();
        let hub = service::start(&config).await.unwrap();
        TestHub {
            dir,
            ca,
            certs,
            config,
            hub: Some(hub),
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.hub.as_ref().expect("running").addr
    }

    pub fn store(&self) -> &Store {
        &self.hub.as_ref().expect("running").store
    }

    /// Stops the hub (graceful) and starts it again on a new port with the same data.
    pub async fn restart(&mut self) {
        self.hub.take().expect("running").stop().await.unwrap();
        self.hub = Some(service::start(&self.config).await.expect("restart"));
    }

    pub async fn stop(mut self) {
        if let Some(hub) = self.hub.take() {
            hub.stop().await.unwrap();
        }
    }

    /// An mTLS channel presenting `cert`.
    pub async fn channel_with(&self, cert: &Issued) -> Result<Channel, tonic::transport::Error> {
        connect(self.addr(), &self.ca.cert_pem, cert).await
    }

    pub async fn channel(&self, member: &str) -> Channel {
        self.channel_with(&self.certs[member]).await.unwrap()
    }

    pub async fn hub(&self, member: &str) -> HubClient<Channel> {
        HubClient::new(self.channel(member).await)
    }

    pub async fn admin(&self, member: &str) -> MemberAdminClient<Channel> {
        MemberAdminClient::new(self.channel(member).await)
    }

    pub async fn directory(
        &self,
        member: &str,
    ) -> cbm_hub::pb::directory_client::DirectoryClient<Channel> {
        cbm_hub::pb::directory_client::DirectoryClient::new(self.channel(member).await)
    }

    pub async fn catalogue(
        &self,
        member: &str,
    ) -> cbm_hub::pb::catalogue_client::CatalogueClient<Channel> {
        cbm_hub::pb::catalogue_client::CatalogueClient::new(self.channel(member).await)
    }

    /// Stops the hub, waits `down`, and starts it again with the same data.
    pub async fn stop_for(&mut self, down: std::time::Duration) {
        self.hub.take().expect("running").stop().await.unwrap();
        tokio::time::sleep(down).await;
        self.hub = Some(service::start(&self.config).await.expect("restart"));
    }
}

/// Publishes `content` as `member`, which must succeed.
pub async fn publish(
    t: &TestHub,
    member: &str,
    content: cbm_hub::pb::SubmissionContent,
) -> cbm_hub::pb::PublishResponse {
    t.hub(member)
        .await
        .publish(cbm_hub::pb::PublishRequest {
            content: Some(content),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Connects to `addr` trusting `ca_pem`, presenting `cert`.
pub async fn connect(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    cert: &Issued,
) -> Result<Channel, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .identity(Identity::from_pem(&cert.cert_pem, &cert.key_pem))
        .domain_name("localhost");
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
}
