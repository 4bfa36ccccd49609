//! `cbm-hub init`: a ready-to-run development hub in one directory, or, with `--ca ...`, a hub
//! on your own PKI (see `init_pki`).
use std::path::PathBuf;

use clap::Args;

use super::{
    home::{Home, write_file},
    pki::issue_member,
};
use crate::{
    domain::member::{Binding, BoundCertificate, Member, MemberStatus, Role},
    store::{MemberOp, Store, StoreOptions},
    tls::devpki::{DevCa, LeafSpec},
};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to initialise (default: the home directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Address the hub will listen on.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: String,
    #[command(flatten)]
    pub pki: super::init_pki::OwnPki,
}

/// The sample members of a development hub: an administrator, and the foreign ministry and
/// national CSIRT of two states in different regional organisations.
struct Sample {
    id: &'static str,
    state: &'static str,
    name: &'static str,
    roles: &'static [Role],
    communities: &'static [&'static str],
}

const fn sample(
    id: &'static str,
    state: &'static str,
    name: &'static str,
    roles: &'static [Role],
    communities: &'static [&'static str],
) -> Sample {
    Sample {
        id,
        state,
        name,
        roles,
        communities,
    }
}

const SAMPLE_MEMBERS: &[Sample] = &[
    // Also a subscriber, in no community: it reads what is addressed to every reader (CLEAR,
    // hub-wide GREEN), which is what a ping campaign tests, and nothing addressed to others.
    sample(
        "HUB-ADMIN",
        "HUB",
        "Hub administrator",
        &[Role::Admin, Role::Auditor, Role::Subscriber],
        &[],
    ),
    sample(
        "EE-MFA",
        "EE",
        "Estonia, Ministry of Foreign Affairs",
        &[Role::Publisher, Role::Subscriber],
        &["OSCE", "UN"],
    ),
    sample(
        "EE-CERT",
        "EE",
        "Estonia, CERT-EE",
        &[Role::Publisher, Role::Subscriber],
        &["OSCE", "UN"],
    ),
    sample(
        "CL-MINREL",
        "CL",
        "Chile, Ministry of Foreign Affairs",
        &[Role::Publisher, Role::Subscriber],
        &["OAS", "UN"],
    ),
    sample(
        "CL-CSIRT",
        "CL",
        "Chile, CSIRT of Government",
        &[Role::Subscriber],
        &["OAS", "UN"],
    ),
];

pub async fn run(home: &Home, args: InitArgs) -> anyhow::Result<()> {
    let home = args
        .dir
        .map(|root| Home { root })
        .unwrap_or_else(|| home.clone());
    if args.pki.ca.is_some() {
        return super::init_pki::initialise(&home, &args.listen, &args.pki).await;
    }
    initialise(&home, &args.listen).await?;
    print_summary(&home);
    Ok(())
}

/// Creates the dev PKI, registers the sample members in a new store, writes the config and a
/// profile per member. Refuses to touch an existing config.
pub async fn initialise(home: &Home, listen: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !home.config().exists(),
        "{} already exists; this directory is initialised",
        home.config().display()
    );
    let listen_addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|_| anyhow::anyhow!("--listen {listen:?} is not an address"))?;
    let ca = DevCa::generate("cbm-hub development CA").map_err(anyhow::Error::msg)?;
    write_file(&home.ca_cert(), &ca.cert_pem, false)?;
    write_file(&home.ca_key(), &ca.key_pem, true)?;
    let server = ca
        .issue(&LeafSpec::server(&[], 825))
        .map_err(anyhow::Error::msg)?;
    write_file(&home.pki().join("server.pem"), &server.cert_pem, false)?;
    write_file(&home.pki().join("server-key.pem"), &server.key_pem, true)?;

    let endpoint = format!("https://localhost:{}", listen_addr.port());
    let data = home.data();
    let store =
        tokio::task::spawn_blocking(move || Store::open(&data, StoreOptions::default())).await??;
    for Sample {
        id,
        state,
        name,
        roles,
        communities,
    } in SAMPLE_MEMBERS
    {
        let sha = issue_member(home, &ca, id, 365, &endpoint)?;
        let member = Member {
            id: id.to_string(),
            state: state.to_string(),
            display_name: name.to_string(),
            roles: roles.iter().copied().collect(),
            communities: communities.iter().map(|c| c.to_string()).collect(),
            status: MemberStatus::Active,
            bindings: vec![BoundCertificate {
                binding: Binding::CertSha256(sha),
                note: "dev PKI".into(),
                issuer: None,
            }],
            created_at: String::new(),
            updated_at: String::new(),
            require_signed: false,
        };
        store
            .member(MemberOp::Register(member), init_origin())
            .await?;
    }
    tokio::task::spawn_blocking(move || store.close_and_release()).await??;

    let config = config_text(
        listen,
        "pki/ca.pem",
        "pki/server.pem",
        "pki/server-key.pem",
        &[],
    );
    let config = format!("{config}{}", dev_web_section(listen_addr));
    write_file(&home.config(), &config, false)?;
    Ok(())
}

