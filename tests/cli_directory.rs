//! The directory, ping campaigns, catalogue and matrix through the binary, with the example
//! files a new user starts from: every example publishes as documented in examples/README.md.
use std::path::Path;

mod common;

use common::process::{cli, serve};

fn ok(home: &Path, ep: &str, args: &[&str]) -> String {
    let (ok, out, err) = cli(home, ep, args);
    assert!(ok, "cbm-hub {}: {err}", args.join(" "));
    out
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn examples_publish_then_contacts_ping_ack_catalogue_and_matrix_work_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hub");
    let (_served, ep) = serve(&home);
    let example = |f: &str| format!("{}/examples/{f}", env!("CARGO_MANIFEST_DIR"));

    // The order and publishers of examples/README.md (the schema before the notice citing it).
    let mut ids = std::collections::HashMap::new();
    for (file, member) in [
        ("policy_document.yaml", "EE-MFA"),
        ("terminology_list.yaml", "EE-CERT"),
        ("critical_infrastructure_approach.yaml", "CL-MINREL"),
        ("point_of_contact.yaml", "EE-CERT"),
        ("incident_severity_schema.yaml", "CL-MINREL"),
        ("notice.json", "EE-MFA"),
        ("notice_red.yaml", "CL-MINREL"),
    ] {
        let out = ok(
            &home,
            &ep,
            &["publish", &example(file), "-p", member, "--json"],
        );
        ids.insert(file, json(&out)["id"].as_str().unwrap().to_string());
    }

    let out = ok(&home, &ep, &["contacts", "-p", "CL-CSIRT"]);
    assert!(
        out.contains("technical") && out.contains("published"),
        "{out}"
    );
    assert!(out.contains(&ids["point_of_contact.yaml"]), "{out}");

    // The notice to CL-MINREL and CL-CSIRT: acknowledged by one, reported to the sender.
    let notice = &ids["notice.json"];
    let out = ok(
        &home,
        &ep,
        &[
            "ack",
            notice,
            "--reply",
            "Will answer this week.",
            "-p",
            "CL-CSIRT",
        ],
    );
    assert!(out.contains("on time"), "{out}");
    let out = ok(&home, &ep, &["ack-report", notice, "-p", "EE-MFA"]);
    assert!(out.contains("1 of 2 acknowledged"), "{out}");
    assert!(
        out.contains("Will answer this week.") && out.contains("pending"),
        "{out}"
    );

    // HUB-ADMIN reads the hub-wide GREEN contact as a subscriber: it is tested. EE-CERT answers
    // the ping notice it got, whose id the report names.
    let out = ok(&home, &ep, &["ping", "start", "-p", "HUB-ADMIN", "--json"]);
    let campaign = json(&out);
    let id = campaign["id"].as_str().unwrap();
    assert_eq!(campaign["contacts"], 1);
    let ping = campaign["results"][0]["notice_id"].as_str().unwrap();
    assert_ne!(ping, id);
    ok(&home, &ep, &["ack", ping, "-p", "EE-CERT"]);
    let out = ok(&home, &ep, &["ping", "show", id, "-p", "HUB-ADMIN"]);
    assert!(out.contains("1 of 1 contacts answered (100%)"), "{out}");
    assert!(out.contains(ping), "{out}");
    let out = ok(&home, &ep, &["ack-report", id, "-p", "HUB-ADMIN"]);
    assert!(out.contains("1 of 1 acknowledged"), "{out}");
    let out = ok(&home, &ep, &["contacts", "-p", "CL-CSIRT"]);
    assert!(out.contains("acknowledged"), "{out}");

    ok(
        &home,
        &ep,
        &[
            "catalogue",
            "add",
            &example("framework.yaml"),
            "-p",
            "HUB-ADMIN",
        ],
    );
    let out = ok(
        &home,
        &ep,
        &[
            "catalogue",
            "list",
            "--framework",
            "ASEAN-CBM",
            "-p",
            "EE-MFA",
        ],
    );
    assert!(out.contains("ASEAN-CBM-3"), "{out}");

    let out = ok(
        &home,
        &ep,
        &[
            "report",
            "matrix",
            "--csv",
            "--framework",
            "OSCE-CBM",
            "-p",
            "CL-CSIRT",
        ],
    );
    let lines: Vec<_> = out.lines().collect();
    // The columns README.md names: the row's state, the MatrixCell fields, the as-of date.
    let columns = [
        "state",
        "measure_ref",
        "submission_id",
        "kind",
        "title",
        "updated_at",
        "review_by",
        "overdue",
        "count",
        "as_of",
    ];
    assert_eq!(lines[0], columns.join(","));
    // EE-CERT's terminology list (TLP:GREEN to OSCE) is not CL-CSIRT's to see; its point of
    // contact (TLP:GREEN to all) is.
    assert!(!out.contains(&ids["terminology_list.yaml"]), "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("EE,OSCE-CBM-8,") && l.contains(&ids["point_of_contact.yaml"])),
        "{out}"
    );
    let table = ok(
        &home,
        &ep,
        &["report", "matrix", "--framework", "UN-CBM", "-p", "EE-MFA"],
    );
    assert!(
        table.starts_with("MEASURE") && table.contains("UN-CBM-8"),
        "{table}"
    );

    // --json: one record per filled cell, the CSV's columns as keys in the same order, typed.
    let args = ["report", "matrix", "--framework", "UN-CBM", "-p", "EE-MFA"];
    let records: Vec<serde_json::Value> = ok(&home, &ep, &[&args[..], &["--json"]].concat())
        .lines()
        .map(json)
        .collect();
    let filled = table
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("UN-CBM-"))
        .flat_map(|l| l.split_whitespace().skip(1))
        .filter(|cell| *cell != "-")
        .count();
    assert!(filled >= 3, "{table}");
    assert_eq!(records.len(), filled, "{table}{records:?}");
    for r in &records {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, columns);
        assert!(r["overdue"].is_boolean() && r["count"].is_u64(), "{r}");
    }
    let poc = records
        .iter()
        .find(|r| r["state"] == "EE" && r["measure_ref"] == "UN-CBM-1")
        .unwrap();
    assert_eq!(
        (poc["submission_id"].as_str(), poc["kind"].as_str()),
        (
            Some(ids["point_of_contact.yaml"].as_str()),
            Some("point_of_contact")
        )
    );
    let csv = ok(&home, &ep, &[&args[..], &["--csv"]].concat());
    assert_eq!(csv.lines().count(), records.len() + 1, "{csv}");
}
