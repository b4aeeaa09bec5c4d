//! Server configuration and the shared state every handler reads.

use crate::alloc::{IpAllocator, PortAllocator};
use crate::authz::PolicyCache;
use parking_lot::{Mutex, RwLock};
use skiff_pki::Pki;
use skiff_store::Store;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything `skiff server` passes to the API server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub bind_address: IpAddr,
    pub port: u16,
    pub advertise_address: Option<IpAddr>,
    pub service_cidr: String,
    pub cluster_cidr: String,
    pub cluster_dns: Ipv4Addr,
    pub cluster_domain: String,
    /// Create the cluster DNS Service `kube-system/kube-dns` (off with `--disable dns`).
    pub dns_service: bool,
    /// Create the default IngressClass `skiff` (off with `--disable ingress`).
    pub ingress_class: bool,
    pub node_port_range: (u16, u16),
    pub tls_sans: Vec<String>,
    pub event_ttl: Duration,
    /// `--token`: a full K10 token or a bare password; generated when absent.
    pub token: Option<String>,
    pub default_not_ready_toleration_seconds: i64,
    pub default_unreachable_toleration_seconds: i64,
    /// How often the store compacts.
    pub compact_interval: Duration,
    /// `--datastore-endpoint`: empty or `sqlite://PATH` for SQLite (default
    /// `<data>/server/db/state.db`), `postgres://…` for a PostgreSQL database,
    /// `http(s)://HOST:2379[,…]` for etcd.
    pub datastore_endpoint: String,
    /// `--datastore-cafile/--datastore-certfile/--datastore-keyfile`: TLS to etcd.
    pub datastore_tls: skiff_store::DatastoreTls,
    /// The build facts `/version` reports.
    pub build: crate::version::BuildInfo,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("/var/lib/skiff"),
            bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 6443,
            advertise_address: None,
            service_cidr: "10.43.0.0/16".into(),
            cluster_cidr: "10.42.0.0/16".into(),
            cluster_dns: Ipv4Addr::new(10, 43, 0, 10),
            cluster_domain: "cluster.local".into(),
            dns_service: true,
            ingress_class: true,
            node_port_range: (30000, 32767),
            tls_sans: vec![],
            event_ttl: Duration::from_secs(3600),
            token: None,
            default_not_ready_toleration_seconds: 300,
            default_unreachable_toleration_seconds: 300,
            compact_interval: Duration::from_secs(30),
            datastore_endpoint: String::new(),
            datastore_tls: Default::default(),
            build: crate::version::BuildInfo::default(),
        }
    }
}

/// State shared by all requests.
pub struct AppState {
    pub cfg: ServerConfig,
    pub store: Store,
    pub pki: Arc<Pki>,
    /// The full node token (`K10…::server:<password>`).
    pub token: String,
    /// The password part of the node token (accepted as a bearer token).
    pub token_password: String,
    pub ips: Mutex<IpAllocator>,
    pub ports: Mutex<PortAllocator>,
    pub policy: RwLock<PolicyCache>,
    pub started: Instant,
    pub ready: AtomicBool,
    /// Request latency/count metrics served at `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// Encoded watch lines shared by unfiltered JSON watchers.
    pub watch_lines: crate::watch::LineCache,
    /// Which objects each node's pods use (the Node authorizer's graph).
    pub node_graph: RwLock<crate::nodegraph::NodeGraph>,
    /// Agent tunnels, the kubelet client and the resource-metrics samples.
    pub kubelets: crate::kubelet::Kubelets,
    /// The resources served from CustomResourceDefinitions.
    pub crds: crate::crd::Registry,
    /// The remote APIServices (aggregated API servers).
    pub apiservices: crate::aggregator::Registry,
    /// The ValidatingAdmissionPolicies and their bindings (watch-fed).
    pub vap: crate::vap::Policies,
    /// The admission webhook configurations (watch-fed) and their connections.
    pub webhooks: crate::webhook::Webhooks,
    /// The namespaces as creates check them (watch-fed).
    pub namespaces: crate::namespaces::Namespaces,
    /// The service accounts as pod admission reads them (watch-fed).
    pub service_accounts: crate::serviceaccounts::ServiceAccounts,
}
