//! Pods: the pod spec (containers, volumes, probes, security contexts, affinity, tolerations…),
//! pod templates and the pod update rules.

use super::*;

pub(super) const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

pub(super) fn validate_pod(e: &mut Errs, pod: &Value, old: Option<&Value>) {
    let spec = pod.get("spec");
    validate_pod_spec(e, spec, "spec", true);
    for key in ["containers", "initContainers"] {
        for (i, c) in arr(spec.and_then(|s| s.get(key))).iter().enumerate() {
            let image = str_at(c, "image");
            if image.trim() != image {
                e.invalid(
                    &format!("spec.{key}[{i}].image"),
                    bad_str(image),
                    "must not have leading or trailing whitespace",
                );
            }
        }
    }
    match old {
        None => {
            if !arr(spec.and_then(|s| s.get("ephemeralContainers"))).is_empty() {
                e.forbidden("spec.ephemeralContainers", "cannot be set on create");
            }
            if spec.is_some_and(|s| !str_at(s, "nodeName").is_empty())
                && !arr(spec.and_then(|s| s.get("schedulingGates"))).is_empty()
            {
                e.forbidden(
                    "spec.nodeName",
                    "cannot be set until all schedulingGates have been cleared",
                );
            }
        }
        Some(old) => validate_pod_update(e, old.get("spec"), spec),
    }
}

pub(super) fn validate_pod_update(e: &mut Errs, old: Option<&Value>, new: Option<&Value>) {
    let empty = Value::Object(Map::new());
    let old = old.unwrap_or(&empty);
    let new = new.unwrap_or(&empty);
    for key in ["containers", "initContainers"] {
        let (oc, nc) = (arr(old.get(key)), arr(new.get(key)));
        if oc.len() != nc.len() {
            e.forbidden(
                &format!("spec.{key}"),
                "pod updates may not add or remove containers",
            );
            return;
        }
    }
    if let Some(n) = new.get("activeDeadlineSeconds").and_then(Value::as_i64) {
        if !(0..=i64::from(i32::MAX)).contains(&n) {
            e.invalid(
                "spec.activeDeadlineSeconds",
                Bad::Int(n),
                &inclusive_range_error(0, i64::from(i32::MAX)),
            );
            return;
        }
        if let Some(o) = old.get("activeDeadlineSeconds").and_then(Value::as_i64) {
            if o < n {
                e.invalid(
                    "spec.activeDeadlineSeconds",
                    Bad::Int(n),
                    "must be less than or equal to previous value",
                );
                return;
            }
        }
    } else if is_set(old.get("activeDeadlineSeconds")) {
        e.invalid(
            "spec.activeDeadlineSeconds",
            Bad::Raw("null".into()),
            "must not update from a positive integer to nil value",
        );
    }
    // Tolerations: existing ones may only change their tolerationSeconds.
    let new_tols = arr(new.get("tolerations"));
    for ot in arr(old.get("tolerations")) {
        let strip = |t: &Value| {
            let mut t = t.clone();
            if let Some(m) = t.as_object_mut() {
                m.remove("tolerationSeconds");
            }
            t
        };
        if !new_tols.iter().any(|nt| strip(nt) == strip(ot)) {
            e.forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            );
            break;
        }
    }
    // Munge the updatable fields, then the specs must be equal.
    let mut munged = new.clone();
    if let Some(m) = munged.as_object_mut() {
        for key in ["containers", "initContainers"] {
            if let Some(Value::Array(cs)) = m.get_mut(key) {
                for (i, c) in cs.iter_mut().enumerate() {
                    if let Some(cm) = c.as_object_mut() {
                        match old
                            .get(key)
                            .and_then(|a| a.get(i))
                            .and_then(|o| o.get("image"))
                        {
                            Some(img) => cm.insert("image".into(), img.clone()),
                            None => cm.remove("image"),
                        };
                    }
                }
            }
        }
        for key in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
            match old.get(key) {
                Some(v) => m.insert(key.into(), v.clone()),
                None => m.remove(key),
            };
        }
        let old_grace = old
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64);
        let new_grace = m
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64);
        if old_grace.is_some_and(|g| g < 0) && new_grace == Some(1) {
            if let Some(g) = old.get("terminationGracePeriodSeconds") {
                m.insert("terminationGracePeriodSeconds".into(), g.clone());
            }
        }
    }
    if !json_semantic_eq(&munged, old) {
        let diff = spec_diff("core.PodSpec", old, &munged);
        e.forbidden(
            "spec",
            &format!(
                "pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n{diff}"
            ),
        );
    }
}

