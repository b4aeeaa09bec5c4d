//! skiff's pod network between nodes, in the role of flannel with the kube subnet manager:
//! publishes the node's flannel annotations, keeps the `flannel.1` VXLAN device (or host-gw
//! routes) in step with every other Node's pod CIDR, and owns the `inet skiff-flannel` nftables
//! table (forward accept, masquerade). Everything lives in the caller's network namespace.

pub mod kernel;
pub mod nft;
pub mod plan;

use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};

pub use ipnet::Ipv4Net as Net;
pub use plan::{pod_mtu, Lease, NetState, Op};

/// Errors of the pod network.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("pod network configuration: {0}")]
    Config(String),
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("nftables: {0}")]
    Nft(String),
    #[error("{0}")]
    Io(String),
    #[error("kubernetes API: {0}")]
    Api(String),
}

/// `--flannel-backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    #[default]
    Vxlan,
    HostGw,
    /// No pod network between nodes (the user brings one).
    None,
}

impl Backend {
    /// The flag value, also flannel's `backend-type` annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Vxlan => "vxlan",
            Backend::HostGw => "host-gw",
            Backend::None => "none",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim() {
            "vxlan" => Ok(Backend::Vxlan),
            "host-gw" => Ok(Backend::HostGw),
            "none" => Ok(Backend::None),
            other => Err(Error::Config(format!(
                "unknown flannel backend {other:?}: use vxlan, host-gw or none"
            ))),
        }
    }
}

/// What the agent knows once its pod CIDR is assigned.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    pub node_name: String,
    /// The node's InternalIP, flannel's public-ip.
    pub node_ip: Ipv4Addr,
    pub backend: Backend,
    /// `--flannel-iface`; default: the interface holding `node_ip`.
    pub iface: Option<String>,
    pub cluster_cidr: Ipv4Net,
    pub pod_cidr: Ipv4Net,
}

/// How often the kernel state and the nftables table are re-asserted without a Node change.
pub const RESYNC: Duration = Duration::from_secs(10);

/// The MTU pods of this node get (for the CNI config): the external interface's MTU, minus
/// the VXLAN overhead with the vxlan backend.
pub async fn pod_mtu_for(cfg: &NetworkConfig) -> Result<u32, Error> {
    let k = kernel::Kernel::connect()?;
    let ext = k.external(cfg.iface.as_deref(), cfg.node_ip).await?;
    Ok(plan::pod_mtu(cfg.backend, ext.mtu))
}

/// Runs the pod network until the task is dropped. Setup failures are retried with backoff
/// (they are logged, with what to do); only a `none` backend returns.
pub async fn run(client: kube::Client, cfg: NetworkConfig) -> Result<(), Error> {
    if cfg.backend == Backend::None {
        tracing::info!("flannel backend none: no pod network between nodes from skiff");
        return Ok(());
    }
    let mut delay = Duration::from_secs(1);
    loop {
        match run_once(&client, &cfg).await {
            Ok(()) => delay = Duration::from_secs(1),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "pod network failed, retrying");
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
        tokio::time::sleep(delay).await;
    }
}

