//! A development PKI: a CA and the certificates it issues, generated with rcgen (ECDSA P-256).
//! Used by `cbm-hub init` and first-run `serve`, and by the tests to mint fresh certificates
//! (valid, expired, without clientAuth, revoked, from an unknown CA).
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// A certificate and its private key, PEM encoded.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    /// DER of the certificate, for fingerprints.
    pub cert_der: Vec<u8>,
    /// Serial number, for revocation.
    pub serial: Vec<u8>,
}

/// What a leaf certificate should say.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    pub common_name: String,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub uri_sans: Vec<String>,
    /// Include the serverAuth extended key usage.
    pub server_auth: bool,
    /// Include the clientAuth extended key usage.
    pub client_auth: bool,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl LeafSpec {
    /// A client certificate for a member, valid from an hour ago for `days`.
    pub fn client(common_name: &str, days: i64) -> LeafSpec {
        let now = OffsetDateTime::now_utc();
        LeafSpec {
            common_name: common_name.to_string(),
            dns_names: vec![],
            ip_addresses: vec![],
            uri_sans: vec![],
            server_auth: false,
            client_auth: true,
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(days),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1/::1 plus `extra_names`.
    pub fn server(extra_names: &[String], days: i64) -> LeafSpec {
        let mut spec = LeafSpec::client("cbm-hub", days);
        spec.client_auth = false;
        spec.server_auth = true;
        spec.dns_names = std::iter::once("localhost".to_string())
            .chain(extra_names.iter().cloned())
            .collect();
        spec.ip_addresses = vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
        ];
        spec
    }
}

/// A certificate authority able to issue certificates and CRLs.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    pub cert_pem: String,
    pub key_pem: String,
}

fn err(e: rcgen::Error) -> String {
    format!("certificate generation failed: {e}")
}

fn random_serial() -> SerialNumber {
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    // Positive, non-zero DER integer.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

impl DevCa {
    /// A new self-signed CA valid for ten years.
    pub fn generate(name: &str) -> Result<DevCa, String> {
        let key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "cbm-hub development PKI");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(3650);
        params.serial_number = Some(random_serial());
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params.self_signed(&key).map_err(err)?;
        let key_pem = key.serialize_pem();
        Ok(DevCa {
            cert_pem: cert.pem(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA from its PEM certificate and key (to issue more certificates later).
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<DevCa, String> {
        let key = KeyPair::from_pem(key_pem).map_err(err)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).map_err(err)?;
        Ok(DevCa {
            issuer,
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
        })
    }

    /// Issues a leaf certificate with a fresh key.
    pub fn issue(&self, spec: &LeafSpec) -> Result<Issued, String> {
        self.issue_for(spec, KeyPair::generate().map_err(err)?)
    }

    /// Issues a leaf certificate for an existing key (PEM): the same key certified by another
    /// CA, or re-issued.
    pub fn issue_with_key(&self, spec: &LeafSpec, key_pem: &str) -> Result<Issued, String> {
        self.issue_for(spec, KeyPair::from_pem(key_pem).map_err(err)?)
    }

    fn issue_for(&self, spec: &LeafSpec, key: KeyPair) -> Result<Issued, String> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, spec.common_name.as_str());
        params.distinguished_name = dn;
        let mut sans = Vec::new();
        for d in &spec.dns_names {
            sans.push(SanType::DnsName(d.clone().try_into().map_err(err)?));
        }
        sans.extend(spec.ip_addresses.iter().map(|ip| SanType::IpAddress(*ip)));
        for u in &spec.uri_sans {
            sans.push(SanType::URI(u.clone().try_into().map_err(err)?));
        }
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if spec.server_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if spec.client_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        if !spec.server_auth && !spec.client_auth {
            // An explicit EKU without clientAuth, so verifiers must refuse it for clients.
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::CodeSigning);
        }
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        let serial = random_serial();
        params.serial_number = Some(serial.clone());
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).map_err(err)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            serial: serial.to_bytes(),
        })
    }

    /// A CRL revoking the given serial numbers, valid for `days`.
    pub fn crl(
        &self,
        revoked_serials: &[Vec<u8>],
        crl_number: u64,
        days: i64,
    ) -> Result<String, String> {
        let now = OffsetDateTime::now_utc();
        self.crl_between(
            revoked_serials,
            crl_number,
            now - Duration::minutes(5),
            now + Duration::days(days),
        )
    }

    /// A CRL revoking the given serial numbers, issued at `this_update` and current until
    /// `next_update` (a past `next_update` makes an expired CRL).
    pub fn crl_between(
        &self,
        revoked_serials: &[Vec<u8>],
        crl_number: u64,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<String, String> {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(crl_number),
            issuing_distribution_point: None,
            revoked_certs: revoked_serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(s),
                    revocation_time: (now - Duration::minutes(1)).min(this_update),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.issuer)
            .map(|c| c.pem().map_err(err))
            .map_err(err)?
    }
}
