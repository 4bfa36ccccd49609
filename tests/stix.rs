//! STIX 2.1 output over real mTLS: two members publish a mix of kinds and TLP labels, a third
//! exports and subscribes with `--format stix`. Every bundle passes the checker written from the
//! STIX 2.1 specification (and the OASIS stix2-validator when pip can install it), and holds
//! exactly what the hub delivers to that member, except TLP:RED, which is never exported.
//! Tombstones and RED through a live subscriber: `tests/stix_feed.rs`.
use std::{
    collections::{BTreeSet, HashMap},
    path::Path,
};

use cbm_hub::{
    pb::{self, directory_client::DirectoryClient, notice::Template, submission_content::Body},
    stix::{Mapper, check::check_bundle, ext, tlp},
};
use serde_json::Value;

mod common;

use common::{
    oasis,
    process::{HubProcess, cli, serve},
    samples,
    stix_cli::{Subscriber, wait_cursor},
};

const READER: &str = "CL-CSIRT";

fn notice(category: &str, title: &str, tlp: &str, recipients: &[&str]) -> pb::SubmissionContent {
    let template = match category {
        "incident_notification" => Some(Template::IncidentNotification(pb::IncidentNotification {
            incident_summary: "Control systems of a grid operator were compromised.".into(),
            affected_sectors: vec!["energy".into()],
            detected_at: "2026-01-01T00:00:00Z".into(),
            status: "ongoing".into(),
            impact: String::new(),
        })),
        "request_for_assistance" => {
            Some(Template::RequestForAssistance(pb::RequestForAssistance {
                incident_summary: "Ransomware at a hospital.".into(),
                affected_sector: "health".into(),
                assistance_requested: "Forensic support.".into(),
                respond_by: "2099-01-01T00:00:00Z".into(),
            }))
        }
        _ => None,
    };
    let mut c = samples::envelope(
        title,
        tlp,
        Body::Notice(pb::Notice {
            category: category.into(),
            subject: format!("{title} subject"),
            text: format!("{title} text."),
            severity: if category == "incident_notification" {
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

async fn publish(hub: &HubProcess, member: &str, content: pb::SubmissionContent) -> String {
    hub.hub(member)
        .await
        .publish(pb::PublishRequest {
            content: Some(content),
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{member} publishes: {e}"))
        .into_inner()
        .id
}

/// Runs `export stix` with `args`, reading the bundle from `out` when given (else stdout);
/// the run must succeed and the bundle conform. Returns (its text, the bundle, stderr).
fn export_stix(
    home: &Path,
    ep: &str,
    args: &[&str],
    out: Option<&Path>,
) -> (String, Value, String) {
    let (ok, stdout, err) = cli(home, ep, &[&["export", "stix"], args].concat());
    assert!(ok, "export stix {args:?}: {err}");
    let text = match out {
        Some(file) => std::fs::read_to_string(file).unwrap(),
        None => stdout,
    };
    let bundle: Value = serde_json::from_str(&text).unwrap();
    assert_conforms(&bundle);
    (text, bundle, err)
}

/// The objects mapped from submissions: submission id -> objects (type, id, revoked, tlp).
fn by_submission(bundle: &Value) -> HashMap<String, Vec<Value>> {
    let mut out: HashMap<String, Vec<Value>> = HashMap::new();
    for o in bundle["objects"].as_array().unwrap() {
        if let Some(id) = o["extensions"][ext::id()]["submission_id"].as_str() {
            out.entry(id.to_string()).or_default().push(o.clone());
        }
    }
    out
}

/// The reader may hold AMBER, AMBER+STRICT and RED content only as a named recipient; every
/// object's marking is the one of its label.
fn assert_audience(o: &Value) {
    let e = &o["extensions"][ext::id()];
    let Some(label) = e["tlp"].as_str() else {
        return;
    };
    assert_eq!(
        o["object_marking_refs"],
        serde_json::json!([tlp::by_label(label).unwrap().id])
    );
    if matches!(label, "TLP:AMBER" | "TLP:AMBER+STRICT" | "TLP:RED") {
        let recipients: Vec<&str> = e["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            recipients.contains(&READER),
            "{label} object for a non-recipient: {o}"
        );
    }
}

fn assert_conforms(bundle: &Value) {
    let problems = check_bundle(bundle);
    assert!(problems.is_empty(), "{problems:#?}\n{bundle:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_subscribe_as_stix_hold_only_what_the_member_may_see() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hub");
    let (hub, ep) = serve(&home);

    // EE-MFA (OSCE, UN) and CL-MINREL (OAS, UN) publish; CL-CSIRT (OAS, UN) reads.
    let mut visible = BTreeSet::new();
    let mut hidden = Vec::new();
    let env = samples::envelope;
    let policy = publish(
        &hub,
        "EE-MFA",
        env("Strategy", "TLP:CLEAR", samples::policy_document()),
    )
    .await;
    visible.insert(policy.clone());
    visible.insert(
        publish(
            &hub,
            "EE-MFA",
            env("Schema", "TLP:CLEAR", samples::severity_schema()),
        )
        .await,
    );
    visible.insert(
        publish(
            &hub,
            "EE-MFA",
            env("Contact", "TLP:GREEN", samples::point_of_contact()),
        )
        .await,
    );
    let incident = publish(
        &hub,
        "EE-MFA",
        notice(
            "incident_notification",
            "Grid incident",
            "TLP:AMBER",
            &[READER],
        ),
    )
    .await;
    visible.insert(incident.clone());
    hidden.push((
        publish(
            &hub,
            "EE-MFA",
            notice("information", "HIDDEN-RED-EE", "TLP:RED", &["EE-CERT"]),
        )
        .await,
        "HIDDEN-RED-EE",
    ));
    let mut osce = notice("information", "HIDDEN-GREEN-OSCE", "TLP:GREEN", &[]);
    osce.community = "OSCE".into();
    hidden.push((publish(&hub, "EE-MFA", osce).await, "HIDDEN-GREEN-OSCE"));

    let mut oas = env(
        "CI approach",
        "TLP:GREEN",
        samples::critical_infrastructure(),
    );
    oas.community = "OAS".into();
    visible.insert(publish(&hub, "CL-MINREL", oas).await);
    hidden.push((
        publish(
            &hub,
            "CL-MINREL",
            notice(
                "request_for_assistance",
                "HIDDEN-STRICT",
                "TLP:AMBER+STRICT",
                &["EE-CERT"],
            ),
        )
        .await,
        "HIDDEN-STRICT",
    ));
    let mut terms = env("Terms", "TLP:AMBER", samples::terminology_list());
    terms.recipients = vec![READER.into()];
    let terms_id = publish(&hub, "CL-MINREL", terms.clone()).await;
    visible.insert(terms_id.clone());
    terms.title = "Terms, revised".into();
    hub.hub("CL-MINREL")
        .await
        .revise(pb::ReviseRequest {
            id: terms_id.clone(),
            content: Some(terms),
            ..Default::default()
        })
        .await
        .unwrap();
    let gone = publish(
        &hub,
        "CL-MINREL",
        notice("information", "Soon withdrawn", "TLP:CLEAR", &[]),
    )
    .await;
    hub.hub("CL-MINREL")
        .await
        .withdraw(pb::WithdrawRequest {
            id: gone.clone(),
            reason: "Sent in error".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // RED addressed to the reader: delivered by the hub, never exported by the mapping.
    let red_for_reader = publish(
        &hub,
        "CL-MINREL",
        notice(
            "request_for_assistance",
            "Red for the reader",
            "TLP:RED",
            &[READER],
        ),
    )
    .await;
    hidden.push((red_for_reader.clone(), "Red for the reader"));
    visible.insert(
        publish(
            &hub,
            "CL-MINREL",
            notice(
                "request_for_assistance",
                "Amber for the reader",
                "TLP:AMBER",
                &[READER],
            ),
        )
        .await,
    );
    // The last change of the reader's feed.
    let ack = DirectoryClient::new(hub.channel(READER).await.unwrap())
        .acknowledge(pb::AcknowledgeRequest {
            notice_id: incident.clone(),
            reply: "Received; our team is on it.".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    // export stix: one bundle of what the reader may currently see.
    let out = dir.path().join("export.json");
    let (text, export, err) = export_stix(
        &home,
        &ep,
        &["-p", READER, "--out", out.to_str().unwrap()],
        Some(&out),
    );
    let objects = by_submission(&export);
    assert_eq!(
        objects.keys().cloned().collect::<BTreeSet<_>>(),
        visible,
        "exactly the active submissions the reader may see"
    );
    for (id, words) in &hidden {
        assert!(
            !text.contains(id.as_str()) && !text.contains(words),
            "{words} leaked"
        );
    }
    for o in objects.values().flatten() {
        assert_audience(o);
    }
    let types: BTreeSet<&str> = objects
        .values()
        .flatten()
        .filter_map(|o| o["type"].as_str())
        .collect();
    assert_eq!(
        types,
        BTreeSet::from(["identity", "incident", "note", "report"])
    );
    let incident_object = &objects[&incident][0];
    assert_eq!(incident_object["type"], "incident");
    assert_eq!(incident_object["extensions"][ext::id()]["severity"], "high");
    // The RED notice addressed to the reader is named on stderr, and no RED marking travels.
    let red = tlp::by_label("TLP:RED").unwrap().id;
    assert!(!text.contains(red), "{text}");
    assert!(
        err.contains(&format!("not exported: submission {red_for_reader}"))
            && err.contains("TLP:RED is never exported")
            && err.contains(&format!(
                "exported {} of {} submissions",
                visible.len(),
                visible.len() + 1
            )),
        "{err}"
    );

    // With withdrawn submissions: the withdrawn one as revoked tombstones, without content.
    let out_all = dir.path().join("export-all.json");
    let (_, all, _) = export_stix(
        &home,
        &ep,
        &[
            "-p",
            READER,
            "--include-withdrawn",
            "-o",
            out_all.to_str().unwrap(),
        ],
        Some(&out_all),
    );
    let revoked = &by_submission(&all)[&gone];
    assert!(revoked.iter().all(|o| o["revoked"] == true), "{revoked:?}");
    assert!(!all.to_string().contains("Soon withdrawn text"));

    // Another member exports the same CLEAR policy under the same STIX id.
    let (_, mfa, _) = export_stix(&home, &ep, &["-p", "EE-MFA"], None);
    assert_eq!(
        by_submission(&mfa)[&policy][0]["id"],
        objects[&policy][0]["id"]
    );
    assert_eq!(
        objects[&policy][0]["id"],
        Mapper::new("localhost").id("report", &format!("submission/{policy}"))
    );

    // subscribe --format stix from 0: one bundle per change, JSON lines, until the cursor passes
    // the last change. (How many changes a replay holds is the hub's business: a submission
    // withdrawn before the subscriber started may come as its tombstone only.)
    let cursor = dir.path().join("reader.cursor");
    let sub = Subscriber::start(&home, &ep, READER, &cursor);
    wait_cursor(&cursor, ack.sequence);
    let (bundles, notes) = sub.stop();
    let lines: String = bundles.iter().map(|b| format!("{b}\n")).collect();
    let err = notes.join("\n");
    assert!(!lines.contains(red), "{lines}");
    assert!(
        err.contains(&format!(
            "{red_for_reader} revision 1: TLP:RED is never exported"
        )),
        "{err}"
    );
    assert!(
        !err.contains("not mapped") && !err.contains("reconnecting"),
        "{err}"
    );
    for (id, words) in &hidden {
        assert!(
            !lines.contains(id.as_str()) && !lines.contains(words),
            "{words} leaked"
        );
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut terms_versions = Vec::new();
    let mut last: HashMap<String, Value> = HashMap::new();
    let mut ack_notes = 0;
    for b in &bundles {
        assert_conforms(b);
        for (id, objects) in by_submission(b) {
            for o in &objects {
                assert_audience(o);
                last.insert(o["id"].as_str().unwrap().to_string(), o.clone());
                if id == terms_id {
                    terms_versions.push((o["id"].clone(), o["modified"].clone()));
                }
            }
            seen.insert(id);
        }
        ack_notes += b["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| {
                o["type"] == "note"
                    && o["created_by_ref"]
                        == Mapper::new("localhost").id("identity", "member/CL-CSIRT")
            })
            .count();
    }
    seen.remove(&gone);
    assert_eq!(seen, visible);
    // The revision keeps the id with a later `modified`.
    assert_eq!(terms_versions.len(), 2, "{terms_versions:?}");
    assert_eq!(terms_versions[0].0, terms_versions[1].0);
    assert!(terms_versions[0].1.as_str() < terms_versions[1].1.as_str());
    // The withdrawn notice is revoked if it was printed, or never printed (live: tests/stix_feed.rs).
    let note = Mapper::new("localhost").id("note", &format!("submission/{gone}"));
    assert!(
        last.get(&note).is_none_or(|o| o["revoked"] == true),
        "{last:#?}"
    );
    assert_eq!(ack_notes, 1, "the reader's acknowledgement as a note");

    // Contradictory or empty options are refused before anything is printed.
    for (args, words) in [
        (
            &["subscribe", "-p", READER, "--json", "--format", "stix"][..],
            "--json conflicts with --format stix",
        ),
        (
            &["export", "stix", "-p", READER, "--hub-id", " "][..],
            "--hub-id: must not be empty",
        ),
    ] {
        let (ok, stdout, err) = cli(&home, &ep, args);
        assert!(!ok && stdout.is_empty() && err.contains(words), "{err}");
    }

    oasis::validate(dir.path(), &[&out, &out_all], &bundles);
    hub.kill();
}
