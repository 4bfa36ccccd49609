//! The tower layer around every gRPC service: latency per method, responses by final code, and
//! refusals by code and reason.
//!
//! The final code of a gRPC call is in the response headers (a trailers-only answer, which is
//! how tonic refuses) or in the trailers at the end of the body (successful unary calls, and
//! streams that end with a status). The body is wrapped to read the trailers; a body dropped
//! before its trailers (the client went away) counts as CANCELLED.
use std::{
    collections::HashSet,
    future::Future,
    pin::Pin,
    sync::{Mutex, OnceLock},
    task::{Context, Poll},
    time::Instant,
};

use http_body_util::BodyExt;
use tonic::Code;

use super::{
    MethodLabels, Metrics, RefusalLabels, ResponseLabels,
    reason::{classify, code_label, is_refusal},
};

/// Adds [`RpcMetrics`] around a service.
#[derive(Clone, Debug)]
pub struct RpcMetricsLayer {
    metrics: Metrics,
}

impl RpcMetricsLayer {
    pub fn new(metrics: Metrics) -> RpcMetricsLayer {
        RpcMetricsLayer { metrics }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;
    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// Measures each call of the wrapped service.
#[derive(Clone, Debug)]
pub struct RpcMetrics<S> {
    inner: S,
    metrics: Metrics,
}

type Response = http::Response<tonic::body::Body>;

impl<S, B> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().to_string();
        let started = Instant::now();
        let metrics = self.metrics.clone();
        let call = self.inner.call(req);
        Box::pin(async move {
            let response = call.await?;
            Ok(observe(metrics, &path, started, response))
        })
    }
}

/// Records the latency now and the final code when it is known.
fn observe(metrics: Metrics, path: &str, started: Instant, response: Response) -> Response {
    let header_status = status_of(response.headers());
    // Unknown paths are answered UNIMPLEMENTED by the router: they share one label, so a
    // client cannot create series at will. Every other path is a method the hub serves.
    let method = if header_status
        .as_ref()
        .is_some_and(|s| s.0 == Code::Unimplemented)
    {
        "other"
    } else {
        intern(path)
    };
    metrics
        .latency
        .get_or_create(&MethodLabels { method })
        .observe(started.elapsed().as_secs_f64());
    let mut outcome = Outcome {
        metrics,
        method,
        done: false,
    };
    if let Some((code, message)) = header_status {
        outcome.finish(code, &message);
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = body.map_frame(move |frame| {
        if let Some((code, message)) = frame.trailers_ref().and_then(status_of) {
            outcome.finish(code, &message);
        }
        frame
    });
    http::Response::from_parts(parts, tonic::body::Body::new(body))
}

/// The final code of one call, counted once.
struct Outcome {
    metrics: Metrics,
    method: &'static str,
    done: bool,
}

impl Outcome {
    fn finish(&mut self, code: Code, message: &str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let code_name = code_label(code);
        self.metrics
            .responses
            .get_or_create(&ResponseLabels {
                method: self.method,
                code: code_name,
            })
            .inc();
        if is_refusal(code) {
            self.metrics
                .refusals
                .get_or_create(&RefusalLabels {
                    code: code_name,
                    reason: classify(code, message),
                })
                .inc();
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        self.finish(Code::Cancelled, "");
    }
}

/// The grpc-status and decoded grpc-message in `headers`, if a status is there.
fn status_of(headers: &http::HeaderMap) -> Option<(Code, String)> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    let message = headers
        .get("grpc-message")
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    Some((Code::from_i32(code), message))
}

/// grpc-message is percent-encoded (the gRPC HTTP/2 protocol).
fn percent_decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A 'static copy of a served method path, made once per path (the set of served methods is
/// fixed, so this holds a few dozen strings).
fn intern(path: &str) -> &'static str {
    let path = path.trim_start_matches('/');
    static PATHS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut paths = PATHS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(p) = paths.get(path) {
        return p;
    }
    let leaked: &'static str = Box::leak(path.to_string().into_boxed_str());
    paths.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_decoded() {
        assert_eq!(
            percent_decode(b"member%20A%3A%20100%25 done%"),
            "member A: 100% done%"
        );
    }
}
