//! Patch metadata of the built-in kinds: the struct graph and each field's strategic-merge
//! strategy, merge key, list type and map keys, as declared in the upstream Go types
//! (`patchStrategy`/`patchMergeKey` tags and `+listType`/`+listMapKey`/`+structType`/`+mapType`
//! markers of k8s.io/api v0.32). Used by strategic merge patch, server-side apply and OpenAPI.

use std::collections::HashMap;
use std::sync::OnceLock;

/// How strategic merge patch treats a field: `strategy` is upstream's `patchStrategy` tag
/// (`"merge"`, `"retainKeys"`, `"merge,retainKeys"` or `"replace"`), `merge_key` its
/// `patchMergeKey` (absent for lists of primitives and for non-list fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListStrategy {
    pub strategy: &'static str,
    pub merge_key: Option<&'static str>,
}

impl ListStrategy {
    /// Whether list items are merged (rather than the list replaced).
    pub fn merges(&self) -> bool {
        self.strategy.split(',').any(|s| s == "merge")
    }

    /// Whether the field honours `$retainKeys`.
    pub fn retains_keys(&self) -> bool {
        self.strategy.split(',').any(|s| s == "retainKeys")
    }
}

/// The server-side apply topology of a list (`x-kubernetes-list-type`); `Map` carries the
/// `x-kubernetes-list-map-keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    Atomic,
    Set,
    Map(&'static [&'static str]),
}

/// The JSON shape of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Struct,
    Map,
    List,
    Scalar,
}

/// Everything known about one field of one type.
#[derive(Debug, Clone, Copy)]
pub struct FieldMeta {
    /// OpenAPI name of the type holding the field.
    pub owner: &'static str,
    /// JSON name of the field.
    pub field: &'static str,
    pub shape: Shape,
    /// For struct fields, lists and maps: the OpenAPI name of the (element) struct type, if
    /// that type carries any patch metadata itself ("" otherwise).
    elem: &'static str,
    patch_strategy: &'static str,
    merge_key: &'static str,
    list_type: &'static str,
    list_map_keys: &'static [&'static str],
    /// `+mapType=atomic`: the whole map is one value.
    pub map_atomic: bool,
}

impl FieldMeta {
    /// The element struct type of this field, when known.
    pub fn elem(&self) -> Option<&'static str> {
        non_empty(self.elem)
    }

    /// The strategic-merge strategy of this field, when it has one.
    pub fn strategy(&self) -> Option<ListStrategy> {
        non_empty(self.patch_strategy).map(|strategy| ListStrategy {
            strategy,
            merge_key: non_empty(self.merge_key),
        })
    }

    /// The server-side apply list type of this field (lists only).
    pub fn list_type(&self) -> Option<ListType> {
        if self.shape != Shape::List {
            return None;
        }
        match self.list_type {
            "map" if !self.list_map_keys.is_empty() => Some(ListType::Map(self.list_map_keys)),
            "set" => Some(ListType::Set),
            "atomic" => Some(ListType::Atomic),
            _ => None,
        }
    }
}

fn non_empty(s: &'static str) -> Option<&'static str> {
    (!s.is_empty()).then_some(s)
}

const NONE: &str = "";
const LT_MAP: &str = "map";
const LT_SET: &str = "set";
const LT_ATOMIC: &str = "atomic";
use Shape::{List, Map, Struct};

#[allow(clippy::too_many_arguments)]
const fn m(
    owner: &'static str,
    field: &'static str,
    shape: Shape,
    elem: &'static str,
    patch_strategy: &'static str,
    merge_key: &'static str,
    list_type: &'static str,
    list_map_keys: &'static [&'static str],
    map_atomic: bool,
) -> FieldMeta {
    FieldMeta {
        owner,
        field,
        shape,
        elem,
        patch_strategy,
        merge_key,
        list_type,
        list_map_keys,
        map_atomic,
    }
}

/// The OpenAPI definition name of a type of a given package.
macro_rules! t {
    (core, $n:literal) => {
        concat!("io.k8s.api.core.v1.", $n)
    };
    (apps, $n:literal) => {
        concat!("io.k8s.api.apps.v1.", $n)
    };
    (batch, $n:literal) => {
        concat!("io.k8s.api.batch.v1.", $n)
    };
    (autoscaling, $n:literal) => {
        concat!("io.k8s.api.autoscaling.v1.", $n)
    };
    (authentication, $n:literal) => {
        concat!("io.k8s.api.authentication.v1.", $n)
    };
    (authorization, $n:literal) => {
        concat!("io.k8s.api.authorization.v1.", $n)
    };
    (coordination, $n:literal) => {
        concat!("io.k8s.api.coordination.v1.", $n)
    };
    (discovery, $n:literal) => {
        concat!("io.k8s.api.discovery.v1.", $n)
    };
    (events, $n:literal) => {
        concat!("io.k8s.api.events.v1.", $n)
    };
    (networking, $n:literal) => {
        concat!("io.k8s.api.networking.v1.", $n)
    };
    (policy, $n:literal) => {
        concat!("io.k8s.api.policy.v1.", $n)
    };
    (rbac, $n:literal) => {
        concat!("io.k8s.api.rbac.v1.", $n)
    };
    (scheduling, $n:literal) => {
        concat!("io.k8s.api.scheduling.v1.", $n)
    };
    (storage, $n:literal) => {
        concat!("io.k8s.api.storage.v1.", $n)
    };
    (meta, $n:literal) => {
        concat!("io.k8s.apimachinery.pkg.apis.meta.v1.", $n)
    };
}

