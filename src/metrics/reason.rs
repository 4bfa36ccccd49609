//! Refusals by reason: a gRPC code and a short reason from a fixed list.
//!
//! The reason is read from the status message the hub wrote (the same text the client and the
//! audit log see), so no handler carries metrics code. Messages this table does not know fall
//! back to the code's own name: the label set stays bounded whatever the message says.
use tonic::Code;

/// Codes that mean "the hub refused this request" (rather than "the hub failed").
pub fn is_refusal(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::ResourceExhausted
            | Code::FailedPrecondition
            | Code::Aborted
            | Code::OutOfRange
            | Code::Unauthenticated
    )
}

/// The snake-case name of a code, as a label value.
pub fn code_label(code: Code) -> &'static str {
    use Code::*;
    match code {
        Ok => "ok",
        Cancelled => "cancelled",
        Unknown => "unknown",
        InvalidArgument => "invalid_argument",
        DeadlineExceeded => "deadline_exceeded",
        NotFound => "not_found",
        AlreadyExists => "already_exists",
        PermissionDenied => "permission_denied",
        ResourceExhausted => "resource_exhausted",
        FailedPrecondition => "failed_precondition",
        Aborted => "aborted",
        OutOfRange => "out_of_range",
        Unimplemented => "unimplemented",
        Internal => "internal",
        Unavailable => "unavailable",
        DataLoss => "data_loss",
        Unauthenticated => "unauthenticated",
    }
}

/// (code, words in the message, reason). First match wins.
const REASONS: &[(Code, &str, &str)] = &[
    (
        Code::Unauthenticated,
        "no verified client certificate",
        "no_certificate",
    ),
    (Code::Unauthenticated, "could not be read", "no_certificate"),
    (
        Code::Unauthenticated,
        "no longer accepted",
        "certificate_no_longer_accepted",
    ),
    (
        Code::Unauthenticated,
        "not bound to any member",
        "certificate_unbound",
    ),
    (
        Code::Unauthenticated,
        "no longer bound",
        "certificate_unbound",
    ),
    (
        Code::Unauthenticated,
        "bindings of two members",
        "certificate_ambiguous",
    ),
    (Code::Unauthenticated, "member removed", "member_removed"),
    (Code::PermissionDenied, "suspended", "member_suspended"),
    (Code::PermissionDenied, "role", "missing_role"),
    (
        Code::PermissionDenied,
        "only its publisher",
        "not_publisher",
    ),
    (Code::ResourceExhausted, "request quota", "request_quota"),
    (
        Code::ResourceExhausted,
        "open subscriptions",
        "subscription_cap",
    ),
    (
        Code::ResourceExhausted,
        "message length too large",
        "message_too_large",
    ),
    (Code::ResourceExhausted, "too large", "message_too_large"),
    (Code::ResourceExhausted, "store.min_free_mb", "disk_low"),
    (Code::InvalidArgument, "", "invalid_field"),
    (Code::AlreadyExists, "", "already_exists"),
    (Code::NotFound, "", "not_found"),
    (
        Code::FailedPrecondition,
        "expected_revision",
        "revision_conflict",
    ),
    (Code::FailedPrecondition, "is withdrawn", "withdrawn"),
];

/// The short reason of a refusal with `code` and `message`.
pub fn classify(code: Code, message: &str) -> &'static str {
    REASONS
        .iter()
        .find(|(c, words, _)| *c == code && message.contains(words))
        .map_or(code_label(code), |(_, _, reason)| reason)
}

/// Reason label of a refused TLS handshake (no gRPC status is involved).
pub const TLS_HANDSHAKE: &str = "tls_handshake";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_messages_get_their_reason_and_others_the_code() {
        for (code, message, reason) in [
            (
                Code::Unauthenticated,
                "certificate sha256:ab is not bound to any member of this hub",
                "certificate_unbound",
            ),
            (
                Code::PermissionDenied,
                "member EE-MFA: member is suspended",
                "member_suspended",
            ),
            (
                Code::ResourceExhausted,
                "member A is over its request quota; retry in 5 ms",
                "request_quota",
            ),
            (
                Code::InvalidArgument,
                "content.tlp: is required",
                "invalid_field",
            ),
            (Code::PermissionDenied, "something new", "permission_denied"),
            (Code::Aborted, "whatever", "aborted"),
        ] {
            assert_eq!(classify(code, message), reason, "{message}");
        }
    }

    #[test]
    fn reasons_are_few_and_snake_case() {
        let mut all: Vec<&str> = REASONS.iter().map(|r| r.2).collect();
        all.push(TLS_HANDSHAKE);
        all.sort_unstable();
        all.dedup();
        assert!(all.len() < 20);
        for r in all {
            assert!(r.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{r}");
        }
    }
}
