//! The rest of core/v1: ConfigMaps, Secrets, Endpoints, Nodes and PersistentVolumeClaims.

use super::*;

pub(super) const MAX_SECRET_SIZE: usize = 1024 * 1024;

pub(super) fn base64_decoded_len(s: &str) -> usize {
    let trimmed = s.trim_end_matches('=');
    trimmed.len() * 3 / 4
}

pub(super) fn validate_immutable_data(e: &mut Errs, obj: &Value, old: &Value, keys: &[&str]) {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
        e.forbidden("immutable", "field is immutable when `immutable` is set");
    }
    for key in keys {
        let (o, n) = (old.get(*key), obj.get(*key));
        let norm = |v: Option<&Value>| {
            v.filter(|v| v.as_object().is_some_and(|m| !m.is_empty()))
                .cloned()
        };
        if norm(o) != norm(n) {
            e.forbidden(key, "field is immutable when `immutable` is set");
        }
    }
}

pub(super) fn validate_config_map(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    if let Some(old) = old {
        validate_immutable_data(e, obj, old, &["data", "binaryData"]);
    }
    let binary = obj.get("binaryData").and_then(Value::as_object);
    let mut total = 0;
    for (k, v) in sorted_map(obj.get("data")) {
        let p = format!("data[{k}]");
        for m in is_config_map_key(k) {
            e.invalid(&p, bad_str(k), &m);
        }
        if binary.is_some_and(|b| b.contains_key(k)) {
            e.invalid(&p, bad_str(k), "duplicate of key present in binaryData");
        }
        total += scalar_string(v).len();
    }
    for (k, v) in sorted_map(obj.get("binaryData")) {
        for m in is_config_map_key(k) {
            e.invalid(&format!("binaryData[{k}]"), bad_str(k), &m);
        }
        total += base64_decoded_len(&scalar_string(v));
    }
    if total > MAX_SECRET_SIZE {
        e.too_long("[]", MAX_SECRET_SIZE);
    }
}

pub(super) fn validate_secret(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    if let Some(old) = old {
        let (o, n) = (str_at(old, "type"), str_at(obj, "type"));
        e.immutable("type", bad_str(n), o != n);
        validate_immutable_data(e, obj, old, &["data"]);
    }
    let data = obj.get("data");
    let mut total = 0;
    for (k, v) in sorted_map(data) {
        for m in is_config_map_key(k) {
            e.invalid(&format!("data[{k}]"), bad_str(k), &m);
        }
        total += base64_decoded_len(&scalar_string(v));
    }
    if total > MAX_SECRET_SIZE {
        e.too_long("data", MAX_SECRET_SIZE);
    }
    let has = |k: &str| data.and_then(|d| d.get(k)).is_some();
    match str_at(obj, "type") {
        "kubernetes.io/service-account-token" => {
            let sa = obj
                .pointer("/metadata/annotations")
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if sa.is_empty() {
                e.required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                );
            }
        }
        "kubernetes.io/dockercfg" if !has(".dockercfg") => e.required("data[.dockercfg]", ""),
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            e.required("data[.dockerconfigjson]", "")
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            e.required("data[username]", "");
            e.required("data[password]", "");
        }
        "kubernetes.io/ssh-auth" => {
            let empty = data
                .and_then(|d| d.get("ssh-privatekey"))
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if empty {
                e.required("data[ssh-privatekey]", "");
            }
        }
        "kubernetes.io/tls" => {
            if !has("tls.crt") {
                e.required("data[tls.crt]", "");
            }
            if !has("tls.key") {
                e.required("data[tls.key]", "");
            }
        }
        _ => {}
    }
}

pub(super) fn validate_endpoints(e: &mut Errs, obj: &Value) {
    for (i, s) in arr(obj.get("subsets")).iter().enumerate() {
        let sp = format!("subsets[{i}]");
        let addrs = arr(s.get("addresses"));
        let not_ready = arr(s.get("notReadyAddresses"));
        if addrs.is_empty() && not_ready.is_empty() {
            e.required(&sp, "must specify `addresses` or `notReadyAddresses`");
        }
        for (key, list) in [("addresses", addrs), ("notReadyAddresses", not_ready)] {
            for (j, a) in list.iter().enumerate() {
                let ap = format!("{sp}.{key}[{j}]");
                let ip = str_at(a, "ip");
                if !is_valid_ip(ip) {
                    e.invalid(
                        &format!("{ap}.ip"),
                        bad_str(ip),
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    );
                }
                let host = str_at(a, "hostname");
                if !host.is_empty() {
                    for m in is_dns1123_label(host) {
                        e.invalid(&format!("{ap}.hostname"), bad_str(host), &m);
                    }
                }
            }
        }
        let ports = arr(s.get("ports"));
        for (j, p) in ports.iter().enumerate() {
            let pp = format!("{sp}.ports[{j}]");
            let name = str_at(p, "name");
            if ports.len() > 1 && name.is_empty() {
                e.required(&format!("{pp}.name"), "");
            } else if !name.is_empty() {
                for m in is_dns1123_label(name) {
                    e.invalid(&format!("{pp}.name"), bad_str(name), &m);
                }
            }
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            for m in is_valid_port_num(port) {
                e.invalid(&format!("{pp}.port"), Bad::Int(port), &m);
            }
            validate_protocol(e, p, &format!("{pp}.protocol"));
        }
    }
}

