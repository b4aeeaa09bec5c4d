//! The kubelet's hard eviction, as upstream's eviction manager does it: thresholds
//! (`--kubelet-arg eviction-hard=memory.available<100Mi,nodefs.available<10%`), which signals
//! are crossed for a host reading, the ranking of the node's pods for a starved resource, and
//! the `Evicted` message. Pure functions; the kubelet's loop (`kubelet::eviction_loop`) reads
//! the host and the runtime's usage and evicts the first pod of the ranking, one at a time.

use k8s_openapi::api::core::v1::Pod;

use crate::host::HostFacts;
use crate::Error;

/// Pods at or above this priority are critical and never evicted (upstream's
/// `SystemCriticalPriority`).
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// The minimum to keep available: an absolute quantity or a share of capacity.
#[derive(Debug, Clone, PartialEq)]
pub enum ThresholdValue {
    /// Bytes, and the quantity as the user wrote it (for messages).
    Quantity(u64, String),
    /// Percent of capacity.
    Percent(f64),
}

impl ThresholdValue {
    /// The threshold in bytes for a resource of `capacity` bytes.
    pub fn bytes(&self, capacity: u64) -> u64 {
        match self {
            ThresholdValue::Quantity(b, _) => *b,
            ThresholdValue::Percent(p) => (capacity as f64 * p / 100.0).ceil() as u64,
        }
    }

    /// The threshold as upstream prints it in the eviction message.
    pub fn display(&self, capacity: u64) -> String {
        match self {
            ThresholdValue::Quantity(_, s) => s.clone(),
            ThresholdValue::Percent(_) => format_bytes(self.bytes(capacity)),
        }
    }
}

/// The kubelet's hard eviction thresholds (defaults: upstream's `memory.available<100Mi`,
/// `nodefs.available<10%`; `imagefs` is the same filesystem here).
#[derive(Debug, Clone, PartialEq)]
pub struct EvictionThresholds {
    pub memory_available: ThresholdValue,
    pub nodefs_available: ThresholdValue,
}

impl Default for EvictionThresholds {
    fn default() -> Self {
        EvictionThresholds {
            memory_available: ThresholdValue::Quantity(100 << 20, "100Mi".into()),
            nodefs_available: ThresholdValue::Percent(10.0),
        }
    }
}

fn parse_value(signal: &str, v: &str) -> Result<ThresholdValue, Error> {
    let bad = || {
        Error::Config(format!(
            "invalid eviction threshold {signal}<{v}: use a quantity such as 100Mi or a \
             percentage such as 10%"
        ))
    };
    if let Some(p) = v.strip_suffix('%') {
        let p: f64 = p.trim().parse().map_err(|_| bad())?;
        if !(0.0..=100.0).contains(&p) {
            return Err(bad());
        }
        return Ok(ThresholdValue::Percent(p));
    }
    let b = skiff_api::validation::parse_quantity(v).ok_or_else(bad)?;
    if b < 0.0 {
        return Err(bad());
    }
    Ok(ThresholdValue::Quantity(
        b.ceil() as u64,
        v.trim().to_string(),
    ))
}

