//! Ping campaigns as stored: the targets and deadline (written with the campaign's ping notice),
//! and the record that the deadline has passed.
use super::{
    Store, StoreError, codec,
    writer::{Command, Group, T, Writer},
};
use crate::{
    audit::Origin,
    domain::{campaign, clock},
    pb::{self, AuditEntry},
};

pub const OPEN: &str = "open";
pub const CLOSED: &str = "closed";

impl Writer {
    pub(super) fn campaign_in(
        &self,
        id: &str,
        group: &Group,
    ) -> Result<Option<pb::PingCampaign>, StoreError> {
        if let Some(c) = group.campaigns.get(id) {
            return Ok(Some(c.clone()));
        }
        read(&self.trees.campaigns, id)
    }

    /// Marks a campaign closed (once) and audits its final figures. Returns the campaign's
    /// report, and the audit entry when this call closed it.
    pub(super) fn prepare_close(
        &self,
        id: &str,
        group: &mut Group,
    ) -> Result<(pb::PingCampaign, Option<AuditEntry>), StoreError> {
        let mut stored = self
            .campaign_in(id, group)?
            .ok_or_else(|| StoreError::NotFound(format!("no ping campaign {id}")))?;
        let mut acks = self.trees_acks_of(id)?;
        acks.extend(group.acks.values().filter(|a| a.notice_id == id).cloned());
        if stored.status == CLOSED {
            return Ok((campaign::report(stored, &acks, true), None));
        }
        stored.status = CLOSED.into();
        stored.closed_at = clock::now_rfc3339();
        group
            .writes
            .push((T::Campaigns, id.as_bytes().to_vec(), codec::frame(&stored)));
        group.campaigns.insert(id.to_string(), stored.clone());
        let report = campaign::report(stored, &acks, true);
        let mut entry = Origin::hub().entry("ping.campaign.close");
        entry.object_id = id.to_string();
        entry.detail = format!(
            "deadline {} passed: {} of {} contacts answered, {} on time",
            report.deadline, report.answered, report.contacts, report.answered_on_time
        );
        Ok((report, Some(entry)))
    }

    fn trees_acks_of(&self, id: &str) -> Result<Vec<pb::Acknowledgement>, StoreError> {
        let mut prefix = id.as_bytes().to_vec();
        prefix.push(0);
        self.trees
            .acks
            .scan_prefix(prefix)
            .map(|item| {
                let (_, v) = item?;
                codec::unframe(&v, || format!("acknowledgement of {id}"))
            })
            .collect()
    }
}

fn read(tree: &sled::Tree, id: &str) -> Result<Option<pb::PingCampaign>, StoreError> {
    match tree.get(id.as_bytes())? {
        None => Ok(None),
        Some(v) => codec::unframe(&v, || format!("ping campaign {id}")).map(Some),
    }
}

impl Store {
    /// A campaign as stored (targets, deadline, status), if it exists and is durable.
    pub fn campaign(&self, id: &str) -> Result<Option<pb::PingCampaign>, StoreError> {
        // The campaign is written with its notice: durable once the notice is.
        if self.head_of(id)?.is_none() {
            return Ok(None);
        }
        read(&self.inner.trees.campaigns, id)
    }

    /// Every durable campaign as stored.
    pub fn campaigns(&self) -> Result<Vec<pb::PingCampaign>, StoreError> {
        let mut all = Vec::new();
        for item in self.inner.trees.campaigns.iter() {
            let (k, v) = item?;
            let id = String::from_utf8_lossy(&k).into_owned();
            if self.head_of(&id)?.is_some() {
                all.push(codec::unframe(&v, || format!("ping campaign {id}"))?);
            }
        }
        Ok(all)
    }

    /// Records that a campaign's deadline has passed; resolves once durable.
    pub async fn close_campaign(&self, id: String) -> Result<pb::PingCampaign, StoreError> {
        self.ask(|reply| Command::CloseCampaign { id, reply }).await
    }
}
