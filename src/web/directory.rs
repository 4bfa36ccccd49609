//! The points-of-contact directory and, for admins, the ping campaigns: read through the
//! Directory service implementation (audited as `directory.contacts` and the campaign reads).
use askama::Template;
use axum::extract::Path;

use super::{
    page::{Ctx, Layout, PageResult, html, when},
    submissions::Label,
    text,
};
use crate::pb::{self, directory_server::Directory};

/// A contact not verified for longer than this is marked stale: contacts are to be kept
/// current at least once a year (UN CBM 1's "updated annually"; the POC directory's practice).
const STALE_AFTER_DAYS: i64 = 365;

/// Contacts per page.
const PAGE_SIZE: u32 = 50;

struct ContactRow {
    id: String,
    state: String,
    publisher: String,
    label: Option<Label>,
    level: String,
    organisation: String,
    function: String,
    channels: Vec<String>,
    languages: String,
    availability: String,
    verified: String,
    verified_by: String,
    stale: bool,
}

#[derive(Template)]
#[template(path = "contacts.html", config = "src/web/askama.toml")]
struct ContactsPage {
    l: Layout,
    state: String,
    level: String,
    community: String,
    levels: &'static [&'static str],
    rows: Vec<ContactRow>,
    next: Option<String>,
    paged: bool,
    first: String,
}

/// Is a contact last verified at `verified` (RFC 3339 or a date) stale at `now`?
fn stale(verified: &str, now: time::OffsetDateTime) -> bool {
    let date = crate::domain::clock::parse_instant(verified)
        .map(|t| t.date())
        .or_else(|_| crate::domain::clock::parse_date(verified));
    match date {
        Ok(d) => (now.date() - d).whole_days() > STALE_AFTER_DAYS,
        Err(_) => true,
    }
}

