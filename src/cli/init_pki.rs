//! `cbm-hub init --ca ... --server-cert ... --server-key ... --admin-cert ...`: a production hub
//! on the operator's own PKI from the first minute. No dev CA, no sample members: the registry
//! holds one member, the first administrator, bound to the key of the certificate given; the
//! hub trusts only the given CA bundle. Every file is checked as the hub will use it before
//! anything is written, so a mistake is named here rather than met as refused handshakes.
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::Context;
use clap::Args;
use rustls::client::{WebPkiServerVerifier, danger::ServerCertVerifier};
use rustls_pki_types::{ServerName, UnixTime};

use super::home::{Home, Profile, write_file};
use crate::{
    domain::member::{Binding, BoundCertificate, Member, MemberStatus, Role, check_member_id},
    store::{MemberOp, Store, StoreOptions},
    tls::{
        self, ServerTlsFiles,
        check::{Leaf, key_matches, server_identity},
        reload::TlsState,
    },
};

/// Your own PKI for `init`: all four of --ca, --server-cert, --server-key and --admin-cert, or
/// none (a development hub).
#[derive(Debug, Clone, Args)]
pub struct OwnPki {
    /// Set up with your own PKI: the CA bundle (PEM) client certificates must chain to
    /// (tls.client_ca). Needs --server-cert, --server-key and --admin-cert.
    #[arg(long, requires_all = ["server_cert", "server_key", "admin_cert"])]
    pub ca: Option<PathBuf>,
    /// The hub's certificate (PEM, followed by its intermediate CAs), with serverAuth.
    #[arg(long, requires = "ca")]
    pub server_cert: Option<PathBuf>,
    /// The hub's private key (PEM).
    #[arg(long, requires = "ca")]
    pub server_key: Option<PathBuf>,
    /// The first administrator's certificate (PEM): the hub's only member, bound to this
    /// certificate's key (spki_sha256), so a renewed certificate for the same key still works.
    #[arg(long, requires = "ca")]
    pub admin_cert: Option<PathBuf>,
    /// The administrator's private key: writes a client profile for it (profiles/ID.toml).
    #[arg(long, requires = "ca")]
    pub admin_key: Option<PathBuf>,
    /// The administrator's member id.
    #[arg(long, default_value = "HUB-ADMIN")]
    pub admin_id: String,
    /// The administrator's state (ISO 3166-1 alpha-2) or organisation.
    #[arg(long, default_value = "HUB")]
    pub admin_state: String,
    /// The administrator's display name.
    #[arg(long, default_value = "Hub administrator")]
    pub admin_name: String,
    /// The administrator's roles (repeatable or comma-separated). Without a reading role
    /// (subscriber) it reads no content and can start no ping campaign.
    #[arg(long = "admin-role", value_delimiter = ',', default_values = ["admin", "auditor"])]
    pub admin_roles: Vec<String>,
    /// CRL files checked for every client certificate (tls.crls; repeatable): then every CA
    /// of --ca needs its current CRL.
    #[arg(long = "crl", requires = "ca")]
    pub crls: Vec<PathBuf>,
    /// The CA (PEM) clients check the hub's certificate against, written into the admin's
    /// profile (default: --ca).
    #[arg(long, requires = "ca")]
    pub server_ca: Option<PathBuf>,
    /// The name clients connect to, one of the hub certificate's names (default: its first
    /// DNS name).
    #[arg(long, requires = "ca")]
    pub server_name: Option<String>,
}

/// A file given on the command line, made absolute (the config is read from elsewhere).
fn absolute(flag: &str, path: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(path).with_context(|| format!("{flag} {}", path.display()))
}

