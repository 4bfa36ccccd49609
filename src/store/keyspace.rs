//! The one keyspace: every record kind in one sled tree, told apart by the first byte of its
//! key ([`Rec`]), so that a group of changes is one `sled::Batch` applied atomically to one
//! tree instead of a transaction across trees.
//!
//! [`Part`] is the records of one kind seen as a tree of their own: keys go in and come out
//! without the prefix byte, so that code reading one kind reads as it did with a tree per kind.
use sled::IVec;

/// Name of the sled tree that holds the keyspace.
pub const TREE: &str = "records";

/// sled's configuration for the data directory `dir`: a new directory is created with zstd
/// compression at `level` (0: none); an existing one keeps the compression it was created
/// with, which sled cannot change (a directory of layout 1 has none, and must open to be
/// recognised and migrated). Compression halves the bytes on disk and costs most of the
/// publish throughput (measured in the README's storage section), hence off by default.
pub fn sled_config(dir: &std::path::Path, level: i32) -> sled::Config {
    // sled's conf is text lines followed by a binary CRC.
    let compressed = match std::fs::read(dir.join("conf")) {
        Ok(conf) => String::from_utf8_lossy(&conf)
            .lines()
            .any(|l| l.trim() == "use_compression: true"),
        Err(_) => level > 0,
    };
    sled::Config::new()
        .path(dir)
        .use_compression(compressed)
        .compression_factor(level.clamp(1, 22))
}

/// Opens a stopped hub's data directory with sled directly, as the store would (tests and
/// tools that inspect or damage records on purpose).
pub fn open_raw(dir: &std::path::Path) -> sled::Result<sled::Db> {
    sled_config(dir, super::DEFAULT_COMPRESSION_LEVEL).open()
}

/// The kind of a record: the first byte of its key. The bytes are fixed by the on-disk format
/// (never reorder or reuse one); they are letters so that a dump of the tree reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Rec {
    /// Layout version and small state (audit log state, upgrade marks).
    Meta = b'0',
    /// Feed sequence (u64 BE) -> `records::StoredEvent`. Gapless from 1.
    Events = b'e',
    /// Submission id -> `records::SubmissionHead`.
    Heads = b'h',
    /// Sequence of revision 1 (u64 BE) -> submission id.
    ByCreated = b'c',
    /// Kind code, publisher, NUL, sequence of revision 1 -> submission id.
    ByKind = b'k',
    /// Member id, NUL, client key -> `records::IdempotencyRecord`.
    Idempotency = b'i',
    /// Member id -> `pb::Member`.
    Members = b'm',
    /// Audit sequence (u64 BE) -> `pb::AuditEntry`.
    Audit = b'a',
    /// Audit tree size (u64 BE) -> signed `pb::Checkpoint`.
    Checkpoints = b'p',
    /// Notice id, NUL, member id, NUL, contact id -> `pb::Acknowledgement`.
    Acks = b'n',
    /// Campaign id -> `pb::PingCampaign`.
    Campaigns = b'g',
    /// Ping notice id -> campaign id.
    CampaignNotices = b'q',
    /// Point-of-contact id -> `records::Verified`.
    Verified = b'v',
    /// Framework id -> `pb::Framework` added by an administrator.
    Catalogue = b'f',
    /// Submission id -> nothing: the submission has more than one revision (revised or
    /// withdrawn), so its head says more than its first event. Loaded into memory at open;
    /// replay reads the head of these only.
    Revised = b'r',
}

impl Rec {
    /// Every kind, for checks and the migration.
    pub const ALL: [Rec; 15] = [
        Rec::Meta,
        Rec::Events,
        Rec::Heads,
        Rec::ByCreated,
        Rec::ByKind,
        Rec::Idempotency,
        Rec::Members,
        Rec::Audit,
        Rec::Checkpoints,
        Rec::Acks,
        Rec::Campaigns,
        Rec::CampaignNotices,
        Rec::Verified,
        Rec::Catalogue,
        Rec::Revised,
    ];

