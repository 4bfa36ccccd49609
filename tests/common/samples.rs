//! Valid submission content of every kind, and broken variants with the field they break.
use cbm_hub::pb::{self, SubmissionContent, submission_content::Body};

/// An attachment of `bytes` bytes (a pattern seeded by `fill`) with its correct SHA-256.
pub fn attachment(name: &str, fill: u8, bytes: usize) -> pb::Attachment {
    use sha2::{Digest, Sha256};
    let content: Vec<u8> = (0..bytes).map(|i| fill ^ (i % 251) as u8).collect();
    pb::Attachment {
        name: name.into(),
        media_type: "application/octet-stream".into(),
        sha256: hex::encode(Sha256::digest(&content)),
        content: content.into(),
    }
}

pub fn envelope(title: &str, tlp: &str, body: Body) -> SubmissionContent {
    SubmissionContent {
        title: title.into(),
        language: "en".into(),
        summary: "Test submission.".into(),
        tlp: tlp.into(),
        cbm_refs: vec!["UN-CBM-1".into()],
        tags: vec!["test".into()],
        body: Some(body),
        ..Default::default()
    }
}

pub fn policy_document() -> Body {
    Body::PolicyDocument(pb::PolicyDocument {
        document_type: "strategy".into(),
        issuing_authority: "Government of the Republic".into(),
        adoption_date: "2024-05-02".into(),
        version: "2024".into(),
        url: "https://example.ee/strategy.pdf".into(),
    })
}

pub fn terminology_list() -> Body {
    Body::TerminologyList(pb::TerminologyList {
        terms: vec![pb::Term {
            term: "cyber incident".into(),
            definition: "An event that jeopardises information systems.".into(),
            source: "National Cybersecurity Act".into(),
            equivalents: vec![pb::TermEquivalent {
                language: "et".into(),
                term: "küberintsident".into(),
            }],
        }],
    })
}

pub fn critical_infrastructure() -> Body {
    Body::CriticalInfrastructureApproach(pb::CriticalInfrastructureApproach {
        sectors: vec!["energy".into(), "health".into()],
        designation_criteria: "Services whose disruption affects over 10,000 people.".into(),
        responsible_authorities: vec!["Information System Authority".into()],
        protection_measures: vec!["Mandatory risk assessment".into()],
        legal_basis: "Emergency Act".into(),
    })
}

pub fn point_of_contact() -> Body {
    Body::PointOfContact(pb::PointOfContact {
        level: "technical".into(),
        organisation: "CERT-EE".into(),
        function: "Duty officer".into(),
        channels: vec![
            pb::ContactChannel {
                r#type: "email".into(),
                value: "cert@example.ee".into(),
                note: String::new(),
            },
            pb::ContactChannel {
                r#type: "phone".into(),
                value: "+372 600 0000".into(),
                note: "24/7".into(),
            },
        ],
        languages: vec!["en".into(), "et".into()],
        availability: "24/7".into(),
        time_zone: "Europe/Tallinn".into(),
        last_verified: "2026-01-15".into(),
    })
}

pub fn severity_schema() -> Body {
    Body::IncidentSeveritySchema(pb::IncidentSeveritySchema {
        levels: vec![
            pb::SeverityLevel {
                name: "low".into(),
                criteria: "Limited local effect.".into(),
            },
            pb::SeverityLevel {
                name: "high".into(),
                criteria: "National effect.".into(),
            },
        ],
    })
}

pub fn notice() -> Body {
    Body::Notice(pb::Notice {
        category: "consultation_request".into(),
        subject: "Request for consultation".into(),
        text: "We request a consultation on a recent incident.".into(),
        ack_deadline: "2099-01-01T00:00:00Z".into(),
        template: Some(pb::notice::Template::ConsultationRequest(
            pb::ConsultationRequest {
                topic: "Recent incident".into(),
                questions: vec!["Can we meet to discuss it?".into()],
                proposed_date: String::new(),
                respond_by: "2099-01-01T00:00:00Z".into(),
            },
        )),
        ..Default::default()
    })
}

/// One valid content of every kind, with the kind name.
pub fn every_kind() -> Vec<(&'static str, SubmissionContent)> {
    vec![
        (
            "policy_document",
            envelope("National strategy", "TLP:CLEAR", policy_document()),
        ),
        (
            "terminology_list",
            envelope("Terminology", "TLP:GREEN", terminology_list()),
        ),
        (
            "critical_infrastructure_approach",
            envelope("CI approach", "TLP:GREEN", critical_infrastructure()),
        ),
        (
            "point_of_contact",
            envelope("Technical POC", "TLP:GREEN", point_of_contact()),
        ),
        (
            "incident_severity_schema",
            envelope("Severity schema", "TLP:CLEAR", severity_schema()),
        ),
        ("notice", envelope("Consultation", "TLP:CLEAR", notice())),
    ]
}

