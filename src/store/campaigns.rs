//! Ping campaigns as stored: the targets, the notice each tested member got, and the deadline
//! (written with the notices, see `campaign_start`), and the record that the deadline has
//! passed.
//!
//! A campaign stored before notices were sent per member has one notice, whose id is the
//! campaign's, and targets without a notice id: [`read`] gives those targets the campaign's
//! id, so that every reader sees one shape.
use std::collections::BTreeSet;

use super::{
    Store, StoreError, codec,
    group::Group,
    keyspace::{Part, Rec},
    writer::{Command, Writer},
};
use crate::{
    audit::Origin,
    domain::{campaign, clock, rules::Refusal},
    pb::{self, AuditEntry},
};

pub const OPEN: &str = "open";
pub const CLOSED: &str = "closed";

/// The distinct ping notices of a campaign, in order.
pub fn notices(c: &pb::PingCampaign) -> Vec<String> {
    let ids: BTreeSet<&str> = c.results.iter().map(|l| l.notice_id.as_str()).collect();
    ids.into_iter().map(str::to_string).collect()
}

/// A stored campaign in today's shape (a campaign of one notice gets its id as every notice id).
pub(super) fn normalised(mut c: pb::PingCampaign) -> pb::PingCampaign {
    for line in &mut c.results {
        if line.notice_id.is_empty() {
            line.notice_id = c.id.clone();
        }
    }
    c
}

fn read(tree: &Part, id: &str) -> Result<Option<pb::PingCampaign>, StoreError> {
    match tree.get(id.as_bytes())? {
        None => Ok(None),
        Some(v) => {
            codec::unframe(&v, || format!("ping campaign {id}")).map(|c| Some(normalised(c)))
        }
    }
}

/// The campaign that sent notice `notice` (`indexed`: the campaign id the index holds for it).
pub(super) fn of_notice(
    notice: &str,
    indexed: Option<String>,
    campaign: impl Fn(&str) -> Result<Option<pb::PingCampaign>, StoreError>,
) -> Result<Option<pb::PingCampaign>, StoreError> {
    let found = match indexed {
        Some(id) => campaign(&id)?,
        // A campaign of one notice has no index entry: it is stored under the notice's id.
        None => campaign(notice)?,
    };
    Ok(found.filter(|c| c.results.iter().any(|l| l.notice_id == notice)))
}

impl Writer {
    /// Marks a campaign closed (once) and audits its final figures. Returns the campaign's
    /// report, and the audit entry when this call closed it.
    pub(super) fn prepare_close(
        &self,
        id: &str,
        group: &mut Group,
    ) -> Result<(pb::PingCampaign, Option<AuditEntry>), StoreError> {
        let view = self.view(group);
        let mut stored = view
            .campaign(id)?
            .ok_or_else(|| Refusal::not_found(format!("no ping campaign {id}")))?;
        let mut acks = Vec::new();
        for notice in &notices(&stored) {
            acks.extend(view.acks_of(notice)?);
        }
        let counted = self.counted(&stored, group)?;
        if stored.status == CLOSED {
            return Ok((campaign::report(counted, &acks, true), None));
        }
        stored.status = CLOSED.into();
        stored.closed_at = clock::now_rfc3339();
        group.put(Rec::Campaigns, id.as_bytes(), codec::frame(&stored));
        let report = campaign::report(
            pb::PingCampaign {
                status: stored.status,
                closed_at: stored.closed_at,
                ..counted
            },
            &acks,
            true,
        );
        let mut entry = Origin::hub().entry("ping.campaign.close");
        entry.object_id = id.to_string();
        entry.detail = format!(
            "deadline {} passed: {} of {} contacts answered, {} on time",
            report.deadline, report.answered, report.contacts, report.answered_on_time
        );
        Ok((report, Some(entry)))
    }

    /// The campaign with only the targets its starting admin may read now: what its figures
    /// count (a campaign stored before targets were chosen by the admin's reading may hold
    /// others).
    fn counted(
        &self,
        stored: &pb::PingCampaign,
        group: &Group,
    ) -> Result<pb::PingCampaign, StoreError> {
        let registry = self.shared_registry();
        let starter = group
            .registry
            .as_ref()
            .unwrap_or(&*registry)
            .get(&stored.started_by)
            .cloned();
        let view = self.view(group);
        let mut counted = stored.clone();
        counted.results.clear();
        for line in &stored.results {
            let readable = match (&starter, view.head(&line.contact_id)?) {
                (Some(starter), Some(head)) => {
                    crate::domain::audience::sees(starter, &head.standing())
                }
                _ => false,
            };
            if readable {
                counted.results.push(line.clone());
            }
        }
        Ok(counted)
    }
}

fn campaign_id(index: &Part, notice: &str) -> Result<Option<String>, StoreError> {
    match index.get(notice.as_bytes())? {
        None => Ok(None),
        Some(v) => String::from_utf8(v.to_vec())
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("campaign of ping notice {notice}"))),
    }
}

impl Store {
    /// A campaign as stored (targets, deadline, status), if it exists and is durable.
    pub fn campaign(&self, id: &str) -> Result<Option<pb::PingCampaign>, StoreError> {
        match read(&self.inner.trees.campaigns, id)? {
            Some(c) if self.durable(&c)? => Ok(Some(c)),
            _ => Ok(None),
        }
    }

    /// The durable campaign that sent ping notice `notice`, if it is one.
    pub fn campaign_of_notice(&self, notice: &str) -> Result<Option<pb::PingCampaign>, StoreError> {
        let indexed = campaign_id(&self.inner.trees.campaign_notices, notice)?;
        of_notice(notice, indexed, |id| self.campaign(id))
    }

    /// The campaign is written with its notices, in one group: durable once they are.
    fn durable(&self, c: &pb::PingCampaign) -> Result<bool, StoreError> {
        let notice = c.results.first().map_or(c.id.as_str(), |l| &l.notice_id);
        Ok(self.head_of(notice)?.is_some())
    }

    /// Every durable campaign as stored.
    pub fn campaigns(&self) -> Result<Vec<pb::PingCampaign>, StoreError> {
        let mut all = Vec::new();
        for item in self.inner.trees.campaigns.iter() {
            let (k, v) = item?;
            let id = String::from_utf8_lossy(&k).into_owned();
            let c = normalised(codec::unframe(&v, || format!("ping campaign {id}"))?);
            if self.durable(&c)? {
                all.push(c);
            }
        }
        Ok(all)
    }

    /// Every durable acknowledgement of the campaign's notices.
    pub fn campaign_acks(
        &self,
        c: &pb::PingCampaign,
    ) -> Result<Vec<pb::Acknowledgement>, StoreError> {
        let mut acks = Vec::new();
        for notice in notices(c) {
            acks.extend(self.acks_of(&notice)?);
        }
        Ok(acks)
    }

    /// Starts a ping campaign (all its notices, or none); resolves once durable. The outcome's
    /// id is the campaign's.
    pub async fn start_campaign(
        &self,
        actor: std::sync::Arc<crate::domain::member::Member>,
        origin: Origin,
        start: super::campaign_start::CampaignStart,
    ) -> Result<super::Outcome, StoreError> {
        self.ask(|reply| Command::StartCampaign {
            actor,
            origin,
            start: Box::new(start),
            reply,
        })
        .await
    }

    /// Records that a campaign's deadline has passed; resolves once durable.
    pub async fn close_campaign(&self, id: String) -> Result<pb::PingCampaign, StoreError> {
        self.ask(|reply| Command::CloseCampaign { id, reply }).await
    }
}
