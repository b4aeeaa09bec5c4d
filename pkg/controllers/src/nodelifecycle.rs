//! The node lifecycle controller with its taint manager and the pod garbage collector's
//! node-related parts: nodes whose heartbeat (Lease in `kube-node-lease`, Ready condition) is
//! older than the grace period turn Unknown and get the `unreachable` taints, nodes reporting
//! Ready=False get the `not-ready` taints, pods on NoExecute-tainted nodes are deleted after
//! their toleration seconds, and pods that can never finish terminating (their node is
//! unreachable or gone) are force-deleted so their controllers replace them.

use crate::controller::{Action, Controller};
use crate::endpoints::pod_ready;
use crate::events::Recorder;
use crate::informer::{Factory, Store};
use crate::util::ignore_not_found;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, ObjectReference, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::ResourceExt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Namespace of the node heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
/// How long a pod may point at a missing node before pod GC removes it (upstream's quarantine).
pub const ORPHAN_QUARANTINE: Duration = Duration::from_secs(40);

/// A taint's (key, effect).
pub type TaintKey = (&'static str, &'static str);

/// The conditions the controller marks Unknown when the kubelet goes silent.
const MONITORED_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

fn condition<'a>(node: &'a Node, t: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == t))
}

/// The node's Ready status: `True`, `False` or `Unknown` (no condition counts as Unknown).
pub fn ready_status(node: &Node) -> &str {
    condition(node, "Ready").map_or("Unknown", |c| c.status.as_str())
}

/// The last sign of life: the Lease renewal, the Ready heartbeat or (never heard of) creation.
pub fn last_heartbeat(node: &Node, lease_renew: Option<Timestamp>) -> Option<Timestamp> {
    let ready = condition(node, "Ready").and_then(|c| c.last_heartbeat_time.as_ref().map(|t| t.0));
    let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0);
    [lease_renew, ready, created].into_iter().flatten().max()
}

/// Upstream's `tryUpdateNodeHealth` for a silent node: when the last heartbeat is older than
/// `grace`, the monitored conditions turn Unknown. Returns the changed conditions.
pub fn stale_conditions(
    node: &Node,
    lease_renew: Option<Timestamp>,
    now: Timestamp,
    grace: Duration,
) -> Vec<NodeCondition> {
    let Some(last) = last_heartbeat(node, lease_renew) else {
        return Vec::new();
    };
    let grace = SignedDuration::try_from(grace).unwrap_or(SignedDuration::MAX);
    if now.duration_since(last) <= grace {
        return Vec::new();
    }
    let mut out = Vec::new();
    for t in MONITORED_CONDITIONS {
        match condition(node, t) {
            None => out.push(NodeCondition {
                type_: t.to_string(),
                status: "Unknown".to_string(),
                reason: Some("NodeStatusNeverUpdated".to_string()),
                message: Some("Kubelet never posted node status.".to_string()),
                last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                last_transition_time: Some(Time(now)),
            }),
            Some(c) if c.status != "Unknown" => {
                let mut c = c.clone();
                c.status = "Unknown".to_string();
                c.reason = Some("NodeStatusUnknown".to_string());
                c.message = Some("Kubelet stopped posting node status.".to_string());
                c.last_transition_time = Some(Time(now));
                out.push(c);
            }
            Some(_) => {}
        }
    }
    out
}

/// Applies changed conditions to a node (by type).
pub fn with_conditions(node: &Node, changed: &[NodeCondition]) -> Node {
    let mut n = node.clone();
    let conds = n
        .status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new);
    for c in changed {
        match conds.iter_mut().find(|x| x.type_ == c.type_) {
            Some(x) => *x = c.clone(),
            None => conds.push(c.clone()),
        }
    }
    n
}

