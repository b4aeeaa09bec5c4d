//! Small helpers over objects held as JSON: metadata accessors, decoding stored values and
//! stamping the resourceVersion from the store revision.

use crate::error::{ApiError, ApiResult};
use serde_json::{Map, Value};
use skiff_store::KeyValue;

/// `metadata.<field>` as a string.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

pub fn namespace(obj: &Value) -> Option<&str> {
    meta_str(obj, "namespace")
}

/// The metadata object, created if missing (a non-object value is replaced by an object).
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(map) = obj else {
        unreachable!("replaced by an object above")
    };
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    let Value::Object(m) = meta else {
        unreachable!("replaced by an object above")
    };
    m
}

/// The labels map, if any.
pub fn labels(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.get("labels")?.as_object()
}

/// Decodes a stored value and stamps `metadata.resourceVersion`.
pub fn from_kv(kv: &KeyValue) -> ApiResult<Value> {
    let mut v: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is corrupt: {e}", kv.key)))?;
    set_rv(&mut v, kv.mod_revision);
    Ok(v)
}

pub fn set_rv(obj: &mut Value, rev: i64) {
    if obj.is_object() {
        meta_mut(obj).insert("resourceVersion".into(), Value::String(rev.to_string()));
    }
}

/// Serialises an object for storage (without resourceVersion: the revision is the truth).
/// Written straight from `obj`: the bytes are those of a copy whose `metadata` had
/// `resourceVersion` removed (`Map::remove`, which moves the last field into its place).
pub fn to_stored(obj: &Value) -> Vec<u8> {
    serde_json::to_vec(&WithoutRv(obj)).unwrap_or_default()
}

/// An object serialised without `metadata.resourceVersion`.
struct WithoutRv<'a>(&'a Value);

/// A metadata map serialised without `resourceVersion` (at index `rv` of `len` fields).
struct MetaWithoutRv<'a> {
    map: &'a Map<String, Value>,
    rv: usize,
}

impl serde::Serialize for WithoutRv<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Value::Object(root) = self.0 else {
            return self.0.serialize(s);
        };
        let meta = root.get("metadata").and_then(|m| {
            let m = m.as_object()?;
            Some(MetaWithoutRv {
                map: m,
                rv: m.keys().position(|k| k == "resourceVersion")?,
            })
        });
        let Some(meta) = meta else {
            return self.0.serialize(s);
        };
        let mut out = s.serialize_map(Some(root.len()))?;
        for (k, v) in root {
            if k == "metadata" {
                out.serialize_entry(k, &meta)?;
            } else {
                out.serialize_entry(k, v)?;
            }
        }
        out.end()
    }
}

impl serde::Serialize for MetaWithoutRv<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let last = self.map.len() - 1;
        let mut out = s.serialize_map(Some(last))?;
        for (i, (k, v)) in self.map.iter().enumerate() {
            if i == self.rv {
                // `swap_remove` order: the last field takes the removed one's place.
                if let Some((lk, lv)) = self.map.iter().next_back().filter(|_| i != last) {
                    out.serialize_entry(lk, lv)?;
                }
            } else if i != last || self.rv == last {
                out.serialize_entry(k, v)?;
            }
        }
        out.end()
    }
}

/// `stored` (an object as [`to_stored`] writes it: compact JSON) with
/// `"resourceVersion":"<rev>"` added as the last field of its top-level `metadata` — the bytes
/// of the object after [`set_rv`], when it had no resourceVersion. `None` without a top-level
/// `metadata` object.
pub fn with_rv_last(stored: &[u8], rev: i64) -> Option<Vec<u8>> {
    let start = crate::rest::metadata_body_start(stored)?;
    let end = object_end(stored, start)?;
    let rev = rev.to_string();
    let mut out = Vec::with_capacity(stored.len() + rev.len() + 24);
    out.extend_from_slice(&stored[..end]);
    if end > start {
        out.push(b',');
    }
    out.extend_from_slice(b"\"resourceVersion\":\"");
    out.extend_from_slice(rev.as_bytes());
    out.push(b'"');
    out.extend_from_slice(&stored[end..]);
    Some(out)
}

/// The offset of the `}` closing the object whose body starts at `start` (just inside its
/// `{`), skipping strings with their escapes.
fn object_end(b: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                if depth == 0 {
                    return (b[i] == b'}').then_some(i);
                }
                depth -= 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Current time as RFC 3339 with seconds (the Kubernetes `Time` format).
pub fn now_rfc3339() -> String {
    use std::cell::RefCell;
    thread_local! {
        /// The last second formatted on this thread and its text (formatted once a second).
        static LAST: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let now = chrono::Utc::now();
    let secs = now.timestamp();
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != secs {
            *last = (secs, now.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
        last.1.clone()
    })
}

/// Current time as RFC 3339 with microseconds (`MicroTime`).
pub fn now_micro() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// A random 5-character suffix from the upstream alphabet (no vowels, no confusables).
pub fn random_suffix(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Everything but metadata and status differs (generation bumps on spec change only).
pub fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
            m.remove("apiVersion");
            m.remove("kind");
        }
        v
    };
    strip(old) != strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_bytes_are_those_of_a_copy_without_the_resource_version() {
        let objects = [
            json!({"kind": "Pod", "metadata": {"name": "p", "resourceVersion": "5", "uid": "u", "labels": {"a": "b"}}, "spec": {}}),
            json!({"metadata": {"resourceVersion": "5", "name": "p", "uid": "u"}}),
            json!({"metadata": {"name": "p", "uid": "u", "resourceVersion": "5"}, "status": {}}),
            json!({"metadata": {"resourceVersion": "5"}}),
            json!({"metadata": {"name": "p"}, "data": {"resourceVersion": "x"}}),
            json!({"metadata": "odd", "resourceVersion": "1"}),
            json!({"spec": {"metadata": {"resourceVersion": "1"}}}),
            json!([1, 2]),
        ];
        for obj in objects {
            let mut copy = obj.clone();
            if let Some(m) = copy.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                m.remove("resourceVersion");
            }
            assert_eq!(
                String::from_utf8(to_stored(&obj)).unwrap(),
                serde_json::to_string(&copy).unwrap(),
                "{obj}"
            );
        }
    }
}
