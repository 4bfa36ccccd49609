//! The feed's stream message, encoded once and shared by every subscriber.
//!
//! `FeedEvent` is the `cbm.v1.FeedEvent` message of `feed.proto`. On the server an event is
//! usually [`FeedEvent::Encoded`]: the protobuf bytes of the message, produced once per event
//! and audience variant and written as they are to every subscriber (an `Arc`-backed `Bytes`
//! clone, no re-encoding). Clients decode into [`FeedEvent::Decoded`].
use bytes::{Buf, BufMut, Bytes};
use prost::{
    DecodeError, Message,
    encoding::{DecodeContext, WireType},
};
use serde::{Deserialize, Serialize};

use crate::pb;

/// The fields of a feed event, as clients see them.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct FeedEventFields {
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
    #[prost(oneof = "Event", tags = "2, 3")]
    pub event: Option<Event>,
}

#[derive(Clone, PartialEq, prost::Oneof, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    // Boxed: a change is large next to a heartbeat.
    #[prost(message, boxed, tag = "2")]
    Change(Box<pb::FeedChange>),
    #[prost(message, tag = "3")]
    Heartbeat(pb::Heartbeat),
}

/// A feed event: decoded fields, or the already-encoded message.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    Decoded(FeedEventFields),
    Encoded(Bytes),
}

impl Default for FeedEvent {
    fn default() -> Self {
        FeedEvent::Decoded(FeedEventFields::default())
    }
}

impl FeedEvent {
    /// Encodes fields once, for sharing.
    pub fn encode_once(fields: &FeedEventFields) -> Bytes {
        Bytes::from(fields.encode_to_vec())
    }

    /// The decoded fields (decoding an encoded event if needed).
    pub fn into_fields(self) -> Result<FeedEventFields, DecodeError> {
        match self {
            FeedEvent::Decoded(f) => Ok(f),
            FeedEvent::Encoded(b) => FeedEventFields::decode(b),
        }
    }
}

impl Message for FeedEvent {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        match self {
            FeedEvent::Decoded(f) => f.encode_raw(buf),
            FeedEvent::Encoded(b) => buf.put_slice(b),
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let mut fields = match std::mem::take(self) {
            FeedEvent::Decoded(f) => f,
            FeedEvent::Encoded(b) => FeedEventFields::decode(b)?,
        };
        let result = fields.merge_field(tag, wire_type, buf, ctx);
        *self = FeedEvent::Decoded(fields);
        result
    }

    fn encoded_len(&self) -> usize {
        match self {
            FeedEvent::Decoded(f) => f.encoded_len(),
            FeedEvent::Encoded(b) => b.len(),
        }
    }

    fn clear(&mut self) {
        *self = FeedEvent::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_and_decoded_forms_are_the_same_bytes() {
        let fields = FeedEventFields {
            sequence: 42,
            event: Some(Event::Heartbeat(pb::Heartbeat {
                head: 42,
                at: "2026-01-01T00:00:00.000Z".into(),
            })),
        };
        let once = FeedEvent::Encoded(FeedEvent::encode_once(&fields));
        assert_eq!(
            once.encode_to_vec(),
            FeedEvent::Decoded(fields.clone()).encode_to_vec()
        );
        assert_eq!(
            FeedEvent::decode(once.encode_to_vec().as_slice())
                .unwrap()
                .into_fields()
                .unwrap(),
            fields
        );
    }
}
