//! The web portal in a real browser: headless Chromium (Debian's `chromium`) driven by Python
//! Playwright (PyPI, in a virtualenv under target/tmp), presenting each member's client
//! certificate, against a hub on 127.0.0.1:0 with fresh certificates and data published over
//! gRPC. Each member's pages are checked against the TLP audience of domain.md (nothing outside
//! it in the HTML), before and after a narrowing revision and a withdrawal; a browser without a
//! certificate, and one with a revoked certificate, get no page. Screenshots of the main pages
//! and a printed PDF go to target/tmp/web-screenshots.
//!
//! Needs `chromium` (`.ci/run` installs it) and PyPI on the first run. Without chromium the
//! test fails, naming what to install: it never skips.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

mod common;

use cbm_hub::pb::{self, submission_content::Body};
use common::{PORTAL_MEMBERS, TestHub, publish, python, samples};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Debian's chromium, or $CHROMIUM.
fn chromium() -> PathBuf {
    let path =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    assert!(
        path.exists(),
        "{} not found: the web portal's browser test needs Chromium \
         (Debian: `apt-get install -y chromium`; .ci/run installs it), or CHROMIUM=PATH",
        path.display()
    );
    path
}

fn days_ago(days: i64) -> String {
    (time::OffsetDateTime::now_utc().date() - time::Duration::days(days)).to_string()
}

fn poc(level: &str, organisation: &str, tlp: &str, verified: &str) -> pb::SubmissionContent {
    let mut c = samples::poc(level, organisation, tlp, &[]);
    if let Some(Body::PointOfContact(p)) = &mut c.body {
        p.last_verified = verified.into();
    }
    c.title = format!("{organisation} ({level} contact)");
    c
}

fn content(
    title: &str,
    tlp: &str,
    body: Body,
    recipients: &[&str],
    refs: &[&str],
) -> pb::SubmissionContent {
    let mut c = samples::envelope(title, tlp, body);
    c.recipients = recipients.iter().map(|r| r.to_string()).collect();
    c.cbm_refs = refs.iter().map(|r| r.to_string()).collect();
    c
}

fn notice(subject: &str, text: &str) -> Body {
    Body::Notice(pb::Notice {
        category: "information".into(),
        subject: subject.into(),
        text: text.into(),
        ..Default::default()
    })
}

/// Runs the checker on `visits`; panics with its report unless every check passed. Called in
/// `block_in_place`, so that the hub keeps its workers while the browser runs.
fn run_browser(python: &Path, dir: &Path, base: &Value, visits: Vec<Value>, phase: &str) {
    let mut plan = base.clone();
    plan["visits"] = Value::Array(visits);
    let file = dir.join(format!("plan-{phase}.json"));
    std::fs::write(&file, serde_json::to_vec_pretty(&plan).unwrap()).unwrap();
    let out = common::process::run_bounded(
        Command::new(python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/web/portal_check.py"
            ))
            .arg(&file),
        Duration::from_secs(300),
    );
    assert!(
        out.status.is_some_and(|s| s.success()),
        "browser checks of phase {phase} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.out,
        out.err
    );
    eprintln!("phase {phase}:\n{}", out.out);
}

