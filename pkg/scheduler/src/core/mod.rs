//! The pure scheduling core: kube-scheduler 1.32's default filters (NodeUnschedulable,
//! NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit) and scores
//! (TaintToleration, NodeAffinity, LeastAllocated, BalancedAllocation and a SelectorSpread-like
//! owner spreading) over an in-memory snapshot of nodes, and `FitError`, which renders the
//! `0/3 nodes are available: …` message exactly as upstream does.
//!
//! Laid out like kube-scheduler's plugins: `node_info` (the per-node snapshot), `resources`
//! (requests and amounts), `taints` and `affinity` (the plugins' use of the shared matchers in
//! `skiff_api::matchers`), `filter` (the filter chain and the PostFilter message) and `score`.
//! This file holds the constants, the pod's parsed constraints and the entry points.

mod affinity;
mod filter;
mod node_info;
mod resources;
mod score;
mod taints;
#[cfg(test)]
mod tests;

pub use crate::volumes::PodVolumes;
pub use filter::num_feasible_nodes_to_find;
pub use node_info::{pod_key, HostPort, NodeInfo, PodInfo};
pub use resources::{pod_requests, Resources};
pub use taints::toleration_tolerates;

use affinity::{preferred_terms, prefilter_node_names, NodeNames};
use filter::{filter, preemption_message, Status};
use k8s_openapi::api::core::v1::{Pod, Toleration};
use rand::Rng;
use score::score_nodes;
use skiff_api::matchers::affinity::{RequiredNodeAffinity, Term};
use std::collections::BTreeMap;
use std::fmt;
use taints::prefer_no_schedule_tolerations;

/// The highest score a single scoring function gives (`framework.MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;
/// The pod count a node takes when its status says nothing about `pods`.
pub const DEFAULT_MAX_PODS: i64 = 110;
/// Default cpu request (millicores) scoring assumes for a container that requests none.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Default memory request (bytes) scoring assumes for a container that requests none.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Taint keys kube-scheduler users know (`k8s.io/api/core/v1` well-known taints).
pub const TAINT_NODE_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_NODE_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

// Filter reasons, worded as the 1.32 plugins word them.
const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
const REASON_NODE_NAME: &str = "node(s) didn't match the requested node name";
const REASON_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
const REASON_AFFINITY_CONFLICT: &str = "pod affinity terms conflict";
const REASON_PREFILTER_NODE_AFFINITY: &str = "node(s) didn't satisfy plugin(s) [NodeAffinity]";
const REASON_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
const REASON_TOO_MANY_PODS: &str = "Too many pods";
const REASON_VOLUME_AFFINITY: &str = "node(s) had volume node affinity conflict";
const PREEMPTION_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const PREEMPTION_NO_VICTIMS: &str = "No preemption victims found for incoming pod";
const PREEMPTION_NEVER: &str = "not eligible due to preemptionPolicy=Never.";

// Score weights of the default profile.
const WEIGHT_TAINT: i64 = 3;
const WEIGHT_NODE_AFFINITY: i64 = 2;
const WEIGHT_SPREAD: i64 = 2;
const WEIGHT_LEAST_ALLOCATED: i64 = 1;
const WEIGHT_BALANCED: i64 = 1;

/// Why a pod fits nowhere; `Display` is the message upstream puts in the `FailedScheduling`
/// event and the `PodScheduled` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FitError {
    /// The cluster has no nodes at all (`no nodes available to schedule pods`).
    NoNodes,
    /// Every node was filtered out.
    Unschedulable {
        num_all_nodes: usize,
        /// The PreFilter message, when a PreFilter rejected the pod outright.
        pre_filter_msg: Option<String>,
        /// How many nodes failed for each reason (a node may count under several).
        reasons: BTreeMap<String, usize>,
        /// What the PostFilter (preemption) said, starting with `preemption: `.
        post_filter_msg: String,
    },
}

impl FitError {
    /// The `reason` of the `PodScheduled=False` condition.
    pub fn condition_reason(&self) -> &'static str {
        match self {
            FitError::NoNodes => "SchedulerError",
            FitError::Unschedulable { .. } => "Unschedulable",
        }
    }
}

