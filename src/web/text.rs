//! Every string the portal shows, in one place, so that a translation replaces this file only.
//! TLP labels, member ids, state codes and field values stored by members are data and are
//! shown as they are (TLP labels are never translated).

/// The `lang` of every page.
pub const LANG: &str = "en";
pub const PORTAL: &str = "cbm-hub";
pub const PORTAL_SUBTITLE: &str = "Cyber confidence-building measures exchange";
pub const SKIP_TO_CONTENT: &str = "Skip to content";
pub const SIGNED_IN_AS: &str = "Certificate of";
pub const MAIN_NAV: &str = "Main";

// Navigation.
pub const NAV_SUBMISSIONS: &str = "Submissions";
pub const NAV_CONTACTS: &str = "Points of contact";
pub const NAV_MATRIX: &str = "Implementation matrix";
pub const NAV_CAMPAIGNS: &str = "Ping campaigns";
pub const NAV_MEMBERS: &str = "Members";
pub const NAV_AUDIT: &str = "Audit log";

// Common.
pub const FILTER: &str = "Filter";
pub const APPLY: &str = "Apply";
pub const RESET: &str = "Clear filters";
pub const ANY: &str = "Any";
pub const NEXT_PAGE: &str = "Next page";
pub const FIRST_PAGE: &str = "First page";
pub const NONE_FOUND: &str = "Nothing to show with these filters.";
pub const YES: &str = "yes";
pub const NO: &str = "no";
pub const PRINTED_AT: &str = "Printed from cbm-hub for";

// Submissions list.
pub const SUBMISSIONS_TITLE: &str = "Submissions you may see";
pub const SUBMISSIONS_INTRO: &str = "Everything listed here is shared with you by its publisher under its TLP label. Respect each label when you pass anything on.";
pub const SEARCH: &str = "Search";
pub const SEARCH_HINT: &str = "Words in the title, summary or notice text";
pub const KIND: &str = "Kind";
pub const STATE: &str = "State";
pub const STATE_HINT: &str = "ISO 3166-1 alpha-2 code, e.g. EE";
pub const LABEL: &str = "TLP label";
pub const COMMUNITY: &str = "Community";
pub const CBM_REF: &str = "CBM reference";
pub const CBM_REF_HINT: &str = "e.g. UN-CBM-3";
pub const UPDATED_FROM: &str = "Updated from";
pub const UPDATED_TO: &str = "Updated until";
pub const INCLUDE_WITHDRAWN: &str = "Include withdrawn";
pub const TITLE: &str = "Title";
pub const PUBLISHER: &str = "Publisher";
pub const UPDATED: &str = "Updated";
pub const REVISION: &str = "Revision";
pub const STATUS: &str = "Status";
pub const WITHDRAWN: &str = "Withdrawn";
pub const WITHDRAWN_NO_CONTENT: &str = "This submission was withdrawn, or is no longer shared with you. Nothing of its content is shown.";

// Submission page.
pub const ENVELOPE: &str = "Details";
pub const LANGUAGE: &str = "Language";
pub const SUMMARY: &str = "Summary";
pub const RECIPIENTS: &str = "Recipients";
pub const SHARED_WITH: &str = "Shared with";
pub const ALL_MEMBERS: &str = "all members of the hub";
pub const CBM_REFS: &str = "Measures served";
pub const TAGS: &str = "Tags";
pub const CREATED: &str = "First published";
pub const REVIEW_BY: &str = "Review by";
pub const OVERDUE: &str = "Review overdue";
pub const CONTENT_HASH: &str = "Content hash";
pub const SEQUENCE: &str = "Feed sequence";
pub const CONTENT: &str = "Content";
pub const ATTACHMENTS: &str = "Attachments";
pub const DOWNLOAD: &str = "Download";
pub const MEDIA_TYPE: &str = "Media type";
pub const SIZE_BYTES: &str = "Size (bytes)";
pub const SHA256: &str = "SHA-256";
pub const REVISIONS: &str = "Revisions";
pub const REVISION_SHOWN: &str = "shown";
pub const LATEST: &str = "latest";
pub const ACCESS_LOG: &str = "Who read or received this submission";
pub const WITHDRAWAL_REASON: &str = "Reason for withdrawal";
pub const TLP_MEANING_RED: &str =
    "For the eyes and ears of individual recipients only, no further disclosure.";
