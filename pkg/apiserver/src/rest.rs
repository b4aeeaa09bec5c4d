//! The REST verbs over every registered resource: get, list, create, update, patch, delete,
//! deletecollection and the subresources (status, scale, binding), with optimistic
//! concurrency, generation, finalizers and graceful pod deletion.

use crate::admission;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::objects::{self, from_kv, meta_mut, meta_str, name, now_rfc3339, set_rv, to_stored};
use crate::request::{self, Output, Query, Target};
use crate::state::AppState;
use crate::table;
use serde_json::{json, Map, Value};
use skiff_api::registry::{self, ResourceInfo};
use skiff_api::selector::{FieldSelector, LabelSelector};
use skiff_store::{ListOptions, StoreError};
use std::sync::Arc;

/// Who asks and how, as far as the write path needs to know.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub dry_run: bool,
    pub field_manager: String,
    /// fieldValidation: Strict | Warn | Ignore.
    pub field_validation: String,
    /// A server-side apply: managedFields were computed by the apply itself.
    pub apply: bool,
}

impl WriteOpts {
    pub fn from_query(q: &Query, user_agent: Option<&str>) -> ApiResult<WriteOpts> {
        let field_manager = match q.get("fieldManager") {
            Some(m) if !m.is_empty() => {
                if m.len() > 128 {
                    return Err(ApiError::bad_request(
                        "fieldManager is too long: use at most 128 characters",
                    ));
                }
                m.to_string()
            }
            _ => user_agent
                .and_then(|ua| ua.split('/').next())
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .to_string(),
        };
        let field_validation = match q.get("fieldValidation") {
            None | Some("") => "Warn".to_string(),
            Some(v @ ("Strict" | "Warn" | "Ignore")) => v.to_string(),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\" or \"Strict\", got {other:?}"
            )))
            }
        };
        Ok(WriteOpts {
            dry_run: q.dry_run()?,
            field_manager,
            field_validation,
            apply: false,
        })
    }
}

// ---------------------------------------------------------------- reads

/// GET of one object.
pub async fn get_object(
    st: &AppState,
    res: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<Value> {
    let key = request::object_key(res, ns, name);
    match st.store.get(&key).await? {
        Some(kv) => from_kv(&kv).map(|o| convert::from_storage(res, o)),
        None => Err(ApiError::not_found(res.group, res.plural, name)),
    }
}

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

// ---------------------------------------------------------------- writes

/// Checks that a body's apiVersion/kind fit the URL and fills them in when absent.
pub fn check_type(
    res: &ResourceInfo,
    obj: &mut Value,
    want_kind: &str,
    want_api: &str,
) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!(
            "the body must be a JSON object describing a {want_kind}"
        )));
    }
    let kind = obj.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    let api = obj.get("apiVersion").and_then(|k| k.as_str()).unwrap_or("");
    if (!kind.is_empty() && kind != want_kind) || (!api.is_empty() && api != want_api) {
        let (_, body_version) = registry::split_api_version(api);
        let hint = match registry::find_kind(api, kind) {
            Some(r) if r.kind != want_kind => format!(
                "the body is a {kind}: send it to the {} endpoint",
                r.group_resource()
            ),
            _ => format!("expected apiVersion {want_api:?} and kind {want_kind:?}"),
        };
        let _ = res;
        return Err(ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {want_kind}: {hint}",
            if kind.is_empty() { want_kind } else { kind },
            if body_version.is_empty() {
                res.version
            } else {
                body_version
            },
        )));
    }
    obj["kind"] = Value::String(want_kind.to_string());
    obj["apiVersion"] = Value::String(want_api.to_string());
    Ok(())
}

/// Whether objects of this kind carry `metadata.generation`.
fn has_generation(res: &ResourceInfo) -> bool {
    matches!(
        res.group,
        "apps" | "batch" | "networking.k8s.io" | "policy" | "scheduling.k8s.io"
    ) || (res.group.is_empty() && res.kind == "ReplicationController")
}

/// Clears server-owned status on create, as upstream strategies do.
fn reset_status_on_create(res: &ResourceInfo, obj: &mut Value) {
    let has_status = res.subresource("status").is_some();
    if !has_status || matches!(res.kind, "Node" | "PersistentVolume" | "Namespace") {
        return;
    }
    if obj.is_object() {
        obj["status"] = json!({});
    }
}

