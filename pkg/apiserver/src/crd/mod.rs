//! CustomResourceDefinitions in the API server: the run-time resource table built from the
//! stored CRDs (fed by a store watch, refreshed at once after a CRD write), the admission of
//! CRDs (validation, accepted status, the cleanup finalizer) and of custom objects (pruning,
//! strict unknown fields, defaulting, schema validation, then the CEL rules with `oldSelf` on
//! update), the scale paths, and the cleanup
//! that deletes a CRD's objects before the CRD goes.
//!
//! The REST layer addresses every resource as `&'static ResourceInfo`. A custom resource's
//! `ResourceInfo` is built once per distinct definition (CRD uid + version + names + schema
//! …) and leaked on purpose: those few hundred bytes per CRD revision live as long as the
//! process, which keeps every verb, watch, table and discovery path the same for built-ins
//! and custom resources. Definitions are interned, so re-reading an unchanged CRD leaks
//! nothing.

use crate::admission;
use crate::error::{ApiError, ApiResult};
use crate::objects::{from_kv, name, now_rfc3339};
use crate::rest::WriteOpts;
use crate::state::AppState;
use parking_lot::{Mutex, RwLock};
use serde_json::{json, Value};
use skiff_api::crd::{self as apicrd, CrdDef, CrdVersion, PrinterColumn, ScalePaths};
use skiff_api::registry::{self, ResourceInfo, Subresource, RW_VERBS};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

/// Where CRDs are stored.
pub const CRD_PREFIX: &str = "/registry/apiextensions.k8s.io/customresourcedefinitions/";

const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];

/// What the server knows about one served version of a CRD, beyond its `ResourceInfo`.
#[derive(Debug)]
pub struct CustomVersion {
    pub crd_name: String,
    pub crd_uid: String,
    pub schema: Option<Value>,
    pub columns: Vec<PrinterColumn>,
    pub scale: Option<ScalePaths>,
    /// The CRD serves only this version (objects are then stored exactly as served).
    pub only_version: bool,
    /// `Warning` header text for a deprecated version.
    pub warning: Option<String>,
    /// The schema has `x-kubernetes-validations` rules somewhere.
    pub has_rules: bool,
}

/// Interned definitions: content key → leaked `ResourceInfo`, and its details by address.
struct Interned {
    by_key: HashMap<String, &'static ResourceInfo>,
    details: HashMap<usize, Arc<CustomVersion>>,
}

static INTERNED: LazyLock<Mutex<Interned>> = LazyLock::new(|| {
    Mutex::new(Interned {
        by_key: HashMap::new(),
        details: HashMap::new(),
    })
});

fn addr(res: &ResourceInfo) -> usize {
    res as *const ResourceInfo as usize
}

/// The custom-resource details of `res`; `None` for built-in resources.
pub fn custom(res: &ResourceInfo) -> Option<Arc<CustomVersion>> {
    if registry::is_builtin(res) {
        return None;
    }
    INTERNED.lock().details.get(&addr(res)).cloned()
}

/// True for the resources built from CRDs.
pub fn is_custom(res: &ResourceInfo) -> bool {
    !registry::is_builtin(res)
}

/// True for `apiextensions.k8s.io` CustomResourceDefinitions.
pub fn is_crd(res: &ResourceInfo) -> bool {
    res.group == "apiextensions.k8s.io" && res.kind == "CustomResourceDefinition"
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn leak_list(v: &[String]) -> &'static [&'static str] {
    let strs: Vec<&'static str> = v.iter().map(|s| leak(s)).collect();
    Box::leak(strs.into_boxed_slice())
}

