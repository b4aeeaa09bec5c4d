//! `certificates.k8s.io/v1` CertificateSigningRequests in the API server: on create the
//! requester's identity is written into `spec` (username, uid, groups, extra) and the request
//! checked (a parsable PEM `CERTIFICATE REQUEST`, a signer, usages, `expirationSeconds` ≥ 600);
//! the `approval` subresource (`kubectl certificate approve|deny`) takes only the conditions and
//! needs the `approve` verb on the signer (`signers` in `certificates.k8s.io`, the signer's
//! name or `<domain>/*`), as upstream. Signing is the controllers' `csrsigning`.

use crate::authz;
use crate::error::{ApiError, ApiResult};
use crate::objects::now_rfc3339;
use crate::rest::{self, Mutation, WriteOpts};
use crate::state::AppState;
use base64::Engine as _;
use serde_json::{json, Value};
use skiff_api::rbac::{Attributes, UserInfo};
use skiff_api::registry::ResourceInfo;
use std::sync::Arc;

/// Whether `res` is the CertificateSigningRequest resource.
pub fn is_csr(res: &ResourceInfo) -> bool {
    res.group == "certificates.k8s.io" && res.kind == "CertificateSigningRequest"
}

fn cause(field: &str, reason: &str, message: String) -> Value {
    json!({"reason": reason, "message": message, "field": field})
}

