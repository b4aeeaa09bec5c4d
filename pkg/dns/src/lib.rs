//! Cluster DNS, node-local: every node serves the cluster zone (Services, EndpointSlices) on
//! `--cluster-dns` (a /32 on the dummy interface `skiff-dns`, UDP and TCP 53) and forwards
//! other names to the node's resolvers (network-wire.md §4). Pods reach it through their
//! default gateway; the Service `kube-system/kube-dns` only names the address.

pub mod forward;
mod iface;
pub mod records;
mod server;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Api;
use records::Table;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use server::{serve, Zone};

/// The dummy interface that carries the cluster DNS address on every node.
pub const INTERFACE: &str = "skiff-dns";
/// The annotation on `kube-system/kube-dns` that tells the service proxy to leave it alone:
/// its address is served on every node, not load-balanced to pods.
pub const NODE_LOCAL_ANNOTATION: &str = "skiff.io/node-local-dns";
/// Record TTL of cluster names (CoreDNS kubernetes plugin default).
pub const DEFAULT_TTL: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("netlink: {0}: run as root (CAP_NET_ADMIN) in the node's network namespace")]
    Netlink(String),
    #[error("listen on {addr}: {source}: is another DNS server bound there? stop it or disable skiff's with --disable dns")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("upstream nameserver: {0}")]
    Upstream(String),
    #[error("the DNS server stopped: {0}")]
    Server(String),
    #[error("watch {what}: {message}: check that the node may list and watch it")]
    Watch { what: &'static str, message: String },
}

/// What the node's DNS server serves.
#[derive(Clone, Debug)]
pub struct DnsConfig {
    /// `--cluster-dns`: the address the server listens on.
    pub address: Ipv4Addr,
    /// UDP and TCP port (53).
    pub port: u16,
    /// `--cluster-domain` (cluster.local).
    pub domain: String,
    /// `--resolv-conf`: where the upstream resolvers are (default /etc/resolv.conf).
    pub resolv_conf: PathBuf,
    /// TTL of cluster records (seconds).
    pub ttl: u32,
    /// Put `address/32` on this dummy interface first (None: the address is already local).
    pub interface: Option<String>,
}

impl DnsConfig {
    pub fn new(address: Ipv4Addr, domain: &str, resolv_conf: PathBuf) -> DnsConfig {
        DnsConfig {
            address,
            port: 53,
            domain: domain.to_string(),
            resolv_conf,
            ttl: DEFAULT_TTL,
            interface: Some(INTERFACE.to_string()),
        }
    }
}

/// Serves cluster DNS until an error: the interface, the listeners, and the watches that
/// keep the table current.
pub async fn run(client: kube::Client, cfg: DnsConfig) -> Result<(), Error> {
    if let Some(name) = &cfg.interface {
        iface::ensure(name, cfg.address).await?;
    }
    let zone = Zone::new(&cfg.domain, cfg.ttl);
    let fwd = Arc::new(forward::Forwarder::from_resolv_conf(&cfg.resolv_conf));
    let addr = SocketAddr::new(IpAddr::V4(cfg.address), cfg.port);
    let server = serve(addr, zone.clone(), fwd).await?;
    tracing::info!(%addr, domain = %cfg.domain, "cluster DNS listening");
    tokio::select! {
        r = server.done() => r,
        r = watch(client, zone) => r,
    }
}

/// Keeps `zone`'s table equal to the cluster's Services and EndpointSlices.
async fn watch(client: kube::Client, zone: Zone) -> Result<(), Error> {
    let (svc_reader, svc_writer) = reflector::store::<Service>();
    let (eps_reader, eps_writer) = reflector::store::<EndpointSlice>();
    let changed = Arc::new(tokio::sync::Notify::new());
    let services = {
        let changed = changed.clone();
        reflector(
            svc_writer,
            watcher(
                Api::<Service>::all(client.clone()),
                watcher::Config::default(),
            )
            .default_backoff(),
        )
        .for_each(move |ev| {
            if let Err(e) = ev {
                tracing::warn!(error = %e, "watching Services");
            }
            changed.notify_one();
            std::future::ready(())
        })
    };
    let slices = {
        let changed = changed.clone();
        reflector(
            eps_writer,
            watcher(
                Api::<EndpointSlice>::all(client),
                watcher::Config::default(),
            )
            .default_backoff(),
        )
        .for_each(move |ev| {
            if let Err(e) = ev {
                tracing::warn!(error = %e, "watching EndpointSlices");
            }
            changed.notify_one();
            std::future::ready(())
        })
    };
    let rebuild = async {
        for (what, r) in [
            ("services", svc_reader.wait_until_ready().await),
            ("endpointslices", eps_reader.wait_until_ready().await),
        ] {
            r.map_err(|e| Error::Watch {
                what,
                message: e.to_string(),
            })?;
        }
        loop {
            let svcs = svc_reader.state();
            let eps = eps_reader.state();
            let t = Table::build(
                &zone.domain,
                svcs.iter().map(|s| s.as_ref()),
                eps.iter().map(|s| s.as_ref()),
            );
            zone.set(t);
            changed.notified().await;
            // Let a burst of changes (a rollout) settle into one rebuild.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        () = services => Err(Error::Watch { what: "services", message: "the watch ended".into() }),
        () = slices => Err(Error::Watch { what: "endpointslices", message: "the watch ended".into() }),
        r = rebuild => r,
    }
}
