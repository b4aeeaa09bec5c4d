//! ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding
//! (`admissionregistration.k8s.io/v1`), the pure parts: upstream's defaults, validation of
//! both objects (CEL that does not compile is refused at create, with the expression's path),
//! matching of `matchConstraints`/`matchResources` (the webhook rule matcher, plus
//! `excludeResourceRules` and `resourceNames`), and the evaluation of one policy on a request:
//! `variables`, `matchConditions`, then each validation (`message`, `messageExpression`,
//! `reason`), giving the denials as upstream words them (`failed expression: <expr>`).
//!
//! Not modelled: `auditAnnotations` are validated but not evaluated, `authorizer` is not
//! declared (an expression using it is refused at create), and `status.typeChecking` is never
//! written.

use super::{compile_cached, to_cel, Value as CelValue};
use crate::text::go_quote;
use crate::validation::FieldCause;
use crate::webhook::{rule_matches, selector_matches, Attributes};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The variables a policy's expressions may read.
pub const VARIABLES: &[&str] = &[
    "object",
    "oldObject",
    "request",
    "params",
    "namespaceObject",
    "variables",
];

const REASONS: &[&str] = &[
    "Unauthorized",
    "Forbidden",
    "Invalid",
    "RequestEntityTooLarge",
];
const ACTIONS: &[&str] = &["Deny", "Warn", "Audit"];

fn cause(reason: &str, field: &str, message: String) -> FieldCause {
    FieldCause {
        reason: reason.into(),
        message,
        field: field.into(),
    }
}

fn text<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(|x| x.as_str()).unwrap_or("")
}

fn set_default(m: &mut Map<String, Value>, k: &str, v: Value) {
    if m.get(k).is_none_or(|x| x.is_null()) {
        m.insert(k.into(), v);
    }
}

fn default_match_resources(m: &mut Value) {
    let Some(mr) = m.as_object_mut() else { return };
    set_default(mr, "matchPolicy", json!("Equivalent"));
    set_default(mr, "namespaceSelector", json!({}));
    set_default(mr, "objectSelector", json!({}));
    for key in ["resourceRules", "excludeResourceRules"] {
        if let Some(rules) = mr.get_mut(key).and_then(|r| r.as_array_mut()) {
            for r in rules.iter_mut().filter_map(|r| r.as_object_mut()) {
                set_default(r, "scope", json!("*"));
            }
        }
    }
}

/// Upstream's v1 defaults: `failurePolicy: Fail`; match resources with `matchPolicy:
/// Equivalent`, empty selectors and rule scope `*` (the policy's `matchConstraints`, a
/// binding's `matchResources` when set).
pub fn apply_defaults(obj: &mut Value, binding: bool) {
    let Some(spec) = obj.get_mut("spec").and_then(|s| s.as_object_mut()) else {
        return;
    };
    if binding {
        if let Some(m) = spec.get_mut("matchResources") {
            default_match_resources(m);
        }
        return;
    }
    set_default(spec, "failurePolicy", json!("Fail"));
    if let Some(m) = spec.get_mut("matchConstraints") {
        default_match_resources(m);
    }
}

fn not_supported(field: &str, bad: &str, valid: &[&str]) -> FieldCause {
    let q: Vec<String> = valid.iter().map(|s| go_quote(s)).collect();
    cause(
        "FieldValueNotSupported",
        field,
        format!(
            "Unsupported value: {}: supported values: {}",
            go_quote(bad),
            q.join(", ")
        ),
    )
}

fn compile_check(out: &mut Vec<FieldCause>, field: &str, expr: &str) {
    if expr.trim().is_empty() {
        out.push(cause(
            "FieldValueRequired",
            field,
            "Required value: expression is not specified".into(),
        ));
    } else if let Err(detail) = compile_cached(expr, VARIABLES) {
        out.push(cause(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {}: {detail}", go_quote(expr)),
        ));
    }
}

fn items<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(|x| x.as_array())
        .map(|a| a.as_slice())
        .unwrap_or(&[])
}

