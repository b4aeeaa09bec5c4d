//! The upgrade-aware proxy to kubelets: `pods/exec`, `pods/attach`, `pods/portforward` and
//! `nodes/{n}/proxy/{path}`. The client's request goes to the kubelet with its upgrade
//! headers; a 101 from the kubelet is answered with the kubelet's upgrade headers and the two
//! upgraded connections are spliced, so the stream protocols (WebSocket, SPDY) pass through
//! untouched.

use crate::error::{ApiError, ApiResult};
use crate::kubelet::{self, Endpoint};
use crate::request::{Query, Target};
use crate::state::AppState;
use axum::body::Body;
use axum::response::Response;
use http::{Extensions, HeaderMap, HeaderName, Method, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use skiff_api::rbac::{Attributes, UserInfo};
use std::sync::Arc;

/// Request headers never forwarded to a kubelet: credentials meant for the API server,
/// impersonation, and hop-by-hop headers other than the upgrade pair.
fn forward_request_header(name: &HeaderName, upgrade: bool) -> bool {
    let n = name.as_str();
    if n == "connection" || n == "upgrade" {
        return upgrade;
    }
    !(n == "authorization"
        || n == "host"
        || n == "content-length"
        || n == "transfer-encoding"
        || n == "keep-alive"
        || n == "te"
        || n == "trailer"
        || n.starts_with("proxy-")
        || n.starts_with("impersonate-"))
}

/// Response headers never copied back (hyper frames the body itself).
fn forward_response_header(name: &HeaderName, upgrade: bool) -> bool {
    let n = name.as_str();
    if n == "connection" || n == "upgrade" {
        return upgrade;
    }
    !matches!(
        n,
        "content-length" | "transfer-encoding" | "keep-alive" | "te" | "trailer"
    )
}

/// Whether the request asks for a protocol upgrade.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
        && headers.contains_key(http::header::UPGRADE)
}

/// Sends the client's request to the kubelet at `path_and_query` and relays the answer:
/// a streamed body, or on 101 the spliced upgraded connections.
pub async fn forward(
    st: &AppState,
    ep: &Endpoint,
    method: Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Body,
    client_upgrade: Option<OnUpgrade>,
) -> ApiResult<Response> {
    let upgrade = is_upgrade(headers);
    let mut req = http::Request::new(if upgrade { Body::empty() } else { body });
    *req.method_mut() = method;
    *req.uri_mut() = path_and_query
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid kubelet path {path_and_query:?}")))?;
    for (k, v) in headers {
        if forward_request_header(k, upgrade) {
            req.headers_mut().append(k.clone(), v.clone());
        }
    }
    let resp = kubelet::send(st, ep, req).await?;
    let status = resp.status();
    let mut out = Response::builder().status(status);
    for (k, v) in resp.headers() {
        if forward_response_header(k, status == StatusCode::SWITCHING_PROTOCOLS) {
            out = out.header(k, v);
        }
    }
    if status != StatusCode::SWITCHING_PROTOCOLS {
        return out
            .body(resp.into_body())
            .map_err(|e| ApiError::internal(format!("response build failed: {e}")));
    }
    let Some(client_upgrade) = client_upgrade else {
        return Err(ApiError::internal(
            "the kubelet switched protocols but this connection cannot be upgraded: use HTTP/1.1",
        ));
    };
    let node = ep.node.clone();
    tokio::spawn(async move {
        let kubelet_io = match hyper::upgrade::on(resp).await {
            Ok(io) => io,
            Err(e) => {
                tracing::debug!(%node, error = %e, "kubelet upgrade failed");
                return;
            }
        };
        let client_io = match client_upgrade.await {
            Ok(io) => io,
            Err(e) => {
                tracing::debug!(%node, error = %e, "client upgrade failed");
                return;
            }
        };
        let mut a = TokioIo::new(client_io);
        let mut b = TokioIo::new(kubelet_io);
        match tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, 32 * 1024, 32 * 1024).await {
            Ok((up, down)) => tracing::debug!(%node, up, down, "stream proxy finished"),
            Err(e) => tracing::debug!(%node, error = %e, "stream proxy ended with an error"),
        }
    });
    out.body(Body::empty())
        .map_err(|e| ApiError::internal(format!("response build failed: {e}")))
}