pub async fn contacts(ctx: Ctx) -> PageResult {
    let l = ctx.layout(text::CONTACTS_TITLE, "contacts").await?;
    let p = &ctx.params;
    let page = ctx
        .s
        .directory
        .list_contacts(ctx.req(pb::ListContactsRequest {
            states: p.one("state"),
            levels: p.one("level"),
            communities: p.one("community"),
            page_size: PAGE_SIZE,
            page_token: p.get("page").to_string(),
        }))
        .await?
        .into_inner();
    let now = time::OffsetDateTime::now_utc();
    let rows = page
        .contacts
        .iter()
        .filter_map(|e| {
            let s = e.submission.as_ref()?;
            let c = s.content.as_ref()?;
            let Some(pb::submission_content::Body::PointOfContact(poc)) = &c.body else {
                return None;
            };
            // A ping acknowledged is a verification by the contact itself; else the date the
            // publisher states; publication alone verifies nothing about the contact.
            let (verified, verified_by) =
                if e.verified_by == "acknowledged" || poc.last_verified.is_empty() {
                    (e.verified_at.clone(), e.verified_by.clone())
                } else {
                    (poc.last_verified.clone(), text::STATED.to_string())
                };
            Some(ContactRow {
                id: s.id.clone(),
                state: s.state.clone(),
                publisher: s.publisher.clone(),
                label: Some(Label::of(&c.tlp)),
                level: poc.level.clone(),
                organisation: poc.organisation.clone(),
                function: poc.function.clone(),
                channels: poc
                    .channels
                    .iter()
                    .map(|ch| format!("{}: {}", ch.r#type, ch.value))
                    .collect(),
                languages: poc.languages.join(", "),
                availability: [poc.availability.as_str(), poc.time_zone.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                stale: stale(&verified, now),
                verified: if verified.is_empty() {
                    text::NEVER_VERIFIED.to_string()
                } else {
                    when(&verified)
                },
                verified_by,
            })
        })
        .collect();
    let next = (!page.next_page_token.is_empty()).then(|| p.with("page", &page.next_page_token));
    Ok(html(&ContactsPage {
        state: p.get("state").into(),
        level: p.get("level").into(),
        community: p.get("community").into(),
        levels: crate::domain::validate::POC_LEVELS,
        rows,
        next,
        paged: !p.get("page").is_empty(),
        first: p.with("page", ""),
        l,
    }))
}

struct CampaignRow {
    id: String,
    started: String,
    started_by: String,
    deadline: String,
    status: String,
    scope: String,
    contacts: u32,
    answered: u32,
    on_time: u32,
    rate: String,
}

fn percent(rate: f64) -> String {
    text::percent(rate)
}

fn campaign_row(c: &pb::PingCampaign) -> CampaignRow {
    CampaignRow {
        id: c.id.clone(),
        started: when(&c.started_at),
        started_by: c.started_by.clone(),
        deadline: when(&c.deadline),
        status: c.status.clone(),
        scope: if c.community.is_empty() {
            text::ALL_MEMBERS.to_string()
        } else {
            c.community.clone()
        },
        contacts: c.contacts,
        answered: c.answered,
        on_time: c.answered_on_time,
        rate: percent(c.response_rate),
    }
}

#[derive(Template)]
#[template(path = "campaigns.html", config = "src/web/askama.toml")]
struct CampaignsPage {
    l: Layout,
    rows: Vec<CampaignRow>,
}

pub async fn campaigns(ctx: Ctx) -> PageResult {
    let l = ctx.layout(text::CAMPAIGNS_TITLE, "campaigns").await?;
    let list = ctx
        .s
        .directory
        .list_ping_campaigns(ctx.req(pb::ListPingCampaignsRequest {}))
        .await?
        .into_inner();
    let rows = list.campaigns.iter().map(campaign_row).collect();
    Ok(html(&CampaignsPage { l, rows }))
}

struct StateRow {
    state: String,
    contacts: u32,
    answered: u32,
    rate: String,
    /// Width class of the bar (0..=10 tenths): CSS only, no inline style.
    bar: u32,
}

struct ResultRow {
    state: String,
    member: String,
    level: String,
    organisation: String,
    answered: bool,
    answered_at: String,
    on_time: bool,
    status: String,
    reply: String,
    notice_id: String,
}

#[derive(Template)]
#[template(path = "campaign.html", config = "src/web/askama.toml")]
struct CampaignPage {
    l: Layout,
    c: CampaignRow,
    states: Vec<StateRow>,
    results: Vec<ResultRow>,
}

pub async fn campaign(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let mut l = ctx.layout(text::CAMPAIGN, "campaigns").await?;
    let c = ctx
        .s
        .directory
        .get_ping_campaign(ctx.req(pb::GetPingCampaignRequest { id }))
        .await?
        .into_inner();
    l.title = format!("{} {}", text::CAMPAIGN, c.id);
    let states = c
        .states
        .iter()
        .map(|s| StateRow {
            state: s.state.clone(),
            contacts: s.contacts,
            answered: s.answered,
            rate: percent(s.response_rate),
            bar: (s.response_rate.clamp(0.0, 1.0) * 10.0).round() as u32,
        })
        .collect();
    let results = c
        .results
        .iter()
        .map(|r| ResultRow {
            state: r.state.clone(),
            member: r.member.clone(),
            level: r.level.clone(),
            organisation: r.organisation.clone(),
            answered: r.answered,
            answered_at: when(&r.answered_at),
            on_time: r.on_time,
            status: r.status.clone(),
            reply: r.reply.clone(),
            notice_id: r.notice_id.clone(),
        })
        .collect();
    Ok(html(&CampaignPage {
        c: campaign_row(&c),
        states,
        results,
        l,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_is_stale_after_a_year_or_when_never_verified() {
        let now = time::macros::datetime!(2026-12-01 12:00 UTC);
        assert!(!stale("2026-01-01T00:00:00Z", now));
        assert!(!stale("2025-12-01", now));
        assert!(stale("2025-11-30", now));
        assert!(stale("", now));
    }
}
