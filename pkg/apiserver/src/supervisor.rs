//! The supervisor routes agents use to get their identity (`/v1-skiff/…`, on the API port, as
//! in k3s): the CA files, and kubelet client/serving certificates signed from a CSR the node
//! made (its key never leaves it), guarded by the per-node password kept hashed in Secret
//! `kube-system/<node>.node-password.skiff`. Also the background task that ties those Secrets
//! to their Node (ownerReference) and removes the ones whose Node is gone.

use crate::error::{ApiError, ApiResult};
use crate::objects::from_kv;
use crate::rest::{self, DeleteOpts, Mutation, WriteOpts};
use crate::state::AppState;
use axum::body::Body;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use skiff_api::rbac::UserInfo;
use skiff_api::registry::{self, ResourceInfo};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Path prefix of the supervisor routes.
pub const PREFIX: &str = "/v1-skiff/";
/// Header carrying the node name.
pub const NODE_NAME_HEADER: &str = "skiff-node-name";
/// Header carrying the node password.
pub const NODE_PASSWORD_HEADER: &str = "skiff-node-password";
/// Header carrying the node's IPs (comma-separated), put in the serving certificate.
pub const NODE_IP_HEADER: &str = "skiff-node-ip";
/// Type of the node password Secrets.
pub const PASSWORD_SECRET_TYPE: &str = "skiff.io/node-password";
/// Suffix of a node password Secret's name (`<node>.node-password.skiff`).
pub const PASSWORD_SECRET_SUFFIX: &str = ".node-password.skiff";
const PASSWORD_NAMESPACE: &str = "kube-system";
/// A password Secret whose Node never appeared is removed after this long.
const ORPHAN_GRACE: Duration = Duration::from_secs(600);

fn pem_response(body: String) -> ApiResult<Response> {
    Response::builder()
        .status(200)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Body::from(body))
        .map_err(|_| ApiError::internal("response build failed"))
}

fn secrets() -> ApiResult<&'static ResourceInfo> {
    registry::find("", "v1", "secrets").ok_or_else(|| ApiError::internal("secrets not registered"))
}

fn nodes() -> ApiResult<&'static ResourceInfo> {
    registry::find("", "v1", "nodes").ok_or_else(|| ApiError::internal("nodes not registered"))
}

fn system_opts() -> WriteOpts {
    WriteOpts {
        dry_run: false,
        field_manager: "skiff-supervisor".into(),
        field_validation: "Ignore".into(),
        apply: false,
    }
}

/// The name of a node's password Secret.
pub fn password_secret_name(node: &str) -> String {
    format!("{node}{PASSWORD_SECRET_SUFFIX}")
}

/// The message of a rejected node password: what happened and the two ways out.
pub fn password_rejected_message(node: &str) -> String {
    format!(
        "node password rejected: another host already joined as node {node:?}; pick a unique \
         --node-name for this host, or, to re-use the name, delete the node and its password \
         secret: `kubectl delete node {node}` and `kubectl -n {PASSWORD_NAMESPACE} delete secret \
         {}`",
        password_secret_name(node)
    )
}

/// Lower-cases and checks a node name from the header (a DNS subdomain, as Node names are).
pub fn normalize_node_name(raw: &str) -> Result<String, String> {
    let name = raw.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Err("node name not set".into());
    }
    let ok = name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok {
        Ok(name)
    } else {
        Err(format!(
            "invalid node name {raw:?}: use lower-case letters, digits, '-' and '.' (a DNS subdomain)"
        ))
    }
}

/// Parses the comma-separated node IP header.
pub fn parse_node_ips(raw: &str) -> Result<Vec<IpAddr>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse().map_err(|_| {
                format!("invalid Skiff-Node-IP {s:?}: send comma-separated IP addresses")
            })
        })
        .collect()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|h| h.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Serves a `/v1-skiff/…` request from an authenticated user.
pub async fn handle(
    st: &Arc<AppState>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
    user: &UserInfo,
) -> ApiResult<Response> {
    let allowed = user.groups.iter().any(|g| {
        g == skiff_pki::NODES_GROUP
            || g == "system:masters"
            || g == crate::bootstraptoken::BOOTSTRAPPERS_GROUP
    });
    if !allowed {
        return Err(ApiError::forbidden(format!(
            "forbidden: User {:?} may not use the agent routes; join with the node token",
            user.name
        )));
    }
    let route = path.strip_prefix(PREFIX).unwrap_or("");
    match (method, route) {
        (&Method::GET, "client-ca.crt") => pem_response(st.pki.client_ca_pem().to_string()),
        (&Method::GET, "server-ca.crt") => pem_response(st.pki.server_ca_pem().to_string()),
        (&Method::POST, "client-kubelet.crt") | (&Method::POST, "serving-kubelet.crt") => {
            let node = authorize_node(st, headers, user).await?;
            let signed = if route == "client-kubelet.crt" {
                st.pki.sign_kubelet_client_csr(&body, &node)
            } else {
                let ips = header(headers, NODE_IP_HEADER)
                    .map(parse_node_ips)
                    .transpose()
                    .map_err(ApiError::bad_request)?
                    .unwrap_or_default();
                st.pki.sign_kubelet_serving_csr(&body, &node, &ips)
            };
            let chain = signed.map_err(|e| ApiError::bad_request(e.to_string()))?;
            tracing::info!(%node, route, "signed node certificate");
            pem_response(chain)
        }
        (&Method::GET, "apiservers") => {
            // The servers sharing the datastore, for the agents' load balancer.
            let list = crate::apiservers::list(st).await?;
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&list).unwrap_or_default()))
                .map_err(|_| ApiError::internal("response build failed"))
        }
        (_, "client-kubelet.crt" | "serving-kubelet.crt" | "client-ca.crt" | "server-ca.crt") => {
            Err(ApiError::method_not_allowed())
        }
        _ => Err(ApiError::new(
            404,
            "NotFound",
            format!("no agent route {path}: the routes are client-ca.crt, server-ca.crt, client-kubelet.crt, serving-kubelet.crt"),
        )),
    }
}