/// Minimal query escaping for values put into kubelet URLs.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The containers of a pod spec (regular ones; init and ephemeral containers can be named).
fn container_names(pod: &Value, field: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|c| Some(c.get("name")?.as_str()?.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Picks the container a pod subresource addresses: the named one (which must exist), else
/// the only container; upstream's messages otherwise.
pub fn choose_container(pod: &Value, wanted: Option<&str>) -> ApiResult<String> {
    let pod_name = crate::objects::name(pod);
    let regular = container_names(pod, "containers");
    if let Some(c) = wanted.filter(|c| !c.is_empty()) {
        let known = regular.iter().any(|n| n == c)
            || container_names(pod, "initContainers")
                .iter()
                .any(|n| n == c)
            || container_names(pod, "ephemeralContainers")
                .iter()
                .any(|n| n == c);
        if !known {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {pod_name}"
            )));
        }
        return Ok(c.to_string());
    }
    match regular.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            regular.join(" ")
        ))),
    }
}

/// The node a pod runs on; 400 like upstream when it is not scheduled.
pub fn pod_node(pod: &Value) -> ApiResult<String> {
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(|n| n.as_str())
        .unwrap_or("");
    if node.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {} does not have a host assigned",
            crate::objects::name(pod)
        )));
    }
    Ok(node.to_string())
}

/// The kubelet path and query of an exec or attach request (upstream's streamParams:
/// `command` repeated, `input/output/error/tty=1`).
pub fn remotecommand_path(
    kind: &str,
    ns: &str,
    pod: &str,
    container: &str,
    q: &Query,
) -> ApiResult<String> {
    let mut params: Vec<String> = Vec::new();
    if kind == "exec" {
        let commands = q.multi.get("command").cloned().unwrap_or_default();
        if commands.is_empty() {
            return Err(ApiError::bad_request(
                "you must specify at least one command for the container",
            ));
        }
        params.extend(commands.iter().map(|c| format!("command={}", escape(c))));
    }
    for (from, to) in [
        ("stdin", "input"),
        ("stdout", "output"),
        ("stderr", "error"),
        ("tty", "tty"),
    ] {
        if q.flag(from) {
            params.push(format!("{to}=1"));
        }
    }
    let path = format!(
        "/{kind}/{}/{}/{}",
        escape(ns),
        escape(pod),
        escape(container)
    );
    Ok(if params.is_empty() {
        path
    } else {
        format!("{path}?{}", params.join("&"))
    })
}

/// The kubelet path of a port-forward request (`ports` → `port`).
pub fn portforward_path(ns: &str, pod: &str, q: &Query) -> String {
    let ports: Vec<String> = q
        .multi
        .get("ports")
        .map(|v| {
            v.iter()
                .flat_map(|p| p.split(','))
                .filter(|p| !p.is_empty())
                .map(|p| format!("port={}", escape(p)))
                .collect()
        })
        .unwrap_or_default();
    let path = format!("/portForward/{}/{}", escape(ns), escape(pod));
    if ports.is_empty() {
        path
    } else {
        format!("{path}?{}", ports.join("&"))
    }
}

/// Whether `t` is a pod stream subresource this module serves.
pub fn is_pod_stream(t: &Target) -> bool {
    t.res.group.is_empty()
        && t.res.plural == "pods"
        && t.name.is_some()
        && matches!(
            t.subresource.as_deref(),
            Some("exec") | Some("attach") | Some("portforward")
        )
}

