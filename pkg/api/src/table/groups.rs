//! Printers of the API-machinery and storage kinds: RuntimeClass, the CSI objects,
//! CertificateSigningRequest, flowcontrol's FlowSchema and PriorityLevelConfiguration, and
//! APIService — kube-apiserver's (and kube-aggregator's) columns and cells.

use super::*;

/// The columns of the kinds this module prints; `None` for every other kind.
pub(super) fn columns(group: &str, kind: &str) -> Option<Vec<Column>> {
    Some(match (group, kind) {
        ("node.k8s.io", "RuntimeClass") => vec![
            NAME,
            c("Handler", "string", "handler specifies the underlying runtime and configuration that the CRI implementation will use to handle pods of this class."),
            AGE,
        ],
        ("storage.k8s.io", "CSIDriver") => vec![
            NAME,
            c("AttachRequired", "boolean", "attachRequired indicates this CSI volume driver requires an attach operation."),
            c("PodInfoOnMount", "boolean", "podInfoOnMount indicates this CSI volume driver requires additional pod information (like podName, podUID, etc.) during mount operations."),
            c("StorageCapacity", "boolean", "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report."),
            c("TokenRequests", "string", "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication."),
            c("RequiresRepublish", "boolean", "requiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume."),
            c("Modes", "string", "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports."),
            AGE,
        ],
        ("storage.k8s.io", "CSINode") => vec![
            NAME,
            c("Drivers", "integer", "Drivers indicates the number of CSI drivers registered on the node"),
            AGE,
        ],
        ("storage.k8s.io", "VolumeAttachment") => vec![
            NAME,
            c("Attacher", "string", "attacher indicates the name of the volume driver that MUST handle this request."),
            c("PV", "string", "persistentVolumeName represents the name of the persistent volume to attach."),
            c("Node", "string", "nodeName represents the node that the volume should be attached to."),
            c("Attached", "boolean", "attached indicates the volume is successfully attached."),
            AGE,
        ],
        ("storage.k8s.io", "CSIStorageCapacity") => vec![
            NAME,
            c("StorageClassName", "string", "storageClassName represents the name of the StorageClass that the reported capacity applies to."),
            c("Capacity", "string", "capacity is the value reported by the CSI driver in its GetCapacityResponse for a GetCapacityRequest with topology and parameters that match the previous fields."),
        ],
        ("certificates.k8s.io", "CertificateSigningRequest") => vec![
            NAME,
            AGE,
            c("SignerName", "string", "signerName indicates the requested signer, and is a qualified name."),
            c("Requestor", "string", "Name of the user which submitted the request"),
            c("RequestedDuration", "string", "expirationSeconds is the requested duration of validity of the issued certificate."),
            c("Condition", "string", "Condition of the request"),
        ],
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => vec![
            NAME,
            c("PriorityLevel", "string", "priorityLevelConfiguration should reference a PriorityLevelConfiguration in the cluster."),
            c("MatchingPrecedence", "string", "matchingPrecedence is used to choose among the FlowSchemas that match a given request."),
            c("DistinguisherMethod", "string", "distinguisherMethod defines how to compute the flow distinguisher for requests that match this schema."),
            AGE,
            c("MissingPL", "string", "references a broken or non-existent PriorityLevelConfiguration"),
        ],
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => vec![
            NAME,
            c("Type", "string", "type indicates whether this priority level is subject to limitation on request execution."),
            c("NominalConcurrencyShares", "string", "nominalConcurrencyShares (NCS) contributes to the computation of the NominalConcurrencyLimit (NominalCL) of this level."),
            c("Queues", "string", "queues is the number of queues for this priority level."),
            c("HandSize", "string", "handSize is a small positive number that configures the shuffle sharding of requests into queues."),
            c("QueueLengthLimit", "string", "queueLengthLimit is the maximum number of requests allowed to be waiting in a given queue of this priority level at a time."),
            AGE,
        ],
        ("apiregistration.k8s.io", "APIService") => vec![
            NAME,
            c("Service", "string", "The reference to the service that hosts this API endpoint."),
            c("Available", "string", "Whether this service is available."),
            AGE,
        ],
        _ => return None,
    })
}

