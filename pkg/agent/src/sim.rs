//! The simulated runtime: one or many nodes in one process sharing one client and one pod
//! watch. Bound pods are marked Running with a pod IP after a start delay, sim Jobs exit,
//! deleted pods are stopped and removed; node Leases and status heartbeats are renewed on a
//! single timer heap (spread over the interval) so idle nodes cost a few hundred bytes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions,
};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::cidr::{Ipv4Net, PodIpPool, DEFAULT_CLUSTER_CIDR};
use crate::node::{self, NodeSpec, RegisterOptions, Registered, SystemInfo};
use crate::podstatus::{self, micro_timestamp, Observed, RunInfo};
use crate::Error;

/// Namespace of node heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// `spec.leaseDurationSeconds` of node Leases (the kubelet's default).
pub const LEASE_DURATION_SECONDS: i32 = 40;

/// Settings of the simulated runtime.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Time from seeing a bound pod to reporting it Running.
    pub pod_start_delay: Duration,
    /// Time a deleted pod takes to stop (a kubelet killing containers) before it is removed.
    pub pod_stop_delay: Duration,
    /// How often each node renews its Lease.
    pub lease_renew_interval: Duration,
    /// How often each node posts its Ready condition heartbeat.
    pub status_report_interval: Duration,
    /// Pod CIDRs are `/node_cidr_mask` blocks of this network.
    pub cluster_cidr: Ipv4Net,
    /// `None`: /24, or smaller blocks when not enough /24s are free (see
    /// [`crate::cidr::choose_mask`]).
    pub node_cidr_mask: Option<u8>,
    /// Most API requests in flight at once (all nodes together).
    pub concurrency: usize,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            pod_start_delay: Duration::from_millis(200),
            pod_stop_delay: Duration::from_millis(200),
            lease_renew_interval: Duration::from_secs(10),
            status_report_interval: Duration::from_secs(40),
            cluster_cidr: DEFAULT_CLUSTER_CIDR,
            node_cidr_mask: Some(24),
            concurrency: 32,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodState {
    /// Waiting for the start delay (or a free IP).
    Starting,
    Running,
    /// Exited on its own (sim Job) or found terminal.
    Exited,
    /// Deletion seen: being stopped and removed.
    Stopping,
}

#[derive(Debug)]
struct PodEntry {
    ip: Option<Ipv4Addr>,
    state: PodState,
    /// Seen in the current (re)list; entries not seen when it ends are gone.
    seen: bool,
}

#[derive(Debug)]
struct NodePods {
    ips: PodIpPool,
    pods: HashMap<String, PodEntry>,
}

/// One simulated node.
#[derive(Debug)]
struct SimNode {
    spec: NodeSpec,
    uid: String,
    pods: Mutex<NodePods>,
}

impl SimNode {
    fn lock(&self) -> MutexGuard<'_, NodePods> {
        self.pods.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pod_capacity(&self) -> u64 {
        let ips = self.lock().ips.capacity();
        ips.min(u64::from(self.spec.max_pods))
    }
}

struct Sim {
    client: kube::Client,
    pods: Api<DynamicObject>,
    nodes: Vec<SimNode>,
    by_name: HashMap<String, usize>,
    sys: SystemInfo,
    opts: SimOptions,
    api_slots: Semaphore,
}

/// A pod as the sync loop needs it (copied out of the watch event).
#[derive(Clone)]
struct PodRef {
    namespace: String,
    name: String,
    uid: String,
    spec: Value,
    status: Value,
    annotations: Option<std::collections::BTreeMap<String, String>>,
}

impl PodRef {
    fn from_obj(obj: DynamicObject) -> Option<Self> {
        let mut data = obj.data;
        Some(PodRef {
            namespace: obj.metadata.namespace?,
            name: obj.metadata.name?,
            uid: obj.metadata.uid?,
            spec: data.get_mut("spec").map(Value::take).unwrap_or(Value::Null),
            status: data
                .get_mut("status")
                .map(Value::take)
                .unwrap_or(Value::Null),
            annotations: obj.metadata.annotations,
        })
    }
}

fn pods_resource() -> ApiResource {
    ApiResource::erase::<Pod>(&())
}

