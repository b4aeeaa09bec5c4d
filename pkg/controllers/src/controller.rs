//! The controller scaffold every control loop is built with: a builder over the shared
//! informer factory and the work queue. It names the kinds a controller reconciles, owns or
//! watches (each change mapped to work-queue keys), waits until every cache it reads has
//! synced, then runs N workers with an optional periodic resync, each calling the
//! controller's `reconcile(ctx, key) -> Result<Action, E>`:
//!
//! ```text
//! Controller::new(factory, "replicaset")
//!     .reconciles::<ReplicaSet>()
//!     .owns::<Pod>("ReplicaSet")
//!     .watches::<Node, _>(|change| nodes_to_keys(change))
//!     .workers(5)
//!     .resync(Duration::from_secs(30))
//!     .run(ctx, reconcile);
//! ```

use crate::informer::{Change, Factory, Informer, Store};
use crate::queue::{run_workers, Queue};
use crate::util::{key_of, owner_key, ObjectKey};
use futures::future::BoxFuture;
use kube::Resource;
use serde::de::DeserializeOwned;
use std::fmt::{Debug, Display};
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

/// What a reconcile asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing until the next change (or resync).
    Done,
    /// Look at the key again after this long (a timer the controller needs).
    RequeueAfter(Duration),
}

impl Action {
    /// `RequeueAfter(d)` when there is a `d`, else `Done`.
    pub fn after(d: Option<Duration>) -> Self {
        d.map_or(Action::Done, Action::RequeueAfter)
    }

    /// The requeue delay, if any.
    pub fn delay(self) -> Option<Duration> {
        match self {
            Action::Done => None,
            Action::RequeueAfter(d) => Some(d),
        }
    }
}

/// A kind the shared informers can cache.
pub trait Kind:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

impl<K> Kind for K where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

/// A work-queue key type.
pub trait QueueKey: Hash + Eq + Clone + Debug + Send + Sync + 'static {}

impl<T> QueueKey for T where T: Hash + Eq + Clone + Debug + Send + Sync + 'static {}

type Registration<T> = Box<dyn FnOnce(&Arc<Queue<T>>) + Send>;
type KeyLister<T> = Arc<dyn Fn() -> Vec<T> + Send + Sync>;

/// A control loop being assembled (see the module docs). Handlers are registered on the
/// shared informers when [`Controller::run`] is called, with the final queue.
pub struct Controller<'f, T: QueueKey = ObjectKey> {
    factory: &'f Factory,
    name: &'static str,
    backoff: Option<(Duration, Duration)>,
    workers: usize,
    resync: Option<Duration>,
    keys: Option<KeyLister<T>>,
    registrations: Vec<Registration<T>>,
    synced: Vec<BoxFuture<'static, ()>>,
    initial: Vec<T>,
}

impl<'f, T: QueueKey> Controller<'f, T> {
    /// A controller named `name` (logs, spans) over the informers of `factory`: one worker,
    /// no resync, client-go's default per-key backoff.
    pub fn new(factory: &'f Factory, name: &'static str) -> Self {
        Controller {
            factory,
            name,
            backoff: None,
            workers: 1,
            resync: None,
            keys: None,
            registrations: Vec::new(),
            synced: Vec::new(),
            initial: Vec::new(),
        }
    }

    /// Failed keys retry after `base`, doubling up to `max` (`base == max`: a fixed pace).
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = Some((base, max));
        self
    }

    /// How many keys are reconciled in parallel (never one key twice at once).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Every key of the reconciled kind is queued this often even without changes.
    pub fn resync(mut self, every: Duration) -> Self {
        self.resync = Some(every);
        self
    }

    /// The keys a resync queues (replaces those of [`Controller::reconciles`]).
    pub fn resync_keys(mut self, keys: impl Fn() -> Vec<T> + Send + Sync + 'static) -> Self {
        self.keys = Some(Arc::new(keys));
        self
    }

    /// Queues `key` once the caches have synced (for a loop keyed by one constant key).
    pub fn enqueue(mut self, key: T) -> Self {
        self.initial.push(key);
        self
    }

    /// Waits for the cache of `K` before the workers start (a kind the controller only reads).
    pub fn reads<K: Kind>(self) -> Self {
        let store = self.factory.store::<K>();
        self.waits_for(store)
    }

    /// Waits for `store` before the workers start.
    pub fn waits_for<K: Kind>(mut self, store: Arc<Store<K>>) -> Self {
        self.synced
            .push(Box::pin(async move { store.wait_synced().await }));
        self
    }

    /// Every change of `K` is mapped to the keys to queue.
    pub fn watches<K: Kind, I>(self, map: impl Fn(&Change<K>) -> I + Send + Sync + 'static) -> Self
    where
        I: IntoIterator<Item = T>,
    {
        let informer = self.factory.informer::<K>();
        self.watches_informer(informer, map)
    }

    /// Like [`Controller::watches`] on a given (e.g. selector-restricted) informer.
    pub fn watches_informer<K: Kind, I>(
        self,
        informer: Arc<Informer<K>>,
        map: impl Fn(&Change<K>) -> I + Send + Sync + 'static,
    ) -> Self
    where
        I: IntoIterator<Item = T>,
    {
        self.handles_informer(informer, move |q: &Queue<T>, c: &Change<K>| {
            map(c).into_iter().for_each(|k| q.add(k))
        })
    }

    /// Every change of `K` goes to `handler` with the queue (for handlers that also do
    /// bookkeeping, such as observing expectations).
    pub fn handles<K: Kind>(
        self,
        handler: impl Fn(&Queue<T>, &Change<K>) + Send + Sync + 'static,
    ) -> Self {
        let informer = self.factory.informer::<K>();
        self.handles_informer(informer, handler)
    }

    /// Like [`Controller::handles`] on a given informer; its cache is waited for.
    pub fn handles_informer<K: Kind>(
        mut self,
        informer: Arc<Informer<K>>,
        handler: impl Fn(&Queue<T>, &Change<K>) + Send + Sync + 'static,
    ) -> Self {
        self = self.waits_for(informer.store());
        self.registrations.push(Box::new(move |q: &Arc<Queue<T>>| {
            let q = Arc::clone(q);
            informer.add_handler(move |c| handler(&q, c));
        }));
        self
    }

    /// Registers the handlers, then (in a task) waits for the caches and runs the workers:
    /// `reconcile(ctx, key)` for each queued key, forever.
    pub fn run<C, F, Fut, E>(self, ctx: Arc<C>, reconcile: F)
    where
        C: Send + Sync + 'static,
        F: Fn(Arc<C>, T) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        E: Display + 'static,
    {
        let queue = match self.backoff {
            Some((base, max)) => Queue::with_backoff(base, max),
            None => Queue::new(),
        };
        for r in self.registrations {
            r(&queue);
        }
        let (name, workers) = (self.name, self.workers);
        let resync = self.resync.filter(|_| self.keys.is_some());
        let keys = self.keys;
        let (synced, initial) = (self.synced, self.initial);
        tokio::spawn(async move {
            futures::future::join_all(synced).await;
            tracing::info!(controller = name, "controller started");
            initial.into_iter().for_each(|k| queue.add(k));
            let all = move || keys.as_ref().map(|k| k()).unwrap_or_default();
            run_workers(name, queue, workers, resync, all, move |key: T| {
                reconcile(Arc::clone(&ctx), key)
            })
            .await;
        });
    }
}

