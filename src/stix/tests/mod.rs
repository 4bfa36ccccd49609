//! The mapping of every kind, withdrawals, revisions and acknowledgements, each bundle run
//! through the checker; and the checker refusing broken bundles.
use serde_json::{Value, json};

use super::{Mapper, check::check_bundle, ext, memory::Memory, tlp};
use crate::pb::{self, submission_content::Body};

mod checker;
mod revocation;

pub(super) const HUB: &str = "hub.example";

fn content(title: &str, tlp: &str, body: Body) -> pb::SubmissionContent {
    pb::SubmissionContent {
        title: title.into(),
        language: "en".into(),
        summary: "Summary.".into(),
        tlp: tlp.into(),
        recipients: if tlp.starts_with("TLP:AMBER") || tlp == "TLP:RED" {
            vec!["CL-CSIRT".into()]
        } else {
            vec![]
        },
        cbm_refs: vec!["UN-CBM-1".into()],
        tags: vec!["test".into()],
        body: Some(body),
        ..Default::default()
    }
}

fn submission(id: &str, kind: &str, c: pb::SubmissionContent) -> pb::Submission {
    pb::Submission {
        id: id.into(),
        revision: 1,
        publisher: "EE-MFA".into(),
        state: "EE".into(),
        kind: kind.into(),
        status: "active".into(),
        created_at: "2026-11-23T22:14:00.123Z".into(),
        updated_at: "2026-11-23T22:14:00.123Z".into(),
        content_hash: "ab".repeat(32),
        sequence: 7,
        content: Some(c),
        withdrawal_reason: String::new(),
        ..Default::default()
    }
}

fn notice(category: &str) -> Body {
    use pb::notice::Template;
    let template = match category {
        "incident_notification" => Some(Template::IncidentNotification(pb::IncidentNotification {
            incident_summary: "Outage of the power grid control system.".into(),
            affected_sectors: vec!["energy".into()],
            detected_at: "2026-11-23T20:00:00Z".into(),
            status: "ongoing".into(),
            impact: String::new(),
        })),
        "request_for_assistance" => {
            Some(Template::RequestForAssistance(pb::RequestForAssistance {
                incident_summary: "Ransomware at a hospital.".into(),
                affected_sector: "health".into(),
                assistance_requested: "Forensics.".into(),
                respond_by: "2026-12-01T00:00:00Z".into(),
            }))
        }
        "consultation_request" => Some(Template::ConsultationRequest(pb::ConsultationRequest {
            topic: "Scanning".into(),
            questions: vec!["Is it yours?".into()],
            proposed_date: String::new(),
            respond_by: "2026-12-01T00:00:00Z".into(),
        })),
        _ => None,
    };
    Body::Notice(pb::Notice {
        category: category.into(),
        subject: format!("{category} subject"),
        text: "Text.".into(),
        severity: if category == "incident_notification" {
            "high".into()
        } else {
            String::new()
        },
        severity_schema: String::new(),
        template,
        ..Default::default()
    })
}

