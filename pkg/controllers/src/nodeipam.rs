//! Node IPAM (kube-controller-manager's `--allocate-node-cidrs` range allocator): every Node
//! without `spec.podCIDR` gets the lowest free `/mask` block of the cluster CIDR, claimed with a
//! `kube-system/pod-cidr-<net>-<mask>` Lease first (the same claim the simulated agents make,
//! so the two allocators never hand out one block twice). A block is free when no Node holds
//! it and no claim Lease names it; the claims are owned by their Node, so deleting the Node
//! releases its block (the controller also deletes them itself when it sees the Node go).

use crate::controller::{Action, Controller};
use crate::endpoints::api_code;
use crate::events::Recorder;
use crate::informer::{Change as InformerChange, Factory, Store};
use crate::util::ObjectKey;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Namespace of the pod CIDR claim Leases.
pub const CLAIM_NAMESPACE: &str = "kube-system";
/// Label every claim Lease carries.
pub const CLAIM_LABEL: &str = "skiff.io/pod-cidr-claim";
/// Annotation the simulated agents put on their Nodes; they allocate their own pod CIDR
/// (possibly with a smaller mask chosen for thousands of nodes), so the controller leaves them
/// alone.
pub const RUNTIME_ANNOTATION: &str = "skiff.io/runtime";

/// Errors of CIDR parsing and planning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("invalid CIDR {0:?}: use an IPv4 network like 10.42.0.0/16")]
    Invalid(String),
    #[error(
        "node CIDR mask /{mask} must be at least as long as the cluster CIDR {cluster} and at most /30: fix --node-cidr-mask-size"
    )]
    BadMask { cluster: Cidr, mask: u8 },
}

/// An IPv4 network (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    base: u32,
    prefix: u8,
}

fn mask_bits(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

impl Cidr {
    /// The network of `addr` with `prefix` bits.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Cidr, IpamError> {
        if prefix > 32 {
            return Err(IpamError::Invalid(format!("{addr}/{prefix}")));
        }
        Ok(Cidr {
            base: u32::from(addr) & mask_bits(prefix),
            prefix,
        })
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether the two blocks share an address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        let p = self.prefix.min(other.prefix);
        self.base & mask_bits(p) == other.base & mask_bits(p)
    }

    /// The `/mask` blocks of this network, lowest first.
    pub fn blocks(&self, mask: u8) -> Result<impl Iterator<Item = Cidr>, IpamError> {
        if mask < self.prefix || mask > 30 {
            return Err(IpamError::BadMask {
                cluster: *self,
                mask,
            });
        }
        let count = 1u64 << (mask - self.prefix);
        let step = 1u64 << (32 - u32::from(mask));
        let base = u64::from(self.base);
        Ok((0..count).map(move |i| Cidr {
            base: (base + i * step) as u32,
            prefix: mask,
        }))
    }

    /// The claim Lease name of this block (`pod-cidr-10.42.3.0-24`).
    pub fn claim_name(&self) -> String {
        format!("pod-cidr-{}-{}", self.network(), self.prefix)
    }

    /// The block a claim Lease name stands for.
    pub fn from_claim_name(name: &str) -> Option<Cidr> {
        let rest = name.strip_prefix("pod-cidr-")?;
        let (ip, prefix) = rest.rsplit_once('-')?;
        Cidr::new(ip.parse().ok()?, prefix.parse().ok()?).ok()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = IpamError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IpamError::Invalid(s.to_string());
        let (ip, prefix) = s.trim().split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        Cidr::new(ip, prefix).map_err(|_| bad())
    }
}

/// A claim Lease as the planner reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub block: Cidr,
    /// `spec.holderIdentity`: the node name.
    pub holder: String,
    /// The uid of the Node owning the claim (empty when it has no owner reference).
    pub owner_uid: String,
}

