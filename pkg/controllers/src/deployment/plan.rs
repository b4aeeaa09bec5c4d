//! The pure core of the Deployment controller, after upstream's deployment util, rolling,
//! recreate, sync and progress logic: fenceposts, which ReplicaSet is new, revisions and
//! annotations, how far to scale the new and old ReplicaSets, proportional scaling, status,
//! conditions and history cleanup. No IO here: the driver in `mod.rs` applies the results.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use std::cmp::Ordering;
use std::collections::BTreeMap;

pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// Longest `revision-history` annotation kept (upstream's default).
const MAX_REV_HISTORY_CHARS: usize = 2000;

pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";

/// Now, truncated to whole seconds as the API stores times.
pub fn now_seconds() -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn rs_status(rs: &ReplicaSet) -> DeploymentCounts {
    let s = rs.status.clone().unwrap_or_default();
    DeploymentCounts {
        replicas: s.replicas,
        ready: s.ready_replicas.unwrap_or(0),
        available: s.available_replicas.unwrap_or(0),
    }
}

struct DeploymentCounts {
    replicas: i32,
    ready: i32,
    available: i32,
}

pub fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

pub fn is_paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

pub fn min_ready_seconds(d: &Deployment) -> i32 {
    d.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

pub fn progress_deadline(d: &Deployment) -> Option<i32> {
    // upstream: unset or MaxInt32 means no deadline
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
}

/// Upstream's `intstr.GetScaledValueFromIntOrPercent`: an int as is, "N%" of `total` rounded
/// up or down.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> i32 {
    match v {
        IntOrString::Int(i) => *i,
        IntOrString::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let num = pct * i64::from(total);
            let v = if round_up {
                (num + 99).div_euclid(100)
            } else {
                num.div_euclid(100)
            };
            v as i32
        }
    }
}

/// Upstream's `ResolveFenceposts`: (maxSurge rounded up, maxUnavailable rounded down), with
/// maxUnavailable forced to 1 when both come out 0. Unset values default to 25%.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> (i32, i32) {
    let quarter = IntOrString::String("25%".into());
    let surge = scaled_value(max_surge.unwrap_or(&quarter), desired, true);
    let mut unavailable = scaled_value(max_unavailable.unwrap_or(&quarter), desired, false);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    if is_recreate(d) {
        return (0, 0);
    }
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    resolve_fenceposts(
        ru.and_then(|r| r.max_surge.as_ref()),
        ru.and_then(|r| r.max_unavailable.as_ref()),
        replicas(d),
    )
}

pub fn max_surge(d: &Deployment) -> i32 {
    fenceposts(d).0
}

pub fn max_unavailable(d: &Deployment) -> i32 {
    let (_, u) = fenceposts(d);
    if is_recreate(d) || replicas(d) == 0 {
        return 0;
    }
    u.min(replicas(d))
}

fn template_without_hash(t: &PodTemplateSpec) -> serde_json::Value {
    let mut v = serde_json::to_value(t).unwrap_or_default();
    if let Some(labels) = v
        .pointer_mut("/metadata/labels")
        .and_then(|l| l.as_object_mut())
    {
        labels.remove(HASH_LABEL);
    }
    if let Some(meta) = v.pointer_mut("/metadata").and_then(|m| m.as_object_mut()) {
        if meta
            .get("labels")
            .and_then(|l| l.as_object())
            .is_some_and(|l| l.is_empty())
        {
            meta.remove("labels");
        }
    }
    v
}

/// Upstream's `EqualIgnoreHash`: templates equal once the pod-template-hash label is ignored.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    template_without_hash(a) == template_without_hash(b)
}

