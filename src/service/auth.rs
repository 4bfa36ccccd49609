//! Authentication at the edge, and the audit record of every decision made there.
//!
//! The verified certificate of the connection, resolved against the current registry snapshot,
//! becomes a typed [`Principal`]; then the role check. A [`Caller`] carries where the request
//! comes from into every audit entry, for refusals as well as allowed requests.
use tonic::{Request, Status};

use crate::{
    audit::{Origin, REFUSED},
    domain::{
        member::{IssuerMismatch, Unresolved},
        principal::{Action, Principal, authorize},
    },
    metrics::reason,
    pb::AuditEntry,
    store::Store,
    tls::incoming::ConnInfo,
};

/// The caller of one request.
pub struct Caller {
    /// Certificate and peer from the connection; the member once resolved.
    pub origin: Origin,
    conn: Option<ConnInfo>,
    store: Store,
}

impl Caller {
    /// The connection the request came on.
    pub fn conn(&self) -> Option<&ConnInfo> {
        self.conn.as_ref()
    }

    pub fn of<T>(store: &Store, req: &Request<T>) -> Caller {
        Caller::on(store, req.extensions().get::<ConnInfo>().cloned())
    }

    /// The caller of a request that came on the connection `conn` (None: not through the TLS
    /// accept loop).
    pub fn on(store: &Store, conn: Option<ConnInfo>) -> Caller {
        let origin = Origin {
            member: String::new(),
            cert_sha256: conn
                .as_ref()
                .and_then(|c| c.cert.as_ref())
                .map(|c| c.cert_sha256.clone())
                .unwrap_or_default(),
            peer: conn
                .as_ref()
                .map(|c| c.peer.to_string())
                .unwrap_or_default(),
        };
        Caller {
            origin,
            conn,
            store: store.clone(),
        }
    }

    /// Resolves the caller and checks it may perform `action`.
    ///
    /// Fails closed: no connection facts (not served through the TLS accept loop), an
    /// unparsable or unbound certificate -> UNAUTHENTICATED; suspended or lacking the role ->
    /// PERMISSION_DENIED.
    pub fn authenticate(&mut self, action: Action) -> Result<Principal, Status> {
        let info = self.conn.as_ref().ok_or_else(|| {
            Status::unauthenticated("no verified client certificate on this connection")
        })?;
        let cert = info
            .cert
            .as_ref()
            .ok_or_else(|| Status::unauthenticated("the client certificate could not be read"))?;
        // After a TLS reload (new CRL, CA bundle), open connections are re-checked.
        info.ensure_accepted().map_err(|e| {
            Status::unauthenticated(format!("the client certificate is no longer accepted: {e}"))
        })?;
        let registry = self.store.registry();
        let (member, bound_by) = info.member_of(&registry).map_err(|e| match e {
            Unresolved::Unbound => Status::unauthenticated(format!(
                "certificate sha256:{} is not bound to any member of this hub",
                cert.cert_sha256
            )),
            Unresolved::Ambiguous(a, b) => {
                tracing::warn!(cert = %cert.cert_sha256, a, b, "certificate matches two members");
                Status::unauthenticated("certificate matches bindings of two members; ask an administrator to fix the registry")
            }
            Unresolved::Issuer { member, binding, why: IssuerMismatch::Other } => {
                tracing::warn!(cert = %cert.cert_sha256, member, %binding, ca = %cert.ca_spki_sha256, "certificate from another CA than its binding names");
                Status::unauthenticated(format!(
                    "certificate sha256:{} matches {binding}, which accepts only certificates of another CA than the one that issued it",
                    cert.cert_sha256
                ))
            }
            Unresolved::Issuer { member, binding, why: IssuerMismatch::NotRecorded } => {
                tracing::warn!(member, %binding, "binding names no issuing CA and the client CA bundle holds several: refused until an administrator binds it again with its CA (member bind ID --issuer-ca FILE)");
                Status::unauthenticated(format!(
                    "{binding} was registered without its issuing CA and the hub now trusts several CAs; ask the hub administrator to bind it again with its CA"
                ))
            }
        })?;
        self.origin.member = member.id.clone();
        authorize(&member, action)
            .map_err(|r| Status::permission_denied(format!("member {}: {r}", member.id)))?;
        info.admission
            .admit(&member.id)
            .map_err(|wait| over_quota(&member.id, wait))?;
        Ok(Principal {
            member,
            cert_sha256: cert.cert_sha256.clone(),
            bound_by,
            peer: info.peer,
        })
    }

