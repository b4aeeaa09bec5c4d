//! The default ClusterRoles and ClusterRoleBindings skiff creates at start, following the
//! upstream bootstrap policy (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy`), plus the one
//! role skiff's built-in controllers run under (`system:skiff-controller`).

use serde_json::{json, Map, Value};

use super::{
    effective_cluster_role_rules, ALL_AUTHENTICATED, ALL_SERVICE_ACCOUNTS, ALL_UNAUTHENTICATED,
    NODES_GROUP, SYSTEM_MASTERS,
};

/// The ClusterRole skiff's controllers (replicaset, deployment, daemonset, statefulset, job,
/// cronjob, garbage collector, endpoints/endpointslices, namespace, node lifecycle, service
/// account, token) are granted. Upstream gives each controller its own narrow role; skiff
/// runs them in one process under one identity, so this role is the union of what they need:
/// read and modify (no create) every resource — the garbage collector and namespace
/// controller must patch and delete anything — plus create on the kinds controllers make.
pub const SKIFF_CONTROLLER_ROLE: &str = "system:skiff-controller";
/// The user name skiff's controllers authenticate as.
pub const SKIFF_CONTROLLER_USER: &str = "system:skiff-controller";

const RBAC_API_VERSION: &str = "rbac.authorization.k8s.io/v1";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const BOOTSTRAP_LABEL: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");
const AUTOUPDATE_ANNOTATION: (&str, &str) = ("rbac.authorization.kubernetes.io/autoupdate", "true");
const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const AGGREGATE_TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

const CORE: &str = "";
const APPS: &str = "apps";
const AUTHENTICATION: &str = "authentication.k8s.io";
const AUTHORIZATION: &str = "authorization.k8s.io";
const AUTOSCALING: &str = "autoscaling";
const BATCH: &str = "batch";
const CERTIFICATES: &str = "certificates.k8s.io";
const COORDINATION: &str = "coordination.k8s.io";
const DISCOVERY: &str = "discovery.k8s.io";
const EVENTS: &str = "events.k8s.io";
const EXTENSIONS: &str = "extensions";
const NETWORKING: &str = "networking.k8s.io";
const NODE: &str = "node.k8s.io";
const POLICY: &str = "policy";
const STORAGE: &str = "storage.k8s.io";

fn strings(items: &[&str]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|s| Value::String((*s).to_string()))
            .collect(),
    )
}

/// A resource rule, with lists sorted as upstream's golden policy files show them.
fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    let mut verbs = verbs.to_vec();
    verbs.sort_unstable();
    let mut resources = resources.to_vec();
    resources.sort_unstable();
    json!({ "apiGroups": strings(groups), "resources": strings(&resources), "verbs": strings(&verbs) })
}

/// A resource rule limited to some object names.
fn named_rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Value {
    let mut r = rule(verbs, groups, resources);
    if let Some(obj) = r.as_object_mut() {
        obj.insert("resourceNames".to_string(), strings(names));
    }
    r
}

/// A non-resource URL rule.
fn url_rule(verbs: &[&str], urls: &[&str]) -> Value {
    let mut urls = urls.to_vec();
    urls.sort_unstable();
    json!({ "nonResourceURLs": strings(&urls), "verbs": strings(verbs) })
}

/// Upstream's `eventsRule()`: create/update/patch events in both event groups.
fn events_rule() -> Value {
    rule(&["create", "update", "patch"], &[CORE, EVENTS], &["events"])
}

fn metadata(name: &str, extra_labels: &[(&str, &str)]) -> Value {
    let mut labels = Map::new();
    labels.insert(BOOTSTRAP_LABEL.0.to_string(), json!(BOOTSTRAP_LABEL.1));
    for (k, v) in extra_labels {
        labels.insert((*k).to_string(), json!(v));
    }
    json!({
        "name": name,
        "labels": labels,
        "annotations": { AUTOUPDATE_ANNOTATION.0: AUTOUPDATE_ANNOTATION.1 },
    })
}

fn cluster_role(name: &str, extra_labels: &[(&str, &str)], rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": RBAC_API_VERSION,
        "kind": "ClusterRole",
        "metadata": metadata(name, extra_labels),
        "rules": rules,
    })
}