/// For every kind, content broken in one field, and the field path the error must name.
pub fn broken_per_kind() -> Vec<(&'static str, SubmissionContent, &'static str)> {
    let mut out = Vec::new();
    let with = |body: Body| envelope("Broken", "TLP:CLEAR", body);

    let mut d = policy_document();
    if let Body::PolicyDocument(x) = &mut d {
        x.adoption_date = "2024-13-45".into();
    }
    out.push((
        "policy_document",
        with(d),
        "content.body.policy_document.adoption_date",
    ));

    let mut t = terminology_list();
    if let Body::TerminologyList(x) = &mut t {
        x.terms[0].equivalents[0].language = "not a tag!".into();
    }
    out.push((
        "terminology_list",
        with(t),
        "content.body.terminology_list.terms[0].equivalents[0].language",
    ));

    let mut c = critical_infrastructure();
    if let Body::CriticalInfrastructureApproach(x) = &mut c {
        x.sectors.clear();
    }
    out.push((
        "critical_infrastructure_approach",
        with(c),
        "content.body.critical_infrastructure_approach.sectors",
    ));

    let mut p = point_of_contact();
    if let Body::PointOfContact(x) = &mut p {
        x.channels[0].value = "not-an-address".into();
    }
    out.push((
        "point_of_contact",
        with(p),
        "content.body.point_of_contact.channels[0].value",
    ));

    let mut s = severity_schema();
    if let Body::IncidentSeveritySchema(x) = &mut s {
        x.levels[1].name = "LOW".into();
    }
    out.push((
        "incident_severity_schema",
        with(s),
        "content.body.incident_severity_schema.levels[1]",
    ));

    let mut n = notice();
    if let Body::Notice(x) = &mut n {
        x.category = "gossip".into();
    }
    out.push(("notice", with(n), "content.body.notice.category"));

    // Envelope fields.
    let mut e = envelope("x", "TLP:RED", notice());
    e.recipients.clear();
    out.push(("envelope", e, "content.recipients"));
    out.push((
        "envelope",
        envelope("x", "tlp:red", notice()),
        "content.tlp",
    ));
    out.push((
        "envelope",
        envelope("x", "TLP:AMBER ", notice()),
        "content.tlp",
    ));
    let mut e = envelope("x", "TLP:CLEAR", notice());
    e.cbm_refs = vec!["UN-CBM-99".into()];
    out.push(("envelope", e, "content.cbm_refs[0]"));
    let mut e = envelope("x", "TLP:AMBER", notice());
    e.recipients = vec!["NO-SUCH-MEMBER".into()];
    out.push(("envelope", e, "content.recipients[0]"));
    let mut e = envelope("x", "TLP:CLEAR", notice());
    e.language = "english please".into();
    out.push(("envelope", e, "content.language"));
    let mut e = envelope("", "TLP:CLEAR", notice());
    e.title = " ".into();
    out.push(("envelope", e, "content.title"));
    let mut e = envelope("x", "TLP:CLEAR", notice());
    e.attachments = vec![pb::Attachment {
        name: "a.txt".into(),
        media_type: "text/plain".into(),
        sha256: "0".repeat(64),
        content: bytes::Bytes::from_static(b"hello"),
    }];
    out.push(("envelope", e, "content.attachments[0].sha256"));
    let mut e = envelope("x", "TLP:CLEAR", notice());
    e.body = None;
    out.push(("envelope", e, "content.body"));
    out
}

/// A point of contact of `level`, under `tlp` (recipients for AMBER, AMBER+STRICT and RED).
pub fn poc(level: &str, organisation: &str, tlp: &str, recipients: &[&str]) -> SubmissionContent {
    let mut body = point_of_contact();
    if let Body::PointOfContact(p) = &mut body {
        p.level = level.into();
        p.organisation = organisation.into();
    }
    let mut c = envelope(&format!("{organisation} {level}"), tlp, body);
    c.recipients = recipients.iter().map(|r| r.to_string()).collect();
    c
}

/// The instant `s` seconds from now, as the hub writes instants.
pub fn in_seconds(s: i64) -> String {
    cbm_hub::domain::clock::format_instant(
        time::OffsetDateTime::now_utc() + time::Duration::seconds(s),
    )
}