/// The interned `ResourceInfo` of one served version of a CRD.
fn intern(def: &CrdDef, v: &CrdVersion) -> &'static ResourceInfo {
    let key = serde_json::to_string(&json!([
        def.uid,
        def.group,
        def.kind,
        def.plural,
        def.singular,
        def.short_names,
        def.categories,
        def.namespaced,
        def.versions.len(),
        v.name,
        v.schema,
        v.status,
        v.scale
            .as_ref()
            .map(|s| [&s.spec_replicas, &s.status_replicas]),
        v.scale.as_ref().map(|s| &s.label_selector),
        v.columns
            .iter()
            .map(|c| json!([
                c.name,
                c.type_,
                c.format,
                c.description,
                c.json_path,
                c.priority
            ]))
            .collect::<Vec<_>>(),
        v.deprecated,
        v.deprecation_warning,
    ]))
    .unwrap_or_default();
    let mut g = INTERNED.lock();
    if let Some(r) = g.by_key.get(&key) {
        return r;
    }
    let mut subs = Vec::new();
    if v.status {
        subs.push(Subresource {
            name: "status",
            group: "",
            version: "",
            kind: "",
            verbs: GET_PATCH_UPDATE,
        });
    }
    if v.scale.is_some() {
        subs.push(Subresource {
            name: "scale",
            group: "autoscaling",
            version: "v1",
            kind: "Scale",
            verbs: GET_PATCH_UPDATE,
        });
    }
    let info: &'static ResourceInfo = Box::leak(Box::new(ResourceInfo {
        group: leak(&def.group),
        version: leak(&v.name),
        kind: leak(&def.kind),
        plural: leak(&def.plural),
        singular: leak(&def.singular),
        namespaced: def.namespaced,
        short_names: leak_list(&def.short_names),
        categories: leak_list(&def.categories),
        verbs: RW_VERBS,
        subresources: Box::leak(subs.into_boxed_slice()),
    }));
    let details = CustomVersion {
        crd_name: def.name.clone(),
        crd_uid: def.uid.clone(),
        schema: v.schema.clone(),
        columns: v.columns.clone(),
        scale: v.scale.clone(),
        only_version: def.versions.len() == 1,
        warning: v.deprecated.then(|| apicrd::deprecation_warning(def, v)),
        has_rules: v.schema.as_ref().is_some_and(apicrd::rules::has_rules),
    };
    g.details.insert(addr(info), Arc::new(details));
    g.by_key.insert(key, info);
    info
}

/// The served custom resources, rebuilt from the stored CRDs.
#[derive(Default)]
pub struct Registry {
    inner: RwLock<Served>,
}

#[derive(Default)]
struct Served {
    /// CRD name → stored object.
    crds: BTreeMap<String, Value>,
    /// (group, version, plural) → resource.
    by_path: HashMap<(String, String, String), &'static ResourceInfo>,
    /// Discovery order: by group, then version priority.
    list: Vec<&'static ResourceInfo>,
}

impl Served {
    fn rebuild(&mut self) {
        self.by_path.clear();
        self.list.clear();
        let mut defs: Vec<CrdDef> = self.crds.values().filter_map(apicrd::parse).collect();
        defs.sort_by(|a, b| a.group.cmp(&b.group).then(a.plural.cmp(&b.plural)));
        let mut per_group: BTreeMap<String, Vec<&'static ResourceInfo>> = BTreeMap::new();
        for def in &defs {
            // A plural a built-in already serves in the group is never shadowed.
            for v in def.versions.iter().filter(|v| v.served) {
                if registry::find(&def.group, &v.name, &def.plural).is_some() {
                    continue;
                }
                let info = intern(def, v);
                self.by_path.insert(
                    (def.group.clone(), v.name.clone(), def.plural.clone()),
                    info,
                );
                per_group.entry(def.group.clone()).or_default().push(info);
            }
        }
        for (_, mut infos) in per_group {
            infos.sort_by(|a, b| apicrd::version_priority(a.version, b.version));
            self.list.extend(infos);
        }
    }
}

impl Registry {
    /// The custom resource served at `/apis/<group>/<version>/<plural>`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
        self.inner
            .read()
            .by_path
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .copied()
    }

    /// Every served custom resource, in discovery order.
    pub fn resources(&self) -> Vec<&'static ResourceInfo> {
        self.inner.read().list.clone()
    }

    /// The stored CRD named `name`.
    pub fn crd(&self, name: &str) -> Option<Value> {
        self.inner.read().crds.get(name).cloned()
    }

    /// True while the CRD named `name` is being deleted (no copy of it is made).
    pub fn terminating(&self, name: &str) -> bool {
        self.inner
            .read()
            .crds
            .get(name)
            .is_some_and(|crd| crd.pointer("/metadata/deletionTimestamp").is_some())
    }

    fn replace_all(&self, crds: Vec<Value>) {
        let mut g = self.inner.write();
        g.crds = crds
            .into_iter()
            .map(|c| (name(&c).to_string(), c))
            .collect();
        g.rebuild();
    }

    fn put(&self, crd: Value) {
        let mut g = self.inner.write();
        g.crds.insert(name(&crd).to_string(), crd);
        g.rebuild();
    }

    fn remove(&self, crd_name: &str) {
        let mut g = self.inner.write();
        g.crds.remove(crd_name);
        g.rebuild();
    }
}

