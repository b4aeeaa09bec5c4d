//! OpenAPI documents for `/openapi/v3` (one OpenAPI 3.0 document per group-version plus the
//! index) and `/openapi/v2` (one Swagger 2.0 document), generated from the kind registry and
//! the schemars schemas of `k8s-openapi`, with upstream definition names
//! (`io.k8s.api.apps.v1.Deployment`) and operation extensions kubectl reads.
//!
//! kubectl uses these documents for two things:
//! - the query-param verifier: a resource's PATCH operation carrying
//!   `x-kubernetes-group-version-kind` and a `fieldValidation` query parameter makes kubectl
//!   skip client-side validation and send `fieldValidation=Strict`;
//! - client-side `apply`: when the PATCH operation accepts
//!   `application/strategic-merge-patch+json`, kubectl computes its three-way patch from the
//!   `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` extensions of the schemas.
//!
//! The patch extensions come from a provider function registered with
//! [`set_patch_metadata_provider`] (the merge-key table lives in another module). Until one is
//! registered the documents do not advertise `application/strategic-merge-patch+json`, so
//! kubectl falls back to the strategic-merge metadata compiled into it instead of computing
//! wrong patches from schemas without merge keys.
//!
//! The documents are large; the cached accessors ([`v3_index`], [`v3_document`],
//! [`v3_document_by_path`], [`v2_document`]) build them on the first request for one and keep
//! only their JSON and hash. Nothing else reads them (field validation uses the protobuf
//! message table), so a server that no client asked for OpenAPI never builds them: neither the
//! trees nor the schemars code that makes them occupy its memory. [`warm`] builds them all.

use std::sync::OnceLock;

use k8s_openapi::api;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::JsonSchema;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha512};

use crate::discovery::subresource_kind;
use crate::registry::{self, ResourceInfo, Subresource};

/// Errors of the OpenAPI module.
#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    #[error("the openapi patch metadata provider is already set; register it once at startup")]
    ProviderAlreadySet,
    #[error(
        "the openapi documents were already built without patch metadata; register the provider before serving /openapi"
    )]
    AlreadyBuilt,
}

/// Strategic-merge and list metadata of one field, as published in the schemas:
/// `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`,
/// `x-kubernetes-list-map-keys`. Empty parts are left out of the document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldPatchMeta {
    /// `merge`, `retainKeys` or `merge,retainKeys`.
    pub strategy: Option<&'static str>,
    /// The merge key of a list of objects (`name`, `containerPort`, …).
    pub merge_key: Option<&'static str>,
    /// `atomic`, `set` or `map`.
    pub list_type: Option<&'static str>,
    /// The keys of a `map` list.
    pub list_map_keys: &'static [&'static str],
}

/// Looks up the patch metadata of `field` (a JSON property name) of the schema definition
/// `definition` (the upstream dotted name, e.g. `io.k8s.api.core.v1.PodSpec`; its last
/// dot-separated segment is the Go type name `PodSpec`).
pub type PatchMetaProvider = fn(definition: &str, field: &str) -> Option<FieldPatchMeta>;

/// One generated document, serialized, with its hash: what the server keeps and serves. The
/// trees themselves are dropped once serialized (field validation reads the protobuf message
/// table, [`crate::protobuf::fields`], not these documents).
#[derive(Debug, Clone)]
pub struct Document {
    /// The document serialized as JSON.
    pub json: Vec<u8>,
    /// [`document_hash`] of the document (used in `serverRelativeURL` and as the ETag).
    pub hash: String,
}

impl Document {
    fn new(value: &Value) -> Document {
        let json = serde_json::to_vec(value).unwrap_or_default();
        let hash = hash_bytes(&json);
        Document { json, hash }
    }
}

static PROVIDER: OnceLock<PatchMetaProvider> = OnceLock::new();
static V3: OnceLock<V3Cache> = OnceLock::new();
static V2: OnceLock<Document> = OnceLock::new();

struct V3Cache {
    index: Value,
    docs: Vec<(&'static str, &'static str, Document)>,
}

/// Registers the patch metadata provider used when the cached documents are built. Call it
/// once, before the first OpenAPI request (or [`warm`]).
pub fn set_patch_metadata_provider(provider: PatchMetaProvider) -> Result<(), OpenApiError> {
    if V3.get().is_some() || V2.get().is_some() {
        return Err(OpenApiError::AlreadyBuilt);
    }
    PROVIDER
        .set(provider)
        .map_err(|_| OpenApiError::ProviderAlreadySet)
}

fn provider() -> Option<PatchMetaProvider> {
    PROVIDER.get().copied()
}

fn v3_cache() -> &'static V3Cache {
    V3.get_or_init(|| {
        let p = provider();
        let docs: Vec<(&'static str, &'static str, Document)> = registry::groups()
            .into_iter()
            .filter_map(|(g, v)| build_v3_document(g, v, p).map(|d| (g, v, Document::new(&d))))
            .collect();
        let index = build_v3_index(docs.iter().map(|(g, v, d)| (*g, *v, d.hash.as_str())));
        V3Cache { index, docs }
    })
}

/// Builds every cached document now (all v3 group-versions, the v3 index and v2).
pub fn warm() {
    v3_cache();
    v2_document();
}

/// `GET /openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=H"}, …}}`.
/// Built with every group-version document on the first request for any of them.
pub fn v3_index() -> &'static Value {
    &v3_cache().index
}

/// `GET /openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`; `None` when not served.
pub fn v3_document(group: &str, version: &str) -> Option<&'static Document> {
    v3_cache()
        .docs
        .iter()
        .find(|(g, v, _)| *g == group && *v == version)
        .map(|(_, _, d)| d)
}

/// Like [`v3_document`], by the index key / URL tail (`api/v1`, `apis/apps/v1`, an optional
/// leading `/` is ignored).
pub fn v3_document_by_path(path: &str) -> Option<&'static Document> {
    let path = path.trim_start_matches('/');
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["api", v] => v3_document("", v),
        ["apis", g, v] => v3_document(g, v),
        _ => None,
    }
}

/// `GET /openapi/v2` (JSON): one Swagger 2.0 document for every served resource.
pub fn v2_document() -> &'static Document {
    V2.get_or_init(|| Document::new(&build_v2_document(provider())))
}

/// The v2 document as a tree, built afresh (for its protobuf form, which is cached instead).
pub fn v2_tree() -> Value {
    build_v2_document(provider())
}

/// A stable hash of a document: upper-case hex SHA-512 of its JSON serialization (the form
/// upstream uses in `serverRelativeURL`).
pub fn document_hash(doc: &Value) -> String {
    hash_bytes(&serde_json::to_vec(doc).unwrap_or_default())
}

fn hash_bytes(bytes: &[u8]) -> String {
    hex::encode_upper(Sha512::digest(bytes))
}

/// The index key of a group-version: `api/v1` or `apis/<group>/<version>`.
pub fn v3_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Builds the `/openapi/v3` index from `(group, version, hash)` triples.
pub fn build_v3_index<'a>(docs: impl Iterator<Item = (&'a str, &'a str, &'a str)>) -> Value {
    let mut paths = Map::new();
    for (g, v, hash) in docs {
        let key = v3_path(g, v);
        paths.insert(
            key.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}") }),
        );
    }
    json!({ "paths": paths })
}

// ---------------------------------------------------------------------------------------------
// Kinds → k8s-openapi types

macro_rules! kind_table {
    ($($g:literal $v:literal $k:literal => $t:ty;)*) => {
        /// Every kind with a schema: (group, version, kind).
        const KNOWN_KINDS: &[(&str, &str, &str)] = &[$(($g, $v, $k)),*];

        /// Adds the schema of a kind (and everything it references) to `gen` and returns its
        /// definition name.
        fn add_kind(gen: &mut SchemaGenerator, group: &str, version: &str, kind: &str) -> Option<String> {
            match (group, version, kind) {
                $(($g, $v, $k) => {
                    gen.subschema_for::<$t>();
                    Some(<$t as JsonSchema>::schema_name().into_owned())
                })*
                _ => None,
            }
        }

        /// The definition name of a kind, without generating anything.
        fn kind_schema_name(group: &str, version: &str, kind: &str) -> Option<String> {
            match (group, version, kind) {
                $(($g, $v, $k) => Some(<$t as JsonSchema>::schema_name().into_owned()),)*
                _ => None,
            }
        }
    };
}

