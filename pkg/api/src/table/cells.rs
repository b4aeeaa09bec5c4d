//! The cells of the kinds whose printers compute more than field paths: pods, jobs,
//! services, nodes, events, volumes and claims, quotas, bindings, and their helpers.

use super::*;

// --- pods ---

pub(super) fn pod_cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let init_specs = arr(pod, "spec.initContainers");
    let restartable = |cname: &str| {
        init_specs
            .iter()
            .any(|c| st(c, "name") == cname && st(c, "restartPolicy") == "Always")
    };
    let mut restarts: i64 = 0;
    let mut restartable_restarts: i64 = 0;
    let total = arr(pod, "spec.containers").len()
        + init_specs
            .iter()
            .filter(|c| st(c, "restartPolicy") == "Always")
            .count();
    let mut ready = 0usize;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_restartable_restart: Option<DateTime<Utc>> = None;
    let later = |cur: Option<DateTime<Utc>>, t: Option<DateTime<Utc>>| match (cur, t) {
        (Some(a), Some(b)) if b > a => Some(b),
        (None, Some(b)) => Some(b),
        (a, _) => a,
    };

    let phase = st(pod, "status.phase");
    let mut reason = phase.to_string();
    let status_reason = st(pod, "status.reason");
    if !status_reason.is_empty() {
        reason = status_reason.to_string();
    }
    for cond in arr(pod, "status.conditions") {
        if st(cond, "type") == "PodScheduled" && st(cond, "reason") == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }

    let mut initializing = false;
    for (i, cs) in arr(pod, "status.initContainerStatuses").iter().enumerate() {
        restarts += int(cs, "restartCount");
        let finished = time_at(cs, "lastState.terminated.finishedAt");
        if at(cs, "lastState.terminated").is_some_and(Value::is_object) {
            last_restart = later(last_restart, finished);
        }
        let is_restartable = restartable(st(cs, "name"));
        if is_restartable {
            restartable_restarts += int(cs, "restartCount");
            if at(cs, "lastState.terminated").is_some_and(Value::is_object) {
                last_restartable_restart = later(last_restartable_restart, finished);
            }
        }
        let terminated = at(cs, "state.terminated").filter(|v| v.is_object());
        let waiting = at(cs, "state.waiting").filter(|v| v.is_object());
        if let Some(t) = terminated {
            if int(t, "exitCode") == 0 {
                continue;
            }
        }
        if is_restartable && at(cs, "started").and_then(Value::as_bool) == Some(true) {
            if at(cs, "ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            let r = st(t, "reason");
            reason = if r.is_empty() {
                let sig = int(t, "signal");
                if sig != 0 {
                    format!("Init:Signal:{sig}")
                } else {
                    format!("Init:ExitCode:{}", int(t, "exitCode"))
                }
            } else {
                format!("Init:{r}")
            };
        } else if let Some(w) = waiting.filter(|w| {
            let r = st(w, "reason");
            !r.is_empty() && r != "PodInitializing"
        }) {
            reason = format!("Init:{}", st(w, "reason"));
        } else {
            reason = format!("Init:{}/{}", i, init_specs.len());
        }
        initializing = true;
        break;
    }

    let initialized = arr(pod, "status.conditions")
        .iter()
        .any(|c| st(c, "type") == "Initialized" && st(c, "status") == "True");
    if !initializing || initialized {
        restarts = restartable_restarts;
        last_restart = last_restartable_restart;
        let mut has_running = false;
        for cs in arr(pod, "status.containerStatuses").iter().rev() {
            restarts += int(cs, "restartCount");
            if at(cs, "lastState.terminated").is_some_and(Value::is_object) {
                last_restart = later(last_restart, time_at(cs, "lastState.terminated.finishedAt"));
            }
            let waiting_reason = at(cs, "state.waiting")
                .filter(|v| v.is_object())
                .map(|w| st(w, "reason"))
                .unwrap_or("");
            let terminated = at(cs, "state.terminated").filter(|v| v.is_object());
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                let r = st(t, "reason");
                reason = if !r.is_empty() {
                    r.to_string()
                } else if int(t, "signal") != 0 {
                    format!("Signal:{}", int(t, "signal"))
                } else {
                    format!("ExitCode:{}", int(t, "exitCode"))
                };
            } else if at(cs, "ready").and_then(Value::as_bool) == Some(true)
                && at(cs, "state.running").is_some_and(Value::is_object)
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = arr(pod, "status.conditions")
                .iter()
                .any(|c| st(c, "type") == "Ready" && st(c, "status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    let deleting = at(pod, "metadata.deletionTimestamp").is_some_and(|v| !v.is_null());
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".to_string();
    }

    let restarts_str = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    };

    let mut pod_ip = st(pod, "status.podIP").to_string();
    if pod_ip.is_empty() {
        pod_ip = arr(pod, "status.podIPs")
            .first()
            .map(|p| st(p, "ip").to_string())
            .unwrap_or_default();
    }
    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let gates = arr(pod, "spec.readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conds = arr(pod, "status.conditions");
        let true_count = gates
            .iter()
            .filter(|g| {
                conds
                    .iter()
                    .find(|c| st(c, "type") == st(g, "conditionType"))
                    .is_some_and(|c| st(c, "status") == "True")
            })
            .count();
        format!("{}/{}", true_count, gates.len())
    };
    vec![
        json!(name(pod)),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_str),
        json!(age(pod, now)),
        json!(or_none(&pod_ip)),
        json!(or_none(st(pod, "spec.nodeName"))),
        json!(or_none(st(pod, "status.nominatedNodeName"))),
        json!(readiness_gates),
    ]
}

