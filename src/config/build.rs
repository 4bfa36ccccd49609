//! From gathered values to a [`Config`]: ranges, addresses, files and directories checked,
//! every problem collected.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use super::{
    Config, Limits, LogConfig,
    options::{self, Ty},
    sources::{Gathered, Given, Origin, label},
};
use crate::{store::StoreOptions, tls::ServerTlsFiles};

/// Reads values of `g` by key, noting problems; `base` is the file's directory.
struct Reader<'a> {
    g: &'a Gathered,
    base: &'a Path,
    errors: Vec<String>,
}

impl Reader<'_> {
    fn given(&mut self, key: &'static str) -> Option<&Given> {
        let given = self.g.values.get(key);
        if given.is_none() {
            self.errors.push(format!("{key}: is required"));
        }
        given
    }

    fn int(&mut self, key: &'static str) -> u64 {
        let (min, max) = match options::find(key).map(|o| o.ty) {
            Some(Ty::Int { min, max }) => (min, max),
            _ => unreachable!("{key} is not an integer option"),
        };
        let Some(given) = self.given(key) else {
            return min;
        };
        let n = given.value.as_integer().unwrap_or_default();
        match u64::try_from(n) {
            Ok(v) if (min..=max).contains(&v) => v,
            _ => {
                let l = label(key, &given.origin);
                self.errors
                    .push(format!("{l}: must be between {min} and {max}, not {n}"));
                min
            }
        }
    }

    fn bool(&mut self, key: &'static str) -> bool {
        self.given(key)
            .and_then(|g| g.value.as_bool())
            .unwrap_or_default()
    }

    fn string(&mut self, key: &'static str) -> (String, Origin) {
        match self.given(key) {
            Some(g) => (
                g.value.as_str().unwrap_or_default().to_string(),
                g.origin.clone(),
            ),
            None => (String::new(), Origin::Default),
        }
    }

    /// A path: relative paths from the file (or the defaults) are relative to its directory;
    /// from the environment or a flag, to the working directory.
    fn path(&self, text: &str, origin: &Origin) -> PathBuf {
        let p = PathBuf::from(text);
        match origin {
            Origin::File | Origin::Default if p.is_relative() => self.base.join(p),
            _ => p,
        }
    }

    fn addr(&mut self, key: &'static str, optional: bool) -> Option<SocketAddr> {
        let (text, origin) = self.string(key);
        if optional && text.is_empty() {
            return None;
        }
        match text.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                let l = label(key, &origin);
                self.errors.push(format!(
                    "{l}: {text:?} is not an address such as 127.0.0.1:50051 or [::1]:50051"
                ));
                None
            }
        }
    }

    fn file(&mut self, key: &'static str) -> PathBuf {
        let Some(given) = self.g.values.get(key) else {
            self.errors.push(format!("{key}: is required"));
            return PathBuf::new();
        };
        let (text, origin) = (
            given.value.as_str().unwrap_or_default().to_string(),
            given.origin.clone(),
        );
        let p = self.path(&text, &origin);
        if let Err(why) = readable_file(&p) {
            self.errors
                .push(format!("{}: {} {why}", label(key, &origin), p.display()));
        }
        p
    }

    fn files(&mut self, key: &'static str) -> Vec<PathBuf> {
        let Some(given) = self.g.values.get(key).cloned() else {
            return Vec::new();
        };
        let items = given.value.as_array().cloned().unwrap_or_default();
        let mut out = Vec::new();
        for item in items {
            let p = self.path(item.as_str().unwrap_or_default(), &given.origin);
            if let Err(why) = readable_file(&p) {
                self.errors.push(format!(
                    "{}: {} {why}",
                    label(key, &given.origin),
                    p.display()
                ));
            }
            out.push(p);
        }
        out
    }

    fn dir(&mut self, key: &'static str) -> PathBuf {
        let (text, origin) = self.string(key);
        let p = self.path(&text, &origin);
        if text.is_empty() {
            self.errors
                .push(format!("{}: must not be empty", label(key, &origin)));
        } else if let Err(why) = usable_dir(&p) {
            self.errors
                .push(format!("{}: {} {why}", label(key, &origin), p.display()));
        }
        p
    }

    fn log_filter(&mut self, key: &'static str) -> String {
        let (text, origin) = self.string(key);
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&text) {
            self.errors.push(format!(
                "{}: {text:?} is not a log filter: {e}",
                label(key, &origin)
            ));
        }
        text
    }
}

/// Ok when `p` is a file this process can open.
fn readable_file(p: &Path) -> Result<(), String> {
    match std::fs::metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("does not exist".into()),
        Err(e) => Err(format!("cannot be read: {e}")),
        Ok(m) if !m.is_file() => Err("is not a file".into()),
        Ok(_) => std::fs::File::open(p)
            .map(|_| ())
            .map_err(|e| format!("cannot be read: {e}")),
    }
}

