//! What a subscriber asked for, and what each stored change means for it: a pure decision over
//! (member, filter, change), built on the one audience policy.
use crate::{
    domain::{
        Invalid,
        kind::Kind,
        member::{Member, Registry, check_code},
        tlp::{Audience, Tlp, may_read},
        validate::fields,
        visibility::may_read_revision,
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

    /// Does the filter select this revision? `previous_label` also counts for the label filter,
    /// so a subscriber following a label hears that an item left its audience.
    fn selects(
        &self,
        s: &pb::Submission,
        previous_label: Option<&str>,
        registry: &Registry,
    ) -> bool {
        let c = s.content.as_ref();
        let label = c.map(|c| c.tlp.as_str());
        (self.kinds.is_empty() || self.kinds.iter().any(|k| k.as_str() == s.kind))
            && (self.states.is_empty() || self.states.contains(&s.state))
            && (self.publishers.is_empty() || self.publishers.contains(&s.publisher))
            && (self.labels.is_empty()
                || self
                    .labels
                    .iter()
                    .any(|l| Some(l.as_str()) == label || Some(l.as_str()) == previous_label))
            && (self.cbm_refs.is_empty()
                || c.is_some_and(|c| c.cbm_refs.iter().any(|r| self.cbm_refs.contains(r))))
            && (self.communities.is_empty()
                || c.is_some_and(|c| self.communities.contains(&c.community))
                || registry
                    .get(&s.publisher)
                    .is_some_and(|p| p.communities.iter().any(|pc| self.communities.contains(pc))))
    }
}

/// What a subscriber receives for one stored change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The revision with its content.
    Full,
    /// "withdrawn" with the envelope only: the publisher withdrew it.
    Withdrawn,
    /// "withdrawn" with the envelope only: a revision no longer addresses this reader.
    AudienceNarrowed,
    /// "acknowledged": the acknowledgement with the notice's envelope, to the notice's sender
    /// and to the member who acknowledged.
    Acknowledgement,
}

/// The decision for `reader` about `event`; None: nothing is sent (a gap in its sequence).
pub fn decide(
    reader: &Member,
    filter: &Filter,
    registry: &Registry,
    event: &StoredEvent,
) -> Option<Delivery> {
    let s = event.submission.as_ref()?;
    let previous = event.previous_audience.as_ref();
    if !filter.selects(s, previous.map(|p| p.tlp.as_str()), registry) {
        return None;
    }
    if event.action == records::ACKNOWLEDGED {
        let ack = event.acknowledgement.as_ref()?;
        let concerned = reader.id == s.publisher || reader.id == ack.member;
        return (concerned && reader.is_active()).then_some(Delivery::Acknowledgement);
    }
    if reader.id == s.publisher {
        return reader.is_active().then_some(Delivery::Full);
    }
    let now = may_read_revision(reader, s);
    match event.action.as_str() {
        records::WITHDRAWN => now.then_some(Delivery::Withdrawn),
        _ if now => Some(Delivery::Full),
        records::REVISED => {
            let before = previous.is_some_and(|p| {
                p.tlp.parse().is_ok_and(|tlp| {
                    may_read(
                        reader,
                        &Audience {
                            publisher: &s.publisher,
                            tlp,
                            recipients: &p.recipients,
                            community: &p.community,
                        },
                    )
                })
            });
            before.then_some(Delivery::AudienceNarrowed)
        }
        _ => None,
    }
}
