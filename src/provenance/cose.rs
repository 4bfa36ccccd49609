//! Author signatures as COSE_Sign1 (RFC 9052) with a detached payload and the signer's
//! certificate chain in the `x5chain` header (RFC 9360): parsing, checking the signature value
//! against the signing certificate's key, and (for the CLI) making one.
//!
//! Algorithms: ES256 and ES384 (ECDSA P-256 / P-384, the curves national PKIs issue most),
//! EdDSA (Ed25519) and PS256 (RSA-PSS, for RSA-only PKIs), all checked with `ring`.
use coset::{
    CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, Label, TaggedCborSerializable,
    cbor::Value, iana,
};
use ring::{rand::SystemRandom, signature};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::ProvenanceError;

/// Largest accepted signature container: a chain of a few certificates fits many times over.
/// Every exit's byte budget reserves room for one.
pub const MAX_SIGNATURE_BYTES: usize = crate::domain::budget::SIGNATURE_BYTES;

/// COSE header label of `x5chain` (RFC 9360).
const X5CHAIN: i64 = 33;

/// COSE header label (private use: below -65536, RFC 9052 section 11 and the IANA registry)
/// of cbm-hub's change claim, a text string in the protected header: "publish 1", or "revise
/// ID N" (see [`super::statement::change_claim`]).
pub const CHANGE_LABEL: i64 = -65537;

/// A signature algorithm the hub checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Es256,
    Es384,
    EdDsa,
    Ps256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
            Alg::Ps256 => "PS256",
        }
    }

    fn iana(self) -> iana::Algorithm {
        match self {
            Alg::Es256 => iana::Algorithm::ES256,
            Alg::Es384 => iana::Algorithm::ES384,
            Alg::EdDsa => iana::Algorithm::EdDSA,
            Alg::Ps256 => iana::Algorithm::PS256,
        }
    }

    fn verification(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            Alg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            Alg::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
            Alg::EdDsa => &signature::ED25519,
            Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
        }
    }

    /// The SubjectPublicKeyInfo algorithm (and curve) a key for this algorithm has.
    fn key_matches(self, algorithm: &str, curve: Option<&str>) -> bool {
        match self {
            Alg::Es256 => algorithm == "1.2.840.10045.2.1" && curve == Some("1.2.840.10045.3.1.7"),
            Alg::Es384 => algorithm == "1.2.840.10045.2.1" && curve == Some("1.3.132.0.34"),
            Alg::EdDsa => algorithm == "1.3.101.112",
            Alg::Ps256 => algorithm == "1.2.840.113549.1.1.1",
        }
    }
}

/// A parsed author signature: the algorithm, the chain it carries, and the COSE structure.
#[derive(Debug, Clone)]
pub struct Signature {
    pub alg: Alg,
    /// The signer's certificate first, then the intermediates (as x5chain orders them).
    pub chain: Vec<CertificateDer<'static>>,
    /// The change claim of the protected header (only there is it signed), if any.
    pub claim: Option<String>,
    sign1: CoseSign1,
}

fn invalid(why: impl Into<String>) -> ProvenanceError {
    ProvenanceError::Malformed(why.into())
}

