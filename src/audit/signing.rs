//! The hub's checkpoint signing key (Ed25519), created on first start beside the data.
use std::path::Path;

use ring::{
    rand::SystemRandom,
    signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey},
};
use sha2::{Digest, Sha256};

use crate::pb::Checkpoint;

/// Signs checkpoints.
pub struct Signer {
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.key_id())
    }
}

impl Signer {
    /// Loads `dir/audit-signing-key.pk8`, creating it (mode 0600) and `audit-signing-key.pub`
    /// (hex public key, to pin in offline verification) if absent.
    pub fn load_or_create(dir: &Path) -> Result<Signer, String> {
        let path = dir.join("audit-signing-key.pk8");
        let pkcs8 = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|e| format!("generating the audit key: {e}"))?;
                std::fs::write(&path, doc.as_ref())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
                }
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let key = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|e| format!("{}: not an Ed25519 key: {e}", path.display()))?;
        let signer = Signer { key };
        let pub_path = dir.join("audit-signing-key.pub");
        std::fs::write(&pub_path, format!("{}\n", hex::encode(signer.public_key())))
            .map_err(|e| format!("{}: {e}", pub_path.display()))?;
        Ok(signer)
    }

    pub fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    pub fn key_id(&self) -> String {
        key_id(self.public_key())
    }

    /// Signs `message` with the hub's key: receipts use it (their text starts with
    /// "cbm-hub receipt v1", a checkpoint's with "cbm-hub audit checkpoint v1", so that neither
    /// can be taken for the other).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message).as_ref().to_vec()
    }

    /// A signed checkpoint for a tree of `size` leaves with `root`.
    pub fn checkpoint(&self, size: u64, root: &[u8; 32], at: String) -> Checkpoint {
        let root_hash = hex::encode(root);
        let signature = self
            .key
            .sign(signed_text(size, &root_hash, &at).as_bytes())
            .as_ref()
            .to_vec();
        Checkpoint {
            tree_size: size,
            root_hash,
            at,
            key_id: self.key_id(),
            signature: signature.into(),
        }
    }
}

pub fn key_id(public_key: &[u8]) -> String {
    hex::encode(Sha256::digest(public_key))
}

/// The exact text a checkpoint signature covers.
pub fn signed_text(size: u64, root_hex: &str, at: &str) -> String {
    format!("cbm-hub audit checkpoint v1\n{size}\n{root_hex}\n{at}\n")
}

/// Checks a checkpoint's signature against a public key.
pub fn verify_checkpoint(public_key: &[u8], c: &Checkpoint) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(
            signed_text(c.tree_size, &c.root_hash, &c.at).as_bytes(),
            &c.signature,
        )
        .is_ok()
}
