//! One subscription: replay from storage after the cursor, then the live tail, with no gap and
//! no duplicate at the seam.
//!
//! The live receiver is taken before storage is read, so every change committed after that
//! moment is in the live channel, and every change committed before it is in storage; the
//! cursor drops what was already sent. Storage is the truth: when the live receiver lags (the
//! subscriber was slow) or shows a gap, the subscription goes back to reading storage from its
//! cursor. Storage is read only up to the durable head, so nothing unacknowledged is delivered.
use std::{pin::Pin, sync::Arc, time::Duration};

use bytes::Bytes;
use tokio::{sync::broadcast::error::RecvError, time::Instant};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::Status;

use super::{
    filter::{ChangeFields, Delivery, Filter, decide},
    wire::{Event, FeedEvent, FeedEventFields},
};
use crate::{
    audit::Origin,
    domain::{
        clock,
        member::{Binding, Member, Registry},
        visibility::{narrowed, tombstone},
    },
    limits::SubscriptionSlot,
    metrics::{FeedMetrics, GaugeGuard, Source},
    pb,
    store::{Committed, Store, StoreError, records::StoredEvent},
    tls::{
        incoming::ConnInfo,
        watch::{PolicyWatch, still_bound},
    },
};

/// Events read from storage per batch during replay.
const REPLAY_BATCH: usize = 512;

/// Bounded in messages and in bytes (see [`super::sink`]).
pub use super::sink::Sink;

/// A subscription's fixed inputs.
pub struct Subscription {
    pub store: Store,
    /// The binding the subscriber's certificate matched; re-checked when the registry changes.
    pub binding: Binding,
    pub member: Arc<Member>,
    pub filter: Filter,
    /// Deliver changes with a sequence greater than this.
    pub cursor: u64,
    /// Start with a heartbeat at the cursor: a client that asked for `from_now` learns at once
    /// which sequence it stands at, so it can resume from there after a disconnect even if no
    /// change reached it before.
    pub announce: bool,
    pub heartbeat: Duration,
    /// Server shutdown: end the stream with a status clients can resume from.
    pub shutdown: CancellationToken,
    /// Who subscribed, for the audit entries of deliveries.
    pub origin: Origin,
    /// The subscriber's connection: its certificate is re-checked after TLS reloads.
    pub conn: Option<ConnInfo>,
    /// Its place in the member's subscription cap, freed when the stream ends.
    pub _slot: Option<SubscriptionSlot>,
    /// Counts it among the open subscriptions while it runs.
    pub _open: GaugeGuard,
    /// Deliveries and lagging are counted here.
    pub metrics: FeedMetrics,
}

/// Deliveries not yet recorded in the audit log, as ranges of sequence numbers.
#[derive(Default)]
struct Deliveries {
    /// Inclusive ranges, flattened: [first0, last0, first1, last1, ...].
    ranges: Vec<u64>,
    count: u64,
    /// When the oldest unrecorded delivery was made.
    since: Option<Instant>,
}

/// Deliveries are recorded at least this often, and at the end of the stream.
const DELIVERY_AUDIT_EVERY: Duration = Duration::from_secs(5);
const DELIVERY_AUDIT_MAX: u64 = 1000;

impl Deliveries {
    fn note(&mut self, seq: u64) {
        match self.ranges.last_mut() {
            Some(last) if *last + 1 == seq => *last = seq,
            _ => self.ranges.extend([seq, seq]),
        }
        self.count += 1;
        self.since.get_or_insert_with(Instant::now);
    }

    fn due(&self) -> bool {
        self.count >= DELIVERY_AUDIT_MAX
            || self
                .since
                .is_some_and(|t| t.elapsed() >= DELIVERY_AUDIT_EVERY)
    }

    /// Records what was delivered since the last record, if anything.
    async fn record(&mut self, sub: &Subscription) {
        if self.count == 0 {
            return;
        }
        let mut entry = sub.origin.entry("feed.deliver");
        entry.delivered_ranges = std::mem::take(&mut self.ranges);
        entry.detail = format!("{} events", self.count);
        self.count = 0;
        self.since = None;
        sub.store.audit(vec![entry]).await;
    }
}

/// Why a subscription stops.
enum Stop {
    /// The client went away.
    Gone,
    /// End the stream with this status.
    With(Status),
}

