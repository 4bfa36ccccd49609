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
use serde::{Deserialize, Serialize, ser::SerializeStruct};

use crate::pb;

/// The fields of a feed event, as clients see them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FeedEventFields {
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
    #[prost(oneof = "Event", tags = "2, 3")]
    pub event: Option<Event>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Event {
    // Boxed: a change is large next to a heartbeat.
    #[prost(message, boxed, tag = "2")]
    Change(Box<pb::FeedChange>),
    #[prost(message, tag = "3")]
    Heartbeat(pb::Heartbeat),
}

/// The canonical proto3 JSON of `cbm.v1.FeedEvent` (the generated messages get theirs from
/// pbjson-build; this one is ours): the oneof's member directly in the object, the sequence
/// as a string, as every protobuf library writes it (`{"sequence":"7","change":{...}}`).
impl Serialize for FeedEventFields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("cbm.v1.FeedEvent", 2)?;
        if self.sequence != 0 {
            m.serialize_field("sequence", &self.sequence.to_string())?;
        }
        match &self.event {
            Some(Event::Change(c)) => m.serialize_field("change", c)?,
            Some(Event::Heartbeat(h)) => m.serialize_field("heartbeat", h)?,
            None => {}
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for FeedEventFields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// The JSON object; the sequence as a number or a string, as the mapping allows.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Json {
            #[serde(default)]
            sequence: Option<pbjson::private::NumberDeserialize<u64>>,
            #[serde(default)]
            change: Option<pb::FeedChange>,
            #[serde(default)]
            heartbeat: Option<pb::Heartbeat>,
        }
        let j = Json::deserialize(d)?;
        let event = match (j.change, j.heartbeat) {
            (Some(_), Some(_)) => {
                return Err(serde::de::Error::custom(
                    "change and heartbeat are one of: give only one",
                ));
            }
            (Some(c), None) => Some(Event::Change(Box::new(c))),
            (None, Some(h)) => Some(Event::Heartbeat(h)),
            (None, None) => None,
        };
        Ok(FeedEventFields {
            sequence: j.sequence.map_or(0, |n| n.0),
            event,
        })
    }
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

    #[test]
    fn json_is_the_canonical_mapping_and_reads_back() {
        let fields = FeedEventFields {
            sequence: 42,
            event: Some(Event::Heartbeat(pb::Heartbeat {
                head: 42,
                at: "2026-01-01T00:00:00.000Z".into(),
            })),
        };
        let text = serde_json::to_string(&fields).unwrap();
        assert_eq!(
            text,
            r#"{"sequence":"42","heartbeat":{"head":"42","at":"2026-01-01T00:00:00.000Z"}}"#
        );
        let back: FeedEventFields = serde_json::from_str(&text).unwrap();
        assert_eq!(back, fields);
        // Numbers are read as well as strings; both members, or an unknown one, are refused.
        let n: FeedEventFields =
            serde_json::from_str(r#"{"sequence":42,"heartbeat":{"head":42}}"#).unwrap();
        assert_eq!(n.sequence, 42);
        assert!(
            serde_json::from_str::<FeedEventFields>(r#"{"change":{},"heartbeat":{}}"#).is_err()
        );
        assert!(serde_json::from_str::<FeedEventFields>(r#"{"event":{}}"#).is_err());
    }
}