/// Equality that treats a missing key like null.
pub(super) fn json_semantic_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().all(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => json_semantic_eq(p, q),
                (Some(v), None) | (None, Some(v)) => v.is_null(),
                (None, None) => true,
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_semantic_eq(p, q))
        }
        _ => a == b,
    }
}

/// A short diff of two specs in the spirit of the `cmp.Diff` upstream appends (one `-`/`+`
/// line pair per changed top-level field, values as JSON).
pub(super) fn spec_diff(type_name: &str, old: &Value, new: &Value) -> String {
    let mut out = format!("  {type_name}{{\n");
    let keys: BTreeSet<&String> = old
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .chain(new.as_object().into_iter().flat_map(|m| m.keys()))
        .collect();
    for k in keys {
        let (o, n) = (old.get(k), new.get(k));
        let same = match (o, n) {
            (Some(a), Some(b)) => json_semantic_eq(a, b),
            (Some(v), None) | (None, Some(v)) => v.is_null(),
            (None, None) => true,
        };
        if same {
            continue;
        }
        if let Some(o) = o {
            out.push_str(&format!("- \t{k}: {o},\n"));
        }
        if let Some(n) = n {
            out.push_str(&format!("+ \t{k}: {n},\n"));
        }
    }
    out.push_str("  }\n");
    out
}

