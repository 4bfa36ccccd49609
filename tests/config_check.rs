//! The configuration file format: the annotated example passes `cbm-hub config check` and stays
//! in sync with the option table and the `Config` struct; a broken file gets every problem
//! reported at once, each under its key.
use std::{collections::HashMap, path::Path, process::Command};

use cbm_hub::{
    config::{
        self, Config, Limits, LogConfig, Overrides,
        options::{OPTIONS, Ty, env_name},
    },
    store::StoreOptions,
    tls::{
        ServerTlsFiles,
        devpki::{DevCa, LeafSpec},
    },
};

const BIN: &str = env!("CARGO_BIN_EXE_cbm-hub");
const EXAMPLE: &str = include_str!("../examples/cbm-hub.toml");

/// The example copied into a directory with real certificates where it points.
fn example_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::generate("config test CA").unwrap();
    let server = ca.issue(&LeafSpec::server(&[], 30)).unwrap();
    std::fs::create_dir(dir.path().join("pki")).unwrap();
    for (name, text) in [
        ("pki/ca.pem", &ca.cert_pem),
        ("pki/server.pem", &server.cert_pem),
        ("pki/server-key.pem", &server.key_pem),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    std::fs::write(dir.path().join("cbm-hub.toml"), EXAMPLE).unwrap();
    dir
}

fn check(file: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["config", "check", "--no-env"])
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Every key of a TOML table, dotted.
fn keys(table: &toml::Table, prefix: &str, out: &mut HashMap<String, toml::Value>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => keys(t, &key, out),
            v => {
                out.insert(key, v.clone());
            }
        }
    }
}

#[test]
fn the_example_passes_config_check_and_holds_the_defaults() {
    let dir = example_dir();
    let (ok, stdout) = check(&dir.path().join("cbm-hub.toml"));
    assert!(ok, "{stdout}");
    assert!(stdout.contains("ok:"), "{stdout}");

    let c = config::parse(EXAMPLE, dir.path(), &HashMap::new(), &Overrides::default()).unwrap();
    assert_eq!(c.limits, Limits::default());
    assert_eq!(
        format!("{:?}", c.store),
        format!("{:?}", StoreOptions::default())
    );
    assert_eq!(c.log, LogConfig::default());
    assert_eq!(c.metrics_listen, None);
}

#[test]
fn the_example_documents_every_option_with_its_default_range_and_meaning() {
    let table: toml::Table = EXAMPLE.parse().unwrap();
    let mut found = HashMap::new();
    keys(&table, "", &mut found);
    let mut documented: Vec<&String> = found.keys().collect();
    documented.sort();
    let mut known: Vec<&str> = OPTIONS.iter().map(|o| o.key).collect();
    known.sort();
    assert_eq!(documented, known, "the example's keys are the options");
    // Comments joined into one line each, so that a wrapped sentence still matches.
    let prose = EXAMPLE.replace("\n# ", " ");
    for o in OPTIONS {
        if let Some(default) = o.default {
            assert_eq!(
                found[o.key],
                default.parse::<toml::Value>().unwrap(),
                "{} in the example is not its default",
                o.key
            );
        }
        assert!(
            prose.contains(o.doc),
            "{}: meaning not in the example",
            o.key
        );
        if let Ty::Int { min, max } = o.ty {
            assert!(
                prose.contains(&format!("{min}..={max}")),
                "{}: range not in the example",
                o.key
            );
        }
    }
}

