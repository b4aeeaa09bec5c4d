//! API discovery documents (aggregated `apidiscovery.k8s.io/v2` and the legacy
//! `APIVersions` / `APIGroupList` / `APIGroup` / `APIResourceList`), all generated from the
//! kind registry.

use base64::Engine as _;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::registry::{self, ResourceInfo, Subresource};

/// The exact `Content-Type` an aggregated discovery reply must carry; with plain
/// `application/json` kubectl parses the body as the legacy format and finds no resources.
pub const AGGREGATED_V2_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// The group/version/kind a subresource answers with. The registry leaves `group`/`version`
/// empty when they are the parent's, and `kind` empty when it is the parent's kind.
pub fn subresource_kind(
    parent: &ResourceInfo,
    sub: &Subresource,
) -> (&'static str, &'static str, &'static str) {
    if sub.kind.is_empty() {
        return (parent.group, parent.version, parent.kind);
    }
    if sub.version.is_empty() {
        (parent.group, parent.version, sub.kind)
    } else {
        (sub.group, sub.version, sub.kind)
    }
}

/// The storage version hash apiservers publish: base64 of the first 8 bytes of
/// sha256(`group/version/kind`). Clients only compare it for equality.
pub fn storage_version_hash(group: &str, version: &str, kind: &str) -> String {
    let digest = Sha256::digest(format!("{group}/{version}/{kind}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest[..8])
}

/// Resources the API server serves outside the stored registry: `metrics.k8s.io/v1beta1`,
/// computed from kubelet samples as metrics-server does (get and list only).
pub static METRICS_RESOURCES: &[ResourceInfo] = &[
    ResourceInfo {
        group: "metrics.k8s.io",
        version: "v1beta1",
        kind: "NodeMetrics",
        plural: "nodes",
        singular: "",
        namespaced: false,
        short_names: &[],
        categories: &[],
        verbs: &["get", "list"],
        subresources: &[],
    },
    ResourceInfo {
        group: "metrics.k8s.io",
        version: "v1beta1",
        kind: "PodMetrics",
        plural: "pods",
        singular: "",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: &["get", "list"],
        subresources: &[],
    },
];

/// The registry's resources of a group-version plus the metrics ones and `extra` (the
/// served versions of CustomResourceDefinitions, in the order discovery lists them).
fn served_of<'a>(
    group: &'a str,
    version: &'a str,
    extra: &'a [&'static ResourceInfo],
) -> impl Iterator<Item = &'static ResourceInfo> + 'a {
    registry::resources_of(group, version)
        .chain(
            METRICS_RESOURCES
                .iter()
                .filter(move |r| r.group == group && r.version == version),
        )
        .chain(
            extra
                .iter()
                .copied()
                .filter(move |r| r.group == group && r.version == version),
        )
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "version": version, "kind": kind })
}

fn str_list(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::from(*s)).collect())
}

fn resource_discovery(r: &ResourceInfo) -> Value {
    let mut m = Map::new();
    m.insert("resource".into(), r.plural.into());
    m.insert("responseKind".into(), gvk(r.group, r.version, r.kind));
    m.insert(
        "scope".into(),
        if r.namespaced {
            "Namespaced"
        } else {
            "Cluster"
        }
        .into(),
    );
    m.insert("singularResource".into(), r.singular.into());
    m.insert("verbs".into(), str_list(r.verbs));
    if !r.short_names.is_empty() {
        m.insert("shortNames".into(), str_list(r.short_names));
    }
    if !r.categories.is_empty() {
        m.insert("categories".into(), str_list(r.categories));
    }
    if !r.subresources.is_empty() {
        let subs: Vec<Value> = r
            .subresources
            .iter()
            .map(|s| {
                let (g, v, k) = subresource_kind(r, s);
                json!({
                    "subresource": s.name,
                    "responseKind": gvk(g, v, k),
                    "verbs": str_list(s.verbs),
                })
            })
            .collect();
        m.insert("subresources".into(), Value::Array(subs));
    }
    Value::Object(m)
}

fn version_discovery(group: &str, version: &str, extra: &[&'static ResourceInfo]) -> Value {
    let resources: Vec<Value> = served_of(group, version, extra)
        .map(resource_discovery)
        .collect();
    json!({ "version": version, "resources": resources, "freshness": "Current" })
}

/// Named groups (not core) with their versions, in registry order.
fn named_groups(extra: &[&'static ResourceInfo]) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    let metrics = METRICS_RESOURCES.first().map(|r| (r.group, r.version));
    let custom = extra.iter().map(|r| (r.group, r.version));
    for (g, v) in registry::groups().into_iter().chain(metrics).chain(custom) {
        if g.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(name, _)| *name == g) {
            Some((_, versions)) => {
                if !versions.contains(&v) {
                    versions.push(v)
                }
            }
            None => out.push((g, vec![v])),
        }
    }
    out
}

fn core_versions() -> Vec<&'static str> {
    registry::groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty())
        .map(|(_, v)| v)
        .collect()
}

