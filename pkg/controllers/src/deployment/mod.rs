//! The Deployment controller: one ReplicaSet per pod template (`<deploy>-<pod-template-hash>`),
//! RollingUpdate and Recreate rollouts, scaling (proportional mid-rollout), pause, rollback by
//! template (`kubectl rollout undo`), history cleanup, progress deadline and the status and
//! conditions `kubectl rollout status` reads. Decisions come from the pure `plan` module; this
//! file watches, claims ReplicaSets and applies the decisions through the API, like upstream's
//! sync/rolling/recreate/progress code.

pub mod hash;
pub mod plan;

use crate::controller::{Action, Controller};
use crate::events::Recorder;
use crate::informer::{Change, Factory, Store};
use crate::queue::Queue;
use crate::util::podutil::{selector_is_empty, selector_matches};
use crate::util::{controller_of, controller_ref, selecting, ObjectKey};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use plan::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const WORKERS: usize = 5;
const RESYNC: Duration = Duration::from_secs(30);

use crate::Error;

struct Ctx {
    client: kube::Client,
    deployments: Arc<Store<Deployment>>,
    rss: Arc<Store<ReplicaSet>>,
    recorder: Recorder,
}

impl Ctx {
    fn deployments_for_rs(&self, rs: &ReplicaSet) -> Vec<ObjectKey> {
        let ns = rs.metadata.namespace.as_deref().unwrap_or("");
        if let Some(c) = controller_of(&rs.metadata) {
            if c.kind == "Deployment" {
                return vec![ObjectKey::new(ns, c.name.clone())];
            }
            return Vec::new();
        }
        let labels = rs.metadata.labels.as_ref();
        selecting(&self.deployments, ns, labels, |d| {
            Some(&d.spec.as_ref()?.selector)
        })
    }

    fn on_rs(&self, queue: &Queue<ObjectKey>, change: &Change<ReplicaSet>) {
        match change {
            Change::Applied { old, new } => {
                if let Some(old) = old {
                    if old.metadata.resource_version == new.metadata.resource_version {
                        return;
                    }
                    if controller_of(&old.metadata).map(|c| &c.uid)
                        != controller_of(&new.metadata).map(|c| &c.uid)
                    {
                        for k in self.deployments_for_rs(old) {
                            queue.add(k);
                        }
                    }
                }
                for k in self.deployments_for_rs(new) {
                    queue.add(k);
                }
            }
            Change::Deleted(rs) => {
                for k in self.deployments_for_rs(rs) {
                    queue.add(k);
                }
            }
        }
    }
}

/// Registers the Deployment controller's handlers on the shared informers and spawns its
/// workers (they start once the caches have synced).
pub fn start(factory: &Factory, _cfg: Arc<crate::Config>) {
    let client = factory.client();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        deployments: factory.store::<Deployment>(),
        rss: factory.store::<ReplicaSet>(),
        recorder: Recorder::new(client, "deployment-controller"),
    });
    let c = Arc::clone(&ctx);
    Controller::new(factory, "deployment")
        .backoff(Duration::from_millis(100), Duration::from_secs(30))
        .reconciles::<Deployment>()
        .handles::<ReplicaSet>(move |q, ch| c.on_rs(q, ch))
        .workers(WORKERS)
        .resync(RESYNC)
        .run(ctx, |ctx: Arc<Ctx>, key: ObjectKey| async move {
            let mut s = Sync {
                ctx: &ctx,
                requeue: None,
            };
            s.sync(&key).await.map(|()| Action::after(s.requeue))
        });
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

fn selector_with_hash(sel: &LabelSelector, hash: &str) -> LabelSelector {
    let mut s = sel.clone();
    s.match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(HASH_LABEL.into(), hash.into());
    s
}

/// One sync of one Deployment; `requeue` collects a timer request.
struct Sync<'a> {
    ctx: &'a Ctx,
    requeue: Option<Duration>,
}

