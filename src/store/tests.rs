//! The store's own mechanics: ranges from the largest key.
use super::*;

fn options() -> StoreOptions {
    StoreOptions {
        cache_capacity: 8 * 1024 * 1024,
        ..StoreOptions::default()
    }
}

fn entry(i: usize) -> AuditEntry {
    crate::audit::Origin::default().entry(&format!("test.entry.{i}"))
}

#[test]
fn ranges_after_the_largest_key_are_empty() {
    assert!(key_after(u64::MAX).as_slice() > u64::MAX.to_be_bytes().as_slice());
    assert_eq!(key_after(41), 42u64.to_be_bytes().to_vec());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    store.audit_nowait(entry(0));
    store.close();
    for after in [u64::MAX, u64::MAX - 1] {
        assert_eq!(store.submissions_after(after).count(), 0);
        assert_eq!(store.audit_after(after).count(), 0);
        assert_eq!(store.raw_events_after(after).count(), 0);
    }
    assert!(store.audit_after(0).count() > 0);
}
