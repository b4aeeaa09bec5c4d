//! DELETE and DELETECOLLECTION: preconditions, propagation finalizers (`orphan`,
//! `foregroundDeletion`), graceful deletion of bound pods, namespaces held by `spec.finalizers`.

use super::{finalizers, ns_of};
use crate::admission;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::objects::{from_kv, meta_mut, meta_str, now_rfc3339, set_rv, to_stored};
use crate::request::{self, Query, Target};
use crate::state::AppState;
use serde_json::{json, Value};
use skiff_api::registry::ResourceInfo;
use skiff_store::StoreError;
use std::sync::Arc;

/// DeleteOptions from the body and query.
#[derive(Debug, Default, Clone)]
pub struct DeleteOpts {
    pub grace: Option<i64>,
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOpts {
    /// DeleteOptions of a DELETE: the query, then the body (which wins).
    pub fn parse(q: &Query, body: &[u8], content_type: Option<&str>) -> ApiResult<DeleteOpts> {
        let mut o = DeleteOpts {
            grace: q.int("gracePeriodSeconds")?,
            propagation: q.get("propagationPolicy").map(String::from),
            dry_run: q.dry_run()?,
            ..Default::default()
        };
        if q.get("orphanDependents") == Some("true") {
            o.propagation = Some("Orphan".into());
        }
        if !body.iter().all(|b| b.is_ascii_whitespace()) {
            let v = request::decode_body(content_type, body)?;
            o.merge_body(&v);
        }
        o.checked()
    }

    /// DeleteOptions given as an object (an Eviction's `deleteOptions`).
    pub fn from_value(v: &Value) -> ApiResult<DeleteOpts> {
        let mut o = DeleteOpts::default();
        o.merge_body(v);
        o.checked()
    }

    fn merge_body(&mut self, v: &Value) {
        if let Some(g) = v.get("gracePeriodSeconds").and_then(|g| g.as_i64()) {
            self.grace = Some(g);
        }
        if let Some(p) = v.get("propagationPolicy").and_then(|p| p.as_str()) {
            self.propagation = Some(p.to_string());
        }
        if v.get("orphanDependents").and_then(|b| b.as_bool()) == Some(true) {
            self.propagation = Some("Orphan".into());
        }
        if let Some(p) = v.get("preconditions") {
            self.precondition_uid = p.get("uid").and_then(|u| u.as_str()).map(String::from);
            self.precondition_rv = p
                .get("resourceVersion")
                .and_then(|u| u.as_str())
                .map(String::from);
        }
        if let Some(d) = v.get("dryRun").and_then(|d| d.as_array()) {
            self.dry_run = self.dry_run || d.iter().any(|x| x == "All");
        }
    }

    fn checked(mut self) -> ApiResult<DeleteOpts> {
        if let Some(p) = &self.propagation {
            if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
                return Err(ApiError::bad_request(format!(
                    "propagationPolicy {p:?} is not supported: use Orphan, Background or Foreground"
                )));
            }
        }
        if let Some(g) = self.grace {
            if g < 0 {
                self.grace = Some(1);
            }
        }
        Ok(self)
    }
}

