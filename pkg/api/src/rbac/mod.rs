//! The RBAC authorizer the API server consults for every request: upstream
//! `rbac.authorization.k8s.io/v1` semantics over stored Role/ClusterRole/RoleBinding/
//! ClusterRoleBinding objects (`serde_json::Value`), the exact upstream "forbidden" message,
//! request-info resolution ([`attributes_for`]) and the bootstrap policy
//! ([`bootstrap_cluster_roles`], [`bootstrap_cluster_role_bindings`]).

mod bootstrap;
mod request_info;
mod rules;

use crate::selector::LabelSelector;
use crate::text::go_quote;
use serde_json::Value;

pub use bootstrap::{
    bootstrap_cluster_role_bindings, bootstrap_cluster_roles, SKIFF_CONTROLLER_ROLE,
    SKIFF_CONTROLLER_USER,
};
pub use request_info::attributes_for;
pub use rules::rules_review_status;

/// The group whose members may do anything, without consulting RBAC (upstream's superuser).
pub const SYSTEM_MASTERS: &str = "system:masters";
/// The group the server adds to every authenticated user.
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// The group of anonymous requests.
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The user name of anonymous requests.
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// Prefix of a service account's user name: `system:serviceaccount:<ns>:<name>`.
pub const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";
/// The group of every service account.
pub const ALL_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// The group of the kubelets (skiff agents).
pub const NODES_GROUP: &str = "system:nodes";

/// Errors met while resolving the roles a binding refers to. They never abort authorization
/// (other bindings may still allow); they become the RBAC part of a denial's reason, worded
/// as upstream words them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RbacError {
    #[error("role.rbac.authorization.k8s.io {name:?} not found")]
    RoleNotFound { name: String },
    #[error("clusterrole.rbac.authorization.k8s.io {name:?} not found")]
    ClusterRoleNotFound { name: String },
    #[error("unsupported role reference kind: {kind:?}")]
    UnsupportedRoleRefKind { kind: String },
}

/// The authenticated identity of a request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    /// Authenticated users always carry `system:authenticated`; the server adds it.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The identity of service account `<namespace>/<name>`: user
    /// `system:serviceaccount:<ns>:<name>`, groups `system:serviceaccounts`,
    /// `system:serviceaccounts:<ns>` and `system:authenticated`.
    pub fn service_account(namespace: &str, name: &str, uid: &str) -> Self {
        UserInfo {
            name: service_account_username(namespace, name),
            uid: uid.to_string(),
            groups: vec![
                ALL_SERVICE_ACCOUNTS.to_string(),
                format!("{ALL_SERVICE_ACCOUNTS}:{namespace}"),
                ALL_AUTHENTICATED.to_string(),
            ],
        }
    }

    /// The anonymous identity (`system:anonymous`, group `system:unauthenticated`).
    pub fn anonymous() -> Self {
        UserInfo {
            name: ANONYMOUS_USER.to_string(),
            uid: String::new(),
            groups: vec![ALL_UNAUTHENTICATED.to_string()],
        }
    }
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USER_PREFIX}{namespace}:{name}")
}

/// What a request asks to do (upstream `authorizer.Attributes`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attributes {
    /// get list watch create update patch delete deletecollection (or proxy, impersonate, …);
    /// for non-resource paths the lowercased HTTP method.
    pub verb: String,
    pub resource_request: bool,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub namespace: String,
    /// The URL path (what non-resource rules match).
    pub path: String,
}

/// The RBAC objects an authorization decision reads.
#[derive(Debug, Clone, Copy)]
pub struct PolicySnapshot<'a> {
    pub cluster_roles: &'a [Value],
    pub cluster_role_bindings: &'a [Value],
    /// Roles in the request namespace (objects from other namespaces are ignored).
    pub roles: &'a [Value],
    /// RoleBindings in the request namespace (objects from other namespaces are ignored).
    pub role_bindings: &'a [Value],
}

/// The authorizer's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Allow,
    /// Denied. The reason is upstream's RBAC reason: empty when no rule matched cleanly, or
    /// `RBAC: <errors>` when some binding refers to a missing role. Render the response with
    /// [`forbidden_message_with_reason`].
    Deny(String),
}

