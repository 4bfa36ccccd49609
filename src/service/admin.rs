//! The MemberAdmin service: registry changes by administrators.
use tonic::{Request, Response, Status};

use super::auth::{Caller, refused};
use crate::{
    convert,
    domain::{
        Invalid,
        member::{BoundCertificate, MemberStatus, check_member_id, settle_issuer},
        principal::Action,
        validate::fields,
    },
    pb::{self, member_admin_server::MemberAdmin},
    store::{MemberOp, Store},
};

/// Ties the SPKI and URI SAN bindings of a registration or bind to their issuing CA (see
/// [`settle_issuer`]), against the client CA bundle in force.
fn settle_issuers(mut op: MemberOp, caller: &Caller) -> Result<MemberOp, Status> {
    let bundle = caller.conn().map(|c| c.tls.bundle()).ok_or_else(|| {
        Status::unauthenticated("no verified client certificate on this connection")
    })?;
    let spkis = bundle.distinct_spkis();
    let mut errs = Invalid::default();
    let mut settle = |b: &mut BoundCertificate, path: String| {
        if let Err(e) = settle_issuer(b, &spkis) {
            errs.push(
                path,
                format!("{e} (the bundle holds: {})", bundle.describe()),
            );
        }
    };
    match &mut op {
        MemberOp::Register(m) => {
            for (i, b) in m.bindings.iter_mut().enumerate() {
                settle(b, format!("member.bindings[{i}].issuer_spki_sha256"));
            }
        }
        MemberOp::Bind { certificate, .. } => {
            settle(certificate, "binding.issuer_spki_sha256".into());
        }
        _ => {}
    }
    errs.into_result()?;
    Ok(op)
}

#[derive(Clone)]
pub struct AdminService {
    pub store: Store,
}

fn member_id(id: &str) -> Result<String, Status> {
    check_member_id(id).map_err(|e| Invalid::one("id", e))?;
    Ok(id.to_string())
}

impl AdminService {
    /// Authenticates and checks an administration request, then hands it to the writer.
    /// Refusals before the writer are audited here; the writer audits the rest.
    async fn apply<T>(
        &self,
        req: &Request<T>,
        action: &str,
        object_id: &str,
        op: impl FnOnce() -> Result<MemberOp, Status>,
    ) -> Result<Response<pb::Member>, Status> {
        let mut caller = Caller::of(&self.store, req);
        let checked = caller
            .authenticate(Action::AdministerMembers)
            .and_then(|_| op())
            .and_then(|op| settle_issuers(op, &caller));
        let op = match checked {
            Ok(op) => op,
            Err(status) => return Err(caller.refuse(action, object_id, status).await),
        };
        let member = self.store.member(op, caller.origin).await?;
        Ok(Response::new(convert::member_to_pb(&member)))
    }

    /// Runs a read of the registry, auditing it.
    async fn read<T, R>(
        &self,
        req: &Request<T>,
        action: &str,
        object_id: &str,
        read: impl FnOnce() -> Result<R, Status>,
    ) -> Result<Response<R>, Status> {
        let mut caller = Caller::of(&self.store, req);
        let result = caller
            .authenticate(Action::AdministerMembers)
            .and_then(|_| read());
        let mut entry = caller.entry(action);
        entry.object_id = object_id.to_string();
        caller
            .record(match &result {
                Ok(_) => entry,
                Err(status) => refused(entry, status),
            })
            .await;
        result.map(Response::new)
    }

    async fn set_status(
        &self,
        req: Request<pb::SetMemberStatusRequest>,
        status: MemberStatus,
    ) -> Result<Response<pb::Member>, Status> {
        let action = match status {
            MemberStatus::Suspended => "member.suspend",
            MemberStatus::Active => "member.reinstate",
        };
        self.apply(&req, action, &req.get_ref().id, || {
            let r = req.get_ref();
            let mut errs = Invalid::default();
            fields::optional(&mut errs, "reason", &r.reason, 1000, true);
            errs.into_result()?;
            Ok(MemberOp::SetStatus {
                id: member_id(&r.id)?,
                status,
                reason: r.reason.clone(),
            })
        })
        .await
    }
}

