//! The HTTP side of the ingress: accepts connections on 80 (plain) and 443 (TLS), serves
//! HTTP/1.1 (keep-alive, upgrades) and HTTP/2, routes each request through the current
//! [`RoutingTable`] and forwards it to a ready endpoint over a pooled HTTP/1.1 client, with
//! X-Forwarded-* headers; upgraded connections (websockets) are spliced byte for byte.

use crate::route::{normalize_host, Backend, RoutingTable};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::{Body, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;

pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Headers that describe one hop and are never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Incoming forwarding headers, dropped (the client is not trusted) before ours are set.
const FORWARDED: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
    "x-forwarded-server",
    "x-real-ip",
    "forwarded",
];

/// Connect attempts (to different endpoints) for a request without a body.
const CONNECT_ATTEMPTS: usize = 3;

/// What every connection handler shares.
pub struct Shared {
    pub table: RwLock<Arc<RoutingTable>>,
    client: Client<HttpConnector, ProxyBody>,
    /// This node's name, sent as X-Forwarded-Server.
    node: HeaderValue,
}

impl Shared {
    pub fn new(node: &str) -> Arc<Shared> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .build(connector);
        Arc::new(Shared {
            table: RwLock::new(Arc::new(RoutingTable::default())),
            client,
            node: HeaderValue::from_str(node).unwrap_or(HeaderValue::from_static("skiff")),
        })
    }

    pub fn set_table(&self, t: RoutingTable) {
        match self.table.write() {
            Ok(mut g) => *g = Arc::new(t),
            Err(p) => *p.into_inner() = Arc::new(t),
        }
    }

    fn table(&self) -> Arc<RoutingTable> {
        match self.table.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|n| match n {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn empty() -> ProxyBody {
    Empty::new().map_err(|n| match n {}).boxed()
}

/// Whether the request asks to switch protocols (`Connection: upgrade` + `Upgrade`).
fn wants_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(header::UPGRADE)
        && h.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
        })
}

/// Removes hop-by-hop headers, including those the Connection header names.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(*n);
    }
}

/// The request's host: the Host header, else the URI authority (HTTP/2).
fn request_host(req: &Request<Incoming>) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default()
}

/// Whether an HTTP/1 request's headers say it has no body (neither Content-Length > 0 nor
/// Transfer-Encoding, RFC 9112 §6.3); hyper may not have marked such a body as ended yet.
fn no_body(parts: &http::request::Parts) -> bool {
    parts.version < Version::HTTP_2
        && !parts.headers.contains_key(header::TRANSFER_ENCODING)
        && parts
            .headers
            .get(header::CONTENT_LENGTH)
            .is_none_or(|v| v.as_bytes() == b"0")
}

/// Sets the forwarding headers on a request going to a backend.
fn forwarding_headers(
    h: &mut HeaderMap,
    client: SocketAddr,
    host: &str,
    tls: bool,
    upgrade: bool,
    node: &HeaderValue,
) {
    for n in FORWARDED {
        h.remove(*n);
    }
    let ip = client.ip().to_string();
    let proto = match (tls, upgrade) {
        (false, false) => "http",
        (true, false) => "https",
        (false, true) => "ws",
        (true, true) => "wss",
    };
    let port = host
        .rsplit_once(':')
        .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty())
        .map(|(_, p)| p.to_string())
        .unwrap_or_else(|| if tls { "443".into() } else { "80".into() });
    let set = |h: &mut HeaderMap, name: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(name, v);
        }
    };
    set(h, "x-forwarded-for", &ip);
    set(h, "x-real-ip", &ip);
    set(h, "x-forwarded-proto", proto);
    set(h, "x-forwarded-host", host);
    set(h, "x-forwarded-port", &port);
    h.insert("x-forwarded-server", node.clone());
}

