//! Request dispatch: authentication and authorization, then health, version, discovery,
//! OpenAPI, and the resource verbs.

use crate::authz;
use crate::error::{ApiError, ApiResult};
use crate::metrics::RequestLabels;
use crate::request::{self, negotiate, Output, Query, Target};
use crate::rest::{self, DeleteOpts, Mutation, WriteOpts};
use crate::state::AppState;
use crate::watch;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use skiff_api::rbac::{Attributes, UserInfo};
use skiff_api::registry;
use std::sync::Arc;

/// The identity (common name, organizations) of the TLS connection's client certificate, read
/// once per connection and put in each request's extensions by the server; `None` without a
/// client certificate or when it names no identity.
#[derive(Clone, Default)]
pub struct PeerCert(pub Option<Arc<(String, Vec<String>)>>);

fn json_response(code: u16, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap_or_else(|_| ApiError::internal("response build failed").into_response())
}

fn raw_json_response(body: Vec<u8>) -> Response {
    raw_json_response_with(200, body)
}

fn raw_json_response_with(code: u16, body: Vec<u8>) -> Response {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap_or_else(|_| ApiError::internal("response build failed").into_response())
}

fn text(code: u16, s: &str) -> Response {
    Response::builder()
        .status(code)
        .header("content-type", "text/plain; charset=utf-8")
        .header("x-content-type-options", "nosniff")
        .body(Body::from(s.to_string()))
        .unwrap_or_else(|_| ApiError::internal("response build failed").into_response())
}

/// Entry point for every request.
pub async fn handle(st: Arc<AppState>, req: Request<Body>) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut labels = None;
    let mut user = None;
    let resp = match handle_inner(st.clone(), req, &mut labels, &mut user).await {
        Ok(r) => r,
        Err(e) => {
            if e.code >= 500 {
                let user = user.as_deref().unwrap_or("");
                tracing::error!(%method, %path, user, status = e.code, error = %e.message, "request failed");
            }
            e.into_response()
        }
    };
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    if let Some(l) = &labels {
        st.metrics.observe(l, status, elapsed);
    }
    tracing::debug!(%method, %path, status, elapsed_us = elapsed.as_micros() as u64, "request");
    resp
}

