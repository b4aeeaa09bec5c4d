//! Admission webhooks: a watch-fed cache of the Mutating/ValidatingWebhookConfigurations and
//! the calls made from the write path (`rest/create.rs`, `rest/update.rs`). Mutating webhooks
//! run one after another in configuration-name order (with one `IfNeeded` reinvocation pass),
//! each JSON patch applied and the object re-defaulted; validating webhooks run concurrently.
//! Matching and answers are the pure `skiff_api::webhook`; the HTTPS calls are `client.rs`.
//! `matchConditions` (CEL) are evaluated after the rules and selectors: a false one skips the
//! webhook; one that cannot be evaluated counts as a failed call (failure policy).

mod client;

use crate::error::{ApiError, ApiResult};
use crate::follow::Change;
use crate::objects::from_kv;
use crate::state::AppState;
use parking_lot::RwLock;
use serde_json::{json, Value};
use skiff_api::registry::ResourceInfo;
use skiff_api::webhook::{self as pure, Attributes, Verdict};
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

const MUTATING_PREFIX: &str =
    "/registry/admissionregistration.k8s.io/mutatingwebhookconfigurations/";
const VALIDATING_PREFIX: &str =
    "/registry/admissionregistration.k8s.io/validatingwebhookconfigurations/";
const PREFIX: &str = "/registry/admissionregistration.k8s.io/";

/// One webhook of a configuration, ready to call.
pub(crate) struct Hook {
    /// The webhook's `name` (unique within its configuration).
    pub name: String,
    /// The webhook as stored (rules, selectors, clientConfig, policies).
    pub spec: Value,
    /// TLS settings trusting its `caBundle` (or the cluster CA when it has none).
    pub tls: Arc<rustls::ClientConfig>,
}

impl Hook {
    fn str(&self, key: &str) -> &str {
        self.spec.get(key).and_then(Value::as_str).unwrap_or("")
    }

    fn timeout(&self) -> Duration {
        let s = self
            .spec
            .get("timeoutSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(10);
        Duration::from_secs(s.clamp(1, 30))
    }

    fn ignores_failure(&self) -> bool {
        self.str("failurePolicy") == "Ignore"
    }
}

/// The configured webhooks, mutating and validating, each in configuration-name order.
#[derive(Default)]
pub struct Snapshot {
    pub(crate) mutating: Vec<Arc<Hook>>,
    pub(crate) validating: Vec<Arc<Hook>>,
}

/// The watch-fed cache of webhook configurations (`AppState.webhooks`).
#[derive(Default)]
pub struct Webhooks {
    objects: RwLock<std::collections::BTreeMap<String, Value>>,
    current: RwLock<Arc<Snapshot>>,
    pool: client::Pool,
}

impl Webhooks {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().clone()
    }

    fn rebuild(&self, cluster_ca: &str) {
        let objects = self.objects.read();
        let mut snap = Snapshot::default();
        // Keys sort by configuration name within each kind (BTreeMap order).
        for (key, cfg) in objects.iter() {
            let mutating = key.starts_with(MUTATING_PREFIX);
            for h in cfg
                .get("webhooks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let ca = h
                    .pointer("/clientConfig/caBundle")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let tls = match client::tls_config(ca, cluster_ca) {
                    Ok(t) => t,
                    Err(e) => {
                        let name = h.get("name").and_then(Value::as_str).unwrap_or("");
                        tracing::warn!(webhook = name, error = %e, "webhook caBundle unusable; calls will fail");
                        client::empty_tls()
                    }
                };
                let hook = Arc::new(Hook {
                    name: h
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    spec: h.clone(),
                    tls,
                });
                if mutating {
                    snap.mutating.push(hook);
                } else {
                    snap.validating.push(hook);
                }
            }
        }
        *self.current.write() = Arc::new(snap);
    }
}

impl Webhooks {
    /// Applies a change of the admissionregistration objects (only the webhook configurations
    /// are kept) and rebuilds the snapshot.
    fn apply(&self, change: Change<'_>, cluster_ca: &str) {
        {
            let mut o = self.objects.write();
            match change {
                Change::Reset { objects, .. } => {
                    *o = objects
                        .into_iter()
                        .filter(|(k, _)| is_config_key(k))
                        .map(|(k, v)| (k.to_string(), v))
                        .collect();
                }
                Change::Put { key, object, .. } if is_config_key(key) => {
                    o.insert(key.to_string(), object);
                }
                Change::Delete { key, .. } if is_config_key(key) => {
                    o.remove(key);
                }
                _ => return,
            }
        }
        self.rebuild(cluster_ca);
    }
}

