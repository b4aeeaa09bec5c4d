//! Pure construction of the pod statuses a simulated kubelet reports: Running (containers
//! started and ready), terminated (Succeeded/Failed, for sim Jobs and for deleted pods), and
//! the `skiff.io/sim-*` annotations that make a pod exit.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

/// Annotation: the exit code a simulated pod's containers exit with (only for pods whose
/// `restartPolicy` is `Never` or `OnFailure`); without it pods run until deleted.
pub const EXIT_CODE_ANNOTATION: &str = "skiff.io/sim-exit-code";
/// Annotation: how long (seconds, fractions allowed; default 0) a simulated pod with
/// [`EXIT_CODE_ANNOTATION`] runs before its containers exit.
pub const RUN_SECONDS_ANNOTATION: &str = "skiff.io/sim-run-seconds";

/// How a simulated pod ends on its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimExit {
    pub code: i32,
    pub after: Duration,
}

/// Reads the sim exit annotations. `Ok(None)` when the pod runs until deleted (no annotation,
/// or `restartPolicy: Always`); an error message when an annotation does not parse.
pub fn sim_exit(
    annotations: Option<&BTreeMap<String, String>>,
    spec: &Value,
) -> Result<Option<SimExit>, String> {
    let Some(code) = annotations.and_then(|a| a.get(EXIT_CODE_ANNOTATION)) else {
        return Ok(None);
    };
    let policy = spec
        .get("restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if policy == "Always" {
        return Ok(None);
    }
    let code: i32 = code.trim().parse().map_err(|_| {
        format!("annotation {EXIT_CODE_ANNOTATION}={code:?} is not an integer exit code")
    })?;
    let after = match annotations.and_then(|a| a.get(RUN_SECONDS_ANNOTATION)) {
        None => Duration::ZERO,
        Some(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e9)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                format!(
                    "annotation {RUN_SECONDS_ANNOTATION}={s:?} is not a non-negative number of seconds"
                )
            })?,
    };
    Ok(Some(SimExit { code, after }))
}

/// RFC 3339 at second precision, as `metav1.Time` is serialized.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// RFC 3339 with microseconds, as `metav1.MicroTime` (lease renew times) is serialized.
pub fn micro_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Where and when a simulated pod runs.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub pod_ip: Ipv4Addr,
    pub host_ip: Ipv4Addr,
    /// When the containers started.
    pub started: DateTime<Utc>,
}

/// A stable fake container id (`sim://<16 hex>`) for a pod uid and container name.
pub fn container_id(pod_uid: &str, container: &str) -> String {
    // FNV-1a 64: stable across restarts, so a re-adopted pod keeps its ids.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in pod_uid.bytes().chain([0u8]).chain(container.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("sim://{h:016x}")
}

fn containers<'a>(spec: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    spec.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A condition; keeps the previous `lastTransitionTime` when the status did not change.
/// (`lastProbeTime: null` is left out: in a strategic merge patch null deletes.)
fn condition(
    old_status: &Value,
    kind: &str,
    status: bool,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Value {
    let status_s = if status { "True" } else { "False" };
    let previous = old_status
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| str_of(c, "type") == kind);
    let since = previous
        .filter(|c| str_of(c, "status") == status_s)
        .and_then(|c| c.get("lastTransitionTime"))
        .filter(|t| t.is_string())
        .cloned()
        .unwrap_or_else(|| Value::String(timestamp(now)));
    let mut c = Map::new();
    c.insert("type".into(), json!(kind));
    c.insert("status".into(), json!(status_s));
    c.insert("lastTransitionTime".into(), since);
    if let Some(r) = reason {
        c.insert("reason".into(), json!(r));
    }
    Value::Object(c)
}

fn image_fields(c: &Value) -> (String, String) {
    let image = str_of(c, "image").to_string();
    let id = format!("sim://{image}");
    (image, id)
}

fn running_container(uid: &str, c: &Value, started: &str) -> Value {
    let name = str_of(c, "name");
    let (image, image_id) = image_fields(c);
    json!({
        "name": name,
        "state": {"running": {"startedAt": started}},
        "lastState": {},
        "ready": true,
        "restartCount": 0,
        "image": image,
        "imageID": image_id,
        "containerID": container_id(uid, name),
        "started": true,
    })
}

fn terminated_container(uid: &str, c: &Value, code: i32, started: &str, finished: &str) -> Value {
    let name = str_of(c, "name");
    let (image, image_id) = image_fields(c);
    let cid = container_id(uid, name);
    json!({
        "name": name,
        "state": {"terminated": {
            "exitCode": code,
            "reason": if code == 0 { "Completed" } else { "Error" },
            "startedAt": started,
            "finishedAt": finished,
            "containerID": cid,
        }},
        "lastState": {},
        "ready": false,
        "restartCount": 0,
        "image": image,
        "imageID": image_id,
        "containerID": cid,
        "started": false,
    })
}

