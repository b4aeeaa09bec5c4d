//! Controller expectations (upstream's `UIDTrackingControllerExpectations`): the creates and
//! deletes a controller made that its shared cache has not shown yet. While any is outstanding
//! the controller does not manage replicas again, so it never creates twice while the informers
//! catch up. Two ways to observe, one record and one timeout:
//! - event-driven (ReplicaSet): `expect_creations(n)` counts down on `creation_observed`,
//!   deletions by pod key on `deletion_observed`, checked with [`Expectations::satisfied`];
//! - by looking at the cache (DaemonSet, StatefulSet, Job): [`Expectations::expect`] the names
//!   created and the uids deleted, then [`Expectations::satisfied_by`] with lookups.

use super::podutil::is_terminating;
use super::{lock, ObjectKey};
use k8s_openapi::api::core::v1::Pod;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long an expectation may stay unmet before it is given up (upstream's
/// `ExpectationsTimeout`): a lost watch event delays a controller at most this long.
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Pending {
    since: Option<Instant>,
    /// Creations still to be observed (counted).
    adds: i64,
    /// Created objects (names) still to be seen in the cache.
    add_names: HashSet<String>,
    /// Deleted objects (pod keys or uids) still to be observed gone.
    dels: HashSet<String>,
}

impl Pending {
    fn met(&self) -> bool {
        self.adds <= 0 && self.add_names.is_empty() && self.dels.is_empty()
    }

    fn expired(&self) -> bool {
        self.since
            .is_some_and(|t| t.elapsed() > EXPECTATIONS_TIMEOUT)
    }
}

/// What each controller key still waits for.
#[derive(Default)]
pub struct Expectations {
    m: Mutex<HashMap<ObjectKey, Pending>>,
}

impl Expectations {
    /// Expects `n` creations for `key` (replacing the count, as upstream's `ExpectCreations`).
    pub fn expect_creations(&self, key: &ObjectKey, n: usize) {
        let mut m = lock(&self.m);
        let e = m.entry(key.clone()).or_default();
        e.adds = i64::try_from(n).unwrap_or(i64::MAX);
        e.since = Some(Instant::now());
    }

    /// Expects the objects with these keys (or uids) to go away.
    pub fn expect_deletions(&self, key: &ObjectKey, del_keys: Vec<String>) {
        let mut m = lock(&self.m);
        let e = m.entry(key.clone()).or_default();
        e.dels = del_keys.into_iter().collect();
        e.since = Some(Instant::now());
    }

    /// One expected creation of `key` was observed (or a planned creation failed).
    pub fn creation_observed(&self, key: &ObjectKey) {
        if let Some(e) = lock(&self.m).get_mut(key) {
            e.adds -= 1;
        }
    }

    /// An expected deletion was observed (or failed).
    pub fn deletion_observed(&self, key: &ObjectKey, del_key: &str) {
        if let Some(e) = lock(&self.m).get_mut(key) {
            e.dels.remove(del_key);
        }
    }

    /// True when nothing is outstanding for `key` (or what is outstanding expired).
    pub fn satisfied(&self, key: &ObjectKey) -> bool {
        self.satisfied_by(key, |_| false, |_| false)
    }

    /// Adds names that must appear and uids that must go away (or be terminating).
    pub fn expect(&self, key: &ObjectKey, adds: Vec<String>, dels: Vec<String>) {
        if adds.is_empty() && dels.is_empty() {
            return;
        }
        let mut m = lock(&self.m);
        let e = m.entry(key.clone()).or_default();
        e.since = Some(Instant::now());
        e.add_names.extend(adds);
        e.dels.extend(dels);
    }

    /// Whether the cache caught up: `seen(name)` tells an expected create arrived, `gone(uid)`
    /// that an expected delete did. A met or expired expectation is dropped.
    pub fn satisfied_by(
        &self,
        key: &ObjectKey,
        seen: impl Fn(&str) -> bool,
        gone: impl Fn(&str) -> bool,
    ) -> bool {
        let mut m = lock(&self.m);
        let Some(p) = m.get_mut(key) else {
            return true;
        };
        p.add_names.retain(|n| !seen(n));
        p.dels.retain(|u| !gone(u));
        if p.met() || p.expired() {
            m.remove(key);
            return true;
        }
        false
    }

    /// [`Expectations::satisfied_by`] against the owner's current pods: a create is seen when
    /// a pod of that name is among them, a delete when no pod with that uid is left alive.
    pub fn satisfied_by_pods(&self, key: &ObjectKey, pods: &[Arc<Pod>]) -> bool {
        self.satisfied_by(
            key,
            |n| pods.iter().any(|p| p.metadata.name.as_deref() == Some(n)),
            |u| {
                !pods
                    .iter()
                    .any(|p| p.metadata.uid.as_deref() == Some(u) && !is_terminating(p))
            },
        )
    }

    /// Drops what was expected for a key (its object is gone).
    pub fn forget(&self, key: &ObjectKey) {
        lock(&self.m).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: &str) -> ObjectKey {
        ObjectKey::new("ns", n)
    }

    #[tokio::test(start_paused = true)]
    async fn expectations_wait_for_the_cache() {
        let e = Expectations::default();
        e.expect(&k("a"), vec!["p1".into()], vec!["u2".into()]);
        assert!(
            !e.satisfied_by(&k("a"), |_| true, |_| false),
            "the delete is not seen yet"
        );
        assert!(!e.satisfied_by(&k("a"), |_| false, |_| false));
        assert!(
            e.satisfied_by(&k("a"), |_| false, |_| true),
            "the create was seen before"
        );
        assert!(e.satisfied_by(&k("b"), |_| false, |_| false));
        e.expect(&k("a"), vec!["p3".into()], vec![]);
        tokio::time::sleep(EXPECTATIONS_TIMEOUT + Duration::from_secs(1)).await;
        assert!(e.satisfied_by(&k("a"), |_| false, |_| false), "expires");
    }

    #[tokio::test(start_paused = true)]
    async fn counted_creations_and_keyed_deletions() {
        let e = Expectations::default();
        let rs = k("rs");
        assert!(e.satisfied(&rs));
        e.expect_creations(&rs, 2);
        assert!(!e.satisfied(&rs));
        e.creation_observed(&rs);
        assert!(!e.satisfied(&rs));
        e.creation_observed(&rs);
        assert!(e.satisfied(&rs));
        e.expect_deletions(&rs, vec!["ns/p1".into()]);
        assert!(!e.satisfied(&rs));
        e.deletion_observed(&rs, "ns/p2");
        assert!(!e.satisfied(&rs));
        e.deletion_observed(&rs, "ns/p1");
        assert!(e.satisfied(&rs));
        e.expect_creations(&rs, 1);
        tokio::time::sleep(Duration::from_secs(299)).await;
        assert!(!e.satisfied(&rs), "upstream's five minutes, not one");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(e.satisfied(&rs));
    }

    #[tokio::test]
    async fn a_poisoned_lock_does_not_report_satisfied() {
        let e = Expectations::default();
        e.expect_creations(&k("rs"), 1);
        crate::util::poison(&e.m);
        assert!(!e.satisfied(&k("rs")), "still waiting for the creation");
        e.creation_observed(&k("rs"));
        assert!(e.satisfied(&k("rs")));
    }
}
