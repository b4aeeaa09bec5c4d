//! The pure scheduling core: kube-scheduler 1.32's default filters (NodeUnschedulable,
//! NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit) and scores
//! (TaintToleration, NodeAffinity, LeastAllocated, BalancedAllocation and a SelectorSpread-like
//! owner spreading) over an in-memory snapshot of nodes, and `FitError`, which renders the
//! `0/3 nodes are available: …` message exactly as upstream does.

use crate::quantity;
pub use crate::volumes::PodVolumes;
use k8s_openapi::api::core::v1::{
    Container, Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use rand::Rng;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

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
// Resources

/// Amounts of the resources the scheduler accounts for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Extended resources (`example.com/gpu`), hugepages and attachable volumes.
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }

    fn add(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_add(o.milli_cpu);
        self.memory = self.memory.saturating_add(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_add(o.ephemeral_storage);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = e.saturating_add(*v);
        }
    }

    fn sub(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_sub(o.milli_cpu);
        self.memory = self.memory.saturating_sub(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_sub(o.ephemeral_storage);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = e.saturating_sub(*v);
        }
    }

    fn max_with(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }

    /// Adds one resource list entry (`cpu: 100m`); names the scheduler ignores are skipped.
    fn add_named(&mut self, name: &str, q: &Quantity) {
        match name {
            "cpu" => {
                self.milli_cpu = self
                    .milli_cpu
                    .saturating_add(quantity::milli_value(&q.0).unwrap_or(0))
            }
            "memory" => {
                self.memory = self
                    .memory
                    .saturating_add(quantity::value(&q.0).unwrap_or(0))
            }
            "ephemeral-storage" => {
                self.ephemeral_storage = self
                    .ephemeral_storage
                    .saturating_add(quantity::value(&q.0).unwrap_or(0))
            }
            n if is_scalar_resource_name(n) => {
                let e = self.scalar.entry(n.to_string()).or_insert(0);
                *e = e.saturating_add(quantity::value(&q.0).unwrap_or(0));
            }
            _ => {}
        }
    }

    fn from_list(list: &BTreeMap<String, Quantity>) -> Resources {
        let mut r = Resources::default();
        for (k, q) in list {
            r.add_named(k, q);
        }
        r
    }
}

/// `schedutil.IsScalarResourceName`: extended resources, hugepages, attachable volumes.
fn is_scalar_resource_name(name: &str) -> bool {
    if name.starts_with("hugepages-") || name.starts_with("attachable-volumes-") {
        return true;
    }
    // Extended: fully qualified, outside the kubernetes.io namespace, not a quota "requests." name.
    name.contains('/')
        && !name.starts_with("kubernetes.io/")
        && !name.contains(".kubernetes.io/")
        && !name.starts_with("requests.")
}

/// A container's effective requests: `requests`, falling back to `limits` per resource (the
/// API server's defaulting copies limits into empty requests). With `non_zero`, a missing cpu
/// or memory request counts as the scoring defaults (100m, 200Mi).
fn container_requests(c: &Container, non_zero: bool) -> Resources {
    let res = c.resources.as_ref();
    let requests = res.and_then(|r| r.requests.as_ref());
    let limits = res.and_then(|r| r.limits.as_ref());
    let mut merged: BTreeMap<&str, &Quantity> = BTreeMap::new();
    if let Some(l) = limits {
        for (k, v) in l {
            merged.insert(k.as_str(), v);
        }
    }
    if let Some(r) = requests {
        for (k, v) in r {
            merged.insert(k.as_str(), v);
        }
    }
    let mut out = Resources::default();
    for (k, v) in &merged {
        out.add_named(k, v);
    }
    if non_zero {
        if !merged.contains_key("cpu") {
            out.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !merged.contains_key("memory") {
            out.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    out
}

/// `resourcehelper.PodRequests`: the sum of the app containers and restartable (sidecar)
/// init containers, at least the largest init container step, plus the pod overhead.
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources::default();
    };
    let mut reqs = Resources::default();
    for c in &spec.containers {
        reqs.add(&container_requests(c, non_zero));
    }
    let mut restartable = Resources::default();
    let mut init_max = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c, non_zero);
        if c.restart_policy.as_deref() == Some("Always") {
            reqs.add(&r);
            restartable.add(&r);
            init_max.max_with(&restartable);
        } else {
            let mut step = r;
            step.add(&restartable);
            init_max.max_with(&step);
        }
    }
    reqs.max_with(&init_max);
    if let Some(o) = spec.overhead.as_ref() {
        reqs.add(&Resources::from_list(o));
    }
    reqs
}

// ---------------------------------------------------------------------------------------
// Pods and nodes in the cache

/// A host port a pod claims (`hostIP` defaulting to 0.0.0.0, protocol to TCP).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

/// What the scheduler keeps of a pod placed on a node.
#[derive(Debug, Clone, PartialEq)]
pub struct PodInfo {
    /// `namespace/name`.
    pub key: String,
    pub requests: Resources,
    /// cpu and memory requests with the scoring defaults for containers requesting none.
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
    pub host_ports: Vec<HostPort>,
    /// `namespace/uid` of the controlling owner (ReplicaSet, StatefulSet, Job, …).
    pub owner: Option<String>,
    pub priority: i32,
}

/// `namespace/name` of a pod.
pub fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

impl PodInfo {
    pub fn from_pod(pod: &Pod) -> PodInfo {
        let requests = pod_requests(pod, false);
        let non_zero = pod_requests(pod, true);
        let mut host_ports = Vec::new();
        if let Some(spec) = pod.spec.as_ref() {
            for c in &spec.containers {
                for p in c.ports.iter().flatten() {
                    if let Some(hp) = p.host_port.filter(|hp| *hp > 0) {
                        host_ports.push(HostPort {
                            ip: p
                                .host_ip
                                .clone()
                                .filter(|ip| !ip.is_empty())
                                .unwrap_or_else(|| "0.0.0.0".to_string()),
                            protocol: p
                                .protocol
                                .clone()
                                .filter(|p| !p.is_empty())
                                .unwrap_or_else(|| "TCP".to_string()),
                            port: hp,
                        });
                    }
                }
            }
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let owner = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| format!("{ns}/{}", o.uid));
        PodInfo {
            key: pod_key(pod),
            requests,
            non_zero_cpu: non_zero.milli_cpu,
            non_zero_memory: non_zero.memory,
            host_ports,
            owner,
            priority: pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0),
        }
    }
}

