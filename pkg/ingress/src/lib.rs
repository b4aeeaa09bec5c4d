//! skiff's ingress controller (Traefik's place in k3s), run by the agent on every node: watches
//! Ingresses, IngressClasses, Services and EndpointSlices with the node's client, keeps a
//! routing table ([`route::build`]) and proxies HTTP on port 80 and HTTPS on 443 (certificates
//! from the Ingresses' TLS Secrets by SNI) to ready endpoints. It listens only while an
//! IngressClass with skiff's controller exists (the server creates `skiff` unless started with
//! `--disable ingress`), so a server without it frees 80/443 on every node.

pub mod proxy;
pub mod route;
pub mod tls;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Errors of the ingress controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the {0} watch stopped before it synced; restart the agent")]
    WatchStopped(&'static str),
    #[error("cannot listen on {addr}: {source}; free the port or start the server with --disable ingress")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("tls: {0}")]
    Tls(String),
}

/// TLS Secrets are re-read this often (a renewed certificate is served without an Ingress edit).
pub const SECRET_REFRESH: Duration = Duration::from_secs(30);

/// Settings of the ingress on one node.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// This node's name (sent as X-Forwarded-Server).
    pub node_name: String,
    /// The address the listeners bind (all of the node's addresses by default).
    pub address: Ipv4Addr,
    pub http_port: u16,
    pub https_port: u16,
    /// Changes arriving within this window are applied in one rebuild.
    pub debounce: Duration,
}

impl IngressConfig {
    pub fn new(node_name: impl Into<String>) -> Self {
        IngressConfig {
            node_name: node_name.into(),
            address: Ipv4Addr::UNSPECIFIED,
            http_port: 80,
            https_port: 443,
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
                Err(e) => tracing::warn!(error = %e, "ingress watch failed; retrying"),
            }
        }
    });
    reader
}

/// The running listeners (dropped: stopped).
struct Listeners {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn listen(
    cfg: &IngressConfig,
    shared: &Arc<proxy::Shared>,
    resolver: &Arc<tls::Resolver>,
) -> Result<Listeners, Error> {
    let bind = |port: u16| SocketAddr::new(cfg.address.into(), port);
    let http_addr = bind(cfg.http_port);
    let https_addr = bind(cfg.https_port);
    let http = tokio::net::TcpListener::bind(http_addr)
        .await
        .map_err(|source| Error::Listen {
            addr: http_addr,
            source,
        })?;
    let https = tokio::net::TcpListener::bind(https_addr)
        .await
        .map_err(|source| Error::Listen {
            addr: https_addr,
            source,
        })?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(resolver.clone()));
    tracing::info!(http = %http_addr, https = %https_addr, "ingress listening");
    Ok(Listeners {
        tasks: vec![
            tokio::spawn(proxy::serve(http, shared.clone(), None)),
            tokio::spawn(proxy::serve(https, shared.clone(), Some(acceptor))),
        ],
    })
}

/// Reads the TLS Secrets the table names (the node may read exactly those) into certificates.
async fn load_certs(
    client: &kube::Client,
    refs: &BTreeSet<(String, String)>,
) -> HashMap<(String, String), Arc<rustls::sign::CertifiedKey>> {
    let mut out = HashMap::new();
    for (ns, name) in refs {
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        let secret = match api.get(name).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(namespace = %ns, secret = %name, error = %e, "ingress TLS secret not read; its hosts get the default certificate");
                continue;
            }
        };
        let data = secret.data.unwrap_or_default();
        let (Some(crt), Some(key)) = (data.get("tls.crt"), data.get("tls.key")) else {
            tracing::warn!(namespace = %ns, secret = %name, "ingress TLS secret lacks tls.crt or tls.key");
            continue;
        };
        match tls::certified_key(&crt.0, &key.0) {
            Ok(c) => {
                out.insert((ns.clone(), name.clone()), c);
            }
            Err(e) => {
                tracing::warn!(namespace = %ns, secret = %name, error = %e, "ingress TLS secret unusable")
            }
        }
    }
    out
}

/// Runs the ingress until the process ends: waits for the first list of every kind, then
/// rebuilds the routing table on every change (debounced) and re-reads TLS Secrets when the
/// set of them changes and every [`SECRET_REFRESH`].
pub async fn run(client: kube::Client, cfg: IngressConfig) -> Result<(), Error> {
    let wake = Arc::new(Notify::new());
    let ingresses = cache::<Ingress>(Api::all(client.clone()), wake.clone());
    let classes = cache::<IngressClass>(Api::all(client.clone()), wake.clone());
    let services = cache::<Service>(Api::all(client.clone()), wake.clone());
    let slices = cache::<EndpointSlice>(Api::all(client.clone()), wake.clone());
    for (store_ready, kind) in [
        (ingresses.wait_until_ready().await, "Ingress"),
        (classes.wait_until_ready().await, "IngressClass"),
        (services.wait_until_ready().await, "Service"),
        (slices.wait_until_ready().await, "EndpointSlice"),
    ] {
        store_ready.map_err(|_| Error::WatchStopped(kind))?;
    }
    tracing::info!(node = %cfg.node_name, "ingress synced its caches");
    let shared = proxy::Shared::new(&cfg.node_name);
    let resolver = Arc::new(tls::Resolver::new(tls::default_certificate()?));
    let mut listeners: Option<Listeners> = None;
    let mut secret_refs: BTreeSet<(String, String)> = BTreeSet::new();
    let mut certs = HashMap::new();
    let mut refresh = tokio::time::interval(SECRET_REFRESH);
    refresh.tick().await;
    wake.notify_one();
    loop {
        let mut reload_secrets = false;
        tokio::select! {
            _ = wake.notified() => {}
            _ = refresh.tick() => reload_secrets = true,
        }
        tokio::time::sleep(cfg.debounce).await;
        let (ings, cls, svcs, sls) = (
            ingresses.state(),
            classes.state(),
            services.state(),
            slices.state(),
        );
        let cls_refs: Vec<&IngressClass> = cls.iter().map(|c| c.as_ref()).collect();
        let ours = route::our_classes(&cls_refs);
        if ours.is_empty() {
            if listeners.take().is_some() {
                tracing::info!(
                    "no IngressClass with controller {} any more; ingress stopped listening",
                    route::CONTROLLER
                );
            }
            continue;
        }
        if listeners.is_none() {
            match listen(&cfg, &shared, &resolver).await {
                Ok(l) => listeners = Some(l),
                Err(e) => {
                    tracing::error!(error = %e, "ingress not listening; retrying in 5 s");
                    let wake = wake.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        wake.notify_one();
                    });
                }
            }
        }
        let started = std::time::Instant::now();
        let ing_refs: Vec<&Ingress> = ings.iter().map(|i| i.as_ref()).collect();
        let svc_refs: Vec<&Service> = svcs.iter().map(|s| s.as_ref()).collect();
        let slice_refs: Vec<&EndpointSlice> = sls.iter().map(|s| s.as_ref()).collect();
        let table = route::build(&ing_refs, &cls_refs, &svc_refs, &slice_refs);
        let wanted: BTreeSet<(String, String)> = table
            .tls
            .iter()
            .map(|t| (t.namespace.clone(), t.secret.clone()))
            .collect();
        if reload_secrets || wanted != secret_refs {
            certs = load_certs(&client, &wanted).await;
            secret_refs = wanted;
        }
        resolver.set(tls::CertIndex::build(&table.tls, &certs));
        tracing::debug!(
            ingresses = table.ingresses.len(),
            us = started.elapsed().as_micros() as u64,
            "ingress routes rebuilt"
        );
        shared.set_table(table);
    }
}
