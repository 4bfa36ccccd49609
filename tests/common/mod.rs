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

/// The hub's administrator in [`MEMBERS`].
pub const ADMIN: Spec = Spec {
    id: "ADMIN",
    state: "HUB",
    roles: &[Role::Admin],
    communities: &[],
};
/// A hub administrator who is also auditor and reader, as the dev set-up's HUB-ADMIN.
pub const HUB_ADMIN: Spec = Spec {
    id: "HUB-ADMIN",
    state: "HUB",
    roles: &[Role::Admin, Role::Auditor, Role::Subscriber],
    communities: &[],
};
pub const EE_MFA: Spec = Spec {
    id: "EE-MFA",
    state: "EE",
    roles: &[Role::Publisher, Role::Subscriber],
    communities: &["OSCE", "UN"],
};
pub const EE_CERT: Spec = Spec {
    id: "EE-CERT",
    state: "EE",
    roles: &[Role::Publisher, Role::Subscriber],
    communities: &["OSCE", "UN"],
};
pub const CL_MINREL: Spec = Spec {
    id: "CL-MINREL",
    state: "CL",
    roles: &[Role::Publisher, Role::Subscriber],
    communities: &["OAS", "UN"],
};
/// A CSIRT that only reads.
pub const CL_CSIRT: Spec = Spec {
    id: "CL-CSIRT",
    state: "CL",
    roles: &[Role::Subscriber],
    communities: &["OAS", "UN"],
};
pub const AUDITOR: Spec = Spec {
    id: "AUDITOR",
    state: "HUB",
    roles: &[Role::Auditor],
    communities: &[],
};

/// The members most tests use: an admin, two publishers of different states and communities,
/// a subscriber-only CSIRT, and an auditor.
pub const MEMBERS: &[Spec] = &[ADMIN, EE_MFA, EE_CERT, CL_MINREL, CL_CSIRT, AUDITOR];

/// The web portal tests' members: [`MEMBERS`] with [`HUB_ADMIN`] as administrator.
pub const PORTAL_MEMBERS: &[Spec] = &[HUB_ADMIN, EE_MFA, EE_CERT, CL_MINREL, CL_CSIRT, AUDITOR];

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

    /// A hub with [`PORTAL_MEMBERS`], the web portal on 127.0.0.1:0 and a CRL (revoking
    /// nothing yet) in force; also the CRL's path, for tests that revoke.
    pub async fn start_portal() -> (TestHub, PathBuf) {
        let mut crl_path = None;
        let t = Self::start_with_ca(PORTAL_MEMBERS, |config, ca| {
            config.web_listen = Some("127.0.0.1:0".parse().unwrap());
            let path = config.tls.client_ca.with_file_name("ca.crl.pem");
            std::fs::write(&path, ca.crl(&[], 1, 7).unwrap()).unwrap();
            config.tls.crls = vec![path.clone()];
            crl_path = Some(path);
        })
        .await;
        (t, crl_path.unwrap())
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
            web_listen: None,
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
                // Unbounded in tests, with no tail pass unless a test asks for one.
                background_check: cbm_hub::store::BackgroundCheck {
                    bytes_per_second: 0,
                    interval: std::time::Duration::from_secs(3600),
                },
                // Tests run on whatever disk holds /tmp: no reserve.
                min_free_bytes: 0,
                noise_entries_per_minute: 60,
                compression_level: cbm_hub::store::DEFAULT_COMPRESSION_LEVEL,
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
                require_signed: false,
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
    publish_on(&mut t.hub(member).await, content).await
}

/// Publishes `content` on `client` (a hub of this process's or a child's), which must succeed.
pub async fn publish_on(
    client: &mut cbm_hub::pb::hub_client::HubClient<Channel>,
    content: cbm_hub::pb::SubmissionContent,
) -> cbm_hub::pb::PublishResponse {
    client
        .publish(cbm_hub::pb::PublishRequest {
            content: Some(content),
            ..Default::default()
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
    connect_tuned(addr, ca_pem, cert, |e| e).await
}

/// As [`connect`], with the endpoint adjusted by `tune` (HTTP/2 windows, say).
pub async fn connect_tuned(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    cert: &Issued,
    tune: impl FnOnce(Endpoint) -> Endpoint,
) -> Result<Channel, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .identity(Identity::from_pem(&cert.cert_pem, &cert.key_pem))
        .domain_name("localhost");
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(std::time::Duration::from_secs(5));
    tune(endpoint).connect().await
}

/// GET `path` over plain HTTP/1.1: (status code, content type, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut tcp, request.as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut raw),
    )
    .await
    .expect("answered in time")
    .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}