impl Claim {
    /// Reads a claim Lease (None for other Leases).
    pub fn from_lease(l: &Lease) -> Option<Claim> {
        let block = Cidr::from_claim_name(l.metadata.name.as_deref()?)?;
        Some(Claim {
            block,
            holder: l
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.clone())
                .unwrap_or_default(),
            owner_uid: l
                .metadata
                .owner_references
                .as_ref()
                .and_then(|o| o.first())
                .map(|o| o.uid.clone())
                .unwrap_or_default(),
        })
    }

    fn held_by(&self, node: &Node) -> bool {
        self.holder == node.name_any()
            && (self.owner_uid.is_empty() || Some(&self.owner_uid) == node.metadata.uid.as_ref())
    }
}

/// The pod CIDRs a Node holds (`spec.podCIDRs`, else `spec.podCIDR`).
pub fn node_cidrs(node: &Node) -> Vec<Cidr> {
    let spec = node.spec.as_ref();
    let list: Vec<String> = match spec.and_then(|s| s.pod_cidrs.clone()) {
        Some(l) if !l.is_empty() => l,
        _ => spec
            .and_then(|s| s.pod_cidr.clone())
            .filter(|c| !c.is_empty())
            .into_iter()
            .collect(),
    };
    list.iter().filter_map(|c| c.parse().ok()).collect()
}

/// What one Node needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Create the claim Lease for the block, then set it as the node's pod CIDR.
    Claim(Cidr),
    /// The node already holds a claim (an agent claimed it, or our earlier attempt did not
    /// finish): set it as the pod CIDR.
    Adopt(Cidr),
    /// Delete a claim the node holds but does not use (both allocators claimed a block for it).
    Release(Cidr),
    /// No free block is left.
    Exhausted,
}

/// Plans one Node against every Node and claim (the pure core of the allocator).
pub fn plan(
    node: &Node,
    nodes: &[Arc<Node>],
    claims: &[Claim],
    cluster: Cidr,
    mask: u8,
) -> Result<Vec<Change>, IpamError> {
    if node.metadata.deletion_timestamp.is_some() {
        return Ok(Vec::new());
    }
    if node
        .annotations()
        .get(RUNTIME_ANNOTATION)
        .map(String::as_str)
        == Some("sim")
    {
        return Ok(Vec::new());
    }
    let mine: Vec<Cidr> = {
        let mut v: Vec<Cidr> = claims
            .iter()
            .filter(|c| c.held_by(node))
            .map(|c| c.block)
            .collect();
        v.sort();
        v
    };
    let current = node_cidrs(node);
    if !current.is_empty() {
        return Ok(mine
            .into_iter()
            .filter(|b| !current.contains(b))
            .map(Change::Release)
            .collect());
    }
    if let Some(b) = mine.first() {
        return Ok(vec![Change::Adopt(*b)]);
    }
    let name = node.name_any();
    let mut taken: Vec<Cidr> = nodes
        .iter()
        .filter(|n| n.name_any() != name)
        .flat_map(|n| node_cidrs(n))
        .collect();
    taken.extend(claims.iter().map(|c| c.block));
    for b in cluster.blocks(mask)? {
        if !taken.iter().any(|t| t.overlaps(&b)) {
            return Ok(vec![Change::Claim(b)]);
        }
    }
    Ok(vec![Change::Exhausted])
}

/// The claim Lease of `block` for `node`, owned by the Node.
pub fn claim_lease(block: Cidr, node: &Node) -> Lease {
    let name = node.name_any();
    Lease {
        metadata: ObjectMeta {
            name: Some(block.claim_name()),
            namespace: Some(CLAIM_NAMESPACE.to_string()),
            labels: Some(BTreeMap::from([(
                CLAIM_LABEL.to_string(),
                "true".to_string(),
            )])),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".to_string(),
                kind: "Node".to_string(),
                name: name.clone(),
                uid: node.metadata.uid.clone().unwrap_or_default(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name),
            ..Default::default()
        }),
    }
}

