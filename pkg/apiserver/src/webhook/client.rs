//! The HTTPS client that calls webhooks: `clientConfig.url`, or `clientConfig.service` reached
//! through one of the Service's ready endpoints (as kube-apiserver with endpoint routing) with
//! the TLS server name `<service>.<namespace>.svc`; the certificate is verified against the
//! webhook's `caBundle` (the cluster's server CA when it has none, as there are no system
//! roots here). HTTP/1.1 connections are kept per (address, server name, CA) and reused:
//! hyper's pooled client needs a connector type per TLS setup, so this small pool is kept by
//! hand.

use super::Hook;
use crate::objects::from_kv;
use crate::state::AppState;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A connection's identity: address, TLS server name, TLS config (by address).
type PoolKey = (SocketAddr, String, usize);

/// Idle connections per [`PoolKey`].
#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<HashMap<PoolKey, Vec<SendRequest<Full<Bytes>>>>>,
}

const MAX_IDLE: usize = 16;

/// A rustls client config trusting `ca_bundle` (base64 of PEM, as in the API object), or
/// the cluster CA when the bundle is empty.
pub(crate) fn tls_config(
    ca_bundle: &str,
    cluster_ca: &str,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let pem = if ca_bundle.is_empty() {
        cluster_ca.as_bytes().to_vec()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(ca_bundle.trim())
            .map_err(|e| format!("caBundle is not base64: {e}"))?
    };
    let mut roots = rustls::RootCertStore::empty();
    let mut n = 0;
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        let c = c.map_err(|e| format!("caBundle has an unreadable certificate: {e}"))?;
        roots
            .add(c)
            .map_err(|e| format!("caBundle has an unusable certificate: {e}"))?;
        n += 1;
    }
    if n == 0 {
        return Err("caBundle holds no PEM certificate".into());
    }
    Ok(finish(roots))
}

/// A config that trusts nothing (every call fails verification).
pub(crate) fn empty_tls() -> Arc<rustls::ClientConfig> {
    finish(rustls::RootCertStore::empty())
}

fn finish(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// Where a call goes.
struct Target {
    addr: SocketAddr,
    server_name: String,
    host_header: String,
    path: String,
    /// The URL as upstream prints it in errors (`https://host:port/path?timeout=10s`).
    url: String,
}

fn go_duration(secs: u64) -> String {
    format!("{secs}s")
}

async fn target(st: &AppState, h: &Hook) -> Result<Target, String> {
    let timeout = go_duration(h.timeout().as_secs());
    if let Some(url) = h.spec.pointer("/clientConfig/url").and_then(Value::as_str) {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("invalid webhook URL {url:?}: {e}"))?;
        let host = uri
            .host()
            .ok_or_else(|| format!("invalid webhook URL {url:?}: no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(443);
        let path = uri.path().to_string();
        let shown = format!("{url}?timeout={timeout}");
        let addr = match host.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| format!("Post \"{shown}\": dial tcp: lookup {host}: {e}"))?
                .next()
                .ok_or_else(|| {
                    format!("Post \"{shown}\": dial tcp: lookup {host}: no such host")
                })?,
        };
        let host_header = match uri.port_u16() {
            Some(p) => format!("{}:{p}", uri.host().unwrap_or("")),
            None => uri.host().unwrap_or("").to_string(),
        };
        return Ok(Target {
            addr,
            server_name: host,
            host_header,
            path: format!("{path}?timeout={timeout}"),
            url: shown,
        });
    }
    let svc = h
        .spec
        .pointer("/clientConfig/service")
        .ok_or("the webhook has neither url nor service")?;
    let s = |k: &str| svc.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (ns, name) = (s("namespace"), s("name"));
    let port = svc.get("port").and_then(Value::as_u64).unwrap_or(443) as u16;
    let mut path = s("path");
    if path.is_empty() {
        path = "/".into();
    }
    let server_name = format!("{name}.{ns}.svc");
    let shown = format!("https://{server_name}:{port}{path}?timeout={timeout}");
    let addr = endpoint_for(st, &ns, &name, port)
        .await
        .map_err(|e| format!("Post \"{shown}\": {e}"))?;
    Ok(Target {
        addr,
        host_header: format!("{server_name}:{port}"),
        server_name,
        path: format!("{path}?timeout={timeout}"),
        url: shown,
    })
}

