//! The agent's end of the tunnel to the API server: one outbound gRPC stream
//! (`skiff.tunnel.v1.Tunnel/Connect`, authenticated with the node's client certificate) that
//! carries the server's connections to this node's kubelet API, so the node needs no inbound
//! port. Only the kubelet port on 127.0.0.1 can be dialed. The stream is reopened with
//! backoff (1 s doubling to 30 s) whenever it ends. With several servers on one datastore the
//! agent keeps one tunnel to each server the cluster lists (as k3s's agent does), so whichever
//! server a `kubectl logs` reaches has this node's tunnel.

use crate::Error;
use futures::StreamExt;
use hyper_util::rt::TokioIo;
use skiff_tunnel::pb::tunnel_client::TunnelClient;
use skiff_tunnel::{pb, Frame, Mux};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A session that lasted this long resets the backoff.
const STABLE_SESSION: Duration = Duration::from_secs(60);
/// Below the server's 5 s, so the server hears this side's error rather than its own timeout.
const DIAL_TIMEOUT: Duration = Duration::from_secs(4);

/// Where and how the agent opens its tunnel.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    /// `https://host:port` of the server.
    pub server: http::Uri,
    /// The server CA bundle (PEM) the server must chain to.
    pub ca_pem: String,
    /// The node's client certificate and key (`system:node:<name>`), read at every connect
    /// so a renewed certificate is picked up.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The only port the server may dial (the kubelet API).
    pub kubelet_port: u16,
}

/// The wait before the next attempt.
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(MAX_BACKOFF)
}

/// Keeps the tunnel open forever.
pub async fn run(cfg: TunnelConfig) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        match session(&cfg).await {
            Ok(()) => tracing::warn!(server = %cfg.server, "the tunnel to the server closed"),
            Err(e) => {
                tracing::warn!(server = %cfg.server, error = %e, "the tunnel to the server failed")
            }
        }
        if started.elapsed() >= STABLE_SESSION {
            backoff = FIRST_BACKOFF;
        }
        tracing::info!(retry_in_s = backoff.as_secs(), "reconnecting the tunnel");
        tokio::time::sleep(backoff).await;
        backoff = next_backoff(backoff);
    }
}

/// Keeps one tunnel to every server `listed()` names (`host:port`, re-read every
/// `refresh`); to `template.server` alone while the list is empty. A server that leaves the
/// list has its tunnel closed.
pub async fn run_to_each(
    template: TunnelConfig,
    listed: impl Fn() -> Vec<String>,
    refresh: Duration,
) {
    /// The running tunnels by server URL; aborted when the set (or this task) goes.
    struct Tunnels(std::collections::HashMap<String, tokio::task::JoinHandle<()>>);
    impl Drop for Tunnels {
        fn drop(&mut self) {
            self.0.values().for_each(|t| t.abort());
        }
    }
    let mut running = Tunnels(Default::default());
    loop {
        let want = targets(&listed(), &template.server);
        running.0.retain(|url, task| {
            let keep = want.iter().any(|u| u.to_string() == *url);
            if !keep {
                tracing::info!(server = %url, "the server left the cluster's list; closing its tunnel");
                task.abort();
            }
            keep
        });
        for server in want {
            running.0.entry(server.to_string()).or_insert_with(|| {
                tokio::spawn(run(TunnelConfig {
                    server,
                    ..template.clone()
                }))
            });
        }
        tokio::time::sleep(refresh).await;
    }
}

/// The tunnel URLs for the listed servers (`host:port`), or `fallback` when none parses.
fn targets(listed: &[String], fallback: &http::Uri) -> Vec<http::Uri> {
    let mut out: Vec<http::Uri> = listed
        .iter()
        .filter_map(|s| format!("https://{s}").parse().ok())
        .collect();
    out.dedup();
    if out.is_empty() {
        out.push(fallback.clone());
    }
    out
}

