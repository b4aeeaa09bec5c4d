//! Admission: the server's mutations (pod service account and default tolerations, job
//! selectors), validation into 422 Invalid, strict field validation, and Service cluster IP
//! / NodePort allocation with release on delete or failure.

use crate::error::{ApiError, ApiResult};
use crate::objects::{meta_str, name};
use crate::rest::WriteOpts;
use crate::state::AppState;
use serde_json::{json, Value};
use skiff_api::registry::ResourceInfo;
use skiff_api::validation::{self, FieldCause};
use std::net::Ipv4Addr;

fn is(res: &ResourceInfo, group: &str, kind: &str) -> bool {
    res.group == group && res.kind == kind
}

/// 422 from field causes.
pub fn invalid(res: &ResourceInfo, obj_name: &str, causes: &[FieldCause]) -> ApiError {
    let message = validation::invalid_message(res, obj_name, causes);
    ApiError::invalid(
        res.group,
        res.kind,
        obj_name,
        message,
        serde_json::to_value(causes).unwrap_or(json!([])),
    )
}

/// Validation of a create (old None) or update.
pub fn validate(res: &ResourceInfo, obj: &Value, old: Option<&Value>) -> ApiResult<()> {
    crate::nodeauthz::admit(res, obj, old)?;
    let causes = match old {
        None => validation::validate_create(res, obj),
        Some(o) => validation::validate_update(res, o, obj),
    };
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid(res, name(obj), &causes))
    }
}

/// Type-checks the body against its schema; unknown fields are rejected under
/// `fieldValidation=Strict` and dropped otherwise.
pub fn strict_fields(res: &ResourceInfo, obj: &mut Value, opts: &WriteOpts) -> ApiResult<()> {
    crate::openapi::check_fields(res, obj, opts.field_validation == "Strict")
        .map_err(ApiError::bad_request)
}

/// Mutations on create.
pub async fn mutate_create(st: &AppState, res: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    if is(res, "", "Pod") {
        mutate_pod(st, obj);
        service_account(st, obj).await?;
    }
    if is(res, "", "PersistentVolumeClaim") {
        default_storage_class(st, obj).await?;
    }
    if is(res, "networking.k8s.io", "Ingress") {
        default_ingress_class(st, obj).await?;
    }
    if is(res, "batch", "Job") {
        let uid = meta_str(obj, "uid").unwrap_or("").to_string();
        skiff_api::defaults::job_selector_and_labels(obj, &uid);
    }
    if is(res, "", "Namespace") {
        obj["status"] = json!({"phase": "Active"});
        let n = name(obj).to_string();
        let labels = crate::objects::meta_mut(obj)
            .entry("labels")
            .or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert("kubernetes.io/metadata.name".into(), Value::String(n));
        }
    }
    Ok(())
}

/// Mutations on update.
pub async fn mutate_update(
    _st: &AppState,
    res: &ResourceInfo,
    old: &Value,
    new: &mut Value,
) -> ApiResult<()> {
    if is(res, "", "Namespace") {
        // The phase follows deletion, the name label is kept.
        if let Some(p) = old.pointer("/status/phase") {
            if new.pointer("/status/phase").is_none() {
                new["status"]["phase"] = p.clone();
            }
        }
        let n = name(old).to_string();
        let labels = crate::objects::meta_mut(new)
            .entry("labels")
            .or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert("kubernetes.io/metadata.name".into(), Value::String(n));
        }
    }
    Ok(())
}

/// The DefaultStorageClass admission plugin: a claim created without `storageClassName` gets
/// the default class (annotation `storageclass.kubernetes.io/is-default-class: "true"`; the
/// newest one when several are marked, then the first by name). An explicit `""` is kept.
async fn default_storage_class(st: &AppState, obj: &mut Value) -> ApiResult<()> {
    if obj
        .pointer("/spec/storageClassName")
        .is_some_and(|v| !v.is_null())
    {
        return Ok(());
    }
    let Some(res) = skiff_api::registry::find("storage.k8s.io", "v1", "storageclasses") else {
        return Ok(());
    };
    let list = st
        .store
        .list(&res.key_prefix(), Default::default())
        .await
        .map_err(|e| ApiError::internal(format!("listing storage classes: {e}")))?;
    let classes: Vec<Value> = list
        .kvs
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect();
    if let Some(name) = default_class_name(&classes) {
        if let Some(spec) = obj.get_mut("spec").and_then(|s| s.as_object_mut()) {
            spec.insert("storageClassName".into(), Value::String(name));
        }
    }
    Ok(())
}

