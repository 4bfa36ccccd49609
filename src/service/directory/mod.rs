//! The Directory service: points of contact, acknowledgements, ping campaigns.
mod campaigns;
mod contacts;
mod reports;

use tonic::{Request, Response, Status};

use super::{
    auth::{Caller, blocking_audited},
    deadlines::Deadlines,
};
use crate::{
    domain::{
        Invalid, acks, budget,
        member::{Member, Role},
        principal::Action,
        validate::fields,
    },
    pb::{self, directory_server::Directory},
    store::{AckRequest, Store},
};

#[derive(Clone)]
pub struct DirectoryService {
    pub store: Store,
    pub deadlines: Deadlines,
}

/// A submission id in a request field: the hub's ids are UUIDs.
pub(super) fn id_field(errs: &mut Invalid, field: &str, value: &str, required: bool) {
    if value.is_empty() {
        if required {
            errs.push(field, "is required");
        }
    } else if uuid::Uuid::parse_str(value).is_err() {
        errs.push(field, format!("{value:?} is not a submission id"));
    }
}

#[tonic::async_trait]
impl Directory for DirectoryService {
    async fn list_contacts(
        &self,
        req: Request<pb::ListContactsRequest>,
    ) -> Result<Response<pb::ListContactsResponse>, Status> {
        // Checked once the caller is authenticated, so that refusals are audited and counted.
        let filter = contacts::Filter::parse(req.get_ref());
        let page = contacts::Page::parse(req.get_ref());
        blocking_audited(
            &self.store,
            &req,
            "directory.list_contacts",
            "",
            Action::Read,
            move |store, who| {
                let (filter, page) = (filter?, page?);
                let (contacts, next_page_token) =
                    contacts::page(&store, &who.member, &filter, &page)?;
                Ok(pb::ListContactsResponse {
                    contacts,
                    next_page_token,
                })
            },
            |r| {
                r.contacts
                    .iter()
                    .filter_map(|c| c.submission.as_ref().map(|s| s.id.clone()))
                    .collect()
            },
        )
        .await
        .map(Response::new)
    }

    async fn acknowledge(
        &self,
        req: Request<pb::AcknowledgeRequest>,
    ) -> Result<Response<pb::Acknowledgement>, Status> {
        let mut caller = Caller::of(&self.store, &req);
        let r = req.into_inner();
        const NAME: &str = "notice.acknowledge";
        let who = match caller.authenticate(Action::Read) {
            Ok(who) => who,
            Err(status) => return Err(caller.refuse(NAME, &r.notice_id, status).await),
        };
        let mut errs = Invalid::default();
        id_field(&mut errs, "notice_id", &r.notice_id, true);
        if let Err(invalid) = errs.into_result() {
            return Err(caller.refuse(NAME, &r.notice_id, invalid.into()).await);
        }
        // A notice the caller may not see is not found, before any other check answers.
        if let Err(status) =
            crate::service::hub::visible_head(&self.store, &who.member, &r.notice_id)
        {
            return Err(caller.refuse(NAME, &r.notice_id, status).await);
        }
        let mut errs = Invalid::default();
        id_field(&mut errs, "contact_id", &r.contact_id, false);
        fields::optional(&mut errs, "reply", &r.reply, budget::REASON_CHARS, true);
        if let Err(invalid) = errs.into_result() {
            return Err(caller.refuse(NAME, &r.notice_id, invalid.into()).await);
        }
        let request = AckRequest {
            notice_id: r.notice_id,
            reply: r.reply,
            contact_id: r.contact_id,
        };
        let ack = self
            .store
            .acknowledge(who.member, caller.origin, request)
            .await?;
        Ok(Response::new(ack))
    }