pub(super) fn validate_pod_template(e: &mut Errs, t: Option<&Value>, path: &str) {
    let Some(t) = t.filter(|t| !t.is_null()) else {
        e.required(path, "");
        return;
    };
    validate_labels(e, t.pointer("/metadata/labels"), &format!("{path}.labels"));
    validate_annotations(
        e,
        t.pointer("/metadata/annotations"),
        &format!("{path}.annotations"),
    );
    validate_pod_spec(e, t.get("spec"), &format!("{path}.spec"), false);
    if !arr(t.pointer("/spec/ephemeralContainers")).is_empty() {
        e.forbidden(
            &format!("{path}.spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        );
    }
}

pub(super) fn validate_pod_spec(e: &mut Errs, spec: Option<&Value>, path: &str, is_pod: bool) {
    let empty = Value::Object(Map::new());
    let spec = spec.filter(|s| s.is_object()).unwrap_or(&empty);
    if !is_set(spec.get("terminationGracePeriodSeconds")) {
        e.required(&format!("{path}.terminationGracePeriodSeconds"), "");
    }
    let volumes = validate_volumes(e, spec.get("volumes"), &format!("{path}.volumes"));
    let containers = arr(spec.get("containers"));
    let cpath = format!("{path}.containers");
    let restart_policy = str_at(spec, "restartPolicy");
    if containers.is_empty() {
        e.required(&cpath, "");
    } else {
        let mut names = BTreeSet::new();
        for (i, c) in containers.iter().enumerate() {
            let p = format!("{cpath}[{i}]");
            validate_container_common(e, c, &volumes, &p);
            let name = str_at(c, "name");
            if !names.insert(name.to_string()) {
                e.duplicate(&format!("{p}.name"), bad_str(name));
            }
            validate_probes(e, c, &p);
            if is_set(c.get("restartPolicy")) {
                e.forbidden(
                    &format!("{p}.restartPolicy"),
                    "may not be set for non-init containers",
                );
            }
        }
        check_host_port_conflicts(e, containers, &cpath);
    }
    let ipath = format!("{path}.initContainers");
    let mut all_names: BTreeSet<String> = containers
        .iter()
        .map(|c| str_at(c, "name").to_string())
        .collect();
    for (i, c) in arr(spec.get("initContainers")).iter().enumerate() {
        let p = format!("{ipath}[{i}]");
        validate_container_common(e, c, &volumes, &p);
        let mut restart_always = false;
        if let Some(rp) = c.get("restartPolicy").filter(|v| !v.is_null()) {
            let rp = scalar_string(rp);
            if rp != "Always" {
                e.not_supported(&format!("{p}.restartPolicy"), Bad::Str(rp), &["Always"]);
            } else {
                restart_always = true;
            }
        }
        let name = str_at(c, "name");
        if all_names.contains(name) {
            e.duplicate(&format!("{p}.name"), bad_str(name));
        } else if !name.is_empty() {
            all_names.insert(name.to_string());
        }
        check_host_port_conflicts(e, std::slice::from_ref(c), &ipath);
        if restart_always {
            validate_probes(e, c, &p);
        } else {
            for key in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if is_set(c.get(key)) {
                    e.forbidden(
                        &format!("{p}.{key}"),
                        "may not be set for init containers without restartPolicy=Always",
                    );
                }
            }
        }
    }
    // hostNetwork: hostPort must match containerPort.
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for (i, c) in containers.iter().enumerate() {
            for (j, port) in arr(c.get("ports")).iter().enumerate() {
                let hp = port.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
                let cp = port
                    .get("containerPort")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if (is_pod || hp != 0) && hp != cp {
                    e.invalid(
                        &format!("{cpath}[{i}].ports[{j}].hostPort"),
                        Bad::Int(hp),
                        "must match `containerPort` when `hostNetwork` is true",
                    );
                }
            }
        }
    }
    match restart_policy {
        "Always" | "OnFailure" | "Never" => {}
        "" => e.required(&format!("{path}.restartPolicy"), ""),
        other => e.not_supported(
            &format!("{path}.restartPolicy"),
            bad_str(other),
            &["Always", "OnFailure", "Never"],
        ),
    }
    let dns_policy = str_at(spec, "dnsPolicy");
    match dns_policy {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => e.required(&format!("{path}.dnsPolicy"), ""),
        other => e.not_supported(
            &format!("{path}.dnsPolicy"),
            bad_str(other),
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        ),
    }
    validate_labels(e, spec.get("nodeSelector"), &format!("{path}.nodeSelector"));
    if dns_policy == "None" {
        match spec.get("dnsConfig").filter(|v| !v.is_null()) {
            None => e.required(
                &format!("{path}.dnsConfig"),
                "must provide `dnsConfig` when `dnsPolicy` is None",
            ),
            Some(c) if arr(c.get("nameservers")).is_empty() => e.required(
                &format!("{path}.dnsConfig.nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            ),
            _ => {}
        }
    }
    for (i, ns) in arr(spec.pointer("/dnsConfig/nameservers"))
        .iter()
        .enumerate()
    {
        let ns = scalar_string(ns);
        if !is_valid_ip(&ns) {
            e.invalid(
                &format!("{path}.dnsConfig.nameservers[{i}]"),
                Bad::Str(ns),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            );
        }
    }
    for (key, rule) in [
        ("serviceAccountName", NameRule::Subdomain),
        ("nodeName", NameRule::Subdomain),
        ("priorityClassName", NameRule::Subdomain),
    ] {
        let v = str_at(spec, key);
        if !v.is_empty() {
            for m in name_errors(rule, v, false) {
                e.invalid(&format!("{path}.{key}"), bad_str(v), &m);
            }
        }
    }
    if let Some(v) = spec.get("activeDeadlineSeconds").and_then(Value::as_i64) {
        if !(1..=i64::from(i32::MAX)).contains(&v) {
            e.invalid(
                &format!("{path}.activeDeadlineSeconds"),
                Bad::Int(v),
                &inclusive_range_error(1, i64::from(i32::MAX)),
            );
        }
    }
    for key in ["hostname", "subdomain"] {
        let v = str_at(spec, key);
        if !v.is_empty() {
            for m in is_dns1123_label(v) {
                e.invalid(&format!("{path}.{key}"), bad_str(v), &m);
            }
        }
    }
    validate_tolerations(e, spec.get("tolerations"), &format!("{path}.tolerations"));
}

pub(super) fn validate_tolerations(e: &mut Errs, tols: Option<&Value>, path: &str) {
    for (i, t) in arr(tols).iter().enumerate() {
        let p = format!("{path}[{i}]");
        let key = str_at(t, "key");
        let op = str_at(t, "operator");
        let effect = str_at(t, "effect");
        if !key.is_empty() {
            for m in validate_label_key(key) {
                e.invalid(&format!("{p}.key"), bad_str(key), &m);
            }
        }
        if key.is_empty() && op != "Exists" {
            e.invalid(
                &format!("{p}.operator"),
                bad_str(op),
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            );
        }
        if is_set(t.get("tolerationSeconds")) && effect != "NoExecute" {
            e.invalid(
                &format!("{p}.effect"),
                bad_str(effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            );
        }
        let value = str_at(t, "value");
        match op {
            "Equal" | "" => {
                let errs = validate_label_value(value);
                if !errs.is_empty() {
                    e.invalid(&format!("{p}.operator"), bad_str(value), &errs.join(";"));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    e.invalid(
                        &format!("{p}.operator"),
                        bad_str(value),
                        "value must be empty when `operator` is 'Exists'",
                    );
                }
            }
            other => e.not_supported(
                &format!("{p}.operator"),
                bad_str(other),
                &["Equal", "Exists"],
            ),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            e.not_supported(
                &format!("{p}.effect"),
                bad_str(effect),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            );
        }
    }
}

pub(super) const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// Validates `volumes` and returns the volume names.
pub(super) fn validate_volumes(e: &mut Errs, vols: Option<&Value>, path: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, v) in arr(vols).iter().enumerate() {
        let p = format!("{path}[{i}]");
        let sources: Vec<&str> = VOLUME_SOURCES
            .iter()
            .copied()
            .filter(|s| is_set(v.get(*s)))
            .collect();
        if sources.is_empty() {
            e.required(&p, "must specify a volume type");
        }
        for extra in sources.iter().skip(1) {
            e.forbidden(
                &format!("{p}.{extra}"),
                "may not specify more than 1 volume type",
            );
        }
        if let Some(src) = sources.first() {
            let s = &v[*src];
            let sp = format!("{p}.{src}");
            let required_name = match *src {
                "configMap" => Some("name"),
                "secret" => Some("secretName"),
                "hostPath" => Some("path"),
                "persistentVolumeClaim" => Some("claimName"),
                "nfs" => Some("server"),
                _ => None,
            };
            if let Some(key) = required_name {
                if str_at(s, key).is_empty() {
                    e.required(&format!("{sp}.{key}"), "");
                }
            }
            if let Some(mode) = s.get("defaultMode").and_then(Value::as_i64) {
                if !(0..=0o777).contains(&mode) {
                    e.invalid(
                        &format!("{sp}.defaultMode"),
                        Bad::Int(mode),
                        "must be a number between 0 and 0777 (octal), both inclusive",
                    );
                }
            }
        }
        let name = str_at(v, "name");
        if name.is_empty() {
            e.required(&format!("{p}.name"), "");
        } else {
            for m in is_dns1123_label(name) {
                e.invalid(&format!("{p}.name"), bad_str(name), &m);
            }
        }
        if !names.insert(name.to_string()) {
            e.duplicate(&format!("{p}.name"), bad_str(name));
        }
    }
    names
}

pub(super) fn validate_container_common(
    e: &mut Errs,
    c: &Value,
    volumes: &BTreeSet<String>,
    p: &str,
) {
    let name = str_at(c, "name");
    if name.is_empty() {
        e.required(&format!("{p}.name"), "");
    } else {
        for m in is_dns1123_label(name) {
            e.invalid(&format!("{p}.name"), bad_str(name), &m);
        }
    }
    if str_at(c, "image").is_empty() {
        e.required(&format!("{p}.image"), "");
    }
    match str_at(c, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => e.required(&format!("{p}.terminationMessagePolicy"), ""),
        other => e.not_supported(
            &format!("{p}.terminationMessagePolicy"),
            bad_str(other),
            &["File", "FallbackToLogsOnError"],
        ),
    }
    validate_container_ports(e, c.get("ports"), &format!("{p}.ports"));
    for (i, env) in arr(c.get("env")).iter().enumerate() {
        let ep = format!("{p}.env[{i}]");
        let n = str_at(env, "name");
        if n.is_empty() {
            e.required(&format!("{ep}.name"), "");
        } else if n.contains('=') || !n.bytes().all(|b| (32..=126).contains(&b)) {
            e.invalid(
                &format!("{ep}.name"),
                bad_str(n),
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            );
        }
        if let Some(vf) = env.get("valueFrom").filter(|v| !v.is_null()) {
            let sources = [
                "fieldRef",
                "resourceFieldRef",
                "configMapKeyRef",
                "secretKeyRef",
            ]
            .iter()
            .filter(|k| is_set(vf.get(**k)))
            .count();
            let vfp = format!("{ep}.valueFrom");
            if sources == 0 {
                e.invalid(
                    &vfp,
                    bad_str(""),
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                );
            } else if !str_at(env, "value").is_empty() {
                e.invalid(
                    &vfp,
                    bad_str(""),
                    "may not be specified when `value` is not empty",
                );
            } else if sources > 1 {
                e.invalid(
                    &vfp,
                    bad_str(""),
                    "may not have more than one field specified at a time",
                );
            }
            for key in ["configMapKeyRef", "secretKeyRef"] {
                if let Some(r) = vf.get(key).filter(|v| !v.is_null()) {
                    let k = str_at(r, "key");
                    if k.is_empty() {
                        e.required(&format!("{vfp}.{key}.key"), "");
                    } else {
                        for m in is_config_map_key(k) {
                            e.invalid(&format!("{vfp}.{key}.key"), bad_str(k), &m);
                        }
                    }
                }
            }
        }
    }
    let mut mount_paths = BTreeSet::new();
    for (i, m) in arr(c.get("volumeMounts")).iter().enumerate() {
        let mp = format!("{p}.volumeMounts[{i}]");
        let n = str_at(m, "name");
        if n.is_empty() {
            e.required(&format!("{mp}.name"), "");
        }
        if !volumes.contains(n) {
            e.not_found(&format!("{mp}.name"), bad_str(n));
        }
        let path = str_at(m, "mountPath");
        if path.is_empty() {
            e.required(&format!("{mp}.mountPath"), "");
        }
        if !mount_paths.insert(path.to_string()) {
            e.invalid(&format!("{mp}.mountPath"), bad_str(path), "must be unique");
        }
    }
    match str_at(c, "imagePullPolicy") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => e.required(&format!("{p}.imagePullPolicy"), ""),
        other => e.not_supported(
            &format!("{p}.imagePullPolicy"),
            bad_str(other),
            &["Always", "IfNotPresent", "Never"],
        ),
    }
    validate_resources(e, c.get("resources"), &format!("{p}.resources"));
}

pub(super) fn validate_container_ports(e: &mut Errs, ports: Option<&Value>, path: &str) {
    let mut names = BTreeSet::new();
    for (i, port) in arr(ports).iter().enumerate() {
        let p = format!("{path}[{i}]");
        let name = str_at(port, "name");
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    e.invalid(&format!("{p}.name"), bad_str(name), &m);
                }
            } else if !names.insert(name.to_string()) {
                e.duplicate(&format!("{p}.name"), bad_str(name));
            }
        }
        let cp = port
            .get("containerPort")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if cp == 0 {
            e.required(&format!("{p}.containerPort"), "");
        } else {
            for m in is_valid_port_num(cp) {
                e.invalid(&format!("{p}.containerPort"), Bad::Int(cp), &m);
            }
        }
        let hp = port.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
        if hp != 0 {
            for m in is_valid_port_num(hp) {
                e.invalid(&format!("{p}.hostPort"), Bad::Int(hp), &m);
            }
        }
        validate_protocol(e, port, &format!("{p}.protocol"));
    }
}

