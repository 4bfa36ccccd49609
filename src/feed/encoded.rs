//! Replay on the stored form: the delivery decision from a light decode of the fields it reads,
//! against the submission's current head, and the wire message of a full delivery spliced from
//! the stored bytes.
//!
//! A stored event is a few KiB, almost all of it content the decision never looks at. Decoding
//! it whole (a dozen allocated strings and the typed body), cloning the submission and encoding
//! it again was most of the cost of a replay. Here prost decodes only the fields the decision
//! reads ([`EventView`], unknown fields are skipped without allocating) into the same
//! [`ChangeFields`] the full decode gives (a property test compares them field by field), the
//! decision itself is the same [`decide`] as for live events, against the head read once per
//! batch ([`Heads`]), and a full delivery copies the stored submission's
//! bytes behind a new header: the same bytes [`super::stream::encode`] would produce. The rarer
//! deliveries (tombstones, acknowledgements) decode the event in full and use that encoder.
use std::{collections::HashMap, sync::Arc};

use bytes::{BufMut, Bytes, BytesMut};
use prost::{
    Message,
    encoding::{WireType, decode_key, decode_varint, encode_varint},
};

use super::{
    filter::{ChangeFields, Delivery, Filter, decide},
    stream::encode,
};
use crate::{
    domain::{
        audience::{AudienceRecord, Standing},
        member::{Member, Registry},
    },
    store::{
        StoreError,
        records::{self, StoredEvent, SubmissionHead},
    },
};

/// The fields of a stored event that [`ChangeFields`] holds (tags of [`records::StoredEvent`]).
#[derive(Clone, PartialEq, prost::Message)]
struct EventView {
    #[prost(uint64, tag = "1")]
    sequence: u64,
    #[prost(string, tag = "2")]
    action: String,
    #[prost(message, optional, tag = "3")]
    submission: Option<SubmissionView>,
    #[prost(message, optional, tag = "5")]
    acknowledgement: Option<AcknowledgementView>,
}

/// The envelope fields of `pb::Submission` that [`ChangeFields`] holds (same tags).
#[derive(Clone, PartialEq, prost::Message)]
struct SubmissionView {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(uint32, tag = "2")]
    revision: u32,
    #[prost(string, tag = "3")]
    publisher: String,
    #[prost(string, tag = "4")]
    state: String,
    #[prost(string, tag = "5")]
    kind: String,
    #[prost(string, tag = "8")]
    updated_at: String,
    #[prost(message, optional, tag = "11")]
    content: Option<ContentView>,
}

/// The filter fields of `pb::SubmissionContent` (same tags).
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

/// The member of `pb::Acknowledgement` (same tag).
#[derive(Clone, PartialEq, prost::Message)]
struct AcknowledgementView {
    #[prost(string, tag = "3")]
    member: String,
}

impl EventView {
    /// The audience of the event's revision, if it is revision 1 and not a withdrawal: what
    /// the head of a submission never revised holds ([`AudienceRecord::of`]).
    fn single_audience(&self) -> Option<AudienceRecord> {
        let s = self.submission.as_ref()?;
        if s.revision != 1 || self.action == records::WITHDRAWN {
            return None;
        }
        let c = s.content.as_ref();
        Some(AudienceRecord {
            tlp: c.map(|c| c.tlp.clone()).unwrap_or_default(),
            recipients: c.map(|c| c.recipients.clone()).unwrap_or_default(),
            community: c.map(|c| c.community.clone()).unwrap_or_default(),
        })
    }

