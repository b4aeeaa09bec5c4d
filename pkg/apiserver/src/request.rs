//! Request resolution: URL path → resource target, query options, body decoding by
//! Content-Type, and Accept negotiation (JSON, Table).

use crate::error::{ApiError, ApiResult};
use serde_json::Value;
use skiff_api::registry::{self, ResourceInfo};
use skiff_api::text::percent_decode_query as percent_decode;
use std::collections::HashMap;

/// Largest accepted request body (upstream: 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// What a resource URL names.
#[derive(Debug, Clone)]
pub struct Target {
    pub res: &'static ResourceInfo,
    /// Namespace from the URL (None: cluster-scoped resource or all-namespaces list).
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The path used the legacy `/watch/` prefix.
    pub watch_prefix: bool,
}

impl Target {
    /// The store key of the named object.
    pub fn key(&self) -> Option<String> {
        let name = self.name.as_deref()?;
        Some(object_key(self.res, self.namespace.as_deref(), name))
    }

    /// The store prefix of the collection (one namespace or all).
    pub fn collection_prefix(&self) -> String {
        match (&self.namespace, self.res.namespaced) {
            (Some(ns), true) => format!("{}{}/", self.res.key_prefix(), ns),
            _ => self.res.key_prefix(),
        }
    }
}

/// The store key of an object.
pub fn object_key(res: &ResourceInfo, namespace: Option<&str>, name: &str) -> String {
    match (namespace, res.namespaced) {
        (Some(ns), true) => format!("{}{}/{}", res.key_prefix(), ns, name),
        _ => format!("{}{}", res.key_prefix(), name),
    }
}

/// Parses `/api/v1/...` or `/apis/<g>/<v>/...` into a target. `None` when the path is not a
/// resource path at all.
pub fn parse_path(path: &str) -> Option<ApiResult<Target>> {
    parse_path_with(path, |_, _, _| None)
}

/// [`parse_path`] that also resolves the resources `custom` knows (group, version, plural →
/// the resources of CustomResourceDefinitions).
pub fn parse_path_with(
    path: &str,
    custom: impl Fn(&str, &str, &str) -> Option<&'static ResourceInfo>,
) -> Option<ApiResult<Target>> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return None,
    };
    let mut rest: Vec<&str> = rest.to_vec();
    let mut watch_prefix = false;
    if rest.first() == Some(&"watch") {
        watch_prefix = true;
        rest.remove(0);
    }
    let mut namespace = None;
    // namespaces/<ns>/<plural>... — but namespaces/<name>/status|finalize is the namespace's own
    // subresource.
    let namespace_subresource =
        rest.len() == 3 && rest[0] == "namespaces" && matches!(rest[2], "status" | "finalize");
    if rest.len() >= 3 && rest[0] == "namespaces" && !namespace_subresource {
        namespace = Some(rest[1].to_string());
        rest.drain(0..2);
    }
    let plural = rest.first().copied()?;
    let res =
        match registry::find(group, version, plural).or_else(|| custom(group, version, plural)) {
            Some(r) => r,
            None => return Some(Err(ApiError::path_not_found())),
        };
    // /api/v1/namespaces/<name>[/status] addresses the namespace object itself.
    let name = rest.get(1).map(|s| s.to_string());
    let subresource = rest.get(2).map(|s| s.to_string());
    if rest.len() > 3 {
        return Some(Err(ApiError::path_not_found()));
    }
    if let Some(sub) = &subresource {
        if res.subresource(sub).is_none() {
            return Some(Err(ApiError::path_not_found()));
        }
    }
    if !res.namespaced && namespace.is_some() {
        return Some(Err(ApiError::path_not_found()));
    }
    if let Some(n) = &name {
        if n.is_empty() {
            return Some(Err(ApiError::path_not_found()));
        }
    }
    Some(Ok(Target {
        res,
        namespace,
        name,
        subresource,
        watch_prefix,
    }))
}

/// Decoded query string (first value wins; repeated keys kept in `multi`).
#[derive(Debug, Default, Clone)]
pub struct Query {
    pub map: HashMap<String, String>,
    pub multi: HashMap<String, Vec<String>>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut q = Query::default();
        if let Some(raw) = raw {
            for pair in raw.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let k = percent_decode(k);
                let v = percent_decode(v);
                q.multi.entry(k.clone()).or_default().push(v.clone());
                q.map.entry(k).or_insert(v);
            }
        }
        q
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(|s| s.as_str())
    }

    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true") | Some("1"))
    }

    pub fn int(&self, k: &str) -> ApiResult<Option<i64>> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid value {s:?} for query parameter {k}: expected an integer"
                ))
            }),
        }
    }

    /// `dryRun=All` was requested.
    pub fn dry_run(&self) -> ApiResult<bool> {
        match self.multi.get("dryRun") {
            None => Ok(false),
            Some(vs) => {
                for v in vs {
                    if v != "All" {
                        return Err(ApiError::bad_request(format!(
                            "unsupported dryRun value {v:?}: the only supported value is \"All\""
                        )));
                    }
                }
                Ok(true)
            }
        }
    }
}

/// What representation the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    /// meta.k8s.io Table, in version v1 or v1beta1.
    Table {
        beta: bool,
    },
}

