//! Node registration: the Node object a simulated kubelet creates (labels, taints, pod CIDR)
//! and the status it reports (capacity, conditions, addresses, nodeInfo), plus the
//! create-or-update flow with pod CIDR allocation.
//!
//! Pod CIDRs: skiff has no IPAM controller yet, so the agent picks one itself (see
//! [`register`]): the lowest `/mask` block of the cluster CIDR no node holds, made race-safe by
//! a claim Lease per block that only one creator can win. A node that already exists keeps
//! its pod CIDR (restarts re-adopt it).

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Map, Value};

use crate::cidr::{choose_mask, FreeBlocks, Ipv4Net};
use crate::podstatus::timestamp;
use crate::Error;

/// The kubelet version simulated nodes report.
pub const KUBELET_VERSION: &str = "v1.32.0+skiff";
/// The container runtime version simulated nodes report.
pub const RUNTIME_VERSION: &str = "sim://0.1";
/// Kubelet's default `--max-pods`.
pub const DEFAULT_MAX_PODS: u32 = 110;

/// A taint from `--node-taint key[=value]:Effect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: Option<String>,
    pub effect: String,
}

impl Taint {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("key".into(), json!(self.key));
        if let Some(v) = &self.value {
            m.insert("value".into(), json!(v));
        }
        m.insert("effect".into(), json!(self.effect));
        Value::Object(m)
    }
}

/// Parses `--node-label key=value`.
pub fn parse_label(s: &str) -> Result<(String, String), Error> {
    let (k, v) = s.split_once('=').ok_or_else(|| {
        Error::Config(format!(
            "invalid --node-label {s:?}: use key=value, e.g. disk=ssd"
        ))
    })?;
    if k.trim().is_empty() {
        return Err(Error::Config(format!(
            "invalid --node-label {s:?}: the key is empty"
        )));
    }
    Ok((k.trim().to_string(), v.trim().to_string()))
}

/// Parses `--node-taint key[=value]:Effect` (Effect: NoSchedule, PreferNoSchedule, NoExecute).
pub fn parse_taint(s: &str) -> Result<Taint, Error> {
    let bad = |why: &str| {
        Error::Config(format!(
            "invalid --node-taint {s:?}: {why}; use key=value:Effect with Effect NoSchedule, \
             PreferNoSchedule or NoExecute"
        ))
    };
    let (kv, effect) = s.rsplit_once(':').ok_or_else(|| bad("missing :Effect"))?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(bad("unknown effect"));
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (kv, None),
    };
    if key.is_empty() {
        return Err(bad("the key is empty"));
    }
    Ok(Taint {
        key: key.to_string(),
        value,
        effect: effect.to_string(),
    })
}

/// Host facts every simulated node of this process reports.
#[derive(Debug, Clone)]
pub struct SystemInfo {
    pub os_image: String,
    pub kernel_version: String,
    pub architecture: String,
    pub boot_id: String,
}

impl SystemInfo {
    /// Reads the host's OS image and kernel version; a fresh random boot id per process.
    pub fn from_host() -> Self {
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| "Linux".into());
        let kernel_version = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "arm" => "arm",
            "riscv64" => "riscv64",
            "s390x" => "s390x",
            "powerpc64" => "ppc64le",
            other => other,
        }
        .to_string();
        SystemInfo {
            os_image,
            kernel_version,
            architecture,
            boot_id: random_uuid(),
        }
    }
}

fn random_uuid() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]]),
    )
}

/// A stable 32-hex-digit id for a node name (machine id / system uuid of a simulated node).
fn stable_id(name: &str, salt: u64) -> String {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4 ^ salt;
    for byte in name.bytes() {
        a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        b = (b ^ u64::from(byte)).wrapping_mul(0x0000_0001_0000_0193);
    }
    format!("{a:016x}{b:016x}")
}

/// What one simulated node is asked to be.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub ip: Ipv4Addr,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub max_pods: u32,
}

