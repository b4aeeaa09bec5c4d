//! Server-side defaulting: the values the upstream API server fills in (the `SetDefaults_*`
//! functions of `pkg/apis/*/v1/defaults.go`, the `+default` tags of `k8s.io/api`, and the
//! create-time strategy fields such as a new Pod's `Pending` phase), applied in place to
//! objects held as `serde_json::Value`, so `kubectl get -o yaml` shows what a real cluster shows.
//!
//! Not done here (the server's job): name generation, uid/timestamps, ClusterIP and NodePort
//! allocation, service-account token volumes, default tolerations, Job selector generation
//! (see [`job_selector_and_labels`], which needs the uid).

use serde_json::{json, Map, Value};

use crate::registry::ResourceInfo;

/// Fills in every upstream default for an object of kind `res`. Unknown kinds are left alone;
/// values that are already set are never overwritten.
pub fn apply_defaults(res: &ResourceInfo, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match (res.group, res.kind) {
        ("", "Pod") => default_pod(obj),
        ("", "PodTemplate") => {
            if let Some(t) = child(obj, "template") {
                default_pod_template(t);
            }
        }
        ("", "ReplicationController") => default_replication_controller(obj),
        ("", "Service") => default_service(obj),
        ("", "Namespace") => default_namespace(obj),
        ("", "Secret") => default_secret(obj),
        ("", "PersistentVolumeClaim") => default_pvc(obj),
        ("", "PersistentVolume") => default_pv(obj),
        ("", "Node") => default_node(obj),
        ("", "Endpoints") => default_endpoints(obj),
        ("", "LimitRange") => default_limit_range(obj),
        ("apps", "Deployment") => default_deployment(obj),
        ("apps", "ReplicaSet") => default_replica_set(obj),
        ("apps", "DaemonSet") => default_daemon_set(obj),
        ("apps", "StatefulSet") => default_stateful_set(obj),
        ("batch", "Job") => default_job(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => crate::hpa::apply_defaults(res.version, obj),
        ("batch", "CronJob") => default_cron_job(obj),
        ("discovery.k8s.io", "EndpointSlice") => default_endpoint_slice(obj),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            crate::webhook::apply_defaults(obj, true)
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            crate::webhook::apply_defaults(obj, false)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            crate::cel::policy::apply_defaults(obj, false)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            crate::cel::policy::apply_defaults(obj, true)
        }
        ("networking.k8s.io", "NetworkPolicy") => default_network_policy(obj),
        ("networking.k8s.io", "IngressClass") => default_ingress_class(obj),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => default_binding(obj),
        ("storage.k8s.io", "StorageClass") => {
            if let Some(m) = obj.as_object_mut() {
                set_default(m, "reclaimPolicy", json!("Delete"));
                set_default(m, "volumeBindingMode", json!("Immediate"));
            }
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            if let Some(m) = obj.as_object_mut() {
                set_default(m, "preemptionPolicy", json!("PreemptLowerPriority"));
            }
        }
        _ => {}
    }
}

/// The Job registry's selector generation (upstream `generateSelector`, run when
/// `spec.manualSelector` is not true): adds `batch.kubernetes.io/controller-uid`,
/// `batch.kubernetes.io/job-name`, `controller-uid` and `job-name` to the pod template labels
/// (keeping values the user set), selects `batch.kubernetes.io/controller-uid=<uid>`, and, like
/// the defaulting a real server runs when reading the Job back, copies the template labels to
/// the Job's own labels when it has none.
pub fn job_selector_and_labels(obj: &mut Value, uid: &str) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let manual = obj
        .pointer("/spec/manualSelector")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !manual {
        let Some(spec) = child(obj, "spec") else {
            return;
        };
        if let Some(labels) = child(spec, "template").and_then(|t| child_map(t, "metadata")) {
            let labels = map_entry(labels, "labels");
            for key in ["batch.kubernetes.io/controller-uid", "controller-uid"] {
                set_default(labels, key, json!(uid));
            }
            for key in ["batch.kubernetes.io/job-name", "job-name"] {
                set_default(labels, key, json!(name));
            }
        }
        if let Some(sel) = child_map(spec, "selector") {
            let ml = map_entry(sel, "matchLabels");
            set_default(ml, "batch.kubernetes.io/controller-uid", json!(uid));
        }
    }
    let template_labels = obj
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()));
    if let (Some(tl), Some(meta)) = (template_labels, child_map(obj, "metadata")) {
        let empty = meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        if empty {
            meta.insert("labels".into(), tl);
        }
    }
}

