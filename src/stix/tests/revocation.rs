//! Tombstones (a publisher's withdrawal, a narrowed audience), TLP:RED, acknowledgements and
//! changes that cannot be mapped, through a subscriber's memory. Expected results from
//! `domain.md` (a reader that loses access gets a withdrawal telling nothing of the new
//! revision; RED never appears in any STIX output) and STIX 2.1 (a revoked object keeps its id;
//! no version after a revocation; `modified` later than the version it replaces).
use serde_json::{Value, json};

use super::{HUB, assert_conforms, change, every_kind, mapped, received};
use crate::{
    pb,
    stix::{
        FeedOutput, Mapper, ext,
        memory::{Last, Memory},
        tlp,
    },
};

fn sample(id: &str) -> pb::Submission {
    every_kind().into_iter().find(|s| s.id == id).unwrap()
}

/// A narrowing tombstone as the hub sends it once issue 14 is in: these fields only.
fn narrowed(s: &pb::Submission) -> pb::FeedChange {
    pb::FeedChange {
        action: "withdrawn".into(),
        reason: "audience_narrowed".into(),
        acknowledgement: None,
        submission: Some(pb::Submission {
            id: s.id.clone(),
            publisher: s.publisher.clone(),
            state: s.state.clone(),
            kind: s.kind.clone(),
            status: "withdrawn".into(),
            created_at: s.created_at.clone(),
            sequence: s.sequence,
            revision: s.revision,
            ..Default::default()
        }),
    }
}

/// A narrowing tombstone as hubs before issue 14 send it: the new revision's envelope.
fn narrowed_with_new_envelope(s: &pb::Submission) -> pb::FeedChange {
    let mut c = narrowed(s);
    let t = c.submission.as_mut().unwrap();
    t.status = "active".into();
    t.revision += 1;
    t.updated_at = "2026-11-26T00:00:00Z".into();
    t.content_hash = "ee".repeat(32);
    c
}

/// A publisher's withdrawal as a reader other than the publisher gets it: the envelope only.
fn withdrawn(s: &pb::Submission) -> pb::FeedChange {
    let mut w = s.clone();
    w.status = "withdrawn".into();
    w.revision += 1;
    w.updated_at = "2026-11-25T00:00:00Z".into();
    w.content_hash = "cd".repeat(32);
    w.withdrawal_reason = "Sent in error".into();
    w.content = None;
    change("withdrawn", w)
}

/// A subscriber: its memory and the sequence of the next change.
struct Subscriber {
    m: Mapper,
    memory: Memory,
    sequence: u64,
}

impl Subscriber {
    fn new(complete: bool) -> Self {
        Subscriber {
            m: Mapper::new(HUB),
            memory: Memory::new(complete),
            sequence: 0,
        }
    }

    /// Maps one change; every bundle conforms and holds nothing TLP:RED.
    fn receive(&mut self, c: &pb::FeedChange) -> FeedOutput {
        self.sequence += 1;
        let out = self.m.feed(self.sequence, c, &mut self.memory, received());
        if let Some(b) = &out.bundle {
            assert_conforms(b);
            assert_no_red(b);
        }
        out
    }

    /// The one object a change maps to for this submission.
    fn object(&mut self, c: &pb::FeedChange, submission: &str) -> Value {
        let out = self.receive(c);
        let b = out.bundle.expect("a bundle");
        let objects = mapped(&b, submission);
        assert_eq!(objects.len(), 1, "{b:#}");
        objects[0].clone()
    }
}

fn assert_no_red(v: &Value) {
    let text = v.to_string();
    let red = tlp::by_label("TLP:RED").unwrap().id;
    assert!(
        !text.contains(red) && !text.contains("TLP:RED") && !text.contains("RED-SECRET"),
        "RED in STIX output: {v:#}"
    );
}

fn marking(label: &str) -> Value {
    json!([tlp::by_label(label).unwrap().id])
}

