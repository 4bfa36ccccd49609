//! The Feed service: authenticate, check the request, start the subscription task.
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::auth::{Caller, refused};
use crate::{
    audit::bound::token,
    domain::{Invalid, principal::Action},
    feed::{
        filter::Filter,
        sink::{self, SinkStream},
        stream::{self, Subscription},
    },
    metrics::FeedMetrics,
    pb::{self, feed_server::Feed},
    store::Store,
};

/// Messages buffered per subscriber between its task and the connection, at most, and at most
/// `feed::sink::SUBSCRIBER_BUFFER_BYTES` of them (or one, if larger). Small: a subscriber that
/// stops reading is served from storage when it comes back, not from memory.
const SUBSCRIBER_BUFFER: usize = 32;

#[derive(Clone)]
pub struct FeedService {
    pub store: Store,
    pub shutdown: CancellationToken,
    pub metrics: FeedMetrics,
}

#[tonic::async_trait]
impl Feed for FeedService {
    type SubscribeStream = SinkStream;

    async fn subscribe(
        &self,
        req: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let mut caller = Caller::of(&self.store, &req);
        let r = req.into_inner();
        let result = self.start(&mut caller, &r);
        let mut entry = caller.entry("feed.subscribe");
        entry.detail = describe(&r);
        caller
            .record(match &result {
                Ok(_) => entry,
                Err(status) => refused(entry, status),
            })
            .await;
        result.map(Response::new)
    }
}

impl FeedService {
    fn start(&self, caller: &mut Caller, r: &pb::SubscribeRequest) -> Result<SinkStream, Status> {
        let who = caller.authenticate(Action::Read)?;
        let filter = Filter::parse(r)?;
        let heartbeat = match r.heartbeat_seconds {
            0 => 15,
            n @ 1..=300 => n,
            n => {
                return Err(
                    Invalid::one("heartbeat_seconds", format!("{n} is outside 1..=300")).into(),
                );
            }
        };
        let head = self.store.head();
        let cursor = if r.from_now { head } else { r.after_sequence };
        if cursor > head {
            return Err(Invalid::one(
                "after_sequence",
                format!("{cursor} is beyond the hub's head {head}"),
            )
            .into());
        }
        let slot = match caller.conn() {
            Some(conn) => Some(conn.admission.subscription(&who.member.id).ok_or_else(|| {
                Status::resource_exhausted(format!(
                    "member {} already has {} open subscriptions, the most allowed; close one first",
                    who.member.id,
                    conn.admission.max_subscriptions()
                ))
            })?),
            None => None,
        };
        let (tx, rx) = sink::channel(SUBSCRIBER_BUFFER, sink::SUBSCRIBER_BUFFER_BYTES);
        let sub = Subscription {
            store: self.store.clone(),
            binding: who.bound_by,
            member: who.member,
            filter,
            cursor,
            announce: r.from_now,
            heartbeat: Duration::from_secs(u64::from(heartbeat)),
            shutdown: self.shutdown.clone(),
            origin: caller.origin.clone(),
            conn: caller.conn().cloned(),
            _slot: slot,
            _open: self.metrics.subscriber(),
            metrics: self.metrics.clone(),
        };
        tokio::spawn(stream::run(sub, tx));
        Ok(rx)
    }
}

/// The subscription as an auditor reads it: the cursor and the filters that are set.
fn describe(r: &pb::SubscribeRequest) -> String {
    let mut parts = vec![if r.from_now {
        "from now".to_string()
    } else {
        format!("after {}", r.after_sequence)
    }];
    for (name, values) in [
        ("kinds", &r.kinds),
        ("states", &r.states),
        ("publishers", &r.publishers),
        ("communities", &r.communities),
        ("tlp", &r.tlp),
        ("cbm_refs", &r.cbm_refs),
    ] {
        if !values.is_empty() {
            // Values come from the request, valid or not: each is kept only as a plain token
            // (else a marker), and only the first few are listed.
            let mut shown: Vec<String> = values.iter().take(8).map(|v| token(v)).collect();
            if values.len() > 8 {
                shown.push(format!("and {} more", values.len() - 8));
            }
            parts.push(format!("{name}={}", shown.join(",")));
        }
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_reads_as_its_cursor_and_set_filters() {
        let r = pb::SubscribeRequest {
            after_sequence: 42,
            kinds: vec!["notice".into(), "point_of_contact".into()],
            tlp: vec!["TLP:AMBER".into()],
            ..Default::default()
        };
        assert_eq!(
            describe(&r),
            "after 42; kinds=notice,point_of_contact; tlp=TLP:AMBER"
        );
        let now = pb::SubscribeRequest {
            from_now: true,
            ..Default::default()
        };
        assert_eq!(describe(&now), "from now");
        let hostile = pb::SubscribeRequest {
            kinds: vec!["x".repeat(100_000), "a\u{1b}[2J".into()],
            states: (0..20).map(|i| format!("S{i}")).collect(),
            ..Default::default()
        };
        let d = describe(&hostile);
        assert!(d.len() < 600, "{d}");
        assert!(
            d.contains("kinds=invalid value, 100000 bytes, sha256:"),
            "{d}"
        );
        assert!(!d.contains('\u{1b}') && d.contains("S7,and 12 more"), "{d}");
    }
}
