//! `publish`, `revise`, `withdraw`.
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::{client::ClientArgs, home::Home, output};
use crate::{
    jsonmap::{self, Schema},
    pb,
    provenance::{cose::SigningKey, statement},
};
use prost::Message;

/// Signing a change as its author (see README "Proving what was said").
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Sign the change with this PKCS#8 private key (PEM): the member's mTLS key or a signing
    /// key of its national PKI. ECDSA P-256 or P-384, Ed25519 or RSA.
    #[arg(long, requires = "sign_cert")]
    pub sign_key: Option<PathBuf>,
    /// The key's certificate (PEM), followed by the intermediates up to (not including) the
    /// root: carried in the signature as x5chain.
    #[arg(long, requires = "sign_key")]
    pub sign_cert: Option<PathBuf>,
    /// Write the hub's receipt for the change (JSON) to this file.
    #[arg(long)]
    pub receipt: Option<PathBuf>,
}

impl SignArgs {
    /// The signing key, when one was given.
    fn key(&self) -> anyhow::Result<Option<SigningKey>> {
        let (Some(key), Some(cert)) = (&self.sign_key, &self.sign_cert) else {
            return Ok(None);
        };
        let k = crate::tls::load_key(key).map_err(|e| anyhow::anyhow!("--sign-key: {e}"))?;
        let chain =
            crate::tls::load_certs(cert).map_err(|e| anyhow::anyhow!("--sign-cert: {e}"))?;
        SigningKey::new(&k, chain)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("--sign-key: {e}"))
    }

    /// The signature over `payload`, empty when not signing; `claim` is the change claim of a
    /// publication or revision (None for a withdrawal statement).
    fn sign(
        &self,
        payload: impl FnOnce() -> Vec<u8>,
        claim: Option<&str>,
    ) -> anyhow::Result<Vec<u8>> {
        match self.key()? {
            Some(k) => k.sign_change(&payload(), claim).map_err(anyhow::Error::msg),
            None => Ok(Vec::new()),
        }
    }

    /// Saves the reply's receipt where asked.
    fn save(&self, r: &pb::PublishResponse) -> anyhow::Result<()> {
        if let Some(path) = &self.receipt {
            let receipt = r.receipt.as_ref().ok_or_else(|| {
                anyhow::anyhow!("the hub gave no receipt; ask `cbm-hub receipt {}`", r.id)
            })?;
            std::fs::write(path, serde_json::to_string_pretty(receipt)? + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Submission file: JSON or YAML (by extension; "-" reads JSON or YAML from stdin).
    pub file: PathBuf,
    /// Key that makes a retry of this publish return the first result instead of publishing
    /// twice.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub sign: SignArgs,
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
    pub sign: SignArgs,
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
    pub sign: SignArgs,
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
    let claim = statement::change_claim("", 1);
    let signature = a.sign.sign(|| content.encode_to_vec(), Some(&claim))?;
    let mut hub = a.client.hub(home).await?;
    let req = pb::PublishRequest {
        content: Some(content),
        idempotency_key: a.idempotency_key.unwrap_or_default(),
        signature: signature.into(),
        want_receipt: a.sign.receipt.is_some(),
    };
    let r = hub.publish(req).await?.into_inner();
    a.sign.save(&r)?;
    output::change(&r, "published", a.client.json)
}

pub async fn revise(home: &Home, a: ReviseArgs) -> anyhow::Result<()> {
    let content = read_content(&a.file)?;
    let mut hub = a.client.hub(home).await?;
    let mut expected_revision = a.expected_revision.unwrap_or(0);
    let mut signature = Vec::new();
    if a.sign.sign_key.is_some() {
        // The signature claims the revision this change produces: the latest + 1.
        if expected_revision == 0 {
            expected_revision = latest_revision(&mut hub, &a.id).await?;
        }
        let claim = statement::change_claim(&a.id, expected_revision + 1);
        signature = a.sign.sign(|| content.encode_to_vec(), Some(&claim))?;
    }
    let req = pb::ReviseRequest {
        id: a.id,
        content: Some(content),
        expected_revision,
        idempotency_key: a.idempotency_key.unwrap_or_default(),
        signature: signature.into(),
        want_receipt: a.sign.receipt.is_some(),
    };
    let r = hub.revise(req).await?.into_inner();
    a.sign.save(&r)?;
    output::change(&r, "revised", a.client.json)
}

pub async fn withdraw(home: &Home, a: WithdrawArgs) -> anyhow::Result<()> {
    let mut hub = a.client.hub(home).await?;
    let mut expected_revision = a.expected_revision.unwrap_or(0);
    let mut signature = Vec::new();
    if a.sign.sign_key.is_some() {
        // The statement names the revision the withdrawal produces: the latest + 1.
        let current = match expected_revision {
            0 => latest_revision(&mut hub, &a.id).await?,
            n => n,
        };
        expected_revision = current;
        signature = a.sign.sign(
            || statement::withdrawal(&a.id, current + 1, &a.reason),
            None,
        )?;
    }
    let req = pb::WithdrawRequest {
        id: a.id,
        reason: a.reason,
        expected_revision,
        idempotency_key: a.idempotency_key.unwrap_or_default(),
        signature: signature.into(),
        want_receipt: a.sign.receipt.is_some(),
    };
    let r = hub.withdraw(req).await?.into_inner();
    a.sign.save(&r)?;
    output::change(&r, "withdrew", a.client.json)
}

/// The latest revision of submission `id`, which a signed change names (plus one).
async fn latest_revision(
    hub: &mut pb::hub_client::HubClient<tonic::transport::Channel>,
    id: &str,
) -> anyhow::Result<u32> {
    Ok(hub
        .get(pb::GetRequest {
            id: id.to_string(),
            revision: 0,
        })
        .await?
        .into_inner()
        .revision)
}
