//! `additionalPrinterColumns` as Table columns and cells, as upstream's CR table convertor
//! builds them: Name first, then each column (Age from `.metadata.creationTimestamp` when a
//! version declares none), cells read with a simple JSONPath (`.spec.replicas`,
//! `.status.conditions[0].type`, `.metadata.labels['app.kubernetes.io/name']`).

use super::PrinterColumn;
use serde_json::{json, Value};

/// The columns a version without `additionalPrinterColumns` gets.
pub fn default_columns() -> Vec<PrinterColumn> {
    vec![PrinterColumn {
        name: "Age".into(),
        type_: "date".into(),
        format: String::new(),
        description: String::new(),
        priority: 0,
        json_path: ".metadata.creationTimestamp".into(),
    }]
}

fn effective(cols: &[PrinterColumn]) -> Vec<PrinterColumn> {
    if cols.is_empty() {
        default_columns()
    } else {
        cols.to_vec()
    }
}

/// The `columnDefinitions` of a custom resource's Table.
pub fn table_columns(cols: &[PrinterColumn]) -> Vec<Value> {
    let name = crate::table::columns("", "")
        .into_iter()
        .next()
        .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    let mut out = vec![name];
    for c in effective(cols) {
        let description = if c.description.is_empty() {
            format!(
                "Custom resource definition column (in JSONPath format): {}",
                c.json_path
            )
        } else {
            c.description.clone()
        };
        out.push(json!({
            "name": c.name,
            "type": c.type_,
            "format": c.format,
            "description": description,
            "priority": c.priority,
        }));
    }
    out
}

/// One segment of a path: a key or an index.
#[derive(Debug, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Parses `.a.b[0]['c.d']` (with or without the `{…}` upstream wraps it in).
fn parse_path(p: &str) -> Option<Vec<Seg>> {
    let p = p.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(p);
    let mut out = Vec::new();
    let mut rest = p.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end > 0 {
                out.push(Seg::Key(r[..end].to_string()));
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim();
            let quoted = inner
                .strip_prefix('\'')
                .and_then(|x| x.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')));
            match quoted {
                Some(k) => out.push(Seg::Key(k.to_string())),
                None => out.push(Seg::Index(inner.parse().ok()?)),
            }
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(out)
}

/// The value at a printer column's JSONPath.
pub fn lookup<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for seg in parse_path(path)? {
        cur = match seg {
            Seg::Key(k) => cur.get(&k)?,
            Seg::Index(i) => cur.get(i)?,
        };
    }
    Some(cur)
}

/// The cells of one row: the name, then each column (`null` where the path finds nothing;
/// string columns as text, date columns as the human age kubectl prints).
pub fn cells(
    cols: &[PrinterColumn],
    obj: &Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Value> {
    let name = obj
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    let mut out = vec![name];
    for c in effective(cols) {
        let v = lookup(obj, &c.json_path).filter(|v| !v.is_null());
        out.push(match (v, c.type_.as_str()) {
            (None, _) => Value::Null,
            (Some(v), "date") => json!(crate::table::translate_timestamp(Some(v), now)),
            (Some(Value::String(s)), _) => json!(s),
            (Some(v), "string") => json!(match v {
                Value::Array(_) | Value::Object(_) => v.to_string(),
                other => other.to_string(),
            }),
            (Some(v), _) => v.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let o = json!({"spec": {"a": [{"b": 1}], "m": {"x.y": "z"}}});
        assert_eq!(lookup(&o, ".spec.a[0].b"), Some(&json!(1)));
        assert_eq!(lookup(&o, "{.spec.m['x.y']}"), Some(&json!("z")));
        assert_eq!(lookup(&o, ".spec.nope"), None);
        assert_eq!(lookup(&o, ".spec.a[3]"), None);
    }

    #[test]
    fn crontab_columns_and_cells() {
        let cols = vec![
            PrinterColumn {
                name: "Spec".into(),
                type_: "string".into(),
                format: String::new(),
                description: String::new(),
                priority: 0,
                json_path: ".spec.cronSpec".into(),
            },
            PrinterColumn {
                name: "Replicas".into(),
                type_: "integer".into(),
                format: String::new(),
                description: String::new(),
                priority: 0,
                json_path: ".spec.replicas".into(),
            },
            PrinterColumn {
                name: "Age".into(),
                type_: "date".into(),
                format: String::new(),
                description: String::new(),
                priority: 0,
                json_path: ".metadata.creationTimestamp".into(),
            },
        ];
        let defs = table_columns(&cols);
        assert_eq!(defs[0]["name"], "Name");
        assert_eq!(defs[0]["format"], "name");
        assert_eq!(defs[1]["name"], "Spec");
        assert_eq!(
            defs[1]["description"],
            "Custom resource definition column (in JSONPath format): .spec.cronSpec"
        );
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:01:05Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let o = json!({"metadata": {"name": "c", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"cronSpec": "* * * * */5", "replicas": 5}});
        assert_eq!(
            cells(&cols, &o, now),
            vec![json!("c"), json!("* * * * */5"), json!(5), json!("65s")]
        );
        let bare = json!({"metadata": {"name": "c"}});
        assert_eq!(cells(&cols, &bare, now)[1], Value::Null);
        // No columns: Name and Age.
        assert_eq!(table_columns(&[]).len(), 2);
        assert_eq!(cells(&[], &o, now), vec![json!("c"), json!("65s")]);
    }
}
