use proptest::prelude::*;

use super::*;
use crate::audit::{LogState, Origin};

/// Seals the parts as the writer does and checks each against the hard maximum.
fn sealed_sizes(parts: Vec<AuditEntry>) -> Vec<usize> {
    let mut state = LogState::default();
    parts
        .into_iter()
        .map(|mut p| {
            p.at = "2026-12-31T23:59:59.999999999Z".into();
            state.seal(p).encoded_len()
        })
        .collect()
}

#[test]
fn a_four_megabyte_id_becomes_a_marker() {
    let huge = "x".repeat(4 * 1024 * 1024);
    let mut e = Origin::hub().entry("submission.get");
    e.object_id = huge.clone();
    let parts = entry(e);
    assert_eq!(parts.len(), 1);
    assert!(
        parts[0]
            .object_id
            .starts_with("invalid id, 4194304 bytes, sha256:")
    );
    assert!(
        parts[0]
            .object_id
            .ends_with(&hex::encode(Sha256::digest(huge.as_bytes())))
    );
    assert!(sealed_sizes(parts)[0] < 1024);
}

#[test]
fn ids_in_an_id_format_are_kept_and_others_marked() {
    for ok in [
        "EE-MFA",
        "UN-CBM-3",
        "OSCE",
        "0f8fad5b-d9cb-469f-a165-70867728950e",
    ] {
        assert_eq!(id(ok), ok);
    }
    for bad in [
        "ee-mfa",
        "E",
        "EE MFA",
        "{0f8fad5b-d9cb-469f-a165-70867728950e}",
        "a\u{1b}[31m",
        "É",
    ] {
        assert!(id(bad).starts_with("invalid id, "), "{bad}");
    }
    assert_eq!(id(""), "");
}

#[test]
fn reasons_hold_a_code_a_cause_and_field_paths_only() {
    assert_eq!(
        reason("permission_denied", "missing_role", []),
        "permission_denied: missing_role"
    );
    assert_eq!(reason("not_found", "not_found", []), "not_found");
    assert_eq!(
        reason(
            "invalid_argument",
            "invalid_field",
            ["content.title", "recipients[2]", "\"x\": evil", ""]
        ),
        "invalid_argument: invalid_field (content.title, recipients[2])"
    );
    let many: Vec<String> = (0..40).map(|i| format!("f{i}")).collect();
    let r = reason(
        "invalid_argument",
        "invalid_field",
        many.iter().map(String::as_str),
    );
    assert!(r.ends_with("f15 and 24 more)"), "{r}");
    // A cause is always a token: free text becomes a marker.
    assert!(reason("unknown", "he said \"hi\"", []).starts_with("unknown: invalid value"));
}

#[test]
fn free_text_is_cut_on_a_character_boundary_without_control_characters() {
    assert_eq!(text("a\nb\u{1b}[31mc", 100), "a b [31mc");
    let long = "é".repeat(1000);
    let cut = text(&long, 101);
    assert!(
        cut.starts_with(&"é".repeat(50)) && cut.ends_with("… (2000 bytes)"),
        "{cut}"
    );
}

#[test]
fn a_list_over_the_limit_continues_in_parts_that_each_fit() {
    let ids: Vec<String> = (0..20_000)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let mut e = Origin::hub().entry("catalogue.matrix");
    e.object_ids = ids.clone();
    e.delivered_ranges = (0..20_000u64).flat_map(|i| [i * 10, i * 10 + 3]).collect();
    e.detail = "d".repeat(5000);
    let parts = entry(e);
    assert!(parts.len() > 10);
    assert!(
        parts[0]
            .detail
            .ends_with(&format!("(part 1 of {})", parts.len()))
    );
    let kept: Vec<String> = parts.iter().flat_map(|p| p.object_ids.clone()).collect();
    assert_eq!(kept, ids);
    let ranges: Vec<u64> = parts
        .iter()
        .flat_map(|p| p.delivered_ranges.clone())
        .collect();
    assert_eq!(ranges.len(), 40_000);
    assert!(parts.iter().all(|p| p.delivered_ranges.len() % 2 == 0));
    for size in sealed_sizes(parts) {
        assert!(size <= MAX_ENTRY_BYTES, "{size}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn no_bounded_entry_exceeds_the_maximum(
        member in ".{0,200}",
        peer in ".{0,200}",
        action in ".{0,200}",
        object in prop_oneof![Just(String::new()), ".{0,5000}", Just("EE-MFA".to_string())],
        ids in prop::collection::vec(".{0,3000}", 0..60),
        label in ".{0,300}",
        reason in ".{0,20000}",
        detail in ".{0,20000}",
        ranges in prop::collection::vec(any::<u64>(), 0..5000),
    ) {
        let e = AuditEntry {
            member, peer, action, object_id: object, object_ids: ids, label,
            outcome: "whatever".into(), reason, detail, delivered_ranges: ranges,
            cert_sha256: "not a hash".into(), ..Default::default()
        };
        for size in sealed_sizes(entry(e)) {
            prop_assert!(size <= MAX_ENTRY_BYTES, "{}", size);
        }
    }
}