fn discovery_list(items: Vec<Value>) -> Value {
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// `GET /api` with the aggregated Accept: one `APIGroupDiscovery` for the core group.
pub fn aggregated_core() -> Value {
    let versions: Vec<Value> = core_versions()
        .into_iter()
        .map(|v| version_discovery("", v, &[]))
        .collect();
    discovery_list(vec![json!({
        "metadata": { "creationTimestamp": null },
        "versions": versions,
    })])
}

/// `GET /apis` with the aggregated Accept: every named group.
pub fn aggregated_apis() -> Value {
    aggregated_apis_with(&[])
}

/// [`aggregated_apis`] plus the resources of CustomResourceDefinitions.
pub fn aggregated_apis_with(extra: &[&'static ResourceInfo]) -> Value {
    let items = named_groups(extra)
        .into_iter()
        .map(|(g, versions)| {
            let versions: Vec<Value> = versions
                .into_iter()
                .map(|v| version_discovery(g, v, extra))
                .collect();
            json!({
                "metadata": { "name": g, "creationTimestamp": null },
                "versions": versions,
            })
        })
        .collect();
    discovery_list(items)
}

/// Legacy `GET /api`: `APIVersions`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": core_versions(),
        "serverAddressByClientCIDRs": [
            { "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }
        ],
    })
}

fn group_body(group: &str, versions: &[&str]) -> Map<String, Value> {
    let gv = |v: &str| json!({ "groupVersion": format!("{group}/{v}"), "version": v });
    let mut m = Map::new();
    m.insert("name".into(), group.into());
    m.insert(
        "versions".into(),
        Value::Array(versions.iter().map(|v| gv(v)).collect()),
    );
    if let Some(first) = versions.first() {
        m.insert("preferredVersion".into(), gv(first));
    }
    m
}

/// Legacy `GET /apis`: `APIGroupList` of every named group.
pub fn api_group_list() -> Value {
    api_group_list_with(&[])
}

/// [`api_group_list`] plus the groups of CustomResourceDefinitions.
pub fn api_group_list_with(extra: &[&'static ResourceInfo]) -> Value {
    let groups: Vec<Value> = named_groups(extra)
        .into_iter()
        .map(|(g, versions)| Value::Object(group_body(g, &versions)))
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// Legacy `GET /apis/<group>`: `APIGroup`, or `None` for an unknown group.
pub fn api_group(group: &str) -> Option<Value> {
    api_group_with(group, &[])
}

/// [`api_group`] that also knows the groups of CustomResourceDefinitions.
pub fn api_group_with(group: &str, extra: &[&'static ResourceInfo]) -> Option<Value> {
    let (_, versions) = named_groups(extra).into_iter().find(|(g, _)| *g == group)?;
    let mut m = Map::new();
    m.insert("kind".into(), "APIGroup".into());
    m.insert("apiVersion".into(), "v1".into());
    m.extend(group_body(group, &versions));
    Some(Value::Object(m))
}

fn legacy_resource(r: &ResourceInfo) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), r.plural.into());
    m.insert("singularName".into(), r.singular.into());
    m.insert("namespaced".into(), r.namespaced.into());
    m.insert("kind".into(), r.kind.into());
    m.insert("verbs".into(), str_list(r.verbs));
    if !r.short_names.is_empty() {
        m.insert("shortNames".into(), str_list(r.short_names));
    }
    if !r.categories.is_empty() {
        m.insert("categories".into(), str_list(r.categories));
    }
    if r.verbs.contains(&"list") {
        m.insert(
            "storageVersionHash".into(),
            storage_version_hash(r.group, r.version, r.kind).into(),
        );
    }
    Value::Object(m)
}

fn legacy_subresource(r: &ResourceInfo, s: &Subresource) -> Value {
    let (g, v, k) = subresource_kind(r, s);
    let mut m = Map::new();
    m.insert("name".into(), format!("{}/{}", r.plural, s.name).into());
    m.insert("singularName".into(), "".into());
    m.insert("namespaced".into(), r.namespaced.into());
    if g != r.group || v != r.version {
        m.insert("group".into(), g.into());
        m.insert("version".into(), v.into());
    }
    m.insert("kind".into(), k.into());
    m.insert("verbs".into(), str_list(s.verbs));
    Value::Object(m)
}