/// The (key, effect) taints the controller owns and which of them the node should carry.
/// `evictions_enabled` is false in upstream's full-disruption mode (every node not Ready),
/// when the NoExecute taints are withheld.
pub fn managed_taints(node: &Node, evictions_enabled: bool) -> (Vec<TaintKey>, Vec<TaintKey>) {
    let managed = vec![
        (TAINT_NOT_READY, "NoSchedule"),
        (TAINT_NOT_READY, "NoExecute"),
        (TAINT_UNREACHABLE, "NoSchedule"),
        (TAINT_UNREACHABLE, "NoExecute"),
        (TAINT_MEMORY_PRESSURE, "NoSchedule"),
        (TAINT_DISK_PRESSURE, "NoSchedule"),
        (TAINT_PID_PRESSURE, "NoSchedule"),
        (TAINT_NETWORK_UNAVAILABLE, "NoSchedule"),
        (TAINT_UNSCHEDULABLE, "NoSchedule"),
    ];
    let mut want = Vec::new();
    match ready_status(node) {
        "True" => {}
        "False" => {
            want.push((TAINT_NOT_READY, "NoSchedule"));
            if evictions_enabled {
                want.push((TAINT_NOT_READY, "NoExecute"));
            }
        }
        _ => {
            want.push((TAINT_UNREACHABLE, "NoSchedule"));
            if evictions_enabled {
                want.push((TAINT_UNREACHABLE, "NoExecute"));
            }
        }
    }
    for (cond, key) in [
        ("MemoryPressure", TAINT_MEMORY_PRESSURE),
        ("DiskPressure", TAINT_DISK_PRESSURE),
        ("PIDPressure", TAINT_PID_PRESSURE),
        ("NetworkUnavailable", TAINT_NETWORK_UNAVAILABLE),
    ] {
        if condition(node, cond).is_some_and(|c| c.status == "True") {
            want.push((key, "NoSchedule"));
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        want.push((TAINT_UNSCHEDULABLE, "NoSchedule"));
    }
    (managed, want)
}

/// The node's taints after adding the wanted controller taints (stamped `now`) and removing
/// the unwanted ones; user taints are kept. `None` when nothing changes.
pub fn desired_taints(node: &Node, evictions_enabled: bool, now: Timestamp) -> Option<Vec<Taint>> {
    let (managed, want) = managed_taints(node, evictions_enabled);
    let current: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let is = |t: &Taint, (k, e): &(&str, &str)| t.key == *k && t.effect == *e;
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| !managed.iter().any(|m| is(t, m)) || want.iter().any(|w| is(t, w)))
        .cloned()
        .collect();
    for w in &want {
        if !out.iter().any(|t| is(t, w)) {
            out.push(Taint {
                key: w.0.to_string(),
                effect: w.1.to_string(),
                time_added: Some(Time(now)),
                value: None,
            });
        }
    }
    (out != current).then_some(out)
}

pub use skiff_api::matchers::taints::tolerates;

/// What the taint manager does with a pod on a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Eviction {
    /// No NoExecute taint, or every one tolerated forever.
    Never,
    /// Delete at this time (now or in the past: delete now).
    At(Timestamp),
}

/// Upstream's taint manager decision: a pod not tolerating every NoExecute taint goes at
/// once; otherwise it goes the smallest `tolerationSeconds` (of the tolerations used) after
/// the taints appeared (or after the pod was created, if later).
pub fn eviction(pod: &Pod, taints: &[Taint], now: Timestamp) -> Eviction {
    let no_exec: Vec<&Taint> = taints.iter().filter(|t| t.effect == "NoExecute").collect();
    if no_exec.is_empty() {
        return Eviction::Never;
    }
    let tolerations: &[Toleration] = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[]);
    let mut min_secs: Option<i64> = None;
    for taint in &no_exec {
        let Some(tol) = tolerations.iter().find(|t| tolerates(t, taint)) else {
            return Eviction::At(now);
        };
        if let Some(s) = tol.toleration_seconds {
            let s = s.max(0);
            min_secs = Some(min_secs.map_or(s, |m| m.min(s)));
        }
    }
    let Some(secs) = min_secs else {
        return Eviction::Never;
    };
    let tainted = no_exec
        .iter()
        .filter_map(|t| t.time_added.as_ref().map(|t| t.0))
        .min()
        .unwrap_or(now);
    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let start = created.map_or(tainted, |c| c.max(tainted));
    Eviction::At(
        start
            .checked_add(SignedDuration::from_secs(secs))
            .unwrap_or(Timestamp::MAX),
    )
}

