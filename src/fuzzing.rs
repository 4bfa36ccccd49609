//! Entry points shared by the fuzz targets (`fuzz/`) and the malformed-input property tests:
//! every request decoder the hub exposes, and validation of what decodes. They must never
//! panic, whatever the bytes.
use prost::Message;

use crate::{
    convert,
    domain::{
        catalogue::Catalogue,
        member::{Member, MemberStatus, Registry, Roles},
        validate::{self, Context},
    },
    feed::{filter::Filter, wire::FeedEvent},
    pb,
};

/// A small registry for validation: two members in one community.
pub fn sample_registry() -> Registry {
    let m = |id: &str| Member {
        id: id.into(),
        state: "EE".into(),
        display_name: id.into(),
        roles: Roles::default(),
        communities: vec!["OSCE".into()],
        status: MemberStatus::Active,
        bindings: vec![],
        created_at: String::new(),
        updated_at: String::new(),
        require_signed: false,
    };
    Registry::new([m("EE-MFA"), m("CL-CSIRT")])
}

/// Validates content; every error must name a field under `content` with a reason.
pub fn validate_content(
    registry: &Registry,
    catalogue: &Catalogue,
    content: &pb::SubmissionContent,
) {
    let ctx = Context {
        registry,
        catalogue,
        now: time::OffsetDateTime::now_utc(),
        previous: None,
    };
    if let Err(errors) = validate::content(&ctx, content, "content") {
        assert!(!errors.0.is_empty());
        for e in errors.0 {
            assert!(e.field.starts_with("content"), "{}", e.field);
            assert!(!e.reason.is_empty());
        }
    }
}

/// Decodes `bytes` as every request message, and checks what decodes.
pub fn decode_all(registry: &Registry, catalogue: &Catalogue, bytes: &[u8]) {
    if let Ok(r) = pb::PublishRequest::decode(bytes)
        && let Some(c) = r.content.as_ref()
    {
        validate_content(registry, catalogue, c);
    }
    if let Ok(r) = pb::ReviseRequest::decode(bytes)
        && let Some(c) = r.content.as_ref()
    {
        validate_content(registry, catalogue, c);
    }
    let _ = pb::WithdrawRequest::decode(bytes);
    let _ = pb::GetRequest::decode(bytes);
    let _ = pb::ListRequest::decode(bytes);
    if let Ok(r) = pb::SubscribeRequest::decode(bytes) {
        let _ = Filter::parse(&r);
    }
    if let Ok(r) = pb::RegisterMemberRequest::decode(bytes)
        && let Some(m) = r.member.as_ref()
    {
        let _ = convert::member_from_registration(m, "member");
    }
    if let Ok(r) = pb::BindCertificateRequest::decode(bytes) {
        let _ = convert::binding_from_pb(r.binding.as_ref(), "binding");
    }
    let _ = pb::AuditQuery::decode(bytes);
    let _ = pb::AccessLogRequest::decode(bytes);
    let _ = FeedEvent::decode(bytes).map(FeedEvent::into_fields);
}
