//! What a subscriber asked for, and what each stored change means for it: a pure decision over
//! (member, filter, change), built on the one audience policy.
use crate::{
    domain::{
        Invalid,
        audience::{self, About, Receives, Standing},
        kind::Kind,
        member::{Member, Registry, check_code},
        tlp::Tlp,
        validate::fields,
    },
    pb,
    store::records::{self, StoredEvent},
};

/// A checked subscription filter. Empty lists match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kinds: Vec<Kind>,
    pub states: Vec<String>,
    pub publishers: Vec<String>,
    pub communities: Vec<String>,
    pub labels: Vec<Tlp>,
    pub cbm_refs: Vec<String>,
}

impl Filter {
    pub fn parse(r: &pb::SubscribeRequest) -> Result<Filter, Invalid> {
        let mut errs = Invalid::default();
        let kinds = fields::parse_each(&mut errs, "kinds", &r.kinds, |s| s.parse::<Kind>());
        let labels = fields::parse_each(&mut errs, "tlp", &r.tlp, |s| s.parse::<Tlp>());
        fields::parse_each(&mut errs, "communities", &r.communities, |c| {
            check_code(c, "community")
        });
        errs.into_result()?;
        Ok(Filter {
            kinds,
            states: r.states.clone(),
            publishers: r.publishers.clone(),
            communities: r.communities.clone(),
            labels,
            cbm_refs: r.cbm_refs.clone(),
        })
    }

    /// Does the filter select this change? Applied to what the reader receives: the revision
    /// (or, for an acknowledgement, the notice's revision it acknowledges).
    fn selects(&self, c: &ChangeFields<'_>, registry: &Registry) -> bool {
        self.selects_identity(c)
            && (self.labels.is_empty() || self.labels.iter().any(|l| l.as_str() == c.tlp))
            && (self.cbm_refs.is_empty() || c.cbm_refs.iter().any(|r| self.cbm_refs.contains(r)))
            && (self.communities.is_empty()
                || self.communities.iter().any(|f| f == c.community)
                || registry
                    .get(c.publisher)
                    .is_some_and(|p| p.communities.iter().any(|pc| self.communities.contains(pc))))
    }

    /// Does the filter select the submission by what never changes across its revisions (kind,
    /// publisher and its state)? The only filters applied to a narrowing tombstone: a reader
    /// must learn that it lost something it had, whatever label or references the revision
    /// that removed it carries.
    fn selects_identity(&self, c: &ChangeFields<'_>) -> bool {
        (self.kinds.is_empty() || self.kinds.iter().any(|k| k.as_str() == c.kind))
            && (self.states.is_empty() || self.states.iter().any(|s| s == c.state))
            && (self.publishers.is_empty() || self.publishers.iter().any(|p| p == c.publisher))
    }
}

/// The fields of a stored change that the delivery decision and the filters read. Built from
/// the full decode of an event (live) or from the light decode of its stored form (replay); the
/// decision sees nothing else, so the two cannot disagree on a field one of them lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeFields<'a> {
    pub sequence: u64,
    pub action: &'a str,
    pub id: &'a str,
    /// The revision the change produced (for an acknowledgement, the one acknowledged).
    pub revision: u32,
    /// When that revision was made (RFC 3339).
    pub at: &'a str,
    pub publisher: &'a str,
    pub state: &'a str,
    pub kind: &'a str,
    /// Label, community and references of that revision ("" and none without content).
    pub tlp: &'a str,
    pub community: &'a str,
    pub cbm_refs: &'a [String],
    /// For an acknowledgement: who acknowledged.
    pub acknowledged_by: &'a str,
}

impl<'a> ChangeFields<'a> {
    /// The fields of a fully decoded event.
    pub fn of(event: &'a StoredEvent) -> Option<ChangeFields<'a>> {
        let s = event.submission.as_ref()?;
        let c = s.content.as_ref();
        Some(ChangeFields {
            sequence: event.sequence,
            action: &event.action,
            id: &s.id,
            revision: s.revision,
            at: &s.updated_at,
            publisher: &s.publisher,
            state: &s.state,
            kind: &s.kind,
            tlp: c.map_or("", |c| c.tlp.as_str()),
            community: c.map_or("", |c| c.community.as_str()),
            cbm_refs: c.map_or(&[], |c| c.cbm_refs.as_slice()),
            acknowledged_by: event
                .acknowledgement
                .as_ref()
                .map_or("", |a| a.member.as_str()),
        })
    }
}

/// What a subscriber receives for one stored change. The discriminants index the live event's
/// encodings ([`crate::store::Committed::encoded`], one per variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The revision with its content.
    Full = 0,
    /// "withdrawn" with the envelope only: the publisher withdrew it.
    Withdrawn = 1,
    /// "withdrawn" with the submission's identity only: the reader lost access (see
    /// [`crate::domain::visibility::narrowed`]).
    AudienceNarrowed = 2,
    /// "acknowledged": the acknowledgement with the notice's envelope, to the notice's sender
    /// and to the member who acknowledged.
    Acknowledgement = 3,
}

impl Delivery {
    /// Where this delivery's encoding of a live event is kept.
    pub fn slot(self) -> usize {
        self as usize
    }
}

// One encoding slot per variant: a variant added without a slot fails to compile.
const _: () = assert!(Delivery::Acknowledgement as usize + 1 == crate::store::Committed::ENCODINGS);

/// The decision for `reader` about a change to a submission whose current standing is
/// `standing`; None: nothing is sent (a gap in its sequence). The audience part is the one
/// decision of [`audience::decide`]; the filter then narrows what the reader asked for.
pub fn decide(
    reader: &Member,
    filter: &Filter,
    registry: &Registry,
    change: &ChangeFields<'_>,
    standing: &Standing<'_>,
) -> Option<Delivery> {
    let about = if change.action == records::ACKNOWLEDGED {
        About::Acknowledgement {
            by: change.acknowledged_by,
        }
    } else {
        About::Change {
            revision: change.revision,
            withdrawal: change.action == records::WITHDRAWN,
            at: change.at,
        }
    };
    let delivery = match audience::decide(reader, standing, about) {
        Receives::Content => Delivery::Full,
        Receives::Withdrawn => Delivery::Withdrawn,
        Receives::Narrowed => Delivery::AudienceNarrowed,
        Receives::Acknowledgement => Delivery::Acknowledgement,
        Receives::Nothing => return None,
    };
    let selected = match delivery {
        Delivery::AudienceNarrowed => filter.selects_identity(change),
        _ => filter.selects(change, registry),
    };
    selected.then_some(delivery)
}