async fn handle_inner(
    st: Arc<AppState>,
    req: Request<Body>,
    labels: &mut Option<RequestLabels>,
    user_name: &mut Option<String>,
) -> ApiResult<Response> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let q = Query::parse(parts.uri.query());
    let headers = parts.headers;
    let method = parts.method;
    let peer = parts
        .extensions
        .get::<PeerCert>()
        .cloned()
        .unwrap_or_default();
    let auth_header = headers.get("authorization").and_then(|h| h.to_str().ok());
    let user = authz::authenticate(&st, peer.0.as_deref(), auth_header);

    if authz::is_public(&path) && method == Method::GET {
        return public(&st, &path, &q);
    }
    // Bootstrap tokens (`skiff token create`) live in Secrets: checked only when nothing else
    // authenticated the request; an invalid one is a 401 that says why.
    let user = match user {
        Some(u) => Some(u),
        None => crate::bootstraptoken::authenticate(&st, auth_header).await?,
    };
    let Some(user) = user else {
        return Err(ApiError::unauthorized());
    };
    let user = impersonate(&st, user, &headers)?;
    *user_name = Some(user.name.clone());
    if path.starts_with(crate::supervisor::PREFIX) {
        let body = read_body(body).await?;
        return crate::supervisor::handle(&st, &method, &path, &headers, body, &user).await;
    }
    // Agent tunnels, nodes/{n}/proxy/… and metrics.k8s.io (tunnel.rs, proxy.rs, metricsapi.rs).
    if path == skiff_tunnel::CONNECT_PATH {
        let (uri, ext) = (parts.uri, parts.extensions);
        return crate::tunnel::connect(&st, &user, method, uri, headers, ext, body).await;
    }
    if crate::proxy::parse_node_proxy(&path).is_some() {
        let (q, ext) = (parts.uri.query(), &mut parts.extensions);
        return crate::proxy::node_proxy(&st, &user, &method, &path, q, &headers, ext, body).await;
    }
    // Remote APIServices (aggregator.rs) come first: a user's metrics.k8s.io replaces ours.
    if let Some(remote) =
        crate::aggregator::group_version_of(&path).and_then(|(g, v)| st.apiservices.find(g, v))
    {
        let attrs = skiff_api::rbac::attributes_for(method.as_str(), &path, q.flag("watch"));
        authz::authorize(&st, &user, &attrs)?;
        let pq = parts
            .uri
            .path_and_query()
            .map_or(path.clone(), |p| p.to_string());
        return crate::aggregator::proxy(&st, &remote, &user, method, &pq, &headers, body).await;
    }
    if let Some(r) = crate::metricsapi::serve(&st, &user, &method, &path, parts.uri.query()).await {
        return r;
    }

    let target = match request::parse_path_with(&path, |g, v, p| st.crds.find(g, v, p)) {
        Some(t) => Some(t?),
        None => None,
    };
    let attrs = attributes(&method, &path, &q, target.as_ref());
    let apply = method == Method::PATCH
        && content_type(&headers).is_some_and(|c| c.starts_with("application/apply-patch"));
    *labels = target.as_ref().map(|t| {
        RequestLabels::of(
            &method,
            t,
            attrs.verb == "watch",
            apply,
            q.dry_run().unwrap_or(false),
        )
    });
    crate::nodeauthz::authorize(&st, &user, &attrs, &q)?;
    if let Some(t) = target.as_ref().filter(|t| crate::proxy::is_pod_stream(t)) {
        let ext = &mut parts.extensions;
        return crate::proxy::pod_stream(&st, method, t, &q, &headers, ext).await;
    }

    let Some(target) = target else {
        return non_resource(&st, &method, &path, &q, &headers, &user);
    };
    let body = read_body(body).await?;
    let scoped = user.clone();
    // CRD writes refresh the served custom resources before answering; deprecated custom
    // versions answer with upstream's Warning header.
    let crd_write = crate::crd::is_crd(target.res) && method != Method::GET;
    let warning = crate::crd::custom(target.res).and_then(|c| c.warning.clone());
    // Policy and binding writes refresh the admission policy cache before answering.
    let policy_write = crate::vap::is_policy(target.res) && method != Method::GET;
    let st2 = st.clone();
    // Webhook configuration writes refresh the webhook cache before answering; warnings
    // from admission webhooks become Warning headers.
    let hook_config_write = crate::webhook::is_config(target.res) && method != Method::GET;
    // A write of a namespace refreshes the creates' namespace cache before answering.
    let namespace_write =
        (target.res.group.is_empty() && target.res.plural == "namespaces" && method != Method::GET)
            .then(|| target.name.clone())
            .flatten();
    let (mut r, hook_warnings) = crate::webhook::collect_warnings(crate::nodeauthz::scope(
        scoped,
        // Boxed: the verb futures are large, and polling them inline through the wrappers
        // overflowed a worker's stack in debug builds.
        crate::vap::with_warnings(Box::pin(resource(
            st, method, target, q, headers, body, user,
        ))),
    ))
    .await;
    if hook_config_write {
        crate::webhook::sync(&st2).await;
    }
    if let Ok(resp) = r.as_mut() {
        for w in hook_warnings {
            let v = format!("299 - {}", skiff_api::text::go_quote(&w));
            if let Ok(h) = axum::http::HeaderValue::from_str(&v) {
                resp.headers_mut().append("warning", h);
            }
        }
    }
    if crd_write {
        crate::crd::sync(&st2).await;
    }
    if let Some(name) = namespace_write {
        crate::namespaces::refresh(&st2, &name).await;
    }
    if policy_write {
        crate::vap::sync(&st2).await;
    }
    if let (Some(w), Ok(resp)) = (warning, r.as_mut()) {
        if let Ok(h) =
            axum::http::HeaderValue::from_str(&format!("299 - {}", skiff_api::text::go_quote(&w)))
        {
            resp.headers_mut().insert("warning", h);
        }
    }
    r
}

