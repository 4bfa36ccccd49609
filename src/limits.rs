//! Per-member admission: a request-rate quota (token bucket) and a cap on open subscriptions,
//! so that one member's flood cannot starve the others.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// The quotas of one hub.
#[derive(Debug)]
pub struct Admission {
    /// Sustained requests per second per member.
    rate: f64,
    /// Requests a member may make at once before the rate applies.
    burst: f64,
    max_subscriptions: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
    subscriptions: Arc<Mutex<HashMap<String, usize>>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// An open subscription's place in its member's cap; freed on drop.
#[derive(Debug)]
pub struct SubscriptionSlot {
    member: String,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for SubscriptionSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.member) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.member);
            }
        }
    }
}

impl Admission {
    pub fn new(rate_per_second: u32, burst: u32, max_subscriptions: usize) -> Admission {
        Admission {
            rate: f64::from(rate_per_second.max(1)),
            burst: f64::from(burst.max(1)),
            max_subscriptions,
            buckets: Mutex::new(HashMap::new()),
            subscriptions: Arc::default(),
        }
    }

    /// Takes one request from `member`'s quota; Err(wait) says when the next one is allowed.
    pub fn admit(&self, member: &str) -> Result<(), Duration> {
        self.admit_at(member, Instant::now())
    }

    fn admit_at(&self, member: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(member.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }

    /// A place for one more open subscription of `member`, if under its cap.
    pub fn subscription(&self, member: &str) -> Option<SubscriptionSlot> {
        let mut counts = self.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(member.to_string()).or_insert(0);
        if *n >= self.max_subscriptions {
            return None;
        }
        *n += 1;
        Some(SubscriptionSlot {
            member: member.to_string(),
            counts: self.subscriptions.clone(),
        })
    }

    pub fn max_subscriptions(&self) -> usize {
        self.max_subscriptions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate_per_member() {
        let a = Admission::new(10, 3, 2);
        let t0 = Instant::now();
        for _ in 0..3 {
            a.admit_at("A", t0).unwrap();
        }
        let wait = a.admit_at("A", t0).unwrap_err();
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Another member is unaffected.
        a.admit_at("B", t0).unwrap();
        // After 100 ms one more token.
        a.admit_at("A", t0 + Duration::from_millis(100)).unwrap();
        assert!(a.admit_at("A", t0 + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn subscription_slots_are_capped_and_freed() {
        let a = Admission::new(10, 10, 2);
        let s1 = a.subscription("A").unwrap();
        let _s2 = a.subscription("A").unwrap();
        assert!(a.subscription("A").is_none());
        assert!(a.subscription("B").is_some());
        drop(s1);
        assert!(a.subscription("A").is_some());
    }
}
