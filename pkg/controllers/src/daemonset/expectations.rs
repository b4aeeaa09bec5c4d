//! Expectations of the workload controllers (DaemonSet, StatefulSet, Job): the creates and
//! deletes a controller made and its cache has not shown yet, which hold a reconcile back until
//! the shared informers caught up. Keys are `(namespace, name)` pairs.

use kube::Resource;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// A work item: (namespace, name).
pub type Key = (String, String);

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

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: &str) -> Key {
        ("ns".into(), n.into())
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