impl EvictionThresholds {
    /// Parses an `eviction-hard` value (`memory.available<100Mi,nodefs.available<10%`). As
    /// upstream's kubelet (without `mergeDefaultEvictionSettings`), the value replaces the
    /// default set: a signal it does not name is set to zero, i.e. never crossed.
    pub fn parse_hard(spec: &str) -> Result<EvictionThresholds, Error> {
        let mut t = EvictionThresholds {
            memory_available: ThresholdValue::Quantity(0, "0".into()),
            nodefs_available: ThresholdValue::Quantity(0, "0".into()),
        };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (signal, value) = part.split_once('<').ok_or_else(|| {
                Error::Config(format!(
                    "invalid eviction threshold {part:?}: write signal<quantity, e.g. \
                     memory.available<100Mi"
                ))
            })?;
            let signal = signal.trim();
            let value = parse_value(signal, value.trim())?;
            match signal {
                "memory.available" => t.memory_available = value,
                "nodefs.available" | "imagefs.available" => t.nodefs_available = value,
                "nodefs.inodesFree" | "imagefs.inodesFree" | "pid.available" => {
                    tracing::warn!(signal, "eviction signal not supported by skiff; ignored")
                }
                other => {
                    return Err(Error::Config(format!(
                        "unknown eviction signal {other:?}: use memory.available or \
                         nodefs.available"
                    )))
                }
            }
        }
        Ok(t)
    }

    /// The thresholds from k3s-style `--kubelet-arg` values (`eviction-hard=…`, with or
    /// without leading dashes); the last `eviction-hard` wins, other kubelet flags are
    /// reported as ignored.
    pub fn from_kubelet_args(args: &[String]) -> Result<EvictionThresholds, Error> {
        let mut t = EvictionThresholds::default();
        for arg in args {
            let arg = arg.trim().trim_start_matches('-');
            let (key, value) = arg.split_once('=').ok_or_else(|| {
                Error::Config(format!(
                    "invalid --kubelet-arg {arg:?}: write key=value, e.g. \
                     eviction-hard=memory.available<100Mi"
                ))
            })?;
            match key {
                "eviction-hard" => t = EvictionThresholds::parse_hard(value)?,
                other => tracing::warn!(
                    flag = other,
                    "kubelet flag not supported by skiff (only eviction-hard is); ignored"
                ),
            }
        }
        Ok(t)
    }

    pub fn memory_pressure(&self, f: &HostFacts) -> bool {
        f.memory_total > 0 && f.memory_available < self.memory_available.bytes(f.memory_total)
    }

    pub fn disk_pressure(&self, f: &HostFacts) -> bool {
        f.disk_total > 0 && f.disk_available < self.nodefs_available.bytes(f.disk_total)
    }
}

/// `Quantity.String()` of a byte count in binary SI: the largest exact unit (`89328Ki`,
/// `300Mi`), as upstream's eviction messages print quantities.
pub fn format_bytes(b: u64) -> String {
    for (shift, unit) in [(40, "Ti"), (30, "Gi"), (20, "Mi"), (10, "Ki")] {
        if b != 0 && b.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", b >> shift);
        }
    }
    b.to_string()
}

/// The starved resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Memory,
    EphemeralStorage,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Memory => "memory",
            Resource::EphemeralStorage => "ephemeral-storage",
        }
    }
}

/// A crossed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Starved {
    pub resource: Resource,
    /// The threshold as printed.
    pub threshold: String,
    pub available: u64,
}

/// The crossed thresholds of a host reading, memory first (upstream evicts for memory first).
pub fn starved(f: &HostFacts, t: &EvictionThresholds) -> Vec<Starved> {
    let mut out = Vec::new();
    if t.memory_pressure(f) {
        out.push(Starved {
            resource: Resource::Memory,
            threshold: t.memory_available.display(f.memory_total),
            available: f.memory_available,
        });
    }
    if t.disk_pressure(f) {
        out.push(Starved {
            resource: Resource::EphemeralStorage,
            threshold: t.nodefs_available.display(f.disk_total),
            available: f.disk_available,
        });
    }
    out
}

/// One container's use of the starved resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerUse {
    pub name: String,
    pub usage: u64,
    pub request: u64,
}

/// A pod the kubelet may evict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub uid: String,
    pub priority: i32,
    pub containers: Vec<ContainerUse>,
}

impl Candidate {
    /// The pod's view for `resource`: priority, and per container the request from the spec
    /// and the usage from `usage(container name)` (0 when the runtime reported none).
    pub fn from_pod(pod: &Pod, resource: Resource, usage: impl Fn(&str) -> u64) -> Candidate {
        let spec = pod.spec.clone().unwrap_or_default();
        let containers = spec
            .containers
            .iter()
            .map(|c| ContainerUse {
                name: c.name.clone(),
                usage: usage(&c.name),
                request: crate::kubelet::linux::request(c, resource.as_str())
                    .and_then(crate::kubelet::linux::value)
                    .map_or(0, |v| v.max(0) as u64),
            })
            .collect();
        Candidate {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            priority: spec.priority.unwrap_or(0),
            containers,
        }
    }

