//! The namespace controller: a namespace being deleted (it has a `deletionTimestamp`) turns
//! `Terminating`, loses every namespaced object in it (pods first, then everything else the
//! kind registry serves with a delete verb), reports progress in the upstream status
//! conditions, and once empty has its `kubernetes` finalizer removed through the `finalize`
//! subresource, after which the API server removes it.

use crate::controller::{Action, Controller};
use crate::endpoints::api_code;
use crate::informer::Factory;
use crate::util::ObjectKey;
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::ResourceExt;
use skiff_api::registry::{ResourceInfo, RESOURCES};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The finalizer the namespace controller owns in `spec.finalizers`.
pub const FINALIZER: &str = "kubernetes";

/// The condition types the namespace controller maintains, in upstream's order.
pub const CONDITION_TYPES: [&str; 5] = [
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
];

/// The "all is well" (status False) reason and message of each condition type.
fn ok_condition(t: &str) -> (&'static str, &'static str) {
    match t {
        "NamespaceDeletionDiscoveryFailure" => (
            "ResourcesDiscovered",
            "All resources successfully discovered",
        ),
        "NamespaceDeletionGroupVersionParsingFailure" => (
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
        "NamespaceDeletionContentFailure" => (
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
        ),
        "NamespaceContentRemaining" => ("ContentRemoved", "All content successfully removed"),
        _ => (
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished",
        ),
    }
}

/// What is left in a namespace after a deletion pass.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    /// `<resource>.<group>` (upstream's spelling, `pods.` for the core group) → objects left.
    pub remaining: BTreeMap<String, usize>,
    /// finalizer → objects left carrying it.
    pub finalizers: BTreeMap<String, usize>,
}

impl Totals {
    pub fn is_empty(&self) -> bool {
        self.remaining.values().all(|n| *n == 0)
    }

    /// Counts the objects of one resource still present.
    pub fn add(&mut self, res: &ResourceInfo, items: &[DynamicObject]) {
        if items.is_empty() {
            return;
        }
        *self
            .remaining
            .entry(format!("{}.{}", res.plural, res.group))
            .or_default() += items.len();
        for it in items {
            for f in it.finalizers() {
                *self.finalizers.entry(f.clone()).or_default() += 1;
            }
        }
    }
}

/// One desired condition: (type, status, reason, message).
pub type Cond = (String, String, String, String);

/// `<name> <verb> <n> resource instances`, sorted and comma-separated, for the counts above 0
/// (upstream's condition messages).
fn counted(counts: &BTreeMap<String, usize>, verb: &str) -> String {
    let mut parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {verb} {n} resource instances"))
        .collect();
    parts.sort();
    parts.join(", ")
}

/// The conditions a deletion pass reports (upstream's `namespaceConditionUpdater`).
pub fn desired_conditions(
    discovery_failure: Option<&str>,
    delete_errors: &[String],
    totals: &Totals,
) -> Vec<Cond> {
    let mut out = Vec::new();
    let bad = |t: &str, reason: &str, message: String| {
        (
            t.to_string(),
            "True".to_string(),
            reason.to_string(),
            message,
        )
    };
    for t in CONDITION_TYPES {
        let c = match t {
            "NamespaceDeletionDiscoveryFailure" => {
                discovery_failure.map(|m| bad(t, "DiscoveryFailed", m.to_string()))
            }
            "NamespaceDeletionContentFailure" if !delete_errors.is_empty() => {
                let mut msgs = delete_errors.to_vec();
                msgs.sort();
                Some(bad(
                    t,
                    "ContentDeletionFailed",
                    format!(
                        "Failed to delete all resource types, {} remaining: {}",
                        msgs.len(),
                        msgs.join(", ")
                    ),
                ))
            }
            "NamespaceContentRemaining" if !totals.is_empty() => {
                let parts = counted(&totals.remaining, "has");
                Some(bad(
                    t,
                    "SomeResourcesRemain",
                    format!("Some resources are remaining: {parts}"),
                ))
            }
            "NamespaceFinalizersRemaining" if totals.finalizers.values().any(|n| *n > 0) => {
                let parts = counted(&totals.finalizers, "in");
                let msg = "Some content in the namespace has finalizers remaining";
                Some(bad(t, "SomeFinalizersRemain", format!("{msg}: {parts}")))
            }
            _ => None,
        };
        out.push(c.unwrap_or_else(|| {
            let (reason, message) = ok_condition(t);
            (
                t.to_string(),
                "False".to_string(),
                reason.to_string(),
                message.to_string(),
            )
        }));
    }
    out
}