/// Pod GC for terminating pods on an unreachable node: its kubelet will never confirm the
/// deletion, so once the grace period is over the pod is force-deleted.
pub fn force_delete_due(pod: &Pod, node_ready: &str, now: Timestamp) -> bool {
    let Some(dt) = pod.metadata.deletion_timestamp.as_ref() else {
        return false;
    };
    node_ready == "Unknown" && now >= dt.0
}

/// One thing to do to a pod.
#[derive(Debug, Clone, PartialEq)]
pub enum PodAction {
    /// Its node is not Ready: set the pod's Ready condition False.
    MarkNotReady,
    /// Taint-based eviction: DisruptionTarget condition, then a normal (graceful) delete.
    Evict,
    /// Terminating on an unreachable node past its grace period: delete with grace 0.
    ForceDelete,
    /// Bound to a node that no longer exists: DisruptionTarget condition, delete with grace 0.
    DeleteOrphan,
}

/// The per-tick decisions for the pods of one node (`node` is `None` when it does not exist;
/// `missing_since` is when the controller first noticed that). Returns the actions and the
/// earliest future time something is due.
pub fn plan_pods(
    node: Option<&Node>,
    pods: &[&Pod],
    missing_since: Option<Timestamp>,
    now: Timestamp,
) -> (Vec<(String, PodAction)>, Option<Timestamp>) {
    let mut out = Vec::new();
    let mut next: Option<Timestamp> = None;
    let mut wake = |t: Timestamp| next = Some(next.map_or(t, |n: Timestamp| n.min(t)));
    let key = |p: &Pod| pod_key(p);
    let Some(node) = node else {
        let since = missing_since.unwrap_or(now);
        let due = since
            .checked_add(
                SignedDuration::try_from(ORPHAN_QUARANTINE).unwrap_or(SignedDuration::ZERO),
            )
            .unwrap_or(Timestamp::MAX);
        for p in pods {
            if now >= due {
                out.push((key(p), PodAction::DeleteOrphan));
            } else {
                wake(due);
            }
        }
        return (out, next);
    };
    let ready = ready_status(node);
    let taints: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    for p in pods {
        if p.metadata.deletion_timestamp.is_some() {
            if force_delete_due(p, ready, now) {
                out.push((key(p), PodAction::ForceDelete));
            } else if ready == "Unknown" {
                if let Some(dt) = p.metadata.deletion_timestamp.as_ref() {
                    wake(dt.0);
                }
            }
            continue;
        }
        let phase = p
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("");
        let terminal = phase == "Succeeded" || phase == "Failed";
        match eviction(p, &taints, now) {
            Eviction::At(t) if t <= now => {
                out.push((key(p), PodAction::Evict));
                continue;
            }
            Eviction::At(t) => wake(t),
            Eviction::Never => {}
        }
        if ready != "True" && !terminal && pod_ready(p) {
            out.push((key(p), PodAction::MarkNotReady));
        }
    }
    (out, next)
}

// ---------------------------------------------------------------------------------------------
// The control loop.
// ---------------------------------------------------------------------------------------------

struct State {
    /// Pods with a future eviction time (for the "Cancelling deletion" event).
    scheduled: HashSet<String>,
    /// Node names pods point at that were missing, and since when.
    missing: HashMap<String, Timestamp>,
}