/// Legacy `GET /api/v1` or `/apis/<group>/<version>`: `APIResourceList` including the
/// subresource entries (`pods/status`, `deployments/scale`, …); `None` when the group-version
/// is not served.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    api_resource_list_with(group, version, &[])
}

/// [`api_resource_list`] that also serves the group-versions of CustomResourceDefinitions.
pub fn api_resource_list_with(
    group: &str,
    version: &str,
    extra: &[&'static ResourceInfo],
) -> Option<Value> {
    let mut resources = Vec::new();
    for r in served_of(group, version, extra) {
        resources.push(legacy_resource(r));
        for s in r.subresources {
            resources.push(legacy_subresource(r, s));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(list: &'a [Value], key: &str, name: &str) -> &'a Value {
        list.iter()
            .find(|r| r[key] == name)
            .unwrap_or_else(|| panic!("{name} not found"))
    }

    #[test]
    fn custom_resources_join_discovery() {
        static SUBS: &[Subresource] = &[Subresource {
            name: "status",
            group: "",
            version: "",
            kind: "",
            verbs: &["get", "patch", "update"],
        }];
        static CT: ResourceInfo = ResourceInfo {
            group: "stable.example.com",
            version: "v1",
            kind: "CronTab",
            plural: "crontabs",
            singular: "crontab",
            namespaced: true,
            short_names: &["ct"],
            categories: &[],
            verbs: registry::RW_VERBS,
            subresources: SUBS,
        };
        let extra: &[&'static ResourceInfo] = &[&CT];
        let agg = aggregated_apis_with(extra);
        let items = agg["items"].as_array().unwrap();
        let group = items
            .iter()
            .find(|i| i["metadata"]["name"] == "stable.example.com")
            .expect("custom group listed");
        let ct = &group["versions"][0]["resources"][0];
        assert_eq!(ct["resource"], "crontabs");
        assert_eq!(ct["shortNames"], json!(["ct"]));
        assert_eq!(ct["subresources"][0]["subresource"], "status");
        assert!(aggregated_apis()["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["metadata"]["name"] != "stable.example.com"));
        let legacy = api_group_with("stable.example.com", extra).unwrap();
        assert_eq!(
            legacy["preferredVersion"]["groupVersion"],
            "stable.example.com/v1"
        );
        let list = api_resource_list_with("stable.example.com", "v1", extra).unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert_eq!(names, vec!["crontabs", "crontabs/status"]);
        assert!(api_resource_list("stable.example.com", "v1").is_none());
        assert!(api_group_list_with(extra)["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "stable.example.com"));
    }

    #[test]
    fn aggregated_core_lists_pods() {
        let doc = aggregated_core();
        assert_eq!(doc["kind"], "APIGroupDiscoveryList");
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
        let items = doc["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert!(items[0]["metadata"].get("name").is_none());
        let v1 = &items[0]["versions"][0];
        assert_eq!(v1["version"], "v1");
        assert_eq!(v1["freshness"], "Current");
        let pods = find(v1["resources"].as_array().unwrap(), "resource", "pods");
        assert_eq!(
            pods["responseKind"],
            json!({"group": "", "version": "v1", "kind": "Pod"})
        );
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["singularResource"], "pod");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        let subs = pods["subresources"].as_array().unwrap();
        for name in ["status", "log", "exec", "binding"] {
            find(subs, "subresource", name);
        }
        let status = find(subs, "subresource", "status");
        assert_eq!(
            find(subs, "subresource", "eviction")["responseKind"],
            json!({"group": "policy", "version": "v1", "kind": "Eviction"})
        );
        assert_eq!(status["responseKind"]["kind"], "Pod");
        assert_eq!(status["verbs"], json!(["get", "patch", "update"]));
        let exec = find(subs, "subresource", "exec");
        assert_eq!(exec["responseKind"]["kind"], "PodExecOptions");
        let nodes = find(v1["resources"].as_array().unwrap(), "resource", "nodes");
        assert_eq!(nodes["scope"], "Cluster");
        // ConfigMaps have no categories: the key is omitted like upstream.
        let cm = find(
            v1["resources"].as_array().unwrap(),
            "resource",
            "configmaps",
        );
        assert!(cm.get("categories").is_none());
    }

    #[test]
    fn aggregated_apis_has_named_groups_and_scale() {
        let doc = aggregated_apis();
        let items = doc["items"].as_array().unwrap();
        assert!(items.iter().all(|i| i["metadata"]["name"] != ""));
        let apps = items
            .iter()
            .find(|i| i["metadata"]["name"] == "apps")
            .unwrap();
        let res = apps["versions"][0]["resources"].as_array().unwrap();
        let deploy = find(res, "resource", "deployments");
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
        let scale = find(
            deploy["subresources"].as_array().unwrap(),
            "subresource",
            "scale",
        );
        assert_eq!(
            scale["responseKind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        let names: Vec<&str> = items
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        for (g, _) in registry::groups() {
            if !g.is_empty() {
                assert!(names.contains(&g), "{g} missing");
            }
        }
    }

    #[test]
    fn legacy_documents() {
        let v = api_versions("127.0.0.1:6443");
        assert_eq!(v["versions"], json!(["v1"]));
        assert_eq!(
            v["serverAddressByClientCIDRs"][0]["serverAddress"],
            "127.0.0.1:6443"
        );
        let gl = api_group_list();
        let groups = gl["groups"].as_array().unwrap();
        let apps = find(groups, "name", "apps");
        assert_eq!(apps["preferredVersion"]["groupVersion"], "apps/v1");
        assert!(groups.iter().all(|g| g["name"] != ""));
        let g = api_group("batch").unwrap();
        assert_eq!(g["kind"], "APIGroup");
        assert_eq!(g["versions"][0]["groupVersion"], "batch/v1");
        assert!(api_group("nope.example.com").is_none());
    }

    #[test]
    fn legacy_resource_lists() {
        let core = api_resource_list("", "v1").unwrap();
        assert_eq!(core["groupVersion"], "v1");
        let res = core["resources"].as_array().unwrap();
        let pods = find(res, "name", "pods");
        assert_eq!(pods["singularName"], "pod");
        assert_eq!(pods["namespaced"], true);
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(
            pods["storageVersionHash"],
            storage_version_hash("", "v1", "Pod")
        );
        let st = find(res, "name", "pods/status");
        assert_eq!(st["kind"], "Pod");
        assert_eq!(st["singularName"], "");
        assert!(st.get("group").is_none());
        find(res, "name", "pods/log");
        // kubectl drain evicts only when the subresource names policy/v1 (else it deletes).
        let ev = find(res, "name", "pods/eviction");
        assert_eq!(ev["group"], "policy");
        assert_eq!(ev["version"], "v1");
        assert_eq!(ev["kind"], "Eviction");
        assert_eq!(ev["verbs"], json!(["create"]));
        let apps = api_resource_list("apps", "v1").unwrap();
        let scale = find(
            apps["resources"].as_array().unwrap(),
            "name",
            "deployments/scale",
        );
        assert_eq!(scale["group"], "autoscaling");
        assert_eq!(scale["version"], "v1");
        assert_eq!(scale["kind"], "Scale");
        assert!(api_resource_list("apps", "v2").is_none());
        assert!(api_resource_list("", "v2").is_none());
    }

    #[test]
    fn storage_hash_is_stable_and_distinct() {
        let a = storage_version_hash("apps", "v1", "Deployment");
        assert_eq!(a, storage_version_hash("apps", "v1", "Deployment"));
        assert_ne!(a, storage_version_hash("apps", "v1", "ReplicaSet"));
        assert_eq!(a.len(), 12);
        // The value a real apiserver publishes for pods.
        assert_eq!(storage_version_hash("", "v1", "Pod"), "xPOwRZ+Yhw8=");
    }

    #[test]
    fn metrics_group_is_discoverable_for_kubectl_top() {
        let groups = api_group_list();
        let g = find(
            groups["groups"].as_array().unwrap(),
            "name",
            "metrics.k8s.io",
        );
        assert_eq!(
            g["preferredVersion"]["groupVersion"],
            "metrics.k8s.io/v1beta1"
        );
        let list = api_resource_list("metrics.k8s.io", "v1beta1").unwrap();
        let res = list["resources"].as_array().unwrap();
        assert_eq!(find(res, "name", "nodes")["kind"], "NodeMetrics");
        assert_eq!(find(res, "name", "pods")["namespaced"], true);
        let agg = aggregated_apis();
        let item = agg["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "metrics.k8s.io")
            .expect("metrics.k8s.io in aggregated discovery");
        let kinds: Vec<&str> = item["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["responseKind"]["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["NodeMetrics", "PodMetrics"]);
    }
}
