//! The web portal over real mutual TLS: a hub on 127.0.0.1:0 with fresh certificates and
//! `web.listen` on 127.0.0.1:0, data published over gRPC, pages fetched with a plain HTTP/2
//! client presenting each member's certificate (headers, methods, audience, audit, roles,
//! suspension and revocation), and in headless Chromium (`web_portal_browser.rs`).
use http::Method;

mod common;
#[path = "common/web.rs"]
mod web;

use cbm_hub::pb::{self, audit_client::AuditClient};
use common::{TestHub, publish, samples};
use web::{Page, WebClient};

fn web_addr(t: &TestHub) -> std::net::SocketAddr {
    t.hub.as_ref().unwrap().web_addr.expect("web portal on")
}

async fn client(t: &TestHub, member: &str) -> WebClient {
    web::connect(web_addr(t), &t.ca.cert_pem, Some(&t.certs[member]))
        .await
        .unwrap_or_else(|e| panic!("{member}: {e}"))
}

/// Does a connection presenting `cert` (or none) get any answer at all?
async fn answered(t: &TestHub, cert: Option<&cbm_hub::tls::devpki::Issued>) -> bool {
    match web::connect(web_addr(t), &t.ca.cert_pem, cert).await {
        Err(_) => false,
        Ok(mut c) => c.request(Method::GET, "/").await.is_ok(),
    }
}

fn assert_secure(p: &Page, what: &str) {
    assert_eq!(
        p.header("content-security-policy"),
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
        "{what}"
    );
    assert_eq!(p.header("x-frame-options"), "DENY", "{what}");
    assert_eq!(p.header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(p.header("referrer-policy"), "no-referrer", "{what}");
}

fn assert_page(p: &Page, what: &str) {
    assert_eq!(p.status, 200, "{what}: {}", p.body);
    assert_secure(p, what);
    assert_eq!(p.header("cache-control"), "no-store", "{what}");
    assert_eq!(
        p.header("content-type"),
        "text/html; charset=utf-8",
        "{what}"
    );
    assert!(p.body.contains("<html lang=\"en\">"), "{what}");
    // No script of any kind, no inline style: the CSP would block them anyway.
    for banned in ["<script", " style=", " on", "javascript:"] {
        let hit = if banned == " on" {
            p.body.contains(" onclick=") || p.body.contains(" onload=")
        } else {
            p.body.contains(banned)
        };
        assert!(!hit, "{what}: {banned}");
    }
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_only_get_is_answered() {
    let (t, _) = TestHub::start_portal().await;
    let clear = publish(
        &t,
        "EE-MFA",
        samples::envelope("Estonian strategy", "TLP:CLEAR", samples::policy_document()),
    )
    .await;
    let mut c = client(&t, "CL-CSIRT").await;
    for path in [
        "/",
        "/contacts",
        "/matrix",
        &format!("/submissions/{}", clear.id),
    ] {
        let p = c.get(path).await;
        assert_page(&p, path);
        assert!(
            p.body.contains("CL-CSIRT"),
            "{path}: the certificate's member"
        );
    }
    let p = c.get(&format!("/submissions/{}", clear.id)).await;
    assert!(p.body.contains("Estonian strategy") && p.body.contains("tlp tlp-clear"));

    for (method, path) in [
        (Method::POST, "/"),
        (Method::PUT, "/contacts"),
        (
            Method::DELETE,
            &format!("/submissions/{}", clear.id) as &str,
        ),
        (Method::PATCH, "/matrix"),
    ] {
        let p = c.request(method.clone(), path).await.unwrap();
        assert_eq!(p.status, 405, "{method} {path}");
        assert_eq!(p.header("allow"), "GET, HEAD", "{method} {path}");
        assert_secure(&p, path);
    }
    // Browsers and tools that speak only HTTP/1.1 are served too.
    let mut h1 = web::connect_http1(web_addr(&t), &t.ca.cert_pem, &t.certs["CL-CSIRT"])
        .await
        .unwrap();
    let p = h1.get("/").await;
    assert_page(&p, "HTTP/1.1");
    assert!(p.body.contains("Estonian strategy"));
    let p = c.get("/no/such/page").await;
    assert_eq!(p.status, 404);
    assert_secure(&p, "404");

    let css = c.get("/static/portal.css").await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), "text/css; charset=utf-8");
    assert!(css.body.contains(".tlp-red { color: #FF2B2B; }") && css.body.contains("@media print"));

    // No certificate: no page, not even an error page.
    assert!(
        !answered(&t, None).await,
        "a connection without a certificate"
    );
    // A certificate of another CA, and one of this CA bound to no member.
    let other = cbm_hub::tls::devpki::DevCa::generate("other CA").unwrap();
    let foreign = other
        .issue(&cbm_hub::tls::devpki::LeafSpec::client("EE-MFA", 30))
        .unwrap();
    assert!(
        !answered(&t, Some(&foreign)).await,
        "another CA's certificate"
    );
    let unbound =
        t.ca.issue(&cbm_hub::tls::devpki::LeafSpec::client("XX-NOBODY", 30))
            .unwrap();
    let mut nobody = web::connect(web_addr(&t), &t.ca.cert_pem, Some(&unbound))
        .await
        .unwrap();
    let p = nobody.get("/").await;
    assert_eq!(p.status, 403);
    assert!(!p.body.contains("Estonian strategy"));
    t.stop().await;
}

