//! The Hub service: publish, revise, withdraw, get, list, whoami.
use prost::Message;
use tonic::{Request, Response, Status};

use super::{
    auth::{Caller, refused},
    listing, receipt,
};
use crate::{
    domain::{
        Invalid,
        budget::REASON_CHARS,
        kind::Kind,
        member::Member,
        principal::Action,
        validate::{self, Context},
        visibility,
    },
    metrics::{Metrics, Operation, PublishOutcome},
    pb::{self, hub_server::Hub},
    provenance::{ProvenanceError, statement},
    store::{Change, ChangeOp, Store, StoreError},
};

/// Handlers of the Hub service.
#[derive(Clone)]
pub struct HubService {
    pub store: Store,
    pub metrics: Metrics,
    /// The TLS material in force: author signatures are checked against its CAs and CRLs.
    pub tls: std::sync::Arc<crate::tls::reload::TlsState>,
}

impl HubService {
    /// Validates content against the current registry, catalogue and clock, and its size
    /// against every exit (as `signed` by its author or not).
    fn validate(
        &self,
        content: Option<pb::SubmissionContent>,
        previous: Option<&pb::SubmissionContent>,
        signed: bool,
    ) -> Result<(pb::SubmissionContent, Kind), Status> {
        let content = content.ok_or_else(|| Invalid::one("content", "is required"))?;
        let registry = self.store.registry();
        let ctx = Context {
            registry: &registry,
            catalogue: &self.store.catalogue(),
            now: time::OffsetDateTime::now_utc(),
            previous,
        };
        let valid = validate::content(&ctx, &content, "content")?;
        // Valid content must also fit every exit it will take, whole (RESOURCE_EXHAUSTED).
        self.store
            .budget()
            .check_content(&content, valid.kind, signed)?;
        Ok((content, valid.kind))
    }

    /// The content of the latest revision of `id`, which `actor` is about to change: answers
    /// NOT_FOUND when the actor may not see the submission and PERMISSION_DENIED when it is not
    /// its publisher, before anything else is checked, so that no later check (the content's
    /// validation against the previous revision, say) tells anything about a submission the
    /// actor may not see. The writer checks again, against the state it commits on.
    fn own_latest_content(
        &self,
        actor: &Member,
        id: &str,
    ) -> Result<Option<pb::SubmissionContent>, Status> {
        let head = visible_head(&self.store, actor, id)?;
        if head.publisher != actor.id {
            return Err(Status::permission_denied(format!(
                "only its publisher {} may change submission {id}",
                head.publisher
            )));
        }
        Ok(self
            .store
            .event(head.latest_seq())?
            .submission
            .and_then(|s| s.content))
    }

    /// Authenticates and checks a change request, then hands it to the writer. Refusals before
    /// the writer are audited here; the writer audits the rest in the change's own transaction.
    /// Every outcome is counted here, by the kind of submission concerned (`kind` tells it from
    /// the request; for a withdrawal, from the stored submission).
    async fn submit(
        &self,
        caller: Caller,
        action: Action,
        object_id: &str,
        kind: Option<String>,
        receipt: bool,
        prepare: impl FnOnce(&Member) -> Result<Change, Status>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        // The change's group signs the checkpoint its receipt proves against.
        let prepare = |actor: &Member| prepare(actor).map(|c| c.with_receipt(receipt));
        let operation = match action {
            Action::Revise => Operation::Revise,
            Action::Withdraw => Operation::Withdraw,
            _ => Operation::Publish,
        };
        let result = self.submit_change(caller, action, object_id, prepare).await;
        // A withdrawal request names no kind: the stored one labels it once it is accepted
        // (the caller is then its publisher); a refused one is not labelled with the kind of a
        // submission the caller may not see.
        let kind = match (action, &result) {
            (Action::Withdraw, Ok(Ok(_))) => {
                self.store.head_of(object_id).ok().flatten().map(|h| h.kind)
            }
            (Action::Withdraw, _) => None,
            _ => kind,
        };
        let outcome = match &result {
            Ok(Ok(r)) if r.get_ref().replayed => PublishOutcome::Replayed,
            Ok(Ok(_)) => PublishOutcome::Accepted,
            Ok(Err(_)) => PublishOutcome::Refused,
            Err(StoreError::Io(_) | StoreError::Closed | StoreError::Corrupt(_)) => {
                PublishOutcome::Failed
            }
            Err(_) => PublishOutcome::Refused,
        };
        self.metrics.publish(operation, kind.as_deref(), outcome);
        self.with_receipt(result.map_err(Status::from)?, receipt)
            .await
    }