/// Runs the subscription until the client leaves, the hub shuts down, or the member loses access.
pub async fn run(mut sub: Subscription, sink: Sink) {
    // Taken before any storage read: see the module comment.
    let mut live = sub.store.live();
    let mut state = Progress {
        cursor: sub.cursor,
        // The generation first: a registry read after it is at least as new, so a change in
        // between is seen again, never missed.
        generation: sub.store.registry_generation(),
        registry: sub.store.registry(),
        policy: PolicyWatch::new(&sub.store, sub.conn.as_ref()),
        next_heartbeat: Instant::now()
            + if sub.announce {
                Duration::ZERO
            } else {
                sub.heartbeat
            },
        delivered: Deliveries::default(),
    };
    // Held while the subscription reads storage again after falling behind the live channel.
    let mut lagging: Option<GaugeGuard> = None;
    // Registered once for the whole stream, not once per message.
    let mut shutdown = std::pin::pin!(sub.shutdown.clone().cancelled_owned());
    let stop = loop {
        if let Err(stop) = replay(&mut sub, &mut state, &sink, shutdown.as_mut()).await {
            break stop;
        }
        lagging = None;
        if let Err(stop) =
            follow_live(&mut sub, &mut state, &mut live, &sink, shutdown.as_mut()).await
        {
            break stop;
        }
        lagging = Some(sub.metrics.lagging());
    };
    drop(lagging);
    let mut delivered = std::mem::take(&mut state.delivered);
    delivered.record(&sub).await;
    if let Stop::With(status) = stop {
        // Bounded: a client that stopped reading does not hold up shutdown.
        let _ = tokio::time::timeout(Duration::from_secs(2), sink.send(Err(status))).await;
    }
}

/// Where a subscription is.
struct Progress {
    /// Highest sequence examined (delivered, or not for this subscriber).
    cursor: u64,
    registry: Arc<Registry>,
    generation: u64,
    /// Registry changes and TLS reloads: an idle stream re-checks its member at once.
    policy: PolicyWatch,
    next_heartbeat: Instant,
    delivered: Deliveries,
}

impl Progress {
    /// Notes a delivery: the next heartbeat moves, and the audit record is made when due.
    async fn delivered(&mut self, sub: &Subscription, seq: u64, delivery: Delivery) {
        self.next_heartbeat = Instant::now() + sub.heartbeat;
        // The audit's delivery ranges are what the member received of submissions (the
        // publisher's access log reads them as reads); a tombstone gives nothing to read.
        if matches!(delivery, Delivery::Full | Delivery::Acknowledgement) {
            self.delivered.note(seq);
        }
        if self.delivered.due() {
            self.delivered.record(sub).await;
        }
    }

    /// Re-checks the member after a registry change: suspension or unbinding ends the stream.
    fn recheck(&mut self, sub: &mut Subscription) -> Result<(), Stop> {
        if let Some(conn) = &sub.conn {
            conn.ensure_accepted().map_err(|e| {
                Stop::With(Status::unauthenticated(format!(
                    "the client certificate is no longer accepted: {e}"
                )))
            })?;
        }
        let generation = sub.store.registry_generation();
        if generation == self.generation {
            return Ok(());
        }
        self.generation = generation;
        self.registry = sub.store.registry();
        if !still_bound(
            sub.conn.as_ref(),
            &self.registry,
            &sub.binding,
            &sub.member.id,
        ) {
            return Err(Stop::With(Status::unauthenticated(
                "this certificate is no longer bound to the member",
            )));
        }
        let member = self
            .registry
            .get(&sub.member.id)
            .cloned()
            .ok_or_else(|| Stop::With(Status::unauthenticated("member removed")))?;
        if !member.is_active() {
            return Err(Stop::With(Status::permission_denied(format!(
                "member {} is suspended",
                member.id
            ))));
        }
        sub.member = member;
        Ok(())
    }
}

/// A batch of replayed events: (sequence, message to send if any), and the damage that ended
/// it early.
type Batch = (Vec<(u64, Option<(Delivery, Bytes)>)>, Option<StoreError>);

