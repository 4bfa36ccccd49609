//! The submissions pages: the list (search, filters, paging), one submission with its
//! revisions and attachments, and its access log for the publisher. Each reads through the Hub
//! and Audit service implementations, so that the audience decision and the audit entry are
//! those of the gRPC reads (`submission.list`, `submission.get`, the access-log query).
use askama::Template;
use axum::{
    body::Body,
    extract::Path,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, header};

use super::{
    page::{Ctx, Layout, PageError, PageResult, day_start, html, when},
    text,
};
use crate::{
    domain::validate::fields::is_language_tag,
    pb::{self, audit_server::Audit, hub_server::Hub},
};

/// Items per page of the list.
const PAGE_SIZE: u32 = 25;

/// A TLP label as TLP 2.0 prescribes it: the label's text in its colour on black.
pub struct Label {
    pub text: String,
    /// CSS class with the FIRST colours.
    pub class: &'static str,
    pub meaning: &'static str,
}

impl Label {
    pub fn of(tlp: &str) -> Label {
        let class = match tlp {
            "TLP:RED" => "tlp tlp-red",
            "TLP:AMBER+STRICT" | "TLP:AMBER" => "tlp tlp-amber",
            "TLP:GREEN" => "tlp tlp-green",
            "TLP:CLEAR" => "tlp tlp-clear",
            _ => "tlp",
        };
        Label {
            text: tlp.to_string(),
            class,
            meaning: text::tlp_meaning(tlp),
        }
    }
}

/// One line of the list.
struct Row {
    id: String,
    title: String,
    kind: String,
    publisher: String,
    state: String,
    label: Option<Label>,
    updated: String,
    revision: u32,
    withdrawn: bool,
    /// The title's language (the content's BCP 47 tag).
    lang: Option<String>,
}

fn row(s: &pb::Submission) -> Row {
    let content = s.content.as_ref();
    Row {
        id: s.id.clone(),
        title: content.map(|c| c.title.clone()).unwrap_or_default(),
        kind: text::kind_name(&s.kind).to_string(),
        publisher: s.publisher.clone(),
        state: s.state.clone(),
        label: content.map(|c| Label::of(&c.tlp)),
        updated: when(&s.updated_at),
        revision: s.revision,
        withdrawn: s.status == "withdrawn",
        lang: content
            .map(|c| c.language.clone())
            .filter(|t| is_language_tag(t)),
    }
}

#[derive(Template)]
#[template(path = "submissions.html", config = "src/web/askama.toml")]
struct ListPage {
    l: Layout,
    q: String,
    kind: String,
    state: String,
    tlp: String,
    community: String,
    cbm: String,
    from: String,
    to: String,
    withdrawn: bool,
    kinds: Vec<(&'static str, &'static str)>,
    labels: Vec<&'static str>,
    rows: Vec<Row>,
    next: Option<String>,
    paged: bool,
    /// The query of the first page with the same filters.
    first: String,
}

pub async fn list(ctx: Ctx) -> PageResult {
    let l = ctx.layout(text::SUBMISSIONS_TITLE, "submissions").await?;
    // An auditor or administrator that reads no content starts where its work is.
    if !l.can_read && (l.is_auditor || l.is_admin) {
        let to = if l.is_auditor { "/audit" } else { "/members" };
        return Ok(axum::response::Redirect::to(to).into_response());
    }
    let p = &ctx.params;
    let req = pb::ListRequest {
        kinds: p.one("kind"),
        states: p.one("state"),
        tlp: p.one("tlp"),
        cbm_refs: p.one("cbm"),
        communities: p.one("community"),
        text: p.get("q").to_string(),
        updated_since: day_start(p.get("from"), 0),
        updated_before: day_start(p.get("to"), 1),
        include_withdrawn: p.get("withdrawn") == "1",
        page_size: PAGE_SIZE,
        page_token: p.get("page").to_string(),
        ..Default::default()
    };
    let page = ctx.s.hub.list(ctx.req(req)).await?.into_inner();
    let next = (!page.next_page_token.is_empty()).then(|| p.with("page", &page.next_page_token));
    let kinds = crate::domain::kind::Kind::ALL
        .iter()
        .map(|k| (k.as_str(), text::kind_name(k.as_str())))
        .collect();
    let labels = crate::domain::tlp::Tlp::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    Ok(html(&ListPage {
        q: p.get("q").into(),
        kind: p.get("kind").into(),
        state: p.get("state").into(),
        tlp: p.get("tlp").into(),
        community: p.get("community").into(),
        cbm: p.get("cbm").into(),
        from: p.get("from").into(),
        to: p.get("to").into(),
        withdrawn: p.get("withdrawn") == "1",
        kinds,
        labels,
        rows: page.submissions.iter().map(row).collect(),
        next,
        paged: !p.get("page").is_empty(),
        first: p.with("page", ""),
        l,
    }))
}