fn bool_or(obj: &Value, path: &str, default: bool) -> bool {
    at(obj, path).and_then(Value::as_bool).unwrap_or(default)
}

/// The condition summary of a CertificateSigningRequest, upstream's `extractCSRStatus`:
/// Denied before Approved before Pending, then `,Failed` and `,Issued`.
pub fn csr_condition(csr: &Value) -> String {
    let has = |t: &str| {
        arr(csr, "status.conditions")
            .iter()
            .any(|c| st(c, "type") == t)
    };
    let mut s = if has("Denied") {
        "Denied".to_string()
    } else if has("Approved") {
        "Approved".to_string()
    } else {
        "Pending".to_string()
    };
    if has("Failed") {
        s.push_str(",Failed");
    }
    if !st(csr, "status.certificate").is_empty() {
        s.push_str(",Issued");
    }
    s
}

/// The Available cell of an APIService: `True`, `False (Reason)` or `Unknown`.
pub fn apiservice_available(svc: &Value) -> String {
    let Some(cond) = arr(svc, "status.conditions")
        .iter()
        .find(|c| st(c, "type") == "Available")
    else {
        return "Unknown".to_string();
    };
    let status = st(cond, "status");
    let reason = st(cond, "reason");
    if status == "True" {
        "True".to_string()
    } else if !reason.is_empty() {
        format!("{status} ({reason})")
    } else {
        status.to_string()
    }
}

