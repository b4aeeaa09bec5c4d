//! Who may use the kubelet API: the client certificate's identity, the request's verb and
//! subresource as upstream's kubelet computes them, and the fixed policy skiff applies
//! (the API server's kubelet client or a `system:masters` member).

use http::{Method, StatusCode};

/// The identity a verified client certificate carries (CN = user, O = groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

/// The user name of the API server's kubelet client certificate.
pub const APISERVER_USER: &str = "system:apiserver";
/// The group whose members may do anything.
pub const MASTERS_GROUP: &str = "system:masters";

/// upstream's verb for a request method (`pkg/kubelet/server/auth.go`).
pub fn verb(method: &Method) -> String {
    match *method {
        Method::GET => "get".into(),
        Method::POST => "create".into(),
        Method::PUT => "update".into(),
        Method::PATCH => "patch".into(),
        Method::DELETE => "delete".into(),
        ref other => other.as_str().to_ascii_lowercase(),
    }
}

/// upstream's `nodes` subresource for a path: stats, metrics, log or proxy.
pub fn subresource(path: &str) -> &'static str {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if under("/stats") {
        "stats"
    } else if under("/metrics") {
        "metrics"
    } else if under("/logs") {
        "log"
    } else {
        "proxy"
    }
}

/// Whether `id` may use the kubelet API at all.
pub fn allowed(id: &Identity) -> bool {
    id.user == APISERVER_USER || id.groups.iter().any(|g| g == MASTERS_GROUP)
}

/// The refusal for a request, or `None` when it may go on: 401 without a client certificate,
/// 403 (upstream's text) for an identity the policy does not allow.
pub fn check(id: Option<&Identity>, method: &Method, path: &str) -> Option<(StatusCode, String)> {
    let Some(id) = id else {
        return Some((StatusCode::UNAUTHORIZED, "Unauthorized".into()));
    };
    if allowed(id) {
        return None;
    }
    Some((
        StatusCode::FORBIDDEN,
        format!(
            "Forbidden (user={}, verb={}, resource=nodes, subresource(s)=[{}])",
            id.user,
            verb(method),
            subresource(path)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(user: &str, groups: &[&str]) -> Identity {
        Identity {
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn verbs_and_subresources_follow_upstream() {
        assert_eq!(verb(&Method::GET), "get");
        assert_eq!(verb(&Method::POST), "create");
        assert_eq!(verb(&Method::OPTIONS), "options");
        assert_eq!(subresource("/stats/summary"), "stats");
        assert_eq!(subresource("/stats"), "stats");
        assert_eq!(subresource("/metrics/resource"), "metrics");
        assert_eq!(subresource("/logs/"), "log");
        assert_eq!(subresource("/containerLogs/a/b/c"), "proxy");
        assert_eq!(subresource("/statsx"), "proxy");
        assert_eq!(subresource("/exec/a/b/c"), "proxy");
    }

    #[test]
    fn only_the_apiserver_and_masters_get_in() {
        assert_eq!(
            check(Some(&id(APISERVER_USER, &[])), &Method::GET, "/pods"),
            None
        );
        assert_eq!(
            check(
                Some(&id("system:admin", &[MASTERS_GROUP])),
                &Method::POST,
                "/exec/a/b/c"
            ),
            None
        );
        assert_eq!(
            check(None, &Method::GET, "/healthz"),
            Some((StatusCode::UNAUTHORIZED, "Unauthorized".into()))
        );
        assert_eq!(
            check(
                Some(&id("system:node:n1", &["system:nodes"])),
                &Method::GET,
                "/stats/summary"
            ),
            Some((
                StatusCode::FORBIDDEN,
                "Forbidden (user=system:node:n1, verb=get, resource=nodes, subresource(s)=[stats])"
                    .into()
            ))
        );
    }
}
