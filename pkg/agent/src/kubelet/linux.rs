//! Pure Linux settings the kubelet derives from a pod spec for CRI: QoS class, cgroup parent,
//! namespace modes, sysctls, container resources (cpu shares/quota, memory, oom_score_adj) and
//! security contexts; plus the resource quantity arithmetic the downward API needs.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use k8s_cri::v1::{
    Capability, Int64Value, LinuxContainerConfig, LinuxContainerResources,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
    NamespaceMode, NamespaceOption, SecurityProfile,
};
use k8s_openapi::api::core::v1::{Container, Pod, PodSecurityContext, SecurityContext};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// `cpu.cfs_period_us` the kubelet always sets.
pub const CPU_PERIOD: i64 = 100_000;
/// The smallest `cpu.cfs_quota_us` the kubelet sets.
pub const MIN_QUOTA: i64 = 1_000;
/// The smallest `cpu.shares` (also what a container without a cpu request gets).
pub const MIN_SHARES: i64 = 2;
/// The largest `cpu.shares`.
pub const MAX_SHARES: i64 = 262_144;
/// oom_score_adj of Guaranteed pods (and node-critical ones) upstream.
pub const GUARANTEED_OOM_SCORE_ADJ: i64 = -997;
/// oom_score_adj of BestEffort pods upstream.
pub const BEST_EFFORT_OOM_SCORE_ADJ: i64 = 1000;

/// Paths runc masks in every non-privileged container (`DefaultProcMount` upstream).
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// Paths runc mounts read-only in every non-privileged container.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What the node offers; limits a container lacks default to it (upstream: node allocatable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeResources {
    pub milli_cpu: i64,
    pub memory_bytes: i64,
    pub ephemeral_storage_bytes: i64,
}

impl NodeResources {
    /// This host: CPU count, `MemTotal` from /proc/meminfo, and the size of the filesystem
    /// holding `/var/lib` (read once and cached).
    pub fn host() -> NodeResources {
        static HOST: OnceLock<NodeResources> = OnceLock::new();
        *HOST.get_or_init(|| {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
            let memory = std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|s| parse_meminfo_total(&s))
                .unwrap_or(0);
            let storage = std::process::Command::new("df")
                .args(["-B1", "--output=size", "/var/lib"])
                .output()
                .ok()
                .and_then(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .nth(1)
                        .and_then(|l| l.trim().parse().ok())
                })
                .unwrap_or(0);
            NodeResources {
                milli_cpu: cpus * 1000,
                memory_bytes: memory,
                ephemeral_storage_bytes: storage,
            }
        })
    }
}

/// `MemTotal` of /proc/meminfo in bytes.
pub fn parse_meminfo_total(meminfo: &str) -> Option<i64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

// ---------------------------------------------------------------------------------------------
// Quantities

/// A parsed resource quantity as an exact fraction `num / den`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fraction {
    num: i128,
    den: i128,
}

fn parse_fraction(s: &str) -> Option<Fraction> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(end);
    if number.is_empty() || number == "." {
        return None;
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if frac_part.contains('.') || frac_part.len() > 18 {
        return None;
    }
    let digits: i128 = format!("{int_part}{frac_part}").parse().ok()?;
    let mut exp10: i32 = -(frac_part.len() as i32);
    let mut mul2: i128 = 1;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => mul2 = 1 << 10,
        "Mi" => mul2 = 1 << 20,
        "Gi" => mul2 = 1 << 30,
        "Ti" => mul2 = 1 << 40,
        "Pi" => mul2 = 1 << 50,
        "Ei" => mul2 = 1 << 60,
        other => {
            let e = other.strip_prefix(['e', 'E'])?;
            exp10 += e.parse::<i32>().ok()?;
        }
    }
    if !(-30..=30).contains(&exp10) {
        return None;
    }
    let mut num = digits.checked_mul(mul2)?;
    let mut den: i128 = 1;
    if exp10 >= 0 {
        num = num.checked_mul(10i128.checked_pow(exp10 as u32)?)?;
    } else {
        den = 10i128.checked_pow((-exp10) as u32)?;
    }
    Some(Fraction {
        num: if neg { -num } else { num },
        den,
    })
}

fn div_ceil(num: i128, den: i128) -> i128 {
    let q = num / den;
    if (num % den != 0) && ((num > 0) == (den > 0)) {
        q + 1
    } else {
        q
    }
}

