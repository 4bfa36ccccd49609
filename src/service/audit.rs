//! The Audit service: query, export and verify the log (auditors and admins), and the access
//! log of a publisher's own submissions. Every call is itself audited.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{
    auth::{Caller, refused},
    consistency,
};
use crate::{
    audit::{ALLOWED, REFUSED},
    domain::{Invalid, clock, principal::Action},
    pb::{self, audit_server::Audit},
    store::{Store, StoreError},
};

/// Entries examined per query page at most; the page token continues from there.
const SCAN_BUDGET: usize = 100_000;
/// Encoded bytes per page at most (a page holds at least one item). With every entry at most
/// `audit::bound::MAX_ENTRY_BYTES`, a page stays under the smallest message limit (3 MiB).
const PAGE_BYTES: usize = 2 * 1024 * 1024;

#[derive(Clone)]
pub struct AuditService {
    pub store: Store,
}

fn page_size(n: u32) -> Result<usize, Invalid> {
    match n {
        0 => Ok(100),
        1..=1000 => Ok(n as usize),
        n => Err(Invalid::one(
            "page_size",
            format!("{n} is over the maximum of 1000"),
        )),
    }
}

fn token(t: &str) -> Result<u64, Invalid> {
    if t.is_empty() {
        return Ok(0);
    }
    URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| Invalid::one("page_token", "is not a token returned by this call"))
}

fn instant(field: &str, v: &str) -> Result<Option<String>, Invalid> {
    if v.is_empty() {
        return Ok(None);
    }
    clock::parse_instant(v)
        .map(|t| Some(clock::format_instant(t)))
        .map_err(|e| Invalid::one(field, e))
}

/// A checked query.
struct Query {
    r: pb::AuditQuery,
    since: Option<String>,
    until: Option<String>,
    size: usize,
    after: u64,
}

impl Query {
    fn parse(r: &pb::AuditQuery) -> Result<Query, Invalid> {
        if ![String::new(), ALLOWED.into(), REFUSED.into()].contains(&r.outcome) {
            return Err(Invalid::one("outcome", "use allowed or refused"));
        }
        Ok(Query {
            since: instant("since", &r.since)?,
            until: instant("until", &r.until)?,
            size: page_size(r.page_size)?,
            after: token(&r.page_token)?,
            r: r.clone(),
        })
    }

    fn matches(&self, e: &pb::AuditEntry) -> bool {
        let r = &self.r;
        (r.member.is_empty() || e.member == r.member)
            && (r.action.is_empty() || e.action == r.action)
            && (r.object_id.is_empty()
                || e.object_id == r.object_id
                || e.object_ids.contains(&r.object_id))
            && (r.outcome.is_empty() || e.outcome == r.outcome)
            && self.since.as_ref().is_none_or(|s| e.at >= *s)
            && self.until.as_ref().is_none_or(|u| e.at < *u)
    }
}

/// Scans entries after `after`, keeping those `keep` turns into items, up to `size` items,
/// [`PAGE_BYTES`] or the scan budget. Returns the items and the token to continue (empty at
/// the end).
fn scan<T: prost::Message>(
    store: &Store,
    after: u64,
    size: usize,
    mut keep: impl FnMut(&pb::AuditEntry, &mut Vec<T>),
) -> Result<(Vec<T>, String), StoreError> {
    let mut items = Vec::new();
    let mut found = Vec::new();
    let mut bytes = 0;
    let mut last = None;
    let next = |last: Option<u64>| {
        last.map(|s: u64| URL_SAFE_NO_PAD.encode(s.to_be_bytes()))
            .unwrap_or_default()
    };
    for (examined, entry) in store.audit_after(after).enumerate() {
        if items.len() >= size || examined == SCAN_BUDGET {
            return Ok((items, next(last)));
        }
        let entry = entry?;
        keep(&entry, &mut found);
        // Each item costs its encoding plus its field tag and length in the page.
        let cost: usize = found.iter().map(|t| t.encoded_len() + 8).sum();
        if !items.is_empty() && bytes + cost > PAGE_BYTES {
            return Ok((items, next(last)));
        }
        bytes += cost;
        items.append(&mut found);
        last = Some(entry.sequence);
    }
    Ok((items, String::new()))
}

