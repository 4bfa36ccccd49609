//! A third party's client written from `proto/` alone, with the standard libraries: the
//! protobuf library's JSON (Python's `json_format`, the proto3 JSON mapping) and the CLI read
//! each other's submission files in both directions, and the official Python reflection client
//! (grpcio-reflection, which speaks grpc.reflection.v1alpha) lists, describes and calls the
//! hub's services with no generated code.
//!
//! Needs what `tests/python_client.rs` needs (python3 with venv, PyPI on the first run).
use std::{path::Path, process::Command, time::Duration};

mod common;

use common::{
    process::{cli, serve},
    python::{client_dir, run, venv},
};
use serde_json::Value;

/// Runs a script of the client directory, which must succeed; its stdout.
fn script(python: &Path, client: &Path, args: &[&str]) -> String {
    run(
        Command::new(python)
            .args(args)
            .current_dir(client)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        Duration::from_secs(60),
    )
}

/// The JSON object of the only (or first) line of `out`.
fn line(out: &str) -> Value {
    let first = out.lines().next().unwrap_or_default();
    serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: not JSON: {out}"))
}

fn ok(home: &Path, ep: &str, args: &[&str]) -> (String, String) {
    let (ok, out, err) = cli(home, ep, args);
    assert!(ok, "cbm-hub {args:?} failed:\n{out}{err}");
    (out, err)
}

/// The keys of every object in `v`, at any depth.
fn keys(v: &Value, into: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                into.push(k.clone());
                keys(v, into);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| keys(v, into)),
        _ => {}
    }
}

/// A notice with a template and an attachment: oneofs at two levels, a bytes field (base64),
/// repeated fields, 64-bit integers in the replies.
const NOTICE: &str = r#"title: Consultation request with an annex
language: en
tlp: "TLP:AMBER"
recipients: [CL-MINREL, CL-CSIRT]
cbm_refs: [OSCE-CBM-3, UN-CBM-2]
tags: [consultation]
attachments:
  - name: annex.txt
    media_type: text/plain
    sha256: 185f8db32271fe25f561a6fc938b2e264306ec304eda518007d1764826381969
    content: SGVsbG8=
notice:
  category: consultation_request
  subject: Consultations on scanning
  text: We propose technical consultations.
  ack_deadline: "2030-01-01T00:00:00Z"
  consultation_request:
    topic: Scanning of government networks
    questions: [Are the systems known to be compromised?]
    respond_by: "2030-01-01T00:00:00Z"
"#;

