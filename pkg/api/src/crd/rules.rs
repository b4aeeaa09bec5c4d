//! `x-kubernetes-validations`: the CEL rules of a CRD's structural schema. [`check`] refuses
//! a CRD whose rules do not compile (upstream's paths and texts, e.g.
//! `spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule:
//! Invalid value: apiextensions.ValidationRule{…}: compilation failed: ERROR: <input>:…`);
//! [`validate`] evaluates the rules on a custom object, each where its schema node has a
//! non-null value, with `self` bound to that value and, for transition rules on update,
//! `oldSelf` to the old value at the same place (object properties and map values always
//! correlate; list items only in `x-kubernetes-list-type: map` lists, by their keys). A false
//! rule is a field error worded as upstream's (`spec: Invalid value: "object": <message>`),
//! at `fieldPath` when given, with `reason`, the message from `messageExpression` when it
//! evaluates. At a resource root `self.metadata` holds only `name` and `generateName`.
//!
//! Simplified against upstream: no cost budget (see `crate::cel`), no ratcheting of
//! unchanged values, and `optionalOldSelf` is read as false.

use crate::cel::{self, Value as CelValue};
use crate::text::go_quote;
use crate::validation::FieldCause;
use serde_json::Value;

/// The variables a CRD rule may read.
pub const RULE_VARIABLES: &[&str] = &["self", "oldSelf"];

const REASONS: &[&str] = &[
    "FieldValueInvalid",
    "FieldValueForbidden",
    "FieldValueRequired",
    "FieldValueDuplicate",
];

fn cause(reason: &str, field: &str, message: String) -> FieldCause {
    FieldCause {
        reason: reason.into(),
        message,
        field: field.into(),
    }
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(|x| x.as_str()).unwrap_or("")
}

fn rules(schema: &Value) -> &[Value] {
    schema
        .get("x-kubernetes-validations")
        .and_then(|r| r.as_array())
        .map(|a| a.as_slice())
        .unwrap_or(&[])
}

/// Go's `%#v` of a rule, as upstream prints the bad value of a rule that does not compile.
/// (Go prints a set `reason` as a pointer address; a fixed one stands in for it.)
fn rule_value(r: &Value) -> String {
    let reason = if r.get("reason").is_some_and(|x| x.is_string()) {
        "(*apiextensions.FieldValueErrorReason)(0xc000000000)"
    } else {
        "(*apiextensions.FieldValueErrorReason)(nil)"
    };
    let optional = match r.get("optionalOldSelf").and_then(|x| x.as_bool()) {
        Some(_) => "(*bool)(0xc000000008)",
        None => "(*bool)(nil)",
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{reason}, FieldPath:{}, OptionalOldSelf:{optional}}}",
        go_quote(text(r, "rule")),
        go_quote(text(r, "message")),
        go_quote(text(r, "messageExpression")),
        go_quote(text(r, "fieldPath")),
    )
}

