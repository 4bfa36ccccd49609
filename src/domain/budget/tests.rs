//! The arithmetic of the budgets against real messages filled to every field limit, and the
//! STIX factor against pathological contents of every kind.
use prost::Message;

use super::*;
use crate::{
    pb::{self, submission_content::Body},
    store::records::StoredEvent,
};

const R: usize = 4 * MIB;

fn text(bytes: usize) -> String {
    "x".repeat(bytes)
}

/// A four-byte character `n` times: the most bytes a limit in characters allows.
fn wide(chars: usize) -> String {
    "\u{10FFFF}".repeat(chars)
}

/// `c` grown by `set(c, n)` until it is exactly `bytes` long encoded (length varints grow
/// with what they count, so the padding is adjusted until it lands).
fn sized(
    mut c: pb::SubmissionContent,
    bytes: usize,
    set: impl Fn(&mut pb::SubmissionContent, usize),
) -> pb::SubmissionContent {
    set(&mut c, 0);
    let mut pad = bytes.saturating_sub(c.encoded_len());
    for _ in 0..16 {
        set(&mut c, pad);
        match c.encoded_len().cmp(&bytes) {
            std::cmp::Ordering::Equal => return c,
            std::cmp::Ordering::Greater => pad -= c.encoded_len() - bytes,
            std::cmp::Ordering::Less => pad += bytes - c.encoded_len(),
        }
    }
    panic!("no padding makes {bytes} bytes");
}

fn content_of(bytes: usize) -> pb::SubmissionContent {
    let c = pb::SubmissionContent {
        title: "t".into(),
        ..Default::default()
    };
    sized(c, bytes, |c, n| c.summary = text(n))
}

/// A submission with every envelope field at its limit.
fn worst_submission(c: usize) -> pb::Submission {
    pb::Submission {
        id: text(ID_BYTES),
        revision: u32::MAX,
        publisher: text(CODE_BYTES),
        state: text(CODE_BYTES),
        kind: text(KIND_BYTES),
        status: text(STATUS_BYTES),
        created_at: text(INSTANT_BYTES),
        updated_at: text(INSTANT_BYTES),
        content_hash: text(HASH_HEX_BYTES),
        sequence: u64::MAX,
        content: Some(content_of(c)),
        withdrawal_reason: wide(REASON_CHARS),
        signature: vec![0xA5; SIGNATURE_BYTES].into(),
    }
}

fn worst_ack() -> pb::Acknowledgement {
    pb::Acknowledgement {
        notice_id: text(ID_BYTES),
        notice_revision: u32::MAX,
        member: text(CODE_BYTES),
        state: text(CODE_BYTES),
        contact_ids: vec![],
        reply: wide(REASON_CHARS),
        acknowledged_at: text(INSTANT_BYTES),
        deadline: text(INSTANT_BYTES),
        on_time: true,
        sequence: u64::MAX,
        replayed: true,
    }
}

fn envelope_of(exit: &str) -> usize {
    Budget::new(R)
        .envelopes()
        .into_iter()
        .find(|(name, _)| *name == exit)
        .unwrap()
        .1
}

#[test]
fn varints_have_the_length_prost_gives_them() {
    for v in [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
        assert_eq!(varint_len(v), prost::encoding::encoded_len_varint(v), "{v}");
    }
}

#[test]
fn every_exit_filled_to_its_limits_is_exactly_its_computed_size() {
    // Content as large as the message: the size the envelopes are computed for.
    let c = R;
    let sub = worst_submission(c);
    assert_eq!(sub.encoded_len(), c + envelope_of("Get"));

    let page = pb::ListResponse {
        submissions: vec![sub.clone()],
        next_page_token: text(LIST_TOKEN_BYTES),
    };
    assert_eq!(page.encoded_len(), c + envelope_of("a List page"));

    let directory = pb::ListContactsResponse {
        contacts: vec![pb::DirectoryEntry {
            submission: Some(sub.clone()),
            verified_at: text(INSTANT_BYTES),
            verified_by: text(ACTION_BYTES),
        }],
        next_page_token: text(DIRECTORY_TOKEN_BYTES),
    };
    assert_eq!(directory.encoded_len(), c + envelope_of("a directory page"));

    let feed = crate::feed::wire::FeedEventFields {
        sequence: u64::MAX,
        event: Some(crate::feed::wire::Event::Change(Box::new(pb::FeedChange {
            action: text(ACTION_BYTES),
            submission: Some(sub.clone()),
            reason: text(FEED_REASON_BYTES),
            acknowledgement: Some(worst_ack()),
        }))),
    };
    assert_eq!(feed.encoded_len(), c + envelope_of("a feed event"));

    let acknowledged = StoredEvent {
        sequence: u64::MAX,
        action: text(ACTION_BYTES),
        submission: Some(sub),
        acknowledgement: Some(worst_ack()),
        audit_sequence: u64::MAX,
    };
    assert_eq!(
        crate::store::codec::frame(&acknowledged).len(),
        c + envelope_of("the stored event")
    );
}

