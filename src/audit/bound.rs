//! Bounds on what enters the audit log: anyone who reaches the hub decides some of an entry's
//! fields (the id asked for, a filter, the text of a refusal), so no field is taken as given.
//!
//! - Ids are kept when they are in an id format (a member, framework or reference code, or a
//!   UUID); anything else is recorded as a marker with its length and SHA-256, so an auditor
//!   can still match it against what a client sent, but cannot be flooded or misled by it.
//! - Reasons are built from a fixed vocabulary (a code and a cause) plus field names; free
//!   text (details) is cut to a bound with control characters replaced.
//! - An entry never exceeds [`MAX_ENTRY_BYTES`] encoded: lists of ids or delivered ranges that
//!   would go beyond it continue in further entries ("part 2 of 3"), so nothing is lost and
//!   every entry fits in any page Audit.Query and Audit.Export deliver.
use prost::Message;
use sha2::{Digest, Sha256};

use crate::{domain::member::check_member_id, pb::AuditEntry};

/// The peer of entries made by a command on the hub's machine (`init`), not over the network.
pub const LOCAL_PEER: &str = "local";

/// Largest encoded audit entry, sequence, time and chain hash included.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;
/// Room kept for what the writer adds when it seals an entry (sequence, time, chain hash).
const SEAL_BYTES: usize = 96;
const MAX_REASON: usize = 512;
const MAX_DETAIL: usize = 1024;
/// Short values (filters, field names) longer than this become markers.
const MAX_TOKEN: usize = 64;
const MAX_FIELDS: usize = 16;

/// Is `s` an id the hub issues or accepts: a member, framework or reference code, or a UUID?
pub fn is_id(s: &str) -> bool {
    check_member_id(s).is_ok() || (s.len() == 36 && uuid::Uuid::try_parse(s).is_ok())
}

/// What an entry records for a value that is not in its expected format.
pub fn marker(what: &str, s: &str) -> String {
    format!(
        "invalid {what}, {} bytes, sha256:{}",
        s.len(),
        hex::encode(Sha256::digest(s.as_bytes()))
    )
}

/// An id as recorded: itself if empty or in an id format, else a marker.
pub fn id(s: &str) -> String {
    if s.is_empty() || is_id(s) {
        s.to_string()
    } else {
        marker("id", s)
    }
}

/// A short value from a request (a filter value, a label) as recorded: itself if it is a plain
/// token of letters, digits and `:+._-`, else a marker.
pub fn token(s: &str) -> String {
    let plain = !s.is_empty()
        && s.len() <= MAX_TOKEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ":+._-".contains(c));
    if plain {
        s.to_string()
    } else {
        marker("value", s)
    }
}

/// Free text cut to `max` bytes (on a character boundary), control characters replaced.
pub fn text(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.len() <= max {
        return clean;
    }
    let mut end = max;
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &clean[..end], s.len())
}

/// A refusal's reason: a code, a cause from a fixed vocabulary (omitted when it only repeats
/// the code), and the names of the fields at fault. Field names are taken only when they look
/// like field paths (`content.body.notice.subject`, `recipients[2]`).
pub fn reason<'a>(code: &str, cause: &str, fields: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = token(code);
    if cause != code {
        out.push_str(": ");
        out.push_str(&token(cause));
    }
    let path = |f: &&str| {
        !f.is_empty()
            && f.len() <= MAX_TOKEN
            && f.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._[]".contains(c))
    };
    let fields: Vec<&str> = fields.into_iter().filter(path).collect();
    if !fields.is_empty() {
        let shown = fields[..fields.len().min(MAX_FIELDS)].join(", ");
        out.push_str(&format!(" ({shown}"));
        if fields.len() > MAX_FIELDS {
            out.push_str(&format!(" and {} more", fields.len() - MAX_FIELDS));
        }
        out.push(')');
    }
    out
}

/// Bounds every field a request can influence. Applied once to each entry, where it is
/// built (markers are not idempotent: bounding a marker again would hash it).
pub fn fields(mut e: AuditEntry) -> AuditEntry {
    e.member = id(&e.member);
    if !(e.cert_sha256.is_empty()
        || (e.cert_sha256.len() == 64
            && e.cert_sha256
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))))
    {
        e.cert_sha256 = marker("fingerprint", &e.cert_sha256);
    }
    // "hub": the hub on its own; "local": a command run on the hub's machine against its data
    // directory (`init` registering the first members); else the client's address.
    let peer_ok = e.peer.is_empty()
        || e.peer == "hub"
        || e.peer == LOCAL_PEER
        || e.peer.parse::<std::net::SocketAddr>().is_ok()
        || e.peer.parse::<std::net::IpAddr>().is_ok();
    if !peer_ok {
        e.peer = marker("peer", &e.peer);
    }
    let action_ok = !e.action.is_empty()
        && e.action.len() <= MAX_TOKEN
        && e.action
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_');
    if !action_ok {
        e.action = marker("action", &e.action);
    }
    e.object_id = id(&e.object_id);
    for o in &mut e.object_ids {
        if !is_id(o) {
            *o = id(o);
        }
    }
    if !e.label.is_empty() {
        e.label = token(&e.label);
    }
    if ![super::ALLOWED, super::REFUSED].contains(&e.outcome.as_str()) {
        e.outcome = marker("outcome", &e.outcome);
    }
    e.reason = text(&e.reason, MAX_REASON);
    e.detail = text(&e.detail, MAX_DETAIL);
    e
}

/// Splits an entry whose lists make it larger than [`MAX_ENTRY_BYTES`] into parts that each
/// fit, the lists continuing from part to part. Other fields must already be bounded.
pub fn split(e: AuditEntry) -> Vec<AuditEntry> {
    if e.encoded_len() + SEAL_BYTES <= MAX_ENTRY_BYTES {
        return vec![e];
    }
    let mut base = e.clone();
    base.object_ids.clear();
    base.delivered_ranges.clear();
    // Room for the lists, with margin for the part note and the packed field's length.
    let room = MAX_ENTRY_BYTES - SEAL_BYTES - base.encoded_len() - 64;
    let mut parts: Vec<AuditEntry> = Vec::new();
    let mut part = base.clone();
    let mut used = 0;
    let mut push = |part: &mut AuditEntry, used: &mut usize, cost: usize| {
        if *used + cost > room {
            parts.push(std::mem::replace(part, base.clone()));
            *used = 0;
        }
        *used += cost;
    };
    for o in e.object_ids {
        push(&mut part, &mut used, o.len() + 3);
        part.object_ids.push(o);
    }
    for pair in e.delivered_ranges.chunks(2) {
        push(&mut part, &mut used, 20);
        part.delivered_ranges.extend_from_slice(pair);
    }
    parts.push(part);
    let n = parts.len();
    for (i, p) in parts.iter_mut().enumerate() {
        if n > 1 {
            let note = format!(" (part {} of {n})", i + 1);
            p.detail = format!("{}{note}", p.detail);
        }
    }
    parts
}

/// Both: an entry built from a request, as it may enter the log.
pub fn entry(e: AuditEntry) -> Vec<AuditEntry> {
    split(fields(e))
}

#[cfg(test)]
mod tests;
