//! One submission (or acknowledgement) as STIX objects.
use serde_json::{Map, Value, json};

use super::{Bundle, Mapper, StixError, ext, props, timestamp, tlp};
use crate::pb::{self, submission_content::Body};

/// The marking of what carries no TLP label of its own (acknowledgements, revocations whose
/// label the subscriber cannot know): TLP:AMBER, limited to the receiving organisation, as the
/// hub delivered it to this member only. Never TLP:RED: RED never appears in STIX output.
pub(super) const UNLABELLED: &str = "TLP:AMBER";

/// What was printed for a submission, for the subscriber's memory.
#[derive(Debug)]
pub(super) struct Printed {
    pub id: String,
    pub label: &'static str,
    pub modified: String,
}

/// A tombstone to revoke: the envelope the hub sent, and what of it may be shown.
pub(super) struct Tombstone<'a> {
    pub s: &'a pb::Submission,
    /// Why: `withdrawn` (by the publisher), `audience_narrowed` (no longer shared with this
    /// member, or relabelled TLP:RED), `replaced` (a revision changed the STIX type).
    pub reason: &'a str,
    /// The `modified` of the revoked version.
    pub modified: String,
    pub field: &'a str,
}

impl Tombstone<'_> {
    /// Only a publisher's withdrawal shows its envelope; any other revocation (a narrowing, a
    /// revision to TLP:RED) shows only what every tombstone has: id, publisher, state, kind,
    /// created, revision and sequence, nothing of the revision the reader may not see.
    fn withdrawn(&self) -> bool {
        self.reason == "withdrawn"
    }
}

/// The STIX type of a submission with content: a notice's category decides between `incident`
/// and `note`.
pub(super) fn stix_type(body: &Body) -> &'static str {
    match body {
        Body::Notice(n) if n.category == "incident_notification" => "incident",
        Body::Notice(_) => "note",
        Body::PointOfContact(_) => "identity",
        _ => "report",
    }
}

/// Every STIX type a submission of `kind` may have been printed as (two for a notice).
pub(super) fn stix_types_of_kind(
    kind: &str,
    field: &str,
) -> Result<&'static [&'static str], StixError> {
    Ok(match kind {
        "notice" => &["incident", "note"],
        "point_of_contact" => &["identity"],
        "policy_document"
        | "terminology_list"
        | "critical_infrastructure_approach"
        | "incident_severity_schema" => &["report"],
        other => {
            return Err(StixError::Unknown {
                field: format!("{field}.kind"),
                value: other.into(),
            });
        }
    })
}

