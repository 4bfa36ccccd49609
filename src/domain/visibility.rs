//! The forms a stored submission takes for a reader, as the one audience decision
//! ([`super::audience::decide`]) says: the revision itself, a withdrawal's tombstone, or the
//! narrowing tombstone that tells nothing of the revision that removed the reader.
use super::{
    audience::{About, Receives, Standing, decide},
    member::Member,
};
use crate::pb::Submission;

/// The view of revision `wanted` for `reader`, given the submission's standing and `latest`
/// revision. None: the reader may not know that revision (or the submission) exists.
pub fn view(
    reader: &Member,
    standing: &Standing<'_>,
    latest: &Submission,
    wanted: &Submission,
) -> Option<Submission> {
    match decide(reader, standing, About::Revision(wanted.revision)) {
        Receives::Content => Some(wanted.clone()),
        Receives::Withdrawn => Some(tombstone(latest)),
        _ => None,
    }
}

/// The envelope of a withdrawal without its content: what the withdrawn submission's audience
/// receives.
pub fn tombstone(s: &Submission) -> Submission {
    Submission {
        content: None,
        ..s.clone()
    }
}

/// What a reader who lost access receives: the submission's identity (id, publisher, state,
/// kind, when it was created) marked withdrawn, at the sequence of the change that removed it,
/// and nothing of that change: no content, hash, time or reason of the new revision. `revision`
/// is the last one the reader could read.
pub fn narrowed(s: &Submission) -> Submission {
    Submission {
        id: s.id.clone(),
        revision: s.revision.saturating_sub(1),
        publisher: s.publisher.clone(),
        state: s.state.clone(),
        kind: s.kind.clone(),
        status: "withdrawn".into(),
        created_at: s.created_at.clone(),
        sequence: s.sequence,
        ..Default::default()
    }
}