#[test]
fn a_tombstone_revokes_the_printed_object_for_both_reasons() {
    type Tombstone = fn(&pb::Submission) -> pb::FeedChange;
    let cases: [(&str, Tombstone, &str); 3] = [
        ("audience_narrowed", narrowed, "2026-12-01T10:00:00.250Z"),
        (
            "audience_narrowed",
            narrowed_with_new_envelope,
            "2026-12-01T10:00:00.250Z",
        ),
        ("withdrawn", withdrawn, "2026-11-25T00:00:00.000Z"),
    ];
    for s in every_kind().into_iter().filter(|s| s.id != "s-notice-2") {
        for (reason, tombstone, modified) in cases {
            let mut sub = Subscriber::new(true);
            let shown = sub.object(&change("published", s.clone()), &s.id);
            let o = sub.object(&tombstone(&s), &s.id);
            let at = format!("{} {reason}", s.id);
            // The same object, revoked, under the marking it was printed with.
            assert_eq!(
                (&o["id"], &o["type"]),
                (&shown["id"], &shown["type"]),
                "{at}"
            );
            assert_eq!(o["revoked"], true, "{at}");
            assert_eq!(
                o["object_marking_refs"], shown["object_marking_refs"],
                "{at}"
            );
            assert_eq!(o["created"], shown["created"], "{at}");
            // Dated by the withdrawal, or when received when the tombstone has no date.
            assert_eq!(o["modified"], modified, "{at}");
            let e = &o["extensions"][ext::id()];
            assert_eq!(e["revocation_reason"], reason, "{at}");
            assert_eq!(e["status"], "withdrawn", "{at}");
            // A narrowing tells nothing of the new revision; nothing of the content either way.
            let text = o.to_string();
            for word in [
                "Summary.",
                "Text.",
                "UN-CBM-1",
                "CL-CSIRT",
                &"ee".repeat(32),
            ] {
                assert!(!text.contains(word), "{at}: {word} in {o:#}");
            }
            if reason == "withdrawn" {
                assert_eq!(e["withdrawal_reason"], "Sent in error");
                assert_eq!(e["content_hash"], "cd".repeat(32));
            } else {
                assert!(e.get("content_hash").is_none() && e.get("withdrawal_reason").is_none());
            }
            let seen = sub.memory.get(&s.id).unwrap();
            assert!(matches!(
                seen.last,
                Some(Last::Object { revoked: true, .. })
            ));
            assert_eq!(seen.generation, 1);
            // The second tombstone (a withdrawal after a narrowing) revokes nothing more.
            let again = sub.receive(&withdrawn(&s));
            assert!(again.bundle.is_none(), "{at}");
            assert!(again.note.unwrap().contains("already revoked"));
        }
    }
}

#[test]
fn a_tombstone_of_what_was_never_printed() {
    let notice = sample("s-notice-0");
    // From sequence 0 the memory is complete: never printed, so nothing to revoke.
    let mut sub = Subscriber::new(true);
    for c in [narrowed(&notice), withdrawn(&notice)] {
        let out = sub.receive(&c);
        assert!(out.bundle.is_none());
        assert!(out.note.unwrap().contains("never printed"), "{c:?}");
    }
    assert!(sub.memory.submissions.is_empty());

    // Started later: it may have been printed (or exported) before, as any type of its kind.
    let m = Mapper::new(HUB);
    for (s, types) in [
        (notice.clone(), vec!["incident", "note"]),
        (sample("s-policy"), vec!["report"]),
        (sample("s-poc"), vec!["identity"]),
    ] {
        let mut sub = Subscriber::new(false);
        let b = sub.receive(&narrowed(&s)).bundle.unwrap();
        let got = mapped(&b, &s.id);
        let got_types: Vec<&str> = got.iter().map(|o| o["type"].as_str().unwrap()).collect();
        assert_eq!(got_types, types);
        for o in got {
            assert_eq!(o["revoked"], true);
            let t = o["type"].as_str().unwrap();
            assert_eq!(o["id"], m.id(t, &format!("submission/{}", s.id)));
            assert_eq!(o["object_marking_refs"], marking("TLP:AMBER"));
        }
        assert!(sub.receive(&withdrawn(&s)).bundle.is_none(), "once");
    }
}

