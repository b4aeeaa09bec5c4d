//! The disruption controller (upstream's `pkg/controller/disruption`): keeps each
//! PodDisruptionBudget's status — expectedPods, desiredHealthy, currentHealthy,
//! disruptionsAllowed, disruptedPods, observedGeneration and the `DisruptionAllowed`
//! condition — true to the pods it selects, so the API server's eviction can honour it.
//! `plan` is the pure decision core; `next_status` turns it into the status to write.

use crate::controller::{Action, Controller};
use crate::events::Recorder;
use crate::informer::{Change, Factory, Store};
use crate::util::podutil::{is_ready, selector_is_empty, selector_matches};
use crate::util::{api_message, controller_of, key_of, ObjectKey};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// How long an eviction's entry in `disruptedPods` waits for the pod's deletion to be seen
/// (upstream's `DeletionTimeout`).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);
/// Parallel syncs.
const WORKERS: usize = 2;
/// Every budget is re-synced this often even without events.
const RESYNC: Duration = Duration::from_secs(30);

/// The condition the controller keeps and its reasons (upstream's policy constants).
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
pub const SUFFICIENT_PODS: &str = "SufficientPods";
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
pub const SYNC_FAILED: &str = "SyncFailed";

/// Errors of a budget sync.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Plan(String),
}

/// What the pods say about one budget.
#[derive(Debug, Default, PartialEq)]
pub struct Counts {
    pub expected: i32,
    pub desired_healthy: i32,
    pub current_healthy: i32,
    pub disruptions_allowed: i32,
    /// The still-pending evictions (pods not yet seen terminating, within the timeout).
    pub disrupted: BTreeMap<String, Time>,
    /// When the earliest pending eviction times out (the budget must be looked at again).
    pub recheck: Option<Timestamp>,
    /// Pods with no controller: their budget's percentage cannot be computed correctly.
    pub unmanaged: Vec<String>,
    /// Pods whose pending eviction timed out without a deletion.
    pub not_deleted: Vec<String>,
}

/// Upstream's `GetScaledValueFromIntOrPercent(v, total, roundUp = true)`.
pub fn scaled_value(v: &IntOrString, total: i32) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let pct = s
                .strip_suffix('%')
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let scaled = (pct * i64::from(total) + 99).div_euclid(100);
            Ok(scaled.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
        }
    }
}

/// The pods a budget selects (upstream's `getPodsForPdb`: a missing selector selects none,
/// an empty one every pod of the namespace).
pub fn selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    pdb.spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_some_and(|sel| selector_matches(sel, pod.metadata.labels.as_ref()))
}

/// The scale of the workload controller of a pod: `(controller uid, replicas)` (upstream's
/// finders), `None` when the controller is not a kind whose scale is known or is not found.
pub type ScaleOf<'a> = dyn Fn(&str, &OwnerReference) -> Option<(String, i32)> + 'a;

/// Upstream's `getExpectedScale`: the sum of the scales of the pods' controllers (each
/// counted once); pods without a controller are reported, a controller that cannot be found
/// is an error.
fn expected_scale(pods: &[&Pod], scale_of: &ScaleOf<'_>) -> Result<(i32, Vec<String>), String> {
    let mut scales: HashMap<String, i32> = HashMap::new();
    let mut unmanaged = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(owner) = controller_of(&pod.metadata) else {
            unmanaged.push(name);
            continue;
        };
        if scales.contains_key(&owner.uid) {
            continue;
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        match scale_of(ns, owner) {
            Some((uid, n)) => {
                scales.insert(uid, n);
            }
            None => return Err(format!("found no controllers for pod {name:?}")),
        }
    }
    Ok((scales.values().sum(), unmanaged))
}

