//! The REST verbs over every registered resource, one module per verb: get, list, create,
//! update, patch, server-side apply, delete (and deletecollection), scale, binding, eviction
//! and the namespace finalize subresource. This module holds what they share: write options,
//! type and identity checks, `carry_status` and finalizer helpers.

pub mod apply;
pub mod binding;
pub mod create;
pub mod delete;
pub mod eviction;
pub mod finalize;
pub mod get;
pub mod list;
pub mod patch;
pub mod scale;
pub mod update;

#[cfg(test)]
mod tests;

pub use apply::apply;
pub use binding::bind;
pub use create::{create_object, create_object_encoded, Created};
pub use delete::{delete_collection, delete_object, DeleteOpts};
pub use eviction::evict;
pub use finalize::finalize_namespace;
pub use get::get_object;
pub use list::{list_json_raw, list_objects, metadata_body_start, render_list, Filters, ListOut};
pub use patch::{apply_patch, patch};
pub use scale::{scale, to_scale};
pub use update::{update_object, MutateFn, Mutation};

use crate::admission;
use crate::alloc::Reservation;
use crate::error::{ApiError, ApiResult};
use crate::request::Query;
use crate::state::AppState;
use serde_json::Value;
use skiff_api::registry::{self, ResourceInfo};

/// Who asks and how, as far as the write path needs to know.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub dry_run: bool,
    pub field_manager: String,
    /// fieldValidation: Strict | Warn | Ignore.
    pub field_validation: String,
    /// A server-side apply: managedFields were computed by the apply itself.
    pub apply: bool,
}

impl WriteOpts {
    pub fn from_query(q: &Query, user_agent: Option<&str>) -> ApiResult<WriteOpts> {
        let field_manager = match q.get("fieldManager") {
            Some(m) if !m.is_empty() => {
                if m.len() > 128 {
                    return Err(ApiError::bad_request(
                        "fieldManager is too long: use at most 128 characters",
                    ));
                }
                m.to_string()
            }
            _ => user_agent
                .and_then(|ua| ua.split('/').next())
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .to_string(),
        };
        let field_validation = match q.get("fieldValidation") {
            None | Some("") => "Warn".to_string(),
            Some(v @ ("Strict" | "Warn" | "Ignore")) => v.to_string(),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\" or \"Strict\", got {other:?}"
            )))
            }
        };
        Ok(WriteOpts {
            dry_run: q.dry_run()?,
            field_manager,
            field_validation,
            apply: false,
        })
    }
}

/// Checks that a body's apiVersion/kind fit the URL and fills them in when absent.
pub fn check_type(
    res: &ResourceInfo,
    obj: &mut Value,
    want_kind: &str,
    want_api: &str,
) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!(
            "the body must be a JSON object describing a {want_kind}"
        )));
    }
    let kind = obj.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    let api = obj.get("apiVersion").and_then(|k| k.as_str()).unwrap_or("");
    if (!kind.is_empty() && kind != want_kind) || (!api.is_empty() && api != want_api) {
        let (_, body_version) = registry::split_api_version(api);
        let hint = match registry::find_kind(api, kind) {
            Some(r) if r.kind != want_kind => format!(
                "the body is a {kind}: send it to the {} endpoint",
                r.group_resource()
            ),
            _ => format!("expected apiVersion {want_api:?} and kind {want_kind:?}"),
        };
        let _ = res;
        return Err(ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {want_kind}: {hint}",
            if kind.is_empty() { want_kind } else { kind },
            if body_version.is_empty() {
                res.version
            } else {
                body_version
            },
        )));
    }
    obj["kind"] = Value::String(want_kind.to_string());
    obj["apiVersion"] = Value::String(want_api.to_string());
    Ok(())
}

/// Whether objects of this kind carry `metadata.generation`.
pub(crate) fn has_generation(res: &ResourceInfo) -> bool {
    matches!(
        res.group,
        "apps" | "batch" | "networking.k8s.io" | "policy" | "scheduling.k8s.io"
    ) || (res.group.is_empty() && res.kind == "ReplicationController")
        || crate::crd::is_custom(res)
        || crate::crd::is_crd(res)
}

pub(crate) fn ns_of<'a>(res: &ResourceInfo, ns: Option<&'a str>) -> ApiResult<Option<&'a str>> {
    if res.namespaced {
        match ns {
            Some(n) => Ok(Some(n)),
            None => Err(ApiError::bad_request(
                "a namespace is required for this resource: use /namespaces/<ns>/ in the path",
            )),
        }
    } else {
        Ok(None)
    }
}

/// Carries `status` from `from` into `to` (removing it from `to` when `from` has none): what a
/// write of the main resource keeps from the stored object, and what a write of the status
/// subresource takes from the request.
pub(crate) fn carry_status(from: &Value, to: &mut Value) {
    match from.get("status") {
        Some(s) => to["status"] = s.clone(),
        None => {
            if let Some(o) = to.as_object_mut() {
                o.remove("status");
            }
        }
    }
}

pub(crate) fn finalizers(o: &Value) -> Vec<String> {
    o.pointer("/metadata/finalizers")
        .and_then(|f| f.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Allocates what a Service write needs (cluster IPs, node ports), held in a [`Reservation`]
/// that gives them back unless the caller keeps it after the store write committed. With an
/// external datastore (other servers allocate too) every taken value is also claimed in the
/// store ([`crate::alloc::claim`]); one another server holds is marked used here and the
/// allocation retried (an explicitly requested one then fails as already allocated).
pub(crate) async fn reserve<'a>(
    st: &'a AppState,
    res: &ResourceInfo,
    old: Option<&Value>,
    obj: &mut Value,
) -> ApiResult<Reservation<'a>> {
    // Only a Service write can lose a value to another server; only then is the request kept
    // to allocate again from (a deep copy per write of every other kind cost 7 % of server CPU
    // under a pod-create load on etcd).
    let shared = st.store.engine_name() != "sqlite" && admission::allocates(res);
    let original = shared.then(|| obj.clone());
    for _attempt in 0..16 {
        let got = admission::allocate(st, res, old, obj)?;
        let reservation = Reservation::new(&st.ips, &st.ports, got.ips, got.ports);
        let Some(original) = &original else {
            return Ok(reservation);
        };
        let me = format!(
            "{}/{}",
            crate::objects::namespace(obj).unwrap_or_default(),
            crate::objects::name(obj)
        );
        let (ips, ports) = reservation.held();
        let mut lost_ips = Vec::new();
        let mut lost_ports = Vec::new();
        for ip in ips {
            let key = crate::alloc::ip_claim_key(*ip);
            if !crate::alloc::claim(st, &key, &ip.to_string(), &me).await? {
                lost_ips.push(*ip);
            }
        }
        for port in ports {
            let key = crate::alloc::port_claim_key(*port);
            if !crate::alloc::claim(st, &key, &port.to_string(), &me).await? {
                lost_ports.push(*port);
            }
        }
        if lost_ips.is_empty() && lost_ports.is_empty() {
            return Ok(reservation);
        }
        // Another server holds them: give back what this attempt took, keep those marked used
        // here, and allocate again from the request as it came.
        drop(reservation);
        for ip in lost_ips {
            let _ = st.ips.lock().allocate(ip);
        }
        for port in lost_ports {
            let _ = st.ports.lock().allocate(port);
        }
        *obj = original.clone();
    }
    Err(crate::error::ApiError::internal(
        "cannot allocate a cluster IP or node port: other servers keep taking them; retry",
    ))
}
