//! Reaching a node's kubelet API: through the node's tunnel when one is connected, else over
//! TCP to the node's address; then TLS (the kubelet's serving certificate must chain to the
//! server CA; the API server presents its `system:apiserver` client certificate). Requests
//! that upgrade (exec, attach, port-forward) get an HTTP/1.1 connection of their own; the
//! others (logs, stats, metrics, proxied requests) share pooled HTTP/2 connections, so 100
//! `kubectl logs -f` of one node hold 100 streams of one TLS session and one tunnel
//! connection rather than 100 of each, and a request needs no new handshake.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Body;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The kubelet port when the Node does not say.
pub const DEFAULT_KUBELET_PORT: u16 = 10250;
/// How long a dial (tunnel or TCP) and the TLS handshake may take each.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a pooled connection may take to answer a request's headers (the kubelet answers
/// at once, also for `follow`; the body may then take as long as it likes).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Streams one pooled HTTP/2 connection carries at once (the kubelet allows 200); another
/// connection is opened beyond that rather than queueing behind streams that may never end.
const STREAMS_PER_CONN: usize = 100;
/// Flow-control window of one pooled stream: what the server buffers for a client that stops
/// reading (the connection window is large so one stalled stream never stalls the others).
const STREAM_WINDOW: u32 = 256 * 1024;
const CONN_WINDOW: u32 = 1 << 30;

/// Everything the API server keeps to talk to kubelets.
#[derive(Default)]
pub struct Kubelets {
    /// Connected agent tunnels by node name.
    pub tunnels: crate::tunnel::Tunnels,
    /// Made on first use from the server's PKI (see [`client_tls`]): HTTP/1.1 and HTTP/2.
    tls: std::sync::OnceLock<(tokio_rustls::TlsConnector, tokio_rustls::TlsConnector)>,
    /// Pooled HTTP/2 connections by kubelet endpoint.
    pool: parking_lot::Mutex<HashMap<Endpoint, Vec<Pooled>>>,
    /// The last resource-metrics samples of every node (metrics.k8s.io).
    pub metrics: crate::metricsapi::MetricsStore,
    /// The server's own node (its in-process agent), whose kubelet is dialed directly.
    local_node: std::sync::OnceLock<String>,
}

impl Kubelets {
    /// Names the node of the server's own agent: its kubelet is on this host, so it is
    /// reached over TCP, never through its tunnel (as k3s does for the server's node).
    pub fn set_local_node(&self, node: &str) {
        let _ = self.local_node.set(node.to_string());
    }

    fn is_local(&self, node: &str) -> bool {
        self.local_node.get().is_some_and(|n| n == node)
    }

    fn connector(&self, pki: &skiff_pki::Pki, h2: bool) -> ApiResult<tokio_rustls::TlsConnector> {
        let pick = |c: &(tokio_rustls::TlsConnector, tokio_rustls::TlsConnector)| {
            if h2 {
                c.1.clone()
            } else {
                c.0.clone()
            }
        };
        if let Some(c) = self.tls.get() {
            return Ok(pick(c));
        }
        let cfg = client_config(pki).map_err(ApiError::internal)?;
        let mut h2cfg = cfg.clone();
        h2cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let c = (
            tokio_rustls::TlsConnector::from(Arc::new(cfg)),
            tokio_rustls::TlsConnector::from(Arc::new(h2cfg)),
        );
        Ok(pick(self.tls.get_or_init(|| c)))
    }

    /// A pooled connection to `ep` with room for one more stream, dropping dead ones and,
    /// once the node has a tunnel, direct ones (the tunnel is preferred as for new dials).
    fn pooled(
        &self,
        ep: &Endpoint,
        tunnel_now: bool,
    ) -> Option<(H2Sender, Arc<Semaphore>, OwnedSemaphorePermit)> {
        let mut pool = self.pool.lock();
        let conns = pool.get_mut(ep)?;
        conns.retain(|p| {
            !p.sender.is_closed() && !p.streams.is_closed() && (p.tunnelled || !tunnel_now)
        });
        let found = conns.iter().find_map(|p| {
            let permit = p.streams.clone().try_acquire_owned().ok()?;
            p.sender
                .is_ready()
                .then(|| (p.sender.clone(), p.streams.clone(), permit))
        });
        if conns.is_empty() {
            pool.remove(ep);
        }
        found
    }
}

