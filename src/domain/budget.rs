//! Byte budgets: every change the hub accepts stays deliverable on every exit.
//!
//! One number governs them all: `R`, `limits.max_message_bytes`, the largest gRPC message the
//! hub sends or accepts. Every record the hub keeps about one change, and every message it
//! sends about it, must fit in `R`; otherwise a change accepted once fails on some exit forever
//! (a `Get` answering RESOURCE_EXHAUSTED, a feed stream dying at that sequence on every resume).
//! So the content of a publication or revision is limited to `R` less the largest envelope any
//! of those exits adds around it, checked on the encoded size of the validated content:
//!
//! | exit | what wraps the content | worst case around it |
//! |---|---|---|
//! | `Get` | `Submission` | the envelope: id, revision, publisher, state, kind, status, two instants, content hash, sequence, a withdrawal reason of 1,000 four-byte characters |
//! | `List` | `ListResponse` holding one `Submission` | the envelope, the item's tag and length, a page token |
//! | directory | `ListContactsResponse` holding one `DirectoryEntry` | the envelope, `verified_at`/`verified_by`, a page token of four keys |
//! | feed, live and replayed | `FeedEvent` { `FeedChange` { `Submission`, `Acknowledgement` } } | the envelope, action, reason, an acknowledgement with a reply of 1,000 four-byte characters |
//! | storage | a checksummed frame of `StoredEvent` | the envelope, an acknowledgement |
//! | STIX (`export stix`, `subscribe --format stix`) | a STIX 2.1 bundle, compact JSON | measured, see below |
//! | audit | `AuditEntry` | holds no content; every entry is at most `audit::bound::MAX_ENTRY_BYTES` (64 KiB) |
//!
//! Protobuf sizes are computed from the field limits below (a field costs its tag, a varint
//! length and its bytes; every tag here is below 16, so one byte) and checked against real
//! messages filled to those limits in the tests. The largest is the feed event, 41,465 bytes (32 KiB
//! of it reserved for an author signature); at the default `R` of 4 MiB, content of 4,152,839
//! bytes is accepted and one byte more is not.
//!
//! STIX is JSON, whose size depends on the shape of the content (field names, escaped quotes,
//! text the mapping repeats), so it is measured: the content is mapped as a worst-case
//! submission (longest envelope, withdrawn with the longest reason, a hub id of 253 bytes) and
//! the compact bundle must fit in `R` too, so that a consumer configured for the hub's message
//! size takes it. Mapping costs time, so it is done only for content that could come near the
//! limit: below [`STIX_FIXED`] + [`STIX_FACTOR`] x content bytes no content can reach it (the
//! tests map pathological contents of every kind to show the factor holds).
use prost::Message;

use super::kind::Kind;
use crate::pb;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// The largest `limits.max_message_bytes` the configuration accepts. This crate's clients (the
/// CLI, the benchmark) decode messages up to it, so they read whatever a hub may send.
pub const MESSAGE_CEILING: usize = 256 * MIB;

/// A submission id: a UUID in its 36-character text form.
pub const ID_BYTES: usize = 36;
/// Member ids, state and community codes (see [`super::member::check_code`]).
pub const CODE_BYTES: usize = 32;
/// The longest kind name, `critical_infrastructure_approach`.
pub const KIND_BYTES: usize = 32;
/// The longest submission status, `withdrawn`.
pub const STATUS_BYTES: usize = 9;
/// Instants. The hub writes 24 characters (`2026-01-01T00:00:00.000Z`); instants a client writes
/// (a notice's acknowledgement deadline, copied into every acknowledgement of it) are refused
/// beyond this many by [`super::clock::parse_instant`].
pub const INSTANT_BYTES: usize = 64;
/// A SHA-256 in lower-case hex.
pub const HASH_HEX_BYTES: usize = 64;
/// A withdrawal reason and an acknowledgement's reply, in characters.
pub const REASON_CHARS: usize = 1000;
/// A character is at most 4 bytes of UTF-8.
const REASON_BYTES: usize = 4 * REASON_CHARS;
/// The longest feed action (`acknowledged`), directory `verified_by` (`acknowledged`) and feed
/// reason (`audience_narrowed`).
const ACTION_BYTES: usize = 12;
const FEED_REASON_BYTES: usize = 17;
/// A List page token: 8 bytes in unpadded base64.
const LIST_TOKEN_BYTES: usize = 11;
/// A directory page token: state, level, publisher and id joined by NULs, in unpadded base64
/// (levels are at most 9 bytes, `technical`).
const DIRECTORY_TOKEN_BYTES: usize = (CODE_BYTES + 9 + CODE_BYTES + ID_BYTES + 3).div_ceil(3) * 4;
/// The checksummed frame of a stored value: a format byte and a CRC-32 (`store::codec`).
const FRAME_BYTES: usize = 5;

