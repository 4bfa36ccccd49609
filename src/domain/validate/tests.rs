use proptest::prelude::*;

use super::*;
use crate::pb::{self, submission_content::Body};

fn ctx_parts() -> (Registry, Catalogue) {
    use crate::domain::member::{Member, MemberStatus, Roles};
    let member = |id: &str| Member {
        id: id.into(),
        state: "EE".into(),
        display_name: id.into(),
        roles: Roles::default(),
        communities: vec!["OSCE".into()],
        status: MemberStatus::Active,
        bindings: vec![],
        created_at: String::new(),
        updated_at: String::new(),
        require_signed: false,
    };
    (
        Registry::new([member("EE-MFA"), member("CL-MINREL")]),
        Catalogue::builtin(),
    )
}

fn notice_content() -> SubmissionContent {
    SubmissionContent {
        title: "t".into(),
        language: "en".into(),
        tlp: "TLP:CLEAR".into(),
        body: Some(Body::Notice(pb::Notice {
            category: "information".into(),
            subject: "s".into(),
            text: "x".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn errors_of(c: &SubmissionContent) -> Vec<String> {
    let (reg, cat) = ctx_parts();
    let ctx = Context {
        registry: &reg,
        catalogue: &cat,
        now: time::OffsetDateTime::now_utc(),
        previous: None,
    };
    match content(&ctx, c, "content") {
        Ok(_) => vec![],
        Err(e) => e.0.into_iter().map(|f| f.field).collect(),
    }
}

#[test]
fn language_tags() {
    for ok in ["en", "es-419", "fr-CA", "zh-Hant-TW", "sr-Latn"] {
        assert!(fields::is_language_tag(ok), "{ok}");
    }
    for bad in ["", "e", "english", "en_US", "en-", "-en", "en--US", "123"] {
        assert!(!fields::is_language_tag(bad), "{bad}");
    }
}

#[test]
fn every_error_is_reported_at_once() {
    let mut c = notice_content();
    c.title.clear();
    c.language = "??".into();
    c.tlp = "TLP:PURPLE".into();
    c.cbm_refs = vec!["NOPE-1".into()];
    let fields = errors_of(&c);
    for f in [
        "content.title",
        "content.language",
        "content.tlp",
        "content.cbm_refs[0]",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} missing in {fields:?}");
    }
}

#[test]
fn tlp_labels_are_exact_and_audiences_consistent() {
    for (label, recipients, community, ok) in [
        ("TLP:CLEAR", vec![], "", true),
        ("TLP:GREEN", vec![], "OSCE", true),
        ("TLP:GREEN", vec!["EE-MFA"], "", false),
        ("TLP:CLEAR", vec![], "OSCE", false),
        ("TLP:AMBER", vec![], "", false),
        ("TLP:AMBER+STRICT", vec!["CL-MINREL"], "", true),
        ("TLP:RED", vec!["CL-MINREL", "CL-MINREL"], "", false),
        ("TLP:RED", vec!["XX-NOBODY"], "", false),
        ("TLP:AMBER-STRICT", vec!["CL-MINREL"], "", false),
        ("TLP:WHITE", vec![], "", false),
    ] {
        let mut c = notice_content();
        c.tlp = label.into();
        c.recipients = recipients.iter().map(|s| s.to_string()).collect();
        c.community = community.into();
        assert_eq!(
            errors_of(&c).is_empty(),
            ok,
            "{label} {recipients:?} {community:?}: {:?}",
            errors_of(&c)
        );
    }
}

#[test]
fn contact_channels_are_checked_by_type() {
    let poc = |t: &str, v: &str| {
        let mut c = notice_content();
        c.body = Some(Body::PointOfContact(pb::PointOfContact {
            level: "policy".into(),
            organisation: "MFA".into(),
            function: "Cyber ambassador".into(),
            channels: vec![pb::ContactChannel {
                r#type: t.into(),
                value: v.into(),
                note: String::new(),
            }],
            languages: vec!["en".into()],
            time_zone: "UTC".into(),
            last_verified: "2025-01-01".into(),
            ..Default::default()
        }));
        errors_of(&c)
    };
    assert!(poc("email", "poc@example.org").is_empty());
    assert!(poc("phone", "+56 2 2827 4200").is_empty());
    assert!(poc("secure_channel", "OSCE communication network").is_empty());
    assert_eq!(
        poc("email", "poc at example"),
        vec!["content.body.point_of_contact.channels[0].value"]
    );
    assert_eq!(
        poc("phone", "0800 CALL ME"),
        vec!["content.body.point_of_contact.channels[0].value"]
    );
    assert_eq!(
        poc("fax", "+1 555"),
        vec!["content.body.point_of_contact.channels[0].type"]
    );
}

#[test]
fn dates_in_the_future_and_past_deadlines_are_refused() {
    let mut c = notice_content();
    c.body = Some(Body::Notice(pb::Notice {
        category: "ping".into(),
        subject: "s".into(),
        text: "x".into(),
        ack_deadline: "2001-01-01T00:00:00Z".into(),
        ..Default::default()
    }));
    assert_eq!(errors_of(&c), vec!["content.body.notice.ack_deadline"]);
    c.body = Some(Body::PolicyDocument(pb::PolicyDocument {
        document_type: "strategy".into(),
        issuing_authority: "Gov".into(),
        adoption_date: "2999-01-01".into(),
        url: "https://example.org/s.pdf".into(),
        ..Default::default()
    }));
    assert_eq!(
        errors_of(&c),
        vec!["content.body.policy_document.adoption_date"]
    );
}

#[test]
fn size_limits() {
    let mut c = notice_content();
    c.title = "x".repeat(201);
    c.tags = (0..51).map(|i| format!("t{i}")).collect();
    let big = bytes::Bytes::from(vec![0u8; MAX_ATTACHMENT_BYTES + 1]);
    c.attachments = vec![pb::Attachment {
        name: "a".into(),
        media_type: "a/b".into(),
        sha256: "0".repeat(64),
        content: big,
    }];
    let f = errors_of(&c);
    assert!(
        f.contains(&"content.title".to_string()) && f.contains(&"content.tags".to_string()),
        "{f:?}"
    );
    assert!(
        f.contains(&"content.attachments[0].content".to_string()),
        "{f:?}"
    );
}

#[test]
fn time_zones_are_checked_without_cutting_characters() {
    let check = |v: &str| {
        let mut errs = Invalid::default();
        let ok = fields::time_zone(&mut errs, "tz", v);
        (ok, errs.0.into_iter().map(|f| f.field).collect::<Vec<_>>())
    };
    for good in [
        "UTC",
        "UTC+02:00",
        "UTC-03:30",
        "Europe/Tallinn",
        "America/Argentina/Buenos_Aires",
    ] {
        assert_eq!(check(good), (true, vec![]), "{good}");
    }
    // Six bytes after "UTC" like "+02:00", with a multi-byte character where a digit or the
    // colon belongs (these panicked when the text was sliced by byte offsets).
    for bad in [
        "UTC+0é00",
        "UTC+00é0",
        "UTC+é:00",
        "UTC-00:é",
        "UTC+0\u{301}:0",
        "UTCé",
        "UTC+2:00",
        "UTC+02-00",
        "UTC+02:000",
        "Tallinn",
        "utc",
        "",
    ] {
        assert_eq!(check(bad), (false, vec!["tz".to_string()]), "{bad}");
    }
}

proptest! {
    /// Arbitrary text in every envelope field never panics, and every error names a field
    /// under `content`.
    #[test]
    fn arbitrary_envelopes_never_panic(
        title in ".{0,300}", language in ".{0,40}", tlp in ".{0,20}", community in ".{0,40}",
        recipients in proptest::collection::vec(".{0,20}", 0..4),
        refs in proptest::collection::vec(".{0,20}", 0..4),
        review in ".{0,12}", deadline in ".{0,30}",
    ) {
        let mut c = notice_content();
        c.title = title; c.language = language; c.tlp = tlp; c.community = community;
        c.recipients = recipients; c.cbm_refs = refs; c.review_by = review;
        c.body = Some(Body::Notice(pb::Notice { category: "ping".into(), subject: "s".into(), text: "x".into(), ack_deadline: deadline, ..Default::default() }));
        for f in errors_of(&c) {
            prop_assert!(f.starts_with("content."), "{}", f);
        }
    }

    /// Any text after "UTC" (the branch that reads fixed positions) never panics.
    #[test]
    fn arbitrary_utc_offsets_never_panic(rest in ".{0,8}") {
        let mut errs = Invalid::default();
        let ok = fields::time_zone(&mut errs, "tz", &format!("UTC{rest}"));
        prop_assert_eq!(ok, errs.0.is_empty());
    }
}