/// `GET|POST pods/{name}/exec|attach|portforward` (already authorized).
pub async fn pod_stream(
    st: &AppState,
    method: Method,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    extensions: &mut Extensions,
) -> ApiResult<Response> {
    if method != Method::GET && method != Method::POST {
        return Err(ApiError::method_not_allowed());
    }
    let ns = t.namespace.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    let pods = skiff_api::registry::find("", "v1", "pods")
        .ok_or_else(|| ApiError::internal("pods not registered"))?;
    let pod = crate::rest::get_object(st, pods, Some(&ns), &name).await?;
    let sub = t.subresource.as_deref().unwrap_or("");
    let path = match sub {
        "portforward" => portforward_path(&ns, &name, q),
        kind => {
            let container = choose_container(&pod, q.get("container"))?;
            remotecommand_path(kind, &ns, &name, &container, q)?
        }
    };
    let node = pod_node(&pod)?;
    let ep = kubelet::node_endpoint(st, &node).await?;
    tracing::debug!(%ns, pod = %name, %node, %sub, "proxying to the kubelet");
    let up = extensions.remove::<OnUpgrade>();
    forward(st, &ep, method, &path, headers, Body::empty(), up).await
}

/// `/api/v1/nodes/{name}[:port]/proxy[/{path}]`: the node name and the kubelet path.
pub fn parse_node_proxy(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/api/v1/nodes/")?;
    let (name, rest) = rest.split_once('/')?;
    let sub = if rest == "proxy" {
        ""
    } else {
        rest.strip_prefix("proxy/")?
    };
    if name.is_empty() {
        return None;
    }
    Some((name.to_string(), format!("/{sub}")))
}

/// RBAC attributes of a node proxy request: `nodes/proxy` with the verb of the method.
pub fn node_proxy_attributes(method: &Method, node: &str, path: &str) -> Attributes {
    let verb = match method.as_str() {
        "GET" | "HEAD" => "get",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        m => return node_attrs(m.to_ascii_lowercase(), node, path),
    };
    node_attrs(verb.to_string(), node, path)
}

fn node_attrs(verb: String, node: &str, path: &str) -> Attributes {
    Attributes {
        verb,
        resource_request: true,
        api_group: String::new(),
        resource: "nodes".into(),
        subresource: "proxy".into(),
        name: node.to_string(),
        namespace: String::new(),
        path: path.to_string(),
    }
}

