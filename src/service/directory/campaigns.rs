//! Starting ping campaigns and reporting on them.
use prost::Message;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tonic::{Request, Status};

use super::{DirectoryService, contacts};
use crate::{
    domain::{
        Invalid, campaign, clock,
        kind::Kind,
        member::{Member, check_code},
        principal::Action,
        validate::{self, POC_LEVELS, fields},
        visibility,
    },
    pb::{self, submission_content::Body},
    service::auth::Caller,
    store::{CAMPAIGN_OPEN, Change, ChangeOp, Store},
};

const NAME: &str = "ping.campaign.start";
/// Deadline when the request names none: the practice of the UN POC directory.
const DEFAULT_DEADLINE: time::Duration = time::Duration::hours(24);
/// The measure a ping serves: nominating and testing points of contact.
const POC_MEASURE: &str = "UN-CBM-1";

/// The report of a stored campaign, from the acknowledgements of its notice. Each tested
/// contact's content (level, organisation, function) is filled in from its latest revision only
/// where `reader` may read it now: the stored record keeps no content, so a later revision that
/// narrows a contact's audience, or another admin reading the report, sees no more than the
/// directory would show them.
pub fn report(
    store: &Store,
    stored: pb::PingCampaign,
    detail: bool,
    reader: &Member,
) -> Result<pb::PingCampaign, Status> {
    let acks = store.acks_of(&stored.id)?;
    let mut report = campaign::report(stored, &acks, detail);
    for line in &mut report.results {
        let Some((_, latest)) = store.latest(&line.contact_id)? else {
            continue;
        };
        let Some(view) = latest
            .submission
            .and_then(|s| visibility::view(reader, &s, &s))
        else {
            continue;
        };
        line.level = contacts::level_of(&view).to_string();
        if let Some(Body::PointOfContact(p)) = view.content.and_then(|c| c.body) {
            line.organisation = p.organisation;
            line.function = p.function;
        }
    }
    Ok(report)
}

/// The contacts whose content a report shows: the reads the access log records.
pub fn contacts_shown(report: &pb::PingCampaign) -> Vec<String> {
    report
        .results
        .iter()
        .filter(|l| !l.level.is_empty())
        .map(|l| l.contact_id.clone())
        .collect()
}

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
            .change(who.member, caller.origin, prepared.change)
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
        report(&store, stored, true, &admin)
    })
    .await
    .map_err(|e| Status::internal(e.to_string()))?
}

struct Prepared {
    change: Change,
    deadline: OffsetDateTime,
}

/// Checks the request, picks the contacts tested, and builds the ping notice.
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

    let filter = contacts::Filter {
        communities: if r.community.is_empty() {
            Vec::new()
        } else {
            vec![r.community.clone()]
        },
        ..Default::default()
    };
    // Every active contact is tested, whoever may read it, other than the admin's own. A level
    // is content: filtering on it keeps only contacts the admin may read, so that neither the
    // campaign nor its refusal tells the level of a contact the admin may not see.
    let targets: Vec<pb::ContactResult> = contacts::list(store, None, &filter)?
        .into_iter()
        .filter_map(|e| e.submission)
        .filter(|s| s.publisher != admin.id)
        .filter(|s| {
            r.levels.is_empty()
                || (visibility::may_read_revision(admin, s)
                    && r.levels.iter().any(|l| l == contacts::level_of(s)))
        })
        .map(target)
        .collect();
    if targets.is_empty() {
        return Err(Status::failed_precondition(
            "no active point of contact matches: nothing to ping",
        ));
    }
    let mut recipients: Vec<String> = targets.iter().map(|t| t.member.clone()).collect();
    recipients.sort();
    recipients.dedup();
    let deadline_text = clock::format_instant(deadline);
    let content = notice(r, recipients, &deadline_text);
    let ctx = validate::Context {
        registry: &registry,
        catalogue: &store.catalogue(),
        now,
        previous: None,
    };
    let valid = validate::content(&ctx, &content, "content")?;
    debug_assert_eq!(valid.kind, Kind::Notice);
    let record = pb::PingCampaign {
        started_by: admin.id.clone(),
        deadline: deadline_text,
        status: CAMPAIGN_OPEN.into(),
        community: r.community.clone(),
        levels: r.levels.clone(),
        results: targets,
        ..Default::default()
    };
    let mut change = Change::new(
        ChangeOp::Publish {
            content,
            kind: Kind::Notice,
        },
        key,
    );
    change.campaign = Some(Box::new(record));
    // A retry with the same key must match the request, not the notice built from it (whose
    // default deadline moves with the clock).
    let mut request = r.clone();
    request.idempotency_key.clear();
    change.fingerprint = Some(
        Sha256::new()
            .chain_update(b"ping-campaign\0")
            .chain_update(request.encode_to_vec())
            .finalize()
            .to_vec(),
    );
    Ok(Prepared { change, deadline })
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
fn target(s: pb::Submission) -> pb::ContactResult {
    pb::ContactResult {
        state: s.state,
        member: s.publisher,
        contact_id: s.id,
        ..Default::default()
    }
}

/// The ping notice: addressed (TLP:AMBER) to the members whose contacts are tested.
fn notice(
    r: &pb::StartPingCampaignRequest,
    recipients: Vec<String>,
    deadline: &str,
) -> pb::SubmissionContent {
    let or = |s: &str, default: String| if s.is_empty() { default } else { s.to_string() };
    pb::SubmissionContent {
        title: "Points-of-contact directory ping".into(),
        language: "en".into(),
        tlp: "TLP:AMBER".into(),
        recipients,
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
