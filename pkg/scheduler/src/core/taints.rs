//! The TaintToleration and NodeUnschedulable plugins' use of tolerations, over the one
//! toleration matcher in `skiff_api::matchers::taints`.

use super::TAINT_NODE_UNSCHEDULABLE;
use k8s_openapi::api::core::v1::{Taint, Toleration};
use skiff_api::matchers::taints::{first_untolerated, tolerated};

/// `Toleration.ToleratesTaint` (the one implementation in `skiff_api::matchers`).
pub use skiff_api::matchers::taints::tolerates as toleration_tolerates;

/// NodeUnschedulable: whether the pod tolerates the taint of a cordoned node.
pub(super) fn tolerates_unschedulable(tolerations: &[Toleration]) -> bool {
    let taint = Taint {
        key: TAINT_NODE_UNSCHEDULABLE.to_string(),
        effect: "NoSchedule".to_string(),
        value: None,
        time_added: None,
    };
    tolerated(tolerations, &taint)
}

/// TaintToleration's Filter: the first NoSchedule/NoExecute taint no toleration tolerates.
pub(super) fn untolerated_taint<'n>(
    tolerations: &[Toleration],
    taints: &'n [Taint],
) -> Option<&'n Taint> {
    first_untolerated(taints, tolerations, |t| {
        t.effect == "NoSchedule" || t.effect == "NoExecute"
    })
}

/// TaintToleration's PreScore: the tolerations that can tolerate PreferNoSchedule taints
/// (effect empty or PreferNoSchedule).
pub(super) fn prefer_no_schedule_tolerations(tolerations: &[Toleration]) -> Vec<Toleration> {
    tolerations
        .iter()
        .filter(|t| {
            let e = t.effect.as_deref().unwrap_or("");
            e.is_empty() || e == "PreferNoSchedule"
        })
        .cloned()
        .collect()
}

/// TaintToleration's Score before normalizing: the PreferNoSchedule taints the pod does not
/// tolerate (fewer is better).
pub(super) fn intolerable_prefer_no_schedule(
    prefer_tolerations: &[Toleration],
    taints: &[Taint],
) -> i64 {
    taints
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule" && !tolerated(prefer_tolerations, t))
        .count() as i64
}
