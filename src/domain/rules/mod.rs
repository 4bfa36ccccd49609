//! The rules for changing stored state, as pure functions over a read-only [`View`] of it (the
//! stored state overlaid by the changes staged earlier in the same group). The writer only
//! sequences, stages and commits what these functions allow; they refuse with a [`Refusal`],
//! which the service maps to a gRPC code.
//!
//! The audience decision itself stays in [`super::audience`]: these rules call it where a
//! rule depends on whether the actor may see a submission.
pub mod acks;
pub mod changes;
pub mod notices;
mod refusal;
pub mod registry;
#[cfg(test)]
mod testview;

pub use refusal::{Refusal, RefusalCode};

use super::{
    kind::Kind,
    records::{IdempotencyRecord, StoredEvent, SubmissionHead},
};
use crate::pb;

/// What the rules read of the state: stored records with the open group's changes over them.
/// Reads may fail (storage damage); the error type carries refusals too, so that a rule
/// returns one error type.
pub trait View {
    type Error: From<Refusal>;

    /// A submission's head and its latest event, if it exists.
    fn latest(&self, id: &str) -> Result<Option<(SubmissionHead, StoredEvent)>, Self::Error>;

    /// What `member`'s idempotency key `key` was first used for, if it was.
    fn idempotency(
        &self,
        member: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, Self::Error>;

    /// The acknowledgement stored for `member`'s request to acknowledge `notice` for
    /// `contact` (empty: every contact of the member), if it was made.
    fn ack(
        &self,
        notice: &str,
        member: &str,
        contact: &str,
    ) -> Result<Option<pb::Acknowledgement>, Self::Error>;

    /// The acknowledgements of `notice` by `member` (every contact), in key order.
    fn acks_by(&self, notice: &str, member: &str) -> Result<Vec<pb::Acknowledgement>, Self::Error>;

    /// The ping campaign that sent notice `notice`, if it is a campaign's ping.
    fn campaign_of_notice(&self, notice: &str) -> Result<Option<pb::PingCampaign>, Self::Error>;

    /// Ids of `publisher`'s submissions of `kind`.
    fn ids_of_kind(&self, kind: Kind, publisher: &str) -> Result<Vec<String>, Self::Error>;
}

/// The answer a key's first use got, if `record` exists and was made for the same request
/// (`request_hash`); a key used for another request is refused.
pub fn idempotent_replay(
    record: Option<IdempotencyRecord>,
    request_hash: &[u8],
) -> Result<Option<pb::PublishResponse>, Refusal> {
    let Some(record) = record else {
        return Ok(None);
    };
    if record.request_hash != request_hash {
        return Err(Refusal::exists(
            "idempotency_key",
            "already used for a different request".into(),
        ));
    }
    let mut response = record.response.unwrap_or_default();
    response.replayed = true;
    Ok(Some(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_replays_its_first_answer_and_refuses_another_request() {
        let record = IdempotencyRecord {
            request_hash: vec![1, 2],
            response: Some(pb::PublishResponse {
                id: "s".into(),
                sequence: 7,
                ..Default::default()
            }),
        };
        // (stored record, hash of this request, expected: replayed sequence or refusal code)
        type Row<'a> = (
            Option<IdempotencyRecord>,
            &'a [u8],
            Result<Option<u64>, RefusalCode>,
        );
        let table: [Row; 3] = [
            (None, &[1, 2], Ok(None)),
            (Some(record.clone()), &[1, 2], Ok(Some(7))),
            (Some(record), &[9], Err(RefusalCode::AlreadyExists)),
        ];
        for (stored, hash, expected) in table {
            let got = idempotent_replay(stored, hash);
            match (&got, expected) {
                (Ok(Some(r)), Ok(Some(seq))) => assert!(r.replayed && r.sequence == seq),
                (Ok(None), Ok(None)) => {}
                (Err(r), Err(code)) => {
                    assert_eq!(r.code, code);
                    assert_eq!(r.field, "idempotency_key");
                }
                _ => panic!("{got:?} against {expected:?}"),
            }
        }
    }
}
