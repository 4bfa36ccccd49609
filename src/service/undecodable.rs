//! Requests refused before any handler runs, because tonic could not decode them (over the
//! message limit, or not a valid message of the method's type): said as the hub says a
//! refusal (`status::decode_refusals`) and audited like any other refusal, as
//! `request.undecodable` naming the method, by the member whose certificate sent it.
use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tonic::{Code, Status};

use super::{
    auth::{Caller, refused},
    status,
};
use crate::{domain::principal::Action, store::Store, tls::incoming::ConnInfo};

/// The audit action of such a refusal.
pub const ACTION: &str = "request.undecodable";

/// Adds [`Undecodable`] around a service.
#[derive(Clone)]
pub struct UndecodableLayer {
    store: Store,
}

impl UndecodableLayer {
    pub fn new(store: Store) -> UndecodableLayer {
        UndecodableLayer { store }
    }
}

impl<S> tower::Layer<S> for UndecodableLayer {
    type Service = Undecodable<S>;
    fn layer(&self, inner: S) -> Undecodable<S> {
        Undecodable {
            inner,
            store: self.store.clone(),
        }
    }
}

/// Rewrites and audits the decode refusals of the wrapped service.
#[derive(Clone)]
pub struct Undecodable<S> {
    inner: S,
    store: Store,
}

type Response = http::Response<tonic::body::Body>;

impl<S, B> tower::Service<http::Request<B>> for Undecodable<S>
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
        let conn = req.extensions().get::<ConnInfo>().cloned();
        let path = req.uri().path().to_string();
        let store = self.store.clone();
        let call = self.inner.call(req);
        Box::pin(async move {
            let response = status::decode_refusals(call.await?);
            // tonic refuses before the handler with a trailers-only answer: the status is in
            // the headers.
            if let Some(status) = refusal(response.headers()) {
                tokio::spawn(record(store, conn, path, status));
            }
            Ok(response)
        })
    }
}

/// The decode refusal `decode_refusals` wrote into these headers, if any.
fn refusal(headers: &http::HeaderMap) -> Option<Status> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    let message = headers.get("grpc-message")?.to_str().ok()?;
    let code = Code::from_i32(code);
    let ours = matches!(code, Code::ResourceExhausted | Code::InvalidArgument)
        && message.starts_with(status::DECODE_REFUSAL_PREFIX);
    ours.then(|| Status::new(code, status::percent_decode(message.as_bytes())))
}

async fn record(store: Store, conn: Option<ConnInfo>, path: String, status: Status) {
    let mut caller = Caller::on(&store, conn);
    // Only to name the member (the refusal stands whatever this says).
    let _ = caller.authenticate(Action::WhoAmI);
    let mut entry = caller.entry(ACTION);
    // The method (object ids are submission ids).
    entry.detail = path;
    caller.record(refused(entry, &status)).await;
}
