//! Checks of each kind's typed body.
use super::{Context, fields as f};
use crate::domain::Invalid;
use crate::pb::{self, SubmissionContent, submission_content::Body};

const DOCUMENT_TYPES: &[&str] = &[
    "strategy",
    "white_paper",
    "legal_framework",
    "policy",
    "programme",
    "other",
];
pub const POC_LEVELS: &[&str] = &["policy", "technical", "legal"];
const CHANNEL_TYPES: &[&str] = &["email", "phone", "secure_channel", "web"];

pub fn check(
    ctx: &Context<'_>,
    body: &Body,
    content: &SubmissionContent,
    errs: &mut Invalid,
    path: &str,
) {
    let today = Some(ctx.now.date());
    match body {
        Body::PolicyDocument(d) => {
            policy_document(d, content, errs, &format!("{path}.policy_document"), today)
        }
        Body::TerminologyList(t) => terminology(t, errs, &format!("{path}.terminology_list")),
        Body::CriticalInfrastructureApproach(c) => {
            critical_infrastructure(c, errs, &format!("{path}.critical_infrastructure_approach"))
        }
        Body::PointOfContact(p) => {
            point_of_contact(p, errs, &format!("{path}.point_of_contact"), today)
        }
        Body::IncidentSeveritySchema(s) => {
            severity_schema(s, errs, &format!("{path}.incident_severity_schema"))
        }
        Body::Notice(n) => super::notice::check(ctx, n, errs, &format!("{path}.notice")),
    }
}

fn policy_document(
    d: &pb::PolicyDocument,
    c: &SubmissionContent,
    errs: &mut Invalid,
    p: &str,
    today: Option<time::Date>,
) {
    f::one_of(
        errs,
        &format!("{p}.document_type"),
        &d.document_type,
        DOCUMENT_TYPES,
    );
    f::required(
        errs,
        &format!("{p}.issuing_authority"),
        &d.issuing_authority,
        300,
        false,
    );
    f::date(errs, &format!("{p}.adoption_date"), &d.adoption_date, today);
    f::optional(errs, &format!("{p}.version"), &d.version, 64, false);
    if d.url.is_empty() {
        if c.attachments.is_empty() {
            errs.push(
                format!("{p}.url"),
                "a link to the document or an attachment is required",
            );
        }
    } else {
        f::https_url(errs, &format!("{p}.url"), &d.url);
    }
}

fn terminology(t: &pb::TerminologyList, errs: &mut Invalid, p: &str) {
    if !f::count(errs, &format!("{p}.terms"), &t.terms, 1, 2000) {
        return;
    }
    for (i, term) in t.terms.iter().enumerate() {
        let tp = format!("{p}.terms[{i}]");
        f::required(errs, &format!("{tp}.term"), &term.term, 200, false);
        f::required(
            errs,
            &format!("{tp}.definition"),
            &term.definition,
            4000,
            true,
        );
        f::optional(errs, &format!("{tp}.source"), &term.source, 500, false);
        if f::count(errs, &format!("{tp}.equivalents"), &term.equivalents, 0, 50) {
            for (j, eq) in term.equivalents.iter().enumerate() {
                f::language(
                    errs,
                    &format!("{tp}.equivalents[{j}].language"),
                    &eq.language,
                );
                f::required(
                    errs,
                    &format!("{tp}.equivalents[{j}].term"),
                    &eq.term,
                    200,
                    false,
                );
            }
        }
    }
    f::unique(
        errs,
        &format!("{p}.terms"),
        t.terms.iter().map(|t| t.term.as_str()),
        str::to_lowercase,
    );
}

fn critical_infrastructure(c: &pb::CriticalInfrastructureApproach, errs: &mut Invalid, p: &str) {
    list(errs, &format!("{p}.sectors"), &c.sectors, 1, 100, 200);
    f::unique(
        errs,
        &format!("{p}.sectors"),
        c.sectors.iter().map(String::as_str),
        str::to_lowercase,
    );
    f::required(
        errs,
        &format!("{p}.designation_criteria"),
        &c.designation_criteria,
        4000,
        true,
    );
    list(
        errs,
        &format!("{p}.responsible_authorities"),
        &c.responsible_authorities,
        1,
        50,
        300,
    );
    list(
        errs,
        &format!("{p}.protection_measures"),
        &c.protection_measures,
        0,
        100,
        1000,
    );
    f::required(
        errs,
        &format!("{p}.legal_basis"),
        &c.legal_basis,
        2000,
        true,
    );
}

fn point_of_contact(
    c: &pb::PointOfContact,
    errs: &mut Invalid,
    p: &str,
    today: Option<time::Date>,
) {
    f::one_of(errs, &format!("{p}.level"), &c.level, POC_LEVELS);
    f::required(
        errs,
        &format!("{p}.organisation"),
        &c.organisation,
        300,
        false,
    );
    f::required(errs, &format!("{p}.function"), &c.function, 200, false);
    if f::count(errs, &format!("{p}.channels"), &c.channels, 1, 20) {
        for (i, ch) in c.channels.iter().enumerate() {
            let cp = format!("{p}.channels[{i}]");
            let value_path = format!("{cp}.value");
            if f::one_of(errs, &format!("{cp}.type"), &ch.r#type, CHANNEL_TYPES)
                && f::required(errs, &value_path, &ch.value, 500, false)
            {
                match ch.r#type.as_str() {
                    "email" => f::email(errs, &value_path, &ch.value),
                    "phone" => f::phone(errs, &value_path, &ch.value),
                    "web" => f::https_url(errs, &value_path, &ch.value),
                    _ => true,
                };
            }
            f::optional(errs, &format!("{cp}.note"), &ch.note, 200, false);
        }
    }
    if f::count(errs, &format!("{p}.languages"), &c.languages, 1, 20) {
        for (i, l) in c.languages.iter().enumerate() {
            f::language(errs, &format!("{p}.languages[{i}]"), l);
        }
    }
    f::optional(
        errs,
        &format!("{p}.availability"),
        &c.availability,
        200,
        false,
    );
    if c.time_zone.is_empty() {
        errs.push(
            format!("{p}.time_zone"),
            "is required (an IANA time zone such as Europe/Tallinn, or UTC)",
        );
    } else {
        f::time_zone(errs, &format!("{p}.time_zone"), &c.time_zone);
    }
    f::date(errs, &format!("{p}.last_verified"), &c.last_verified, today);
}

fn severity_schema(s: &pb::IncidentSeveritySchema, errs: &mut Invalid, p: &str) {
    if !f::count(errs, &format!("{p}.levels"), &s.levels, 2, 20) {
        return;
    }
    for (i, l) in s.levels.iter().enumerate() {
        f::required(errs, &format!("{p}.levels[{i}].name"), &l.name, 64, false);
        f::required(
            errs,
            &format!("{p}.levels[{i}].criteria"),
            &l.criteria,
            2000,
            true,
        );
    }
    f::unique(
        errs,
        &format!("{p}.levels"),
        s.levels.iter().map(|l| l.name.as_str()),
        str::to_lowercase,
    );
}

/// A list of short single-line strings.
pub(super) fn list(
    errs: &mut Invalid,
    path: &str,
    items: &[String],
    min: usize,
    max: usize,
    max_len: usize,
) {
    if f::count(errs, path, items, min, max) {
        for (i, s) in items.iter().enumerate() {
            f::required(errs, &format!("{path}[{i}]"), s, max_len, false);
        }
    }
}
