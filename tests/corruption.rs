//! Damaged storage: a value that fails its checksum is never served (DATA_LOSS), and the start
//! of the hub refuses damaged data with a clear message.
mod common;

use cbm_hub::{
    feed::wire::Event,
    pb::{GetRequest, ListRequest, PublishRequest},
    service::{self, StartError},
};
use common::{TestHub, feed::request, samples};
use tonic::Code;

/// Flips one byte inside the stored value of event `seq` (the frame's checksum no longer matches).
fn damage_event(data_dir: &std::path::Path, seq: u64) {
    let db = sled::open(data_dir).unwrap();
    let events = db.open_tree("events").unwrap();
    let mut raw = events.get(seq.to_be_bytes()).unwrap().unwrap().to_vec();
    let i = raw.len() / 2;
    raw[i] ^= 0x40;
    events.insert(seq.to_be_bytes(), raw).unwrap();
    db.flush().unwrap();
}

#[tokio::test]
async fn damaged_values_are_never_served_and_the_start_check_names_them() {
    let mut t = TestHub::start().await;
    let mut ids = Vec::new();
    let mut ee = t.hub("EE-MFA").await;
    for i in 0..3 {
        let c = samples::envelope(&format!("n{i}"), "TLP:CLEAR", samples::notice());
        ids.push(
            ee.publish(PublishRequest {
                content: Some(c),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .id,
        );
    }
    t.hub.take().unwrap().stop().await.unwrap();
    damage_event(&t.config.data_dir, 2);

    // The start check refuses to serve, naming the damaged value.
    let Err(StartError::Damaged(problems)) = service::start(&t.config).await else {
        panic!("a damaged store must not start")
    };
    let all = problems.join("\n");
    assert!(
        all.contains("event 2") && all.contains("checksum mismatch"),
        "{all}"
    );

    // With the start check off, the damage is still never served: DATA_LOSS on every exit.
    t.config.store.check_on_start = false;
    t.hub = Some(service::start(&t.config).await.unwrap());
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
    t.stop().await;
}
