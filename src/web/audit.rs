//! For auditors: the audit log with filters and whether the chain and checkpoints verify; for
//! admins: the members and their certificate bindings. Read through the Audit and MemberAdmin
//! service implementations, which decide who may and audit the reads.
use askama::Template;

use super::{
    page::{Ctx, Layout, PageResult, day_start, html, when},
    text,
};
use crate::pb::{self, audit_server::Audit, member_admin_server::MemberAdmin};

/// Entries per page of the audit log.
const PAGE_SIZE: u32 = 50;

struct BindingRow {
    kind: &'static str,
    value: String,
    note: String,
}

struct MemberRow {
    id: String,
    state: String,
    name: String,
    roles: String,
    communities: String,
    status: String,
    bindings: Vec<BindingRow>,
}

#[derive(Template)]
#[template(path = "members.html", config = "src/web/askama.toml")]
struct MembersPage {
    l: Layout,
    state: String,
    role: String,
    rows: Vec<MemberRow>,
}

pub async fn members(ctx: Ctx) -> PageResult {
    use pb::certificate_binding::Binding as B;
    let l = ctx.layout(text::MEMBERS_TITLE, "members").await?;
    let p = &ctx.params;
    let list = ctx
        .s
        .admin
        .list_members(ctx.req(pb::ListMembersRequest {
            state: p.get("state").into(),
            role: p.get("role").into(),
        }))
        .await?
        .into_inner();
    let rows = list
        .members
        .into_iter()
        .map(|m| MemberRow {
            bindings: m
                .bindings
                .iter()
                .map(|b| {
                    let (kind, value) = match &b.binding {
                        Some(B::CertSha256(v)) => ("cert_sha256", v.clone()),
                        Some(B::SpkiSha256(v)) => ("spki_sha256", v.clone()),
                        Some(B::UriSan(v)) => ("uri_san", v.clone()),
                        None => ("", String::new()),
                    };
                    BindingRow {
                        kind,
                        value,
                        note: b.note.clone(),
                    }
                })
                .collect(),
            id: m.id,
            state: m.state,
            name: m.display_name,
            roles: m.roles.join(", "),
            communities: m.communities.join(", "),
            status: m.status,
        })
        .collect();
    Ok(html(&MembersPage {
        state: p.get("state").into(),
        role: p.get("role").into(),
        rows,
        l,
    }))
}

struct EntryRow {
    sequence: u64,
    at: String,
    member: String,
    peer: String,
    action: String,
    object: String,
    /// The ids a list-like read returned (shown folded).
    object_ids: Vec<String>,
    revision: u32,
    label: String,
    refused: bool,
    reason: String,
    count: u64,
}

#[derive(Template)]
#[template(path = "audit.html", config = "src/web/askama.toml")]
struct AuditPage {
    l: Layout,
    report: pb::VerifyReport,
    covered_at: String,
    /// When the whole log was last read and verified (the report continues it with the
    /// entries since; see `AuditService::verify_recent`).
    whole_at: String,
    /// The link that verifies the whole log now.
    verify_whole: String,
    member: String,
    action: String,
    object: String,
    outcome: String,
    since: String,
    until: String,
    rows: Vec<EntryRow>,
    next: Option<String>,
    paged: bool,
    first: String,
}

pub async fn log(ctx: Ctx) -> PageResult {
    let l = ctx.layout(text::AUDIT_TITLE, "audit").await?;
    let p = &ctx.params;
    // `?verify=whole` reads the whole log now; otherwise the last whole verification (at most
    // five minutes old) is continued with the entries written since.
    let max_age = if p.get("verify") == "whole" {
        std::time::Duration::ZERO
    } else {
        crate::service::WHOLE_VERIFICATION_EVERY
    };
    let (report, whole_at) = ctx
        .s
        .audit
        .verify_recent(ctx.req(pb::VerifyRequest {}), max_age)
        .await?;
    let page = ctx
        .s
        .audit
        .query(ctx.req(pb::AuditQuery {
            member: p.get("member").into(),
            action: p.get("action").into(),
            object_id: p.get("object").into(),
            outcome: p.get("outcome").into(),
            since: day_start(p.get("since"), 0),
            until: day_start(p.get("until"), 1),
            page_size: PAGE_SIZE,
            page_token: p.get("page").into(),
        }))
        .await?
        .into_inner();
    let rows = page
        .entries
        .into_iter()
        .map(|e| EntryRow {
            sequence: e.sequence,
            at: when(&e.at),
            member: e.member,
            peer: e.peer,
            action: e.action,
            object: e.object_id,
            object_ids: e.object_ids,
            revision: e.revision,
            label: e.label,
            refused: e.outcome == crate::audit::REFUSED,
            reason: e.reason,
            count: e.count,
        })
        .collect();
    let next = (!page.next_page_token.is_empty()).then(|| p.with("page", &page.next_page_token));
    Ok(html(&AuditPage {
        covered_at: when(&report.covered_at),
        whole_at: when(&whole_at),
        verify_whole: p.with("verify", "whole"),
        report,
        member: p.get("member").into(),
        action: p.get("action").into(),
        object: p.get("object").into(),
        outcome: p.get("outcome").into(),
        since: p.get("since").into(),
        until: p.get("until").into(),
        rows,
        next,
        paged: !p.get("page").is_empty(),
        first: p.with("page", ""),
        l,
    }))
}
