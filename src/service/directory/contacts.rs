//! The points-of-contact directory: the latest active point-of-contact submissions a member may
//! see, each with when it was last verified.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use prost::Message;
use tonic::Status;

use crate::{
    domain::{
        Invalid,
        budget::{Budget, CODE_BYTES},
        kind::Kind,
        member::{Member, Registry, check_code},
        validate::{POC_LEVELS, fields},
        visibility,
    },
    pb::{self, submission_content::Body},
    service::listing,
    store::Store,
};

/// A checked directory query. Empty lists match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub states: Vec<String>,
    pub levels: Vec<String>,
    pub communities: Vec<String>,
}

/// Entries per page when the request names no size, and the most it may name: a directory page
/// must fit in one gRPC message whatever the directory grows to.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 500;

/// Which page of the ordered directory a request asks for.
#[derive(Debug, Default)]
pub struct Page {
    pub size: usize,
    /// The sort key of the last entry of the previous page.
    pub after: Option<[String; 4]>,
}

impl Page {
    pub fn parse(r: &pb::ListContactsRequest) -> Result<Page, Invalid> {
        let mut errs = Invalid::default();
        let size = listing::page_size(&mut errs, r.page_size, DEFAULT_PAGE, MAX_PAGE);
        let after = if r.page_token.is_empty() {
            None
        } else {
            let parts = URL_SAFE_NO_PAD
                .decode(&r.page_token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|t| {
                    let p: Vec<String> = t.split('\0').map(str::to_string).collect();
                    <[String; 4]>::try_from(p).ok()
                });
            if parts.is_none() {
                errs.push("page_token", "is not a token returned by ListContacts");
            }
            parts
        };
        errs.into_result()?;
        Ok(Page { size, after })
    }
}

impl Filter {
    pub fn parse(r: &pb::ListContactsRequest) -> Result<Filter, Invalid> {
        let mut errs = Invalid::default();
        for (i, l) in r.levels.iter().enumerate() {
            fields::one_of(&mut errs, &format!("levels[{i}]"), l, POC_LEVELS);
        }
        fields::parse_each(&mut errs, "communities", &r.communities, |c| {
            check_code(c, "community")
        });
        fields::parse_each(&mut errs, "states", &r.states, |s| check_code(s, "state"));
        errs.into_result()?;
        Ok(Filter {
            states: r.states.clone(),
            levels: r.levels.clone(),
            communities: r.communities.clone(),
        })
    }
}

/// A contact's place in the directory order (state, level, publisher, id): what the directory
/// keeps of each contact while it finds a page, and all a ping campaign needs of its targets.
pub type Key = [String; 4];

/// The contacts `reader` may see now that pass `f`, as their keys, in directory order: what
/// ListContacts pages through, and the contacts a ping campaign started by `reader` tests.
/// Whether `reader` may read a contact is the one audience decision ([`visibility::view`]) on
/// its latest revision; filters apply to what it may read only. Each contact is decoded on its
/// own and only its key is kept, so the directory never holds every content at once.
pub fn keys(store: &Store, reader: &Member, f: &Filter) -> Result<Vec<Key>, Status> {
    let registry = store.registry();
    let mut keys = Vec::new();
    for id in store.ids_of_kind(Kind::PointOfContact, None) {
        if let Some(e) = entry(store, &registry, reader, f, &id?)? {
            let (a, b, c, d) = sort_key(&e);
            keys.push([a, b, c, d].map(str::to_string));
        }
    }
    keys.sort();
    Ok(keys)
}

/// One page of the directory as `reader` may see it: the contacts after `page.after`, read
/// again in order, up to the page size or the message limit (`domain::budget`): the page ends
/// before the entry that would take it over, and its token continues from there.
pub fn page(
    store: &Store,
    reader: &Member,
    f: &Filter,
    page: &Page,
) -> Result<(Vec<pb::DirectoryEntry>, String), Status> {
    let keys = keys(store, reader, f)?;
    let start = match &page.after {
        None => 0,
        Some(after) => keys.partition_point(|key| key <= after),
    };
    let registry = store.registry();
    let limit = store.budget().message();
    // The token's field, at its longest (four keys in base64).
    let mut bytes = Budget::item(4 * (4 * CODE_BYTES + 3).div_ceil(3));
    let mut contacts = Vec::new();
    let mut last = None;
    let mut more = false;
    for key in &keys[start..] {
        if contacts.len() == page.size {
            more = true;
            break;
        }
        // Read again: what changed since its key was taken is served as it is now, or not at all.
        let Some(e) = entry(store, &registry, reader, f, &key[3])? else {
            continue;
        };
        let size = Budget::item(e.encoded_len());
        if bytes + size > limit && !contacts.is_empty() {
            more = true;
            break;
        }
        bytes += size;
        contacts.push(e);
        last = Some(key);
    }
    let next = match (more, last) {
        (true, Some(key)) => URL_SAFE_NO_PAD.encode(key.join("\0")),
        _ => String::new(),
    };
    Ok((contacts, next))
}

/// The contact `id` as `reader` may see it now, if it is a current contact that passes `f`.
fn entry(
    store: &Store,
    registry: &Registry,
    reader: &Member,
    f: &Filter,
    id: &str,
) -> Result<Option<pb::DirectoryEntry>, Status> {
    let Some((head, latest)) = store.latest_seen_by(reader, id)? else {
        return Ok(None);
    };
    if head.withdrawn {
        return Ok(None);
    }
    let Some(latest) = latest.submission else {
        return Ok(None);
    };
    let Some(sub) = visibility::view(reader, &head.standing(), &latest, &latest) else {
        return Ok(None);
    };
    // A suspended body's contacts are not current: they are neither listed nor pinged (its
    // member could not answer).
    if !registry.get(&sub.publisher).is_some_and(|m| m.is_active()) {
        return Ok(None);
    }
    let level = level_of(&sub);
    let in_community = |c: &String| {
        registry
            .get(&sub.publisher)
            .is_some_and(|m| m.in_community(c))
    };
    if !(f.states.is_empty() || f.states.contains(&sub.state))
        || !(f.levels.is_empty() || f.levels.iter().any(|l| l == level))
        || !(f.communities.is_empty() || f.communities.iter().any(in_community))
    {
        return Ok(None);
    }
    let (verified_at, verified_by) = match store.verified(id)? {
        Some(v) if v.at > sub.updated_at => (v.at, "acknowledged"),
        _ if sub.revision == 1 => (sub.updated_at.clone(), "published"),
        _ => (sub.updated_at.clone(), "revised"),
    };
    Ok(Some(pb::DirectoryEntry {
        submission: Some(sub),
        verified_at,
        verified_by: verified_by.into(),
    }))
}

/// The level of a point-of-contact submission ("" if it is not one).
pub fn level_of(s: &pb::Submission) -> &str {
    match s.content.as_ref().and_then(|c| c.body.as_ref()) {
        Some(Body::PointOfContact(p)) => &p.level,
        _ => "",
    }
}

fn sort_key(e: &pb::DirectoryEntry) -> (&str, &str, &str, &str) {
    let s = e.submission.as_ref();
    let field = |f: fn(&pb::Submission) -> &str| s.map(f).unwrap_or_default();
    (
        field(|s| &s.state),
        field(level_of),
        field(|s| &s.publisher),
        field(|s| &s.id),
    )
}
