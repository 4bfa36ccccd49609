//! Replay on the stored form: the delivery decision from a light decode of the audience
//! fields only, and the wire message of a full delivery spliced from the stored bytes.
//!
//! A stored event is a few KiB, almost all of it content the decision never looks at. Decoding
//! it whole (a dozen allocated strings and the typed body), cloning the submission and encoding
//! it again was most of the cost of a replay. Here prost decodes only the fields the decision
//! reads ([`EventView`], unknown fields are skipped without allocating), the decision itself is
//! the same [`decide`] as for live events, and a full delivery copies the stored submission's
//! bytes behind a new header: the same bytes [`super::stream::encode`] would produce. The rarer
//! deliveries (tombstones, acknowledgements) decode the event in full and use that encoder.
use bytes::{BufMut, Bytes, BytesMut};
use prost::{
    Message,
    encoding::{WireType, decode_key, decode_varint, encode_varint},
};

use super::{
    filter::{Delivery, Filter, decide},
    stream::encode,
};
use crate::{
    domain::member::{Member, Registry},
    pb,
    store::{
        StoreError,
        records::{self, AudienceRecord, StoredEvent},
    },
};

/// The fields of a stored event that the delivery decision reads (tags of
/// [`records::StoredEvent`]).
#[derive(Clone, PartialEq, prost::Message)]
struct EventView {
    #[prost(uint64, tag = "1")]
    sequence: u64,
    #[prost(string, tag = "2")]
    action: String,
    #[prost(message, optional, tag = "3")]
    submission: Option<SubmissionView>,
    #[prost(message, optional, tag = "4")]
    previous_audience: Option<AudienceRecord>,
    #[prost(message, optional, tag = "5")]
    acknowledgement: Option<pb::Acknowledgement>,
}

/// The envelope fields of `pb::Submission` the decision reads (same tags).
#[derive(Clone, PartialEq, prost::Message)]
struct SubmissionView {
    #[prost(string, tag = "3")]
    publisher: String,
    #[prost(string, tag = "4")]
    state: String,
    #[prost(string, tag = "5")]
    kind: String,
    #[prost(string, tag = "6")]
    status: String,
    #[prost(message, optional, tag = "11")]
    content: Option<ContentView>,
}

/// The audience and filter fields of `pb::SubmissionContent` (same tags).
#[derive(Clone, PartialEq, prost::Message)]
struct ContentView {
    #[prost(string, tag = "4")]
    tlp: String,
    #[prost(string, repeated, tag = "5")]
    recipients: Vec<String>,
    #[prost(string, tag = "6")]
    community: String,
    #[prost(string, repeated, tag = "7")]
    cbm_refs: Vec<String>,
}