kind_table! {
    "" "v1" "Binding" => api::core::v1::Binding;
    "" "v1" "ConfigMap" => api::core::v1::ConfigMap;
    "" "v1" "Endpoints" => api::core::v1::Endpoints;
    "" "v1" "Event" => api::core::v1::Event;
    "" "v1" "LimitRange" => api::core::v1::LimitRange;
    "" "v1" "Namespace" => api::core::v1::Namespace;
    "" "v1" "Node" => api::core::v1::Node;
    "" "v1" "PersistentVolumeClaim" => api::core::v1::PersistentVolumeClaim;
    "" "v1" "PersistentVolume" => api::core::v1::PersistentVolume;
    "" "v1" "Pod" => api::core::v1::Pod;
    "" "v1" "PodTemplate" => api::core::v1::PodTemplate;
    "" "v1" "ReplicationController" => api::core::v1::ReplicationController;
    "" "v1" "ResourceQuota" => api::core::v1::ResourceQuota;
    "" "v1" "Secret" => api::core::v1::Secret;
    "" "v1" "ServiceAccount" => api::core::v1::ServiceAccount;
    "" "v1" "Service" => api::core::v1::Service;
    "admissionregistration.k8s.io" "v1" "MutatingWebhookConfiguration" => api::admissionregistration::v1::MutatingWebhookConfiguration;
    "admissionregistration.k8s.io" "v1" "ValidatingWebhookConfiguration" => api::admissionregistration::v1::ValidatingWebhookConfiguration;
    "admissionregistration.k8s.io" "v1" "ValidatingAdmissionPolicy" => api::admissionregistration::v1::ValidatingAdmissionPolicy;
    "admissionregistration.k8s.io" "v1" "ValidatingAdmissionPolicyBinding" => api::admissionregistration::v1::ValidatingAdmissionPolicyBinding;
    "apiextensions.k8s.io" "v1" "CustomResourceDefinition" => k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    "apps" "v1" "ControllerRevision" => api::apps::v1::ControllerRevision;
    "apps" "v1" "DaemonSet" => api::apps::v1::DaemonSet;
    "apps" "v1" "Deployment" => api::apps::v1::Deployment;
    "apps" "v1" "ReplicaSet" => api::apps::v1::ReplicaSet;
    "apps" "v1" "StatefulSet" => api::apps::v1::StatefulSet;
    "authentication.k8s.io" "v1" "SelfSubjectReview" => api::authentication::v1::SelfSubjectReview;
    "authentication.k8s.io" "v1" "TokenReview" => api::authentication::v1::TokenReview;
    "authentication.k8s.io" "v1" "TokenRequest" => api::authentication::v1::TokenRequest;
    "authorization.k8s.io" "v1" "SelfSubjectAccessReview" => api::authorization::v1::SelfSubjectAccessReview;
    "authorization.k8s.io" "v1" "SubjectAccessReview" => api::authorization::v1::SubjectAccessReview;
    "autoscaling" "v1" "Scale" => api::autoscaling::v1::Scale;
    "autoscaling" "v1" "HorizontalPodAutoscaler" => api::autoscaling::v1::HorizontalPodAutoscaler;
    "autoscaling" "v2" "HorizontalPodAutoscaler" => api::autoscaling::v2::HorizontalPodAutoscaler;
    "batch" "v1" "CronJob" => api::batch::v1::CronJob;
    "batch" "v1" "Job" => api::batch::v1::Job;
    "coordination.k8s.io" "v1" "Lease" => api::coordination::v1::Lease;
    "discovery.k8s.io" "v1" "EndpointSlice" => api::discovery::v1::EndpointSlice;
    "events.k8s.io" "v1" "Event" => api::events::v1::Event;
    "networking.k8s.io" "v1" "IngressClass" => api::networking::v1::IngressClass;
    "networking.k8s.io" "v1" "Ingress" => api::networking::v1::Ingress;
    "networking.k8s.io" "v1" "NetworkPolicy" => api::networking::v1::NetworkPolicy;
    "policy" "v1" "Eviction" => api::policy::v1::Eviction;
    "policy" "v1" "PodDisruptionBudget" => api::policy::v1::PodDisruptionBudget;
    "rbac.authorization.k8s.io" "v1" "ClusterRoleBinding" => api::rbac::v1::ClusterRoleBinding;
    "rbac.authorization.k8s.io" "v1" "ClusterRole" => api::rbac::v1::ClusterRole;
    "rbac.authorization.k8s.io" "v1" "RoleBinding" => api::rbac::v1::RoleBinding;
    "rbac.authorization.k8s.io" "v1" "Role" => api::rbac::v1::Role;
    "scheduling.k8s.io" "v1" "PriorityClass" => api::scheduling::v1::PriorityClass;
    "storage.k8s.io" "v1" "StorageClass" => api::storage::v1::StorageClass;
    "storage.k8s.io" "v1" "CSIDriver" => api::storage::v1::CSIDriver;
    "storage.k8s.io" "v1" "CSINode" => api::storage::v1::CSINode;
    "storage.k8s.io" "v1" "CSIStorageCapacity" => api::storage::v1::CSIStorageCapacity;
    "storage.k8s.io" "v1" "VolumeAttachment" => api::storage::v1::VolumeAttachment;
    "node.k8s.io" "v1" "RuntimeClass" => api::node::v1::RuntimeClass;
    "certificates.k8s.io" "v1" "CertificateSigningRequest" => api::certificates::v1::CertificateSigningRequest;
    "flowcontrol.apiserver.k8s.io" "v1" "FlowSchema" => api::flowcontrol::v1::FlowSchema;
    "flowcontrol.apiserver.k8s.io" "v1" "PriorityLevelConfiguration" => api::flowcontrol::v1::PriorityLevelConfiguration;
    "apiregistration.k8s.io" "v1" "APIService" => k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
    "authorization.k8s.io" "v1" "SelfSubjectRulesReview" => api::authorization::v1::SelfSubjectRulesReview;
}

