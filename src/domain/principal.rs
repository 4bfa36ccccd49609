//! The authenticated caller and the role checks made on it, as pure functions.
use std::{net::SocketAddr, sync::Arc};

use super::member::{Binding, Member, Role};

/// Who is calling: the member resolved from the verified client certificate of the connection.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The member as registered at the time of the request.
    pub member: Arc<Member>,
    /// Lowercase hex SHA-256 of the certificate presented.
    pub cert_sha256: String,
    /// The binding through which the certificate matched the member.
    pub bound_by: Binding,
    /// The TCP peer of the connection.
    pub peer: SocketAddr,
}

/// What a caller asks to do, as far as roles decide it (audiences decide the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Publish,
    Revise,
    Withdraw,
    Read,
    /// An acknowledgement report: of a notice, by its sender (a reader); of a ping campaign, by
    /// an admin too, also one that reads nothing (the report then shows only what it may read,
    /// as `GetPingCampaign` does).
    ReportAcknowledgements,
    WhoAmI,
    AdministerMembers,
    /// Other administration: the CBM catalogue, ping campaigns.
    Administer,
    /// Query, export or verify the audit log.
    Audit,
}

/// Why a request is refused before touching any data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Suspended,
    MissingRole(Role),
    MissingAnyRole(&'static [Role]),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Suspended => f.write_str("member is suspended"),
            Refusal::MissingRole(r) => write!(f, "this needs the {} role", r.as_str()),
            Refusal::MissingAnyRole(rs) => {
                let names: Vec<_> = rs.iter().map(|r| r.as_str()).collect();
                write!(f, "this needs one of the roles {}", names.join(", "))
            }
        }
    }
}

const READERS: &[Role] = &[Role::Publisher, Role::Subscriber];
const AUDITORS: &[Role] = &[Role::Auditor, Role::Admin];
const REPORTERS: &[Role] = &[Role::Publisher, Role::Subscriber, Role::Admin];

/// Role check for an action. A suspended member may do nothing at all, not even ask who it is,
/// so that suspension is visible at once.
pub fn authorize(member: &Member, action: Action) -> Result<(), Refusal> {
    if !member.is_active() {
        return Err(Refusal::Suspended);
    }
    let needs = |role: Role| {
        if member.roles.contains(role) {
            Ok(())
        } else {
            Err(Refusal::MissingRole(role))
        }
    };
    match action {
        Action::WhoAmI => Ok(()),
        Action::Publish | Action::Revise | Action::Withdraw => needs(Role::Publisher),
        Action::Read => {
            if member.roles.can_read_content() {
                Ok(())
            } else {
                Err(Refusal::MissingAnyRole(READERS))
            }
        }
        Action::ReportAcknowledgements => {
            if member.roles.can_read_content() || member.roles.contains(Role::Admin) {
                Ok(())
            } else {
                Err(Refusal::MissingAnyRole(REPORTERS))
            }
        }
        Action::AdministerMembers | Action::Administer => needs(Role::Admin),
        Action::Audit => {
            if member.roles.contains(Role::Auditor) || member.roles.contains(Role::Admin) {
                Ok(())
            } else {
                Err(Refusal::MissingAnyRole(AUDITORS))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::member::MemberStatus;

    fn member(roles: &[Role]) -> Member {
        Member {
            id: "M".into(),
            state: "EE".into(),
            display_name: String::new(),
            roles: roles.iter().copied().collect(),
            communities: Default::default(),
            status: MemberStatus::Active,
            bindings: vec![],
            created_at: String::new(),
            updated_at: String::new(),
            require_signed: false,
        }
    }

    #[test]
    fn acknowledgement_reports_are_for_readers_and_admins() {
        use Role::*;
        let table: &[(&[Role], bool)] = &[
            (&[Publisher], true),
            (&[Subscriber], true),
            (&[Admin], true),
            (&[Admin, Auditor], true),
            (&[Auditor], false),
            (&[], false),
        ];
        for (roles, allowed) in table {
            let got = authorize(&member(roles), Action::ReportAcknowledgements);
            assert_eq!(got.is_ok(), *allowed, "{roles:?}: {got:?}");
        }
        let refused = authorize(&member(&[Auditor]), Action::ReportAcknowledgements);
        assert_eq!(
            refused.unwrap_err().to_string(),
            "this needs one of the roles publisher, subscriber, admin"
        );
        // Reading content still needs a reading role.
        assert!(authorize(&member(&[Admin]), Action::Read).is_err());
        let mut suspended = member(&[Admin]);
        suspended.status = MemberStatus::Suspended;
        assert_eq!(
            authorize(&suspended, Action::ReportAcknowledgements),
            Err(Refusal::Suspended)
        );
    }
}