/// Upstream's `getExpectedPodCount`: `(expectedPods, desiredHealthy, unmanaged pods)`.
/// An integer minAvailable counts the selected pods; a percentage or maxUnavailable uses the
/// controllers' scale.
pub fn expected_pod_count(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    scale_of: &ScaleOf<'_>,
) -> Result<(i32, i32, Vec<String>), String> {
    let spec = pdb.spec.clone().unwrap_or_default();
    if let Some(max) = &spec.max_unavailable {
        let (expected, unmanaged) = expected_scale(pods, scale_of)?;
        let max = scaled_value(max, expected)?;
        return Ok((expected, (expected - max).max(0), unmanaged));
    }
    match &spec.min_available {
        Some(IntOrString::Int(n)) => Ok((pods.len() as i32, *n, Vec::new())),
        Some(min) => {
            let (expected, unmanaged) = expected_scale(pods, scale_of)?;
            Ok((expected, scaled_value(min, expected)?, unmanaged))
        }
        None => Ok((0, 0, Vec::new())),
    }
}

/// Upstream's `buildDisruptedPodMap` and `countHealthyPods` over the selected pods at `now`.
pub fn plan(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    scale_of: &ScaleOf<'_>,
    now: Timestamp,
) -> Result<Counts, String> {
    let (expected, desired_healthy, unmanaged) = expected_pod_count(pdb, pods, scale_of)?;
    let timeout = SignedDuration::try_from(DELETION_TIMEOUT).unwrap_or(SignedDuration::ZERO);
    let recorded = pdb
        .status
        .as_ref()
        .and_then(|s| s.disrupted_pods.clone())
        .unwrap_or_default();
    let mut counts = Counts {
        expected,
        desired_healthy,
        unmanaged,
        ..Default::default()
    };
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        if let Some(at) = recorded.get(&name) {
            let expires = at.0.saturating_add(timeout).unwrap_or(at.0);
            if expires < now {
                counts.not_deleted.push(name.clone());
            } else {
                counts.recheck = Some(counts.recheck.map_or(expires, |r| r.min(expires)));
                counts.disrupted.insert(name.clone(), at.clone());
            }
        }
    }
    counts.current_healthy = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let name = p.metadata.name.as_deref().unwrap_or("");
            !counts.disrupted.contains_key(name)
        })
        .filter(|p| is_ready(p))
        .count() as i32;
    let allowed = counts.current_healthy - counts.desired_healthy;
    counts.disruptions_allowed = if counts.expected <= 0 || allowed <= 0 {
        0
    } else {
        allowed
    };
    Ok(counts)
}

/// Upstream's `apimeta.SetStatusCondition`: the transition time moves only when the status
/// does.
fn set_condition(conds: &mut Vec<Condition>, mut c: Condition) {
    match conds.iter_mut().find(|x| x.type_ == c.type_) {
        Some(old) => {
            if old.status == c.status {
                c.last_transition_time = old.last_transition_time.clone();
            }
            *old = c;
        }
        None => conds.push(c),
    }
}

fn allowed_condition(status: &PodDisruptionBudgetStatus, now: Timestamp) -> Condition {
    let (s, reason) = if status.disruptions_allowed > 0 {
        ("True", SUFFICIENT_PODS)
    } else {
        ("False", INSUFFICIENT_PODS)
    };
    Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: s.into(),
        reason: reason.into(),
        message: String::new(),
        observed_generation: status.observed_generation,
        last_transition_time: Time(now),
    }
}

/// The status to write for `counts`, or `None` when the stored one already says it
/// (upstream's `updatePdbStatus` with `ConditionsAreUpToDate`).
pub fn next_status(
    pdb: &PodDisruptionBudget,
    counts: &Counts,
    now: Timestamp,
) -> Option<PodDisruptionBudgetStatus> {
    let old = pdb.status.clone().unwrap_or_default();
    let generation = pdb.metadata.generation;
    let mut status = PodDisruptionBudgetStatus {
        current_healthy: counts.current_healthy,
        desired_healthy: counts.desired_healthy,
        expected_pods: counts.expected,
        disruptions_allowed: counts.disruptions_allowed,
        disrupted_pods: Some(counts.disrupted.clone()),
        observed_generation: generation,
        conditions: old.conditions.clone(),
    };
    let want = allowed_condition(&status, now);
    let condition_ok = old.conditions.iter().flatten().any(|c| {
        c.type_ == DISRUPTION_ALLOWED
            && c.status == want.status
            && c.reason == want.reason
            && c.observed_generation == want.observed_generation
    });
    let old_disrupted = old.disrupted_pods.clone().unwrap_or_default();
    if old.current_healthy == status.current_healthy
        && old.desired_healthy == status.desired_healthy
        && old.expected_pods == status.expected_pods
        && old.disruptions_allowed == status.disruptions_allowed
        && old_disrupted == counts.disrupted
        && old.observed_generation == generation
        && condition_ok
    {
        return None;
    }
    set_condition(status.conditions.get_or_insert_with(Vec::new), want);
    Some(status)
}

