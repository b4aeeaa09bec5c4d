//! core/v1 Events the scheduler records about pods (`Scheduled`, `FailedScheduling`), from
//! component `default-scheduler`, and the `PodScheduled=False` status condition it sets on
//! pods that fit nowhere.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};

/// The component name events carry (`source.component`, `reportingComponent`).
pub const COMPONENT: &str = "default-scheduler";

/// Where a recorded event lives, so a repeat can bump its count instead of adding one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub name: String,
    pub namespace: String,
    pub message: String,
    pub count: i32,
}

fn reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_string()),
        kind: Some("Pod".to_string()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: None,
    }
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Records `event_type` `reason`: `message` about `pod`. When `previous` is the same message,
/// its count and lastTimestamp are bumped instead (what `kubectl describe` shows as `x3 over`).
/// Failures are logged, never fatal.
pub async fn record(
    client: &kube::Client,
    pod: &Pod,
    event_type: &str,
    reason: &str,
    action: &str,
    message: &str,
    previous: Option<&Recorded>,
) -> Option<Recorded> {
    let ns = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let ts = now();
    if let Some(prev) = previous.filter(|p| p.message == message) {
        let api: Api<Event> = Api::namespaced(client.clone(), &prev.namespace);
        let patch = serde_json::json!({"count": prev.count + 1, "lastTimestamp": ts});
        match api
            .patch(&prev.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                return Some(Recorded {
                    count: prev.count + 1,
                    ..prev.clone()
                })
            }
            Err(e) => tracing::debug!(error = %e, "bumping an event failed, creating a new one"),
        }
    }
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let nanos = ts.0.as_nanosecond();
    let name = format!("{pod_name}.{nanos:x}");
    let ev = Event {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        involved_object: reference(pod),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        type_: Some(event_type.to_string()),
        action: Some(action.to_string()),
        count: Some(1),
        first_timestamp: Some(ts.clone()),
        last_timestamp: Some(ts),
        source: Some(EventSource {
            component: Some(COMPONENT.to_string()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.to_string()),
        reporting_instance: Some(COMPONENT.to_string()),
        ..Default::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    match api.create(&PostParams::default(), &ev).await {
        Ok(_) => Some(Recorded {
            name,
            namespace: ns,
            message: message.to_string(),
            count: 1,
        }),
        Err(e) => {
            tracing::debug!(error = %e, reason, "recording an event failed");
            None
        }
    }
}

/// The pod's current `PodScheduled` condition as (status, reason, message, lastTransitionTime).
fn current_condition(pod: &Pod) -> Option<(String, String, String, Option<Time>)> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled")
        .map(|c| {
            (
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
                c.last_transition_time.clone(),
            )
        })
}

/// The status patch setting `PodScheduled=False` with `reason` and `message`, or `None` when
/// the pod already says exactly that.
pub fn unschedulable_condition_patch(
    pod: &Pod,
    reason: &str,
    message: &str,
) -> Option<serde_json::Value> {
    let cur = current_condition(pod);
    if let Some((s, r, m, _)) = &cur {
        if s == "False" && r == reason && m == message {
            return None;
        }
    }
    let transition = match cur {
        Some((s, _, _, Some(t))) if s == "False" => t,
        _ => now(),
    };
    Some(serde_json::json!({
        "status": {
            "conditions": [{
                "type": "PodScheduled",
                "status": "False",
                "reason": reason,
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": transition,
            }]
        }
    }))
}

/// Applies `unschedulable_condition_patch` through the status subresource.
pub async fn set_unschedulable(client: &kube::Client, pod: &Pod, reason: &str, message: &str) {
    let Some(patch) = unschedulable_condition_patch(pod, reason, message) else {
        return;
    };
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    if let Err(e) = api
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        tracing::debug!(error = %e, pod = name, "setting PodScheduled=False failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(conditions: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"conditions": conditions}
        }))
        .unwrap()
    }

    #[test]
    fn condition_patch_sets_unschedulable() {
        let p = pod(serde_json::json!([]));
        let patch =
            unschedulable_condition_patch(&p, "Unschedulable", "0/1 nodes are available").unwrap();
        let c = &patch["status"]["conditions"][0];
        assert_eq!(c["type"], "PodScheduled");
        assert_eq!(c["status"], "False");
        assert_eq!(c["reason"], "Unschedulable");
        assert_eq!(c["message"], "0/1 nodes are available");
        assert!(c["lastTransitionTime"].is_string());
    }

    #[test]
    fn condition_patch_skips_when_unchanged_and_keeps_transition_time() {
        let p = pod(serde_json::json!([{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "old", "lastTransitionTime": "2024-01-01T00:00:00Z"
        }]));
        assert!(unschedulable_condition_patch(&p, "Unschedulable", "old").is_none());
        let patch = unschedulable_condition_patch(&p, "Unschedulable", "new").unwrap();
        assert_eq!(
            patch["status"]["conditions"][0]["lastTransitionTime"],
            "2024-01-01T00:00:00Z"
        );
    }
}
