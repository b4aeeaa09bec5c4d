//! The DaemonSet controller: one pod per eligible node, as upstream's `pkg/controller/daemon`.
//!
//! Daemon pods are created unbound, pinned to their node by a required node affinity term
//! `matchFields: metadata.name In [<node>]` (upstream's way since 1.12, "ScheduleDaemonSetPods"),
//! so the scheduler binds them and accounts their resources like any other pod. They carry the
//! automatic DaemonSet tolerations (not-ready/unreachable NoExecute without seconds, the
//! pressure and unschedulable NoSchedule taints), the `controller-revision-hash` label of the
//! ControllerRevision of their template, and a controller ownerReference.
//! Rolling updates honour `maxUnavailable` and `maxSurge`; `OnDelete` waits for deletions.

pub mod eligibility;

use crate::controller::{Action, Controller};
use crate::informer::{Change, Factory, Store};
use crate::util::history::{self, REVISION_LABEL};
use crate::util::{key_of, owner_key, patch_status, podutil, ObjectKey, Workload};
use crate::{Config, Error};
use eligibility::{node_should_run, pin_to_node, target_node};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Label with the DaemonSet's template generation (from the
/// `deprecated.daemonset.template.generation` annotation, when the API server sets it).
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// What one reconcile of a DaemonSet should do.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DsPlan {
    /// Nodes that need a new daemon pod.
    pub create_on: Vec<String>,
    /// Pods to delete: (name, uid).
    pub delete: Vec<(String, String)>,
    /// Failed pods found (pod name, node) — a `FailedDaemonPod` warning each.
    pub failed: Vec<(String, String)>,
    /// The status the DaemonSet should report (computed from the pods as they are now).
    pub status: DaemonSetStatus,
    /// Look again after this long (failed-pod backoff, minReadySeconds).
    pub requeue_after: Option<Duration>,
}

/// The inputs of [`plan`].
pub struct DsInput<'a> {
    pub ds: &'a DaemonSet,
    pub nodes: &'a [&'a Node],
    /// The pods this DaemonSet controls.
    pub pods: &'a [&'a Pod],
    /// The current revision's hash.
    pub hash: &'a str,
    pub now: Timestamp,
    /// Nodes whose failed pods may not be deleted before the given time (backoff).
    pub backoff_until: &'a HashMap<String, Timestamp>,
}

fn template_generation(ds: &DaemonSet) -> Option<&str> {
    ds.metadata
        .annotations
        .as_ref()?
        .get(TEMPLATE_GENERATION_ANNOTATION)
        .map(String::as_str)
}

/// Upstream `IsPodUpdated`: the pod has the current hash (or template generation).
pub fn is_updated(ds: &DaemonSet, pod: &Pod, hash: &str) -> bool {
    let labels = pod.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    (!hash.is_empty() && get(REVISION_LABEL) == Some(hash))
        || template_generation(ds).is_some_and(|g| get(TEMPLATE_GENERATION_LABEL) == Some(g))
}

/// Upstream `podByCreationTimestampAndPhase`: bound pods first, then oldest, then by name.
fn sort_oldest_first(pods: &mut [&Pod]) {
    pods.sort_by(|a, b| {
        let bound = |p: &Pod| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !n.is_empty())
        };
        bound(b)
            .cmp(&bound(a))
            .then(podutil::created(&a.metadata).cmp(&podutil::created(&b.metadata)))
            .then(a.metadata.name.cmp(&b.metadata.name))
    });
}

fn pod_id(p: &Pod) -> (String, String) {
    (
        p.metadata.name.clone().unwrap_or_default(),
        p.metadata.uid.clone().unwrap_or_default(),
    )
}

fn min_ready_seconds(ds: &DaemonSet) -> i32 {
    ds.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

/// The pod spec used to decide eligibility: the template plus the daemon tolerations.
fn eligibility_spec(ds: &DaemonSet) -> k8s_openapi::api::core::v1::PodSpec {
    let mut spec = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    eligibility::add_daemon_tolerations(&mut spec);
    spec
}

fn is_rolling(ds: &DaemonSet) -> bool {
    ds.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate"
}

fn rolling_params(ds: &DaemonSet) -> Option<&k8s_openapi::api::apps::v1::RollingUpdateDaemonSet> {
    ds.spec
        .as_ref()?
        .update_strategy
        .as_ref()?
        .rolling_update
        .as_ref()
}

/// (maxSurge, maxUnavailable) for `desired` nodes (upstream `updatedDesiredNodeCounts`).
pub fn surge_and_unavailable(ds: &DaemonSet, desired: i32) -> (i32, i32) {
    if !is_rolling(ds) {
        return (0, 1);
    }
    let ru = rolling_params(ds);
    let surge = podutil::scaled_value(ru.and_then(|r| r.max_surge.as_ref()), desired, true);
    let default_unavailable = k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1);
    let unavailable = podutil::scaled_value(
        Some(
            ru.and_then(|r| r.max_unavailable.as_ref())
                .unwrap_or(&default_unavailable),
        ),
        desired,
        true,
    );
    if desired > 0 && surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge.max(0), unavailable.max(0))
}