/// Registers `specs` as Ready nodes and runs them until the process ends: Lease and status
/// heartbeats, and the pod sync loop over one watch (`spec.nodeName=<node>` for a single node,
/// every bound pod for many).
pub async fn run(
    client: kube::Client,
    specs: Vec<NodeSpec>,
    opts: SimOptions,
) -> Result<(), Error> {
    if specs.is_empty() {
        return Err(Error::Config(
            "no nodes to run: use --nodes 1 or more".into(),
        ));
    }
    let sys = SystemInfo::from_host();
    let started = std::time::Instant::now();
    let registered = node::register(
        &client,
        &specs,
        &sys.architecture,
        &RegisterOptions {
            cluster_cidr: opts.cluster_cidr,
            node_cidr_mask: opts.node_cidr_mask,
            concurrency: opts.concurrency,
        },
    )
    .await?;
    let nodes: Vec<SimNode> = specs
        .into_iter()
        .zip(registered)
        .map(|(spec, Registered { uid, pod_cidr, .. })| SimNode {
            spec,
            uid,
            pods: Mutex::new(NodePods {
                ips: PodIpPool::new(pod_cidr),
                pods: HashMap::new(),
            }),
        })
        .collect();
    let by_name = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.spec.name.clone(), i))
        .collect();
    let sim = Arc::new(Sim {
        pods: Api::all_with(client.clone(), &pods_resource()),
        client,
        nodes,
        by_name,
        sys,
        api_slots: Semaphore::new(opts.concurrency.max(1)),
        opts,
    });

    // Status (Ready) and Lease for every node, bounded concurrency.
    let count = sim.nodes.len();
    let results: Vec<Result<(), Error>> = futures::stream::iter(0..count)
        .map(|i| {
            let sim = sim.clone();
            async move {
                let n = &sim.nodes[i];
                node::post_status(&sim.client, &n.spec, &sim.sys, n.pod_capacity()).await?;
                renew_lease(&sim.client, &n.spec.name, &n.uid).await
            }
        })
        .buffer_unordered(sim.opts.concurrency.max(1))
        .collect()
        .await;
    for r in results {
        r?;
    }
    for n in &sim.nodes {
        if count == 1 {
            tracing::info!(node = %n.spec.name, pod_cidr = %n.lock().ips.net(), ip = %n.spec.ip,
                "simulated node registered and Ready");
        } else {
            tracing::debug!(node = %n.spec.name, pod_cidr = %n.lock().ips.net(), ip = %n.spec.ip,
                "simulated node registered and Ready");
        }
    }
    tracing::info!(
        nodes = count,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "simulated nodes are Ready"
    );

    let hb = tokio::spawn(heartbeats(sim.clone()));
    let result = sync_pods(sim).await;
    hb.abort();
    result
}

/// Creates or renews `kube-node-lease/<node>` (holder = node, 40 s, renewTime now).
pub async fn renew_lease(client: &kube::Client, node: &str, node_uid: &str) -> Result<(), Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = micro_timestamp(Utc::now());
    let spec = json!({
        "holderIdentity": node,
        "leaseDurationSeconds": LEASE_DURATION_SECONDS,
        "renewTime": now,
    });
    match api
        .patch(
            node,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": spec})),
        )
        .await
    {
        Ok(_) => return Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(Error::api(&format!("renew lease of node {node}"), e)),
    }
    let mut lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": node, "namespace": LEASE_NAMESPACE},
        "spec": spec,
    });
    if !node_uid.is_empty() {
        lease["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid,
        }]);
    }
    let lease: Lease = serde_json::from_value(lease)
        .map_err(|e| Error::Config(format!("cannot build the lease object: {e}")))?;
    match api.create(&PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        // Created by someone else in between: the next renewal patches it.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(Error::api(&format!("create lease of node {node}"), e)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Beat {
    Lease,
    Status,
}

/// First due time of node `i` of `n` for a beat every `every`: spread evenly over one period.
fn spread(i: usize, n: usize, every: Duration) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    every.mul_f64(i as f64 / n as f64)
}

async fn heartbeats(sim: Arc<Sim>) {
    let n = sim.nodes.len();
    let start = Instant::now();
    let lease_every = sim.opts.lease_renew_interval;
    let status_every = sim.opts.status_report_interval;
    let mut heap: BinaryHeap<Reverse<(Instant, usize, Beat)>> = BinaryHeap::with_capacity(2 * n);
    for i in 0..n {
        heap.push(Reverse((
            start + lease_every.min(Duration::from_secs(1)) + spread(i, n, lease_every),
            i,
            Beat::Lease,
        )));
        heap.push(Reverse((
            start + status_every.min(Duration::from_secs(1)) + spread(i, n, status_every),
            i,
            Beat::Status,
        )));
    }
    while let Some(Reverse((due, i, beat))) = heap.pop() {
        tokio::time::sleep_until(due).await;
        let s = sim.clone();
        tokio::spawn(async move {
            let _slot = s.api_slots.acquire().await;
            let n = &s.nodes[i];
            match beat {
                Beat::Lease => {
                    if let Err(e) = renew_lease(&s.client, &n.spec.name, &n.uid).await {
                        tracing::warn!(node = %n.spec.name, "lease renewal failed: {e}");
                    }
                }
                Beat::Status => match node::post_heartbeat(&s.client, &n.spec.name).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(node = %n.spec.name,
                        "the node object is gone: restart the agent to register it again"),
                    Err(e) => tracing::warn!(node = %n.spec.name, "status heartbeat failed: {e}"),
                },
            }
        });
        let every = match beat {
            Beat::Lease => lease_every,
            Beat::Status => status_every,
        };
        let mut next = due + every;
        let now = Instant::now();
        if next < now {
            next = now + every;
        }
        heap.push(Reverse((next, i, beat)));
    }
}

