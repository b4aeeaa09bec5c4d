//! Pod eviction (`pods/eviction`, `policy/v1` and `policy/v1beta1` Eviction bodies), as
//! upstream's eviction REST: terminal, pending and terminating pods are deleted at once; other
//! pods only when the PodDisruptionBudget covering them allows a disruption, which is then
//! taken from the budget's status (`disruptionsAllowed` down, the pod in `disruptedPods`) by a
//! compare-and-swap write before the pod is deleted with the Eviction's deleteOptions.

use super::binding::success;
use super::{delete_object, get_object, update_object, DeleteOpts, Mutation, WriteOpts};
use crate::error::{ApiError, ApiResult};
use crate::objects::{self, from_kv, meta_str, now_rfc3339};
use crate::state::AppState;
use serde_json::{json, Value};
use skiff_api::registry::{self, ResourceInfo};
use skiff_api::selector::LabelSelector;
use std::sync::Arc;

/// Upstream's `MaxDisruptedPodSize`: evictions approved but not yet seen by the disruption
/// controller beyond this many are refused.
pub const MAX_DISRUPTED_POD_SIZE: usize = 2000;

/// How often one eviction retries after conflicts (upstream's `EvictionsRetry` steps).
const RETRIES: usize = 20;

/// The message of every 429 an eviction answers.
pub const TOO_MANY_REQUESTS_MESSAGE: &str =
    "Cannot evict pod as it would violate the pod's disruption budget.";

/// The 500 for a pod that more than one budget covers.
pub const MULTIPLE_PDBS_MESSAGE: &str =
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";

/// Terminal, pending or terminating pods are evicted without looking at budgets (upstream's
/// `canIgnorePDB`).
pub fn can_ignore_pdb(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending")
        || pod.pointer("/metadata/deletionTimestamp").is_some()
}

/// Whether a delete of `pod` should carry its resourceVersion as a precondition, so that it
/// cannot race with the pod becoming ready (upstream's `shouldEnforceResourceVersion`).
pub fn should_enforce_resource_version(pod: &Value) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed")
        && pod.pointer("/metadata/deletionTimestamp").is_none()
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(|p| p.as_str())
        .unwrap_or("")
}

/// The pod's `Ready` condition is `True`.
pub fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(|t| t.as_str()) == Some("Ready")
                    && c.get("status").and_then(|s| s.as_str()) == Some("True")
            })
        })
}

/// The budgets (of the pod's namespace) whose selector matches the pod; a null, invalid or
/// empty selector matches nothing.
pub fn matching_pdbs<'a>(pod: &Value, pdbs: &'a [Value]) -> Vec<&'a Value> {
    let ns = objects::namespace(pod);
    pdbs.iter()
        .filter(|pdb| objects::namespace(pdb) == ns)
        .filter(|pdb| {
            let sel = pdb.pointer("/spec/selector").unwrap_or(&Value::Null);
            match LabelSelector::from_json(sel) {
                Ok(s) => !s.is_empty() && s.matches(objects::labels(pod)),
                Err(_) => false,
            }
        })
        .collect()
}

fn status_i64(pdb: &Value, field: &str) -> i64 {
    pdb.pointer(&format!("/status/{field}"))
        .and_then(|v| v.as_i64())
        .unwrap_or(0)
}

/// A 429 TooManyRequests with one `DisruptionBudget` cause.
fn too_many_requests(cause: String, retry_after: i64) -> ApiError {
    let mut details = json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]});
    if retry_after > 0 {
        details["retryAfterSeconds"] = json!(retry_after);
    }
    ApiError::new(429, "TooManyRequests", TOO_MANY_REQUESTS_MESSAGE).with_details(details)
}

/// The 429 while the disruption controller has not caught up with the budget.
fn still_processing(pdb_name: &str) -> ApiError {
    too_many_requests(
        format!("The disruption budget {pdb_name} is still being processed by the server."),
        10,
    )
}

fn pdb_forbidden(pdb_name: &str, why: &str) -> ApiError {
    ApiError::forbidden(format!(
        "poddisruptionbudgets.policy \"{pdb_name}\" is forbidden: {why}"
    ))
    .with_details(json!({"name": pdb_name, "group": "policy", "kind": "poddisruptionbudgets"}))
}

