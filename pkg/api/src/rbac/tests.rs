//! Table-driven tests of the RBAC authorizer, forbidden messages and bootstrap policy.

use super::*;
use serde_json::json;

fn user(name: &str, groups: &[&str]) -> UserInfo {
    let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    groups.push(ALL_AUTHENTICATED.to_string());
    UserInfo {
        name: name.to_string(),
        uid: "uid".to_string(),
        groups,
    }
}

fn res(verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Attributes {
    Attributes {
        verb: verb.to_string(),
        resource_request: true,
        api_group: group.to_string(),
        resource: resource.to_string(),
        subresource: sub.to_string(),
        name: name.to_string(),
        namespace: ns.to_string(),
        path: String::new(),
    }
}

fn url(verb: &str, path: &str) -> Attributes {
    Attributes {
        verb: verb.to_string(),
        resource_request: false,
        path: path.to_string(),
        ..Attributes::default()
    }
}

fn role(kind: &str, ns: &str, name: &str, rules: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
        "metadata": { "name": name, "namespace": ns },
        "rules": rules,
    })
}

fn binding(
    kind: &str,
    ns: &str,
    name: &str,
    ref_kind: &str,
    ref_name: &str,
    subjects: Value,
) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
        "metadata": { "name": name, "namespace": ns },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind, "name": ref_name },
        "subjects": subjects,
    })
}

/// A cluster with the bootstrap policy plus the given namespaced objects.
struct World {
    cluster_roles: Vec<Value>,
    cluster_role_bindings: Vec<Value>,
    roles: Vec<Value>,
    role_bindings: Vec<Value>,
}

impl World {
    fn bootstrap() -> Self {
        World {
            cluster_roles: bootstrap_cluster_roles(),
            cluster_role_bindings: bootstrap_cluster_role_bindings(),
            roles: Vec::new(),
            role_bindings: Vec::new(),
        }
    }

    /// Authorizes with the roles/bindings of the request namespace, as the server passes them.
    fn check(&self, u: &UserInfo, a: &Attributes) -> Decision {
        let ns_of = |v: &&Value| {
            v.pointer("/metadata/namespace").and_then(Value::as_str) == Some(a.namespace.as_str())
        };
        let roles: Vec<Value> = self.roles.iter().filter(ns_of).cloned().collect();
        let role_bindings: Vec<Value> = self.role_bindings.iter().filter(ns_of).cloned().collect();
        let policy = PolicySnapshot {
            cluster_roles: &self.cluster_roles,
            cluster_role_bindings: &self.cluster_role_bindings,
            roles: &roles,
            role_bindings: &role_bindings,
        };
        authorize(u, a, &policy)
    }

    fn allowed(&self, u: &UserInfo, a: &Attributes) -> bool {
        self.check(u, a) == Decision::Allow
    }
}

#[test]
fn system_masters_may_do_anything_even_without_policy() {
    let w = World {
        cluster_roles: vec![],
        cluster_role_bindings: vec![],
        roles: vec![],
        role_bindings: vec![],
    };
    let admin = user("kube-admin", &[SYSTEM_MASTERS]);
    assert!(w.allowed(&admin, &res("delete", "", "nodes", "", "", "n1")));
    assert!(w.allowed(&admin, &url("get", "/metrics")));
    assert!(w.allowed(
        &admin,
        &res(
            "escalate",
            "rbac.authorization.k8s.io",
            "clusterroles",
            "",
            "",
            "x"
        )
    ));
}

#[test]
fn service_account_without_bindings_is_denied_with_upstream_message() {
    let w = World::bootstrap();
    let sa = UserInfo::service_account("default", "x", "u1");
    let a = attributes_for("GET", "/api/v1/namespaces/default/pods", false);
    assert_eq!(w.check(&sa, &a), Decision::Deny(String::new()));
    assert_eq!(
        forbidden_message(&sa, &a),
        r#"pods is forbidden: User "system:serviceaccount:default:x" cannot list resource "pods" in API group "" in the namespace "default""#
    );
}

