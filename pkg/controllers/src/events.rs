//! Recording core/v1 Events about objects (what `kubectl describe` shows), as upstream's
//! event recorder does: one Event per occurrence, a repeat of the same reason and message on
//! the same object within the hour bumps `count` and `lastTimestamp` instead.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use std::collections::HashMap;
use std::sync::Mutex;

/// (object uid, reason, message).
type SeenKey = (String, String, String);
/// (event namespace, event name, count).
type SeenEvent = (String, String, i32);

/// Records events on behalf of one component (e.g. `replicaset-controller`).
pub struct Recorder {
    client: kube::Client,
    component: String,
    /// (object uid, reason, message) → (event namespace, event name, count)
    seen: Mutex<HashMap<SeenKey, SeenEvent>>,
}

impl Recorder {
    pub fn new(client: kube::Client, component: &str) -> Self {
        Recorder {
            client,
            component: component.to_string(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records `Normal`/`Warning` `reason`: `message` about `obj`. Failures are logged, never fatal.
    pub async fn record<K>(&self, obj: &K, event_type: &str, reason: &str, message: &str)
    where
        K: Resource<DynamicType = ()>,
    {
        let reference = ObjectReference {
            api_version: Some(K::api_version(&()).to_string()),
            kind: Some(K::kind(&()).to_string()),
            name: Some(obj.name_any()),
            namespace: obj.namespace(),
            uid: obj.uid(),
            resource_version: obj.resource_version(),
            field_path: None,
        };
        self.record_ref(reference, event_type, reason, message)
            .await
    }

    /// Records an event about an object reference.
    pub async fn record_ref(
        &self,
        reference: ObjectReference,
        event_type: &str,
        reason: &str,
        message: &str,
    ) {
        let ns = reference
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let key = (
            reference.uid.clone().unwrap_or_default(),
            reason.to_string(),
            message.to_string(),
        );
        let existing = self.seen.lock().ok().and_then(|m| m.get(&key).cloned());
        if let Some((ens, ename, count)) = existing {
            let patch = serde_json::json!({"count": count + 1, "lastTimestamp": now});
            let api: Api<Event> = Api::namespaced(self.client.clone(), &ens);
            if api
                .patch(&ename, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                if let Ok(mut m) = self.seen.lock() {
                    m.insert(key, (ens, ename, count + 1));
                }
                return;
            }
        }
        let name = format!(
            "{}.{:x}",
            reference.name.clone().unwrap_or_default(),
            rand::random::<u64>() & 0xffff_ffff_ffff
        );
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: reference,
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(event_type.to_string()),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.component.clone()),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &ev).await {
            Ok(_) => {
                if let Ok(mut m) = self.seen.lock() {
                    if m.len() > 10_000 {
                        m.clear();
                    }
                    m.insert(key, (ns, name, 1));
                }
            }
            Err(e) => tracing::debug!(error = %e, reason, "recording an event failed"),
        }
    }
}
