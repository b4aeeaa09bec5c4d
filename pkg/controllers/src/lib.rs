//! skiff's controllers: one module per control loop, each a reconcile function with a pure
//! planning core, fed by shared informers (one watch and one cache per kind for all of them)
//! through a common work queue. They talk to the API server only through kube-rs.

pub mod controller;
pub mod cronjob;
pub mod csrsigning;
pub mod daemonset;
pub mod deploy;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod events;
pub mod gc;
pub mod hpa;
pub mod informer;
pub mod ingressstatus;
pub mod job;
pub mod localpath;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod pvbinder;
pub mod queue;
pub mod replicaset;
pub mod serviceaccount;
pub mod servicelb;
pub mod statefulset;
pub mod util;

use std::time::Duration;

/// Errors of the controllers crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("kubeconfig: {0}")]
    Config(String),
    #[error("{0}")]
    Other(String),
}

/// Settings the control loops share (from `skiff server` flags).
#[derive(Debug, Clone)]
pub struct Config {
    /// A node whose lease is older than this is NotReady/Unknown (`--node-monitor-grace-period`).
    pub node_monitor_grace_period: Duration,
    /// How often the node lifecycle controller looks at leases.
    pub node_monitor_period: Duration,
    /// The cluster CA certificate (PEM) published as `kube-root-ca.crt` in every namespace;
    /// empty skips publishing.
    pub ca_pem: String,
    /// Give Nodes without one a pod CIDR (`--allocate-node-cidrs`).
    pub allocate_node_cidrs: bool,
    /// The cluster (pod) CIDR node pod CIDRs are cut from (`--cluster-cidr`).
    pub cluster_cidr: String,
    /// The prefix length of each node's pod CIDR (`--node-cidr-mask-size`).
    pub node_cidr_mask_size: u8,
    /// Publish LoadBalancer Services on the nodes' addresses (`--disable servicelb` turns it off).
    pub service_lb: bool,
    /// Publish the nodes' addresses in served Ingresses' status (`--disable ingress` turns it off).
    pub ingress: bool,
    /// The server's CAs, for signing approved CertificateSigningRequests; `None` runs no signer.
    pub signer: Option<std::sync::Arc<skiff_pki::Pki>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_monitor_grace_period: Duration::from_secs(40),
            node_monitor_period: Duration::from_secs(5),
            ca_pem: String::new(),
            allocate_node_cidrs: true,
            cluster_cidr: "10.42.0.0/16".to_string(),
            node_cidr_mask_size: 24,
            service_lb: true,
            ingress: true,
            signer: None,
        }
    }
}

/// Most requests one in-process client has in flight (watch streams count only until their
/// headers arrive). Like kube-controller-manager's client QPS limit, it keeps a burst of
/// controller writes (a ReplicaSet creates up to 500 pods per sync) from queueing every other
/// caller behind it inside the API server.
pub const CLIENT_MAX_IN_FLIGHT: usize = 16;

/// A kube-rs client from a kubeconfig document (the server builds one for its own identity),
/// with at most [`CLIENT_MAX_IN_FLIGHT`] requests in flight.
pub async fn client_from_kubeconfig_yaml(yaml: &str) -> Result<kube::Client, Error> {
    let kc = kube::config::Kubeconfig::from_yaml(yaml).map_err(|e| Error::Config(e.to_string()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Config(e.to_string()))?;
    let builder = kube::client::ClientBuilder::try_from(cfg)?;
    Ok(builder
        .with_layer(&tower::limit::ConcurrencyLimitLayer::new(
            CLIENT_MAX_IN_FLIGHT,
        ))
        .build())
}

/// Starts every control loop: creates the shared informer factory, lets each controller
/// register its handlers and spawn its workers, then starts one watch per kind.
pub fn spawn_all(client: kube::Client, cfg: std::sync::Arc<Config>) {
    let factory = informer::Factory::new(client.clone());
    replicaset::start(&factory, cfg.clone());
    deployment::start(&factory, cfg.clone());
    daemonset::start(&factory, cfg.clone());
    statefulset::start(&factory, cfg.clone());
    job::start(&factory, cfg.clone());
    cronjob::start(&factory, cfg.clone());
    endpoints::start(&factory, cfg.clone());
    endpointslice::start(&factory, cfg.clone());
    namespace::start(&factory, cfg.clone());
    nodelifecycle::start(&factory, cfg.clone());
    serviceaccount::start(&factory, cfg.clone());
    servicelb::start(&factory, cfg.clone());
    ingressstatus::start(&factory, cfg.clone());
    nodeipam::start(&factory, cfg.clone());
    pvbinder::start(&factory, cfg.clone());
    disruption::start(&factory, cfg.clone());
    hpa::start(&factory, cfg.clone());
    localpath::start(&factory, cfg.clone());
    csrsigning::start(&factory, cfg.clone());
    // The garbage collector keeps its own metadata-only watches (it sees many kinds generically
    // and keeps a small graph node per object, no object); restarted if it ever returns.
    tokio::spawn(async move {
        loop {
            match gc::run(client.clone(), cfg.clone()).await {
                Ok(()) => tracing::warn!(
                    controller = "garbage-collector",
                    "control loop ended, restarting"
                ),
                Err(e) => {
                    tracing::warn!(controller = "garbage-collector", error = %e, "control loop failed, restarting")
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    factory.start();
}
