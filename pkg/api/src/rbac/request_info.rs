//! Request-info resolution: turns an HTTP method and URL path into the authorization
//! [`Attributes`] (verb, API group, resource, subresource, namespace, name) the way the
//! upstream apiserver's `RequestInfoFactory` does.

use super::Attributes;
use crate::text::percent_decode_query as percent_decode;

/// URL prefixes that carry resource requests; `api` is the legacy group (no group segment).
const API_PREFIX: &str = "api";
const APIS_PREFIX: &str = "apis";

/// Path segments that are verbs rather than resources (`/api/v1/watch/...`).
const SPECIAL_VERBS: &[&str] = &["proxy", "watch"];
/// Special verbs after which the third part is not a subresource.
const SPECIAL_VERBS_NO_SUBRESOURCES: &[&str] = &["proxy"];
/// Subresources of a namespace that keep `namespaces/<name>/<sub>` a namespace request.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Resolves the authorization attributes of one request.
///
/// `path` is the URL path (already percent-decoded by the server); it may carry a query
/// string (`?watch=true&fieldSelector=metadata.name%3Dweb`), from which `watch` and an exact
/// `metadata.name` field selector are read exactly as upstream does for list/watch requests.
/// `query_watch` is the server's own reading of `watch=true` and is OR-ed with the query.
///
/// Resource requests (`/api/v1/...`, `/apis/<group>/<version>/...`) get the verb from the
/// method: GET/HEAD → `get` (`list`, or `watch` when watching, when no name is given),
/// POST → `create`, PUT → `update`, PATCH → `patch`, DELETE → `delete` (`deletecollection`
/// without a name); a `/watch/` or `/proxy/` segment right after the version sets the verb.
/// Everything else is a non-resource request whose verb is the lowercased method.
pub fn attributes_for(method: &str, path: &str, query_watch: bool) -> Attributes {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut info = Attributes {
        verb: method.to_ascii_lowercase(),
        resource_request: false,
        path: path.to_string(),
        ..Attributes::default()
    };

    let parts: Vec<&str> = split_path(path);
    if parts.len() < 3 {
        return info;
    }
    let prefix = parts[0];
    if prefix != API_PREFIX && prefix != APIS_PREFIX {
        return info;
    }
    let mut rest = &parts[1..];
    if prefix == APIS_PREFIX {
        // `/apis/<group>/<version>/<resource>` needs one more part than the legacy form.
        if rest.len() < 3 {
            return info;
        }
        info.api_group = rest[0].to_string();
        rest = &rest[1..];
    }
    info.resource_request = true;
    // rest[0] is the version, which authorization does not use.
    rest = &rest[1..];

    if SPECIAL_VERBS.contains(&rest[0]) {
        info.verb = rest[0].to_string();
        if rest.len() < 2 {
            // Upstream rejects a bare `/api/v1/watch` as unparseable; here it stays a
            // resource request for the bare verb, which only a wildcard rule grants.
            return info;
        }
        rest = &rest[1..];
    } else {
        info.verb = match method.to_ascii_uppercase().as_str() {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        }
        .to_string();
    }

    // `namespaces/<ns>/<resource>/...` is a namespaced resource; `namespaces/<ns>` and
    // `namespaces/<ns>/status|finalize` are requests on the namespace itself.
    if rest[0] == "namespaces" && rest.len() > 1 {
        info.namespace = rest[1].to_string();
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest = &rest[2..];
        }
    }

    if rest.len() >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.contains(&info.verb.as_str()) {
        info.subresource = rest[2].to_string();
    }
    if rest.len() >= 2 {
        info.name = rest[1].to_string();
    }
    info.resource = rest[0].to_string();

    if info.name.is_empty() && info.verb == "get" {
        let (watch, field_name) = read_list_query(query);
        info.verb = if watch || query_watch {
            "watch"
        } else {
            "list"
        }
        .to_string();
        if let Some(name) = field_name {
            if is_valid_path_segment_name(&name) {
                info.name = name;
            }
        }
    }
    if info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".to_string();
    }
    info
}