fn created(rs: &ReplicaSet) -> Option<Timestamp> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Oldest first, then by name (upstream's `ReplicaSetsByCreationTimestamp`).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created(a)
        .cmp(&created(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Index of the ReplicaSet whose template equals the Deployment's (the oldest such).
pub fn find_new_rs(d: &Deployment, rss: &[ReplicaSet]) -> Option<usize> {
    let template = d.spec.as_ref().map(|s| s.template.clone())?;
    let mut idx: Vec<usize> = (0..rss.len()).collect();
    idx.sort_by(|a, b| by_creation(&rss[*a], &rss[*b]));
    idx.into_iter().find(|i| {
        rss[*i]
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| equal_ignore_hash(t, &template))
    })
}

pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

pub fn max_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    rss.into_iter().map(revision).max().unwrap_or(0)
}

fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED | REVISION | REVISION_HISTORY | DESIRED_REPLICAS | MAX_REPLICAS | ROLLBACK_TO
    )
}

/// Upstream's `SetReplicasAnnotations`; true when something changed.
pub fn set_replicas_annotations(
    ann: &mut BTreeMap<String, String>,
    desired: i32,
    max: i32,
) -> bool {
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if ann.get(k) != Some(&v) {
            ann.insert(k.to_string(), v);
            changed = true;
        }
    }
    changed
}

/// Upstream's `SetNewReplicaSetAnnotations`: copies the Deployment's annotations (but not the
/// controller's own), raises the revision to `new_revision` keeping the previous one in
/// `revision-history` (a rollback), and for a ReplicaSet about to be created sets the
/// desired/max replicas annotations. True when something changed.
pub fn set_new_rs_annotations(
    d: &Deployment,
    ann: &mut BTreeMap<String, String>,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = false;
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip_copy(k) || ann.get(k) == Some(v) {
            continue;
        }
        ann.insert(k.clone(), v.clone());
        changed = true;
    }
    let old = ann.get(REVISION).cloned();
    let old_int: i64 = match old.as_deref() {
        None | Some("") => 0,
        Some(s) => match s.parse() {
            Ok(v) => v,
            Err(_) => return changed,
        },
    };
    if old_int < new_revision {
        ann.insert(REVISION.to_string(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = ann.get(REVISION_HISTORY).cloned().unwrap_or_default();
            if history.is_empty() {
                ann.insert(REVISION_HISTORY.to_string(), old);
            } else {
                let mut parts: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REV_HISTORY_CHARS && start < parts.len() {
                    total -= parts[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REV_HISTORY_CHARS {
                    parts = parts.split_off(start);
                    parts.push(&old);
                    ann.insert(REVISION_HISTORY.to_string(), parts.join(","));
                }
            }
        }
    }
    if !exists && set_replicas_annotations(ann, replicas(d), replicas(d) + max_surge(d)) {
        changed = true;
    }
    changed
}

/// Upstream's `NewRSNewReplicas`: how big the new ReplicaSet may be now (rolling: up to
/// replicas + maxSurge pods in total, never above replicas; recreate: replicas).
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    if is_recreate(d) {
        return replicas(d);
    }
    let current: i32 = all.iter().map(|r| rs_replicas(r)).sum();
    let max_total = replicas(d) + max_surge(d);
    if current >= max_total {
        return rs_replicas(new_rs);
    }
    let up = (max_total - current).min(replicas(d) - rs_replicas(new_rs));
    rs_replicas(new_rs) + up.max(0)
}

fn desired_annotation(rs: &ReplicaSet) -> Option<i32> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(DESIRED_REPLICAS)?
        .parse()
        .ok()
}

fn max_annotation(rs: &ReplicaSet) -> Option<i32> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(MAX_REPLICAS)?
        .parse()
        .ok()
}

/// Upstream's `IsSaturated`.
pub fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    rs.is_some_and(|rs| {
        rs_replicas(rs) == replicas(d) && desired_annotation(rs) == Some(replicas(d))
    })
}

