//! The one audience decision: what member M may receive about submission S now.
//!
//! Every exit (get, list, the feed's replay and live tail, acknowledgements and their reports,
//! the directory, ping campaigns, the implementation matrix, exports, the access log) asks
//! [`decide`] and nothing else. The answer depends only on S's current standing (the audience of
//! every revision, the latest one last, and whether S is withdrawn) and on M as the registry
//! holds it now, never on the audience an old revision had when it was published. From
//! `domain.md`:
//!
//! - the publisher always sees its own submissions;
//! - the latest revision (or the withdrawal) decides who may read S at all: a reader outside
//!   that audience gets no revision of it, old or new;
//! - within that audience an older revision is shown only to readers also in its own audience;
//! - a withdrawn submission is shown to its audience as a tombstone (no content);
//! - a reader who could see S and no longer can receives one withdrawal with reason
//!   `audience_narrowed`, telling nothing of the revision that removed it; a reader who never
//!   could see S receives nothing at all.
//!
//! "Could see" is judged with the reader's membership now against each revision's audience,
//! and with the time it was registered: a member registered after the change that removed
//! access (or after the withdrawal) never could see the submission and gets nothing. The
//! registry keeps no history of communities or suspensions, so a member that joined a community
//! after a GREEN revision was replaced counts as having been in its audience: it then receives
//! a tombstone, never content.
use super::{
    member::Member,
    tlp::{Audience, Tlp, may_read},
};

/// The audience fields of one revision, as stored.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AudienceRecord {
    #[prost(string, tag = "1")]
    pub tlp: String,
    #[prost(string, repeated, tag = "2")]
    pub recipients: Vec<String>,
    #[prost(string, tag = "3")]
    pub community: String,
}

impl AudienceRecord {
    /// The audience of a stored revision.
    pub fn of(s: &crate::pb::Submission) -> AudienceRecord {
        let c = s.content.as_ref();
        AudienceRecord {
            tlp: c.map(|c| c.tlp.clone()).unwrap_or_default(),
            recipients: c.map(|c| c.recipients.clone()).unwrap_or_default(),
            community: c.map(|c| c.community.clone()).unwrap_or_default(),
        }
    }

    /// May `reader` read a revision with this audience of `publisher`'s? An unreadable label
    /// (never stored by this hub; a damaged record) matches nobody but the publisher.
    fn admits(&self, reader: &Member, publisher: &str) -> bool {
        match self.tlp.parse::<Tlp>() {
            Ok(tlp) => may_read(
                reader,
                &Audience {
                    publisher,
                    tlp,
                    recipients: &self.recipients,
                    community: &self.community,
                },
            ),
            Err(_) => reader.id == publisher && reader.is_active(),
        }
    }
}

/// What the decision needs of a submission's current state.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    /// Member id of the publisher.
    pub publisher: &'a str,
    /// The audience of revision `i + 1` at index `i`; the last is the current revision (for a
    /// withdrawn submission, the withdrawal, which keeps the audience it withdrew from).
    pub audiences: &'a [AudienceRecord],
    /// The latest revision is a withdrawal.
    pub withdrawn: bool,
    /// When the latest revision was made (RFC 3339, as the hub writes it); "" when the caller
    /// does not know, which lifts the registration-time rule for reads of a withdrawal.
    pub latest_at: &'a str,
}

/// What a question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum About<'a> {
    /// Reading revision `n` (get, list, directory, reports, exports).
    Revision(u32),
    /// The feed change that produced revision `n` at time `at`: a publication or revision, or
    /// (`withdrawal`) the publisher's withdrawal.
    Change {
        revision: u32,
        withdrawal: bool,
        at: &'a str,
    },
    /// The feed change recording `by`'s acknowledgement of this notice.
    Acknowledgement { by: &'a str },
}

/// What the reader receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receives {
    /// The revision asked about, content included.
    Content,
    /// The envelope of the withdrawal, without content: the publisher withdrew it.
    Withdrawn,
    /// A withdrawal saying only that the reader lost access: nothing of any revision it may no
    /// longer read (no content hash, label, recipients, community or references).
    Narrowed,
    /// The acknowledgement, with the notice's envelope only.
    Acknowledgement,
    /// Nothing: to this reader the submission does not exist.
    Nothing,
}

impl Standing<'_> {
    fn latest(&self) -> u32 {
        self.audiences.len() as u32
    }

    /// Does revision `n`'s audience admit `reader`? (No such revision: no.)
    fn admits(&self, reader: &Member, n: u32) -> bool {
        n >= 1
            && self
                .audiences
                .get(n as usize - 1)
                .is_some_and(|a| a.admits(reader, self.publisher))
    }
}

/// The decision. See the module comment for the rules.
pub fn decide(reader: &Member, s: &Standing<'_>, about: About<'_>) -> Receives {
    if !reader.is_active() {
        return Receives::Nothing;
    }
    if reader.id == s.publisher {
        return match about {
            About::Acknowledgement { .. } => Receives::Acknowledgement,
            _ => Receives::Content,
        };
    }
    let latest = s.latest();
    let in_audience = s.admits(reader, latest);
    let n = match about {
        About::Acknowledgement { by } => {
            return if by == reader.id && in_audience {
                Receives::Acknowledgement
            } else {
                Receives::Nothing
            };
        }
        About::Revision(n) | About::Change { revision: n, .. } => n,
    };
    if n == 0 || n > latest {
        return Receives::Nothing;
    }
    let withdrawal = matches!(
        about,
        About::Change {
            withdrawal: true,
            ..
        }
    );
    if s.withdrawn && in_audience {
        // Every revision reads as the withdrawal's tombstone; in the feed only the withdrawal
        // itself says so: the changes before it are not replayed to anyone but the publisher.
        // A member registered after the withdrawal never could see it: nothing.
        let told = match about {
            About::Change { withdrawal, at, .. } => withdrawal && registered_by(reader, at),
            _ => registered_by(reader, s.latest_at),
        };
        return if told {
            Receives::Withdrawn
        } else {
            Receives::Nothing
        };
    }
    if withdrawal {
        // Outside the audience it withdrew from: nothing (any loss of access was told before).
        return Receives::Nothing;
    }
    if in_audience && s.admits(reader, n) {
        return Receives::Content;
    }
    let lost_here = matches!(about, About::Change { at, .. } if registered_by(reader, at))
        && s.admits(reader, n - 1)
        && !s.admits(reader, n);
    // A reader still in the audience hears of every loss, as it heard of every revision; one
    // outside it hears only of the last time it lost access.
    if lost_here && (in_audience || !(n + 1..=latest).any(|later| s.admits(reader, later))) {
        Receives::Narrowed
    } else {
        Receives::Nothing
    }
}

/// Was `reader` registered by `at`, so that it could have seen what was there before? Unknown
/// times (older records) count as yes: the answer then is a tombstone, never content.
fn registered_by(reader: &Member, at: &str) -> bool {
    reader.created_at.is_empty() || at.is_empty() || reader.created_at.as_str() <= at
}

/// May `reader` read the current revision (content, or the tombstone of a withdrawal)?
pub fn sees(reader: &Member, s: &Standing<'_>) -> bool {
    decide(reader, s, About::Revision(s.latest())) != Receives::Nothing
}

/// May `reader` see who read the submission (its access log)? Only its publisher, while active.
pub fn sees_access_log(reader: &Member, s: &Standing<'_>) -> bool {
    reader.is_active() && reader.id == s.publisher
}

#[cfg(test)]
mod tests;