/// Splits a URL path into its segments, ignoring the leading and trailing slash.
fn split_path(path: &str) -> Vec<&str> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed.split('/').collect()
}

/// Reads `watch` and an exact `metadata.name` field selector from a list query string.
fn read_list_query(query: Option<&str>) -> (bool, Option<String>) {
    let Some(query) = query else {
        return (false, None);
    };
    let mut watch = false;
    let mut name = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key);
        let value = percent_decode(value);
        match key.as_str() {
            // Go's strconv.ParseBool truths.
            "watch" => watch = matches!(value.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"),
            "fieldSelector" => name = exact_name_from_field_selector(&value),
            _ => {}
        }
    }
    (watch, name)
}

/// The name an exact `metadata.name=X` / `metadata.name==X` term requires, if any.
fn exact_name_from_field_selector(selector: &str) -> Option<String> {
    for term in selector.split(',') {
        let term = term.trim();
        if term.contains("!=") {
            continue;
        }
        let (field, value) = match term.split_once("==") {
            Some(fv) => fv,
            None => match term.split_once('=') {
                Some(fv) => fv,
                None => continue,
            },
        };
        if field.trim() == "metadata.name" {
            return Some(value.trim().to_string());
        }
    }
    None
}

/// Upstream's `path.IsValidPathSegmentName`: not `.`/`..`, no `/` or `%`.
fn is_valid_path_segment_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('%')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (method, path, watch) → (verb, resource_request, group, resource, sub, ns, name)
    #[test]
    fn resolves_paths_like_upstream() {
        type Row = (
            &'static str,
            &'static str,
            bool,
            (
                &'static str,
                bool,
                &'static str,
                &'static str,
                &'static str,
                &'static str,
                &'static str,
            ),
        );
        let table: &[Row] = &[
            (
                "GET",
                "/api/v1/namespaces/default/pods",
                false,
                ("list", true, "", "pods", "", "default", ""),
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods",
                true,
                ("watch", true, "", "pods", "", "default", ""),
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods?watch=true",
                false,
                ("watch", true, "", "pods", "", "default", ""),
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods?watch=1&resourceVersion=5",
                false,
                ("watch", true, "", "pods", "", "default", ""),
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods/web",
                false,
                ("get", true, "", "pods", "", "default", "web"),
            ),
            (
                "HEAD",
                "/api/v1/namespaces/default/pods/web",
                false,
                ("get", true, "", "pods", "", "default", "web"),
            ),
            (
                "GET",
                "/api/v1/namespaces/ns/pods/name/status",
                false,
                ("get", true, "", "pods", "status", "ns", "name"),
            ),
            (
                "PUT",
                "/api/v1/namespaces/ns/pods/name/status",
                false,
                ("update", true, "", "pods", "status", "ns", "name"),
            ),
            (
                "PATCH",
                "/api/v1/namespaces/ns/pods/name",
                false,
                ("patch", true, "", "pods", "", "ns", "name"),
            ),
            (
                "POST",
                "/api/v1/namespaces/ns/pods",
                false,
                ("create", true, "", "pods", "", "ns", ""),
            ),
            (
                "POST",
                "/api/v1/namespaces/ns/pods/web/exec",
                false,
                ("create", true, "", "pods", "exec", "ns", "web"),
            ),
            (
                "GET",
                "/api/v1/namespaces/ns/pods/web/log",
                false,
                ("get", true, "", "pods", "log", "ns", "web"),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/ns/pods/web",
                false,
                ("delete", true, "", "pods", "", "ns", "web"),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/ns/pods",
                false,
                ("deletecollection", true, "", "pods", "", "ns", ""),
            ),
            (
                "GET",
                "/api/v1/pods",
                false,
                ("list", true, "", "pods", "", "", ""),
            ),
            (
                "GET",
                "/api/v1/nodes/n1",
                false,
                ("get", true, "", "nodes", "", "", "n1"),
            ),
            (
                "PATCH",
                "/api/v1/nodes/n1/status",
                false,
                ("patch", true, "", "nodes", "status", "", "n1"),
            ),
            (
                "GET",
                "/api/v1/namespaces",
                false,
                ("list", true, "", "namespaces", "", "", ""),
            ),
            (
                "GET",
                "/api/v1/namespaces/x",
                false,
                ("get", true, "", "namespaces", "", "x", "x"),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/x",
                false,
                ("delete", true, "", "namespaces", "", "x", "x"),
            ),
            (
                "PUT",
                "/api/v1/namespaces/x/finalize",
                false,
                ("update", true, "", "namespaces", "finalize", "x", "x"),
            ),
            (
                "GET",
                "/api/v1/namespaces/x/status",
                false,
                ("get", true, "", "namespaces", "status", "x", "x"),
            ),
            (
                "GET",
                "/apis/apps/v1/namespaces/default/deployments",
                false,
                ("list", true, "apps", "deployments", "", "default", ""),
            ),
            (
                "PUT",
                "/apis/apps/v1/namespaces/default/deployments/web/scale",
                false,
                (
                    "update",
                    true,
                    "apps",
                    "deployments",
                    "scale",
                    "default",
                    "web",
                ),
            ),
            (
                "GET",
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/view",
                false,
                (
                    "get",
                    true,
                    "rbac.authorization.k8s.io",
                    "clusterroles",
                    "",
                    "",
                    "view",
                ),
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/default/pods",
                false,
                ("watch", true, "", "pods", "", "default", ""),
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/default/pods/web",
                false,
                ("watch", true, "", "pods", "", "default", "web"),
            ),
            (
                "GET",
                "/api/v1/proxy/namespaces/default/pods/web/some/path",
                false,
                ("proxy", true, "", "pods", "", "default", "web"),
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dweb&watch=true",
                false,
                ("watch", true, "", "pods", "", "default", "web"),
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods?fieldSelector=metadata.name==web",
                false,
                ("list", true, "", "pods", "", "default", "web"),
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods?fieldSelector=metadata.name!=web",
                false,
                ("list", true, "", "pods", "", "default", ""),
            ),
            (
                "OPTIONS",
                "/api/v1/namespaces/default/pods",
                false,
                ("", true, "", "pods", "", "default", ""),
            ),
            // Non-resource paths.
            ("GET", "/healthz", false, ("get", false, "", "", "", "", "")),
            (
                "GET",
                "/readyz/ping",
                false,
                ("get", false, "", "", "", "", ""),
            ),
            ("GET", "/api", false, ("get", false, "", "", "", "", "")),
            ("GET", "/api/v1", false, ("get", false, "", "", "", "", "")),
            ("GET", "/apis", false, ("get", false, "", "", "", "", "")),
            (
                "GET",
                "/apis/apps",
                false,
                ("get", false, "", "", "", "", ""),
            ),
            (
                "GET",
                "/apis/apps/v1",
                false,
                ("get", false, "", "", "", "", ""),
            ),
            (
                "GET",
                "/openapi/v3/api/v1",
                false,
                ("get", false, "", "", "", "", ""),
            ),
            (
                "POST",
                "/metrics",
                false,
                ("post", false, "", "", "", "", ""),
            ),
            ("GET", "/", false, ("get", false, "", "", "", "", "")),
        ];
        for (method, path, watch, want) in table {
            let a = attributes_for(method, path, *watch);
            let got = (
                a.verb.as_str(),
                a.resource_request,
                a.api_group.as_str(),
                a.resource.as_str(),
                a.subresource.as_str(),
                a.namespace.as_str(),
                a.name.as_str(),
            );
            assert_eq!(&got, want, "{method} {path} watch={watch}");
            assert_eq!(a.path, path.split('?').next().unwrap(), "{method} {path}");
        }
    }

    #[test]
    fn decodes_query_components() {
        assert_eq!(percent_decode("metadata.name%3Dweb"), "metadata.name=web");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
