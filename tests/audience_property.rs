//! Property: for random communities, labels, recipients, revisions that narrow, widen and change
//! labels, withdrawals, and membership changes after publication (communities changed, a member
//! suspended, a member that could not read anything until it was reinstated at the end), what
//! each member receives through every exit (get of every revision, list, feed replay, live feed)
//! equals a model written from `domain.md` alone:
//!
//! - the TLP table: who a revision's audience admits (the publisher always);
//! - "the audience is decided at delivery time from the submission's current state ... the
//!   latest revision (or the withdrawal) decides who may read the submission at all, and a
//!   reader outside that audience gets no revision of it, old or new";
//! - "a reader who loses access receives a withdrawal for it, never the new content" with reason
//!   `audience_narrowed` and nothing of the new revision; "since it could once see it": one who
//!   never could gets nothing;
//! - a withdrawn submission: its audience gets the withdrawal (a tombstone), never the content
//!   ("a member that joins a community later, or is registered later, never receives withdrawn
//!   content").
//!
//! Live subscribers are synchronised after every step by a CLEAR marker everyone may read, so
//! that the state "at delivery time" of each live event is the state right after its change.
mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use cbm_hub::{
    domain::member::Role,
    pb::{
        self, GetRequest, ListRequest, PublishRequest, ReviseRequest, SetMemberStatusRequest,
        SubmissionContent, WithdrawRequest,
    },
    tls::devpki::LeafSpec,
};
use common::{
    CL_CSIRT, CL_MINREL, EE_CERT, EE_MFA, Spec, TestHub,
    feed::{Seen, read_until, request, subscribe},
    samples,
};
use proptest::prelude::*;

/// Members who read throughout, with a live subscription from the start.
const READERS: [&str; 4] = ["EE-MFA", "EE-CERT", "CL-MINREL", "CL-CSIRT"];
/// Suspended at the end: its live stream must end, and it may read nothing afterwards.
const SUSPENDED: &str = "JP-CERT";
/// Suspended from the start and reinstated at the end: like a member registered after every
/// change, it replays and reads the final state only.
const LATE: &str = "SG-CERT";
/// Registered after every change.
const NEWCOMER: &str = "NZ-CERT";
/// Publishes the CLEAR markers that synchronise the live subscribers.
const MARKER: &str = "MARKER";
const PUBLISHERS: [&str; 3] = ["EE-MFA", "EE-CERT", "CL-MINREL"];
/// Everyone who may be named a recipient.
const ADDRESSABLE: [&str; 6] = [
    "EE-MFA",
    "EE-CERT",
    "CL-MINREL",
    "CL-CSIRT",
    SUSPENDED,
    LATE,
];
const LABELS: [&str; 5] = [
    "TLP:CLEAR",
    "TLP:GREEN",
    "TLP:AMBER",
    "TLP:AMBER+STRICT",
    "TLP:RED",
];
const COMMUNITIES: [&str; 3] = ["OSCE", "OAS", "UN"];

/// [`common::MEMBERS`]' readers, an administrator who also audits, no separate auditor, and
/// the members the scenarios suspend, add late, and publish markers with.
const MEMBERS: &[Spec] = &[
    Spec {
        roles: &[Role::Admin, Role::Auditor],
        ..common::ADMIN
    },
    EE_MFA,
    EE_CERT,
    CL_MINREL,
    CL_CSIRT,
    Spec {
        id: SUSPENDED,
        state: "JP",
        roles: &[Role::Subscriber],
        communities: &["UN"],
    },
    Spec {
        id: LATE,
        state: "SG",
        roles: &[Role::Subscriber],
        communities: &["UN", "OSCE"],
    },
    Spec {
        id: MARKER,
        state: "HUB",
        roles: &[Role::Publisher],
        communities: &[],
    },
];

/// An audience as the publisher chose it.
#[derive(Debug, Clone, PartialEq)]
struct Aud {
    label: &'static str,
    recipients: Vec<&'static str>,
    community: Option<&'static str>,
}

/// One submission's history: its publication, revisions, and whether it is then withdrawn.
#[derive(Debug, Clone)]
struct Story {
    publisher: &'static str,
    audiences: Vec<Aud>,
    withdrawn: bool,
}

