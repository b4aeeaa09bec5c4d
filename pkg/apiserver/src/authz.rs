//! Authentication (client certificates, service-account JWTs, the node token) and RBAC
//! authorization against an in-memory copy of the RBAC objects kept fresh by a store watch.

use crate::error::{ApiError, ApiResult};
use crate::follow::Change;
use crate::state::AppState;
use serde_json::Value;
use skiff_api::rbac::{self, Attributes, Decision, PolicySnapshot, UserInfo};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Store prefix of every RBAC object.
pub const RBAC_PREFIX: &str = "/registry/rbac.authorization.k8s.io/";

/// The RBAC objects, by store key.
#[derive(Default)]
pub struct PolicyCache {
    pub objects: BTreeMap<String, Value>,
    pub revision: i64,
    /// The objects grouped the way the authorizer reads them, rebuilt on every RBAC change
    /// (rare) so that a request only clones a few `Arc`s (cloning the role JSON per request
    /// was a fifth of the server's CPU under load).
    views: Views,
}

#[derive(Default)]
struct Views {
    cluster_roles: Arc<Vec<Value>>,
    cluster_role_bindings: Arc<Vec<Value>>,
    /// namespace → Roles / RoleBindings
    roles: HashMap<String, Arc<Vec<Value>>>,
    role_bindings: HashMap<String, Arc<Vec<Value>>>,
}

impl PolicyCache {
    /// Regroups `objects` after a change.
    fn rebuild(&mut self) {
        let mut v = Views::default();
        let mut cr = Vec::new();
        let mut crb = Vec::new();
        let mut roles: HashMap<String, Vec<Value>> = HashMap::new();
        let mut rbs: HashMap<String, Vec<Value>> = HashMap::new();
        for (key, obj) in &self.objects {
            let Some(rest) = key.strip_prefix(RBAC_PREFIX) else {
                continue;
            };
            let mut parts = rest.splitn(3, '/');
            let (Some(plural), Some(second)) = (parts.next(), parts.next()) else {
                continue;
            };
            let namespaced = parts.next().is_some();
            match (plural, namespaced) {
                ("clusterroles", false) => cr.push(obj.clone()),
                ("clusterrolebindings", false) => crb.push(obj.clone()),
                ("roles", true) => roles
                    .entry(second.to_string())
                    .or_default()
                    .push(obj.clone()),
                ("rolebindings", true) => {
                    rbs.entry(second.to_string()).or_default().push(obj.clone())
                }
                _ => {}
            }
        }
        v.cluster_roles = Arc::new(cr);
        v.cluster_role_bindings = Arc::new(crb);
        v.roles = roles.into_iter().map(|(k, l)| (k, Arc::new(l))).collect();
        v.role_bindings = rbs.into_iter().map(|(k, l)| (k, Arc::new(l))).collect();
        self.views = v;
    }
}

/// Loads the RBAC objects and follows changes for as long as the server runs.
pub async fn run_policy_watch(st: Arc<AppState>) {
    crate::follow::follow(&st.store, "rbac cache", RBAC_PREFIX, |change| {
        let mut p = st.policy.write();
        match change {
            Change::Reset { objects, revision } => {
                p.objects = objects
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                p.revision = revision;
            }
            Change::Put {
                key,
                object,
                revision,
            } => {
                p.objects.insert(key.to_string(), object);
                p.revision = revision;
            }
            Change::Delete { key, revision } => {
                p.objects.remove(key);
                p.revision = revision;
            }
        }
        p.rebuild();
    })
    .await
}

/// RBAC decision for a request.
pub fn authorize(st: &AppState, user: &UserInfo, attrs: &Attributes) -> ApiResult<()> {
    authorize_with(st, user, attrs, "", None)
}

