//! What a reader checks with nothing but public files: a submission revision (with its author
//! signature), the hub's receipt for it, the hub's public key and the trust anchors of the
//! signer's PKI. Each check is one line saying what holds or what failed.
//!
//! Offline there is no CRL and no member registry: the chain is checked at the time the hub
//! accepted the change (the receipt's, so that a certificate expired since still verifies what
//! it signed then), and the binding of the signer to the publisher is the hub's statement in
//! the receipt (the signer certificate's hash), which the hub checked against its registry
//! and CRLs at that time.
use prost::Message;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use super::{
    ProvenanceError,
    cose::Signature,
    receipt,
    signer::{self, SigningUsage},
    statement,
};
use crate::{audit::signing, pb};

/// One check: what it is about, whether it holds, and the detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub what: &'static str,
    pub ok: bool,
    pub detail: String,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = if self.ok { "ok  " } else { "FAIL" };
        write!(f, "{mark} {}: {}", self.what, self.detail)
    }
}

/// What to verify.
pub struct Input<'a> {
    pub submission: &'a pb::Submission,
    pub receipt: Option<&'a pb::Receipt>,
    /// The hub's Ed25519 public key (raw, 32 bytes).
    pub hub_key: &'a [u8],
    /// Trust anchors of the signer's PKI (root certificates).
    pub anchors: &'a [CertificateDer<'static>],
}

fn check(what: &'static str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        what,
        ok,
        detail: detail.into(),
    }
}

/// Every check, in order. The submission is verified when all hold.
pub fn verify(input: &Input<'_>) -> Vec<Check> {
    let s = input.submission;
    let mut out = Vec::new();
    let payload = statement::payload_of(s);
    let withdrawn = s.status == "withdrawn";
    // The content hash only covers content: a withdrawal's statement is checked by its
    // signature.
    if !withdrawn {
        let hash = hex::encode(Sha256::digest(&payload));
        out.push(if hash == s.content_hash {
            check(
                "content",
                true,
                format!("sha256:{hash} is the submission's content_hash"),
            )
        } else {
            check(
                "content",
                false,
                format!(
                    "sha256:{hash} of the content is not its content_hash {} (the content was altered)",
                    s.content_hash
                ),
            )
        });
    }
    let signer_sha256 = author_signature(input, &payload, &mut out);
    if let Some(r) = input.receipt {
        receipt_checks(input, r, signer_sha256.as_deref(), &mut out);
    } else {
        out.push(check(
            "receipt",
            false,
            "none given: nothing shows the hub accepted this (ask `cbm-hub receipt ID`)",
        ));
    }
    out
}

/// The author signature and its chain; returns the signer certificate's SHA-256.
fn author_signature(input: &Input<'_>, payload: &[u8], out: &mut Vec<Check>) -> Option<String> {
    let s = input.submission;
    if s.signature.is_empty() {
        out.push(check(
            "signature",
            false,
            "the submission is not signed by its publisher",
        ));
        return None;
    }
    let sig = match Signature::parse(&s.signature) {
        Ok(sig) => sig,
        Err(e) => {
            out.push(check("signature", false, e.to_string()));
            return None;
        }
    };
    let signer = sig.signer();
    let name = subject(signer.as_ref());
    let what_signed = if s.status == "withdrawn" {
        "the withdrawal statement"
    } else {
        "the content"
    };
    // A publication's or revision's signature claims the change it is: a signed revision
    // shown as another (a revision 1 presented as revision 3) fails here.
    if let Some(expected) = statement::claim_of(s)
        && let Err(e) = sig.check_claim(&expected)
    {
        let why = match e {
            super::ProvenanceError::Claim(why) => why,
            other => other.to_string(),
        };
        out.push(check(
            "signature",
            false,
            format!(
                "{why}: it was not made for revision {} of {}",
                s.revision, s.id
            ),
        ));
    }
    out.push(match sig.verify(payload) {
        Ok(()) => check(
            "signature",
            true,
            format!("{} by {name} verifies over {what_signed}", sig.alg.name()),
        ),
        Err(_) => check(
            "signature",
            false,
            format!(
                "does not verify over {what_signed} (the signature or what it signs was altered)"
            ),
        ),
    });
    let at = input
        .receipt
        .and_then(|r| {
            time::OffsetDateTime::parse(
                &r.accepted_at,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()
        })
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    out.push(chain(input.anchors, &sig, at));
    Some(hex::encode(Sha256::digest(signer.as_ref())))
}

fn chain(anchors: &[CertificateDer<'static>], sig: &Signature, at: time::OffsetDateTime) -> Check {
    let trusted: Vec<TrustAnchor<'_>> = anchors
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .collect();
    if trusted.is_empty() {
        return check("certificate chain", false, "no usable trust anchor given");
    }
    let ee = match webpki::EndEntityCert::try_from(sig.signer()) {
        Ok(ee) => ee,
        Err(e) => {
            return check(
                "certificate chain",
                false,
                format!("signer certificate: {e:?}"),
            );
        }
    };
    let when = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        at.unix_timestamp().max(0) as u64,
    ));
    let algs = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    match ee.verify_for_usage(
        algs,
        &trusted,
        &sig.chain[1..],
        when,
        SigningUsage,
        None,
        None,
    ) {
        Ok(path) => {
            // As at publication: a key usage, when present, must allow signing.
            if let Err(e) = signer::key_usage(sig.signer().as_ref()) {
                let why = match e {
                    ProvenanceError::Usage(why) => format!("the signer certificate {why}"),
                    other => other.to_string(),
                };
                return check("certificate chain", false, why);
            }
            let anchor = name(path.anchor().subject.as_ref());
            check(
                "certificate chain",
                true,
                format!(
                    "reaches trust anchor {anchor} ({} intermediate(s)), valid at {}",
                    path.intermediate_certificates().count(),
                    at.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                ),
            )
        }
        Err(webpki::Error::UnknownIssuer) => check(
            "certificate chain",
            false,
            "does not reach any of the trust anchors given",
        ),
        Err(e) => check(
            "certificate chain",
            false,
            format!("does not verify: {e:?}"),
        ),
    }
}

