//! No split views: `subscribe` keeps, in its cursor file, the latest audit checkpoint the hub
//! signed for it and the hub's key, and at every (re)connection asks the hub to prove that its
//! log extends that checkpoint (RFC 6962 consistency proof). A hub that rewrote or forked its
//! history since cannot: the subscriber stops, loudly.
//!
//! The checkpoint must cover what was received, or a hub rolled back to a copy taken before
//! the last events and then given other ones would still extend it: each check asks for a
//! checkpoint covering the last sequence received (`cover_sequence`), and `subscribe` checks
//! again while it receives (see [`Refresh`]), so that the checkpoint saved covers the cursor
//! saved, up to the last second before the subscriber stopped.
//!
//! The cursor file: line 1 the last sequence received (as before), then `checkpoint JSON`
//! (the cbm.v1 Checkpoint), `covered SEQ` (the sequence that checkpoint covers) and
//! `hub-key HEX` once known. Readers of the first line alone still read it.
use std::path::Path;

use anyhow::Context;
use tonic::transport::Channel;

use crate::{
    audit::check_served,
    domain::budget::MESSAGE_CEILING,
    pb::{self, audit_client::AuditClient},
};

/// What the subscriber has seen of the hub's log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// The latest checkpoint it verified.
    pub checkpoint: Option<pb::Checkpoint>,
    /// The feed sequence that checkpoint covers (the events received up to it are in it);
    /// None in a cursor file written before it was kept.
    pub covered: Option<u64>,
    /// The hub's key (raw Ed25519), pinned at first contact or given with `--hub-key`.
    pub key: Option<Vec<u8>>,
}

/// The hub showed a history that does not extend the one seen before: never retried.
#[derive(Debug, thiserror::Error)]
#[error(
    "split view: the hub's audit log does not extend the checkpoint this subscriber saw ({0}); its history was rewritten or forked. Not resuming."
)]
pub struct SplitView(pub String);

/// The cursor file: the sequence, and what was seen of the log.
pub fn read(path: &Path) -> anyhow::Result<(Option<u64>, Seen)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, Seen::default())),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("").trim();
    let seq = first
        .parse()
        .with_context(|| format!("{}: not a sequence number", path.display()))?;
    let mut seen = Seen::default();
    for line in lines {
        if let Some(json) = line.strip_prefix("checkpoint ") {
            seen.checkpoint = Some(
                serde_json::from_str(json)
                    .with_context(|| format!("{}: damaged checkpoint line", path.display()))?,
            );
        } else if let Some(covered) = line.strip_prefix("covered ") {
            seen.covered = Some(
                covered
                    .trim()
                    .parse()
                    .with_context(|| format!("{}: damaged covered line", path.display()))?,
            );
        } else if let Some(key) = line.strip_prefix("hub-key ") {
            seen.key = Some(
                hex::decode(key.trim())
                    .with_context(|| format!("{}: damaged hub-key line", path.display()))?,
            );
        }
    }
    Ok((Some(seq), seen))
}

/// Replaces the cursor file atomically (write, then rename), so a crash leaves the old or the
/// new value, never a torn one.
pub fn write(path: &Path, seq: u64, seen: &Seen) -> anyhow::Result<()> {
    let mut text = format!("{seq}\n");
    if let Some(c) = &seen.checkpoint {
        text.push_str(&format!("checkpoint {}\n", serde_json::to_string(c)?));
        if let Some(covered) = seen.covered {
            text.push_str(&format!("covered {covered}\n"));
        }
    }
    if let Some(k) = &seen.key {
        text.push_str(&format!("hub-key {}\n", hex::encode(k)));
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

/// Asks the hub for a fresh checkpoint covering the feed up to `received` and the proof that
/// it extends the one seen; updates `seen`. Fails with [`SplitView`] when the hub cannot prove
/// it, changed its key, or no longer has what was received.
pub async fn check(channel: Channel, seen: &mut Seen, received: u64) -> anyhow::Result<()> {
    let mut audit = AuditClient::new(channel).max_decoding_message_size(MESSAGE_CEILING);
    let from = seen.checkpoint.as_ref().map_or(0, |c| c.tree_size);
    let asked = audit
        .consistency_proof(pb::ConsistencyProofRequest {
            from_size: from,
            to_size: 0,
            cover_sequence: received,
        })
        .await;
    let served = match asked {
        Ok(served) => served.into_inner(),
        // The hub's log or feed is shorter than what this subscriber saw of it.
        Err(s) if s.code() == tonic::Code::InvalidArgument => {
            let what = if s.message().starts_with("cover_sequence") {
                format!("its feed no longer reaches sequence {received}, received before")
            } else {
                format!("its log is shorter than the {from} entries the checkpoint covers")
            };
            return Err(
                SplitView(format!("{what}: truncated or replaced; {}", s.message())).into(),
            );
        }
        Err(s) => return Err(s.into()),
    };
    let key = match &seen.key {
        Some(k) if *k != served.public_key.as_ref() => {
            return Err(SplitView(format!(
                "the hub now signs with public key {} (key id {}), not the pinned {} (key id {}; the cursor file's hub-key line)",
                hex::encode(&served.public_key),
                crate::audit::signing::key_id(&served.public_key),
                hex::encode(k),
                crate::audit::signing::key_id(k)
            ))
            .into());
        }
        Some(k) => k.clone(),
        None => served.public_key.to_vec(),
    };
    let later = check_served(&key, seen.checkpoint.as_ref(), &served).map_err(SplitView)?;
    seen.key = Some(key);
    seen.checkpoint = Some(later);
    // Only what the hub says it covered (a hub before cover_sequence says nothing).
    if received > 0 && served.covered_sequence != received {
        static NOTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if NOTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        eprintln!(
            "note: the hub did not say its checkpoint covers sequence {received} (a hub without cover_sequence?): a rewrite of what was received since sequence {} cannot be detected",
            seen.covered.unwrap_or(0)
        );
    } else {
        seen.covered = Some(seen.covered.unwrap_or(0).max(received));
    }
    Ok(())
}

/// When `subscribe` checks again while it receives: once events are uncovered and the feed
/// pauses (no message for [`Refresh::IDLE`], or a heartbeat), every [`Refresh::EVERY`] while
/// they keep coming, and before it stops by itself. At most one check per `IDLE`.
pub struct Refresh {
    last: tokio::time::Instant,
}

impl Refresh {
    pub const IDLE: std::time::Duration = std::time::Duration::from_secs(1);
    pub const EVERY: std::time::Duration = std::time::Duration::from_secs(5);

    pub fn new() -> Refresh {
        Refresh {
            last: tokio::time::Instant::now(),
        }
    }

    /// Whether to check now, with events received up to `cursor`; `paused` when the feed
    /// paused or the subscriber is about to stop.
    pub fn due(&self, seen: &Seen, cursor: u64, paused: bool) -> bool {
        cursor > seen.covered.unwrap_or(0)
            && self.last.elapsed() >= if paused { Self::IDLE } else { Self::EVERY }
    }

    /// Checks the hub covers the feed up to `cursor`, then saves it in the cursor file.
    pub async fn run(
        &mut self,
        channel: Channel,
        seen: &mut Seen,
        cursor: u64,
        file: Option<&Path>,
    ) -> anyhow::Result<()> {
        self.last = tokio::time::Instant::now();
        check(channel, seen, cursor).await?;
        if let Some(p) = file {
            write(p, cursor, seen)?;
        }
        Ok(())
    }
}