/// The labels a node registers with: the kubelet's well-known ones, then `--node-label`s.
pub fn node_labels(spec: &NodeSpec, arch: &str) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert("kubernetes.io/hostname".into(), spec.name.clone());
    l.insert("kubernetes.io/os".into(), "linux".into());
    l.insert("kubernetes.io/arch".into(), arch.into());
    l.insert("beta.kubernetes.io/os".into(), "linux".into());
    l.insert("beta.kubernetes.io/arch".into(), arch.into());
    l.insert("node.kubernetes.io/instance-type".into(), "skiff".into());
    for (k, v) in &spec.labels {
        l.insert(k.clone(), v.clone());
    }
    l
}

/// The Node a simulated kubelet creates (no status: that follows once it has a pod CIDR).
pub fn new_node_object(spec: &NodeSpec, arch: &str, pod_cidr: Option<Ipv4Net>) -> Value {
    let mut node_spec = Map::new();
    if let Some(c) = pod_cidr {
        node_spec.insert("podCIDR".into(), json!(c.to_string()));
        node_spec.insert("podCIDRs".into(), json!([c.to_string()]));
    }
    if !spec.taints.is_empty() {
        node_spec.insert(
            "taints".into(),
            Value::Array(spec.taints.iter().map(Taint::to_json).collect()),
        );
    }
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": node_labels(spec, arch),
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                "skiff.io/runtime": "sim",
            },
        },
        "spec": Value::Object(node_spec),
    })
}

pub(crate) fn node_condition(
    old_status: &Value,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) -> Value {
    let since = old_status
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
        .and_then(|c| c.get("lastTransitionTime"))
        .filter(|t| t.is_string())
        .cloned()
        .unwrap_or_else(|| json!(timestamp(now)));
    json!({
        "type": kind,
        "status": status,
        "lastHeartbeatTime": timestamp(now),
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    })
}

/// The four node conditions of a healthy kubelet, heartbeat `now`; transition times are kept
/// from `old_status` when a condition's status is unchanged.
pub fn node_conditions(old_status: &Value, now: DateTime<Utc>) -> Value {
    json!([
        node_condition(
            old_status,
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            now
        ),
        node_condition(
            old_status,
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
            now
        ),
        node_condition(
            old_status,
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            now
        ),
        node_condition(
            old_status,
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
            now
        ),
    ])
}

/// The full status a simulated node reports. `pods` is the pod capacity (at most the pod IPs
/// its CIDR offers).
pub fn node_status(
    spec: &NodeSpec,
    sys: &SystemInfo,
    pods: u64,
    old_status: &Value,
    now: DateTime<Utc>,
) -> Value {
    let resources = json!({
        "cpu": "4",
        "memory": "8Gi",
        "pods": pods.to_string(),
        "ephemeral-storage": "100Gi",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    });
    json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": node_conditions(old_status, now),
        "addresses": [
            {"type": "InternalIP", "address": spec.ip.to_string()},
            {"type": "Hostname", "address": spec.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": stable_id(&spec.name, 1),
            "systemUUID": stable_id(&spec.name, 2),
            "bootID": sys.boot_id,
            "kernelVersion": sys.kernel_version,
            "osImage": sys.os_image,
            "containerRuntimeVersion": RUNTIME_VERSION,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": sys.architecture,
        },
    })
}

/// A node this process runs, once registered.
#[derive(Debug, Clone)]
pub struct Registered {
    pub name: String,
    pub uid: String,
    pub pod_cidr: Ipv4Net,
}

pub(crate) fn nodes_api(client: &kube::Client) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &ApiResource::erase::<Node>(&()))
}

