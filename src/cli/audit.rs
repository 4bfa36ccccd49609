//! `cbm-hub audit ...` and `cbm-hub access-log`: query, export and verify the audit log.
use std::{
    io::{BufRead, Write},
    path::{Path, PathBuf},
};

use crate::audit::{check_served, verify_export};

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{client::ClientArgs, home::Home, output};
use crate::domain::budget::MESSAGE_CEILING;
use crate::pb::{self, audit_client::AuditClient, export_item::Item};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Entries matching filters, in log order (auditor or admin role).
    Query(QueryArgs),
    /// Write the whole log with its signed checkpoints as JSON lines (auditor or admin role).
    /// The export ends with a checkpoint signed for it, covering every entry.
    Export {
        /// Output file ("-" for stdout).
        #[arg(long, short, default_value = "-")]
        out: PathBuf,
        /// Also save the export's final checkpoint (JSON) here, for a later `verify --since`
        /// or `checkpoint --since`.
        #[arg(long)]
        checkpoint_out: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Verify an exported log offline, without the hub, against the hub's pinned public key:
    /// the chain, every checkpoint, and that a checkpoint covers the last entry. Or, with
    /// --remote, ask the hub to verify its stored log.
    Verify {
        /// Exported JSON lines file.
        file: Option<PathBuf>,
        /// The hub's checkpoint public key (hex, as in DATA_DIR/audit-signing-key.pub, or a
        /// file holding it). Required offline: a key taken from the export itself would
        /// accept a forgery re-signed with another key.
        #[arg(long)]
        public_key: Option<String>,
        /// A checkpoint saved earlier (by `export --checkpoint-out` or `checkpoint --out`):
        /// the export must extend it (nothing truncated or rewritten since).
        #[arg(long, conflicts_with = "remote")]
        since: Option<PathBuf>,
        /// Ask the hub to verify its stored log instead.
        #[arg(long)]
        remote: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Get a fresh checkpoint signed by the hub, check its signature against the pinned key
    /// and, with --since, check the hub's consistency proof that its log extends the earlier
    /// checkpoint; then save it (auditor or admin role).
    Checkpoint {
        /// The hub's checkpoint public key (hex, or a file holding it).
        #[arg(long)]
        public_key: String,
        /// The checkpoint saved last time.
        #[arg(long)]
        since: Option<PathBuf>,
        /// Where to save the new checkpoint (JSON); may be the same file as --since.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[arg(long, default_value = "")]
    pub member: String,
    /// Action, such as submission.get, feed.deliver, member.suspend, tls.handshake.
    #[arg(long, default_value = "")]
    pub action: String,
    /// Submission or member id.
    #[arg(long, default_value = "")]
    pub object: String,
    /// allowed or refused.
    #[arg(long, default_value = "")]
    pub outcome: String,
    /// RFC 3339 instant.
    #[arg(long, default_value = "")]
    pub since: String,
    #[arg(long, default_value = "")]
    pub until: String,
    #[arg(long, default_value_t = 100)]
    pub page_size: u32,
    /// Follow page tokens to the end.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct AccessLogArgs {
    /// Id of one of your submissions.
    pub submission: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn run(home: &Home, cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Query(a) => query(home, a).await,
        AuditCommand::Export {
            out,
            checkpoint_out,
            client,
        } => export(home, out, checkpoint_out, client).await,
        AuditCommand::Verify {
            file,
            public_key,
            since,
            remote,
            client,
        } => {
            if remote {
                let report = AuditClient::new(client.channel(home).await?)
                    .verify(pb::VerifyRequest {})
                    .await?
                    .into_inner();
                return report_result(&report, client.json, None);
            }
            let file = file.context("give the exported FILE, or --remote")?;
            let key = public_key.context(
                "--public-key is required: the hub's key (DATA_DIR/audit-signing-key.pub); a key \
                 taken from the export itself would accept a forgery re-signed with another key",
            )?;
            let since = since.as_deref().map(read_checkpoint).transpose()?;
            let report = verify_file(&file, &pinned_key(&key)?, since.clone())?;
            report_result(&report, client.json, since.as_ref())
        }
        AuditCommand::Checkpoint {
            public_key,
            since,
            out,
            client,
        } => checkpoint(home, &public_key, since, out, client).await,
    }
}

async fn query(home: &Home, a: QueryArgs) -> anyhow::Result<()> {
    let mut client =
        AuditClient::new(a.client.channel(home).await?).max_decoding_message_size(MESSAGE_CEILING);
    let mut req = pb::AuditQuery {
        member: a.member,
        action: a.action,
        object_id: a.object,
        outcome: a.outcome,
        since: a.since,
        until: a.until,
        page_size: a.page_size,
        page_token: String::new(),
    };
    if !a.client.json {
        println!(
            "{:>7}  {:<24}  {:<12}  {:<20}  {:<8}  {:<36}  DETAIL",
            "SEQ", "AT", "MEMBER", "ACTION", "OUTCOME", "OBJECT"
        );
    }
    loop {
        let page = client.query(req.clone()).await?.into_inner();
        for e in &page.entries {
            if a.client.json {
                output::json(e)?;
            } else {
                let mut detail = if e.reason.is_empty() {
                    e.detail.clone()
                } else {
                    e.reason.clone()
                };
                if !e.object_ids.is_empty() {
                    detail = format!("{} results", e.object_ids.len());
                }
                if e.count > 0 {
                    // An aggregate of unauthenticated refusals: the count, period and causes.
                    detail = e.detail.clone();
                }
                if !e.label.is_empty() {
                    detail = format!("r{} {} {detail}", e.revision, e.label);
                }
                let who = if e.member.is_empty() {
                    format!("({})", &e.cert_sha256.get(..8).unwrap_or("-"))
                } else {
                    e.member.clone()
                };
                println!(
                    "{:>7}  {:<24}  {:<12}  {:<20}  {:<8}  {:<36}  {detail}",
                    e.sequence, e.at, who, e.action, e.outcome, e.object_id
                );
            }
        }
        if !a.all || page.next_page_token.is_empty() {
            if !page.next_page_token.is_empty() && !a.client.json {
                println!("more: re-run with --all");
            }
            return Ok(());
        }
        req.page_token = page.next_page_token;
    }
}

async fn export(
    home: &Home,
    out: PathBuf,
    checkpoint_out: Option<PathBuf>,
    client: ClientArgs,
) -> anyhow::Result<()> {
    let mut audit =
        AuditClient::new(client.channel(home).await?).max_decoding_message_size(MESSAGE_CEILING);
    let mut stream = audit
        .export(pb::ExportRequest { after_sequence: 0 })
        .await?
        .into_inner();
    let mut sink: Box<dyn Write> = if out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?,
        ))
    };
    let mut entries = 0u64;
    let mut last = None;
    while let Some(item) = stream.message().await? {
        match &item.item {
            Some(Item::Entry(_)) => entries += 1,
            Some(Item::Checkpoint(c)) => last = Some(c.clone()),
            _ => {}
        }
        serde_json::to_writer(&mut sink, &item)?;
        sink.write_all(b"\n")?;
    }
    sink.flush()?;
    if out.as_os_str() != "-" {
        eprintln!("exported {entries} entries to {}", out.display());
    }
    if let Some(path) = checkpoint_out {
        let c = last.context("the export held no checkpoint")?;
        write_checkpoint(&path, &c)?;
        eprintln!(
            "saved the export's checkpoint ({} entries) to {}",
            c.tree_size,
            path.display()
        );
    }
    Ok(())
}