/// Loads the webhook configurations and follows changes for as long as the server runs.
pub async fn run_webhook_watch(st: Arc<AppState>) {
    crate::follow::follow(&st.store, "webhook cache", PREFIX, |change| {
        st.webhooks.apply(change, st.pki.server_ca_pem())
    })
    .await
}

fn is_config_key(key: &str) -> bool {
    key.starts_with(MUTATING_PREFIX) || key.starts_with(VALIDATING_PREFIX)
}

/// Re-reads the configurations at once (after a configuration write, so the next request
/// sees it without waiting for the watch).
pub async fn sync(st: &AppState) {
    crate::follow::relist(&st.store, PREFIX, |change| {
        st.webhooks.apply(change, st.pki.server_ca_pem())
    })
    .await
}

/// Whether a resource's writes go through webhooks: not the webhook configurations
/// themselves (as upstream, so a broken webhook cannot lock its own fix out).
pub fn is_config(res: &ResourceInfo) -> bool {
    res.group == "admissionregistration.k8s.io"
}

tokio::task_local! {
    /// Warnings the webhooks of the current request returned, answered as Warning headers.
    static WARNINGS: RefCell<Vec<String>>;
}

/// Runs a request collecting webhook warnings; returns its output and the warnings.
pub async fn collect_warnings<F: std::future::Future>(f: F) -> (F::Output, Vec<String>) {
    let cell = RefCell::new(Vec::new());
    WARNINGS
        .scope(cell, async move {
            let out = f.await;
            let w = WARNINGS.with(|w| std::mem::take(&mut *w.borrow_mut()));
            (out, w)
        })
        .await
}

fn warn(ws: Vec<String>) {
    if ws.is_empty() {
        return;
    }
    let _ = WARNINGS.try_with(|w| w.borrow_mut().extend(ws));
}

/// The admission attributes of a write.
pub fn attributes(
    res: &ResourceInfo,
    operation: &str,
    namespace: Option<&str>,
    name: &str,
    subresource: Option<&str>,
    dry_run: bool,
) -> Attributes {
    Attributes {
        operation: operation.to_string(),
        group: res.group.to_string(),
        version: res.version.to_string(),
        kind: res.kind.to_string(),
        resource: res.plural.to_string(),
        subresource: subresource.unwrap_or("").to_string(),
        namespaced: res.namespaced,
        namespace: namespace.unwrap_or("").to_string(),
        name: name.to_string(),
        dry_run,
    }
}

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

fn options(a: &Attributes, field_manager: &str) -> Value {
    let kind = match a.operation.as_str() {
        "CREATE" => "CreateOptions",
        "UPDATE" => "UpdateOptions",
        _ => "DeleteOptions",
    };
    let mut o = json!({"kind": kind, "apiVersion": "meta.k8s.io/v1"});
    if !field_manager.is_empty() && kind != "DeleteOptions" {
        o["fieldManager"] = json!(field_manager);
    }
    if a.dry_run {
        o["dryRun"] = json!(["All"]);
    }
    o
}

/// The labels the namespace selector is matched against: a Namespace's own, or those of the
/// namespace a namespaced object lives in (read once per request, only when needed).
async fn namespace_labels(st: &AppState, a: &Attributes, obj: Option<&Value>) -> Option<Value> {
    if a.group.is_empty() && a.resource == "namespaces" {
        return obj.and_then(|o| o.pointer("/metadata/labels")).cloned();
    }
    if !a.namespaced || a.namespace.is_empty() {
        return None;
    }
    let nsres = skiff_api::registry::find("", "v1", "namespaces")?;
    let key = crate::request::object_key(nsres, None, &a.namespace);
    let kv = st.store.get(&key).await.ok()??;
    from_kv(&kv).ok()?.pointer("/metadata/labels").cloned()
}