pub const TLP_MEANING_AMBER_STRICT: &str =
    "Limited disclosure, restricted to the recipient's organisation only.";
pub const TLP_MEANING_AMBER: &str = "Limited disclosure, recipients can share on a need-to-know basis within their organisation and its clients.";
pub const TLP_MEANING_GREEN: &str =
    "Limited disclosure, recipients can share within their community, not via public channels.";
pub const TLP_MEANING_CLEAR: &str =
    "Recipients can spread this to the world, there is no limit on disclosure.";

// Access log.
pub const ACCESS_TITLE: &str = "Access log";
pub const ACCESS_INTRO: &str =
    "Every read and delivery of your submission, from the hub's audit log.";
pub const MEMBER: &str = "Member";
pub const AT: &str = "When";
pub const VIA: &str = "How";
pub const AUDIT_SEQUENCE: &str = "Audit entry";
pub const BACK_TO_SUBMISSION: &str = "Back to the submission";

// Directory.
pub const CONTACTS_TITLE: &str = "Points of contact";
pub const CONTACTS_INTRO: &str = "Current points of contact you may see (UN CBM 1, OSCE CBM 8, OAS CBMs 2 and 3). A contact whose last verification (a ping it acknowledged, else the date its publisher states) is more than a year old is marked stale.";
pub const LEVEL: &str = "Level";
pub const ORGANISATION: &str = "Organisation";
pub const FUNCTION: &str = "Function";
pub const CHANNELS: &str = "Channels";
pub const LANGUAGES: &str = "Languages";
pub const AVAILABILITY: &str = "Availability";
pub const VERIFIED: &str = "Last verified";
pub const VERIFIED_BY: &str = "how";
pub const STALE: &str = "Stale";
pub const NEVER_VERIFIED: &str = "never";
pub const STATED: &str = "stated by the publisher";

// Matrix.
pub const MATRIX_TITLE: &str = "Implementation matrix";
pub const MATRIX_INTRO: &str = "Which state has shared what, for which measure, and how recently: the latest submission you may see per state and measure.";
pub const FRAMEWORK: &str = "Framework";
pub const COMPARE: &str = "Compare states";
pub const COMPARE_HINT: &str = "Choose up to three states to see side by side.";
pub const COMPARE_TOO_MANY: &str = "Choose at most three states to compare.";
pub const SHOW_ALL_STATES: &str = "All states";
pub const MEASURE: &str = "Measure";
pub const EXPORT_CSV: &str = "Export as CSV";
pub const AS_OF: &str = "Review dates compared with";
pub const NOTHING_SHARED: &str = "nothing shared";
pub const MORE_SUBMISSIONS: &str = "submissions";

// Campaigns.
pub const CAMPAIGNS_TITLE: &str = "Ping campaigns";
pub const CAMPAIGNS_INTRO: &str =
    "Tests of the points of contact: every contact must acknowledge the ping by the deadline.";
pub const STARTED: &str = "Started";
pub const STARTED_BY: &str = "Started by";
pub const DEADLINE: &str = "Deadline";
pub const CONTACTS: &str = "Contacts";
pub const ANSWERED: &str = "Answered";
pub const ON_TIME: &str = "On time";
pub const RESPONSE_RATE: &str = "Response rate";
pub const PER_STATE: &str = "Per state";
pub const PER_CONTACT: &str = "Per contact";
pub const REPLY: &str = "Reply";
pub const NOTICE: &str = "Ping notice";
pub const CAMPAIGN: &str = "Campaign";

// Members.
pub const MEMBERS_TITLE: &str = "Members and their certificates";
pub const NAME: &str = "Name";
pub const ROLES: &str = "Roles";
pub const COMMUNITIES: &str = "Communities";
pub const BINDINGS: &str = "Certificate bindings";
pub const ROLE: &str = "Role";