fn check_rules(out: &mut Vec<FieldCause>, rules: &[Value], path: &str) {
    for (i, r) in rules.iter().enumerate() {
        let p = format!("{path}[{i}]");
        for k in ["apiGroups", "apiVersions", "operations", "resources"] {
            if items(r, &format!("/{k}")).is_empty() {
                out.push(cause(
                    "FieldValueRequired",
                    &format!("{p}.{k}"),
                    "Required value".into(),
                ));
            }
        }
        for (j, op) in items(r, "/operations").iter().enumerate() {
            let op = op.as_str().unwrap_or("");
            let ok = ["*", "CREATE", "UPDATE", "DELETE", "CONNECT"];
            if !ok.contains(&op) {
                out.push(not_supported(&format!("{p}.operations[{j}]"), op, &ok));
            }
        }
    }
}

/// Validation of a ValidatingAdmissionPolicy (upstream's paths and texts).
pub fn validate_policy(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let fp = text(obj, "/spec/failurePolicy");
    if !fp.is_empty() && fp != "Fail" && fp != "Ignore" {
        out.push(not_supported("spec.failurePolicy", fp, &["Fail", "Ignore"]));
    }
    if let Some(pk) = obj.pointer("/spec/paramKind") {
        for (k, name) in [("/apiVersion", "apiVersion"), ("/kind", "kind")] {
            if text(pk, k).is_empty() {
                out.push(cause(
                    "FieldValueRequired",
                    &format!("spec.paramKind.{name}"),
                    "Required value".into(),
                ));
            }
        }
    }
    match obj.pointer("/spec/matchConstraints") {
        None => out.push(cause(
            "FieldValueRequired",
            "spec.matchConstraints",
            "Required value".into(),
        )),
        Some(mc) => {
            let rules = items(mc, "/resourceRules");
            if rules.is_empty() {
                out.push(cause(
                    "FieldValueRequired",
                    "spec.matchConstraints.resourceRules",
                    "Required value".into(),
                ));
            }
            check_rules(&mut out, rules, "spec.matchConstraints.resourceRules");
        }
    }
    let validations = items(obj, "/spec/validations");
    if validations.is_empty() && items(obj, "/spec/auditAnnotations").is_empty() {
        out.push(cause(
            "FieldValueRequired",
            "spec.validations",
            "Required value: validations or auditAnnotations must contain at least one item".into(),
        ));
    }
    for (i, v) in validations.iter().enumerate() {
        let p = format!("spec.validations[{i}]");
        compile_check(&mut out, &format!("{p}.expression"), text(v, "/expression"));
        let me = text(v, "/messageExpression");
        if !me.is_empty() {
            compile_check(&mut out, &format!("{p}.messageExpression"), me);
        }
        let msg = text(v, "/message");
        if msg.contains('\n') {
            out.push(cause(
                "FieldValueInvalid",
                &format!("{p}.message"),
                format!(
                    "Invalid value: {}: message must not contain line breaks",
                    go_quote(msg)
                ),
            ));
        }
        let reason = text(v, "/reason");
        if !reason.is_empty() && !REASONS.contains(&reason) {
            out.push(not_supported(&format!("{p}.reason"), reason, REASONS));
        }
    }
    for (i, m) in items(obj, "/spec/matchConditions").iter().enumerate() {
        let p = format!("spec.matchConditions[{i}]");
        if text(m, "/name").is_empty() {
            out.push(cause(
                "FieldValueRequired",
                &format!("{p}.name"),
                "Required value".into(),
            ));
        }
        compile_check(&mut out, &format!("{p}.expression"), text(m, "/expression"));
    }
    for (i, v) in items(obj, "/spec/variables").iter().enumerate() {
        let p = format!("spec.variables[{i}]");
        if text(v, "/name").is_empty() {
            out.push(cause(
                "FieldValueRequired",
                &format!("{p}.name"),
                "Required value: name is not specified".into(),
            ));
        }
        compile_check(&mut out, &format!("{p}.expression"), text(v, "/expression"));
    }
    out
}

