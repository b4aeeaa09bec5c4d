//! The other API groups: networking (Ingress), RBAC, storage classes, PodDisruptionBudgets,
//! priority classes and EndpointSlices.

use super::*;

pub(super) fn validate_ingress(e: &mut Errs, spec: Option<&Value>) {
    let rules = arr(spec.and_then(|s| s.get("rules")));
    let default_backend = spec
        .and_then(|s| s.get("defaultBackend"))
        .filter(|v| !v.is_null());
    if rules.is_empty() && default_backend.is_none() {
        e.invalid(
            "spec.rules",
            Bad::Raw("[]networking.IngressRule(nil)".into()),
            "either `defaultBackend` or `rules` must be specified",
        );
    }
    if let Some(b) = default_backend {
        validate_ingress_backend(e, b, "spec.defaultBackend");
    }
    for (i, r) in rules.iter().enumerate() {
        let rp = format!("spec.rules[{i}]");
        let host = str_at(r, "host");
        if !host.is_empty() {
            if is_valid_ip(host) {
                e.invalid(
                    &format!("{rp}.host"),
                    bad_str(host),
                    "must be a DNS name, not an IP address",
                );
            }
            let h = host.strip_prefix("*.").unwrap_or(host);
            if h.contains('*') {
                e.invalid(
                    &format!("{rp}.host"),
                    bad_str(host),
                    &regex_error(
                        "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
                        &format!("\\*\\.{DNS1123_LABEL_FMT}(\\.{DNS1123_LABEL_FMT})*"),
                        &["*.example.com"],
                    ),
                );
            } else {
                for m in is_dns1123_subdomain(h) {
                    e.invalid(&format!("{rp}.host"), bad_str(host), &m);
                }
            }
        }
        let Some(http) = r.get("http").filter(|v| !v.is_null()) else {
            continue;
        };
        let paths = arr(http.get("paths"));
        if paths.is_empty() {
            e.required(&format!("{rp}.http.paths"), "");
        }
        for (j, p) in paths.iter().enumerate() {
            let pp = format!("{rp}.http.paths[{j}]");
            let path = str_at(p, "path");
            match p.get("pathType").and_then(Value::as_str) {
                None => e.required(&format!("{pp}.pathType"), "pathType must be specified"),
                Some("Exact" | "Prefix") => {
                    if !path.starts_with('/') {
                        e.invalid(
                            &format!("{pp}.path"),
                            bad_str(path),
                            "must be an absolute path",
                        );
                    }
                }
                Some("ImplementationSpecific") => {
                    if !path.is_empty() && !path.starts_with('/') {
                        e.invalid(
                            &format!("{pp}.path"),
                            bad_str(path),
                            "must be an absolute path",
                        );
                    }
                }
                Some(other) => e.not_supported(
                    &format!("{pp}.pathType"),
                    bad_str(other),
                    &["Exact", "ImplementationSpecific", "Prefix"],
                ),
            }
            match p.get("backend").filter(|v| !v.is_null()) {
                Some(b) => validate_ingress_backend(e, b, &format!("{pp}.backend")),
                None => e.invalid(
                    &format!("{pp}.backend"),
                    bad_str(""),
                    "resource or service backend is required",
                ),
            }
        }
    }
}