    /// [`HubService::submit`] without the counting: Err(StoreError) when the writer refused
    /// or failed, Ok(Err) when refused before it.
    async fn submit_change(
        &self,
        mut caller: Caller,
        action: Action,
        object_id: &str,
        prepare: impl FnOnce(&Member) -> Result<Change, Status>,
    ) -> Result<Result<Response<pb::PublishResponse>, Status>, StoreError> {
        let name = match action {
            Action::Revise => "submission.revise",
            Action::Withdraw => "submission.withdraw",
            _ => "submission.publish",
        };
        let who = match caller.authenticate(action) {
            Ok(who) => who,
            Err(status) => return Ok(Err(caller.refuse(name, object_id, status).await)),
        };
        let change = match prepare(&who.member) {
            Ok(change) => change,
            Err(status) => return Ok(Err(caller.refuse(name, object_id, status).await)),
        };
        let outcome = self.store.change(who.member, caller.origin, change).await?;
        Ok(Ok(Response::new(outcome)))
    }

    /// Checks a change's author signature over `payload` (or that the actor may go unsigned).
    fn signature(
        &self,
        actor: &Member,
        payload: &[u8],
        signature: &[u8],
    ) -> Result<Vec<u8>, Status> {
        receipt::check_signature(&self.tls, &self.store, actor, payload, signature)
    }

    /// [`HubService::signature`] over the encoded `content`, encoded only when there is a
    /// signature to check: an unsigned change (the common case) does not pay for an encoding
    /// that nothing reads.
    fn content_signature(
        &self,
        actor: &Member,
        content: &pb::SubmissionContent,
        signature: &[u8],
    ) -> Result<Vec<u8>, Status> {
        let payload = if signature.is_empty() {
            Vec::new()
        } else {
            content.encode_to_vec()
        };
        self.signature(actor, &payload, signature)
    }

    /// Adds the receipt to an accepted change's reply when it was signed or asked for. The
    /// change is durable: a receipt that cannot be made now is logged, and `GetReceipt` can
    /// still give it.
    async fn with_receipt(
        &self,
        result: Result<Response<pb::PublishResponse>, Status>,
        wanted: bool,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let mut response = result?;
        if !wanted {
            return Ok(response);
        }
        let r = response.get_ref();
        let (id, seq) = (r.id.clone(), r.sequence);
        let head = self.store.head_of(&id).ok().flatten();
        let built = match head {
            Some(head) => receipt::build(&self.store, head, seq).await,
            None => Err(Status::internal(format!("submission {id} has no head"))),
        };
        match built {
            Ok(receipt) => response.get_mut().receipt = Some(receipt),
            Err(e) => tracing::warn!(id, seq, error = %e.message(), "no receipt in the reply"),
        }
        Ok(response)
    }

    /// The revision `r` asks for, as `reader` may see it.
    fn read(&self, reader: &Member, r: &pb::GetRequest) -> Result<pb::Submission, Status> {
        let id = required_id(&r.id)?;
        // One answer for "absent" and "not yours to see", so existence does not leak.
        let not_found =
            || Status::not_found(format!("no submission {id} visible to {}", reader.id));
        let (head, latest) = self
            .store
            .latest_seen_by(reader, &id)?
            .ok_or_else(not_found)?;
        let latest = latest.submission.unwrap_or_default();
        let wanted = match r.revision {
            0 => latest.clone(),
            n if n <= head.latest_revision() => self
                .store
                .event(head.revision_seqs[n as usize - 1])?
                .submission
                .unwrap_or_default(),
            _ => {
                // Same answer whether or not the caller can see the submission.
                visibility::view(reader, &head.standing(), &latest, &latest)
                    .ok_or_else(not_found)?;
                return Err(Status::not_found(format!(
                    "submission {id} has no revision {}",
                    r.revision
                )));
            }
        };
        visibility::view(reader, &head.standing(), &latest, &wanted).ok_or_else(not_found)
    }
}

