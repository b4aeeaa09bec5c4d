//! What the scheduler keeps of nodes and of the pods on them (`framework.NodeInfo`): the
//! effective taints, allocatable, requested resources, host ports and owner counts the
//! filters and scores read.

use super::resources::{pod_requests, Resources};
use super::{DEFAULT_MAX_PODS, TAINT_NODE_NOT_READY, TAINT_NODE_UNREACHABLE};
use crate::quantity;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use std::collections::HashMap;

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
    pub(super) node: Node,
    pub(super) name: String,
    /// `spec.taints` plus the NoSchedule taint the node's Ready condition implies.
    pub(super) taints: Vec<Taint>,
    pub(super) unschedulable: bool,
    pub(super) allocatable: Resources,
    pub(super) allowed_pods: i64,
    pub(super) pods: HashMap<String, PodInfo>,
    pub(super) requested: Resources,
    pub(super) non_zero_cpu: i64,
    pub(super) non_zero_memory: i64,
    pub(super) used_ports: HashMap<HostPort, u32>,
    pub(super) owner_counts: HashMap<String, u32>,
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
pub(super) fn readiness_taint_key(node: &Node) -> Option<&'static str> {
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