/// The cells of the kinds this module prints, in [`columns`] order.
pub(super) fn cells(
    group: &str,
    kind: &str,
    obj: &Value,
    now: DateTime<Utc>,
) -> Option<Vec<Value>> {
    let none = || json!("<none>");
    Some(match (group, kind) {
        ("node.k8s.io", "RuntimeClass") => vec![
            json!(name(obj)),
            json!(st(obj, "handler")),
            json!(age(obj, now)),
        ],
        ("storage.k8s.io", "CSIDriver") => {
            let modes: Vec<&str> = arr(obj, "spec.volumeLifecycleModes")
                .iter()
                .map(str_of)
                .collect();
            let modes = if modes.is_empty() {
                "<none>".to_string()
            } else {
                modes.join(",")
            };
            let audiences: Vec<&str> = arr(obj, "spec.tokenRequests")
                .iter()
                .map(|t| st(t, "audience"))
                .collect();
            let tokens = if audiences.is_empty() {
                "<unset>".to_string()
            } else {
                audiences.join(",")
            };
            vec![
                json!(name(obj)),
                json!(bool_or(obj, "spec.attachRequired", true)),
                json!(bool_or(obj, "spec.podInfoOnMount", false)),
                json!(bool_or(obj, "spec.storageCapacity", false)),
                json!(tokens),
                json!(bool_or(obj, "spec.requiresRepublish", false)),
                json!(modes),
                json!(age(obj, now)),
            ]
        }
        ("storage.k8s.io", "CSINode") => vec![
            json!(name(obj)),
            json!(arr(obj, "spec.drivers").len()),
            json!(age(obj, now)),
        ],
        ("storage.k8s.io", "VolumeAttachment") => vec![
            json!(name(obj)),
            json!(st(obj, "spec.attacher")),
            json!(st(obj, "spec.source.persistentVolumeName")),
            json!(st(obj, "spec.nodeName")),
            json!(bool_or(obj, "status.attached", false)),
            json!(age(obj, now)),
        ],
        ("storage.k8s.io", "CSIStorageCapacity") => vec![
            json!(name(obj)),
            json!(st(obj, "storageClassName")),
            match at(obj, "capacity") {
                Some(q @ Value::String(_)) => json!(quantity(Some(q))),
                _ => json!("<unset>"),
            },
        ],
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            let duration = match at(obj, "spec.expirationSeconds").and_then(Value::as_i64) {
                Some(s) => json!(human_duration(Duration::seconds(s))),
                None => none(),
            };
            let signer = str_or(obj, "spec.signerName", "");
            vec![
                json!(name(obj)),
                json!(age(obj, now)),
                if signer.is_empty() {
                    none()
                } else {
                    json!(signer)
                },
                json!(st(obj, "spec.username")),
                duration,
                json!(csr_condition(obj)),
            ]
        }
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => {
            let method = match at(obj, "spec.distinguisherMethod.type").and_then(Value::as_str) {
                Some(t) => t.to_string(),
                None => "<none>".to_string(),
            };
            let missing = arr(obj, "status.conditions")
                .iter()
                .find(|c| st(c, "type") == "Dangling")
                .map_or("?".to_string(), |c| st(c, "status").to_string());
            vec![
                json!(name(obj)),
                json!(st(obj, "spec.priorityLevelConfiguration.name")),
                json!(int(obj, "spec.matchingPrecedence")),
                json!(method),
                json!(age(obj, now)),
                json!(missing),
            ]
        }
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => {
            let (mut ncs, mut queues, mut hand, mut qll) = (none(), none(), none(), none());
            if let Some(l) = at(obj, "spec.limited").filter(|l| l.is_object()) {
                ncs = json!(int(l, "nominalConcurrencyShares"));
                if let Some(q) = at(l, "limitResponse.queuing").filter(|q| q.is_object()) {
                    queues = json!(int(q, "queues"));
                    hand = json!(int(q, "handSize"));
                    qll = json!(int(q, "queueLengthLimit"));
                }
            }
            vec![
                json!(name(obj)),
                json!(st(obj, "spec.type")),
                ncs,
                queues,
                hand,
                qll,
                json!(age(obj, now)),
            ]
        }
        ("apiregistration.k8s.io", "APIService") => {
            let service = match at(obj, "spec.service").filter(|s| s.is_object()) {
                Some(s) => format!("{}/{}", st(s, "namespace"), st(s, "name")),
                None => "Local".to_string(),
            };
            vec![
                json!(name(obj)),
                json!(service),
                json!(apiservice_available(obj)),
                json!(age(obj, now)),
            ]
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-01-01T01:00:00Z".parse().unwrap()
    }

    fn meta(n: &str) -> Value {
        json!({"name": n, "creationTimestamp": "2026-01-01T00:00:00Z"})
    }

    #[test]
    fn runtime_class_and_csi_rows() {
        let rc = json!({"metadata": meta("gvisor"), "handler": "runsc"});
        assert_eq!(columns("node.k8s.io", "RuntimeClass").unwrap().len(), 3);
        assert_eq!(
            cells("node.k8s.io", "RuntimeClass", &rc, now()).unwrap(),
            vec![json!("gvisor"), json!("runsc"), json!("60m")]
        );
        let d = json!({"metadata": meta("hostpath.csi.k8s.io"), "spec": {
            "volumeLifecycleModes": ["Persistent", "Ephemeral"],
            "tokenRequests": [{"audience": "vault"}]}});
        assert_eq!(
            cells("storage.k8s.io", "CSIDriver", &d, now()).unwrap(),
            vec![
                json!("hostpath.csi.k8s.io"),
                json!(true),
                json!(false),
                json!(false),
                json!("vault"),
                json!(false),
                json!("Persistent,Ephemeral"),
                json!("60m")
            ]
        );
        let va = json!({"metadata": meta("csi-1"), "spec": {"attacher": "a.csi", "nodeName": "n1",
            "source": {"persistentVolumeName": "pv1"}}, "status": {"attached": true}});
        assert_eq!(
            cells("storage.k8s.io", "VolumeAttachment", &va, now()).unwrap()[1..5],
            [json!("a.csi"), json!("pv1"), json!("n1"), json!(true)]
        );
        let cap = json!({"metadata": meta("c"), "storageClassName": "fast", "capacity": "10Gi"});
        assert_eq!(
            cells("storage.k8s.io", "CSIStorageCapacity", &cap, now()).unwrap(),
            vec![json!("c"), json!("fast"), json!("10Gi")]
        );
        let cap = json!({"metadata": meta("c"), "storageClassName": "fast"});
        assert_eq!(
            cells("storage.k8s.io", "CSIStorageCapacity", &cap, now()).unwrap()[2],
            json!("<unset>")
        );
    }

    #[test]
    fn csr_condition_order_and_row() {
        let mut csr = json!({"metadata": meta("alice"), "spec": {
            "signerName": "kubernetes.io/kube-apiserver-client", "username": "kubernetes-admin",
            "expirationSeconds": 86400}});
        assert_eq!(csr_condition(&csr), "Pending");
        csr["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}]});
        assert_eq!(csr_condition(&csr), "Approved");
        csr["status"]["certificate"] = json!("LS0t");
        assert_eq!(csr_condition(&csr), "Approved,Issued");
        csr["status"] =
            json!({"conditions": [{"type": "Approved"}, {"type": "Denied"}, {"type": "Failed"}]});
        assert_eq!(csr_condition(&csr), "Denied,Failed");
        assert_eq!(
            cells(
                "certificates.k8s.io",
                "CertificateSigningRequest",
                &csr,
                now()
            )
            .unwrap(),
            vec![
                json!("alice"),
                json!("60m"),
                json!("kubernetes.io/kube-apiserver-client"),
                json!("kubernetes-admin"),
                json!("24h"),
                json!("Denied,Failed")
            ]
        );
    }

    #[test]
    fn flowcontrol_rows() {
        let fs = json!({"metadata": meta("exempt"), "spec": {"priorityLevelConfiguration": {"name": "exempt"},
            "matchingPrecedence": 1}, "status": {"conditions": [{"type": "Dangling", "status": "False"}]}});
        assert_eq!(
            cells("flowcontrol.apiserver.k8s.io", "FlowSchema", &fs, now()).unwrap(),
            vec![
                json!("exempt"),
                json!("exempt"),
                json!(1),
                json!("<none>"),
                json!("60m"),
                json!("False")
            ]
        );
        let pl = json!({"metadata": meta("global-default"), "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": 20, "limitResponse": {"type": "Queue", "queuing": {
                "queues": 128, "handSize": 6, "queueLengthLimit": 50}}}}});
        assert_eq!(
            cells(
                "flowcontrol.apiserver.k8s.io",
                "PriorityLevelConfiguration",
                &pl,
                now()
            )
            .unwrap()[1..6],
            [json!("Limited"), json!(20), json!(128), json!(6), json!(50)]
        );
        let ex = json!({"metadata": meta("exempt"), "spec": {"type": "Exempt", "exempt": {}}});
        assert_eq!(
            cells(
                "flowcontrol.apiserver.k8s.io",
                "PriorityLevelConfiguration",
                &ex,
                now()
            )
            .unwrap()[2],
            json!("<none>")
        );
    }

    #[test]
    fn apiservice_rows() {
        let local = json!({"metadata": meta("v1.apps"), "spec": {"group": "apps", "version": "v1"},
            "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}});
        assert_eq!(
            cells("apiregistration.k8s.io", "APIService", &local, now()).unwrap(),
            vec![
                json!("v1.apps"),
                json!("Local"),
                json!("True"),
                json!("60m")
            ]
        );
        let remote = json!({"metadata": meta("v1beta1.metrics.k8s.io"), "spec": {
            "service": {"namespace": "kube-system", "name": "metrics-server"}},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}});
        assert_eq!(
            cells("apiregistration.k8s.io", "APIService", &remote, now()).unwrap()[1..3],
            [
                json!("kube-system/metrics-server"),
                json!("False (MissingEndpoints)")
            ]
        );
        assert_eq!(apiservice_available(&json!({})), "Unknown");
    }
}