/// A signed publication or revision must claim, in its protected header, the change it is
/// (see [`statement::change_claim`]).
fn claimed(signature: &[u8], expected: &str) -> Result<(), Status> {
    if signature.is_empty() {
        return Ok(());
    }
    Ok(crate::provenance::cose::Signature::parse(signature)?.check_claim(expected)?)
}

/// A withdrawal signature that does not verify names the statement it had to sign.
fn withdrawal_mismatch(e: Status, id: &str, revision: u32, reason: &str) -> Status {
    if e.message() != ProvenanceError::Mismatch.to_string() {
        return e;
    }
    let text = String::from_utf8_lossy(&statement::withdrawal(id, revision, reason)).into_owned();
    Status::invalid_argument(format!(
        "signature: does not match the withdrawal statement {text:?} (revision {revision} is the one this withdrawal produces)"
    ))
}

/// The kind a request's content is, as far as its body tells (before validation).
fn kind_of(content: Option<&pb::SubmissionContent>) -> Option<String> {
    let body = content?.body.as_ref()?;
    Some(Kind::of(body).as_str().to_string())
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

/// The head of submission `id` if `reader` may see it (its content or its withdrawal); else
/// NOT_FOUND, the same answer as for a submission that does not exist.
pub(crate) fn visible_head(
    store: &Store,
    reader: &Member,
    id: &str,
) -> Result<crate::store::records::SubmissionHead, Status> {
    store
        .head_of(id)?
        .filter(|head| crate::domain::audience::sees(reader, &head.standing()))
        .ok_or_else(|| Status::not_found(format!("no submission {id} visible to {}", reader.id)))
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
        let caller = Caller::of(&self.store, &req);
        let r = req.into_inner();
        let kind = kind_of(r.content.as_ref());
        let wanted = r.want_receipt || !r.signature.is_empty();
        self.submit(caller, Action::Publish, "", kind, wanted, |actor| {
            let idempotency_key = idempotency_key(&r.idempotency_key)?;
            let (content, kind) = self.validate(r.content, None, !r.signature.is_empty())?;
            let signature = self.content_signature(actor, &content, &r.signature)?;
            claimed(&signature, &statement::change_claim("", 1))?;
            Ok(Change::new(ChangeOp::Publish { content, kind }, idempotency_key).signed(signature))
        })
        .await
    }

    async fn revise(
        &self,
        req: Request<pb::ReviseRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let caller = Caller::of(&self.store, &req);
        let r = req.into_inner();
        let kind = kind_of(r.content.as_ref());
        let wanted = r.want_receipt || !r.signature.is_empty();
        self.submit(caller, Action::Revise, &r.id, kind, wanted, |actor| {
            let id = required_id(&r.id)?;
            let previous = self.own_latest_content(actor, &id)?;
            let idempotency_key = idempotency_key(&r.idempotency_key)?;
            let (content, kind) =
                self.validate(r.content, previous.as_ref(), !r.signature.is_empty())?;
            let signature = self.content_signature(actor, &content, &r.signature)?;
            let mut expected_revision = r.expected_revision;
            if !signature.is_empty() {
                // The claim names the revision this change produces: were another change
                // to come first, the writer refuses instead of storing a signature that
                // claims another revision.
                if expected_revision == 0 {
                    expected_revision = visible_head(&self.store, actor, &id)?.latest_revision();
                }
                claimed(
                    &signature,
                    &statement::change_claim(&id, expected_revision + 1),
                )?;
            }
            let op = ChangeOp::Revise {
                id,
                content,
                kind,
                expected_revision,
            };
            Ok(Change::new(op, idempotency_key).signed(signature))
        })
        .await
    }

    async fn withdraw(
        &self,
        req: Request<pb::WithdrawRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let caller = Caller::of(&self.store, &req);
        let r = req.into_inner();
        let wanted = r.want_receipt || !r.signature.is_empty();
        self.submit(caller, Action::Withdraw, &r.id, None, wanted, |actor| {
            let id = required_id(&r.id)?;
            self.own_latest_content(actor, &id)?;
            let idempotency_key = idempotency_key(&r.idempotency_key)?;
            let mut errs = Invalid::default();
            validate::fields::optional(&mut errs, "reason", &r.reason, REASON_CHARS, true);
            errs.into_result()?;
            let mut expected_revision = r.expected_revision;
            let mut signature = Vec::new();
            if !r.signature.is_empty() || actor.require_signed {
                let current = visible_head(&self.store, actor, &id)?.latest_revision();
                let revision = current + 1;
                let statement = statement::withdrawal(&id, revision, &r.reason);
                signature = self
                    .signature(actor, &statement, &r.signature)
                    .map_err(|e| withdrawal_mismatch(e, &id, revision, &r.reason))?;
                // The statement names the revision the withdrawal produces: were another
                // change to come first, the writer refuses instead of storing a statement
                // about another state.
                if expected_revision == 0 {
                    expected_revision = current;
                }
            }
            let op = ChangeOp::Withdraw {
                id,
                reason: r.reason.clone(),
                expected_revision,
            };
            Ok(Change::new(op, idempotency_key).signed(signature))
        })
        .await
    }

    async fn get(&self, req: Request<pb::GetRequest>) -> Result<Response<pb::Submission>, Status> {
        let mut caller = Caller::of(&self.store, &req);
        let r = req.into_inner();
        let result = match caller.authenticate(Action::Read) {
            Ok(who) => self.read(&who.member, &r),
            Err(status) => Err(status),
        };
        let mut entry = caller.entry("submission.get");
        entry.object_id = r.id.clone();
        entry.revision = r.revision;
        let entry = match &result {
            Ok(s) => {
                entry.revision = s.revision;
                entry.label = s
                    .content
                    .as_ref()
                    .map(|c| c.tlp.clone())
                    .unwrap_or_default();
                entry
            }
            Err(status) => refused(entry, status),
        };
        caller.record(entry).await;
        result.map(Response::new)
    }

    async fn list(
        &self,
        req: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let mut caller = Caller::of(&self.store, &req);
        let result = async {
            let who = caller.authenticate(Action::Read)?;
            let query = listing::Query::parse(req.get_ref())?;
            let store = self.store.clone();
            // A page may scan many stored records: keep that off the async workers.
            tokio::task::spawn_blocking(move || listing::page(&store, &who.member, &query))
                .await
                .map_err(|e| Status::internal(format!("list task failed: {e}")))?
        }
        .await;
        let mut entry = caller.entry("submission.list");
        let entry = match &result {
            Ok(page) => {
                // The ids returned: each is a read of that submission, for its access log.
                entry.object_ids = page.submissions.iter().map(|s| s.id.clone()).collect();
                entry
            }
            Err(status) => refused(entry, status),
        };
        caller.record(entry).await;
        result.map(Response::new)
    }

    async fn get_receipt(
        &self,
        req: Request<pb::GetReceiptRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let mut caller = Caller::of(&self.store, &req);
        let r = req.into_inner();
        let result = match caller.authenticate(Action::Read) {
            Ok(who) => match required_id(&r.id) {
                Ok(id) => receipt::for_reader(&self.store, who.member, id, r.revision).await,
                Err(status) => Err(status),
            },
            Err(status) => Err(status),
        };
        let mut entry = caller.entry("submission.receipt");
        entry.object_id = r.id.clone();
        entry.revision = r.revision;
        let entry = match &result {
            Ok(receipt) => {
                entry.revision = receipt.revision;
                entry
            }
            Err(status) => refused(entry, status),
        };
        caller.record(entry).await;
        result.map(Response::new)
    }

    async fn who_am_i(
        &self,
        req: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        // An answer touches no data and is not audited; a refusal is (an unbound or suspended
        // certificate trying the hub is what an auditor looks for).
        let mut caller = Caller::of(&self.store, &req);
        let who = match caller.authenticate(Action::WhoAmI) {
            Ok(who) => who,
            Err(status) => return Err(caller.refuse("member.whoami", "", status).await),
        };
        Ok(Response::new(pb::WhoAmIResponse {
            member: Some(crate::convert::member_to_pb(&who.member)),
            certificate_sha256: who.cert_sha256,
            bound_by: who.bound_by.kind().to_string(),
        }))
    }
}