/// The `config.toml` `init` writes: the TLS files (relative to the config, or absolute), the
/// usual limits and store options.
pub(super) fn config_text(
    listen: &str,
    client_ca: &str,
    cert: &str,
    key: &str,
    crls: &[String],
) -> String {
    // TOML strings (quotes and backslashes in paths escaped).
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let crls: Vec<String> = crls.iter().map(|c| quote(c)).collect();
    format!(
        "# cbm-hub configuration, written by `cbm-hub init`. Relative paths are relative to this file.\n\
         listen = {listen}\n\
         data_dir = \"data\"\n\n\
         [tls]\n\
         # Client certificates must chain to this CA bundle.\n\
         client_ca = {client_ca}\n\
         cert = {cert}\n\
         key = {key}\n\
         # CRL files (PEM or DER) checked for every certificate of a client chain; when set,\n\
         # every CA of client_ca needs its current CRL.\n\
         crls = [{crls}]\n\n\
         [limits]\n\
         max_connections = 4096\n\
         max_concurrent_streams = 256\n\
         max_message_bytes = 4194304\n\
         handshake_timeout_ms = 10000\n\n\
         [store]\n\
         cache_mb = 128\n\
         # fsync the data file and new blob files in every group commit (power-loss durability).\n\
         fsync = true\n\
         # Live events kept for slow subscribers; subscribers further behind read storage.\n\
         live_buffer = 4096\n",
        listen = quote(listen),
        client_ca = quote(client_ca),
        cert = quote(cert),
        key = quote(key),
        crls = crls.join(", "),
    )
}

/// The development hub serves the web portal too, beside the gRPC address: port 8443, or any
/// free port when gRPC takes any free port (tests start many hubs at once).
fn dev_web_section(listen: std::net::SocketAddr) -> String {
    let port = if listen.port() == 0 { 0 } else { 8443 };
    let web = std::net::SocketAddr::new(listen.ip(), port);
    format!(
        "\n[web]\n\
         # The read-only web portal (HTTPS, the members' client certificates); \"\" turns it off.\n\
         listen = \"{web}\"\n"
    )
}

/// Who registers the first members, for the audit log.
pub(super) fn init_origin() -> crate::audit::Origin {
    crate::audit::Origin {
        member: String::new(),
        cert_sha256: String::new(),
        peer: crate::audit::bound::LOCAL_PEER.into(),
    }
}

pub fn print_summary(home: &Home) {
    println!("Initialised a development hub in {}", home.root.display());
    println!("  config:   {}", home.config().display());
    println!("  data:     {}", home.data().display());
    println!("  CA:       {}", home.ca_cert().display());
    println!(
        "  profiles: {} ({})",
        home.profiles().display(),
        home.profile_names().join(", ")
    );
    println!(
        "Use a profile with `cbm-hub --home {} <command> --profile EE-MFA`.",
        home.root.display()
    );
}
