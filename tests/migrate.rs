//! `cbm-hub migrate`: a data directory of layout version 1 (one sled tree per record kind) is
//! refused at start with a message naming the command, and the command converts it, keeping
//! the old directory as a backup, so that the hub serves everything it held.
mod common;

use std::{path::Path, time::Duration};

use cbm_hub::{
    pb::{GetRequest, ReviseRequest, WithdrawRequest},
    service::{self, StartError},
    store::{
        Store, StoreError, StoreOptions,
        keyspace::{self, Rec},
    },
};
use common::{TestHub, process::BIN, publish, samples};

/// Opens the stopped hub's sled store, waiting (bounded) for the lock its last handle held.
fn open_sled(dir: &Path) -> sled::Db {
    for _ in 0..150 {
        match keyspace::open_raw(dir) {
            Ok(db) => return db,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    panic!("{} still locked after 3 s", dir.display());
}

/// Rewrites a store into layout version 1 as the previous builds wrote it: a sled directory
/// made with sled's defaults (no compression), each record kind in a tree of its own under the
/// old tree names, and `format` = "1" in the `meta` tree; the audit key files kept.
fn to_layout1(dir: &Path) {
    let old_dir = dir.with_file_name("old-layout");
    {
        let db = open_sled(dir);
        let records = db.open_tree(keyspace::TREE).unwrap();
        let old = sled::open(&old_dir).unwrap();
        for rec in Rec::ALL {
            let Some(name) = rec.layout1_tree() else {
                continue;
            };
            let tree = old.open_tree(name).unwrap();
            for item in records.scan_prefix([rec as u8]) {
                let (k, v) = item.unwrap();
                tree.insert(&k[1..], v).unwrap();
            }
        }
        old.open_tree("meta")
            .unwrap()
            .insert("format", "1")
            .unwrap();
        old.open_tree("meta").unwrap().remove("revised").unwrap();
        old.flush().unwrap();
    }
    for key in ["audit-signing-key.pk8", "audit-signing-key.pub"] {
        std::fs::copy(dir.join(key), old_dir.join(key)).unwrap();
    }
    std::fs::remove_dir_all(dir).unwrap();
    // sled's threads close the old files a moment after the last handle is dropped.
    for _ in 0..150 {
        if std::fs::rename(&old_dir, dir).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("could not put the layout-1 directory in place");
}

/// Everything a store holds that a migration must keep: the events and the audit log, as
/// stored (checksummed frames decoded).
fn contents(dir: &Path) -> (Vec<Vec<u8>>, Vec<cbm_hub::pb::AuditEntry>) {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    let events = store
        .raw_events_after(0)
        .map(|e| e.unwrap().payload().to_vec())
        .collect();
    let audit = store.audit_after(0).map(Result::unwrap).collect();
    store.close_and_release().unwrap();
    (events, audit)
}

fn migrate(dir: &Path) -> std::process::Output {
    std::process::Command::new(BIN)
        .arg("migrate")
        .arg("--data")
        .arg(dir)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout1_directory_is_refused_then_migrated_with_a_backup() {
    let mut t = TestHub::start().await;
    let clear = publish(
        &t,
        "EE-MFA",
        samples::envelope("c", "TLP:CLEAR", samples::notice()),
    )
    .await;
    let mut amber = samples::envelope("a", "TLP:AMBER", samples::notice());
    amber.recipients = vec!["CL-CSIRT".into()];
    let amber = publish(&t, "EE-MFA", amber).await;
    let mut ee = t.hub("EE-MFA").await;
    ee.revise(ReviseRequest {
        id: clear.id.clone(),
        content: Some(samples::envelope("c v2", "TLP:CLEAR", samples::notice())),
        expected_revision: 1,
        idempotency_key: String::new(),
        ..Default::default()
    })
    .await
    .unwrap();
    ee.withdraw(WithdrawRequest {
        id: amber.id.clone(),
        reason: "superseded".into(),
        expected_revision: 1,
        idempotency_key: String::new(),
        ..Default::default()
    })
    .await
    .unwrap();
    t.hub.take().unwrap().stop().await.unwrap();
    let dir = t.config.data_dir.clone();
    let before = contents(&dir);
    assert_eq!(before.0.len(), 4);
    to_layout1(&dir);

    // The start refuses the old layout, naming the command that converts it.
    match service::start(&t.config).await {
        Err(StartError::Store(StoreError::Layout(m))) => {
            assert!(m.contains("cbm-hub migrate --data"), "{m}")
        }
        other => panic!("a layout-1 directory must be refused: {:?}", other.err()),
    }

    let out = migrate(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let backup = dir.with_file_name("data.layout1-backup");
    assert!(stdout.contains("layout1-backup"), "{stdout}");
    // The backup is the old directory, still of layout 1 with its trees (and uncompressed).
    {
        let old = sled::open(&backup).unwrap();
        let names = old.tree_names();
        assert!(names.iter().any(|n| n.as_ref() == b"events"));
        assert!(
            !names
                .iter()
                .any(|n| n.as_ref() == keyspace::TREE.as_bytes())
        );
    }
    // The new directory holds the same events and audit log, intact, chain and checkpoints.
    assert_eq!(contents(&dir), before);

    std::fs::remove_dir_all(&backup).unwrap();

    // A second run finds nothing of layout 1 to migrate and changes nothing.
    let again = migrate(&dir);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("not a data directory of layout version 1"),
        "{stderr}"
    );
    assert_eq!(contents(&dir), before);

    // The hub serves it: the latest revision, and the withdrawal to its recipient.
    t.hub = Some(
        service::start(&t.config)
            .await
            .expect("start after migrate"),
    );
    let got = t
        .hub("CL-CSIRT")
        .await
        .get(GetRequest {
            id: clear.id.clone(),
            revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.revision, 2);
    let gone = t
        .hub("CL-CSIRT")
        .await
        .get(GetRequest {
            id: amber.id.clone(),
            revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(gone.status, "withdrawn");
    // New changes continue the feed from where it was.
    let next = publish(
        &t,
        "EE-MFA",
        samples::envelope("n", "TLP:CLEAR", samples::notice()),
    )
    .await;
    assert_eq!(next.sequence, 5);
    t.stop().await;
}
