//! Bootstrap objects of the API-machinery groups: flowcontrol's PriorityLevelConfigurations
//! and FlowSchemas (with the `Dangling` status upstream's config controller writes) and a
//! local APIService for every built-in group-version (`kubectl get apiservices`).

use crate::error::{ApiError, ApiResult};
use crate::objects::now_rfc3339;
use crate::rest::{self, Mutation, WriteOpts};
use crate::state::AppState;
use serde_json::{json, Value};
use skiff_api::registry::{self, ResourceInfo};
use std::sync::Arc;

fn system_opts() -> WriteOpts {
    WriteOpts {
        dry_run: false,
        field_manager: "skiff-apiserver".into(),
        field_validation: "Ignore".into(),
        apply: false,
    }
}

fn resource(group: &str, plural: &str) -> ApiResult<&'static ResourceInfo> {
    registry::RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
        .ok_or_else(|| ApiError::internal(format!("{plural}.{group} not registered")))
}

/// Creates `obj` when missing; then, when `status` is given and the stored object has no
/// conditions yet, writes that status (creation resets status, as for any client).
async fn ensure(
    st: &Arc<AppState>,
    res: &'static ResourceInfo,
    obj: Value,
    status: Option<Value>,
) -> ApiResult<()> {
    let n = crate::objects::name(&obj).to_string();
    let current = match rest::get_object(st, res, None, &n).await {
        Ok(o) => o,
        Err(e) if e.code == 404 => {
            match rest::create_object(st, res, None, obj, &system_opts()).await {
                Ok(o) => o,
                Err(e) if e.code == 409 => rest::get_object(st, res, None, &n).await?,
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    let Some(status) = status else {
        return Ok(());
    };
    if current.pointer("/status/conditions").is_some() {
        return Ok(());
    }
    let set = move |old: &Value| -> ApiResult<Value> {
        let mut n = old.clone();
        n["status"] = status.clone();
        Ok(n)
    };
    rest::update_object(
        st,
        res,
        None,
        &n,
        Mutation::With(Box::new(set)),
        &system_opts(),
        Some("status"),
    )
    .await?;
    Ok(())
}

/// Upstream's group priorities (kube-apiserver's `apiVersionPriorities`); 16000 for the rest.
fn group_priority(group: &str) -> i64 {
    match group {
        "" => 18000,
        "apiregistration.k8s.io" => 18000,
        "apps" => 17800,
        "events.k8s.io" => 17750,
        "authentication.k8s.io" => 17700,
        "authorization.k8s.io" => 17600,
        "autoscaling" => 17500,
        "batch" => 17400,
        "certificates.k8s.io" => 17300,
        "networking.k8s.io" => 17200,
        "policy" => 17100,
        "rbac.authorization.k8s.io" => 17000,
        "storage.k8s.io" => 16800,
        "apiextensions.k8s.io" => 16700,
        "admissionregistration.k8s.io" => 16700,
        "scheduling.k8s.io" => 16600,
        "coordination.k8s.io" => 16500,
        "node.k8s.io" => 16300,
        "discovery.k8s.io" => 16200,
        "flowcontrol.apiserver.k8s.io" => 16100,
        "metrics.k8s.io" => 100,
        _ => 16000,
    }
}

/// The name of the APIService of a group-version: `v1.apps`, `v1.` for the core group.
pub fn apiservice_name(group: &str, version: &str) -> String {
    format!("{version}.{group}")
}

/// The local APIService of a built-in group-version, as kube-apiserver registers it.
pub fn local_apiservice(group: &str, version: &str) -> Value {
    // Within a group, the later (preferred) versions get the higher priority.
    let version_priority = match version {
        "v1" => 15,
        "v2" => 16,
        _ => 9,
    };
    json!({
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": apiservice_name(group, version),
            "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
        "spec": {"group": group, "version": version,
            "groupPriorityMinimum": group_priority(group), "versionPriority": version_priority},
    })
}

fn local_available(now: &str) -> Value {
    json!({"conditions": [{"type": "Available", "status": "True", "lastTransitionTime": now,
        "reason": "Local", "message": "Local APIServices are always available"}]})
}

/// Creates what is missing: the flowcontrol configuration and the local APIServices.
pub async fn bootstrap(st: &Arc<AppState>) -> ApiResult<()> {
    let now = now_rfc3339();
    let levels = resource(
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
    )?;
    let schemas = resource("flowcontrol.apiserver.k8s.io", "flowschemas")?;
    let level_objs = skiff_api::flowcontrol::bootstrap_priority_levels();
    let names: Vec<&str> = level_objs
        .iter()
        .filter_map(|l| l.pointer("/metadata/name").and_then(Value::as_str))
        .collect();
    // Upstream leaves the priority levels' status empty.
    for l in &level_objs {
        ensure(st, levels, l.clone(), None).await?;
    }
    for s in skiff_api::flowcontrol::bootstrap_flow_schemas() {
        let status = skiff_api::flowcontrol::flow_schema_status(&s, &names, &now);
        ensure(st, schemas, s, Some(status)).await?;
    }
    let apiservices = resource("apiregistration.k8s.io", "apiservices")?;
    let metrics = skiff_api::discovery::METRICS_RESOURCES
        .first()
        .map(|r| (r.group, r.version));
    for (g, v) in registry::groups().into_iter().chain(metrics) {
        ensure(
            st,
            apiservices,
            local_apiservice(g, v),
            Some(local_available(&now)),
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_apiservice_names_and_priorities() {
        let core = local_apiservice("", "v1");
        assert_eq!(core["metadata"]["name"], "v1.");
        assert_eq!(core["spec"]["groupPriorityMinimum"], 18000);
        let apps = local_apiservice("apps", "v1");
        assert_eq!(apps["metadata"]["name"], "v1.apps");
        assert!(apps["spec"].get("service").is_none());
        let hpa2 = local_apiservice("autoscaling", "v2");
        let hpa1 = local_apiservice("autoscaling", "v1");
        assert!(
            hpa2["spec"]["versionPriority"].as_i64() > hpa1["spec"]["versionPriority"].as_i64()
        );
    }
}