/// A line of a submission body: a field at a depth, or a heading for a nested part.
pub struct Line {
    pub depth: usize,
    pub name: String,
    pub value: String,
}

/// The body of `c` (its kind's fields) as lines, in the proto's field order.
fn body_lines(c: &pb::SubmissionContent) -> Vec<Line> {
    let body = pb::SubmissionContent {
        body: c.body.clone(),
        ..Default::default()
    };
    let mut value = serde_json::to_value(&body).unwrap_or_default();
    crate::convert::prune_empty(&mut value);
    let mut out = Vec::new();
    if let serde_json::Value::Object(map) = value {
        for (_, v) in map {
            flatten(&v, 0, &mut out);
        }
    }
    out
}

fn flatten(v: &serde_json::Value, depth: usize, out: &mut Vec<Line>) {
    use serde_json::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let Value::Object(map) = v else { return };
    for (k, v) in map {
        let name = text::field_name(k);
        match v {
            Value::Object(_) => {
                out.push(Line {
                    depth,
                    name,
                    value: String::new(),
                });
                flatten(v, depth + 1, out);
            }
            Value::Array(items) if items.iter().all(|i| !i.is_object()) => {
                let joined: Vec<String> = items.iter().map(scalar).collect();
                out.push(Line {
                    depth,
                    name,
                    value: joined.join(", "),
                });
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    out.push(Line {
                        depth,
                        name: format!("{name} {}", i + 1),
                        value: String::new(),
                    });
                    flatten(item, depth + 1, out);
                }
            }
            other => out.push(Line {
                depth,
                name,
                value: scalar(other),
            }),
        }
    }
}

struct AttachmentRow {
    index: usize,
    name: String,
    media_type: String,
    size: usize,
    sha256: String,
}

#[derive(Template)]
#[template(path = "submission.html", config = "src/web/askama.toml")]
struct DetailPage {
    l: Layout,
    s: pb::Submission,
    c: Option<pb::SubmissionContent>,
    label: Option<Label>,
    kind: String,
    created: String,
    updated: String,
    overdue: bool,
    body: Vec<Line>,
    attachments: Vec<AttachmentRow>,
    /// Every revision number, and whether it is the one shown.
    revisions: Vec<(u32, bool)>,
    latest: u32,
    mine: bool,
    /// The content's BCP 47 language tag (see `detail`).
    language: Option<String>,
}

/// The revision the page shows: `?revision=N`, else the latest (0).
fn revision(ctx: &Ctx) -> Result<u32, PageError> {
    let r = ctx.params.get("revision");
    if r.is_empty() {
        return Ok(0);
    }
    r.parse()
        .map_err(|_| PageError(tonic::Status::invalid_argument(text::NOT_A_REVISION)))
}

