//! Field validation of a JSON object against the message table: values of the wrong JSON type
//! and unknown fields, as upstream's JSON decoder reports them (`json: cannot unmarshal string
//! into Go struct field DeploymentSpec.spec.replicas of type int32`, `unknown field "spec.x"`).
//!
//! The table already holds every served kind's fields with their JSON names and Go types, in
//! static data; validating against it needs no OpenAPI document built in memory (those are built
//! only when a client asks for one).

use super::schema::{message_for_kind, msg_at, Card, Field, Message, Special, Ty};
use serde_json::Value;

/// The first value of the wrong type a walk met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError {
    /// Field path from the root without list indices (`spec.template.spec.containers.name`),
    /// as Go's decoder names it.
    pub path: String,
    /// The JSON kind of the value found (`string`, `number`, `bool`, `array`, `object`).
    pub got: &'static str,
    /// The Go struct holding the field (`DeploymentSpec`).
    pub go_struct: String,
    /// The Go type of the field (`int32`, `[]v1.Container`, `map[string]string`).
    pub go_type: String,
}

/// What [`check_object`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Paths of unknown fields, in document order (`spec.bogus`, `spec.containers[0].x`).
    pub unknown: Vec<String>,
    /// The first value of the wrong type.
    pub type_error: Option<TypeError>,
}

/// Walks `obj` (a whole object of `api_version`/`kind`) against its message. Unknown fields
/// are recorded and, when `prune`, removed. `None` when the table has no such kind (custom
/// resources and aggregated APIs are validated elsewhere).
pub fn check_object(
    api_version: &str,
    kind: &str,
    obj: &mut Value,
    prune: bool,
) -> Option<Findings> {
    let msg = message_for_kind(api_version, kind)?;
    let mut out = Findings::default();
    let Value::Object(m) = obj else {
        return Some(out);
    };
    let root = Path::Root;
    for (k, child) in m.iter_mut() {
        match field(msg, k) {
            Some(f) => walk_field(msg, f, child, Path::Field(&root, k), &mut out),
            None if is_type_meta(k) => {}
            None => out.unknown.push(Path::Field(&root, k).render(true)),
        }
    }
    if prune && !out.unknown.is_empty() {
        m.retain(|k, _| is_type_meta(k) || field(msg, k).is_some());
        for (k, child) in m.iter_mut() {
            if let Some(f) = field(msg, k) {
                prune_field(f, child);
            }
        }
    }
    Some(out)
}

/// `apiVersion` and `kind`: in every object's JSON, never in its message.
fn is_type_meta(key: &str) -> bool {
    key == "apiVersion" || key == "kind"
}

/// The field of `msg` named `json` in its JSON form, looking through inlined (embedded) structs,
/// whose fields Go promotes into the outer object (`Probe` holds `ProbeHandler`'s `httpGet`).
/// Whether `msg`'s Go type embeds `TypeMeta`, so its JSON may carry `apiVersion` and `kind`
/// wherever it appears (a StatefulSet's `volumeClaimTemplates` items are PersistentVolumeClaims,
/// an Eviction's `deleteOptions` are DeleteOptions): the served kinds and `DeleteOptions`.
/// Asked only when a nested object has such a key.
fn embeds_type_meta(msg: &'static Message) -> bool {
    let short = msg.name.rsplit('.').next().unwrap_or(msg.name);
    short == "DeleteOptions"
        || crate::registry::RESOURCES.iter().any(|r| {
            r.kind == short
                && message_for_kind(&r.api_version(), r.kind).is_some_and(|m| std::ptr::eq(m, msg))
        })
}