/// Merges desired conditions into the current ones (a new status gets a new transition time;
/// other condition types are kept). `None` when nothing changes.
pub fn merge_conditions(
    current: &[NamespaceCondition],
    desired: &[Cond],
    now: Timestamp,
) -> Option<Vec<NamespaceCondition>> {
    let mut out = current.to_vec();
    let mut changed = false;
    for (t, status, reason, message) in desired {
        match out.iter_mut().find(|c| &c.type_ == t) {
            None => {
                out.push(NamespaceCondition {
                    type_: t.clone(),
                    status: status.clone(),
                    reason: Some(reason.clone()),
                    message: Some(message.clone()),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
            Some(c) => {
                if &c.status != status
                    || c.reason.as_ref() != Some(reason)
                    || c.message.as_ref() != Some(message)
                {
                    if &c.status != status {
                        c.last_transition_time = Some(Time(now));
                    }
                    c.status = status.clone();
                    c.reason = Some(reason.clone());
                    c.message = Some(message.clone());
                    changed = true;
                }
            }
        }
    }
    changed.then_some(out)
}

/// The next step for a namespace.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Not being deleted, or the `kubernetes` finalizer is already gone and someone else's
    /// finalizers remain: nothing to do.
    Nothing,
    /// Delete the content, report, and finalize once empty.
    DeleteContent,
    /// Our finalizer is gone and no other remains: ask the API server again to remove it.
    Remove,
}

/// Decides what a namespace needs.
pub fn step(ns: &Namespace) -> Step {
    if ns.metadata.deletion_timestamp.is_none() {
        return Step::Nothing;
    }
    let fins = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    if fins.iter().any(|f| f == FINALIZER) {
        Step::DeleteContent
    } else if fins.is_empty() {
        Step::Remove
    } else {
        Step::Nothing
    }
}

/// `spec.finalizers` without ours (the body of the `finalize` PUT).
pub fn finalized(ns: &Namespace) -> Namespace {
    let mut out = ns.clone();
    if let Some(spec) = out.spec.as_mut() {
        if let Some(f) = spec.finalizers.as_mut() {
            f.retain(|x| x != FINALIZER);
        }
    }
    out
}

/// The namespaced resources a namespace deletion removes: pods first (upstream's ordered
/// namespace deletion), then every other namespaced kind with list and delete verbs.
pub fn deletable_resources() -> (Vec<&'static ResourceInfo>, Vec<&'static ResourceInfo>) {
    let all: Vec<&'static ResourceInfo> = RESOURCES
        .iter()
        .filter(|r| {
            r.namespaced
                && r.verbs.contains(&"list")
                && (r.verbs.contains(&"delete") || r.verbs.contains(&"deletecollection"))
        })
        .collect();
    all.into_iter()
        .partition(|r| r.group.is_empty() && r.plural == "pods")
}

fn api_resource(r: &ResourceInfo) -> ApiResource {
    ApiResource {
        group: r.group.to_string(),
        version: r.version.to_string(),
        api_version: r.api_version(),
        kind: r.kind.to_string(),
        plural: r.plural.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// The control loop.
// ---------------------------------------------------------------------------------------------

/// Registers the namespace controller's handler on the shared Namespace informer and spawns
/// its worker (terminating namespaces only; failures are retried after 2 s).
pub fn start(factory: &Factory, _cfg: Arc<crate::Config>) {
    let ctx = Arc::new((factory.client(), factory.store::<Namespace>()));
    Controller::new(factory, "namespace")
        .backoff(Duration::from_secs(2), Duration::from_secs(2))
        .watches::<Namespace, _>(|ch| {
            let n = ch.object();
            let deleting = n.metadata.deletion_timestamp.is_some();
            deleting.then(|| ObjectKey::cluster(n.name_any()))
        })
        .run(ctx, |ctx, key: ObjectKey| async move {
            let (client, store) = ctx.as_ref();
            match store.get("", &key.name) {
                Some(ns) => reconcile(client, &ns).await.map(Action::after),
                None => Ok(Action::Done),
            }
        });
}

/// One pass over a terminating namespace; `Some(delay)` asks to look again later.
async fn reconcile(client: &kube::Client, ns: &Namespace) -> Result<Option<Duration>, kube::Error> {
    let name = ns.name_any();
    let nsapi: Api<Namespace> = Api::all(client.clone());
    match step(ns) {
        Step::Nothing => return Ok(None),
        Step::Remove => {
            let dp = DeleteParams {
                preconditions: ns.uid().map(|uid| kube::api::Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..Default::default()
            };
            return match nsapi.delete(&name, &dp).await {
                Ok(_) => Ok(None),
                Err(e) if matches!(api_code(&e), Some(404) | Some(409)) => Ok(None),
                Err(e) => Err(e),
            };
        }
        Step::DeleteContent => {}
    }
    let (pods, others) = deletable_resources();
    let mut totals = Totals::default();
    let mut errors = Vec::new();
    let mut discovery_failure = None;
    delete_all(
        client,
        &name,
        &pods,
        &mut totals,
        &mut errors,
        &mut discovery_failure,
    )
    .await;
    if totals.is_empty() {
        delete_all(
            client,
            &name,
            &others,
            &mut totals,
            &mut errors,
            &mut discovery_failure,
        )
        .await;
    }
    // Report: phase Terminating plus the deletion conditions.
    let now = Timestamp::now();
    let current = ns
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let desired = desired_conditions(discovery_failure.as_deref(), &errors, &totals);
    let conds = merge_conditions(&current, &desired, now);
    let phase_ok = ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if conds.is_some() || !phase_ok {
        let patch = serde_json::json!({"status": {
            "phase": "Terminating",
            "conditions": conds.unwrap_or(current),
        }});
        // Reporting is best effort: a failed status write must not hold up the deletion.
        if let Err(e) = nsapi
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::warn!(namespace = %name, error = %e, "updating the namespace status failed");
        }
    }
    if !totals.is_empty() || !errors.is_empty() {
        return Ok(Some(Duration::from_secs(1)));
    }
    // Empty: drop our finalizer; the API server then removes the namespace.
    let fresh = match nsapi.get(&name).await {
        Ok(n) => n,
        Err(e) if api_code(&e) == Some(404) => return Ok(None),
        Err(e) => return Err(e),
    };
    if step(&fresh) != Step::DeleteContent {
        return Ok(None);
    }
    match nsapi
        .replace_subresource(
            "finalize",
            &name,
            &PostParams::default(),
            &finalized(&fresh),
        )
        .await
    {
        Ok(_) => Ok(None),
        Err(e) if api_code(&e) == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Deletes every object of `resources` in the namespace and counts what is left.
async fn delete_all(
    client: &kube::Client,
    ns: &str,
    resources: &[&'static ResourceInfo],
    totals: &mut Totals,
    errors: &mut Vec<String>,
    discovery_failure: &mut Option<String>,
) {
    for r in resources {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &api_resource(r));
        let listed = match api.list(&ListParams::default()).await {
            Ok(l) => l.items,
            Err(e) if matches!(api_code(&e), Some(404) | Some(405)) => {
                discovery_failure.get_or_insert_with(|| {
                    format!("Discovery failed for some groups: {}: {e}", r.api_version())
                });
                continue;
            }
            Err(e) => {
                errors.push(format!("failed to list {}: {e}", r.group_resource()));
                continue;
            }
        };
        if listed.is_empty() {
            continue;
        }
        let mut failed = false;
        if r.verbs.contains(&"deletecollection") {
            if let Err(e) = api
                .delete_collection(&DeleteParams::background(), &ListParams::default())
                .await
            {
                if api_code(&e) != Some(404) {
                    failed = true;
                    errors.push(format!("failed to delete {}: {e}", r.group_resource()));
                }
            }
        } else {
            for it in &listed {
                if it.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                match api
                    .delete(&it.name_any(), &DeleteParams::background())
                    .await
                {
                    Ok(_) => {}
                    Err(e) if api_code(&e) == Some(404) => {}
                    Err(e) => {
                        failed = true;
                        errors.push(format!("failed to delete {}: {e}", r.group_resource()));
                        break;
                    }
                }
            }
        }
        let left = match api.list(&ListParams::default()).await {
            Ok(l) => l.items,
            Err(_) => listed,
        };
        if failed && left.is_empty() {
            errors.pop();
        }
        totals.add(r, &left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn ns(deleting: bool, fins: &[&str]) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("dev".into()),
                deletion_timestamp: deleting.then_some(Time(Timestamp::UNIX_EPOCH)),
                ..Default::default()
            },
            spec: Some(NamespaceSpec {
                finalizers: Some(fins.iter().map(|s| s.to_string()).collect()),
            }),
            status: None,
        }
    }

    #[test]
    fn steps_follow_deletion_and_finalizers() {
        assert_eq!(step(&ns(false, &["kubernetes"])), Step::Nothing);
        assert_eq!(step(&ns(true, &["kubernetes"])), Step::DeleteContent);
        assert_eq!(step(&ns(true, &["example.com/x"])), Step::Nothing);
        assert_eq!(step(&ns(true, &[])), Step::Remove);
        let f = finalized(&ns(true, &["kubernetes", "example.com/x"]));
        assert_eq!(f.spec.unwrap().finalizers.unwrap(), ["example.com/x"]);
    }

    #[test]
    fn conditions_report_remaining_content_and_finalizers() {
        let mut t = Totals::default();
        t.remaining.insert("pods.".into(), 2);
        t.remaining.insert("configmaps.".into(), 1);
        t.finalizers.insert("example.com/keep".into(), 1);
        let c = desired_conditions(None, &[], &t);
        let get = |ty: &str| c.iter().find(|x| x.0 == ty).unwrap().clone();
        assert_eq!(
            get("NamespaceContentRemaining"),
            (
                "NamespaceContentRemaining".into(),
                "True".into(),
                "SomeResourcesRemain".into(),
                "Some resources are remaining: configmaps. has 1 resource instances, pods. has 2 resource instances".into()
            )
        );
        let f = get("NamespaceFinalizersRemaining");
        assert_eq!(
            (f.1.as_str(), f.2.as_str()),
            ("True", "SomeFinalizersRemain")
        );
        assert_eq!(
            f.3,
            "Some content in the namespace has finalizers remaining: example.com/keep in 1 resource instances"
        );
        assert_eq!(
            get("NamespaceDeletionDiscoveryFailure").2,
            "ResourcesDiscovered"
        );
        // All gone: every condition False with its ok reason.
        let ok = desired_conditions(None, &[], &Totals::default());
        assert!(ok.iter().all(|x| x.1 == "False"));
        assert_eq!(ok[3].2, "ContentRemoved");
        assert_eq!(ok[4].3, "All content-preserving finalizers finished");
        let failed =
            desired_conditions(Some("boom"), &["b".into(), "a".into()], &Totals::default());
        assert_eq!(failed[0].1, "True");
        assert_eq!(
            failed[2].3,
            "Failed to delete all resource types, 2 remaining: a, b"
        );
    }

    #[test]
    fn merging_keeps_transition_times_unless_status_flips() {
        let t0: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2025-01-01T00:00:05Z".parse().unwrap();
        let mut totals = Totals::default();
        totals.remaining.insert("pods.".into(), 1);
        let first = merge_conditions(&[], &desired_conditions(None, &[], &totals), t0).unwrap();
        assert_eq!(first.len(), 5);
        // Same again: no change.
        assert!(merge_conditions(&first, &desired_conditions(None, &[], &totals), t1).is_none());
        // Message changes, status stays: time kept.
        totals.remaining.insert("pods.".into(), 3);
        let second = merge_conditions(&first, &desired_conditions(None, &[], &totals), t1).unwrap();
        assert_eq!(second[3].last_transition_time, Some(Time(t0)));
        // Content gone: status flips, time moves.
        let third = merge_conditions(
            &second,
            &desired_conditions(None, &[], &Totals::default()),
            t1,
        )
        .unwrap();
        assert_eq!(third[3].status, "False");
        assert_eq!(third[3].last_transition_time, Some(Time(t1)));
    }

    #[test]
    fn pods_go_first_and_namespaces_are_not_content() {
        let (pods, others) = deletable_resources();
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].plural, "pods");
        assert!(others.iter().all(|r| r.namespaced && r.plural != "pods"));
        assert!(others
            .iter()
            .any(|r| r.plural == "deployments" && r.group == "apps"));
        assert!(others.iter().any(|r| r.plural == "configmaps"));
    }
}