/// A ready endpoint of Service `ns/name` for its port `port` (the EndpointSlices' port of the
/// same name), chosen at random.
async fn endpoint_for(
    st: &AppState,
    ns: &str,
    name: &str,
    port: u16,
) -> Result<SocketAddr, String> {
    let svc_res = skiff_api::registry::find("", "v1", "services").ok_or("services not served")?;
    let kv = st
        .store
        .get(&crate::request::object_key(svc_res, Some(ns), name))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("service \"{name}\" not found"))?;
    let svc = from_kv(&kv).map_err(|e| e.message)?;
    let sport = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| p.get("port").and_then(Value::as_u64) == Some(port as u64))
        .ok_or_else(|| format!("service \"{name}\" has no port {port}"))?;
    let port_name = sport.get("name").and_then(Value::as_str).unwrap_or("");
    let eps_res = skiff_api::registry::find("discovery.k8s.io", "v1", "endpointslices")
        .ok_or("endpointslices not served")?;
    let prefix = format!("{}{ns}/", eps_res.key_prefix());
    let list = st
        .store
        .list(&prefix, Default::default())
        .await
        .map_err(|e| e.to_string())?;
    let mut candidates = Vec::new();
    for kv in &list.kvs {
        let Ok(slice) = from_kv(kv) else { continue };
        if slice
            .pointer("/metadata/labels/kubernetes.io~1service-name")
            .and_then(Value::as_str)
            != Some(name)
        {
            continue;
        }
        let Some(p) = slice
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str).unwrap_or("") == port_name)
            .and_then(|p| p.get("port").and_then(Value::as_u64))
        else {
            continue;
        };
        for ep in slice
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if ep.pointer("/conditions/ready").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            for a in ep
                .get("addresses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if let Ok(ip) = a.parse::<IpAddr>() {
                    candidates.push(SocketAddr::new(ip, p as u16));
                }
            }
        }
    }
    if candidates.is_empty() {
        return Err(format!("no endpoints available for service \"{name}\""));
    }
    use rand::Rng;
    let i = rand::thread_rng().gen_range(0..candidates.len());
    Ok(candidates[i])
}

/// Go's text for a dial error (`dial tcp 127.0.0.1:1: connect: connection refused`).
fn dial_error(addr: SocketAddr, e: &std::io::Error) -> String {
    let what = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        std::io::ErrorKind::TimedOut => "connection timed out".to_string(),
        _ => e.to_string(),
    };
    format!("dial tcp {addr}: connect: {what}")
}

async fn connect(
    t: &Target,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = tokio::net::TcpStream::connect(t.addr)
        .await
        .map_err(|e| dial_error(t.addr, &e))?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(t.server_name.clone())
        .map_err(|e| format!("invalid server name {:?}: {e}", t.server_name))?;
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls: failed to verify certificate: {e}"))?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// POSTs the AdmissionReview to the webhook and answers the decoded JSON body; the error is
/// the text after upstream's `failed to call webhook: `.
pub(crate) async fn post(
    st: &AppState,
    pool: &Pool,
    h: &Hook,
    review: &Value,
) -> Result<Value, String> {
    let t = target(st, h).await?;
    let body = Bytes::from(serde_json::to_vec(review).map_err(|e| e.to_string())?);
    let key = (t.addr, t.server_name.clone(), Arc::as_ptr(&h.tls) as usize);
    let deadline = h.timeout();
    let work = async {
        // An idle connection first; a fresh one when none is left or the reused one failed
        // before answering (the server may have closed it meanwhile).
        for attempt in 0..2 {
            let idle = pool.idle.lock().get_mut(&key).and_then(Vec::pop);
            let (mut send, reused) = match idle {
                Some(s) if attempt == 0 => (s, true),
                _ => (connect(&t, &h.tls).await?, false),
            };
            if send.ready().await.is_err() {
                if reused {
                    continue;
                }
                return Err("the connection closed before the request was sent".to_string());
            }
            let req = http::Request::post(&t.path)
                .header("host", &t.host_header)
                .header("content-type", "application/json")
                .header("accept", "application/json, */*")
                .body(Full::new(body.clone()))
                .map_err(|e| e.to_string())?;
            let resp = match send.send_request(req).await {
                Ok(r) => r,
                Err(e)
                    if reused
                        && (e.is_closed() || e.is_canceled() || e.is_incomplete_message()) =>
                {
                    continue
                }
                Err(e) => return Err(e.to_string()),
            };
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if !send.is_closed() {
                let mut idle = pool.idle.lock();
                let v = idle.entry(key.clone()).or_default();
                if v.len() < MAX_IDLE {
                    v.push(send);
                }
            }
            if !status.is_success() {
                let text = String::from_utf8_lossy(&bytes);
                return Err(format!(
                    "an error on the server ({:?}) has prevented the request from succeeding",
                    text.trim()
                ));
            }
            return serde_json::from_slice::<Value>(&bytes)
                .map_err(|e| format!("the webhook's answer is not JSON: {e}"));
        }
        Err("the connection closed before the request was sent".to_string())
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(r) => r.map_err(|e| {
            if e.starts_with("Post \"") || e.starts_with("an error on the server") {
                e
            } else {
                format!("Post \"{}\": {e}", t.url)
            }
        }),
        Err(_) => Err(format!("Post \"{}\": context deadline exceeded", t.url)),
    }
}
