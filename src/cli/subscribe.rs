//! `cbm-hub subscribe`: follow the feed, print each event, persist the cursor, reconnect.
use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use clap::{Args, ValueEnum};
use tonic::Code;

use super::{
    client::ClientArgs,
    filters::FilterArgs,
    history,
    home::Home,
    output,
    stix::{HubIdArgs, StixOutput},
};
use crate::domain::budget::MESSAGE_CEILING;
use crate::{
    feed::wire::{Event, FeedEventFields},
    pb::{self, feed_client::FeedClient},
};

/// How `subscribe` prints what it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One readable line per change.
    Text,
    /// One JSON feed event per line (`--json` is the same).
    Json,
    /// One STIX 2.1 bundle per change, one per line (JSON lines); heartbeats are not printed,
    /// nor TLP:RED; a withdrawal revokes the object printed for it.
    Stix,
}

#[derive(Debug, Args)]
pub struct SubscribeArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only submissions shared with, or published by members of, this community (repeatable).
    #[arg(long = "community")]
    pub communities: Vec<String>,
    /// Start after this sequence number (default 0: the whole history; ignored when the cursor
    /// file exists).
    #[arg(long, default_value_t = 0)]
    pub after: u64,
    /// Start at the current head: live changes only (unless the cursor file exists).
    #[arg(long)]
    pub from_now: bool,
    /// File holding the last sequence received: read at start, rewritten after every event and
    /// heartbeat, so a restarted subscriber resumes exactly where it stopped. With `--format
    /// stix`, FILE.stix.json next to it remembers which STIX object each submission was printed
    /// as, so that a withdrawal revokes exactly that object.
    #[arg(long)]
    pub cursor_file: Option<PathBuf>,
    /// Seconds between heartbeats from the hub while idle.
    #[arg(long, default_value_t = 15)]
    pub heartbeat: u32,
    /// Print heartbeats too.
    #[arg(long)]
    pub show_heartbeats: bool,
    /// Exit after this many changes (for scripts).
    #[arg(long)]
    pub max_events: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The hub's public key (its `audit-signing-key.pub`, hex) to check its checkpoints
    /// against. Without it, the key the hub shows first is pinned in the cursor file.
    #[arg(long)]
    pub hub_key: Option<PathBuf>,
    #[command(flatten)]
    pub hub: HubIdArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Statuses after which reconnecting cannot help.
fn is_final(code: Code) -> bool {
    matches!(
        code,
        Code::Unauthenticated
            | Code::PermissionDenied
            | Code::InvalidArgument
            | Code::NotFound
            | Code::DataLoss
    )
}

