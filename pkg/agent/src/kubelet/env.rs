//! A container's environment as the kubelet builds it: service link variables, `envFrom`,
//! `env` with `$(VAR)` expansion, and the downward API (`fieldRef`, `resourceFieldRef`), and
//! ConfigMap/Secret key references.

use std::collections::{BTreeMap, HashMap};

use k8s_cri::v1::KeyValue;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use kube::api::{Api, ListParams};
use skiff_api::text::go_quote;

use super::linux::{container_resource_value, NodeResources};

/// `$(VAR)` expansion with upstream's rules (`third_party/forked/golang/expansion`): `$$` is an
/// escaped `$`, an unknown or unterminated reference stays as written.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let b = input.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < b.len() {
        if b[cursor] == b'$' && cursor + 1 < b.len() {
            out.extend_from_slice(&b[checkpoint..cursor]);
            let rest = &b[cursor + 1..];
            let advance = match rest[0] {
                b'$' => {
                    out.push(b'$');
                    1
                }
                b'(' => match rest.iter().position(|&c| c == b')') {
                    Some(end) => {
                        let name = String::from_utf8_lossy(&rest[1..end]);
                        match lookup(&name) {
                            Some(v) => out.extend_from_slice(v.as_bytes()),
                            None => {
                                out.extend_from_slice(b"$(");
                                out.extend_from_slice(name.as_bytes());
                                out.push(b')');
                            }
                        }
                        end + 1
                    }
                    None => {
                        out.extend_from_slice(b"$(");
                        1
                    }
                },
                other => {
                    out.push(b'$');
                    out.push(other);
                    1
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    out.extend_from_slice(&b[checkpoint.min(b.len())..]);
    String::from_utf8_lossy(&out).into_owned()
}

/// Expands `$(VAR)` in a container's command or args against its final environment.
pub fn expand_args(args: &[String], env: &[KeyValue]) -> Vec<String> {
    let map: HashMap<&str, &str> = env
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_str()))
        .collect();
    let lookup = |k: &str| map.get(k).map(|v| v.to_string());
    args.iter().map(|a| expand(a, &lookup)).collect()
}

/// A service name as an env var prefix: upper case, `-` → `_`.
fn env_name(s: &str) -> String {
    s.to_uppercase().replace('-', "_")
}

fn service_ip_set(s: &Service) -> bool {
    matches!(s.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()), Some(ip) if !ip.is_empty() && ip != "None")
}

/// The variables of one service (`envvars.FromServices`): `_SERVICE_HOST`, `_SERVICE_PORT`,
/// one `_SERVICE_PORT_<NAME>` per named port, and the docker link variables.
pub fn service_env(s: &Service) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(spec) = s.spec.as_ref() else {
        return out;
    };
    if !service_ip_set(s) {
        return out;
    }
    let ip = spec.cluster_ip.clone().unwrap_or_default();
    let prefix = env_name(s.metadata.name.as_deref().unwrap_or_default());
    let ports = spec.ports.as_deref().unwrap_or_default();
    out.push((format!("{prefix}_SERVICE_HOST"), ip.clone()));
    if let Some(p) = ports.first() {
        out.push((format!("{prefix}_SERVICE_PORT"), p.port.to_string()));
    }
    for p in ports {
        if let Some(n) = p.name.as_deref().filter(|n| !n.is_empty()) {
            out.push((
                format!("{prefix}_SERVICE_PORT_{}", env_name(n)),
                p.port.to_string(),
            ));
        }
    }
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.clone()
    };
    for (i, p) in ports.iter().enumerate() {
        let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
        let lower = proto.to_lowercase();
        let url = format!("{lower}://{host}:{}", p.port);
        if i == 0 {
            out.push((format!("{prefix}_PORT"), url.clone()));
        }
        let pp = format!("{prefix}_PORT_{}_{}", p.port, proto.to_uppercase());
        out.push((pp.clone(), url));
        out.push((format!("{pp}_PROTO"), lower));
        out.push((format!("{pp}_PORT"), p.port.to_string()));
        out.push((format!("{pp}_ADDR"), ip.clone()));
    }
    out
}

