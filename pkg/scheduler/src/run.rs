//! The scheduling loop: watches nodes and pods into an in-memory cache (with pods it bound
//! but has not yet seen bound "assumed" in place), schedules pending pods of
//! `default-scheduler` with the pure core, binds them concurrently through the `binding`
//! subresource, and retries unschedulable pods when nodes or pods change and every few seconds.

use crate::core::{self, pod_key, NodeInfo, PodInfo};
use crate::events::{self, Recorded};
use crate::volumes::{self, PodVolumes};
use crate::Error;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{
    Binding, Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

/// Settings of the loop.
#[derive(Debug, Clone)]
pub struct Options {
    /// Pods whose `spec.schedulerName` is this are ours.
    pub scheduler_name: String,
    /// Bindings in flight at once.
    pub bind_concurrency: usize,
    /// Events and status patches in flight at once.
    pub event_concurrency: usize,
    /// An unschedulable pod is retried at least this often.
    pub retry_interval: Duration,
    /// First retry delay of a pod that failed; doubles per attempt up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scheduler_name: "default-scheduler".to_string(),
            bind_concurrency: 16,
            event_concurrency: 4,
            retry_interval: Duration::from_secs(5),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Runs the scheduler with the default options until a watch ends for good.
pub async fn run(client: kube::Client) -> Result<(), Error> {
    run_with(client, Options::default()).await
}

#[derive(Debug)]
enum QueueState {
    /// Waiting in the active queue.
    Active,
    /// Being bound.
    Binding,
    /// Failed; retried after `backoff_until` once something changed, or after the retry interval.
    Unschedulable {
        since: Instant,
        backoff_until: Instant,
        woken: bool,
    },
    /// `spec.schedulingGates` is not empty.
    Gated,
}

#[derive(Debug)]
struct Pending {
    pod: Arc<Pod>,
    state: QueueState,
    attempts: u32,
    last_event: Option<Recorded>,
}

/// What spawned tasks report back to the loop.
enum Outcome {
    /// A binding finished.
    Bind {
        key: String,
        node: String,
        result: Result<(), kube::Error>,
    },
    /// A `FailedScheduling` event was written; a repeat of its message bumps its count.
    Recorded { key: String, event: Recorded },
}

/// A watched kind kept by `namespace/name` (volumes, claims, classes), replaced on re-list.
struct KindCache<K> {
    objects: HashMap<String, Arc<K>>,
    relist: Option<HashMap<String, Arc<K>>>,
    synced: bool,
}

impl<K: kube::Resource> KindCache<K> {
    fn new() -> Self {
        KindCache {
            objects: HashMap::new(),
            relist: None,
            synced: false,
        }
    }

    fn key(obj: &K) -> String {
        let m = obj.meta();
        format!(
            "{}/{}",
            m.namespace.as_deref().unwrap_or(""),
            m.name.as_deref().unwrap_or("")
        )
    }

    fn get(&self, ns: &str, name: &str) -> Option<&K> {
        self.objects.get(&format!("{ns}/{name}")).map(Arc::as_ref)
    }

    /// Applies a watch event; true when the cache changed in a way worth a retry.
    fn on_event(&mut self, ev: Event<K>) -> bool {
        match ev {
            Event::Init => {
                self.relist = Some(HashMap::new());
                false
            }
            Event::InitApply(o) => {
                if let Some(r) = self.relist.as_mut() {
                    r.insert(Self::key(&o), Arc::new(o));
                }
                false
            }
            Event::InitDone => {
                if let Some(r) = self.relist.take() {
                    self.objects = r;
                }
                self.synced = true;
                true
            }
            Event::Apply(o) => {
                self.objects.insert(Self::key(&o), Arc::new(o));
                true
            }
            Event::Delete(o) => {
                self.objects.remove(&Self::key(&o));
                true
            }
        }
    }
}

/// The scheduler's cache and queues; only the loop task touches it.
struct Scheduler {
    claims: KindCache<PersistentVolumeClaim>,
    volumes: KindCache<PersistentVolume>,
    classes: KindCache<StorageClass>,
    opts: Options,
    client: kube::Client,
    nodes: Vec<NodeInfo>,
    node_index: HashMap<String, usize>,
    /// Pods bound to nodes the cache does not know (yet): node → pods.
    orphans: HashMap<String, HashMap<String, PodInfo>>,
    /// Where each placed pod is: key → node name.
    placed: HashMap<String, String>,
    /// Pods bound by this scheduler that the watch has not shown bound yet: key → node.
    assumed: HashMap<String, String>,
    pending: HashMap<String, Pending>,
    active: VecDeque<String>,
    bind_tx: mpsc::UnboundedSender<Outcome>,
    bind_slots: Arc<Semaphore>,
    event_slots: Arc<Semaphore>,
    /// Keys seen during a watch re-list, to drop what vanished meanwhile.
    pod_relist: Option<HashSet<String>>,
    node_relist: Option<HashSet<String>>,
    pods_synced: bool,
    nodes_synced: bool,
    bound: u64,
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

fn assigned_node(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn is_gated(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|g| !g.is_empty())
}

impl Scheduler {
    fn new(client: kube::Client, opts: Options) -> (Scheduler, mpsc::UnboundedReceiver<Outcome>) {
        let (bind_tx, bind_rx) = mpsc::unbounded_channel();
        let s = Scheduler {
            claims: KindCache::new(),
            volumes: KindCache::new(),
            classes: KindCache::new(),
            bind_slots: Arc::new(Semaphore::new(opts.bind_concurrency.max(1))),
            event_slots: Arc::new(Semaphore::new(opts.event_concurrency.max(1))),
            opts,
            client,
            nodes: Vec::new(),
            node_index: HashMap::new(),
            orphans: HashMap::new(),
            placed: HashMap::new(),
            assumed: HashMap::new(),
            pending: HashMap::new(),
            active: VecDeque::new(),
            bind_tx,
            pod_relist: None,
            node_relist: None,
            pods_synced: false,
            nodes_synced: false,
            bound: 0,
        };
        (s, bind_rx)
    }
}

/// Retry delay after `attempts` failed attempts: doubling from the initial backoff, capped.
fn backoff_for(opts: &Options, attempts: u32) -> Duration {
    let shift = attempts.saturating_sub(1).min(16);
    opts.initial_backoff
        .saturating_mul(1u32 << shift)
        .min(opts.max_backoff)
}

impl Scheduler {
    /// Something changed that may let unschedulable pods fit: they are retried once their
    /// backoff passes. A node change is a strong hint (a label, a taint or room appeared), so
    /// its pods wait at most the initial backoff; a pod leaving a node keeps the full backoff.
    fn cluster_changed(&mut self, node_event: bool) {
        let initial = self.opts.initial_backoff;
        for p in self.pending.values_mut() {
            if let QueueState::Unschedulable {
                since,
                backoff_until,
                woken,
            } = &mut p.state
            {
                *woken = true;
                if node_event {
                    *backoff_until = (*backoff_until).min(*since + initial);
                }
            }
        }
    }

    fn place(&mut self, key: &str, node: &str, info: PodInfo) {
        if let Some(prev) = self.placed.get(key).cloned() {
            if prev != node {
                self.unplace(key);
            }
        }
        match self.node_index.get(node) {
            Some(&i) => self.nodes[i].add_pod(info),
            None => {
                self.orphans
                    .entry(node.to_string())
                    .or_default()
                    .insert(key.to_string(), info);
            }
        }
        self.placed.insert(key.to_string(), node.to_string());
    }

    fn unplace(&mut self, key: &str) -> bool {
        let Some(node) = self.placed.remove(key) else {
            return false;
        };
        match self.node_index.get(&node) {
            Some(&i) => {
                self.nodes[i].remove_pod(key);
            }
            None => {
                if let Some(m) = self.orphans.get_mut(&node) {
                    m.remove(key);
                    if m.is_empty() {
                        self.orphans.remove(&node);
                    }
                }
            }
        }
        true
    }

    /// The pod is gone (deleted, finished, or no longer ours).
    fn forget_pod(&mut self, key: &str) {
        let was_placed = self.unplace(key);
        self.assumed.remove(key);
        if let Some(p) = self.pending.get(key) {
            if !matches!(p.state, QueueState::Binding) {
                self.pending.remove(key);
            }
        }
        if was_placed {
            // Room was freed: pods that did not fit may now.
            self.cluster_changed(false);
        }
    }

    fn on_pod(&mut self, pod: Pod) {
        let key = pod_key(&pod);
        if let Some(seen) = self.pod_relist.as_mut() {
            seen.insert(key.clone());
        }
        if is_terminal(&pod) {
            self.forget_pod(&key);
            return;
        }
        if let Some(node) = assigned_node(&pod) {
            let node = node.to_string();
            self.assumed.remove(&key);
            if let Some(p) = self.pending.get(&key) {
                if !matches!(p.state, QueueState::Binding) {
                    self.pending.remove(&key);
                }
            }
            self.place(&key, &node, PodInfo::from_pod(&pod));
            return;
        }
        let ours = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or("default-scheduler")
            == self.opts.scheduler_name;
        if !ours || pod.metadata.deletion_timestamp.is_some() {
            self.forget_pod(&key);
            return;
        }
        if self.assumed.contains_key(&key) {
            // Bound by us; the watch has not caught up.
            return;
        }
        let gated = is_gated(&pod);
        let pod = Arc::new(pod);
        match self.pending.get_mut(&key) {
            Some(p) => {
                p.pod = pod;
                if gated {
                    if !matches!(p.state, QueueState::Binding) {
                        p.state = QueueState::Gated;
                    }
                } else if matches!(p.state, QueueState::Gated) {
                    p.state = QueueState::Active;
                    self.active.push_back(key);
                }
            }
            None => {
                let state = if gated {
                    QueueState::Gated
                } else {
                    self.active.push_back(key.clone());
                    QueueState::Active
                };
                self.pending.insert(
                    key,
                    Pending {
                        pod,
                        state,
                        attempts: 0,
                        last_event: None,
                    },
                );
            }
        }
    }

    fn on_pod_event(&mut self, ev: Event<Pod>) {
        match ev {
            Event::Init => self.pod_relist = Some(HashSet::new()),
            Event::InitApply(p) | Event::Apply(p) => self.on_pod(p),
            Event::Delete(p) => self.forget_pod(&pod_key(&p)),
            Event::InitDone => {
                if let Some(seen) = self.pod_relist.take() {
                    let gone: Vec<String> = self
                        .placed
                        .keys()
                        .chain(self.pending.keys())
                        .filter(|k| !seen.contains(*k))
                        .cloned()
                        .collect();
                    for k in gone {
                        self.forget_pod(&k);
                    }
                }
                self.pods_synced = true;
            }
        }
    }

    fn on_node(&mut self, node: Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        if let Some(seen) = self.node_relist.as_mut() {
            seen.insert(name.clone());
        }
        match self.node_index.get(&name) {
            Some(&i) => {
                let fresh = NodeInfo::new(node.clone());
                let relevant = !self.nodes[i].same_scheduling_inputs(&fresh);
                self.nodes[i].set_node(node);
                if relevant {
                    self.cluster_changed(true);
                }
            }
            None => {
                let mut ni = NodeInfo::new(node);
                if let Some(pods) = self.orphans.remove(&name) {
                    for (_, p) in pods {
                        ni.add_pod(p);
                    }
                }
                self.node_index.insert(name, self.nodes.len());
                self.nodes.push(ni);
                self.cluster_changed(true);
            }
        }
    }

    fn remove_node(&mut self, name: &str) {
        let Some(i) = self.node_index.remove(name) else {
            return;
        };
        let ni = self.nodes.swap_remove(i);
        if i < self.nodes.len() {
            let moved = self.nodes[i].name().to_string();
            self.node_index.insert(moved, i);
        }
        // Its pods still exist until something deletes them.
        let pods: HashMap<String, PodInfo> =
            ni.pods().map(|p| (p.key.clone(), p.clone())).collect();
        if !pods.is_empty() {
            self.orphans.insert(name.to_string(), pods);
        }
    }

    fn on_node_event(&mut self, ev: Event<Node>) {
        match ev {
            Event::Init => self.node_relist = Some(HashSet::new()),
            Event::InitApply(n) | Event::Apply(n) => self.on_node(n),
            Event::Delete(n) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                self.remove_node(&name);
            }
            Event::InitDone => {
                if let Some(seen) = self.node_relist.take() {
                    let gone: Vec<String> = self
                        .node_index
                        .keys()
                        .filter(|k| !seen.contains(*k))
                        .cloned()
                        .collect();
                    for n in gone {
                        self.remove_node(&n);
                    }
                }
                self.nodes_synced = true;
            }
        }
    }

    /// Moves unschedulable pods whose time has come back to the active queue.
    fn requeue_due(&mut self) {
        let now = Instant::now();
        let retry = self.opts.retry_interval;
        for (k, p) in self.pending.iter_mut() {
            if let QueueState::Unschedulable {
                since,
                backoff_until,
                woken,
            } = p.state
            {
                if (woken && now >= backoff_until) || now.duration_since(since) >= retry {
                    p.state = QueueState::Active;
                    self.active.push_back(k.clone());
                }
            }
        }
    }

    /// The pod's claims as the VolumeBinding plugin sees them.
    fn pod_volumes(&self, pod: &Pod) -> PodVolumes {
        if volumes::claim_names(pod).is_empty() {
            return PodVolumes::default();
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        volumes::pod_volumes(
            pod,
            |n| self.claims.get(ns, n),
            |n| self.volumes.get("", n),
            |n| self.classes.get("", n),
        )
    }

    /// Whether every cache scheduling reads has its first list.
    fn synced(&self) -> bool {
        self.pods_synced
            && self.nodes_synced
            && self.claims.synced
            && self.volumes.synced
            && self.classes.synced
    }

    /// Schedules the next active pod; false when the queue is empty.
    fn schedule_one(&mut self) -> bool {
        let Some(key) = self.active.pop_front() else {
            return false;
        };
        let pod = match self.pending.get(&key) {
            Some(p) if matches!(p.state, QueueState::Active) => p.pod.clone(),
            _ => return true,
        };
        let vols = self.pod_volumes(&pod);
        let Some(p) = self.pending.get_mut(&key) else {
            return true;
        };
        p.attempts += 1;
        match core::schedule_with_volumes(&pod, &self.nodes, &vols, &mut rand::thread_rng()) {
            Ok(node) => {
                p.state = QueueState::Binding;
                self.assumed.insert(key.clone(), node.clone());
                self.place(&key, &node, PodInfo::from_pod(&pod));
                let annotate = vols.claims_to_annotate(&node);
                self.spawn_bind(key, node, pod, annotate);
            }
            Err(fit) => {
                let backoff = backoff_for(&self.opts, p.attempts);
                let now = Instant::now();
                p.state = QueueState::Unschedulable {
                    since: now,
                    backoff_until: now + backoff,
                    woken: false,
                };
                let previous = p.last_event.clone();
                tracing::debug!(pod = %key, message = %fit, "unschedulable");
                self.spawn_failure(pod, fit.condition_reason(), fit.to_string(), previous);
            }
        }
        true
    }

    fn spawn_bind(&self, key: String, node: String, pod: Arc<Pod>, annotate: Vec<String>) {
        let client = self.client.clone();
        let slots = self.bind_slots.clone();
        let events = self.event_slots.clone();
        let tx = self.bind_tx.clone();
        tokio::spawn(async move {
            let queued = Instant::now();
            let result = {
                let _permit = slots.acquire_owned().await;
                let started = Instant::now();
                let r = match select_node(&client, &pod, &annotate, &node).await {
                    Ok(()) => bind(&client, &pod, &node).await,
                    Err(e) => Err(e),
                };
                tracing::debug!(
                    pod = %key,
                    node = %node,
                    waited_ms = started.duration_since(queued).as_millis() as u64,
                    took_ms = started.elapsed().as_millis() as u64,
                    "bound"
                );
                r
            };
            if result.is_ok() {
                let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
                let name = pod.metadata.name.as_deref().unwrap_or("");
                let msg = format!("Successfully assigned {ns}/{name} to {node}");
                let client = client.clone();
                let pod = pod.clone();
                tokio::spawn(async move {
                    let _permit = events.acquire_owned().await;
                    events::record(&client, &pod, "Normal", "Scheduled", "Binding", &msg, None)
                        .await;
                });
            }
            let _ = tx.send(Outcome::Bind { key, node, result });
        });
    }

    fn spawn_failure(
        &self,
        pod: Arc<Pod>,
        reason: &'static str,
        message: String,
        previous: Option<Recorded>,
    ) {
        let client = self.client.clone();
        let slots = self.event_slots.clone();
        let tx = self.bind_tx.clone();
        let key = pod_key(&pod);
        tokio::spawn(async move {
            let _permit = slots.acquire_owned().await;
            events::set_unschedulable(&client, &pod, reason, &message).await;
            let rec = events::record(
                &client,
                &pod,
                "Warning",
                "FailedScheduling",
                "Scheduling",
                &message,
                previous.as_ref(),
            )
            .await;
            if let Some(event) = rec {
                let _ = tx.send(Outcome::Recorded { key, event });
            }
        });
    }

    fn on_outcome(&mut self, out: Outcome) {
        let (key, node, result) = match out {
            Outcome::Recorded { key, event } => {
                if let Some(p) = self.pending.get_mut(&key) {
                    p.last_event = Some(event);
                }
                return;
            }
            Outcome::Bind { key, node, result } => (key, node, result),
        };
        let out = BindResult { key, node };
        match result {
            Ok(()) => {
                self.bound += 1;
                // The pod stays assumed until the watch shows it bound.
                self.pending.remove(&out.key);
            }
            Err(e) => {
                let gone = matches!(&e, kube::Error::Api(s) if s.code == 404 || s.code == 409);
                tracing::debug!(pod = %out.key, node = %out.node, error = %e, "binding failed");
                if self.assumed.get(&out.key) == Some(&out.node) {
                    self.assumed.remove(&out.key);
                    self.unplace(&out.key);
                }
                if gone {
                    // Deleted or bound by someone else: the watch tells the rest.
                    self.pending.remove(&out.key);
                    return;
                }
                if let Some(p) = self.pending.get_mut(&out.key) {
                    let now = Instant::now();
                    let backoff = backoff_for(&self.opts, p.attempts);
                    p.state = QueueState::Unschedulable {
                        since: now,
                        backoff_until: now + backoff,
                        woken: true,
                    };
                    let pod = p.pod.clone();
                    let previous = p.last_event.clone();
                    let detail = match &e {
                        kube::Error::Api(s) => s.message.clone(),
                        other => other.to_string(),
                    };
                    self.spawn_failure(
                        pod,
                        "SchedulerError",
                        format!("running Bind plugin \"DefaultBinder\": {detail}"),
                        previous,
                    );
                }
            }
        }
    }
}

type WatchItem<K> = Option<Result<Event<K>, watcher::Error>>;

/// The next item of one of the storage watches.
enum VolumeEvent {
    Claim(Box<WatchItem<PersistentVolumeClaim>>),
    Volume(Box<WatchItem<PersistentVolume>>),
    Class(Box<WatchItem<StorageClass>>),
}

impl Scheduler {
    /// Applies a storage watch item; a change lets unschedulable pods try again (a claim got
    /// bound, a volume appeared). Errors when a watch ended for good.
    fn on_volume_event(&mut self, ev: VolumeEvent) -> Result<(), Error> {
        fn take<K>(what: &'static str, item: WatchItem<K>) -> Result<Option<Event<K>>, Error> {
            match item {
                Some(Ok(ev)) => Ok(Some(ev)),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "{what} watch failed, retrying");
                    Ok(None)
                }
                None => Err(Error::WatchEnded(what)),
            }
        }
        let changed = match ev {
            VolumeEvent::Claim(i) => {
                take("persistentvolumeclaim", *i)?.map(|e| self.claims.on_event(e))
            }
            VolumeEvent::Volume(i) => {
                take("persistentvolume", *i)?.map(|e| self.volumes.on_event(e))
            }
            VolumeEvent::Class(i) => take("storageclass", *i)?.map(|e| self.classes.on_event(e)),
        };
        if changed == Some(true) {
            self.cluster_changed(true);
        }
        Ok(())
    }
}

struct BindResult {
    key: String,
    node: String,
}

/// Annotates the pod's unbound WaitForFirstConsumer claims with the chosen node, so their
/// provisioner creates the volumes there (upstream's VolumeBinding PreBind, without waiting
/// for the volumes).
async fn select_node(
    client: &kube::Client,
    pod: &Pod,
    claims: &[String],
    node: &str,
) -> Result<(), kube::Error> {
    if claims.is_empty() {
        return Ok(());
    }
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let patch = serde_json::json!({"metadata": {"annotations": {volumes::SELECTED_NODE: node}}});
    for c in claims {
        api.patch(c, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        tracing::debug!(claim = %format!("{ns}/{c}"), node, "selected node for claim");
    }
    Ok(())
}

/// `POST pods/<name>/binding` with a v1 Binding to `node`.
async fn bind(client: &kube::Client, pod: &Pod, node: &str) -> Result<(), kube::Error> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(ns.to_string()),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        },
        target: ObjectReference {
            api_version: Some("v1".to_string()),
            kind: Some("Node".to_string()),
            name: Some(node.to_string()),
            ..Default::default()
        },
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.create_subresource::<_, serde_json::Value>(
        "binding",
        name,
        &PostParams::default(),
        &binding,
    )
    .await
    .map(|_| ())
}