impl Mapper {
    /// Adds the objects of one submission revision with content: its publisher, and the object
    /// of its kind under the id of `key` (revoked when `revoked`). TLP:RED content is refused.
    pub(super) fn submission(
        &self,
        b: &mut Bundle,
        s: &pb::Submission,
        c: &pb::SubmissionContent,
        key: &str,
        revoked: bool,
        field: &str,
    ) -> Result<Printed, StixError> {
        let marking = tlp::exportable(&c.tlp).ok_or_else(|| {
            let field = format!("{field}.content.tlp");
            match tlp::by_label(&c.tlp) {
                Some(_) => StixError::Red { field },
                None => StixError::Tlp {
                    field,
                    value: c.tlp.clone(),
                },
            }
        })?;
        let created = timestamp(&format!("{field}.created_at"), &s.created_at)?;
        let modified = timestamp(&format!("{field}.updated_at"), &s.updated_at)?;
        let body = c.body.as_ref().ok_or_else(|| StixError::Missing {
            field: format!("{field}.content.body"),
        })?;
        let publisher = self.member(b, &s.publisher, &s.state);
        let mut extension = props(json!({
            "hub": self.hub_id(),
            "submission_id": s.id,
            "revision": s.revision,
            "kind": s.kind,
            "publisher": s.publisher,
            "state": s.state,
            "status": s.status,
            "content_hash": s.content_hash,
            "sequence": s.sequence,
        }));
        if !s.withdrawal_reason.is_empty() {
            extension.insert("withdrawal_reason".into(), json!(s.withdrawal_reason));
        }
        let hub_ref = json!({ "source_name": "cbm-hub", "external_id": s.id });
        let label = marking.label;
        let marking = b.mark(marking);
        extension.extend(props(json!({
            "language": c.language,
            "tlp": c.tlp,
            "recipients": c.recipients,
            "community": c.community,
            "cbm_references": c.cbm_refs,
            "tags": c.tags,
            "review_by": c.review_by,
            "body": body_json(body),
        })));
        extension.extend(super::provenance::signed_props(s, c));

        let description = join(&[&c.summary, &details(body)]);
        let specific = match body {
            Body::Notice(n) if n.category == "incident_notification" => {
                extension.insert("severity".into(), json!(n.severity));
                extension.insert("severity_schema".into(), json!(n.severity_schema));
                let text = join(&[&n.subject, &c.summary, &n.text, &details(body)]);
                json!({ "name": c.title, "description": text })
            }
            Body::Notice(n) => json!({
                "abstract": n.subject,
                "content": join(&[&n.text, &details(body)]),
                "authors": [s.publisher],
                "object_refs": [publisher],
            }),
            Body::PointOfContact(p) => point_of_contact(c, p),
            _ => json!({
                "name": c.title,
                "description": description,
                "report_types": [s.kind.replace('_', "-")],
                "published": modified,
                "object_refs": [publisher],
            }),
        };
        let id = self.id(stix_type(body), key);
        let mut o = header(&id, &publisher, &created, &modified);
        o.extend(props(specific));
        if revoked {
            o.insert("revoked".into(), json!(true));
        }
        let labels: Vec<&String> = c.cbm_refs.iter().chain(&c.tags).collect();
        if !labels.is_empty() {
            o.insert("labels".into(), json!(labels));
        }
        if !c.language.is_empty() {
            o.insert("lang".into(), json!(c.language));
        }
        let mut references = vec![hub_ref];
        if let Body::PolicyDocument(p) = body
            && !p.url.is_empty()
        {
            references.push(json!({
                "source_name": p.issuing_authority,
                "description": "The published document",
                "url": p.url,
            }));
        }
        for a in &c.attachments {
            references.push(json!({
                "source_name": "cbm-hub attachment",
                "description": format!("{} ({})", a.name, a.media_type),
                "hashes": { "SHA-256": a.sha256 },
            }));
        }
        o.insert("external_references".into(), json!(references));
        o.insert("object_marking_refs".into(), json!([marking]));
        o.insert("extensions".into(), ext::block(extension));
        b.push(Value::Object(o));
        Ok(Printed {
            id,
            label,
            modified,
        })
    }

    /// Adds a revoked version of object `id` for a tombstone: its publisher, the properties its
    /// type requires, and nothing the tombstone does not show (see [`Tombstone::withdrawn`]).
    pub(super) fn revocation(
        &self,
        b: &mut Bundle,
        t: &Tombstone,
        id: &str,
        marking: &'static tlp::Tlp2Marking,
    ) -> Result<(), StixError> {
        let s = t.s;
        let created = timestamp(&format!("{}.created_at", t.field), &s.created_at)?;
        let stix_type = id.split_once("--").map_or(id, |(t, _)| t);
        let publisher = self.member(b, &s.publisher, &s.state);
        let marking = b.mark(marking);
        let mut extension = props(json!({
            "hub": self.hub_id(),
            "submission_id": s.id,
            "revision": s.revision,
            "kind": s.kind,
            "publisher": s.publisher,
            "state": s.state,
            "status": "withdrawn",
            "sequence": s.sequence,
            "revocation_reason": t.reason,
        }));
        let text = match t.reason {
            _ if t.withdrawn() => {
                extension.insert("content_hash".into(), json!(s.content_hash));
                extension.insert("withdrawal_reason".into(), json!(s.withdrawal_reason));
                extension.extend(super::provenance::withdrawal_props(s));
                match s.withdrawal_reason.as_str() {
                    "" => format!(
                        "cbm-hub submission {} was withdrawn by its publisher.",
                        s.id
                    ),
                    why => format!(
                        "cbm-hub submission {} was withdrawn by its publisher: {why}",
                        s.id
                    ),
                }
            }
            "replaced" => format!(
                "cbm-hub submission {} continues as an object of another STIX type.",
                s.id
            ),
            _ => format!(
                "cbm-hub submission {} is no longer shared with this member.",
                s.id
            ),
        };
        let mut o = header(id, &publisher, &created, &t.modified);
        o.extend(match stix_type {
            "note" => props(json!({ "content": text, "object_refs": [publisher] })),
            "report" => props(json!({
                "name": text,
                "published": t.modified,
                "object_refs": [publisher],
            })),
            _ => props(json!({ "name": text })),
        });
        o.insert("revoked".into(), json!(true));
        o.insert(
            "external_references".into(),
            json!([{ "source_name": "cbm-hub", "external_id": s.id }]),
        );
        o.insert("object_marking_refs".into(), json!([marking]));
        o.insert("extensions".into(), ext::block(extension));
        b.push(Value::Object(o));
        Ok(())
    }