/// The rules of one schema node (at `path`, e.g. `spec.validation.openAPIV3Schema`) that a
/// CRD may not have: empty rules, bad messages, rules or message expressions that do not
/// compile, unknown reasons, field paths the schema does not declare. Only this node; the
/// caller walks the schema.
pub fn check(schema: &Value, path: &str) -> Vec<FieldCause> {
    let mut out = Vec::new();
    for (i, r) in rules(schema).iter().enumerate() {
        let at = format!("{path}.x-kubernetes-validations[{i}]");
        let rule = text(r, "rule").trim();
        let raw_msg = text(r, "message");
        let msg = raw_msg.trim();
        if rule.is_empty() {
            out.push(cause(
                "FieldValueRequired",
                &format!("{at}.rule"),
                "Required value: rule is not specified".into(),
            ));
        } else if !raw_msg.is_empty() && msg.is_empty() {
            out.push(cause(
                "FieldValueInvalid",
                &format!("{at}.message"),
                format!(
                    "Invalid value: {}: message must be non-empty if specified",
                    go_quote(raw_msg)
                ),
            ));
        } else if msg.contains('\n') {
            out.push(cause(
                "FieldValueInvalid",
                &format!("{at}.message"),
                format!(
                    "Invalid value: {}: message must not contain line breaks",
                    go_quote(raw_msg)
                ),
            ));
        } else if rule.contains('\n') && msg.is_empty() {
            out.push(cause(
                "FieldValueRequired",
                &format!("{at}.message"),
                "Required value: message must be specified if rule contains line breaks".into(),
            ));
        }
        let raw_expr = text(r, "messageExpression");
        if !raw_expr.is_empty() && raw_expr.trim().is_empty() {
            out.push(cause(
                "FieldValueRequired",
                &format!("{at}.messageExpression"),
                "Required value: messageExpression must be non-empty if specified".into(),
            ));
        }
        if let Some(reason) = r.get("reason").and_then(|x| x.as_str()) {
            if !REASONS.contains(&reason) {
                let q: Vec<String> = REASONS.iter().map(|s| go_quote(s)).collect();
                out.push(cause(
                    "FieldValueNotSupported",
                    &format!("{at}.reason"),
                    format!(
                        "Unsupported value: {}: supported values: {}",
                        go_quote(reason),
                        q.join(", ")
                    ),
                ));
            }
        }
        let fp = text(r, "fieldPath");
        if !fp.is_empty() {
            if let Err(why) = field_path(schema, fp) {
                out.push(cause(
                    "FieldValueInvalid",
                    &format!("{at}.fieldPath"),
                    format!("Invalid value: {}: {why}", go_quote(fp)),
                ));
            }
        }
        if rule.is_empty() {
            continue;
        }
        if let Err(detail) = cel::compile_cached(rule, RULE_VARIABLES) {
            out.push(cause(
                "FieldValueInvalid",
                &format!("{at}.rule"),
                format!("Invalid value: {}: {detail}", rule_value(r)),
            ));
        }
        if !raw_expr.trim().is_empty() {
            if let Err(detail) = cel::compile_cached(raw_expr.trim(), RULE_VARIABLES) {
                out.push(cause(
                    "FieldValueInvalid",
                    &format!("{at}.messageExpression"),
                    format!(
                        "Invalid value: {}: messageExpression {detail}",
                        rule_value(r)
                    ),
                ));
            }
        }
    }
    out
}

/// A rule's `fieldPath` (`.spec.x`, `.x['key']`) resolved against the schema of the node
/// the rule sits on, rendered as a field path suffix (`.x`, `[key]`).
fn field_path(schema: &Value, fp: &str) -> Result<String, String> {
    let invalid = || "fieldPath must be a valid path: does not refer to a valid field".to_string();
    let mut out = String::new();
    let mut node = schema;
    let mut rest = fp;
    while !rest.is_empty() {
        let (name, after) = if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']").ok_or_else(invalid)?;
            (&r[..end], &r[end + 2..])
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            (&r[..end], &r[end..])
        } else {
            return Err(invalid());
        };
        if name.is_empty() {
            return Err(invalid());
        }
        if let Some(p) = node.get("properties").and_then(|p| p.get(name)) {
            out.push('.');
            out.push_str(name);
            node = p;
        } else if let Some(a) = node.get("additionalProperties").filter(|a| a.is_object()) {
            out.push_str(&format!("[{name}]"));
            node = a;
        } else {
            return Err(invalid());
        }
        rest = after;
    }
    Ok(out)
}

/// Evaluates every rule of `schema` on the custom object `obj` (`old`: the stored object on
/// update, for transition rules).
pub fn validate(schema: &Value, obj: &Value, old: Option<&Value>) -> Vec<FieldCause> {
    let mut out = Vec::new();
    walk(schema, obj, old, "", true, &mut out);
    out
}