/// `Impersonate-User` / `Impersonate-Group` / `Impersonate-Uid` (kubectl --as, --as-group),
/// allowed when the real user may `impersonate` those users and groups.
fn impersonate(st: &AppState, user: UserInfo, headers: &HeaderMap) -> ApiResult<UserInfo> {
    let Some(name) = headers
        .get("impersonate-user")
        .and_then(|h| h.to_str().ok())
    else {
        if headers.get("impersonate-group").is_some() {
            return Err(ApiError::bad_request(
                "requested impersonation of groups without a user: set Impersonate-User too",
            ));
        }
        return Ok(user);
    };
    let check = |resource: &str, ns: &str, n: &str| -> ApiResult<()> {
        let a = Attributes {
            verb: "impersonate".into(),
            resource_request: true,
            api_group: String::new(),
            resource: resource.into(),
            subresource: String::new(),
            name: n.into(),
            namespace: ns.into(),
            path: String::new(),
        };
        authz::authorize(st, &user, &a)
    };
    let mut groups: Vec<String> = Vec::new();
    if let Some(rest) = name.strip_prefix("system:serviceaccount:") {
        let (ns, sa) = rest.split_once(':').unwrap_or(("", rest));
        check("serviceaccounts", ns, sa)?;
        groups.push("system:serviceaccounts".into());
        groups.push(format!("system:serviceaccounts:{ns}"));
    } else {
        check("users", "", name)?;
    }
    for g in headers.get_all("impersonate-group") {
        if let Ok(g) = g.to_str() {
            check("groups", "", g)?;
            groups.push(g.to_string());
        }
    }
    if name != "system:anonymous" && !groups.iter().any(|g| g == "system:authenticated") {
        groups.push("system:authenticated".into());
    }
    let uid = headers
        .get("impersonate-uid")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    Ok(UserInfo {
        name: name.to_string(),
        uid,
        groups,
    })
}

async fn read_body(mut body: Body) -> ApiResult<Bytes> {
    // Bodies over the limit are still read (and dropped, up to a bound) before the 413 goes
    // out, so HTTP/1.1 clients that are still sending see the answer instead of a reset.
    const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("reading the request body failed: {e}")))?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= request::MAX_BODY {
                buf.extend_from_slice(&data);
            } else if seen > DRAIN_LIMIT {
                break;
            }
        }
    }
    if seen > request::MAX_BODY {
        return Err(ApiError::too_large());
    }
    Ok(buf.freeze())
}

fn attributes(method: &Method, path: &str, q: &Query, target: Option<&Target>) -> Attributes {
    let Some(t) = target else {
        return Attributes {
            verb: method.as_str().to_ascii_lowercase(),
            resource_request: false,
            api_group: String::new(),
            resource: String::new(),
            subresource: String::new(),
            name: String::new(),
            namespace: String::new(),
            path: path.to_string(),
        };
    };
    let watch = q.flag("watch") || t.watch_prefix;
    let verb = match (method.as_str(), t.name.is_some()) {
        ("GET", false) | ("HEAD", false) => {
            if watch {
                "watch"
            } else {
                "list"
            }
        }
        ("GET", true) | ("HEAD", true) => {
            if watch {
                "watch"
            } else {
                "get"
            }
        }
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", false) => "deletecollection",
        ("DELETE", true) => "delete",
        (m, _) => {
            return Attributes {
                verb: m.to_ascii_lowercase(),
                resource_request: true,
                api_group: t.res.group.into(),
                resource: t.res.plural.into(),
                subresource: String::new(),
                name: String::new(),
                namespace: String::new(),
                path: path.into(),
            }
        }
    };
    let (namespace, name) = if t.res.kind == "Namespace" && t.res.group.is_empty() {
        (
            t.name.clone().unwrap_or_default(),
            t.name.clone().unwrap_or_default(),
        )
    } else {
        (
            t.namespace.clone().unwrap_or_default(),
            t.name.clone().unwrap_or_default(),
        )
    };
    Attributes {
        verb: verb.to_string(),
        resource_request: true,
        api_group: t.res.group.to_string(),
        resource: t.res.plural.to_string(),
        subresource: t.subresource.clone().unwrap_or_default(),
        name,
        namespace,
        path: path.to_string(),
    }
}