    /// An acknowledgement of a notice: a `note` by the acknowledging member about the two
    /// parties (the notice itself comes without content in the feed, so it is referenced by its
    /// hub id, not by a STIX ref), marked `marking`.
    pub(super) fn acknowledgement(
        &self,
        b: &mut Bundle,
        notice: &pb::Submission,
        a: &pb::Acknowledgement,
        marking: &'static tlp::Tlp2Marking,
    ) -> Result<(), StixError> {
        let at = timestamp("change.acknowledgement.acknowledged_at", &a.acknowledged_at)?;
        let sender = self.member(b, &notice.publisher, &notice.state);
        let acker = self.member(b, &a.member, &a.state);
        let marking = b.mark(marking);
        let timing = match (a.deadline.is_empty(), a.on_time) {
            (true, _) => String::new(),
            (false, true) => format!("Acknowledged before the deadline {}.", a.deadline),
            (false, false) => format!("Acknowledged after the deadline {}.", a.deadline),
        };
        let reply = if a.reply.is_empty() {
            "Acknowledged."
        } else {
            &a.reply
        };
        let mut refs = vec![sender.clone()];
        if acker != sender {
            refs.push(acker.clone());
        }
        b.push(json!({
            "type": "note",
            "spec_version": "2.1",
            "id": self.id("note", &format!("acknowledgement/{}", a.sequence)),
            "created_by_ref": acker,
            "created": at,
            "modified": at,
            "abstract": format!("Acknowledgement by {} of notice {} (revision {})", a.member, a.notice_id, a.notice_revision),
            "content": join(&[reply, &timing]),
            "authors": [a.member],
            "object_refs": refs,
            "external_references": [{ "source_name": "cbm-hub", "external_id": a.notice_id }],
            "object_marking_refs": [marking],
            "extensions": ext::block(props(json!({
                "hub": self.hub_id(),
                "notice_id": a.notice_id,
                "notice_revision": a.notice_revision,
                "member": a.member,
                "state": a.state,
                "contact_ids": a.contact_ids,
                "reply": a.reply,
                "acknowledged_at": a.acknowledged_at,
                "deadline": a.deadline,
                "on_time": a.on_time,
                "sequence": a.sequence,
            }))),
        }));
        Ok(())
    }
}

/// The common properties of a submission's object.
fn header(id: &str, publisher: &str, created: &str, modified: &str) -> Map<String, Value> {
    let stix_type = id.split_once("--").map_or(id, |(t, _)| t);
    props(json!({
        "type": stix_type,
        "spec_version": "2.1",
        "id": id,
        "created_by_ref": publisher,
        "created": created,
        "modified": modified,
    }))
}

