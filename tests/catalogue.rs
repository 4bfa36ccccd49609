//! Notice templates and their checks against stored state, the CBM catalogue (built-in and
//! added frameworks) and the implementation matrix, over real mTLS.
mod common;

use cbm_hub::pb::{self, PublishRequest, notice::Template, submission_content::Body};
use common::{TestHub, samples};
use tonic::{Code, Status};

async fn try_publish(
    t: &TestHub,
    member: &str,
    content: pb::SubmissionContent,
) -> Result<pb::PublishResponse, Status> {
    t.hub(member)
        .await
        .publish(PublishRequest {
            content: Some(content),
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

fn incident(severity: &str) -> pb::SubmissionContent {
    let mut c = samples::envelope(
        "Incident",
        "TLP:AMBER",
        Body::Notice(pb::Notice {
            category: "incident_notification".into(),
            subject: "Compromised hosts".into(),
            text: "Details follow.".into(),
            severity: severity.into(),
            template: Some(Template::IncidentNotification(pb::IncidentNotification {
                incident_summary: "Hosts of an operator were compromised.".into(),
                affected_sectors: vec!["energy".into()],
                detected_at: "2026-01-01T00:00:00Z".into(),
                status: "ongoing".into(),
                impact: String::new(),
            })),
            ..Default::default()
        }),
    );
    c.recipients = vec!["EE-CERT".into()];
    c
}

fn fields_of(status: &Status) -> Vec<String> {
    status
        .message()
        .split("; ")
        .map(|p| p.split(':').next().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn incident_severity_must_name_a_level_of_the_senders_own_schema() {
    let t = TestHub::start().await;
    let err = try_publish(&t, "CL-MINREL", incident("high"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    assert!(err.message().contains("no active incident severity schema"));

    // Another member's schema does not count.
    let other = samples::envelope("EE schema", "TLP:CLEAR", samples::severity_schema());
    try_publish(&t, "EE-MFA", other).await.unwrap();
    let err = try_publish(&t, "CL-MINREL", incident("high"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    let own = samples::envelope("CL schema", "TLP:CLEAR", samples::severity_schema());
    let schema = try_publish(&t, "CL-MINREL", own).await.unwrap();
    let err = try_publish(&t, "CL-MINREL", incident("apocalyptic"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("content.body.notice.severity:")
            && err.message().contains("low, high"),
        "{}",
        err.message()
    );
    let before = t.store().head();
    assert_eq!(before, 2, "refusals store nothing");
    try_publish(&t, "CL-MINREL", incident("high"))
        .await
        .unwrap();

    // Naming the schema: it must be the sender's own.
    let mut named = incident("low");
    if let Some(Body::Notice(n)) = &mut named.body {
        n.severity_schema = schema.id.clone();
    }
    try_publish(&t, "CL-MINREL", named.clone()).await.unwrap();
    let err = try_publish(&t, "EE-MFA", named).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .starts_with("content.body.notice.severity_schema"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn templates_belong_to_their_category_and_are_complete() {
    let t = TestHub::start().await;
    let notice = |category: &str, template: Option<Template>| {
        let mut c = samples::envelope(
            "Notice",
            "TLP:GREEN",
            Body::Notice(pb::Notice {
                category: category.into(),
                subject: "s".into(),
                text: "t".into(),
                template,
                ..Default::default()
            }),
        );
        c.community = "UN".into();
        c
    };
    let rfa = Template::RequestForAssistance(pb::RequestForAssistance {
        incident_summary: "Ransomware at a hospital.".into(),
        affected_sector: "health".into(),
        assistance_requested: "Forensic support.".into(),
        respond_by: "2099-01-01T00:00:00Z".into(),
    });
    try_publish(
        &t,
        "EE-MFA",
        notice("request_for_assistance", Some(rfa.clone())),
    )
    .await
    .unwrap();

    let err = try_publish(&t, "EE-MFA", notice("request_for_assistance", None))
        .await
        .unwrap_err();
    assert_eq!(
        fields_of(&err),
        ["content.body.notice.request_for_assistance"]
    );
    let err = try_publish(&t, "EE-MFA", notice("information", Some(rfa)))
        .await
        .unwrap_err();
    assert_eq!(
        fields_of(&err),
        ["content.body.notice.request_for_assistance"]
    );
    let incomplete = Template::ConsultationRequest(pb::ConsultationRequest {
        topic: String::new(),
        questions: vec![],
        proposed_date: "2001-01-01".into(),
        respond_by: "2001-01-01T00:00:00Z".into(),
    });
    let err = try_publish(
        &t,
        "EE-MFA",
        notice("consultation_request", Some(incomplete)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let p = "content.body.notice.consultation_request";
    assert_eq!(
        fields_of(&err),
        [
            format!("{p}.topic"),
            format!("{p}.questions"),
            format!("{p}.proposed_date"),
            format!("{p}.respond_by")
        ]
    );
    assert_eq!(t.store().head(), 1);
}

#[tokio::test]
async fn replies_thread_to_a_notice_the_sender_may_see() {
    let t = TestHub::start().await;
    let mut request = incident("");
    if let Some(Body::Notice(n)) = &mut request.body {
        n.category = "information".into();
        n.template = None;
    }
    request.recipients = vec!["CL-MINREL".into()];
    let asked = try_publish(&t, "EE-MFA", request.clone()).await.unwrap();
    let reply = |to: &str| {
        let mut c = request.clone();
        c.recipients = vec!["EE-MFA".into()];
        if let Some(Body::Notice(n)) = &mut c.body {
            n.in_reply_to = to.into();
        }
        c
    };
    let answer = try_publish(&t, "CL-MINREL", reply(&asked.id))
        .await
        .unwrap();
    // EE-CERT is not addressed by the first notice: it cannot reply to it, nor learn it exists.
    let err = try_publish(&t, "EE-CERT", reply(&asked.id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .contains(&format!("no notice {} visible to EE-CERT", asked.id))
    );
    let missing = try_publish(&t, "EE-CERT", reply("00000000-0000-4000-8000-000000000000")).await;
    assert_eq!(
        missing.unwrap_err().message(),
        err.message()
            .replace(&asked.id, "00000000-0000-4000-8000-000000000000")
    );

    let thread = t
        .hub("EE-MFA")
        .await
        .list(pb::ListRequest {
            in_reply_to: asked.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = thread.submissions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [answer.id.as_str()]);
}

#[tokio::test]
async fn the_catalogue_lists_its_frameworks_and_admins_add_new_ones() {
    let mut t = TestHub::start().await;
    let list = t
        .catalogue("CL-CSIRT")
        .await
        .list_frameworks(pb::ListFrameworksRequest::default())
        .await
        .unwrap()
        .into_inner();
    let counts: Vec<_> = list
        .frameworks
        .iter()
        .map(|f| (f.id.as_str(), f.measures.len(), f.origin.as_str()))
        .collect();
    assert_eq!(counts[0], ("UN-CBM", 8, "builtin"));
    assert!(
        counts.contains(&("OAS-CBM", 11, "builtin"))
            && counts.contains(&("GGE-2015-NORM", 11, "builtin"))
    );

    let mut citing = samples::envelope("ASEAN report", "TLP:CLEAR", samples::policy_document());
    citing.cbm_refs = vec!["ASEAN-CBM-2".into()];
    let err = try_publish(&t, "EE-MFA", citing.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("content.cbm_refs[0]"),
        "{}",
        err.message()
    );

    let framework = pb::Framework {
        id: "ASEAN-CBM".into(),
        name: "ASEAN Regional Forum measures".into(),
        measures: (1..=3)
            .map(|n| pb::Measure {
                r#ref: format!("ASEAN-CBM-{n}"),
                number: n.to_string(),
                title: format!("Measure {n}"),
                summary: String::new(),
            })
            .collect(),
        ..Default::default()
    };
    let add = |fw: pb::Framework| pb::AddFrameworkRequest {
        framework: Some(fw),
    };
    let err = t
        .catalogue("EE-MFA")
        .await
        .add_framework(add(framework.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let mut broken = framework.clone();
    broken.id = "ASEAN-X".into();
    broken.measures[1].title.clear();
    let err = t
        .catalogue("ADMIN")
        .await
        .add_framework(add(broken))
        .await
        .unwrap_err();
    assert_eq!(
        fields_of(&err),
        [
            "framework.measures[0].ref",
            "framework.measures[1].ref",
            "framework.measures[1].title",
            "framework.measures[2].ref"
        ]
    );
    let added = t
        .catalogue("ADMIN")
        .await
        .add_framework(add(framework.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(added.origin, "added");
    try_publish(&t, "EE-MFA", citing.clone()).await.unwrap();
    let err = t
        .catalogue("ADMIN")
        .await
        .add_framework(add(framework))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);

    // Kept across a restart.
    t.restart().await;
    try_publish(&t, "EE-MFA", citing).await.unwrap();
    let only = t
        .catalogue("EE-MFA")
        .await
        .list_frameworks(pb::ListFrameworksRequest {
            frameworks: vec!["ASEAN-CBM".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(only.frameworks.len(), 1);
    assert_eq!(only.frameworks[0].measures.len(), 3);
}

#[tokio::test]
async fn the_matrix_shows_the_latest_visible_submission_per_state_and_measure() {
    let t = TestHub::start().await;
    let doc = |title: &str, tlp: &str, refs: &[&str], review_by: &str| {
        let mut c = samples::envelope(title, tlp, samples::policy_document());
        c.cbm_refs = refs.iter().map(|r| r.to_string()).collect();
        c.review_by = review_by.into();
        c
    };
    try_publish(
        &t,
        "EE-MFA",
        doc("Old strategy", "TLP:CLEAR", &["UN-CBM-3"], "2099-01-01"),
    )
    .await
    .unwrap();
    let newer = try_publish(
        &t,
        "EE-CERT",
        doc(
            "New strategy",
            "TLP:CLEAR",
            &["UN-CBM-3", "UN-CBM-5"],
            "2020-01-01",
        ),
    )
    .await
    .unwrap();
    let mut amber = doc("Chile to Estonia only", "TLP:AMBER", &["UN-CBM-3"], "");
    amber.recipients = vec!["EE-MFA".into()];
    let private = try_publish(&t, "CL-MINREL", amber).await.unwrap();
    // Notices are exchanges, not reporting: left out.
    let mut n = samples::envelope("Notice", "TLP:CLEAR", samples::notice());
    n.cbm_refs = vec!["UN-CBM-4".into()];
    try_publish(&t, "CL-MINREL", n).await.unwrap();

    let matrix = |member: &'static str| {
        let t = &t;
        async move {
            t.catalogue(member)
                .await
                .implementation_matrix(pb::MatrixRequest {
                    frameworks: vec!["UN-CBM".into()],
                    states: vec![],
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let seen_by_csirt = matrix("CL-CSIRT").await;
    assert_eq!(seen_by_csirt.measures.len(), 8);
    let states: Vec<_> = seen_by_csirt
        .rows
        .iter()
        .map(|r| r.state.as_str())
        .collect();
    assert_eq!(states, ["CL", "EE"], "the hub's own members report nothing");
    let cells = |m: &pb::Matrix, state: &str| -> Vec<(String, String, u32, bool)> {
        m.rows
            .iter()
            .find(|r| r.state == state)
            .unwrap()
            .cells
            .iter()
            .map(|c| {
                (
                    c.measure_ref.clone(),
                    c.submission_id.clone(),
                    c.count,
                    c.overdue,
                )
            })
            .collect()
    };
    assert_eq!(
        cells(&seen_by_csirt, "EE"),
        [
            ("UN-CBM-3".into(), newer.id.clone(), 2, true),
            ("UN-CBM-5".into(), newer.id.clone(), 1, true)
        ]
    );
    assert!(
        cells(&seen_by_csirt, "CL").is_empty(),
        "the AMBER report is not CL-CSIRT's to see"
    );
    let seen_by_ee = matrix("EE-MFA").await;
    assert_eq!(
        cells(&seen_by_ee, "CL"),
        [("UN-CBM-3".into(), private.id.clone(), 1, false)]
    );

    let err = t
        .catalogue("EE-MFA")
        .await
        .implementation_matrix(pb::MatrixRequest {
            frameworks: vec!["NOPE".into()],
            states: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(fields_of(&err), ["frameworks[0]"]);
    let err = t
        .catalogue("EE-MFA")
        .await
        .implementation_matrix(pb::MatrixRequest {
            frameworks: vec![],
            states: vec!["EE".into(), "XX".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(fields_of(&err), ["states[1]"]);
}
