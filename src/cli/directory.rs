//! `contacts`, `ack`, `ack-report` and `ping`: the points-of-contact directory, acknowledgements
//! and ping campaigns.
use clap::{Args, Subcommand};

use super::{client::ClientArgs, home::Home, output};
use crate::pb;

#[derive(Debug, Args)]
pub struct ContactsArgs {
    /// Only contacts of this state or organisation code (repeatable).
    #[arg(long = "state")]
    pub states: Vec<String>,
    /// Only this level (repeatable): policy, technical, legal.
    #[arg(long = "level")]
    pub levels: Vec<String>,
    /// Only contacts of members of this community (repeatable).
    #[arg(long = "community")]
    pub communities: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct AckArgs {
    /// Id of the notice acknowledged (for a ping campaign: the ping notice you received).
    pub notice_id: String,
    /// Short reply sent with the acknowledgement.
    #[arg(long, default_value = "")]
    pub reply: String,
    /// Ping campaigns: the point-of-contact submission this answers for (default: all yours
    /// that the campaign tests).
    #[arg(long)]
    pub contact: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct AckReportArgs {
    /// Id of one of your notices, or (admins) of a ping campaign or one of its notices.
    pub notice_id: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum PingCommand {
    /// Start a ping campaign to every active point of contact you may read, or a community's
    /// (admins): one notice per member holding tested contacts.
    Start(PingStartArgs),
    /// A campaign's report: per state and per contact, whether and when it answered.
    Show(PingShowArgs),
    /// Every campaign, newest first.
    List(PingListArgs),
}

#[derive(Debug, Args)]
pub struct PingStartArgs {
    /// Only contacts of members of this community.
    #[arg(long, default_value = "")]
    pub community: String,
    /// Only this level (repeatable): policy, technical, legal.
    #[arg(long = "level")]
    pub levels: Vec<String>,
    /// Deadline (RFC 3339). Default: 24 hours from now.
    #[arg(long, default_value = "")]
    pub deadline: String,
    /// Subject of the ping notice (default: "Please confirm your point of contact").
    #[arg(long, default_value = "")]
    pub subject: String,
    /// Text of the ping notice.
    #[arg(long, default_value = "")]
    pub text: String,
    /// Idempotency key: a retry with the same key starts nothing new.
    #[arg(long, default_value = "")]
    pub idempotency_key: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct PingShowArgs {
    /// Campaign id (printed by `ping start`).
    pub id: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct PingListArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn contacts(home: &Home, a: ContactsArgs) -> anyhow::Result<()> {
    let mut dir = a.client.directory(home).await?;
    // Every page, in order: the directory is small enough to print whole.
    let mut contacts = Vec::new();
    let mut page_token = String::new();
    loop {
        let r = dir
            .list_contacts(pb::ListContactsRequest {
                states: a.states.clone(),
                levels: a.levels.clone(),
                communities: a.communities.clone(),
                page_size: 0,
                page_token,
            })
            .await?
            .into_inner();
        contacts.extend(r.contacts);
        if r.next_page_token.is_empty() {
            break;
        }
        page_token = r.next_page_token;
    }
    let r = pb::ListContactsResponse {
        contacts,
        next_page_token: String::new(),
    };
    if a.client.json {
        return r.contacts.iter().try_for_each(output::json);
    }
    let mut rows = vec![row([
        "STATE",
        "LEVEL",
        "PUBLISHER",
        "ORGANISATION",
        "REACH",
        "VERIFIED",
        "BY",
        "ID",
    ])];
    for e in &r.contacts {
        let Some(s) = &e.submission else { continue };
        let poc = match s.content.as_ref().and_then(|c| c.body.as_ref()) {
            Some(pb::submission_content::Body::PointOfContact(p)) => p.clone(),
            _ => Default::default(),
        };
        let reach = poc
            .channels
            .first()
            .map(|c| format!("{} {}", c.r#type, c.value))
            .unwrap_or_default();
        rows.push(vec![
            s.state.clone(),
            poc.level,
            s.publisher.clone(),
            poc.organisation,
            reach,
            e.verified_at.clone(),
            e.verified_by.clone(),
            s.id.clone(),
        ]);
    }
    output::table(&rows);
    Ok(())
}

pub async fn ack(home: &Home, a: AckArgs) -> anyhow::Result<()> {
    let mut dir = a.client.directory(home).await?;
    let ack = dir
        .acknowledge(pb::AcknowledgeRequest {
            notice_id: a.notice_id,
            reply: a.reply,
            contact_id: a.contact.unwrap_or_default(),
        })
        .await?
        .into_inner();
    if a.client.json {
        return output::json(&ack);
    }
    let timing = match (ack.deadline.is_empty(), ack.on_time) {
        (true, _) => String::new(),
        (false, true) => format!(", on time (deadline {})", ack.deadline),
        (false, false) => format!(", LATE (deadline {})", ack.deadline),
    };
    let again = if ack.replayed {
        " (already acknowledged)"
    } else {
        ""
    };
    println!(
        "acknowledged notice {} revision {} at {}{timing}{again}; sequence {}",
        ack.notice_id, ack.notice_revision, ack.acknowledged_at, ack.sequence
    );
    Ok(())
}

pub async fn ack_report(home: &Home, a: AckReportArgs) -> anyhow::Result<()> {
    let mut dir = a.client.directory(home).await?;
    let r = dir
        .acknowledgement_report(pb::AcknowledgementReportRequest {
            notice_id: a.notice_id,
        })
        .await?
        .into_inner();
    if a.client.json {
        return output::json(&r);
    }
    let deadline = if r.deadline.is_empty() {
        "no deadline".to_string()
    } else {
        format!(
            "deadline {}{}",
            r.deadline,
            if r.deadline_passed { " (passed)" } else { "" }
        )
    };
    println!(
        "notice {} revision {}: {} of {} acknowledged, {} on time; {deadline}",
        r.notice_id, r.notice_revision, r.acknowledged, r.expected, r.on_time
    );
    let mut rows = vec![row(["MEMBER", "STATE", "STATUS", "AT", "REPLY"])];
    for line in &r.recipients {
        rows.push(vec![
            line.member.clone(),
            line.state.clone(),
            line.status.clone(),
            line.acknowledged_at.clone(),
            line.reply.clone(),
        ]);
    }
    output::table(&rows);
    Ok(())
}

pub async fn ping(home: &Home, c: PingCommand) -> anyhow::Result<()> {
    match c {
        PingCommand::Start(a) => {
            let mut dir = a.client.directory(home).await?;
            let campaign = dir
                .start_ping_campaign(pb::StartPingCampaignRequest {
                    community: a.community,
                    levels: a.levels,
                    deadline: a.deadline,
                    subject: a.subject,
                    text: a.text,
                    idempotency_key: a.idempotency_key,
                })
                .await?
                .into_inner();
            campaign_report(&campaign, a.client.json)
        }
        PingCommand::Show(a) => {
            let mut dir = a.client.directory(home).await?;
            let campaign = dir
                .get_ping_campaign(pb::GetPingCampaignRequest { id: a.id })
                .await?
                .into_inner();
            campaign_report(&campaign, a.client.json)
        }
        PingCommand::List(a) => {
            let mut dir = a.client.directory(home).await?;
            let list = dir
                .list_ping_campaigns(pb::ListPingCampaignsRequest {})
                .await?
                .into_inner();
            if a.client.json {
                return list.campaigns.iter().try_for_each(output::json);
            }
            let mut rows = vec![row([
                "ID", "STARTED", "DEADLINE", "STATUS", "CONTACTS", "ANSWERED", "RATE",
            ])];
            for c in &list.campaigns {
                rows.push(vec![
                    c.id.clone(),
                    c.started_at.clone(),
                    c.deadline.clone(),
                    c.status.clone(),
                    c.contacts.to_string(),
                    c.answered.to_string(),
                    percent(c.response_rate),
                ]);
            }
            output::table(&rows);
            Ok(())
        }
    }
}

fn campaign_report(c: &pb::PingCampaign, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return output::json(c);
    }
    println!(
        "campaign {} ({}), started {} by {}, deadline {}",
        c.id, c.status, c.started_at, c.started_by, c.deadline
    );
    println!(
        "{} of {} contacts answered ({}), {} on time",
        c.answered,
        c.contacts,
        percent(c.response_rate),
        c.answered_on_time
    );
    let mut states = vec![row(["STATE", "CONTACTS", "ANSWERED", "RATE"])];
    for s in &c.states {
        states.push(vec![
            s.state.clone(),
            s.contacts.to_string(),
            s.answered.to_string(),
            percent(s.response_rate),
        ]);
    }
    output::table(&states);
    println!();
    let mut contacts = vec![row([
        "STATE",
        "MEMBER",
        "LEVEL",
        "ORGANISATION",
        "STATUS",
        "ANSWERED AT",
        "CONTACT",
        "NOTICE",
    ])];
    for t in &c.results {
        contacts.push(vec![
            t.state.clone(),
            t.member.clone(),
            t.level.clone(),
            t.organisation.clone(),
            t.status.clone(),
            t.answered_at.clone(),
            t.contact_id.clone(),
            t.notice_id.clone(),
        ]);
    }
    output::table(&contacts);
    Ok(())
}

fn percent(rate: f64) -> String {
    format!("{:.0}%", rate * 100.0)
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}
