//! HorizontalPodAutoscaler in its two served versions: `autoscaling/v2` (the stored shape) and
//! `autoscaling/v1`, converted as upstream does — v1's `targetCPUUtilizationPercentage` and
//! `currentCPUUtilizationPercentage` are v2's CPU `Utilization` metric, and what v1 cannot hold
//! (other metrics, their current values, conditions, behavior) travels in the
//! `autoscaling.alpha.kubernetes.io/{metrics,current-metrics,conditions,behavior}` annotations,
//! whose metrics use v1's `MetricSpec`/`MetricStatus` shapes. Also the v1/v2 defaults and the
//! TARGETS cell of `kubectl get hpa`.

use serde_json::{json, Map, Value};

/// v1 annotation: the spec metrics other than the CPU utilization target (v1 `MetricSpec`s).
pub const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// v1 annotation: the current values of those metrics (v1 `MetricStatus`es).
pub const CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// v1 annotation: the status conditions.
pub const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// v1 annotation: `spec.behavior`.
pub const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";

/// The CPU utilization upstream uses when an HPA names no metric.
pub const DEFAULT_CPU_UTILIZATION: i64 = 80;

fn obj_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut().expect("just made an object")
}

fn put(m: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v.filter(|v| !v.is_null()) {
        m.insert(k.into(), v);
    }
}

fn get(v: &Value, k: &str) -> Option<Value> {
    v.get(k).filter(|x| !x.is_null()).cloned()
}

fn is_cpu_utilization(m: &Value) -> bool {
    m["type"] == "Resource"
        && m["resource"]["name"] == "cpu"
        && m["resource"]["target"]["averageUtilization"].is_number()
}

fn is_cpu_current_utilization(m: &Value) -> bool {
    m["type"] == "Resource"
        && m["resource"]["name"] == "cpu"
        && m["resource"]["current"]["averageUtilization"].is_number()
}

/// A v2 `MetricTarget` from v1's `target*` fields.
fn target_from_v1(value: Option<Value>, average: Option<Value>, util: Option<Value>) -> Value {
    if let Some(u) = util {
        json!({"type": "Utilization", "averageUtilization": u})
    } else if let Some(a) = average {
        json!({"type": "AverageValue", "averageValue": a})
    } else if let Some(v) = value {
        json!({"type": "Value", "value": v})
    } else {
        json!({})
    }
}

fn metric_id(name: Option<Value>, selector: Option<Value>) -> Value {
    let mut m = Map::new();
    put(&mut m, "name", name);
    put(&mut m, "selector", selector);
    Value::Object(m)
}

/// v1 `MetricSpec` (annotation shape) → v2 `MetricSpec`.
pub fn metric_spec_v1_to_v2(m: &Value) -> Value {
    let t = m["type"].clone();
    let mut out = Map::new();
    out.insert("type".into(), t.clone());
    match t.as_str().unwrap_or_default() {
        "Resource" | "ContainerResource" => {
            let key = if t == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let s = &m[key];
            let mut r = Map::new();
            put(&mut r, "name", get(s, "name"));
            put(&mut r, "container", get(s, "container"));
            r.insert(
                "target".into(),
                target_from_v1(
                    None,
                    get(s, "targetAverageValue"),
                    get(s, "targetAverageUtilization"),
                ),
            );
            out.insert(key.into(), Value::Object(r));
        }
        "Pods" => {
            let s = &m["pods"];
            out.insert(
                "pods".into(),
                json!({
                    "metric": metric_id(get(s, "metricName"), get(s, "selector")),
                    "target": target_from_v1(None, get(s, "targetAverageValue"), None),
                }),
            );
        }
        "Object" => {
            let s = &m["object"];
            out.insert(
                "object".into(),
                json!({
                    "describedObject": s.get("target").cloned().unwrap_or(json!({})),
                    "metric": metric_id(get(s, "metricName"), get(s, "selector")),
                    "target": target_from_v1(get(s, "targetValue"), get(s, "averageValue"), None),
                }),
            );
        }
        "External" => {
            let s = &m["external"];
            out.insert(
                "external".into(),
                json!({
                    "metric": metric_id(get(s, "metricName"), get(s, "metricSelector")),
                    "target": target_from_v1(get(s, "targetValue"), get(s, "targetAverageValue"), None),
                }),
            );
        }
        _ => {}
    }
    Value::Object(out)
}

