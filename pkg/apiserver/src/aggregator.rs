//! API aggregation (kube-aggregator's part of kube-apiserver): APIServices with a
//! `spec.service` are remote group-versions. Requests under `/apis/<group>/<version>` go to one
//! of the service's endpoints over HTTPS (verified with `caBundle` against
//! `<service>.<namespace>.svc`, or not at all with `insecureSkipTLSVerify`), after skiff has
//! authenticated and authorized them, with the user in `X-Remote-User`/`X-Remote-Group`.
//! Discovery lists the remote groups (the aggregated form as fetched from the remote `/apis`).
//! An availability loop checks every remote APIService every few seconds and writes its
//! `Available` condition (`ServiceNotFound`, `MissingEndpoints`, `FailedDiscoveryCheck`,
//! `Passed`). A user's APIService for `metrics.k8s.io` replaces the built-in local one.

use crate::error::{ApiError, ApiResult};
use crate::objects::{from_kv, now_rfc3339};
use crate::state::AppState;
use axum::body::Body;
use axum::response::Response;
use base64::Engine as _;
use http::{HeaderMap, Method};
use hyper_util::rt::TokioIo;
use parking_lot::RwLock;
use serde_json::{json, Value};
use skiff_api::rbac::UserInfo;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Store prefix of the APIServices.
pub const PREFIX: &str = "/registry/apiregistration.k8s.io/apiservices/";
const CHECK_EVERY: Duration = Duration::from_secs(5);
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// A remote group-version.
#[derive(Debug, Clone, PartialEq)]
pub struct Remote {
    pub name: String,
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub service: String,
    pub port: u16,
    pub ca_bundle: Option<Vec<u8>>,
    pub insecure: bool,
    pub group_priority: i64,
    pub version_priority: i64,
}

/// The remote APIService of an object, `None` for a local one.
pub fn remote_of(obj: &Value) -> Option<Remote> {
    let spec = obj.get("spec")?;
    let svc = spec.get("service").filter(|s| s.is_object())?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let ca = spec
        .get("caBundle")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok());
    Some(Remote {
        name: s(obj.get("metadata")?, "name"),
        group: s(spec, "group"),
        version: s(spec, "version"),
        namespace: s(svc, "namespace"),
        service: s(svc, "name"),
        port: svc.get("port").and_then(Value::as_u64).unwrap_or(443) as u16,
        ca_bundle: ca,
        insecure: spec
            .get("insecureSkipTLSVerify")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        group_priority: spec
            .get("groupPriorityMinimum")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        version_priority: spec
            .get("versionPriority")
            .and_then(Value::as_i64)
            .unwrap_or(0),
    })
}

/// The remote APIServices (watch-fed) and the aggregated discovery each last answered.
#[derive(Default)]
pub struct Registry {
    remotes: RwLock<BTreeMap<String, Remote>>,
    /// APIService name → the remote's `APIGroupDiscovery` of its group (from its `/apis`).
    discovery: RwLock<BTreeMap<String, Value>>,
}

impl Registry {
    /// The remote serving `/apis/<group>/<version>`, if any.
    pub fn find(&self, group: &str, version: &str) -> Option<Remote> {
        self.remotes
            .read()
            .values()
            .find(|r| r.group == group && r.version == version)
            .cloned()
    }

    /// Every remote, by group priority (highest first) then name.
    pub fn all(&self) -> Vec<Remote> {
        let mut v: Vec<Remote> = self.remotes.read().values().cloned().collect();
        v.sort_by(|a, b| {
            b.group_priority
                .cmp(&a.group_priority)
                .then(a.name.cmp(&b.name))
        });
        v
    }

    fn replace(&self, objs: &[Value]) {
        let map: BTreeMap<String, Remote> = objs
            .iter()
            .filter_map(remote_of)
            .map(|r| (r.name.clone(), r))
            .collect();
        self.discovery.write().retain(|k, _| map.contains_key(k));
        *self.remotes.write() = map;
    }
}

/// `/apis/<group>/<version>[/…]` → (group, version).
pub fn group_version_of(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/apis/")?;
    let mut it = rest.splitn(3, '/');
    let g = it.next().filter(|g| !g.is_empty())?;
    let v = it.next().filter(|v| !v.is_empty())?;
    Some((g, v))
}

