//! Pod and selector helpers the ReplicaSet and Deployment controllers share: label selector
//! matching on typed selectors, pod readiness/availability as upstream's podutil computes them,
//! and the "least valuable first" ordering used to pick pods to delete on scale-down.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

/// Upstream's `metav1.LabelSelectorAsSelector(sel).Matches(labels)`: an empty selector matches
/// everything; unknown operators match nothing.
pub fn selector_matches(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    if let Some(ml) = &sel.match_labels {
        for (k, v) in ml {
            if labels.get(k) != Some(v) {
                return false;
            }
        }
    }
    for e in sel.match_expressions.iter().flatten() {
        let have = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or(&[]);
        let ok = match e.operator.as_str() {
            "In" => have.is_some_and(|h| values.iter().any(|v| v == h)),
            "NotIn" => !have.is_some_and(|h| values.iter().any(|v| v == h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// True when the selector has no requirements at all (it would select every pod).
pub fn selector_is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty())
}

/// Upstream's `controller.IsPodActive`: not Succeeded/Failed and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded") | Some("Failed"))
        && pod.metadata.deletion_timestamp.is_none()
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// When the pod became ready (its Ready condition's lastTransitionTime), if it is ready.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let c = ready_condition(pod)?;
    if c.status != "True" {
        return None;
    }
    c.last_transition_time.as_ref().map(|t| t.0)
}

/// Upstream's `podutil.IsPodAvailable`: ready, and ready for at least `min_ready_seconds`
/// (with a Ready condition lacking lastTransitionTime, only when `min_ready_seconds` is 0).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    match ready_since(pod) {
        Some(t) => t.as_millisecond() + i64::from(min_ready_seconds) * 1000 < now.as_millisecond(),
        None => false,
    }
}

/// Seconds until a ready pod becomes available, if it is ready but not yet available.
pub fn seconds_until_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<u64> {
    if min_ready_seconds <= 0 || !is_ready(pod) || is_available(pod, min_ready_seconds, now) {
        return None;
    }
    let since = ready_since(pod)?;
    let due = since.as_millisecond() + i64::from(min_ready_seconds) * 1000;
    Some(((due - now.as_millisecond()).max(0) as u64).div_ceil(1000) + 1)
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    }
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("controller.kubernetes.io/pod-deletion-cost"))
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0)
}

fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

/// `floor(log2(now - t))` in nanoseconds, -1 when `t` is not in the past (upstream's
/// LogarithmicScaleDown buckets).
fn log_bucket(t: Timestamp, now: Timestamp) -> i64 {
    let d = now.as_nanosecond() - t.as_nanosecond();
    if d <= 0 {
        -1
    } else {
        (d as f64).log2().floor() as i64
    }
}

/// Compares two timestamps so that the newer (more recent) one sorts first, missing ones first
/// of all, in logarithmic buckets; `None` when they fall into the same bucket.
fn newer_first(a: Option<Timestamp>, b: Option<Timestamp>, now: Timestamp) -> Option<Ordering> {
    match (a, b) {
        (None, None) => None,
        (None, Some(_)) => Some(Ordering::Less),
        (Some(_), None) => Some(Ordering::Greater),
        (Some(x), Some(y)) if x == y => None,
        (Some(x), Some(y)) => {
            let (bx, by) = (log_bucket(x, now), log_bucket(y, now));
            if bx == by {
                None
            } else {
                Some(bx.cmp(&by))
            }
        }
    }
}