pub(super) fn validate_ingress_backend(e: &mut Errs, b: &Value, path: &str) {
    let resource = b.get("resource").filter(|v| !v.is_null());
    let service = b.get("service").filter(|v| !v.is_null());
    match (resource, service) {
        (Some(_), Some(_)) => e.invalid(
            path,
            bad_str(""),
            "cannot set both resource and service backends",
        ),
        (Some(_), None) => {}
        (None, Some(s)) => {
            let name = str_at(s, "name");
            if name.is_empty() {
                e.required(&format!("{path}.service.name"), "");
            } else {
                for m in is_dns1035_label(name) {
                    e.invalid(&format!("{path}.service.name"), bad_str(name), &m);
                }
            }
            let pname = s
                .pointer("/port/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let pnum = s
                .pointer("/port/number")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if !pname.is_empty() && pnum != 0 {
                e.invalid(path, bad_str(""), "cannot set both port name & port number");
            } else if !pname.is_empty() {
                for m in is_valid_port_name(pname) {
                    e.invalid(&format!("{path}.service.port.name"), bad_str(pname), &m);
                }
            } else if pnum != 0 {
                for m in is_valid_port_num(pnum) {
                    e.invalid(&format!("{path}.service.port.number"), Bad::Int(pnum), &m);
                }
            } else {
                e.required(path, "port name or number is required");
            }
        }
        (None, None) => e.invalid(path, bad_str(""), "resource or service backend is required"),
    }
}

pub(super) fn validate_rules(e: &mut Errs, obj: &Value, namespaced: bool) {
    for (i, r) in arr(obj.get("rules")).iter().enumerate() {
        let rp = format!("rules[{i}]");
        if arr(r.get("verbs")).is_empty() {
            e.required(
                &format!("{rp}.verbs"),
                "verbs must contain at least one value",
            );
        }
        let urls = r.get("nonResourceURLs");
        if !arr(urls).is_empty() {
            if namespaced {
                e.invalid(
                    &format!("{rp}.nonResourceURLs"),
                    Bad::Raw(go_string_slice(urls)),
                    "namespaced rules cannot apply to non-resource URLs",
                );
            }
            if !arr(r.get("apiGroups")).is_empty()
                || !arr(r.get("resources")).is_empty()
                || !arr(r.get("resourceNames")).is_empty()
            {
                e.invalid(
                    &format!("{rp}.nonResourceURLs"),
                    Bad::Raw(go_string_slice(urls)),
                    "rules cannot apply to both regular resources and non-resource URLs",
                );
            }
            continue;
        }
        if arr(r.get("apiGroups")).is_empty() {
            e.required(
                &format!("{rp}.apiGroups"),
                "resource rules must supply at least one api group",
            );
        }
        if arr(r.get("resources")).is_empty() {
            e.required(
                &format!("{rp}.resources"),
                "resource rules must supply at least one resource",
            );
        }
        if !arr(r.get("resourceNames")).is_empty() && arr(r.get("resources")).len() > 1 {
            e.required(
                &format!("{rp}.resourceNames"),
                "resource names cannot apply to multiple resources",
            );
        }
    }
}

pub(super) fn go_role_ref(r: Option<&Value>) -> String {
    let g = |k: &str| go_quote(r.map(|r| str_at(r, k)).unwrap_or_default());
    format!(
        "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
        g("apiGroup"),
        g("kind"),
        g("name")
    )
}

pub(super) fn validate_binding(e: &mut Errs, obj: &Value, old: Option<&Value>, namespaced: bool) {
    let rr = obj.get("roleRef");
    let get = |k: &str| rr.map(|r| str_at(r, k)).unwrap_or_default();
    let group = get("apiGroup");
    if group != "rbac.authorization.k8s.io" {
        e.not_supported(
            "roleRef.apiGroup",
            bad_str(group),
            &["rbac.authorization.k8s.io"],
        );
    }
    let kind = get("kind");
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        e.not_supported("roleRef.kind", bad_str(kind), kinds);
    }
    let name = get("name");
    if name.is_empty() {
        e.required("roleRef.name", "");
    } else {
        for m in name_errors(NameRule::PathSegment, name, false) {
            e.invalid("roleRef.name", bad_str(name), &m);
        }
    }
    for (i, s) in arr(obj.get("subjects")).iter().enumerate() {
        let sp = format!("subjects[{i}]");
        let sname = str_at(s, "name");
        if sname.is_empty() {
            e.required(&format!("{sp}.name"), "");
        }
        let api_group = str_at(s, "apiGroup");
        match str_at(s, "kind") {
            "ServiceAccount" => {
                if !sname.is_empty() {
                    for m in is_dns1123_subdomain(sname) {
                        e.invalid(&format!("{sp}.name"), bad_str(sname), &m);
                    }
                }
                if !api_group.is_empty() {
                    e.not_supported(&format!("{sp}.apiGroup"), bad_str(api_group), &[""]);
                }
                if !namespaced && str_at(s, "namespace").is_empty() {
                    e.required(&format!("{sp}.namespace"), "");
                }
            }
            k @ ("User" | "Group") => {
                if sname.is_empty() {
                    let what = if k == "User" { "user" } else { "group" };
                    e.invalid(
                        &format!("{sp}.name"),
                        bad_str(""),
                        &format!("{what} name cannot be empty"),
                    );
                }
                if api_group != "rbac.authorization.k8s.io" {
                    e.not_supported(
                        &format!("{sp}.apiGroup"),
                        bad_str(api_group),
                        &["rbac.authorization.k8s.io"],
                    );
                }
            }
            other => e.not_supported(
                &format!("{sp}.kind"),
                bad_str(other),
                &["ServiceAccount", "User", "Group"],
            ),
        }
    }
    if let Some(old) = old {
        let norm = |r: Option<&Value>| {
            ["apiGroup", "kind", "name"]
                .map(|k| r.map(|r| str_at(r, k).to_string()).unwrap_or_default())
        };
        if norm(old.get("roleRef")) != norm(rr) {
            e.invalid(
                "roleRef",
                Bad::Raw(go_role_ref(rr)),
                "cannot change roleRef",
            );
        }
    }
}