/// A point of contact as an `identity`: the function as its role, the channels as contact
/// information.
fn point_of_contact(c: &pb::SubmissionContent, p: &pb::PointOfContact) -> Value {
    let mut contact: Vec<String> = p
        .channels
        .iter()
        .map(|ch| {
            let note = if ch.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", ch.note)
            };
            format!("{}: {}{note}", ch.r#type, ch.value)
        })
        .collect();
    if !p.availability.is_empty() {
        contact.push(format!(
            "availability: {} ({})",
            p.availability, p.time_zone
        ));
    }
    contact.push(format!("languages: {}", p.languages.join(", ")));
    let mut o = Map::new();
    o.insert(
        "name".into(),
        json!(format!("{}, {}", p.organisation, p.function)),
    );
    if !c.summary.is_empty() {
        o.insert("description".into(), json!(c.summary));
    }
    o.insert(
        "roles".into(),
        json!([p.function, format!("{} point of contact", p.level)]),
    );
    o.insert("identity_class".into(), json!("organization"));
    o.insert("contact_information".into(), json!(contact.join("\n")));
    Value::Object(o)
}

/// The typed body as readable text (the structured body is in the extension).
fn details(body: &Body) -> String {
    match body {
        Body::PolicyDocument(p) => format!(
            "Document type: {}. Issued by {}, adopted {}{}.",
            p.document_type,
            p.issuing_authority,
            p.adoption_date,
            if p.version.is_empty() {
                String::new()
            } else {
                format!(", version {}", p.version)
            }
        ),
        Body::TerminologyList(t) => format!(
            "{} terms: {}.",
            t.terms.len(),
            t.terms
                .iter()
                .map(|t| t.term.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Body::CriticalInfrastructureApproach(a) => format!(
            "Sectors: {}.\nDesignation criteria: {}\nResponsible authorities: {}.\nProtection measures: {}.\nLegal basis: {}",
            a.sectors.join(", "),
            a.designation_criteria,
            a.responsible_authorities.join(", "),
            a.protection_measures.join("; "),
            a.legal_basis
        ),
        Body::IncidentSeveritySchema(s) => s
            .levels
            .iter()
            .enumerate()
            .map(|(i, l)| format!("{}. {}: {}", i + 1, l.name, l.criteria))
            .collect::<Vec<_>>()
            .join("\n"),
        Body::PointOfContact(_) => String::new(),
        Body::Notice(n) => notice_details(n),
    }
}

fn notice_details(n: &pb::Notice) -> String {
    use pb::notice::Template;
    let mut lines = vec![format!("Category: {}.", n.category)];
    if !n.severity.is_empty() {
        lines.push(format!("Severity: {}.", n.severity));
    }
    match &n.template {
        Some(Template::RequestForAssistance(r)) => {
            lines.push(format!("Incident: {}", r.incident_summary));
            lines.push(format!("Affected sector: {}.", r.affected_sector));
            lines.push(format!("Assistance requested: {}", r.assistance_requested));
            lines.push(format!("Respond by {}.", r.respond_by));
        }
        Some(Template::ConsultationRequest(r)) => {
            lines.push(format!("Topic: {}.", r.topic));
            lines.extend(r.questions.iter().map(|q| format!("Question: {q}")));
            if !r.proposed_date.is_empty() {
                lines.push(format!("Proposed date: {}.", r.proposed_date));
            }
            lines.push(format!("Respond by {}.", r.respond_by));
        }
        Some(Template::IncidentNotification(r)) => {
            lines.push(format!("Incident: {}", r.incident_summary));
            lines.push(format!(
                "Affected sectors: {}.",
                r.affected_sectors.join(", ")
            ));
            lines.push(format!(
                "Detected at {}; status {}.",
                r.detected_at, r.status
            ));
            if !r.impact.is_empty() {
                lines.push(format!("Impact: {}", r.impact));
            }
        }
        None => {}
    }
    if !n.ack_deadline.is_empty() {
        lines.push(format!("Acknowledge by {}.", n.ack_deadline));
    }
    lines.join("\n")
}

/// Non-empty parts separated by a blank line.
fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The typed body as the extension carries it: one key naming the kind, its value in the
/// canonical JSON of the body's message, exactly as in a `SubmissionContent`'s JSON.
fn body_json(body: &Body) -> Value {
    let alone = pb::SubmissionContent {
        body: Some(body.clone()),
        ..Default::default()
    };
    serde_json::to_value(alone).unwrap_or_default()
}
