//! Server-side printing: the `meta.k8s.io/v1` Table columns and cells kube-apiserver's
//! printers produce for each built-in kind (`kubectl get`), the default Name/Created At table
//! for kinds without a printer, and apimachinery's human-readable durations.

use crate::selector::{format_label_selector, format_labels, LabelSelector};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

/// A `TableColumnDefinition`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Column {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    /// 0 for the default view; 1 for columns `kubectl get -o wide` adds.
    pub priority: i32,
}

const fn c(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 1,
    }
}

const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: docs::D_NAME,
    priority: 0,
};
const AGE: Column = c("Age", "string", docs::D_CREATED);
const CONTAINERS: Column = wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);
const IMAGES: Column = wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);

/// The printer kinds: everything else gets Name + Created At.
fn printer_kind(group: &str, kind: &str) -> Option<&'static str> {
    Some(match (group, kind) {
        ("", "Pod") => "Pod",
        ("", "PodTemplate") => "PodTemplate",
        ("", "ReplicationController") => "ReplicationController",
        ("", "Service") => "Service",
        ("", "Endpoints") => "Endpoints",
        ("", "Node") => "Node",
        ("", "Event") | ("events.k8s.io", "Event") => "Event",
        ("", "Namespace") => "Namespace",
        ("", "Secret") => "Secret",
        ("", "ServiceAccount") => "ServiceAccount",
        ("", "PersistentVolume") => "PersistentVolume",
        ("", "PersistentVolumeClaim") => "PersistentVolumeClaim",
        ("", "ConfigMap") => "ConfigMap",
        ("", "ResourceQuota") => "ResourceQuota",
        ("apps", "ReplicaSet") => "ReplicaSet",
        ("apps", "DaemonSet") => "DaemonSet",
        ("apps", "Deployment") => "Deployment",
        ("apps", "StatefulSet") => "StatefulSet",
        ("apps", "ControllerRevision") => "ControllerRevision",
        ("batch", "Job") => "Job",
        ("batch", "CronJob") => "CronJob",
        ("policy", "PodDisruptionBudget") => "PodDisruptionBudget",
        ("networking.k8s.io", "Ingress") => "Ingress",
        ("networking.k8s.io", "IngressClass") => "IngressClass",
        ("networking.k8s.io", "NetworkPolicy") => "NetworkPolicy",
        ("rbac.authorization.k8s.io", "RoleBinding") => "RoleBinding",
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => "ClusterRoleBinding",
        ("coordination.k8s.io", "Lease") => "Lease",
        ("storage.k8s.io", "StorageClass") => "StorageClass",
        ("scheduling.k8s.io", "PriorityClass") => "PriorityClass",
        ("discovery.k8s.io", "EndpointSlice") => "EndpointSlice",
        _ => return None,
    })
}