/// Registers the allocator on the shared informers (Nodes, claim Leases) and spawns its
/// worker. A no-op when `cfg.allocate_node_cidrs` is off or the CIDR settings are invalid
/// (logged).
pub fn start(factory: &Factory, cfg: Arc<crate::Config>) {
    if !cfg.allocate_node_cidrs {
        return;
    }
    let cluster: Cidr = match cfg.cluster_cidr.parse() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "node IPAM disabled");
            return;
        }
    };
    let mask = cfg.node_cidr_mask_size;
    if let Err(e) = cluster.blocks(mask) {
        tracing::error!(error = %e, "node IPAM disabled");
        return;
    }
    let leases = factory.informer_selected::<Lease>(&format!("{CLAIM_LABEL}=true"), "");
    let ctx = Arc::new(Ctx {
        client: factory.client(),
        recorder: Recorder::new(factory.client(), "node-ipam-controller"),
        nodes: factory.store::<Node>(),
        leases: leases.store(),
        cluster,
        mask,
    });
    let (c, nodes) = (factory.client(), ctx.nodes.clone());
    Controller::new(factory, "nodeipam")
        .backoff(Duration::from_millis(200), Duration::from_secs(30))
        .watches::<Node, _>(move |ch| match ch {
            InformerChange::Applied { new, .. } => node_cidrs(new)
                .is_empty()
                .then(|| ObjectKey::cluster(new.name_any())),
            InformerChange::Deleted(n) => {
                let (c, n) = (c.clone(), n.clone());
                tokio::spawn(async move { release_deleted(&c, &n).await });
                None
            }
        })
        .watches_informer(leases, move |ch| {
            let claim = Claim::from_lease(ch.object())?;
            let known = nodes.get("", &claim.holder).is_some();
            known.then(|| ObjectKey::cluster(claim.holder))
        })
        .resync(Duration::from_secs(60))
        .resync_keys({
            let nodes = ctx.nodes.clone();
            move || {
                nodes
                    .all()
                    .iter()
                    .map(|n| ObjectKey::cluster(n.name_any()))
                    .collect()
            }
        })
        .run(ctx, |ctx: Arc<Ctx>, key: ObjectKey| async move {
            let Some(node) = ctx.nodes.get("", &key.name) else {
                return Ok(Action::Done);
            };
            let claims: Vec<Claim> = ctx
                .leases
                .list(CLAIM_NAMESPACE)
                .iter()
                .filter_map(|l| Claim::from_lease(l))
                .collect();
            let changes = plan(&node, &ctx.nodes.all(), &claims, ctx.cluster, ctx.mask)
                .map_err(|e| crate::Error::Other(e.to_string()))?;
            let (client, recorder) = (&ctx.client, &ctx.recorder);
            apply(client, recorder, &node, changes, ctx.cluster, ctx.mask)
                .await
                .map(Action::after)
        });
}

struct Ctx {
    client: kube::Client,
    recorder: Recorder,
    nodes: Arc<Store<Node>>,
    leases: Arc<Store<Lease>>,
    cluster: Cidr,
    mask: u8,
}