/// Upstream `AllowsSurge`: a surge of at least one pod per node is configured.
fn allows_surge(ds: &DaemonSet) -> bool {
    is_rolling(ds)
        && podutil::scaled_value(
            rolling_params(ds).and_then(|r| r.max_surge.as_ref()),
            1,
            true,
        ) > 0
}

/// (new, old) live pods on a node; `None` when a node has duplicates (manage cleans those up).
fn split_new_old<'a>(
    ds: &DaemonSet,
    pods: &[&'a Pod],
    hash: &str,
) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for p in pods.iter().copied().filter(|p| !podutil::is_terminating(p)) {
        let slot = if is_updated(ds, p, hash) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(p);
    }
    Some((new, old))
}

/// The planning core: what to create and delete on which nodes, and the status to report.
pub fn plan<'a>(input: &DsInput<'a>) -> DsPlan {
    let ds = input.ds;
    let spec = eligibility_spec(ds);
    let min_ready = min_ready_seconds(ds);
    let now = input.now;
    let mut out = DsPlan::default();

    // Pods by the node they target (pods without a target are not daemon pods of any node).
    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for p in input.pods.iter().copied() {
        // Deleted pods that already finished are gone as far as the controller cares.
        if podutil::is_terminating(p) && podutil::is_terminal(p) {
            continue;
        }
        if let Some(n) = p.spec.as_ref().and_then(target_node) {
            by_node.entry(n.to_string()).or_default().push(p);
        }
    }
    let fits: BTreeMap<String, eligibility::Fit> = input
        .nodes
        .iter()
        .filter_map(|n| Some((n.metadata.name.clone()?, node_should_run(&spec, n))))
        .collect();

    // --- status, from the pods as they are (upstream updateDaemonSetStatus) ---
    let mut st = DaemonSetStatus {
        collision_count: ds.status.as_ref().and_then(|s| s.collision_count),
        observed_generation: ds.metadata.generation,
        ..Default::default()
    };
    let (mut available, mut updated) = (0, 0);
    let mut wait_available: Option<i64> = None;
    for (node, fit) in &fits {
        let pods = by_node.get(node).map(Vec::as_slice).unwrap_or(&[]);
        if fit.should_run {
            st.desired_number_scheduled += 1;
            if !pods.is_empty() {
                st.current_number_scheduled += 1;
                let mut sorted = pods.to_vec();
                sort_oldest_first(&mut sorted);
                let first = sorted[0];
                if podutil::is_ready(first) {
                    st.number_ready += 1;
                    if podutil::is_available(first, min_ready, now) {
                        available += 1;
                    } else if let Some(s) = podutil::seconds_until_available(first, min_ready, now)
                    {
                        wait_available = Some(wait_available.map_or(s, |w| w.min(s)));
                    }
                }
                if is_updated(ds, first, input.hash) {
                    updated += 1;
                }
            }
        } else if !pods.is_empty() {
            st.number_misscheduled += 1;
        }
    }
    st.number_available = Some(available);
    st.updated_number_scheduled = Some(updated);
    st.number_unavailable = Some((st.desired_number_scheduled - available).max(0));
    out.status = st;
    if let Some(s) = wait_available {
        out.requeue_after = Some(Duration::from_secs(s.unsigned_abs()));
    }

    // --- manage: pods per node (upstream podsShouldBeOnNode) ---
    let surge = allows_surge(ds);
    let requeue = |d: Duration, out: &mut DsPlan| {
        out.requeue_after = Some(out.requeue_after.map_or(d, |r| r.min(d)));
    };
    for (node, fit) in &fits {
        let pods = by_node.get(node).cloned().unwrap_or_default();
        if fit.should_run && pods.is_empty() {
            out.create_on.push(node.clone());
            continue;
        }
        if !fit.should_continue_running {
            for p in pods.iter().filter(|p| !podutil::is_terminating(p)) {
                out.delete.push(pod_id(p));
            }
            continue;
        }
        let mut running: Vec<&Pod> = vec![];
        for p in pods.iter().copied() {
            if podutil::is_terminating(p) {
                continue;
            }
            match podutil::phase(p) {
                "Failed" => {
                    if let Some(until) = input.backoff_until.get(node).filter(|u| **u > now) {
                        let wait = until.as_second() - now.as_second();
                        requeue(Duration::from_secs(wait.unsigned_abs().max(1)), &mut out);
                        continue;
                    }
                    out.failed.push((pod_id(p).0, node.clone()));
                    out.delete.push(pod_id(p));
                }
                "Succeeded" => out.delete.push(pod_id(p)),
                _ => running.push(p),
            }
        }
        sort_oldest_first(&mut running);
        if !surge {
            for p in running.iter().skip(1) {
                out.delete.push(pod_id(p));
            }
            continue;
        }
        if running.len() <= 1 {
            if running.is_empty() && fit.should_run {
                // Surging: a live pod on the node at all times, even while one terminates.
                out.create_on.push(node.clone());
            }
            continue;
        }
        let (mut oldest_new, mut oldest_old): (Option<&Pod>, Option<&Pod>) = (None, None);
        for p in running.iter().copied() {
            let slot = if is_updated(ds, p, input.hash) {
                &mut oldest_new
            } else {
                &mut oldest_old
            };
            if slot.is_none() {
                *slot = Some(p);
            } else {
                out.delete.push(pod_id(p));
            }
        }
        if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
            if !podutil::is_ready(old) || podutil::is_available(new, min_ready, now) {
                out.delete.push(pod_id(old));
            }
        }
    }
    // Pods on nodes that no longer exist go too (upstream leaves bound ones to the pod GC).
    for (node, pods) in &by_node {
        if !fits.contains_key(node) {
            for p in pods.iter().filter(|p| !podutil::is_terminating(p)) {
                out.delete.push(pod_id(p));
            }
        }
    }
    if !out.create_on.is_empty() || !out.delete.is_empty() || !is_rolling(ds) {
        return out;
    }

    // --- rolling update (upstream rollingUpdate), only once the node set is settled ---
    let (max_surge, max_unavailable) =
        surge_and_unavailable(ds, out.status.desired_number_scheduled);
    let mut nodes_with_pods: BTreeMap<&str, Vec<&Pod>> = BTreeMap::new();
    for (node, fit) in &fits {
        if fit.should_run {
            nodes_with_pods.entry(node.as_str()).or_default();
        }
    }
    for (node, pods) in &by_node {
        nodes_with_pods
            .entry(node.as_str())
            .or_default()
            .extend(pods.iter().copied());
    }
    let split = |pods: &[&'a Pod]| split_new_old(ds, pods, input.hash);
    let avail = |p: &Pod| podutil::is_available(p, min_ready, now);
    if max_surge == 0 {
        let mut num_unavailable = 0;
        let mut allowed: Vec<(String, String)> = vec![];
        let mut candidates: Vec<(String, String)> = vec![];
        for pods in nodes_with_pods.values() {
            let Some((new, old)) = split(pods) else {
                num_unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => num_unavailable += 1,
                (Some(n), None) => {
                    if !avail(n) {
                        num_unavailable += 1;
                    }
                }
                (None, Some(o)) => {
                    if !avail(o) {
                        allowed.push(pod_id(o));
                        num_unavailable += 1;
                    } else if num_unavailable < max_unavailable {
                        candidates.push(pod_id(o));
                    }
                }
            }
        }
        let room = usize::try_from((max_unavailable - num_unavailable).max(0)).unwrap_or(0);
        out.delete.extend(allowed);
        out.delete.extend(candidates.into_iter().take(room));
        return out;
    }
    let mut num_surge = 0;
    let mut num_available = 0;
    let mut allowed_new: Vec<String> = vec![];
    let mut candidate_new: Vec<String> = vec![];
    let mut should_not_run: Vec<(String, String)> = vec![];
    for (node, pods) in &nodes_with_pods {
        let Some((new, old)) = split(pods) else {
            num_surge += 1;
            continue;
        };
        match (old, new) {
            (Some(o), _) if avail(o) => num_available += 1,
            (None, Some(n)) if avail(n) => num_available += 1,
            _ => {}
        }
        let runs = fits.get(*node).is_some_and(|f| f.should_run);
        match (old, new) {
            (None, _) => {}
            (Some(o), None) => {
                if !avail(o) {
                    if runs {
                        allowed_new.push(node.to_string());
                    } else {
                        out.delete.push(pod_id(o));
                    }
                } else if !runs {
                    should_not_run.push(pod_id(o));
                } else if num_surge < max_surge {
                    candidate_new.push(node.to_string());
                }
            }
            (Some(o), Some(n)) => {
                if avail(n) {
                    out.delete.push(pod_id(o));
                } else {
                    num_surge += 1;
                }
            }
        }
    }
    let deletable = (num_available - out.status.desired_number_scheduled).max(0);
    out.delete.extend(
        should_not_run
            .into_iter()
            .take(usize::try_from(deletable).unwrap_or(0)),
    );
    let room = usize::try_from((max_surge - num_surge).max(0)).unwrap_or(0);
    out.create_on.extend(allowed_new);
    out.create_on.extend(candidate_new.into_iter().take(room));
    out
}