#[test]
fn the_limits_assumed_are_the_ones_the_hub_enforces() {
    for k in Kind::ALL {
        assert!(k.as_str().len() <= KIND_BYTES, "{k:?}");
    }
    assert_eq!(STATUS_BYTES, "withdrawn".len());
    assert_eq!(ACTION_BYTES, crate::store::records::ACKNOWLEDGED.len());
    assert_eq!(FEED_REASON_BYTES, "audience_narrowed".len());
    assert_eq!(FRAME_BYTES, crate::store::codec::HEADER);
    assert_eq!(ID_BYTES, uuid::Uuid::new_v4().to_string().len());
    let longest = format!("A{}", "B".repeat(CODE_BYTES - 1));
    assert!(crate::domain::member::check_code(&longest, "code").is_ok());
    assert!(crate::domain::member::check_code(&format!("{longest}C"), "code").is_err());
    assert_eq!(
        crate::domain::clock::now_rfc3339().len(),
        "2026-01-01T00:00:00.000Z".len()
    );
    let long_instant = format!("2099-01-01T00:00:00.{}Z", "1".repeat(INSTANT_BYTES));
    assert!(crate::domain::clock::parse_instant(&long_instant).is_err());
    assert!(crate::domain::clock::parse_instant("2099-01-01T00:00:00.123456789+14:00").is_ok());
}

#[test]
fn the_content_limit_leaves_room_for_the_largest_envelope() {
    let b = Budget::new(R);
    let (exit, envelope) = b.envelope();
    assert_eq!(exit, "a feed event");
    assert_eq!(b.content(), R - envelope);
    // The figure the README quotes.
    assert_eq!(b.content(), 4_152_839, "{:?}", b.envelopes());
    // Every exit of the largest content fits the message limit, and of one byte more does not
    // fit the largest.
    for (_, size) in EXITS {
        assert!(size(b.content()) <= R);
    }
    assert!(EXITS.iter().any(|(_, size)| size(b.content() + 1) > R));
}

#[test]
fn content_over_the_limit_is_refused_naming_the_field_and_both_numbers() {
    let b = Budget::new(3 * MIB);
    let kind = Kind::PolicyDocument;
    // Attachments are not mapped to STIX (only their names and hashes), so content this large
    // is refused for its encoded size alone.
    let c = pb::SubmissionContent {
        title: "t".into(),
        ..Default::default()
    };
    let c = sized(c, b.content(), |c, n| {
        c.attachments = vec![pb::Attachment {
            name: "a.bin".into(),
            media_type: "application/octet-stream".into(),
            sha256: text(64),
            content: vec![0u8; n].into(),
        }]
    });
    b.check_content(&c, kind, false).unwrap();
    b.check_content(&c, kind, true).unwrap();
    let mut over = c.clone();
    over.title.push('x');
    let e = b.check_content(&over, kind, false).unwrap_err();
    assert_eq!(e.field, "content");
    assert_eq!((e.size, e.limit), (b.content() + 1, b.content()));
    let message = e.to_string();
    assert!(message.starts_with("content: too large: "), "{message}");
    assert!(message.contains(&b.content().to_string()), "{message}");
    assert!(
        message.contains(&(b.content() + 1).to_string()),
        "{message}"
    );
}