impl<'f> Controller<'f, ObjectKey> {
    /// The primary kind: every change queues the object's key, and a resync queues every
    /// object's key.
    pub fn reconciles<K: Kind>(self) -> Self {
        let store = self.factory.store::<K>();
        let keys = move || store.all().iter().map(|o| key_of(o.as_ref())).collect();
        self.resync_keys(keys)
            .watches::<K, _>(|c| Some(key_of(c.object().as_ref())))
    }

    /// A kind whose objects a `owner_kind` controls: a change queues the controller's key.
    pub fn owns<K: Kind>(self, owner_kind: &'static str) -> Self {
        self.watches::<K, _>(move |c| owner_key(c.object().meta(), owner_kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    use kube::runtime::watcher::Event;
    use std::sync::Mutex;

    #[test]
    fn actions_from_delays() {
        assert_eq!(Action::after(None), Action::Done);
        let d = Duration::from_secs(3);
        assert_eq!(Action::after(Some(d)), Action::RequeueAfter(d));
        assert_eq!(Action::RequeueAfter(d).delay(), Some(d));
        assert_eq!(Action::Done.delay(), None);
    }

    fn pod(name: &str, owner: Option<(&str, &str)>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some(name.into()),
                resource_version: Some("1".into()),
                owner_references: owner.map(|(kind, n)| {
                    vec![OwnerReference {
                        kind: kind.into(),
                        name: n.into(),
                        controller: Some(true),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// The builder over a factory whose informers are fed by hand: waits for the caches,
    /// maps owned objects to their owner, requeues on `RequeueAfter`.
    #[tokio::test(start_paused = true)]
    async fn builder_waits_for_caches_and_routes_changes() {
        let client = kube::Client::new(
            tower::service_fn(|_: http::Request<kube::client::Body>| async {
                Err::<http::Response<kube::client::Body>, _>(std::io::Error::other("offline"))
            }),
            "ns",
        );
        let factory = Factory::new(client);
        let seen: Arc<Mutex<Vec<(String, tokio::time::Instant)>>> = Arc::default();
        Controller::new(&factory, "test")
            .owns::<Pod>("ReplicaSet")
            .run(seen.clone(), |seen, key: ObjectKey| async move {
                seen.lock()
                    .unwrap()
                    .push((key.to_string(), tokio::time::Instant::now()));
                let again = (seen.lock().unwrap().len() == 1).then_some(Duration::from_secs(5));
                Ok::<_, String>(Action::after(again))
            });
        let pods = factory.informer::<Pod>();
        pods.handle(Event::Apply(pod("a", Some(("ReplicaSet", "web")))));
        pods.handle(Event::Apply(pod("b", Some(("Job", "batch")))));
        pods.handle(Event::Apply(pod("c", None)));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            seen.lock().unwrap().is_empty(),
            "not before the cache synced"
        );
        pods.handle(Event::Init);
        for p in [
            pod("a", Some(("ReplicaSet", "web"))),
            pod("b", Some(("Job", "batch"))),
        ] {
            pods.handle(Event::InitApply(p));
        }
        pods.handle(Event::InitApply(pod("c", None)));
        pods.handle(Event::InitDone);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let got: Vec<String> = seen.lock().unwrap().iter().map(|s| s.0.clone()).collect();
        assert_eq!(
            got,
            ["ns/web"],
            "only the ReplicaSet-owned pod, keyed by its owner"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        let s = seen.lock().unwrap();
        assert_eq!(s.len(), 2, "requeued after 5 s");
        assert_eq!((s[1].1 - s[0].1).as_secs(), 5);
    }
}
