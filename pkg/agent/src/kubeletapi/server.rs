//! The kubelet API's TLS listener, hyper connection handling (HTTP/1.1 with upgrades, h2),
//! client-certificate authentication, routing and the plain handlers (healthz, pods, logs,
//! stats, metrics).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_cri::v1::{
    ContainerFilter, ContainerState, ContainerStateValue, ContainerStatsFilter,
    ListContainerStatsRequest, ListContainersRequest, ListPodSandboxRequest,
};
use tokio::sync::mpsc;

use super::auth::{self, Identity};
use super::logs::{self, LogOptions};
use super::stats::{self, ContainerSample, Rates};
use super::{pods, query_pairs, ApiError, KubeletApiConfig};
use crate::cri::Cri;
use crate::kubelet::spec::LABEL_CONTAINER_NAME;
use crate::kubelet::{LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID};
use crate::Error;

/// The response body of every route.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared state of the server.
pub struct State {
    pub cfg: KubeletApiConfig,
    pub cri: Cri,
    pub client: Option<kube::Client>,
    rates: Mutex<Rates>,
}

impl State {
    pub fn new(cfg: KubeletApiConfig, cri: Cri, client: Option<kube::Client>) -> State {
        State {
            cfg,
            cri,
            client,
            rates: Mutex::new(Rates::default()),
        }
    }
}

/// The rustls configuration: serving chain and key; client certificates optional at the TLS
/// level (so a missing one gets upstream's 401) and verified against the client CA.
pub fn tls_config(cfg: &KubeletApiConfig) -> Result<Arc<rustls::ServerConfig>, Error> {
    let bad = |what: &str, e: String| Error::Config(format!("kubelet API {what}: {e}"));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pemfile::certs(&mut cfg.client_ca_pem.as_bytes()) {
        let ca = ca.map_err(|e| bad("client CA", e.to_string()))?;
        roots.add(ca).map_err(|e| bad("client CA", e.to_string()))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| bad("client certificate verifier", e.to_string()))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS", e.to_string()))?
        .with_client_cert_verifier(verifier);
    let mut config = match &cfg.cert_resolver {
        Some(r) => builder.with_cert_resolver(r.clone()),
        None => {
            let chain = rustls_pemfile::certs(&mut cfg.serving_cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("serving certificate", e.to_string()))?;
            let key = rustls_pemfile::private_key(&mut cfg.serving_key_pem.as_bytes())
                .map_err(|e| bad("serving key", e.to_string()))?
                .ok_or_else(|| bad("serving key", "no private key in the PEM".into()))?;
            builder
                .with_single_cert(chain, key)
                .map_err(|e| bad("serving certificate", e.to_string()))?
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts connections until the task is aborted.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<State>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "kubelet API accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "kubelet API TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| skiff_pki::client_cert_identity(c).ok())
                .map(|(user, groups)| Identity { user, groups });
            let identity = Arc::new(identity);
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                let identity = identity.clone();
                async move { Ok::<_, Infallible>(handle(state, identity.as_ref().as_ref(), req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!(%peer, error = %e, "kubelet API connection ended");
            }
        });
    }
}

/// A plain text answer.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full(body.into()))
        .unwrap_or_default()
}

/// A body of known bytes.
pub fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed()
}

/// Turns a `Full` response (from `skiff-streaming`) into this server's body type.
pub fn boxed(r: Response<Full<Bytes>>) -> Response<Body> {
    r.map(|b| b.map_err(|never| match never {}).boxed())
}

fn json(value: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(Bytes::from(value.to_string())))
        .unwrap_or_default()
}

impl From<ApiError> for Response<Body> {
    fn from(e: ApiError) -> Self {
        text(e.status, e.text)
    }
}

/// A kubelet API path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Pods,
    StatsSummary,
    MetricsResource,
    ContainerLogs {
        ns: String,
        pod: String,
        container: String,
    },
    Exec {
        ns: String,
        pod: String,
        container: String,
    },
    Attach {
        ns: String,
        pod: String,
        container: String,
    },
    PortForward {
        ns: String,
        pod: String,
    },
}