/// v2 `MetricSpec` → v1 `MetricSpec` (annotation shape).
pub fn metric_spec_v2_to_v1(m: &Value) -> Value {
    let t = m["type"].clone();
    let mut out = Map::new();
    out.insert("type".into(), t.clone());
    match t.as_str().unwrap_or_default() {
        "Resource" | "ContainerResource" => {
            let key = if t == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let s = &m[key];
            let mut r = Map::new();
            put(&mut r, "name", get(s, "name"));
            put(&mut r, "container", get(s, "container"));
            put(
                &mut r,
                "targetAverageUtilization",
                get(&s["target"], "averageUtilization"),
            );
            put(
                &mut r,
                "targetAverageValue",
                get(&s["target"], "averageValue"),
            );
            out.insert(key.into(), Value::Object(r));
        }
        "Pods" => {
            let s = &m["pods"];
            let mut r = Map::new();
            put(&mut r, "metricName", get(&s["metric"], "name"));
            put(&mut r, "selector", get(&s["metric"], "selector"));
            put(
                &mut r,
                "targetAverageValue",
                get(&s["target"], "averageValue"),
            );
            out.insert("pods".into(), Value::Object(r));
        }
        "Object" => {
            let s = &m["object"];
            let mut r = Map::new();
            put(&mut r, "target", get(s, "describedObject"));
            put(&mut r, "metricName", get(&s["metric"], "name"));
            put(&mut r, "selector", get(&s["metric"], "selector"));
            put(&mut r, "targetValue", get(&s["target"], "value"));
            put(&mut r, "averageValue", get(&s["target"], "averageValue"));
            out.insert("object".into(), Value::Object(r));
        }
        "External" => {
            let s = &m["external"];
            let mut r = Map::new();
            put(&mut r, "metricName", get(&s["metric"], "name"));
            put(&mut r, "metricSelector", get(&s["metric"], "selector"));
            put(&mut r, "targetValue", get(&s["target"], "value"));
            put(
                &mut r,
                "targetAverageValue",
                get(&s["target"], "averageValue"),
            );
            out.insert("external".into(), Value::Object(r));
        }
        _ => {}
    }
    Value::Object(out)
}

/// v1 `MetricStatus` (annotation shape) → v2 `MetricStatus`.
pub fn metric_status_v1_to_v2(m: &Value) -> Value {
    let t = m["type"].clone();
    let mut out = Map::new();
    out.insert("type".into(), t.clone());
    let current = |value: Option<Value>, average: Option<Value>, util: Option<Value>| {
        let mut c = Map::new();
        put(&mut c, "value", value);
        put(&mut c, "averageValue", average);
        put(&mut c, "averageUtilization", util);
        Value::Object(c)
    };
    match t.as_str().unwrap_or_default() {
        "Resource" | "ContainerResource" => {
            let key = if t == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let s = &m[key];
            let mut r = Map::new();
            put(&mut r, "name", get(s, "name"));
            put(&mut r, "container", get(s, "container"));
            r.insert(
                "current".into(),
                current(
                    None,
                    get(s, "currentAverageValue"),
                    get(s, "currentAverageUtilization"),
                ),
            );
            out.insert(key.into(), Value::Object(r));
        }
        "Pods" => {
            let s = &m["pods"];
            out.insert(
                "pods".into(),
                json!({
                    "metric": metric_id(get(s, "metricName"), get(s, "selector")),
                    "current": current(None, get(s, "currentAverageValue"), None),
                }),
            );
        }
        "Object" => {
            let s = &m["object"];
            out.insert(
                "object".into(),
                json!({
                    "describedObject": s.get("target").cloned().unwrap_or(json!({})),
                    "metric": metric_id(get(s, "metricName"), get(s, "selector")),
                    "current": current(get(s, "currentValue"), get(s, "averageValue"), None),
                }),
            );
        }
        "External" => {
            let s = &m["external"];
            out.insert(
                "external".into(),
                json!({
                    "metric": metric_id(get(s, "metricName"), get(s, "metricSelector")),
                    "current": current(get(s, "currentValue"), get(s, "currentAverageValue"), None),
                }),
            );
        }
        _ => {}
    }
    Value::Object(out)
}

