//! The ReplicaSet controller: keeps `spec.replicas` active pods matching each ReplicaSet's
//! selector (adopting orphans, releasing pods that stop matching), deletes the least valuable
//! pods first on scale-down, and reports status; with upstream's expectations so it never
//! creates twice while its cache catches up. `plan_replicaset` is the pure decision core.

pub mod pods;

use crate::controller::{Action, Controller};
use crate::informer::{Change, Factory};
use crate::queue::Queue;
use crate::util::podutil::{
    is_active, is_available, is_ready, selector_is_empty, selector_matches,
};
use crate::util::{
    api_message, controller_of, controller_ref, is_not_found, key_of, selecting, ObjectKey,
    Workload,
};
use futures::future::join_all;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Most pods created or deleted in one sync (upstream's `burstReplicas`).
pub const BURST_REPLICAS: usize = 500;
/// Parallel syncs (upstream's `--concurrent-replicaset-syncs`).
const WORKERS: usize = 5;
/// Every ReplicaSet is re-synced this often even without events.
const RESYNC: Duration = Duration::from_secs(30);

use crate::Error;

/// What one sync of a ReplicaSet should do.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Orphan pods matching the selector to adopt (names).
    pub adopt: Vec<String>,
    /// Owned pods that no longer match the selector, to release (names).
    pub release: Vec<String>,
    /// How many pods to create.
    pub create: usize,
    /// Pods to delete, least valuable first (names).
    pub delete: Vec<String>,
    /// The active pods the ReplicaSet owns after adoption and release (names).
    pub owned: Vec<String>,
}

/// Decides adoption, release, creation and deletion for `rs` given every pod in its namespace.
/// `related` are the pods of the ReplicaSet's sibling ReplicaSets (same controller), used to
/// rank pods by how crowded their node is. `manage` is false while expectations are unmet or
/// the ReplicaSet is being deleted: then only adoption/release happen.
pub fn plan_replicaset(
    rs: &ReplicaSet,
    all_pods: &[Arc<Pod>],
    related: &[&Pod],
    manage: bool,
    now: Timestamp,
) -> Plan {
    let mut plan = Plan::default();
    let Some(spec) = rs.spec.as_ref() else {
        return plan;
    };
    let uid = rs.metadata.uid.as_deref().unwrap_or("");
    let deleting = rs.metadata.deletion_timestamp.is_some();
    let mut owned: Vec<&Pod> = Vec::new();
    for p in all_pods.iter().map(|p| p.as_ref()) {
        if !is_active(p) {
            continue;
        }
        let matches = selector_matches(&spec.selector, p.metadata.labels.as_ref());
        match controller_of(&p.metadata) {
            Some(c) if c.uid == uid => {
                if matches {
                    owned.push(p);
                } else {
                    plan.release
                        .push(p.metadata.name.clone().unwrap_or_default());
                }
            }
            Some(_) => {}
            None => {
                if matches && !deleting && !selector_is_empty(&spec.selector) {
                    plan.adopt.push(p.metadata.name.clone().unwrap_or_default());
                    owned.push(p);
                }
            }
        }
    }
    let want = spec.replicas.unwrap_or(1).max(0) as usize;
    if manage && !deleting {
        if owned.len() < want {
            plan.create = (want - owned.len()).min(BURST_REPLICAS);
        } else if owned.len() > want {
            let n = (owned.len() - want).min(BURST_REPLICAS);
            let mut rel: Vec<&Pod> = related.to_vec();
            rel.extend(owned.iter().copied());
            plan.delete = pods::pods_to_delete(&owned, &rel, n, now)
                .into_iter()
                .map(|p| p.metadata.name.clone().unwrap_or_default())
                .collect();
        }
    }
    plan.owned = owned
        .iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect();
    plan
}