pub(super) fn validate_storage_class(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let prov = str_at(obj, "provisioner");
    if prov.is_empty() {
        e.required("provisioner", "");
    } else {
        for m in is_qualified_name(&prov.to_lowercase()) {
            e.invalid("provisioner", bad_str(prov), &m);
        }
    }
    if let Some(rp) = obj.get("reclaimPolicy").and_then(Value::as_str) {
        if rp != "Delete" && rp != "Retain" {
            e.not_supported("reclaimPolicy", bad_str(rp), &["Delete", "Retain"]);
        }
    }
    if let Some(m) = obj.get("volumeBindingMode").and_then(Value::as_str) {
        if m != "Immediate" && m != "WaitForFirstConsumer" {
            e.not_supported(
                "volumeBindingMode",
                bad_str(m),
                &["Immediate", "WaitForFirstConsumer"],
            );
        }
    }
    if let Some(old) = old {
        let changed = |k: &str| {
            !json_semantic_eq(
                old.get(k).unwrap_or(&Value::Null),
                obj.get(k).unwrap_or(&Value::Null),
            )
        };
        if changed("parameters") {
            e.forbidden("parameters", "updates to parameters are forbidden.");
        }
        if changed("provisioner") {
            e.forbidden("provisioner", "updates to provisioner are forbidden.");
        }
        if changed("reclaimPolicy") {
            e.forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden.");
        }
        e.immutable(
            "volumeBindingMode",
            bad_json(obj.get("volumeBindingMode")),
            changed("volumeBindingMode"),
        );
    }
}

pub(super) fn validate_pdb(e: &mut Errs, spec: Option<&Value>) {
    let get = |k: &str| spec.and_then(|s| s.get(k)).filter(|v| !v.is_null());
    let (min, max) = (get("minAvailable"), get("maxUnavailable"));
    if min.is_some() && max.is_some() {
        e.invalid(
            "spec",
            Bad::Raw(spec.map_or("null".into(), Value::to_string)),
            "minAvailable and maxUnavailable cannot be both set",
        );
    }
    for (key, v) in [("minAvailable", min), ("maxUnavailable", max)] {
        if v.is_some() {
            let p = format!("spec.{key}");
            validate_positive_int_or_percent(e, v, &p);
            not_more_than_100_percent(e, v, &p);
        }
    }
    validate_label_selector(e, get("selector"), "spec.selector");
    if let Some(p) = get("unhealthyPodEvictionPolicy").and_then(Value::as_str) {
        if p != "IfHealthyBudget" && p != "AlwaysAllow" {
            e.not_supported(
                "spec.unhealthyPodEvictionPolicy",
                bad_str(p),
                &["AlwaysAllow", "IfHealthyBudget"],
            );
        }
    }
}