/// Sets up `home` with `pki` (whose --ca is set); `listen` as for a dev hub.
pub async fn initialise(home: &Home, listen: &str, pki: &OwnPki) -> anyhow::Result<()> {
    anyhow::ensure!(
        !home.config().exists(),
        "{} already exists; this directory is initialised",
        home.config().display()
    );
    let listen_addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|_| anyhow::anyhow!("--listen {listen:?} is not an address"))?;
    check_member_id(&pki.admin_id).map_err(|e| anyhow::anyhow!("--admin-id: {e}"))?;
    let roles = pki
        .admin_roles
        .iter()
        .map(|r| r.parse::<Role>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--admin-role: {e}"))?;
    anyhow::ensure!(
        roles.contains(&Role::Admin),
        "--admin-role: the first member must hold admin, to register the others"
    );
    let given = |flag: &str, p: &Option<PathBuf>| -> anyhow::Result<PathBuf> {
        absolute(flag, p.as_ref().context(format!("{flag} is required"))?)
    };
    let files = ServerTlsFiles {
        client_ca: given("--ca", &pki.ca)?,
        cert: given("--server-cert", &pki.server_cert)?,
        key: given("--server-key", &pki.server_key)?,
        crls: pki
            .crls
            .iter()
            .map(|c| absolute("--crl", c))
            .collect::<anyhow::Result<_>>()?,
    };
    let admin_cert = given("--admin-cert", &pki.admin_cert)?;

    // The hub's own certificate: what every client would refuse, or a key that is not its.
    let (errors, warnings) =
        server_identity(&files.cert, &files.key, time::OffsetDateTime::now_utc());
    for w in warnings {
        eprintln!("warning: {}", flags(&w));
    }
    if !errors.is_empty() {
        anyhow::bail!(
            "{}",
            errors
                .iter()
                .map(|e| flags(e))
                .collect::<Vec<_>>()
                .join("\nerror: ")
        );
    }
    // The whole TLS configuration as `serve` will load it: the bundle, the CRLs (one for
    // every CA when any is given), certificate and key together.
    tls::install_crypto_provider();
    let state =
        TlsState::load(files.clone()).map_err(|e| anyhow::anyhow!("{}", flags(&e.to_string())))?;
    // The administrator's certificate, checked as its handshake will be.
    let chain = tls::load_certs(&admin_cert)?;
    let ca = state.check_chain(&chain).map_err(|why| {
        anyhow::anyhow!(
            "--admin-cert {}: the hub would refuse this certificate: {why}",
            admin_cert.display()
        )
    })?;
    let admin = Leaf::parse(chain[0].as_ref())
        .map_err(|e| anyhow::anyhow!("--admin-cert {}: {e}", admin_cert.display()))?;
    let profile = match &pki.admin_key {
        Some(key) => Some(admin_profile(
            pki,
            &files,
            &admin,
            &admin_cert,
            key,
            listen_addr,
        )?),
        None => None,
    };

    let data = home.data();
    let store =
        tokio::task::spawn_blocking(move || Store::open(&data, StoreOptions::default())).await??;
    let member = Member {
        id: pki.admin_id.clone(),
        state: pki.admin_state.clone(),
        display_name: pki.admin_name.clone(),
        roles: roles.iter().copied().collect(),
        communities: Vec::new(),
        status: MemberStatus::Active,
        bindings: vec![BoundCertificate {
            binding: Binding::SpkiSha256(admin.spki_sha256.clone()),
            note: format!("cbm-hub init --admin-cert ({})", admin.subject),
            // The CA its chain ends at: no other CA of the bundle can mint this member.
            issuer: Some(ca),
        }],
        created_at: String::new(),
        updated_at: String::new(),
        require_signed: false,
    };
    let registered = store
        .member(MemberOp::Register(member), super::init::init_origin())
        .await;
    tokio::task::spawn_blocking(move || store.close()).await?;
    registered?;

    let path = |p: &Path| p.display().to_string();
    let crls: Vec<String> = files.crls.iter().map(|c| path(c)).collect();
    let config = super::init::config_text(
        listen,
        &path(&files.client_ca),
        &path(&files.cert),
        &path(&files.key),
        &crls,
    );
    write_file(&home.config(), &config, false)?;
    if let Some(p) = &profile {
        home.write_profile(&pki.admin_id, p)?;
    }
    println!(
        "Initialised a hub with your own PKI in {}",
        home.root.display()
    );
    println!("  config:   {}", home.config().display());
    println!("  data:     {}", home.data().display());
    println!("  trusts:   {}", state.bundle().describe());
    println!(
        "  member:   {} ({}), the only one, bound to the key of {} (spki_sha256 {})",
        pki.admin_id,
        pki.admin_roles.join(", "),
        admin_cert.display(),
        admin.spki_sha256
    );
    if profile.is_some() {
        println!("  profile:  {}", home.profile_path(&pki.admin_id).display());
    }
    println!(
        "Start it with `cbm-hub --home {} serve`; register members with `cbm-hub member \
         register ID ... --spki-of THEIR-CERT.pem -p {}`.",
        home.root.display(),
        pki.admin_id
    );
    Ok(())
}

