//! Unauthenticated noise: refused TLS handshakes (a bare connect-and-close included) and
//! requests on certificates bound to no member. Anyone who reaches the port can cause these,
//! so one entry each would let them grow the log without bound. They are counted per source
//! (peer IP), certificate fingerprint and action, and written once per interval as one entry
//! with a count; the sources tracked and the entries written per minute are both capped, the
//! rest folding into one overflow entry. Authenticated refusals are not noise: each keeps its
//! own entry.
use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::{Origin, REFUSED, bound};
use crate::{domain::clock, pb::AuditEntry};

/// Action of the entry aggregating refused handshakes.
pub const TLS_HANDSHAKE: &str = "tls.handshake";
/// Action of the entry aggregating requests refused as unauthenticated.
pub const UNAUTHENTICATED: &str = "request.unauthenticated";
/// Distinct causes kept per tally; others count as "other".
const MAX_CAUSES: usize = 8;

/// The cause of a refused handshake, from a fixed vocabulary (the error text comes from the
/// peer's bytes and certificate, so it is not recorded as such).
pub fn handshake_cause(why: &str) -> &'static str {
    let w = why.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|x| w.contains(x));
    if has(&["not completed within"]) {
        "timeout"
    } else if has(&["eof", "connection reset", "broken pipe", "unexpected end"]) {
        "connection_closed"
    } else if has(&["unknownissuer", "unknown issuer"]) {
        "unknown_issuer"
    } else if has(&["revoked"]) {
        "revoked"
    } else if has(&["expired"]) {
        "expired"
    } else if has(&["notvalidyet", "not valid yet", "not valid before"]) {
        "not_yet_valid"
    } else if has(&["no certificates", "nocertificates"]) {
        "no_certificate"
    } else if has(&["purpose", "extendedkeyusage"]) {
        "wrong_purpose"
    } else if has(&["application protocol", "alpn"]) {
        "no_alpn"
    } else if has(&[
        "corrupt",
        "invalid message",
        "inappropriate",
        "content type",
    ]) {
        "not_tls"
    } else if has(&["certificate"]) {
        "bad_certificate"
    } else {
        "handshake_failed"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    action: &'static str,
    ip: Option<IpAddr>,
    cert: String,
}

#[derive(Debug, Clone, Default)]
struct Tally {
    count: u64,
    first: String,
    last: String,
    causes: BTreeMap<String, u64>,
    /// For the overflow tally: sources folded into it.
    sources: u64,
}

impl Tally {
    fn add(&mut self, cause: &str, n: u64, at: &str) {
        if self.count == 0 {
            self.first = at.to_string();
        }
        self.count += n;
        self.last = at.to_string();
        let cause = if self.causes.len() < MAX_CAUSES || self.causes.contains_key(cause) {
            cause
        } else {
            "other"
        };
        *self.causes.entry(cause.to_string()).or_default() += n;
    }

    fn merge(&mut self, other: Tally) {
        if self.count == 0 || other.first < self.first {
            self.first = other.first;
        }
        if other.last > self.last {
            self.last = other.last;
        }
        self.count += other.count;
        self.sources += other.sources.max(1);
        for (cause, n) in other.causes {
            let cause = if self.causes.len() < MAX_CAUSES || self.causes.contains_key(&cause) {
                cause
            } else {
                "other".to_string()
            };
            *self.causes.entry(cause).or_default() += n;
        }
    }

    fn causes(&self) -> String {
        let mut by_count: Vec<_> = self.causes.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        by_count
            .iter()
            .map(|(c, n)| format!("{c} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn top_cause(&self) -> &str {
        self.causes
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map_or("unauthenticated", |(c, _)| c.as_str())
    }
}

struct State {
    tallies: HashMap<Key, Tally>,
    /// Events from sources beyond the tracked ones, or not written within the budget.
    overflow: Option<Tally>,
    window_start: Instant,
    written_in_window: u64,
    noted: u64,
}

/// The aggregator. Cheap to share; every method takes its lock briefly.
pub struct Noise {
    /// Entries written per minute at most, the overflow entry included; also the number of
    /// distinct sources tracked at once.
    per_minute: u64,
    state: Mutex<State>,
}

impl std::fmt::Debug for Noise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Noise(per_minute: {})", self.per_minute)
    }
}