#[test]
fn content_whose_stix_bundle_is_over_the_limit_is_refused() {
    let b = Budget::new(3 * MIB);
    // 2,000 definitions of 1,000 quotes: 2 MB encoded, each quote escaped in JSON.
    let c = pb::SubmissionContent {
        title: "t".into(),
        tlp: "TLP:CLEAR".into(),
        body: Some(Body::TerminologyList(pb::TerminologyList {
            terms: (0..2000)
                .map(|i| pb::Term {
                    term: format!("term {i}"),
                    definition: "\"".repeat(1000),
                    ..Default::default()
                })
                .collect(),
        })),
        ..Default::default()
    };
    assert!(c.encoded_len() < b.content());
    let e = b
        .check_content(&c, Kind::TerminologyList, false)
        .unwrap_err();
    assert!(e.to_string().contains("as a STIX 2.1 bundle"), "{e}");
    assert!(e.size > b.message() && e.limit == b.message(), "{e:?}");
}

/// Contents that make the most JSON per encoded byte: many tiny fields with long names, text
/// of characters JSON escapes, lists the mapping repeats.
fn pathological() -> Vec<(Kind, pb::SubmissionContent)> {
    let quotes = |n: usize| "\"".repeat(n);
    let tiny = |n: usize| (0..n).map(|i| format!("{}", i % 10)).collect::<Vec<_>>();
    let envelope = |body: Body| pb::SubmissionContent {
        title: quotes(200),
        language: "en".into(),
        summary: quotes(4000),
        tlp: "TLP:AMBER".into(),
        recipients: (0..500).map(|i| format!("M{i}")).collect(),
        community: String::new(),
        cbm_refs: tiny(50),
        tags: tiny(50),
        review_by: "2099-01-01".into(),
        attachments: (0..10)
            .map(|i| pb::Attachment {
                name: format!("{i}"),
                media_type: "a/b".into(),
                sha256: text(64),
                content: vec![0u8].into(),
            })
            .collect(),
        body: Some(body),
    };
    let mut out = vec![
        (
            Kind::TerminologyList,
            envelope(Body::TerminologyList(pb::TerminologyList {
                terms: (0..400)
                    .map(|i| pb::Term {
                        term: format!("{i}"),
                        definition: "d".into(),
                        source: "s".into(),
                        equivalents: (0..50)
                            .map(|_| pb::TermEquivalent {
                                language: "en".into(),
                                term: "e".into(),
                            })
                            .collect(),
                    })
                    .collect(),
            })),
        ),
        (
            Kind::TerminologyList,
            envelope(Body::TerminologyList(pb::TerminologyList {
                terms: (0..200)
                    .map(|i| pb::Term {
                        term: format!("{i}{}", quotes(195)),
                        definition: quotes(4000),
                        source: quotes(500),
                        equivalents: vec![],
                    })
                    .collect(),
            })),
        ),
        (
            Kind::CriticalInfrastructureApproach,
            envelope(Body::CriticalInfrastructureApproach(
                pb::CriticalInfrastructureApproach {
                    sectors: tiny(100),
                    designation_criteria: quotes(4000),
                    responsible_authorities: tiny(100),
                    protection_measures: tiny(100),
                    legal_basis: quotes(4000),
                },
            )),
        ),
        (
            Kind::PointOfContact,
            envelope(Body::PointOfContact(pb::PointOfContact {
                level: "technical".into(),
                organisation: quotes(200),
                function: quotes(200),
                channels: (0..20)
                    .map(|_| pb::ContactChannel {
                        r#type: "email".into(),
                        value: "v".into(),
                        note: "n".into(),
                    })
                    .collect(),
                languages: vec!["en".into(); 20],
                availability: quotes(200),
                time_zone: "UTC".into(),
                last_verified: "2026-01-01".into(),
            })),
        ),
        (
            Kind::IncidentSeveritySchema,
            envelope(Body::IncidentSeveritySchema(pb::IncidentSeveritySchema {
                levels: (0..20)
                    .map(|i| pb::SeverityLevel {
                        name: format!("{i}"),
                        criteria: "c".into(),
                    })
                    .collect(),
            })),
        ),
        (
            Kind::PolicyDocument,
            envelope(Body::PolicyDocument(pb::PolicyDocument {
                document_type: "strategy".into(),
                issuing_authority: quotes(200),
                adoption_date: "2024-01-01".into(),
                version: quotes(64),
                url: format!("https://e.x/{}", "a".repeat(1000)),
            })),
        ),
    ];
    for (category, template) in [
        (
            "incident_notification",
            Some(pb::notice::Template::IncidentNotification(
                pb::IncidentNotification {
                    incident_summary: quotes(4000),
                    affected_sectors: tiny(100),
                    detected_at: "2026-01-01T00:00:00Z".into(),
                    status: "ongoing".into(),
                    impact: quotes(4000),
                },
            )),
        ),
        (
            "consultation_request",
            Some(pb::notice::Template::ConsultationRequest(
                pb::ConsultationRequest {
                    topic: quotes(200),
                    questions: vec![quotes(2000); 20],
                    proposed_date: "2099-01-01T00:00:00Z".into(),
                    respond_by: "2099-01-01T00:00:00Z".into(),
                },
            )),
        ),
    ] {
        out.push((
            Kind::Notice,
            envelope(Body::Notice(pb::Notice {
                category: category.into(),
                subject: quotes(200),
                text: quotes(20_000),
                severity: "s".into(),
                ack_deadline: "2099-01-01T00:00:00Z".into(),
                in_reply_to: String::new(),
                severity_schema: String::new(),
                template,
            })),
        ));
    }
    // The smallest contents: the fixed part of a bundle dominates.
    for (kind, c) in out.clone() {
        out.push((
            kind,
            pb::SubmissionContent {
                title: "t".into(),
                tlp: "TLP:CLEAR".into(),
                body: c.body,
                ..Default::default()
            },
        ));
    }
    out
}

