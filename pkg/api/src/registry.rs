//! The kind registry: every resource skiff serves, with its group/version/kind, plural and
//! singular names, scope, short names, categories, verbs and subresources. Discovery, routing,
//! OpenAPI and RBAC all read this one table.

/// The verbs a normal read-write resource supports.
pub const RW_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// A subresource (`pods/status`, `deployments/scale`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    /// Group of the kind the subresource speaks (`autoscaling` for scale, `` for core).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One served resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; empty for the core (legacy) group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
}

impl ResourceInfo {
    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `DeploymentList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// `deployments.apps`, or `pods` for the core group — the name used in error messages.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Deployment.apps` or `Pod` — the qualified kind used in Invalid messages.
    pub fn group_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// The storage key prefix of this resource: `/registry/<group>/<plural>/`.
    pub fn key_prefix(&self) -> String {
        // events.k8s.io/v1 Events are the core Events in another shape: one storage.
        let g = if self.group.is_empty()
            || (self.group == "events.k8s.io" && self.plural == "events")
        {
            "core"
        } else {
            self.group
        };
        format!("/registry/{}/{}/", g, self.plural)
    }

    /// The subresource named `name`, if any.
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }
}

const fn sub(
    name: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        group: "",
        version: "",
        kind,
        verbs,
    }
}

const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];
const STATUS_SAME_KIND: &str = "";
const SCALE: Subresource = Subresource {
    name: "scale",
    group: "autoscaling",
    version: "v1",
    kind: "Scale",
    verbs: GET_PATCH_UPDATE,
};

/// `pods/eviction` speaks `policy/v1` Eviction; kubectl drain only evicts (instead of deleting)
/// when discovery names that group and version on the subresource.
const EVICTION: Subresource = Subresource {
    name: "eviction",
    group: "policy",
    version: "v1",
    kind: "Eviction",
    verbs: &["create"],
};

macro_rules! res {
    ($g:expr, $v:expr, $kind:expr, $plural:expr, $singular:expr, $ns:expr, $short:expr, $cat:expr, $verbs:expr, $subs:expr) => {
        ResourceInfo {
            group: $g,
            version: $v,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $ns,
            short_names: $short,
            categories: $cat,
            verbs: $verbs,
            subresources: $subs,
        }
    };
}

const NONE: &[&str] = &[];
const ALL: &[&str] = &["all"];