/// A node with the pods on it (watched ones and ones this scheduler just bound), aggregated
/// the way the filters and scores read them.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    node: Node,
    name: String,
    /// `spec.taints` plus the NoSchedule taint the node's Ready condition implies.
    taints: Vec<Taint>,
    unschedulable: bool,
    allocatable: Resources,
    allowed_pods: i64,
    pods: HashMap<String, PodInfo>,
    requested: Resources,
    non_zero_cpu: i64,
    non_zero_memory: i64,
    used_ports: HashMap<HostPort, u32>,
    owner_counts: HashMap<String, u32>,
}

impl NodeInfo {
    pub fn new(node: Node) -> NodeInfo {
        let mut ni = NodeInfo {
            node: Node::default(),
            name: String::new(),
            taints: Vec::new(),
            unschedulable: false,
            allocatable: Resources::default(),
            allowed_pods: 0,
            pods: HashMap::new(),
            requested: Resources::default(),
            non_zero_cpu: 0,
            non_zero_memory: 0,
            used_ports: HashMap::new(),
            owner_counts: HashMap::new(),
        };
        ni.set_node(node);
        ni
    }

    /// Replaces the Node object, keeping the pods.
    pub fn set_node(&mut self, node: Node) {
        self.name = node.metadata.name.clone().unwrap_or_default();
        let spec = node.spec.as_ref();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        let mut taints: Vec<Taint> = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        if let Some(key) = readiness_taint_key(&node) {
            let present = taints.iter().any(|t| {
                (t.key == TAINT_NODE_NOT_READY || t.key == TAINT_NODE_UNREACHABLE)
                    && t.effect == "NoSchedule"
            });
            if !present {
                taints.push(Taint {
                    key: key.to_string(),
                    effect: "NoSchedule".to_string(),
                    value: None,
                    time_added: None,
                });
            }
        }
        self.taints = taints;
        let status = node.status.as_ref();
        let list = status
            .and_then(|s| s.allocatable.as_ref())
            .filter(|a| !a.is_empty())
            .or_else(|| status.and_then(|s| s.capacity.as_ref()));
        self.allocatable = list.map(Resources::from_list).unwrap_or_default();
        self.allowed_pods = list
            .and_then(|l| l.get("pods"))
            .and_then(|q| quantity::value(&q.0))
            .unwrap_or(DEFAULT_MAX_PODS);
        self.node = node;
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    pub fn pods(&self) -> impl Iterator<Item = &PodInfo> {
        self.pods.values()
    }

    pub fn num_pods(&self) -> usize {
        self.pods.len()
    }

    pub fn has_pod(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    /// Sum of the requests of the pods on the node.
    pub fn requested(&self) -> &Resources {
        &self.requested
    }

    pub fn allocatable(&self) -> &Resources {
        &self.allocatable
    }

    /// The node's taints as the filter sees them (including the not-ready/unreachable
    /// NoSchedule taint its Ready condition implies).
    pub fn effective_taints(&self) -> &[Taint] {
        &self.taints
    }

    /// Adds (or replaces) a pod.
    pub fn add_pod(&mut self, p: PodInfo) {
        self.remove_pod(&p.key.clone());
        self.requested.add(&p.requests);
        self.non_zero_cpu = self.non_zero_cpu.saturating_add(p.non_zero_cpu);
        self.non_zero_memory = self.non_zero_memory.saturating_add(p.non_zero_memory);
        for hp in &p.host_ports {
            *self.used_ports.entry(hp.clone()).or_insert(0) += 1;
        }
        if let Some(o) = &p.owner {
            *self.owner_counts.entry(o.clone()).or_insert(0) += 1;
        }
        self.pods.insert(p.key.clone(), p);
    }

    /// Removes a pod by `namespace/name`.
    pub fn remove_pod(&mut self, key: &str) -> Option<PodInfo> {
        let p = self.pods.remove(key)?;
        self.requested.sub(&p.requests);
        self.non_zero_cpu = self.non_zero_cpu.saturating_sub(p.non_zero_cpu);
        self.non_zero_memory = self.non_zero_memory.saturating_sub(p.non_zero_memory);
        for hp in &p.host_ports {
            if let Some(n) = self.used_ports.get_mut(hp) {
                *n -= 1;
                if *n == 0 {
                    self.used_ports.remove(hp);
                }
            }
        }
        if let Some(o) = &p.owner {
            if let Some(n) = self.owner_counts.get_mut(o) {
                *n -= 1;
                if *n == 0 {
                    self.owner_counts.remove(o);
                }
            }
        }
        Some(p)
    }

    /// Whether `other` (the same node, maybe newer) offers pods the same: labels, taints,
    /// readiness, cordon and allocatable. Heartbeats change none of these.
    pub fn same_scheduling_inputs(&self, other: &NodeInfo) -> bool {
        self.taints == other.taints
            && self.unschedulable == other.unschedulable
            && self.allocatable == other.allocatable
            && self.allowed_pods == other.allowed_pods
            && self.node.metadata.labels == other.node.metadata.labels
    }

    /// How many pods of `owner` (`namespace/uid`) are on the node.
    pub fn owner_count(&self, owner: &str) -> u32 {
        self.owner_counts.get(owner).copied().unwrap_or(0)
    }
}

/// The taint the node lifecycle controller puts on a node whose Ready condition is not True:
/// `not-ready` for False (or no Ready condition), `unreachable` for Unknown.
fn readiness_taint_key(node: &Node) -> Option<&'static str> {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
    match ready.map(|c| c.status.as_str()) {
        Some("True") => None,
        Some("Unknown") => Some(TAINT_NODE_UNREACHABLE),
        _ => Some(TAINT_NODE_NOT_READY),
    }
}

// ---------------------------------------------------------------------------------------
// Tolerations, node selectors

/// `Toleration.ToleratesTaint`.
pub fn toleration_tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if e != taint.effect {
            return false;
        }
    }
    if let Some(k) = t.key.as_deref().filter(|k| !k.is_empty()) {
        if k != taint.key {
            return false;
        }
    }
    match t.operator.as_deref().unwrap_or("") {
        "Exists" => true,
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| toleration_tolerates(t, taint))
}

