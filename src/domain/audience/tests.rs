//! Table tests of the decision, each row taken from `domain.md` (the TLP table, "the audience
//! is decided at delivery time from the submission's current state", the narrowing example).
use super::*;
use crate::domain::member::{MemberStatus, Role, Roles};

fn member(id: &str, roles: &[Role], communities: &[&str]) -> Member {
    Member {
        id: id.into(),
        state: id.split('-').next().unwrap_or("XX").into(),
        display_name: id.into(),
        roles: roles.iter().copied().collect::<Roles>(),
        communities: communities.iter().map(|c| c.to_string()).collect(),
        status: MemberStatus::Active,
        bindings: vec![],
        created_at: String::new(),
        updated_at: String::new(),
        require_signed: false,
    }
}

fn reader(id: &str) -> Member {
    member(id, &[Role::Subscriber], &["OSCE"])
}

fn aud(tlp: &str, recipients: &[&str], community: &str) -> AudienceRecord {
    AudienceRecord {
        tlp: tlp.into(),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        community: community.into(),
    }
}

const PUB: &str = "EE-MFA";

fn standing(audiences: &[AudienceRecord], withdrawn: bool) -> Standing<'_> {
    Standing {
        publisher: PUB,
        audiences,
        withdrawn,
        latest_at: "",
    }
}

fn change(revision: u32) -> About<'static> {
    About::Change {
        revision,
        withdrawal: false,
        at: "",
    }
}

use Receives::*;

#[test]
fn the_tlp_table() {
    let osce = reader("EE-CERT");
    let oas = member("CL-CSIRT", &[Role::Subscriber], &["OAS"]);
    let rows: [(AudienceRecord, bool, bool); 6] = [
        // CLEAR: every member with read rights.
        (aud("TLP:CLEAR", &[], ""), true, true),
        // GREEN without community: every member of the hub.
        (aud("TLP:GREEN", &[], ""), true, true),
        // GREEN to a community: its members only.
        (aud("TLP:GREEN", &[], "OSCE"), true, false),
        // AMBER, AMBER+STRICT, RED: only the named recipients.
        (aud("TLP:AMBER", &["CL-CSIRT"], ""), false, true),
        (aud("TLP:AMBER+STRICT", &["EE-CERT"], ""), true, false),
        (aud("TLP:RED", &["EE-CERT"], ""), true, false),
    ];
    for (a, osce_reads, oas_reads) in rows {
        let audiences = [a.clone()];
        let s = standing(&audiences, false);
        let expect = |b| if b { Content } else { Nothing };
        assert_eq!(
            decide(&osce, &s, About::Revision(1)),
            expect(osce_reads),
            "{a:?}"
        );
        assert_eq!(
            decide(&oas, &s, About::Revision(1)),
            expect(oas_reads),
            "{a:?}"
        );
        assert_eq!(decide(&osce, &s, change(1)), expect(osce_reads), "{a:?}");
        // The publisher always sees its own.
        let publisher = member(PUB, &[Role::Publisher], &[]);
        assert_eq!(decide(&publisher, &s, About::Revision(1)), Content);
    }
}

#[test]
fn admins_auditors_and_suspended_members_read_no_content() {
    let audiences = [aud("TLP:CLEAR", &[], "")];
    let s = standing(&audiences, false);
    let admin = member("HUB-ADMIN", &[Role::Admin, Role::Auditor], &[]);
    assert_eq!(decide(&admin, &s, About::Revision(1)), Nothing);
    assert_eq!(decide(&admin, &s, change(1)), Nothing);
    let mut suspended = reader("EE-CERT");
    suspended.status = MemberStatus::Suspended;
    assert_eq!(decide(&suspended, &s, About::Revision(1)), Nothing);
    let mut publisher = member(PUB, &[Role::Publisher], &[]);
    publisher.status = MemberStatus::Suspended;
    assert_eq!(decide(&publisher, &s, About::Revision(1)), Nothing);
}