type Gvk = (&'static str, &'static str, &'static str);

/// The kind with a schema for `(group, version, kind)`; when the registry names a kind under
/// another group (e.g. `Eviction` with the parent's group) and exactly one known kind has that
/// name, that one.
fn resolve_kind(group: &str, version: &str, kind: &str) -> Option<Gvk> {
    if let Some(k) = KNOWN_KINDS
        .iter()
        .find(|(g, v, k)| *g == group && *v == version && *k == kind)
    {
        return Some(*k);
    }
    let mut by_name = KNOWN_KINDS.iter().filter(|(_, _, k)| *k == kind);
    match (by_name.next(), by_name.next()) {
        (Some(k), None) => Some(*k),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Schemas

const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// OpenAPI 3.0: `#/components/schemas/…`, request bodies, response content maps.
    V3,
    /// Swagger 2.0: `#/definitions/…`, body parameters, `consumes`/`produces`.
    V2,
}

impl Flavor {
    fn ref_to(self, name: &str) -> Value {
        match self {
            Flavor::V3 => json!({ "$ref": format!("#/components/schemas/{name}") }),
            Flavor::V2 => json!({ "$ref": format!("#/definitions/{name}") }),
        }
    }

    fn generator(self) -> SchemaGenerator {
        let settings = match self {
            Flavor::V3 => SchemaSettings::openapi3(),
            Flavor::V2 => {
                SchemaSettings::draft07().with(|s| s.definitions_path = "/definitions".into())
            }
        };
        settings.with(|s| s.meta_schema = None).into_generator()
    }
}

fn gvk_ext(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

/// Collects the definitions for a set of resources: each served kind, its list kind, the kinds
/// of its subresources, and the common meta types operations reference.
fn build_definitions(
    flavor: Flavor,
    resources: &[&'static ResourceInfo],
    patch_meta: Option<PatchMetaProvider>,
) -> Map<String, Value> {
    let mut gen = flavor.generator();
    let mut kinds: Vec<(String, Gvk)> = Vec::new();
    let mut lists: Vec<(String, String, Gvk)> = Vec::new();
    let remember = |gen: &mut SchemaGenerator, gvk: Gvk, kinds: &mut Vec<(String, Gvk)>| {
        if let Some(name) = add_kind(gen, gvk.0, gvk.1, gvk.2) {
            if !kinds.iter().any(|(n, _)| *n == name) {
                kinds.push((name, gvk));
            }
        }
    };
    for r in resources {
        if let Some(gvk) = resolve_kind(r.group, r.version, r.kind) {
            remember(&mut gen, gvk, &mut kinds);
            if r.verbs.contains(&"list") {
                if let Some(name) = kind_schema_name(gvk.0, gvk.1, gvk.2) {
                    lists.push((name.clone(), format!("{name}List"), gvk));
                }
            }
        }
        for s in r.subresources {
            let (g, v, k) = subresource_kind(r, s);
            if let Some(gvk) = resolve_kind(g, v, k) {
                remember(&mut gen, gvk, &mut kinds);
            }
        }
    }
    gen.subschema_for::<meta::DeleteOptions>();
    gen.subschema_for::<meta::Status>();
    gen.subschema_for::<meta::Patch>();
    if !lists.is_empty() {
        gen.subschema_for::<meta::ListMeta>();
    }
    let mut defs = gen.take_definitions(true);
    // apiextensions' JSON (a CRD schema's `default`, `enum` items, `example`) is any value;
    // k8s-openapi types it as an object, upstream publishes it as preserving unknown fields.
    if let Some(Value::Object(o)) =
        defs.get_mut("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON")
    {
        o.remove("type");
        o.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
    }

    for (name, (g, v, k)) in &kinds {
        if let Some(Value::Object(o)) = defs.get_mut(name) {
            o.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([gvk_ext(g, v, k)]),
            );
        }
    }
    for (item, list, (g, v, k)) in &lists {
        defs.insert(list.clone(), list_schema(flavor, item, (g, v, k)));
    }
    // DeleteOptions is accepted by every served group-version, Status answers for all.
    if let Some(Value::Object(o)) = defs.get_mut(DELETE_OPTIONS) {
        let gvks: Vec<Value> = registry::groups()
            .into_iter()
            .map(|(g, v)| gvk_ext(g, v, "DeleteOptions"))
            .collect();
        o.insert("x-kubernetes-group-version-kind".into(), Value::Array(gvks));
    }
    if let Some(Value::Object(o)) = defs.get_mut(STATUS) {
        o.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([gvk_ext("", "v1", "Status")]),
        );
    }
    if let Some(p) = patch_meta {
        apply_patch_meta(&mut defs, p);
    }
    defs.sort_keys();
    defs
}

fn list_schema(flavor: Flavor, item: &str, (g, v, k): Gvk) -> Value {
    json!({
        "description": format!("{k}List is a list of {k} objects."),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object.",
                "type": "string",
            },
            "items": {
                "description": format!("List of {k} objects."),
                "type": "array",
                "items": flavor.ref_to(item),
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents.",
                "type": "string",
            },
            "metadata": {
                "allOf": [flavor.ref_to(LIST_META)],
                "description": "Standard list metadata.",
            },
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": [gvk_ext(g, v, &format!("{k}List"))],
    })
}

/// Adds the provider's extensions to every property of every definition. A bare `$ref`
/// property is wrapped in `allOf` first so the extensions are not siblings of `$ref`.
fn apply_patch_meta(defs: &mut Map<String, Value>, provider: PatchMetaProvider) {
    for (name, def) in defs.iter_mut() {
        let Some(Value::Object(props)) = def.get_mut("properties") else {
            continue;
        };
        for (field, prop) in props.iter_mut() {
            let Some(meta) = provider(name, field) else {
                continue;
            };
            let Value::Object(p) = prop else {
                continue;
            };
            if let Some(r) = p.remove("$ref") {
                p.insert("allOf".into(), json!([{ "$ref": r }]));
            }
            if let Some(s) = meta.strategy {
                p.insert("x-kubernetes-patch-strategy".into(), s.into());
            }
            if let Some(k) = meta.merge_key {
                p.insert("x-kubernetes-patch-merge-key".into(), k.into());
            }
            if let Some(t) = meta.list_type {
                p.insert("x-kubernetes-list-type".into(), t.into());
            }
            if !meta.list_map_keys.is_empty() {
                p.insert(
                    "x-kubernetes-list-map-keys".into(),
                    Value::Array(meta.list_map_keys.iter().map(|k| (*k).into()).collect()),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Paths

#[derive(Debug, Clone, Copy)]
enum PType {
    Str,
    Bool,
    Int,
}

struct QueryParam {
    name: &'static str,
    ty: PType,
    description: &'static str,
    unique_items: bool,
}

const fn q(name: &'static str, ty: PType, description: &'static str) -> QueryParam {
    QueryParam {
        name,
        ty,
        description,
        unique_items: false,
    }
}

const ALLOW_WATCH_BOOKMARKS: QueryParam = q(
    "allowWatchBookmarks",
    PType::Bool,
    "Asks for watch events of type BOOKMARK; servers may ignore it.",
);
const CONTINUE: QueryParam = q(
    "continue",
    PType::Str,
    "The continue token of a previous paginated list call, to fetch the next page.",
);
const DRY_RUN: QueryParam = QueryParam {
    name: "dryRun",
    ty: PType::Str,
    description: "When present, modifications are not persisted. Valid value: All.",
    unique_items: true,
};
const FIELD_MANAGER: QueryParam = q(
    "fieldManager",
    PType::Str,
    "Name of the actor making the change, recorded in managedFields.",
);
const FIELD_SELECTOR: QueryParam = q(
    "fieldSelector",
    PType::Str,
    "Restricts the returned objects by their fields. Defaults to everything.",
);
const FIELD_VALIDATION: QueryParam = q(
    "fieldValidation",
    PType::Str,
    "How the server treats unknown or duplicate fields in the request: Ignore, Warn (default) or Strict (reject the request).",
);
const FORCE: QueryParam = q(
    "force",
    PType::Bool,
    "Re-acquires fields owned by other managers on conflicts. Only for apply requests.",
);
const GRACE_PERIOD: QueryParam = q(
    "gracePeriodSeconds",
    PType::Int,
    "Seconds before the object is deleted; zero means immediately.",
);
const LABEL_SELECTOR: QueryParam = q(
    "labelSelector",
    PType::Str,
    "Restricts the returned objects by their labels. Defaults to everything.",
);
const LIMIT: QueryParam = q(
    "limit",
    PType::Int,
    "Maximum number of items to return; more are available through the continue token.",
);
const ORPHAN_DEPENDENTS: QueryParam = q(
    "orphanDependents",
    PType::Bool,
    "Deprecated: use propagationPolicy. Whether dependents are orphaned.",
);
const PROPAGATION_POLICY: QueryParam = q(
    "propagationPolicy",
    PType::Str,
    "Garbage collection of dependents: Orphan, Background or Foreground.",
);
const RESOURCE_VERSION: QueryParam = q(
    "resourceVersion",
    PType::Str,
    "Constrains which resource versions the request may be served from.",
);
const RESOURCE_VERSION_MATCH: QueryParam = q(
    "resourceVersionMatch",
    PType::Str,
    "How resourceVersion is applied to list calls: Exact or NotOlderThan.",
);
const SEND_INITIAL_EVENTS: QueryParam = q(
    "sendInitialEvents",
    PType::Bool,
    "With watch=true, starts the stream with synthetic ADDED events for the current state.",
);
const TIMEOUT_SECONDS: QueryParam = q(
    "timeoutSeconds",
    PType::Int,
    "Timeout of the list/watch call, regardless of activity.",
);
const WATCH: QueryParam = q(
    "watch",
    PType::Bool,
    "Watch for changes to the described resources and stream add, update and remove notifications.",
);
const PRETTY: QueryParam = q(
    "pretty",
    PType::Str,
    "If 'true', the output is pretty printed.",
);

const LIST_PARAMS: &[QueryParam] = &[
    ALLOW_WATCH_BOOKMARKS,
    CONTINUE,
    FIELD_SELECTOR,
    LABEL_SELECTOR,
    LIMIT,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
    WATCH,
];
const WRITE_PARAMS: &[QueryParam] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
const PATCH_PARAMS: &[QueryParam] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE];
const DELETE_PARAMS: &[QueryParam] =
    &[DRY_RUN, GRACE_PERIOD, ORPHAN_DEPENDENTS, PROPAGATION_POLICY];
const DELETE_COLLECTION_PARAMS: &[QueryParam] = &[
    CONTINUE,
    DRY_RUN,
    FIELD_SELECTOR,
    GRACE_PERIOD,
    LABEL_SELECTOR,
    LIMIT,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
];
const LOG_PARAMS: &[QueryParam] = &[
    q(
        "container",
        PType::Str,
        "The container to stream logs of; defaults to the only container.",
    ),
    q("follow", PType::Bool, "Follow the log stream of the pod."),
    q(
        "insecureSkipTLSVerifyBackend",
        PType::Bool,
        "Skip verifying the serving certificate of the kubelet.",
    ),
    q(
        "limitBytes",
        PType::Int,
        "Number of bytes to read before ending the log output.",
    ),
    q(
        "previous",
        PType::Bool,
        "Return the logs of the previous instance of the container.",
    ),
    q(
        "sinceSeconds",
        PType::Int,
        "Show logs newer than this many seconds.",
    ),
    q(
        "stream",
        PType::Str,
        "Which stream to return: All, Stdout or Stderr.",
    ),
    q(
        "tailLines",
        PType::Int,
        "Number of lines from the end of the log to show.",
    ),
    q(
        "timestamps",
        PType::Bool,
        "Prefix every line of log output with an RFC3339 timestamp.",
    ),
];
const STREAM_PARAMS: &[QueryParam] = &[
    q(
        "command",
        PType::Str,
        "The command to execute, one argument per parameter.",
    ),
    q(
        "container",
        PType::Str,
        "The container to run in; defaults to the only container.",
    ),
    q(
        "stderr",
        PType::Bool,
        "Redirect the standard error stream of the command.",
    ),
    q(
        "stdin",
        PType::Bool,
        "Redirect the standard input stream of the command.",
    ),
    q(
        "stdout",
        PType::Bool,
        "Redirect the standard output stream of the command.",
    ),
    q("tty", PType::Bool, "Allocate a terminal for the command."),
];
const ATTACH_PARAMS: &[QueryParam] = &[
    q(
        "container",
        PType::Str,
        "The container to attach to; defaults to the only container.",
    ),
    q(
        "stderr",
        PType::Bool,
        "Stream the standard error of the container.",
    ),
    q(
        "stdin",
        PType::Bool,
        "Pass standard input to the container.",
    ),
    q(
        "stdout",
        PType::Bool,
        "Stream the standard output of the container.",
    ),
    q(
        "tty",
        PType::Bool,
        "The container was started with a terminal.",
    ),
];
const PORTFORWARD_PARAMS: &[QueryParam] = &[q(
    "ports",
    PType::Int,
    "The ports to forward, one per parameter.",
)];
const PROXY_PARAMS: &[QueryParam] = &[q("path", PType::Str, "The path to proxy the request to.")];

const OBJECT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const LIST_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
const APPLY_PATCH: &str = "application/apply-patch+yaml";
const JSON_PATCH: &str = "application/json-patch+json";
const MERGE_PATCH: &str = "application/merge-patch+json";
const STRATEGIC_PATCH: &str = "application/strategic-merge-patch+json";

fn param_json(flavor: Flavor, p: &QueryParam, location: &str, required: bool) -> Value {
    let ty = match p.ty {
        PType::Str => "string",
        PType::Bool => "boolean",
        PType::Int => "integer",
    };
    let mut m = Map::new();
    m.insert("name".into(), p.name.into());
    m.insert("in".into(), location.into());
    m.insert("description".into(), p.description.into());
    if required {
        m.insert("required".into(), true.into());
    }
    match flavor {
        Flavor::V3 => {
            let mut schema = Map::new();
            schema.insert("type".into(), ty.into());
            if p.unique_items {
                schema.insert("uniqueItems".into(), true.into());
            }
            m.insert("schema".into(), Value::Object(schema));
        }
        Flavor::V2 => {
            m.insert("type".into(), ty.into());
            if p.unique_items {
                m.insert("uniqueItems".into(), true.into());
            }
        }
    }
    Value::Object(m)
}

/// What a response carries.
#[derive(Clone)]
enum Payload {
    /// A schema definition, served in the object content types.
    Def(String),
    /// A list definition, served in the list content types (including watch streams).
    ListDef(String),
    /// Plain text (logs, connect streams).
    Text,
}

/// What a request body carries.
enum BodyKind {
    None,
    Def(String, bool),
    Patch,
}

struct Op {
    method: &'static str,
    action: &'static str,
    op_id: String,
    description: String,
    gvk: Gvk,
    params: &'static [QueryParam],
    body: BodyKind,
    responses: Vec<(&'static str, Payload)>,
}

struct PathCtx {
    flavor: Flavor,
    /// Whether PATCH accepts `application/strategic-merge-patch+json` (only with patch metadata).
    strategic: bool,
    /// `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
    tag: String,
    /// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`.
    id_prefix: String,
}

fn group_words(group: &str) -> Vec<String> {
    let g = if group.is_empty() {
        "core"
    } else {
        group.strip_suffix(".k8s.io").unwrap_or(group)
    };
    g.split(['.', '-']).map(str::to_string).collect()
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

impl PathCtx {
    fn new(flavor: Flavor, strategic: bool, group: &str, version: &str) -> PathCtx {
        let words = group_words(group);
        let mut tag = String::new();
        for (i, w) in words.iter().enumerate() {
            tag.push_str(&if i == 0 { w.clone() } else { capitalize(w) });
        }
        let id_prefix: String =
            words.iter().map(|w| capitalize(w)).collect::<String>() + &capitalize(version);
        PathCtx {
            flavor,
            strategic,
            tag: format!("{tag}_{version}"),
            id_prefix,
        }
    }

    fn response(&self, payload: &Payload, description: &str) -> Value {
        let (types, schema): (&[&str], Value) = match payload {
            Payload::Def(n) => (OBJECT_TYPES, self.flavor.ref_to(n)),
            Payload::ListDef(n) => (LIST_TYPES, self.flavor.ref_to(n)),
            Payload::Text => (&["*/*"], json!({ "type": "string" })),
        };
        match self.flavor {
            Flavor::V3 => {
                let content: Map<String, Value> = types
                    .iter()
                    .map(|t| ((*t).to_string(), json!({ "schema": schema })))
                    .collect();
                json!({ "description": description, "content": content })
            }
            Flavor::V2 => json!({ "description": description, "schema": schema }),
        }
    }

    fn operation(&self, op: &Op) -> Value {
        let f = self.flavor;
        let mut m = Map::new();
        m.insert("tags".into(), json!([self.tag]));
        m.insert("description".into(), op.description.clone().into());
        m.insert("operationId".into(), op.op_id.clone().into());
        let mut params: Vec<Value> = op
            .params
            .iter()
            .map(|p| param_json(f, p, "query", false))
            .collect();
        let patch_types: Vec<&str> = if self.strategic {
            vec![APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH]
        } else {
            vec![APPLY_PATCH, JSON_PATCH, MERGE_PATCH]
        };
        let body: Option<(Vec<&str>, Value, bool)> = match &op.body {
            BodyKind::None => None,
            BodyKind::Def(n, required) => Some((vec!["*/*"], f.ref_to(n), *required)),
            BodyKind::Patch => Some((patch_types, f.ref_to(PATCH), true)),
        };
        match (f, body) {
            (_, None) => {}
            (Flavor::V3, Some((types, schema, required))) => {
                let content: Map<String, Value> = types
                    .iter()
                    .map(|t| ((*t).to_string(), json!({ "schema": schema })))
                    .collect();
                let mut rb = Map::new();
                rb.insert("content".into(), Value::Object(content));
                if required {
                    rb.insert("required".into(), true.into());
                }
                m.insert("requestBody".into(), Value::Object(rb));
            }
            (Flavor::V2, Some((types, schema, required))) => {
                params.insert(
                    0,
                    json!({ "name": "body", "in": "body", "required": required, "schema": schema }),
                );
                m.insert("consumes".into(), json!(types));
            }
        }
        if f == Flavor::V2 {
            let produces: &[&str] = match op.responses.first() {
                Some((_, Payload::ListDef(_))) => LIST_TYPES,
                Some((_, Payload::Text)) => &["*/*"],
                _ => OBJECT_TYPES,
            };
            m.insert("produces".into(), json!(produces));
            m.insert("schemes".into(), json!(["https"]));
        }
        if !params.is_empty() {
            m.insert("parameters".into(), Value::Array(params));
        }
        let mut responses = Map::new();
        for (code, payload) in &op.responses {
            let description = match *code {
                "200" => "OK",
                "201" => "Created",
                "202" => "Accepted",
                _ => "",
            };
            responses.insert((*code).into(), self.response(payload, description));
        }
        responses.insert("401".into(), json!({ "description": "Unauthorized" }));
        m.insert("responses".into(), Value::Object(responses));
        m.insert("x-kubernetes-action".into(), op.action.into());
        let (g, v, k) = op.gvk;
        m.insert("x-kubernetes-group-version-kind".into(), gvk_ext(g, v, k));
        Value::Object(m)
    }
}

/// Adds the operations of one resource (collection, item, subresources) to `paths`.
fn resource_paths(ctx: &PathCtx, r: &ResourceInfo, paths: &mut Map<String, Value>) {
    let Some(gvk) = resolve_kind(r.group, r.version, r.kind) else {
        return;
    };
    let Some(def) = kind_schema_name(gvk.0, gvk.1, gvk.2) else {
        return;
    };
    resource_paths_as(ctx, r, gvk, def, paths);
}

/// [`resource_paths`] with the kind and its definition name given (custom resources).
fn resource_paths_as(
    ctx: &PathCtx,
    r: &ResourceInfo,
    gvk: Gvk,
    def: String,
    paths: &mut Map<String, Value>,
) {
    let list_def = format!("{def}List");
    let prefix = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let scoped = if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}")
    } else {
        prefix.clone()
    };
    let ns_word = if r.namespaced { "Namespaced" } else { "" };
    let idp = &ctx.id_prefix;
    let kind = r.kind;
    let has = |v: &str| r.verbs.contains(&v);
    let path_params = |flavor: Flavor, with_name: bool| -> Value {
        let mut ps = Vec::new();
        if with_name {
            let name = q("name", PType::Str, "Name of the object.");
            ps.push(param_json(flavor, &name, "path", true));
        }
        if r.namespaced {
            let ns = q(
                "namespace",
                PType::Str,
                "Object name and auth scope, such as for teams and projects.",
            );
            ps.push(param_json(flavor, &ns, "path", true));
        }
        ps.push(param_json(flavor, &PRETTY, "query", false));
        Value::Array(ps)
    };

    // Collection.
    let mut collection_ops = Vec::new();
    if has("list") {
        collection_ops.push(Op {
            method: "get",
            action: "list",
            op_id: format!("list{idp}{ns_word}{kind}"),
            description: format!("list or watch objects of kind {kind}"),
            gvk,
            params: LIST_PARAMS,
            body: BodyKind::None,
            responses: vec![("200", Payload::ListDef(list_def.clone()))],
        });
    }
    if has("create") {
        collection_ops.push(Op {
            method: "post",
            action: "post",
            op_id: format!("create{idp}{ns_word}{kind}"),
            description: format!("create a {kind}"),
            gvk,
            params: WRITE_PARAMS,
            body: BodyKind::Def(def.clone(), true),
            responses: vec![
                ("200", Payload::Def(def.clone())),
                ("201", Payload::Def(def.clone())),
                ("202", Payload::Def(def.clone())),
            ],
        });
    }
    if has("deletecollection") {
        collection_ops.push(Op {
            method: "delete",
            action: "deletecollection",
            op_id: format!("deleteCollection{idp}{ns_word}{kind}"),
            description: format!("delete collection of {kind}"),
            gvk,
            params: DELETE_COLLECTION_PARAMS,
            body: BodyKind::Def(DELETE_OPTIONS.into(), false),
            responses: vec![("200", Payload::Def(STATUS.into()))],
        });
    }
    insert_path(
        ctx,
        paths,
        format!("{scoped}/{}", r.plural),
        &collection_ops,
        || path_params(ctx.flavor, false),
    );
    if r.namespaced && has("list") {
        let all = [Op {
            method: "get",
            action: "list",
            op_id: format!("list{idp}{kind}ForAllNamespaces"),
            description: format!("list or watch objects of kind {kind}"),
            gvk,
            params: LIST_PARAMS,
            body: BodyKind::None,
            responses: vec![("200", Payload::ListDef(list_def.clone()))],
        }];
        insert_path(ctx, paths, format!("{prefix}/{}", r.plural), &all, || {
            Value::Array(vec![param_json(ctx.flavor, &PRETTY, "query", false)])
        });
    }

    // Item.
    let item = format!("{scoped}/{}/{{name}}", r.plural);
    let mut item_ops = Vec::new();
    if has("get") {
        item_ops.push(Op {
            method: "get",
            action: "get",
            op_id: format!("read{idp}{ns_word}{kind}"),
            description: format!("read the specified {kind}"),
            gvk,
            params: &[],
            body: BodyKind::None,
            responses: vec![("200", Payload::Def(def.clone()))],
        });
    }
    if has("update") {
        item_ops.push(Op {
            method: "put",
            action: "put",
            op_id: format!("replace{idp}{ns_word}{kind}"),
            description: format!("replace the specified {kind}"),
            gvk,
            params: WRITE_PARAMS,
            body: BodyKind::Def(def.clone(), true),
            responses: vec![
                ("200", Payload::Def(def.clone())),
                ("201", Payload::Def(def.clone())),
            ],
        });
    }
    if has("patch") {
        item_ops.push(Op {
            method: "patch",
            action: "patch",
            op_id: format!("patch{idp}{ns_word}{kind}"),
            description: format!("partially update the specified {kind}"),
            gvk,
            params: PATCH_PARAMS,
            body: BodyKind::Patch,
            responses: vec![
                ("200", Payload::Def(def.clone())),
                ("201", Payload::Def(def.clone())),
            ],
        });
    }
    if has("delete") {
        item_ops.push(Op {
            method: "delete",
            action: "delete",
            op_id: format!("delete{idp}{ns_word}{kind}"),
            description: format!("delete a {kind}"),
            gvk,
            params: DELETE_PARAMS,
            body: BodyKind::Def(DELETE_OPTIONS.into(), false),
            responses: vec![
                ("200", Payload::Def(STATUS.into())),
                ("202", Payload::Def(STATUS.into())),
            ],
        });
    }
    insert_path(ctx, paths, item.clone(), &item_ops, || {
        path_params(ctx.flavor, true)
    });

    // Subresources.
    for s in r.subresources {
        let ops = subresource_ops(ctx, r, s, ns_word);
        insert_path(ctx, paths, format!("{item}/{}", s.name), &ops, || {
            path_params(ctx.flavor, true)
        });
    }
}

fn subresource_ops(ctx: &PathCtx, r: &ResourceInfo, s: &Subresource, ns_word: &str) -> Vec<Op> {
    let idp = &ctx.id_prefix;
    let kind = r.kind;
    let sub = capitalize(s.name);
    let (g, v, k) = subresource_kind(r, s);
    let resolved = resolve_kind(g, v, k);
    let def = resolved.and_then(|(g, v, k)| kind_schema_name(g, v, k));
    let mut ops = Vec::new();
    // Streams and proxies: connect operations with text responses.
    let connect_params: Option<&'static [QueryParam]> = match s.name {
        "exec" => Some(STREAM_PARAMS),
        "attach" => Some(ATTACH_PARAMS),
        "portforward" => Some(PORTFORWARD_PARAMS),
        "proxy" => Some(PROXY_PARAMS),
        _ if def.is_none() => Some(&[]),
        _ => None,
    };
    if let Some(params) = connect_params {
        let gvk = resolved.unwrap_or((g, v, k));
        for verb in s.verbs {
            let (method, m_word) = match *verb {
                "get" => ("get", "Get"),
                "create" => ("post", "Post"),
                "update" => ("put", "Put"),
                "patch" => ("patch", "Patch"),
                "delete" => ("delete", "Delete"),
                _ => continue,
            };
            ops.push(Op {
                method,
                action: "connect",
                op_id: format!("connect{idp}{m_word}{ns_word}{kind}{sub}"),
                description: format!(
                    "connect {} requests to {} of {kind}",
                    method.to_uppercase(),
                    s.name
                ),
                gvk,
                params,
                body: BodyKind::None,
                responses: vec![("200", Payload::Text)],
            });
        }
        return ops;
    }
    let (Some(gvk), Some(def)) = (resolved, def) else {
        return ops;
    };
    if s.name == "log" {
        if s.verbs.contains(&"get") {
            ops.push(Op {
                method: "get",
                action: "get",
                op_id: format!("read{idp}{ns_word}{kind}Log"),
                description: format!("read log of the specified {kind}"),
                gvk,
                params: LOG_PARAMS,
                body: BodyKind::None,
                responses: vec![("200", Payload::Text)],
            });
        }
        return ops;
    }
    let what = format!("{} of the specified {kind}", s.name);
    for verb in s.verbs {
        let op = match *verb {
            "get" => Op {
                method: "get",
                action: "get",
                op_id: format!("read{idp}{ns_word}{kind}{sub}"),
                description: format!("read {what}"),
                gvk,
                params: &[],
                body: BodyKind::None,
                responses: vec![("200", Payload::Def(def.clone()))],
            },
            "update" => Op {
                method: "put",
                action: "put",
                op_id: format!("replace{idp}{ns_word}{kind}{sub}"),
                description: format!("replace {what}"),
                gvk,
                params: WRITE_PARAMS,
                body: BodyKind::Def(def.clone(), true),
                responses: vec![
                    ("200", Payload::Def(def.clone())),
                    ("201", Payload::Def(def.clone())),
                ],
            },
            "patch" => Op {
                method: "patch",
                action: "patch",
                op_id: format!("patch{idp}{ns_word}{kind}{sub}"),
                description: format!("partially update {what}"),
                gvk,
                params: PATCH_PARAMS,
                body: BodyKind::Patch,
                responses: vec![
                    ("200", Payload::Def(def.clone())),
                    ("201", Payload::Def(def.clone())),
                ],
            },
            "create" => Op {
                method: "post",
                action: "post",
                op_id: format!("create{idp}{ns_word}{kind}{sub}"),
                description: format!("create {what}"),
                gvk,
                params: WRITE_PARAMS,
                body: BodyKind::Def(def.clone(), true),
                responses: vec![
                    ("200", Payload::Def(def.clone())),
                    ("201", Payload::Def(def.clone())),
                    ("202", Payload::Def(def.clone())),
                ],
            },
            _ => continue,
        };
        ops.push(op);
    }
    ops
}

fn insert_path(
    ctx: &PathCtx,
    paths: &mut Map<String, Value>,
    path: String,
    ops: &[Op],
    params: impl FnOnce() -> Value,
) {
    if ops.is_empty() {
        return;
    }
    let mut item = Map::new();
    for op in ops {
        item.insert(op.method.into(), ctx.operation(op));
    }
    item.insert("parameters".into(), params());
    paths.insert(path, Value::Object(item));
}

// ---------------------------------------------------------------------------------------------
// Documents

/// Builds (uncached) the OpenAPI 3.0 document of one group-version; `None` when the registry
/// serves nothing there. With `patch_meta`, schemas carry the patch extensions and PATCH
/// operations accept strategic merge patches.
pub fn build_v3_document(
    group: &str,
    version: &str,
    patch_meta: Option<PatchMetaProvider>,
) -> Option<Value> {
    let resources: Vec<&'static ResourceInfo> = registry::resources_of(group, version).collect();
    if resources.is_empty() {
        return None;
    }
    let ctx = PathCtx::new(Flavor::V3, patch_meta.is_some(), group, version);
    let mut paths = Map::new();
    for r in &resources {
        resource_paths(&ctx, r, &mut paths);
    }
    let schemas = build_definitions(Flavor::V3, &resources, patch_meta);
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "unversioned" },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "description": "Bearer Token authentication",
                    "name": "authorization",
                    "in": "header",
                },
            },
        },
    }))
}

