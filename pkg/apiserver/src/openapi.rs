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

/// The schema of a kind in its group-version document.
fn kind_schema<'a>(doc: &'a Value, res: &ResourceInfo) -> Option<&'a Value> {
    let schemas = doc.pointer("/components/schemas")?.as_object()?;
    // Upstream names: io.k8s.api.<first label of the group, or core>.<version>.<Kind>.
    let pkg = if res.group.is_empty() {
        "core"
    } else {
        res.group.split('.').next().unwrap_or(res.group)
    };
    let guess = format!("io.k8s.api.{pkg}.{}.{}", res.version, res.kind);
    if let Some(s) = schemas.get(&guess) {
        return Some(s);
    }
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
            match doc
                .get("components")
                .and_then(|c| c.get("schemas"))
                .and_then(|c| c.get(name))
            {
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

/// What one walk over an object against its schema found.
#[derive(Default)]
struct Findings {
    unknown: Vec<String>,
    /// (path, JSON value kind, schema type)
    type_errors: Vec<(String, &'static str, String)>,
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(schema_type: &str, v: &Value) -> bool {
    match (schema_type, v) {
        (_, Value::Null) => true,
        ("string", Value::String(_)) => true,
        ("integer", Value::Number(n)) => n.is_i64() || n.is_u64(),
        ("number", Value::Number(_)) => true,
        ("boolean", Value::Bool(_)) => true,
        ("object", Value::Object(_)) => true,
        ("array", Value::Array(_)) => true,
        _ => false,
    }
}

fn go_type(s: &Value) -> String {
    let t = s.get("type").and_then(|t| t.as_str()).unwrap_or("");
    let f = s.get("format").and_then(|t| t.as_str()).unwrap_or("");
    match (t, f) {
        ("integer", "int32") => "int32".into(),
        ("integer", _) => "int64".into(),
        ("boolean", _) => "bool".into(),
        ("number", _) => "float64".into(),
        ("array", _) => "[]interface {}".into(),
        ("object", _) => "map[string]interface {}".into(),
        (t, _) => t.to_string(),
    }
}

/// Where a walked value sits: rendered (`spec.containers[0].name`) only for a finding.
#[derive(Clone, Copy)]
enum At<'a> {
    Root,
    Field(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        match self {
            At::Root => {}
            At::Field(parent, k) => {
                parent.render_into(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            At::Index(parent, i) => {
                parent.render_into(out);
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
}

/// Walks `v` against `schema`; unknown fields are recorded and, when `prune`, removed.
fn walk(doc: &Value, schema: &Value, v: &mut Value, at: At<'_>, prune: bool, out: &mut Findings) {
    let s = resolve(doc, schema);
    if s.get("x-kubernetes-preserve-unknown-fields")
        .and_then(|x| x.as_bool())
        == Some(true)
        || s.get("x-kubernetes-int-or-string")
            .and_then(|x| x.as_bool())
            == Some(true)
    {
        return;
    }
    if let Some(t) = s.get("type").and_then(|t| t.as_str()) {
        if !type_matches(t, v) {
            out.type_errors
                .push((at.render(), json_kind(v), go_type(s)));
            return;
        }
    }
    match v {
        Value::Object(m) => {
            if let Some(props) = s.get("properties").and_then(|p| p.as_object()) {
                let open = s.get("additionalProperties").is_some();
                let mut drop = vec![];
                for (k, child) in m.iter_mut() {
                    match props.get(k) {
                        Some(cs) => walk(doc, cs, child, At::Field(&at, k), prune, out),
                        None if !open => {
                            out.unknown.push(At::Field(&at, k).render());
                            drop.push(k.clone());
                        }
                        None => {}
                    }
                }
                if prune {
                    for k in drop {
                        m.remove(&k);
                    }
                }
            } else if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, child) in m.iter_mut() {
                    walk(doc, ap, child, At::Field(&at, k), prune, out);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = s.get("items") {
                for (i, child) in a.iter_mut().enumerate() {
                    walk(doc, items, child, At::Index(&at, i), prune, out);
                }
            }
        }
        _ => {}
    }
}

/// Checks an incoming object against its kind's schema: values of the wrong JSON type are a
/// 400 (as upstream's decoder answers); unknown fields are a 400 under
/// `fieldValidation=Strict` and are dropped otherwise (upstream drops them while decoding).
pub fn check_fields(res: &ResourceInfo, obj: &mut Value, strict: bool) -> Result<(), String> {
    let Some(d) = skiff_api::openapi::v3_document(res.group, res.version) else {
        return Ok(());
    };
    let Some(schema) = kind_schema(&d.value, res) else {
        return Ok(());
    };
    let mut f = Findings::default();
    walk(&d.value, schema, obj, At::Root, !strict, &mut f);
    let prefix = format!(
        "{} in version \"{}\" cannot be handled as a {}: ",
        res.kind, res.version, res.kind
    );
    if let Some((path, got, want)) = f.type_errors.first() {
        let field: String = path
            .split('.')
            .map(|seg| seg.split('[').next().unwrap_or(seg))
            .collect::<Vec<_>>()
            .join(".");
        return Err(format!(
            "{prefix}json: cannot unmarshal {got} into Go struct field {}.{field} of type {want}",
            res.kind
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
