//! The create-only review kinds (SelfSubjectAccessReview for `kubectl auth can-i`,
//! SelfSubjectReview for `kubectl auth whoami`, TokenReview, SubjectAccessReview) and
//! service-account TokenRequests (`kubectl create token`).

use crate::authz;
use crate::error::{ApiError, ApiResult};
use crate::objects::{meta_str, name};
use crate::state::AppState;
use serde_json::{json, Value};
use skiff_api::rbac::{Attributes, UserInfo};
use skiff_api::registry::ResourceInfo;

fn attrs_of(spec: &Value) -> Attributes {
    if let Some(r) = spec.get("resourceAttributes") {
        let s = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        Attributes {
            verb: s("verb"),
            resource_request: true,
            api_group: s("group"),
            resource: s("resource"),
            subresource: s("subresource"),
            name: s("name"),
            namespace: s("namespace"),
            path: String::new(),
        }
    } else {
        let r = spec
            .get("nonResourceAttributes")
            .cloned()
            .unwrap_or(json!({}));
        Attributes {
            verb: r
                .get("verb")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
            resource_request: false,
            api_group: String::new(),
            resource: String::new(),
            subresource: String::new(),
            name: String::new(),
            namespace: String::new(),
            path: r
                .get("path")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
        }
    }
}

fn user_json(u: &UserInfo) -> Value {
    json!({"username": u.name, "uid": u.uid, "groups": u.groups})
}

/// Answers a review kind; `None` for ordinary kinds.
pub fn handle(
    st: &AppState,
    res: &ResourceInfo,
    body: &Value,
    user: &UserInfo,
) -> ApiResult<Option<Value>> {
    let review = matches!(
        (res.group, res.kind),
        (
            "authorization.k8s.io",
            "SelfSubjectAccessReview" | "SubjectAccessReview" | "SelfSubjectRulesReview"
        ) | ("authentication.k8s.io", "SelfSubjectReview" | "TokenReview")
    );
    if !review {
        return Ok(None);
    }
    let mut out = body.clone();
    out["apiVersion"] = json!(res.api_version());
    out["kind"] = json!(res.kind);
    match (res.group, res.kind) {
        ("authorization.k8s.io", "SelfSubjectAccessReview") => {
            let spec = body.get("spec").cloned().unwrap_or(json!({}));
            let attrs = attrs_of(&spec);
            let allowed = authz::authorize(st, user, &attrs).is_ok();
            out["status"] = json!({"allowed": allowed});
            Ok(Some(out))
        }
        ("authorization.k8s.io", "SubjectAccessReview") => {
            let spec = body.get("spec").cloned().unwrap_or(json!({}));
            let subject = UserInfo {
                name: spec
                    .get("user")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string(),
                uid: spec
                    .get("uid")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string(),
                groups: spec
                    .get("groups")
                    .and_then(|g| g.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            let allowed = authz::authorize(st, &subject, &attrs_of(&spec)).is_ok();
            out["status"] = json!({"allowed": allowed});
            Ok(Some(out))
        }
        ("authorization.k8s.io", "SelfSubjectRulesReview") => {
            let ns = body
                .pointer("/spec/namespace")
                .and_then(|n| n.as_str())
                .unwrap_or("");
            out["status"] = authz::rules_review(st, user, ns);
            Ok(Some(out))
        }
        ("authentication.k8s.io", "SelfSubjectReview") => {
            out["status"] = json!({"userInfo": user_json(user)});
            Ok(Some(out))
        }
        ("authentication.k8s.io", "TokenReview") => {
            let token = body
                .pointer("/spec/token")
                .and_then(|t| t.as_str())
                .unwrap_or("");
            let header = format!("Bearer {token}");
            out["status"] = match authz::authenticate(st, None, Some(&header)) {
                Some(u) => {
                    json!({"authenticated": true, "user": user_json(&u), "audiences": ["https://kubernetes.default.svc.cluster.local"]})
                }
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            };
            Ok(Some(out))
        }
        _ => Ok(None),
    }
}

/// Issues a service-account token (TokenRequest).
pub fn token_request(st: &AppState, sa: &Value, req: Value) -> ApiResult<Value> {
    let ns = meta_str(sa, "namespace").unwrap_or("default");
    let sa_name = name(sa);
    let uid = meta_str(sa, "uid").unwrap_or("");
    let secs = req
        .pointer("/spec/expirationSeconds")
        .and_then(|e| e.as_i64())
        .unwrap_or(3600);
    if secs < 600 {
        return Err(ApiError::bad_request(
            "spec.expirationSeconds may not specify a duration less than 10 minutes",
        ));
    }
    let auds = req
        .pointer("/spec/audiences")
        .and_then(|a| a.as_array())
        .filter(|a| !a.is_empty())
        .cloned()
        .unwrap_or_else(|| vec![json!("https://kubernetes.default.svc.cluster.local")]);
    let now = chrono::Utc::now();
    let exp = now + chrono::Duration::seconds(secs);
    let claims = json!({
        "aud": auds,
        "exp": exp.timestamp(),
        "iat": now.timestamp(),
        "nbf": now.timestamp(),
        "iss": "https://kubernetes.default.svc.cluster.local",
        "sub": format!("system:serviceaccount:{ns}:{sa_name}"),
        "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": sa_name, "uid": uid}},
    });
    let token = st
        .pki
        .sign_service_account_token(&claims)
        .map_err(|e| ApiError::internal(format!("signing the token failed: {e}")))?;
    let mut out = req;
    out["apiVersion"] = json!("authentication.k8s.io/v1");
    out["kind"] = json!("TokenRequest");
    out["metadata"] = json!({"name": sa_name, "namespace": ns, "creationTimestamp": null});
    out["spec"]["audiences"] = json!(auds);
    out["spec"]["expirationSeconds"] = json!(secs);
    out["status"] = json!({
        "token": token,
        "expirationTimestamp": exp.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    });
    Ok(out)
}
