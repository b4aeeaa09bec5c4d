//! What every controller shares besides the scaffold (`crate::controller`): the one work-queue
//! key type ([`ObjectKey`]), owner-reference helpers, API error helpers, a mutex lock that
//! survives poisoning, and the submodules for pod facts (`podutil`), expectations and pod
//! creation/deletion with events (`pod_control`) and ControllerRevisions (`history`) —
//! upstream's `pkg/controller` helpers.

pub mod expectations;
pub mod history;
pub mod pod_control;
pub mod podutil;
pub mod workload;

pub use expectations::Expectations;
pub use pod_control::PodControl;
pub use workload::Workload;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::Resource;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The work-queue key of an object: its namespace (empty for cluster-scoped kinds) and name.
/// Shown as `namespace/name` (just `name` when cluster-scoped).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of a cluster-scoped object (or of a namespace, by its name).
    pub fn cluster(name: impl Into<String>) -> Self {
        ObjectKey::new("", name)
    }

    /// Parses `namespace/name` (a string without `/` is a cluster-scoped name).
    pub fn parse(s: &str) -> Self {
        let (ns, name) = s.split_once('/').unwrap_or(("", s));
        ObjectKey::new(ns, name)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// A namespaced kind the controllers write.
pub trait NamespacedKind:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + serde::de::DeserializeOwned
    + fmt::Debug
{
}

impl<K> NamespacedKind for K where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + fmt::Debug
{
}

/// The key of an object.
pub fn key_of<K: Resource>(obj: &K) -> ObjectKey {
    let m = obj.meta();
    ObjectKey::new(
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

/// The controlling owner reference of an object, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// Whether `meta` is controlled by the object with this uid.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// The key of the object's controller when that controller is a `kind` (same namespace).
pub fn owner_key(meta: &ObjectMeta, kind: &str) -> Option<ObjectKey> {
    let r = controller_of(meta).filter(|r| r.kind == kind)?;
    Some(ObjectKey::new(
        meta.namespace.clone().unwrap_or_default(),
        r.name.clone(),
    ))
}

/// A controller owner reference (`controller: true, blockOwnerDeletion: true`) to an owner
/// (empty name/uid when the owner has none, which only a test object lacks).
pub fn controller_ref(api_version: &str, kind: &str, owner: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: owner.name.clone().unwrap_or_default(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The keys of the objects in namespace `ns` whose non-empty label selector selects `labels`
/// (upstream's lookup of the controllers an orphan could belong to).
pub fn selecting<K: Resource>(
    store: &crate::informer::Store<K>,
    ns: &str,
    labels: Option<&std::collections::BTreeMap<String, String>>,
    selector: impl Fn(&K) -> Option<&LabelSelector>,
) -> Vec<ObjectKey> {
    let selects = |o: &K| {
        selector(o)
            .is_some_and(|s| !podutil::selector_is_empty(s) && podutil::selector_matches(s, labels))
    };
    store
        .list_filter(ns, selects)
        .iter()
        .map(|o| key_of(o.as_ref()))
        .collect()
}

/// The controller owner reference to `owner`, with its kind's apiVersion and kind.
pub fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    controller_ref(&K::api_version(&()), &K::kind(&()), owner.meta())
}

/// A reference to `obj` (apiVersion and kind of its type, namespace, name, uid,
/// resourceVersion), as `status.active` and `spec.claimRef` carry.
pub fn object_ref<K: Resource<DynamicType = ()>>(
    obj: &K,
) -> k8s_openapi::api::core::v1::ObjectReference {
    let m = obj.meta();
    k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(K::api_version(&()).to_string()),
        kind: Some(K::kind(&()).to_string()),
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        resource_version: m.resource_version.clone(),
        field_path: None,
    }
}

/// The metadata of an object `owner` creates from a template's metadata (upstream
/// `GetPodFromTemplate`): the template's labels, annotations and finalizers, the owner's
/// namespace and the controller reference to it. Names are for the caller to set.
pub fn child_meta<K: Resource<DynamicType = ()>>(
    owner: &K,
    template: Option<&ObjectMeta>,
) -> ObjectMeta {
    let t = template.cloned().unwrap_or_default();
    ObjectMeta {
        namespace: owner.meta().namespace.clone(),
        labels: t.labels,
        annotations: t.annotations,
        finalizers: t.finalizers,
        owner_references: Some(vec![owner_ref(owner)]),
        ..Default::default()
    }
}

/// A list for a merge patch: `null` (remove the field) when empty.
pub fn list_or_null<T: serde::Serialize>(items: &[T]) -> serde_json::Value {
    if items.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!(items)
    }
}

/// The message of an API error as upstream prints it (the Status message), else the error.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// Whether the API answered 404 Not Found.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// A write's result with 404 Not Found taken as "already gone" (`Ok(None)`).
pub fn ignore_not_found<T>(r: Result<T, kube::Error>) -> Result<Option<T>, kube::Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Merge-patches the status subresource of the namespaced `obj` with `status` (an object gone
/// meanwhile is no error).
pub async fn patch_status<K: NamespacedKind>(
    client: &kube::Client,
    obj: &K,
    status: serde_json::Value,
) -> Result<(), kube::Error> {
    let m = obj.meta();
    let api: kube::Api<K> =
        kube::Api::namespaced(client.clone(), m.namespace.as_deref().unwrap_or(""));
    let patch = serde_json::json!({ "status": status });
    let name = m.name.as_deref().unwrap_or("");
    let pp = kube::api::PatchParams::default();
    ignore_not_found(
        api.patch_status(name, &pp, &kube::api::Patch::Merge(&patch))
            .await,
    )?;
    Ok(())
}

/// Locks `m`, recovering the guard when a thread panicked while holding it: the controllers'
/// maps are updated in single statements, so the data is consistent, and answering from it
/// beats both crashing the manager and pretending the map is empty (which made expectations
/// report satisfied). The poisoning is logged.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
        .unwrap_or_else(|e: PoisonError<MutexGuard<'_, T>>| {
            tracing::error!("a controller lock was poisoned by a panic; continuing with its data");
            e.into_inner()
        })
}

/// Poisons `m` (a thread panics while holding it), for tests of the recovery.
#[cfg(test)]
pub(crate) fn poison<T: Send>(m: &Mutex<T>) {
    std::thread::scope(|s| {
        let held = s.spawn(|| {
            let _guard = m.lock();
            panic!("poisoned on purpose");
        });
        assert!(held.join().is_err());
    });
    assert!(m.is_poisoned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_and_parse() {
        let k = ObjectKey::new("ns", "a");
        assert_eq!(k.to_string(), "ns/a");
        assert_eq!(ObjectKey::parse("ns/a"), k);
        assert_eq!(ObjectKey::cluster("node-1").to_string(), "node-1");
        assert_eq!(ObjectKey::parse("node-1"), ObjectKey::cluster("node-1"));
    }

    #[test]
    fn owner_keys_need_the_kind() {
        let owner = ObjectMeta {
            name: Some("web".into()),
            uid: Some("u1".into()),
            ..Default::default()
        };
        let child = ObjectMeta {
            namespace: Some("ns".into()),
            owner_references: Some(vec![controller_ref("apps/v1", "DaemonSet", &owner)]),
            ..Default::default()
        };
        assert_eq!(
            owner_key(&child, "DaemonSet"),
            Some(ObjectKey::new("ns", "web"))
        );
        assert_eq!(owner_key(&child, "Job"), None);
        assert!(is_controlled_by(&child, "u1"));
        assert!(!is_controlled_by(&child, "u2"));
    }

    #[test]
    fn lock_recovers_a_poisoned_mutex() {
        let m = Mutex::new(vec![1]);
        poison(&m);
        lock(&m).push(2);
        assert_eq!(*lock(&m), vec![1, 2]);
    }
}