    /// The decision's fields, as [`ChangeFields::of`] gives them for the full decode.
    fn fields(&self) -> Option<ChangeFields<'_>> {
        let s = self.submission.as_ref()?;
        let c = s.content.as_ref();
        Some(ChangeFields {
            sequence: self.sequence,
            action: &self.action,
            id: &s.id,
            revision: s.revision,
            at: &s.updated_at,
            publisher: &s.publisher,
            state: &s.state,
            kind: &s.kind,
            tlp: c.map_or("", |c| c.tlp.as_str()),
            community: c.map_or("", |c| c.community.as_str()),
            cbm_refs: c.map_or(&[], |c| c.cbm_refs.as_slice()),
            acknowledged_by: self
                .acknowledgement
                .as_ref()
                .map_or("", |a| a.member.as_str()),
        })
    }
}

/// The current heads of the submissions a replay batch meets, read once per batch; none for a
/// submission never revised (nor withdrawn), whose head says no more than its one event.
pub struct Heads<F, R = fn(&str) -> bool> {
    read: F,
    /// Whether a submission has more than one revision (its head must be read).
    revised: R,
    known: HashMap<String, Arc<SubmissionHead>>,
}

impl<F> Heads<F>
where
    F: FnMut(&str) -> Result<Option<SubmissionHead>, StoreError>,
{
    /// Heads read with `read` (the store's durable head of a submission), for every event.
    pub fn new(read: F) -> Self {
        Heads::with_revised(read, |_: &str| true)
    }
}

impl<F, R> Heads<F, R>
where
    F: FnMut(&str) -> Result<Option<SubmissionHead>, StoreError>,
    R: Fn(&str) -> bool,
{
    /// Heads read with `read` for the submissions `revised` names; the others are decided from
    /// their one event ([`Store::is_revised`](crate::store::Store::is_revised)).
    pub fn with_revised(read: F, revised: R) -> Self {
        Heads {
            read,
            revised,
            known: HashMap::new(),
        }
    }

    fn get(&mut self, id: &str) -> Result<Arc<SubmissionHead>, StoreError> {
        if let Some(head) = self.known.get(id) {
            return Ok(head.clone());
        }
        let head = (self.read)(id)?.ok_or_else(|| {
            StoreError::Corrupt(format!("submission {id} has events but no index entry"))
        })?;
        let head = Arc::new(head);
        self.known.insert(id.to_string(), head.clone());
        Ok(head)
    }
}