/// Upstream's `calculateStatus`: counts over the owned active pods, plus the ReplicaFailure
/// condition while creating or deleting fails.
pub fn calculate_status(
    rs: &ReplicaSet,
    owned: &[&Pod],
    manage_error: Option<&str>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let mut status = rs.status.clone().unwrap_or_default();
    let spec = rs.spec.clone().unwrap_or_default();
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let (mut fully, mut ready, mut available) = (0, 0, 0);
    for p in owned {
        let labels = p.metadata.labels.clone().unwrap_or_default();
        if skiff_api::matchers::labels::map_selector_matches(&template_labels, &labels) {
            fully += 1;
        }
        if is_ready(p) {
            ready += 1;
            if is_available(p, min_ready, now) {
                available += 1;
            }
        }
    }
    let has_failure = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "ReplicaFailure");
    match manage_error {
        Some(msg) if !has_failure => {
            let want = spec.replicas.unwrap_or(1);
            let reason = if (owned.len() as i32) < want {
                "FailedCreate"
            } else {
                "FailedDelete"
            };
            status
                .conditions
                .get_or_insert_with(Vec::new)
                .push(ReplicaSetCondition {
                    type_: "ReplicaFailure".into(),
                    status: "True".into(),
                    reason: Some(reason.into()),
                    message: Some(msg.to_string()),
                    last_transition_time: Some(Time(now)),
                });
        }
        None if has_failure => {
            if let Some(c) = status.conditions.as_mut() {
                c.retain(|c| c.type_ != "ReplicaFailure");
            }
        }
        _ => {}
    }
    status.replicas = owned.len() as i32;
    status.fully_labeled_replicas = Some(fully);
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    status
}

/// A pod for `rs` from its template: generateName `<rs>-`, template labels, annotations and
/// finalizers, the controller ownerReference.
pub fn pod_from_template(rs: &ReplicaSet) -> Pod {
    let template = rs.spec.as_ref().and_then(|s| s.template.clone());
    let name = rs.metadata.name.as_deref().unwrap_or("");
    crate::util::pod_control::pod_from_template(rs, &template.unwrap_or_default(), name)
}

/// The ReplicaSet controller's context: the shared workload context of ReplicaSets.
type Ctx = Workload<ReplicaSet>;

/// The ReplicaSet key a pod belongs to through its controller reference, if it is a ReplicaSet.
fn owner_rs_key(pod: &Pod) -> Option<ObjectKey> {
    let c = controller_of(&pod.metadata)?;
    if c.kind != "ReplicaSet" || !c.api_version.starts_with("apps/") {
        return None;
    }
    Some(ObjectKey::new(
        pod.metadata.namespace.clone().unwrap_or_default(),
        c.name.clone(),
    ))
}

impl Workload<ReplicaSet> {
    /// The ReplicaSets (keys) whose selector matches an orphan pod.
    fn matching_rs_keys(&self, pod: &Pod) -> Vec<ObjectKey> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let labels = pod.metadata.labels.as_ref();
        selecting(&self.objects, ns, labels, |rs| {
            Some(&rs.spec.as_ref()?.selector)
        })
    }

    /// The key of the cached ReplicaSet a pod's controller reference names, if the uid matches.
    fn resolved_owner(&self, pod: &Pod) -> Option<ObjectKey> {
        let key = owner_rs_key(pod)?;
        let rs = self.objects.get(&key.namespace, &key.name)?;
        let uid = controller_of(&pod.metadata)?.uid.clone();
        (rs.metadata.uid.as_deref() == Some(uid.as_str())).then_some(key)
    }

    fn on_pod(&self, queue: &Queue<ObjectKey>, change: &Change<Pod>) {
        match change {
            Change::Applied { old: None, new } => {
                if new.metadata.deletion_timestamp.is_some() {
                    return self.on_pod(queue, &Change::Deleted(Arc::clone(new)));
                }
                if let Some(key) = self.resolved_owner(new) {
                    self.exp.creation_observed(&key);
                    queue.add(key);
                } else if controller_of(&new.metadata).is_none() {
                    for k in self.matching_rs_keys(new) {
                        queue.add(k);
                    }
                }
            }
            Change::Applied {
                old: Some(old),
                new,
            } => {
                if old.metadata.resource_version == new.metadata.resource_version {
                    return;
                }
                let pod_key = key_of(new.as_ref()).to_string();
                let new_owner = self.resolved_owner(new);
                if new.metadata.deletion_timestamp.is_some()
                    && old.metadata.deletion_timestamp.is_none()
                {
                    if let Some(k) = &new_owner {
                        self.exp.deletion_observed(k, &pod_key);
                    }
                }
                let old_owner = owner_rs_key(old);
                if old_owner != owner_rs_key(new) {
                    if let Some(k) = old_owner {
                        queue.add(k);
                    }
                }
                match new_owner {
                    Some(k) => queue.add(k),
                    None => {
                        if controller_of(&new.metadata).is_none()
                            && (old.metadata.labels != new.metadata.labels
                                || controller_of(&old.metadata).is_some())
                        {
                            for k in self.matching_rs_keys(new) {
                                queue.add(k);
                            }
                        }
                    }
                }
            }
            Change::Deleted(pod) => {
                if let Some(key) = owner_rs_key(pod) {
                    self.exp
                        .deletion_observed(&key, &key_of(pod.as_ref()).to_string());
                    queue.add(key);
                }
            }
        }
    }
}