pub(super) fn validate_priority_class(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let value = obj.get("value").and_then(Value::as_i64).unwrap_or(0);
    let known = [
        ("system-node-critical", 2_000_001_000),
        ("system-cluster-critical", 2_000_000_000),
    ];
    if name.starts_with("system-") {
        if !known.iter().any(|(n, v)| *n == name && *v == value) {
            e.forbidden(
                "metadata.name",
                &format!("priority class names with 'system-' prefix are reserved for system use only. error: {name} is not a known system priority class"),
            );
        }
    } else if value > 1_000_000_000 {
        e.forbidden(
            "value",
            "maximum allowed value of a user defined priority is 1000000000",
        );
    }
    if let Some(p) = obj.get("preemptionPolicy").and_then(Value::as_str) {
        match p {
            "PreemptLowerPriority" | "Never" => {}
            "" => e.required("preemptionPolicy", ""),
            other => e.not_supported(
                "preemptionPolicy",
                bad_str(other),
                &["PreemptLowerPriority", "Never"],
            ),
        }
    }
    if let Some(old) = old {
        if old.get("value").and_then(Value::as_i64).unwrap_or(0) != value {
            e.forbidden("value", "may not be changed in an update.");
        }
        let (o, n) = (old.get("preemptionPolicy"), obj.get("preemptionPolicy"));
        e.immutable("preemptionPolicy", bad_json(n), o != n);
    }
}

pub(super) fn validate_endpoint_slice(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let at = str_at(obj, "addressType");
    match at {
        "" => e.required("addressType", ""),
        "IPv4" | "IPv6" | "FQDN" => {}
        other => e.not_supported("addressType", bad_str(other), &["FQDN", "IPv4", "IPv6"]),
    }
    for (i, ep) in arr(obj.get("endpoints")).iter().enumerate() {
        let p = format!("endpoints[{i}].addresses");
        let addrs = arr(ep.get("addresses"));
        if addrs.is_empty() {
            e.required(&p, "must contain at least 1 address");
        } else if addrs.len() > 100 {
            e.push(
                "FieldValueTooMany",
                &p,
                format!("Too many: {}: must have at most 100 items", addrs.len()),
            );
        }
        for (j, a) in addrs.iter().enumerate() {
            let a = scalar_string(a);
            let ok = match at {
                "IPv4" => a.parse::<std::net::Ipv4Addr>().is_ok(),
                "IPv6" => a.parse::<std::net::Ipv6Addr>().is_ok(),
                _ => is_dns1123_subdomain(&a).is_empty(),
            };
            if !ok {
                let detail = match at {
                    "IPv4" => "must be a valid IPv4 address",
                    "IPv6" => "must be a valid IPv6 address",
                    _ => "must be a valid DNS subdomain",
                };
                e.invalid(&format!("{p}[{j}]"), Bad::Str(a), detail);
            }
        }
    }
    for (i, port) in arr(obj.get("ports")).iter().enumerate() {
        let pp = format!("ports[{i}]");
        if let Some(n) = port.get("port").and_then(Value::as_i64) {
            for m in is_valid_port_num(n) {
                e.invalid(&format!("{pp}.port"), Bad::Int(n), &m);
            }
        }
        if port.get("protocol").is_some() {
            validate_protocol(e, port, &format!("{pp}.protocol"));
        }
    }
    if let Some(old) = old {
        let o = str_at(old, "addressType");
        e.immutable("addressType", bad_str(at), o != at);
    }
}

/// Reports a value of the wrong JSON type the way upstream's schema check does (exposed for
/// the server's decoding step).
pub fn type_invalid(field: &str, value: &Value, detail: &str) -> FieldCause {
    let mut e = Errs::default();
    e.type_invalid(field, bad_json(Some(value)), detail);
    e.0.pop().unwrap_or_else(|| FieldCause {
        reason: "FieldValueTypeInvalid".into(),
        message: String::new(),
        field: field.into(),
    })
}

/// Upstream's `IsValidPathSegmentName` messages for a name used in a URL path.
fn path_segment_errors(s: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if s == "." || s == ".." {
        out.push(if s == "." {
            "may not be '.'"
        } else {
            "may not be '..'"
        });
    }
    for (bad, msg) in [('/', "may not contain '/'"), ('%', "may not contain '%'")] {
        if s.contains(bad) {
            out.push(msg);
        }
    }
    out
}

