//! Runs the infrastructure controllers (endpoints, endpointslices, namespace, node lifecycle,
//! service accounts) against the cluster of `$KUBECONFIG`, for trying them on a real server.
//! Stop it with Ctrl-C.
//!
//! Environment: `CA_FILE` (PEM published as `kube-root-ca.crt`), `NODE_GRACE_SECS` (node
//! monitor grace period, default 40), `NODE_PERIOD_SECS` (monitor period, default 5).

use skiff_controllers::informer::Factory;
use skiff_controllers::{
    endpoints, endpointslice, namespace, nodelifecycle, serviceaccount, Config,
};
use std::sync::Arc;
use std::time::Duration;

fn secs(var: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber_init();
    let client = kube::Client::try_default().await?;
    let ca_pem = match std::env::var("CA_FILE") {
        Ok(path) => std::fs::read_to_string(path)?,
        Err(_) => String::new(),
    };
    let cfg = Arc::new(Config {
        node_monitor_grace_period: secs("NODE_GRACE_SECS", 40),
        node_monitor_period: secs("NODE_PERIOD_SECS", 5),
        ca_pem,
        ..Config::default()
    });
    let factory = Factory::new(client);
    endpoints::start(&factory, cfg.clone());
    endpointslice::start(&factory, cfg.clone());
    namespace::start(&factory, cfg.clone());
    nodelifecycle::start(&factory, cfg.clone());
    serviceaccount::start(&factory, cfg);
    factory.start();
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Logs to stderr at the `RUST_LOG` level (default `info`).
fn tracing_subscriber_init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
