//! Large values are on stable storage before they are acknowledged: sled writes them (and any
//! page over about 128 KiB) to files under `blobs/` that it never fsyncs, so the group commit
//! fsyncs them. Observed through the store's fsync observer, and round-tripped over mTLS.
mod common;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use cbm_hub::pb::{self, GetRequest, PublishRequest};
use common::{TestHub, samples};
use sha2::{Digest, Sha256};

/// Bytes that occur nowhere else in the store.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// One fsync as the observer saw it.
#[derive(Debug, Clone)]
struct Synced {
    path: PathBuf,
    /// The store's durable feed head at that moment: it moves to a group's last sequence after
    /// the group's fsyncs and before its callers are answered.
    head: u64,
    /// Whether the file holds the attachment's bytes.
    holds_attachment: bool,
}

#[tokio::test]
async fn a_300_kib_attachment_is_fsynced_before_its_publish_is_acknowledged() {
    let mut t = TestHub::start().await;
    let bytes = pattern(300 * 1024);
    let mut content = samples::envelope("Strategy", "TLP:CLEAR", samples::policy_document());
    content.attachments = vec![pb::Attachment {
        name: "strategy.pdf".into(),
        media_type: "application/pdf".into(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        content: bytes.clone().into(),
    }];

    let store = t.store().clone();
    let seen: Arc<Mutex<Vec<Synced>>> = Arc::default();
    let (log, probe, needle) = (seen.clone(), store.clone(), bytes.clone());
    store.observe_syncs(Some(Arc::new(move |path: &Path| {
        let holds_attachment = path.parent().is_some_and(|d| d.ends_with("blobs"))
            && std::fs::read(path).is_ok_and(|b| contains(&b, &needle));
        log.lock().unwrap().push(Synced {
            path: path.to_path_buf(),
            head: probe.head(),
            holds_attachment,
        });
    })));
    let r = t
        .hub("EE-MFA")
        .await
        .publish(PublishRequest {
            content: Some(content.clone()),
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // The observer holds a handle to the store: removed, so that the hub can close.
    store.observe_syncs(None);
    drop(store);

    let seen = seen.lock().unwrap().clone();
    let data = &t.config.data_dir;
    let blob = seen
        .iter()
        .position(|s| s.holds_attachment)
        .unwrap_or_else(|| panic!("no fsynced blob file holds the attachment: {seen:?}"));
    // Synced while the publish was not yet durable, hence not yet acknowledged (a sync after
    // the answer would see the head at its sequence); then, still before the answer, the
    // directory naming the blob and the data file that refers to it.
    assert!(seen[blob].head < r.sequence, "{seen:?}");
    let after: Vec<_> = seen[blob..]
        .iter()
        .filter(|s| s.head < r.sequence)
        .collect();
    assert!(
        after.iter().any(|s| s.path == data.join("blobs")),
        "{seen:?}"
    );
    assert!(after.iter().any(|s| s.path == data.join("db")), "{seen:?}");

    // The attachment round-trips over mTLS, and again after a restart (read from the blob).
    for round in ["before", "after"] {
        if round == "after" {
            t.restart().await;
        }
        let got = t
            .hub("CL-MINREL")
            .await
            .get(GetRequest {
                id: r.id.clone(),
                revision: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let got = got.content.expect("content");
        assert_eq!(got.attachments.len(), 1, "{round} the restart");
        assert!(got.attachments[0].content == bytes, "{round} the restart");
        assert_eq!(got, content, "{round} the restart");
    }
    t.stop().await;
}
