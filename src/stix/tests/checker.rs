//! The checker refuses each rule of STIX 2.1 it checks, broken one at a time in a valid bundle.
use serde_json::{Value, json};

use super::{HUB, assert_conforms, every_kind};
use crate::stix::{Mapper, check::check_bundle, ext, tlp};

/// A valid bundle broken in one place, and words the checker's report must contain.
#[test]
fn the_checker_refuses_each_broken_rule() {
    let m = Mapper::new(HUB);
    let (good, skipped) =
        m.submissions_bundle(uuid::Uuid::new_v4(), &every_kind(), super::received());
    assert_eq!(skipped.len(), 1, "the TLP:RED notice: {skipped:?}");
    assert_conforms(&good);
    let find = |b: &Value, t: &str| {
        b["objects"]
            .as_array()
            .unwrap()
            .iter()
            .position(|o| o["type"] == t)
            .unwrap()
    };
    type Breaker = Box<dyn Fn(&mut Value)>;
    let note = find(&good, "note");
    let report = find(&good, "report");
    let marking = find(&good, "marking-definition");
    let cases: Vec<(Breaker, &str)> = vec![
        (
            Box::new(move |b| b["objects"][note]["id"] = json!("note--1234")),
            "RFC 4122",
        ),
        (
            Box::new(move |b| {
                b["objects"][note]["id"] = json!("report--6ba7b810-9dad-41d1-80b4-00c04fd430c8")
            }),
            "must be note--",
        ),
        (
            Box::new(move |b| b["objects"][note]["spec_version"] = json!("2.0")),
            "spec_version",
        ),
        (
            Box::new(move |b| {
                b["objects"][note]
                    .as_object_mut()
                    .unwrap()
                    .remove("content");
            }),
            "missing required content",
        ),
        (
            Box::new(move |b| {
                b["objects"][report]
                    .as_object_mut()
                    .unwrap()
                    .remove("published");
            }),
            "missing required published",
        ),
        (
            Box::new(move |b| b["objects"][report]["object_refs"] = json!([])),
            "object_refs must not be empty",
        ),
        (
            Box::new(move |b| b["objects"][note]["modified"] = json!("2026-11-23T22:14:00Z")),
            "millisecond",
        ),
        (
            Box::new(move |b| {
                b["objects"][note]["created"] = json!("2026-11-23T22:14:00.123+00:00")
            }),
            "millisecond",
        ),
        (
            Box::new(move |b| b["objects"][note]["created"] = json!("2027-01-01T00:00:00.000Z")),
            "is after modified",
        ),
        (
            Box::new(move |b| {
                b["objects"][note]["created_by_ref"] =
                    json!("identity--6ba7b810-9dad-41d1-80b4-00c04fd430c8")
            }),
            "not in the bundle",
        ),
        (
            Box::new(move |b| {
                b["objects"][note]["object_refs"] = json!([
                    tlp::TLP2_MARKINGS[0].id,
                    "note--6ba7b810-9dad-41d1-80b4-00c04fd430c8"
                ])
            }),
            "not in the bundle",
        ),
        (
            Box::new(move |b| {
                b["objects"][note]["object_marking_refs"] =
                    json!(["marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"])
            }),
            "official TLP 2.0",
        ),
        (
            Box::new(move |b| b["objects"][marking]["name"] = json!("TLP:PINK")),
            "differs from the published",
        ),
        (
            Box::new(move |b| b["objects"][note]["Colour"] = json!("x")),
            "not allowed",
        ),
        (
            Box::new(move |b| b["objects"][note]["revoked"] = json!("yes")),
            "boolean",
        ),
        (
            Box::new(move |b| {
                let dup = b["objects"][note].clone();
                b["objects"].as_array_mut().unwrap().push(dup);
            }),
            "same id and version",
        ),
        (
            Box::new(move |b| {
                b["objects"][report]["external_references"] = json!([{ "source_name": "x" }])
            }),
            "needs description",
        ),
        (
            Box::new(|b| {
                let o = b["objects"].as_array_mut().unwrap();
                o.retain(|o| o["type"] != "extension-definition");
            }),
            "not defined in the bundle",
        ),
        (
            Box::new(|b| b["type"] = json!("collection")),
            "bundle: type",
        ),
        (
            Box::new(move |b| b["objects"][note]["extensions"][ext::id()]["tags"] = json!([])),
            "empty list",
        ),
    ];
    for (i, (breaker, words)) in cases.into_iter().enumerate() {
        let mut b = good.clone();
        breaker(&mut b);
        let problems = check_bundle(&b);
        assert!(
            problems.iter().any(|p| p.contains(words)),
            "case {i}: expected a problem with {words:?}, got {problems:#?}"
        );
    }
}
