//! The ReplicaSet controller's pod ranking: the "least valuable first" ordering used to pick
//! pods to delete on scale-down (upstream's `ActivePodsWithRanks`), and when to look again
//! for pods still becoming available. Pod facts come from `crate::util::podutil`.

use crate::util::podutil::{is_active, is_ready, ready_time, seconds_until_available};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use std::cmp::Ordering;
use std::collections::HashMap;

/// Seconds until the ReplicaSet should look at a ready pod again to count it available: one
/// second past the moment it becomes available, so the check lands after it.
pub fn recheck_after(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<u64> {
    seconds_until_available(pod, min_ready_seconds, now)
        .and_then(|s| u64::try_from(s).ok())
        .map(|s| s + 1)
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
        // the unassigned one first
        return (!na.is_empty()).cmp(&!nb.is_empty());
    }
    let (pa, pb) = (phase_ordinal(a), phase_ordinal(b));
    if pa != pb {
        return pa.cmp(&pb);
    }
    let (ra, rb) = (is_ready(a), is_ready(b));
    if ra != rb {
        // the not ready one first
        return ra.cmp(&rb);
    }
    let (ca, cb) = (deletion_cost(a), deletion_cost(b));
    if ca != cb {
        return ca.cmp(&cb);
    }
    if rank_a != rank_b {
        return rank_b.cmp(&rank_a);
    }
    if ra && rb {
        if let Some(o) = newer_first(ready_time(a), ready_time(b), now) {
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
    use crate::util::podutil::tests::requirement;
    use crate::util::podutil::{is_available, selector_is_empty, selector_matches};
    use k8s_openapi::api::core::v1::{ContainerStatus, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
    use std::collections::BTreeMap;

    pub use crate::util::podutil::tests::ts;

    /// A pod on `node` (unscheduled when empty) created at `created`.
    pub fn pod(name: &str, node: &str, phase: &str, ready_at: Option<i64>, created: i64) -> Pod {
        let mut p = crate::util::podutil::tests::pod(name, phase, ready_at);
        p.metadata.creation_timestamp = Some(Time(ts(created)));
        p.spec = Some(PodSpec {
            node_name: (!node.is_empty()).then(|| node.to_string()),
            ..Default::default()
        });
        p
    }

    #[test]
    fn selector_semantics() {
        let mut labels = BTreeMap::new();
        labels.insert("app".to_string(), "web".to_string());
        labels.insert("tier".to_string(), "fe".to_string());
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![
                requirement("tier", "In", &["fe", "be"]),
                requirement("canary", "DoesNotExist", &[]),
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
        assert_eq!(recheck_after(&p, 10, ts(105)), Some(6));
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
