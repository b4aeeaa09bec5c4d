//! The Node authorizer's relationship graph: which secrets, configmaps, PVCs, PVs and service
//! accounts each node's pods use, kept fresh by store watches on pods and PVCs (the way the RBAC
//! cache follows RBAC objects), so a pod's creation, binding or deletion changes what its node
//! may read without a restart.

use crate::follow::Change;
use crate::lenient::{Lenient, Shape, Shaped};
use crate::state::AppState;
use serde::Deserialize;
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

/// The name a reference gives, if it is one.
fn name(r: &Lenient<NameRef>) -> Option<&Lenient<String>> {
    r.get().map(|r| &r.name)
}

/// `{"name": …}` (a reference by name).
#[derive(Deserialize, Default)]
#[serde(default)]
struct NameRef {
    name: Lenient<String>,
}
impl Shaped for NameRef {
    const SHAPE: Shape = Shape::Object;
}

/// `{"secretRef": {"name": …}}`.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SecretRefHolder {
    secret_ref: Lenient<NameRef>,
}
impl Shaped for SecretRefHolder {
    const SHAPE: Shape = Shape::Object;
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SecretVolume {
    secret_name: Lenient<String>,
}
impl Shaped for SecretVolume {
    const SHAPE: Shape = Shape::Object;
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PvcVolume {
    claim_name: Lenient<String>,
}
impl Shaped for PvcVolume {
    const SHAPE: Shape = Shape::Object;
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct CsiVolume {
    node_publish_secret_ref: Lenient<NameRef>,
}
impl Shaped for CsiVolume {
    const SHAPE: Shape = Shape::Object;
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ProjectionSource {
    secret: Lenient<NameRef>,
    config_map: Lenient<NameRef>,
}
impl Shaped for ProjectionSource {
    const SHAPE: Shape = Shape::Object;
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Projected {
    sources: Lenient<Vec<Lenient<ProjectionSource>>>,
}
impl Shaped for Projected {
    const SHAPE: Shape = Shape::Object;
}

/// The parts of a volume that name other objects.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct VolumeView {
    secret: Lenient<SecretVolume>,
    config_map: Lenient<NameRef>,
    persistent_volume_claim: Lenient<PvcVolume>,
    projected: Lenient<Projected>,
    cephfs: Lenient<SecretRefHolder>,
    rbd: Lenient<SecretRefHolder>,
    iscsi: Lenient<SecretRefHolder>,
    flex_volume: Lenient<SecretRefHolder>,
    cinder: Lenient<SecretRefHolder>,
    #[serde(rename = "scaleIO")]
    scale_io: Lenient<SecretRefHolder>,
    storageos: Lenient<SecretRefHolder>,
    azure_file: Lenient<SecretVolume>,
    csi: Lenient<CsiVolume>,
}
impl Shaped for VolumeView {
    const SHAPE: Shape = Shape::Object;
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct EnvSource {
    secret_key_ref: Lenient<NameRef>,
    config_map_key_ref: Lenient<NameRef>,
}
impl Shaped for EnvSource {
    const SHAPE: Shape = Shape::Object;
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct EnvView {
    value_from: Lenient<EnvSource>,
}
impl Shaped for EnvView {
    const SHAPE: Shape = Shape::Object;
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct EnvFromView {
    secret_ref: Lenient<NameRef>,
    config_map_ref: Lenient<NameRef>,
}
impl Shaped for EnvFromView {
    const SHAPE: Shape = Shape::Object;
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ContainerView {
    env: Lenient<Vec<Lenient<EnvView>>>,
    env_from: Lenient<Vec<Lenient<EnvFromView>>>,
}
impl Shaped for ContainerView {
    const SHAPE: Shape = Shape::Object;
}

type Containers = Lenient<Vec<Lenient<ContainerView>>>;

/// The parts of a pod spec the graph reads.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SpecView {
    node_name: Lenient<String>,
    service_account_name: Option<Lenient<String>>,
    service_account: Lenient<String>,
    image_pull_secrets: Lenient<Vec<Lenient<NameRef>>>,
    volumes: Lenient<Vec<Lenient<VolumeView>>>,
    init_containers: Containers,
    containers: Containers,
    ephemeral_containers: Containers,
}
impl Shaped for SpecView {
    const SHAPE: Shape = Shape::Object;
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MetaView {
    namespace: Lenient<String>,
    name: Lenient<String>,
    uid: Lenient<String>,
}
impl Shaped for MetaView {
    const SHAPE: Shape = Shape::Object;
}

/// What the graph reads of a pod: its namespace, name, uid, node and the objects its spec
/// names. Decoded straight from the stored bytes by the pod watch (the rest of the pod is
/// skipped, not built into a `Value`), or from a `Value`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PodView {
    metadata: Lenient<MetaView>,
    spec: Lenient<SpecView>,
}

impl PodView {
    /// The pod's (namespace, name).
    fn key(&self) -> (String, String) {
        let m = self.metadata.get();
        let s = |f: fn(&MetaView) -> &Lenient<String>| {
            m.and_then(|m| f(m).as_str()).unwrap_or("").to_string()
        };
        (s(|m| &m.namespace), s(|m| &m.name))
    }

