//! The plain-HTTP scrape endpoint: `GET /metrics` in the Prometheus text format (0.0.4).
//!
//! Plain HTTP on purpose: Prometheus scrapes without client certificates, and the endpoint
//! shows counts only (no member, submission or certificate names). Bind it to a loopback or
//! management address. It is bounded like the gRPC side: a few connections at once, each with
//! a deadline.
use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::Semaphore, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::Metrics;
use crate::store::Store;

/// Scrapes served at once; more wait for a place.
const MAX_CONNECTIONS: usize = 16;
/// A connection (keep-alive included) is closed after this long.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(30);

/// The Content-Type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves `metrics` on `listener` until `shutdown`.
pub fn serve(
    listener: TcpListener,
    metrics: Metrics,
    store: Store,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let places = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let place = tokio::select! {
                _ = shutdown.cancelled() => return,
                p = places.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            };
            let (tcp, _) = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics endpoint: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let (metrics, store, shutdown) = (metrics.clone(), store.clone(), shutdown.clone());
            tokio::spawn(async move {
                let _place = place;
                let service = hyper::service::service_fn(move |req| {
                    answer(req, metrics.clone(), store.clone())
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service);
                tokio::select! {
                    _ = conn => {}
                    _ = tokio::time::sleep(CONNECTION_DEADLINE) => {}
                    _ = shutdown.cancelled() => {}
                }
            });
        }
    })
}

async fn answer(
    req: Request<Incoming>,
    metrics: Metrics,
    store: Store,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r
    };
    if req.uri().path() != "/metrics" {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n".into(),
        ));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is allowed\n".into(),
        );
        r.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, HEAD"),
        );
        return Ok(r);
    }
    // sled's size_on_disk walks the data directory: keep it off the async workers.
    match tokio::task::spawn_blocking(move || metrics.render(&store)).await {
        Ok(text) => {
            let mut r = reply(StatusCode::OK, text);
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(CONTENT_TYPE),
            );
            Ok(r)
        }
        Err(e) => Ok(reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering metrics failed: {e}\n"),
        )),
    }
}

/// Binds the metrics address (before the hub reports itself started, so a bad address fails
/// the start).
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}