/// Each field of `Config`, by the option that sets it. The exhaustive patterns stop compiling
/// when a field is added, until it is given an option here (and so in the table and example).
fn option_of_every_field(c: &Config) -> Vec<&'static str> {
    let Config {
        listen: _,
        metrics_listen: _,
        web_listen: _,
        data_dir: _,
        log: LogConfig { filter: _, json: _ },
        tls:
            ServerTlsFiles {
                client_ca: _,
                cert: _,
                key: _,
                crls: _,
            },
        limits:
            Limits {
                max_connections: _,
                max_concurrent_streams: _,
                max_message_bytes: _,
                handshake_timeout: _,
                keepalive_interval: _,
                keepalive_timeout: _,
                max_local_error_reset_streams: _,
                max_pending_accept_reset_streams: _,
                max_header_list_bytes: _,
                request_timeout: _,
                member_requests_per_second: _,
                member_request_burst: _,
                max_subscriptions_per_member: _,
            },
        store:
            StoreOptions {
                cache_capacity: _,
                fsync: _,
                live_buffer: _,
                check_on_start: _,
                background_check: _,
                min_free_bytes: _,
                noise_entries_per_minute: _,
                compression_level: _,
            },
        audit_checkpoint_interval: _,
        audit_noise_interval: _,
        tls_reload_check: _,
    } = c;
    vec![
        "listen",
        "metrics_listen",
        "web.listen",
        "data_dir",
        "log.filter",
        "log.json",
        "tls.client_ca",
        "tls.cert",
        "tls.key",
        "tls.crls",
        "limits.max_connections",
        "limits.max_concurrent_streams",
        "limits.max_message_bytes",
        "limits.handshake_timeout_ms",
        "limits.keepalive_interval_s",
        "limits.keepalive_timeout_s",
        "limits.max_local_error_reset_streams",
        "limits.max_pending_accept_reset_streams",
        "limits.max_header_list_bytes",
        "limits.request_timeout_s",
        "limits.member_requests_per_second",
        "limits.member_request_burst",
        "limits.max_subscriptions_per_member",
        "store.cache_mb",
        "store.fsync",
        "store.live_buffer",
        "store.compression_level",
        "store.check_on_start",
        "store.background_check_mb_per_s",
        "store.background_check_interval_s",
        "store.min_free_mb",
        "audit.checkpoint_interval_s",
        "audit.noise_interval_s",
        "audit.noise_entries_per_minute",
        "tls.reload_check_s",
    ]
}

#[test]
fn every_config_field_has_an_option_and_every_option_reaches_the_config() {
    let dir = example_dir();
    let base = dir.path();
    std::fs::write(base.join("other.pem"), "x").unwrap();
    let default = config::parse(EXAMPLE, base, &HashMap::new(), &Overrides::default()).unwrap();
    let mut fields = option_of_every_field(&default);
    fields.sort();
    let mut known: Vec<&str> = OPTIONS.iter().map(|o| o.key).collect();
    known.sort();
    assert_eq!(fields, known);

    // Set each option, alone, to another valid value through its environment variable: the
    // configuration must change.
    let other = base.join("other.pem").display().to_string();
    for o in OPTIONS {
        let current = o
            .default
            .map(|d| d.parse::<toml::Value>().unwrap())
            .unwrap_or(toml::Value::String(String::new()));
        let value = match o.ty {
            Ty::Int { min, max } => {
                if current.as_integer() == Some(min as i64) {
                    max.to_string()
                } else {
                    min.to_string()
                }
            }
            Ty::Bool => (!current.as_bool().unwrap()).to_string(),
            Ty::Addr => "127.0.0.1:1".into(),
            Ty::OptAddr => "127.0.0.1:2".into(),
            Ty::Dir => base.join("elsewhere").display().to_string(),
            Ty::File | Ty::FileList => other.clone(),
            Ty::LogFilter => "debug".into(),
        };
        let env = HashMap::from([(env_name(o.key), value.clone())]);
        let changed = config::parse(EXAMPLE, base, &env, &Overrides::default())
            .unwrap_or_else(|e| panic!("{}={value}: {e}", env_name(o.key)));
        assert_ne!(
            format!("{changed:?}"),
            format!("{default:?}"),
            "{} does not reach the configuration",
            o.key
        );
    }
}

#[test]
fn a_broken_file_gets_every_problem_reported_under_its_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let text = r#"
listen = "localhost"
data_dir = "a-file/data"
metrics_listen = "127.0.0.1:99999"
colour = "blue"

[log]
filter = "cbm_hub=loudest"
json = "yes"

[tls]
client_ca = "ca.pem"
cert = "missing.pem"
crls = ["gone.crl"]

[limits]
max_connections = 0
max_message_bytes = 1024
request_timeout_s = "60"
max_conections = 5