fn pod_cidr_of(obj: &DynamicObject) -> Option<String> {
    obj.data
        .pointer("/spec/podCIDR")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Registration settings.
#[derive(Debug, Clone)]
pub struct RegisterOptions {
    pub cluster_cidr: Ipv4Net,
    /// `None`: chosen by [`choose_mask`] for the nodes that need a block.
    pub node_cidr_mask: Option<u8>,
    /// Concurrent API requests while registering many nodes.
    pub concurrency: usize,
}

/// Namespace of the pod CIDR claim Leases.
pub const CIDR_CLAIM_NAMESPACE: &str = "kube-system";

/// Name of the Lease that claims `cidr` (`pod-cidr-10.42.3.0-24`).
pub fn cidr_claim_name(cidr: Ipv4Net) -> String {
    format!("pod-cidr-{}-{}", cidr.network(), cidr.prefix())
}

fn claim_object(cidr: Ipv4Net, node: &str, node_uid: &str, rv: Option<&str>) -> Value {
    let mut meta = json!({
        "name": cidr_claim_name(cidr),
        "namespace": CIDR_CLAIM_NAMESPACE,
        "labels": {"skiff.io/pod-cidr-claim": "true"},
        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid}],
    });
    if let Some(rv) = rv {
        meta["resourceVersion"] = json!(rv);
    }
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {"holderIdentity": node},
    })
}

/// Whether a claim held by `holder` for the node uid `owner_uid` is stale: that Node is gone
/// or was re-created (a different uid).
async fn claim_is_stale(
    nodes: &Api<DynamicObject>,
    holder: &str,
    owner_uid: &str,
) -> Result<bool, Error> {
    if holder.is_empty() {
        return Ok(true);
    }
    match nodes.get_opt(holder).await {
        Ok(None) => Ok(true),
        Ok(Some(n)) => Ok(!owner_uid.is_empty() && n.metadata.uid.as_deref() != Some(owner_uid)),
        Err(e) => Err(Error::api(&format!("get node {holder}"), e)),
    }
}

/// Claims `cidr` for the node: creates its claim Lease, or takes over a claim that is ours
/// or stale (with a resourceVersion precondition). False when another live node holds it.
async fn claim_cidr(
    leases: &Api<DynamicObject>,
    nodes: &Api<DynamicObject>,
    cidr: Ipv4Net,
    node: &str,
    node_uid: &str,
) -> Result<bool, Error> {
    let obj: DynamicObject = serde_json::from_value(claim_object(cidr, node, node_uid, None))
        .map_err(|e| Error::Config(format!("cannot build the pod CIDR claim: {e}")))?;
    match leases.create(&PostParams::default(), &obj).await {
        Ok(_) => return Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(Error::api("claim a pod CIDR", e)),
    }
    let name = cidr_claim_name(cidr);
    let Some(cur) = leases
        .get_opt(&name)
        .await
        .map_err(|e| Error::api("read a pod CIDR claim", e))?
    else {
        return Ok(false);
    };
    let holder = cur
        .data
        .pointer("/spec/holderIdentity")
        .and_then(Value::as_str)
        .unwrap_or("");
    let owner_uid = cur
        .metadata
        .owner_references
        .as_ref()
        .and_then(|o| o.first())
        .map(|o| o.uid.as_str())
        .unwrap_or("");
    if holder == node && owner_uid == node_uid {
        return Ok(true);
    }
    if holder != node && !claim_is_stale(nodes, holder, owner_uid).await? {
        return Ok(false);
    }
    let rv = cur.metadata.resource_version.as_deref();
    let obj: DynamicObject = serde_json::from_value(claim_object(cidr, node, node_uid, rv))
        .map_err(|e| Error::Config(format!("cannot build the pod CIDR claim: {e}")))?;
    match leases.replace(&name, &PostParams::default(), &obj).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(false),
        Err(e) => Err(Error::api("take over a stale pod CIDR claim", e)),
    }
}