/// Reads and decides up to [`REPLAY_BATCH`] events after `after` (up to `head`) off the async
/// workers, on the stored form of the events ([`super::encoded`]). A batch also ends once it
/// has read [`crate::domain::budget::REPLAY_BATCH_BYTES`] of stored events (after at least
/// one), so that a reader of large items holds a bounded number of bytes, not of events.
fn read_batch(
    sub: &Subscription,
    p: &Progress,
    after: u64,
    head: u64,
) -> tokio::task::JoinHandle<Batch> {
    let store = sub.store.clone();
    let (member, filter, registry) = (sub.member.clone(), sub.filter.clone(), p.registry.clone());
    tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(REPLAY_BATCH);
        // Each event is decided against its submission's head as it stands now, not against
        // the audience its own revision had.
        let mut heads = super::encoded::Heads::with_revised(
            |id: &str| store.head_of(id),
            |id: &str| store.is_revised(id),
        );
        let mut bytes = 0;
        for raw in store.raw_events_after(after).take(REPLAY_BATCH) {
            let decided = raw.and_then(|raw| {
                bytes += raw.payload().len();
                super::encoded::deliver(&member, &filter, &registry, &mut heads, raw.payload())
            });
            match decided {
                Ok((seq, _)) if seq > head => break,
                Ok(d) => {
                    batch.push(d);
                    if bytes >= crate::domain::budget::REPLAY_BATCH_BYTES {
                        break;
                    }
                }
                // The good events before a damaged one are delivered; the damaged one ends the
                // stream with DATA_LOSS instead of being served.
                Err(e) => return (batch, Some(e)),
            }
        }
        (batch, None)
    })
}

/// A batch being read: from where, and the registry and audience generations it is decided
/// against.
struct Reading {
    after: u64,
    decided_at: (u64, u64),
    handle: tokio::task::JoinHandle<Batch>,
}

/// Starts reading the batch after `after`, or None when storage holds nothing beyond it. The
/// member is re-checked first, and the batch is decided with the registry as it stands then.
fn read_from(
    sub: &mut Subscription,
    p: &mut Progress,
    after: u64,
) -> Result<Option<Reading>, Stop> {
    let head = sub.store.head();
    if after >= head {
        return Ok(None);
    }
    p.recheck(sub)?;
    // The batch is decided against the registry the re-check left (of generation
    // `p.generation`) and the heads as they are now; if either changes before it is sent (a
    // slow reader), the rest is decided again.
    let decided_at = (p.generation, sub.store.audience_generation());
    Ok(Some(Reading {
        after,
        decided_at,
        handle: read_batch(sub, p, after, head),
    }))
}

/// Reads storage from the cursor up to the durable head, delivering what the member may see.
/// Each batch is decided with the member and registry as re-checked just before it is read.
/// The next batch is read while this one is sent: scanning and sending then share the cores
/// instead of taking turns.
async fn replay(
    sub: &mut Subscription,
    p: &mut Progress,
    sink: &Sink,
    mut shutdown: Pin<&mut WaitForCancellationFutureOwned>,
) -> Result<(), Stop> {
    let mut ahead: Option<Reading> = None;
    'batches: loop {
        // A batch read ahead is used only if it starts at the cursor (not after a batch cut
        // short by a change; then it is dropped and read again from the cursor).
        let (reading, read_ahead) = match ahead.take().filter(|r| r.after == p.cursor) {
            Some(reading) => (reading, true),
            None => match read_from(sub, p, p.cursor)? {
                Some(reading) => (reading, false),
                None => return Ok(()),
            },
        };
        let (batch, damage) = reading
            .handle
            .await
            .map_err(|e| Stop::With(Status::internal(format!("replay task failed: {e}"))))?;
        if read_ahead {
            // Re-checked before anything of it goes out, as a batch read just now was: a
            // certificate revoked meanwhile (a TLS reload moves no generation) ends the stream.
            p.recheck(sub)?;
        }
        let changed = |sub: &Subscription, p: &Progress| {
            (p.generation, sub.store.audience_generation()) != reading.decided_at
                || sub.store.registry_generation() != p.generation
        };
        // The next batch is read while this one is sent, unless this one is already stale
        // (it would be cut after its first message and the batch read ahead thrown away).
        if damage.is_none()
            && !changed(sub, p)
            && let Some(&(last, _)) = batch.last()
        {
            ahead = read_from(sub, p, last)?;
        }
        let mut sent = false;
        for (seq, message) in batch {
            if seq != p.cursor + 1 {
                return Err(Stop::With(
                    StoreError::Corrupt(format!("feed gap after {}", p.cursor)).into(),
                ));
            }
            // Decided against the registry and heads of `decided_at`. Once they have moved,
            // the rest of the batch is read and decided again, except that the first message of
            // a batch read just now is decided again alone, so that a replay always moves on
            // however often the hub changes.
            let first = !sent && !read_ahead;
            if !first && changed(sub, p) {
                continue 'batches;
            }
            let Some((delivery, bytes)) = message else {
                p.cursor = seq;
                continue;
            };
            // Room first, the decision checked after: the audience is the one at delivery,
            // and a slow reader can make this wait long.
            let room = reserve(sink, shutdown.as_mut(), bytes.len()).await?;
            let (delivery, bytes) = if !changed(sub, p) {
                (delivery, bytes)
            } else if !first {
                continue 'batches;
            } else {
                drop(room);
                match decide_again(sub, p, seq).await? {
                    Some(message) => {
                        deliver(sub, p, sink, shutdown.as_mut(), seq, message).await?;
                    }
                    None => p.cursor = seq,
                }
                continue 'batches;
            };
            sent = true;
            room.send(Ok(FeedEvent::Encoded(bytes)));
            delivered(sub, p, seq, delivery).await;
        }
        if let Some(e) = damage {
            return Err(Stop::With(e.into()));
        }
        if sub.shutdown.is_cancelled() {
            return Err(shutting_down(p.cursor));
        }
    }
}