/// Ok when `p` is a writable directory, or could be created (its nearest existing ancestor is
/// a writable directory).
fn usable_dir(p: &Path) -> Result<(), String> {
    let mut at = p;
    loop {
        match std::fs::metadata(at) {
            Ok(m) if !m.is_dir() && at == p => return Err("is not a directory".into()),
            Ok(m) if !m.is_dir() => {
                return Err(format!(
                    "cannot be created: {} is not a directory",
                    at.display()
                ));
            }
            Ok(m) if m.permissions().readonly() => {
                return Err(format!("cannot be written: {} is read-only", at.display()));
            }
            Ok(_) => return Ok(()),
            // Not found, or a file on the way (ENOTDIR): look further up.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                match at.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => at = parent,
                    // A relative path whose first component is missing: created in the
                    // working directory.
                    _ => return Ok(()),
                }
            }
            Err(e) => return Err(format!("cannot be read: {e}")),
        }
    }
}

/// Builds the configuration; Err lists every problem (the gathering's included).
pub fn build(g: &Gathered, base: &Path) -> Result<Config, Vec<String>> {
    let mut r = Reader {
        g,
        base,
        errors: g.errors.clone(),
    };
    let listen = r.addr("listen", false);
    let metrics_listen = r.addr("metrics_listen", true);
    let web_listen = r.addr("web.listen", true);
    let data_dir = r.dir("data_dir");
    let log = LogConfig {
        filter: r.log_filter("log.filter"),
        json: r.bool("log.json"),
    };
    let tls = ServerTlsFiles {
        client_ca: r.file("tls.client_ca"),
        cert: r.file("tls.cert"),
        key: r.file("tls.key"),
        crls: r.files("tls.crls"),
    };
    let tls_reload_check = Duration::from_secs(r.int("tls.reload_check_s"));
    // Ranges fit the target types (see the table), so the conversions below cannot truncate.
    let limits = Limits {
        max_connections: r.int("limits.max_connections") as usize,
        max_concurrent_streams: r.int("limits.max_concurrent_streams") as u32,
        max_message_bytes: r.int("limits.max_message_bytes") as usize,
        handshake_timeout: Duration::from_millis(r.int("limits.handshake_timeout_ms")),
        keepalive_interval: Duration::from_secs(r.int("limits.keepalive_interval_s")),
        keepalive_timeout: Duration::from_secs(r.int("limits.keepalive_timeout_s")),
        max_local_error_reset_streams: r.int("limits.max_local_error_reset_streams") as usize,
        max_pending_accept_reset_streams: r.int("limits.max_pending_accept_reset_streams") as usize,
        max_header_list_bytes: r.int("limits.max_header_list_bytes") as u32,
        request_timeout: Duration::from_secs(r.int("limits.request_timeout_s")),
        member_requests_per_second: r.int("limits.member_requests_per_second") as u32,
        member_request_burst: r.int("limits.member_request_burst") as u32,
        max_subscriptions_per_member: r.int("limits.max_subscriptions_per_member") as usize,
    };
    let store = StoreOptions {
        cache_capacity: r.int("store.cache_mb") * 1024 * 1024,
        fsync: r.bool("store.fsync"),
        live_buffer: r.int("store.live_buffer") as usize,
        check_on_start: r.bool("store.check_on_start"),
        background_check: crate::store::BackgroundCheck {
            bytes_per_second: r.int("store.background_check_mb_per_s") * 1024 * 1024,
            interval: Duration::from_secs(r.int("store.background_check_interval_s")),
        },
        min_free_bytes: r.int("store.min_free_mb") * 1024 * 1024,
        noise_entries_per_minute: r.int("audit.noise_entries_per_minute") as u32,
        compression_level: r.int("store.compression_level") as i32,
    };
    let audit_checkpoint_interval = Duration::from_secs(r.int("audit.checkpoint_interval_s"));
    let audit_noise_interval = Duration::from_secs(r.int("audit.noise_interval_s"));
    if let (Some(l), Some(m)) = (listen, metrics_listen)
        && l == m
        && l.port() != 0
    {
        r.errors.push(format!(
            "metrics_listen: {m} is also the gRPC listen address"
        ));
    }
    for (key, other) in [("metrics_listen", metrics_listen), ("listen", listen)] {
        if let (Some(w), Some(o)) = (web_listen, other)
            && w == o
            && w.port() != 0
        {
            r.errors
                .push(format!("web.listen: {w} is also the {key} address"));
        }
    }
    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    Ok(Config {
        listen: listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
        metrics_listen,
        web_listen,
        data_dir,
        log,
        tls,
        limits,
        store,
        audit_checkpoint_interval,
        audit_noise_interval,
        tls_reload_check,
    })
}
