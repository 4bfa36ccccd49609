//! Mistakes in TLS material that the handshake reports badly or not at all, found before a
//! client meets them and named by what to fix: a server certificate that expired (rustls
//! serves it; every client refuses it), a key that is not the certificate's, a certificate
//! without the usage its side needs, a client certificate whose CA is not in the bundle. Used
//! by `serve` at start, `config check`, `init --ca ...` and the client's diagnosis of a failed
//! connection (`cli::diagnose`).
use std::path::Path;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::{
    extensions::GeneralName,
    prelude::{FromDer, X509Certificate},
};

use super::{bundle::Bundle, load_certs, load_key};

/// Warn this long before the server certificate expires.
const EXPIRY_WARNING: time::Duration = time::Duration::days(30);

/// What a certificate says, as far as these checks need it.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub subject: String,
    pub issuer: String,
    /// The issuer as DER (what CA subjects are compared with).
    pub issuer_der: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Whether an extended key usage extension allows server or client authentication; `None`
    /// when the certificate has none (then any usage is allowed).
    pub server_auth: Option<bool>,
    pub client_auth: Option<bool>,
    /// DNS names and IP addresses of the subject alternative names.
    pub names: Vec<String>,
    /// The DER SubjectPublicKeyInfo, and its SHA-256 (lowercase hex).
    pub spki: Vec<u8>,
    pub spki_sha256: String,
}

impl Leaf {
    pub fn parse(der: &[u8]) -> Result<Leaf, String> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("not X.509: {e}"))?;
        let validity = cert.validity();
        let (server_auth, client_auth) = match cert.extended_key_usage() {
            Ok(Some(eku)) => (
                Some(eku.value.server_auth || eku.value.any),
                Some(eku.value.client_auth || eku.value.any),
            ),
            _ => (None, None),
        };
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => names.push(d.to_string()),
                    GeneralName::IPAddress(ip) => names.push(match ip.len() {
                        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*ip).unwrap_or([0; 4]))
                            .to_string(),
                        16 => {
                            std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*ip).unwrap_or([0; 16]))
                                .to_string()
                        }
                        _ => continue,
                    }),
                    _ => {}
                }
            }
        }
        let spki = cert.public_key().raw.to_vec();
        Ok(Leaf {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            issuer_der: cert.issuer().as_raw().to_vec(),
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
            server_auth,
            client_auth,
            names,
            spki_sha256: hex::encode(Sha256::digest(&spki)),
            spki,
        })
    }

    /// "expired on ...", "not valid before ...", or None when valid at `now`.
    pub fn validity_problem(&self, now: OffsetDateTime) -> Option<String> {
        if now > self.not_after {
            Some(format!("expired on {}", day(self.not_after)))
        } else if now < self.not_before {
            Some(format!("is not valid before {}", day(self.not_before)))
        } else {
            None
        }
    }
}

/// An instant as a reader wants it in a message.
pub fn day(t: OffsetDateTime) -> String {
    crate::domain::clock::format_instant(t)
}

/// Whether `key` is the private key of the public key `spki` (DER SubjectPublicKeyInfo).
/// None when the key's type cannot say (then the handshake is the judge).
pub fn key_matches(key: &PrivateKeyDer<'_>, spki: &[u8]) -> Result<Option<bool>, String> {
    let signing = rustls::crypto::ring::sign::any_supported_type(key)
        .map_err(|e| format!("not a usable private key: {e}"))?;
    Ok(signing.public_key().map(|k| k.as_ref() == spki))
}