/// Decides the stored event `seq` again, now, for a message that waited for room while the
/// hub changed: re-checks the member, then reads and decides that one event.
async fn decide_again(
    sub: &mut Subscription,
    p: &mut Progress,
    seq: u64,
) -> Result<Option<(Delivery, Bytes)>, Stop> {
    p.recheck(sub)?;
    let (batch, damage) = read_batch(sub, p, seq - 1, seq)
        .await
        .map_err(|e| Stop::With(Status::internal(format!("replay task failed: {e}"))))?;
    if let Some(e) = damage {
        return Err(Stop::With(e.into()));
    }
    match batch.into_iter().next() {
        Some((found, message)) if found == seq => Ok(message),
        _ => Err(Stop::With(
            StoreError::Corrupt(format!("feed gap after {}", seq - 1)).into(),
        )),
    }
}

/// Sends one replayed message just decided (waiting for room if needed) and notes it.
async fn deliver(
    sub: &Subscription,
    p: &mut Progress,
    sink: &Sink,
    shutdown: Pin<&mut WaitForCancellationFutureOwned>,
    seq: u64,
    (delivery, bytes): (Delivery, Bytes),
) -> Result<(), Stop> {
    send(sink, shutdown, FeedEvent::Encoded(bytes)).await?;
    delivered(sub, p, seq, delivery).await;
    Ok(())
}

/// Counts a replayed delivery, notes it for the access log and moves the cursor.
async fn delivered(sub: &Subscription, p: &mut Progress, seq: u64, delivery: Delivery) {
    sub.metrics.delivered(Source::Replay);
    // Replayed history is a read like any other: the access log must show it.
    p.delivered(sub, seq, delivery).await;
    p.cursor = seq;
}

/// Delivers live events until the live channel lags or shows a gap (then back to storage).
///
/// The futures that wait for shutdown, for the client to leave and for the next heartbeat are
/// made once, not once per event: each registers itself (a waiter list, a timer entry), and at
/// a hundred thousand deliveries a second that registering would cost more than the delivery.
async fn follow_live(
    sub: &mut Subscription,
    p: &mut Progress,
    live: &mut tokio::sync::broadcast::Receiver<Arc<Committed>>,
    sink: &Sink,
    mut shutdown: Pin<&mut WaitForCancellationFutureOwned>,
) -> Result<(), Stop> {
    let mut gone = std::pin::pin!(sink.closed());
    // Deliveries move `p.next_heartbeat` without touching the timer: when it fires early, it
    // is set again for the new time.
    let mut beat = std::pin::pin!(tokio::time::sleep_until(p.next_heartbeat));
    loop {
        tokio::select! {
            biased;
            _ = shutdown.as_mut() => return Err(shutting_down(p.cursor)),
            _ = gone.as_mut() => return Err(Stop::Gone),
            received = live.recv() => match received {
                Ok(committed) => {
                    let seq = committed.event.sequence;
                    if seq <= p.cursor {
                        continue;
                    }
                    if seq != p.cursor + 1 {
                        return Ok(());
                    }
                    p.recheck(sub)?;
                    let mut decided = decide_live(sub, p, &committed);
                    // Room first, then the decision again: the audience is the one at delivery,
                    // and a slow reader can make the wait for room long (a change in between is
                    // in the head cell by the time its publisher is answered).
                    while let Some(delivery) = decided {
                        let bytes = committed.encoded[delivery.slot()].get_or_init(|| encode(&committed.event, delivery)).clone();
                        let room = reserve(sink, shutdown.as_mut(), bytes.len()).await?;
                        p.recheck(sub)?;
                        decided = decide_live(sub, p, &committed);
                        if decided == Some(delivery) {
                            room.send(Ok(FeedEvent::Encoded(bytes)));
                            sub.metrics.delivered(Source::Live);
                            p.delivered(sub, seq, delivery).await;
                            break;
                        }
                    }
                    p.cursor = seq;
                }
                Err(RecvError::Lagged(_)) => return Ok(()),
                Err(RecvError::Closed) => return Err(shutting_down(p.cursor)),
            },
            _ = p.policy.changed() => p.recheck(sub)?,
            _ = beat.as_mut() => {
                if p.next_heartbeat > Instant::now() {
                    beat.as_mut().reset(p.next_heartbeat);
                    continue;
                }
                p.recheck(sub)?;
                let heartbeat = FeedEventFields {
                    sequence: p.cursor,
                    event: Some(Event::Heartbeat(pb::Heartbeat { head: sub.store.head(), at: clock::now_rfc3339() })),
                };
                send(sink, shutdown.as_mut(), FeedEvent::Decoded(heartbeat)).await?;
                p.next_heartbeat = Instant::now() + sub.heartbeat;
                beat.as_mut().reset(p.next_heartbeat);
                if p.delivered.since.is_some() {
                    p.delivered.record(sub).await;
                }
            }
        }
    }
}