#[test]
fn red_never_appears() {
    let mut red = sample("s-notice-2");
    red.content.as_mut().unwrap().title = "RED-SECRET".into();
    let mut sub = Subscriber::new(true);
    let out = sub.receive(&change("published", red.clone()));
    assert!(out.bundle.is_none());
    assert!(out.note.unwrap().contains("TLP:RED is never exported"));
    assert_eq!(sub.memory.get(&red.id).unwrap().last, Some(Last::Red));
    // Neither its acknowledgement, nor its tombstones, nor the publisher's own withdrawal.
    let mut own = red.clone();
    own.status = "withdrawn".into();
    for c in [
        ack(&red, "CL-CSIRT"),
        narrowed(&red),
        withdrawn(&red),
        change("withdrawn", own),
    ] {
        let out = sub.receive(&c);
        assert!(out.bundle.is_none(), "{c:?}");
        assert!(out.note.unwrap().contains("RED"));
    }

    // AMBER, printed, then relabelled RED: the printed object is revoked, nothing of RED shown.
    let amber = sample("s-notice-0");
    let shown = sub.object(&change("published", amber.clone()), &amber.id);
    let mut to_red = red.clone();
    to_red.id = amber.id.clone();
    to_red.revision = 2;
    to_red.content_hash = "ee".repeat(32);
    let out = sub.receive(&change("revised", to_red));
    let b = out.bundle.unwrap();
    let o = mapped(&b, &amber.id);
    assert_eq!(o.len(), 1);
    assert_eq!(
        (&o[0]["id"], &o[0]["revoked"]),
        (&shown["id"], &json!(true))
    );
    assert_eq!(o[0]["object_marking_refs"], marking("TLP:AMBER"));
    assert!(!b.to_string().contains(&"ee".repeat(32)));
    assert!(out.note.unwrap().contains("revoked"));
    // Back to AMBER: a new object (a revoked id gets no new version), under a new id.
    let mut back = amber.clone();
    back.revision = 3;
    back.updated_at = "2026-11-27T00:00:00Z".into();
    let o = sub.object(&change("revised", back), &amber.id);
    assert_eq!(
        o["id"],
        sub.m
            .id("incident", &format!("submission/{}/generation/1", amber.id))
    );
    assert!(o.get("revoked").is_none());

    // export stix: refused by name, the rest exported.
    let mut all = every_kind();
    all.push(red);
    let (b, skipped) = Mapper::new(HUB).submissions_bundle(uuid::Uuid::new_v4(), &all, received());
    assert_conforms(&b);
    assert_no_red(&b);
    assert_eq!(
        skipped,
        [
            "submission s-notice-2: submissions[5].content.tlp: TLP:RED is never exported",
            "submission s-notice-2: submissions[7].content.tlp: TLP:RED is never exported",
        ]
    );
    assert_eq!(mapped(&b, "s-notice-3").len(), 1);
}

#[test]
fn content_shown_again_after_a_revocation_is_a_new_object() {
    let s = sample("s-notice-3");
    let mut sub = Subscriber::new(true);
    let first = sub.object(&change("published", s.clone()), &s.id);
    sub.object(&narrowed(&s), &s.id);
    // Widened again: STIX forbids a version after a revocation, so the next generation's id.
    let mut again = s.clone();
    again.revision = 3;
    again.updated_at = "2026-11-28T00:00:00Z".into();
    let o = sub.object(&change("revised", again.clone()), &s.id);
    let next = sub
        .m
        .id("note", &format!("submission/{}/generation/1", s.id));
    assert_ne!(first["id"], o["id"]);
    assert_eq!(o["id"], next);
    assert!(o.get("revoked").is_none());
    // Its withdrawal revokes that one.
    let o = sub.object(&withdrawn(&again), &s.id);
    assert_eq!((&o["id"], &o["revoked"]), (&json!(next), &json!(true)));
}