// Audit.
pub const AUDIT_TITLE: &str = "Audit log";
pub const AUDIT_VERIFIES: &str = "The audit log verifies";
pub const AUDIT_BROKEN: &str = "The audit log does NOT verify";
pub const AUDIT_ENTRIES: &str = "entries";
pub const AUDIT_CHECKPOINTS: &str = "signed checkpoints";
pub const AUDIT_COVERED: &str = "covered by the latest checkpoint, signed at";
pub const AUDIT_FIRST_BAD: &str = "First entry that fails";
pub const AUDIT_WHOLE: &str = "Every entry and checkpoint was read and verified at";
pub const AUDIT_SINCE_WHOLE: &str = "the entries written since are verified on each view (the whole log is read again every five minutes).";
pub const AUDIT_VERIFY_WHOLE: &str = "Verify the whole log now";
pub const ACTION: &str = "Action";
pub const OBJECT: &str = "Object";
pub const OUTCOME: &str = "Outcome";
pub const SINCE: &str = "From";
pub const UNTIL: &str = "Until";
pub const PEER: &str = "Peer";
pub const REASON: &str = "Reason";
pub const COUNT: &str = "Count";
pub const OBJECTS_RETURNED: &str = "submissions returned";
pub const ALLOWED: &str = "allowed";
pub const REFUSED: &str = "refused";

// Errors.
pub const ERROR_TITLE: &str = "This page cannot be shown";
pub const ERROR_FORBIDDEN: &str = "Your certificate does not give access to this page.";
pub const ERROR_NOT_FOUND: &str = "There is nothing here that you may see.";
pub const ERROR_BAD_REQUEST: &str = "The request was not valid:";
pub const ERROR_BUSY: &str = "Too many requests from your organisation; try again in a moment.";
pub const ERROR_INTERNAL: &str = "The hub could not answer. The failure has been logged.";
pub const ERROR_TIMEOUT: &str =
    "The hub took too long to answer; try again, or narrow the filters.";
pub const ERROR_METHOD: &str = "This portal is read-only: only GET requests are answered.";
pub const BACK_HOME: &str = "Back to the submissions";
pub const NO_CLIENT_CERTIFICATE: &str = "no client certificate";
pub const NOT_A_REVISION: &str = "revision: is not a revision number";
pub const NO_SUCH_ATTACHMENT: &str = "no such attachment";

/// The download of the implementation matrix as CSV (its file name is shown to the user).
pub const MATRIX_CSV_DISPOSITION: &str = "attachment; filename=\"implementation-matrix.csv\"";

/// A response rate (0 to 1) as a percentage, as this language writes it.
pub fn percent(rate: f64) -> String {
    format!("{:.0} %", rate * 100.0)
}

/// The name of a submission kind (see `domain::kind::Kind`); unknown kinds as they are.
pub fn kind_name(kind: &str) -> &str {
    match kind {
        "policy_document" => "Policy document",
        "terminology_list" => "Terminology list",
        "critical_infrastructure_approach" => "Critical-infrastructure approach",
        "point_of_contact" => "Point of contact",
        "incident_severity_schema" => "Incident severity schema",
        "notice" => "Notice",
        other => other,
    }
}

/// What a TLP label means (FIRST's TLP 2.0 definitions, shortened).
pub fn tlp_meaning(label: &str) -> &'static str {
    match label {
        "TLP:RED" => TLP_MEANING_RED,
        "TLP:AMBER+STRICT" => TLP_MEANING_AMBER_STRICT,
        "TLP:AMBER" => TLP_MEANING_AMBER,
        "TLP:GREEN" => TLP_MEANING_GREEN,
        "TLP:CLEAR" => TLP_MEANING_CLEAR,
        _ => "",
    }
}

/// A field name of a submission body as a heading: "issuing_authority" -> "Issuing authority".
pub fn field_name(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c == '_' {
            out.push(' ');
        } else if c.is_ascii_uppercase() {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else if i == 0 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_field_names_read_as_headings() {
        assert_eq!(field_name("issuing_authority"), "Issuing authority");
        assert_eq!(field_name("lastVerified"), "Last verified");
        assert_eq!(field_name("url"), "Url");
    }

    #[test]
    fn every_label_has_its_meaning_and_unknown_kinds_stay_as_they_are() {
        for t in crate::domain::tlp::Tlp::ALL {
            assert!(!tlp_meaning(t.as_str()).is_empty(), "{}", t.as_str());
        }
        for k in crate::domain::kind::Kind::ALL {
            assert_ne!(kind_name(k.as_str()), k.as_str());
        }
        assert_eq!(kind_name("memo"), "memo");
    }
}