/// Creates (or updates) the Nodes in `specs` and gives each a pod CIDR; reports each node's
/// uid and pod CIDR. Status is not touched (see [`post_status`]).
///
/// A node that already has a pod CIDR keeps it. Otherwise the lowest free block (by the
/// podCIDRs of all nodes) is claimed with a Lease `kube-system/pod-cidr-<net>-<mask>` (owned
/// by the Node, so it goes when the Node goes) before `spec.podCIDR` is set: creating the
/// claim is the race-safe step (one creator wins, the loser tries the next block); a claim
/// whose Node is gone or re-created is taken over with a resourceVersion precondition.
pub async fn register(
    client: &kube::Client,
    specs: &[NodeSpec],
    arch: &str,
    opts: &RegisterOptions,
) -> Result<Vec<Registered>, Error> {
    let nodes = nodes_api(client);
    let leases: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        CIDR_CLAIM_NAMESPACE,
        &ApiResource::erase::<Lease>(&()),
    );
    let existing = nodes
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::api("list nodes", e))?;
    let taken: Vec<String> = existing.items.iter().filter_map(pod_cidr_of).collect();
    let by_name: HashMap<&str, &DynamicObject> = existing
        .items
        .iter()
        .filter_map(|o| o.metadata.name.as_deref().map(|n| (n, o)))
        .collect();
    let mask = match opts.node_cidr_mask {
        Some(m) => m,
        None => {
            let need = specs
                .iter()
                .filter(|s| {
                    by_name
                        .get(s.name.as_str())
                        .and_then(|o| pod_cidr_of(o))
                        .is_none()
                })
                .count();
            choose_mask(opts.cluster_cidr, &taken, need)?
        }
    };
    let free = Mutex::new(FreeBlocks::new(opts.cluster_cidr, mask, &taken)?);
    let ctx = Ctx {
        nodes: &nodes,
        leases: &leases,
        free: &free,
        arch,
    };
    futures::stream::iter(specs)
        .map(|spec| register_one(&ctx, spec, by_name.get(spec.name.as_str()).copied()))
        .buffered(opts.concurrency.max(1))
        .try_collect()
        .await
}

struct Ctx<'a> {
    nodes: &'a Api<DynamicObject>,
    leases: &'a Api<DynamicObject>,
    free: &'a Mutex<FreeBlocks>,
    arch: &'a str,
}