/// True when a schema has a rule anywhere (lets callers skip the walk).
pub fn has_rules(schema: &Value) -> bool {
    if !rules(schema).is_empty() {
        return true;
    }
    let children = schema
        .get("properties")
        .and_then(|p| p.as_object())
        .into_iter()
        .flat_map(|p| p.values());
    children
        .chain(schema.get("items").filter(|i| i.is_object()))
        .chain(schema.get("additionalProperties").filter(|a| a.is_object()))
        .any(has_rules)
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

/// What `self` sees at a resource root: `metadata` reduced to `name` and `generateName`.
fn resource_root(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get("metadata").and_then(|m| m.as_object()) {
        let mut kept = serde_json::Map::new();
        for k in ["name", "generateName"] {
            if let Some(x) = m.get(k) {
                kept.insert(k.into(), x.clone());
            }
        }
        v["metadata"] = Value::Object(kept);
    }
    v
}

fn walk(
    schema: &Value,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    resource: bool,
    out: &mut Vec<FieldCause>,
) {
    if v.is_null() {
        return;
    }
    let old = old.filter(|o| !o.is_null());
    if !rules(schema).is_empty() {
        if resource {
            let (v, old) = (resource_root(v), old.map(resource_root));
            eval_rules(schema, &v, old.as_ref(), path, out);
        } else {
            eval_rules(schema, v, old, path, out);
        }
    }
    match v {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(|p| p.as_object());
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, child) in m {
                let sub = match (props.and_then(|p| p.get(k)), additional) {
                    (Some(s), _) => s,
                    (None, Some(a)) if props.is_none() => a,
                    _ => continue,
                };
                let field = if props.is_some() {
                    join(path, k)
                } else {
                    format!("{path}[{k}]")
                };
                let old_child = old.and_then(|o| o.get(k));
                let embedded = sub
                    .get("x-kubernetes-embedded-resource")
                    .and_then(|x| x.as_bool())
                    .unwrap_or(false);
                walk(sub, child, old_child, &field, embedded, out);
            }
        }
        Value::Array(a) => {
            let Some(items) = schema.get("items").filter(|i| i.is_object()) else {
                return;
            };
            let keys: Vec<&str> = if schema
                .get("x-kubernetes-list-type")
                .and_then(|t| t.as_str())
                == Some("map")
            {
                schema
                    .get("x-kubernetes-list-map-keys")
                    .and_then(|k| k.as_array())
                    .map(|k| k.iter().filter_map(|x| x.as_str()).collect())
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            let embedded = items
                .get("x-kubernetes-embedded-resource")
                .and_then(|x| x.as_bool())
                .unwrap_or(false);
            for (i, child) in a.iter().enumerate() {
                let old_child = if keys.is_empty() {
                    None
                } else {
                    old.and_then(|o| o.as_array()).and_then(|olds| {
                        olds.iter()
                            .find(|o| keys.iter().all(|k| o.get(k) == child.get(k)))
                    })
                };
                walk(
                    items,
                    child,
                    old_child,
                    &format!("{path}[{i}]"),
                    embedded,
                    out,
                );
            }
        }
        _ => {}
    }
}