/// One step of a run.
#[derive(Debug, Clone)]
enum Step {
    /// Publish, revise or withdraw story `.0`'s next change.
    Change(usize),
    /// A reader's communities become this set.
    Communities(usize, Vec<usize>),
}

fn aud() -> impl Strategy<Value = Aud> {
    (
        0..5usize,
        proptest::sample::subsequence(ADDRESSABLE.to_vec(), 1..=3),
        proptest::option::of(0..3usize),
    )
        .prop_map(|(l, r, c)| {
            let label = LABELS[l];
            match label {
                "TLP:CLEAR" => Aud {
                    label,
                    recipients: vec![],
                    community: None,
                },
                "TLP:GREEN" => Aud {
                    label,
                    recipients: vec![],
                    community: c.map(|i| COMMUNITIES[i]),
                },
                _ => Aud {
                    label,
                    recipients: r,
                    community: None,
                },
            }
        })
}

fn story() -> impl Strategy<Value = Story> {
    (
        0..3usize,
        proptest::collection::vec(aud(), 1..=4),
        any::<bool>(),
    )
        .prop_map(|(p, audiences, withdrawn)| Story {
            publisher: PUBLISHERS[p],
            audiences,
            withdrawn,
        })
}

/// The steps: every story's changes in order, stories interleaved, and community changes
/// scattered among them.
fn run() -> impl Strategy<Value = (Vec<Story>, Vec<Step>)> {
    proptest::collection::vec(story(), 1..8).prop_flat_map(|stories| {
        let changes: usize = stories
            .iter()
            .map(|s| s.audiences.len() + usize::from(s.withdrawn))
            .sum();
        let order = proptest::collection::vec(0..stories.len(), changes);
        let moves = proptest::collection::vec(
            (
                0..changes + 1,
                0..READERS.len(),
                proptest::sample::subsequence(vec![0usize, 1, 2], 0..=3),
            ),
            0..4,
        );
        (Just(stories), order, moves).prop_map(|(stories, order, moves)| {
            // Each pick takes the next change of that story, or of the next story with one left.
            let mut left: Vec<usize> = stories
                .iter()
                .map(|s| s.audiences.len() + usize::from(s.withdrawn))
                .collect();
            let mut steps = Vec::new();
            for (position, pick) in order.into_iter().enumerate() {
                for (at, reader, set) in &moves {
                    if *at == position {
                        steps.push(Step::Communities(*reader, set.clone()));
                    }
                }
                let i = (0..stories.len())
                    .map(|k| (pick + k) % stories.len())
                    .find(|i| left[*i] > 0)
                    .expect("as many picks as changes");
                left[i] -= 1;
                steps.push(Step::Change(i));
            }
            (stories, steps)
        })
    })
}

// ---------------------------------------------------------------------------------------------
// The model, from domain.md.

/// Who each member is now: communities, and whether it may read at all (active, with a
/// reading role).
#[derive(Debug, Clone)]
struct People {
    communities: BTreeMap<&'static str, BTreeSet<&'static str>>,
    readers: BTreeSet<&'static str>,
    /// Registered after every change: it never could see what was withdrawn or taken from it.
    newcomers: BTreeSet<&'static str>,
}

impl People {
    /// The TLP table: may `member` receive a revision of `publisher`'s with audience `a`?
    fn admits(&self, member: &str, publisher: &str, a: &Aud) -> bool {
        if !self.readers.contains(member) && member != publisher {
            return false;
        }
        if member == publisher {
            return true;
        }
        match a.label {
            "TLP:CLEAR" => true,
            // GREEN without a community: every member of the hub.
            "TLP:GREEN" => a
                .community
                .is_none_or(|c| self.communities[member].contains(c)),
            _ => a.recipients.contains(&member),
        }
    }
}

/// A submission as it stands: the audience of each revision so far, and whether withdrawn.
#[derive(Debug, Clone, Default)]
struct State {
    publisher: &'static str,
    revisions: Vec<Aud>,
    withdrawn: bool,
}

/// What a reader sees of one change: (action, reason, has content).
type Expected = (String, String, bool);

