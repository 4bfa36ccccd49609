//! Members of the hub, their roles, and how certificates are bound to them.
use std::{collections::HashMap, fmt, str::FromStr, sync::Arc};

/// A role a member holds. One member may hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Publisher,
    Subscriber,
    Auditor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Publisher,
        Role::Subscriber,
        Role::Auditor,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("{s:?} is not a role; use publisher, subscriber, auditor or admin")
            })
    }
}

/// The set of roles of a member, as a small bit set (cheap to copy into every principal).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles(u8);

impl Roles {
    pub fn insert(&mut self, role: Role) {
        self.0 |= role.bit();
    }

    pub fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Reading submission content is a right of publishers and subscribers only; admins and
    /// auditors see metadata.
    pub fn can_read_content(self) -> bool {
        self.contains(Role::Publisher) || self.contains(Role::Subscriber)
    }

    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

impl FromIterator<Role> for Roles {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Self {
        let mut roles = Roles::default();
        for r in iter {
            roles.insert(r);
        }
        roles
    }
}

/// Whether a member may act at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    Active,
    Suspended,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Active => "active",
            MemberStatus::Suspended => "suspended",
        }
    }
}

/// How a client certificate is tied to a member. Never the subject CN: names are not unique
/// across CAs and are easy to mint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Binding {
    /// Lowercase hex SHA-256 of the DER certificate.
    CertSha256(String),
    /// Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo.
    SpkiSha256(String),
    /// A URI subject alternative name such as `urn:cbm:member:EE-MFA`.
    UriSan(String),
}

impl Binding {
    pub fn kind(&self) -> &'static str {
        match self {
            Binding::CertSha256(_) => "cert_sha256",
            Binding::SpkiSha256(_) => "spki_sha256",
            Binding::UriSan(_) => "uri_san",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Binding::CertSha256(v) | Binding::SpkiSha256(v) | Binding::UriSan(v) => v,
        }
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.value())
    }
}

/// A certificate binding with its administrator's note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundCertificate {
    pub binding: Binding,
    pub note: String,
    /// For SPKI and URI SAN bindings: SPKI SHA-256 (lowercase hex) of the bundle CA the
    /// certificate's chain must end at, so that another CA of the bundle cannot mint the same
    /// member. None on bindings stored before issuers were recorded (see [`issuer_check`]).
    /// Certificate-hash bindings need none: the certificate's bytes, signature included, fix
    /// its issuer.
    pub issuer: Option<String>,
}

impl Binding {
    /// Whether another CA could issue a certificate matching this binding (so the binding
    /// must name its CA).
    pub fn needs_issuer(&self) -> bool {
        !matches!(self, Binding::CertSha256(_))
    }
}

/// Why a binding does not accept a certificate's issuing CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerMismatch {
    /// The binding names another CA.
    Other,
    /// The binding names no CA (stored before issuers were recorded) and the bundle holds
    /// several, so which one was meant cannot be told.
    NotRecorded,
}

/// Whether `bound` accepts a certificate whose verified chain ends at the bundle CA
/// `cert_ca`. `sole_ca` is the bundle's only CA, None when it holds several.
///
/// Bindings stored before issuers were recorded are accepted only while the bundle holds a
/// single CA and the chain ends at it: with one CA nothing else could have minted the
/// certificate; with several, "bind on first use" would let whichever CA is used first own
/// the member, so they are refused until an administrator binds them again with their CA.
pub fn issuer_check(
    bound: &BoundCertificate,
    cert_ca: &str,
    sole_ca: Option<&str>,
) -> Result<(), IssuerMismatch> {
    if !bound.binding.needs_issuer() {
        return Ok(());
    }
    match (&bound.issuer, sole_ca) {
        (Some(ca), _) if ca == cert_ca => Ok(()),
        (Some(_), _) => Err(IssuerMismatch::Other),
        (None, Some(sole)) if sole == cert_ca => Ok(()),
        (None, _) => Err(IssuerMismatch::NotRecorded),
    }
}

