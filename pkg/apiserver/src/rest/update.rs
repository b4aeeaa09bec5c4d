//! UPDATE with optimistic concurrency on the store revision: status subresource isolation,
//! generation bumps on spec changes, finalizer-only edits while deleting, deletion completing
//! when the last finalizer goes, no-op writes skipped, retries when the store moved.

use super::{carry_status, check_type, finalizers, has_generation, ns_of, WriteOpts};
use crate::admission;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::objects::{self, from_kv, meta_mut, meta_str, name, now_rfc3339, set_rv, to_stored};
use crate::request;
use crate::state::AppState;
use serde_json::{json, Value};
use skiff_api::registry::ResourceInfo;
use skiff_store::StoreError;
use std::sync::Arc;

/// A mutation of the current object.
pub type MutateFn<'a> = Box<dyn FnMut(&Value) -> ApiResult<Value> + Send + 'a>;

/// What an update does to the current object.
pub enum Mutation<'a> {
    /// PUT of a whole object (main resource): keeps status and server-owned metadata.
    Replace(Value),
    /// PUT/PATCH of the status subresource: only status is taken.
    Status(Value),
    /// A function of the current object (patches, scale, binding, finalizer edits).
    With(MutateFn<'a>),
}

/// UPDATE with optimistic concurrency. Retries when the store moved underneath a patch.
#[allow(clippy::too_many_arguments)]
pub async fn update_object(
    st: &Arc<AppState>,
    res: &'static ResourceInfo,
    ns: Option<&str>,
    obj_name: &str,
    mut mutation: Mutation<'_>,
    opts: &WriteOpts,
    subresource: Option<&str>,
) -> ApiResult<Value> {
    let ns = ns_of(res, ns)?;
    let key = request::object_key(res, ns, obj_name);
    let api = res.api_version();
    for _attempt in 0..16 {
        let Some(kv) = st.store.get(&key).await? else {
            return Err(ApiError::not_found(res.group, res.plural, obj_name));
        };
        let old = convert::from_storage(res, from_kv(&kv)?);
        let mut new = match &mut mutation {
            Mutation::Replace(body) => {
                let mut b = body.clone();
                check_type(res, &mut b, res.kind, &api)?;
                check_identity(res, &b, ns, obj_name)?;
                check_resource_version(res, &b, kv.mod_revision, obj_name)?;
                admission::strict_fields(res, &mut b, opts)?;
                if res.subresource("status").is_some() {
                    carry_status(&old, &mut b);
                }
                b
            }
            Mutation::Status(body) => {
                let mut b = body.clone();
                check_type(res, &mut b, res.kind, &api)?;
                check_identity(res, &b, ns, obj_name)?;
                check_resource_version(res, &b, kv.mod_revision, obj_name)?;
                let mut n = old.clone();
                carry_status(&b, &mut n);
                n
            }
            Mutation::With(f) => {
                let mut n = f(&old)?;
                check_type(res, &mut n, res.kind, &api)?;
                check_identity(res, &n, ns, obj_name)?;
                n
            }
        };
        preserve_server_meta(&old, &mut new);
        if has_generation(res) && objects::spec_changed(&old, &new) {
            let g = old
                .pointer("/metadata/generation")
                .and_then(|g| g.as_i64())
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(g + 1));
        }
        // Once deletion started, finalizers can only be removed.
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            let old_f = finalizers(&old);
            for f in finalizers(&new) {
                if !old_f.contains(&f) {
                    return Err(ApiError::invalid(
                        res.group,
                        res.kind,
                        obj_name,
                        format!("{} \"{obj_name}\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{\"{f}\"}}", res.group_kind()),
                        json!([{"reason": "FieldValueForbidden", "message": "Forbidden: no new finalizers can be added if the object is being deleted", "field": "metadata.finalizers"}]),
                    ));
                }
            }
        }
        admission::mutate_update(st, res, &old, &mut new).await?;
        skiff_api::defaults::apply_defaults(res, &mut new);
        // Admission order as on create; a binding is the scheduler's, not a user write.
        let hook_attrs =
            crate::webhook::attributes(res, "UPDATE", ns, obj_name, subresource, opts.dry_run);
        let hooks = subresource != Some("binding");
        if hooks {
            crate::webhook::mutate(
                st,
                res,
                &hook_attrs,
                &mut new,
                Some(&old),
                &opts.field_manager,
            )
            .await?;
        }
        crate::crd::admit(st, res, &mut new, Some(&old), opts)?;
        // A binding only sets spec.nodeName (which ordinary pod updates may not change).
        if subresource != Some("binding") {
            admission::validate(res, &new, Some(&old))?;
        }
        crate::vap::validate(st, res, ns, &new, Some(&old), subresource, opts.dry_run).await?;
        if hooks {
            crate::webhook::validate(
                st,
                res,
                &hook_attrs,
                Some(&new),
                Some(&old),
                &opts.field_manager,
            )
            .await?;
        }
        if !opts.apply {
            let now = now_rfc3339();
            skiff_api::patch::track_update(
                res.group,
                res.kind,
                &api,
                Some(&old),
                &mut new,
                &opts.field_manager,
                subresource,
                &now,
            );
        }
        // What this write reserves is given back on every way out (dropped) unless the update
        // lands; a completed deletion keeps nothing.
        let reserved = super::reserve(st, res, Some(&old), &mut new).await?;
        if opts.dry_run {
            set_rv(&mut new, kv.mod_revision);
            return Ok(new);
        }
        // Deletion completes when the last finalizer goes.
        if new.pointer("/metadata/deletionTimestamp").is_some() && deletion_can_complete(res, &new)
        {
            match st.store.delete(&key, kv.mod_revision).await {
                Ok((rev, _)) => {
                    drop(reserved);
                    admission::release_object(st, res, &old);
                    set_rv(&mut new, rev);
                    return Ok(new);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound) => {
                    return Err(ApiError::not_found(res.group, res.plural, obj_name))
                }
                Err(e) => return Err(e.into()),
            }
        }
        if same_object(&new, &old) {
            // No-op update: upstream does not write (and does not bump resourceVersion).
            return Ok(old);
        }
        match st
            .store
            .update(
                &key,
                to_stored(&convert::to_storage(res, &new)),
                kv.mod_revision,
            )
            .await
        {
            Ok(rev) => {
                reserved.keep();
                admission::release_replaced(st, res, &old, &new);
                set_rv(&mut new, rev);
                return Ok(new);
            }
            // Retry against the new revision; an explicit resourceVersion in a PUT body then
            // fails the comparison at the top of the loop.
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound) => {
                return Err(ApiError::not_found(res.group, res.plural, obj_name))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::modified(res.group, res.plural, obj_name))
}

