//! `subscribe --format stix` over real mTLS through a narrowing, a withdrawal and TLP:RED: the
//! CLI subscriber revokes the objects it printed, prints nothing of RED, keeps its cursor moving
//! and keeps receiving what comes after. Expected results from `domain.md` (a reader that loses
//! access gets a withdrawal that tells nothing of the new revision; RED never appears in any STIX
//! output) and issue 14 (the STIX subscriber never stalls; a revoked object, or nothing).
use std::{collections::HashMap, path::Path, process::Command};

use cbm_hub::{
    pb::{self, directory_client::DirectoryClient, notice::Template, submission_content::Body},
    stix::{Mapper, check::check_bundle, ext, tlp},
};
use serde_json::Value;

mod common;

use common::{
    oasis,
    process::{BIN, HubProcess, run_bounded, serve},
    samples,
    stix_cli::{Subscriber, WAIT, of_submission, wait_cursor},
};

const READER: &str = "CL-CSIRT";
const PUBLISHER: &str = "EE-MFA";
/// Words of the RED submission; they must appear in no STIX output.
const RED_WORDS: &str = "RED-SECRET-TITLE";

fn notice(category: &str, title: &str, tlp: &str, recipients: &[&str]) -> pb::SubmissionContent {
    let template = (category == "incident_notification").then(|| {
        Template::IncidentNotification(pb::IncidentNotification {
            incident_summary: format!("{title}: control systems were compromised."),
            affected_sectors: vec!["energy".into()],
            detected_at: "2026-01-01T00:00:00Z".into(),
            status: "ongoing".into(),
            impact: String::new(),
        })
    });
    let mut c = samples::envelope(
        title,
        tlp,
        Body::Notice(pb::Notice {
            category: category.into(),
            subject: format!("{title} subject"),
            text: format!("{title} text."),
            severity: if template.is_some() {
                "high".into()
            } else {
                String::new()
            },
            template,
            ..Default::default()
        }),
    );
    c.recipients = recipients.iter().map(|r| r.to_string()).collect();
    c
}

/// Every bundle conforms and holds nothing of RED: no RED marking, label or words.
fn assert_clean(bundles: &[Value], red_id: &str) {
    let red = tlp::by_label("TLP:RED").unwrap().id;
    for b in bundles {
        let problems = check_bundle(b);
        assert!(problems.is_empty(), "{problems:#?}\n{b:#}");
        let text = b.to_string();
        for word in [red, "TLP:RED", RED_WORDS, red_id] {
            assert!(!text.contains(word), "{word} in STIX output: {b:#}");
        }
    }
}

async fn publish(hub: &HubProcess, content: pb::SubmissionContent) -> pb::PublishResponse {
    let req = pb::PublishRequest {
        content: Some(content),
        idempotency_key: String::new(),
        ..Default::default()
    };
    hub.hub(PUBLISHER)
        .await
        .publish(req)
        .await
        .unwrap()
        .into_inner()
}