fn field(msg: &'static Message, json: &str) -> Option<&'static Field> {
    msg.fields.iter().find_map(|f| {
        if f.inline() {
            match f.ty {
                Ty::M(i) => field(msg_at(i), json),
                _ => None,
            }
        } else {
            (f.json == json).then_some(f)
        }
    })
}

/// Where a walked value sits; rendered only for a finding.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    /// `spec.containers[0].name` (with indices) or `spec.containers.name` (Go's field stack).
    fn render(&self, indices: bool) -> String {
        let mut out = String::new();
        self.render_into(&mut out, indices);
        out
    }

    fn render_into(&self, out: &mut String, indices: bool) {
        match self {
            Path::Root => {}
            Path::Field(parent, k) => {
                parent.render_into(out, indices);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Path::Index(parent, i) => {
                parent.render_into(out, indices);
                if indices {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The Go name of a message type as `reflect.Type.String()` prints it: `v1.DeploymentSpec`.
fn go_message_type(m: &Message) -> String {
    let mut parts = m.name.rsplit('.');
    let name = parts.next().unwrap_or(m.name);
    match parts.next() {
        Some(pkg) => format!("{pkg}.{name}"),
        None => name.to_string(),
    }
}

fn go_struct_name(m: &Message) -> String {
    m.name.rsplit('.').next().unwrap_or(m.name).to_string()
}

/// The Go type of a single value of `ty`.
fn go_scalar_type(ty: Ty) -> String {
    match ty {
        Ty::Str => "string".into(),
        Ty::Bool => "bool".into(),
        Ty::I32 => "int32".into(),
        Ty::I64 => "int64".into(),
        Ty::F64 => "float64".into(),
        Ty::Bytes => "[]uint8".into(),
        Ty::M(i) => match msg_at(i).special {
            Special::Time | Special::MicroTime | Special::Duration | Special::Quantity => {
                go_message_type(msg_at(i))
            }
            Special::IntOrString => "intstr.IntOrString".into(),
            _ => go_message_type(msg_at(i)),
        },
    }
}

fn go_field_type(f: &Field) -> String {
    let one = go_scalar_type(f.ty);
    match f.card {
        Card::One => one,
        Card::Rep => format!("[]{one}"),
        Card::Map => format!("map[string]{one}"),
    }
}

/// Records the first type error. Go names the struct holding the field, the field path
/// without list indices or map keys, and the type it was decoding into: the field's own type
/// (`[]v1.Container`) when the whole value is wrong, the element's (`v1.Container`, `string`)
/// when one item or map value is.
fn type_error(out: &mut Findings, owner: &Message, go_type: String, v: &Value, at: Path<'_>) {
    if out.type_error.is_none() {
        out.type_error = Some(TypeError {
            path: at.render(false),
            got: json_kind(v),
            go_struct: go_struct_name(owner),
            go_type,
        });
    }
}

/// A field's value: its cardinality first (array / map / one), then each single value.
fn walk_field(owner: &Message, f: &Field, v: &mut Value, at: Path<'_>, out: &mut Findings) {
    match (f.card, v) {
        (_, Value::Null) => {}
        (Card::One, v) => {
            if !single_ok(f.ty, v) {
                return type_error(out, owner, go_field_type(f), v, at);
            }
            walk_single(f.ty, v, at, out);
        }
        (Card::Rep, Value::Array(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                if item.is_null() {
                    continue;
                }
                if !single_ok(f.ty, item) {
                    return type_error(out, owner, go_scalar_type(f.ty), item, at);
                }
                walk_single(f.ty, item, Path::Index(&at, i), out);
            }
        }
        (Card::Map, Value::Object(entries)) => {
            for (k, item) in entries.iter_mut() {
                if item.is_null() {
                    continue;
                }
                if !single_ok(f.ty, item) {
                    return type_error(out, owner, go_scalar_type(f.ty), item, at);
                }
                walk_single(f.ty, item, Path::Field(&at, k), out);
            }
        }
        (_, v) => type_error(out, owner, go_field_type(f), v, at),
    }
}

/// Whether a single (non-null) value has the JSON type `ty` decodes from.
fn single_ok(ty: Ty, v: &Value) -> bool {
    match (ty, v) {
        (Ty::Str | Ty::Bytes, Value::String(_)) => true,
        (Ty::Bool, Value::Bool(_)) => true,
        (Ty::I32 | Ty::I64, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Ty::F64, Value::Number(_)) => true,
        (Ty::M(i), v) => match msg_at(i).special {
            Special::None => v.is_object(),
            Special::Time | Special::MicroTime | Special::Duration => v.is_string(),
            Special::IntOrString | Special::Quantity => v.is_string() || v.is_number(),
            Special::ListWrapper => v.is_array(),
            Special::RawJson
            | Special::SchemaOrArray
            | Special::SchemaOrBool
            | Special::SchemaOrStringArray => true,
        },
        _ => false,
    }
}

/// Descends into a single value already known to have the right JSON type.
fn walk_single(ty: Ty, v: &mut Value, at: Path<'_>, out: &mut Findings) {
    let Ty::M(i) = ty else { return };
    let msg = msg_at(i);
    match (msg.special, v) {
        (Special::None, Value::Object(m)) => {
            for (k, child) in m.iter_mut() {
                match field(msg, k) {
                    Some(f) => walk_field(msg, f, child, Path::Field(&at, k), out),
                    None if is_type_meta(k) && embeds_type_meta(msg) => {}
                    None => out.unknown.push(Path::Field(&at, k).render(true)),
                }
            }
        }
        (Special::ListWrapper, v @ Value::Array(_)) => {
            if let Some(f) = msg.fields.first() {
                walk_field(msg, f, v, at, out);
            }
        }
        _ => {}
    }
}

fn prune_field(f: &Field, v: &mut Value) {
    match (f.card, v) {
        (Card::One, v) => prune_single(f.ty, v),
        (Card::Rep, Value::Array(items)) => items.iter_mut().for_each(|i| prune_single(f.ty, i)),
        (Card::Map, Value::Object(m)) => m.values_mut().for_each(|i| prune_single(f.ty, i)),
        _ => {}
    }
}

fn prune_single(ty: Ty, v: &mut Value) {
    let Ty::M(i) = ty else { return };
    let msg = msg_at(i);
    match (msg.special, v) {
        (Special::None, Value::Object(m)) => {
            m.retain(|k, _| field(msg, k).is_some() || (is_type_meta(k) && embeds_type_meta(msg)));
            for (k, child) in m.iter_mut() {
                if let Some(f) = field(msg, k) {
                    prune_field(f, child);
                }
            }
        }
        (Special::ListWrapper, v @ Value::Array(_)) => {
            if let Some(f) = msg.fields.first() {
                prune_field(f, v);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(api_version: &str, kind: &str, mut obj: Value, prune: bool) -> (Findings, Value) {
        let f = check_object(api_version, kind, &mut obj, prune).expect("kind in the table");
        (f, obj)
    }

    fn deployment(spec: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": spec})
    }

    #[test]
    fn scalar_of_the_wrong_type_names_the_go_struct_and_type() {
        let (f, _) = check(
            "apps/v1",
            "Deployment",
            deployment(json!({"replicas": "3"})),
            false,
        );
        assert_eq!(
            f.type_error,
            Some(TypeError {
                path: "spec.replicas".into(),
                got: "string",
                go_struct: "DeploymentSpec".into(),
                go_type: "int32".into(),
            })
        );
        let (f, _) = check(
            "apps/v1",
            "Deployment",
            deployment(json!({"replicas": 1.5})),
            false,
        );
        assert_eq!(f.type_error.unwrap().got, "number");
    }

    #[test]
    fn list_and_map_errors_follow_go_naming() {
        let pod = |spec: Value| json!({"template": {"spec": spec}});
        let (f, _) = check(
            "apps/v1",
            "Deployment",
            deployment(pod(json!({"containers": {"name": "web"}}))),
            false,
        );
        let e = f.type_error.unwrap();
        assert_eq!(
            (
                e.path.as_str(),
                e.got,
                e.go_struct.as_str(),
                e.go_type.as_str()
            ),
            (
                "spec.template.spec.containers",
                "object",
                "PodSpec",
                "[]v1.Container"
            )
        );
        let (f, _) = check(
            "apps/v1",
            "Deployment",
            deployment(pod(json!({"imagePullSecrets": ["x"]}))),
            false,
        );
        let e = f.type_error.unwrap();
        assert_eq!(
            (e.path.as_str(), e.go_type.as_str()),
            (
                "spec.template.spec.imagePullSecrets",
                "v1.LocalObjectReference"
            )
        );
        let (f, _) = check(
            "apps/v1",
            "Deployment",
            deployment(pod(json!({"nodeSelector": {"ingress-ready": true}}))),
            false,
        );
        let e = f.type_error.unwrap();
        assert_eq!(
            (e.path.as_str(), e.got, e.go_type.as_str()),
            ("spec.template.spec.nodeSelector", "bool", "string")
        );
        let (f, _) = check(
            "apps/v1",
            "Deployment",
            deployment(pod(json!({"nodeSelector": ["a"]}))),
            false,
        );
        assert_eq!(f.type_error.unwrap().go_type, "map[string]string");
        // A nested struct deeper in a list item: the struct is the innermost one.
        let (f, _) = check(
            "apps/v1",
            "Deployment",
            deployment(pod(
                json!({"containers": [{"name": "a", "ports": [{"containerPort": "80"}]}]}),
            )),
            false,
        );
        let e = f.type_error.unwrap();
        assert_eq!(
            (e.path.as_str(), e.go_struct.as_str(), e.go_type.as_str()),
            (
                "spec.template.spec.containers.ports.containerPort",
                "ContainerPort",
                "int32"
            )
        );
    }

    #[test]
    fn special_types_take_their_json_forms() {
        let obj = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "creationTimestamp": null, "labels": {"a": "b"}},
            "spec": {
                "containers": [{
                    "name": "c", "image": "i",
                    "resources": {"limits": {"cpu": 1, "memory": "64Mi"}},
                    "livenessProbe": {"httpGet": {"port": 8080, "path": "/"}},
                    "readinessProbe": {"tcpSocket": {"port": "http"}}
                }],
                "overhead": {"cpu": "100m"}
            },
            "status": {"startTime": "2026-12-08T00:00:00Z"}
        });
        let (f, out) = check("v1", "Pod", obj.clone(), true);
        assert_eq!(f, Findings::default());
        assert_eq!(out, obj);
        let (f, _) = check(
            "v1",
            "Pod",
            json!({"metadata": {"creationTimestamp": 5}}),
            false,
        );
        assert_eq!(f.type_error.unwrap().go_type, "v1.Time");
        // Secret data is []byte: base64 strings.
        let (f, _) = check("v1", "Secret", json!({"data": {"k": "dg=="}}), false);
        assert_eq!(f, Findings::default());
        // RBAC verbs and PolicyRule lists of strings.
        let (f, _) = check(
            "rbac.authorization.k8s.io/v1",
            "Role",
            json!({"rules": [{"verbs": ["get"], "resources": ["pods"], "apiGroups": [""]}]}),
            false,
        );
        assert_eq!(f, Findings::default());
    }

    #[test]
    fn unknown_fields_are_listed_in_order_and_pruned() {
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "bogus": 1},
            "extra": true,
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {
                "containers": [{"name": "a", "image": "i", "x": 1}, {"name": "b", "image": "i"}]
            }}}
        });
        let (f, out) = check("apps/v1", "Deployment", obj.clone(), false);
        assert_eq!(
            f.unknown,
            [
                "metadata.bogus",
                "extra",
                "spec.template.spec.containers[0].x"
            ]
        );
        assert_eq!(out, obj, "nothing removed without prune");
        let (f, out) = check("apps/v1", "Deployment", obj, true);
        assert_eq!(f.unknown.len(), 3);
        assert_eq!(
            out,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "d"},
                "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {
                    "containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]
                }}}
            })
        );
    }

    #[test]
    fn nested_kinds_may_carry_their_type_meta() {
        // A PersistentVolumeClaim embeds TypeMeta: manifests often spell it out in
        // volumeClaimTemplates, and upstream accepts it even under Strict.
        let sts = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
            "spec": {"serviceName": "s", "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
                "volumeClaimTemplates": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}}]}
        });
        let (f, out) = check("apps/v1", "StatefulSet", sts.clone(), true);
        assert_eq!(f, Findings::default());
        assert_eq!(out, sts);
        // A struct that is not a kind (PodSpec) has no TypeMeta.
        let (f, out) = check(
            "v1",
            "Pod",
            json!({"spec": {"kind": "PodSpec", "containers": [], "x": 1}}),
            true,
        );
        assert_eq!(f.unknown, ["spec.kind", "spec.x"]);
        assert_eq!(out, json!({"spec": {"containers": []}}));
    }

    #[test]
    fn embedded_json_is_not_walked() {
        let crd_like = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "spec": {"group": "g", "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {"spec": {"type": "object", "default": {"any": ["thing"]}}}}}}]}
        });
        let (f, _) = check(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            crd_like,
            false,
        );
        assert_eq!(f, Findings::default());
        let (f, _) = check(
            "v1",
            "Event",
            json!({"involvedObject": {"kind": "Pod"}, "eventTime": "2026-12-08T00:00:00.000000Z", "count": 2}),
            false,
        );
        assert_eq!(f, Findings::default());
    }

    #[test]
    fn kinds_outside_the_table_are_not_checked() {
        let mut obj = json!({"spec": {"anything": 1}});
        assert!(check_object("stable.example.com/v1", "CronTab", &mut obj, true).is_none());
        assert_eq!(obj, json!({"spec": {"anything": 1}}));
    }

    #[test]
    fn every_built_in_kind_has_a_message() {
        let missing: Vec<String> = crate::registry::RESOURCES
            .iter()
            .filter(|r| message_for_kind(&r.api_version(), r.kind).is_none())
            .map(|r| format!("{}/{}", r.api_version(), r.kind))
            .collect();
        assert!(missing.is_empty(), "no message for {missing:?}");
    }
}