/// Upstream's `failSafe`: when the budget cannot be computed, no disruption is allowed and the
/// condition says why.
pub fn fail_safe_status(
    pdb: &PodDisruptionBudget,
    err: &str,
    now: Timestamp,
) -> PodDisruptionBudgetStatus {
    let mut status = pdb.status.clone().unwrap_or_default();
    status.disruptions_allowed = 0;
    let c = Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: "False".into(),
        reason: SYNC_FAILED.into(),
        message: err.to_string(),
        observed_generation: status.observed_generation,
        last_transition_time: Time(now),
    };
    set_condition(status.conditions.get_or_insert_with(Vec::new), c);
    status
}

struct Ctx {
    client: kube::Client,
    pdbs: Arc<Store<PodDisruptionBudget>>,
    pods: Arc<Store<Pod>>,
    rss: Arc<Store<ReplicaSet>>,
    deployments: Arc<Store<Deployment>>,
    statefulsets: Arc<Store<StatefulSet>>,
    rcs: Arc<Store<ReplicationController>>,
    recorder: Recorder,
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map(|(g, _)| g).unwrap_or("")
}

impl Ctx {
    /// Upstream's finders: ReplicationController, Deployment (through its ReplicaSet),
    /// ReplicaSet (not owned by a Deployment) and StatefulSet, each matched by uid.
    fn scale_of(&self, ns: &str, r: &OwnerReference) -> Option<(String, i32)> {
        let group = group_of(&r.api_version);
        match (group, r.kind.as_str()) {
            ("", "ReplicationController") => {
                let rc = self.rcs.get(ns, &r.name)?;
                (rc.metadata.uid.as_deref() == Some(r.uid.as_str())).then(|| {
                    let n = rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    (r.uid.clone(), n)
                })
            }
            ("apps" | "extensions", "ReplicaSet") => {
                let rs = self.rss.get(ns, &r.name)?;
                if rs.metadata.uid.as_deref() != Some(r.uid.as_str()) {
                    return None;
                }
                match controller_of(&rs.metadata) {
                    Some(d) if d.kind == "Deployment" => {
                        let dep = self.deployments.get(ns, &d.name)?;
                        (dep.metadata.uid.as_deref() == Some(d.uid.as_str())).then(|| {
                            let n = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                            (d.uid.clone(), n)
                        })
                    }
                    _ => {
                        let n = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                        Some((r.uid.clone(), n))
                    }
                }
            }
            ("apps", "StatefulSet") => {
                let sts = self.statefulsets.get(ns, &r.name)?;
                (sts.metadata.uid.as_deref() == Some(r.uid.as_str())).then(|| {
                    let n = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    (r.uid.clone(), n)
                })
            }
            _ => None,
        }
    }