pub(super) fn every_kind() -> Vec<pb::Submission> {
    let policy = Body::PolicyDocument(pb::PolicyDocument {
        document_type: "strategy".into(),
        issuing_authority: "Government".into(),
        adoption_date: "2024-05-02".into(),
        version: String::new(),
        url: "https://example.ee/strategy.pdf".into(),
    });
    let poc = Body::PointOfContact(pb::PointOfContact {
        level: "technical".into(),
        organisation: "CERT-EE".into(),
        function: "Duty officer".into(),
        channels: vec![pb::ContactChannel {
            r#type: "email".into(),
            value: "cert@example.ee".into(),
            note: String::new(),
        }],
        languages: vec!["en".into()],
        availability: "24/7".into(),
        time_zone: "Europe/Tallinn".into(),
        last_verified: "2026-01-15".into(),
    });
    let schema = Body::IncidentSeveritySchema(pb::IncidentSeveritySchema {
        levels: vec![pb::SeverityLevel {
            name: "high".into(),
            criteria: "National effect.".into(),
        }],
    });
    let mut out = vec![
        submission(
            "s-policy",
            "policy_document",
            content("Strategy", "TLP:CLEAR", policy),
        ),
        submission(
            "s-poc",
            "point_of_contact",
            content("POC", "TLP:GREEN", poc),
        ),
        submission(
            "s-schema",
            "incident_severity_schema",
            content("Schema", "TLP:GREEN", schema),
        ),
    ];
    for (i, (category, tlp)) in [
        ("incident_notification", "TLP:AMBER"),
        ("request_for_assistance", "TLP:AMBER+STRICT"),
        ("consultation_request", "TLP:RED"),
        ("information", "TLP:CLEAR"),
    ]
    .into_iter()
    .enumerate()
    {
        out.push(submission(
            &format!("s-notice-{i}"),
            "notice",
            content(category, tlp, notice(category)),
        ));
    }
    out
}

/// When the tests' subscriber receives a change.
pub(super) fn received() -> time::OffsetDateTime {
    time::macros::datetime!(2026-12-01 10:00:00.250 UTC)
}

/// The bundle of one change for a subscriber that has printed nothing yet (from sequence 0).
pub(super) fn printed(m: &Mapper, sequence: u64, c: &pb::FeedChange) -> Value {
    let out = m.feed(sequence, c, &mut Memory::new(true), received());
    assert_eq!(out.note, None);
    out.bundle.expect("a bundle")
}

pub(super) fn change(action: &str, s: pb::Submission) -> pb::FeedChange {
    pb::FeedChange {
        action: action.into(),
        submission: Some(s),
        reason: action.into(),
        acknowledgement: None,
    }
}

/// The mapped object of a submission (not the identities, markings or extension definition).
pub(super) fn mapped<'a>(bundle: &'a Value, submission_id: &str) -> Vec<&'a Value> {
    bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["extensions"][ext::id()]["submission_id"] == submission_id)
        .collect()
}

pub(super) fn assert_conforms(bundle: &Value) {
    let problems = check_bundle(bundle);
    assert!(problems.is_empty(), "{problems:#?}\n{bundle:#}");
}