/// Maps a path to a route (`None`: 404). Segments are percent-decoded.
pub fn route(path: &str) -> Option<Route> {
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let owned = |x: &str| x.to_string();
    match s.as_slice() {
        ["healthz"] => Some(Route::Healthz),
        ["pods"] | ["pods", ""] => Some(Route::Pods),
        ["stats", "summary"] | ["stats", "summary", ""] => Some(Route::StatsSummary),
        ["metrics", "resource"] | ["metrics", "resource", ""] => Some(Route::MetricsResource),
        ["containerLogs", ns, pod, c] if !ns.is_empty() && !pod.is_empty() && !c.is_empty() => {
            Some(Route::ContainerLogs {
                ns: owned(ns),
                pod: owned(pod),
                container: owned(c),
            })
        }
        [verb @ ("exec" | "attach"), ns, pod, rest @ ..]
            if (rest.len() == 1 || rest.len() == 2) && !rest[rest.len() - 1].is_empty() =>
        {
            let (ns, pod, container) = (owned(ns), owned(pod), owned(rest[rest.len() - 1]));
            Some(if *verb == "exec" {
                Route::Exec { ns, pod, container }
            } else {
                Route::Attach { ns, pod, container }
            })
        }
        ["portForward", ns, pod] | ["portForward", ns, pod, _] if !pod.is_empty() => {
            Some(Route::PortForward {
                ns: owned(ns),
                pod: owned(pod),
            })
        }
        _ => None,
    }
}

// Percent-decodes one path segment (`+` stays a plus, unlike in a query).
use skiff_api::text::percent_decode_path_segment as percent_decode;

/// Authenticates, authorizes and dispatches one request.
pub async fn handle(
    state: Arc<State>,
    identity: Option<&Identity>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    if let Some((status, msg)) = auth::check(identity, req.method(), &path) {
        return text(status, msg);
    }
    let Some(route) = route(&path) else {
        return text(StatusCode::NOT_FOUND, "404 page not found\n");
    };
    let method = req.method().clone();
    let streaming = matches!(
        route,
        Route::Exec { .. } | Route::Attach { .. } | Route::PortForward { .. }
    );
    let allowed = if streaming {
        method == Method::GET || method == Method::POST
    } else {
        method == Method::GET
    };
    if !allowed {
        return text(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed");
    }
    let query = query_pairs(req.uri().query());
    match route {
        Route::Healthz => text(StatusCode::OK, "ok"),
        Route::Pods => pods_list(&state).await.unwrap_or_else(Into::into),
        Route::StatsSummary => {
            let (node, containers, _) = collect(&state).await;
            let mut rates = state.rates.lock().unwrap_or_else(|p| p.into_inner());
            let node_rate = rates.observe("node", node.time_ns, node.cpu_ns);
            let with_rates: Vec<_> = containers
                .into_iter()
                .map(|c| {
                    let r = rates.observe(&c.id, c.cpu_time_ns, c.cpu_ns);
                    (c, r)
                })
                .collect();
            let live: Vec<&str> = with_rates.iter().map(|(c, _)| c.id.as_str()).collect();
            rates.retain(&live);
            drop(rates);
            json(&stats::summary(
                &state.cfg.node_name,
                &node,
                node_rate,
                &with_rates,
            ))
        }
        Route::MetricsResource => {
            let (node, containers, error) = collect(&state).await;
            Response::builder()
                .header(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )
                .body(full(Bytes::from(stats::resource_metrics(
                    &node,
                    &containers,
                    error,
                ))))
                .unwrap_or_default()
        }
        Route::ContainerLogs { ns, pod, container } => {
            container_logs(&state, &ns, &pod, &container, &query)
                .await
                .unwrap_or_else(Into::into)
        }
        Route::Exec { ns, pod, container } => {
            super::streams::remotecommand(state, req, &ns, &pod, &container, true, &query).await
        }
        Route::Attach { ns, pod, container } => {
            super::streams::remotecommand(state, req, &ns, &pod, &container, false, &query).await
        }
        Route::PortForward { ns, pod } => super::streams::port_forward(state, req, &ns, &pod).await,
    }
}

/// `/pods`: the PodList of this node's pods, from the API.
async fn pods_list(state: &State) -> Result<Response<Body>, ApiError> {
    let client = state
        .client
        .clone()
        .ok_or_else(|| ApiError::internal("the node has no API client"))?;
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::all(client);
    let list = api
        .list(
            &kube::api::ListParams::default()
                .fields(&format!("spec.nodeName={}", state.cfg.node_name)),
        )
        .await
        .map_err(|e| ApiError::internal(format!("failed to list pods: {e}")))?;
    let items: Vec<serde_json::Value> = list
        .items
        .iter()
        .filter_map(|p| serde_json::to_value(p).ok())
        .collect();
    Ok(json(&serde_json::json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {},
        "items": items,
    })))
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

