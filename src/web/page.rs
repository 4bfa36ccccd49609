//! What every page shares: the caller's connection, the layout (who the certificate is, the
//! navigation its roles open), rendering with the right headers, and error pages.
use std::sync::Arc;

use askama::Template;
use axum::{
    body::Body,
    extract::{Extension, FromRequestParts, State},
    response::{IntoResponse, Response},
};
use http::{HeaderValue, StatusCode, header, request::Parts};
use tonic::{Code, Status};

use super::{Services, params::Params, text};
use crate::{pb, tls::incoming::ConnInfo};

/// One page request: the services and the connection's facts, which every service call carries
/// as a gRPC request on that connection would.
pub struct Ctx {
    pub s: Arc<Services>,
    pub conn: ConnInfo,
    pub params: Params,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx
where
    Arc<Services>: axum::extract::FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let State(s) = State::<Arc<Services>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        // Always present on the portal's connections; fail closed if not.
        let Extension(conn) = Extension::<ConnInfo>::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                PageError(Status::unauthenticated(text::NO_CLIENT_CERTIFICATE)).into_response()
            })?;
        let params = Params::parse(parts.uri.query());
        Ok(Ctx { s, conn, params })
    }
}

impl Ctx {
    /// `msg` as a gRPC request on this connection.
    pub fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.extensions_mut().insert(self.conn.clone());
        r
    }

    /// Who the certificate is, checked now (WhoAmI: the certificate still accepted, bound to
    /// an active member), and the navigation its roles open.
    pub async fn layout(&self, title: &str, current: &'static str) -> Result<Layout, PageError> {
        use crate::pb::hub_server::Hub;
        let who = self
            .s
            .hub
            .who_am_i(self.req(pb::WhoAmIRequest {}))
            .await?
            .into_inner();
        let member = who.member.unwrap_or_default();
        let has = |r: &str| member.roles.iter().any(|x| x == r);
        Ok(Layout {
            title: title.to_string(),
            current,
            is_admin: has("admin"),
            is_auditor: has("auditor") || has("admin"),
            can_read: has("publisher") || has("subscriber"),
            member_id: member.id,
            member_name: member.display_name,
            member_state: member.state,
            title_lang: None,
        })
    }
}

/// The frame of every page.
pub struct Layout {
    pub title: String,
    /// The language of a title that is content (a submission's), when it is a BCP 47 tag.
    pub title_lang: Option<String>,
    /// The navigation entry of this page ("submissions", "contacts", ...).
    pub current: &'static str,
    pub member_id: String,
    pub member_name: String,
    pub member_state: String,
    pub is_admin: bool,
    pub is_auditor: bool,
    /// Reads content (publisher or subscriber): the submission, contact and matrix pages.
    pub can_read: bool,
}

impl Layout {
    /// `aria-current` for the navigation entry `key`.
    pub fn aria(&self, key: &str) -> &'static str {
        if self.current == key { "page" } else { "false" }
    }
}

/// A page that could not be shown: the gRPC status of the read that failed.
#[derive(Debug)]
pub struct PageError(pub Status);

impl From<Status> for PageError {
    fn from(s: Status) -> Self {
        PageError(s)
    }
}

#[derive(Template)]
#[template(path = "error.html", config = "src/web/askama.toml")]
struct ErrorPage<'a> {
    lang: &'a str,
    headline: &'a str,
    detail: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, headline, detail) = match self.0.code() {
            Code::Unauthenticated | Code::PermissionDenied => (
                StatusCode::FORBIDDEN,
                text::ERROR_FORBIDDEN,
                self.0.message().to_string(),
            ),
            Code::NotFound => (StatusCode::NOT_FOUND, text::ERROR_NOT_FOUND, String::new()),
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => (
                StatusCode::BAD_REQUEST,
                text::ERROR_BAD_REQUEST,
                self.0.message().to_string(),
            ),
            Code::ResourceExhausted => (
                StatusCode::TOO_MANY_REQUESTS,
                text::ERROR_BUSY,
                self.0.message().to_string(),
            ),
            _ => {
                tracing::error!(status = ?self.0, "web portal page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    text::ERROR_INTERNAL,
                    String::new(),
                )
            }
        };
        error_page(status, headline, detail)
    }
}

fn error_page(status: StatusCode, headline: &str, detail: String) -> Response {
    let page = ErrorPage {
        lang: text::LANG,
        headline,
        detail,
    };
    let mut r = html(&page);
    *r.status_mut() = status;
    r
}

/// A rendered page.
pub fn html(t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => {
            let mut r = Response::new(Body::from(body));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "web portal template failed");
            let mut r = Response::new(Body::from(text::ERROR_INTERNAL));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
}

/// The result of a page handler.
pub type PageResult = Result<Response, PageError>;

/// The answer to a page that took longer than the request timeout.
pub fn timed_out() -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        text::ERROR_TIMEOUT,
        String::new(),
    )
}

pub async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, text::ERROR_NOT_FOUND, String::new())
}

pub async fn method_not_allowed() -> Response {
    let mut r = error_page(
        StatusCode::METHOD_NOT_ALLOWED,
        text::ERROR_METHOD,
        String::new(),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

/// An instant as people read it: "2026-12-01 15:32 UTC" from RFC 3339 (other text as is).
pub fn when(s: &str) -> String {
    match crate::domain::clock::parse_instant(s) {
        Ok(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        }
        Err(_) => s.to_string(),
    }
}

/// A form date (YYYY-MM-DD) as the instant starting that day, shifted by `days`; "" stays "".
/// Anything else is passed on as typed, for the service to refuse naming its field.
pub fn day_start(date: &str, days: i64) -> String {
    if date.is_empty() {
        return String::new();
    }
    match crate::domain::clock::parse_date(date) {
        Ok(d) => {
            let d = d + time::Duration::days(days);
            format!("{}T00:00:00Z", d)
        }
        Err(_) => date.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_instants() {
        assert_eq!(day_start("2026-12-31", 1), "2027-01-01T00:00:00Z");
        assert_eq!(day_start("", 1), "");
        assert_eq!(day_start("yesterday", 0), "yesterday");
        assert_eq!(when("2026-12-01T15:32:09Z"), "2026-12-01 15:32 UTC");
        assert_eq!(when(""), "");
    }
}