async fn set_pod_cidr(client: &kube::Client, node: &str, block: Cidr) -> Result<(), kube::Error> {
    let patch = serde_json::json!({"spec": {"podCIDR": block.to_string(), "podCIDRs": [block.to_string()]}});
    Api::<Node>::all(client.clone())
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

async fn apply(
    client: &kube::Client,
    recorder: &Recorder,
    node: &Node,
    changes: Vec<Change>,
    cluster: Cidr,
    mask: u8,
) -> Result<Option<Duration>, crate::Error> {
    let name = node.name_any();
    let leases: Api<Lease> = Api::namespaced(client.clone(), CLAIM_NAMESPACE);
    for c in changes {
        match c {
            Change::Claim(block) => {
                match leases
                    .create(&PostParams::default(), &claim_lease(block, node))
                    .await
                {
                    Ok(_) => {}
                    // Someone claimed it first: look again once the cache has their claim.
                    Err(e) if api_code(&e) == Some(409) => {
                        return Ok(Some(Duration::from_millis(200)))
                    }
                    Err(e) => return Err(e.into()),
                }
                match set_pod_cidr(client, &name, block).await {
                    Ok(()) => {
                        tracing::info!(node = %name, cidr = %block, "assigned pod CIDR");
                    }
                    Err(e) if matches!(api_code(&e), Some(404) | Some(422)) => {
                        // Gone, or an agent set its own meanwhile: our claim is not needed.
                        let _ = leases
                            .delete(&block.claim_name(), &DeleteParams::default())
                            .await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Change::Adopt(block) => match set_pod_cidr(client, &name, block).await {
                Ok(()) => tracing::info!(node = %name, cidr = %block, "adopted claimed pod CIDR"),
                Err(e) if matches!(api_code(&e), Some(404) | Some(422)) => {}
                Err(e) => return Err(e.into()),
            },
            Change::Release(block) => match leases
                .delete(&block.claim_name(), &DeleteParams::default())
                .await
            {
                Ok(_) => tracing::debug!(node = %name, cidr = %block, "released unused claim"),
                Err(e) if api_code(&e) == Some(404) => {}
                Err(e) => return Err(e.into()),
            },
            Change::Exhausted => {
                let msg = format!(
                    "Node {name}: CIDR assignment failed: no free /{mask} block left in {cluster}; use a larger cluster CIDR or a longer node CIDR mask"
                );
                tracing::warn!(node = %name, "{msg}");
                recorder
                    .record(node, "Warning", "CIDRAssignmentFailed", &msg)
                    .await;
                return Ok(Some(Duration::from_secs(30)));
            }
        }
    }
    Ok(None)
}

/// Deletes the claims a deleted Node held (the garbage collector would too, via the owner
/// reference; doing it here frees the block at once).
async fn release_deleted(client: &kube::Client, node: &Node) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), CLAIM_NAMESPACE);
    for block in node_cidrs(node) {
        let Ok(Some(l)) = leases.get_opt(&block.claim_name()).await else {
            continue;
        };
        if Claim::from_lease(&l).is_some_and(|c| c.held_by(node)) {
            let dp = DeleteParams {
                preconditions: Some(kube::api::Preconditions {
                    uid: l.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match leases.delete(&block.claim_name(), &dp).await {
                Ok(_) => {
                    tracing::info!(node = %node.name_any(), cidr = %block, "released pod CIDR")
                }
                Err(e) => tracing::debug!(error = %e, "releasing a pod CIDR claim failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;

    fn node(name: &str, cidr: Option<&str>) -> Arc<Node> {
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                pod_cidr: cidr.map(String::from),
                pod_cidrs: cidr.map(|c| vec![c.to_string()]),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn claim(block: &str, holder: &str) -> Claim {
        Claim {
            block: block.parse().unwrap(),
            holder: holder.into(),
            owner_uid: format!("uid-{holder}"),
        }
    }

    fn cluster() -> Cidr {
        "10.42.0.0/16".parse().unwrap()
    }

    #[test]
    fn cidr_parsing_and_claim_names_round_trip() {
        let c: Cidr = "10.42.3.7/24".parse().unwrap();
        assert_eq!(c.to_string(), "10.42.3.0/24");
        assert_eq!(c.claim_name(), "pod-cidr-10.42.3.0-24");
        assert_eq!(Cidr::from_claim_name("pod-cidr-10.42.3.0-24"), Some(c));
        assert_eq!(Cidr::from_claim_name("kube-scheduler"), None);
        assert!("10.42.0.0".parse::<Cidr>().is_err());
        assert!("10.42.0.0/33".parse::<Cidr>().is_err());
        assert!(cluster().blocks(15).is_err());
        assert_eq!(cluster().blocks(24).unwrap().count(), 256);
    }

    #[test]
    fn lowest_free_block_skips_nodes_and_claims() {
        let nodes = vec![
            node("a", Some("10.42.0.0/24")),
            node("b", Some("10.42.2.0/24")),
            node("new", None),
        ];
        let claims = vec![claim("10.42.1.0/24", "c")];
        let got = plan(&nodes[2], &nodes, &claims, cluster(), 24).unwrap();
        assert_eq!(got, vec![Change::Claim("10.42.3.0/24".parse().unwrap())]);
    }

    #[test]
    fn blocks_of_other_sizes_count_by_overlap() {
        // A simulated node with a /28 inside 10.42.0.0/24 makes that /24 unusable.
        let nodes = vec![node("sim", Some("10.42.0.16/28")), node("new", None)];
        let got = plan(&nodes[1], &nodes, &[], cluster(), 24).unwrap();
        assert_eq!(got, vec![Change::Claim("10.42.1.0/24".parse().unwrap())]);
    }

    #[test]
    fn a_claim_the_node_holds_is_adopted_and_extra_claims_released() {
        let nodes = vec![node("n", None)];
        let claims = vec![claim("10.42.7.0/24", "n"), claim("10.42.5.0/24", "n")];
        let got = plan(&nodes[0], &nodes, &claims, cluster(), 24).unwrap();
        assert_eq!(got, vec![Change::Adopt("10.42.5.0/24".parse().unwrap())]);
        let done = node("n", Some("10.42.5.0/24"));
        let got = plan(&done, &nodes, &claims, cluster(), 24).unwrap();
        assert_eq!(got, vec![Change::Release("10.42.7.0/24".parse().unwrap())]);
    }

    #[test]
    fn a_claim_of_a_recreated_node_is_not_adopted() {
        let nodes = vec![node("n", None)];
        let mut old = claim("10.42.0.0/24", "n");
        old.owner_uid = "uid-of-the-old-n".into();
        let got = plan(&nodes[0], &nodes, &[old], cluster(), 24).unwrap();
        // Still taken (the garbage collector removes it), so the next block is chosen.
        assert_eq!(got, vec![Change::Claim("10.42.1.0/24".parse().unwrap())]);
    }

    #[test]
    fn exhausted_range_and_skipped_nodes() {
        let small: Cidr = "10.42.0.0/23".parse().unwrap();
        let nodes = vec![
            node("a", Some("10.42.0.0/24")),
            node("b", Some("10.42.1.0/24")),
            node("c", None),
        ];
        assert_eq!(
            plan(&nodes[2], &nodes, &[], small, 24).unwrap(),
            vec![Change::Exhausted]
        );
        // A node that has one needs nothing.
        assert!(plan(&nodes[0], &nodes, &[], small, 24).unwrap().is_empty());
        // Simulated nodes allocate their own.
        let mut sim = (*node("s", None)).clone();
        sim.metadata.annotations = Some(BTreeMap::from([(
            RUNTIME_ANNOTATION.to_string(),
            "sim".to_string(),
        )]));
        assert!(plan(&sim, &nodes, &[], small, 24).unwrap().is_empty());
    }

    #[test]
    fn claim_lease_matches_the_agents_shape() {
        let n = node("n", None);
        let block: Cidr = "10.42.9.0/24".parse().unwrap();
        let l = claim_lease(block, &n);
        assert_eq!(l.metadata.name.as_deref(), Some("pod-cidr-10.42.9.0-24"));
        assert_eq!(l.metadata.namespace.as_deref(), Some("kube-system"));
        assert_eq!(l.labels()[CLAIM_LABEL], "true");
        let c = Claim::from_lease(&l).unwrap();
        assert_eq!(c, claim("10.42.9.0/24", "n"));
        assert!(c.held_by(&n));
    }
}
