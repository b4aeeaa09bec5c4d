//! The Node authorizer's relationship graph: which secrets, configmaps, PVCs, PVs and service
//! accounts each node's pods use, kept fresh by store watches on pods and PVCs (the way the RBAC
//! cache follows RBAC objects), so a pod's creation, binding or deletion changes what its node
//! may read without a restart.

use crate::follow::Change;
use crate::state::AppState;
use serde_json::Value;
use skiff_api::registry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The kinds of object a node reaches through its pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefKind {
    Secret,
    ConfigMap,
    Pvc,
    ServiceAccount,
}

/// What the graph keeps of one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodRefs {
    pub node: String,
    pub uid: String,
    /// (kind, name) in the pod's namespace.
    pub refs: BTreeSet<(RefKind, String)>,
}

/// The graph: pods by (namespace, name), the objects each node reaches (reference counted),
/// and the PV each PVC is bound to.
#[derive(Debug, Default)]
pub struct NodeGraph {
    pods: HashMap<(String, String), PodRefs>,
    /// node → (kind, namespace, name) → number of pods on the node referencing it
    reach: HashMap<String, HashMap<(RefKind, String, String), usize>>,
    /// (namespace, pvc) → bound PV name
    pvc_volume: HashMap<(String, String), String>,
    /// (namespace, ingress) → the TLS Secrets it names (every node's ingress proxy reads them)
    ingress_tls: HashMap<(String, String), BTreeSet<String>>,
}

/// The objects a pod spec references: volumes (secret, configMap, PVC, projected sources),
/// env `valueFrom`, `envFrom`, image pull secrets, and its service account.
pub fn pod_refs(pod: &Value) -> PodRefs {
    let spec = &pod["spec"];
    let mut refs = BTreeSet::new();
    let mut add = |k: RefKind, v: &Value| {
        if let Some(n) = v.as_str().filter(|n| !n.is_empty()) {
            refs.insert((k, n.to_string()));
        }
    };
    for s in spec["imagePullSecrets"].as_array().into_iter().flatten() {
        add(RefKind::Secret, &s["name"]);
    }
    let sa = spec
        .get("serviceAccountName")
        .or_else(|| spec.get("serviceAccount"));
    if let Some(sa) = sa {
        add(RefKind::ServiceAccount, sa);
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        add(RefKind::Secret, &v["secret"]["secretName"]);
        add(RefKind::ConfigMap, &v["configMap"]["name"]);
        add(RefKind::Pvc, &v["persistentVolumeClaim"]["claimName"]);
        for src in v["projected"]["sources"].as_array().into_iter().flatten() {
            add(RefKind::Secret, &src["secret"]["name"]);
            add(RefKind::ConfigMap, &src["configMap"]["name"]);
        }
        for key in [
            "cephfs",
            "rbd",
            "iscsi",
            "flexVolume",
            "cinder",
            "scaleIO",
            "storageos",
        ] {
            add(RefKind::Secret, &v[key]["secretRef"]["name"]);
        }
        add(RefKind::Secret, &v["azureFile"]["secretName"]);
        add(RefKind::Secret, &v["csi"]["nodePublishSecretRef"]["name"]);
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            for e in c["env"].as_array().into_iter().flatten() {
                add(RefKind::Secret, &e["valueFrom"]["secretKeyRef"]["name"]);
                add(
                    RefKind::ConfigMap,
                    &e["valueFrom"]["configMapKeyRef"]["name"],
                );
            }
            for e in c["envFrom"].as_array().into_iter().flatten() {
                add(RefKind::Secret, &e["secretRef"]["name"]);
                add(RefKind::ConfigMap, &e["configMapRef"]["name"]);
            }
        }
    }
    PodRefs {
        node: spec["nodeName"].as_str().unwrap_or("").to_string(),
        uid: pod["metadata"]["uid"].as_str().unwrap_or("").to_string(),
        refs,
    }
}

fn ns_name(obj: &Value) -> (String, String) {
    let m = &obj["metadata"];
    (
        m["namespace"].as_str().unwrap_or("").to_string(),
        m["name"].as_str().unwrap_or("").to_string(),
    )
}

impl NodeGraph {
    /// Adds or replaces a pod.
    pub fn put_pod(&mut self, pod: &Value) {
        let key = ns_name(pod);
        let refs = pod_refs(pod);
        if self.pods.get(&key) == Some(&refs) {
            return;
        }
        self.remove_pod(&key.0, &key.1);
        if !refs.node.is_empty() {
            let reach = self.reach.entry(refs.node.clone()).or_default();
            for (k, n) in &refs.refs {
                *reach.entry((*k, key.0.clone(), n.clone())).or_default() += 1;
            }
        }
        self.pods.insert(key, refs);
    }

