//! ValidatingAdmissionPolicies in the API server: a watch-fed cache of the policies and their
//! bindings (refreshed at once after a policy or binding write), and the admission step the
//! write path calls after the built-in validation (`rest/create.rs`, `rest/update.rs`). For
//! each binding (in name order) whose policy matches the request (the policy's
//! `matchConstraints`, then the binding's `matchResources`), the policy is evaluated with
//! `object`, `oldObject`, `request`, `params` (the binding's `paramRef`: one object by name,
//! or every object a selector picks, of the policy's `paramKind`) and `namespaceObject`; the
//! binding's `validationActions` decide: `Deny` refuses with upstream's Status (`<resource>
//! "<name>" is forbidden: ValidatingAdmissionPolicy '<p>' with binding '<b>' denied request:
//! <message>`, reason and code from the validation, 422 Invalid by default), `Warn` answers
//! with a Warning header, `Audit` is logged (skiff keeps no audit log). An expression that
//! fails to evaluate follows the policy's `failurePolicy`. The pure parts are
//! `skiff_api::cel::policy`.

use crate::error::{ApiError, ApiResult};
use crate::follow::Change;
use crate::objects::from_kv;
use crate::state::AppState;
use crate::webhook::attributes;
use axum::response::Response;
use parking_lot::RwLock;
use serde_json::{json, Value};
use skiff_api::cel::policy::{self, Decision, Inputs};
use skiff_api::registry::ResourceInfo;
use skiff_api::webhook::Attributes;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The store prefix shared by policies and bindings.
const PREFIX: &str = "/registry/admissionregistration.k8s.io/validatingadmissionpolic";
const POLICIES: &str = "/registry/admissionregistration.k8s.io/validatingadmissionpolicies/";
const BINDINGS: &str = "/registry/admissionregistration.k8s.io/validatingadmissionpolicybindings/";

/// A binding with the policy it names.
struct Bound {
    binding_name: String,
    policy_name: String,
    binding: Value,
    policy: Value,
}

/// The watch-fed cache of policies and bindings (`AppState.vap`).
#[derive(Default)]
pub struct Policies {
    objects: RwLock<BTreeMap<String, Value>>,
    bound: RwLock<Arc<Vec<Bound>>>,
}

impl Policies {
    fn rebuild(&self) {
        let objects = self.objects.read();
        let mut policies = BTreeMap::new();
        let mut bindings = Vec::new();
        for (key, v) in objects.iter() {
            if let Some(name) = key.strip_prefix(POLICIES) {
                policies.insert(name.to_string(), v.clone());
            } else if let Some(name) = key.strip_prefix(BINDINGS) {
                bindings.push((name.to_string(), v.clone()));
            }
        }
        let bound = bindings
            .into_iter()
            .filter_map(|(binding_name, binding)| {
                let policy_name = binding
                    .pointer("/spec/policyName")
                    .and_then(Value::as_str)?
                    .to_string();
                let policy = policies.get(&policy_name)?.clone();
                Some(Bound {
                    binding_name,
                    policy_name,
                    binding,
                    policy,
                })
            })
            .collect();
        *self.bound.write() = Arc::new(bound);
    }

    /// Applies a change of the followed objects and rebuilds the bound policies.
    fn apply(&self, change: Change<'_>) {
        {
            let mut o = self.objects.write();
            match change {
                Change::Reset { objects, .. } => {
                    *o = objects
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect();
                }
                Change::Put { key, object, .. } => {
                    o.insert(key.to_string(), object);
                }
                Change::Delete { key, .. } => {
                    o.remove(key);
                }
            }
        }
        self.rebuild();
    }
}

/// True for ValidatingAdmissionPolicies and their bindings.
pub fn is_policy(res: &ResourceInfo) -> bool {
    res.group == "admissionregistration.k8s.io"
        && matches!(
            res.kind,
            "ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding"
        )
}

/// Loads the policies and bindings and follows changes for as long as the server runs.
pub async fn run_vap_watch(st: Arc<AppState>) {
    crate::follow::follow(&st.store, "admission policy cache", PREFIX, |change| {
        st.vap.apply(change)
    })
    .await
}

/// Re-reads the policies and bindings at once (after a write of one, so the next request is
/// already checked by it).
pub async fn sync(st: &AppState) {
    crate::follow::relist(&st.store, PREFIX, |change| st.vap.apply(change)).await
}

tokio::task_local! {
    /// Warnings of `Warn` bindings for the current request.
    static WARNINGS: RefCell<Vec<String>>;
}