fn validate_metric_target(e: &mut Errs, t: &Value, path: &str) {
    match t.get("type").and_then(Value::as_str).unwrap_or_default() {
        "" => e.required(&format!("{path}.type"), "must specify a metric target type"),
        "Utilization" | "Value" | "AverageValue" => {}
        other => e.invalid(
            &format!("{path}.type"),
            bad_str(other),
            "must be either Utilization, Value, or AverageValue",
        ),
    }
    for key in ["value", "averageValue"] {
        if let Some(q) = t.get(key).filter(|v| !v.is_null()) {
            let text = match q {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if parse_quantity(&text).is_none_or(|v| v <= 0.0) {
                e.invalid(&format!("{path}.{key}"), bad_str(&text), "must be positive");
            }
        }
    }
    if let Some(u) = t.get("averageUtilization").and_then(Value::as_i64) {
        if u < 1 {
            e.invalid(
                &format!("{path}.averageUtilization"),
                Bad::Int(u),
                "must be greater than 0",
            );
        }
    }
}

/// A HorizontalPodAutoscaler in its v2 shape (v1 objects are converted first, so their errors
/// name v2 fields as upstream's, which validates the internal version).
pub(super) fn validate_hpa(e: &mut Errs, obj: &Value) {
    let v2;
    let obj = if obj.get("apiVersion").and_then(Value::as_str) == Some("autoscaling/v1") {
        v2 = crate::hpa::v1_to_v2(obj);
        &v2
    } else {
        obj
    };
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let min = spec.get("minReplicas").and_then(Value::as_i64);
    let max = spec.get("maxReplicas").and_then(Value::as_i64).unwrap_or(0);
    if let Some(m) = min.filter(|m| *m < 1) {
        e.invalid(
            "spec.minReplicas",
            Bad::Int(m),
            "must be greater than or equal to 1",
        );
    }
    if max < 1 {
        e.invalid("spec.maxReplicas", Bad::Int(max), "must be greater than 0");
    }
    if min.is_some_and(|m| max < m) {
        e.invalid(
            "spec.maxReplicas",
            Bad::Int(max),
            "must be greater than or equal to `minReplicas`",
        );
    }
    for key in ["kind", "name"] {
        let path = format!("spec.scaleTargetRef.{key}");
        match spec
            .pointer(&format!("/scaleTargetRef/{key}"))
            .and_then(Value::as_str)
        {
            None | Some("") => e.required(&path, ""),
            Some(v) => {
                for msg in path_segment_errors(v) {
                    e.invalid(&path, bad_str(v), msg);
                }
            }
        }
    }
    const TYPES: &[&str] = &[
        "ContainerResource",
        "External",
        "Object",
        "Pods",
        "Resource",
    ];
    for (i, m) in arr(spec.get("metrics")).iter().enumerate() {
        let path = format!("spec.metrics[{i}]");
        let t = m.get("type").and_then(Value::as_str).unwrap_or_default();
        let key = match t {
            "" => {
                e.required(&format!("{path}.type"), "must specify a metric source type");
                continue;
            }
            "Resource" => "resource",
            "ContainerResource" => "containerResource",
            "Pods" => "pods",
            "Object" => "object",
            "External" => "external",
            other => {
                e.not_supported(&format!("{path}.type"), bad_str(other), TYPES);
                continue;
            }
        };
        let Some(src) = m.get(key).filter(|v| v.is_object()) else {
            e.required(
                &format!("{path}.{key}"),
                "must populate information for the given metric source",
            );
            continue;
        };
        if matches!(key, "resource" | "containerResource")
            && src
                .get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            e.required(
                &format!("{path}.{key}.name"),
                "must specify a resource name",
            );
        }
        if key == "containerResource"
            && src
                .get("container")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            e.required(
                &format!("{path}.{key}.container"),
                "must specify a container",
            );
        }
        validate_metric_target(
            e,
            src.get("target").unwrap_or(&Value::Null),
            &format!("{path}.{key}.target"),
        );
    }
}