/// DELETE of one object: finalizers, propagation, graceful pod termination.
pub async fn delete_object(
    st: &Arc<AppState>,
    res: &'static ResourceInfo,
    ns: Option<&str>,
    obj_name: &str,
    opts: &DeleteOpts,
) -> ApiResult<Value> {
    let ns = ns_of(res, ns)?;
    if res.group.is_empty()
        && res.kind == "Namespace"
        && matches!(obj_name, "default" | "kube-system" | "kube-public")
    {
        return Err(ApiError::forbidden(format!(
            "namespaces \"{obj_name}\" is forbidden: this namespace may not be deleted"
        ))
        .with_details(json!({"name": obj_name, "kind": "namespaces"})));
    }
    let key = request::object_key(res, ns, obj_name);
    for _ in 0..16 {
        let Some(kv) = st.store.get(&key).await? else {
            return Err(ApiError::not_found(res.group, res.plural, obj_name));
        };
        let old = convert::from_storage(res, from_kv(&kv)?);
        if let Some(uid) = &opts.precondition_uid {
            if meta_str(&old, "uid") != Some(uid.as_str()) {
                return Err(ApiError::conflict(
                    res.group,
                    res.plural,
                    obj_name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&old, "uid").unwrap_or("")
                    ),
                ));
            }
        }
        if let Some(rv) = &opts.precondition_rv {
            if *rv != kv.mod_revision.to_string() {
                return Err(ApiError::conflict(res.group, res.plural, obj_name, &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    kv.mod_revision
                )));
            }
        }
        let mut new = old.clone();
        let mut fins = finalizers(&old);
        match opts.propagation.as_deref() {
            Some("Foreground") if !fins.iter().any(|f| f == "foregroundDeletion") => {
                fins.retain(|f| f != "orphan");
                fins.push("foregroundDeletion".into());
            }
            Some("Orphan") if !fins.iter().any(|f| f == "orphan") => {
                fins.retain(|f| f != "foregroundDeletion");
                fins.push("orphan".into());
            }
            _ => {}
        }
        let graceful = graceful_period(res, &old, opts);
        let already_deleting = old.pointer("/metadata/deletionTimestamp").is_some();
        let is_namespace = res.group.is_empty() && res.kind == "Namespace";
        let ns_held = is_namespace
            && old
                .pointer("/spec/finalizers")
                .and_then(|f| f.as_array())
                .map(|a| !a.is_empty())
                .unwrap_or(false);
        let immediate = fins.is_empty() && (graceful.is_none() || (is_namespace && !ns_held));
        if opts.dry_run {
            return Ok(old);
        }
        let mut delete_at = kv.mod_revision;
        let mut gone = old.clone();
        if immediate && res.group.is_empty() && res.kind == "Pod" && !already_deleting {
            // Pods always pass through a terminating state (deletionTimestamp, grace 0),
            // so watchers see them as Terminating before they go, as upstream does.
            let mut term = old.clone();
            let m = meta_mut(&mut term);
            m.insert("deletionTimestamp".into(), Value::String(now_rfc3339()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            match st
                .store
                .update(
                    &key,
                    to_stored(&convert::to_storage(res, &term)),
                    kv.mod_revision,
                )
                .await
            {
                Ok(rev) => {
                    delete_at = rev;
                    gone = term;
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound) => {
                    return Err(ApiError::not_found(res.group, res.plural, obj_name))
                }
                Err(e) => return Err(e.into()),
            }
        }
        if immediate {
            match st.store.delete(&key, delete_at).await {
                Ok((rev, _)) => {
                    admission::release_object(st, res, &old);
                    let mut out = gone;
                    set_rv(&mut out, rev);
                    return Ok(out);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound) => {
                    return Err(ApiError::not_found(res.group, res.plural, obj_name))
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Deletion pending: stamp deletionTimestamp (once; a shorter grace may shorten it).
        let m = meta_mut(&mut new);
        let grace = graceful.unwrap_or(0);
        let now = chrono::Utc::now();
        let stamp = (now + chrono::Duration::seconds(grace))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let shorten = match m.get("deletionGracePeriodSeconds").and_then(|g| g.as_i64()) {
            Some(g) => grace < g,
            None => true,
        };
        if !already_deleting || shorten {
            m.insert("deletionTimestamp".into(), Value::String(stamp));
            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
        }
        if fins.is_empty() {
            m.remove("finalizers");
        } else {
            m.insert("finalizers".into(), json!(fins));
        }
        if is_namespace {
            new["status"]["phase"] = json!("Terminating");
        }
        if new == old {
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
    Err(ApiError::modified(res.group, res.plural, obj_name))
}

/// Pods bound to a node terminate gracefully; everything else goes at once.
fn graceful_period(res: &ResourceInfo, obj: &Value, opts: &DeleteOpts) -> Option<i64> {
    if res.group.is_empty() && res.kind == "Namespace" {
        return Some(0);
    }
    if !(res.group.is_empty() && res.kind == "Pod") {
        return None;
    }
    let bound = obj
        .pointer("/spec/nodeName")
        .and_then(|n| n.as_str())
        .map(|n| !n.is_empty())
        .unwrap_or(false);
    let phase = obj
        .pointer("/status/phase")
        .and_then(|p| p.as_str())
        .unwrap_or("");
    if !bound || phase == "Succeeded" || phase == "Failed" {
        return None;
    }
    let default = obj
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(|g| g.as_i64())
        .unwrap_or(30);
    match opts.grace.unwrap_or(default) {
        0 => None,
        g => Some(g),
    }
}

/// DELETECOLLECTION: deletes every object the list filters of `q` select (all pages), each
/// with `opts`; objects that went meanwhile are skipped. Answers the deleted objects as a list.
pub async fn delete_collection(
    st: &Arc<AppState>,
    target: &Target,
    q: &Query,
    opts: &DeleteOpts,
) -> ApiResult<Value> {
    let res = target.res;
    let mut lq = q.clone();
    lq.map.remove("limit");
    let out = super::list_objects(st, target, &lq).await?;
    let mut deleted = vec![];
    for o in out.items {
        let n = crate::objects::name(&o).to_string();
        let ons = crate::objects::namespace(&o).map(String::from);
        match delete_object(st, res, ons.as_deref(), &n, opts).await {
            Ok(d) => deleted.push(d),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json!({
        "kind": res.list_kind(), "apiVersion": res.api_version(),
        "metadata": {"resourceVersion": st.store.current_revision().to_string()},
        "items": deleted,
    }))
}