/// Registers the ReplicaSet controller's handlers on the shared informers and spawns its
/// workers (they start once the caches have synced).
pub fn start(factory: &Factory, _cfg: Arc<crate::Config>) {
    let ctx = Arc::new(Workload::new(factory, "replicaset-controller"));
    let c = Arc::clone(&ctx);
    Controller::new(factory, "replicaset")
        .backoff(Duration::from_millis(100), Duration::from_secs(30))
        // Every change of the primary object queues it (the shared informer never reports an
        // unchanged object, re-lists included).
        .reconciles::<ReplicaSet>()
        .handles::<Pod>(move |q, ch| c.on_pod(q, ch))
        .workers(WORKERS)
        .resync(RESYNC)
        .run(ctx, reconcile);
}

/// One sync of ReplicaSet `key`; returns when to look again, if a timer is needed.
async fn reconcile(ctx: Arc<Ctx>, key: ObjectKey) -> Result<Action, Error> {
    let (ns, name) = (key.namespace.as_str(), key.name.as_str());
    let key = &key;
    let Some(rs) = ctx.objects.get(ns, name) else {
        ctx.exp.forget(key);
        return Ok(Action::Done);
    };
    let now = Timestamp::now();
    let manage = ctx.exp.satisfied(key) && rs.metadata.deletion_timestamp.is_none();
    let all_pods = ctx.pods.list(ns);
    // Pods of sibling ReplicaSets (same controller), for the crowded-node ranking.
    let siblings: HashSet<String> = match controller_of(&rs.metadata) {
        Some(owner) => ctx
            .objects
            .list(ns)
            .iter()
            .filter(|o| controller_of(&o.metadata).is_some_and(|c| c.uid == owner.uid))
            .filter_map(|o| o.metadata.uid.clone())
            .filter(|u| Some(u) != rs.metadata.uid.as_ref())
            .collect(),
        None => HashSet::new(),
    };
    let related: Vec<&Pod> = all_pods
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| controller_of(&p.metadata).is_some_and(|c| siblings.contains(&c.uid)))
        .collect();
    let plan = plan_replicaset(&rs, &all_pods, &related, manage, now);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let by_name: HashMap<&str, &Pod> = all_pods
        .iter()
        .filter_map(|p| p.metadata.name.as_deref().map(|n| (n, p.as_ref())))
        .collect();

    // Claim: adopt orphans, release pods that stopped matching.
    let mut failed_adoptions: HashSet<String> = HashSet::new();
    for pod_name in &plan.adopt {
        let Some(p) = by_name.get(pod_name.as_str()) else {
            continue;
        };
        let mut refs = p.metadata.owner_references.clone().unwrap_or_default();
        refs.push(controller_ref("apps/v1", "ReplicaSet", &rs.metadata));
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": p.metadata.resource_version}});
        if let Err(e) = pods_api
            .patch(pod_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            if !is_not_found(&e) {
                tracing::debug!(pod = %pod_name, error = %e, "adopting pod failed");
            }
            failed_adoptions.insert(pod_name.clone());
        }
    }
    for pod_name in &plan.release {
        let Some(p) = by_name.get(pod_name.as_str()) else {
            continue;
        };
        let refs: Vec<OwnerReference> = p
            .metadata
            .owner_references
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| Some(&r.uid) != rs.metadata.uid.as_ref())
            .collect();
        let refs = crate::util::list_or_null(&refs);
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": p.metadata.resource_version}});
        if let Err(e) = pods_api
            .patch(pod_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            if !is_not_found(&e) {
                return Err(e.into());
            }
        }
    }
    if !failed_adoptions.is_empty() {
        return Err(Error::Other(format!(
            "could not adopt {} pods: retrying",
            failed_adoptions.len()
        )));
    }

    let mut manage_error: Option<String> = None;
    if plan.create > 0 {
        ctx.exp.expect_creations(key, plan.create);
        let pods = vec![pod_from_template(&rs); plan.create];
        let created = ctx.control.create_pods(rs.as_ref(), ns, &pods).await;
        // Creations that failed or never happened will not be observed.
        for _ in 0..created.not_created {
            ctx.exp.creation_observed(key);
        }
        manage_error = created.error.as_ref().map(api_message);
    } else if !plan.delete.is_empty() {
        let keys: Vec<String> = plan.delete.iter().map(|n| format!("{ns}/{n}")).collect();
        ctx.exp.expect_deletions(key, keys);
        let rs_ref = rs.as_ref();
        let deletes = plan
            .delete
            .iter()
            .map(|n| ctx.control.delete_pod(rs_ref, ns, n, None));
        for (n, r) in plan.delete.iter().zip(join_all(deletes).await) {
            match r {
                Ok(true) => {}
                Ok(false) => ctx.exp.deletion_observed(key, &format!("{ns}/{n}")),
                Err(e) => {
                    ctx.exp.deletion_observed(key, &format!("{ns}/{n}"));
                    manage_error = Some(api_message(&e));
                }
            }
        }
    }

    // Status over the pods owned at the start of this sync.
    let owned: Vec<&Pod> = plan
        .owned
        .iter()
        .filter_map(|n| by_name.get(n.as_str()).copied())
        .collect();
    let status = calculate_status(&rs, &owned, manage_error.as_deref(), now);
    let generation = rs.metadata.generation.unwrap_or(0);
    let old = rs.status.clone().unwrap_or_default();
    let unchanged = old.replicas == status.replicas
        && old.fully_labeled_replicas.unwrap_or(0) == status.fully_labeled_replicas.unwrap_or(0)
        && old.ready_replicas.unwrap_or(0) == status.ready_replicas.unwrap_or(0)
        && old.available_replicas.unwrap_or(0) == status.available_replicas.unwrap_or(0)
        && old.observed_generation.unwrap_or(0) == generation
        && old.conditions == status.conditions;
    if !unchanged {
        let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), ns);
        let patch = json!({"status": {
            "replicas": status.replicas,
            "fullyLabeledReplicas": status.fully_labeled_replicas,
            "readyReplicas": status.ready_replicas,
            "availableReplicas": status.available_replicas,
            "observedGeneration": generation,
            "conditions": status.conditions.clone().filter(|c| !c.is_empty()),
        }});
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(msg) = manage_error {
        return Err(Error::Other(msg));
    }
    let spec = rs.spec.as_ref();
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let wait = owned
        .iter()
        .filter_map(|p| pods::recheck_after(p, min_ready, now))
        .min();
    Ok(Action::after(wait.map(Duration::from_secs)))
}

