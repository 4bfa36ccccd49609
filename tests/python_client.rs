//! The Python client of `clients/python/` against the real hub: generated from `proto/` with the
//! pinned grpcio-tools, it publishes as a member over mTLS, the Rust CLI reads what it
//! published, and its feed follower resumes from its cursor file instead of replaying.
//!
//! Needs `python3` with the `venv` module (`.ci/run` installs them when missing) and PyPI for
//! the first run; the virtualenv is kept in `target/tmp/python-client-venv` and rebuilt only
//! when `requirements.txt` changes.
use std::{path::Path, process::Command, time::Duration};

mod common;

use common::{
    process::{cli, serve},
    python::{client_dir, number, run, venv},
};
use serde_json::Value;

/// One run of `example.py`: (the publication if any, the feed events it printed).
struct Run {
    published: Option<Value>,
    events: Vec<Value>,
}

impl Run {
    fn sequences(&self) -> Vec<u64> {
        self.events.iter().map(|e| number(&e["sequence"])).collect()
    }
}

fn example(python: &Path, client: &Path, args: &[String]) -> Run {
    let out = run(
        Command::new(python)
            .arg(client.join("example.py"))
            .args(args)
            .current_dir(client),
        Duration::from_secs(60),
    );
    let mut run = Run {
        published: None,
        events: Vec::new(),
    };
    for line in out.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}"));
        match v.get("published") {
            Some(p) => run.published = Some(p.clone()),
            None => run.events.push(v),
        }
    }
    run
}

/// The sequence line of a cursor file (the checkpoint lines follow it).
fn first_line(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap();
    assert!(
        text.contains("\ncheckpoint {"),
        "the checkpoint seen is kept: {text}"
    );
    text.lines().next().unwrap_or_default().to_string()
}

#[test]
fn python_client_publishes_and_follows_the_feed_from_its_cursor() {
    let python = venv();
    let dir = tempfile::tempdir().unwrap();
    let client = client_dir(&python, dir.path());

    let home = dir.path().join("hub");
    let (_hub, ep) = serve(&home);
    let profile = home.join("profiles/EE-MFA.toml");
    let cursor = dir.path().join("ee-mfa.cursor");
    let common = |title: &'static str, max: &'static str, timeout: &'static str| {
        vec![
            "--profile".to_string(),
            profile.to_str().unwrap().into(),
            "--endpoint".into(),
            ep.clone(),
            "--cursor-file".into(),
            cursor.to_str().unwrap().into(),
            "--title".into(),
            title.into(),
            "--max-events".into(),
            max.into(),
            "--timeout".into(),
            timeout.into(),
        ]
    };

    // Something in the history before the Python client first connects (sequence 1).
    let example_file = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy_document.yaml");
    let (ok, _, err) = cli(&home, &ep, &["publish", example_file, "-p", "EE-CERT"]);
    assert!(ok, "{err}");

    // First run: publishes (sequence 2), then reads the whole history and stops after 2 events.
    let first = example(
        &python,
        &client,
        &common("Python client policy one", "2", "30"),
    );
    let published = first.published.as_ref().expect("a publication line");
    let id = published["id"].as_str().unwrap().to_string();
    assert_eq!(number(&published["sequence"]), 2);
    assert_eq!(first.sequences(), [1, 2], "the history from the start");
    let change = &first.events[1]["change"];
    assert_eq!(
        (
            change["action"].as_str(),
            change["submission"]["id"].as_str(),
            change["submission"]["content"]["tlp"].as_str(),
        ),
        (Some("published"), Some(id.as_str()), Some("TLP:GREEN"))
    );
    assert_eq!(first_line(&cursor), "2");

    // What Python published is an ordinary submission: another member reads it with the Rust CLI.
    let (ok, out, err) = cli(&home, &ep, &["get", &id, "-p", "CL-CSIRT", "--json"]);
    assert!(ok, "{err}");
    let got: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (
            got["publisher"].as_str(),
            got["kind"].as_str(),
            got["content"]["title"].as_str(),
        ),
        (
            Some("EE-MFA"),
            Some("policy_document"),
            Some("Python client policy one")
        ),
        "{out}"
    );

    // Second run: resumes after the cursor; it sees only its own new publication (3), then
    // stops at its timeout, with nothing replayed.
    let second = example(
        &python,
        &client,
        &common("Python client policy two", "10", "3"),
    );
    let id2 = second.published.as_ref().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(second.sequences(), [3], "resumed after sequence 2");
    assert_eq!(
        second.events[0]["change"]["submission"]["id"].as_str(),
        Some(id2.as_str())
    );
    assert_eq!(first_line(&cursor), "3");

    // Third run, follow only: a change made with the Rust CLI meanwhile (4) is next.
    let (ok, out, err) = cli(
        &home,
        &ep,
        &["publish", example_file, "-p", "EE-CERT", "--json"],
    );
    assert!(ok, "{err}");
    let rust_id = serde_json::from_str::<Value>(out.trim()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut args = common("unused", "1", "30");
    args.push("--no-publish".into());
    let third = example(&python, &client, &args);
    assert!(third.published.is_none());
    assert_eq!(third.sequences(), [4]);
    assert_eq!(
        third.events[0]["change"]["submission"]["id"].as_str(),
        Some(rust_id.as_str())
    );
    assert_eq!(first_line(&cursor), "4");
}