fn public(st: &AppState, path: &str, q: &Query) -> ApiResult<Response> {
    match path {
        "/version" => Ok(json_response(200, &crate::version::info(&st.cfg.build))),
        "/cacerts" | "/v1-skiff/cacerts" => Ok(text(200, st.pki.server_ca_pem())),
        "/ping" | "/v1-skiff/ping" => Ok(text(200, "pong")),
        _ => {
            let ready = st.ready.load(std::sync::atomic::Ordering::Relaxed);
            let base = path.trim_start_matches('/').split('/').next().unwrap_or("");
            let ok = base != "readyz" || ready;
            if q.map.contains_key("verbose") {
                let mut s = String::new();
                s.push_str("[+]ping ok\n[+]log ok\n");
                s.push_str(if ready {
                    "[+]etcd ok\n"
                } else {
                    "[-]etcd failed: reason withheld\n"
                });
                s.push_str(&format!(
                    "{} check {}\n",
                    base,
                    if ok { "passed" } else { "failed" }
                ));
                return Ok(text(if ok { 200 } else { 500 }, &s));
            }
            if ok {
                Ok(text(200, "ok"))
            } else {
                Ok(text(
                    500,
                    "[-]etcd failed: reason withheld\nreadyz check failed",
                ))
            }
        }
    }
}

fn aggregated_wanted(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|a| a.to_str().ok())
        .map(|a| {
            a.split(',').any(|p| {
                let p = p.replace(' ', "");
                p.contains("g=apidiscovery.k8s.io")
                    && p.contains("v=v2")
                    && !p.contains("v=v2beta1")
                    && p.contains("as=APIGroupDiscoveryList")
            })
        })
        .unwrap_or(false)
}

fn aggregated_response(v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(200)
        .header(
            "content-type",
            skiff_api::discovery::AGGREGATED_V2_CONTENT_TYPE,
        )
        .header("vary", "Accept")
        .body(Body::from(body))
        .unwrap_or_else(|_| ApiError::internal("response build failed").into_response())
}