fn eval_rules(
    schema: &Value,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    out: &mut Vec<FieldCause>,
) {
    let field = if path.is_empty() { "<nil>" } else { path };
    let ty = go_quote(text(schema, "type"));
    let self_val = cel::to_cel(v);
    let old_val = old.map(cel::to_cel);
    let mut vars: Vec<(&str, &CelValue)> = vec![("self", &self_val)];
    if let Some(o) = &old_val {
        vars.push(("oldSelf", o));
    }
    for r in rules(schema) {
        let rule = text(r, "rule").trim();
        if rule.is_empty() {
            continue;
        }
        let shown = match text(r, "message").trim() {
            "" => rule,
            m => m,
        };
        let expr = match cel::compile_cached(rule, RULE_VARIABLES) {
            Ok(e) => e,
            Err(e) => {
                out.push(cause(
                    "FieldValueInvalid",
                    field,
                    format!("Invalid value: {ty}: rule compile error: {e}"),
                ));
                continue;
            }
        };
        if expr.uses("oldSelf") && old_val.is_none() {
            continue;
        }
        match expr.eval_bool(&vars) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) if e.starts_with("no such overload") => {
                out.push(cause(
                    "FieldValueInvalid",
                    field,
                    format!("Invalid value: {ty}: '{e}': call arguments did not match a supported operator, function or macro signature for rule: {shown}"),
                ));
                continue;
            }
            Err(e) => {
                out.push(cause(
                    "FieldValueInvalid",
                    field,
                    format!("Invalid value: {ty}: {e} evaluating rule: {shown}"),
                ));
                continue;
            }
        }
        let mut at = field.to_string();
        let fp = text(r, "fieldPath");
        if !fp.is_empty() {
            if let Ok(suffix) = field_path(schema, fp) {
                at = if path.is_empty() {
                    suffix.trim_start_matches('.').to_string()
                } else {
                    format!("{path}{suffix}")
                };
            }
        }
        let mut detail = None;
        let mexpr = text(r, "messageExpression").trim();
        if !mexpr.is_empty() {
            if let Ok(m) = cel::compile_cached(mexpr, RULE_VARIABLES) {
                detail = m
                    .eval_string(&vars)
                    .ok()
                    .filter(|s| !s.is_empty() && !s.contains('\n'));
            }
        }
        let detail = detail.unwrap_or_else(|| match text(r, "message").trim() {
            "" => format!("failed rule: {rule}"),
            m => m.to_string(),
        });
        out.push(match text(r, "reason") {
            "FieldValueForbidden" => {
                cause("FieldValueForbidden", &at, format!("Forbidden: {detail}"))
            }
            "FieldValueRequired" => cause(
                "FieldValueRequired",
                &at,
                format!("Required value: {detail}"),
            ),
            "FieldValueDuplicate" => {
                cause("FieldValueDuplicate", &at, format!("Duplicate value: {ty}"))
            }
            _ => cause(
                "FieldValueInvalid",
                &at,
                format!("Invalid value: {ty}: {detail}"),
            ),
        });
    }
}

/// Upstream's cause when schema errors keep the rules from running (a wrong type, a missing
/// required field, an unsupported enum value, too long or too many).
pub fn blocked_by(schema_errors: &[FieldCause]) -> Option<FieldCause> {
    let blocking = schema_errors.iter().any(|c| {
        matches!(
            c.reason.as_str(),
            "FieldValueNotSupported"
                | "FieldValueRequired"
                | "FieldValueTooLong"
                | "FieldValueTooMany"
                | "FieldValueTypeInvalid"
        )
    });
    blocking.then(|| {
        cause(
            "FieldValueInvalid",
            "<nil>",
            "Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation".into(),
        )
    })
}

