//! LIST: label/field selectors, limit/continue with revision-pinned continue tokens,
//! `resourceVersionMatch=Exact`, point lookups for `metadata.name=` field selectors, the raw
//! (spliced stored bytes) fast path, and rendering as a `<Kind>List` or a Table.

use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::objects::{self, from_kv};
use crate::request::{self, Output, Query, Target};
use crate::state::AppState;
use crate::table;
use serde_json::{json, Map, Value};
use skiff_api::registry::ResourceInfo;
use skiff_api::selector::{FieldSelector, LabelSelector};
use skiff_store::{ListOptions, StoreError};

/// Continue token: the revision of the first page and the last key returned.
fn encode_continue(rev: i64, key: &str) -> String {
    use base64::Engine;
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rev, "start": key}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(token: &str) -> ApiResult<(i64, String)> {
    use base64::Engine;
    let bad = || {
        ApiError::bad_request("continue key is not valid: use the continue value from the previous list response unchanged")
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rev = v.get("rv").and_then(|r| r.as_i64()).ok_or_else(bad)?;
    let start = v
        .get("start")
        .and_then(|s| s.as_str())
        .ok_or_else(bad)?
        .to_string();
    Ok((rev, start))
}

/// Parsed list filters.
pub struct Filters {
    pub labels: Option<LabelSelector>,
    pub fields: Option<FieldSelector>,
}

impl Filters {
    pub fn from_query(q: &Query, res: &ResourceInfo) -> ApiResult<Filters> {
        let labels =
            match q.get("labelSelector") {
                Some(s) if !s.trim().is_empty() => Some(LabelSelector::parse(s).map_err(|e| {
                    ApiError::bad_request(format!("unable to parse requirement: {e}"))
                })?),
                _ => None,
            };
        let fields = match q.get("fieldSelector") {
            Some(s) if !s.trim().is_empty() => {
                let f =
                    FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?;
                f.check_supported(res.group, res.kind)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                Some(f)
            }
            _ => None,
        };
        Ok(Filters { labels, fields })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(l) = &self.labels {
            if !l.matches(objects::labels(obj)) {
                return false;
            }
        }
        if let Some(f) = &self.fields {
            if !f.matches(obj) {
                return false;
            }
        }
        true
    }
}

/// The result of a list: items, the revision read at, and the continue token.
pub struct ListOut {
    pub items: Vec<Value>,
    pub revision: i64,
    pub cont: Option<String>,
    pub remaining: Option<i64>,
}

/// LIST with selectors, limit/continue and resourceVersion semantics.
pub async fn list_objects(st: &AppState, target: &Target, q: &Query) -> ApiResult<ListOut> {
    let filters = Filters::from_query(q, target.res)?;
    let limit = q.int("limit")?.unwrap_or(0).max(0) as usize;
    let prefix = target.collection_prefix();
    let (mut revision, mut start_after) = match q.get("continue") {
        Some(c) if !c.is_empty() => {
            let (rev, key) = decode_continue(c)?;
            if !key.starts_with(&prefix) {
                return Err(ApiError::bad_request(
                    "continue key is not valid: it belongs to a different list",
                ));
            }
            (rev, Some(key))
        }
        _ => (0, None),
    };
    if start_after.is_none() {
        if let (Some(rv), Some("Exact")) = (q.get("resourceVersion"), q.get("resourceVersionMatch"))
        {
            revision = rv.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid resource version {rv:?}: expected an integer"
                ))
            })?;
        }
    }
    // A metadata.name field selector is a point lookup (kubectl wait/delete/rollout use it).
    if let Some(n) = filters.fields.as_ref().and_then(|f| f.name_equals()) {
        if start_after.is_none() && revision == 0 {
            let rev = st.store.current_revision();
            let mut items = vec![];
            if let Some(ns_or_none) = match (&target.namespace, target.res.namespaced) {
                (Some(ns), true) => Some(Some(ns.as_str())),
                (None, true) => None,
                _ => Some(None),
            } {
                if let Some(kv) = st
                    .store
                    .get(&request::object_key(target.res, ns_or_none, n))
                    .await?
                {
                    let o = convert::from_storage(target.res, from_kv(&kv)?);
                    if filters.matches(&o) {
                        items.push(o);
                    }
                }
                return Ok(ListOut {
                    items,
                    revision: rev,
                    cont: None,
                    remaining: None,
                });
            }
        }
    }
    let mut items = Vec::new();
    loop {
        let want = if limit > 0 { limit - items.len() } else { 0 };
        let page = st
            .store
            .list(
                &prefix,
                ListOptions {
                    revision,
                    start_after: start_after.clone(),
                    limit: if limit > 0 { want.max(1) } else { 0 },
                },
            )
            .await
            .map_err(|e| match e {
                StoreError::Compacted { .. } => ApiError::gone(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ),
                other => other.into(),
            })?;
        revision = page.revision;
        let last_key = page.kvs.last().map(|kv| kv.key.clone());
        for kv in &page.kvs {
            let o = convert::from_storage(target.res, from_kv(kv)?);
            if filters.matches(&o) {
                items.push(o);
            }
        }
        if limit == 0 || !page.more {
            return Ok(ListOut {
                items,
                revision,
                cont: None,
                remaining: None,
            });
        }
        if items.len() >= limit {
            let last = last_key.unwrap_or_default();
            let remaining = if filters.labels.is_none() && filters.fields.is_none() {
                Some(page.remaining)
            } else {
                None
            };
            return Ok(ListOut {
                items,
                revision,
                cont: Some(encode_continue(revision, &last)),
                remaining,
            });
        }
        start_after = last_key;
    }
}

