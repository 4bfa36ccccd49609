//! The `cbm-hub` binary as a new user runs it: first-run `serve` from an empty directory, then
//! client commands with the profiles it wrote.
use std::{path::Path, process::Command};

mod common;

use common::process::{BIN, cli, serve};

#[test]
fn first_run_serve_from_an_empty_directory_then_publish_read_and_administer() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hub");
    let (served, ep) = serve(&home);
    for f in [
        "config.toml",
        "pki/ca.pem",
        "pki/server.pem",
        "profiles/EE-MFA.toml",
        "profiles/HUB-ADMIN.toml",
        "data/db",
    ] {
        assert!(home.join(f).exists(), "{f} created on first run");
    }

    let (ok, out, err) = cli(&home, &ep, &["whoami", "-p", "EE-MFA"]);
    assert!(ok, "{err}");
    assert!(out.contains("EE-MFA") && out.contains("publisher"), "{out}");

    // Publish a YAML file and read it back.
    let file = dir.path().join("poc.yaml");
    std::fs::write(
        &file,
        "title: Technical point of contact\nlanguage: en\ntlp: TLP:GREEN\ncbm_refs: [UN-CBM-1]\npoint_of_contact:\n  level: technical\n  organisation: CERT-EE\n  function: Duty officer\n  channels:\n    - {type: email, value: cert@example.ee}\n  languages: [en]\n  time_zone: Europe/Tallinn\n  last_verified: 2026-01-15\n",
    )
    .unwrap();
    let (ok, out, err) = cli(
        &home,
        &ep,
        &["publish", file.to_str().unwrap(), "-p", "EE-MFA", "--json"],
    );
    assert!(ok, "{err}");
    let reply: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let id = reply["id"].as_str().unwrap().to_string();
    let (ok, out, err) = cli(&home, &ep, &["get", &id, "-p", "CL-CSIRT"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("cert@example.ee") && out.contains("point_of_contact"),
        "{out}"
    );
    let (ok, out, _) = cli(&home, &ep, &["list", "-p", "CL-CSIRT"]);
    assert!(ok && out.contains(&id), "{out}");

    // subscribe: JSON lines, a cursor file written after each event, resumed from on restart.
    let cursor = dir.path().join("csirt.cursor");
    let sub = |n: &str| {
        Command::new(BIN)
            .args([
                "--home",
                home.to_str().unwrap(),
                "subscribe",
                "-p",
                "CL-CSIRT",
                "--json",
                "--max-events",
                n,
            ])
            .args(["--cursor-file", cursor.to_str().unwrap(), "--endpoint", &ep])
            .output()
            .unwrap()
    };
    let first = sub("1");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&first.stdout).trim()).unwrap();
    // The canonical proto3 JSON of FeedEvent: 64-bit integers as strings, the oneof's member
    // (`change`) directly in the event.
    assert_eq!(
        (
            line["sequence"].as_str(),
            line["change"]["submission"]["id"].as_str()
        ),
        (Some("1"), Some(id.as_str()))
    );
    // The sequence on the first line; the checkpoint seen and the hub's key follow it.
    let first_line = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(first_line(&cursor), "1");
    let (ok, _, err) = cli(
        &home,
        &ep,
        &["publish", file.to_str().unwrap(), "-p", "EE-MFA"],
    );
    assert!(ok, "{err}");
    let second = sub("1");
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&second.stdout).trim()).unwrap();
    assert_eq!(
        line["sequence"].as_str(),
        Some("2"),
        "resumed after the cursor, not from the start"
    );
    assert_eq!(first_line(&cursor), "2");

    // `get --content` prints a submission file that `revise` takes back.
    let (ok, content, err) = cli(&home, &ep, &["get", &id, "--content", "-p", "EE-MFA"]);
    assert!(
        ok && content.starts_with("title: Technical point of contact"),
        "{content}{err}"
    );
    assert!(
        !content.contains("''") && !content.contains("[]"),
        "empty fields are left out: {content}"
    );
    let edited = dir.path().join("poc2.yaml");
    std::fs::write(&edited, content.replace("Duty officer", "Duty manager")).unwrap();
    let (ok, out, err) = cli(
        &home,
        &ep,
        &[
            "revise",
            &id,
            edited.to_str().unwrap(),
            "--expected-revision",
            "1",
            "-p",
            "EE-MFA",
        ],
    );
    assert!(ok && out.contains("revision 2"), "{out}{err}");
    // A YAML type error names the field's path.
    std::fs::write(&edited, content.replace("cert@example.ee", "1234")).unwrap();
    let (ok, _, err) = cli(
        &home,
        &ep,
        &["publish", edited.to_str().unwrap(), "-p", "EE-MFA"],
    );
    assert!(
        !ok && err.starts_with("error: ")
            && err.contains(": point_of_contact.channels[0].value")
            && err.contains("quote"),
        "{err}"
    );

    // A file of the earlier form (the body under `body:`) is still published, with a note.
    std::fs::write(&file, "title: Technical point of contact\nlanguage: en\ntlp: TLP:GREEN\ncbm_refs: [UN-CBM-1]\nbody:\n  point_of_contact:\n    level: technical\n    organisation: CERT-EE\n    function: Duty officer\n    channels:\n      - {type: email, value: cert@example.ee}\n    languages: [en]\n    time_zone: Europe/Tallinn\n    last_verified: 2026-01-15\n").unwrap();
    let (ok, out, err) = cli(
        &home,
        &ep,
        &["publish", file.to_str().unwrap(), "-p", "EE-MFA"],
    );
    assert!(ok && out.starts_with("published "), "{out}{err}");
    assert!(
        err.contains("note: ")
            && err.contains("`body: {point_of_contact: ...}` is the deprecated form")
            && err.contains("write `point_of_contact: ...` directly in the top level"),
        "{err}"
    );

    // Errors print the server's message, not a debug dump.
    std::fs::write(
        &file,
        "title: x\nlanguage: en\ntlp: TLP:RED\nnotice: {category: ping, subject: s, text: t}\n",
    )
    .unwrap();
    let (ok, _, err) = cli(
        &home,
        &ep,
        &["publish", file.to_str().unwrap(), "-p", "EE-MFA"],
    );
    assert!(!ok);
    assert!(
        err.starts_with("error: invalid argument: content.recipients"),
        "{err}"
    );
    assert!(!err.contains("Status {"), "{err}");
    // A typo in the file is caught before sending.
    std::fs::write(&file, "titel: x\n").unwrap();
    let (ok, _, err) = cli(
        &home,
        &ep,
        &["publish", file.to_str().unwrap(), "-p", "EE-MFA"],
    );
    assert!(!ok && err.contains("titel"), "{err}");

    // Administer: issue a certificate from the dev CA, register the member, use it, suspend it.
    let (ok, out, err) = cli(&home, &ep, &["pki", "issue", "FI-MFA"]);
    assert!(ok, "{err}");
    let sha = out
        .lines()
        .find_map(|l| l.strip_prefix("cert_sha256: "))
        .unwrap()
        .to_string();
    let spki = out
        .lines()
        .find_map(|l| l.strip_prefix("spki_sha256: "))
        .unwrap()
        .to_string();
    assert_eq!((spki.len(), spki == sha), (64, false));
    let (ok, _, err) = cli(
        &home,
        &ep,
        &[
            "member",
            "register",
            "FI-MFA",
            "--state",
            "FI",
            "--name",
            "Finland MFA",
            "--role",
            "subscriber",
            "--cert-sha256",
            &sha,
            "-p",
            "HUB-ADMIN",
        ],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = cli(&home, &ep, &["whoami", "-p", "FI-MFA"]);
    assert!(ok && out.contains("FI-MFA"), "{out}{err}");
    // A reader that closes the pipe early (`| head`) ends the command quietly.
    let mut early = Command::new(BIN)
        .args(["--home", home.to_str().unwrap(), "catalogue", "list"])
        .args(["-p", "EE-MFA", "--endpoint", &ep])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(early.stdout.take());
    let closed = early.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&closed.stderr);
    assert!(
        closed.status.success() && !err.contains("panicked"),
        "{:?} {err}",
        closed.status
    );
    // A second binding, with its note, as the README shows it.
    let (ok, out, err) = cli(
        &home,
        &ep,
        &[
            "member",
            "bind",
            "FI-MFA",
            "--spki-sha256",
            &spki,
            "--note",
            "rotation 2027",
            "-p",
            "HUB-ADMIN",
        ],
    );
    assert!(ok && out.contains("rotation 2027"), "{out}{err}");
    let (ok, _, err) = cli(
        &home,
        &ep,
        &["member", "suspend", "FI-MFA", "-p", "HUB-ADMIN"],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&home, &ep, &["whoami", "-p", "FI-MFA"]);
    assert!(
        !ok && err.contains("permission denied") && err.contains("suspended"),
        "{err}"
    );
    // Audit: the publisher's access log, a query, an export verified offline against the key.
    let (ok, out, err) = cli(&home, &ep, &["access-log", &id, "-p", "EE-MFA"]);
    assert!(
        ok && out.contains("CL-CSIRT") && out.contains("get"),
        "{out}{err}"
    );
    let (ok, out, err) = cli(
        &home,
        &ep,
        &[
            "audit",
            "query",
            "--action",
            "member.suspend",
            "-p",
            "HUB-ADMIN",
        ],
    );
    assert!(ok && out.contains("FI-MFA"), "{out}{err}");
    // The first run's registrations name where they came from: this machine, not a peer
    // address (found by an acceptance probe: the text was folded into a hash).
    let (ok, out, err) = cli(
        &home,
        &ep,
        &[
            "audit",
            "query",
            "--action",
            "member.register",
            "--json",
            "-p",
            "HUB-ADMIN",
        ],
    );
    assert!(
        ok && out.contains("\"peer\":\"local\"") && !out.contains("invalid peer"),
        "{out}{err}"
    );
    let export = dir.path().join("audit.jsonl");
    let saved = dir.path().join("checkpoint.json");
    let (ok, _, err) = cli(
        &home,
        &ep,
        &[
            "audit",
            "export",
            "--out",
            export.to_str().unwrap(),
            "--checkpoint-out",
            saved.to_str().unwrap(),
            "-p",
            "HUB-ADMIN",
        ],
    );
    assert!(ok, "{err}");
    let key = home.join("data/audit-signing-key.pub");
    let verify_with = |file: &Path, extra: &[&str]| {
        Command::new(BIN)
            .args([
                "audit",
                "verify",
                file.to_str().unwrap(),
                "--public-key",
                key.to_str().unwrap(),
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let verify = |file: &Path| verify_with(file, &[]);
    let good = verify(&export);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stdout)
    );
    assert!(String::from_utf8_lossy(&good.stdout).starts_with("ok: "));
    // Against the checkpoint saved with the export; the pinned key is required offline.
    let since = verify_with(&export, &["--since", saved.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&since.stdout);
    assert!(
        since.status.success() && text.contains("extends the earlier checkpoint"),
        "{text}"
    );
    let unpinned = Command::new(BIN)
        .args(["audit", "verify", export.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!unpinned.status.success());
    assert!(String::from_utf8_lossy(&unpinned.stderr).contains("--public-key is required"));
    // Later, the hub proves that its log extends the saved checkpoint; the new one replaces it.
    let (ok, out, err) = cli(
        &home,
        &ep,
        &[
            "audit",
            "checkpoint",
            "--public-key",
            key.to_str().unwrap(),
            "--since",
            saved.to_str().unwrap(),
            "--out",
            saved.to_str().unwrap(),
            "-p",
            "HUB-ADMIN",
        ],
    );
    assert!(
        ok && out.starts_with("ok: the log of ") && out.contains("extends the earlier one"),
        "{out}{err}"
    );
    let text = std::fs::read_to_string(&export).unwrap();
    std::fs::write(&export, text.replacen("\"allowed\"", "\"refused\"", 1)).unwrap();
    let bad = verify(&export);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stdout).contains("FAILED"),
        "{}",
        String::from_utf8_lossy(&bad.stdout)
    );
    drop(served);

    // A second start reuses everything: no re-initialisation, data kept.
    let (served, ep) = serve(&home);
    let (ok, out, _) = cli(&home, &ep, &["list", "-p", "CL-CSIRT"]);
    assert!(ok && out.contains(&id), "{out}");
    drop(served);
    // The integrity check of the stopped hub's data.
    let out = Command::new(BIN)
        .args(["--home", home.to_str().unwrap(), "check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));
}

/// `pki issue` writes a profile for this home's hub (the port its config listens on, found by
/// the tester: the default port was written whatever the config said), and does not replace a
/// member's certificate and key without `--force` (a member bound to it would be locked out).
#[test]
fn pki_issue_names_the_configured_hub_and_replaces_nothing_unasked() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hub");
    let run = |args: &[&str]| {
        let (ok, _, err) = common::process::local(&home, args);
        (ok, err)
    };
    let (ok, err) = run(&["init", "--listen", "127.0.0.1:50999"]);
    assert!(ok, "{err}");
    let (ok, err) = run(&["pki", "issue", "FI-MFA"]);
    assert!(ok, "{err}");
    let profile = std::fs::read_to_string(home.join("profiles/FI-MFA.toml")).unwrap();
    assert!(profile.contains("https://localhost:50999"), "{profile}");
    let cert = std::fs::read(home.join("pki/members/FI-MFA.pem")).unwrap();

    let (ok, err) = run(&["pki", "issue", "FI-MFA"]);
    assert!(
        !ok && err.contains("--force") && err.contains("FI-MFA"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(home.join("pki/members/FI-MFA.pem")).unwrap(),
        cert
    );
    let (ok, err) = run(&["pki", "issue", "FI-MFA", "--force"]);
    assert!(ok, "{err}");
    assert_ne!(
        std::fs::read(home.join("pki/members/FI-MFA.pem")).unwrap(),
        cert
    );
}
