//! The scores of the default profile (TaintToleration, NodeAffinity, an owner spreading like
//! SelectorSpread, NodeResourcesFit's LeastAllocated, BalancedAllocation), normalized and
//! weighted.

use super::affinity::preferred_score;
use super::node_info::NodeInfo;
use super::taints::intolerable_prefer_no_schedule;
use super::{
    PodConstraints, MAX_NODE_SCORE, WEIGHT_BALANCED, WEIGHT_LEAST_ALLOCATED, WEIGHT_NODE_AFFINITY,
    WEIGHT_SPREAD, WEIGHT_TAINT,
};
use std::collections::BTreeMap;

/// `DefaultNormalizeScore`: scales to 0..=100 by the maximum; `reverse` flips it.
pub(super) fn normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        *s = MAX_NODE_SCORE * *s / max;
        if reverse {
            *s = MAX_NODE_SCORE - *s;
        }
    }
}

pub(super) fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// NodeResourcesFit's LeastAllocated score over cpu and memory (weights 1, 1), counting
/// containers without requests at the 100m/200Mi defaults.
pub(super) fn least_allocated_score(c: &PodConstraints, node: &NodeInfo) -> i64 {
    let pairs = [
        (
            node.allocatable.milli_cpu,
            node.non_zero_cpu.saturating_add(c.info.non_zero_cpu),
        ),
        (
            node.allocatable.memory,
            node.non_zero_memory.saturating_add(c.info.non_zero_memory),
        ),
    ];
    let (mut sum, mut weights) = (0, 0);
    for (alloc, req) in pairs {
        if alloc == 0 {
            continue;
        }
        sum += least_requested_score(req, alloc);
        weights += 1;
    }
    if weights == 0 {
        0
    } else {
        sum / weights
    }
}

/// BalancedAllocation: 100 × (1 − the standard deviation of the cpu and memory fractions).
pub(super) fn balanced_allocation_score(c: &PodConstraints, node: &NodeInfo) -> i64 {
    let pairs = [
        (
            node.allocatable.milli_cpu,
            node.requested
                .milli_cpu
                .saturating_add(c.info.requests.milli_cpu),
        ),
        (
            node.allocatable.memory,
            node.requested.memory.saturating_add(c.info.requests.memory),
        ),
    ];
    let fractions: Vec<f64> = pairs
        .iter()
        .filter(|(alloc, _)| *alloc != 0)
        .map(|(alloc, req)| (*req as f64 / *alloc as f64).min(1.0))
        .collect();
    let std = if fractions.len() == 2 {
        ((fractions[0] - fractions[1]) / 2.0).abs()
    } else {
        0.0
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

/// Weighted total score of each feasible node (same order as `feasible`).
pub(super) fn score_nodes(c: &PodConstraints, nodes: &[NodeInfo], feasible: &[usize]) -> Vec<i64> {
    let n = feasible.len();
    let mut totals = vec![0i64; n];

    // TaintToleration: untolerated PreferNoSchedule taints, fewer is better.
    let mut taint: Vec<i64> = feasible
        .iter()
        .map(|&i| intolerable_prefer_no_schedule(&c.prefer_tolerations, &nodes[i].taints))
        .collect();
    normalize(&mut taint, true);

    // NodeAffinity: sum of the weights of matching preferred terms.
    let mut affinity: Vec<i64> = feasible
        .iter()
        .map(|&i| {
            let empty = BTreeMap::new();
            let labels = nodes[i].node.metadata.labels.as_ref().unwrap_or(&empty);
            preferred_score(&c.preferred, labels, &nodes[i].name)
        })
        .collect();
    normalize(&mut affinity, false);

    // Spreading of one controller's pods: fewer siblings on the node is better.
    let spread: Vec<i64> = match &c.info.owner {
        None => vec![0; n],
        Some(owner) => {
            let counts: Vec<i64> = feasible
                .iter()
                .map(|&i| i64::from(nodes[i].owner_count(owner)))
                .collect();
            let max = counts.iter().copied().max().unwrap_or(0);
            counts
                .iter()
                .map(|cnt| {
                    if max == 0 {
                        MAX_NODE_SCORE
                    } else {
                        MAX_NODE_SCORE * (max - cnt) / max
                    }
                })
                .collect()
        }
    };

    for (k, &i) in feasible.iter().enumerate() {
        totals[k] = WEIGHT_TAINT * taint[k]
            + WEIGHT_NODE_AFFINITY * affinity[k]
            + WEIGHT_SPREAD * spread[k]
            + WEIGHT_LEAST_ALLOCATED * least_allocated_score(c, &nodes[i])
            + WEIGHT_BALANCED * balanced_allocation_score(c, &nodes[i]);
    }
    totals
}