/// `Quantity.MilliValue()`: the quantity in thousandths, rounded up.
pub fn milli_value(q: &str) -> Option<i64> {
    let f = parse_fraction(q)?;
    i64::try_from(div_ceil(f.num.checked_mul(1000)?, f.den)).ok()
}

/// `Quantity.Value()`: the quantity in whole units, rounded up.
pub fn value(q: &str) -> Option<i64> {
    let f = parse_fraction(q)?;
    i64::try_from(div_ceil(f.num, f.den)).ok()
}

/// The downward API's rendering of a resource (`ExtractContainerResourceValue`): cpu as
/// ceil(milli / divisor-milli), everything else as ceil(bytes / divisor), in decimal.
pub fn resource_with_divisor(
    resource: &str,
    quantity: &str,
    divisor: &str,
) -> Result<String, String> {
    let divisor = if divisor.trim().is_empty() {
        "1"
    } else {
        divisor
    };
    let bad = |q: &str| format!("invalid quantity {q:?}: fix the pod spec");
    if resource.ends_with("cpu") {
        let q = parse_fraction(quantity).ok_or_else(|| bad(quantity))?;
        let d = parse_fraction(divisor).ok_or_else(|| bad(divisor))?;
        let qm = div_ceil(q.num * 1000, q.den);
        let dm = div_ceil(d.num * 1000, d.den);
        if dm == 0 {
            return Err(bad(divisor));
        }
        Ok(div_ceil(qm, dm).to_string())
    } else {
        let q = parse_fraction(quantity).ok_or_else(|| bad(quantity))?;
        let d = parse_fraction(divisor).ok_or_else(|| bad(divisor))?;
        let qv = div_ceil(q.num, q.den);
        let dv = div_ceil(d.num, d.den);
        if dv == 0 {
            return Err(bad(divisor));
        }
        Ok(div_ceil(qv, dv).to_string())
    }
}

fn quantity_of<'a>(m: Option<&'a BTreeMap<String, Quantity>>, name: &str) -> Option<&'a str> {
    m.and_then(|m| m.get(name)).map(|q| q.0.as_str())
}

/// A container's request for `name` (cpu, memory, …) as the API stored it.
pub fn request<'a>(c: &'a Container, name: &str) -> Option<&'a str> {
    quantity_of(c.resources.as_ref().and_then(|r| r.requests.as_ref()), name)
}

/// A container's limit for `name`.
pub fn limit<'a>(c: &'a Container, name: &str) -> Option<&'a str> {
    quantity_of(c.resources.as_ref().and_then(|r| r.limits.as_ref()), name)
}