/// Serves `nodes/{n}/proxy/{path}` (the caller checked [`parse_node_proxy`]).
#[allow(clippy::too_many_arguments)]
pub async fn node_proxy(
    st: &Arc<AppState>,
    user: &UserInfo,
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    extensions: &mut Extensions,
    body: Body,
) -> ApiResult<Response> {
    let Some((name, sub)) = parse_node_proxy(path) else {
        return Err(ApiError::path_not_found());
    };
    let attrs = node_proxy_attributes(method, &name, path);
    let q = Query::parse(raw_query);
    crate::nodeauthz::authorize(st, user, &attrs, &q)?;
    let (node, port) = match name.split_once(':') {
        Some((n, p)) => (n.to_string(), Some(p.to_string())),
        None => (name.clone(), None),
    };
    let ep = kubelet::node_endpoint(st, &node).await?;
    if let Some(p) = port {
        if p != ep.port.to_string() {
            return Err(ApiError::bad_request(format!(
                "only the kubelet port {} of node {node:?} can be proxied, not {p}",
                ep.port
            )));
        }
    }
    let pq = match raw_query {
        Some(q) if !q.is_empty() => format!("{sub}?{q}"),
        _ => sub,
    };
    let up = extensions.remove::<OnUpgrade>();
    forward(st, &ep, method.clone(), &pq, headers, body, up).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {
                "nodeName": "n1",
                "containers": [{"name": "a"}, {"name": "b"}],
                "initContainers": [{"name": "init"}]
            }
        })
    }

    #[test]
    fn container_choice_follows_upstream() {
        let p = pod();
        assert_eq!(choose_container(&p, Some("b")).unwrap(), "b");
        assert_eq!(choose_container(&p, Some("init")).unwrap(), "init");
        assert_eq!(
            choose_container(&p, Some("x")).unwrap_err().message,
            "container x is not valid for pod p"
        );
        assert_eq!(
            choose_container(&p, None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [a b]"
        );
        let one = json!({"metadata": {"name": "q"}, "spec": {"containers": [{"name": "c"}]}});
        assert_eq!(choose_container(&one, None).unwrap(), "c");
        assert_eq!(
            pod_node(&one).unwrap_err().message,
            "pod q does not have a host assigned"
        );
        assert_eq!(pod_node(&p).unwrap(), "n1");
    }

    #[test]
    fn exec_query_maps_to_the_kubelet_names() {
        let q = Query::parse(Some(
            "command=sh&command=-c&command=echo%20hi%3B%20exit%203&container=a&stdin=true&stdout=true&tty=false",
        ));
        assert_eq!(
            remotecommand_path("exec", "default", "p", "a", &q).unwrap(),
            "/exec/default/p/a?command=sh&command=-c&command=echo%20hi%3B%20exit%203&input=1&output=1"
        );
        let q = Query::parse(Some("stdout=1&stderr=1&tty=1"));
        assert_eq!(
            remotecommand_path("attach", "ns", "p", "a", &q).unwrap(),
            "/attach/ns/p/a?output=1&error=1&tty=1"
        );
        assert_eq!(
            remotecommand_path("exec", "ns", "p", "a", &q)
                .unwrap_err()
                .message,
            "you must specify at least one command for the container"
        );
    }

    #[test]
    fn portforward_ports_become_port_params() {
        let q = Query::parse(Some("ports=80&ports=443"));
        assert_eq!(
            portforward_path("ns", "p", &q),
            "/portForward/ns/p?port=80&port=443"
        );
        assert_eq!(
            portforward_path("ns", "p", &Query::default()),
            "/portForward/ns/p"
        );
    }

    #[test]
    fn node_proxy_paths_and_attributes() {
        assert_eq!(
            parse_node_proxy("/api/v1/nodes/n1/proxy/metrics/resource"),
            Some(("n1".into(), "/metrics/resource".into()))
        );
        assert_eq!(
            parse_node_proxy("/api/v1/nodes/n1:10250/proxy"),
            Some(("n1:10250".into(), "/".into()))
        );
        assert_eq!(parse_node_proxy("/api/v1/nodes/n1/status"), None);
        assert_eq!(parse_node_proxy("/api/v1/nodes/n1"), None);
        let a = node_proxy_attributes(&Method::POST, "n1", "/api/v1/nodes/n1/proxy/x");
        assert_eq!(
            (a.verb.as_str(), a.resource.as_str(), a.subresource.as_str()),
            ("create", "nodes", "proxy")
        );
    }

    #[test]
    fn hop_headers_and_credentials_are_not_forwarded() {
        let h = |s: &str| HeaderName::from_bytes(s.as_bytes()).unwrap();
        assert!(!forward_request_header(&h("authorization"), true));
        assert!(!forward_request_header(&h("impersonate-user"), true));
        assert!(forward_request_header(&h("upgrade"), true));
        assert!(!forward_request_header(&h("upgrade"), false));
        assert!(forward_request_header(
            &h("x-stream-protocol-version"),
            true
        ));
        assert!(forward_request_header(&h("sec-websocket-protocol"), true));
        assert!(!forward_response_header(&h("transfer-encoding"), false));
        assert!(forward_response_header(&h("sec-websocket-accept"), true));
        let mut hm = HeaderMap::new();
        hm.insert("connection", "keep-alive, Upgrade".parse().unwrap());
        hm.insert("upgrade", "websocket".parse().unwrap());
        assert!(is_upgrade(&hm));
        hm.remove("upgrade");
        assert!(!is_upgrade(&hm));
    }
}