/// The services whose variables a pod in `ns` gets (`getServiceEnvVarMap`): `default/kubernetes`
/// always, the namespace's own services when `enable_links`; a same-named service of the pod's
/// namespace wins. Sorted by name.
pub fn services_for_pod<'a>(
    services: &'a [Service],
    ns: &str,
    enable_links: bool,
) -> Vec<&'a Service> {
    let mut map: BTreeMap<&str, &Service> = BTreeMap::new();
    for s in services.iter().filter(|s| service_ip_set(s)) {
        let name = s.metadata.name.as_deref().unwrap_or_default();
        let sns = s.metadata.namespace.as_deref().unwrap_or_default();
        if sns == "default" && name == "kubernetes" {
            map.entry(name).or_insert(s);
        } else if sns == ns && enable_links {
            map.insert(name, s);
        }
    }
    map.into_values().collect()
}

/// `fieldpath.FormatMap`: sorted `key="value"` lines.
pub fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    m.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn subscript<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    let inner = rest.strip_prefix("['")?.strip_suffix("']")?;
    Some(inner)
}

/// The value of a pod `fieldRef` path (`podFieldSelectorRuntimeValue` + `ExtractFieldPathAsString`).
pub fn pod_field_value(
    pod: &Pod,
    path: &str,
    pod_ip: &str,
    node_ip: &str,
) -> Result<String, String> {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let pod_ips = || {
        let mut ips: Vec<String> = Vec::new();
        if !pod_ip.is_empty() {
            ips.push(pod_ip.to_string());
        }
        for ip in pod.status.iter().flat_map(|s| s.pod_ips.iter().flatten()) {
            if !ip.ip.is_empty() && !ips.contains(&ip.ip) {
                ips.push(ip.ip.clone());
            }
        }
        ips.join(",")
    };
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(m.labels.as_ref()),
        "metadata.annotations" => format_map(m.annotations.as_ref()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => node_ip.to_string(),
        "status.podIP" => pod_ip.to_string(),
        "status.podIPs" => pod_ips(),
        other => {
            if let Some(k) = subscript(other, "metadata.labels") {
                m.labels
                    .as_ref()
                    .and_then(|l| l.get(k))
                    .cloned()
                    .unwrap_or_default()
            } else if let Some(k) = subscript(other, "metadata.annotations") {
                m.annotations
                    .as_ref()
                    .and_then(|l| l.get(k))
                    .cloned()
                    .unwrap_or_default()
            } else {
                return Err(format!(
                    "unsupported fieldRef path {other:?}: use metadata.name, metadata.namespace, metadata.uid, metadata.labels['key'], metadata.annotations['key'], spec.nodeName, spec.serviceAccountName, status.hostIP(s) or status.podIP(s)"
                ));
            }
        }
    })
}

/// The value of a `resourceFieldRef` of `container_name` (default: `default_container`).
pub fn resource_field_value(
    pod: &Pod,
    default_container: &str,
    r: &k8s_openapi::api::core::v1::ResourceFieldSelector,
    node: &NodeResources,
) -> Result<String, String> {
    let name = r
        .container_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(default_container);
    let spec = pod.spec.as_ref();
    let c = spec
        .into_iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .find(|c| c.name == name)
        .ok_or_else(|| {
            format!("container {name:?} not found in the pod: fix resourceFieldRef.containerName")
        })?;
    let divisor = r.divisor.as_ref().map(|d| d.0.as_str()).unwrap_or("1");
    container_resource_value(c, &r.resource, divisor, node)
}

/// ConfigMaps and Secrets fetched once per environment build; `None` = not found.
pub(crate) struct ObjectCache {
    client: kube::Client,
    ns: String,
    configmaps: HashMap<String, Option<ConfigMap>>,
    secrets: HashMap<String, Option<Secret>>,
}