/// domain.md's example: AMBER to [CL-CSIRT, EE-CERT], then AMBER to [EE-CERT].
#[test]
fn the_narrowing_example() {
    let audiences = [
        aud("TLP:AMBER", &["CL-CSIRT", "EE-CERT"], ""),
        aud("TLP:AMBER", &["EE-CERT"], ""),
    ];
    let s = standing(&audiences, false);
    let removed = reader("CL-CSIRT");
    let kept = reader("EE-CERT");
    // CL-CSIRT replaying from 0: nothing of revision 1, one tombstone at revision 2.
    assert_eq!(decide(&removed, &s, change(1)), Nothing);
    assert_eq!(decide(&removed, &s, change(2)), Narrowed);
    assert_eq!(decide(&removed, &s, About::Revision(1)), Nothing);
    assert_eq!(decide(&removed, &s, About::Revision(2)), Nothing);
    assert!(!sees(&removed, &s));
    // EE-CERT keeps everything.
    assert_eq!(decide(&kept, &s, change(1)), Content);
    assert_eq!(decide(&kept, &s, change(2)), Content);
    assert_eq!(decide(&kept, &s, About::Revision(1)), Content);
    // Someone never addressed gets nothing at all.
    assert_eq!(decide(&reader("JP-MOFA"), &s, change(2)), Nothing);
}

#[test]
fn one_tombstone_at_the_last_loss_of_access() {
    // In, out (2), in again (3), out (4), still out (5).
    let audiences = [
        aud("TLP:AMBER", &["A", "B"], ""),
        aud("TLP:AMBER", &["B"], ""),
        aud("TLP:AMBER", &["A", "B"], ""),
        aud("TLP:RED", &["B"], ""),
        aud("TLP:RED", &["B", "C"], ""),
    ];
    let s = standing(&audiences, false);
    let a = reader("A");
    let got: Vec<_> = (1..=5).map(|n| decide(&a, &s, change(n))).collect();
    assert_eq!(got, [Nothing, Nothing, Nothing, Narrowed, Nothing]);
    // While A was still in the audience (standing after revision 3), it followed every step.
    let s3 = standing(&audiences[..3], false);
    let got: Vec<_> = (1..=3).map(|n| decide(&a, &s3, change(n))).collect();
    assert_eq!(got, [Content, Narrowed, Content]);
    // C, added only at revision 5, reads revision 5 and nothing older.
    let c = reader("C");
    let got: Vec<_> = (1..=5).map(|n| decide(&c, &s, change(n))).collect();
    assert_eq!(got, [Nothing, Nothing, Nothing, Nothing, Content]);
    assert_eq!(decide(&c, &s, About::Revision(4)), Nothing);
}

#[test]
fn label_changes_and_widening() {
    // CLEAR -> GREEN(OAS): an OSCE-only reader loses it; an OAS reader keeps it.
    let audiences = [aud("TLP:CLEAR", &[], ""), aud("TLP:GREEN", &[], "OAS")];
    let s = standing(&audiences, false);
    assert_eq!(decide(&reader("EE-CERT"), &s, change(1)), Nothing);
    assert_eq!(decide(&reader("EE-CERT"), &s, change(2)), Narrowed);
    let oas = member("CL-CSIRT", &[Role::Subscriber], &["OAS"]);
    assert_eq!(decide(&oas, &s, change(1)), Content);
    assert_eq!(decide(&oas, &s, change(2)), Content);
    // RED to [B] widened to CLEAR: B reads both, others only the CLEAR revision.
    let audiences = [aud("TLP:RED", &["B"], ""), aud("TLP:CLEAR", &[], "")];
    let s = standing(&audiences, false);
    assert_eq!(decide(&reader("B"), &s, About::Revision(1)), Content);
    assert_eq!(decide(&reader("X"), &s, About::Revision(1)), Nothing);
    assert_eq!(decide(&reader("X"), &s, change(1)), Nothing);
    assert_eq!(decide(&reader("X"), &s, change(2)), Content);
}

