//! Version conversion between a served shape and the stored shape. Today one pair: an
//! `events.k8s.io/v1` Event is stored as the `v1` Event it is upstream (one object, two views).

use serde_json::{Map, Value};
use skiff_api::registry::ResourceInfo;

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
    if is_events_v1(res) {
        rename(obj, true, "events.k8s.io/v1")
    } else {
        obj
    }
}

/// True when `res` is served exactly as stored (no conversion on read).
pub fn is_identity(res: &ResourceInfo) -> bool {
    !is_events_v1(res)
}

/// The object of resource `res` in its stored shape.
pub fn to_storage(res: &ResourceInfo, obj: &Value) -> Value {
    if is_events_v1(res) {
        rename(obj.clone(), false, "v1")
    } else {
        obj.clone()
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
        assert_eq!(to_storage(res, &ev), core);
        let pods = skiff_api::registry::find("", "v1", "pods").unwrap();
        assert_eq!(from_storage(pods, core.clone()), core);
    }
}