fn receipt_checks(input: &Input<'_>, r: &pb::Receipt, signer: Option<&str>, out: &mut Vec<Check>) {
    let s = input.submission;
    let key_id = signing::key_id(input.hub_key);
    let checkpoint_ok = r
        .checkpoint
        .as_ref()
        .is_some_and(|c| signing::verify_checkpoint(input.hub_key, c));
    out.push(if receipt::verify_signature(input.hub_key, r) {
        check(
            "receipt",
            true,
            format!("signed by hub {key_id} (the hub key given)"),
        )
    } else if checkpoint_ok {
        check(
            "receipt",
            false,
            "altered: the hub's signature does not cover its fields",
        )
    } else {
        check(
            "receipt",
            false,
            format!(
                "not signed by the hub key given (key id {key_id}; the receipt names hub {})",
                r.hub_id
            ),
        )
    });
    let signature_sha256 = if s.signature.is_empty() {
        String::new()
    } else {
        hex::encode(Sha256::digest(&s.signature))
    };
    let mut differs = Vec::new();
    let fields: [(&str, String, String); 6] = [
        ("submission id", r.submission_id.clone(), s.id.clone()),
        ("revision", r.revision.to_string(), s.revision.to_string()),
        (
            "content hash",
            r.content_hash.clone(),
            s.content_hash.clone(),
        ),
        ("publisher", r.publisher.clone(), s.publisher.clone()),
        ("sequence", r.sequence.to_string(), s.sequence.to_string()),
        ("accepted at", r.accepted_at.clone(), s.updated_at.clone()),
    ];
    for (name, receipt_value, submission_value) in fields {
        if receipt_value != submission_value {
            differs.push(format!(
                "{name} {receipt_value:?} (submission: {submission_value:?})"
            ));
        }
    }
    out.push(if differs.is_empty() {
        check(
            "receipt",
            true,
            format!(
                "names this change: {} revision {} by {}, sequence {}, accepted {}",
                r.submission_id, r.revision, r.publisher, r.sequence, r.accepted_at
            ),
        )
    } else {
        check(
            "receipt",
            false,
            format!("is for another change: {}", differs.join(", ")),
        )
    });
    if let Some(signer) = signer {
        out.push(if r.signer_cert_sha256 != signer {
            check(
                "signer",
                false,
                format!(
                    "certificate sha256:{signer} is not bound to publisher {} (the hub bound sha256:{})",
                    r.publisher,
                    if r.signer_cert_sha256.is_empty() { "none" } else { &r.signer_cert_sha256 }
                ),
            )
        } else if r.signature_sha256 != signature_sha256 {
            check(
                "signature",
                false,
                "is not the signature the hub accepted (its hash differs from the receipt's)",
            )
        } else {
            check(
                "signer",
                true,
                format!(
                    "the hub found certificate sha256:{signer} bound to publisher {}",
                    r.publisher
                ),
            )
        });
    }
    let Some(c) = &r.checkpoint else {
        out.push(check("checkpoint", false, "the receipt carries none"));
        return;
    };
    let leaf = receipt::hash_from_hex(&r.leaf_hash);
    let root = receipt::hash_from_hex(&c.root_hash);
    let proof: Option<Vec<_>> = r
        .inclusion_proof
        .iter()
        .map(|h| receipt::hash_from_hex(h))
        .collect();
    let included = match (leaf, root, proof) {
        (Some(leaf), Some(root), Some(proof)) => {
            receipt::verify_inclusion(r.leaf_index, c.tree_size, &leaf, &proof, &root)
        }
        _ => false,
    };
    out.push(if included {
        check(
            "inclusion proof",
            true,
            format!(
                "audit leaf {} is in the log of {} entries",
                r.leaf_index, c.tree_size
            ),
        )
    } else {
        check(
            "inclusion proof",
            false,
            format!(
                "does not lead from audit leaf {} to the checkpoint's root",
                r.leaf_index
            ),
        )
    });
    out.push(if checkpoint_ok {
        check(
            "checkpoint",
            true,
            format!(
                "{} entries, root {}, signed by the hub key at {}",
                c.tree_size, c.root_hash, c.at
            ),
        )
    } else {
        check(
            "checkpoint",
            false,
            format!("its signature does not verify with the hub key given (key id {key_id})"),
        )
    });
}

/// A trust anchor's subject as text: webpki keeps the Name's contents without the SEQUENCE
/// header, which is put back to parse it.
fn name(contents: &[u8]) -> String {
    let len = contents.len();
    let mut der = vec![0x30];
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        der.push(0x80 | bytes.len() as u8);
        der.extend(bytes);
    }
    der.extend_from_slice(contents);
    X509Name::from_der(&der)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|_| "a trust anchor".into())
}

/// A certificate's URI SAN, else its subject, for messages.
fn subject(der: &[u8]) -> String {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return "an unparsable certificate".into();
    };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(uri) = name {
                return (*uri).to_string();
            }
        }
    }
    cert.subject().to_string()
}

/// The protobuf encoding a submission's content hash covers.
pub fn content_bytes(s: &pb::Submission) -> Vec<u8> {
    s.content
        .as_ref()
        .map(Message::encode_to_vec)
        .unwrap_or_default()
}