/// Sets the `DisruptionAllowed` condition from `status.disruptionsAllowed` (upstream's
/// `UpdateDisruptionAllowedCondition`): `True`/`SufficientPods` when a disruption is allowed,
/// `False`/`InsufficientPods` otherwise; the transition time moves only when the status does.
pub fn update_disruption_allowed_condition(pdb: &mut Value, now: &str) {
    let allowed = status_i64(pdb, "disruptionsAllowed") > 0;
    let observed = status_i64(pdb, "observedGeneration");
    let (status, reason) = if allowed {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    if !pdb.is_object() {
        return;
    }
    if !pdb["status"].is_object() {
        pdb["status"] = json!({});
    }
    if !pdb["status"]["conditions"].is_array() {
        pdb["status"]["conditions"] = json!([]);
    }
    let Some(conds) = pdb["status"]["conditions"].as_array_mut() else {
        return;
    };
    match conds
        .iter_mut()
        .find(|c| c.get("type").and_then(|t| t.as_str()) == Some("DisruptionAllowed"))
    {
        Some(c) => {
            if c.get("status").and_then(|s| s.as_str()) != Some(status) {
                c["status"] = json!(status);
                c["lastTransitionTime"] = json!(now);
            }
            c["reason"] = json!(reason);
            c["message"] = json!("");
            c["observedGeneration"] = json!(observed);
        }
        None => conds.push(json!({
            "type": "DisruptionAllowed",
            "status": status,
            "observedGeneration": observed,
            "lastTransitionTime": now,
            "reason": reason,
            "message": "",
        })),
    }
}

/// Upstream's `checkAndDecrement`: the budget as it is after this eviction takes one
/// disruption from it (`pod_name` recorded in `disruptedPods` at `now` unless `dry_run`), or
/// why the eviction must wait (429) or is refused (403).
pub fn check_and_decrement(
    pdb: &Value,
    pod_name: &str,
    now: &str,
    dry_run: bool,
) -> ApiResult<Value> {
    let pdb_name = objects::name(pdb);
    let generation = pdb
        .pointer("/metadata/generation")
        .and_then(|g| g.as_i64())
        .unwrap_or(0);
    if status_i64(pdb, "observedGeneration") < generation {
        return Err(still_processing(pdb_name));
    }
    let allowed = status_i64(pdb, "disruptionsAllowed");
    if allowed < 0 {
        return Err(pdb_forbidden(
            pdb_name,
            "pdb disruptions allowed is negative",
        ));
    }
    let disrupted = pdb
        .pointer("/status/disruptedPods")
        .and_then(|d| d.as_object())
        .map(|d| d.len())
        .unwrap_or(0);
    if disrupted > MAX_DISRUPTED_POD_SIZE {
        return Err(pdb_forbidden(
            pdb_name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Err(too_many_requests(
            format!(
                "The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
                status_i64(pdb, "desiredHealthy"),
                status_i64(pdb, "currentHealthy"),
            ),
            0,
        ));
    }
    let mut out = pdb.clone();
    out["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if allowed - 1 == 0 {
        update_disruption_allowed_condition(&mut out, now);
    }
    if !dry_run {
        if !out
            .pointer("/status/disruptedPods")
            .is_some_and(|d| d.is_object())
        {
            out["status"]["disruptedPods"] = json!({});
        }
        out["status"]["disruptedPods"][pod_name] = json!(now);
    }
    Ok(out)
}

/// What an eviction of a pod covered by `pdb` does before deleting it.
#[derive(Debug, PartialEq)]
pub enum BudgetStep {
    /// The pod is not ready and the budget is met without it (or its unhealthy pod eviction
    /// policy is `AlwaysAllow`): delete it with its resourceVersion as precondition, nothing
    /// is taken from the budget.
    DeleteUnready,
    /// Take one disruption from the budget first.
    Decrement,
}

/// Whether the pod counts against the budget (upstream's readiness test, with
/// `unhealthyPodEvictionPolicy`).
pub fn budget_step(pod: &Value, pdb: &Value) -> BudgetStep {
    if pod_ready(pod) {
        return BudgetStep::Decrement;
    }
    let always = pdb
        .pointer("/spec/unhealthyPodEvictionPolicy")
        .and_then(|p| p.as_str())
        == Some("AlwaysAllow");
    let (current, desired) = (
        status_i64(pdb, "currentHealthy"),
        status_i64(pdb, "desiredHealthy"),
    );
    if always || (current >= desired && desired > 0) {
        BudgetStep::DeleteUnready
    } else {
        BudgetStep::Decrement
    }
}

/// The Eviction body checked against the URL: its kind and group version, its name, and its
/// deleteOptions merged with the request's `dryRun` (which must agree with the body's).
pub fn eviction_options(
    pod_name: &str,
    body: &Value,
    dry_run_query: bool,
) -> ApiResult<DeleteOpts> {
    let kind = body.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    let api = body
        .get("apiVersion")
        .and_then(|a| a.as_str())
        .unwrap_or("");
    if (!kind.is_empty() && kind != "Eviction")
        || (!api.is_empty() && !matches!(api, "policy/v1" | "policy/v1beta1"))
    {
        return Err(ApiError::bad_request(format!(
            "the body is a {kind} {api}: send a policy/v1 (or policy/v1beta1) Eviction to pods/eviction"
        )));
    }
    if meta_str(body, "name").unwrap_or("") != pod_name {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let del = body.get("deleteOptions").cloned().unwrap_or(json!({}));
    let body_dry_run: Vec<&str> = del
        .get("dryRun")
        .and_then(|d| d.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    if dry_run_query && !body_dry_run.is_empty() && body_dry_run != ["All"] {
        return Err(ApiError::bad_request(format!(
            "Non-matching dry-run options in request and content: [All] and [{}]",
            body_dry_run.join(" ")
        )));
    }
    let mut opts = DeleteOpts::from_value(&del)?;
    opts.dry_run = opts.dry_run || dry_run_query;
    Ok(opts)
}

fn pdb_resource() -> ApiResult<&'static ResourceInfo> {
    registry::find("policy", "v1", "poddisruptionbudgets")
        .ok_or_else(|| ApiError::internal("poddisruptionbudgets are not registered"))
}

async fn namespace_pdbs(st: &AppState, ns: &str) -> ApiResult<Vec<Value>> {
    let res = pdb_resource()?;
    let page = st
        .store
        .list(&format!("{}{ns}/", res.key_prefix()), Default::default())
        .await?;
    page.kvs.iter().map(from_kv).collect()
}

/// POST `pods/<name>/eviction`: answers a `Status` Success (201) once the pod is deleted (or
/// its graceful deletion started).
pub async fn evict(
    st: &Arc<AppState>,
    pods: &'static ResourceInfo,
    ns: Option<&str>,
    pod_name: &str,
    body: &Value,
    dry_run_query: bool,
) -> ApiResult<Value> {
    let opts = eviction_options(pod_name, body, dry_run_query)?;
    let rv_unset = opts.precondition_rv.is_none();
    // Pods whose budget does not matter are deleted straight away (with their revision as
    // precondition unless the client gave one; conflicts retry unless it did).
    let mut attempts = 0;
    let pod = loop {
        attempts += 1;
        let pod = get_object(st, pods, ns, pod_name).await?;
        if !can_ignore_pdb(&pod) {
            break pod;
        }
        let mut o = opts.clone();
        if should_enforce_resource_version(&pod) && rv_unset {
            o.precondition_rv = meta_str(&pod, "resourceVersion").map(String::from);
        }
        match delete_object(st, pods, ns, pod_name, &o).await {
            Ok(_) => return Ok(success(201)),
            Err(e) if e.code == 409 && rv_unset && attempts < RETRIES => continue,
            Err(e) => return Err(e),
        }
    };
    let pdbs = namespace_pdbs(st, objects::namespace(&pod).unwrap_or("")).await?;
    let matching = matching_pdbs(&pod, &pdbs);
    if matching.len() > 1 {
        return Err(ApiError::new(500, "", MULTIPLE_PDBS_MESSAGE));
    }
    let mut delete_opts = opts.clone();
    let mut unready_pdb = None;
    if let Some(pdb) = matching.first() {
        let pdb_name = objects::name(pdb).to_string();
        match budget_step(&pod, pdb) {
            BudgetStep::DeleteUnready => {
                delete_opts.precondition_rv = meta_str(&pod, "resourceVersion").map(String::from);
                unready_pdb = Some(pdb_name);
            }
            BudgetStep::Decrement => {
                take_disruption(
                    st,
                    objects::namespace(pdb),
                    &pdb_name,
                    pod_name,
                    opts.dry_run,
                )
                .await?;
            }
        }
    }
    match delete_object(st, pods, ns, pod_name, &delete_opts).await {
        Ok(_) => Ok(success(201)),
        // The pod changed since it was judged unready: let the client come back.
        Err(e) if e.code == 409 && rv_unset && unready_pdb.is_some() => {
            Err(still_processing(unready_pdb.as_deref().unwrap_or_default()))
        }
        Err(e) => Err(e),
    }
}

/// Takes one disruption from budget `pdb_name` with a compare-and-swap status write; the
/// decision is re-made on the fresh budget whenever the write conflicts.
async fn take_disruption(
    st: &Arc<AppState>,
    ns: Option<&str>,
    pdb_name: &str,
    pod_name: &str,
    dry_run: bool,
) -> ApiResult<()> {
    let res = pdb_resource()?;
    let now = now_rfc3339();
    let pod = pod_name.to_string();
    let decide = {
        let now = now.clone();
        move |cur: &Value| check_and_decrement(cur, &pod, &now, dry_run)
    };
    if dry_run {
        let cur = get_object(st, res, ns, pdb_name).await?;
        return decide(&cur).map(|_| ());
    }
    let opts = WriteOpts {
        field_manager: "kube-apiserver".into(),
        field_validation: "Ignore".into(),
        ..Default::default()
    };
    update_object(
        st,
        res,
        ns,
        pdb_name,
        Mutation::With(Box::new(decide)),
        &opts,
        Some("status"),
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(phase: &str, ready: bool) -> Value {
        json!({"metadata": {"name": "p", "namespace": "d", "labels": {"app": "web"}},
               "status": {"phase": phase, "conditions": [
                   {"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    }

    fn pdb(allowed: i64, current: i64, desired: i64) -> Value {
        json!({"metadata": {"name": "web-pdb", "namespace": "d", "generation": 2},
               "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
               "status": {"observedGeneration": 2, "disruptionsAllowed": allowed,
                          "currentHealthy": current, "desiredHealthy": desired,
                          "expectedPods": current,
                          "conditions": [{"type": "DisruptionAllowed", "status": "True",
                              "reason": "SufficientPods", "message": "", "observedGeneration": 2,
                              "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
    }

    #[test]
    fn terminal_pending_and_terminating_pods_ignore_budgets() {
        assert!(can_ignore_pdb(&pod("Succeeded", false)));
        assert!(can_ignore_pdb(&pod("Failed", false)));
        assert!(can_ignore_pdb(&pod("Pending", false)));
        assert!(!can_ignore_pdb(&pod("Running", true)));
        let mut p = pod("Running", true);
        p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(can_ignore_pdb(&p));
        assert!(!should_enforce_resource_version(&p));
        assert!(should_enforce_resource_version(&pod("Pending", false)));
        assert!(!should_enforce_resource_version(&pod("Failed", false)));
    }

    #[test]
    fn zero_allowed_is_a_429_with_the_budget_cause() {
        let e = check_and_decrement(&pdb(0, 2, 2), "p", "now", false).unwrap_err();
        assert_eq!(e.code, 429);
        assert_eq!(e.reason, "TooManyRequests");
        assert_eq!(e.message, TOO_MANY_REQUESTS_MESSAGE);
        assert_eq!(
            e.details.unwrap()["causes"],
            json!([{"reason": "DisruptionBudget",
                    "message": "The disruption budget web-pdb needs 2 healthy pods and has 2 currently"}])
        );
    }

    #[test]
    fn an_allowed_disruption_is_taken_and_recorded() {
        let out = check_and_decrement(&pdb(1, 3, 2), "p", "2026-02-02T00:00:00Z", false).unwrap();
        assert_eq!(out["status"]["disruptionsAllowed"], 0);
        assert_eq!(
            out["status"]["disruptedPods"],
            json!({"p": "2026-02-02T00:00:00Z"})
        );
        let c = &out["status"]["conditions"][0];
        assert_eq!(c["status"], "False");
        assert_eq!(c["reason"], "InsufficientPods");
        assert_eq!(c["lastTransitionTime"], "2026-02-02T00:00:00Z");
        // Two allowed: one left, the condition stays.
        let out = check_and_decrement(&pdb(2, 4, 2), "p", "2026-02-02T00:00:00Z", false).unwrap();
        assert_eq!(out["status"]["disruptionsAllowed"], 1);
        assert_eq!(out["status"]["conditions"][0]["status"], "True");
        // A dry run decides but records nothing.
        let out = check_and_decrement(&pdb(2, 4, 2), "p", "now", true).unwrap();
        assert!(out["status"].get("disruptedPods").is_none());
    }

    #[test]
    fn stale_negative_and_overfull_budgets_are_refused() {
        let mut stale = pdb(1, 3, 2);
        stale["metadata"]["generation"] = json!(3);
        let e = check_and_decrement(&stale, "p", "now", false).unwrap_err();
        assert_eq!((e.code, e.reason), (429, "TooManyRequests"));
        assert_eq!(
            e.details.unwrap()["causes"][0]["message"],
            "The disruption budget web-pdb is still being processed by the server."
        );
        let e = check_and_decrement(&pdb(-1, 3, 2), "p", "now", false).unwrap_err();
        assert_eq!(e.code, 403);
        assert!(e.message.ends_with("pdb disruptions allowed is negative"));
        let mut full = pdb(1, 3, 2);
        let many: serde_json::Map<String, Value> = (0..=MAX_DISRUPTED_POD_SIZE)
            .map(|i| (format!("p{i}"), json!("now")))
            .collect();
        full["status"]["disruptedPods"] = Value::Object(many);
        assert_eq!(
            check_and_decrement(&full, "p", "now", false)
                .unwrap_err()
                .code,
            403
        );
    }

    #[test]
    fn unready_pods_go_without_a_decrement_when_the_budget_is_met() {
        assert_eq!(
            budget_step(&pod("Running", true), &pdb(0, 2, 2)),
            BudgetStep::Decrement
        );
        assert_eq!(
            budget_step(&pod("Running", false), &pdb(0, 2, 2)),
            BudgetStep::DeleteUnready
        );
        assert_eq!(
            budget_step(&pod("Running", false), &pdb(0, 1, 2)),
            BudgetStep::Decrement
        );
        let mut always = pdb(0, 0, 2);
        always["spec"]["unhealthyPodEvictionPolicy"] = json!("AlwaysAllow");
        assert_eq!(
            budget_step(&pod("Running", false), &always),
            BudgetStep::DeleteUnready
        );
    }

    #[test]
    fn budgets_match_by_namespace_and_non_empty_selector() {
        let p = pod("Running", true);
        let mut other_ns = pdb(1, 1, 1);
        other_ns["metadata"]["namespace"] = json!("e");
        let mut empty = pdb(1, 1, 1);
        empty["spec"]["selector"] = json!({});
        let mut null = pdb(1, 1, 1);
        null["spec"]["selector"] = Value::Null;
        let mut other_labels = pdb(1, 1, 1);
        other_labels["spec"]["selector"] = json!({"matchLabels": {"app": "db"}});
        let all = [pdb(1, 1, 1), other_ns, empty, null, other_labels];
        let m = matching_pdbs(&p, &all);
        assert_eq!(m.len(), 1);
        assert_eq!(objects::name(m[0]), "web-pdb");
    }

    #[test]
    fn eviction_bodies_are_checked_and_carry_delete_options() {
        let body = json!({"apiVersion": "policy/v1beta1", "kind": "Eviction",
            "metadata": {"name": "p", "namespace": "d"},
            "deleteOptions": {"gracePeriodSeconds": 5, "preconditions": {"uid": "u1"}}});
        let o = eviction_options("p", &body, false).unwrap();
        assert_eq!(o.grace, Some(5));
        assert_eq!(o.precondition_uid.as_deref(), Some("u1"));
        assert!(!o.dry_run);
        assert!(eviction_options("p", &body, true).unwrap().dry_run);
        let e = eviction_options("q", &body, false).unwrap_err();
        assert_eq!(
            e.message,
            "name in URL does not match name in Eviction object"
        );
        let wrong = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        assert_eq!(eviction_options("p", &wrong, false).unwrap_err().code, 400);
    }
}