async fn reload(st: &AppState) {
    match st.store.list(PREFIX, Default::default()).await {
        Ok(list) => {
            let objs: Vec<Value> = list.kvs.iter().filter_map(|kv| from_kv(kv).ok()).collect();
            st.apiservices.replace(&objs);
        }
        Err(e) => tracing::warn!(error = %e, "apiservices: list failed"),
    }
}

/// Keeps the registry fresh and the remote APIServices' conditions true, for as long as the
/// server runs (a re-list every few seconds: APIServices are few and rarely change).
pub async fn run(st: Arc<AppState>) {
    loop {
        reload(&st).await;
        for r in st.apiservices.all() {
            check(&st, &r).await;
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

/// Where a remote's service is reachable: `(host to dial, port)`.
async fn resolve(st: &AppState, r: &Remote) -> Result<(String, u16), (&'static str, String)> {
    let svc_key = format!("/registry/core/services/{}/{}", r.namespace, r.service);
    let svc = match st.store.get(&svc_key).await {
        Ok(Some(kv)) => from_kv(&kv).unwrap_or(Value::Null),
        _ => {
            return Err((
                "ServiceNotFound",
                format!("service/{} in {:?} is not present", r.service, r.namespace),
            ))
        }
    };
    if svc.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
        let host = svc
            .pointer("/spec/externalName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return Ok((host, r.port));
    }
    // The service port the APIService names, and the endpoint port behind it.
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(sp) = ports
        .iter()
        .find(|p| p.get("port").and_then(Value::as_u64) == Some(r.port as u64))
    else {
        return Err((
            "ServicePortError",
            format!(
                "service/{} in {:?} is not listening on port {}",
                r.service, r.namespace, r.port
            ),
        ));
    };
    let port_name = sp.get("name").and_then(Value::as_str).unwrap_or("");
    let ep_key = format!("/registry/core/endpoints/{}/{}", r.namespace, r.service);
    let eps = match st.store.get(&ep_key).await {
        Ok(Some(kv)) => from_kv(&kv).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let missing = || {
        (
            "MissingEndpoints",
            format!(
                "endpoints for service/{} in {:?} have no addresses with port name {:?}",
                r.service, r.namespace, port_name
            ),
        )
    };
    for subset in eps
        .get("subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let port = subset
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str).unwrap_or("") == port_name)
            .and_then(|p| p.get("port").and_then(Value::as_u64));
        let addr = subset.pointer("/addresses/0/ip").and_then(Value::as_str);
        if let (Some(port), Some(addr)) = (port, addr) {
            return Ok((addr.to_string(), port as u16));
        }
    }
    Err(missing())
}

fn tls_config(r: &Remote) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    if r.insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(skiff_pki::AcceptAnyServerCert(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &r.ca_bundle {
        let mut rd = ca.as_slice();
        for c in rustls_pemfile::certs(&mut rd).flatten() {
            let _ = roots.add(c);
        }
    }
    if roots.is_empty() {
        return Err(
            "the APIService has no caBundle: set spec.caBundle or spec.insecureSkipTLSVerify"
                .into(),
        );
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Sends one request to the remote (a fresh HTTP/1.1 connection over TLS).
async fn send(
    st: &AppState,
    r: &Remote,
    req: http::Request<Body>,
) -> Result<http::Response<hyper::body::Incoming>, (&'static str, String)> {
    let (host, port) = resolve(st, r).await?;
    let url = format!("https://{host}:{port}");
    let fail = |e: String| {
        (
            "FailedDiscoveryCheck",
            format!("failing or missing response from {url}: {e}"),
        )
    };
    let cfg = tls_config(r).map_err(fail)?;
    let tcp = tokio::time::timeout(
        DIAL_TIMEOUT,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| fail("dial timed out".into()))?
    .map_err(|e| fail(e.to_string()))?;
    let sni = format!("{}.{}.svc", r.service, r.namespace);
    let name = rustls::pki_types::ServerName::try_from(sni).map_err(|e| fail(e.to_string()))?;
    let tls = tokio::time::timeout(
        DIAL_TIMEOUT,
        tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp),
    )
    .await
    .map_err(|_| fail("TLS handshake timed out".into()))?
    .map_err(|e| fail(e.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| fail(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "aggregated API connection ended with an error");
        }
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| fail(e.to_string()))
}

async fn get_json(
    st: &AppState,
    r: &Remote,
    path: &str,
    accept: &str,
) -> Result<Value, (&'static str, String)> {
    let req = http::Request::builder()
        .method(Method::GET)
        .uri(path)
        .header("accept", accept)
        .header("host", format!("{}.{}.svc", r.service, r.namespace))
        .body(Body::empty())
        .map_err(|e| ("FailedDiscoveryCheck", e.to_string()))?;
    let resp = send(st, r, req).await?;
    let status = resp.status();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .map_err(|e| ("FailedDiscoveryCheck", e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err((
            "FailedDiscoveryCheck",
            format!(
                "failing or missing response from {path}: bad status from {path}: {}",
                status.as_u16()
            ),
        ));
    }
    serde_json::from_slice(&body).map_err(|e| ("FailedDiscoveryCheck", e.to_string()))
}

/// Checks one remote APIService and writes its `Available` condition when it changed.
async fn check(st: &Arc<AppState>, r: &Remote) {
    let path = format!("/apis/{}/{}", r.group, r.version);
    let (status, reason, message) = match get_json(st, r, &path, "application/json").await {
        Ok(_) => ("True", "Passed", "all checks passed".to_string()),
        Err((reason, message)) => ("False", reason, message),
    };
    if status == "True" {
        let accept = skiff_api::discovery::AGGREGATED_V2_CONTENT_TYPE;
        if let Ok(list) = get_json(st, r, "/apis", accept).await {
            if let Some(item) = list
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|i| i.pointer("/metadata/name").and_then(Value::as_str) == Some(&r.group))
            {
                st.apiservices
                    .discovery
                    .write()
                    .insert(r.name.clone(), item.clone());
            }
        }
    } else {
        st.apiservices.discovery.write().remove(&r.name);
    }
    let Some(res) = skiff_api::registry::find("apiregistration.k8s.io", "v1", "apiservices") else {
        return;
    };
    let now = now_rfc3339();
    let cond = json!({"type": "Available", "status": status, "reason": reason, "message": message});
    let set = move |old: &Value| -> ApiResult<Value> {
        let mut n = old.clone();
        let prev = old
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Available"))
            .cloned();
        let same = prev.as_ref().is_some_and(|p| {
            p["status"] == cond["status"]
                && p["reason"] == cond["reason"]
                && p["message"] == cond["message"]
        });
        if same {
            return Ok(n);
        }
        let mut c = cond.clone();
        c["lastTransitionTime"] = match prev {
            Some(p) if p["status"] == cond["status"] => p["lastTransitionTime"].clone(),
            _ => json!(now),
        };
        n["status"] = json!({"conditions": [c]});
        Ok(n)
    };
    let opts = crate::rest::WriteOpts {
        dry_run: false,
        field_manager: "skiff-aggregator".into(),
        field_validation: "Ignore".into(),
        apply: false,
    };
    if let Err(e) = crate::rest::update_object(
        st,
        res,
        None,
        &r.name,
        crate::rest::Mutation::With(Box::new(set)),
        &opts,
        Some("status"),
    )
    .await
    {
        if e.code != 404 {
            tracing::warn!(apiservice = %r.name, error = %e.message, "cannot write the APIService status");
        }
    }
}

/// Request headers not forwarded: credentials for skiff, impersonation, hop-by-hop.
fn forwarded(name: &str) -> bool {
    !(name == "authorization"
        || name == "host"
        || name == "connection"
        || name == "keep-alive"
        || name == "transfer-encoding"
        || name == "te"
        || name == "upgrade"
        || name.starts_with("impersonate-")
        || name.starts_with("x-remote-"))
}

/// Proxies an authorized request under `/apis/<group>/<version>` of a remote APIService.
pub async fn proxy(
    st: &AppState,
    r: &Remote,
    user: &UserInfo,
    method: Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let mut req = http::Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = path_and_query
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid path {path_and_query:?}")))?;
    for (k, v) in headers {
        if forwarded(k.as_str()) {
            req.headers_mut().append(k.clone(), v.clone());
        }
    }
    let h = req.headers_mut();
    if let Ok(v) = http::HeaderValue::from_str(&format!("{}.{}.svc", r.service, r.namespace)) {
        h.insert(http::header::HOST, v);
    }
    if let Ok(v) = http::HeaderValue::from_str(&user.name) {
        h.insert("x-remote-user", v);
    }
    for g in &user.groups {
        if let Ok(v) = http::HeaderValue::from_str(g) {
            h.append("x-remote-group", v);
        }
    }
    let resp = send(st, r, req).await.map_err(|(_, message)| {
        ApiError::new(
            503,
            "ServiceUnavailable",
            format!("error trying to reach service: {message}"),
        )
    })?;
    let status = resp.status();
    let mut out = Response::builder().status(status);
    for (k, v) in resp.headers() {
        let n = k.as_str();
        if n != "connection" && n != "transfer-encoding" && n != "keep-alive" {
            out = out.header(k, v);
        }
    }
    out.body(Body::new(resp.into_body()))
        .map_err(|e| ApiError::internal(format!("response build failed: {e}")))
}

/// The legacy `APIGroupList` with the remote groups: each group's versions by priority
/// (merged into a built-in group's entry when it has one, else a new entry).
pub fn merge_group_list(st: &AppState, mut list: Value) -> Value {
    let remotes = st.apiservices.all();
    let Some(groups) = list.get_mut("groups").and_then(Value::as_array_mut) else {
        return list;
    };
    for r in remotes {
        let gv =
            json!({"groupVersion": format!("{}/{}", r.group, r.version), "version": r.version});
        match groups.iter_mut().find(|g| g["name"] == r.group.as_str()) {
            Some(g) => {
                // A remote replaces a local group-version of the same name (metrics.k8s.io).
                if let Some(vs) = g["versions"].as_array_mut() {
                    if !vs.iter().any(|v| v["version"] == r.version.as_str()) {
                        vs.push(gv.clone());
                    }
                }
            }
            None => groups.push(json!({"name": r.group, "versions": [gv.clone()],
                "preferredVersion": gv})),
        }
    }
    list
}

/// The aggregated discovery with the remote groups as their servers describe them (a group
/// whose remote has not answered yet is left out; a local group a remote replaces is dropped).
pub fn merge_aggregated(st: &AppState, mut list: Value) -> Value {
    let remotes = st.apiservices.all();
    let disc = st.apiservices.discovery.read().clone();
    let Some(items) = list.get_mut("items").and_then(Value::as_array_mut) else {
        return list;
    };
    for r in &remotes {
        items.retain(|i| i.pointer("/metadata/name").and_then(Value::as_str) != Some(&r.group));
    }
    for r in &remotes {
        if let Some(item) = disc.get(&r.name) {
            if !items
                .iter()
                .any(|i| i.pointer("/metadata/name") == item.pointer("/metadata/name"))
            {
                items.push(item.clone());
            }
        }
    }
    list
}

/// `/apis/<group>` of a remote group (the group is not served locally).
pub fn api_group(st: &AppState, group: &str) -> Option<Value> {
    let versions: Vec<Value> = st
        .apiservices
        .all()
        .into_iter()
        .filter(|r| r.group == group)
        .map(
            |r| json!({"groupVersion": format!("{}/{}", r.group, r.version), "version": r.version}),
        )
        .collect();
    let first = versions.first()?.clone();
    Some(
        json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions,
        "preferredVersion": first}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_apiservices_and_paths() {
        let local =
            json!({"metadata": {"name": "v1.apps"}, "spec": {"group": "apps", "version": "v1"}});
        assert_eq!(remote_of(&local), None);
        let remote = json!({"metadata": {"name": "v1alpha1.wardle.example.com"}, "spec": {
            "group": "wardle.example.com", "version": "v1alpha1",
            "service": {"namespace": "wardle", "name": "api", "port": 8443},
            "caBundle": base64::engine::general_purpose::STANDARD.encode("pem"),
            "groupPriorityMinimum": 1000, "versionPriority": 15}});
        let r = remote_of(&remote).unwrap();
        assert_eq!(
            (r.group.as_str(), r.version.as_str(), r.port),
            ("wardle.example.com", "v1alpha1", 8443)
        );
        assert_eq!(r.ca_bundle.as_deref(), Some(&b"pem"[..]));
        assert!(!r.insecure);
        let reg = Registry::default();
        reg.replace(&[local, remote]);
        assert!(reg.find("wardle.example.com", "v1alpha1").is_some());
        assert!(reg.find("apps", "v1").is_none());
        assert_eq!(
            group_version_of("/apis/wardle.example.com/v1alpha1/namespaces/x/flunders"),
            Some(("wardle.example.com", "v1alpha1"))
        );
        assert_eq!(group_version_of("/apis/wardle.example.com"), None);
        assert_eq!(group_version_of("/api/v1/pods"), None);
        assert!(!forwarded("authorization"));
        assert!(!forwarded("impersonate-user"));
        assert!(forwarded("accept"));
    }
}
