//! Checks of a notice and of the template its category carries. What needs stored state (that a
//! severity names a level of the sender's schema, that `in_reply_to` names a notice the sender
//! may see) is checked by the store when the notice is committed.
use super::{Context, bodies::list, fields as f};
use crate::domain::{Invalid, clock};
use crate::pb::{self, notice::Template};

pub const NOTICE_CATEGORIES: &[&str] = &[
    "information",
    "advisory",
    "consultation_request",
    "request_for_assistance",
    "incident_notification",
    "ping",
];
const INCIDENT_STATUSES: &[&str] = &["ongoing", "contained", "resolved"];

pub fn check(ctx: &Context<'_>, n: &pb::Notice, errs: &mut Invalid, p: &str) {
    f::one_of(
        errs,
        &format!("{p}.category"),
        &n.category,
        NOTICE_CATEGORIES,
    );
    f::required(errs, &format!("{p}.subject"), &n.subject, 200, false);
    f::required(errs, &format!("{p}.text"), &n.text, 20_000, true);
    if n.category == "incident_notification" {
        f::required(errs, &format!("{p}.severity"), &n.severity, 64, false);
    } else {
        f::optional(errs, &format!("{p}.severity"), &n.severity, 64, false);
    }
    if !n.severity_schema.is_empty() && n.severity.is_empty() {
        errs.push(
            format!("{p}.severity_schema"),
            "is only meaningful with a severity",
        );
    }
    if n.category == "ping" && n.ack_deadline.is_empty() {
        errs.push(
            format!("{p}.ack_deadline"),
            "is required for a ping: recipients must know when to answer by",
        );
    }
    if !kept(ctx, &n.ack_deadline, |prev| &prev.ack_deadline) {
        future_instant(ctx, errs, &format!("{p}.ack_deadline"), &n.ack_deadline);
    }
    optional_id(errs, &format!("{p}.in_reply_to"), &n.in_reply_to);
    optional_id(errs, &format!("{p}.severity_schema"), &n.severity_schema);
    template(ctx, n, errs, p);
}

/// The template must be the one of the category, and complete.
fn template(ctx: &Context<'_>, n: &pb::Notice, errs: &mut Invalid, p: &str) {
    let expected = match n.category.as_str() {
        c @ ("request_for_assistance" | "consultation_request" | "incident_notification") => {
            Some(c)
        }
        _ => None,
    };
    let given = n.template.as_ref().map(template_name);
    if given != expected {
        match (expected, given) {
            (Some(e), _) => errs.push(
                format!("{p}.{e}"),
                format!("is required for category {:?}", n.category),
            ),
            (None, Some(g)) => errs.push(
                format!("{p}.{g}"),
                format!(
                    "does not belong to category {:?} (it is the template of {g:?})",
                    n.category
                ),
            ),
            (None, None) => {}
        }
        return;
    }
    match &n.template {
        Some(Template::RequestForAssistance(r)) => {
            let p = format!("{p}.request_for_assistance");
            f::required(
                errs,
                &format!("{p}.incident_summary"),
                &r.incident_summary,
                4000,
                true,
            );
            f::required(
                errs,
                &format!("{p}.affected_sector"),
                &r.affected_sector,
                100,
                false,
            );
            f::required(
                errs,
                &format!("{p}.assistance_requested"),
                &r.assistance_requested,
                4000,
                true,
            );
            let kept = kept(ctx, &r.respond_by, |prev| match &prev.template {
                Some(Template::RequestForAssistance(p)) => &p.respond_by,
                _ => "",
            });
            required_instant(ctx, errs, &format!("{p}.respond_by"), &r.respond_by, kept);
        }
        Some(Template::ConsultationRequest(c)) => {
            let p = format!("{p}.consultation_request");
            f::required(errs, &format!("{p}.topic"), &c.topic, 200, false);
            if f::count(errs, &format!("{p}.questions"), &c.questions, 1, 20) {
                for (i, q) in c.questions.iter().enumerate() {
                    f::required(errs, &format!("{p}.questions[{i}]"), q, 2000, true);
                }
            }
            if !c.proposed_date.is_empty()
                && f::date(errs, &format!("{p}.proposed_date"), &c.proposed_date, None)
                && clock::parse_date(&c.proposed_date).is_ok_and(|d| d < ctx.now.date())
            {
                errs.push(
                    format!("{p}.proposed_date"),
                    format!("{} is in the past", c.proposed_date),
                );
            }
            let kept = kept(ctx, &c.respond_by, |prev| match &prev.template {
                Some(Template::ConsultationRequest(p)) => &p.respond_by,
                _ => "",
            });
            required_instant(ctx, errs, &format!("{p}.respond_by"), &c.respond_by, kept);
        }
        Some(Template::IncidentNotification(i)) => {
            let p = format!("{p}.incident_notification");
            f::required(
                errs,
                &format!("{p}.incident_summary"),
                &i.incident_summary,
                4000,
                true,
            );
            list(
                errs,
                &format!("{p}.affected_sectors"),
                &i.affected_sectors,
                1,
                20,
                100,
            );
            let path = format!("{p}.detected_at");
            if f::required(errs, &path, &i.detected_at, 64, false) {
                match clock::parse_instant(&i.detected_at) {
                    Ok(t) if t > ctx.now => {
                        errs.push(path, format!("{} is in the future", i.detected_at))
                    }
                    Ok(_) => {}
                    Err(e) => errs.push(path, e),
                }
            }
            f::one_of(errs, &format!("{p}.status"), &i.status, INCIDENT_STATUSES);
            f::optional(errs, &format!("{p}.impact"), &i.impact, 4000, true);
        }
        None => {}
    }
}

fn template_name(t: &Template) -> &'static str {
    match t {
        Template::RequestForAssistance(_) => "request_for_assistance",
        Template::ConsultationRequest(_) => "consultation_request",
        Template::IncidentNotification(_) => "incident_notification",
    }
}

/// A required RFC 3339 instant, which must lie in the future unless a revision keeps it.
fn required_instant(ctx: &Context<'_>, errs: &mut Invalid, path: &str, value: &str, kept: bool) {
    if value.is_empty() {
        errs.push(path, "is required");
    } else if !kept {
        future_instant(ctx, errs, path, value);
    } else if let Err(e) = clock::parse_instant(value) {
        errs.push(path, e);
    }
}

/// Whether a revision keeps `value` as the notice it replaces had it (`field` of the previous
/// notice): a deadline set earlier may have passed since, and correcting the rest of the notice
/// must not force it to move.
fn kept(ctx: &Context<'_>, value: &str, field: impl Fn(&pb::Notice) -> &str) -> bool {
    let previous = ctx.previous.and_then(|c| match &c.body {
        Some(pb::submission_content::Body::Notice(n)) => Some(n),
        _ => None,
    });
    !value.is_empty() && previous.is_some_and(|prev| field(prev) == value)
}

/// An optional RFC 3339 instant that must lie in the future.
fn future_instant(ctx: &Context<'_>, errs: &mut Invalid, path: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    match clock::parse_instant(value) {
        Ok(t) if t <= ctx.now => errs.push(path, format!("{value} is not in the future")),
        Ok(_) => {}
        Err(e) => errs.push(path, e),
    }
}

/// A submission id field: the hub's ids are UUIDs.
fn optional_id(errs: &mut Invalid, path: &str, value: &str) {
    if !value.is_empty() && uuid::Uuid::parse_str(value).is_err() {
        errs.push(path, format!("{value:?} is not a submission id"));
    }
}
