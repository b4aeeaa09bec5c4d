//! The resource amounts the scheduler accounts for and a pod's effective requests
//! (`resourcehelper.PodRequests`), which NodeResourcesFit filters and scores on.

use super::{DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST};
use crate::quantity;
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

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
    pub(super) fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }

    pub(super) fn add(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_add(o.milli_cpu);
        self.memory = self.memory.saturating_add(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_add(o.ephemeral_storage);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = e.saturating_add(*v);
        }
    }

    pub(super) fn sub(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_sub(o.milli_cpu);
        self.memory = self.memory.saturating_sub(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_sub(o.ephemeral_storage);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = e.saturating_sub(*v);
        }
    }

    pub(super) fn max_with(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }

    /// Adds one resource list entry (`cpu: 100m`); names the scheduler ignores are skipped.
    pub(super) fn add_named(&mut self, name: &str, q: &Quantity) {
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

    pub(super) fn from_list(list: &BTreeMap<String, Quantity>) -> Resources {
        let mut r = Resources::default();
        for (k, q) in list {
            r.add_named(k, q);
        }
        r
    }
}

/// `schedutil.IsScalarResourceName`: extended resources, hugepages, attachable volumes.
pub(super) fn is_scalar_resource_name(name: &str) -> bool {
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
pub(super) fn container_requests(c: &Container, non_zero: bool) -> Resources {
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