fn is_sidecar(c: &Value) -> bool {
    str_of(c, "restartPolicy") == "Always"
}

/// Whether every `spec.readinessGates` condition is True in the current status.
fn readiness_gates_pass(spec: &Value, old_status: &Value) -> bool {
    containers(spec, "readinessGates").all(|g| {
        let kind = str_of(g, "conditionType");
        old_status
            .get("conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| str_of(c, "type") == kind && str_of(c, "status") == "True")
    })
}

fn addresses(status: &mut Map<String, Value>, info: &RunInfo) {
    status.insert("hostIP".into(), json!(info.host_ip.to_string()));
    status.insert("hostIPs".into(), json!([{"ip": info.host_ip.to_string()}]));
    status.insert("podIP".into(), json!(info.pod_ip.to_string()));
    status.insert("podIPs".into(), json!([{"ip": info.pod_ip.to_string()}]));
}

fn start_time(old_status: &Value, info: &RunInfo) -> Value {
    old_status
        .get("startTime")
        .filter(|t| t.is_string())
        .cloned()
        .unwrap_or_else(|| json!(timestamp(info.started)))
}

/// The status of a pod whose containers all run: phase Running, addresses, container
/// statuses (init containers completed, sidecars running) and the five pod conditions.
pub fn running_status(
    uid: &str,
    spec: &Value,
    old_status: &Value,
    info: &RunInfo,
    now: DateTime<Utc>,
) -> Value {
    let started = timestamp(info.started);
    let ready = readiness_gates_pass(spec, old_status);
    let mut st = Map::new();
    st.insert("phase".into(), json!("Running"));
    st.insert(
        "conditions".into(),
        json!([
            condition(old_status, "PodReadyToStartContainers", true, None, now),
            condition(old_status, "Initialized", true, None, now),
            condition(
                old_status,
                "Ready",
                ready,
                (!ready).then_some("ReadinessGatesNotReady"),
                now
            ),
            condition(old_status, "ContainersReady", true, None, now),
            condition(old_status, "PodScheduled", true, None, now),
        ]),
    );
    addresses(&mut st, info);
    st.insert("startTime".into(), start_time(old_status, info));
    let inits: Vec<Value> = containers(spec, "initContainers")
        .map(|c| {
            if is_sidecar(c) {
                running_container(uid, c, &started)
            } else {
                terminated_container(uid, c, 0, &started, &started)
            }
        })
        .collect();
    if !inits.is_empty() {
        st.insert("initContainerStatuses".into(), Value::Array(inits));
    }
    st.insert(
        "containerStatuses".into(),
        Value::Array(
            containers(spec, "containers")
                .map(|c| running_container(uid, c, &started))
                .collect(),
        ),
    );
    Value::Object(st)
}

/// The status of a pod whose containers all exited with `code` at `now`: phase Succeeded
/// (code 0) or Failed, containers terminated, Ready/ContainersReady False (`PodCompleted`).
pub fn terminated_status(
    uid: &str,
    spec: &Value,
    old_status: &Value,
    info: &RunInfo,
    code: i32,
    now: DateTime<Utc>,
) -> Value {
    let started = timestamp(info.started);
    let finished = timestamp(now);
    let mut st = Map::new();
    st.insert(
        "phase".into(),
        json!(if code == 0 { "Succeeded" } else { "Failed" }),
    );
    st.insert(
        "conditions".into(),
        json!([
            condition(old_status, "PodReadyToStartContainers", false, None, now),
            condition(old_status, "Initialized", true, Some("PodCompleted"), now),
            condition(old_status, "Ready", false, Some("PodCompleted"), now),
            condition(
                old_status,
                "ContainersReady",
                false,
                Some("PodCompleted"),
                now
            ),
            condition(old_status, "PodScheduled", true, None, now),
        ]),
    );
    addresses(&mut st, info);
    st.insert("startTime".into(), start_time(old_status, info));
    let inits: Vec<Value> = containers(spec, "initContainers")
        .map(|c| {
            let finish = if is_sidecar(c) { &finished } else { &started };
            terminated_container(uid, c, 0, &started, finish)
        })
        .collect();
    if !inits.is_empty() {
        st.insert("initContainerStatuses".into(), Value::Array(inits));
    }
    st.insert(
        "containerStatuses".into(),
        Value::Array(
            containers(spec, "containers")
                .map(|c| terminated_container(uid, c, code, &started, &finished))
                .collect(),
        ),
    );
    Value::Object(st)
}

/// What a pod's current status says about a previous run of it on this node (for re-adoption
/// after an agent restart).
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// Not started yet (Pending, or Running elsewhere / without an IP of ours).
    NotStarted,
    /// Running with this IP, started at this time.
    Running {
        pod_ip: Ipv4Addr,
        started: Option<DateTime<Utc>>,
    },
    /// Succeeded or Failed: nothing left to do but honour deletion.
    Terminal,
}