    /// The objects the spec references (see [`pod_refs`]).
    fn refs(&self) -> PodRefs {
        let mut refs = BTreeSet::new();
        let mut add = |k: RefKind, v: Option<&Lenient<String>>| {
            if let Some(n) = v.and_then(Lenient::as_str).filter(|n| !n.is_empty()) {
                refs.insert((k, n.to_string()));
            }
        };
        let empty = SpecView::default();
        let spec = self.spec.get().unwrap_or(&empty);
        for s in spec.image_pull_secrets.iter() {
            add(RefKind::Secret, s.get().map(|s| &s.name));
        }
        // A non-null `serviceAccountName` wins even when it is not a string.
        let sa = spec
            .service_account_name
            .as_ref()
            .unwrap_or(&spec.service_account);
        add(RefKind::ServiceAccount, Some(sa));
        for v in spec.volumes.iter().filter_map(Lenient::get) {
            add(RefKind::Secret, v.secret.get().map(|s| &s.secret_name));
            add(RefKind::ConfigMap, name(&v.config_map));
            add(
                RefKind::Pvc,
                v.persistent_volume_claim.get().map(|p| &p.claim_name),
            );
            let sources = v.projected.get().map(|p| p.sources.iter());
            for src in sources.into_iter().flatten().filter_map(Lenient::get) {
                add(RefKind::Secret, name(&src.secret));
                add(RefKind::ConfigMap, name(&src.config_map));
            }
            for holder in [
                &v.cephfs,
                &v.rbd,
                &v.iscsi,
                &v.flex_volume,
                &v.cinder,
                &v.scale_io,
                &v.storageos,
            ] {
                add(
                    RefKind::Secret,
                    holder.get().and_then(|h| name(&h.secret_ref)),
                );
            }
            add(RefKind::Secret, v.azure_file.get().map(|a| &a.secret_name));
            add(
                RefKind::Secret,
                v.csi.get().and_then(|c| name(&c.node_publish_secret_ref)),
            );
        }
        for list in [
            &spec.init_containers,
            &spec.containers,
            &spec.ephemeral_containers,
        ] {
            for c in list.iter().filter_map(Lenient::get) {
                for e in c.env.iter().filter_map(Lenient::get) {
                    let from = e.value_from.get();
                    add(RefKind::Secret, from.and_then(|f| name(&f.secret_key_ref)));
                    add(
                        RefKind::ConfigMap,
                        from.and_then(|f| name(&f.config_map_key_ref)),
                    );
                }
                for e in c.env_from.iter().filter_map(Lenient::get) {
                    add(RefKind::Secret, name(&e.secret_ref));
                    add(RefKind::ConfigMap, name(&e.config_map_ref));
                }
            }
        }
        let text =
            |v: Option<&Lenient<String>>| v.and_then(Lenient::as_str).unwrap_or("").to_string();
        PodRefs {
            node: text(Some(&spec.node_name)),
            uid: text(self.metadata.get().map(|m| &m.uid)),
            refs,
        }
    }
}

impl crate::follow::FromKv for PodView {
    fn from_kv(kv: &skiff_store::KeyValue) -> Option<Self> {
        serde_json::from_slice(&kv.value).ok()
    }
}

/// The objects a pod spec references: volumes (secret, configMap, PVC, projected sources),
/// env `valueFrom`, `envFrom`, image pull secrets, and its service account.
pub fn pod_refs(pod: &Value) -> PodRefs {
    PodView::deserialize(pod)
        .map(|v| v.refs())
        .unwrap_or_default()
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
        if let Ok(view) = PodView::deserialize(pod) {
            self.put_pod_view(&view);
        }
    }

