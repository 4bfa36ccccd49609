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

/// What tonic answers for a request it cannot decode, before any handler runs, said as the
/// hub says a refusal:
/// - over the size limit, OUT_OF_RANGE: RESOURCE_EXHAUSTED, the gRPC convention (and what
///   clients expect for "too large"), naming the request and the limit. The refusal is made
///   from the length prefix alone, before the body is buffered.
/// - not a valid protobuf message of the method's type (invalid UTF-8 in a string, a
///   truncated field), INTERNAL: INVALID_ARGUMENT, the client's input being wrong, with
///   tonic's message, which names the field.
///
/// The status travels in the headers (trailers-only) or in the trailers, and is rewritten in
/// both.
pub fn decode_refusals(
    response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    use http_body_util::BodyExt;
    let (mut parts, body) = response.into_parts();
    rewrite_decode_refusal(&mut parts.headers);
    let body = body.map_frame(|frame| match frame.into_trailers() {
        Ok(mut trailers) => {
            rewrite_decode_refusal(&mut trailers);
            http_body::Frame::trailers(trailers)
        }
        Err(frame) => frame,
    });
    http::Response::from_parts(parts, tonic::body::Body::new(body))
}

/// How the messages of the rewritten refusals start.
pub(super) const DECODE_REFUSAL_PREFIX: &str = "request: ";

fn rewrite_decode_refusal(headers: &mut http::HeaderMap) {
    let code = headers.get("grpc-status").map(|v| v.as_bytes().to_vec());
    // grpc-message is percent-encoded.
    let message = headers
        .get("grpc-message")
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    let rewritten = match code.as_deref() {
        Some(b"11") if message.contains("message length too large") => Some((
            "8",
            format!(
                "{DECODE_REFUSAL_PREFIX}{}; the hub's message limit bounds a request (see the README's Limits for what content fits)",
                message.trim_start_matches("Error, ")
            ),
        )),
        Some(b"13") if message.starts_with("failed to decode Protobuf message") => Some((
            "3",
            format!("{DECODE_REFUSAL_PREFIX}not a valid message: {message}"),
        )),
        _ => None,
    };
    if let Some((code, message)) = rewritten {
        headers.insert("grpc-status", http::HeaderValue::from_static(code));
        if let Ok(v) = http::HeaderValue::from_str(&percent_encode(&message)) {
            headers.insert("grpc-message", v);
        }
    }
}

/// grpc-message's encoding (gRPC over HTTP/2): bytes outside printable ASCII, and '%', as %XX.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn percent_decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
