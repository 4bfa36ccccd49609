//! The Hub service: publish, revise, withdraw, get, list, whoami.
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{auth::authenticate, listing};
use crate::{
    domain::{
        Invalid,
        catalogue::Catalogue,
        kind::Kind,
        principal::Action,
        validate::{self, Context},
        visibility,
    },
    pb::{self, hub_server::Hub},
    store::{Change, ChangeOp, Store},
};

/// Handlers of the Hub service.
#[derive(Clone)]
pub struct HubService {
    pub store: Store,
    pub catalogue: Arc<Catalogue>,
}

impl HubService {
    /// Validates content against the current registry, catalogue and clock.
    fn validate(
        &self,
        content: Option<&pb::SubmissionContent>,
    ) -> Result<(pb::SubmissionContent, Kind), Status> {
        let content = content.ok_or_else(|| Invalid::one("content", "is required"))?;
        let registry = self.store.registry();
        let ctx = Context {
            registry: &registry,
            catalogue: &self.catalogue,
            now: time::OffsetDateTime::now_utc(),
        };
        let valid = validate::content(&ctx, content, "content")?;
        Ok((content.clone(), valid.kind))
    }

    async fn apply(
        &self,
        req_member: Arc<crate::domain::member::Member>,
        change: Change,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let outcome = self.store.change(req_member, change).await?;
        Ok(Response::new(outcome))
    }
}

fn idempotency_key(key: &str) -> Result<Option<String>, Status> {
    if key.is_empty() {
        return Ok(None);
    }
    if key.len() > 128 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Invalid::one(
            "idempotency_key",
            "must be 1 to 128 printable ASCII characters without spaces",
        )
        .into());
    }
    Ok(Some(key.to_string()))
}

fn required_id(id: &str) -> Result<String, Status> {
    if id.is_empty() {
        return Err(Invalid::one("id", "is required").into());
    }
    if id.len() > 64 {
        return Err(Invalid::one("id", "is not a submission id").into());
    }
    Ok(id.to_string())
}

#[tonic::async_trait]
impl Hub for HubService {
    async fn publish(
        &self,
        req: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let who = authenticate(&self.store, &req, Action::Publish)?;
        let r = req.into_inner();
        let key = idempotency_key(&r.idempotency_key)?;
        let (content, kind) = self.validate(r.content.as_ref())?;
        let change = Change {
            op: ChangeOp::Publish { content, kind },
            idempotency_key: key,
        };
        self.apply(who.member, change).await
    }

    async fn revise(
        &self,
        req: Request<pb::ReviseRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let who = authenticate(&self.store, &req, Action::Revise)?;
        let r = req.into_inner();
        let id = required_id(&r.id)?;
        let key = idempotency_key(&r.idempotency_key)?;
        let (content, kind) = self.validate(r.content.as_ref())?;
        let op = ChangeOp::Revise {
            id,
            content,
            kind,
            expected_revision: r.expected_revision,
        };
        self.apply(
            who.member,
            Change {
                op,
                idempotency_key: key,
            },
        )
        .await
    }

    async fn withdraw(
        &self,
        req: Request<pb::WithdrawRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let who = authenticate(&self.store, &req, Action::Withdraw)?;
        let r = req.into_inner();
        let id = required_id(&r.id)?;
        let key = idempotency_key(&r.idempotency_key)?;
        let mut errs = Invalid::default();
        validate::fields::optional(&mut errs, "reason", &r.reason, 1000, true);
        errs.into_result()?;
        let op = ChangeOp::Withdraw {
            id,
            reason: r.reason,
            expected_revision: r.expected_revision,
        };
        self.apply(
            who.member,
            Change {
                op,
                idempotency_key: key,
            },
        )
        .await
    }

    async fn get(&self, req: Request<pb::GetRequest>) -> Result<Response<pb::Submission>, Status> {
        let who = authenticate(&self.store, &req, Action::Read)?;
        let r = req.into_inner();
        let id = required_id(&r.id)?;
        // One answer for "absent" and "not yours to see", so existence does not leak.
        let not_found =
            || Status::not_found(format!("no submission {id} visible to {}", who.member.id));
        let head = self.store.head_of(&id)?.ok_or_else(not_found)?;
        let latest = self
            .store
            .event(head.latest_seq())?
            .submission
            .unwrap_or_default();
        let wanted = match r.revision {
            0 => latest.clone(),
            n if n <= head.latest_revision() => self
                .store
                .event(head.revision_seqs[n as usize - 1])?
                .submission
                .unwrap_or_default(),
            _ => {
                // Same answer whether or not the caller can see the submission.
                visibility::view(&who.member, &latest, &latest).ok_or_else(not_found)?;
                return Err(Status::not_found(format!(
                    "submission {id} has no revision {}",
                    r.revision
                )));
            }
        };
        visibility::view(&who.member, &latest, &wanted)
            .map(Response::new)
            .ok_or_else(not_found)
    }

    async fn list(
        &self,
        req: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let who = authenticate(&self.store, &req, Action::Read)?;
        let query = listing::Query::parse(req.get_ref())?;
        let store = self.store.clone();
        // A page may scan many stored records: keep that off the async workers.
        let page = tokio::task::spawn_blocking(move || listing::page(&store, &who.member, &query))
            .await
            .map_err(|e| Status::internal(format!("list task failed: {e}")))??;
        Ok(Response::new(page))
    }

    async fn who_am_i(
        &self,
        req: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let who = authenticate(&self.store, &req, Action::WhoAmI)?;
        Ok(Response::new(pb::WhoAmIResponse {
            member: Some(crate::convert::member_to_pb(&who.member)),
            certificate_sha256: who.cert_sha256,
            bound_by: who.bound_by.kind().to_string(),
        }))
    }
}