#[derive(Debug, Clone)]
enum LabelOp {
    In(HashSet<String>),
    NotIn(HashSet<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone)]
struct LabelReq {
    key: String,
    op: LabelOp,
}

impl LabelReq {
    fn parse(r: &NodeSelectorRequirement) -> Option<LabelReq> {
        let values = r.values.clone().unwrap_or_default();
        let op = match r.operator.as_str() {
            "In" if !values.is_empty() => LabelOp::In(values.into_iter().collect()),
            "NotIn" if !values.is_empty() => LabelOp::NotIn(values.into_iter().collect()),
            "Exists" if values.is_empty() => LabelOp::Exists,
            "DoesNotExist" if values.is_empty() => LabelOp::DoesNotExist,
            "Gt" if values.len() == 1 => LabelOp::Gt(values[0].trim().parse().ok()?),
            "Lt" if values.len() == 1 => LabelOp::Lt(values[0].trim().parse().ok()?),
            _ => return None,
        };
        Some(LabelReq {
            key: r.key.clone(),
            op,
        })
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.key);
        match &self.op {
            LabelOp::In(set) => v.is_some_and(|v| set.contains(v)),
            LabelOp::NotIn(set) => v.is_none_or(|v| !set.contains(v)),
            LabelOp::Exists => v.is_some(),
            LabelOp::DoesNotExist => v.is_none(),
            LabelOp::Gt(n) => v
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            LabelOp::Lt(n) => v
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        }
    }
}

/// A `matchFields` requirement: only `metadata.name` with In/NotIn and exactly one value.
#[derive(Debug, Clone)]
struct FieldReq {
    equal: bool,
    name: String,
}

/// A parsed `NodeSelectorTerm`; a term with an invalid requirement matches nothing.
#[derive(Debug, Clone)]
struct Term {
    labels: Vec<LabelReq>,
    fields: Vec<FieldReq>,
    valid: bool,
}

impl Term {
    fn parse(t: &NodeSelectorTerm) -> Term {
        let mut valid = true;
        let mut labels = Vec::new();
        for r in t.match_expressions.iter().flatten() {
            match LabelReq::parse(r) {
                Some(l) => labels.push(l),
                None => valid = false,
            }
        }
        let mut fields = Vec::new();
        for r in t.match_fields.iter().flatten() {
            let values = r.values.as_deref().unwrap_or(&[]);
            match (r.key.as_str(), r.operator.as_str(), values) {
                ("metadata.name", "In", [v]) => fields.push(FieldReq {
                    equal: true,
                    name: v.clone(),
                }),
                ("metadata.name", "NotIn", [v]) => fields.push(FieldReq {
                    equal: false,
                    name: v.clone(),
                }),
                _ => valid = false,
            }
        }
        // A term without requirements matches nothing.
        if labels.is_empty() && fields.is_empty() {
            valid = false;
        }
        Term {
            labels,
            fields,
            valid,
        }
    }

    fn matches(&self, labels: &BTreeMap<String, String>, name: &str) -> bool {
        self.valid
            && self.labels.iter().all(|l| l.matches(labels))
            && self.fields.iter().all(|f| (f.name == name) == f.equal)
    }
}

/// What the PreFilter of NodeAffinity computes from `matchFields metadata.name In`.
#[derive(Debug, Clone, PartialEq)]
enum NodeNames {
    All,
    Only(HashSet<String>),
    Conflict,
}

/// The pod's scheduling constraints, parsed once per scheduling attempt.
struct PodConstraints<'a> {
    info: PodInfo,
    node_name: Option<&'a str>,
    tolerations: &'a [Toleration],
    /// Tolerations that can tolerate PreferNoSchedule taints (effect empty or PreferNoSchedule).
    prefer_tolerations: Vec<Toleration>,
    node_selector: Option<&'a BTreeMap<String, String>>,
    required: Option<Vec<Term>>,
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
        let required = required_terms.map(|ts| ts.iter().map(Term::parse).collect::<Vec<_>>());
        let preferred = node_affinity
            .and_then(|na| {
                na.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|ps| {
                ps.iter()
                    .filter(|p| p.weight != 0)
                    .map(|p| (i64::from(p.weight), Term::parse(&p.preference)))
                    .filter(|(_, t)| t.valid)
                    .collect()
            })
            .unwrap_or_default();
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
            prefer_tolerations: tolerations
                .iter()
                .filter(|t| {
                    let e = t.effect.as_deref().unwrap_or("");
                    e.is_empty() || e == "PreferNoSchedule"
                })
                .cloned()
                .collect(),
            node_selector: spec
                .and_then(|s| s.node_selector.as_ref())
                .filter(|m| !m.is_empty()),
            required,
            preferred,
            names,
            preempt_never: spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never"),
            volume_terms: Vec::new(),
        }
    }
}

