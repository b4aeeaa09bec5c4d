//! Plumbing shared by the workload controllers: a client-go style work queue (a key is never
//! reconciled by two workers at once, repeated adds collapse), delayed re-adds, reflector caches
//! whose events enqueue owners, and expectations that hold a reconcile back until the cache has
//! seen the controller's own creates and deletes.

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A work item: (namespace, name).
pub type Key = (String, String);

#[derive(Default)]
struct State {
    queue: VecDeque<Key>,
    dirty: HashSet<Key>,
    processing: HashSet<Key>,
    delayed: HashMap<Key, Instant>,
}

/// A deduplicating work queue.
#[derive(Default)]
pub struct WorkQueue {
    state: Mutex<State>,
    notify: Notify,
}

impl WorkQueue {
    pub fn new() -> Arc<Self> {
        Arc::new(WorkQueue::default())
    }

    /// Marks `key` for processing (once, however often it is added before a worker takes it).
    pub fn add(&self, key: Key) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        if !s.dirty.insert(key.clone()) || s.processing.contains(&key) {
            return;
        }
        s.queue.push_back(key);
        drop(s);
        self.notify.notify_one();
    }

    /// Adds `key` after `delay`; an earlier pending delayed add wins over a later one.
    pub fn add_after(self: &Arc<Self>, key: Key, delay: Duration) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let at = Instant::now() + delay;
        {
            let Ok(mut s) = self.state.lock() else {
                return;
            };
            match s.delayed.get(&key) {
                Some(existing) if *existing <= at => return,
                _ => {
                    s.delayed.insert(key.clone(), at);
                }
            }
        }
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let fire = q
                .state
                .lock()
                .map(|mut s| {
                    if s.delayed.get(&key) == Some(&at) {
                        s.delayed.remove(&key);
                        true
                    } else {
                        false
                    }
                })
                .unwrap_or(false);
            if fire {
                q.add(key);
            }
        });
    }

    /// Waits for the next key; the caller must call [`WorkQueue::done`] when finished with it.
    pub async fn get(&self) -> Key {
        loop {
            if let Ok(mut s) = self.state.lock() {
                if let Some(k) = s.queue.pop_front() {
                    s.dirty.remove(&k);
                    s.processing.insert(k.clone());
                    return k;
                }
            }
            self.notify.notified().await;
        }
    }

    /// Releases `key`; if it was added meanwhile it goes back on the queue.
    pub fn done(&self, key: &Key) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        s.processing.remove(key);
        if s.dirty.contains(key) {
            s.queue.push_back(key.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Number of keys waiting (for tests and logs).
    pub fn len(&self) -> usize {
        self.state.lock().map(|s| s.queue.len()).unwrap_or(0)
    }
}

/// How long an expectation may stay unmet before it is dropped (upstream uses 5 minutes; a
/// watch here lags by milliseconds, so a shorter time recovers sooner from a lost event).
const EXPECTATION_TTL: Duration = Duration::from_secs(60);

struct Pending {
    since: Instant,
    adds: Vec<String>,
    dels: Vec<String>,
}

/// Creates (by name) and deletes (by uid) a controller made and has not seen in its cache yet.
#[derive(Default)]
pub struct Expectations {
    m: Mutex<HashMap<Key, Pending>>,
}

impl Expectations {
    /// Records that `adds` (names) must appear and `dels` (uids) must go away or be terminating.
    pub fn expect(&self, key: &Key, adds: Vec<String>, dels: Vec<String>) {
        if adds.is_empty() && dels.is_empty() {
            return;
        }
        if let Ok(mut m) = self.m.lock() {
            let e = m.entry(key.clone()).or_insert_with(|| Pending {
                since: Instant::now(),
                adds: vec![],
                dels: vec![],
            });
            e.since = Instant::now();
            e.adds.extend(adds);
            e.dels.extend(dels);
        }
    }

    /// Whether the cache caught up: `seen(name)` tells an expected create arrived, `gone(uid)`
    /// that an expected delete did.
    pub fn satisfied(
        &self,
        key: &Key,
        seen: impl Fn(&str) -> bool,
        gone: impl Fn(&str) -> bool,
    ) -> bool {
        let Ok(mut m) = self.m.lock() else {
            return true;
        };
        let Some(p) = m.get_mut(key) else {
            return true;
        };
        p.adds.retain(|n| !seen(n));
        p.dels.retain(|u| !gone(u));
        if (p.adds.is_empty() && p.dels.is_empty()) || p.since.elapsed() > EXPECTATION_TTL {
            m.remove(key);
            return true;
        }
        false
    }

    /// Drops what was expected for a key (its object is gone).
    pub fn forget(&self, key: &Key) {
        if let Ok(mut m) = self.m.lock() {
            m.remove(key);
        }
    }
}

/// The namespace/name key of an object.
pub fn key_of<K: Resource>(o: &K) -> Key {
    let m = o.meta();
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

/// Starts a reflector on `api`; `on_change` sees every added or modified object (`false`) and
/// every deleted one (`true`); `on_relist` runs after each complete (re)list. Returns the cache
/// (wait for it to be ready).
pub fn reflect<K>(
    api: Api<K>,
    wc: watcher::Config,
    on_change: impl Fn(&K, bool) + Send + 'static,
    on_relist: impl Fn() + Send + 'static,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, wc).default_backoff());
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Apply(o)) => on_change(&o, false),
                Ok(watcher::Event::Delete(o)) => on_change(&o, true),
                Ok(watcher::Event::InitDone) => on_relist(),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, kind = %K::kind(&()), "watch failed, retrying")
                }
            }
        }
    });
    reader
}

