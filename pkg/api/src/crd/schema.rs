//! Structural schemas (`openAPIV3Schema` of a CRD version) applied to custom objects, in
//! upstream's order: pruning of fields the schema does not declare, defaulting, then
//! validation into field causes worded as the Kubernetes API server words them
//! (`spec.replicas: Invalid value: 15: spec.replicas in body should be less than or equal to
//! 10`).
//!
//! Hand-written rather than a JSON-schema crate: the Kubernetes dialect (`nullable`,
//! `x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`, embedded resources)
//! and the exact error texts are what clients see, and no maintained crate produces them.

use crate::text::go_quote;
use crate::validation::FieldCause;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

fn flag(s: &Value, k: &str) -> bool {
    s.get(k).and_then(|x| x.as_bool()).unwrap_or(false)
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

/// The JSON type name upstream reports for a value (`integer` for whole numbers).
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as Go's `%v` renders a bad value in a field error: strings quoted, numbers plain.
fn render(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Number(n) => number(n.as_f64().unwrap_or(0.0)),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

fn cause(reason: &str, field: &str, message: String) -> FieldCause {
    FieldCause {
        reason: reason.into(),
        message,
        field: field.into(),
    }
}

fn invalid(field: &str, v: &Value, detail: String) -> FieldCause {
    cause(
        "FieldValueInvalid",
        field,
        format!("Invalid value: {}: {detail}", render(v)),
    )
}

// -------------------------------------------------------------------------------------------
// Pruning

/// Removes the fields `schema` does not declare (unless it preserves unknown fields) and
/// returns their paths (`spec.foo`), which strict field validation reports. At the root,
/// `apiVersion`, `kind` and `metadata` are always kept.
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut out = Vec::new();
    prune_at(schema, obj, "", true, &mut out);
    out
}

fn prune_at(schema: &Value, v: &mut Value, path: &str, root: bool, out: &mut Vec<String>) {
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    let embedded = root || flag(schema, "x-kubernetes-embedded-resource");
    match v {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(|p| p.as_object());
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let mut drop = Vec::new();
            for (k, child) in m.iter_mut() {
                if embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    if let Some(cs) = props.and_then(|p| p.get(k)) {
                        if k != "metadata" {
                            prune_at(cs, child, &join(path, k), false, out);
                        }
                    }
                    continue;
                }
                match (props.and_then(|p| p.get(k)), additional) {
                    (Some(cs), _) => prune_at(cs, child, &join(path, k), false, out),
                    (None, Some(a)) => prune_at(a, child, &join(path, k), false, out),
                    (None, None)
                        if preserve
                            || schema.get("additionalProperties") == Some(&Value::Bool(true)) => {}
                    (None, None) => drop.push(k.clone()),
                }
            }
            for k in drop {
                m.remove(&k);
                out.push(join(path, &k));
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
                for (i, child) in a.iter_mut().enumerate() {
                    prune_at(items, child, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        _ => {}
    }
}

// -------------------------------------------------------------------------------------------
// Defaulting

/// Fills in `default`s of absent properties (and of nulls where the field is not nullable),
/// top-down, wherever the parent object exists.
pub fn apply_defaults(schema: &Value, obj: &mut Value) {
    match obj {
        Value::Object(m) => {
            if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
                for (k, ps) in props {
                    let Some(d) = ps.get("default") else { continue };
                    let absent = match m.get(k) {
                        None => true,
                        Some(Value::Null) => !flag(ps, "nullable"),
                        Some(_) => false,
                    };
                    if absent {
                        m.insert(k.clone(), d.clone());
                    }
                }
                for (k, child) in m.iter_mut() {
                    if let Some(ps) = props.get(k) {
                        apply_defaults(ps, child);
                    }
                }
            } else if let Some(a) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for child in m.values_mut() {
                    apply_defaults(a, child);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
                for child in a.iter_mut() {
                    apply_defaults(items, child);
                }
            }
        }
        _ => {}
    }
}

// -------------------------------------------------------------------------------------------
// Validation

/// Validates a custom object against its version's schema. `metadata`, `apiVersion` and
/// `kind` at the root are left to the generic metadata validation.
pub fn validate(schema: &Value, obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    validate_at(schema, obj, "", true, &mut out);
    out
}

fn type_ok(want: &str, v: &Value) -> bool {
    match (want, v) {
        ("string", Value::String(_)) => true,
        ("boolean", Value::Bool(_)) => true,
        ("object", Value::Object(_)) => true,
        ("array", Value::Array(_)) => true,
        ("number", Value::Number(_)) => true,
        ("integer", v) => type_name(v) == "integer",
        _ => false,
    }
}

fn validate_at(schema: &Value, v: &Value, path: &str, root: bool, out: &mut Vec<FieldCause>) {
    let field = if path.is_empty() { "<root>" } else { path };
    if v.is_null() {
        if flag(schema, "nullable") {
            return;
        }
        if let Some(t) = schema.get("type").and_then(|t| t.as_str()) {
            out.push(type_error(field, t, v));
            return;
        }
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !matches!(type_name(v), "integer" | "string") {
            out.push(cause(
                "FieldValueTypeInvalid",
                field,
                format!(
                    "Invalid value: {}: {field} in body must be of type integer,string: {}",
                    go_quote(type_name(v)),
                    go_quote(type_name(v))
                ),
            ));
            return;
        }
    } else if let Some(t) = schema.get("type").and_then(|t| t.as_str()) {
        if !type_ok(t, v) {
            out.push(type_error(field, t, v));
            return;
        }
    }
    if let Some(e) = schema.get("enum").and_then(|e| e.as_array()) {
        if !e.contains(v) {
            let allowed: Vec<String> = e.iter().map(render).collect();
            out.push(cause(
                "FieldValueNotSupported",
                field,
                format!(
                    "Unsupported value: {}: supported values: {}",
                    render(v),
                    allowed.join(", ")
                ),
            ));
        }
    }
    match v {
        Value::String(s) => validate_string(schema, s, v, field, out),
        Value::Number(n) => validate_number(schema, n.as_f64().unwrap_or(0.0), v, field, out),
        Value::Array(a) => validate_array(schema, a, v, path, field, out),
        Value::Object(m) => validate_object(schema, m, v, path, field, root, out),
        _ => {}
    }
}

fn type_error(field: &str, want: &str, v: &Value) -> FieldCause {
    let got = type_name(v);
    cause(
        "FieldValueTypeInvalid",
        field,
        format!(
            "Invalid value: {}: {field} in body must be of type {want}: {}",
            go_quote(got),
            go_quote(got)
        ),
    )
}

fn validate_string(schema: &Value, s: &str, v: &Value, field: &str, out: &mut Vec<FieldCause>) {
    let chars = s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(|m| m.as_u64()) {
        if chars > max {
            out.push(cause(
                "FieldValueTooLong",
                field,
                format!("Too long: may not be more than {max} bytes"),
            ));
        }
    }
    if let Some(min) = schema.get("minLength").and_then(|m| m.as_u64()) {
        if chars < min {
            out.push(invalid(
                field,
                v,
                format!("{field} in body should be at least {min} chars long"),
            ));
        }
    }
    if let Some(p) = schema.get("pattern").and_then(|p| p.as_str()) {
        match compiled_pattern(p) {
            Ok(re) if re.is_match(s) => {}
            Ok(_) => out.push(invalid(
                field,
                v,
                format!("{field} in body should match '{p}'"),
            )),
            Err(_) => out.push(invalid(
                field,
                v,
                format!("{field} in body has a pattern that cannot be compiled: '{p}'"),
            )),
        }
    }
}

/// Schema patterns compiled once (every create of a custom object checks them); bounded,
/// cleared when full.
fn compiled_pattern(p: &str) -> Result<regex::Regex, regex::Error> {
    static CACHE: LazyLock<Mutex<HashMap<String, regex::Regex>>> = LazyLock::new(Default::default);
    if let Some(re) = CACHE.lock().ok().and_then(|c| c.get(p).cloned()) {
        return Ok(re);
    }
    let re = regex::Regex::new(p)?;
    if let Ok(mut c) = CACHE.lock() {
        if c.len() >= 1024 {
            c.clear();
        }
        c.insert(p.to_string(), re.clone());
    }
    Ok(re)
}

fn validate_number(schema: &Value, x: f64, v: &Value, field: &str, out: &mut Vec<FieldCause>) {
    if let Some(m) = schema.get("multipleOf").and_then(|m| m.as_f64()) {
        if m > 0.0 && (x / m).fract() != 0.0 {
            out.push(invalid(
                field,
                v,
                format!("{field} in body should be a multiple of {}", number(m)),
            ));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(|m| m.as_f64()) {
        let excl = flag(schema, "exclusiveMaximum");
        if x > max || (excl && x == max) {
            let how = if excl {
                "less than"
            } else {
                "less than or equal to"
            };
            out.push(invalid(
                field,
                v,
                format!("{field} in body should be {how} {}", number(max)),
            ));
        }
    }
    if let Some(min) = schema.get("minimum").and_then(|m| m.as_f64()) {
        let excl = flag(schema, "exclusiveMinimum");
        if x < min || (excl && x == min) {
            let how = if excl {
                "greater than"
            } else {
                "greater than or equal to"
            };
            out.push(invalid(
                field,
                v,
                format!("{field} in body should be {how} {}", number(min)),
            ));
        }
    }
}

fn validate_array(
    schema: &Value,
    a: &[Value],
    v: &Value,
    path: &str,
    field: &str,
    out: &mut Vec<FieldCause>,
) {
    let n = a.len() as u64;
    if let Some(max) = schema.get("maxItems").and_then(|m| m.as_u64()) {
        if n > max {
            out.push(cause(
                "FieldValueTooMany",
                field,
                format!("Too many: {n}: must have at most {max} items"),
            ));
        }
    }
    if let Some(min) = schema.get("minItems").and_then(|m| m.as_u64()) {
        if n < min {
            out.push(invalid(
                field,
                v,
                format!("{field} in body should have at least {min} items"),
            ));
        }
    }
    let set = schema
        .get("x-kubernetes-list-type")
        .and_then(|t| t.as_str())
        == Some("set");
    if flag(schema, "uniqueItems") || set {
        for (i, x) in a.iter().enumerate() {
            if a[..i].contains(x) {
                out.push(cause(
                    "FieldValueDuplicate",
                    &format!("{path}[{i}]"),
                    format!("Duplicate value: {}", render(x)),
                ));
            }
        }
    }
    if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
        for (i, x) in a.iter().enumerate() {
            validate_at(items, x, &format!("{path}[{i}]"), false, out);
        }
    }
}

fn validate_object(
    schema: &Value,
    m: &Map<String, Value>,
    v: &Value,
    path: &str,
    field: &str,
    root: bool,
    out: &mut Vec<FieldCause>,
) {
    let n = m.len() as u64;
    if let Some(max) = schema.get("maxProperties").and_then(|x| x.as_u64()) {
        if n > max {
            out.push(cause(
                "FieldValueTooMany",
                field,
                format!("Too many: {n}: must have at most {max} items"),
            ));
        }
    }
    if let Some(min) = schema.get("minProperties").and_then(|x| x.as_u64()) {
        if n < min {
            out.push(invalid(
                field,
                v,
                format!("{field} in body should have at least {min} properties"),
            ));
        }
    }
    if let Some(req) = schema.get("required").and_then(|r| r.as_array()) {
        for r in req.iter().filter_map(|r| r.as_str()) {
            if !m.contains_key(r) {
                out.push(cause(
                    "FieldValueRequired",
                    &join(path, r),
                    "Required value".into(),
                ));
            }
        }
    }
    let props = schema.get("properties").and_then(|p| p.as_object());
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    for k in keys {
        if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        let child = &m[k];
        match (props.and_then(|p| p.get(k)), additional) {
            (Some(cs), _) => validate_at(cs, child, &join(path, k), false, out),
            (None, Some(a)) => validate_at(a, child, &join(path, k), false, out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crontab_schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["cronSpec"], "properties": {
                "cronSpec": {"type": "string", "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$"},
                "image": {"type": "string"},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "port": {"x-kubernetes-int-or-string": true},
                "note": {"type": "string", "nullable": true, "maxLength": 3, "minLength": 2},
                "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
            "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}})
    }

    fn messages(c: &[FieldCause]) -> Vec<String> {
        c.iter().map(|c| c.error_string()).collect()
    }

    #[test]
    fn the_documented_crontab_errors() {
        let obj = json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab",
            "metadata": {"name": "x"},
            "spec": {"cronSpec": "* * * *", "image": 1, "replicas": 15}});
        assert_eq!(
            messages(&validate(&crontab_schema(), &obj)),
            vec![
                r#"spec.cronSpec: Invalid value: "* * * *": spec.cronSpec in body should match '^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$'"#,
                r#"spec.image: Invalid value: "integer": spec.image in body must be of type string: "integer""#,
                "spec.replicas: Invalid value: 15: spec.replicas in body should be less than or equal to 10",
            ]
        );
        let c = validate(&crontab_schema(), &obj);
        assert_eq!(c[1].reason, "FieldValueTypeInvalid");
    }

    #[test]
    fn required_enum_lengths_nullable_int_or_string() {
        let obj = json!({"spec": {"mode": "c", "port": true, "note": "long!",
            "tags": ["a", "b", "c"], "replicas": 0, "labels": {"a": 1}}});
        assert_eq!(
            messages(&validate(&crontab_schema(), &obj)),
            vec![
                "spec.cronSpec: Required value",
                r#"spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer""#,
                r#"spec.mode: Unsupported value: "c": supported values: "a", "b""#,
                "spec.note: Too long: may not be more than 3 bytes",
                r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
                "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
                "spec.tags: Too many: 3: must have at most 2 items",
            ]
        );
        let ok = json!({"spec": {"cronSpec": "* * * * */5", "port": "http", "note": null,
            "free": {"anything": [1, {"x": null}]}}});
        assert!(validate(&crontab_schema(), &ok).is_empty());
        let short = json!({"spec": {"cronSpec": "* * * * *", "note": "a", "image": null}});
        assert_eq!(
            messages(&validate(&crontab_schema(), &short)),
            vec![
                r#"spec.image: Invalid value: "null": spec.image in body must be of type string: "null""#,
                r#"spec.note: Invalid value: "a": spec.note in body should be at least 2 chars long"#,
            ]
        );
    }

    #[test]
    fn prunes_unknown_fields_but_keeps_preserved_and_meta() {
        let mut obj = json!({"apiVersion": "v", "kind": "K", "metadata": {"name": "x", "labels": {}},
            "spec": {"cronSpec": "x", "bogus": 1, "free": {"kept": {"deep": 1}},
                     "labels": {"a": "b"}, "tags": ["x"]},
            "extra": {"y": 1}});
        let pruned = prune(&crontab_schema(), &mut obj);
        assert_eq!(pruned, vec!["spec.bogus", "extra"]);
        assert!(obj.get("extra").is_none());
        assert!(obj.pointer("/spec/bogus").is_none());
        assert_eq!(obj.pointer("/spec/free/kept/deep"), Some(&json!(1)));
        assert_eq!(obj.pointer("/spec/labels/a"), Some(&json!("b")));
        assert_eq!(obj["metadata"]["name"], "x");
    }

    #[test]
    fn defaults_fill_absent_and_non_nullable_nulls() {
        let mut obj = json!({"spec": {"cronSpec": "x"}});
        apply_defaults(&crontab_schema(), &mut obj);
        assert_eq!(obj["spec"]["replicas"], 1);
        let mut obj = json!({"spec": {"replicas": null}});
        apply_defaults(&crontab_schema(), &mut obj);
        assert_eq!(obj["spec"]["replicas"], 1);
        let mut obj = json!({"spec": {"replicas": 3}});
        apply_defaults(&crontab_schema(), &mut obj);
        assert_eq!(obj["spec"]["replicas"], 3);
        // No parent object: nothing is created.
        let mut obj = json!({"metadata": {}});
        apply_defaults(&crontab_schema(), &mut obj);
        assert!(obj.get("spec").is_none());
    }
}