// --- jobs ---

pub(super) fn job_cells(job: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = int(job, "status.succeeded");
    let completions = match at(job, "spec.completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = int(job, "spec.parallelism");
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let duration = match (
        time_at(job, "status.startTime"),
        time_at(job, "status.completionTime"),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now - start),
        (Some(start), Some(end)) => human_duration(end - start),
    };
    let cond = |t: &str| {
        arr(job, "status.conditions")
            .iter()
            .find(|c| st(c, "type") == t)
            .is_some_and(|c| st(c, "status") == "True")
    };
    let status = if cond("Complete") {
        "Complete"
    } else if cond("Failed") {
        "Failed"
    } else if at(job, "metadata.deletionTimestamp").is_some_and(|v| !v.is_null()) {
        "Terminating"
    } else if cond("Suspended") {
        "Suspended"
    } else if cond("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers(job, "spec.template.spec.containers");
    vec![
        json!(name(job)),
        json!(status),
        json!(completions),
        json!(duration),
        json!(age(job, now)),
        json!(names),
        json!(images),
        json!(format_label_selector(at(job, "spec.selector"))),
    ]
}

// --- services ---

pub(super) fn load_balancer_ips(ingress: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in ingress {
        let ip = st(i, "ip");
        let host = st(i, "hostname");
        let v = if !ip.is_empty() { ip } else { host };
        if !v.is_empty() && !out.iter().any(|x| x == v) {
            out.push(v.to_string());
        }
    }
    out.sort();
    out
}

pub(super) fn service_cells(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let svc_type = str_or(svc, "spec.type", "ClusterIP");
    let mut cluster_ip = st(svc, "spec.clusterIP").to_string();
    if cluster_ip.is_empty() {
        cluster_ip = arr(svc, "spec.clusterIPs")
            .first()
            .map(|v| str_of(v).to_string())
            .unwrap_or_default();
    }
    if cluster_ip.is_empty() {
        cluster_ip = "<none>".to_string();
    }
    let external_ips: Vec<String> = arr(svc, "spec.externalIPs")
        .iter()
        .map(|v| str_of(v).to_string())
        .collect();
    let external = match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let mut lb = load_balancer_ips(arr(svc, "status.loadBalancer.ingress"));
            if !external_ips.is_empty() {
                lb.extend(external_ips);
                lb.join(",")
            } else if !lb.is_empty() {
                lb.join(",")
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => st(svc, "spec.externalName").to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = arr(svc, "spec.ports")
        .iter()
        .map(|p| {
            let port = int(p, "port");
            let proto = str_or(p, "protocol", "TCP");
            let node_port = int(p, "nodePort");
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        json!(name(svc)),
        json!(svc_type),
        json!(cluster_ip),
        json!(external),
        json!(ports),
        json!(age(svc, now)),
        json!(format_labels(map_at(svc, "spec.selector"))),
    ]
}

pub(super) fn format_hosts(rules: &[Value]) -> String {
    let max = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for r in rules {
        if list.len() == max {
            more = true;
        }
        let host = st(r, "host");
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", rules.len() - max)
    } else {
        ret
    }
}

pub(super) fn format_endpoints(subsets: &[Value]) -> String {
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let max = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addrs = arr(ss, "addresses");
        let ports = arr(ss, "ports");
        if ports.is_empty() {
            count += addrs.len();
            for a in addrs {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(st(a, "ip").to_string());
            }
            continue;
        }
        for p in ports {
            count += addrs.len();
            for a in addrs {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(join_host_port(st(a, "ip"), int(p, "port")));
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - max)
    } else {
        ret
    }
}

/// `net.JoinHostPort`: brackets IPv6 hosts.
pub(super) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub(super) fn list_with_more(items: &[String]) -> String {
    let max = 3;
    if items.len() > max {
        return format!("{} + {} more...", items[..max].join(","), items.len() - max);
    }
    let ret = items.join(",");
    if ret.is_empty() {
        "<unset>".to_string()
    } else {
        ret
    }
}

// --- nodes ---

pub(super) fn node_cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut ready_cond: Option<&Value> = None;
    for c in arr(node, "status.conditions") {
        if st(c, "type") == "Ready" {
            ready_cond = Some(c);
        }
    }
    let mut status: Vec<&str> = Vec::new();
    if let Some(c) = ready_cond {
        status.push(if st(c, "status") == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if status.is_empty() {
        status.push("Unknown");
    }
    if at(node, "spec.unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<String> = Vec::new();
    if let Some(labels) = map_at(node, "metadata.labels") {
        for (k, v) in labels {
            let role = if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
                r.to_string()
            } else if k == "kubernetes.io/role" {
                str_of(v).to_string()
            } else {
                continue;
            };
            if !role.is_empty() && !roles.contains(&role) {
                roles.push(role);
            }
        }
    }
    roles.sort();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |t: &str| {
        arr(node, "status.addresses")
            .iter()
            .find(|a| st(a, "type") == t)
            .map(|a| st(a, "address").to_string())
            .unwrap_or_else(|| "<none>".to_string())
    };
    let unknown = |p: &str| {
        let s = st(node, p);
        if s.is_empty() {
            "<unknown>".to_string()
        } else {
            s.to_string()
        }
    };
    vec![
        json!(name(node)),
        json!(status.join(",")),
        json!(roles),
        json!(age(node, now)),
        json!(st(node, "status.nodeInfo.kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(unknown("status.nodeInfo.osImage")),
        json!(unknown("status.nodeInfo.kernelVersion")),
        json!(unknown("status.nodeInfo.containerRuntimeVersion")),
    ]
}

// --- events ---

pub(super) fn event_cells(group: &str, ev: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // events.k8s.io/v1 renames the core/v1 fields; the printer sees the same internal object.
    let new = group == "events.k8s.io";
    let f = |core: &'static str, events: &'static str| if new { events } else { core };
    let involved = at(ev, f("involvedObject", "regarding")).unwrap_or(&Value::Null);
    let first_ts = at(ev, f("firstTimestamp", "deprecatedFirstTimestamp"));
    let first = if is_time(first_ts) {
        translate_timestamp(first_ts, now)
    } else {
        translate_timestamp(at(ev, "eventTime"), now)
    };
    let last_ts = at(ev, f("lastTimestamp", "deprecatedLastTimestamp"));
    let mut last = if is_time(last_ts) {
        translate_timestamp(last_ts, now)
    } else {
        first.clone()
    };
    let mut count = int(ev, f("count", "deprecatedCount"));
    if let Some(series) = at(ev, "series").filter(|s| s.is_object()) {
        last = translate_timestamp(at(series, "lastObservedTime"), now);
        count = int(series, "count");
    } else if count == 0 {
        count = 1;
    }
    let kind = st(involved, "kind").to_lowercase();
    let iname = st(involved, "name");
    let target = if iname.is_empty() {
        kind
    } else {
        format!("{kind}/{iname}")
    };
    let source = at(ev, f("source", "deprecatedSource")).unwrap_or(&Value::Null);
    let component = first_non_empty(
        st(source, "component"),
        st(ev, f("reportingComponent", "reportingController")),
    );
    let instance = first_non_empty(st(source, "host"), st(ev, "reportingInstance"));
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(st(ev, "type")),
        json!(st(ev, "reason")),
        json!(target),
        json!(st(involved, "fieldPath")),
        json!(source),
        json!(st(ev, f("message", "note")).trim()),
        json!(first),
        json!(count),
        json!(name(ev)),
    ]
}

pub(super) fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

// --- storage ---

pub(super) fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| str_of(v) == m);
    let mut out = Vec::new();
    for (m, short) in [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ] {
        if has(m) {
            out.push(short);
        }
    }
    out.join(",")
}

pub(super) fn beta_class(obj: &Value) -> Option<&str> {
    map_at(obj, "metadata.annotations")
        .and_then(|m| m.get("volume.beta.kubernetes.io/storage-class"))
        .and_then(Value::as_str)
}

pub(super) fn pv_cells(pv: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let claim = match at(pv, "spec.claimRef").filter(|v| v.is_object()) {
        Some(c) => format!("{}/{}", st(c, "namespace"), st(c, "name")),
        None => String::new(),
    };
    let mut phase = st(pv, "status.phase").to_string();
    if at(pv, "metadata.deletionTimestamp").is_some_and(|v| !v.is_null()) {
        phase = "Terminating".to_string();
    }
    let class = beta_class(pv).unwrap_or_else(|| st(pv, "spec.storageClassName"));
    vec![
        json!(name(pv)),
        json!(quantity(at(pv, "spec.capacity.storage"))),
        json!(access_modes(arr(pv, "spec.accessModes"))),
        json!(st(pv, "spec.persistentVolumeReclaimPolicy")),
        json!(phase),
        json!(claim),
        json!(class),
        json!(str_or(pv, "spec.volumeAttributesClassName", "<unset>")),
        json!(st(pv, "status.reason")),
        json!(age(pv, now)),
        json!(str_or(pv, "spec.volumeMode", "<unset>")),
    ]
}

pub(super) fn pvc_cells(pvc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut phase = st(pvc, "status.phase").to_string();
    if at(pvc, "metadata.deletionTimestamp").is_some_and(|v| !v.is_null()) {
        phase = "Terminating".to_string();
    }
    let volume = st(pvc, "spec.volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(at(pvc, "status.capacity.storage")),
            access_modes(arr(pvc, "status.accessModes")),
        )
    };
    let class = beta_class(pvc).unwrap_or_else(|| st(pvc, "spec.storageClassName"));
    vec![
        json!(name(pvc)),
        json!(phase),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(class),
        json!(str_or(pvc, "spec.volumeAttributesClassName", "<unset>")),
        json!(age(pvc, now)),
        json!(str_or(pvc, "spec.volumeMode", "<unset>")),
    ]
}

/// A stored quantity as `Quantity.String()` prints it; the zero quantity prints `0`.
pub(super) fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".to_string(),
    }
}

