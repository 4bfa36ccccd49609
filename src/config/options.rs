//! Every configuration option: its key in the TOML file, its type and range, its default and
//! what it means. The parser, the environment mapping, `cbm-hub config check` and the test that
//! keeps `examples/cbm-hub.toml` in sync all read this one table.

/// What values an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// A socket address such as 127.0.0.1:50051.
    Addr,
    /// A socket address, or "" for off.
    OptAddr,
    /// A directory (created if missing); its nearest existing ancestor must be a directory.
    Dir,
    /// A file that must exist and be readable.
    File,
    /// A list of such files (in the environment: separated by commas).
    FileList,
    Bool,
    /// An integer in `min..=max`.
    Int {
        min: u64,
        max: u64,
    },
    /// A tracing filter ("info", "cbm_hub=debug,warn").
    LogFilter,
}

/// One option.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// Dotted key path in the file: "limits.max_connections".
    pub key: &'static str,
    pub ty: Ty,
    /// The default as a TOML value; None when the option is required.
    pub default: Option<&'static str>,
    /// What it means, one line.
    pub doc: &'static str,
}

const fn int(min: u64, max: u64) -> Ty {
    Ty::Int { min, max }
}

const MIB: u64 = 1024 * 1024;

/// The options, in the order of the example file.
#[rustfmt::skip]
pub const OPTIONS: &[Opt] = &[
    Opt { key: "listen", ty: Ty::Addr, default: Some("\"127.0.0.1:50051\""), doc: "Address the gRPC server listens on (port 0: any free port)." },
    Opt { key: "data_dir", ty: Ty::Dir, default: Some("\"data\""), doc: "Data directory, created if missing." },
    Opt { key: "metrics_listen", ty: Ty::OptAddr, default: Some("\"\""), doc: "Plain-HTTP address serving GET /metrics (Prometheus text format); empty: off." },
    Opt { key: "web.listen", ty: Ty::OptAddr, default: Some("\"\""), doc: "HTTPS address of the read-only web portal (same client certificates as gRPC); empty: off." },
    Opt { key: "log.filter", ty: Ty::LogFilter, default: Some("\"info\""), doc: "Log filter (tracing EnvFilter syntax), such as \"info\" or \"cbm_hub=debug,warn\"." },
    Opt { key: "log.json", ty: Ty::Bool, default: Some("false"), doc: "Write logs as JSON lines instead of readable text." },
    Opt { key: "tls.client_ca", ty: Ty::File, default: None, doc: "CA bundle (PEM) client certificates must chain to." },
    Opt { key: "tls.cert", ty: Ty::File, default: None, doc: "The hub's certificate chain (PEM)." },
    Opt { key: "tls.key", ty: Ty::File, default: None, doc: "The hub's private key (PEM)." },
    Opt { key: "tls.crls", ty: Ty::FileList, default: Some("[]"), doc: "CRL files (PEM or DER) checked for every certificate of a client chain. When set, every CA of client_ca needs its current CRL; an unreadable, empty, truncated or expired file is an error (at reload: the previous CRLs stay)." },
    Opt { key: "tls.reload_check_s", ty: int(1, 86_400), default: Some("5"), doc: "Seconds between checks of the TLS files for changes (also reloaded on SIGHUP)." },
    Opt { key: "limits.max_connections", ty: int(1, 1_000_000), default: Some("4096"), doc: "Open connections at most, TLS handshakes included." },
    Opt { key: "limits.max_concurrent_streams", ty: int(1, 100_000), default: Some("256"), doc: "HTTP/2 streams at once per connection." },
    Opt { key: "limits.max_message_bytes", ty: int(3 * MIB, 256 * MIB), default: Some("4194304"), doc: "Largest gRPC message accepted or sent, in bytes (at least 3 MiB: a submission with attachments). A submission's content may be this less the largest envelope around it, 41,465 bytes (room for an author signature included)." },
    Opt { key: "limits.handshake_timeout_ms", ty: int(100, 600_000), default: Some("10000"), doc: "Milliseconds allowed for a TLS handshake." },
    Opt { key: "limits.keepalive_interval_s", ty: int(1, 86_400), default: Some("30"), doc: "Seconds between HTTP/2 pings to idle clients." },
    Opt { key: "limits.keepalive_timeout_s", ty: int(1, 3_600), default: Some("20"), doc: "Seconds an unanswered ping waits before the connection is closed." },
    Opt { key: "limits.max_local_error_reset_streams", ty: int(1, 1_000_000), default: Some("256"), doc: "Streams the server may reset for errors on one connection before closing it." },
    Opt { key: "limits.max_pending_accept_reset_streams", ty: int(1, 1_000_000), default: Some("64"), doc: "Client-reset streams pending accept before the connection is closed (rapid reset)." },
    Opt { key: "limits.max_header_list_bytes", ty: int(1024, MIB), default: Some("16384"), doc: "Largest request header list, in bytes." },
    Opt { key: "limits.request_timeout_s", ty: int(1, 3_600), default: Some("60"), doc: "Seconds a unary request may take before it fails DEADLINE_EXCEEDED." },
    Opt { key: "limits.member_requests_per_second", ty: int(1, 1_000_000), default: Some("5000"), doc: "Sustained requests per second per member (then RESOURCE_EXHAUSTED)." },
    Opt { key: "limits.member_request_burst", ty: int(1, 10_000_000), default: Some("10000"), doc: "Requests a member may make at once above the sustained rate." },
    Opt { key: "limits.max_subscriptions_per_member", ty: int(1, 100_000), default: Some("64"), doc: "Open feed subscriptions per member at most." },
    Opt { key: "store.cache_mb", ty: int(1, MIB), default: Some("128"), doc: "sled page cache, in MiB. sled's own bookkeeping comes on top and grows with the data (see the README)." },
    Opt { key: "store.fsync", ty: Ty::Bool, default: Some("true"), doc: "fsync the data file and the blob files sled wrote in every group commit (survives power loss, not only crashes)." },
    Opt { key: "store.live_buffer", ty: int(1, 1_000_000), default: Some("4096"), doc: "Live events kept for slow subscribers; those further behind read storage. An event over 32 MiB divided by this (at least 1 KiB) is read from storage too." },
    Opt { key: "store.compression_level", ty: int(0, 22), default: Some("0"), doc: "zstd level a new data directory is compressed with (0: none). About half the bytes on disk, at a large cost in publish throughput; an existing directory keeps what it was created with." },
    Opt { key: "store.check_on_start", ty: Ty::Bool, default: Some("true"), doc: "Check the store at start (what changed since the last clean stop or check; everything when there is no valid mark) and refuse to serve damaged data; then check everything in the background and report damage in health `integrity`, metrics and the log." },
    Opt { key: "store.background_check_mb_per_s", ty: int(0, MIB), default: Some("32"), doc: "MiB per second the background integrity check reads at most (0: no bound)." },
    Opt { key: "store.background_check_interval_s", ty: int(1, 86_400), default: Some("60"), doc: "Seconds between the background check's passes over what was written since its last pass (each clean pass moves the mark a start after a crash checks from)." },
    Opt { key: "store.min_free_mb", ty: int(0, MIB), default: Some("256"), doc: "MiB the disk holding the data must keep free: below, publishes, revisions, acknowledgements and framework additions are refused (RESOURCE_EXHAUSTED) and health `storage` is NOT_SERVING; 0 turns the watch off." },
    Opt { key: "audit.checkpoint_interval_s", ty: int(1, 86_400), default: Some("60"), doc: "Seconds between signed checkpoints of the audit log (when it grew)." },
    Opt { key: "audit.noise_interval_s", ty: int(1, 3_600), default: Some("60"), doc: "Seconds over which unauthenticated refusals (failed handshakes, unbound certificates) are counted per source, certificate and action before one entry with the count is written." },
    Opt { key: "audit.noise_entries_per_minute", ty: int(2, 100_000), default: Some("60"), doc: "Audit entries a minute at most for unauthenticated refusals; sources beyond fold into one overflow entry." },
];