/// RBAC decision after an earlier authorizer had no opinion: its `reason` ends the 403
/// message, and the ClusterRoleBinding named `skip_binding` is ignored (the Node authorizer
/// replaces the `system:node` binding for kubelet identities).
pub fn authorize_with(
    st: &AppState,
    user: &UserInfo,
    attrs: &Attributes,
    reason: &str,
    skip_binding: Option<&str>,
) -> ApiResult<()> {
    if user.groups.iter().any(|g| g == "system:masters") {
        return Ok(());
    }
    let p = st.policy.read();
    let empty = Arc::new(Vec::new());
    let cluster_roles = p.views.cluster_roles.clone();
    let mut cluster_role_bindings = p.views.cluster_role_bindings.clone();
    if let Some(skip) = skip_binding {
        cluster_role_bindings = Arc::new(
            cluster_role_bindings
                .iter()
                .filter(|b| b["metadata"]["name"] != skip)
                .cloned()
                .collect(),
        );
    }
    let (roles, role_bindings) = if attrs.namespace.is_empty() {
        (empty.clone(), empty)
    } else {
        let ns = attrs.namespace.as_str();
        (
            p.views
                .roles
                .get(ns)
                .cloned()
                .unwrap_or_else(|| empty.clone()),
            p.views.role_bindings.get(ns).cloned().unwrap_or(empty),
        )
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
            let mut e =
                ApiError::forbidden(rbac::forbidden_message_with_reason(user, attrs, reason));
            e.details = Some(serde_json::json!({
                "name": attrs.name,
                "group": attrs.api_group,
                "kind": attrs.resource,
            }));
            Err(e)
        }
    }
}

/// The status of a SelfSubjectRulesReview: the rules RBAC grants `user` cluster-wide and in
/// `namespace` (`kubectl auth can-i --list`).
pub fn rules_review(st: &AppState, user: &UserInfo, namespace: &str) -> Value {
    let p = st.policy.read();
    let empty = Arc::new(Vec::new());
    let views = &p.views;
    let (cluster_roles, cluster_role_bindings) = (
        views.cluster_roles.clone(),
        views.cluster_role_bindings.clone(),
    );
    let roles = views
        .roles
        .get(namespace)
        .cloned()
        .unwrap_or_else(|| empty.clone());
    let role_bindings = views.role_bindings.get(namespace).cloned().unwrap_or(empty);
    drop(p);
    let snap = PolicySnapshot {
        cluster_roles: &cluster_roles,
        cluster_role_bindings: &cluster_role_bindings,
        roles: &roles,
        role_bindings: &role_bindings,
    };
    rbac::rules_review_status(user, namespace, &snap)
}

/// Who sent a request, from the TLS client certificate or the Authorization header.
pub fn authenticate(
    st: &AppState,
    peer_identity: Option<&(String, Vec<String>)>,
    authorization: Option<&str>,
) -> Option<UserInfo> {
    if let Some((cn, orgs)) = peer_identity {
        let mut groups = Vec::with_capacity(orgs.len() + 1);
        groups.extend(orgs.iter().cloned());
        groups.push("system:authenticated".into());
        return Some(UserInfo {
            name: cn.clone(),
            uid: String::new(),
            groups,
        });
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

#[cfg(test)]
mod views_tests {
    use super::*;

    #[test]
    fn rebuild_groups_cluster_and_namespaced_objects() {
        let mut p = PolicyCache::default();
        for key in [
            "clusterroles/admin",
            "clusterrolebindings/admins",
            "roles/dev/reader",
            "roles/ops/reader",
            "rolebindings/dev/read",
        ] {
            p.objects.insert(
                format!("{RBAC_PREFIX}{key}"),
                serde_json::json!({ "metadata": { "name": key } }),
            );
        }
        p.rebuild();
        assert_eq!(p.views.cluster_roles.len(), 1);
        assert_eq!(p.views.cluster_role_bindings.len(), 1);
        assert_eq!(p.views.roles["dev"].len(), 1);
        assert_eq!(p.views.roles["ops"].len(), 1);
        assert_eq!(
            p.views.role_bindings["dev"][0]["metadata"]["name"],
            "rolebindings/dev/read"
        );
        assert!(!p.views.role_bindings.contains_key("ops"));
        p.objects.remove(&format!("{RBAC_PREFIX}roles/ops/reader"));
        p.rebuild();
        assert!(!p.views.roles.contains_key("ops"));
    }
}