fn non_resource(
    st: &AppState,
    method: &Method,
    path: &str,
    q: &Query,
    headers: &HeaderMap,
    _user: &UserInfo,
) -> ApiResult<Response> {
    if method != Method::GET {
        return Err(ApiError::method_not_allowed());
    }
    let trimmed = path.trim_end_matches('/');
    match trimmed {
        "/api" => {
            if aggregated_wanted(headers) {
                return Ok(aggregated_response(&skiff_api::discovery::aggregated_core()));
            }
            let addr = format!(
                "{}:{}",
                st.cfg
                    .advertise_address
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "127.0.0.1".into()),
                st.cfg.port
            );
            Ok(json_response(
                200,
                &skiff_api::discovery::api_versions(&addr),
            ))
        }
        "/apis" => {
            let custom = st.crds.resources();
            if aggregated_wanted(headers) {
                return Ok(aggregated_response(&crate::aggregator::merge_aggregated(
                    st,
                    skiff_api::discovery::aggregated_apis_with(&custom),
                )));
            }
            Ok(json_response(
                200,
                &crate::aggregator::merge_group_list(
                    st,
                    skiff_api::discovery::api_group_list_with(&custom),
                ),
            ))
        }
        "/api/v1" => skiff_api::discovery::api_resource_list("", "v1")
            .map(|v| json_response(200, &v))
            .ok_or_else(ApiError::path_not_found),
        "/openapi/v3" => Ok(json_response(
            200,
            &crate::crd::openapi_index(st, crate::openapi::index()),
        )),
        "/metrics" => Response::builder()
            .status(200)
            .header("content-type", crate::metrics::CONTENT_TYPE)
            .body(Body::from(st.metrics.render()))
            .map_err(|_| ApiError::internal("response build failed")),
        "/openapi/v2" => crate::openapi::v2_negotiate(headers),
        _ => {
            if let Some(rest) = trimmed.strip_prefix("/openapi/v3/") {
                if let Some(r) = crate::crd::openapi_response(st, rest, q) {
                    return Ok(r);
                }
                return crate::openapi::v3_response(rest, q, headers);
            }
            if let Some(rest) = trimmed.strip_prefix("/apis/") {
                let parts: Vec<&str> = rest.split('/').collect();
                match parts.as_slice() {
                    [g] => {
                        return skiff_api::discovery::api_group_with(g, &st.crds.resources())
                            .or_else(|| crate::aggregator::api_group(st, g))
                            .map(|v| json_response(200, &v))
                            .ok_or_else(ApiError::path_not_found)
                    }
                    [g, v] => {
                        let custom = st.crds.resources();
                        return skiff_api::discovery::api_resource_list_with(g, v, &custom)
                            .map(|v| json_response(200, &v))
                            .ok_or_else(ApiError::path_not_found);
                    }
                    _ => {}
                }
            }
            Err(ApiError::path_not_found())
        }
    }
}

/// Decodes a write body; with `fieldValidation=Strict`, duplicate JSON keys are rejected.
fn decode_write(
    res: &registry::ResourceInfo,
    headers: &HeaderMap,
    body: &[u8],
    q: &Query,
) -> ApiResult<Value> {
    let strict = q.get("fieldValidation") == Some("Strict");
    let ct = content_type(headers).unwrap_or("application/json");
    if strict && ct.starts_with("application/json") {
        let dups = request::duplicate_fields(body);
        if !dups.is_empty() {
            let list = dups
                .iter()
                .map(|d| format!("duplicate field \"{d}\""))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {list}",
                res.kind, res.version, res.kind
            )));
        }
    }
    request::decode_body(Some(ct), body).map_err(|e| {
        if e.code == 400 && e.message.starts_with("couldn't get version/kind") {
            ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): {}",
                res.kind, e.message
            ))
        } else {
            e
        }
    })
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get("content-type").and_then(|h| h.to_str().ok())
}

fn ok(code: u16, v: &Value) -> ApiResult<Response> {
    Ok(json_response(code, v))
}