/// NodeAffinity's PreFilter: when every required term pins node names with
/// `matchFields metadata.name In`, only those nodes are worth filtering.
fn prefilter_node_names(terms: &[NodeSelectorTerm]) -> NodeNames {
    let mut union: Option<HashSet<String>> = None;
    for t in terms {
        let mut term_names: Option<HashSet<String>> = None;
        for r in t.match_fields.iter().flatten() {
            if r.key == "metadata.name" && r.operator == "In" {
                let s: HashSet<String> = r.values.iter().flatten().cloned().collect();
                term_names = Some(match term_names {
                    None => s,
                    Some(prev) => prev.intersection(&s).cloned().collect(),
                });
            }
        }
        match term_names {
            // A term without a name constraint admits every node (terms are ORed).
            None => return NodeNames::All,
            Some(s) => union.get_or_insert_with(HashSet::new).extend(s),
        }
    }
    match union {
        None => NodeNames::All,
        Some(s) if s.is_empty() => NodeNames::Conflict,
        Some(s) => NodeNames::Only(s),
    }
}

// ---------------------------------------------------------------------------------------
// Filters

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    /// Preemption might help (resources, ports).
    Unschedulable,
    /// Preemption cannot help (taints, selectors, cordon).
    Unresolvable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    code: Code,
    reasons: Vec<String>,
}

impl Status {
    fn new(code: Code, reason: impl Into<String>) -> Status {
        Status {
            code,
            reasons: vec![reason.into()],
        }
    }
}