#[test]
fn a_notice_that_becomes_an_incident_revokes_its_note() {
    let s = sample("s-notice-3");
    let mut sub = Subscriber::new(true);
    let note = sub.object(&change("published", s.clone()), &s.id);
    let mut incident = sample("s-notice-0");
    incident.id = s.id.clone();
    incident.revision = 2;
    incident.updated_at = "2026-11-24T00:00:00Z".into();
    let out = sub.receive(&change("revised", incident));
    let b = out.bundle.unwrap();
    let objects = mapped(&b, &s.id);
    assert_eq!(objects.len(), 2, "{b:#}");
    assert_eq!(
        (&objects[0]["id"], &objects[0]["revoked"]),
        (&note["id"], &json!(true))
    );
    assert_eq!(
        objects[1]["id"],
        sub.m
            .id("incident", &format!("submission/{}/generation/1", s.id))
    );
    assert!(out.note.unwrap().contains("now a incident"));
}

#[test]
fn a_revocation_is_newer_than_the_version_it_replaces() {
    // The hub's clock ahead of the subscriber's: the revocation still comes after.
    let mut s = sample("s-policy");
    s.updated_at = "2026-12-01T11:00:00Z".into();
    let mut sub = Subscriber::new(true);
    sub.object(&change("published", s.clone()), &s.id);
    let o = sub.object(&narrowed(&s), &s.id);
    assert_eq!(o["modified"], "2026-12-01T11:00:00.001Z");
}

fn ack(notice: &pb::Submission, member: &str) -> pb::FeedChange {
    let mut envelope = notice.clone();
    envelope.content = None;
    pb::FeedChange {
        action: "acknowledged".into(),
        submission: Some(envelope),
        reason: String::new(),
        acknowledgement: Some(pb::Acknowledgement {
            notice_id: notice.id.clone(),
            notice_revision: 1,
            member: member.into(),
            state: "CL".into(),
            reply: "Received, looking into it.".into(),
            acknowledged_at: "2026-11-23T23:00:00.5Z".into(),
            deadline: "2026-11-24T22:14:00Z".into(),
            on_time: true,
            sequence: 12,
            ..Default::default()
        }),
    }
}

