//! skiff's agent (kubelet): join, node registration and lease heartbeat, pod sync, runtimes
//! (simulated now; containerd later).
//!
//! `skiff agent --runtime sim` runs one simulated node and `skiff hollow --nodes N` runs many in
//! one process; both join the server securely (see [`join`]) and then go through [`sim::run`].
//!
//! Simulated pods: a pod bound to a simulated node is reported Running (pod IP from the node's
//! pod CIDR, containers ready) after `--pod-start-delay`. A pod whose `restartPolicy` is `Never`
//! or `OnFailure` and that carries the annotation `skiff.io/sim-exit-code: "N"` exits with `N`
//! after `skiff.io/sim-run-seconds` (default 0) and goes Succeeded (0) or Failed. A deleted
//! pod is reported terminated and removed with grace period 0.

pub mod certrenew;
pub mod cidr;
pub mod containerd;
pub mod cri;
pub mod eviction;
pub mod host;
pub mod join;
pub mod kubelet;
pub mod kubeletapi;
pub mod loadbalancer;
pub mod localpath;
pub mod node;
pub mod podstatus;
pub mod realagent;
pub mod sim;
pub mod tunnel;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

pub use cidr::{CidrError, Ipv4Net};
pub use node::{parse_label, parse_taint, NodeSpec, Taint};
pub use sim::SimOptions;

/// Errors of the agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("join: {0}")]
    Join(String),
    #[error("{what}: {detail}{hint}")]
    Api {
        what: String,
        detail: String,
        hint: &'static str,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(transparent)]
    Cidr(#[from] CidrError),
    #[error("{0}")]
    Config(String),
    /// The container runtime (containerd, CRI, CNI, images) failed; the message says what to do.
    #[error("{0}")]
    Runtime(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn api(what: &str, source: kube::Error) -> Self {
        let hint = match &source {
            kube::Error::Api(s) if s.code == 401 => {
                ": the server rejected the token; use the current one from `skiff token`"
            }
            kube::Error::Api(s) if s.code == 403 => {
                ": the node identity lacks a permission; check the system:node ClusterRole"
            }
            _ => "",
        };
        let detail = match &source {
            kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
            other => other.to_string(),
        };
        Error::Api {
            what: what.to_string(),
            detail,
            hint,
            source: Box::new(source),
        }
    }
}

/// `skiff agent --runtime sim`: one simulated node.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// `https://host:port` of a skiff server.
    pub server: String,
    /// A `K10…` token or a bare password.
    pub token: String,
    pub node_name: String,
    pub data_dir: PathBuf,
    /// InternalIP; default: the local address the host uses to reach the server.
    pub node_ip: Option<Ipv4Addr>,
    pub labels: Vec<(String, String)>,
    pub taints: Vec<Taint>,
    pub max_pods: u32,
    pub sim: SimOptions,
    /// Reach the API through the client-side load balancer ([`loadbalancer`]).
    pub apiserver_lb: bool,
}

/// `skiff hollow --nodes N`: many simulated nodes in one process.
#[derive(Debug, Clone)]
pub struct HollowConfig {
    pub server: String,
    pub token: String,
    pub nodes: usize,
    /// Node names are `<prefix><index>`.
    pub name_prefix: String,
    /// Node CIDR mask; `None`: /24, or smaller blocks when not enough /24s are free.
    pub node_cidr_mask: Option<u8>,
    pub sim: SimOptions,
    /// Reach the API through the client-side load balancer ([`loadbalancer`]).
    pub apiserver_lb: bool,
}

/// The local IPv4 address this host uses to reach `server` (no packet is sent), or loopback.
pub async fn local_ip_towards(server: &http::Uri) -> Ipv4Addr {
    let host = server
        .host()
        .unwrap_or("127.0.0.1")
        .trim_matches(['[', ']']);
    let port = server.port_u16().unwrap_or(6443);
    let Ok(mut addrs) = tokio::net::lookup_host((host, port)).await else {
        return Ipv4Addr::LOCALHOST;
    };
    let Some(target) = addrs.find(|a| a.is_ipv4()) else {
        return Ipv4Addr::LOCALHOST;
    };
    let probe = async {
        let sock = tokio::net::UdpSocket::bind("0.0.0.0:0").await.ok()?;
        sock.connect(target).await.ok()?;
        match sock.local_addr().ok()?.ip() {
            IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
            _ => None,
        }
    };
    probe.await.unwrap_or(Ipv4Addr::LOCALHOST)
}

/// Runs `skiff agent --runtime sim` until the process ends.
pub async fn run_agent(cfg: AgentConfig) -> Result<(), Error> {
    if cfg.node_name.trim().is_empty() {
        return Err(Error::Config(
            "the node name is empty: pass --node-name or set SKIFF_NODE_NAME".into(),
        ));
    }
    let lb = match cfg.apiserver_lb {
        true => Some(loadbalancer::LoadBalancer::start(&cfg.server).await?),
        false => None,
    };
    let server = lb.as_ref().map_or(cfg.server.clone(), |lb| lb.local_url());
    let joined = join::join(&server, &cfg.token, Some(&cfg.data_dir)).await?;
    if let Some(lb) = &lb {
        lb.spawn_refresh(joined.client.clone());
    }
    let ip = match cfg.node_ip {
        Some(ip) => ip,
        None => local_ip_towards(&join::parse_server_url(&cfg.server)?).await,
    };
    tracing::info!(server = %joined.url, pinned = joined.pinned, node = %cfg.node_name,
        "joined the server");
    let spec = NodeSpec {
        name: cfg.node_name.clone(),
        ip,
        labels: cfg.labels.into_iter().collect(),
        taints: cfg.taints,
        max_pods: cfg.max_pods,
    };
    sim::run(joined.client, vec![spec], cfg.sim).await
}

/// The InternalIP of hollow node `i`: 127.1.0.1, 127.1.0.2, … (loopback, never routed).
pub fn hollow_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 1, 0, 0)).wrapping_add(i as u32 + 1))
}