/// Upstream's `isScalingEvent` (given new and old ReplicaSets): an active ReplicaSet whose
/// desired-replicas annotation differs from the Deployment's replicas.
pub fn is_scaling_event(d: &Deployment, new_rs: Option<&ReplicaSet>, olds: &[&ReplicaSet]) -> bool {
    let Some(new_rs) = new_rs else {
        return false;
    };
    std::iter::once(new_rs)
        .chain(olds.iter().copied())
        .filter(|r| rs_replicas(r) > 0)
        .any(|r| desired_annotation(r).is_some_and(|v| v != replicas(d)))
}

/// Upstream's `FindActiveOrLatest`: the only active ReplicaSet, or the newest (the new one if
/// any) when none is active; `None` when several are active.
pub fn find_active_or_latest<'a>(
    new_rs: Option<&'a ReplicaSet>,
    olds: &[&'a ReplicaSet],
) -> Option<&'a ReplicaSet> {
    if new_rs.is_none() && olds.is_empty() {
        return None;
    }
    let mut sorted: Vec<&ReplicaSet> = olds.to_vec();
    sorted.sort_by(|a, b| by_creation(b, a));
    let active: Vec<&ReplicaSet> = sorted
        .iter()
        .copied()
        .chain(new_rs)
        .filter(|r| rs_replicas(r) > 0)
        .collect();
    match active.len() {
        0 => new_rs.or_else(|| sorted.first().copied()),
        1 => Some(active[0]),
        _ => None,
    }
}