/// The pod watch: one stream for all nodes, dispatched by `spec.nodeName`.
async fn sync_pods(sim: Arc<Sim>) -> Result<(), Error> {
    let selector = if sim.nodes.len() == 1 {
        format!("spec.nodeName={}", sim.nodes[0].spec.name)
    } else {
        "spec.nodeName!=".to_string()
    };
    let cfg = watcher::Config::default().fields(&selector);
    let mut stream = watcher::watcher(sim.pods.clone(), cfg)
        .default_backoff()
        .boxed();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Init) => {
                for n in &sim.nodes {
                    for p in n.lock().pods.values_mut() {
                        p.seen = false;
                    }
                }
            }
            Ok(Event::InitApply(obj)) | Ok(Event::Apply(obj)) => on_apply(&sim, obj),
            Ok(Event::InitDone) => {
                for n in &sim.nodes {
                    let mut g = n.lock();
                    let NodePods { ips, pods } = &mut *g;
                    pods.retain(|_, p| {
                        if !p.seen {
                            if let Some(ip) = p.ip {
                                ips.release(ip);
                            }
                        }
                        p.seen
                    });
                }
            }
            Ok(Event::Delete(obj)) => on_delete(&sim, &obj),
            Err(e) => tracing::warn!("pod watch failed (retrying): {e}"),
        }
    }
    Err(Error::Config(
        "the pod watch ended: restart the agent".into(),
    ))
}

fn node_of<'a>(sim: &'a Sim, data: &Value) -> Option<(usize, &'a SimNode)> {
    let name = data.pointer("/spec/nodeName")?.as_str()?;
    let i = *sim.by_name.get(name)?;
    Some((i, &sim.nodes[i]))
}

fn on_delete(sim: &Sim, obj: &DynamicObject) {
    let Some((_, node)) = node_of(sim, &obj.data) else {
        return;
    };
    let Some(uid) = obj.metadata.uid.as_deref() else {
        return;
    };
    let mut g = node.lock();
    if let Some(p) = g.pods.remove(uid) {
        if let Some(ip) = p.ip {
            g.ips.release(ip);
        }
    }
}

fn on_apply(sim: &Arc<Sim>, obj: DynamicObject) {
    let Some((idx, node)) = node_of(sim, &obj.data) else {
        return;
    };
    let deleting = obj.metadata.deletion_timestamp.is_some();
    let Some(pod) = PodRef::from_obj(obj) else {
        return;
    };
    let mut g = node.lock();
    let NodePods { ips, pods } = &mut *g;
    if let Some(p) = pods.get_mut(&pod.uid) {
        p.seen = true;
        if deleting && p.state != PodState::Stopping {
            let was_started = p.state != PodState::Starting;
            let ip = p.ip;
            p.state = PodState::Stopping;
            drop(g);
            tokio::spawn(stop_pod(sim.clone(), idx, pod, ip.filter(|_| was_started)));
        }
        return;
    }
    match podstatus::observe(&pod.status, node.spec.ip) {
        Observed::Terminal => {
            pods.insert(
                pod.uid.clone(),
                PodEntry {
                    ip: None,
                    state: if deleting {
                        PodState::Stopping
                    } else {
                        PodState::Exited
                    },
                    seen: true,
                },
            );
            drop(g);
            if deleting {
                tokio::spawn(stop_pod(sim.clone(), idx, pod, None));
            }
        }
        Observed::Running { pod_ip, started } if ips.reserve(pod_ip) => {
            // Re-adopted after a restart: keep its IP; resume a sim Job's countdown.
            let state = if deleting {
                PodState::Stopping
            } else {
                PodState::Running
            };
            pods.insert(
                pod.uid.clone(),
                PodEntry {
                    ip: Some(pod_ip),
                    state,
                    seen: true,
                },
            );
            drop(g);
            if deleting {
                tokio::spawn(stop_pod(sim.clone(), idx, pod, Some(pod_ip)));
            } else {
                let started = started.unwrap_or_else(Utc::now);
                tokio::spawn(finish_if_sim_job(sim.clone(), idx, pod, pod_ip, started));
            }
        }
        _ if deleting => {
            pods.insert(
                pod.uid.clone(),
                PodEntry {
                    ip: None,
                    state: PodState::Stopping,
                    seen: true,
                },
            );
            drop(g);
            tokio::spawn(stop_pod(sim.clone(), idx, pod, None));
        }
        _ => {
            pods.insert(
                pod.uid.clone(),
                PodEntry {
                    ip: None,
                    state: PodState::Starting,
                    seen: true,
                },
            );
            drop(g);
            tokio::spawn(start_pod(sim.clone(), idx, pod));
        }
    }
}