/// Spawns the node lifecycle controller (with taint manager and pod GC) on the shared Node,
/// Lease and Pod caches; it looks at them every `--node-monitor-period`.
pub fn start(factory: &Factory, cfg: Arc<crate::Config>) {
    let client = factory.client();
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), "node-controller"),
        taint_recorder: Recorder::new(client.clone(), "taint-eviction-controller"),
        client,
        cfg,
        nodes: factory.store::<Node>(),
        leases: factory.store::<Lease>(),
        pods: factory.store::<Pod>(),
        state: tokio::sync::Mutex::new(State {
            scheduled: HashSet::new(),
            missing: HashMap::new(),
        }),
    });
    // One key, the whole monitor pass. Cordon and uncordon are acted on at once (as upstream's
    // node update queue), not at the next monitor period: until the taint goes, the scheduler
    // keeps avoiding an uncordoned node.
    Controller::<()>::new(factory, "nodelifecycle")
        .watches::<Node, _>(|c| cordon_taint_stale(c.object()).then_some(()))
        .reads::<Lease>()
        .reads::<Pod>()
        .enqueue(())
        .run(ctx, monitor);
}

struct Ctx {
    client: kube::Client,
    cfg: Arc<crate::Config>,
    nodes: Arc<Store<Node>>,
    leases: Arc<Store<Lease>>,
    pods: Arc<Store<Pod>>,
    recorder: Recorder,
    taint_recorder: Recorder,
    state: tokio::sync::Mutex<State>,
}

/// One monitor pass; looks again after `--node-monitor-period`, or sooner when an eviction
/// or a grace period falls due.
async fn monitor(ctx: Arc<Ctx>, (): ()) -> Result<Action, std::convert::Infallible> {
    let mut state = ctx.state.lock().await;
    let next = tick(
        &ctx.client,
        &ctx.cfg,
        &ctx.nodes,
        &ctx.leases,
        &ctx.pods,
        &ctx.recorder,
        &ctx.taint_recorder,
        &mut state,
    )
    .await;
    let mut sleep = ctx.cfg.node_monitor_period.max(Duration::from_millis(100));
    if let Some(t) = next {
        let until = t.duration_since(Timestamp::now());
        if let Ok(d) = Duration::try_from(until) {
            sleep = sleep.min(d + Duration::from_millis(50));
        } else {
            sleep = Duration::from_millis(50);
        }
    }
    Ok(Action::RequeueAfter(sleep))
}

/// The `namespace/name` of a pod (the monitor's pod bookkeeping key).
fn pod_key(p: &Pod) -> String {
    crate::util::key_of(p).to_string()
}

/// Whether the node's `unschedulable` taint disagrees with `spec.unschedulable`.
pub fn cordon_taint_stale(node: &Node) -> bool {
    let spec = node.spec.as_ref();
    let cordoned = spec.and_then(|s| s.unschedulable) == Some(true);
    let tainted = spec.and_then(|s| s.taints.as_ref()).is_some_and(|ts| {
        ts.iter()
            .any(|t| t.key == TAINT_UNSCHEDULABLE && t.effect == "NoSchedule")
    });
    cordoned != tainted
}

