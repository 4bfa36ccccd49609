//! Changes administrators make to the registry (domain.md, members: "the certificates bound
//! to it (several, to allow rotation)"; identity comes from the certificate only, so a binding
//! belongs to one member).
use super::Refusal;
use crate::domain::member::{Binding, BoundCertificate, Member, MemberStatus, Registry, Roles};

/// A change to the registry, already checked field by field by the caller.
#[derive(Debug, Clone)]
pub enum MemberOp {
    Register(Member),
    Update {
        id: String,
        display_name: Option<String>,
        roles: Option<Roles>,
        communities: Option<Vec<String>>,
        /// Whether changes must be signed, when it changes.
        require_signed: Option<bool>,
    },
    Bind {
        id: String,
        certificate: BoundCertificate,
    },
    Unbind {
        id: String,
        binding: Binding,
    },
    SetStatus {
        id: String,
        status: MemberStatus,
        /// Why, as the admin gave it: kept in the audit entry.
        reason: String,
    },
}

impl MemberOp {
    /// The audit action name.
    pub fn action(&self) -> &'static str {
        match self {
            MemberOp::Register(_) => "member.register",
            MemberOp::Update { .. } => "member.update",
            MemberOp::Bind { .. } => "member.bind",
            MemberOp::Unbind { .. } => "member.unbind",
            MemberOp::SetStatus {
                status: MemberStatus::Suspended,
                ..
            } => "member.suspend",
            MemberOp::SetStatus {
                status: MemberStatus::Active,
                ..
            } => "member.reinstate",
        }
    }

    /// What the audit entry records beside the action: a suspension's or reinstatement's reason.
    pub fn detail(&self) -> &str {
        match self {
            MemberOp::SetStatus { reason, .. } => reason,
            _ => "",
        }
    }

    pub fn member_id(&self) -> &str {
        match self {
            MemberOp::Register(m) => &m.id,
            MemberOp::Update { id, .. }
            | MemberOp::Bind { id, .. }
            | MemberOp::Unbind { id, .. }
            | MemberOp::SetStatus { id, .. } => id,
        }
    }
}

/// Applies `op` to `registry` (the writer's working copy) and returns the member as it now is.
/// Refusals leave the registry unchanged.
pub fn apply(registry: &mut Registry, op: MemberOp, now: &str) -> Result<Member, Refusal> {
    let existing = |reg: &Registry, id: &str| {
        reg.get(id)
            .map(|m| (**m).clone())
            .ok_or_else(|| Refusal::not_found(format!("no member {id}")))
    };
    let member = match op {
        MemberOp::Register(mut m) => {
            if registry.contains(&m.id) {
                return Err(Refusal::exists(
                    "",
                    format!("member {} already exists", m.id),
                ));
            }
            for b in &m.bindings {
                ensure_free(registry, &b.binding, &m.id)?;
            }
            m.status = MemberStatus::Active;
            m.created_at = now.to_string();
            m
        }
        MemberOp::Update {
            id,
            display_name,
            roles,
            communities,
            require_signed,
        } => {
            let mut m = existing(registry, &id)?;
            if let Some(required) = require_signed {
                m.require_signed = required;
            }
            if let Some(name) = display_name {
                m.display_name = name;
            }
            if let Some(roles) = roles {
                m.roles = roles;
            }
            if let Some(c) = communities {
                m.communities = c;
            }
            m
        }
        MemberOp::Bind { id, certificate } => {
            let mut m = existing(registry, &id)?;
            ensure_free(registry, &certificate.binding, &id)?;
            match m
                .bindings
                .iter_mut()
                .find(|b| b.binding == certificate.binding)
            {
                // Binding again is idempotent; the note and issuing CA are updated (how an
                // administrator ties a binding stored without its CA to one).
                Some(b) => *b = certificate,
                None => m.bindings.push(certificate),
            }
            m
        }
        MemberOp::Unbind { id, binding } => {
            let mut m = existing(registry, &id)?;
            let before = m.bindings.len();
            m.bindings.retain(|b| b.binding != binding);
            if m.bindings.len() == before {
                return Err(Refusal::not_found(format!(
                    "member {id} has no binding {binding}"
                )));
            }
            // An active member left without a certificate is locked out by accident; a
            // deliberate lock-out is a suspension, which the audit log explains.
            if m.bindings.is_empty() && m.is_active() {
                return Err(Refusal::precondition(
                    "only_binding",
                    "",
                    format!(
                        "{binding} is member {id}'s only binding: bind another first, or suspend the member"
                    ),
                ));
            }
            m
        }
        MemberOp::SetStatus { id, status, .. } => {
            let mut m = existing(registry, &id)?;
            m.status = status;
            m
        }
    };
    let mut member = member;
    member.updated_at = now.to_string();
    registry.insert(member.clone());
    Ok(member)
}

fn ensure_free(registry: &Registry, binding: &Binding, id: &str) -> Result<(), Refusal> {
    match registry.owner_of(binding) {
        Some(owner) if owner != id => Err(Refusal::exists(
            "",
            format!("{binding} is already bound to member {owner}"),
        )),
        _ => Ok(()),
    }
}
