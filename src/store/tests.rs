//! The store's own mechanics: closing with a full queue, closing that releases the directory,
//! ranges from the largest key.
use std::{
    sync::mpsc,
    time::{Duration, Instant},
};

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

/// Holds the store's writer until the returned sender sends (or drops).
fn hold_writer(store: &Store) -> mpsc::Sender<()> {
    let (release, paused) = mpsc::channel::<()>();
    store
        .inner
        .commands
        .blocking_send(writer::Command::Pause(paused))
        .unwrap();
    release
}

#[test]
fn close_returns_when_the_queue_is_full_and_writes_what_was_queued() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let before = store.audit_len();
    // Hold the writer, then fill its queue to the brim.
    let release = hold_writer(&store);
    let mut queued = 0;
    while queued <= WRITER_QUEUE {
        match store.inner.commands.try_send(writer::Command::Audit(
            vec![entry(queued)],
            store.inner.queued_bytes.try_reserve(1).unwrap(),
        )) {
            Ok(()) => queued += 1,
            Err(mpsc_error) => {
                assert!(
                    matches!(mpsc_error, tokio::sync::mpsc::error::TrySendError::Full(_)),
                    "the writer is held, so the queue can only be full"
                );
                break;
            }
        }
    }
    assert!(queued > 0 && queued <= WRITER_QUEUE, "{queued}");

    let closing = store.clone();
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        closing.close();
        let _ = done_tx.send(());
    });
    // Lets close() meet the full queue (a try_send failed there, and the join then waited
    // forever); the test passes whatever the timing.
    std::thread::sleep(Duration::from_millis(100));
    release.send(()).unwrap();
    done.recv_timeout(Duration::from_secs(60))
        .expect("close() returns once the writer has drained the full queue");
    // Everything queued before the stop was written (the stop also signs a checkpoint).
    assert_eq!(store.audit_len(), before + queued as u64);
    store.close_and_release().unwrap();
}

/// Queues one audit entry, as the async handlers do.
fn record(store: &Store, e: AuditEntry) {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(store.audit(vec![e]));
}

#[test]
fn close_and_release_frees_the_directory_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..5 {
        let store = Store::open(dir.path(), options()).unwrap();
        record(&store, entry(round));
        store.close_and_release().unwrap();
        // sled itself, as another program would open it, without waiting.
        let db = keyspace::open_raw(dir.path())
            .unwrap_or_else(|e| panic!("round {round}: the directory is still locked: {e}"));
        drop(db);
        release::wait_unlocked(dir.path(), Instant::now() + RELEASE_WAIT).unwrap();
    }
}

#[test]
fn close_and_release_waits_for_the_other_handles() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let held = store.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = rx.recv();
        drop(held);
    });
    let closing = std::thread::spawn(move || store.close_and_release());
    tx.send(()).unwrap();
    closing.join().unwrap().unwrap();
    Store::open(dir.path(), options())
        .unwrap()
        .close_and_release()
        .unwrap();
}

#[test]
fn close_and_release_reports_a_handle_held_too_long() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let held = store.clone();
    let e = store
        .close_and_release_within(Duration::from_millis(200))
        .unwrap_err();
    assert!(
        e.to_string().contains("still in use by 1 other handle"),
        "{e}"
    );
    drop(held);
    release::wait_unlocked(dir.path(), Instant::now() + RELEASE_WAIT).unwrap();
}

#[test]
fn a_second_store_on_a_held_directory_names_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let e = Store::open(dir.path(), options()).err().expect("locked");
    assert!(
        e.to_string().contains("is in use by another process"),
        "{e}"
    );
    store.close_and_release().unwrap();
}

#[test]
fn ranges_after_the_largest_key_are_empty() {
    assert!(key_after(u64::MAX).as_slice() > u64::MAX.to_be_bytes().as_slice());
    assert_eq!(key_after(41), 42u64.to_be_bytes().to_vec());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    record(&store, entry(0));
    store.close();
    for after in [u64::MAX, u64::MAX - 1] {
        assert_eq!(store.submissions_after(after).count(), 0);
        assert_eq!(store.audit_after(after).count(), 0);
        assert_eq!(store.raw_events_after(after).count(), 0);
    }
    assert!(store.audit_after(0).count() > 0);
    store.close_and_release().unwrap();
}