/// A body's `metadata.resourceVersion`, when set, must be the stored revision.
fn check_resource_version(
    res: &ResourceInfo,
    body: &Value,
    stored: i64,
    obj_name: &str,
) -> ApiResult<()> {
    match meta_str(body, "resourceVersion") {
        Some(rv) if !rv.is_empty() && rv != stored.to_string() => {
            Err(ApiError::modified(res.group, res.plural, obj_name))
        }
        _ => Ok(()),
    }
}

fn check_identity(
    res: &ResourceInfo,
    b: &Value,
    ns: Option<&str>,
    obj_name: &str,
) -> ApiResult<()> {
    let bn = name(b);
    if !bn.is_empty() && bn != obj_name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({bn}) does not match the name on the URL ({obj_name})"
        )));
    }
    if res.namespaced {
        if let (Some(bns), Some(ns)) = (objects::namespace(b), ns) {
            if !bns.is_empty() && bns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
    }
    Ok(())
}

/// Server-owned metadata survives every update.
fn preserve_server_meta(old: &Value, new: &mut Value) {
    let om = old.get("metadata").cloned().unwrap_or(json!({}));
    let m = meta_mut(new);
    for k in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match om.get(k) {
            Some(v) => {
                m.insert(k.into(), v.clone());
            }
            None => {
                m.remove(k);
            }
        }
    }
    m.remove("resourceVersion");
    m.remove("selfLink");
    if let Some(mf) = om.get("managedFields") {
        if !m.contains_key("managedFields") {
            m.insert("managedFields".into(), mf.clone());
        }
    }
}

/// Equal apart from the resourceVersion stamp.
fn same_object(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            m.remove("resourceVersion");
        }
        v
    };
    strip(a) == strip(b)
}

/// A deleting object goes once no finalizer holds it (namespaces also wait for
/// `spec.finalizers`, which the namespace controller clears through `/finalize`).
fn deletion_can_complete(res: &ResourceInfo, o: &Value) -> bool {
    if !finalizers(o).is_empty() {
        return false;
    }
    if res.group.is_empty() && res.kind == "Namespace" {
        let spec_fins = o
            .pointer("/spec/finalizers")
            .and_then(|f| f.as_array())
            .map(|a| !a.is_empty())
            .unwrap_or(false);
        return !spec_fins;
    }
    true
}