/// The hooks of `hooks` that apply to this request (rules, then selectors, then match
/// conditions; `Err`: a condition failed to evaluate under `failurePolicy: Fail`).
async fn matching(
    st: &AppState,
    hooks: &[Arc<Hook>],
    a: &Attributes,
    obj: Option<&Value>,
    old: Option<&Value>,
) -> ApiResult<Vec<Arc<Hook>>> {
    let by_rules: Vec<&Arc<Hook>> = hooks
        .iter()
        .filter(|h| pure::rules_match(&h.spec, a))
        .collect();
    if by_rules.is_empty() {
        return Ok(Vec::new());
    }
    let needs_ns = by_rules.iter().any(|h| {
        h.spec
            .get("namespaceSelector")
            .is_some_and(|s| s.as_object().is_some_and(|m| !m.is_empty()))
    });
    let ns_labels = if needs_ns {
        namespace_labels(st, a, obj.or(old)).await
    } else {
        None
    };
    let selected: Vec<Arc<Hook>> = by_rules
        .into_iter()
        .filter(|h| pure::namespace_matches(&h.spec, a, ns_labels.as_ref()))
        .filter(|h| pure::object_matches(&h.spec, obj, old))
        .cloned()
        .collect();
    if !selected
        .iter()
        .any(|h| h.spec.get("matchConditions").is_some())
    {
        return Ok(selected);
    }
    let review = pure::review("", a, &user_info(), obj, old, None);
    let mut out = Vec::with_capacity(selected.len());
    for h in selected {
        match pure::conditions_match(&h.spec, &review["request"], obj, old) {
            Ok(true) => out.push(h),
            Ok(false) => {}
            Err(e) => {
                let msg = format!("failed calling webhook \"{}\": {e}", h.name);
                if h.ignores_failure() {
                    tracing::warn!(webhook = %h.name, error = %msg, "webhook skipped; failurePolicy Ignore");
                } else {
                    return Err(ApiError::internal(format!(
                        "Internal error occurred: {msg}"
                    )));
                }
            }
        }
    }
    Ok(out)
}

/// A dry-run request may only reach webhooks without side effects (upstream's refusal).
fn check_dry_run(h: &Hook, a: &Attributes) -> ApiResult<()> {
    if a.dry_run && !matches!(h.str("sideEffects"), "None" | "NoneOnDryRun") {
        return Err(ApiError::bad_request(format!(
            "admission webhook \"{}\" does not support dry run",
            h.name
        )));
    }
    Ok(())
}

/// What one call came to: an answer, or an error already shaped by the failure policy
/// (`Ok(None)` when a failure was ignored).
async fn call(
    st: &AppState,
    h: &Hook,
    a: &Attributes,
    obj: Option<&Value>,
    old: Option<&Value>,
    field_manager: &str,
) -> ApiResult<Option<pure::Answer>> {
    let uid = uuid::Uuid::new_v4().to_string();
    let review = pure::review(
        &uid,
        a,
        &user_info(),
        obj,
        old,
        Some(&options(a, field_manager)),
    );
    let result = Box::pin(client::post(st, &st.webhooks.pool, h, &review))
        .await
        .and_then(|body| pure::read_answer(&h.name, &uid, &body));
    match result {
        Ok(ans) => Ok(Some(ans)),
        Err(e) => {
            let msg = format!(
                "failed calling webhook \"{}\": failed to call webhook: {e}",
                h.name
            );
            if h.ignores_failure() {
                tracing::warn!(webhook = %h.name, error = %msg, "webhook failed; failurePolicy Ignore");
                Ok(None)
            } else {
                Err(ApiError::internal(format!(
                    "Internal error occurred: {msg}"
                )))
            }
        }
    }
}

fn denied(code: u16, reason: &str, message: String) -> ApiError {
    // ApiError's reason is static: keep the webhook's when it is one of the known reasons.
    const KNOWN: &[&str] = &[
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Invalid",
        "BadRequest",
        "MethodNotAllowed",
        "NotAcceptable",
        "RequestEntityTooLarge",
        "UnsupportedMediaType",
        "TooManyRequests",
        "InternalError",
        "ServiceUnavailable",
        "Timeout",
        "Gone",
        "Expired",
    ];
    let reason = KNOWN.iter().find(|k| **k == reason).copied().unwrap_or("");
    ApiError::new(code, reason, message)
}

/// Mutating webhooks, in order, over `obj`; each patch is applied and the object
/// re-defaulted. Webhooks with `reinvocationPolicy: IfNeeded` are called once more when a
/// later webhook changed the object after them.
pub async fn mutate(
    st: &AppState,
    res: &ResourceInfo,
    a: &Attributes,
    obj: &mut Value,
    old: Option<&Value>,
    field_manager: &str,
) -> ApiResult<()> {
    let snap = st.webhooks.snapshot();
    if snap.mutating.is_empty() || is_config(res) {
        return Ok(());
    }
    // Boxed: the write path's futures stay small when no webhook is configured.
    Box::pin(mutate_all(st, res, a, obj, old, field_manager, snap)).await
}