/// `FitError.Error()`: `0/N nodes are available: <prefilter msg | sorted histogram>. <postfilter>`.
fn render_fit(
    num_all_nodes: usize,
    pre_filter_msg: Option<&str>,
    reasons: &BTreeMap<String, usize>,
    post_filter_msg: &str,
) -> String {
    let mut msg = format!("0/{num_all_nodes} nodes are available:");
    match pre_filter_msg {
        Some(pre) if !pre.is_empty() => {
            msg.push(' ');
            msg.push_str(pre);
            msg.push('.');
        }
        _ => {
            // Go sorts the "<count> <reason>" strings bytewise.
            let mut items: Vec<String> = reasons
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(r, n)| format!("{n} {r}"))
                .collect();
            items.sort();
            if !items.is_empty() {
                msg.push(' ');
                msg.push_str(&items.join(", "));
                msg.push('.');
            }
        }
    }
    if !post_filter_msg.is_empty() {
        msg.push(' ');
        msg.push_str(post_filter_msg);
    }
    msg
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::NoNodes => f.write_str("no nodes available to schedule pods"),
            FitError::Unschedulable {
                num_all_nodes,
                pre_filter_msg,
                reasons,
                post_filter_msg,
            } => f.write_str(&render_fit(
                *num_all_nodes,
                pre_filter_msg.as_deref(),
                reasons,
                post_filter_msg,
            )),
        }
    }
}

impl std::error::Error for FitError {}

// ---------------------------------------------------------------------------------------
// The pod's constraints

/// The pod's scheduling constraints, parsed once per scheduling attempt.
struct PodConstraints<'a> {
    info: PodInfo,
    node_name: Option<&'a str>,
    tolerations: &'a [Toleration],
    /// Tolerations that can tolerate PreferNoSchedule taints (effect empty or PreferNoSchedule).
    prefer_tolerations: Vec<Toleration>,
    /// The nodeSelector and the required node affinity terms.
    required: RequiredNodeAffinity,
    preferred: Vec<(i64, Term)>,
    names: NodeNames,
    preempt_never: bool,
    /// The required node affinity of every PV bound to the pod's claims (VolumeBinding):
    /// a node must match one term of each.
    volume_terms: Vec<Vec<Term>>,
}