#[allow(clippy::too_many_arguments)]
async fn resource(
    st: Arc<AppState>,
    method: Method,
    target: Target,
    q: Query,
    headers: HeaderMap,
    body: Bytes,
    _user: UserInfo,
) -> ApiResult<Response> {
    let res = target.res;
    let output = negotiate(headers.get("accept").and_then(|h| h.to_str().ok()));
    let ua = headers.get("user-agent").and_then(|h| h.to_str().ok());
    let ns = target.namespace.clone();
    let sub = target.subresource.clone();
    let watch_req = q.flag("watch") || target.watch_prefix;
    match (&method, &target.name, sub.as_deref()) {
        // ---- reads
        (&Method::GET, _, None) if watch_req => watch::watch(st, target, q, output).await,
        (&Method::GET, None, None) => {
            if res.verbs.iter().all(|v| *v != "list") {
                return Err(ApiError::method_not_allowed());
            }
            if matches!(output, Output::Json) {
                if let Some(body) = rest::list_json_raw(&st, &target, &q).await? {
                    return Ok(raw_json_response(body));
                }
            }
            let out = rest::list_objects(&st, &target, &q).await?;
            ok(200, &rest::render_list(res, out, output, &q)?)
        }
        (&Method::GET, Some(n), None)
        | (&Method::GET, Some(n), Some("status"))
        | (&Method::GET, Some(n), Some("approval")) => {
            let o = rest::get_object(&st, res, ns.as_deref(), n).await?;
            render_one(res, o, output, &q)
        }
        (&Method::GET, Some(n), Some("scale")) => {
            let o = rest::get_object(&st, res, ns.as_deref(), n).await?;
            ok(200, &rest::to_scale(res, &o))
        }
        (&Method::GET, Some(n), Some("log")) => {
            let o = rest::get_object(&st, res, ns.as_deref(), n).await?;
            crate::podio::logs(&st, &o, &q).await
        }
        // ---- create
        (&Method::POST, None, None) => {
            if res.verbs.iter().all(|v| *v != "create") {
                return Err(ApiError::method_not_allowed());
            }
            let obj = decode_write(res, &headers, &body, &q)?;
            let opts = WriteOpts::from_query(&q, ua)?;
            if res.kind == "Binding" {
                let target_name = obj
                    .pointer("/metadata/name")
                    .and_then(|n| n.as_str())
                    .unwrap_or("")
                    .to_string();
                let pods = registry::find("", "v1", "pods")
                    .ok_or_else(|| ApiError::internal("pods not registered"))?;
                return ok(
                    201,
                    &rest::bind(&st, pods, ns.as_deref(), &target_name, obj, &opts).await?,
                );
            }
            if let Some(review) = crate::reviews::handle(&st, res, &obj, &_user)? {
                return ok(201, &review);
            }
            let mut obj = obj;
            if crate::csr::is_csr(res) {
                crate::csr::on_create(&mut obj, &_user)?;
            }
            let created = rest::create_object_encoded(&st, res, ns.as_deref(), obj, &opts).await?;
            match created.json {
                Some(body) => Ok(raw_json_response_with(201, body)),
                None => ok(201, &created.object),
            }
        }
        (&Method::POST, Some(n), Some("binding")) => {
            let obj = request::decode_body(content_type(&headers), &body)?;
            let opts = WriteOpts::from_query(&q, ua)?;
            ok(
                201,
                &rest::bind(&st, res, ns.as_deref(), n, obj, &opts).await?,
            )
        }
        (&Method::POST, Some(n), Some("eviction")) => {
            let obj = request::decode_body(content_type(&headers), &body)?;
            let out = rest::evict(&st, res, ns.as_deref(), n, &obj, q.dry_run()?).await?;
            ok(201, &out)
        }
        (&Method::POST, Some(n), Some("token")) => {
            let obj = request::decode_body(content_type(&headers), &body)?;
            let sa = rest::get_object(&st, res, ns.as_deref(), n).await?;
            ok(201, &crate::reviews::token_request(&st, &sa, obj)?)
        }
        // ---- update
        (&Method::PUT, Some(n), None) => {
            let obj = decode_write(res, &headers, &body, &q)?;
            let opts = WriteOpts::from_query(&q, ua)?;
            let o = rest::update_object(
                &st,
                res,
                ns.as_deref(),
                n,
                Mutation::Replace(obj),
                &opts,
                None,
            )
            .await?;
            ok(200, &o)
        }
        (&Method::PUT, Some(n), Some("status")) => {
            let obj = request::decode_body(content_type(&headers), &body)?;
            let opts = WriteOpts::from_query(&q, ua)?;
            let o = rest::update_object(
                &st,
                res,
                ns.as_deref(),
                n,
                Mutation::Status(obj),
                &opts,
                Some("status"),
            )
            .await?;
            ok(200, &o)
        }
        (&Method::PUT, Some(n), Some("approval")) if crate::csr::is_csr(res) => {
            let obj = request::decode_body(content_type(&headers), &body)?;
            let opts = WriteOpts::from_query(&q, ua)?;
            ok(
                200,
                &crate::csr::approve(&st, res, n, obj, &_user, &opts).await?,
            )
        }
        (&Method::PUT, Some(n), Some("finalize")) => {
            let obj = request::decode_body(content_type(&headers), &body)?;
            let opts = WriteOpts::from_query(&q, ua)?;
            ok(
                200,
                &rest::finalize_namespace(&st, res, n, &obj, &opts).await?,
            )
        }
        (&Method::PUT, Some(n), Some("scale")) => {
            let obj = request::decode_body(content_type(&headers), &body)?;
            let opts = WriteOpts::from_query(&q, ua)?;
            let replicas = obj
                .pointer("/spec/replicas")
                .and_then(|r| r.as_i64())
                .unwrap_or(0);
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .and_then(|r| r.as_str())
                .map(String::from);
            ok(
                200,
                &rest::scale(&st, res, ns.as_deref(), n, replicas, rv, &opts).await?,
            )
        }
        // ---- patch
        (&Method::PATCH, Some(n), sub) => {
            patch(&st, res, ns.as_deref(), n, sub, &q, &headers, &body, ua).await
        }
        // ---- delete
        (&Method::DELETE, Some(n), None) => {
            let opts = DeleteOpts::parse(&q, &body, content_type(&headers))?;
            let o = rest::delete_object(&st, res, ns.as_deref(), n, &opts).await?;
            ok(200, &o)
        }
        (&Method::DELETE, None, None) => {
            let opts = DeleteOpts::parse(&q, &body, content_type(&headers))?;
            ok(
                200,
                &rest::delete_collection(&st, &target, &q, &opts).await?,
            )
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn render_one(
    res: &'static registry::ResourceInfo,
    o: Value,
    output: Output,
    q: &Query,
) -> ApiResult<Response> {
    match output {
        Output::Json => ok(200, &o),
        Output::Table { beta } => {
            let include = crate::table::IncludeObject::from_query(q)?;
            let rv = o
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(json!(""));
            ok(
                200,
                &crate::table::to_table(
                    res,
                    &[o],
                    include,
                    beta,
                    json!({"resourceVersion": rv}),
                    true,
                ),
            )
        }
    }
}

/// Decodes a PATCH (media type, options; server-side apply's YAML body and its required
/// fieldManager) and dispatches it to `rest::apply` or `rest::patch`.
#[allow(clippy::too_many_arguments)]
async fn patch(
    st: &Arc<AppState>,
    res: &'static registry::ResourceInfo,
    ns: Option<&str>,
    n: &str,
    sub: Option<&str>,
    q: &Query,
    headers: &HeaderMap,
    body: &Bytes,
    ua: Option<&str>,
) -> ApiResult<Response> {
    let ct = content_type(headers)
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let opts = WriteOpts::from_query(q, ua)?;
    if body.len() > request::MAX_BODY {
        return Err(ApiError::too_large());
    }
    if ct == "application/apply-patch+yaml" || ct == "application/apply-patch+cbor" {
        if sub.is_some() && sub != Some("status") {
            return Err(ApiError::unsupported_patch_type());
        }
        if q.get("fieldManager").map(|m| m.is_empty()).unwrap_or(true) {
            return Err(ApiError::bad_request("PATCH with application/apply-patch+yaml requires the fieldManager query parameter to be set"));
        }
        let applied = request::parse_yaml(body)?;
        let (o, created) = rest::apply(st, res, ns, n, applied, q.flag("force"), &opts).await?;
        return ok(if created { 201 } else { 200 }, &o);
    }
    ok(
        200,
        &rest::patch(st, res, ns, n, sub, &ct, body, &opts).await?,
    )
}