/// Reads every CRD from the store into the registry (after a CRD write, so the next request
/// already sees its resources).
pub async fn sync(st: &Arc<AppState>) {
    match st.store.list(CRD_PREFIX, Default::default()).await {
        Ok(list) => {
            let crds: Vec<Value> = list.kvs.iter().filter_map(|kv| from_kv(kv).ok()).collect();
            start_cleanups(st, &crds);
            st.crds.replace_all(crds);
        }
        Err(e) => tracing::warn!(error = %e, "crd registry: listing CRDs failed"),
    }
}

/// Keeps the registry in step with the stored CRDs (list, then watch; relists on errors).
pub async fn run_crd_watch(st: Arc<AppState>) {
    loop {
        let list = match st.store.list(CRD_PREFIX, Default::default()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "crd registry: list failed, retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        let crds: Vec<Value> = list.kvs.iter().filter_map(|kv| from_kv(kv).ok()).collect();
        start_cleanups(&st, &crds);
        st.crds.replace_all(crds);
        let mut w = match st.store.watch(CRD_PREFIX, list.revision) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "crd registry: watch failed, relisting");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        while let Some(ev) = w.recv().await {
            let Ok(ev) = ev else { break };
            match ev.kind {
                skiff_store::EventType::Put => {
                    if let Ok(v) = from_kv(&ev.kv) {
                        start_cleanups(&st, std::slice::from_ref(&v));
                        st.crds.put(v);
                    }
                }
                skiff_store::EventType::Delete => {
                    let n = ev.kv.key.trim_start_matches(CRD_PREFIX).to_string();
                    st.crds.remove(&n);
                }
            }
        }
    }
}

// -------------------------------------------------------------------------------------------
// Admission

fn invalid(
    res: &ResourceInfo,
    obj: &Value,
    causes: &[skiff_api::validation::FieldCause],
) -> ApiError {
    admission::invalid(res, name(obj), causes)
}

/// Admission of CRDs and custom objects on create (`old` None) and update; a no-op for every
/// other resource. Runs after the generic mutations, before the generic validation.
pub fn admit(
    st: &AppState,
    res: &ResourceInfo,
    obj: &mut Value,
    old: Option<&Value>,
    opts: &WriteOpts,
) -> ApiResult<()> {
    if is_crd(res) {
        return admit_crd(res, obj, old);
    }
    let Some(c) = custom(res) else {
        return Ok(());
    };
    if old.is_none() {
        let terminating = st.crds.terminating(&c.crd_name);
        if terminating {
            return Err(ApiError::new(
                405,
                "MethodNotAllowed",
                format!(
                    "create not allowed while custom resource definition is terminating: wait until {} is gone, then create it again",
                    c.crd_name
                ),
            ));
        }
    }
    let Some(schema) = &c.schema else {
        return Ok(());
    };
    let unknown = skiff_api::crd::schema::prune(schema, obj);
    if opts.field_validation == "Strict" && !unknown.is_empty() {
        let list = unknown
            .iter()
            .map(|u| format!("unknown field \"{u}\""))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {list}",
            res.kind, res.version, res.kind
        )));
    }
    skiff_api::crd::schema::apply_defaults(schema, obj);
    let mut causes = skiff_api::crd::schema::validate(schema, obj);
    if c.has_rules {
        // Upstream runs the CEL rules only on an object of the schema's shape.
        match apicrd::rules::blocked_by(&causes) {
            Some(blocked) => causes.push(blocked),
            None => causes.extend(apicrd::rules::validate(schema, obj, old)),
        }
    }
    if !causes.is_empty() {
        return Err(invalid(res, obj, &causes));
    }
    Ok(())
}