fn tls_config(cfg: &TunnelConfig) -> Result<rustls::ClientConfig, Error> {
    let bad = |what: &str, e: String| Error::Join(format!("tunnel: {what}: {e}"));
    let cert_pem = std::fs::read(&cfg.cert_file)
        .map_err(|e| bad(&cfg.cert_file.display().to_string(), e.to_string()))?;
    let key_pem = std::fs::read(&cfg.key_file)
        .map_err(|e| bad(&cfg.key_file.display().to_string(), e.to_string()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| bad("client certificate", e.to_string()))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| bad("client key", e.to_string()))?
        .ok_or_else(|| bad("client key", "no key in the file".into()))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pemfile::certs(&mut cfg.ca_pem.as_bytes()) {
        let ca = ca.map_err(|e| bad("server CA", e.to_string()))?;
        roots.add(ca).map_err(|e| bad("server CA", e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("tls", e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| bad("client certificate", e.to_string()))?;
    tls.alpn_protocols = vec![b"h2".to_vec()];
    Ok(tls)
}

/// An HTTP/2 channel to the server over rustls (our own connector: the server's CA is the
/// pinned cluster CA and the client certificate is the node's).
async fn channel(cfg: &TunnelConfig) -> Result<tonic::transport::Channel, Error> {
    let host = cfg
        .server
        .host()
        .ok_or_else(|| Error::Join("tunnel: the server URL has no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = cfg.server.port_u16().unwrap_or(443);
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| Error::Join(format!("tunnel: server name {host:?}: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(cfg)?));
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    // The scheme only names the authority: TLS is done by the connector below.
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|e| Error::Join(format!("tunnel: {e}")))?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(15))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true);
    let target = authority.clone();
    let svc = tower::service_fn(move |_: http::Uri| {
        let (connector, name, authority) = (connector.clone(), name.clone(), target.clone());
        async move {
            let tcp = tokio::net::TcpStream::connect(&authority).await?;
            let _ = tcp.set_nodelay(true);
            let tls = connector.connect(name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    endpoint
        .connect_with_connector(svc)
        .await
        .map_err(|e| Error::Join(format!("tunnel: cannot connect to {authority}: {e}")))
}

/// One tunnel session: returns when the stream ends.
async fn session(cfg: &TunnelConfig) -> Result<(), Error> {
    let ch = channel(cfg).await?;
    let (tx, rx) = mpsc::channel::<Frame>(64);
    let mux = Mux::new(tx);
    let out = tokio_stream::wrappers::ReceiverStream::new(rx).map(pb::AgentFrame::from);
    let mut client = TunnelClient::new(ch);
    let resp = client.connect(out).await.map_err(|s| {
        Error::Join(format!(
            "tunnel: the server refused the tunnel: {} ({:?})",
            s.message(),
            s.code()
        ))
    })?;
    tracing::info!(server = %cfg.server, "tunnel to the server connected");
    let mut inbound = resp.into_inner();
    let result = loop {
        match inbound.message().await {
            Ok(Some(f)) => {
                let Some(f) = f.into_frame() else { continue };
                if let Some((id, port)) = mux.handle(f) {
                    tokio::spawn(dial_local(mux.clone(), id, port, cfg.kubelet_port));
                }
            }
            Ok(None) => break Ok(()),
            Err(s) => break Err(Error::Join(format!("tunnel: {}", s.message()))),
        }
    };
    mux.close();
    result
}

/// Answers the server's Dial: connects to `127.0.0.1:<port>` (the kubelet port only) and
/// splices the connection with the virtual one.
async fn dial_local(mux: Mux, id: u64, port: u16, kubelet_port: u16) {
    let fail = |error: String| Frame::DialResult {
        conn_id: id,
        error: Some(error),
    };
    if port != kubelet_port {
        tracing::warn!(
            port,
            "tunnel: refused a dial to a port other than the kubelet's"
        );
        mux.send(fail(format!(
            "port {port} is not the kubelet port {kubelet_port}: the tunnel only reaches the kubelet"
        )))
        .await;
        return;
    }
    let tcp = match tokio::time::timeout(
        DIAL_TIMEOUT,
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            mux.send(fail(format!("dial 127.0.0.1:{port}: {e}"))).await;
            return;
        }
        Err(_) => {
            mux.send(fail(format!("dial 127.0.0.1:{port}: timed out")))
                .await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let mut conn = mux.accept(id);
    let ok = Frame::DialResult {
        conn_id: id,
        error: None,
    };
    if !mux.send(ok).await {
        return;
    }
    let mut tcp = tcp;
    // Frame-sized copies: tokio's default 8 KiB would cut the stream into small frames.
    let size = skiff_tunnel::CHUNK;
    if let Err(e) = tokio::io::copy_bidirectional_with_sizes(&mut tcp, &mut conn, size, size).await
    {
        tracing::debug!(error = %e, "tunnel connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_tunnel_per_listed_server_else_the_joined_url() {
        let fallback: http::Uri = "https://127.0.0.1:6444".parse().unwrap();
        let got = targets(
            &["10.0.0.1:6443".to_string(), "[fd00::2]:6443".to_string()],
            &fallback,
        );
        let got: Vec<String> = got.iter().map(|u| u.to_string()).collect();
        assert_eq!(
            got,
            vec!["https://10.0.0.1:6443/", "https://[fd00::2]:6443/"]
        );
        assert_eq!(targets(&[], &fallback), vec![fallback]);
    }

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let mut b = FIRST_BACKOFF;
        let mut seen = vec![b.as_secs()];
        for _ in 0..7 {
            b = next_backoff(b);
            seen.push(b.as_secs());
        }
        assert_eq!(seen, vec![1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[tokio::test]
    async fn only_the_kubelet_port_is_dialed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, mut rx) = mpsc::channel(8);
        let mux = Mux::new(tx);
        dial_local(mux.clone(), 1, port + 1, port).await;
        match rx.recv().await {
            Some(Frame::DialResult {
                conn_id: 1,
                error: Some(e),
            }) => {
                assert!(e.contains("not the kubelet port"), "{e}")
            }
            other => panic!("unexpected {other:?}"),
        }
        tokio::spawn(dial_local(mux.clone(), 2, port, port));
        let (_sock, _) = listener.accept().await.unwrap();
        match rx.recv().await {
            Some(Frame::DialResult {
                conn_id: 2,
                error: None,
            }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