/// The pod a DaemonSet creates for a node (upstream `CreatePodTemplate` + node pinning).
pub fn daemon_pod(ds: &DaemonSet, node: &str, hash: &str) -> Pod {
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let name = ds.metadata.name.as_deref().unwrap_or("daemon");
    let mut pod = crate::util::pod_control::pod_from_template(ds, &template, name);
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    if let Some(g) = template_generation(ds) {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), g.to_string());
    }
    if !hash.is_empty() {
        labels.insert(REVISION_LABEL.into(), hash.to_string());
    }
    let spec = pod.spec.get_or_insert_with(Default::default);
    eligibility::add_daemon_tolerations(spec);
    spec.affinity = Some(pin_to_node(spec.affinity.take(), node));
    pod
}

struct Ctx {
    base: Workload<DaemonSet>,
    nodes: Arc<Store<Node>>,
    revs: Arc<Store<ControllerRevision>>,
    /// (DaemonSet uid, node) → (not before, last backoff): upstream's failed-pod backoff,
    /// 1 s doubling to 15 min.
    backoff: Mutex<HashMap<(String, String), (Timestamp, u64)>>,
}

impl std::ops::Deref for Ctx {
    type Target = Workload<DaemonSet>;
    fn deref(&self) -> &Self::Target {
        &self.base
    }
}