    /// A new audit entry for `action` by this caller.
    pub fn entry(&self, action: &str) -> AuditEntry {
        self.origin.entry(action)
    }

    /// Records an entry. A refusal before the caller resolved to a member (no certificate,
    /// an unbound or no longer accepted one) is unauthenticated noise: counted per source and
    /// certificate, written as an aggregate entry (see `audit::noise`).
    pub async fn record(&self, entry: AuditEntry) {
        if entry.outcome == REFUSED && entry.member.is_empty() {
            if let Some(cause) = entry.reason.strip_prefix("unauthenticated") {
                let cause = cause.trim_start_matches(": ");
                let cause = if cause.is_empty() {
                    "unauthenticated"
                } else {
                    cause
                };
                self.store.noise().note(
                    self.conn.as_ref().map(|c| c.peer.ip()),
                    Some(&self.origin.cert_sha256)
                        .filter(|c| !c.is_empty())
                        .map(String::as_str),
                    crate::audit::noise::UNAUTHENTICATED,
                    &format!("{}:{cause}", entry.action),
                );
                return;
            }
        }
        self.store.audit(vec![entry]).await;
    }

    /// Records the refusal of `action` on `object_id` and hands the status back.
    pub async fn refuse(&self, action: &str, object_id: &str, status: Status) -> Status {
        let mut entry = self.entry(action);
        entry.object_id = object_id.to_string();
        self.record(refused(entry, &status)).await;
        status
    }
}

/// RESOURCE_EXHAUSTED with a retry hint, in the message and as `retry-after-ms` metadata.
fn over_quota(member: &str, wait: std::time::Duration) -> Status {
    let ms = wait.as_millis().max(1);
    let mut status = Status::resource_exhausted(format!(
        "member {member} is over its request quota; retry in {ms} ms"
    ));
    if let Ok(v) = ms.to_string().parse() {
        status.metadata_mut().insert("retry-after-ms", v);
    }
    status
}

/// Marks an entry refused with the status that refused it. The reason is the code and a cause
/// from a fixed vocabulary, with the names of invalid fields: never the status message, which
/// may quote the request.
pub fn refused(mut entry: AuditEntry, status: &Status) -> AuditEntry {
    entry.outcome = REFUSED.to_string();
    let code = reason::code_label(status.code());
    let cause = reason::classify(status.code(), status.message());
    let fields = super::status::invalid_fields(status);
    entry.reason = crate::audit::bound::reason(code, cause, fields.iter().map(String::as_str));
    entry
}

/// Runs `work` off the async workers (it reads storage) for a caller allowed `action`, and
/// audits the call as `name` on `object_id`, with the submission ids `read` says it returned
/// (they appear in those submissions' access logs).
pub async fn blocking_audited<T, R: Send + 'static>(
    store: &Store,
    req: &Request<T>,
    name: &str,
    object_id: &str,
    action: Action,
    work: impl FnOnce(Store, Principal) -> Result<R, Status> + Send + 'static,
    read: impl FnOnce(&R) -> Vec<String>,
) -> Result<R, Status> {
    let mut caller = Caller::of(store, req);
    let result = match caller.authenticate(action) {
        Ok(who) => {
            let store = store.clone();
            tokio::task::spawn_blocking(move || work(store, who))
                .await
                .map_err(|e| Status::internal(format!("{e}")))
                .and_then(|r| r)
        }
        Err(status) => Err(status),
    };
    let mut entry = caller.entry(name);
    entry.object_id = object_id.to_string();
    caller
        .record(match &result {
            Ok(r) => {
                entry.object_ids = read(r);
                entry
            }
            Err(status) => refused(entry, status),
        })
        .await;
    result
}
