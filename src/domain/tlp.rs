//! The Traffic Light Protocol 2.0 labels and the one audience policy every exit applies.
//!
//! TLP is an audience, not a rank: each label names who may receive, and there is deliberately
//! no ordering between labels here.
use std::{fmt, str::FromStr};

use super::member::Member;

/// A TLP 2.0 label, as FIRST defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tlp {
    Clear,
    Green,
    Amber,
    AmberStrict,
    Red,
}

impl Tlp {
    pub const ALL: [Tlp; 5] = [
        Tlp::Clear,
        Tlp::Green,
        Tlp::Amber,
        Tlp::AmberStrict,
        Tlp::Red,
    ];

    /// The exact label text; the only accepted spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "TLP:CLEAR",
            Tlp::Green => "TLP:GREEN",
            Tlp::Amber => "TLP:AMBER",
            Tlp::AmberStrict => "TLP:AMBER+STRICT",
            Tlp::Red => "TLP:RED",
        }
    }

    /// Labels whose audience is the named recipients, which must therefore be present.
    pub fn needs_recipients(self) -> bool {
        matches!(self, Tlp::Amber | Tlp::AmberStrict | Tlp::Red)
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tlp {
    type Err = String;

    /// Exact match only: "tlp:red", "TLP: RED" or "RED" are refused, never guessed.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tlp::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a TLP 2.0 label; use exactly one of TLP:CLEAR, TLP:GREEN, \
                     TLP:AMBER, TLP:AMBER+STRICT, TLP:RED"
                )
            })
    }
}

/// Who a submission revision is for: the publisher's choice, as stored.
#[derive(Debug, Clone, Copy)]
pub struct Audience<'a> {
    /// Member id of the publisher, who always sees its own submissions.
    pub publisher: &'a str,
    pub tlp: Tlp,
    /// Named recipients (member ids): the audience of AMBER, AMBER+STRICT and RED.
    pub recipients: &'a [String],
    /// Community of a GREEN submission; empty means every member of the hub.
    pub community: &'a str,
}

/// May `reader` receive the content of a revision with this audience?
///
/// The one policy used by every exit (get, list, feed replay, live feed, exports). Reading needs
/// an active member holding the `publisher` or `subscriber` role; the `admin` and `auditor`
/// roles grant no access to content.
pub fn may_read(reader: &Member, audience: &Audience<'_>) -> bool {
    if !reader.is_active() {
        return false;
    }
    if reader.id == audience.publisher {
        return true;
    }
    if !reader.roles.can_read_content() {
        return false;
    }
    match audience.tlp {
        Tlp::Clear => true,
        Tlp::Green => audience.community.is_empty() || reader.in_community(audience.community),
        Tlp::Amber | Tlp::AmberStrict | Tlp::Red => audience.recipients.contains(&reader.id),
    }
}