/// The decision for `reader` about the stored event `payload` (checksum already verified),
/// against its submission's current head: its sequence, and what to send (the kind of delivery
/// and its wire message), if anything.
pub fn deliver<F, R>(
    reader: &Member,
    filter: &Filter,
    registry: &Registry,
    heads: &mut Heads<F, R>,
    payload: &[u8],
) -> Result<(u64, Option<(Delivery, Bytes)>), StoreError>
where
    F: FnMut(&str) -> Result<Option<SubmissionHead>, StoreError>,
    R: Fn(&str) -> bool,
{
    let undecodable =
        |e: prost::DecodeError| StoreError::Corrupt(format!("event: undecodable ({e})"));
    let view = EventView::decode(payload).map_err(undecodable)?;
    let seq = view.sequence;
    let fields = view
        .fields()
        .ok_or_else(|| StoreError::Corrupt(format!("event {seq}: no submission")))?;
    // A submission with one revision stands as that revision does: its head would say the
    // same (publisher, the one audience, not withdrawn, made when the revision was).
    let single: [AudienceRecord; 1];
    let head: Arc<SubmissionHead>;
    let standing = match view.single_audience() {
        Some(audience) if !(heads.revised)(fields.id) => {
            single = [audience];
            Standing {
                publisher: fields.publisher,
                audiences: &single,
                withdrawn: false,
                latest_at: fields.at,
            }
        }
        _ => {
            head = heads.get(fields.id)?;
            head.standing()
        }
    };
    let Some(delivery) = decide(reader, filter, registry, &fields, &standing) else {
        return Ok((seq, None));
    };
    if delivery == Delivery::Full && fields.action != records::ACKNOWLEDGED {
        if let Some(submission) = field(payload, 3).map_err(undecodable)? {
            return Ok((seq, Some((delivery, full(seq, fields.action, submission)))));
        }
    }
    let whole = StoredEvent::decode(payload).map_err(undecodable)?;
    Ok((seq, Some((delivery, encode(&whole, delivery)))))
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
    use proptest::prelude::*;

    use super::*;
    use crate::{
        domain::{
            audience::AudienceRecord,
            member::{MemberStatus, Role},
        },
        pb,
    };

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
            require_signed: false,
        }
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), "[A-Z:+-]{1,12}", "\\PC{0,40}"]
    }

    prop_compose! {
        /// Any stored event: every field of the event, its submission, content and
        /// acknowledgement set or left empty, so that a field the light decode read under a
        /// wrong tag, or missed, shows.
        fn any_event()(
            sequence in any::<u64>(),
            action in prop_oneof![
                Just(records::PUBLISHED.to_string()),
                Just(records::REVISED.to_string()),
                Just(records::WITHDRAWN.to_string()),
                Just(records::ACKNOWLEDGED.to_string()),
            ],
            strings in proptest::collection::vec(text(), 16),
            numbers in (any::<u32>(), any::<u64>()),
            refs in proptest::collection::vec(text(), 0..3),
            recipients in proptest::collection::vec(text(), 0..3),
            present in (any::<bool>(), any::<bool>(), any::<bool>()),
        ) -> StoredEvent {
            let content = present.1.then(|| pb::SubmissionContent {
                title: strings[8].clone(),
                language: strings[9].clone(),
                summary: strings[10].clone(),
                tlp: strings[11].clone(),
                recipients: recipients.clone(),
                community: strings[12].clone(),
                cbm_refs: refs,
                tags: recipients,
                ..Default::default()
            });
            StoredEvent {
                sequence,
                action,
                submission: present.0.then(|| pb::Submission {
                    id: strings[0].clone(),
                    revision: numbers.0,
                    publisher: strings[1].clone(),
                    state: strings[2].clone(),
                    kind: strings[3].clone(),
                    status: strings[4].clone(),
                    created_at: strings[5].clone(),
                    updated_at: strings[6].clone(),
                    content_hash: strings[7].clone(),
                    sequence: numbers.1,
                    content,
                    withdrawal_reason: strings[13].clone(),
                    ..Default::default()
                }),
                acknowledgement: present.2.then(|| pb::Acknowledgement {
                    notice_id: strings[0].clone(),
                    notice_revision: numbers.0,
                    member: strings[14].clone(),
                    state: strings[15].clone(),
                    reply: strings[13].clone(),
                    ..Default::default()
                }),
                audit_sequence: 0,
            }
        }
    }

    proptest! {
        /// The light decode gives every field of the decision exactly as the full decode does.
        #[test]
        fn the_light_decode_reads_every_decision_field_as_the_full_one(event in any_event()) {
            let payload = event.encode_to_vec();
            let view = EventView::decode(payload.as_slice()).unwrap();
            prop_assert_eq!(view.fields(), ChangeFields::of(&event));
        }
    }

    fn event(seq: u64, action: &str, revision: u32, tlp: &str, recipients: &[&str]) -> StoredEvent {
        StoredEvent {
            sequence: seq,
            action: action.into(),
            submission: Some(pb::Submission {
                id: "id-1".into(),
                revision,
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
            acknowledgement: None,
            audit_sequence: 0,
        }
    }

    /// Same decision and same bytes as deciding on the full decode, for every reader, filter
    /// and kind of change, against heads that narrowed, widened or withdrew.
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
        let readers = [member("PUB"), member("R1"), member("R2"), member("R3")];
        let events = [
            event(1, records::PUBLISHED, 1, "TLP:AMBER", &["R1", "R2"]),
            event(300, records::REVISED, 2, "TLP:RED", &["R1"]),
            event(70_000, records::REVISED, 3, "TLP:CLEAR", &[]),
            event(70_001, records::WITHDRAWN, 4, "TLP:CLEAR", &[]),
        ];
        let audiences: Vec<AudienceRecord> = events
            .iter()
            .map(|e| AudienceRecord::of(e.submission.as_ref().unwrap()))
            .collect();
        let mut delivered = 0;
        for latest in 1..=events.len() {
            let head = SubmissionHead {
                publisher: "PUB".into(),
                kind: "notice".into(),
                revision_seqs: events[..latest].iter().map(|e| e.sequence).collect(),
                audiences: audiences[..latest].to_vec(),
                withdrawn: latest == 4,
                ..Default::default()
            };
            for e in &events[..latest] {
                let payload = e.encode_to_vec();
                for reader in &readers {
                    for filter in &filters {
                        let expected = decide(
                            reader,
                            filter,
                            &registry,
                            &ChangeFields::of(e).unwrap(),
                            &head.standing(),
                        )
                        .map(|d| (d, encode(e, d)));
                        let mut heads = Heads::new(|_: &str| Ok(Some(head.clone())));
                        let (seq, got) =
                            deliver(reader, filter, &registry, &mut heads, &payload).unwrap();
                        assert_eq!(seq, e.sequence);
                        assert_eq!(got, expected, "{} for {}", e.action, reader.id);
                        delivered += usize::from(got.is_some());
                    }
                }
            }
        }
        assert!(delivered > 10);
    }

    /// A submission never revised is decided from its one event exactly as from its head: the
    /// head of such a submission (as the writer makes it) holds nothing the event does not.
    #[test]
    fn an_unrevised_event_decides_as_its_head_does() {
        let registry = Registry::default();
        let readers = [member("PUB"), member("R1"), member("R2"), member("R3")];
        let audiences: [(&str, &[&str]); 5] = [
            ("TLP:CLEAR", &[]),
            ("TLP:GREEN", &[]),
            ("TLP:AMBER", &["R1", "R2"]),
            ("TLP:AMBER+STRICT", &["R2"]),
            ("TLP:RED", &["R3"]),
        ];
        let mut compared = 0;
        for (tlp, recipients) in audiences {
            let mut e = event(5, records::PUBLISHED, 1, tlp, recipients);
            if let Some(s) = e.submission.as_mut() {
                s.updated_at = "2026-06-01T00:00:00Z".into();
            }
            let s = e.submission.as_ref().unwrap();
            let head = SubmissionHead {
                created_seq: 5,
                publisher: s.publisher.clone(),
                kind: s.kind.clone(),
                revision_seqs: vec![5],
                audiences: vec![AudienceRecord::of(s)],
                latest_at: s.updated_at.clone(),
                ..Default::default()
            };
            let payload = e.encode_to_vec();
            for reader in &readers {
                let filter = Filter::default();
                let mut read = Heads::new(|_: &str| Ok(Some(head.clone())));
                let mut single = Heads::with_revised(
                    |_: &str| -> Result<Option<SubmissionHead>, StoreError> {
                        panic!("an unrevised submission's head is not read")
                    },
                    |_: &str| false,
                );
                let expected = deliver(reader, &filter, &registry, &mut read, &payload).unwrap();
                let got = deliver(reader, &filter, &registry, &mut single, &payload).unwrap();
                assert_eq!(got, expected, "{tlp} for {}", reader.id);
                compared += usize::from(got.1.is_some());
            }
        }
        assert!(compared >= 8, "{compared}");
    }

    #[test]
    fn damaged_payload_is_an_error_not_a_delivery() {
        let payload = event(1, records::PUBLISHED, 1, "TLP:CLEAR", &[]).encode_to_vec();
        let reader = member("R1");
        let mut heads = Heads::new(|_: &str| Ok(None));
        let r = deliver(
            &reader,
            &Filter::default(),
            &Registry::default(),
            &mut heads,
            &payload[..40],
        );
        assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    }
}