/// What the subscriber receives of a live event, decided from its submission's head as it
/// stands now.
fn decide_live(sub: &Subscription, p: &Progress, committed: &Committed) -> Option<Delivery> {
    ChangeFields::of(&committed.event).and_then(|fields| {
        let head = committed.head.read();
        decide(
            &sub.member,
            &sub.filter,
            &p.registry,
            &fields,
            &head.standing(),
        )
    })
}

fn shutting_down(cursor: u64) -> Stop {
    Stop::With(Status::unavailable(format!(
        "the hub is shutting down; resume with after_sequence {cursor}"
    )))
}

/// Sends one event, waiting for room (a slow subscriber slows only itself), unless the hub
/// shuts down or the client leaves.
async fn send(
    sink: &Sink,
    shutdown: Pin<&mut WaitForCancellationFutureOwned>,
    event: FeedEvent,
) -> Result<(), Stop> {
    tokio::select! {
        biased;
        _ = shutdown => Err(Stop::With(Status::unavailable("the hub is shutting down; resume from your last sequence"))),
        sent = sink.send(Ok(event)) => sent.map_err(|_| Stop::Gone),
    }
}

/// Waits for room in the sink for a message of `size` bytes, or for shutdown.
async fn reserve<'a>(
    sink: &'a Sink,
    shutdown: Pin<&mut WaitForCancellationFutureOwned>,
    size: usize,
) -> Result<super::sink::Room<'a>, Stop> {
    tokio::select! {
        biased;
        _ = shutdown => Err(Stop::With(Status::unavailable("the hub is shutting down; resume from your last sequence"))),
        room = sink.reserve(size) => room.map_err(|_| Stop::Gone),
    }
}

/// The wire form of one delivery of a stored change.
pub fn encode(event: &StoredEvent, delivery: Delivery) -> Bytes {
    let submission = event.submission.clone().unwrap_or_default();
    let withdrawn = crate::store::records::WITHDRAWN;
    let (action, submission, reason, acknowledgement) = match delivery {
        Delivery::Full => {
            let reason = if event.action == withdrawn {
                "withdrawn"
            } else {
                ""
            };
            (event.action.as_str(), submission, reason, None)
        }
        Delivery::Withdrawn => (withdrawn, tombstone(&submission), "withdrawn", None),
        Delivery::AudienceNarrowed => (withdrawn, narrowed(&submission), "audience_narrowed", None),
        Delivery::Acknowledgement => (
            event.action.as_str(),
            tombstone(&submission),
            "",
            event.acknowledgement.clone(),
        ),
    };
    let fields = FeedEventFields {
        sequence: event.sequence,
        event: Some(Event::Change(Box::new(pb::FeedChange {
            action: action.to_string(),
            submission: Some(submission),
            reason: reason.into(),
            acknowledgement,
        }))),
    };
    FeedEvent::encode_once(&fields)
}