/// How long the portal's audit page continues a whole verification with the entries written
/// since before it reads the whole log again.
pub const WHOLE_VERIFICATION_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

impl AuditService {
    /// `Verify` for the portal's audit page, audited as `Verify` is: the last whole
    /// verification continued with the entries written since while it is younger than
    /// `max_age` (`Store::verify_audit_recent`). Returns the report and when the whole log was
    /// last verified.
    pub async fn verify_recent(
        &self,
        req: Request<pb::VerifyRequest>,
        max_age: std::time::Duration,
    ) -> Result<(pb::VerifyReport, String), Status> {
        self.audited(&req, "audit.verify", "", Action::Audit, move |store, _| {
            Ok(store.verify_audit_recent(max_age)?)
        })
        .await
    }

    /// Runs `work` for an authenticated caller holding `action`'s roles, auditing the call.
    async fn audited<T, R: Send + 'static>(
        &self,
        req: &Request<T>,
        name: &str,
        object_id: &str,
        action: Action,
        work: impl FnOnce(Store, String) -> Result<R, Status> + Send + 'static,
    ) -> Result<R, Status> {
        super::auth::blocking_audited(
            &self.store,
            req,
            name,
            object_id,
            action,
            move |store, who| {
                // Only once the caller is authenticated and allowed: the entries of requests
                // answered before this one are queued, not yet written, and an auditor (or a
                // publisher reading its access log) right after a read must find it. A failed
                // or stopping writer answers at once: what is stored is still served.
                let _ = tokio::runtime::Handle::current().block_on(store.settled());
                work(store, who.member.id.clone())
            },
            |_| Vec::new(),
        )
        .await
    }
}

#[tonic::async_trait]
impl Audit for AuditService {
    async fn query(&self, req: Request<pb::AuditQuery>) -> Result<Response<pb::AuditPage>, Status> {
        let q = req.get_ref().clone();
        self.audited(&req, "audit.query", "", Action::Audit, move |store, _| {
            let q = Query::parse(&q)?;
            let (entries, next_page_token) = scan(&store, q.after, q.size, |e, out| {
                if q.matches(e) {
                    out.push(e.clone());
                }
            })?;
            Ok(pb::AuditPage {
                entries,
                next_page_token,
            })
        })
        .await
        .map(Response::new)
    }

    type ExportStream = ReceiverStream<Result<pb::ExportItem, Status>>;