/// v2 `MetricStatus` → v1 `MetricStatus` (annotation shape).
pub fn metric_status_v2_to_v1(m: &Value) -> Value {
    let t = m["type"].clone();
    let mut out = Map::new();
    out.insert("type".into(), t.clone());
    match t.as_str().unwrap_or_default() {
        "Resource" | "ContainerResource" => {
            let key = if t == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let s = &m[key];
            let mut r = Map::new();
            put(&mut r, "name", get(s, "name"));
            put(&mut r, "container", get(s, "container"));
            put(
                &mut r,
                "currentAverageUtilization",
                get(&s["current"], "averageUtilization"),
            );
            put(
                &mut r,
                "currentAverageValue",
                get(&s["current"], "averageValue"),
            );
            out.insert(key.into(), Value::Object(r));
        }
        "Pods" => {
            let s = &m["pods"];
            let mut r = Map::new();
            put(&mut r, "metricName", get(&s["metric"], "name"));
            put(&mut r, "selector", get(&s["metric"], "selector"));
            put(
                &mut r,
                "currentAverageValue",
                get(&s["current"], "averageValue"),
            );
            out.insert("pods".into(), Value::Object(r));
        }
        "Object" => {
            let s = &m["object"];
            let mut r = Map::new();
            put(&mut r, "target", get(s, "describedObject"));
            put(&mut r, "metricName", get(&s["metric"], "name"));
            put(&mut r, "selector", get(&s["metric"], "selector"));
            put(&mut r, "currentValue", get(&s["current"], "value"));
            put(&mut r, "averageValue", get(&s["current"], "averageValue"));
            out.insert("object".into(), Value::Object(r));
        }
        "External" => {
            let s = &m["external"];
            let mut r = Map::new();
            put(&mut r, "metricName", get(&s["metric"], "name"));
            put(&mut r, "metricSelector", get(&s["metric"], "selector"));
            put(&mut r, "currentValue", get(&s["current"], "value"));
            put(
                &mut r,
                "currentAverageValue",
                get(&s["current"], "averageValue"),
            );
            out.insert("external".into(), Value::Object(r));
        }
        _ => {}
    }
    Value::Object(out)
}

fn annotations_mut(obj: &mut Value) -> &mut Map<String, Value> {
    let meta = obj_mut(obj).entry("metadata").or_insert_with(|| json!({}));
    obj_mut(meta)
        .entry("annotations")
        .or_insert_with(|| json!({}));
    obj_mut(&mut meta["annotations"])
}

fn take_annotation(obj: &mut Value, key: &str) -> Option<Value> {
    let meta = obj.get_mut("metadata")?.as_object_mut()?;
    let ann = meta.get_mut("annotations")?.as_object_mut()?;
    let v = ann.remove(key);
    if ann.is_empty() {
        meta.remove("annotations");
    }
    v.and_then(|s| serde_json::from_str(s.as_str()?).ok())
}

