//! Validation of a CustomResourceDefinition itself, with upstream's field paths and texts for
//! the main fields: the name, group, names, scope, versions (exactly one storage version,
//! unique names), structural schemas (a type at the root and on every specified field) and
//! their CEL rules (`rules::check`), printer columns and the scale subresource paths; on update the immutable group, scope and
//! plural.

use crate::text::go_quote;
use crate::validation::{is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, FieldCause};
use serde_json::Value;

#[derive(Default)]
struct Errs(Vec<FieldCause>);

impl Errs {
    fn push(&mut self, reason: &str, field: &str, message: String) {
        self.0.push(FieldCause {
            reason: reason.into(),
            message,
            field: field.into(),
        });
    }
    fn required(&mut self, field: &str, detail: &str) {
        let m = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        self.push("FieldValueRequired", field, m);
    }
    fn invalid(&mut self, field: &str, bad: &str, detail: &str) {
        self.push(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {bad}: {detail}"),
        );
    }
    fn not_supported(&mut self, field: &str, bad: &str, valid: &[&str]) {
        let q: Vec<String> = valid.iter().map(|s| go_quote(s)).collect();
        self.push(
            "FieldValueNotSupported",
            field,
            format!(
                "Unsupported value: {}: supported values: {}",
                go_quote(bad),
                q.join(", ")
            ),
        );
    }
    fn name_rule(&mut self, field: &str, value: &str, errs: Vec<String>) {
        for e in errs {
            self.invalid(field, &go_quote(value), &e);
        }
    }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(|x| x.as_str()).unwrap_or("")
}

/// Validates a CRD on create (`old` None) or update.
pub fn validate_crd(crd: &Value, old: Option<&Value>) -> Vec<FieldCause> {
    let mut e = Errs::default();
    let group = str_at(crd, "/spec/group");
    let plural = str_at(crd, "/spec/names/plural");
    let name = str_at(crd, "/metadata/name");
    if name != format!("{plural}.{group}") {
        e.invalid(
            "metadata.name",
            &go_quote(name),
            "must be spec.names.plural+\".\"+spec.group",
        );
    }
    if group.is_empty() {
        e.required("spec.group", "");
    } else {
        e.name_rule("spec.group", group, is_dns1123_subdomain(group));
        if !group.contains('.') {
            e.invalid(
                "spec.group",
                &go_quote(group),
                "should be a domain with at least one dot",
            );
        }
    }
    match str_at(crd, "/spec/scope") {
        "" => e.required("spec.scope", ""),
        "Cluster" | "Namespaced" => {}
        other => e.not_supported("spec.scope", other, &["Cluster", "Namespaced"]),
    }
    names(&mut e, crd);
    versions(&mut e, crd);
    if let Some(old) = old {
        for (field, ptr) in [
            ("spec.group", "/spec/group"),
            ("spec.scope", "/spec/scope"),
            ("spec.names.plural", "/spec/names/plural"),
        ] {
            let (n, o) = (str_at(crd, ptr), str_at(old, ptr));
            if n != o {
                e.invalid(field, &go_quote(n), "field is immutable");
            }
        }
    }
    e.0
}

fn names(e: &mut Errs, crd: &Value) {
    let plural = str_at(crd, "/spec/names/plural");
    if plural.is_empty() {
        e.required("spec.names.plural", "");
    } else {
        e.name_rule("spec.names.plural", plural, is_dns1123_label(plural));
    }
    let singular = str_at(crd, "/spec/names/singular");
    if !singular.is_empty() {
        e.name_rule("spec.names.singular", singular, is_dns1123_label(singular));
    }
    let kind = str_at(crd, "/spec/names/kind");
    if kind.is_empty() {
        e.required("spec.names.kind", "");
    } else if kind.contains(['/', '%']) {
        e.invalid(
            "spec.names.kind",
            &go_quote(kind),
            "may have mixed case, but should otherwise match: ^[a-zA-Z][-_a-zA-Z0-9]*[a-zA-Z0-9]$",
        );
    }
    let list_kind = str_at(crd, "/spec/names/listKind");
    if !list_kind.is_empty() && list_kind == kind {
        e.invalid(
            "spec.names.listKind",
            &go_quote(list_kind),
            "kind and listKind may not be the same or parsing become ambiguous",
        );
    }
    if let Some(a) = crd
        .pointer("/spec/names/shortNames")
        .and_then(|x| x.as_array())
    {
        for (i, s) in a.iter().enumerate() {
            let s = s.as_str().unwrap_or("");
            e.name_rule(
                &format!("spec.names.shortNames[{i}]"),
                s,
                is_dns1123_label(s),
            );
        }
    }
    if let Some(a) = crd
        .pointer("/spec/names/categories")
        .and_then(|x| x.as_array())
    {
        for (i, s) in a.iter().enumerate() {
            let s = s.as_str().unwrap_or("");
            e.name_rule(
                &format!("spec.names.categories[{i}]"),
                s,
                is_dns1123_label(s),
            );
        }
    }
}