#[cfg(test)]
mod tests {
    use super::pods::tests::{pod, ts};
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn labels(app: &str) -> Option<BTreeMap<String, String>> {
        Some([("app".to_string(), app.to_string())].into())
    }

    fn rs(replicas: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: crate::util::podutil::tests::meta("web", "rs-uid", 2),
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                selector: LabelSelector {
                    match_labels: labels("web"),
                    ..Default::default()
                },
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: labels("web"),
                        annotations: Some([("a".to_string(), "b".to_string())].into()),
                        ..Default::default()
                    }),
                    spec: None,
                }),
                min_ready_seconds: None,
            }),
            status: None,
        }
    }

    fn owned_pod(name: &str, ready: bool, created: i64) -> Arc<Pod> {
        let mut p = pod(name, "", "Running", ready.then_some(10), created);
        p.metadata.labels = labels("web");
        p.metadata.owner_references = Some(vec![controller_ref(
            "apps/v1",
            "ReplicaSet",
            &rs(1).metadata,
        )]);
        Arc::new(p)
    }

    #[test]
    fn creates_missing_pods_up_to_burst() {
        let plan = plan_replicaset(&rs(3), &[owned_pod("web-a", true, 1)], &[], true, ts(100));
        assert_eq!(plan.create, 2);
        assert!(plan.delete.is_empty());
        let plan = plan_replicaset(&rs(2000), &[], &[], true, ts(100));
        assert_eq!(plan.create, BURST_REPLICAS);
        // expectations unmet: nothing created
        let plan = plan_replicaset(&rs(3), &[], &[], false, ts(100));
        assert_eq!(plan.create, 0);
    }

    #[test]
    fn deletes_least_valuable_and_ignores_terminating() {
        let mut terminating = (*owned_pod("web-t", true, 1)).clone();
        terminating.metadata.deletion_timestamp = Some(Time(ts(50)));
        let pods = vec![
            owned_pod("web-old", true, 1),
            owned_pod("web-new", true, 5),
            owned_pod("web-unready", false, 1),
            Arc::new(terminating),
        ];
        let plan = plan_replicaset(&rs(1), &pods, &[], true, ts(100));
        assert_eq!(plan.owned.len(), 3);
        assert_eq!(plan.delete, vec!["web-unready", "web-new"]);
    }

    #[test]
    fn adopts_orphans_and_releases_non_matching() {
        let mut orphan = pod("stray", "", "Running", None, 1);
        orphan.metadata.labels = labels("web");
        let mut other = pod("other", "", "Running", None, 1);
        other.metadata.labels = labels("db");
        let mut relabeled = (*owned_pod("web-x", true, 1)).clone();
        relabeled.metadata.labels = labels("debug");
        let pods = vec![Arc::new(orphan), Arc::new(other), Arc::new(relabeled)];
        let plan = plan_replicaset(&rs(1), &pods, &[], true, ts(100));
        assert_eq!(plan.adopt, vec!["stray"]);
        assert_eq!(plan.release, vec!["web-x"]);
        assert_eq!(plan.owned, vec!["stray"]);
        assert_eq!(plan.create, 0);
        // a ReplicaSet being deleted adopts nothing and creates nothing
        let mut dying = rs(3);
        dying.metadata.deletion_timestamp = Some(Time(ts(1)));
        let plan = plan_replicaset(&dying, &pods, &[], true, ts(100));
        assert!(plan.adopt.is_empty());
        assert_eq!(plan.create, 0);
    }

    #[test]
    fn status_counts_and_failure_condition() {
        let mut r = rs(3);
        if let Some(s) = r.spec.as_mut() {
            s.min_ready_seconds = Some(100);
        }
        let a = owned_pod("web-a", true, 1);
        let b = owned_pod("web-b", false, 1);
        let mut c = (*owned_pod("web-c", true, 1)).clone();
        c.metadata.labels = Some(
            [
                ("app".to_string(), "web".to_string()),
                ("extra".to_string(), "1".to_string()),
            ]
            .into(),
        );
        let st = calculate_status(&r, &[&a, &b, &c], None, ts(50));
        assert_eq!(st.replicas, 3);
        assert_eq!(st.fully_labeled_replicas, Some(3));
        assert_eq!(st.ready_replicas, Some(2));
        assert_eq!(st.available_replicas, Some(0));
        let st = calculate_status(&r, &[&a], Some("quota exceeded"), ts(500));
        assert_eq!(st.available_replicas, Some(1));
        let cond = st.conditions.clone().unwrap();
        assert_eq!(cond[0].reason.as_deref(), Some("FailedCreate"));
        r.status = Some(st);
        let st = calculate_status(&r, &[&a], None, ts(500));
        assert!(st.conditions.unwrap().is_empty());
    }

    #[test]
    fn pod_template_copied_with_owner() {
        let p = pod_from_template(&rs(1));
        assert_eq!(p.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(p.metadata.labels, labels("web"));
        assert_eq!(
            p.metadata.annotations.unwrap().get("a").map(String::as_str),
            Some("b")
        );
        let o = &p.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (
                o.kind.as_str(),
                o.uid.as_str(),
                o.controller,
                o.block_owner_deletion
            ),
            ("ReplicaSet", "rs-uid", Some(true), Some(true))
        );
    }
}
