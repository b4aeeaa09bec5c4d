//! The rules a user holds, for SelfSubjectRulesReview (`kubectl auth can-i --list`): upstream's
//! `RulesFor` — every ClusterRoleBinding naming the user grants its ClusterRole's rules, and in
//! the review's namespace every RoleBinding naming the user grants its role's rules — split into
//! resource and non-resource rules as the review's status carries them.

use super::*;
use serde_json::json;

/// A SelfSubjectRulesReview's `status`: `resourceRules`, `nonResourceRules`, `incomplete`
/// and, when some binding names a missing role, `evaluationError` (upstream's wording).
pub fn rules_review_status(user: &UserInfo, namespace: &str, policy: &PolicySnapshot) -> Value {
    let groups = effective_groups(user);
    let mut rules: Vec<Value> = Vec::new();
    let mut errors: Vec<RbacError> = Vec::new();
    for binding in policy.cluster_role_bindings {
        if !binding_applies(binding, &user.name, &groups, "") {
            continue;
        }
        let r = role_ref(binding);
        match r.kind.as_str() {
            "ClusterRole" => match cluster_role_rules(&r.name, policy.cluster_roles) {
                Ok(mut granted) => rules.append(&mut granted),
                Err(e) => errors.push(e),
            },
            "Role" => errors.push(RbacError::RoleNotFound { name: r.name }),
            other => errors.push(RbacError::UnsupportedRoleRefKind {
                kind: other.to_string(),
            }),
        }
    }
    if !namespace.is_empty() {
        for binding in policy.role_bindings {
            if !in_namespace(binding, namespace)
                || !binding_applies(binding, &user.name, &groups, namespace)
            {
                continue;
            }
            let r = role_ref(binding);
            let granted = match r.kind.as_str() {
                "Role" => policy
                    .roles
                    .iter()
                    .find(|role| name_of(role) == r.name && in_namespace(role, namespace))
                    .map(|role| rules_of(role).to_vec())
                    .ok_or(RbacError::RoleNotFound { name: r.name }),
                "ClusterRole" => cluster_role_rules(&r.name, policy.cluster_roles),
                other => Err(RbacError::UnsupportedRoleRefKind {
                    kind: other.to_string(),
                }),
            };
            match granted {
                Ok(mut g) => rules.append(&mut g),
                Err(e) => errors.push(e),
            }
        }
    }
    let strs = |rule: &Value, field: &str| -> Value {
        json!(rule
            .get(field)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    };
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in &rules {
        let urls = rule
            .get("nonResourceURLs")
            .and_then(Value::as_array)
            .is_some_and(|u| !u.is_empty());
        if urls {
            non_resource_rules.push(json!({
                "verbs": strs(rule, "verbs"),
                "nonResourceURLs": strs(rule, "nonResourceURLs"),
            }));
        } else {
            let mut r = json!({
                "verbs": strs(rule, "verbs"),
                "apiGroups": strs(rule, "apiGroups"),
                "resources": strs(rule, "resources"),
            });
            if rule
                .get("resourceNames")
                .and_then(Value::as_array)
                .is_some_and(|n| !n.is_empty())
            {
                r["resourceNames"] = strs(rule, "resourceNames");
            }
            resource_rules.push(r);
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": !errors.is_empty(),
    });
    if !errors.is_empty() {
        let joined: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        status["evaluationError"] = json!(if joined.len() == 1 {
            joined[0].clone()
        } else {
            format!("[{}]", joined.join(", "))
        });
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            uid: String::new(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn admin_and_service_account_rules() {
        let roles = bootstrap_cluster_roles();
        let bindings = bootstrap_cluster_role_bindings();
        let role = json!({"metadata": {"name": "cm-reader", "namespace": "dev"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"],
                "resourceNames": ["settings"]}]});
        let rb = json!({"metadata": {"name": "sa-reads", "namespace": "dev"},
            "roleRef": {"kind": "Role", "name": "cm-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "dev"}]});
        let missing = json!({"metadata": {"name": "gone", "namespace": "dev"},
            "roleRef": {"kind": "Role", "name": "nope"},
            "subjects": [{"kind": "ServiceAccount", "name": "bot"}]});
        let (r, rbs) = (vec![role], vec![rb, missing]);
        let policy = PolicySnapshot {
            cluster_roles: &roles,
            cluster_role_bindings: &bindings,
            roles: &r,
            role_bindings: &rbs,
        };
        let admin = rules_review_status(
            &user("admin", &["system:masters", "system:authenticated"]),
            "default",
            &policy,
        );
        let rr = admin["resourceRules"].as_array().unwrap();
        assert!(rr.contains(&json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})));
        assert!(admin["nonResourceRules"]
            .as_array()
            .unwrap()
            .contains(&json!({"verbs": ["*"], "nonResourceURLs": ["*"]})));
        assert_eq!(admin["incomplete"], false);

        let sa = user(
            "system:serviceaccount:dev:bot",
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:dev",
                "system:authenticated",
            ],
        );
        let st = rules_review_status(&sa, "dev", &policy);
        let rr = st["resourceRules"].as_array().unwrap();
        assert!(
            rr.contains(&json!({"verbs": ["get", "list"], "apiGroups": [""],
            "resources": ["configmaps"], "resourceNames": ["settings"]}))
        );
        // No cluster-admin for the account; the discovery role reaches it through its group.
        assert!(!rr.iter().any(|r| r["resources"] == json!(["*"])));
        assert_eq!(st["incomplete"], true);
        assert_eq!(
            st["evaluationError"],
            "role.rbac.authorization.k8s.io \"nope\" not found"
        );
        // Another namespace: no RoleBinding rules.
        let other = rules_review_status(&sa, "prod", &policy);
        assert!(!other["resourceRules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resources"] == json!(["configmaps"])));
    }
}