/// The value the downward API shows for `resource` (`limits.cpu`, `requests.memory`, …) of
/// `c`: a missing limit is the node's capacity, a missing request is the limit or 0.
pub fn container_resource_value(
    c: &Container,
    resource: &str,
    divisor: &str,
    node: &NodeResources,
) -> Result<String, String> {
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource {resource:?}: fix the pod spec"))?;
    let node_default = || match name {
        "cpu" => Some(format!("{}m", node.milli_cpu)),
        "memory" => Some(node.memory_bytes.to_string()),
        "ephemeral-storage" => Some(node.ephemeral_storage_bytes.to_string()),
        _ => None,
    };
    let q = match kind {
        "limits" => limit(c, name).map(str::to_string).or_else(node_default),
        "requests" => request(c, name)
            .or_else(|| limit(c, name))
            .map(str::to_string)
            .or_else(|| Some("0".to_string())),
        _ => None,
    };
    let supported =
        matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-");
    match q {
        Some(q) if supported => resource_with_divisor(name, &q, divisor),
        _ => Err(format!(
            "unsupported container resource {resource:?}: fix the pod spec"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// QoS and cgroups

fn all_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    pod.spec.iter().flat_map(|s| {
        s.init_containers
            .iter()
            .flatten()
            .chain(s.containers.iter())
    })
}

/// The pod's QoS class by upstream's rules (`GetPodQOS`): BestEffort when no container asks
/// for or limits cpu/memory, Guaranteed when every container limits both and requests equal
/// limits, otherwise Burstable. A stored `status.qosClass` wins (it is immutable upstream).
pub fn qos_class(pod: &Pod) -> &'static str {
    match pod.status.as_ref().and_then(|s| s.qos_class.as_deref()) {
        Some("Guaranteed") => return "Guaranteed",
        Some("Burstable") => return "Burstable",
        Some("BestEffort") => return "BestEffort",
        _ => {}
    }
    compute_qos_class(pod)
}

/// [`qos_class`] from the spec alone.
pub fn compute_qos_class(pod: &Pod) -> &'static str {
    let mut requests: HashMap<&str, i128> = HashMap::new();
    let mut limits: HashMap<&str, i128> = HashMap::new();
    let mut guaranteed = true;
    for c in all_containers(pod) {
        let res = c.resources.as_ref();
        for (name, q) in res.and_then(|r| r.requests.as_ref()).into_iter().flatten() {
            if let ("cpu" | "memory", Some(m)) = (name.as_str(), milli_value(&q.0)) {
                if m != 0 {
                    *requests.entry(name.as_str()).or_default() += m as i128;
                }
            }
        }
        let mut found = 0;
        for (name, q) in res.and_then(|r| r.limits.as_ref()).into_iter().flatten() {
            if let ("cpu" | "memory", Some(m)) = (name.as_str(), milli_value(&q.0)) {
                if m != 0 {
                    found += 1;
                    *limits.entry(name.as_str()).or_default() += m as i128;
                }
            }
        }
        if found != 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.iter().all(|(k, v)| limits.get(k) == Some(v))
        && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

/// The pod's cgroup parent for the cgroupfs driver: `/kubepods/pod<uid>` (Guaranteed),
/// `/kubepods/burstable/pod<uid>`, `/kubepods/besteffort/pod<uid>`.
pub fn cgroup_parent(pod: &Pod) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    match qos_class(pod) {
        "Guaranteed" => format!("/kubepods/pod{uid}"),
        "BestEffort" => format!("/kubepods/besteffort/pod{uid}"),
        _ => format!("/kubepods/burstable/pod{uid}"),
    }
}

/// Removes the pod's (empty) cgroup directories of every controller under /sys/fs/cgroup once
/// its sandbox is gone; runc leaves them behind (upstream's pod container manager deletes them).
pub fn remove_pod_cgroup(cgroup_parent: &str) -> Result<(), String> {
    remove_pod_cgroup_under(std::path::Path::new("/sys/fs/cgroup"), cgroup_parent)
}

/// [`remove_pod_cgroup`] under another cgroupfs root; absent directories are fine.
pub fn remove_pod_cgroup_under(root: &std::path::Path, cgroup_parent: &str) -> Result<(), String> {
    let rel = cgroup_parent.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c == ".." || c.is_empty()) {
        return Err(format!("invalid cgroup parent {cgroup_parent:?}"));
    }
    let mut dirs = vec![root.join(rel)];
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            dirs.push(e.path().join(rel));
        }
    }
    for d in dirs {
        match std::fs::remove_dir(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "cannot remove cgroup {}: {e}: stop the pod's processes first",
                    d.display()
                ))
            }
        }
    }
    Ok(())
}

/// Namespace modes (`kuberuntime/util`): network NODE for hostNetwork else POD; ipc NODE for
/// hostIPC else POD; pid NODE for hostPID, POD for shareProcessNamespace, else CONTAINER.
pub fn namespace_options(pod: &Pod) -> NamespaceOption {
    let spec = pod.spec.as_ref();
    let flag = |f: fn(&k8s_openapi::api::core::v1::PodSpec) -> Option<bool>| {
        spec.and_then(f).unwrap_or(false)
    };
    let mode = |host: bool, otherwise: NamespaceMode| {
        if host {
            NamespaceMode::Node as i32
        } else {
            otherwise as i32
        }
    };
    let pid = if flag(|s| s.host_pid) {
        NamespaceMode::Node
    } else if flag(|s| s.share_process_namespace) {
        NamespaceMode::Pod
    } else {
        NamespaceMode::Container
    };
    NamespaceOption {
        network: mode(flag(|s| s.host_network), NamespaceMode::Pod),
        ipc: mode(flag(|s| s.host_ipc), NamespaceMode::Pod),
        pid: pid as i32,
        ..Default::default()
    }
}

fn pod_security_context(pod: &Pod) -> Option<&PodSecurityContext> {
    pod.spec.as_ref().and_then(|s| s.security_context.as_ref())
}