pub(super) fn validate_protocol(e: &mut Errs, port: &Value, path: &str) {
    match str_at(port, "protocol") {
        "TCP" | "UDP" | "SCTP" => {}
        "" => e.required(path, ""),
        other => e.not_supported(path, bad_str(other), &["SCTP", "TCP", "UDP"]),
    }
}

pub(super) fn check_host_port_conflicts(e: &mut Errs, containers: &[Value], path: &str) {
    let mut seen = BTreeSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in arr(c.get("ports")).iter().enumerate() {
            let hp = port.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!(
                "{}/{}/{}",
                str_at(port, "protocol"),
                str_at(port, "hostIP"),
                hp
            );
            if !seen.insert(key.clone()) {
                e.duplicate(&format!("{path}[{ci}].ports[{pi}].hostPort"), Bad::Str(key));
            }
        }
    }
}

pub(super) fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

pub(super) fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

pub(super) fn overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !name.starts_with("hugepages-")
}

pub(super) fn validate_resource_entry(
    e: &mut Errs,
    name: &str,
    q: &Value,
    path: &str,
) -> Option<f64> {
    for m in is_qualified_name(name) {
        e.invalid(path, bad_str(name), &m);
    }
    if !name.contains('/') && !is_standard_container_resource(name) {
        e.invalid(
            path,
            bad_str(name),
            "must be a standard resource for containers",
        );
    }
    let s = scalar_string(q);
    match parse_quantity(&s) {
        None => {
            e.invalid(path, Bad::Str(s), QUANTITY_MSG);
            None
        }
        Some(v) => {
            if v < 0.0 {
                e.invalid(path, Bad::Str(s), IS_NEGATIVE);
            }
            Some(v)
        }
    }
}

