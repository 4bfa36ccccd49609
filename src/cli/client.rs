//! How client commands reach the hub: a profile, or explicit certificate files.
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::home::{Home, Profile};
use crate::domain::budget::MESSAGE_CEILING;
use crate::pb::{
    catalogue_client::CatalogueClient, directory_client::DirectoryClient, hub_client::HubClient,
    member_admin_client::MemberAdminClient,
};

/// Connection options shared by every client command.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Client profile (written by `init` or `pki issue`) in the home directory.
    #[arg(long, short = 'p', env = "CBM_PROFILE")]
    pub profile: Option<String>,
    /// Hub endpoint, such as https://localhost:50051 (overrides the profile).
    #[arg(long, env = "CBM_ENDPOINT")]
    pub endpoint: Option<String>,
    /// CA certificate (PEM) the hub's certificate must chain to.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Name checked against the hub's certificate (default: the profile's, else "localhost").
    #[arg(long)]
    pub server_name: Option<String>,
    /// Print JSON (one object, or one per line for lists) instead of readable text.
    #[arg(long)]
    pub json: bool,
}

impl ClientArgs {
    /// The effective connection settings: explicit flags over the profile.
    pub fn settings(&self, home: &Home) -> anyhow::Result<Profile> {
        let from_profile = match &self.profile {
            Some(name) => Some(home.read_profile(name)?),
            None => None,
        };
        let pick = |flag: &Option<PathBuf>,
                    prof: Option<&PathBuf>,
                    what: &str|
         -> anyhow::Result<PathBuf> {
            flag.clone().or_else(|| prof.cloned()).with_context(|| {
                let known = home.profile_names().join(", ");
                format!(
                    "no {what}: pass --profile NAME (known in {}: {}) or --ca/--cert/--key",
                    home.profiles().display(),
                    if known.is_empty() { "none" } else { &known }
                )
            })
        };
        Ok(Profile {
            member: from_profile
                .as_ref()
                .map(|p| p.member.clone())
                .unwrap_or_default(),
            endpoint: self
                .endpoint
                .clone()
                .or_else(|| from_profile.as_ref().map(|p| p.endpoint.clone()))
                .unwrap_or_else(|| "https://localhost:50051".into()),
            server_name: self
                .server_name
                .clone()
                .or_else(|| from_profile.as_ref().map(|p| p.server_name.clone()))
                .unwrap_or_else(|| "localhost".into()),
            ca: pick(
                &self.ca,
                from_profile.as_ref().map(|p| &p.ca),
                "CA certificate",
            )?,
            cert: pick(
                &self.cert,
                from_profile.as_ref().map(|p| &p.cert),
                "client certificate",
            )?,
            key: pick(
                &self.key,
                from_profile.as_ref().map(|p| &p.key),
                "client key",
            )?,
        })
    }

    pub async fn channel(&self, home: &Home) -> anyhow::Result<Channel> {
        connect(&self.settings(home)?).await
    }

    pub async fn hub(&self, home: &Home) -> anyhow::Result<HubClient<Channel>> {
        Ok(HubClient::new(self.channel(home).await?).max_decoding_message_size(MESSAGE_CEILING))
    }

    pub async fn admin(&self, home: &Home) -> anyhow::Result<MemberAdminClient<Channel>> {
        Ok(MemberAdminClient::new(self.channel(home).await?)
            .max_decoding_message_size(MESSAGE_CEILING))
    }

    pub async fn directory(&self, home: &Home) -> anyhow::Result<DirectoryClient<Channel>> {
        Ok(DirectoryClient::new(self.channel(home).await?)
            .max_decoding_message_size(MESSAGE_CEILING))
    }

    pub async fn catalogue(&self, home: &Home) -> anyhow::Result<CatalogueClient<Channel>> {
        Ok(CatalogueClient::new(self.channel(home).await?)
            .max_decoding_message_size(MESSAGE_CEILING))
    }
}

/// The settings of the last connection this process opened, for the diagnosis of a failure
/// (see `diagnose`).
static LAST_SETTINGS: std::sync::Mutex<Option<Profile>> = std::sync::Mutex::new(None);

pub fn last_settings() -> Option<Profile> {
    LAST_SETTINGS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// Opens an mTLS channel with the settings of a profile.
pub async fn connect(p: &Profile) -> anyhow::Result<Channel> {
    crate::tls::install_crypto_provider();
    *LAST_SETTINGS.lock().unwrap_or_else(|p| p.into_inner()) = Some(p.clone());
    let read =
        |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&p.ca)?))
        .identity(Identity::from_pem(read(&p.cert)?, read(&p.key)?))
        .domain_name(p.server_name.clone());
    let endpoint = Endpoint::from_shared(p.endpoint.clone())
        .with_context(|| format!("{:?} is not an endpoint URL", p.endpoint))?
        .tls_config(tls)?
        .connect_timeout(std::time::Duration::from_secs(10));
    endpoint
        .connect()
        .await
        .with_context(|| format!("connecting to {}", p.endpoint))
}