#[test]
fn forbidden_messages_match_upstream() {
    let bob = user("bob", &[]);
    let cases: &[(Attributes, &str)] = &[
        (
            attributes_for("GET", "/api/v1/nodes", false),
            r#"nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" at the cluster scope"#,
        ),
        (
            attributes_for("GET", "/api/v1/namespaces/default/pods/web", false),
            r#"pods "web" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "default""#,
        ),
        (
            attributes_for("POST", "/api/v1/namespaces/default/pods/web/exec", false),
            r#"pods "web" is forbidden: User "bob" cannot create resource "pods/exec" in API group "" in the namespace "default""#,
        ),
        (
            attributes_for(
                "PATCH",
                "/apis/apps/v1/namespaces/prod/deployments/api/scale",
                false,
            ),
            r#"deployments.apps "api" is forbidden: User "bob" cannot patch resource "deployments/scale" in API group "apps" in the namespace "prod""#,
        ),
        (
            attributes_for(
                "GET",
                "/apis/rbac.authorization.k8s.io/v1/clusterroles",
                true,
            ),
            r#"clusterroles.rbac.authorization.k8s.io is forbidden: User "bob" cannot watch resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope"#,
        ),
        (
            attributes_for("GET", "/api/v1/namespaces/kube-system", false),
            r#"namespaces "kube-system" is forbidden: User "bob" cannot get resource "namespaces" in API group "" in the namespace "kube-system""#,
        ),
        (
            attributes_for("GET", "/metrics", false),
            r#"forbidden: User "bob" cannot get path "/metrics""#,
        ),
    ];
    for (a, want) in cases {
        assert_eq!(forbidden_message(&bob, a), *want, "{a:?}");
    }
    // Quoting and sanitising like Go's %q and upstream's HTML sanitizer.
    let odd = user("a\"b<c>&", &[]);
    assert_eq!(
        forbidden_message(&odd, &url("get", "/x")),
        r#"forbidden: User "a\"b&lt;c&gt;&amp;" cannot get path "/x""#
    );
    // The authorizer's reason is appended after a colon.
    assert_eq!(
        forbidden_message_with_reason(
            &bob,
            &url("get", "/x"),
            "RBAC: clusterrole.rbac.authorization.k8s.io \"gone\" not found"
        ),
        r#"forbidden: User "bob" cannot get path "/x": RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found"#
    );
}

