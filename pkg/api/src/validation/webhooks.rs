//! admissionregistration.k8s.io/v1 Mutating/ValidatingWebhookConfiguration validation with
//! upstream's field paths and texts (`pkg/apis/admissionregistration/validation`).

use super::*;

const OPERATIONS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
const FAILURE_POLICIES: &[&str] = &["Fail", "Ignore"];
const MATCH_POLICIES: &[&str] = &["Equivalent", "Exact"];
const SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun"];
const SCOPES: &[&str] = &["*", "Cluster", "Namespaced"];
const REINVOCATION: &[&str] = &["IfNeeded", "Never"];
const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];

fn strings(v: Option<&Value>) -> Vec<String> {
    arr(v).iter().map(scalar_string).collect()
}

/// Validates a webhook configuration; `mutating` adds `reinvocationPolicy`.
pub(super) fn validate_webhook_configuration(e: &mut Errs, obj: &Value, mutating: bool) {
    let mut names = BTreeSet::new();
    for (i, hook) in arr(obj.get("webhooks")).iter().enumerate() {
        let p = format!("webhooks[{i}]");
        validate_webhook(e, hook, &p, mutating);
        review_versions(
            e,
            hook.get("admissionReviewVersions"),
            &format!("{p}.admissionReviewVersions"),
        );
        let name = str_at(hook, "name");
        if !name.is_empty() && !names.insert(name.to_string()) {
            e.duplicate(&format!("{p}.name"), bad_str(name));
        }
    }
}

fn validate_webhook(e: &mut Errs, hook: &Value, p: &str, mutating: bool) {
    fully_qualified_name(e, str_at(hook, "name"), &format!("{p}.name"));
    for (i, rule) in arr(hook.get("rules")).iter().enumerate() {
        validate_rule(e, rule, &format!("{p}.rules[{i}]"));
    }
    let one_of = |e: &mut Errs, key: &str, valid: &[&str]| {
        if let Some(v) = hook.get(key).filter(|v| !v.is_null()) {
            let s = scalar_string(v);
            if !valid.contains(&s.as_str()) {
                e.not_supported(&format!("{p}.{key}"), Bad::Str(s), valid);
            }
        }
    };
    one_of(e, "failurePolicy", FAILURE_POLICIES);
    one_of(e, "matchPolicy", MATCH_POLICIES);
    if hook.get("sideEffects").is_none_or(Value::is_null) {
        e.required(
            &format!("{p}.sideEffects"),
            &format!("must specify one of {}", SIDE_EFFECTS.join(", ")),
        );
    }
    one_of(e, "sideEffects", SIDE_EFFECTS);
    if mutating {
        one_of(e, "reinvocationPolicy", REINVOCATION);
    }
    if let Some(t) = hook.get("timeoutSeconds").and_then(Value::as_i64) {
        if !(1..=30).contains(&t) {
            e.invalid(
                &format!("{p}.timeoutSeconds"),
                Bad::Int(t),
                "the timeout value must be between 1 and 30 seconds",
            );
        }
    }
    validate_label_selector(
        e,
        hook.get("namespaceSelector"),
        &format!("{p}.namespaceSelector"),
    );
    validate_label_selector(
        e,
        hook.get("objectSelector"),
        &format!("{p}.objectSelector"),
    );
    let cc = hook.get("clientConfig");
    let url = cc.and_then(|c| c.get("url")).filter(|v| !v.is_null());
    let svc = cc.and_then(|c| c.get("service")).filter(|v| !v.is_null());
    match (url, svc) {
        (Some(u), None) => webhook_url(e, &scalar_string(u), &format!("{p}.clientConfig.url")),
        (None, Some(s)) => webhook_service(e, s, &format!("{p}.clientConfig.service")),
        _ => e.required(
            &format!("{p}.clientConfig"),
            "exactly one of url or service is required",
        ),
    }
    let mut seen = BTreeSet::new();
    for (i, mc) in arr(hook.get("matchConditions")).iter().enumerate() {
        let mp = format!("{p}.matchConditions[{i}]");
        let name = str_at(mc, "name");
        if name.is_empty() {
            e.required(&format!("{mp}.name"), "");
        } else {
            for m in is_qualified_name(name) {
                e.invalid(&format!("{mp}.name"), bad_str(name), &m);
            }
            if !seen.insert(name.to_string()) {
                e.duplicate(&format!("{mp}.name"), bad_str(name));
            }
        }
        if str_at(mc, "expression").is_empty() {
            e.required(&format!("{mp}.expression"), "");
        }
    }
}

/// `utilvalidation.IsFullyQualifiedName`.
fn fully_qualified_name(e: &mut Errs, name: &str, p: &str) {
    if name.is_empty() {
        e.required(p, "");
        return;
    }
    let errs = is_dns1123_subdomain(name);
    if !errs.is_empty() {
        e.invalid(p, bad_str(name), &errs.join(","));
        return;
    }
    if name.split('.').count() < 3 {
        e.invalid(
            p,
            bad_str(name),
            "should be a domain with at least three segments separated by dots",
        );
    }
}

fn has_wildcard(v: &[String]) -> bool {
    v.iter().any(|s| s == "*")
}