/// The definition name upstream gives a custom kind: the reversed group, then version and
/// kind (`stable.example.com` `v1` `CronTab` → `com.example.stable.v1.CronTab`).
pub fn custom_definition_name(group: &str, version: &str, kind: &str) -> String {
    let rev: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", rev.join("."))
}

/// Builds the OpenAPI 3.0 document of a custom resource group-version: each resource's
/// operations (JSON, merge and apply patches — no strategic merge for custom resources) and
/// each kind's schema from its CRD (`apiVersion`, `kind` and `metadata` as upstream publishes
/// them), plus the meta types the operations reference. A kind without a schema preserves
/// unknown fields.
pub fn build_custom_v3_document(
    group: &str,
    version: &str,
    kinds: &[(&'static ResourceInfo, Option<Value>)],
) -> Value {
    let ctx = PathCtx::new(Flavor::V3, false, group, version);
    let mut gen = Flavor::V3.generator();
    gen.subschema_for::<meta::ObjectMeta>();
    gen.subschema_for::<meta::ListMeta>();
    gen.subschema_for::<meta::DeleteOptions>();
    gen.subschema_for::<meta::Status>();
    gen.subschema_for::<meta::Patch>();
    if kinds.iter().any(|(r, _)| r.subresource("scale").is_some()) {
        gen.subschema_for::<api::autoscaling::v1::Scale>();
    }
    let mut defs = gen.take_definitions(true);
    let mut paths = Map::new();
    for (r, schema) in kinds {
        let gvk: Gvk = (r.group, r.version, r.kind);
        let def = custom_definition_name(r.group, r.version, r.kind);
        resource_paths_as(&ctx, r, gvk, def.clone(), &mut paths);
        let mut s = schema.clone().filter(|s| s.is_object()).unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        if let Some(o) = s.as_object_mut() {
            let props = o.entry("properties").or_insert_with(|| json!({}));
            if let Some(p) = props.as_object_mut() {
                p.insert("apiVersion".into(), json!({
                    "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                    "type": "string",
                }));
                p.insert("kind".into(), json!({
                    "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                    "type": "string",
                }));
                p.insert("metadata".into(), json!({
                    "allOf": [Flavor::V3.ref_to("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")],
                    "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
                }));
            }
            o.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([gvk_ext(r.group, r.version, r.kind)]),
            );
        }
        defs.insert(def.clone(), s);
        defs.insert(format!("{def}List"), list_schema(Flavor::V3, &def, gvk));
    }
    // The status subresource speaks the custom kind itself: its operations are the object's
    // (same body, responses and query parameters — kubectl's field-validation check reads the
    // first PATCH of the kind it meets, status included).
    let status_paths: Vec<String> = paths
        .keys()
        .filter(|p| p.ends_with("/status"))
        .cloned()
        .collect();
    for sp in status_paths {
        let Some(main) = paths.get(sp.trim_end_matches("/status")).cloned() else {
            continue;
        };
        if let Some(Value::Object(item)) = paths.get_mut(&sp) {
            for m in ["get", "put", "patch"] {
                if let (Some(op), Some(Value::Object(from))) = (item.get_mut(m), main.get(m)) {
                    let id = op.get("operationId").cloned();
                    let description = op.get("description").cloned();
                    let mut copy = from.clone();
                    if let Some(id) = id {
                        copy.insert("operationId".into(), id);
                    }
                    if let Some(d) = description {
                        copy.insert("description".into(), d);
                    }
                    *op = Value::Object(copy);
                }
            }
        }
    }
    if let Some(Value::Object(o)) = defs.get_mut(DELETE_OPTIONS) {
        o.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([gvk_ext(group, version, "DeleteOptions")]),
        );
    }
    defs.sort_keys();
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes CRD Swagger", "version": "v0.1.0" },
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "description": "Bearer Token authentication",
                    "name": "authorization",
                    "in": "header",
                },
            },
        },
    })
}

