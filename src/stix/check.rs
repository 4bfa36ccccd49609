//! A checker of STIX 2.1 bundles, written from the STIX 2.1 specification (OASIS Standard,
//! 10 June 2021) and the TLP 2.0 extension definition, for the object types this mapping
//! produces. It reports every problem found, each naming the object and property.
//!
//! Checked: bundle shape (2.1: `type`, `id`, `objects`); identifiers `type--UUID` with the UUID
//! of RFC 4122 form and the prefix equal to the object's type; `spec_version` "2.1"; common and
//! per-type required properties; timestamps (RFC 3339, UTC `Z`; `created`/`modified` exactly to
//! the millisecond); `created` <= `modified`; one version per (id, modified); every `*_ref` and
//! `*_refs` resolving to an object of the bundle of a matching type; markings that are exactly
//! the official TLP 2.0 ones; property names; extension blocks naming an extension definition;
//! external references.
use std::collections::HashMap;

use serde_json::{Map, Value};

use super::tlp;

/// The types this checker knows the required properties of.
const REQUIRED: &[(&str, &[&str])] = &[
    ("identity", &["name"]),
    ("report", &["name", "published", "object_refs"]),
    ("note", &["content", "object_refs"]),
    ("incident", &["name"]),
    ("location", &[]),
    (
        "relationship",
        &["relationship_type", "source_ref", "target_ref"],
    ),
    (
        "extension-definition",
        &[
            "created_by_ref",
            "name",
            "schema",
            "version",
            "extension_types",
        ],
    ),
    ("marking-definition", &[]),
];

/// Every problem of a bundle (empty: it conforms).
pub fn check_bundle(bundle: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(b) = bundle.as_object() else {
        return vec!["bundle: not a JSON object".into()];
    };
    if b.get("type").and_then(Value::as_str) != Some("bundle") {
        problems.push("bundle: type must be \"bundle\"".into());
    }
    check_id(b.get("id"), "bundle", "bundle", &mut problems);
    let Some(objects) = b.get("objects").and_then(Value::as_array) else {
        problems.push("bundle: objects must be a list".into());
        return problems;
    };
    let mut types: HashMap<&str, &str> = HashMap::new();
    let mut versions: HashMap<(&str, &str), usize> = HashMap::new();
    for o in objects {
        if let (Some(id), Some(t)) = (
            o.get("id").and_then(Value::as_str),
            o.get("type").and_then(Value::as_str),
        ) {
            types.insert(id, t);
            let modified = o
                .get("modified")
                .or_else(|| o.get("created"))
                .and_then(Value::as_str)
                .unwrap_or("");
            *versions.entry((id, modified)).or_default() += 1;
        }
    }
    for ((id, modified), n) in versions {
        if n > 1 {
            problems.push(format!(
                "{id}: {n} objects share the same id and version {modified}"
            ));
        }
    }
    for (i, o) in objects.iter().enumerate() {
        let Some(o) = o.as_object() else {
            problems.push(format!("objects[{i}]: not a JSON object"));
            continue;
        };
        check_object(o, &format!("objects[{i}]"), &types, &mut problems);
    }
    problems
}

fn check_object(
    o: &Map<String, Value>,
    at: &str,
    types: &HashMap<&str, &str>,
    problems: &mut Vec<String>,
) {
    let t = o.get("type").and_then(Value::as_str).unwrap_or("");
    let at = format!(
        "{at} ({})",
        o.get("id").and_then(Value::as_str).unwrap_or("no id")
    );
    let Some(required) = REQUIRED.iter().find(|(name, _)| *name == t).map(|r| r.1) else {
        problems.push(format!("{at}: unknown or missing type {t:?}"));
        return;
    };
    check_id(o.get("id"), t, &at, problems);
    if o.get("spec_version").and_then(Value::as_str) != Some("2.1") {
        problems.push(format!("{at}: spec_version must be \"2.1\""));
    }
    // Marking definitions are never versioned: no `modified` (STIX 2.1, 7.2.1).
    let mut common = vec!["created"];
    if t != "marking-definition" {
        common.push("modified");
    }
    for p in common.iter().chain(required) {
        match o.get(*p) {
            None | Some(Value::Null) => problems.push(format!("{at}: missing required {p}")),
            Some(Value::Array(a)) if a.is_empty() => {
                problems.push(format!("{at}: {p} must not be empty"))
            }
            Some(Value::String(s)) if s.is_empty() => {
                problems.push(format!("{at}: {p} must not be empty"))
            }
            _ => {}
        }
    }
    for (name, value) in o {
        if !valid_property_name(name) {
            problems.push(format!("{at}: property name {name:?} is not allowed"));
        }
        check_timestamps(name, value, &at, problems);
    }
    if let (Some(c), Some(m)) = (
        o.get("created").and_then(Value::as_str),
        o.get("modified").and_then(Value::as_str),
    ) && c > m
    {
        // Same format and zone, so text order is time order.
        problems.push(format!("{at}: created {c} is after modified {m}"));
    }
    for p in ["revoked"] {
        if o.get(p).is_some_and(|v| !v.is_boolean()) {
            problems.push(format!("{at}: {p} must be a boolean"));
        }
    }
    check_strings_list(o, "labels", &at, problems);
    if let Some(path) = empty_list(&Value::Object(o.clone()), "") {
        problems.push(format!(
            "{at}: {path} is an empty list (STIX 2.1 forbids them)"
        ));
    }
    check_refs(&Value::Object(o.clone()), &at, types, problems);
    check_markings(o, &at, problems);
    check_extensions(o, &at, types, problems);
    check_external_references(o, &at, problems);
    match t {
        "marking-definition" => check_marking_definition(o, &at, problems),
        "location" => {
            let has = |p: &str| o.contains_key(p);
            if !(has("region") || has("country") || (has("latitude") && has("longitude"))) {
                problems.push(format!(
                    "{at}: a location needs region, country, or latitude and longitude"
                ));
            }
        }
        "extension-definition" => {
            const TYPES: &[&str] = &[
                "new-sdo",
                "new-sco",
                "new-sro",
                "property-extension",
                "toplevel-property-extension",
            ];
            for v in o
                .get("extension_types")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !v.as_str().is_some_and(|v| TYPES.contains(&v)) {
                    problems.push(format!("{at}: extension_types has {v}"));
                }
            }
        }
        _ => {}
    }
}

