//! The member registry in storage: loading it and encoding its members (the changes
//! administrators make are decided by `domain::rules::registry`).
use super::{StoreError, codec};
use crate::{
    convert,
    domain::member::{Member, Registry},
    pb,
};

pub fn load_registry(tree: &super::keyspace::Part) -> Result<Registry, StoreError> {
    let mut members = Vec::new();
    for item in tree.iter() {
        let (k, v) = item?;
        let id = String::from_utf8_lossy(&k).into_owned();
        let stored: pb::Member = codec::unframe(&v, || format!("member {id}"))?;
        members.push(
            convert::member_from_stored(&stored)
                .map_err(|e| StoreError::Corrupt(format!("member {id}: {e}")))?,
        );
    }
    Ok(Registry::new(members))
}

pub fn encode(member: &Member) -> Vec<u8> {
    codec::frame(&convert::member_to_pb(member))
}
