//! STIX 2.1 output for CSIRT tools: what a member received from the hub (feed changes, listed
//! submissions) as STIX 2.1 bundles, TLP labels as references to the official TLP 2.0
//! marking definitions.
//!
//! Pure mapping: no tonic, no I/O. It maps only what it is handed, which the hub has already
//! filtered to the caller's audience; it never fetches or adds anything else, and it never
//! exports TLP:RED (`domain.md`: never exported), on any path.
//!
//! | hub | STIX |
//! |---|---|
//! | publishing member | `identity` (organization), `location` + `located-at` for an ISO state |
//! | policy document, terminology list, CI approach, severity schema | `report` |
//! | point of contact | `identity` with `roles` and `contact_information` |
//! | notice `incident_notification` | `incident` |
//! | any other notice | `note` |
//! | acknowledgement | `note` by the acknowledging member |
//! | revision | the same id with a new `modified` |
//! | withdrawal, narrowed audience | the printed object with `revoked: true` ([`memory`]) |
//! | TLP:RED content | nothing |
//!
//! Identifiers are UUID v5 over the hub id and the submission id, so every member of a hub, and
//! every run, names a submission by the same STIX id. Hub data that STIX has no property for
//! (envelope, typed body, severity) travels in a property extension defined in [`ext`].
pub mod check;
pub mod ext;
mod feed;
pub mod memory;
mod objects;
pub mod provenance;
#[cfg(test)]
mod tests;
pub mod tlp;

use std::collections::HashSet;

pub use feed::FeedOutput;

use serde_json::{Value, json};
use time::{OffsetDateTime, UtcOffset, format_description::well_known::Rfc3339};
use uuid::Uuid;

use crate::pb;

/// Why a hub message could not be mapped; names the offending field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StixError {
    #[error("{field}: {value:?} is not an RFC 3339 instant")]
    Timestamp { field: String, value: String },
    #[error("{field}: {value:?} is not a TLP 2.0 label")]
    Tlp { field: String, value: String },
    #[error("{field}: missing")]
    Missing { field: String },
    #[error("{field}: unknown value {value:?}")]
    Unknown { field: String, value: String },
    #[error("{field}: TLP:RED is never exported")]
    Red { field: String },
}

/// Root of every identifier this mapping derives (UUID v5 of a URL naming the mapping).
fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:cbm-hub:stix:2.1")
}

/// Maps hub messages of one hub into STIX objects.
#[derive(Debug, Clone)]
pub struct Mapper {
    /// Names the hub in every derived identifier, so that two hubs never share an id.
    hub_id: String,
}

impl Mapper {
    pub fn new(hub_id: impl Into<String>) -> Self {
        Mapper {
            hub_id: hub_id.into(),
        }
    }

    pub fn hub_id(&self) -> &str {
        &self.hub_id
    }

    /// `type--uuid`, the UUID v5 of the hub id and `key`.
    pub fn id(&self, stix_type: &str, key: &str) -> String {
        let name = format!("{}\n{key}", self.hub_id);
        format!(
            "{stix_type}--{}",
            Uuid::new_v5(&namespace(), name.as_bytes())
        )
    }

    /// One bundle of submissions (latest revisions, as `List` returns them), with what could
    /// not be mapped and why (TLP:RED is never exported). A withdrawn submission without content
    /// is revoked as every type its kind allows, dated `now` when it has no `updated_at`.
    pub fn submissions_bundle(
        &self,
        bundle_id: Uuid,
        submissions: &[pb::Submission],
        now: OffsetDateTime,
    ) -> (Value, Vec<String>) {
        let mut b = Bundle::new(format!("bundle--{bundle_id}"));
        let mut skipped = Vec::new();
        for (i, s) in submissions.iter().enumerate() {
            // Each into its own bundle, merged only when complete: nothing of a refused one.
            let mut one = Bundle::new(String::new());
            match self.listed(&mut one, s, &format!("submissions[{i}]"), now) {
                Ok(()) => b.absorb(one),
                Err(e) => skipped.push(format!("submission {}: {e}", s.id)),
            }
        }
        (b.finish(), skipped)
    }

    fn listed(
        &self,
        b: &mut Bundle,
        s: &pb::Submission,
        field: &str,
        now: OffsetDateTime,
    ) -> Result<(), StixError> {
        let revoked = match s.status.as_str() {
            "active" => false,
            "withdrawn" => true,
            other => {
                return Err(StixError::Unknown {
                    field: format!("{field}.status"),
                    value: other.into(),
                });
            }
        };
        match &s.content {
            Some(c) => self
                .submission(b, s, c, &submission_key(&s.id, 0), revoked, field)
                .map(drop),
            None if revoked => {
                let at = match s.updated_at.as_str() {
                    "" => now,
                    t => parse_time(&format!("{field}.updated_at"), t)?,
                };
                let t = objects::Tombstone {
                    s,
                    reason: "withdrawn",
                    modified: feed::later(at, field, &s.created_at, None)?,
                    field,
                };
                self.blind_revocation(b, &t, 0)
            }
            None => Err(StixError::Missing {
                field: format!("{field}.content"),
            }),
        }
    }