/// Serves a request collecting the warnings of `Warn` bindings, answered as Warning headers.
pub async fn with_warnings<F>(f: F) -> ApiResult<Response>
where
    F: std::future::Future<Output = ApiResult<Response>>,
{
    let (mut r, warnings) = WARNINGS
        .scope(RefCell::new(Vec::new()), async move {
            let r = f.await;
            let w = WARNINGS.with(|w| std::mem::take(&mut *w.borrow_mut()));
            (r, w)
        })
        .await;
    if let Ok(resp) = r.as_mut() {
        for w in warnings {
            let v = format!("299 - {}", skiff_api::text::go_quote(&w));
            if let Ok(h) = axum::http::HeaderValue::from_str(&v) {
                resp.headers_mut().append("warning", h);
            }
        }
    }
    r
}

fn warn(w: String) {
    let _ = WARNINGS.try_with(|ws| ws.borrow_mut().push(w));
}

async fn get_json(st: &AppState, key: &str) -> Option<Value> {
    let kv = st.store.get(key).await.ok()??;
    from_kv(&kv).ok()
}

/// The Namespace object of the request (or the Namespace being written).
async fn namespace_object(st: &AppState, a: &Attributes, obj: Option<&Value>) -> Option<Value> {
    if a.group.is_empty() && a.resource == "namespaces" {
        return obj.cloned();
    }
    if !a.namespaced || a.namespace.is_empty() {
        return None;
    }
    let nsres = skiff_api::registry::find("", "v1", "namespaces")?;
    get_json(st, &crate::request::object_key(nsres, None, &a.namespace)).await
}

/// The resource serving a `paramKind` (`apiVersion` + `kind`), built-in or custom.
fn param_resource(st: &AppState, pk: &Value) -> Option<&'static ResourceInfo> {
    let api = pk.get("apiVersion").and_then(Value::as_str)?;
    let kind = pk.get("kind").and_then(Value::as_str)?;
    let (group, version) = api.split_once('/').unwrap_or(("", api));
    skiff_api::registry::RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
        .or_else(|| {
            st.crds
                .resources()
                .into_iter()
                .find(|r| r.group == group && r.version == version && r.kind == kind)
        })
}

/// The parameter objects of a binding: `Ok(None)` when the policy takes none, `Ok(Some([]))`
/// when none was found, `Err` with upstream's text when the binding cannot be configured.
async fn params(st: &AppState, b: &Bound, a: &Attributes) -> Result<Option<Vec<Value>>, String> {
    let Some(pk) = b.policy.pointer("/spec/paramKind") else {
        return Ok(None);
    };
    let Some(pr) = b.binding.pointer("/spec/paramRef") else {
        return Err(
            "failed to configure binding: paramRef is required when paramKind is set".into(),
        );
    };
    let Some(res) = param_resource(st, pk) else {
        let api = pk.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = pk.get("kind").and_then(Value::as_str).unwrap_or("");
        return Err(format!(
            "failed to configure policy: failed to find resource referenced by paramKind: '{api}, Kind={kind}'"
        ));
    };
    let ns = match pr.get("namespace").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => Some(n.to_string()),
        _ if res.namespaced => Some(a.namespace.clone()).filter(|n| !n.is_empty()),
        _ => None,
    };
    if res.namespaced && ns.is_none() {
        return Err("failed to configure binding: cannot use namespaced paramRef in policy binding that matches cluster-scoped resources".into());
    }
    if let Some(name) = pr.get("name").and_then(Value::as_str) {
        let key = crate::request::object_key(res, ns.as_deref(), name);
        return Ok(Some(get_json(st, &key).await.into_iter().collect()));
    }
    let prefix = match &ns {
        Some(n) => format!("{}{n}/", res.key_prefix()),
        None => res.key_prefix(),
    };
    let list = st
        .store
        .list(&prefix, Default::default())
        .await
        .map_err(|e| format!("failed to list params: {e}"))?;
    let sel = pr.get("selector");
    Ok(Some(
        list.kvs
            .iter()
            .filter_map(|kv| from_kv(kv).ok())
            .filter(|o| skiff_api::webhook::selector_matches(sel, o.pointer("/metadata/labels")))
            .collect(),
    ))
}

/// The user of the request, as `request.userInfo` shows it.
fn user_info() -> Value {
    match crate::nodeauthz::current_user() {
        Some(u) => {
            let mut v = json!({"username": u.name, "groups": u.groups});
            if !u.uid.is_empty() {
                v["uid"] = json!(u.uid);
            }
            v
        }
        None => json!({}),
    }
}