async fn withdraw(hub: &HubProcess, id: &str) {
    let req = pb::WithdrawRequest {
        id: id.into(),
        reason: "Sent in error".into(),
        ..Default::default()
    };
    hub.hub(PUBLISHER).await.withdraw(req).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_as_stix_passes_a_narrowing_a_withdrawal_and_red() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hub");
    let (hub, ep) = serve(&home);
    let localhost = Mapper::new("localhost");
    let cursor = dir.path().join("csirt.cursor");
    let mut sub = Subscriber::start(&home, &ep, READER, &cursor);

    // The publisher's severity schema (incidents need one), a CLEAR notice and an AMBER
    // incident addressed to the reader: printed.
    let schema = publish(
        &hub,
        samples::envelope("Schema", "TLP:CLEAR", samples::severity_schema()),
    )
    .await
    .id;
    sub.objects_of(&schema);
    let clear = publish(
        &hub,
        notice("information", "Soon withdrawn", "TLP:CLEAR", &[]),
    )
    .await
    .id;
    let printed_clear = sub.objects_of(&clear);
    assert_eq!(printed_clear[0]["type"], "note");
    let amber = notice(
        "incident_notification",
        "Grid incident",
        "TLP:AMBER",
        &[READER, "EE-CERT"],
    );
    let incident = publish(&hub, amber.clone()).await.id;
    let printed_incident = sub.objects_of(&incident);
    assert_eq!(printed_incident[0]["type"], "incident");

    // Narrowed to EE-CERT: the reader's incident is revoked, under its marking, and nothing of
    // revision 2 (title, hash) comes with it.
    let mut narrowed = amber;
    narrowed.title = "NARROWED-REVISION-TITLE".into();
    narrowed.recipients = vec!["EE-CERT".into()];
    let revision = hub
        .hub(PUBLISHER)
        .await
        .revise(pb::ReviseRequest {
            id: incident.clone(),
            content: Some(narrowed),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let revoked = sub.objects_of(&incident);
    assert_eq!(revoked.len(), 1, "{revoked:#?}");
    let o = &revoked[0];
    assert_eq!(o["id"], printed_incident[0]["id"]);
    assert_eq!(o["revoked"], true);
    assert_eq!(
        o["object_marking_refs"],
        printed_incident[0]["object_marking_refs"]
    );
    assert_eq!(
        o["extensions"][ext::id()]["revocation_reason"],
        "audience_narrowed"
    );
    let text = o.to_string();
    for word in [
        "NARROWED-REVISION-TITLE",
        "Grid incident",
        &revision.content_hash,
    ] {
        assert!(!text.contains(word), "{word} in {o:#}");
    }

    // The publisher withdraws the CLEAR notice: the printed note is revoked.
    withdraw(&hub, &clear).await;
    let revoked = sub.objects_of(&clear);
    assert_eq!(revoked.len(), 1, "{revoked:#?}");
    assert_eq!(revoked[0]["id"], printed_clear[0]["id"]);
    assert_eq!(revoked[0]["revoked"], true);
    assert!(!revoked[0].to_string().contains("Soon withdrawn text"));

    // RED to the reader: its publication, acknowledgement and withdrawal print nothing, each
    // reported on stderr with its sequence.
    let red = publish(&hub, notice("information", RED_WORDS, "TLP:RED", &[READER])).await;
    let note = sub.note_on(&red.id);
    assert!(
        note.contains(&format!("sequence {}", red.sequence))
            && note.contains("TLP:RED is never exported"),
        "{note}"
    );
    DirectoryClient::new(hub.channel(READER).await.unwrap())
        .acknowledge(pb::AcknowledgeRequest {
            notice_id: red.id.clone(),
            reply: "Received.".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(sub.note_on(&red.id).contains("acknowledgement"));
    withdraw(&hub, &red.id).await;
    assert!(sub.note_on(&red.id).contains("nothing was printed"));

    // And the feed goes on: a later item is printed, the cursor passes it.
    let later = publish(
        &hub,
        samples::envelope("After all that", "TLP:CLEAR", samples::policy_document()),
    )
    .await;
    assert_eq!(sub.objects_of(&later.id)[0]["type"], "report");
    wait_cursor(&cursor, later.sequence);
    let (bundles, notes) = sub.stop();
    assert_clean(&bundles, &red.id);
    oasis::validate(dir.path(), &[], &bundles);
    assert!(
        !notes
            .iter()
            .any(|n| n.contains("reconnecting") || n.contains("not mapped")),
        "{notes:#?}"
    );
    let memory = std::fs::read_to_string(dir.path().join("csirt.cursor.stix.json")).unwrap();
    assert!(memory.contains(&incident) && !memory.contains(RED_WORDS));

    // A new subscriber replaying from 0 ends with no live object of the narrowed or withdrawn
    // submission (revoked, or never printed) and nothing of RED, and reaches the head.
    let replay_cursor = dir.path().join("replay.cursor");
    let replay = Subscriber::start(&home, &ep, READER, &replay_cursor);
    wait_cursor(&replay_cursor, later.sequence);
    let (bundles, notes) = replay.stop();
    assert_clean(&bundles, &red.id);
    let mut last: HashMap<String, Value> = HashMap::new();
    for b in &bundles {
        for o in b["objects"].as_array().unwrap() {
            last.insert(o["id"].as_str().unwrap().into(), o.clone());
        }
    }
    for (id, t) in [(&clear, "note"), (&incident, "incident")] {
        let stix_id = localhost.id(t, &format!("submission/{id}"));
        assert!(
            last.get(&stix_id).is_none_or(|o| o["revoked"] == true),
            "{t} of {id} still live after replay: {:#?}",
            last.get(&stix_id)
        );
    }
    assert!(last.contains_key(&localhost.id("report", &format!("submission/{}", later.id))));
    assert!(
        !notes.iter().any(|n| n.contains("reconnecting")),
        "{notes:#?}"
    );

    // export stix: nothing of RED, nor of the narrowed incident; RED is named on stderr only.
    let (ok, out, err) = {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "--home",
            home.to_str().unwrap(),
            "export",
            "stix",
            "-p",
            READER,
        ])
        .args(["--endpoint", &ep]);
        let r = run_bounded(&mut cmd, WAIT);
        (r.success(), r.out, r.err)
    };
    assert!(ok, "{err}");
    let export: Value = serde_json::from_str(&out).unwrap();
    assert_clean(std::slice::from_ref(&export), &red.id);
    assert!(of_submission(&export, &incident).is_empty());
    assert_eq!(of_submission(&export, &later.id).len(), 1);

    restarts(&hub, &home, &ep, &cursor, &later.id, &schema).await;
    hub.kill();
}

/// The memory next to the cursor file across restarts: kept, it revokes exactly what was
/// printed (under its CLEAR marking); lost, the subscriber revokes by kind (marked AMBER);
/// damaged, the subscriber refuses to start, naming the file.
async fn restarts(
    hub: &HubProcess,
    home: &Path,
    ep: &str,
    cursor: &Path,
    policy: &str,
    schema: &str,
) {
    let memory = cursor.with_file_name("csirt.cursor.stix.json");
    let clear = serde_json::json!([tlp::by_label("TLP:CLEAR").unwrap().id]);
    let amber = serde_json::json!([tlp::by_label("TLP:AMBER").unwrap().id]);

    withdraw(hub, policy).await;
    let mut sub = Subscriber::start(home, ep, READER, cursor);
    let o = sub.objects_of(policy);
    assert_eq!((o.len(), &o[0]["revoked"]), (1, &serde_json::json!(true)));
    assert_eq!(
        o[0]["object_marking_refs"], clear,
        "the printed object's marking"
    );
    sub.stop();

    std::fs::remove_file(&memory).unwrap();
    withdraw(hub, schema).await;
    let mut sub = Subscriber::start(home, ep, READER, cursor);
    assert!(sub.note_on("stix.json").contains("not found"));
    let o = sub.objects_of(schema);
    assert_eq!((o.len(), &o[0]["revoked"]), (1, &serde_json::json!(true)));
    assert_eq!(
        o[0]["object_marking_refs"], amber,
        "revoked by kind, label unknown"
    );
    sub.stop();

    std::fs::write(&memory, "garbage").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["--home", home.to_str().unwrap(), "subscribe", "-p", READER])
        .args(["--format", "stix", "--endpoint", ep, "--cursor-file"])
        .arg(cursor);
    let r = run_bounded(&mut cmd, WAIT);
    assert!(!r.success() && r.out.is_empty(), "{}", r.err);
    assert!(
        r.err
            .contains("csirt.cursor.stix.json: not a STIX subscriber memory"),
        "{}",
        r.err
    );
}