    /// The publishing member as an `identity`, with its state as a `location` when the state is
    /// an ISO 3166-1 alpha-2 code (organisations such as a secretariat have none). Returns the
    /// identity id.
    fn member(&self, b: &mut Bundle, member: &str, state: &str) -> String {
        let id = self.id("identity", &format!("member/{member}"));
        if b.has(&id) {
            return id;
        }
        b.push(json!({
            "type": "identity",
            "spec_version": "2.1",
            "id": id,
            "created": ext::EPOCH,
            "modified": ext::EPOCH,
            "name": member,
            "description": format!("Member {member} of cbm-hub {}, state or organisation {state}.", self.hub_id),
            "identity_class": "organization",
            "extensions": ext::block(props(json!({ "member": member, "state": state }))),
        }));
        if state.len() == 2 && state.bytes().all(|c| c.is_ascii_uppercase()) {
            let location = self.id("location", &format!("country/{state}"));
            if !b.has(&location) {
                b.push(json!({
                    "type": "location",
                    "spec_version": "2.1",
                    "id": location,
                    "created": ext::EPOCH,
                    "modified": ext::EPOCH,
                    "name": state,
                    "country": state,
                }));
            }
            b.push(json!({
                "type": "relationship",
                "spec_version": "2.1",
                "id": self.id("relationship", &format!("located-at/{member}/{state}")),
                "created": ext::EPOCH,
                "modified": ext::EPOCH,
                "relationship_type": "located-at",
                "source_ref": id,
                "target_ref": location,
            }));
        }
        id
    }
}

/// Collects the objects of one bundle: each id once, the TLP marking definitions it references
/// first, then the extension definition and its author, then the mapped objects.
pub(crate) struct Bundle {
    id: String,
    objects: Vec<Value>,
    ids: HashSet<String>,
    markings: Vec<&'static tlp::Tlp2Marking>,
}

impl Bundle {
    fn new(id: String) -> Self {
        Bundle {
            id,
            objects: Vec::new(),
            ids: HashSet::new(),
            markings: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Adds the objects and markings of `other` (its id is dropped).
    fn absorb(&mut self, other: Bundle) {
        for o in other.objects {
            self.push(o);
        }
        for m in other.markings {
            self.mark(m);
        }
    }

    fn has(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    fn push(&mut self, object: Value) {
        let id = object["id"].as_str().unwrap_or_default().to_string();
        if self.ids.insert(id) {
            self.objects.push(object);
        }
    }

    /// Records that an object references this marking, so that its definition is included.
    fn mark(&mut self, m: &'static tlp::Tlp2Marking) -> &'static str {
        if !self.markings.contains(&m) {
            self.markings.push(m);
        }
        m.id
    }

    fn finish(mut self) -> Value {
        self.markings.sort_by_key(|m| m.id);
        let mut objects: Vec<Value> = self.markings.iter().map(|m| tlp::object(m)).collect();
        if !self.objects.is_empty() {
            objects.push(ext::author());
            objects.push(ext::definition());
        }
        objects.append(&mut self.objects);
        json!({ "type": "bundle", "id": self.id, "objects": objects })
    }
}

/// The properties of a JSON object literal (for [`ext::block`]).
pub(crate) fn props(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// The id key of a submission's object: generation 0 is the submission itself; a later
/// generation names the object shown again after a revocation (see [`memory::Seen`]).
pub(crate) fn submission_key(submission: &str, generation: u32) -> String {
    match generation {
        0 => format!("submission/{submission}"),
        g => format!("submission/{submission}/generation/{g}"),
    }
}

/// An RFC 3339 instant of the hub; the error names `field`.
pub(crate) fn parse_time(field: &str, value: &str) -> Result<OffsetDateTime, StixError> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|_| StixError::Timestamp {
        field: field.into(),
        value: value.into(),
    })
}

/// A STIX timestamp: UTC, `Z`, exactly millisecond precision (truncated).
pub(crate) fn stix_time(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(UtcOffset::UTC)
        .format(&format)
        .expect("a UTC instant formats")
}

/// An RFC 3339 instant of the hub as a STIX timestamp.
pub fn timestamp(field: &str, value: &str) -> Result<String, StixError> {
    parse_time(field, value).map(stix_time)
}