/// The node a certificate request is for, after the header, identity and password checks.
async fn authorize_node(
    st: &Arc<AppState>,
    headers: &HeaderMap,
    user: &UserInfo,
) -> ApiResult<String> {
    let node = normalize_node_name(header(headers, NODE_NAME_HEADER).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let Some(password) = header(headers, NODE_PASSWORD_HEADER) else {
        return Err(ApiError::bad_request("node password not set"));
    };
    if let Some(auth_node) = crate::nodeauthz::node_identity(user) {
        if auth_node != node {
            return Err(ApiError::bad_request(
                "header node name does not match auth node name",
            ));
        }
    }
    check_node_password(st, &node, password).await?;
    Ok(node)
}

/// Checks `password` against the node's Secret, creating the Secret on first use.
async fn check_node_password(st: &Arc<AppState>, node: &str, password: &str) -> ApiResult<()> {
    let res = secrets()?;
    let name = password_secret_name(node);
    for _ in 0..2 {
        match rest::get_object(st, res, Some(PASSWORD_NAMESPACE), &name).await {
            Ok(secret) => {
                let stored = secret["data"]["hash"]
                    .as_str()
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default();
                if skiff_pki::verify_node_password(password, &stored) {
                    return Ok(());
                }
                tracing::warn!(%node, "node password rejected");
                return Err(ApiError::forbidden(password_rejected_message(node)));
            }
            Err(e) if e.code == 404 => {
                let hash = skiff_pki::hash_node_password(password);
                let mut secret = json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": name, "namespace": PASSWORD_NAMESPACE},
                    "type": PASSWORD_SECRET_TYPE,
                    "immutable": true,
                    "data": {"hash": base64::engine::general_purpose::STANDARD.encode(hash)},
                });
                if let Ok(n) = rest::get_object(st, nodes()?, None, node).await {
                    secret["metadata"]["ownerReferences"] = json!([owner_ref(&n)]);
                }
                match rest::create_object(st, res, Some(PASSWORD_NAMESPACE), secret, &system_opts())
                    .await
                {
                    Ok(_) => {
                        tracing::info!(%node, "stored the password of a new node");
                        return Ok(());
                    }
                    // Another request for the same node won the race: check against it.
                    Err(e) if e.code == 409 => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::internal(
        "the node password secret keeps changing: retry the join",
    ))
}

fn owner_ref(node: &Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "name": node["metadata"]["name"], "uid": node["metadata"]["uid"],
    })
}

/// What to do with one node password Secret.
#[derive(Debug, PartialEq, Eq)]
pub enum PasswordAction {
    Keep,
    /// Set the ownerReference to the Node (uid).
    Own(String),
    Delete,
}

/// Decides for a password Secret given the uid of the Node of the same name (if it exists)
/// and the Secret's age.
pub fn password_action(secret: &Value, node_uid: Option<&str>, age: Duration) -> PasswordAction {
    let owner = secret["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|refs| refs.iter().find(|r| r["kind"] == "Node"))
        .and_then(|r| r["uid"].as_str());
    match (node_uid, owner) {
        (Some(uid), Some(o)) if o == uid => PasswordAction::Keep,
        // The Node it belonged to was deleted and another took the name.
        (Some(_), Some(_)) => PasswordAction::Delete,
        (Some(uid), None) => PasswordAction::Own(uid.to_string()),
        (None, Some(_)) => PasswordAction::Delete,
        (None, None) if age >= ORPHAN_GRACE => PasswordAction::Delete,
        (None, None) => PasswordAction::Keep,
    }
}

/// Deletes a node's password Secret as soon as its Node is deleted (a store watch on nodes),
/// and every 30 s sets each Secret's ownerReference to its Node once that exists and deletes
/// Secrets whose Node is gone, or never appeared within 10 minutes.
pub async fn tend_node_passwords(st: Arc<AppState>) {
    tokio::spawn(follow_node_deletions(st.clone()));
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        if let Err(e) = tend_once(&st).await {
            tracing::warn!(error = %e, "node password secrets: cleanup failed, retrying");
        }
    }
}

