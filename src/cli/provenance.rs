//! `receipt` (ask the hub for one) and `verify` (check a submission offline, from public files).
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::{client::ClientArgs, home::Home};
use crate::{pb, provenance::offline};

#[derive(Debug, Args)]
pub struct ReceiptArgs {
    /// Submission id.
    pub id: String,
    /// Revision (default: the latest).
    #[arg(long)]
    pub revision: Option<u32>,
    /// Write the receipt (JSON) to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The submission: `get --json` output, or a STIX bundle from `export stix` whose
    /// x-cbm-provenance extension carries the signed content, signature and receipt.
    pub submission: PathBuf,
    /// The hub's receipt (from `receipt ID` or `publish --receipt`); not needed when the
    /// submission file carries it.
    #[arg(long)]
    pub receipt: Option<PathBuf>,
    /// The hub's public key: its `audit-signing-key.pub` (hex), or the raw 32 bytes.
    #[arg(long)]
    pub hub_key: PathBuf,
    /// Root certificate(s) (PEM) the signer's chain must reach; repeat for several.
    #[arg(long = "trust-anchor", required = true)]
    pub trust_anchors: Vec<PathBuf>,
    /// In a STIX bundle holding several submissions: the one to verify (its hub id).
    #[arg(long)]
    pub id: Option<String>,
}

pub async fn receipt(home: &Home, a: ReceiptArgs) -> anyhow::Result<()> {
    let mut hub = a.client.hub(home).await?;
    let r = hub
        .get_receipt(pb::GetReceiptRequest {
            id: a.id,
            revision: a.revision.unwrap_or(0),
        })
        .await?
        .into_inner();
    let text = serde_json::to_string_pretty(&r)? + "\n";
    match &a.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// Reads a file, naming it in errors.
fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// The hub key from a file: hex text (as the hub writes it) or the raw key.
pub fn hub_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = read(path)?;
    let key = match std::str::from_utf8(&bytes) {
        Ok(text) if hex::decode(text.trim()).is_ok() => hex::decode(text.trim())?,
        _ => bytes,
    };
    anyhow::ensure!(
        key.len() == 32,
        "{}: not an Ed25519 public key (32 bytes, or 64 hex digits)",
        path.display()
    );
    Ok(key)
}

pub fn verify(a: VerifyArgs) -> anyhow::Result<()> {
    let text = read(&a.submission)?;
    let value: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not JSON", a.submission.display()))?;
    let (submission, embedded, mapped) =
        if value.get("type").and_then(|t| t.as_str()) == Some("bundle") {
            let (s, r, check) = crate::stix::provenance::from_bundle(&value, a.id.as_deref())
                .map_err(|e| anyhow::anyhow!("{}: {e}", a.submission.display()))?;
            (s, r, Some(check))
        } else {
            let s: pb::Submission = serde_json::from_value(value).with_context(|| {
                format!(
                    "{}: not a submission (`get --json`)",
                    a.submission.display()
                )
            })?;
            (s, None, None)
        };
    let receipt = match &a.receipt {
        Some(path) => Some(
            serde_json::from_slice::<pb::Receipt>(&read(path)?)
                .with_context(|| format!("{}: not a receipt", path.display()))?,
        ),
        None => embedded,
    };
    let mut anchors = Vec::new();
    for path in &a.trust_anchors {
        anchors.extend(
            crate::tls::load_certs(path).map_err(|e| anyhow::anyhow!("--trust-anchor: {e}"))?,
        );
    }
    let key = hub_key(&a.hub_key)?;
    let mut checks: Vec<offline::Check> = mapped.into_iter().collect();
    checks.extend(offline::verify(&offline::Input {
        submission: &submission,
        receipt: receipt.as_ref(),
        hub_key: &key,
        anchors: &anchors,
    }));
    for c in &checks {
        println!("{c}");
    }
    let mut failed: Vec<&str> = Vec::new();
    for c in checks.iter().filter(|c| !c.ok) {
        if !failed.contains(&c.what) {
            failed.push(c.what);
        }
    }
    anyhow::ensure!(
        failed.is_empty(),
        "verification failed: {}",
        failed.join(", ")
    );
    println!(
        "verified: {} revision {} by {}, as the hub received and logged it",
        submission.id, submission.revision, submission.publisher
    );
    Ok(())
}
