//! `cbm-hub audit ...` and `cbm-hub access-log`: query, export and verify the audit log.
use std::{
    io::{BufRead, Write},
    path::PathBuf,
};

use crate::audit::verify_export;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{client::ClientArgs, home::Home, output};
use crate::pb::{self, audit_client::AuditClient, export_item::Item};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Entries matching filters, in log order (auditor or admin role).
    Query(QueryArgs),
    /// Write the whole log with its signed checkpoints as JSON lines (auditor or admin role).
    Export {
        /// Output file ("-" for stdout).
        #[arg(long, short, default_value = "-")]
        out: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Verify an exported log offline, without the hub; or, with --remote, ask the hub to
    /// verify its stored log.
    Verify {
        /// Exported JSON lines file.
        file: Option<PathBuf>,
        /// The hub's checkpoint public key (hex, as in DATA_DIR/audit-signing-key.pub, or a
        /// file holding it). Without it the key inside the export is trusted.
        #[arg(long)]
        public_key: Option<String>,
        /// Ask the hub to verify its stored log instead.
        #[arg(long)]
        remote: bool,
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
        AuditCommand::Export { out, client } => export(home, out, client).await,
        AuditCommand::Verify {
            file,
            public_key,
            remote,
            client,
        } => {
            if remote {
                let report = AuditClient::new(client.channel(home).await?)
                    .verify(pb::VerifyRequest {})
                    .await?
                    .into_inner();
                return report_result(&report, client.json);
            }
            let file = file.context("give the exported FILE, or --remote")?;
            let report = verify_file(&file, public_key.as_deref())?;
            report_result(&report, client.json)
        }
    }
}

async fn query(home: &Home, a: QueryArgs) -> anyhow::Result<()> {
    let mut client = AuditClient::new(a.client.channel(home).await?);
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

async fn export(home: &Home, out: PathBuf, client: ClientArgs) -> anyhow::Result<()> {
    let mut audit =
        AuditClient::new(client.channel(home).await?).max_decoding_message_size(8 * 1024 * 1024);
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
    while let Some(item) = stream.message().await? {
        if matches!(item.item, Some(Item::Entry(_))) {
            entries += 1;
        }
        serde_json::to_writer(&mut sink, &item)?;
        sink.write_all(b"\n")?;
    }
    sink.flush()?;
    if out.as_os_str() != "-" {
        eprintln!("exported {entries} entries to {}", out.display());
    }
    Ok(())
}

/// Verifies an exported file, against a pinned key if given.
fn verify_file(file: &PathBuf, pinned: Option<&str>) -> anyhow::Result<pb::VerifyReport> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let pinned = match pinned {
        Some(p) => {
            // 64 hex digits are the key itself; anything else names a file holding it.
            let is_key = p.len() == 64 && p.chars().all(|c| c.is_ascii_hexdigit());
            let text = if is_key {
                p.to_string()
            } else {
                std::fs::read_to_string(p).with_context(|| {
                    format!("--public-key: {p} is neither 64 hex digits nor a readable file")
                })?
            };
            let key = hex::decode(text.trim())
                .with_context(|| format!("--public-key: {p} does not hold a hex key"))?;
            Some(key)
        }
        None => None,
    };
    if pinned.is_none() {
        eprintln!(
            "note: checkpoint signatures are checked against the key inside the file; give \
             --public-key (DATA_DIR/audit-signing-key.pub) to detect a re-signed forgery"
        );
    }
    verify_export(reader.lines(), pinned).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

fn report_result(r: &pb::VerifyReport, json: bool) -> anyhow::Result<()> {
    if json {
        output::json(r)?;
    } else if r.ok {
        println!(
            "ok: {} entries consistent with their chain and {} signed checkpoints",
            r.entries, r.checkpoints
        );
    } else {
        println!("FAILED after {} good entries: {}", r.entries, r.problem);
    }
    anyhow::ensure!(r.ok, "the audit log does not verify");
    Ok(())
}

pub async fn access_log(home: &Home, a: AccessLogArgs) -> anyhow::Result<()> {
    let mut client = AuditClient::new(a.client.channel(home).await?);
    let mut req = pb::AccessLogRequest {
        submission_id: a.submission,
        page_size: 1000,
        page_token: String::new(),
    };
    if !a.client.json {
        println!(
            "{:<24}  {:<12}  {:<5}  {:>4}  AUDIT",
            "AT", "MEMBER", "VIA", "REV"
        );
    }
    loop {
        let page = client.access_log(req.clone()).await?.into_inner();
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