/// An `autoscaling/v2` object (the stored shape) as `autoscaling/v1` serves it.
pub fn v2_to_v1(obj: &Value) -> Value {
    let mut out = obj.clone();
    let m = obj_mut(&mut out);
    m.insert("apiVersion".into(), json!("autoscaling/v1"));
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let mut s = Map::new();
    put(&mut s, "scaleTargetRef", get(&spec, "scaleTargetRef"));
    put(&mut s, "minReplicas", get(&spec, "minReplicas"));
    put(&mut s, "maxReplicas", get(&spec, "maxReplicas"));
    let metrics = spec["metrics"].as_array().cloned().unwrap_or_default();
    put(
        &mut s,
        "targetCPUUtilizationPercentage",
        metrics
            .iter()
            .find(|m| is_cpu_utilization(m))
            .map(|m| m["resource"]["target"]["averageUtilization"].clone()),
    );
    let other: Vec<Value> = metrics
        .iter()
        .filter(|m| !is_cpu_utilization(m))
        .map(metric_spec_v2_to_v1)
        .collect();
    m.insert("spec".into(), Value::Object(s));
    let status = obj.get("status").cloned();
    let mut current_other = Vec::new();
    let mut conditions = None;
    if let Some(st) = &status {
        let mut o = Map::new();
        for k in [
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ] {
            put(&mut o, k, get(st, k));
        }
        let current = st["currentMetrics"].as_array().cloned().unwrap_or_default();
        put(
            &mut o,
            "currentCPUUtilizationPercentage",
            current
                .iter()
                .find(|m| is_cpu_current_utilization(m))
                .map(|m| m["resource"]["current"]["averageUtilization"].clone()),
        );
        current_other = current
            .iter()
            .filter(|m| !is_cpu_current_utilization(m))
            .map(metric_status_v2_to_v1)
            .collect();
        conditions = st["conditions"]
            .as_array()
            .filter(|c| !c.is_empty())
            .cloned();
        // v1 requires currentReplicas/desiredReplicas.
        o.entry("currentReplicas").or_insert(json!(0));
        o.entry("desiredReplicas").or_insert(json!(0));
        m.insert("status".into(), Value::Object(o));
    }
    let enc = |v: &Value| Value::String(v.to_string());
    let mut ann: Vec<(&str, Value)> = Vec::new();
    if !other.is_empty() {
        ann.push((METRICS_ANNOTATION, enc(&Value::Array(other))));
    }
    if !current_other.is_empty() {
        ann.push((
            CURRENT_METRICS_ANNOTATION,
            enc(&Value::Array(current_other)),
        ));
    }
    if let Some(c) = conditions {
        ann.push((CONDITIONS_ANNOTATION, enc(&Value::Array(c))));
    }
    if let Some(b) = get(&spec, "behavior") {
        ann.push((BEHAVIOR_ANNOTATION, enc(&b)));
    }
    if !ann.is_empty() {
        let a = annotations_mut(&mut out);
        for (k, v) in ann {
            a.insert(k.into(), v);
        }
    }
    out
}

