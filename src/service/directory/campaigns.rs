//! Starting ping campaigns: the contacts tested and one notice per tested member (the reports
//! are in `reports`).
use std::collections::BTreeSet;

use prost::Message;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tonic::{Request, Status};

use super::{DirectoryService, contacts, reports};
use crate::{
    domain::{
        Invalid, clock,
        kind::Kind,
        member::{Member, check_code},
        principal::Action,
        validate::{self, POC_LEVELS, fields},
    },
    pb::{self, submission_content::Body},
    service::auth::Caller,
    store::{CAMPAIGN_OPEN, CampaignStart, Change, ChangeOp, Store},
};

const NAME: &str = "ping.campaign.start";
/// Deadline when the request names none: the practice of the UN POC directory.
const DEFAULT_DEADLINE: time::Duration = time::Duration::hours(24);
/// The measure a ping serves: nominating and testing points of contact.
const POC_MEASURE: &str = "UN-CBM-1";

pub async fn start(
    svc: &DirectoryService,
    req: Request<pb::StartPingCampaignRequest>,
) -> Result<pb::PingCampaign, Status> {
    let mut caller = Caller::of(&svc.store, &req);
    let r = req.into_inner();
    let who = match caller.authenticate(Action::Administer) {
        Ok(who) => who,
        Err(status) => return Err(caller.refuse(NAME, "", status).await),
    };
    if let Err(status) = signatures_not_required(&who.member) {
        return Err(caller.refuse(NAME, "", status).await);
    }
    let prepared = match prepare(&svc.store, &who.member, &r) {
        Ok(p) => p,
        Err(status) => return Err(caller.refuse(NAME, "", status).await),
    };
    let deadline = prepared.deadline;
    let admin = who.member.clone();
    // Committed and watched in a task of its own, which a caller going away does not cancel.
    let store = svc.store.clone();
    let commit = async move {
        store
            .start_campaign(who.member, caller.origin, prepared.start)
            .await
    };
    let outcome = svc
        .deadlines
        .commit_watched(commit, deadline, |o| o.id.clone())
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
    let store = svc.store.clone();
    tokio::task::spawn_blocking(move || {
        let stored = store
            .campaign(&outcome.id)?
            .ok_or_else(|| Status::internal(format!("campaign {} was not stored", outcome.id)))?;
        reports::report(&store, stored, true, &admin)
    })
    .await
    .map_err(|e| Status::internal(e.to_string()))?
}

/// A campaign's notices are written by the hub and published with the starting admin as their
/// publisher, so they cannot carry that admin's signature: an admin that must sign everything
/// it publishes (`require_signed`) cannot start one, as it cannot publish unsigned.
fn signatures_not_required(admin: &Member) -> Result<(), Status> {
    if !admin.require_signed {
        return Ok(());
    }
    Err(Status::failed_precondition(format!(
        "{}; a ping campaign's notices are written by the hub and cannot carry your signature: \
         start the campaign as an admin that does not require signatures",
        crate::provenance::ProvenanceError::Required(admin.id.clone())
    )))
}

struct Prepared {
    start: CampaignStart,
    deadline: OffsetDateTime,
}