/// The table columns kube-apiserver reports for a kind, in order.
pub fn columns(group: &str, kind: &str) -> Vec<Column> {
    use docs::*;
    let Some(k) = printer_kind(group, kind) else {
        return vec![NAME, c("Created At", "date", D_CREATED)];
    };
    match k {
        "Pod" => vec![
            NAME,
            c("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
            c("Status", "string", "The aggregate status of the containers in this pod."),
            c("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
            AGE,
            wide("IP", "string", D_POD_IP),
            wide("Node", "string", D_POD_NODE_NAME),
            wide("Nominated Node", "string", D_POD_NOMINATED),
            wide("Readiness Gates", "string", D_POD_READINESS_GATES),
        ],
        "PodTemplate" => vec![
            NAME,
            c("Containers", "string", "Names of each container in the template."),
            c("Images", "string", "Images referenced by each container in the template."),
            c("Pod Labels", "string", "The labels for the pod template."),
        ],
        "PodDisruptionBudget" => vec![
            NAME,
            c("Min Available", "string", "The minimum number of pods that must be available."),
            c("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
            c("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
            AGE,
        ],
        "ReplicationController" => vec![
            NAME,
            c("Desired", "integer", D_RC_REPLICAS),
            c("Current", "integer", D_RC_STATUS_REPLICAS),
            c("Ready", "integer", D_RC_READY),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", D_RC_SELECTOR),
        ],
        "ReplicaSet" => vec![
            NAME,
            c("Desired", "integer", D_RS_REPLICAS),
            c("Current", "integer", D_RS_STATUS_REPLICAS),
            c("Ready", "integer", D_RS_READY),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", D_RS_SELECTOR),
        ],
        "DaemonSet" => vec![
            NAME,
            c("Desired", "integer", D_DS_DESIRED),
            c("Current", "integer", D_DS_CURRENT),
            c("Ready", "integer", D_DS_READY),
            c("Up-to-date", "integer", D_DS_UPDATED),
            c("Available", "integer", D_DS_AVAILABLE),
            c("Node Selector", "string", D_POD_NODE_SELECTOR),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", D_DS_SELECTOR),
        ],
        "Job" => vec![
            NAME,
            c("Status", "string", "Status of the job."),
            c("Completions", "string", D_JOB_SUCCEEDED),
            c("Duration", "string", "Time required to complete the job."),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", D_JOB_SELECTOR),
        ],
        "CronJob" => vec![
            NAME,
            c("Schedule", "string", D_CJ_SCHEDULE),
            c("Timezone", "string", D_CJ_TIMEZONE),
            c("Suspend", "boolean", D_CJ_SUSPEND),
            c("Active", "integer", D_CJ_ACTIVE),
            c("Last Schedule", "string", D_CJ_LAST_SCHEDULE),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", D_JOB_SELECTOR),
        ],
        "Service" => vec![
            NAME,
            c("Type", "string", D_SVC_TYPE),
            c("Cluster-IP", "string", D_SVC_CLUSTER_IP),
            c("External-IP", "string", D_SVC_EXTERNAL_IPS),
            c("Port(s)", "string", D_SVC_PORTS),
            AGE,
            wide("Selector", "string", D_SVC_SELECTOR),
        ],
        "Ingress" => vec![
            NAME,
            c("Class", "string", "The name of the IngressClass resource that should be used for additional configuration"),
            c("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
            c("Address", "string", "Address is a list containing ingress points for the load-balancer"),
            c("Ports", "string", "Ports of TLS configurations that open"),
            AGE,
        ],
        "IngressClass" => vec![
            NAME,
            c("Controller", "string", "Controller that is responsible for handling this class"),
            c("Parameters", "string", "A reference to a resource with additional parameters"),
            AGE,
        ],
        "StatefulSet" => vec![
            NAME,
            c("Ready", "string", "Number of the pod with ready state"),
            AGE,
            CONTAINERS,
            IMAGES,
        ],
        "Endpoints" => vec![NAME, c("Endpoints", "string", D_EP_SUBSETS), AGE],
        "Node" => vec![
            NAME,
            c("Status", "string", "The status of the node"),
            c("Roles", "string", "The roles of the node"),
            AGE,
            c("Version", "string", D_NODE_KUBELET),
            wide("Internal-IP", "string", D_NODE_ADDRESSES),
            wide("External-IP", "string", D_NODE_ADDRESSES),
            wide("OS-Image", "string", D_NODE_OS_IMAGE),
            wide("Kernel-Version", "string", D_NODE_KERNEL),
            wide("Container-Runtime", "string", D_NODE_RUNTIME),
        ],
        "Event" => vec![
            c("Last Seen", "string", D_EV_LAST),
            c("Type", "string", D_EV_TYPE),
            c("Reason", "string", D_EV_REASON),
            c("Object", "string", D_EV_INVOLVED),
            wide("Subobject", "string", D_EV_FIELD_PATH),
            wide("Source", "string", D_EV_SOURCE),
            c("Message", "string", D_EV_MESSAGE),
            wide("First Seen", "string", D_EV_FIRST),
            wide("Count", "string", D_EV_COUNT),
            Column {
                priority: 1,
                ..NAME
            },
        ],
        "Namespace" => vec![NAME, c("Status", "string", "The status of the namespace"), AGE],
        "Secret" => vec![
            NAME,
            c("Type", "string", D_SECRET_TYPE),
            c("Data", "string", D_SECRET_DATA),
            AGE,
        ],
        "ServiceAccount" => vec![NAME, c("Secrets", "string", D_SA_SECRETS), AGE],
        "PersistentVolume" => vec![
            NAME,
            c("Capacity", "string", D_PV_CAPACITY),
            c("Access Modes", "string", D_PV_ACCESS),
            c("Reclaim Policy", "string", D_PV_RECLAIM),
            c("Status", "string", D_PV_PHASE),
            c("Claim", "string", D_PV_CLAIM),
            c("StorageClass", "string", "StorageClass of the pv"),
            c("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
            c("Reason", "string", D_PV_REASON),
            AGE,
            wide("VolumeMode", "string", D_PV_MODE),
        ],
        "PersistentVolumeClaim" => vec![
            NAME,
            c("Status", "string", D_PVC_PHASE),
            c("Volume", "string", D_PVC_VOLUME),
            c("Capacity", "string", D_PVC_CAPACITY),
            c("Access Modes", "string", D_PVC_ACCESS),
            c("StorageClass", "string", "StorageClass of the pvc"),
            c("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
            AGE,
            wide("VolumeMode", "string", D_PVC_MODE),
        ],
        "Deployment" => vec![
            NAME,
            c("Ready", "string", "Number of the pod with ready state"),
            c("Up-to-date", "string", D_DEP_UPDATED),
            c("Available", "string", D_DEP_AVAILABLE),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", D_DEP_SELECTOR),
        ],
        "ConfigMap" => vec![NAME, c("Data", "string", D_CM_DATA), AGE],
        "NetworkPolicy" => vec![NAME, c("Pod-Selector", "string", D_NP_POD_SELECTOR), AGE],
        "RoleBinding" => vec![
            NAME,
            c("Role", "string", D_RB_ROLE_REF),
            AGE,
            wide("Users", "string", "Users in the roleBinding"),
            wide("Groups", "string", "Groups in the roleBinding"),
            wide("ServiceAccounts", "string", "ServiceAccounts in the roleBinding"),
        ],
        "ClusterRoleBinding" => vec![
            NAME,
            c("Role", "string", D_CRB_ROLE_REF),
            AGE,
            wide("Users", "string", "Users in the clusterRoleBinding"),
            wide("Groups", "string", "Groups in the clusterRoleBinding"),
            wide("ServiceAccounts", "string", "ServiceAccounts in the clusterRoleBinding"),
        ],
        "Lease" => vec![NAME, c("Holder", "string", D_LEASE_HOLDER), AGE],
        "StorageClass" => vec![
            NAME,
            c("Provisioner", "string", D_SC_PROVISIONER),
            c("ReclaimPolicy", "string", D_SC_RECLAIM),
            c("VolumeBindingMode", "string", D_SC_BINDING),
            c("AllowVolumeExpansion", "string", D_SC_EXPANSION),
            AGE,
        ],
        "ControllerRevision" => vec![
            NAME,
            c("Controller", "string", "Controller of the object"),
            c("Revision", "string", D_CR_REVISION),
            AGE,
        ],
        "ResourceQuota" => vec![
            NAME,
            AGE,
            c("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
            c("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
        ],
        "PriorityClass" => vec![
            NAME,
            c("Value", "integer", D_PC_VALUE),
            c("Global-Default", "boolean", D_PC_DEFAULT),
            AGE,
            c("PreemptionPolicy", "string", D_PC_PREEMPTION),
        ],
        "EndpointSlice" => vec![
            NAME,
            c("AddressType", "string", D_EPS_ADDRESS_TYPE),
            c("Ports", "string", D_EPS_PORTS),
            c("Endpoints", "string", D_EPS_ENDPOINTS),
            AGE,
        ],
        _ => vec![NAME, c("Created At", "date", D_CREATED)],
    }
}

/// One row's cells for an object of the kind, in `columns` order: strings, and JSON numbers
/// or booleans where the upstream printer puts integers or bools.
pub fn cells(group: &str, kind: &str, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let Some(k) = printer_kind(group, kind) else {
        // metav1.Time formatted RFC 3339 in UTC; Go's zero time when unset.
        let created = match time_at(obj, "metadata.creationTimestamp") {
            Some(t) => t.to_rfc3339_opts(SecondsFormat::Secs, true),
            None => "0001-01-01T00:00:00Z".to_string(),
        };
        return vec![json!(name(obj)), json!(created)];
    };
    match k {
        "Pod" => pod_cells(obj, now),
        "PodTemplate" => {
            let (names, images) = containers(obj, "template.spec.containers");
            vec![
                json!(name(obj)),
                json!(names),
                json!(images),
                json!(format_labels(map_at(obj, "template.metadata.labels"))),
            ]
        }
        "PodDisruptionBudget" => vec![
            json!(name(obj)),
            json!(int_or_string(at(obj, "spec.minAvailable"))),
            json!(int_or_string(at(obj, "spec.maxUnavailable"))),
            json!(int(obj, "status.disruptionsAllowed")),
            json!(age(obj, now)),
        ],
        "ReplicationController" => {
            let (names, images) = containers(obj, "spec.template.spec.containers");
            vec![
                json!(name(obj)),
                json!(int_or(obj, "spec.replicas", 1)),
                json!(int(obj, "status.replicas")),
                json!(int(obj, "status.readyReplicas")),
                json!(age(obj, now)),
                json!(names),
                json!(images),
                json!(format_labels(map_at(obj, "spec.selector"))),
            ]
        }
        "ReplicaSet" => {
            let (names, images) = containers(obj, "spec.template.spec.containers");
            vec![
                json!(name(obj)),
                json!(int_or(obj, "spec.replicas", 1)),
                json!(int(obj, "status.replicas")),
                json!(int(obj, "status.readyReplicas")),
                json!(age(obj, now)),
                json!(names),
                json!(images),
                json!(format_label_selector(at(obj, "spec.selector"))),
            ]
        }
        "DaemonSet" => {
            let (names, images) = containers(obj, "spec.template.spec.containers");
            vec![
                json!(name(obj)),
                json!(int(obj, "status.desiredNumberScheduled")),
                json!(int(obj, "status.currentNumberScheduled")),
                json!(int(obj, "status.numberReady")),
                json!(int(obj, "status.updatedNumberScheduled")),
                json!(int(obj, "status.numberAvailable")),
                json!(format_labels(map_at(
                    obj,
                    "spec.template.spec.nodeSelector"
                ))),
                json!(age(obj, now)),
                json!(names),
                json!(images),
                json!(format_label_selector(at(obj, "spec.selector"))),
            ]
        }
        "Job" => job_cells(obj, now),
        "CronJob" => {
            let last = match at(obj, "status.lastScheduleTime") {
                None | Some(Value::Null) => "<none>".to_string(),
                Some(v) => translate_timestamp(Some(v), now),
            };
            let tz = match at(obj, "spec.timeZone").and_then(Value::as_str) {
                Some(t) => t.to_string(),
                None => "<none>".to_string(),
            };
            let suspend = match at(obj, "spec.suspend").and_then(Value::as_bool) {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            };
            let (names, images) = containers(obj, "spec.jobTemplate.spec.template.spec.containers");
            vec![
                json!(name(obj)),
                json!(st(obj, "spec.schedule")),
                json!(tz),
                json!(suspend),
                json!(arr(obj, "status.active").len()),
                json!(last),
                json!(age(obj, now)),
                json!(names),
                json!(images),
                json!(format_label_selector(at(
                    obj,
                    "spec.jobTemplate.spec.selector"
                ))),
            ]
        }
        "Service" => service_cells(obj, now),
        "Ingress" => {
            let class = at(obj, "spec.ingressClassName")
                .and_then(Value::as_str)
                .unwrap_or("<none>");
            let ports = if arr(obj, "spec.tls").is_empty() {
                "80"
            } else {
                "80, 443"
            };
            vec![
                json!(name(obj)),
                json!(class),
                json!(format_hosts(arr(obj, "spec.rules"))),
                json!(load_balancer_ips(arr(obj, "status.loadBalancer.ingress")).join(",")),
                json!(ports),
                json!(age(obj, now)),
            ]
        }
        "IngressClass" => {
            let params = match at(obj, "spec.parameters") {
                Some(p @ Value::Object(_)) => {
                    let mut s = st(p, "kind").to_string();
                    if let Some(g) = at(p, "apiGroup").and_then(Value::as_str) {
                        s = format!("{s}.{g}");
                    }
                    format!("{s}/{}", st(p, "name"))
                }
                _ => "<none>".to_string(),
            };
            vec![
                json!(name(obj)),
                json!(st(obj, "spec.controller")),
                json!(params),
                json!(age(obj, now)),
            ]
        }
        "StatefulSet" => {
            let (names, images) = containers(obj, "spec.template.spec.containers");
            vec![
                json!(name(obj)),
                json!(format!(
                    "{}/{}",
                    int(obj, "status.readyReplicas"),
                    int_or(obj, "spec.replicas", 1)
                )),
                json!(age(obj, now)),
                json!(names),
                json!(images),
            ]
        }
        "Endpoints" => vec![
            json!(name(obj)),
            json!(format_endpoints(arr(obj, "subsets"))),
            json!(age(obj, now)),
        ],
        "EndpointSlice" => {
            let ports: Vec<String> = arr(obj, "ports")
                .iter()
                .map(|p| {
                    if let Some(n) = at(p, "port").and_then(Value::as_i64) {
                        n.to_string()
                    } else if let Some(n) = at(p, "name").and_then(Value::as_str) {
                        n.to_string()
                    } else {
                        "*".to_string()
                    }
                })
                .collect();
            let addrs: Vec<String> = arr(obj, "endpoints")
                .iter()
                .flat_map(|e| arr(e, "addresses").iter().map(|a| str_of(a).to_string()))
                .collect();
            vec![
                json!(name(obj)),
                json!(st(obj, "addressType")),
                json!(list_with_more(&ports)),
                json!(list_with_more(&addrs)),
                json!(age(obj, now)),
            ]
        }
        "Node" => node_cells(obj, now),
        "Event" => event_cells(group, obj, now),
        "Namespace" => vec![
            json!(name(obj)),
            json!(st(obj, "status.phase")),
            json!(age(obj, now)),
        ],
        "Secret" => vec![
            json!(name(obj)),
            json!(st(obj, "type")),
            json!(map_at(obj, "data").map_or(0, Map::len)),
            json!(age(obj, now)),
        ],
        "ServiceAccount" => vec![
            json!(name(obj)),
            json!(arr(obj, "secrets").len()),
            json!(age(obj, now)),
        ],
        "PersistentVolume" => pv_cells(obj, now),
        "PersistentVolumeClaim" => pvc_cells(obj, now),
        "Deployment" => {
            let selector =
                match LabelSelector::from_json(at(obj, "spec.selector").unwrap_or(&Value::Null)) {
                    Ok(s) => s.to_string(),
                    Err(_) => "<invalid>".to_string(),
                };
            let (names, images) = containers(obj, "spec.template.spec.containers");
            vec![
                json!(name(obj)),
                json!(format!(
                    "{}/{}",
                    int(obj, "status.readyReplicas"),
                    int_or(obj, "spec.replicas", 1)
                )),
                json!(int(obj, "status.updatedReplicas")),
                json!(int(obj, "status.availableReplicas")),
                json!(age(obj, now)),
                json!(names),
                json!(images),
                json!(selector),
            ]
        }
        "ConfigMap" => vec![
            json!(name(obj)),
            json!(
                map_at(obj, "data").map_or(0, Map::len)
                    + map_at(obj, "binaryData").map_or(0, Map::len)
            ),
            json!(age(obj, now)),
        ],
        "NetworkPolicy" => vec![
            json!(name(obj)),
            json!(format_label_selector(Some(
                at(obj, "spec.podSelector").unwrap_or(&json!({}))
            ))),
            json!(age(obj, now)),
        ],
        "RoleBinding" | "ClusterRoleBinding" => {
            let (users, groups, sas) = subjects(arr(obj, "subjects"));
            vec![
                json!(name(obj)),
                json!(format!(
                    "{}/{}",
                    st(obj, "roleRef.kind"),
                    st(obj, "roleRef.name")
                )),
                json!(age(obj, now)),
                json!(users.join(", ")),
                json!(groups.join(", ")),
                json!(sas.join(", ")),
            ]
        }
        "Lease" => vec![
            json!(name(obj)),
            json!(st(obj, "spec.holderIdentity")),
            json!(age(obj, now)),
        ],
        "StorageClass" => {
            let ann = |k: &str| {
                map_at(obj, "metadata.annotations")
                    .and_then(|m| m.get(k))
                    .and_then(Value::as_str)
                    == Some("true")
            };
            let mut n = name(obj).to_string();
            if ann("storageclass.kubernetes.io/is-default-class")
                || ann("storageclass.beta.kubernetes.io/is-default-class")
            {
                n.push_str(" (default)");
            }
            vec![
                json!(n),
                json!(st(obj, "provisioner")),
                json!(str_or(obj, "reclaimPolicy", "Delete")),
                json!(str_or(obj, "volumeBindingMode", "Immediate")),
                json!(at(obj, "allowVolumeExpansion")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)),
                json!(age(obj, now)),
            ]
        }
        "ControllerRevision" => vec![
            json!(name(obj)),
            json!(controller_of(obj)),
            json!(int(obj, "revision")),
            json!(age(obj, now)),
        ],
        "ResourceQuota" => {
            let (req, lim) = quota_columns(obj);
            vec![
                json!(name(obj)),
                json!(age(obj, now)),
                json!(req),
                json!(lim),
            ]
        }
        "PriorityClass" => vec![
            json!(name(obj)),
            json!(int(obj, "value")),
            json!(at(obj, "globalDefault")
                .and_then(Value::as_bool)
                .unwrap_or(false)),
            json!(age(obj, now)),
            json!(st(obj, "preemptionPolicy")),
        ],
        _ => vec![json!(name(obj))],
    }
}

/// The row `conditions` upstream attaches (pods that finished are marked Completed).
pub fn row_conditions(group: &str, kind: &str, obj: &Value) -> Option<Value> {
    if !group.is_empty() || kind != "Pod" {
        return None;
    }
    let (reason, message) = match st(obj, "status.phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

// --- pods ---

fn pod_cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let init_specs = arr(pod, "spec.initContainers");
    let restartable = |cname: &str| {
        init_specs
            .iter()
            .any(|c| st(c, "name") == cname && st(c, "restartPolicy") == "Always")
    };
    let mut restarts: i64 = 0;
    let mut restartable_restarts: i64 = 0;
    let total = arr(pod, "spec.containers").len()
        + init_specs
            .iter()
            .filter(|c| st(c, "restartPolicy") == "Always")
            .count();
    let mut ready = 0usize;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_restartable_restart: Option<DateTime<Utc>> = None;
    let later = |cur: Option<DateTime<Utc>>, t: Option<DateTime<Utc>>| match (cur, t) {
        (Some(a), Some(b)) if b > a => Some(b),
        (None, Some(b)) => Some(b),
        (a, _) => a,
    };

    let phase = st(pod, "status.phase");
    let mut reason = phase.to_string();
    let status_reason = st(pod, "status.reason");
    if !status_reason.is_empty() {
        reason = status_reason.to_string();
    }
    for cond in arr(pod, "status.conditions") {
        if st(cond, "type") == "PodScheduled" && st(cond, "reason") == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }

    let mut initializing = false;
    for (i, cs) in arr(pod, "status.initContainerStatuses").iter().enumerate() {
        restarts += int(cs, "restartCount");
        let finished = time_at(cs, "lastState.terminated.finishedAt");
        if at(cs, "lastState.terminated").is_some_and(Value::is_object) {
            last_restart = later(last_restart, finished);
        }
        let is_restartable = restartable(st(cs, "name"));
        if is_restartable {
            restartable_restarts += int(cs, "restartCount");
            if at(cs, "lastState.terminated").is_some_and(Value::is_object) {
                last_restartable_restart = later(last_restartable_restart, finished);
            }
        }
        let terminated = at(cs, "state.terminated").filter(|v| v.is_object());
        let waiting = at(cs, "state.waiting").filter(|v| v.is_object());
        if let Some(t) = terminated {
            if int(t, "exitCode") == 0 {
                continue;
            }
        }
        if is_restartable && at(cs, "started").and_then(Value::as_bool) == Some(true) {
            if at(cs, "ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            let r = st(t, "reason");
            reason = if r.is_empty() {
                let sig = int(t, "signal");
                if sig != 0 {
                    format!("Init:Signal:{sig}")
                } else {
                    format!("Init:ExitCode:{}", int(t, "exitCode"))
                }
            } else {
                format!("Init:{r}")
            };
        } else if let Some(w) = waiting.filter(|w| {
            let r = st(w, "reason");
            !r.is_empty() && r != "PodInitializing"
        }) {
            reason = format!("Init:{}", st(w, "reason"));
        } else {
            reason = format!("Init:{}/{}", i, init_specs.len());
        }
        initializing = true;
        break;
    }

    let initialized = arr(pod, "status.conditions")
        .iter()
        .any(|c| st(c, "type") == "Initialized" && st(c, "status") == "True");
    if !initializing || initialized {
        restarts = restartable_restarts;
        last_restart = last_restartable_restart;
        let mut has_running = false;
        for cs in arr(pod, "status.containerStatuses").iter().rev() {
            restarts += int(cs, "restartCount");
            if at(cs, "lastState.terminated").is_some_and(Value::is_object) {
                last_restart = later(last_restart, time_at(cs, "lastState.terminated.finishedAt"));
            }
            let waiting_reason = at(cs, "state.waiting")
                .filter(|v| v.is_object())
                .map(|w| st(w, "reason"))
                .unwrap_or("");
            let terminated = at(cs, "state.terminated").filter(|v| v.is_object());
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                let r = st(t, "reason");
                reason = if !r.is_empty() {
                    r.to_string()
                } else if int(t, "signal") != 0 {
                    format!("Signal:{}", int(t, "signal"))
                } else {
                    format!("ExitCode:{}", int(t, "exitCode"))
                };
            } else if at(cs, "ready").and_then(Value::as_bool) == Some(true)
                && at(cs, "state.running").is_some_and(Value::is_object)
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = arr(pod, "status.conditions")
                .iter()
                .any(|c| st(c, "type") == "Ready" && st(c, "status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    let deleting = at(pod, "metadata.deletionTimestamp").is_some_and(|v| !v.is_null());
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".to_string();
    }

    let restarts_str = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    };

    let mut pod_ip = st(pod, "status.podIP").to_string();
    if pod_ip.is_empty() {
        pod_ip = arr(pod, "status.podIPs")
            .first()
            .map(|p| st(p, "ip").to_string())
            .unwrap_or_default();
    }
    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let gates = arr(pod, "spec.readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conds = arr(pod, "status.conditions");
        let true_count = gates
            .iter()
            .filter(|g| {
                conds
                    .iter()
                    .find(|c| st(c, "type") == st(g, "conditionType"))
                    .is_some_and(|c| st(c, "status") == "True")
            })
            .count();
        format!("{}/{}", true_count, gates.len())
    };
    vec![
        json!(name(pod)),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_str),
        json!(age(pod, now)),
        json!(or_none(&pod_ip)),
        json!(or_none(st(pod, "spec.nodeName"))),
        json!(or_none(st(pod, "status.nominatedNodeName"))),
        json!(readiness_gates),
    ]
}

// --- jobs ---

fn job_cells(job: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = int(job, "status.succeeded");
    let completions = match at(job, "spec.completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = int(job, "spec.parallelism");
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let duration = match (
        time_at(job, "status.startTime"),
        time_at(job, "status.completionTime"),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now - start),
        (Some(start), Some(end)) => human_duration(end - start),
    };
    let cond = |t: &str| {
        arr(job, "status.conditions")
            .iter()
            .find(|c| st(c, "type") == t)
            .is_some_and(|c| st(c, "status") == "True")
    };
    let status = if cond("Complete") {
        "Complete"
    } else if cond("Failed") {
        "Failed"
    } else if at(job, "metadata.deletionTimestamp").is_some_and(|v| !v.is_null()) {
        "Terminating"
    } else if cond("Suspended") {
        "Suspended"
    } else if cond("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers(job, "spec.template.spec.containers");
    vec![
        json!(name(job)),
        json!(status),
        json!(completions),
        json!(duration),
        json!(age(job, now)),
        json!(names),
        json!(images),
        json!(format_label_selector(at(job, "spec.selector"))),
    ]
}

// --- services ---

fn load_balancer_ips(ingress: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in ingress {
        let ip = st(i, "ip");
        let host = st(i, "hostname");
        let v = if !ip.is_empty() { ip } else { host };
        if !v.is_empty() && !out.iter().any(|x| x == v) {
            out.push(v.to_string());
        }
    }
    out.sort();
    out
}

fn service_cells(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let svc_type = str_or(svc, "spec.type", "ClusterIP");
    let mut cluster_ip = st(svc, "spec.clusterIP").to_string();
    if cluster_ip.is_empty() {
        cluster_ip = arr(svc, "spec.clusterIPs")
            .first()
            .map(|v| str_of(v).to_string())
            .unwrap_or_default();
    }
    if cluster_ip.is_empty() {
        cluster_ip = "<none>".to_string();
    }
    let external_ips: Vec<String> = arr(svc, "spec.externalIPs")
        .iter()
        .map(|v| str_of(v).to_string())
        .collect();
    let external = match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let mut lb = load_balancer_ips(arr(svc, "status.loadBalancer.ingress"));
            if !external_ips.is_empty() {
                lb.extend(external_ips);
                lb.join(",")
            } else if !lb.is_empty() {
                lb.join(",")
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => st(svc, "spec.externalName").to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = arr(svc, "spec.ports")
        .iter()
        .map(|p| {
            let port = int(p, "port");
            let proto = str_or(p, "protocol", "TCP");
            let node_port = int(p, "nodePort");
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        json!(name(svc)),
        json!(svc_type),
        json!(cluster_ip),
        json!(external),
        json!(ports),
        json!(age(svc, now)),
        json!(format_labels(map_at(svc, "spec.selector"))),
    ]
}

fn format_hosts(rules: &[Value]) -> String {
    let max = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for r in rules {
        if list.len() == max {
            more = true;
        }
        let host = st(r, "host");
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", rules.len() - max)
    } else {
        ret
    }
}

fn format_endpoints(subsets: &[Value]) -> String {
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let max = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addrs = arr(ss, "addresses");
        let ports = arr(ss, "ports");
        if ports.is_empty() {
            count += addrs.len();
            for a in addrs {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(st(a, "ip").to_string());
            }
            continue;
        }
        for p in ports {
            count += addrs.len();
            for a in addrs {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(join_host_port(st(a, "ip"), int(p, "port")));
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - max)
    } else {
        ret
    }
}

/// `net.JoinHostPort`: brackets IPv6 hosts.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn list_with_more(items: &[String]) -> String {
    let max = 3;
    if items.len() > max {
        return format!("{} + {} more...", items[..max].join(","), items.len() - max);
    }
    let ret = items.join(",");
    if ret.is_empty() {
        "<unset>".to_string()
    } else {
        ret
    }
}

// --- nodes ---

fn node_cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut ready_cond: Option<&Value> = None;
    for c in arr(node, "status.conditions") {
        if st(c, "type") == "Ready" {
            ready_cond = Some(c);
        }
    }
    let mut status: Vec<&str> = Vec::new();
    if let Some(c) = ready_cond {
        status.push(if st(c, "status") == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if status.is_empty() {
        status.push("Unknown");
    }
    if at(node, "spec.unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<String> = Vec::new();
    if let Some(labels) = map_at(node, "metadata.labels") {
        for (k, v) in labels {
            let role = if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
                r.to_string()
            } else if k == "kubernetes.io/role" {
                str_of(v).to_string()
            } else {
                continue;
            };
            if !role.is_empty() && !roles.contains(&role) {
                roles.push(role);
            }
        }
    }
    roles.sort();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |t: &str| {
        arr(node, "status.addresses")
            .iter()
            .find(|a| st(a, "type") == t)
            .map(|a| st(a, "address").to_string())
            .unwrap_or_else(|| "<none>".to_string())
    };
    let unknown = |p: &str| {
        let s = st(node, p);
        if s.is_empty() {
            "<unknown>".to_string()
        } else {
            s.to_string()
        }
    };
    vec![
        json!(name(node)),
        json!(status.join(",")),
        json!(roles),
        json!(age(node, now)),
        json!(st(node, "status.nodeInfo.kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(unknown("status.nodeInfo.osImage")),
        json!(unknown("status.nodeInfo.kernelVersion")),
        json!(unknown("status.nodeInfo.containerRuntimeVersion")),
    ]
}

// --- events ---

fn event_cells(group: &str, ev: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // events.k8s.io/v1 renames the core/v1 fields; the printer sees the same internal object.
    let new = group == "events.k8s.io";
    let f = |core: &'static str, events: &'static str| if new { events } else { core };
    let involved = at(ev, f("involvedObject", "regarding")).unwrap_or(&Value::Null);
    let first_ts = at(ev, f("firstTimestamp", "deprecatedFirstTimestamp"));
    let first = if is_time(first_ts) {
        translate_timestamp(first_ts, now)
    } else {
        translate_timestamp(at(ev, "eventTime"), now)
    };
    let last_ts = at(ev, f("lastTimestamp", "deprecatedLastTimestamp"));
    let mut last = if is_time(last_ts) {
        translate_timestamp(last_ts, now)
    } else {
        first.clone()
    };
    let mut count = int(ev, f("count", "deprecatedCount"));
    if let Some(series) = at(ev, "series").filter(|s| s.is_object()) {
        last = translate_timestamp(at(series, "lastObservedTime"), now);
        count = int(series, "count");
    } else if count == 0 {
        count = 1;
    }
    let kind = st(involved, "kind").to_lowercase();
    let iname = st(involved, "name");
    let target = if iname.is_empty() {
        kind
    } else {
        format!("{kind}/{iname}")
    };
    let source = at(ev, f("source", "deprecatedSource")).unwrap_or(&Value::Null);
    let component = first_non_empty(
        st(source, "component"),
        st(ev, f("reportingComponent", "reportingController")),
    );
    let instance = first_non_empty(st(source, "host"), st(ev, "reportingInstance"));
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(st(ev, "type")),
        json!(st(ev, "reason")),
        json!(target),
        json!(st(involved, "fieldPath")),
        json!(source),
        json!(st(ev, f("message", "note")).trim()),
        json!(first),
        json!(count),
        json!(name(ev)),
    ]
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

// --- storage ---

fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| str_of(v) == m);
    let mut out = Vec::new();
    for (m, short) in [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ] {
        if has(m) {
            out.push(short);
        }
    }
    out.join(",")
}

fn beta_class(obj: &Value) -> Option<&str> {
    map_at(obj, "metadata.annotations")
        .and_then(|m| m.get("volume.beta.kubernetes.io/storage-class"))
        .and_then(Value::as_str)
}

fn pv_cells(pv: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let claim = match at(pv, "spec.claimRef").filter(|v| v.is_object()) {
        Some(c) => format!("{}/{}", st(c, "namespace"), st(c, "name")),
        None => String::new(),
    };
    let mut phase = st(pv, "status.phase").to_string();
    if at(pv, "metadata.deletionTimestamp").is_some_and(|v| !v.is_null()) {
        phase = "Terminating".to_string();
    }
    let class = beta_class(pv).unwrap_or_else(|| st(pv, "spec.storageClassName"));
    vec![
        json!(name(pv)),
        json!(quantity(at(pv, "spec.capacity.storage"))),
        json!(access_modes(arr(pv, "spec.accessModes"))),
        json!(st(pv, "spec.persistentVolumeReclaimPolicy")),
        json!(phase),
        json!(claim),
        json!(class),
        json!(str_or(pv, "spec.volumeAttributesClassName", "<unset>")),
        json!(st(pv, "status.reason")),
        json!(age(pv, now)),
        json!(str_or(pv, "spec.volumeMode", "<unset>")),
    ]
}

fn pvc_cells(pvc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut phase = st(pvc, "status.phase").to_string();
    if at(pvc, "metadata.deletionTimestamp").is_some_and(|v| !v.is_null()) {
        phase = "Terminating".to_string();
    }
    let volume = st(pvc, "spec.volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(at(pvc, "status.capacity.storage")),
            access_modes(arr(pvc, "status.accessModes")),
        )
    };
    let class = beta_class(pvc).unwrap_or_else(|| st(pvc, "spec.storageClassName"));
    vec![
        json!(name(pvc)),
        json!(phase),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(class),
        json!(str_or(pvc, "spec.volumeAttributesClassName", "<unset>")),
        json!(age(pvc, now)),
        json!(str_or(pvc, "spec.volumeMode", "<unset>")),
    ]
}

/// A stored quantity as `Quantity.String()` prints it; the zero quantity prints `0`.
fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".to_string(),
    }
}

fn quota_columns(rq: &Value) -> (String, String) {
    let Some(hard) = map_at(rq, "status.hard") else {
        return (String::new(), String::new());
    };
    let used = map_at(rq, "status.used");
    let mut names: Vec<&String> = hard.keys().collect();
    names.sort();
    let mut req = Vec::new();
    let mut lim = Vec::new();
    for r in names {
        let u = quantity(used.and_then(|m| m.get(r.as_str())));
        let h = quantity(hard.get(r.as_str()));
        let entry = format!("{r}: {u}/{h}");
        let pieces: Vec<&str> = r.split('.').collect();
        if pieces.len() > 1 && pieces[0] == "limits" {
            lim.push(entry);
        } else {
            req.push(entry);
        }
    }
    (req.join(", "), lim.join(", "))
}

// --- misc ---

fn subjects(subjects: &[Value]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in subjects {
        match st(s, "kind") {
            "ServiceAccount" => sas.push(format!("{}/{}", st(s, "namespace"), st(s, "name"))),
            "User" => users.push(st(s, "name").to_string()),
            "Group" => groups.push(st(s, "name").to_string()),
            _ => {}
        }
    }
    (users, groups, sas)
}

fn controller_of(obj: &Value) -> String {
    let Some(owner) = arr(obj, "metadata.ownerReferences")
        .iter()
        .find(|o| at(o, "controller").and_then(Value::as_bool) == Some(true))
    else {
        return "<none>".to_string();
    };
    let api_version = st(owner, "apiVersion");
    let group = match api_version.split_once('/') {
        Some((g, _)) => g,
        None => "",
    };
    let kind = st(owner, "kind");
    let oname = st(owner, "name");
    if kind.is_empty() && group.is_empty() {
        return oname.to_string();
    }
    let gk = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    format!("{}/{}", gk.to_lowercase(), oname)
}

fn int_or_string(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "N/A".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => other.to_string(),
    }
}

fn containers(obj: &Value, path: &str) -> (String, String) {
    let cs = arr(obj, path);
    let names: Vec<&str> = cs.iter().map(|c| st(c, "name")).collect();
    let images: Vec<&str> = cs.iter().map(|c| st(c, "image")).collect();
    (names.join(","), images.join(","))
}

// --- durations and timestamps ---

/// apimachinery's `duration.HumanDuration`: about two significant figures (`45s`, `5m30s`,
/// `95m`, `5h10m`, `30h`, `3d4h`, `689d`, `2y45d`, `9y`); up to one second in the future
/// reads `0s`, further is `<invalid>`.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d.num_minutes();
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d.num_hours();
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{}h", hours / 24, h);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{}d", hours / 24 / 365, dy);
    }
    format!("{}y", hours / 24 / 365)
}

/// The AGE cell: time since `metadata.creationTimestamp`, `<unknown>` when it is missing.
pub fn age(obj: &Value, now: DateTime<Utc>) -> String {
    translate_timestamp(at(obj, "metadata.creationTimestamp"), now)
}

/// Time since an RFC 3339 timestamp value, `<unknown>` when missing or unparseable.
pub fn translate_timestamp(ts: Option<&Value>, now: DateTime<Utc>) -> String {
    match ts.and_then(parse_time) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    let s = v.as_str()?;
    let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    // Go's zero time (0001-01-01T00:00:00Z) counts as unset.
    (t.timestamp() != -62_135_596_800 || t.timestamp_subsec_nanos() != 0).then_some(t)
}

fn is_time(v: Option<&Value>) -> bool {
    v.and_then(parse_time).is_some()
}

fn time_at(obj: &Value, path: &str) -> Option<DateTime<Utc>> {
    at(obj, path).and_then(parse_time)
}

// --- JSON access ---

fn at<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(obj, |v, k| v.get(k))
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn st<'a>(obj: &'a Value, path: &str) -> &'a str {
    at(obj, path).and_then(Value::as_str).unwrap_or("")
}

fn str_or<'a>(obj: &'a Value, path: &str, default: &'a str) -> &'a str {
    at(obj, path).and_then(Value::as_str).unwrap_or(default)
}

fn int(obj: &Value, path: &str) -> i64 {
    int_or(obj, path, 0)
}

fn int_or(obj: &Value, path: &str, default: i64) -> i64 {
    at(obj, path).and_then(Value::as_i64).unwrap_or(default)
}

fn arr<'a>(obj: &'a Value, path: &str) -> &'a [Value] {
    at(obj, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn map_at<'a>(obj: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
    at(obj, path).and_then(Value::as_object)
}

fn name(obj: &Value) -> &str {
    st(obj, "metadata.name")
}

/// Column descriptions: the API field documentation upstream takes from `SwaggerDoc()`.
mod docs {
    pub(crate) const D_NAME: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
    pub(crate) const D_CREATED: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
    pub(crate) const D_POD_IP: &str = "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
    pub(crate) const D_POD_NODE_NAME: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
    pub(crate) const D_POD_NOMINATED: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
    pub(crate) const D_POD_READINESS_GATES: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";
    pub(crate) const D_POD_NODE_SELECTOR: &str = "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/";
    pub(crate) const D_RS_REPLICAS: &str = "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset";
    pub(crate) const D_RS_STATUS_REPLICAS: &str = "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset";
    pub(crate) const D_RS_READY: &str =
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.";
    pub(crate) const D_RS_SELECTOR: &str = "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub(crate) const D_RC_REPLICAS: &str = "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller";
    pub(crate) const D_RC_STATUS_REPLICAS: &str = "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller";
    pub(crate) const D_RC_READY: &str =
        "The number of ready replicas for this replication controller.";
    pub(crate) const D_RC_SELECTOR: &str = "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub(crate) const D_DS_DESIRED: &str = "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
    pub(crate) const D_DS_CURRENT: &str = "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
    pub(crate) const D_DS_READY: &str = "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.";
    pub(crate) const D_DS_UPDATED: &str =
        "The total number of nodes that are running updated daemon pod";
    pub(crate) const D_DS_AVAILABLE: &str = "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)";
    pub(crate) const D_DS_SELECTOR: &str = "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub(crate) const D_JOB_SUCCEEDED: &str = "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.";
    pub(crate) const D_JOB_SELECTOR: &str = "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub(crate) const D_CJ_SCHEDULE: &str =
        "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.";
    pub(crate) const D_CJ_TIMEZONE: &str = "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones";
    pub(crate) const D_CJ_SUSPEND: &str = "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.";
    pub(crate) const D_CJ_ACTIVE: &str = "A list of pointers to currently running jobs.";
    pub(crate) const D_CJ_LAST_SCHEDULE: &str =
        "Information when was the last time the job was successfully scheduled.";
    pub(crate) const D_SVC_TYPE: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
    pub(crate) const D_SVC_CLUSTER_IP: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub(crate) const D_SVC_EXTERNAL_IPS: &str = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.";
    pub(crate) const D_SVC_PORTS: &str = "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub(crate) const D_SVC_SELECTOR: &str = "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/";
    pub(crate) const D_EP_SUBSETS: &str = "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.";
    pub(crate) const D_NODE_KUBELET: &str = "Kubelet Version reported by the node.";
    pub(crate) const D_NODE_ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
    pub(crate) const D_NODE_OS_IMAGE: &str =
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).";
    pub(crate) const D_NODE_KERNEL: &str =
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).";
    pub(crate) const D_NODE_RUNTIME: &str = "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).";
    pub(crate) const D_EV_LAST: &str =
        "The time at which the most recent occurrence of this event was recorded.";
    pub(crate) const D_EV_TYPE: &str =
        "Type of this event (Normal, Warning), new types could be added in the future";
    pub(crate) const D_EV_REASON: &str = "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.";
    pub(crate) const D_EV_INVOLVED: &str = "The object that this event is about.";
    pub(crate) const D_EV_FIELD_PATH: &str = "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.";
    pub(crate) const D_EV_SOURCE: &str =
        "The component reporting this event. Should be a short machine understandable string.";
    pub(crate) const D_EV_MESSAGE: &str =
        "A human-readable description of the status of this operation.";
    pub(crate) const D_EV_FIRST: &str =
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)";
    pub(crate) const D_EV_COUNT: &str = "The number of times this event has occurred.";
    pub(crate) const D_SECRET_TYPE: &str = "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types";
    pub(crate) const D_SECRET_DATA: &str = "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4";
    pub(crate) const D_SA_SECRETS: &str = "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret";
    pub(crate) const D_PV_CAPACITY: &str = "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity";
    pub(crate) const D_PV_ACCESS: &str = "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes";
    pub(crate) const D_PV_RECLAIM: &str = "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming";
    pub(crate) const D_PV_PHASE: &str = "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase";
    pub(crate) const D_PV_CLAIM: &str = "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding";
    pub(crate) const D_PV_REASON: &str = "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.";
    pub(crate) const D_PV_MODE: &str = "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.";
    pub(crate) const D_PVC_PHASE: &str =
        "phase represents the current phase of PersistentVolumeClaim.";
    pub(crate) const D_PVC_VOLUME: &str =
        "volumeName is the binding reference to the PersistentVolume backing this claim.";
    pub(crate) const D_PVC_CAPACITY: &str =
        "capacity represents the actual resources of the underlying volume.";
    pub(crate) const D_PVC_ACCESS: &str = "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1";
    pub(crate) const D_PVC_MODE: &str = "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.";
    pub(crate) const D_DEP_UPDATED: &str = "Total number of non-terminating pods targeted by this deployment that have the desired template spec.";
    pub(crate) const D_DEP_AVAILABLE: &str = "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.";
    pub(crate) const D_DEP_SELECTOR: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels.";
    pub(crate) const D_CM_DATA: &str = "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.";
    pub(crate) const D_NP_POD_SELECTOR: &str = "podSelector selects the pods to which this NetworkPolicy object applies. The array of ingress rules is applied to any pods selected by this field. Multiple network policies can select the same set of pods. In this case, the ingress rules for each are combined additively. This field is NOT optional and follows standard label selector semantics. An empty podSelector matches all pods in this namespace.";
    pub(crate) const D_RB_ROLE_REF: &str = "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.";
    pub(crate) const D_CRB_ROLE_REF: &str = "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.";
    pub(crate) const D_LEASE_HOLDER: &str = "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.";
    pub(crate) const D_SC_PROVISIONER: &str = "provisioner indicates the type of the provisioner.";
    pub(crate) const D_SC_RECLAIM: &str = "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete.";
    pub(crate) const D_SC_BINDING: &str = "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature.";
    pub(crate) const D_SC_EXPANSION: &str =
        "allowVolumeExpansion shows whether the storage class allow volume expand.";
    pub(crate) const D_CR_REVISION: &str =
        "Revision indicates the revision of the state represented by Data.";
    pub(crate) const D_PC_VALUE: &str = "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.";
    pub(crate) const D_PC_DEFAULT: &str = "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority.";
    pub(crate) const D_PC_PREEMPTION: &str = "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.";
    pub(crate) const D_EPS_ADDRESS_TYPE: &str = "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name. (Deprecated) The EndpointSlice controller only generates, and kube-proxy only processes, slices of addressType \"IPv4\" and \"IPv6\". No semantics are defined for the \"FQDN\" type.";
    pub(crate) const D_EPS_PORTS: &str = "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. Each slice may include a maximum of 100 ports. Services always have at least 1 port, so EndpointSlices generated by the EndpointSlice controller will likewise always have at least 1 port. EndpointSlices used for other purposes may have an empty ports list.";
    pub(crate) const D_EPS_ENDPOINTS: &str = "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RESOURCES;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-06-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn ago(d: Duration) -> String {
        (now() - d).to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    fn strs(v: &[Value]) -> Vec<String> {
        v.iter()
            .map(|c| match c {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    }

    #[test]
    fn human_duration_matches_upstream_cases() {
        let cases: &[(Duration, &str)] = &[
            (Duration::seconds(1), "1s"),
            (Duration::seconds(70), "70s"),
            (Duration::seconds(190), "3m10s"),
            (Duration::minutes(70), "70m"),
            (Duration::hours(47), "47h"),
            (Duration::hours(49), "2d1h"),
            (Duration::hours(8 * 24 + 2), "8d"),
            (Duration::hours(367 * 24), "367d"),
            (Duration::hours(365 * 2 * 24 + 25), "2y1d"),
            (Duration::hours(365 * 8 * 24 + 2), "8y"),
            (Duration::seconds(0), "0s"),
            (Duration::seconds(45), "45s"),
            (Duration::seconds(119), "119s"),
            (Duration::seconds(120), "2m"),
            (Duration::seconds(330), "5m30s"),
            (Duration::minutes(95), "95m"),
            (Duration::minutes(179), "179m"),
            (Duration::minutes(180), "3h"),
            (Duration::minutes(310), "5h10m"),
            (Duration::hours(30), "30h"),
            (Duration::hours(76), "3d4h"),
            (Duration::hours(72), "3d"),
            (Duration::days(689), "689d"),
            (Duration::days(730), "2y"),
            (Duration::milliseconds(-1500), "0s"),
            (Duration::seconds(-1), "0s"),
            (Duration::seconds(-2), "<invalid>"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(*d), *want, "duration {d:?}");
        }
    }

    #[test]
    fn age_and_unknown() {
        let o = json!({"metadata": {"creationTimestamp": ago(Duration::minutes(5))}});
        assert_eq!(age(&o, now()), "5m");
        assert_eq!(age(&json!({}), now()), "<unknown>");
        let micro = json!({"metadata": {"creationTimestamp": "2024-06-01T11:59:15.123456Z"}});
        assert_eq!(age(&micro, now()), "44s");
    }

    fn pod(status: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default",
                         "creationTimestamp": ago(Duration::minutes(5))},
            "spec": {"nodeName": "node1", "containers": [{"name": "web", "image": "nginx"}]},
            "status": status
        })
    }

    fn pod_row(p: &Value) -> Vec<String> {
        strs(&cells("", "Pod", p, now()))
    }

    #[test]
    fn pod_running() {
        let p = pod(json!({
            "phase": "Running", "podIP": "10.42.0.5", "podIPs": [{"ip": "10.42.0.5"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0,
                                   "state": {"running": {"startedAt": ago(Duration::minutes(4))}}}]
        }));
        assert_eq!(
            pod_row(&p),
            [
                "web-1",
                "1/1",
                "Running",
                "0",
                "5m",
                "10.42.0.5",
                "node1",
                "<none>",
                "<none>"
            ]
        );
        assert_eq!(row_conditions("", "Pod", &p), None);
    }

    #[test]
    fn pod_crash_loop_with_recent_restart() {
        let p = pod(json!({
            "phase": "Running",
            "containerStatuses": [{"name": "web", "ready": false, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                             "finishedAt": ago(Duration::seconds(65))}}}]
        }));
        let row = pod_row(&p);
        assert_eq!(row[1..4], ["0/1", "CrashLoopBackOff", "3 (65s ago)"]);
        assert_eq!(row[5], "<none>");
    }

    #[test]
    fn pod_pending_and_init_states() {
        let creating = pod(json!({"phase": "Pending",
            "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}]}));
        assert_eq!(pod_row(&creating)[2], "ContainerCreating");

        let mut with_init = pod(json!({"phase": "Pending",
            "initContainerStatuses": [{"name": "init", "ready": false, "restartCount": 0,
                "state": {"running": {}}}],
            "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "PodInitializing"}}}]}));
        with_init["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox"}]);
        assert_eq!(pod_row(&with_init)[1..3], ["0/1", "Init:0/1"]);

        with_init["status"]["initContainerStatuses"][0]["state"] =
            json!({"waiting": {"reason": "ImagePullBackOff"}});
        assert_eq!(pod_row(&with_init)[2], "Init:ImagePullBackOff");

        with_init["status"]["initContainerStatuses"][0]["state"] =
            json!({"terminated": {"exitCode": 2}});
        with_init["status"]["initContainerStatuses"][0]["restartCount"] = json!(4);
        assert_eq!(pod_row(&with_init)[2..4], ["Init:ExitCode:2", "4"]);

        with_init["status"]["initContainerStatuses"][0]["state"] =
            json!({"terminated": {"exitCode": 137, "signal": 9}});
        assert_eq!(pod_row(&with_init)[2], "Init:Signal:9");

        with_init["status"]["initContainerStatuses"][0]["state"] =
            json!({"terminated": {"exitCode": 1, "reason": "Error"}});
        assert_eq!(pod_row(&with_init)[2], "Init:Error");

        let gated = pod(json!({"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}));
        assert_eq!(pod_row(&gated)[1..3], ["0/1", "SchedulingGated"]);
    }

    #[test]
    fn pod_sidecar_counts_towards_ready() {
        let mut p = pod(json!({"phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 1,
                "state": {"running": {}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(Duration::minutes(3))}}}],
            "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0, "state": {"running": {}}}]}));
        p["spec"]["initContainers"] =
            json!([{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]);
        assert_eq!(pod_row(&p)[1..4], ["2/2", "Running", "1 (3m ago)"]);
    }

    #[test]
    fn pod_completed_terminating_and_node_lost() {
        let done = pod(json!({"phase": "Succeeded",
            "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}));
        assert_eq!(pod_row(&done)[1..3], ["0/1", "Completed"]);
        assert_eq!(
            row_conditions("", "Pod", &done),
            Some(
                json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                         "message": "The pod has completed successfully."}])
            )
        );

        let mut deleting = pod(json!({"phase": "Running",
            "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0, "state": {"running": {}}}]}));
        deleting["metadata"]["deletionTimestamp"] = json!(ago(Duration::seconds(3)));
        assert_eq!(pod_row(&deleting)[1..3], ["1/1", "Terminating"]);

        let mut lost = pod(json!({"phase": "Running", "reason": "NodeLost"}));
        lost["metadata"]["deletionTimestamp"] = json!(ago(Duration::seconds(3)));
        assert_eq!(pod_row(&lost)[2], "Unknown");

        let mut finished_deleting = done.clone();
        finished_deleting["metadata"]["deletionTimestamp"] = json!(ago(Duration::seconds(3)));
        assert_eq!(pod_row(&finished_deleting)[2], "Completed");

        let evicted = pod(json!({"phase": "Failed", "reason": "Evicted"}));
        assert_eq!(pod_row(&evicted)[2], "Evicted");

        let oom = pod(json!({"phase": "Running",
            "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 137}}}]}));
        assert_eq!(pod_row(&oom)[2], "ExitCode:137");
    }

    #[test]
    fn pod_readiness_gates_and_nominated_node() {
        let mut p = pod(json!({"phase": "Pending", "nominatedNodeName": "node2",
            "conditions": [{"type": "example.com/gate", "status": "True"}]}));
        p["spec"]["readinessGates"] =
            json!([{"conditionType": "example.com/gate"}, {"conditionType": "other"}]);
        let row = pod_row(&p);
        assert_eq!(row[7..9], ["node2", "1/2"]);
    }

    #[test]
    fn deployment_replicaset_statefulset_daemonset() {
        let d = json!({"metadata": {"name": "web", "creationTimestamp": ago(Duration::hours(30))},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [
                        {"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let row = cells("apps", "Deployment", &d, now());
        assert_eq!(
            row,
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("30h"),
                json!("web,log"),
                json!("nginx:1.27,busybox"),
                json!("app=web")
            ]
        );
        let rs = cells("apps", "ReplicaSet", &d, now());
        assert_eq!(
            rs,
            vec![
                json!("web"),
                json!(3),
                json!(0),
                json!(2),
                json!("30h"),
                json!("web,log"),
                json!("nginx:1.27,busybox"),
                json!("app=web")
            ]
        );
        let sts = cells("apps", "StatefulSet", &d, now());
        assert_eq!(
            strs(&sts),
            ["web", "2/3", "30h", "web,log", "nginx:1.27,busybox"]
        );
        let no_status = json!({"metadata": {"name": "x"}, "spec": {"selector": {}}});
        assert_eq!(
            strs(&cells("apps", "Deployment", &no_status, now()))[1..4],
            ["0/1", "0", "0"]
        );

        let ds = json!({"metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                           "containers": [{"name": "a", "image": "agent:1"}]}}},
            "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                       "updatedNumberScheduled": 2, "numberAvailable": 1}});
        assert_eq!(
            cells("apps", "DaemonSet", &ds, now()),
            vec![
                json!("agent"),
                json!(2),
                json!(2),
                json!(1),
                json!(2),
                json!(1),
                json!("kubernetes.io/os=linux"),
                json!("<unknown>"),
                json!("a"),
                json!("agent:1"),
                json!("app=agent")
            ]
        );
    }

    fn svc(spec: Value, status: Value) -> Vec<String> {
        let s = json!({"metadata": {"name": "web", "creationTimestamp": ago(Duration::days(3))},
                       "spec": spec, "status": status});
        strs(&cells("", "Service", &s, now()))
    }

    #[test]
    fn services_of_each_type() {
        assert_eq!(
            svc(
                json!({"type": "ClusterIP", "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
                       "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
                       "selector": {"app": "web"}}),
                json!({})
            ),
            [
                "web",
                "ClusterIP",
                "10.43.0.10",
                "<none>",
                "80/TCP",
                "3d",
                "app=web"
            ]
        );
        assert_eq!(
            svc(
                json!({"type": "NodePort", "clusterIP": "10.43.0.11",
                       "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080},
                                 {"port": 53, "protocol": "UDP"}]}),
                json!({})
            ),
            [
                "web",
                "NodePort",
                "10.43.0.11",
                "<none>",
                "80:30080/TCP,53/UDP",
                "3d",
                "<none>"
            ]
        );
        assert_eq!(
            svc(
                json!({"type": "LoadBalancer", "clusterIP": "10.43.0.12",
                       "ports": [{"port": 443, "protocol": "TCP", "nodePort": 31443}]}),
                json!({"loadBalancer": {}})
            )[3],
            "<pending>"
        );
        assert_eq!(
            svc(
                json!({"type": "LoadBalancer", "clusterIP": "10.43.0.12", "externalIPs": ["1.2.3.4"],
                       "ports": [{"port": 443, "protocol": "TCP", "nodePort": 31443}]}),
                json!({"loadBalancer": {"ingress": [{"ip": "192.168.1.20"}, {"ip": "192.168.1.10"}]}})
            )[3],
            "192.168.1.10,192.168.1.20,1.2.3.4"
        );
        assert_eq!(
            svc(
                json!({"type": "ExternalName", "externalName": "db.example.com"}),
                json!({})
            )[1..5],
            ["ExternalName", "<none>", "db.example.com", "<none>"]
        );
        assert_eq!(
            svc(
                json!({"type": "ClusterIP", "clusterIP": "None", "externalIPs": ["5.6.7.8"],
                       "ports": [{"port": 5432}]}),
                json!({})
            )[2..5],
            ["None", "5.6.7.8", "5432/TCP"]
        );
    }

    #[test]
    fn endpoints_and_slices() {
        let ep = json!({"metadata": {"name": "web"}, "subsets": [
            {"addresses": [{"ip": "10.42.0.5"}, {"ip": "10.42.0.6"}, {"ip": "10.42.0.7"}, {"ip": "10.42.0.8"}],
             "ports": [{"port": 80}]},
            {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]});
        assert_eq!(
            strs(&cells("", "Endpoints", &ep, now()))[1],
            "10.42.0.5:80,10.42.0.6:80,10.42.0.7:80 + 2 more..."
        );
        let small = json!({"metadata": {"name": "web"}, "subsets": [
            {"addresses": [{"ip": "10.42.0.5"}, {"ip": "fd00::1"}], "ports": [{"port": 80}, {"port": 443}]}]});
        assert_eq!(
            strs(&cells("", "Endpoints", &small, now()))[1],
            "10.42.0.5:80,[fd00::1]:80,10.42.0.5:443 + 1 more..."
        );
        let headless =
            json!({"metadata": {"name": "db"}, "subsets": [{"addresses": [{"ip": "10.42.0.9"}]}]});
        assert_eq!(
            strs(&cells("", "Endpoints", &headless, now()))[1],
            "10.42.0.9"
        );
        let empty = json!({"metadata": {"name": "none"}});
        assert_eq!(strs(&cells("", "Endpoints", &empty, now()))[1], "<none>");

        let slice = json!({"metadata": {"name": "web-abc"}, "addressType": "IPv4",
            "ports": [{"port": 80, "name": "http"}, {"name": "named"}, {}],
            "endpoints": [{"addresses": ["10.42.0.5"]}, {"addresses": ["10.42.0.6"]},
                          {"addresses": ["10.42.0.7"]}, {"addresses": ["10.42.0.8"]}]});
        assert_eq!(
            strs(&cells("discovery.k8s.io", "EndpointSlice", &slice, now()))[1..4],
            [
                "IPv4",
                "80,named,*",
                "10.42.0.5,10.42.0.6,10.42.0.7 + 1 more..."
            ]
        );
        let bare = json!({"metadata": {"name": "x"}, "addressType": "IPv4"});
        assert_eq!(
            strs(&cells("discovery.k8s.io", "EndpointSlice", &bare, now()))[2..4],
            ["<unset>", "<unset>"]
        );
    }

    #[test]
    fn nodes() {
        let n = json!({"metadata": {"name": "node1", "creationTimestamp": ago(Duration::days(10)),
                "labels": {"node-role.kubernetes.io/master": "true",
                           "node-role.kubernetes.io/control-plane": "true", "kubernetes.io/os": "linux"}},
            "spec": {},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "192.168.1.5"},
                                     {"type": "Hostname", "address": "node1"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0+skiff", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                    "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "containerd://1.7.20"}}});
        assert_eq!(
            strs(&cells("", "Node", &n, now())),
            [
                "node1",
                "Ready",
                "control-plane,master",
                "10d",
                "v1.32.0+skiff",
                "192.168.1.5",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.1.0-18-amd64",
                "containerd://1.7.20"
            ]
        );
        let mut cordoned = n.clone();
        cordoned["spec"]["unschedulable"] = json!(true);
        cordoned["status"]["conditions"][1]["status"] = json!("Unknown");
        assert_eq!(
            strs(&cells("", "Node", &cordoned, now()))[1],
            "NotReady,SchedulingDisabled"
        );
        let bare = json!({"metadata": {"name": "n2", "labels": {"kubernetes.io/role": "worker"}}});
        let row = strs(&cells("", "Node", &bare, now()));
        assert_eq!(row[1..3], ["Unknown", "worker"]);
        assert_eq!(row[7..10], ["<unknown>", "<unknown>", "<unknown>"]);
        let plain = json!({"metadata": {"name": "n3"}});
        assert_eq!(strs(&cells("", "Node", &plain, now()))[2], "<none>");
    }

    #[test]
    fn events_core_and_events_api() {
        let e = json!({"metadata": {"name": "web-1.17d", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{web}"},
            "reason": "Pulled", "message": "Successfully pulled image \"nginx\"\n", "type": "Normal",
            "source": {"component": "kubelet", "host": "node1"},
            "firstTimestamp": ago(Duration::minutes(10)), "lastTimestamp": ago(Duration::minutes(2)),
            "count": 4});
        assert_eq!(
            cells("", "Event", &e, now()),
            vec![
                json!("2m"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/web-1"),
                json!("spec.containers{web}"),
                json!("kubelet, node1"),
                json!("Successfully pulled image \"nginx\""),
                json!("10m"),
                json!(4),
                json!("web-1.17d")
            ]
        );
        let single = json!({"metadata": {"name": "x"}, "involvedObject": {"kind": "Node"},
            "eventTime": "2024-06-01T11:59:30.000000Z", "reportingComponent": "skiff-controller",
            "reportingInstance": "srv", "type": "Warning", "reason": "R", "message": "m"});
        assert_eq!(
            strs(&cells("", "Event", &single, now())),
            [
                "30s",
                "Warning",
                "R",
                "node",
                "",
                "skiff-controller, srv",
                "m",
                "30s",
                "1",
                "x"
            ]
        );
        let series = json!({"metadata": {"name": "s"}, "regarding": {"kind": "Deployment", "name": "web"},
            "eventTime": ago(Duration::hours(1)), "series": {"count": 7, "lastObservedTime": ago(Duration::seconds(5))},
            "reportingController": "deployment-controller", "note": "Scaled", "type": "Normal", "reason": "ScalingReplicaSet"});
        assert_eq!(
            strs(&cells("events.k8s.io", "Event", &series, now())),
            [
                "5s",
                "Normal",
                "ScalingReplicaSet",
                "deployment/web",
                "",
                "deployment-controller",
                "Scaled",
                "60m",
                "7",
                "s"
            ]
        );
    }

    #[test]
    fn jobs_and_cronjobs() {
        let j = json!({"metadata": {"name": "pi", "creationTimestamp": ago(Duration::minutes(3))},
            "spec": {"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                     "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
            "status": {"succeeded": 1, "startTime": ago(Duration::minutes(3)),
                       "completionTime": ago(Duration::seconds(160)),
                       "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}});
        assert_eq!(
            strs(&cells("batch", "Job", &j, now())),
            [
                "pi",
                "Complete",
                "1/1",
                "20s",
                "3m",
                "pi",
                "perl",
                "batch.kubernetes.io/controller-uid=u1"
            ]
        );
        let running = json!({"metadata": {"name": "w"}, "spec": {"parallelism": 3},
            "status": {"startTime": ago(Duration::seconds(330)), "active": 3}});
        assert_eq!(
            strs(&cells("batch", "Job", &running, now()))[1..4],
            ["Running", "0/1 of 3", "5m30s"]
        );
        let failed = json!({"metadata": {"name": "f"}, "spec": {"completions": 5},
            "status": {"succeeded": 2, "conditions": [{"type": "Failed", "status": "True"}]}});
        assert_eq!(
            strs(&cells("batch", "Job", &failed, now()))[1..4],
            ["Failed", "2/5", ""]
        );
        let suspended = json!({"metadata": {"name": "s"}, "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        assert_eq!(
            strs(&cells("batch", "Job", &suspended, now()))[1..3],
            ["Suspended", "0/1"]
        );

        let cj = json!({"metadata": {"name": "hello", "creationTimestamp": ago(Duration::days(2))},
            "spec": {"schedule": "*/5 * * * *", "suspend": false,
                     "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "h", "image": "busybox"}]}}}}},
            "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": ago(Duration::seconds(40))}});
        assert_eq!(
            cells("batch", "CronJob", &cj, now()),
            vec![
                json!("hello"),
                json!("*/5 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("40s"),
                json!("2d"),
                json!("h"),
                json!("busybox"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn config_and_rbac_and_misc_kinds() {
        let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(cells("", "ConfigMap", &cm, now())[1], json!(3));
        let sec = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(
            cells("", "Secret", &sec, now())[1..3],
            [json!("kubernetes.io/tls"), json!(2)]
        );
        let sa = json!({"metadata": {"name": "default"}});
        assert_eq!(cells("", "ServiceAccount", &sa, now())[1], json!(0));
        let ns = json!({"metadata": {"name": "kube-system"}, "status": {"phase": "Active"}});
        assert_eq!(strs(&cells("", "Namespace", &ns, now()))[1], "Active");

        let rb = json!({"metadata": {"name": "rb"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                         {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
                         {"kind": "User", "name": "bob"}]});
        assert_eq!(
            strs(&cells(
                "rbac.authorization.k8s.io",
                "RoleBinding",
                &rb,
                now()
            )),
            [
                "rb",
                "ClusterRole/view",
                "<unknown>",
                "alice, bob",
                "devs",
                "tools/ci"
            ]
        );

        let role = json!({"metadata": {"name": "r", "creationTimestamp": "2024-05-01T08:09:10Z"}});
        assert_eq!(
            columns("rbac.authorization.k8s.io", "Role")
                .iter()
                .map(|c| c.name)
                .collect::<Vec<_>>(),
            ["Name", "Created At"]
        );
        assert_eq!(columns("", "LimitRange")[1].type_, "date");
        assert_eq!(
            strs(&cells(
                "rbac.authorization.k8s.io",
                "ClusterRole",
                &role,
                now()
            )),
            ["r", "2024-05-01T08:09:10Z"]
        );

        let lease = json!({"metadata": {"name": "node1"}, "spec": {"holderIdentity": "node1"}});
        assert_eq!(
            strs(&cells("coordination.k8s.io", "Lease", &lease, now()))[1],
            "node1"
        );

        let sc = json!({"metadata": {"name": "local-path",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
        assert_eq!(
            cells("storage.k8s.io", "StorageClass", &sc, now())[..5],
            [
                json!("local-path (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false)
            ]
        );

        let pc = json!({"metadata": {"name": "system-node-critical"}, "value": 2000001000,
            "globalDefault": false, "preemptionPolicy": "PreemptLowerPriority"});
        assert_eq!(
            cells("scheduling.k8s.io", "PriorityClass", &pc, now()),
            vec![
                json!("system-node-critical"),
                json!(2000001000),
                json!(false),
                json!("<unknown>"),
                json!("PreemptLowerPriority")
            ]
        );

        let cr = json!({"metadata": {"name": "agent-5d4f", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "controller": true}]},
            "revision": 2});
        assert_eq!(
            cells("apps", "ControllerRevision", &cr, now())[1..3],
            [json!("daemonset.apps/agent"), json!(2)]
        );

        let pdb = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
        assert_eq!(
            cells("policy", "PodDisruptionBudget", &pdb, now())[1..4],
            [json!("50%"), json!("N/A"), json!(1)]
        );

        let ing = json!({"metadata": {"name": "i"}, "spec": {"ingressClassName": "traefik",
                "rules": [{"host": "a.example.com"}, {}, {"host": "b.example.com"}, {"host": "c.example.com"}, {"host": "d.example.com"}],
                "tls": [{"hosts": ["a.example.com"]}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.5"}]}}});
        assert_eq!(
            strs(&cells("networking.k8s.io", "Ingress", &ing, now()))[1..5],
            [
                "traefik",
                "a.example.com,b.example.com,c.example.com + 2 more...",
                "192.168.1.5",
                "80, 443"
            ]
        );
        let plain_ing = json!({"metadata": {"name": "j"}, "spec": {"rules": [{}]}});
        assert_eq!(
            strs(&cells("networking.k8s.io", "Ingress", &plain_ing, now()))[1..5],
            ["<none>", "*", "", "80"]
        );
        let ic = json!({"metadata": {"name": "traefik"}, "spec": {"controller": "traefik.io/ingress-controller",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}});
        assert_eq!(
            strs(&cells("networking.k8s.io", "IngressClass", &ic, now()))[1..3],
            [
                "traefik.io/ingress-controller",
                "IngressParameters.k8s.example.com/p"
            ]
        );
        let np = json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {}}});
        assert_eq!(
            strs(&cells("networking.k8s.io", "NetworkPolicy", &np, now()))[1],
            "<none>"
        );

        let pvc = json!({"metadata": {"name": "data"}, "spec": {"volumeName": "pv-1", "storageClassName": "local-path",
                "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}});
        assert_eq!(
            strs(&cells("", "PersistentVolumeClaim", &pvc, now())),
            [
                "data",
                "Bound",
                "pv-1",
                "1Gi",
                "RWO,ROX",
                "local-path",
                "<unset>",
                "<unknown>",
                "Filesystem"
            ]
        );
        let pv = json!({"metadata": {"name": "pv-1"}, "spec": {"capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Delete",
                "claimRef": {"namespace": "default", "name": "data"}, "storageClassName": "local-path"},
            "status": {"phase": "Bound"}});
        assert_eq!(
            strs(&cells("", "PersistentVolume", &pv, now())),
            [
                "pv-1",
                "1Gi",
                "RWO",
                "Delete",
                "Bound",
                "default/data",
                "local-path",
                "<unset>",
                "",
                "<unknown>",
                "<unset>"
            ]
        );
        let rq = json!({"metadata": {"name": "q"}, "status": {
            "hard": {"pods": "10", "limits.cpu": "2", "requests.memory": "1Gi"},
            "used": {"pods": "3", "limits.cpu": "500m"}}});
        assert_eq!(
            strs(&cells("", "ResourceQuota", &rq, now()))[2..4],
            ["pods: 3/10, requests.memory: 0/1Gi", "limits.cpu: 500m/2"]
        );
        let rc = json!({"metadata": {"name": "rc"}, "spec": {"replicas": 2, "selector": {"app": "x"},
            "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}, "status": {"replicas": 2, "readyReplicas": 1}});
        assert_eq!(
            cells("", "ReplicationController", &rc, now()),
            vec![
                json!("rc"),
                json!(2),
                json!(2),
                json!(1),
                json!("<unknown>"),
                json!("c"),
                json!("i"),
                json!("app=x")
            ]
        );
        let pt = json!({"metadata": {"name": "pt"}, "template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}});
        assert_eq!(
            strs(&cells("", "PodTemplate", &pt, now())),
            ["pt", "c", "i", "a=b"]
        );
    }

    #[test]
    fn every_registry_kind_has_one_cell_per_column() {
        let objs = [
            json!({}),
            json!({"metadata": {"name": "x", "creationTimestamp": ago(Duration::hours(1))}}),
        ];
        for r in RESOURCES {
            let cols = columns(r.group, r.kind);
            assert!(!cols.is_empty());
            assert_eq!(
                cols[0].name,
                if r.kind == "Event" {
                    "Last Seen"
                } else {
                    "Name"
                }
            );
            for o in &objs {
                let row = cells(r.group, r.kind, o, now());
                assert_eq!(row.len(), cols.len(), "{}/{}", r.group, r.kind);
                for (c, v) in cols.iter().zip(&row) {
                    if c.type_ == "integer" {
                        assert!(v.is_i64(), "{} {} {v}", r.kind, c.name);
                    }
                }
            }
        }
    }

    #[test]
    fn wide_columns_and_serialization() {
        let pods: Vec<(&str, i32)> = columns("", "Pod")
            .iter()
            .map(|c| (c.name, c.priority))
            .collect();
        assert_eq!(
            pods,
            [
                ("Name", 0),
                ("Ready", 0),
                ("Status", 0),
                ("Restarts", 0),
                ("Age", 0),
                ("IP", 1),
                ("Node", 1),
                ("Nominated Node", 1),
                ("Readiness Gates", 1)
            ]
        );
        let ev: Vec<(&str, i32)> = columns("", "Event")
            .iter()
            .map(|c| (c.name, c.priority))
            .collect();
        assert_eq!(
            ev,
            [
                ("Last Seen", 0),
                ("Type", 0),
                ("Reason", 0),
                ("Object", 0),
                ("Subobject", 1),
                ("Source", 1),
                ("Message", 0),
                ("First Seen", 1),
                ("Count", 1),
                ("Name", 1)
            ]
        );
        let v = serde_json::to_value(&columns("", "Namespace")[0]).unwrap();
        assert_eq!(v["type"], "string");
        assert_eq!(v["format"], "name");
        assert_eq!(v["priority"], 0);
        assert!(v["description"]
            .as_str()
            .unwrap()
            .starts_with("Name must be unique"));
        assert_eq!(columns("events.k8s.io", "Event"), columns("", "Event"));
    }
}