    async fn acknowledgement_report(
        &self,
        req: Request<pb::AcknowledgementReportRequest>,
    ) -> Result<Response<pb::AcknowledgementReport>, Status> {
        let id = req.get_ref().notice_id.clone();
        let notice_id = id.clone();
        blocking_audited(
            &self.store,
            &req,
            "notice.ack_report",
            &id,
            Action::ReportAcknowledgements,
            move |store, who| {
                let mut errs = Invalid::default();
                id_field(&mut errs, "notice_id", &notice_id, true);
                errs.into_result()?;
                // Only the sender (and admins, for a campaign) learn anything, even existence.
                let not_found = || Status::not_found(format!("no notice {notice_id} of yours"));
                let reports_on = |c: &pb::PingCampaign, reader: &Member| {
                    reader.roles.contains(Role::Admin) || c.started_by == reader.id
                };
                // A campaign by its id (every notice), or one of its notices.
                let campaign = match store.campaign(&notice_id)? {
                    Some(c) => Some((c, None)),
                    None => store
                        .campaign_of_notice(&notice_id)?
                        .map(|c| (c, Some(notice_id.as_str()))),
                };
                if let Some((c, notice)) = campaign {
                    if !reports_on(&c, &who.member) {
                        return Err(not_found());
                    }
                    return reports::acknowledgements(&store, &notice_id, &c, notice, &who.member);
                }
                let (head, latest) = store.latest(&notice_id)?.ok_or_else(not_found)?;
                let notice = latest.submission.ok_or_else(not_found)?;
                if notice.kind != "notice"
                    || notice.publisher != who.member.id
                    || !crate::domain::audience::sees(&who.member, &head.standing())
                {
                    return Err(not_found());
                }
                let acks = store.acks_of(&notice_id)?;
                Ok(acks::report(
                    &notice,
                    &head.standing(),
                    &store.registry(),
                    &acks,
                    time::OffsetDateTime::now_utc(),
                ))
            },
            |_| Vec::new(),
        )
        .await
        .map(Response::new)
    }

    async fn start_ping_campaign(
        &self,
        req: Request<pb::StartPingCampaignRequest>,
    ) -> Result<Response<pb::PingCampaign>, Status> {
        campaigns::start(self, req).await.map(Response::new)
    }

    async fn get_ping_campaign(
        &self,
        req: Request<pb::GetPingCampaignRequest>,
    ) -> Result<Response<pb::PingCampaign>, Status> {
        let id = req.get_ref().id.clone();
        let wanted = id.clone();
        blocking_audited(
            &self.store,
            &req,
            "ping.campaign.get",
            &id,
            Action::Administer,
            move |store, who| {
                let mut errs = Invalid::default();
                id_field(&mut errs, "id", &wanted, true);
                errs.into_result()?;
                let stored = store
                    .campaign(&wanted)?
                    .ok_or_else(|| Status::not_found(format!("no ping campaign {wanted}")))?;
                reports::report(&store, stored, true, &who.member)
            },
            reports::contacts_shown,
        )
        .await
        .map(Response::new)
    }

    async fn list_ping_campaigns(
        &self,
        req: Request<pb::ListPingCampaignsRequest>,
    ) -> Result<Response<pb::ListPingCampaignsResponse>, Status> {
        blocking_audited(
            &self.store,
            &req,
            "ping.campaign.list",
            "",
            Action::Administer,
            |store, who| {
                let mut campaigns = store
                    .campaigns()?
                    .into_iter()
                    .map(|c| reports::report(&store, c, false, &who.member))
                    .collect::<Result<Vec<_>, _>>()?;
                campaigns.sort_by(|a, b| b.started_at.cmp(&a.started_at));
                Ok(pb::ListPingCampaignsResponse { campaigns })
            },
            |_| Vec::new(),
        )
        .await
        .map(Response::new)
    }
}

/// Records that a campaign's deadline has passed (run by the deadline watcher).
pub async fn close_at_deadline(store: Store, id: String) {
    match store.close_campaign(id.clone()).await {
        Ok(c) => tracing::info!(
            campaign = %id,
            answered = c.answered,
            contacts = c.contacts,
            "ping campaign deadline passed"
        ),
        Err(e) => tracing::error!(campaign = %id, error = %e, "closing a ping campaign failed"),
    }
}

/// Open campaigns and their deadlines, for the deadline watcher at start.
pub fn open_deadlines(store: &Store) -> Result<Vec<(String, time::OffsetDateTime)>, Status> {
    let mut open = Vec::new();
    for c in store.campaigns()? {
        if c.status == crate::store::CAMPAIGN_OPEN {
            let deadline = crate::domain::clock::parse_instant(&c.deadline)
                .map_err(|e| Status::data_loss(format!("campaign {}: {e}", c.id)))?;
            open.push((c.id, deadline));
        }
    }
    Ok(open)
}