/// The default class among `classes` (pure part of [`default_storage_class`]).
pub fn default_class_name(classes: &[Value]) -> Option<String> {
    let is_default = |c: &&Value| {
        [
            "storageclass.kubernetes.io~1is-default-class",
            "storageclass.beta.kubernetes.io~1is-default-class",
        ]
        .iter()
        .any(|k| {
            c.pointer(&format!("/metadata/annotations/{k}"))
                .and_then(|v| v.as_str())
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        })
    };
    let created = |c: &Value| meta_str(c, "creationTimestamp").unwrap_or("").to_string();
    let mut defaults: Vec<&Value> = classes.iter().filter(is_default).collect();
    // Newest first (RFC 3339 UTC timestamps sort as text), then by name.
    defaults.sort_by(|a, b| created(b).cmp(&created(a)).then(name(a).cmp(name(b))));
    defaults.first().map(|c| name(c).to_string())
}

/// The DefaultIngressClass admission plugin: an Ingress created without `ingressClassName`
/// (and without the legacy `kubernetes.io/ingress.class` annotation) gets the class annotated
/// `ingressclass.kubernetes.io/is-default-class: "true"` (the newest when several are).
async fn default_ingress_class(st: &AppState, obj: &mut Value) -> ApiResult<()> {
    let named = obj
        .pointer("/spec/ingressClassName")
        .is_some_and(|v| !v.is_null())
        || obj
            .pointer("/metadata/annotations/kubernetes.io~1ingress.class")
            .is_some();
    if named {
        return Ok(());
    }
    let Some(res) = skiff_api::registry::find("networking.k8s.io", "v1", "ingressclasses") else {
        return Ok(());
    };
    let list = st
        .store
        .list(&res.key_prefix(), Default::default())
        .await
        .map_err(|e| ApiError::internal(format!("listing ingress classes: {e}")))?;
    let classes: Vec<Value> = list
        .kvs
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect();
    if let Some(name) = default_ingress_class_name(&classes) {
        if let Some(spec) = obj.get_mut("spec").and_then(|s| s.as_object_mut()) {
            spec.insert("ingressClassName".into(), Value::String(name));
        }
    }
    Ok(())
}