#[test]
fn settled_returns_once_entries_queued_before_it_are_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let before = store.audit_len();
    let release = hold_writer(&store);
    // Queued behind the held writer, as a handler's read entry is when its reply goes out.
    record(&store, entry(0));
    assert_eq!(store.audit_len(), before, "the writer is held");
    let settling = store.clone();
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _ = done_tx.send(
            rt.block_on(settling.settled())
                .map(|()| settling.audit_len()),
        );
    });
    assert!(
        done.recv_timeout(Duration::from_millis(50)).is_err(),
        "settled() waits for the held writer"
    );
    release.send(()).unwrap();
    let len = done
        .recv_timeout(Duration::from_secs(60))
        .expect("settled() returns once the writer moves")
        .unwrap();
    assert_eq!(len, before + 1, "the entry queued before is applied");
    store.close_and_release().unwrap();
}

/// A change to be answered with a receipt is covered by a checkpoint signed in its own group's
/// flush (no flush of its own for the receipt); a change without is not, and a checkpoint only
/// shows once it is durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_answered_with_a_receipt_is_checkpointed_in_its_own_flush() {
    use crate::domain::{
        member::{Binding, BoundCertificate, MemberStatus, Role},
        validate::{self, Context},
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let member = crate::domain::member::Member {
        id: "EE-MFA".into(),
        state: "EE".into(),
        display_name: "EE-MFA".into(),
        roles: [Role::Publisher].into_iter().collect(),
        communities: vec![],
        status: MemberStatus::Active,
        bindings: vec![BoundCertificate {
            binding: Binding::CertSha256("00".repeat(32)),
            note: String::new(),
            issuer: None,
        }],
        created_at: String::new(),
        updated_at: String::new(),
        require_signed: false,
    };
    let actor = Arc::new(
        store
            .member(MemberOp::Register(member), Default::default())
            .await
            .unwrap(),
    );
    let content =
        crate::cli::content_from_yaml(include_str!("../../examples/policy_document.yaml")).unwrap();
    let kind = validate::content(
        &Context {
            registry: &store.registry(),
            catalogue: &store.catalogue(),
            now: time::OffsetDateTime::now_utc(),
            previous: None,
        },
        &content,
        "content",
    )
    .unwrap()
    .kind;
    let publish = |receipt: bool| {
        let op = ChangeOp::Publish {
            content: content.clone(),
            kind,
        };
        Change::new(op, None).with_receipt(receipt)
    };
    let covered = || {
        store
            .latest_checkpoint()
            .unwrap()
            .map_or(0, |c| c.tree_size)
    };
    store
        .change(actor.clone(), Default::default(), publish(false))
        .await
        .unwrap();
    assert!(covered() < store.audit_len(), "no checkpoint per change");
    store
        .change(actor.clone(), Default::default(), publish(true))
        .await
        .unwrap();
    assert_eq!(
        covered(),
        store.audit_len(),
        "signed with the change's group"
    );
    // A checkpoint stored but not yet flushed is not shown.
    let durable = store.inner.shared.audit_durable.load(Ordering::Acquire);
    store
        .inner
        .shared
        .audit_durable
        .store(durable - 1, Ordering::Release);
    assert!(
        covered() < durable,
        "a checkpoint beyond the durable entries shows"
    );
    store
        .inner
        .shared
        .audit_durable
        .store(durable, Ordering::Release);
    store.close();
}

/// An event stored before events named their audit entry (audit_sequence 0) demands the log as
/// it was at open, a fixed size: asking about it again and again (each ask adds an audit entry)
/// never demands more, so it cannot make the hub sign a checkpoint per ask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_without_its_entry_number_demands_the_log_as_opened() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || StoreOptions {
        fsync: false,
        check_on_start: false,
        ..options()
    };
    {
        let store = Store::open(dir.path(), opts()).unwrap();
        store.audit((0..5).map(entry).collect()).await;
        store.checkpoint().await.unwrap();
        let old = records::StoredEvent {
            sequence: 1,
            action: records::PUBLISHED.into(),
            submission: Some(Default::default()),
            acknowledgement: None,
            audit_sequence: 0,
        };
        store
            .inner
            .trees
            .events
            .insert(1u64.to_be_bytes(), codec::frame(&old))
            .unwrap();
        let numbered = records::StoredEvent {
            sequence: 2,
            audit_sequence: 3,
            ..old
        };
        store
            .inner
            .trees
            .events
            .insert(2u64.to_be_bytes(), codec::frame(&numbered))
            .unwrap();
        store.close();
    }
    let store = Store::open(dir.path(), opts()).unwrap();
    let at_open = store.audit_len();
    assert_eq!(store.audit_entries_covering(1).unwrap(), at_open);
    // A numbered event demands up to its own entry.
    assert_eq!(store.audit_entries_covering(2).unwrap(), 3);
    store.audit((0..3).map(entry).collect()).await;
    store.settled().await.unwrap();
    assert!(store.audit_len() > at_open);
    assert_eq!(store.audit_entries_covering(1).unwrap(), at_open);
    store.close();
}