/// How a patch of a pod went.
enum Patched {
    Ok,
    Gone,
}

async fn patch_pod_status(sim: &Sim, pod: &PodRef, status: Value) -> Result<Patched, Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(sim.client.clone(), &pod.namespace, &pods_resource());
    let mut delay = Duration::from_millis(100);
    for attempt in 0..5 {
        let res = {
            let _slot = sim.api_slots.acquire().await;
            api.patch_status(
                &pod.name,
                &PatchParams::default(),
                &Patch::Strategic(json!({"status": status})),
            )
            .await
        };
        match res {
            Ok(o) if o.metadata.uid.as_deref() == Some(pod.uid.as_str()) => return Ok(Patched::Ok),
            // A new pod with the same name: ours is gone.
            Ok(_) => return Ok(Patched::Gone),
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Patched::Gone),
            Err(e) if attempt == 4 => {
                return Err(Error::api(
                    &format!("update status of pod {}/{}", pod.namespace, pod.name),
                    e,
                ))
            }
            Err(e) => {
                tracing::debug!(pod = %pod.name, "pod status update failed, retrying: {e}");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    Ok(Patched::Gone)
}

fn run_info(node: &SimNode, ip: Ipv4Addr, started: DateTime<Utc>) -> RunInfo {
    RunInfo {
        pod_ip: ip,
        host_ip: node.spec.ip,
        started,
    }
}

async fn start_pod(sim: Arc<Sim>, idx: usize, pod: PodRef) {
    tokio::time::sleep(sim.opts.pod_start_delay).await;
    let node = &sim.nodes[idx];
    // Take an IP (wait for one when the block is full, like a kubelet retrying the sandbox).
    let mut warned = false;
    let ip = loop {
        {
            let mut g = node.lock();
            let NodePods { ips, pods } = &mut *g;
            let Some(p) = pods.get_mut(&pod.uid) else {
                return;
            };
            if p.state != PodState::Starting {
                return;
            }
            if let Some(ip) = p.ip {
                break ip;
            }
            if let Some(ip) = ips.allocate() {
                p.ip = Some(ip);
                break ip;
            }
        }
        if !warned {
            tracing::warn!(node = %node.spec.name, pod = %pod.name,
                "no free pod IP in the node's pod CIDR: the pod waits for one");
            warned = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let started = Utc::now();
    let status = podstatus::running_status(
        &pod.uid,
        &pod.spec,
        &pod.status,
        &run_info(node, ip, started),
        started,
    );
    match patch_pod_status(&sim, &pod, status).await {
        Ok(Patched::Ok) => {}
        Ok(Patched::Gone) => {
            forget(node, &pod.uid);
            return;
        }
        Err(e) => {
            tracing::warn!("{e}");
            // Let the next event of this pod try again.
            forget(node, &pod.uid);
            return;
        }
    }
    {
        let mut g = node.lock();
        match g.pods.get_mut(&pod.uid) {
            Some(p) if p.state == PodState::Starting => p.state = PodState::Running,
            _ => return,
        }
    }
    tracing::debug!(node = %node.spec.name, pod = %pod.name, ip = %ip, "pod running");
    finish_if_sim_job(sim, idx, pod, ip, started).await;
}

/// Drops a pod's entry and IP (it is gone, or will be retried from scratch).
fn forget(node: &SimNode, uid: &str) {
    let mut g = node.lock();
    if let Some(p) = g.pods.remove(uid) {
        if let Some(ip) = p.ip {
            g.ips.release(ip);
        }
    }
}

async fn finish_if_sim_job(
    sim: Arc<Sim>,
    idx: usize,
    pod: PodRef,
    ip: Ipv4Addr,
    started: DateTime<Utc>,
) {
    let exit = match podstatus::sim_exit(pod.annotations.as_ref(), &pod.spec) {
        Ok(Some(e)) => e,
        Ok(None) => return,
        Err(msg) => {
            tracing::warn!(pod = %pod.name, "{msg}: the pod runs until deleted");
            return;
        }
    };
    let elapsed = (Utc::now() - started).to_std().unwrap_or(Duration::ZERO);
    tokio::time::sleep(exit.after.saturating_sub(elapsed)).await;
    let node = &sim.nodes[idx];
    {
        let g = node.lock();
        match g.pods.get(&pod.uid) {
            Some(p) if p.state == PodState::Running => {}
            _ => return,
        }
    }
    let now = Utc::now();
    let status = podstatus::terminated_status(
        &pod.uid,
        &pod.spec,
        &pod.status,
        &run_info(node, ip, started),
        exit.code,
        now,
    );
    match patch_pod_status(&sim, &pod, status).await {
        Ok(Patched::Ok) => {
            let mut g = node.lock();
            let NodePods { ips, pods } = &mut *g;
            if let Some(p) = pods.get_mut(&pod.uid) {
                if p.state == PodState::Running {
                    p.state = PodState::Exited;
                    if let Some(ip) = p.ip.take() {
                        ips.release(ip);
                    }
                }
            }
            tracing::debug!(pod = %pod.name, code = exit.code, "sim pod exited");
        }
        Ok(Patched::Gone) => forget(node, &pod.uid),
        Err(e) => tracing::warn!("{e}"),
    }
}

/// Stops a deleted pod: reports its containers terminated (when it ran) and removes it with
/// grace period 0 and a uid precondition, like a kubelet finishing graceful termination.
async fn stop_pod(sim: Arc<Sim>, idx: usize, pod: PodRef, ran_with_ip: Option<Ipv4Addr>) {
    let node = &sim.nodes[idx];
    tokio::time::sleep(sim.opts.pod_stop_delay).await;
    if let Some(ip) = ran_with_ip {
        let started = podstatus::observe(&pod.status, node.spec.ip);
        let started = match started {
            Observed::Running {
                started: Some(t), ..
            } => t,
            _ => Utc::now(),
        };
        let now = Utc::now();
        let status = podstatus::terminated_status(
            &pod.uid,
            &pod.spec,
            &pod.status,
            &run_info(node, ip, started),
            0,
            now,
        );
        match patch_pod_status(&sim, &pod, status).await {
            Ok(Patched::Ok) => {}
            Ok(Patched::Gone) => {
                forget(node, &pod.uid);
                return;
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }
    let api: Api<DynamicObject> =
        Api::namespaced_with(sim.client.clone(), &pod.namespace, &pods_resource());
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(pod.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let mut delay = Duration::from_millis(100);
    for attempt in 0..5 {
        let res = {
            let _slot = sim.api_slots.acquire().await;
            api.delete(&pod.name, &dp).await
        };
        match res {
            Ok(_) => {
                tracing::debug!(pod = %pod.name, "pod stopped and deleted");
                return;
            }
            // Gone already, or a new pod took the name (uid precondition failed).
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => return,
            Err(e) => {
                if attempt == 4 {
                    tracing::warn!(pod = %pod.name, "cannot delete the stopped pod: {e}");
                    // Let the next event of this pod retry.
                    let mut g = node.lock();
                    if let Some(p) = g.pods.get_mut(&pod.uid) {
                        p.state = PodState::Exited;
                    }
                    return;
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_are_spread_over_the_period() {
        let every = Duration::from_secs(10);
        assert_eq!(spread(0, 4, every), Duration::ZERO);
        assert_eq!(spread(1, 4, every), Duration::from_millis(2500));
        assert_eq!(spread(3, 4, every), Duration::from_millis(7500));
        assert_eq!(spread(0, 0, every), Duration::ZERO);
        let last = spread(999, 1000, every);
        assert!(last < every && last > Duration::from_millis(9980));
    }

    #[test]
    fn pod_ref_takes_spec_and_status() {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1",
                         "annotations": {"a": "b"}},
            "spec": {"nodeName": "n"},
            "status": {"phase": "Pending"}
        }))
        .unwrap();
        let p = PodRef::from_obj(obj).unwrap();
        assert_eq!(
            (p.namespace.as_str(), p.name.as_str(), p.uid.as_str()),
            ("ns", "p", "u1")
        );
        assert_eq!(p.spec["nodeName"], "n");
        assert_eq!(p.status["phase"], "Pending");
        assert_eq!(p.annotations.unwrap()["a"], "b");
    }
}