/// Validation of a ValidatingAdmissionPolicyBinding (upstream's paths and texts).
pub fn validate_binding(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    if text(obj, "/spec/policyName").is_empty() {
        out.push(cause(
            "FieldValueRequired",
            "spec.policyName",
            "Required value".into(),
        ));
    }
    let actions: Vec<&str> = items(obj, "/spec/validationActions")
        .iter()
        .map(|a| a.as_str().unwrap_or(""))
        .collect();
    if actions.is_empty() {
        out.push(cause(
            "FieldValueRequired",
            "spec.validationActions",
            "Required value: at least one validation action is required".into(),
        ));
    }
    for (i, a) in actions.iter().enumerate() {
        if !ACTIONS.contains(a) {
            out.push(not_supported(
                &format!("spec.validationActions[{i}]"),
                a,
                ACTIONS,
            ));
        } else if actions[..i].contains(a) {
            out.push(cause(
                "FieldValueDuplicate",
                &format!("spec.validationActions[{i}]"),
                format!("Duplicate value: {}", go_quote(a)),
            ));
        }
    }
    if actions.contains(&"Deny") && actions.contains(&"Warn") {
        let shown: Vec<String> = actions.iter().map(|a| go_quote(a)).collect();
        out.push(cause(
            "FieldValueInvalid",
            "spec.validationActions",
            format!("Invalid value: []string{{{}}}: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)", shown.join(", ")),
        ));
    }
    if let Some(pr) = obj.pointer("/spec/paramRef") {
        if pr.get("name").is_some() && pr.get("selector").is_some() {
            out.push(cause(
                "FieldValueForbidden",
                "spec.paramRef.name",
                "Forbidden: name and selector are mutually exclusive".into(),
            ));
        }
        if pr.get("name").is_none() && pr.get("selector").is_none() {
            out.push(cause(
                "FieldValueRequired",
                "spec.paramRef",
                "Required value: one of name or selector must be set".into(),
            ));
        }
        match text(pr, "/parameterNotFoundAction") {
            "Allow" | "Deny" => {}
            "" => out.push(cause(
                "FieldValueRequired",
                "spec.paramRef.parameterNotFoundAction",
                "Required value".into(),
            )),
            other => out.push(not_supported(
                "spec.paramRef.parameterNotFoundAction",
                other,
                &["Allow", "Deny"],
            )),
        }
    }
    if let Some(mr) = obj.pointer("/spec/matchResources") {
        check_rules(
            &mut out,
            items(mr, "/resourceRules"),
            "spec.matchResources.resourceRules",
        );
    }
    out
}

/// Whether a `matchConstraints`/`matchResources` block matches a request, given the labels
/// of the request's namespace (or of the Namespace object). An absent block matches.
pub fn resources_match(
    m: Option<&Value>,
    a: &Attributes,
    ns_labels: Option<&Value>,
    obj: Option<&Value>,
    old: Option<&Value>,
) -> bool {
    let Some(m) = m else { return true };
    let named = |r: &Value| {
        let names = items(r, "/resourceNames");
        names.is_empty() || names.iter().any(|n| n.as_str() == Some(a.name.as_str()))
    };
    let rules = items(m, "/resourceRules");
    if !rules.is_empty() && !rules.iter().any(|r| rule_matches(r, a) && named(r)) {
        return false;
    }
    if items(m, "/excludeResourceRules")
        .iter()
        .any(|r| rule_matches(r, a) && named(r))
    {
        return false;
    }
    let is_namespace = a.group.is_empty() && a.resource == "namespaces";
    if (a.namespaced || is_namespace) && !selector_matches(m.get("namespaceSelector"), ns_labels) {
        return false;
    }
    let sel = m.get("objectSelector");
    [obj, old]
        .into_iter()
        .flatten()
        .any(|o| selector_matches(sel, o.pointer("/metadata/labels")))
        || (obj.is_none() && old.is_none())
}

/// What a policy's expressions see.
pub struct Inputs {
    pub object: CelValue,
    pub old_object: CelValue,
    pub request: CelValue,
    pub params: CelValue,
    pub namespace_object: CelValue,
}

impl Inputs {
    /// Inputs from JSON (absent objects are CEL `null`).
    pub fn new(
        object: Option<&Value>,
        old: Option<&Value>,
        request: &Value,
        params: Option<&Value>,
        namespace: Option<&Value>,
    ) -> Inputs {
        let c = |v: Option<&Value>| v.map(to_cel).unwrap_or(CelValue::Null);
        Inputs {
            object: c(object),
            old_object: c(old),
            request: to_cel(request),
            params: c(params),
            namespace_object: c(namespace),
        }
    }
}

/// One result of evaluating a policy that keeps a request from passing cleanly.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A validation evaluated to false: the message and the Status reason.
    Fail { message: String, reason: String },
    /// An expression could not be evaluated (the failure policy decides).
    Error(String),
}