    /// The budgets (keys) whose non-empty selector matches a pod (upstream's
    /// `GetPodPodDisruptionBudgets`).
    fn budgets_of(&self, pod: &Pod) -> Vec<ObjectKey> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        self.pdbs
            .list(ns)
            .iter()
            .filter(|b| {
                b.spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .is_some_and(|sel| {
                        !selector_is_empty(sel)
                            && selector_matches(sel, pod.metadata.labels.as_ref())
                    })
            })
            .map(|b| key_of(b.as_ref()))
            .collect()
    }

    fn on_pod(&self, change: &Change<Pod>) -> Vec<ObjectKey> {
        let mut keys = self.budgets_of(change.object());
        if let Change::Applied { old: Some(old), .. } = change {
            for k in self.budgets_of(old) {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        keys
    }
}

/// Registers the disruption controller on the shared informers and spawns its workers.
pub fn start(factory: &Factory, _cfg: Arc<crate::Config>) {
    let client = factory.client();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        pdbs: factory.store::<PodDisruptionBudget>(),
        pods: factory.store::<Pod>(),
        rss: factory.store::<ReplicaSet>(),
        deployments: factory.store::<Deployment>(),
        statefulsets: factory.store::<StatefulSet>(),
        rcs: factory.store::<ReplicationController>(),
        recorder: Recorder::new(client, "controllermanager"),
    });
    let c = Arc::clone(&ctx);
    Controller::new(factory, "disruption")
        .reconciles::<PodDisruptionBudget>()
        .watches::<Pod, _>(move |ch| c.on_pod(ch))
        .reads::<ReplicaSet>()
        .reads::<Deployment>()
        .reads::<StatefulSet>()
        .reads::<ReplicationController>()
        .workers(WORKERS)
        .resync(RESYNC)
        .run(ctx, reconcile);
}

async fn write_status(
    ctx: &Ctx,
    pdb: &PodDisruptionBudget,
    status: PodDisruptionBudgetStatus,
) -> Result<(), kube::Error> {
    let ns = pdb.metadata.namespace.as_deref().unwrap_or("");
    let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), ns);
    let mut new = pdb.clone();
    new.metadata.managed_fields = None;
    new.status = Some(status);
    api.replace_status(
        pdb.metadata.name.as_deref().unwrap_or(""),
        &PostParams::default(),
        &new,
    )
    .await?;
    Ok(())
}

