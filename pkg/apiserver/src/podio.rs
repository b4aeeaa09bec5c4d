//! Pod I/O subresources (log; exec arrives with the agent): reached through the node's
//! kubelet, so a pod must be bound to a node that has an agent connection.

use crate::error::{ApiError, ApiResult};
use crate::objects::name;
use crate::request::Query;
use crate::state::AppState;
use axum::response::Response;
use serde_json::Value;

/// `GET …/pods/NAME/log`.
pub async fn logs(_st: &AppState, pod: &Value, q: &Query) -> ApiResult<Response> {
    let pod_name = name(pod);
    let containers: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(|c| c.as_array())
        .map(|a| a.iter().filter_map(|c| c.get("name")?.as_str()).collect())
        .unwrap_or_default();
    if let Some(c) = q.get("container") {
        if !containers.contains(&c) {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {pod_name}"
            )));
        }
    } else if containers.len() > 1 {
        return Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            containers.join(" ")
        )));
    }
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(|n| n.as_str())
        .unwrap_or("");
    if node.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {pod_name} does not have a host assigned"
        )));
    }
    Err(ApiError::new(
        503,
        "ServiceUnavailable",
        format!(
            "no agent connection for node {node:?}: start `skiff agent` on that node to read logs"
        ),
    ))
}