pub(super) fn validate_resources(e: &mut Errs, res: Option<&Value>, path: &str) {
    let lim_path = format!("{path}.limits");
    let req_path = format!("{path}.requests");
    let limits = res.and_then(|r| r.get("limits"));
    let mut limit_values = BTreeMap::new();
    for (name, q) in sorted_map(limits) {
        if let Some(v) = validate_resource_entry(e, name, q, &format!("{lim_path}[{name}]")) {
            limit_values.insert(name.clone(), (v, scalar_string(q)));
        }
    }
    for (name, q) in sorted_map(res.and_then(|r| r.get("requests"))) {
        let Some(v) = validate_resource_entry(e, name, q, &format!("{req_path}[{name}]")) else {
            continue;
        };
        let qs = scalar_string(q);
        match limit_values.get(name) {
            Some((lv, ls)) => {
                if *lv != v && !overcommit_allowed(name) {
                    e.invalid(
                        &req_path,
                        Bad::Str(qs),
                        &format!("must be equal to {name} limit of {ls}"),
                    );
                } else if v > *lv {
                    e.invalid(
                        &req_path,
                        Bad::Str(qs),
                        &format!("must be less than or equal to {name} limit of {ls}"),
                    );
                }
            }
            None if !overcommit_allowed(name) => {
                e.required(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                );
            }
            None => {}
        }
    }
}

