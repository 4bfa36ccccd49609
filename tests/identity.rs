//! Who gets in, and what each role may do: identity from the certificate only.
mod common;

use cbm_hub::{
    pb::{
        self, GetRequest, ListRequest, PublishRequest, WhoAmIRequest, certificate_binding::Binding,
    },
    tls::devpki::{DevCa, LeafSpec},
};
use common::{TestHub, connect, samples, sha256_hex};
use tonic::Code;

fn notice() -> PublishRequest {
    PublishRequest {
        content: Some(samples::envelope("n", "TLP:CLEAR", samples::notice())),
        idempotency_key: String::new(),
        ..Default::default()
    }
}

#[tokio::test]
async fn certificate_from_an_unknown_ca_fails_the_handshake() {
    let t = TestHub::start().await;
    let rogue = DevCa::generate("rogue CA").unwrap();
    // Same member name, other CA: names mean nothing without the chain.
    let cert = rogue.issue(&LeafSpec::client("EE-MFA", 30)).unwrap();
    let result = connect(t.addr(), &t.ca.cert_pem, &cert).await;
    let refused = match result {
        Err(_) => true,
        // rustls clients may report the alert only on first use (TLS 1.3).
        Ok(channel) => pb::hub_client::HubClient::new(channel)
            .who_am_i(WhoAmIRequest {})
            .await
            .is_err(),
    };
    assert!(refused);
    t.stop().await;
}

