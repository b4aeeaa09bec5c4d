//! A shared-informer-like cache: one kube-rs watcher per kind feeding an in-memory cache indexed
//! by namespace, calling a handler with the old and new object on every change (also for the
//! changes a re-list reveals), so controllers can map events to work-queue keys.

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::Resource;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// What changed in the cache.
pub enum Change<K> {
    /// Added (`old` is `None`) or updated.
    Applied { old: Option<Arc<K>>, new: Arc<K> },
    /// Removed.
    Deleted(Arc<K>),
}

type Index<K> = HashMap<String, HashMap<String, Arc<K>>>;

/// Objects of one kind by namespace and name.
pub struct Cache<K> {
    objects: RwLock<Index<K>>,
    synced: AtomicBool,
}

impl<K: Resource + Clone> Cache<K> {
    pub fn new() -> Arc<Self> {
        Arc::new(Cache {
            objects: RwLock::new(HashMap::new()),
            synced: AtomicBool::new(false),
        })
    }

    /// True once the first complete list has been loaded.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    pub fn get(&self, ns: &str, name: &str) -> Option<Arc<K>> {
        self.objects
            .read()
            .ok()
            .and_then(|m| m.get(ns).and_then(|n| n.get(name)).cloned())
    }

    /// All objects in namespace `ns`.
    pub fn list(&self, ns: &str) -> Vec<Arc<K>> {
        self.objects
            .read()
            .map(|m| {
                m.get(ns)
                    .map(|n| n.values().cloned().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    /// All objects.
    pub fn all(&self) -> Vec<Arc<K>> {
        self.objects
            .read()
            .map(|m| m.values().flat_map(|n| n.values().cloned()).collect())
            .unwrap_or_default()
    }

    fn put(&self, obj: Arc<K>) -> Option<Arc<K>> {
        let ns = obj.meta().namespace.clone().unwrap_or_default();
        let name = obj.meta().name.clone().unwrap_or_default();
        self.objects
            .write()
            .ok()
            .and_then(|mut m| m.entry(ns).or_default().insert(name, obj))
    }

    fn remove(&self, obj: &K) -> Option<Arc<K>> {
        let ns = obj.meta().namespace.clone().unwrap_or_default();
        let name = obj.meta().name.clone().unwrap_or_default();
        self.objects.write().ok().and_then(|mut m| {
            let n = m.get_mut(&ns)?;
            let old = n.remove(&name);
            if n.is_empty() {
                m.remove(&ns);
            }
            old
        })
    }

    /// Replaces the whole content (after a re-list), returning the changes.
    fn replace(&self, objs: Vec<K>) -> Vec<Change<K>> {
        let mut fresh: Index<K> = HashMap::new();
        for o in objs {
            let ns = o.meta().namespace.clone().unwrap_or_default();
            let name = o.meta().name.clone().unwrap_or_default();
            fresh.entry(ns).or_default().insert(name, Arc::new(o));
        }
        let Ok(mut m) = self.objects.write() else {
            return Vec::new();
        };
        let mut changes = Vec::new();
        for (ns, names) in m.iter() {
            for (name, old) in names {
                if fresh.get(ns).and_then(|n| n.get(name)).is_none() {
                    changes.push(Change::Deleted(Arc::clone(old)));
                }
            }
        }
        for (ns, names) in fresh.iter() {
            for (name, new) in names {
                let old = m.get(ns).and_then(|n| n.get(name)).cloned();
                let same = old.as_ref().is_some_and(|o| {
                    o.meta().resource_version == new.meta().resource_version
                        && o.meta().uid == new.meta().uid
                });
                if !same {
                    changes.push(Change::Applied {
                        old,
                        new: Arc::clone(new),
                    });
                }
            }
        }
        *m = fresh;
        changes
    }
}

/// Watches `api` forever, keeping `cache` current and calling `handler` for every change.
/// Watch errors are retried with kube-rs' default backoff.
pub async fn run<K, F>(api: Api<K>, cache: Arc<Cache<K>>, mut handler: F)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default,
    F: FnMut(Change<K>),
{
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut buffer: Vec<K> = Vec::new();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Apply(obj)) => {
                let new = Arc::new(obj);
                let old = cache.put(Arc::clone(&new));
                handler(Change::Applied { old, new });
            }
            Ok(Event::Delete(obj)) => {
                let gone = cache.remove(&obj).unwrap_or_else(|| Arc::new(obj));
                handler(Change::Deleted(gone));
            }
            Ok(Event::Init) => buffer.clear(),
            Ok(Event::InitApply(obj)) => buffer.push(obj),
            Ok(Event::InitDone) => {
                let changes = cache.replace(std::mem::take(&mut buffer));
                cache.synced.store(true, Ordering::Release);
                for c in changes {
                    handler(c);
                }
            }
            Err(e) => {
                tracing::debug!(kind = %K::kind(&Default::default()), error = %e, "watch failed, retrying")
            }
        }
    }
}

/// `namespace/name` of an object.
pub fn key_of<K: Resource>(obj: &K) -> String {
    format!(
        "{}/{}",
        obj.meta().namespace.as_deref().unwrap_or(""),
        obj.meta().name.as_deref().unwrap_or("")
    )
}

/// Splits a `namespace/name` key.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// The controller ownerReference of an object, if any.
pub fn controller_of<K: Resource>(
    obj: &K,
) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    obj.meta()
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// True when the object carries a deletionTimestamp.
pub fn is_deleting<K: Resource>(obj: &K) -> bool {
    obj.meta().deletion_timestamp.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(ns: &str, name: &str, rv: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                resource_version: Some(rv.into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn relist_reports_deletions_and_changes_only() {
        let c: Arc<Cache<Pod>> = Cache::new();
        c.put(Arc::new(pod("a", "p1", "1")));
        c.put(Arc::new(pod("a", "p2", "1")));
        let changes = c.replace(vec![
            pod("a", "p1", "1"),
            pod("a", "p2", "2"),
            pod("b", "p3", "1"),
        ]);
        let mut applied: Vec<String> = Vec::new();
        let mut deleted = 0;
        for ch in changes {
            match ch {
                Change::Applied { new, .. } => applied.push(key_of(new.as_ref())),
                Change::Deleted(_) => deleted += 1,
            }
        }
        applied.sort();
        assert_eq!(applied, vec!["a/p2", "b/p3"]);
        assert_eq!(deleted, 0);
        let changes = c.replace(vec![pod("b", "p3", "1")]);
        assert_eq!(changes.len(), 2);
        assert!(changes.iter().all(|c| matches!(c, Change::Deleted(_))));
        assert_eq!(c.list("a").len(), 0);
        assert_eq!(c.list("b").len(), 1);
        assert!(c.get("b", "p3").is_some());
    }
}
