//! Publishing, revising, withdrawing and reading submissions over real mTLS.
mod common;

use cbm_hub::pb::{self, GetRequest, ListRequest, PublishRequest, ReviseRequest, WithdrawRequest};
use common::{TestHub, samples};
use tonic::Code;

fn publish(content: pb::SubmissionContent) -> PublishRequest {
    PublishRequest {
        content: Some(content),
        idempotency_key: String::new(),
        ..Default::default()
    }
}

#[tokio::test]
async fn every_kind_is_published_and_read_back_intact() {
    let t = TestHub::start().await;
    let mut ee = t.hub("EE-MFA").await;
    let mut cl = t.hub("CL-MINREL").await;
    for (i, (kind, content)) in samples::every_kind().into_iter().enumerate() {
        let r = ee
            .publish(publish(content.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.revision, 1);
        assert_eq!(
            r.sequence,
            i as u64 + 1,
            "one sequence number per change, from 1"
        );
        assert_eq!(r.content_hash.len(), 64);
        // The publisher and another member (CLEAR/GREEN to all communities) read it back.
        for reader in [&mut ee, &mut cl] {
            let s = reader
                .get(GetRequest {
                    id: r.id.clone(),
                    revision: 0,
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(s.kind, kind);
            assert_eq!(s.publisher, "EE-MFA");
            assert_eq!(s.state, "EE");
            assert_eq!(s.status, "active");
            assert_eq!(
                s.content.as_ref(),
                Some(&content),
                "{kind} content round-trips"
            );
            assert_eq!(s.content_hash, r.content_hash);
            assert_eq!(s.sequence, r.sequence);
        }
    }
    t.stop().await;
}

#[tokio::test]
async fn revise_and_withdraw_keep_history_and_refuse_stale_or_foreign_changes() {
    let t = TestHub::start().await;
    let mut ee = t.hub("EE-MFA").await;
    let (_, content) = samples::every_kind().remove(0);
    let first = ee
        .publish(publish(content.clone()))
        .await
        .unwrap()
        .into_inner();

    let mut v2 = content.clone();
    v2.title = "National strategy, second edition".into();
    let r2 = ee
        .revise(ReviseRequest {
            id: first.id.clone(),
            content: Some(v2.clone()),
            expected_revision: 1,
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r2.revision, r2.sequence), (2, 2));

    // Stale expected revision.
    let stale = ee
        .revise(ReviseRequest {
            id: first.id.clone(),
            content: Some(v2.clone()),
            expected_revision: 1,
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition, "{stale:?}");

    // The kind cannot change.
    let other_kind = samples::envelope("x", "TLP:CLEAR", samples::notice());
    let e = ee
        .revise(ReviseRequest {
            id: first.id.clone(),
            content: Some(other_kind),
            expected_revision: 0,
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("content.body"), "{}", e.message());

    // Another publisher cannot revise or withdraw it (it can see it: permission denied).
    let mut cl = t.hub("CL-MINREL").await;
    let e = cl
        .revise(ReviseRequest {
            id: first.id.clone(),
            content: Some(content.clone()),
            expected_revision: 0,
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = cl
        .withdraw(WithdrawRequest {
            id: first.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // Both revisions stay readable.
    let old = ee
        .get(GetRequest {
            id: first.id.clone(),
            revision: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(old.content.unwrap().title, content.title);
    let latest = cl
        .get(GetRequest {
            id: first.id.clone(),
            revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (latest.revision, latest.content.unwrap().title),
        (2, v2.title.clone())
    );
    let e = ee
        .get(GetRequest {
            id: first.id.clone(),
            revision: 9,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Withdraw: the publisher keeps the content; others see a tombstone.
    let w = ee
        .withdraw(WithdrawRequest {
            id: first.id.clone(),
            reason: "superseded".into(),
            expected_revision: 2,
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((w.revision, w.sequence), (3, 3));
    let own = ee
        .get(GetRequest {
            id: first.id.clone(),
            revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.status, "withdrawn");
    assert!(own.content.is_some());
    let theirs = cl
        .get(GetRequest {
            id: first.id.clone(),
            revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (theirs.status.as_str(), theirs.withdrawal_reason.as_str()),
        ("withdrawn", "superseded")
    );
    assert!(
        theirs.content.is_none(),
        "withdrawn content is not served to others"
    );
    let older = cl
        .get(GetRequest {
            id: first.id.clone(),
            revision: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        older.content.is_none(),
        "older revisions of a withdrawn submission are not served either"
    );

    // A withdrawn submission cannot change again.
    let e = ee
        .withdraw(WithdrawRequest {
            id: first.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    t.stop().await;
}

#[tokio::test]
async fn invalid_input_names_the_field_and_stores_nothing() {
    let t = TestHub::start().await;
    let mut ee = t.hub("EE-MFA").await;
    for (what, content, field) in samples::broken_per_kind() {
        let e = ee.publish(publish(content)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert!(
            e.message().contains(field),
            "{what}: message {:?} does not name {field}",
            e.message()
        );
    }
    let e = ee.publish(PublishRequest::default()).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "content: is required")
    );
    assert_eq!(t.store().head(), 0, "nothing was stored");
    let page = ee
        .list(ListRequest {
            include_withdrawn: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(page.submissions.is_empty());
    t.stop().await;
}

#[tokio::test]
async fn idempotent_retry_returns_the_original_result() {
    let t = TestHub::start().await;
    let mut ee = t.hub("EE-MFA").await;
    let (_, content) = samples::every_kind().remove(1);
    let req = PublishRequest {
        content: Some(content.clone()),
        idempotency_key: "ee-mfa-2026-001".into(),
        ..Default::default()
    };
    let first = ee.publish(req.clone()).await.unwrap().into_inner();
    let again = ee.publish(req.clone()).await.unwrap().into_inner();
    assert_eq!(
        (again.id.as_str(), again.sequence, again.replayed),
        (first.id.as_str(), first.sequence, true)
    );
    assert_eq!(t.store().head(), 1, "the retry stored nothing");

    // Same key, different content: refused.
    let mut other = content.clone();
    other.title = "Something else".into();
    let e = ee
        .publish(PublishRequest {
            content: Some(other),
            idempotency_key: req.idempotency_key.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    // Keys are per member: another member may use the same key.
    let mut ee2 = t.hub("EE-CERT").await;
    let r = ee2.publish(req.clone()).await.unwrap().into_inner();
    assert_ne!(r.id, first.id);
    t.stop().await;
}

#[tokio::test]
async fn concurrent_publishes_get_a_gapless_sequence() {
    let t = TestHub::start().await;
    let mut tasks = Vec::new();
    for (i, member) in ["EE-MFA", "EE-CERT", "CL-MINREL"]
        .iter()
        .cycle()
        .take(60)
        .enumerate()
    {
        let mut client = t.hub(member).await;
        tasks.push(tokio::spawn(async move {
            let mut c = samples::envelope(&format!("notice {i}"), "TLP:CLEAR", samples::notice());
            c.summary = format!("{i}");
            client
                .publish(publish(c))
                .await
                .unwrap()
                .into_inner()
                .sequence
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=60).collect::<Vec<_>>());
    assert_eq!(t.store().head(), 60);
    t.stop().await;
}

#[tokio::test]
async fn restart_keeps_everything_and_continues_the_sequence() {
    let mut t = TestHub::start().await;
    let mut ids = Vec::new();
    {
        let mut ee = t.hub("EE-MFA").await;
        for (_, c) in samples::every_kind() {
            ids.push(ee.publish(publish(c)).await.unwrap().into_inner());
        }
        // A registry change must survive too.
        let mut admin = t.admin("ADMIN").await;
        admin
            .suspend_member(pb::SetMemberStatusRequest {
                id: "CL-CSIRT".into(),
                reason: "test".into(),
            })
            .await
            .unwrap();
    }
    t.restart().await;
    let mut ee = t.hub("EE-MFA").await;
    for r in &ids {
        let s = ee
            .get(GetRequest {
                id: r.id.clone(),
                revision: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (s.sequence, s.content_hash.as_str()),
            (r.sequence, r.content_hash.as_str())
        );
    }
    let next = ee
        .publish(publish(samples::every_kind().remove(0).1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        next.sequence,
        ids.len() as u64 + 1,
        "no gap, no reuse after restart"
    );
    let mut csirt = t.hub("CL-CSIRT").await;
    let e = csirt.list(ListRequest::default()).await.unwrap_err();
    assert_eq!(
        e.code(),
        Code::PermissionDenied,
        "suspension survived the restart"
    );
    t.stop().await;
}

/// No oracle: revise, withdraw and acknowledge of a submission the caller may not see answer
/// NOT_FOUND before any other check (a content error, a reply too long), exactly as for an id
/// that does not exist; a member who may see it but is not its publisher is refused as such.
#[tokio::test]
async fn changes_to_what_the_caller_may_not_see_are_not_found_before_any_other_check() {
    let t = TestHub::start().await;
    let mut ee = t.hub("EE-MFA").await;
    let mut cl = t.hub("CL-MINREL").await;
    let mut red = samples::envelope("hidden", "TLP:RED", samples::notice());
    red.recipients = vec!["EE-CERT".into()];
    let hidden = ee.publish(publish(red.clone())).await.unwrap().into_inner();
    let visible = ee
        .publish(publish(samples::envelope(
            "shown",
            "TLP:CLEAR",
            samples::notice(),
        )))
        .await
        .unwrap()
        .into_inner();
    // A revision that validation would refuse: a deadline in the past, an unknown label.
    let mut bad = red.clone();
    bad.tlp = "TLP:PURPLE".into();
    if let Some(pb::submission_content::Body::Notice(n)) = bad.body.as_mut() {
        n.ack_deadline = "2001-01-01T00:00:00Z".into();
    }
    let revise = |id: &str| ReviseRequest {
        id: id.into(),
        content: Some(bad.clone()),
        expected_revision: 7,
        idempotency_key: String::new(),
        ..Default::default()
    };
    let withdraw = |id: &str| WithdrawRequest {
        id: id.into(),
        reason: "x".repeat(5000),
        ..Default::default()
    };
    let absent = "00000000-0000-4000-8000-000000000000";
    for id in [hidden.id.as_str(), absent] {
        let e = cl.revise(revise(id)).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "revise {id}: {e:?}");
        let e = cl.withdraw(withdraw(id)).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "withdraw {id}: {e:?}");
        let e = t
            .directory("CL-MINREL")
            .await
            .acknowledge(pb::AcknowledgeRequest {
                notice_id: id.into(),
                reply: "y".repeat(5000),
                contact_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "acknowledge {id}: {e:?}");
    }
    // Visible but not the caller's: refused as such, still before the content is looked at.
    let e = cl.revise(revise(&visible.id)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = cl.withdraw(withdraw(&visible.id)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // The publisher gets the content errors.
    let e = ee.revise(revise(&hidden.id)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    t.stop().await;
}

/// The attachment limits of README "Limits": at most 10, each at most 1 MiB, 2 MiB in all, each
/// refused as INVALID_ARGUMENT naming the field, nothing stored.
#[tokio::test]
async fn attachment_limits_are_refused_as_the_limits_table_says() {
    let t = TestHub::start().await;
    let mut ee = t.hub("EE-MFA").await;
    let attachment = |i: usize, bytes: usize| pb::Attachment {
        name: format!("a{i}.pdf"),
        media_type: "application/pdf".into(),
        content: vec![b'x'; bytes].into(),
        ..Default::default()
    };
    let with = |attachments: Vec<pb::Attachment>| {
        let mut c = samples::envelope("attached", "TLP:CLEAR", samples::notice());
        c.attachments = attachments;
        publish(c)
    };
    let cases = [
        (
            (0..11).map(|i| attachment(i, 10)).collect(),
            "content.attachments",
        ),
        (
            vec![attachment(0, 1024 * 1024 + 1)],
            "content.attachments[0].content",
        ),
        (
            (0..3)
                .map(|i| attachment(i, 800 * 1024))
                .collect::<Vec<_>>(),
            "content.attachments",
        ),
    ];
    for (attachments, field) in cases {
        let e = ee.publish(with(attachments)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains(field), "{field}: {}", e.message());
    }
    let listed = ee.list(ListRequest::default()).await.unwrap().into_inner();
    assert!(listed.submissions.is_empty(), "nothing stored");
    t.stop().await;
}
