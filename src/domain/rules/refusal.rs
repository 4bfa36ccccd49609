//! Why a change is refused: the domain's answer, mapped to a gRPC code by the service layer.
use std::fmt;

/// The kind of refusal, one per gRPC code a rule can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCode {
    /// The object does not exist, or the actor may not know that it does.
    NotFound,
    /// The object is visible but the actor may not do this to it.
    PermissionDenied,
    /// The object's state does not allow it (withdrawn, locked, another revision).
    FailedPrecondition,
    /// A key or name is already taken by something else.
    AlreadyExists,
    /// A field of the request is wrong given the stored state.
    InvalidArgument,
}

impl RefusalCode {
    /// The code's name as the audit log and metrics write it.
    pub fn name(self) -> &'static str {
        match self {
            RefusalCode::NotFound => "not_found",
            RefusalCode::PermissionDenied => "permission_denied",
            RefusalCode::FailedPrecondition => "failed_precondition",
            RefusalCode::AlreadyExists => "already_exists",
            RefusalCode::InvalidArgument => "invalid_argument",
        }
    }
}

/// A refused change: which rule (`cause`, fixed words for the audit log, which never records
/// the message), the request field concerned (empty if none) and the reason for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefusalCode,
    /// Short fixed words naming the rule, e.g. `not_publisher`: what the audit entry records.
    pub cause: &'static str,
    /// Path of the request field concerned, e.g. `expected_revision`; empty if none.
    pub field: String,
    /// Why, in words a client developer can act on (may quote the request).
    pub reason: String,
}

impl Refusal {
    fn new(code: RefusalCode, cause: &'static str, field: &str, reason: String) -> Refusal {
        Refusal {
            code,
            cause,
            field: field.to_string(),
            reason,
        }
    }

    pub fn not_found(reason: String) -> Refusal {
        Refusal::new(RefusalCode::NotFound, "not_found", "", reason)
    }

    pub fn denied(cause: &'static str, reason: String) -> Refusal {
        Refusal::new(RefusalCode::PermissionDenied, cause, "", reason)
    }

    pub fn precondition(cause: &'static str, field: &str, reason: String) -> Refusal {
        Refusal::new(RefusalCode::FailedPrecondition, cause, field, reason)
    }

    pub fn exists(field: &str, reason: String) -> Refusal {
        Refusal::new(RefusalCode::AlreadyExists, "already_exists", field, reason)
    }

    pub fn invalid(field: impl Into<String>, reason: String) -> Refusal {
        Refusal {
            code: RefusalCode::InvalidArgument,
            cause: "invalid_field",
            field: field.into(),
            reason,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

impl std::error::Error for Refusal {}
