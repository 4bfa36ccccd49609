//! Checks of single field values, shared by every kind. Each pushes at most one error naming the
//! field's path and returns whether the value passed.
use crate::domain::{Invalid, clock};

/// A text field that must be present: not blank, at most `max` characters, and on one line
/// unless `multiline`.
pub fn required(errs: &mut Invalid, path: &str, value: &str, max: usize, multiline: bool) -> bool {
    if value.trim().is_empty() {
        errs.push(path, "is required");
        return false;
    }
    optional(errs, path, value, max, multiline)
}

/// A text field that may be empty, else as [`required`].
pub fn optional(errs: &mut Invalid, path: &str, value: &str, max: usize, multiline: bool) -> bool {
    let len = value.chars().count();
    if len > max {
        errs.push(
            path,
            format!("is {len} characters long; at most {max} are allowed"),
        );
        return false;
    }
    let bad = value
        .chars()
        .find(|&c| c.is_control() && !(multiline && (c == '\n' || c == '\t' || c == '\r')));
    if let Some(c) = bad {
        errs.push(
            path,
            format!(
                "contains the control character U+{:04X}{}",
                c as u32,
                if multiline {
                    ""
                } else {
                    " (it must be a single line)"
                }
            ),
        );
        return false;
    }
    if value.trim() != value && !multiline {
        errs.push(path, "has leading or trailing white space");
        return false;
    }
    true
}

/// A list no longer than `max` items.
pub fn count<T>(errs: &mut Invalid, path: &str, items: &[T], min: usize, max: usize) -> bool {
    if items.len() < min {
        errs.push(
            path,
            if min == 1 {
                "needs at least one entry".to_string()
            } else {
                format!("needs at least {min} entries")
            },
        );
        false
    } else if items.len() > max {
        errs.push(
            path,
            format!("has {} entries; at most {max} are allowed", items.len()),
        );
        false
    } else {
        true
    }
}

/// A value from a fixed vocabulary.
pub fn one_of(errs: &mut Invalid, path: &str, value: &str, allowed: &[&str]) -> bool {
    if allowed.contains(&value) {
        return true;
    }
    if value.is_empty() {
        errs.push(
            path,
            format!("is required; use one of {}", allowed.join(", ")),
        );
    } else {
        errs.push(
            path,
            format!(
                "{value:?} is not allowed; use one of {}",
                allowed.join(", ")
            ),
        );
    }
    false
}

/// A BCP 47 language tag in its common form: a 2-3 letter primary language subtag (the IANA
/// registry has no longer ones in use), then subtags of 1-8 letters or digits, at most 35
/// characters in all.
pub fn language(errs: &mut Invalid, path: &str, value: &str) -> bool {
    if is_language_tag(value) {
        return true;
    }
    errs.push(
        path,
        if value.is_empty() {
            "is required (a BCP 47 language tag such as en, es-419 or fr-CA)".to_string()
        } else {
            format!("{value:?} is not a BCP 47 language tag such as en, es-419 or fr-CA")
        },
    );
    false
}

pub fn is_language_tag(value: &str) -> bool {
    if value.is_empty() || value.len() > 35 {
        return false;
    }
    let mut parts = value.split('-');
    let primary = parts.next().unwrap_or_default();
    let primary_ok =
        matches!(primary.len(), 2..=3) && primary.chars().all(|c| c.is_ascii_alphabetic());
    primary_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// A calendar date; with `not_future`, not after `today`.
pub fn date(errs: &mut Invalid, path: &str, value: &str, today: Option<time::Date>) -> bool {
    match clock::parse_date(value) {
        Ok(d) => {
            if let Some(today) = today
                && d > today
            {
                errs.push(path, format!("{value} is in the future"));
                return false;
            }
            true
        }
        Err(e) => {
            errs.push(path, e);
            false
        }
    }
}

/// An `https://` URL with a host.
pub fn https_url(errs: &mut Invalid, path: &str, value: &str) -> bool {
    let host = value
        .strip_prefix("https://")
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    let ok = value.len() <= 2048
        && host.is_some_and(|h| !h.is_empty() && h.contains('.') || h.starts_with("localhost"))
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        errs.push(
            path,
            format!("{value:?} is not an https:// URL with a host"),
        );
    }
    ok
}

/// An e-mail address of the form local@domain.tld.
pub fn email(errs: &mut Invalid, path: &str, value: &str) -> bool {
    let ok = value.len() <= 254
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        })
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        errs.push(path, format!("{value:?} is not an e-mail address"));
    }
    ok
}

/// An international phone number: '+' and 7 to 15 digits, spaces allowed between groups.
pub fn phone(errs: &mut Invalid, path: &str, value: &str) -> bool {
    let digits: String = value.chars().filter(|c| *c != ' ').collect();
    let ok = digits.starts_with('+')
        && (8..=16).contains(&digits.len())
        && digits[1..].chars().all(|c| c.is_ascii_digit());
    if !ok {
        errs.push(
            path,
            format!("{value:?} is not an international phone number such as +372 600 0000"),
        );
    }
    ok
}

/// An IANA time zone name ("Europe/Tallinn") or "UTC", optionally with an offset ("UTC+02:00").
pub fn time_zone(errs: &mut Invalid, path: &str, value: &str) -> bool {
    // Matched as bytes: slicing the text by byte offsets would panic inside a multi-byte
    // character ("UTC+0é00").
    let utc_offset = value
        .strip_prefix("UTC")
        .is_some_and(|rest| match rest.as_bytes() {
            [] => true,
            [b'+' | b'-', h1, h2, b':', m1, m2] => {
                [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
            }
            _ => false,
        });
    let iana = value.len() <= 64
        && value.contains('/')
        && value.split('/').all(|p| {
            !p.is_empty()
                && p.starts_with(|c: char| c.is_ascii_uppercase())
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        });
    if !(utc_offset || iana) {
        errs.push(
            path,
            format!("{value:?} is not an IANA time zone such as Europe/Tallinn, or UTC"),
        );
        return false;
    }
    true
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(errs: &mut Invalid, path: &str, value: &str) -> bool {
    let ok = value.len() == 64
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    if !ok {
        errs.push(path, "must be 64 lowercase hex digits (SHA-256)");
    }
    ok
}

/// Reports the first duplicate of a list under a normalising key.
pub fn unique<'a, K: Eq + std::hash::Hash>(
    errs: &mut Invalid,
    path: &str,
    items: impl IntoIterator<Item = &'a str>,
    key: impl Fn(&str) -> K,
) -> bool {
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.into_iter().enumerate() {
        if !seen.insert(key(item)) {
            errs.push(
                format!("{path}[{i}]"),
                format!("{item:?} appears more than once"),
            );
            return false;
        }
    }
    true
}

/// Parses every item of a list, naming each failure `field[i]`; returns the parsed items.
pub fn parse_each<T>(
    errs: &mut Invalid,
    field: &str,
    items: &[String],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Vec<T> {
    let mut out = Vec::new();
    for (i, s) in items.iter().enumerate() {
        match parse(s) {
            Ok(v) => out.push(v),
            Err(e) => errs.push(format!("{field}[{i}]"), e),
        }
    }
    out
}
