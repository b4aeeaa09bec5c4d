//! JSON objects and jsonpath output: volatile fields scrubbed, time formats, pod rows.

use std::collections::BTreeMap;

/// Replaces the values of volatile metadata fields (uid, resourceVersion, creationTimestamp,
/// managedFields times) with placeholders after checking their format, so whole objects compare.
pub fn scrub(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                match (k.as_str(), &*val) {
                    ("uid", Value::String(s)) => {
                        assert!(
                            s.len() == 36 && s.chars().filter(|&c| c == '-').count() == 4,
                            "uid {s:?} is not a UUID"
                        );
                        *val = Value::String("<uid>".into());
                    }
                    ("resourceVersion", Value::String(s)) => {
                        assert!(
                            !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()),
                            "resourceVersion {s:?} is not a decimal number"
                        );
                        *val = Value::String("<rv>".into());
                    }
                    ("creationTimestamp" | "deletionTimestamp" | "time", Value::String(s)) => {
                        assert!(is_rfc3339(s), "{k} {s:?} is not an RFC 3339 UTC time");
                        *val = Value::String("<time>".into());
                    }
                    _ => scrub(val),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// Whether `s` looks like `2024-01-02T03:04:05Z`.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19].contains(&i) || c.is_ascii_digit())
}

/// Parses `k=v` lines or a JSON object of string values into a map (for small assertions).
pub fn string_map(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// kubectl `-o` argument whose output [`parse_pod_rows`] reads.
pub const POD_ROWS_JSONPATH: &str = "jsonpath={range .items[*]}{.metadata.name}|{.status.phase}|{.status.conditions[?(@.type==\"Ready\")].status}|{.spec.nodeName}|{.status.podIP}|{.spec.containers[0].image}|{.metadata.deletionTimestamp}{\"\\n\"}{end}";

/// The rows of `kubectl get pods -o` [`POD_ROWS_JSONPATH`].
pub fn parse_pod_rows(stdout: &str) -> Vec<PodRow> {
    stdout
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            let at = |i: usize| f.get(i).copied().unwrap_or_default().to_string();
            PodRow {
                name: at(0),
                phase: at(1),
                ready: at(2),
                node: at(3),
                ip: at(4),
                image: at(5),
                deleting: !at(6).is_empty(),
            }
        })
        .collect()
}

/// One row per pod: name, phase, ready condition, node, IP, first container image,
/// deletionTimestamp (empty when not terminating).
#[derive(Debug, Clone, PartialEq)]
pub struct PodRow {
    pub name: String,
    pub phase: String,
    pub ready: String,
    pub node: String,
    pub ip: String,
    pub image: String,
    pub deleting: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_replaces_volatile_fields() {
        let mut v = serde_json::json!({"metadata":{"uid":"0f8e1c3a-1111-2222-3333-444455556666",
            "resourceVersion":"12","creationTimestamp":"2024-01-02T03:04:05Z"}});
        scrub(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"metadata":{"uid":"<uid>","resourceVersion":"<rv>","creationTimestamp":"<time>"}})
        );
    }
}