/// `audit checkpoint`: a fresh signed checkpoint, proved to extend the earlier one.
async fn checkpoint(
    home: &Home,
    public_key: &str,
    since: Option<PathBuf>,
    out: Option<PathBuf>,
    client: ClientArgs,
) -> anyhow::Result<()> {
    let pinned = pinned_key(public_key)?;
    let earlier = since.as_deref().map(read_checkpoint).transpose()?;
    let served = AuditClient::new(client.channel(home).await?)
        .consistency_proof(pb::ConsistencyProofRequest {
            from_size: earlier.as_ref().map_or(0, |c| c.tree_size),
            to_size: 0,
            cover_sequence: 0,
        })
        .await?
        .into_inner();
    let later = check_served(&pinned, earlier.as_ref(), &served)
        .map_err(|e| anyhow::anyhow!("FAILED: {e}"))?;
    if let Some(path) = &out {
        write_checkpoint(path, &later)?;
    }
    if client.json {
        output::json(&served)?;
    } else {
        match &earlier {
            Some(e) => println!(
                "ok: the log of {} entries (checkpoint signed at {}) extends the earlier one of {} entries",
                later.tree_size, later.at, e.tree_size
            ),
            None => println!(
                "ok: checkpoint of {} entries signed at {} by the pinned key",
                later.tree_size, later.at
            ),
        }
        if let Some(path) = &out {
            println!("saved to {}", path.display());
        }
    }
    Ok(())
}

