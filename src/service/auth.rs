//! Authentication at the edge: the verified certificate of the connection, resolved against
//! the current registry snapshot, becomes a typed [`Principal`]; then the role check.
use tonic::{Request, Status};

use crate::{
    domain::{
        member::Unresolved,
        principal::{Action, Principal, authorize},
    },
    store::Store,
    tls::incoming::ConnInfo,
};

/// Resolves the caller of `req` and checks it may perform `action`.
///
/// Fails closed: no connection facts (not served through the TLS accept loop), an unparsable or
/// unbound certificate -> UNAUTHENTICATED; suspended or lacking the role -> PERMISSION_DENIED.
pub fn authenticate<T>(
    store: &Store,
    req: &Request<T>,
    action: Action,
) -> Result<Principal, Status> {
    let info = req.extensions().get::<ConnInfo>().ok_or_else(|| {
        Status::unauthenticated("no verified client certificate on this connection")
    })?;
    let cert = info
        .cert
        .as_ref()
        .ok_or_else(|| Status::unauthenticated("the client certificate could not be read"))?;
    let registry = store.registry();
    let (member, bound_by) = registry.resolve(cert).map_err(|e| match e {
        Unresolved::Unbound => Status::unauthenticated(format!(
            "certificate sha256:{} is not bound to any member of this hub",
            cert.cert_sha256
        )),
        Unresolved::Ambiguous(a, b) => {
            tracing::warn!(cert = %cert.cert_sha256, a, b, "certificate matches two members");
            Status::unauthenticated("certificate matches bindings of two members; ask an administrator to fix the registry")
        }
    })?;
    authorize(&member, action)
        .map_err(|r| Status::permission_denied(format!("member {}: {r}", member.id)))?;
    Ok(Principal {
        member,
        cert_sha256: cert.cert_sha256.clone(),
        bound_by,
        peer: info.peer,
    })
}