/// Checks the request, picks the contacts tested, and builds one ping notice per member.
fn prepare(
    store: &Store,
    admin: &Member,
    r: &pb::StartPingCampaignRequest,
) -> Result<Prepared, Status> {
    let now = OffsetDateTime::now_utc();
    let registry = store.registry();
    let mut errs = Invalid::default();
    if !r.community.is_empty() {
        match check_code(&r.community, "community") {
            Err(e) => errs.push("community", e),
            Ok(()) if !registry.has_community(&r.community) => {
                errs.push("community", format!("no member belongs to {}", r.community))
            }
            Ok(()) => {}
        }
    }
    for (i, l) in r.levels.iter().enumerate() {
        fields::one_of(&mut errs, &format!("levels[{i}]"), l, POC_LEVELS);
    }
    let deadline = if r.deadline.is_empty() {
        now + DEFAULT_DEADLINE
    } else {
        match clock::parse_instant(&r.deadline) {
            Ok(d) if d <= now => {
                errs.push("deadline", format!("{} is not in the future", r.deadline));
                now
            }
            Ok(d) => d,
            Err(e) => {
                errs.push("deadline", e);
                now
            }
        }
    };
    fields::optional(&mut errs, "subject", &r.subject, 200, false);
    fields::optional(&mut errs, "text", &r.text, 20_000, true);
    let key = idempotency_key(&mut errs, &r.idempotency_key);
    errs.into_result()?;

    // The contacts tested are those the admin may read now, as the directory shows them to
    // it (the one audience decision): a campaign neither pings nor counts a contact its admin
    // may not read, and a level filter, which is content, reaches only readable contacts.
    let filter = contacts::Filter {
        communities: if r.community.is_empty() {
            Vec::new()
        } else {
            vec![r.community.clone()]
        },
        levels: r.levels.clone(),
        ..Default::default()
    };
    let targets: Vec<pb::ContactResult> = contacts::keys(store, admin, &filter)?
        .into_iter()
        .filter(|[_, _, publisher, _]| *publisher != admin.id)
        .map(target)
        .collect();
    if targets.is_empty() {
        let why = if admin.roles.can_read_content() {
            ""
        } else {
            " (a campaign tests only contacts its admin may read, and without the subscriber or publisher role you read none)"
        };
        return Err(Status::failed_precondition(format!(
            "no active point of contact that you may read matches: nothing to ping{why}"
        )));
    }
    let members: BTreeSet<&str> = targets.iter().map(|t| t.member.as_str()).collect();
    let deadline_text = clock::format_instant(deadline);
    let ctx = validate::Context {
        registry: &registry,
        catalogue: &store.catalogue(),
        now,
        previous: None,
    };
    // One notice per member, addressed to it alone: no pinged member learns who else holds
    // contacts.
    let mut notices = Vec::with_capacity(members.len());
    for member in members {
        let content = notice(r, member, &deadline_text);
        let valid = validate::content(&ctx, &content, "content")?;
        debug_assert_eq!(valid.kind, Kind::Notice);
        let change = Change::new(
            ChangeOp::Publish {
                content,
                kind: Kind::Notice,
            },
            None,
        );
        notices.push((member.to_string(), change));
    }
    let record = pb::PingCampaign {
        started_by: admin.id.clone(),
        deadline: deadline_text,
        status: CAMPAIGN_OPEN.into(),
        community: r.community.clone(),
        levels: r.levels.clone(),
        results: targets,
        ..Default::default()
    };
    // A retry with the same key must match the request, not the notices built from it (whose
    // default deadline moves with the clock).
    let mut request = r.clone();
    request.idempotency_key.clear();
    let fingerprint = Sha256::new()
        .chain_update(b"ping-campaign\0")
        .chain_update(request.encode_to_vec())
        .finalize()
        .to_vec();
    Ok(Prepared {
        start: CampaignStart {
            record,
            notices,
            idempotency_key: key,
            fingerprint,
        },
        deadline,
    })
}

fn idempotency_key(errs: &mut Invalid, key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    if key.len() > 128 || !key.chars().all(|c| c.is_ascii_graphic()) {
        errs.push(
            "idempotency_key",
            "must be 1 to 128 printable ASCII characters without spaces",
        );
        return None;
    }
    Some(key.to_string())
}

/// The line of the report for one tested contact, before any answer. No content is kept: the
/// report fills it in for each reader (see [`report`]).
fn target([state, _, member, contact_id]: contacts::Key) -> pb::ContactResult {
    pb::ContactResult {
        state,
        member,
        contact_id,
        ..Default::default()
    }
}

/// The ping notice to one member whose contacts are tested: TLP:AMBER, addressed to it alone.
fn notice(r: &pb::StartPingCampaignRequest, member: &str, deadline: &str) -> pb::SubmissionContent {
    let or = |s: &str, default: String| if s.is_empty() { default } else { s.to_string() };
    pb::SubmissionContent {
        title: "Points-of-contact directory ping".into(),
        language: "en".into(),
        tlp: "TLP:AMBER".into(),
        recipients: vec![member.to_string()],
        cbm_refs: vec![POC_MEASURE.into()],
        body: Some(Body::Notice(pb::Notice {
            category: "ping".into(),
            subject: or(&r.subject, "Please confirm your point of contact".into()),
            text: or(
                &r.text,
                format!(
                    "This is a test of the points-of-contact directory. Please acknowledge this notice by {deadline} to confirm that your contact details are current."
                ),
            ),
            ack_deadline: deadline.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}