impl Noise {
    /// `per_minute` is at least 2: one source and the overflow.
    pub fn new(per_minute: u32) -> Noise {
        Noise {
            per_minute: u64::from(per_minute.max(2)),
            state: Mutex::new(State {
                tallies: HashMap::new(),
                overflow: None,
                window_start: Instant::now(),
                written_in_window: 0,
                noted: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes one refused event: `action` is [`TLS_HANDSHAKE`] or [`UNAUTHENTICATED`], `cause`
    /// a word from a fixed vocabulary.
    pub fn note(
        &self,
        peer: Option<IpAddr>,
        cert: Option<&str>,
        action: &'static str,
        cause: &str,
    ) {
        let key = Key {
            action,
            ip: peer,
            // A hex digest the hub computed; bounded with the entry's other fields when written.
            cert: cert.unwrap_or_default().chars().take(64).collect(),
        };
        let cause = bound::token(cause);
        let at = clock::now_rfc3339();
        let mut s = self.lock();
        s.noted += 1;
        let tracked = s.tallies.len() as u64;
        match s.tallies.get_mut(&key) {
            Some(t) => t.add(&cause, 1, &at),
            None if tracked < self.per_minute => {
                let mut t = Tally::default();
                t.add(&cause, 1, &at);
                s.tallies.insert(key, t);
            }
            None => {
                let o = s.overflow.get_or_insert_with(Tally::default);
                o.add(&cause, 1, &at);
                o.sources += 1;
            }
        }
    }

    /// Events noted since this aggregator was made.
    pub fn noted(&self) -> u64 {
        self.lock().noted
    }

    /// The entries for what was noted since the last drain, within the per-minute budget.
    /// When the budget of this minute is spent, the tallies wait for the next one.
    pub fn drain(&self, now: Instant) -> Vec<AuditEntry> {
        let mut s = self.lock();
        if now.duration_since(s.window_start) >= Duration::from_secs(60) {
            s.window_start = now;
            s.written_in_window = 0;
        }
        let budget = self.per_minute - s.written_in_window;
        if budget == 0 || (s.tallies.is_empty() && s.overflow.is_none()) {
            return Vec::new();
        }
        let mut keys: Vec<(Key, u64)> = s
            .tallies
            .iter()
            .map(|(k, t)| (k.clone(), t.count))
            .collect();
        // The largest sources get their own entry; ties in a stable order.
        keys.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let fits_all = s.overflow.is_none() && keys.len() as u64 <= budget;
        let own = if fits_all {
            keys.len()
        } else {
            (budget - 1) as usize
        };
        let mut out = Vec::new();
        for (key, _) in keys.iter().take(own) {
            if let Some(t) = s.tallies.remove(key) {
                out.push(entry(key, &t));
            }
        }
        for (key, _) in keys.iter().skip(own) {
            if let Some(t) = s.tallies.remove(key) {
                s.overflow.get_or_insert_with(Tally::default).merge(t);
            }
        }
        if let Some(o) = s.overflow.take() {
            out.push(overflow_entry(&o, self.per_minute));
        }
        s.written_in_window += out.len() as u64;
        out
    }
}

fn entry(key: &Key, t: &Tally) -> AuditEntry {
    let origin = Origin {
        member: String::new(),
        cert_sha256: key.cert.clone(),
        peer: key.ip.map(|ip| ip.to_string()).unwrap_or_default(),
    };
    let mut e = origin.entry(key.action);
    e.outcome = REFUSED.to_string();
    e.reason = bound::reason("unauthenticated", t.top_cause(), []);
    e.count = t.count;
    e.detail = format!(
        "{} refused from {} to {}: {}",
        t.count,
        t.first,
        t.last,
        t.causes()
    );
    e
}

fn overflow_entry(t: &Tally, per_minute: u64) -> AuditEntry {
    let mut e = Origin::default().entry("unauthenticated.overflow");
    e.outcome = REFUSED.to_string();
    e.reason = bound::reason("unauthenticated", t.top_cause(), []);
    e.count = t.count;
    e.detail = format!(
        "{} refused from {} more sources from {} to {}, beyond {per_minute} entries a minute: {}",
        t.count,
        t.sources,
        t.first,
        t.last,
        t.causes()
    );
    e
}

#[cfg(test)]
mod tests;
