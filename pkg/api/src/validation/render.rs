//! Go value rendering: bad values printed the way 1.32's `field.Error.ErrorBody()` prints them
//! (`%q` strings, `%#v` maps, selectors and int-or-strings).

use super::*;

/// Go `%#v` of a `map[string]string` (keys sorted, like Go's printer).
pub(super) fn go_string_map(v: Option<&Value>) -> String {
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
pub(super) fn go_string_slice(v: Option<&Value>) -> String {
    match v.and_then(Value::as_array) {
        None => "[]string(nil)".to_string(),
        Some(a) => {
            let parts: Vec<String> = a.iter().map(|x| go_quote(&scalar_string(x))).collect();
            format!("[]string{{{}}}", parts.join(", "))
        }
    }
}

/// Go `%#v` of a `metav1.LabelSelector`.
pub(super) fn go_label_selector(sel: Option<&Value>) -> String {
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
pub(super) fn go_int_or_string(v: Option<&Value>) -> String {
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

pub(super) fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A bad value as 1.32's `ErrorBody` prints it.
#[derive(Debug, Clone)]
pub(super) enum Bad {
    Str(String),
    Int(i64),
    /// Already rendered (Go `%#v`, JSON, `null`).
    Raw(String),
}

impl Bad {
    pub(super) fn render(&self) -> String {
        match self {
            Bad::Str(s) => go_quote(s),
            Bad::Int(i) => i.to_string(),
            Bad::Raw(r) => r.clone(),
        }
    }
}

pub(super) fn bad_str(s: &str) -> Bad {
    Bad::Str(s.to_string())
}

/// A JSON value as a bad value: strings quoted, numbers/booleans plain, null as `null`.
pub(super) fn bad_json(v: Option<&Value>) -> Bad {
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
