//! What a real node reports about its host: capacity and allocatable (CPU, memory, ephemeral
//! storage, pods), the pressure conditions the kubelet derives from its eviction thresholds, and
//! the Ready condition from the container runtime's own status.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::eviction::EvictionThresholds;
use crate::node::node_condition;

/// PIDPressure when fewer than this share of process ids is free.
pub const PID_AVAILABLE_MIN_PERCENT: u64 = 10;

/// One reading of the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    pub cpus: u64,
    pub memory_total: u64,
    pub memory_available: u64,
    /// Bytes of the filesystem holding the data dir.
    pub disk_total: u64,
    pub disk_available: u64,
    pub pid_max: u64,
    pub processes: u64,
}

fn meminfo_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Parses `/sys/devices/system/cpu/online` (`0-3,6`): the number of CPUs listed.
pub fn count_cpu_list(s: &str) -> u64 {
    s.trim()
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('-') {
            Some((a, b)) => match (a.parse::<u64>(), b.parse::<u64>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 0,
            },
            None => u64::from(p.parse::<u64>().is_ok()),
        })
        .sum()
}

impl HostFacts {
    /// Reads /proc and the filesystem of `data_dir`; unreadable parts read as 0.
    pub fn read(data_dir: &Path) -> HostFacts {
        let cpus = std::fs::read_to_string("/sys/devices/system/cpu/online")
            .map(|s| count_cpu_list(&s))
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get() as u64)
                    .unwrap_or(1)
            });
        let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let (disk_total, disk_available) = rustix::fs::statvfs(data_dir)
            .map(|s| (s.f_blocks * s.f_frsize, s.f_bavail * s.f_frsize))
            .unwrap_or((0, 0));
        let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(32768);
        let processes = std::fs::read_dir("/proc")
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .bytes()
                            .all(|b| b.is_ascii_digit())
                    })
                    .count() as u64
            })
            .unwrap_or(0);
        HostFacts {
            cpus,
            memory_total: meminfo_kib(&mem, "MemTotal").unwrap_or(0) * 1024,
            memory_available: meminfo_kib(&mem, "MemAvailable").unwrap_or(0) * 1024,
            disk_total,
            disk_available,
            pid_max,
            processes,
        }
    }

    pub fn pid_pressure(&self) -> bool {
        self.pid_max > 0
            && (self.pid_max.saturating_sub(self.processes)) * 100
                < self.pid_max * PID_AVAILABLE_MIN_PERCENT
    }

    /// `(capacity, allocatable)` as the kubelet computes them with no reservations: allocatable
    /// is capacity minus the hard eviction thresholds.
    pub fn resources(&self, max_pods: u32, thresholds: &EvictionThresholds) -> (Value, Value) {
        let capacity = json!({
            "cpu": self.cpus.to_string(),
            "memory": format!("{}Ki", self.memory_total / 1024),
            "ephemeral-storage": format!("{}Ki", self.disk_total / 1024),
            "pods": max_pods.to_string(),
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
        });
        let mem_alloc = self
            .memory_total
            .saturating_sub(thresholds.memory_available.bytes(self.memory_total))
            / 1024;
        let disk_alloc = self
            .disk_total
            .saturating_sub(thresholds.nodefs_available.bytes(self.disk_total));
        let allocatable = json!({
            "cpu": self.cpus.to_string(),
            "memory": format!("{mem_alloc}Ki"),
            "ephemeral-storage": disk_alloc.to_string(),
            "pods": max_pods.to_string(),
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
        });
        (capacity, allocatable)
    }
}

/// Why the runtime is not ready, from CRI `Status` (None: RuntimeReady and NetworkReady).
pub fn runtime_not_ready(status: Option<&k8s_cri::v1::RuntimeStatus>) -> Option<String> {
    let Some(status) = status else {
        return Some("container runtime status check may not have completed yet".into());
    };
    let mut problems = Vec::new();
    for want in ["RuntimeReady", "NetworkReady"] {
        match status.conditions.iter().find(|c| c.r#type == want) {
            Some(c) if c.status => {}
            Some(c) => {
                let which = if want == "RuntimeReady" {
                    "container runtime is down"
                } else {
                    "container runtime network not ready"
                };
                problems.push(format!(
                    "{which}: {want}=false reason:{} message:{}",
                    c.reason, c.message
                ));
            }
            None => problems.push(format!("container runtime did not report {want}")),
        }
    }
    (!problems.is_empty()).then(|| problems.join(", "))
}

