//! The rules of a notice that need stored state (domain.md, notices: "optional severity (a
//! level of the sender's schema)"; a reply answers a notice the sender may see).
use super::{Refusal, View};
use crate::{
    domain::{audience::sees, kind::Kind, member::Member},
    pb::{self, SubmissionContent, submission_content::Body},
};

const NOTICE: &str = "content.body.notice";

/// Checks a notice's reply target and severity against the state; other content passes.
pub fn check_notice<V: View>(
    view: &V,
    actor: &Member,
    content: &SubmissionContent,
) -> Result<(), V::Error> {
    let Some(Body::Notice(n)) = &content.body else {
        return Ok(());
    };
    if !n.in_reply_to.is_empty() {
        check_reply(view, actor, &n.in_reply_to)?;
    }
    if !n.severity.is_empty() {
        let (schema_id, levels) = severity_schema(view, actor, &n.severity_schema)?;
        if !levels.iter().any(|l| l.name == n.severity) {
            let names: Vec<_> = levels.iter().map(|l| l.name.as_str()).collect();
            return Err(Refusal::invalid(
                format!("{NOTICE}.severity"),
                format!(
                    "{:?} is not a level of your incident severity schema {schema_id}; its levels are {}",
                    n.severity,
                    names.join(", ")
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// A reply answers a notice the sender may see (absent and invisible answered alike).
fn check_reply<V: View>(view: &V, actor: &Member, id: &str) -> Result<(), V::Error> {
    let path = format!("{NOTICE}.in_reply_to");
    let unknown = || Refusal::invalid(&path, format!("no notice {id} visible to {}", actor.id));
    let (head, _) = view.latest(id)?.ok_or_else(unknown)?;
    if !sees(actor, &head.standing()) {
        return Err(unknown().into());
    }
    if head.kind != Kind::Notice.as_str() {
        return Err(
            Refusal::invalid(&path, format!("{id} is a {}, not a notice", head.kind)).into(),
        );
    }
    Ok(())
}

/// The levels of the schema a severity refers to: the named one, which must be the sender's
/// own active schema, or else the sender's most recently updated active schema.
fn severity_schema<V: View>(
    view: &V,
    actor: &Member,
    named: &str,
) -> Result<(String, Vec<pb::SeverityLevel>), V::Error> {
    let candidates = if named.is_empty() {
        view.ids_of_kind(Kind::IncidentSeveritySchema, &actor.id)?
    } else {
        vec![named.to_string()]
    };
    let mut best: Option<(String, String, Vec<pb::SeverityLevel>)> = None;
    for id in candidates {
        let Some((head, latest)) = view.latest(&id)? else {
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
        let Some(Body::IncidentSeveritySchema(schema)) = sub.content.and_then(|c| c.body) else {
            continue;
        };
        if best.as_ref().is_none_or(|(_, at, _)| sub.updated_at > *at) {
            best = Some((id, sub.updated_at, schema.levels));
        }
    }
    match best {
        Some((id, _, levels)) => Ok((id, levels)),
        None if named.is_empty() => Err(Refusal::precondition(
            "no_severity_schema",
            &format!("{NOTICE}.severity"),
            format!(
                "{} has no active incident severity schema; publish one first",
                actor.id
            ),
        )
        .into()),
        None => Err(Refusal::invalid(
            format!("{NOTICE}.severity_schema"),
            format!(
                "{named} is not an active incident severity schema of {}",
                actor.id
            ),
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rules::{RefusalCode, testview::TestView};

    fn notice(reply_to: &str, severity: &str, schema: &str) -> SubmissionContent {
        SubmissionContent {
            body: Some(Body::Notice(pb::Notice {
                in_reply_to: reply_to.into(),
                severity: severity.into(),
                severity_schema: schema.into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn reply_targets_and_severities() {
        let mut v = TestView::default();
        v.submission(
            "to-cl",
            "EE-MFA",
            Kind::Notice,
            "TLP:AMBER",
            &["CL-CSIRT"],
            1,
        );
        v.submission(
            "policy",
            "EE-MFA",
            Kind::PolicyDocument,
            "TLP:CLEAR",
            &[],
            1,
        );
        v.schema("ee-schema", "EE-MFA", &["low", "high"]);
        v.schema("cl-schema", "CL-CSIRT", &["minor"]);
        v.schema("ee-old", "EE-MFA", &["old"]);
        v.withdraw("ee-old");
        // (actor, reply target, severity, named schema, expected: Ok or (code, field))
        type Row<'a> = (
            &'a str,
            &'a str,
            &'a str,
            &'a str,
            Result<(), (RefusalCode, &'a str)>,
        );
        let table: &[Row] = &[
            ("CL-CSIRT", "to-cl", "", "", Ok(())),
            // Not a recipient: the notice does not exist for it.
            (
                "EE-CERT",
                "to-cl",
                "",
                "",
                Err((
                    RefusalCode::InvalidArgument,
                    "content.body.notice.in_reply_to",
                )),
            ),
            (
                "CL-CSIRT",
                "absent",
                "",
                "",
                Err((
                    RefusalCode::InvalidArgument,
                    "content.body.notice.in_reply_to",
                )),
            ),
            (
                "CL-CSIRT",
                "policy",
                "",
                "",
                Err((
                    RefusalCode::InvalidArgument,
                    "content.body.notice.in_reply_to",
                )),
            ),
            // The sender's own schema, found without naming it, or named.
            ("EE-MFA", "", "high", "", Ok(())),
            ("EE-MFA", "", "high", "ee-schema", Ok(())),
            (
                "EE-MFA",
                "",
                "minor",
                "",
                Err((RefusalCode::InvalidArgument, "content.body.notice.severity")),
            ),
            // Another member's schema, or a withdrawn one, is not the sender's active schema.
            (
                "EE-MFA",
                "",
                "minor",
                "cl-schema",
                Err((
                    RefusalCode::InvalidArgument,
                    "content.body.notice.severity_schema",
                )),
            ),
            (
                "EE-MFA",
                "",
                "old",
                "ee-old",
                Err((
                    RefusalCode::InvalidArgument,
                    "content.body.notice.severity_schema",
                )),
            ),
            // No schema at all: publish one first.
            (
                "EE-CERT",
                "",
                "high",
                "",
                Err((
                    RefusalCode::FailedPrecondition,
                    "content.body.notice.severity",
                )),
            ),
        ];
        for (actor, reply, severity, schema, want) in table {
            let got = check_notice(
                &v,
                &TestView::member(actor),
                &notice(reply, severity, schema),
            );
            match (&got, want) {
                (Ok(()), Ok(())) => {}
                (Err(r), Err((code, field))) => {
                    assert_eq!(
                        (r.code, r.field.as_str()),
                        (*code, *field),
                        "{actor} {reply} {severity}"
                    )
                }
                _ => panic!("{actor} {reply} {severity} {schema}: {got:?}"),
            }
        }
    }
}