#[test]
fn rolebinding_to_view_grants_reads_in_its_namespace_only() {
    let mut w = World::bootstrap();
    w.role_bindings.push(binding(
        "RoleBinding",
        "team-a",
        "alice-view",
        "ClusterRole",
        "view",
        json!([{ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice" }]),
    ));
    let alice = user("alice", &[]);
    let table: &[(Attributes, bool)] = &[
        (res("get", "", "pods", "", "team-a", "web"), true),
        (res("list", "", "pods", "", "team-a", ""), true),
        (res("watch", "", "pods", "", "team-a", ""), true),
        (res("get", "", "pods", "log", "team-a", "web"), true),
        (res("get", "apps", "deployments", "", "team-a", "web"), true),
        (res("get", "", "namespaces", "", "team-a", "team-a"), true),
        (res("get", "", "pods", "", "team-b", "web"), false),
        (res("list", "", "pods", "", "", ""), false),
        (res("delete", "", "pods", "", "team-a", "web"), false),
        (res("create", "", "pods", "exec", "team-a", "web"), false),
        (res("get", "", "secrets", "", "team-a", "s"), false),
        (
            res(
                "get",
                "rbac.authorization.k8s.io",
                "roles",
                "",
                "team-a",
                "r",
            ),
            false,
        ),
    ];
    for (a, want) in table {
        assert_eq!(w.allowed(&alice, a), *want, "{a:?}");
    }
    // Someone else gets nothing from alice's binding.
    assert!(!w.allowed(
        &user("mallory", &[]),
        &res("get", "", "pods", "", "team-a", "web")
    ));
}

#[test]
fn edit_cannot_touch_roles_but_admin_can() {
    let mut w = World::bootstrap();
    w.role_bindings.push(binding(
        "RoleBinding",
        "dev",
        "ed",
        "ClusterRole",
        "edit",
        json!([{ "kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "editors" }]),
    ));
    w.role_bindings.push(binding(
        "RoleBinding",
        "dev",
        "ad",
        "ClusterRole",
        "admin",
        json!([{ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "root" }]),
    ));
    let editor = user("ed", &["editors"]);
    let admin = user("root", &[]);
    let rbac = "rbac.authorization.k8s.io";
    for verb in ["get", "list", "create", "update", "patch", "delete"] {
        let name = if matches!(verb, "list" | "create") {
            ""
        } else {
            "r"
        };
        assert!(
            !w.allowed(&editor, &res(verb, rbac, "roles", "", "dev", name)),
            "edit {verb} roles"
        );
        assert!(
            !w.allowed(&editor, &res(verb, rbac, "rolebindings", "", "dev", name)),
            "edit {verb} rolebindings"
        );
        assert!(
            w.allowed(&admin, &res(verb, rbac, "roles", "", "dev", name)),
            "admin {verb} roles"
        );
    }
    // edit includes view (aggregated) and its own write rules.
    assert!(w.allowed(
        &editor,
        &res("create", "apps", "deployments", "", "dev", "")
    ));
    assert!(w.allowed(&editor, &res("list", "apps", "deployments", "", "dev", "")));
    assert!(w.allowed(&editor, &res("create", "", "pods", "exec", "dev", "web")));
    assert!(w.allowed(&editor, &res("get", "", "secrets", "", "dev", "s")));
    assert!(!w.allowed(&editor, &res("update", "", "pods", "status", "dev", "web")));
    assert!(!w.allowed(&editor, &res("create", "", "resourcequotas", "", "dev", "")));
    // admin includes edit and view through two levels of aggregation.
    assert!(w.allowed(&admin, &res("create", "apps", "deployments", "", "dev", "")));
    assert!(w.allowed(&admin, &res("watch", "", "pods", "", "dev", "")));
    assert!(!w.allowed(&admin, &res("get", "", "nodes", "", "", "n1")));
}

#[test]
fn resource_names_restrict_named_verbs_only() {
    let mut w = World::bootstrap();
    w.roles.push(role(
        "Role", "ns", "one-cm",
        json!([{ "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["app-config"],
                 "verbs": ["get", "list", "watch", "create", "update", "delete", "deletecollection"] }]),
    ));
    w.role_bindings.push(binding(
        "RoleBinding",
        "ns",
        "b",
        "Role",
        "one-cm",
        json!([{ "kind": "ServiceAccount", "name": "app" }]),
    ));
    let sa = UserInfo::service_account("ns", "app", "u");
    let table: &[(Attributes, bool)] = &[
        (res("get", "", "configmaps", "", "ns", "app-config"), true),
        (res("update", "", "configmaps", "", "ns", "app-config"), true),
        (res("delete", "", "configmaps", "", "ns", "app-config"), true),
        (res("get", "", "configmaps", "", "ns", "other"), false),
        // No name on the request: a named rule cannot match.
        (res("list", "", "configmaps", "", "ns", ""), false),
        (res("watch", "", "configmaps", "", "ns", ""), false),
        (res("create", "", "configmaps", "", "ns", ""), false),
        (res("deletecollection", "", "configmaps", "", "ns", ""), false),
        // ... unless a metadata.name field selector names it, as upstream resolves it.
        (attributes_for("GET", "/api/v1/namespaces/ns/configmaps?fieldSelector=metadata.name%3Dapp-config&watch=true", false), true),
    ];
    for (a, want) in table {
        assert_eq!(w.allowed(&sa, a), *want, "{a:?}");
    }
}

#[test]
fn subresources_and_wildcards() {
    let mut w = World::bootstrap();
    w.cluster_roles.push(role(
        "ClusterRole",
        "",
        "mixed",
        json!([
            { "apiGroups": [""], "resources": ["pods/status"], "verbs": ["update"] },
            { "apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get", "update"] },
            { "apiGroups": ["batch"], "resources": ["*"], "verbs": ["*"] },
            { "apiGroups": [""], "resources": ["nodes"], "verbs": ["get"] },
        ]),
    ));
    w.cluster_role_bindings.push(binding(
        "ClusterRoleBinding",
        "",
        "mixed",
        "ClusterRole",
        "mixed",
        json!([{ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "op" }]),
    ));
    let op = user("op", &[]);
    let table: &[(Attributes, bool)] = &[
        (res("update", "", "pods", "status", "any", "p"), true),
        (res("update", "", "pods", "", "any", "p"), false),
        (res("update", "", "pods", "exec", "any", "p"), false),
        (res("get", "apps", "deployments", "scale", "x", "d"), true),
        (
            res("update", "", "replicationcontrollers", "scale", "x", "r"),
            true,
        ),
        (res("get", "apps", "deployments", "", "x", "d"), false),
        (res("get", "apps", "deployments", "status", "x", "d"), false),
        (res("deletecollection", "batch", "jobs", "", "x", ""), true),
        (res("create", "batch", "cronjobs", "", "x", ""), true),
        (res("get", "batch", "jobs", "status", "x", "j"), true),
        (res("get", "", "nodes", "", "", "n1"), true),
        (res("get", "", "nodes", "status", "", "n1"), false),
        (res("list", "", "nodes", "", "", ""), false),
    ];
    for (a, want) in table {
        assert_eq!(w.allowed(&op, a), *want, "{a:?}");
    }
}

#[test]
fn non_resource_urls() {
    let w = World::bootstrap();
    let bob = user("bob", &[]);
    let anon = UserInfo::anonymous();
    let table: &[(&UserInfo, Attributes, bool)] = &[
        (&bob, url("get", "/healthz"), true),
        (&bob, url("get", "/readyz"), true),
        (&bob, url("get", "/version"), true),
        (&bob, url("get", "/api"), true),
        (&bob, url("get", "/apis/apps/v1"), true),
        (&bob, url("get", "/openapi/v3/apis/apps/v1"), true),
        (&bob, url("post", "/healthz"), false),
        (&bob, url("get", "/metrics"), false),
        (&bob, url("get", "/healthz/etcd"), false),
        // public-info-viewer is bound to unauthenticated too; discovery is not.
        (&anon, url("get", "/healthz"), true),
        (&anon, url("get", "/version"), true),
        (&anon, url("get", "/api"), false),
        (
            &user("prom", &["system:monitoring"]),
            url("get", "/metrics"),
            true,
        ),
        (
            &user("prom", &["system:monitoring"]),
            url("get", "/readyz/ping"),
            true,
        ),
    ];
    for (u, a, want) in table {
        assert_eq!(w.allowed(u, a), *want, "{} {a:?}", u.name);
    }
    // A trailing "*" is a prefix match; a plain "*" matches every path.
    let rule = json!({ "nonResourceURLs": ["/logs/*"], "verbs": ["get"] });
    assert!(rule_allows(&url("get", "/logs/a/b"), &rule));
    assert!(rule_allows(&url("get", "/logs/"), &rule));
    assert!(!rule_allows(&url("get", "/logs"), &rule));
    assert!(rule_allows(
        &url("get", "/anything"),
        &json!({ "nonResourceURLs": ["*"], "verbs": ["*"] })
    ));
    // Non-resource rules never match resource requests and vice versa.
    assert!(!rule_allows(&res("get", "", "pods", "", "d", "p"), &rule));
    assert!(!rule_allows(
        &url("get", "/api"),
        &json!({ "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"] })
    ));
}

#[test]
fn aggregation_makes_view_include_pod_reads() {
    let roles = bootstrap_cluster_roles();
    let view = roles.iter().find(|r| name_of(r) == "view").unwrap();
    // Even with the stored rules stripped, aggregation rebuilds them.
    let mut bare = view.clone();
    bare["rules"] = json!([]);
    let rules = effective_cluster_role_rules(&bare, &roles);
    for verb in ["get", "list", "watch"] {
        assert!(
            rules
                .iter()
                .any(|r| rule_allows(&res(verb, "", "pods", "", "d", ""), r)),
            "{verb}"
        );
    }
    assert!(!rules
        .iter()
        .any(|r| rule_allows(&res("create", "", "pods", "", "d", ""), r)));
    // The bootstrap objects carry the aggregated rules already.
    assert_eq!(view["rules"], Value::Array(rules));

    // A new role labelled aggregate-to-view extends view at request time.
    let mut w = World::bootstrap();
    for r in w.cluster_roles.iter_mut() {
        if r.get("aggregationRule").is_some() {
            r["rules"] = json!([]);
        }
    }
    w.cluster_roles.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": { "name": "crontabs-view", "labels": { "rbac.authorization.k8s.io/aggregate-to-view": "true" } },
        "rules": [{ "apiGroups": ["stable.example.com"], "resources": ["crontabs"], "verbs": ["get", "list", "watch"] }],
    }));
    w.role_bindings.push(binding(
        "RoleBinding",
        "d",
        "v",
        "ClusterRole",
        "view",
        json!([{ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "v" }]),
    ));
    let v = user("v", &[]);
    assert!(w.allowed(
        &v,
        &res("list", "stable.example.com", "crontabs", "", "d", "")
    ));
    assert!(w.allowed(&v, &res("get", "", "pods", "", "d", "p")));
    // ... and reaches admin through edit.
    let admin_rules = cluster_role_rules("admin", &w.cluster_roles).unwrap();
    assert!(admin_rules.iter().any(|r| rule_allows(
        &res("get", "stable.example.com", "crontabs", "", "d", "c"),
        r
    )));
}

#[test]
fn label_selectors_for_aggregation() {
    let labels = json!({ "a": "1", "b": "2" });
    let cases: &[(Value, bool)] = &[
        (json!({}), true),
        (json!({ "matchLabels": { "a": "1" } }), true),
        (json!({ "matchLabels": { "a": "1", "b": "3" } }), false),
        (json!({ "matchLabels": { "c": "1" } }), false),
        (
            json!({ "matchExpressions": [{ "key": "a", "operator": "In", "values": ["0", "1"] }] }),
            true,
        ),
        (
            json!({ "matchExpressions": [{ "key": "a", "operator": "NotIn", "values": ["1"] }] }),
            false,
        ),
        (
            json!({ "matchExpressions": [{ "key": "z", "operator": "NotIn", "values": ["1"] }] }),
            true,
        ),
        (
            json!({ "matchExpressions": [{ "key": "b", "operator": "Exists" }] }),
            true,
        ),
        (
            json!({ "matchExpressions": [{ "key": "b", "operator": "DoesNotExist" }] }),
            false,
        ),
        (
            json!({ "matchExpressions": [{ "key": "b", "operator": "Gt", "values": ["1"] }] }),
            false,
        ),
    ];
    for (sel, want) in cases {
        assert_eq!(selector_matches(sel, Some(&labels)), *want, "{sel}");
    }
    // A role with no labels only matches the empty selector.
    assert!(!selector_matches(
        &json!({ "matchLabels": { "a": "1" } }),
        None
    ));
}

#[test]
fn aggregation_cycles_terminate() {
    let a = json!({ "metadata": { "name": "a", "labels": { "x": "a" } },
        "aggregationRule": { "clusterRoleSelectors": [{ "matchLabels": { "x": "b" } }] },
        "rules": [{ "apiGroups": [""], "resources": ["pods"], "verbs": ["get"] }] });
    let b = json!({ "metadata": { "name": "b", "labels": { "x": "b" } },
        "aggregationRule": { "clusterRoleSelectors": [{ "matchLabels": { "x": "a" } }] },
        "rules": [{ "apiGroups": [""], "resources": ["nodes"], "verbs": ["get"] }] });
    let all = vec![a.clone(), b];
    // a aggregates b, which aggregates a again: the cycle stops at a's stored rules.
    let rules = effective_cluster_role_rules(&a, &all);
    assert_eq!(
        rules,
        vec![json!({ "apiGroups": [""], "resources": ["pods"], "verbs": ["get"] })]
    );
}

#[test]
fn subjects_groups_and_service_accounts() {
    let mut w = World::bootstrap();
    w.cluster_roles.push(role(
        "ClusterRole",
        "",
        "pod-reader",
        json!([{ "apiGroups": [""], "resources": ["pods"], "verbs": ["get"] }]),
    ));
    // SA subject without namespace in a RoleBinding means the binding's namespace.
    w.role_bindings.push(binding(
        "RoleBinding",
        "ns1",
        "local-sa",
        "ClusterRole",
        "pod-reader",
        json!([{ "kind": "ServiceAccount", "name": "builder" }]),
    ));
    // All service accounts of ns2, by group.
    w.role_bindings.push(binding("RoleBinding", "ns2", "all-sa", "ClusterRole", "pod-reader",
        json!([{ "kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:serviceaccounts:ns2" }])));
    // A cluster-wide SA binding must name the namespace; without it nothing matches.
    w.cluster_role_bindings.push(binding("ClusterRoleBinding", "", "crb-sa", "ClusterRole", "pod-reader",
        json!([{ "kind": "ServiceAccount", "name": "nobody" }, { "kind": "ServiceAccount", "name": "mon", "namespace": "ops" }])));

    let get = |ns: &str| res("get", "", "pods", "", ns, "p");
    let builder = UserInfo::service_account("ns1", "builder", "u");
    assert!(w.allowed(&builder, &get("ns1")));
    assert!(!w.allowed(&builder, &get("ns3")));
    assert!(!w.allowed(
        &UserInfo::service_account("ns9", "builder", "u"),
        &get("ns1")
    ));
    // Groups derived from the name even if the caller passed none.
    let bare = UserInfo {
        name: "system:serviceaccount:ns2:anyone".into(),
        uid: String::new(),
        groups: vec![],
    };
    assert!(w.allowed(&bare, &get("ns2")));
    assert!(!w.allowed(&bare, &get("ns1")));
    assert!(w.allowed(&UserInfo::service_account("ops", "mon", "u"), &get("ns7")));
    assert!(!w.allowed(
        &UserInfo::service_account("default", "nobody", "u"),
        &get("ns7")
    ));
    // A user merely named like a group gets nothing.
    assert!(!w.allowed(&user("system:serviceaccounts:ns2", &[]), &get("ns2")));
}

#[test]
fn missing_roles_give_upstream_rbac_reason() {
    let mut w = World::bootstrap();
    w.cluster_role_bindings.push(binding(
        "ClusterRoleBinding",
        "",
        "dangling",
        "ClusterRole",
        "gone",
        json!([{ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "zed" }]),
    ));
    w.role_bindings.push(binding(
        "RoleBinding",
        "d",
        "dangling-role",
        "Role",
        "nope",
        json!([{ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "zed" }]),
    ));
    let zed = user("zed", &[]);
    assert_eq!(
        w.check(&zed, &res("get", "", "nodes", "", "", "n")),
        Decision::Deny(
            r#"RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found"#.to_string()
        )
    );
    assert_eq!(
        w.check(&zed, &res("get", "", "pods", "", "d", "p")),
        Decision::Deny(
            r#"RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, role.rbac.authorization.k8s.io "nope" not found]"#
                .to_string()
        )
    );
    // Other bindings still allow.
    assert!(w.allowed(&zed, &url("get", "/healthz")));
}

#[test]
fn role_bindings_from_other_namespaces_are_ignored() {
    let rb = binding(
        "RoleBinding",
        "other",
        "b",
        "ClusterRole",
        "cluster-admin",
        json!([{ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "eve" }]),
    );
    let cluster_roles = bootstrap_cluster_roles();
    let bindings = [rb];
    let policy = PolicySnapshot {
        cluster_roles: &cluster_roles,
        cluster_role_bindings: &[],
        roles: &[],
        role_bindings: &bindings,
    };
    let eve = user("eve", &[]);
    assert!(matches!(
        authorize(&eve, &res("get", "", "pods", "", "mine", "p"), &policy),
        Decision::Deny(_)
    ));
    assert_eq!(
        authorize(&eve, &res("get", "", "pods", "", "other", "p"), &policy),
        Decision::Allow
    );
    // A RoleBinding never grants cluster-scoped requests, even to cluster-admin.
    assert!(matches!(
        authorize(&eve, &res("get", "", "nodes", "", "", "n"), &policy),
        Decision::Deny(_)
    ));
}

#[test]
fn bootstrap_identities_can_do_their_jobs() {
    let w = World::bootstrap();
    let node = user("system:node:n1", &[NODES_GROUP]);
    let table: &[(&UserInfo, Attributes, bool)] = &[
        (&node, res("create", "", "nodes", "", "", ""), true),
        (&node, res("patch", "", "nodes", "status", "", "n1"), true),
        (
            &node,
            res(
                "update",
                "coordination.k8s.io",
                "leases",
                "",
                "kube-node-lease",
                "n1",
            ),
            true,
        ),
        (&node, res("watch", "", "pods", "", "", ""), true),
        (&node, res("patch", "", "pods", "status", "d", "p"), true),
        (&node, res("get", "", "secrets", "", "d", "s"), true),
        (&node, res("get", "", "configmaps", "", "d", "c"), true),
        (
            &node,
            res("create", "", "serviceaccounts", "token", "d", "default"),
            true,
        ),
        (&node, res("watch", "", "endpoints", "", "", ""), true),
        (&node, res("list", "", "services", "", "", ""), true),
        (
            &node,
            res(
                "create",
                "certificates.k8s.io",
                "certificatesigningrequests",
                "",
                "",
                "",
            ),
            true,
        ),
        (&node, res("create", "", "events", "", "d", ""), true),
        (&node, res("delete", "", "nodes", "", "", "n2"), false),
        (&node, res("create", "", "secrets", "", "d", ""), false),
        (
            &node,
            res("update", "apps", "deployments", "", "d", "x"),
            false,
        ),
    ];
    for (u, a, want) in table {
        assert_eq!(w.allowed(u, a), *want, "{} {a:?}", u.name);
    }

    let sched = user("system:kube-scheduler", &[]);
    assert!(w.allowed(&sched, &res("create", "", "pods", "binding", "d", "p")));
    assert!(w.allowed(&sched, &res("watch", "", "nodes", "", "", "")));
    assert!(w.allowed(
        &sched,
        &res(
            "update",
            "coordination.k8s.io",
            "leases",
            "",
            "kube-system",
            "kube-scheduler"
        )
    ));
    assert!(!w.allowed(
        &sched,
        &res(
            "update",
            "coordination.k8s.io",
            "leases",
            "",
            "kube-system",
            "other"
        )
    ));
    assert!(!w.allowed(&sched, &res("create", "", "pods", "", "d", "")));

    let ctl = user(SKIFF_CONTROLLER_USER, &[]);
    assert!(w.allowed(&ctl, &res("create", "apps", "replicasets", "", "d", "")));
    assert!(w.allowed(&ctl, &res("create", "", "pods", "", "d", "")));
    assert!(w.allowed(
        &ctl,
        &res("patch", "apps", "deployments", "status", "d", "x")
    ));
    assert!(w.allowed(&ctl, &res("delete", "example.com", "widgets", "", "d", "w")));
    assert!(w.allowed(
        &ctl,
        &res("create", "discovery.k8s.io", "endpointslices", "", "d", "")
    ));
    assert!(!w.allowed(
        &ctl,
        &res(
            "create",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "",
            "",
            ""
        )
    ));
    assert!(!w.allowed(&ctl, &url("get", "/metrics")));
}

#[test]
fn bootstrap_objects_are_well_formed() {
    let roles = bootstrap_cluster_roles();
    let bindings = bootstrap_cluster_role_bindings();
    let mut names: Vec<&str> = roles.iter().map(name_of).collect();
    for want in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:aggregate-to-admin",
        "system:aggregate-to-edit",
        "system:aggregate-to-view",
        "system:aggregated-metrics-reader",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
        "system:node",
        "system:kube-scheduler",
        SKIFF_CONTROLLER_ROLE,
        "system:monitoring",
    ] {
        assert!(names.contains(&want), "missing {want}");
    }
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "duplicate role names");

    for obj in roles.iter().chain(bindings.iter()) {
        assert_eq!(obj["apiVersion"], "rbac.authorization.k8s.io/v1");
        assert_eq!(
            obj["metadata"]["labels"]["kubernetes.io/bootstrapping"],
            "rbac-defaults"
        );
        assert_eq!(
            obj["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
            "true"
        );
    }
    for b in &bindings {
        assert_eq!(b["kind"], "ClusterRoleBinding");
        assert_eq!(b["roleRef"]["kind"], "ClusterRole");
        let target = b["roleRef"]["name"].as_str().unwrap();
        assert!(
            roles.iter().any(|r| name_of(r) == target),
            "binding to missing role {target}"
        );
        assert!(!b["subjects"].as_array().unwrap().is_empty());
    }
    let edit = roles.iter().find(|r| name_of(r) == "edit").unwrap();
    assert_eq!(
        edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"],
        "true"
    );
    assert_eq!(
        edit["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]
            ["rbac.authorization.k8s.io/aggregate-to-edit"],
        "true"
    );
    let cluster_admin = roles
        .iter()
        .find(|r| name_of(r) == "cluster-admin")
        .unwrap();
    assert_eq!(
        cluster_admin["rules"],
        json!([
            { "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"] },
            { "nonResourceURLs": ["*"], "verbs": ["*"] },
        ])
    );
    let binding_subjects =
        |name: &str| bindings.iter().find(|b| name_of(b) == name).unwrap()["subjects"].clone();
    assert_eq!(
        binding_subjects("cluster-admin"),
        json!([{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters" }])
    );
    assert_eq!(
        binding_subjects("system:node"),
        json!([{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes" }])
    );
    assert_eq!(
        binding_subjects(SKIFF_CONTROLLER_ROLE),
        json!([{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:skiff-controller" }])
    );
}
