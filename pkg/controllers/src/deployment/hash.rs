//! The `pod-template-hash` of a Deployment's pod template: FNV-32a over a canonical encoding of
//! the template plus the collision count, printed in decimal and "safe encoded" with the
//! alphabet of upstream's `rand.SafeEncodeString`.
//!
//! Upstream hashes a go-spew dump of the Go struct; skiff hashes canonical JSON (sorted keys)
//! instead, so the hash of a given template differs from upstream's, while keeping every other
//! property (stable, collision count changes it, same alphabet and length range).

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

pub use crate::util::podutil::{fnv32a, safe_encode, ALPHANUMS};

fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(x) = m.get(*k) {
                    canonical(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The pod-template-hash label value for `template` (upstream's `controller.ComputeHash`):
/// the collision count, when set, is fed in as 8 little-endian bytes of its uint32 value.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let value = serde_json::to_value(template).unwrap_or(Value::Null);
    let mut text = String::new();
    canonical(&value, &mut text);
    let mut data = text.into_bytes();
    if let Some(c) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(c as u32).to_le_bytes());
        data.extend_from_slice(&bytes);
    }
    safe_encode(&fnv32a(&data).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::plan::tests::template;

    #[test]
    fn fnv32a_known_vectors() {
        assert_eq!(fnv32a(b""), 0x811c9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9cf968);
    }

    #[test]
    fn safe_encode_maps_digits_like_upstream() {
        // '0'..'9' are 48..57; 48 % 27 = 21 → '4', …, 54 % 27 = 0 → 'b'
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
        // upstream-style hashes only use those ten characters
        assert_eq!(safe_encode("3506384926"), "794b7d8f6b");
    }

    #[test]
    fn hash_is_stable_and_changes_with_template_and_collisions() {
        let a = pod_template_hash(&template("web:v1"), None);
        assert_eq!(a, pod_template_hash(&template("web:v1"), None));
        assert_ne!(a, pod_template_hash(&template("web:v2"), None));
        assert_ne!(a, pod_template_hash(&template("web:v1"), Some(1)));
        assert_ne!(
            pod_template_hash(&template("web:v1"), Some(1)),
            pod_template_hash(&template("web:v1"), Some(2))
        );
        assert!(!a.is_empty() && a.len() <= 10);
        assert!(a.chars().all(|c| "456789bcdf".contains(c)));
    }
}
