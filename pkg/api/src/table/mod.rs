//! Server-side printing: the `meta.k8s.io/v1` Table columns and cells kube-apiserver's
//! printers produce for each built-in kind (`kubectl get`), the default Name/Created At table
//! for kinds without a printer, and apimachinery's human-readable durations.

use crate::selector::{format_label_selector, format_labels, LabelSelector};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

mod cells;
mod docs;
mod groups;
pub use groups::{apiservice_available, csr_condition};
#[cfg(test)]
mod tests;
mod values;

use cells::*;
pub use values::*;

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
        ("autoscaling", "HorizontalPodAutoscaler") => "HorizontalPodAutoscaler",
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
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration")
        | ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            "WebhookConfiguration"
        }
        _ => return None,
    })
}

/// The table columns kube-apiserver reports for a kind, in order.
pub fn columns(group: &str, kind: &str) -> Vec<Column> {
    use docs::*;
    if let Some(cols) = groups::columns(group, kind) {
        return cols;
    }
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
        "HorizontalPodAutoscaler" => vec![
            NAME,
            c("Reference", "string", "reference to scaled resource; horizontal pod autoscaler will learn the current resource consumption and will set the desired number of pods by using its Scale subresource."),
            c("Targets", "string", "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used)."),
            c("MinPods", "string", "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down."),
            c("MaxPods", "integer", "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas."),
            c("Replicas", "integer", "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler."),
            AGE,
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
        "WebhookConfiguration" => vec![
            NAME,
            c("Webhooks", "integer", "Webhooks indicates the number of webhooks registered in this configuration"),
            AGE,
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
    if let Some(row) = groups::cells(group, kind, obj, now) {
        return row;
    }
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
        "HorizontalPodAutoscaler" => {
            // The printer reads the v2 shape; a v1 object is converted first.
            let v2;
            let obj = if obj["apiVersion"] == "autoscaling/v1" {
                v2 = crate::hpa::v1_to_v2(obj);
                &v2
            } else {
                obj
            };
            let target = &obj["spec"]["scaleTargetRef"];
            vec![
                json!(name(obj)),
                json!(format!(
                    "{}/{}",
                    target["kind"].as_str().unwrap_or_default(),
                    target["name"].as_str().unwrap_or_default()
                )),
                json!(crate::hpa::format_targets(obj)),
                json!(obj["spec"]["minReplicas"]
                    .as_i64()
                    .map_or("<unset>".to_string(), |n| n.to_string())),
                json!(int(obj, "spec.maxReplicas")),
                json!(int(obj, "status.currentReplicas")),
                json!(age(obj, now)),
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
        "WebhookConfiguration" => vec![
            json!(name(obj)),
            json!(at(obj, "webhooks")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)),
            json!(age(obj, now)),
        ],
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