/// The default class among IngressClasses (pure part of [`default_ingress_class`]).
pub fn default_ingress_class_name(classes: &[Value]) -> Option<String> {
    let is_default = |c: &&Value| {
        c.pointer("/metadata/annotations/ingressclass.kubernetes.io~1is-default-class")
            .and_then(|v| v.as_str())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    let created = |c: &Value| meta_str(c, "creationTimestamp").unwrap_or("").to_string();
    let mut defaults: Vec<&Value> = classes.iter().filter(is_default).collect();
    defaults.sort_by(|a, b| created(b).cmp(&created(a)).then(name(a).cmp(name(b))));
    defaults.first().map(|c| name(c).to_string())
}

/// Where the service account token volume is mounted in every container.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Name prefix of the projected token volume.
const TOKEN_VOLUME_PREFIX: &str = "kube-api-access-";
/// Lifetime the projected token asks for (upstream's "warn only" bound-token expiry).
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;

/// The ServiceAccount admission plugin: the pod's service account must exist (403 otherwise,
/// as upstream), and unless `automountServiceAccountToken` is false on the pod or the account,
/// every container and init container mounts a projected `kube-api-access-<suffix>` volume
/// (token, `kube-root-ca.crt`'s `ca.crt`, the namespace) at [`TOKEN_MOUNT_PATH`].
async fn service_account(st: &AppState, obj: &mut Value) -> ApiResult<()> {
    let mirror = obj
        .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
        .is_some();
    if mirror {
        return Ok(());
    }
    let ns = meta_str(obj, "namespace").unwrap_or("default").to_string();
    let sa_name = obj
        .pointer("/spec/serviceAccountName")
        .and_then(|s| s.as_str())
        .unwrap_or("default")
        .to_string();
    let sa_automount = match st.service_accounts.get(&ns, &sa_name) {
        Some(automount) => automount,
        None => stored_account_automount(st, obj, &ns, &sa_name).await?,
    };
    mount_token(obj, sa_automount, &crate::objects::random_suffix(5));
    Ok(())
}

/// The account's `automountServiceAccountToken`, read from the store (an account the cache
/// does not hold yet); 403 when it does not exist.
async fn stored_account_automount(
    st: &AppState,
    pod: &Value,
    ns: &str,
    sa_name: &str,
) -> ApiResult<Option<bool>> {
    let key = skiff_api::registry::find("", "v1", "serviceaccounts")
        .map(|r| crate::request::object_key(r, Some(ns), sa_name));
    let stored = match key {
        Some(k) => st
            .store
            .get(&k)
            .await
            .map_err(|e| ApiError::internal(format!("reading service account: {e}")))?,
        None => None,
    };
    let Some(kv) = stored else {
        let pod_name = name(pod);
        return Err(ApiError::forbidden(format!(
            "pods \"{pod_name}\" is forbidden: error looking up service account {ns}/{sa_name}: serviceaccount \"{sa_name}\" not found"
        )));
    };
    let sa: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
    Ok(sa
        .get("automountServiceAccountToken")
        .and_then(|b| b.as_bool()))
}

/// Adds the projected token volume and its mounts (pure part of [`service_account`]): the pod's
/// own `automountServiceAccountToken` wins over the account's; containers that already mount
/// something at the token path are left alone; an existing `kube-api-access-*` volume is reused.
pub fn mount_token(pod: &mut Value, sa_automount: Option<bool>, suffix: &str) {
    let Some(spec) = pod.get_mut("spec").and_then(|s| s.as_object_mut()) else {
        return;
    };
    let automount = spec
        .get("automountServiceAccountToken")
        .and_then(|b| b.as_bool())
        .or(sa_automount)
        .unwrap_or(true);
    if !automount {
        return;
    }
    let existing = spec
        .get("volumes")
        .and_then(|v| v.as_array())
        .and_then(|vols| {
            vols.iter()
                .filter_map(|v| v.get("name").and_then(|n| n.as_str()))
                .find(|n| n.starts_with(TOKEN_VOLUME_PREFIX))
                .map(String::from)
        });
    let volume = existing
        .clone()
        .unwrap_or_else(|| format!("{TOKEN_VOLUME_PREFIX}{suffix}"));
    let mut needed = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(|c| c.as_array_mut()) else {
            continue;
        };
        for c in containers.iter_mut().filter_map(|c| c.as_object_mut()) {
            let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
            let Some(mounts) = mounts.as_array_mut() else {
                continue;
            };
            let taken = mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(|p| p.as_str()) == Some(TOKEN_MOUNT_PATH));
            if !taken {
                mounts
                    .push(json!({"name": volume, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH}));
                needed = true;
            }
        }
    }
    if needed && existing.is_none() {
        let vols = spec.entry("volumes").or_insert_with(|| json!([]));
        if let Some(vols) = vols.as_array_mut() {
            vols.push(json!({
                "name": volume,
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                    ],
                    "defaultMode": 420
                }
            }));
        }
    }
}

fn mutate_pod(st: &AppState, obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(|s| s.as_object_mut()) else {
        return;
    };
    let sa = spec
        .get("serviceAccountName")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            spec.get("serviceAccount")
                .and_then(|s| s.as_str())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or("default")
        .to_string();
    spec.insert("serviceAccountName".into(), Value::String(sa.clone()));
    spec.insert("serviceAccount".into(), Value::String(sa));
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if let Some(list) = tolerations.as_array_mut() {
        for (key, secs) in [
            (
                "node.kubernetes.io/not-ready",
                st.cfg.default_not_ready_toleration_seconds,
            ),
            (
                "node.kubernetes.io/unreachable",
                st.cfg.default_unreachable_toleration_seconds,
            ),
        ] {
            let present = list.iter().any(|t| {
                let k = t.get("key").and_then(|k| k.as_str());
                let e = t.get("effect").and_then(|e| e.as_str()).unwrap_or("");
                let op = t
                    .get("operator")
                    .and_then(|o| o.as_str())
                    .unwrap_or("Equal");
                (k == Some(key) && (e.is_empty() || e == "NoExecute"))
                    || (k.is_none() && op == "Exists" && (e.is_empty() || e == "NoExecute"))
            });
            if !present {
                list.push(json!({
                    "key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": secs
                }));
            }
        }
    }
}

/// What one allocation call took, to give back if the write fails.
#[derive(Debug, Default)]
pub struct Allocated {
    pub ips: Vec<Ipv4Addr>,
    pub ports: Vec<u16>,
}

