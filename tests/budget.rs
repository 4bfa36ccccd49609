//! Byte budgets over real mTLS, on the real binary: the largest submission the hub accepts is
//! read back whole on every exit (Get, List, the feed replayed and live, `export stix`,
//! `subscribe --format stix`, the audit log and the access log), one byte more is refused
//! naming `content` and both numbers, and pages of large items are cut by bytes, not counts.
use std::{path::Path, time::Duration};

use cbm_hub::{
    feed::wire::{Event, FeedEventFields},
    pb::{
        self, SubmissionContent, feed_client::FeedClient, hub_client::HubClient,
        submission_content::Body,
    },
};
use prost::Message;
use serde_json::Value;
use tonic::{Code, transport::Channel};

mod common;

use common::{
    process::{self, BIN, HubProcess, cli, serve},
    samples,
};

const PUBLISHER: &str = "EE-MFA";
const READER: &str = "CL-CSIRT";
/// The hub's default message limit (`limits.max_message_bytes`), which `init` writes.
const LIMIT: usize = 4 * 1024 * 1024;
/// Large enough for anything a hub may send.
const DECODE: usize = 256 * 1024 * 1024;
/// Generous for a debug build moving megabytes on a loaded machine; never waited for in full
/// unless something is wrong.
const PATIENCE: Duration = Duration::from_secs(120);

/// `c` grown by `set(c, n)` until it is exactly `bytes` long encoded (length prefixes grow with
/// what they count, so the padding is corrected until it lands).
fn sized(
    mut c: SubmissionContent,
    bytes: usize,
    set: impl Fn(&mut SubmissionContent, usize),
) -> SubmissionContent {
    set(&mut c, 0);
    let mut pad = bytes.saturating_sub(c.encoded_len());
    for _ in 0..16 {
        set(&mut c, pad);
        match c.encoded_len().cmp(&bytes) {
            std::cmp::Ordering::Equal => return c,
            std::cmp::Ordering::Greater => pad -= c.encoded_len() - bytes,
            std::cmp::Ordering::Less => pad += bytes - c.encoded_len(),
        }
    }
    panic!("no padding makes {bytes} bytes");
}

/// A TLP:CLEAR terminology list of exactly `bytes` encoded: two attachments of 1 MiB (the most
/// attachments may hold in all) and 2,000 definitions sharing the rest. Definitions appear once
/// in STIX, attachments not at all (only their names and hashes).
fn large(title: &str, bytes: usize) -> SubmissionContent {
    let c = SubmissionContent {
        title: title.into(),
        language: "en".into(),
        summary: "The largest submission the hub accepts.".into(),
        tlp: "TLP:CLEAR".into(),
        cbm_refs: vec!["OSCE-CBM-9".into()],
        attachments: vec![
            samples::attachment("glossary-1.bin", 1, 1024 * 1024),
            samples::attachment("glossary-2.bin", 2, 1024 * 1024),
        ],
        ..Default::default()
    };
    sized(c, bytes, |c, n| {
        let terms = (0..2000)
            .map(|i| pb::Term {
                term: format!("term {i}"),
                definition: "d".repeat(1 + n / 2000 + usize::from(i < n % 2000)),
                ..Default::default()
            })
            .collect();
        c.body = Some(Body::TerminologyList(pb::TerminologyList { terms }));
    })
}

async fn hub_client(hub: &HubProcess, member: &str) -> HubClient<Channel> {
    HubClient::new(hub.channel(member).await.unwrap()).max_decoding_message_size(DECODE)
}