/// Upstream's `ActivePodsWithRanks.Less` as an ordering: the pod to delete first sorts first.
/// unassigned < assigned; Pending < Unknown < Running; not ready < ready; lower
/// pod-deletion-cost first; more pods of the same owner on its node (rank) first; ready for a
/// shorter time first; more container restarts first; newer first; then by uid.
pub fn deletion_order(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize, now: Timestamp) -> Ordering {
    let (na, nb) = (node_name(a), node_name(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return if na.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    let (pa, pb) = (phase_ordinal(a), phase_ordinal(b));
    if pa != pb {
        return pa.cmp(&pb);
    }
    let (ra, rb) = (is_ready(a), is_ready(b));
    if ra != rb {
        return if !ra {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    let (ca, cb) = (deletion_cost(a), deletion_cost(b));
    if ca != cb {
        return ca.cmp(&cb);
    }
    if rank_a != rank_b {
        return rank_b.cmp(&rank_a);
    }
    if ra && rb {
        if let Some(o) = newer_first(ready_since(a), ready_since(b), now) {
            return o;
        }
    }
    let (xa, xb) = (max_restarts(a), max_restarts(b));
    if xa != xb {
        return xb.cmp(&xa);
    }
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    if let Some(o) = newer_first(created(a), created(b), now) {
        return o;
    }
    a.metadata.uid.cmp(&b.metadata.uid)
}

/// Picks `count` pods of `pods` to delete, least valuable first. `related` are the active pods
/// of every ReplicaSet of the same owner (including `pods`): a pod sharing its node with more
/// of them is deleted first.
pub fn pods_to_delete<'a>(
    pods: &[&'a Pod],
    related: &[&Pod],
    count: usize,
    now: Timestamp,
) -> Vec<&'a Pod> {
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for p in related {
        if is_active(p) {
            *on_node.entry(node_name(p)).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&'a Pod, usize)> = pods
        .iter()
        .map(|p| (*p, on_node.get(node_name(p)).copied().unwrap_or(0)))
        .collect();
    if count < ranked.len() {
        ranked.sort_by(|(a, ra), (b, rb)| deletion_order(a, *ra, b, *rb, now));
    }
    ranked.into_iter().take(count).map(|(p, _)| p).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        LabelSelectorRequirement, ObjectMeta, Time,
    };

    pub fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    pub fn pod(name: &str, node: &str, phase: &str, ready_at: Option<i64>, created: i64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                creation_timestamp: Some(Time(ts(created))),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.to_string()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_at.map(|t| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(ts(t))),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn selector_semantics() {
        let mut labels = BTreeMap::new();
        labels.insert("app".to_string(), "web".to_string());
        labels.insert("tier".to_string(), "fe".to_string());
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["fe".into(), "be".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert!(selector_matches(&sel, Some(&labels)));
        labels.insert("canary".into(), "1".into());
        assert!(!selector_matches(&sel, Some(&labels)));
        assert!(!selector_matches(&sel, None));
        assert!(selector_matches(&LabelSelector::default(), None));
        assert!(selector_is_empty(&LabelSelector::default()));
    }

    #[test]
    fn availability_honours_min_ready_seconds() {
        let p = pod("a", "n1", "Running", Some(100), 50);
        assert!(is_available(&p, 0, ts(100)));
        assert!(!is_available(&p, 10, ts(105)));
        assert_eq!(seconds_until_available(&p, 10, ts(105)), Some(6));
        assert!(is_available(&p, 10, ts(111)));
        let not_ready = pod("b", "n1", "Running", None, 50);
        assert!(!is_available(&not_ready, 0, ts(200)));
    }

    #[test]
    fn deletion_ranking_follows_upstream_order() {
        let now = ts(100_000);
        let unscheduled = pod("unscheduled", "", "Pending", None, 10);
        let pending = pod("pending", "n1", "Pending", None, 10);
        let unknown = pod("unknown", "n1", "Unknown", None, 10);
        let running_not_ready = pod("running-not-ready", "n1", "Running", None, 10);
        let ready_recent = pod("ready-recent", "n1", "Running", Some(99_990), 10);
        let ready_long = pod("ready-long", "n1", "Running", Some(1_000), 10);
        let pods = [
            &ready_long,
            &ready_recent,
            &running_not_ready,
            &unknown,
            &pending,
            &unscheduled,
        ];
        let picked = pods_to_delete(&pods, &pods, 5, now);
        let names: Vec<_> = picked
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            vec![
                "unscheduled",
                "pending",
                "unknown",
                "running-not-ready",
                "ready-recent",
            ]
        );
    }

    #[test]
    fn restarts_then_newer_first_then_doubled_up() {
        let now = ts(100_000);
        let mut restarted = pod("restarted", "n1", "Running", None, 10);
        if let Some(s) = restarted.status.as_mut() {
            s.container_statuses = Some(vec![ContainerStatus {
                name: "c".into(),
                restart_count: 3,
                ..Default::default()
            }]);
        }
        let old = pod("old", "n1", "Running", None, 10);
        let new = pod("new", "n1", "Running", None, 90_000);
        let picked = pods_to_delete(&[&old, &new, &restarted], &[], 2, now);
        assert_eq!(picked[0].metadata.name.as_deref(), Some("restarted"));
        assert_eq!(picked[1].metadata.name.as_deref(), Some("new"));

        // same age: the pod whose node holds more of the owner's pods goes first
        let a = pod("a", "n1", "Running", None, 10);
        let b = pod("b", "n2", "Running", None, 10);
        let c = pod("c", "n2", "Running", None, 10);
        let picked = pods_to_delete(&[&a, &b], &[&a, &b, &c], 1, now);
        assert_eq!(picked[0].metadata.name.as_deref(), Some("b"));
    }
}