/// The environment variable that sets `key`: CBM_HUB_ then the key path in capitals, dots
/// and all joined with `_` ("limits.max_connections" -> CBM_HUB_LIMITS_MAX_CONNECTIONS).
pub fn env_name(key: &str) -> String {
    format!("CBM_HUB_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// CBM_HUB_ variables that are not options: read by the command line itself.
pub const NOT_OPTIONS: &[&str] = &["CBM_HUB_HOME", "CBM_HUB_CONFIG", "CBM_HUB_LOG"];

/// The option named `key`.
pub fn find(key: &str) -> Option<&'static Opt> {
    OPTIONS.iter().find(|o| o.key == key)
}

/// Whether `prefix` is a table of options ("limits").
pub fn is_table(prefix: &str) -> bool {
    OPTIONS.iter().any(|o| {
        o.key
            .strip_prefix(prefix)
            .is_some_and(|r| r.starts_with('.'))
    })
}

/// The known key closest to a misspelt one, when close enough to be a likely typo.
pub fn suggest(key: &str) -> Option<&'static str> {
    OPTIONS
        .iter()
        .map(|o| (distance(key, o.key), o.key))
        .filter(|(d, k)| *d <= 2.max(k.len() / 5))
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names_are_distinct_and_not_reserved() {
        let mut names: Vec<String> = OPTIONS.iter().map(|o| env_name(o.key)).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before);
        for n in &names {
            assert!(!NOT_OPTIONS.contains(&n.as_str()), "{n}");
        }
        assert_eq!(
            env_name("limits.max_connections"),
            "CBM_HUB_LIMITS_MAX_CONNECTIONS"
        );
    }

    #[test]
    fn defaults_are_in_range() {
        for o in OPTIONS {
            if let (Ty::Int { min, max }, Some(d)) = (o.ty, o.default) {
                let v: u64 = d.parse().unwrap();
                assert!((min..=max).contains(&v), "{}", o.key);
            }
        }
    }

    #[test]
    fn typos_get_a_suggestion() {
        assert_eq!(suggest("lisen"), Some("listen"));
        assert_eq!(
            suggest("limits.max_conections"),
            Some("limits.max_connections")
        );
        assert_eq!(suggest("completely.different"), None);
    }
}