#[test]
fn an_acknowledgement_is_a_note_by_the_acknowledging_member() {
    let mut sub = Subscriber::new(true);
    for (id, label) in [
        ("s-notice-0", "TLP:AMBER"),
        ("s-notice-1", "TLP:AMBER+STRICT"),
        ("s-notice-3", "TLP:AMBER"),
    ] {
        let notice = sample(id);
        sub.receive(&change("published", notice.clone()));
        let b = sub.receive(&ack(&notice, "CL-CSIRT")).bundle.unwrap();
        let note = b["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["type"] == "note")
            .unwrap();
        assert_eq!(
            note["created_by_ref"],
            sub.m.id("identity", "member/CL-CSIRT")
        );
        assert_eq!(note["created"], "2026-11-23T23:00:00.500Z");
        assert!(
            note["content"]
                .as_str()
                .unwrap()
                .contains("looking into it")
        );
        assert_eq!(note["extensions"][ext::id()]["on_time"], true);
        // Two parties only: AMBER, STRICT only when the notice was (the reader is its recipient).
        assert_eq!(note["object_marking_refs"], marking(label), "{id}");
    }
    // Of a notice this subscriber never printed: nothing to attach it to.
    let out = sub.receive(&ack(&sample("s-policy"), "CL-CSIRT"));
    assert!(out.bundle.is_none());
    assert!(out.note.unwrap().contains("never printed"));
}

#[test]
fn what_cannot_be_mapped_is_a_note_and_changes_nothing() {
    let mut sub = Subscriber::new(false);
    sub.receive(&change("published", sample("s-policy")));
    let before = sub.memory.clone();
    let mut bad_time = sample("s-poc");
    bad_time.updated_at = "yesterday".into();
    // Never printed, so revoked blind, by a kind the mapping does not know.
    let mut bad_kind = sample("s-policy");
    bad_kind.id = "s-other".into();
    bad_kind.kind = "treaty".into();
    let mut no_body = sample("s-schema");
    no_body.content.as_mut().unwrap().body = None;
    let mut white = sample("s-notice-3");
    white.content.as_mut().unwrap().tlp = "TLP:WHITE".into();
    for (c, words) in [
        (
            change("exploded", sample("s-poc")),
            "change.action: unknown value \"exploded\"",
        ),
        (
            change("published", bad_time),
            "change.submission.updated_at: \"yesterday\" is not an RFC 3339 instant",
        ),
        (
            narrowed(&bad_kind),
            "change.submission.kind: unknown value \"treaty\"",
        ),
        (
            change("revised", no_body),
            "change.submission.content.body: missing",
        ),
        (
            change("published", white),
            "\"TLP:WHITE\" is not a TLP 2.0 label",
        ),
        (
            pb::FeedChange {
                action: "published".into(),
                ..Default::default()
            },
            "change.submission: missing",
        ),
    ] {
        let out = sub.receive(&c);
        assert!(out.bundle.is_none(), "{c:?}");
        let note = out.note.unwrap();
        assert!(
            note.starts_with("not mapped: ") && note.contains(words),
            "{note}"
        );
    }
    assert_eq!(sub.memory, before);
    // The same in export stix: the bad one named, the others exported.
    let mut s = sample("s-policy");
    s.content.as_mut().unwrap().tlp = "TLP:WHITE".into();
    let (b, skipped) = Mapper::new(HUB).submissions_bundle(
        uuid::Uuid::new_v4(),
        &[sample("s-poc"), s],
        received(),
    );
    assert_eq!(
        skipped,
        ["submission s-policy: submissions[1].content.tlp: \"TLP:WHITE\" is not a TLP 2.0 label"]
    );
    assert_eq!(mapped(&b, "s-poc").len(), 1);
}

#[test]
fn export_revokes_a_withdrawn_submission_without_content_by_kind() {
    let m = Mapper::new(HUB);
    let mut w = sample("s-notice-0");
    w.status = "withdrawn".into();
    w.content = None;
    let (b, skipped) = m.submissions_bundle(uuid::Uuid::new_v4(), &[w.clone()], received());
    assert!(skipped.is_empty());
    assert_conforms(&b);
    let objects = mapped(&b, &w.id);
    assert_eq!(objects.len(), 2);
    for o in objects {
        assert_eq!(o["revoked"], true);
        assert_eq!(o["object_marking_refs"], marking("TLP:AMBER"));
        assert_eq!(o["modified"], "2026-11-23T22:14:00.123Z");
    }
    // The publisher's own view keeps the content: the object itself, revoked.
    let mut own = sample("s-policy");
    own.status = "withdrawn".into();
    let (b, _) = m.submissions_bundle(uuid::Uuid::new_v4(), &[own], received());
    let o = mapped(&b, "s-policy");
    assert_eq!((o.len(), &o[0]["revoked"]), (1, &json!(true)));
    assert_eq!(o[0]["object_marking_refs"], marking("TLP:CLEAR"));
}

#[test]
fn the_memory_survives_a_round_trip_as_json() {
    let mut sub = Subscriber::new(true);
    sub.receive(&change("published", sample("s-policy")));
    sub.receive(&change("published", sample("s-notice-2")));
    sub.receive(&narrowed(&sample("s-policy")));
    assert!(sub.memory.take_dirty());
    let text = serde_json::to_string(&sub.memory).unwrap();
    let back: Memory = serde_json::from_str(&text).unwrap();
    assert_eq!(back, sub.memory);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["complete"], true);
    assert_eq!(v["submissions"]["s-notice-2"]["last"]["state"], "red");
    assert_eq!(v["submissions"]["s-policy"]["last"]["revoked"], true);
    // A damaged file is refused, not guessed at.
    assert!(serde_json::from_str::<Memory>(r#"{"complete":1}"#).is_err());
}
