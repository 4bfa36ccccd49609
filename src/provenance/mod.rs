//! Provenance beyond the hub: author signatures checked at publication, the hub's receipts,
//! and the checks a reader makes offline.
//!
//! - [`cose`]: the signature container (COSE_Sign1 with x5chain) and its algorithms.
//! - [`signer`]: whether a signature's certificate chains to a trusted CA, may sign, is not
//!   revoked, and is bound to the publishing member (the rules of mTLS identity).
//! - [`statement`]: what a signed withdrawal says.
//! - [`receipt`]: the hub's receipt text, its signature, and RFC 6962 inclusion proofs.
//! - [`offline`]: `cbm-hub verify`: every check a reader can make from public files.
//!
//! Nothing here knows tonic or sled: the service layer calls [`signer::check`] before a change
//! is queued, and the store keeps the signature bytes inside the revision it produces.
pub mod cose;
pub mod offline;
pub mod receipt;
pub mod signer;
pub mod statement;

/// Why an author signature is refused. Messages start with what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvenanceError {
    /// The container is not a usable COSE_Sign1.
    #[error("signature: {0}")]
    Malformed(String),
    /// The signature's change claim is not the change submitted.
    #[error("signature: {0}")]
    Claim(String),
    /// The signature value does not verify over what was submitted.
    #[error("signature: does not match content")]
    Mismatch,
    /// The signer's chain does not verify to a trusted CA (unknown, expired, revoked).
    #[error("signature: certificate chain {0}")]
    Chain(String),
    /// The signer certificate may not make signatures (key usage).
    #[error("signature: signer certificate {0}")]
    Usage(String),
    /// The signer is not bound to the member that publishes.
    #[error("signature: signer {signer} is not bound to publisher {publisher}")]
    NotBound { signer: String, publisher: String },
    /// The member must sign and did not.
    #[error(
        "signature: required: member {0} must sign every publication, revision and withdrawal (require_signed)"
    )]
    Required(String),
}

impl From<ProvenanceError> for tonic::Status {
    fn from(e: ProvenanceError) -> tonic::Status {
        let message = e.to_string();
        match e {
            ProvenanceError::Malformed(_)
            | ProvenanceError::Mismatch
            | ProvenanceError::Claim(_) => tonic::Status::invalid_argument(message),
            ProvenanceError::Chain(_)
            | ProvenanceError::Usage(_)
            | ProvenanceError::NotBound { .. } => tonic::Status::permission_denied(message),
            ProvenanceError::Required(_) => tonic::Status::failed_precondition(message),
        }
    }
}