/// A schema with a rule, for tests elsewhere in the crate.
#[cfg(test)]
pub(crate) fn sample_schema() -> Value {
    serde_json::json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.minReplicas <= self.replicas", "message": "replicas should be greater than or equal to minReplicas"},
            {"rule": "self.replicas <= self.maxReplicas", "messageExpression": "'replicas ' + string(self.replicas) + ' exceeds ' + string(self.maxReplicas)", "fieldPath": ".replicas"}],
        "properties": {
            "replicas": {"type": "integer"},
            "minReplicas": {"type": "integer"},
            "maxReplicas": {"type": "integer",
                "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "maxReplicas may only grow", "reason": "FieldValueForbidden"}]},
            "name": {"type": "string", "x-kubernetes-validations": [{"rule": "self.size() < 5"}]},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                    "x-kubernetes-validations": [{"rule": "self.port == oldSelf.port", "message": "port is immutable"}]}}}}}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgs(c: &[FieldCause]) -> Vec<String> {
        c.iter().map(|c| c.error_string()).collect()
    }

    #[test]
    fn rules_with_messages_field_paths_and_expressions() {
        let s = sample_schema();
        let ok = json!({"spec": {"replicas": 3, "minReplicas": 1, "maxReplicas": 5, "name": "a"}});
        assert!(validate(&s, &ok, None).is_empty());
        let bad = json!({"spec": {"replicas": 7, "minReplicas": 8, "maxReplicas": 5, "name": "long-name"}});
        assert_eq!(
            msgs(&validate(&s, &bad, None)),
            vec![
                r#"spec: Invalid value: "object": replicas should be greater than or equal to minReplicas"#,
                r#"spec.replicas: Invalid value: "object": replicas 7 exceeds 5"#,
                r#"spec.name: Invalid value: "string": failed rule: self.size() < 5"#,
            ]
        );
    }

    #[test]
    fn transition_rules_only_on_update_and_correlated() {
        let s = sample_schema();
        let old = json!({"spec": {"replicas": 3, "minReplicas": 1, "maxReplicas": 5,
            "ports": [{"name": "http", "port": 80}]}});
        let new = json!({"spec": {"replicas": 3, "minReplicas": 1, "maxReplicas": 4,
            "ports": [{"name": "grpc", "port": 9}, {"name": "http", "port": 81}]}});
        assert!(validate(&s, &new, None).is_empty());
        assert_eq!(
            msgs(&validate(&s, &new, Some(&old))),
            vec![
                "spec.maxReplicas: Forbidden: maxReplicas may only grow",
                r#"spec.ports[1]: Invalid value: "object": port is immutable"#,
            ]
        );
    }

    #[test]
    fn runtime_errors_and_root_rules() {
        let s = json!({"type": "object",
            "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('ok')"},
                {"rule": "self.spec.x > 1", "message": "x must be above 1"}],
            "properties": {"spec": {"type": "object", "properties": {"x": {"type": "integer"}}}}});
        let obj = json!({"metadata": {"name": "bad", "namespace": "n"}, "spec": {}});
        assert_eq!(
            msgs(&validate(&s, &obj, None)),
            vec![
                r#"<nil>: Invalid value: "object": failed rule: self.metadata.name.startsWith('ok')"#,
                r#"<nil>: Invalid value: "object": no such key: x evaluating rule: x must be above 1"#,
            ]
        );
        let hidden = json!({"type": "object",
            "x-kubernetes-validations": [{"rule": "has(self.metadata.namespace)"}]});
        assert_eq!(validate(&hidden, &obj, None).len(), 1);
    }

    #[test]
    fn crd_checks() {
        let s = json!({"type": "object", "x-kubernetes-validations": [
            {"rule": "self.replicas <"},
            {"rule": ""},
            {"rule": "self.a == 1", "reason": "Nope", "fieldPath": ".missing"},
            {"rule": "self.a == 1", "messageExpression": "'a' +"}],
            "properties": {"a": {"type": "integer"}}});
        let got = msgs(&check(&s, "spec.validation.openAPIV3Schema"));
        assert_eq!(got.len(), 5, "{got:#?}");
        assert!(got[0].starts_with(
            r#"spec.validation.openAPIV3Schema.x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:"self.replicas <", Message:"", MessageExpression:"", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:16: Syntax error: mismatched input '<EOF>'"#
        ), "{}", got[0]);
        assert_eq!(
            got[1],
            "spec.validation.openAPIV3Schema.x-kubernetes-validations[1].rule: Required value: rule is not specified"
        );
        assert_eq!(
            got[2],
            r#"spec.validation.openAPIV3Schema.x-kubernetes-validations[2].reason: Unsupported value: "Nope": supported values: "FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate""#
        );
        assert_eq!(
            got[3],
            r#"spec.validation.openAPIV3Schema.x-kubernetes-validations[2].fieldPath: Invalid value: ".missing": fieldPath must be a valid path: does not refer to a valid field"#
        );
        assert!(got[4].contains("x-kubernetes-validations[3].messageExpression: Invalid value: apiextensions.ValidationRule{"));
        assert!(got[4].contains(": messageExpression compilation failed: ERROR: <input>:1:"));
        assert!(has_rules(&sample_schema()));
        assert!(!has_rules(
            &json!({"type": "object", "properties": {"a": {"type": "string"}}})
        ));
    }

    #[test]
    fn schema_errors_block_rules() {
        let c = cause(
            "FieldValueTypeInvalid",
            "spec.x",
            "Invalid value: ...".into(),
        );
        assert_eq!(
            blocked_by(&[c]).unwrap().error_string(),
            "<nil>: Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"
        );
        let c = cause(
            "FieldValueInvalid",
            "spec.x",
            "Invalid value: 1: too big".into(),
        );
        assert!(blocked_by(&[c]).is_none());
    }
}