#[test]
fn every_kind_maps_to_its_stix_type_and_conforms() {
    let m = Mapper::new(HUB);
    let expected = [
        ("s-policy", "report"),
        ("s-poc", "identity"),
        ("s-schema", "report"),
        ("s-notice-0", "incident"),
        ("s-notice-1", "note"),
        ("s-notice-3", "note"),
    ];
    for s in every_kind() {
        if s.id == "s-notice-2" {
            continue; // TLP:RED: never exported (stix::tests::revocation).
        }
        let b = printed(&m, 7, &change("published", s.clone()));
        assert_conforms(&b);
        let objects = mapped(&b, &s.id);
        assert_eq!(objects.len(), 1, "{b:#}");
        let o = objects[0];
        let want = expected.iter().find(|e| e.0 == s.id).unwrap().1;
        assert_eq!(o["type"], want, "{}", s.id);
        assert_eq!(o["id"], m.id(want, &format!("submission/{}", s.id)));
        let label = &s.content.as_ref().unwrap().tlp;
        assert_eq!(
            o["object_marking_refs"],
            json!([tlp::by_label(label).unwrap().id])
        );
        assert_eq!(o["created_by_ref"], m.id("identity", "member/EE-MFA"));
        assert_eq!(o["created"], "2026-11-23T22:14:00.123Z");
        assert_eq!(o["labels"], json!(["UN-CBM-1", "test"]));
        assert!(o.get("revoked").is_none());
        // Exactly the referenced marking definition travels with the bundle.
        let markings: Vec<&Value> = b["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["type"] == "marking-definition")
            .collect();
        assert_eq!(markings, vec![&tlp::object(tlp::by_label(label).unwrap())]);
    }
}

#[test]
fn incident_carries_severity_and_the_sender_schema_in_the_extension() {
    let m = Mapper::new(HUB);
    let mut s = every_kind()
        .into_iter()
        .find(|s| s.id == "s-notice-0")
        .unwrap();
    if let Some(Body::Notice(n)) = s.content.as_mut().unwrap().body.as_mut() {
        n.severity_schema = "schema-1".into();
    }
    let b = printed(&m, 9, &change("published", s));
    let o = mapped(&b, "s-notice-0")[0];
    let e = &o["extensions"][ext::id()];
    assert_eq!(
        (e["severity"].as_str(), e["severity_schema"].as_str()),
        (Some("high"), Some("schema-1"))
    );
    assert_eq!(e["body"]["notice"]["category"], "incident_notification");
    assert!(
        o["description"]
            .as_str()
            .unwrap()
            .contains("Severity: high")
    );
}

#[test]
fn publisher_is_an_organization_in_its_state() {
    let m = Mapper::new(HUB);
    let b = printed(&m, 1, &change("published", every_kind().remove(0)));
    let objects = b["objects"].as_array().unwrap();
    let who = objects
        .iter()
        .find(|o| o["id"] == m.id("identity", "member/EE-MFA"))
        .unwrap();
    assert_eq!(who["identity_class"], "organization");
    assert_eq!(who["extensions"][ext::id()]["state"], "EE");
    let place = objects.iter().find(|o| o["type"] == "location").unwrap();
    assert_eq!(place["country"], "EE");
    let rel = objects
        .iter()
        .find(|o| o["type"] == "relationship")
        .unwrap();
    assert_eq!(
        (&rel["source_ref"], &rel["target_ref"]),
        (&who["id"], &place["id"])
    );
    // An organisation without an ISO state gets no location.
    let mut s = every_kind().remove(0);
    s.state = "OSCE-SEC".into();
    let b = printed(&m, 1, &change("published", s));
    assert_conforms(&b);
    assert!(
        !b["objects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["type"] == "location")
    );
}

#[test]
fn ids_are_deterministic_per_hub_and_revisions_keep_the_id() {
    let s = every_kind().remove(0);
    let a = printed(&Mapper::new(HUB), 1, &change("published", s.clone()));
    let again = printed(&Mapper::new(HUB), 1, &change("published", s.clone()));
    assert_eq!(a, again);
    let other = printed(
        &Mapper::new("other.hub"),
        1,
        &change("published", s.clone()),
    );
    assert_ne!(
        mapped(&a, "s-policy")[0]["id"],
        mapped(&other, "s-policy")[0]["id"]
    );

    let mut revised = s;
    revised.revision = 2;
    revised.updated_at = "2026-11-24T08:00:00+02:00".into();
    let r = printed(&Mapper::new(HUB), 2, &change("revised", revised));
    assert_conforms(&r);
    let (o1, o2) = (mapped(&a, "s-policy")[0], mapped(&r, "s-policy")[0]);
    assert_eq!(o1["id"], o2["id"]);
    assert_eq!(o2["created"], o1["created"]);
    assert_eq!(o2["modified"], "2026-11-24T06:00:00.000Z");
}

#[test]
fn the_official_tlp_ids() {
    // The identifiers published with extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d.
    let ids: Vec<(&str, &str)> = tlp::TLP2_MARKINGS.iter().map(|m| (m.label, m.id)).collect();
    assert_eq!(
        ids,
        [
            (
                "TLP:CLEAR",
                "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
            ),
            (
                "TLP:GREEN",
                "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
            ),
            (
                "TLP:AMBER",
                "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
            ),
            (
                "TLP:AMBER+STRICT",
                "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
            ),
            (
                "TLP:RED",
                "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
            ),
        ]
    );
    assert!(tlp::by_label("TLP:WHITE").is_none() && tlp::by_label("tlp:red").is_none());
}