pub(super) fn validate_probes(e: &mut Errs, c: &Value, p: &str) {
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(probe) = c.get(key).filter(|v| !v.is_null()) else {
            continue;
        };
        let pp = format!("{p}.{key}");
        validate_handler(e, probe, &pp, &["exec", "httpGet", "tcpSocket", "grpc"]);
        for f in [
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
        ] {
            e.nonnegative(&format!("{pp}.{f}"), probe.get(f));
        }
        if let Some(g) = probe
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
        {
            if key == "readinessProbe" {
                e.invalid(
                    &format!("{pp}.terminationGracePeriodSeconds"),
                    Bad::Int(g),
                    "must not be set for readinessProbes",
                );
            } else if g <= 0 {
                e.invalid(
                    &format!("{pp}.terminationGracePeriodSeconds"),
                    Bad::Int(g),
                    "must be greater than 0",
                );
            }
        }
        if key != "readinessProbe" {
            let st = probe
                .get("successThreshold")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if st != 1 {
                e.invalid(&format!("{pp}.successThreshold"), Bad::Int(st), "must be 1");
            }
        }
    }
    if let Some(l) = c.get("lifecycle").filter(|v| !v.is_null()) {
        for key in ["postStart", "preStop"] {
            if let Some(h) = l.get(key).filter(|v| !v.is_null()) {
                validate_handler(
                    e,
                    h,
                    &format!("{p}.lifecycle.{key}"),
                    &["exec", "httpGet", "tcpSocket", "sleep"],
                );
            }
        }
    }
}

pub(super) fn validate_port_num_or_name(e: &mut Errs, v: Option<&Value>, path: &str) {
    match v {
        Some(Value::String(s)) => {
            for m in is_valid_port_name(s) {
                e.invalid(path, bad_str(s), &m);
            }
        }
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            for m in is_valid_port_num(n) {
                e.invalid(path, Bad::Int(n), &m);
            }
        }
        _ => {
            for m in is_valid_port_num(0) {
                e.invalid(path, Bad::Int(0), &m);
            }
        }
    }
}

pub(super) fn validate_handler(e: &mut Errs, h: &Value, path: &str, kinds: &[&str]) {
    let mut count = 0;
    for kind in kinds {
        let Some(a) = h.get(*kind).filter(|v| !v.is_null()) else {
            continue;
        };
        let kp = format!("{path}.{kind}");
        if count > 0 {
            e.forbidden(&kp, "may not specify more than 1 handler type");
            continue;
        }
        count += 1;
        match *kind {
            "exec" if arr(a.get("command")).is_empty() => {
                e.required(&format!("{kp}.command"), "");
            }
            "httpGet" => {
                if str_at(a, "path").is_empty() {
                    e.required(&format!("{kp}.path"), "");
                }
                validate_port_num_or_name(e, a.get("port"), &format!("{kp}.port"));
                let scheme = str_at(a, "scheme");
                if scheme != "HTTP" && scheme != "HTTPS" {
                    e.not_supported(&format!("{kp}.scheme"), bad_str(scheme), &["HTTP", "HTTPS"]);
                }
            }
            "tcpSocket" => validate_port_num_or_name(e, a.get("port"), &format!("{kp}.port")),
            "grpc" => {
                let port = a.get("port").and_then(Value::as_i64).unwrap_or(0);
                for m in is_valid_port_num(port) {
                    e.invalid(&format!("{kp}.port"), Bad::Int(port), &m);
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        e.required(path, "must specify a handler type");
    }
}