    /// Forgets a pod.
    pub fn remove_pod(&mut self, ns: &str, name: &str) {
        let Some(old) = self.pods.remove(&(ns.to_string(), name.to_string())) else {
            return;
        };
        if old.node.is_empty() {
            return;
        }
        if let Some(reach) = self.reach.get_mut(&old.node) {
            for (k, n) in old.refs {
                let key = (k, ns.to_string(), n);
                if let Some(c) = reach.get_mut(&key) {
                    *c -= 1;
                    if *c == 0 {
                        reach.remove(&key);
                    }
                }
            }
            if reach.is_empty() {
                self.reach.remove(&old.node);
            }
        }
    }

    /// Records the PV a PVC is bound to (`spec.volumeName`).
    pub fn put_pvc(&mut self, pvc: &Value) {
        let key = ns_name(pvc);
        match pvc["spec"]["volumeName"].as_str().filter(|v| !v.is_empty()) {
            Some(v) => {
                self.pvc_volume.insert(key, v.to_string());
            }
            None => {
                self.pvc_volume.remove(&key);
            }
        }
    }

    pub fn remove_pvc(&mut self, ns: &str, name: &str) {
        self.pvc_volume.remove(&(ns.to_string(), name.to_string()));
    }

    /// The node a pod is bound to ("" when unbound), if the pod exists.
    pub fn pod_node(&self, ns: &str, name: &str) -> Option<&PodRefs> {
        self.pods.get(&(ns.to_string(), name.to_string()))
    }

    /// Whether a pod bound to `node` references `kind` `ns/name`.
    pub fn reaches(&self, node: &str, kind: RefKind, ns: &str, name: &str) -> bool {
        self.reach
            .get(node)
            .is_some_and(|r| r.contains_key(&(kind, ns.to_string(), name.to_string())))
    }

    /// Whether a PVC used by a pod on `node` is bound to the PV `pv`.
    pub fn reaches_pv(&self, node: &str, pv: &str) -> bool {
        let Some(reach) = self.reach.get(node) else {
            return false;
        };
        reach.keys().any(|(k, ns, n)| {
            *k == RefKind::Pvc
                && self
                    .pvc_volume
                    .get(&(ns.clone(), n.clone()))
                    .is_some_and(|v| v == pv)
        })
    }

    /// Records the TLS Secrets an Ingress names (`spec.tls[].secretName`).
    pub fn put_ingress(&mut self, ing: &Value) {
        let key = ns_name(ing);
        let secrets: BTreeSet<String> = ing["spec"]["tls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["secretName"].as_str())
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if secrets.is_empty() {
            self.ingress_tls.remove(&key);
        } else {
            self.ingress_tls.insert(key, secrets);
        }
    }

    pub fn remove_ingress(&mut self, ns: &str, name: &str) {
        self.ingress_tls.remove(&(ns.to_string(), name.to_string()));
    }

    /// Whether an Ingress in `ns` names the Secret `name` as a TLS secret.
    pub fn ingress_references(&self, ns: &str, name: &str) -> bool {
        self.ingress_tls
            .iter()
            .any(|((ins, _), s)| ins == ns && s.contains(name))
    }

    /// Forgets pods and what they reach (PVC bindings and Ingresses have their own watches).
    fn clear(&mut self) {
        let ingress_tls = std::mem::take(&mut self.ingress_tls);
        *self = NodeGraph::default();
        self.ingress_tls = ingress_tls;
    }
}

/// Loads pods and PVCs and follows their changes for as long as the server runs.
pub async fn run_graph_watch(st: Arc<AppState>) {
    let (Some(pods), Some(pvcs)) = (
        registry::find("", "v1", "pods"),
        registry::find("", "v1", "persistentvolumeclaims"),
    ) else {
        tracing::error!("node graph: pods or persistentvolumeclaims not registered");
        return;
    };
    tokio::join!(
        follow(st.clone(), pods.key_prefix(), true),
        follow(st.clone(), pvcs.key_prefix(), false),
        follow_ingresses(st)
    );
}

/// The namespace and name in a `<prefix><namespace>/<name>` key.
fn key_ns_name<'a>(key: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    key.strip_prefix(prefix)?.split_once('/')
}

/// Keeps the Ingresses' TLS Secret names in the graph.
async fn follow_ingresses(st: Arc<AppState>) {
    let Some(res) = registry::find("networking.k8s.io", "v1", "ingresses") else {
        return tracing::error!("node graph: ingresses not registered");
    };
    let prefix = res.key_prefix();
    crate::follow::follow(&st.store, "node graph", &prefix, |change| {
        let mut g = st.node_graph.write();
        match change {
            Change::Reset { objects, .. } => {
                g.ingress_tls.clear();
                for (_, v) in &objects {
                    g.put_ingress(v);
                }
            }
            Change::Put { object, .. } => g.put_ingress(&object),
            Change::Delete { key, .. } => {
                if let Some((ns, name)) = key_ns_name(key, &prefix) {
                    g.remove_ingress(ns, name);
                }
            }
        }
    })
    .await
}