/// Bytes of a varint holding `v`.
pub const fn varint_len(v: u64) -> usize {
    let mut n = 1;
    let mut v = v >> 7;
    while v > 0 {
        n += 1;
        v >>= 7;
    }
    n
}

/// A length-delimited field (string, bytes, message) of at most `len` bytes.
pub const fn field(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// A varint field holding at most `max`.
const fn number(max: u64) -> usize {
    1 + varint_len(max)
}

/// The largest author signature (COSE_Sign1 with its certificate chain) a revision may carry;
/// every exit reserves room for one, so signing never pushes a submission over the limit.
pub const SIGNATURE_BYTES: usize = 32 * KIB;
/// Room for a receipt (the cbm.v1 Receipt as JSON, with an inclusion path of up to 64 hashes and
/// its checkpoint) that a STIX export or feed attaches to a signed object.
const STIX_RECEIPT_BYTES: usize = 8 * KIB;

/// `Submission` without its `content` field (with the largest author signature).
const SUBMISSION_ENVELOPE: usize = field(ID_BYTES)
    + number(u32::MAX as u64)
    + 2 * field(CODE_BYTES)
    + field(KIND_BYTES)
    + field(STATUS_BYTES)
    + 2 * field(INSTANT_BYTES)
    + field(HASH_HEX_BYTES)
    + number(u64::MAX)
    + field(REASON_BYTES)
    + field(SIGNATURE_BYTES);

/// An `Acknowledgement` without contact ids (those only acknowledge a ping campaign, whose
/// notice the hub writes and is small; the writer refuses a record over the budget anyway).
const ACKNOWLEDGEMENT: usize = field(ID_BYTES)
    + number(u32::MAX as u64)
    + 2 * field(CODE_BYTES)
    + field(REASON_BYTES)
    + 2 * field(INSTANT_BYTES)
    + 2 * number(1)
    + number(u64::MAX);

/// A `Submission` holding `c` bytes of content.
const fn submission(c: usize) -> usize {
    SUBMISSION_ENVELOPE + field(c)
}

/// An exit: its name, and the size of its message around `c` bytes of content.
type Exit = (&'static str, fn(usize) -> usize);

/// The exits.
const EXITS: [Exit; 5] = [
    ("Get", submission),
    ("a List page", |c| {
        field(submission(c)) + field(LIST_TOKEN_BYTES)
    }),
    ("a directory page", |c| {
        field(field(submission(c)) + field(INSTANT_BYTES) + field(ACTION_BYTES))
            + field(DIRECTORY_TOKEN_BYTES)
    }),
    ("a feed event", |c| {
        number(u64::MAX)
            + field(
                field(ACTION_BYTES)
                    + field(submission(c))
                    + field(FEED_REASON_BYTES)
                    + field(ACKNOWLEDGEMENT),
            )
    }),
    ("the stored event", |c| {
        FRAME_BYTES
            + number(u64::MAX)
            + field(ACTION_BYTES)
            + field(submission(c))
            + field(ACKNOWLEDGEMENT)
            // The audit entry's sequence, kept for receipts.
            + number(u64::MAX)
    }),
];

/// Below this many bytes of STIX besides the content's own, and [`STIX_FACTOR`] bytes of JSON
/// per byte of encoded content, no submission's STIX bundle can come near the limit.
pub const STIX_FIXED: usize = 128 * KIB;
pub const STIX_FACTOR: usize = 16;
/// The longest hub id a STIX mapping is assumed to name (a DNS name).
const STIX_HUB_ID_BYTES: usize = 253;

/// Stored events read per replay batch at most, in bytes (at least one event per batch).
pub const REPLAY_BATCH_BYTES: usize = MIB;
/// Content waiting for the single writer at most, in bytes: a publisher waits beyond this.
pub const WRITER_QUEUE_BYTES: usize = 64 * MIB;
/// The live buffer's budget: an event larger than this divided by the buffer's length in
/// events (at least [`LIVE_EVENT_FLOOR`]) is not kept in it; subscribers read it from storage.
pub const LIVE_BUFFER_BYTES: usize = 32 * MIB;
pub const LIVE_EVENT_FLOOR: usize = KIB;

/// Content refused for its size: which field, how big, the limit and why the limit is what it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: too large: {size} bytes {measure}; at most {limit} are accepted ({why})")]
pub struct TooLarge {
    pub field: String,
    pub size: usize,
    pub measure: String,
    pub limit: usize,
    pub why: String,
}

/// The budgets of one hub, all derived from its message limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    message: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(4 * MIB)
    }
}