    pub fn usage(&self) -> u64 {
        self.containers.iter().map(|c| c.usage).sum()
    }

    pub fn request(&self) -> u64 {
        self.containers.iter().map(|c| c.request).sum()
    }

    fn exceeds_requests(&self) -> bool {
        self.usage() > self.request()
    }

    /// Usage above the request (negative below it).
    fn above_request(&self) -> i128 {
        i128::from(self.usage()) - i128::from(self.request())
    }
}

/// Upstream's ranking for memory and disk pressure: pods using more than they requested first
/// (a BestEffort pod requests nothing, so any use counts), then lower priority, then the
/// larger use above the request. Critical pods are left out.
pub fn rank(mut pods: Vec<Candidate>) -> Vec<Candidate> {
    pods.retain(|p| p.priority < SYSTEM_CRITICAL_PRIORITY);
    pods.sort_by(|a, b| {
        b.exceeds_requests()
            .cmp(&a.exceeds_requests())
            .then(a.priority.cmp(&b.priority))
            .then(b.above_request().cmp(&a.above_request()))
            .then_with(|| a.uid.cmp(&b.uid))
    });
    pods
}

/// The status message of a pod evicted for `starved` (upstream's wording).
pub fn message(starved: &Starved, pod: &Candidate) -> String {
    let mut m = format!(
        "The node was low on resource: {}. Threshold quantity: {}, available: {}. ",
        starved.resource.as_str(),
        starved.threshold,
        format_bytes(starved.available)
    );
    for c in pod.containers.iter().filter(|c| c.usage > c.request) {
        m.push_str(&format!(
            "Container {} was using {}, request is {}, has larger consumption of {}. ",
            c.name,
            format_bytes(c.usage),
            format_bytes(c.request),
            starved.resource.as_str()
        ));
    }
    m
}

