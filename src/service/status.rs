//! The one mapping from layer errors to gRPC statuses.
use tonic::{Code, Status};

use crate::{domain::Invalid, store::StoreError};

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Status {
        match e {
            StoreError::NotFound(m) => Status::not_found(m),
            StoreError::PermissionDenied(m) => Status::permission_denied(m),
            StoreError::FailedPrecondition(m) => Status::failed_precondition(m),
            StoreError::AlreadyExists(m) => Status::already_exists(m),
            StoreError::Invalid(i) => invalid(i),
            StoreError::Corrupt(m) => {
                tracing::error!(detail = %m, "stored data failed its integrity check");
                Status::data_loss(format!("stored data is damaged and is not served: {m}"))
            }
            StoreError::Io(m) => {
                // Details stay in the log; the client learns only that it may retry.
                tracing::error!(detail = %m, "storage failure");
                Status::unavailable(
                    "storage failure: the request is not acknowledged; retry later (writes with the same idempotency_key)",
                )
            }
            StoreError::Closed => Status::unavailable("the hub is shutting down; retry later"),
        }
    }
}

/// INVALID_ARGUMENT listing every field and reason.
pub fn invalid(i: Invalid) -> Status {
    Status::new(Code::InvalidArgument, i.to_string())
}

impl From<Invalid> for Status {
    fn from(i: Invalid) -> Status {
        invalid(i)
    }
}

/// A readable name of a gRPC code, for messages and audit entries.
pub fn code_name(code: Code) -> &'static str {
    use Code::*;
    match code {
        Ok => "ok",
        Cancelled => "cancelled",
        Unknown => "unknown error",
        InvalidArgument => "invalid argument",
        DeadlineExceeded => "deadline exceeded",
        NotFound => "not found",
        AlreadyExists => "already exists",
        PermissionDenied => "permission denied",
        ResourceExhausted => "resource exhausted",
        FailedPrecondition => "failed precondition",
        Aborted => "aborted",
        OutOfRange => "out of range",
        Unimplemented => "unimplemented",
        Internal => "internal error",
        Unavailable => "unavailable",
        DataLoss => "data loss",
        Unauthenticated => "unauthenticated",
    }
}
