//! The VolumeBinding plugin's view of a pod (pure): which PersistentVolumeClaims it uses,
//! whether one stops it at PreFilter (missing, being deleted, unbound with an immediate
//! class), the node affinity of the volumes already bound to them, and the unbound claims of
//! `WaitForFirstConsumer` classes that get `volume.kubernetes.io/selected-node` before the
//! pod is bound.

use k8s_openapi::api::core::v1::{NodeSelectorTerm, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;

/// The claim annotation naming the node the scheduler chose for a delayed-binding claim.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";

/// What the pod's claims mean for scheduling.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodVolumes {
    /// The PreFilter rejection (upstream's wording), when a claim makes the pod unschedulable
    /// everywhere.
    pub pre_filter_error: Option<String>,
    /// For each bound claim with a node-pinned volume: the volume's required node selector
    /// terms (a node must match one term of every entry).
    pub node_affinity: Vec<Vec<NodeSelectorTerm>>,
    /// Unbound claims of WaitForFirstConsumer classes (names in the pod's namespace), with the
    /// node they already name, if any.
    pub to_select: Vec<(String, Option<String>)>,
}

impl PodVolumes {
    /// The claims whose selected-node annotation must be (re)written for `node`.
    pub fn claims_to_annotate(&self, node: &str) -> Vec<String> {
        self.to_select
            .iter()
            .filter(|(_, sel)| sel.as_deref() != Some(node))
            .map(|(c, _)| c.clone())
            .collect()
    }
}

/// The claim names a pod uses: `persistentVolumeClaim` volumes and generic ephemeral volumes
/// (`<pod>-<volume>`).
pub fn claim_names(pod: &Pod) -> Vec<String> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or("");
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| {
            if let Some(c) = &v.persistent_volume_claim {
                Some(c.claim_name.clone())
            } else {
                v.ephemeral
                    .as_ref()
                    .map(|_| format!("{pod_name}-{}", v.name))
            }
        })
        .collect()
}

