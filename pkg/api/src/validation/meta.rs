//! Object metadata: names, generateName, namespaces, labels, annotations, owner references,
//! finalizers, and the metadata update rules.

use super::*;

pub(super) fn validate_meta(e: &mut Errs, meta: Option<&Value>, namespaced: bool, rule: NameRule) {
    let empty = Value::Object(Map::new());
    let meta = meta.unwrap_or(&empty);
    let generate_name = str_at(meta, "generateName");
    if !generate_name.is_empty() {
        for m in name_errors(rule, generate_name, true) {
            e.invalid("metadata.generateName", bad_str(generate_name), &m);
        }
    }
    let name = str_at(meta, "name");
    if name.is_empty() {
        if generate_name.is_empty() {
            e.required("metadata.name", "name or generateName is required");
        }
    } else {
        for m in name_errors(rule, name, false) {
            e.invalid("metadata.name", bad_str(name), &m);
        }
    }
    let ns = str_at(meta, "namespace");
    if namespaced {
        if ns.is_empty() {
            e.required("metadata.namespace", "");
        } else {
            for m in is_dns1123_label(ns) {
                e.invalid("metadata.namespace", bad_str(ns), &m);
            }
        }
    } else if !ns.is_empty() {
        e.forbidden("metadata.namespace", "not allowed on this type");
    }
    e.nonnegative("metadata.generation", meta.get("generation"));
    validate_labels(e, meta.get("labels"), "metadata.labels");
    validate_annotations(e, meta.get("annotations"), "metadata.annotations");
    for r in arr(meta.get("ownerReferences")) {
        let path = "metadata.ownerReferences";
        let api_version = str_at(r, "apiVersion");
        if api_version
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .is_empty()
        {
            e.invalid(
                &format!("{path}.apiVersion"),
                bad_str(api_version),
                "version must not be empty",
            );
        }
        for (key, what) in [("kind", "kind"), ("name", "name"), ("uid", "uid")] {
            if str_at(r, key).is_empty() {
                e.invalid(
                    &format!("{path}.{key}"),
                    bad_str(""),
                    &format!("{what} must not be empty"),
                );
            }
        }
    }
    for f in arr(meta.get("finalizers")) {
        let f = scalar_string(f);
        for m in is_qualified_name(&f) {
            e.invalid("metadata.finalizers", Bad::Str(f.clone()), &m);
        }
    }
}

pub(super) fn validate_labels(e: &mut Errs, labels: Option<&Value>, path: &str) {
    for (k, v) in sorted_map(labels) {
        for m in validate_label_key(k) {
            e.invalid(path, bad_str(k), &m);
        }
        let v = scalar_string(v);
        for m in validate_label_value(&v) {
            e.invalid(path, Bad::Str(v.clone()), &m);
        }
    }
}

pub(super) fn validate_annotations(e: &mut Errs, ann: Option<&Value>, path: &str) {
    let mut total = 0usize;
    for (k, v) in sorted_map(ann) {
        for m in is_qualified_name(&k.to_lowercase()) {
            e.invalid(path, bad_str(k), &m);
        }
        total += k.len() + scalar_string(v).len();
    }
    if total > 256 * 1024 {
        e.too_long(path, 256 * 1024);
    }
}

/// Go's `time.Time.String()` for an RFC 3339 timestamp, as `ErrorBody` prints `metav1.Time`.
pub(super) fn go_time(v: Option<&Value>) -> Bad {
    match v.and_then(Value::as_str) {
        Some(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => Bad::Raw(
                t.with_timezone(&chrono::Utc)
                    .format("%Y-%m-%d %H:%M:%S +0000 UTC")
                    .to_string(),
            ),
            Err(_) => Bad::Str(s.to_string()),
        },
        None => Bad::Raw("null".into()),
    }
}

pub(super) fn validate_meta_update(e: &mut Errs, old: Option<&Value>, new: Option<&Value>) {
    let empty = Value::Object(Map::new());
    let old = old.unwrap_or(&empty);
    let new = new.unwrap_or(&empty);
    if is_set(old.get("deletionTimestamp")) {
        let old_f: BTreeSet<String> = arr(old.get("finalizers"))
            .iter()
            .map(scalar_string)
            .collect();
        let extra: BTreeSet<String> = arr(new.get("finalizers"))
            .iter()
            .map(scalar_string)
            .filter(|f| !old_f.contains(f))
            .collect();
        if !extra.is_empty() {
            let list: Vec<Value> = extra.into_iter().map(Value::String).collect();
            e.forbidden(
                "metadata.finalizers",
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    go_string_slice(Some(&Value::Array(list)))
                ),
            );
        }
    }
    let og = old.get("generation").and_then(Value::as_i64).unwrap_or(0);
    let ng = new.get("generation").and_then(Value::as_i64).unwrap_or(0);
    if ng < og {
        e.invalid(
            "metadata.generation",
            Bad::Int(ng),
            "must not be decremented",
        );
    }
    for key in ["name", "namespace", "uid"] {
        e.immutable(
            &format!("metadata.{key}"),
            bad_str(str_at(new, key)),
            str_at(old, key) != str_at(new, key),
        );
    }
    for key in ["creationTimestamp", "deletionTimestamp"] {
        let (o, n) = (old.get(key), new.get(key));
        let changed = o.filter(|v| !v.is_null()) != n.filter(|v| !v.is_null());
        e.immutable(&format!("metadata.{key}"), go_time(n), changed);
    }
    let (o, n) = (
        old.get("deletionGracePeriodSeconds"),
        new.get("deletionGracePeriodSeconds"),
    );
    e.immutable(
        "metadata.deletionGracePeriodSeconds",
        bad_json(n),
        o.filter(|v| !v.is_null()) != n.filter(|v| !v.is_null()),
    );
}

pub(super) fn validate_finalizer(e: &mut Errs, f: &str, path: &str) {
    for m in is_qualified_name(f) {
        e.invalid(path, bad_str(f), &m);
    }
    if !f.contains('/') && f != "kubernetes" {
        e.invalid(
            path,
            bad_str(f),
            "name is neither a standard finalizer name nor is it fully qualified",
        );
    }
}