pub(super) fn validate_node(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let mut seen = BTreeSet::new();
    for (i, t) in arr(obj.pointer("/spec/taints")).iter().enumerate() {
        // Upstream reports taints under metadata.taints (a long-standing path quirk).
        let tp = format!("metadata.taints[{i}]");
        let key = str_at(t, "key");
        for m in validate_label_key(key) {
            e.invalid(&format!("{tp}.key"), bad_str(key), &m);
        }
        let value = str_at(t, "value");
        let errs = validate_label_value(value);
        if !errs.is_empty() {
            e.invalid(&format!("{tp}.value"), bad_str(value), &errs.join(";"));
        }
        let effect = str_at(t, "effect");
        match effect {
            "" => e.required(&format!("{tp}.effect"), ""),
            "NoSchedule" | "PreferNoSchedule" | "NoExecute" => {}
            other => e.not_supported(
                &format!("{tp}.effect"),
                bad_str(other),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ),
        }
        if !seen.insert((effect.to_string(), key.to_string())) {
            let rendered = format!(
                "core.Taint{{Key:{}, Value:{}, Effect:{}, TimeAdded:<nil>}}",
                go_quote(key),
                go_quote(value),
                go_quote(effect)
            );
            e.push(
                "FieldValueDuplicate",
                &tp,
                format!(
                    "Duplicate value: {rendered}: taints must be unique by key and effect pair"
                ),
            );
        }
    }
    for (i, c) in arr(obj.pointer("/spec/podCIDRs")).iter().enumerate() {
        let c = scalar_string(c);
        if !is_valid_cidr(&c) {
            e.invalid(
                &format!("spec.podCIDRs[{i}]"),
                Bad::Str(c),
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            );
        }
    }
    if let Some(old) = old {
        let o = arr(old.pointer("/spec/podCIDRs"));
        if !o.is_empty() && o != arr(obj.pointer("/spec/podCIDRs")) {
            e.forbidden(
                "spec.podCIDRs",
                "node updates may not change podCIDR except from \"\" to valid",
            );
        }
        let op = str_at_path(old, "/spec/providerID");
        if !op.is_empty() && op != str_at_path(obj, "/spec/providerID") {
            e.forbidden(
                "spec.providerID",
                "node updates may not change providerID except from \"\" to valid",
            );
        }
    }
}

pub(super) fn validate_pvc(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec");
    let modes = arr(spec.and_then(|s| s.get("accessModes")));
    if modes.is_empty() {
        e.required("spec.accessModes", "at least 1 access mode is required");
    }
    validate_label_selector(e, spec.and_then(|s| s.get("selector")), "spec.selector");
    let (mut rwop, mut other) = (false, false);
    for m in modes {
        let m = scalar_string(m);
        match m.as_str() {
            "ReadWriteOncePod" => rwop = true,
            "ReadOnlyMany" | "ReadWriteMany" | "ReadWriteOnce" => other = true,
            _ => e.not_supported(
                "spec.accessModes",
                Bad::Str(m.clone()),
                &[
                    "ReadOnlyMany",
                    "ReadWriteMany",
                    "ReadWriteOnce",
                    "ReadWriteOncePod",
                ],
            ),
        }
    }
    if rwop && other {
        e.forbidden(
            "spec.accessModes",
            "may not use ReadWriteOncePod with other access modes",
        );
    }
    let storage = spec.and_then(|s| s.pointer("/resources/requests/storage"));
    match storage {
        None => e.required("spec.resources[storage]", ""),
        Some(q) => {
            let s = scalar_string(q);
            match parse_quantity(&s) {
                None => e.invalid("spec.resources[storage]", Bad::Str(s), QUANTITY_MSG),
                Some(v) if v <= 0.0 => e.invalid(
                    "spec.resources[storage]",
                    Bad::Str(s),
                    "must be greater than zero",
                ),
                _ => {}
            }
        }
    }
    if let Some(sc) = spec
        .and_then(|s| s.get("storageClassName"))
        .and_then(Value::as_str)
    {
        if !sc.is_empty() {
            for m in is_dns1123_subdomain(sc) {
                e.invalid("spec.storageClassName", bad_str(sc), &m);
            }
        }
    }
    if let Some(vm) = spec
        .and_then(|s| s.get("volumeMode"))
        .and_then(Value::as_str)
    {
        if vm != "Block" && vm != "Filesystem" {
            e.not_supported("spec.volumeMode", bad_str(vm), &["Block", "Filesystem"]);
        }
    }
    if let Some(old) = old {
        let os = old.get("spec");
        let bound = old.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
        let strip = |s: Option<&Value>| {
            let mut s = s.cloned().unwrap_or(Value::Null);
            if let Some(m) = s.as_object_mut() {
                if bound {
                    if let Some(Value::Object(r)) = m.get_mut("resources") {
                        r.remove("requests");
                    }
                    m.remove("volumeAttributesClassName");
                }
                // The binder fills volumeName in; an empty value is not a change.
                if m.get("volumeName").is_some_and(|v| v.is_null() || v == "") {
                    m.remove("volumeName");
                }
            }
            s
        };
        let (so, mut sn) = (strip(os), strip(spec));
        // Binding: a claim without a volume may get one (upstream copies the old volumeName
        // over the new one before comparing when the old one is empty).
        if so.get("volumeName").is_none() {
            if let Some(m) = sn.as_object_mut() {
                m.remove("volumeName");
            }
        }
        if !json_semantic_eq(&so, &sn) {
            let diff = spec_diff("core.PersistentVolumeClaimSpec", &so, &sn);
            e.forbidden(
                "spec",
                &format!("spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{diff}"),
            );
        }
        let q = |s: Option<&Value>| {
            s.and_then(|s| s.pointer("/resources/requests/storage"))
                .map(scalar_string)
                .and_then(|q| parse_quantity(&q))
        };
        if let (Some(o), Some(n)) = (q(os), q(spec)) {
            if n < o {
                e.forbidden(
                    "spec.resources.requests.storage",
                    "field can not be less than previous value",
                );
            }
        }
    }
}