async fn mutate_all(
    st: &AppState,
    res: &ResourceInfo,
    a: &Attributes,
    obj: &mut Value,
    old: Option<&Value>,
    field_manager: &str,
    snap: Arc<Snapshot>,
) -> ApiResult<()> {
    let hooks = matching(st, &snap.mutating, a, Some(obj), old).await?;
    let mut seen_after: Vec<(Arc<Hook>, Value)> = Vec::new();
    for h in &hooks {
        check_dry_run(h, a)?;
        mutate_one(st, res, h, a, obj, old, field_manager).await?;
        if h.str("reinvocationPolicy") == "IfNeeded" {
            seen_after.push((h.clone(), obj.clone()));
        }
    }
    for (h, after) in seen_after {
        if &after != obj {
            mutate_one(st, res, &h, a, obj, old, field_manager).await?;
        }
    }
    Ok(())
}

async fn mutate_one(
    st: &AppState,
    res: &ResourceInfo,
    h: &Hook,
    a: &Attributes,
    obj: &mut Value,
    old: Option<&Value>,
    field_manager: &str,
) -> ApiResult<()> {
    let Some(ans) = tokio::time::timeout(
        h.timeout() + Duration::from_millis(500),
        call(st, h, a, Some(obj), old, field_manager),
    )
    .await
    .unwrap_or_else(|_| timeout_error(h))?
    else {
        return Ok(());
    };
    warn(ans.warnings);
    match ans.verdict {
        Verdict::Denied {
            code,
            reason,
            message,
        } => Err(denied(code, &reason, message)),
        Verdict::Allowed { patch: None } => Ok(()),
        Verdict::Allowed { patch: Some(p) } => match pure::apply_patch(obj, &p) {
            Ok(mut patched) => {
                skiff_api::defaults::apply_defaults(res, &mut patched);
                *obj = patched;
                Ok(())
            }
            Err(e) => {
                let msg = format!(
                    "failed calling webhook \"{}\": failed to apply the webhook's patch: {e}",
                    h.name
                );
                if h.ignores_failure() {
                    tracing::warn!(webhook = %h.name, error = %msg, "webhook failed; failurePolicy Ignore");
                    Ok(())
                } else {
                    Err(ApiError::internal(format!(
                        "Internal error occurred: {msg}"
                    )))
                }
            }
        },
    }
}

/// The outer deadline (the client has its own at `timeoutSeconds`) as a call failure.
fn timeout_error(h: &Hook) -> ApiResult<Option<pure::Answer>> {
    let msg = format!(
        "failed calling webhook \"{}\": failed to call webhook: context deadline exceeded",
        h.name
    );
    if h.ignores_failure() {
        Ok(None)
    } else {
        Err(ApiError::internal(format!(
            "Internal error occurred: {msg}"
        )))
    }
}

/// Validating webhooks, concurrently; the first denial or failure (in webhook order) wins.
pub async fn validate(
    st: &AppState,
    res: &ResourceInfo,
    a: &Attributes,
    obj: Option<&Value>,
    old: Option<&Value>,
    field_manager: &str,
) -> ApiResult<()> {
    let snap = st.webhooks.snapshot();
    if snap.validating.is_empty() || is_config(res) {
        return Ok(());
    }
    Box::pin(validate_all(st, a, obj, old, field_manager, snap)).await
}

async fn validate_all(
    st: &AppState,
    a: &Attributes,
    obj: Option<&Value>,
    old: Option<&Value>,
    field_manager: &str,
    snap: Arc<Snapshot>,
) -> ApiResult<()> {
    let hooks = matching(st, &snap.validating, a, obj, old).await?;
    for h in &hooks {
        check_dry_run(h, a)?;
    }
    let calls = hooks.iter().map(|h| async move {
        tokio::time::timeout(
            h.timeout() + Duration::from_millis(500),
            call(st, h, a, obj, old, field_manager),
        )
        .await
        .unwrap_or_else(|_| timeout_error(h))
    });
    let results = futures::future::join_all(calls).await;
    let mut first_err = None;
    for r in results {
        match r {
            Err(e) => {
                first_err.get_or_insert(e);
            }
            Ok(None) => {}
            Ok(Some(ans)) => {
                warn(ans.warnings);
                if let Verdict::Denied {
                    code,
                    reason,
                    message,
                } = ans.verdict
                {
                    first_err.get_or_insert(denied(code, &reason, message));
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