    async fn export(
        &self,
        req: Request<pb::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let after = req.get_ref().after_sequence;
        // Only auditors may cause the checkpoint (a flush) below.
        let mut caller = Caller::of(&self.store, &req);
        if let Err(status) = caller.authenticate(Action::Audit) {
            return Err(caller.refuse("audit.export", "", status).await);
        }
        // A fresh checkpoint first: it makes everything durable, fixes what the export covers,
        // and ends the export, so that a verifier finds every entry covered.
        let covered = self.store.checkpoint().await?.tree_size;
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        self.audited(&req, "audit.export", "", Action::Audit, move |store, _| {
            let items = store.audit_export(after, covered);
            // Streamed from a blocking task: the channel bounds memory; a client that stops
            // reading stops the export.
            std::thread::spawn(move || {
                for item in items {
                    let failed = item.is_err();
                    let msg = item
                        .map(|i| pb::ExportItem { item: Some(i) })
                        .map_err(Status::from);
                    if tx.blocking_send(msg).is_err() || failed {
                        return;
                    }
                }
            });
            Ok(())
        })
        .await?;
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn consistency_proof(
        &self,
        req: Request<pb::ConsistencyProofRequest>,
    ) -> Result<Response<pb::ConsistencyProofResponse>, Status> {
        let r = *req.get_ref();
        let mut caller = Caller::of(&self.store, &req);
        // Every member may ask: a proof holds sizes and hashes only, nothing of any entry, and
        // a subscriber needs it to tell that it is shown the same history as everyone else.
        let result = match caller.authenticate(Action::WhoAmI) {
            Ok(_) => consistency::prove(&self.store, r).await,
            Err(status) => Err(status),
        };
        let mut entry = caller.entry("audit.consistency");
        entry.detail = match r.cover_sequence {
            0 => format!("from {} to {}", r.from_size, r.to_size),
            seq => format!(
                "from {} to {} covering sequence {seq}",
                r.from_size, r.to_size
            ),
        };
        caller
            .record(match &result {
                Ok(_) => entry,
                Err(status) => refused(entry, status),
            })
            .await;
        result.map(Response::new)
    }

    async fn verify(
        &self,
        req: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyReport>, Status> {
        self.audited(&req, "audit.verify", "", Action::Audit, |store, _| {
            Ok(store.verify_audit()?)
        })
        .await
        .map(Response::new)
    }

    async fn access_log(
        &self,
        req: Request<pb::AccessLogRequest>,
    ) -> Result<Response<pb::AccessLogResponse>, Status> {
        let r = req.get_ref().clone();
        let id = r.submission_id.clone();
        self.audited(
            &req,
            "audit.access_log",
            &id,
            Action::Read,
            move |store, member| {
                let size = page_size(r.page_size)?;
                let after = token(&r.page_token)?;
                // Only the publisher learns anything, including whether the submission exists.
                let reader = store.registry().get(&member).cloned();
                let head = store
                    .head_of(&r.submission_id)?
                    .filter(|h| {
                        reader.as_ref().is_some_and(|m| {
                            crate::domain::audience::sees_access_log(m, &h.standing())
                        })
                    })
                    .ok_or_else(|| {
                        Status::not_found(format!("no submission {} of yours", r.submission_id))
                    })?;
                let start = after.max(head.created_audit_seq.saturating_sub(1));
                let (records, next_page_token) = scan(&store, start, size, |e, out| {
                    if e.outcome != ALLOWED || e.member == head.publisher {
                        return;
                    }
                    let record = |via: &str, revision: u32| pb::AccessRecord {
                        member: e.member.clone(),
                        at: e.at.clone(),
                        via: via.into(),
                        revision,
                        audit_sequence: e.sequence,
                    };
                    match e.action.as_str() {
                        "submission.get" if e.object_id == r.submission_id => {
                            out.push(record("get", e.revision))
                        }
                        "submission.list" if e.object_ids.contains(&r.submission_id) => {
                            out.push(record("list", 0))
                        }
                        "directory.list_contacts" if e.object_ids.contains(&r.submission_id) => {
                            out.push(record("directory", 0))
                        }
                        "catalogue.matrix" if e.object_ids.contains(&r.submission_id) => {
                            out.push(record("matrix", 0))
                        }
                        "ping.campaign.get" if e.object_ids.contains(&r.submission_id) => {
                            out.push(record("ping campaign report", 0))
                        }
                        "notice.acknowledge" if e.object_id == r.submission_id => {
                            out.push(record("acknowledge", e.revision))
                        }
                        "feed.deliver" => {
                            for (i, seq) in head.revision_seqs.iter().enumerate() {
                                let delivered = e
                                    .delivered_ranges
                                    .chunks(2)
                                    .any(|p| p.len() == 2 && p[0] <= *seq && *seq <= p[1]);
                                if delivered {
                                    out.push(record("feed", i as u32 + 1));
                                }
                            }
                        }
                        _ => {}
                    }
                })?;
                Ok(pb::AccessLogResponse {
                    records,
                    next_page_token,
                })
            },
        )
        .await
        .map(Response::new)
    }
}