// ---------------------------------------------------------------------------------------
// JSON helpers

/// `v[key]` as a mutable value, created as `{}` when missing or null. `None` when `v` is not an
/// object or `v[key]` is present but not an object.
fn child<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let m = v.as_object_mut()?;
    let entry = m.entry(key.to_string()).or_insert(Value::Null);
    if entry.is_null() {
        *entry = json!({});
    }
    entry.is_object().then_some(entry)
}

/// Like [`child`], returning the object map.
fn child_map<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    child(v, key).and_then(Value::as_object_mut)
}

/// `m[key]` as an object map, created (or replaced when not an object) as `{}`.
fn map_entry<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = m.entry(key.to_string()).or_insert(Value::Null);
    if !entry.is_object() {
        *entry = json!({});
    }
    match entry {
        Value::Object(o) => o,
        _ => unreachable!("map_entry has just stored an object"),
    }
}

/// Sets `m[key] = val` when the key is missing or null.
fn set_default(m: &mut Map<String, Value>, key: &str, val: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), val);
    }
}

/// Sets `m[key] = val` when the key is missing, null, `0` or `""` (Go zero-value defaulting).
fn set_default_zero(m: &mut Map<String, Value>, key: &str, val: Value) {
    let unset = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    };
    if unset {
        m.insert(key.to_string(), val);
    }
}

fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn for_each_obj(m: &mut Map<String, Value>, key: &str, mut f: impl FnMut(&mut Map<String, Value>)) {
    if let Some(Value::Array(items)) = m.get_mut(key) {
        for item in items.iter_mut() {
            if let Some(o) = item.as_object_mut() {
                f(o);
            }
        }
    }
}

fn with_obj(m: &mut Map<String, Value>, key: &str, f: impl FnOnce(&mut Map<String, Value>)) {
    if let Some(Value::Object(o)) = m.get_mut(key) {
        f(o);
    }
}

// ---------------------------------------------------------------------------------------
// Pods and pod templates

fn default_pod(obj: &mut Value) {
    if let Some(spec) = child_map(obj, "spec") {
        default_pod_spec(spec);
        // SetDefaults_Pod: requests default to limits, for containers and init containers.
        for key in ["containers", "initContainers"] {
            for_each_obj(spec, key, |c| {
                let limits = c
                    .get("resources")
                    .and_then(|r| r.get("limits"))
                    .and_then(Value::as_object)
                    .cloned();
                if let Some(limits) = limits {
                    let res = map_entry(c, "resources");
                    let req = map_entry(res, "requests");
                    for (k, v) in limits {
                        if !req.contains_key(&k) {
                            req.insert(k, v);
                        }
                    }
                }
            });
        }
        set_default(spec, "enableServiceLinks", json!(true));
        if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
            for key in ["containers", "initContainers"] {
                for_each_obj(spec, key, |c| {
                    for_each_obj(c, "ports", |p| {
                        let cp = p.get("containerPort").cloned().unwrap_or(Value::Null);
                        set_default_zero(p, "hostPort", cp);
                    });
                });
            }
        }
        // The Priority admission plugin (no default PriorityClass): priority 0.
        if str_of(spec, "priorityClassName").is_empty() {
            set_default(spec, "priority", json!(0));
        }
        set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    }
    let qos = obj
        .get("spec")
        .map(pod_qos_class)
        .unwrap_or("BestEffort")
        .to_string();
    if let Some(status) = child_map(obj, "status") {
        if status.get("phase").is_none_or(Value::is_null) {
            status.insert("phase".into(), json!("Pending"));
            set_default(status, "qosClass", json!(qos));
        }
    }
}