pub(super) fn quota_columns(rq: &Value) -> (String, String) {
    let Some(hard) = map_at(rq, "status.hard") else {
        return (String::new(), String::new());
    };
    let used = map_at(rq, "status.used");
    let mut names: Vec<&String> = hard.keys().collect();
    names.sort();
    let mut req = Vec::new();
    let mut lim = Vec::new();
    for r in names {
        let u = quantity(used.and_then(|m| m.get(r.as_str())));
        let h = quantity(hard.get(r.as_str()));
        let entry = format!("{r}: {u}/{h}");
        let pieces: Vec<&str> = r.split('.').collect();
        if pieces.len() > 1 && pieces[0] == "limits" {
            lim.push(entry);
        } else {
            req.push(entry);
        }
    }
    (req.join(", "), lim.join(", "))
}

// --- misc ---

pub(super) fn subjects(subjects: &[Value]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in subjects {
        match st(s, "kind") {
            "ServiceAccount" => sas.push(format!("{}/{}", st(s, "namespace"), st(s, "name"))),
            "User" => users.push(st(s, "name").to_string()),
            "Group" => groups.push(st(s, "name").to_string()),
            _ => {}
        }
    }
    (users, groups, sas)
}

pub(super) fn controller_of(obj: &Value) -> String {
    let Some(owner) = arr(obj, "metadata.ownerReferences")
        .iter()
        .find(|o| at(o, "controller").and_then(Value::as_bool) == Some(true))
    else {
        return "<none>".to_string();
    };
    let api_version = st(owner, "apiVersion");
    let group = match api_version.split_once('/') {
        Some((g, _)) => g,
        None => "",
    };
    let kind = st(owner, "kind");
    let oname = st(owner, "name");
    if kind.is_empty() && group.is_empty() {
        return oname.to_string();
    }
    let gk = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    format!("{}/{}", gk.to_lowercase(), oname)
}

pub(super) fn int_or_string(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "N/A".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => other.to_string(),
    }
}

pub(super) fn containers(obj: &Value, path: &str) -> (String, String) {
    let cs = arr(obj, path);
    let names: Vec<&str> = cs.iter().map(|c| st(c, "name")).collect();
    let images: Vec<&str> = cs.iter().map(|c| st(c, "image")).collect();
    (names.join(","), images.join(","))
}

// --- durations and timestamps ---
