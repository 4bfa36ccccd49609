//! Why a client could not talk to the hub, told in words. gRPC reports a refused TLS
//! connection as "transport error" (with TLS 1.3 the client learns of its refusal only when the
//! connection drops under its first request), which names no cause. After such a failure the
//! CLI checks its own files, then makes one probing handshake of its own that records what
//! gRPC throws away: the hub's certificate and why it was not trusted, the CAs whose client
//! certificates the hub accepts (the CertificateRequest's hints), and the TLS alert the hub
//! sent when it refused ours. Each finding becomes a "likely cause" naming what to fix.
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme,
    client::{
        ResolvesClientCert, WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    pki_types::{CertificateDer, ServerName, UnixTime},
    sign::CertifiedKey,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use x509_parser::prelude::{FromDer, X509Name};

use super::home::Profile;
use crate::tls::check::{Leaf, day, key_matches};

/// Whether `e` is the kind of failure a diagnosis can explain: no connection, or a connection
/// dropped without an answer from the hub (a refusal by the hub carries its own message).
pub fn is_connection_failure(e: &anyhow::Error) -> bool {
    if e.chain()
        .any(|c| c.downcast_ref::<tonic::transport::Error>().is_some())
    {
        return true;
    }
    let Some(status) = e.downcast_ref::<tonic::Status>() else {
        return false;
    };
    let message = status.message().to_lowercase();
    matches!(
        status.code(),
        tonic::Code::Unknown | tonic::Code::Unavailable | tonic::Code::Cancelled
    ) && (message.contains("transport error")
        || message.contains("connection")
        || message.contains("broken pipe")
        || message.contains("tls")
        || status.metadata().is_empty() && status.code() == tonic::Code::Cancelled)
}

/// The likely causes of a failed connection with `p`; empty when TLS works (the failure was
/// something else).
pub async fn likely_causes(p: &Profile) -> Vec<String> {
    crate::tls::install_crypto_provider();
    let local = local_problems(p);
    if !local.is_empty() {
        return local;
    }
    match tokio::time::timeout(Duration::from_secs(15), probe(p)).await {
        Ok(causes) => causes,
        Err(_) => vec![format!(
            "the hub at {} did not complete a TLS handshake within 15 s",
            p.endpoint
        )],
    }
}

/// What is wrong with the client's own certificate and key, without asking the hub.
fn local_problems(p: &Profile) -> Vec<String> {
    let Ok(chain) = crate::tls::load_certs(&p.cert) else {
        return Vec::new();
    };
    let Ok(leaf) = Leaf::parse(chain[0].as_ref()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let yours = format!("your certificate {} ({})", p.cert.display(), leaf.subject);
    if let Some(why) = leaf.validity_problem(time::OffsetDateTime::now_utc()) {
        out.push(format!(
            "{yours} {why}: ask your PKI for a new one, and the hub's administrator to bind it \
             (`cbm-hub member bind`) unless it keeps your key"
        ));
    }
    if leaf.client_auth == Some(false) {
        out.push(format!(
            "{yours} does not allow client authentication (its extended key usage lacks \
             clientAuth): the hub refuses it; ask your PKI for a client certificate"
        ));
    }
    if let Ok(key) = crate::tls::load_key(&p.key)
        && let Ok(Some(false)) = key_matches(&key, &leaf.spki)
    {
        out.push(format!(
            "your key {} is not the private key of {yours}: give the key the certificate was \
             issued for",
            p.key.display()
        ));
    }
    out
}

/// What the probing handshake saw.
#[derive(Debug, Default)]
struct Seen {
    /// The hub's certificate and, if it was not trusted, why.
    server: Option<(Vec<u8>, Option<rustls::Error>)>,
    /// DER names of the CAs the hub accepts client certificates from.
    hints: Option<Vec<Vec<u8>>>,
}

/// Checks the hub's certificate with rustls' own verifier, noting the certificate and result.
#[derive(Debug)]
struct NotingServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Arc<Mutex<Seen>>,
}

impl ServerCertVerifier for NotingServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.server = Some((end_entity.to_vec(), result.as_ref().err().cloned()));
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Presents the client's certificate, noting the CA names the hub asked for.
#[derive(Debug)]
struct NotingResolver {
    key: Arc<CertifiedKey>,
    seen: Arc<Mutex<Seen>>,
}

impl ResolvesClientCert for NotingResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).hints =
            Some(root_hint_subjects.iter().map(|h| h.to_vec()).collect());
        Some(self.key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A DER name (as in hints: the inner SEQUENCE of RDNs, or a whole Name) as text.
fn name_text(der: &[u8]) -> String {
    let parsed = X509Name::from_der(der).map(|(_, n)| n.to_string());
    let wrapped = || {
        // Hints may come without the outer SEQUENCE header: add it.
        let mut full = vec![0x30];
        let len = der.len();
        if len < 0x80 {
            full.push(len as u8);
        } else if len <= 0xff {
            full.extend([0x81, len as u8]);
        } else {
            full.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        full.extend_from_slice(der);
        X509Name::from_der(&full).map(|(_, n)| n.to_string())
    };
    parsed
        .or_else(|_| wrapped())
        .unwrap_or_else(|_| hex::encode(der))
}

async fn probe(p: &Profile) -> Vec<String> {
    let (Ok(ca_pem), Ok(chain), Ok(key)) = (
        crate::tls::load_certs(&p.ca),
        crate::tls::load_certs(&p.cert),
        crate::tls::load_key(&p.key),
    ) else {
        return Vec::new();
    };
    let Some((host, port)) = host_port(&p.endpoint) else {
        return vec![format!(
            "{:?} is not an endpoint such as https://host:50051",
            p.endpoint
        )];
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in ca_pem {
        let _ = roots.add(ca);
    }
    let Ok(inner) = WebPkiServerVerifier::builder(Arc::new(roots)).build() else {
        return vec![format!(
            "{}: holds no CA certificate the client can use",
            p.ca.display()
        )];
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let Ok(certified) = CertifiedKey::from_der(chain.clone(), key, &provider) else {
        return Vec::new();
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut config = ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NotingServerVerifier {
            inner,
            seen: seen.clone(),
        }))
        .with_client_cert_resolver(Arc::new(NotingResolver {
            key: Arc::new(certified),
            seen: seen.clone(),
        }));
    config.alpn_protocols = vec![b"h2".to_vec()];
    let Ok(name) = ServerName::try_from(p.server_name.clone()) else {
        return vec![format!("{:?} is not a server name", p.server_name)];
    };
    let tcp = match tokio::net::TcpStream::connect((host.as_str(), port)).await {
        Ok(t) => t,
        Err(e) => {
            return vec![format!(
                "nothing answers at {} ({e}): is the hub running, and is this its address and \
                 port?",
                p.endpoint
            )];
        }
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let outcome = match connector.connect(name, tcp).await {
        Ok(mut tls) => {
            // TLS 1.3: the hub judges our certificate after the client's handshake is done.
            // Speak first (the HTTP/2 preface and an empty SETTINGS frame); an accepted
            // connection answers with its SETTINGS, a refused one with an alert.
            const PREFACE: &[u8] =
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
            let mut buf = [0u8; 64];
            match tls.write_all(PREFACE).await {
                Ok(()) => tls.read(&mut buf).await,
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|p| p.into_inner()));
    match outcome {
        Ok(n) if n > 0 => Vec::new(),
        Ok(_) => vec![
            "the hub closed the connection without a word after the TLS handshake: its log \
             and audit log (action tls.handshake) name the reason"
                .into(),
        ],
        Err(e) => explain(p, &chain, &seen, &e),
    }
}

/// `https://host:port` (or `host:port`) to host and port.
fn host_port(endpoint: &str) -> Option<(String, u16)> {
    let uri: http::Uri = if endpoint.contains("://") {
        endpoint.parse().ok()?
    } else {
        format!("https://{endpoint}").parse().ok()?
    };
    let host = uri.host()?.trim_matches(['[', ']']).to_string();
    Some((host, uri.port_u16().unwrap_or(443)))
}

fn explain(
    p: &Profile,
    chain: &[CertificateDer<'static>],
    seen: &Seen,
    e: &std::io::Error,
) -> Vec<String> {
    // The hub's certificate, not trusted by us.
    if let Some((der, Some(err))) = &seen.server {
        let hub = Leaf::parse(der).ok();
        let subject = hub.as_ref().map_or("?".into(), |l| l.subject.clone());
        let issuer = hub.as_ref().map_or("?".into(), |l| l.issuer.clone());
        let cause = match err {
            rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer | CertificateError::BadSignature,
            ) => format!(
                "the hub's certificate ({subject}) is issued by CA {issuer}, which is not in \
                 your CA file {}: get the CA certificate of the hub's certificate from its \
                 operator (the profile's `ca`, or --ca)",
                p.ca.display()
            ),
            rustls::Error::InvalidCertificate(
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. },
            ) => format!(
                "the hub's certificate ({subject}) is valid from {} to {}, not now: the hub's \
                 operator must install a renewed certificate (tls.cert), or a clock is wrong",
                hub.as_ref().map_or("?".into(), |l| day(l.not_before)),
                hub.as_ref().map_or("?".into(), |l| day(l.not_after)),
            ),
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => format!(
                "the hub's certificate is for {}, not {:?}: connect with one of these names \
                 (the profile's `server_name`, or --server-name)",
                hub.as_ref().map_or("?".into(), |l| l.names.join(", ")),
                p.server_name
            ),
            other => format!("the hub's certificate ({subject}) is not trusted: {other}"),
        };
        return vec![cause];
    }
    // The hub refused our certificate: the alert it sent says how.
    let alert = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|r| match r {
            rustls::Error::AlertReceived(a) => Some(*a),
            _ => None,
        });
    let yours = Leaf::parse(chain[0].as_ref()).ok();
    let subject = yours.as_ref().map_or("?".into(), |l| l.subject.clone());
    let cause = match alert {
        Some(AlertDescription::UnknownCA) => {
            let hints = seen.hints.clone().unwrap_or_default();
            // The CA our chain needs: the issuer of its last certificate.
            let top = chain
                .last()
                .and_then(|c| Leaf::parse(c.as_ref()).ok())
                .map(|l| (l.issuer, l.issuer_der));
            let trusted: Vec<String> = hints.iter().map(|h| name_text(h)).collect();
            let known = top.as_ref().is_some_and(|(text, der)| {
                hints.iter().any(|h| der.ends_with(h)) || trusted.contains(text)
            });
            match top {
                Some((issuer, _)) if !known && !hints.is_empty() => format!(
                    "the hub does not trust the CA that issued your certificate ({issuer}); it \
                     accepts client certificates from {}. Use a certificate of one of these \
                     CAs (with any intermediate CAs after it in your certificate file), or ask \
                     the hub's operator to add your CA to tls.client_ca",
                    trusted.join("; ")
                ),
                _ => format!(
                    "the hub trusts your certificate's CA but could not establish that your \
                     certificate ({subject}) is not revoked: it requires CRLs (tls.crls) and has \
                     none, or only an expired one, for a CA of your chain. Ask the hub's \
                     operator to install that CA's current CRL"
                ),
            }
        }
        // A bad signature on a chain ending at a known name: another CA of the same name.
        Some(AlertDescription::DecryptError) => format!(
            "the hub trusts a CA named like the issuer of your certificate ({}) but not the \
             one that signed it (another key of the same name): use a certificate of the CA \
             the hub trusts, or ask the hub's operator to add yours to tls.client_ca",
            yours.as_ref().map_or("?".into(), |l| l.issuer.clone())
        ),
        Some(AlertDescription::CertificateRevoked) => format!(
            "the hub refuses your certificate ({subject}) as revoked: its CA's CRL lists it. \
             Get a new certificate, and have the hub's administrator bind it to your member"
        ),
        Some(AlertDescription::CertificateExpired) => format!(
            "the hub finds your certificate ({subject}) expired or not yet valid by its clock"
        ),
        Some(AlertDescription::UnsupportedCertificate) => format!(
            "the hub refuses your certificate ({subject}) for its usage: it must allow client \
             authentication (clientAuth)"
        ),
        Some(other) => format!(
            "the hub refused your certificate ({subject}) with the TLS alert {other:?}: its log \
             and audit log (action tls.handshake) name the reason"
        ),
        None => format!("the TLS connection to {} failed: {e}", p.endpoint),
    };
    vec![cause]
}

/// Runs `work` (a client command); when it fails to reach the hub, adds the likely causes.
pub async fn explained(
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let Err(e) = work.await else {
        return Ok(());
    };
    let Some(profile) = super::client::last_settings() else {
        return Err(e);
    };
    if !is_connection_failure(&e) {
        return Err(e);
    }
    let causes = likely_causes(&profile).await;
    if causes.is_empty() {
        return Err(e);
    }
    Err(anyhow::anyhow!(
        "{}\n  likely cause: {}",
        super::describe_error(&e),
        causes.join("\n  likely cause: ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_names() {
        assert_eq!(
            host_port("https://localhost:50051"),
            Some(("localhost".into(), 50051))
        );
        assert_eq!(host_port("[::1]:7"), Some(("::1".into(), 7)));
        let ca = crate::tls::devpki::DevCa::generate("Hint CA").unwrap();
        let cert: CertificateDer<'static> =
            rustls_pki_types::pem::PemObject::from_pem_slice(ca.cert_pem.as_bytes()).unwrap();
        let (_, parsed) =
            x509_parser::certificate::X509Certificate::from_der(cert.as_ref()).unwrap();
        let raw = parsed.subject().as_raw();
        assert!(name_text(raw).starts_with("CN=Hint CA"));
        // The hint form: without the outer SEQUENCE header.
        assert!(name_text(&raw[2..]).starts_with("CN=Hint CA"));
    }
}
