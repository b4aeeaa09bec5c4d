//! Object validation with the upstream (Kubernetes 1.32) field errors: the same field paths,
//! reasons and `field.Error.ErrorBody()` texts the real API server puts in an Invalid (422)
//! Status, and the same aggregate message (`Deployment.apps "web" is invalid: …`).
//!
//! Bad values are rendered the way 1.32's `ErrorBody` renders them: strings quoted like Go's
//! `%q`, numbers and booleans plain, and structured values in Go's `%#v` syntax
//! (`map[string]string{"app":"x"}`, `v1.LabelSelector{…}`, `intstr.IntOrString{…}`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::registry::ResourceInfo;

/// One field-level cause of an Invalid error (a `metav1.StatusCause`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldCause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`,
    /// `FieldValueDuplicate`, `FieldValueForbidden`, `FieldValueTooLong`,
    /// `FieldValueNotFound` or `FieldValueTypeInvalid`.
    pub reason: String,
    /// The upstream `ErrorBody()` text, e.g. `Required value` or `Invalid value: "Foo": …`.
    pub message: String,
    /// The field path, e.g. `spec.template.spec.containers[0].image`.
    pub field: String,
}

impl FieldCause {
    /// `field: message`, the upstream `field.Error.Error()` text.
    pub fn error_string(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// The message of an Invalid Status, exactly like upstream `errors.NewInvalid`: the qualified
/// kind, the quoted name, and the causes (one inline, several as `[a, b]`, duplicates dropped).
pub fn invalid_message(res: &ResourceInfo, name: &str, causes: &[FieldCause]) -> String {
    let mut seen = BTreeSet::new();
    let mut msgs = Vec::new();
    for c in causes {
        let m = c.error_string();
        if seen.insert(m.clone()) {
            msgs.push(m);
        }
    }
    let head = format!("{} {} is invalid", res.group_kind(), go_quote(name));
    match msgs.len() {
        0 => head,
        1 => format!("{head}: {}", msgs[0]),
        _ => format!("{head}: [{}]", msgs.join(", ")),
    }
}

// ---------------------------------------------------------------------------------------
// Format checks (k8s.io/apimachinery/pkg/util/validation)

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_MSG: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
const FIELD_IMMUTABLE: &str = "field is immutable";
const IS_NEGATIVE: &str = "must be greater than or equal to 0";
const QUANTITY_MSG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// Upstream `RegexError`: the message, examples and the regex.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, ex) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{ex}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

/// Upstream `IsDNS1123Label`: the messages for a value that is not a lowercase RFC 1123 label.
pub fn is_dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !matches_dns1123_label(s) {
        if matches_dns1123_subdomain(s) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Upstream `IsDNS1123Subdomain`.
pub fn is_dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !matches_dns1123_subdomain(s) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            &format!("{DNS1123_LABEL_FMT}(\\.{DNS1123_LABEL_FMT})*"),
            &["example.com"],
        ));
    }
    errs
}

/// Upstream `IsDNS1035Label` (Service names).
pub fn is_dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len_error(63));
    }
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-');
    if !ok {
        errs.push(regex_error(
            DNS1035_LABEL_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

fn matches_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

/// Upstream `IsQualifiedName`: an optional DNS-subdomain prefix and `/`, then a name part.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !matches_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Upstream `ValidateLabelName` messages (a label key is a qualified name).
pub fn validate_label_key(key: &str) -> Vec<String> {
    is_qualified_name(key)
}

/// Upstream `IsValidLabelValue`.
pub fn validate_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !value.is_empty() && !matches_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            &format!("({QUALIFIED_NAME_FMT})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Upstream `IsConfigMapKey` (ConfigMap and Secret data keys).
pub fn is_config_map_key(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if key.len() > 253 {
        errs.push(max_len_error(253));
    }
    let ok = !key.is_empty()
        && key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.');
    if !ok {
        errs.push(regex_error(
            CONFIG_MAP_KEY_MSG,
            CONFIG_MAP_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if key == "." {
        errs.push("must not be '.'".to_string());
    } else if key == ".." {
        errs.push("must not be '..'".to_string());
    } else if key.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range_error(1, 65535)]
    }
}

fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    if port.is_empty()
        || !port
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

fn is_valid_percent(s: &str) -> bool {
    s.strip_suffix('%')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

fn is_valid_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

fn is_valid_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.parse::<u32>().is_ok_and(|b| b <= max)
}

/// Parses a Kubernetes resource quantity (`100m`, `1.5Gi`, `2e3`) into a number.
pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let num_end = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || ((*c == '+' || *c == '-') && *i == 0)))
        .map_or(s.len(), |(i, _)| i);
    let (num, suffix) = s.split_at(num_end);
    if num.is_empty() || num == "+" || num == "-" || num.matches('.').count() > 1 {
        return None;
    }
    let base: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => {
            let exp = suffix.strip_prefix(['e', 'E'])?;
            let e: i32 = exp.parse().ok()?;
            10f64.powi(e)
        }
    };
    Some(base * mult)
}

// ---------------------------------------------------------------------------------------
// Go value rendering

/// Go's `strconv.Quote`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go `%#v` of a `map[string]string` (keys sorted, like Go's printer).
fn go_string_map(v: Option<&Value>) -> String {
    match v.and_then(Value::as_object) {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            let parts: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(&scalar_string(v))))
                .collect();
            format!("map[string]string{{{}}}", parts.join(", "))
        }
    }
}

/// Go `%#v` of a `[]string`.
fn go_string_slice(v: Option<&Value>) -> String {
    match v.and_then(Value::as_array) {
        None => "[]string(nil)".to_string(),
        Some(a) => {
            let parts: Vec<String> = a.iter().map(|x| go_quote(&scalar_string(x))).collect();
            format!("[]string{{{}}}", parts.join(", "))
        }
    }
}

/// Go `%#v` of a `metav1.LabelSelector`.
fn go_label_selector(sel: Option<&Value>) -> String {
    let ml = go_string_map(sel.and_then(|s| s.get("matchLabels")));
    let exprs = match sel
        .and_then(|s| s.get("matchExpressions"))
        .and_then(Value::as_array)
    {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(a) => {
            let parts: Vec<String> = a
                .iter()
                .map(|e| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(str_at(e, "key")),
                        go_quote(str_at(e, "operator")),
                        go_string_slice(e.get("values"))
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", parts.join(", "))
        }
    };
    format!("v1.LabelSelector{{MatchLabels:{ml}, MatchExpressions:{exprs}}}")
}

/// Go `%#v` of an `intstr.IntOrString`.
fn go_int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => {
            format!(
                "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
                go_quote(s)
            )
        }
        Some(Value::Number(n)) => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            n.as_i64().unwrap_or_default()
        ),
        _ => "intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}".to_string(),
    }
}

fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A bad value as 1.32's `ErrorBody` prints it.
#[derive(Debug, Clone)]
enum Bad {
    Str(String),
    Int(i64),
    /// Already rendered (Go `%#v`, JSON, `null`).
    Raw(String),
}

impl Bad {
    fn render(&self) -> String {
        match self {
            Bad::Str(s) => go_quote(s),
            Bad::Int(i) => i.to_string(),
            Bad::Raw(r) => r.clone(),
        }
    }
}

fn bad_str(s: &str) -> Bad {
    Bad::Str(s.to_string())
}