pub async fn run(home: &Home, a: SubscribeArgs) -> anyhow::Result<()> {
    let format = match (a.client.json, a.format) {
        (false, f) => f,
        (true, Format::Text | Format::Json) => Format::Json,
        (true, Format::Stix) => anyhow::bail!("--json conflicts with --format stix: pick one"),
    };
    let (saved, mut seen) = match &a.cursor_file {
        Some(p) => history::read(p)?,
        None => (None, history::Seen::default()),
    };
    if let Some(path) = &a.hub_key {
        let key = super::provenance::hub_key(path)?;
        anyhow::ensure!(
            seen.key.as_ref().is_none_or(|k| *k == key),
            "--hub-key is not the key pinned in the cursor file"
        );
        seen.key = Some(key);
    }
    let mut cursor = saved.unwrap_or(a.after);
    // (A cursor file from before `covered` was kept says nothing either way.)
    if let (Some(saved), Some(covered)) = (saved, seen.covered)
        && covered < saved
    {
        eprintln!(
            "note: the events after sequence {covered} up to {saved} were received without a checkpoint covering them (the subscriber stopped before it could ask for one): a rewrite of those alone cannot be detected"
        );
    }
    // What was received (from the cursor file, then from the feed): what the checks cover.
    // `--after N` is a position asked for, not a sequence received.
    let mut received = saved.unwrap_or(0);
    let mut from_now = saved.is_none() && a.from_now;
    let mut stix = match format {
        Format::Stix => Some(StixOutput::open(
            a.hub.mapper(home, &a.client)?,
            a.cursor_file.as_deref(),
            saved,
            cursor == 0 && !from_now,
        )?),
        _ => None,
    };
    let mut changes = 0u64;
    let mut backoff = Duration::from_millis(500);
    loop {
        let attempt = async {
            let channel = a.client.channel(home).await?;
            // Before anything is received: the hub proves its log extends what was seen.
            history::check(channel.clone(), &mut seen, received).await?;
            if let Some(p) = &a.cursor_file {
                history::write(p, cursor, &seen)?;
            }
            let mut feed =
                FeedClient::new(channel.clone()).max_decoding_message_size(MESSAGE_CEILING);
            let req = pb::SubscribeRequest {
                kinds: a.filter.kinds.clone(),
                states: a.filter.states.clone(),
                publishers: a.filter.publishers.clone(),
                communities: a.communities.clone(),
                tlp: a.filter.tlp.clone(),
                cbm_refs: a.filter.cbm_refs.clone(),
                after_sequence: cursor,
                from_now,
                heartbeat_seconds: a.heartbeat,
            };
            let mut hub = pb::hub_client::HubClient::new(channel.clone())
                .max_decoding_message_size(MESSAGE_CEILING);
            let mut stream = feed.subscribe(req).await?.into_inner();
            let mut refresh = history::Refresh::new();
            let file = a.cursor_file.as_deref();
            loop {
                // A pause in the feed is when to ask for a checkpoint covering what came.
                // (`message` keeps its state in the stream: a timed-out call loses nothing.)
                let event =
                    match tokio::time::timeout(history::Refresh::IDLE, stream.message()).await {
                        Err(_paused) => {
                            if refresh.due(&seen, cursor, true) {
                                refresh
                                    .run(channel.clone(), &mut seen, cursor, file)
                                    .await?;
                            }
                            continue;
                        }
                        Ok(message) => match message? {
                            Some(event) => event,
                            None => break,
                        },
                    };
                let fields = event.into_fields().context("undecodable feed event")?;
                let receipt = match (&stix, &fields.event) {
                    (Some(_), Some(Event::Change(c))) => signed_receipt(&mut hub, c).await,
                    _ => None,
                };
                handle(&a, stix.as_mut(), &fields, receipt.as_ref(), &mut changes)?;
                cursor = fields.sequence;
                received = cursor;
                from_now = false;
                backoff = Duration::from_millis(500);
                if let Some(p) = &a.cursor_file {
                    history::write(p, cursor, &seen)?;
                }
                if a.max_events.is_some_and(|max| changes >= max) {
                    // Stopping by itself: what was received is covered first.
                    if received > seen.covered.unwrap_or(0) {
                        refresh
                            .run(channel.clone(), &mut seen, cursor, file)
                            .await?;
                    }
                    return Ok(true);
                }
                let heartbeat = matches!(fields.event, Some(Event::Heartbeat(_)));
                if refresh.due(&seen, received, heartbeat) {
                    refresh
                        .run(channel.clone(), &mut seen, cursor, file)
                        .await?;
                }
            }
            anyhow::Ok(false)
        };
        match attempt.await {
            Ok(true) => return Ok(()),
            Ok(false) => eprintln!("feed ended by the hub; reconnecting after sequence {cursor}"),
            Err(e) => {
                if e.downcast_ref::<history::SplitView>().is_some() {
                    return Err(e);
                }
                if let Some(status) = e.downcast_ref::<tonic::Status>()
                    && is_final(status.code())
                {
                    return Err(e);
                }
                eprintln!(
                    "feed interrupted ({}); reconnecting in {:?} after sequence {cursor}",
                    super::describe_error(&e),
                    backoff
                );
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// The hub's receipt of a signed change (a revision, or a withdrawal whose tombstone keeps its
/// signed statement), which the STIX output carries so that an archive can verify it offline. A receipt the hub no longer gives (the submission changed
/// since and this revision is not the reader's any more) is noted, and the change printed
/// without it.
async fn signed_receipt(
    hub: &mut pb::hub_client::HubClient<tonic::transport::Channel>,
    c: &pb::FeedChange,
) -> Option<pb::Receipt> {
    let s = c.submission.as_ref()?;
    if s.signature.is_empty() {
        return None;
    }
    let asked = hub
        .get_receipt(pb::GetReceiptRequest {
            id: s.id.clone(),
            revision: s.revision,
        })
        .await;
    match asked {
        Ok(r) => Some(r.into_inner()),
        Err(e) => {
            eprintln!(
                "stix: no receipt for {} revision {}: {}",
                s.id,
                s.revision,
                e.message()
            );
            None
        }
    }
}

/// Prints one event; `stix` is set for `--format stix`.
fn handle(
    a: &SubscribeArgs,
    stix: Option<&mut StixOutput>,
    fields: &FeedEventFields,
    receipt: Option<&pb::Receipt>,
    changes: &mut u64,
) -> anyhow::Result<()> {
    let is_stix = stix.is_some();
    match &fields.event {
        Some(Event::Change(c)) => {
            *changes += 1;
            if let Some(stix) = stix {
                // Never an error for what cannot be mapped: reported, and the cursor moves on.
                return stix.change(fields.sequence, c, receipt);
            }
            if a.client.json || a.format == Format::Json {
                return output::json(fields);
            }
            let s = c.submission.clone().unwrap_or_default();
            let title = s.content.as_ref().map_or("", |c| c.title.as_str());
            let tlp = s.content.as_ref().map_or("-", |c| c.tlp.as_str());
            let reason = if c.reason.is_empty() || c.reason == c.action {
                String::new()
            } else {
                format!(" ({})", c.reason)
            };
            println!(
                "{:>8}  {:<9}{reason}  {} r{}  {}  {}  {}  {title}",
                fields.sequence, c.action, s.id, s.revision, s.kind, s.publisher, tlp
            );
        }
        Some(Event::Heartbeat(h)) if a.show_heartbeats && !is_stix => {
            if a.client.json || a.format == Format::Json {
                return output::json(fields);
            }
            println!(
                "{:>8}  heartbeat  head {} at {}",
                fields.sequence, h.head, h.at
            );
        }
        _ => {}
    }
    Ok(())
}
