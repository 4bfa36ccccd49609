//! `cbm-hub export stix`: everything the caller may currently see as one STIX 2.1 bundle; the
//! hub id option and the printing of `subscribe --format stix`, with the memory of what it
//! printed kept next to its cursor file.
use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context;
use clap::{Args, Subcommand};
use time::OffsetDateTime;

use super::{client::ClientArgs, filters::FilterArgs, home::Home, output};
use crate::{
    pb,
    stix::{Mapper, memory::Memory},
};

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
    let (mut bundle, skipped) = mapper.submissions_bundle(
        uuid::Uuid::new_v4(),
        &submissions,
        OffsetDateTime::now_utc(),
    );
    // A signed change (a revision, or a withdrawal's statement, whose tombstone keeps the
    // signature) carries the hub's receipt, so that an archive can verify it offline (the hub
    // gives it only to those who may read the submission, as it gave the submission).
    for s in submissions.iter().filter(|s| !s.signature.is_empty()) {
        let receipt = hub
            .get_receipt(pb::GetReceiptRequest {
                id: s.id.clone(),
                revision: s.revision,
            })
            .await
            .with_context(|| format!("the receipt of submission {}", s.id))?
            .into_inner();
        crate::stix::provenance::attach_receipt(&mut bundle, &receipt);
    }
    // What cannot be exported (TLP:RED, never) is named, and the rest still written.
    for why in &skipped {
        eprintln!("not exported: {why}");
    }
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
        "exported {} of {} submissions as a STIX 2.1 bundle of {} objects to {}",
        submissions.len() - skipped.len(),
        submissions.len(),
        bundle["objects"].as_array().map_or(0, Vec::len),
        a.out.display()
    );
    Ok(())
}

/// `subscribe --format stix`: the mapper, and its memory of what it printed (which object each
/// submission became, which were TLP:RED), kept in `<cursor file>.stix.json`.
pub struct StixOutput {
    mapper: Mapper,
    memory: Memory,
    path: Option<PathBuf>,
}

/// Where the memory of a cursor file is kept.
pub fn memory_path(cursor_file: &Path) -> PathBuf {
    let mut name = cursor_file.file_name().unwrap_or_default().to_os_string();
    name.push(".stix.json");
    cursor_file.with_file_name(name)
}

impl StixOutput {
    /// `saved`: the sequence the cursor file held (None: no cursor file yet, so the memory starts
    /// empty, and complete when the subscription starts at sequence 0).
    pub fn open(
        mapper: Mapper,
        cursor_file: Option<&Path>,
        saved: Option<u64>,
        starts_at_zero: bool,
    ) -> anyhow::Result<Self> {
        let path = cursor_file.map(memory_path);
        let memory = match (&path, saved) {
            (Some(p), Some(saved)) => match std::fs::read(p) {
                Ok(bytes) => serde_json::from_slice(&bytes)
                    .with_context(|| format!("{}: not a STIX subscriber memory", p.display()))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if saved > 0 {
                        eprintln!(
                            "stix: {} not found: what was printed before sequence {saved} is \
                             unknown, so a withdrawal of a submission not printed since is \
                             revoked as every STIX type its kind allows",
                            p.display()
                        );
                    }
                    Memory::new(saved == 0)
                }
                Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
            },
            _ => Memory::new(starts_at_zero),
        };
        Ok(StixOutput {
            mapper,
            memory,
            path,
        })
    }

    /// Prints the bundle of one change (one JSON line), reports on stderr what was not printed
    /// and why, and saves the memory when it changed. The caller writes the cursor after this,
    /// so a crash in between replays a change the memory already holds (printed at most twice,
    /// never lost).
    pub fn change(
        &mut self,
        sequence: u64,
        change: &pb::FeedChange,
        receipt: Option<&pb::Receipt>,
    ) -> anyhow::Result<()> {
        let mut out = self.mapper.feed(
            sequence,
            change,
            &mut self.memory,
            OffsetDateTime::now_utc(),
        );
        if let Some(bundle) = &mut out.bundle {
            if let Some(receipt) = receipt {
                crate::stix::provenance::attach_receipt(bundle, receipt);
            }
            output::json(bundle)?;
        }
        if let Some(note) = &out.note {
            eprintln!("stix: sequence {sequence}: {note}");
        }
        if self.memory.take_dirty()
            && let Some(p) = &self.path
        {
            let mut tmp = p.clone().into_os_string();
            tmp.push(".tmp");
            let tmp = PathBuf::from(tmp);
            std::fs::write(&tmp, serde_json::to_vec(&self.memory)?)
                .with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, p).with_context(|| format!("replacing {}", p.display()))?;
        }
        Ok(())
    }
}
