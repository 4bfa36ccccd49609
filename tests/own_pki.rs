//! A hub set up on an openssl-made PKI, following README.md's "Running with your own PKI": the
//! README's openssl block as it stands, `init --ca ...`, a registry holding only the first
//! administrator, members registered from their certificate files, renewal and rotation of a
//! member's key, a certificate of another CA refused with the cause named on both sides, and a
//! revocation through the CRL taking effect on SIGHUP. Over real mTLS, with the real binary.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

mod common;

use cbm_hub::tls::{check::Leaf, load_certs};
use common::process::{BIN, HubProcess, readme_block, run_bounded, sh};

/// A client certificate of the test PKI for `subject`, with a new key or the key in `key`.
fn client_cert(pki: &Path, name: &str, subject: &str, new_key: bool) {
    let key = if new_key {
        format!(
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {name}-key.pem\n"
        )
    } else {
        String::new()
    };
    sh(
        pki,
        &format!(
            "{key}openssl req -new -key {name}-key.pem -subj '{subject}' | openssl x509 -req \
             -CA ca.pem -CAkey ca-key.pem -days 365 -extfile client.ext -out {name}.pem"
        ),
    );
}

/// `cbm-hub --home HOME ARGS...`: (success, stdout, stderr).
fn hub_cli(home: &Path, args: &[&str]) -> (bool, String, String) {
    let r = run_bounded(
        Command::new(BIN)
            .args(["--home", home.to_str().unwrap()])
            .args(args),
        Duration::from_secs(60),
    );
    (r.success(), r.out, r.err)
}

struct Member<'a> {
    pki: &'a Path,
    ep: String,
}

impl Member<'_> {
    /// A client command as the holder of `name.pem` and `key.pem`, with its own files.
    fn run(&self, home: &Path, name: &str, key: &str, args: &[&str]) -> (bool, String, String) {
        let file = |f: String| self.pki.join(f).to_str().unwrap().to_string();
        let connect = [
            "--endpoint".to_string(),
            self.ep.clone(),
            "--server-name".into(),
            "hub.example.org".into(),
            "--ca".into(),
            file("ca.pem".into()),
            "--cert".into(),
            file(format!("{name}.pem")),
            "--key".into(),
            file(format!("{key}-key.pem")),
        ];
        let connect: Vec<&str> = connect.iter().map(String::as_str).collect();
        hub_cli(home, &[args, &connect[..]].concat())
    }
}

fn spki(path: &Path) -> String {
    Leaf::parse(load_certs(path).unwrap()[0].as_ref())
        .unwrap()
        .spki_sha256
}