[store]
live_buffer = -1
"#;
    let file = dir.path().join("broken.toml");
    std::fs::write(&file, text).unwrap();
    let (ok, stdout) = check(&file);
    assert!(!ok, "a broken file must fail the check");
    let expected = [
        "listen: \"localhost\" is not an address",
        "data_dir: ",
        "metrics_listen: \"127.0.0.1:99999\" is not an address",
        "colour: unknown key",
        "log.filter: \"cbm_hub=loudest\" is not a log filter",
        "log.json: expected true or false, found string",
        "tls.cert: ",
        "tls.key: is required",
        "tls.crls: ",
        "limits.max_connections: must be between 1 and 1000000, not 0",
        "limits.max_message_bytes: must be between 3145728 and 268435456, not 1024",
        "limits.request_timeout_s: expected an integer, found string",
        "limits.max_conections: unknown key (did you mean `limits.max_connections`?)",
        "store.live_buffer: must be between 1 and 1000000, not -1",
    ];
    let errors: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("error: "))
        .collect();
    for e in expected {
        assert!(
            errors.iter().any(|l| l.starts_with(e)),
            "{e:?} not reported:\n{stdout}"
        );
    }
    assert_eq!(errors.len(), expected.len(), "{stdout}");
    assert!(stdout.contains("missing.pem does not exist"), "{stdout}");
    assert!(stdout.contains("is not a directory"), "{stdout}");
}

#[test]
fn certificates_that_do_not_load_are_reported() {
    let dir = example_dir();
    std::fs::write(dir.path().join("pki/server-key.pem"), "not a key").unwrap();
    let (ok, stdout) = check(&dir.path().join("cbm-hub.toml"));
    assert!(!ok);
    assert!(stdout.contains("error: tls.key:"), "{stdout}");
}

/// A server certificate every client would refuse, or a key that is not the certificate's, is
/// named by `config check` and refused by `serve` before it starts; `--client-cert` tells
/// whether the hub would accept a client's certificate.
#[test]
fn server_certificate_mistakes_and_client_certificates_are_named() {
    let dir = example_dir();
    let file = dir.path().join("cbm-hub.toml");
    let ca = DevCa::generate("config test CA 2").unwrap();
    std::fs::write(dir.path().join("pki/ca.pem"), &ca.cert_pem).unwrap();
    let mut spec = LeafSpec::server(&[], 30);
    let now = time::OffsetDateTime::now_utc();
    (spec.not_before, spec.not_after) = (
        now - time::Duration::days(60),
        now - time::Duration::days(1),
    );
    let expired = ca.issue(&spec).unwrap();
    std::fs::write(dir.path().join("pki/server.pem"), &expired.cert_pem).unwrap();
    std::fs::write(dir.path().join("pki/server-key.pem"), &expired.key_pem).unwrap();
    let (ok, out) = check(&file);
    assert!(!ok, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("error: tls.cert: ")
            && l.contains("the server certificate (CN=cbm-hub) expired on")),
        "{out}"
    );
    let served = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .env("CBM_HUB_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&served.stderr);
    assert!(
        !served.status.success() && err.contains("error: tls.cert: ") && err.contains("expired on"),
        "{err}"
    );

    // A valid certificate with another certificate's key.
    let server = ca.issue(&LeafSpec::server(&[], 365)).unwrap();
    let other = ca.issue(&LeafSpec::server(&[], 365)).unwrap();
    std::fs::write(dir.path().join("pki/server.pem"), &server.cert_pem).unwrap();
    std::fs::write(dir.path().join("pki/server-key.pem"), &other.key_pem).unwrap();
    let (ok, out) = check(&file);
    assert!(
        !ok && out.contains("error: tls.key: ") && out.contains("not the private key of"),
        "{out}"
    );
    std::fs::write(dir.path().join("pki/server-key.pem"), &server.key_pem).unwrap();

    // Client certificates: of the bundle's CA, and of another CA (named, with the bundle's).
    let member = ca.issue(&LeafSpec::client("EE-MFA", 30)).unwrap();
    let stranger = DevCa::generate("Stranger CA")
        .unwrap()
        .issue(&LeafSpec::client("EE-MFA", 30))
        .unwrap();
    std::fs::write(dir.path().join("member.pem"), &member.cert_pem).unwrap();
    std::fs::write(dir.path().join("stranger.pem"), &stranger.cert_pem).unwrap();
    let out = Command::new(BIN)
        .args(["config", "check", "--no-env", "--client-cert"])
        .arg(dir.path().join("member.pem"))
        .arg("--client-cert")
        .arg(dir.path().join("stranger.pem"))
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("member.pem: accepted (its chain ends at CA CN=config test CA 2")
            && stdout.contains(
                "stranger.pem: the hub would refuse this certificate: issued by CA CN=Stranger \
                 CA, O=cbm-hub development PKI, which is not in tls.client_ca (it holds: CN=config \
                 test CA 2"
            ),
        "{stdout}"
    );
}
