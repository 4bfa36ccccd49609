//! Damaged storage: a value that fails its checksum is never served (DATA_LOSS); damage before
//! the seal of a clean stop is found by the background check and reported (health
//! `integrity`, metrics); and the next start checks everything and refuses to serve it, with a
//! clear message.
mod common;

use cbm_hub::{
    feed::wire::Event,
    pb::{GetRequest, ListRequest, PublishRequest},
    service::{self, StartError},
    store::keyspace::{self, Rec},
};
use common::{TestHub, feed::request, samples};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Flips one byte inside the stored value of event `seq` (the frame's checksum no longer matches).
fn damage_event(data_dir: &std::path::Path, seq: u64) {
    let db = keyspace::open_raw(data_dir).unwrap();
    let records = db.open_tree(keyspace::TREE).unwrap();
    let key = Rec::Events.key(&seq.to_be_bytes());
    let mut raw = records.get(&key).unwrap().unwrap().to_vec();
    let i = raw.len() / 2;
    raw[i] ^= 0x40;
    records.insert(key, raw).unwrap();
    db.flush().unwrap();
}

#[tokio::test]
async fn damage_before_the_seal_is_reported_in_the_background_never_served_and_refused_at_the_next_start()
 {
    let mut t = TestHub::start().await;
    let mut ids = Vec::new();
    let mut ee = t.hub("EE-MFA").await;
    for i in 0..3 {
        let c = samples::envelope(&format!("n{i}"), "TLP:CLEAR", samples::notice());
        ids.push(
            ee.publish(PublishRequest {
                content: Some(c),
                idempotency_key: String::new(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .id,
        );
    }
    t.hub.take().unwrap().stop().await.unwrap();
    damage_event(&t.config.data_dir, 2);

    // The clean stop sealed the store: the start checks only what followed the seal (nothing)
    // and serves; the background check then finds the damage and reports it.
    t.hub = Some(service::start(&t.config).await.unwrap());
    let start = t.store().integrity_now();
    assert_eq!((start.start, start.start_events), ("sealed", 0));
    let mut integrity = t.store().integrity();
    let found = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        integrity.wait_for(|i| !i.problems.is_empty()),
    )
    .await
    .expect("the background check reports the damage")
    .unwrap()
    .clone();
    let all = found.problems.join("\n");
    assert!(
        all.contains("event 2") && all.contains("checksum mismatch"),
        "{all}"
    );
    // Health follows the status in a task of its own: watched until it says so.
    let mut health = HealthClient::new(t.channel("CL-CSIRT").await)
        .watch(HealthCheckRequest {
            service: service::INTEGRITY_HEALTH.into(),
        })
        .await
        .unwrap()
        .into_inner();
    loop {
        let status = tokio::time::timeout(std::time::Duration::from_secs(30), health.message())
            .await
            .expect("health integrity turns NOT_SERVING")
            .unwrap()
            .expect("the watch stays open")
            .status;
        if status == ServingStatus::NotServing as i32 {
            break;
        }
    }
    drop(health);
    let hub = t.hub.as_ref().unwrap();
    let metrics = hub.metrics.render(&hub.store);
    let problems = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cbm_hub_integrity_problems "))
        .expect("integrity_problems reported");
    assert_eq!(problems.parse::<usize>().unwrap(), found.problems.len());

    // Damage is still never served: DATA_LOSS on every exit.
    let mut reader = t.hub("CL-CSIRT").await;
    let e = reader
        .get(GetRequest {
            id: ids[1].clone(),
            revision: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::DataLoss, "{e:?}");
    assert!(e.message().contains("event 2"), "{}", e.message());
    reader
        .get(GetRequest {
            id: ids[0].clone(),
            revision: 0,
        })
        .await
        .unwrap();
    assert_eq!(
        reader
            .list(ListRequest::default())
            .await
            .unwrap_err()
            .code(),
        Code::DataLoss
    );
    let mut stream = common::feed::subscribe(&t, "CL-CSIRT", request(0)).await;
    let first = stream
        .message()
        .await
        .unwrap()
        .unwrap()
        .into_fields()
        .unwrap();
    assert!(matches!(first.event, Some(Event::Change(_))) && first.sequence == 1);
    let e = loop {
        match stream.message().await {
            Ok(Some(m)) => assert_ne!(m.into_fields().unwrap().sequence, 2, "damaged event served"),
            Ok(None) => panic!("ended without a status"),
            Err(e) => break e,
        }
    };
    assert_eq!(e.code(), Code::DataLoss);
    drop(stream);

    // Damage is known: the stop does not seal, and the next start checks everything and
    // refuses to serve, naming the damaged value.
    t.hub.take().unwrap().stop().await.unwrap();
    let Err(StartError::Damaged(problems)) = service::start(&t.config).await else {
        panic!("a damaged store must not start")
    };
    let all = problems.join("\n");
    assert!(
        all.contains("event 2") && all.contains("checksum mismatch"),
        "{all}"
    );

    // With the start check off, the hub serves what is intact.
    t.config.store.check_on_start = false;
    t.hub = Some(service::start(&t.config).await.unwrap());
    t.stop().await;
}