/// The pod's supplemental groups: `supplementalGroups` plus `fsGroup` (upstream order).
pub fn supplemental_groups(pod: &Pod) -> Vec<i64> {
    let Some(psc) = pod_security_context(pod) else {
        return Vec::new();
    };
    let mut groups: Vec<i64> = Vec::new();
    if let Some(fs) = psc.fs_group {
        groups.push(fs);
    }
    for g in psc.supplemental_groups.iter().flatten() {
        if !groups.contains(g) {
            groups.push(*g);
        }
    }
    groups
}

fn seccomp_of(c: Option<&k8s_openapi::api::core::v1::SeccompProfile>) -> Option<SecurityProfile> {
    use k8s_cri::v1::security_profile::ProfileType;
    let p = c?;
    Some(match p.type_.as_str() {
        "RuntimeDefault" => SecurityProfile {
            profile_type: ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        },
        "Localhost" => SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: format!(
                "/var/lib/kubelet/seccomp/{}",
                p.localhost_profile.as_deref().unwrap_or_default()
            ),
        },
        _ => SecurityProfile {
            profile_type: ProfileType::Unconfined as i32,
            localhost_ref: String::new(),
        },
    })
}

/// The sandbox's Linux config: cgroup parent, namespaces, pod-level identity, sysctls.
pub fn sandbox_config(pod: &Pod) -> LinuxPodSandboxConfig {
    let psc = pod_security_context(pod);
    let privileged = all_containers(pod).any(|c| {
        c.security_context
            .as_ref()
            .and_then(|s| s.privileged)
            .unwrap_or(false)
    });
    let sysctls = psc
        .and_then(|p| p.sysctls.as_ref())
        .into_iter()
        .flatten()
        .map(|s| (s.name.clone(), s.value.clone()))
        .collect();
    LinuxPodSandboxConfig {
        cgroup_parent: cgroup_parent(pod),
        security_context: Some(LinuxSandboxSecurityContext {
            namespace_options: Some(namespace_options(pod)),
            run_as_user: psc
                .and_then(|p| p.run_as_user)
                .map(|value| Int64Value { value }),
            run_as_group: psc
                .and_then(|p| p.run_as_group)
                .map(|value| Int64Value { value }),
            supplemental_groups: supplemental_groups(pod),
            privileged,
            seccomp: seccomp_of(psc.and_then(|p| p.seccomp_profile.as_ref())),
            ..Default::default()
        }),
        sysctls,
        ..Default::default()
    }
}

/// The container's effective security context: its own fields over the pod's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EffectiveSecurity {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: bool,
    pub privileged: bool,
    pub read_only_root_fs: bool,
    pub allow_privilege_escalation: Option<bool>,
}

/// Merges the container's security context over the pod's (`DetermineEffectiveSecurityContext`).
pub fn effective_security(pod: &Pod, c: &Container) -> EffectiveSecurity {
    let psc = pod_security_context(pod);
    let csc: Option<&SecurityContext> = c.security_context.as_ref();
    EffectiveSecurity {
        run_as_user: csc
            .and_then(|s| s.run_as_user)
            .or(psc.and_then(|p| p.run_as_user)),
        run_as_group: csc
            .and_then(|s| s.run_as_group)
            .or(psc.and_then(|p| p.run_as_group)),
        run_as_non_root: csc
            .and_then(|s| s.run_as_non_root)
            .or(psc.and_then(|p| p.run_as_non_root))
            .unwrap_or(false),
        privileged: csc.and_then(|s| s.privileged).unwrap_or(false),
        read_only_root_fs: csc
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
        allow_privilege_escalation: csc.and_then(|s| s.allow_privilege_escalation),
    }
}

/// `verifyRunAsNonRoot`: with runAsNonRoot, a container must not run as uid 0. `image_uid` is
/// the image's numeric user (None when the image names a user by name or sets none).
pub fn verify_run_as_non_root(
    pod: &Pod,
    c: &Container,
    image_uid: Option<i64>,
    image_user: &str,
) -> Result<(), String> {
    let sec = effective_security(pod, c);
    if !sec.run_as_non_root {
        return Ok(());
    }
    let who = format!(
        "(pod: {:?}, container: {})",
        format!(
            "{}_{}({})",
            pod.metadata.name.as_deref().unwrap_or_default(),
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.uid.as_deref().unwrap_or_default()
        ),
        c.name
    );
    match (sec.run_as_user, image_uid) {
        (Some(0), _) => Err(format!(
            "container's runAsUser breaks non-root policy {who}"
        )),
        (Some(_), _) => Ok(()),
        (None, Some(0)) => Err(format!(
            "container has runAsNonRoot and image will run as root {who}"
        )),
        (None, Some(_)) => Ok(()),
        (None, None) if image_user.is_empty() => Err(format!(
            "container has runAsNonRoot and image will run as root {who}"
        )),
        (None, None) => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({image_user}), cannot verify user is non-root {who}"
        )),
    }
}