/// Looks the pod's claims up (in its namespace) and works out their scheduling constraints.
pub fn pod_volumes<'a>(
    pod: &Pod,
    claim: impl Fn(&str) -> Option<&'a PersistentVolumeClaim>,
    volume: impl Fn(&str) -> Option<&'a PersistentVolume>,
    class: impl Fn(&str) -> Option<&'a StorageClass>,
) -> PodVolumes {
    let mut out = PodVolumes::default();
    let names = claim_names(pod);
    for name in names {
        let Some(pvc) = claim(&name) else {
            out.pre_filter_error = Some(format!("persistentvolumeclaim \"{name}\" not found"));
            return out;
        };
        if pvc.metadata.deletion_timestamp.is_some() {
            out.pre_filter_error =
                Some(format!("persistentvolumeclaim \"{name}\" is being deleted"));
            return out;
        }
        let spec = pvc.spec.as_ref();
        let bound_to = spec
            .and_then(|s| s.volume_name.as_deref())
            .filter(|v| !v.is_empty());
        if let Some(vname) = bound_to {
            let Some(pv) = volume(vname) else {
                out.pre_filter_error = Some(format!("pvc {name} bound to non-existent pv {vname}"));
                return out;
            };
            let terms = pv
                .spec
                .as_ref()
                .and_then(|s| s.node_affinity.as_ref())
                .and_then(|a| a.required.as_ref())
                .map(|r| r.node_selector_terms.clone());
            if let Some(t) = terms {
                out.node_affinity.push(t);
            }
            continue;
        }
        let delayed = spec
            .and_then(|s| s.storage_class_name.as_deref())
            .and_then(&class)
            .and_then(|c| c.volume_binding_mode.as_deref())
            == Some("WaitForFirstConsumer");
        if !delayed {
            out.pre_filter_error = Some("pod has unbound immediate PersistentVolumeClaims".into());
            return out;
        }
        let selected = pvc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SELECTED_NODE))
            .cloned();
        out.to_select.push((name, selected));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{schedule_with_volumes, FitError, NodeInfo};
    use k8s_openapi::api::core::v1::Node;
    use rand::SeedableRng;
    use serde_json::json;
    use std::collections::HashMap;

    fn pod(claims: &[&str]) -> Pod {
        let vols: Vec<_> = claims
            .iter()
            .map(|c| json!({"name": format!("v-{c}"), "persistentVolumeClaim": {"claimName": c}}))
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": "web-0", "namespace": "ns"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], "volumes": vols}
        }))
        .unwrap()
    }

    fn pvc(
        name: &str,
        class: &str,
        volume: Option<&str>,
        selected: Option<&str>,
    ) -> PersistentVolumeClaim {
        let mut ann = serde_json::Map::new();
        if let Some(n) = selected {
            ann.insert(SELECTED_NODE.into(), json!(n));
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "annotations": ann},
            "spec": {"storageClassName": class, "volumeName": volume.unwrap_or(""),
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
        }))
        .unwrap()
    }

    fn pv_on(name: &str, node: &str) -> PersistentVolume {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}
        }))
        .unwrap()
    }

    fn class(name: &str, mode: &str) -> StorageClass {
        serde_json::from_value(json!({
            "metadata": {"name": name}, "provisioner": "rancher.io/local-path",
            "volumeBindingMode": mode
        }))
        .unwrap()
    }

    fn node(name: &str) -> NodeInfo {
        NodeInfo::new(
            serde_json::from_value::<Node>(json!({
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                    "conditions": [{"type": "Ready", "status": "True"}]}
            }))
            .unwrap(),
        )
    }

    struct World {
        pvcs: HashMap<String, PersistentVolumeClaim>,
        pvs: HashMap<String, PersistentVolume>,
        classes: HashMap<String, StorageClass>,
    }

    impl World {
        fn new() -> World {
            World {
                pvcs: HashMap::new(),
                pvs: HashMap::new(),
                classes: HashMap::from([
                    (
                        "local-path".to_string(),
                        class("local-path", "WaitForFirstConsumer"),
                    ),
                    ("fast".to_string(), class("fast", "Immediate")),
                ]),
            }
        }

        fn volumes(&self, p: &Pod) -> PodVolumes {
            pod_volumes(
                p,
                |n| self.pvcs.get(n),
                |n| self.pvs.get(n),
                |n| self.classes.get(n),
            )
        }
    }

    #[test]
    fn a_bound_claim_pins_the_pod_to_its_volume_node() {
        let mut w = World::new();
        w.pvcs
            .insert("data".into(), pvc("data", "local-path", Some("pv-a"), None));
        w.pvs.insert("pv-a".into(), pv_on("pv-a", "a"));
        let p = pod(&["data"]);
        let v = w.volumes(&p);
        assert_eq!(v.node_affinity.len(), 1);
        assert!(v.to_select.is_empty());
        let nodes = vec![node("a"), node("b"), node("c")];
        for seed in 0..20 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            assert_eq!(
                schedule_with_volumes(&p, &nodes, &v, &mut rng).unwrap(),
                "a"
            );
        }
        let only_b = vec![node("b"), node("c")];
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let err = schedule_with_volumes(&p, &only_b, &v, &mut rng).unwrap_err();
        assert_eq!(
            err.to_string(),
            "0/2 nodes are available: 2 node(s) had volume node affinity conflict. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn unbound_delayed_claims_are_to_be_annotated() {
        let mut w = World::new();
        w.pvcs
            .insert("data".into(), pvc("data", "local-path", None, None));
        w.pvcs
            .insert("logs".into(), pvc("logs", "local-path", None, Some("b")));
        let v = w.volumes(&pod(&["data", "logs"]));
        assert_eq!(v.pre_filter_error, None);
        assert_eq!(v.claims_to_annotate("b"), vec!["data".to_string()]);
        assert_eq!(
            v.claims_to_annotate("a"),
            vec!["data".to_string(), "logs".to_string()]
        );
        // No constraint: any node.
        let nodes = vec![node("a"), node("b")];
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        assert!(schedule_with_volumes(&pod(&["data"]), &nodes, &v, &mut rng).is_ok());
    }

    #[test]
    fn claim_problems_reject_at_prefilter_with_upstream_messages() {
        let mut w = World::new();
        let v = w.volumes(&pod(&["nope"]));
        assert_eq!(
            v.pre_filter_error.as_deref(),
            Some("persistentvolumeclaim \"nope\" not found")
        );
        let nodes = vec![node("a")];
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let err = schedule_with_volumes(&pod(&["nope"]), &nodes, &v, &mut rng).unwrap_err();
        assert!(matches!(err, FitError::Unschedulable { .. }));
        assert_eq!(
            err.to_string(),
            "0/1 nodes are available: persistentvolumeclaim \"nope\" not found. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
        w.pvcs.insert("imm".into(), pvc("imm", "fast", None, None));
        assert_eq!(
            w.volumes(&pod(&["imm"])).pre_filter_error.as_deref(),
            Some("pod has unbound immediate PersistentVolumeClaims")
        );
        w.pvcs
            .insert("lost".into(), pvc("lost", "local-path", Some("gone"), None));
        assert_eq!(
            w.volumes(&pod(&["lost"])).pre_filter_error.as_deref(),
            Some("pvc lost bound to non-existent pv gone")
        );
    }

    #[test]
    fn pods_without_claims_and_ephemeral_claim_names() {
        let w = World::new();
        assert_eq!(w.volumes(&pod(&[])), PodVolumes::default());
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "job-x", "namespace": "ns"},
            "spec": {"containers": [], "volumes": [
                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
                {"name": "tmp", "emptyDir": {}}]}
        }))
        .unwrap();
        assert_eq!(claim_names(&p), vec!["job-x-scratch".to_string()]);
    }
}
