//! The filters of the default profile in their order (NodeUnschedulable, NodeName,
//! TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit, VolumeBinding's node
//! affinity), the reasons they give, and the PostFilter message of a pod that fits nowhere.

use super::node_info::{HostPort, NodeInfo, PodInfo};
use super::resources::Resources;
use super::taints::{tolerates_unschedulable, untolerated_taint};
use super::{
    render_fit, PodConstraints, PREEMPTION_NEVER, PREEMPTION_NOT_HELPFUL, PREEMPTION_NO_VICTIMS,
    REASON_AFFINITY, REASON_NODE_NAME, REASON_PORTS, REASON_TOO_MANY_PODS, REASON_UNSCHEDULABLE,
    REASON_VOLUME_AFFINITY,
};
use skiff_api::matchers::affinity::any_term_matches;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Code {
    /// Preemption might help (resources, ports).
    Unschedulable,
    /// Preemption cannot help (taints, selectors, cordon).
    Unresolvable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Status {
    pub(super) code: Code,
    pub(super) reasons: Vec<String>,
}

impl Status {
    pub(super) fn new(code: Code, reason: impl Into<String>) -> Status {
        Status {
            code,
            reasons: vec![reason.into()],
        }
    }
}

/// NodeResourcesFit's `fitsRequest`: every reason the node lacks room for the pod.
pub(super) fn fits_request(
    req: &Resources,
    allocatable: &Resources,
    allowed_pods: i64,
    requested: &Resources,
    num_pods: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    if i64::try_from(num_pods)
        .unwrap_or(i64::MAX)
        .saturating_add(1)
        > allowed_pods
    {
        out.push(REASON_TOO_MANY_PODS.to_string());
    }
    if req.is_zero() {
        return out;
    }
    if req.milli_cpu > 0 && req.milli_cpu > allocatable.milli_cpu - requested.milli_cpu {
        out.push("Insufficient cpu".to_string());
    }
    if req.memory > 0 && req.memory > allocatable.memory - requested.memory {
        out.push("Insufficient memory".to_string());
    }
    if req.ephemeral_storage > 0
        && req.ephemeral_storage > allocatable.ephemeral_storage - requested.ephemeral_storage
    {
        out.push("Insufficient ephemeral-storage".to_string());
    }
    for (name, q) in &req.scalar {
        if *q == 0 {
            continue;
        }
        let alloc = allocatable.scalar.get(name).copied().unwrap_or(0);
        let used = requested.scalar.get(name).copied().unwrap_or(0);
        if *q > alloc - used {
            out.push(format!("Insufficient {name}"));
        }
    }
    out
}

/// `HostPortInfo.CheckConflict`: a wildcard address clashes with any address on the same
/// protocol and port.
pub(super) fn port_conflict<'a, I>(wanted: &[HostPort], used: I) -> bool
where
    I: Iterator<Item = &'a HostPort> + Clone,
{
    wanted.iter().any(|w| {
        used.clone().any(|u| {
            u.protocol == w.protocol
                && u.port == w.port
                && (w.ip == "0.0.0.0" || u.ip == "0.0.0.0" || u.ip == w.ip)
        })
    })
}

/// Runs the filters in the default profile's order; the first failing plugin decides.
pub(super) fn filter(c: &PodConstraints, node: &NodeInfo) -> Result<(), Status> {
    // NodeUnschedulable: a cordoned node takes only pods tolerating its unschedulable taint.
    if node.unschedulable && !tolerates_unschedulable(c.tolerations) {
        return Err(Status::new(Code::Unresolvable, REASON_UNSCHEDULABLE));
    }
    // NodeName.
    if let Some(n) = c.node_name {
        if n != node.name {
            return Err(Status::new(Code::Unresolvable, REASON_NODE_NAME));
        }
    }
    // TaintToleration: the first untolerated NoSchedule/NoExecute taint.
    if let Some(t) = untolerated_taint(c.tolerations, &node.taints) {
        return Err(Status::new(
            Code::Unresolvable,
            format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key,
                t.value.as_deref().unwrap_or("")
            ),
        ));
    }
    // NodeAffinity: nodeSelector and required terms (ORed).
    let labels = node.node.metadata.labels.as_ref();
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    if !c.required.matches_labels(labels, &node.name) {
        return Err(Status::new(Code::Unresolvable, REASON_AFFINITY));
    }
    // NodePorts.
    if !c.info.host_ports.is_empty() && port_conflict(&c.info.host_ports, node.used_ports.keys()) {
        return Err(Status::new(Code::Unschedulable, REASON_PORTS));
    }
    // NodeResourcesFit.
    let reasons = fits_request(
        &c.info.requests,
        &node.allocatable,
        node.allowed_pods,
        &node.requested,
        node.pods.len(),
    );
    if !reasons.is_empty() {
        return Err(Status {
            code: Code::Unschedulable,
            reasons,
        });
    }
    // VolumeBinding: the node affinity of the PVs bound to the pod's claims.
    if !c
        .volume_terms
        .iter()
        .all(|terms| any_term_matches(terms, labels, &node.name))
    {
        return Err(Status::new(Code::Unresolvable, REASON_VOLUME_AFFINITY));
    }
    Ok(())
}

