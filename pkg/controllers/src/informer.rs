//! Shared informers (client-go's SharedInformerFactory idea): exactly one kube-rs watcher per
//! kind for the whole controller manager, feeding one cache per kind (objects by namespace and
//! name, managedFields stripped) and fanning every change out to the handlers each controller
//! registered.

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::Resource;
use serde::de::DeserializeOwned;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::Notify;

/// What changed in a cache. Handlers see it after the cache was updated.
pub enum Change<K> {
    /// Added (`old` is `None`) or updated.
    Applied { old: Option<Arc<K>>, new: Arc<K> },
    /// Removed (the last state the cache knew).
    Deleted(Arc<K>),
}

impl<K> Change<K> {
    /// The object the change is about (the new one for an update).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Applied { new, .. } => new,
            Change::Deleted(o) => o,
        }
    }
}

type Index<K> = HashMap<String, HashMap<String, Arc<K>>>;

/// The cache of one kind: objects by namespace (`""` for cluster-scoped kinds) and name.
pub struct Store<K> {
    objects: RwLock<Index<K>>,
    synced: AtomicBool,
    synced_notify: Notify,
}

impl<K: Resource> Store<K> {
    /// An empty, not yet synced store.
    pub fn new() -> Arc<Self> {
        Arc::new(Store {
            objects: RwLock::new(HashMap::new()),
            synced: AtomicBool::new(false),
            synced_notify: Notify::new(),
        })
    }

    /// True once the first complete list has been loaded.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Waits until the first complete list has been loaded.
    pub async fn wait_synced(&self) {
        loop {
            let notified = self.synced_notify.notified();
            if self.synced() {
                return;
            }
            notified.await;
        }
    }

    fn mark_synced(&self) {
        self.synced.store(true, Ordering::Release);
        self.synced_notify.notify_waiters();
    }

    /// The object `ns/name` (`ns` empty for cluster-scoped kinds).
    pub fn get(&self, ns: &str, name: &str) -> Option<Arc<K>> {
        self.objects
            .read()
            .ok()
            .and_then(|m| m.get(ns).and_then(|n| n.get(name)).cloned())
    }

    /// All objects in namespace `ns`.
    pub fn list(&self, ns: &str) -> Vec<Arc<K>> {
        self.list_filter(ns, |_| true)
    }