/// The QoS class a pod spec gets (upstream `qos.GetPodQOS`, cpu and memory only).
pub fn pod_qos_class(spec: &Value) -> &'static str {
    let mut any_set = false;
    let mut guaranteed = true;
    let containers = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten();
    for c in containers {
        let res = c.get("resources");
        let req = res
            .and_then(|r| r.get("requests"))
            .and_then(Value::as_object);
        let lim = res.and_then(|r| r.get("limits")).and_then(Value::as_object);
        for name in ["cpu", "memory"] {
            let r = req.and_then(|m| m.get(name)).and_then(quantity_of);
            let l = lim.and_then(|m| m.get(name)).and_then(quantity_of);
            if r.is_some_and(|q| q != 0.0) || l.is_some_and(|q| q != 0.0) {
                any_set = true;
            }
            match (r, l) {
                (_, None) => guaranteed = false,
                (Some(r), Some(l)) if r != l => guaranteed = false,
                _ => {}
            }
        }
    }
    if !any_set {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn quantity_of(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => crate::validation::parse_quantity(s),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn default_pod_template(t: &mut Value) {
    if let Some(meta) = child_map(t, "metadata") {
        if !meta.contains_key("creationTimestamp") {
            meta.insert("creationTimestamp".into(), Value::Null);
        }
    }
    if let Some(spec) = child_map(t, "spec") {
        default_pod_spec(spec);
    }
}

fn default_pod_spec(spec: &mut Map<String, Value>) {
    set_default_zero(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default_zero(spec, "restartPolicy", json!("Always"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default_zero(spec, "schedulerName", json!("default-scheduler"));
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        for_each_obj(spec, key, default_container);
    }
    for_each_obj(spec, "volumes", default_volume);
}

/// The image pull policy upstream derives from the image reference: `Always` for `:latest` or
/// no tag (and no digest), `IfNotPresent` otherwise.
pub fn default_pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, t)| t);
    match tag {
        Some("latest") => "Always",
        Some(_) => "IfNotPresent",
        None if digest => "IfNotPresent",
        None => "Always",
    }
}

fn default_container(c: &mut Map<String, Value>) {
    let policy = default_pull_policy(str_of(c, "image"));
    set_default_zero(c, "imagePullPolicy", json!(policy));
    set_default_zero(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default_zero(c, "terminationMessagePolicy", json!("File"));
    set_default(c, "resources", json!({}));
    for_each_obj(c, "ports", |p| {
        set_default_zero(p, "protocol", json!("TCP"))
    });
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        with_obj(c, key, default_probe);
    }
    with_obj(c, "lifecycle", |l| {
        for key in ["postStart", "preStop"] {
            with_obj(l, key, |h| with_obj(h, "httpGet", default_http_get));
        }
    });
    for_each_obj(c, "env", |e| {
        with_obj(e, "valueFrom", |vf| {
            with_obj(vf, "fieldRef", |fr| {
                set_default_zero(fr, "apiVersion", json!("v1"))
            });
        });
    });
}

fn default_probe(p: &mut Map<String, Value>) {
    set_default_zero(p, "timeoutSeconds", json!(1));
    set_default_zero(p, "periodSeconds", json!(10));
    set_default_zero(p, "successThreshold", json!(1));
    set_default_zero(p, "failureThreshold", json!(3));
    with_obj(p, "httpGet", default_http_get);
    with_obj(p, "grpc", |g| set_default(g, "service", json!("")));
}

fn default_http_get(h: &mut Map<String, Value>) {
    set_default_zero(h, "path", json!("/"));
    set_default_zero(h, "scheme", json!("HTTP"));
}

/// Volume source keys (everything in a volume besides `name`).
fn default_volume(v: &mut Map<String, Value>) {
    let has_source = v.iter().any(|(k, val)| k != "name" && !val.is_null());
    if !has_source {
        v.insert("emptyDir".into(), json!({}));
    }
    for key in ["configMap", "secret", "downwardAPI", "projected"] {
        with_obj(v, key, |s| set_default(s, "defaultMode", json!(420)));
    }
    with_obj(v, "downwardAPI", |d| {
        for_each_obj(d, "items", default_downward_item)
    });
    with_obj(v, "hostPath", |h| set_default(h, "type", json!("")));
    with_obj(v, "projected", |p| {
        for_each_obj(p, "sources", |s| {
            with_obj(s, "serviceAccountToken", |t| {
                set_default(t, "expirationSeconds", json!(3600));
            });
            with_obj(s, "downwardAPI", |d| {
                for_each_obj(d, "items", default_downward_item)
            });
        });
    });
    with_obj(v, "ephemeral", |e| {
        with_obj(e, "volumeClaimTemplate", |t| {
            with_obj(t, "spec", |s| {
                set_default(s, "volumeMode", json!("Filesystem"))
            });
        });
    });
}

fn default_downward_item(i: &mut Map<String, Value>) {
    with_obj(i, "fieldRef", |fr| {
        set_default_zero(fr, "apiVersion", json!("v1"))
    });
}

// ---------------------------------------------------------------------------------------
// Workloads

fn default_replication_controller(obj: &mut Value) {
    let tl = obj
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()));
    if let Some(spec) = child_map(obj, "spec") {
        set_default(spec, "replicas", json!(1));
        if let Some(tl) = &tl {
            if spec
                .get("selector")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
            {
                spec.insert("selector".into(), tl.clone());
            }
        }
        if let Some(Value::Object(_)) = spec.get("template") {
            if let Some(t) = spec.get_mut("template") {
                default_pod_template(t);
            }
        }
    }
    if let (Some(tl), Some(meta)) = (tl, child_map(obj, "metadata")) {
        if meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
        {
            meta.insert("labels".into(), tl);
        }
    }
}