/// DefaultPreemption's dry run on a node preemption might help: without the pods of lower
/// priority, does the pod fit? Returns the reasons the node stays infeasible.
pub(super) fn preemption_dry_run(c: &PodConstraints, node: &NodeInfo) -> Vec<String> {
    let victims: Vec<&PodInfo> = node
        .pods
        .values()
        .filter(|p| p.priority < c.info.priority)
        .collect();
    if victims.is_empty() {
        return vec![PREEMPTION_NO_VICTIMS.to_string()];
    }
    let mut requested = node.requested.clone();
    let mut ports: HashMap<&HostPort, u32> = node.used_ports.iter().map(|(k, v)| (k, *v)).collect();
    for v in &victims {
        requested.sub(&v.requests);
        for hp in &v.host_ports {
            if let Some(n) = ports.get_mut(hp) {
                *n = n.saturating_sub(1);
            }
        }
    }
    let used: Vec<&HostPort> = ports
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, _)| *k)
        .collect();
    if !c.info.host_ports.is_empty() && port_conflict(&c.info.host_ports, used.iter().copied()) {
        return vec![REASON_PORTS.to_string()];
    }
    let reasons = fits_request(
        &c.info.requests,
        &node.allocatable,
        node.allowed_pods,
        &requested,
        node.pods.len() - victims.len(),
    );
    if reasons.is_empty() {
        // Evicting lower-priority pods would make room; this scheduler does not preempt.
        vec![PREEMPTION_NO_VICTIMS.to_string()]
    } else {
        reasons
    }
}

/// The PostFilter message (`preemption: …`).
pub(super) fn preemption_message(
    c: &PodConstraints,
    nodes: &[NodeInfo],
    failed: &[(usize, Status)],
    absent: usize,
) -> String {
    if c.preempt_never {
        return format!("preemption: {PREEMPTION_NEVER}");
    }
    let mut hist: BTreeMap<String, usize> = BTreeMap::new();
    if absent > 0 {
        *hist.entry(PREEMPTION_NOT_HELPFUL.to_string()).or_insert(0) += absent;
    }
    for (idx, st) in failed {
        match st.code {
            Code::Unresolvable => {
                *hist.entry(PREEMPTION_NOT_HELPFUL.to_string()).or_insert(0) += 1;
            }
            Code::Unschedulable => {
                for r in preemption_dry_run(c, &nodes[*idx]) {
                    *hist.entry(r).or_insert(0) += 1;
                }
            }
        }
    }
    format!("preemption: {}", render_fit(nodes.len(), None, &hist, ""))
}

/// `numFeasibleNodesToFind` with the adaptive default percentage.
pub fn num_feasible_nodes_to_find(num_all_nodes: usize) -> usize {
    const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
    const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all_nodes;
    }
    let pct = 50usize
        .saturating_sub(num_all_nodes / 125)
        .max(MIN_FEASIBLE_NODES_PERCENTAGE);
    (num_all_nodes * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}