#[tokio::test]
async fn each_member_sees_its_audience_and_every_read_is_audited_like_grpc() {
    let (t, _) = TestHub::start_portal().await;
    let mut amber = samples::envelope(
        "Amber note for EE-CERT",
        "TLP:AMBER",
        samples::policy_document(),
    );
    amber.recipients = vec!["EE-CERT".into()];
    let attachment = b"<html><script>alert(1)</script></html>".to_vec();
    amber.attachments = vec![pb::Attachment {
        name: "indicators list.html".into(),
        media_type: "text/html".into(),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&attachment)),
        content: attachment.clone().into(),
    }];
    amber.summary = "A summary that only EE-CERT reads.".into();
    let amber = publish(&t, "EE-MFA", amber).await;
    let mut green = samples::envelope(
        "OAS green strategy",
        "TLP:GREEN",
        samples::policy_document(),
    );
    green.community = "OAS".into();
    let green = publish(&t, "CL-MINREL", green).await;

    let mut ee = client(&t, "EE-CERT").await;
    let mut cl = client(&t, "CL-CSIRT").await;
    let list = ee.get("/").await;
    assert!(list.body.contains("Amber note for EE-CERT"));
    assert!(
        !list.body.contains("OAS green strategy"),
        "EE-CERT is not in OAS"
    );
    let list = cl.get("/").await;
    assert!(list.body.contains("OAS green strategy"));
    assert!(
        !list.body.contains("Amber note"),
        "CL-CSIRT is no recipient"
    );

    // Search and filters go to the hub's List: text, label, community.
    let found = cl.get("/?q=green+STRATEGY").await;
    assert!(found.body.contains("OAS green strategy"));
    let none = cl.get("/?q=amber").await;
    assert!(!none.body.contains("Amber note") && none.body.contains("Nothing to show"));
    let by_label = ee.get("/?tlp=TLP%3AAMBER").await;
    assert!(by_label.body.contains("Amber note"));
    let by_community = cl.get("/?community=OSCE").await;
    assert!(!by_community.body.contains("OAS green strategy"));
    let bad = cl.get("/?from=not-a-date").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("updated_since"),
        "the field is named: {}",
        bad.body
    );

    let page = ee.get(&format!("/submissions/{}", amber.id)).await;
    assert_page(&page, "amber for EE-CERT");
    assert!(
        page.body.contains("A summary that only EE-CERT reads.")
            && page.body.contains("tlp tlp-amber")
    );
    // Attachments download as the publisher's bytes, never rendered in the portal's origin,
    // and only for the audience.
    let file = ee
        .get(&format!("/submissions/{}/attachments/0", amber.id))
        .await;
    assert_eq!(file.status, 200);
    assert_eq!(file.body.as_bytes(), attachment.as_slice());
    assert_eq!(file.header("content-type"), "application/octet-stream");
    assert_eq!(
        file.header("content-disposition"),
        "attachment; filename=\"indicators_list.html\""
    );
    assert_secure(&file, "attachment");
    assert_eq!(file.header("cache-control"), "no-store");
    let other = ee
        .get(&format!("/submissions/{}/attachments/1", amber.id))
        .await;
    assert_eq!(other.status, 404);
    let theirs = cl
        .get(&format!("/submissions/{}/attachments/0", amber.id))
        .await;
    assert_eq!(theirs.status, 404);
    assert!(!theirs.body.contains("alert(1)"));
    let refused = cl.get(&format!("/submissions/{}", amber.id)).await;
    assert_eq!(refused.status, 404);
    assert!(!refused.body.contains("Amber note") && !refused.body.contains("only EE-CERT"));

    // The web reads are in the audit log exactly as gRPC reads are: allowed for EE-CERT,
    // refused for CL-CSIRT, and EE-CERT's read is in the publisher's access log.
    let mut audit = AuditClient::new(t.channel("AUDITOR").await);
    let entries = audit
        .query(pb::AuditQuery {
            action: "submission.get".into(),
            object_id: amber.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let outcome_of = |m: &str| {
        entries
            .iter()
            .filter(|e| e.member == m)
            .map(|e| e.outcome.clone())
            .collect::<Vec<_>>()
    };
    // EE-CERT: the page and two attachment requests (each reads the revision); CL-CSIRT: an
    // attachment and the page.
    assert_eq!(outcome_of("EE-CERT"), ["allowed"; 3]);
    assert_eq!(outcome_of("CL-CSIRT"), ["refused"; 2]);
    assert!(entries.iter().all(|e| e.peer.starts_with("127.0.0.1:")));
    let mut publisher = client(&t, "EE-MFA").await;
    let access = publisher
        .get(&format!("/submissions/{}/access", amber.id))
        .await;
    assert_page(&access, "access log");
    assert!(access.body.contains("EE-CERT"), "{}", access.body);
    // Another member's access log is not theirs to read: answered as if there were none.
    let theirs = cl.get(&format!("/submissions/{}/access", green.id)).await;
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    assert!(!theirs.body.contains("CL-MINREL"));

    // The implementation matrix and its CSV hold only what the reader may see.
    let csv = ee.get("/matrix.csv").await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), "text/csv; charset=utf-8");
    assert_eq!(csv.header("cache-control"), "no-store");
    assert!(csv.body.starts_with(
        "state,measure_ref,submission_id,kind,title,updated_at,review_by,overdue,count,as_of\n"
    ));
    assert!(csv.body.contains(&amber.id) && !csv.body.contains(&green.id));
    let csv = cl.get("/matrix.csv?state=CL").await;
    assert!(csv.body.contains(&green.id) && !csv.body.contains(&amber.id));
    let too_many = cl.get("/matrix?state=CL&state=EE&state=FI&state=LV").await;
    assert_eq!(too_many.status, 400);

    // Pages of roles the member lacks are refused.
    for path in ["/audit", "/members", "/campaigns"] {
        assert_eq!(cl.get(path).await.status, 403, "{path}");
    }
    let mut admin = client(&t, "HUB-ADMIN").await;
    let members = admin.get("/members").await;
    assert_page(&members, "members");
    let sha = common::sha256_hex(&t.certs["CL-CSIRT"].cert_der);
    assert!(members.body.contains("CL-CSIRT") && members.body.contains(&sha));
    let mut auditor = client(&t, "AUDITOR").await;
    // An auditor reads no content: its start page is the audit log.
    let start = auditor.get("/").await;
    assert_eq!(start.status, 303);
    assert_eq!(start.header("location"), "/audit");
    assert_eq!(
        auditor
            .get(&format!("/submissions/{}", green.id))
            .await
            .status,
        403
    );
    let log = auditor.get("/audit?member=CL-CSIRT&outcome=refused").await;
    assert_page(&log, "audit");
    assert!(log.body.contains("The audit log verifies"), "{}", log.body);
    assert!(log.body.contains("submission.get") && log.body.contains(&amber.id));
    // The page continues the last whole verification with the entries since, says when the
    // whole log was read, and links to reading it all now.
    assert!(
        log.body
            .contains("Every entry and checkpoint was read and verified at"),
        "{}",
        log.body
    );
    let whole_link = "/audit?member=CL-CSIRT&#38;outcome=refused&#38;verify=whole";
    assert!(log.body.contains(whole_link), "{}", log.body);
    let whole = auditor
        .get("/audit?member=CL-CSIRT&outcome=refused&verify=whole")
        .await;
    assert_page(&whole, "audit");
    assert!(
        whole.body.contains("The audit log verifies"),
        "{}",
        whole.body
    );
    // Auditors see metadata, not content.
    assert!(!log.body.contains("only EE-CERT reads"));
    t.stop().await;
}

