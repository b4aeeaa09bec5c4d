//! Admission webhooks, the pure parts: admissionregistration.k8s.io/v1 defaults, which
//! webhooks a request matches (rules with operations, groups, versions, resources and
//! subresources, scope; namespace and object selectors), the AdmissionReview v1 request, and
//! what a webhook's answer means (allowed, denial text, JSON patch, warnings).

use crate::validation::label_selector_matches;
use base64::Engine;
use serde_json::{json, Map, Value};

fn set_default(m: &mut Map<String, Value>, k: &str, v: Value) {
    if m.get(k).is_none_or(Value::is_null) {
        m.insert(k.to_string(), v);
    }
}

/// Upstream's v1 defaults for a Mutating (`mutating`) or ValidatingWebhookConfiguration:
/// failurePolicy Fail, matchPolicy Equivalent, empty selectors, timeoutSeconds 10, rule scope
/// `*`, service port 443, and reinvocationPolicy Never for mutating webhooks.
pub fn apply_defaults(obj: &mut Value, mutating: bool) {
    let Some(hooks) = obj.get_mut("webhooks").and_then(Value::as_array_mut) else {
        return;
    };
    for h in hooks.iter_mut().filter_map(Value::as_object_mut) {
        set_default(h, "failurePolicy", json!("Fail"));
        set_default(h, "matchPolicy", json!("Equivalent"));
        set_default(h, "namespaceSelector", json!({}));
        set_default(h, "objectSelector", json!({}));
        set_default(h, "timeoutSeconds", json!(10));
        if mutating {
            set_default(h, "reinvocationPolicy", json!("Never"));
        }
        if let Some(rules) = h.get_mut("rules").and_then(Value::as_array_mut) {
            for r in rules.iter_mut().filter_map(Value::as_object_mut) {
                set_default(r, "scope", json!("*"));
            }
        }
        if let Some(svc) = h
            .get_mut("clientConfig")
            .and_then(|c| c.get_mut("service"))
            .and_then(Value::as_object_mut)
        {
            set_default(svc, "port", json!(443));
        }
    }
}

/// What admission knows about a request, for matching and for the AdmissionReview.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    /// CREATE, UPDATE, DELETE or CONNECT.
    pub operation: String,
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The plural resource (`pods`).
    pub resource: String,
    /// `status`, `scale`, … or empty.
    pub subresource: String,
    /// Whether the resource is namespaced (Namespaces themselves are cluster-scoped).
    pub namespaced: bool,
    pub namespace: String,
    pub name: String,
    pub dry_run: bool,
}

fn strs(v: Option<&Value>) -> impl Iterator<Item = &str> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn any_or(v: Option<&Value>, want: &str) -> bool {
    strs(v).any(|s| s == "*" || s == want)
}

/// Whether one `RuleWithOperations` matches (upstream `rules.Matcher`): operations, groups and
/// versions are exact or `*`; a resource entry `res[/sub]` matches when both halves are equal
/// or `*` (so `*` alone matches only main resources, `*/*` everything); scope `Cluster` or
/// `Namespaced` restricts by the resource's scope.
pub fn rule_matches(rule: &Value, a: &Attributes) -> bool {
    if !any_or(rule.get("operations"), &a.operation)
        || !any_or(rule.get("apiGroups"), &a.group)
        || !any_or(rule.get("apiVersions"), &a.version)
    {
        return false;
    }
    let resource_ok = strs(rule.get("resources")).any(|r| {
        let (res, sub) = r.split_once('/').unwrap_or((r, ""));
        (res == "*" || res == a.resource) && (sub == "*" || sub == a.subresource)
    });
    if !resource_ok {
        return false;
    }
    match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Cluster" => !a.namespaced,
        "Namespaced" => a.namespaced,
        _ => true,
    }
}

/// Whether any of a webhook's rules matches.
pub fn rules_match(hook: &Value, a: &Attributes) -> bool {
    hook.get("rules")
        .and_then(Value::as_array)
        .is_some_and(|rs| rs.iter().any(|r| rule_matches(r, a)))
}

/// A webhook's selector against a set of labels: absent or `{}` matches everything; an
/// unparsable selector matches nothing.
pub fn selector_matches(sel: Option<&Value>, labels: Option<&Value>) -> bool {
    match sel {
        None | Some(Value::Null) => true,
        s => label_selector_matches(s, labels).unwrap_or(false),
    }
}

/// The namespace selector applies to namespaced objects (against their namespace's labels)
/// and to Namespace objects (against their own); other cluster-scoped objects always match.
/// `ns_labels` is the labels of the namespace the request is in, or of the Namespace object.
pub fn namespace_matches(hook: &Value, a: &Attributes, ns_labels: Option<&Value>) -> bool {
    let is_namespace = a.group.is_empty() && a.resource == "namespaces";
    if !a.namespaced && !is_namespace {
        return true;
    }
    selector_matches(hook.get("namespaceSelector"), ns_labels)
}