fn ns_of<'a>(res: &ResourceInfo, ns: Option<&'a str>) -> ApiResult<Option<&'a str>> {
    if res.namespaced {
        match ns {
            Some(n) => Ok(Some(n)),
            None => Err(ApiError::bad_request(
                "a namespace is required for this resource: use /namespaces/<ns>/ in the path",
            )),
        }
    } else {
        Ok(None)
    }
}

/// The namespace must exist and not be terminating.
async fn check_namespace(st: &AppState, ns: &str) -> ApiResult<()> {
    let nsres = registry::find("", "v1", "namespaces")
        .ok_or_else(|| ApiError::internal("namespaces not registered"))?;
    match st.store.get(&request::object_key(nsres, None, ns)).await? {
        None => Err(ApiError::not_found("", "namespaces", ns)),
        Some(kv) => {
            let o = from_kv(&kv)?;
            if o.pointer("/metadata/deletionTimestamp").is_some() {
                return Err(ApiError::forbidden(format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ))
                .with_details(json!({"name": ns, "kind": "namespaces"})));
            }
            Ok(())
        }
    }
}

/// CREATE: admission, validation, allocation, then one store transaction.
pub async fn create_object(
    st: &Arc<AppState>,
    res: &'static ResourceInfo,
    url_ns: Option<&str>,
    mut obj: Value,
    opts: &WriteOpts,
) -> ApiResult<Value> {
    let api = res.api_version();
    check_type(res, &mut obj, res.kind, &api)?;
    let url_ns = ns_of(res, url_ns)?;
    {
        let meta = meta_mut(&mut obj);
        if let Some(ns) = url_ns {
            match meta.get("namespace").and_then(|n| n.as_str()) {
                Some(b) if !b.is_empty() && b != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                _ => {
                    meta.insert("namespace".into(), Value::String(ns.to_string()));
                }
            }
        } else {
            meta.remove("namespace");
        }
        let has_name = meta
            .get("name")
            .and_then(|n| n.as_str())
            .map(|n| !n.is_empty())
            .unwrap_or(false);
        if !has_name {
            if let Some(g) = meta.get("generateName").and_then(|g| g.as_str()) {
                if !g.is_empty() {
                    let n = format!("{g}{}", objects::random_suffix(5));
                    meta.insert("name".into(), Value::String(n));
                }
            }
        }
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
            "generation",
            "selfLink",
        ] {
            meta.remove(k);
        }
        meta.insert(
            "uid".into(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        meta.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
    }
    if has_generation(res) {
        meta_mut(&mut obj).insert("generation".into(), json!(1));
    }
    if let Some(ns) = url_ns {
        check_namespace(st, ns).await?;
    }
    reset_status_on_create(res, &mut obj);
    admission::strict_fields(res, &mut obj, opts)?;
    admission::mutate_create(st, res, &mut obj).await?;
    skiff_api::defaults::apply_defaults(res, &mut obj);
    admission::validate(res, &obj, None)?;
    if !opts.apply {
        let now = now_rfc3339();
        skiff_api::patch::track_update(
            res.group,
            res.kind,
            &api,
            None,
            &mut obj,
            &opts.field_manager,
            None,
            &now,
        );
    }
    let n = name(&obj).to_string();
    let key = request::object_key(res, url_ns, &n);
    // Allocation (service IPs/ports) happens just before the write and is undone on failure;
    // the allocators lock themselves, so writes of other objects never wait on it.
    let allocated = admission::allocate(st, res, None, &mut obj)?;
    if opts.dry_run {
        admission::release(st, res, &allocated);
        return Ok(obj);
    }
    match st
        .store
        .create(&key, to_stored(&convert::to_storage(res, &obj)))
        .await
    {
        Ok(rev) => {
            set_rv(&mut obj, rev);
            Ok(obj)
        }
        Err(e) => {
            admission::release(st, res, &allocated);
            Err(match e {
                StoreError::AlreadyExists => ApiError::already_exists(res.group, res.plural, &n),
                other => other.into(),
            })
        }
    }
}

/// A mutation of the current object.
pub type MutateFn<'a> = Box<dyn FnMut(&Value) -> ApiResult<Value> + Send + 'a>;

/// What an update does to the current object.
pub enum Mutation<'a> {
    /// PUT of a whole object (main resource): keeps status and server-owned metadata.
    Replace(Value),
    /// PUT/PATCH of the status subresource: only status is taken.
    Status(Value),
    /// A function of the current object (patches, scale, binding, finalizer edits).
    With(MutateFn<'a>),
}

/// UPDATE with optimistic concurrency. Retries when the store moved underneath a patch.
#[allow(clippy::too_many_arguments)]
pub async fn update_object(
    st: &Arc<AppState>,
    res: &'static ResourceInfo,
    ns: Option<&str>,
    obj_name: &str,
    mut mutation: Mutation<'_>,
    opts: &WriteOpts,
    subresource: Option<&str>,
) -> ApiResult<Value> {
    let ns = ns_of(res, ns)?;
    let key = request::object_key(res, ns, obj_name);
    let api = res.api_version();
    for _attempt in 0..16 {
        let Some(kv) = st.store.get(&key).await? else {
            return Err(ApiError::not_found(res.group, res.plural, obj_name));
        };
        let old = convert::from_storage(res, from_kv(&kv)?);
        let mut new = match &mut mutation {
            Mutation::Replace(body) => {
                let mut b = body.clone();
                check_type(res, &mut b, res.kind, &api)?;
                check_identity(res, &b, ns, obj_name)?;
                if let Some(rv) = meta_str(&b, "resourceVersion") {
                    if !rv.is_empty() && rv != kv.mod_revision.to_string() {
                        return Err(ApiError::modified(res.group, res.plural, obj_name));
                    }
                }
                admission::strict_fields(res, &mut b, opts)?;
                if res.subresource("status").is_some() {
                    match old.get("status") {
                        Some(s) => b["status"] = s.clone(),
                        None => {
                            if let Some(o) = b.as_object_mut() {
                                o.remove("status");
                            }
                        }
                    }
                }
                b
            }
            Mutation::Status(body) => {
                let mut b = body.clone();
                check_type(res, &mut b, res.kind, &api)?;
                check_identity(res, &b, ns, obj_name)?;
                if let Some(rv) = meta_str(&b, "resourceVersion") {
                    if !rv.is_empty() && rv != kv.mod_revision.to_string() {
                        return Err(ApiError::modified(res.group, res.plural, obj_name));
                    }
                }
                let mut n = old.clone();
                match b.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        if let Some(o) = n.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
                n
            }
            Mutation::With(f) => {
                let mut n = f(&old)?;
                check_type(res, &mut n, res.kind, &api)?;
                check_identity(res, &n, ns, obj_name)?;
                n
            }
        };
        preserve_server_meta(&old, &mut new);
        if has_generation(res) && objects::spec_changed(&old, &new) {
            let g = old
                .pointer("/metadata/generation")
                .and_then(|g| g.as_i64())
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(g + 1));
        }
        // Once deletion started, finalizers can only be removed.
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            let old_f = finalizers(&old);
            for f in finalizers(&new) {
                if !old_f.contains(&f) {
                    return Err(ApiError::invalid(
                        res.group,
                        res.kind,
                        obj_name,
                        format!("{} \"{obj_name}\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{\"{f}\"}}", res.group_kind()),
                        json!([{"reason": "FieldValueForbidden", "message": "Forbidden: no new finalizers can be added if the object is being deleted", "field": "metadata.finalizers"}]),
                    ));
                }
            }
        }
        admission::mutate_update(st, res, &old, &mut new).await?;
        skiff_api::defaults::apply_defaults(res, &mut new);
        // A binding only sets spec.nodeName (which ordinary pod updates may not change).
        if subresource != Some("binding") {
            admission::validate(res, &new, Some(&old))?;
        }
        if !opts.apply {
            let now = now_rfc3339();
            skiff_api::patch::track_update(
                res.group,
                res.kind,
                &api,
                Some(&old),
                &mut new,
                &opts.field_manager,
                subresource,
                &now,
            );
        }
        let allocated = admission::allocate(st, res, Some(&old), &mut new)?;
        if opts.dry_run {
            admission::release(st, res, &allocated);
            set_rv(&mut new, kv.mod_revision);
            return Ok(new);
        }
        // Deletion completes when the last finalizer goes.
        if new.pointer("/metadata/deletionTimestamp").is_some() && deletion_can_complete(res, &new)
        {
            match st.store.delete(&key, kv.mod_revision).await {
                Ok((rev, _)) => {
                    admission::release_object(st, res, &old);
                    set_rv(&mut new, rev);
                    return Ok(new);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound) => {
                    return Err(ApiError::not_found(res.group, res.plural, obj_name))
                }
                Err(e) => return Err(e.into()),
            }
        }
        if same_object(&new, &old) {
            // No-op update: upstream does not write (and does not bump resourceVersion).
            admission::release(st, res, &allocated);
            return Ok(old);
        }
        match st
            .store
            .update(
                &key,
                to_stored(&convert::to_storage(res, &new)),
                kv.mod_revision,
            )
            .await
        {
            Ok(rev) => {
                admission::release_replaced(st, res, &old, &new);
                set_rv(&mut new, rev);
                return Ok(new);
            }
            Err(StoreError::Conflict { .. }) => {
                // Retry against the new revision; an explicit resourceVersion in a PUT body
                // then fails the comparison at the top of the loop.
                admission::release(st, res, &allocated);
                continue;
            }
            Err(StoreError::NotFound) => {
                admission::release(st, res, &allocated);
                return Err(ApiError::not_found(res.group, res.plural, obj_name));
            }
            Err(e) => {
                admission::release(st, res, &allocated);
                return Err(e.into());
            }
        }
    }
    Err(ApiError::modified(res.group, res.plural, obj_name))
}

