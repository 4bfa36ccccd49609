//! The server configuration: a pure function from a TOML document, environment variables and
//! command-line overrides to a validated [`Config`], reporting every problem at once.
//!
//! Every option is listed once, in [`options::OPTIONS`] (key, type, range, default, meaning);
//! `examples/cbm-hub.toml` shows them all. Precedence: flags over environment over the file over
//! defaults. An option `a.b` is set in the environment by `CBM_HUB_A_B` (see
//! [`options::env_name`]). Relative paths in the file are relative to the file's directory;
//! from the environment or flags, to the working directory.
mod build;
pub mod options;
mod sources;

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

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

/// How the hub logs (to stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// tracing EnvFilter directives.
    pub filter: String,
    /// JSON lines instead of readable text.
    pub json: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".into(),
            json: false,
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where the plain-HTTP `GET /metrics` endpoint listens; None: no endpoint.
    pub metrics_listen: Option<SocketAddr>,
    /// Where the web portal (HTTPS, client certificates) listens; None: no portal.
    pub web_listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub log: LogConfig,
    pub tls: ServerTlsFiles,
    pub limits: Limits,
    pub store: StoreOptions,
    /// How often the audit log's state is signed as a checkpoint (when it grew).
    pub audit_checkpoint_interval: Duration,
    /// How often aggregated unauthenticated refusals are written to the audit log.
    pub audit_noise_interval: Duration,
    /// How often the TLS files are checked for changes (also reloaded on SIGHUP).
    pub tls_reload_check: Duration,
}

/// Values given on the command line (they beat the environment and the file).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub metrics_listen: Option<String>,
    pub log_filter: Option<String>,
    /// `--log-json` can only turn JSON on.
    pub log_json: bool,
    /// `--set KEY=VALUE`, any option.
    pub set: Vec<String>,
}

impl Overrides {
    /// As (key, value, flag name) triples.
    fn flags(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let mut add = |key: &str, value: String, flag: &str| {
            out.push((key.to_string(), value, flag.to_string()));
        };
        if let Some(v) = &self.listen {
            add("listen", v.clone(), "--listen");
        }
        if let Some(v) = &self.data_dir {
            add("data_dir", v.display().to_string(), "--data-dir");
        }
        if let Some(v) = &self.metrics_listen {
            add("metrics_listen", v.clone(), "--metrics-listen");
        }
        if let Some(v) = &self.log_filter {
            add("log.filter", v.clone(), "--log");
        }
        if self.log_json {
            add("log.json", "true".into(), "--log-json");
        }
        for kv in &self.set {
            match kv.split_once('=') {
                Some((k, v)) => add(k.trim(), v.to_string(), "--set"),
                // An empty key is unknown: reported with the others.
                None => add(kv, String::new(), "--set (expected KEY=VALUE)"),
            }
        }
        out
    }
}

/// Every problem of a configuration.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigErrors(pub Vec<String>);

/// The result of checking a configuration: the configuration or every problem, and warnings.
#[derive(Debug)]
pub struct Checked {
    pub config: Result<Config, ConfigErrors>,
    /// Not errors: CBM_HUB_ variables that set no option (another command may read them).
    pub warnings: Vec<String>,
}

/// The CBM_HUB_ variables of the process environment.
pub fn process_env() -> HashMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("CBM_HUB_"))
        .collect()
}

/// Reads and validates the file at `path` with the process environment and `overrides`.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigErrors> {
    let checked = check(path, &process_env(), overrides);
    for w in &checked.warnings {
        tracing::warn!("{w}");
    }
    checked.config
}

/// Reads and validates the file at `path`: every problem, and the warnings.
pub fn check(path: &Path, env: &HashMap<String, String>, overrides: &Overrides) -> Checked {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let base = path.parent().unwrap_or(Path::new("."));
            let base = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base
            };
            check_text(&text, base, env, overrides)
        }
        Err(e) => Checked {
            config: Err(ConfigErrors(vec![format!("{}: {e}", path.display())])),
            warnings: Vec::new(),
        },
    }
}

/// The pure core of [`check`]: `text` is the file, `base` its directory.
pub fn check_text(
    text: &str,
    base: &Path,
    env: &HashMap<String, String>,
    overrides: &Overrides,
) -> Checked {
    let table = match text.parse::<toml::Table>() {
        Ok(t) => t,
        Err(e) => {
            // A syntax error leaves nothing to check further.
            return Checked {
                config: Err(ConfigErrors(vec![format!(
                    "config file: {}",
                    e.to_string().trim_end()
                )])),
                warnings: Vec::new(),
            };
        }
    };
    let gathered = sources::gather(Some(&table), env, &overrides.flags());
    Checked {
        config: build::build(&gathered, base).map_err(ConfigErrors),
        warnings: gathered.warnings,
    }
}