fn read_checkpoint(path: &Path) -> anyhow::Result<pb::Checkpoint> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a checkpoint saved by cbm-hub", path.display()))
}

fn write_checkpoint(path: &Path, c: &pb::Checkpoint) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(c)? + "\n";
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The hub's public key: 64 hex digits, or a file holding them.
fn pinned_key(p: &str) -> anyhow::Result<Vec<u8>> {
    let is_key = p.len() == 64 && p.chars().all(|c| c.is_ascii_hexdigit());
    let text = if is_key {
        p.to_string()
    } else {
        std::fs::read_to_string(p).with_context(|| {
            format!("--public-key: {p} is neither 64 hex digits nor a readable file")
        })?
    };
    let key = hex::decode(text.trim())
        .ok()
        .filter(|k| k.len() == 32)
        .with_context(|| format!("--public-key: {p} does not hold a 32-byte hex key"))?;
    Ok(key)
}

/// Verifies an exported file against the pinned key.
fn verify_file(
    file: &Path,
    pinned: &[u8],
    since: Option<pb::Checkpoint>,
) -> anyhow::Result<pb::VerifyReport> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    verify_export(reader.lines(), pinned, since)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

fn report_result(
    r: &pb::VerifyReport,
    json: bool,
    since: Option<&pb::Checkpoint>,
) -> anyhow::Result<()> {
    if json {
        output::json(r)?;
    } else if r.ok {
        println!(
            "ok: {} entries consistent with their chain and {} signed checkpoints",
            r.entries, r.checkpoints
        );
        if r.covered > 0 || r.entries == 0 {
            println!(
                "the last checkpoint covers entries 1..={} (signed at {})",
                r.covered, r.covered_at
            );
        }
        if let Some(c) = since {
            println!(
                "the log extends the earlier checkpoint of {} entries (signed at {})",
                c.tree_size, c.at
            );
        }
    } else {
        println!("FAILED after {} good entries: {}", r.entries, r.problem);
    }
    anyhow::ensure!(r.ok, "the audit log does not verify");
    Ok(())
}

pub async fn access_log(home: &Home, a: AccessLogArgs) -> anyhow::Result<()> {
    let mut client =
        AuditClient::new(a.client.channel(home).await?).max_decoding_message_size(MESSAGE_CEILING);
    let mut req = pb::AccessLogRequest {
        submission_id: a.submission,
        page_size: 1000,
        page_token: String::new(),
    };
    let mut header = !a.client.json;
    loop {
        let page = client.access_log(req.clone()).await?.into_inner();
        // After the first answer: a refusal prints its error alone.
        if std::mem::take(&mut header) {
            println!(
                "{:<24}  {:<12}  {:<5}  {:>4}  AUDIT",
                "AT", "MEMBER", "VIA", "REV"
            );
        }
        for r in &page.records {
            if a.client.json {
                output::json(r)?;
            } else {
                let rev = if r.revision == 0 {
                    "-".to_string()
                } else {
                    r.revision.to_string()
                };
                println!(
                    "{:<24}  {:<12}  {:<5}  {rev:>4}  {}",
                    r.at, r.member, r.via, r.audit_sequence
                );
            }
        }
        if page.next_page_token.is_empty() {
            return Ok(());
        }
        req.page_token = page.next_page_token;
    }
}
