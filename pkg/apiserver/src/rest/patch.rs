//! PATCH: JSON patch, merge patch and strategic merge patch of the main resource, the status
//! subresource and the scale subresource (server-side apply is `apply.rs`).

use super::{carry_status, scale, to_scale, update_object, Mutation, WriteOpts};
use crate::error::{ApiError, ApiResult};
use crate::objects;
use crate::request;
use crate::state::AppState;
use serde_json::{json, Value};
use skiff_api::registry::ResourceInfo;
use std::sync::Arc;

/// PATCH of `n` (or of its `status` or `scale` subresource) with a JSON, merge or strategic
/// merge patch; `ct` is the lowercased media type without parameters. A patch of the main
/// resource keeps the stored status, a status patch takes only status, a scale patch is
/// applied to the Scale view and writes `spec.replicas` back (answering the Scale).
#[allow(clippy::too_many_arguments)]
pub async fn patch(
    st: &Arc<AppState>,
    res: &'static ResourceInfo,
    ns: Option<&str>,
    n: &str,
    sub: Option<&str>,
    ct: &str,
    body: &[u8],
    opts: &WriteOpts,
) -> ApiResult<Value> {
    if !matches!(
        ct,
        "application/json-patch+json"
            | "application/merge-patch+json"
            | "application/strategic-merge-patch+json"
    ) {
        return Err(ApiError::unsupported_patch_type());
    }
    if ct == "application/strategic-merge-patch+json" && crate::crd::is_custom(res) {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        ));
    }
    match sub {
        Some("scale") => {
            let cur = super::get_object(st, res, ns, n).await?;
            let patched = apply_patch(res, ct, &to_scale(res, &cur), body)?;
            let replicas = patched
                .pointer("/spec/replicas")
                .and_then(|r| r.as_i64())
                .unwrap_or(1);
            scale(st, res, ns, n, replicas, None, opts).await
        }
        Some("status") | None => {
            let status_only = sub == Some("status");
            let has_status = res.subresource("status").is_some();
            let ct = ct.to_string();
            let body = body.to_vec();
            update_object(
                st,
                res,
                ns,
                n,
                Mutation::With(Box::new(move |cur: &Value| {
                    let patched = apply_patch(res, &ct, cur, &body)?;
                    let mut out = if status_only {
                        let mut c = cur.clone();
                        carry_status(&patched, &mut c);
                        c
                    } else {
                        let mut p = patched;
                        if has_status {
                            carry_status(cur, &mut p);
                        }
                        p
                    };
                    // A patch must not move the object.
                    if out
                        .pointer("/metadata/name")
                        .and_then(|x| x.as_str())
                        .is_some_and(|x| x != objects::name(cur))
                    {
                        return Err(ApiError::bad_request(
                            "metadata.name cannot be changed by a patch",
                        ));
                    }
                    if out.get("metadata").is_none() {
                        out["metadata"] = cur.get("metadata").cloned().unwrap_or(json!({}));
                    }
                    if let Some(rv) = out
                        .pointer("/metadata/resourceVersion")
                        .and_then(|r| r.as_str())
                    {
                        if Some(rv)
                            != cur
                                .pointer("/metadata/resourceVersion")
                                .and_then(|r| r.as_str())
                        {
                            return Err(ApiError::modified(
                                res.group,
                                res.plural,
                                objects::name(cur),
                            ));
                        }
                    }
                    Ok(out)
                })),
                opts,
                sub,
            )
            .await
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// Applies a patch body of the given Content-Type to an object.
pub fn apply_patch(res: &ResourceInfo, ct: &str, current: &Value, body: &[u8]) -> ApiResult<Value> {
    let patch_err = |e: skiff_api::patch::PatchError| ApiError::new(422, "Invalid", e.to_string());
    match ct {
        "application/json-patch+json" => {
            let ops = request::parse_json(body)?;
            skiff_api::patch::json_patch(current, &ops).map_err(patch_err)
        }
        "application/merge-patch+json" => {
            let p = request::parse_json(body)?;
            if !p.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            Ok(skiff_api::patch::json_merge(current, &p))
        }
        "application/strategic-merge-patch+json" => {
            let p = request::parse_json(body)?;
            if !p.is_object() {
                return Err(ApiError::bad_request(
                    "a strategic merge patch must be a JSON object",
                ));
            }
            skiff_api::patch::strategic_merge(res.group, res.kind, current, &p).map_err(patch_err)
        }
        _ => Err(ApiError::unsupported_patch_type()),
    }
}