/// The node sample and every running container's sample (true when the runtime failed).
async fn collect(state: &State) -> (stats::NodeSample, Vec<ContainerSample>, bool) {
    let node = tokio::task::spawn_blocking(|| stats::read_node(now_ns()))
        .await
        .unwrap_or_default();
    match collect_containers(&state.cri).await {
        Ok(c) => (node, c, false),
        Err(e) => {
            tracing::warn!(error = %e.message(), "kubelet API: container stats failed");
            (node, Vec::new(), true)
        }
    }
}

async fn collect_containers(cri: &Cri) -> Result<Vec<ContainerSample>, tonic::Status> {
    let mut rt = cri.runtime.clone();
    let running = rt
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                state: Some(ContainerStateValue {
                    state: ContainerState::ContainerRunning as i32,
                }),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .containers;
    let sandboxes: std::collections::HashMap<String, i64> = rt
        .list_pod_sandbox(ListPodSandboxRequest { filter: None })
        .await?
        .into_inner()
        .items
        .into_iter()
        .map(|s| (s.id, s.created_at))
        .collect();
    let stats: std::collections::HashMap<String, k8s_cri::v1::ContainerStats> = rt
        .list_container_stats(ListContainerStatsRequest {
            filter: Some(ContainerStatsFilter::default()),
        })
        .await?
        .into_inner()
        .stats
        .into_iter()
        .filter_map(|s| Some((s.attributes.as_ref()?.id.clone(), s)))
        .collect();
    let mut out = Vec::new();
    for c in running {
        let Some(st) = stats.get(&c.id) else { continue };
        let label = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
        let cpu = st.cpu.as_ref();
        let mem = st.memory.as_ref();
        let val = |v: &Option<k8s_cri::v1::UInt64Value>| v.as_ref().map_or(0, |v| v.value);
        out.push(ContainerSample {
            id: c.id.clone(),
            namespace: label(LABEL_POD_NAMESPACE),
            pod: label(LABEL_POD_NAME),
            pod_uid: label(LABEL_POD_UID),
            name: c
                .labels
                .get(LABEL_CONTAINER_NAME)
                .cloned()
                .or_else(|| c.metadata.as_ref().map(|m| m.name.clone()))
                .unwrap_or_default(),
            start_ns: c.created_at,
            pod_start_ns: sandboxes
                .get(&c.pod_sandbox_id)
                .copied()
                .unwrap_or(c.created_at),
            cpu_time_ns: cpu.map_or(0, |c| c.timestamp),
            cpu_ns: cpu.map_or(0, |c| val(&c.usage_core_nano_seconds)),
            memory_time_ns: mem.map_or(0, |m| m.timestamp),
            working_set: mem.map_or(0, |m| val(&m.working_set_bytes)),
            usage: mem.map_or(0, |m| val(&m.usage_bytes)),
            rss: mem.map_or(0, |m| val(&m.rss_bytes)),
        });
    }
    out.sort_by(|a, b| (&a.namespace, &a.pod, &a.name).cmp(&(&b.namespace, &b.pod, &b.name)));
    Ok(out)
}

