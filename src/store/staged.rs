//! The open group's writes, and reads through them: a read inside a group sees the stored
//! keyspace with the group's staged records over it, so that a change is checked against
//! the changes before it in the same group. At commit the staged records become one
//! `sled::Batch`.
use std::collections::BTreeMap;

use sled::IVec;

use super::{
    StoreError,
    keyspace::{Rec, Trees},
};

/// The staged records of one group, by full key (the last write of a key wins, as in the
/// batch), with an undo log so that a campaign refused half-way leaves nothing staged.
#[derive(Default)]
pub(super) struct Staged {
    writes: BTreeMap<Vec<u8>, Vec<u8>>,
    /// (full key, the staged value it replaced) for each write, in order.
    undo: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// How far staging had got: [`Staged::rollback`] returns to it.
#[derive(Debug, Clone, Copy)]
pub(super) struct StagedMark(usize);

impl Staged {
    pub fn put(&mut self, rec: Rec, key: &[u8], value: Vec<u8>) {
        let full = rec.key(key);
        let replaced = self.writes.insert(full.clone(), value);
        self.undo.push((full, replaced));
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    pub fn mark(&self) -> StagedMark {
        StagedMark(self.undo.len())
    }

    /// Undoes every write since `mark`.
    pub fn rollback(&mut self, mark: StagedMark) {
        while self.undo.len() > mark.0 {
            let Some((key, before)) = self.undo.pop() else {
                break;
            };
            match before {
                Some(v) => self.writes.insert(key, v),
                None => self.writes.remove(&key),
            };
        }
    }

    /// The group's records as one batch, leaving nothing staged.
    pub fn take_batch(&mut self) -> sled::Batch {
        self.undo.clear();
        let mut batch = sled::Batch::default();
        for (k, v) in std::mem::take(&mut self.writes) {
            batch.insert(k, v);
        }
        batch
    }

    /// Record `key` of `rec`: staged, else stored.
    pub fn get(&self, trees: &Trees, rec: Rec, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        match self.writes.get(&rec.key(key)) {
            Some(v) => Ok(Some(IVec::from(v.as_slice()))),
            None => Ok(trees.part(rec).get(key)?),
        }
    }

    /// Records of `rec` whose key starts with `prefix` (keys without the kind byte), stored
    /// and staged merged in key order.
    pub fn scan_prefix(
        &self,
        trees: &Trees,
        rec: Rec,
        prefix: &[u8],
    ) -> Result<Vec<(IVec, IVec)>, StoreError> {
        let mut merged: BTreeMap<IVec, IVec> = BTreeMap::new();
        for item in trees.part(rec).scan_prefix(prefix) {
            let (k, v) = item?;
            merged.insert(k, v);
        }
        let full = rec.key(prefix);
        for (k, v) in self.writes.range(full.clone()..) {
            if !k.starts_with(&full) {
                break;
            }
            merged.insert(IVec::from(&k[1..]), IVec::from(v.as_slice()));
        }
        Ok(merged.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_see_staged_over_stored_and_rollback_restores() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let trees = Trees::new(db.open_tree(super::super::keyspace::TREE).unwrap());
        trees.acks.insert(b"n\0a", b"stored-a".to_vec()).unwrap();
        trees.acks.insert(b"n\0c", b"stored-c".to_vec()).unwrap();
        let mut staged = Staged::default();
        staged.put(Rec::Acks, b"n\0b", b"staged-b".to_vec());
        let mark = staged.mark();
        staged.put(Rec::Acks, b"n\0c", b"staged-c".to_vec());
        staged.put(Rec::Heads, b"n\0z", b"other kind".to_vec());
        let values = |s: &Staged| -> Vec<Vec<u8>> {
            s.scan_prefix(&trees, Rec::Acks, b"n\0")
                .unwrap()
                .into_iter()
                .map(|(_, v)| v.to_vec())
                .collect()
        };
        assert_eq!(
            values(&staged),
            [
                b"stored-a".to_vec(),
                b"staged-b".to_vec(),
                b"staged-c".to_vec()
            ]
        );
        assert_eq!(
            staged
                .get(&trees, Rec::Acks, b"n\0c")
                .unwrap()
                .unwrap()
                .as_ref(),
            b"staged-c"
        );
        staged.rollback(mark);
        assert_eq!(
            values(&staged),
            [
                b"stored-a".to_vec(),
                b"staged-b".to_vec(),
                b"stored-c".to_vec()
            ]
        );
        assert!(staged.get(&trees, Rec::Heads, b"n\0z").unwrap().is_none());
        trees.all.apply_batch(staged.take_batch()).unwrap();
        assert!(staged.is_empty());
        assert_eq!(
            trees.acks.get(b"n\0b").unwrap().unwrap().as_ref(),
            b"staged-b"
        );
    }
}
