//! Input built to break the hub's string handling gets a clear answer over mTLS and changes
//! nothing: a time zone with a multi-byte character where a digit belongs.
mod common;

use cbm_hub::pb::{self, PublishRequest, submission_content::Body};
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
