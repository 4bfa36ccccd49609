//! `publish`, `revise`, `withdraw`.
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::{client::ClientArgs, home::Home, output};
use crate::{
    jsonmap::{self, Schema},
    pb,
};

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Submission file: JSON or YAML (by extension; "-" reads JSON or YAML from stdin).
    pub file: PathBuf,
    /// Key that makes a retry of this publish return the first result instead of publishing
    /// twice.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ReviseArgs {
    /// Submission id.
    pub id: String,
    /// File with the complete new content.
    pub file: PathBuf,
    /// Refuse unless the latest revision is this one.
    #[arg(long)]
    pub expected_revision: Option<u32>,
    #[arg(long)]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct WithdrawArgs {
    /// Submission id.
    pub id: String,
    /// Reason shown to readers.
    #[arg(long, default_value = "")]
    pub reason: String,
    #[arg(long)]
    pub expected_revision: Option<u32>,
    #[arg(long)]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Reads submission content from a JSON or YAML file in the proto3 JSON mapping. Unknown
/// fields are errors, so typos surface here rather than being dropped; errors name the path of
/// the field. Files of the earlier form (`body:`, `template:`) are read with a deprecation note
/// on stderr.
pub fn read_content(path: &Path) -> anyhow::Result<pb::SubmissionContent> {
    read_message(path)
}

/// Reads a message of the contract from a JSON or YAML file (see [`read_content`]).
pub fn read_message<T: Schema>(path: &Path) -> anyhow::Result<T> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    anyhow::ensure!(
        !text.trim().is_empty(),
        "{}: the file is empty",
        path.display()
    );
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let value = match ext {
        "json" => parse_json(&text),
        "yaml" | "yml" => parse_yaml(&text),
        _ => parse_json(&text).or_else(|_| parse_yaml(&text)),
    }
    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let read =
        jsonmap::from_value::<T>(value).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for note in &read.notes {
        eprintln!("note: {}: {note}", path.display());
    }
    Ok(read.message)
}

fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

/// YAML through a JSON value, so that YAML is the same mapping as JSON (serde_norway alone
/// would write and expect oneofs as YAML tags such as `!notice`).
fn parse_yaml(text: &str) -> Result<serde_json::Value, String> {
    serde_norway::from_str(text).map_err(|e| format!("not YAML: {e}"))
}

/// Submission content from YAML text (deprecation notes dropped).
pub fn from_yaml(text: &str) -> Result<pb::SubmissionContent, String> {
    jsonmap::from_value(parse_yaml(text)?).map(|r| r.message)
}

pub async fn publish(home: &Home, a: PublishArgs) -> anyhow::Result<()> {
    let content = read_content(&a.file)?;
    let mut hub = a.client.hub(home).await?;
    let req = pb::PublishRequest {
        content: Some(content),
        idempotency_key: a.idempotency_key.unwrap_or_default(),
    };
    let r = hub.publish(req).await?.into_inner();
    output::change(&r, "published", a.client.json)
}

pub async fn revise(home: &Home, a: ReviseArgs) -> anyhow::Result<()> {
    let content = read_content(&a.file)?;
    let mut hub = a.client.hub(home).await?;
    let req = pb::ReviseRequest {
        id: a.id,
        content: Some(content),
        expected_revision: a.expected_revision.unwrap_or(0),
        idempotency_key: a.idempotency_key.unwrap_or_default(),
    };
    let r = hub.revise(req).await?.into_inner();
    output::change(&r, "revised", a.client.json)
}

pub async fn withdraw(home: &Home, a: WithdrawArgs) -> anyhow::Result<()> {
    let mut hub = a.client.hub(home).await?;
    let req = pb::WithdrawRequest {
        id: a.id,
        reason: a.reason,
        expected_revision: a.expected_revision.unwrap_or(0),
        idempotency_key: a.idempotency_key.unwrap_or_default(),
    };
    let r = hub.withdraw(req).await?.into_inner();
    output::change(&r, "withdrew", a.client.json)
}
