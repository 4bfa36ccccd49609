//! List: filters, stable page tokens, and the audience check on every item.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use prost::Message;
use tonic::Status;

use crate::{
    domain::{
        Invalid, budget::Budget, clock, kind::Kind, member::Member, tlp::Tlp, validate::fields,
        visibility,
    },
    pb,
    store::Store,
};

/// Default and largest page sizes.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;
/// Longest `text` condition, in characters.
const MAX_TEXT_CHARS: usize = 200;
/// Stored submissions examined per page at most, so that a caller who may see few of many
/// submissions still gets a prompt (possibly short) page and a token to continue.
const SCAN_BUDGET: usize = 10_000;

/// A checked list request.
#[derive(Debug, Clone)]
pub struct Query {
    kinds: Vec<Kind>,
    states: Vec<String>,
    publishers: Vec<String>,
    labels: Vec<Tlp>,
    cbm_refs: Vec<String>,
    /// Canonical RFC 3339 form, comparable as text with stored instants.
    updated_since: Option<String>,
    /// Canonical RFC 3339 form, like `updated_since`.
    updated_before: Option<String>,
    /// Lowercased; matched against title, summary, notice subject and text.
    text: Option<String>,
    communities: Vec<String>,
    include_withdrawn: bool,
    /// Only notices answering this one.
    in_reply_to: Option<String>,
    page_size: usize,
    after_created: u64,
}

impl Query {
    pub fn parse(r: &pb::ListRequest) -> Result<Query, Invalid> {
        let mut errs = Invalid::default();
        let kinds = fields::parse_each(&mut errs, "kinds", &r.kinds, |s| s.parse::<Kind>());
        let labels = fields::parse_each(&mut errs, "tlp", &r.tlp, |s| s.parse::<Tlp>());
        let updated_since = if r.updated_since.is_empty() {
            None
        } else {
            match clock::parse_instant(&r.updated_since) {
                Ok(t) => Some(clock::format_instant(t)),
                Err(e) => {
                    errs.push("updated_since", e);
                    None
                }
            }
        };
        let updated_before = if r.updated_before.is_empty() {
            None
        } else {
            match clock::parse_instant(&r.updated_before) {
                Ok(t) => Some(clock::format_instant(t)),
                Err(e) => {
                    errs.push("updated_before", e);
                    None
                }
            }
        };
        let text = r.text.trim();
        if text.chars().count() > MAX_TEXT_CHARS {
            errs.push(
                "text",
                format!("is over the maximum of {MAX_TEXT_CHARS} characters"),
            );
        }
        let text = (!text.is_empty()).then(|| text.to_lowercase());
        let page_size = page_size(&mut errs, r.page_size, DEFAULT_PAGE, MAX_PAGE);
        let after_created = if r.page_token.is_empty() {
            0
        } else {
            match URL_SAFE_NO_PAD
                .decode(&r.page_token)
                .ok()
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
            {
                Some(b) => u64::from_be_bytes(b),
                None => {
                    errs.push("page_token", "is not a token returned by List");
                    0
                }
            }
        };
        errs.into_result()?;
        Ok(Query {
            kinds,
            states: r.states.clone(),
            publishers: r.publishers.clone(),
            labels,
            cbm_refs: r.cbm_refs.clone(),
            updated_since,
            updated_before,
            text,
            communities: r.communities.clone(),
            include_withdrawn: r.include_withdrawn,
            in_reply_to: (!r.in_reply_to.is_empty()).then(|| r.in_reply_to.clone()),
            page_size,
            after_created,
        })
    }