async fn run_once(client: &kube::Client, cfg: &NetworkConfig) -> Result<(), Error> {
    set_ip_forward().await?;
    let k = kernel::Kernel::connect()?;
    let ext = k.external(cfg.iface.as_deref(), cfg.node_ip).await?;
    let mac = plan::vtep_mac(&cfg.node_name);
    let vxlan = match cfg.backend {
        Backend::Vxlan => Some(k.ensure_vxlan(&ext, &mac, cfg.pod_cidr).await?),
        _ => {
            k.remove_vxlan().await?;
            None
        }
    };
    let rules = nft::ruleset(cfg.cluster_cidr, cfg.pod_cidr);
    nft::apply(&rules).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let patch = serde_json::json!({"metadata": {
        "annotations": plan::node_annotations(cfg.backend, ext.ip, &mac)
    }});
    nodes
        .patch(
            &cfg.node_name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|e| {
            Error::Api(format!(
                "publish the flannel annotations on node {}: {e}",
                cfg.node_name
            ))
        })?;
    // As flannel does once its subnet is up: the node's NetworkUnavailable condition is False
    // (a strategic merge keyed by type, so the kubelet's own conditions stay).
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let condition = serde_json::json!({"status": {"conditions": [{
        "type": "NetworkUnavailable",
        "status": "False",
        "reason": "FlannelIsUp",
        "message": "Flannel is running on this node",
        "lastTransitionTime": now,
        "lastHeartbeatTime": now,
    }]}});
    nodes
        .patch_status(
            &cfg.node_name,
            &PatchParams::default(),
            &Patch::Strategic(&condition),
        )
        .await
        .map_err(|e| {
            Error::Api(format!(
                "set NetworkUnavailable=False on node {}: {e}",
                cfg.node_name
            ))
        })?;
    tracing::info!(backend = cfg.backend.as_str(), iface = %ext.name, public_ip = %ext.ip,
        pod_cidr = %cfg.pod_cidr, "pod network up");

    let (reader, writer) = reflector::store::<Node>();
    let mut events = reflector(writer, watcher(nodes, watcher::Config::default()))
        .default_backoff()
        .boxed();
    let mut tick = tokio::time::interval(RESYNC);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_skipped = Vec::new();
    let mut last_leases: Option<Vec<Lease>> = None;
    loop {
        let periodic = tokio::select! {
            ev = events.next() => {
                match ev {
                    // Init pages fill the store only at InitDone: reconcile on every event.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => tracing::warn!(error = %e, "node watch failed (retried)"),
                    None => return Err(Error::Api("the node watch ended".into())),
                }
                false
            }
            _ = tick.tick() => true,
        };
        if reader.state().is_empty() {
            // Not listed yet (this node itself is always there once it is).
            continue;
        }
        let mut leases: Vec<Lease> = reader
            .state()
            .iter()
            .filter_map(|n| plan::lease_of(n))
            .collect();
        leases.sort_by(|a, b| a.node.cmp(&b.node));
        // Node heartbeats change nothing here: only lease changes (and the resync) reconcile.
        if !periodic && last_leases.as_ref() == Some(&leases) {
            continue;
        }
        let (want, skipped) = plan::desired(&cfg.node_name, cfg.backend, cfg.cluster_cidr, &leases);
        if skipped != last_skipped {
            for (node, why) in &skipped {
                tracing::warn!(node, reason = %why, "node left out of the pod network");
            }
            last_skipped = skipped;
        }
        if periodic {
            // Re-assert what others (or a restart of the device) may have removed.
            nft::apply(&rules).await?;
            if cfg.backend == Backend::Vxlan {
                k.ensure_vxlan(&ext, &mac, cfg.pod_cidr).await?;
            }
        }
        let current = k
            .state(vxlan, ext.index, cfg.cluster_cidr, cfg.pod_cidr)
            .await?;
        let ops = plan::diff(&want, &current);
        let mut failed = false;
        for op in &ops {
            match k.apply(op, cfg.backend, vxlan, ext.index).await {
                Ok(()) => tracing::info!(?op, "pod network changed"),
                Err(e) => {
                    failed = true;
                    tracing::warn!(?op, error = %e, "pod network change failed (retried on the next resync)")
                }
            }
        }
        last_leases = (!failed).then_some(leases);
    }
}

/// `net.ipv4.ip_forward=1` in this network namespace.
async fn set_ip_forward() -> Result<(), Error> {
    const PATH: &str = "/proc/sys/net/ipv4/ip_forward";
    if tokio::fs::read_to_string(PATH)
        .await
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
    {
        return Ok(());
    }
    tokio::fs::write(PATH, "1").await.map_err(|e| {
        Error::Io(format!(
            "enable IPv4 forwarding ({PATH}): {e}: run the agent as root"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_parse_by_their_flag_names() {
        for b in [Backend::Vxlan, Backend::HostGw, Backend::None] {
            assert_eq!(b.as_str().parse::<Backend>().unwrap(), b);
        }
        let e = "wireguard".parse::<Backend>().unwrap_err().to_string();
        assert!(e.contains("use vxlan, host-gw or none"), "{e}");
    }
}