type H2Sender = hyper::client::conn::http2::SendRequest<Body>;

/// One pooled HTTP/2 connection to a kubelet.
struct Pooled {
    sender: H2Sender,
    /// Opened through the node's tunnel (else over TCP).
    tunnelled: bool,
    /// Permits for the streams it may still open ([`STREAMS_PER_CONN`]).
    streams: Arc<Semaphore>,
}

/// The TLS client of kubelet connections: the API server's kubelet client certificate (CN
/// `system:apiserver`, O `system:masters`, issued from the client CA and kept in memory)
/// and trust in the server CA, which signs every kubelet serving certificate.
pub fn client_tls(pki: &skiff_pki::Pki) -> Result<tokio_rustls::TlsConnector, String> {
    Ok(tokio_rustls::TlsConnector::from(Arc::new(client_config(
        pki,
    )?)))
}

/// The rustls configuration of [`client_tls`] (ALPN `http/1.1`).
fn client_config(pki: &skiff_pki::Pki) -> Result<rustls::ClientConfig, String> {
    let (cert_pem, key_pem) = pki
        .issue_client_cert("system:apiserver", &["system:masters"])
        .map_err(|e| format!("cannot issue the kubelet client certificate: {e}"))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("kubelet client certificate: {e}"))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .map_err(|e| format!("kubelet client key: {e}"))?
        .ok_or("kubelet client key: no key in the PEM")?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pemfile::certs(&mut pki.server_ca_pem().as_bytes()) {
        let ca = ca.map_err(|e| format!("server CA: {e}"))?;
        roots
            .add(ca)
            .map_err(|e| format!("server CA is not usable: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("kubelet client certificate: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Where a Node's kubelet listens: the first address in the preferred type order
/// (InternalIP, ExternalIP, Hostname) and `status.daemonEndpoints.kubeletEndpoint.Port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub node: String,
    pub address: Option<String>,
    pub port: u16,
}

/// The kubelet endpoint of a Node object.
pub fn endpoint(node: &Value) -> Endpoint {
    let addrs = node
        .pointer("/status/addresses")
        .and_then(|a| a.as_array())
        .cloned()
        .unwrap_or_default();
    let address = ["InternalIP", "ExternalIP", "Hostname"]
        .iter()
        .find_map(|t| {
            addrs.iter().find_map(|a| {
                (a.get("type")?.as_str()? == *t)
                    .then(|| a.get("address")?.as_str().map(str::to_string))
                    .flatten()
                    .filter(|s| !s.is_empty())
            })
        });
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(|p| p.as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Endpoint {
        node: crate::objects::name(node).to_string(),
        address,
        port,
    }
}

/// A byte stream to a kubelet (a tunnel connection or TCP).
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

fn unavailable(message: String) -> ApiError {
    ApiError::new(503, "ServiceUnavailable", message)
}

/// Reads the Node object and its kubelet endpoint.
pub async fn node_endpoint(st: &AppState, node: &str) -> ApiResult<Endpoint> {
    let nodes = skiff_api::registry::find("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("nodes not registered"))?;
    let obj = crate::rest::get_object(st, nodes, None, node).await?;
    Ok(endpoint(&obj))
}

/// A raw byte stream to the kubelet of `ep`: the tunnel first (but never for the server's own
/// node, see [`Kubelets::set_local_node`]), else TCP; 503 naming the node
/// when neither works, never later than twice [`CONNECT_TIMEOUT`].
/// The flag says whether the stream goes through the tunnel.
pub async fn dial(st: &AppState, ep: &Endpoint) -> ApiResult<(Box<dyn Io>, bool)> {
    let node = &ep.node;
    let tunnel_err = if st.kubelets.is_local(node) {
        "the node is the server's own".to_string()
    } else {
        match st.kubelets.tunnels.get(node) {
            Some(mux) => match mux.dial(ep.port, CONNECT_TIMEOUT).await {
                Ok(conn) => return Ok((Box::new(conn), true)),
                Err(e) => format!("the tunnel to node {node:?} failed ({e})"),
            },
            None => format!("no tunnel to node {node:?}"),
        }
    };
    let Some(addr) = &ep.address else {
        return Err(unavailable(format!(
            "error dialing backend: {tunnel_err} and the node has no address in its status: \
             check that the agent on {node:?} runs and is connected"
        )));
    };
    let target = if addr.contains(':') && !addr.starts_with('[') {
        format!("[{addr}]:{}", ep.port)
    } else {
        format!("{addr}:{}", ep.port)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&target)).await {
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            tracing::debug!(%node, %target, "kubelet reached directly: {tunnel_err}");
            Ok((Box::new(tcp), false))
        }
        Ok(Err(e)) => Err(unavailable(format!(
            "error dialing backend: {tunnel_err} and direct connection to {target} failed: {e}"
        ))),
        Err(_) => Err(unavailable(format!(
            "error dialing backend: {tunnel_err} and direct connection to {target} failed: \
             timed out after {}s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// A TLS session with the kubelet of `ep` (ALPN offering `h2` when asked) and whether it
/// goes through the tunnel.
async fn connect_tls(
    st: &AppState,
    ep: &Endpoint,
    h2: bool,
) -> ApiResult<(tokio_rustls::client::TlsStream<Box<dyn Io>>, bool)> {
    let (io, tunnelled) = dial(st, ep).await?;
    let node = &ep.node;
    let name = rustls::pki_types::ServerName::try_from(node.clone()).map_err(|_| {
        ApiError::internal(format!(
            "node name {node:?} cannot be checked against the kubelet certificate"
        ))
    })?;
    let connector = st.kubelets.connector(&st.pki, h2)?;
    match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, io)).await {
        Ok(Ok(t)) => Ok((t, tunnelled)),
        Ok(Err(e)) => Err(unavailable(format!(
            "error dialing backend: tls handshake with the kubelet on node {node:?} failed: {e}"
        ))),
        Err(_) => Err(unavailable(format!(
            "error dialing backend: tls handshake with the kubelet on node {node:?} timed out"
        ))),
    }
}

/// Sends `req` (origin-form URI, e.g. `/containerLogs/ns/p/c?follow=true`) to the kubelet of
/// `ep`: an upgrade over a fresh HTTP/1.1 connection, anything else over a pooled HTTP/2 one.
pub async fn send(
    st: &AppState,
    ep: &Endpoint,
    req: http::Request<Body>,
) -> ApiResult<http::Response<Body>> {
    if crate::proxy::is_upgrade(req.headers()) {
        let (tls, _) = connect_tls(st, ep, false).await?;
        return send_http1(ep, tls, req).await;
    }
    let tunnel_now = !st.kubelets.is_local(&ep.node) && st.kubelets.tunnels.get(&ep.node).is_some();
    if let Some((sender, streams, permit)) = st.kubelets.pooled(ep, tunnel_now) {
        return send_h2(ep, sender, &streams, permit, req).await;
    }
    let (tls, tunnelled) = connect_tls(st, ep, true).await?;
    if tls.get_ref().1.alpn_protocol() != Some(b"h2".as_slice()) {
        return send_http1(ep, tls, req).await;
    }
    let node = &ep.node;
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONN_WINDOW)
        // A kubelet that vanished without closing is noticed, and the connection replaced.
        .keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .handshake(TokioIo::new(tls))
        .await
        .map_err(|e| unavailable(format!("error dialing backend: node {node:?}: {e}")))?;
    let n = node.clone();
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(node = %n, error = %e, "pooled kubelet connection ended with an error");
        }
    });
    let streams = Arc::new(Semaphore::new(STREAMS_PER_CONN));
    let permit = streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::internal("a new kubelet connection has no stream"))?;
    st.kubelets
        .pool
        .lock()
        .entry(ep.clone())
        .or_default()
        .push(Pooled {
            sender: sender.clone(),
            tunnelled,
            streams: streams.clone(),
        });
    send_h2(ep, sender, &streams, permit, req).await
}