impl Signature {
    /// Parses a COSE_Sign1 (tagged or not). The algorithm must be in the protected header
    /// (RFC 9052 section 3.1: otherwise it could be changed without breaking the signature);
    /// x5chain may be in either header (RFC 9360).
    pub fn parse(bytes: &[u8]) -> Result<Signature, ProvenanceError> {
        if bytes.len() > MAX_SIGNATURE_BYTES {
            return Err(invalid(format!(
                "is {} bytes, more than the {MAX_SIGNATURE_BYTES} allowed",
                bytes.len()
            )));
        }
        let sign1 = CoseSign1::from_tagged_slice(bytes)
            .or_else(|_| CoseSign1::from_slice(bytes))
            .map_err(|e| invalid(format!("is not a COSE_Sign1: {e}")))?;
        use coset::Algorithm;
        let alg = match &sign1.protected.header.alg {
            Some(Algorithm::Assigned(iana::Algorithm::ES256)) => Alg::Es256,
            Some(Algorithm::Assigned(iana::Algorithm::ES384)) => Alg::Es384,
            Some(Algorithm::Assigned(iana::Algorithm::EdDSA)) => Alg::EdDsa,
            Some(Algorithm::Assigned(iana::Algorithm::PS256)) => Alg::Ps256,
            None => {
                return Err(invalid(
                    "names no algorithm in its protected header (use ES256, ES384, EdDSA or PS256)",
                ));
            }
            Some(other) => {
                return Err(invalid(format!(
                    "algorithm {other:?} is not supported (use ES256, ES384, EdDSA or PS256)"
                )));
            }
        };
        let x5chain = [&sign1.protected.header.rest, &sign1.unprotected.rest]
            .into_iter()
            .flat_map(|rest| rest.iter())
            .find(|(label, _)| *label == Label::Int(X5CHAIN))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| invalid("carries no certificate chain (x5chain, label 33)"))?;
        let chain: Vec<CertificateDer<'static>> = match x5chain {
            Value::Bytes(b) => vec![CertificateDer::from(b)],
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::Bytes(b) => Ok(CertificateDer::from(b)),
                    _ => Err(invalid("x5chain holds something other than certificates")),
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(invalid(
                    "x5chain is neither a certificate nor an array of them",
                ));
            }
        };
        if chain.is_empty() {
            return Err(invalid("x5chain is empty"));
        }
        let claim = match sign1
            .protected
            .header
            .rest
            .iter()
            .find(|(label, _)| *label == Label::Int(CHANGE_LABEL))
        {
            None => None,
            Some((_, Value::Text(t))) => Some(t.clone()),
            Some(_) => {
                return Err(invalid(format!(
                    "its change claim (protected header {CHANGE_LABEL}) is not a text string"
                )));
            }
        };
        Ok(Signature {
            alg,
            chain,
            claim,
            sign1,
        })
    }

    /// The signer's certificate (x5chain's first).
    pub fn signer(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// Checks that the protected header claims `expected` (see
    /// [`super::statement::change_claim`]); the error names what was claimed.
    pub fn check_claim(&self, expected: &str) -> Result<(), ProvenanceError> {
        match self.claim.as_deref() {
            Some(c) if c == expected => Ok(()),
            Some(c) => Err(ProvenanceError::Claim(format!(
                "is for {c:?}, not for {expected:?} (the change claim, protected header {CHANGE_LABEL})"
            ))),
            None => Err(ProvenanceError::Claim(format!(
                "names no change (protected header {CHANGE_LABEL} must say {expected:?}; sign with cbm-hub {} --sign-key)",
                expected.split(' ').next().unwrap_or("publish")
            ))),
        }
    }

    /// Checks the signature value over `payload` with the signer certificate's key. A payload
    /// carried inside the COSE structure must be `payload` itself.
    pub fn verify(&self, payload: &[u8]) -> Result<(), ProvenanceError> {
        let (_, cert) = X509Certificate::from_der(self.signer().as_ref())
            .map_err(|e| invalid(format!("signer certificate does not parse: {e}")))?;
        let spki = &cert.tbs_certificate.subject_pki;
        let algorithm = spki.algorithm.algorithm.to_id_string();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|o| o.to_id_string());
        if !self.alg.key_matches(&algorithm, curve.as_deref()) {
            return Err(invalid(format!(
                "algorithm {} does not fit the signer certificate's key ({algorithm})",
                self.alg.name()
            )));
        }
        let key = signature::UnparsedPublicKey::new(
            self.alg.verification(),
            spki.subject_public_key.data.to_vec(),
        );
        let check = |sig: &[u8], tbs: &[u8]| key.verify(tbs, sig).map_err(|_| ());
        let verified = match &self.sign1.payload {
            None => self.sign1.verify_detached_signature(payload, b"", check),
            Some(embedded) if embedded.as_slice() == payload => {
                self.sign1.verify_signature(b"", check)
            }
            Some(_) => Err(()),
        };
        verified.map_err(|()| ProvenanceError::Mismatch)
    }
}

