//! The Node authorizer and the NodeRestriction admission step for kubelet identities
//! (`system:node:<name>` in group `system:nodes`), following upstream 1.32 with
//! `AuthorizeNodeWithSelectors`: a node reads only its own Node, lists pods only with
//! `spec.nodeName=<node>`, reads secrets, configmaps, PVCs and PVs only when a pod bound to it
//! uses them, and writes only its own Node, its pods' status and its own lease. Other
//! requests fall back to the static node rules (the `system:node` ClusterRole), then RBAC
//! without the `system:node` binding (as upstream, where that binding has no subjects).
//! skiff additions, marked where they are decided: a node lists/watches every Node and every
//! pod (pod network, service proxy, NetworkPolicy peers) and PVs (local-path cleanup).

use crate::authz;
use crate::error::{ApiError, ApiResult};
use crate::nodegraph::{pod_refs, NodeGraph, RefKind};
use crate::request::Query;
use crate::state::AppState;
use serde_json::{json, Value};
use skiff_api::rbac::{self, Attributes, Decision, PolicySnapshot, UserInfo};
use skiff_api::registry::ResourceInfo;
use std::collections::BTreeSet;
use std::sync::LazyLock;

/// Name of the ClusterRole(Binding) whose rules are the static node rules.
pub const NODE_ROLE: &str = "system:node";
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

tokio::task_local! {
    /// The user of the request being served, for the admission step (which runs deep inside
    /// the REST layer, where the user is not passed).
    static REQUEST_USER: UserInfo;
}

/// Runs `f` with `user` visible to [`admit`].
pub async fn scope<F: std::future::Future>(user: UserInfo, f: F) -> F::Output {
    REQUEST_USER.scope(user, f).await
}

/// The user of the request being served (admission webhooks send it in AdmissionReviews).
pub fn current_user() -> Option<UserInfo> {
    REQUEST_USER.try_with(UserInfo::clone).ok()
}

/// The node name of a kubelet identity, `None` for every other user.
pub fn node_identity(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix(skiff_pki::NODE_USER_PREFIX)?;
    user.groups
        .iter()
        .any(|g| g == skiff_pki::NODES_GROUP)
        .then_some(name)
}

/// The Node authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeDecision {
    Allow,
    /// Not allowed by the node rules; RBAC may still allow it. The reason ends the 403 message.
    NoOpinion(String),
}