/// One request on a pooled connection; `permit` is held until the answer's body is dropped.
/// A connection that fails, or whose kubelet sends no answer within [`RESPONSE_TIMEOUT`]
/// (a tunnel whose agent vanished but is not yet dropped), leaves the pool (`streams` closed).
async fn send_h2(
    ep: &Endpoint,
    mut sender: H2Sender,
    streams: &Semaphore,
    permit: OwnedSemaphorePermit,
    mut req: http::Request<Body>,
) -> ApiResult<http::Response<Body>> {
    let node = &ep.node;
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    *req.uri_mut() = format!("https://{node}:{}{pq}", ep.port)
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid kubelet path {pq:?}")))?;
    req.headers_mut().remove(http::header::HOST);
    let resp = match tokio::time::timeout(RESPONSE_TIMEOUT, sender.send_request(req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            streams.close();
            return Err(unavailable(format!(
                "error trying to reach the kubelet on node {node:?}: {e}"
            )));
        }
        Err(_) => {
            streams.close();
            return Err(unavailable(format!(
                "error trying to reach the kubelet on node {node:?}: no answer within {}s",
                RESPONSE_TIMEOUT.as_secs()
            )));
        }
    };
    Ok(resp.map(|b| {
        Body::new(b.map_frame(move |f| {
            let _stream = &permit;
            f
        }))
    }))
}

