//! The points-of-contact directory: the latest active point-of-contact submissions a member may
//! see, each with when it was last verified.
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
    store::Store,
};

/// A checked directory query. Empty lists match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub states: Vec<String>,
    pub levels: Vec<String>,
    pub communities: Vec<String>,
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

/// The directory as `reader` may see it, ordered by state, level, publisher; with no reader,
/// every active contact (the hub's own view, for picking the contacts a ping campaign tests).
pub fn list(
    store: &Store,
    reader: Option<&Member>,
    f: &Filter,
) -> Result<Vec<pb::DirectoryEntry>, Status> {
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
        let sub = match reader {
            Some(reader) => match visibility::view(reader, &latest, &latest) {
                Some(view) => view,
                None => continue,
            },
            None => latest,
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