/// What about a node matters to DaemonSets: labels, taints, unschedulable and which
/// conditions are true (a deleted node is handled by the relist and the periodic resync).
fn node_fingerprint(n: &Node) -> String {
    let spec = n.spec.as_ref();
    let conds: Vec<(&str, &str)> = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|c| {
            c.iter()
                .map(|c| (c.type_.as_str(), c.status.as_str()))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{:?}|{:?}|{:?}|{:?}|{}",
        n.metadata.labels,
        spec.and_then(|s| s.taints.as_ref()),
        spec.and_then(|s| s.unschedulable),
        conds,
        n.metadata.uid.as_deref().unwrap_or("")
    )
}

/// Daemon pods carry the revision label; the controller only looks at such pods (it watched
/// pods with this label selector before the informers were shared).
pub(crate) fn has_revision_label(p: &Pod) -> bool {
    p.metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(REVISION_LABEL))
}

/// Registers the DaemonSet controller's handlers on the shared informers and spawns its
/// workers (they start once the caches have synced).
pub fn start(factory: &Factory, _cfg: Arc<Config>) {
    let ctx = Arc::new(Ctx {
        base: Workload::new(factory, "daemonset-controller"),
        nodes: factory.store::<Node>(),
        revs: factory.store::<ControllerRevision>(),
        backoff: Mutex::default(),
    });
    let dss = ctx.objects.clone();
    Controller::new(factory, "daemonset")
        .reconciles::<DaemonSet>()
        .watches::<Pod, _>(|ch| {
            let p = ch.object();
            has_revision_label(p)
                .then(|| owner_key(&p.metadata, "DaemonSet"))
                .flatten()
        })
        // Upstream's shouldIgnoreNodeUpdate: heartbeats and other status noise do not wake
        // every DaemonSet, only changes of what eligibility and status depend on.
        .watches::<Node, _>(move |ch| {
            let changed = match ch {
                Change::Applied {
                    old: Some(old),
                    new,
                } => node_fingerprint(old) != node_fingerprint(new),
                _ => true,
            };
            let all = if changed { dss.all() } else { Vec::new() };
            all.into_iter().map(|d| key_of(d.as_ref()))
        })
        .owns::<ControllerRevision>("DaemonSet")
        .workers(2)
        .resync(Duration::from_secs(30))
        .run(ctx, reconcile);
}