/// The portal's search of withdrawn submissions (`?withdrawn=1&q=`) matches what the reader
/// receives: for a member of the audience that is not the publisher, a tombstone, so a right
/// and a wrong guess at the withdrawn text answer alike; the publisher's search reads its own.
#[tokio::test]
async fn search_of_withdrawn_submissions_tells_nothing_of_their_text() {
    let (t, _) = TestHub::start_portal().await;
    let mut secret = samples::envelope("Withdrawn plan Bluebird", "TLP:GREEN", samples::notice());
    secret.community = "OAS".into();
    let secret = publish(&t, "CL-MINREL", secret).await;
    t.hub("CL-MINREL")
        .await
        .withdraw(pb::WithdrawRequest {
            id: secret.id.clone(),
            reason: "sent too early".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut csirt = client(&t, "CL-CSIRT").await;
    let right = csirt.get("/?withdrawn=1&q=bluebird").await;
    let wrong = csirt.get("/?withdrawn=1&q=kingfisher").await;
    assert_page(&right, "search, right guess");
    assert_page(&wrong, "search, wrong guess");
    assert_eq!(
        right.body.contains(&secret.id),
        wrong.body.contains(&secret.id),
        "a right and a wrong guess answer alike"
    );
    assert!(!right.body.contains("Bluebird"), "no withdrawn content");
    let mut own = client(&t, "CL-MINREL").await;
    assert!(
        own.get("/?withdrawn=1&q=bluebird")
            .await
            .body
            .contains(&secret.id)
    );
    assert!(
        !own.get("/?withdrawn=1&q=kingfisher")
            .await
            .body
            .contains(&secret.id)
    );
    t.stop().await;
}

/// Content in another language than the portal's is marked with its BCP 47 tag (WCAG 3.1.2),
/// on the title, the summary and the body's values, not on the portal's own words.
#[tokio::test]
async fn content_in_another_language_is_marked_with_its_tag() {
    let (t, _) = TestHub::start_portal().await;
    let mut es = samples::envelope(
        "Estrategia nacional",
        "TLP:CLEAR",
        samples::policy_document(),
    );
    es.language = "es-419".into();
    es.summary = "Resumen de la estrategia.".into();
    let es = publish(&t, "CL-MINREL", es).await;
    let mut c = client(&t, "CL-CSIRT").await;
    let page = c.get(&format!("/submissions/{}", es.id)).await;
    assert_page(&page, "a submission in Spanish");
    assert!(
        page.body
            .contains("<h1 lang=\"es-419\">Estrategia nacional</h1>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<p class=\"prose\" lang=\"es-419\">Resumen de la estrategia.</p>")
    );
    assert!(page.body.contains("<dd class=\"prose\" lang=\"es-419\">"));
    assert!(
        page.body.contains("<html lang=\"en\">"),
        "the portal's words stay English"
    );
    let list = c.get("/").await;
    assert!(
        list.body
            .contains("<span lang=\"es-419\">Estrategia nacional</span>")
    );
    t.stop().await;
}

#[tokio::test]
async fn suspension_and_revocation_apply_to_the_next_request_on_an_open_connection() {
    let (t, crl_path) = TestHub::start_portal().await;
    publish(
        &t,
        "EE-MFA",
        samples::envelope("Estonian strategy", "TLP:CLEAR", samples::policy_document()),
    )
    .await;
    let mut minrel = client(&t, "CL-MINREL").await;
    let mut csirt = client(&t, "CL-CSIRT").await;
    assert!(minrel.get("/").await.body.contains("Estonian strategy"));
    assert!(csirt.get("/").await.body.contains("Estonian strategy"));

    t.admin("HUB-ADMIN")
        .await
        .suspend_member(pb::SetMemberStatusRequest {
            id: "CL-MINREL".into(),
            reason: "key compromise".into(),
        })
        .await
        .unwrap();
    let p = minrel.get("/").await;
    assert_eq!(p.status, 403);
    assert!(!p.body.contains("Estonian strategy"));

    // CL-CSIRT's certificate revoked by a new CRL: the open connection gets nothing more, and
    // no new connection is accepted.
    let crl =
        t.ca.crl(std::slice::from_ref(&t.certs["CL-CSIRT"].serial), 2, 7)
            .unwrap();
    let tmp = crl_path.with_extension("tmp");
    std::fs::write(&tmp, crl).unwrap();
    std::fs::rename(&tmp, &crl_path).unwrap();
    t.hub.as_ref().unwrap().tls.reload().unwrap();
    // Either a refusal page, or the connection closed: nothing delivered either way.
    if let Ok(p) = csirt.request(Method::GET, "/").await {
        assert_eq!(p.status, 403);
        assert!(!p.body.contains("Estonian strategy"));
    }
    assert!(!answered(&t, Some(&t.certs["CL-CSIRT"])).await, "revoked");
    assert!(answered(&t, Some(&t.certs["EE-CERT"])).await, "not revoked");
    t.stop().await;
}

#[tokio::test]
async fn the_first_serve_shows_the_portal_and_the_exported_pkcs12_opens_it() {
    use common::process::{HubProcess, local};
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hub");
    let hub = HubProcess::start(&home);
    let port = hub.web_port();

    let password = dir.path().join("password");
    std::fs::write(&password, "correct horse\n").unwrap();
    let (ok, stdout, err) = local(
        &home,
        &[
            "pki",
            "export-p12",
            "EE-MFA",
            "--password-file",
            password.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let p12 = home.join("pki/members/EE-MFA.p12");
    assert!(stdout.contains(p12.to_str().unwrap()));
    assert!(!stdout.contains("password:"));
    // What a browser imports: the certificate and key, read back with the password. The
    // certificate and key read back are then presented to the portal.
    let read = |what: &str| {
        let out = std::process::Command::new("openssl")
            .args(["pkcs12", "-in"])
            .arg(&p12)
            .args(["-passin", "pass:correct horse", what, "-nodes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let certs = read("-clcerts");
    let cert_pem = &certs[certs.find("-----BEGIN CERTIFICATE-----").unwrap()..];
    let key = read("-nocerts");
    let key_pem = &key[key.find("-----BEGIN PRIVATE KEY-----").unwrap()..];
    let issued = cbm_hub::tls::devpki::Issued {
        cert_pem: cert_pem.to_string(),
        key_pem: key_pem.to_string(),
        cert_der: Vec::new(),
        serial: Vec::new(),
    };
    let ca = std::fs::read_to_string(home.join("pki/ca.pem")).unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut c = web::connect(addr, &ca, Some(&issued)).await.unwrap();
    let page = c.get("/").await;
    assert_page(&page, "the dev hub's main page");
    assert!(page.body.contains("EE-MFA"));

    // The list filters the portal's search uses are the CLI's too.
    let endpoint = format!("https://localhost:{}", hub.port);
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy_document.yaml");
    let (ok, _, err) =
        common::process::cli(&home, &endpoint, &["publish", example, "-p", "EE-MFA"]);
    assert!(ok, "{err}");
    let list = |text: &str| {
        let (ok, out, err) = common::process::cli(
            &home,
            &endpoint,
            &["list", "-p", "CL-CSIRT", "--json", "--text", text],
        );
        assert!(ok, "{err}");
        out
    };
    assert!(list("CYBERSECURITY strategy").contains("Estonia's Cybersecurity Strategy 2024-2030"));
    assert!(list("no such words").trim().is_empty());
    let page = c.get("/?q=cybersecurity").await;
    assert!(
        page.body
            .contains("Estonia&#39;s Cybersecurity Strategy 2024-2030"),
        "{}",
        page.body
    );

    // Without a password file, a generated one is printed.
    let (ok, stdout, err) = local(&home, &["pki", "export-p12", "CL-CSIRT"]);
    assert!(ok, "{err}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("password: ") && l.len() > 20),
        "{stdout}"
    );
    hub.kill();
}
