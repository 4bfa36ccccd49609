//! The server configuration: a pure function from a TOML document, environment variables and
//! command-line overrides to a validated [`Config`], reporting every problem at once.
//!
//! Precedence: flags over environment (`CBM_HUB_LISTEN`, `CBM_HUB_DATA_DIR`) over the file over
//! defaults. Relative paths in the file are relative to the file's directory.
use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use crate::{store::StoreOptions, tls::ServerTlsFiles};

/// Limits of the transport. Every one is explicit: several tonic/hyper defaults mean "none".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most (including handshakes in progress).
    pub max_connections: usize,
    /// HTTP/2 streams at once per connection.
    pub max_concurrent_streams: u32,
    /// Largest gRPC message accepted or sent, in bytes.
    pub max_message_bytes: usize,
    /// Time allowed for a TLS handshake.
    pub handshake_timeout: Duration,
    /// HTTP/2 ping interval and the time an unanswered ping closes the connection.
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    /// Streams a connection may have reset by the server for errors before it is closed.
    pub max_local_error_reset_streams: usize,
    /// Client-reset streams pending accept before the connection is closed (rapid reset).
    pub max_pending_accept_reset_streams: usize,
    /// Largest request header list.
    pub max_header_list_bytes: u32,
    /// Deadline for a unary request to be answered.
    pub request_timeout: Duration,
    /// Sustained requests per second per member, and the burst allowed above it.
    pub member_requests_per_second: u32,
    pub member_request_burst: u32,
    /// Open feed subscriptions per member at most.
    pub max_subscriptions_per_member: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            max_concurrent_streams: 256,
            max_message_bytes: 4 * 1024 * 1024,
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
            max_local_error_reset_streams: 256,
            max_pending_accept_reset_streams: 64,
            max_header_list_bytes: 16 * 1024,
            request_timeout: Duration::from_secs(60),
            member_requests_per_second: 5000,
            member_request_burst: 10_000,
            max_subscriptions_per_member: 64,
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub tls: ServerTlsFiles,
    pub limits: Limits,
    pub store: StoreOptions,
    /// How often the audit log's state is signed as a checkpoint (when it grew).
    pub audit_checkpoint_interval: Duration,
    /// How often the TLS files are checked for changes (also reloaded on SIGHUP).
    pub tls_reload_check: Duration,
}

/// Values given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    #[serde(default)]
    tls: FileTls,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    store: FileStore,
    #[serde(default)]
    audit: FileAudit,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAudit {
    checkpoint_interval_s: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    client_ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    #[serde(default)]
    crls: Vec<PathBuf>,
    reload_check_s: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_connections: Option<usize>,
    max_concurrent_streams: Option<u32>,
    max_message_bytes: Option<usize>,
    handshake_timeout_ms: Option<u64>,
    keepalive_interval_s: Option<u64>,
    keepalive_timeout_s: Option<u64>,
    max_local_error_reset_streams: Option<usize>,
    max_pending_accept_reset_streams: Option<usize>,
    max_header_list_bytes: Option<u32>,
    request_timeout_s: Option<u64>,
    member_requests_per_second: Option<u32>,
    member_request_burst: Option<u32>,
    max_subscriptions_per_member: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStore {
    cache_mb: Option<u64>,
    fsync: Option<bool>,
    live_buffer: Option<usize>,
    check_on_start: Option<bool>,
}

/// Every problem of a configuration.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigErrors(pub Vec<String>);

/// Reads and validates the file at `path` with the process environment and `overrides`.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors(vec![format!("{}: {e}", path.display())]))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let env: HashMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("CBM_HUB_"))
        .collect();
    parse(&text, base, &env, overrides)
}