/// The object selector matches when the new or the old object's labels match.
pub fn object_matches(hook: &Value, obj: Option<&Value>, old: Option<&Value>) -> bool {
    let sel = hook.get("objectSelector");
    let labels = |o: Option<&Value>| o.and_then(|o| o.pointer("/metadata/labels")).cloned();
    [obj, old]
        .into_iter()
        .flatten()
        .any(|o| selector_matches(sel, labels(Some(o)).as_ref()))
        || (obj.is_none() && old.is_none() && selector_matches(sel, None))
}

/// The variables a webhook's `matchConditions` may read.
const CONDITION_VARIABLES: &[&str] = &["object", "oldObject", "request"];

/// Upstream's webhook `matchConditions` (CEL, on the shared `crate::cel` engine): `Ok(false)`
/// when one evaluates to false — the webhook is not called, even if another one failed —,
/// `Err` when none is false but one cannot be compiled or evaluated (the caller then applies
/// the webhook's failure policy), `Ok(true)` otherwise. `request` is the AdmissionReview's
/// request as the webhook would get it.
pub fn conditions_match(
    hook: &Value,
    request: &Value,
    obj: Option<&Value>,
    old: Option<&Value>,
) -> Result<bool, String> {
    let Some(conds) = hook.get("matchConditions").and_then(Value::as_array) else {
        return Ok(true);
    };
    if conds.is_empty() {
        return Ok(true);
    }
    let null = Value::Null;
    let (object, old_object, request) = (
        crate::cel::to_cel(obj.unwrap_or(&null)),
        crate::cel::to_cel(old.unwrap_or(&null)),
        crate::cel::to_cel(request),
    );
    let vars = [
        ("object", &object),
        ("oldObject", &old_object),
        ("request", &request),
    ];
    let mut first_err = None;
    for c in conds {
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        let src = c
            .get("expression")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match crate::cel::compile_cached(src, CONDITION_VARIABLES).and_then(|e| e.eval_bool(&vars))
        {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) => {
                first_err.get_or_insert_with(|| {
                    format!("failed to evaluate matchCondition {name:?}: expression '{src}' resulted in error: {e}")
                });
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(true),
    }
}

/// The AdmissionReview v1 a webhook is sent.
pub fn review(
    uid: &str,
    a: &Attributes,
    user: &Value,
    obj: Option<&Value>,
    old: Option<&Value>,
    options: Option<&Value>,
) -> Value {
    let kind = json!({"group": a.group, "version": a.version, "kind": a.kind});
    let resource = json!({"group": a.group, "version": a.version, "resource": a.resource});
    let mut req = json!({
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": a.name,
        "operation": a.operation,
        "userInfo": user,
        "object": obj.cloned().unwrap_or(Value::Null),
        "oldObject": old.cloned().unwrap_or(Value::Null),
        "dryRun": a.dry_run,
        "options": options.cloned().unwrap_or(Value::Null),
    });
    if !a.subresource.is_empty() {
        req["subResource"] = json!(a.subresource);
        req["requestSubResource"] = json!(a.subresource);
    }
    if !a.namespace.is_empty() {
        req["namespace"] = json!(a.namespace);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
}

/// A webhook's verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Allowed, with a JSON patch (RFC 6902 operations) when the webhook mutated.
    Allowed { patch: Option<Value> },
    /// Denied: the HTTP code, reason and message of the Status to answer.
    Denied {
        code: u16,
        reason: String,
        message: String,
    },
}

/// A webhook's parsed answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub verdict: Verdict,
    pub warnings: Vec<String>,
}