/// Classifies the current pod status as seen by the node whose host IP is `host_ip`.
pub fn observe(status: &Value, host_ip: Ipv4Addr) -> Observed {
    match str_of(status, "phase") {
        "Succeeded" | "Failed" => return Observed::Terminal,
        "Running" => {}
        _ => return Observed::NotStarted,
    }
    let pod_ip = str_of(status, "podIP").parse::<Ipv4Addr>().ok();
    let ours = str_of(status, "hostIP").parse::<Ipv4Addr>().ok() == Some(host_ip);
    match pod_ip {
        Some(pod_ip) if ours => Observed::Running {
            pod_ip,
            started: status
                .get("startTime")
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc)),
        },
        _ => Observed::NotStarted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn info() -> RunInfo {
        RunInfo {
            pod_ip: "10.42.1.5".parse().unwrap(),
            host_ip: "127.0.0.1".parse().unwrap(),
            started: t("2025-01-02T03:04:05Z"),
        }
    }

    fn spec() -> Value {
        json!({
            "restartPolicy": "Always",
            "initContainers": [
                {"name": "setup", "image": "busybox:1"},
                {"name": "proxy", "image": "envoy:2", "restartPolicy": "Always"}
            ],
            "containers": [
                {"name": "web", "image": "web:v1"},
                {"name": "log", "image": "log:v3"}
            ]
        })
    }

    fn cond<'a>(st: &'a Value, kind: &str) -> &'a Value {
        st["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == kind)
            .unwrap()
    }

    #[test]
    fn running_status_has_everything_kubectl_reads() {
        let now = t("2025-01-02T03:04:06Z");
        let old = json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}
        ]});
        let st = running_status("uid-1", &spec(), &old, &info(), now);
        assert_eq!(st["phase"], "Running");
        assert_eq!(st["podIP"], "10.42.1.5");
        assert_eq!(st["podIPs"], json!([{"ip": "10.42.1.5"}]));
        assert_eq!(st["hostIP"], "127.0.0.1");
        assert_eq!(st["hostIPs"], json!([{"ip": "127.0.0.1"}]));
        assert_eq!(st["startTime"], "2025-01-02T03:04:05Z");
        for kind in [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
        ] {
            assert_eq!(cond(&st, kind)["status"], "True", "{kind}");
        }
        assert_eq!(
            cond(&st, "PodScheduled")["lastTransitionTime"],
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            cond(&st, "Ready")["lastTransitionTime"],
            "2025-01-02T03:04:06Z"
        );
        let cs = st["containerStatuses"].as_array().unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0]["name"], "web");
        assert_eq!(cs[0]["ready"], true);
        assert_eq!(cs[0]["started"], true);
        assert_eq!(cs[0]["restartCount"], 0);
        assert_eq!(cs[0]["image"], "web:v1");
        assert_eq!(cs[0]["imageID"], "sim://web:v1");
        assert_eq!(
            cs[0]["state"]["running"]["startedAt"],
            "2025-01-02T03:04:05Z"
        );
        assert!(cs[0]["containerID"].as_str().unwrap().starts_with("sim://"));
        assert_ne!(cs[0]["containerID"], cs[1]["containerID"]);
        let inits = st["initContainerStatuses"].as_array().unwrap();
        assert_eq!(inits[0]["state"]["terminated"]["reason"], "Completed");
        assert_eq!(inits[0]["state"]["terminated"]["exitCode"], 0);
        assert_eq!(
            inits[1]["state"]["running"]["startedAt"],
            "2025-01-02T03:04:05Z"
        );
    }

    #[test]
    fn existing_start_time_and_transition_times_are_kept() {
        let old = json!({"phase": "Running", "startTime": "2024-12-31T00:00:00Z", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2024-12-31T00:00:01Z"}
        ]});
        let st = running_status("u", &spec(), &old, &info(), t("2025-01-02T00:00:00Z"));
        assert_eq!(st["startTime"], "2024-12-31T00:00:00Z");
        assert_eq!(
            cond(&st, "Ready")["lastTransitionTime"],
            "2024-12-31T00:00:01Z"
        );
    }

    #[test]
    fn readiness_gates_hold_ready_back() {
        let mut s = spec();
        s["readinessGates"] = json!([{"conditionType": "example.com/lb"}]);
        let st = running_status("u", &s, &json!({}), &info(), t("2025-01-02T00:00:00Z"));
        assert_eq!(cond(&st, "Ready")["status"], "False");
        assert_eq!(cond(&st, "Ready")["reason"], "ReadinessGatesNotReady");
        assert_eq!(cond(&st, "ContainersReady")["status"], "True");
        let old = json!({"conditions": [{"type": "example.com/lb", "status": "True"}]});
        let st = running_status("u", &s, &old, &info(), t("2025-01-02T00:00:00Z"));
        assert_eq!(cond(&st, "Ready")["status"], "True");
    }

    #[test]
    fn terminated_status_reports_the_exit_code() {
        let now = t("2025-01-02T03:05:00Z");
        let st = terminated_status("u", &spec(), &json!({}), &info(), 3, now);
        assert_eq!(st["phase"], "Failed");
        let c = &st["containerStatuses"][0];
        assert_eq!(c["ready"], false);
        assert_eq!(c["state"]["terminated"]["exitCode"], 3);
        assert_eq!(c["state"]["terminated"]["reason"], "Error");
        assert_eq!(
            c["state"]["terminated"]["finishedAt"],
            "2025-01-02T03:05:00Z"
        );
        assert_eq!(cond(&st, "Ready")["status"], "False");
        assert_eq!(cond(&st, "Ready")["reason"], "PodCompleted");
        let ok = terminated_status("u", &spec(), &json!({}), &info(), 0, now);
        assert_eq!(ok["phase"], "Succeeded");
        assert_eq!(
            ok["containerStatuses"][1]["state"]["terminated"]["reason"],
            "Completed"
        );
    }

    #[test]
    fn sim_exit_annotations() {
        let mut a = BTreeMap::new();
        let never = json!({"restartPolicy": "Never"});
        assert_eq!(sim_exit(None, &never), Ok(None));
        assert_eq!(sim_exit(Some(&a), &never), Ok(None));
        a.insert(EXIT_CODE_ANNOTATION.to_string(), "0".to_string());
        assert_eq!(
            sim_exit(Some(&a), &never),
            Ok(Some(SimExit {
                code: 0,
                after: Duration::ZERO
            }))
        );
        a.insert(RUN_SECONDS_ANNOTATION.to_string(), "1.5".to_string());
        a.insert(EXIT_CODE_ANNOTATION.to_string(), "2".to_string());
        let on_failure = json!({"restartPolicy": "OnFailure"});
        assert_eq!(
            sim_exit(Some(&a), &on_failure),
            Ok(Some(SimExit {
                code: 2,
                after: Duration::from_millis(1500)
            }))
        );
        assert_eq!(sim_exit(Some(&a), &json!({})), Ok(None));
        assert_eq!(
            sim_exit(Some(&a), &json!({"restartPolicy": "Always"})),
            Ok(None)
        );
        a.insert(RUN_SECONDS_ANNOTATION.to_string(), "-1".to_string());
        assert!(sim_exit(Some(&a), &never).is_err());
        a.insert(RUN_SECONDS_ANNOTATION.to_string(), "1".to_string());
        a.insert(EXIT_CODE_ANNOTATION.to_string(), "x".to_string());
        assert!(sim_exit(Some(&a), &never).is_err());
    }

    #[test]
    fn observe_classifies_for_readoption() {
        let host: Ipv4Addr = "127.0.0.1".parse().unwrap();
        assert_eq!(observe(&json!({}), host), Observed::NotStarted);
        assert_eq!(
            observe(&json!({"phase": "Pending"}), host),
            Observed::NotStarted
        );
        assert_eq!(
            observe(&json!({"phase": "Failed"}), host),
            Observed::Terminal
        );
        assert_eq!(
            observe(
                &json!({"phase": "Running", "podIP": "10.42.0.9", "hostIP": "127.0.0.1",
                        "startTime": "2025-01-02T03:04:05Z"}),
                host
            ),
            Observed::Running {
                pod_ip: "10.42.0.9".parse().unwrap(),
                started: Some(t("2025-01-02T03:04:05Z"))
            }
        );
        assert_eq!(
            observe(
                &json!({"phase": "Running", "podIP": "10.42.0.9", "hostIP": "127.0.0.2"}),
                host
            ),
            Observed::NotStarted
        );
    }

    #[test]
    fn container_ids_are_stable_and_distinct() {
        assert_eq!(container_id("a", "b"), container_id("a", "b"));
        assert_ne!(container_id("a", "b"), container_id("a", "c"));
        assert_ne!(container_id("ab", ""), container_id("a", "b"));
        assert_eq!(container_id("a", "b").len(), "sim://".len() + 16);
    }
}