/// The path of the first empty list at any depth.
fn empty_list(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::Array(a) if a.is_empty() => Some(path.to_string()),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| empty_list(v, &format!("{path}[{i}]"))),
        Value::Object(o) => o.iter().find_map(|(k, v)| {
            let sub = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            empty_list(v, &sub)
        }),
        _ => None,
    }
}

/// `type--UUID`, the prefix being the object's type and the UUID of RFC 4122 form.
fn check_id(id: Option<&Value>, t: &str, at: &str, problems: &mut Vec<String>) {
    let Some(id) = id.and_then(Value::as_str) else {
        problems.push(format!("{at}: missing id"));
        return;
    };
    match id.split_once("--") {
        Some((prefix, uuid)) if prefix == t => {
            let valid = uuid.len() == 36
                && uuid::Uuid::parse_str(uuid)
                    .is_ok_and(|u| u.get_variant() == uuid::Variant::RFC4122);
            if !valid {
                problems.push(format!("{at}: {id:?} does not end in an RFC 4122 UUID"));
            }
        }
        _ => problems.push(format!("{at}: id {id:?} must be {t}--<UUID>")),
    }
}

/// STIX property names: a-z, 0-9 and `_`, 3..=250 characters (type and id are shorter but
/// predefined; `extensions` keys are checked separately).
fn valid_property_name(name: &str) -> bool {
    matches!(name, "id")
        || ((3..=250).contains(&name.len())
            && name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'))
}

/// Timestamps: `created`, `modified`, `published` and any `*_time` use
/// `YYYY-MM-DDTHH:MM:SS[.s+]Z`; `created`/`modified` exactly to the millisecond.
fn check_timestamps(name: &str, value: &Value, at: &str, problems: &mut Vec<String>) {
    let millis = matches!(name, "created" | "modified");
    if !(millis || name == "published" || name.ends_with("_time")) {
        return;
    }
    let Some(s) = value.as_str() else {
        problems.push(format!("{at}: {name} must be a timestamp string"));
        return;
    };
    if !is_timestamp(s, millis) {
        problems.push(format!(
            "{at}: {name} {s:?} is not a STIX timestamp{}",
            if millis {
                " with millisecond precision and Z"
            } else {
                ""
            }
        ));
    }
}

pub fn is_timestamp(s: &str, exactly_millis: bool) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[b.len() - 1] == b'Z';
    if !shape {
        return false;
    }
    let fraction = &s[19..s.len() - 1];
    let fraction_ok = match fraction.strip_prefix('.') {
        None => fraction.is_empty() && !exactly_millis,
        Some(f) => {
            !f.is_empty()
                && f.bytes().all(|c| c.is_ascii_digit())
                && (!exactly_millis || f.len() == 3)
        }
    };
    fraction_ok
        && time::PrimitiveDateTime::parse(
            &s[..19],
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        )
        .is_ok()
}

fn check_strings_list(o: &Map<String, Value>, p: &str, at: &str, problems: &mut Vec<String>) {
    if let Some(v) = o.get(p) {
        let ok = v.as_array().is_some_and(|a| {
            !a.is_empty() && a.iter().all(|s| s.as_str().is_some_and(|s| !s.is_empty()))
        });
        if !ok {
            problems.push(format!("{at}: {p} must be a non-empty list of strings"));
        }
    }
}

