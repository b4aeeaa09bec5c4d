//! core/v1 Events the kubelet records about pods (Scheduled excepted): a non-blocking recorder
//! that creates an Event once and bumps `count`/`lastTimestamp` on repeats, like upstream's
//! event correlator.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::mpsc;

/// How many events may wait for the API before new ones are dropped (logged).
const QUEUE: usize = 1024;
/// How many distinct (object, reason, message) keys the recorder remembers.
const CACHE: usize = 4096;

/// An Event's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One event to record.
#[derive(Debug, Clone)]
struct Pending {
    object: ObjectReference,
    kind: EventType,
    reason: String,
    message: String,
    at: Timestamp,
}

/// Records kubelet events; cheap to clone, never blocks the caller.
#[derive(Clone, Debug)]
pub struct Recorder {
    tx: mpsc::Sender<Pending>,
}

/// The reference to `pod` (and optionally one of its containers) an Event points at.
pub fn pod_reference(pod: &Pod, field_path: Option<&str>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: field_path.map(str::to_string),
    }
}

/// The key under which repeats are counted (upstream `getEventKey` without the source).
fn event_key(p: &Pending) -> String {
    let o = &p.object;
    [
        o.kind.as_deref().unwrap_or_default(),
        o.namespace.as_deref().unwrap_or_default(),
        o.name.as_deref().unwrap_or_default(),
        o.uid.as_deref().unwrap_or_default(),
        o.field_path.as_deref().unwrap_or_default(),
        p.kind.as_str(),
        &p.reason,
        &p.message,
    ]
    .join("\u{1f}")
}

/// The Event first recorded for `p` on `node`, named `<object>.<hex nanoseconds>`.
fn new_event(p: &Pending, node: &str) -> Event {
    let nanos = p.at.as_nanosecond();
    Event {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}.{:x}",
                p.object.name.as_deref().unwrap_or("unknown"),
                nanos
            )),
            namespace: Some(
                p.object
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into()),
            ),
            ..Default::default()
        },
        involved_object: p.object.clone(),
        reason: Some(p.reason.clone()),
        message: Some(p.message.clone()),
        source: Some(EventSource {
            component: Some("kubelet".into()),
            host: Some(node.to_string()),
        }),
        first_timestamp: Some(Time(p.at)),
        last_timestamp: Some(Time(p.at)),
        count: Some(1),
        type_: Some(p.kind.as_str().to_string()),
        reporting_component: Some("kubelet".into()),
        reporting_instance: Some(node.to_string()),
        ..Default::default()
    }
}

/// The merge patch for the `count`-th occurrence.
fn repeat_patch(count: i32, at: Timestamp) -> serde_json::Value {
    serde_json::json!({
        "count": count,
        "lastTimestamp": Time(at),
    })
}

impl Recorder {
    /// Starts the recorder's writer task (needs a tokio runtime).
    pub fn new(client: kube::Client, node_name: &str) -> Recorder {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(client, node_name.to_string(), rx));
        Recorder { tx }
    }

    /// Records an event about `pod` (or its container at `field_path`, e.g.
    /// `spec.containers{web}`); dropped with a log line when the queue is full.
    pub fn pod(
        &self,
        pod: &Pod,
        field_path: Option<&str>,
        kind: EventType,
        reason: &str,
        message: &str,
    ) {
        self.object(pod_reference(pod, field_path), kind, reason, message);
    }

    /// Records an event about any object.
    pub fn object(&self, object: ObjectReference, kind: EventType, reason: &str, message: &str) {
        let p = Pending {
            object,
            kind,
            reason: reason.to_string(),
            message: message.to_string(),
            at: Timestamp::now(),
        };
        if let Err(e) = self.tx.try_send(p) {
            let p = match &e {
                mpsc::error::TrySendError::Full(p) | mpsc::error::TrySendError::Closed(p) => p,
            };
            tracing::warn!(reason = %p.reason, message = %p.message, "event dropped: the event queue is full or closed");
        }
    }
}

/// Writes queued events one at a time, remembering each key's event name and count.
async fn writer(client: kube::Client, node: String, mut rx: mpsc::Receiver<Pending>) {
    let mut seen: HashMap<String, (String, i32)> = HashMap::new();
    while let Some(p) = rx.recv().await {
        let ns = p
            .object
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(client.clone(), &ns);
        let key = event_key(&p);
        if let Some((name, count)) = seen.get(&key).cloned() {
            let patch = repeat_patch(count + 1, p.at);
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    seen.insert(key, (name, count + 1));
                    continue;
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    tracing::warn!(event = %name, error = %e, "cannot update event");
                    continue;
                }
            }
        }
        let ev = new_event(&p, &node);
        let name = ev.metadata.name.clone().unwrap_or_default();
        match api.create(&PostParams::default(), &ev).await {
            Ok(_) => {
                if seen.len() >= CACHE {
                    seen.clear();
                }
                seen.insert(key, (name, 1));
            }
            Err(e) => {
                tracing::warn!(event = %name, reason = %p.reason, error = %e, "cannot create event")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns1", "uid": "u-1", "resourceVersion": "7"},
            "spec": {"containers": []}
        }))
        .unwrap()
    }

    fn pending(reason: &str, message: &str, field: Option<&str>) -> Pending {
        Pending {
            object: pod_reference(&pod(), field),
            kind: EventType::Warning,
            reason: reason.into(),
            message: message.into(),
            at: Timestamp::new(1_700_000_000, 5).unwrap(),
        }
    }

    #[test]
    fn new_events_carry_kubelet_source_and_reference() {
        let ev = new_event(
            &pending(
                "Unhealthy",
                "Liveness probe failed: x",
                Some("spec.containers{c}"),
            ),
            "n1",
        );
        assert_eq!(ev.metadata.name.as_deref(), Some("web.17979cfe362a0005"));
        assert_eq!(ev.metadata.namespace.as_deref(), Some("ns1"));
        let o = &ev.involved_object;
        assert_eq!(
            (
                o.kind.as_deref(),
                o.uid.as_deref(),
                o.resource_version.as_deref()
            ),
            (Some("Pod"), Some("u-1"), Some("7"))
        );
        assert_eq!(o.field_path.as_deref(), Some("spec.containers{c}"));
        assert_eq!(ev.source.as_ref().unwrap().host.as_deref(), Some("n1"));
        assert_eq!(ev.reporting_instance.as_deref(), Some("n1"));
        assert_eq!(ev.reporting_component.as_deref(), Some("kubelet"));
        assert_eq!((ev.count, ev.type_.as_deref()), (Some(1), Some("Warning")));
    }

    #[test]
    fn repeats_share_a_key_only_when_everything_matches() {
        let a = event_key(&pending("Pulled", "m", None));
        assert_eq!(a, event_key(&pending("Pulled", "m", None)));
        assert_ne!(a, event_key(&pending("Pulled", "m2", None)));
        assert_ne!(
            a,
            event_key(&pending("Pulled", "m", Some("spec.containers{c}")))
        );
        let p = repeat_patch(3, Timestamp::new(1_700_000_000, 0).unwrap());
        assert_eq!(
            p,
            serde_json::json!({"count": 3, "lastTimestamp": "2023-11-14T22:13:20Z"})
        );
    }
}
