//! Provenance in STIX: a signed submission's object carries, in the cbm-hub extension, the
//! exact bytes its publisher signed (`signed_content`, the protobuf encoding of the content),
//! the signature (`signature`, COSE_Sign1), the hub's instants as it recorded them
//! (`created_at`, `updated_at`) and, once the exporter fetched it, the hub's receipt
//! (`receipt`, the cbm.v1 Receipt in the proto3 JSON mapping with the proto field names). An
//! archive re-verifies it years later with `cbm-hub verify BUNDLE`: the signature over the
//! signed bytes, and that the STIX object is exactly what the hub maps from those bytes (so
//! that no readable property was edited after signing).
use base64::{Engine, engine::general_purpose::STANDARD};
use prost::Message;
use serde_json::{Map, Value, json};

use super::{Mapper, ext};
use crate::{
    pb,
    provenance::{offline::Check, statement},
};

/// The provenance properties of a signed submission's object (none when unsigned).
pub fn signed_props(s: &pb::Submission, c: &pb::SubmissionContent) -> Map<String, Value> {
    // A withdrawal's signature covers the withdrawal statement, not the content the revoked
    // object still shows: pairing it with the content's bytes would make a true signature
    // look forged.
    if s.status == "withdrawn" {
        return withdrawal_props(s);
    }
    if s.signature.is_empty() {
        return Map::new();
    }
    super::props(json!({
        "signed_content": STANDARD.encode(c.encode_to_vec()),
        "signature": STANDARD.encode(&s.signature),
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }))
}

/// The provenance properties of a signed withdrawal (none when unsigned): the statement its
/// publisher signed, on the publisher's revoked object and on every reader's revocation.
pub fn withdrawal_props(s: &pb::Submission) -> Map<String, Value> {
    if s.signature.is_empty() {
        return Map::new();
    }
    super::props(json!({
        "signed_statement": String::from_utf8_lossy(&statement::payload_of(s)),
        "signature": STANDARD.encode(&s.signature),
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }))
}

/// `lowerCamel` keys (pbjson's) as the proto field names, which STIX property names must be
/// (lowercase and underscores); the proto3 JSON mapping reads either.
fn snake_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let mut snake = String::new();
                    for ch in k.chars() {
                        if ch.is_ascii_uppercase() {
                            snake.push('_');
                            snake.push(ch.to_ascii_lowercase());
                        } else {
                            snake.push(ch);
                        }
                    }
                    (snake, snake_keys(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(snake_keys).collect()),
        other => other,
    }
}

/// The extension block of an object, if it has one.
fn extension(o: &Value) -> Option<&Map<String, Value>> {
    o.get("extensions")?.get(ext::id())?.as_object()
}

/// Puts `receipt` on the signed objects of its revision in `bundle` (a withdrawal revoked as
/// each type its kind allows shows as several); false if none is there.
pub fn attach_receipt(bundle: &mut Value, receipt: &pb::Receipt) -> bool {
    let Some(objects) = bundle.get_mut("objects").and_then(Value::as_array_mut) else {
        return false;
    };
    let mut attached = false;
    for o in objects {
        let matches = extension(o).is_some_and(|e| {
            e.get("submission_id").and_then(Value::as_str) == Some(&receipt.submission_id)
                && e.get("revision").and_then(Value::as_u64) == Some(u64::from(receipt.revision))
                && e.contains_key("signature")
        });
        if matches
            && let Some(e) = o
                .get_mut("extensions")
                .and_then(|x| x.get_mut(ext::id()))
                .and_then(Value::as_object_mut)
        {
            let value = serde_json::to_value(receipt).unwrap_or_default();
            e.insert("receipt".into(), snake_keys(value));
            attached = true;
        }
    }
    attached
}

/// Is `o` a signed object: a revision's (`signed_content`) or a withdrawal's
/// (`signed_statement`)?
fn is_signed(o: &Value) -> bool {
    extension(o)
        .is_some_and(|e| e.contains_key("signed_content") || e.contains_key("signed_statement"))
}

fn submission_id(o: &Value) -> Option<&str> {
    extension(o)?.get("submission_id")?.as_str()
}