/// Runs `skiff hollow` until the process ends.
pub async fn run_hollow(cfg: HollowConfig) -> Result<(), Error> {
    if cfg.nodes == 0 {
        return Err(Error::Config("--nodes must be at least 1".into()));
    }
    if cfg.nodes > 65_000 {
        return Err(Error::Config("--nodes must be at most 65000".into()));
    }
    let lb = match cfg.apiserver_lb {
        true => Some(loadbalancer::LoadBalancer::start(&cfg.server).await?),
        false => None,
    };
    let server = lb.as_ref().map_or(cfg.server.clone(), |lb| lb.local_url());
    let joined = join::join(&server, &cfg.token, None).await?;
    if let Some(lb) = &lb {
        lb.spawn_refresh(joined.client.clone());
    }
    tracing::info!(server = %joined.url, pinned = joined.pinned, nodes = cfg.nodes,
        "joined the server: registering hollow nodes");
    let mut sim = cfg.sim;
    sim.node_cidr_mask = cfg.node_cidr_mask;
    let specs = (0..cfg.nodes)
        .map(|i| NodeSpec {
            name: format!("{}{i}", cfg.name_prefix),
            ip: hollow_ip(i),
            labels: Default::default(),
            taints: Vec::new(),
            max_pods: node::DEFAULT_MAX_PODS,
        })
        .collect();
    sim::run(joined.client, specs, sim).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hollow_ips_are_unique_loopback_addresses() {
        assert_eq!(hollow_ip(0).to_string(), "127.1.0.1");
        assert_eq!(hollow_ip(255).to_string(), "127.1.1.0");
        assert!(hollow_ip(999).is_loopback());
        assert_ne!(hollow_ip(1), hollow_ip(2));
    }

    #[test]
    fn api_errors_say_what_to_do() {
        let e = Error::api(
            "list nodes",
            kube::Error::Api(Box::new(
                kube::core::Status::failure("Unauthorized", "Unauthorized").with_code(401),
            )),
        );
        assert!(e.to_string().contains("skiff token"), "{e}");
    }
}