/// Upstream's `GetProportion` / `getReplicaSetFraction`.
fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if replicas(d) == 0 {
        -rs_replicas(rs)
    } else {
        let deployment_replicas = replicas(d) + max_surge(d);
        let annotated = max_annotation(rs).unwrap_or_else(|| {
            d.status
                .as_ref()
                .map(|s| s.replicas.unwrap_or(0))
                .unwrap_or(0)
        });
        if annotated == 0 {
            0
        } else {
            let size =
                f64::from(rs_replicas(rs)) * f64::from(deployment_replicas) / f64::from(annotated);
            size.round() as i32 - rs_replicas(rs)
        }
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// Upstream's `scale`: the new sizes (ReplicaSet name → replicas) when the Deployment's
/// replicas changed or it is paused, and the verb for the events ("up"/"down"/"").
pub fn scale_plan(
    d: &Deployment,
    new_rs: Option<&ReplicaSet>,
    olds: &[&ReplicaSet],
) -> (Vec<(String, i32)>, &'static str) {
    let name = |r: &ReplicaSet| r.metadata.name.clone().unwrap_or_default();
    if let Some(rs) = find_active_or_latest(new_rs, olds) {
        if rs_replicas(rs) == replicas(d) {
            return (Vec::new(), "");
        }
        let op = if rs_replicas(rs) < replicas(d) {
            "up"
        } else {
            "down"
        };
        return (vec![(name(rs), replicas(d))], op);
    }
    if is_saturated(d, new_rs) {
        let out = olds
            .iter()
            .filter(|r| rs_replicas(r) > 0)
            .map(|r| (name(r), 0))
            .collect();
        return (out, "down");
    }
    if is_recreate(d) {
        return (Vec::new(), "");
    }
    let mut all: Vec<&ReplicaSet> = olds
        .iter()
        .copied()
        .chain(new_rs)
        .filter(|r| rs_replicas(r) > 0)
        .collect();
    let total: i32 = all.iter().map(|r| rs_replicas(r)).sum();
    let allowed = if replicas(d) > 0 {
        replicas(d) + max_surge(d)
    } else {
        0
    };
    let to_add = allowed - total;
    // Scaling up: bigger first, newer first on ties; down: bigger first, older first on ties.
    let (op, newer_first) = match to_add.cmp(&0) {
        Ordering::Greater => ("up", true),
        Ordering::Less => ("down", false),
        Ordering::Equal => ("", false),
    };
    if !op.is_empty() {
        all.sort_by(|a, b| {
            let tie = if newer_first {
                by_creation(b, a)
            } else {
                by_creation(a, b)
            };
            rs_replicas(b).cmp(&rs_replicas(a)).then(tie)
        });
    }
    let mut added = 0;
    let mut sizes: Vec<(String, i32)> = Vec::new();
    for rs in &all {
        if to_add != 0 {
            let p = proportion(rs, d, to_add, added);
            sizes.push((name(rs), rs_replicas(rs) + p));
            added += p;
        } else {
            sizes.push((name(rs), rs_replicas(rs)));
        }
    }
    if to_add != 0 {
        if let Some(first) = sizes.first_mut() {
            first.1 = (first.1 + to_add - added).max(0);
        }
    }
    (sizes, op)
}

/// Upstream's `reconcileOldReplicaSets` (cleanup of unhealthy replicas, then the scale-down
/// maxUnavailable allows), as new sizes for old ReplicaSets, in the order to apply them.
pub fn old_scale_down_plan(
    d: &Deployment,
    new_rs: &ReplicaSet,
    olds: &[&ReplicaSet],
) -> Vec<(String, i32)> {
    let name = |r: &ReplicaSet| r.metadata.name.clone().unwrap_or_default();
    let mut old: Vec<(ReplicaSet, i32)> = olds
        .iter()
        .map(|r| ((*r).clone(), rs_replicas(r)))
        .collect();
    old.sort_by(|a, b| by_creation(&a.0, &b.0));
    let old_count: i32 = old.iter().map(|(_, n)| *n).sum();
    if old_count == 0 {
        return Vec::new();
    }
    let all_count = old_count + rs_replicas(new_rs);
    let min_available = replicas(d) - max_unavailable(d);
    let new_unavailable = rs_replicas(new_rs) - rs_status(new_rs).available;
    let max_scaled_down = all_count - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Vec::new();
    }
    let mut out: Vec<(String, i32)> = Vec::new();
    // 1. unhealthy replicas of old ReplicaSets go first
    let mut cleaned = 0;
    for (rs, n) in old.iter_mut() {
        if cleaned >= max_scaled_down {
            break;
        }
        let avail = rs_status(rs).available;
        if *n == 0 || *n == avail {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(*n - avail);
        *n -= down;
        cleaned += down;
        out.push((name(rs), *n));
    }
    // 2. then as many available ones as maxUnavailable allows
    let available: i32 =
        old.iter().map(|(r, _)| rs_status(r).available).sum::<i32>() + rs_status(new_rs).available;
    if available > min_available {
        let total = available - min_available;
        let mut scaled = 0;
        for (rs, n) in old.iter_mut() {
            if scaled >= total {
                break;
            }
            if *n == 0 {
                continue;
            }
            let down = (*n).min(total - scaled);
            *n -= down;
            scaled += down;
            let nm = name(rs);
            if let Some(e) = out.iter_mut().find(|(x, _)| *x == nm) {
                e.1 = *n;
            } else {
                out.push((nm, *n));
            }
        }
    }
    out
}

/// Upstream's `cleanupDeployment`: old ReplicaSets beyond `revisionHistoryLimit` (lowest
/// revision first) that have no replicas and whose status caught up.
pub fn cleanup_plan(d: &Deployment, olds: &[&ReplicaSet]) -> Vec<String> {
    let Some(limit) = d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
        return Vec::new();
    };
    let mut alive: Vec<&ReplicaSet> = olds
        .iter()
        .copied()
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .collect();
    let diff = alive.len() as i64 - i64::from(limit);
    if diff <= 0 {
        return Vec::new();
    }
    alive.sort_by(|a, b| {
        revision(a)
            .cmp(&revision(b))
            .then_with(|| by_creation(a, b))
    });
    alive
        .into_iter()
        .take(diff as usize)
        .filter(|r| {
            rs_status(r).replicas == 0
                && rs_replicas(r) == 0
                && r.metadata.generation.unwrap_or(0)
                    <= r.status
                        .as_ref()
                        .and_then(|s| s.observed_generation)
                        .unwrap_or(0)
        })
        .filter_map(|r| r.metadata.name.clone())
        .collect()
}