/// The field errors of a new request (upstream's texts), empty when valid.
pub fn validate_new(obj: &Value) -> Vec<Value> {
    let mut causes = Vec::new();
    let spec = &obj["spec"];
    match spec["request"].as_str() {
        None | Some("") => causes.push(cause(
            "spec.request",
            "FieldValueRequired",
            "Required value".into(),
        )),
        Some(b64) => {
            let parsed = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| e.to_string())
                .and_then(|pem| {
                    // Upstream reads exactly one PEM block of this type.
                    if !pem
                        .trim_ascii_start()
                        .starts_with(b"-----BEGIN CERTIFICATE REQUEST-----")
                    {
                        return Err("PEM block type must be CERTIFICATE REQUEST".to_string());
                    }
                    skiff_pki::requested_subject(&pem)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = parsed {
                causes.push(cause(
                    "spec.request",
                    "FieldValueInvalid",
                    format!("Invalid value: \"<request>\": {e}"),
                ));
            }
        }
    }
    match spec["signerName"].as_str() {
        None | Some("") => causes.push(cause(
            "spec.signerName",
            "FieldValueRequired",
            "Required value".into(),
        )),
        Some(s) if !s.contains('/') => causes.push(cause(
            "spec.signerName",
            "FieldValueInvalid",
            format!("Invalid value: {s:?}: must be a fully qualified domain and path of the form 'example.com/signer-name'"),
        )),
        _ => {}
    }
    if spec["usages"].as_array().is_none_or(|u| u.is_empty()) {
        causes.push(cause(
            "spec.usages",
            "FieldValueRequired",
            "Required value".into(),
        ));
    }
    if let Some(s) = spec["expirationSeconds"].as_i64() {
        if s < 600 {
            causes.push(cause(
                "spec.expirationSeconds",
                "FieldValueInvalid",
                format!("Invalid value: {s}: may not specify a duration less than 600 seconds (10 minutes)"),
            ));
        }
    }
    causes
}

fn invalid(obj: &Value, causes: Vec<Value>) -> ApiError {
    let n = crate::objects::name(obj).to_string();
    let details: Vec<String> = causes
        .iter()
        .map(|c| {
            format!(
                "{}: {}",
                c["field"].as_str().unwrap_or(""),
                c["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    let msg = if details.len() == 1 {
        details[0].clone()
    } else {
        format!("[{}]", details.join(", "))
    };
    ApiError::invalid(
        "certificates.k8s.io",
        "CertificateSigningRequest",
        &n,
        format!("CertificateSigningRequest.certificates.k8s.io {n:?} is invalid: {msg}"),
        Value::Array(causes),
    )
}

/// Create: the requester's identity into `spec`, status cleared, the request checked.
pub fn on_create(obj: &mut Value, user: &UserInfo) -> ApiResult<()> {
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    let spec = &mut obj["spec"];
    spec["username"] = json!(user.name);
    if user.uid.is_empty() {
        if let Some(m) = spec.as_object_mut() {
            m.remove("uid");
        }
    } else {
        spec["uid"] = json!(user.uid);
    }
    spec["groups"] = json!(user.groups);
    if let Some(m) = spec.as_object_mut() {
        m.remove("extra");
    }
    if let Some(m) = obj.as_object_mut() {
        m.remove("status");
    }
    let causes = validate_new(obj);
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid(obj, causes))
    }
}

/// The conditions an approval may carry: Approved, Denied or Failed (not both Approved and
/// Denied), each with a status.
fn check_conditions(obj: &Value, conditions: &[Value]) -> ApiResult<()> {
    let mut causes = Vec::new();
    let mut seen = Vec::new();
    for (i, c) in conditions.iter().enumerate() {
        let t = c["type"].as_str().unwrap_or("");
        if t.is_empty() {
            causes.push(cause(
                &format!("status.conditions[{i}].type"),
                "FieldValueRequired",
                "Required value".into(),
            ));
        }
        if seen.contains(&t) {
            causes.push(cause(
                &format!("status.conditions[{i}].type"),
                "FieldValueDuplicate",
                format!("Duplicate value: {t:?}"),
            ));
        }
        seen.push(t);
        match c["status"].as_str() {
            Some("True" | "False" | "Unknown") => {}
            _ => causes.push(cause(
                &format!("status.conditions[{i}].status"),
                "FieldValueNotSupported",
                "Unsupported value: \"\": supported values: \"False\", \"True\", \"Unknown\""
                    .into(),
            )),
        }
    }
    if seen.contains(&"Approved") && seen.contains(&"Denied") {
        causes.push(cause(
            "status.conditions",
            "FieldValueInvalid",
            "Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive"
                .into(),
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid(obj, causes))
    }
}

/// May `user` approve requests for `signer`? Either the signer's name or `<domain>/*`.
fn may_approve(st: &AppState, user: &UserInfo, signer: &str, csr_name: &str) -> ApiResult<()> {
    let attrs = |name: &str| Attributes {
        verb: "approve".into(),
        resource_request: true,
        api_group: "certificates.k8s.io".into(),
        resource: "signers".into(),
        subresource: String::new(),
        name: name.into(),
        namespace: String::new(),
        path: String::new(),
    };
    if authz::authorize(st, user, &attrs(signer)).is_ok() {
        return Ok(());
    }
    let domain = signer.split('/').next().unwrap_or("");
    if authz::authorize(st, user, &attrs(&format!("{domain}/*"))).is_ok() {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "certificatesigningrequests.certificates.k8s.io {csr_name:?} is forbidden: user not permitted to approve requests with signerName {signer:?}"
    )))
}

/// PUT `certificatesigningrequests/<name>/approval`: the body's conditions replace the
/// stored ones (with times filled in); spec and the certificate stay.
pub async fn approve(
    st: &Arc<AppState>,
    res: &'static ResourceInfo,
    name: &str,
    body: Value,
    user: &UserInfo,
    opts: &WriteOpts,
) -> ApiResult<Value> {
    let current = rest::get_object(st, res, None, name).await?;
    let signer = current["spec"]["signerName"].as_str().unwrap_or("");
    may_approve(st, user, signer, name)?;
    let now = now_rfc3339();
    let mut conditions: Vec<Value> = body["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    check_conditions(&current, &conditions)?;
    for c in &mut conditions {
        for k in ["lastUpdateTime", "lastTransitionTime"] {
            if c[k].as_str().is_none_or(str::is_empty) {
                c[k] = json!(now);
            }
        }
    }
    let rv = body["metadata"]["resourceVersion"]
        .as_str()
        .map(String::from);
    let set = move |old: &Value| -> ApiResult<Value> {
        if let Some(rv) = &rv {
            let cur = old["metadata"]["resourceVersion"].as_str().unwrap_or("");
            if !cur.is_empty() && cur != rv {
                return Err(ApiError::modified(
                    "certificates.k8s.io",
                    "certificatesigningrequests",
                    crate::objects::name(old),
                ));
            }
        }
        let mut n = old.clone();
        if !n["status"].is_object() {
            n["status"] = json!({});
        }
        n["status"]["conditions"] = Value::Array(conditions.clone());
        Ok(n)
    };
    rest::update_object(
        st,
        res,
        None,
        name,
        Mutation::With(Box::new(set)),
        opts,
        Some("approval"),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_b64() -> String {
        let key = skiff_pki::generate_key_pem().unwrap();
        let pem = skiff_pki::csr_pem(&key, "alice").unwrap();
        base64::engine::general_purpose::STANDARD.encode(pem)
    }

    #[test]
    fn create_takes_the_identity_and_checks_the_request() {
        let user = UserInfo {
            name: "alice-admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        };
        let mut obj = json!({"metadata": {"name": "a"}, "spec": {"request": request_b64(),
            "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"],
            "username": "someone-else"}, "status": {"certificate": "Zm9v"}});
        on_create(&mut obj, &user).unwrap();
        assert_eq!(obj["spec"]["username"], "alice-admin");
        assert_eq!(obj["spec"]["groups"][0], "system:masters");
        assert!(obj.get("status").is_none());

        let mut bad = json!({"metadata": {"name": "b"}, "spec": {"request": "bm90IGEgcmVxdWVzdA==",
            "signerName": "kubernetes.io/kube-apiserver-client", "expirationSeconds": 60}});
        let e = on_create(&mut bad, &user).unwrap_err();
        assert_eq!(e.code, 422);
        let causes = validate_new(&bad);
        let fields: Vec<&str> = causes
            .iter()
            .map(|c| c["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            ["spec.request", "spec.usages", "spec.expirationSeconds"]
        );
    }

    #[test]
    fn approval_conditions_are_checked() {
        let obj = json!({"metadata": {"name": "a"}});
        assert!(check_conditions(&obj, &[json!({"type": "Approved", "status": "True"})]).is_ok());
        let e = check_conditions(
            &obj,
            &[
                json!({"type": "Approved", "status": "True"}),
                json!({"type": "Denied", "status": "True"}),
            ],
        )
        .unwrap_err();
        assert!(e.message.contains("mutually exclusive"), "{}", e.message);
    }
}