/// Keeps the pods (`is_pod`) or the PVCs in the graph.
async fn follow(st: Arc<AppState>, prefix: String, is_pod: bool) {
    crate::follow::follow(&st.store, "node graph", &prefix, |change| {
        let mut g = st.node_graph.write();
        match change {
            Change::Reset { objects, .. } => {
                if is_pod {
                    let pvc = std::mem::take(&mut g.pvc_volume);
                    g.clear();
                    g.pvc_volume = pvc;
                } else {
                    g.pvc_volume.clear();
                }
                for (_, v) in &objects {
                    if is_pod {
                        g.put_pod(v);
                    } else {
                        g.put_pvc(v);
                    }
                }
            }
            Change::Put { object, .. } if is_pod => g.put_pod(&object),
            Change::Put { object, .. } => g.put_pvc(&object),
            Change::Delete { key, .. } => {
                if let Some((ns, name)) = key_ns_name(key, &prefix) {
                    if is_pod {
                        g.remove_pod(ns, name);
                    } else {
                        g.remove_pvc(ns, name);
                    }
                }
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn pod(ns: &str, name: &str, node: &str, spec: Value) -> Value {
        let mut spec = spec;
        if !node.is_empty() {
            spec["nodeName"] = json!(node);
        }
        json!({"metadata": {"namespace": ns, "name": name, "uid": format!("uid-{name}")}, "spec": spec})
    }

    #[test]
    fn refs_cover_volumes_env_pull_secrets_and_projected_sources() {
        let p = pod(
            "d",
            "p",
            "n1",
            json!({
                "serviceAccountName": "sa1",
                "imagePullSecrets": [{"name": "pull"}],
                "volumes": [
                    {"name": "a", "secret": {"secretName": "vol-secret"}},
                    {"name": "b", "configMap": {"name": "vol-cm"}},
                    {"name": "c", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "d", "projected": {"sources": [
                        {"secret": {"name": "proj-secret"}}, {"configMap": {"name": "proj-cm"}},
                        {"serviceAccountToken": {"path": "token"}}]}},
                ],
                "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "init-from"}}]}],
                "containers": [{"name": "c", "env": [
                    {"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}},
                    {"name": "C", "value": "plain"}],
                    "envFrom": [{"configMapRef": {"name": "from-cm"}}]}],
            }),
        );
        let r = pod_refs(&p);
        assert_eq!(r.node, "n1");
        let want: BTreeSet<(RefKind, String)> = [
            (RefKind::ServiceAccount, "sa1"),
            (RefKind::Secret, "pull"),
            (RefKind::Secret, "vol-secret"),
            (RefKind::ConfigMap, "vol-cm"),
            (RefKind::Pvc, "data"),
            (RefKind::Secret, "proj-secret"),
            (RefKind::ConfigMap, "proj-cm"),
            (RefKind::Secret, "init-from"),
            (RefKind::Secret, "env-secret"),
            (RefKind::ConfigMap, "env-cm"),
            (RefKind::ConfigMap, "from-cm"),
        ]
        .into_iter()
        .map(|(k, n)| (k, n.to_string()))
        .collect();
        assert_eq!(r.refs, want);
    }

    #[test]
    fn graph_follows_binding_moves_and_deletion() {
        let mut g = NodeGraph::default();
        let spec = json!({"volumes": [{"name": "s", "secret": {"secretName": "db"}},
                                      {"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]});
        // Unbound: nobody reaches the secret.
        g.put_pod(&pod("d", "p1", "", spec.clone()));
        assert!(!g.reaches("n1", RefKind::Secret, "d", "db"));
        // Bound to n1.
        g.put_pod(&pod("d", "p1", "n1", spec.clone()));
        assert!(g.reaches("n1", RefKind::Secret, "d", "db"));
        assert!(!g.reaches("n1", RefKind::Secret, "other", "db"));
        assert!(!g.reaches("n2", RefKind::Secret, "d", "db"));
        // PVC → PV.
        assert!(!g.reaches_pv("n1", "pv-1"));
        g.put_pvc(&json!({"metadata": {"namespace": "d", "name": "data"}, "spec": {"volumeName": "pv-1"}}));
        assert!(g.reaches_pv("n1", "pv-1"));
        assert!(!g.reaches_pv("n2", "pv-1"));
        // A second pod on n1 using the same secret; deleting one keeps the edge.
        g.put_pod(&pod("d", "p2", "n1", spec.clone()));
        g.remove_pod("d", "p1");
        assert!(g.reaches("n1", RefKind::Secret, "d", "db"));
        g.remove_pod("d", "p2");
        assert!(!g.reaches("n1", RefKind::Secret, "d", "db"));
        assert!(!g.reaches_pv("n1", "pv-1"));
        // Re-put with identical content is idempotent.
        g.put_pod(&pod("d", "p3", "n2", spec.clone()));
        g.put_pod(&pod("d", "p3", "n2", spec));
        g.remove_pod("d", "p3");
        assert!(g.reach.is_empty());
        g.remove_pvc("d", "data");
        assert!(g.pvc_volume.is_empty());
    }
}
