//! CustomResourceDefinitions (`apiextensions.k8s.io/v1`) as pure functions: reading a CRD
//! into what the server needs to serve its resources (`CrdDef`), the status the server gives
//! an accepted CRD, validation of the CRD itself (`validate`), and the structural-schema work
//! on custom objects — validation, pruning, defaulting (`schema`), CEL rules (`rules`) — and
//! printer columns.

pub mod columns;
pub mod rules;
pub mod schema;
pub mod validate;

use serde_json::{json, Value};
use std::cmp::Ordering;

/// The finalizer upstream puts on every CRD so its objects are deleted first.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Where the scale subresource reads and writes replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    /// `.spec.replicas`
    pub spec_replicas: String,
    /// `.status.replicas`
    pub status_replicas: String,
    /// `.status.selector`, if any.
    pub label_selector: Option<String>,
}

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    pub name: String,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// One entry of `spec.versions`.
#[derive(Debug, Clone, PartialEq)]
pub struct CrdVersion {
    pub name: String,
    pub served: bool,
    pub storage: bool,
    pub deprecated: bool,
    pub deprecation_warning: Option<String>,
    /// `schema.openAPIV3Schema`.
    pub schema: Option<Value>,
    pub status: bool,
    pub scale: Option<ScalePaths>,
    pub columns: Vec<PrinterColumn>,
}

/// What the server needs to serve a CRD's resources.
#[derive(Debug, Clone, PartialEq)]
pub struct CrdDef {
    /// `metadata.name` (`<plural>.<group>`).
    pub name: String,
    pub uid: String,
    pub group: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    /// In upstream's version priority order (`v2` before `v1` before `v1beta1` …).
    pub versions: Vec<CrdVersion>,
}

impl CrdDef {
    /// The version objects are stored in.
    pub fn storage_version(&self) -> Option<&CrdVersion> {
        self.versions.iter().find(|v| v.storage)
    }

    /// A served version by name.
    pub fn served(&self, version: &str) -> Option<&CrdVersion> {
        self.versions.iter().find(|v| v.served && v.name == version)
    }
}

