//! Authentication (client certificates, service-account JWTs, the node token) and RBAC
//! authorization against an in-memory copy of the RBAC objects kept fresh by a store watch.

use crate::error::{ApiError, ApiResult};
use crate::objects::from_kv;
use crate::state::AppState;
use serde_json::Value;
use skiff_api::rbac::{self, Attributes, Decision, PolicySnapshot, UserInfo};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Store prefix of every RBAC object.
pub const RBAC_PREFIX: &str = "/registry/rbac.authorization.k8s.io/";

/// The RBAC objects, by store key.
#[derive(Default)]
pub struct PolicyCache {
    pub objects: BTreeMap<String, Value>,
    pub revision: i64,
}

impl PolicyCache {
    fn of(&self, plural: &str, ns: Option<&str>) -> Vec<Value> {
        let prefix = match ns {
            Some(ns) => format!("{RBAC_PREFIX}{plural}/{ns}/"),
            None => format!("{RBAC_PREFIX}{plural}/"),
        };
        self.objects
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Loads the RBAC objects and follows changes for as long as the server runs.
pub async fn run_policy_watch(st: Arc<AppState>) {
    loop {
        let list = match st.store.list(RBAC_PREFIX, Default::default()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "rbac cache: list failed, retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        {
            let mut p = st.policy.write();
            p.objects.clear();
            for kv in &list.kvs {
                if let Ok(v) = from_kv(kv) {
                    p.objects.insert(kv.key.clone(), v);
                }
            }
            p.revision = list.revision;
        }
        let mut w = match st.store.watch(RBAC_PREFIX, list.revision) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "rbac cache: watch failed, relisting");
                continue;
            }
        };
        while let Some(ev) = w.recv().await {
            let Ok(ev) = ev else { break };
            let mut p = st.policy.write();
            match ev.kind {
                skiff_store::EventType::Put => {
                    if let Ok(v) = from_kv(&ev.kv) {
                        p.objects.insert(ev.kv.key.clone(), v);
                    }
                }
                skiff_store::EventType::Delete => {
                    p.objects.remove(&ev.kv.key);
                }
            }
            p.revision = ev.kv.mod_revision;
        }
    }
}

/// RBAC decision for a request.
pub fn authorize(st: &AppState, user: &UserInfo, attrs: &Attributes) -> ApiResult<()> {
    if user.groups.iter().any(|g| g == "system:masters") {
        return Ok(());
    }
    let p = st.policy.read();
    let ns = if attrs.namespace.is_empty() {
        None
    } else {
        Some(attrs.namespace.as_str())
    };
    let cluster_roles = p.of("clusterroles", None);
    let cluster_role_bindings = p.of("clusterrolebindings", None);
    let (roles, role_bindings) = match ns {
        Some(ns) => (p.of("roles", Some(ns)), p.of("rolebindings", Some(ns))),
        None => (vec![], vec![]),
    };
    drop(p);
    let snap = PolicySnapshot {
        cluster_roles: &cluster_roles,
        cluster_role_bindings: &cluster_role_bindings,
        roles: &roles,
        role_bindings: &role_bindings,
    };
    match rbac::authorize(user, attrs, &snap) {
        Decision::Allow => Ok(()),
        Decision::Deny(_) => {
            let mut e = ApiError::forbidden(rbac::forbidden_message(user, attrs));
            e.details = Some(serde_json::json!({
                "name": attrs.name,
                "group": attrs.api_group,
                "kind": attrs.resource,
            }));
            Err(e)
        }
    }
}

/// Who sent a request, from the TLS client certificate or the Authorization header.
pub fn authenticate(
    st: &AppState,
    peer_cert: Option<&[u8]>,
    authorization: Option<&str>,
) -> Option<UserInfo> {
    if let Some(der) = peer_cert {
        if let Ok((cn, orgs)) = skiff_pki::client_cert_identity(der) {
            let mut groups = orgs;
            groups.push("system:authenticated".into());
            return Some(UserInfo {
                name: cn,
                uid: String::new(),
                groups,
            });
        }
    }
    let auth = authorization?.trim();
    if let Some(token) = auth.strip_prefix("Bearer ").map(str::trim) {
        return authenticate_token(st, token);
    }
    if let Some(basic) = auth.strip_prefix("Basic ").map(str::trim) {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .ok()?;
        let s = String::from_utf8(raw).ok()?;
        let (_user, pass) = s.split_once(':')?;
        if constant_time_eq(pass.as_bytes(), st.token_password.as_bytes()) {
            return Some(node_token_user());
        }
    }
    None
}

fn node_token_user() -> UserInfo {
    UserInfo {
        name: "system:skiff-node".into(),
        uid: String::new(),
        groups: vec!["system:nodes".into(), "system:authenticated".into()],
    }
}

fn authenticate_token(st: &AppState, token: &str) -> Option<UserInfo> {
    if constant_time_eq(token.as_bytes(), st.token.as_bytes())
        || constant_time_eq(token.as_bytes(), st.token_password.as_bytes())
    {
        return Some(node_token_user());
    }
    let claims = st.pki.verify_service_account_token(token).ok()?;
    let sub = claims.get("sub")?.as_str()?.to_string();
    let rest = sub.strip_prefix("system:serviceaccount:")?;
    let (ns, _sa) = rest.split_once(':')?;
    let uid = claims
        .pointer("/kubernetes.io/serviceaccount/uid")
        .and_then(|u| u.as_str())
        .unwrap_or("")
        .to_string();
    Some(UserInfo {
        name: sub.clone(),
        uid,
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".into(),
        ],
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Requests anyone may make without credentials.
pub fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/healthz"
            | "/livez"
            | "/readyz"
            | "/version"
            | "/cacerts"
            | "/ping"
            | "/v1-skiff/cacerts"
            | "/v1-skiff/ping"
    ) || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}