#[test]
fn a_hub_on_an_openssl_pki_from_nothing_following_the_readme() {
    let dir = tempfile::tempdir().unwrap();
    let pki: PathBuf = dir.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    sh(&pki, &readme_block("tests/own_pki.rs"));
    let home = dir.path().join("hub");
    let file = |f: &str| pki.join(f).to_str().unwrap().to_string();

    // Mistakes are named before anything is written.
    let (ok, _, err) = hub_cli(
        &home,
        &[
            "init",
            "--ca",
            &file("ca.pem"),
            "--server-cert",
            &file("hub.pem"),
            "--server-key",
            &file("admin-key.pem"),
            "--admin-cert",
            &file("admin.pem"),
        ],
    );
    assert!(
        !ok && err.contains("--server-key") && err.contains("not the private key"),
        "{err}"
    );
    assert!(!home.join("config.toml").exists());

    // `init` as the README gives it (a free port instead of 50051).
    let (ok, out, err) = hub_cli(
        &home,
        &[
            "init",
            "--listen",
            "127.0.0.1:0",
            "--ca",
            &file("ca.pem"),
            "--crl",
            &file("ca.crl"),
            "--server-cert",
            &file("hub.pem"),
            "--server-key",
            &file("hub-key.pem"),
            "--admin-cert",
            &file("admin.pem"),
            "--admin-key",
            &file("admin-key.pem"),
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("Example State Ministry PKI") && out.contains("HUB-ADMIN"),
        "{out}"
    );
    assert!(!home.join("pki").exists(), "no dev PKI");
    let (ok, out, err) = hub_cli(&home, &["config", "check"]);
    assert!(ok && out.starts_with("ok: "), "{out}{err}");

    let hub = HubProcess::start(&home);
    let ep = format!("https://127.0.0.1:{}", hub.port);
    let admin = |args: &[&str]| {
        let r = hub_cli(
            &home,
            &[args, &["-p", "HUB-ADMIN", "--endpoint", &ep][..]].concat(),
        );
        assert!(r.0, "{args:?}: {}{}", r.1, r.2);
        r.1
    };
    // The registry holds the administrator alone, bound to its key under the CA.
    let list = admin(&["member", "list"]);
    assert_eq!(list.lines().skip(1).count(), 1, "{list}");
    assert!(
        list.contains("HUB-ADMIN") && list.contains("admin"),
        "{list}"
    );
    let shown = admin(&["member", "show", "HUB-ADMIN"]);
    assert!(
        shown.contains(&format!("spki_sha256 {}", spki(&pki.join("admin.pem")))),
        "{shown}"
    );

    // A member registered from its certificate file, checked first with config check.
    client_cert(&pki, "ee-mfa", "/O=Estonia/CN=EE-MFA", true);
    let (ok, out, err) = hub_cli(
        &home,
        &["config", "check", "--client-cert", &file("ee-mfa.pem")],
    );
    assert!(ok && out.contains("accepted"), "{out}{err}");
    admin(&[
        "member",
        "register",
        "EE-MFA",
        "--state",
        "EE",
        "--name",
        "Estonia, MFA",
        "--role",
        "publisher",
        "--role",
        "subscriber",
        "--spki-of",
        &file("ee-mfa.pem"),
    ]);
    let ee = Member {
        pki: &pki,
        ep: ep.clone(),
    };
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy_document.yaml");
    let (ok, out, err) = ee.run(&home, "ee-mfa", "ee-mfa", &["publish", example, "--json"]);
    assert!(ok, "{err}");
    let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, out, err) = ee.run(&home, "ee-mfa", "ee-mfa", &["get", &id]);
    assert!(ok && out.contains("policy_document"), "{out}{err}");

    // Renewal for the same key: nothing to do.
    std::fs::copy(
        pki.join("ee-mfa-key.pem"),
        pki.join("ee-mfa-renewed-key.pem"),
    )
    .unwrap();
    client_cert(&pki, "ee-mfa-renewed", "/O=Estonia/CN=EE-MFA", false);
    let (ok, out, err) = ee.run(&home, "ee-mfa-renewed", "ee-mfa", &["whoami"]);
    assert!(ok && out.contains("EE-MFA"), "{out}{err}");

    // A key that is not the certificate's, and a certificate of another CA: the client names
    // the cause; so does config check for the operator.
    let (ok, _, err) = ee.run(&home, "ee-mfa", "admin", &["whoami"]);
    assert!(!ok && err.contains("likely cause: your key"), "{err}");
    sh(
        &pki,
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other-ca-key.pem\n\
         openssl req -x509 -new -key other-ca-key.pem -out other-ca.pem -days 30 \
           -subj '/O=Other State/CN=Other CA' -addext 'basicConstraints=critical,CA:TRUE'\n\
         openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other-key.pem\n\
         openssl req -new -key other-key.pem -subj '/CN=EE-MFA' | openssl x509 -req \
           -CA other-ca.pem -CAkey other-ca-key.pem -days 30 -extfile client.ext -out other.pem",
    );
    let (ok, _, err) = ee.run(&home, "other", "other", &["whoami"]);
    assert!(
        !ok && err.contains(
            "likely cause: the hub does not trust the CA that issued your certificate \
             (O=Other State, CN=Other CA); it accepts client certificates from O=Example State, \
             CN=Example State Ministry PKI"
        ),
        "{err}"
    );
    let (ok, out, _) = hub_cli(
        &home,
        &["config", "check", "--client-cert", &file("other.pem")],
    );
    assert!(
        !ok && out
            .contains("issued by CA O=Other State, CN=Other CA, which is not in tls.client_ca"),
        "{out}"
    );

    // A new key: bound next to the old one, then the old one unbound.
    client_cert(&pki, "ee-mfa-2027", "/O=Estonia/CN=EE-MFA", true);
    let (ok, _, err) = ee.run(&home, "ee-mfa-2027", "ee-mfa-2027", &["whoami"]);
    assert!(!ok && err.contains("not bound to any member"), "{err}");
    admin(&[
        "member",
        "bind",
        "EE-MFA",
        "--spki-of",
        &file("ee-mfa-2027.pem"),
        "--note",
        "2027",
    ]);
    let (ok, _, err) = ee.run(&home, "ee-mfa-2027", "ee-mfa-2027", &["whoami"]);
    assert!(ok, "{err}");
    admin(&[
        "member",
        "unbind",
        "EE-MFA",
        "--spki-sha256",
        &spki(&pki.join("ee-mfa.pem")),
    ]);
    let (ok, _, err) = ee.run(&home, "ee-mfa", "ee-mfa", &["whoami"]);
    assert!(!ok && err.contains("not bound to any member"), "{err}");

    // Revocation: the CA publishes a new CRL, the file is replaced, SIGHUP reloads it.
    sh(
        &pki,
        "openssl ca -config ca.cnf -revoke ee-mfa-2027.pem -keyfile ca-key.pem -cert ca.pem\n\
         openssl ca -config ca.cnf -gencrl -keyfile ca-key.pem -cert ca.pem -out ca.crl.new\n\
         mv ca.crl.new ca.crl",
    );
    let pid = hub.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    // The reload runs in the hub's own time: ask until it refuses (bounded).
    let deadline = Instant::now() + Duration::from_secs(60);
    let err = loop {
        let (ok, _, err) = ee.run(&home, "ee-mfa-2027", "ee-mfa-2027", &["whoami"]);
        if !ok {
            break err;
        }
        assert!(
            Instant::now() < deadline,
            "the revocation never took effect"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        err.contains("likely cause: the hub refuses your certificate") && err.contains("revoked"),
        "{err}"
    );
    // The administrator is unaffected.
    admin(&["whoami"]);
}