/// A ClusterRole whose rules are aggregated from roles labelled `aggregate_label: "true"`.
fn aggregated_role(name: &str, extra_labels: &[(&str, &str)], aggregate_label: &str) -> Value {
    json!({
        "apiVersion": RBAC_API_VERSION,
        "kind": "ClusterRole",
        "metadata": metadata(name, extra_labels),
        "aggregationRule": {
            "clusterRoleSelectors": [ { "matchLabels": { aggregate_label: "true" } } ]
        },
        "rules": [],
    })
}

/// The default ClusterRoles: `cluster-admin`, `admin`/`edit`/`view` (aggregated from
/// `system:aggregate-to-admin`/`-edit`/`-view`, whose rules are the upstream ones),
/// `system:discovery`, `system:basic-user`, `system:public-info-viewer`,
/// `system:monitoring`, `system:node`, `system:node-proxier`, `system:kube-scheduler`,
/// `system:kube-controller-manager`, `system:auth-delegator`,
/// `system:service-account-issuer-discovery` and `system:skiff-controller`. Each carries the
/// label `kubernetes.io/bootstrapping: rbac-defaults` and the annotation
/// `rbac.authorization.kubernetes.io/autoupdate: "true"`. The aggregated roles come with
/// their rules already filled in (as upstream's aggregation controller leaves them); the
/// authorizer recomputes aggregation at request time anyway.
pub fn bootstrap_cluster_roles() -> Vec<Value> {
    let mut roles = vec![
        cluster_role(
            "cluster-admin",
            &[],
            vec![rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])],
        ),
        aggregated_role("admin", &[], AGGREGATE_TO_ADMIN),
        aggregated_role("edit", &[(AGGREGATE_TO_ADMIN, "true")], AGGREGATE_TO_EDIT),
        aggregated_role("view", &[(AGGREGATE_TO_EDIT, "true")], AGGREGATE_TO_VIEW),
        cluster_role(
            "system:aggregate-to-admin",
            &[(AGGREGATE_TO_ADMIN, "true")],
            aggregate_to_admin_rules(),
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &[(AGGREGATE_TO_EDIT, "true")],
            aggregate_to_edit_rules(),
        ),
        cluster_role(
            "system:aggregate-to-view",
            &[(AGGREGATE_TO_VIEW, "true")],
            aggregate_to_view_rules(),
        ),
        // metrics-server's role (k3s ships it): the metrics.k8s.io API the server serves is
        // readable by view, edit and admin.
        cluster_role(
            "system:aggregated-metrics-reader",
            &[
                (AGGREGATE_TO_VIEW, "true"),
                (AGGREGATE_TO_EDIT, "true"),
                (AGGREGATE_TO_ADMIN, "true"),
            ],
            vec![rule(READ, &["metrics.k8s.io"], &["pods", "nodes"])],
        ),
        cluster_role(
            "system:discovery",
            &[],
            vec![url_rule(
                &["get"],
                &[
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/version",
                    "/version/",
                    "/openapi",
                    "/openapi/*",
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                ],
            )],
        ),
        cluster_role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["create"],
                    &[AUTHORIZATION],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(&["create"], &[AUTHENTICATION], &["selfsubjectreviews"]),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            vec![url_rule(
                &["get"],
                &["/livez", "/readyz", "/healthz", "/version", "/version/"],
            )],
        ),
        cluster_role(
            "system:monitoring",
            &[],
            vec![url_rule(
                &["get"],
                &[
                    "/metrics",
                    "/metrics/slis",
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/livez/*",
                    "/readyz/*",
                    "/healthz/*",
                ],
            )],
        ),
        cluster_role("system:node", &[], node_rules()),
        cluster_role(
            "system:node-proxier",
            &[],
            vec![
                rule(&["list", "watch"], &[CORE], &["services", "endpoints"]),
                rule(READ, &[CORE], &["nodes"]),
                events_rule(),
                rule(&["list", "watch"], &[DISCOVERY], &["endpointslices"]),
            ],
        ),
        cluster_role("system:kube-scheduler", &[], kube_scheduler_rules()),
        cluster_role(
            "system:volume-scheduler",
            &[],
            vec![
                rule(
                    &["get", "list", "watch", "patch", "update"],
                    &[CORE],
                    &["persistentvolumes"],
                ),
                rule(READ, &[STORAGE], &["storageclasses"]),
                rule(
                    &["get", "list", "watch", "patch", "update"],
                    &[CORE],
                    &["persistentvolumeclaims"],
                ),
            ],
        ),
        cluster_role(
            "system:kube-controller-manager",
            &[],
            kube_controller_manager_rules(),
        ),
        cluster_role(
            "system:auth-delegator",
            &[],
            vec![
                rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
                rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
            ],
        ),
        cluster_role(
            "system:service-account-issuer-discovery",
            &[],
            vec![url_rule(
                &["get"],
                &["/.well-known/openid-configuration", "/openid/v1/jwks"],
            )],
        ),
        cluster_role(SKIFF_CONTROLLER_ROLE, &[], skiff_controller_rules()),
    ];

    // Fill the aggregated roles the way upstream's aggregation controller does.
    let snapshot = roles.clone();
    for role in roles.iter_mut() {
        if role.get("aggregationRule").is_some() {
            let rules = effective_cluster_role_rules(role, &snapshot);
            if let Some(obj) = role.as_object_mut() {
                obj.insert("rules".to_string(), Value::Array(rules));
            }
        }
    }
    roles
}

fn aggregate_to_admin_rules() -> Vec<Value> {
    vec![
        rule(
            &["create"],
            &[AUTHORIZATION],
            &["localsubjectaccessreviews"],
        ),
        rule(READ_WRITE, &[RBAC_GROUP], &["roles", "rolebindings"]),
    ]
}

fn aggregate_to_edit_rules() -> Vec<Value> {
    vec![
        // Read on escalating resources.
        rule(
            READ,
            &[CORE],
            &[
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
                "secrets",
                "services/proxy",
            ],
        ),
        rule(&["impersonate"], &[CORE], &["serviceaccounts"]),
        rule(
            WRITE,
            &[CORE],
            &[
                "pods",
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
            ],
        ),
        rule(&["create"], &[CORE], &["pods/eviction"]),
        rule(
            WRITE,
            &[CORE],
            &[
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
                "events",
            ],
        ),
        rule(&["create"], &[CORE], &["serviceaccounts/token"]),
        rule(
            WRITE,
            &[APPS],
            &[
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ],
        ),
        rule(WRITE, &[AUTOSCALING], &["horizontalpodautoscalers"]),
        rule(WRITE, &[BATCH], &["jobs", "cronjobs"]),
        rule(
            WRITE,
            &[EXTENSIONS],
            &[
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "ingresses",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(WRITE, &[POLICY], &["poddisruptionbudgets"]),
        rule(WRITE, &[NETWORKING], &["networkpolicies", "ingresses"]),
        rule(READ_WRITE, &[COORDINATION], &["leases"]),
    ]
}

fn aggregate_to_view_rules() -> Vec<Value> {
    vec![
        rule(
            READ,
            &[CORE],
            &[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ],
        ),
        rule(
            READ,
            &[CORE],
            &[
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ],
        ),
        // Read access to namespaces at the namespace scope means reading *this* namespace.
        rule(READ, &[CORE], &["namespaces"]),
        rule(READ, &[DISCOVERY], &["endpointslices"]),
        rule(
            READ,
            &[APPS],
            &[
                "controllerrevisions",
                "statefulsets",
                "statefulsets/status",
                "statefulsets/scale",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/status",
                "deployments/scale",
                "replicasets",
                "replicasets/status",
                "replicasets/scale",
            ],
        ),
        rule(
            READ,
            &[AUTOSCALING],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            READ,
            &[BATCH],
            &["jobs", "cronjobs", "cronjobs/status", "jobs/status"],
        ),
        rule(
            READ,
            &[EXTENSIONS],
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(
            READ,
            &[POLICY],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            &[NETWORKING],
            &["networkpolicies", "ingresses", "ingresses/status"],
        ),
    ]
}

/// Upstream's `NodeRules()` plus what skiff's agent also does with its node identity (it runs
/// the service proxy and watches its pods' objects): list/watch endpoints and endpointslices.
/// Upstream restricts nodes further with the Node authorizer and NodeRestriction admission;
/// skiff has neither, so a node may act on any node/pod object these rules name.
fn node_rules() -> Vec<Value> {
    vec![
        rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        rule(
            &["create"],
            &[AUTHORIZATION],
            &["subjectaccessreviews", "localsubjectaccessreviews"],
        ),
        rule(READ, &[CORE], &["services"]),
        rule(&["create", "get", "list", "watch"], &[CORE], &["nodes"]),
        rule(&["update", "patch"], &[CORE], &["nodes/status"]),
        rule(&["update", "patch"], &[CORE], &["nodes"]),
        rule(&["create", "update", "patch"], &[CORE], &["events"]),
        rule(READ, &[CORE], &["pods"]),
        rule(&["create", "delete"], &[CORE], &["pods"]),
        rule(&["update", "patch"], &[CORE], &["pods/status"]),
        rule(&["create"], &[CORE], &["pods/eviction"]),
        rule(READ, &[CORE], &["secrets", "configmaps"]),
        rule(
            &["get"],
            &[CORE],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        rule(&["get"], &[CORE], &["endpoints"]),
        rule(
            &["create", "get", "list", "watch"],
            &[CERTIFICATES],
            &["certificatesigningrequests"],
        ),
        rule(
            &["get", "create", "update", "patch", "delete"],
            &[COORDINATION],
            &["leases"],
        ),
        rule(&["get"], &[STORAGE], &["volumeattachments"]),
        rule(&["create"], &[CORE], &["serviceaccounts/token"]),
        rule(
            &["get", "update", "patch"],
            &[CORE],
            &["persistentvolumeclaims/status"],
        ),
        rule(READ, &[STORAGE], &["csidrivers"]),
        rule(
            &["get", "create", "update", "patch", "delete"],
            &[STORAGE],
            &["csinodes"],
        ),
        rule(READ, &[NODE], &["runtimeclasses"]),
        // skiff: the agent's ingress proxy (Traefik's reads in k3s; TLS secrets are read
        // through the Node authorizer's skiff addition, only those Ingresses name).
        rule(
            &["list", "watch"],
            &[NETWORKING],
            &["ingresses", "ingressclasses"],
        ),
        // skiff: the agent's service proxy.
        rule(&["list", "watch"], &[CORE], &["endpoints"]),
        rule(&["list", "watch"], &[DISCOVERY], &["endpointslices"]),
        // skiff: the agent's NetworkPolicy enforcement (kube-router's reads in k3s; every pod
        // is read through the Node authorizer's skiff addition).
        rule(&["list", "watch"], &[NETWORKING], &["networkpolicies"]),
        rule(&["list", "watch"], &[CORE], &["namespaces"]),
    ]
}

fn kube_scheduler_rules() -> Vec<Value> {
    vec![
        events_rule(),
        rule(&["create"], &[COORDINATION], &["leases"]),
        named_rule(
            &["get", "update"],
            &[COORDINATION],
            &["leases"],
            &["kube-scheduler"],
        ),
        rule(READ, &[CORE], &["nodes"]),
        rule(&["get", "list", "watch", "delete"], &[CORE], &["pods"]),
        rule(&["create"], &[CORE], &["pods/binding", "bindings"]),
        rule(&["patch", "update"], &[CORE], &["pods/status"]),
        rule(READ, &[CORE], &["services", "replicationcontrollers"]),
        rule(READ, &[APPS, EXTENSIONS], &["replicasets"]),
        rule(READ, &[APPS], &["statefulsets"]),
        rule(READ, &[POLICY], &["poddisruptionbudgets"]),
        rule(
            READ,
            &[CORE],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
        rule(READ, &[STORAGE], &["csinodes"]),
        rule(READ, &[CORE], &["namespaces"]),
        rule(READ, &[STORAGE], &["csidrivers"]),
        rule(READ, &[STORAGE], &["csistoragecapacities"]),
    ]
}

fn kube_controller_manager_rules() -> Vec<Value> {
    vec![
        events_rule(),
        rule(&["create"], &[COORDINATION], &["leases"]),
        named_rule(
            &["get", "update"],
            &[COORDINATION],
            &["leases"],
            &["kube-controller-manager"],
        ),
        rule(&["create"], &[CORE], &["secrets", "serviceaccounts"]),
        rule(&["delete"], &[CORE], &["secrets"]),
        rule(
            &["get"],
            &[CORE],
            &["namespaces", "secrets", "serviceaccounts", "configmaps"],
        ),
        rule(&["update"], &[CORE], &["secrets", "serviceaccounts"]),
        rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
        rule(&["list", "watch"], &["*"], &["*"]),
        rule(&["create"], &[CORE], &["serviceaccounts/token"]),
    ]
}

/// See [`SKIFF_CONTROLLER_ROLE`].
fn skiff_controller_rules() -> Vec<Value> {
    vec![
        // Informers, the garbage collector (ownerReference/finalizer removal, cascading
        // deletes) and the namespace controller (deleting a namespace's content).
        rule(
            &[
                "get",
                "list",
                "watch",
                "update",
                "patch",
                "delete",
                "deletecollection",
            ],
            &["*"],
            &["*"],
        ),
        events_rule(),
        // What the workload controllers create.
        rule(
            &["create"],
            &[CORE],
            &[
                "pods",
                "pods/eviction",
                "pods/binding",
                "bindings",
                "persistentvolumeclaims",
                "persistentvolumes",
            ],
        ),
        rule(
            &["create"],
            &[APPS],
            &["replicasets", "controllerrevisions"],
        ),
        rule(&["create"], &[BATCH], &["jobs"]),
        // Endpoints and EndpointSlices controllers.
        rule(&["create"], &[CORE], &["endpoints", "endpoints/restricted"]),
        rule(&["create"], &[DISCOVERY], &["endpointslices"]),
        // Service-account and root-CA publishing controllers; tokens for workloads.
        rule(
            &["create"],
            &[CORE],
            &[
                "serviceaccounts",
                "secrets",
                "configmaps",
                "serviceaccounts/token",
            ],
        ),
        // Leader election and node leases housekeeping.
        rule(&["create"], &[COORDINATION], &["leases"]),
        rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
    ]
}

fn cluster_role_binding(name: &str, role: &str, subjects: Vec<Value>) -> Value {
    json!({
        "apiVersion": RBAC_API_VERSION,
        "kind": "ClusterRoleBinding",
        "metadata": metadata(name, &[]),
        "roleRef": { "apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role },
        "subjects": subjects,
    })
}

fn group(name: &str) -> Value {
    json!({ "apiGroup": RBAC_GROUP, "kind": "Group", "name": name })
}

fn user(name: &str) -> Value {
    json!({ "apiGroup": RBAC_GROUP, "kind": "User", "name": name })
}

/// The default ClusterRoleBindings (each named after its ClusterRole): `cluster-admin` →
/// Group `system:masters`; `system:discovery`, `system:basic-user` → `system:authenticated`;
/// `system:public-info-viewer` → `system:authenticated` and `system:unauthenticated`;
/// `system:monitoring` → Group `system:monitoring`; `system:node` → Group `system:nodes`
/// (skiff binds it; upstream leaves it empty and uses the Node authorizer);
/// `system:node-proxier` → User `system:kube-proxy`; `system:kube-scheduler` → User
/// `system:kube-scheduler`; `system:kube-controller-manager` → User
/// `system:kube-controller-manager`; `system:service-account-issuer-discovery` → Group
/// `system:serviceaccounts`; `system:skiff-controller` → User `system:skiff-controller`.
pub fn bootstrap_cluster_role_bindings() -> Vec<Value> {
    vec![
        cluster_role_binding(
            "cluster-admin",
            "cluster-admin",
            vec![group(SYSTEM_MASTERS)],
        ),
        cluster_role_binding(
            "system:discovery",
            "system:discovery",
            vec![group(ALL_AUTHENTICATED)],
        ),
        cluster_role_binding(
            "system:basic-user",
            "system:basic-user",
            vec![group(ALL_AUTHENTICATED)],
        ),
        cluster_role_binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            vec![group(ALL_AUTHENTICATED), group(ALL_UNAUTHENTICATED)],
        ),
        cluster_role_binding(
            "system:monitoring",
            "system:monitoring",
            vec![group("system:monitoring")],
        ),
        cluster_role_binding("system:node", "system:node", vec![group(NODES_GROUP)]),
        cluster_role_binding(
            "system:node-proxier",
            "system:node-proxier",
            vec![user("system:kube-proxy")],
        ),
        cluster_role_binding(
            "system:kube-scheduler",
            "system:kube-scheduler",
            vec![user("system:kube-scheduler")],
        ),
        cluster_role_binding(
            "system:volume-scheduler",
            "system:volume-scheduler",
            vec![user("system:kube-scheduler")],
        ),
        cluster_role_binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            vec![user("system:kube-controller-manager")],
        ),
        cluster_role_binding(
            "system:service-account-issuer-discovery",
            "system:service-account-issuer-discovery",
            vec![group(ALL_SERVICE_ACCOUNTS)],
        ),
        cluster_role_binding(
            SKIFF_CONTROLLER_ROLE,
            SKIFF_CONTROLLER_ROLE,
            vec![user(SKIFF_CONTROLLER_USER)],
        ),
    ]
}