/// An `autoscaling/v1` object in the stored `autoscaling/v2` shape (the annotations that carry
/// v2-only fields are consumed), with the v2 defaults.
pub fn v1_to_v2(obj: &Value) -> Value {
    let mut out = obj.clone();
    let other = take_annotation(&mut out, METRICS_ANNOTATION);
    let current_other = take_annotation(&mut out, CURRENT_METRICS_ANNOTATION);
    let conditions = take_annotation(&mut out, CONDITIONS_ANNOTATION);
    let behavior = take_annotation(&mut out, BEHAVIOR_ANNOTATION);
    let m = obj_mut(&mut out);
    m.insert("apiVersion".into(), json!("autoscaling/v2"));
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let mut s = Map::new();
    put(&mut s, "scaleTargetRef", get(&spec, "scaleTargetRef"));
    put(&mut s, "minReplicas", get(&spec, "minReplicas"));
    put(&mut s, "maxReplicas", get(&spec, "maxReplicas"));
    let mut metrics: Vec<Value> = other
        .as_ref()
        .and_then(Value::as_array)
        .map(|a| a.iter().map(metric_spec_v1_to_v2).collect())
        .unwrap_or_default();
    if let Some(cpu) = get(&spec, "targetCPUUtilizationPercentage") {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": cpu}}}));
    }
    if !metrics.is_empty() {
        s.insert("metrics".into(), Value::Array(metrics));
    }
    put(&mut s, "behavior", behavior);
    m.insert("spec".into(), Value::Object(s));
    if let Some(st) = obj.get("status").filter(|s| s.is_object()) {
        let mut o = Map::new();
        for k in [
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ] {
            put(&mut o, k, get(st, k));
        }
        let mut current: Vec<Value> = current_other
            .as_ref()
            .and_then(Value::as_array)
            .map(|a| a.iter().map(metric_status_v1_to_v2).collect())
            .unwrap_or_default();
        if let Some(cpu) = get(st, "currentCPUUtilizationPercentage") {
            current.push(json!({"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": cpu}}}));
        }
        if !current.is_empty() {
            o.insert("currentMetrics".into(), Value::Array(current));
        }
        put(&mut o, "conditions", conditions);
        m.insert("status".into(), Value::Object(o));
    }
    default_v2(&mut out);
    out
}

/// Upstream's defaults: `minReplicas` 1 (both versions); in v2 also the 80% CPU utilization
/// metric when none is named and, when `behavior` is given, its unset rules filled with the
/// default scale-up (0 s window; 4 pods or 100% per 15 s, the larger) and scale-down (100% per
/// 15 s; the window stays unset: the controller's 300 s) rules.
pub fn apply_defaults(version: &str, obj: &mut Value) {
    if version == "v2" {
        default_v2(obj);
    } else if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.entry("minReplicas").or_insert(json!(1));
    }
}

fn default_v2(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.entry("minReplicas").or_insert(json!(1));
    if spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(|m| m.is_empty())
    {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]),
        );
    }
    if let Some(b) = spec.get_mut("behavior").and_then(Value::as_object_mut) {
        let up = b.entry("scaleUp").or_insert(json!({}));
        let up = obj_mut(up);
        up.entry("stabilizationWindowSeconds").or_insert(json!(0));
        up.entry("selectPolicy").or_insert(json!("Max"));
        up.entry("policies").or_insert(json!([
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ]));
        let down = b.entry("scaleDown").or_insert(json!({}));
        let down = obj_mut(down);
        down.entry("selectPolicy").or_insert(json!("Max"));
        down.entry("policies")
            .or_insert(json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]));
    }
}

fn quantity(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "<unknown>".into(),
    }
}