/// Evaluates one policy: its variables, its match conditions (a false one: the policy does
/// not apply, no decisions), then every validation.
pub fn evaluate(spec: &Value, inputs: &Inputs) -> Vec<Decision> {
    let mut variables: HashMap<::cel::objects::Key, CelValue> = HashMap::new();
    let env = |variables: &HashMap<::cel::objects::Key, CelValue>| {
        CelValue::Map(::cel::objects::Map {
            map: Arc::new(variables.clone()),
        })
    };
    for v in items(spec, "/variables") {
        let name = text(v, "/name");
        let Ok(e) = compile_cached(text(v, "/expression"), VARIABLES) else {
            continue;
        };
        let vars = env(&variables);
        if let Ok(val) = e.eval(&bindings(inputs, &vars)) {
            variables.insert(::cel::objects::Key::String(Arc::new(name.into())), val);
        }
    }
    let vars = env(&variables);
    let b = bindings(inputs, &vars);
    for m in items(spec, "/matchConditions") {
        let src = text(m, "/expression");
        let outcome = compile_cached(src, VARIABLES).and_then(|e| e.eval_bool(&b));
        match outcome {
            Ok(true) => {}
            Ok(false) => return Vec::new(),
            Err(e) => {
                return vec![Decision::Error(format!(
                "failed to evaluate matchCondition {}: expression '{src}' resulted in error: {e}",
                go_quote(text(m, "/name"))
            ))]
            }
        }
    }
    let mut out = Vec::new();
    for v in items(spec, "/validations") {
        let src = text(v, "/expression").trim();
        let outcome = compile_cached(src, VARIABLES).and_then(|e| e.eval_bool(&b));
        match outcome {
            Ok(true) => {}
            Ok(false) => {
                let mut message = None;
                let me = text(v, "/messageExpression");
                if !me.is_empty() {
                    message = compile_cached(me, VARIABLES)
                        .and_then(|e| e.eval_string(&b))
                        .ok()
                        .filter(|m| !m.is_empty() && !m.contains('\n'));
                }
                let message = message.unwrap_or_else(|| match text(v, "/message").trim() {
                    "" => format!("failed expression: {src}"),
                    m => m.to_string(),
                });
                let reason = match text(v, "/reason") {
                    "" => "Invalid".to_string(),
                    r => r.to_string(),
                };
                out.push(Decision::Fail { message, reason });
            }
            Err(e) => out.push(Decision::Error(format!(
                "expression '{src}' resulted in error: {e}"
            ))),
        }
    }
    out
}

fn bindings<'a>(inputs: &'a Inputs, vars: &'a CelValue) -> Vec<(&'static str, &'a CelValue)> {
    vec![
        ("object", &inputs.object),
        ("oldObject", &inputs.old_object),
        ("request", &inputs.request),
        ("params", &inputs.params),
        ("namespaceObject", &inputs.namespace_object),
        ("variables", vars),
    ]
}