/// Fills in or checks the issuer of a binding being registered: `bundle` lists the SPKI
/// hashes of the bundle's CAs. A binding that needs an issuer and names none takes the
/// bundle's CA when there is only one; with several, the administrator must name it.
pub fn settle_issuer(bound: &mut BoundCertificate, bundle: &[&str]) -> Result<(), String> {
    match (&bound.issuer, bound.binding.needs_issuer()) {
        (Some(_), false) => Err(format!(
            "a {} binding names one certificate, whose signature already fixes its issuer: \
             leave the issuer empty",
            bound.binding.kind()
        )),
        (None, false) => Ok(()),
        (Some(ca), true) if bundle.contains(&ca.as_str()) => Ok(()),
        (Some(ca), true) => Err(format!(
            "{ca} is not the SPKI SHA-256 of a CA in the hub's client CA bundle"
        )),
        (None, true) => match bundle {
            [only] => {
                bound.issuer = Some(only.to_string());
                Ok(())
            }
            _ => Err(format!(
                "required for a {} binding: the hub's client CA bundle holds {} CAs, and any of \
                 them could issue a certificate with this {}; name the one that may",
                bound.binding.kind(),
                bundle.len(),
                if matches!(bound.binding, Binding::UriSan(_)) {
                    "URI"
                } else {
                    "key"
                }
            )),
        },
    }
}

/// A national body or organisation registered with the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Stable id such as `EE-MFA`.
    pub id: String,
    /// ISO 3166-1 alpha-2 state code, or an organisation code.
    pub state: String,
    pub display_name: String,
    pub roles: Roles,
    /// Named groups used as GREEN audiences, sorted and unique.
    pub communities: Vec<String>,
    pub status: MemberStatus,
    pub bindings: Vec<BoundCertificate>,
    /// Whether its publications, revisions and withdrawals must carry an author signature
    /// (set by an admin; see `crate::provenance`).
    pub require_signed: bool,
    /// RFC 3339 instants.
    pub created_at: String,
    pub updated_at: String,
}

impl Member {
    pub fn is_active(&self) -> bool {
        self.status == MemberStatus::Active
    }

    pub fn in_community(&self, community: &str) -> bool {
        self.communities.iter().any(|c| c == community)
    }
}

/// What a verified client certificate offers for binding, computed once per connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateFacts {
    pub cert_sha256: String,
    pub spki_sha256: String,
    pub uri_sans: Vec<String>,
    /// SPKI SHA-256 of the bundle CA the certificate's verified chain ends at.
    pub ca_spki_sha256: String,
}

/// Why a certificate does not resolve to a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// No binding matches the certificate.
    Unbound,
    /// Bindings of two different members match: refuse rather than guess.
    Ambiguous(String, String),
    /// A binding of `member` matches, but not the CA the certificate was issued under.
    Issuer {
        member: String,
        binding: Binding,
        why: IssuerMismatch,
    },
}

/// The in-memory member registry: an immutable snapshot, replaced whole on every change so that
/// request handling never takes a lock or touches the disk to authenticate.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    members: HashMap<String, Arc<Member>>,
    by_binding: HashMap<Binding, String>,
}

impl Registry {
    pub fn new(members: impl IntoIterator<Item = Member>) -> Self {
        let mut reg = Registry::default();
        for m in members {
            reg.insert(m);
        }
        reg
    }