fn visit(
    member: Option<&str>,
    path: &str,
    status: u16,
    contains: &[&str],
    absent: &[&str],
) -> Value {
    json!({"member": member, "path": path, "status": status, "contains": contains, "absent": absent})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_browse_what_they_may_see_in_chromium_and_nothing_else() {
    let chromium = chromium();
    let python = tokio::task::spawn_blocking(|| {
        python::venv_with(
            "playwright-venv",
            Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/web/requirements.txt"
            )),
        )
    })
    .await
    .unwrap();
    let (t, crl_path) = TestHub::start_portal().await;
    let dir = t.dir.path().to_path_buf();
    let mut members = serde_json::Map::new();
    for spec in PORTAL_MEMBERS {
        let cert = dir.join(format!("{}.pem", spec.id));
        let key = dir.join(format!("{}-key.pem", spec.id));
        std::fs::write(&cert, &t.certs[spec.id].cert_pem).unwrap();
        std::fs::write(&key, &t.certs[spec.id].key_pem).unwrap();
        members.insert(spec.id.into(), json!({"cert": cert, "key": key}));
    }
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let port = t.hub.as_ref().unwrap().web_addr.unwrap().port();
    let base = json!({
        "base": format!("https://localhost:{port}"),
        "chromium": chromium,
        "shots": shots,
        "members": members,
    });

    // What the members publish, over gRPC.
    let mut strategy = content(
        "National Cybersecurity Strategy 2024-2030",
        "TLP:CLEAR",
        samples::policy_document(),
        &[],
        &["UN-CBM-3", "OSCE-CBM-7"],
    );
    strategy.summary = "Estonia's strategy for cyber security, adopted in 2024.".into();
    strategy.review_by = days_ago(30);
    strategy.attachments = vec![pb::Attachment {
        name: "strategy-summary.txt".into(),
        media_type: "text/plain".into(),
        sha256: hex::encode(Sha256::digest(b"Summary of the strategy.\n")),
        content: b"Summary of the strategy.\n".to_vec().into(),
    }];
    let strategy = publish(&t, "EE-MFA", strategy).await;
    let cert_ee = publish(
        &t,
        "EE-CERT",
        poc("technical", "CERT-EE", "TLP:GREEN", &days_ago(20)),
    )
    .await;
    let minrel_poc = publish(
        &t,
        "CL-MINREL",
        poc("policy", "MINREL Chile", "TLP:CLEAR", &days_ago(800)),
    )
    .await;
    // Last verified more than a year ago and not answering the ping below: stale.
    publish(
        &t,
        "CL-MINREL",
        poc("legal", "Fiscalia Chile", "TLP:CLEAR", &days_ago(800)),
    )
    .await;
    let mut glossary = content(
        "Glossary of cyber terms (OAS)",
        "TLP:GREEN",
        samples::terminology_list(),
        &[],
        &["OSCE-CBM-9"],
    );
    glossary.community = "OAS".into();
    let glossary = publish(&t, "CL-MINREL", glossary).await;
    let consultation = publish(
        &t,
        "EE-MFA",
        content(
            "Consultation on the port authority incident",
            "TLP:AMBER",
            notice(
                "Port authority incident",
                "Indicators shared with CL-CSIRT and EE-CERT.",
            ),
            &["CL-CSIRT", "EE-CERT"],
            &["UN-CBM-1"],
        ),
    )
    .await;
    let red = publish(
        &t,
        "EE-MFA",
        content(
            "Indicators for EE-CERT eyes only",
            "TLP:RED",
            notice("Red indicators", "Named recipients only."),
            &["EE-CERT"],
            &["UN-CBM-1"],
        ),
    )
    .await;
    let strict = publish(
        &t,
        "EE-MFA",
        content(
            "Bilateral draft for MINREL",
            "TLP:AMBER+STRICT",
            samples::policy_document(),
            &["CL-MINREL"],
            &["UN-CBM-3"],
        ),
    )
    .await;
    let mut ci = content(
        "Critical infrastructure approach (OSCE)",
        "TLP:GREEN",
        samples::critical_infrastructure(),
        &[],
        &["UN-CBM-7"],
    );
    ci.community = "OSCE".into();
    let ci = publish(&t, "EE-MFA", ci).await;
    // A ping campaign of the hub administrator, answered by one contact.
    let campaign = t
        .directory("HUB-ADMIN")
        .await
        .start_ping_campaign(pb::StartPingCampaignRequest {
            deadline: samples::in_seconds(86_400),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let minrel_ping = campaign
        .results
        .iter()
        .find(|r| r.member == "CL-MINREL")
        .expect("CL-MINREL's contact is pinged")
        .notice_id
        .clone();
    t.directory("CL-MINREL")
        .await
        .acknowledge(pb::AcknowledgeRequest {
            notice_id: minrel_ping,
            reply: "Received, MINREL duty desk".into(),
            contact_id: minrel_poc.id.clone(),
        })
        .await
        .unwrap();

    let titles = [
        ("strategy", "National Cybersecurity Strategy 2024-2030"),
        ("cert_ee", "CERT-EE (technical contact)"),
        ("minrel_poc", "MINREL Chile (policy contact)"),
        ("glossary", "Glossary of cyber terms (OAS)"),
        (
            "consultation",
            "Consultation on the port authority incident",
        ),
        ("red", "Indicators for EE-CERT eyes only"),
        ("strict", "Bilateral draft for MINREL"),
        ("ci", "Critical infrastructure approach (OSCE)"),
    ];
    let title = |k: &str| titles.iter().find(|(n, _)| *n == k).unwrap().1;
    // Who may see which, from domain.md's TLP table: CLEAR and hub-wide GREEN to every reader;
    // community GREEN to the community; AMBER, AMBER+STRICT and RED to the named recipients;
    // the publisher always.
    let sees: &[(&str, &[&str])] = &[
        (
            "EE-CERT",
            &[
                "strategy",
                "cert_ee",
                "minrel_poc",
                "consultation",
                "red",
                "ci",
            ],
        ),
        (
            "CL-CSIRT",
            &[
                "strategy",
                "cert_ee",
                "minrel_poc",
                "glossary",
                "consultation",
            ],
        ),
        (
            "CL-MINREL",
            &["strategy", "cert_ee", "minrel_poc", "glossary", "strict"],
        ),
        ("HUB-ADMIN", &["strategy", "cert_ee", "minrel_poc"]),
        (
            "EE-MFA",
            &[
                "strategy",
                "cert_ee",
                "minrel_poc",
                "consultation",
                "red",
                "strict",
                "ci",
            ],
        ),
    ];
    let ids = [
        ("strategy", &strategy.id),
        ("cert_ee", &cert_ee.id),
        ("minrel_poc", &minrel_poc.id),
        ("glossary", &glossary.id),
        ("consultation", &consultation.id),
        ("red", &red.id),
        ("strict", &strict.id),
        ("ci", &ci.id),
    ];
    let mut visits = Vec::new();
    for (member, visible) in sees {
        let (yes, no): (Vec<_>, Vec<_>) = titles.iter().partition(|(k, _)| visible.contains(k));
        let yes: Vec<&str> = yes.iter().map(|(_, t)| *t).collect();
        let no: Vec<&str> = no.iter().map(|(_, t)| *t).collect();
        visits.push(visit(Some(member), "/?withdrawn=1", 200, &yes, &no));
        visits.push(visit(Some(member), "/matrix", 200, &[], &no));
        visits.push(visit(Some(member), "/contacts", 200, &[], &no));
        for (k, id) in ids {
            let path = format!("/submissions/{id}");
            if visible.contains(&k) {
                visits.push(visit(Some(member), &path, 200, &[title(k)], &[]));
            } else {
                visits.push(visit(Some(member), &path, 404, &[], &[title(k)]));
            }
        }
    }
    // The main pages, with screenshots: a desk officer's list, a submission, the directory, the
    // matrix and a comparison, an administrator's campaign and members, an auditor's log, a
    // publisher's access log; the matrix printed.
    let mut main_pages = vec![
        json!({"member": "EE-CERT", "path": "/", "screenshot": "submissions.png", "small_shot": "web-portal.png", "tlp_colours": true, "keyboard": true,
               "contains": ["TLP:RED", "TLP:AMBER", "TLP:GREEN", "TLP:CLEAR", "EE-CERT"]}),
        json!({"member": "EE-CERT", "path": format!("/submissions/{}", strategy.id), "screenshot": "submission.png",
               "tlp_colours": true, "contains": ["TLP:CLEAR", "strategy-summary.txt", "Review overdue", "UN-CBM-3"]}),
        json!({"member": "EE-CERT", "path": format!("/submissions/{}", red.id), "screenshot": "submission-red.png",
               "tlp_colours": true, "contains": ["TLP:RED", "Named recipients only."]}),
        json!({"member": "CL-CSIRT", "path": "/contacts", "screenshot": "contacts.png", "keyboard": true,
               "contains": ["CERT-EE", "MINREL Chile", "Stale"]}),
        json!({"member": "EE-CERT", "path": "/matrix", "screenshot": "matrix.png", "pdf": "matrix.pdf",
               "contains": ["UN-CBM-3", "Review overdue", "National Cybersecurity Strategy 2024-2030"]}),
        json!({"member": "EE-CERT", "path": "/matrix?state=EE&state=CL", "screenshot": "matrix-compare.png",
               "contains": ["side-by-side"]}),
        json!({"member": "HUB-ADMIN", "path": "/campaigns", "screenshot": "campaigns.png", "contains": [campaign.id.clone()]}),
        json!({"member": "HUB-ADMIN", "path": format!("/campaigns/{}", campaign.id), "screenshot": "campaign.png",
               "contains": ["Received, MINREL duty desk", "CL-MINREL", "Per state"]}),
        json!({"member": "HUB-ADMIN", "path": "/members", "screenshot": "members.png",
               "contains": ["CL-CSIRT", common::sha256_hex(&t.certs["CL-CSIRT"].cert_der)]}),
        json!({"member": "AUDITOR", "path": "/audit", "screenshot": "audit.png",
               "contains": ["The audit log verifies", "submission.get"], "absent": ["Named recipients only."]}),
        // An auditor reads no content: its start page is the audit log, and content pages are
        // refused.
        json!({"member": "AUDITOR", "path": "/", "contains": ["The audit log verifies"],
               "absent": titles.iter().map(|(_, t)| *t).collect::<Vec<_>>()}),
        json!({"member": "AUDITOR", "path": format!("/submissions/{}", strategy.id), "status": 403,
               "absent": [title("strategy")]}),
        json!({"member": "AUDITOR", "path": "/contacts", "status": 403}),
        json!({"member": "EE-MFA", "path": format!("/submissions/{}/access", consultation.id), "screenshot": "access-log.png",
               "contains": ["CL-CSIRT", "EE-CERT"]}),
        json!({"member": null, "path": "/", "fails": true}),
    ];
    visits.append(&mut main_pages);
    tokio::task::block_in_place(|| run_browser(&python, &dir, &base, visits, "1"));

    // The publisher narrows the consultation to EE-CERT and withdraws the bilateral draft.
    t.hub("EE-MFA")
        .await
        .revise(pb::ReviseRequest {
            id: consultation.id.clone(),
            content: Some(content(
                "Consultation, second round (EE-CERT only)",
                "TLP:AMBER",
                notice("Port authority incident, round 2", "Now for EE-CERT alone."),
                &["EE-CERT"],
                &["UN-CBM-1"],
            )),
            expected_revision: 1,
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .unwrap();
    t.hub("EE-MFA")
        .await
        .withdraw(pb::WithdrawRequest {
            id: strict.id.clone(),
            reason: "superseded".into(),
            expected_revision: 1,
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .unwrap();
    let gone = [
        "Consultation on the port authority incident",
        "Consultation, second round",
        "Indicators shared with CL-CSIRT",
        "Now for EE-CERT alone.",
    ];
    let c = format!("/submissions/{}", consultation.id);
    let c1 = format!("/submissions/{}?revision=1", consultation.id);
    let s = format!("/submissions/{}", strict.id);
    let visits = vec![
        visit(Some("CL-CSIRT"), "/?withdrawn=1", 200, &[], &gone),
        visit(Some("CL-CSIRT"), "/?q=port", 200, &[], &gone),
        json!({"member": "CL-CSIRT", "path": c, "status_any": true, "absent": gone}),
        json!({"member": "CL-CSIRT", "path": c1, "status_any": true, "absent": gone}),
        visit(Some("CL-CSIRT"), "/matrix", 200, &[], &gone),
        visit(
            Some("EE-CERT"),
            &c,
            200,
            &[
                "Consultation, second round (EE-CERT only)",
                "Now for EE-CERT alone.",
            ],
            &[],
        ),
        visit(
            Some("EE-CERT"),
            &c1,
            200,
            &["Consultation on the port authority incident"],
            &[],
        ),
        visit(
            Some("CL-MINREL"),
            "/",
            200,
            &[],
            &["Bilateral draft for MINREL"],
        ),
        visit(
            Some("EE-CERT"),
            &s,
            404,
            &[],
            &["Bilateral draft for MINREL"],
        ),
    ];
    tokio::task::block_in_place(|| run_browser(&python, &dir, &base, visits, "2"));

    // CL-CSIRT's certificate revoked: its browser gets no page; others still do.
    let crl =
        t.ca.crl(std::slice::from_ref(&t.certs["CL-CSIRT"].serial), 2, 7)
            .unwrap();
    let tmp = crl_path.with_extension("tmp");
    std::fs::write(&tmp, crl).unwrap();
    std::fs::rename(&tmp, &crl_path).unwrap();
    t.hub.as_ref().unwrap().tls.reload().unwrap();
    let visits = vec![
        json!({"member": "CL-CSIRT", "path": "/", "fails": true,
               "absent": ["National Cybersecurity Strategy 2024-2030", "CL-CSIRT"]}),
        json!({"member": null, "path": "/contacts", "fails": true}),
        visit(
            Some("EE-CERT"),
            "/",
            200,
            &["National Cybersecurity Strategy 2024-2030"],
            &[],
        ),
    ];
    tokio::task::block_in_place(|| run_browser(&python, &dir, &base, visits, "3"));
    t.stop().await;
}
