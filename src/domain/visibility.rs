//! What of a stored submission a reader receives, built on the one audience policy
//! ([`super::tlp::may_read`]).
//!
//! Rules beyond the TLP table:
//! - the latest revision decides whether a non-publisher sees the submission at all, so a reader
//!   removed by a revision loses the older revisions too;
//! - an older revision is shown only to readers who were also in its own audience;
//! - a withdrawn submission is shown to its former audience as a tombstone (envelope without
//!   content); the publisher keeps seeing everything.
use super::{
    member::Member,
    tlp::{Audience, Tlp, may_read},
};
use crate::pb::Submission;

/// The audience of a stored revision; None if its label is unreadable (never matches anyone).
pub fn audience_of(s: &Submission) -> Option<(Tlp, &[String], &str)> {
    let c = s.content.as_ref()?;
    let tlp = c.tlp.parse().ok()?;
    Some((tlp, c.recipients.as_slice(), c.community.as_str()))
}

/// May `reader` see revision `s` under its own audience?
pub fn may_read_revision(reader: &Member, s: &Submission) -> bool {
    match audience_of(s) {
        Some((tlp, recipients, community)) => may_read(
            reader,
            &Audience {
                publisher: &s.publisher,
                tlp,
                recipients,
                community,
            },
        ),
        // Unreadable audience: only the publisher.
        None => reader.id == s.publisher && reader.is_active(),
    }
}

/// The view of revision `wanted` for `reader`, given the submission's `latest` revision.
/// None: the reader may not know the submission exists.
pub fn view(reader: &Member, latest: &Submission, wanted: &Submission) -> Option<Submission> {
    if reader.id == latest.publisher {
        return reader.is_active().then(|| wanted.clone());
    }
    if !may_read_revision(reader, latest) {
        return None;
    }
    if latest.status == "withdrawn" {
        return Some(tombstone(latest));
    }
    may_read_revision(reader, wanted).then(|| wanted.clone())
}

/// The envelope of a revision without its content.
pub fn tombstone(s: &Submission) -> Submission {
    Submission {
        content: None,
        ..s.clone()
    }
}