/// A signed submission from a bundle (the one with hub id `id`, or the only signed one), its
/// receipt if the bundle carries it, and whether the objects are the hub's mapping of what was
/// signed. One change may show as several objects (a withdrawal revoked as each STIX type its
/// kind allows): each must be.
pub fn from_bundle(
    bundle: &Value,
    id: Option<&str>,
) -> Result<(pb::Submission, Option<pb::Receipt>, Check), String> {
    let objects = bundle
        .get("objects")
        .and_then(Value::as_array)
        .ok_or("not a STIX bundle: no objects")?;
    let signed: Vec<&Value> = objects
        .iter()
        .filter(|o| is_signed(o))
        .filter(|o| id.is_none_or(|id| submission_id(o) == Some(id)))
        .collect();
    let mut ids: Vec<&str> = signed.iter().filter_map(|o| submission_id(o)).collect();
    ids.sort_unstable();
    ids.dedup();
    if signed.is_empty() {
        return Err(
            "no signed submission in the bundle (x-cbm extension signed_content or signed_statement)"
                .into(),
        );
    }
    if ids.len() > 1 {
        return Err(format!(
            "{} signed submissions; choose one with --id ({})",
            ids.len(),
            ids.join(", ")
        ));
    }
    // The one carrying the receipt, if any does.
    let object = signed
        .iter()
        .find(|o| extension(o).is_some_and(|e| e.contains_key("receipt")))
        .unwrap_or(&signed[0]);
    let e = extension(object).ok_or("no extension")?;
    // A field of another type is malformed, never read as empty or 0 (which could pass for
    // another revision's value).
    let text = |k: &str| match e.get(k) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("extension field {k}: not a string")),
    };
    let number = |k: &str| match e.get(k) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("extension field {k}: not a whole number")),
    };
    let bytes = |k: &str| {
        STANDARD
            .decode(text(k)?)
            .map_err(|err| format!("{k}: not base64: {err}"))
    };
    let withdrawal = e.contains_key("signed_statement");
    let content = if withdrawal {
        // What a withdrawal's signature covers is rebuilt from the object's own fields below.
        None
    } else {
        Some(
            pb::SubmissionContent::decode(bytes("signed_content")?.as_slice())
                .map_err(|err| format!("signed_content: not a cbm.v1 SubmissionContent: {err}"))?,
        )
    };
    let s = pb::Submission {
        id: text("submission_id")?,
        revision: u32::try_from(number("revision")?)
            .map_err(|_| "extension field revision: out of range".to_string())?,
        publisher: text("publisher")?,
        state: text("state")?,
        kind: text("kind")?,
        status: text("status")?,
        created_at: text("created_at")?,
        updated_at: text("updated_at")?,
        content_hash: text("content_hash")?,
        sequence: number("sequence")?,
        content,
        withdrawal_reason: text("withdrawal_reason")?,
        signature: bytes("signature")?.into(),
    };
    let receipt = match e.get("receipt") {
        Some(r) => Some(
            serde_json::from_value::<pb::Receipt>(r.clone())
                .map_err(|err| format!("receipt: {err}"))?,
        ),
        None => None,
    };
    let hub = text("hub")?;
    let check = if withdrawal {
        same_withdrawal(&signed, &s, &text("signed_statement")?, &hub)
    } else {
        signed
            .iter()
            .map(|o| same_mapping(o, &s, &hub))
            .find(|c| !c.ok)
            .unwrap_or_else(|| same_mapping(object, &s, &hub))
    };
    Ok((s, receipt, check))
}