async fn follow_node_deletions(st: Arc<AppState>) {
    let (Ok(sres), Ok(nres)) = (secrets(), nodes()) else {
        return;
    };
    let prefix = nres.key_prefix();
    loop {
        let rev = st.store.current_revision();
        let mut w = match st.store.watch(&prefix, rev) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "node password secrets: node watch failed, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        while let Some(ev) = w.recv().await {
            let Ok(ev) = ev else { break };
            if !matches!(ev.kind, skiff_store::EventType::Delete) {
                continue;
            }
            let Some(node) = ev.kv.key.strip_prefix(&prefix) else {
                continue;
            };
            let name = password_secret_name(node);
            match rest::delete_object(
                &st,
                sres,
                Some(PASSWORD_NAMESPACE),
                &name,
                &DeleteOpts::default(),
            )
            .await
            {
                Ok(_) => tracing::info!(%node, "removed the password secret of a deleted node"),
                Err(e) if e.code == 404 => {}
                Err(e) => {
                    tracing::warn!(%node, error = %e, "cannot remove the password secret of a deleted node; the periodic cleanup retries")
                }
            }
        }
    }
}

/// One pass of [`tend_node_passwords`].
pub async fn tend_once(st: &Arc<AppState>) -> ApiResult<()> {
    let (sres, nres) = (secrets()?, nodes()?);
    let prefix = format!("{}{PASSWORD_NAMESPACE}/", sres.key_prefix());
    let list = st.store.list(&prefix, Default::default()).await?;
    for kv in &list.kvs {
        let Ok(secret) = from_kv(kv) else { continue };
        if secret["type"] != PASSWORD_SECRET_TYPE {
            continue;
        }
        let name = secret["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let Some(node) = name.strip_suffix(PASSWORD_SECRET_SUFFIX) else {
            continue;
        };
        let node_obj = match rest::get_object(st, nres, None, node).await {
            Ok(n) => Some(n),
            Err(e) if e.code == 404 => None,
            Err(e) => return Err(e),
        };
        let node_uid = node_obj
            .as_ref()
            .and_then(|n| n["metadata"]["uid"].as_str());
        let age = secret["metadata"]["creationTimestamp"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .and_then(|t| {
                (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                    .to_std()
                    .ok()
            })
            .unwrap_or_default();
        match password_action(&secret, node_uid, age) {
            PasswordAction::Keep => {}
            PasswordAction::Own(_) => {
                let Some(n) = &node_obj else { continue };
                let oref = owner_ref(n);
                let r = rest::update_object(
                    st,
                    sres,
                    Some(PASSWORD_NAMESPACE),
                    &name,
                    Mutation::With(Box::new(move |cur: &Value| {
                        let mut c = cur.clone();
                        c["metadata"]["ownerReferences"] = json!([oref.clone()]);
                        Ok(c)
                    })),
                    &system_opts(),
                    None,
                )
                .await;
                match r {
                    Ok(_) => tracing::debug!(%node, "node password secret now owned by its node"),
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            PasswordAction::Delete => {
                match rest::delete_object(
                    st,
                    sres,
                    Some(PASSWORD_NAMESPACE),
                    &name,
                    &DeleteOpts::default(),
                )
                .await
                {
                    Ok(_) => tracing::info!(%node, "removed the password secret of a deleted node"),
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_and_ips_from_headers() {
        assert_eq!(normalize_node_name(" Node-1 ").unwrap(), "node-1");
        assert_eq!(normalize_node_name("").unwrap_err(), "node name not set");
        assert!(normalize_node_name("bad_name").is_err());
        assert!(normalize_node_name("-x").is_err());
        assert!(normalize_node_name("a.b-c.d").is_ok());
        assert_eq!(
            parse_node_ips("192.0.2.1, fd00::1,").unwrap(),
            vec![
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "fd00::1".parse().unwrap()
            ]
        );
        assert!(parse_node_ips("192.0.2.1,nope").is_err());
    }

    #[test]
    fn rejected_password_message_names_both_fixes() {
        let m = password_rejected_message("n1");
        assert!(m.contains("--node-name"), "{m}");
        assert!(m.contains("kubectl delete node n1"), "{m}");
        assert!(m.contains("n1.node-password.skiff"), "{m}");
    }

    #[test]
    fn password_secret_lifecycle_decisions() {
        let owned = |uid: &str| json!({"metadata": {"ownerReferences": [{"kind": "Node", "name": "n1", "uid": uid}]}});
        let free = json!({"metadata": {}});
        let young = Duration::from_secs(5);
        let old = Duration::from_secs(3600);
        assert_eq!(
            password_action(&free, Some("u1"), young),
            PasswordAction::Own("u1".into())
        );
        assert_eq!(
            password_action(&owned("u1"), Some("u1"), old),
            PasswordAction::Keep
        );
        assert_eq!(
            password_action(&owned("u1"), Some("u2"), young),
            PasswordAction::Delete
        );
        assert_eq!(
            password_action(&owned("u1"), None, young),
            PasswordAction::Delete
        );
        assert_eq!(password_action(&free, None, young), PasswordAction::Keep);
        assert_eq!(password_action(&free, None, old), PasswordAction::Delete);
    }
}
