//! Conversions between protobuf messages and domain types, in one place.
use crate::{
    domain::{
        Invalid,
        member::{
            Binding, BoundCertificate, Member, MemberStatus, Role, Roles, check_binding,
            check_code, check_member_id,
        },
    },
    pb,
};

pub fn member_to_pb(m: &Member) -> pb::Member {
    pb::Member {
        id: m.id.clone(),
        state: m.state.clone(),
        display_name: m.display_name.clone(),
        roles: m.roles.iter().map(|r| r.as_str().to_string()).collect(),
        communities: m.communities.clone(),
        status: m.status.as_str().to_string(),
        bindings: m.bindings.iter().map(binding_to_pb).collect(),
        created_at: m.created_at.clone(),
        updated_at: m.updated_at.clone(),
        require_signed: m.require_signed,
    }
}

pub fn binding_to_pb(b: &BoundCertificate) -> pb::CertificateBinding {
    use pb::certificate_binding::Binding as B;
    let binding = match &b.binding {
        Binding::CertSha256(v) => B::CertSha256(v.clone()),
        Binding::SpkiSha256(v) => B::SpkiSha256(v.clone()),
        Binding::UriSan(v) => B::UriSan(v.clone()),
    };
    pb::CertificateBinding {
        binding: Some(binding),
        note: b.note.clone(),
        issuer_spki_sha256: b.issuer.clone().unwrap_or_default(),
    }
}

/// A binding from the wire, checked. `path` names the field in errors.
pub fn binding_from_pb(
    b: Option<&pb::CertificateBinding>,
    path: &str,
) -> Result<BoundCertificate, Invalid> {
    use pb::certificate_binding::Binding as B;
    let b = b.ok_or_else(|| Invalid::one(path, "is required"))?;
    let binding = match &b.binding {
        Some(B::CertSha256(v)) => Binding::CertSha256(v.clone()),
        Some(B::SpkiSha256(v)) => Binding::SpkiSha256(v.clone()),
        Some(B::UriSan(v)) => Binding::UriSan(v.clone()),
        None => {
            return Err(Invalid::one(
                path,
                "set one of cert_sha256, spki_sha256, uri_san",
            ));
        }
    };
    check_binding(&binding).map_err(|e| Invalid::one(format!("{path}.{}", binding.kind()), e))?;
    if b.note.chars().count() > 200 {
        return Err(Invalid::one(
            format!("{path}.note"),
            "at most 200 characters",
        ));
    }
    let issuer = if b.issuer_spki_sha256.is_empty() {
        None
    } else {
        let spki = Binding::SpkiSha256(b.issuer_spki_sha256.clone());
        check_binding(&spki).map_err(|e| Invalid::one(format!("{path}.issuer_spki_sha256"), e))?;
        Some(b.issuer_spki_sha256.clone())
    };
    Ok(BoundCertificate {
        binding,
        note: b.note.clone(),
        issuer,
    })
}

/// Roles from the wire: known names, at least one.
pub fn roles_from_pb(roles: &[String], path: &str) -> Result<Roles, Invalid> {
    let mut errs = Invalid::default();
    let mut out = Roles::default();
    for (i, r) in roles.iter().enumerate() {
        match r.parse::<Role>() {
            Ok(role) => out.insert(role),
            Err(e) => errs.push(format!("{path}[{i}]"), e),
        }
    }
    if roles.is_empty() {
        errs.push(path, "needs at least one role");
    }
    errs.into_result().map(|_| out)
}

/// Communities from the wire: valid codes, sorted, unique.
pub fn communities_from_pb(communities: &[String], path: &str) -> Result<Vec<String>, Invalid> {
    let mut errs = Invalid::default();
    for (i, c) in communities.iter().enumerate() {
        if let Err(e) = check_code(c, "community") {
            errs.push(format!("{path}[{i}]"), e);
        }
    }
    if communities.len() > 64 {
        errs.push(path, "at most 64 communities");
    }
    errs.into_result()?;
    let mut out = communities.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

/// A new member from a registration request (status and times are assigned by the store).
pub fn member_from_registration(m: &pb::Member, path: &str) -> Result<Member, Invalid> {
    let mut errs = Invalid::default();
    if let Err(e) = check_member_id(&m.id) {
        errs.push(format!("{path}.id"), e);
    }
    if let Err(e) = check_code(&m.state, "state or organisation code") {
        errs.push(format!("{path}.state"), e);
    }
    crate::domain::validate::fields::required(
        &mut errs,
        &format!("{path}.display_name"),
        &m.display_name,
        200,
        false,
    );
    let roles = roles_from_pb(&m.roles, &format!("{path}.roles"))
        .map_err(|e| errs.0.extend(e.0))
        .ok();
    let communities = communities_from_pb(&m.communities, &format!("{path}.communities"))
        .map_err(|e| errs.0.extend(e.0))
        .ok();
    let mut bindings = Vec::new();
    for (i, b) in m.bindings.iter().enumerate() {
        match binding_from_pb(Some(b), &format!("{path}.bindings[{i}]")) {
            Ok(b)
                if bindings
                    .iter()
                    .any(|x: &BoundCertificate| x.binding == b.binding) =>
            {
                errs.push(format!("{path}.bindings[{i}]"), "appears more than once");
            }
            Ok(b) => bindings.push(b),
            Err(e) => errs.0.extend(e.0),
        }
    }
    errs.into_result()?;
    Ok(Member {
        id: m.id.clone(),
        state: m.state.clone(),
        display_name: m.display_name.clone(),
        roles: roles.unwrap_or_default(),
        communities: communities.unwrap_or_default(),
        status: MemberStatus::Active,
        bindings,
        require_signed: m.require_signed,
        created_at: String::new(),
        updated_at: String::new(),
    })
}

/// A member as stored. Stored members were checked when written; this is lenient only in
/// reporting, so damage shows as an error instead of a panic.
pub fn member_from_stored(m: &pb::Member) -> Result<Member, String> {
    let roles = roles_from_pb(&m.roles, "roles").map_err(|e| e.to_string())?;
    let status = match m.status.as_str() {
        "active" => MemberStatus::Active,
        "suspended" => MemberStatus::Suspended,
        other => return Err(format!("unknown member status {other:?}")),
    };
    let bindings = m
        .bindings
        .iter()
        .map(|b| binding_from_pb(Some(b), "bindings"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok(Member {
        id: m.id.clone(),
        state: m.state.clone(),
        display_name: m.display_name.clone(),
        roles,
        communities: m.communities.clone(),
        status,
        bindings,
        require_signed: m.require_signed,
        created_at: m.created_at.clone(),
        updated_at: m.updated_at.clone(),
    })
}

/// Removes empty strings, empty lists, nulls and emptied objects from a JSON rendering of a
/// protobuf message (whose absent fields serialize as empty values); false when `v` itself is
/// empty. Used for submission files and for STIX properties, which may not be empty.
pub fn prune_empty(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => {
            a.retain_mut(prune_empty);
            !a.is_empty()
        }
        Value::Object(o) => {
            o.retain(|_, v| prune_empty(v));
            !o.is_empty()
        }
        Value::Bool(_) | Value::Number(_) => true,
    }
}