fn validate_rule(e: &mut Errs, rule: &Value, p: &str) {
    let ops = strings(rule.get("operations"));
    if ops.is_empty() {
        e.required(&format!("{p}.operations"), "");
    }
    if ops.len() > 1 && has_wildcard(&ops) {
        e.invalid(
            &format!("{p}.operations"),
            Bad::Raw(go_string_slice(rule.get("operations"))),
            "if '*' is present, must not specify other operations",
        );
    }
    for (i, op) in ops.iter().enumerate() {
        if !OPERATIONS.contains(&op.as_str()) {
            e.not_supported(&format!("{p}.operations[{i}]"), bad_str(op), OPERATIONS);
        }
    }
    let groups = strings(rule.get("apiGroups"));
    if groups.is_empty() {
        e.required(&format!("{p}.apiGroups"), "");
    }
    if groups.len() > 1 && has_wildcard(&groups) {
        e.invalid(
            &format!("{p}.apiGroups"),
            Bad::Raw(go_string_slice(rule.get("apiGroups"))),
            "if '*' is present, must not specify other API groups",
        );
    }
    let versions = strings(rule.get("apiVersions"));
    if versions.is_empty() {
        e.required(&format!("{p}.apiVersions"), "");
    }
    if versions.len() > 1 && has_wildcard(&versions) {
        e.invalid(
            &format!("{p}.apiVersions"),
            Bad::Raw(go_string_slice(rule.get("apiVersions"))),
            "if '*' is present, must not specify other API versions",
        );
    }
    for (i, v) in versions.iter().enumerate() {
        if v.is_empty() {
            e.required(&format!("{p}.apiVersions[{i}]"), "");
        }
    }
    validate_resources(e, rule.get("resources"), &format!("{p}.resources"));
    if let Some(s) = rule.get("scope").filter(|v| !v.is_null()) {
        let s = scalar_string(s);
        if !SCOPES.contains(&s.as_str()) {
            e.not_supported(&format!("{p}.scope"), Bad::Str(s), SCOPES);
        }
    }
}

fn validate_resources(e: &mut Errs, v: Option<&Value>, p: &str) {
    let resources = strings(v);
    if resources.is_empty() {
        e.required(p, "");
    }
    let mut wildcard_sub = BTreeSet::new();
    let mut wildcard_res = BTreeSet::new();
    let (mut double, mut single, mut plain) = (false, false, false);
    for (i, r) in resources.iter().enumerate() {
        if r.is_empty() {
            e.required(&format!("{p}[{i}]"), "");
            continue;
        }
        double |= r == "*/*";
        single |= r == "*";
        let Some((res, sub)) = r.split_once('/') else {
            plain |= r != "*";
            continue;
        };
        if wildcard_sub.contains(res) {
            e.invalid(
                &format!("{p}[{i}]"),
                bad_str(r),
                &format!("if '{res}/*' is present, must not specify {r}"),
            );
        }
        if wildcard_res.contains(sub) {
            e.invalid(
                &format!("{p}[{i}]"),
                bad_str(r),
                &format!("if '*/{sub}' is present, must not specify {r}"),
            );
        }
        if sub == "*" {
            wildcard_sub.insert(res.to_string());
        }
        if res == "*" {
            wildcard_res.insert(sub.to_string());
        }
    }
    if resources.len() > 1 && double {
        e.invalid(
            p,
            Bad::Raw(go_string_slice(v)),
            "if '*/*' is present, must not specify other resources",
        );
    }
    if single && plain {
        e.invalid(
            p,
            Bad::Raw(go_string_slice(v)),
            "if '*' is present, must not specify other resources without subresources",
        );
    }
}

fn review_versions(e: &mut Errs, v: Option<&Value>, p: &str) {
    let versions = strings(v);
    if versions.is_empty() {
        e.required(
            p,
            &format!("must specify one of {}", REVIEW_VERSIONS.join(", ")),
        );
        return;
    }
    let mut seen = BTreeSet::new();
    let mut accepted = false;
    for (i, ver) in versions.iter().enumerate() {
        if !seen.insert(ver.clone()) {
            e.invalid(&format!("{p}[{i}]"), bad_str(ver), "duplicate version");
            continue;
        }
        for m in is_dns1035_label(ver) {
            e.invalid(&format!("{p}[{i}]"), bad_str(ver), &m);
        }
        accepted |= REVIEW_VERSIONS.contains(&ver.as_str());
    }
    if !accepted {
        e.invalid(
            p,
            Bad::Raw(go_string_slice(v)),
            &format!(
                "must include at least one of {}",
                REVIEW_VERSIONS.join(", ")
            ),
        );
    }
}

