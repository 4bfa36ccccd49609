//! Malformed input never panics: arbitrary bytes into the decoders of every request the hub
//! takes, and arbitrary well-typed but invalid content into validation. Each either decodes
//! (then validates) or is refused with a clean error.
use cbm_hub::{
    domain::catalogue::Catalogue,
    fuzzing,
    pb::{self, submission_content::Body},
};
use proptest::prelude::*;
use prost::Message;

fn check(content: &pb::SubmissionContent) {
    fuzzing::validate_content(&fuzzing::sample_registry(), &Catalogue::builtin(), content);
}

fn decode_all(bytes: &[u8]) {
    fuzzing::decode_all(&fuzzing::sample_registry(), &Catalogue::builtin(), bytes);
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[A-Z:+-]{0,20}",
        Just(String::new()),
        "\\PC{0,300}"
    ]
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (text(), text(), text(), text(), text()).prop_map(|(a, b, c, d, e)| Body::PolicyDocument(
            pb::PolicyDocument {
                document_type: a,
                issuing_authority: b,
                adoption_date: c,
                version: d,
                url: e,
            }
        )),
        proptest::collection::vec((text(), text(), text(), text(), text()), 0..4).prop_map(
            |terms| {
                Body::TerminologyList(pb::TerminologyList {
                    terms: terms
                        .into_iter()
                        .map(|(t, d, s, l, e)| pb::Term {
                            term: t,
                            definition: d,
                            source: s,
                            equivalents: vec![pb::TermEquivalent {
                                language: l,
                                term: e,
                            }],
                        })
                        .collect(),
                })
            }
        ),
        (proptest::collection::vec(text(), 0..3), text(), text()).prop_map(|(v, a, b)| {
            Body::CriticalInfrastructureApproach(pb::CriticalInfrastructureApproach {
                sectors: v.clone(),
                designation_criteria: a,
                responsible_authorities: v.clone(),
                protection_measures: v,
                legal_basis: b,
            })
        }),
        (text(), text(), text(), text(), text(), text()).prop_map(|(a, b, c, d, e, f)| {
            Body::PointOfContact(pb::PointOfContact {
                level: a,
                organisation: b.clone(),
                function: c,
                channels: vec![pb::ContactChannel {
                    r#type: d,
                    value: e.clone(),
                    note: b,
                }],
                languages: vec![e],
                availability: String::new(),
                time_zone: f.clone(),
                last_verified: f,
            })
        }),
        proptest::collection::vec((text(), text()), 0..4).prop_map(|levels| {
            Body::IncidentSeveritySchema(pb::IncidentSeveritySchema {
                levels: levels
                    .into_iter()
                    .map(|(name, criteria)| pb::SeverityLevel { name, criteria })
                    .collect(),
            })
        }),
        (text(), text(), text(), text(), text()).prop_map(|(a, b, c, d, e)| Body::Notice(
            pb::Notice {
                category: a,
                subject: b,
                text: c,
                severity: d,
                ack_deadline: e,
                ..Default::default()
            }
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn arbitrary_content_is_validated_without_panic(
        title in text(), language in text(), tlp in text(), community in text(),
        recipients in proptest::collection::vec(text(), 0..3),
        refs in proptest::collection::vec(text(), 0..3),
        tags in proptest::collection::vec(text(), 0..3),
        review in text(),
        attachment in proptest::option::of((text(), text(), text(), proptest::collection::vec(any::<u8>(), 0..64))),
        body in proptest::option::of(body()),
    ) {
        let content = pb::SubmissionContent {
            title, language, summary: String::new(), tlp, recipients, community, cbm_refs: refs, tags, review_by: review,
            attachments: attachment.into_iter().map(|(name, media_type, sha256, content)| pb::Attachment { name, media_type, sha256, content: content.into() }).collect(),
            body,
        };
        check(&content);
        // The same content after a round trip through the wire encoding.
        let decoded = pb::SubmissionContent::decode(content.encode_to_vec().as_slice()).unwrap();
        check(&decoded);
    }
}

#[test]
fn truncated_valid_messages_never_panic() {
    let req = pb::PublishRequest {
        content: Some(pb::SubmissionContent {
            title: "t".into(),
            tlp: "TLP:CLEAR".into(),
            body: Some(Body::Notice(pb::Notice {
                category: "ping".into(),
                ..Default::default()
            })),
            ..Default::default()
        }),
        idempotency_key: "k".into(),
        ..Default::default()
    };
    let bytes = req.encode_to_vec();
    for cut in 0..bytes.len() {
        decode_all(&bytes[..cut]);
    }
}