    /// The full key of record `key` of this kind.
    pub fn key(self, key: &[u8]) -> Vec<u8> {
        let mut full = Vec::with_capacity(1 + key.len());
        full.push(self as u8);
        full.extend_from_slice(key);
        full
    }

    /// The tree that held this kind in layout version 1 (one tree per kind), if it had one.
    pub fn layout1_tree(self) -> Option<&'static str> {
        Some(match self {
            Rec::Revised => return None,
            Rec::Meta => "meta",
            Rec::Events => "events",
            Rec::Heads => "heads",
            Rec::ByCreated => "by_created",
            Rec::ByKind => "by_kind",
            Rec::Idempotency => "idempotency",
            Rec::Members => "members",
            Rec::Audit => "audit",
            Rec::Checkpoints => "checkpoints",
            Rec::Acks => "acks",
            Rec::Campaigns => "campaigns",
            Rec::CampaignNotices => "campaign_notices",
            Rec::Verified => "verified",
            Rec::Catalogue => "catalogue",
        })
    }

    /// The first full key past every record of this kind.
    fn end(self) -> [u8; 1] {
        // No kind is 0xFF, so the next byte exists.
        [self as u8 + 1]
    }
}

/// The records of one kind, keyed without their prefix byte.
#[derive(Clone)]
pub struct Part {
    tree: sled::Tree,
    rec: Rec,
}

type Item = sled::Result<(IVec, IVec)>;

