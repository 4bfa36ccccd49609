//! A full disk, for real: the hub's home on a small tmpfs filled up. Writes fail with a clear
//! error and nothing partial; the hub stops itself (sled cannot continue after an I/O error);
//! a restart once space returns recovers everything acknowledged and the sequence continues.
//!
//! Mounting a tmpfs needs root, which the project's machines and CI have; the test fails loudly
//! rather than skipping where it cannot mount.
mod common;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use cbm_hub::pb::{GetRequest, PublishRequest, SubscribeRequest, feed_client::FeedClient};
use common::{
    process::{HubProcess, init},
    samples,
};
use sha2::{Digest, Sha256};
use tonic::Code;

struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn big_notice(i: usize) -> PublishRequest {
    let data = vec![i as u8; 256 * 1024];
    let mut c = samples::envelope(&format!("big {i}"), "TLP:CLEAR", samples::notice());
    c.attachments = vec![cbm_hub::pb::Attachment {
        name: "a.bin".into(),
        media_type: "application/octet-stream".into(),
        sha256: hex::encode(Sha256::digest(&data)),
        content: data.into(),
    }];
    PublishRequest {
        content: Some(c),
        idempotency_key: format!("big-{i}"),
    }
}

fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_cleanly_and_a_restart_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "this test mounts a small tmpfs and needs root"
    );
    let _guard = Mounted(mnt.clone());
    let home = mnt.join("hub");
    init(&home);

    let mut hub = HubProcess::start(&home);
    let mut client = hub.hub("EE-MFA").await;
    let mut acked = Vec::new();
    for i in 0..3 {
        acked.push(client.publish(big_notice(i)).await.unwrap().into_inner());
    }
    let filler = fill(&mnt);
    let mut failure = None;
    for i in 3..60 {
        match client.publish(big_notice(i)).await {
            Ok(r) => acked.push(r.into_inner()),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let e = failure.expect("a full disk fails a publish");
    assert!(matches!(e.code(), Code::Unavailable), "{e:?}");
    assert!(e.message().contains("not acknowledged"), "{}", e.message());
    // The hub stops itself, with a non-zero status a supervisor acts on.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = hub.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the hub did not stop after its storage failed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success());
    drop(hub);

    // Space returns; a restart recovers: integrity check passes (the start runs it), every
    // acknowledged change is intact, the feed is gapless, and publishing continues.
    std::fs::remove_file(filler).unwrap();
    let hub = HubProcess::start(&home);
    let mut reader = hub.hub("CL-CSIRT").await;
    for r in &acked {
        let s = reader
            .get(GetRequest {
                id: r.id.clone(),
                revision: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((s.sequence, &s.content_hash), (r.sequence, &r.content_hash));
    }
    let mut feed = FeedClient::new(hub.channel("CL-CSIRT").await.unwrap());
    let mut stream = feed
        .subscribe(SubscribeRequest {
            heartbeat_seconds: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut seqs = Vec::new();
    let head = loop {
        let f = stream
            .message()
            .await
            .unwrap()
            .unwrap()
            .into_fields()
            .unwrap();
        match f.event {
            Some(cbm_hub::feed::wire::Event::Heartbeat(h)) if f.sequence == h.head => break h.head,
            Some(cbm_hub::feed::wire::Event::Change(_)) => seqs.push(f.sequence),
            _ => {}
        }
    };
    assert_eq!(seqs, (1..=head).collect::<Vec<_>>());
    let mut client = hub.hub("EE-MFA").await;
    let next = client.publish(big_notice(1000)).await.unwrap().into_inner();
    assert_eq!(next.sequence, head + 1);
}