async fn reconcile(ctx: Arc<Ctx>, key: ObjectKey) -> Result<Action, Error> {
    let Some((ds, pods)) = ctx.load(&key, has_revision_label) else {
        return Ok(Action::Done);
    };
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::Done);
    }
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let ns = key.namespace.clone();
    let revs: Vec<Arc<ControllerRevision>> = ctx
        .revs
        .list_filter(&ns, |r| crate::util::is_controlled_by(&r.metadata, &uid));
    let (hash, old) = construct_history(&ctx, &ds, &revs).await?;

    let nodes = ctx.nodes.all();
    let node_refs: Vec<&Node> = nodes.iter().map(|n| n.as_ref()).collect();
    let pod_refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
    let now = Timestamp::now();
    let backoff_until: HashMap<String, Timestamp> = ctx
        .backoff
        .lock()
        .map(|m| {
            m.iter()
                .filter(|((u, _), _)| *u == uid)
                .map(|((_, n), (t, _))| (n.clone(), *t))
                .collect()
        })
        .unwrap_or_default();
    let p = plan(&DsInput {
        ds: &ds,
        nodes: &node_refs,
        pods: &pod_refs,
        hash: &hash,
        now,
        backoff_until: &backoff_until,
    });

    for (pod, node) in &p.failed {
        let msg = format!("Found failed daemon pod {ns}/{pod} on node {node}, will try to kill it");
        ctx.control
            .recorder()
            .record(ds.as_ref(), "Warning", "FailedDaemonPod", &msg)
            .await;
        if let Ok(mut m) = ctx.backoff.lock() {
            let e = m.entry((uid.clone(), node.clone())).or_insert((now, 0));
            let next = if e.1 == 0 { 1 } else { (e.1 * 2).min(900) };
            *e = (
                now.checked_add(k8s_openapi::jiff::SignedDuration::from_secs(
                    i64::try_from(next).unwrap_or(900),
                ))
                .unwrap_or(now),
                next,
            );
        }
    }
    let deleted = match ctx.control.delete_pods(ds.as_ref(), &ns, &p.delete).await {
        Ok(d) => d,
        Err((e, deleted)) => {
            ctx.exp.expect(&key, vec![], deleted);
            return Err(e.into());
        }
    };
    let new_pods: Vec<Pod> = p
        .create_on
        .iter()
        .map(|node| daemon_pod(&ds, node, &hash))
        .collect();
    let created = ctx.control.create_pods(ds.as_ref(), &ns, &new_pods).await;
    ctx.exp.expect(&key, created.names(), deleted);
    update_status(&ctx, &ds, &p.status).await?;
    cleanup_history(&ctx, &ds, &old, &pods).await?;
    if let Some(e) = created.error {
        return Err(e.into());
    }
    Ok(Action::after(p.requeue_after))
}

async fn update_status(ctx: &Ctx, ds: &DaemonSet, st: &DaemonSetStatus) -> Result<(), Error> {
    let cur = ds.status.clone().unwrap_or_default();
    let same = cur.desired_number_scheduled == st.desired_number_scheduled
        && cur.current_number_scheduled == st.current_number_scheduled
        && cur.number_ready == st.number_ready
        && cur.number_misscheduled == st.number_misscheduled
        && cur.number_available.unwrap_or(0) == st.number_available.unwrap_or(0)
        && cur.number_unavailable.unwrap_or(0) == st.number_unavailable.unwrap_or(0)
        && cur.updated_number_scheduled.unwrap_or(0) == st.updated_number_scheduled.unwrap_or(0)
        && cur.observed_generation == st.observed_generation;
    if same {
        return Ok(());
    }
    let status = json!({
        "desiredNumberScheduled": st.desired_number_scheduled,
        "currentNumberScheduled": st.current_number_scheduled,
        "numberReady": st.number_ready,
        "numberMisscheduled": st.number_misscheduled,
        "numberAvailable": st.number_available.unwrap_or(0),
        "numberUnavailable": st.number_unavailable.unwrap_or(0),
        "updatedNumberScheduled": st.updated_number_scheduled.unwrap_or(0),
        "observedGeneration": st.observed_generation,
    });
    Ok(patch_status(&ctx.client, ds, status).await?)
}

