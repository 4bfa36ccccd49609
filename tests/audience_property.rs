//! Property: for random communities, labels, recipients, revisions and withdrawals, what each
//! member receives through every exit (get, list, feed replay, live feed) equals an independent
//! model of the TLP 2.0 audience table in domain.md.
mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use cbm_hub::pb::{
    self, GetRequest, ListRequest, PublishRequest, ReviseRequest, SubmissionContent,
    WithdrawRequest,
};
use common::{
    MEMBERS, TestHub,
    feed::{read_until, request, subscribe},
    samples,
};
use proptest::prelude::*;

const READERS: [&str; 4] = ["EE-MFA", "EE-CERT", "CL-MINREL", "CL-CSIRT"];
const PUBLISHERS: [&str; 3] = ["EE-MFA", "EE-CERT", "CL-MINREL"];
const LABELS: [&str; 5] = [
    "TLP:CLEAR",
    "TLP:GREEN",
    "TLP:AMBER",
    "TLP:AMBER+STRICT",
    "TLP:RED",
];
const COMMUNITIES: [&str; 3] = ["OSCE", "OAS", "UN"];

/// An audience as the publisher chose it.
#[derive(Debug, Clone)]
struct Aud {
    label: &'static str,
    recipients: Vec<&'static str>,
    community: Option<&'static str>,
}

/// One submission's history: publication, optional revision, optional withdrawal.
#[derive(Debug, Clone)]
struct Story {
    publisher: &'static str,
    first: Aud,
    revised: Option<Aud>,
    withdrawn: bool,
}