/// Every `*_ref` / `*_refs`, at any depth, names an object of this bundle (or an official TLP
/// 2.0 marking); `created_by_ref` names an identity.
fn check_refs(v: &Value, at: &str, types: &HashMap<&str, &str>, problems: &mut Vec<String>) {
    let Value::Object(o) = v else {
        if let Value::Array(a) = v {
            a.iter().for_each(|v| check_refs(v, at, types, problems));
        }
        return;
    };
    for (name, value) in o {
        let targets: Vec<&Value> = if name.ends_with("_ref") {
            vec![value]
        } else if name.ends_with("_refs") {
            match value.as_array() {
                Some(a) if !a.is_empty() => a.iter().collect(),
                _ => {
                    problems.push(format!("{at}: {name} must be a non-empty list"));
                    continue;
                }
            }
        } else {
            check_refs(value, at, types, problems);
            continue;
        };
        for target in targets {
            let Some(id) = target.as_str() else {
                problems.push(format!("{at}: {name} holds a non-string {target}"));
                continue;
            };
            let found = types
                .get(id)
                .copied()
                .or_else(|| tlp::by_id(id).map(|_| "marking-definition"));
            match found {
                None => problems.push(format!("{at}: {name} {id} is not in the bundle")),
                Some(t) if name == "created_by_ref" && t != "identity" => {
                    problems.push(format!("{at}: created_by_ref {id} is not an identity"))
                }
                Some(t) if name == "object_marking_refs" && t != "marking-definition" => problems
                    .push(format!(
                        "{at}: object_marking_refs {id} is not a marking-definition"
                    )),
                Some(_) => {}
            }
        }
    }
}

/// Markings must be the official TLP 2.0 definitions, at most one TLP marking per object.
fn check_markings(o: &Map<String, Value>, at: &str, problems: &mut Vec<String>) {
    let Some(refs) = o.get("object_marking_refs").and_then(Value::as_array) else {
        return;
    };
    let mut tlp_count = 0;
    for r in refs {
        match r.as_str().and_then(tlp::by_id) {
            Some(_) => tlp_count += 1,
            None => problems.push(format!(
                "{at}: marking {r} is not an official TLP 2.0 marking definition"
            )),
        }
    }
    if tlp_count > 1 {
        problems.push(format!("{at}: more than one TLP marking"));
    }
}

/// A marking definition in the bundle is byte for byte the published TLP 2.0 object.
fn check_marking_definition(o: &Map<String, Value>, at: &str, problems: &mut Vec<String>) {
    let id = o.get("id").and_then(Value::as_str).unwrap_or("");
    match tlp::by_id(id) {
        Some(m) if Value::Object(o.clone()) == tlp::object(m) => {}
        Some(m) => problems.push(format!(
            "{at}: differs from the published {} marking definition",
            m.label
        )),
        None => problems.push(format!("{at}: not one of the TLP 2.0 marking definitions")),
    }
}

/// `extensions` keys are `extension-definition--UUID` (with `extension_type`) or the name of a
/// predefined extension; a definition in the bundle must list the extension type used.
fn check_extensions(
    o: &Map<String, Value>,
    at: &str,
    types: &HashMap<&str, &str>,
    problems: &mut Vec<String>,
) {
    let Some(exts) = o.get("extensions") else {
        return;
    };
    let Some(exts) = exts.as_object().filter(|e| !e.is_empty()) else {
        problems.push(format!("{at}: extensions must be a non-empty object"));
        return;
    };
    for (key, block) in exts {
        if !key.starts_with("extension-definition--") {
            continue;
        }
        check_id(
            Some(&Value::String(key.clone())),
            "extension-definition",
            at,
            problems,
        );
        let kind = block.get("extension_type").and_then(Value::as_str);
        if kind.is_none() {
            problems.push(format!("{at}: extension {key} has no extension_type"));
        }
        let known = types.contains_key(key.as_str()) || key == tlp::TLP2_EXTENSION;
        if !known {
            problems.push(format!(
                "{at}: extension {key} is not defined in the bundle"
            ));
        }
        for name in block.as_object().into_iter().flat_map(|b| b.keys()) {
            if !valid_property_name(name) {
                problems.push(format!("{at}: extension property {name:?} is not allowed"));
            }
        }
    }
}

/// External references need `source_name` and one of `description`, `url`, `external_id`.
fn check_external_references(o: &Map<String, Value>, at: &str, problems: &mut Vec<String>) {
    let Some(refs) = o.get("external_references") else {
        return;
    };
    let Some(refs) = refs.as_array().filter(|r| !r.is_empty()) else {
        problems.push(format!(
            "{at}: external_references must be a non-empty list"
        ));
        return;
    };
    for (i, r) in refs.iter().enumerate() {
        let has = |p: &str| {
            r.get(p)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        };
        if !has("source_name") {
            problems.push(format!("{at}: external_references[{i}] has no source_name"));
        }
        if !(has("description") || has("url") || has("external_id")) {
            problems.push(format!(
                "{at}: external_references[{i}] needs description, url or external_id"
            ));
        }
    }
}