impl<'a> PodConstraints<'a> {
    fn new(pod: &'a Pod) -> PodConstraints<'a> {
        let spec = pod.spec.as_ref();
        let tolerations: &[Toleration] = spec.and_then(|s| s.tolerations.as_deref()).unwrap_or(&[]);
        let node_affinity = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref());
        let required_terms = node_affinity
            .and_then(|na| {
                na.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|ns| &ns.node_selector_terms);
        let preferred = preferred_terms(node_affinity);
        let names = match required_terms {
            None => NodeNames::All,
            Some(terms) => prefilter_node_names(terms),
        };
        PodConstraints {
            info: PodInfo::from_pod(pod),
            node_name: spec
                .and_then(|s| s.node_name.as_deref())
                .filter(|n| !n.is_empty()),
            tolerations,
            prefer_tolerations: prefer_no_schedule_tolerations(tolerations),
            required: spec
                .map(RequiredNodeAffinity::from_spec)
                .unwrap_or_default(),
            preferred,
            names,
            preempt_never: spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never"),
            volume_terms: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Entry points

/// Picks the node for `pod` among `nodes`, or says why none fits.
pub fn schedule(pod: &Pod, nodes: &[NodeInfo]) -> Result<String, FitError> {
    schedule_with_rng(pod, nodes, &mut rand::thread_rng())
}

/// `schedule` with the randomness (start offset, tie-breaks) drawn from `rng`.
pub fn schedule_with_rng<R: Rng + ?Sized>(
    pod: &Pod,
    nodes: &[NodeInfo],
    rng: &mut R,
) -> Result<String, FitError> {
    schedule_with_volumes(pod, nodes, &PodVolumes::default(), rng)
}

/// `schedule_with_rng` for a pod whose claims were looked up (see
/// [`crate::volumes::pod_volumes`]): a claim problem rejects the pod at PreFilter, and nodes
/// outside the node affinity of the pod's bound volumes are filtered out.
pub fn schedule_with_volumes<R: Rng + ?Sized>(
    pod: &Pod,
    nodes: &[NodeInfo],
    volumes: &PodVolumes,
    rng: &mut R,
) -> Result<String, FitError> {
    if nodes.is_empty() {
        return Err(FitError::NoNodes);
    }
    let mut c = PodConstraints::new(pod);
    if let Some(msg) = &volumes.pre_filter_error {
        let post = if c.preempt_never {
            format!("preemption: {PREEMPTION_NEVER}")
        } else {
            let mut hist = BTreeMap::new();
            hist.insert(PREEMPTION_NOT_HELPFUL.to_string(), nodes.len());
            format!("preemption: {}", render_fit(nodes.len(), None, &hist, ""))
        };
        return Err(FitError::Unschedulable {
            num_all_nodes: nodes.len(),
            pre_filter_msg: Some(msg.clone()),
            reasons: BTreeMap::new(),
            post_filter_msg: post,
        });
    }
    c.volume_terms = volumes
        .node_affinity
        .iter()
        .map(|terms| terms.iter().map(Term::parse).collect())
        .collect();

    let candidates: Vec<usize> = match &c.names {
        NodeNames::All => (0..nodes.len()).collect(),
        NodeNames::Only(names) => (0..nodes.len())
            .filter(|&i| names.contains(&nodes[i].name))
            .collect(),
        NodeNames::Conflict => {
            // PreFilter rejected the pod: every node is "not helpful" for preemption.
            let post = if c.preempt_never {
                format!("preemption: {PREEMPTION_NEVER}")
            } else {
                let mut hist = BTreeMap::new();
                hist.insert(PREEMPTION_NOT_HELPFUL.to_string(), nodes.len());
                format!("preemption: {}", render_fit(nodes.len(), None, &hist, ""))
            };
            return Err(FitError::Unschedulable {
                num_all_nodes: nodes.len(),
                pre_filter_msg: Some(REASON_AFFINITY_CONFLICT.to_string()),
                reasons: BTreeMap::new(),
                post_filter_msg: post,
            });
        }
    };
    let absent = nodes.len() - candidates.len();

    let to_find = num_feasible_nodes_to_find(candidates.len());
    let mut feasible: Vec<usize> = Vec::new();
    let mut failed: Vec<(usize, Status)> = Vec::new();
    if !candidates.is_empty() {
        let start = rng.gen_range(0..candidates.len());
        for k in 0..candidates.len() {
            let i = candidates[(start + k) % candidates.len()];
            match filter(&c, &nodes[i]) {
                Ok(()) => {
                    feasible.push(i);
                    if feasible.len() >= to_find {
                        break;
                    }
                }
                Err(st) => failed.push((i, st)),
            }
        }
    }

    if feasible.is_empty() {
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for (_, st) in &failed {
            for r in &st.reasons {
                *reasons.entry(r.clone()).or_insert(0) += 1;
            }
        }
        if absent > 0 {
            *reasons
                .entry(REASON_PREFILTER_NODE_AFFINITY.to_string())
                .or_insert(0) += absent;
        }
        let post_filter_msg = preemption_message(&c, nodes, &failed, absent);
        return Err(FitError::Unschedulable {
            num_all_nodes: nodes.len(),
            pre_filter_msg: None,
            reasons,
            post_filter_msg,
        });
    }
    if feasible.len() == 1 {
        return Ok(nodes[feasible[0]].name.clone());
    }

    let scores = score_nodes(&c, nodes, &feasible);
    // selectHost: the best score, ties broken uniformly at random (reservoir sampling).
    let mut best = 0usize;
    let mut best_score = i64::MIN;
    let mut ties = 0u32;
    for (k, s) in scores.iter().enumerate() {
        if *s > best_score {
            best_score = *s;
            best = k;
            ties = 1;
        } else if *s == best_score {
            ties += 1;
            if rng.gen_range(0..ties) == 0 {
                best = k;
            }
        }
    }
    Ok(nodes[feasible[best]].name.clone())
}