/// Finds or creates the revision of the current template (upstream `constructHistory`);
/// returns its hash and the other (old) revisions.
async fn construct_history(
    ctx: &Ctx,
    ds: &DaemonSet,
    revs: &[Arc<ControllerRevision>],
) -> Result<(String, Vec<Arc<ControllerRevision>>), Error> {
    let (ns, name) = (key_of(ds).namespace, key_of(ds).name);
    let template = ds.spec.clone().unwrap_or_default().template;
    let data = history::template_patch(&template);
    let (cur, old): (Vec<_>, Vec<_>) = revs.iter().cloned().partition(|r| history::holds(r, &data));
    let next = history::max_revision(old.iter().map(|r| r.as_ref())) + 1;
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ns);
    let hash_of = |r: &ControllerRevision| {
        r.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_LABEL).cloned())
            .or_else(|| {
                r.metadata
                    .name
                    .as_deref()
                    .and_then(|n| n.rsplit('-').next())
                    .map(str::to_string)
            })
            .unwrap_or_default()
    };
    if let Some(keep) = cur.iter().max_by_key(|r| r.revision) {
        for dup in cur.iter().filter(|r| r.metadata.name != keep.metadata.name) {
            let _ = api
                .delete(
                    dup.metadata.name.as_deref().unwrap_or(""),
                    &DeleteParams::default(),
                )
                .await;
        }
        if keep.revision < next {
            api.patch(
                keep.metadata.name.as_deref().unwrap_or(""),
                &PatchParams::default(),
                &Patch::Merge(&json!({"revision": next})),
            )
            .await?;
        }
        return Ok((hash_of(keep), old));
    }
    let collisions = ds.status.as_ref().and_then(|s| s.collision_count);
    let hash = podutil::short_hash(
        serde_json::to_string(&template)
            .unwrap_or_default()
            .as_bytes(),
        collisions,
    );
    let rev = history::new_revision(
        &ds.metadata,
        "apps/v1",
        "DaemonSet",
        template.metadata.as_ref().and_then(|m| m.labels.as_ref()),
        history::revision_name(&name, &hash),
        &hash,
        data.clone(),
        next,
    );
    history::create(&ctx.client, ds, &rev, collisions.unwrap_or(0)).await?;
    Ok((hash, old))
}