fn admit_crd(res: &ResourceInfo, obj: &mut Value, old: Option<&Value>) -> ApiResult<()> {
    let causes = apicrd::validate::validate_crd(obj, old);
    if !causes.is_empty() {
        return Err(invalid(res, obj, &causes));
    }
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        return Ok(());
    }
    if old.is_none() {
        let meta = crate::objects::meta_mut(obj);
        let fins = meta.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(a) = fins.as_array_mut() {
            if !a.iter().any(|f| f == apicrd::CLEANUP_FINALIZER) {
                a.push(json!(apicrd::CLEANUP_FINALIZER));
            }
        }
    }
    let prev = old.and_then(|o| o.get("status")).cloned();
    let status = apicrd::accepted_status(obj, prev.as_ref(), &now_rfc3339());
    obj["status"] = status;
    Ok(())
}

// -------------------------------------------------------------------------------------------
// Scale and storage shape

/// Replicas at a `.spec.replicas`-style path.
pub fn read_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    skiff_api::crd::columns::lookup(obj, path)
}

/// Sets a value at a `.a.b.c` path, creating the objects on the way.
pub fn write_path(obj: &mut Value, path: &str, v: Value) {
    let keys: Vec<&str> = path.split('.').filter(|k| !k.is_empty()).collect();
    let mut cur = obj;
    for (i, k) in keys.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(m) = cur.as_object_mut() else { return };
        if i + 1 == keys.len() {
            m.insert(k.to_string(), v);
            return;
        }
        cur = m.entry(k.to_string()).or_insert_with(|| json!({}));
    }
}

/// A stored custom object as version `res` serves it (conversion `None`: only the apiVersion
/// changes).
pub fn served_shape(res: &ResourceInfo, mut obj: Value) -> Value {
    if obj.is_object() {
        obj["apiVersion"] = json!(res.api_version());
    }
    obj
}

// -------------------------------------------------------------------------------------------
// OpenAPI v3 of the custom group-versions

/// A custom resource with its schema, as OpenAPI lists it.
type ResourceSchema = (&'static ResourceInfo, Option<Value>);

/// The custom group-versions with their resources and schemas.
fn custom_group_versions(st: &AppState) -> BTreeMap<(String, String), Vec<ResourceSchema>> {
    let mut out: BTreeMap<(String, String), Vec<_>> = BTreeMap::new();
    for r in st.crds.resources() {
        let schema = custom(r).and_then(|c| c.schema.clone());
        out.entry((r.group.to_string(), r.version.to_string()))
            .or_default()
            .push((r, schema));
    }
    out
}

fn custom_document(st: &AppState, group: &str, version: &str) -> Option<(Vec<u8>, String)> {
    let gvs = custom_group_versions(st);
    let kinds = gvs.get(&(group.to_string(), version.to_string()))?;
    let doc = skiff_api::openapi::build_custom_v3_document(group, version, kinds);
    let json = serde_json::to_vec(&doc).unwrap_or_default();
    let hash = skiff_api::openapi::document_hash(&doc);
    Some((json, hash))
}

/// `GET /openapi/v3`: the built-in index plus one entry per custom group-version.
pub fn openapi_index(st: &AppState, mut index: Value) -> Value {
    for (g, v) in custom_group_versions(st).keys() {
        if let Some((_, hash)) = custom_document(st, g, v) {
            let key = skiff_api::openapi::v3_path(g, v);
            index["paths"][&key] =
                json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}") });
        }
    }
    index
}

/// `GET /openapi/v3/apis/<group>/<version>` of a custom group-version; `None` for others.
pub fn openapi_response(
    st: &AppState,
    rest: &str,
    q: &crate::request::Query,
) -> Option<axum::response::Response> {
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let ["apis", g, v] = parts.as_slice() else {
        return None;
    };
    let (json, hash) = custom_document(st, g, v)?;
    let cache = if q.get("hash") == Some(hash.as_str()) {
        "public, immutable"
    } else {
        "no-cache, no-store, must-revalidate"
    };
    axum::response::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("etag", format!("\"{hash}\""))
        .header("cache-control", cache)
        .body(axum::body::Body::from(json))
        .ok()
}

// -------------------------------------------------------------------------------------------
// Cleanup of a deleted CRD's objects

static CLEANING: LazyLock<Mutex<std::collections::HashSet<String>>> =
    LazyLock::new(Default::default);

