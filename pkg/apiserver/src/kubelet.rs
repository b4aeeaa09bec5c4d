//! Reaching a node's kubelet API: through the node's tunnel when one is connected, else over
//! TCP to the node's address; then TLS (the kubelet's serving certificate must chain to the
//! server CA; the API server presents its `system:apiserver` client certificate) and an
//! HTTP/1.1 connection that may be upgraded (exec, attach, port-forward).

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// The kubelet port when the Node does not say.
pub const DEFAULT_KUBELET_PORT: u16 = 10250;
/// How long a dial (tunnel or TCP) and the TLS handshake may take each.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything the API server keeps to talk to kubelets.
#[derive(Default)]
pub struct Kubelets {
    /// Connected agent tunnels by node name.
    pub tunnels: crate::tunnel::Tunnels,
    /// Made on first use from the server's PKI (see [`client_tls`]).
    tls: std::sync::OnceLock<tokio_rustls::TlsConnector>,
    /// The last resource-metrics samples of every node (metrics.k8s.io).
    pub metrics: crate::metricsapi::MetricsStore,
}

impl Kubelets {
    fn connector(&self, pki: &skiff_pki::Pki) -> ApiResult<tokio_rustls::TlsConnector> {
        if let Some(c) = self.tls.get() {
            return Ok(c.clone());
        }
        let c = client_tls(pki).map_err(ApiError::internal)?;
        Ok(self.tls.get_or_init(|| c).clone())
    }
}

/// The TLS client of kubelet connections: the API server's kubelet client certificate (CN
/// `system:apiserver`, O `system:masters`, issued from the client CA and kept in memory)
/// and trust in the server CA, which signs every kubelet serving certificate.
pub fn client_tls(pki: &skiff_pki::Pki) -> Result<tokio_rustls::TlsConnector, String> {
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
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

/// Where a Node's kubelet listens: the first address in the preferred type order
/// (InternalIP, ExternalIP, Hostname) and `status.daemonEndpoints.kubeletEndpoint.Port`.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A raw byte stream to the kubelet of `ep`: the tunnel first, else TCP; 503 naming the node
/// when neither works, never later than twice [`CONNECT_TIMEOUT`].
pub async fn dial(st: &AppState, ep: &Endpoint) -> ApiResult<Box<dyn Io>> {
    let node = &ep.node;
    let tunnel_err = match st.kubelets.tunnels.get(node) {
        Some(mux) => match mux.dial(ep.port, CONNECT_TIMEOUT).await {
            Ok(conn) => return Ok(Box::new(conn)),
            Err(e) => format!("the tunnel to node {node:?} failed ({e})"),
        },
        None => format!("no tunnel to node {node:?}"),
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
            Ok(Box::new(tcp))
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

/// Sends `req` (origin-form URI, e.g. `/containerLogs/ns/p/c?follow=true`) to the kubelet of
/// `ep` over a fresh connection that supports upgrades.
pub async fn send(
    st: &AppState,
    ep: &Endpoint,
    mut req: http::Request<Body>,
) -> ApiResult<http::Response<Incoming>> {
    let io = dial(st, ep).await?;
    let node = &ep.node;
    let name = rustls::pki_types::ServerName::try_from(node.clone()).map_err(|_| {
        ApiError::internal(format!(
            "node name {node:?} cannot be checked against the kubelet certificate"
        ))
    })?;
    let connector = st.kubelets.connector(&st.pki)?;
    let tls = match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, io)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            return Err(unavailable(format!(
                "error dialing backend: tls handshake with the kubelet on node {node:?} failed: {e}"
            )))
        }
        Err(_) => {
            return Err(unavailable(format!(
                "error dialing backend: tls handshake with the kubelet on node {node:?} timed out"
            )))
        }
    };
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
    sender.send_request(req).await.map_err(|e| {
        unavailable(format!(
            "error trying to reach the kubelet on node {node:?}: {e}"
        ))
    })
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