/// A signing key and its certificate chain, for `publish --sign-key K --sign-cert C`.
pub struct SigningKey {
    key: Key,
    chain: Vec<CertificateDer<'static>>,
}

enum Key {
    Ecdsa(Alg, signature::EcdsaKeyPair),
    Ed25519(signature::Ed25519KeyPair),
    Rsa(Box<signature::RsaKeyPair>),
}

impl SigningKey {
    /// A PKCS#8 private key (ECDSA P-256 or P-384, Ed25519 or RSA) and the chain of its
    /// certificate, signer first.
    pub fn new(
        key: &PrivateKeyDer<'_>,
        chain: Vec<CertificateDer<'static>>,
    ) -> Result<SigningKey, String> {
        let PrivateKeyDer::Pkcs8(pkcs8) = key else {
            return Err(
                "the signing key must be PKCS#8 (\"BEGIN PRIVATE KEY\"; convert with `openssl pkcs8 -topk8 -nocrypt`)"
                    .into(),
            );
        };
        if chain.is_empty() {
            return Err("the signing certificate file holds no certificate".into());
        }
        let der = pkcs8.secret_pkcs8_der();
        let rng = SystemRandom::new();
        let key = if let Ok(k) = signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der,
            &rng,
        ) {
            Key::Ecdsa(Alg::Es256, k)
        } else if let Ok(k) = signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            der,
            &rng,
        ) {
            Key::Ecdsa(Alg::Es384, k)
        } else if let Ok(k) = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            Key::Ed25519(k)
        } else if let Ok(k) = signature::RsaKeyPair::from_pkcs8(der) {
            Key::Rsa(Box::new(k))
        } else {
            return Err(
                "the signing key is not an ECDSA P-256/P-384, Ed25519 or RSA PKCS#8 key".into(),
            );
        };
        Ok(SigningKey { key, chain })
    }

    fn alg(&self) -> Alg {
        match &self.key {
            Key::Ecdsa(alg, _) => *alg,
            Key::Ed25519(_) => Alg::EdDsa,
            Key::Rsa(_) => Alg::Ps256,
        }
    }

    fn raw_sign(&self, tbs: &[u8]) -> Result<Vec<u8>, String> {
        let rng = SystemRandom::new();
        match &self.key {
            Key::Ecdsa(_, k) => k
                .sign(&rng, tbs)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "signing failed".to_string()),
            Key::Ed25519(k) => Ok(k.sign(tbs).as_ref().to_vec()),
            Key::Rsa(k) => {
                let mut out = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PSS_SHA256, &rng, tbs, &mut out)
                    .map_err(|_| "signing failed".to_string())?;
                Ok(out)
            }
        }
    }

    /// A tagged COSE_Sign1 over `payload`, detached, with the chain in the protected x5chain
    /// (for a withdrawal statement, which names its change itself).
    pub fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, String> {
        self.sign_change(payload, None)
    }

    /// The same with the change claim `claim` in the protected header (for a publication or
    /// revision: see [`super::statement::change_claim`]).
    pub fn sign_change(&self, payload: &[u8], claim: Option<&str>) -> Result<Vec<u8>, String> {
        let chain = match self.chain.as_slice() {
            [one] => Value::Bytes(one.to_vec()),
            many => Value::Array(many.iter().map(|c| Value::Bytes(c.to_vec())).collect()),
        };
        let mut protected = HeaderBuilder::new()
            .algorithm(self.alg().iana())
            .value(X5CHAIN, chain);
        if let Some(claim) = claim {
            protected = protected.value(CHANGE_LABEL, Value::Text(claim.to_string()));
        }
        let protected = protected.build();
        let sign1 = CoseSign1Builder::new()
            .protected(protected)
            .try_create_detached_signature(payload, b"", |tbs| self.raw_sign(tbs))?
            .build();
        sign1
            .to_tagged_vec()
            .map_err(|e| format!("encoding the signature: {e}"))
    }
}
