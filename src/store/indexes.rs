//! The `by_kind` index (kind, publisher, first sequence -> id), upgrades of older stores'
//! indexes, and the reads of a submission's latest revision.
use super::{
    Store, StoreError, codec,
    keyspace::Part,
    read_event,
    records::{AudienceRecord, StoredEvent, SubmissionHead},
};
use crate::domain::kind::Kind;

/// Marks in `meta` that `by_kind` covers every submission (stores made before it get it built).
const BUILT_KEY: &[u8] = b"by_kind";

/// Key of a submission in `by_kind`. Member ids never hold NUL, so the publisher part cannot run
/// into the sequence.
pub(super) fn by_kind_key(kind: Kind, publisher: &str, created_seq: u64) -> Vec<u8> {
    let mut key = by_kind_prefix(kind, Some(publisher));
    key.extend_from_slice(&created_seq.to_be_bytes());
    key
}

pub(super) fn by_kind_prefix(kind: Kind, publisher: Option<&str>) -> Vec<u8> {
    let mut key = vec![kind.code()];
    if let Some(p) = publisher {
        key.extend_from_slice(p.as_bytes());
        key.push(0);
    }
    key
}

/// Builds `by_kind` from `heads` if this store has never had it.
pub(super) fn build_if_missing(trees: &super::keyspace::Trees) -> Result<(), StoreError> {
    if trees.meta.get(BUILT_KEY)?.is_some() {
        return Ok(());
    }
    for item in trees.heads.iter() {
        let (k, v) = item?;
        let id = String::from_utf8_lossy(&k).into_owned();
        let head: SubmissionHead = codec::unframe(&v, || format!("index of submission {id}"))?;
        let kind = head
            .kind
            .parse::<Kind>()
            .map_err(|e| StoreError::Corrupt(format!("submission {id}: {e}")))?;
        trees
            .by_kind
            .insert(by_kind_key(kind, &head.publisher, head.created_seq), k)?;
    }
    trees.meta.insert(BUILT_KEY, b"1")?;
    trees.all.flush()?;
    Ok(())
}

/// Marks in `meta` that every head lists its revisions' audiences and its latest time.
const AUDIENCES_KEY: &[u8] = b"head_audiences";

/// Gives every head of a store made before heads kept their revisions' audiences those
/// audiences, read once from the events. Runs once; the audience decision reads heads only.
pub(super) fn add_audiences_if_missing(trees: &super::keyspace::Trees) -> Result<(), StoreError> {
    if trees.meta.get(AUDIENCES_KEY)?.is_some() {
        return Ok(());
    }
    for item in trees.heads.iter() {
        let (k, v) = item?;
        let id = String::from_utf8_lossy(&k).into_owned();
        let mut head: SubmissionHead = codec::unframe(&v, || format!("index of submission {id}"))?;
        if head.audiences.len() == head.revision_seqs.len() && !head.latest_at.is_empty() {
            continue;
        }
        let revisions = head
            .revision_seqs
            .iter()
            .map(|seq| {
                Ok(read_event(&trees.events, *seq)?
                    .submission
                    .unwrap_or_default())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        head.audiences = revisions.iter().map(AudienceRecord::of).collect();
        head.latest_at = revisions
            .last()
            .map(|s| s.updated_at.clone())
            .unwrap_or_default();
        trees.heads.insert(k, codec::frame(&head))?;
    }
    trees.meta.insert(AUDIENCES_KEY, b"1")?;
    trees.all.flush()?;
    Ok(())
}

/// Marks in `meta` that every submission with more than one revision has its `Revised` record.
const REVISED_KEY: &[u8] = b"revised";

/// Gives a store made before `Revised` records (a migrated one) those records, from the heads.
/// Runs once.
pub(super) fn build_revised_if_missing(trees: &super::keyspace::Trees) -> Result<(), StoreError> {
    if trees.meta.get(REVISED_KEY)?.is_some() {
        return Ok(());
    }
    for item in trees.heads.iter() {
        let (k, v) = item?;
        let id = String::from_utf8_lossy(&k).into_owned();
        let head: SubmissionHead = codec::unframe(&v, || format!("index of submission {id}"))?;
        if head.revision_seqs.len() > 1 {
            trees.revised.insert(k, codec::frame(&()))?;
        }
    }
    trees.meta.insert(REVISED_KEY, b"1")?;
    trees.all.flush()?;
    Ok(())
}

/// The ids of the submissions with more than one revision.
pub(super) fn load_revised(
    trees: &super::keyspace::Trees,
) -> Result<std::collections::HashSet<Box<str>>, StoreError> {
    trees
        .revised
        .iter()
        .map(|item| {
            let (k, v) = item?;
            let id = String::from_utf8_lossy(&k).into_owned();
            codec::checked(&v, || format!("revision mark of submission {id}"))?;
            Ok(id.into_boxed_str())
        })
        .collect()
}

fn ids(tree: &Part, prefix: Vec<u8>) -> impl Iterator<Item = Result<String, StoreError>> + use<> {
    tree.scan_prefix(prefix).map(|item| {
        let (_, v) = item?;
        String::from_utf8(v.to_vec())
            .map_err(|_| StoreError::Corrupt("by_kind: an id is not UTF-8".into()))
    })
}

impl Store {
    /// Ids of the submissions of `kind` (of one publisher, if given), in order of publisher and
    /// first publication.
    pub fn ids_of_kind(
        &self,
        kind: Kind,
        publisher: Option<&str>,
    ) -> impl Iterator<Item = Result<String, StoreError>> + use<> {
        ids(&self.inner.trees.by_kind, by_kind_prefix(kind, publisher))
    }

    /// As [`Store::latest`], for a submission `reader` may see now (its content, or its
    /// withdrawal's tombstone): the event is read only once the head says so, so a submission
    /// hidden from the reader costs one index read and is answered as fast as an absent one.
    pub fn latest_seen_by(
        &self,
        reader: &crate::domain::member::Member,
        id: &str,
    ) -> Result<Option<(SubmissionHead, StoredEvent)>, StoreError> {
        let Some(head) = self.head_of(id)? else {
            return Ok(None);
        };
        if !crate::domain::audience::sees(reader, &head.standing()) {
            return Ok(None);
        }
        let event = self.event(head.latest_seq())?;
        Ok(Some((head, event)))
    }

    /// The durable latest revision of a submission with its index entry, if it exists.
    pub fn latest(&self, id: &str) -> Result<Option<(SubmissionHead, StoredEvent)>, StoreError> {
        let Some(head) = self.head_of(id)? else {
            return Ok(None);
        };
        let event = self.event(head.latest_seq())?;
        Ok(Some((head, event)))
    }
}