/// Builds (uncached) the Swagger 2.0 document of every served resource.
pub fn build_v2_document(patch_meta: Option<PatchMetaProvider>) -> Value {
    let resources: Vec<&'static ResourceInfo> = registry::RESOURCES.iter().collect();
    let mut paths = Map::new();
    for (g, v) in registry::groups() {
        let ctx = PathCtx::new(Flavor::V2, patch_meta.is_some(), g, v);
        for r in registry::resources_of(g, v) {
            resource_paths(&ctx, r, &mut paths);
        }
    }
    let definitions = build_definitions(Flavor::V2, &resources, patch_meta);
    json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": "unversioned" },
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {
                "type": "apiKey",
                "description": "Bearer Token authentication",
                "name": "authorization",
                "in": "header",
            },
        },
        "security": [{ "BearerToken": [] }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_provider(def: &str, field: &str) -> Option<FieldPatchMeta> {
        let ty = def.rsplit('.').next().unwrap_or(def);
        match (ty, field) {
            ("PodSpec", "containers") => Some(FieldPatchMeta {
                strategy: Some("merge"),
                merge_key: Some("name"),
                list_type: Some("map"),
                list_map_keys: &["name"],
            }),
            ("DeploymentSpec", "strategy") => Some(FieldPatchMeta {
                strategy: Some("retainKeys"),
                ..FieldPatchMeta::default()
            }),
            ("ObjectMeta", "finalizers") => Some(FieldPatchMeta {
                strategy: Some("merge"),
                ..FieldPatchMeta::default()
            }),
            _ => None,
        }
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "$ref" {
                        if let Some(s) = x.as_str() {
                            out.push(s.to_string());
                        }
                    } else {
                        collect_refs(x, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
            _ => {}
        }
    }

    fn assert_refs_resolve(doc: &Value, prefix: &str, defs: &Map<String, Value>) {
        let mut refs = Vec::new();
        collect_refs(doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let name = r
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("ref {r} outside {prefix}"));
            assert!(defs.contains_key(name), "unresolved ref {r}");
        }
    }

    fn param_names(op: &Value) -> Vec<&str> {
        op["parameters"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn index_lists_every_group_version() {
        let idx = build_v3_index(registry::groups().into_iter().map(|(g, v)| (g, v, "ABC")));
        let paths = idx["paths"].as_object().unwrap();
        assert_eq!(paths.len(), registry::groups().len());
        assert_eq!(
            paths["api/v1"]["serverRelativeURL"],
            "/openapi/v3/api/v1?hash=ABC"
        );
        assert_eq!(
            paths["apis/apps/v1"]["serverRelativeURL"],
            "/openapi/v3/apis/apps/v1?hash=ABC"
        );
        for (g, v) in registry::groups() {
            assert!(paths.contains_key(&v3_path(g, v)));
        }
    }

    #[test]
    fn deployment_document_has_patch_with_field_validation() {
        let doc = build_v3_document("apps", "v1", Some(test_provider)).unwrap();
        assert_eq!(doc["openapi"], "3.0.0");
        let item = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
        let patch = &item["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "kind": "Deployment", "version": "v1"})
        );
        assert_eq!(patch["x-kubernetes-action"], "patch");
        let names = param_names(patch);
        for n in ["dryRun", "fieldManager", "fieldValidation", "force"] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        let fv = patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "fieldValidation")
            .unwrap();
        assert_eq!(fv["in"], "query");
        let content = patch["requestBody"]["content"].as_object().unwrap();
        for t in [APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH] {
            assert!(content.contains_key(t), "{t} missing");
        }
        assert_eq!(param_names(item), vec!["name", "namespace", "pretty"]);
        // Every PATCH carrying the Deployment GVK has fieldValidation (kubectl checks whichever
        // it meets first).
        for (path, ops) in doc["paths"].as_object().unwrap() {
            if let Some(p) = ops.get("patch") {
                assert!(param_names(p).contains(&"fieldValidation"), "{path}");
            }
        }
        let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
        assert_eq!(
            scale["patch"]["x-kubernetes-group-version-kind"],
            json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
        );
        assert_eq!(
            scale["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.api.autoscaling.v1.Scale"
        );
        let coll = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"];
        assert_eq!(coll["get"]["x-kubernetes-action"], "list");
        assert!(param_names(&coll["post"]).contains(&"fieldValidation"));
        assert!(doc["paths"]
            .get("/apis/apps/v1/deployments")
            .is_some_and(|p| p.get("get").is_some()));

        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let d = &schemas["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            d["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        assert_eq!(
            d["properties"]["spec"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
        );
        assert_eq!(
            schemas["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"][0]
                ["kind"],
            "DeploymentList"
        );
        for name in [
            "io.k8s.api.core.v1.PodSpec",
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
            "io.k8s.api.autoscaling.v1.Scale",
            DELETE_OPTIONS,
            STATUS,
            PATCH,
        ] {
            assert!(schemas.contains_key(name), "{name} missing");
        }
        let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        let strategy = &schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"];
        assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
        assert!(strategy.get("$ref").is_none());
        assert_eq!(
            strategy["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"
        );
        assert_refs_resolve(&doc, "#/components/schemas/", schemas);
    }

    #[test]
    fn without_provider_no_strategic_merge_is_advertised() {
        let doc = build_v3_document("apps", "v1", None).unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        let content = patch["requestBody"]["content"].as_object().unwrap();
        assert!(!content.contains_key(STRATEGIC_PATCH));
        assert!(content.contains_key(APPLY_PATCH));
        assert!(param_names(patch).contains(&"fieldValidation"));
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert!(containers.get("x-kubernetes-patch-merge-key").is_none());
    }

    #[test]
    fn core_document_paths_and_refs() {
        let doc = build_v3_document("", "v1", Some(test_provider)).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let pod = "/api/v1/namespaces/{namespace}/pods/{name}";
        assert_eq!(
            paths[pod]["patch"]["operationId"],
            "patchCoreV1NamespacedPod"
        );
        assert_eq!(
            paths[&format!("{pod}/status")]["patch"]["x-kubernetes-group-version-kind"]["kind"],
            "Pod"
        );
        let log = &paths[&format!("{pod}/log")]["get"];
        assert!(param_names(log).contains(&"follow"));
        assert!(log["responses"]["200"]["content"]["*/*"]["schema"]["type"] == "string");
        let exec = &paths[&format!("{pod}/exec")];
        assert_eq!(exec["get"]["x-kubernetes-action"], "connect");
        assert_eq!(
            exec["post"]["x-kubernetes-group-version-kind"]["kind"],
            "PodExecOptions"
        );
        assert!(param_names(&exec["get"]).contains(&"command"));
        let binding = &paths[&format!("{pod}/binding")]["post"];
        assert_eq!(
            binding["requestBody"]["content"]["*/*"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Binding"
        );
        let eviction = &paths[&format!("{pod}/eviction")]["post"];
        assert_eq!(
            eviction["x-kubernetes-group-version-kind"],
            json!({"group": "policy", "kind": "Eviction", "version": "v1"})
        );
        // Cluster-scoped kinds have no namespace segment or parameter.
        let node = &paths["/api/v1/nodes/{name}"];
        assert_eq!(param_names(node), vec!["name", "pretty"]);
        assert!(paths.contains_key("/api/v1/nodes/{name}/status"));
        assert!(paths.contains_key("/api/v1/namespaces/{name}/finalize"));
        assert!(!paths.contains_key("/api/v1/namespaces/{namespace}/bindings/{name}"));
        assert!(paths["/api/v1/namespaces/{namespace}/bindings"]
            .get("post")
            .is_some());
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for kind in ["Pod", "Service", "ConfigMap", "Secret", "Namespace", "Node"] {
            let def = &schemas[&format!("io.k8s.api.core.v1.{kind}")];
            assert_eq!(def["x-kubernetes-group-version-kind"][0]["kind"], kind);
            assert!(schemas.contains_key(&format!("io.k8s.api.core.v1.{kind}List")));
        }
        assert_refs_resolve(&doc, "#/components/schemas/", schemas);
    }

    #[test]
    fn every_group_version_builds_with_resolvable_refs() {
        for (g, v) in registry::groups() {
            let doc = build_v3_document(g, v, Some(test_provider)).unwrap();
            let schemas = doc["components"]["schemas"].as_object().unwrap();
            assert_refs_resolve(&doc, "#/components/schemas/", schemas);
            for r in registry::resources_of(g, v) {
                let gvk_of = |name: &str| {
                    schemas
                        .values()
                        .filter_map(|s| s["x-kubernetes-group-version-kind"].as_array())
                        .flatten()
                        .any(|x| x["group"] == g && x["version"] == v && x["kind"] == name)
                };
                assert!(gvk_of(r.kind), "{g}/{v} {} has no schema", r.kind);
                if r.verbs.contains(&"patch") {
                    let found = doc["paths"].as_object().unwrap().values().any(|p| {
                        p["patch"]["x-kubernetes-group-version-kind"]
                            == gvk_ext(r.group, r.version, r.kind)
                            && param_names(&p["patch"]).contains(&"fieldValidation")
                    });
                    assert!(found, "{} has no patch op", r.plural);
                }
            }
        }
        assert!(build_v3_document("apps", "v9", None).is_none());
    }

    #[test]
    fn v2_document_has_definitions_and_paths() {
        let doc = build_v2_document(Some(test_provider));
        assert_eq!(doc["swagger"], "2.0");
        let defs = doc["definitions"].as_object().unwrap();
        assert!(defs.contains_key("io.k8s.api.apps.v1.Deployment"));
        assert!(defs.contains_key("io.k8s.api.core.v1.Pod"));
        assert_eq!(
            defs["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"][0]["kind"],
            "Pod"
        );
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert!(patch["consumes"]
            .as_array()
            .unwrap()
            .contains(&json!(STRATEGIC_PATCH)));
        assert!(param_names(patch).contains(&"body"));
        assert!(param_names(patch).contains(&"fieldValidation"));
        let fv = patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "fieldValidation")
            .unwrap();
        assert_eq!(fv["type"], "string");
        assert_refs_resolve(&doc, "#/definitions/", defs);
        assert!(doc["paths"]
            .as_object()
            .unwrap()
            .contains_key("/api/v1/namespaces/{namespace}/pods/{name}"));
    }

    #[test]
    fn custom_document_has_the_kind_schema_and_a_patch_with_field_validation() {
        static CT: ResourceInfo = ResourceInfo {
            group: "stable.example.com",
            version: "v1",
            kind: "CronTab",
            plural: "crontabs",
            singular: "crontab",
            namespaced: true,
            short_names: &["ct"],
            categories: &[],
            verbs: registry::RW_VERBS,
            subresources: &[],
        };
        static STATUS: &[Subresource] = &[Subresource {
            name: "status",
            group: "",
            version: "",
            kind: "",
            verbs: &["get", "patch", "update"],
        }];
        let mut with_status = CT;
        with_status.subresources = STATUS;
        let with_status: &'static ResourceInfo = Box::leak(Box::new(with_status));
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"cronSpec": {"type": "string"}}}}});
        let doc = build_custom_v3_document(
            "stable.example.com",
            "v1",
            &[(with_status, Some(schema.clone()))],
        );
        // Every PATCH of the kind (the status one too) carries fieldValidation: kubectl reads
        // whichever it meets first.
        for (path, item) in doc["paths"].as_object().unwrap() {
            if let Some(patch) = item.get("patch") {
                if patch["x-kubernetes-group-version-kind"]["kind"] == "CronTab" {
                    assert!(param_names(patch).contains(&"fieldValidation"), "{path}");
                }
            }
        }
        let doc = build_custom_v3_document("stable.example.com", "v1", &[(&CT, Some(schema))]);
        let def = &doc["components"]["schemas"]["com.example.stable.v1.CronTab"];
        assert_eq!(
            def["properties"]["spec"]["properties"]["cronSpec"]["type"],
            "string"
        );
        assert_eq!(def["x-kubernetes-group-version-kind"][0]["kind"], "CronTab");
        assert!(doc["components"]["schemas"]["com.example.stable.v1.CronTabList"].is_object());
        let patch = &doc["paths"]
            ["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "CronTab");
        assert!(param_names(patch).contains(&"fieldValidation"));
        assert!(patch["requestBody"]["content"]
            .get("application/strategic-merge-patch+json")
            .is_none());
        let defs = doc["components"]["schemas"].as_object().unwrap();
        assert_refs_resolve(&doc, "#/components/schemas/", defs);
    }

    #[test]
    fn hash_is_stable_and_content_sensitive() {
        let a = json!({"a": 1});
        assert_eq!(document_hash(&a), document_hash(&json!({"a": 1})));
        assert_ne!(document_hash(&a), document_hash(&json!({"a": 2})));
        assert_eq!(document_hash(&a).len(), 128);
        let d1 = build_v3_document("batch", "v1", None).unwrap();
        let d2 = build_v3_document("batch", "v1", None).unwrap();
        assert_eq!(document_hash(&d1), document_hash(&d2));
    }

    #[test]
    fn cached_documents_and_lookup_by_path() {
        let start = std::time::Instant::now();
        warm();
        eprintln!("openapi warm: {:?}", start.elapsed());
        let idx = v3_index();
        let url = idx["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        let doc = v3_document("apps", "v1").unwrap();
        assert!(url.ends_with(&format!("?hash={}", doc.hash)));
        assert_eq!(doc.hash, hash_bytes(&doc.json));
        let served: Value = serde_json::from_slice(&doc.json).unwrap();
        assert_eq!(doc.hash, document_hash(&served));
        let full = &served["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert!(full["description"].is_string() && served["paths"].is_object());
        assert!(std::ptr::eq(
            v3_document_by_path("/apis/apps/v1").unwrap(),
            doc
        ));
        assert!(v3_document_by_path("api/v1").is_some());
        assert!(v3_document_by_path("apis/apps").is_none());
        assert!(v3_document_by_path("apis/nope/v1").is_none());
        for (g, v) in registry::groups() {
            let d = v3_document(g, v).unwrap();
            eprintln!("{} {} bytes", v3_path(g, v), d.json.len());
        }
        eprintln!("v2 {} bytes", v2_document().json.len());
        assert!(!v2_document().json.is_empty());
        // The cache was built, so registering a provider now must fail loudly.
        assert!(matches!(
            set_patch_metadata_provider(test_provider),
            Err(OpenApiError::AlreadyBuilt)
        ));
    }
}