/// Serves one request.
pub async fn handle(
    shared: Arc<Shared>,
    client: SocketAddr,
    tls: bool,
    mut req: Request<Incoming>,
) -> Result<Response<ProxyBody>, std::convert::Infallible> {
    let host = request_host(&req);
    let table = shared.table();
    let Some(backend) = table
        .route(&normalize_host(&host), req.uri().path())
        .cloned()
    else {
        return Ok(text(StatusCode::NOT_FOUND, "404 page not found\n"));
    };
    if backend.endpoints.is_empty() {
        tracing::debug!(service = %backend.service, namespace = %backend.namespace, "no ready endpoint");
        return Ok(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "no available server\n",
        ));
    }
    let upgrade = wants_upgrade(req.headers());
    let upgrade_proto = upgrade
        .then(|| req.headers().get(header::UPGRADE).cloned())
        .flatten();
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    let (mut parts, body) = req.into_parts();
    // Without a body the request can go to another endpoint when a connect fails (a pod that
    // just went away); with one it is sent once.
    let retryable = body.is_end_stream() || no_body(&parts);
    strip_hop_by_hop(&mut parts.headers);
    if let Some(p) = upgrade_proto {
        parts.headers.insert(header::UPGRADE, p);
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    forwarding_headers(
        &mut parts.headers,
        client,
        &host,
        tls,
        upgrade,
        &shared.node,
    );
    if !parts.headers.contains_key(header::HOST) {
        if let Ok(v) = HeaderValue::from_str(&host) {
            parts.headers.insert(header::HOST, v);
        }
    }
    parts.version = Version::HTTP_11;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());

    let mut body = Some(body.boxed());
    let attempts = if retryable {
        CONNECT_ATTEMPTS.min(backend.endpoints.len())
    } else {
        1
    };
    let mut last_err = None;
    for _ in 0..attempts {
        let Some(ep) = backend.pick() else { break };
        let uri = match format!("http://{ep}{path_and_query}").parse::<http::Uri>() {
            Ok(u) => u,
            Err(_) => return Ok(text(StatusCode::BAD_REQUEST, "bad request path\n")),
        };
        let mut out = Request::from_parts(parts.clone(), body.take().unwrap_or_else(empty));
        *out.uri_mut() = uri;
        match shared.client.request(out).await {
            Ok(resp) => return Ok(respond(resp, client_upgrade, &backend)),
            Err(e) if e.is_connect() && retryable => {
                tracing::debug!(endpoint = %ep, error = %e, "endpoint refused; trying the next one");
                last_err = Some(e);
            }
            Err(e) => {
                last_err = Some(e);
                break;
            }
        }
    }
    if let Some(e) = last_err {
        tracing::warn!(service = %backend.service, namespace = %backend.namespace, error = %e, "backend request failed");
    }
    Ok(text(StatusCode::BAD_GATEWAY, "Bad Gateway\n"))
}

/// The backend's answer, passed on; a 101 splices the two upgraded connections.
fn respond(
    mut resp: Response<Incoming>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    backend: &Arc<Backend>,
) -> Response<ProxyBody> {
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_up) = client_upgrade {
            let backend_up = hyper::upgrade::on(&mut resp);
            let svc = backend.service.clone();
            tokio::spawn(async move {
                match tokio::try_join!(client_up, backend_up) {
                    Ok((c, b)) => {
                        let (mut c, mut b) = (TokioIo::new(c), TokioIo::new(b));
                        if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut b).await {
                            tracing::debug!(service = %svc, error = %e, "upgraded connection ended");
                        }
                    }
                    Err(e) => tracing::debug!(service = %svc, error = %e, "upgrade failed"),
                }
            });
            let (parts, body) = resp.into_parts();
            return Response::from_parts(parts, body.boxed());
        }
    }
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, body.boxed())
}

