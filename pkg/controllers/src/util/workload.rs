//! The context a pod-owning workload controller (DaemonSet, StatefulSet, Job) starts from:
//! the client, the caches of its kind and of pods, its expectations and its pod control, and
//! the first step of every sync — load the object and the pods it controls, and wait while the
//! cache has not shown the controller's own creates and deletes yet.

use super::{is_controlled_by, Expectations, ObjectKey, PodControl};
use crate::controller::Kind;
use crate::informer::{Factory, Store};
use k8s_openapi::api::core::v1::Pod;
use std::sync::Arc;

/// The shared part of a workload controller's context.
pub struct Workload<K> {
    pub client: kube::Client,
    /// The cache of the controller's own kind.
    pub objects: Arc<Store<K>>,
    pub pods: Arc<Store<Pod>>,
    pub exp: Expectations,
    pub control: PodControl,
}

impl<K: Kind> Workload<K> {
    /// The context of the controller whose events come from `component`.
    pub fn new(factory: &Factory, component: &str) -> Self {
        Workload {
            client: factory.client(),
            objects: factory.store::<K>(),
            pods: factory.store::<Pod>(),
            exp: Expectations::default(),
            control: PodControl::new(factory.client(), component),
        }
    }

    /// The object of `key` and the pods it controls that `filter` keeps, when the object
    /// exists and the cache shows every create and delete expected for it. A gone object's
    /// expectations are dropped.
    pub fn load(
        &self,
        key: &ObjectKey,
        filter: impl Fn(&Pod) -> bool,
    ) -> Option<(Arc<K>, Vec<Arc<Pod>>)> {
        let Some(obj) = self.objects.get(&key.namespace, &key.name) else {
            self.exp.forget(key);
            return None;
        };
        let uid = obj.meta().uid.clone().unwrap_or_default();
        let pods = self.pods.list_filter(&key.namespace, |p| {
            filter(p) && is_controlled_by(&p.metadata, &uid)
        });
        self.exp
            .satisfied_by_pods(key, &pods)
            .then_some((obj, pods))
    }
}
