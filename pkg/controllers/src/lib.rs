//! skiff's controllers: one module per control loop, each a reconcile function over kube-rs
//! watchers with a pure planning core. They talk to the API server only through kube-rs.

pub mod deployment;
pub mod events;
pub mod gc;
pub mod replicaset;

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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_monitor_grace_period: Duration::from_secs(40),
            node_monitor_period: Duration::from_secs(5),
        }
    }
}

/// A kube-rs client from a kubeconfig document (the server builds one for its own identity).
pub async fn client_from_kubeconfig_yaml(yaml: &str) -> Result<kube::Client, Error> {
    let kc = kube::config::Kubeconfig::from_yaml(yaml).map_err(|e| Error::Config(e.to_string()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Config(e.to_string()))?;
    Ok(kube::Client::try_from(cfg)?)
}