/// Runs the scheduler with `opts` until a watch ends for good.
pub async fn run_with(client: kube::Client, opts: Options) -> Result<(), Error> {
    let pods_api: Api<Pod> = Api::all(client.clone());
    let nodes_api: Api<Node> = Api::all(client.clone());
    let mut pod_stream = watcher::watcher(pods_api, watcher::Config::default().page_size(5000))
        .default_backoff()
        .boxed();
    let mut node_stream = watcher::watcher(nodes_api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut claim_stream = watcher::watcher(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .boxed();
    let mut volume_stream = watcher::watcher(
        Api::<PersistentVolume>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .boxed();
    let mut class_stream = watcher::watcher(
        Api::<StorageClass>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .boxed();
    let (mut s, mut bind_rx) = Scheduler::new(client, opts);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_report = Instant::now();
    let mut last_bound = 0u64;
    tracing::info!("scheduler started");
    loop {
        // Take in everything that is ready, then schedule a batch.
        let mut drained = 0;
        while drained < 2000 {
            let mut any = false;
            if let Some(ev) = pod_stream.next().now_or_never() {
                any = true;
                match ev {
                    Some(Ok(ev)) => s.on_pod_event(ev),
                    Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed, retrying"),
                    None => return Err(Error::WatchEnded("pod")),
                }
            }
            if let Some(ev) = node_stream.next().now_or_never() {
                any = true;
                match ev {
                    Some(Ok(ev)) => s.on_node_event(ev),
                    Some(Err(e)) => tracing::warn!(error = %e, "node watch failed, retrying"),
                    None => return Err(Error::WatchEnded("node")),
                }
            }
            while let Ok(out) = bind_rx.try_recv() {
                any = true;
                s.on_outcome(out);
            }
            if let Some(ev) = claim_stream.next().now_or_never() {
                any = true;
                s.on_volume_event(VolumeEvent::Claim(Box::new(ev)))?;
            }
            if let Some(ev) = volume_stream.next().now_or_never() {
                any = true;
                s.on_volume_event(VolumeEvent::Volume(Box::new(ev)))?;
            }
            if let Some(ev) = class_stream.next().now_or_never() {
                any = true;
                s.on_volume_event(VolumeEvent::Class(Box::new(ev)))?;
            }
            if !any {
                break;
            }
            drained += 1;
        }
        if s.synced() && !s.active.is_empty() {
            for _ in 0..256 {
                if !s.schedule_one() {
                    break;
                }
            }
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            ev = pod_stream.next() => match ev {
                Some(Ok(ev)) => s.on_pod_event(ev),
                Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed, retrying"),
                None => return Err(Error::WatchEnded("pod")),
            },
            ev = node_stream.next() => match ev {
                Some(Ok(ev)) => s.on_node_event(ev),
                Some(Err(e)) => tracing::warn!(error = %e, "node watch failed, retrying"),
                None => return Err(Error::WatchEnded("node")),
            },
            Some(out) = bind_rx.recv() => s.on_outcome(out),
            ev = claim_stream.next() => s.on_volume_event(VolumeEvent::Claim(Box::new(ev)))?,
            ev = volume_stream.next() => s.on_volume_event(VolumeEvent::Volume(Box::new(ev)))?,
            ev = class_stream.next() => s.on_volume_event(VolumeEvent::Class(Box::new(ev)))?,
            _ = tick.tick() => {
                s.requeue_due();
                if last_report.elapsed() >= Duration::from_secs(10) && s.bound != last_bound {
                    tracing::info!(bound = s.bound, pending = s.pending.len(), nodes = s.nodes.len(), "scheduler progress");
                    last_bound = s.bound;
                    last_report = Instant::now();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A client whose requests all fail (nothing listens on port 1).
    fn offline_client() -> kube::Client {
        let cfg = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        kube::Client::try_from(cfg).unwrap()
    }

    fn sched() -> (Scheduler, mpsc::UnboundedReceiver<Outcome>) {
        let (mut s, rx) = Scheduler::new(offline_client(), Options::default());
        s.pods_synced = true;
        s.nodes_synced = true;
        s.claims.synced = true;
        s.volumes.synced = true;
        s.classes.synced = true;
        (s, rx)
    }

    fn node(name: &str, cpu: &str) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {}},
            "status": {
                "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}]
            }
        }))
        .unwrap()
    }

    fn pod_v(name: &str, cpu: &str) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": cpu}}}]}
        })
    }

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn bound_to(name: &str, cpu: &str, node: &str) -> Pod {
        let mut v = pod_v(name, cpu);
        v["spec"]["nodeName"] = json!(node);
        pod(v)
    }

    fn requested(s: &Scheduler, node: &str) -> i64 {
        s.nodes[s.node_index[node]].requested().milli_cpu
    }

    fn is_unschedulable(s: &Scheduler, key: &str) -> bool {
        matches!(
            s.pending.get(key).map(|p| &p.state),
            Some(QueueState::Unschedulable { .. })
        )
    }

    #[tokio::test]
    async fn assumes_then_confirms_a_binding() {
        let (mut s, _rx) = sched();
        s.on_node(node("n1", "1"));
        s.on_pod(pod(pod_v("a", "600m")));
        assert!(s.schedule_one());
        assert_eq!(s.assumed.get("default/a").map(String::as_str), Some("n1"));
        assert_eq!(requested(&s, "n1"), 600, "assumed pods hold their requests");
        // The watch still shows it pending: ignored while assumed.
        s.on_pod(pod(pod_v("a", "600m")));
        assert!(s.active.is_empty());
        // A second pod no longer fits.
        s.on_pod(pod(pod_v("b", "600m")));
        assert!(s.schedule_one());
        assert!(is_unschedulable(&s, "default/b"));
        // The binding succeeded and the watch shows the pod bound.
        s.on_outcome(Outcome::Bind {
            key: "default/a".into(),
            node: "n1".into(),
            result: Ok(()),
        });
        s.on_pod(bound_to("a", "600m", "n1"));
        assert!(s.assumed.is_empty());
        assert!(!s.pending.contains_key("default/a"));
        assert_eq!(requested(&s, "n1"), 600);
        assert_eq!(s.bound, 1);
    }

    #[tokio::test]
    async fn failed_binding_forgets_the_assumption_and_retries() {
        let (mut s, mut rx) = sched();
        s.on_node(node("n1", "1"));
        s.on_pod(pod(pod_v("a", "600m")));
        assert!(s.schedule_one());
        // The offline client's binding fails; its outcome comes back on the channel.
        let out = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(&out, Outcome::Bind { result: Err(_), .. }));
        s.on_outcome(out);
        assert!(s.assumed.is_empty());
        assert_eq!(requested(&s, "n1"), 0);
        assert!(is_unschedulable(&s, "default/a"));
    }

    #[tokio::test]
    async fn conflict_on_binding_drops_the_pod() {
        let (mut s, _rx) = sched();
        s.on_node(node("n1", "1"));
        s.on_pod(pod(pod_v("a", "100m")));
        assert!(s.schedule_one());
        let status = kube::core::Status::failure("already assigned", "Conflict").with_code(409);
        s.on_outcome(Outcome::Bind {
            key: "default/a".into(),
            node: "n1".into(),
            result: Err(kube::Error::Api(Box::new(status))),
        });
        assert!(s.pending.is_empty());
        assert!(s.placed.is_empty());
    }

    #[tokio::test]
    async fn deleting_a_pod_frees_room_and_wakes_unschedulable_pods() {
        let (mut s, _rx) = sched();
        s.on_node(node("n1", "1"));
        s.on_pod(bound_to("big", "900m", "n1"));
        s.on_pod(pod(pod_v("a", "500m")));
        assert!(s.schedule_one());
        assert!(is_unschedulable(&s, "default/a"));
        s.on_pod_event(Event::Delete(bound_to("big", "900m", "n1")));
        assert_eq!(requested(&s, "n1"), 0);
        match s.pending.get("default/a").map(|p| &p.state) {
            Some(QueueState::Unschedulable { woken, .. }) => assert!(*woken),
            other => panic!("unexpected state {other:?}"),
        }
        // A finished pod frees its room as well.
        s.on_pod(bound_to("done", "300m", "n1"));
        let mut v = serde_json::to_value(bound_to("done", "300m", "n1")).unwrap();
        v["status"] = json!({"phase": "Succeeded"});
        s.on_pod(pod(v));
        assert_eq!(requested(&s, "n1"), 0);
    }

    #[tokio::test]
    async fn node_changes_retry_after_the_initial_backoff_and_heartbeats_do_not() {
        let (mut s, _rx) = sched();
        s.on_node(node("n1", "1"));
        let mut v = pod_v("a", "100m");
        v["spec"]["nodeSelector"] = json!({"disk": "ssd"});
        s.on_pod(pod(v));
        // Several failed attempts make the backoff long.
        for _ in 0..5 {
            if let Some(p) = s.pending.get_mut("default/a") {
                p.state = QueueState::Active;
            }
            s.active.push_back("default/a".into());
            assert!(s.schedule_one());
        }
        let before = match s.pending["default/a"].state {
            QueueState::Unschedulable {
                backoff_until,
                since,
                ..
            } => backoff_until - since,
            _ => panic!("not unschedulable"),
        };
        assert_eq!(before, Duration::from_secs(10));
        // A heartbeat changes nothing the filters read.
        let mut hb = node("n1", "1");
        if let Some(st) = hb.status.as_mut() {
            if let Some(c) = st.conditions.as_mut() {
                c[0].message = Some("still fine".into());
            }
        }
        s.on_node(hb);
        assert!(matches!(
            s.pending["default/a"].state,
            QueueState::Unschedulable { woken: false, .. }
        ));
        // A label does: the pod is retried after the initial backoff.
        let mut labeled = node("n1", "1");
        labeled.metadata.labels = Some([("disk".to_string(), "ssd".to_string())].into());
        s.on_node(labeled);
        match s.pending["default/a"].state {
            QueueState::Unschedulable {
                backoff_until,
                since,
                woken,
            } => {
                assert!(woken);
                assert_eq!(backoff_until - since, Duration::from_secs(1));
            }
            _ => panic!("not unschedulable"),
        }
        if let Some(p) = s.pending.get_mut("default/a") {
            if let QueueState::Unschedulable { backoff_until, .. } = &mut p.state {
                *backoff_until = Instant::now();
            }
        }
        s.requeue_due();
        assert!(s.schedule_one());
        assert_eq!(s.assumed.get("default/a").map(String::as_str), Some("n1"));
    }

    #[tokio::test]
    async fn retries_every_retry_interval_without_changes() {
        let (mut s, _rx) = sched();
        s.opts.retry_interval = Duration::from_millis(0);
        s.on_pod(pod(pod_v("a", "100m")));
        assert!(s.schedule_one());
        assert!(is_unschedulable(&s, "default/a"));
        s.requeue_due();
        assert_eq!(s.active.len(), 1);
    }

    #[tokio::test]
    async fn nodes_leaving_and_returning_keep_their_pods() {
        let (mut s, _rx) = sched();
        s.on_pod(bound_to("early", "200m", "n2"));
        s.on_node(node("n1", "1"));
        s.on_node(node("n2", "1"));
        assert_eq!(
            requested(&s, "n2"),
            200,
            "pods seen before their node are kept"
        );
        s.on_node_event(Event::Delete(node("n1", "1")));
        assert_eq!(s.nodes.len(), 1);
        assert_eq!(s.node_index["n2"], 0);
        s.on_node_event(Event::Delete(node("n2", "1")));
        assert!(s.orphans.contains_key("n2"));
        s.on_node(node("n2", "1"));
        assert_eq!(requested(&s, "n2"), 200);
    }

    #[tokio::test]
    async fn relist_forgets_vanished_pods_and_nodes() {
        let (mut s, _rx) = sched();
        s.on_node(node("n1", "1"));
        s.on_node(node("n2", "1"));
        s.on_pod(bound_to("gone", "300m", "n1"));
        s.on_pod(bound_to("kept", "100m", "n1"));
        s.on_pod_event(Event::Init);
        s.on_pod_event(Event::InitApply(bound_to("kept", "100m", "n1")));
        s.on_pod_event(Event::InitDone);
        assert_eq!(requested(&s, "n1"), 100);
        s.on_node_event(Event::Init);
        s.on_node_event(Event::InitApply(node("n1", "1")));
        s.on_node_event(Event::InitDone);
        assert_eq!(s.nodes.len(), 1);
    }

    #[tokio::test]
    async fn gated_and_foreign_pods_are_not_scheduled() {
        let (mut s, _rx) = sched();
        s.on_node(node("n1", "1"));
        let mut gated = pod_v("g", "100m");
        gated["spec"]["schedulingGates"] = json!([{"name": "example.com/wait"}]);
        s.on_pod(pod(gated));
        let mut foreign = pod_v("f", "100m");
        foreign["spec"]["schedulerName"] = json!("other-scheduler");
        s.on_pod(pod(foreign));
        assert!(s.active.is_empty());
        assert!(!s.pending.contains_key("default/f"));
        // Removing the gates queues the pod.
        s.on_pod(pod(pod_v("g", "100m")));
        assert_eq!(s.active.len(), 1);
        assert!(s.schedule_one());
        assert!(s.assumed.contains_key("default/g"));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let o = Options::default();
        assert_eq!(backoff_for(&o, 1), Duration::from_secs(1));
        assert_eq!(backoff_for(&o, 2), Duration::from_secs(2));
        assert_eq!(backoff_for(&o, 4), Duration::from_secs(8));
        assert_eq!(backoff_for(&o, 5), Duration::from_secs(10));
        assert_eq!(backoff_for(&o, 50), Duration::from_secs(10));
    }
}
