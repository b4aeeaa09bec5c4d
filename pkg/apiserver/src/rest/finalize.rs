//! The namespace `finalize` subresource: replaces `spec.finalizers` (the namespace controller
//! clears `kubernetes` there once the namespace is empty).

use super::{update_object, Mutation, WriteOpts};
use crate::error::ApiResult;
use crate::state::AppState;
use serde_json::{json, Value};
use skiff_api::registry::ResourceInfo;
use std::sync::Arc;

/// PUT `namespaces/<n>/finalize`: takes only `spec.finalizers` from `body`.
pub async fn finalize_namespace(
    st: &Arc<AppState>,
    res: &'static ResourceInfo,
    n: &str,
    body: &Value,
    opts: &WriteOpts,
) -> ApiResult<Value> {
    let fins = body
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or(json!([]));
    update_object(
        st,
        res,
        None,
        n,
        Mutation::With(Box::new(move |cur: &Value| {
            let mut c = cur.clone();
            c["spec"]["finalizers"] = fins.clone();
            Ok(c)
        })),
        opts,
        Some("finalize"),
    )
    .await
}
