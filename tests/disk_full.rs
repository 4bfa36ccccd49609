//! A full disk, for real: the hub's home on a small tmpfs filled up.
//!
//! With the disk reserve (`store.min_free_mb`), changes are refused before the disk is full,
//! with RESOURCE_EXHAUSTED naming the disk; health `storage` says so, reads go on, and changes
//! are accepted again once space returns, without a restart.
//!
//! Without it, writes fail with a clear error and nothing partial; the hub stops itself (sled
//! cannot continue after an I/O error); a restart once space returns recovers everything
//! acknowledged and the sequence continues.
//!
//! Mounting a tmpfs needs root, which the project's machines and CI have; the tests fail
//! loudly rather than skipping where they cannot mount.
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
    // Incompressible (the store compresses): a run of SHA-256 blocks seeded by `i`.
    let mut data = Vec::with_capacity(256 * 1024);
    let mut block = Sha256::digest(i.to_be_bytes());
    while data.len() < 256 * 1024 {
        data.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
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
        ..Default::default()
    }
}

fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    path
}

/// A 24 MiB tmpfs in a temporary directory, unmounted on drop.
fn small_disk() -> (tempfile::TempDir, Mounted, PathBuf) {
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
    (dir, Mounted(mnt.clone()), mnt)
}

/// Fills the disk until `leave` bytes are free.
fn fill_until(dir: &Path, leave: u64) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while fs2::available_space(dir).unwrap() > leave + chunk.len() as u64 {
        f.write_all(&chunk).unwrap();
    }
    f.sync_all().unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_reserve_changes_are_refused_naming_the_disk_and_resume_when_space_returns() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let (_dir, _guard, mnt) = small_disk();
    let home = mnt.join("hub");
    init(&home);
    let hub = HubProcess::start_with(&home, &["--set", "store.min_free_mb=8"]);
    let mut client = hub.hub("EE-MFA").await;
    let first = client.publish(big_notice(0)).await.unwrap().into_inner();
    let mut health = HealthClient::new(hub.channel("CL-CSIRT").await.unwrap());
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "storage".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut next_status = async || {
        tokio::time::timeout(Duration::from_secs(20), watch.message())
            .await
            .expect("health changes in time")
            .unwrap()
            .unwrap()
            .status()
    };
    assert_eq!(next_status().await, ServingStatus::Serving);

    // 4 MiB free: under the 8 MiB reserve, not full.
    let filler = fill_until(&mnt, 4 * 1024 * 1024);
    let e = client.publish(big_notice(1)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    let data = home.join("data");
    assert!(
        e.message()
            .contains(&format!("the disk holding {}", data.display()))
            && e.message().contains("store.min_free_mb"),
        "{}",
        e.message()
    );
    assert_eq!(next_status().await, ServingStatus::NotServing);
    // Reads go on, a withdrawal (it brings nothing) is accepted, and the hub keeps running.
    let mut reader = hub.hub("CL-CSIRT").await;
    reader
        .get(GetRequest {
            id: first.id.clone(),
            revision: 0,
        })
        .await
        .unwrap();
    client
        .withdraw(cbm_hub::pb::WithdrawRequest {
            id: first.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut hub = hub;
    assert!(
        hub.child.try_wait().unwrap().is_none(),
        "the hub kept running"
    );
    // The refusal is audited with its cause.
    let mut audit =
        cbm_hub::pb::audit_client::AuditClient::new(hub.channel("HUB-ADMIN").await.unwrap());
    let page = audit
        .query(cbm_hub::pb::AuditQuery {
            action: "submission.publish".into(),
            outcome: "refused".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].reason, "resource_exhausted: disk_low");

    // Space returns: health says so, and changes are accepted again without a restart.
    std::fs::remove_file(filler).unwrap();
    assert_eq!(next_status().await, ServingStatus::Serving);
    client.publish(big_notice(2)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_cleanly_and_a_restart_recovers() {
    let (_dir, _guard, mnt) = small_disk();
    let home = mnt.join("hub");
    init(&home);

    // No reserve: the disk really fills up under sled.
    let no_reserve = ["--set", "store.min_free_mb=0"];
    let mut hub = HubProcess::start_with(&home, &no_reserve);
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
    let hub = HubProcess::start_with(&home, &no_reserve);
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