fn versions(e: &mut Errs, crd: &Value) {
    let Some(vs) = crd
        .pointer("/spec/versions")
        .and_then(|x| x.as_array())
        .filter(|a| !a.is_empty())
    else {
        e.required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        );
        return;
    };
    let first = vs[0].pointer("/schema/openAPIV3Schema");
    let hoisted = vs
        .iter()
        .all(|v| v.pointer("/schema/openAPIV3Schema") == first);
    let mut seen: Vec<&str> = Vec::new();
    let mut storage = 0;
    let mut served = 0;
    for (i, v) in vs.iter().enumerate() {
        let base = format!("spec.versions[{i}]");
        let name = str_at(v, "/name");
        if name.is_empty() {
            e.required(&format!("{base}.name"), "");
        } else {
            e.name_rule(&format!("{base}.name"), name, is_dns1035_label(name));
            if seen.contains(&name) {
                e.push(
                    "FieldValueDuplicate",
                    &format!("{base}.name"),
                    format!("Duplicate value: {}", go_quote(name)),
                );
            }
            seen.push(name);
        }
        if v.get("storage").and_then(|x| x.as_bool()) == Some(true) {
            storage += 1;
        }
        if v.get("served").and_then(|x| x.as_bool()) == Some(true) {
            served += 1;
        }
        match v.pointer("/schema/openAPIV3Schema") {
            None => e.required(
                &format!("{base}.schema.openAPIV3Schema"),
                "schemas are required",
            ),
            // Identical schemas are one `spec.validation` in upstream's internal version, and
            // its errors carry that path.
            Some(s) if hoisted => {
                if i == 0 {
                    structural(e, s, "spec.validation.openAPIV3Schema", true);
                }
            }
            Some(s) => structural(e, s, &format!("{base}.schema.openAPIV3Schema"), true),
        }
        columns(e, v, &base);
        scale(e, v, &base);
    }
    if storage != 1 {
        e.invalid(
            "spec.versions",
            &versions_value(vs),
            "must have exactly one version marked as storage version",
        );
    }
    if served == 0 {
        e.invalid(
            "spec.versions",
            &versions_value(vs),
            "must have at least one version marked as served",
        );
    }
}

/// A short rendering of the versions for Invalid messages (upstream prints the Go structs).
fn versions_value(vs: &[Value]) -> String {
    let names: Vec<String> = vs
        .iter()
        .map(|v| {
            format!(
                "{{Name:{}, Served:{}, Storage:{}}}",
                go_quote(str_at(v, "/name")),
                v.get("served").and_then(|x| x.as_bool()).unwrap_or(false),
                v.get("storage").and_then(|x| x.as_bool()).unwrap_or(false)
            )
        })
        .collect();
    format!(
        "[]apiextensions.CustomResourceDefinitionVersion{{{}}}",
        names.join(", ")
    )
}

const TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];

/// Structural schema rules: the root is an object; every specified field has a type unless it
/// is int-or-string or preserves unknown fields.
fn structural(e: &mut Errs, s: &Value, path: &str, root: bool) {
    let t = s.get("type").and_then(|x| x.as_str()).unwrap_or("");
    let flag = |k: &str| s.get(k).and_then(|x| x.as_bool()).unwrap_or(false);
    if root {
        if t.is_empty() {
            e.required(&format!("{path}.type"), "must not be empty at the root");
        } else if t != "object" {
            e.not_supported(&format!("{path}.type"), t, &["object"]);
        }
    } else if t.is_empty()
        && !flag("x-kubernetes-int-or-string")
        && !flag("x-kubernetes-preserve-unknown-fields")
    {
        e.required(
            &format!("{path}.type"),
            "must not be empty for specified object fields",
        );
    }
    if !t.is_empty() && !TYPES.contains(&t) {
        e.not_supported(&format!("{path}.type"), t, TYPES);
    }
    if let Some(p) = s.get("pattern").and_then(|x| x.as_str()) {
        if let Err(err) = regex::Regex::new(p) {
            e.invalid(
                &format!("{path}.pattern"),
                &go_quote(p),
                &format!("must be a valid regular expression, but isn't: {err}"),
            );
        }
    }
    if s.get("properties").is_some() && s.get("additionalProperties").is_some_and(|a| a.is_object())
    {
        e.push(
            "FieldValueForbidden",
            &format!("{path}.additionalProperties"),
            "Forbidden: additionalProperties and properties are mutual exclusive".into(),
        );
    }
    e.0.extend(super::rules::check(s, path));
    if let Some(props) = s.get("properties").and_then(|x| x.as_object()) {
        for (k, child) in props {
            structural(e, child, &format!("{path}.properties[{k}]"), false);
        }
    }
    if let Some(a) = s.get("additionalProperties").filter(|a| a.is_object()) {
        structural(e, a, &format!("{path}.additionalProperties"), false);
    }
    if let Some(items) = s.get("items") {
        if items.is_object() {
            structural(e, items, &format!("{path}.items"), false);
        }
    } else if t == "array" {
        e.required(&format!("{path}.items"), "must be specified");
    }
}