/// One request on its own HTTP/1.1 connection (kept for the upgrade, if any).
async fn send_http1(
    ep: &Endpoint,
    tls: tokio_rustls::client::TlsStream<Box<dyn Io>>,
    mut req: http::Request<Body>,
) -> ApiResult<http::Response<Body>> {
    let node = &ep.node;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| unavailable(format!("error dialing backend: node {node:?}: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "kubelet connection ended with an error");
        }
    });
    let host = format!("{node}:{}", ep.port);
    if let Ok(h) = http::HeaderValue::from_str(&host) {
        req.headers_mut().insert(http::header::HOST, h);
    }
    let resp = sender.send_request(req).await.map_err(|e| {
        unavailable(format!(
            "error trying to reach the kubelet on node {node:?}: {e}"
        ))
    })?;
    Ok(resp.map(Body::new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn endpoint_prefers_internal_ip_and_reads_the_port() {
        let n = json!({
            "metadata": {"name": "n1"},
            "status": {
                "addresses": [
                    {"type": "Hostname", "address": "n1"},
                    {"type": "ExternalIP", "address": "203.0.113.9"},
                    {"type": "InternalIP", "address": "192.0.2.11"}
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10251}}
            }
        });
        assert_eq!(
            endpoint(&n),
            Endpoint {
                node: "n1".into(),
                address: Some("192.0.2.11".into()),
                port: 10251
            }
        );
    }

    #[test]
    fn endpoint_falls_back_to_hostname_and_the_default_port() {
        let n = json!({
            "metadata": {"name": "n2"},
            "status": {"addresses": [{"type": "Hostname", "address": "n2.lan"}]}
        });
        let ep = endpoint(&n);
        assert_eq!(ep.address.as_deref(), Some("n2.lan"));
        assert_eq!(ep.port, DEFAULT_KUBELET_PORT);
        let bare = endpoint(&json!({"metadata": {"name": "n3"}}));
        assert_eq!(bare.address, None);
    }
}