async fn cleanup_history(
    ctx: &Ctx,
    ds: &DaemonSet,
    old: &[Arc<ControllerRevision>],
    pods: &[Arc<Pod>],
) -> Result<(), Error> {
    let limit = ds.spec.as_ref().and_then(|s| s.revision_history_limit);
    let live_hashes: std::collections::HashSet<&str> = pods
        .iter()
        .filter_map(|p| p.metadata.labels.as_ref()?.get(REVISION_LABEL))
        .map(String::as_str)
        .collect();
    let live: std::collections::HashSet<String> = old
        .iter()
        .filter(|r| {
            r.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(REVISION_LABEL))
                .is_some_and(|h| live_hashes.contains(h.as_str()))
        })
        .filter_map(|r| r.metadata.name.clone())
        .collect();
    let refs: Vec<&ControllerRevision> = old.iter().map(|r| r.as_ref()).collect();
    let ns = ds.metadata.namespace.as_deref().unwrap_or("");
    Ok(history::prune(&ctx.client, ns, &refs, &live, limit).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::pod_control::slow_start;
    use crate::util::podutil::tests::{pod, ts};
    use k8s_openapi::api::apps::v1::{
        DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
    };
    use k8s_openapi::api::core::v1::{NodeSpec, PodSpec, PodTemplateSpec, Taint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn node(name: &str, taint: Option<(&str, &str)>) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n.spec = Some(NodeSpec {
            taints: taint.map(|(k, e)| {
                vec![Taint {
                    key: k.into(),
                    effect: e.into(),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        });
        n
    }

    fn ds(surge: i32, unavailable: i32) -> DaemonSet {
        let mut d = DaemonSet::default();
        d.metadata.name = Some("agent".into());
        d.metadata.namespace = Some("default".into());
        d.metadata.uid = Some("ds-uid".into());
        d.metadata.generation = Some(2);
        d.spec = Some(DaemonSetSpec {
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some([("app".to_string(), "agent".to_string())].into()),
                    ..Default::default()
                }),
                spec: Some(PodSpec::default()),
            },
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_surge: Some(IntOrString::Int(surge)),
                    max_unavailable: Some(IntOrString::Int(unavailable)),
                }),
            }),
            ..Default::default()
        });
        d
    }

    /// A daemon pod on `node` with revision `hash`, Running and ready since t=100 when `ready`.
    /// Daemon pods from `name node hash ready(+/-)` entries, comma-separated.
    fn dpods(list: &str) -> Vec<Pod> {
        list.split(", ")
            .map(|e| {
                let f: Vec<&str> = e.split(' ').collect();
                dpod(f[0], f[1], f[2], f[3] == "+")
            })
            .collect()
    }

    fn dpod(name: &str, node: &str, hash: &str, ready: bool) -> Pod {
        let mut p = pod(
            name,
            if ready { "Running" } else { "Pending" },
            ready.then_some(100),
        );
        p.spec = Some(PodSpec {
            affinity: Some(pin_to_node(None, node)),
            ..Default::default()
        });
        p.metadata.labels = Some([(REVISION_LABEL.to_string(), hash.to_string())].into());
        p
    }

    fn run(ds: &DaemonSet, nodes: &[Node], pods: &[Pod]) -> DsPlan {
        let nr: Vec<&Node> = nodes.iter().collect();
        let pr: Vec<&Pod> = pods.iter().collect();
        plan(&DsInput {
            ds,
            nodes: &nr,
            pods: &pr,
            hash: "new",
            now: ts(1000),
            backoff_until: &HashMap::new(),
        })
    }

    /// Node a, and node b tainted NoSchedule (not tolerated by the test DaemonSet).
    fn a_and_tainted_b() -> [Node; 2] {
        [
            node("a", None),
            node("b", Some(("dedicated", "NoSchedule"))),
        ]
    }

    #[test]
    fn one_pod_per_eligible_node() {
        let d = ds(0, 1);
        let mut nodes = a_and_tainted_b().to_vec();
        nodes.push(node(
            "c",
            Some(("node.kubernetes.io/unreachable", "NoExecute")),
        ));
        let p = run(&d, &nodes, &[]);
        assert_eq!(p.create_on, vec!["a".to_string(), "c".to_string()]);
        assert_eq!(p.status.desired_number_scheduled, 2);
        assert_eq!(p.status.current_number_scheduled, 0);
        assert_eq!(p.status.number_unavailable, Some(2));
        assert_eq!(p.status.observed_generation, Some(2));
    }

    #[test]
    fn status_counts_and_misscheduled_pods() {
        let d = ds(0, 1);
        let nodes = a_and_tainted_b();
        // b has a pod but is ineligible (NoSchedule): it may keep running, counts misscheduled.
        let pods = [dpod("p1", "a", "new", true), dpod("p2", "b", "new", true)];
        let p = run(&d, &nodes, &pods);
        assert!(p.create_on.is_empty() && p.delete.is_empty());
        assert_eq!(p.status.desired_number_scheduled, 1);
        assert_eq!(p.status.current_number_scheduled, 1);
        assert_eq!(p.status.number_ready, 1);
        assert_eq!(p.status.number_available, Some(1));
        assert_eq!(p.status.updated_number_scheduled, Some(1));
        assert_eq!(p.status.number_misscheduled, 1);
        // An out-of-date pod there is replaced by the rolling update, and not recreated.
        let pods = [dpod("p1", "a", "new", true), dpod("p2", "b", "old", true)];
        let p = run(&d, &nodes, &pods);
        assert_eq!(p.delete, vec![("p2".into(), "uid-p2".into())]);
        assert!(run(&d, &nodes, &pods[..1]).create_on.is_empty());
    }

    #[test]
    fn removed_and_no_execute_nodes_lose_their_pods() {
        let d = ds(0, 1);
        let nodes = [node("a", Some(("evict", "NoExecute")))];
        let pods = dpods("p1 a new +, p2 gone new +");
        let p = run(&d, &nodes, &pods);
        let names: Vec<&str> = p.delete.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["p1", "p2"]);
    }

    #[test]
    fn duplicates_keep_the_oldest_and_failed_pods_are_replaced() {
        let d = ds(0, 1);
        let mut young = dpod("young", "a", "new", true);
        young.metadata.creation_timestamp = Some(Time(ts(2000)));
        let p = run(
            &d,
            &[node("a", None)],
            &[dpod("old", "a", "new", true), young],
        );
        assert_eq!(p.delete, vec![("young".into(), "uid-young".into())]);

        let mut failed = dpod("f", "a", "new", false);
        failed.status.as_mut().unwrap().phase = Some("Failed".into());
        let p = run(&d, &[node("a", None)], &[failed.clone()]);
        assert_eq!(p.failed, vec![("f".into(), "a".into())]);
        assert_eq!(p.delete.len(), 1);
        // In backoff: left alone, look again later.
        let nodes = [node("a", None)];
        let nr: Vec<&Node> = nodes.iter().collect();
        let pr = vec![&failed];
        let backoff = [("a".to_string(), ts(1010))].into();
        let p = plan(&DsInput {
            ds: &d,
            nodes: &nr,
            pods: &pr,
            hash: "new",
            now: ts(1000),
            backoff_until: &backoff,
        });
        assert!(p.delete.is_empty());
        assert_eq!(p.requeue_after, Some(Duration::from_secs(10)));
    }

    #[test]
    fn rolling_update_respects_max_unavailable() {
        let d = ds(0, 1);
        let nodes = [node("a", None), node("b", None), node("c", None)];
        let pods = dpods("pa a old +, pb b old +, pc c old +");
        let p = run(&d, &nodes, &pods);
        assert_eq!(p.delete.len(), 1, "one at a time");
        assert_eq!(p.status.updated_number_scheduled, Some(0));
        // With one node already replaced but not ready yet: nothing more.
        let pods = dpods("pa2 a new -, pb b old +, pc c old +");
        assert!(run(&d, &nodes, &pods).delete.is_empty());
        // An unavailable old pod is always replaceable.
        let pods = dpods("pa2 a new +, pb b old -, pc c old +");
        let p = run(&d, &nodes, &pods);
        assert_eq!(p.delete, vec![("pb".into(), "uid-pb".into())]);
        // maxUnavailable 2 of 3 nodes.
        let pods = dpods("pa a old +, pb b old +, pc c old +");
        assert_eq!(run(&ds(0, 2), &nodes, &pods).delete.len(), 2);
    }

    #[test]
    fn rolling_update_with_surge() {
        let d = ds(1, 0);
        let nodes = [node("a", None), node("b", None)];
        let pods = [dpod("pa", "a", "old", true), dpod("pb", "b", "old", true)];
        let p = run(&d, &nodes, &pods);
        assert_eq!(p.create_on, vec!["a".to_string()], "one surge pod");
        assert!(p.delete.is_empty());
        // The surge pod is not ready: wait.
        let pods = dpods("pa a old +, pa2 a new -, pb b old +");
        let p = run(&d, &nodes, &pods);
        assert!(p.create_on.is_empty() && p.delete.is_empty());
        // Ready: the old pod goes, and the next node surges.
        let pods = dpods("pa a old +, pa2 a new +, pb b old +");
        let p = run(&d, &nodes, &pods);
        assert_eq!(p.delete, vec![("pa".into(), "uid-pa".into())]);
    }

    #[test]
    fn daemon_pods_are_pinned_and_labelled() {
        let mut d = ds(0, 1);
        d.metadata.annotations =
            Some([(TEMPLATE_GENERATION_ANNOTATION.to_string(), "3".to_string())].into());
        let p = daemon_pod(&d, "n1", "h1");
        assert_eq!(p.metadata.generate_name.as_deref(), Some("agent-"));
        let l = p.metadata.labels.as_ref().unwrap();
        assert_eq!(l[REVISION_LABEL], "h1");
        assert_eq!(l[TEMPLATE_GENERATION_LABEL], "3");
        assert_eq!(l["app"], "agent");
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(target_node(spec), Some("n1"));
        assert!(spec.node_name.is_none(), "the scheduler binds it");
        assert_eq!(spec.tolerations.as_ref().unwrap().len(), 6);
        let r = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((r.kind.as_str(), r.controller), ("DaemonSet", Some(true)));
    }

    #[test]
    fn surge_and_unavailable_resolution() {
        let mut d = ds(0, 0);
        assert_eq!(surge_and_unavailable(&d, 4), (0, 1), "both zero means one");
        if let Some(ru) = d
            .spec
            .as_mut()
            .and_then(|s| s.update_strategy.as_mut())
            .and_then(|u| u.rolling_update.as_mut())
        {
            ru.max_surge = Some(IntOrString::String("10%".into()));
        }
        assert_eq!(surge_and_unavailable(&d, 4), (1, 0), "percentages round up");
        assert_eq!(
            slow_start(&[1, 2, 3, 4, 5, 6, 7, 8])
                .iter()
                .map(|c| c.len())
                .collect::<Vec<_>>(),
            vec![1, 2, 4, 1]
        );
    }
}
