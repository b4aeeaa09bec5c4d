//! Server-side apply (PATCH with `application/apply-patch+yaml`): creates the object when it is
//! missing, otherwise merges the applied configuration with managedFields ownership and
//! field-manager conflicts.

use super::{check_type, create_object, get_object, update_object, Mutation, WriteOpts};
use crate::error::{ApiError, ApiResult};
use crate::objects::{meta_mut, name, now_rfc3339};
use crate::state::AppState;
use serde_json::{json, Value};
use skiff_api::registry::ResourceInfo;
use std::sync::Arc;

/// Applies `applied` as field manager `opts.field_manager`; answers the object and whether it
/// was created (201) rather than updated (200).
pub async fn apply(
    st: &Arc<AppState>,
    res: &'static ResourceInfo,
    ns: Option<&str>,
    n: &str,
    mut applied: Value,
    force: bool,
    opts: &WriteOpts,
) -> ApiResult<(Value, bool)> {
    let api = res.api_version();
    check_type(res, &mut applied, res.kind, &api)?;
    if !applied
        .get("metadata")
        .map(|m| m.is_object())
        .unwrap_or(false)
    {
        meta_mut(&mut applied);
    }
    let bn = name(&applied).to_string();
    if !bn.is_empty() && bn != n {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({bn}) does not match the name on the URL ({n})"
        )));
    }
    crate::admission::strict_fields(res, &mut applied, opts)?;
    let mut opts = opts.clone();
    opts.apply = true;
    for _ in 0..8 {
        let exists = get_object(st, res, ns, n).await;
        let now = now_rfc3339();
        match exists {
            Err(e) if e.code == 404 => {
                let mut obj = skiff_api::patch::server_side_apply(
                    res.group,
                    res.kind,
                    &api,
                    None,
                    &applied,
                    &opts.field_manager,
                    force,
                    &now,
                )
                .map_err(patch_error)?;
                meta_mut(&mut obj).insert("name".into(), json!(n));
                match create_object(st, res, ns, obj, &opts).await {
                    Err(e) if e.code == 409 && e.reason == "AlreadyExists" => continue,
                    other => return Ok((other?, true)),
                }
            }
            Err(e) => return Err(e),
            Ok(_) => {
                let applied = applied.clone();
                let manager = opts.field_manager.clone();
                let api2 = api.clone();
                let o = update_object(
                    st,
                    res,
                    ns,
                    n,
                    Mutation::With(Box::new(move |cur: &Value| {
                        skiff_api::patch::server_side_apply(
                            res.group,
                            res.kind,
                            &api2,
                            Some(cur),
                            &applied,
                            &manager,
                            force,
                            &now,
                        )
                        .map_err(patch_error)
                    })),
                    &opts,
                    None,
                )
                .await;
                match o {
                    Err(e) if e.code == 404 => continue,
                    other => return Ok((other?, false)),
                }
            }
        }
    }
    Err(ApiError::modified(res.group, res.plural, n))
}

/// Apply conflicts become 409 with one `FieldManagerConflict` cause per field; other apply
/// failures are 422.
fn patch_error(e: skiff_api::patch::PatchError) -> ApiError {
    match e {
        skiff_api::patch::PatchError::Conflict { message, conflicts } => {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.field}))
                .collect();
            ApiError::new(409, "Conflict", message).with_details(json!({"causes": causes}))
        }
        other => ApiError::new(422, "Invalid", other.to_string()),
    }
}