    /// Adds or replaces a member and re-indexes its bindings.
    pub fn insert(&mut self, member: Member) {
        if let Some(old) = self.members.get(&member.id) {
            for b in &old.bindings {
                self.by_binding.remove(&b.binding);
            }
        }
        for b in &member.bindings {
            self.by_binding.insert(b.binding.clone(), member.id.clone());
        }
        self.members.insert(member.id.clone(), Arc::new(member));
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Member>> {
        self.members.get(id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.members.contains_key(id)
    }

    /// Whether any member belongs to `community`.
    pub fn has_community(&self, community: &str) -> bool {
        self.members.values().any(|m| m.in_community(community))
    }

    /// The member a binding belongs to, if any.
    pub fn owner_of(&self, binding: &Binding) -> Option<&str> {
        self.by_binding.get(binding).map(String::as_str)
    }

    /// All members, sorted by id.
    pub fn members(&self) -> Vec<Arc<Member>> {
        let mut all: Vec<_> = self.members.values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Resolves a verified certificate to its member and the binding that matched. A binding
    /// counts only if it accepts the CA the certificate chains to ([`issuer_check`]);
    /// `sole_ca` is the client CA bundle's only CA, None when it holds several.
    pub fn resolve(
        &self,
        cert: &CertificateFacts,
        sole_ca: Option<&str>,
    ) -> Result<(Arc<Member>, Binding), Unresolved> {
        let candidates = std::iter::once(Binding::CertSha256(cert.cert_sha256.clone()))
            .chain(std::iter::once(Binding::SpkiSha256(
                cert.spki_sha256.clone(),
            )))
            .chain(cert.uri_sans.iter().cloned().map(Binding::UriSan));
        let mut found: Option<(&String, Binding)> = None;
        let mut wrong_issuer = None;
        for b in candidates {
            let Some(id) = self.by_binding.get(&b) else {
                continue;
            };
            let bound = self.members[id].bindings.iter().find(|x| x.binding == b);
            if let Some(Err(why)) =
                bound.map(|bound| issuer_check(bound, &cert.ca_spki_sha256, sole_ca))
            {
                wrong_issuer.get_or_insert(Unresolved::Issuer {
                    member: id.clone(),
                    binding: b,
                    why,
                });
                continue;
            }
            match &found {
                Some((other, _)) if *other != id => {
                    return Err(Unresolved::Ambiguous((*other).clone(), id.clone()));
                }
                Some(_) => {}
                None => found = Some((id, b)),
            }
        }
        let (id, binding) = found.ok_or(wrong_issuer.unwrap_or(Unresolved::Unbound))?;
        Ok((self.members[id].clone(), binding))
    }

    /// Bindings that name no issuing CA although they need one, as "MEMBER binding".
    pub fn bindings_without_issuer(&self) -> Vec<String> {
        self.members()
            .iter()
            .flat_map(|m| {
                m.bindings
                    .iter()
                    .filter(|b| b.binding.needs_issuer() && b.issuer.is_none())
                    .map(|b| format!("{} {}", m.id, b.binding))
            })
            .collect()
    }
}

/// Checks a member id: 2..=64 of `A-Z`, `0-9`, `-`, starting with a letter.
pub fn check_member_id(id: &str) -> Result<(), String> {
    let ok = (2..=64).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_uppercase())
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{id:?} is not a member id: 2 to 64 uppercase letters, digits or '-', starting with a letter"
        ))
    }
}

/// Checks a community or state/organisation code: 2..=32 of `A-Z`, `0-9`, `-`.
pub fn check_code(code: &str, what: &str) -> Result<(), String> {
    let ok = (2..=32).contains(&code.len())
        && code.starts_with(|c: char| c.is_ascii_uppercase())
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{code:?} is not a {what}: 2 to 32 uppercase letters, digits or '-', starting with a letter"
        ))
    }
}

/// Checks a binding value: hex digests must be 64 lowercase hex digits; URIs need a scheme.
pub fn check_binding(b: &Binding) -> Result<(), String> {
    match b {
        Binding::CertSha256(v) | Binding::SpkiSha256(v) => {
            if v.len() == 64
                && v.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            {
                Ok(())
            } else {
                Err("must be 64 lowercase hex digits (a SHA-256 digest)".into())
            }
        }
        Binding::UriSan(v) => {
            let scheme_ok = v
                .split_once(':')
                .is_some_and(|(s, rest)| !s.is_empty() && !rest.is_empty());
            if scheme_ok && v.len() <= 512 && !v.chars().any(char::is_whitespace) {
                Ok(())
            } else {
                Err("must be an absolute URI such as urn:cbm:member:EE-MFA".into())
            }
        }
    }
}

#[cfg(test)]
#[path = "member_tests.rs"]
mod tests;
