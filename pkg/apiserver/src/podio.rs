//! Pod I/O subresources served by the node's kubelet: `pods/log` is streamed from the
//! kubelet's `/containerLogs/…` (exec, attach and port-forward are in `proxy.rs`).

use crate::error::{ApiError, ApiResult};
use crate::kubelet;
use crate::objects::name;
use crate::proxy::{choose_container, escape, forward, pod_node};
use crate::request::Query;
use crate::state::AppState;
use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, Method};
use http_body_util::BodyExt;
use serde_json::Value;

/// The log options passed on to the kubelet, in upstream's names.
const LOG_PARAMS: &[&str] = &[
    "follow",
    "previous",
    "timestamps",
    "sinceSeconds",
    "sinceTime",
    "tailLines",
    "limitBytes",
    "stream",
];

/// The kubelet path of a log request for `container` of pod `ns/pod`.
pub fn log_path(ns: &str, pod: &str, container: &str, q: &Query) -> ApiResult<String> {
    for k in ["sinceSeconds", "tailLines", "limitBytes"] {
        if let Some(v) = q.int(k)? {
            if v < 0 || (v == 0 && k != "tailLines") {
                return Err(ApiError::bad_request(format!(
                    "{k}: Invalid value: {v}: must be greater than {}",
                    if k == "tailLines" {
                        "or equal to 0"
                    } else {
                        "0"
                    }
                )));
            }
        }
    }
    if q.get("sinceSeconds").is_some() && q.get("sinceTime").is_some() {
        return Err(ApiError::bad_request(
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        ));
    }
    let params: Vec<String> = LOG_PARAMS
        .iter()
        .filter_map(|k| {
            let v = q.get(k)?;
            let keep = match *k {
                "follow" | "previous" | "timestamps" => q.flag(k),
                _ => !v.is_empty(),
            };
            keep.then(|| {
                if matches!(*k, "follow" | "previous" | "timestamps") {
                    format!("{k}=true")
                } else {
                    format!("{k}={}", escape(v))
                }
            })
        })
        .collect();
    let path = format!(
        "/containerLogs/{}/{}/{}",
        escape(ns),
        escape(pod),
        escape(container)
    );
    Ok(if params.is_empty() {
        path
    } else {
        format!("{path}?{}", params.join("&"))
    })
}

/// A non-2xx kubelet answer as upstream's pods/log response checker reports it.
pub fn kubelet_error(code: u16, pod: &str, body: &str) -> ApiError {
    let text = body.trim_end().to_string();
    match code {
        400 => ApiError::bad_request(text),
        500 => ApiError::internal(format!("Internal error occurred: {text}")),
        404 => ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ( pods/log {pod})"),
        )
        .with_details(serde_json::json!({
            "name": pod,
            "kind": "pods/log",
            "causes": [{"reason": "UnexpectedServerResponse", "message": text}]
        })),
        401 | 403 => ApiError::forbidden(format!(
            "the kubelet refused the API server ({code}): {text}"
        )),
        _ => ApiError::new(
            503,
            "ServiceUnavailable",
            format!("the kubelet answered {code}: {text}"),
        ),
    }
}

/// `GET …/pods/NAME/log`: streams the kubelet's chunked body to the client.
pub async fn logs(st: &AppState, pod: &Value, q: &Query) -> ApiResult<Response> {
    let pod_name = name(pod);
    let container = choose_container(pod, q.get("container"))?;
    let ns = crate::objects::namespace(pod).unwrap_or("default");
    let path = log_path(ns, pod_name, &container, q)?;
    let node = pod_node(pod)?;
    let ep = kubelet::node_endpoint(st, &node).await?;
    let resp = forward(
        st,
        &ep,
        Method::GET,
        &path,
        &HeaderMap::new(),
        Body::empty(),
        None,
    )
    .await?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    let code = resp.status().as_u16();
    let limited = http_body_util::Limited::new(resp.into_body(), 1 << 20);
    let body = match limited.collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(e) => format!("(body unreadable: {e})"),
    };
    Err(kubelet_error(code, pod_name, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_query_is_passed_in_upstream_names() {
        let q = Query::parse(Some(
            "container=c&follow=true&previous=false&tailLines=10&sinceSeconds=30&timestamps=1&pretty=true",
        ));
        assert_eq!(
            log_path("ns", "p", "c", &q).unwrap(),
            "/containerLogs/ns/p/c?follow=true&timestamps=true&sinceSeconds=30&tailLines=10"
        );
        assert_eq!(
            log_path("ns", "p", "c", &Query::default()).unwrap(),
            "/containerLogs/ns/p/c"
        );
        let both = Query::parse(Some("sinceSeconds=1&sinceTime=2026-01-01T00:00:00Z"));
        assert!(log_path("ns", "p", "c", &both).is_err());
        let neg = Query::parse(Some("tailLines=-1"));
        assert_eq!(log_path("ns", "p", "c", &neg).unwrap_err().code, 400);
        let bad = Query::parse(Some("limitBytes=x"));
        assert_eq!(log_path("ns", "p", "c", &bad).unwrap_err().code, 400);
    }

    #[test]
    fn kubelet_errors_read_like_upstream() {
        let e = kubelet_error(
            400,
            "p",
            "container \"c\" in pod \"p\" is waiting to start: ContainerCreating\n",
        );
        assert_eq!(
            (e.code, e.reason, e.message.as_str()),
            (
                400,
                "BadRequest",
                "container \"c\" in pod \"p\" is waiting to start: ContainerCreating"
            )
        );
        let e = kubelet_error(404, "p", "pod \"p\" does not exist");
        assert_eq!(e.code, 404);
        assert!(e.message.contains("pods/log p"));
    }
}
