//! Instants and dates in the textual forms of the contract (RFC 3339 UTC, ISO 8601 dates).
use time::{
    Date, OffsetDateTime, UtcOffset, format_description::well_known::Rfc3339,
    macros::format_description,
};

/// Now, as the hub writes it: RFC 3339, UTC, milliseconds ("2026-11-23T22:14:00.123Z").
pub fn now_rfc3339() -> String {
    format_instant(OffsetDateTime::now_utc())
}

pub fn format_instant(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let ms = t.millisecond();
    let base = t
        .replace_nanosecond(0)
        .unwrap_or(t)
        .format(&format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap_or_default();
    format!("{base}.{ms:03}Z")
}

/// Parses an RFC 3339 instant with any offset.
pub fn parse_instant(s: &str) -> Result<OffsetDateTime, String> {
    // RFC 3339 allows any number of fraction digits; an instant is copied into records beside
    // the content that holds it (an acknowledgement keeps its notice's deadline), so its size
    // is bounded like everything else (see `budget`).
    if s.len() > super::budget::INSTANT_BYTES {
        return Err(format!(
            "is {} characters long; an RFC 3339 instant has at most {}",
            s.len(),
            super::budget::INSTANT_BYTES
        ));
    }
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| format!("{s:?} is not an RFC 3339 instant such as 2026-11-23T10:00:00Z"))
}

/// Parses an ISO 8601 calendar date `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<Date, String> {
    Date::parse(s, &format_description!("[year]-[month]-[day]"))
        .map_err(|_| format!("{s:?} is not a date in the form YYYY-MM-DD"))
}
