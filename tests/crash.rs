//! Crash safety: the real `cbm-hub serve` process is killed with SIGKILL at random moments while
//! publishers write; after every restart each acknowledged change is present and intact, the
//! feed runs gapless from 1, revisions and events agree, and a subscriber resumes exactly.
mod common;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use cbm_hub::{
    feed::wire::Event,
    pb::{GetRequest, PublishRequest, SubscribeRequest},
};
use common::{
    process::{HubProcess, init},
    samples,
};
use tonic::Code;

/// What the hub acknowledged: idempotency key -> (id, sequence, content hash).
type Acked = Arc<Mutex<BTreeMap<String, (String, u64, String)>>>;

/// Reads the whole feed as `member` until caught up: (sequence, id, revision) of every change.
async fn whole_feed(hub: &HubProcess, member: &str, after: u64) -> (Vec<(u64, String, u32)>, u64) {
    let mut feed = hub.feed(member).await;
    let req = SubscribeRequest {
        after_sequence: after,
        heartbeat_seconds: 1,
        ..Default::default()
    };
    let mut stream = feed.subscribe(req).await.unwrap().into_inner();
    let mut out = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let fields = msg.into_fields().unwrap();
        match fields.event {
            Some(Event::Change(c)) => {
                let s = c.submission.unwrap_or_default();
                out.push((fields.sequence, s.id, s.revision));
            }
            Some(Event::Heartbeat(h)) if fields.sequence == h.head => return (out, h.head),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hub");
    init(&home);
    let acked: Acked = Arc::default();
    let mut attempts = 0u64;
    let mut resume_cursor = 0u64;
    let mut resumed_seen: Vec<u64> = Vec::new();
    // Deterministic "random" kill times, so a failure can be reproduced.
    let kill_after_ms = [350u64, 900, 120, 1200, 50];
    for (round, wait) in kill_after_ms.iter().enumerate() {
        let hub = HubProcess::start(&home);
        // Check everything acknowledged so far survived the previous kill.
        // The whole feed, and the resumed subscriber, read together.
        let ((feed, head), (rest, _)) = tokio::join!(
            whole_feed(&hub, "CL-CSIRT", 0),
            whole_feed(&hub, "EE-CERT", resume_cursor)
        );
        let seqs: Vec<u64> = feed.iter().map(|f| f.0).collect();
        assert_eq!(
            seqs,
            (1..=head).collect::<Vec<_>>(),
            "round {round}: the feed runs gapless from 1"
        );
        let by_seq: BTreeMap<u64, &String> = feed.iter().map(|f| (f.0, &f.1)).collect();
        let mut client = hub.hub("CL-CSIRT").await;
        let so_far = acked.lock().unwrap().clone();
        for (key, (id, seq, hash)) in so_far {
            assert_eq!(
                by_seq.get(&seq),
                Some(&&id),
                "round {round}: acknowledged {key} at sequence {seq}"
            );
            let s = client
                .get(GetRequest {
                    id: id.clone(),
                    revision: 0,
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                (s.sequence, &s.content_hash),
                (seq, &hash),
                "round {round}: {key} intact"
            );
        }
        // The subscriber that was following resumes from its cursor and gets exactly the rest.
        resumed_seen.extend(rest.iter().map(|f| f.0));
        assert_eq!(
            resumed_seen,
            (1..=head).collect::<Vec<_>>(),
            "round {round}: resumed subscriber"
        );
        resume_cursor = head;

        // Publish concurrently, then kill the process in the middle of it.
        let mut tasks = Vec::new();
        for p in 0..4 {
            let mut client = hub
                .hub(["EE-MFA", "EE-CERT", "CL-MINREL", "EE-MFA"][p])
                .await;
            let acked = acked.clone();
            let base = attempts + p as u64 * 1_000_000;
            tasks.push(tokio::spawn(async move {
                for i in 0..10_000u64 {
                    let key = format!("r{round}-p{p}-{}", base + i);
                    let mut c = samples::envelope(&key, "TLP:CLEAR", samples::notice());
                    c.summary = key.clone();
                    let req = PublishRequest {
                        content: Some(c),
                        idempotency_key: key.clone(),
                        ..Default::default()
                    };
                    match client.publish(req).await {
                        Ok(r) => {
                            let r = r.into_inner();
                            acked
                                .lock()
                                .unwrap()
                                .insert(key, (r.id, r.sequence, r.content_hash));
                        }
                        // The process died: stop this publisher.
                        Err(s) => {
                            assert!(
                                matches!(
                                    s.code(),
                                    Code::Unavailable
                                        | Code::Unknown
                                        | Code::Internal
                                        | Code::Cancelled
                                ),
                                "{s:?}"
                            );
                            return;
                        }
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(*wait)).await;
        hub.kill();
        for t in tasks {
            t.await.unwrap();
        }
        attempts += 10_000;
    }
    // A last start: the same checks once more, and publishing continues the sequence.
    let hub = HubProcess::start(&home);
    let (feed, head) = whole_feed(&hub, "CL-CSIRT", 0).await;
    assert_eq!(
        feed.iter().map(|f| f.0).collect::<Vec<_>>(),
        (1..=head).collect::<Vec<_>>()
    );
    assert!(acked.lock().unwrap().len() as u64 <= head);
    let total = acked.lock().unwrap().len();
    assert!(total > 0, "some publishes were acknowledged between kills");
    eprintln!(
        "{total} acknowledged publishes survived {} kills; head {head}",
        kill_after_ms.len()
    );
    let mut client = hub.hub("EE-MFA").await;
    let r = client
        .publish(PublishRequest {
            content: Some(samples::envelope("after", "TLP:CLEAR", samples::notice())),
            idempotency_key: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.sequence, head + 1);
}