/// A JSON value as a bad value: strings quoted, numbers/booleans plain, null as `null`.
fn bad_json(v: Option<&Value>) -> Bad {
    match v {
        None | Some(Value::Null) => Bad::Raw("null".into()),
        Some(Value::String(s)) => Bad::Str(s.clone()),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Bad::Int(i),
            None => Bad::Raw(n.to_string()),
        },
        Some(other) => Bad::Raw(other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// Error list

#[derive(Default)]
struct Errs(Vec<FieldCause>);

impl Errs {
    fn push(&mut self, reason: &str, field: &str, message: String) {
        self.0.push(FieldCause {
            reason: reason.to_string(),
            message,
            field: field.to_string(),
        });
    }

    fn with_detail(head: String, detail: &str) -> String {
        if detail.is_empty() {
            head
        } else {
            format!("{head}: {detail}")
        }
    }

    fn required(&mut self, field: &str, detail: &str) {
        let m = Self::with_detail("Required value".into(), detail);
        self.push("FieldValueRequired", field, m);
    }

    fn invalid(&mut self, field: &str, v: Bad, detail: &str) {
        let m = Self::with_detail(format!("Invalid value: {}", v.render()), detail);
        self.push("FieldValueInvalid", field, m);
    }

    fn not_supported(&mut self, field: &str, v: Bad, valid: &[&str]) {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let q: Vec<String> = valid.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", q.join(", "))
        };
        let m = Self::with_detail(format!("Unsupported value: {}", v.render()), &detail);
        self.push("FieldValueNotSupported", field, m);
    }

    fn duplicate(&mut self, field: &str, v: Bad) {
        self.push(
            "FieldValueDuplicate",
            field,
            format!("Duplicate value: {}", v.render()),
        );
    }

    fn not_found(&mut self, field: &str, v: Bad) {
        self.push(
            "FieldValueNotFound",
            field,
            format!("Not found: {}", v.render()),
        );
    }

    fn forbidden(&mut self, field: &str, detail: &str) {
        let m = Self::with_detail("Forbidden".into(), detail);
        self.push("FieldValueForbidden", field, m);
    }

    fn too_long(&mut self, field: &str, max: usize) {
        self.push(
            "FieldValueTooLong",
            field,
            format!("Too long: may not be more than {max} bytes"),
        );
    }

    fn type_invalid(&mut self, field: &str, v: Bad, detail: &str) {
        let m = Self::with_detail(format!("Invalid value: {}", v.render()), detail);
        self.push("FieldValueTypeInvalid", field, m);
    }

    fn nonnegative(&mut self, field: &str, v: Option<&Value>) {
        if let Some(n) = v.and_then(Value::as_i64) {
            if n < 0 {
                self.invalid(field, Bad::Int(n), IS_NEGATIVE);
            }
        }
    }

    fn immutable(&mut self, field: &str, new: Bad, changed: bool) {
        if changed {
            self.invalid(field, new, FIELD_IMMUTABLE);
        }
    }
}

// ---------------------------------------------------------------------------------------
// JSON access helpers

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn arr(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn sorted_map(v: Option<&Value>) -> Vec<(&String, &Value)> {
    let mut items: Vec<(&String, &Value)> = v
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    items.sort_by(|a, b| a.0.cmp(b.0));
    items
}

fn is_set(v: Option<&Value>) -> bool {
    v.is_some_and(|v| !v.is_null())
}

/// Labels as a string map (non-string values are skipped).
fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    sorted_map(v)
        .into_iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Public entry points

/// Validates a new object of kind `res` (after defaulting). Empty when valid.
pub fn validate_create(res: &ResourceInfo, obj: &Value) -> Vec<FieldCause> {
    let mut e = Errs::default();
    validate_object(&mut e, res, obj, None);
    e.0
}

/// Validates an update: the create rules on `new`, the metadata update rules and the
/// kind's immutability rules against `old`. Empty when valid.
pub fn validate_update(res: &ResourceInfo, old: &Value, new: &Value) -> Vec<FieldCause> {
    let mut e = Errs::default();
    validate_meta_update(&mut e, old.get("metadata"), new.get("metadata"));
    validate_object(&mut e, res, new, Some(old));
    e.0
}

#[derive(Clone, Copy)]
enum NameRule {
    Subdomain,
    Label,
    Dns1035,
    PathSegment,
}

fn name_errors(rule: NameRule, name: &str, prefix: bool) -> Vec<String> {
    let masked;
    let name = if prefix && name.len() > 1 && name.ends_with('-') {
        masked = format!("{}a", &name[..name.len() - 1]);
        masked.as_str()
    } else {
        name
    };
    match rule {
        NameRule::Subdomain => is_dns1123_subdomain(name),
        NameRule::Label => is_dns1123_label(name),
        NameRule::Dns1035 => is_dns1035_label(name),
        NameRule::PathSegment => {
            if !prefix && (name == "." || name == "..") {
                return vec![format!("may not be '{name}'")];
            }
            let mut errs = Vec::new();
            for bad in ["/", "%"] {
                if name.contains(bad) {
                    errs.push(format!("may not contain '{bad}'"));
                }
            }
            errs
        }
    }
}

fn validate_object(e: &mut Errs, res: &ResourceInfo, obj: &Value, old: Option<&Value>) {
    let meta = obj.get("metadata");
    let rule = match (res.group, res.kind) {
        ("", "Namespace") => Some(NameRule::Label),
        ("", "Service") => Some(NameRule::Dns1035),
        ("rbac.authorization.k8s.io", _) => Some(NameRule::PathSegment),
        ("authentication.k8s.io" | "authorization.k8s.io", _) | ("", "Binding") => None,
        _ => Some(NameRule::Subdomain),
    };
    if let Some(rule) = rule {
        validate_meta(e, meta, res.namespaced, rule);
    }
    let is_update = old.is_some();
    match (res.group, res.kind) {
        ("", "Pod") => validate_pod(e, obj, old),
        ("", "PodTemplate") => validate_pod_template(e, obj.get("template"), "template"),
        ("", "ReplicationController") => validate_rc(e, obj),
        ("", "Service") => validate_service(e, obj, old),
        ("", "Namespace") => {
            for f in arr(obj.pointer("/spec/finalizers")) {
                validate_finalizer(e, &scalar_string(f), "spec.finalizers");
            }
        }
        ("", "ConfigMap") => validate_config_map(e, obj, old),
        ("", "Secret") => validate_secret(e, obj, old),
        ("", "Endpoints") => validate_endpoints(e, obj),
        ("", "Node") => validate_node(e, obj, old),
        ("", "PersistentVolumeClaim") => validate_pvc(e, obj, old),
        ("apps", "Deployment") => {
            validate_deployment_spec(e, obj.get("spec"));
            immutable_selector(e, obj, old);
        }
        ("apps", "ReplicaSet") => {
            validate_replica_set_spec(e, obj.get("spec"));
            immutable_selector(e, obj, old);
        }
        ("apps", "DaemonSet") => {
            validate_daemon_set_spec(e, obj.get("spec"));
            immutable_selector(e, obj, old);
        }
        ("apps", "StatefulSet") => validate_stateful_set(e, obj, old),
        ("apps", "ControllerRevision") => {
            if !is_set(obj.get("data")) {
                e.required("data", "data is mandatory");
            }
            e.nonnegative("revision", obj.get("revision"));
            if let Some(old) = old {
                e.immutable(
                    "data",
                    bad_json(obj.get("data")),
                    old.get("data") != obj.get("data"),
                );
            }
        }
        ("batch", "Job") => validate_job(e, obj, old),
        ("batch", "CronJob") => validate_cron_job(e, obj, is_update),
        ("networking.k8s.io", "Ingress") => validate_ingress(e, obj.get("spec")),
        ("networking.k8s.io", "NetworkPolicy") => {
            validate_label_selector(e, obj.pointer("/spec/podSelector"), "spec.podSelector");
        }
        ("rbac.authorization.k8s.io", "Role") => validate_rules(e, obj, true),
        ("rbac.authorization.k8s.io", "ClusterRole") => validate_rules(e, obj, false),
        ("rbac.authorization.k8s.io", "RoleBinding") => validate_binding(e, obj, old, true),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => validate_binding(e, obj, old, false),
        ("storage.k8s.io", "StorageClass") => validate_storage_class(e, obj, old),
        ("policy", "PodDisruptionBudget") => validate_pdb(e, obj.get("spec")),
        ("scheduling.k8s.io", "PriorityClass") => validate_priority_class(e, obj, old),
        ("coordination.k8s.io", "Lease") => {
            if let Some(n) = obj
                .pointer("/spec/leaseDurationSeconds")
                .and_then(Value::as_i64)
            {
                if n <= 0 {
                    e.invalid(
                        "spec.leaseDurationSeconds",
                        Bad::Int(n),
                        "must be greater than 0",
                    );
                }
            }
            e.nonnegative(
                "spec.leaseTransitions",
                obj.pointer("/spec/leaseTransitions"),
            );
        }
        ("discovery.k8s.io", "EndpointSlice") => validate_endpoint_slice(e, obj, old),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Object metadata

fn validate_meta(e: &mut Errs, meta: Option<&Value>, namespaced: bool, rule: NameRule) {
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

fn validate_labels(e: &mut Errs, labels: Option<&Value>, path: &str) {
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

fn validate_annotations(e: &mut Errs, ann: Option<&Value>, path: &str) {
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
fn go_time(v: Option<&Value>) -> Bad {
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

fn validate_meta_update(e: &mut Errs, old: Option<&Value>, new: Option<&Value>) {
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

fn validate_finalizer(e: &mut Errs, f: &str, path: &str) {
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

// ---------------------------------------------------------------------------------------
// Label selectors

/// Validates a `metav1.LabelSelector` (upstream `ValidateLabelSelector`).
fn validate_label_selector(e: &mut Errs, sel: Option<&Value>, path: &str) {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return;
    };
    validate_labels(e, sel.get("matchLabels"), &format!("{path}.matchLabels"));
    for (i, r) in arr(sel.get("matchExpressions")).iter().enumerate() {
        let rp = format!("{path}.matchExpressions[{i}]");
        let values = arr(r.get("values"));
        match str_at(r, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    e.required(
                        &format!("{rp}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    );
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    e.forbidden(
                        &format!("{rp}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
            op => e.invalid(
                &format!("{rp}.operator"),
                bad_str(op),
                "not a valid selector operator",
            ),
        }
        let key = str_at(r, "key");
        for m in validate_label_key(key) {
            e.invalid(&format!("{rp}.key"), bad_str(key), &m);
        }
        for (j, v) in values.iter().enumerate() {
            let v = scalar_string(v);
            for m in validate_label_value(&v) {
                e.invalid(&format!("{rp}.values[{j}]"), Bad::Str(v.clone()), &m);
            }
        }
    }
}

/// A parsed label selector (upstream `LabelSelectorAsSelector`). `None` for a nil selector
/// (which selects nothing); `Err` when it cannot be converted.
type Requirement = (String, String, Vec<String>);

fn selector_requirements(sel: Option<&Value>) -> Option<Result<Vec<Requirement>, ()>> {
    let sel = sel.filter(|s| !s.is_null())?;
    let mut reqs = Vec::new();
    for (k, v) in sorted_map(sel.get("matchLabels")) {
        let v = scalar_string(v);
        if !validate_label_key(k).is_empty() || !validate_label_value(&v).is_empty() {
            return Some(Err(()));
        }
        reqs.push((k.clone(), "In".to_string(), vec![v]));
    }
    for r in arr(sel.get("matchExpressions")) {
        let op = str_at(r, "operator").to_string();
        let values: Vec<String> = arr(r.get("values")).iter().map(scalar_string).collect();
        let ok = match op.as_str() {
            "In" | "NotIn" => !values.is_empty(),
            "Exists" | "DoesNotExist" => values.is_empty(),
            _ => false,
        };
        let key = str_at(r, "key").to_string();
        if !ok
            || !validate_label_key(&key).is_empty()
            || values.iter().any(|v| !validate_label_value(v).is_empty())
        {
            return Some(Err(()));
        }
        reqs.push((key, op, values));
    }
    Some(Ok(reqs))
}

fn requirements_match(reqs: &[Requirement], labels: &BTreeMap<String, String>) -> bool {
    reqs.iter().all(|(k, op, vals)| match op.as_str() {
        "In" => labels.get(k).is_some_and(|v| vals.contains(v)),
        "NotIn" => labels.get(k).is_none_or(|v| !vals.contains(v)),
        "Exists" => labels.contains_key(k),
        "DoesNotExist" => !labels.contains_key(k),
        _ => false,
    })
}

/// Whether a label selector matches `labels`: a nil selector matches nothing, an empty one
/// everything. `None` when the selector is invalid.
pub fn label_selector_matches(sel: Option<&Value>, labels: Option<&Value>) -> Option<bool> {
    match selector_requirements(sel) {
        None => Some(false),
        Some(Err(())) => None,
        Some(Ok(reqs)) => Some(requirements_match(&reqs, &string_map(labels))),
    }
}

// ---------------------------------------------------------------------------------------
// Pods

const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn validate_pod(e: &mut Errs, pod: &Value, old: Option<&Value>) {
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

fn validate_pod_update(e: &mut Errs, old: Option<&Value>, new: Option<&Value>) {
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
fn json_semantic_eq(a: &Value, b: &Value) -> bool {
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
fn spec_diff(type_name: &str, old: &Value, new: &Value) -> String {
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

fn validate_pod_template(e: &mut Errs, t: Option<&Value>, path: &str) {
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

fn validate_pod_spec(e: &mut Errs, spec: Option<&Value>, path: &str, is_pod: bool) {
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

fn validate_tolerations(e: &mut Errs, tols: Option<&Value>, path: &str) {
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

const VOLUME_SOURCES: &[&str] = &[
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
fn validate_volumes(e: &mut Errs, vols: Option<&Value>, path: &str) -> BTreeSet<String> {
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

fn validate_container_common(e: &mut Errs, c: &Value, volumes: &BTreeSet<String>, p: &str) {
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

fn validate_container_ports(e: &mut Errs, ports: Option<&Value>, path: &str) {
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

fn validate_protocol(e: &mut Errs, port: &Value, path: &str) {
    match str_at(port, "protocol") {
        "TCP" | "UDP" | "SCTP" => {}
        "" => e.required(path, ""),
        other => e.not_supported(path, bad_str(other), &["SCTP", "TCP", "UDP"]),
    }
}

fn check_host_port_conflicts(e: &mut Errs, containers: &[Value], path: &str) {
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

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !name.starts_with("hugepages-")
}

fn validate_resource_entry(e: &mut Errs, name: &str, q: &Value, path: &str) -> Option<f64> {
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

fn validate_resources(e: &mut Errs, res: Option<&Value>, path: &str) {
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

fn validate_probes(e: &mut Errs, c: &Value, p: &str) {
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

fn validate_port_num_or_name(e: &mut Errs, v: Option<&Value>, path: &str) {
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

fn validate_handler(e: &mut Errs, h: &Value, path: &str, kinds: &[&str]) {
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

// ---------------------------------------------------------------------------------------
// Workloads

fn validate_rc(e: &mut Errs, obj: &Value) {
    let spec = obj.get("spec");
    e.nonnegative(
        "spec.minReadySeconds",
        spec.and_then(|s| s.get("minReadySeconds")),
    );
    let selector = spec.and_then(|s| s.get("selector"));
    let sel_empty = selector
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    if sel_empty {
        e.required("spec.selector", "");
    }
    e.nonnegative("spec.replicas", spec.and_then(|s| s.get("replicas")));
    let template = spec
        .and_then(|s| s.get("template"))
        .filter(|t| !t.is_null());
    let Some(t) = template else {
        e.required("spec.template", "");
        return;
    };
    if !sel_empty {
        let want = string_map(selector);
        let have = string_map(t.pointer("/metadata/labels"));
        if !want.iter().all(|(k, v)| have.get(k) == Some(v)) {
            e.invalid(
                "spec.template.metadata.labels",
                Bad::Raw(go_string_map(t.pointer("/metadata/labels"))),
                "`selector` does not match template `labels`",
            );
        }
    }
    validate_pod_template(e, Some(t), "spec.template");
    let rp = str_at_path(t, "/spec/restartPolicy");
    if rp != "Always" {
        e.not_supported("spec.template.spec.restartPolicy", bad_str(rp), &["Always"]);
    }
    if is_set(t.pointer("/spec/activeDeadlineSeconds")) {
        e.forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in ReplicationController is not Supported",
        );
    }
}

fn str_at_path<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The selector checks shared by Deployments and ReplicaSets; returns the parsed selector.
fn validate_required_selector(e: &mut Errs, spec: Option<&Value>, what: &str) {
    let sel = spec
        .and_then(|s| s.get("selector"))
        .filter(|s| !s.is_null());
    match sel {
        None => e.required("spec.selector", ""),
        Some(sel) => {
            validate_label_selector(e, Some(sel), "spec.selector");
            let n =
                sorted_map(sel.get("matchLabels")).len() + arr(sel.get("matchExpressions")).len();
            if n == 0 {
                e.invalid(
                    "spec.selector",
                    Bad::Raw(go_label_selector(Some(sel))),
                    &format!("empty selector is invalid for {what}"),
                );
            }
        }
    }
}

/// Upstream `ValidatePodTemplateSpecForReplicaSet`.
fn validate_template_for_replica_set(e: &mut Errs, spec: Option<&Value>, owner: &str) {
    let sel = spec.and_then(|s| s.get("selector"));
    let template = spec.and_then(|s| s.get("template"));
    match selector_requirements(sel) {
        Some(Err(())) => {
            e.invalid(
                "spec.selector",
                Bad::Raw(go_label_selector(sel)),
                "invalid label selector",
            );
            return;
        }
        Some(Ok(reqs)) if !reqs.is_empty() => {
            let labels = template.and_then(|t| t.pointer("/metadata/labels"));
            if !requirements_match(&reqs, &string_map(labels)) {
                e.invalid(
                    "spec.template.metadata.labels",
                    Bad::Raw(go_string_map(labels)),
                    "`selector` does not match template `labels`",
                );
            }
        }
        _ => {}
    }
    validate_pod_template(e, template, "spec.template");
    if let Some(t) = template.filter(|t| !t.is_null()) {
        let rp = str_at_path(t, "/spec/restartPolicy");
        if rp != "Always" {
            e.not_supported("spec.template.spec.restartPolicy", bad_str(rp), &["Always"]);
        }
        if is_set(t.pointer("/spec/activeDeadlineSeconds")) {
            e.forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                &format!("activeDeadlineSeconds in {owner} is not Supported"),
            );
        }
    }
}

fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) if is_valid_percent(s) => {
            s.trim_end_matches('%').parse().unwrap_or(0)
        }
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn validate_positive_int_or_percent(e: &mut Errs, v: Option<&Value>, path: &str) {
    match v {
        Some(Value::String(s)) if !is_valid_percent(s) => {
            e.invalid(
                path,
                Bad::Raw(go_int_or_string(v)),
                &regex_error(
                    "a valid percent string must be a numeric string followed by an ending '%'",
                    "[0-9]+%",
                    &["1%", "93%"],
                ),
            );
        }
        Some(Value::Number(_)) => e.nonnegative(path, v),
        _ => {}
    }
}

fn not_more_than_100_percent(e: &mut Errs, v: Option<&Value>, path: &str) {
    if let Some(Value::String(s)) = v {
        if is_valid_percent(s) && int_or_percent_value(v) > 100 {
            e.invalid(
                path,
                Bad::Raw(go_int_or_string(v)),
                "must not be greater than 100%",
            );
        }
    }
}

fn validate_deployment_spec(e: &mut Errs, spec: Option<&Value>) {
    e.nonnegative("spec.replicas", spec.and_then(|s| s.get("replicas")));
    validate_required_selector(e, spec, "deployment");
    validate_template_for_replica_set(e, spec, "ReplicaSet");
    let strategy = spec.and_then(|s| s.get("strategy"));
    let ru = strategy
        .and_then(|s| s.get("rollingUpdate"))
        .filter(|v| !v.is_null());
    match strategy.map(|s| str_at(s, "type")).unwrap_or_default() {
        "Recreate" => {
            if ru.is_some() {
                e.forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                );
            }
        }
        "RollingUpdate" => match ru {
            None => e.required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            ),
            Some(ru) => {
                let mu = ru.get("maxUnavailable");
                let ms = ru.get("maxSurge");
                let p = "spec.strategy.rollingUpdate";
                validate_positive_int_or_percent(e, mu, &format!("{p}.maxUnavailable"));
                validate_positive_int_or_percent(e, ms, &format!("{p}.maxSurge"));
                if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                    e.invalid(
                        &format!("{p}.maxUnavailable"),
                        Bad::Raw(go_int_or_string(mu)),
                        "may not be 0 when `maxSurge` is 0",
                    );
                }
                not_more_than_100_percent(e, mu, &format!("{p}.maxUnavailable"));
            }
        },
        other => {
            let rendered = format!(
                "apps.DeploymentStrategy{{Type:{}, RollingUpdate:{}}}",
                go_quote(other),
                if ru.is_some() {
                    "(*apps.RollingUpdateDeployment)(…)"
                } else {
                    "(*apps.RollingUpdateDeployment)(nil)"
                }
            );
            e.not_supported(
                "spec.strategy",
                Bad::Raw(rendered),
                &["Recreate", "RollingUpdate"],
            );
        }
    }
    e.nonnegative(
        "spec.minReadySeconds",
        spec.and_then(|s| s.get("minReadySeconds")),
    );
    e.nonnegative(
        "spec.revisionHistoryLimit",
        spec.and_then(|s| s.get("revisionHistoryLimit")),
    );
    if let Some(pd) = spec
        .and_then(|s| s.get("progressDeadlineSeconds"))
        .and_then(Value::as_i64)
    {
        e.nonnegative(
            "spec.progressDeadlineSeconds",
            spec.and_then(|s| s.get("progressDeadlineSeconds")),
        );
        let min_ready = spec
            .and_then(|s| s.get("minReadySeconds"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if pd <= min_ready {
            e.invalid(
                "spec.progressDeadlineSeconds",
                Bad::Int(pd),
                "must be greater than minReadySeconds",
            );
        }
    }
}

fn validate_replica_set_spec(e: &mut Errs, spec: Option<&Value>) {
    e.nonnegative("spec.replicas", spec.and_then(|s| s.get("replicas")));
    e.nonnegative(
        "spec.minReadySeconds",
        spec.and_then(|s| s.get("minReadySeconds")),
    );
    validate_required_selector(e, spec, "deployment");
    validate_template_for_replica_set(e, spec, "ReplicaSet");
}

fn validate_daemon_set_spec(e: &mut Errs, spec: Option<&Value>) {
    let sel = spec
        .and_then(|s| s.get("selector"))
        .filter(|s| !s.is_null());
    validate_label_selector(e, sel, "spec.selector");
    let template = spec.and_then(|s| s.get("template"));
    let labels = template.and_then(|t| t.pointer("/metadata/labels"));
    if label_selector_matches(sel, labels) == Some(false) {
        e.invalid(
            "spec.template.metadata.labels",
            Bad::Raw(go_string_map(labels)),
            "`selector` does not match template `labels`",
        );
    }
    if let Some(sel) = sel {
        if sorted_map(sel.get("matchLabels")).len() + arr(sel.get("matchExpressions")).len() == 0 {
            e.invalid(
                "spec.selector",
                Bad::Raw(go_label_selector(Some(sel))),
                "empty selector is invalid for daemonset",
            );
        }
    }
    validate_pod_template(e, template, "spec.template");
    if let Some(t) = template.filter(|t| !t.is_null()) {
        let rp = str_at_path(t, "/spec/restartPolicy");
        if rp != "Always" {
            e.not_supported("spec.template.spec.restartPolicy", bad_str(rp), &["Always"]);
        }
        if is_set(t.pointer("/spec/activeDeadlineSeconds")) {
            e.forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                "activeDeadlineSeconds in DaemonSet is not Supported",
            );
        }
    }
    e.nonnegative(
        "spec.minReadySeconds",
        spec.and_then(|s| s.get("minReadySeconds")),
    );
    let strategy = spec.and_then(|s| s.get("updateStrategy"));
    let ty = strategy.map(|s| str_at(s, "type")).unwrap_or_default();
    match ty {
        "OnDelete" => {}
        "RollingUpdate" => match strategy
            .and_then(|s| s.get("rollingUpdate"))
            .filter(|v| !v.is_null())
        {
            None => e.required("spec.updateStrategy.rollingUpdate", ""),
            Some(ru) => {
                let p = "spec.updateStrategy.rollingUpdate";
                let (mu, ms) = (ru.get("maxUnavailable"), ru.get("maxSurge"));
                validate_positive_int_or_percent(e, mu, &format!("{p}.maxUnavailable"));
                validate_positive_int_or_percent(e, ms, &format!("{p}.maxSurge"));
                not_more_than_100_percent(e, mu, &format!("{p}.maxUnavailable"));
                not_more_than_100_percent(e, ms, &format!("{p}.maxSurge"));
                let has_u = int_or_percent_value(mu) != 0;
                let has_s = int_or_percent_value(ms) != 0;
                if has_u && has_s {
                    e.invalid(
                        &format!("{p}.maxSurge"),
                        Bad::Raw(go_int_or_string(ms)),
                        "may not be set when maxUnavailable is non-zero",
                    );
                } else if !has_u && !has_s {
                    e.required(
                        &format!("{p}.maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    );
                }
            }
        },
        other => {
            let rendered = format!(
                "apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}}",
                go_quote(other)
            );
            e.not_supported(
                "spec.updateStrategy",
                Bad::Raw(rendered),
                &["RollingUpdate", "OnDelete"],
            );
        }
    }
    e.nonnegative(
        "spec.revisionHistoryLimit",
        spec.and_then(|s| s.get("revisionHistoryLimit")),
    );
}

/// Deployments, ReplicaSets and DaemonSets: `spec.selector` may not change after creation.
fn immutable_selector(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let Some(old) = old else {
        return;
    };
    let (o, n) = (old.pointer("/spec/selector"), obj.pointer("/spec/selector"));
    let changed = !json_semantic_eq(o.unwrap_or(&Value::Null), n.unwrap_or(&Value::Null));
    e.immutable("spec.selector", Bad::Raw(go_label_selector(n)), changed);
}

const STS_UPDATABLE: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

fn validate_stateful_set(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec");
    match spec
        .map(|s| str_at(s, "podManagementPolicy"))
        .unwrap_or_default()
    {
        "" => e.required("spec.podManagementPolicy", ""),
        "OrderedReady" | "Parallel" => {}
        other => e.invalid(
            "spec.podManagementPolicy",
            bad_str(other),
            "must be 'OrderedReady' or 'Parallel'",
        ),
    }
    let strategy = spec.and_then(|s| s.get("updateStrategy"));
    let ru = strategy
        .and_then(|s| s.get("rollingUpdate"))
        .filter(|v| !v.is_null());
    match strategy.map(|s| str_at(s, "type")).unwrap_or_default() {
        "" => e.required("spec.updateStrategy", ""),
        "OnDelete" => {
            if let Some(ru) = ru {
                e.invalid(
                    "spec.updateStrategy.rollingUpdate",
                    Bad::Raw(ru.to_string()),
                    "only allowed for updateStrategy 'RollingUpdate'",
                );
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = ru {
                e.nonnegative("spec.updateStrategy.rollingUpdate.partition", ru.get("partition"));
                if let Some(mu) = ru.get("maxUnavailable").filter(|v| !v.is_null()) {
                    let p = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                    validate_positive_int_or_percent(e, Some(mu), p);
                    if int_or_percent_value(Some(mu)) == 0 {
                        e.invalid(p, Bad::Raw(go_int_or_string(Some(mu))), "cannot be 0");
                    }
                    not_more_than_100_percent(e, Some(mu), p);
                }
            }
        }
        other => e.invalid(
            "spec.updateStrategy",
            Bad::Raw(format!(
                "apps.StatefulSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}}",
                go_quote(other)
            )),
            "must be 'RollingUpdate' or 'OnDelete'",
        ),
    }
    e.nonnegative("spec.replicas", spec.and_then(|s| s.get("replicas")));
    e.nonnegative(
        "spec.minReadySeconds",
        spec.and_then(|s| s.get("minReadySeconds")),
    );
    let sel = spec
        .and_then(|s| s.get("selector"))
        .filter(|s| !s.is_null());
    match sel {
        None => e.required("spec.selector", ""),
        Some(sel) => {
            validate_label_selector(e, Some(sel), "spec.selector");
            if sorted_map(sel.get("matchLabels")).len() + arr(sel.get("matchExpressions")).len()
                == 0
            {
                e.invalid(
                    "spec.selector",
                    Bad::Raw(go_label_selector(Some(sel))),
                    "empty selector is invalid for statefulset",
                );
            }
        }
    }
    let template = spec.and_then(|s| s.get("template"));
    match selector_requirements(sel) {
        Some(Err(())) => e.invalid("spec.selector", Bad::Raw(go_label_selector(sel)), ""),
        _ => {
            let labels = template.and_then(|t| t.pointer("/metadata/labels"));
            if let Some(Ok(reqs)) = selector_requirements(sel) {
                if !reqs.is_empty() && !requirements_match(&reqs, &string_map(labels)) {
                    e.invalid(
                        "spec.template.metadata.labels",
                        Bad::Raw(go_string_map(labels)),
                        "`selector` does not match template `labels`",
                    );
                }
            }
            validate_labels(e, labels, "spec.template.labels");
            validate_annotations(
                e,
                template.and_then(|t| t.pointer("/metadata/annotations")),
                "spec.template.annotations",
            );
        }
    }
    let rp = template
        .map(|t| str_at_path(t, "/spec/restartPolicy"))
        .unwrap_or_default();
    if rp != "Always" {
        e.not_supported("spec.template.spec.restartPolicy", bad_str(rp), &["Always"]);
    }
    if let Some(ads) = template
        .and_then(|t| t.pointer("/spec/activeDeadlineSeconds"))
        .filter(|v| !v.is_null())
    {
        e.invalid(
            "spec.template.spec.activeDeadlineSeconds",
            bad_json(Some(ads)),
            "must not be specified",
        );
    }
    if let Some(old) = old {
        let strip = |v: Option<&Value>| {
            let mut s = v.cloned().unwrap_or(Value::Null);
            if let Some(m) = s.as_object_mut() {
                for k in STS_UPDATABLE {
                    m.remove(*k);
                }
            }
            s
        };
        if !json_semantic_eq(&strip(old.get("spec")), &strip(spec)) {
            e.forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Jobs

fn validate_job(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec");
    let manual = spec
        .and_then(|s| s.get("manualSelector"))
        .and_then(Value::as_bool)
        == Some(true);
    let sel = spec
        .and_then(|s| s.get("selector"))
        .filter(|s| !s.is_null());
    if !manual && sel.is_some() && old.is_none() {
        let uid = obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if uid.is_empty() {
            e.required("metadata.uid", "");
        }
        let labels = spec.and_then(|s| s.pointer("/template/metadata/labels"));
        let lmap = string_map(labels);
        for (key, want) in [
            ("controller-uid", uid),
            ("job-name", name),
            ("batch.kubernetes.io/controller-uid", uid),
            ("batch.kubernetes.io/job-name", name),
        ] {
            let p = format!("spec.template.metadata.labels[{key}]");
            match lmap.get(key) {
                None => e.required(&p, &format!("must be '{want}'")),
                Some(v) if v != want => e.invalid(
                    &p,
                    Bad::Raw(go_string_map(labels)),
                    &format!("must be '{want}'"),
                ),
                _ => {}
            }
        }
        let expected: BTreeMap<String, String> = [
            ("batch.kubernetes.io/controller-uid", uid),
            ("batch.kubernetes.io/job-name", name),
            ("controller-uid", uid),
            ("job-name", name),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(Ok(reqs)) = selector_requirements(sel) {
            if !requirements_match(&reqs, &expected) {
                e.invalid(
                    "spec.selector",
                    Bad::Raw(go_label_selector(sel)),
                    "`selector` not auto-generated",
                );
            }
        }
    }
    validate_job_spec(e, spec, "spec");
    match sel {
        None => e.required("spec.selector", ""),
        Some(_) => validate_label_selector(e, sel, "spec.selector"),
    }
    if let Some(Ok(reqs)) = selector_requirements(sel) {
        let labels = spec.and_then(|s| s.pointer("/template/metadata/labels"));
        if !requirements_match(&reqs, &string_map(labels)) {
            e.invalid(
                "spec.template.metadata.labels",
                Bad::Raw(go_string_map(labels)),
                "`selector` does not match template `labels`",
            );
        }
    }
    if let Some(old) = old {
        let os = old.get("spec");
        let indexed = spec.map(|s| str_at(s, "completionMode")) == Some("Indexed");
        let field =
            |s: Option<&Value>, k: &str| s.and_then(|s| s.get(k)).filter(|v| !v.is_null()).cloned();
        if !indexed {
            let (o, n) = (field(os, "completions"), field(spec, "completions"));
            e.immutable("spec.completions", bad_json(n.as_ref()), o != n);
        }
        let (o, n) = (field(os, "selector"), field(spec, "selector"));
        let changed = !json_semantic_eq(
            o.as_ref().unwrap_or(&Value::Null),
            n.as_ref().unwrap_or(&Value::Null),
        );
        e.immutable(
            "spec.selector",
            Bad::Raw(go_label_selector(n.as_ref())),
            changed,
        );
        let (o, n) = (field(os, "template"), field(spec, "template"));
        let changed = !json_semantic_eq(
            o.as_ref().unwrap_or(&Value::Null),
            n.as_ref().unwrap_or(&Value::Null),
        );
        let rendered = format!(
            "core.PodTemplateSpec{}",
            n.as_ref().map_or("{}".to_string(), Value::to_string)
        );
        e.immutable("spec.template", Bad::Raw(rendered), changed);
        for key in [
            "completionMode",
            "podFailurePolicy",
            "backoffLimitPerIndex",
            "managedBy",
            "successPolicy",
        ] {
            let (o, n) = (field(os, key), field(spec, key));
            let changed = !json_semantic_eq(
                o.as_ref().unwrap_or(&Value::Null),
                n.as_ref().unwrap_or(&Value::Null),
            );
            e.immutable(&format!("spec.{key}"), bad_json(n.as_ref()), changed);
        }
    }
}

/// Upstream `validateJobSpec` (shared by Jobs and CronJob job templates).
fn validate_job_spec(e: &mut Errs, spec: Option<&Value>, path: &str) {
    let get = |k: &str| spec.and_then(|s| s.get(k)).filter(|v| !v.is_null());
    for key in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        e.nonnegative(&format!("{path}.{key}"), get(key));
    }
    if get("maxFailedIndexes").is_some() && get("backoffLimitPerIndex").is_none() {
        e.required(
            &format!("{path}.backoffLimitPerIndex"),
            "when maxFailedIndexes is specified",
        );
    }
    let mode = get("completionMode").and_then(Value::as_str);
    if let Some(mode) = mode {
        if mode != "NonIndexed" && mode != "Indexed" {
            e.not_supported(
                &format!("{path}.completionMode"),
                bad_str(mode),
                &["NonIndexed", "Indexed"],
            );
        }
        if mode == "Indexed" && get("completions").is_none() {
            e.required(
                &format!("{path}.completions"),
                "when completion mode is Indexed",
            );
        }
    }
    if mode.is_none_or(|m| m == "NonIndexed") {
        for key in ["backoffLimitPerIndex", "maxFailedIndexes"] {
            if let Some(v) = get(key) {
                e.invalid(
                    &format!("{path}.{key}"),
                    bad_json(Some(v)),
                    "requires indexed completion mode",
                );
            }
        }
    }
    if let Some(p) = get("podReplacementPolicy").and_then(Value::as_str) {
        let rp = format!("{path}.podReplacementPolicy");
        if get("podFailurePolicy").is_some() {
            if p != "Failed" {
                e.not_supported(&rp, bad_str(p), &["Failed"]);
            }
        } else if p != "Failed" && p != "TerminatingOrFailed" {
            e.not_supported(&rp, bad_str(p), &["Failed", "TerminatingOrFailed"]);
        }
    }
    let template = get("template");
    validate_pod_template(e, template, &format!("{path}.template"));
    let rp = template
        .map(|t| str_at_path(t, "/spec/restartPolicy"))
        .unwrap_or_default();
    let rpp = format!("{path}.template.spec.restartPolicy");
    if rp == "Always" || rp.is_empty() {
        e.required(&rpp, "valid values: \"OnFailure\", \"Never\"");
    } else if rp != "OnFailure" && rp != "Never" {
        e.not_supported(&rpp, bad_str(rp), &["OnFailure", "Never"]);
    } else if get("podFailurePolicy").is_some() && rp != "Never" {
        e.invalid(
            &rpp,
            bad_str(rp),
            "only \"Never\" is supported when podFailurePolicy is specified",
        );
    }
}

fn validate_cron_job(e: &mut Errs, obj: &Value, is_update: bool) {
    let spec = obj.get("spec");
    let get = |k: &str| spec.and_then(|s| s.get(k)).filter(|v| !v.is_null());
    let schedule = get("schedule").and_then(Value::as_str).unwrap_or_default();
    if schedule.is_empty() {
        e.required("spec.schedule", "");
    } else {
        if let Err(msg) = parse_cron(schedule) {
            e.invalid("spec.schedule", bad_str(schedule), &msg);
        }
        if schedule.contains("TZ") {
            e.invalid(
                "spec.schedule",
                bad_str(schedule),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            );
        }
    }
    e.nonnegative(
        "spec.startingDeadlineSeconds",
        get("startingDeadlineSeconds"),
    );
    if let Some(tz) = get("timeZone").and_then(Value::as_str) {
        let ok_part = |p: &str| {
            p != "."
                && p != ".."
                && !p.starts_with('-')
                && (1..=14).contains(&p.len())
                && p.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'+'))
        };
        if tz.is_empty() {
            e.invalid(
                "spec.timeZone",
                bad_str(tz),
                "timeZone must be nil or non-empty string",
            );
        } else if !tz.split('/').all(ok_part) {
            e.invalid(
                "spec.timeZone",
                bad_str(tz),
                &format!("unknown time zone {tz}"),
            );
        } else if tz.eq_ignore_ascii_case("Local") {
            e.invalid(
                "spec.timeZone",
                bad_str(tz),
                "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
            );
        }
    }
    match get("concurrencyPolicy")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "Allow" | "Forbid" | "Replace" => {}
        "" => e.required("spec.concurrencyPolicy", ""),
        other => e.not_supported(
            "spec.concurrencyPolicy",
            bad_str(other),
            &["Allow", "Forbid", "Replace"],
        ),
    }
    let jt_spec = get("jobTemplate").and_then(|j| j.get("spec"));
    validate_job_spec(e, jt_spec, "spec.jobTemplate.spec");
    if let Some(sel) = jt_spec
        .and_then(|s| s.get("selector"))
        .filter(|v| !v.is_null())
    {
        e.invalid(
            "spec.jobTemplate.spec.selector",
            Bad::Raw(go_label_selector(Some(sel))),
            "`selector` will be auto-generated",
        );
    }
    if jt_spec
        .and_then(|s| s.get("manualSelector"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        e.not_supported(
            "spec.jobTemplate.spec.manualSelector",
            Bad::Raw("true".into()),
            &["nil", "false"],
        );
    }
    e.nonnegative(
        "spec.successfulJobsHistoryLimit",
        get("successfulJobsHistoryLimit"),
    );
    e.nonnegative("spec.failedJobsHistoryLimit", get("failedJobsHistoryLimit"));
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !is_update && name.len() > 52 {
        e.invalid(
            "metadata.name",
            bad_str(name),
            "must be no more than 52 characters",
        );
    }
}

/// The `robfig/cron` standard parser's checks (5 fields or a descriptor), with its messages.
pub fn parse_cron(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec.to_string();
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        spec = spec
            .split_once(' ')
            .map(|(_, rest)| rest.trim().to_string())
            .unwrap_or_default();
    }
    if let Some(desc) = spec.strip_prefix('@') {
        return match desc {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            d if d.starts_with("every ") => {
                let dur = &spec["@every ".len()..];
                if parse_go_duration(dur) {
                    Ok(())
                } else {
                    Err(format!(
                        "failed to parse duration {spec}: time: invalid duration {}",
                        go_quote(dur)
                    ))
                }
            }
            _ => Err(format!("unrecognized descriptor: {spec}")),
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [CronBounds; 5] = [
        (0, 59, None),
        (0, 23, None),
        (1, 31, None),
        (1, 12, Some((MONTHS, 1))),
        (0, 6, Some((DAYS, 0))),
    ];
    for (field, (min, max, names)) in fields.iter().zip(bounds) {
        for expr in field.split(',') {
            cron_range(expr, min, max, names)?;
        }
    }
    Ok(())
}

/// A cron field's minimum, maximum and optional names (with the value of the first name).
type CronBounds = (i64, i64, Option<(&'static [&'static str], i64)>);

fn cron_int(expr: &str) -> Result<i64, String> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: invalid syntax",
            go_quote(expr)
        ));
    }
    let n: i64 = expr.parse().map_err(|_| {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: value out of range",
            go_quote(expr)
        )
    })?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    Ok(n)
}

fn cron_int_or_name(expr: &str, names: Option<(&[&str], i64)>) -> Result<i64, String> {
    if let Some((names, base)) = names {
        let lower = expr.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            return Ok(i as i64 + base);
        }
    }
    cron_int(expr)
}

fn cron_range(expr: &str, min: i64, max: i64, names: Option<(&[&str], i64)>) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let (start, mut end);
    if low_high[0] == "*" || low_high[0] == "?" {
        start = min;
        end = max;
    } else {
        start = cron_int_or_name(low_high[0], names)?;
        end = match low_high.len() {
            1 => start,
            2 => cron_int_or_name(low_high[1], names)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let s = cron_int(range_and_step[1])?;
            if low_high.len() == 1 {
                end = max;
            }
            s
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {expr}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

/// Go's `time.ParseDuration` grammar: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with known units.
fn parse_go_duration(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    if s.is_empty() {
        return false;
    }
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 || rest[..num_len] == *"." {
            return false;
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        if !matches!(
            &rest[..unit_len],
            "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h"
        ) {
            return false;
        }
        rest = &rest[unit_len..];
    }
    true
}

// ---------------------------------------------------------------------------------------
// Services

fn go_service_port_key(protocol: &str, port: i64) -> String {
    format!(
        "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
        go_quote(protocol)
    )
}

fn cluster_ips(spec: Option<&Value>) -> Vec<String> {
    let ips: Vec<String> = arr(spec.and_then(|s| s.get("clusterIPs")))
        .iter()
        .map(scalar_string)
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    let ip = spec.map(|s| str_at(s, "clusterIP")).unwrap_or_default();
    if ip.is_empty() {
        Vec::new()
    } else {
        vec![ip.to_string()]
    }
}

fn validate_service(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec");
    let get = |k: &str| spec.and_then(|s| s.get(k)).filter(|v| !v.is_null());
    let ty = get("type").and_then(Value::as_str).unwrap_or_default();
    let ips = cluster_ips(spec);
    let headless = ips.first().is_some_and(|ip| ip == "None");
    let ports = arr(get("ports"));
    if ports.is_empty() && !headless && ty != "ExternalName" {
        e.required("spec.ports", "");
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => e.invalid(
            "spec.clusterIPs[0]",
            bad_str("None"),
            &format!("may not be set to 'None' for {ty} services"),
        ),
        "ExternalName" => {
            if !ips.is_empty() {
                e.forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                );
            }
            if !arr(get("ipFamilies")).is_empty() {
                e.forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                );
            }
            if get("ipFamilyPolicy").is_some() {
                e.forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                );
            }
            let name = get("externalName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                e.required("spec.externalName", "");
            } else {
                for m in is_dns1123_subdomain(cname) {
                    e.invalid("spec.externalName", bad_str(cname), &m);
                }
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = format!("spec.ports[{i}]");
        let name = str_at(p, "name");
        if ports.len() > 1 && name.is_empty() {
            e.required(&format!("{pp}.name"), "");
        } else if !name.is_empty() {
            for m in is_dns1123_label(name) {
                e.invalid(&format!("{pp}.name"), bad_str(name), &m);
            }
            if !names.insert(name.to_string()) {
                e.duplicate(&format!("{pp}.name"), bad_str(name));
            }
        }
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        for m in is_valid_port_num(port) {
            e.invalid(&format!("{pp}.port"), Bad::Int(port), &m);
        }
        validate_protocol(e, p, &format!("{pp}.protocol"));
        validate_port_num_or_name(e, p.get("targetPort"), &format!("{pp}.targetPort"));
        if let Some(ap) = p.get("appProtocol").and_then(Value::as_str) {
            for m in is_qualified_name(ap) {
                e.invalid(&format!("{pp}.appProtocol"), bad_str(ap), &m);
            }
        }
    }
    validate_labels(e, get("selector"), "spec.selector");
    match get("sessionAffinity")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "" => e.required("spec.sessionAffinity", ""),
        "ClientIP" => {
            let t =
                get("sessionAffinityConfig").and_then(|c| c.pointer("/clientIP/timeoutSeconds"));
            match t.and_then(Value::as_i64) {
                None => e.required(
                    "spec.sessionAffinityConfig",
                    "when session affinity type is ClientIP",
                ),
                Some(t) if t <= 0 || t > 86400 => e.invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    Bad::Int(t),
                    "must be greater than 0 and less than 86400",
                ),
                _ => {}
            }
        }
        "None" => {
            if get("sessionAffinityConfig").is_some() {
                e.forbidden(
                    "spec.sessionAffinityConfig",
                    "must not be set when session affinity is None",
                );
            }
        }
        other => e.not_supported(
            "spec.sessionAffinity",
            bad_str(other),
            &["ClientIP", "None"],
        ),
    }
    if ty != "ExternalName" {
        if let Some(ip) = ips.first() {
            if ip != "None" && !is_valid_ip(ip) {
                e.invalid(
                    "spec.clusterIPs[0]",
                    bad_str(ip),
                    "must be empty, 'None', or a valid IP address",
                );
            }
        }
        if let Some(p) = get("ipFamilyPolicy").and_then(Value::as_str) {
            if !matches!(p, "SingleStack" | "PreferDualStack" | "RequireDualStack") {
                e.not_supported(
                    "spec.ipFamilyPolicy",
                    bad_str(p),
                    &["PreferDualStack", "RequireDualStack", "SingleStack"],
                );
            }
        }
        for (i, f) in arr(get("ipFamilies")).iter().enumerate() {
            let f = scalar_string(f);
            if f != "IPv4" && f != "IPv6" {
                e.not_supported(
                    &format!("spec.ipFamilies[{i}]"),
                    Bad::Str(f),
                    &["IPv4", "IPv6"],
                );
            }
        }
    }
    for (i, ip) in arr(get("externalIPs")).iter().enumerate() {
        let ip = scalar_string(ip);
        if !is_valid_ip(&ip) {
            e.invalid(
                &format!("spec.externalIPs[{i}]"),
                Bad::Str(ip),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            );
        }
    }
    match ty {
        "" => e.required("spec.type", ""),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" => {}
        other => e.not_supported(
            "spec.type",
            bad_str(other),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ),
    }
    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                e.forbidden(
                    &format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                );
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let np = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
        if np != 0 && !node_ports.insert((str_at(p, "protocol").to_string(), np)) {
            e.duplicate(&format!("spec.ports[{i}].nodePort"), Bad::Int(np));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let proto = str_at(p, "protocol").to_string();
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !seen.insert((proto.clone(), port)) {
            e.duplicate(
                &format!("spec.ports[{i}]"),
                Bad::Raw(go_service_port_key(&proto, port)),
            );
        }
    }
    let ranges = arr(get("loadBalancerSourceRanges"));
    if !ranges.is_empty() {
        if ty != "LoadBalancer" {
            e.forbidden(
                "spec.LoadBalancerSourceRanges",
                "may only be used when `type` is 'LoadBalancer'",
            );
        }
        for (i, r) in ranges.iter().enumerate() {
            let r = scalar_string(r).trim().to_string();
            if !is_valid_cidr(&r) {
                e.invalid(
                    &format!("spec.LoadBalancerSourceRanges[{i}]"),
                    Bad::Str(r),
                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                );
            }
        }
    }
    if get("allocateLoadBalancerNodePorts").is_some() && ty != "LoadBalancer" {
        e.forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        );
    }
    if ty == "LoadBalancer" && get("allocateLoadBalancerNodePorts").is_none() {
        e.required("allocateLoadBalancerNodePorts", "");
    }
    let etp = get("externalTrafficPolicy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let externally = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && !arr(get("externalIPs")).is_empty());
    if !externally {
        if !etp.is_empty() {
            e.invalid(
                "spec.externalTrafficPolicy",
                bad_str(etp),
                "may only be set for externally-accessible services",
            );
        }
    } else if etp.is_empty() {
        e.required("spec.externalTrafficPolicy", "");
    } else if etp != "Cluster" && etp != "Local" {
        e.not_supported(
            "spec.externalTrafficPolicy",
            bad_str(etp),
            &["Cluster", "Local"],
        );
    }
    let hc = get("healthCheckNodePort")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let needs_hc = ty == "LoadBalancer" && etp == "Local";
    if !needs_hc && hc != 0 {
        e.invalid(
            "spec.healthCheckNodePort",
            Bad::Int(hc),
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        );
    }
    match get("internalTrafficPolicy").and_then(Value::as_str) {
        None if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            e.required("spec.internalTrafficPolicy", "")
        }
        Some(p) if p != "Cluster" && p != "Local" => e.not_supported(
            "spec.internalTrafficPolicy",
            bad_str(p),
            &["Cluster", "Local"],
        ),
        _ => {}
    }
    if let Some(old) = old {
        let os = old.get("spec");
        let old_ty = os.map(|s| str_at(s, "type")).unwrap_or_default();
        let old_ips = cluster_ips(os);
        let old_headless = old_ips.first().is_some_and(|ip| ip == "None");
        let new_ips = ips.clone();
        if ty != "ExternalName"
            && old_ty != "ExternalName"
            && !(old_headless && headless)
            && !new_ips.is_empty()
        {
            let changed = if old_ips.len() == new_ips.len() {
                old_ips != new_ips
            } else {
                old_ips.first().is_some_and(|o| new_ips.first() != Some(o))
            };
            if changed {
                let list: Vec<Value> = new_ips.into_iter().map(Value::String).collect();
                e.invalid(
                    "spec.clusterIPs[0]",
                    Bad::Raw(go_string_slice(Some(&Value::Array(list)))),
                    "may not change once set",
                );
            }
        }
        let of = arr(os.and_then(|s| s.get("ipFamilies")));
        let nf = arr(get("ipFamilies"));
        if ty != "ExternalName"
            && old_ty != "ExternalName"
            && !of.is_empty()
            && !nf.is_empty()
            && of[0] != nf[0]
        {
            let rendered: Vec<String> = nf.iter().map(|f| go_quote(&scalar_string(f))).collect();
            e.invalid(
                "spec.ipFamilies[0]",
                Bad::Raw(format!("[]core.IPFamily{{{}}}", rendered.join(", "))),
                "may not change once set",
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Config, storage and the rest of core

const MAX_SECRET_SIZE: usize = 1024 * 1024;

fn base64_decoded_len(s: &str) -> usize {
    let trimmed = s.trim_end_matches('=');
    trimmed.len() * 3 / 4
}

fn validate_immutable_data(e: &mut Errs, obj: &Value, old: &Value, keys: &[&str]) {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
        e.forbidden("immutable", "field is immutable when `immutable` is set");
    }
    for key in keys {
        let (o, n) = (old.get(*key), obj.get(*key));
        let norm = |v: Option<&Value>| {
            v.filter(|v| v.as_object().is_some_and(|m| !m.is_empty()))
                .cloned()
        };
        if norm(o) != norm(n) {
            e.forbidden(key, "field is immutable when `immutable` is set");
        }
    }
}

fn validate_config_map(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    if let Some(old) = old {
        validate_immutable_data(e, obj, old, &["data", "binaryData"]);
    }
    let binary = obj.get("binaryData").and_then(Value::as_object);
    let mut total = 0;
    for (k, v) in sorted_map(obj.get("data")) {
        let p = format!("data[{k}]");
        for m in is_config_map_key(k) {
            e.invalid(&p, bad_str(k), &m);
        }
        if binary.is_some_and(|b| b.contains_key(k)) {
            e.invalid(&p, bad_str(k), "duplicate of key present in binaryData");
        }
        total += scalar_string(v).len();
    }
    for (k, v) in sorted_map(obj.get("binaryData")) {
        for m in is_config_map_key(k) {
            e.invalid(&format!("binaryData[{k}]"), bad_str(k), &m);
        }
        total += base64_decoded_len(&scalar_string(v));
    }
    if total > MAX_SECRET_SIZE {
        e.too_long("[]", MAX_SECRET_SIZE);
    }
}

fn validate_secret(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    if let Some(old) = old {
        let (o, n) = (str_at(old, "type"), str_at(obj, "type"));
        e.immutable("type", bad_str(n), o != n);
        validate_immutable_data(e, obj, old, &["data"]);
    }
    let data = obj.get("data");
    let mut total = 0;
    for (k, v) in sorted_map(data) {
        for m in is_config_map_key(k) {
            e.invalid(&format!("data[{k}]"), bad_str(k), &m);
        }
        total += base64_decoded_len(&scalar_string(v));
    }
    if total > MAX_SECRET_SIZE {
        e.too_long("data", MAX_SECRET_SIZE);
    }
    let has = |k: &str| data.and_then(|d| d.get(k)).is_some();
    match str_at(obj, "type") {
        "kubernetes.io/service-account-token" => {
            let sa = obj
                .pointer("/metadata/annotations")
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if sa.is_empty() {
                e.required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                );
            }
        }
        "kubernetes.io/dockercfg" if !has(".dockercfg") => e.required("data[.dockercfg]", ""),
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            e.required("data[.dockerconfigjson]", "")
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            e.required("data[username]", "");
            e.required("data[password]", "");
        }
        "kubernetes.io/ssh-auth" => {
            let empty = data
                .and_then(|d| d.get("ssh-privatekey"))
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if empty {
                e.required("data[ssh-privatekey]", "");
            }
        }
        "kubernetes.io/tls" => {
            if !has("tls.crt") {
                e.required("data[tls.crt]", "");
            }
            if !has("tls.key") {
                e.required("data[tls.key]", "");
            }
        }
        _ => {}
    }
}

fn validate_endpoints(e: &mut Errs, obj: &Value) {
    for (i, s) in arr(obj.get("subsets")).iter().enumerate() {
        let sp = format!("subsets[{i}]");
        let addrs = arr(s.get("addresses"));
        let not_ready = arr(s.get("notReadyAddresses"));
        if addrs.is_empty() && not_ready.is_empty() {
            e.required(&sp, "must specify `addresses` or `notReadyAddresses`");
        }
        for (key, list) in [("addresses", addrs), ("notReadyAddresses", not_ready)] {
            for (j, a) in list.iter().enumerate() {
                let ap = format!("{sp}.{key}[{j}]");
                let ip = str_at(a, "ip");
                if !is_valid_ip(ip) {
                    e.invalid(
                        &format!("{ap}.ip"),
                        bad_str(ip),
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    );
                }
                let host = str_at(a, "hostname");
                if !host.is_empty() {
                    for m in is_dns1123_label(host) {
                        e.invalid(&format!("{ap}.hostname"), bad_str(host), &m);
                    }
                }
            }
        }
        let ports = arr(s.get("ports"));
        for (j, p) in ports.iter().enumerate() {
            let pp = format!("{sp}.ports[{j}]");
            let name = str_at(p, "name");
            if ports.len() > 1 && name.is_empty() {
                e.required(&format!("{pp}.name"), "");
            } else if !name.is_empty() {
                for m in is_dns1123_label(name) {
                    e.invalid(&format!("{pp}.name"), bad_str(name), &m);
                }
            }
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            for m in is_valid_port_num(port) {
                e.invalid(&format!("{pp}.port"), Bad::Int(port), &m);
            }
            validate_protocol(e, p, &format!("{pp}.protocol"));
        }
    }
}

fn validate_node(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let mut seen = BTreeSet::new();
    for (i, t) in arr(obj.pointer("/spec/taints")).iter().enumerate() {
        // Upstream reports taints under metadata.taints (a long-standing path quirk).
        let tp = format!("metadata.taints[{i}]");
        let key = str_at(t, "key");
        for m in validate_label_key(key) {
            e.invalid(&format!("{tp}.key"), bad_str(key), &m);
        }
        let value = str_at(t, "value");
        let errs = validate_label_value(value);
        if !errs.is_empty() {
            e.invalid(&format!("{tp}.value"), bad_str(value), &errs.join(";"));
        }
        let effect = str_at(t, "effect");
        match effect {
            "" => e.required(&format!("{tp}.effect"), ""),
            "NoSchedule" | "PreferNoSchedule" | "NoExecute" => {}
            other => e.not_supported(
                &format!("{tp}.effect"),
                bad_str(other),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ),
        }
        if !seen.insert((effect.to_string(), key.to_string())) {
            let rendered = format!(
                "core.Taint{{Key:{}, Value:{}, Effect:{}, TimeAdded:<nil>}}",
                go_quote(key),
                go_quote(value),
                go_quote(effect)
            );
            e.push(
                "FieldValueDuplicate",
                &tp,
                format!(
                    "Duplicate value: {rendered}: taints must be unique by key and effect pair"
                ),
            );
        }
    }
    for (i, c) in arr(obj.pointer("/spec/podCIDRs")).iter().enumerate() {
        let c = scalar_string(c);
        if !is_valid_cidr(&c) {
            e.invalid(
                &format!("spec.podCIDRs[{i}]"),
                Bad::Str(c),
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            );
        }
    }
    if let Some(old) = old {
        let o = arr(old.pointer("/spec/podCIDRs"));
        if !o.is_empty() && o != arr(obj.pointer("/spec/podCIDRs")) {
            e.forbidden(
                "spec.podCIDRs",
                "node updates may not change podCIDR except from \"\" to valid",
            );
        }
        let op = str_at_path(old, "/spec/providerID");
        if !op.is_empty() && op != str_at_path(obj, "/spec/providerID") {
            e.forbidden(
                "spec.providerID",
                "node updates may not change providerID except from \"\" to valid",
            );
        }
    }
}

fn validate_pvc(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec");
    let modes = arr(spec.and_then(|s| s.get("accessModes")));
    if modes.is_empty() {
        e.required("spec.accessModes", "at least 1 access mode is required");
    }
    validate_label_selector(e, spec.and_then(|s| s.get("selector")), "spec.selector");
    let (mut rwop, mut other) = (false, false);
    for m in modes {
        let m = scalar_string(m);
        match m.as_str() {
            "ReadWriteOncePod" => rwop = true,
            "ReadOnlyMany" | "ReadWriteMany" | "ReadWriteOnce" => other = true,
            _ => e.not_supported(
                "spec.accessModes",
                Bad::Str(m.clone()),
                &[
                    "ReadOnlyMany",
                    "ReadWriteMany",
                    "ReadWriteOnce",
                    "ReadWriteOncePod",
                ],
            ),
        }
    }
    if rwop && other {
        e.forbidden(
            "spec.accessModes",
            "may not use ReadWriteOncePod with other access modes",
        );
    }
    let storage = spec.and_then(|s| s.pointer("/resources/requests/storage"));
    match storage {
        None => e.required("spec.resources[storage]", ""),
        Some(q) => {
            let s = scalar_string(q);
            match parse_quantity(&s) {
                None => e.invalid("spec.resources[storage]", Bad::Str(s), QUANTITY_MSG),
                Some(v) if v <= 0.0 => e.invalid(
                    "spec.resources[storage]",
                    Bad::Str(s),
                    "must be greater than zero",
                ),
                _ => {}
            }
        }
    }
    if let Some(sc) = spec
        .and_then(|s| s.get("storageClassName"))
        .and_then(Value::as_str)
    {
        if !sc.is_empty() {
            for m in is_dns1123_subdomain(sc) {
                e.invalid("spec.storageClassName", bad_str(sc), &m);
            }
        }
    }
    if let Some(vm) = spec
        .and_then(|s| s.get("volumeMode"))
        .and_then(Value::as_str)
    {
        if vm != "Block" && vm != "Filesystem" {
            e.not_supported("spec.volumeMode", bad_str(vm), &["Block", "Filesystem"]);
        }
    }
    if let Some(old) = old {
        let os = old.get("spec");
        let bound = old.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
        let strip = |s: Option<&Value>| {
            let mut s = s.cloned().unwrap_or(Value::Null);
            if let Some(m) = s.as_object_mut() {
                if bound {
                    if let Some(Value::Object(r)) = m.get_mut("resources") {
                        r.remove("requests");
                    }
                    m.remove("volumeAttributesClassName");
                }
                // The binder fills volumeName in; an empty value is not a change.
                if m.get("volumeName").is_some_and(|v| v.is_null() || v == "") {
                    m.remove("volumeName");
                }
            }
            s
        };
        let (so, mut sn) = (strip(os), strip(spec));
        // Binding: a claim without a volume may get one (upstream copies the old volumeName
        // over the new one before comparing when the old one is empty).
        if so.get("volumeName").is_none() {
            if let Some(m) = sn.as_object_mut() {
                m.remove("volumeName");
            }
        }
        if !json_semantic_eq(&so, &sn) {
            let diff = spec_diff("core.PersistentVolumeClaimSpec", &so, &sn);
            e.forbidden(
                "spec",
                &format!("spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{diff}"),
            );
        }
        let q = |s: Option<&Value>| {
            s.and_then(|s| s.pointer("/resources/requests/storage"))
                .map(scalar_string)
                .and_then(|q| parse_quantity(&q))
        };
        if let (Some(o), Some(n)) = (q(os), q(spec)) {
            if n < o {
                e.forbidden(
                    "spec.resources.requests.storage",
                    "field can not be less than previous value",
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Networking, RBAC, storage, policy, scheduling, discovery

fn validate_ingress(e: &mut Errs, spec: Option<&Value>) {
    let rules = arr(spec.and_then(|s| s.get("rules")));
    let default_backend = spec
        .and_then(|s| s.get("defaultBackend"))
        .filter(|v| !v.is_null());
    if rules.is_empty() && default_backend.is_none() {
        e.invalid(
            "spec.rules",
            Bad::Raw("[]networking.IngressRule(nil)".into()),
            "either `defaultBackend` or `rules` must be specified",
        );
    }
    if let Some(b) = default_backend {
        validate_ingress_backend(e, b, "spec.defaultBackend");
    }
    for (i, r) in rules.iter().enumerate() {
        let rp = format!("spec.rules[{i}]");
        let host = str_at(r, "host");
        if !host.is_empty() {
            if is_valid_ip(host) {
                e.invalid(
                    &format!("{rp}.host"),
                    bad_str(host),
                    "must be a DNS name, not an IP address",
                );
            }
            let h = host.strip_prefix("*.").unwrap_or(host);
            if h.contains('*') {
                e.invalid(
                    &format!("{rp}.host"),
                    bad_str(host),
                    &regex_error(
                        "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
                        &format!("\\*\\.{DNS1123_LABEL_FMT}(\\.{DNS1123_LABEL_FMT})*"),
                        &["*.example.com"],
                    ),
                );
            } else {
                for m in is_dns1123_subdomain(h) {
                    e.invalid(&format!("{rp}.host"), bad_str(host), &m);
                }
            }
        }
        let Some(http) = r.get("http").filter(|v| !v.is_null()) else {
            continue;
        };
        let paths = arr(http.get("paths"));
        if paths.is_empty() {
            e.required(&format!("{rp}.http.paths"), "");
        }
        for (j, p) in paths.iter().enumerate() {
            let pp = format!("{rp}.http.paths[{j}]");
            let path = str_at(p, "path");
            match p.get("pathType").and_then(Value::as_str) {
                None => e.required(&format!("{pp}.pathType"), "pathType must be specified"),
                Some("Exact" | "Prefix") => {
                    if !path.starts_with('/') {
                        e.invalid(
                            &format!("{pp}.path"),
                            bad_str(path),
                            "must be an absolute path",
                        );
                    }
                }
                Some("ImplementationSpecific") => {
                    if !path.is_empty() && !path.starts_with('/') {
                        e.invalid(
                            &format!("{pp}.path"),
                            bad_str(path),
                            "must be an absolute path",
                        );
                    }
                }
                Some(other) => e.not_supported(
                    &format!("{pp}.pathType"),
                    bad_str(other),
                    &["Exact", "ImplementationSpecific", "Prefix"],
                ),
            }
            match p.get("backend").filter(|v| !v.is_null()) {
                Some(b) => validate_ingress_backend(e, b, &format!("{pp}.backend")),
                None => e.invalid(
                    &format!("{pp}.backend"),
                    bad_str(""),
                    "resource or service backend is required",
                ),
            }
        }
    }
}

fn validate_ingress_backend(e: &mut Errs, b: &Value, path: &str) {
    let resource = b.get("resource").filter(|v| !v.is_null());
    let service = b.get("service").filter(|v| !v.is_null());
    match (resource, service) {
        (Some(_), Some(_)) => e.invalid(
            path,
            bad_str(""),
            "cannot set both resource and service backends",
        ),
        (Some(_), None) => {}
        (None, Some(s)) => {
            let name = str_at(s, "name");
            if name.is_empty() {
                e.required(&format!("{path}.service.name"), "");
            } else {
                for m in is_dns1035_label(name) {
                    e.invalid(&format!("{path}.service.name"), bad_str(name), &m);
                }
            }
            let pname = s
                .pointer("/port/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let pnum = s
                .pointer("/port/number")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if !pname.is_empty() && pnum != 0 {
                e.invalid(path, bad_str(""), "cannot set both port name & port number");
            } else if !pname.is_empty() {
                for m in is_valid_port_name(pname) {
                    e.invalid(&format!("{path}.service.port.name"), bad_str(pname), &m);
                }
            } else if pnum != 0 {
                for m in is_valid_port_num(pnum) {
                    e.invalid(&format!("{path}.service.port.number"), Bad::Int(pnum), &m);
                }
            } else {
                e.required(path, "port name or number is required");
            }
        }
        (None, None) => e.invalid(path, bad_str(""), "resource or service backend is required"),
    }
}

fn validate_rules(e: &mut Errs, obj: &Value, namespaced: bool) {
    for (i, r) in arr(obj.get("rules")).iter().enumerate() {
        let rp = format!("rules[{i}]");
        if arr(r.get("verbs")).is_empty() {
            e.required(
                &format!("{rp}.verbs"),
                "verbs must contain at least one value",
            );
        }
        let urls = r.get("nonResourceURLs");
        if !arr(urls).is_empty() {
            if namespaced {
                e.invalid(
                    &format!("{rp}.nonResourceURLs"),
                    Bad::Raw(go_string_slice(urls)),
                    "namespaced rules cannot apply to non-resource URLs",
                );
            }
            if !arr(r.get("apiGroups")).is_empty()
                || !arr(r.get("resources")).is_empty()
                || !arr(r.get("resourceNames")).is_empty()
            {
                e.invalid(
                    &format!("{rp}.nonResourceURLs"),
                    Bad::Raw(go_string_slice(urls)),
                    "rules cannot apply to both regular resources and non-resource URLs",
                );
            }
            continue;
        }
        if arr(r.get("apiGroups")).is_empty() {
            e.required(
                &format!("{rp}.apiGroups"),
                "resource rules must supply at least one api group",
            );
        }
        if arr(r.get("resources")).is_empty() {
            e.required(
                &format!("{rp}.resources"),
                "resource rules must supply at least one resource",
            );
        }
        if !arr(r.get("resourceNames")).is_empty() && arr(r.get("resources")).len() > 1 {
            e.required(
                &format!("{rp}.resourceNames"),
                "resource names cannot apply to multiple resources",
            );
        }
    }
}

fn go_role_ref(r: Option<&Value>) -> String {
    let g = |k: &str| go_quote(r.map(|r| str_at(r, k)).unwrap_or_default());
    format!(
        "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
        g("apiGroup"),
        g("kind"),
        g("name")
    )
}

fn validate_binding(e: &mut Errs, obj: &Value, old: Option<&Value>, namespaced: bool) {
    let rr = obj.get("roleRef");
    let get = |k: &str| rr.map(|r| str_at(r, k)).unwrap_or_default();
    let group = get("apiGroup");
    if group != "rbac.authorization.k8s.io" {
        e.not_supported(
            "roleRef.apiGroup",
            bad_str(group),
            &["rbac.authorization.k8s.io"],
        );
    }
    let kind = get("kind");
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        e.not_supported("roleRef.kind", bad_str(kind), kinds);
    }
    let name = get("name");
    if name.is_empty() {
        e.required("roleRef.name", "");
    } else {
        for m in name_errors(NameRule::PathSegment, name, false) {
            e.invalid("roleRef.name", bad_str(name), &m);
        }
    }
    for (i, s) in arr(obj.get("subjects")).iter().enumerate() {
        let sp = format!("subjects[{i}]");
        let sname = str_at(s, "name");
        if sname.is_empty() {
            e.required(&format!("{sp}.name"), "");
        }
        let api_group = str_at(s, "apiGroup");
        match str_at(s, "kind") {
            "ServiceAccount" => {
                if !sname.is_empty() {
                    for m in is_dns1123_subdomain(sname) {
                        e.invalid(&format!("{sp}.name"), bad_str(sname), &m);
                    }
                }
                if !api_group.is_empty() {
                    e.not_supported(&format!("{sp}.apiGroup"), bad_str(api_group), &[""]);
                }
                if !namespaced && str_at(s, "namespace").is_empty() {
                    e.required(&format!("{sp}.namespace"), "");
                }
            }
            k @ ("User" | "Group") => {
                if sname.is_empty() {
                    let what = if k == "User" { "user" } else { "group" };
                    e.invalid(
                        &format!("{sp}.name"),
                        bad_str(""),
                        &format!("{what} name cannot be empty"),
                    );
                }
                if api_group != "rbac.authorization.k8s.io" {
                    e.not_supported(
                        &format!("{sp}.apiGroup"),
                        bad_str(api_group),
                        &["rbac.authorization.k8s.io"],
                    );
                }
            }
            other => e.not_supported(
                &format!("{sp}.kind"),
                bad_str(other),
                &["ServiceAccount", "User", "Group"],
            ),
        }
    }
    if let Some(old) = old {
        let norm = |r: Option<&Value>| {
            ["apiGroup", "kind", "name"]
                .map(|k| r.map(|r| str_at(r, k).to_string()).unwrap_or_default())
        };
        if norm(old.get("roleRef")) != norm(rr) {
            e.invalid(
                "roleRef",
                Bad::Raw(go_role_ref(rr)),
                "cannot change roleRef",
            );
        }
    }
}

fn validate_storage_class(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let prov = str_at(obj, "provisioner");
    if prov.is_empty() {
        e.required("provisioner", "");
    } else {
        for m in is_qualified_name(&prov.to_lowercase()) {
            e.invalid("provisioner", bad_str(prov), &m);
        }
    }
    if let Some(rp) = obj.get("reclaimPolicy").and_then(Value::as_str) {
        if rp != "Delete" && rp != "Retain" {
            e.not_supported("reclaimPolicy", bad_str(rp), &["Delete", "Retain"]);
        }
    }
    if let Some(m) = obj.get("volumeBindingMode").and_then(Value::as_str) {
        if m != "Immediate" && m != "WaitForFirstConsumer" {
            e.not_supported(
                "volumeBindingMode",
                bad_str(m),
                &["Immediate", "WaitForFirstConsumer"],
            );
        }
    }
    if let Some(old) = old {
        let changed = |k: &str| {
            !json_semantic_eq(
                old.get(k).unwrap_or(&Value::Null),
                obj.get(k).unwrap_or(&Value::Null),
            )
        };
        if changed("parameters") {
            e.forbidden("parameters", "updates to parameters are forbidden.");
        }
        if changed("provisioner") {
            e.forbidden("provisioner", "updates to provisioner are forbidden.");
        }
        if changed("reclaimPolicy") {
            e.forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden.");
        }
        e.immutable(
            "volumeBindingMode",
            bad_json(obj.get("volumeBindingMode")),
            changed("volumeBindingMode"),
        );
    }
}

fn validate_pdb(e: &mut Errs, spec: Option<&Value>) {
    let get = |k: &str| spec.and_then(|s| s.get(k)).filter(|v| !v.is_null());
    let (min, max) = (get("minAvailable"), get("maxUnavailable"));
    if min.is_some() && max.is_some() {
        e.invalid(
            "spec",
            Bad::Raw(spec.map_or("null".into(), Value::to_string)),
            "minAvailable and maxUnavailable cannot be both set",
        );
    }
    for (key, v) in [("minAvailable", min), ("maxUnavailable", max)] {
        if v.is_some() {
            let p = format!("spec.{key}");
            validate_positive_int_or_percent(e, v, &p);
            not_more_than_100_percent(e, v, &p);
        }
    }
    validate_label_selector(e, get("selector"), "spec.selector");
    if let Some(p) = get("unhealthyPodEvictionPolicy").and_then(Value::as_str) {
        if p != "IfHealthyBudget" && p != "AlwaysAllow" {
            e.not_supported(
                "spec.unhealthyPodEvictionPolicy",
                bad_str(p),
                &["AlwaysAllow", "IfHealthyBudget"],
            );
        }
    }
}

fn validate_priority_class(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let value = obj.get("value").and_then(Value::as_i64).unwrap_or(0);
    let known = [
        ("system-node-critical", 2_000_001_000),
        ("system-cluster-critical", 2_000_000_000),
    ];
    if name.starts_with("system-") {
        if !known.iter().any(|(n, v)| *n == name && *v == value) {
            e.forbidden(
                "metadata.name",
                &format!("priority class names with 'system-' prefix are reserved for system use only. error: {name} is not a known system priority class"),
            );
        }
    } else if value > 1_000_000_000 {
        e.forbidden(
            "value",
            "maximum allowed value of a user defined priority is 1000000000",
        );
    }
    if let Some(p) = obj.get("preemptionPolicy").and_then(Value::as_str) {
        match p {
            "PreemptLowerPriority" | "Never" => {}
            "" => e.required("preemptionPolicy", ""),
            other => e.not_supported(
                "preemptionPolicy",
                bad_str(other),
                &["PreemptLowerPriority", "Never"],
            ),
        }
    }
    if let Some(old) = old {
        if old.get("value").and_then(Value::as_i64).unwrap_or(0) != value {
            e.forbidden("value", "may not be changed in an update.");
        }
        let (o, n) = (old.get("preemptionPolicy"), obj.get("preemptionPolicy"));
        e.immutable("preemptionPolicy", bad_json(n), o != n);
    }
}

fn validate_endpoint_slice(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let at = str_at(obj, "addressType");
    match at {
        "" => e.required("addressType", ""),
        "IPv4" | "IPv6" | "FQDN" => {}
        other => e.not_supported("addressType", bad_str(other), &["FQDN", "IPv4", "IPv6"]),
    }
    for (i, ep) in arr(obj.get("endpoints")).iter().enumerate() {
        let p = format!("endpoints[{i}].addresses");
        let addrs = arr(ep.get("addresses"));
        if addrs.is_empty() {
            e.required(&p, "must contain at least 1 address");
        } else if addrs.len() > 100 {
            e.push(
                "FieldValueTooMany",
                &p,
                format!("Too many: {}: must have at most 100 items", addrs.len()),
            );
        }
        for (j, a) in addrs.iter().enumerate() {
            let a = scalar_string(a);
            let ok = match at {
                "IPv4" => a.parse::<std::net::Ipv4Addr>().is_ok(),
                "IPv6" => a.parse::<std::net::Ipv6Addr>().is_ok(),
                _ => is_dns1123_subdomain(&a).is_empty(),
            };
            if !ok {
                let detail = match at {
                    "IPv4" => "must be a valid IPv4 address",
                    "IPv6" => "must be a valid IPv6 address",
                    _ => "must be a valid DNS subdomain",
                };
                e.invalid(&format!("{p}[{j}]"), Bad::Str(a), detail);
            }
        }
    }
    for (i, port) in arr(obj.get("ports")).iter().enumerate() {
        let pp = format!("ports[{i}]");
        if let Some(n) = port.get("port").and_then(Value::as_i64) {
            for m in is_valid_port_num(n) {
                e.invalid(&format!("{pp}.port"), Bad::Int(n), &m);
            }
        }
        if port.get("protocol").is_some() {
            validate_protocol(e, port, &format!("{pp}.protocol"));
        }
    }
    if let Some(old) = old {
        let o = str_at(old, "addressType");
        e.immutable("addressType", bad_str(at), o != at);
    }
}

/// Reports a value of the wrong JSON type the way upstream's schema check does (exposed for
/// the server's decoding step).
pub fn type_invalid(field: &str, value: &Value, detail: &str) -> FieldCause {
    let mut e = Errs::default();
    e.type_invalid(field, bad_json(Some(value)), detail);
    e.0.pop().unwrap_or_else(|| FieldCause {
        reason: "FieldValueTypeInvalid".into(),
        message: String::new(),
        field: field.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::{apply_defaults, job_selector_and_labels};
    use crate::registry::find_kind;
    use serde_json::json;

    fn res(api_version: &str, kind: &str) -> &'static ResourceInfo {
        find_kind(api_version, kind).unwrap()
    }

    fn defaulted(api_version: &str, kind: &str, mut obj: Value) -> Value {
        apply_defaults(res(api_version, kind), &mut obj);
        obj
    }

    /// Defaults then validates; returns `field: message` strings.
    fn create(api_version: &str, kind: &str, obj: Value) -> Vec<String> {
        let obj = defaulted(api_version, kind, obj);
        validate_create(res(api_version, kind), &obj)
            .iter()
            .map(FieldCause::error_string)
            .collect()
    }

    fn update(api_version: &str, kind: &str, old: Value, new: Value) -> Vec<String> {
        let old = defaulted(api_version, kind, old);
        let new = defaulted(api_version, kind, new);
        validate_update(res(api_version, kind), &old, &new)
            .iter()
            .map(FieldCause::error_string)
            .collect()
    }

    fn meta(name: &str) -> Value {
        json!({"name": name, "namespace": "default"})
    }

    fn pod_spec() -> Value {
        json!({"containers": [{"name": "web", "image": "nginx"}]})
    }

    fn deployment(sel: Value, labels: Value) -> Value {
        json!({"metadata": meta("web"), "spec": {"selector": sel,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec()}}})
    }

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

    #[test]
    fn format_checks_match_upstream_messages() {
        assert!(is_dns1123_subdomain("web.example.com").is_empty());
        assert_eq!(is_dns1123_subdomain("Foo"), vec![SUBDOMAIN_MSG.to_string()]);
        assert_eq!(
            is_dns1123_subdomain(&"a".repeat(254)),
            vec!["must be no more than 253 characters".to_string()]
        );
        assert_eq!(
            is_dns1123_label("a.b"),
            vec!["must not contain dots".to_string()]
        );
        assert_eq!(is_dns1123_label("-a"), vec![LABEL_MSG.to_string()]);
        assert_eq!(
            is_dns1035_label("1abc"),
            vec!["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string()]
        );
        assert!(validate_label_key("app.kubernetes.io/name").is_empty());
        assert_eq!(
            validate_label_key("/x"),
            vec!["prefix part must be non-empty".to_string()]
        );
        assert_eq!(
            validate_label_key("a/b/c"),
            vec!["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string()]
        );
        assert_eq!(
            validate_label_key("-bad"),
            vec!["name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_string()]
        );
        assert!(validate_label_value("").is_empty());
        assert_eq!(
            validate_label_value("x y"),
            vec!["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string()]
        );
        assert_eq!(
            validate_label_value(&"a".repeat(64))[0],
            "must be no more than 63 characters"
        );
        assert_eq!(
            is_config_map_key("a b"),
            vec!["a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string()]
        );
        assert_eq!(
            is_config_map_key(".."),
            vec!["must not be '..'".to_string()]
        );
    }

    #[test]
    fn quantities_parse() {
        assert_eq!(parse_quantity("100m"), Some(0.1));
        assert_eq!(parse_quantity("1Gi"), Some(1073741824.0));
        assert_eq!(parse_quantity("2e3"), Some(2000.0));
        assert_eq!(parse_quantity("1.5"), Some(1.5));
        assert_eq!(parse_quantity("abc"), None);
        assert_eq!(parse_quantity("1Zi"), None);
    }

    #[test]
    fn go_rendering() {
        assert_eq!(go_quote("a\"b\n"), "\"a\\\"b\\n\"");
        assert_eq!(
            go_string_map(Some(&json!({"b": "2", "a": "1"}))),
            "map[string]string{\"a\":\"1\", \"b\":\"2\"}"
        );
        assert_eq!(go_string_map(None), "map[string]string(nil)");
        assert_eq!(
            go_label_selector(Some(&json!({"matchExpressions": [{"key": "k", "operator": "In", "values": ["a"]}]}))),
            "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"k\", Operator:\"In\", Values:[]string{\"a\"}}}}"
        );
    }

    #[test]
    fn metadata_rules() {
        let cases: Vec<(&str, &str, Value, Vec<String>)> = vec![
            ("v1", "ConfigMap", json!({"metadata": {"namespace": "default"}}),
             vec!["metadata.name: Required value: name or generateName is required".into()]),
            ("v1", "ConfigMap", json!({"metadata": {"generateName": "cm-", "namespace": "default"}}), vec![]),
            ("v1", "ConfigMap", json!({"metadata": meta("Foo")}),
             vec![format!("metadata.name: Invalid value: \"Foo\": {SUBDOMAIN_MSG}")]),
            ("v1", "ConfigMap", json!({"metadata": {"name": "a"}}),
             vec!["metadata.namespace: Required value".into()]),
            ("v1", "Namespace", json!({"metadata": {"name": "dev.x"}}),
             vec!["metadata.name: Invalid value: \"dev.x\": must not contain dots".into()]),
            ("v1", "Namespace", json!({"metadata": {"name": "dev", "namespace": "x"}}),
             vec!["metadata.namespace: Forbidden: not allowed on this type".into()]),
            ("v1", "ConfigMap", json!({"metadata": {"name": "a", "namespace": "default", "labels": {"app": "x y"}}}),
             vec!["metadata.labels: Invalid value: \"x y\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into()]),
            ("v1", "ConfigMap", json!({"metadata": {"name": "a", "namespace": "default", "annotations": {"a": "x".repeat(256 * 1024)}}}),
             vec!["metadata.annotations: Too long: may not be more than 262144 bytes".into()]),
            ("rbac.authorization.k8s.io/v1", "ClusterRole", json!({"metadata": {"name": "a/b"}}),
             vec!["metadata.name: Invalid value: \"a/b\": may not contain '/'".into()]),
            ("rbac.authorization.k8s.io/v1", "ClusterRole", json!({"metadata": {"name": "system:aggregate-to-view"}}), vec![]),
        ];
        for (av, kind, obj, want) in cases {
            assert_eq!(create(av, kind, obj.clone()), want, "{kind} {obj}");
        }
    }

    #[test]
    fn deployment_rules() {
        let ok = deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        );
        assert_eq!(create("apps/v1", "Deployment", ok), Vec::<String>::new());

        let mismatch = deployment(json!({"matchLabels": {"app": "web"}}), json!({"app": "x"}));
        let obj = defaulted("apps/v1", "Deployment", mismatch);
        let causes = validate_create(res("apps/v1", "Deployment"), &obj);
        assert_eq!(
            causes,
            vec![FieldCause {
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`".into(),
                field: "spec.template.metadata.labels".into(),
            }]
        );
        assert_eq!(
            invalid_message(res("apps/v1", "Deployment"), "web", &causes),
            "Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`"
        );

        let mut bad = deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        );
        bad["spec"]["replicas"] = json!(-1);
        bad["spec"]["strategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}});
        bad["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        let got = create("apps/v1", "Deployment", bad);
        assert_eq!(
            got,
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0".to_string(),
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"".to_string(),
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0".to_string(),
            ]
        );

        let no_sel = json!({"metadata": meta("web"), "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()}}});
        assert_eq!(
            create("apps/v1", "Deployment", no_sel),
            vec!["spec.selector: Required value".to_string()]
        );

        let empty_sel = deployment(json!({}), json!({"app": "web"}));
        assert_eq!(
            create("apps/v1", "Deployment", empty_sel),
            vec!["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment".to_string()]
        );

        let mut pct = deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        );
        pct["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "x", "maxUnavailable": "120%"}});
        assert_eq!(
            create("apps/v1", "Deployment", pct),
            vec![
                "spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"x\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')".to_string(),
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"120%\"}: must not be greater than 100%".to_string(),
            ]
        );

        let mut strat = deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        );
        strat["spec"]["strategy"] = json!({"type": "Blue"});
        assert_eq!(
            create("apps/v1", "Deployment", strat),
            vec!["spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:\"Blue\", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: \"Recreate\", \"RollingUpdate\"".to_string()]
        );
    }

    #[test]
    fn aggregate_message_lists_several_causes() {
        let causes = validate_create(
            res("v1", "ConfigMap"),
            &json!({"metadata": {"name": "Bad", "namespace": "default"}, "data": {"a b": "x"}}),
        );
        assert_eq!(causes.len(), 2);
        assert_eq!(
            invalid_message(res("v1", "ConfigMap"), "Bad", &causes),
            format!("ConfigMap \"Bad\" is invalid: [metadata.name: Invalid value: \"Bad\": {SUBDOMAIN_MSG}, data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')]")
        );
        // Duplicates collapse; no causes gives the bare sentence.
        let dup = vec![causes[0].clone(), causes[0].clone()];
        assert_eq!(
            invalid_message(res("v1", "ConfigMap"), "Bad", &dup),
            format!("ConfigMap \"Bad\" is invalid: metadata.name: Invalid value: \"Bad\": {SUBDOMAIN_MSG}")
        );
        assert_eq!(
            invalid_message(res("v1", "Pod"), "p", &[]),
            "Pod \"p\" is invalid"
        );
    }

    #[test]
    fn pod_rules() {
        let pod = |spec: Value| json!({"metadata": meta("p"), "spec": spec});
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (pod_spec(), vec![]),
            (json!({}), vec!["spec.containers: Required value"]),
            (json!({"containers": [{"name": "Web_1", "image": "nginx"}]}),
             vec!["spec.containers[0].name: Invalid value: \"Web_1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]),
            (json!({"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}),
             vec!["spec.containers[1].name: Duplicate value: \"a\""]),
            (json!({"containers": [{"name": "a"}]}), vec!["spec.containers[0].image: Required value"]),
            (json!({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 70000, "protocol": "FOO"}]}]}),
             vec!["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                  "spec.containers[0].ports[0].protocol: Unsupported value: \"FOO\": supported values: \"SCTP\", \"TCP\", \"UDP\""]),
            (json!({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 81, "name": "http"}]}]}),
             vec!["spec.containers[0].ports[1].name: Duplicate value: \"http\""]),
            (json!({"containers": [{"name": "a", "image": "x", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]}),
             vec!["spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"]),
            (json!({"containers": [{"name": "a", "image": "x", "resources": {"limits": {"gpu": "1"}}}]}),
             vec!["spec.containers[0].resources.limits[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
                  "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource for containers"]),
            (json!({"restartPolicy": "Sometimes", "containers": [{"name": "a", "image": "x"}]}),
             vec!["spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""]),
            (json!({"containers": [{"name": "a", "image": " x"}]}),
             vec!["spec.containers[0].image: Invalid value: \" x\": must not have leading or trailing whitespace"]),
            (json!({"containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]}),
             vec!["spec.containers[0].volumeMounts[0].name: Not found: \"data\""]),
            (json!({"volumes": [{"name": "v", "configMap": {"name": "c"}, "secret": {"secretName": "s"}}], "containers": [{"name": "a", "image": "x"}]}),
             vec!["spec.volumes[0].configMap: Forbidden: may not specify more than 1 volume type"]),
            (json!({"containers": [{"name": "a", "image": "x", "livenessProbe": {"httpGet": {"port": "80"}, "successThreshold": 2}}]}),
             vec!["spec.containers[0].livenessProbe.httpGet.port: Invalid value: \"80\": must contain at least one letter (a-z)",
                  "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"]),
            (json!({"containers": [{"name": "a", "image": "x", "readinessProbe": {}}]}),
             vec!["spec.containers[0].readinessProbe: Required value: must specify a handler type"]),
            (json!({"containers": [{"name": "a", "image": "x", "env": [{"name": "A=B"}]}]}),
             vec!["spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='"]),
            (json!({"tolerations": [{"operator": "Equal", "value": "x"}], "containers": [{"name": "a", "image": "x"}]}),
             vec!["spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\""]),
        ];
        for (spec, want) in cases {
            assert_eq!(create("v1", "Pod", pod(spec.clone())), want, "{spec}");
        }
    }

    #[test]
    fn pod_update_rules() {
        let old = json!({"metadata": meta("p"), "spec": {"containers": [{"name": "a", "image": "nginx:1"}],
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]}});
        let mut image = old.clone();
        image["spec"]["containers"][0]["image"] = json!("nginx:2");
        image["spec"]["activeDeadlineSeconds"] = json!(100);
        image["spec"]["tolerations"][0]["tolerationSeconds"] = json!(10);
        image["spec"]["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "n", "operator": "Exists"}));
        assert_eq!(
            update("v1", "Pod", old.clone(), image),
            Vec::<String>::new()
        );

        let mut env = old.clone();
        env["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "1"}]);
        let got = update("v1", "Pod", old.clone(), env);
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"), "{}", got[0]);

        let mut more = old.clone();
        more["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "b", "image": "x"}));
        assert_eq!(
            update("v1", "Pod", old.clone(), more),
            vec![
                "spec.containers: Forbidden: pod updates may not add or remove containers"
                    .to_string()
            ]
        );

        let mut tol = old.clone();
        tol["spec"]["tolerations"] = json!([]);
        assert_eq!(
            update("v1", "Pod", old.clone(), tol),
            vec!["spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds".to_string()]
        );

        let mut renamed = old.clone();
        renamed["metadata"]["name"] = json!("q");
        assert_eq!(
            update("v1", "Pod", old, renamed),
            vec!["metadata.name: Invalid value: \"q\": field is immutable".to_string()]
        );
    }

    #[test]
    fn workload_update_rules() {
        let old = deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        );
        let mut new = deployment(
            json!({"matchLabels": {"app": "web2"}}),
            json!({"app": "web2"}),
        );
        new["spec"]["replicas"] = json!(3);
        assert_eq!(
            update("apps/v1", "Deployment", old.clone(), new),
            vec!["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable".to_string()]
        );
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(5);
        assert_eq!(
            update("apps/v1", "Deployment", old, scaled),
            Vec::<String>::new()
        );

        let sts = json!({"metadata": meta("db"), "spec": {"serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": pod_spec()}}});
        assert_eq!(
            create("apps/v1", "StatefulSet", sts.clone()),
            Vec::<String>::new()
        );
        let mut svc = sts.clone();
        svc["spec"]["serviceName"] = json!("other");
        assert_eq!(
            update("apps/v1", "StatefulSet", sts.clone(), svc),
            vec!["spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".to_string()]
        );
        let mut scaled = sts.clone();
        scaled["spec"]["replicas"] = json!(3);
        assert_eq!(
            update("apps/v1", "StatefulSet", sts, scaled),
            Vec::<String>::new()
        );

        let ds = json!({"metadata": meta("agent"), "spec": {"selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": pod_spec()}}});
        assert_eq!(create("apps/v1", "DaemonSet", ds), Vec::<String>::new());
        let no_sel = json!({"metadata": meta("agent"), "spec": {
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": pod_spec()}}});
        assert_eq!(
            create("apps/v1", "DaemonSet", no_sel),
            vec!["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"a\"}: `selector` does not match template `labels`".to_string()]
        );
    }

    fn job(uid: &str) -> Value {
        let mut j = defaulted(
            "batch/v1",
            "Job",
            json!({"metadata": {"name": "pi", "namespace": "default", "uid": uid},
                   "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}}),
        );
        job_selector_and_labels(&mut j, uid);
        j
    }

    #[test]
    fn job_rules() {
        let ok = job("u1");
        assert!(validate_create(res("batch/v1", "Job"), &ok).is_empty());

        let mut always = ok.clone();
        always["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        let got: Vec<String> = validate_create(res("batch/v1", "Job"), &always)
            .iter()
            .map(FieldCause::error_string)
            .collect();
        assert_eq!(
            got,
            vec!["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"".to_string()]
        );

        let mut manual = ok.clone();
        manual["spec"]["selector"] = json!({"matchLabels": {"x": "y"}});
        let got: Vec<String> = validate_create(res("batch/v1", "Job"), &manual)
            .iter()
            .map(FieldCause::error_string)
            .collect();
        assert_eq!(
            got,
            vec![
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"x\":\"y\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` not auto-generated".to_string(),
                "spec.template.metadata.labels: Invalid value: map[string]string{\"batch.kubernetes.io/controller-uid\":\"u1\", \"batch.kubernetes.io/job-name\":\"pi\", \"controller-uid\":\"u1\", \"job-name\":\"pi\"}: `selector` does not match template `labels`".to_string(),
            ]
        );

        let mut changed = ok.clone();
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5");
        changed["spec"]["parallelism"] = json!(2);
        let got: Vec<String> = validate_update(res("batch/v1", "Job"), &ok, &changed)
            .iter()
            .map(FieldCause::error_string)
            .collect();
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("spec.template: Invalid value: core.PodTemplateSpec{"));
        assert!(got[0].ends_with(": field is immutable"));

        let mut completions = ok.clone();
        completions["spec"]["completions"] = json!(3);
        let got: Vec<String> = validate_update(res("batch/v1", "Job"), &ok, &completions)
            .iter()
            .map(FieldCause::error_string)
            .collect();
        assert_eq!(
            got,
            vec!["spec.completions: Invalid value: 3: field is immutable".to_string()]
        );
    }

    #[test]
    fn cron_job_rules() {
        let cj = |schedule: &str| {
            json!({"metadata": meta("tick"), "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {
                "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}})
        };
        for ok in [
            "*/5 * * * *",
            "0 0 1 jan mon",
            "@hourly",
            "@every 1h30m",
            "0-30/10 8-17 * * 1-5",
        ] {
            assert_eq!(
                create("batch/v1", "CronJob", cj(ok)),
                Vec::<String>::new(),
                "{ok}"
            );
        }
        let cases = [
            ("bad", "spec.schedule: Invalid value: \"bad\": expected exactly 5 fields, found 1: [bad]"),
            ("61 * * * *", "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"),
            ("* * * * 7", "spec.schedule: Invalid value: \"* * * * 7\": end of range (7) above maximum (6): 7"),
            ("*/0 * * * *", "spec.schedule: Invalid value: \"*/0 * * * *\": step of range should be a positive number: */0"),
            ("x * * * *", "spec.schedule: Invalid value: \"x * * * *\": failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"),
            ("@often", "spec.schedule: Invalid value: \"@often\": unrecognized descriptor: @often"),
            ("", "spec.schedule: Required value"),
        ];
        for (schedule, want) in cases {
            assert_eq!(
                create("batch/v1", "CronJob", cj(schedule)),
                vec![want.to_string()],
                "{schedule}"
            );
        }
        let mut long = cj("* * * * *");
        long["metadata"]["name"] = json!("a".repeat(53));
        assert_eq!(
            create("batch/v1", "CronJob", long),
            vec![format!(
                "metadata.name: Invalid value: \"{}\": must be no more than 52 characters",
                "a".repeat(53)
            )]
        );
    }

    #[test]
    fn service_rules() {
        let svc = |spec: Value| json!({"metadata": meta("web"), "spec": spec});
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}), vec![]),
            (json!({"selector": {"app": "web"}}), vec!["spec.ports: Required value"]),
            (json!({"clusterIP": "None"}), vec![]),
            (json!({"type": "ExternalName", "externalName": "db.example.com"}), vec![]),
            (json!({"type": "ExternalName"}), vec!["spec.externalName: Required value"]),
            (json!({"ports": [{"port": 80}, {"port": 443}]}),
             vec!["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]),
            (json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}),
             vec!["spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}"]),
            (json!({"ports": [{"port": 0, "targetPort": 80}]}),
             vec!["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"]),
            (json!({"type": "Magic", "ports": [{"port": 80}]}),
             vec!["spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""]),
            (json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}), vec![]),
            (json!({"ports": [{"port": 80, "nodePort": 30080}]}),
             vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
        ];
        for (spec, want) in cases {
            assert_eq!(create("v1", "Service", svc(spec.clone())), want, "{spec}");
        }
        let bad_name = json!({"metadata": meta("1web"), "spec": {"ports": [{"port": 80}]}});
        assert_eq!(
            create("v1", "Service", bad_name),
            vec!["metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string()]
        );

        let old = svc(
            json!({"clusterIP": "10.43.0.5", "clusterIPs": ["10.43.0.5"], "ports": [{"port": 80}]}),
        );
        let unset = svc(json!({"ports": [{"port": 81}]}));
        assert_eq!(
            update("v1", "Service", old.clone(), unset),
            Vec::<String>::new()
        );
        let moved = svc(json!({"clusterIP": "10.43.0.9", "ports": [{"port": 80}]}));
        assert_eq!(
            update("v1", "Service", old, moved),
            vec!["spec.clusterIPs[0]: Invalid value: []string{\"10.43.0.9\"}: may not change once set".to_string()]
        );
    }

    #[test]
    fn config_and_secret_rules() {
        let cm = json!({"metadata": meta("c"), "data": {"ok.key": "v"}, "binaryData": {"ok.key": "eA=="}});
        assert_eq!(
            create("v1", "ConfigMap", cm),
            vec![
                "data[ok.key]: Invalid value: \"ok.key\": duplicate of key present in binaryData"
                    .to_string()
            ]
        );
        let big = json!({"metadata": meta("c"), "data": {"a": "x".repeat(1024 * 1024 + 1)}});
        assert_eq!(
            create("v1", "ConfigMap", big),
            vec!["[]: Too long: may not be more than 1048576 bytes".to_string()]
        );
        let frozen = json!({"metadata": meta("c"), "immutable": true, "data": {"a": "1"}});
        let mut thawed = frozen.clone();
        thawed["data"]["a"] = json!("2");
        thawed["immutable"] = json!(false);
        assert_eq!(
            update("v1", "ConfigMap", frozen, thawed),
            vec![
                "immutable: Forbidden: field is immutable when `immutable` is set".to_string(),
                "data: Forbidden: field is immutable when `immutable` is set".to_string(),
            ]
        );

        let tls = json!({"metadata": meta("s"), "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
        assert_eq!(
            create("v1", "Secret", tls.clone()),
            vec!["data[tls.key]: Required value".to_string()]
        );
        let basic = json!({"metadata": meta("s"), "type": "kubernetes.io/basic-auth", "data": {}});
        assert_eq!(
            create("v1", "Secret", basic),
            vec![
                "data[username]: Required value".to_string(),
                "data[password]: Required value".to_string()
            ]
        );
        let opaque = json!({"metadata": meta("s"), "stringData": {"password": "x"}});
        assert_eq!(create("v1", "Secret", opaque.clone()), Vec::<String>::new());
        let mut retyped = opaque.clone();
        retyped["type"] = json!("kubernetes.io/basic-auth");
        assert_eq!(
            update("v1", "Secret", opaque, retyped),
            vec![
                "type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable".to_string()
            ]
        );
    }

    #[test]
    fn rbac_rules() {
        let rb = json!({"metadata": meta("rb"), "roleRef": {"kind": "ClusterRole", "name": "view"},
                        "subjects": [{"kind": "User", "name": "alice"}]});
        assert_eq!(
            create("rbac.authorization.k8s.io/v1", "RoleBinding", rb.clone()),
            Vec::<String>::new()
        );
        let mut other = rb.clone();
        other["roleRef"]["name"] = json!("edit");
        assert_eq!(
            update("rbac.authorization.k8s.io/v1", "RoleBinding", rb.clone(), other),
            vec!["roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef".to_string()]
        );
        let no_ref = json!({"metadata": {"name": "crb"}, "subjects": [{"kind": "ServiceAccount", "name": "sa"}]});
        assert_eq!(
            create("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", no_ref),
            vec![
                "roleRef.apiGroup: Unsupported value: \"\": supported values: \"rbac.authorization.k8s.io\"".to_string(),
                "roleRef.kind: Unsupported value: \"\": supported values: \"ClusterRole\"".to_string(),
                "roleRef.name: Required value".to_string(),
                "subjects[0].namespace: Required value".to_string(),
            ]
        );
        let role =
            json!({"metadata": meta("r"), "rules": [{"apiGroups": [""], "resources": ["pods"]}]});
        assert_eq!(
            create("rbac.authorization.k8s.io/v1", "Role", role),
            vec![
                "rules[0].verbs: Required value: verbs must contain at least one value".to_string()
            ]
        );
    }

    #[test]
    fn other_kind_rules() {
        let ns_old = json!({"metadata": {"name": "dev", "uid": "1"}});
        let ns_new = json!({"metadata": {"name": "dev", "uid": "2"}});
        assert_eq!(
            update("v1", "Namespace", ns_old, ns_new),
            vec!["metadata.uid: Invalid value: \"2\": field is immutable".to_string()]
        );

        let node = json!({"metadata": {"name": "n1"}, "spec": {"taints": [
            {"key": "a", "effect": "NoSchedule"}, {"key": "a", "value": "x", "effect": "NoSchedule"}, {"key": "b", "effect": "Sometimes"}]}});
        assert_eq!(
            create("v1", "Node", node),
            vec![
                "metadata.taints[1]: Duplicate value: core.Taint{Key:\"a\", Value:\"x\", Effect:\"NoSchedule\", TimeAdded:<nil>}: taints must be unique by key and effect pair".to_string(),
                "metadata.taints[2].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"".to_string(),
            ]
        );

        let pvc = json!({"metadata": meta("data"), "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        assert_eq!(
            create("v1", "PersistentVolumeClaim", pvc.clone()),
            Vec::<String>::new()
        );
        assert_eq!(
            create(
                "v1",
                "PersistentVolumeClaim",
                json!({"metadata": meta("d"), "spec": {}})
            ),
            vec![
                "spec.accessModes: Required value: at least 1 access mode is required".to_string(),
                "spec.resources[storage]: Required value".to_string(),
            ]
        );
        let mut grown = pvc.clone();
        grown["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        let got = update("v1", "PersistentVolumeClaim", pvc, grown);
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n"));

        let ing = json!({"metadata": meta("web"), "spec": {"rules": [{"host": "web.example.com", "http": {"paths": [
            {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
        assert_eq!(
            create("networking.k8s.io/v1", "Ingress", ing),
            vec![
                "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"
                    .to_string()
            ]
        );

        let pc = json!({"metadata": {"name": "high"}, "value": 2_000_000_000});
        assert_eq!(
            create("scheduling.k8s.io/v1", "PriorityClass", pc),
            vec![
                "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"
                    .to_string()
            ]
        );

        let sc_old = json!({"metadata": {"name": "local"}, "provisioner": "rancher.io/local-path"});
        let mut sc_new = sc_old.clone();
        sc_new["parameters"] = json!({"a": "b"});
        assert_eq!(
            update("storage.k8s.io/v1", "StorageClass", sc_old, sc_new),
            vec!["parameters: Forbidden: updates to parameters are forbidden.".to_string()]
        );

        let lease = json!({"metadata": meta("l"), "spec": {"leaseDurationSeconds": 0}});
        assert_eq!(
            create("coordination.k8s.io/v1", "Lease", lease),
            vec!["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0".to_string()]
        );

        let ep = json!({"metadata": meta("web"), "subsets": [{"addresses": [{"ip": "10.42.0.5"}], "ports": [{"port": 80}]}]});
        assert_eq!(create("v1", "Endpoints", ep), Vec::<String>::new());

        let slice = json!({"metadata": meta("web-abc"), "addressType": "IPv4", "endpoints": [{"addresses": ["x"]}]});
        assert_eq!(
            create("discovery.k8s.io/v1", "EndpointSlice", slice),
            vec![
                "endpoints[0].addresses[0]: Invalid value: \"x\": must be a valid IPv4 address"
                    .to_string()
            ]
        );
    }

    #[test]
    fn selector_matching() {
        let labels = json!({"app": "web", "tier": "fe"});
        let sel = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["fe", "be"]},
            {"key": "gone", "operator": "DoesNotExist"}]});
        assert_eq!(
            label_selector_matches(Some(&sel), Some(&labels)),
            Some(true)
        );
        assert_eq!(label_selector_matches(None, Some(&labels)), Some(false));
        assert_eq!(
            label_selector_matches(Some(&json!({})), Some(&labels)),
            Some(true)
        );
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "Near"}]});
        assert_eq!(label_selector_matches(Some(&bad), Some(&labels)), None);
    }

    #[test]
    fn type_invalid_renders_the_value() {
        let c = type_invalid("spec.replicas", &json!("three"), "must be an integer");
        assert_eq!(c.reason, "FieldValueTypeInvalid");
        assert_eq!(c.message, "Invalid value: \"three\": must be an integer");
    }
}