async fn register_one(
    ctx: &Ctx<'_>,
    spec: &NodeSpec,
    current: Option<&DynamicObject>,
) -> Result<Registered, Error> {
    let labels_patch = &json!({"metadata": {"labels": node_labels(spec, ctx.arch)}});
    let update = |name: String| async move {
        // Re-registration: refresh labels, never removing any.
        ctx.nodes
            .patch(&name, &PatchParams::default(), &Patch::Merge(labels_patch))
            .await
            .map_err(|e| Error::api(&format!("update node {name}"), e))
    };
    let node = match current {
        Some(_) => update(spec.name.clone()).await?,
        None => {
            let obj: DynamicObject = serde_json::from_value(new_node_object(spec, ctx.arch, None))
                .map_err(|e| Error::Config(format!("cannot build the node object: {e}")))?;
            match ctx.nodes.create(&PostParams::default(), &obj).await {
                Ok(o) => o,
                Err(kube::Error::Api(s)) if s.code == 409 => update(spec.name.clone()).await?,
                Err(e) => return Err(Error::api(&format!("create node {}", spec.name), e)),
            }
        }
    };
    let uid = node.metadata.uid.clone().unwrap_or_default();
    if let Some(cidr) = pod_cidr_of(&node).and_then(|c| c.parse::<Ipv4Net>().ok()) {
        return Ok(Registered {
            name: spec.name.clone(),
            uid,
            pod_cidr: cidr,
        });
    }
    let cidr = loop {
        let candidate = ctx
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_block()?;
        if claim_cidr(ctx.leases, ctx.nodes, candidate, &spec.name, &uid).await? {
            break candidate;
        }
        tracing::debug!(node = %spec.name, cidr = %candidate, "pod CIDR claimed by another node");
    };
    let patch = json!({"spec": {"podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()]}});
    match ctx
        .nodes
        .patch(&spec.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(Registered {
            name: spec.name.clone(),
            uid,
            pod_cidr: cidr,
        }),
        Err(e) => {
            // Someone else (an IPAM controller) may have set one meanwhile: use theirs.
            let now = ctx
                .nodes
                .get_opt(&spec.name)
                .await
                .ok()
                .flatten()
                .and_then(|n| pod_cidr_of(&n))
                .and_then(|c| c.parse::<Ipv4Net>().ok());
            match now {
                Some(c) => Ok(Registered {
                    name: spec.name.clone(),
                    uid,
                    pod_cidr: c,
                }),
                None => Err(Error::api(
                    &format!("set the pod CIDR of node {}", spec.name),
                    e,
                )),
            }
        }
    }
}

/// Posts the node's full status (heartbeat `now`), keeping transition times of unchanged
/// conditions. Returns false when the Node no longer exists.
pub async fn post_status(
    client: &kube::Client,
    spec: &NodeSpec,
    sys: &SystemInfo,
    pods: u64,
) -> Result<bool, Error> {
    let api = nodes_api(client);
    let old = match api.get_opt(&spec.name).await {
        Ok(Some(o)) => o.data.get("status").cloned().unwrap_or(Value::Null),
        Ok(None) => return Ok(false),
        Err(e) => return Err(Error::api(&format!("get node {}", spec.name), e)),
    };
    let status = node_status(spec, sys, pods, &old, Utc::now());
    match api
        .patch_status(
            &spec.name,
            &PatchParams::default(),
            &Patch::Strategic(json!({"status": status})),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(Error::api(&format!("update node {} status", spec.name), e)),
    }
}

/// Posts only the condition heartbeat (cheaper than the full status; kept in sync with the
/// node's current conditions). Returns false when the Node no longer exists.
pub async fn post_heartbeat(client: &kube::Client, name: &str) -> Result<bool, Error> {
    let api = nodes_api(client);
    let old = match api.get_opt(name).await {
        Ok(Some(o)) => o.data.get("status").cloned().unwrap_or(Value::Null),
        Ok(None) => return Ok(false),
        Err(e) => return Err(Error::api(&format!("get node {name}"), e)),
    };
    let conditions = node_conditions(&old, Utc::now());
    match api
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Strategic(json!({"status": {"conditions": conditions}})),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(Error::api(&format!("update node {name} status"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NodeSpec {
        NodeSpec {
            name: "sim-1".into(),
            ip: "127.0.0.1".parse().unwrap(),
            labels: [("disk".to_string(), "ssd".to_string())].into(),
            taints: vec![parse_taint("dedicated=infra:NoSchedule").unwrap()],
            max_pods: 110,
        }
    }

    fn sys() -> SystemInfo {
        SystemInfo {
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
            kernel_version: "6.1.0".into(),
            architecture: "amd64".into(),
            boot_id: "b".into(),
        }
    }

    #[test]
    fn labels_and_taints_parse() {
        assert_eq!(
            parse_label("a=b").unwrap(),
            ("a".to_string(), "b".to_string())
        );
        assert_eq!(parse_label("a=").unwrap(), ("a".to_string(), String::new()));
        assert!(parse_label("ab").is_err());
        assert!(parse_label("=b").is_err());
        assert_eq!(
            parse_taint("k=v:NoExecute").unwrap(),
            Taint {
                key: "k".into(),
                value: Some("v".into()),
                effect: "NoExecute".into()
            }
        );
        assert_eq!(parse_taint("k:NoSchedule").unwrap().value, None);
        assert!(parse_taint("k=v").is_err());
        assert!(parse_taint("k=v:Sometimes").is_err());
        assert!(parse_taint(":NoSchedule").is_err());
    }

    #[test]
    fn node_object_has_labels_taints_and_cidr() {
        let n = new_node_object(&spec(), "amd64", Some("10.42.3.0/24".parse().unwrap()));
        let l = &n["metadata"]["labels"];
        assert_eq!(l["kubernetes.io/hostname"], "sim-1");
        assert_eq!(l["kubernetes.io/os"], "linux");
        assert_eq!(l["kubernetes.io/arch"], "amd64");
        assert_eq!(l["disk"], "ssd");
        assert!(l
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("node-role.kubernetes.io/")));
        assert_eq!(n["spec"]["podCIDR"], "10.42.3.0/24");
        assert_eq!(n["spec"]["podCIDRs"], json!(["10.42.3.0/24"]));
        assert_eq!(
            n["spec"]["taints"],
            json!([{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}])
        );
        let bare = new_node_object(&spec(), "amd64", None);
        assert!(bare["spec"].get("podCIDR").is_none());
    }

    #[test]
    fn cidr_claims_are_owned_by_their_node() {
        let cidr: Ipv4Net = "10.42.3.0/24".parse().unwrap();
        assert_eq!(cidr_claim_name(cidr), "pod-cidr-10.42.3.0-24");
        let c = claim_object(cidr, "n1", "uid-1", Some("42"));
        assert_eq!(c["metadata"]["namespace"], CIDR_CLAIM_NAMESPACE);
        assert_eq!(c["metadata"]["resourceVersion"], "42");
        assert_eq!(c["spec"]["holderIdentity"], "n1");
        assert_eq!(
            c["metadata"]["ownerReferences"],
            json!([{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "uid-1"}])
        );
        assert!(claim_object(cidr, "n1", "u", None)["metadata"]
            .get("resourceVersion")
            .is_none());
    }

    #[test]
    fn node_status_reports_a_ready_kubelet() {
        let now = DateTime::parse_from_rfc3339("2025-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let st = node_status(&spec(), &sys(), 110, &Value::Null, now);
        assert_eq!(st["capacity"]["pods"], "110");
        assert_eq!(st["allocatable"]["cpu"], "4");
        assert_eq!(st["capacity"]["memory"], "8Gi");
        assert_eq!(st["nodeInfo"]["kubeletVersion"], KUBELET_VERSION);
        assert_eq!(st["nodeInfo"]["containerRuntimeVersion"], "sim://0.1");
        assert_eq!(st["nodeInfo"]["operatingSystem"], "linux");
        assert_eq!(st["nodeInfo"]["architecture"], "amd64");
        assert_eq!(
            st["addresses"],
            json!([{"type": "InternalIP", "address": "127.0.0.1"},
                   {"type": "Hostname", "address": "sim-1"}])
        );
        let conds = st["conditions"].as_array().unwrap();
        let ready = conds.iter().find(|c| c["type"] == "Ready").unwrap();
        assert_eq!(ready["status"], "True");
        assert_eq!(ready["reason"], "KubeletReady");
        assert_eq!(ready["message"], "kubelet is posting ready status");
        assert_eq!(ready["lastHeartbeatTime"], "2025-01-02T03:04:05Z");
        for kind in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            let c = conds.iter().find(|c| c["type"] == kind).unwrap();
            assert_eq!(c["status"], "False", "{kind}");
        }
        // a stable machine id per node name
        let again = node_status(&spec(), &sys(), 110, &Value::Null, now);
        assert_eq!(st["nodeInfo"]["machineID"], again["nodeInfo"]["machineID"]);
        assert_eq!(st["nodeInfo"]["machineID"].as_str().unwrap().len(), 32);
    }

    #[test]
    fn ready_transition_time_changes_only_on_a_transition() {
        let now = DateTime::parse_from_rfc3339("2025-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let was_ready = json!({"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}
        ]});
        let c = node_conditions(&was_ready, now);
        assert_eq!(c[3]["lastTransitionTime"], "2025-01-01T00:00:00Z");
        assert_eq!(c[3]["lastHeartbeatTime"], "2025-01-02T03:04:05Z");
        let was_unknown = json!({"conditions": [
            {"type": "Ready", "status": "Unknown", "lastTransitionTime": "2025-01-01T00:00:00Z"}
        ]});
        let c = node_conditions(&was_unknown, now);
        assert_eq!(c[3]["lastTransitionTime"], "2025-01-02T03:04:05Z");
    }

    #[test]
    fn uuids_look_like_uuids() {
        let u = random_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
        assert_ne!(u, random_uuid());
    }
}
