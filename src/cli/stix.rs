//! `cbm-hub export stix`: everything the caller may currently see as one STIX 2.1 bundle, and
//! the hub id option shared with `subscribe --format stix`.
use std::{io::Write, path::PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{client::ClientArgs, filters::FilterArgs, home::Home};
use crate::{pb, stix::Mapper};

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// One STIX 2.1 bundle of the submissions you may see (latest revisions), TLP labels as the
    /// official TLP 2.0 marking definitions.
    Stix(ExportStixArgs),
}

/// Which hub the STIX identifiers are derived for.
#[derive(Debug, Clone, Args)]
pub struct HubIdArgs {
    /// Hub id the STIX identifiers are derived from (UUID v5 over hub id and submission id).
    /// Default: the hub's TLS server name (the profile's, else "localhost"), the same for every
    /// member of a hub, so all members name a submission by the same STIX id.
    #[arg(long, env = "CBM_HUB_ID")]
    pub hub_id: Option<String>,
}

impl HubIdArgs {
    pub fn mapper(&self, home: &Home, client: &ClientArgs) -> anyhow::Result<Mapper> {
        let id = match &self.hub_id {
            Some(id) if id.trim().is_empty() => anyhow::bail!("--hub-id: must not be empty"),
            Some(id) => id.clone(),
            None => client.settings(home)?.server_name,
        };
        Ok(Mapper::new(id))
    }
}

#[derive(Debug, Args)]
pub struct ExportStixArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Include withdrawn submissions, as revoked objects.
    #[arg(long)]
    pub include_withdrawn: bool,
    /// Output file, replaced atomically ("-" for stdout).
    #[arg(long, short, default_value = "-")]
    pub out: PathBuf,
    #[command(flatten)]
    pub hub: HubIdArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn run(home: &Home, c: ExportCommand) -> anyhow::Result<()> {
    match c {
        ExportCommand::Stix(a) => export_stix(home, a).await,
    }
}

async fn export_stix(home: &Home, a: ExportStixArgs) -> anyhow::Result<()> {
    let mapper = a.hub.mapper(home, &a.client)?;
    let mut hub = a.client.hub(home).await?;
    // Only what List returns: the hub has applied the caller's audience to every item.
    let mut req = pb::ListRequest {
        include_withdrawn: a.include_withdrawn,
        page_size: 500,
        ..a.filter.list_request()
    };
    let mut submissions = Vec::new();
    loop {
        let page = hub.list(req.clone()).await?.into_inner();
        submissions.extend(page.submissions);
        if page.next_page_token.is_empty() {
            break;
        }
        req.page_token = page.next_page_token;
    }
    let bundle = mapper.submissions_bundle(uuid::Uuid::new_v4(), &submissions)?;
    let mut text = serde_json::to_string_pretty(&bundle)?;
    text.push('\n');
    if a.out.as_os_str() == "-" {
        std::io::stdout().lock().write_all(text.as_bytes())?;
        return Ok(());
    }
    // Write then rename: a reader never sees half a bundle.
    let tmp = a.out.with_extension("tmp");
    std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &a.out).with_context(|| format!("replacing {}", a.out.display()))?;
    eprintln!(
        "exported {} submissions as a STIX 2.1 bundle of {} objects to {}",
        submissions.len(),
        bundle["objects"].as_array().map_or(0, Vec::len),
        a.out.display()
    );
    Ok(())
}