fn columns(e: &mut Errs, v: &Value, base: &str) {
    let Some(cols) = v.get("additionalPrinterColumns").and_then(|x| x.as_array()) else {
        return;
    };
    for (i, c) in cols.iter().enumerate() {
        let p = format!("{base}.additionalPrinterColumns[{i}]");
        if str_at(c, "/name").is_empty() {
            e.required(&format!("{p}.name"), "");
        }
        match str_at(c, "/type") {
            "" => e.required(&format!("{p}.type"), ""),
            "boolean" | "date" | "integer" | "number" | "string" => {}
            other => e.not_supported(
                &format!("{p}.type"),
                other,
                &["boolean", "date", "integer", "number", "string"],
            ),
        }
        if str_at(c, "/jsonPath").is_empty() {
            e.required(&format!("{p}.jsonPath"), "");
        }
    }
}

fn scale(e: &mut Errs, v: &Value, base: &str) {
    let Some(sc) = v.pointer("/subresources/scale") else {
        return;
    };
    let p = format!("{base}.subresources.scale");
    for (field, under) in [
        ("specReplicasPath", ".spec."),
        ("statusReplicasPath", ".status."),
    ] {
        let path = str_at(sc, &format!("/{field}"));
        if path.is_empty() {
            e.required(&format!("{p}.{field}"), "");
        } else if !path.starts_with(under) {
            e.invalid(
                &format!("{p}.{field}"),
                &go_quote(path),
                &format!(
                    "should be a json path under {}",
                    under.trim_end_matches('.')
                ),
            );
        }
    }
    let sel = str_at(sc, "/labelSelectorPath");
    if !(sel.is_empty() || sel.starts_with(".spec.") || sel.starts_with(".status.")) {
        e.invalid(
            &format!("{p}.labelSelectorPath"),
            &go_quote(sel),
            "should be a json path under either .spec or .status",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgs(c: Vec<FieldCause>) -> Vec<String> {
        c.iter().map(|c| c.error_string()).collect()
    }

    #[test]
    fn the_crontab_crd_is_valid() {
        let crd = crate::crd::tests::crontab_crd();
        assert_eq!(msgs(validate_crd(&crd, None)), Vec::<String>::new());
        assert!(validate_crd(&crd, Some(&crd)).is_empty());
    }

    #[test]
    fn main_field_errors() {
        let crd = json!({"metadata": {"name": "crontabs.example"},
            "spec": {"group": "example", "scope": "Global",
                "names": {"plural": "CronTabs"},
                "versions": [{"name": "v1", "served": true, "storage": false,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "properties": {"spec": {"properties": {"x": {"type": "string"}}}}}},
                    "subresources": {"scale": {"specReplicasPath": ".replicas",
                        "statusReplicasPath": ".status.replicas"}}}]}});
        assert_eq!(
            msgs(validate_crd(&crd, None)),
            vec![
                r#"metadata.name: Invalid value: "crontabs.example": must be spec.names.plural+"."+spec.group"#,
                r#"spec.group: Invalid value: "example": should be a domain with at least one dot"#,
                r#"spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced""#,
                r#"spec.names.plural: Invalid value: "CronTabs": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#,
                "spec.names.kind: Required value",
                "spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields",
                r#"spec.versions[0].subresources.scale.specReplicasPath: Invalid value: ".replicas": should be a json path under .spec"#,
                r#"spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{{Name:"v1", Served:true, Storage:false}}: must have exactly one version marked as storage version"#,
            ]
        );
    }

    #[test]
    fn immutable_on_update() {
        let old = crate::crd::tests::crontab_crd();
        let mut new = old.clone();
        new["spec"]["scope"] = json!("Cluster");
        assert_eq!(
            msgs(validate_crd(&new, Some(&old))),
            vec![r#"spec.scope: Invalid value: "Cluster": field is immutable"#]
        );
    }
}