/// Decides one request with upstream RBAC semantics.
///
/// Members of `system:masters` are always allowed. Otherwise every ClusterRoleBinding
/// whose subjects match grants its ClusterRole's rules cluster-wide, and (for namespaced
/// requests) every RoleBinding in the request namespace grants its Role's or ClusterRole's
/// rules in that namespace. The request is allowed when any granted rule matches.
pub fn authorize(user: &UserInfo, attrs: &Attributes, policy: &PolicySnapshot) -> Decision {
    if user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
        return Decision::Allow;
    }
    let groups = effective_groups(user);
    let mut errors: Vec<RbacError> = Vec::new();

    for binding in policy.cluster_role_bindings {
        if !binding_applies(binding, &user.name, &groups, "") {
            continue;
        }
        let role_ref = role_ref(binding);
        let rules = if role_ref.kind == "ClusterRole" {
            cluster_role_rules(&role_ref.name, policy.cluster_roles)
        } else if role_ref.kind == "Role" {
            // A ClusterRoleBinding cannot use a Role: upstream looks it up in namespace ""
            // and never finds it.
            Err(RbacError::RoleNotFound {
                name: role_ref.name.clone(),
            })
        } else {
            Err(RbacError::UnsupportedRoleRefKind {
                kind: role_ref.kind.clone(),
            })
        };
        match rules {
            Ok(rules) if rules.iter().any(|r| rule_allows(attrs, r)) => return Decision::Allow,
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }

    if !attrs.namespace.is_empty() {
        for binding in policy.role_bindings {
            if !in_namespace(binding, &attrs.namespace) {
                continue;
            }
            if !binding_applies(binding, &user.name, &groups, &attrs.namespace) {
                continue;
            }
            let role_ref = role_ref(binding);
            let rules = match role_ref.kind.as_str() {
                "Role" => policy
                    .roles
                    .iter()
                    .find(|r| name_of(r) == role_ref.name && in_namespace(r, &attrs.namespace))
                    .map(|r| rules_of(r).to_vec())
                    .ok_or_else(|| RbacError::RoleNotFound {
                        name: role_ref.name.clone(),
                    }),
                "ClusterRole" => cluster_role_rules(&role_ref.name, policy.cluster_roles),
                other => Err(RbacError::UnsupportedRoleRefKind {
                    kind: other.to_string(),
                }),
            };
            match rules {
                Ok(rules) if rules.iter().any(|r| rule_allows(attrs, r)) => return Decision::Allow,
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
    }

    Decision::Deny(deny_reason(&errors))
}

/// Upstream's reason: `RBAC: <err>` for one error, `RBAC: [<err>, <err>]` for several.
fn deny_reason(errors: &[RbacError]) -> String {
    match errors {
        [] => String::new(),
        [one] => format!("RBAC: {one}"),
        many => {
            let joined: Vec<String> = many.iter().map(|e| e.to_string()).collect();
            format!("RBAC: [{}]", joined.join(", "))
        }
    }
}

/// The user's groups plus, for a service-account user name, the two service-account groups
/// its authenticator always assigns (so `Group system:serviceaccounts:<ns>` subjects match
/// even if the caller built the identity from the name alone).
fn effective_groups(user: &UserInfo) -> Vec<String> {
    let mut groups = user.groups.clone();
    if let Some(rest) = user.name.strip_prefix(SERVICE_ACCOUNT_USER_PREFIX) {
        if let Some((ns, name)) = rest.split_once(':') {
            if !ns.is_empty() && !name.is_empty() && !name.contains(':') {
                for g in [
                    ALL_SERVICE_ACCOUNTS.to_string(),
                    format!("{ALL_SERVICE_ACCOUNTS}:{ns}"),
                ] {
                    if !groups.contains(&g) {
                        groups.push(g);
                    }
                }
            }
        }
    }
    groups
}

/// The message of the 403 Status, exactly as the upstream apiserver writes it for an
/// empty authorizer reason, e.g.
/// `pods "web" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "default"`
/// or `forbidden: User "bob" cannot get path "/metrics"`.
pub fn forbidden_message(user: &UserInfo, attrs: &Attributes) -> String {
    forbidden_message_with_reason(user, attrs, "")
}

/// [`forbidden_message`] with the authorizer's reason appended (`<message>: <reason>`) when
/// it is not empty, as upstream's `responsewriters.Forbidden` does.
pub fn forbidden_message_with_reason(user: &UserInfo, attrs: &Attributes, reason: &str) -> String {
    let mut msg = sanitize(&denial_sentence(user, attrs));
    if !reason.is_empty() {
        msg.push_str(": ");
        msg.push_str(reason);
    }
    // apierrors.NewForbidden(groupResource, name, err); non-resource requests carry no
    // group or resource, so their GroupResource is empty.
    if attrs.api_group.is_empty() && attrs.resource.is_empty() {
        return format!("forbidden: {msg}");
    }
    let group_resource = if attrs.api_group.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}.{}", attrs.resource, attrs.api_group)
    };
    if attrs.name.is_empty() {
        format!("{group_resource} is forbidden: {msg}")
    } else {
        format!(
            "{group_resource} {} is forbidden: {msg}",
            go_quote(&attrs.name)
        )
    }
}

