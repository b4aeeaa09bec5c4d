//! Services: types, ports, cluster IPs, node ports, selectors and the update rules.

use super::*;

pub(super) fn go_service_port_key(protocol: &str, port: i64) -> String {
    format!(
        "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
        go_quote(protocol)
    )
}

pub(super) fn cluster_ips(spec: Option<&Value>) -> Vec<String> {
    let ips: Vec<String> = arr(spec.and_then(|s| s.get("clusterIPs")))
        .iter()
        .map(scalar_string)
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    let ip = spec.map(|s| str_at(s, "clusterIP")).unwrap_or_default();
    if ip.is_empty() {
        Vec::new()
    } else {
        vec![ip.to_string()]
    }
}

pub(super) fn validate_service(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec");
    let get = |k: &str| spec.and_then(|s| s.get(k)).filter(|v| !v.is_null());
    let ty = get("type").and_then(Value::as_str).unwrap_or_default();
    let ips = cluster_ips(spec);
    let headless = ips.first().is_some_and(|ip| ip == "None");
    let ports = arr(get("ports"));
    if ports.is_empty() && !headless && ty != "ExternalName" {
        e.required("spec.ports", "");
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => e.invalid(
            "spec.clusterIPs[0]",
            bad_str("None"),
            &format!("may not be set to 'None' for {ty} services"),
        ),
        "ExternalName" => {
            if !ips.is_empty() {
                e.forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                );
            }
            if !arr(get("ipFamilies")).is_empty() {
                e.forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                );
            }
            if get("ipFamilyPolicy").is_some() {
                e.forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                );
            }
            let name = get("externalName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                e.required("spec.externalName", "");
            } else {
                for m in is_dns1123_subdomain(cname) {
                    e.invalid("spec.externalName", bad_str(cname), &m);
                }
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = format!("spec.ports[{i}]");
        let name = str_at(p, "name");
        if ports.len() > 1 && name.is_empty() {
            e.required(&format!("{pp}.name"), "");
        } else if !name.is_empty() {
            for m in is_dns1123_label(name) {
                e.invalid(&format!("{pp}.name"), bad_str(name), &m);
            }
            if !names.insert(name.to_string()) {
                e.duplicate(&format!("{pp}.name"), bad_str(name));
            }
        }
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        for m in is_valid_port_num(port) {
            e.invalid(&format!("{pp}.port"), Bad::Int(port), &m);
        }
        validate_protocol(e, p, &format!("{pp}.protocol"));
        validate_port_num_or_name(e, p.get("targetPort"), &format!("{pp}.targetPort"));
        if let Some(ap) = p.get("appProtocol").and_then(Value::as_str) {
            for m in is_qualified_name(ap) {
                e.invalid(&format!("{pp}.appProtocol"), bad_str(ap), &m);
            }
        }
    }
    validate_labels(e, get("selector"), "spec.selector");
    match get("sessionAffinity")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "" => e.required("spec.sessionAffinity", ""),
        "ClientIP" => {
            let t =
                get("sessionAffinityConfig").and_then(|c| c.pointer("/clientIP/timeoutSeconds"));
            match t.and_then(Value::as_i64) {
                None => e.required(
                    "spec.sessionAffinityConfig",
                    "when session affinity type is ClientIP",
                ),
                Some(t) if t <= 0 || t > 86400 => e.invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    Bad::Int(t),
                    "must be greater than 0 and less than 86400",
                ),
                _ => {}
            }
        }
        "None" => {
            if get("sessionAffinityConfig").is_some() {
                e.forbidden(
                    "spec.sessionAffinityConfig",
                    "must not be set when session affinity is None",
                );
            }
        }
        other => e.not_supported(
            "spec.sessionAffinity",
            bad_str(other),
            &["ClientIP", "None"],
        ),
    }
    if ty != "ExternalName" {
        if let Some(ip) = ips.first() {
            if ip != "None" && !is_valid_ip(ip) {
                e.invalid(
                    "spec.clusterIPs[0]",
                    bad_str(ip),
                    "must be empty, 'None', or a valid IP address",
                );
            }
        }
        if let Some(p) = get("ipFamilyPolicy").and_then(Value::as_str) {
            if !matches!(p, "SingleStack" | "PreferDualStack" | "RequireDualStack") {
                e.not_supported(
                    "spec.ipFamilyPolicy",
                    bad_str(p),
                    &["PreferDualStack", "RequireDualStack", "SingleStack"],
                );
            }
        }
        for (i, f) in arr(get("ipFamilies")).iter().enumerate() {
            let f = scalar_string(f);
            if f != "IPv4" && f != "IPv6" {
                e.not_supported(
                    &format!("spec.ipFamilies[{i}]"),
                    Bad::Str(f),
                    &["IPv4", "IPv6"],
                );
            }
        }
    }
    for (i, ip) in arr(get("externalIPs")).iter().enumerate() {
        let ip = scalar_string(ip);
        if !is_valid_ip(&ip) {
            e.invalid(
                &format!("spec.externalIPs[{i}]"),
                Bad::Str(ip),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            );
        }
    }
    match ty {
        "" => e.required("spec.type", ""),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" => {}
        other => e.not_supported(
            "spec.type",
            bad_str(other),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ),
    }
    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                e.forbidden(
                    &format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                );
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let np = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
        if np != 0 && !node_ports.insert((str_at(p, "protocol").to_string(), np)) {
            e.duplicate(&format!("spec.ports[{i}].nodePort"), Bad::Int(np));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let proto = str_at(p, "protocol").to_string();
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !seen.insert((proto.clone(), port)) {
            e.duplicate(
                &format!("spec.ports[{i}]"),
                Bad::Raw(go_service_port_key(&proto, port)),
            );
        }
    }
    let ranges = arr(get("loadBalancerSourceRanges"));
    if !ranges.is_empty() {
        if ty != "LoadBalancer" {
            e.forbidden(
                "spec.LoadBalancerSourceRanges",
                "may only be used when `type` is 'LoadBalancer'",
            );
        }
        for (i, r) in ranges.iter().enumerate() {
            let r = scalar_string(r).trim().to_string();
            if !is_valid_cidr(&r) {
                e.invalid(
                    &format!("spec.LoadBalancerSourceRanges[{i}]"),
                    Bad::Str(r),
                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                );
            }
        }
    }
    if get("allocateLoadBalancerNodePorts").is_some() && ty != "LoadBalancer" {
        e.forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        );
    }
    if ty == "LoadBalancer" && get("allocateLoadBalancerNodePorts").is_none() {
        e.required("allocateLoadBalancerNodePorts", "");
    }
    let etp = get("externalTrafficPolicy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let externally = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && !arr(get("externalIPs")).is_empty());
    if !externally {
        if !etp.is_empty() {
            e.invalid(
                "spec.externalTrafficPolicy",
                bad_str(etp),
                "may only be set for externally-accessible services",
            );
        }
    } else if etp.is_empty() {
        e.required("spec.externalTrafficPolicy", "");
    } else if etp != "Cluster" && etp != "Local" {
        e.not_supported(
            "spec.externalTrafficPolicy",
            bad_str(etp),
            &["Cluster", "Local"],
        );
    }
    let hc = get("healthCheckNodePort")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let needs_hc = ty == "LoadBalancer" && etp == "Local";
    if !needs_hc && hc != 0 {
        e.invalid(
            "spec.healthCheckNodePort",
            Bad::Int(hc),
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        );
    }
    match get("internalTrafficPolicy").and_then(Value::as_str) {
        None if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            e.required("spec.internalTrafficPolicy", "")
        }
        Some(p) if p != "Cluster" && p != "Local" => e.not_supported(
            "spec.internalTrafficPolicy",
            bad_str(p),
            &["Cluster", "Local"],
        ),
        _ => {}
    }
    if let Some(old) = old {
        let os = old.get("spec");
        let old_ty = os.map(|s| str_at(s, "type")).unwrap_or_default();
        let old_ips = cluster_ips(os);
        let old_headless = old_ips.first().is_some_and(|ip| ip == "None");
        let new_ips = ips.clone();
        if ty != "ExternalName"
            && old_ty != "ExternalName"
            && !(old_headless && headless)
            && !new_ips.is_empty()
        {
            let changed = if old_ips.len() == new_ips.len() {
                old_ips != new_ips
            } else {
                old_ips.first().is_some_and(|o| new_ips.first() != Some(o))
            };
            if changed {
                let list: Vec<Value> = new_ips.into_iter().map(Value::String).collect();
                e.invalid(
                    "spec.clusterIPs[0]",
                    Bad::Raw(go_string_slice(Some(&Value::Array(list)))),
                    "may not change once set",
                );
            }
        }
        let of = arr(os.and_then(|s| s.get("ipFamilies")));
        let nf = arr(get("ipFamilies"));
        if ty != "ExternalName"
            && old_ty != "ExternalName"
            && !of.is_empty()
            && !nf.is_empty()
            && of[0] != nf[0]
        {
            let rendered: Vec<String> = nf.iter().map(|f| go_quote(&scalar_string(f))).collect();
            e.invalid(
                "spec.ipFamilies[0]",
                Bad::Raw(format!("[]core.IPFamily{{{}}}", rendered.join(", "))),
                "may not change once set",
            );
        }
    }
}
