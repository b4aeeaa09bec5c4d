//! Turning objects into `meta.k8s.io` Tables for kubectl, with the includeObject policy.

use crate::error::{ApiError, ApiResult};
use crate::request::Query;
use serde_json::{json, Value};
use skiff_api::registry::ResourceInfo;

/// What each row carries in `object`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn from_query(q: &Query) -> ApiResult<Self> {
        match q.get("includeObject") {
            None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
            Some("None") => Ok(IncludeObject::None),
            Some("Object") => Ok(IncludeObject::Object),
            Some(o) => Err(ApiError::bad_request(format!(
                "includeObject must be one of None, Metadata or Object, got {o:?}"
            ))),
        }
    }
}

/// One table row for an object.
pub fn row(
    res: &ResourceInfo,
    obj: &Value,
    include: IncludeObject,
    beta: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let cells = match crate::crd::custom(res) {
        Some(c) => skiff_api::crd::columns::cells(&c.columns, obj, now),
        None => skiff_api::table::cells(res.group, res.kind, obj, now),
    };
    let mut r = json!({ "cells": cells });
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            r["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": if beta { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" },
                "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
            });
        }
        IncludeObject::Object => {
            let mut o = obj.clone();
            o["kind"] = json!(res.kind);
            o["apiVersion"] = json!(res.api_version());
            r["object"] = o;
        }
    }
    r
}

/// A Table of objects; `headers` false leaves out the column definitions (later watch events).
pub fn to_table(
    res: &ResourceInfo,
    objs: &[Value],
    include: IncludeObject,
    beta: bool,
    metadata: Value,
    headers: bool,
) -> Value {
    let now = chrono::Utc::now();
    let custom = crate::crd::custom(res);
    let cols: Vec<Value> = if let (true, Some(c)) = (headers, &custom) {
        skiff_api::crd::columns::table_columns(&c.columns)
    } else if headers {
        skiff_api::table::columns(res.group, res.kind)
            .into_iter()
            .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
            .collect()
    } else {
        vec![]
    };
    json!({
        "kind": "Table",
        "apiVersion": if beta { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" },
        "metadata": metadata,
        "columnDefinitions": cols,
        "rows": objs.iter().map(|o| row(res, o, include, beta, now)).collect::<Vec<_>>(),
    })
}