/// Every resource skiff serves, in discovery order.
pub static RESOURCES: &[ResourceInfo] = &[
    // core/v1
    res!(
        "",
        "v1",
        "Binding",
        "bindings",
        "binding",
        true,
        NONE,
        NONE,
        &["create"],
        &[]
    ),
    res!(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        true,
        &["cm"],
        NONE,
        RW_VERBS,
        &[]
    ),
    res!(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        "endpoints",
        true,
        &["ep"],
        NONE,
        RW_VERBS,
        &[]
    ),
    res!(
        "",
        "v1",
        "Event",
        "events",
        "event",
        true,
        &["ev"],
        NONE,
        RW_VERBS,
        &[]
    ),
    res!(
        "",
        "v1",
        "LimitRange",
        "limitranges",
        "limitrange",
        true,
        &["limits"],
        NONE,
        RW_VERBS,
        &[]
    ),
    res!(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        false,
        &["ns"],
        NONE,
        &["create", "delete", "get", "list", "patch", "update", "watch"],
        &[
            sub("finalize", STATUS_SAME_KIND, &["update"]),
            sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)
        ]
    ),
    res!(
        "",
        "v1",
        "Node",
        "nodes",
        "node",
        false,
        &["no"],
        NONE,
        RW_VERBS,
        &[
            sub(
                "proxy",
                "NodeProxyOptions",
                &["create", "delete", "get", "patch", "update"]
            ),
            sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)
        ]
    ),
    res!(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        true,
        &["pvc"],
        NONE,
        RW_VERBS,
        &[sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    res!(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        "persistentvolume",
        false,
        &["pv"],
        NONE,
        RW_VERBS,
        &[sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    res!(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        true,
        &["po"],
        ALL,
        RW_VERBS,
        &[
            sub("attach", "PodAttachOptions", &["create", "get"]),
            sub("binding", "Binding", &["create"]),
            EVICTION,
            sub("exec", "PodExecOptions", &["create", "get"]),
            sub("log", "Pod", &["get"]),
            sub("portforward", "PodPortForwardOptions", &["create", "get"]),
            sub(
                "proxy",
                "PodProxyOptions",
                &["create", "delete", "get", "patch", "update"]
            ),
            sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE),
        ]
    ),
    res!(
        "",
        "v1",
        "PodTemplate",
        "podtemplates",
        "podtemplate",
        true,
        NONE,
        NONE,
        RW_VERBS,
        &[]
    ),
    res!(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        "replicationcontroller",
        true,
        &["rc"],
        ALL,
        RW_VERBS,
        &[SCALE, sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    res!(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        "resourcequota",
        true,
        &["quota"],
        NONE,
        RW_VERBS,
        &[sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    res!(
        "",
        "v1",
        "Secret",
        "secrets",
        "secret",
        true,
        NONE,
        NONE,
        RW_VERBS,
        &[]
    ),
    res!(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        true,
        &["sa"],
        NONE,
        RW_VERBS,
        &[Subresource {
            name: "token",
            group: "authentication.k8s.io",
            version: "v1",
            kind: "TokenRequest",
            verbs: &["create"]
        }]
    ),
    res!(
        "",
        "v1",
        "Service",
        "services",
        "service",
        true,
        &["svc"],
        ALL,
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch"
        ],
        &[
            sub(
                "proxy",
                "ServiceProxyOptions",
                &["create", "delete", "get", "patch", "update"]
            ),
            sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)
        ]
    ),
    // apps/v1
    res!(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        true,
        NONE,
        NONE,
        RW_VERBS,
        &[]
    ),
    res!(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        true,
        &["ds"],
        ALL,
        RW_VERBS,
        &[sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    res!(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        true,
        &["deploy"],
        ALL,
        RW_VERBS,
        &[SCALE, sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    res!(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        true,
        &["rs"],
        ALL,
        RW_VERBS,
        &[SCALE, sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    res!(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        true,
        &["sts"],
        ALL,
        RW_VERBS,
        &[SCALE, sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    // authentication / authorization (create-only review kinds)
    res!(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        "selfsubjectreview",
        false,
        NONE,
        NONE,
        &["create"],
        &[]
    ),
    res!(
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        "tokenreviews",
        "tokenreview",
        false,
        NONE,
        NONE,
        &["create"],
        &[]
    ),
    res!(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        false,
        NONE,
        NONE,
        &["create"],
        &[]
    ),
    res!(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        "subjectaccessreview",
        false,
        NONE,
        NONE,
        &["create"],
        &[]
    ),
    res!(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        false,
        NONE,
        NONE,
        &["create"],
        &[]
    ),
    // autoscaling/v2 (stored and preferred) and autoscaling/v1: one HorizontalPodAutoscaler
    res!(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        true,
        &["hpa"],
        ALL,
        RW_VERBS,
        &[sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    res!(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        true,
        &["hpa"],
        ALL,
        RW_VERBS,
        &[sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    // batch/v1
    res!(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        "cronjob",
        true,
        &["cj"],
        ALL,
        RW_VERBS,
        &[sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    res!(
        "batch",
        "v1",
        "Job",
        "jobs",
        "job",
        true,
        NONE,
        ALL,
        RW_VERBS,
        &[sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    // coordination.k8s.io/v1
    res!(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        true,
        NONE,
        NONE,
        RW_VERBS,
        &[]
    ),
    // discovery.k8s.io/v1
    res!(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        true,
        NONE,
        NONE,
        RW_VERBS,
        &[]
    ),
    // events.k8s.io/v1
    res!(
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        "event",
        true,
        &["ev"],
        NONE,
        RW_VERBS,
        &[]
    ),
    // networking.k8s.io/v1
    res!(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        "ingressclass",
        false,
        NONE,
        NONE,
        RW_VERBS,
        &[]
    ),
    res!(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        "ingress",
        true,
        &["ing"],
        NONE,
        RW_VERBS,
        &[sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    res!(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        "networkpolicy",
        true,
        &["netpol"],
        NONE,
        RW_VERBS,
        &[]
    ),
    // policy/v1
    res!(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        true,
        &["pdb"],
        NONE,
        RW_VERBS,
        &[sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    // rbac.authorization.k8s.io/v1
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        false,
        NONE,
        NONE,
        RW_VERBS,
        &[]
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        false,
        NONE,
        NONE,
        RW_VERBS,
        &[]
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        true,
        NONE,
        NONE,
        RW_VERBS,
        &[]
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        "role",
        true,
        NONE,
        NONE,
        RW_VERBS,
        &[]
    ),
    // admissionregistration.k8s.io/v1: admission webhooks (called by apiserver/webhook/)
    res!(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        false,
        NONE,
        &["api-extensions"],
        RW_VERBS,
        &[]
    ),
    res!(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        "validatingwebhookconfiguration",
        false,
        NONE,
        &["api-extensions"],
        RW_VERBS,
        &[]
    ),
    // admissionregistration.k8s.io/v1: ValidatingAdmissionPolicies (evaluated by apiserver/vap.rs)
    res!(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        "validatingadmissionpolicy",
        false,
        NONE,
        &["api-extensions"],
        RW_VERBS,
        &[sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    res!(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        "validatingadmissionpolicybinding",
        false,
        NONE,
        &["api-extensions"],
        RW_VERBS,
        &[]
    ),
    // apiextensions.k8s.io/v1
    res!(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "customresourcedefinition",
        false,
        &["crd", "crds"],
        &["api-extensions"],
        RW_VERBS,
        &[sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    // scheduling.k8s.io/v1
    res!(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        "priorityclass",
        false,
        &["pc"],
        NONE,
        RW_VERBS,
        &[]
    ),
    // storage.k8s.io/v1
    res!(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        "storageclass",
        false,
        &["sc"],
        NONE,
        RW_VERBS,
        &[]
    ),
    // storage.k8s.io/v1: CSI objects (stored and served; skiff runs no CSI attacher itself)
    res!(
        "storage.k8s.io",
        "v1",
        "CSIDriver",
        "csidrivers",
        "csidriver",
        false,
        NONE,
        NONE,
        RW_VERBS,
        &[]
    ),
    res!(
        "storage.k8s.io",
        "v1",
        "CSINode",
        "csinodes",
        "csinode",
        false,
        NONE,
        NONE,
        RW_VERBS,
        &[]
    ),
    res!(
        "storage.k8s.io",
        "v1",
        "CSIStorageCapacity",
        "csistoragecapacities",
        "csistoragecapacity",
        true,
        NONE,
        NONE,
        RW_VERBS,
        &[]
    ),
    res!(
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        "volumeattachments",
        "volumeattachment",
        false,
        NONE,
        NONE,
        RW_VERBS,
        &[sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    // node.k8s.io/v1
    res!(
        "node.k8s.io",
        "v1",
        "RuntimeClass",
        "runtimeclasses",
        "runtimeclass",
        false,
        NONE,
        NONE,
        RW_VERBS,
        &[]
    ),
    // certificates.k8s.io/v1 (signed by the csrsigning controller once approved)
    res!(
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        "certificatesigningrequest",
        false,
        &["csr"],
        NONE,
        RW_VERBS,
        &[
            sub("approval", STATUS_SAME_KIND, GET_PATCH_UPDATE),
            sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)
        ]
    ),
    // flowcontrol.apiserver.k8s.io/v1 (served and stored; skiff does no priority and fairness)
    res!(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "FlowSchema",
        "flowschemas",
        "flowschema",
        false,
        NONE,
        NONE,
        RW_VERBS,
        &[sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    res!(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        "prioritylevelconfiguration",
        false,
        NONE,
        NONE,
        RW_VERBS,
        &[sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
    // apiregistration.k8s.io/v1 (apiserver/aggregator.rs: local and proxied group-versions)
    res!(
        "apiregistration.k8s.io",
        "v1",
        "APIService",
        "apiservices",
        "apiservice",
        false,
        NONE,
        &["api-extensions"],
        RW_VERBS,
        &[sub("status", STATUS_SAME_KIND, GET_PATCH_UPDATE)]
    ),
];

/// The API groups in discovery order (core first, then `/apis` groups), each with its one
/// served version.
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES {
        if !out.iter().any(|(g, v)| *g == r.group && *v == r.version) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// The resources of one group-version.
pub fn resources_of<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ResourceInfo> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// True for the resources of the static table (and the metrics ones); false for the
/// resources the server builds at run time from CustomResourceDefinitions.
pub fn is_builtin(res: &ResourceInfo) -> bool {
    let p = res as *const ResourceInfo;
    RESOURCES.as_ptr_range().contains(&p)
        || crate::discovery::METRICS_RESOURCES
            .as_ptr_range()
            .contains(&p)
}

/// Looks a resource up by the URL's group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Looks a resource up by an object's `apiVersion` and `kind`.
pub fn find_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    let (group, version) = split_api_version(api_version);
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let d = find("apps", "v1", "deployments").unwrap();
        assert_eq!(d.kind, "Deployment");
        assert_eq!(d.group_resource(), "deployments.apps");
        assert_eq!(d.group_kind(), "Deployment.apps");
        assert_eq!(d.key_prefix(), "/registry/apps/deployments/");
        assert_eq!(d.subresource("scale").unwrap().kind, "Scale");
        let p = find_kind("v1", "Pod").unwrap();
        assert_eq!(p.group_resource(), "pods");
        assert!(p.categories.contains(&"all"));
        assert!(find("", "v1", "nope").is_none());
    }

    #[test]
    fn plurals_unique_per_group_version() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.plural == b.plural),
                    "duplicate {}",
                    a.plural
                );
            }
        }
        assert_eq!(groups()[0], ("", "v1"));
    }
}
