//! Input built to break the hub's arithmetic or string handling gets a clear answer over mTLS
//! and changes nothing: a time zone with a multi-byte character where a digit belongs, and page
//! tokens or cursors at the top of the u64 range.
mod common;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use cbm_hub::pb::{
    self, AccessLogRequest, ExportRequest, ListRequest, PublishRequest, audit_client::AuditClient,
    export_item::Item, submission_content::Body,
};
use common::{TestHub, samples};
use tonic::Code;

fn contact_in(time_zone: &str) -> pb::SubmissionContent {
    let mut body = samples::point_of_contact();
    if let Body::PointOfContact(p) = &mut body {
        p.time_zone = time_zone.into();
    }
    samples::envelope("Point of contact", "TLP:CLEAR", body)
}

fn publish(content: pb::SubmissionContent) -> PublishRequest {
    PublishRequest {
        content: Some(content),
        idempotency_key: String::new(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_time_zone_with_a_multibyte_character_is_refused_naming_the_field() {
    let t = TestHub::start().await;
    let mut ee = t.hub("EE-MFA").await;
    // "é" is two bytes: each of these is six bytes after "UTC", as "+02:00" is.
    for bad in [
        "UTC+0é00",
        "UTC+00é0",
        "UTC+é:00",
        "UTC-00:é",
        "UTC+0\u{301}:0",
    ] {
        let e = ee.publish(publish(contact_in(bad))).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad}: {e:?}");
        assert!(
            e.message()
                .contains("content.body.point_of_contact.time_zone")
                && e.message().contains("is not an IANA time zone"),
            "{bad}: {}",
            e.message()
        );
    }
    assert_eq!(t.store().head(), 0, "nothing was stored");
    // The same connection goes on serving, and offsets written with digits are accepted.
    for good in ["UTC+02:00", "UTC-03:30", "UTC", "Europe/Tallinn"] {
        ee.publish(publish(contact_in(good)))
            .await
            .unwrap_or_else(|e| panic!("{good}: {e:?}"));
    }
    t.stop().await;
}

fn token(n: u64) -> String {
    URL_SAFE_NO_PAD.encode(n.to_be_bytes())
}

#[tokio::test]
async fn page_tokens_and_cursors_at_the_top_of_the_range_give_empty_pages() {
    let t = TestHub::start().await;
    let mut ee = t.hub("EE-MFA").await;
    let id = ee
        .publish(publish(samples::envelope(
            "Strategy",
            "TLP:CLEAR",
            samples::policy_document(),
        )))
        .await
        .unwrap()
        .into_inner()
        .id;
    let mut auditor = AuditClient::new(t.channel("AUDITOR").await);
    let mut own = AuditClient::new(t.channel("EE-MFA").await);
    for top in [u64::MAX, u64::MAX - 1] {
        let list = ee
            .list(ListRequest {
                page_token: token(top),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(list.submissions.is_empty() && list.next_page_token.is_empty());

        let page = auditor
            .query(pb::AuditQuery {
                page_token: token(top),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.entries.is_empty() && page.next_page_token.is_empty());

        let log = own
            .access_log(AccessLogRequest {
                submission_id: id.clone(),
                page_token: token(top),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(log.records.is_empty() && log.next_page_token.is_empty());

        let mut export = auditor
            .export(ExportRequest {
                after_sequence: top,
            })
            .await
            .unwrap()
            .into_inner();
        while let Some(item) = export.message().await.unwrap() {
            assert!(
                !matches!(item.item, Some(Item::Entry(_))),
                "no entry follows {top}"
            );
        }
    }
    // The directory's token is text: the highest key sorts after every contact.
    let highest = URL_SAFE_NO_PAD.encode(["\u{10FFFF}"; 4].join("\0"));
    let contacts = t
        .directory("EE-MFA")
        .await
        .list_contacts(pb::ListContactsRequest {
            page_token: highest,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(contacts.contacts.is_empty() && contacts.next_page_token.is_empty());
    // Ordinary pages still start from the beginning.
    let first = ee.list(ListRequest::default()).await.unwrap().into_inner();
    assert_eq!(first.submissions.len(), 1);
    t.stop().await;
}