/// Upstream's `GetContainerOOMScoreAdjust` for a container of `qos` with a memory request of
/// `memory_request` bytes on a node with `memory_capacity` bytes.
pub fn oom_score_adj(qos: &str, memory_request: i64, memory_capacity: i64) -> i64 {
    match qos {
        "Guaranteed" => GUARANTEED_OOM_SCORE_ADJ,
        "BestEffort" => BEST_EFFORT_OOM_SCORE_ADJ,
        _ => {
            if memory_capacity <= 0 {
                return BEST_EFFORT_OOM_SCORE_ADJ - 1;
            }
            let adj = 1000 - (1000i128 * memory_request as i128 / memory_capacity as i128) as i64;
            if adj < 1000 + GUARANTEED_OOM_SCORE_ADJ {
                1000 + GUARANTEED_OOM_SCORE_ADJ
            } else if adj == BEST_EFFORT_OOM_SCORE_ADJ {
                adj - 1
            } else {
                adj
            }
        }
    }
}

/// `MilliCPUToShares`.
pub fn milli_cpu_to_shares(milli: i64) -> i64 {
    if milli <= 0 {
        return MIN_SHARES;
    }
    (milli * 1024 / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// `MilliCPUToQuota` with the 100 ms period: 0 (no limit) for 0.
pub fn milli_cpu_to_quota(milli: i64) -> i64 {
    if milli <= 0 {
        return 0;
    }
    (milli * CPU_PERIOD / 1000).max(MIN_QUOTA)
}

/// The container's cgroup resources on a node with `node` capacity.
pub fn container_resources(
    pod: &Pod,
    c: &Container,
    node: &NodeResources,
) -> LinuxContainerResources {
    let cpu_request = request(c, "cpu")
        .or(limit(c, "cpu"))
        .and_then(milli_value)
        .unwrap_or(0);
    let cpu_limit = limit(c, "cpu").and_then(milli_value).unwrap_or(0);
    let mem_limit = limit(c, "memory").and_then(value).unwrap_or(0);
    let mem_request = request(c, "memory")
        .or(limit(c, "memory"))
        .and_then(value)
        .unwrap_or(0);
    let quota = milli_cpu_to_quota(cpu_limit);
    LinuxContainerResources {
        cpu_period: if quota > 0 { CPU_PERIOD } else { 0 },
        cpu_quota: quota,
        cpu_shares: milli_cpu_to_shares(cpu_request),
        memory_limit_in_bytes: mem_limit,
        oom_score_adj: oom_score_adj(qos_class(pod), mem_request, node.memory_bytes),
        ..Default::default()
    }
}

/// The container's Linux config on this host (see [`container_config_on`]).
pub fn container_config(pod: &Pod, c: &Container) -> LinuxContainerConfig {
    container_config_on(pod, c, &NodeResources::host())
}

/// The container's Linux config: resources and security context.
pub fn container_config_on(pod: &Pod, c: &Container, node: &NodeResources) -> LinuxContainerConfig {
    let sec = effective_security(pod, c);
    let csc = c.security_context.as_ref();
    let caps = csc.and_then(|s| s.capabilities.as_ref());
    let capabilities = caps.map(|caps| Capability {
        add_capabilities: caps.add.clone().unwrap_or_default(),
        drop_capabilities: caps.drop.clone().unwrap_or_default(),
        ..Default::default()
    });
    let seccomp = seccomp_of(
        csc.and_then(|s| s.seccomp_profile.as_ref())
            .or(pod_security_context(pod).and_then(|p| p.seccomp_profile.as_ref())),
    );
    let unmasked = csc.and_then(|s| s.proc_mount.as_deref()) == Some("Unmasked");
    let (masked_paths, readonly_paths) = if sec.privileged || unmasked {
        (Vec::new(), Vec::new())
    } else {
        (
            DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
            DEFAULT_READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
    };
    LinuxContainerConfig {
        resources: Some(container_resources(pod, c, node)),
        security_context: Some(LinuxContainerSecurityContext {
            capabilities,
            privileged: sec.privileged,
            namespace_options: Some(namespace_options(pod)),
            run_as_user: sec.run_as_user.map(|value| Int64Value { value }),
            run_as_group: sec.run_as_group.map(|value| Int64Value { value }),
            readonly_rootfs: sec.read_only_root_fs,
            supplemental_groups: supplemental_groups(pod),
            no_new_privs: sec.allow_privilege_escalation == Some(false),
            masked_paths,
            readonly_paths,
            seccomp,
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn res_pod(containers: serde_json::Value) -> Pod {
        pod(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": containers}
        }))
    }

    const NODE: NodeResources = NodeResources {
        milli_cpu: 2000,
        memory_bytes: 1 << 30,
        ephemeral_storage_bytes: 10 << 30,
    };

    #[test]
    fn quantities_parse_like_upstream() {
        assert_eq!(milli_value("100m"), Some(100));
        assert_eq!(milli_value("1"), Some(1000));
        assert_eq!(milli_value("0.5"), Some(500));
        assert_eq!(milli_value("1500u"), Some(2));
        assert_eq!(value("1Ki"), Some(1024));
        assert_eq!(value("128Mi"), Some(128 << 20));
        assert_eq!(value("1G"), Some(1_000_000_000));
        assert_eq!(value("1e3"), Some(1000));
        assert_eq!(value("100m"), Some(1));
        assert_eq!(value("1.5Gi"), Some(3 << 29));
        assert_eq!(value("abc"), None);
        assert_eq!(value("1Zi"), None);
        assert_eq!(value(""), None);
    }

    #[test]
    fn divisors_round_up() {
        assert_eq!(resource_with_divisor("cpu", "250m", "1").unwrap(), "1");
        assert_eq!(resource_with_divisor("cpu", "250m", "1m").unwrap(), "250");
        assert_eq!(resource_with_divisor("cpu", "2", "").unwrap(), "2");
        assert_eq!(
            resource_with_divisor("memory", "64Mi", "1Mi").unwrap(),
            "64"
        );
        assert_eq!(
            resource_with_divisor("memory", "100M", "1Mi").unwrap(),
            "96"
        );
        assert_eq!(
            resource_with_divisor("memory", "64Mi", "1").unwrap(),
            "67108864"
        );
        assert!(resource_with_divisor("memory", "x", "1").is_err());
        assert!(resource_with_divisor("cpu", "1", "0").is_err());
    }

    #[test]
    fn missing_limits_fall_back_to_node_capacity() {
        let p =
            res_pod(serde_json::json!([{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]));
        let c = &p.spec.as_ref().unwrap().containers[0];
        assert_eq!(
            container_resource_value(c, "limits.cpu", "1m", &NODE).unwrap(),
            "2000"
        );
        assert_eq!(
            container_resource_value(c, "limits.memory", "1Mi", &NODE).unwrap(),
            "1024"
        );
        assert_eq!(
            container_resource_value(c, "requests.cpu", "1m", &NODE).unwrap(),
            "100"
        );
        assert_eq!(
            container_resource_value(c, "requests.memory", "1", &NODE).unwrap(),
            "0"
        );
        assert!(container_resource_value(c, "limits.gpu", "1", &NODE).is_err());
        assert!(container_resource_value(c, "cpu", "1", &NODE).is_err());
    }

    #[test]
    fn qos_classes_follow_upstream() {
        let be = res_pod(serde_json::json!([{"name": "a"}, {"name": "b"}]));
        assert_eq!(qos_class(&be), "BestEffort");
        let g = res_pod(serde_json::json!([{"name": "a", "resources": {
            "limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1Gi"}}}]));
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = res_pod(serde_json::json!([{"name": "a", "resources": {
            "limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}}}]));
        assert_eq!(qos_class(&b), "Burstable");
        let b2 = res_pod(serde_json::json!([
            {"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}},
            {"name": "b"}]));
        assert_eq!(qos_class(&b2), "Burstable", "one container without limits");
        let only_cpu = res_pod(
            serde_json::json!([{"name": "a", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}}]),
        );
        assert_eq!(qos_class(&only_cpu), "Burstable");
        let other = res_pod(
            serde_json::json!([{"name": "a", "resources": {"requests": {"ephemeral-storage": "1Gi"}}}]),
        );
        assert_eq!(qos_class(&other), "BestEffort", "only cpu and memory count");
        let mut stored = be.clone();
        stored.status =
            Some(serde_json::from_value(serde_json::json!({"qosClass": "Burstable"})).unwrap());
        assert_eq!(qos_class(&stored), "Burstable");
    }

    #[test]
    fn cgroup_parents_per_qos() {
        let be = res_pod(serde_json::json!([{"name": "a"}]));
        assert_eq!(cgroup_parent(&be), "/kubepods/besteffort/podu1");
        let g = res_pod(serde_json::json!([{"name": "a", "resources": {
            "limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}]));
        assert_eq!(cgroup_parent(&g), "/kubepods/podu1");
        let b =
            res_pod(serde_json::json!([{"name": "a", "resources": {"requests": {"cpu": "1"}}}]));
        assert_eq!(cgroup_parent(&b), "/kubepods/burstable/podu1");
        assert_eq!(
            sandbox_config(&b).cgroup_parent,
            "/kubepods/burstable/podu1"
        );
    }

    #[test]
    fn namespaces_follow_host_flags() {
        let p = res_pod(serde_json::json!([{"name": "a"}]));
        let ns = namespace_options(&p);
        assert_eq!(
            (ns.network, ns.pid, ns.ipc),
            (
                NamespaceMode::Pod as i32,
                NamespaceMode::Container as i32,
                NamespaceMode::Pod as i32
            )
        );
        let h = pod(
            serde_json::json!({"spec": {"hostNetwork": true, "hostPID": true, "hostIPC": true, "containers": []}}),
        );
        let ns = namespace_options(&h);
        assert_eq!(
            (ns.network, ns.pid, ns.ipc),
            (
                NamespaceMode::Node as i32,
                NamespaceMode::Node as i32,
                NamespaceMode::Node as i32
            )
        );
        let s = pod(serde_json::json!({"spec": {"shareProcessNamespace": true, "containers": []}}));
        assert_eq!(namespace_options(&s).pid, NamespaceMode::Pod as i32);
    }

    #[test]
    fn resources_convert_cpu_and_memory() {
        let p = res_pod(serde_json::json!([{"name": "a", "resources": {
            "limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}}}]));
        let c = &p.spec.as_ref().unwrap().containers[0];
        let r = container_resources(&p, c, &NODE);
        assert_eq!(r.cpu_period, 100_000);
        assert_eq!(r.cpu_quota, 50_000);
        assert_eq!(r.cpu_shares, 256);
        assert_eq!(r.memory_limit_in_bytes, 128 << 20);
        // Burstable: 1000 - 1000*64Mi/1Gi = 938
        assert_eq!(r.oom_score_adj, 938);

        let tiny = res_pod(
            serde_json::json!([{"name": "a", "resources": {"limits": {"cpu": "1m"}, "requests": {"cpu": "1m"}}}]),
        );
        let r = container_resources(&tiny, &tiny.spec.as_ref().unwrap().containers[0], &NODE);
        assert_eq!((r.cpu_quota, r.cpu_shares), (1000, 2));

        let none = res_pod(serde_json::json!([{"name": "a"}]));
        let r = container_resources(&none, &none.spec.as_ref().unwrap().containers[0], &NODE);
        assert_eq!(
            (
                r.cpu_period,
                r.cpu_quota,
                r.cpu_shares,
                r.memory_limit_in_bytes
            ),
            (0, 0, 2, 0)
        );
        assert_eq!(r.oom_score_adj, 1000);
    }

    #[test]
    fn oom_score_adj_per_qos() {
        assert_eq!(oom_score_adj("Guaranteed", 0, 1 << 30), -997);
        assert_eq!(oom_score_adj("BestEffort", 0, 1 << 30), 1000);
        assert_eq!(oom_score_adj("Burstable", 0, 1 << 30), 999);
        assert_eq!(oom_score_adj("Burstable", 1 << 30, 1 << 30), 3);
        assert_eq!(oom_score_adj("Burstable", 1 << 29, 1 << 30), 500);
        assert_eq!(milli_cpu_to_shares(1_000_000), MAX_SHARES);
        assert_eq!(milli_cpu_to_quota(0), 0);
    }

    #[test]
    fn security_context_merges_pod_and_container() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {
                "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
                    "supplementalGroups": [4000, 2000], "runAsNonRoot": true,
                    "sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65000"}]},
                "containers": [
                    {"name": "a", "securityContext": {"runAsUser": 1001, "readOnlyRootFilesystem": true,
                        "allowPrivilegeEscalation": false,
                        "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}},
                    {"name": "b", "securityContext": {"privileged": true}}
                ]
            }
        }));
        let spec = p.spec.as_ref().unwrap();
        let a = container_config_on(&p, &spec.containers[0], &NODE)
            .security_context
            .unwrap();
        assert_eq!(a.run_as_user, Some(Int64Value { value: 1001 }));
        assert_eq!(a.run_as_group, Some(Int64Value { value: 3000 }));
        assert_eq!(a.supplemental_groups, vec![2000, 4000]);
        assert!(a.readonly_rootfs && a.no_new_privs && !a.privileged);
        let caps = a.capabilities.unwrap();
        assert_eq!(caps.add_capabilities, vec!["NET_ADMIN"]);
        assert_eq!(caps.drop_capabilities, vec!["ALL"]);
        assert_eq!(a.masked_paths.len(), DEFAULT_MASKED_PATHS.len());
        assert!(a.readonly_paths.contains(&"/proc/sys".to_string()));

        let b = container_config_on(&p, &spec.containers[1], &NODE)
            .security_context
            .unwrap();
        assert!(b.privileged && !b.no_new_privs);
        assert!(b.masked_paths.is_empty() && b.readonly_paths.is_empty());
        assert_eq!(b.run_as_user, Some(Int64Value { value: 1000 }));

        let sb = sandbox_config(&p);
        let sc = sb.security_context.unwrap();
        assert!(
            sc.privileged,
            "a privileged container makes the sandbox privileged"
        );
        assert_eq!(sc.run_as_user, Some(Int64Value { value: 1000 }));
        assert_eq!(
            sb.sysctls
                .get("net.ipv4.ip_local_port_range")
                .map(String::as_str),
            Some("1024 65000")
        );

        assert!(verify_run_as_non_root(&p, &spec.containers[0], Some(0), "0").is_ok());
        let root = pod(serde_json::json!({"metadata": {"name": "p"}, "spec": {
            "securityContext": {"runAsNonRoot": true}, "containers": [{"name": "a"}]}}));
        let c = &root.spec.as_ref().unwrap().containers[0];
        let e = verify_run_as_non_root(&root, c, Some(0), "").unwrap_err();
        assert!(
            e.starts_with("container has runAsNonRoot and image will run as root"),
            "{e}"
        );
        assert!(verify_run_as_non_root(&root, c, Some(65534), "65534").is_ok());
        assert!(verify_run_as_non_root(&root, c, None, "nobody")
            .unwrap_err()
            .contains("non-numeric user (nobody)"));
    }

    #[test]
    fn pod_cgroups_are_removed_per_controller() {
        let t = tempfile::tempdir().unwrap();
        for c in ["cpu", "memory"] {
            std::fs::create_dir_all(t.path().join(c).join("kubepods/burstable/podu1")).unwrap();
        }
        std::fs::write(t.path().join("cgroup.procs"), "").unwrap();
        remove_pod_cgroup_under(t.path(), "/kubepods/burstable/podu1").unwrap();
        assert!(!t.path().join("cpu/kubepods/burstable/podu1").exists());
        assert!(!t.path().join("memory/kubepods/burstable/podu1").exists());
        assert!(t.path().join("memory/kubepods/burstable").exists());
        remove_pod_cgroup_under(t.path(), "/kubepods/burstable/podu1").unwrap();
        assert!(remove_pod_cgroup_under(t.path(), "/kubepods/../etc").is_err());
        assert!(remove_pod_cgroup_under(t.path(), "/").is_err());
    }

    #[test]
    fn meminfo_total_in_bytes() {
        assert_eq!(
            parse_meminfo_total("MemTotal:       2048 kB\nMemFree: 1 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(parse_meminfo_total("nothing"), None);
        assert!(NodeResources::host().milli_cpu >= 1000);
    }
}