#[tonic::async_trait]
impl MemberAdmin for AdminService {
    async fn register_member(
        &self,
        req: Request<pb::RegisterMemberRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let id = req
            .get_ref()
            .member
            .as_ref()
            .map(|m| m.id.clone())
            .unwrap_or_default();
        self.apply(&req, "member.register", &id, || {
            let m = req
                .get_ref()
                .member
                .as_ref()
                .ok_or_else(|| Invalid::one("member", "is required"))?;
            Ok(MemberOp::Register(convert::member_from_registration(
                m, "member",
            )?))
        })
        .await
    }

    async fn update_member(
        &self,
        req: Request<pb::UpdateMemberRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        self.apply(&req, "member.update", &req.get_ref().id, || {
            let r = req.get_ref();
            let id = member_id(&r.id)?;
            let mut errs = Invalid::default();
            let display_name = (!r.display_name.is_empty()).then(|| r.display_name.clone());
            if let Some(name) = &display_name {
                fields::required(&mut errs, "display_name", name, 200, false);
            }
            let roles = if r.set_roles {
                convert::roles_from_pb(&r.roles, "roles")
                    .map_err(|e| errs.0.extend(e.0))
                    .ok()
            } else {
                None
            };
            let communities = if r.set_communities {
                convert::communities_from_pb(&r.communities, "communities")
                    .map_err(|e| errs.0.extend(e.0))
                    .ok()
            } else {
                None
            };
            if display_name.is_none()
                && !r.set_roles
                && !r.set_communities
                && !r.set_require_signed
            {
                errs.push(
                    "display_name",
                    "nothing to update: set display_name, set_roles, set_communities or set_require_signed",
                );
            }
            errs.into_result()?;
            Ok(MemberOp::Update {
                id,
                display_name,
                roles,
                communities,
                require_signed: r.set_require_signed.then_some(r.require_signed),
            })
        })
        .await
    }

    async fn bind_certificate(
        &self,
        req: Request<pb::BindCertificateRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        self.apply(&req, "member.bind", &req.get_ref().id, || {
            let r = req.get_ref();
            let certificate = convert::binding_from_pb(r.binding.as_ref(), "binding")?;
            Ok(MemberOp::Bind {
                id: member_id(&r.id)?,
                certificate,
            })
        })
        .await
    }

    async fn unbind_certificate(
        &self,
        req: Request<pb::UnbindCertificateRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        self.apply(&req, "member.unbind", &req.get_ref().id, || {
            let r = req.get_ref();
            let binding = convert::binding_from_pb(r.binding.as_ref(), "binding")?.binding;
            Ok(MemberOp::Unbind {
                id: member_id(&r.id)?,
                binding,
            })
        })
        .await
    }

    async fn suspend_member(
        &self,
        req: Request<pb::SetMemberStatusRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        self.set_status(req, MemberStatus::Suspended).await
    }

    async fn reinstate_member(
        &self,
        req: Request<pb::SetMemberStatusRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        self.set_status(req, MemberStatus::Active).await
    }

    async fn get_member(
        &self,
        req: Request<pb::GetMemberRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let id = req.get_ref().id.clone();
        self.read(&req, "member.get", &id, || {
            let id = member_id(&id)?;
            let registry = self.store.registry();
            let m = registry
                .get(&id)
                .ok_or_else(|| Status::not_found(format!("no member {id}")))?;
            Ok(convert::member_to_pb(m))
        })
        .await
    }

    async fn list_members(
        &self,
        req: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        self.read(&req, "member.list", "", || {
            let r = req.get_ref();
            let role = if r.role.is_empty() {
                None
            } else {
                Some(
                    r.role
                        .parse()
                        .map_err(|e: String| Invalid::one("role", e))?,
                )
            };
            let members = self
                .store
                .registry()
                .members()
                .iter()
                .filter(|m| r.state.is_empty() || m.state == r.state)
                .filter(|m| role.is_none_or(|role| m.roles.contains(role)))
                .map(|m| convert::member_to_pb(m))
                .collect();
            Ok(pb::ListMembersResponse { members })
        })
        .await
    }
}
