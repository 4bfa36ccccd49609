//! Reading messages of the contract from JSON and YAML: the canonical proto3 JSON mapping
//! (generated for `pb` by pbjson-build), plus a pass over the document guided by the schema of
//! `proto/` that does what a generated deserializer cannot:
//!
//! - **Files of the earlier form.** Before the canonical mapping, a oneof sat under its oneof's
//!   name (`body: {point_of_contact: {...}}`, a notice's `template: {...}`, an export line's
//!   `item: {...}`). Such a wrapper is lifted into its message, with a deprecation note, so that
//!   files and audit exports written by earlier versions are still read.
//! - **Two members of one oneof** (`policy_document` and `notice` in one file) are refused with
//!   both names and the oneof's, instead of the deserializer's "duplicate field".
//!
//! The schema is the descriptor set that build.rs compiles from `proto/` (the same that server
//! reflection serves), so the pass knows every oneof without a list of names to keep in step.
use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
};

use prost::Message;
use prost_types::{DescriptorProto, FieldDescriptorProto, field_descriptor_proto::Type};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A message type of the contract, with its full protobuf name.
pub trait Schema: DeserializeOwned {
    /// For example `cbm.v1.SubmissionContent`.
    const NAME: &'static str;
}

macro_rules! schema {
    ($($t:ident),* $(,)?) => {
        $(impl Schema for crate::pb::$t {
            const NAME: &'static str = concat!("cbm.v1.", stringify!($t));
        })*
    };
}

schema!(SubmissionContent, Framework, ExportItem);

/// A document read, and what was old-fashioned about it.
#[derive(Debug)]
pub struct Read<T> {
    pub message: T,
    /// Deprecation notes (one per kind of old wrapper), for stderr.
    pub notes: Vec<String>,
}

/// Reads `T` from a JSON value (a parsed JSON or YAML document). Errors name the path of the
/// field, as `notice.ack_deadline: ...`.
pub fn from_value<T: Schema>(mut value: Value) -> Result<Read<T>, String> {
    let mut notes = Vec::new();
    let schema = schema();
    let root = schema
        .messages
        .get(T::NAME)
        .ok_or_else(|| format!("{} is not a message of the contract", T::NAME))?;
    prepare(&schema, root, &mut value, "", &mut notes)?;
    let message = serde_path_to_error::deserialize(value).map_err(|e| {
        let mut why = e.inner().to_string();
        if why.contains("expected a string") {
            why.push_str(" (quote the value in YAML, for example \"+372 600 0000\" or \"1.0\")");
        }
        let path = e.path().to_string();
        if path == "." {
            why
        } else {
            format!("{path}: {why}")
        }
    })?;
    notes.sort();
    notes.dedup();
    Ok(Read { message, notes })
}

/// The messages of `proto/` by full name.
struct Pool {
    messages: HashMap<String, DescriptorProto>,
}

fn schema() -> Arc<Pool> {
    static POOL: OnceLock<Arc<Pool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let set = prost_types::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set compiled by build.rs decodes");
        let mut messages = HashMap::new();
        for file in set.file {
            let package = file.package.unwrap_or_default();
            for m in file.message_type {
                add(&mut messages, &package, m);
            }
        }
        Arc::new(Pool { messages })
    })
    .clone()
}

fn add(into: &mut HashMap<String, DescriptorProto>, scope: &str, m: DescriptorProto) {
    let name = format!("{scope}.{}", m.name());
    for nested in &m.nested_type {
        add(into, &name, nested.clone());
    }
    into.insert(name, m);
}

/// The field a JSON key names: its proto name or its lowerCamelCase JSON name.
fn field_named<'a>(m: &'a DescriptorProto, key: &str) -> Option<&'a FieldDescriptorProto> {
    m.field
        .iter()
        .find(|f| f.name() == key || f.json_name() == key)
}

/// The message type of a message field, as a key of [`Pool::messages`].
fn message_type(f: &FieldDescriptorProto) -> Option<&str> {
    (f.r#type() == Type::Message).then(|| f.type_name().trim_start_matches('.'))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Lifts old oneof wrappers and checks oneofs in `value`, a `m` message, then its sub-messages.
fn prepare(
    pool: &Pool,
    m: &DescriptorProto,
    value: &mut Value,
    path: &str,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let Value::Object(map) = value else {
        // Not an object: the deserializer names the type it expected.
        return Ok(());
    };
    lift_wrappers(m, map, path, notes)?;
    check_oneofs(m, map, path)?;
    for (key, v) in map.iter_mut() {
        let Some(f) = field_named(m, key) else {
            continue;
        };
        let Some(sub) = message_type(f).and_then(|t| pool.messages.get(t)) else {
            continue;
        };
        let here = join(path, key);
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    prepare(pool, sub, item, &format!("{here}[{i}]"), notes)?;
                }
            }
            v => prepare(pool, sub, v, &here, notes)?,
        }
    }
    Ok(())
}