fn aud() -> impl Strategy<Value = Aud> {
    (
        0..5usize,
        proptest::sample::subsequence(READERS.to_vec(), 1..=3),
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
    (0..3usize, aud(), proptest::option::of(aud()), any::<bool>()).prop_map(
        |(p, first, revised, withdrawn)| Story {
            publisher: PUBLISHERS[p],
            first,
            revised,
            withdrawn,
        },
    )
}

/// The model: the table of domain.md, written independently of the hub's code.
fn reads(
    member: &str,
    communities: &BTreeMap<&str, BTreeSet<&str>>,
    publisher: &str,
    a: &Aud,
) -> bool {
    if member == publisher {
        return true;
    }
    match a.label {
        "TLP:CLEAR" => true,
        "TLP:GREEN" => a.community.is_none_or(|c| communities[member].contains(c)),
        _ => a.recipients.contains(&member),
    }
}

fn to_content(a: &Aud, title: &str) -> SubmissionContent {
    let mut c = samples::envelope(title, a.label, samples::notice());
    c.recipients = a.recipients.iter().map(|s| s.to_string()).collect();
    c.community = a.community.unwrap_or("").to_string();
    c
}

/// What the model says a member receives on the feed for each sequence number.
fn expected_feed(
    member: &str,
    communities: &BTreeMap<&str, BTreeSet<&str>>,
    events: &[(u64, &Story, &'static str)],
) -> Vec<(u64, String, bool)> {
    let mut out = Vec::new();
    for (seq, story, action) in events {
        let (now, before) = match *action {
            "published" => (&story.first, None),
            "revised" => (story.revised.as_ref().unwrap(), Some(&story.first)),
            _ => (story.revised.as_ref().unwrap_or(&story.first), None),
        };
        let p = story.publisher;
        let can = reads(member, communities, p, now);
        match *action {
            "withdrawn" if can => out.push((*seq, "withdrawn".into(), member == p)),
            "withdrawn" => {}
            _ if can => out.push((*seq, action.to_string(), true)),
            "revised" if before.is_some_and(|b| reads(member, communities, p, b)) => {
                out.push((*seq, "withdrawn".into(), false))
            }
            _ => {}
        }
    }
    out
}

async fn scenario(member_communities: Vec<Vec<usize>>, stories: Vec<Story>) {
    let t = TestHub::start_with(MEMBERS).await;
    // Random communities per reader.
    let mut admin = t.admin("ADMIN").await;
    let mut communities: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (m, cs) in READERS.iter().zip(member_communities) {
        let set: BTreeSet<&str> = cs.into_iter().map(|i| COMMUNITIES[i]).collect();
        admin
            .update_member(pb::UpdateMemberRequest {
                id: m.to_string(),
                set_communities: true,
                communities: set.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            })
            .await
            .unwrap();
        communities.insert(m, set);
    }
    // Live subscribers, before any change.
    let mut live = Vec::new();
    for m in READERS {
        live.push(subscribe(&t, m, request(0)).await);
    }
    // A GREEN community no member belongs to is refused (it would hide the submission from
    // everyone): such publications and revisions are tried, must fail, and are left out.
    let exists = |a: &Aud| {
        a.community
            .is_none_or(|c| communities.values().any(|set| set.contains(c)))
    };
    let mut kept = Vec::new();
    for (i, story) in stories.into_iter().enumerate() {
        let mut hub = t.hub(story.publisher).await;
        if !exists(&story.first) {
            let req = PublishRequest {
                content: Some(to_content(&story.first, &format!("refused {i}"))),
                idempotency_key: String::new(),
            };
            assert_eq!(
                hub.publish(req).await.unwrap_err().code(),
                tonic::Code::InvalidArgument
            );
            continue;
        }
        let revised = story.revised.clone().filter(|r| exists(r));
        kept.push(Story { revised, ..story });
    }
    let stories = kept;
    // Apply the stories in order, recording every change's sequence.
    let mut events = Vec::new();
    let mut ids = Vec::new();
    for (i, story) in stories.iter().enumerate() {
        let mut hub = t.hub(story.publisher).await;
        let r = hub
            .publish(PublishRequest {
                content: Some(to_content(&story.first, &format!("s{i}"))),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        events.push((r.sequence, story, "published"));
        if let Some(rev) = &story.revised {
            let r2 = hub
                .revise(ReviseRequest {
                    id: r.id.clone(),
                    content: Some(to_content(rev, &format!("s{i} v2"))),
                    expected_revision: 1,
                    idempotency_key: String::new(),
                })
                .await
                .unwrap()
                .into_inner();
            events.push((r2.sequence, story, "revised"));
        }
        if story.withdrawn {
            let w = hub
                .withdraw(WithdrawRequest {
                    id: r.id.clone(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            events.push((w.sequence, story, "withdrawn"));
        }
        ids.push(r.id);
    }
    let head = events.len() as u64;
    for (m, live_stream) in READERS.iter().zip(live.iter_mut()) {
        let expected = expected_feed(m, &communities, &events);
        let as_tuples = |seen: Vec<common::feed::Seen>| {
            seen.into_iter()
                .map(|s| (s.sequence, s.action, s.has_content))
                .collect::<Vec<_>>()
        };
        // Live exit.
        let got_live = if head == 0 {
            vec![]
        } else {
            as_tuples(read_until(live_stream, head, Duration::from_secs(30)).await)
        };
        assert_eq!(got_live, expected, "live feed of {m}");
        // Replay exit.
        let mut replay = subscribe(&t, m, request(0)).await;
        let got_replay = if head == 0 {
            vec![]
        } else {
            as_tuples(read_until(&mut replay, head, Duration::from_secs(30)).await)
        };
        assert_eq!(got_replay, expected, "replayed feed of {m}");
        // Get and list exits: the latest state of each submission.
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
        for (story, id) in stories.iter().zip(&ids) {
            let latest = story.revised.as_ref().unwrap_or(&story.first);
            let visible = reads(m, &communities, story.publisher, latest);
            let with_content = visible && (!story.withdrawn || *m == story.publisher);
            let got = hub
                .get(GetRequest {
                    id: id.clone(),
                    revision: 0,
                })
                .await;
            match (&got, visible) {
                (Ok(s), true) => assert_eq!(
                    s.get_ref().content.is_some(),
                    with_content,
                    "get content {m} {story:?}"
                ),
                (Err(e), false) => assert_eq!(e.code(), tonic::Code::NotFound),
                _ => panic!("get by {m} of {story:?}: {got:?}"),
            }
            assert_eq!(
                listed.get(id).copied(),
                visible.then_some(with_content),
                "list of {m} for {story:?}"
            );
        }
    }
    t.stop().await;
}

proptest! {
    // Each case starts a real hub: few cases, each covering many members and submissions.
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn every_exit_delivers_exactly_what_the_tlp_table_allows(
        member_communities in proptest::collection::vec(proptest::sample::subsequence(vec![0usize, 1, 2], 0..=3), 4),
        stories in proptest::collection::vec(story(), 1..12),
    ) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(scenario(member_communities, stories));
    }
}
