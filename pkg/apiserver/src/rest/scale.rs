//! The scale subresource: `autoscaling/v1 Scale` views and writes of `spec.replicas`.

use super::{update_object, Mutation, WriteOpts};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use serde_json::{json, Value};
use skiff_api::registry::ResourceInfo;
use skiff_api::selector::LabelSelector;
use std::sync::Arc;

/// Writes `spec.replicas` of a scalable object (PUT of the scale subresource; `rv` is the
/// Scale's resourceVersion precondition) and answers the new Scale.
pub async fn scale(
    st: &Arc<AppState>,
    res: &'static ResourceInfo,
    ns: Option<&str>,
    n: &str,
    replicas: i64,
    rv: Option<String>,
    opts: &WriteOpts,
) -> ApiResult<Value> {
    if replicas < 0 {
        let cause = skiff_api::validation::FieldCause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {replicas}: must be greater than or equal to 0"),
            field: "spec.replicas".into(),
        };
        return Err(ApiError::invalid("autoscaling", "Scale", n, format!("Scale.autoscaling \"{n}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"), json!([cause])));
    }
    let name_s = n.to_string();
    let o = update_object(
        st,
        res,
        ns,
        n,
        Mutation::With(Box::new(move |cur: &Value| {
            if let Some(rv) = rv.as_deref().filter(|rv| !rv.is_empty()) {
                if cur
                    .pointer("/metadata/resourceVersion")
                    .and_then(|r| r.as_str())
                    != Some(rv)
                {
                    return Err(ApiError::modified(res.group, res.plural, &name_s));
                }
            }
            let mut c = cur.clone();
            match crate::crd::custom(res).and_then(|cv| cv.scale.clone()) {
                Some(paths) => {
                    crate::crd::write_path(&mut c, &paths.spec_replicas, json!(replicas))
                }
                None => c["spec"]["replicas"] = json!(replicas),
            }
            Ok(c)
        })),
        opts,
        Some("scale"),
    )
    .await?;
    Ok(to_scale(res, &o))
}

/// `autoscaling/v1 Scale` of a scalable object.
pub fn to_scale(res: &ResourceInfo, obj: &Value) -> Value {
    if let Some(paths) = crate::crd::custom(res).and_then(|c| c.scale.clone()) {
        return custom_scale(obj, &paths);
    }
    let selector = obj
        .pointer("/spec/selector")
        .map(|s| {
            if res.kind == "ReplicationController" {
                LabelSelector::from_map(&s.as_object().cloned().unwrap_or_default()).to_string()
            } else {
                LabelSelector::from_json(s)
                    .map(|l| l.to_string())
                    .unwrap_or_default()
            }
        })
        .unwrap_or_default();
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"),
            "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        }
    })
}

/// The Scale of a custom object, read through its CRD's scale paths.
fn custom_scale(obj: &Value, paths: &skiff_api::crd::ScalePaths) -> Value {
    let at = |p: &str| crate::crd::read_path(obj, p).cloned();
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    let selector = paths
        .label_selector
        .as_deref()
        .and_then(&at)
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"),
            "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": {"replicas": at(&paths.spec_replicas).unwrap_or(json!(0))},
        "status": {
            "replicas": at(&paths.status_replicas).unwrap_or(json!(0)),
            "selector": selector,
        }
    })
}