/// NodeResourcesFit's `fitsRequest`: every reason the node lacks room for the pod.
fn fits_request(
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
fn port_conflict<'a, I>(wanted: &[HostPort], used: I) -> bool
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
fn filter(c: &PodConstraints, node: &NodeInfo) -> Result<(), Status> {
    // NodeUnschedulable: a cordoned node takes only pods tolerating its unschedulable taint.
    if node.unschedulable {
        let taint = Taint {
            key: TAINT_NODE_UNSCHEDULABLE.to_string(),
            effect: "NoSchedule".to_string(),
            value: None,
            time_added: None,
        };
        if !tolerated(c.tolerations, &taint) {
            return Err(Status::new(Code::Unresolvable, REASON_UNSCHEDULABLE));
        }
    }
    // NodeName.
    if let Some(n) = c.node_name {
        if n != node.name {
            return Err(Status::new(Code::Unresolvable, REASON_NODE_NAME));
        }
    }
    // TaintToleration: the first untolerated NoSchedule/NoExecute taint.
    if let Some(t) = node.taints.iter().find(|t| {
        (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerated(c.tolerations, t)
    }) {
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
    if let Some(sel) = c.node_selector {
        if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return Err(Status::new(Code::Unresolvable, REASON_AFFINITY));
        }
    }
    if let Some(terms) = &c.required {
        if !terms.iter().any(|t| t.matches(labels, &node.name)) {
            return Err(Status::new(Code::Unresolvable, REASON_AFFINITY));
        }
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
        .all(|terms| terms.iter().any(|t| t.matches(labels, &node.name)))
    {
        return Err(Status::new(Code::Unresolvable, REASON_VOLUME_AFFINITY));
    }
    Ok(())
}

/// DefaultPreemption's dry run on a node preemption might help: without the pods of lower
/// priority, does the pod fit? Returns the reasons the node stays infeasible.
fn preemption_dry_run(c: &PodConstraints, node: &NodeInfo) -> Vec<String> {
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
fn preemption_message(
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

// ---------------------------------------------------------------------------------------
// Scores

/// `DefaultNormalizeScore`: scales to 0..=100 by the maximum; `reverse` flips it.
fn normalize(scores: &mut [i64], reverse: bool) {
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

fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// NodeResourcesFit's LeastAllocated score over cpu and memory (weights 1, 1), counting
/// containers without requests at the 100m/200Mi defaults.
fn least_allocated_score(c: &PodConstraints, node: &NodeInfo) -> i64 {
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
fn balanced_allocation_score(c: &PodConstraints, node: &NodeInfo) -> i64 {
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
fn score_nodes(c: &PodConstraints, nodes: &[NodeInfo], feasible: &[usize]) -> Vec<i64> {
    let n = feasible.len();
    let mut totals = vec![0i64; n];

    // TaintToleration: untolerated PreferNoSchedule taints, fewer is better.
    let mut taint: Vec<i64> = feasible
        .iter()
        .map(|&i| {
            nodes[i]
                .taints
                .iter()
                .filter(|t| t.effect == "PreferNoSchedule" && !tolerated(&c.prefer_tolerations, t))
                .count() as i64
        })
        .collect();
    normalize(&mut taint, true);

    // NodeAffinity: sum of the weights of matching preferred terms.
    let mut affinity: Vec<i64> = feasible
        .iter()
        .map(|&i| {
            let empty = BTreeMap::new();
            let labels = nodes[i].node.metadata.labels.as_ref().unwrap_or(&empty);
            c.preferred
                .iter()
                .filter(|(_, t)| t.matches(labels, &nodes[i].name))
                .map(|(w, _)| *w)
                .sum()
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use serde_json::{json, Value};

    fn node(name: &str, cpu: &str, memory: &str, pods: &str) -> Value {
        json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {
                "allocatable": {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "10Gi"},
                "conditions": [{"type": "Ready", "status": "True"}]
            }
        })
    }

    fn ni(v: Value) -> NodeInfo {
        NodeInfo::new(serde_json::from_value(v).unwrap())
    }

    fn std_nodes(n: usize) -> Vec<NodeInfo> {
        (1..=n)
            .map(|i| ni(node(&format!("node{i}"), "4", "8Gi", "110")))
            .collect()
    }

    fn pod_v(name: &str, cpu: Option<&str>) -> Value {
        let mut c = json!({"name": "c", "image": "nginx"});
        if let Some(cpu) = cpu {
            c["resources"] = json!({"requests": {"cpu": cpu}});
        }
        json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [c]}
        })
    }

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn owned(name: &str, owner_uid: &str) -> Pod {
        let mut v = pod_v(name, Some("100m"));
        v["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
            "uid": owner_uid, "controller": true
        }]);
        pod(v)
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn err(p: &Pod, nodes: &[NodeInfo]) -> String {
        schedule_with_rng(p, nodes, &mut rng())
            .unwrap_err()
            .to_string()
    }

    fn set(v: &mut Value, path: &str, x: Value) {
        *v.pointer_mut(path).unwrap() = x;
    }

    #[test]
    fn no_nodes_message() {
        let e = schedule(&pod(pod_v("p", None)), &[]).unwrap_err();
        assert_eq!(e.to_string(), "no nodes available to schedule pods");
        assert_eq!(e.condition_reason(), "SchedulerError");
    }

    #[test]
    fn upstream_message_taint_and_cpu() {
        let mut n1 = node("node1", "4", "8Gi", "110");
        n1["spec"]["taints"] =
            json!([{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]);
        let nodes = vec![
            ni(n1),
            ni(node("node2", "1", "8Gi", "110")),
            ni(node("node3", "1", "8Gi", "110")),
        ];
        let e = schedule(&pod(pod_v("p", Some("2"))), &nodes).unwrap_err();
        assert_eq!(e.condition_reason(), "Unschedulable");
        assert_eq!(
            e.to_string(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, \
             2 Insufficient cpu. preemption: 0/3 nodes are available: \
             1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn impossible_node_selector() {
        let mut p = pod_v("p", None);
        p["spec"]["nodeSelector"] = json!({"disktype": "ssd"});
        assert_eq!(
            err(&pod(p), &std_nodes(3)),
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. \
             preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn node_selector_matches_labels() {
        let mut nodes = std_nodes(3);
        let mut n = node("node2", "4", "8Gi", "110");
        n["metadata"]["labels"]["disktype"] = json!("ssd");
        nodes[1] = ni(n);
        let mut p = pod_v("p", None);
        p["spec"]["nodeSelector"] = json!({"disktype": "ssd"});
        assert_eq!(schedule(&pod(p), &nodes).unwrap(), "node2");
    }

    #[test]
    fn cordoned_nodes_are_skipped_unless_tolerated() {
        let mut nodes = std_nodes(3);
        for (i, slot) in nodes.iter_mut().enumerate().take(2) {
            let mut n = node(&format!("node{}", i + 1), "4", "8Gi", "110");
            n["spec"]["unschedulable"] = json!(true);
            *slot = ni(n);
        }
        for _ in 0..20 {
            assert_eq!(schedule(&pod(pod_v("p", None)), &nodes).unwrap(), "node3");
        }
        let mut n3 = node("node3", "4", "8Gi", "110");
        n3["spec"]["unschedulable"] = json!(true);
        nodes[2] = ni(n3);
        assert_eq!(
            err(&pod(pod_v("p", None)), &nodes),
            "0/3 nodes are available: 3 node(s) were unschedulable. \
             preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
        let mut tol = pod_v("ds", None);
        tol["spec"]["tolerations"] = json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]);
        assert!(schedule(&pod(tol), &nodes).is_ok());
    }

    #[test]
    fn not_ready_and_unknown_nodes_imply_taints() {
        let mut a = node("node1", "4", "8Gi", "110");
        set(&mut a, "/status/conditions/0/status", json!("False"));
        let mut b = node("node2", "4", "8Gi", "110");
        set(&mut b, "/status/conditions/0/status", json!("Unknown"));
        let mut c = node("node3", "4", "8Gi", "110");
        c["status"]["conditions"] = json!([]);
        let nodes = vec![ni(a), ni(b), ni(c)];
        assert_eq!(
            err(&pod(pod_v("p", None)), &nodes),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, \
             2 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. \
             preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
        // A pod tolerating not-ready may go to the NotReady node.
        let mut p = pod_v("p", None);
        p["spec"]["tolerations"] =
            json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]);
        let got = schedule(&pod(p), &nodes).unwrap();
        assert!(got == "node1" || got == "node3", "{got}");
        // An already-present NoSchedule taint is not duplicated.
        let mut d = node("node4", "4", "8Gi", "110");
        set(&mut d, "/status/conditions/0/status", json!("False"));
        d["spec"]["taints"] =
            json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]);
        assert_eq!(ni(d).effective_taints().len(), 1);
    }

    #[test]
    fn taints_and_tolerations() {
        let mut n1 = node("node1", "4", "8Gi", "110");
        n1["spec"]["taints"] =
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
        let mut n2 = node("node2", "4", "8Gi", "110");
        n2["spec"]["taints"] = json!([{"key": "evict", "value": "x", "effect": "NoExecute"}]);
        let nodes = vec![ni(n1), ni(n2)];
        assert_eq!(
            err(&pod(pod_v("p", None)), &nodes),
            "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, \
             1 node(s) had untolerated taint {evict: x}. \
             preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
        let mut p = pod_v("p", None);
        p["spec"]["tolerations"] = json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]);
        assert_eq!(schedule(&pod(p), &nodes).unwrap(), "node1");
        let mut wrong_value = pod_v("p", None);
        wrong_value["spec"]["tolerations"] = json!([{"key": "dedicated", "value": "cpu"}]);
        assert!(schedule(&pod(wrong_value), &nodes).is_err());
        let mut all = pod_v("p", None);
        all["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
        assert!(schedule(&pod(all), &nodes).is_ok());
    }

    #[test]
    fn toleration_matching_rules() {
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoSchedule".into(),
            time_added: None,
        };
        let t = |v: Value| -> Toleration { serde_json::from_value(v).unwrap() };
        assert!(toleration_tolerates(
            &t(json!({"key": "k", "value": "v"})),
            &taint
        ));
        assert!(toleration_tolerates(
            &t(json!({"key": "k", "operator": "Exists"})),
            &taint
        ));
        assert!(toleration_tolerates(
            &t(json!({"operator": "Exists"})),
            &taint
        ));
        assert!(!toleration_tolerates(
            &t(json!({"key": "k", "value": "w"})),
            &taint
        ));
        assert!(!toleration_tolerates(
            &t(json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})),
            &taint
        ));
        assert!(!toleration_tolerates(
            &t(json!({"key": "other", "operator": "Exists"})),
            &taint
        ));
        assert!(!toleration_tolerates(
            &t(json!({"key": "k", "operator": "Gt", "value": "v"})),
            &taint
        ));
    }

    #[test]
    fn prefer_no_schedule_only_scores() {
        let mut n1 = node("node1", "4", "8Gi", "110");
        n1["spec"]["taints"] = json!([{"key": "soft", "effect": "PreferNoSchedule"}]);
        let nodes = vec![ni(n1), ni(node("node2", "4", "8Gi", "110"))];
        let mut r = rng();
        for _ in 0..20 {
            assert_eq!(
                schedule_with_rng(&pod(pod_v("p", None)), &nodes, &mut r).unwrap(),
                "node2"
            );
        }
        // Alone, the softly tainted node is still used.
        assert_eq!(
            schedule(&pod(pod_v("p", None)), &nodes[..1]).unwrap(),
            "node1"
        );
        // A pod tolerating it sees both nodes alike on that score.
        let mut p = pod_v("p", None);
        p["spec"]["tolerations"] =
            json!([{"key": "soft", "operator": "Exists", "effect": "PreferNoSchedule"}]);
        let tolerating = pod(p.clone());
        let c = PodConstraints::new(&tolerating);
        let s = score_nodes(&c, &nodes, &[0, 1]);
        assert_eq!(s[0], s[1]);
    }

    #[test]
    fn resources_messages_and_sorting() {
        let mut nodes: Vec<NodeInfo> = (1..=10)
            .map(|i| ni(node(&format!("n{i}"), "1", "1Gi", "110")))
            .collect();
        nodes.push(ni(node("big-cpu", "64", "1Gi", "110")));
        nodes.push(ni(node("big-cpu2", "64", "1Gi", "110")));
        let mut p = pod_v("p", None);
        p["spec"]["containers"][0]["resources"] =
            json!({"requests": {"cpu": "2", "memory": "2Gi"}});
        // "10 Insufficient cpu" sorts before "12 Insufficient memory" and Go sorts bytewise.
        assert_eq!(
            err(&pod(p), &nodes),
            "0/12 nodes are available: 10 Insufficient cpu, 12 Insufficient memory. \
             preemption: 0/12 nodes are available: 12 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn bytewise_sort_of_counts() {
        let mut reasons = BTreeMap::new();
        reasons.insert("Insufficient cpu".to_string(), 2);
        reasons.insert("node(s) were unschedulable".to_string(), 10);
        assert_eq!(
            render_fit(12, None, &reasons, ""),
            "0/12 nodes are available: 10 node(s) were unschedulable, 2 Insufficient cpu."
        );
        assert_eq!(
            render_fit(
                3,
                Some("pod affinity terms conflict"),
                &reasons,
                "preemption: x"
            ),
            "0/3 nodes are available: pod affinity terms conflict. preemption: x"
        );
    }

    #[test]
    fn too_many_pods_ephemeral_and_extended() {
        let mut n = ni(node("node1", "4", "8Gi", "1"));
        n.add_pod(PodInfo::from_pod(&pod(pod_v("other", None))));
        let nodes = vec![n];
        assert_eq!(
            err(&pod(pod_v("p", None)), &nodes),
            "0/1 nodes are available: 1 Too many pods. \
             preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
        let mut p = pod_v("p", None);
        p["spec"]["containers"][0]["resources"] =
            json!({"requests": {"ephemeral-storage": "20Gi"}, "limits": {"example.com/gpu": "1"}});
        assert_eq!(
            err(&pod(p), &std_nodes(1)),
            "0/1 nodes are available: 1 Insufficient ephemeral-storage, 1 Insufficient example.com/gpu. \
             preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn assumed_pods_consume_resources() {
        let mut nodes = vec![
            ni(node("node1", "1", "8Gi", "110")),
            ni(node("node2", "1", "8Gi", "110")),
        ];
        let p1 = pod(pod_v("a", Some("600m")));
        let first = schedule(&p1, &nodes).unwrap();
        let i = nodes.iter().position(|n| n.name() == first).unwrap();
        nodes[i].add_pod(PodInfo::from_pod(&p1));
        let p2 = pod(pod_v("b", Some("600m")));
        let second = schedule(&p2, &nodes).unwrap();
        assert_ne!(first, second);
        let j = nodes.iter().position(|n| n.name() == second).unwrap();
        nodes[j].add_pod(PodInfo::from_pod(&p2));
        assert!(schedule(&pod(pod_v("c", Some("600m"))), &nodes).is_err());
        nodes[i].remove_pod("default/a");
        assert_eq!(
            schedule(&pod(pod_v("c", Some("600m"))), &nodes).unwrap(),
            first
        );
        assert_eq!(nodes[i].requested().milli_cpu, 0);
    }

    #[test]
    fn node_affinity_operators() {
        let labels: BTreeMap<String, String> = [("zone", "a"), ("cores", "8"), ("gpu", "yes")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let term = |exprs: Value, fields: Value| -> Term {
            Term::parse(
                &serde_json::from_value(json!({"matchExpressions": exprs, "matchFields": fields}))
                    .unwrap(),
            )
        };
        let e =
            |k: &str, op: &str, vals: Value| json!([{"key": k, "operator": op, "values": vals}]);
        let none = json!([]);
        assert!(term(e("zone", "In", json!(["a", "b"])), none.clone()).matches(&labels, "n"));
        assert!(!term(e("zone", "In", json!(["b"])), none.clone()).matches(&labels, "n"));
        assert!(term(e("zone", "NotIn", json!(["b"])), none.clone()).matches(&labels, "n"));
        assert!(term(e("missing", "NotIn", json!(["b"])), none.clone()).matches(&labels, "n"));
        assert!(!term(e("zone", "NotIn", json!(["a"])), none.clone()).matches(&labels, "n"));
        assert!(term(e("gpu", "Exists", json!(null)), none.clone()).matches(&labels, "n"));
        assert!(!term(e("gpu", "DoesNotExist", json!(null)), none.clone()).matches(&labels, "n"));
        assert!(
            term(e("missing", "DoesNotExist", json!(null)), none.clone()).matches(&labels, "n")
        );
        assert!(term(e("cores", "Gt", json!(["4"])), none.clone()).matches(&labels, "n"));
        assert!(!term(e("cores", "Gt", json!(["8"])), none.clone()).matches(&labels, "n"));
        assert!(term(e("cores", "Lt", json!(["16"])), none.clone()).matches(&labels, "n"));
        assert!(
            !term(e("zone", "Lt", json!(["16"])), none.clone()).matches(&labels, "n"),
            "non-numeric label"
        );
        assert!(
            !term(e("cores", "Gt", json!(["x"])), none.clone()).matches(&labels, "n"),
            "invalid term"
        );
        assert!(
            !term(e("zone", "In", json!([])), none.clone()).matches(&labels, "n"),
            "In needs values"
        );
        let f =
            |op: &str, v: &str| json!([{"key": "metadata.name", "operator": op, "values": [v]}]);
        assert!(term(none.clone(), f("In", "n")).matches(&labels, "n"));
        assert!(!term(none.clone(), f("In", "m")).matches(&labels, "n"));
        assert!(term(none.clone(), f("NotIn", "m")).matches(&labels, "n"));
        assert!(
            !term(none.clone(), none.clone()).matches(&labels, "n"),
            "an empty term matches nothing"
        );
    }

    #[test]
    fn required_terms_are_ored_and_expressions_anded() {
        let mut nodes = std_nodes(3);
        let mut n = node("node3", "4", "8Gi", "110");
        n["metadata"]["labels"]["zone"] = json!("b");
        n["metadata"]["labels"]["tier"] = json!("gold");
        nodes[2] = ni(n);
        let mut p = pod_v("p", None);
        p["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]},
                                  {"key": "tier", "operator": "In", "values": ["gold"]}]},
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["nowhere"]}]}
        ]}}});
        assert_eq!(schedule(&pod(p.clone()), &nodes).unwrap(), "node3");
        set(&mut p, "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchExpressions/1/values", json!(["silver"]));
        assert_eq!(
            err(&pod(p), &nodes),
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. \
             preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn match_fields_prefilter_like_daemonset_pods() {
        let mut nodes = std_nodes(3);
        nodes[0] = ni(node("node1", "100m", "8Gi", "110"));
        let mut p = pod_v("ds-x", Some("500m"));
        p["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node1"]}]}]}}});
        assert_eq!(
            err(&pod(p.clone()), &nodes),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. \
             preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, \
             2 Preemption is not helpful for scheduling."
        );
        set(&mut p, "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchFields/0/values", json!(["node2"]));
        assert_eq!(schedule(&pod(p.clone()), &nodes).unwrap(), "node2");
        // Two name requirements with disjoint values in one term conflict.
        p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchFields"] = json!([
            {"key": "metadata.name", "operator": "In", "values": ["node1"]},
            {"key": "metadata.name", "operator": "In", "values": ["node2"]}]);
        assert_eq!(
            err(&pod(p), &nodes),
            "0/3 nodes are available: pod affinity terms conflict. \
             preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn preferred_node_affinity_wins() {
        let mut nodes = std_nodes(3);
        let mut n = node("node2", "4", "8Gi", "110");
        n["metadata"]["labels"]["disk"] = json!("ssd");
        nodes[1] = ni(n);
        let mut p = pod_v("p", None);
        p["spec"]["affinity"] = json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}});
        let mut r = rng();
        for _ in 0..20 {
            assert_eq!(
                schedule_with_rng(&pod(p.clone()), &nodes, &mut r).unwrap(),
                "node2"
            );
        }
    }

    #[test]
    fn host_port_conflicts() {
        let with_port = |name: &str, port: i32, proto: Option<&str>, ip: Option<&str>| {
            let mut v = pod_v(name, None);
            let mut cp = json!({"containerPort": 80, "hostPort": port});
            if let Some(p) = proto {
                cp["protocol"] = json!(p);
            }
            if let Some(ip) = ip {
                cp["hostIP"] = json!(ip);
            }
            v["spec"]["containers"][0]["ports"] = json!([cp]);
            pod(v)
        };
        let mut nodes = std_nodes(1);
        nodes[0].add_pod(PodInfo::from_pod(&with_port("a", 8080, None, None)));
        assert_eq!(
            err(&with_port("b", 8080, Some("TCP"), None), &nodes),
            "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports. \
             preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
        assert!(schedule(&with_port("c", 8080, Some("UDP"), None), &nodes).is_ok());
        assert!(schedule(&with_port("d", 8081, None, None), &nodes).is_ok());
        assert!(
            schedule(&with_port("e", 8080, None, Some("10.0.0.1")), &nodes).is_err(),
            "wildcard in use"
        );
        let mut nodes = std_nodes(1);
        nodes[0].add_pod(PodInfo::from_pod(&with_port(
            "a",
            8080,
            None,
            Some("10.0.0.1"),
        )));
        assert!(schedule(&with_port("f", 8080, None, Some("10.0.0.2")), &nodes).is_ok());
        assert!(schedule(&with_port("g", 8080, None, None), &nodes).is_err());
        nodes[0].remove_pod("default/a");
        assert!(schedule(&with_port("g", 8080, None, None), &nodes).is_ok());
    }

    #[test]
    fn node_name_preset() {
        let mut p = pod_v("p", None);
        p["spec"]["nodeName"] = json!("node2");
        assert_eq!(schedule(&pod(p.clone()), &std_nodes(3)).unwrap(), "node2");
        p["spec"]["nodeName"] = json!("node9");
        assert_eq!(
            err(&pod(p), &std_nodes(2)),
            "0/2 nodes are available: 2 node(s) didn't match the requested node name. \
             preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn preemption_policy_never_and_priorities() {
        let mut p = pod_v("p", Some("8"));
        p["spec"]["preemptionPolicy"] = json!("Never");
        assert_eq!(
            err(&pod(p), &std_nodes(3)),
            "0/3 nodes are available: 3 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
        );
        // A higher-priority pod that would not fit even without the lower-priority pods.
        let mut nodes = std_nodes(1);
        let mut low = pod_v("low", Some("1"));
        low["spec"]["priority"] = json!(0);
        nodes[0].add_pod(PodInfo::from_pod(&pod(low)));
        let mut high = pod_v("high", Some("6"));
        high["spec"]["priority"] = json!(1000);
        assert_eq!(
            err(&pod(high), &nodes),
            "0/1 nodes are available: 1 Insufficient cpu. \
             preemption: 0/1 nodes are available: 1 Insufficient cpu."
        );
    }

    #[test]
    fn least_allocated_prefers_emptier_nodes() {
        let mut nodes = std_nodes(2);
        nodes[0].add_pod(PodInfo::from_pod(&pod(pod_v("busy", Some("3")))));
        let mut r = rng();
        for i in 0..20 {
            let p = pod(pod_v(&format!("p{i}"), Some("100m")));
            assert_eq!(schedule_with_rng(&p, &nodes, &mut r).unwrap(), "node2");
        }
        let x = pod(pod_v("x", Some("1")));
        let c = PodConstraints::new(&x);
        // node2: cpu (4000-1000)/4000 → 75; memory (8Gi-200Mi)/8Gi → 97; mean 86.
        assert_eq!(least_allocated_score(&c, &nodes[1]), 86);
        // Balanced: cpu 1/4 = .25, memory 0 → std .125 → 87.
        assert_eq!(balanced_allocation_score(&c, &nodes[1]), 87);
    }

    #[test]
    fn replicas_spread_across_equal_nodes() {
        let mut nodes = std_nodes(3);
        let mut r = rng();
        for i in 0..9 {
            let p = owned(&format!("web-{i}"), "rs-uid");
            let n = schedule_with_rng(&p, &nodes, &mut r).unwrap();
            let k = nodes.iter().position(|x| x.name() == n).unwrap();
            nodes[k].add_pod(PodInfo::from_pod(&p));
        }
        for n in &nodes {
            assert_eq!(n.owner_count("default/rs-uid"), 3, "{}", n.name());
        }
    }

    #[test]
    fn ties_are_broken_randomly() {
        let nodes = std_nodes(3);
        let mut seen = HashSet::new();
        let mut r = rng();
        for _ in 0..100 {
            seen.insert(schedule_with_rng(&pod(pod_v("p", None)), &nodes, &mut r).unwrap());
        }
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn pod_requests_with_init_sidecars_overhead_and_limits() {
        let p = pod(json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {
                "initContainers": [
                    {"name": "init", "image": "i", "resources": {"requests": {"cpu": "2", "memory": "100Mi"}}},
                    {"name": "side", "image": "i", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}}
                ],
                "containers": [
                    {"name": "a", "image": "i", "resources": {"requests": {"cpu": "200m"}, "limits": {"memory": "1Gi"}}},
                    {"name": "b", "image": "i"}
                ],
                "overhead": {"cpu": "10m"}
            }
        }));
        let r = pod_requests(&p, false);
        // max(200m + 100m sidecar, 2 init) + 10m overhead.
        assert_eq!(r.milli_cpu, 2010);
        // Containers: 1Gi (limit as request) vs init 100Mi.
        assert_eq!(r.memory, 1024 * 1024 * 1024);
        let nz = pod_requests(&p, true);
        // Container b counts at 100m/200Mi for scoring.
        assert_eq!(nz.milli_cpu, 2010);
        assert_eq!(
            nz.memory,
            1024 * 1024 * 1024 + DEFAULT_MEMORY_REQUEST + DEFAULT_MEMORY_REQUEST
        );
    }

    #[test]
    fn feasible_node_sampling() {
        assert_eq!(num_feasible_nodes_to_find(3), 3);
        assert_eq!(num_feasible_nodes_to_find(99), 99);
        assert_eq!(num_feasible_nodes_to_find(100), 100);
        assert_eq!(num_feasible_nodes_to_find(1000), 420);
        assert_eq!(num_feasible_nodes_to_find(5000), 500);
        assert_eq!(num_feasible_nodes_to_find(10000), 500);
    }

    #[test]
    fn missing_pods_allocatable_defaults_to_110() {
        let mut v = node("n", "4", "8Gi", "1");
        v["status"]["allocatable"]
            .as_object_mut()
            .unwrap()
            .remove("pods");
        let n = ni(v);
        assert_eq!(n.allowed_pods, DEFAULT_MAX_PODS);
    }

    #[test]
    fn same_scheduling_inputs_ignores_heartbeats() {
        let a = node("n", "4", "8Gi", "110");
        let mut b = a.clone();
        b["status"]["conditions"][0]["lastHeartbeatTime"] = json!("2024-01-01T00:00:00Z");
        assert!(ni(a.clone()).same_scheduling_inputs(&ni(b)));
        let mut c = a.clone();
        c["spec"]["unschedulable"] = json!(true);
        assert!(!ni(a.clone()).same_scheduling_inputs(&ni(c)));
        let mut d = a.clone();
        d["metadata"]["labels"]["x"] = json!("y");
        assert!(!ni(a).same_scheduling_inputs(&ni(d)));
    }
}
