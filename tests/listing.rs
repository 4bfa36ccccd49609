//! List filters, paging with stable tokens, and TLP audiences on get and list.
mod common;

use std::collections::HashSet;

use cbm_hub::pb::{GetRequest, ListRequest, PublishRequest, ReviseRequest, WithdrawRequest};
use common::{TestHub, samples};
use tonic::Code;

async fn publish(t: &TestHub, member: &str, content: cbm_hub::pb::SubmissionContent) -> String {
    let mut c = t.hub(member).await;
    c.publish(PublishRequest {
        content: Some(content),
        idempotency_key: String::new(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .id
}

async fn visible_ids(t: &TestHub, member: &str, req: ListRequest) -> Vec<String> {
    let mut c = t.hub(member).await;
    let mut ids = Vec::new();
    let mut req = req;
    for _ in 0..100 {
        let page = c.list(req.clone()).await.unwrap().into_inner();
        ids.extend(page.submissions.into_iter().map(|s| s.id));
        if page.next_page_token.is_empty() {
            return ids;
        }
        req.page_token = page.next_page_token;
    }
    panic!("paging did not end");
}

#[tokio::test]
async fn filters_select_and_pages_cover_everything_once_in_order() {
    let t = TestHub::start().await;
    let mut all = Vec::new();
    for (i, (_, content)) in samples::every_kind().into_iter().enumerate() {
        let member = if i % 2 == 0 { "EE-MFA" } else { "CL-MINREL" };
        let mut c = content.clone();
        c.cbm_refs = vec![if i < 3 { "UN-CBM-1" } else { "OAS-CBM-11" }.into()];
        all.push((member, c.tlp.clone(), publish(&t, member, c).await));
    }
    let everything = visible_ids(
        &t,
        "CL-CSIRT",
        ListRequest {
            page_size: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        everything,
        all.iter().map(|a| a.2.clone()).collect::<Vec<_>>(),
        "order of first publication, no repeats"
    );

    let by_kind = visible_ids(
        &t,
        "CL-CSIRT",
        ListRequest {
            kinds: vec!["notice".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_kind, vec![all[5].2.clone()]);
    let by_state = visible_ids(
        &t,
        "CL-CSIRT",
        ListRequest {
            states: vec!["CL".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_state.len(), 3);
    let by_publisher = visible_ids(
        &t,
        "CL-CSIRT",
        ListRequest {
            publishers: vec!["EE-MFA".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_publisher.len(), 3);
    let by_label = visible_ids(
        &t,
        "CL-CSIRT",
        ListRequest {
            tlp: vec!["TLP:GREEN".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        by_label.len(),
        all.iter().filter(|a| a.1 == "TLP:GREEN").count()
    );
    let by_ref = visible_ids(
        &t,
        "CL-CSIRT",
        ListRequest {
            cbm_refs: vec!["OAS-CBM-11".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        by_ref,
        all[3..].iter().map(|a| a.2.clone()).collect::<Vec<_>>()
    );

    // updated_since: revise the first; only it is newer than the instant taken before.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let since = cbm_hub::domain::clock::now_rfc3339();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut ee = t.hub("EE-MFA").await;
    let mut v2 = samples::every_kind().remove(0).1;
    v2.title = "v2".into();
    ee.revise(ReviseRequest {
        id: all[0].2.clone(),
        content: Some(v2),
        expected_revision: 1,
        idempotency_key: String::new(),
        ..Default::default()
    })
    .await
    .unwrap();
    let recent = visible_ids(
        &t,
        "CL-CSIRT",
        ListRequest {
            updated_since: since.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(recent, vec![all[0].2.clone()]);
    let older = visible_ids(
        &t,
        "CL-CSIRT",
        ListRequest {
            updated_before: since,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(older, everything[1..].to_vec(), "all but the revised one");

    // text: case-insensitive, in title, summary, notice subject or text; communities.
    let by_text = |text: &str| ListRequest {
        text: text.into(),
        ..Default::default()
    };
    assert_eq!(
        visible_ids(&t, "CL-CSIRT", by_text("V2")).await,
        vec![all[0].2.clone()]
    );
    assert_eq!(
        visible_ids(&t, "CL-CSIRT", by_text("recent INCIDENT")).await,
        vec![all[5].2.clone()],
        "the notice's text"
    );
    assert_eq!(
        visible_ids(&t, "CL-CSIRT", by_text("test submission"))
            .await
            .len(),
        6
    );
    assert!(
        visible_ids(&t, "CL-CSIRT", by_text("nowhere to be found"))
            .await
            .is_empty()
    );
    let mut oas = samples::envelope("Only OAS", "TLP:GREEN", samples::policy_document());
    oas.community = "OAS".into();
    let oas = publish(&t, "CL-MINREL", oas).await;
    let by_community = visible_ids(
        &t,
        "CL-CSIRT",
        ListRequest {
            communities: vec!["OAS".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_community, vec![oas]);

    // Bad filters are named.
    let mut c = t.hub("CL-CSIRT").await;
    for (req, field) in [
        (
            ListRequest {
                kinds: vec!["memo".into()],
                ..Default::default()
            },
            "kinds[0]",
        ),
        (
            ListRequest {
                tlp: vec!["RED".into()],
                ..Default::default()
            },
            "tlp[0]",
        ),
        (
            ListRequest {
                updated_since: "yesterday".into(),
                ..Default::default()
            },
            "updated_since",
        ),
        (
            ListRequest {
                updated_before: "tomorrow".into(),
                ..Default::default()
            },
            "updated_before",
        ),
        (
            ListRequest {
                text: "x".repeat(201),
                ..Default::default()
            },
            "text",
        ),
        (
            ListRequest {
                page_size: 10_000,
                ..Default::default()
            },
            "page_size",
        ),
        (
            ListRequest {
                page_token: "garbage!".into(),
                ..Default::default()
            },
            "page_token",
        ),
    ] {
        let e = c.list(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().starts_with(field), "{field}: {}", e.message());
    }
    t.stop().await;
}

#[tokio::test]
async fn page_tokens_stay_valid_while_the_hub_changes() {
    let t = TestHub::start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            publish(
                &t,
                "EE-MFA",
                samples::envelope(&format!("n{i}"), "TLP:CLEAR", samples::notice()),
            )
            .await,
        );
    }
    let mut c = t.hub("CL-CSIRT").await;
    let first = c
        .list(ListRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Revisions and new publications between pages move nothing already listed.
    let mut ee = t.hub("EE-MFA").await;
    ee.revise(ReviseRequest {
        id: ids[0].clone(),
        content: Some(samples::envelope("n0 v2", "TLP:CLEAR", samples::notice())),
        expected_revision: 0,
        idempotency_key: String::new(),
        ..Default::default()
    })
    .await
    .unwrap();
    ids.push(
        publish(
            &t,
            "EE-MFA",
            samples::envelope("n5", "TLP:CLEAR", samples::notice()),
        )
        .await,
    );
    let rest = visible_ids(
        &t,
        "CL-CSIRT",
        ListRequest {
            page_size: 2,
            page_token: first.next_page_token,
            ..Default::default()
        },
    )
    .await;
    let seen: Vec<_> = first
        .submissions
        .iter()
        .map(|s| s.id.clone())
        .chain(rest)
        .collect();
    assert_eq!(seen, ids);
    t.stop().await;
}

#[tokio::test]
async fn tlp_audiences_on_get_and_list() {
    let t = TestHub::start().await;
    let clear = publish(
        &t,
        "EE-MFA",
        samples::envelope("clear", "TLP:CLEAR", samples::notice()),
    )
    .await;
    let green_all = publish(
        &t,
        "EE-MFA",
        samples::envelope("green", "TLP:GREEN", samples::notice()),
    )
    .await;
    let mut osce = samples::envelope("green osce", "TLP:GREEN", samples::notice());
    osce.community = "OSCE".into();
    let green_osce = publish(&t, "EE-MFA", osce).await;
    let mut amber = samples::envelope("amber", "TLP:AMBER", samples::notice());
    amber.recipients = vec!["CL-MINREL".into()];
    let amber = publish(&t, "EE-MFA", amber).await;
    let mut strict = samples::envelope("amber strict", "TLP:AMBER+STRICT", samples::notice());
    strict.recipients = vec!["EE-CERT".into()];
    let strict = publish(&t, "EE-MFA", strict).await;
    let mut red = samples::envelope("red", "TLP:RED", samples::notice());
    red.recipients = vec!["CL-CSIRT".into()];
    let red = publish(&t, "EE-MFA", red).await;

    let all: HashSet<_> = [&clear, &green_all, &green_osce, &amber, &strict, &red]
        .into_iter()
        .cloned()
        .collect();
    let expect = |ids: &[&String]| ids.iter().map(|s| (*s).clone()).collect::<HashSet<_>>();
    let cases = [
        ("EE-MFA", all.clone()),
        (
            "EE-CERT",
            expect(&[&clear, &green_all, &green_osce, &strict]),
        ),
        ("CL-MINREL", expect(&[&clear, &green_all, &amber])),
        ("CL-CSIRT", expect(&[&clear, &green_all, &red])),
    ];
    for (member, expected) in cases {
        let listed: HashSet<_> = visible_ids(&t, member, ListRequest::default())
            .await
            .into_iter()
            .collect();
        assert_eq!(listed, expected, "list for {member}");
        let mut c = t.hub(member).await;
        for id in &all {
            let got = c
                .get(GetRequest {
                    id: id.clone(),
                    revision: 0,
                })
                .await;
            match got {
                Ok(_) => assert!(expected.contains(id), "{member} read {id}"),
                Err(e) => {
                    assert!(!expected.contains(id), "{member} refused {id}: {e:?}");
                    // Same answer as for an id that does not exist: existence does not leak.
                    assert_eq!(e.code(), Code::NotFound);
                }
            }
        }
    }
    // Narrowing by revision: CL-MINREL loses the AMBER item, including its older revision.
    let mut ee = t.hub("EE-MFA").await;
    let mut narrowed = samples::envelope("amber v2", "TLP:AMBER", samples::notice());
    narrowed.recipients = vec!["EE-CERT".into()];
    ee.revise(ReviseRequest {
        id: amber.clone(),
        content: Some(narrowed),
        expected_revision: 1,
        idempotency_key: String::new(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cl = t.hub("CL-MINREL").await;
    for revision in [0, 1] {
        let e = cl
            .get(GetRequest {
                id: amber.clone(),
                revision,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
    }
    // EE-CERT now sees revision 2 but not revision 1, which was not addressed to it.
    let mut cert = t.hub("EE-CERT").await;
    cert.get(GetRequest {
        id: amber.clone(),
        revision: 2,
    })
    .await
    .unwrap();
    assert_eq!(
        cert.get(GetRequest {
            id: amber.clone(),
            revision: 1
        })
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    t.stop().await;
}

/// A change to a list request.
type Edit = fn(&mut ListRequest);

/// A withdrawal keeps its content for the publisher only: the filters of another reader's
/// search see the tombstone it receives, so no guess at the withdrawn text, label, community
/// or references changes its answer. The publisher still finds its own by text.
#[tokio::test]
async fn filters_never_read_withdrawn_content_of_others() {
    let t = TestHub::start().await;
    let mut secret = samples::envelope("Withdrawn plan Bluebird", "TLP:GREEN", samples::notice());
    secret.community = "OAS".into();
    secret.cbm_refs = vec!["OAS-CBM-11".into()];
    let id = publish(&t, "CL-MINREL", secret).await;
    let mut cl = t.hub("CL-MINREL").await;
    cl.withdraw(WithdrawRequest {
        id: id.clone(),
        reason: "sent too early".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let withdrawn = |f: Edit| {
        let mut r = ListRequest {
            include_withdrawn: true,
            ..Default::default()
        };
        f(&mut r);
        r
    };
    // CL-CSIRT (in OAS) was in the audience: it receives the tombstone, without content.
    let mut csirt = t.hub("CL-CSIRT").await;
    let all = csirt
        .list(withdrawn(|_| {}))
        .await
        .unwrap()
        .into_inner()
        .submissions;
    assert_eq!(all.len(), 1);
    assert!(all[0].content.is_none() && all[0].status == "withdrawn");
    let pairs: [(Edit, Edit); 4] = [
        (
            |r| r.text = "bluebird".into(),
            |r| r.text = "kingfisher".into(),
        ),
        (
            |r| r.tlp = vec!["TLP:GREEN".into()],
            |r| r.tlp = vec!["TLP:CLEAR".into()],
        ),
        (
            |r| r.communities = vec!["OAS".into()],
            |r| r.communities = vec!["OSCE".into()],
        ),
        (
            |r| r.cbm_refs = vec!["OAS-CBM-11".into()],
            |r| r.cbm_refs = vec!["UN-CBM-1".into()],
        ),
    ];
    for (right, wrong) in pairs {
        let (right, wrong) = (withdrawn(right), withdrawn(wrong));
        let a = visible_ids(&t, "CL-CSIRT", right.clone()).await;
        let b = visible_ids(&t, "CL-CSIRT", wrong.clone()).await;
        assert_eq!(a, b, "a right and a wrong guess answer alike: {right:?}");
        // Identity filters still apply to the tombstone.
        assert_eq!(a, vec![id.clone()], "{right:?}");
    }
    let other_kind = withdrawn(|r| {
        r.text = "bluebird".into();
        r.kinds = vec!["policy_document".into()];
    });
    assert!(visible_ids(&t, "CL-CSIRT", other_kind).await.is_empty());
    // The publisher reads its withdrawn content, and its filters see it.
    let own = |text: &'static str| ListRequest {
        include_withdrawn: true,
        text: text.into(),
        ..Default::default()
    };
    assert_eq!(
        visible_ids(&t, "CL-MINREL", own("bluebird")).await,
        vec![id]
    );
    assert!(
        visible_ids(&t, "CL-MINREL", own("kingfisher"))
            .await
            .is_empty()
    );
    t.stop().await;
}