fn svc_ports(obj: &Value) -> Vec<u16> {
    let mut out = vec![];
    if let Some(ps) = obj.pointer("/spec/ports").and_then(|p| p.as_array()) {
        for p in ps {
            if let Some(n) = p.get("nodePort").and_then(|n| n.as_u64()) {
                if n > 0 && n <= u16::MAX as u64 {
                    out.push(n as u16);
                }
            }
        }
    }
    if let Some(h) = obj
        .pointer("/spec/healthCheckNodePort")
        .and_then(|n| n.as_u64())
    {
        if h > 0 && h <= u16::MAX as u64 {
            out.push(h as u16);
        }
    }
    out
}

fn svc_ips(obj: &Value) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = obj
        .pointer("/spec/clusterIPs")
        .and_then(|c| c.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    if let Some(ip) = obj
        .pointer("/spec/clusterIP")
        .and_then(|c| c.as_str())
        .and_then(|s| s.parse().ok())
    {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// Allocates cluster IPs and node ports for a Service being created or updated.
/// Whether writes of `res` allocate cluster IPs or node ports ([`allocate`]): Services only.
pub fn allocates(res: &ResourceInfo) -> bool {
    is(res, "", "Service")
}

pub fn allocate(
    st: &AppState,
    res: &ResourceInfo,
    old: Option<&Value>,
    obj: &mut Value,
) -> ApiResult<Allocated> {
    let mut got = Allocated::default();
    if !allocates(res) {
        return Ok(got);
    }
    let svc_name = name(obj).to_string();
    let fail = |got: &Allocated, field: String, value: Value, msg: String| -> ApiError {
        release(st, res, got);
        let shown = match &value {
            Value::String(s) => format!("{s:?}"),
            Value::Array(a) => format!(
                "[]string{{{}}}",
                a.iter()
                    .map(|x| format!("{}", x))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => other.to_string(),
        };
        let cause = FieldCause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {shown}: {msg}"),
            field,
        };
        invalid(res, &svc_name, &[cause])
    };
    let typ = obj
        .pointer("/spec/type")
        .and_then(|t| t.as_str())
        .unwrap_or("ClusterIP")
        .to_string();
    // --- cluster IP
    if typ != "ExternalName" {
        let old_ips = old.map(svc_ips).unwrap_or_default();
        let requested = obj
            .pointer("/spec/clusterIP")
            .and_then(|c| c.as_str())
            .unwrap_or("")
            .to_string();
        if requested == "None" {
            obj["spec"]["clusterIPs"] = json!(["None"]);
        } else if requested.is_empty() {
            if let Some(ip) = old_ips.first() {
                obj["spec"]["clusterIP"] = json!(ip.to_string());
                obj["spec"]["clusterIPs"] = json!([ip.to_string()]);
            } else {
                let next = st.ips.lock().allocate_next();
                let ip = next.ok_or_else(|| {
                    fail(
                        &got,
                        "spec.clusterIPs".into(),
                        json!([]),
                        "failed to allocate a serviceIP: range is full".into(),
                    )
                })?;
                got.ips.push(ip);
                obj["spec"]["clusterIP"] = json!(ip.to_string());
                obj["spec"]["clusterIPs"] = json!([ip.to_string()]);
            }
        } else {
            let ip: Ipv4Addr = match requested.parse() {
                Ok(ip) => ip,
                Err(_) => {
                    return Err(fail(
                        &got,
                        "spec.clusterIPs[0]".into(),
                        json!(requested),
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into(),
                    ))
                }
            };
            if !old_ips.contains(&ip) {
                let r = st.ips.lock().allocate(ip);
                if let Err(e) = r {
                    return Err(fail(&got, "spec.clusterIPs".into(), json!([requested]), e));
                }
                got.ips.push(ip);
            }
            obj["spec"]["clusterIPs"] = json!([requested]);
        }
        if obj.pointer("/spec/clusterIP").and_then(|c| c.as_str()) != Some("None") {
            if obj.pointer("/spec/ipFamilies").is_none() {
                obj["spec"]["ipFamilies"] = json!(["IPv4"]);
            }
            if obj.pointer("/spec/ipFamilyPolicy").is_none() {
                obj["spec"]["ipFamilyPolicy"] = json!("SingleStack");
            }
        }
    }
    // --- node ports
    let wants_node_ports = typ == "NodePort"
        || (typ == "LoadBalancer"
            && obj
                .pointer("/spec/allocateLoadBalancerNodePorts")
                .and_then(|a| a.as_bool())
                != Some(false));
    let old_ports: Vec<Value> = old
        .and_then(|o| o.pointer("/spec/ports"))
        .and_then(|p| p.as_array())
        .cloned()
        .unwrap_or_default();
    let old_node_ports = old.map(svc_ports).unwrap_or_default();
    if let Some(ports) = obj
        .pointer_mut("/spec/ports")
        .and_then(|p| p.as_array_mut())
    {
        let mut chosen: Vec<Option<u16>> = vec![];
        for (i, p) in ports.iter().enumerate() {
            let np = p.get("nodePort").and_then(|n| n.as_i64()).unwrap_or(0);
            if !wants_node_ports {
                if np != 0 && typ == "ClusterIP" && old.is_none() {
                    return Err(fail(
                        &got,
                        format!("spec.ports[{i}].nodePort"),
                        json!(np),
                        "may not be used when `type` is 'ClusterIP'".into(),
                    ));
                }
                chosen.push(None);
                continue;
            }
            if np != 0 {
                if !(1..=65535).contains(&np) {
                    return Err(fail(
                        &got,
                        format!("spec.ports[{i}].nodePort"),
                        json!(np),
                        "must be between 1 and 65535, inclusive".into(),
                    ));
                }
                let np = np as u16;
                if !old_node_ports.contains(&np) {
                    let r = st.ports.lock().allocate(np);
                    if let Err(e) = r {
                        return Err(fail(
                            &got,
                            format!("spec.ports[{i}].nodePort"),
                            json!(np),
                            e,
                        ));
                    }
                    got.ports.push(np);
                }
                chosen.push(Some(np));
            } else {
                // Keep the port an earlier version of this service had for the same port.
                let port = p.get("port");
                let proto = p.get("protocol").and_then(|x| x.as_str()).unwrap_or("TCP");
                let kept = old_ports.iter().find_map(|op| {
                    let same = op.get("port") == port
                        && op.get("protocol").and_then(|x| x.as_str()).unwrap_or("TCP") == proto;
                    if same {
                        op.get("nodePort")
                            .and_then(|n| n.as_u64())
                            .filter(|n| *n > 0)
                            .map(|n| n as u16)
                    } else {
                        None
                    }
                });
                let np = match kept {
                    Some(k) if !chosen.contains(&Some(k)) => k,
                    _ => {
                        let n = st.ports.lock().allocate_next();
                        match n {
                            Some(n) => {
                                got.ports.push(n);
                                n
                            }
                            None => {
                                return Err(fail(
                                    &got,
                                    format!("spec.ports[{i}].nodePort"),
                                    json!(0),
                                    "failed to allocate a nodePort: range is full".into(),
                                ))
                            }
                        }
                    }
                };
                chosen.push(Some(np));
            }
        }
        for (p, c) in ports.iter_mut().zip(chosen) {
            if let Some(o) = p.as_object_mut() {
                match c {
                    Some(n) => {
                        o.insert("nodePort".into(), json!(n));
                    }
                    None => {
                        o.remove("nodePort");
                    }
                }
            }
        }
    }
    Ok(got)
}

/// Gives back what a failed or dry-run write allocated.
pub fn release(st: &AppState, res: &ResourceInfo, got: &Allocated) {
    if !is(res, "", "Service") {
        return;
    }
    let mut ips = st.ips.lock();
    for ip in &got.ips {
        ips.release(*ip);
    }
    drop(ips);
    let mut ports = st.ports.lock();
    for p in &got.ports {
        ports.release(*p);
    }
}

/// Frees everything a deleted Service held.
pub fn release_object(st: &AppState, res: &ResourceInfo, old: &Value) {
    if !is(res, "", "Service") {
        return;
    }
    release(
        st,
        res,
        &Allocated {
            ips: svc_ips(old),
            ports: svc_ports(old),
        },
    );
}

/// Frees what an updated Service no longer holds.
pub fn release_replaced(st: &AppState, res: &ResourceInfo, old: &Value, new: &Value) {
    if !is(res, "", "Service") {
        return;
    }
    let (ni, np) = (svc_ips(new), svc_ports(new));
    release(
        st,
        res,
        &Allocated {
            ips: svc_ips(old)
                .into_iter()
                .filter(|i| !ni.contains(i))
                .collect(),
            ports: svc_ports(old)
                .into_iter()
                .filter(|p| !np.contains(p))
                .collect(),
        },
    );
}

/// Marks the IPs and ports of a stored Service as used (start-up rebuild).
pub fn restore(st: &AppState, svc: &Value) {
    let mut ips = st.ips.lock();
    for ip in svc_ips(svc) {
        let _ = ips.allocate(ip);
    }
    drop(ips);
    let mut ports = st.ports.lock();
    for p in svc_ports(svc) {
        let _ = ports.allocate(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {
        "initContainers": [{"name": "i", "image": "x"}],
        "containers": [
            {"name": "a", "image": "x"},
            {"name": "b", "image": "x", "volumeMounts": [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]}
        ]}})
    }

    #[test]
    fn default_ingress_class_is_the_newest_marked_one() {
        let class = |n: &str, created: &str, default: Option<&str>| {
            let mut c = json!({"metadata": {"name": n, "creationTimestamp": created},
                "spec": {"controller": "x"}});
            if let Some(d) = default {
                c["metadata"]["annotations"] =
                    json!({"ingressclass.kubernetes.io/is-default-class": d});
            }
            c
        };
        assert_eq!(default_ingress_class_name(&[]), None);
        let classes = [
            class("skiff", "2024-01-01T00:00:00Z", Some("true")),
            class("nginx", "2024-02-01T00:00:00Z", None),
        ];
        assert_eq!(
            default_ingress_class_name(&classes).as_deref(),
            Some("skiff")
        );
        let two = [
            class("skiff", "2024-01-01T00:00:00Z", Some("true")),
            class("newer", "2024-03-01T00:00:00Z", Some("TRUE")),
        ];
        assert_eq!(default_ingress_class_name(&two).as_deref(), Some("newer"));
    }

    #[test]
    fn default_storage_class_is_the_newest_marked_one() {
        let sc = |n: &str, created: &str, default: Option<&str>| {
            let mut v = json!({"metadata": {"name": n, "creationTimestamp": created}});
            if let Some(d) = default {
                v["metadata"]["annotations"] =
                    json!({"storageclass.kubernetes.io/is-default-class": d});
            }
            v
        };
        assert_eq!(default_class_name(&[]), None);
        let classes = [
            sc("fast", "2026-01-02T00:00:00Z", None),
            sc("local-path", "2026-01-01T00:00:00Z", Some("true")),
            sc("off", "2026-01-03T00:00:00Z", Some("false")),
        ];
        assert_eq!(default_class_name(&classes).as_deref(), Some("local-path"));
        let two = [
            sc("b", "2026-01-05T00:00:00Z", Some("true")),
            sc("a", "2026-01-05T00:00:00Z", Some("true")),
            sc("old", "2026-01-01T00:00:00Z", Some("true")),
        ];
        assert_eq!(default_class_name(&two).as_deref(), Some("a"));
    }

    #[test]
    fn token_volume_is_mounted_where_the_path_is_free() {
        let mut p = pod();
        mount_token(&mut p, None, "abcde");
        let vols = p["spec"]["volumes"].as_array().unwrap();
        assert_eq!(vols.len(), 1);
        assert_eq!(vols[0]["name"], "kube-api-access-abcde");
        assert_eq!(vols[0]["projected"]["defaultMode"], 420);
        assert_eq!(
            vols[0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3607
        );
        let mount = json!({"name": "kube-api-access-abcde", "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
        assert_eq!(
            p["spec"]["initContainers"][0]["volumeMounts"],
            json!([mount])
        );
        assert_eq!(p["spec"]["containers"][0]["volumeMounts"], json!([mount]));
        // b already mounts something at the token path.
        assert_eq!(
            p["spec"]["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn automount_false_on_pod_or_account_skips_and_pod_wins() {
        let mut p = pod();
        mount_token(&mut p, Some(false), "abcde");
        assert!(p["spec"].get("volumes").is_none());
        let mut p = pod();
        p["spec"]["automountServiceAccountToken"] = json!(false);
        mount_token(&mut p, Some(true), "abcde");
        assert!(p["spec"].get("volumes").is_none());
        let mut p = pod();
        p["spec"]["automountServiceAccountToken"] = json!(true);
        mount_token(&mut p, Some(false), "abcde");
        assert_eq!(p["spec"]["volumes"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn an_existing_token_volume_is_reused() {
        let mut p = pod();
        p["spec"]["volumes"] =
            json!([{"name": "kube-api-access-zzzzz", "projected": {"sources": []}}]);
        mount_token(&mut p, None, "abcde");
        assert_eq!(p["spec"]["volumes"].as_array().unwrap().len(), 1);
        assert_eq!(
            p["spec"]["containers"][0]["volumeMounts"][0]["name"],
            "kube-api-access-zzzzz"
        );
    }
}