/// Config keys in messages as the flags of this command name them.
fn flags(message: &str) -> String {
    message
        .replacen("tls.cert:", "--server-cert:", 1)
        .replacen("tls.key:", "--server-key:", 1)
        .replacen("tls.client_ca", "--ca", 1)
        .replacen("tls.crls", "--crl", 1)
}

/// The administrator's client profile; checks that its key is its certificate's and that a
/// client trusting the profile's CA accepts the hub's certificate under the profile's name.
fn admin_profile(
    pki: &OwnPki,
    files: &ServerTlsFiles,
    admin: &Leaf,
    admin_cert: &Path,
    key: &Path,
    listen: std::net::SocketAddr,
) -> anyhow::Result<Profile> {
    let key = absolute("--admin-key", key)?;
    let matches = key_matches(&tls::load_key(&key)?, &admin.spki)
        .map_err(|e| anyhow::anyhow!("--admin-key {}: {e}", key.display()))?;
    anyhow::ensure!(
        matches != Some(false),
        "--admin-key {}: not the private key of --admin-cert {}",
        key.display(),
        admin_cert.display()
    );
    let server_ca = match &pki.server_ca {
        Some(p) => absolute("--server-ca", p)?,
        None => files.client_ca.clone(),
    };
    let chain = tls::load_certs(&files.cert)?;
    let hub = Leaf::parse(chain[0].as_ref()).map_err(anyhow::Error::msg)?;
    let name = match &pki.server_name {
        Some(n) => n.clone(),
        None => hub
            .names
            .first()
            .cloned()
            .context("--server-cert names no DNS name or address: give --server-name")?,
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in tls::load_certs(&server_ca)? {
        roots
            .add(ca)
            .map_err(|e| anyhow::anyhow!("{}: {e}", server_ca.display()))?;
    }
    let verifier = WebPkiServerVerifier::builder(Arc::new(roots))
        .build()
        .map_err(|e| anyhow::anyhow!("{}: {e}", server_ca.display()))?;
    let server_name = ServerName::try_from(name.clone())
        .map_err(|_| anyhow::anyhow!("--server-name {name:?} is not a DNS name or address"))?;
    verifier
        .verify_server_cert(&chain[0], &chain[1..], &server_name, &[], UnixTime::now())
        .map_err(|e| {
            anyhow::anyhow!(
                "clients trusting {} would refuse the hub's certificate for {name:?}: {e} (give \
                 --server-ca, the CA that issued --server-cert, or --server-name, one of its \
                 names: {})",
                server_ca.display(),
                hub.names.join(", ")
            )
        })?;
    Ok(Profile {
        member: pki.admin_id.clone(),
        endpoint: format!("https://{}:{}", host_for_url(&name), listen.port()),
        server_name: name,
        ca: server_ca,
        cert: admin_cert.to_path_buf(),
        key,
    })
}

/// An address for a URL: IPv6 addresses in brackets.
fn host_for_url(name: &str) -> String {
    if name.contains(':') {
        format!("[{name}]")
    } else {
        name.to_string()
    }
}