/// Reads the Accept header. Table wins when the client lists it first (kubectl does).
pub fn negotiate(accept: Option<&str>) -> Output {
    let Some(accept) = accept else {
        return Output::Json;
    };
    for part in accept.split(',') {
        let p = part.trim();
        let params: Vec<&str> = p.split(';').map(|s| s.trim()).collect();
        let media = params[0];
        let has = |x: &str| params.contains(&x);
        if (media == "application/json" || media == "*/*")
            && has("as=Table")
            && has("g=meta.k8s.io")
        {
            return Output::Table {
                beta: has("v=v1beta1"),
            };
        }
        let plain = matches!(
            media,
            "application/json"
                | "*/*"
                | "application/*"
                | "application/yaml"
                | "application/vnd.kubernetes.protobuf"
        );
        if plain && !params.iter().any(|q| q.starts_with("as=")) {
            return Output::Json;
        }
    }
    Output::Json
}

/// Decodes a request body by its Content-Type into a JSON value.
pub fn decode_body(content_type: Option<&str>, body: &[u8]) -> ApiResult<Value> {
    if body.len() > MAX_BODY {
        return Err(ApiError::too_large());
    }
    let ct = content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ct.as_str() {
        "application/json" | "" => parse_json(body),
        "application/yaml" | "application/x-yaml" | "text/yaml" => parse_yaml(body),
        "application/vnd.kubernetes.protobuf" => skiff_api::protobuf::decode_object(body)
            .map_err(|e| ApiError::bad_request(format!("unable to decode the protobuf body: {e}"))),
        _ => Err(ApiError::unsupported_media_type()),
    }
}

/// Parses JSON, with messages like the upstream decoder's.
pub fn parse_json(body: &[u8]) -> ApiResult<Value> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::bad_request(
            "the request body is empty: send the object as JSON, YAML or protobuf",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

/// Parses YAML into JSON.
pub fn parse_yaml(body: &[u8]) -> ApiResult<Value> {
    let v: serde_yaml::Value = serde_yaml::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as YAML: {e}"
        ))
    })?;
    serde_json::to_value(v).map_err(|e| {
        ApiError::bad_request(format!("the YAML body cannot be represented as JSON: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let t = parse_path("/apis/apps/v1/namespaces/default/deployments/web/scale")
            .unwrap()
            .unwrap();
        assert_eq!(t.res.kind, "Deployment");
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.name.as_deref(), Some("web"));
        assert_eq!(t.subresource.as_deref(), Some("scale"));
        assert_eq!(t.key().unwrap(), "/registry/apps/deployments/default/web");

        let t = parse_path("/api/v1/namespaces/kube-system")
            .unwrap()
            .unwrap();
        assert_eq!(t.res.kind, "Namespace");
        assert_eq!(t.name.as_deref(), Some("kube-system"));
        assert_eq!(t.key().unwrap(), "/registry/core/namespaces/kube-system");

        let t = parse_path("/api/v1/namespaces/x/finalize")
            .unwrap()
            .unwrap();
        assert_eq!(t.res.kind, "Namespace");
        assert_eq!(t.name.as_deref(), Some("x"));
        assert_eq!(t.subresource.as_deref(), Some("finalize"));
        let t = parse_path("/api/v1/namespaces/x/status").unwrap().unwrap();
        assert_eq!(t.subresource.as_deref(), Some("status"));

        let t = parse_path("/api/v1/pods").unwrap().unwrap();
        assert!(t.namespace.is_none() && t.name.is_none());
        assert_eq!(t.collection_prefix(), "/registry/core/pods/");

        let t = parse_path("/api/v1/watch/namespaces/default/pods")
            .unwrap()
            .unwrap();
        assert!(t.watch_prefix);
        assert_eq!(t.collection_prefix(), "/registry/core/pods/default/");

        assert!(parse_path("/api/v1/bogus").unwrap().is_err());
        assert!(parse_path("/version").is_none());
        assert!(parse_path("/api/v1/pods/x/nope").unwrap().is_err());
    }

    #[test]
    fn accept() {
        assert_eq!(
            negotiate(Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")),
            Output::Table { beta: false }
        );
        assert_eq!(negotiate(Some("application/json")), Output::Json);
        assert_eq!(negotiate(None), Output::Json);
    }

    #[test]
    fn query() {
        let q = Query::parse(Some("labelSelector=app%3Dweb&limit=500&dryRun=All"));
        assert_eq!(q.get("labelSelector"), Some("app=web"));
        assert_eq!(q.int("limit").unwrap(), Some(500));
        assert!(q.dry_run().unwrap());
        assert!(Query::parse(Some("limit=x")).int("limit").is_err());
    }
}

/// Paths of keys that appear twice in one JSON object (`fieldValidation=Strict` rejects
/// them); serde_json alone silently keeps the last one.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::cell::RefCell;
    use std::fmt;

    struct Walk<'a> {
        path: String,
        out: &'a RefCell<Vec<String>>,
    }
    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            while seq
                .next_element_seed(Walk {
                    path: format!("{}[{i}]", self.path),
                    out: self.out,
                })?
                .is_some()
            {
                i += 1;
            }
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(k) = map.next_key::<String>()? {
                let p = if self.path.is_empty() {
                    k.clone()
                } else {
                    format!("{}.{k}", self.path)
                };
                if !seen.insert(k) {
                    self.out.borrow_mut().push(p.clone());
                }
                map.next_value_seed(Walk {
                    path: p,
                    out: self.out,
                })?;
            }
            Ok(())
        }
    }
    let out = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = Walk {
        path: String::new(),
        out: &out,
    }
    .deserialize(&mut de);
    out.into_inner()
}

#[cfg(test)]
mod dup_tests {
    #[test]
    fn finds_duplicates() {
        let d = super::duplicate_fields(br#"{"metadata":{"name":"a","name":"b"},"spec":{"containers":[{"image":"x","image":"y"}]}}"#);
        assert_eq!(d, vec!["metadata.name", "spec.containers[0].image"]);
        assert!(super::duplicate_fields(br#"{"a":1,"b":{"a":2}}"#).is_empty());
    }
}
