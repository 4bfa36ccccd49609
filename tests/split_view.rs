//! No split views: `cbm-hub subscribe` keeps the latest checkpoint it verified in its cursor
//! file and, at every connection, asks the hub to prove its audit log extends it. A hub whose
//! stored history was rewritten while it was stopped (entries edited, the chain recomputed,
//! every checkpoint signed again with its own key, so that its start check passes) is caught
//! by a resuming subscriber, which stops with a non-zero status naming it; so is a hub rolled
//! back to a copy taken before events the subscriber received live. Real binary, mTLS.
use std::path::Path;

mod common;

use cbm_hub::{
    audit::{LogState, signing::Signer},
    pb::{AuditEntry, Checkpoint},
    store::{
        codec::{frame, unframe},
        keyspace::{self, Rec},
    },
};
use common::process::{HubProcess, cli, init};

fn publish(home: &Path, ep: &str, n: usize) {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy_document.yaml");
    for _ in 0..n {
        let (ok, _, err) = cli(home, ep, &["publish", example, "-p", "EE-MFA"]);
        assert!(ok, "{err}");
    }
}

/// `subscribe` as CL-CSIRT from its cursor file, until `events` changes: (ok, stdout, stderr).
fn subscribe(home: &Path, ep: &str, cursor: &Path, events: &str) -> (bool, String, String) {
    cli(
        home,
        ep,
        &[
            "subscribe",
            "-p",
            "CL-CSIRT",
            "--cursor-file",
            cursor.to_str().unwrap(),
            "--max-events",
            events,
        ],
    )
}

/// Rewrites the stored audit log of a stopped hub as its key holder could: entry 2 edited,
/// every chain hash recomputed, every checkpoint signed again over the new roots.
/// The start marks of the last clean stop are removed too, so that the start checks everything
/// (and finds nothing wrong).
fn rewrite_history(data: &Path) {
    let db = keyspace::open_raw(data).unwrap();
    let records = db.open_tree(keyspace::TREE).unwrap();
    let mut state = LogState::default();
    let mut roots = Vec::new();
    let entries: Vec<_> = records
        .scan_prefix([Rec::Audit as u8])
        .map(|r| r.unwrap())
        .collect();
    for (k, v) in entries {
        let mut entry: AuditEntry = unframe(&v, String::new).unwrap();
        if entry.sequence == 2 {
            entry.member = "SOMEONE-ELSE".into();
        }
        let sealed = state.seal(entry);
        records.insert(k, frame(&sealed)).unwrap();
        roots.push(state.frontier.root());
    }
    records
        .insert(Rec::Meta.key(b"audit_state"), state.to_bytes())
        .unwrap();
    for mark in [&b"seal"[..], b"checked"] {
        records.remove(Rec::Meta.key(mark)).unwrap();
    }
    let signer = Signer::load_or_create(data).unwrap();
    let stored: Vec<_> = records
        .scan_prefix([Rec::Checkpoints as u8])
        .map(|r| r.unwrap())
        .collect();
    for (k, v) in stored {
        let c: Checkpoint = unframe(&v, String::new).unwrap();
        let again = signer.checkpoint(c.tree_size, &roots[c.tree_size as usize - 1], c.at);
        records.insert(k, frame(&again)).unwrap();
    }
    db.flush().unwrap();
}