#[allow(clippy::too_many_arguments)]
async fn tick(
    client: &kube::Client,
    cfg: &crate::Config,
    nodes: &Store<Node>,
    leases: &Store<Lease>,
    pods: &Store<Pod>,
    recorder: &Recorder,
    taint_recorder: &Recorder,
    state: &mut State,
) -> Option<Timestamp> {
    let now = Timestamp::now();
    let node_api: Api<Node> = Api::all(client.clone());
    // 1. Health: silent nodes turn Unknown.
    let mut current: HashMap<String, Node> = HashMap::new();
    for n in nodes.all() {
        let name = n.name_any();
        let renew = leases.get(LEASE_NAMESPACE, &name).and_then(|l| {
            l.spec
                .as_ref()
                .and_then(|s| s.renew_time.as_ref().map(|t| t.0))
        });
        let changed = stale_conditions(&n, renew, now, cfg.node_monitor_grace_period);
        let mut node = (*n).clone();
        if !changed.is_empty() {
            let was_ready = ready_status(&n) == "True";
            let patch = serde_json::json!({"status": {"conditions": changed}});
            match node_api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                Ok(_) => {
                    node = with_conditions(&n, &changed);
                    if was_ready && ready_status(&node) != "True" {
                        tracing::info!(node = %name, "node stopped posting status, marking it NotReady");
                        recorder
                            .record_ref(
                                node_ref(&node),
                                "Normal",
                                "NodeNotReady",
                                &format!("Node {name} status is now: NodeNotReady"),
                            )
                            .await;
                    }
                }
                Err(e) => tracing::warn!(node = %name, error = %e, "updating node health failed"),
            }
        }
        current.insert(name, node);
    }
    // 2. Taints (NoExecute ones withheld when no node at all is Ready).
    let evictions_enabled =
        current.is_empty() || current.values().any(|n| ready_status(n) == "True");
    for (name, node) in current.iter_mut() {
        if let Some(taints) = desired_taints(node, evictions_enabled, now) {
            let value = crate::util::list_or_null(&taints);
            let patch = serde_json::json!({"spec": {"taints": value}});
            match node_api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(n) => *node = n,
                Err(e) => tracing::warn!(node = %name, error = %e, "updating node taints failed"),
            }
        }
    }
    // 3. Pods: mark not ready, evict, garbage-collect.
    let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
    for p in pods.all() {
        if let Some(n) = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty())
        {
            by_node.entry(n).or_default().push(p);
        }
    }
    state
        .missing
        .retain(|n, _| by_node.contains_key(n) && !current.contains_key(n));
    let mut next: Option<Timestamp> = None;
    let mut still_scheduled = HashSet::new();
    for (node_name, list) in &by_node {
        let node = current.get(node_name);
        let since = if node.is_none() {
            Some(*state.missing.entry(node_name.clone()).or_insert(now))
        } else {
            None
        };
        let refs: Vec<&Pod> = list.iter().map(|p| p.as_ref()).collect();
        let (actions, due) = plan_pods(node, &refs, since, now);
        if let Some(t) = due {
            next = Some(next.map_or(t, |n: Timestamp| n.min(t)));
        }
        if let Some(n) = node {
            let taints = n
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            for p in &refs {
                if p.metadata.deletion_timestamp.is_none()
                    && matches!(eviction(p, &taints, now), Eviction::At(t) if t > now)
                {
                    still_scheduled.insert(pod_key(p));
                }
            }
        }
        for (key, action) in actions {
            let Some(pod) = list.iter().find(|p| pod_key(p) == key) else {
                continue;
            };
            if let Err(e) = act(client, pod, &action, now, recorder, taint_recorder).await {
                tracing::warn!(pod = %key, ?action, error = %e, "acting on pod failed");
            }
        }
    }
    for key in state.scheduled.difference(&still_scheduled) {
        let parsed = crate::util::ObjectKey::parse(key);
        let (ns, name) = (parsed.namespace.as_str(), parsed.name.as_str());
        if let Some(p) = pods.get(ns, name) {
            if p.metadata.deletion_timestamp.is_none() {
                taint_recorder
                    .record(
                        p.as_ref(),
                        "Normal",
                        "TaintManagerEviction",
                        &format!("Cancelling deletion of Pod {key}"),
                    )
                    .await;
            }
        }
    }
    state.scheduled = still_scheduled;
    next
}

fn node_ref(node: &Node) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_string()),
        kind: Some("Node".to_string()),
        name: Some(node.name_any()),
        uid: node.uid(),
        ..Default::default()
    }
}

fn disruption(reason: &str, message: &str, now: Timestamp) -> serde_json::Value {
    serde_json::json!({"status": {"conditions": [{
        "type": "DisruptionTarget",
        "status": "True",
        "reason": reason,
        "message": message,
        "lastTransitionTime": Time(now),
    }]}})
}

