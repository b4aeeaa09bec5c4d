//! Binding a pod to a node (`pods/binding`, and `bindings` created in a namespace): sets
//! `spec.nodeName` once and the `PodScheduled` condition.

use super::{update_object, Mutation, WriteOpts};
use crate::error::{ApiError, ApiResult};
use crate::objects::now_rfc3339;
use crate::state::AppState;
use serde_json::{json, Value};
use skiff_api::registry::ResourceInfo;
use std::sync::Arc;

/// Binds pod `pod` to the node named by `binding.target.name`; answers a `Status` Success.
pub async fn bind(
    st: &Arc<AppState>,
    pods: &'static ResourceInfo,
    ns: Option<&str>,
    pod: &str,
    binding: Value,
    opts: &WriteOpts,
) -> ApiResult<Value> {
    let node = binding
        .pointer("/target/name")
        .and_then(|n| n.as_str())
        .unwrap_or("")
        .to_string();
    if node.is_empty() {
        return Err(ApiError::bad_request(
            "the binding has no target.name: name the node to bind to",
        ));
    }
    let pod_name = pod.to_string();
    update_object(
        st,
        pods,
        ns,
        pod,
        Mutation::With(Box::new(move |cur: &Value| {
            if let Some(existing) = cur
                .pointer("/spec/nodeName")
                .and_then(|n| n.as_str())
                .filter(|n| !n.is_empty())
            {
                return Err(ApiError::conflict(
                    "",
                    "pods",
                    &pod_name,
                    &format!("pod {pod_name} is already assigned to node \"{existing}\""),
                ));
            }
            if cur.pointer("/metadata/deletionTimestamp").is_some() {
                return Err(ApiError::conflict(
                    "",
                    "pods",
                    &pod_name,
                    "pod is being deleted, cannot be assigned to a host",
                ));
            }
            let mut c = cur.clone();
            c["spec"]["nodeName"] = json!(node);
            let conds = c
                .pointer("/status/conditions")
                .and_then(|x| x.as_array())
                .cloned()
                .unwrap_or_default();
            let mut conds: Vec<Value> = conds
                .into_iter()
                .filter(|x| x.get("type") != Some(&json!("PodScheduled")))
                .collect();
            conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now_rfc3339()}));
            c["status"]["conditions"] = json!(conds);
            Ok(c)
        })),
        opts,
        Some("binding"),
    )
    .await?;
    Ok(success(201))
}

/// A `v1 Status` Success with `code`.
pub fn success(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}