    /// Does `s`, the latest revision as the reader receives it, pass the filters? A tombstone
    /// (no content: the reader may know that it was withdrawn, not what it said) is matched on
    /// its identity and times only, like a narrowing in the feed (`feed::filter`): matching
    /// content filters against content the reader does not receive would let a search tell
    /// whether the withdrawn text holds a guess.
    fn matches(&self, s: &pb::Submission) -> bool {
        (self.include_withdrawn || s.status != "withdrawn")
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| k.as_str() == s.kind))
            && (self.states.is_empty() || self.states.contains(&s.state))
            && (self.publishers.is_empty() || self.publishers.contains(&s.publisher))
            && self
                .updated_since
                .as_ref()
                .is_none_or(|since| s.updated_at.as_str() >= since.as_str())
            && self
                .updated_before
                .as_ref()
                .is_none_or(|before| s.updated_at.as_str() < before.as_str())
            && s.content.as_ref().is_none_or(|c| self.matches_content(c))
    }

    /// The filters on what a revision says: label, references, reply, community, text.
    fn matches_content(&self, c: &pb::SubmissionContent) -> bool {
        (self.labels.is_empty() || self.labels.iter().any(|l| l.as_str() == c.tlp))
            && (self.cbm_refs.is_empty() || c.cbm_refs.iter().any(|r| self.cbm_refs.contains(r)))
            && self.in_reply_to.as_ref().is_none_or(|id| replies_to(c, id))
            && (self.communities.is_empty() || self.communities.contains(&c.community))
            && self.text.as_ref().is_none_or(|t| contains_text(c, t))
    }
}

/// Does `c` hold `lowercased` in its title, summary, or a notice's subject or text?
fn contains_text(c: &pb::SubmissionContent, lowercased: &str) -> bool {
    let has = |s: &str| s.to_lowercase().contains(lowercased);
    has(&c.title)
        || has(&c.summary)
        || matches!(&c.body, Some(pb::submission_content::Body::Notice(n)) if has(&n.subject) || has(&n.text))
}

fn replies_to(c: &pb::SubmissionContent, id: &str) -> bool {
    matches!(&c.body, Some(pb::submission_content::Body::Notice(n)) if n.in_reply_to == id)
}

/// One page of the submissions `reader` may see, in order of first publication. A page ends at
/// `page_size` items, at the scan budget, or before the item that would take the encoded
/// response over the message limit (each item fits alone: see `domain::budget`); the token
/// continues after the last item examined.
pub fn page(store: &Store, reader: &Member, q: &Query) -> Result<pb::ListResponse, Status> {
    let limit = store.budget().message();
    // The token's field, at its longest.
    let mut bytes = Budget::item(TOKEN_BYTES);
    let mut submissions = Vec::new();
    let mut last_examined = None;
    let mut exhausted = true;
    for (examined, item) in store.submissions_after(q.after_created).enumerate() {
        if submissions.len() == q.page_size || examined == SCAN_BUDGET {
            exhausted = false;
            break;
        }
        let (created, id) = item?;
        if let Some(view) = visible(store, reader, q, &id)? {
            let size = Budget::item(view.encoded_len());
            if bytes + size > limit && !submissions.is_empty() {
                exhausted = false;
                break;
            }
            bytes += size;
            submissions.push(view);
        }
        last_examined = Some(created);
    }
    let next_page_token = match (exhausted, last_examined) {
        (false, Some(created)) => URL_SAFE_NO_PAD.encode(created.to_be_bytes()),
        _ => String::new(),
    };
    Ok(pb::ListResponse {
        submissions,
        next_page_token,
    })
}

/// Bytes of a page token: 8 in unpadded base64.
const TOKEN_BYTES: usize = 11;

/// The latest revision of `id` as `reader` may see it, if it passes the filters.
fn visible(
    store: &Store,
    reader: &Member,
    q: &Query,
    id: &str,
) -> Result<Option<pb::Submission>, Status> {
    let Some((head, latest)) = store.latest_seen_by(reader, id)? else {
        return Ok(None);
    };
    let latest = latest.submission.unwrap_or_default();
    // The filters see what the reader receives, never the stored revision behind a tombstone.
    let view = visibility::view(reader, &head.standing(), &latest, &latest);
    Ok(view.filter(|v| q.matches(v)))
}

/// A request's `page_size`: 0 asks for `default`; more than `max` is refused.
pub fn page_size(errs: &mut Invalid, requested: u32, default: usize, max: usize) -> usize {
    match requested as usize {
        0 => default,
        n if n <= max => n,
        n => {
            errs.push("page_size", format!("{n} is over the maximum of {max}"));
            default
        }
    }
}