async fn publish(
    hub: &HubProcess,
    member: &str,
    content: SubmissionContent,
) -> Result<pb::PublishResponse, tonic::Status> {
    hub_client(hub, member)
        .await
        .publish(pb::PublishRequest {
            content: Some(content),
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// The numbers in "content: too large: SIZE bytes ...; at most LIMIT are accepted".
fn refused_sizes(status: &tonic::Status) -> (usize, usize) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let m = status.message();
    assert!(m.starts_with("content: too large: "), "{m}");
    let number = |after: &str| -> usize {
        let rest = &m[m.find(after).unwrap_or_else(|| panic!("{m}")) + after.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (number("too large: "), number("at most "))
}

async fn subscribe(
    hub: &HubProcess,
    member: &str,
    req: pb::SubscribeRequest,
) -> tonic::Streaming<cbm_hub::feed::wire::FeedEvent> {
    FeedClient::new(hub.channel(member).await.unwrap())
        .max_decoding_message_size(DECODE)
        .subscribe(req)
        .await
        .unwrap()
        .into_inner()
}

/// Reads changes until sequence `last`, returning them; heartbeats are skipped.
async fn changes_until(
    stream: &mut tonic::Streaming<cbm_hub::feed::wire::FeedEvent>,
    last: u64,
) -> Vec<(u64, pb::FeedChange)> {
    let mut out = Vec::new();
    loop {
        let event = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .expect("the feed delivers within the time allowed")
            .expect("the feed stream stays up")
            .expect("the feed stream stays open");
        let FeedEventFields { sequence, event } = event.into_fields().unwrap();
        if let Some(Event::Change(c)) = event {
            out.push((sequence, *c));
        }
        if sequence >= last {
            return out;
        }
    }
}

fn content_of(change: &pb::FeedChange) -> Option<&SubmissionContent> {
    change.submission.as_ref()?.content.as_ref()
}

/// Runs the binary with `args` against `endpoint`, killed after the time allowed.
fn run(home: &Path, endpoint: &str, args: &[&str]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["--home", home.to_str().unwrap()])
        .args(args)
        .args(["--endpoint", endpoint]);
    let r = process::run_bounded(&mut cmd, PATIENCE);
    (r.success(), r.out, r.err)
}

/// `subscribe --format stix` from 0 as `member`, for as many changes as `ids`: one bundle per
/// change, in order, naming its submission, none over the message limit.
fn stix_lines(home: &Path, endpoint: &str, member: &str, ids: &[&str]) {
    let count = ids.len().to_string();
    let (ok, out, err) = run(
        home,
        endpoint,
        &[
            "subscribe",
            "--format",
            "stix",
            "--max-events",
            &count,
            "-p",
            member,
        ],
    );
    assert!(ok, "subscribe --format stix as {member}: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), ids.len(), "{member}: {err}");
    for (line, id) in lines.iter().zip(ids) {
        assert!(line.len() <= LIMIT, "a STIX bundle of {} bytes", line.len());
        let b: Value = serde_json::from_str(line).unwrap();
        assert!(b.to_string().contains(id), "{member}: {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_accepted_submission_is_readable_on_every_exit() {
    let home = tempfile::tempdir().unwrap();
    process::init(home.path());
    let (hub, endpoint) = serve(home.path());

    // A live subscriber, following from now before anything is published.
    let mut live = subscribe(
        &hub,
        READER,
        pb::SubscribeRequest {
            from_now: true,
            heartbeat_seconds: 300,
            ..Default::default()
        },
    )
    .await;
    changes_until(&mut live, 0).await;

    // Content the size of the message limit less a little is refused, and the refusal names
    // the content limit: the message limit less the largest envelope around the content.
    let probe = LIMIT - 100;
    let e = publish(&hub, PUBLISHER, large("probe", probe))
        .await
        .unwrap_err();
    let (size, max) = refused_sizes(&e);
    assert_eq!(size, probe);
    assert!(max < probe && max > LIMIT - 64 * 1024, "{max}");
    assert!(e.message().contains(&LIMIT.to_string()), "{}", e.message());

    // One byte over: refused, naming both numbers; nothing is stored.
    let e = publish(&hub, PUBLISHER, large("one byte over", max + 1))
        .await
        .unwrap_err();
    assert_eq!(refused_sizes(&e), (max + 1, max));

    // Exactly at the limit: accepted, twice.
    let first = large("first at the limit", max);
    let second = large("second at the limit", max);
    let p1 = publish(&hub, PUBLISHER, first.clone()).await.unwrap();
    let p2 = publish(&hub, PUBLISHER, second.clone()).await.unwrap();
    assert_eq!(
        (p1.sequence, p2.sequence),
        (1, 2),
        "nothing refused was stored"
    );

    // Live.
    let got = changes_until(&mut live, 2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(content_of(&got[0].1), Some(&first));
    assert_eq!(content_of(&got[1].1), Some(&second));

    // Get, as the reader and as the publisher.
    for member in [READER, PUBLISHER] {
        let mut client = hub_client(&hub, member).await;
        for (p, sent) in [(&p1, &first), (&p2, &second)] {
            let s = client
                .get(pb::GetRequest {
                    id: p.id.clone(),
                    revision: 0,
                })
                .await
                .unwrap_or_else(|e| panic!("{member} gets {}: {e}", p.id))
                .into_inner();
            assert_eq!(s.content.as_ref(), Some(sent));
        }
    }

    // List: two such items do not fit one message, so the page ends after the first and its
    // token leads to the second.
    let mut client = hub_client(&hub, READER).await;
    let mut req = pb::ListRequest {
        page_size: 500,
        ..Default::default()
    };
    let mut pages = Vec::new();
    loop {
        let page = client.list(req.clone()).await.unwrap().into_inner();
        pages.push(
            page.submissions
                .iter()
                .map(|s| (s.id.clone(), s.content.clone()))
                .collect::<Vec<_>>(),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        req.page_token = page.next_page_token;
        assert!(pages.len() < 10, "List ends");
    }
    let listed: Vec<_> = pages.concat();
    assert_eq!(
        listed,
        vec![
            (p1.id.clone(), Some(first.clone())),
            (p2.id.clone(), Some(second.clone()))
        ]
    );
    assert!(
        pages.iter().all(|p| p.len() <= 1),
        "cut by bytes: {}",
        pages.len()
    );

    // STIX, as the reader: the export holds both, and `subscribe --format stix` prints both,
    // each bundle within the message limit.
    let bundle_file = home.path().join("export.json");
    let (ok, _, err) = run(
        home.path(),
        &endpoint,
        &[
            "export",
            "stix",
            "--out",
            bundle_file.to_str().unwrap(),
            "-p",
            READER,
        ],
    );
    assert!(ok, "export stix: {err}");
    let text = std::fs::read_to_string(&bundle_file).unwrap();
    let bundle: Value = serde_json::from_str(&text).unwrap();
    assert!(bundle["objects"].as_array().is_some_and(|o| !o.is_empty()));
    assert!(text.contains(&p1.id) && text.contains(&p2.id));
    stix_lines(home.path(), &endpoint, READER, &[&p1.id, &p2.id]);

    // The publisher withdraws the first with the longest reason: its stored revision now holds
    // the content, the reason and the largest envelope.
    let reason = "\u{10FFFF}".repeat(1000);
    let withdrawn = hub_client(&hub, PUBLISHER)
        .await
        .withdraw(pb::WithdrawRequest {
            id: p1.id.clone(),
            reason: reason.clone(),
            expected_revision: 1,
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let s = hub_client(&hub, PUBLISHER)
        .await
        .get(pb::GetRequest {
            id: p1.id.clone(),
            revision: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (s.status.as_str(), s.content.as_ref()),
        ("withdrawn", Some(&first))
    );
    assert_eq!(s.withdrawal_reason, reason);

    // The feed replayed from 0: the publisher gets all three whole, its withdrawn revision
    // included; the reader, after the withdrawal, the second whole and only the tombstone of
    // the first (a withdrawn submission's content is not replayed to others).
    let mut replay = subscribe(
        &hub,
        PUBLISHER,
        pb::SubscribeRequest {
            after_sequence: 0,
            ..Default::default()
        },
    )
    .await;
    let got = changes_until(&mut replay, withdrawn.sequence).await;
    let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, vec![1, 2, withdrawn.sequence]);
    assert_eq!(content_of(&got[0].1), Some(&first));
    assert_eq!(content_of(&got[1].1), Some(&second));
    assert_eq!(got[2].1.action, "withdrawn");
    assert_eq!(content_of(&got[2].1), Some(&first));
    let mut replay = subscribe(
        &hub,
        READER,
        pb::SubscribeRequest {
            after_sequence: 0,
            ..Default::default()
        },
    )
    .await;
    let got = changes_until(&mut replay, withdrawn.sequence).await;
    let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, vec![2, withdrawn.sequence]);
    assert_eq!(content_of(&got[0].1), Some(&second));
    assert_eq!(got[1].1.action, "withdrawn");
    assert_eq!(content_of(&got[1].1), None);
    drop(replay);
    // The publisher's STIX of all three: the last, its withdrawn revision with the longest
    // reason, the largest STIX the hub can produce for this content.
    stix_lines(home.path(), &endpoint, PUBLISHER, &[&p1.id, &p2.id, &p1.id]);
    // The live subscriber got the withdrawal too, and its stream is still up.
    let got = changes_until(&mut live, withdrawn.sequence).await;
    assert_eq!(got.len(), 1);

    // The audit log: its query and its export hold the entries about the first submission,
    // and its publisher's access log shows the reader's reads.
    let (ok, out, err) = run(
        home.path(),
        &endpoint,
        &[
            "audit",
            "query",
            "--object",
            &p1.id,
            "--all",
            "--json",
            "-p",
            "HUB-ADMIN",
        ],
    );
    assert!(ok, "audit query: {err}");
    let actions: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for action in [
        "submission.publish",
        "submission.get",
        "submission.withdraw",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    let export = home.path().join("audit.jsonl");
    let (ok, _, err) = run(
        home.path(),
        &endpoint,
        &[
            "audit",
            "export",
            "--out",
            export.to_str().unwrap(),
            "-p",
            "HUB-ADMIN",
        ],
    );
    assert!(ok, "audit export: {err}");
    let exported = std::fs::read_to_string(&export).unwrap();
    assert!(
        exported
            .lines()
            .any(|l| l.contains(&p1.id) && l.contains("submission.publish"))
    );
    // Feed deliveries are recorded when a stream ends: the replays ended above, the live
    // stream ends here, and the hub records it as soon as it sees the stream gone.
    drop(live);
    let mut seen = String::new();
    for _ in 0..100 {
        let (ok, out, err) = cli(
            home.path(),
            &endpoint,
            &["access-log", &p1.id, "--json", "-p", PUBLISHER],
        );
        assert!(ok, "access-log: {err}");
        seen = out;
        let has = |via: &str| {
            seen.lines()
                .any(|l| l.contains(READER) && l.contains(&format!("\"{via}\"")))
        };
        if ["get", "list", "feed"].into_iter().all(has) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for via in ["get", "list", "feed"] {
        assert!(
            seen.lines()
                .any(|l| l.contains(READER) && l.contains(&format!("\"{via}\""))),
            "{via} in {seen}"
        );
    }
    drop(hub);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_whose_stix_would_exceed_the_limit_is_refused_and_directory_pages_are_cut_by_bytes()
{
    let home = tempfile::tempdir().unwrap();
    process::init(home.path());
    let (hub, endpoint) = serve(home.path());

    // 2,000 definitions of 1,100 quotes: under the content limit encoded, but every quote is
    // escaped in JSON, so its STIX bundle would not fit the message limit.
    let quotes = SubmissionContent {
        title: "quotes".into(),
        language: "en".into(),
        tlp: "TLP:CLEAR".into(),
        body: Some(Body::TerminologyList(pb::TerminologyList {
            terms: (0..2000)
                .map(|i| pb::Term {
                    term: format!("term {i}"),
                    definition: "\"".repeat(1100),
                    ..Default::default()
                })
                .collect(),
        })),
        ..Default::default()
    };
    assert!(quotes.encoded_len() < LIMIT - 64 * 1024);
    let e = publish(&hub, PUBLISHER, quotes).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message().starts_with("content: too large: ") && e.message().contains("STIX"),
        "{}",
        e.message()
    );

    // Two points of contact of more than half the message limit each: a directory page holds
    // one, and the CLI follows the token to the other.
    let mut ids = Vec::new();
    for (i, member) in [PUBLISHER, "EE-CERT"].into_iter().enumerate() {
        let poc = SubmissionContent {
            title: format!("contact {i}"),
            language: "en".into(),
            tlp: "TLP:CLEAR".into(),
            cbm_refs: vec!["UN-CBM-1".into()],
            attachments: vec![
                samples::attachment("card-1.bin", 1, 1024 * 1024),
                samples::attachment("card-2.bin", 2, 1024 * 1024),
            ],
            body: Some(Body::PointOfContact(pb::PointOfContact {
                level: "technical".into(),
                organisation: format!("CERT {i}"),
                function: "Duty officer".into(),
                channels: vec![pb::ContactChannel {
                    r#type: "email".into(),
                    value: "cert@example.ee".into(),
                    note: String::new(),
                }],
                languages: vec!["en".into()],
                availability: "24/7".into(),
                time_zone: "Europe/Tallinn".into(),
                last_verified: "2026-01-15".into(),
            })),
            ..Default::default()
        };
        assert!(poc.encoded_len() > LIMIT / 2);
        ids.push(publish(&hub, member, poc).await.unwrap().id);
    }
    let mut directory =
        cbm_hub::pb::directory_client::DirectoryClient::new(hub.channel(READER).await.unwrap())
            .max_decoding_message_size(DECODE);
    let first = directory
        .list_contacts(pb::ListContactsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.contacts.len(), 1);
    assert!(!first.next_page_token.is_empty());
    let (ok, out, err) = run(
        home.path(),
        &endpoint,
        &["contacts", "--json", "-p", READER],
    );
    assert!(ok, "contacts: {err}");
    for id in &ids {
        assert!(out.contains(id.as_str()), "{id} in the directory");
    }
    drop(hub);
}
