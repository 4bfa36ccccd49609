//! The cbm-hub property extension: hub data that STIX 2.1 has no property for (the submission
//! envelope, the typed body, a notice's severity, an acknowledgement) carried on the mapped
//! objects under `extensions`, as STIX 2.1 prefers over custom `x_` properties.
//!
//! Its definition and the identity that authors it are the same on every hub, so a consumer
//! recognises the extension by one fixed id.
use serde_json::{Value, json};
use uuid::Uuid;

/// `created`/`modified` of the objects this mapping defines itself rather than takes from a
/// submission (the extension definition, member identities, countries): fixed, so every bundle
/// carries byte-identical versions of them and no consumer sees spurious new versions.
pub const EPOCH: &str = "2026-01-01T00:00:00.000Z";

/// `modified` of the extension definition's current version (1.1.0: `revocation_reason`;
/// 1.2.0: the provenance of signed submissions); a changed definition is a new version, so
/// consumers replace the one they hold.
pub const DEFINITION_MODIFIED: &str = "2026-12-02T00:00:00.000Z";

fn uuid(name: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, name.as_bytes())
}

/// `extension-definition--...` of the cbm-hub property extension.
pub fn id() -> String {
    format!(
        "extension-definition--{}",
        uuid("urn:cbm-hub:stix:extension:submission:1")
    )
}

/// The `identity` of the cbm-hub software, the author of the extension definition.
pub fn author_id() -> String {
    format!("identity--{}", uuid("urn:cbm-hub:stix:identity:cbm-hub"))
}

pub fn author() -> Value {
    json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": author_id(),
        "created": EPOCH,
        "modified": EPOCH,
        "name": "cbm-hub",
        "description": "The cbm-hub exchange for cyber confidence-building measures.",
        "identity_class": "system",
    })
}

pub fn definition() -> Value {
    json!({
        "type": "extension-definition",
        "spec_version": "2.1",
        "id": id(),
        "created": EPOCH,
        "modified": DEFINITION_MODIFIED,
        "created_by_ref": author_id(),
        "name": "cbm-hub submission",
        "description": "Hub data of an object mapped from cbm-hub: the submission envelope and typed body, a notice's severity, an acknowledgement, a member's state.",
        "schema": SCHEMA,
        "version": "1.2.0",
        "extension_types": ["property-extension"],
    })
}

/// The extension's normative definition, as plain text (STIX 2.1 allows a URL or text).
const SCHEMA: &str = "Property extension. On objects mapped from a submission: hub (hub id), \
submission_id, revision, kind, publisher (member id), state, status (active|withdrawn), \
content_hash, sequence (feed sequence of the revision), and when the content is visible: \
language, tlp, recipients, community, cbm_references, tags, review_by, body (the typed body as in \
the cbm.v1 SubmissionContent JSON: one key naming the kind), withdrawal_reason; on incidents \
also severity and severity_schema (the sender's incident-severity-schema submission id). On a \
revoked object without content: revocation_reason (withdrawn: by the publisher, with \
content_hash and withdrawal_reason; audience_narrowed: no longer shared with this member; \
replaced: the submission continues as an object of another type). On \
acknowledgement notes: notice_id, notice_revision, member, state, contact_ids, reply, \
acknowledged_at, deadline, on_time. On member identities: member, state. On objects of a \
submission its publisher signed: signed_content (base64 of the protobuf encoding of the \
cbm.v1 SubmissionContent, the exact bytes signed; its SHA-256 is content_hash), signature \
(base64 COSE_Sign1, RFC 9052, detached payload, signer chain in x5chain, RFC 9360), created_at \
and updated_at (the hub's RFC 3339 instants), and receipt (the hub's cbm.v1 Receipt, proto \
field names: its Ed25519 signature, an RFC 6962 inclusion proof of the change's audit entry \
and the signed checkpoint). On an object its publisher withdrew with a signature (the publisher's revoked object, and every reader's revocation with revocation_reason withdrawn): signed_statement (the withdrawal statement, UTF-8, the exact bytes signed) instead of signed_content, with signature, created_at, updated_at and receipt. See proto/cbm/v1 and README \"Proving what was said\" of cbm-hub.";

/// An extension block holding `props`, without empty values: STIX 2.1 forbids empty lists in
/// place of an absent property, and an empty string says no more than its absence.
pub fn block(props: serde_json::Map<String, Value>) -> Value {
    let mut inner = serde_json::Map::new();
    inner.insert("extension_type".into(), json!("property-extension"));
    inner.extend(props);
    inner.retain(|_, v| crate::convert::prune_empty(v));
    let mut ext = serde_json::Map::new();
    ext.insert(id(), Value::Object(inner));
    Value::Object(ext)
}
