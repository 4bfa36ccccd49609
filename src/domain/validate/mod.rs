//! Validation of submission content. Pure: the registry, catalogue and clock come in a
//! [`Context`]. Every problem is reported at once, each naming its field path.
mod bodies;
pub mod fields;
mod notice;
pub use bodies::POC_LEVELS;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{Invalid, catalogue::Catalogue, kind::Kind, member::Registry, tlp::Tlp};
use crate::pb::SubmissionContent;

/// Limits of one submission; the gRPC message limit is set above their sum.
pub const MAX_ATTACHMENTS: usize = 10;
pub const MAX_ATTACHMENT_BYTES: usize = 1024 * 1024;
pub const MAX_ATTACHMENTS_TOTAL: usize = 2 * 1024 * 1024;
pub const MAX_RECIPIENTS: usize = 500;

/// What validation needs to know about the hub.
pub struct Context<'a> {
    /// Recipients must name registered members.
    pub registry: &'a Registry,
    /// CBM references must be in the catalogue.
    pub catalogue: &'a Catalogue,
    /// Dates of adoption or verification may not lie after today; deadlines must lie ahead.
    pub now: OffsetDateTime,
    /// The content a revision replaces, if any: a deadline it keeps unchanged need not lie
    /// ahead any more, so a publisher can still correct a notice after its deadline.
    pub previous: Option<&'a crate::pb::SubmissionContent>,
}

/// The facts validation establishes about valid content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Valid {
    pub kind: Kind,
    pub tlp: Tlp,
}

/// Checks content under the path `prefix` (for example "content").
pub fn content(ctx: &Context<'_>, c: &SubmissionContent, prefix: &str) -> Result<Valid, Invalid> {
    let mut errs = Invalid::default();
    let p = |f: &str| format!("{prefix}.{f}");

    fields::required(&mut errs, &p("title"), &c.title, 200, false);
    fields::language(&mut errs, &p("language"), &c.language);
    fields::optional(&mut errs, &p("summary"), &c.summary, 4000, true);

    let tlp = match c.tlp.parse::<Tlp>() {
        Ok(t) => Some(t),
        Err(e) => {
            errs.push(
                p("tlp"),
                if c.tlp.is_empty() {
                    "is required".into()
                } else {
                    e
                },
            );
            None
        }
    };
    audience(ctx, c, tlp, &mut errs, &p);

    if fields::count(&mut errs, &p("cbm_refs"), &c.cbm_refs, 0, 50) {
        for (i, r) in c.cbm_refs.iter().enumerate() {
            if !ctx.catalogue.contains(r) {
                errs.push(
                    format!("{}[{i}]", p("cbm_refs")),
                    format!("{r:?} is not in the CBM catalogue"),
                );
            }
        }
        fields::unique(
            &mut errs,
            &p("cbm_refs"),
            c.cbm_refs.iter().map(String::as_str),
            str::to_string,
        );
    }
    if fields::count(&mut errs, &p("tags"), &c.tags, 0, 50) {
        for (i, t) in c.tags.iter().enumerate() {
            let ok = (1..=64).contains(&t.chars().count())
                && t.chars()
                    .all(|ch| ch.is_alphanumeric() || matches!(ch, '-' | '_' | '.' | ':'));
            if !ok {
                errs.push(
                    format!("{}[{i}]", p("tags")),
                    format!("{t:?} must be 1 to 64 letters, digits, '-', '_', '.' or ':'"),
                );
            }
        }
    }
    if !c.review_by.is_empty() {
        fields::date(&mut errs, &p("review_by"), &c.review_by, None);
    }
    attachments(c, &mut errs, &p);

    let kind = match &c.body {
        None => {
            errs.push(
                p("body"),
                "is required: one of policy_document, terminology_list, critical_infrastructure_approach, \
                 point_of_contact, incident_severity_schema, notice",
            );
            None
        }
        Some(body) => {
            bodies::check(ctx, body, c, &mut errs, &p("body"));
            Some(Kind::of(body))
        }
    };
    errs.into_result()?;
    // Both are Some when no error was pushed.
    match (kind, tlp) {
        (Some(kind), Some(tlp)) => Ok(Valid { kind, tlp }),
        _ => Err(Invalid::one(prefix, "is incomplete")),
    }
}

