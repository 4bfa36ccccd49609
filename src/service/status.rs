//! The one mapping from layer errors to gRPC statuses.
use tonic::{Code, Status};

use crate::{
    domain::{
        Invalid,
        rules::{Refusal, RefusalCode},
    },
    store::StoreError,
};

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Status {
        match e {
            StoreError::Refused(r) => r.into(),
            StoreError::Invalid(i) => invalid(i),
            StoreError::TooLarge(m) => Status::resource_exhausted(m),
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
            StoreError::DiskLow(m) => Status::resource_exhausted(m),
            // Only at open, before anything is served; logged like an internal error.
            StoreError::Layout(m) => {
                tracing::error!(detail = %m, "data directory of another layout");
                Status::failed_precondition(m)
            }
        }
    }
}

/// The gRPC code of each kind of refusal: the one place a domain refusal meets the wire.
impl From<Refusal> for Status {
    fn from(r: Refusal) -> Status {
        let message = r.to_string();
        match r.code {
            RefusalCode::NotFound => Status::not_found(message),
            RefusalCode::PermissionDenied => Status::permission_denied(message),
            RefusalCode::FailedPrecondition => Status::failed_precondition(message),
            RefusalCode::AlreadyExists => Status::already_exists(message),
            RefusalCode::InvalidArgument => invalid(Invalid::one(r.field, r.reason)),
        }
    }
}

/// Metadata naming the invalid fields, comma-separated: the audit log records these names,
/// never the message (which may quote the values).
const INVALID_FIELDS: &str = "cbm-invalid-fields";

/// INVALID_ARGUMENT listing every field and reason, with the field names as metadata.
pub fn invalid(i: Invalid) -> Status {
    let mut status = Status::new(Code::InvalidArgument, i.to_string());
    let names: Vec<&str> = i.0.iter().map(|f| f.field.as_str()).take(32).collect();
    if let Ok(v) = names.join(",").parse() {
        status.metadata_mut().insert(INVALID_FIELDS, v);
    }
    status
}

/// The invalid fields [`invalid`] named, if any.
pub fn invalid_fields(status: &Status) -> Vec<String> {
    status
        .metadata()
        .get(INVALID_FIELDS)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

/// RESOURCE_EXHAUSTED naming the field, its size and the limit.
impl From<crate::domain::budget::TooLarge> for Status {
    fn from(e: crate::domain::budget::TooLarge) -> Status {
        Status::resource_exhausted(e.to_string())
    }
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

/// tonic answers a request over the size limit with OUT_OF_RANGE; the gRPC convention (and
/// what clients expect for "too large") is RESOURCE_EXHAUSTED. The refusal is made from the
/// length prefix alone, before the body is buffered; its status travels in the headers
/// (trailers-only) or in the trailers, and is rewritten in both.
pub fn oversize_as_resource_exhausted(
    response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    use http_body_util::BodyExt;
    let (mut parts, body) = response.into_parts();
    rewrite_oversize(&mut parts.headers);
    let body = body.map_frame(|frame| match frame.into_trailers() {
        Ok(mut trailers) => {
            rewrite_oversize(&mut trailers);
            http_body::Frame::trailers(trailers)
        }
        Err(frame) => frame,
    });
    http::Response::from_parts(parts, tonic::body::Body::new(body))
}

fn rewrite_oversize(headers: &mut http::HeaderMap) {
    let oversize = headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"11")
        && headers
            .get("grpc-message")
            // grpc-message is percent-encoded.
            .is_some_and(|m| {
                String::from_utf8_lossy(m.as_bytes())
                    .replace("%20", " ")
                    .contains("message length too large")
            });
    if oversize {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
}