fn start_cleanups(st: &Arc<AppState>, crds: &[Value]) {
    for crd in crds {
        let deleting = crd.pointer("/metadata/deletionTimestamp").is_some();
        let held = crate::rest::finalizers(crd)
            .iter()
            .any(|f| f == apicrd::CLEANUP_FINALIZER);
        if !deleting || !held {
            continue;
        }
        let uid = crd
            .pointer("/metadata/uid")
            .and_then(|u| u.as_str())
            .unwrap_or("")
            .to_string();
        if !CLEANING.lock().insert(uid.clone()) {
            continue;
        }
        let st = st.clone();
        let crd = crd.clone();
        tokio::spawn(async move {
            if let Err(e) = cleanup(&st, &crd).await {
                tracing::warn!(crd = name(&crd), error = %e.message, "crd cleanup failed; retrying on the next change");
            }
            CLEANING.lock().remove(&uid);
        });
    }
}

/// Deletes every object of a terminating CRD (waiting up to a minute for their own
/// finalizers), then removes the cleanup finalizer so the CRD goes.
async fn cleanup(st: &Arc<AppState>, crd: &Value) -> ApiResult<()> {
    let Some(def) = apicrd::parse(crd) else {
        return remove_finalizer(st, crd).await;
    };
    let prefix = format!("/registry/{}/{}/", def.group, def.plural);
    let Some(res) = st
        .crds
        .resources()
        .into_iter()
        .find(|r| r.group == def.group && r.plural == def.plural)
    else {
        return remove_finalizer(st, crd).await;
    };
    let opts = crate::rest::DeleteOpts::default();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let list = st.store.list(&prefix, Default::default()).await?;
        if list.kvs.is_empty() {
            break;
        }
        for kv in &list.kvs {
            let Ok(o) = from_kv(kv) else { continue };
            if o.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let ns = crate::objects::namespace(&o).map(String::from);
            match crate::rest::delete_object(st, res, ns.as_deref(), name(&o), &opts).await {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(ApiError::internal(format!(
                "objects of {} still have finalizers after a minute",
                def.name
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    remove_finalizer(st, crd).await
}

async fn remove_finalizer(st: &Arc<AppState>, crd: &Value) -> ApiResult<()> {
    let Some(res) = registry::find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    else {
        return Ok(());
    };
    let opts = WriteOpts {
        field_manager: "skiff-apiextensions".into(),
        field_validation: "Ignore".into(),
        ..Default::default()
    };
    let r = crate::rest::update_object(
        st,
        res,
        None,
        name(crd),
        crate::rest::Mutation::With(Box::new(|cur: &Value| {
            let mut c = cur.clone();
            if let Some(a) = c
                .pointer_mut("/metadata/finalizers")
                .and_then(|f| f.as_array_mut())
            {
                a.retain(|f| f != apicrd::CLEANUP_FINALIZER);
            }
            Ok(c)
        })),
        &opts,
        None,
    )
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_write_and_read() {
        let mut o = json!({"spec": {}});
        write_path(&mut o, ".spec.replicas", json!(3));
        write_path(&mut o, ".status.deep.replicas", json!(1));
        assert_eq!(read_path(&o, ".spec.replicas"), Some(&json!(3)));
        assert_eq!(o["status"]["deep"]["replicas"], 1);
    }

    #[test]
    fn interned_once_and_custom_details() {
        let crd = json!({"metadata": {"name": "widgets.example.com", "uid": "test-uid-1"},
            "spec": {"group": "example.com", "scope": "Cluster",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wg"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
        let mut s = Served::default();
        s.crds.insert("widgets.example.com".into(), crd.clone());
        s.rebuild();
        let a = s.by_path[&("example.com".into(), "v1".into(), "widgets".into())];
        s.rebuild();
        let b = s.by_path[&("example.com".into(), "v1".into(), "widgets".into())];
        assert!(std::ptr::eq(a, b));
        assert_eq!(a.kind, "Widget");
        assert!(!a.namespaced);
        assert_eq!(a.short_names, &["wg"]);
        assert!(a.subresource("status").is_some() && a.subresource("scale").is_none());
        let c = custom(a).unwrap();
        assert_eq!(c.crd_name, "widgets.example.com");
        assert!(c.only_version);
        assert!(custom(registry::find("", "v1", "pods").unwrap()).is_none());
    }
}
