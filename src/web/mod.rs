//! The web portal: read-only HTML pages for people (desk officers, CSIRT analysts, auditors,
//! administrators), served by the hub itself on `web.listen`.
//!
//! Same trust as gRPC, by construction: connections come through the gRPC accept loop
//! ([`crate::tls::incoming::accept`]: the same rustls configuration, client-certificate
//! verifier, CRL reloads, handshake limits and refusal counting), and every page calls the
//! tonic service implementations with a request that carries the connection's facts exactly as
//! the gRPC server would. So each page authenticates the certificate against the registry as it
//! stands now (a revoked certificate or a suspended member is refused on the next request),
//! goes through the one audience decision and is audited as the gRPC read it is. There are no
//! sessions or cookies: the certificate is the only credential. Only GET (and HEAD) exist.
mod audit;
mod directory;
mod matrix;
mod page;
mod params;
mod submissions;
pub mod text;

use std::{sync::Arc, time::Duration};

use axum::{Router, routing::get};
use http::{HeaderValue, Request, Response, header};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;
use tower::ServiceExt;

use crate::{
    service::{AdminService, AuditService, CatalogueService, DirectoryService, HubService},
    tls::incoming::TlsConn,
};

/// The service implementations the pages read through (the same values the gRPC server
/// serves).
#[derive(Clone)]
pub struct Services {
    pub hub: HubService,
    pub directory: DirectoryService,
    pub catalogue: CatalogueService,
    pub audit: AuditService,
    pub admin: AdminService,
}

/// HTTP/2 streams at once per browser connection (a page and its stylesheet need two).
const MAX_STREAMS: u32 = 32;
/// Largest request header list a browser may send.
const MAX_HEADER_BYTES: u32 = 16 * 1024;

/// The strict policy: nothing but this origin's stylesheet and images; no script at all, no
/// inline style, no framing, forms only to this origin.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Serves the portal on the connections `accepted` yields until `shutdown`.
pub fn serve(
    accepted: impl tokio_stream::Stream<Item = std::io::Result<TlsConn>> + Send + 'static,
    services: Services,
    request_timeout: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let router = router(services);
    tokio::spawn(async move {
        tokio::pin!(accepted);
        loop {
            let conn = tokio::select! {
                _ = shutdown.cancelled() => return,
                c = accepted.next() => match c {
                    Some(Ok(c)) => c,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "web portal: accept failed");
                        continue;
                    }
                    None => return,
                },
            };
            let info = conn.connect_info();
            let router = router.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                // Every request on this connection carries the connection's certificate
                // facts, as tonic puts them into every gRPC request.
                let service =
                    hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(info.clone());
                        let page = router.clone().oneshot(req.map(axum::body::Body::new));
                        // Bounded like a unary gRPC call (limits.request_timeout_s).
                        async move {
                            match tokio::time::timeout(request_timeout, page).await {
                                Ok(r) => r,
                                Err(_) => Ok(security_headers(page::timed_out())),
                            }
                        }
                    });
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http2()
                    .timer(TokioTimer::new())
                    .max_concurrent_streams(MAX_STREAMS)
                    .max_header_list_size(MAX_HEADER_BYTES)
                    .keep_alive_interval(Some(Duration::from_secs(30)));
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .max_buf_size(MAX_HEADER_BYTES as usize * 4);
                let served = builder.serve_connection(TokioIo::new(conn), service);
                tokio::select! {
                    r = served => if let Err(e) = r {
                        tracing::debug!(error = %e, "web portal connection ended");
                    },
                    _ = shutdown.cancelled() => {}
                }
            });
        }
    })
}

/// The pages. Only GET routes exist: any other method gets 405 with `Allow`.
fn router(services: Services) -> Router {
    Router::new()
        .route("/", get(submissions::list))
        .route("/submissions/{id}", get(submissions::detail))
        .route(
            "/submissions/{id}/attachments/{index}",
            get(submissions::attachment),
        )
        .route("/submissions/{id}/access", get(submissions::access_log))
        .route("/contacts", get(directory::contacts))
        .route("/campaigns", get(directory::campaigns))
        .route("/campaigns/{id}", get(directory::campaign))
        .route("/matrix", get(matrix::page))
        .route("/matrix.csv", get(matrix::csv))
        .route("/members", get(audit::members))
        .route("/audit", get(audit::log))
        .route("/static/portal.css", get(stylesheet))
        .fallback(page::not_found)
        .method_not_allowed_fallback(page::method_not_allowed)
        .with_state(Arc::new(services))
        .layer(tower::util::MapResponseLayer::new(security_headers))
}

/// The one stylesheet, compiled into the binary.
async fn stylesheet() -> Response<axum::body::Body> {
    let mut r = Response::new(axum::body::Body::from(include_str!("static/portal.css")));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    // The stylesheet holds nothing of any member's: it may be cached.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    r
}

/// Headers on every response, errors included. Pages with content are never cached: once
/// the certificate is revoked, nothing of them stays in the browser's cache.
fn security_headers<B>(mut r: Response<B>) -> Response<B> {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}