/// The pure core of [`load`].
pub fn parse(
    text: &str,
    base: &Path,
    env: &HashMap<String, String>,
    overrides: &Overrides,
) -> Result<Config, ConfigErrors> {
    let file: FileConfig =
        toml::from_str(text).map_err(|e| ConfigErrors(vec![format!("config file: {e}")]))?;
    let mut errs = Vec::new();
    let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

    let listen_text = overrides
        .listen
        .clone()
        .or_else(|| env.get("CBM_HUB_LISTEN").cloned())
        .or(file.listen)
        .unwrap_or_else(|| "127.0.0.1:50051".into());
    let listen = listen_text.parse().unwrap_or_else(|_| {
        errs.push(format!(
            "listen: {listen_text:?} is not an address such as 127.0.0.1:50051"
        ));
        SocketAddr::from(([127, 0, 0, 1], 0))
    });
    let data_dir = overrides
        .data_dir
        .clone()
        .or_else(|| env.get("CBM_HUB_DATA_DIR").map(PathBuf::from))
        .or(file.data_dir.map(resolve))
        .unwrap_or_else(|| base.join("data"));

    let mut required = |name: &str, v: Option<PathBuf>| match v {
        Some(p) => {
            let p = resolve(p);
            if !p.is_file() {
                errs.push(format!(
                    "tls.{name}: {} is not a readable file",
                    p.display()
                ));
            }
            p
        }
        None => {
            errs.push(format!("tls.{name}: is required"));
            PathBuf::new()
        }
    };
    let tls = ServerTlsFiles {
        client_ca: required("client_ca", file.tls.client_ca),
        cert: required("cert", file.tls.cert),
        key: required("key", file.tls.key),
        crls: file.tls.crls.into_iter().map(resolve).collect(),
    };
    for crl in &tls.crls {
        if !crl.is_file() {
            errs.push(format!(
                "tls.crls: {} is not a readable file",
                crl.display()
            ));
        }
    }

    let d = Limits::default();
    let l = file.limits;
    let mut positive = |name: &str, v: Option<u64>, default: u64| -> u64 {
        match v {
            Some(0) => {
                errs.push(format!("limits.{name}: must be greater than 0"));
                default
            }
            Some(v) => v,
            None => default,
        }
    };
    let limits = Limits {
        max_connections: positive(
            "max_connections",
            l.max_connections.map(|v| v as u64),
            d.max_connections as u64,
        ) as usize,
        max_concurrent_streams: positive(
            "max_concurrent_streams",
            l.max_concurrent_streams.map(u64::from),
            u64::from(d.max_concurrent_streams),
        ) as u32,
        max_message_bytes: positive(
            "max_message_bytes",
            l.max_message_bytes.map(|v| v as u64),
            d.max_message_bytes as u64,
        ) as usize,
        handshake_timeout: Duration::from_millis(positive(
            "handshake_timeout_ms",
            l.handshake_timeout_ms,
            d.handshake_timeout.as_millis() as u64,
        )),
        keepalive_interval: Duration::from_secs(positive(
            "keepalive_interval_s",
            l.keepalive_interval_s,
            d.keepalive_interval.as_secs(),
        )),
        keepalive_timeout: Duration::from_secs(positive(
            "keepalive_timeout_s",
            l.keepalive_timeout_s,
            d.keepalive_timeout.as_secs(),
        )),
        max_local_error_reset_streams: positive(
            "max_local_error_reset_streams",
            l.max_local_error_reset_streams.map(|v| v as u64),
            d.max_local_error_reset_streams as u64,
        ) as usize,
        max_pending_accept_reset_streams: positive(
            "max_pending_accept_reset_streams",
            l.max_pending_accept_reset_streams.map(|v| v as u64),
            d.max_pending_accept_reset_streams as u64,
        ) as usize,
        max_header_list_bytes: positive(
            "max_header_list_bytes",
            l.max_header_list_bytes.map(u64::from),
            u64::from(d.max_header_list_bytes),
        ) as u32,
        request_timeout: Duration::from_secs(positive(
            "request_timeout_s",
            l.request_timeout_s,
            d.request_timeout.as_secs(),
        )),
        member_requests_per_second: positive(
            "member_requests_per_second",
            l.member_requests_per_second.map(u64::from),
            u64::from(d.member_requests_per_second),
        ) as u32,
        member_request_burst: positive(
            "member_request_burst",
            l.member_request_burst.map(u64::from),
            u64::from(d.member_request_burst),
        ) as u32,
        max_subscriptions_per_member: positive(
            "max_subscriptions_per_member",
            l.max_subscriptions_per_member.map(|v| v as u64),
            d.max_subscriptions_per_member as u64,
        ) as usize,
    };
    let sd = StoreOptions::default();
    let store = StoreOptions {
        cache_capacity: positive(
            "store.cache_mb",
            file.store.cache_mb,
            sd.cache_capacity / (1024 * 1024),
        ) * 1024
            * 1024,
        fsync: file.store.fsync.unwrap_or(sd.fsync),
        live_buffer: positive(
            "store.live_buffer",
            file.store.live_buffer.map(|v| v as u64),
            sd.live_buffer as u64,
        ) as usize,
        check_on_start: file.store.check_on_start.unwrap_or(sd.check_on_start),
    };
    let tls_reload_check =
        Duration::from_secs(positive("tls.reload_check_s", file.tls.reload_check_s, 5));
    let audit_checkpoint_interval = Duration::from_secs(positive(
        "audit.checkpoint_interval_s",
        file.audit.checkpoint_interval_s,
        60,
    ));
    if limits.max_message_bytes < 3 * 1024 * 1024 {
        errs.push("limits.max_message_bytes: must be at least 3 MiB to carry a submission with its attachments".into());
    }
    if errs.is_empty() {
        Ok(Config {
            listen,
            data_dir,
            tls,
            limits,
            store,
            audit_checkpoint_interval,
            tls_reload_check,
        })
    } else {
        Err(ConfigErrors(errs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_problem_at_once() {
        let text = "listen = \"nowhere\"\n[tls]\nclient_ca = \"missing.pem\"\n[limits]\nmax_connections = 0\n";
        let err = parse(
            text,
            Path::new("/nonexistent"),
            &HashMap::new(),
            &Overrides::default(),
        )
        .unwrap_err();
        let all = err.0.join("\n");
        for expected in [
            "listen:",
            "tls.client_ca:",
            "tls.cert: is required",
            "tls.key: is required",
            "limits.max_connections",
        ] {
            assert!(all.contains(expected), "{expected} missing from {all}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = parse(
            "lisen = \"x\"",
            Path::new("."),
            &HashMap::new(),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.0[0].contains("lisen"), "{err}");
    }

    #[test]
    fn flags_beat_environment_beat_file() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["ca.pem", "s.pem", "k.pem"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        let text = "listen = \"127.0.0.1:1\"\n[tls]\nclient_ca = \"ca.pem\"\ncert = \"s.pem\"\nkey = \"k.pem\"\n";
        let env = HashMap::from([("CBM_HUB_LISTEN".to_string(), "127.0.0.1:2".to_string())]);
        let c = parse(text, dir.path(), &env, &Overrides::default()).unwrap();
        assert_eq!(c.listen.port(), 2);
        let flags = Overrides {
            listen: Some("127.0.0.1:3".into()),
            data_dir: None,
        };
        assert_eq!(
            parse(text, dir.path(), &env, &flags).unwrap().listen.port(),
            3
        );
        assert_eq!(
            parse(text, dir.path(), &HashMap::new(), &flags)
                .unwrap()
                .data_dir,
            dir.path().join("data")
        );
    }
}