/// Serves connections accepted on `listener` until the task is dropped; `tls` wraps each
/// connection in the acceptor first.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "ingress accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let is_tls = tls.is_some();
            let svc =
                hyper::service::service_fn(move |req| handle(shared.clone(), peer, is_tls, req));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let res = match tls {
                None => {
                    builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .await
                }
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(
                        Duration::from_secs(10),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            return tracing::debug!(%peer, error = %e, "TLS handshake failed")
                        }
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    };
                    builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .await
                }
            };
            if let Err(e) = res {
                tracing::debug!(%peer, error = %e, "ingress connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A backend on 127.0.0.1 answering `<name> <x-forwarded-for> <x-forwarded-proto>
    /// <x-forwarded-host> <host>`, and upgrading `Upgrade: echo` requests to an echo stream.
    async fn backend(name: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |mut req: Request<Incoming>| async move {
                            let h = |n: &str| {
                                req.headers()
                                    .get(n)
                                    .map(|v| v.to_str().unwrap().to_string())
                                    .unwrap_or_default()
                            };
                            if req.headers().contains_key(header::UPGRADE) {
                                let up = hyper::upgrade::on(&mut req);
                                tokio::spawn(async move {
                                    let mut io = TokioIo::new(up.await.unwrap());
                                    let mut buf = [0u8; 64];
                                    let n = io.read(&mut buf).await.unwrap();
                                    io.write_all(&buf[..n]).await.unwrap();
                                });
                                let mut r = Response::new(empty());
                                *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                                r.headers_mut()
                                    .insert(header::UPGRADE, HeaderValue::from_static("echo"));
                                r.headers_mut().insert(
                                    header::CONNECTION,
                                    HeaderValue::from_static("upgrade"),
                                );
                                return Ok::<_, std::convert::Infallible>(r);
                            }
                            let body = format!(
                                "{name} {} {} {} {}",
                                h("x-forwarded-for"),
                                h("x-forwarded-proto"),
                                h("x-forwarded-host"),
                                h("host")
                            );
                            Ok(Response::new(
                                Full::new(Bytes::from(body)).map_err(|n| match n {}).boxed(),
                            ))
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        addr
    }

    fn table(eps: &[SocketAddr], dead: SocketAddr) -> RoutingTable {
        use serde_json::json;
        let ing: k8s_openapi::api::networking::v1::Ingress = serde_json::from_value(json!({
            "metadata": {"name": "i", "namespace": "default"},
            "spec": {"rules": [
                {"host": "app.test", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}},
                {"host": "empty.test", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "none", "port": {"number": 80}}}}]}}]}
        }))
        .unwrap();
        let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
            "metadata": {"name": "app", "namespace": "default"},
            "spec": {"ports": [{"port": 80}]}}))
        .unwrap();
        // A refused endpoint first: requests without a body go on to the next one.
        let mut addrs = vec![dead];
        addrs.extend_from_slice(eps);
        let slices: Vec<k8s_openapi::api::discovery::v1::EndpointSlice> = addrs
            .iter()
            .map(|a| {
                serde_json::from_value(json!({
                    "metadata": {"name": format!("app-{}", a.port()), "namespace": "default",
                        "labels": {"kubernetes.io/service-name": "app"}},
                    "addressType": "IPv4",
                    "ports": [{"port": a.port(), "protocol": "TCP"}],
                    "endpoints": [{"addresses": [a.ip().to_string()]}]}))
                .unwrap()
            })
            .collect();
        let slice_refs: Vec<_> = slices.iter().collect();
        crate::route::build(&[&ing], &[], &[&svc], &slice_refs)
    }

    async fn raw(addr: SocketAddr, request: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn proxies_round_robin_retries_503_404_and_upgrades() {
        let (a, b) = (backend("a").await, backend("b").await);
        // A port nothing listens on.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let shared = Shared::new("n1");
        shared.set_table(table(&[a, b], dead));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, shared, None));

        let get = |host: &'static str| {
            raw(addr, Box::leak(format!(
                "GET /x HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n"
            ).into_boxed_str()))
        };
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..6 {
            let r = get("app.test").await;
            assert!(r.starts_with("HTTP/1.1 200"), "{r}");
            let body = r.rsplit("\r\n\r\n").next().unwrap().to_string();
            assert!(
                body.ends_with(" 127.0.0.1 http app.test app.test"),
                "{body}"
            );
            seen.insert(body[..1].to_string());
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "b"]);
        let r = get("empty.test").await;
        assert!(r.starts_with("HTTP/1.1 503"), "{r}");
        let r = get("other.test").await;
        assert!(
            r.starts_with("HTTP/1.1 404") && r.ends_with("404 page not found\n"),
            "{r}"
        );

        // Upgrade: the 101 comes back and bytes flow both ways.
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                n,
                1,
                "connection closed in the head: {}",
                String::from_utf8_lossy(&head)
            );
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"ping");
        server.abort();
    }

    #[test]
    fn hop_by_hop_and_forwarding_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        assert!(!wants_upgrade(&h));
        strip_hop_by_hop(&mut h);
        let node = HeaderValue::from_static("n1");
        forwarding_headers(
            &mut h,
            "192.0.2.9:5555".parse().unwrap(),
            "www.a.com",
            false,
            false,
            &node,
        );
        let get = |n: &str| h.get(n).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(get("x-private"), None);
        assert_eq!(get("keep-alive"), None);
        assert_eq!(get("accept").as_deref(), Some("*/*"));
        assert_eq!(get("x-forwarded-for").as_deref(), Some("192.0.2.9"));
        assert_eq!(get("x-forwarded-proto").as_deref(), Some("http"));
        assert_eq!(get("x-forwarded-host").as_deref(), Some("www.a.com"));
        assert_eq!(get("x-forwarded-port").as_deref(), Some("80"));
        assert_eq!(get("x-forwarded-server").as_deref(), Some("n1"));

        let mut ws = HeaderMap::new();
        ws.insert("connection", HeaderValue::from_static("Upgrade"));
        ws.insert("upgrade", HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&ws));
        forwarding_headers(
            &mut ws,
            "192.0.2.9:1".parse().unwrap(),
            "a.com:8443",
            true,
            true,
            &node,
        );
        assert_eq!(ws.get("x-forwarded-proto").unwrap(), "wss");
        assert_eq!(ws.get("x-forwarded-port").unwrap(), "8443");
    }
}
