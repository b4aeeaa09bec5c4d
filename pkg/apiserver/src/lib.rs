//! skiff's HTTPS Kubernetes API server: REST verbs, watch, discovery, OpenAPI, authn/authz,
//! admission, on the revisioned store.

pub mod admission;
pub mod aggregator;
pub mod alloc;
pub mod apigroups;
pub mod apiservers;
pub mod authz;
pub mod bootstrap;
pub mod bootstraptoken;
pub mod cluster_secrets;
pub mod convert;
pub mod crd;
pub mod csr;
pub mod error;
pub mod follow;
pub mod handlers;
pub mod kubelet;
pub mod leader;
pub mod lenient;
pub mod metrics;
pub mod metricsapi;
pub mod namespaces;
pub mod nodeauthz;
pub mod nodegraph;
pub mod objects;
pub mod openapi;
pub mod podio;
pub mod proxy;
pub mod request;
pub mod rest;
pub mod reviews;
pub mod server;
pub mod serviceaccounts;
pub mod state;
pub mod supervisor;
pub mod table;
pub mod tunnel;
pub mod vap;
pub mod version;
pub mod watch;
pub mod webhook;

use crate::alloc::{IpAllocator, PortAllocator};
pub use crate::state::{AppState, ServerConfig};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("certificates: {0}")]
    Pki(#[from] skiff_pki::PkiError),
    #[error("datastore: {0}")]
    Store(#[from] skiff_store::StoreError),
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source} (is another server running? pick another --https-listen-port)")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("bootstrap failed: {0}")]
    Bootstrap(String),
}

/// A running API server.
pub struct Server {
    pub state: Arc<AppState>,
    pub local_addr: SocketAddr,
    /// The datastore is external (PostgreSQL, etcd): other servers may share it, so the
    /// controllers and the scheduler run only under a leader-election Lease.
    pub shared_datastore: bool,
}

/// Opens the store and certificates, creates the built-in objects, and starts serving.
pub async fn start(cfg: ServerConfig) -> Result<Server, StartError> {
    let server_dir = cfg.data_dir.join("server");
    std::fs::create_dir_all(&server_dir)
        .map_err(|e| StartError::Config(format!("cannot create {}: {e}", server_dir.display())))?;
    let mut pki_cfg = skiff_pki::PkiConfig {
        dns_sans: vec![],
        ip_sans: vec![],
    };
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            pki_cfg.dns_sans.push(h.to_string());
        }
    }
    for san in &cfg.tls_sans {
        match san.parse() {
            Ok(ip) => pki_cfg.ip_sans.push(ip),
            Err(_) => pki_cfg.dns_sans.push(san.clone()),
        }
    }
    if let Some(a) = cfg.advertise_address {
        pki_cfg.ip_sans.push(a);
    }
    if !cfg.bind_address.is_unspecified() {
        pki_cfg.ip_sans.push(cfg.bind_address);
    }
    let db_path = server_dir.join("db").join("state.db");
    let store = skiff_store::Store::open_endpoint(
        &cfg.datastore_endpoint,
        &db_path,
        skiff_store::Options {
            compact_interval: cfg.compact_interval,
            tls: cfg.datastore_tls.clone(),
            ..Default::default()
        },
    )
    .await?;
    let tls_dir = server_dir.join("tls");
    let shared = !matches!(
        skiff_store::Datastore::parse(&cfg.datastore_endpoint, &db_path)?,
        skiff_store::Datastore::Sqlite(_)
    );
    if shared {
        // Several servers may share this datastore: they share the CAs and keys too.
        let password = cluster_secrets::shared_password(cfg.token.as_deref(), &server_dir)?;
        cluster_secrets::sync(&store, &tls_dir, &password, || {
            skiff_pki::load_or_create(&tls_dir, &pki_cfg)?;
            Ok(())
        })
        .await?;
    }
    let pki = Arc::new(skiff_pki::load_or_create(&tls_dir, &pki_cfg)?);
    let token =
        skiff_pki::load_or_create_token(&server_dir, pki.server_ca_pem(), cfg.token.as_deref())?;
    let token_password = skiff_pki::parse_token(&token)?.password;
    let ips = IpAllocator::new(&cfg.service_cidr).map_err(StartError::Config)?;
    let (lo, hi) = cfg.node_port_range;
    if lo == 0 || lo > hi {
        return Err(StartError::Config(format!(
            "invalid --service-node-port-range {lo}-{hi}: use LOW-HIGH with 0 < LOW <= HIGH"
        )));
    }
    let mut ips = ips;
    // The kubernetes service and the cluster DNS address are reserved up front.
    let _ = ips.allocate(ips.nth(1));
    let _ = ips.allocate(cfg.cluster_dns);
    let addr = SocketAddr::new(cfg.bind_address, cfg.port);
    let tls = pki.rustls_server_config()?;
    let state = Arc::new(AppState {
        cfg,
        store,
        pki,
        token,
        token_password,
        ips: parking_lot::Mutex::new(ips),
        ports: parking_lot::Mutex::new(PortAllocator::new(lo, hi)),
        policy: parking_lot::RwLock::new(Default::default()),
        started: std::time::Instant::now(),
        ready: Default::default(),
        metrics: Default::default(),
        watch_lines: Default::default(),
        node_graph: Default::default(),
        kubelets: Default::default(),
        crds: Default::default(),
        apiservices: Default::default(),
        vap: Default::default(),
        webhooks: Default::default(),
        namespaces: Default::default(),
        service_accounts: Default::default(),
    });
    // Release the reserved addresses the kubernetes service will claim for itself.
    {
        let mut ips = state.ips.lock();
        let first = ips.nth(1);
        ips.release(first);
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| StartError::Listen { addr, source })?;
    tokio::spawn(server::serve(state.clone(), listener, tls));
    tokio::spawn(authz::run_policy_watch(state.clone()));
    tokio::spawn(nodegraph::run_graph_watch(state.clone()));
    tokio::spawn(crd::run_crd_watch(state.clone()));
    tokio::spawn(aggregator::run(state.clone()));
    tokio::spawn(vap::run_vap_watch(state.clone()));
    tokio::spawn(namespaces::run_namespace_watch(state.clone()));
    tokio::spawn(serviceaccounts::run_service_account_watch(state.clone()));
    tokio::spawn(webhook::run_webhook_watch(state.clone()));
    bootstrap::run(&state)
        .await
        .map_err(|e| StartError::Bootstrap(e.message))?;
    // Optional objects (flowcontrol, local APIServices): a failure is logged, not fatal.
    if let Err(e) = apigroups::bootstrap(&state).await {
        tracing::warn!(error = %e.message, "cannot create the flowcontrol objects or local APIServices");
    }
    state.ready.store(true, Ordering::Relaxed);
    tokio::spawn(bootstrap::sweep_events(state.clone()));
    if shared {
        tokio::spawn(apiservers::heartbeat(state.clone()));
        tokio::spawn(alloc::sweep_claims(state.clone()));
    }
    tokio::spawn(supervisor::tend_node_passwords(state.clone()));
    tokio::spawn(bootstraptoken::clean_expired(state.clone()));
    tokio::spawn(metricsapi::run_scraper(state.clone()));
    Ok(Server {
        state,
        local_addr,
        shared_datastore: shared,
    })
}