fn check_identity(
    res: &ResourceInfo,
    b: &Value,
    ns: Option<&str>,
    obj_name: &str,
) -> ApiResult<()> {
    let bn = name(b);
    if !bn.is_empty() && bn != obj_name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({bn}) does not match the name on the URL ({obj_name})"
        )));
    }
    if res.namespaced {
        if let (Some(bns), Some(ns)) = (objects::namespace(b), ns) {
            if !bns.is_empty() && bns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
    }
    Ok(())
}

/// Server-owned metadata survives every update.
fn preserve_server_meta(old: &Value, new: &mut Value) {
    let om = old.get("metadata").cloned().unwrap_or(json!({}));
    let m = meta_mut(new);
    for k in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match om.get(k) {
            Some(v) => {
                m.insert(k.into(), v.clone());
            }
            None => {
                m.remove(k);
            }
        }
    }
    m.remove("resourceVersion");
    m.remove("selfLink");
    if let Some(mf) = om.get("managedFields") {
        if !m.contains_key("managedFields") {
            m.insert("managedFields".into(), mf.clone());
        }
    }
}

/// Equal apart from the resourceVersion stamp.
fn same_object(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            m.remove("resourceVersion");
        }
        v
    };
    strip(a) == strip(b)
}

/// A deleting object goes once no finalizer holds it (namespaces also wait for
/// `spec.finalizers`, which the namespace controller clears through `/finalize`).
fn deletion_can_complete(res: &ResourceInfo, o: &Value) -> bool {
    if !finalizers(o).is_empty() {
        return false;
    }
    if res.group.is_empty() && res.kind == "Namespace" {
        let spec_fins = o
            .pointer("/spec/finalizers")
            .and_then(|f| f.as_array())
            .map(|a| !a.is_empty())
            .unwrap_or(false);
        return !spec_fins;
    }
    true
}