/// The HTTP code of a denial's Status reason.
pub fn reason_code(reason: &str) -> u16 {
    match reason {
        "Unauthorized" => 401,
        "Forbidden" => 403,
        "RequestEntityTooLarge" => 413,
        _ => 422,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Value {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "max-replicas"},
            "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": ["apps"],
                    "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                    "resources": ["deployments"]}]},
                "variables": [{"name": "limit", "expression": "params == null ? 5 : int(params.data.max)"}],
                "matchConditions": [{"name": "not-system", "expression": "request.namespace != 'kube-system'"}],
                "validations": [
                    {"expression": "object.spec.replicas <= variables.limit"},
                    {"expression": "object.metadata.name.size() < 10", "message": "name too long", "reason": "Forbidden"},
                    {"expression": "has(object.metadata.labels)", "messageExpression": "'labels missing on ' + object.metadata.name"}]}})
    }

    fn attrs(ns: &str) -> Attributes {
        Attributes {
            operation: "CREATE".into(),
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            resource: "deployments".into(),
            namespaced: true,
            namespace: ns.into(),
            name: "web".into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_validation() {
        let mut p = policy();
        apply_defaults(&mut p, false);
        assert_eq!(p["spec"]["failurePolicy"], "Fail");
        assert_eq!(p["spec"]["matchConstraints"]["matchPolicy"], "Equivalent");
        assert_eq!(
            p["spec"]["matchConstraints"]["resourceRules"][0]["scope"],
            "*"
        );
        assert!(validate_policy(&p).is_empty(), "{:?}", validate_policy(&p));
        let bad = json!({"spec": {"failurePolicy": "Never", "validations": [
            {"expression": "object.spec.replicas <"}, {"expression": "authorizer.allowed()"}]}});
        let got: Vec<String> = validate_policy(&bad)
            .iter()
            .map(|c| c.error_string())
            .collect();
        assert_eq!(
            got[0],
            r#"spec.failurePolicy: Unsupported value: "Never": supported values: "Fail", "Ignore""#
        );
        assert_eq!(got[1], "spec.matchConstraints: Required value");
        assert!(got[2].starts_with(r#"spec.validations[0].expression: Invalid value: "object.spec.replicas <": compilation failed: ERROR: <input>:1:23: Syntax error:"#), "{}", got[2]);
        assert!(
            got[3].contains("undeclared reference to 'authorizer'"),
            "{}",
            got[3]
        );
        let b = json!({"spec": {"policyName": "p", "validationActions": ["Deny", "Warn", "Nope"],
            "paramRef": {"name": "x"}}});
        let got: Vec<String> = validate_binding(&b)
            .iter()
            .map(|c| c.error_string())
            .collect();
        assert_eq!(
            got,
            vec![
                r#"spec.validationActions[2]: Unsupported value: "Nope": supported values: "Deny", "Warn", "Audit""#.to_string(),
                r#"spec.validationActions: Invalid value: []string{"Deny", "Warn", "Nope"}: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)"#.into(),
                "spec.paramRef.parameterNotFoundAction: Required value".into(),
            ]
        );
    }

    #[test]
    fn matching() {
        let p = policy();
        let mc = p.pointer("/spec/matchConstraints");
        let obj = json!({"metadata": {"name": "web", "labels": {"a": "b"}}});
        assert!(resources_match(
            mc,
            &attrs("default"),
            None,
            Some(&obj),
            None
        ));
        let mut a = attrs("default");
        a.resource = "replicasets".into();
        assert!(!resources_match(mc, &a, None, Some(&obj), None));
        let m = json!({"resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}],
            "excludeResourceRules": [{"apiGroups": ["apps"], "apiVersions": ["*"], "operations": ["*"], "resources": ["deployments"], "resourceNames": ["web"]}],
            "namespaceSelector": {"matchLabels": {"team": "x"}}});
        assert!(!resources_match(
            Some(&m),
            &attrs("default"),
            Some(&json!({"team": "x"})),
            Some(&obj),
            None
        ));
        let mut other = attrs("default");
        other.name = "api".into();
        assert!(resources_match(
            Some(&m),
            &other,
            Some(&json!({"team": "x"})),
            Some(&obj),
            None
        ));
        assert!(!resources_match(
            Some(&m),
            &other,
            Some(&json!({"team": "y"})),
            Some(&obj),
            None
        ));
    }

    #[test]
    fn evaluation_messages_params_and_conditions() {
        let spec = policy()["spec"].clone();
        let req = json!({"namespace": "default", "operation": "CREATE"});
        let obj = json!({"metadata": {"name": "a-very-long-name"}, "spec": {"replicas": 6}});
        let d = evaluate(&spec, &Inputs::new(Some(&obj), None, &req, None, None));
        assert_eq!(
            d,
            vec![
                Decision::Fail {
                    message: "failed expression: object.spec.replicas <= variables.limit".into(),
                    reason: "Invalid".into()
                },
                Decision::Fail {
                    message: "name too long".into(),
                    reason: "Forbidden".into()
                },
                Decision::Fail {
                    message: "labels missing on a-very-long-name".into(),
                    reason: "Invalid".into()
                },
            ]
        );
        let params = json!({"data": {"max": "10"}});
        let obj = json!({"metadata": {"name": "web", "labels": {}}, "spec": {"replicas": 6}});
        assert!(evaluate(
            &spec,
            &Inputs::new(Some(&obj), None, &req, Some(&params), None)
        )
        .is_empty());
        let sys = json!({"namespace": "kube-system"});
        let huge = json!({"metadata": {"name": "web", "labels": {}}, "spec": {"replicas": 60}});
        assert!(evaluate(&spec, &Inputs::new(Some(&huge), None, &sys, None, None)).is_empty());
        let broken = json!({"metadata": {"name": "web", "labels": {}}, "spec": {}});
        assert_eq!(
            evaluate(&spec, &Inputs::new(Some(&broken), None, &req, None, None)),
            vec![Decision::Error(
                "expression 'object.spec.replicas <= variables.limit' resulted in error: no such key: replicas".into()
            )]
        );
        assert_eq!(reason_code("Forbidden"), 403);
        assert_eq!(reason_code("Invalid"), 422);
    }
}