    /// The objects in namespace `ns` for which `f` is true.
    pub fn list_filter(&self, ns: &str, f: impl Fn(&K) -> bool) -> Vec<Arc<K>> {
        self.objects
            .read()
            .map(|m| {
                m.get(ns)
                    .map(|n| n.values().filter(|o| f(o)).cloned().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    /// All objects.
    pub fn all(&self) -> Vec<Arc<K>> {
        self.filter(|_| true)
    }

    /// The objects (in every namespace) for which `f` is true.
    pub fn filter(&self, f: impl Fn(&K) -> bool) -> Vec<Arc<K>> {
        self.objects
            .read()
            .map(|m| {
                m.values()
                    .flat_map(|n| n.values().filter(|o| f(o)).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Number of cached objects.
    pub fn len(&self) -> usize {
        self.objects
            .read()
            .map(|m| m.values().map(HashMap::len).sum())
            .unwrap_or(0)
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        let ns = obj.meta().namespace.as_deref().unwrap_or("");
        let name = obj.meta().name.as_deref().unwrap_or("");
        self.objects.write().ok().and_then(|mut m| {
            let n = m.get_mut(ns)?;
            let old = n.remove(name);
            if n.is_empty() {
                m.remove(ns);
            }
            old
        })
    }

    /// Replaces the whole content (after a re-list), returning the changes it reveals:
    /// deletions of objects no longer listed, and additions/updates (by resourceVersion/uid).
    fn replace(&self, objs: Vec<Arc<K>>) -> Vec<Change<K>> {
        let mut fresh: Index<K> = HashMap::new();
        for o in objs {
            let ns = o.meta().namespace.clone().unwrap_or_default();
            let name = o.meta().name.clone().unwrap_or_default();
            fresh.entry(ns).or_default().insert(name, o);
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
        for (ns, names) in fresh.iter_mut() {
            for (name, new) in names.iter_mut() {
                let old = m.get(ns).and_then(|n| n.get(name)).cloned();
                match old {
                    Some(o)
                        if o.meta().resource_version == new.meta().resource_version
                            && o.meta().uid == new.meta().uid =>
                    {
                        // Unchanged: keep the cached copy (and drop the fresh duplicate).
                        *new = o;
                    }
                    old => changes.push(Change::Applied {
                        old,
                        new: Arc::clone(new),
                    }),
                }
            }
        }
        *m = fresh;
        changes
    }
}

/// A change handler registered by a controller.
pub type Handler<K> = Box<dyn Fn(&Change<K>) + Send + Sync>;

/// The shared informer of one kind: its store and its handlers.
pub struct Informer<K> {
    store: Arc<Store<K>>,
    handlers: RwLock<Vec<Handler<K>>>,
    /// Objects of the (re-)list in progress.
    buffer: Mutex<Vec<Arc<K>>>,
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default,
{
    /// An informer not connected to any watch (the factory connects it; tests feed it events).
    pub fn new() -> Arc<Self> {
        Arc::new(Informer {
            store: Store::new(),
            handlers: RwLock::new(Vec::new()),
            buffer: Mutex::new(Vec::new()),
        })
    }

    /// The shared cache of this kind.
    pub fn store(&self) -> Arc<Store<K>> {
        Arc::clone(&self.store)
    }

    /// Registers `handler` for every future change. Objects already cached are replayed to it
    /// as additions first (as client-go does for late handlers).
    pub fn add_handler(&self, handler: impl Fn(&Change<K>) + Send + Sync + 'static) {
        let Ok(mut hs) = self.handlers.write() else {
            return;
        };
        for o in self.store.all() {
            handler(&Change::Applied { old: None, new: o });
        }
        hs.push(Box::new(handler));
    }

    /// Applies one watcher event to the store and tells the handlers. Holds the handler list
    /// (read) across the store update so a handler added concurrently sees each object once.
    pub fn handle(&self, event: Event<K>) {
        let Ok(hs) = self.handlers.read() else {
            return;
        };
        let fan_out = |c: Change<K>| hs.iter().for_each(|h| h(&c));
        match event {
            Event::Apply(obj) => {
                let new = Arc::new(strip(obj));
                let old = self.store.put(Arc::clone(&new));
                fan_out(Change::Applied { old, new });
            }
            Event::Delete(obj) => {
                let gone = self
                    .store
                    .remove(&obj)
                    .unwrap_or_else(|| Arc::new(strip(obj)));
                fan_out(Change::Deleted(gone));
            }
            Event::Init => {
                if let Ok(mut b) = self.buffer.lock() {
                    b.clear();
                }
            }
            Event::InitApply(obj) => {
                if let Ok(mut b) = self.buffer.lock() {
                    b.push(Arc::new(strip(obj)));
                }
            }
            Event::InitDone => {
                let listed = self
                    .buffer
                    .lock()
                    .map(|mut b| std::mem::take(&mut *b))
                    .unwrap_or_default();
                let changes = self.store.replace(listed);
                self.store.mark_synced();
                changes.into_iter().for_each(fan_out);
            }
        }
    }

    /// Watches `api` forever (list+watch with `wc`, retried with kube-rs' default backoff).
    pub async fn run(self: Arc<Self>, api: Api<K>, wc: watcher::Config) {
        let mut stream = watcher(api, wc).default_backoff().boxed();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => self.handle(ev),
                Err(e) => {
                    tracing::debug!(kind = %K::kind(&Default::default()), error = %e, "watch failed, retrying")
                }
            }
        }
    }
}

/// Drops what no controller reads before an object is cached (kube-controller-manager's
/// informers strip managedFields the same way).
fn strip<K: Resource>(mut obj: K) -> K {
    obj.meta_mut().managed_fields = None;
    obj
}

type Starter = Box<dyn FnOnce() + Send>;

/// Which informer: the kind, and the label and field selectors (empty: none).
type InformerKey = (TypeId, String, String);

/// One informer per kind for the whole controller manager. Controllers ask for the informers
/// they need and register handlers; [`Factory::start`] then starts one watch per kind.
pub struct Factory {
    client: kube::Client,
    informers: Mutex<HashMap<InformerKey, Arc<dyn Any + Send + Sync>>>,
    pending: Mutex<Vec<Starter>>,
    started: AtomicBool,
}

impl Factory {
    pub fn new(client: kube::Client) -> Arc<Self> {
        Arc::new(Factory {
            client,
            informers: Mutex::new(HashMap::new()),
            pending: Mutex::new(Vec::new()),
            started: AtomicBool::new(false),
        })
    }

    /// The client the informers watch with.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The shared informer of kind `K` (created on first use; started by [`Factory::start`], or
    /// at once when the factory already runs).
    pub fn informer<K>(&self) -> Arc<Informer<K>>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        self.informer_selected::<K>("", "")
    }

    /// A shared informer of kind `K` restricted by a label and/or field selector (empty: none),
    /// for the rare kinds no controller needs in full (the root CA ConfigMaps among all
    /// ConfigMaps): every other use shares the unrestricted [`Factory::informer`].
    pub fn informer_selected<K>(&self, labels: &str, fields: &str) -> Arc<Informer<K>>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let key: InformerKey = (TypeId::of::<K>(), labels.to_string(), fields.to_string());
        let Ok(mut m) = self.informers.lock() else {
            // A poisoned lock means a handler panicked; an unconnected informer never syncs,
            // so the controller asking for it idles instead of crashing the manager.
            return Informer::new();
        };
        if let Some(i) = m.get(&key) {
            if let Ok(i) = Arc::clone(i).downcast::<Informer<K>>() {
                return i;
            }
        }
        let inf: Arc<Informer<K>> = Informer::new();
        m.insert(key, inf.clone() as Arc<dyn Any + Send + Sync>);
        drop(m);
        let api = Api::<K>::all(self.client.clone());
        let mut wc = watcher::Config::default();
        if !labels.is_empty() {
            wc = wc.labels(labels);
        }
        if !fields.is_empty() {
            wc = wc.fields(fields);
        }
        let starter: Starter = {
            let inf = Arc::clone(&inf);
            Box::new(move || {
                tokio::spawn(inf.run(api, wc));
            })
        };
        if self.started.load(Ordering::Acquire) {
            starter();
        } else if let Ok(mut p) = self.pending.lock() {
            p.push(starter);
        }
        inf
    }

    /// The shared cache of kind `K`.
    pub fn store<K>(&self) -> Arc<Store<K>>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        self.informer::<K>().store()
    }

    /// Starts the watches of every informer asked for so far (later ones start at once).
    pub fn start(&self) {
        self.started.store(true, Ordering::Release);
        let pending = self
            .pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        for s in pending {
            s();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::key_of;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};

    fn pod(ns: &str, name: &str, rv: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                resource_version: Some(rv.into()),
                uid: Some(format!("uid-{name}")),
                managed_fields: Some(vec![ManagedFieldsEntry {
                    manager: Some("kubectl".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Records what a handler saw as strings: `+ns/name@rv`, `~ns/name@old->new`, `-ns/name`.
    fn recorder(inf: &Informer<Pod>) -> Arc<Mutex<Vec<String>>> {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let s = seen.clone();
        inf.add_handler(move |c| {
            let rv = |p: &Pod| p.metadata.resource_version.clone().unwrap_or_default();
            let line = match c {
                Change::Applied { old: None, new } => format!("+{}@{}", key_of(&**new), rv(new)),
                Change::Applied { old: Some(o), new } => {
                    format!("~{}@{}->{}", key_of(&**new), rv(o), rv(new))
                }
                Change::Deleted(o) => format!("-{}", key_of(&**o)),
            };
            s.lock().unwrap().push(line);
        });
        seen
    }

    fn take(seen: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
        let mut v = std::mem::take(&mut *seen.lock().unwrap());
        v.sort();
        v
    }

    #[test]
    fn initial_list_syncs_and_fans_out_to_every_handler() {
        let inf: Arc<Informer<Pod>> = Informer::new();
        let a = recorder(&inf);
        let b = recorder(&inf);
        inf.handle(Event::Init);
        inf.handle(Event::InitApply(pod("x", "p1", "1")));
        inf.handle(Event::InitApply(pod("y", "p2", "1")));
        assert!(!inf.store().synced(), "not synced before InitDone");
        assert!(inf.store().is_empty(), "the list is applied at once");
        inf.handle(Event::InitDone);
        assert!(inf.store().synced());
        assert_eq!(take(&a), vec!["+x/p1@1", "+y/p2@1"]);
        assert_eq!(take(&b), vec!["+x/p1@1", "+y/p2@1"]);
        assert_eq!(inf.store().len(), 2);
        assert_eq!(inf.store().list("x").len(), 1);
        assert!(inf.store().get("y", "p2").is_some());
        assert!(inf.store().get("x", "p2").is_none());
    }

    #[test]
    fn watch_events_give_old_and_new_and_strip_managed_fields() {
        let inf: Arc<Informer<Pod>> = Informer::new();
        let seen = recorder(&inf);
        inf.handle(Event::Apply(pod("x", "p1", "1")));
        inf.handle(Event::Apply(pod("x", "p1", "2")));
        inf.handle(Event::Delete(pod("x", "p1", "3")));
        inf.handle(Event::Delete(pod("x", "never-seen", "3")));
        let got = std::mem::take(&mut *seen.lock().unwrap());
        assert_eq!(got, vec!["+x/p1@1", "~x/p1@1->2", "-x/p1", "-x/never-seen"]);
        inf.handle(Event::Apply(pod("x", "p2", "4")));
        let cached = inf.store().get("x", "p2").unwrap();
        assert!(cached.metadata.managed_fields.is_none());
        assert!(inf.store().list("x").len() == 1);
    }

    #[test]
    fn relist_reports_only_what_changed() {
        let inf: Arc<Informer<Pod>> = Informer::new();
        inf.handle(Event::Apply(pod("a", "p1", "1")));
        inf.handle(Event::Apply(pod("a", "p2", "1")));
        let before = inf.store().get("a", "p1").unwrap();
        let seen = recorder(&inf);
        assert_eq!(
            take(&seen),
            vec!["+a/p1@1", "+a/p2@1"],
            "a late handler gets the cache replayed"
        );
        inf.handle(Event::Init);
        for p in [
            pod("a", "p1", "1"),
            pod("a", "p2", "2"),
            pod("b", "p3", "1"),
        ] {
            inf.handle(Event::InitApply(p));
        }
        inf.handle(Event::InitDone);
        assert_eq!(take(&seen), vec!["+b/p3@1", "~a/p2@1->2"]);
        let after = inf.store().get("a", "p1").unwrap();
        assert!(Arc::ptr_eq(&before, &after), "unchanged objects are kept");
        inf.handle(Event::Init);
        inf.handle(Event::InitApply(pod("b", "p3", "1")));
        inf.handle(Event::InitDone);
        assert_eq!(take(&seen), vec!["-a/p1", "-a/p2"]);
        assert!(inf.store().list("a").is_empty());
        assert_eq!(inf.store().all().len(), 1);
        assert_eq!(
            inf.store()
                .filter(|p| p.metadata.name.as_deref() == Some("p3"))
                .len(),
            1
        );
    }

    #[test]
    fn handlers_see_the_store_already_updated() {
        let inf: Arc<Informer<Pod>> = Informer::new();
        let store = inf.store();
        let seen: Arc<Mutex<Vec<(bool, usize)>>> = Arc::default();
        let s = seen.clone();
        inf.add_handler(move |c| {
            let (ns, name) = (
                c.object().metadata.namespace.clone().unwrap_or_default(),
                c.object().metadata.name.clone().unwrap_or_default(),
            );
            let present = store.get(&ns, &name).is_some();
            s.lock().unwrap().push((present, store.list(&ns).len()));
        });
        inf.handle(Event::Apply(pod("x", "p1", "1")));
        inf.handle(Event::Apply(pod("x", "p2", "1")));
        inf.handle(Event::Delete(pod("x", "p1", "2")));
        assert_eq!(
            *seen.lock().unwrap(),
            vec![(true, 1), (true, 2), (false, 1)]
        );
    }

    #[tokio::test]
    async fn wait_synced_wakes_on_the_first_list() {
        let inf: Arc<Informer<Pod>> = Informer::new();
        let store = inf.store();
        let waiter = tokio::spawn(async move { store.wait_synced().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        inf.handle(Event::Init);
        inf.handle(Event::InitDone);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .expect("joined");
    }
}