#[test]
fn protobuf_json_files_and_the_cli_read_each_other_in_both_directions() {
    let python = venv();
    let dir = tempfile::tempdir().unwrap();
    let client = client_dir(&python, dir.path());
    let home = dir.path().join("hub");
    let (_hub, ep) = serve(&home);
    let profile = home.join("profiles/EE-MFA.toml");
    let connect = ["--profile", profile.to_str().unwrap(), "--endpoint", &ep];
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();

    // The CLI publishes a YAML file of the mapping.
    std::fs::write(path("notice.yaml"), NOTICE).unwrap();
    let (out, _) = ok(
        &home,
        &ep,
        &["publish", &path("notice.yaml"), "-p", "EE-MFA", "--json"],
    );
    let first = line(&out);
    let hash = first["content_hash"].as_str().unwrap().to_string();
    // 64-bit integers are strings in the mapping; Python's json_format reads the reply back.
    assert!(first["sequence"].is_string(), "{out}");

    // Python -> CLI: the protobuf library writes the content as MessageToJson does by default
    // (lowerCamelCase, the oneofs' members directly in their message, bytes in base64) ...
    let id = first["id"].as_str().unwrap();
    let mut get = vec!["submission_file.py", "get", id, "--out"];
    let py_file = path("from-python.json");
    get.push(&py_file);
    script(&python, &client, &[&get[..], &connect[..]].concat());
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&py_file).unwrap()).unwrap();
    let mut names = Vec::new();
    keys(&written, &mut names);
    for camel in [
        "cbmRefs",
        "mediaType",
        "ackDeadline",
        "consultationRequest",
        "respondBy",
    ] {
        assert!(names.iter().any(|n| n == camel), "{camel} in {written}");
    }
    assert!(
        !names.iter().any(|n| n == "body" || n == "template"),
        "{written}"
    );
    assert_eq!(written["attachments"][0]["content"], "SGVsbG8=");
    // ... and `cbm-hub publish` takes that file as it is: no note, the same content.
    let (out, err) = ok(&home, &ep, &["publish", &py_file, "-p", "EE-MFA", "--json"]);
    assert!(!err.contains("note:"), "{err}");
    let second = line(&out);
    assert_eq!(second["content_hash"], hash.as_str(), "same content: {out}");

    // CLI -> Python: `get --content --json` writes what json_format.Parse reads (strictly: an
    // unknown field would fail), and the Python client publishes it.
    let (cli_content, _) = ok(
        &home,
        &ep,
        &[
            "get",
            second["id"].as_str().unwrap(),
            "--content",
            "--json",
            "-p",
            "EE-MFA",
        ],
    );
    let cli_file = path("from-cli.json");
    std::fs::write(&cli_file, &cli_content).unwrap();
    let out = script(
        &python,
        &client,
        &[
            &["submission_file.py", "publish", &cli_file][..],
            &connect[..],
        ]
        .concat(),
    );
    let third = line(&out)["published"].clone();
    assert_eq!(third["content_hash"], hash.as_str(), "same content: {out}");

    // The round trip changed nothing: Python writes the third copy exactly as the first.
    let py_again = path("again.json");
    let third_id = third["id"].as_str().unwrap();
    let get = ["submission_file.py", "get", third_id, "--out", &py_again];
    script(&python, &client, &[&get[..], &connect[..]].concat());
    let again: Value = serde_json::from_str(&std::fs::read_to_string(&py_again).unwrap()).unwrap();
    assert_eq!(again, written);

    // The CLI's other JSON output is the mapping too: a submission (`get --json`) and a feed
    // event (`subscribe --json`) parse as their messages.
    let (sub, _) = ok(&home, &ep, &["get", third_id, "--json", "-p", "CL-CSIRT"]);
    std::fs::write(path("submission.json"), &sub).unwrap();
    let parsed = script(
        &python,
        &client,
        &[
            "submission_file.py",
            "check",
            &path("submission.json"),
            "--message",
            "cbm.v1.Submission",
        ],
    );
    assert_eq!(
        line(&parsed.replace('\n', ""))["contentHash"],
        hash.as_str()
    );
    let (event, _) = ok(
        &home,
        &ep,
        &["subscribe", "-p", "CL-CSIRT", "--json", "--max-events", "1"],
    );
    std::fs::write(path("event.json"), &event).unwrap();
    let parsed = script(
        &python,
        &client,
        &[
            "submission_file.py",
            "check",
            &path("event.json"),
            "--message",
            "cbm.v1.FeedEvent",
        ],
    );
    let parsed = line(&parsed.replace('\n', ""));
    assert_eq!(
        (
            parsed["sequence"].as_str(),
            parsed["change"]["action"].as_str()
        ),
        (Some("1"), Some("published"))
    );

    // A file that is not the mapping is refused by both, naming the field.
    std::fs::write(path("typo.json"), r#"{"title": "x", "cbmRef": []}"#).unwrap();
    let (ok_cli, _, err) = cli(&home, &ep, &["publish", &path("typo.json"), "-p", "EE-MFA"]);
    assert!(!ok_cli && err.contains("unknown field `cbmRef`"), "{err}");
    let r = common::process::run_bounded(
        Command::new(&python)
            .args(["submission_file.py", "check", &path("typo.json")])
            .current_dir(&client),
        Duration::from_secs(60),
    );
    assert!(!r.success() && r.err.contains("cbmRef"), "{}", r.err);
}

#[test]
fn the_official_python_reflection_client_lists_describes_and_calls_the_hub() {
    let python = venv();
    let dir = tempfile::tempdir().unwrap();
    let client = client_dir(&python, dir.path());
    let home = dir.path().join("hub");
    let (_hub, ep) = serve(&home);
    let profile = home.join("profiles/EE-MFA.toml");
    let connect = ["--profile", profile.to_str().unwrap(), "--endpoint", &ep];

    // `reflect.py` alone: every service with its methods, over grpc.reflection.v1alpha.
    let out = script(
        &python,
        &client,
        &[&["reflect.py"][..], &connect[..]].concat(),
    );
    let services: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = services
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    for wanted in [
        "cbm.v1.Audit",
        "cbm.v1.Catalogue",
        "cbm.v1.Directory",
        "cbm.v1.Feed",
        "cbm.v1.Hub",
        "cbm.v1.MemberAdmin",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(names.contains(&wanted), "{wanted} in {names:?}");
    }
    let hub = services
        .iter()
        .find(|s| s["service"] == "cbm.v1.Hub")
        .unwrap();
    assert!(
        hub["methods"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "Publish"),
        "{hub}"
    );

    // A method's description names its message types.
    let out = script(
        &python,
        &client,
        &[
            &["reflect.py", "--describe", "cbm.v1.Hub.WhoAmI"][..],
            &connect[..],
        ]
        .concat(),
    );
    assert_eq!(
        line(&out)["descriptor"]["output_type"],
        ".cbm.v1.WhoAmIResponse"
    );

    // Calls with the types learnt through reflection: who am I, and health.
    let out = script(
        &python,
        &client,
        &[
            &["reflect.py", "--call", "cbm.v1.Hub/WhoAmI"][..],
            &connect[..],
        ]
        .concat(),
    );
    assert_eq!(line(&out)["response"]["member"]["id"], "EE-MFA");
    let call = [
        "reflect.py",
        "--call",
        "grpc.health.v1.Health/Check",
        "--data",
        r#"{"service": "cbm.v1.Hub"}"#,
    ];
    let out = script(&python, &client, &[&call[..], &connect[..]].concat());
    assert_eq!(line(&out)["response"]["status"], "SERVING");
}