/// Runs `workers` loops that take keys from `queue` and reconcile them. `reconcile` returns when
/// to look again (`Ok(Some(d))`); errors are retried with a per-key backoff (5 ms doubling to
/// 1000 s, as client-go's default rate limiter). Also re-adds every key of `all()` every
/// `resync`. Never returns.
pub async fn run_workers<F, Fut>(
    name: &'static str,
    queue: Arc<WorkQueue>,
    workers: usize,
    resync: Duration,
    all: impl Fn() -> Vec<Key> + Send + 'static,
    reconcile: F,
) where
    F: Fn(Key) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Duration>, crate::Error>> + Send,
{
    let failures: Arc<Mutex<HashMap<Key, u32>>> = Arc::default();
    {
        let q = queue.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(resync);
            loop {
                tick.tick().await;
                for k in all() {
                    q.add(k);
                }
            }
        });
    }
    let mut handles = vec![];
    for _ in 0..workers.max(1) {
        let q = queue.clone();
        let f = reconcile.clone();
        let failures = failures.clone();
        handles.push(tokio::spawn(async move {
            loop {
                let key = q.get().await;
                let span = tracing::debug_span!("reconcile", controller = name, ns = %key.0, name = %key.1);
                let res = tracing::Instrument::instrument(f(key.clone()), span).await;
                match res {
                    Ok(again) => {
                        if let Ok(mut m) = failures.lock() {
                            m.remove(&key);
                        }
                        if let Some(d) = again {
                            q.add_after(key.clone(), d);
                        }
                    }
                    Err(e) => {
                        let n = failures
                            .lock()
                            .map(|mut m| {
                                let n = m.entry(key.clone()).or_insert(0);
                                *n = n.saturating_add(1);
                                *n
                            })
                            .unwrap_or(1);
                        let backoff = Duration::from_millis(5)
                            .saturating_mul(1u32 << n.min(18).saturating_sub(1))
                            .min(Duration::from_secs(1000));
                        tracing::warn!(controller = name, ns = %key.0, name = %key.1, error = %e, "reconcile failed, retrying in {backoff:?}");
                        q.add_after(key.clone(), backoff);
                    }
                }
                q.done(&key);
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: &str) -> Key {
        ("ns".into(), n.into())
    }

    #[tokio::test]
    async fn adds_collapse_and_processing_keys_wait() {
        let q = WorkQueue::new();
        q.add(k("a"));
        q.add(k("a"));
        q.add(k("b"));
        assert_eq!(q.len(), 2);
        let first = q.get().await;
        assert_eq!(first, k("a"));
        // Added again while being processed: not handed out twice, requeued on done.
        q.add(k("a"));
        assert_eq!(q.get().await, k("b"));
        assert_eq!(q.len(), 0);
        q.done(&first);
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await, k("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_adds_keep_the_earliest() {
        let q = WorkQueue::new();
        q.add_after(k("a"), Duration::from_secs(10));
        q.add_after(k("a"), Duration::from_secs(30));
        q.add_after(k("a"), Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await, k("a"));
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(q.len(), 0, "the superseded timers do not fire");
    }

    #[tokio::test(start_paused = true)]
    async fn expectations_wait_for_the_cache() {
        let e = Expectations::default();
        e.expect(&k("a"), vec!["p1".into()], vec!["u2".into()]);
        assert!(
            !e.satisfied(&k("a"), |_| true, |_| false),
            "the delete is not seen yet"
        );
        assert!(!e.satisfied(&k("a"), |_| false, |_| false));
        assert!(
            e.satisfied(&k("a"), |_| false, |_| true),
            "the create was seen before"
        );
        assert!(e.satisfied(&k("b"), |_| false, |_| false));
        e.expect(&k("a"), vec!["p3".into()], vec![]);
        tokio::time::sleep(EXPECTATION_TTL + Duration::from_secs(1)).await;
        assert!(e.satisfied(&k("a"), |_| false, |_| false), "expires");
    }
}