/// `webhook.ValidateWebhookURL` with https forced. The URL is only split into scheme,
/// authority, query and fragment (the four things checked), so no URL crate is needed here.
fn webhook_url(e: &mut Errs, url: &str, p: &str) {
    const FORM: &str = "; desired format: https://host[/path]";
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = if scheme.is_empty() {
        ""
    } else {
        rest.split('/').next().unwrap_or("")
    };
    let (user, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if scheme != "https" {
        e.invalid(
            p,
            bad_str(scheme),
            &format!("'https' is the only allowed URL scheme{FORM}"),
        );
    }
    if host.is_empty() {
        e.invalid(p, bad_str(host), &format!("host must be specified{FORM}"));
    }
    if let Some(u) = user {
        e.invalid(
            p,
            bad_str(u),
            "user information is not permitted in the URL",
        );
    }
    if !fragment.is_empty() {
        e.invalid(
            p,
            bad_str(fragment),
            "fragments are not permitted in the URL",
        );
    }
    if !query.is_empty() {
        e.invalid(
            p,
            bad_str(query),
            "query parameters are not permitted in the URL",
        );
    }
}

/// `webhook.ValidateWebhookService`.
fn webhook_service(e: &mut Errs, svc: &Value, p: &str) {
    if str_at(svc, "name").is_empty() {
        e.required(&format!("{p}.name"), "service name is required");
    }
    if str_at(svc, "namespace").is_empty() {
        e.required(&format!("{p}.namespace"), "service namespace is required");
    }
    let port = svc.get("port").and_then(Value::as_i64).unwrap_or(443);
    let errs = is_valid_port_num(port);
    if !errs.is_empty() {
        e.invalid(
            &format!("{p}.port"),
            Bad::Int(port),
            &format!("port is not valid: {}", errs.join(", ")),
        );
    }
    let path = str_at(svc, "path");
    if path.is_empty() || path == "/" {
        return;
    }
    if path == "//" {
        e.invalid(
            &format!("{p}.path"),
            bad_str(path),
            "segment[0] may not be empty",
        );
        return;
    }
    if !path.starts_with('/') {
        e.invalid(&format!("{p}.path"), bad_str(path), "must start with a '/'");
    }
}

#[cfg(test)]
mod tests {
    use crate::registry;
    use serde_json::json;

    fn causes(obj: serde_json::Value) -> Vec<String> {
        let res = registry::find(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
        )
        .unwrap();
        super::super::validate_create(res, &obj)
            .iter()
            .map(|c| c.error_string())
            .collect()
    }

    fn hook(extra: serde_json::Value) -> serde_json::Value {
        let mut h = json!({
            "name": "deny.example.com",
            "clientConfig": {"url": "https://127.0.0.1:9443/validate"},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        });
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        h
    }

    fn cfg(hooks: Vec<serde_json::Value>) -> serde_json::Value {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
               "metadata": {"name": "x"}, "webhooks": hooks})
    }

    #[test]
    fn a_valid_configuration_passes() {
        assert_eq!(causes(cfg(vec![hook(json!({}))])), Vec::<String>::new());
    }

    #[test]
    fn upstream_texts() {
        let got = causes(cfg(vec![
            hook(
                json!({"name": "short.name", "sideEffects": null, "timeoutSeconds": 31,
                        "clientConfig": {"url": "http://h/x?a=b"}}),
            ),
            hook(
                json!({"failurePolicy": "Maybe", "admissionReviewVersions": ["v2"],
                        "clientConfig": {}}),
            ),
            hook(json!({})),
        ]));
        assert_eq!(
            got,
            vec![
                "webhooks[0].name: Invalid value: \"short.name\": should be a domain with at least three segments separated by dots",
                "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
                "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds",
                "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
                "webhooks[0].clientConfig.url: Invalid value: \"a=b\": query parameters are not permitted in the URL",
                "webhooks[1].failurePolicy: Unsupported value: \"Maybe\": supported values: \"Fail\", \"Ignore\"",
                "webhooks[1].clientConfig: Required value: exactly one of url or service is required",
                "webhooks[1].admissionReviewVersions: Invalid value: []string{\"v2\"}: must include at least one of v1, v1beta1",
                "webhooks[2].name: Duplicate value: \"deny.example.com\"",
            ]
        );
    }

    #[test]
    fn rules_and_services() {
        let got = causes(cfg(vec![hook(json!({
            "rules": [{"operations": ["*", "CREATE"], "apiGroups": [], "apiVersions": ["v1"],
                       "resources": ["*", "pods"], "scope": "Everywhere"}],
            "clientConfig": {"service": {"namespace": "", "name": "svc", "port": 70000, "path": "x"}},
        }))]));
        assert_eq!(
            got,
            vec![
                "webhooks[0].rules[0].operations: Invalid value: []string{\"*\", \"CREATE\"}: if '*' is present, must not specify other operations",
                "webhooks[0].rules[0].apiGroups: Required value",
                "webhooks[0].rules[0].resources: Invalid value: []string{\"*\", \"pods\"}: if '*' is present, must not specify other resources without subresources",
                "webhooks[0].rules[0].scope: Unsupported value: \"Everywhere\": supported values: \"*\", \"Cluster\", \"Namespaced\"",
                "webhooks[0].clientConfig.service.namespace: Required value: service namespace is required",
                "webhooks[0].clientConfig.service.port: Invalid value: 70000: port is not valid: must be between 1 and 65535, inclusive",
                "webhooks[0].clientConfig.service.path: Invalid value: \"x\": must start with a '/'",
            ]
        );
    }
}
