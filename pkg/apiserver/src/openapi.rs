//! Serving OpenAPI: the v3 index and per group-version documents (built once, on the first
//! request, with hash-addressed URLs and ETags), /openapi/v2, and field validation of request
//! bodies (against the protobuf message table, so validation never builds the documents).

use crate::error::{ApiError, ApiResult};
use crate::request::Query;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use skiff_api::protobuf::fields;
use skiff_api::registry::ResourceInfo;

/// `GET /openapi/v3`.
pub fn index() -> Value {
    skiff_api::openapi::v3_index().clone()
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

/// `GET /openapi/v2` by the Accept header: gnostic protobuf (what kubectl asks for), JSON,
/// or 406.
pub fn v2_negotiate(headers: &HeaderMap) -> ApiResult<Response> {
    let accept = headers
        .get("accept")
        .and_then(|a| a.to_str().ok())
        .unwrap_or("");
    let types: Vec<&str> = accept
        .split(',')
        .map(|p| p.split(';').next().unwrap_or("").trim())
        .collect();
    if types.iter().any(|t| {
        t.eq_ignore_ascii_case(skiff_api::openapi_pb::MEDIA_TYPE)
            || t.eq_ignore_ascii_case(skiff_api::openapi_pb::CONTENT_TYPE)
    }) {
        return Ok(Response::builder()
            .status(200)
            .header("content-type", skiff_api::openapi_pb::CONTENT_TYPE)
            .body(Body::from(skiff_api::openapi_pb::v2_protobuf()))
            .unwrap_or_else(|_| ApiError::internal("response").into_response()));
    }
    if accept.is_empty()
        || types
            .iter()
            .any(|t| matches!(*t, "application/json" | "*/*" | "application/*"))
    {
        return Ok(v2_response());
    }
    Err(ApiError::not_acceptable(format!(
        "only application/json and {} are served for /openapi/v2",
        skiff_api::openapi_pb::MEDIA_TYPE
    )))
}

/// `GET /openapi/v2` (JSON).
pub fn v2_response() -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(skiff_api::openapi::v2_document().json.clone()))
        .unwrap_or_else(|_| ApiError::internal("response").into_response())
}

/// Checks an incoming object against its kind's schema: values of the wrong JSON type are a
/// 400 (as upstream's decoder answers); unknown fields are a 400 under
/// `fieldValidation=Strict` and are dropped otherwise (upstream drops them while decoding).
pub fn check_fields(res: &ResourceInfo, obj: &mut Value, strict: bool) -> Result<(), String> {
    if !skiff_api::registry::is_builtin(res) {
        return Ok(());
    }
    let Some(f) = fields::check_object(&res.api_version(), res.kind, obj, !strict) else {
        return Ok(());
    };
    let prefix = format!(
        "{} in version \"{}\" cannot be handled as a {}: ",
        res.kind, res.version, res.kind
    );
    if let Some(e) = f.type_error {
        return Err(format!(
            "{prefix}json: cannot unmarshal {} into Go struct field {}.{} of type {}",
            e.got, e.go_struct, e.path, e.go_type
        ));
    }
    if strict {
        let unknown: Vec<String> = f
            .unknown
            .into_iter()
            .filter(|p| p != "status" && !p.starts_with("status."))
            .collect();
        if !unknown.is_empty() {
            let list = unknown
                .iter()
                .map(|u| format!("unknown field \"{u}\""))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(format!("{prefix}strict decoding error: {list}"));
        }
    }
    Ok(())
}
