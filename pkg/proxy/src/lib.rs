//! skiff's service proxy (kube-proxy's nftables mode, in the agent): watches Services,
//! EndpointSlices and Nodes with the node's client and keeps the table `ip skiff-proxy` equal
//! to [`plan::plan`] of what it sees — ClusterIP, NodePort, LoadBalancer ports on this node's
//! addresses, session affinity, traffic policies, reject without endpoints.

pub mod nft;
pub mod plan;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Errors of the service proxy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("nft: {0}")]
    Nft(String),
    #[error("conntrack: {0}")]
    Conntrack(String),
    #[error("the {0} watch stopped before it synced; restart the agent")]
    WatchStopped(&'static str),
}

/// How often the proxy checks that its table is still there (rebuilt when it is not).
pub const CHECK: Duration = Duration::from_secs(30);

/// Settings of the proxy on one node.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// This node's name (endpoints with this `nodeName` are local).
    pub node_name: String,
    /// The cluster (pod) CIDR (`--cluster-cidr`).
    pub cluster_cidr: String,
    /// Changes arriving within this window are applied in one sync.
    pub debounce: Duration,
}

impl ProxyConfig {
    pub fn new(node_name: impl Into<String>, cluster_cidr: impl Into<String>) -> Self {
        ProxyConfig {
            node_name: node_name.into(),
            cluster_cidr: cluster_cidr.into(),
            debounce: Duration::from_millis(100),
        }
    }
}

/// A watch-fed cache of `K` whose every event wakes the sync loop.
fn cache<K>(api: Api<K>, wake: Arc<Notify>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream =
        reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(_) => wake.notify_one(),
                Err(e) => tracing::warn!(error = %e, "service proxy watch failed; retrying"),
            }
        }
    });
    reader
}

/// Runs the proxy until the process ends: waits for the first list of every kind, then
/// rebuilds the table from scratch (a restart resyncs) and applies each change after a short
/// debounce. A failed apply is retried after a second with a full rebuild.
pub async fn run(client: kube::Client, cfg: ProxyConfig) -> Result<(), Error> {
    nft::set_sysctls();
    let wake = Arc::new(Notify::new());
    let services = cache::<Service>(Api::all(client.clone()), wake.clone());
    let slices = cache::<EndpointSlice>(Api::all(client.clone()), wake.clone());
    let nodes = cache::<Node>(Api::all(client), wake.clone());
    services
        .wait_until_ready()
        .await
        .map_err(|_| Error::WatchStopped("Service"))?;
    slices
        .wait_until_ready()
        .await
        .map_err(|_| Error::WatchStopped("EndpointSlice"))?;
    nodes
        .wait_until_ready()
        .await
        .map_err(|_| Error::WatchStopped("Node"))?;
    tracing::info!(node = %cfg.node_name, "service proxy synced its caches");
    let ctx = plan::NodeContext {
        node_name: cfg.node_name.clone(),
        cluster_cidr: cfg.cluster_cidr.clone(),
    };
    let me = ObjectRef::<Node>::new(&cfg.node_name);
    let mut applied: Option<plan::Ruleset> = None;
    wake.notify_one();
    let mut check = tokio::time::interval(CHECK);
    check.tick().await;
    loop {
        tokio::select! {
            _ = wake.notified() => {}
            _ = check.tick() => {
                if applied.is_some() && !nft::table_present().await {
                    tracing::warn!("the service proxy's table is gone; rebuilding it");
                    applied = None;
                } else {
                    continue;
                }
            }
        }
        tokio::time::sleep(cfg.debounce).await;
        let (svcs, sls, all_nodes) = (services.state(), slices.state(), nodes.state());
        let own = nodes.get(&me);
        let svc_refs: Vec<&Service> = svcs.iter().map(|s| s.as_ref()).collect();
        let slice_refs: Vec<&EndpointSlice> = sls.iter().map(|s| s.as_ref()).collect();
        let node_refs: Vec<&Node> = all_nodes.iter().map(|n| n.as_ref()).collect();
        let started = std::time::Instant::now();
        let next = plan::plan(&svc_refs, &slice_refs, own.as_deref(), &node_refs, &ctx);
        if applied.as_ref() == Some(&next) {
            continue;
        }
        let script = next.render(applied.as_ref());
        match nft::apply(&script).await {
            Ok(()) => {
                tracing::debug!(
                    services = svcs.len(),
                    chains = next.chains.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "service rules synced"
                );
                if let Some(prev) = &applied {
                    for (ip, port) in next.gone_udp_endpoints(prev) {
                        if let Err(e) = nft::flush_udp(ip, port).await {
                            tracing::warn!(%ip, port, error = %e, "stale UDP conntrack entries not flushed");
                        }
                    }
                }
                applied = Some(next);
            }
            Err(e) => {
                tracing::warn!(error = %e, "service rules not applied; rebuilding the table in 1 s");
                applied = None;
                let wake = wake.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    wake.notify_one();
                });
            }
        }
    }
}