pub fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
}

pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Upstream's `SetDeploymentCondition`: no change when status and reason are the same; the
/// transition time is kept when only the reason changes.
pub fn set_condition(status: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = condition(status, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    let conds = status.conditions.get_or_insert_with(Vec::new);
    conds.retain(|x| x.type_ != c.type_);
    conds.push(c);
}

pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        c.retain(|x| x.type_ != type_);
    }
}

/// Upstream's `calculateStatus`.
pub fn calculate_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: Timestamp,
) -> DeploymentStatus {
    let available: i32 = all.iter().map(|r| rs_status(r).available).sum();
    let total: i32 = all.iter().map(|r| rs_replicas(r)).sum();
    let prev = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: Some(d.metadata.generation.unwrap_or(0)),
        replicas: Some(all.iter().map(|r| rs_status(r).replicas).sum()),
        updated_replicas: Some(new_rs.map(|r| rs_status(r).replicas).unwrap_or(0)),
        ready_replicas: Some(all.iter().map(|r| rs_status(r).ready).sum()),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        collision_count: prev.collision_count,
        conditions: prev.conditions.clone(),
        terminating_replicas: None,
    };
    if available >= replicas(d) - max_unavailable(d) {
        set_condition(
            &mut status,
            new_condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                now,
            ),
        );
    } else {
        set_condition(
            &mut status,
            new_condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                now,
            ),
        );
    }
    status
}

fn n(v: Option<i32>) -> i32 {
    v.unwrap_or(0)
}

/// Upstream's `DeploymentComplete`.
pub fn deployment_complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    n(s.updated_replicas) == replicas(d)
        && n(s.replicas) == replicas(d)
        && n(s.available_replicas) >= replicas(d) - max_unavailable(d)
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Upstream's `DeploymentProgressing`.
pub fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.available_replicas) > n(old.available_replicas)
}

/// Upstream's `DeploymentTimedOut`.
pub fn deployment_timed_out(d: &Deployment, s: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(c) = condition(s, "Progressing") else {
        return false;
    };
    if c.reason.as_deref() == Some(TIMED_OUT) {
        return true;
    }
    let Some(from) = c.last_update_time.as_ref().map(|t| t.0) else {
        return false;
    };
    from.as_second() + i64::from(deadline) < now.as_second()
}