/// The four node conditions from a host reading (against the hard eviction thresholds) and
/// the runtime's readiness; transition times carry over from `old_status` while a condition
/// keeps its status.
pub fn conditions(
    facts: &HostFacts,
    thresholds: &EvictionThresholds,
    not_ready: Option<&str>,
    old_status: &Value,
    now: DateTime<Utc>,
) -> Value {
    let pair = |pressure: bool, yes: (&str, &str), no: (&str, &str)| {
        if pressure {
            ("True", yes.0.to_string(), yes.1.to_string())
        } else {
            ("False", no.0.to_string(), no.1.to_string())
        }
    };
    let mem = pair(
        thresholds.memory_pressure(facts),
        (
            "KubeletHasInsufficientMemory",
            "kubelet has insufficient memory available",
        ),
        (
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
    );
    let disk = pair(
        thresholds.disk_pressure(facts),
        ("KubeletHasDiskPressure", "kubelet has disk pressure"),
        ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    );
    let pid = pair(
        facts.pid_pressure(),
        (
            "KubeletHasInsufficientPID",
            "kubelet has insufficient PID available",
        ),
        (
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
    );
    let ready = match not_ready {
        None => (
            "True",
            "KubeletReady".to_string(),
            "kubelet is posting ready status".to_string(),
        ),
        Some(why) => ("False", "KubeletNotReady".to_string(), why.to_string()),
    };
    let c = |kind: &str, (status, reason, message): (&str, String, String)| {
        node_condition(old_status, kind, status, &reason, &message, now)
    };
    json!([
        c("MemoryPressure", mem),
        c("DiskPressure", disk),
        c("PIDPressure", pid),
        c("Ready", ready),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> HostFacts {
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

    #[test]
    fn cpu_lists_count() {
        assert_eq!(count_cpu_list("0-1\n"), 2);
        assert_eq!(count_cpu_list("0-3,6,8-9"), 7);
        assert_eq!(count_cpu_list("0"), 1);
        assert_eq!(count_cpu_list(""), 0);
    }

    #[test]
    fn meminfo_parses() {
        let t = "MemTotal:       24576000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(meminfo_kib(t, "MemTotal"), Some(24_576_000));
        assert_eq!(meminfo_kib(t, "MemAvailable"), Some(20_000_000));
        assert_eq!(meminfo_kib(t, "Nope"), None);
    }

    #[test]
    fn pressure_follows_the_eviction_thresholds() {
        let t = EvictionThresholds::default();
        let mut f = healthy();
        assert!(!t.memory_pressure(&f) && !t.disk_pressure(&f) && !f.pid_pressure());
        f.memory_available = 99 << 20;
        assert!(t.memory_pressure(&f));
        f.disk_available = 9 << 30;
        assert!(t.disk_pressure(&f));
        f.processes = f.pid_max - 1000;
        assert!(f.pid_pressure());
    }

    #[test]
    fn allocatable_subtracts_eviction_thresholds() {
        let (cap, alloc) = healthy().resources(110, &EvictionThresholds::default());
        assert_eq!(cap["cpu"], "2");
        assert_eq!(cap["memory"], format!("{}Ki", 24u64 << 20));
        assert_eq!(alloc["memory"], format!("{}Ki", (24u64 << 20) - 102_400));
        assert_eq!(cap["ephemeral-storage"], format!("{}Ki", 100u64 << 20));
        assert_eq!(
            alloc["ephemeral-storage"],
            ((100u64 << 30) * 9 / 10).to_string()
        );
        assert_eq!(alloc["pods"], "110");
    }

    #[test]
    fn conditions_report_pressure_and_runtime_readiness() {
        let now = Utc::now();
        let mut f = healthy();
        let t = EvictionThresholds::default();
        let c = conditions(&f, &t, None, &Value::Null, now);
        let kinds: Vec<_> = c
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].clone())
            .collect();
        assert_eq!(
            kinds,
            ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
        );
        assert_eq!(c[3]["status"], "True");
        assert_eq!(c[3]["reason"], "KubeletReady");
        f.memory_available = 0;
        let c2 = conditions(
            &f,
            &t,
            Some("container runtime network not ready"),
            &json!({"conditions": c}),
            now,
        );
        assert_eq!(c2[0]["status"], "True");
        assert_eq!(c2[0]["reason"], "KubeletHasInsufficientMemory");
        assert_eq!(c2[3]["status"], "False");
        assert_eq!(c2[3]["reason"], "KubeletNotReady");
        // Unchanged conditions keep their transition time.
        assert_eq!(c2[1]["lastTransitionTime"], c[1]["lastTransitionTime"]);
    }

    #[test]
    fn runtime_readiness_from_cri_status() {
        use k8s_cri::v1::{RuntimeCondition, RuntimeStatus};
        let cond = |t: &str, ok: bool| RuntimeCondition {
            r#type: t.into(),
            status: ok,
            reason: if ok { "" } else { "NetworkPluginNotReady" }.into(),
            message: if ok { "" } else { "cni plugin not initialized" }.into(),
        };
        let ok = RuntimeStatus {
            conditions: vec![cond("RuntimeReady", true), cond("NetworkReady", true)],
        };
        assert_eq!(runtime_not_ready(Some(&ok)), None);
        let bad = RuntimeStatus {
            conditions: vec![cond("RuntimeReady", true), cond("NetworkReady", false)],
        };
        assert_eq!(
            runtime_not_ready(Some(&bad)).unwrap(),
            "container runtime network not ready: NetworkReady=false \
             reason:NetworkPluginNotReady message:cni plugin not initialized"
        );
        assert!(runtime_not_ready(None).is_some());
    }
}