impl EventView {
    /// A stored event holding exactly the fields the decision reads.
    fn skeleton(self) -> StoredEvent {
        StoredEvent {
            sequence: self.sequence,
            action: self.action,
            submission: self.submission.map(|s| pb::Submission {
                publisher: s.publisher,
                state: s.state,
                kind: s.kind,
                status: s.status,
                content: s.content.map(|c| pb::SubmissionContent {
                    tlp: c.tlp,
                    recipients: c.recipients,
                    community: c.community,
                    cbm_refs: c.cbm_refs,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            previous_audience: self.previous_audience,
            acknowledgement: self.acknowledgement,
        }
    }
}

/// The decision for `reader` about the stored event `payload` (checksum already verified):
/// its sequence, and the wire message to send, if any.
pub fn deliver(
    reader: &Member,
    filter: &Filter,
    registry: &Registry,
    payload: &[u8],
) -> Result<(u64, Option<Bytes>), StoreError> {
    let undecodable =
        |e: prost::DecodeError| StoreError::Corrupt(format!("event: undecodable ({e})"));
    let view = EventView::decode(payload).map_err(undecodable)?;
    let seq = view.sequence;
    let event = view.skeleton();
    let Some(delivery) = decide(reader, filter, registry, &event) else {
        return Ok((seq, None));
    };
    if delivery == Delivery::Full && event.action != records::ACKNOWLEDGED {
        if let Some(submission) = field(payload, 3).map_err(undecodable)? {
            return Ok((seq, Some(full(seq, &event.action, submission))));
        }
    }
    let whole = StoredEvent::decode(payload).map_err(undecodable)?;
    Ok((seq, Some(encode(&whole, delivery))))
}

/// The bytes of the last occurrence of length-delimited field `tag` in a message (prost
/// merges repeated occurrences of a message field; events have one).
fn field(mut buf: &[u8], tag: u32) -> Result<Option<&[u8]>, prost::DecodeError> {
    // Any malformation is reported by decoding the message as prost does.
    let malformed = || prost::encoding::decode_varint(&mut &[0x80u8][..]).unwrap_err();
    let mut found = None;
    while !buf.is_empty() {
        let (t, wire) = decode_key(&mut buf)?;
        match wire {
            WireType::Varint => {
                decode_varint(&mut buf)?;
            }
            WireType::SixtyFourBit => buf = buf.get(8..).ok_or_else(malformed)?,
            WireType::ThirtyTwoBit => buf = buf.get(4..).ok_or_else(malformed)?,
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut buf)?).map_err(|_| malformed())?;
                let value = buf.get(..len).ok_or_else(malformed)?;
                if t == tag {
                    found = Some(value);
                }
                buf = &buf[len..];
            }
            WireType::StartGroup | WireType::EndGroup => return Err(malformed()),
        }
    }
    Ok(found)
}

fn len_field(out: &mut BytesMut, tag: u32, value: &[u8]) {
    encode_varint(u64::from(tag << 3 | 2), out);
    encode_varint(value.len() as u64, out);
    out.put_slice(value);
}

fn len_field_len(value: usize) -> usize {
    1 + prost::encoding::encoded_len_varint(value as u64) + value
}

/// `FeedEvent { sequence, change: FeedChange { action, submission, reason } }` for a full
/// delivery, the submission copied as stored. Field order and presence as prost encodes them.
fn full(seq: u64, action: &str, submission: &[u8]) -> Bytes {
    let reason = if action == records::WITHDRAWN {
        "withdrawn"
    } else {
        ""
    };
    let mut change_len = len_field_len(submission.len());
    if !action.is_empty() {
        change_len += len_field_len(action.len());
    }
    if !reason.is_empty() {
        change_len += len_field_len(reason.len());
    }
    let mut out = BytesMut::with_capacity(12 + len_field_len(change_len));
    if seq != 0 {
        out.put_u8(0x08);
        encode_varint(seq, &mut out);
    }
    encode_varint(2 << 3 | 2, &mut out);
    encode_varint(change_len as u64, &mut out);
    if !action.is_empty() {
        len_field(&mut out, 1, action.as_bytes());
    }
    len_field(&mut out, 2, submission);
    if !reason.is_empty() {
        len_field(&mut out, 3, reason.as_bytes());
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::member::{MemberStatus, Role};

    fn member(id: &str) -> Member {
        Member {
            id: id.into(),
            state: "EE".into(),
            display_name: id.into(),
            roles: [Role::Subscriber].into_iter().collect(),
            communities: vec!["OSCE".into()],
            status: MemberStatus::Active,
            bindings: vec![],
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn event(seq: u64, action: &str, tlp: &str, recipients: &[&str]) -> StoredEvent {
        StoredEvent {
            sequence: seq,
            action: action.into(),
            submission: Some(pb::Submission {
                id: "id-1".into(),
                revision: 2,
                publisher: "PUB".into(),
                state: "EE".into(),
                kind: "notice".into(),
                status: if action == records::WITHDRAWN {
                    "withdrawn".into()
                } else {
                    "active".into()
                },
                content_hash: "ab".repeat(32),
                sequence: seq,
                content: Some(pb::SubmissionContent {
                    title: "t".repeat(300),
                    summary: "s".repeat(2000),
                    tlp: tlp.into(),
                    recipients: recipients.iter().map(|r| r.to_string()).collect(),
                    cbm_refs: vec!["UN-CBM-1".into()],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            previous_audience: (action != records::PUBLISHED).then(|| AudienceRecord {
                tlp: "TLP:CLEAR".into(),
                recipients: vec![],
                community: String::new(),
            }),
            acknowledgement: None,
        }
    }

    /// Same decision and same bytes as decoding the event in full, for every reader and kind
    /// of change, including the narrowed audience and the withdrawal tombstones.
    #[test]
    fn same_decision_and_bytes_as_the_full_decode() {
        let registry = Registry::default();
        let filters = [
            Filter::default(),
            Filter {
                cbm_refs: vec!["UN-CBM-1".into()],
                ..Default::default()
            },
            Filter {
                cbm_refs: vec!["OSCE-3".into()],
                ..Default::default()
            },
        ];
        let readers = [member("PUB"), member("R1"), member("R2")];
        let events = [
            event(1, records::PUBLISHED, "TLP:CLEAR", &[]),
            event(300, records::PUBLISHED, "TLP:AMBER", &["R1"]),
            event(70_000, records::REVISED, "TLP:RED", &["R1"]),
            event(5, records::WITHDRAWN, "TLP:GREEN", &[]),
            event(6, records::WITHDRAWN, "TLP:AMBER", &["R2"]),
        ];
        let mut delivered = 0;
        for e in &events {
            let payload = e.encode_to_vec();
            for reader in &readers {
                for filter in &filters {
                    let expected = decide(reader, filter, &registry, e).map(|d| encode(e, d));
                    let (seq, got) = deliver(reader, filter, &registry, &payload).unwrap();
                    assert_eq!(seq, e.sequence);
                    assert_eq!(got, expected, "{} for {}", e.action, reader.id);
                    delivered += usize::from(got.is_some());
                }
            }
        }
        assert!(delivered > 10);
    }

    #[test]
    fn damaged_payload_is_an_error_not_a_delivery() {
        let payload = event(1, records::PUBLISHED, "TLP:CLEAR", &[]).encode_to_vec();
        let reader = member("R1");
        let r = deliver(
            &reader,
            &Filter::default(),
            &Registry::default(),
            &payload[..40],
        );
        assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    }
}