/// The admission step for ValidatingAdmissionPolicies (CREATE and UPDATE; `old` set on
/// update). A no-op when no binding exists, and for the admissionregistration objects
/// themselves (as upstream, so a bad policy cannot lock its own fix out).
#[allow(clippy::too_many_arguments)]
pub async fn validate(
    st: &AppState,
    res: &ResourceInfo,
    namespace: Option<&str>,
    obj: &Value,
    old: Option<&Value>,
    subresource: Option<&str>,
    dry_run: bool,
) -> ApiResult<()> {
    let bound = st.vap.bound.read().clone();
    if bound.is_empty() || res.group == "admissionregistration.k8s.io" {
        return Ok(());
    }
    let operation = if old.is_some() { "UPDATE" } else { "CREATE" };
    let name = crate::objects::name(obj);
    let a = attributes(res, operation, namespace, name, subresource, dry_run);
    let mut ns_obj: Option<Option<Value>> = None;
    for b in bound.iter() {
        let pmatch = b.policy.pointer("/spec/matchConstraints");
        let bmatch = b.binding.pointer("/spec/matchResources");
        let needs_ns = [pmatch, bmatch].iter().any(|m| {
            m.and_then(|m| m.get("namespaceSelector"))
                .and_then(Value::as_object)
                .is_some_and(|s| !s.is_empty())
        });
        if needs_ns && ns_obj.is_none() {
            ns_obj = Some(namespace_object(st, &a, Some(obj)).await);
        }
        let labels = ns_obj
            .as_ref()
            .and_then(|n| n.as_ref())
            .and_then(|n| n.pointer("/metadata/labels"));
        if pmatch.is_none()
            || !policy::resources_match(pmatch, &a, labels, Some(obj), old)
            || !policy::resources_match(bmatch, &a, labels, Some(obj), old)
        {
            continue;
        }
        if ns_obj.is_none() {
            ns_obj = Some(namespace_object(st, &a, Some(obj)).await);
        }
        check_binding(
            st,
            b,
            &a,
            obj,
            old,
            ns_obj.as_ref().and_then(|n| n.as_ref()),
        )
        .await?;
    }
    Ok(())
}

async fn check_binding(
    st: &AppState,
    b: &Bound,
    a: &Attributes,
    obj: &Value,
    old: Option<&Value>,
    ns_obj: Option<&Value>,
) -> ApiResult<()> {
    let spec = b.policy.get("spec").cloned().unwrap_or(Value::Null);
    let ignore = spec.get("failurePolicy").and_then(Value::as_str) == Some("Ignore");
    let mut request =
        skiff_api::webhook::review("", a, &user_info(), None, None, None)["request"].take();
    if let Some(r) = request.as_object_mut() {
        r.remove("uid");
        r.remove("object");
        r.remove("oldObject");
    }
    let mut decisions = Vec::new();
    match params(st, b, a).await {
        Err(e) => decisions.push(Decision::Error(e)),
        Ok(None) => decisions.extend(policy::evaluate(
            &spec,
            &Inputs::new(Some(obj), old, &request, None, ns_obj),
        )),
        Ok(Some(ps)) if ps.is_empty() => {
            let action = b
                .binding
                .pointer("/spec/paramRef/parameterNotFoundAction")
                .and_then(Value::as_str)
                .unwrap_or("Deny");
            if action != "Allow" {
                decisions.push(Decision::Error(
                    "failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction".into(),
                ));
            }
        }
        Ok(Some(ps)) => {
            for p in &ps {
                decisions.extend(policy::evaluate(
                    &spec,
                    &Inputs::new(Some(obj), old, &request, Some(p), ns_obj),
                ));
            }
        }
    }
    let actions: Vec<&str> = b
        .binding
        .pointer("/spec/validationActions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for d in decisions {
        let (message, reason) = match d {
            Decision::Fail { message, reason } => (message, reason),
            Decision::Error(_) if ignore => continue,
            Decision::Error(e) => (e, "Invalid".to_string()),
        };
        if actions.contains(&"Warn") {
            warn(format!(
                "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {message}",
                b.policy_name, b.binding_name
            ));
        }
        if actions.contains(&"Audit") {
            tracing::info!(policy = %b.policy_name, binding = %b.binding_name, %message, "admission policy audit: validation failed");
        }
        if actions.contains(&"Deny") {
            return Err(denied(a, b, &message, &reason));
        }
    }
    Ok(())
}

/// Upstream's denial: a Forbidden-shaped message with the validation's reason and code.
fn denied(a: &Attributes, b: &Bound, message: &str, reason: &str) -> ApiError {
    let msg = format!(
        "ValidatingAdmissionPolicy '{}' with binding '{}' denied request: {message}",
        b.policy_name, b.binding_name
    );
    let resource = if a.group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.group)
    };
    let reason: &'static str = match reason {
        "Unauthorized" => "Unauthorized",
        "Forbidden" => "Forbidden",
        "RequestEntityTooLarge" => "RequestEntityTooLarge",
        _ => "Invalid",
    };
    ApiError::new(
        policy::reason_code(reason),
        reason,
        format!("{resource} \"{}\" is forbidden: {msg}", a.name),
    )
    .with_details(json!({
        "name": a.name,
        "group": a.group,
        "kind": a.resource,
        "causes": [{"message": msg}],
    }))
}