impl Sync<'_> {
    fn want_requeue(&mut self, d: Duration) {
        self.requeue = Some(self.requeue.map_or(d, |r| r.min(d)));
    }

    async fn sync(&mut self, key: &ObjectKey) -> Result<(), Error> {
        let Some(d) = self.ctx.deployments.get(&key.namespace, &key.name) else {
            return Ok(());
        };
        let mut d = (*d).clone();
        let Some(spec) = d.spec.clone() else {
            return Ok(());
        };
        if selector_is_empty(&spec.selector) {
            self.ctx
                .recorder
                .record(
                    &d,
                    "Warning",
                    "SelectingAll",
                    "This deployment is selecting all pods. A non-empty selector is required.",
                )
                .await;
            let generation = d.metadata.generation.unwrap_or(0);
            if d.status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0)
                < generation
            {
                let mut st = d.status.clone().unwrap_or_default();
                st.observed_generation = Some(generation);
                self.write_status(&mut d, st).await?;
            }
            return Ok(());
        }
        let mut rss = self.claim_replicasets(&d).await?;
        if d.metadata.deletion_timestamp.is_some() {
            let (new_rs, olds) = self.get_all(&mut d, &mut rss, false).await?;
            return self.sync_status(&mut d, &rss, (new_rs, &olds), false).await;
        }
        self.check_paused_conditions(&mut d).await?;
        if is_paused(&d) {
            return self.sync_scale(&mut d, &mut rss).await;
        }
        {
            let (new_rs, olds) = self.get_all(&mut d, &mut rss, false).await?;
            let olds_ref: Vec<&ReplicaSet> = olds.iter().map(|i| &rss[*i]).collect();
            if is_scaling_event(&d, new_rs.map(|i| &rss[i]), &olds_ref) {
                return self.sync_scale(&mut d, &mut rss).await;
            }
        }
        if is_recreate(&d) {
            self.rollout_recreate(&mut d, &mut rss).await
        } else {
            self.rollout_rolling(&mut d, &mut rss).await
        }
    }

    /// Adopts orphan ReplicaSets matching the selector and releases owned ones that stopped
    /// matching; returns the owned ReplicaSets.
    async fn claim_replicasets(&self, d: &Deployment) -> Result<Vec<ReplicaSet>, Error> {
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let selector = d.spec.clone().unwrap_or_default().selector;
        let api: Api<ReplicaSet> = Api::namespaced(self.ctx.client.clone(), &ns);
        let deleting = d.metadata.deletion_timestamp.is_some();
        let mut owned = Vec::new();
        for rs in self.ctx.rss.list(&ns) {
            let matches = selector_matches(&selector, rs.metadata.labels.as_ref());
            let name = rs.metadata.name.clone().unwrap_or_default();
            match controller_of(&rs.metadata) {
                Some(c) if c.uid == uid => {
                    if matches || deleting {
                        owned.push((*rs).clone());
                    } else {
                        let refs: Vec<OwnerReference> = rs
                            .metadata
                            .owner_references
                            .clone()
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|r| r.uid != uid)
                            .collect();
                        let refs = crate::util::list_or_null(&refs);
                        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": rs.metadata.resource_version}});
                        match api
                            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                        {
                            Ok(_) => {}
                            Err(e) if is_status(&e, 404) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                Some(_) => {}
                None => {
                    if matches && !deleting && rs.metadata.deletion_timestamp.is_none() {
                        let mut refs = rs.metadata.owner_references.clone().unwrap_or_default();
                        refs.push(controller_ref("apps/v1", "Deployment", &d.metadata));
                        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": rs.metadata.resource_version}});
                        let adopted = api
                            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await?;
                        owned.push(adopted);
                    }
                }
            }
        }
        Ok(owned)
    }

    /// upstream's getAllReplicaSetsAndSyncRevision: (index of the new RS, indexes of the old
    /// ones) into `rss`, creating the new one when `create`.
    async fn get_all(
        &mut self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
        create: bool,
    ) -> Result<(Option<usize>, Vec<usize>), Error> {
        let new_idx = find_new_rs(d, rss);
        let olds: Vec<usize> = (0..rss.len()).filter(|i| Some(*i) != new_idx).collect();
        let new_revision = max_revision(olds.iter().map(|i| &rss[*i])) + 1;
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let rs_api: Api<ReplicaSet> = Api::namespaced(self.ctx.client.clone(), &ns);
        let now = now_seconds();
        if let Some(i) = new_idx {
            let mut ann = rss[i].metadata.annotations.clone().unwrap_or_default();
            let changed = set_new_rs_annotations(d, &mut ann, new_revision, true);
            let min_ready = min_ready_seconds(d);
            let rs_min_ready = rss[i]
                .spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0);
            if changed || rs_min_ready != min_ready {
                let patch = json!({
                    "metadata": {"annotations": ann, "resourceVersion": rss[i].metadata.resource_version},
                    "spec": {"minReadySeconds": min_ready},
                });
                let name = rss[i].metadata.name.clone().unwrap_or_default();
                rss[i] = rs_api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                return Ok((Some(i), olds));
            }
            let rev = rss[i]
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                .cloned()
                .unwrap_or_default();
            self.set_deployment_revision(d, &rev).await?;
            let mut st = d.status.clone().unwrap_or_default();
            if progress_deadline(d).is_some() && condition(&st, "Progressing").is_none() {
                let msg = format!(
                    "Found new replica set {:?}",
                    rss[i].metadata.name.as_deref().unwrap_or("")
                );
                set_condition(
                    &mut st,
                    new_condition("Progressing", "True", FOUND_NEW_RS, &msg, now),
                );
                self.write_status(d, st).await?;
            }
            return Ok((Some(i), olds));
        }
        if !create {
            return Ok((None, olds));
        }
        let spec = d.spec.clone().unwrap_or_default();
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = hash::pod_template_hash(&spec.template, collision);
        let mut template = spec.template.clone();
        template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(HASH_LABEL.into(), hash.clone());
        let dname = d.metadata.name.clone().unwrap_or_default();
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{dname}-{hash}")),
                namespace: Some(ns.clone()),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                owner_references: Some(vec![controller_ref("apps/v1", "Deployment", &d.metadata)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: Some(spec.min_ready_seconds.unwrap_or(0)),
                selector: selector_with_hash(&spec.selector, &hash),
                template: Some(template),
            }),
            status: None,
        };
        let all: Vec<&ReplicaSet> = olds.iter().map(|i| &rss[*i]).collect();
        let count = new_rs_new_replicas(d, &all, &new_rs);
        if let Some(s) = new_rs.spec.as_mut() {
            s.replicas = Some(count);
        }
        let mut ann = BTreeMap::new();
        set_new_rs_annotations(d, &mut ann, new_revision, false);
        new_rs.metadata.annotations = Some(ann);
        let rs_name = new_rs.metadata.name.clone().unwrap_or_default();
        let created = match rs_api.create(&PostParams::default(), &new_rs).await {
            Ok(rs) => rs,
            Err(e) if is_status(&e, 409) => {
                // Already exists: ours with the same template (a stale cache), or a collision.
                let existing = rs_api.get_opt(&rs_name).await?;
                if let Some(rs) = existing {
                    let ours = controller_of(&rs.metadata)
                        .is_some_and(|c| Some(&c.uid) == d.metadata.uid.as_ref());
                    let same = rs
                        .spec
                        .as_ref()
                        .and_then(|s| s.template.as_ref())
                        .is_some_and(|t| equal_ignore_hash(t, &spec.template));
                    if ours && same {
                        rss.push(rs);
                        return Ok((Some(rss.len() - 1), olds));
                    }
                }
                let mut st = d.status.clone().unwrap_or_default();
                st.collision_count = Some(st.collision_count.unwrap_or(0) + 1);
                self.write_status(d, st).await?;
                return Err(Error::Other(format!(
                    "hash collision for replica set {rs_name:?}: bumped collisionCount"
                )));
            }
            Err(e) => {
                let detail = match &e {
                    kube::Error::Api(s) => s.message.clone(),
                    other => other.to_string(),
                };
                let msg = format!("Failed to create new replica set {rs_name:?}: {detail}");
                if progress_deadline(d).is_some() {
                    let mut st = d.status.clone().unwrap_or_default();
                    set_condition(
                        &mut st,
                        new_condition("Progressing", "False", FAILED_RS_CREATE, &msg, now),
                    );
                    self.write_status(d, st).await?;
                }
                self.ctx
                    .recorder
                    .record(d, "Warning", FAILED_RS_CREATE, &msg)
                    .await;
                return Err(e.into());
            }
        };
        if count > 0 {
            self.ctx
                .recorder
                .record(
                    d,
                    "Normal",
                    "ScalingReplicaSet",
                    &format!("Scaled up replica set {rs_name} from 0 to {count}"),
                )
                .await;
        }
        self.set_deployment_revision(d, &new_revision.to_string())
            .await?;
        if progress_deadline(d).is_some() {
            let mut st = d.status.clone().unwrap_or_default();
            let msg = format!("Created new replica set {rs_name:?}");
            set_condition(
                &mut st,
                new_condition("Progressing", "True", NEW_RS_CREATED, &msg, now),
            );
            self.write_status(d, st).await?;
        }
        rss.push(created);
        Ok((Some(rss.len() - 1), olds))
    }

    async fn set_deployment_revision(&self, d: &mut Deployment, rev: &str) -> Result<(), Error> {
        let cur = d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION));
        if cur.map(String::as_str) == Some(rev) {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(
            self.ctx.client.clone(),
            d.metadata.namespace.as_deref().unwrap_or(""),
        );
        let patch = json!({"metadata": {"annotations": {REVISION: rev}}});
        let name = d.metadata.name.clone().unwrap_or_default();
        let updated = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        d.metadata = updated.metadata;
        Ok(())
    }

    /// Writes `status` (unless unchanged) and keeps the local copy current.
    async fn write_status(
        &self,
        d: &mut Deployment,
        status: DeploymentStatus,
    ) -> Result<(), Error> {
        if d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(
            self.ctx.client.clone(),
            d.metadata.namespace.as_deref().unwrap_or(""),
        );
        let patch = json!({"status": status});
        let name = d.metadata.name.clone().unwrap_or_default();
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(updated) => {
                d.status = Some(status);
                d.metadata.resource_version = updated.metadata.resource_version;
                Ok(())
            }
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Scales one ReplicaSet (and refreshes its desired/max annotations) with the event.
    async fn scale_rs(
        &self,
        d: &Deployment,
        rs: &mut ReplicaSet,
        new_scale: i32,
        op: &str,
    ) -> Result<bool, Error> {
        let old_scale = rs_replicas(rs);
        let mut ann = rs.metadata.annotations.clone().unwrap_or_default();
        let ann_changed =
            set_replicas_annotations(&mut ann, replicas(d), replicas(d) + max_surge(d));
        if old_scale == new_scale && !ann_changed {
            return Ok(false);
        }
        let api: Api<ReplicaSet> = Api::namespaced(
            self.ctx.client.clone(),
            rs.metadata.namespace.as_deref().unwrap_or(""),
        );
        let patch = json!({
            "metadata": {"annotations": ann, "resourceVersion": rs.metadata.resource_version},
            "spec": {"replicas": new_scale},
        });
        let name = rs.metadata.name.clone().unwrap_or_default();
        *rs = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        if old_scale != new_scale {
            let op = if op.is_empty() {
                if new_scale > old_scale {
                    "up"
                } else {
                    "down"
                }
            } else {
                op
            };
            self.ctx
                .recorder
                .record(
                    d,
                    "Normal",
                    "ScalingReplicaSet",
                    &format!("Scaled {op} replica set {name} from {old_scale} to {new_scale}"),
                )
                .await;
            return Ok(true);
        }
        Ok(false)
    }

    async fn apply_sizes(
        &self,
        d: &Deployment,
        rss: &mut [ReplicaSet],
        sizes: &[(String, i32)],
        op: &str,
    ) -> Result<bool, Error> {
        let mut any = false;
        for (name, n) in sizes {
            if let Some(rs) = rss
                .iter_mut()
                .find(|r| r.metadata.name.as_deref() == Some(name))
            {
                any |= self.scale_rs(d, rs, *n, op).await?;
            }
        }
        Ok(any)
    }

    async fn cleanup(
        &self,
        d: &Deployment,
        rss: &[ReplicaSet],
        olds: &[usize],
    ) -> Result<(), Error> {
        let olds_ref: Vec<&ReplicaSet> = olds.iter().map(|i| &rss[*i]).collect();
        let api: Api<ReplicaSet> = Api::namespaced(
            self.ctx.client.clone(),
            d.metadata.namespace.as_deref().unwrap_or(""),
        );
        for name in cleanup_plan(d, &olds_ref) {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// upstream's `sync`: scaling events and paused Deployments.
    async fn sync_scale(
        &mut self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
    ) -> Result<(), Error> {
        let (new_rs, olds) = self.get_all(d, rss, false).await?;
        let (sizes, op) = {
            let olds_ref: Vec<&ReplicaSet> = olds.iter().map(|i| &rss[*i]).collect();
            scale_plan(d, new_rs.map(|i| &rss[i]), &olds_ref)
        };
        self.apply_sizes(d, rss, &sizes, op).await?;
        if is_paused(d) {
            self.cleanup(d, rss, &olds).await?;
        }
        self.sync_status(d, rss, (new_rs, &olds), false).await
    }

    async fn check_paused_conditions(&self, d: &mut Deployment) -> Result<(), Error> {
        if progress_deadline(d).is_none() {
            return Ok(());
        }
        let mut st = d.status.clone().unwrap_or_default();
        let cond = condition(&st, "Progressing");
        if cond.is_some_and(|c| c.reason.as_deref() == Some(TIMED_OUT)) {
            return Ok(());
        }
        let paused_cond = cond.is_some_and(|c| c.reason.as_deref() == Some(PAUSED));
        let now = now_seconds();
        if is_paused(d) && !paused_cond {
            set_condition(
                &mut st,
                new_condition(
                    "Progressing",
                    "Unknown",
                    PAUSED,
                    "Deployment is paused",
                    now,
                ),
            );
        } else if !is_paused(d) && paused_cond {
            set_condition(
                &mut st,
                new_condition(
                    "Progressing",
                    "Unknown",
                    RESUMED,
                    "Deployment is resumed",
                    now,
                ),
            );
        } else {
            return Ok(());
        }
        self.write_status(d, st).await
    }

    /// Writes the Deployment's status: upstream's `syncRolloutStatus` (with the Progressing
    /// condition and its deadline timer) when `rollout`, else `syncDeploymentStatus`.
    async fn sync_status(
        &mut self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
        (new_rs, olds): (Option<usize>, &[usize]),
        rollout: bool,
    ) -> Result<(), Error> {
        let all: Vec<&ReplicaSet> = olds.iter().chain(new_rs.iter()).map(|i| &rss[*i]).collect();
        let new = new_rs.map(|i| &rss[i]);
        if !rollout {
            let st = calculate_status(d, &all, new, now_seconds());
            return self.write_status(d, st).await;
        }
        let (st, requeue) = rollout_status(d, &all, new, now_seconds());
        if d.status.as_ref() == Some(&st) {
            if let Some(secs) = requeue {
                self.want_requeue(Duration::from_secs(secs));
            }
            return Ok(());
        }
        self.write_status(d, st).await
    }

    async fn rollout_rolling(
        &mut self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
    ) -> Result<(), Error> {
        let (new_rs, olds) = self.get_all(d, rss, true).await?;
        let Some(ni) = new_rs else {
            return Err(Error::Other("new replica set not created yet".into()));
        };
        // Scale up, if we can.
        let target = {
            let all: Vec<&ReplicaSet> = olds.iter().chain([&ni]).map(|i| &rss[*i]).collect();
            if rs_replicas(&rss[ni]) > replicas(d) {
                replicas(d)
            } else {
                new_rs_new_replicas(d, &all, &rss[ni])
            }
        };
        if target != rs_replicas(&rss[ni]) {
            let op = if target > rs_replicas(&rss[ni]) {
                "up"
            } else {
                "down"
            };
            let mut rs = rss[ni].clone();
            let scaled = self.scale_rs(d, &mut rs, target, op).await?;
            rss[ni] = rs;
            if scaled {
                return self.sync_status(d, rss, (new_rs, &olds), true).await;
            }
        }
        // Scale down, if we can.
        let sizes = {
            let active: Vec<&ReplicaSet> = olds
                .iter()
                .map(|i| &rss[*i])
                .filter(|r| rs_replicas(r) > 0)
                .collect();
            old_scale_down_plan(d, &rss[ni], &active)
        };
        if self.apply_sizes(d, rss, &sizes, "down").await? {
            return self.sync_status(d, rss, (new_rs, &olds), true).await;
        }
        if deployment_complete(d, &d.status.clone().unwrap_or_default()) {
            self.cleanup(d, rss, &olds).await?;
        }
        self.sync_status(d, rss, (new_rs, &olds), true).await
    }

    /// True while pods of old ReplicaSets still exist (running, pending or terminating).
    async fn old_pods_running(
        &self,
        d: &Deployment,
        rss: &[ReplicaSet],
        new_rs: Option<usize>,
        olds: &[usize],
    ) -> Result<bool, Error> {
        if olds
            .iter()
            .map(|i| rss[*i].status.as_ref().map(|s| s.replicas).unwrap_or(0))
            .sum::<i32>()
            > 0
        {
            return Ok(true);
        }
        let old_uids: Vec<&str> = olds
            .iter()
            .filter_map(|i| rss[*i].metadata.uid.as_deref())
            .collect();
        if old_uids.is_empty() {
            return Ok(false);
        }
        let _ = new_rs;
        let selector = d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            d.metadata.namespace.as_deref().unwrap_or(""),
        );
        let pods = api
            .list(&ListParams::default().labels(&selector_string(&selector)))
            .await?;
        Ok(pods.items.iter().any(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Failed") | Some("Succeeded"))
                && controller_of(&p.metadata).is_some_and(|c| old_uids.contains(&c.uid.as_str()))
        }))
    }

    async fn rollout_recreate(
        &mut self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
    ) -> Result<(), Error> {
        let (mut new_rs, mut olds) = self.get_all(d, rss, false).await?;
        let down: Vec<(String, i32)> = olds
            .iter()
            .map(|i| &rss[*i])
            .filter(|r| rs_replicas(r) > 0)
            .map(|r| (r.metadata.name.clone().unwrap_or_default(), 0))
            .collect();
        if self.apply_sizes(d, rss, &down, "down").await? {
            return self.sync_status(d, rss, (new_rs, &olds), true).await;
        }
        if self.old_pods_running(d, rss, new_rs, &olds).await? {
            self.want_requeue(Duration::from_secs(1));
            return self.sync_status(d, rss, (new_rs, &olds), true).await;
        }
        if new_rs.is_none() {
            (new_rs, olds) = self.get_all(d, rss, true).await?;
        }
        if let Some(ni) = new_rs {
            let mut rs = rss[ni].clone();
            self.scale_rs(d, &mut rs, replicas(d), "up").await?;
            rss[ni] = rs;
        }
        if deployment_complete(d, &d.status.clone().unwrap_or_default()) {
            self.cleanup(d, rss, &olds).await?;
        }
        self.sync_status(d, rss, (new_rs, &olds), true).await
    }
}

/// A typed LabelSelector as a `labelSelector=` string.
pub fn selector_string(sel: &LabelSelector) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        parts.push(format!("{k}={v}"));
    }
    for e in sel.match_expressions.iter().flatten() {
        let vals = e.values.clone().unwrap_or_default().join(",");
        match e.operator.as_str() {
            "In" => parts.push(format!("{} in ({vals})", e.key)),
            "NotIn" => parts.push(format!("{} notin ({vals})", e.key)),
            "Exists" => parts.push(e.key.clone()),
            "DoesNotExist" => parts.push(format!("!{}", e.key)),
            _ => {}
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::podutil::tests::requirement;

    #[test]
    fn selector_strings() {
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![
                requirement("tier", "In", &["a", "b"]),
                requirement("x", "DoesNotExist", &[]),
            ]),
        };
        assert_eq!(selector_string(&sel), "app=web,tier in (a,b),!x");
        let h = selector_with_hash(&sel, "abc");
        assert_eq!(
            h.match_labels.unwrap().get(HASH_LABEL).map(String::as_str),
            Some("abc")
        );
    }
}