/// The container whose log a request reads: `previous` is the last terminated instance.
async fn log_instance(
    state: &State,
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<k8s_cri::v1::Container, ApiError> {
    let client = state.client.as_ref();
    let Some(sandbox) = pods::find_sandbox(&state.cri, ns, pod).await? else {
        return Err(pods::resolve(&state.cri, client, ns, pod, container, false)
            .await
            .err()
            .unwrap_or_else(|| ApiError::not_found(format!("pod \"{pod}\" does not exist"))));
    };
    let instances = pods::instances(&state.cri, &pods::sandbox_uid(&sandbox), container).await?;
    if instances.is_empty() {
        return Err(pods::resolve(&state.cri, client, ns, pod, container, false)
            .await
            .err()
            .unwrap_or_else(|| {
                ApiError::bad_request(format!(
                    "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
                ))
            }));
    }
    if !previous {
        let current = &instances[0];
        if current.state == ContainerState::ContainerCreated as i32 {
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
            )));
        }
        return Ok(current.clone());
    }
    let not_found = || {
        ApiError::bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{pod}\" not found"
        ))
    };
    // The API status names the last terminated instance (while a crash-looping container
    // waits for its restart that is the newest one); without it, the one before the newest.
    let from_status = match client {
        Some(c) => {
            let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
                kube::Api::namespaced(c.clone(), ns);
            api.get_opt(pod).await.ok().flatten().map(|p| {
                let status = p.status.unwrap_or_default();
                status
                    .container_statuses
                    .into_iter()
                    .flatten()
                    .chain(status.init_container_statuses.into_iter().flatten())
                    .find(|s| s.name == container)
                    .and_then(|s| s.last_state?.terminated?.container_id)
                    .map(|id| id.rsplit("://").next().unwrap_or_default().to_string())
            })
        }
        None => None,
    };
    match from_status {
        Some(Some(id)) => instances
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(not_found),
        Some(None) => Err(not_found()),
        None => instances.into_iter().nth(1).ok_or_else(not_found),
    }
}