/// One sync of budget `key` (upstream's `sync`/`trySync`): conflicts retry, other failures
/// write the fail-safe status.
async fn reconcile(ctx: Arc<Ctx>, key: ObjectKey) -> Result<Action, Error> {
    let Some(pdb) = ctx.pdbs.get(&key.namespace, &key.name) else {
        return Ok(Action::Done);
    };
    let pods = ctx.pods.list_filter(&key.namespace, |p| selects(&pdb, p));
    let refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
    let now = Timestamp::now();
    let scale_of = |ns: &str, r: &OwnerReference| ctx.scale_of(ns, r);
    let counts = match plan(&pdb, &refs, &scale_of, now) {
        Ok(c) => c,
        Err(e) => {
            ctx.recorder
                .record(
                    pdb.as_ref(),
                    "Warning",
                    "CalculateExpectedPodCountFailed",
                    &format!("Failed to calculate the number of expected pods: {e}"),
                )
                .await;
            write_status(&ctx, &pdb, fail_safe_status(&pdb, &e, now)).await?;
            return Err(Error::Plan(e));
        }
    };
    if !counts.unmanaged.is_empty() {
        tracing::debug!(pdb = %key, pods = ?counts.unmanaged, "budget selects unmanaged pods");
    }
    for name in &counts.not_deleted {
        if let Some(p) = pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
        {
            ctx.recorder
                .record(
                    p.as_ref(),
                    "Warning",
                    "NotDeleted",
                    &format!(
                        "Pod was expected by PDB {}/{} to be deleted but it wasn't",
                        key.namespace, key.name
                    ),
                )
                .await;
        }
    }
    if let Some(status) = next_status(&pdb, &counts, now) {
        if let Err(e) = write_status(&ctx, &pdb, status).await {
            let conflict = matches!(&e, kube::Error::Api(s) if s.code == 409);
            if !conflict && !matches!(&e, kube::Error::Api(s) if s.code == 404) {
                let msg = api_message(&e);
                let _ = write_status(&ctx, &pdb, fail_safe_status(&pdb, &msg, now)).await;
            }
            return Err(e.into());
        }
    }
    Ok(Action::after(counts.recheck.map(|at| {
        let left = at.duration_since(now).as_secs().max(0) as u64;
        Duration::from_secs(left + 1)
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

    fn now() -> Timestamp {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    fn pod(name: &str, ready: bool, owner: Option<(&str, &str, &str)>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("d".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                owner_references: owner.map(|(kind, n, uid)| {
                    vec![OwnerReference {
                        api_version: "apps/v1".into(),
                        kind: kind.into(),
                        name: n.into(),
                        uid: uid.into(),
                        controller: Some(true),
                        block_owner_deletion: Some(true),
                    }]
                }),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn pdb(min: Option<IntOrString>, max: Option<IntOrString>) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("d".into()),
                generation: Some(3),
                ..Default::default()
            },
            spec: Some(PodDisruptionBudgetSpec {
                min_available: min,
                max_unavailable: max,
                selector: Some(LabelSelector {
                    match_labels: Some([("app".to_string(), "web".to_string())].into()),
                    match_expressions: None,
                }),
                unhealthy_pod_eviction_policy: None,
            }),
            status: None,
        }
    }

    fn rs_of(scale: i32) -> impl Fn(&str, &OwnerReference) -> Option<(String, i32)> {
        move |_, r| (r.kind == "ReplicaSet").then(|| (r.uid.clone(), scale))
    }

    #[test]
    fn percentages_round_up_like_upstream() {
        assert_eq!(scaled_value(&IntOrString::Int(2), 10), Ok(2));
        assert_eq!(scaled_value(&IntOrString::String("50%".into()), 3), Ok(2));
        assert_eq!(scaled_value(&IntOrString::String("34%".into()), 3), Ok(2));
        assert_eq!(scaled_value(&IntOrString::String("0%".into()), 3), Ok(0));
        assert!(scaled_value(&IntOrString::String("two".into()), 3).is_err());
    }

    #[test]
    fn integer_min_available_counts_the_selected_pods() {
        let pods = [
            pod("a", true, Some(("ReplicaSet", "rs", "u1"))),
            pod("b", true, Some(("ReplicaSet", "rs", "u1"))),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let b = pdb(Some(IntOrString::Int(2)), None);
        let c = plan(&b, &refs, &rs_of(2), now()).unwrap();
        assert_eq!(
            (
                c.expected,
                c.desired_healthy,
                c.current_healthy,
                c.disruptions_allowed
            ),
            (2, 2, 2, 0)
        );
        let b = pdb(Some(IntOrString::Int(1)), None);
        let c = plan(&b, &refs, &rs_of(2), now()).unwrap();
        assert_eq!(c.disruptions_allowed, 1);
    }

    #[test]
    fn max_unavailable_and_percentages_use_the_controllers_scale() {
        // Three replicas wanted, two pods exist and are ready.
        let pods = [
            pod("a", true, Some(("ReplicaSet", "rs", "u1"))),
            pod("b", true, Some(("ReplicaSet", "rs", "u1"))),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let b = pdb(None, Some(IntOrString::Int(1)));
        let c = plan(&b, &refs, &rs_of(3), now()).unwrap();
        assert_eq!(
            (c.expected, c.desired_healthy, c.disruptions_allowed),
            (3, 2, 0)
        );
        let b = pdb(None, Some(IntOrString::String("50%".into())));
        let c = plan(&b, &refs, &rs_of(3), now()).unwrap();
        // ceil(1.5) = 2 unavailable allowed: desired 1, one disruption allowed.
        assert_eq!(
            (c.expected, c.desired_healthy, c.disruptions_allowed),
            (3, 1, 1)
        );
        let b = pdb(Some(IntOrString::String("100%".into())), None);
        let c = plan(&b, &refs, &rs_of(2), now()).unwrap();
        assert_eq!(
            (c.expected, c.desired_healthy, c.disruptions_allowed),
            (2, 2, 0)
        );
    }

    #[test]
    fn pods_without_a_known_controller_are_unmanaged_or_an_error() {
        let pods = [
            pod("a", true, None),
            pod("b", true, Some(("ReplicaSet", "rs", "u1"))),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let b = pdb(None, Some(IntOrString::Int(0)));
        let c = plan(&b, &refs, &rs_of(1), now()).unwrap();
        assert_eq!(c.unmanaged, vec!["a".to_string()]);
        assert_eq!(c.expected, 1);
        let pods = [pod("s", true, Some(("StatefulSet", "db", "u9")))];
        let refs: Vec<&Pod> = pods.iter().collect();
        let e = plan(&b, &refs, &rs_of(1), now()).unwrap_err();
        assert_eq!(e, "found no controllers for pod \"s\"");
        let s = fail_safe_status(&b, &e, now());
        assert_eq!(s.disruptions_allowed, 0);
        let cond = &s.conditions.unwrap()[0];
        assert_eq!(
            (cond.status.as_str(), cond.reason.as_str()),
            ("False", SYNC_FAILED)
        );
    }

    #[test]
    fn unready_terminating_and_disrupted_pods_are_not_healthy() {
        let mut gone = pod("c", true, None);
        gone.metadata.deletion_timestamp = Some(Time(now()));
        let pods = [
            pod("a", true, None),
            pod("b", false, None),
            gone,
            pod("e", true, None),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let mut b = pdb(Some(IntOrString::Int(1)), None);
        let recent = Time("2026-03-01T11:59:00Z".parse().unwrap());
        let stale = Time("2026-03-01T11:50:00Z".parse().unwrap());
        b.status = Some(PodDisruptionBudgetStatus {
            disrupted_pods: Some(
                [
                    ("e".to_string(), recent.clone()),
                    ("a".to_string(), stale),
                    ("c".to_string(), recent.clone()),
                ]
                .into(),
            ),
            ..Default::default()
        });
        let c = plan(&b, &refs, &rs_of(1), now()).unwrap();
        // a is healthy again (its eviction timed out), e is still expected to go, c is going.
        assert_eq!(c.current_healthy, 1);
        assert_eq!(c.expected, 4);
        assert_eq!(c.disrupted, [("e".to_string(), recent)].into());
        assert_eq!(c.not_deleted, vec!["a".to_string()]);
        assert_eq!(c.recheck, Some("2026-03-01T12:01:00Z".parse().unwrap()));
        assert_eq!(c.disruptions_allowed, 0);
    }

    #[test]
    fn status_is_written_only_when_it_changes_and_carries_the_condition() {
        let pods = [
            pod("a", true, None),
            pod("b", true, None),
            pod("c", true, None),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let mut b = pdb(Some(IntOrString::Int(2)), None);
        let c = plan(&b, &refs, &rs_of(1), now()).unwrap();
        let s = next_status(&b, &c, now()).expect("first status");
        assert_eq!(
            (
                s.expected_pods,
                s.desired_healthy,
                s.current_healthy,
                s.disruptions_allowed
            ),
            (3, 2, 3, 1)
        );
        assert_eq!(s.observed_generation, Some(3));
        let cond = &s.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (
                cond.type_.as_str(),
                cond.status.as_str(),
                cond.reason.as_str()
            ),
            (DISRUPTION_ALLOWED, "True", SUFFICIENT_PODS)
        );
        assert_eq!(cond.observed_generation, Some(3));
        b.status = Some(s.clone());
        let later: Timestamp = "2026-03-01T12:05:00Z".parse().unwrap();
        assert_eq!(next_status(&b, &c, later), None);
        // One pod goes unready: no disruption left, the condition flips with a new time.
        let pods = [
            pod("a", true, None),
            pod("b", true, None),
            pod("c", false, None),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let c = plan(&b, &refs, &rs_of(1), later).unwrap();
        let s = next_status(&b, &c, later).unwrap();
        assert_eq!(s.disruptions_allowed, 0);
        let cond = &s.conditions.unwrap()[0];
        assert_eq!(
            (cond.status.as_str(), cond.reason.as_str()),
            ("False", INSUFFICIENT_PODS)
        );
        assert_eq!(cond.last_transition_time, Time(later));
    }

    #[test]
    fn a_budget_with_no_expected_pods_allows_nothing() {
        let b = pdb(Some(IntOrString::Int(0)), None);
        let c = plan(&b, &[], &rs_of(1), now()).unwrap();
        assert_eq!((c.expected, c.disruptions_allowed), (0, 0));
    }
}