#[test]
fn no_content_maps_to_more_stix_than_the_fixed_part_and_factor_allow() {
    let mut worst = 0.0f64;
    for (kind, c) in pathological() {
        let encoded = c.encoded_len();
        let stix = stix_len(&c, kind, true);
        assert!(stix >= stix_len(&c, kind, false), "{kind:?}: signing adds");
        assert!(stix > 0, "{kind:?} maps");
        assert!(
            stix <= STIX_FIXED + STIX_FACTOR * encoded,
            "{kind:?}: {stix} bytes of STIX for {encoded} encoded"
        );
        if encoded > 10_000 {
            worst = worst.max(stix as f64 / encoded as f64);
        }
    }
    // Far below the factor assumed, which leaves room for the mapping to grow.
    assert!(worst < STIX_FACTOR as f64 / 2.0, "{worst}");
}

#[test]
fn a_long_state_code_adds_less_stix_than_the_location_of_a_two_letter_one() {
    let mapper = crate::stix::Mapper::new("hub");
    let sub = |state: &str| pb::Submission {
        id: "ffffffff-ffff-ffff-ffff-ffffffffffff".into(),
        revision: 1,
        publisher: "P".into(),
        state: state.into(),
        kind: "policy_document".into(),
        status: "active".into(),
        created_at: "2026-01-01T00:00:00.000Z".into(),
        updated_at: "2026-01-01T00:00:00.000Z".into(),
        content: Some(pb::SubmissionContent {
            title: "t".into(),
            tlp: "TLP:CLEAR".into(),
            body: Some(Body::PolicyDocument(Default::default())),
            ..Default::default()
        }),
        ..Default::default()
    };
    let len = |state: &str| {
        let change = pb::FeedChange {
            action: "published".into(),
            submission: Some(sub(state)),
            ..Default::default()
        };
        let mut memory = crate::stix::memory::Memory::new(true);
        let out = mapper.feed(1, &change, &mut memory, time::OffsetDateTime::now_utc());
        serde_json::to_vec(&out.bundle.unwrap()).unwrap().len()
    };
    assert!(len(&format!("X{}", "-".repeat(CODE_BYTES - 1))) < len("XX"));
}

#[test]
fn the_live_threshold_divides_the_buffer_budget() {
    assert_eq!(Budget::live_event(4096), 8 * KIB);
    assert_eq!(Budget::live_event(1), LIVE_BUFFER_BYTES);
    assert_eq!(Budget::live_event(1_000_000), LIVE_EVENT_FLOOR);
}
