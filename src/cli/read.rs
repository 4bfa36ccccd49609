//! `get`, `list`, `whoami`.
use clap::Args;

use super::{client::ClientArgs, filters::FilterArgs, home::Home, output};
use crate::pb;

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Submission id.
    pub id: String,
    /// Revision number (default: the latest).
    #[arg(long)]
    pub revision: Option<u32>,
    /// Print only the content, as a submission file (edit it and pass it to `revise`): YAML,
    /// or with --json the SubmissionContent message in proto3 JSON, as protobuf libraries
    /// read it (Python's json_format.Parse, Go's protojson.Unmarshal).
    #[arg(long)]
    pub content: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only submissions updated at or after this RFC 3339 instant.
    #[arg(long)]
    pub updated_since: Option<String>,
    /// Only submissions updated before this RFC 3339 instant.
    #[arg(long)]
    pub updated_before: Option<String>,
    /// Only submissions whose title, summary or notice subject or text contain this text
    /// (case-insensitive).
    #[arg(long)]
    pub text: Option<String>,
    /// Only submissions shared with this community (TLP:GREEN; repeatable).
    #[arg(long = "community")]
    pub communities: Vec<String>,
    /// Only notices answering this notice id: the replies of a thread.
    #[arg(long)]
    pub in_reply_to: Option<String>,
    /// Include withdrawn submissions.
    #[arg(long)]
    pub include_withdrawn: bool,
    /// Items per page (1-500).
    #[arg(long, default_value_t = 50)]
    pub page_size: u32,
    /// Continue from a page token printed by a previous list.
    #[arg(long)]
    pub page_token: Option<String>,
    /// Follow page tokens to the end.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn get(home: &Home, a: GetArgs) -> anyhow::Result<()> {
    let mut hub = a.client.hub(home).await?;
    let s = hub
        .get(pb::GetRequest {
            id: a.id,
            revision: a.revision.unwrap_or(0),
        })
        .await?
        .into_inner();
    if a.content {
        let c = s
            .content
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("submission {} is withdrawn: no content", s.id))?;
        if a.client.json {
            return output::json(c);
        }
        print!("{}", output::content_yaml(c)?);
        return Ok(());
    }
    output::submission(&s, a.client.json)
}

pub async fn list(home: &Home, a: ListArgs) -> anyhow::Result<()> {
    let mut hub = a.client.hub(home).await?;
    let mut req = pb::ListRequest {
        updated_since: a.updated_since.unwrap_or_default(),
        updated_before: a.updated_before.unwrap_or_default(),
        text: a.text.unwrap_or_default(),
        communities: a.communities,
        include_withdrawn: a.include_withdrawn,
        page_size: a.page_size,
        page_token: a.page_token.unwrap_or_default(),
        in_reply_to: a.in_reply_to.unwrap_or_default(),
        ..a.filter.list_request()
    };
    let mut first = true;
    loop {
        let page = hub.list(req.clone()).await?.into_inner();
        output::list_page(&page, a.client.json, first)?;
        first = false;
        if !a.all || page.next_page_token.is_empty() {
            if !page.next_page_token.is_empty() && !a.client.json {
                println!("more: --page-token {}", page.next_page_token);
            }
            return Ok(());
        }
        req.page_token = page.next_page_token;
    }
}

pub async fn whoami(home: &Home, a: WhoamiArgs) -> anyhow::Result<()> {
    let mut hub = a.client.hub(home).await?;
    let r = hub.who_am_i(pb::WhoAmIRequest {}).await?.into_inner();
    if a.client.json {
        return output::json(&r);
    }
    let m = r.member.unwrap_or_default();
    output::member(&m);
    println!(
        "certificate sha256: {} (bound by {})",
        r.certificate_sha256, r.bound_by
    );
    Ok(())
}
