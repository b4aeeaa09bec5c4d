//! Serving OpenAPI: the v3 index and per group-version documents (built once, lazily, with
//! hash-addressed URLs and ETags), /openapi/v2, and strict field validation against the schemas.

use crate::error::{ApiError, ApiResult};
use crate::request::Query;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use skiff_api::registry::ResourceInfo;

/// Builds the documents ahead of the first request (called in the background at start).
pub fn warm() {
    skiff_api::openapi::warm();
}

/// `GET /openapi/v3`.
pub fn index() -> Value {
    skiff_api::openapi::v3_index().value.clone()
}

/// `GET /openapi/v3/<gv path>`.
pub fn v3_response(rest: &str, q: &Query, headers: &HeaderMap) -> ApiResult<Response> {
    let d = skiff_api::openapi::v3_document_by_path(rest).ok_or_else(ApiError::path_not_found)?;
    let etag = format!("\"{}\"", d.hash);
    if headers.get("if-none-match").and_then(|h| h.to_str().ok()) == Some(etag.as_str()) {
        return Ok(Response::builder()
            .status(304)
            .header("etag", etag)
            .body(Body::empty())
            .unwrap_or_else(|_| ApiError::internal("response").into_response()));
    }
    let cache = if q.get("hash") == Some(d.hash.as_str()) {
        "public, immutable"
    } else {
        "no-cache, no-store, must-revalidate"
    };
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("etag", etag)
        .header("cache-control", cache)
        .body(Body::from(d.json.clone()))
        .unwrap_or_else(|_| ApiError::internal("response").into_response()))
}

/// `GET /openapi/v2` (JSON).
pub fn v2_response() -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(skiff_api::openapi::v2_document().json.clone()))
        .unwrap_or_else(|_| ApiError::internal("response").into_response())
}

/// The schema of a kind in its group-version document.
fn kind_schema<'a>(doc: &'a Value, res: &ResourceInfo) -> Option<&'a Value> {
    let schemas = doc.pointer("/components/schemas")?.as_object()?;
    schemas.values().find(|s| {
        s.get("x-kubernetes-group-version-kind")
            .and_then(|g| g.as_array())
            .map(|a| {
                a.iter().any(|gvk| {
                    gvk.get("group").and_then(|x| x.as_str()) == Some(res.group)
                        && gvk.get("version").and_then(|x| x.as_str()) == Some(res.version)
                        && gvk.get("kind").and_then(|x| x.as_str()) == Some(res.kind)
                })
            })
            .unwrap_or(false)
    })
}

fn resolve<'a>(doc: &'a Value, mut s: &'a Value) -> &'a Value {
    for _ in 0..8 {
        if let Some(r) = s.get("$ref").and_then(|r| r.as_str()) {
            let name = r.rsplit('/').next().unwrap_or("");
            match doc.pointer(&format!(
                "/components/schemas/{}",
                name.replace('~', "~0").replace('/', "~1")
            )) {
                Some(t) => {
                    s = t;
                    continue;
                }
                None => return s,
            }
        }
        if let Some(all) = s.get("allOf").and_then(|a| a.as_array()) {
            if all.len() == 1 {
                s = &all[0];
                continue;
            }
        }
        return s;
    }
    s
}

fn walk(doc: &Value, schema: &Value, v: &Value, path: &str, out: &mut Vec<String>) {
    let s = resolve(doc, schema);
    if s.get("x-kubernetes-preserve-unknown-fields")
        .and_then(|x| x.as_bool())
        == Some(true)
    {
        return;
    }
    match v {
        Value::Object(m) => {
            if let Some(props) = s.get("properties").and_then(|p| p.as_object()) {
                for (k, child) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    match props.get(k) {
                        Some(cs) => walk(doc, cs, child, &p, out),
                        None => {
                            if s.get("additionalProperties").is_none() {
                                out.push(p);
                            }
                        }
                    }
                }
            } else if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, child) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(doc, ap, child, &p, out);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = s.get("items") {
                for (i, child) in a.iter().enumerate() {
                    walk(doc, items, child, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Fields of `obj` its kind's schema does not know, as `spec.foo` paths.
pub fn unknown_fields(res: &ResourceInfo, obj: &Value) -> Vec<String> {
    let Some(d) = skiff_api::openapi::v3_document(res.group, res.version) else {
        return vec![];
    };
    let Some(schema) = kind_schema(&d.value, res) else {
        return vec![];
    };
    let mut out = vec![];
    walk(&d.value, schema, obj, "", &mut out);
    out.retain(|p| p != "status" && !p.starts_with("status."));
    out
}
