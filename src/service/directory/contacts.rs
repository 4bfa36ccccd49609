//! The points-of-contact directory: the latest active point-of-contact submissions a member may
//! see, each with when it was last verified.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use tonic::Status;

use crate::{
    domain::{
        Invalid,
        kind::Kind,
        member::{Member, check_code},
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

    /// This page of the ordered `entries`, and the token of the next one ("" at the end).
    pub fn of(&self, entries: Vec<pb::DirectoryEntry>) -> (Vec<pb::DirectoryEntry>, String) {
        let mut rest = entries.into_iter().filter(|e| match &self.after {
            None => true,
            Some([a, b, c, d]) => sort_key(e) > (a.as_str(), b.as_str(), c.as_str(), d.as_str()),
        });
        let page: Vec<_> = rest.by_ref().take(self.size).collect();
        let next = match (rest.next(), page.last()) {
            (Some(_), Some(last)) => {
                let (a, b, c, d) = sort_key(last);
                URL_SAFE_NO_PAD.encode([a, b, c, d].join("\0"))
            }
            _ => String::new(),
        };
        (page, next)
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

/// The directory as `reader` may see it now, ordered by state, level, publisher: what
/// ListContacts answers, and the contacts a ping campaign started by `reader` tests. Whether
/// `reader` may read a contact is the one audience decision ([`visibility::view`]) on its
/// latest revision; filters apply to what it may read only.
pub fn list(store: &Store, reader: &Member, f: &Filter) -> Result<Vec<pb::DirectoryEntry>, Status> {
    let registry = store.registry();
    let mut entries = Vec::new();
    for id in store.ids_of_kind(Kind::PointOfContact, None) {
        let id = id?;
        let Some((head, latest)) = store.latest(&id)? else {
            continue;
        };
        if head.withdrawn {
            continue;
        }
        let Some(latest) = latest.submission else {
            continue;
        };
        let Some(sub) = visibility::view(reader, &head.standing(), &latest, &latest) else {
            continue;
        };
        // A suspended body's contacts are not current: they are neither listed nor pinged (its
        // member could not answer).
        if !registry.get(&sub.publisher).is_some_and(|m| m.is_active()) {
            continue;
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
            continue;
        }
        let (verified_at, verified_by) = match store.verified(&id)? {
            Some(v) if v.at > sub.updated_at => (v.at, "acknowledged"),
            _ if sub.revision == 1 => (sub.updated_at.clone(), "published"),
            _ => (sub.updated_at.clone(), "revised"),
        };
        entries.push(pb::DirectoryEntry {
            submission: Some(sub),
            verified_at,
            verified_by: verified_by.into(),
        });
    }
    entries.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    Ok(entries)
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