/// Reads an AdmissionReview response for request `uid` from webhook `name` (upstream's
/// checks and `ToStatusErr` text). `Err` is a failure to call the webhook (subject to the
/// failure policy), with upstream's text after `failed to call webhook: `.
pub fn read_answer(name: &str, uid: &str, body: &Value) -> Result<Answer, String> {
    if body.get("apiVersion").and_then(Value::as_str) != Some("admission.k8s.io/v1")
        || body.get("kind").and_then(Value::as_str) != Some("AdmissionReview")
    {
        return Err(format!(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {}, Kind={}",
            body.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
            body.get("kind").and_then(Value::as_str).unwrap_or("")
        ));
    }
    let Some(resp) = body.get("response").filter(|r| r.is_object()) else {
        return Err("webhook response was absent".into());
    };
    let got = resp.get("uid").and_then(Value::as_str).unwrap_or("");
    if got != uid {
        return Err(format!("expected response.uid=\"{uid}\", got \"{got}\""));
    }
    let warnings = strs(resp.get("warnings")).map(str::to_string).collect();
    let allowed = resp
        .get("allowed")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !allowed {
        let status = resp.get("status");
        let s = |k: &str| {
            status
                .and_then(|st| st.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let code = status
            .and_then(|st| st.get("code"))
            .and_then(Value::as_u64)
            .filter(|c| (400..600).contains(c))
            .unwrap_or(400) as u16;
        let (message, reason) = (s("message"), s("reason"));
        let denied = format!("admission webhook \"{name}\" denied the request");
        let message = if !message.is_empty() {
            format!("{denied}: {message}")
        } else if !reason.is_empty() {
            format!("{denied}: {reason}")
        } else {
            format!("{denied} without explanation")
        };
        return Ok(Answer {
            verdict: Verdict::Denied {
                code,
                reason,
                message,
            },
            warnings,
        });
    }
    let patch = match resp.get("patch").and_then(Value::as_str) {
        None | Some("") => None,
        Some(p) => {
            match resp.get("patchType").and_then(Value::as_str) {
                Some("JSONPatch") => {}
                Some(other) => return Err(format!("unsupported patch type {other:?}")),
                None => return Err("patchType must be set when a patch is returned".into()),
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(p)
                .map_err(|e| format!("the patch is not base64: {e}"))?;
            let v: Value = serde_json::from_slice(&raw)
                .map_err(|e| format!("the patch is not a JSON patch: {e}"))?;
            if !v.is_array() {
                return Err(
                    "the patch is not a JSON patch: expected an array of operations".into(),
                );
            }
            Some(v)
        }
    };
    Ok(Answer {
        verdict: Verdict::Allowed { patch },
        warnings,
    })
}

/// Applies a webhook's JSON patch to `obj` (through the one JSON patch implementation,
/// `crate::patch::json_patch`); the patched object must keep its apiVersion and kind.
pub fn apply_patch(obj: &Value, patch: &Value) -> Result<Value, String> {
    let out = crate::patch::json_patch(obj, patch).map_err(|e| e.to_string())?;
    if !out.is_object() {
        return Err("the patched object is not a JSON object".into());
    }
    for k in ["apiVersion", "kind"] {
        if out.get(k) != obj.get(k) {
            return Err(format!("the patch may not change {k}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(op: &str, resource: &str, sub: &str, namespaced: bool) -> Attributes {
        Attributes {
            operation: op.into(),
            group: "".into(),
            version: "v1".into(),
            kind: "Pod".into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespaced,
            namespace: if namespaced {
                "default".into()
            } else {
                "".into()
            },
            name: "x".into(),
            dry_run: false,
        }
    }

    #[test]
    fn rules_follow_upstream_matching() {
        let rule = |ops: &[&str], res: &[&str], scope: &str| json!({"operations": ops, "apiGroups": [""], "apiVersions": ["*"], "resources": res, "scope": scope});
        let pod = attrs("CREATE", "pods", "", true);
        let status = attrs("UPDATE", "pods", "status", true);
        assert!(rule_matches(&rule(&["CREATE"], &["pods"], "*"), &pod));
        assert!(!rule_matches(&rule(&["UPDATE"], &["pods"], "*"), &pod));
        assert!(rule_matches(&rule(&["*"], &["*"], "*"), &pod));
        // `*` is main resources only; `pods/status` and `*/*` reach the subresource.
        assert!(!rule_matches(&rule(&["*"], &["*"], "*"), &status));
        assert!(!rule_matches(&rule(&["*"], &["pods"], "*"), &status));
        assert!(rule_matches(
            &rule(&["UPDATE"], &["pods/status"], "*"),
            &status
        ));
        assert!(rule_matches(&rule(&["*"], &["*/*"], "*"), &status));
        assert!(rule_matches(&rule(&["*"], &["pods/*"], "*"), &status));
        assert!(!rule_matches(&rule(&["*"], &["pods"], "Cluster"), &pod));
        assert!(rule_matches(&rule(&["*"], &["pods"], "Namespaced"), &pod));
        let ns = attrs("CREATE", "namespaces", "", false);
        assert!(rule_matches(&rule(&["*"], &["namespaces"], "Cluster"), &ns));
        let mut apps = pod.clone();
        apps.group = "apps".into();
        assert!(!rule_matches(&rule(&["*"], &["pods"], "*"), &apps));
    }

    #[test]
    fn selectors() {
        let hook = json!({
            "namespaceSelector": {"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]},
            "objectSelector": {"matchLabels": {"check": "yes"}},
        });
        let pod = attrs("CREATE", "pods", "", true);
        assert!(namespace_matches(&hook, &pod, Some(&json!({"a": "b"}))));
        assert!(!namespace_matches(&hook, &pod, Some(&json!({"skip": "1"}))));
        let node = attrs("CREATE", "nodes", "", false);
        assert!(namespace_matches(&hook, &node, Some(&json!({"skip": "1"}))));
        let ns = attrs("CREATE", "namespaces", "", false);
        assert!(!namespace_matches(&hook, &ns, Some(&json!({"skip": "1"}))));
        let with = json!({"metadata": {"labels": {"check": "yes"}}});
        let without = json!({"metadata": {}});
        assert!(object_matches(&hook, Some(&with), None));
        assert!(!object_matches(&hook, Some(&without), None));
        // An update matches when either side matches.
        assert!(object_matches(&hook, Some(&without), Some(&with)));
        assert!(object_matches(
            &json!({"objectSelector": {}}),
            Some(&without),
            None
        ));
    }

    #[test]
    fn answers() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let ok = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": "u", "allowed": true, "warnings": ["careful"],
                         "patchType": "JSONPatch", "patch": b64(r#"[{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]"#)}});
        let a = read_answer("w.example.com", "u", &ok).unwrap();
        assert_eq!(a.warnings, vec!["careful".to_string()]);
        let Verdict::Allowed { patch: Some(p) } = a.verdict else {
            panic!("no patch")
        };
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let out = apply_patch(&obj, &p).unwrap();
        assert_eq!(out["metadata"]["labels"]["a"], "b");
        let bad = json!([{"op": "replace", "path": "/kind", "value": "Secret"}]);
        assert_eq!(
            apply_patch(&obj, &bad).unwrap_err(),
            "the patch may not change kind"
        );

        let deny = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": "u", "allowed": false, "status": {"code": 403, "message": "no deny=yes here"}}});
        assert_eq!(
            read_answer("w.example.com", "u", &deny).unwrap().verdict,
            Verdict::Denied {
                code: 403,
                reason: String::new(),
                message: "admission webhook \"w.example.com\" denied the request: no deny=yes here"
                    .into()
            }
        );
        let bare = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": "u", "allowed": false}});
        match read_answer("w", "u", &bare).unwrap().verdict {
            Verdict::Denied { code, message, .. } => {
                assert_eq!(code, 400);
                assert_eq!(
                    message,
                    "admission webhook \"w\" denied the request without explanation"
                );
            }
            v => panic!("{v:?}"),
        }
        assert_eq!(
            read_answer("w", "other", &bare).unwrap_err(),
            "expected response.uid=\"other\", got \"u\""
        );
    }

    #[test]
    fn defaults() {
        let mut o = json!({"webhooks": [{"name": "a.b.c", "rules": [{"operations": ["*"]}],
            "clientConfig": {"service": {"name": "s", "namespace": "n"}}}]});
        apply_defaults(&mut o, true);
        let h = &o["webhooks"][0];
        assert_eq!(h["failurePolicy"], "Fail");
        assert_eq!(h["timeoutSeconds"], 10);
        assert_eq!(h["reinvocationPolicy"], "Never");
        assert_eq!(h["rules"][0]["scope"], "*");
        assert_eq!(h["clientConfig"]["service"]["port"], 443);
        assert_eq!(h["namespaceSelector"], json!({}));
    }

    #[test]
    fn match_conditions_skip_on_false_and_report_errors() {
        let obj = json!({"metadata": {"name": "a", "labels": {"team": "x"}}});
        let req = json!({"operation": "CREATE", "namespace": "web"});
        let hook = |conds: Value| json!({"name": "h", "matchConditions": conds});
        let cond = |name: &str, e: &str| json!({"name": name, "expression": e});
        assert_eq!(
            conditions_match(&json!({"name": "h"}), &req, Some(&obj), None),
            Ok(true)
        );
        let ok = hook(json!([
            cond("ns", "request.namespace == 'web'"),
            cond("team", "object.metadata.labels.team == 'x'")
        ]));
        assert_eq!(conditions_match(&ok, &req, Some(&obj), None), Ok(true));
        let no = hook(json!([cond("ns", "request.namespace == 'kube-system'")]));
        assert_eq!(conditions_match(&no, &req, Some(&obj), None), Ok(false));
        // One false wins over another's error.
        let mixed = hook(json!([
            cond("bad", "object.spec.x == 1"),
            cond("ns", "request.namespace == 'other'")
        ]));
        assert_eq!(conditions_match(&mixed, &req, Some(&obj), None), Ok(false));
        let bad = hook(json!([cond("bad", "object.spec.x == 1")]));
        let err = conditions_match(&bad, &req, Some(&obj), None).unwrap_err();
        assert!(err.starts_with("failed to evaluate matchCondition \"bad\": expression 'object.spec.x == 1' resulted in error: "), "{err}");
    }
}