fn audience(
    ctx: &Context<'_>,
    c: &SubmissionContent,
    tlp: Option<Tlp>,
    errs: &mut Invalid,
    p: &dyn Fn(&str) -> String,
) {
    if fields::count(errs, &p("recipients"), &c.recipients, 0, MAX_RECIPIENTS) {
        for (i, r) in c.recipients.iter().enumerate() {
            if !ctx.registry.contains(r) {
                errs.push(
                    format!("{}[{i}]", p("recipients")),
                    format!("{r:?} is not a registered member"),
                );
            }
        }
        fields::unique(
            errs,
            &p("recipients"),
            c.recipients.iter().map(String::as_str),
            str::to_string,
        );
    }
    let Some(tlp) = tlp else { return };
    if tlp.needs_recipients() && c.recipients.is_empty() {
        errs.push(
            p("recipients"),
            format!("{tlp} is shared only with named recipients: name at least one member"),
        );
    }
    if !c.community.is_empty() {
        if tlp != Tlp::Green {
            errs.push(
                p("community"),
                format!("only TLP:GREEN is shared with a community; {tlp} is not"),
            );
        } else if let Err(e) = super::member::check_code(&c.community, "community") {
            errs.push(p("community"), e);
        } else if !ctx.registry.has_community(&c.community) {
            // A mistyped community would silently hide the submission from everyone.
            errs.push(
                p("community"),
                format!("no member of this hub belongs to community {}", c.community),
            );
        }
    }
    if matches!(tlp, Tlp::Clear | Tlp::Green) && !c.recipients.is_empty() {
        errs.push(
            p("recipients"),
            format!("{tlp} is not addressed to named recipients; use TLP:AMBER, TLP:AMBER+STRICT or TLP:RED to name them"),
        );
    }
}

fn attachments(c: &SubmissionContent, errs: &mut Invalid, p: &dyn Fn(&str) -> String) {
    if !fields::count(errs, &p("attachments"), &c.attachments, 0, MAX_ATTACHMENTS) {
        return;
    }
    let mut total = 0usize;
    for (i, a) in c.attachments.iter().enumerate() {
        let ap = |f: &str| format!("{}[{i}].{f}", p("attachments"));
        if fields::required(errs, &ap("name"), &a.name, 255, false) && a.name.contains(['/', '\\'])
        {
            errs.push(ap("name"), "must be a file name without directories");
        }
        let media_ok = a
            .media_type
            .split_once('/')
            .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty())
            && a.media_type.len() <= 127
            && !a
                .media_type
                .chars()
                .any(|ch| ch.is_whitespace() || ch.is_control());
        if !media_ok {
            errs.push(
                ap("media_type"),
                format!(
                    "{:?} is not a media type such as application/pdf",
                    a.media_type
                ),
            );
        }
        total += a.content.len();
        if a.content.is_empty() {
            errs.push(ap("content"), "is empty");
        } else if a.content.len() > MAX_ATTACHMENT_BYTES {
            errs.push(
                ap("content"),
                format!(
                    "is {} bytes; at most {MAX_ATTACHMENT_BYTES} are allowed",
                    a.content.len()
                ),
            );
        } else if fields::sha256_hex(errs, &ap("sha256"), &a.sha256) {
            let actual = hex::encode(Sha256::digest(&a.content));
            if actual != a.sha256 {
                errs.push(
                    ap("sha256"),
                    format!("does not match the content, whose SHA-256 is {actual}"),
                );
            }
        }
    }
    if total > MAX_ATTACHMENTS_TOTAL {
        errs.push(
            p("attachments"),
            format!("total {total} bytes; at most {MAX_ATTACHMENTS_TOTAL} are allowed"),
        );
    }
}

#[cfg(test)]
mod tests;