/// `field=value` / `field==value` terms of a field selector (other operators are skipped).
pub fn field_equals(selector: &str) -> Vec<(String, String)> {
    selector
        .split(',')
        .filter(|t| !t.contains("!="))
        .filter_map(|t| {
            let (k, v) = t.split_once("==").or_else(|| t.split_once('='))?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// The static node rules evaluated as RBAC: the bootstrap `system:node` ClusterRole bound to
/// the `system:nodes` group.
static STATIC_RULES: LazyLock<(Vec<Value>, Vec<Value>)> = LazyLock::new(|| {
    let roles: Vec<Value> = rbac::bootstrap_cluster_roles()
        .into_iter()
        .filter(|r| r["metadata"]["name"] == NODE_ROLE)
        .collect();
    let binding = json!({
        "metadata": {"name": NODE_ROLE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NODE_ROLE},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": skiff_pki::NODES_GROUP}],
    });
    (roles, vec![binding])
});

fn static_rules_allow(user: &UserInfo, attrs: &Attributes) -> bool {
    let (roles, bindings) = &*STATIC_RULES;
    let snap = PolicySnapshot {
        cluster_roles: roles,
        cluster_role_bindings: bindings,
        roles: &[],
        role_bindings: &[],
    };
    matches!(rbac::authorize(user, attrs, &snap), Decision::Allow)
}

fn no_relationship(node: &str) -> NodeDecision {
    NodeDecision::NoOpinion(format!(
        "no relationship found between node '{node}' and this object"
    ))
}

fn no(reason: &str) -> NodeDecision {
    NodeDecision::NoOpinion(reason.to_string())
}

/// The Node authorizer as a pure function of the request, its field selector and the graph.
/// `attrs.name` must already hold the `metadata.name` field-selector value for list/watch.
pub fn decide(
    user: &UserInfo,
    node: &str,
    attrs: &Attributes,
    fields: &[(String, String)],
    graph: &NodeGraph,
) -> NodeDecision {
    if node.is_empty() {
        return NodeDecision::NoOpinion(format!("unknown node for user {:?}", user.name));
    }
    let verb = attrs.verb.as_str();
    let sub = attrs.subresource.as_str();
    let related = |kind: RefKind| {
        if attrs.name.is_empty() {
            return no("No Object name found");
        }
        if graph.reaches(node, kind, &attrs.namespace, &attrs.name) {
            NodeDecision::Allow
        } else {
            no_relationship(node)
        }
    };
    if attrs.resource_request {
        match (attrs.api_group.as_str(), attrs.resource.as_str()) {
            ("", "secrets") | ("", "configmaps") => {
                if !matches!(verb, "get" | "list" | "watch") {
                    return no("can only read resources of this type");
                }
                if !sub.is_empty() {
                    return no("cannot read subresource");
                }
                if attrs.namespace.is_empty() {
                    return no("can only read namespaced object of this type");
                }
                let kind = if attrs.resource == "secrets" {
                    RefKind::Secret
                } else {
                    RefKind::ConfigMap
                };
                // skiff addition: every node's ingress proxy reads the TLS Secrets that
                // Ingresses name (Traefik's service account reads all Secrets in k3s).
                if kind == RefKind::Secret
                    && verb == "get"
                    && graph.ingress_references(&attrs.namespace, &attrs.name)
                {
                    return NodeDecision::Allow;
                }
                return related(kind);
            }
            ("", "persistentvolumeclaims") => {
                if sub == "status" {
                    if !matches!(verb, "update" | "patch") {
                        return no("can only get/update/patch this type");
                    }
                    return related(RefKind::Pvc);
                }
                if verb != "get" {
                    return no("can only get individual resources of this type");
                }
                if !sub.is_empty() {
                    return no("cannot get subresource");
                }
                return related(RefKind::Pvc);
            }
            // skiff addition: the node side of the local-path provisioner watches PVs and drops
            // its cleanup finalizer once it removed the directory. Listing PVs reveals no
            // secret data; NodeRestriction limits patches to this node's local-path PVs and to
            // their finalizers.
            ("", "persistentvolumes") if matches!(verb, "list" | "watch" | "patch" | "update") => {
                return if sub.is_empty() {
                    NodeDecision::Allow
                } else {
                    no("cannot modify subresource")
                };
            }
            ("", "persistentvolumes") => {
                if verb != "get" {
                    return no("can only get individual resources of this type");
                }
                if !sub.is_empty() {
                    return no("cannot get subresource");
                }
                if attrs.name.is_empty() {
                    return no("No Object name found");
                }
                return if graph.reaches_pv(node, &attrs.name) {
                    NodeDecision::Allow
                } else {
                    no_relationship(node)
                };
            }
            ("", "serviceaccounts") => {
                if verb != "create" || attrs.name.is_empty() {
                    return no("can only create tokens for individual service accounts");
                }
                if sub != "token" {
                    return no("can only create token subresource of serviceaccount");
                }
                return related(RefKind::ServiceAccount);
            }
            ("coordination.k8s.io", "leases") => {
                if !matches!(verb, "get" | "create" | "update" | "patch" | "delete") {
                    return no("can only get, create, update, patch, or delete a node lease");
                }
                if attrs.namespace != NODE_LEASE_NAMESPACE {
                    return NodeDecision::NoOpinion(format!(
                        "can only access leases in the {NODE_LEASE_NAMESPACE:?} system namespace"
                    ));
                }
                if verb != "create" && attrs.name != node {
                    return no(
                        "can only access node lease with the same name as the requesting node",
                    );
                }
                return NodeDecision::Allow;
            }
            ("", "nodes") => return decide_node(node, attrs),
            ("", "pods") => return decide_pod(node, attrs, fields, graph),
            _ => {}
        }
    }
    if static_rules_allow(user, attrs) {
        NodeDecision::Allow
    } else {
        no("")
    }
}

fn decide_node(node: &str, attrs: &Attributes) -> NodeDecision {
    match (attrs.subresource.as_str(), attrs.verb.as_str()) {
        // NodeRestriction limits these to the node's own object.
        ("", "create" | "update" | "patch") | ("status", "update" | "patch") => NodeDecision::Allow,
        // skiff addition: the node's pod network (flannel's role) and service proxy read every
        // Node (pod CIDRs, flannel annotations, addresses), as k3s's k3s-controller user does.
        ("", "list" | "watch") if attrs.name.is_empty() => NodeDecision::Allow,
        ("" | "status", "get" | "list" | "watch") => {
            if attrs.name == node {
                NodeDecision::Allow
            } else if attrs.name.is_empty() {
                NodeDecision::NoOpinion(format!(
                    "node '{node}' cannot read all nodes, only its own Node object"
                ))
            } else {
                NodeDecision::NoOpinion(format!(
                    "node '{node}' cannot read '{}', only its own Node object",
                    attrs.name
                ))
            }
        }
        _ => no(""),
    }
}

fn decide_pod(
    node: &str,
    attrs: &Attributes,
    fields: &[(String, String)],
    graph: &NodeGraph,
) -> NodeDecision {
    let bound_here = || {
        graph
            .pod_node(&attrs.namespace, &attrs.name)
            .is_some_and(|p| p.node == node)
    };
    match (attrs.subresource.as_str(), attrs.verb.as_str()) {
        ("", "get") => {
            if attrs.name.is_empty() {
                no("No Object name found")
            } else if bound_here() {
                NodeDecision::Allow
            } else {
                no_relationship(node)
            }
        }
        ("", "list" | "watch") => {
            if fields
                .iter()
                .any(|(k, v)| k == "spec.nodeName" && v == node)
            {
                NodeDecision::Allow
            } else if !attrs.name.is_empty() {
                if bound_here() {
                    NodeDecision::Allow
                } else {
                    no_relationship(node)
                }
            } else {
                // skiff addition: the node's NetworkPolicy enforcement needs every pod's IP,
                // labels and ports (policy peers live on any node), as kube-router reads them
                // with k3s's k3s-controller identity on every k3s node.
                NodeDecision::Allow
            }
        }
        // NodeRestriction: mirror pods only, and only its own pods.
        ("", "create" | "delete") | ("status", "update" | "patch") | ("eviction", "create") => {
            NodeDecision::Allow
        }
        _ => no(""),
    }
}

/// Authorizes a request: the Node authorizer for kubelet identities, then RBAC. Deleting or
/// evicting a pod bound to another node is refused here (the NodeRestriction part that needs
/// the existing object).
pub fn authorize(st: &AppState, user: &UserInfo, attrs: &Attributes, q: &Query) -> ApiResult<()> {
    let Some(node) = node_identity(user) else {
        return authz::authorize(st, user, attrs);
    };
    let fields = q.get("fieldSelector").map(field_equals).unwrap_or_default();
    let mut attrs = attrs.clone();
    if attrs.name.is_empty() && matches!(attrs.verb.as_str(), "list" | "watch") {
        if let Some((_, v)) = fields.iter().find(|(k, _)| k == "metadata.name") {
            attrs.name = v.clone();
        }
    }
    let decision = {
        let g = st.node_graph.read();
        let d = decide(user, node, &attrs, &fields, &g);
        if d == NodeDecision::Allow && attrs.resource == "pods" && attrs.api_group.is_empty() {
            if let Err(msg) = pod_delete_restriction(node, &attrs, &g) {
                return Err(forbidden("pods", &attrs.name, &msg));
            }
        }
        d
    };
    match decision {
        NodeDecision::Allow => Ok(()),
        NodeDecision::NoOpinion(reason) => {
            authz::authorize_with(st, user, &attrs, &reason, Some(NODE_ROLE))
        }
    }
}

fn pod_delete_restriction(node: &str, attrs: &Attributes, g: &NodeGraph) -> Result<(), String> {
    let what = match (attrs.verb.as_str(), attrs.subresource.as_str()) {
        ("delete", "") => "delete",
        ("create", "eviction") => "evict",
        _ => return Ok(()),
    };
    match g.pod_node(&attrs.namespace, &attrs.name) {
        Some(p) if p.node != node => Err(format!(
            "node {node:?} can only {what} pods with spec.nodeName set to itself"
        )),
        _ => Ok(()),
    }
}

fn forbidden(plural: &str, name: &str, msg: &str) -> ApiError {
    ApiError::forbidden(format!("{plural} {name:?} is forbidden: {msg}"))
        .with_details(json!({"name": name, "kind": plural}))
}

/// NodeRestriction on a create (`old` None) or update by the current request's user; a no-op
/// for everyone but kubelet identities.
pub fn admit(res: &ResourceInfo, obj: &Value, old: Option<&Value>) -> ApiResult<()> {
    let Ok(Some(node)) = REQUEST_USER.try_with(|u| node_identity(u).map(str::to_string)) else {
        return Ok(());
    };
    let name = obj["metadata"]["name"]
        .as_str()
        .or_else(|| old.and_then(|o| o["metadata"]["name"].as_str()))
        .unwrap_or("");
    restrict(&node, res.group, res.plural, obj, old).map_err(|m| forbidden(res.plural, name, &m))
}

/// Labels a kubelet may set on its Node (upstream `kubeletapis` allowed set).
fn kubelet_may_set_label(key: &str) -> bool {
    const EXACT: [&str; 11] = [
        "kubernetes.io/hostname",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
    ];
    let Some((prefix, _)) = key.split_once('/') else {
        return true;
    };
    if prefix == "node-restriction.kubernetes.io"
        || prefix.ends_with(".node-restriction.kubernetes.io")
    {
        return false;
    }
    let k8s_namespace = |d: &str| prefix == d || prefix.ends_with(&format!(".{d}"));
    if !k8s_namespace("kubernetes.io") && !k8s_namespace("k8s.io") {
        return true;
    }
    EXACT.contains(&key)
        || k8s_namespace("kubelet.kubernetes.io")
        || k8s_namespace("node.kubernetes.io")
}

fn labels(obj: Option<&Value>) -> Vec<(String, String)> {
    obj.and_then(|o| o["metadata"]["labels"].as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// NodeRestriction as a pure function: `Err(message)` when `node` may not make this write.
/// The annotation the local-path provisioner puts on a PV for the node that holds it.
pub const LOCAL_PATH_NODE_ANNOTATION: &str = "local.path.provisioner/selected-node";

pub fn restrict(
    node: &str,
    group: &str,
    plural: &str,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), String> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    match (group, plural) {
        ("", "nodes") => {
            if name != node {
                return Err(format!(
                    "node {node:?} is not allowed to modify node {name:?}"
                ));
            }
            let new_labels = labels(Some(obj));
            let old_labels = labels(old);
            let mut changed: BTreeSet<String> = BTreeSet::new();
            for (k, v) in &new_labels {
                if !old_labels.iter().any(|(ok, ov)| ok == k && ov == v) {
                    changed.insert(k.clone());
                }
            }
            if old.is_some() {
                for (k, _) in &old_labels {
                    if !new_labels.iter().any(|(nk, _)| nk == k) {
                        changed.insert(k.clone());
                    }
                }
            }
            let bad: Vec<String> = changed
                .into_iter()
                .filter(|k| !kubelet_may_set_label(k))
                .collect();
            if !bad.is_empty() {
                return Err(if old.is_none() {
                    format!(
                        "is not allowed to set the following labels: {}",
                        bad.join(", ")
                    )
                } else {
                    format!("is not allowed to modify labels: {}", bad.join(", "))
                });
            }
            if let Some(old) = old {
                let taints =
                    |o: &Value| o["spec"]["taints"].as_array().cloned().unwrap_or_default();
                if taints(old) != taints(obj) {
                    return Err(format!("node {node:?} is not allowed to modify taints"));
                }
            }
            Ok(())
        }
        ("", "persistentvolumes") => {
            let Some(old) = old else {
                return Err(format!("node {node:?} cannot create persistentvolumes"));
            };
            if old["metadata"]["annotations"][LOCAL_PATH_NODE_ANNOTATION].as_str() != Some(node) {
                return Err(format!(
                    "node {node:?} can only modify persistentvolumes provisioned on itself"
                ));
            }
            let mut a = old.clone();
            let mut b = obj.clone();
            for v in [&mut a, &mut b] {
                if let Some(m) = v["metadata"].as_object_mut() {
                    for k in [
                        "finalizers",
                        "resourceVersion",
                        "managedFields",
                        "generation",
                    ] {
                        m.remove(k);
                    }
                }
            }
            if a != b {
                return Err(format!(
                    "node {node:?} can only change the finalizers of a persistentvolume"
                ));
            }
            Ok(())
        }
        ("", "pods") => match old {
            Some(old) => {
                if old["spec"]["nodeName"].as_str() != Some(node) {
                    return Err(format!(
                        "node {node:?} can only update pod status for pods with spec.nodeName set to itself"
                    ));
                }
                if old["metadata"]["labels"] != obj["metadata"]["labels"] {
                    return Err(format!(
                        "node {node:?} cannot update labels through pod status"
                    ));
                }
                Ok(())
            }
            None => {
                if obj["metadata"]["annotations"][MIRROR_ANNOTATION].is_null() {
                    return Err(format!(
                        "pod does not have {MIRROR_ANNOTATION:?} annotation, node {node:?} can only create mirror pods"
                    ));
                }
                if obj["spec"]["nodeName"].as_str() != Some(node) {
                    return Err(format!(
                        "node {node:?} can only create pods with spec.nodeName set to itself"
                    ));
                }
                // The service-account token volume the API server mounts itself is not the
                // node's doing; look at what else the pod references.
                let mut user_part = obj.clone();
                if let Some(vols) = user_part["spec"]["volumes"].as_array_mut() {
                    vols.retain(|v| {
                        !v["name"]
                            .as_str()
                            .is_some_and(|n| n.starts_with("kube-api-access-"))
                    });
                }
                for (kind, _) in pod_refs(&user_part).refs {
                    let what = match kind {
                        RefKind::Secret => "secrets",
                        RefKind::ConfigMap => "configmaps",
                        RefKind::Pvc => "persistentvolumeclaims",
                        RefKind::ServiceAccount => continue,
                    };
                    return Err(format!(
                        "node {node:?} can not create pods that reference {what}"
                    ));
                }
                Ok(())
            }
        },
        ("coordination.k8s.io", "leases") if old.is_none() => {
            let ns = obj["metadata"]["namespace"].as_str().unwrap_or("");
            if ns == NODE_LEASE_NAMESPACE && name != node {
                return Err(format!(
                    "can only access node lease with the same name as the requesting node {node:?}"
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_user(n: &str) -> UserInfo {
        UserInfo {
            name: format!("system:node:{n}"),
            uid: String::new(),
            groups: vec!["system:nodes".into(), "system:authenticated".into()],
        }
    }

    fn attrs(
        verb: &str,
        group: &str,
        resource: &str,
        sub: &str,
        ns: &str,
        name: &str,
    ) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: ns.into(),
            path: String::new(),
        }
    }

    fn graph() -> NodeGraph {
        let mut g = NodeGraph::default();
        g.put_pod(&json!({
            "metadata": {"namespace": "default", "name": "web", "uid": "u1"},
            "spec": {"nodeName": "n1", "serviceAccountName": "app",
                "volumes": [{"name": "s", "secret": {"secretName": "db"}},
                            {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
                "containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}]}]}
        }));
        g.put_pod(&json!({
            "metadata": {"namespace": "default", "name": "other", "uid": "u2"},
            "spec": {"nodeName": "n2", "volumes": [{"name": "s", "secret": {"secretName": "theirs"}}],
                "containers": [{"name": "c"}]}
        }));
        g.put_pvc(&json!({"metadata": {"namespace": "default", "name": "data"}, "spec": {"volumeName": "pv-a"}}));
        g
    }

    fn d(a: Attributes, fields: &[(&str, &str)]) -> NodeDecision {
        let f: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        decide(&node_user("n1"), "n1", &a, &f, &graph())
    }

    #[test]
    fn node_identity_needs_prefix_and_group() {
        assert_eq!(node_identity(&node_user("n1")), Some("n1"));
        let mut u = node_user("n1");
        u.groups = vec!["system:authenticated".into()];
        assert_eq!(node_identity(&u), None);
        let token_user = UserInfo {
            name: "system:skiff-node".into(),
            uid: String::new(),
            groups: vec!["system:nodes".into()],
        };
        assert_eq!(node_identity(&token_user), None);
    }

    #[test]
    fn ingress_tls_secrets_are_readable_by_every_node() {
        use NodeDecision::*;
        let mut g = graph();
        g.put_ingress(&json!({"metadata": {"namespace": "web", "name": "site"},
            "spec": {"tls": [{"hosts": ["a.com"], "secretName": "a-tls"}]}}));
        let get = |g: &NodeGraph, name: &str| {
            decide(
                &node_user("n2"),
                "n2",
                &attrs("get", "", "secrets", "", "web", name),
                &[],
                g,
            )
        };
        assert_eq!(get(&g, "a-tls"), Allow);
        assert_eq!(get(&g, "other"), no_relationship("n2"));
        assert_eq!(
            decide(
                &node_user("n2"),
                "n2",
                &attrs("list", "", "secrets", "", "web", ""),
                &[],
                &g
            ),
            no("No Object name found")
        );
        g.remove_ingress("web", "site");
        assert_eq!(get(&g, "a-tls"), no_relationship("n2"));
    }

    #[test]
    fn secrets_and_configmaps_need_a_pod_on_the_node() {
        use NodeDecision::*;
        let nr = || NoOpinion("no relationship found between node 'n1' and this object".into());
        assert_eq!(
            d(attrs("get", "", "secrets", "", "default", "db"), &[]),
            Allow
        );
        assert_eq!(
            d(attrs("watch", "", "secrets", "", "default", "db"), &[]),
            Allow
        );
        assert_eq!(
            d(attrs("get", "", "secrets", "", "default", "theirs"), &[]),
            nr()
        );
        assert_eq!(
            d(attrs("get", "", "secrets", "", "kube-system", "db"), &[]),
            nr()
        );
        assert_eq!(
            d(attrs("list", "", "secrets", "", "default", ""), &[]),
            NoOpinion("No Object name found".into())
        );
        assert_eq!(
            d(attrs("update", "", "secrets", "", "default", "db"), &[]),
            NoOpinion("can only read resources of this type".into())
        );
        assert_eq!(
            d(attrs("get", "", "configmaps", "", "default", "cfg"), &[]),
            Allow
        );
        assert_eq!(
            d(attrs("get", "", "configmaps", "", "default", "nope"), &[]),
            nr()
        );
        assert_eq!(
            d(
                attrs("get", "", "persistentvolumeclaims", "", "default", "data"),
                &[]
            ),
            Allow
        );
        assert_eq!(
            d(attrs("get", "", "persistentvolumes", "", "", "pv-a"), &[]),
            Allow
        );
        assert_eq!(
            d(attrs("get", "", "persistentvolumes", "", "", "pv-b"), &[]),
            nr()
        );
        assert_eq!(
            d(
                attrs("create", "", "serviceaccounts", "token", "default", "app"),
                &[]
            ),
            Allow
        );
        assert_eq!(
            d(
                attrs(
                    "create",
                    "",
                    "serviceaccounts",
                    "token",
                    "default",
                    "default"
                ),
                &[]
            ),
            nr()
        );
    }

    #[test]
    fn nodes_and_pods_follow_upstream_selector_rules() {
        use NodeDecision::*;
        assert_eq!(d(attrs("get", "", "nodes", "", "", "n1"), &[]), Allow);
        assert_eq!(
            d(attrs("get", "", "nodes", "", "", "n2"), &[]),
            NoOpinion("node 'n1' cannot read 'n2', only its own Node object".into())
        );
        assert_eq!(
            d(attrs("list", "", "nodes", "", "", ""), &[]),
            Allow,
            "the pod network and the service proxy watch every Node"
        );
        assert_eq!(
            d(attrs("list", "", "nodes", "status", "", ""), &[]),
            NoOpinion("node 'n1' cannot read all nodes, only its own Node object".into())
        );
        assert_eq!(
            d(attrs("patch", "", "nodes", "", "", "n2"), &[]),
            Allow,
            "NodeRestriction decides"
        );
        assert_eq!(
            d(attrs("patch", "", "nodes", "status", "", "n1"), &[]),
            Allow
        );
        assert_eq!(
            d(attrs("delete", "", "nodes", "", "", "n1"), &[]),
            NoOpinion(String::new())
        );
        // skiff addition: every pod, for the node's NetworkPolicy enforcement.
        assert_eq!(d(attrs("list", "", "pods", "", "", ""), &[]), Allow);
        assert_eq!(
            d(
                attrs("watch", "", "pods", "", "", ""),
                &[("spec.nodeName", "n1")]
            ),
            Allow
        );
        assert_eq!(
            d(
                attrs("watch", "", "pods", "", "", ""),
                &[("spec.nodeName", "n2")]
            ),
            Allow
        );
        assert_eq!(
            d(attrs("get", "", "pods", "", "default", "web"), &[]),
            Allow
        );
        assert_eq!(
            d(attrs("get", "", "pods", "", "default", "other"), &[]),
            NoOpinion("no relationship found between node 'n1' and this object".into())
        );
        assert_eq!(
            d(attrs("patch", "", "pods", "status", "default", "web"), &[]),
            Allow
        );
        assert_eq!(
            d(attrs("update", "", "pods", "", "default", "web"), &[]),
            NoOpinion(String::new())
        );
    }

    #[test]
    fn leases_static_rules_and_everything_else() {
        use NodeDecision::*;
        let lease = |verb: &str, ns: &str, name: &str| {
            d(
                attrs(verb, "coordination.k8s.io", "leases", "", ns, name),
                &[],
            )
        };
        assert_eq!(lease("update", "kube-node-lease", "n1"), Allow);
        assert_eq!(lease("create", "kube-node-lease", ""), Allow);
        assert_eq!(
            lease("update", "kube-node-lease", "n2"),
            NoOpinion(
                "can only access node lease with the same name as the requesting node".into()
            )
        );
        assert_eq!(
            lease("get", "kube-system", "n1"),
            NoOpinion("can only access leases in the \"kube-node-lease\" system namespace".into())
        );
        // Static rules.
        assert_eq!(d(attrs("list", "", "services", "", "", ""), &[]), Allow);
        assert_eq!(
            d(attrs("create", "", "events", "", "default", ""), &[]),
            Allow
        );
        assert_eq!(
            d(
                attrs(
                    "create",
                    "authentication.k8s.io",
                    "tokenreviews",
                    "",
                    "",
                    ""
                ),
                &[]
            ),
            Allow
        );
        assert_eq!(
            d(
                attrs("watch", "discovery.k8s.io", "endpointslices", "", "", ""),
                &[]
            ),
            Allow
        );
        assert_eq!(
            d(attrs("list", "apps", "deployments", "", "", ""), &[]),
            NoOpinion(String::new())
        );
        assert_eq!(
            d(attrs("create", "", "namespaces", "", "", ""), &[]),
            NoOpinion(String::new())
        );
    }

    #[test]
    fn field_selector_terms() {
        assert_eq!(
            field_equals("spec.nodeName=n1,metadata.name==x,status.phase!=Failed"),
            vec![
                ("spec.nodeName".to_string(), "n1".to_string()),
                ("metadata.name".to_string(), "x".to_string())
            ]
        );
        assert!(field_equals("").is_empty());
    }

    #[test]
    fn pod_delete_and_eviction_only_for_own_pods() {
        let g = graph();
        assert!(pod_delete_restriction(
            "n1",
            &attrs("delete", "", "pods", "", "default", "web"),
            &g
        )
        .is_ok());
        assert_eq!(
            pod_delete_restriction(
                "n1",
                &attrs("delete", "", "pods", "", "default", "other"),
                &g
            ),
            Err("node \"n1\" can only delete pods with spec.nodeName set to itself".into())
        );
        assert!(pod_delete_restriction(
            "n1",
            &attrs("create", "", "pods", "eviction", "default", "other"),
            &g
        )
        .unwrap_err()
        .contains("can only evict"));
        // Unknown pods go on to the store (404).
        assert!(pod_delete_restriction(
            "n1",
            &attrs("delete", "", "pods", "", "default", "gone"),
            &g
        )
        .is_ok());
    }

    #[test]
    fn node_restriction_on_nodes() {
        let n = |name: &str, labels: Value, taints: Value| json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}});
        let base = n("n1", json!({"kubernetes.io/hostname": "n1"}), json!([]));
        assert!(restrict("n1", "", "nodes", &base, None).is_ok());
        assert_eq!(
            restrict("n1", "", "nodes", &n("n2", json!({}), json!([])), None),
            Err("node \"n1\" is not allowed to modify node \"n2\"".into())
        );
        // Creating with taints is fine; changing them later is not.
        let tainted = n(
            "n1",
            json!({}),
            json!([{"key": "k", "effect": "NoSchedule"}]),
        );
        assert!(restrict("n1", "", "nodes", &tainted, None).is_ok());
        assert_eq!(
            restrict("n1", "", "nodes", &tainted, Some(&base)),
            Err("node \"n1\" is not allowed to modify taints".into())
        );
        // Labels.
        let ok = n(
            "n1",
            json!({"kubernetes.io/hostname": "n1", "node.kubernetes.io/exclude": "x",
                   "example.com/team": "a", "plain": "b"}),
            json!([]),
        );
        assert!(restrict("n1", "", "nodes", &ok, Some(&base)).is_ok());
        let bad = n(
            "n1",
            json!({"kubernetes.io/hostname": "n1", "node-role.kubernetes.io/control-plane": "true",
                   "node-restriction.kubernetes.io/pool": "a"}),
            json!([]),
        );
        assert_eq!(
            restrict("n1", "", "nodes", &bad, Some(&base)),
            Err("is not allowed to modify labels: node-restriction.kubernetes.io/pool, node-role.kubernetes.io/control-plane".into())
        );
        assert!(restrict("n1", "", "nodes", &bad, None)
            .unwrap_err()
            .starts_with("is not allowed to set the following labels"));
        // Removing a restricted label is a modification too; unchanged ones are fine.
        assert!(restrict("n1", "", "nodes", &base, Some(&bad)).is_err());
        assert!(restrict("n1", "", "nodes", &bad, Some(&bad)).is_ok());
    }

    #[test]
    fn node_restriction_on_local_path_volumes() {
        let pv = |node: &str, fin: Value| {
            json!({"metadata": {"name": "pvc-1", "finalizers": fin,
                "annotations": {LOCAL_PATH_NODE_ANNOTATION: node}},
                "spec": {"hostPath": {"path": "/x"}}})
        };
        let old = pv("n1", json!(["skiff.io/local-path-cleanup"]));
        assert!(restrict(
            "n1",
            "",
            "persistentvolumes",
            &pv("n1", json!([])),
            Some(&old)
        )
        .is_ok());
        let err = restrict(
            "n2",
            "",
            "persistentvolumes",
            &pv("n1", json!([])),
            Some(&old),
        );
        assert!(err.unwrap_err().contains("provisioned on itself"));
        let mut moved = pv("n1", json!([]));
        moved["spec"]["hostPath"]["path"] = json!("/etc");
        assert!(restrict("n1", "", "persistentvolumes", &moved, Some(&old))
            .unwrap_err()
            .contains("only change the finalizers"));
        assert!(restrict("n1", "", "persistentvolumes", &old, None).is_err());
    }

    #[test]
    fn node_restriction_on_pods_and_leases() {
        let own =
            json!({"metadata": {"name": "web", "labels": {"a": "1"}}, "spec": {"nodeName": "n1"}});
        let theirs =
            json!({"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"nodeName": "n2"}});
        assert!(restrict("n1", "", "pods", &own, Some(&own)).is_ok());
        assert_eq!(
            restrict("n1", "", "pods", &theirs, Some(&theirs)),
            Err(
                "node \"n1\" can only update pod status for pods with spec.nodeName set to itself"
                    .into()
            )
        );
        let relabeled =
            json!({"metadata": {"name": "web", "labels": {"a": "2"}}, "spec": {"nodeName": "n1"}});
        assert!(restrict("n1", "", "pods", &relabeled, Some(&own)).is_err());
        // Create: mirror pods bound to itself without references only.
        assert!(restrict("n1", "", "pods", &own, None)
            .unwrap_err()
            .contains("can only create mirror pods"));
        let mirror = |node: &str, vols: Value| {
            json!({"metadata": {"name": "m", "annotations": {MIRROR_ANNOTATION: "abc"}},
                   "spec": {"nodeName": node, "volumes": vols, "containers": [{"name": "c"}]}})
        };
        let token_vol = json!([{"name": "kube-api-access-x", "projected": {"sources": [{"configMap": {"name": "kube-root-ca.crt"}}]}}]);
        assert!(restrict("n1", "", "pods", &mirror("n1", token_vol), None).is_ok());
        assert!(restrict("n1", "", "pods", &mirror("n2", json!([])), None).is_err());
        assert_eq!(
            restrict(
                "n1",
                "",
                "pods",
                &mirror("n1", json!([{"name": "s", "secret": {"secretName": "db"}}])),
                None
            ),
            Err("node \"n1\" can not create pods that reference secrets".into())
        );
        let lease =
            |name: &str| json!({"metadata": {"name": name, "namespace": "kube-node-lease"}});
        assert!(restrict("n1", "coordination.k8s.io", "leases", &lease("n1"), None).is_ok());
        assert!(restrict("n1", "coordination.k8s.io", "leases", &lease("n2"), None).is_err());
        // Other kinds are not restricted here.
        assert!(restrict(
            "n1",
            "",
            "events",
            &json!({"metadata": {"name": "e"}}),
            None
        )
        .is_ok());
    }
}
