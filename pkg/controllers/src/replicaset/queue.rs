//! A deduplicating work queue for controller keys, like client-go's workqueue: a key queued
//! twice is processed once, a key is never processed by two workers at once, and a key added
//! while it is being processed is processed again afterwards.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

struct State<T> {
    queue: VecDeque<T>,
    dirty: HashSet<T>,
    processing: HashSet<T>,
}

/// A work queue of keys (usually `namespace/name`).
pub struct Queue<T> {
    state: Mutex<State<T>>,
    notify: Notify,
}

impl<T: Hash + Eq + Clone + Send + 'static> Queue<T> {
    pub fn new() -> Arc<Self> {
        Arc::new(Queue {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
            }),
            notify: Notify::new(),
        })
    }

    /// Queues `key` unless it is already waiting.
    pub fn add(&self, key: T) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        if !st.dirty.insert(key.clone()) {
            return;
        }
        if !st.processing.contains(&key) {
            st.queue.push_back(key);
            drop(st);
            self.notify.notify_one();
        }
    }

    /// Queues `key` after `delay`.
    pub fn add_after(self: &Arc<Self>, key: T, delay: Duration) {
        let q = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    /// Waits for the next key; call [`Queue::done`] with it when finished.
    pub async fn get(&self) -> T {
        loop {
            let notified = self.notify.notified();
            if let Ok(mut st) = self.state.lock() {
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
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        st.processing.remove(key);
        if st.dirty.contains(key) {
            st.queue.push_back(key.clone());
            drop(st);
            self.notify.notify_one();
        }
    }

    /// Number of keys waiting (not counting those being processed).
    pub fn len(&self) -> usize {
        self.state.lock().map(|s| s.queue.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Per-key exponential retry delays (100 ms doubling up to 30 s), forgotten on success.
pub struct Backoff {
    failures: Mutex<std::collections::HashMap<String, u32>>,
}

impl Backoff {
    pub fn new() -> Self {
        Backoff {
            failures: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The delay before retrying `key` after another failure.
    pub fn next(&self, key: &str) -> Duration {
        let n = self
            .failures
            .lock()
            .map(|mut m| {
                let e = m.entry(key.to_string()).or_insert(0);
                *e = e.saturating_add(1);
                *e
            })
            .unwrap_or(1);
        let ms = 100u64.saturating_mul(1u64 << n.min(16).saturating_sub(1));
        Duration::from_millis(ms.min(30_000))
    }

    pub fn forget(&self, key: &str) {
        if let Ok(mut m) = self.failures.lock() {
            m.remove(key);
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedupes_and_requeues_keys_added_while_processing() {
        let q = Queue::new();
        q.add("a".to_string());
        q.add("a".to_string());
        q.add("b".to_string());
        assert_eq!(q.len(), 2);
        let k = q.get().await;
        assert_eq!(k, "a");
        // added while processing: not handed out until done
        q.add("a".to_string());
        assert_eq!(q.get().await, "b");
        assert!(q.is_empty());
        q.done(&"a".to_string());
        assert_eq!(q.get().await, "a");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff::new();
        assert_eq!(b.next("k"), Duration::from_millis(100));
        assert_eq!(b.next("k"), Duration::from_millis(200));
        for _ in 0..20 {
            b.next("k");
        }
        assert_eq!(b.next("k"), Duration::from_secs(30));
        b.forget("k");
        assert_eq!(b.next("k"), Duration::from_millis(100));
    }

    #[tokio::test]
    async fn add_after_waits() {
        let q = Queue::new();
        q.add_after(1u32, Duration::from_millis(300));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(q.is_empty());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(q.get().await, 1);
    }
}
