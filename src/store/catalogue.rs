//! Frameworks added to the CBM catalogue by administrators, kept next to the built-in ones.
use super::{Store, StoreError, codec, writer::Command};
use crate::{
    audit::Origin,
    domain::{
        catalogue::{Catalogue, Framework},
        rules::Refusal,
    },
    pb,
};

/// The built-in catalogue plus every stored addition.
pub(super) fn load(tree: &super::keyspace::Part) -> Result<Catalogue, StoreError> {
    let mut added = Vec::new();
    for item in tree.iter() {
        let (k, v) = item?;
        let id = String::from_utf8_lossy(&k).into_owned();
        let fw: pb::Framework = codec::unframe(&v, || format!("catalogue framework {id}"))?;
        added.push(Framework::from_pb(fw, true));
    }
    let (catalogue, skipped) =
        Catalogue::with_added(added).map_err(|e| StoreError::Corrupt(format!("catalogue: {e}")))?;
    for id in skipped {
        tracing::warn!(
            framework = %id,
            "a framework added by an administrator replaces the built-in one it clashes with"
        );
    }
    Ok(catalogue)
}

/// Checks and adds a framework to `catalogue`; returns its stored key and value, and the
/// framework as added.
pub(super) fn add(
    catalogue: &mut Catalogue,
    fw: pb::Framework,
) -> Result<(Vec<u8>, Vec<u8>, pb::Framework), StoreError> {
    let fw = Framework::from_pb(fw, true);
    fw.check().map_err(StoreError::Invalid)?;
    let added = fw.to_pb();
    catalogue
        .add_framework(fw)
        .map_err(|m| Refusal::exists("", m))?;
    Ok((added.id.as_bytes().to_vec(), codec::frame(&added), added))
}

impl Store {
    /// Adds a framework to the catalogue; resolves once durable.
    pub async fn add_framework(
        &self,
        framework: pb::Framework,
        origin: Origin,
    ) -> Result<pb::Framework, StoreError> {
        self.ask(|reply| Command::AddFramework {
            framework: Box::new(framework),
            origin,
            reply,
        })
        .await
    }
}