#[test]
fn a_withdrawn_submission_gives_its_audience_a_tombstone_only() {
    // Published CLEAR, withdrawn (revision 2 keeps the audience).
    let audiences = [aud("TLP:CLEAR", &[], ""), aud("TLP:CLEAR", &[], "")];
    let s = standing(&audiences, true);
    // Any reader, including one registered after the withdrawal: no content of revision 1.
    let late = reader("NEW-CERT");
    assert_eq!(decide(&late, &s, change(1)), Nothing);
    assert_eq!(
        decide(
            &late,
            &s,
            About::Change {
                revision: 2,
                withdrawal: true,
                at: "",
            }
        ),
        Withdrawn
    );
    assert_eq!(decide(&late, &s, About::Revision(1)), Withdrawn);
    assert_eq!(decide(&late, &s, About::Revision(2)), Withdrawn);
    assert!(sees(&late, &s));
    // The publisher keeps everything.
    let publisher = member(PUB, &[Role::Publisher], &[]);
    assert_eq!(decide(&publisher, &s, change(1)), Content);
    // Narrowed, then withdrawn: the removed reader's one tombstone stays at the narrowing.
    let audiences = [
        aud("TLP:AMBER", &["A", "B"], ""),
        aud("TLP:AMBER", &["B"], ""),
        aud("TLP:AMBER", &["B"], ""),
    ];
    let s = standing(&audiences, true);
    let w = About::Change {
        revision: 3,
        withdrawal: true,
        at: "",
    };
    let a = reader("A");
    assert_eq!(
        [
            decide(&a, &s, change(1)),
            decide(&a, &s, change(2)),
            decide(&a, &s, w)
        ],
        [Nothing, Narrowed, Nothing]
    );
    let b = reader("B");
    assert_eq!(
        [
            decide(&b, &s, change(1)),
            decide(&b, &s, change(2)),
            decide(&b, &s, w)
        ],
        [Nothing, Nothing, Withdrawn]
    );
}

#[test]
fn acknowledgements_go_to_the_sender_and_to_an_acknowledger_still_addressed() {
    let audiences = [
        aud("TLP:AMBER", &["A", "B"], ""),
        aud("TLP:AMBER", &["B"], ""),
    ];
    let s = standing(&audiences, false);
    let by_a = About::Acknowledgement { by: "A" };
    let by_b = About::Acknowledgement { by: "B" };
    let publisher = member(PUB, &[Role::Publisher], &[]);
    assert_eq!(decide(&publisher, &s, by_a), Acknowledgement);
    assert_eq!(decide(&reader("B"), &s, by_b), Acknowledgement);
    // A acknowledged revision 1, then was removed: it no longer hears of the notice.
    assert_eq!(decide(&reader("A"), &s, by_a), Nothing);
    // Nobody else hears of B's acknowledgement.
    assert_eq!(decide(&reader("A"), &s, by_b), Nothing);
}

#[test]
fn revisions_that_do_not_exist_are_nothing() {
    let audiences = [aud("TLP:CLEAR", &[], "")];
    let s = standing(&audiences, false);
    let r = reader("EE-CERT");
    assert_eq!(decide(&r, &s, About::Revision(0)), Nothing);
    assert_eq!(decide(&r, &s, About::Revision(2)), Nothing);
    assert_eq!(decide(&r, &s, change(2)), Nothing);
}

#[test]
fn an_unreadable_label_admits_only_the_publisher() {
    let audiences = [aud("tlp:clear", &[], "")];
    let s = standing(&audiences, false);
    assert_eq!(decide(&reader("EE-CERT"), &s, About::Revision(1)), Nothing);
    let publisher = member(PUB, &[Role::Publisher], &[]);
    assert_eq!(decide(&publisher, &s, About::Revision(1)), Content);
}

/// "A reader that never could see S gets nothing at all": a member registered after the change
/// that removed access, or after the withdrawal, gets no tombstone; one registered before does.
#[test]
fn members_registered_after_the_change_get_nothing() {
    let audiences = [aud("TLP:CLEAR", &[], ""), aud("TLP:RED", &["B"], "")];
    let s = standing(&audiences, false);
    let narrowing = About::Change {
        revision: 2,
        withdrawal: false,
        at: "2026-06-01T00:00:00.000Z",
    };
    let mut early = reader("EARLY");
    early.created_at = "2026-01-01T00:00:00.000Z".into();
    let mut late = reader("LATE");
    late.created_at = "2026-07-01T00:00:00.000Z".into();
    assert_eq!(decide(&early, &s, narrowing), Narrowed);
    assert_eq!(decide(&late, &s, narrowing), Nothing);

    let audiences = [aud("TLP:CLEAR", &[], ""), aud("TLP:CLEAR", &[], "")];
    let mut s = standing(&audiences, true);
    s.latest_at = "2026-06-01T00:00:00.000Z";
    let withdrawal = About::Change {
        revision: 2,
        withdrawal: true,
        at: "2026-06-01T00:00:00.000Z",
    };
    assert_eq!(decide(&early, &s, withdrawal), Withdrawn);
    assert_eq!(decide(&early, &s, About::Revision(1)), Withdrawn);
    assert_eq!(decide(&late, &s, withdrawal), Nothing);
    assert_eq!(decide(&late, &s, About::Revision(1)), Nothing);
    assert!(!sees(&late, &s));
}
