//! Small facts about pods and selectors that every workload controller shares, mirroring
//! upstream's `podutil` and `controller` helpers (readiness, availability, activity, hashes).

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::jiff::Timestamp;

/// The pod's phase (`""` when the status has none yet).
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The pod's `Ready` condition when it is `True`, with its last transition time.
fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

/// When the pod became ready (its `Ready=True` condition's lastTransitionTime), if it is ready.
pub fn ready_time(pod: &Pod) -> Option<Timestamp> {
    ready_since(pod).flatten()
}

/// Whether the pod has the `Ready=True` condition (upstream `podutil.IsPodReady`).
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Whether the pod has been ready for at least `min_ready_seconds` at `now`
/// (upstream `podutil.IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(t)) => t.as_second() + i64::from(min_ready_seconds) <= now.as_second(),
    }
}

/// Seconds until a ready pod becomes available (`None` when not ready or already available).
pub fn seconds_until_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<i64> {
    let t = ready_since(pod)??;
    let left = t.as_second() + i64::from(min_ready_seconds) - now.as_second();
    (min_ready_seconds > 0 && left > 0).then_some(left)
}

/// Whether the pod is being deleted.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Whether the pod reached `Succeeded` or `Failed`.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Upstream `controller.IsPodActive`: not terminal and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    !is_terminal(pod) && !is_terminating(pod)
}

/// The creation time in seconds since the epoch (0 when unknown).
pub fn created(meta: &ObjectMeta) -> i64 {
    meta.creation_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .unwrap_or(0)
}

pub use skiff_api::matchers::labels::selector_matches;

/// True when the selector has no requirements at all (it would select every pod).
pub fn selector_is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty())
}

/// The characters upstream's `rand.String` / `SafeEncodeString` use (no vowels, no 0/1/3).
pub const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-1a, 32 bits.
pub fn fnv32a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5, |h: u32, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// Upstream `controller.ComputeHash`-style short hash: FNV-32a over `data` (plus the collision
/// count when there is one), written with the "safe" alphabet that avoids vowels and look-alikes.
pub fn short_hash(data: &[u8], collision_count: Option<i32>) -> String {
    let mut bytes = data.to_vec();
    if let Some(c) = collision_count {
        // Go writes the count as 4 little-endian bytes.
        bytes.extend_from_slice(&c.to_le_bytes());
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// Upstream `rand.SafeEncodeString`: each byte mapped into [`ALPHANUMS`].
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()]))
        .collect()
}

/// Resolves an int-or-percent against `total` (upstream `GetScaledValueFromIntOrPercent`).
pub fn scaled_value(
    v: Option<&k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
    total: i32,
    round_up: bool,
) -> i32 {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match v {
        None => 0,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            let Some(p) = s
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<i64>().ok())
            else {
                return s.parse::<i32>().unwrap_or(0);
            };
            let prod = p * i64::from(total);
            let v = if round_up {
                (prod + 99).div_euclid(100)
            } else {
                prod.div_euclid(100)
            };
            i32::try_from(v).unwrap_or(i32::MAX)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, Time};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use std::collections::BTreeMap;

    /// An RFC 3339 time.
    pub fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    pub fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    /// The metadata of a test object `default/<name>` with a uid and a generation.
    pub fn meta(name: &str, uid: &str, generation: i64) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(uid.into()),
            generation: Some(generation),
            ..Default::default()
        }
    }

    /// A label selector requirement (`values` empty: none).
    pub fn requirement(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    /// A pod in `phase`, Ready since `ready_at` when given.
    pub fn pod(name: &str, phase: &str, ready_at: Option<i64>) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("default".into());
        p.metadata.uid = Some(format!("uid-{name}"));
        p.metadata.creation_timestamp = Some(Time(ts(1000)));
        p.status = Some(PodStatus {
            phase: Some(phase.into()),
            conditions: ready_at.map(|t| {
                vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(ts(t))),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        });
        p
    }

    #[test]
    fn readiness_and_availability() {
        let p = pod("a", "Running", Some(100));
        assert!(is_ready(&p));
        assert!(is_available(&p, 0, ts(100)));
        assert!(!is_available(&p, 10, ts(105)));
        assert!(is_available(&p, 10, ts(110)));
        assert_eq!(seconds_until_available(&p, 10, ts(105)), Some(5));
        assert!(!is_ready(&pod("b", "Running", None)));
        assert!(is_active(&pod("c", "Pending", None)));
        assert!(!is_active(&pod("d", "Failed", None)));
    }

    #[test]
    fn selectors() {
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())]
            .into_iter()
            .collect();
        let mut sel = LabelSelector {
            match_labels: Some(labels.clone()),
            ..Default::default()
        };
        assert!(selector_matches(&sel, Some(&labels)));
        assert!(!selector_matches(&sel, None));
        sel.match_expressions = Some(vec![LabelSelectorRequirement {
            key: "tier".into(),
            operator: "DoesNotExist".into(),
            values: None,
        }]);
        assert!(selector_matches(&sel, Some(&labels)));
        sel.match_expressions.as_mut().unwrap()[0].operator = "Exists".into();
        assert!(!selector_matches(&sel, Some(&labels)));
        assert!(selector_matches(&LabelSelector::default(), None));
    }

    #[test]
    fn hashes_and_percentages() {
        let a = short_hash(b"template", None);
        assert_eq!(a, short_hash(b"template", None));
        assert_ne!(a, short_hash(b"template", Some(1)));
        assert!(a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        // Go maps each byte of the decimal string: b'0' (48) % 27 = 21 → '4'.
        assert_eq!(safe_encode("0123"), "4567");
        let pct = IntOrString::String("25%".into());
        assert_eq!(scaled_value(Some(&pct), 10, true), 3);
        assert_eq!(scaled_value(Some(&pct), 10, false), 2);
        assert_eq!(scaled_value(Some(&IntOrString::Int(2)), 10, false), 2);
        assert_eq!(scaled_value(None, 10, true), 0);
    }
}