/// Upstream `forbiddenMessage(attributes)`: the sentence after "is forbidden: ".
fn denial_sentence(user: &UserInfo, attrs: &Attributes) -> String {
    let who = go_quote(&user.name);
    if !attrs.resource_request {
        return format!(
            "User {who} cannot {} path {}",
            attrs.verb,
            go_quote(&attrs.path)
        );
    }
    let mut resource = attrs.resource.clone();
    if !attrs.subresource.is_empty() {
        resource.push('/');
        resource.push_str(&attrs.subresource);
    }
    let base = format!(
        "User {who} cannot {} resource {} in API group {}",
        attrs.verb,
        go_quote(&resource),
        go_quote(&attrs.api_group)
    );
    if attrs.namespace.is_empty() {
        format!("{base} at the cluster scope")
    } else {
        format!("{base} in the namespace {}", go_quote(&attrs.namespace))
    }
}

/// Upstream escapes HTML metacharacters in the message so it never reads as markup.
fn sanitize(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

// ---------------------------------------------------------------------------------------
// Rule matching (upstream rbac/v1 helpers).

/// Whether one PolicyRule (JSON) allows the request.
pub fn rule_allows(attrs: &Attributes, rule: &Value) -> bool {
    if !verb_matches(rule, &attrs.verb) {
        return false;
    }
    if attrs.resource_request {
        let combined = if attrs.subresource.is_empty() {
            attrs.resource.clone()
        } else {
            format!("{}/{}", attrs.resource, attrs.subresource)
        };
        api_group_matches(rule, &attrs.api_group)
            && resource_matches(rule, &combined, &attrs.subresource)
            && resource_name_matches(rule, &attrs.name)
    } else {
        non_resource_url_matches(rule, &attrs.path)
    }
}

/// The strings of a rule's list field (non-strings are ignored).
fn str_list<'a>(rule: &'a Value, field: &str) -> impl Iterator<Item = &'a str> {
    rule.get(field)
        .and_then(Value::as_array)
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
}

fn verb_matches(rule: &Value, verb: &str) -> bool {
    str_list(rule, "verbs").any(|v| v == "*" || v == verb)
}

fn api_group_matches(rule: &Value, group: &str) -> bool {
    str_list(rule, "apiGroups").any(|g| g == "*" || g == group)
}

fn resource_matches(rule: &Value, combined: &str, subresource: &str) -> bool {
    str_list(rule, "resources").any(|r| {
        r == "*"
            || r == combined
            || (!subresource.is_empty()
                && r.len() == subresource.len() + 2
                && r.starts_with("*/")
                && r.ends_with(subresource))
    })
}

/// An empty resourceNames list allows every name; otherwise the request's name must be
/// listed — so list/watch/create/deletecollection (no name) never match a named rule.
fn resource_name_matches(rule: &Value, name: &str) -> bool {
    let mut names = str_list(rule, "resourceNames").peekable();
    if names.peek().is_none() {
        return true;
    }
    names.any(|n| n == name)
}

fn non_resource_url_matches(rule: &Value, path: &str) -> bool {
    str_list(rule, "nonResourceURLs").any(|u| {
        u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*')))
    })
}

// ---------------------------------------------------------------------------------------
// Bindings and roles.

struct RoleRef {
    kind: String,
    name: String,
}