/// What `member` receives for the change that made revision `n` of `s` (with `action`), when
/// the submission stands as `s` and the members as `people`.
fn on_feed(member: &str, people: &People, s: &State, n: usize, action: &str) -> Option<Expected> {
    let delivered = |action: &str, reason: &str, content: bool| {
        Some((action.to_string(), reason.to_string(), content))
    };
    if member == s.publisher {
        // The publisher sees everything it did, content included.
        let reason = if action == "withdrawn" {
            "withdrawn"
        } else {
            ""
        };
        return delivered(action, reason, true);
    }
    let admits = |k: usize| people.admits(member, s.publisher, &s.revisions[k - 1]);
    let latest = s.revisions.len();
    // The latest revision decides who may read the submission at all.
    let in_audience = admits(latest);
    // A member registered after the change never could see what it replaced or withdrew.
    let could_see_before = !people.newcomers.contains(member);
    if s.withdrawn {
        // Its audience learns of the withdrawal, never the content.
        if action == "withdrawn" {
            return (in_audience && could_see_before)
                .then(|| ("withdrawn".into(), "withdrawn".into(), false));
        }
        if in_audience {
            return None;
        }
    }
    if in_audience && admits(n) {
        return delivered(action, "", true);
    }
    // It loses access here: it could see revision n - 1 and cannot see revision n.
    let loses_here =
        could_see_before && n > 1 && admits(n - 1) && !admits(n) && action != "withdrawn";
    // Outside the audience now, it hears only of the last time it lost access; inside it
    // (it lost access and got it back) it heard of each loss as it happened.
    let last_loss = (n + 1..=latest).all(|k| !admits(k));
    (loses_here && (in_audience || last_loss))
        .then(|| ("withdrawn".into(), "audience_narrowed".into(), false))
}

/// What `member` gets from Get of revision `n` (0: the latest): Some(has content), None: not
/// found.
fn on_get(member: &str, people: &People, s: &State, n: usize) -> Option<bool> {
    let latest = s.revisions.len();
    let n = if n == 0 { latest } else { n };
    if member == s.publisher {
        return Some(true);
    }
    let admits = |k: usize| people.admits(member, s.publisher, &s.revisions[k - 1]);
    if !admits(latest) {
        return None;
    }
    if s.withdrawn {
        // The withdrawal's tombstone, to those who could have seen it.
        return (!people.newcomers.contains(member)).then_some(false);
    }
    admits(n).then_some(true)
}

// ---------------------------------------------------------------------------------------------
// The run.

fn to_content(a: &Aud, title: &str) -> SubmissionContent {
    let mut c = samples::envelope(title, a.label, samples::notice());
    c.recipients = a.recipients.iter().map(|s| s.to_string()).collect();
    c.community = a.community.unwrap_or("").to_string();
    c
}

/// One change of the log: its sequence, story, revision number and action.
struct Logged {
    seq: u64,
    story: usize,
    revision: usize,
    action: &'static str,
}

fn as_expected(seen: &[Seen]) -> Vec<(u64, Expected)> {
    seen.iter()
        .map(|s| {
            (
                s.sequence,
                (s.action.clone(), s.reason.clone(), s.has_content),
            )
        })
        .collect()
}

/// Nothing of the new revision in a narrowing tombstone.
fn check_tombstones(member: &str, seen: &[Seen]) {
    for s in seen {
        if s.reason == "audience_narrowed" {
            assert!(
                !s.has_content && s.content_hash.is_empty(),
                "{member}: a narrowing tombstone tells of the new revision: {s:?}"
            );
        }
    }
}