fn s(v: Option<&Value>) -> String {
    v.and_then(|x| x.as_str()).unwrap_or("").to_string()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(|x| x.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a stored CRD. `None` when it lacks what serving needs (group, names, versions).
pub fn parse(crd: &Value) -> Option<CrdDef> {
    let spec = crd.get("spec")?;
    let names = spec.get("names")?;
    let group = s(spec.get("group"));
    let plural = s(names.get("plural"));
    let kind = s(names.get("kind"));
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return None;
    }
    let singular = match s(names.get("singular")) {
        x if x.is_empty() => kind.to_ascii_lowercase(),
        x => x,
    };
    let list_kind = match s(names.get("listKind")) {
        x if x.is_empty() => format!("{kind}List"),
        x => x,
    };
    let mut versions: Vec<CrdVersion> = spec
        .get("versions")?
        .as_array()?
        .iter()
        .filter_map(parse_version)
        .collect();
    if versions.is_empty() {
        return None;
    }
    versions.sort_by(|a, b| version_priority(&a.name, &b.name));
    Some(CrdDef {
        name: s(crd.pointer("/metadata/name")),
        uid: s(crd.pointer("/metadata/uid")),
        group,
        kind,
        list_kind,
        plural,
        singular,
        short_names: strings(names.get("shortNames")),
        categories: strings(names.get("categories")),
        namespaced: spec.get("scope").and_then(|x| x.as_str()) != Some("Cluster"),
        versions,
    })
}

fn parse_version(v: &Value) -> Option<CrdVersion> {
    let name = s(v.get("name"));
    if name.is_empty() {
        return None;
    }
    let flag = |k: &str| v.get(k).and_then(|x| x.as_bool()).unwrap_or(false);
    let subs = v.get("subresources");
    let scale = subs.and_then(|x| x.get("scale")).map(|sc| ScalePaths {
        spec_replicas: s(sc.get("specReplicasPath")),
        status_replicas: s(sc.get("statusReplicasPath")),
        label_selector: sc
            .get("labelSelectorPath")
            .and_then(|x| x.as_str())
            .map(String::from),
    });
    let columns = v
        .get("additionalPrinterColumns")
        .and_then(|x| x.as_array())
        .map(|cols| {
            cols.iter()
                .map(|c| PrinterColumn {
                    name: s(c.get("name")),
                    type_: s(c.get("type")),
                    format: s(c.get("format")),
                    description: s(c.get("description")),
                    priority: c.get("priority").and_then(|p| p.as_i64()).unwrap_or(0),
                    json_path: s(c.get("jsonPath")),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(CrdVersion {
        name,
        served: flag("served"),
        storage: flag("storage"),
        deprecated: flag("deprecated"),
        deprecation_warning: v
            .get("deprecationWarning")
            .and_then(|x| x.as_str())
            .map(String::from),
        schema: v.pointer("/schema/openAPIV3Schema").cloned(),
        status: subs.and_then(|x| x.get("status")).is_some(),
        scale,
        columns,
    })
}

/// Upstream's deprecation warning for a served version marked `deprecated`.
pub fn deprecation_warning(def: &CrdDef, v: &CrdVersion) -> String {
    v.deprecation_warning
        .clone()
        .unwrap_or_else(|| format!("{}/{} {} is deprecated", def.group, v.name, def.kind))
}

/// A Kubernetes version string split into (major, stability rank, minor): GA 2, beta 1,
/// alpha 0. `None` for strings that are not `v<N>[(alpha|beta)<M>]`.
fn parse_kube_version(v: &str) -> Option<(u64, u8, u64)> {
    let rest = v.strip_prefix('v')?;
    let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.starts_with('0') {
        return None;
    }
    let major: u64 = rest[..digits].parse().ok()?;
    let tail = &rest[digits..];
    if tail.is_empty() {
        return Some((major, 2, 0));
    }
    for (word, rank) in [("beta", 1u8), ("alpha", 0u8)] {
        if let Some(n) = tail.strip_prefix(word) {
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || n.starts_with('0') {
                return None;
            }
            return Some((major, rank, n.parse().ok()?));
        }
    }
    None
}

/// Upstream's kube-aware version order: GA before beta before alpha, higher numbers first,
/// then every other string alphabetically.
pub fn version_priority(a: &str, b: &str) -> Ordering {
    match (parse_kube_version(a), parse_kube_version(b)) {
        (Some(x), Some(y)) => y.1.cmp(&x.1).then(y.0.cmp(&x.0)).then(y.2.cmp(&x.2)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// The status of an accepted CRD: `acceptedNames` from the spec, `NamesAccepted` and
/// `Established` True (skiff serves a CRD's resources as soon as it is stored), and
/// `storedVersions` including the storage version. Conditions keep their transition time
/// while their status does not change.
pub fn accepted_status(crd: &Value, old_status: Option<&Value>, now: &str) -> Value {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let mut accepted = names.clone();
    if let (Some(o), Some(kind)) = (accepted.as_object_mut(), names.get("kind")) {
        if names.get("singular").is_none() {
            if let Some(k) = kind.as_str() {
                o.insert("singular".into(), json!(k.to_ascii_lowercase()));
            }
        }
        if names.get("listKind").is_none() {
            if let Some(k) = kind.as_str() {
                o.insert("listKind".into(), json!(format!("{k}List")));
            }
        }
    }
    let since = |t: &str| {
        old_status
            .and_then(|s| s.get("conditions"))
            .and_then(|c| c.as_array())
            .and_then(|a| {
                a.iter()
                    .find(|c| c.get("type").and_then(|x| x.as_str()) == Some(t))
            })
            .filter(|c| c.get("status").and_then(|x| x.as_str()) == Some("True"))
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(now))
    };
    let mut stored: Vec<Value> = old_status
        .and_then(|s| s.get("storedVersions"))
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    if let Some(sv) = crd
        .pointer("/spec/versions")
        .and_then(|v| v.as_array())
        .and_then(|a| {
            a.iter()
                .find(|v| v.get("storage").and_then(|x| x.as_bool()) == Some(true))
        })
        .and_then(|v| v.get("name").cloned())
    {
        if !stored.contains(&sv) {
            stored.push(sv);
        }
    }
    json!({
        "acceptedNames": accepted,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "lastTransitionTime": since("NamesAccepted"),
                "reason": "NoConflicts",
                "message": "no conflicts found",
            },
            {
                "type": "Established",
                "status": "True",
                "lastTransitionTime": since("Established"),
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
            },
        ],
        "storedVersions": stored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn crontab_crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "crontabs.stable.example.com", "uid": "u1"},
            "spec": {
                "group": "stable.example.com",
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {
                            "cronSpec": {"type": "string"},
                            "image": {"type": "string"},
                            "replicas": {"type": "integer"}}}}}},
                    "subresources": {"status": {}, "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.labelSelector"}},
                    "additionalPrinterColumns": [
                        {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
                }, {"name": "v1beta1", "served": true, "storage": false, "deprecated": true,
                   "schema": {"openAPIV3Schema": {"type": "object",
                       "x-kubernetes-preserve-unknown-fields": true}}}],
                "scope": "Namespaced",
                "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab",
                          "shortNames": ["ct"]}
            }
        })
    }

    #[test]
    fn parses_the_crontab_crd() {
        let d = parse(&crontab_crd()).unwrap();
        assert_eq!(d.group, "stable.example.com");
        assert_eq!(d.list_kind, "CronTabList");
        assert_eq!(d.short_names, vec!["ct"]);
        assert!(d.namespaced);
        assert_eq!(d.storage_version().unwrap().name, "v1");
        let v1 = d.served("v1").unwrap();
        assert!(v1.status);
        assert_eq!(v1.scale.as_ref().unwrap().spec_replicas, ".spec.replicas");
        assert_eq!(v1.columns.len(), 2);
        assert_eq!(v1.columns[1].type_, "date");
        let beta = d.served("v1beta1").unwrap();
        assert_eq!(
            deprecation_warning(&d, beta),
            "stable.example.com/v1beta1 CronTab is deprecated"
        );
        assert!(parse(&json!({"spec": {}})).is_none());
    }

    #[test]
    fn kube_aware_version_order() {
        let mut v = vec![
            "v1alpha1",
            "foo",
            "v11alpha2",
            "v1",
            "v2beta1",
            "v10",
            "v12alpha1",
            "v2",
            "bar",
            "v1beta2",
            "v10beta3",
            "v3beta1",
        ];
        v.sort_by(|a, b| version_priority(a, b));
        assert_eq!(
            v,
            vec![
                "v10",
                "v2",
                "v1",
                "v10beta3",
                "v3beta1",
                "v2beta1",
                "v1beta2",
                "v12alpha1",
                "v11alpha2",
                "v1alpha1",
                "bar",
                "foo"
            ]
        );
    }

    #[test]
    fn status_is_established_and_keeps_transition_times() {
        let crd = crontab_crd();
        let st = accepted_status(&crd, None, "2026-01-01T00:00:00Z");
        assert_eq!(st["acceptedNames"]["kind"], "CronTab");
        assert_eq!(st["acceptedNames"]["listKind"], "CronTabList");
        assert_eq!(st["conditions"][1]["type"], "Established");
        assert_eq!(st["conditions"][1]["status"], "True");
        assert_eq!(st["storedVersions"], json!(["v1"]));
        let later = accepted_status(&crd, Some(&st), "2027-01-01T00:00:00Z");
        assert_eq!(
            later["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:00:00Z"
        );
    }
}
