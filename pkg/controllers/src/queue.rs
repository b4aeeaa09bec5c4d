//! The controllers' work queue, with client-go workqueue semantics: a queued key is queued once
//! however often it is added, a key is never handed to two workers at once, a key added while
//! it is processed is processed again afterwards, delayed adds (the earliest pending one wins),
//! per-key exponential backoff for failed keys (forgotten on success) — and the worker-pool
//! runner every controller uses (N workers, periodic resync of all keys). A poisoned lock (a
//! panic while it was held) is recovered and logged (`util::lock`), never taken for an empty
//! queue.

use crate::controller::Action;
use crate::util::lock;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::{Debug, Display};
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

struct State<T> {
    queue: VecDeque<T>,
    /// Keys waiting to be processed (queued, or re-added while processing).
    dirty: HashSet<T>,
    processing: HashSet<T>,
    /// Pending delayed adds: when each fires.
    delayed: HashMap<T, Instant>,
    /// Consecutive failures per key (for the backoff).
    failures: HashMap<T, u32>,
}

/// A work queue of keys (`namespace/name` strings or `(namespace, name)` pairs).
pub struct Queue<T> {
    state: Mutex<State<T>>,
    notify: Notify,
    base_delay: Duration,
    max_delay: Duration,
}

impl<T: Hash + Eq + Clone + Send + Sync + 'static> Queue<T> {
    /// A queue whose failed keys back off like client-go's default per-item limiter:
    /// 5 ms doubling up to 1000 s.
    pub fn new() -> Arc<Self> {
        Self::with_backoff(Duration::from_millis(5), Duration::from_secs(1000))
    }

    /// A queue whose failed keys wait `base`, then twice as long after each further failure,
    /// at most `max` (`base == max` retries at a fixed pace).
    pub fn with_backoff(base: Duration, max: Duration) -> Arc<Self> {
        Arc::new(Queue {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                delayed: HashMap::new(),
                failures: HashMap::new(),
            }),
            notify: Notify::new(),
            base_delay: base,
            max_delay: max.max(base),
        })
    }

    /// Queues `key` unless it is already waiting; a key being processed is queued again when
    /// its worker calls [`Queue::done`].
    pub fn add(&self, key: T) {
        let mut st = lock(&self.state);
        if !st.dirty.insert(key.clone()) || st.processing.contains(&key) {
            return;
        }
        st.queue.push_back(key);
        drop(st);
        self.notify.notify_one();
    }

    /// Queues `key` after `delay`; when an add of the same key is already pending, the earlier
    /// of the two wins.
    pub fn add_after(self: &Arc<Self>, key: T, delay: Duration) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let at = Instant::now() + delay;
        {
            let mut st = lock(&self.state);
            match st.delayed.get(&key) {
                Some(pending) if *pending <= at => return,
                _ => {
                    st.delayed.insert(key.clone(), at);
                }
            }
        }
        let q = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let fire = {
                let mut st = lock(&q.state);
                let due = st.delayed.get(&key) == Some(&at);
                if due {
                    st.delayed.remove(&key);
                }
                due
            };
            if fire {
                q.add(key);
            }
        });
    }

    /// Queues `key` again after its backoff (one more failure counted); returns the delay.
    pub fn add_rate_limited(self: &Arc<Self>, key: T) -> Duration {
        let n = {
            let mut st = lock(&self.state);
            let n = st.failures.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let delay = self
            .base_delay
            .saturating_mul(1u32 << n.min(31).saturating_sub(1))
            .min(self.max_delay);
        self.add_after(key, delay);
        delay
    }

    /// Clears the failure count of `key` (after it was processed successfully).
    pub fn forget(&self, key: &T) {
        lock(&self.state).failures.remove(key);
    }

    /// How many times in a row `key` failed.
    pub fn num_requeues(&self, key: &T) -> u32 {
        lock(&self.state).failures.get(key).copied().unwrap_or(0)
    }

    /// Waits for the next key; call [`Queue::done`] with it when finished.
    pub async fn get(&self) -> T {
        loop {
            let notified = self.notify.notified();
            {
                let mut st = lock(&self.state);
                if let Some(key) = st.queue.pop_front() {
                    st.dirty.remove(&key);
                    st.processing.insert(key.clone());
                    if !st.queue.is_empty() {
                        self.notify.notify_one();
                    }
                    return key;
                }
            }
            notified.await;
        }
    }

    /// Marks `key` processed; if it was added meanwhile it is queued again.
    pub fn done(&self, key: &T) {
        let mut st = lock(&self.state);
        st.processing.remove(key);
        if st.dirty.contains(key) {
            st.queue.push_back(key.clone());
            drop(st);
            self.notify.notify_one();
        }
    }

    /// Number of keys waiting (not counting those being processed or delayed).
    pub fn len(&self) -> usize {
        lock(&self.state).queue.len()
    }

    /// True when no key is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs `workers` loops that take keys from `queue` and `reconcile` them, forever.
/// `reconcile` says when to look at the key again ([`Action`]); success forgets the
/// key's failures, an error re-queues it with its backoff. With `resync`, every key `all()`
/// returns is added that often.
pub async fn run_workers<T, F, Fut, E>(
    name: &'static str,
    queue: Arc<Queue<T>>,
    workers: usize,
    resync: Option<Duration>,
    all: impl Fn() -> Vec<T> + Send + 'static,
    reconcile: F,
) where
    T: Hash + Eq + Clone + Debug + Send + Sync + 'static,
    F: Fn(T) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send,
    E: Display,
{
    if let Some(every) = resync {
        let q = Arc::clone(&queue);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(Instant::now() + every, every);
            loop {
                tick.tick().await;
                for k in all() {
                    q.add(k);
                }
            }
        });
    }
    let mut handles = Vec::new();
    for _ in 0..workers.max(1) {
        let q = Arc::clone(&queue);
        let f = reconcile.clone();
        handles.push(tokio::spawn(async move {
            loop {
                let key = q.get().await;
                let span = tracing::debug_span!("reconcile", controller = name, key = ?key);
                match tracing::Instrument::instrument(f(key.clone()), span).await {
                    Ok(again) => {
                        q.forget(&key);
                        if let Some(d) = again.delay() {
                            q.add_after(key.clone(), d);
                        }
                    }
                    Err(e) => {
                        let delay = q.add_rate_limited(key.clone());
                        if q.num_requeues(&key) > 3 {
                            tracing::warn!(controller = name, key = ?key, error = %e, "sync failed, retrying in {delay:?}");
                        } else {
                            tracing::debug!(controller = name, key = ?key, error = %e, "sync failed, retrying in {delay:?}");
                        }
                    }
                }
                q.done(&key);
            }
        }));
    }
    for h in handles {
        if let Err(e) = h.await {
            tracing::error!(controller = name, error = %e, "worker stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn dedupes_and_requeues_keys_added_while_processing() {
        let q = Queue::new();
        q.add("a".to_string());
        q.add("a".to_string());
        q.add("b".to_string());
        assert_eq!(q.len(), 2);
        let k = q.get().await;
        assert_eq!(k, "a");
        // added while processing: not handed out until done, and only once
        q.add("a".to_string());
        q.add("a".to_string());
        assert_eq!(q.get().await, "b");
        assert!(q.is_empty());
        q.done(&"a".to_string());
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await, "a");
        q.done(&"a".to_string());
        q.done(&"b".to_string());
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn a_poisoned_lock_keeps_the_queue_working() {
        let q: Arc<Queue<u32>> = Queue::new();
        q.add(1);
        crate::util::poison(&q.state);
        assert_eq!(q.len(), 1, "the queued key is still there");
        q.add(2);
        assert_eq!(q.get().await, 1);
        assert_eq!(q.get().await, 2);
        q.done(&1);
        q.done(&2);
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_adds_keep_the_earliest() {
        let q = Queue::new();
        let k = ("ns".to_string(), "a".to_string());
        q.add_after(k.clone(), Duration::from_secs(10));
        q.add_after(k.clone(), Duration::from_secs(30));
        q.add_after(k.clone(), Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(q.is_empty());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await, k);
        q.done(&k);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(q.is_empty(), "the superseded timers do not fire");
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_requeues_back_off_until_forgotten() {
        let q = Queue::with_backoff(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<Duration> = (0..6).map(|_| q.add_rate_limited(1u32)).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1000, 1000].map(Duration::from_millis)
        );
        assert_eq!(q.num_requeues(&1), 6);
        q.forget(&1);
        assert_eq!(q.num_requeues(&1), 0);
        assert_eq!(q.add_rate_limited(1), Duration::from_millis(100));
        let d = Queue::<u32>::new().add_rate_limited(7);
        assert_eq!(
            d,
            Duration::from_millis(5),
            "client-go's default base delay"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn workers_never_run_one_key_twice_at_once_and_retry_errors() {
        let q: Arc<Queue<u32>> =
            Queue::with_backoff(Duration::from_millis(10), Duration::from_millis(10));
        let running = Arc::new(Mutex::new(HashSet::new()));
        let calls = Arc::new(AtomicUsize::new(0));
        let overlap = Arc::new(AtomicUsize::new(0));
        let (r, c, o) = (running.clone(), calls.clone(), overlap.clone());
        let qq = q.clone();
        tokio::spawn(run_workers(
            "test",
            q.clone(),
            4,
            None,
            Vec::new,
            move |k: u32| {
                let (r, c, o, qq) = (r.clone(), c.clone(), o.clone(), qq.clone());
                async move {
                    if !r.lock().unwrap().insert(k) {
                        o.fetch_add(1, Ordering::SeqCst);
                    }
                    let n = c.fetch_add(1, Ordering::SeqCst);
                    if n == 0 {
                        // re-added while processing: must run again afterwards, not in parallel
                        qq.add(k);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    r.lock().unwrap().remove(&k);
                    if n == 1 {
                        return Err("boom");
                    }
                    Ok(Action::Done)
                }
            },
        ));
        q.add(1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(overlap.load(Ordering::SeqCst), 0);
        // first run, re-run after the re-add (fails), retry after backoff (succeeds)
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(q.num_requeues(&1), 0, "success forgets the failures");
    }

    #[tokio::test(start_paused = true)]
    async fn resync_adds_every_key_periodically() {
        let q: Arc<Queue<u32>> = Queue::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        tokio::spawn(run_workers(
            "test",
            q.clone(),
            1,
            Some(Duration::from_secs(30)),
            || vec![1, 2],
            move |k: u32| {
                let s = s.clone();
                async move {
                    s.lock().unwrap().push(k);
                    Ok::<_, String>(Action::Done)
                }
            },
        ));
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert!(seen.lock().unwrap().is_empty());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(*seen.lock().unwrap(), vec![1, 2]);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(seen.lock().unwrap().len(), 4);
    }
}
