//! The kubelet HTTPS API (port 10250 by default): container logs, exec, attach, port-forward,
//! stats and resource metrics for the API server, which proxies kubectl's requests here.
//!
//! TLS with the node's serving certificate; a client certificate signed by the cluster client
//! CA is required (401 without one) and only the API server's kubelet client
//! (`system:apiserver`) or a `system:masters` member is allowed (403 otherwise, upstream's
//! text). Routes (upstream's `pkg/kubelet/server/server.go`):
//! - `GET /healthz`, `GET /pods` (the node's pods from the API), `GET /stats/summary`,
//!   `GET /metrics/resource`;
//! - `GET /containerLogs/{ns}/{pod}/{container}` ([`logs`]);
//! - `GET|POST /exec|attach/{ns}/{pod}[/{uid}]/{container}` and
//!   `GET|POST /portForward/{ns}/{pod}[/{uid}]` (WebSocket or SPDY through `skiff-streaming`).

pub mod attach;
pub mod auth;
pub mod exec;
pub mod logs;
pub mod pods;
pub mod portforward;
pub mod server;
pub mod stats;
pub mod streams;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use http::StatusCode;

use crate::cri::Cri;
use crate::Error;

/// The kubelet API port when none is given.
pub const DEFAULT_PORT: u16 = 10250;

/// What the kubelet API server needs.
#[derive(Clone)]
pub struct KubeletApiConfig {
    pub node_name: String,
    /// Listen address (0.0.0.0 for the real agent, 127.0.0.1 in tests).
    pub address: IpAddr,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// CRI log root (`<ns>_<pod>_<uid>` directories).
    pub pod_log_dir: PathBuf,
    /// Per-exec FIFO directories go under `<run_dir>/exec/<id>/`.
    pub run_dir: PathBuf,
    /// Serving certificate chain and key (PEM).
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// The CA client certificates must chain to (PEM).
    pub client_ca_pem: String,
    /// Presents the serving certificate instead of the PEMs above (e.g. one that follows
    /// certificate renewal).
    pub cert_resolver: Option<Arc<dyn rustls::server::ResolvesServerCert>>,
}

impl std::fmt::Debug for KubeletApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeletApiConfig")
            .field("node_name", &self.node_name)
            .field("address", &self.address)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl KubeletApiConfig {
    /// The agent's settings: all addresses, `port`, under `<data>/agent/run`.
    pub fn for_node(
        node_name: &str,
        port: u16,
        pod_log_dir: PathBuf,
        agent_dir: &std::path::Path,
        joined: &crate::join::NodeJoined,
    ) -> KubeletApiConfig {
        KubeletApiConfig {
            node_name: node_name.to_string(),
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
            pod_log_dir,
            run_dir: agent_dir.join("run"),
            serving_cert_pem: joined.serving_cert_pem.clone(),
            serving_key_pem: joined.serving_key_pem.clone(),
            client_ca_pem: joined.client_ca_pem.clone(),
            cert_resolver: None,
        }
    }
}

/// An HTTP error answer: status and plain text body (upstream writes errors as text).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub text: String,
}

impl ApiError {
    pub fn new(status: StatusCode, text: impl Into<String>) -> ApiError {
        ApiError {
            status,
            text: text.into(),
        }
    }

    pub fn bad_request(text: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, text)
    }

    pub fn not_found(text: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, text)
    }

    pub fn internal(text: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, text)
    }
}

/// The decoded `key=value` pairs of a query string, in order.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A running kubelet API server.
pub struct Running {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
}

/// Binds the listener and serves the kubelet API in a background task.
pub async fn start(
    cfg: KubeletApiConfig,
    cri: Cri,
    client: Option<kube::Client>,
) -> Result<Running, Error> {
    let tls = server::tls_config(&cfg)?;
    let listener = tokio::net::TcpListener::bind((cfg.address, cfg.port))
        .await
        .map_err(|source| Error::Io {
            what: format!(
                "cannot listen on {}:{} for the kubelet API (is another kubelet or agent using \
                 the port? pass another --kubelet-port)",
                cfg.address, cfg.port
            ),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Io {
        what: "kubelet API listener address".into(),
        source,
    })?;
    let state = Arc::new(server::State::new(cfg, cri, client));
    let task = tokio::spawn(server::serve(listener, tls, state));
    tracing::info!(%addr, "kubelet API listening");
    Ok(Running { addr, task })
}