/// `GET /containerLogs/{ns}/{pod}/{container}`.
async fn container_logs(
    state: &Arc<State>,
    ns: &str,
    pod: &str,
    container: &str,
    query: &[(String, String)],
) -> Result<Response<Body>, ApiError> {
    let mut opts: LogOptions = logs::parse_query(query, chrono::Utc::now())
        .map_err(|e| ApiError::new(e.status(), e.text()))?;
    let instance = log_instance(state, ns, pod, container, opts.previous).await?;
    let status = pods::status(&state.cri, &instance.id).await?;
    if status.state != ContainerState::ContainerRunning as i32 {
        opts.follow = false;
    }
    let path = std::path::PathBuf::from(&status.log_path);
    if status.log_path.is_empty() || !path.exists() {
        return Err(ApiError::bad_request(format!(
            "failed to get log file of container \"{container}\" in pod \"{pod}\": the runtime \
             reports no log file"
        )));
    }
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let cri = state.cri.clone();
    let id = instance.id.clone();
    tokio::spawn(async move {
        let running = move || {
            let cri = cri.clone();
            let id = id.clone();
            async move { pods::is_running(&cri, &id).await }
        };
        if let Err(e) = logs::stream_file(path, opts, running, tx).await {
            tracing::warn!(error = %e, "kubelet API: log stream ended");
        }
    });
    let body = StreamBody::new(
        tokio_stream::wrappers::ReceiverStream::new(rx)
            .map(|b| Ok::<_, std::io::Error>(Frame::data(b))),
    );
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "text/plain")
        .body(BodyExt::boxed(body))
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Empty;

    /// A runtime client that is never called (connects lazily to a closed port).
    fn idle_cri() -> Cri {
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
        Cri {
            runtime: k8s_cri::v1::runtime_service_client::RuntimeServiceClient::new(
                channel.clone(),
            ),
            images: k8s_cri::v1::image_service_client::ImageServiceClient::new(channel.clone()),
            channel,
        }
    }

    /// GETs `path` over TLS, optionally with a client certificate; (status, body).
    async fn get(
        addr: std::net::SocketAddr,
        server_ca: &str,
        client_cert: Option<&(String, String)>,
        path: &str,
    ) -> (u16, String) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut server_ca.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match client_cert {
            Some((cert, key)) => {
                let chain = rustls_pemfile::certs(&mut cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                let key = rustls_pemfile::private_key(&mut key.as_bytes())
                    .unwrap()
                    .unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(
                rustls::pki_types::ServerName::try_from("localhost").unwrap(),
                tcp,
            )
            .await
            .unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = Request::get(path)
            .header(header::HOST, "localhost")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn only_the_apiserver_and_masters_pass_client_auth() {
        let dir = tempfile::tempdir().unwrap();
        let pki = skiff_pki::load_or_create(&dir.path().join("tls"), &Default::default()).unwrap();
        let (cert, key) = pki
            .issue_serving_cert(
                "node-1",
                &["localhost".to_string()],
                &["127.0.0.1".parse().unwrap()],
            )
            .unwrap();
        let cfg = KubeletApiConfig {
            node_name: "node-1".into(),
            address: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 0,
            pod_log_dir: dir.path().join("pods"),
            run_dir: dir.path().join("run"),
            serving_cert_pem: cert,
            serving_key_pem: key,
            client_ca_pem: pki.client_ca_pem().to_string(),
            cert_resolver: None,
        };
        let running = super::super::start(cfg, idle_cri(), None).await.unwrap();
        let ca = pki.server_ca_pem();
        let apiserver = pki.issue_client_cert("system:apiserver", &[]).unwrap();
        let admin = pki
            .issue_client_cert("system:admin", &["system:masters"])
            .unwrap();
        let node = pki
            .issue_client_cert("system:node:node-2", &["system:nodes"])
            .unwrap();

        assert_eq!(
            get(running.addr, ca, None, "/healthz").await,
            (401, "Unauthorized".to_string())
        );
        assert_eq!(
            get(running.addr, ca, Some(&node), "/stats/summary").await,
            (
                403,
                "Forbidden (user=system:node:node-2, verb=get, resource=nodes, \
                 subresource(s)=[stats])"
                    .to_string()
            )
        );
        assert_eq!(
            get(running.addr, ca, Some(&apiserver), "/healthz").await,
            (200, "ok".to_string())
        );
        assert_eq!(
            get(running.addr, ca, Some(&admin), "/healthz").await,
            (200, "ok".to_string())
        );
        assert_eq!(
            get(running.addr, ca, Some(&apiserver), "/nope").await.0,
            404
        );
        // A client certificate from another CA fails the handshake.
        let other_dir = tempfile::tempdir().unwrap();
        let other = skiff_pki::load_or_create(other_dir.path(), &Default::default()).unwrap();
        let stranger = other.issue_client_cert("system:apiserver", &[]).unwrap();
        let handshake = tokio::spawn({
            let ca = ca.to_string();
            let addr = running.addr;
            async move { get(addr, &ca, Some(&stranger), "/healthz").await }
        });
        assert!(
            handshake.await.is_err(),
            "a foreign client certificate must be refused"
        );
        running.task.abort();
    }

    #[test]
    fn routes_follow_the_kubelet() {
        assert_eq!(route("/healthz"), Some(Route::Healthz));
        assert_eq!(route("/pods/"), Some(Route::Pods));
        assert_eq!(route("/stats/summary"), Some(Route::StatsSummary));
        assert_eq!(route("/metrics/resource"), Some(Route::MetricsResource));
        assert_eq!(
            route("/containerLogs/default/web-1/nginx"),
            Some(Route::ContainerLogs {
                ns: "default".into(),
                pod: "web-1".into(),
                container: "nginx".into()
            })
        );
        let exec = Some(Route::Exec {
            ns: "ns".into(),
            pod: "p".into(),
            container: "c".into(),
        });
        assert_eq!(route("/exec/ns/p/c"), exec);
        assert_eq!(route("/exec/ns/p/uid-1/c"), exec);
        assert!(matches!(
            route("/attach/ns/p/c"),
            Some(Route::Attach { .. })
        ));
        let pf = Some(Route::PortForward {
            ns: "ns".into(),
            pod: "p".into(),
        });
        assert_eq!(route("/portForward/ns/p"), pf);
        assert_eq!(route("/portForward/ns/p/uid"), pf);
        assert_eq!(route("/exec/ns/p"), None);
        assert_eq!(route("/containerLogs/ns/p"), None);
        assert_eq!(route("/nope"), None);
        assert_eq!(
            route("/containerLogs/a%20b/p/c"),
            Some(Route::ContainerLogs {
                ns: "a b".into(),
                pod: "p".into(),
                container: "c".into()
            })
        );
    }
}