/// The fields with patch metadata, and the struct-typed fields leading to them.
#[rustfmt::skip]
static FIELDS: &[FieldMeta] = &[
    m("io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration", "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m("io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration", "webhooks", List, NONE, "merge", "name", LT_MAP, &["name"], false),
    m("io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration", "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m("io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration", "webhooks", List, NONE, "merge", "name", LT_MAP, &["name"], false),
    m("io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicy", "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m("io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyBinding", "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "ControllerRevision"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "DaemonSet"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "DaemonSet"), "spec", Struct, t!(apps, "DaemonSetSpec"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "DaemonSet"), "status", Struct, t!(apps, "DaemonSetStatus"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "DaemonSetSpec"), "selector", Struct, t!(meta, "LabelSelector"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "DaemonSetSpec"), "template", Struct, t!(core, "PodTemplateSpec"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "DaemonSetStatus"), "conditions", List, NONE, "merge", "type", LT_MAP, &["type"], false),
    m(t!(apps, "Deployment"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "Deployment"), "spec", Struct, t!(apps, "DeploymentSpec"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "Deployment"), "status", Struct, t!(apps, "DeploymentStatus"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "DeploymentSpec"), "selector", Struct, t!(meta, "LabelSelector"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "DeploymentSpec"), "template", Struct, t!(core, "PodTemplateSpec"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "DeploymentSpec"), "strategy", Struct, NONE, "retainKeys", NONE, NONE, &[], false),
    m(t!(apps, "DeploymentStatus"), "conditions", List, NONE, "merge", "type", LT_MAP, &["type"], false),
    m(t!(apps, "ReplicaSet"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "ReplicaSet"), "spec", Struct, t!(apps, "ReplicaSetSpec"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "ReplicaSet"), "status", Struct, t!(apps, "ReplicaSetStatus"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "ReplicaSetSpec"), "selector", Struct, t!(meta, "LabelSelector"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "ReplicaSetSpec"), "template", Struct, t!(core, "PodTemplateSpec"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "ReplicaSetStatus"), "conditions", List, NONE, "merge", "type", LT_MAP, &["type"], false),
    m(t!(apps, "StatefulSet"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "StatefulSet"), "spec", Struct, t!(apps, "StatefulSetSpec"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "StatefulSet"), "status", Struct, t!(apps, "StatefulSetStatus"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "StatefulSetSpec"), "selector", Struct, t!(meta, "LabelSelector"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "StatefulSetSpec"), "template", Struct, t!(core, "PodTemplateSpec"), NONE, NONE, NONE, &[], false),
    m(t!(apps, "StatefulSetSpec"), "volumeClaimTemplates", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(apps, "StatefulSetStatus"), "conditions", List, NONE, "merge", "type", LT_MAP, &["type"], false),
    m(t!(authentication, "SelfSubjectReview"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(authentication, "TokenReview"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(authentication, "TokenReviewSpec"), "audiences", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(authentication, "TokenReviewStatus"), "audiences", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(authentication, "UserInfo"), "groups", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(authorization, "FieldSelectorAttributes"), "requirements", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(authorization, "LabelSelectorAttributes"), "requirements", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(authorization, "SelfSubjectAccessReview"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(authorization, "SubjectAccessReview"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(authorization, "SubjectAccessReviewSpec"), "groups", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(autoscaling, "Scale"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(batch, "CronJob"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(batch, "CronJob"), "spec", Struct, t!(batch, "CronJobSpec"), NONE, NONE, NONE, &[], false),
    m(t!(batch, "CronJobSpec"), "jobTemplate", Struct, t!(batch, "JobTemplateSpec"), NONE, NONE, NONE, &[], false),
    m(t!(batch, "CronJobStatus"), "active", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(batch, "Job"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(batch, "Job"), "spec", Struct, t!(batch, "JobSpec"), NONE, NONE, NONE, &[], false),
    m(t!(batch, "Job"), "status", Struct, t!(batch, "JobStatus"), NONE, NONE, NONE, &[], false),
    m(t!(batch, "JobSpec"), "selector", Struct, t!(meta, "LabelSelector"), NONE, NONE, NONE, &[], false),
    m(t!(batch, "JobSpec"), "template", Struct, t!(core, "PodTemplateSpec"), NONE, NONE, NONE, &[], false),
    m(t!(batch, "JobStatus"), "conditions", List, NONE, "merge", "type", LT_ATOMIC, &[], false),
    m(t!(batch, "JobStatus"), "uncountedTerminatedPods", Struct, t!(batch, "UncountedTerminatedPods"), NONE, NONE, NONE, &[], false),
    m(t!(batch, "JobTemplateSpec"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(batch, "JobTemplateSpec"), "spec", Struct, t!(batch, "JobSpec"), NONE, NONE, NONE, &[], false),
    m(t!(batch, "PodFailurePolicy"), "rules", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(batch, "PodFailurePolicyOnExitCodesRequirement"), "values", List, NONE, NONE, NONE, LT_SET, &[], false),
    m(t!(batch, "PodFailurePolicyRule"), "onExitCodes", Struct, t!(batch, "PodFailurePolicyOnExitCodesRequirement"), NONE, NONE, NONE, &[], false),
    m(t!(batch, "PodFailurePolicyRule"), "onPodConditions", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(batch, "SuccessPolicy"), "rules", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(batch, "UncountedTerminatedPods"), "succeeded", List, NONE, NONE, NONE, LT_SET, &[], false),
    m(t!(batch, "UncountedTerminatedPods"), "failed", List, NONE, NONE, NONE, LT_SET, &[], false),
    m(t!(coordination, "Lease"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Affinity"), "nodeAffinity", Struct, t!(core, "NodeAffinity"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Binding"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Binding"), "target", Struct, t!(core, "ObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "CSIPersistentVolumeSource"), "controllerPublishSecretRef", Struct, t!(core, "SecretReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "CSIPersistentVolumeSource"), "nodeStageSecretRef", Struct, t!(core, "SecretReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "CSIPersistentVolumeSource"), "nodePublishSecretRef", Struct, t!(core, "SecretReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "CSIPersistentVolumeSource"), "controllerExpandSecretRef", Struct, t!(core, "SecretReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "CSIPersistentVolumeSource"), "nodeExpandSecretRef", Struct, t!(core, "SecretReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "CSIVolumeSource"), "nodePublishSecretRef", Struct, t!(core, "LocalObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Capabilities"), "add", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "Capabilities"), "drop", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "CephFSPersistentVolumeSource"), "monitors", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "CephFSPersistentVolumeSource"), "secretRef", Struct, t!(core, "SecretReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "CephFSVolumeSource"), "monitors", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "CephFSVolumeSource"), "secretRef", Struct, t!(core, "LocalObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "CinderPersistentVolumeSource"), "secretRef", Struct, t!(core, "SecretReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "CinderVolumeSource"), "secretRef", Struct, t!(core, "LocalObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ClusterTrustBundleProjection"), "labelSelector", Struct, t!(meta, "LabelSelector"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ConfigMap"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ConfigMapProjection"), "items", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "ConfigMapVolumeSource"), "items", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "Container"), "command", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "Container"), "args", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "Container"), "ports", List, NONE, "merge", "containerPort", LT_MAP, &["containerPort", "protocol"], false),
    m(t!(core, "Container"), "envFrom", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "Container"), "env", List, t!(core, "EnvVar"), "merge", "name", LT_MAP, &["name"], false),
    m(t!(core, "Container"), "resources", Struct, t!(core, "ResourceRequirements"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Container"), "resizePolicy", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "Container"), "volumeMounts", List, NONE, "merge", "mountPath", LT_MAP, &["mountPath"], false),
    m(t!(core, "Container"), "volumeDevices", List, NONE, "merge", "devicePath", LT_MAP, &["devicePath"], false),
    m(t!(core, "ContainerImage"), "names", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "ContainerStatus"), "resources", Struct, t!(core, "ResourceRequirements"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ContainerStatus"), "volumeMounts", List, NONE, "merge", "mountPath", LT_MAP, &["mountPath"], false),
    m(t!(core, "ContainerStatus"), "allocatedResourcesStatus", List, t!(core, "ResourceStatus"), "merge", "name", LT_MAP, &["name"], false),
    m(t!(core, "DownwardAPIProjection"), "items", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "DownwardAPIVolumeFile"), "fieldRef", Struct, t!(core, "ObjectFieldSelector"), NONE, NONE, NONE, &[], false),
    m(t!(core, "DownwardAPIVolumeFile"), "resourceFieldRef", Struct, t!(core, "ResourceFieldSelector"), NONE, NONE, NONE, &[], false),
    m(t!(core, "DownwardAPIVolumeSource"), "items", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "EndpointAddress"), "targetRef", Struct, t!(core, "ObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "EndpointSubset"), "addresses", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "EndpointSubset"), "notReadyAddresses", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "EndpointSubset"), "ports", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "Endpoints"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Endpoints"), "subsets", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "EnvVar"), "valueFrom", Struct, t!(core, "EnvVarSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "EnvVarSource"), "fieldRef", Struct, t!(core, "ObjectFieldSelector"), NONE, NONE, NONE, &[], false),
    m(t!(core, "EnvVarSource"), "resourceFieldRef", Struct, t!(core, "ResourceFieldSelector"), NONE, NONE, NONE, &[], false),
    m(t!(core, "EnvVarSource"), "configMapKeyRef", Struct, t!(core, "ConfigMapKeySelector"), NONE, NONE, NONE, &[], false),
    m(t!(core, "EnvVarSource"), "secretKeyRef", Struct, t!(core, "SecretKeySelector"), NONE, NONE, NONE, &[], false),
    m(t!(core, "EphemeralContainer"), "command", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "EphemeralContainer"), "args", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "EphemeralContainer"), "ports", List, NONE, "merge", "containerPort", LT_MAP, &["containerPort", "protocol"], false),
    m(t!(core, "EphemeralContainer"), "envFrom", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "EphemeralContainer"), "env", List, t!(core, "EnvVar"), "merge", "name", LT_MAP, &["name"], false),
    m(t!(core, "EphemeralContainer"), "resources", Struct, t!(core, "ResourceRequirements"), NONE, NONE, NONE, &[], false),
    m(t!(core, "EphemeralContainer"), "resizePolicy", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "EphemeralContainer"), "volumeMounts", List, NONE, "merge", "mountPath", LT_MAP, &["mountPath"], false),
    m(t!(core, "EphemeralContainer"), "volumeDevices", List, NONE, "merge", "devicePath", LT_MAP, &["devicePath"], false),
    m(t!(core, "EphemeralVolumeSource"), "volumeClaimTemplate", Struct, t!(core, "PersistentVolumeClaimTemplate"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Event"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Event"), "involvedObject", Struct, t!(core, "ObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Event"), "related", Struct, t!(core, "ObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ExecAction"), "command", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "FCVolumeSource"), "targetWWNs", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "FCVolumeSource"), "wwids", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "FlexPersistentVolumeSource"), "secretRef", Struct, t!(core, "SecretReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "FlexVolumeSource"), "secretRef", Struct, t!(core, "LocalObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "HTTPGetAction"), "httpHeaders", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "HostAlias"), "hostnames", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "ISCSIPersistentVolumeSource"), "portals", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "ISCSIPersistentVolumeSource"), "secretRef", Struct, t!(core, "SecretReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ISCSIVolumeSource"), "portals", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "ISCSIVolumeSource"), "secretRef", Struct, t!(core, "LocalObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "LimitRange"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "LimitRangeSpec"), "limits", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "LinuxContainerUser"), "supplementalGroups", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "LoadBalancerIngress"), "ports", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "LoadBalancerStatus"), "ingress", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "Namespace"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Namespace"), "status", Struct, t!(core, "NamespaceStatus"), NONE, NONE, NONE, &[], false),
    m(t!(core, "NamespaceSpec"), "finalizers", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "NamespaceStatus"), "conditions", List, NONE, "merge", "type", LT_MAP, &["type"], false),
    m(t!(core, "Node"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Node"), "spec", Struct, t!(core, "NodeSpec"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Node"), "status", Struct, t!(core, "NodeStatus"), NONE, NONE, NONE, &[], false),
    m(t!(core, "NodeAffinity"), "requiredDuringSchedulingIgnoredDuringExecution", Struct, t!(core, "NodeSelector"), NONE, NONE, NONE, &[], false),
    m(t!(core, "NodeAffinity"), "preferredDuringSchedulingIgnoredDuringExecution", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "NodeSelector"), "nodeSelectorTerms", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "NodeSelectorRequirement"), "values", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "NodeSelectorTerm"), "matchExpressions", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "NodeSelectorTerm"), "matchFields", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "NodeSpec"), "podCIDRs", List, NONE, "merge", NONE, LT_SET, &[], false),
    m(t!(core, "NodeSpec"), "taints", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "NodeStatus"), "conditions", List, NONE, "merge", "type", LT_MAP, &["type"], false),
    m(t!(core, "NodeStatus"), "addresses", List, NONE, "merge", "type", LT_MAP, &["type"], false),
    m(t!(core, "NodeStatus"), "images", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "NodeStatus"), "volumesInUse", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "NodeStatus"), "volumesAttached", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "NodeStatus"), "runtimeHandlers", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PersistentVolume"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolume"), "spec", Struct, t!(core, "PersistentVolumeSpec"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeClaim"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeClaim"), "spec", Struct, t!(core, "PersistentVolumeClaimSpec"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeClaim"), "status", Struct, t!(core, "PersistentVolumeClaimStatus"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeClaimSpec"), "accessModes", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PersistentVolumeClaimSpec"), "selector", Struct, t!(meta, "LabelSelector"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeClaimSpec"), "dataSource", Struct, t!(core, "TypedLocalObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeClaimStatus"), "accessModes", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PersistentVolumeClaimStatus"), "conditions", List, NONE, "merge", "type", LT_MAP, &["type"], false),
    m(t!(core, "PersistentVolumeClaimTemplate"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeClaimTemplate"), "spec", Struct, t!(core, "PersistentVolumeClaimSpec"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeSpec"), "rbd", Struct, t!(core, "RBDPersistentVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeSpec"), "iscsi", Struct, t!(core, "ISCSIPersistentVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeSpec"), "cinder", Struct, t!(core, "CinderPersistentVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeSpec"), "cephfs", Struct, t!(core, "CephFSPersistentVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeSpec"), "flexVolume", Struct, t!(core, "FlexPersistentVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeSpec"), "scaleIO", Struct, t!(core, "ScaleIOPersistentVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeSpec"), "storageos", Struct, t!(core, "StorageOSPersistentVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeSpec"), "csi", Struct, t!(core, "CSIPersistentVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeSpec"), "accessModes", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PersistentVolumeSpec"), "claimRef", Struct, t!(core, "ObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PersistentVolumeSpec"), "mountOptions", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PersistentVolumeSpec"), "nodeAffinity", Struct, t!(core, "VolumeNodeAffinity"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Pod"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Pod"), "spec", Struct, t!(core, "PodSpec"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Pod"), "status", Struct, t!(core, "PodStatus"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PodAffinity"), "requiredDuringSchedulingIgnoredDuringExecution", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodAffinity"), "preferredDuringSchedulingIgnoredDuringExecution", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodAffinityTerm"), "labelSelector", Struct, t!(meta, "LabelSelector"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PodAffinityTerm"), "namespaces", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodAffinityTerm"), "namespaceSelector", Struct, t!(meta, "LabelSelector"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PodAffinityTerm"), "matchLabelKeys", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodAffinityTerm"), "mismatchLabelKeys", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodAntiAffinity"), "requiredDuringSchedulingIgnoredDuringExecution", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodAntiAffinity"), "preferredDuringSchedulingIgnoredDuringExecution", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodDNSConfig"), "nameservers", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodDNSConfig"), "searches", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodDNSConfig"), "options", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodSecurityContext"), "supplementalGroups", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodSecurityContext"), "sysctls", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodSpec"), "volumes", List, t!(core, "Volume"), "merge,retainKeys", "name", LT_MAP, &["name"], false),
    m(t!(core, "PodSpec"), "initContainers", List, t!(core, "Container"), "merge", "name", LT_MAP, &["name"], false),
    m(t!(core, "PodSpec"), "containers", List, t!(core, "Container"), "merge", "name", LT_MAP, &["name"], false),
    m(t!(core, "PodSpec"), "ephemeralContainers", List, t!(core, "EphemeralContainer"), "merge", "name", LT_MAP, &["name"], false),
    m(t!(core, "PodSpec"), "nodeSelector", Map, NONE, NONE, NONE, NONE, &[], true),
    m(t!(core, "PodSpec"), "imagePullSecrets", List, t!(core, "LocalObjectReference"), "merge", "name", LT_MAP, &["name"], false),
    m(t!(core, "PodSpec"), "affinity", Struct, t!(core, "Affinity"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PodSpec"), "tolerations", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodSpec"), "hostAliases", List, NONE, "merge", "ip", LT_MAP, &["ip"], false),
    m(t!(core, "PodSpec"), "readinessGates", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodSpec"), "topologySpreadConstraints", List, t!(core, "TopologySpreadConstraint"), "merge", "topologyKey", LT_MAP, &["topologyKey", "whenUnsatisfiable"], false),
    m(t!(core, "PodSpec"), "schedulingGates", List, NONE, "merge", "name", LT_MAP, &["name"], false),
    m(t!(core, "PodSpec"), "resourceClaims", List, NONE, "merge,retainKeys", "name", LT_MAP, &["name"], false),
    m(t!(core, "PodSpec"), "resources", Struct, t!(core, "ResourceRequirements"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PodStatus"), "conditions", List, NONE, "merge", "type", LT_MAP, &["type"], false),
    m(t!(core, "PodStatus"), "hostIPs", List, NONE, "merge", "ip", LT_ATOMIC, &[], false),
    m(t!(core, "PodStatus"), "podIPs", List, NONE, "merge", "ip", LT_MAP, &["ip"], false),
    m(t!(core, "PodStatus"), "initContainerStatuses", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodStatus"), "containerStatuses", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodStatus"), "ephemeralContainerStatuses", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "PodStatus"), "resourceClaimStatuses", List, NONE, "merge,retainKeys", "name", LT_MAP, &["name"], false),
    m(t!(core, "PodTemplate"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PodTemplate"), "template", Struct, t!(core, "PodTemplateSpec"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PodTemplateSpec"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PodTemplateSpec"), "spec", Struct, t!(core, "PodSpec"), NONE, NONE, NONE, &[], false),
    m(t!(core, "PreferredSchedulingTerm"), "preference", Struct, t!(core, "NodeSelectorTerm"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ProjectedVolumeSource"), "sources", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "RBDPersistentVolumeSource"), "monitors", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "RBDPersistentVolumeSource"), "secretRef", Struct, t!(core, "SecretReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "RBDVolumeSource"), "monitors", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "RBDVolumeSource"), "secretRef", Struct, t!(core, "LocalObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ReplicationController"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ReplicationController"), "spec", Struct, t!(core, "ReplicationControllerSpec"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ReplicationController"), "status", Struct, t!(core, "ReplicationControllerStatus"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ReplicationControllerSpec"), "selector", Map, NONE, NONE, NONE, NONE, &[], true),
    m(t!(core, "ReplicationControllerSpec"), "template", Struct, t!(core, "PodTemplateSpec"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ReplicationControllerStatus"), "conditions", List, NONE, "merge", "type", LT_MAP, &["type"], false),
    m(t!(core, "ResourceQuota"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ResourceQuota"), "spec", Struct, t!(core, "ResourceQuotaSpec"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ResourceQuotaSpec"), "scopes", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "ResourceQuotaSpec"), "scopeSelector", Struct, t!(core, "ScopeSelector"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ResourceRequirements"), "claims", List, NONE, NONE, NONE, LT_MAP, &["name"], false),
    m(t!(core, "ResourceStatus"), "resources", List, NONE, NONE, NONE, LT_MAP, &["resourceID"], false),
    m(t!(core, "ScaleIOPersistentVolumeSource"), "secretRef", Struct, t!(core, "SecretReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ScaleIOVolumeSource"), "secretRef", Struct, t!(core, "LocalObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ScopeSelector"), "matchExpressions", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "ScopedResourceSelectorRequirement"), "values", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "Secret"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "SecretProjection"), "items", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "SecretVolumeSource"), "items", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "Service"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Service"), "spec", Struct, t!(core, "ServiceSpec"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Service"), "status", Struct, t!(core, "ServiceStatus"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ServiceAccount"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(core, "ServiceAccount"), "secrets", List, t!(core, "ObjectReference"), "merge", "name", LT_MAP, &["name"], false),
    m(t!(core, "ServiceAccount"), "imagePullSecrets", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "ServiceSpec"), "ports", List, NONE, "merge", "port", LT_MAP, &["port", "protocol"], false),
    m(t!(core, "ServiceSpec"), "selector", Map, NONE, NONE, NONE, NONE, &[], true),
    m(t!(core, "ServiceSpec"), "clusterIPs", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "ServiceSpec"), "externalIPs", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "ServiceSpec"), "loadBalancerSourceRanges", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "ServiceSpec"), "ipFamilies", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "ServiceStatus"), "conditions", List, NONE, "merge", "type", LT_MAP, &["type"], false),
    m(t!(core, "StorageOSPersistentVolumeSource"), "secretRef", Struct, t!(core, "ObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "StorageOSVolumeSource"), "secretRef", Struct, t!(core, "LocalObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(core, "TopologySelectorLabelRequirement"), "values", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "TopologySelectorTerm"), "matchLabelExpressions", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "TopologySpreadConstraint"), "labelSelector", Struct, t!(meta, "LabelSelector"), NONE, NONE, NONE, &[], false),
    m(t!(core, "TopologySpreadConstraint"), "matchLabelKeys", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(core, "Volume"), "iscsi", Struct, t!(core, "ISCSIVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Volume"), "rbd", Struct, t!(core, "RBDVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Volume"), "flexVolume", Struct, t!(core, "FlexVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Volume"), "cinder", Struct, t!(core, "CinderVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Volume"), "cephfs", Struct, t!(core, "CephFSVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Volume"), "scaleIO", Struct, t!(core, "ScaleIOVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Volume"), "storageos", Struct, t!(core, "StorageOSVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Volume"), "csi", Struct, t!(core, "CSIVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "Volume"), "ephemeral", Struct, t!(core, "EphemeralVolumeSource"), NONE, NONE, NONE, &[], false),
    m(t!(core, "VolumeNodeAffinity"), "required", Struct, t!(core, "NodeSelector"), NONE, NONE, NONE, &[], false),
    m(t!(core, "VolumeProjection"), "clusterTrustBundle", Struct, t!(core, "ClusterTrustBundleProjection"), NONE, NONE, NONE, &[], false),
    m(t!(core, "WeightedPodAffinityTerm"), "podAffinityTerm", Struct, t!(core, "PodAffinityTerm"), NONE, NONE, NONE, &[], false),
    m(t!(discovery, "Endpoint"), "addresses", List, NONE, NONE, NONE, LT_SET, &[], false),
    m(t!(discovery, "Endpoint"), "targetRef", Struct, t!(core, "ObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(discovery, "EndpointHints"), "forZones", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(discovery, "EndpointSlice"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(discovery, "EndpointSlice"), "endpoints", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(discovery, "EndpointSlice"), "ports", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(events, "Event"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(events, "Event"), "regarding", Struct, t!(core, "ObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(events, "Event"), "related", Struct, t!(core, "ObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(networking, "HTTPIngressPath"), "backend", Struct, t!(networking, "IngressBackend"), NONE, NONE, NONE, &[], false),
    m(t!(networking, "HTTPIngressRuleValue"), "paths", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(networking, "IPBlock"), "except", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(networking, "Ingress"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(networking, "Ingress"), "spec", Struct, t!(networking, "IngressSpec"), NONE, NONE, NONE, &[], false),
    m(t!(networking, "IngressBackend"), "service", Struct, t!(networking, "IngressServiceBackend"), NONE, NONE, NONE, &[], false),
    m(t!(networking, "IngressBackend"), "resource", Struct, t!(core, "TypedLocalObjectReference"), NONE, NONE, NONE, &[], false),
    m(t!(networking, "IngressClass"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(networking, "IngressLoadBalancerIngress"), "ports", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(networking, "IngressLoadBalancerStatus"), "ingress", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(networking, "IngressServiceBackend"), "port", Struct, t!(networking, "ServiceBackendPort"), NONE, NONE, NONE, &[], false),
    m(t!(networking, "IngressSpec"), "defaultBackend", Struct, t!(networking, "IngressBackend"), NONE, NONE, NONE, &[], false),
    m(t!(networking, "IngressSpec"), "tls", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(networking, "IngressSpec"), "rules", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(networking, "IngressTLS"), "hosts", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(networking, "NetworkPolicy"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(networking, "NetworkPolicy"), "spec", Struct, t!(networking, "NetworkPolicySpec"), NONE, NONE, NONE, &[], false),
    m(t!(networking, "NetworkPolicyEgressRule"), "ports", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(networking, "NetworkPolicyEgressRule"), "to", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(networking, "NetworkPolicyIngressRule"), "ports", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(networking, "NetworkPolicyIngressRule"), "from", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(networking, "NetworkPolicyPeer"), "podSelector", Struct, t!(meta, "LabelSelector"), NONE, NONE, NONE, &[], false),
    m(t!(networking, "NetworkPolicyPeer"), "namespaceSelector", Struct, t!(meta, "LabelSelector"), NONE, NONE, NONE, &[], false),
    m(t!(networking, "NetworkPolicySpec"), "podSelector", Struct, t!(meta, "LabelSelector"), NONE, NONE, NONE, &[], false),
    m(t!(networking, "NetworkPolicySpec"), "ingress", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(networking, "NetworkPolicySpec"), "egress", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(networking, "NetworkPolicySpec"), "policyTypes", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(policy, "PodDisruptionBudget"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(policy, "PodDisruptionBudget"), "spec", Struct, t!(policy, "PodDisruptionBudgetSpec"), NONE, NONE, NONE, &[], false),
    m(t!(policy, "PodDisruptionBudget"), "status", Struct, t!(policy, "PodDisruptionBudgetStatus"), NONE, NONE, NONE, &[], false),
    m(t!(policy, "PodDisruptionBudgetSpec"), "selector", Struct, t!(meta, "LabelSelector"), "replace", NONE, NONE, &[], false),
    m(t!(policy, "PodDisruptionBudgetStatus"), "conditions", List, NONE, "merge", "type", LT_MAP, &["type"], false),
    m("io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler", "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m("io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler", "spec", Struct, "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec", NONE, NONE, NONE, &[], false),
    m("io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler", "status", Struct, "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus", NONE, NONE, NONE, &[], false),
    m("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec", "metrics", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus", "currentMetrics", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus", "conditions", List, NONE, "merge", "type", LT_MAP, &["type"], false),
    m(t!(rbac, "AggregationRule"), "clusterRoleSelectors", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(rbac, "ClusterRole"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(rbac, "ClusterRole"), "rules", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(rbac, "ClusterRoleBinding"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(rbac, "ClusterRoleBinding"), "subjects", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(rbac, "ClusterRoleBinding"), "roleRef", Struct, t!(rbac, "RoleRef"), NONE, NONE, NONE, &[], false),
    m(t!(rbac, "PolicyRule"), "verbs", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(rbac, "PolicyRule"), "apiGroups", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(rbac, "PolicyRule"), "resources", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(rbac, "PolicyRule"), "resourceNames", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(rbac, "PolicyRule"), "nonResourceURLs", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(rbac, "Role"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(rbac, "Role"), "rules", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(rbac, "RoleBinding"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(rbac, "RoleBinding"), "subjects", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(rbac, "RoleBinding"), "roleRef", Struct, t!(rbac, "RoleRef"), NONE, NONE, NONE, &[], false),
    m(t!(scheduling, "PriorityClass"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(storage, "StorageClass"), "metadata", Struct, t!(meta, "ObjectMeta"), NONE, NONE, NONE, &[], false),
    m(t!(storage, "StorageClass"), "mountOptions", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(storage, "StorageClass"), "allowedTopologies", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(meta, "FieldSelectorRequirement"), "values", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(meta, "LabelSelector"), "matchExpressions", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(meta, "LabelSelectorRequirement"), "values", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),
    m(t!(meta, "ObjectMeta"), "ownerReferences", List, t!(meta, "OwnerReference"), "merge", "uid", LT_MAP, &["uid"], false),
    m(t!(meta, "ObjectMeta"), "finalizers", List, NONE, "merge", NONE, LT_SET, &[], false),
    m(t!(meta, "ObjectMeta"), "managedFields", List, NONE, NONE, NONE, LT_ATOMIC, &[], false),

];

/// Struct types marked `+structType=atomic`: server-side apply owns them as one value.
#[rustfmt::skip]
static ATOMIC_STRUCTS: &[&str] = &[
    t!(core, "ConfigMapKeySelector"),
    t!(core, "EndpointAddress"),
    t!(core, "EndpointPort"),
    t!(core, "LocalObjectReference"),
    t!(core, "NodeSelector"),
    t!(core, "NodeSelectorTerm"),
    t!(core, "ObjectFieldSelector"),
    t!(core, "ObjectReference"),
    t!(core, "ResourceFieldSelector"),
    t!(core, "ScopeSelector"),
    t!(core, "SecretKeySelector"),
    t!(core, "SecretReference"),
    t!(core, "TopologySelectorTerm"),
    t!(core, "TypedLocalObjectReference"),
    t!(discovery, "EndpointPort"),
    t!(networking, "ServiceBackendPort"),
    t!(rbac, "RoleRef"),
    t!(rbac, "Subject"),
    t!(meta, "LabelSelector"),
    t!(meta, "OwnerReference"),
];

/// The API group of each package, and the kinds skiff serves from it.
#[rustfmt::skip]
static ROOTS: &[(&str, &str, &[&str])] = &[
    ("", "io.k8s.api.core.v1.", &["Binding", "ConfigMap", "Endpoints", "Event", "LimitRange", "Namespace", "Node", "PersistentVolumeClaim", "PersistentVolume", "Pod", "PodTemplate", "ReplicationController", "ResourceQuota", "Secret", "ServiceAccount", "Service"]),
    ("admissionregistration.k8s.io", "io.k8s.api.admissionregistration.v1.", &["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]),
    ("apiextensions.k8s.io", "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.", &["CustomResourceDefinition"]),
    ("apps", "io.k8s.api.apps.v1.", &["ControllerRevision", "DaemonSet", "Deployment", "ReplicaSet", "StatefulSet"]),
    ("authentication.k8s.io", "io.k8s.api.authentication.v1.", &["SelfSubjectReview", "TokenReview"]),
    ("authorization.k8s.io", "io.k8s.api.authorization.v1.", &["SelfSubjectAccessReview", "SelfSubjectRulesReview", "SubjectAccessReview"]),
    ("autoscaling", "io.k8s.api.autoscaling.v1.", &["Scale"]),
    ("autoscaling", "io.k8s.api.autoscaling.v2.", &["HorizontalPodAutoscaler"]),
    ("batch", "io.k8s.api.batch.v1.", &["CronJob", "Job"]),
    ("coordination.k8s.io", "io.k8s.api.coordination.v1.", &["Lease"]),
    ("discovery.k8s.io", "io.k8s.api.discovery.v1.", &["EndpointSlice"]),
    ("events.k8s.io", "io.k8s.api.events.v1.", &["Event"]),
    ("networking.k8s.io", "io.k8s.api.networking.v1.", &["IngressClass", "Ingress", "NetworkPolicy"]),
    ("policy", "io.k8s.api.policy.v1.", &["PodDisruptionBudget"]),
    ("rbac.authorization.k8s.io", "io.k8s.api.rbac.v1.", &["ClusterRoleBinding", "ClusterRole", "RoleBinding", "Role"]),
    ("scheduling.k8s.io", "io.k8s.api.scheduling.v1.", &["PriorityClass"]),
    ("storage.k8s.io", "io.k8s.api.storage.v1.", &["StorageClass", "CSIDriver", "CSINode", "CSIStorageCapacity", "VolumeAttachment"]),
    ("node.k8s.io", "io.k8s.api.node.v1.", &["RuntimeClass"]),
    ("certificates.k8s.io", "io.k8s.api.certificates.v1.", &["CertificateSigningRequest"]),
    ("flowcontrol.apiserver.k8s.io", "io.k8s.api.flowcontrol.v1.", &["FlowSchema", "PriorityLevelConfiguration"]),
    ("apiregistration.k8s.io", "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.", &["APIService"]),
];

type Index<V> = HashMap<&'static str, HashMap<&'static str, V>>;

/// Every root type name, built once: group → kind → OpenAPI name.
fn roots() -> &'static Index<String> {
    static ROOT_INDEX: OnceLock<Index<String>> = OnceLock::new();
    ROOT_INDEX.get_or_init(|| {
        let mut index: Index<String> = HashMap::new();
        for (group, prefix, kinds) in ROOTS {
            let by_kind = index.entry(group).or_default();
            for kind in *kinds {
                by_kind.insert(kind, format!("{prefix}{kind}"));
            }
        }
        index
    })
}

/// Type → field → metadata, built once.
fn fields() -> &'static Index<&'static FieldMeta> {
    static FIELD_INDEX: OnceLock<Index<&'static FieldMeta>> = OnceLock::new();
    FIELD_INDEX.get_or_init(|| {
        let mut index: Index<&'static FieldMeta> = HashMap::new();
        for f in FIELDS {
            index.entry(f.owner).or_default().insert(f.field, f);
        }
        index
    })
}

/// The OpenAPI type name of a built-in kind, e.g. `("apps", "Deployment")` →
/// `io.k8s.api.apps.v1.Deployment`; `None` for kinds without built-in patch metadata
/// (custom resources).
pub fn root_type(group: &str, kind: &str) -> Option<&'static str> {
    roots()
        .get(group)
        .and_then(|k| k.get(kind))
        .map(String::as_str)
}

/// All metadata known about `type_name.field`, if any.
pub fn field_meta(type_name: &str, field: &str) -> Option<&'static FieldMeta> {
    fields().get(type_name).and_then(|f| f.get(field)).copied()
}

/// The struct type of a field (for lists and maps: of their elements), following the struct
/// graph from the kinds down to every type that carries patch metadata. `None` when the field
/// is a scalar or leads to no patch metadata (then plain merge rules apply below it).
pub fn field_type(type_name: &str, field: &str) -> Option<&'static str> {
    field_meta(type_name, field).and_then(FieldMeta::elem)
}

/// The strategic-merge strategy of a field: lists with `merge` (and `merge_key` for lists of
/// objects), `retainKeys` on structs such as `DeploymentSpec.strategy`, `replace` on maps.
pub fn list_strategy(type_name: &str, field: &str) -> Option<ListStrategy> {
    field_meta(type_name, field).and_then(FieldMeta::strategy)
}

/// The server-side apply list type of a list field (`x-kubernetes-list-type`,
/// `x-kubernetes-list-map-keys`); `None` when undeclared (treated as atomic).
pub fn list_type(type_name: &str, field: &str) -> Option<ListType> {
    field_meta(type_name, field).and_then(FieldMeta::list_type)
}

/// Whether a struct type is `+structType=atomic` (`x-kubernetes-map-type: atomic`).
pub fn struct_is_atomic(type_name: &str) -> bool {
    ATOMIC_STRUCTS.contains(&type_name)
}

/// Whether server-side apply treats the value of `type_name.field` as one atomic value: an
/// atomic map, a field of an atomic struct type, or an atomic list.
pub fn field_is_atomic(type_name: &str, field: &str) -> bool {
    match field_meta(type_name, field) {
        Some(f) => {
            f.map_atomic
                || (f.shape == Shape::Struct && f.elem().is_some_and(struct_is_atomic))
                || f.list_type() == Some(ListType::Atomic)
        }
        None => false,
    }
}

/// Every field with metadata of one type, in declaration order (for the OpenAPI builder).
pub fn fields_of_type(type_name: &str) -> impl Iterator<Item = &'static FieldMeta> + '_ {
    FIELDS.iter().filter(move |f| f.owner == type_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_cover_the_registry() {
        for r in crate::registry::RESOURCES {
            assert!(
                root_type(r.group, r.kind).is_some(),
                "no root type for {}/{}",
                r.group,
                r.kind
            );
        }
        assert_eq!(
            root_type("apps", "Deployment"),
            Some("io.k8s.api.apps.v1.Deployment")
        );
        assert_eq!(root_type("example.com", "Widget"), None);
    }

    #[test]
    fn struct_graph_reaches_containers() {
        let mut ty = root_type("apps", "Deployment").unwrap();
        for f in ["spec", "template", "spec", "containers"] {
            ty = field_type(ty, f).unwrap();
        }
        assert_eq!(ty, "io.k8s.api.core.v1.Container");
        assert_eq!(
            field_type("io.k8s.api.core.v1.Container", "env"),
            Some("io.k8s.api.core.v1.EnvVar")
        );
        assert_eq!(
            field_type(root_type("batch", "CronJob").unwrap(), "spec"),
            Some("io.k8s.api.batch.v1.CronJobSpec")
        );
    }

    #[test]
    fn merge_keys_match_upstream() {
        let s = |t: &str, f: &str| list_strategy(t, f).unwrap();
        let c = "io.k8s.api.core.v1.";
        let pod = format!("{c}PodSpec");
        assert_eq!(
            s(&pod, "containers"),
            ListStrategy {
                strategy: "merge",
                merge_key: Some("name")
            }
        );
        assert_eq!(s(&pod, "volumes").strategy, "merge,retainKeys");
        assert!(s(&pod, "volumes").retains_keys());
        assert_eq!(s(&pod, "hostAliases").merge_key, Some("ip"));
        assert_eq!(
            s(&pod, "topologySpreadConstraints").merge_key,
            Some("topologyKey")
        );
        assert_eq!(
            s(&format!("{c}Container"), "ports").merge_key,
            Some("containerPort")
        );
        assert_eq!(
            s(&format!("{c}Container"), "volumeMounts").merge_key,
            Some("mountPath")
        );
        assert_eq!(
            s(&format!("{c}ServiceSpec"), "ports").merge_key,
            Some("port")
        );
        assert_eq!(
            s(&format!("{c}NodeStatus"), "addresses").merge_key,
            Some("type")
        );
        assert_eq!(s(&format!("{c}PodStatus"), "podIPs").merge_key, Some("ip"));
        assert_eq!(
            s(&format!("{c}PodStatus"), "conditions").merge_key,
            Some("type")
        );
        let meta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
        assert_eq!(s(meta, "ownerReferences").merge_key, Some("uid"));
        assert_eq!(
            s(meta, "finalizers"),
            ListStrategy {
                strategy: "merge",
                merge_key: None
            }
        );
        assert_eq!(
            s("io.k8s.api.apps.v1.DeploymentSpec", "strategy"),
            ListStrategy {
                strategy: "retainKeys",
                merge_key: None
            }
        );
        assert_eq!(
            s("io.k8s.api.apps.v1.DeploymentStatus", "conditions").merge_key,
            Some("type")
        );
        assert_eq!(list_strategy(&format!("{c}Container"), "args"), None);
        assert_eq!(list_strategy(&pod, "tolerations"), None);
    }

    #[test]
    fn list_types_match_upstream() {
        let c = "io.k8s.api.core.v1.";
        assert_eq!(
            list_type(&format!("{c}ServiceSpec"), "ports"),
            Some(ListType::Map(&["port", "protocol"]))
        );
        assert_eq!(
            list_type(&format!("{c}Container"), "ports"),
            Some(ListType::Map(&["containerPort", "protocol"]))
        );
        assert_eq!(
            list_type(
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                "finalizers"
            ),
            Some(ListType::Set)
        );
        assert_eq!(
            list_type(&format!("{c}PodSpec"), "tolerations"),
            Some(ListType::Atomic)
        );
        assert!(field_is_atomic(
            "io.k8s.api.apps.v1.DeploymentSpec",
            "selector"
        ));
        assert!(field_is_atomic(&format!("{c}PodSpec"), "nodeSelector"));
        assert!(!field_is_atomic(&format!("{c}PodSpec"), "containers"));
        assert!(struct_is_atomic(
            "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"
        ));
    }
}