async fn scenario(stories: Vec<Story>, steps: Vec<Step>) {
    let mut t = TestHub::start_with(MEMBERS).await;
    let mut admin = t.admin("ADMIN").await;
    let mut people = People {
        communities: MEMBERS
            .iter()
            .map(|m| (m.id, m.communities.iter().copied().collect()))
            .collect(),
        readers: READERS.iter().copied().chain([SUSPENDED]).collect(),
        newcomers: BTreeSet::new(),
    };
    let status = |id: &str| SetMemberStatusRequest {
        id: id.into(),
        reason: String::new(),
    };
    admin.suspend_member(status(LATE)).await.unwrap();
    // Live subscribers, before any change.
    let mut live = Vec::new();
    for m in READERS.iter().chain([&SUSPENDED]) {
        live.push((*m, subscribe(&t, m, request(0)).await, Vec::new()));
    }
    let mut marker = t.hub(MARKER).await;
    let mut states: Vec<State> = stories
        .iter()
        .map(|s| State {
            publisher: s.publisher,
            ..Default::default()
        })
        .collect();
    let mut ids = vec![String::new(); stories.len()];
    let mut log: Vec<Logged> = Vec::new();
    let mut markers: Vec<u64> = Vec::new();
    for step in steps {
        let i = match step {
            Step::Communities(r, set) => {
                let set: BTreeSet<&str> = set.into_iter().map(|i| COMMUNITIES[i]).collect();
                admin
                    .update_member(pb::UpdateMemberRequest {
                        id: READERS[r].to_string(),
                        set_communities: true,
                        communities: set.iter().map(|s| s.to_string()).collect(),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                people.communities.insert(READERS[r], set);
                continue;
            }
            Step::Change(i) => i,
        };
        let story = &stories[i];
        let state = &mut states[i];
        let mut hub = t.hub(story.publisher).await;
        let n = state.revisions.len();
        let (action, seq) = if n < story.audiences.len() {
            let a = &story.audiences[n];
            // A GREEN community nobody belongs to is refused (it would hide the submission
            // from everyone): such a change is tried, must fail, and leaves nothing.
            let nobody = a
                .community
                .is_some_and(|c| !people.communities.values().any(|set| set.contains(c)));
            let content = Some(to_content(a, &format!("s{i} r{}", n + 1)));
            let result = if n == 0 {
                hub.publish(PublishRequest {
                    content,
                    idempotency_key: String::new(),
                    ..Default::default()
                })
                .await
            } else {
                hub.revise(ReviseRequest {
                    id: ids[i].clone(),
                    content,
                    expected_revision: n as u32,
                    idempotency_key: String::new(),
                    ..Default::default()
                })
                .await
            };
            if nobody {
                assert_eq!(
                    result.unwrap_err().code(),
                    tonic::Code::InvalidArgument,
                    "a GREEN community nobody belongs to"
                );
                continue;
            }
            let r = result.unwrap().into_inner();
            ids[i] = r.id;
            state.revisions.push(a.clone());
            (if n == 0 { "published" } else { "revised" }, r.sequence)
        } else {
            if n == 0 || state.withdrawn {
                // Its publication was refused (see above): nothing to withdraw.
                continue;
            }
            let r = hub
                .withdraw(WithdrawRequest {
                    id: ids[i].clone(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let kept = state.revisions.last().cloned().expect("published");
            state.revisions.push(kept);
            state.withdrawn = true;
            ("withdrawn", r.sequence)
        };
        log.push(Logged {
            seq,
            story: i,
            revision: state.revisions.len(),
            action,
        });
        // Every live subscriber now receives this change as the state stands now.
        for (m, _, expected) in live.iter_mut() {
            if let Some(e) = on_feed(m, &people, state, state.revisions.len(), action) {
                expected.push((seq, e));
            }
        }
        let mark = marker
            .publish(PublishRequest {
                content: Some(samples::envelope("marker", "TLP:CLEAR", samples::notice())),
                idempotency_key: String::new(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .sequence;
        markers.push(mark);
        for (m, stream, expected) in live.iter_mut() {
            expected.push((mark, ("published".into(), String::new(), true)));
            let seen = read_until(stream, mark, Duration::from_secs(30)).await;
            check_tombstones(m, &seen);
            let got = as_expected(&seen);
            let want = std::mem::take(expected);
            assert_eq!(got, want, "live feed of {m} up to {mark}");
        }
    }

    // Membership at the end: one member suspended, the late one reinstated.
    admin.suspend_member(status(SUSPENDED)).await.unwrap();
    admin.reinstate_member(status(LATE)).await.unwrap();
    people.readers.remove(SUSPENDED);
    people.readers.insert(LATE);
    // A member registered after every change, in every community.
    let cert = t.ca.issue(&LeafSpec::client(NEWCOMER, 30)).unwrap();
    admin
        .register_member(pb::RegisterMemberRequest {
            member: Some(pb::Member {
                id: NEWCOMER.into(),
                state: "NZ".into(),
                display_name: NEWCOMER.into(),
                roles: vec!["subscriber".into()],
                communities: COMMUNITIES.iter().map(|c| c.to_string()).collect(),
                bindings: vec![pb::CertificateBinding {
                    binding: Some(pb::certificate_binding::Binding::CertSha256(
                        common::sha256_hex(&cert.cert_der),
                    )),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    t.certs.insert(NEWCOMER.into(), cert);
    people.readers.insert(NEWCOMER);
    people.newcomers.insert(NEWCOMER);
    people
        .communities
        .insert(NEWCOMER, COMMUNITIES.iter().copied().collect());
    let (_, suspended_stream, _) = live.pop().expect("the suspended member's stream");
    let mut suspended_stream = suspended_stream;
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match suspended_stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status.code()),
            }
        }
    })
    .await
    .expect("the suspended member's stream ends");
    assert_eq!(ended, Some(tonic::Code::PermissionDenied));

    let head = markers.last().copied().unwrap_or(0);
    for (i, m) in READERS.iter().chain([&LATE, &NEWCOMER]).enumerate() {
        // Replay from 0: every change decided against the submission's state now; once without
        // a filter, once following one label (a narrowing tombstone passes any label filter).
        let label = LABELS[i % LABELS.len()];
        let mut want: Vec<(u64, Expected, &str)> = Vec::new();
        for l in &log {
            let s = &states[l.story];
            if let Some(e) = on_feed(m, &people, s, l.revision, l.action) {
                want.push((l.seq, e, s.revisions[l.revision - 1].label));
            }
        }
        for mark in &markers {
            want.push((
                *mark,
                ("published".into(), String::new(), true),
                "TLP:CLEAR",
            ));
        }
        want.sort_by_key(|(seq, _, _)| *seq);
        let filtered: Vec<(u64, Expected)> = want
            .iter()
            .filter(|(_, e, l)| e.1 == "audience_narrowed" || *l == label)
            .map(|(seq, e, _)| (*seq, e.clone()))
            .collect();
        let want: Vec<(u64, Expected)> = want.into_iter().map(|(seq, e, _)| (seq, e)).collect();
        if head > 0 {
            let mut replay = subscribe(&t, m, request(0)).await;
            let seen = read_until(&mut replay, head, Duration::from_secs(30)).await;
            check_tombstones(m, &seen);
            assert_eq!(as_expected(&seen), want, "replayed feed of {m}");
            let mut following = request(0);
            following.tlp = vec![label.to_string()];
            let mut replay = subscribe(&t, m, following).await;
            let seen = read_until(&mut replay, head, Duration::from_secs(30)).await;
            assert_eq!(
                as_expected(&seen),
                filtered,
                "replayed feed of {m} following {label}"
            );
        }
        // Get of every revision, and list.
        let mut hub = t.hub(m).await;
        let listed: BTreeMap<String, bool> = hub
            .list(ListRequest {
                include_withdrawn: true,
                page_size: 500,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .submissions
            .into_iter()
            .map(|s| (s.id, s.content.is_some()))
            .collect();
        for (s, id) in states.iter().zip(&ids) {
            if s.revisions.is_empty() {
                continue;
            }
            for n in 0..=s.revisions.len() {
                let got = hub
                    .get(GetRequest {
                        id: id.clone(),
                        revision: n as u32,
                    })
                    .await;
                match (&got, on_get(m, &people, s, n)) {
                    (Ok(r), Some(content)) => {
                        assert_eq!(r.get_ref().content.is_some(), content, "get {m} r{n} {s:?}")
                    }
                    (Err(e), None) => assert_eq!(e.code(), tonic::Code::NotFound),
                    (got, want) => panic!("get by {m} of r{n} of {s:?}: {got:?}, model {want:?}"),
                }
            }
            assert_eq!(
                listed.get(id).copied(),
                on_get(m, &people, s, 0),
                "list of {m} for {s:?}"
            );
        }
    }
    // The suspended member, the admin and the auditor read nothing.
    for m in [SUSPENDED, "ADMIN"] {
        let mut hub = t.hub(m).await;
        for id in ids.iter().filter(|id| !id.is_empty()) {
            let code = hub
                .get(GetRequest {
                    id: id.clone(),
                    revision: 0,
                })
                .await
                .unwrap_err()
                .code();
            assert!(
                matches!(code, tonic::Code::NotFound | tonic::Code::PermissionDenied),
                "{m} reads {id}: {code:?}"
            );
        }
    }
    t.stop().await;
}

proptest! {
    // Each case starts a real hub: few cases, each covering many members and changes.
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn every_exit_delivers_exactly_what_the_audience_rules_allow((stories, steps) in run()) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(scenario(stories, steps));
    }
}
