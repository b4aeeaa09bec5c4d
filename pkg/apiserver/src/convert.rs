//! Version conversion between a served shape and the stored shape. Today one pair: an
//! `events.k8s.io/v1` Event is stored as the `v1` Event it is upstream (one object, two views).

use serde_json::{Map, Value};
use skiff_api::registry::ResourceInfo;
use std::borrow::Cow;

/// core/v1 field ↔ events.k8s.io/v1 field.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// `autoscaling/v1` HorizontalPodAutoscalers are stored as `autoscaling/v2` (`skiff_api::hpa`).
fn is_hpa_v1(res: &ResourceInfo) -> bool {
    res.group == "autoscaling" && res.version == "v1" && res.plural == "horizontalpodautoscalers"
}

fn is_events_v1(res: &ResourceInfo) -> bool {
    res.group == "events.k8s.io" && res.plural == "events"
}

fn rename(obj: Value, to_events_v1: bool, api_version: &str) -> Value {
    let Value::Object(m) = obj else { return obj };
    let mut out = Map::new();
    for (k, v) in m {
        let nk = EVENT_FIELDS
            .iter()
            .find_map(|(core, ev)| {
                if to_events_v1 && k == *core {
                    Some(*ev)
                } else if !to_events_v1 && k == *ev {
                    Some(*core)
                } else {
                    None
                }
            })
            .map(String::from)
            .unwrap_or(k);
        out.insert(nk, v);
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    out.insert("kind".into(), Value::String("Event".into()));
    Value::Object(out)
}

/// The stored object as the resource `res` serves it.
pub fn from_storage(res: &ResourceInfo, obj: Value) -> Value {
    if crate::crd::is_custom(res) {
        crate::crd::served_shape(res, obj)
    } else if is_events_v1(res) {
        rename(obj, true, "events.k8s.io/v1")
    } else if is_hpa_v1(res) {
        skiff_api::hpa::v2_to_v1(&obj)
    } else {
        obj
    }
}

/// True when `res` is served exactly as stored (no conversion on read).
pub fn is_identity(res: &ResourceInfo) -> bool {
    if crate::crd::is_custom(res) {
        // Custom objects are stored in the version they were written in.
        return crate::crd::custom(res).is_some_and(|c| c.only_version);
    }
    !is_events_v1(res) && !is_hpa_v1(res)
}

/// The object of resource `res` in its stored shape (borrowed when that is the served shape).
pub fn to_storage<'a>(res: &ResourceInfo, obj: &'a Value) -> Cow<'a, Value> {
    if is_events_v1(res) {
        Cow::Owned(rename(obj.clone(), false, "v1"))
    } else if is_hpa_v1(res) {
        Cow::Owned(skiff_api::hpa::v1_to_v2(obj))
    } else {
        Cow::Borrowed(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_round_trip() {
        let res = skiff_api::registry::find("events.k8s.io", "v1", "events").unwrap();
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "hi", "count": 2, "reason": "X"});
        let ev = from_storage(res, core.clone());
        assert_eq!(ev["apiVersion"], "events.k8s.io/v1");
        assert_eq!(ev["regarding"]["name"], "p");
        assert_eq!(ev["note"], "hi");
        assert_eq!(ev["deprecatedCount"], 2);
        assert_eq!(*to_storage(res, &ev), core);
        let pods = skiff_api::registry::find("", "v1", "pods").unwrap();
        let hpa_v1 =
            skiff_api::registry::find("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"},
            "minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50}});
        let stored = to_storage(hpa_v1, &v1);
        assert_eq!(stored["apiVersion"], "autoscaling/v2");
        assert_eq!(from_storage(hpa_v1, stored.into_owned()), v1);
        assert!(!is_identity(hpa_v1));
        assert_eq!(from_storage(pods, core.clone()), core);
    }
}
