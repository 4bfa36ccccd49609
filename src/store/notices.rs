//! The checks of a notice that need stored state, made by the writer when the notice is
//! committed: its severity names a level of the sender's own schema, and the notice it answers
//! exists and is visible to the sender.
use super::{
    StoreError,
    writer::{Group, Writer},
};
use crate::{
    domain::{Invalid, audience::sees, kind::Kind, member::Member},
    pb::{self, SubmissionContent, submission_content::Body},
};

const NOTICE: &str = "content.body.notice";

impl Writer {
    pub(super) fn check_notice(
        &self,
        actor: &Member,
        content: &SubmissionContent,
        group: &Group,
    ) -> Result<(), StoreError> {
        let Some(Body::Notice(n)) = &content.body else {
            return Ok(());
        };
        if !n.in_reply_to.is_empty() {
            self.check_reply(actor, &n.in_reply_to, group)?;
        }
        if !n.severity.is_empty() {
            let (schema_id, levels) = self.severity_schema(actor, &n.severity_schema, group)?;
            if !levels.iter().any(|l| l.name == n.severity) {
                let names: Vec<_> = levels.iter().map(|l| l.name.as_str()).collect();
                return Err(StoreError::Invalid(Invalid::one(
                    format!("{NOTICE}.severity"),
                    format!(
                        "{:?} is not a level of your incident severity schema {schema_id}; its levels are {}",
                        n.severity,
                        names.join(", ")
                    ),
                )));
            }
        }
        Ok(())
    }

    fn check_reply(&self, actor: &Member, id: &str, group: &Group) -> Result<(), StoreError> {
        let path = format!("{NOTICE}.in_reply_to");
        // The same answer for absent and invisible, as everywhere.
        let unknown = || {
            StoreError::Invalid(Invalid::one(
                &path,
                format!("no notice {id} visible to {}", actor.id),
            ))
        };
        let (head, _) = self.latest_in(id, group)?.ok_or_else(unknown)?;
        if !sees(actor, &head.standing()) {
            return Err(unknown());
        }
        if head.kind != Kind::Notice.as_str() {
            return Err(StoreError::Invalid(Invalid::one(
                &path,
                format!("{id} is a {}, not a notice", head.kind),
            )));
        }
        Ok(())
    }

    /// The levels of the schema a severity refers to: the named one, which must be the sender's
    /// own active schema, or else the sender's most recently updated active schema.
    fn severity_schema(
        &self,
        actor: &Member,
        named: &str,
        group: &Group,
    ) -> Result<(String, Vec<pb::SeverityLevel>), StoreError> {
        let candidates = if named.is_empty() {
            self.ids_of_kind_in(Kind::IncidentSeveritySchema, &actor.id, group)?
        } else {
            vec![named.to_string()]
        };
        let mut best: Option<(String, String, Vec<pb::SeverityLevel>)> = None;
        for id in candidates {
            let Some((head, latest)) = self.latest_in(&id, group)? else {
                continue;
            };
            if head.withdrawn
                || head.publisher != actor.id
                || head.kind != Kind::IncidentSeveritySchema.as_str()
            {
                continue;
            }
            let Some(sub) = latest.submission else {
                continue;
            };
            let Some(Body::IncidentSeveritySchema(schema)) = sub.content.and_then(|c| c.body)
            else {
                continue;
            };
            if best.as_ref().is_none_or(|(_, at, _)| sub.updated_at > *at) {
                best = Some((id, sub.updated_at, schema.levels));
            }
        }
        match best {
            Some((id, _, levels)) => Ok((id, levels)),
            None if named.is_empty() => Err(StoreError::FailedPrecondition(format!(
                "{NOTICE}.severity: {} has no active incident severity schema; publish one first",
                actor.id
            ))),
            None => Err(StoreError::Invalid(Invalid::one(
                format!("{NOTICE}.severity_schema"),
                format!(
                    "{named} is not an active incident severity schema of {}",
                    actor.id
                ),
            ))),
        }
    }
}
