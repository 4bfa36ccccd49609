//! What a STIX subscriber has printed, per submission: the one fact a feed tombstone cannot
//! carry. A tombstone has no content, so neither the STIX type of a notice (`incident` or
//! `note` by category) nor its TLP label is in it; the subscriber remembers both from the
//! object it printed, and revokes exactly that object, under its own marking. It also remembers
//! the submissions it refused as TLP:RED, so that their tombstones and acknowledgements print
//! nothing either.
//!
//! Pure data (serde), persisted by the CLI next to the cursor file.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The subscriber's memory of printed submissions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Every change since sequence 0 went through this memory, so a submission it does not know
    /// was never printed (nothing to revoke). Otherwise the subscriber started later and an
    /// unknown tombstone is revoked blind, by kind.
    pub complete: bool,
    #[serde(default)]
    pub submissions: BTreeMap<String, Seen>,
    /// Changed since the last [`Memory::take_dirty`]: the CLI saves only then.
    #[serde(skip)]
    dirty: bool,
}

/// One submission as far as this subscriber knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// What was printed last; None: nothing yet.
    pub last: Option<Last>,
    /// Generation of the next new object's id. A revoked STIX object may never get another
    /// version (STIX 2.1, 3.6), so content shown again after a revocation (an audience widened
    /// again) becomes a new object, under the next generation's id.
    #[serde(default)]
    pub generation: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Last {
    /// Printed as this object (revoked or not), marked with this TLP label.
    Object {
        id: String,
        label: String,
        modified: String,
        revoked: bool,
    },
    /// Revoked by kind without knowing its type or label (started after sequence 0).
    RevokedBlind,
    /// Its latest content was TLP:RED: nothing of it was printed since, nor will be.
    Red,
}

impl Memory {
    /// An empty memory; `complete` when the subscription starts at sequence 0.
    pub fn new(complete: bool) -> Self {
        Memory {
            complete,
            ..Default::default()
        }
    }

    pub fn get(&self, submission: &str) -> Option<&Seen> {
        self.submissions.get(submission)
    }

    pub fn set(&mut self, submission: &str, seen: Seen) {
        self.submissions.insert(submission.to_string(), seen);
        self.dirty = true;
    }

    /// Whether anything changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }
}

impl Seen {
    /// The live (printed, not revoked) object: (id, label, modified).
    pub fn live(&self) -> Option<(&str, &str, &str)> {
        match &self.last {
            Some(Last::Object {
                id,
                label,
                modified,
                revoked: false,
            }) => Some((id, label, modified)),
            _ => None,
        }
    }
}