fn finalizers(o: &Value) -> Vec<String> {
    o.pointer("/metadata/finalizers")
        .and_then(|f| f.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// DeleteOptions from the body and query.
#[derive(Debug, Default, Clone)]
pub struct DeleteOpts {
    pub grace: Option<i64>,
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOpts {
    pub fn parse(q: &Query, body: &[u8], content_type: Option<&str>) -> ApiResult<DeleteOpts> {
        let mut o = DeleteOpts {
            grace: q.int("gracePeriodSeconds")?,
            propagation: q.get("propagationPolicy").map(String::from),
            dry_run: q.dry_run()?,
            ..Default::default()
        };
        if q.get("orphanDependents") == Some("true") {
            o.propagation = Some("Orphan".into());
        }
        if !body.iter().all(|b| b.is_ascii_whitespace()) {
            let v = request::decode_body(content_type, body)?;
            if let Some(g) = v.get("gracePeriodSeconds").and_then(|g| g.as_i64()) {
                o.grace = Some(g);
            }
            if let Some(p) = v.get("propagationPolicy").and_then(|p| p.as_str()) {
                o.propagation = Some(p.to_string());
            }
            if v.get("orphanDependents").and_then(|b| b.as_bool()) == Some(true) {
                o.propagation = Some("Orphan".into());
            }
            if let Some(p) = v.get("preconditions") {
                o.precondition_uid = p.get("uid").and_then(|u| u.as_str()).map(String::from);
                o.precondition_rv = p
                    .get("resourceVersion")
                    .and_then(|u| u.as_str())
                    .map(String::from);
            }
            if let Some(d) = v.get("dryRun").and_then(|d| d.as_array()) {
                o.dry_run = o.dry_run || d.iter().any(|x| x == "All");
            }
        }
        if let Some(p) = &o.propagation {
            if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
                return Err(ApiError::bad_request(format!(
                    "propagationPolicy {p:?} is not supported: use Orphan, Background or Foreground"
                )));
            }
        }
        if let Some(g) = o.grace {
            if g < 0 {
                o.grace = Some(1);
            }
        }
        Ok(o)
    }
}

/// DELETE of one object: finalizers, propagation, graceful pod termination.
pub async fn delete_object(
    st: &Arc<AppState>,
    res: &'static ResourceInfo,
    ns: Option<&str>,
    obj_name: &str,
    opts: &DeleteOpts,
) -> ApiResult<Value> {
    let ns = ns_of(res, ns)?;
    if res.group.is_empty()
        && res.kind == "Namespace"
        && matches!(obj_name, "default" | "kube-system" | "kube-public")
    {
        return Err(ApiError::forbidden(format!(
            "namespaces \"{obj_name}\" is forbidden: this namespace may not be deleted"
        ))
        .with_details(json!({"name": obj_name, "kind": "namespaces"})));
    }
    let key = request::object_key(res, ns, obj_name);
    for _ in 0..16 {
        let Some(kv) = st.store.get(&key).await? else {
            return Err(ApiError::not_found(res.group, res.plural, obj_name));
        };
        let old = convert::from_storage(res, from_kv(&kv)?);
        if let Some(uid) = &opts.precondition_uid {
            if meta_str(&old, "uid") != Some(uid.as_str()) {
                return Err(ApiError::conflict(
                    res.group,
                    res.plural,
                    obj_name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&old, "uid").unwrap_or("")
                    ),
                ));
            }
        }
        if let Some(rv) = &opts.precondition_rv {
            if *rv != kv.mod_revision.to_string() {
                return Err(ApiError::conflict(res.group, res.plural, obj_name, &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    kv.mod_revision
                )));
            }
        }
        let mut new = old.clone();
        let mut fins = finalizers(&old);
        match opts.propagation.as_deref() {
            Some("Foreground") if !fins.iter().any(|f| f == "foregroundDeletion") => {
                fins.retain(|f| f != "orphan");
                fins.push("foregroundDeletion".into());
            }
            Some("Orphan") if !fins.iter().any(|f| f == "orphan") => {
                fins.retain(|f| f != "foregroundDeletion");
                fins.push("orphan".into());
            }
            _ => {}
        }
        let graceful = graceful_period(res, &old, opts);
        let already_deleting = old.pointer("/metadata/deletionTimestamp").is_some();
        let is_namespace = res.group.is_empty() && res.kind == "Namespace";
        let ns_held = is_namespace
            && old
                .pointer("/spec/finalizers")
                .and_then(|f| f.as_array())
                .map(|a| !a.is_empty())
                .unwrap_or(false);
        let immediate = fins.is_empty() && (graceful.is_none() || (is_namespace && !ns_held));
        if opts.dry_run {
            return Ok(old);
        }
        let mut delete_at = kv.mod_revision;
        let mut gone = old.clone();
        if immediate && res.group.is_empty() && res.kind == "Pod" && !already_deleting {
            // Pods always pass through a terminating state (deletionTimestamp, grace 0),
            // so watchers see them as Terminating before they go, as upstream does.
            let mut term = old.clone();
            let m = meta_mut(&mut term);
            m.insert("deletionTimestamp".into(), Value::String(now_rfc3339()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            match st
                .store
                .update(
                    &key,
                    to_stored(&convert::to_storage(res, &term)),
                    kv.mod_revision,
                )
                .await
            {
                Ok(rev) => {
                    delete_at = rev;
                    gone = term;
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound) => {
                    return Err(ApiError::not_found(res.group, res.plural, obj_name))
                }
                Err(e) => return Err(e.into()),
            }
        }
        if immediate {
            match st.store.delete(&key, delete_at).await {
                Ok((rev, _)) => {
                    admission::release_object(st, res, &old);
                    let mut out = gone;
                    set_rv(&mut out, rev);
                    return Ok(out);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound) => {
                    return Err(ApiError::not_found(res.group, res.plural, obj_name))
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Deletion pending: stamp deletionTimestamp (once; a shorter grace may shorten it).
        let m = meta_mut(&mut new);
        let grace = graceful.unwrap_or(0);
        let now = chrono::Utc::now();
        let stamp = (now + chrono::Duration::seconds(grace))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let shorten = match m.get("deletionGracePeriodSeconds").and_then(|g| g.as_i64()) {
            Some(g) => grace < g,
            None => true,
        };
        if !already_deleting || shorten {
            m.insert("deletionTimestamp".into(), Value::String(stamp));
            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
        }
        if fins.is_empty() {
            m.remove("finalizers");
        } else {
            m.insert("finalizers".into(), json!(fins));
        }
        if is_namespace {
            new["status"]["phase"] = json!("Terminating");
        }
        if new == old {
            return Ok(old);
        }
        match st
            .store
            .update(
                &key,
                to_stored(&convert::to_storage(res, &new)),
                kv.mod_revision,
            )
            .await
        {
            Ok(rev) => {
                set_rv(&mut new, rev);
                return Ok(new);
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound) => {
                return Err(ApiError::not_found(res.group, res.plural, obj_name))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::modified(res.group, res.plural, obj_name))
}

/// Pods bound to a node terminate gracefully; everything else goes at once.
fn graceful_period(res: &ResourceInfo, obj: &Value, opts: &DeleteOpts) -> Option<i64> {
    if res.group.is_empty() && res.kind == "Namespace" {
        return Some(0);
    }
    if !(res.group.is_empty() && res.kind == "Pod") {
        return None;
    }
    let bound = obj
        .pointer("/spec/nodeName")
        .and_then(|n| n.as_str())
        .map(|n| !n.is_empty())
        .unwrap_or(false);
    let phase = obj
        .pointer("/status/phase")
        .and_then(|p| p.as_str())
        .unwrap_or("");
    if !bound || phase == "Succeeded" || phase == "Failed" {
        return None;
    }
    let default = obj
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(|g| g.as_i64())
        .unwrap_or(30);
    match opts.grace.unwrap_or(default) {
        0 => None,
        g => Some(g),
    }
}

/// Applies a patch body of the given Content-Type to an object.
pub fn apply_patch(res: &ResourceInfo, ct: &str, current: &Value, body: &[u8]) -> ApiResult<Value> {
    let patch_err = |e: skiff_api::patch::PatchError| ApiError::new(422, "Invalid", e.to_string());
    match ct {
        "application/json-patch+json" => {
            let ops = request::parse_json(body)?;
            skiff_api::patch::json_patch(current, &ops).map_err(patch_err)
        }
        "application/merge-patch+json" => {
            let p = request::parse_json(body)?;
            if !p.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            Ok(skiff_api::patch::json_merge(current, &p))
        }
        "application/strategic-merge-patch+json" => {
            let p = request::parse_json(body)?;
            if !p.is_object() {
                return Err(ApiError::bad_request(
                    "a strategic merge patch must be a JSON object",
                ));
            }
            skiff_api::patch::strategic_merge(res.group, res.kind, current, &p).map_err(patch_err)
        }
        _ => Err(ApiError::unsupported_patch_type()),
    }
}

/// `autoscaling/v1 Scale` of a scalable object.
pub fn to_scale(res: &ResourceInfo, obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector")
        .map(|s| {
            if res.kind == "ReplicationController" {
                LabelSelector::from_map(&s.as_object().cloned().unwrap_or_default()).to_string()
            } else {
                LabelSelector::from_json(s)
                    .map(|l| l.to_string())
                    .unwrap_or_default()
            }
        })
        .unwrap_or_default();
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"),
            "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        }
    })
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