/// Upstream's `syncRolloutStatus` minus the write: the status with Progressing maintained,
/// and when to look again for a progress-deadline check (seconds), if needed.
pub fn rollout_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: Timestamp,
) -> (DeploymentStatus, Option<u64>) {
    let mut status = calculate_status(d, all, new_rs, now);
    let has_deadline = progress_deadline(d).is_some();
    if !has_deadline {
        remove_condition(&mut status, "Progressing");
    }
    let prev = d.status.clone().unwrap_or_default();
    let current = condition(&prev, "Progressing").cloned();
    let complete_before = n(status.replicas) == n(status.updated_replicas)
        && current
            .as_ref()
            .is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
    let rs_name = new_rs.and_then(|r| r.metadata.name.clone());
    let dname = d.metadata.name.clone().unwrap_or_default();
    // `ReplicaSet "x" <what>`, or the Deployment's name before its new ReplicaSet exists.
    let progress = |what: &str| match &rs_name {
        Some(r) => format!("ReplicaSet {r:?} {what}"),
        None => format!("Deployment {dname:?} {what}"),
    };
    if has_deadline && !complete_before {
        if deployment_complete(d, &status) {
            let msg = progress("has successfully progressed.");
            set_condition(
                &mut status,
                new_condition("Progressing", "True", NEW_RS_AVAILABLE, &msg, now),
            );
        } else if deployment_progressing(d, &status) {
            let msg = progress("is progressing.");
            let mut c = new_condition("Progressing", "True", RS_UPDATED, &msg, now);
            if let Some(cur) = &current {
                if cur.status == "True" {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove_condition(&mut status, "Progressing");
            }
            set_condition(&mut status, c);
        } else if deployment_timed_out(d, &status, now) {
            let msg = progress("has timed out progressing.");
            set_condition(
                &mut status,
                new_condition("Progressing", "False", TIMED_OUT, &msg, now),
            );
        }
    }
    // ReplicaFailure conditions of the ReplicaSets (the new one's first)
    let failure = new_rs
        .into_iter()
        .chain(all.iter().copied())
        .flat_map(|r| r.status.iter().flat_map(|s| s.conditions.iter().flatten()))
        .find(|c| c.type_ == "ReplicaFailure")
        .cloned();
    match failure {
        Some(f) => set_condition(
            &mut status,
            DeploymentCondition {
                type_: f.type_,
                status: f.status,
                reason: f.reason,
                message: f.message,
                last_update_time: f.last_transition_time.clone(),
                last_transition_time: f.last_transition_time,
            },
        ),
        None => remove_condition(&mut status, "ReplicaFailure"),
    }
    // requeueStuckDeployment
    let mut requeue = None;
    if let (Some(deadline), Some(cur)) = (progress_deadline(d), &current) {
        if !deployment_complete(d, &status) && cur.reason.as_deref() != Some(TIMED_OUT) {
            let last = cur
                .last_update_time
                .as_ref()
                .map(|t| t.0.as_second())
                .unwrap_or(now.as_second());
            let after = last + i64::from(deadline) - now.as_second();
            requeue = Some(if after < 1 { 1 } else { after as u64 + 1 });
        }
    }
    (status, requeue)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus,
        RollingUpdateDeployment,
    };
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

    /// A pod template labelled `app=web` running `image`.
    pub(crate) fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    fn deploy(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
        Deployment {
            metadata: crate::util::podutil::tests::meta("web", "d-uid", 1),
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                selector: LabelSelector {
                    match_labels: Some([("app".to_string(), "web".to_string())].into()),
                    ..Default::default()
                },
                template: template("web:v2"),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                revision_history_limit: Some(10),
                progress_deadline_seconds: Some(600),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn rs(
        name: &str,
        image: &str,
        replicas: i32,
        available: i32,
        created: i64,
        rev: i64,
    ) -> ReplicaSet {
        let mut t = template(image);
        if let Some(m) = t.metadata.as_mut() {
            m.labels
                .get_or_insert_with(BTreeMap::new)
                .insert(HASH_LABEL.into(), "abc".into());
        }
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(Timestamp::from_second(created).unwrap())),
                annotations: Some([(REVISION.to_string(), rev.to_string())].into()),
                generation: Some(1),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                template: Some(t),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas,
                ready_replicas: Some(available),
                available_replicas: Some(available),
                observed_generation: Some(1),
                ..Default::default()
            }),
        }
    }

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    #[test]
    fn fenceposts_round_like_upstream() {
        assert_eq!(
            resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 10),
            (3, 2)
        );
        assert_eq!(
            resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 1),
            (1, 0)
        );
        assert_eq!(
            resolve_fenceposts(Some(&pct("0%")), Some(&pct("1%")), 2),
            (0, 1)
        );
        assert_eq!(
            resolve_fenceposts(Some(&IntOrString::Int(3)), Some(&IntOrString::Int(2)), 10),
            (3, 2)
        );
        assert_eq!(resolve_fenceposts(None, None, 4), (1, 1));
    }

    #[test]
    fn new_rs_grows_within_surge() {
        let d = deploy(10, IntOrString::Int(3), IntOrString::Int(2));
        let old = rs("web-old", "web:v1", 10, 10, 1, 1);
        let new = rs("web-new", "web:v2", 0, 0, 2, 2);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3);
        let new3 = rs("web-new", "web:v2", 3, 0, 2, 2);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new3], &new3), 3);
        let old8 = rs("web-old", "web:v1", 8, 8, 1, 1);
        assert_eq!(new_rs_new_replicas(&d, &[&old8, &new3], &new3), 5);
    }

    #[test]
    fn old_scale_down_respects_max_unavailable() {
        // upstream's case 1: 10 replicas, maxUnavailable 2, maxSurge 3; new RS 5 all unavailable
        let d = deploy(10, IntOrString::Int(3), IntOrString::Int(2));
        let old = rs("web-old", "web:v1", 8, 8, 1, 1);
        let new = rs("web-new", "web:v2", 5, 0, 2, 2);
        assert!(old_scale_down_plan(&d, &new, &[&old]).is_empty());
        // new RS of 3 available: 13 total, may go down to 8 available
        let old = rs("web-old", "web:v1", 10, 10, 1, 1);
        let new = rs("web-new", "web:v2", 3, 3, 2, 2);
        assert_eq!(
            old_scale_down_plan(&d, &new, &[&old]),
            vec![("web-old".to_string(), 5)]
        );
        // unhealthy old replicas are cleaned up first
        // (13 pods, 8 must stay available, 3 new unavailable → at most 2 go)
        let old = rs("web-old", "web:v1", 10, 7, 1, 1);
        let new = rs("web-new", "web:v2", 3, 0, 2, 2);
        assert_eq!(
            old_scale_down_plan(&d, &new, &[&old]),
            vec![("web-old".to_string(), 8)]
        );
    }

    #[test]
    fn finds_new_rs_ignoring_hash_and_history() {
        let d = deploy(3, pct("25%"), pct("25%"));
        let a = rs("web-a", "web:v1", 0, 0, 1, 1);
        let b = rs("web-b", "web:v2", 3, 3, 2, 2);
        assert_eq!(find_new_rs(&d, &[a.clone(), b.clone()]), Some(1));
        assert_eq!(find_new_rs(&d, &[a]), None);
        assert_eq!(max_revision([&b]), 2);
    }

    #[test]
    fn annotations_on_rollback_keep_history() {
        let mut d = deploy(3, pct("25%"), pct("25%"));
        d.metadata.annotations = Some(
            [
                ("kubernetes.io/change-cause".to_string(), "v2".to_string()),
                (LAST_APPLIED.to_string(), "{}".to_string()),
                (REVISION.to_string(), "9".to_string()),
            ]
            .into(),
        );
        let mut ann: BTreeMap<String, String> = [(REVISION.to_string(), "1".to_string())].into();
        assert!(set_new_rs_annotations(&d, &mut ann, 3, true));
        assert_eq!(ann.get(REVISION).map(String::as_str), Some("3"));
        assert_eq!(ann.get(REVISION_HISTORY).map(String::as_str), Some("1"));
        assert_eq!(
            ann.get("kubernetes.io/change-cause").map(String::as_str),
            Some("v2")
        );
        assert!(!ann.contains_key(LAST_APPLIED));
        assert!(set_new_rs_annotations(&d, &mut ann, 5, true));
        assert_eq!(ann.get(REVISION_HISTORY).map(String::as_str), Some("1,3"));
        assert!(!set_new_rs_annotations(&d, &mut ann, 5, true));
        let mut fresh = BTreeMap::new();
        set_new_rs_annotations(&d, &mut fresh, 1, false);
        assert_eq!(fresh.get(DESIRED_REPLICAS).map(String::as_str), Some("3"));
        assert_eq!(fresh.get(MAX_REPLICAS).map(String::as_str), Some("4"));
    }

    #[test]
    fn scaling_single_active_and_proportional() {
        let mut d = deploy(5, pct("25%"), pct("25%"));
        let old = rs("web-old", "web:v1", 0, 0, 1, 1);
        let new = rs("web-new", "web:v2", 3, 3, 2, 2);
        let (p, op) = scale_plan(&d, Some(&new), &[&old]);
        assert_eq!((p, op), (vec![("web-new".to_string(), 5)], "up"));
        // mid-rollout 10 → 20 with surge 25%: proportional by max-replicas annotation 13
        if let Some(s) = d.spec.as_mut() {
            s.replicas = Some(20);
        }
        let mut a = rs("web-old", "web:v1", 8, 8, 1, 1);
        let mut b = rs("web-new", "web:v2", 5, 0, 2, 2);
        for r in [&mut a, &mut b] {
            r.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(MAX_REPLICAS.into(), "13".into());
        }
        let (p, op) = scale_plan(&d, Some(&b), &[&a]);
        assert_eq!(op, "up");
        let total: i32 = p.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 25);
        assert!(p.contains(&("web-old".to_string(), 15)));
    }

    #[test]
    fn cleanup_keeps_history_limit() {
        let mut d = deploy(3, pct("25%"), pct("25%"));
        if let Some(s) = d.spec.as_mut() {
            s.revision_history_limit = Some(1);
        }
        let r1 = rs("web-1", "a", 0, 0, 1, 1);
        let r2 = rs("web-2", "b", 0, 0, 2, 2);
        let r3 = rs("web-3", "c", 1, 1, 3, 3);
        assert_eq!(
            cleanup_plan(&d, &[&r3, &r2, &r1]),
            vec!["web-1".to_string(), "web-2".to_string()]
        );
        // an old ReplicaSet still holding replicas is kept
        let r0 = rs("web-0", "z", 1, 1, 0, 0);
        assert_eq!(cleanup_plan(&d, &[&r0, &r2]), Vec::<String>::new());
    }

    #[test]
    fn rollout_conditions_and_status() {
        let mut d = deploy(3, pct("25%"), pct("25%"));
        let new = rs("web-new", "web:v2", 3, 3, 2, 2);
        let now = Timestamp::from_second(1000).unwrap();
        let (st, requeue) = rollout_status(&d, &[&new], Some(&new), now);
        assert_eq!(st.replicas, Some(3));
        assert_eq!(st.updated_replicas, Some(3));
        assert_eq!(st.available_replicas, Some(3));
        assert_eq!(st.unavailable_replicas, Some(0));
        let p = condition(&st, "Progressing").unwrap();
        assert_eq!(p.reason.as_deref(), Some(NEW_RS_AVAILABLE));
        assert_eq!(
            p.message.as_deref(),
            Some("ReplicaSet \"web-new\" has successfully progressed.")
        );
        let a = condition(&st, "Available").unwrap();
        assert_eq!(a.reason.as_deref(), Some("MinimumReplicasAvailable"));
        assert_eq!(requeue, None);

        // stuck: no progress since the condition's update time → times out after the deadline
        let old = rs("web-old", "web:v1", 3, 3, 1, 1);
        let stuck = rs("web-new", "web:v2", 1, 0, 2, 2);
        let mut prev = calculate_status(&d, &[&old, &stuck], Some(&stuck), now);
        set_condition(
            &mut prev,
            new_condition("Progressing", "True", RS_UPDATED, "x", now),
        );
        d.status = Some(prev);
        let later = Timestamp::from_second(1000 + 601).unwrap();
        let (st, _) = rollout_status(&d, &[&old, &stuck], Some(&stuck), later);
        let p = condition(&st, "Progressing").unwrap();
        assert_eq!(
            (p.status.as_str(), p.reason.as_deref()),
            ("False", Some(TIMED_OUT))
        );
        let (_, requeue) = rollout_status(&d, &[&old, &stuck], Some(&stuck), now);
        assert_eq!(requeue, Some(601));
    }
}