/// [`check_text`] without the warnings.
pub fn parse(
    text: &str,
    base: &Path,
    env: &HashMap<String, String>,
    overrides: &Overrides,
) -> Result<Config, ConfigErrors> {
    check_text(text, base, env, overrides).config
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
            ..Default::default()
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

    /// A directory with the three TLS files (contents are not read by the parser).
    fn tls_dir() -> (tempfile::TempDir, &'static str) {
        let dir = tempfile::tempdir().unwrap();
        for f in ["ca.pem", "s.pem", "k.pem", "crl.pem"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        (
            dir,
            "[tls]\nclient_ca = \"ca.pem\"\ncert = \"s.pem\"\nkey = \"k.pem\"\n",
        )
    }

    #[test]
    fn the_table_defaults_are_the_code_defaults() {
        let (dir, text) = tls_dir();
        let c = parse(text, dir.path(), &HashMap::new(), &Overrides::default()).unwrap();
        assert_eq!(c.limits, Limits::default());
        assert_eq!(
            format!("{:?}", c.store),
            format!("{:?}", StoreOptions::default())
        );
        assert_eq!(c.log, LogConfig::default());
        assert_eq!(c.listen, "127.0.0.1:50051".parse().unwrap());
        assert_eq!(c.metrics_listen, None);
        assert_eq!(c.data_dir, dir.path().join("data"));
        assert_eq!(c.audit_checkpoint_interval, Duration::from_secs(60));
        assert_eq!(c.tls_reload_check, Duration::from_secs(5));
    }

    #[test]
    fn every_option_is_set_by_its_environment_variable_and_flags_win() {
        let (dir, text) = tls_dir();
        let env: HashMap<String, String> = [
            ("CBM_HUB_LIMITS_MAX_CONNECTIONS", "7"),
            ("CBM_HUB_STORE_FSYNC", "false"),
            ("CBM_HUB_TLS_CRLS", "crl.pem, crl.pem"),
            ("CBM_HUB_METRICS_LISTEN", "127.0.0.1:9464"),
            ("CBM_HUB_LOG_JSON", "1"),
            ("CBM_HUB_AUDIT_CHECKPOINT_INTERVAL_S", "9"),
            ("CBM_HUB_SOMETHING_ELSE", "x"),
            ("CBM_HUB_HOME", "/elsewhere"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // Relative paths from the environment are relative to the working directory.
        let env_dir = dir.path().display().to_string();
        let mut env = env;
        env.insert("CBM_HUB_TLS_CRLS".into(), format!("{env_dir}/crl.pem"));
        let checked = check_text(text, dir.path(), &env, &Overrides::default());
        let c = checked.config.unwrap();
        assert_eq!(c.limits.max_connections, 7);
        assert!(!c.store.fsync);
        assert_eq!(c.tls.crls, vec![dir.path().join("crl.pem")]);
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert!(c.log.json);
        assert_eq!(c.audit_checkpoint_interval, Duration::from_secs(9));
        assert_eq!(checked.warnings.len(), 1, "{:?}", checked.warnings);
        assert!(checked.warnings[0].contains("CBM_HUB_SOMETHING_ELSE"));

        let flags = Overrides {
            metrics_listen: Some(String::new()),
            set: vec!["limits.max_connections=8".into()],
            ..Default::default()
        };
        let c = parse(text, dir.path(), &env, &flags).unwrap();
        assert_eq!(c.limits.max_connections, 8);
        assert_eq!(c.metrics_listen, None);
    }

    #[test]
    fn problems_from_every_source_are_named_by_key_and_origin() {
        let (dir, text) = tls_dir();
        let env = HashMap::from([
            ("CBM_HUB_STORE_CACHE_MB".to_string(), "lots".to_string()),
            ("CBM_HUB_LISTEN".to_string(), "localhost".to_string()),
        ]);
        let flags = Overrides {
            set: vec![
                "limits.max_conections=3".into(),
                "store.live_buffer=0".into(),
            ],
            ..Default::default()
        };
        let text = format!("{text}[store]\nfsync = \"yes\"\n");
        let err = parse(&text, dir.path(), &env, &flags).unwrap_err();
        let all = err.0.join("\n");
        for expected in [
            "store.cache_mb (from CBM_HUB_STORE_CACHE_MB): expected an integer",
            "listen (from CBM_HUB_LISTEN): \"localhost\" is not an address",
            "--set limits.max_conections: unknown key (did you mean `limits.max_connections`?)",
            "store.live_buffer (from --set): must be between 1 and 1000000, not 0",
            "store.fsync: expected true or false, found string",
        ] {
            assert!(all.contains(expected), "{expected} missing from\n{all}");
        }
        assert_eq!(err.0.len(), 5, "{all}");
    }
}