async fn act(
    client: &kube::Client,
    pod: &Pod,
    action: &PodAction,
    now: Timestamp,
    recorder: &Recorder,
    taint_recorder: &Recorder,
) -> Result<(), kube::Error> {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pp = PatchParams::default();
    let status = |patch: serde_json::Value| {
        let (api, name, pp) = (&api, &name, &pp);
        async move { ignore_not_found(api.patch_status(name, pp, &Patch::Strategic(&patch)).await) }
    };
    let delete = |grace: Option<u32>| {
        let (api, name) = (&api, &name);
        let dp = match grace {
            Some(g) => DeleteParams::default().grace_period(g),
            None => DeleteParams::default(),
        };
        async move { ignore_not_found(api.delete(name, &dp).await) }
    };
    match action {
        PodAction::MarkNotReady => {
            status(serde_json::json!({"status": {"conditions": [{
                "type": "Ready", "status": "False", "lastTransitionTime": Time(now),
            }]}}))
            .await?;
            recorder
                .record(pod, "Warning", "NodeNotReady", "Node is not ready")
                .await;
        }
        PodAction::Evict => {
            taint_recorder
                .record(
                    pod,
                    "Normal",
                    "TaintManagerEviction",
                    &format!("Marking for deletion Pod {ns}/{name}"),
                )
                .await;
            let patch = disruption(
                "DeletionByTaintManager",
                "Taint manager: deleting due to NoExecute taint",
                now,
            );
            status(patch).await?;
            delete(None).await?;
        }
        PodAction::ForceDelete => {
            tracing::info!(pod = %format!("{ns}/{name}"), "force-deleting a pod terminating on an unreachable node");
            delete(Some(0)).await?;
        }
        PodAction::DeleteOrphan => {
            let patch = disruption("DeletionByPodGC", "PodGC: node no longer exists", now);
            status(patch).await?;
            delete(Some(0)).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::podutil::tests::at as t;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(ready: &str, heartbeat: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                creation_timestamp: Some(Time(t("2025-01-01T00:00:00Z"))),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    reason: Some("KubeletReady".into()),
                    last_heartbeat_time: Some(Time(t(heartbeat))),
                    last_transition_time: Some(Time(t("2025-01-01T00:00:00Z"))),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn pod_with(tolerations: Vec<Toleration>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-x".into()),
                namespace: Some("default".into()),
                creation_timestamp: Some(Time(t("2025-01-01T00:00:00Z"))),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                tolerations: Some(tolerations),
                ..Default::default()
            }),
            status: Some(k8s_openapi::api::core::v1::PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![k8s_openapi::api::core::v1::PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn tol(key: &str, secs: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: secs,
            ..Default::default()
        }
    }

    fn unreachable_since(s: &str) -> Vec<Taint> {
        vec![Taint {
            key: TAINT_UNREACHABLE.into(),
            effect: "NoExecute".into(),
            time_added: Some(Time(t(s))),
            value: None,
        }]
    }

    #[test]
    fn silent_node_turns_unknown_after_the_grace_period() {
        let n = node("True", "2025-01-01T00:01:00Z");
        let grace = Duration::from_secs(40);
        let stale = |renew: &str, now: &str| stale_conditions(&n, Some(t(renew)), t(now), grace);
        // Lease renewed recently: healthy even with an old Ready heartbeat.
        assert!(stale("2025-01-01T00:01:30Z", "2025-01-01T00:02:00Z").is_empty());
        // 40 s exactly: still fine; 41 s: Unknown.
        assert!(stale("2025-01-01T00:01:00Z", "2025-01-01T00:01:40Z").is_empty());
        let now = t("2025-01-01T00:01:41Z");
        let c = stale_conditions(&n, Some(t("2025-01-01T00:01:00Z")), now, grace);
        let ready = c.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            ready.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        assert_eq!(ready.last_transition_time, Some(Time(now)));
        assert_eq!(
            ready.last_heartbeat_time,
            Some(Time(t("2025-01-01T00:01:00Z")))
        );
        // Never-posted conditions are added as NodeStatusNeverUpdated.
        let mem = c.iter().find(|c| c.type_ == "MemoryPressure").unwrap();
        assert_eq!(mem.reason.as_deref(), Some("NodeStatusNeverUpdated"));
        // Already Unknown: nothing more to change.
        let unknown = with_conditions(&n, &c);
        assert!(stale_conditions(&unknown, None, now, grace).is_empty());
        assert_eq!(ready_status(&unknown), "Unknown");
    }

    #[test]
    fn taints_follow_readiness() {
        let now = t("2025-01-01T00:02:00Z");
        let unknown = node("Unknown", "2025-01-01T00:00:00Z");
        let taints = desired_taints(&unknown, true, now).unwrap();
        let got: Vec<(&str, &str)> = taints
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (TAINT_UNREACHABLE, "NoSchedule"),
                (TAINT_UNREACHABLE, "NoExecute")
            ]
        );
        assert!(taints.iter().all(|x| x.time_added == Some(Time(now))));
        // Ready=False swaps to not-ready.
        let mut not_ready = node("False", "2025-01-01T00:00:00Z");
        not_ready.spec.as_mut().unwrap().taints = Some(taints.clone());
        let swapped = desired_taints(&not_ready, true, now).unwrap();
        assert!(swapped.iter().all(|x| x.key == TAINT_NOT_READY));
        // Back to Ready: controller taints go, user taints stay.
        let mut back = node("True", "2025-01-01T00:00:00Z");
        let mut with_user = taints.clone();
        with_user.push(Taint {
            key: "dedicated".into(),
            effect: "NoSchedule".into(),
            value: Some("gpu".into()),
            time_added: None,
        });
        back.spec.as_mut().unwrap().taints = Some(with_user);
        let cleaned = desired_taints(&back, true, now).unwrap();
        assert_eq!(cleaned.len(), 1);
        assert_eq!(cleaned[0].key, "dedicated");
        // Steady state: no change. Full disruption withholds NoExecute.
        back.spec.as_mut().unwrap().taints = Some(cleaned);
        assert!(desired_taints(&back, true, now).is_none());
        let only = desired_taints(&unknown, false, now).unwrap();
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].effect, "NoSchedule");
        // Cordon.
        let mut cordoned = node("True", "2025-01-01T00:00:00Z");
        cordoned.spec.as_mut().unwrap().unschedulable = Some(true);
        assert_eq!(
            desired_taints(&cordoned, true, now).unwrap()[0].key,
            TAINT_UNSCHEDULABLE
        );
        // A cordon or uncordon the taint does not reflect yet wakes the controller.
        assert!(cordon_taint_stale(&cordoned));
        cordoned.spec.as_mut().unwrap().taints = desired_taints(&cordoned, true, now);
        assert!(!cordon_taint_stale(&cordoned));
        cordoned.spec.as_mut().unwrap().unschedulable = None;
        assert!(cordon_taint_stale(&cordoned));
        assert!(!cordon_taint_stale(&back));
    }

    #[test]
    fn toleration_matching() {
        let taint = &unreachable_since("2025-01-01T00:00:00Z")[0];
        assert!(tolerates(&tol(TAINT_UNREACHABLE, Some(300)), taint));
        assert!(!tolerates(&tol(TAINT_NOT_READY, Some(300)), taint));
        let all = Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        };
        assert!(tolerates(&all, taint));
        let wrong_effect = Toleration {
            effect: Some("NoSchedule".into()),
            ..tol(TAINT_UNREACHABLE, None)
        };
        assert!(!tolerates(&wrong_effect, taint));
        let equal = Toleration {
            key: Some("k".into()),
            operator: Some("Equal".into()),
            value: Some("v".into()),
            ..Default::default()
        };
        let kv = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoExecute".into(),
            time_added: None,
        };
        assert!(tolerates(&equal, &kv));
        assert!(!tolerates(
            &equal,
            &Taint {
                value: Some("w".into()),
                ..kv
            }
        ));
    }

    #[test]
    fn eviction_uses_the_smallest_toleration_seconds() {
        let now = t("2025-01-01T00:05:00Z");
        let taints = unreachable_since("2025-01-01T00:04:00Z");
        // No toleration: at once.
        assert_eq!(eviction(&pod_with(vec![]), &taints, now), Eviction::At(now));
        // The default 300 s toleration: 300 s after the taint.
        let p = pod_with(vec![
            tol(TAINT_NOT_READY, Some(300)),
            tol(TAINT_UNREACHABLE, Some(300)),
        ]);
        assert_eq!(
            eviction(&p, &taints, now),
            Eviction::At(t("2025-01-01T00:09:00Z"))
        );
        // Each taint uses its first matching toleration (upstream's GetMatchingTolerations);
        // the smallest seconds among the used ones win.
        let short = Toleration {
            operator: Some("Exists".into()),
            toleration_seconds: Some(10),
            ..Default::default()
        };
        let p = pod_with(vec![short.clone(), tol(TAINT_UNREACHABLE, Some(300))]);
        assert_eq!(
            eviction(&p, &taints, now),
            Eviction::At(t("2025-01-01T00:04:10Z"))
        );
        let p = pod_with(vec![tol(TAINT_UNREACHABLE, Some(300)), short]);
        assert_eq!(
            eviction(&p, &taints, now),
            Eviction::At(t("2025-01-01T00:09:00Z"))
        );
        // Tolerating forever never evicts.
        assert_eq!(
            eviction(&pod_with(vec![tol(TAINT_UNREACHABLE, None)]), &taints, now),
            Eviction::Never
        );
        // NoSchedule taints never evict.
        let ns = vec![Taint {
            effect: "NoSchedule".into(),
            ..taints[0].clone()
        }];
        assert_eq!(eviction(&pod_with(vec![]), &ns, now), Eviction::Never);
    }

    #[test]
    fn pods_on_a_dead_node_are_marked_evicted_and_force_deleted() {
        let mut n = node("Unknown", "2025-01-01T00:00:00Z");
        n.spec.as_mut().unwrap().taints = Some(unreachable_since("2025-01-01T00:01:00Z"));
        let waiting = pod_with(vec![tol(TAINT_UNREACHABLE, Some(30))]);
        let mut intolerant = pod_with(vec![]);
        intolerant.metadata.name = Some("bare".into());
        let mut terminating = pod_with(vec![]);
        terminating.metadata.name = Some("old".into());
        terminating.metadata.deletion_timestamp = Some(Time(t("2025-01-01T00:01:20Z")));
        let now = t("2025-01-01T00:01:10Z");
        let (acts, next) = plan_pods(Some(&n), &[&waiting, &intolerant, &terminating], None, now);
        assert_eq!(
            acts,
            [
                ("default/web-x".to_string(), PodAction::MarkNotReady),
                ("default/bare".to_string(), PodAction::Evict)
            ]
        );
        assert_eq!(next, Some(t("2025-01-01T00:01:20Z")));
        let later = t("2025-01-01T00:01:31Z");
        let (acts, _) = plan_pods(Some(&n), &[&waiting, &terminating], None, later);
        assert_eq!(
            acts,
            [
                ("default/web-x".to_string(), PodAction::Evict),
                ("default/old".to_string(), PodAction::ForceDelete)
            ]
        );
        // A Ready node's terminating pods are the kubelet's business.
        let healthy = node("True", "2025-01-01T00:01:00Z");
        assert!(plan_pods(Some(&healthy), &[&terminating], None, later)
            .0
            .is_empty());
    }

    #[test]
    fn pods_of_missing_nodes_are_collected_after_quarantine() {
        let p = pod_with(vec![]);
        let since = t("2025-01-01T00:00:00Z");
        let (acts, next) = plan_pods(None, &[&p], Some(since), t("2025-01-01T00:00:30Z"));
        assert!(acts.is_empty());
        assert_eq!(next, Some(t("2025-01-01T00:00:40Z")));
        let (acts, _) = plan_pods(None, &[&p], Some(since), t("2025-01-01T00:00:41Z"));
        assert_eq!(
            acts,
            [("default/web-x".to_string(), PodAction::DeleteOrphan)]
        );
    }
}
