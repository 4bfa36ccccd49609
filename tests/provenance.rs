//! Provenance end to end, on the real binary over mTLS: a national body with a three-level
//! openssl PKI (README "Proving what was said", its block run as it stands) signs a
//! submission; a member that requires signatures cannot publish unsigned; bad signatures are
//! refused naming what failed; a reader verifies offline from a STIX export and from `get
//! --json` with only the hub's public key and the national root; every tampered input fails
//! naming what failed; receipts follow the submission's audience.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

mod common;

use base64::{Engine, engine::general_purpose::STANDARD};
use cbm_hub::{
    pb,
    provenance::cose::SigningKey,
    tls::{load_certs, load_key},
};
use common::process::{BIN, cli, init, readme_block, run_bounded, serve, sh};
use prost::Message;
use serde_json::Value;

/// `cbm-hub verify` with `args`: (success, stdout, stderr).
fn verify(args: &[&str]) -> (bool, String, String) {
    let r = run_bounded(
        Command::new(BIN).arg("verify").args(args),
        Duration::from_secs(60),
    );
    (r.success(), r.out, r.err)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A signing key from PEM files (the library's, as the CLI uses it).
fn signing_key(key: &Path, chain: &Path) -> SigningKey {
    SigningKey::new(&load_key(key).unwrap(), load_certs(chain).unwrap()).unwrap()
}

/// The cbm-hub extension block of a STIX object.
fn ext(o: &mut Value) -> &mut Value {
    &mut o["extensions"][cbm_hub::stix::ext::id()]
}

/// Replaces a STIX object's signature with `key`'s over the same signed content.
fn resign(o: &mut Value, key: &SigningKey) {
    let e = ext(o);
    let signed = STANDARD
        .decode(e["signed_content"].as_str().unwrap())
        .unwrap();
    e["signature"] = STANDARD
        .encode(key.sign_change(&signed, Some("publish 1")).unwrap())
        .into();
}

/// A publish of `content` carrying `key`'s signature over `signed` claiming `claim`.
fn signed_publish(
    content: &pb::SubmissionContent,
    signed: &pb::SubmissionContent,
    key: &SigningKey,
    claim: Option<&str>,
) -> pb::PublishRequest {
    pb::PublishRequest {
        content: Some(content.clone()),
        signature: key
            .sign_change(&signed.encode_to_vec(), claim)
            .unwrap()
            .into(),
        ..Default::default()
    }
}

fn write_json(p: &Path, v: &Value) {
    std::fs::write(p, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// Runs `verify` on `file` and asserts that it fails naming `what` (and, for a check that
/// fails, the line), and that every line before is ok or names `what` too.
fn fails_naming(file: &Path, extra: &[&str], what: &str, anchors: &Path, key: &Path) {
    let mut args = vec![path(file)];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--hub-key", path(key), "--trust-anchor", path(anchors)]);
    let (ok, out, err) = verify(&args);
    assert!(!ok, "tampered {what} verified:\n{out}");
    assert!(
        out.lines().any(|l| l.starts_with(&format!("FAIL {what}:"))),
        "{what}:\n{out}"
    );
    assert!(
        err.contains("verification failed:") && err.contains(what),
        "{what}: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_national_pki_signs_and_a_reader_verifies_offline_every_tampering_named() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hub");
    init(&home);
    let nat: PathBuf = dir.path().join("national");
    std::fs::create_dir(&nat).unwrap();
    sh(&nat, &readme_block("tests/provenance.rs"));
    // Another national PKI, whose certificates no one bound: for the unbound signer and the
    // chain to an anchor the reader does not trust.
    sh(
        &nat,
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other-root-key.pem\n\
         openssl req -x509 -new -key other-root-key.pem -out other-root.pem -days 30 \
           -subj '/CN=Other Root' -addext 'basicConstraints=critical,CA:TRUE'\n\
         sed 's/signer:EE-MFA/signer:EE-CERT/' signing.ext > stranger.ext\n\
         openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out stranger-key.pem\n\
         openssl req -new -key stranger-key.pem -subj '/CN=stranger' | openssl x509 -req \
           -CA signing-ca.pem -CAkey signing-ca-key.pem -days 30 -extfile stranger.ext \
           -out stranger.pem\n\
         cat stranger.pem signing-ca.pem > stranger-chain.pem\n\
         sed 's/digitalSignature, nonRepudiation/keyEncipherment/' signing.ext > encipher.ext\n\
         openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out encipher-key.pem\n\
         openssl req -new -key encipher-key.pem -subj '/CN=encipher' | openssl x509 -req \
           -CA signing-ca.pem -CAkey signing-ca-key.pem -days 30 -extfile encipher.ext \
           -out encipher.pem\n\
         cat encipher.pem signing-ca.pem > encipher-chain.pem\n\
         printf 'basicConstraints = critical, CA:FALSE\\n' > notca.ext\n\
         openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out notca-key.pem\n\
         openssl req -new -key notca-key.pem -subj '/CN=not a CA' | openssl x509 -req \
           -CA root.pem -CAkey root-key.pem -days 30 -extfile notca.ext -out notca.pem\n\
         openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out under-notca-key.pem\n\
         openssl req -new -key under-notca-key.pem -subj '/CN=under a non-CA' | openssl x509 \
           -req -CA notca.pem -CAkey notca-key.pem -days 30 -extfile signing.ext \
           -out under-notca.pem\n\
         cat under-notca.pem notca.pem > under-notca-chain.pem\n\
         openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out outsider-key.pem\n\
         openssl req -new -key outsider-key.pem -subj '/CN=outsider' | openssl x509 -req \
           -CA other-root.pem -CAkey other-root-key.pem -days 30 -extfile signing.ext \
           -out outsider.pem",
    );
    let n = |f: &str| nat.join(f);
    // The operator adds the national root to the client CA bundle.
    let bundle = home.join("pki").join("client-bundle.pem");
    let mut pem = std::fs::read_to_string(home.join("pki").join("ca.pem")).unwrap();
    pem.push_str(&std::fs::read_to_string(n("root.pem")).unwrap());
    std::fs::write(&bundle, pem).unwrap();
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    let config: String = config
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("client_ca") {
                format!("client_ca = {:?}", path(&bundle))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(home.join("config.toml"), config).unwrap();

    let (hub, ep) = serve(&home);
    let run = |args: &[&str]| cli(&home, &ep, args);
    let admin = |args: &[&str]| {
        let r = run(&[args, &["-p", "HUB-ADMIN"][..]].concat());
        assert!(r.0, "{args:?}: {}{}", r.1, r.2);
        r.1
    };
    admin(&[
        "member",
        "bind",
        "EE-MFA",
        "--uri-san",
        "urn:cbm:signer:EE-MFA",
        "--issuer-ca",
        path(&n("root.pem")),
    ]);
    let shown = admin(&["member", "update", "EE-MFA", "--require-signed", "true"]);
    assert!(shown.contains("signatures:  required"), "{shown}");

    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy_document.yaml");
    // The example published by EE-MFA, signed with the national files `key` and `chain`.
    let publish_signed = |key: &str, chain: &str, more: &[&str]| {
        let (key, chain) = (n(key), n(chain));
        let sign = ["--sign-key", path(&key), "--sign-cert", path(&chain)];
        run(&[&["publish", example, "-p", "EE-MFA"][..], &sign, more].concat())
    };
    // A reader's (CL-CSIRT's) receipt for `id`, written to `out`.
    let save_receipt = |id: &str, out: &Path| {
        let (ok, _, err) = run(&["receipt", id, "--out", path(out), "-p", "CL-CSIRT"]);
        assert!(ok, "{err}");
    };
    // `member`'s STIX export (with `more` options) written to `out`.
    let export_stix = |member: &str, more: &[&str], out: &Path| {
        let (ok, _, err) = run(&[
            &["export", "stix"],
            more,
            &["-p", member, "--out", path(out)],
        ]
        .concat());
        assert!(ok, "{err}");
    };
    // The STIX bundle CL-CSIRT's feed carries for the change at `sequence`.
    let fed_stix = |sequence: u64| {
        let after = (sequence - 1).to_string();
        let (ok, line, err) = run(&[
            "subscribe",
            "-p",
            "CL-CSIRT",
            "--format",
            "stix",
            "--after",
            &after,
            "--max-events",
            "1",
        ]);
        assert!(ok, "{err}");
        line
    };
    let refused = |key: &str, chain: &str, why: &str| {
        let (ok, _, err) = publish_signed(key, chain, &[]);
        assert!(!ok && err.contains(why), "{err}");
    };
    // A member that requires signatures cannot publish unsigned.
    let (ok, _, err) = run(&["publish", example, "-p", "EE-MFA"]);
    assert!(
        !ok && err.contains("signature: required: member EE-MFA must sign"),
        "{err}"
    );
    // A signer of the national PKI not bound to EE-MFA, and one of a CA the hub does not trust.
    refused(
        "stranger-key.pem",
        "stranger-chain.pem",
        "signature: signer urn:cbm:signer:EE-CERT is not bound to publisher EE-MFA",
    );
    refused(
        "outsider-key.pem",
        "outsider.pem",
        "signature: certificate chain does not reach a trusted CA",
    );
    // A certificate of the ministry's own identity whose key usage does not allow signing.
    refused(
        "encipher-key.pem",
        "encipher-chain.pem",
        "signature: signer certificate lacks the digitalSignature key usage",
    );
    // Signed content that is not the content sent.
    let key = signing_key(&n("mfa-sign-key.pem"), &n("mfa-sign-chain.pem"));
    let content = common::samples::envelope(
        "National cyber security strategy",
        "TLP:CLEAR",
        common::samples::policy_document(),
    );
    let mut other = content.clone();
    other.title.push_str(" (edited)");
    let mut client = hub.hub("EE-MFA").await;
    let status = client
        .publish(signed_publish(&other, &content, &key, Some("publish 1")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.message(), "signature: does not match content");
    // A signature that claims no change (or another one) is refused: it could be shown later
    // as any revision.
    for (claim, why) in [
        (
            None,
            "signature: names no change (protected header -65537 must say \"publish 1\"",
        ),
        (
            Some("revise x 2"),
            "signature: is for \"revise x 2\", not for \"publish 1\"",
        ),
    ] {
        let status = client
            .publish(signed_publish(&content, &content, &key, claim))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().starts_with(why), "{}", status.message());
    }

    // Signed by the ministry's national signing certificate: accepted, with a receipt.
    let receipt_file = dir.path().join("receipt.json");
    let (ok, out, err) = publish_signed(
        "mfa-sign-key.pem",
        "mfa-sign-chain.pem",
        &["--receipt", path(&receipt_file), "--json"],
    );
    assert!(ok, "{out}{err}");
    let reply: Value = serde_json::from_str(&out).unwrap();
    let id = reply["id"].as_str().unwrap().to_string();
    assert_eq!(reply["receipt"]["submission_id"], id.as_str(), "{out}");

    // The hub serves the signature byte-identical: get, and the receipt to a reader.
    let got = client
        .get(pb::GetRequest {
            id: id.clone(),
            revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.content_hash, reply["content_hash"].as_str().unwrap());
    assert!(!got.signature.is_empty());
    let (ok, json, err) = run(&["get", &id, "--json", "-p", "CL-CSIRT"]);
    assert!(ok, "{err}");
    let served: pb::Submission = serde_json::from_str(&json).unwrap();
    assert_eq!(served.signature, got.signature);
    let submission_file = dir.path().join("submission.json");
    std::fs::write(&submission_file, &json).unwrap();
    let reader_receipt = dir.path().join("reader-receipt.json");
    save_receipt(&id, &reader_receipt);

    let hub_key = home.join("data").join("audit-signing-key.pub");
    let root = n("root.pem");
    // `verify` with the hub's key and the national root after `args`.
    let verify_with = |args: &[&str]| {
        verify(
            &[
                args,
                &["--hub-key", path(&hub_key), "--trust-anchor", path(&root)],
            ]
            .concat(),
        )
    };
    // Offline, from `get --json` and the receipt.
    let (ok, out, err) = verify_with(&[path(&submission_file), "--receipt", path(&reader_receipt)]);
    assert!(ok, "{out}{err}");
    for line in [
        "ok   content: sha256:",
        "ok   signature: ES256 by urn:cbm:signer:EE-MFA verifies over the content",
        "ok   certificate chain: reaches trust anchor C=EE, O=Republic of Estonia, CN=Estonia National Root CA (1 intermediate(s))",
        "ok   receipt: signed by hub",
        "ok   signer: the hub found certificate sha256:",
        "ok   inclusion proof: audit leaf",
        "ok   checkpoint:",
        "verified: ",
    ] {
        assert!(out.contains(line), "{line}\n{out}");
    }

    // Offline, from a STIX export carrying the signed content, signature and receipt.
    let stix_file = dir.path().join("cbm.json");
    export_stix("CL-CSIRT", &[], &stix_file);
    let (ok, out, err) = verify_with(&[path(&stix_file)]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(
            "ok   content: the STIX object is exactly the hub's mapping of the signed content"
        ),
        "{out}"
    );
    // The same from `subscribe --format stix`: the change's bundle carries it all too.
    let sequence: u64 = reply["sequence"].as_str().unwrap().parse().unwrap();
    let line = fed_stix(sequence);
    let fed_file = dir.path().join("fed.json");
    std::fs::write(&fed_file, line.trim()).unwrap();
    let (ok, out, err) = verify_with(&[path(&fed_file)]);
    assert!(
        ok && out.contains("ok   receipt: names this change"),
        "{out}{err}"
    );
    common::oasis::validate(dir.path(), &[&stix_file, &fed_file], &[]);

    // The Python client verifies the same files with pycose, and names a tampered signature.
    let python = common::python::venv();
    let py_client = common::python::client_dir(&python, dir.path());
    let py_verify = |args: &[&str]| {
        run_bounded(
            Command::new(&python)
                .arg(py_client.join("verify.py"))
                .args(args)
                .args(["--hub-key", path(&hub_key), "--trust-anchor", path(&root)])
                .current_dir(&py_client),
            Duration::from_secs(60),
        )
    };
    for args in [
        vec![path(&stix_file), "--signed-content-only"],
        vec![path(&fed_file), "--signed-content-only"],
        vec![path(&submission_file), "--receipt", path(&reader_receipt)],
    ] {
        let r = py_verify(&args);
        assert!(
            r.success() && r.out.contains("verified: "),
            "{args:?}: {}{}",
            r.out,
            r.err
        );
    }

    // Each tampered input fails, naming what failed.
    let bundle: Value = serde_json::from_slice(&std::fs::read(&stix_file).unwrap()).unwrap();
    let ext_id = cbm_hub::stix::ext::id();
    let signed_index = bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .position(|o| o["extensions"][&ext_id]["signature"].is_string())
        .unwrap();
    let tampered = |name: &str, change: &dyn Fn(&mut Value)| {
        let mut b = bundle.clone();
        change(&mut b["objects"][signed_index]);
        let file = dir.path().join(format!("tampered-{name}.json"));
        write_json(&file, &b);
        file
    };
    // Content: a readable property edited, then the signed bytes themselves.
    let f = tampered("name", &|o| o["name"] = "Another strategy".into());
    fails_naming(&f, &[], "content", &root, &hub_key);
    let f = tampered("signed", &|o| {
        let e = ext(o);
        let mut c = pb::SubmissionContent::decode(
            STANDARD
                .decode(e["signed_content"].as_str().unwrap())
                .unwrap()
                .as_slice(),
        )
        .unwrap();
        c.summary.push_str(" Amended.");
        e["signed_content"] = STANDARD.encode(c.encode_to_vec()).into();
    });
    fails_naming(&f, &[], "content", &root, &hub_key);
    // Signature: one bit of the signature value.
    let f = tampered("signature", &|o| {
        let e = ext(o);
        let mut sig = STANDARD.decode(e["signature"].as_str().unwrap()).unwrap();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        e["signature"] = STANDARD.encode(sig).into();
    });
    fails_naming(&f, &[], "signature", &root, &hub_key);
    let r = py_verify(&[path(&f)]);
    assert!(
        !r.success() && r.out.contains("FAIL signature") && r.err.contains("signature"),
        "{}{}",
        r.out,
        r.err
    );
    // Certificate chain: a reader trusting another root.
    fails_naming(
        &stix_file,
        &[],
        "certificate chain",
        &n("other-root.pem"),
        &hub_key,
    );
    // Receipt: a field of the hub's statement.
    let f = tampered("receipt", &|o| {
        let e = ext(o);
        e["receipt"]["accepted_at"] = "2020-01-01T00:00:00Z".into();
    });
    fails_naming(&f, &[], "receipt", &root, &hub_key);
    // Inclusion proof: one hash of the path.
    let f = tampered("proof", &|o| {
        let e = ext(o);
        let proof = e["receipt"]["inclusion_proof"].as_array_mut().unwrap();
        assert!(!proof.is_empty(), "a log of several entries has a path");
        proof[0] = "00".repeat(32).into();
    });
    fails_naming(&f, &[], "inclusion proof", &root, &hub_key);
    // Checkpoint: its root.
    let f = tampered("checkpoint", &|o| {
        let e = ext(o);
        e["receipt"]["checkpoint"]["root_hash"] = "11".repeat(32).into();
    });
    fails_naming(&f, &[], "checkpoint", &root, &hub_key);
    // Wrong hub key.
    let wrong_key = dir.path().join("wrong.pub");
    std::fs::write(&wrong_key, format!("{}\n", "ab".repeat(32))).unwrap();
    fails_naming(&stix_file, &[], "receipt", &root, &wrong_key);
    let r = run_bounded(
        Command::new(&python)
            .arg(py_client.join("verify.py"))
            .arg(path(&stix_file))
            .args(["--hub-key", path(&wrong_key), "--trust-anchor", path(&root)])
            .current_dir(&py_client),
        Duration::from_secs(60),
    );
    assert!(
        !r.success()
            && r.out
                .contains("FAIL receipt: not signed by the hub key given"),
        "{}{}",
        r.out,
        r.err
    );
    // verify.py: a STIX object's readable properties are not re-mapped, so an edited
    // description is never "verified" (the CLI names it too); a malformed signature is a FAIL
    // line, not a traceback; a chain through a non-CA intermediate, or a signer whose key usage
    // excludes signing, fails the chain in both verifiers.
    let f = tampered("description", &|o| {
        o["description"] = "An edited description.".into();
    });
    fails_naming(&f, &[], "content", &root, &hub_key);
    let r = py_verify(&[path(&f)]);
    assert!(
        !r.success() && r.out.contains("FAIL content:") && !r.out.contains("verified"),
        "{}{}",
        r.out,
        r.err
    );
    let f = tampered("malformed", &|o| {
        ext(o)["signature"] = STANDARD.encode(b"not a COSE message").into();
    });
    fails_naming(&f, &[], "signature", &root, &hub_key);
    let r = py_verify(&[path(&f), "--signed-content-only"]);
    assert!(
        !r.success()
            && r.out.contains("FAIL signature: is not a COSE_Sign1")
            && !r.err.contains("Traceback"),
        "{}{}",
        r.out,
        r.err
    );
    // A field of another type is malformed, not read as 0 (found by a new user's run).
    let f = tampered("revision-type", &|o| ext(o)["revision"] = "2".into());
    let (ok, out, err) = verify(&[
        path(&f),
        "--hub-key",
        path(&hub_key),
        "--trust-anchor",
        path(&root),
    ]);
    assert!(
        !ok && err.contains("extension field revision: not a whole number"),
        "{out}{err}"
    );
    for (key, chain, why) in [
        (
            "under-notca-key.pem",
            "under-notca-chain.pem",
            "CN=not a CA is not a CA certificate",
        ),
        (
            "encipher-key.pem",
            "encipher-chain.pem",
            "lacks the digitalSignature key usage",
        ),
    ] {
        let other = signing_key(&n(key), &n(chain));
        let f = tampered(key, &|o| resign(o, &other));
        fails_naming(&f, &[], "certificate chain", &root, &hub_key);
        let r = py_verify(&[path(&f), "--signed-content-only"]);
        assert!(
            !r.success()
                && r.out
                    .lines()
                    .any(|l| l.starts_with("FAIL certificate chain:") && l.contains(why)),
            "{key}: {}{}",
            r.out,
            r.err
        );
    }
    // The receipt text verify.py rebuilds is the hub's, numbers left out of the JSON (0)
    // included.
    let zero = pb::Receipt {
        hub_id: "hub".into(),
        submission_id: "s".into(),
        accepted_at: "2026-01-01T00:00:00Z".into(),
        action: "published".into(),
        ..Default::default()
    };
    let zero_file = dir.path().join("zero-receipt.json");
    std::fs::write(&zero_file, serde_json::to_string(&zero).unwrap()).unwrap();
    let r = run_bounded(
        Command::new(&python)
            .args([
                "-c",
                "import json, sys, verify; sys.stdout.write(verify.receipt_text(json.load(open(sys.argv[1]))))",
                path(&zero_file),
            ])
            .current_dir(&py_client),
        Duration::from_secs(60),
    );
    assert!(r.success(), "{}", r.err);
    assert_eq!(r.out, cbm_hub::provenance::receipt::signed_text(&zero));
    // A signer not bound to the publisher: a valid signature over the same bytes by a
    // certificate of the same national PKI that the hub never bound to EE-MFA.
    let stranger = signing_key(&n("stranger-key.pem"), &n("stranger-chain.pem"));
    let f = tampered("signer", &|o| resign(o, &stranger));
    fails_naming(&f, &[], "signer", &root, &hub_key);
    // A revert: revision 1's signed content and signature shown as revision 3. The signature
    // claims "publish 1", so both verifiers name the signature.
    let f = tampered("revert", &|o| ext(o)["revision"] = 3.into());
    fails_naming(&f, &[], "signature", &root, &hub_key);
    let (_, out, _) = verify_with(&[path(&f)]);
    assert!(
        out.contains("FAIL signature: is for \"publish 1\", not for \"revise"),
        "{out}"
    );
    let r = py_verify(&[path(&f), "--signed-content-only"]);
    assert!(
        !r.success() && r.out.contains("FAIL signature: is for 'publish 1'"),
        "{}{}",
        r.out,
        r.err
    );
    // The same from `get --json`: the content edited.
    let mut s: Value = serde_json::from_str(&json).unwrap();
    s["content"]["title"] = "Edited".into();
    let f = dir.path().join("tampered-get.json");
    write_json(&f, &s);
    fails_naming(
        &f,
        &["--receipt", path(&reader_receipt)],
        "content",
        &root,
        &hub_key,
    );

    // Receipts follow the audience: an AMBER submission to EE-CERT, signed with EE-MFA's mTLS
    // key (bound by its certificate hash).
    let member_pem = home.join("pki").join("members").join("EE-MFA.pem");
    let member_key = home.join("pki").join("members").join("EE-MFA-key.pem");
    let tls_key = signing_key(&member_key, &member_pem);
    let mut amber = content.clone();
    amber.tlp = "TLP:AMBER".into();
    amber.recipients = vec!["EE-CERT".into()];
    let r = client
        .publish(signed_publish(&amber, &amber, &tls_key, Some("publish 1")))
        .await
        .unwrap()
        .into_inner();
    let receipt = r
        .receipt
        .expect("a signed change's reply carries its receipt");
    assert_eq!(receipt.leaf_index + 1, r.audit_sequence);
    let (ok, out, err) = run(&["receipt", &r.id, "-p", "EE-CERT"]);
    assert!(ok && out.contains(&r.id), "{out}{err}");
    let (ok, _, err) = run(&["receipt", &r.id, "-p", "CL-CSIRT"]);
    assert!(!ok && err.contains("no submission"), "{err}");

    // Revised and withdrawn with signatures; the withdrawal verifies offline for a reader.
    let revised = dir.path().join("revised.yaml");
    std::fs::write(
        &revised,
        std::fs::read_to_string(example)
            .unwrap()
            .replacen("title:", "title: Revised -", 1),
    )
    .unwrap();
    let (sign_key, sign_cert) = (n("mfa-sign-key.pem"), n("mfa-sign-chain.pem"));
    let sign = [
        "--sign-key",
        path(&sign_key),
        "--sign-cert",
        path(&sign_cert),
    ];
    let status = client
        .revise(pb::ReviseRequest {
            id: id.clone(),
            content: Some(content.clone()),
            signature: key
                .sign_change(&content.encode_to_vec(), Some("publish 1"))
                .unwrap()
                .into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.message(),
        format!(
            "signature: is for \"publish 1\", not for \"revise {id} 2\" (the change claim, protected header -65537)"
        )
    );
    let (ok, out, err) =
        run(&[&["revise", &id, path(&revised), "-p", "EE-MFA"], &sign[..]].concat());
    assert!(ok && out.contains("revision 2"), "{out}{err}");
    // The CLI's signature claims "revise ID 2": revision 2 verifies offline for a reader.
    let (ok, json2, err) = run(&["get", &id, "--json", "-p", "CL-CSIRT"]);
    assert!(ok, "{err}");
    let revision_file = dir.path().join("revision-2.json");
    std::fs::write(&revision_file, &json2).unwrap();
    let revision_receipt = dir.path().join("revision-2-receipt.json");
    save_receipt(&id, &revision_receipt);
    let (ok, out, err) = verify_with(&[path(&revision_file), "--receipt", path(&revision_receipt)]);
    assert!(ok && out.contains("verified: "), "{out}{err}");
    let r = py_verify(&[path(&revision_file), "--receipt", path(&revision_receipt)]);
    assert!(r.success(), "{}{}", r.out, r.err);
    let (ok, _, err) = run(&["withdraw", &id, "--reason", "superseded", "-p", "EE-MFA"]);
    assert!(!ok && err.contains("signature: required"), "{err}");
    let (ok, out, err) = run(&[
        &["withdraw", &id, "--reason", "superseded", "-p", "EE-MFA"],
        &sign[..],
    ]
    .concat());
    assert!(ok && out.contains("revision 3"), "{out}{err}");
    let (ok, json, err) = run(&["get", &id, "--json", "-p", "CL-CSIRT"]);
    assert!(ok && json.contains("withdrawn"), "{err}");
    std::fs::write(&submission_file, &json).unwrap();
    save_receipt(&id, &reader_receipt);
    let (ok, out, err) = verify_with(&[path(&submission_file), "--receipt", path(&reader_receipt)]);
    assert!(
        ok && out.contains("verifies over the withdrawal statement"),
        "{out}{err}"
    );

    // The withdrawal in STIX: a reader's export revokes the object and carries the signed
    // statement, the signature and the receipt; both verifiers rebuild the statement from the
    // id, revision and reason the object names.
    let withdrawal: pb::Submission = serde_json::from_str(&json).unwrap();
    let reader_stix = dir.path().join("withdrawn.json");
    export_stix("CL-CSIRT", &["--include-withdrawn"], &reader_stix);
    let by_id = ["--id", id.as_str()];
    let (ok, out, err) = verify_with(&[path(&reader_stix), "--id", &id]);
    assert!(ok, "{out}{err}");
    for line in [
        "ok   content: the STIX object is exactly the hub's revocation for the signed withdrawal statement (reason \"superseded\")",
        "verifies over the withdrawal statement",
        "ok   receipt: names this change",
        "ok   inclusion proof:",
        "verified: ",
    ] {
        assert!(out.contains(line), "{line}\n{out}");
    }
    let line = fed_stix(withdrawal.sequence);
    let fed_withdrawal = dir.path().join("fed-withdrawal.json");
    std::fs::write(&fed_withdrawal, line.trim()).unwrap();
    let (ok, out, err) = verify_with(&[path(&fed_withdrawal)]);
    assert!(
        ok && out.contains("ok   receipt: names this change")
            && out.contains("verifies over the withdrawal statement"),
        "{out}{err}"
    );
    for args in [
        vec![path(&reader_stix), by_id[0], by_id[1]],
        vec![path(&fed_withdrawal)],
    ] {
        let r = py_verify(&args);
        assert!(
            r.success() && r.out.contains("ok   statement:") && r.out.contains("verified: "),
            "{args:?}: {}{}",
            r.out,
            r.err
        );
    }
    // Tampered: the reason readers are shown, and the revocation's text.
    let bundle: Value = serde_json::from_slice(&std::fs::read(&reader_stix).unwrap()).unwrap();
    let revoked: Vec<usize> = bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, o)| o["extensions"][&ext_id]["submission_id"] == id.as_str())
        .map(|(i, _)| i)
        .collect();
    assert!(!revoked.is_empty());
    let tampered = |name: &str, change: &dyn Fn(&mut Value)| {
        let mut b = bundle.clone();
        for i in &revoked {
            change(&mut b["objects"][*i]);
        }
        let file = dir.path().join(format!("tampered-withdrawal-{name}.json"));
        write_json(&file, &b);
        file
    };
    let f = tampered("reason", &|o| {
        ext(o)["withdrawal_reason"] = "never said".into()
    });
    fails_naming(&f, &by_id, "content", &root, &hub_key);
    let r = py_verify(&[path(&f), by_id[0], by_id[1]]);
    assert!(
        !r.success() && r.out.contains("FAIL statement") && r.out.contains("FAIL signature"),
        "{}{}",
        r.out,
        r.err
    );
    let f = tampered("name", &|o| {
        o["name"] = "Withdrawn: it was all a mistake".into()
    });
    fails_naming(&f, &by_id, "content", &root, &hub_key);
    // The publisher's own export still shows the content, which the withdrawal's signature
    // does not cover: said, not verified.
    let own_stix = dir.path().join("own-withdrawn.json");
    export_stix("EE-MFA", &["--include-withdrawn"], &own_stix);
    let (ok, out, _) = verify_with(&[path(&own_stix), "--id", &id]);
    assert!(
        !ok && out.contains(
            "FAIL content: the object shows content, which a withdrawal's signature does not cover"
        ) && out.contains("verifies over the withdrawal statement"),
        "{out}"
    );
}