fn template_of(spec: &mut Map<String, Value>) {
    let t = spec.entry("template").or_insert(Value::Null);
    if t.is_null() {
        *t = json!({});
    }
    if t.is_object() {
        default_pod_template(t);
    }
}

fn default_deployment(obj: &mut Value) {
    let Some(spec) = child_map(obj, "spec") else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    let strategy = map_entry(spec, "strategy");
    set_default_zero(strategy, "type", json!("RollingUpdate"));
    if str_of(strategy, "type") == "RollingUpdate" {
        let ru = map_entry(strategy, "rollingUpdate");
        set_default(ru, "maxUnavailable", json!("25%"));
        set_default(ru, "maxSurge", json!("25%"));
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    template_of(spec);
}

fn default_replica_set(obj: &mut Value) {
    if let Some(spec) = child_map(obj, "spec") {
        set_default(spec, "replicas", json!(1));
        template_of(spec);
    }
}

fn default_daemon_set(obj: &mut Value) {
    let Some(spec) = child_map(obj, "spec") else {
        return;
    };
    let strategy = map_entry(spec, "updateStrategy");
    set_default_zero(strategy, "type", json!("RollingUpdate"));
    if str_of(strategy, "type") == "RollingUpdate" {
        let ru = map_entry(strategy, "rollingUpdate");
        set_default(ru, "maxUnavailable", json!(1));
        set_default(ru, "maxSurge", json!(0));
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    template_of(spec);
}

fn default_stateful_set(obj: &mut Value) {
    let Some(spec) = child_map(obj, "spec") else {
        return;
    };
    set_default_zero(spec, "podManagementPolicy", json!("OrderedReady"));
    let strategy = map_entry(spec, "updateStrategy");
    if strategy.get("type").is_none_or(|t| t.is_null() || t == "") {
        strategy.insert("type".into(), json!("RollingUpdate"));
        set_default(strategy, "rollingUpdate", json!({}));
    }
    if str_of(strategy, "type") == "RollingUpdate" {
        with_obj(strategy, "rollingUpdate", |ru| {
            set_default(ru, "partition", json!(0))
        });
    }
    let policy = map_entry(spec, "persistentVolumeClaimRetentionPolicy");
    set_default_zero(policy, "whenDeleted", json!("Retain"));
    set_default_zero(policy, "whenScaled", json!("Retain"));
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    for_each_obj(spec, "volumeClaimTemplates", |pvc| {
        set_default(pvc, "apiVersion", json!("v1"));
        set_default(pvc, "kind", json!("PersistentVolumeClaim"));
        let meta = map_entry(pvc, "metadata");
        if !meta.contains_key("creationTimestamp") {
            meta.insert("creationTimestamp".into(), Value::Null);
        }
        let s = map_entry(pvc, "spec");
        set_default(s, "volumeMode", json!("Filesystem"));
        let st = map_entry(pvc, "status");
        set_default_zero(st, "phase", json!("Pending"));
    });
    template_of(spec);
}

fn default_job(obj: &mut Value) {
    let tl = obj
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()));
    if let Some(spec) = child_map(obj, "spec") {
        default_job_spec(spec);
        template_of(spec);
    }
    if let (Some(tl), Some(meta)) = (tl, child_map(obj, "metadata")) {
        if meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
        {
            meta.insert("labels".into(), tl);
        }
    }
}

