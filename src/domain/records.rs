//! The internal records the store keeps, as prost messages (compact, and able to gain fields
//! without a migration). The public `Submission` message is embedded as it is served.
use crate::pb;

/// What a change did.
pub const PUBLISHED: &str = "published";
pub const REVISED: &str = "revised";
pub const WITHDRAWN: &str = "withdrawn";
/// A recipient acknowledged a notice: the event carries the acknowledgement and a copy of the
/// notice's revision it acknowledges (so the feed filters apply to it as to the notice).
pub const ACKNOWLEDGED: &str = "acknowledged";

/// One entry of the feed: the change that received sequence number `sequence`. The event log is
/// the truth: the revisions of a submission are the events that produced them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredEvent {
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
    /// `published`, `revised` or `withdrawn`.
    #[prost(string, tag = "2")]
    pub action: String,
    /// The revision this change produced, content included (kept for the publisher even when
    /// withdrawn; exits strip it for others).
    #[prost(message, optional, tag = "3")]
    pub submission: Option<pb::Submission>,
    // Tag 4 held the previous revision's audience in stores written before the audience was
    // decided from the head (which keeps every revision's); it is skipped when read. Not reused.
    /// For `acknowledged`: the acknowledgement.
    #[prost(message, optional, tag = "5")]
    pub acknowledgement: Option<pb::Acknowledgement>,
    /// Sequence of the audit entry recording a publication, revision or withdrawal (the
    /// leaf its receipt proves) or an acknowledgement; 0 for events stored before these
    /// were numbered.
    #[prost(uint64, tag = "6")]
    pub audit_sequence: u64,
}

pub use crate::domain::audience::AudienceRecord;

/// Index entry of one submission: where its revisions are in the event log.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SubmissionHead {
    /// Sequence of revision 1: the key of the submission in `by_created`.
    #[prost(uint64, tag = "1")]
    pub created_seq: u64,
    #[prost(string, tag = "2")]
    pub publisher: String,
    #[prost(string, tag = "3")]
    pub kind: String,
    /// Sequence number of revision `i + 1` at index `i`.
    #[prost(uint64, repeated, tag = "4")]
    pub revision_seqs: Vec<u64>,
    #[prost(bool, tag = "5")]
    pub withdrawn: bool,
    /// Audit sequence of the publish entry: where searches of its access log start.
    #[prost(uint64, tag = "6")]
    pub created_audit_seq: u64,
    /// The audience of revision `i + 1` at index `i` (a withdrawal keeps the audience it
    /// withdrew from): what the audience decision reads, without reading any event.
    #[prost(message, repeated, tag = "7")]
    pub audiences: Vec<AudienceRecord>,
    /// When the latest revision was made (its `updated_at`): members registered after it never
    /// could see what it replaced or withdrew.
    #[prost(string, tag = "8")]
    pub latest_at: String,
}

impl SubmissionHead {
    pub fn latest_revision(&self) -> u32 {
        self.revision_seqs.len() as u32
    }

    /// The submission's standing for the audience decision.
    pub fn standing(&self) -> crate::domain::audience::Standing<'_> {
        crate::domain::audience::Standing {
            publisher: &self.publisher,
            audiences: &self.audiences,
            withdrawn: self.withdrawn,
            latest_at: &self.latest_at,
        }
    }

    pub fn latest_seq(&self) -> u64 {
        self.revision_seqs
            .last()
            .copied()
            .unwrap_or(self.created_seq)
    }
}

/// What an idempotency key was first used for, and the answer given.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IdempotencyRecord {
    /// SHA-256 of the request the key was first used with.
    #[prost(bytes = "vec", tag = "1")]
    pub request_hash: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub response: Option<pb::PublishResponse>,
}

/// When a point of contact was last confirmed by an acknowledged ping, and by which campaign.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Verified {
    #[prost(string, tag = "1")]
    pub at: String,
    #[prost(string, tag = "2")]
    pub campaign: String,
}
