//! Object validation with the upstream (Kubernetes 1.32) field errors: the same field paths,
//! reasons and `field.Error.ErrorBody()` texts the real API server puts in an Invalid (422)
//! Status, and the same aggregate message (`Deployment.apps "web" is invalid: …`).
//!
//! Bad values are rendered the way 1.32's `ErrorBody` renders them: strings quoted like Go's
//! `%q`, numbers and booleans plain, and structured values in Go's `%#v` syntax
//! (`map[string]string{"app":"x"}`, `v1.LabelSelector{…}`, `intstr.IntOrString{…}`).
//!
//! One file per group of kinds (`pod`, `workloads`, `jobs`, `service`, `core_objects`,
//! `groups`) over the shared parts (`meta`, `selectors`, `format`, `render`, `errors`,
//! `json`); this file holds the entry points and the per-kind dispatch.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::registry::ResourceInfo;
use crate::selector::LabelSelector;
use crate::text::go_quote;

mod core_objects;
mod errors;
mod format;
mod groups;
mod jobs;
mod json;
mod meta;
mod pod;
mod render;
mod selectors;
mod service;
#[cfg(test)]
mod tests;
mod webhooks;
mod workloads;

use core_objects::*;
use errors::*;
pub use format::*;
pub use groups::*;
pub use jobs::*;
use json::*;
use meta::*;
use pod::*;
use render::*;
pub use selectors::*;
use service::*;
use webhooks::*;
use workloads::*;

/// One field-level cause of an Invalid error (a `metav1.StatusCause`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldCause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`,
    /// `FieldValueDuplicate`, `FieldValueForbidden`, `FieldValueTooLong`,
    /// `FieldValueNotFound` or `FieldValueTypeInvalid`.
    pub reason: String,
    /// The upstream `ErrorBody()` text, e.g. `Required value` or `Invalid value: "Foo": …`.
    pub message: String,
    /// The field path, e.g. `spec.template.spec.containers[0].image`.
    pub field: String,
}