fn role_ref(binding: &Value) -> RoleRef {
    let r = binding.get("roleRef");
    let field = |f: &str| {
        r.and_then(|r| r.get(f))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    RoleRef {
        kind: field("kind"),
        name: field("name"),
    }
}

fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// True when the object has no namespace recorded or it is `namespace`.
fn in_namespace(obj: &Value, namespace: &str) -> bool {
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        None | Some("") => true,
        Some(ns) => ns == namespace,
    }
}

fn rules_of(role: &Value) -> &[Value] {
    role.get("rules")
        .and_then(Value::as_array)
        .map(|a| a.as_slice())
        .unwrap_or_default()
}

/// Whether any subject of the binding is this user. `namespace` is the binding's scope
/// ("" for ClusterRoleBindings): a ServiceAccount subject without a namespace means one in
/// that namespace.
fn binding_applies(binding: &Value, user: &str, groups: &[String], namespace: &str) -> bool {
    let Some(subjects) = binding.get("subjects").and_then(Value::as_array) else {
        return false;
    };
    subjects.iter().any(|s| {
        let field = |f: &str| s.get(f).and_then(Value::as_str).unwrap_or_default();
        let name = field("name");
        match field("kind") {
            "User" => !name.is_empty() && name == user,
            "Group" => groups.iter().any(|g| g == name),
            "ServiceAccount" => {
                let sa_ns = match field("namespace") {
                    "" => namespace,
                    ns => ns,
                };
                !sa_ns.is_empty() && user == service_account_username(sa_ns, name)
            }
            _ => false,
        }
    })
}

/// The effective rules of the named ClusterRole.
fn cluster_role_rules(name: &str, cluster_roles: &[Value]) -> Result<Vec<Value>, RbacError> {
    let role = cluster_roles
        .iter()
        .find(|r| name_of(r) == name)
        .ok_or_else(|| RbacError::ClusterRoleNotFound {
            name: name.to_string(),
        })?;
    Ok(effective_cluster_role_rules(role, cluster_roles))
}

/// The rules a ClusterRole grants. For a role with an `aggregationRule` these are, as after
/// upstream's aggregation controller has run, the de-duplicated union of the (themselves
/// effective) rules of every other ClusterRole whose labels match one of its
/// `clusterRoleSelectors`, in name order; the role's own stored rules are replaced. For any
/// other role, its stored rules. The server can also use this to write the aggregated rules
/// into stored objects so `kubectl get clusterrole view -o yaml` shows them.
pub fn effective_cluster_role_rules(role: &Value, cluster_roles: &[Value]) -> Vec<Value> {
    let mut visiting: Vec<String> = Vec::new();
    effective_rules_inner(role, cluster_roles, &mut visiting)
}

fn effective_rules_inner(role: &Value, all: &[Value], visiting: &mut Vec<String>) -> Vec<Value> {
    let Some(selectors) = role
        .pointer("/aggregationRule/clusterRoleSelectors")
        .and_then(Value::as_array)
    else {
        return rules_of(role).to_vec();
    };
    let me = name_of(role).to_string();
    if visiting.contains(&me) {
        // An aggregation cycle: stop here with what is stored.
        return rules_of(role).to_vec();
    }
    visiting.push(me.clone());

    let mut matched: Vec<&Value> = all
        .iter()
        .filter(|other| name_of(other) != me)
        .filter(|other| {
            let labels = other.pointer("/metadata/labels");
            selectors.iter().any(|sel| selector_matches(sel, labels))
        })
        .collect();
    matched.sort_by(|a, b| name_of(a).cmp(name_of(b)));

    let mut rules: Vec<Value> = Vec::new();
    for other in matched {
        for rule in effective_rules_inner(other, all, visiting) {
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
    }
    visiting.pop();
    rules
}

/// A `clusterRoleSelectors` entry (a `metav1.LabelSelector`) against a role's labels, through
/// the one JSON selector implementation: an empty (or null) selector matches everything, an
/// invalid one (e.g. an unknown operator) nothing.
fn selector_matches(selector: &Value, labels: Option<&Value>) -> bool {
    let selector = if selector.is_null() {
        LabelSelector::everything()
    } else {
        match LabelSelector::from_json(selector) {
            Ok(s) => s,
            Err(_) => return false,
        }
    };
    selector.matches(labels.and_then(Value::as_object))
}

#[cfg(test)]
mod tests;