    /// Adds or replaces a pod from its decoded view.
    pub fn put_pod_view(&mut self, pod: &PodView) {
        let key = pod.key();
        let refs = pod.refs();
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
        follow_pods(st.clone(), pods.key_prefix()),
        follow_pvcs(st.clone(), pvcs.key_prefix()),
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

/// Keeps the pods in the graph (decoded as [`PodView`]s: every pod write passes here, and the
/// graph needs a few fields of it).
async fn follow_pods(st: Arc<AppState>, prefix: String) {
    crate::follow::follow(
        &st.store,
        "node graph",
        &prefix,
        |change: Change<'_, PodView>| {
            let mut g = st.node_graph.write();
            match change {
                Change::Reset { objects, .. } => {
                    let pvc = std::mem::take(&mut g.pvc_volume);
                    g.clear();
                    g.pvc_volume = pvc;
                    for (_, v) in &objects {
                        g.put_pod_view(v);
                    }
                }
                Change::Put { object, .. } => g.put_pod_view(&object),
                Change::Delete { key, .. } => {
                    if let Some((ns, name)) = key_ns_name(key, &prefix) {
                        g.remove_pod(ns, name);
                    }
                }
            }
        },
    )
    .await
}

/// Keeps the PVC → PV bindings in the graph.
async fn follow_pvcs(st: Arc<AppState>, prefix: String) {
    crate::follow::follow(&st.store, "node graph", &prefix, |change: Change<'_>| {
        let mut g = st.node_graph.write();
        match change {
            Change::Reset { objects, .. } => {
                g.pvc_volume.clear();
                for (_, v) in &objects {
                    g.put_pvc(v);
                }
            }
            Change::Put { object, .. } => g.put_pvc(&object),
            Change::Delete { key, .. } => {
                if let Some((ns, name)) = key_ns_name(key, &prefix) {
                    g.remove_pvc(ns, name);
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
    fn odd_shapes_read_as_absent_and_bytes_read_like_values() {
        let p = json!({
            "metadata": {"namespace": "d", "name": "p", "uid": 7, "managedFields": [{"a": [1, {"b": null}]}]},
            "spec": {
                "nodeName": "n1",
                "serviceAccountName": null,
                "serviceAccount": "legacy",
                "imagePullSecrets": [{"name": 5}, "x", null, {"name": "ok"}, {"name": ""}],
                "volumes": [7, {"name": "a", "secret": "s"}, {"name": "b", "configMap": {"name": ["x"]}},
                            {"name": "c", "csi": {"nodePublishSecretRef": {"name": "csi-s"}}},
                            {"name": "d", "projected": {"sources": {"secret": {"name": "no"}}}},
                            {"name": "e", "rbd": {"secretRef": {"name": "rbd-s"}}}],
                "containers": {"a": 1},
                "initContainers": [{"name": "i", "env": [{"name": "A", "valueFrom": null},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}],
                    "envFrom": "nope"}],
                "ephemeralContainers": null,
                "tolerations": [{"key": "k", "tolerationSeconds": 1.5}]
            },
            "status": {"phase": "Pending", "conditions": [{"type": "X", "status": true}]}
        });
        let r = pod_refs(&p);
        assert_eq!(r.node, "n1");
        assert_eq!(r.uid, "");
        let want: BTreeSet<(RefKind, String)> = [
            (RefKind::ServiceAccount, "legacy"),
            (RefKind::Secret, "ok"),
            (RefKind::Secret, "csi-s"),
            (RefKind::Secret, "rbd-s"),
            (RefKind::ConfigMap, "cm"),
        ]
        .into_iter()
        .map(|(k, n)| (k, n.to_string()))
        .collect();
        assert_eq!(r.refs, want);
        // The watch decodes the stored bytes straight into the view: the same answer.
        let kv = |value: Vec<u8>| skiff_store::KeyValue {
            key: "/registry/pods/d/p".into(),
            value: value.into(),
            create_revision: 1,
            mod_revision: 1,
        };
        let view =
            <PodView as crate::follow::FromKv>::from_kv(&kv(serde_json::to_vec(&p).unwrap()))
                .expect("decodes");
        assert_eq!(view.refs(), r);
        assert_eq!(view.key(), ("d".to_string(), "p".to_string()));
        // Not JSON: skipped by the watch; not an object: empty refs.
        assert!(<PodView as crate::follow::FromKv>::from_kv(&kv(b"{nope".to_vec())).is_none());
        assert_eq!(pod_refs(&json!("x")), PodRefs::default());
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