/// The TARGETS cell of `kubectl get hpa` for a v2 object (upstream's `formatHPAMetrics`):
/// `cpu: 12%/50%`, `<unknown>` for a value not measured yet, at most two metrics then
/// `+ N more...`, `<none>` without metrics.
pub fn format_targets(obj: &Value) -> String {
    let specs = obj["spec"]["metrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if specs.is_empty() {
        return "<none>".into();
    }
    let statuses = obj["status"]["currentMetrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let status = |i: usize, key: &str| statuses.get(i).map(|s| &s[key]).filter(|s| s.is_object());
    let unknown = || "<unknown>".to_string();
    let mut list = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let t = spec["type"].as_str().unwrap_or_default();
        let cell = match t {
            "External" | "Object" => {
                let key = if t == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = &spec[key]["target"];
                if let Some(avg) = target.get("averageValue").filter(|v| !v.is_null()) {
                    let cur = status(i, key)
                        .and_then(|s| s["current"].get("averageValue"))
                        .filter(|v| !v.is_null())
                        .map(quantity)
                        .unwrap_or_else(unknown);
                    format!("{cur}/{} (avg)", quantity(avg))
                } else {
                    let cur = status(i, key)
                        .map(|s| quantity(&s["current"]["value"]))
                        .unwrap_or_else(unknown);
                    format!("{cur}/{}", quantity(&target["value"]))
                }
            }
            "Pods" => {
                let cur = status(i, "pods")
                    .map(|s| quantity(&s["current"]["averageValue"]))
                    .unwrap_or_else(unknown);
                format!(
                    "{cur}/{}",
                    quantity(&spec["pods"]["target"]["averageValue"])
                )
            }
            "Resource" | "ContainerResource" => {
                let key = if t == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let name = spec[key]["name"].as_str().unwrap_or_default();
                let target = &spec[key]["target"];
                if let Some(avg) = target.get("averageValue").filter(|v| !v.is_null()) {
                    let cur = status(i, key)
                        .map(|s| quantity(&s["current"]["averageValue"]))
                        .unwrap_or_else(unknown);
                    format!("{name}: {cur}/{}", quantity(avg))
                } else {
                    let cur = status(i, key)
                        .and_then(|s| s["current"]["averageUtilization"].as_i64())
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(unknown);
                    let target = target["averageUtilization"]
                        .as_i64()
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<auto>".into());
                    format!("{name}: {cur}/{target}")
                }
            }
            _ => "<unknown type>".into(),
        };
        list.push(cell);
    }
    let count = list.len();
    if count > 2 {
        list.truncate(2);
        return format!("{} + {} more...", list.join(", "), count - 2);
    }
    list.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1_autoscale() -> Value {
        // What `kubectl autoscale deployment web --cpu-percent=50 --min=1 --max=10` sends to v1.
        json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 10, "targetCPUUtilizationPercentage": 50}})
    }

    #[test]
    fn v1_cpu_target_is_a_v2_utilization_metric_and_back() {
        let v2 = v1_to_v2(&v1_autoscale());
        assert_eq!(v2["apiVersion"], "autoscaling/v2");
        assert_eq!(
            v2["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}])
        );
        assert!(v2["metadata"].get("annotations").is_none());
        assert_eq!(v2_to_v1(&v2), v1_autoscale());
    }

    #[test]
    fn v1_without_target_gets_the_default_cpu_metric() {
        let mut v1 = v1_autoscale();
        v1["spec"]
            .as_object_mut()
            .unwrap()
            .remove("targetCPUUtilizationPercentage");
        v1["spec"].as_object_mut().unwrap().remove("minReplicas");
        let v2 = v1_to_v2(&v1);
        assert_eq!(v2["spec"]["minReplicas"], 1);
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert_eq!(v2_to_v1(&v2)["spec"]["targetCPUUtilizationPercentage"], 80);
    }

    #[test]
    fn v2_only_fields_travel_in_v1_annotations() {
        let v2 = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "annotations": {"keep": "me"}},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 5,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
                    {"type": "Object", "object": {"describedObject": {"kind": "Ingress", "name": "main"}, "metric": {"name": "rps"}, "target": {"type": "Value", "value": "2k"}}},
                    {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "30"}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
            "status": {"currentReplicas": 2, "desiredReplicas": 3,
                "currentMetrics": [
                    {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "50Mi"}}},
                    {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 70, "averageValue": "140m"}}}],
                "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"}]}});
        let v1 = v2_to_v1(&v2);
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 70);
        let ann = &v1["metadata"]["annotations"];
        assert_eq!(ann["keep"], "me");
        let metrics: Value =
            serde_json::from_str(ann[METRICS_ANNOTATION].as_str().unwrap()).unwrap();
        assert_eq!(
            metrics,
            json!([
                {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}},
                {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "10"}},
                {"type": "Object", "object": {"target": {"kind": "Ingress", "name": "main"}, "metricName": "rps", "targetValue": "2k"}},
                {"type": "External", "external": {"metricName": "queue", "targetAverageValue": "30"}}])
        );
        let current: Value =
            serde_json::from_str(ann[CURRENT_METRICS_ANNOTATION].as_str().unwrap()).unwrap();
        assert_eq!(
            current,
            json!([{"type": "Resource", "resource": {"name": "memory", "currentAverageValue": "50Mi"}}])
        );
        assert!(ann[CONDITIONS_ANNOTATION]
            .as_str()
            .unwrap()
            .contains("ReadyForNewScale"));
        assert_eq!(
            ann[BEHAVIOR_ANNOTATION],
            r#"{"scaleDown":{"stabilizationWindowSeconds":60}}"#
        );
        // Back to v2: the other metrics first, then the CPU one (upstream's order); the CPU
        // current value keeps only its utilization (all v1 can say); behavior gets defaults.
        let back = v1_to_v2(&v1);
        assert_eq!(back["metadata"]["annotations"], json!({"keep": "me"}));
        let names: Vec<String> = back["spec"]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            ["Resource", "Pods", "Object", "External", "Resource"]
        );
        assert_eq!(back["spec"]["metrics"][3], v2["spec"]["metrics"][4]);
        assert_eq!(back["spec"]["metrics"][2], v2["spec"]["metrics"][3]);
        assert_eq!(
            back["status"]["currentMetrics"][1]["resource"]["current"],
            json!({"averageUtilization": 70})
        );
        assert_eq!(back["status"]["conditions"], v2["status"]["conditions"]);
        assert_eq!(
            back["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
            60
        );
        assert_eq!(
            back["spec"]["behavior"]["scaleUp"]["policies"][0],
            json!({"type": "Pods", "value": 4, "periodSeconds": 15})
        );
    }

    #[test]
    fn validation_like_upstream() {
        let errors = |obj: &Value| -> Vec<String> {
            let res = crate::registry::find_kind(
                obj["apiVersion"].as_str().unwrap(),
                "HorizontalPodAutoscaler",
            )
            .unwrap();
            crate::validation::validate_create(res, obj)
                .iter()
                .map(|c| c.error_string())
                .collect()
        };
        assert!(errors(&v1_autoscale()).is_empty());
        let mut bad = v1_autoscale();
        bad["spec"]["minReplicas"] = json!(0);
        bad["spec"]["maxReplicas"] = json!(0);
        bad["spec"]["targetCPUUtilizationPercentage"] = json!(0);
        bad["spec"]["scaleTargetRef"]["name"] = json!("a/b");
        assert_eq!(
            errors(&bad),
            [
                "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
                "spec.maxReplicas: Invalid value: 0: must be greater than 0",
                "spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'",
                "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
            ]
        );
        let v2 = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "namespace": "ns"}, "spec": {"scaleTargetRef": {"name": "d"}, "minReplicas": 3, "maxReplicas": 2,
            "metrics": [{"type": "Pods"}, {"type": "Nope"}, {"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "AverageValue", "averageValue": "-1"}}}]}});
        assert_eq!(
            errors(&v2),
            [
                "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
                "spec.scaleTargetRef.kind: Required value",
                "spec.metrics[0].pods: Required value: must populate information for the given metric source",
                "spec.metrics[1].type: Unsupported value: \"Nope\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\"",
                "spec.metrics[2].resource.target.averageValue: Invalid value: \"-1\": must be positive",
            ]
        );
    }

    #[test]
    fn targets_cell_like_upstream() {
        let mut v2 = v1_to_v2(&v1_autoscale());
        assert_eq!(format_targets(&v2), "cpu: <unknown>/50%");
        v2["status"] = json!({"currentMetrics": [{"type": "Resource",
            "resource": {"name": "cpu", "current": {"averageUtilization": 12}}}]});
        assert_eq!(format_targets(&v2), "cpu: 12%/50%");
        v2["spec"]["metrics"] = json!([
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
            {"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "3"}}}]);
        v2["status"] = json!({});
        assert_eq!(
            format_targets(&v2),
            "memory: <unknown>/100Mi, <unknown>/10 + 1 more..."
        );
        v2["spec"]["metrics"] = json!([]);
        assert_eq!(format_targets(&v2), "<none>");
    }
}