/// Problems (errors, warnings) of the hub's own certificate chain and key at `now`, named by
/// config key: what clients would refuse, or what would not start.
pub fn server_identity(cert: &Path, key: &Path, now: OffsetDateTime) -> (Vec<String>, Vec<String>) {
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    let chain = match load_certs(cert) {
        Ok(c) => c,
        Err(e) => return (vec![format!("tls.cert: {e}")], warnings),
    };
    let leaf = match Leaf::parse(chain[0].as_ref()) {
        Ok(l) => l,
        Err(e) => return (vec![format!("tls.cert: {}: {e}", cert.display())], warnings),
    };
    let named = format!(
        "{}: the server certificate ({})",
        cert.display(),
        leaf.subject
    );
    if let Some(why) = leaf.validity_problem(now) {
        errors.push(format!(
            "tls.cert: {named} {why}: every client refuses it; install a renewed certificate"
        ));
    } else if leaf.not_after - now < EXPIRY_WARNING {
        warnings.push(format!(
            "tls.cert: {named} expires on {}: renew it before then (the hub reloads it \
             without a restart)",
            day(leaf.not_after)
        ));
    }
    if leaf.server_auth == Some(false) {
        errors.push(format!(
            "tls.cert: {named} does not allow server authentication (its extended key usage \
             lacks serverAuth): clients refuse it"
        ));
    }
    match load_key(key) {
        Err(e) => errors.push(format!("tls.key: {e}")),
        Ok(k) => match key_matches(&k, &leaf.spki) {
            Err(e) => errors.push(format!("tls.key: {}: {e}", key.display())),
            Ok(Some(false)) => errors.push(format!(
                "tls.key: {}: not the private key of {named}: give the key the certificate \
                 was issued for (or the certificate of this key)",
                key.display()
            )),
            Ok(_) => {}
        },
    }
    (errors, warnings)
}

/// Why a chain (end entity first) whose issuer is not in `bundle` is refused: the CA it names,
/// and the CAs the hub trusts. `same_name`: a CA of the bundle has the issuer's name but did
/// not sign the chain (another CA of the same name, another key, did).
pub fn unknown_issuer(chain: &[CertificateDer<'_>], bundle: &Bundle, same_name: bool) -> String {
    // The top of the chain the client sent names the CA the path needed.
    let top = chain
        .iter()
        .rev()
        .find_map(|c| Leaf::parse(c.as_ref()).ok());
    match top {
        Some(top) => format!(
            "issued by CA {}, which is not in tls.client_ca{} (it holds: {}); add that CA (or \
             the root above it) to the bundle, or give the client a certificate from one of \
             these CAs{}",
            top.issuer,
            if same_name {
                " (a CA of that name is, but with another key: not the one that signed it)"
            } else {
                ""
            },
            bundle.describe(),
            if chain.len() == 1 {
                ", with its intermediate CAs after it in its certificate file"
            } else {
                ""
            }
        ),
        None => "unknown issuer: not issued by a CA of tls.client_ca".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::devpki::{DevCa, LeafSpec};

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn server_identity_names_expiry_usage_and_a_foreign_key() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::generate("test CA").unwrap();
        let now = OffsetDateTime::now_utc();
        let good = ca.issue(&LeafSpec::server(&[], 365)).unwrap();
        let cert = write(dir.path(), "s.pem", &good.cert_pem);
        let key = write(dir.path(), "s-key.pem", &good.key_pem);
        assert_eq!(server_identity(&cert, &key, now), (vec![], vec![]));

        let (e, w) = server_identity(&cert, &key, now + time::Duration::days(340));
        assert!(
            e.is_empty() && w.len() == 1 && w[0].contains("expires on"),
            "{w:?}"
        );
        let (e, _) = server_identity(&cert, &key, now + time::Duration::days(400));
        assert!(e.len() == 1 && e[0].starts_with("tls.cert: ") && e[0].contains("expired on"));

        let other = ca.issue(&LeafSpec::server(&[], 365)).unwrap();
        let foreign = write(dir.path(), "o-key.pem", &other.key_pem);
        let (e, _) = server_identity(&cert, &foreign, now);
        assert!(
            e.len() == 1 && e[0].starts_with("tls.key: ") && e[0].contains("not the private key"),
            "{e:?}"
        );

        let client = ca.issue(&LeafSpec::client("EE-MFA", 30)).unwrap();
        let cert = write(dir.path(), "c.pem", &client.cert_pem);
        let key = write(dir.path(), "c-key.pem", &client.key_pem);
        let (e, _) = server_identity(&cert, &key, now);
        assert!(e.len() == 1 && e[0].contains("lacks serverAuth"), "{e:?}");
    }

    #[test]
    fn an_unknown_issuer_names_the_ca_and_the_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let trusted = DevCa::generate("Trusted CA").unwrap();
        let other = DevCa::generate("Other CA").unwrap();
        let bundle = Bundle::load(&write(dir.path(), "ca.pem", &trusted.cert_pem)).unwrap();
        let cert = other.issue(&LeafSpec::client("X", 30)).unwrap();
        let why = unknown_issuer(&[CertificateDer::from(cert.cert_der)], &bundle, false);
        assert!(
            why.starts_with("issued by CA CN=Other CA") && why.contains("CN=Trusted CA"),
            "{why}"
        );
    }
}