impl ObjectCache {
    pub(crate) fn new(client: &kube::Client, ns: &str) -> ObjectCache {
        ObjectCache {
            client: client.clone(),
            ns: ns.to_string(),
            configmaps: HashMap::new(),
            secrets: HashMap::new(),
        }
    }

    pub(crate) async fn configmap(&mut self, name: &str) -> Result<Option<&ConfigMap>, String> {
        if !self.configmaps.contains_key(name) {
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.ns);
            let got = api
                .get_opt(name)
                .await
                .map_err(|e| format!("cannot get configmap {}/{name}: {e}: check the API server and the node's permissions", self.ns))?;
            self.configmaps.insert(name.to_string(), got);
        }
        Ok(self.configmaps.get(name).and_then(Option::as_ref))
    }

    pub(crate) async fn secret(&mut self, name: &str) -> Result<Option<&Secret>, String> {
        if !self.secrets.contains_key(name) {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.ns);
            let got = api
                .get_opt(name)
                .await
                .map_err(|e| format!("cannot get secret {}/{name}: {e}: check the API server and the node's permissions", self.ns))?;
            self.secrets.insert(name.to_string(), got);
        }
        Ok(self.secrets.get(name).and_then(Option::as_ref))
    }
}

/// An ordered map: a later value for a key replaces the earlier one in place.
#[derive(Default)]
struct Ordered {
    keys: Vec<String>,
    map: HashMap<String, String>,
}

impl Ordered {
    fn set(&mut self, k: String, v: String) {
        if self.map.insert(k.clone(), v).is_none() {
            self.keys.push(k);
        }
    }
    fn get(&self, k: &str) -> Option<&String> {
        self.map.get(k)
    }
}

/// A container's environment, in order: `envFrom` then `env` (later wins), then the service
/// variables not overridden. Missing required objects or keys fail with upstream's message.
pub async fn container_env(
    client: &kube::Client,
    pod: &Pod,
    container: &Container,
    pod_ip: &str,
    node_ip: &str,
) -> Result<Vec<KeyValue>, String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let enable_links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let mut services: Vec<Service> = Vec::new();
    if enable_links {
        let api: Api<Service> = Api::namespaced(client.clone(), ns);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("cannot list services in {ns}: {e}: check the API server"))?;
        services.extend(list.items);
    }
    if !(enable_links && ns == "default") {
        let api: Api<Service> = Api::namespaced(client.clone(), "default");
        if let Some(s) = api.get_opt("kubernetes").await.map_err(|e| {
            format!("cannot get service default/kubernetes: {e}: check the API server")
        })? {
            services.push(s);
        }
    }
    let mut objects = ObjectCache::new(client, ns);
    build_env(
        pod,
        container,
        pod_ip,
        node_ip,
        &services,
        &mut objects,
        &NodeResources::host(),
    )
    .await
}