fn default_job_spec(spec: &mut Map<String, Value>) {
    let unset = |m: &Map<String, Value>, k: &str| m.get(k).is_none_or(Value::is_null);
    if unset(spec, "completions") && unset(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    set_default(spec, "parallelism", json!(1));
    if unset(spec, "backoffLimit") {
        let limit = if unset(spec, "backoffLimitPerIndex") {
            6
        } else {
            i64::from(i32::MAX)
        };
        spec.insert("backoffLimit".into(), json!(limit));
    }
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    let replacement = if unset(spec, "podFailurePolicy") {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    set_default(spec, "podReplacementPolicy", json!(replacement));
    set_default(spec, "manualSelector", json!(false));
    default_pod_failure_policy(spec);
}

fn default_pod_failure_policy(spec: &mut Map<String, Value>) {
    with_obj(spec, "podFailurePolicy", |pfp| {
        for_each_obj(pfp, "rules", |r| {
            for_each_obj(r, "onPodConditions", |c| {
                set_default_zero(c, "status", json!("True"));
            });
        });
    });
}

fn default_cron_job(obj: &mut Value) {
    let Some(spec) = child_map(obj, "spec") else {
        return;
    };
    set_default_zero(spec, "concurrencyPolicy", json!("Allow"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "successfulJobsHistoryLimit", json!(3));
    set_default(spec, "failedJobsHistoryLimit", json!(1));
    let jt = map_entry(spec, "jobTemplate");
    let meta = map_entry(jt, "metadata");
    if !meta.contains_key("creationTimestamp") {
        meta.insert("creationTimestamp".into(), Value::Null);
    }
    let js = map_entry(jt, "spec");
    default_pod_failure_policy(js);
    template_of(js);
}

// ---------------------------------------------------------------------------------------
// Core objects

/// Whether a Service spec is headless (`clusterIP: None`).
fn is_headless(spec: &Map<String, Value>) -> bool {
    str_of(spec, "clusterIP") == "None"
        || spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            == Some("None")
}

fn default_service(obj: &mut Value) {
    if let Some(spec) = child_map(obj, "spec") {
        set_default_zero(spec, "sessionAffinity", json!("None"));
        match str_of(spec, "sessionAffinity") {
            "None" => {
                spec.remove("sessionAffinityConfig");
            }
            "ClientIP" => {
                let has_timeout = spec
                    .pointer_get(&["sessionAffinityConfig", "clientIP", "timeoutSeconds"])
                    .is_some_and(|v| !v.is_null());
                if !has_timeout {
                    spec.insert(
                        "sessionAffinityConfig".into(),
                        json!({"clientIP": {"timeoutSeconds": 10800}}),
                    );
                }
            }
            _ => {}
        }
        set_default_zero(spec, "type", json!("ClusterIP"));
        for_each_obj(spec, "ports", |p| {
            set_default_zero(p, "protocol", json!("TCP"));
            let port = p.get("port").cloned().unwrap_or(Value::Null);
            set_default_zero(p, "targetPort", port);
        });
        let ty = str_of(spec, "type").to_string();
        let has_external_ips = spec
            .get("externalIPs")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let externally_accessible =
            ty == "LoadBalancer" || ty == "NodePort" || (ty == "ClusterIP" && has_external_ips);
        if externally_accessible {
            set_default_zero(spec, "externalTrafficPolicy", json!("Cluster"));
        }
        if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
            set_default(spec, "internalTrafficPolicy", json!("Cluster"));
        }
        if ty == "LoadBalancer" {
            set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
        }
        if ty != "ExternalName" {
            let selectorless = spec
                .get("selector")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty);
            let policy = if is_headless(spec) && selectorless {
                "RequireDualStack"
            } else {
                "SingleStack"
            };
            set_default(spec, "ipFamilyPolicy", json!(policy));
            let families_empty = spec
                .get("ipFamilies")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
            if families_empty {
                spec.insert("ipFamilies".into(), json!(["IPv4"]));
            }
        }
    }
    let is_lb = obj.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer");
    if let Some(status) = child_map(obj, "status") {
        let lb = map_entry(status, "loadBalancer");
        if is_lb {
            for_each_obj(lb, "ingress", |ing| {
                if !str_of(ing, "ip").is_empty() {
                    set_default(ing, "ipMode", json!("VIP"));
                }
            });
        }
    }
}

/// A small extension for reading nested keys out of a map.
trait PointerGet {
    fn pointer_get(&self, path: &[&str]) -> Option<&Value>;
}

impl PointerGet for Map<String, Value> {
    fn pointer_get(&self, path: &[&str]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        let mut cur = self.get(*first)?;
        for p in rest {
            cur = cur.get(*p)?;
        }
        Some(cur)
    }
}

fn default_namespace(obj: &mut Value) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !name.is_empty() {
        if let Some(meta) = child_map(obj, "metadata") {
            let labels = map_entry(meta, "labels");
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    if let Some(spec) = child_map(obj, "spec") {
        set_default(spec, "finalizers", json!(["kubernetes"]));
    }
    if let Some(status) = child_map(obj, "status") {
        set_default_zero(status, "phase", json!("Active"));
    }
}

fn default_secret(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    set_default_zero(m, "type", json!("Opaque"));
    // The v1 → internal conversion merges stringData into data (stringData wins).
    if let Some(Value::Object(sd)) = m.remove("stringData") {
        let data = map_entry(m, "data");
        for (k, v) in sd {
            let s = v.as_str().unwrap_or_default();
            data.insert(k, json!(base64_encode(s.as_bytes())));
        }
    }
}

/// Standard base64 with padding.
pub(crate) fn base64_encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn default_pvc(obj: &mut Value) {
    if let Some(spec) = child_map(obj, "spec") {
        set_default(spec, "volumeMode", json!("Filesystem"));
    }
    if let Some(status) = child_map(obj, "status") {
        set_default_zero(status, "phase", json!("Pending"));
    }
}

fn default_pv(obj: &mut Value) {
    if let Some(spec) = child_map(obj, "spec") {
        set_default_zero(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
        set_default(spec, "volumeMode", json!("Filesystem"));
    }
    if let Some(status) = child_map(obj, "status") {
        set_default_zero(status, "phase", json!("Pending"));
    }
}

fn default_node(obj: &mut Value) {
    if let Some(Value::Object(status)) = obj.get_mut("status") {
        if status.get("allocatable").is_none_or(Value::is_null) {
            if let Some(cap) = status.get("capacity").filter(|c| c.is_object()).cloned() {
                status.insert("allocatable".into(), cap);
            }
        }
    }
}

fn default_endpoints(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        for_each_obj(m, "subsets", |s| {
            for_each_obj(s, "ports", |p| {
                set_default_zero(p, "protocol", json!("TCP"))
            });
        });
    }
}

fn default_limit_range(obj: &mut Value) {
    let Some(Value::Object(spec)) = obj.get_mut("spec") else {
        return;
    };
    for_each_obj(spec, "limits", |item| {
        if str_of(item, "type") != "Container" {
            return;
        }
        let max = item.get("max").and_then(Value::as_object).cloned();
        let min = item.get("min").and_then(Value::as_object).cloned();
        let default = map_entry(item, "default");
        for (k, v) in max.into_iter().flatten() {
            default.entry(k).or_insert(v);
        }
        let default = default.clone();
        let default_request = map_entry(item, "defaultRequest");
        for (k, v) in default.into_iter().chain(min.into_iter().flatten()) {
            default_request.entry(k).or_insert(v);
        }
    });
}

fn default_endpoint_slice(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        for_each_obj(m, "ports", |p| {
            set_default(p, "name", json!(""));
            set_default(p, "protocol", json!("TCP"));
        });
    }
}

fn default_network_policy(obj: &mut Value) {
    let Some(spec) = child_map(obj, "spec") else {
        return;
    };
    for dir in ["ingress", "egress"] {
        for_each_obj(spec, dir, |rule| {
            for_each_obj(rule, "ports", |p| set_default(p, "protocol", json!("TCP")));
        });
    }
    let empty = spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if empty {
        let has_egress = spec
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let types = if has_egress {
            json!(["Ingress", "Egress"])
        } else {
            json!(["Ingress"])
        };
        spec.insert("policyTypes".into(), types);
    }
}

fn default_ingress_class(obj: &mut Value) {
    if let Some(Value::Object(spec)) = obj.get_mut("spec") {
        with_obj(spec, "parameters", |p| {
            set_default(p, "scope", json!("Cluster"))
        });
    }
}

fn default_binding(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    with_obj(m, "roleRef", |r| {
        set_default_zero(r, "apiGroup", json!("rbac.authorization.k8s.io"));
    });
    for_each_obj(m, "subjects", |s| {
        if str_of(s, "apiGroup").is_empty() {
            match str_of(s, "kind") {
                "ServiceAccount" => {
                    // apiGroup is `omitempty`: the empty default does not show.
                    s.remove("apiGroup");
                }
                "User" | "Group" => {
                    s.insert("apiGroup".into(), json!("rbac.authorization.k8s.io"));
                }
                _ => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find_kind;

    fn defaulted(api_version: &str, kind: &str, mut obj: Value) -> Value {
        let res = find_kind(api_version, kind).unwrap();
        apply_defaults(res, &mut obj);
        obj
    }

    #[test]
    fn pod_defaults_match_a_real_cluster() {
        let pod = defaulted(
            "v1",
            "Pod",
            json!({"metadata": {"name": "p"}, "spec": {"containers": [
                {"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
                 "livenessProbe": {"httpGet": {"port": 80}},
                 "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "d", "image": "busybox:1.36"}
            ], "volumes": [{"name": "a"}, {"name": "b", "configMap": {"name": "cm"}},
                           {"name": "h", "hostPath": {"path": "/x"}}]}}),
        );
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["enableServiceLinks"], true);
        assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
        assert_eq!(spec["priority"], 0);
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(
            c["resources"]["requests"],
            json!({"cpu": "1", "memory": "1Gi"})
        );
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                   "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                   "failureThreshold": 3})
        );
        let d = &spec["containers"][1];
        assert_eq!(d["imagePullPolicy"], "IfNotPresent");
        assert_eq!(d["resources"], json!({}));
        assert_eq!(spec["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(spec["volumes"][1]["configMap"]["defaultMode"], 420);
        assert_eq!(spec["volumes"][2]["hostPath"]["type"], "");
        assert_eq!(
            pod["status"],
            json!({"phase": "Pending", "qosClass": "Burstable"})
        );
        assert!(pod["spec"].get("tolerations").is_none());
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/nginx"), "Always");
        assert_eq!(
            default_pull_policy("localhost:5000/nginx:1.2"),
            "IfNotPresent"
        );
        assert_eq!(default_pull_policy("nginx@sha256:abcd"), "IfNotPresent");
    }

    #[test]
    fn qos_classes() {
        let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                                                      "requests": {"cpu": "1000m", "memory": "1Gi"}}}]});
        assert_eq!(pod_qos_class(&g), "Guaranteed");
        assert_eq!(pod_qos_class(&json!({"containers": [{}]})), "BestEffort");
        let b = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(pod_qos_class(&b), "Burstable");
    }

    #[test]
    fn deployment_defaults() {
        let d = defaulted(
            "apps/v1",
            "Deployment",
            json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}),
        );
        let spec = &d["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        assert_eq!(
            spec["template"]["metadata"]["creationTimestamp"],
            Value::Null
        );
        assert!(spec["template"]["metadata"]
            .as_object()
            .unwrap()
            .contains_key("creationTimestamp"));
        let ps = &spec["template"]["spec"];
        assert_eq!(ps["restartPolicy"], "Always");
        assert!(ps.get("enableServiceLinks").is_none(), "pod-only default");
        assert!(ps.get("priority").is_none(), "pod-only default");
        assert_eq!(ps["containers"][0]["imagePullPolicy"], "Always");
        // Recreate keeps no rollingUpdate.
        let r = defaulted(
            "apps/v1",
            "Deployment",
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
        );
        assert_eq!(r["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn replica_daemon_stateful_set_defaults() {
        let rs = defaulted("apps/v1", "ReplicaSet", json!({"spec": {}}));
        assert_eq!(rs["spec"]["replicas"], 1);
        let ds = defaulted("apps/v1", "DaemonSet", json!({"spec": {}}));
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
        let sts = defaulted(
            "apps/v1",
            "StatefulSet",
            json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"]}}]}}),
        );
        let s = &sts["spec"];
        assert_eq!(s["replicas"], 1);
        assert_eq!(s["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            s["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            s["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(s["revisionHistoryLimit"], 10);
        let vct = &s["volumeClaimTemplates"][0];
        assert_eq!(vct["spec"]["volumeMode"], "Filesystem");
        assert_eq!(vct["status"]["phase"], "Pending");
        assert_eq!(vct["kind"], "PersistentVolumeClaim");
    }

    #[test]
    fn job_and_cronjob_defaults() {
        let mut job = defaulted(
            "batch/v1",
            "Job",
            json!({"metadata": {"name": "pi"}, "spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}}),
        );
        let s = &job["spec"];
        assert_eq!(s["completions"], 1);
        assert_eq!(s["parallelism"], 1);
        assert_eq!(s["backoffLimit"], 6);
        assert_eq!(s["completionMode"], "NonIndexed");
        assert_eq!(s["suspend"], false);
        assert_eq!(s["manualSelector"], false);
        assert_eq!(s["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(s["template"]["spec"]["restartPolicy"], "Never");
        job_selector_and_labels(&mut job, "u-1");
        assert_eq!(
            job["spec"]["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
        );
        let labels = &job["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["batch.kubernetes.io/controller-uid"], "u-1");
        assert_eq!(labels["controller-uid"], "u-1");
        assert_eq!(labels["batch.kubernetes.io/job-name"], "pi");
        assert_eq!(labels["job-name"], "pi");
        assert_eq!(&job["metadata"]["labels"], labels);

        // Parallelism alone leaves completions unset.
        let p = defaulted("batch/v1", "Job", json!({"spec": {"parallelism": 3}}));
        assert!(p["spec"].get("completions").is_none());

        let cj = defaulted(
            "batch/v1",
            "CronJob",
            json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}}}),
        );
        let s = &cj["spec"];
        assert_eq!(s["concurrencyPolicy"], "Allow");
        assert_eq!(s["suspend"], false);
        assert_eq!(s["successfulJobsHistoryLimit"], 3);
        assert_eq!(s["failedJobsHistoryLimit"], 1);
        assert!(s["jobTemplate"]["spec"].get("backoffLimit").is_none());
        assert_eq!(
            s["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Always"
        );
    }

    #[test]
    fn manual_selector_is_left_alone() {
        let mut job = json!({"metadata": {"name": "j"}, "spec": {"manualSelector": true,
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}}}});
        job_selector_and_labels(&mut job, "u");
        assert_eq!(job["spec"]["selector"], json!({"matchLabels": {"a": "b"}}));
        assert_eq!(job["metadata"]["labels"], json!({"a": "b"}));
    }

    #[test]
    fn service_defaults() {
        let svc = defaulted(
            "v1",
            "Service",
            json!({"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}}),
        );
        let s = &svc["spec"];
        assert_eq!(s["type"], "ClusterIP");
        assert_eq!(s["sessionAffinity"], "None");
        assert_eq!(
            s["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(s["ports"][1]["targetPort"], "dns");
        assert_eq!(s["internalTrafficPolicy"], "Cluster");
        assert_eq!(s["ipFamilyPolicy"], "SingleStack");
        assert_eq!(s["ipFamilies"], json!(["IPv4"]));
        assert!(s.get("externalTrafficPolicy").is_none());
        assert!(s.get("allocateLoadBalancerNodePorts").is_none());
        assert_eq!(svc["status"], json!({"loadBalancer": {}}));

        let lb = defaulted(
            "v1",
            "Service",
            json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}),
        );
        assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);

        let en = defaulted(
            "v1",
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "x.example.com"}}),
        );
        assert!(en["spec"].get("ipFamilyPolicy").is_none());
        assert!(en["spec"].get("internalTrafficPolicy").is_none());

        let aff = defaulted(
            "v1",
            "Service",
            json!({"spec": {"sessionAffinity": "ClientIP"}}),
        );
        assert_eq!(
            aff["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
            10800
        );
    }

    #[test]
    fn core_misc_defaults() {
        let ns = defaulted("v1", "Namespace", json!({"metadata": {"name": "dev"}}));
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "dev"
        );
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");

        let sec = defaulted(
            "v1",
            "Secret",
            json!({"stringData": {"a": "hello"}, "data": {"b": "eA=="}}),
        );
        assert_eq!(sec["type"], "Opaque");
        assert_eq!(sec["data"], json!({"b": "eA==", "a": "aGVsbG8="}));
        assert!(sec.get("stringData").is_none());

        let pvc = defaulted("v1", "PersistentVolumeClaim", json!({"spec": {}}));
        assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pvc["status"]["phase"], "Pending");

        let ep = defaulted(
            "v1",
            "Endpoints",
            json!({"subsets": [{"ports": [{"port": 80}]}]}),
        );
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");

        let node = defaulted("v1", "Node", json!({"status": {"capacity": {"cpu": "2"}}}));
        assert_eq!(node["status"]["allocatable"], json!({"cpu": "2"}));
    }

    #[test]
    fn other_group_defaults() {
        let rb = defaulted(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            json!({"roleRef": {"kind": "Role", "name": "r"},
                   "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s", "namespace": "d"}]}),
        );
        assert_eq!(rb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
        assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
        assert!(rb["subjects"][1].get("apiGroup").is_none());

        let sc = defaulted(
            "storage.k8s.io/v1",
            "StorageClass",
            json!({"provisioner": "x"}),
        );
        assert_eq!(sc["reclaimPolicy"], "Delete");
        assert_eq!(sc["volumeBindingMode"], "Immediate");

        let pc = defaulted("scheduling.k8s.io/v1", "PriorityClass", json!({"value": 5}));
        assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");

        let es = defaulted(
            "discovery.k8s.io/v1",
            "EndpointSlice",
            json!({"ports": [{"port": 80}]}),
        );
        assert_eq!(
            es["ports"][0],
            json!({"port": 80, "name": "", "protocol": "TCP"})
        );

        let np = defaulted(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            json!({"spec": {"egress": [{}]}}),
        );
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }
}