/// The JSON body of an unfiltered, unpaginated LIST built from the stored bytes: each item is
/// its stored JSON with `resourceVersion` spliced into its top-level `metadata`, so a large LIST
/// costs a copy instead of a decode and re-encode per object. `None` when the request needs the
/// general path (selectors, `limit`/`continue`, `resourceVersionMatch`, a converted resource, or
/// a stored object without a top-level `metadata` object).
pub async fn list_json_raw(
    st: &AppState,
    target: &Target,
    q: &Query,
) -> ApiResult<Option<Vec<u8>>> {
    let plain = [
        "labelSelector",
        "fieldSelector",
        "limit",
        "continue",
        "resourceVersionMatch",
    ]
    .iter()
    .all(|k| q.get(k).is_none_or(|v| v.trim().is_empty()));
    if !plain || !convert::is_identity(target.res) {
        return Ok(None);
    }
    let page = st
        .store
        .list(&target.collection_prefix(), ListOptions::default())
        .await?;
    let total: usize = page.kvs.iter().map(|kv| kv.value.len() + 40).sum();
    let mut out = Vec::with_capacity(total + 200);
    let head = json!({
        "kind": target.res.list_kind(),
        "apiVersion": target.res.api_version(),
        "metadata": {"resourceVersion": page.revision.to_string()},
    });
    let head = serde_json::to_vec(&head).map_err(|e| ApiError::internal(e.to_string()))?;
    // `{"kind":…,"metadata":{…}` + `,"items":[` … `]}`
    out.extend_from_slice(&head[..head.len() - 1]);
    out.extend_from_slice(b",\"items\":[");
    for (i, kv) in page.kvs.iter().enumerate() {
        let Some(at) = metadata_body_start(&kv.value) else {
            return Ok(None);
        };
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&kv.value[..at]);
        out.extend_from_slice(b"\"resourceVersion\":\"");
        out.extend_from_slice(kv.mod_revision.to_string().as_bytes());
        out.push(b'"');
        if kv.value.get(at) != Some(&b'}') {
            out.push(b',');
        }
        out.extend_from_slice(&kv.value[at..]);
    }
    out.extend_from_slice(b"]}");
    Ok(Some(out))
}

/// The byte offset just inside the `{` of the top-level `"metadata"` object of a compact JSON
/// object, if there is one. Strings are skipped with their escapes, so a `"metadata"` inside a
/// string value or deeper in the object never matches. (Hand-written: a streaming JSON parser
/// would decode every value, which is the cost this path exists to avoid.)
pub fn metadata_body_start(obj: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < obj.len() {
        match obj[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < obj.len() && obj[i] != b'"' {
                    if obj[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let end = i.min(obj.len());
                i += 1;
                if depth == 1 && &obj[start..end] == b"metadata" {
                    let mut j = i;
                    while j < obj.len() && obj[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if obj.get(j) == Some(&b':') {
                        j += 1;
                        while j < obj.len() && obj[j].is_ascii_whitespace() {
                            j += 1;
                        }
                        return (obj.get(j) == Some(&b'{')).then_some(j + 1);
                    }
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Renders a list as `<Kind>List` JSON or a Table.
pub fn render_list(
    res: &ResourceInfo,
    out: ListOut,
    output: Output,
    q: &Query,
) -> ApiResult<Value> {
    let mut meta = Map::new();
    meta.insert(
        "resourceVersion".into(),
        Value::String(out.revision.to_string()),
    );
    if let Some(c) = &out.cont {
        meta.insert("continue".into(), Value::String(c.clone()));
    }
    if let Some(r) = out.remaining {
        if r > 0 {
            meta.insert("remainingItemCount".into(), json!(r));
        }
    }
    match output {
        Output::Json => Ok(json!({
            "kind": res.list_kind(),
            "apiVersion": res.api_version(),
            "metadata": meta,
            "items": out.items,
        })),
        Output::Table { beta } => {
            let include = table::IncludeObject::from_query(q)?;
            Ok(table::to_table(
                res,
                &out.items,
                include,
                beta,
                Value::Object(meta),
                true,
            ))
        }
    }
}

#[cfg(test)]
mod raw_list_tests {
    use super::metadata_body_start;

    fn splice(obj: &str, rv: &str) -> Option<serde_json::Value> {
        let at = metadata_body_start(obj.as_bytes())?;
        let sep = if obj.as_bytes()[at] == b'}' { "" } else { "," };
        let s = format!(
            "{}\"resourceVersion\":\"{rv}\"{sep}{}",
            &obj[..at],
            &obj[at..]
        );
        serde_json::from_str(&s).ok()
    }

    #[test]
    fn finds_only_the_top_level_metadata() {
        let v = splice(
            r#"{"spec":{"template":{"metadata":{"labels":{"a":"b"}}}},"note":"\"metadata\":{","metadata":{"name":"x"}}"#,
            "7",
        )
        .unwrap();
        assert_eq!(v["metadata"]["resourceVersion"], "7");
        assert_eq!(v["metadata"]["name"], "x");
        assert!(v["spec"]["template"]["metadata"]
            .get("resourceVersion")
            .is_none());
        assert_eq!(v["note"], "\"metadata\":{");
    }

    #[test]
    fn empty_metadata_and_missing_metadata() {
        let v = splice(r#"{"metadata":{}}"#, "3").unwrap();
        assert_eq!(v["metadata"], serde_json::json!({"resourceVersion": "3"}));
        assert!(metadata_body_start(br#"{"kind":"X","items":[{"metadata":{}}]}"#).is_none());
        assert!(metadata_body_start(br#"{"metadata":"text"}"#).is_none());
        assert!(metadata_body_start(b"{\"unterminated").is_none());
    }
}