pub(crate) async fn build_env(
    pod: &Pod,
    container: &Container,
    pod_ip: &str,
    node_ip: &str,
    services: &[Service],
    objects: &mut ObjectCache,
    node: &NodeResources,
) -> Result<Vec<KeyValue>, String> {
    let ns = pod
        .metadata
        .namespace
        .as_deref()
        .unwrap_or("default")
        .to_string();
    let enable_links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let mut service_vars: Vec<(String, String)> = Vec::new();
    for s in services_for_pod(services, &ns, enable_links) {
        service_vars.extend(service_env(s));
    }
    let service_map: HashMap<String, String> = service_vars.iter().cloned().collect();

    let mut env = Ordered::default();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match objects.configmap(&r.name).await? {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        env.set(format!("{prefix}{k}"), v.clone());
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(format!("configmap {:?} not found", r.name)),
            }
        }
        if let Some(r) = &from.secret_ref {
            match objects.secret(&r.name).await? {
                Some(s) => {
                    for (k, v) in s.data.iter().flatten() {
                        env.set(
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(format!("secret {:?} not found", r.name)),
            }
        }
    }

    for var in container.env.iter().flatten() {
        let value = if let Some(v) = var.value.as_deref().filter(|v| !v.is_empty()) {
            let lookup = |k: &str| env.get(k).or_else(|| service_map.get(k)).cloned();
            expand(v, &lookup)
        } else if let Some(from) = &var.value_from {
            if let Some(f) = &from.field_ref {
                pod_field_value(pod, &f.field_path, pod_ip, node_ip)?
            } else if let Some(r) = &from.resource_field_ref {
                resource_field_value(pod, &container.name, r, node)?
            } else if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional == Some(true);
                match objects.configmap(&r.name).await? {
                    None if optional => continue,
                    None => return Err(format!("configmap {:?} not found", r.name)),
                    Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                r.key, r.name
                            ))
                        }
                    },
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional == Some(true);
                match objects.secret(&r.name).await? {
                    None if optional => continue,
                    None => return Err(format!("secret {:?} not found", r.name)),
                    Some(s) => match s.data.as_ref().and_then(|d| d.get(&r.key)) {
                        Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                        None if optional => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                r.key, r.name
                            ))
                        }
                    },
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.set(var.name.clone(), value);
    }

    let mut out: Vec<KeyValue> = env
        .keys
        .iter()
        .map(|k| KeyValue {
            key: k.clone(),
            value: env.map[k].clone(),
        })
        .collect();
    let mut seen: std::collections::HashSet<String> = env.keys.iter().cloned().collect();
    for (k, v) in service_vars {
        if seen.insert(k.clone()) {
            out.push(KeyValue { key: k, value: v });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(k: &str) -> Option<String> {
        match k {
            "A" => Some("a".into()),
            "B" => Some("$(A)".into()),
            _ => None,
        }
    }

    #[test]
    fn expansion_follows_upstream() {
        let cases = [
            ("$(A)", "a"),
            ("x$(A)y$(A)", "xaya"),
            ("$(B)", "$(A)"),
            ("$(C)", "$(C)"),
            ("$$(A)", "$(A)"),
            ("$$$(A)", "$a"),
            ("$$", "$"),
            ("$", "$"),
            ("a$", "a$"),
            ("$(A", "$(A"),
            ("$x", "$x"),
            ("$()", "$()"),
            ("ü$(A)ü", "üaü"),
            ("$ü", "$ü"),
            ("plain", "plain"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &lookup), want, "input {input:?}");
        }
    }

    #[test]
    fn args_expand_against_the_environment() {
        let env = vec![KeyValue {
            key: "PORT".into(),
            value: "8080".into(),
        }];
        assert_eq!(
            expand_args(&["--port=$(PORT)".into(), "$(NOPE)".into()], &env),
            vec!["--port=8080", "$(NOPE)"]
        );
    }

    fn svc(ns: &str, name: &str, ip: &str, ports: serde_json::Value) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "ports": ports}
        }))
        .unwrap()
    }

    #[test]
    fn service_variables_match_the_docker_link_scheme() {
        let s = svc(
            "ns",
            "my-web",
            "10.43.0.5",
            serde_json::json!([
            {"port": 80, "protocol": "TCP"},
            {"name": "dns", "port": 53, "protocol": "UDP"}]),
        );
        let got: HashMap<String, String> = service_env(&s).into_iter().collect();
        let want = [
            ("MY_WEB_SERVICE_HOST", "10.43.0.5"),
            ("MY_WEB_SERVICE_PORT", "80"),
            ("MY_WEB_SERVICE_PORT_DNS", "53"),
            ("MY_WEB_PORT", "tcp://10.43.0.5:80"),
            ("MY_WEB_PORT_80_TCP", "tcp://10.43.0.5:80"),
            ("MY_WEB_PORT_80_TCP_PROTO", "tcp"),
            ("MY_WEB_PORT_80_TCP_PORT", "80"),
            ("MY_WEB_PORT_80_TCP_ADDR", "10.43.0.5"),
            ("MY_WEB_PORT_53_UDP", "udp://10.43.0.5:53"),
            ("MY_WEB_PORT_53_UDP_PROTO", "udp"),
        ];
        for (k, v) in want {
            assert_eq!(got.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert_eq!(got.len(), 12);
        assert!(service_env(&svc(
            "ns",
            "headless",
            "None",
            serde_json::json!([{"port": 80}])
        ))
        .is_empty());
    }

    #[test]
    fn kubernetes_service_is_always_included() {
        let all = vec![
            svc(
                "default",
                "kubernetes",
                "10.43.0.1",
                serde_json::json!([{"name": "https", "port": 443}]),
            ),
            svc("ns", "web", "10.43.0.9", serde_json::json!([{"port": 80}])),
            svc(
                "other",
                "db",
                "10.43.0.7",
                serde_json::json!([{"port": 5432}]),
            ),
        ];
        let names = |v: Vec<&Service>| {
            v.iter()
                .map(|s| s.metadata.name.clone().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(services_for_pod(&all, "ns", true)),
            vec!["kubernetes", "web"]
        );
        assert_eq!(
            names(services_for_pod(&all, "ns", false)),
            vec!["kubernetes"]
        );
        let env: HashMap<String, String> = service_env(&all[0]).into_iter().collect();
        assert_eq!(env["KUBERNETES_SERVICE_PORT_HTTPS"], "443");
        assert_eq!(env["KUBERNETES_SERVICE_HOST"], "10.43.0.1");
    }

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1",
                "labels": {"app": "web", "tier": "a\"b"}, "annotations": {"note": "hi"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa",
                "containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}}]},
            "status": {"podIPs": [{"ip": "10.42.0.5"}, {"ip": "fd00::5"}]}
        }))
        .unwrap()
    }

    #[test]
    fn field_paths_resolve() {
        let p = pod();
        let f = |path: &str| pod_field_value(&p, path, "10.42.0.5", "192.0.2.1").unwrap();
        assert_eq!(f("metadata.name"), "p");
        assert_eq!(f("metadata.namespace"), "ns");
        assert_eq!(f("metadata.uid"), "u1");
        assert_eq!(f("metadata.labels['app']"), "web");
        assert_eq!(f("metadata.labels['missing']"), "");
        assert_eq!(f("metadata.annotations['note']"), "hi");
        assert_eq!(f("metadata.labels"), "app=\"web\"\ntier=\"a\\\"b\"");
        assert_eq!(f("spec.nodeName"), "n1");
        assert_eq!(f("spec.serviceAccountName"), "sa");
        assert_eq!(f("status.hostIP"), "192.0.2.1");
        assert_eq!(f("status.hostIPs"), "192.0.2.1");
        assert_eq!(f("status.podIP"), "10.42.0.5");
        assert_eq!(f("status.podIPs"), "10.42.0.5,fd00::5");
        assert!(pod_field_value(&p, "spec.bogus", "", "").is_err());
    }

    #[test]
    fn resource_fields_use_divisors_and_node_defaults() {
        let p = pod();
        let node = NodeResources {
            milli_cpu: 4000,
            memory_bytes: 8 << 30,
            ephemeral_storage_bytes: 0,
        };
        let r = |res: &str, div: Option<&str>| {
            let sel: k8s_openapi::api::core::v1::ResourceFieldSelector =
                serde_json::from_value(serde_json::json!({"resource": res, "divisor": div}))
                    .unwrap();
            resource_field_value(&p, "c", &sel, &node)
        };
        assert_eq!(r("limits.memory", Some("1Mi")).unwrap(), "64");
        assert_eq!(r("requests.cpu", Some("1m")).unwrap(), "250");
        assert_eq!(r("requests.cpu", None).unwrap(), "1");
        assert_eq!(r("limits.cpu", None).unwrap(), "4");
        assert_eq!(r("limits.memory", None).unwrap(), (64u64 << 20).to_string());
        let sel: k8s_openapi::api::core::v1::ResourceFieldSelector = serde_json::from_value(
            serde_json::json!({"resource": "limits.cpu", "containerName": "nope"}),
        )
        .unwrap();
        assert!(resource_field_value(&p, "c", &sel, &node).is_err());
    }
}