/// Whether `objects` show the signed withdrawal `s` and nothing else: the statement each
/// carries is the one rebuilt from the submission id, revision and reason they name (which
/// the signature is then checked over), and each is exactly the hub's revocation for it. An
/// object that still shows content (the publisher's own copy) shows what a withdrawal's
/// signature does not cover.
fn same_withdrawal(objects: &[&Value], s: &pb::Submission, signed: &str, hub: &str) -> Check {
    let fail = |detail: String| Check {
        what: "content",
        ok: false,
        detail,
    };
    let rebuilt = statement::withdrawal(&s.id, s.revision, &s.withdrawal_reason);
    if s.status != "withdrawn" {
        return fail(format!(
            "the object carries a signed withdrawal statement but its status is {:?} (altered after signing)",
            s.status
        ));
    }
    for o in objects {
        let carried = extension(o)
            .and_then(|e| e.get("signed_statement")?.as_str())
            .unwrap_or("");
        if carried.as_bytes() != rebuilt.as_slice() || carried != signed {
            return fail(format!(
                "the signed statement is not the withdrawal of {} revision {} with reason {:?} that the object names (altered after signing)",
                s.id, s.revision, s.withdrawal_reason
            ));
        }
        if extension(o).is_some_and(|e| e.contains_key("body")) {
            return fail(
                "the object shows content, which a withdrawal's signature does not cover (it \
                 covers the statement: id, revision, reason); verify a reader's revocation of \
                 it, or the revision that published the content"
                    .into(),
            );
        }
        if let Err(d) = same_revocation(o, s, hub) {
            return fail(format!(
                "the STIX object differs from the hub's revocation for the signed withdrawal: {d} (altered after signing)"
            ));
        }
    }
    Check {
        what: "content",
        ok: true,
        detail: format!(
            "the STIX object is exactly the hub's revocation for the signed withdrawal statement (reason {:?})",
            s.withdrawal_reason
        ),
    }
}

/// Compares `object` with the hub's revocation of `s` under the object's own id, `modified`
/// and TLP marking (which a subscriber's memory chose, not the signed statement).
fn same_revocation(object: &Value, s: &pb::Submission, hub: &str) -> Result<(), String> {
    let id = object.get("id").and_then(Value::as_str).ok_or("no id")?;
    let modified = object
        .get("modified")
        .and_then(Value::as_str)
        .ok_or("no modified")?;
    let marking = object
        .get("object_marking_refs")
        .and_then(|m| m.get(0)?.as_str())
        .and_then(super::tlp::by_id)
        .and_then(|m| super::tlp::exportable(m.label))
        .ok_or("object_marking_refs: not an exportable TLP 2.0 marking")?;
    let t = super::objects::Tombstone {
        s,
        reason: "withdrawn",
        modified: modified.to_string(),
        field: "object",
    };
    let mut b = super::Bundle::new(String::new());
    Mapper::new(hub)
        .revocation(&mut b, &t, id, marking)
        .map_err(|e| e.to_string())?;
    let again = b
        .objects
        .iter()
        .find(|o| o.get("id").and_then(Value::as_str) == Some(id))
        .ok_or("the statement maps to another object")?;
    match changed(object, again) {
        None => Ok(()),
        Some(d) => Err(d),
    }
}

/// The properties in which `a` and `b` differ (the receipt, which the exporter adds, aside).
fn changed(a: &Value, b: &Value) -> Option<String> {
    let strip = |o: &Value| {
        let mut o = o.clone();
        if let Some(e) = o
            .get_mut("extensions")
            .and_then(|x| x.get_mut(ext::id()))
            .and_then(Value::as_object_mut)
        {
            e.remove("receipt");
        }
        o
    };
    let (a, b) = (strip(a), strip(b));
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return Some("the STIX object is not an object".into());
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let changed: Vec<&str> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(String::as_str)
        .collect();
    (!changed.is_empty()).then(|| format!("properties {}", changed.join(", ")))
}

/// Whether `object` is exactly what the hub maps from `s` (its receipt aside).
fn same_mapping(object: &Value, s: &pb::Submission, hub: &str) -> Check {
    let (mapped, _) = Mapper::new(hub).submissions_bundle(
        uuid::Uuid::nil(),
        std::slice::from_ref(s),
        time::OffsetDateTime::now_utc(),
    );
    let id = object.get("id");
    let again = mapped
        .get("objects")
        .and_then(Value::as_array)
        .and_then(|os| os.iter().find(|o| o.get("id") == id));
    let differs = match again {
        None => Some("the signed content maps to another object".to_string()),
        Some(again) => changed(object, again),
    };
    match differs {
        None => Check {
            what: "content",
            ok: true,
            detail: "the STIX object is exactly the hub's mapping of the signed content".into(),
        },
        Some(d) => Check {
            what: "content",
            ok: false,
            detail: format!(
                "the STIX object differs from the signed content: {d} (altered after signing)"
            ),
        },
    }
}