impl Budget {
    /// The budgets of a hub whose messages are at most `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Budget {
        Budget {
            message: max_message_bytes,
        }
    }

    /// `R`: the largest message the hub sends or accepts.
    pub fn message(&self) -> usize {
        self.message
    }

    /// The exit with the largest envelope and its size in bytes (computed for content as large
    /// as a message: envelopes only grow with the content, through the varint of its length).
    pub fn envelope(&self) -> (&'static str, usize) {
        EXITS
            .iter()
            .map(|(name, size)| (*name, size(self.message) - self.message))
            .max_by_key(|(_, overhead)| *overhead)
            .unwrap_or(("", 0))
    }

    /// Each exit's envelope, for the documentation and the tests.
    pub fn envelopes(&self) -> Vec<(&'static str, usize)> {
        EXITS
            .iter()
            .map(|(name, size)| (*name, size(self.message) - self.message))
            .collect()
    }

    /// The largest encoded content a publication or revision may have.
    pub fn content(&self) -> usize {
        self.message.saturating_sub(self.envelope().1)
    }

    /// The largest stored event (what the writer refuses to store beyond).
    pub fn record(&self) -> usize {
        self.message
    }

    /// The threshold above which a committed event is not kept in a live buffer of
    /// `buffer_events` events.
    pub fn live_event(buffer_events: usize) -> usize {
        (LIVE_BUFFER_BYTES / buffer_events.max(1)).max(LIVE_EVENT_FLOOR)
    }

    /// Checks that validated `content` of `kind` fits every exit, `signed` by its author or not
    /// (a signed revision's STIX object also carries the signed bytes).
    pub fn check_content(
        &self,
        content: &pb::SubmissionContent,
        kind: Kind,
        signed: bool,
    ) -> Result<(), TooLarge> {
        let size = content.encoded_len();
        let (exit, envelope) = self.envelope();
        if size > self.content() {
            return Err(TooLarge {
                field: "content".into(),
                size,
                measure: "encoded".into(),
                limit: self.content(),
                why: format!(
                    "the {}-byte message limit less {envelope} bytes for the largest envelope, {exit}",
                    self.message
                ),
            });
        }
        if STIX_FIXED + STIX_FACTOR * size <= self.message {
            return Ok(());
        }
        let stix = stix_len(content, kind, signed);
        if stix > self.message {
            return Err(TooLarge {
                field: "content".into(),
                size: stix,
                measure: "as a STIX 2.1 bundle".into(),
                limit: self.message,
                why: "the message limit, which STIX output keeps to as well".into(),
            });
        }
        Ok(())
    }

    /// The size a list page grows by with one more item of `item_bytes` encoded bytes.
    pub fn item(item_bytes: usize) -> usize {
        field(item_bytes)
    }
}

/// The compact JSON size of the largest STIX bundle `content` can be part of: the content as a
/// withdrawn revision (with the longest withdrawal reason) and as an active one, under the
/// longest envelope, mapped for a hub id of 253 bytes. A `signed` revision carries its signed
/// bytes and the largest signature; a withdrawal may always be signed; either may carry a receipt.
pub fn stix_len(content: &pb::SubmissionContent, kind: Kind, signed: bool) -> usize {
    let largest_signature = bytes::Bytes::from(vec![0xA5; SIGNATURE_BYTES]);
    let mapper = crate::stix::Mapper::new("h".repeat(STIX_HUB_ID_BYTES));
    let instant = "9999-12-31T23:59:59.999Z";
    let worst = pb::Submission {
        id: "ffffffff-ffff-ffff-ffff-ffffffffffff".into(),
        revision: u32::MAX,
        publisher: format!("X{}", "-".repeat(CODE_BYTES - 1)),
        // A two-letter state adds a location and a relationship (more than a longer code's
        // few repetitions add): see the tests.
        state: "XX".into(),
        kind: kind.as_str().into(),
        status: "active".into(),
        created_at: instant.into(),
        updated_at: instant.into(),
        content_hash: "f".repeat(HASH_HEX_BYTES),
        sequence: u64::MAX,
        content: Some(content.clone()),
        withdrawal_reason: String::new(),
        signature: if signed {
            largest_signature.clone()
        } else {
            Default::default()
        },
    };
    let withdrawn = pb::Submission {
        status: "withdrawn".into(),
        withdrawal_reason: "\u{10FFFF}".repeat(REASON_CHARS),
        signature: largest_signature,
        ..worst.clone()
    };
    let now = time::OffsetDateTime::now_utc();
    [
        ("revised", "", worst),
        ("withdrawn", "withdrawn", withdrawn),
    ]
    .into_iter()
    .map(|(action, reason, submission)| {
        let change = pb::FeedChange {
            action: action.into(),
            submission: Some(submission),
            reason: reason.into(),
            acknowledgement: None,
        };
        let mut memory = crate::stix::memory::Memory::new(true);
        mapper
            .feed(u64::MAX, &change, &mut memory, now)
            .bundle
            .and_then(|b| serde_json::to_vec(&b).ok())
            // Content never mapped (TLP:RED is never exported) takes no room in STIX.
            .map_or(0, |json| json.len() + STIX_RECEIPT_BYTES)
    })
    .max()
    .unwrap_or(0)
}

#[cfg(test)]
mod tests;