/// What to do for one host reading: the pod to evict (first of the ranking for the first
/// starved resource) and its message; None when no threshold is crossed or nothing may go.
pub fn plan(
    facts: &HostFacts,
    thresholds: &EvictionThresholds,
    candidates: impl Fn(Resource) -> Vec<Candidate>,
) -> Option<(String, Starved, String)> {
    for s in starved(facts, thresholds) {
        if let Some(first) = rank(candidates(s.resource)).into_iter().next() {
            let msg = message(&s, &first);
            return Some((first.uid, s, msg));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> HostFacts {
        HostFacts {
            cpus: 2,
            memory_total: 24 << 30,
            memory_available: 20 << 30,
            disk_total: 100 << 30,
            disk_available: 50 << 30,
            pid_max: 4_194_304,
            processes: 300,
        }
    }

    fn order_of(pods: &[Candidate]) -> Vec<&str> {
        pods.iter().map(|p| p.uid.as_str()).collect()
    }

    fn cand(uid: &str, priority: i32, uses: &[(u64, u64)]) -> Candidate {
        Candidate {
            uid: uid.into(),
            priority,
            containers: uses
                .iter()
                .enumerate()
                .map(|(i, (usage, request))| ContainerUse {
                    name: format!("c{i}"),
                    usage: *usage,
                    request: *request,
                })
                .collect(),
        }
    }

    #[test]
    fn thresholds_parse_like_the_kubelet_flag() {
        let t =
            EvictionThresholds::parse_hard("memory.available<1Gi, nodefs.available<5%").unwrap();
        assert_eq!(
            t.memory_available,
            ThresholdValue::Quantity(1 << 30, "1Gi".into())
        );
        assert_eq!(t.nodefs_available, ThresholdValue::Percent(5.0));
        // As upstream, a signal the value does not name is zero: never crossed.
        let t = EvictionThresholds::parse_hard("memory.available<500Mi").unwrap();
        assert_eq!(t.nodefs_available.bytes(1 << 40), 0);
        let mut full = HostFacts {
            disk_total: 100 << 30,
            disk_available: 0,
            ..facts()
        };
        assert!(!t.disk_pressure(&full));
        full.disk_available = 5 << 30;
        assert!(EvictionThresholds::default().disk_pressure(&full));
        assert!(EvictionThresholds::parse_hard("memory.available>1Gi").is_err());
        assert!(EvictionThresholds::parse_hard("memory.available<lots").is_err());
        assert!(EvictionThresholds::parse_hard("cpu.available<1").is_err());
        assert!(EvictionThresholds::parse_hard("nodefs.available<150%").is_err());
        let args = vec![
            "max-pods=10".to_string(),
            "--eviction-hard=memory.available<2Gi".to_string(),
        ];
        let t = EvictionThresholds::from_kubelet_args(&args).unwrap();
        assert_eq!(t.memory_available.bytes(0), 2 << 30);
        assert!(EvictionThresholds::from_kubelet_args(&["eviction-hard".into()]).is_err());
        assert_eq!(
            EvictionThresholds::from_kubelet_args(&[]).unwrap(),
            EvictionThresholds::default()
        );
    }

    #[test]
    fn crossed_thresholds_memory_first() {
        let t = EvictionThresholds::default();
        let mut f = facts();
        assert!(starved(&f, &t).is_empty());
        f.memory_available = 99 << 20;
        f.disk_available = 9 << 30;
        let s = starved(&f, &t);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].resource, Resource::Memory);
        assert_eq!(s[0].threshold, "100Mi");
        assert_eq!(s[1].resource, Resource::EphemeralStorage);
        assert_eq!(s[1].threshold, "10Gi");
        // A percentage of memory works too.
        let t = EvictionThresholds::parse_hard("memory.available<50%").unwrap();
        let mut f = facts();
        f.memory_available = 11 << 30;
        assert_eq!(starved(&f, &t)[0].threshold, "12Gi");
    }

    #[test]
    fn ranking_puts_over_request_then_low_priority_then_big_users_first() {
        let pods = vec![
            // within its request
            cand("guaranteed", 0, &[(100, 200)]),
            // over its request, high priority
            cand("burst-high", 1000, &[(300, 100)]),
            // best effort, small
            cand("besteffort-small", 0, &[(50, 0)]),
            // best effort, big
            cand("besteffort-big", 0, &[(500, 0)]),
            // over its request, low priority
            cand("burst-low", -5, &[(150, 100)]),
            cand("critical", SYSTEM_CRITICAL_PRIORITY, &[(10_000, 0)]),
        ];
        let ranked = rank(pods);
        assert_eq!(
            order_of(&ranked),
            [
                "burst-low",
                "besteffort-big",
                "besteffort-small",
                "burst-high",
                "guaranteed"
            ]
        );
    }

    #[test]
    fn plan_evicts_the_first_ranked_pod_with_upstreams_message() {
        let t = EvictionThresholds::default();
        let pods = |_r: Resource| {
            vec![
                cand("a", 0, &[(10 << 20, 64 << 20)]),
                cand("b", 0, &[(300 << 20, 0)]),
            ]
        };
        assert_eq!(plan(&facts(), &t, pods), None);
        let mut f = facts();
        f.memory_available = 89_328 * 1024;
        let (uid, s, msg) = plan(&f, &t, pods).unwrap();
        assert_eq!(uid, "b");
        assert_eq!(s.resource, Resource::Memory);
        assert_eq!(
            msg,
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: \
             89328Ki. Container c0 was using 300Mi, request is 0, has larger consumption of \
             memory. "
        );
        // Nothing evictable: no plan.
        assert_eq!(plan(&f, &t, |_| vec![]), None);
    }

    #[test]
    fn candidates_read_requests_and_priority_from_the_pod() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "uid": "u1"},
            "spec": {"priority": 7, "containers": [
                {"name": "a", "resources": {"requests": {"memory": "64Mi"}}},
                {"name": "b"}
            ]}
        }))
        .unwrap();
        let c = Candidate::from_pod(&pod, Resource::Memory, |n| if n == "a" { 1 } else { 2 });
        assert_eq!(c.uid, "u1");
        assert_eq!(c.priority, 7);
        assert_eq!(c.request(), 64 << 20);
        assert_eq!(c.usage(), 3);
        assert_eq!(format_bytes(64 << 20), "64Mi");
        assert_eq!(format_bytes(1000), "1000");
    }
}
