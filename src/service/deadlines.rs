//! Fires at the deadlines of ping campaigns, so the hub records when each one closes.
//!
//! Deadlines are stored with their campaigns; at start the hub hands every open campaign to
//! [`spawn`], so a deadline that passed while the hub was down fires at once. The wall-clock
//! deadline is turned into a tokio instant when it is watched, which is also what lets the
//! tests run days of deadlines in paused tokio time.
use std::{collections::BTreeSet, future::Future};

use time::OffsetDateTime;
use tokio::{
    sync::mpsc,
    task::JoinHandle,
    time::{Instant, sleep_until},
};
use tokio_util::sync::CancellationToken;

/// Where new deadlines are sent.
#[derive(Clone)]
pub struct Deadlines {
    tx: mpsc::UnboundedSender<(String, OffsetDateTime)>,
}

impl Deadlines {
    /// Watches `id`'s deadline (watching an id twice fires it once more, which closing ignores).
    pub fn watch(&self, id: String, deadline: OffsetDateTime) {
        let _ = self.tx.send((id, deadline));
    }

    /// Runs `commit` in a task of its own and watches `deadline` for the id it committed, then
    /// returns its result. A caller who goes away mid-call cancels its handler, not this task:
    /// the writer may commit the change all the same, and its deadline is then watched at once
    /// rather than only from the next start.
    pub async fn commit_watched<T, E>(
        &self,
        commit: impl Future<Output = Result<T, E>> + Send + 'static,
        deadline: OffsetDateTime,
        id: impl FnOnce(&T) -> String + Send + 'static,
    ) -> Result<Result<T, E>, tokio::task::JoinError>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let deadlines = self.clone();
        tokio::spawn(async move {
            let result = commit.await;
            if let Ok(committed) = &result {
                deadlines.watch(id(committed), deadline);
            }
            result
        })
        .await
    }
}

/// Tokio instant of a wall-clock deadline (now if it has passed).
fn instant_of(deadline: OffsetDateTime) -> Instant {
    let left = deadline - OffsetDateTime::now_utc();
    Instant::now() + left.try_into().unwrap_or_default()
}

/// Runs `close(id)` at each deadline, in deadline order, until `shutdown`.
pub fn spawn<F, Fut>(
    initial: Vec<(String, OffsetDateTime)>,
    close: F,
    shutdown: CancellationToken,
) -> (Deadlines, JoinHandle<()>)
where
    F: Fn(String) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut due: BTreeSet<(Instant, String)> = initial
        .into_iter()
        .map(|(id, d)| (instant_of(d), id))
        .collect();
    let task = tokio::spawn(async move {
        loop {
            let next = due.first().map(|(at, _)| *at);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                added = rx.recv() => match added {
                    Some((id, deadline)) => {
                        due.insert((instant_of(deadline), id));
                    }
                    None => return,
                },
                _ = async { sleep_until(next.unwrap_or_else(Instant::now)).await }, if next.is_some() => {
                    if let Some((_, id)) = due.pop_first() {
                        close(id).await;
                    }
                }
            }
        }
    });
    (Deadlines { tx }, task)
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_each_deadline_at_its_time_in_order() {
        let start = Instant::now();
        let fired: Arc<Mutex<Vec<(String, Duration)>>> = Arc::default();
        let log = fired.clone();
        let now = OffsetDateTime::now_utc();
        let hours = |h: i64| now + time::Duration::hours(h);
        let shutdown = CancellationToken::new();
        let (deadlines, task) = spawn(
            vec![
                ("day".into(), hours(24)),
                // Passed while the hub was down: fires at once.
                ("missed".into(), hours(-2)),
            ],
            move |id| {
                let log = log.clone();
                async move { log.lock().unwrap().push((id, start.elapsed())) }
            },
            shutdown.clone(),
        );
        deadlines.watch("hour".into(), hours(1));
        deadlines.watch("week".into(), hours(24 * 7));

        tokio::time::sleep(Duration::from_secs(25 * 3600)).await;
        let got = fired.lock().unwrap().clone();
        let names: Vec<_> = got.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(names, ["missed", "hour", "day"]);
        let near = |d: Duration, h: u64| {
            d.abs_diff(Duration::from_secs(h * 3600)) < Duration::from_secs(1)
        };
        assert!(
            near(got[0].1, 0) && near(got[1].1, 1) && near(got[2].1, 24),
            "{got:?}"
        );

        tokio::time::sleep(Duration::from_secs(7 * 24 * 3600)).await;
        assert_eq!(fired.lock().unwrap().len(), 4);
        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_commit_whose_caller_went_away_is_still_watched() {
        let fired: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = fired.clone();
        let shutdown = CancellationToken::new();
        let (deadlines, task) = spawn(
            vec![],
            move |id| {
                let log = log.clone();
                async move { log.lock().unwrap().push(id) }
            },
            shutdown.clone(),
        );
        // The store answers only when the test says so, as a writer busy with a group would.
        let (commit_done, committed) = tokio::sync::oneshot::channel::<Result<String, ()>>();
        let deadline = OffsetDateTime::now_utc() + time::Duration::hours(1);
        let call = deadlines.commit_watched(
            async move { committed.await.unwrap() },
            deadline,
            |id: &String| id.clone(),
        );
        // The caller's handler is polled once (the change is on its way) and then dropped: the
        // client went away mid-call.
        let gone = tokio::time::timeout(Duration::ZERO, call).await;
        assert!(gone.is_err(), "the call was still waiting for the store");
        // The store commits the campaign all the same.
        commit_done.send(Ok("campaign-1".into())).unwrap();

        tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
        assert_eq!(*fired.lock().unwrap(), ["campaign-1"]);
        // A failed commit watches nothing.
        let failed = deadlines
            .commit_watched(async { Err::<String, ()>(()) }, deadline, |id| id.clone())
            .await
            .unwrap();
        assert!(failed.is_err());
        tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
        assert_eq!(fired.lock().unwrap().len(), 1);
        shutdown.cancel();
        task.await.unwrap();
    }
}