impl Part {
    pub fn new(tree: sled::Tree, rec: Rec) -> Part {
        Part { tree, rec }
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> sled::Result<Option<IVec>> {
        self.tree.get(self.rec.key(key.as_ref()))
    }

    /// Writes one record outside a group (upgrades at open, checkpoints): a group's records go
    /// through its batch.
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl Into<IVec>) -> sled::Result<()> {
        self.tree
            .insert(self.rec.key(key.as_ref()), value)
            .map(drop)
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> sled::Result<bool> {
        self.tree.contains_key(self.rec.key(key.as_ref()))
    }

    /// Removes one record outside a group (the start's seal and checked marks).
    pub fn remove(&self, key: impl AsRef<[u8]>) -> sled::Result<()> {
        self.tree.remove(self.rec.key(key.as_ref())).map(drop)
    }

    /// Records whose key (without prefix) is in `from..to`, in key order.
    pub fn range<K: AsRef<[u8]>>(
        &self,
        keys: std::ops::Range<K>,
    ) -> impl DoubleEndedIterator<Item = Item> + use<K> {
        strip(
            self.tree
                .range(self.rec.key(keys.start.as_ref())..self.rec.key(keys.end.as_ref())),
        )
    }

    /// Records whose key (without prefix) is `from` or after, in key order.
    pub fn range_from<K: AsRef<[u8]>>(
        &self,
        from: K,
    ) -> impl DoubleEndedIterator<Item = Item> + use<K> {
        strip(
            self.tree
                .range(self.rec.key(from.as_ref())..self.rec.end().to_vec()),
        )
    }

    pub fn scan_prefix<K: AsRef<[u8]>>(
        &self,
        prefix: K,
    ) -> impl DoubleEndedIterator<Item = Item> + use<K> {
        strip(self.tree.scan_prefix(self.rec.key(prefix.as_ref())))
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Item> + use<> {
        strip(self.tree.scan_prefix([self.rec as u8]))
    }

    pub fn first(&self) -> sled::Result<Option<(IVec, IVec)>> {
        self.iter().next().transpose()
    }

    pub fn last(&self) -> sled::Result<Option<(IVec, IVec)>> {
        self.iter().next_back().transpose()
    }

    /// How many records of this kind (a scan: for checks only).
    pub fn count(&self) -> sled::Result<usize> {
        self.iter().try_fold(0, |n, item| item.map(|_| n + 1))
    }
}

/// Takes the kind byte off the keys of a scan.
fn strip(iter: sled::Iter) -> impl DoubleEndedIterator<Item = Item> {
    iter.map(|item| item.map(|(k, v)| (IVec::from(&k[1..]), v)))
}

/// The keyspace's tree and a [`Part`] for each record kind.
#[derive(Clone)]
pub struct Trees {
    /// The one tree, written by the writer's batches.
    pub all: sled::Tree,
    pub events: Part,
    pub heads: Part,
    pub by_created: Part,
    pub idempotency: Part,
    pub members: Part,
    pub audit: Part,
    pub checkpoints: Part,
    pub meta: Part,
    pub by_kind: Part,
    pub acks: Part,
    pub campaigns: Part,
    pub campaign_notices: Part,
    pub verified: Part,
    pub catalogue: Part,
    pub revised: Part,
}

impl Trees {
    pub fn new(all: sled::Tree) -> Trees {
        let part = |rec| Part::new(all.clone(), rec);
        Trees {
            events: part(Rec::Events),
            heads: part(Rec::Heads),
            by_created: part(Rec::ByCreated),
            idempotency: part(Rec::Idempotency),
            members: part(Rec::Members),
            audit: part(Rec::Audit),
            checkpoints: part(Rec::Checkpoints),
            meta: part(Rec::Meta),
            by_kind: part(Rec::ByKind),
            acks: part(Rec::Acks),
            campaigns: part(Rec::Campaigns),
            campaign_notices: part(Rec::CampaignNotices),
            verified: part(Rec::Verified),
            catalogue: part(Rec::Catalogue),
            revised: part(Rec::Revised),
            all,
        }
    }

    /// The part holding records of `rec`.
    pub fn part(&self, rec: Rec) -> &Part {
        match rec {
            Rec::Meta => &self.meta,
            Rec::Events => &self.events,
            Rec::Heads => &self.heads,
            Rec::ByCreated => &self.by_created,
            Rec::ByKind => &self.by_kind,
            Rec::Idempotency => &self.idempotency,
            Rec::Members => &self.members,
            Rec::Audit => &self.audit,
            Rec::Checkpoints => &self.checkpoints,
            Rec::Acks => &self.acks,
            Rec::Campaigns => &self.campaigns,
            Rec::CampaignNotices => &self.campaign_notices,
            Rec::Verified => &self.verified,
            Rec::Catalogue => &self.catalogue,
            Rec::Revised => &self.revised,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_prefixes_and_parts_see_only_their_own() {
        let mut bytes: Vec<u8> = Rec::ALL.iter().map(|r| *r as u8).collect();
        bytes.sort();
        bytes.dedup();
        assert_eq!(bytes.len(), Rec::ALL.len());
        assert!(bytes.iter().all(|b| *b < u8::MAX));

        let db = sled::Config::new().temporary(true).open().unwrap();
        let trees = Trees::new(db.open_tree(TREE).unwrap());
        for rec in Rec::ALL {
            let part = trees.part(rec);
            part.insert([1u8], vec![rec as u8]).unwrap();
            part.insert([2u8], vec![rec as u8]).unwrap();
        }
        for rec in Rec::ALL {
            let part = trees.part(rec);
            let all: Vec<_> = part.iter().map(Result::unwrap).collect();
            assert_eq!(all.len(), 2, "{rec:?}");
            assert!(all.iter().all(|(_, v)| v.as_ref() == [rec as u8]));
            assert_eq!(part.first().unwrap().unwrap().0.as_ref(), [1u8]);
            assert_eq!(part.last().unwrap().unwrap().0.as_ref(), [2u8]);
            assert_eq!(part.range_from([2u8]).count(), 1);
            assert_eq!(part.range_from([u8::MAX; 9]).count(), 0);
            assert_eq!(part.count().unwrap(), 2);
        }
    }
}