impl FieldCause {
    /// `field: message`, the upstream `field.Error.Error()` text.
    pub fn error_string(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// The message of an Invalid Status, exactly like upstream `errors.NewInvalid`: the qualified
/// kind, the quoted name, and the causes (one inline, several as `[a, b]`, duplicates dropped).
pub fn invalid_message(res: &ResourceInfo, name: &str, causes: &[FieldCause]) -> String {
    let mut seen = BTreeSet::new();
    let mut msgs = Vec::new();
    for c in causes {
        let m = c.error_string();
        if seen.insert(m.clone()) {
            msgs.push(m);
        }
    }
    let head = format!("{} {} is invalid", res.group_kind(), go_quote(name));
    match msgs.len() {
        0 => head,
        1 => format!("{head}: {}", msgs[0]),
        _ => format!("{head}: [{}]", msgs.join(", ")),
    }
}

// ---------------------------------------------------------------------------------------
// Public entry points

/// Validates a new object of kind `res` (after defaulting). Empty when valid.
pub fn validate_create(res: &ResourceInfo, obj: &Value) -> Vec<FieldCause> {
    let mut e = Errs::default();
    validate_object(&mut e, res, obj, None);
    e.0
}

/// Validates an update: the create rules on `new`, the metadata update rules and the
/// kind's immutability rules against `old`. Empty when valid.
pub fn validate_update(res: &ResourceInfo, old: &Value, new: &Value) -> Vec<FieldCause> {
    let mut e = Errs::default();
    validate_meta_update(&mut e, old.get("metadata"), new.get("metadata"));
    validate_object(&mut e, res, new, Some(old));
    e.0
}

#[derive(Clone, Copy)]
enum NameRule {
    Subdomain,
    Label,
    Dns1035,
    PathSegment,
}

fn name_errors(rule: NameRule, name: &str, prefix: bool) -> Vec<String> {
    let masked;
    let name = if prefix && name.len() > 1 && name.ends_with('-') {
        masked = format!("{}a", &name[..name.len() - 1]);
        masked.as_str()
    } else {
        name
    };
    match rule {
        NameRule::Subdomain => is_dns1123_subdomain(name),
        NameRule::Label => is_dns1123_label(name),
        NameRule::Dns1035 => is_dns1035_label(name),
        NameRule::PathSegment => {
            if !prefix && (name == "." || name == "..") {
                return vec![format!("may not be '{name}'")];
            }
            let mut errs = Vec::new();
            for bad in ["/", "%"] {
                if name.contains(bad) {
                    errs.push(format!("may not contain '{bad}'"));
                }
            }
            errs
        }
    }
}

fn validate_object(e: &mut Errs, res: &ResourceInfo, obj: &Value, old: Option<&Value>) {
    let meta = obj.get("metadata");
    let rule = match (res.group, res.kind) {
        ("", "Namespace") => Some(NameRule::Label),
        ("", "Service") => Some(NameRule::Dns1035),
        ("rbac.authorization.k8s.io", _) => Some(NameRule::PathSegment),
        // APIServices are named `<version>.<group>` (`v1.` for the core group); CSR names
        // are path segments upstream too.
        ("apiregistration.k8s.io" | "certificates.k8s.io", _) => Some(NameRule::PathSegment),
        ("authentication.k8s.io" | "authorization.k8s.io", _) | ("", "Binding") => None,
        _ => Some(NameRule::Subdomain),
    };
    if let Some(rule) = rule {
        validate_meta(e, meta, res.namespaced, rule);
    }
    let is_update = old.is_some();
    match (res.group, res.kind) {
        ("", "Pod") => validate_pod(e, obj, old),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            validate_webhook_configuration(e, obj, true)
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            validate_webhook_configuration(e, obj, false)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            e.0.extend(crate::cel::policy::validate_policy(obj))
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            e.0.extend(crate::cel::policy::validate_binding(obj))
        }
        ("", "PodTemplate") => validate_pod_template(e, obj.get("template"), "template"),
        ("", "ReplicationController") => validate_rc(e, obj),
        ("", "Service") => validate_service(e, obj, old),
        ("", "Namespace") => {
            for f in arr(obj.pointer("/spec/finalizers")) {
                validate_finalizer(e, &scalar_string(f), "spec.finalizers");
            }
        }
        ("", "ConfigMap") => validate_config_map(e, obj, old),
        ("", "Secret") => validate_secret(e, obj, old),
        ("", "Endpoints") => validate_endpoints(e, obj),
        ("", "Node") => validate_node(e, obj, old),
        ("", "PersistentVolumeClaim") => validate_pvc(e, obj, old),
        ("apps", "Deployment") => {
            validate_deployment_spec(e, obj.get("spec"));
            immutable_selector(e, obj, old);
        }
        ("apps", "ReplicaSet") => {
            validate_replica_set_spec(e, obj.get("spec"));
            immutable_selector(e, obj, old);
        }
        ("apps", "DaemonSet") => {
            validate_daemon_set_spec(e, obj.get("spec"));
            immutable_selector(e, obj, old);
        }
        ("apps", "StatefulSet") => validate_stateful_set(e, obj, old),
        ("apps", "ControllerRevision") => {
            if !is_set(obj.get("data")) {
                e.required("data", "data is mandatory");
            }
            e.nonnegative("revision", obj.get("revision"));
            if let Some(old) = old {
                e.immutable(
                    "data",
                    bad_json(obj.get("data")),
                    old.get("data") != obj.get("data"),
                );
            }
        }
        ("batch", "Job") => validate_job(e, obj, old),
        ("batch", "CronJob") => validate_cron_job(e, obj, is_update),
        ("networking.k8s.io", "Ingress") => validate_ingress(e, obj.get("spec")),
        ("networking.k8s.io", "NetworkPolicy") => {
            validate_label_selector(e, obj.pointer("/spec/podSelector"), "spec.podSelector");
        }
        ("rbac.authorization.k8s.io", "Role") => validate_rules(e, obj, true),
        ("rbac.authorization.k8s.io", "ClusterRole") => validate_rules(e, obj, false),
        ("rbac.authorization.k8s.io", "RoleBinding") => validate_binding(e, obj, old, true),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => validate_binding(e, obj, old, false),
        ("storage.k8s.io", "StorageClass") => validate_storage_class(e, obj, old),
        ("policy", "PodDisruptionBudget") => validate_pdb(e, obj.get("spec")),
        ("autoscaling", "HorizontalPodAutoscaler") => validate_hpa(e, obj),
        ("scheduling.k8s.io", "PriorityClass") => validate_priority_class(e, obj, old),
        ("coordination.k8s.io", "Lease") => {
            if let Some(n) = obj
                .pointer("/spec/leaseDurationSeconds")
                .and_then(Value::as_i64)
            {
                if n <= 0 {
                    e.invalid(
                        "spec.leaseDurationSeconds",
                        Bad::Int(n),
                        "must be greater than 0",
                    );
                }
            }
            e.nonnegative(
                "spec.leaseTransitions",
                obj.pointer("/spec/leaseTransitions"),
            );
        }
        ("discovery.k8s.io", "EndpointSlice") => validate_endpoint_slice(e, obj, old),
        _ => {}
    }
}