pub async fn detail(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let rev = revision(&ctx)?;
    let mut l = ctx.layout(text::NAV_SUBMISSIONS, "submissions").await?;
    // The latest revision decides who may see the submission at all (and how many revisions
    // there are); an older one is then read as its own audited Get.
    let latest = ctx
        .s
        .hub
        .get(ctx.req(pb::GetRequest {
            id: id.clone(),
            revision: 0,
        }))
        .await?
        .into_inner();
    let s = if rev == 0 || rev == latest.revision {
        latest.clone()
    } else {
        ctx.s
            .hub
            .get(ctx.req(pb::GetRequest {
                id: id.clone(),
                revision: rev,
            }))
            .await?
            .into_inner()
    };
    let c = s.content.clone();
    let today = time::OffsetDateTime::now_utc().date();
    let overdue = c
        .as_ref()
        .is_some_and(|c| crate::domain::clock::parse_date(&c.review_by).is_ok_and(|d| d < today));
    let attachments = c
        .as_ref()
        .map(|c| {
            c.attachments
                .iter()
                .enumerate()
                .map(|(index, a)| AttachmentRow {
                    index,
                    name: a.name.clone(),
                    media_type: a.media_type.clone(),
                    size: a.content.len(),
                    sha256: a.sha256.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    // The content's language, marked on what is content (title, summary, body values), so
    // that a screen reader speaks it as that language; only a well-formed tag is written.
    let language = c
        .as_ref()
        .map(|c| c.language.clone())
        .filter(|t| is_language_tag(t));
    if let Some(c) = &c {
        l.title = c.title.clone();
        l.title_lang = language.clone();
    }
    Ok(html(&DetailPage {
        language,
        label: c.as_ref().map(|c| Label::of(&c.tlp)),
        kind: text::kind_name(&s.kind).to_string(),
        created: when(&s.created_at),
        updated: when(&s.updated_at),
        overdue,
        body: c.as_ref().map(body_lines).unwrap_or_default(),
        attachments,
        revisions: (1..=latest.revision)
            .map(|n| (n, n == s.revision))
            .collect(),
        latest: latest.revision,
        mine: latest.publisher == l.member_id,
        c,
        s,
        l,
    }))
}

/// An attachment of a revision the caller may see, as a download.
pub async fn attachment(ctx: Ctx, Path((id, index)): Path<(String, usize)>) -> PageResult {
    let rev = revision(&ctx)?;
    let s = ctx
        .s
        .hub
        .get(ctx.req(pb::GetRequest { id, revision: rev }))
        .await?
        .into_inner();
    let a = s
        .content
        .and_then(|c| c.attachments.into_iter().nth(index))
        .ok_or_else(|| PageError(tonic::Status::not_found(text::NO_SUCH_ATTACHMENT)))?;
    let mut r = Response::new(Body::from(a.content));
    let h = r.headers_mut();
    // Always a download, never rendered in the portal's origin: the content is the
    // publisher's, not ours.
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let name: String = a
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

struct AccessRow {
    member: String,
    at: String,
    via: String,
    revision: u32,
    sequence: u64,
}

#[derive(Template)]
#[template(path = "access.html", config = "src/web/askama.toml")]
struct AccessPage {
    l: Layout,
    id: String,
    rows: Vec<AccessRow>,
    next: Option<String>,
    paged: bool,
}

/// The access log of one of the caller's own submissions (the Audit service decides whose).
pub async fn access_log(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let l = ctx.layout(text::ACCESS_TITLE, "submissions").await?;
    let p = &ctx.params;
    let page = ctx
        .s
        .audit
        .access_log(ctx.req(pb::AccessLogRequest {
            submission_id: id.clone(),
            page_size: 100,
            page_token: p.get("page").to_string(),
        }))
        .await?
        .into_inner();
    let rows = page
        .records
        .into_iter()
        .map(|r| AccessRow {
            member: r.member,
            at: when(&r.at),
            via: r.via,
            revision: r.revision,
            sequence: r.audit_sequence,
        })
        .collect();
    let next = (!page.next_page_token.is_empty()).then(|| p.with("page", &page.next_page_token));
    Ok(html(&AccessPage {
        l,
        id,
        rows,
        next,
        paged: !p.get("page").is_empty(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_take_first_colour_classes_and_amber_strict_is_amber() {
        assert_eq!(Label::of("TLP:RED").class, "tlp tlp-red");
        assert_eq!(Label::of("TLP:AMBER+STRICT").class, "tlp tlp-amber");
        assert_eq!(Label::of("TLP:AMBER+STRICT").text, "TLP:AMBER+STRICT");
        assert_eq!(Label::of("TLP:GREEN").class, "tlp tlp-green");
        assert_eq!(Label::of("TLP:CLEAR").class, "tlp tlp-clear");
    }

    #[test]
    fn a_body_flattens_to_lines_in_field_order() {
        let c = pb::SubmissionContent {
            body: Some(pb::submission_content::Body::TerminologyList(
                pb::TerminologyList {
                    terms: vec![pb::Term {
                        term: "incident".into(),
                        definition: "An event.".into(),
                        source: String::new(),
                        equivalents: vec![],
                    }],
                },
            )),
            ..Default::default()
        };
        let lines: Vec<(usize, String, String)> = body_lines(&c)
            .into_iter()
            .map(|l| (l.depth, l.name, l.value))
            .collect();
        assert_eq!(
            lines,
            [
                (0, "Terms 1".to_string(), String::new()),
                (1, "Term".to_string(), "incident".to_string()),
                (1, "Definition".to_string(), "An event.".to_string()),
            ]
        );
    }
}