#[tokio::test]
async fn valid_but_unregistered_certificate_is_unauthenticated() {
    let t = TestHub::start().await;
    let cert = t.ca.issue(&LeafSpec::client("FI-MFA", 30)).unwrap();
    let mut hub = pb::hub_client::HubClient::new(t.channel_with(&cert).await.unwrap());
    let e = hub.who_am_i(WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(
        e.message().contains(&sha256_hex(&cert.cert_der)),
        "names the certificate: {}",
        e.message()
    );
    let e = hub.publish(notice()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    t.stop().await;
}

#[tokio::test]
async fn a_common_name_claims_nothing() {
    let t = TestHub::start().await;
    // A certificate of the right CA whose CN is an existing member's id, but which is not bound.
    let cert = t.ca.issue(&LeafSpec::client("EE-MFA", 30)).unwrap();
    let mut hub = pb::hub_client::HubClient::new(t.channel_with(&cert).await.unwrap());
    assert_eq!(
        hub.who_am_i(WhoAmIRequest {}).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    t.stop().await;
}

#[tokio::test]
async fn roles_decide_what_a_member_may_do() {
    let t = TestHub::start().await;
    // A subscriber-only member cannot publish.
    let mut csirt = t.hub("CL-CSIRT").await;
    let e = csirt.publish(notice()).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("publisher"), "{}", e.message());
    // ... but can read.
    csirt.list(ListRequest::default()).await.unwrap();
    // A publisher cannot administer.
    let mut admin_as_ee = t.admin("EE-MFA").await;
    let e = admin_as_ee
        .list_members(pb::ListMembersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // An admin cannot read content (admin and auditor roles see metadata only).
    let mut ee = t.hub("EE-MFA").await;
    let id = ee.publish(notice()).await.unwrap().into_inner().id;
    let mut admin = t.hub("ADMIN").await;
    let e = admin.get(GetRequest { id, revision: 0 }).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Everybody may ask who it is.
    let who = admin.who_am_i(WhoAmIRequest {}).await.unwrap().into_inner();
    assert_eq!(
        (who.member.unwrap().id.as_str(), who.bound_by.as_str()),
        ("ADMIN", "cert_sha256")
    );
    t.stop().await;
}

#[tokio::test]
async fn suspension_takes_effect_on_the_next_request_and_reinstatement_restores() {
    let t = TestHub::start().await;
    let mut ee = t.hub("EE-MFA").await;
    ee.publish(notice()).await.unwrap();
    let mut admin = t.admin("ADMIN").await;
    admin
        .suspend_member(pb::SetMemberStatusRequest {
            id: "EE-MFA".into(),
            reason: "test".into(),
        })
        .await
        .unwrap();
    // Same open connection: refused now.
    for e in [
        ee.publish(notice()).await.unwrap_err(),
        ee.who_am_i(WhoAmIRequest {}).await.unwrap_err(),
    ] {
        assert_eq!(e.code(), Code::PermissionDenied);
        assert!(e.message().contains("suspended"), "{}", e.message());
    }
    admin
        .reinstate_member(pb::SetMemberStatusRequest {
            id: "EE-MFA".into(),
            reason: String::new(),
        })
        .await
        .unwrap();
    ee.publish(notice()).await.unwrap();
    t.stop().await;
}

#[tokio::test]
async fn member_administration_over_mtls() {
    let t = TestHub::start().await;
    let mut admin = t.admin("ADMIN").await;
    let new_cert = t.ca.issue(&LeafSpec::client("FI-MFA", 30)).unwrap();
    let sha = sha256_hex(&new_cert.cert_der);
    let member = pb::Member {
        id: "FI-MFA".into(),
        state: "FI".into(),
        display_name: "Finland, Ministry for Foreign Affairs".into(),
        roles: vec!["publisher".into(), "subscriber".into()],
        communities: vec!["OSCE".into()],
        bindings: vec![pb::CertificateBinding {
            binding: Some(Binding::CertSha256(sha.clone())),
            note: "first".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let m = admin
        .register_member(pb::RegisterMemberRequest {
            member: Some(member.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (m.status.as_str(), m.created_at.is_empty()),
        ("active", false)
    );
    // The new member can act at once.
    let mut fi = pb::hub_client::HubClient::new(t.channel_with(&new_cert).await.unwrap());
    assert_eq!(
        fi.who_am_i(WhoAmIRequest {})
            .await
            .unwrap()
            .into_inner()
            .member
            .unwrap()
            .id,
        "FI-MFA"
    );

    // Duplicate id, binding owned by another member, bad fields: refused with the right codes.
    let e = admin
        .register_member(pb::RegisterMemberRequest {
            member: Some(member.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    let mut thief = member.clone();
    thief.id = "XX-THIEF".into();
    let e = admin
        .register_member(pb::RegisterMemberRequest {
            member: Some(thief),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    assert!(e.message().contains("FI-MFA"), "{}", e.message());
    let mut bad = member.clone();
    bad.id = "fi mfa".into();
    bad.roles = vec!["king".into()];
    let e = admin
        .register_member(pb::RegisterMemberRequest { member: Some(bad) })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("member.id") && e.message().contains("member.roles[0]"),
        "{}",
        e.message()
    );

    // Rotation: bind a second certificate (by SPKI), unbind the first.
    let rotated = t.ca.issue(&LeafSpec::client("FI-MFA", 30)).unwrap();
    let facts = cbm_hub::tls::identity::certificate_facts(&rotated.cert_der, "").unwrap();
    admin
        .bind_certificate(pb::BindCertificateRequest {
            id: "FI-MFA".into(),
            binding: Some(pb::CertificateBinding {
                binding: Some(Binding::SpkiSha256(facts.spki_sha256.clone())),
                note: "rotated".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    admin
        .unbind_certificate(pb::UnbindCertificateRequest {
            id: "FI-MFA".into(),
            binding: Some(pb::CertificateBinding {
                binding: Some(Binding::CertSha256(sha)),
                note: String::new(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    assert_eq!(
        fi.who_am_i(WhoAmIRequest {}).await.unwrap_err().code(),
        Code::Unauthenticated,
        "old certificate unbound"
    );
    let mut fi2 = pb::hub_client::HubClient::new(t.channel_with(&rotated).await.unwrap());
    assert_eq!(
        fi2.who_am_i(WhoAmIRequest {})
            .await
            .unwrap()
            .into_inner()
            .bound_by,
        "spki_sha256"
    );
    // The last binding of an active member stays: removing it would lock the member out.
    let e = admin
        .unbind_certificate(pb::UnbindCertificateRequest {
            id: "FI-MFA".into(),
            binding: Some(pb::CertificateBinding {
                binding: Some(Binding::SpkiSha256(facts.spki_sha256)),
                note: String::new(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert!(e.message().contains("only binding"), "{}", e.message());

    // Update roles and communities.
    let m = admin
        .update_member(pb::UpdateMemberRequest {
            id: "FI-MFA".into(),
            set_roles: true,
            roles: vec!["subscriber".into()],
            set_communities: true,
            communities: vec!["UN".into(), "OSCE".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (m.roles, m.communities),
        (
            vec!["subscriber".to_string()],
            vec!["OSCE".to_string(), "UN".to_string()]
        )
    );
    assert_eq!(
        fi2.publish(notice()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let e = admin
        .get_member(pb::GetMemberRequest {
            id: "NO-ONE".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let list = admin
        .list_members(pb::ListMembersRequest {
            state: "FI".into(),
            role: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.members.len(), 1);
    t.stop().await;
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    let t = TestHub::start().await;
    let channel = t.channel("CL-CSIRT").await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let r = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "cbm.v1.Hub".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut refl = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected {resp:?}")
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in ["cbm.v1.Hub", "cbm.v1.MemberAdmin", "grpc.health.v1.Health"] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }

    // The same through v1alpha, which many tools speak only; both list both versions.
    use tonic_reflection::pb::v1alpha as alpha;
    let mut refl =
        alpha::server_reflection_client::ServerReflectionClient::new(t.channel("CL-CSIRT").await);
    let req = alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(alpha_list)) =
        resp.message_response
    else {
        panic!("unexpected {resp:?}")
    };
    let alpha_names: Vec<_> = alpha_list.service.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(alpha_names.len(), names.len(), "{alpha_names:?} {names:?}");
    for expected in [
        "cbm.v1.Hub",
        "cbm.v1.Feed",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            alpha_names.contains(&expected),
            "{expected} not in {alpha_names:?}"
        );
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    // A v1alpha client learns a method's types: the file defining cbm.v1.Hub.
    let req = alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "cbm.v1.Hub".into(),
            ),
        ),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        resp.message_response
    else {
        panic!("unexpected {resp:?}")
    };
    assert!(!files.file_descriptor_proto.is_empty());
    t.stop().await;
}
