//! CREATE: generateName, uid, creationTimestamp, generation, namespace existence, admission,
//! Service IP/NodePort allocation (released unless the write lands), then one store create.

use super::{check_type, has_generation, ns_of, WriteOpts};
use crate::admission;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::objects::{self, from_kv, meta_mut, name, now_rfc3339, set_rv, to_stored};
use crate::request;
use crate::state::AppState;
use serde_json::{json, Value};
use skiff_api::registry::{self, ResourceInfo};
use skiff_store::StoreError;
use std::borrow::Cow;
use std::sync::Arc;

/// Clears server-owned status on create, as upstream strategies do.
fn reset_status_on_create(res: &ResourceInfo, obj: &mut Value) {
    let has_status = res.subresource("status").is_some();
    if !has_status || matches!(res.kind, "Node" | "PersistentVolume" | "Namespace") {
        return;
    }
    // A custom resource with a status subresource starts without status (as upstream).
    if crate::crd::is_custom(res) {
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
        return;
    }
    if obj.is_object() {
        obj["status"] = json!({});
    }
}

/// The namespace must exist and not be terminating.
async fn check_namespace(st: &AppState, ns: &str) -> ApiResult<()> {
    if st.namespaces.known_active(ns).is_some() {
        return Ok(());
    }
    let nsres = registry::find("", "v1", "namespaces")
        .ok_or_else(|| ApiError::internal("namespaces not registered"))?;
    let stored = st.store.get(&request::object_key(nsres, None, ns)).await?;
    let stored = stored.map(|kv| from_kv(&kv)).transpose()?;
    st.namespaces.note(ns, stored.as_ref());
    match stored {
        None => Err(ApiError::not_found("", "namespaces", ns)),
        Some(o) => {
            if o.pointer("/metadata/deletionTimestamp").is_some() {
                return Err(ApiError::forbidden(format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ))
                .with_details(json!({"name": ns, "kind": "namespaces"})));
            }
            Ok(())
        }
    }
}

/// A created object and, when its stored bytes are its answer, that answer's JSON.
pub struct Created {
    pub object: Value,
    /// `serde_json::to_vec(&object)`, made from the stored bytes (`None`: encode `object`).
    pub json: Option<Vec<u8>>,
}

/// CREATE: admission, validation, allocation, then one store transaction.
pub async fn create_object(
    st: &Arc<AppState>,
    res: &'static ResourceInfo,
    url_ns: Option<&str>,
    obj: Value,
    opts: &WriteOpts,
) -> ApiResult<Value> {
    create_object_encoded(st, res, url_ns, obj, opts)
        .await
        .map(|c| c.object)
}

/// [`create_object`], also answering the created object's JSON when it is the stored bytes
/// with the resourceVersion added (an object stored as served), so it is encoded once.
pub async fn create_object_encoded(
    st: &Arc<AppState>,
    res: &'static ResourceInfo,
    url_ns: Option<&str>,
    mut obj: Value,
    opts: &WriteOpts,
) -> ApiResult<Created> {
    let api = res.api_version();
    check_type(res, &mut obj, res.kind, &api)?;
    let url_ns = ns_of(res, url_ns)?;
    {
        let meta = meta_mut(&mut obj);
        if let Some(ns) = url_ns {
            match meta.get("namespace").and_then(|n| n.as_str()) {
                Some(b) if !b.is_empty() && b != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                _ => {
                    meta.insert("namespace".into(), Value::String(ns.to_string()));
                }
            }
        } else {
            meta.remove("namespace");
        }
        let has_name = meta
            .get("name")
            .and_then(|n| n.as_str())
            .map(|n| !n.is_empty())
            .unwrap_or(false);
        if !has_name {
            if let Some(g) = meta.get("generateName").and_then(|g| g.as_str()) {
                if !g.is_empty() {
                    let n = format!("{g}{}", objects::random_suffix(5));
                    meta.insert("name".into(), Value::String(n));
                }
            }
        }
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
            "generation",
            "selfLink",
        ] {
            meta.remove(k);
        }
        meta.insert(
            "uid".into(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        meta.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
    }
    if has_generation(res) {
        meta_mut(&mut obj).insert("generation".into(), json!(1));
    }
    if let Some(ns) = url_ns {
        check_namespace(st, ns).await?;
    }
    reset_status_on_create(res, &mut obj);
    admission::strict_fields(res, &mut obj, opts)?;
    admission::mutate_create(st, res, &mut obj).await?;
    skiff_api::defaults::apply_defaults(res, &mut obj);
    // Admission order (upstream's): built-in mutations, mutating webhooks, schema and
    // built-in validation, validating webhooks.
    let hook_attrs =
        crate::webhook::attributes(res, "CREATE", url_ns, name(&obj), None, opts.dry_run);
    crate::webhook::mutate(st, res, &hook_attrs, &mut obj, None, &opts.field_manager).await?;
    crate::crd::admit(st, res, &mut obj, None, opts)?;
    admission::validate(res, &obj, None)?;
    crate::vap::validate(st, res, url_ns, &obj, None, None, opts.dry_run).await?;
    crate::webhook::validate(st, res, &hook_attrs, Some(&obj), None, &opts.field_manager).await?;
    if !opts.apply {
        let now = now_rfc3339();
        skiff_api::patch::track_update(
            res.group,
            res.kind,
            &api,
            None,
            &mut obj,
            &opts.field_manager,
            None,
            &now,
        );
    }
    let n = name(&obj).to_string();
    let key = request::object_key(res, url_ns, &n);
    // Allocation (service IPs/ports) happens just before the write and is released unless the
    // write lands; the allocators lock themselves, so writes of other objects never wait on it.
    let reserved = super::reserve(st, res, None, &mut obj).await?;
    if opts.dry_run {
        return Ok(Created {
            object: obj,
            json: None,
        });
    }
    // The answer is the stored bytes plus the resourceVersion `set_rv` appends to metadata,
    // when the object is stored as served and carries no resourceVersion of its own.
    let (bytes, as_served) = {
        let stored = convert::to_storage(res, &obj);
        let as_served = matches!(stored, Cow::Borrowed(_))
            && obj
                .get("metadata")
                .and_then(Value::as_object)
                .is_some_and(|m| !m.contains_key("resourceVersion"));
        (to_stored(&stored), as_served)
    };
    let answer = as_served.then(|| bytes.clone());
    match st.store.create(&key, bytes).await {
        Ok(rev) => {
            reserved.keep();
            set_rv(&mut obj, rev);
            let json = answer.and_then(|b| objects::with_rv_last(&b, rev));
            Ok(Created { object: obj, json })
        }
        Err(StoreError::AlreadyExists) => Err(ApiError::already_exists(res.group, res.plural, &n)),
        Err(e) => Err(e.into()),
    }
}