#[test]
fn a_resuming_subscriber_catches_a_hub_whose_history_was_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hub");
    init(&home);
    let cursor = dir.path().join("csirt.cursor");
    let hub = HubProcess::start(&home);
    let ep = format!("https://localhost:{}", hub.port);
    publish(&home, &ep, 2);
    let (ok, out, err) = subscribe(&home, &ep, &cursor, "2");
    assert!(ok, "{out}{err}");
    let saved = std::fs::read_to_string(&cursor).unwrap();
    let mut lines = saved.lines();
    assert_eq!(lines.next(), Some("2"), "{saved}");
    assert!(lines.next().unwrap().starts_with("checkpoint {"), "{saved}");
    assert_eq!(lines.next(), Some("covered 2"), "{saved}");
    assert!(lines.next().unwrap().starts_with("hub-key "), "{saved}");

    // A history that only grew: the subscriber resumes, and keeps the newer checkpoint.
    publish(&home, &ep, 1);
    let (ok, out, err) = subscribe(&home, &ep, &cursor, "1");
    assert!(ok, "{out}{err}");
    let resumed = std::fs::read_to_string(&cursor).unwrap();
    assert!(resumed.starts_with("3\n") && resumed != saved, "{resumed}");

    // The Python client keeps the same lines: it resumes from the CLI's cursor file (and
    // writes a copy of its own to check after the rewrite).
    let python = common::python::venv();
    let client = common::python::client_dir(&python, dir.path());
    let py_cursor = dir.path().join("python.cursor");
    std::fs::copy(&cursor, &py_cursor).unwrap();
    let follow = |ep: &str| {
        common::process::run_bounded(
            std::process::Command::new(&python)
                .arg(client.join("example.py"))
                .args([
                    "--no-publish",
                    "--max-events",
                    "1",
                    "--timeout",
                    "5",
                    "--profile",
                ])
                .arg(home.join("profiles/CL-CSIRT.toml"))
                .args(["--endpoint", ep, "--cursor-file"])
                .arg(&py_cursor)
                .current_dir(&client),
            std::time::Duration::from_secs(60),
        )
    };
    let r = follow(&ep);
    assert!(r.success(), "{}{}", r.out, r.err);
    let py_saved = std::fs::read_to_string(&py_cursor).unwrap();
    assert!(py_saved.contains("\ncovered 3\n"), "{py_saved}");

    // Stopped, rewritten by the key holder, started again: the hub's own check passes...
    hub.kill();
    rewrite_history(&home.join("data"));
    let hub = HubProcess::start(&home);
    let ep = format!("https://localhost:{}", hub.port);
    // ...but the resuming subscriber refuses it, loudly.
    let (ok, out, err) = subscribe(&home, &ep, &cursor, "1");
    assert!(!ok, "a rewritten history was accepted: {out}{err}");
    assert!(
        err.contains("split view")
            && err.contains("the log was rewritten since (a fork)")
            && err.contains("Not resuming"),
        "{err}"
    );
    let r = follow(&ep);
    assert!(
        !r.success() && r.err.contains("split view") && r.err.contains("rewritten (a fork)"),
        "{}{}",
        r.out,
        r.err
    );
    // A new subscriber (no saved checkpoint) is not refused: it has nothing to compare with.
    let (ok, _, err) = subscribe(&home, &ep, &dir.path().join("new.cursor"), "1");
    assert!(ok, "{err}");
    // A position asked for beyond the head is a bad request, not a split view: nothing was
    // received there.
    let (ok, _, err) = cli(
        &home,
        &ep,
        &[
            "subscribe",
            "-p",
            "CL-CSIRT",
            "--after",
            "1000",
            "--max-events",
            "1",
        ],
    );
    assert!(
        !ok && err.contains("after_sequence") && !err.contains("split view"),
        "{err}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A hub restored from a copy taken before events a subscriber received live, then given
/// other events in their place: the subscriber's saved checkpoint covers what it received (it
/// asked for one before it stopped), so the restored hub cannot prove it extends it.
#[test]
fn a_subscriber_catches_a_hub_rolled_back_past_what_it_received() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hub");
    init(&home);
    let data = home.join("data");
    let backup = dir.path().join("data-backup");
    let cursor = dir.path().join("csirt.cursor");
    let hub = HubProcess::start(&home);
    let ep = format!("https://localhost:{}", hub.port);
    publish(&home, &ep, 2);
    hub.kill();
    copy_dir(&data, &backup);

    let hub = HubProcess::start(&home);
    let ep = format!("https://localhost:{}", hub.port);
    // The subscriber takes the two stored events, then three published while it listens.
    let listening = {
        let (home, ep, cursor) = (home.clone(), ep.clone(), cursor.clone());
        std::thread::spawn(move || subscribe(&home, &ep, &cursor, "5"))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(&cursor).map_or(true, |c| !c.starts_with("2\n")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the subscriber never got 2 events"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    publish(&home, &ep, 3);
    let (ok, out, err) = listening.join().unwrap();
    assert!(ok, "{out}{err}");
    let saved = std::fs::read_to_string(&cursor).unwrap();
    assert!(
        saved.starts_with("5\n") && saved.contains("\ncovered 5\n"),
        "{saved}"
    );

    // The Python client resumes from a copy of the same cursor file.
    let py_cursor = dir.path().join("python.cursor");
    std::fs::copy(&cursor, &py_cursor).unwrap();

    // Rolled back to the copy, then given other events: the feed reaches sequence 5 again.
    hub.kill();
    std::fs::remove_dir_all(&data).unwrap();
    copy_dir(&backup, &data);
    let hub = HubProcess::start(&home);
    let ep = format!("https://localhost:{}", hub.port);
    publish(&home, &ep, 4);
    let (ok, out, err) = subscribe(&home, &ep, &cursor, "1");
    assert!(!ok, "a rolled-back hub was accepted: {out}{err}");
    assert!(
        err.contains("split view") && err.contains("Not resuming"),
        "{err}"
    );
    let python = common::python::venv();
    let client = common::python::client_dir(&python, dir.path());
    let r = common::process::run_bounded(
        std::process::Command::new(&python)
            .arg(client.join("example.py"))
            .args(["--no-publish", "--max-events", "1", "--timeout", "5"])
            .arg("--profile")
            .arg(home.join("profiles/CL-CSIRT.toml"))
            .args(["--endpoint", &ep, "--cursor-file"])
            .arg(&py_cursor)
            .current_dir(&client),
        std::time::Duration::from_secs(60),
    );
    assert!(
        !r.success() && r.err.contains("split view"),
        "{}{}",
        r.out,
        r.err
    );
    // Rolled back and given nothing since: its feed ends before what was received.
    hub.kill();
    std::fs::remove_dir_all(&data).unwrap();
    copy_dir(&backup, &data);
    let hub = HubProcess::start(&home);
    let ep = format!("https://localhost:{}", hub.port);
    let (ok, out, err) = subscribe(&home, &ep, &cursor, "1");
    assert!(!ok, "{out}{err}");
    assert!(
        err.contains("split view") && err.contains("truncated or replaced"),
        "{err}"
    );
    drop(hub);
}