/// The earlier form: `ONEOF: {MEMBER: value}` where the message has no field named ONEOF.
fn lift_wrappers(
    m: &DescriptorProto,
    map: &mut Map<String, Value>,
    path: &str,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    for (index, oneof) in m.oneof_decl.iter().enumerate() {
        let name = oneof.name();
        if field_named(m, name).is_some() || !map.contains_key(name) {
            continue;
        }
        let members: Vec<&FieldDescriptorProto> = m
            .field
            .iter()
            .filter(|f| f.oneof_index == Some(index as i32))
            .collect();
        let names = || {
            members
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let wrapper = map.remove(name).unwrap_or_default();
        let inner = match wrapper {
            Value::Object(inner) if inner.len() == 1 => inner,
            _ => {
                return Err(format!(
                    "{}: `{name}` is a oneof, not a field: write one of {} directly in {}",
                    join(path, name),
                    names(),
                    if path.is_empty() { "the file" } else { path }
                ));
            }
        };
        let (key, v) = inner.into_iter().next().unwrap_or_default();
        let Some(member) = members
            .iter()
            .find(|f| f.name() == key || f.json_name() == key)
        else {
            return Err(format!(
                "{}: {key:?} is not one of {}",
                join(path, name),
                names()
            ));
        };
        if map.contains_key(member.name()) || map.contains_key(member.json_name()) {
            return Err(format!(
                "{}: given twice, under `{name}` and directly",
                join(path, member.name())
            ));
        }
        notes.push(format!(
            "`{name}: {{{key}: ...}}` is the deprecated form of this file; write `{key}: ...` \
             directly in {} (the proto3 JSON mapping, as every protobuf library writes it)",
            if path.is_empty() {
                "the top level".to_string()
            } else {
                format!("`{}`", path.rsplit('.').next().unwrap_or(path))
            }
        ));
        map.insert(key, v);
    }
    Ok(())
}

/// At most one member of each oneof (a null member counts as absent, as the mapping says).
fn check_oneofs(m: &DescriptorProto, map: &Map<String, Value>, path: &str) -> Result<(), String> {
    for (index, oneof) in m.oneof_decl.iter().enumerate() {
        let given: Vec<&str> = m
            .field
            .iter()
            .filter(|f| f.oneof_index == Some(index as i32))
            .filter(|f| {
                [f.name(), f.json_name()]
                    .iter()
                    .any(|k| map.get(*k).is_some_and(|v| !v.is_null()))
            })
            .map(|f| f.name())
            .collect();
        if given.len() > 1 {
            return Err(format!(
                "{}: {} are members of the oneof `{}`: give only one",
                if path.is_empty() { "." } else { path },
                given.join(" and "),
                oneof.name()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::pb::{self, submission_content::Body};

    #[test]
    fn canonical_json_with_either_name_is_read() {
        let camel =
            json!({"title": "t", "cbmRefs": ["UN-CBM-1"], "pointOfContact": {"timeZone": "UTC"}});
        let r = from_value::<pb::SubmissionContent>(camel).unwrap();
        assert!(r.notes.is_empty());
        assert_eq!(r.message.cbm_refs, ["UN-CBM-1"]);
        match r.message.body {
            Some(Body::PointOfContact(p)) => assert_eq!(p.time_zone, "UTC"),
            other => panic!("{other:?}"),
        }
        let snake = json!({"title": "t", "point_of_contact": {"time_zone": "UTC"}});
        assert!(from_value::<pb::SubmissionContent>(snake).is_ok());
    }

    #[test]
    fn old_wrappers_are_lifted_with_a_note() {
        let old = json!({
            "title": "t",
            "body": {"notice": {"category": "consultation_request",
                "template": {"consultation_request": {"topic": "x"}}}}
        });
        let r = from_value::<pb::SubmissionContent>(old).unwrap();
        assert_eq!(r.notes.len(), 2, "{:?}", r.notes);
        assert!(r.notes.iter().any(|n| n.contains("`body: {notice: ...}`")));
        let Some(Body::Notice(n)) = r.message.body else {
            panic!()
        };
        assert!(matches!(
            n.template,
            Some(pb::notice::Template::ConsultationRequest(ref c)) if c.topic == "x"
        ));
        // An export line of an earlier version.
        let line = json!({"item": {"public_key": "AAE="}});
        let r = from_value::<pb::ExportItem>(line).unwrap();
        assert!(
            matches!(r.message.item, Some(pb::export_item::Item::PublicKey(ref k)) if k[..] == [0, 1])
        );
    }

    #[test]
    fn oneof_mistakes_name_the_oneof() {
        let two = json!({"policy_document": {}, "notice": {}});
        let e = from_value::<pb::SubmissionContent>(two).unwrap_err();
        assert!(
            e.contains("policy_document and notice are members of the oneof `body`"),
            "{e}"
        );
        let empty = json!({"body": {}});
        let e = from_value::<pb::SubmissionContent>(empty).unwrap_err();
        assert!(e.starts_with("body: `body` is a oneof, not a field"), "{e}");
        let wrong = json!({"notice": {"template": {"ping": {}}}});
        let e = from_value::<pb::SubmissionContent>(wrong).unwrap_err();
        assert!(
            e.starts_with("notice.template: \"ping\" is not one of"),
            "{e}"
        );
        let typo = json!({"titel": "t"});
        let e = from_value::<pb::SubmissionContent>(typo).unwrap_err();
        assert!(e.contains("unknown field `titel`"), "{e}");
    }
}
