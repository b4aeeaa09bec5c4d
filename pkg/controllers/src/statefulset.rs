//! The StatefulSet controller, as upstream's `pkg/controller/statefulset`: stable pod names
//! `<set>-<ordinal>` (from `spec.ordinals.start`), `OrderedReady` (one pod at a time, in order,
//! each Running and Ready before the next; scale-down in reverse) and `Parallel` management,
//! hostname/subdomain identity, PVCs `<claim>-<set>-<ordinal>` from `volumeClaimTemplates` with
//! the `persistentVolumeClaimRetentionPolicy` expressed as ownerReferences (the garbage
//! collector deletes), ControllerRevisions, and RollingUpdate in reverse ordinal order down to
//! the partition (or OnDelete).

use crate::controller::{Action, Controller};
use crate::daemonset::has_revision_label;
use crate::informer::{Factory, Store};
use crate::util::history::{self, REVISION_LABEL};
use crate::util::{is_controlled_by, owner_key, patch_status, podutil, ObjectKey, Workload};
use crate::{Config, Error};
use k8s_openapi::api::apps::v1::{
    ControllerRevision, StatefulSet, StatefulSetSpec, StatefulSetStatus,
};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Label with the pod's name (upstream `StatefulSetPodNameLabel`).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Label with the pod's ordinal (upstream `PodIndexLabel`).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// One step of a StatefulSet reconcile, in the order they must happen.
#[derive(Debug, Clone, PartialEq)]
pub enum StsAction {
    /// Create the pod's missing claims (already built), then the pod.
    CreatePod {
        pod: Box<Pod>,
        claims: Vec<PersistentVolumeClaim>,
    },
    /// Create missing claims of an existing (pending) pod.
    CreateClaims {
        pod: String,
        claims: Vec<PersistentVolumeClaim>,
    },
    /// Delete a pod: (name, uid, why: "failed" | "condemned" | "update").
    DeletePod {
        name: String,
        uid: String,
        why: &'static str,
    },
    /// Restore a pod's identity labels.
    FixLabels {
        pod: String,
        labels: Vec<(String, String)>,
    },
    /// Replace a claim's ownerReferences (retention policy).
    SetClaimOwners {
        claim: String,
        owners: Vec<OwnerReference>,
    },
}

/// The result of [`plan`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StsPlan {
    pub actions: Vec<StsAction>,
    pub status: StatefulSetStatus,
    pub requeue_after: Option<Duration>,
}

/// Inputs of [`plan`].
pub struct StsInput<'a> {
    pub set: &'a StatefulSet,
    /// Pods the set controls.
    pub pods: &'a [&'a Pod],
    /// Claims in the set's namespace, by name.
    pub claims: &'a HashMap<String, &'a PersistentVolumeClaim>,
    pub current: &'a ControllerRevision,
    pub update: &'a ControllerRevision,
    pub collision_count: i32,
    pub now: Timestamp,
}

fn set_name(set: &StatefulSet) -> &str {
    set.metadata.name.as_deref().unwrap_or("")
}

/// Upstream `getParentNameAndOrdinal`: `<parent>-<ordinal>`.
pub fn parent_and_ordinal(pod_name: &str) -> Option<(&str, i32)> {
    let (parent, ord) = pod_name.rsplit_once('-')?;
    if ord.is_empty() || !ord.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, ord.parse().ok()?))
}

/// A field of the spec, if the set has a spec.
fn spec<T>(set: &StatefulSet, f: impl Fn(&StatefulSetSpec) -> Option<T>) -> Option<T> {
    set.spec.as_ref().and_then(f)
}

fn start_ordinal(set: &StatefulSet) -> i32 {
    spec(set, |s| s.ordinals.as_ref()?.start).unwrap_or(0)
}

fn replicas(set: &StatefulSet) -> i32 {
    spec(set, |s| s.replicas).unwrap_or(1).max(0)
}

fn min_ready(set: &StatefulSet) -> i32 {
    spec(set, |s| s.min_ready_seconds).unwrap_or(0)
}

fn partition(set: &StatefulSet) -> Option<i32> {
    let us = set.spec.as_ref()?.update_strategy.as_ref()?;
    if us.type_.as_deref().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return None;
    }
    Some(us.rolling_update.as_ref()?.partition.unwrap_or(0))
}

fn is_rolling(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate"
}

fn revision_of(pod: &Pod) -> &str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_LABEL))
        .map(String::as_str)
        .unwrap_or("")
}

fn is_created(pod: &Pod) -> bool {
    !podutil::phase(pod).is_empty() || pod.metadata.uid.is_some()
}

fn running_and_ready(pod: &Pod) -> bool {
    podutil::phase(pod) == "Running" && podutil::is_ready(pod)
}

fn healthy(pod: &Pod) -> bool {
    running_and_ready(pod) && !podutil::is_terminating(pod)
}

/// Upstream `getPersistentVolumeClaimName`: `<claim template>-<set>-<ordinal>`.
pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{set}-{ordinal}")
}

/// The claims a pod of the set needs (upstream `getPersistentVolumeClaims`).
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let Some(spec) = set.spec.as_ref() else {
        return vec![];
    };
    let match_labels = spec.selector.match_labels.clone().unwrap_or_default();
    spec.volume_claim_templates
        .iter()
        .flatten()
        .map(|t| {
            let tname = t.metadata.name.clone().unwrap_or_default();
            let mut labels = t.metadata.labels.clone().unwrap_or_default();
            labels.extend(match_labels.clone());
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(&tname, set_name(set), ordinal)),
                    namespace: set.metadata.namespace.clone(),
                    labels: Some(labels),
                    annotations: t.metadata.annotations.clone(),
                    ..Default::default()
                },
                spec: t.spec.clone(),
                status: None,
            }
        })
        .collect()
}

/// A pod of the set from a revision's template (upstream `newStatefulSetPod` + identity +
/// storage + revision label).
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, revision: &str, ordinal: i32) -> Pod {
    let name = format!("{}-{ordinal}", set_name(set));
    let mut pod = crate::util::pod_control::pod_from_template(set, template, set_name(set));
    pod.metadata.generate_name = None;
    pod.metadata.name = Some(name.clone());
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_LABEL.into(), revision.to_string());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = Some(name.clone());
    spec.subdomain = set
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .filter(|s| !s.is_empty());
    let claims = set
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.clone())
        .unwrap_or_default();
    if !claims.is_empty() {
        let mut vols: Vec<Volume> = spec.volumes.take().unwrap_or_default();
        for t in &claims {
            let tname = t.metadata.name.clone().unwrap_or_default();
            vols.retain(|v| v.name != tname);
            vols.push(Volume {
                name: tname.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim_name(&tname, set_name(set), ordinal),
                    read_only: Some(false),
                }),
                ..Default::default()
            });
        }
        spec.volumes = Some(vols);
    }
    pod
}

fn plain_ref(api_version: &str, kind: &str, meta: &ObjectMeta) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        controller: None,
        block_owner_deletion: None,
    })
}

/// The ownerReferences a claim should carry under the retention policy (upstream
/// `updateClaimOwnerRefForSetAndPod`): `whenDeleted: Delete` → owned by the set; `whenScaled:
/// Delete` → a claim of a scaled-down (condemned) pod is owned by that pod only.
pub fn claim_owners(
    set: &StatefulSet,
    pod: Option<&Pod>,
    existing: &[OwnerReference],
    scaled_down: bool,
) -> Vec<OwnerReference> {
    let policy = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let deleted = policy
        .and_then(|p| p.when_deleted.as_deref())
        .unwrap_or("Retain")
        == "Delete";
    let scaled = policy
        .and_then(|p| p.when_scaled.as_deref())
        .unwrap_or("Retain")
        == "Delete";
    let set_uid = set.metadata.uid.as_deref().unwrap_or("");
    let pod_uid = pod
        .and_then(|p| p.metadata.uid.as_deref())
        .unwrap_or("\u{0}");
    let mut out: Vec<OwnerReference> = existing
        .iter()
        .filter(|r| r.uid != set_uid && r.uid != pod_uid)
        .cloned()
        .collect();
    let want_pod = scaled && scaled_down && pod.is_some();
    let want_set = deleted && !want_pod;
    if want_set {
        out.extend(plain_ref("apps/v1", "StatefulSet", &set.metadata));
    }
    if want_pod {
        out.extend(pod.and_then(|p| plain_ref("v1", "Pod", &p.metadata)));
    }
    out
}

fn same_owners(a: &[OwnerReference], b: &[OwnerReference]) -> bool {
    let ids = |v: &[OwnerReference]| {
        let mut u: Vec<String> = v.iter().map(|r| r.uid.clone()).collect();
        u.sort();
        u
    };
    ids(a) == ids(b)
}

/// The planning core (upstream `updateStatefulSet` with `completeRollingUpdate`).
pub fn plan(input: &StsInput<'_>) -> StsPlan {
    let set = input.set;
    let name = set_name(set);
    let start = start_ordinal(set);
    let count = replicas(set);
    let min_ready = min_ready(set);
    let now = input.now;
    let cur_name = input.current.metadata.name.clone().unwrap_or_default();
    let upd_name = input.update.metadata.name.clone().unwrap_or_default();
    let mut out = StsPlan::default();

    // Status over the pods as they are.
    let mut st = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        current_revision: Some(cur_name.clone()),
        update_revision: Some(upd_name.clone()),
        collision_count: Some(input.collision_count),
        ..Default::default()
    };
    let (mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0);
    for p in input.pods.iter().copied() {
        if is_created(p) {
            st.replicas += 1;
        }
        if running_and_ready(p) {
            ready += 1;
            if podutil::is_available(p, min_ready, now) {
                available += 1;
            }
        }
        if is_created(p) && !podutil::is_terminating(p) {
            if revision_of(p) == cur_name {
                current += 1;
            }
            if revision_of(p) == upd_name {
                updated += 1;
            }
        }
    }
    st.ready_replicas = Some(ready);
    st.available_replicas = Some(available);
    st.current_replicas = Some(current);
    st.updated_replicas = Some(updated);

    // Split into the ordinals we keep and the condemned ones.
    let slots = usize::try_from(count).unwrap_or(0);
    let mut replicas_: Vec<Option<&Pod>> = vec![None; slots];
    let mut condemned: Vec<(i32, &Pod)> = vec![];
    for p in input.pods.iter().copied() {
        let Some((parent, ord)) = p.metadata.name.as_deref().and_then(parent_and_ordinal) else {
            continue;
        };
        if parent != name {
            continue;
        }
        if ord >= start && ord < start + count {
            if let Ok(i) = usize::try_from(ord - start) {
                replicas_[i] = Some(p);
            }
        } else {
            condemned.push((ord, p));
        }
    }
    condemned.sort_by_key(|c| std::cmp::Reverse(c.0));
    // First unhealthy pod: among the replicas in order (a missing pod is unhealthy), then the
    // condemned from the lowest ordinal.
    let first_unhealthy: Option<i32> = replicas_
        .iter()
        .enumerate()
        .find(|(_, p)| p.is_none_or(|p| !healthy(p)))
        .map(|(i, _)| start + i32::try_from(i).unwrap_or(0))
        .or_else(|| {
            condemned
                .iter()
                .rev()
                .find(|(_, p)| !healthy(p))
                .map(|(o, _)| *o)
        });

    if set.metadata.deletion_timestamp.is_some() {
        out.status = st;
        return out;
    }
    let monotonic = set
        .spec
        .as_ref()
        .and_then(|s| s.pod_management_policy.as_deref())
        .unwrap_or("OrderedReady")
        != "Parallel";
    let current_template = history::template_of(input.current).unwrap_or_else(|| {
        set.spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default()
    });
    let update_template = history::template_of(input.update).unwrap_or_else(|| {
        set.spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default()
    });
    let missing_claims = |ord: i32| -> Vec<PersistentVolumeClaim> {
        claims_for(set, ord)
            .into_iter()
            .filter(|c| {
                c.metadata
                    .name
                    .as_ref()
                    .is_none_or(|n| !input.claims.contains_key(n))
            })
            .map(|mut c| {
                let owners = claim_owners(set, None, &[], false);
                c.metadata.owner_references = (!owners.is_empty()).then_some(owners);
                c
            })
            .collect()
    };
    let wait = |secs: i64, out: &mut StsPlan| {
        let d = Duration::from_secs(secs.unsigned_abs().max(1));
        out.requeue_after = Some(out.requeue_after.map_or(d, |r| r.min(d)));
    };
    let fix_claims = |p: &Pod, ord: i32, scaled_down: bool, out: &mut StsPlan| {
        for c in claims_for(set, ord) {
            let cname = c.metadata.name.clone().unwrap_or_default();
            let Some(existing) = input.claims.get(&cname) else {
                continue;
            };
            let have = existing
                .metadata
                .owner_references
                .clone()
                .unwrap_or_default();
            let want = claim_owners(set, Some(p), &have, scaled_down);
            if !same_owners(&have, &want) {
                out.actions.push(StsAction::SetClaimOwners {
                    claim: cname,
                    owners: want,
                });
            }
        }
    };

    // 1. The replicas, in order.
    let mut blocked = false;
    for (i, slot) in replicas_.iter().enumerate() {
        let ord = start + i32::try_from(i).unwrap_or(0);
        let Some(p) = slot else {
            let from_current = partition(set).is_some_and(|part| ord < part);
            let (t, rev) = if from_current {
                (&current_template, &cur_name)
            } else {
                (&update_template, &upd_name)
            };
            out.actions.push(StsAction::CreatePod {
                pod: Box::new(new_pod(set, t, rev, ord)),
                claims: missing_claims(ord),
            });
            if monotonic {
                blocked = true;
                break;
            }
            continue;
        };
        let pname = p.metadata.name.clone().unwrap_or_default();
        if podutil::is_terminal(p) {
            if !podutil::is_terminating(p) {
                out.actions.push(StsAction::DeletePod {
                    name: pname,
                    uid: p.metadata.uid.clone().unwrap_or_default(),
                    why: "failed",
                });
            }
            if monotonic {
                blocked = true;
                break;
            }
            continue;
        }
        if podutil::phase(p) == "Pending" {
            let missing = missing_claims(ord);
            if !missing.is_empty() {
                out.actions.push(StsAction::CreateClaims {
                    pod: pname.clone(),
                    claims: missing,
                });
            }
        }
        if monotonic && (podutil::is_terminating(p) || !running_and_ready(p)) {
            blocked = true;
            break;
        }
        if monotonic && !podutil::is_available(p, min_ready, now) {
            if let Some(s) = podutil::seconds_until_available(p, min_ready, now) {
                wait(s, &mut out);
            }
            blocked = true;
            break;
        }
        let labels = p.metadata.labels.as_ref();
        let want = [
            (POD_NAME_LABEL.to_string(), pname.clone()),
            (POD_INDEX_LABEL.to_string(), ord.to_string()),
        ];
        let wrong: Vec<(String, String)> = want
            .into_iter()
            .filter(|(k, v)| labels.and_then(|l| l.get(k)) != Some(v))
            .collect();
        if !wrong.is_empty() {
            out.actions.push(StsAction::FixLabels {
                pod: pname.clone(),
                labels: wrong,
            });
        }
        fix_claims(p, ord, false, &mut out);
    }
    if blocked {
        out.status = st;
        return out;
    }
    // 2. Claims of condemned pods follow the retention policy before the pods go.
    for (ord, p) in &condemned {
        fix_claims(p, *ord, true, &mut out);
    }
    // 3. Condemned pods, highest ordinal first.
    for (ord, p) in &condemned {
        if podutil::is_terminating(p) {
            if monotonic {
                blocked = true;
                break;
            }
            continue;
        }
        let first = first_unhealthy == Some(*ord);
        if monotonic && !first && !running_and_ready(p) {
            blocked = true;
            break;
        }
        if monotonic && !first && !podutil::is_available(p, min_ready, now) {
            if let Some(s) = podutil::seconds_until_available(p, min_ready, now) {
                wait(s, &mut out);
            }
            blocked = true;
            break;
        }
        out.actions.push(StsAction::DeletePod {
            name: p.metadata.name.clone().unwrap_or_default(),
            uid: p.metadata.uid.clone().unwrap_or_default(),
            why: "condemned",
        });
        if monotonic {
            blocked = true;
            break;
        }
    }
    if !blocked && is_rolling(set) {
        // 4. Rolling update: newest ordinal first, one at a time, down to the partition.
        let update_min = usize::try_from(partition(set).unwrap_or(0).max(0)).unwrap_or(0);
        for target in (update_min..replicas_.len()).rev() {
            let Some(p) = replicas_[target] else {
                break;
            };
            if revision_of(p) != upd_name && !podutil::is_terminating(p) {
                out.actions.push(StsAction::DeletePod {
                    name: p.metadata.name.clone().unwrap_or_default(),
                    uid: p.metadata.uid.clone().unwrap_or_default(),
                    why: "update",
                });
                current -= 1;
                st.current_replicas = Some(current);
                break;
            }
            if !healthy(p) {
                break;
            }
        }
    }
    // completeRollingUpdate
    if is_rolling(set)
        && st.updated_replicas == Some(st.replicas)
        && st.ready_replicas == Some(st.replicas)
    {
        st.current_replicas = st.updated_replicas;
        st.current_revision = st.update_revision.clone();
    }
    out.status = st;
    out
}

struct Ctx {
    base: Workload<StatefulSet>,
    claims: Arc<Store<PersistentVolumeClaim>>,
    revs: Arc<Store<ControllerRevision>>,
}

impl std::ops::Deref for Ctx {
    type Target = Workload<StatefulSet>;
    fn deref(&self) -> &Self::Target {
        &self.base
    }
}

/// Registers the StatefulSet controller's handlers on the shared informers and spawns its
/// workers (they start once the caches have synced).
pub fn start(factory: &Factory, _cfg: Arc<Config>) {
    let ctx = Arc::new(Ctx {
        base: Workload::new(factory, "statefulset-controller"),
        claims: factory.store::<PersistentVolumeClaim>(),
        revs: factory.store::<ControllerRevision>(),
    });
    Controller::new(factory, "statefulset")
        .reconciles::<StatefulSet>()
        .watches::<Pod, _>(|ch| {
            let p = ch.object();
            has_revision_label(p)
                .then(|| owner_key(&p.metadata, "StatefulSet"))
                .flatten()
        })
        .owns::<ControllerRevision>("StatefulSet")
        .reads::<PersistentVolumeClaim>()
        .workers(2)
        .resync(Duration::from_secs(30))
        .run(ctx, reconcile);
}

async fn reconcile(ctx: Arc<Ctx>, key: ObjectKey) -> Result<Action, Error> {
    let Some((set, pods)) = ctx.load(&key, has_revision_label) else {
        return Ok(Action::Done);
    };
    let ns = key.namespace.clone();
    let uid = set.metadata.uid.clone().unwrap_or_default();
    let revs: Vec<Arc<ControllerRevision>> = ctx
        .revs
        .list_filter(&ns, |r| is_controlled_by(&r.metadata, &uid));
    let (current, update, collisions) = revisions(&ctx, &set, &revs).await?;
    let claim_objs = ctx.claims.list(&ns);
    let claims: HashMap<String, &PersistentVolumeClaim> = claim_objs
        .iter()
        .filter_map(|c| Some((c.metadata.name.clone()?, c.as_ref())))
        .collect();
    let pod_refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
    let p = plan(&StsInput {
        set: &set,
        pods: &pod_refs,
        claims: &claims,
        current: &current,
        update: &update,
        collision_count: collisions,
        now: Timestamp::now(),
    });
    let result = execute(&ctx, &key, &set, &p.actions).await;
    update_status(&ctx, &set, &p.status).await?;
    result?;
    truncate_history(&ctx, &set, &revs, &current, &update, &pods).await?;
    Ok(Action::after(p.requeue_after))
}

async fn execute(
    ctx: &Ctx,
    key: &ObjectKey,
    set: &StatefulSet,
    actions: &[StsAction],
) -> Result<(), Error> {
    let ns = key.namespace.as_str();
    let sname = set_name(set);
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let pvc_api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    let rec = ctx.control.recorder();
    let create_claims = |pod: String, claims: Vec<PersistentVolumeClaim>| {
        let pvc_api = pvc_api.clone();
        async move {
            for c in claims {
                let cname = c.metadata.name.clone().unwrap_or_default();
                match pvc_api.create(&PostParams::default(), &c).await {
                    Ok(_) => {
                        let msg = format!(
                            "create Claim {cname} Pod {pod} in StatefulSet {sname} success"
                        );
                        rec.record(set, "Normal", "SuccessfulCreate", &msg).await
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(e) => {
                        let msg = format!("create Claim {cname} for Pod {pod} in StatefulSet {sname} failed error: {e}");
                        rec.record(set, "Warning", "FailedCreate", &msg).await;
                        return Err(Error::from(e));
                    }
                }
            }
            Ok(())
        }
    };
    for a in actions {
        match a {
            StsAction::CreatePod { pod, claims } => {
                let pname = pod.metadata.name.clone().unwrap_or_default();
                create_claims(pname.clone(), claims.clone()).await?;
                match pod_api.create(&PostParams::default(), pod).await {
                    Ok(_) => {
                        ctx.exp.expect(key, vec![pname.clone()], vec![]);
                        let msg = format!("create Pod {pname} in StatefulSet {sname} successful");
                        rec.record(set, "Normal", "SuccessfulCreate", &msg).await;
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(e) => {
                        let msg =
                            format!("create Pod {pname} in StatefulSet {sname} failed error: {e}");
                        rec.record(set, "Warning", "FailedCreate", &msg).await;
                        return Err(e.into());
                    }
                }
            }
            StsAction::CreateClaims { pod, claims } => {
                create_claims(pod.clone(), claims.clone()).await?
            }
            StsAction::DeletePod { name, uid, why } => {
                let dp = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: Some(uid.clone()),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                match pod_api.delete(name, &dp).await {
                    Ok(_) => {
                        tracing::debug!(pod = %name, why, "statefulset deleted pod");
                        ctx.exp.expect(key, vec![], vec![uid.clone()]);
                        let msg = format!("delete Pod {name} in StatefulSet {sname} successful");
                        rec.record(set, "Normal", "SuccessfulDelete", &msg).await;
                    }
                    Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            StsAction::FixLabels { pod, labels } => {
                let m: serde_json::Map<String, serde_json::Value> =
                    labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                pod_api
                    .patch(
                        pod,
                        &PatchParams::default(),
                        &Patch::Merge(&json!({"metadata": {"labels": m}})),
                    )
                    .await?;
            }
            StsAction::SetClaimOwners { claim, owners } => {
                let patch = json!({"metadata": {"ownerReferences": owners}});
                match pvc_api
                    .patch(claim, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(())
}

async fn update_status(ctx: &Ctx, set: &StatefulSet, st: &StatefulSetStatus) -> Result<(), Error> {
    let cur = set.status.clone().unwrap_or_default();
    let z = |v: Option<i32>| v.unwrap_or(0);
    if cur.replicas == st.replicas
        && z(cur.ready_replicas) == z(st.ready_replicas)
        && z(cur.available_replicas) == z(st.available_replicas)
        && z(cur.current_replicas) == z(st.current_replicas)
        && z(cur.updated_replicas) == z(st.updated_replicas)
        && cur.current_revision == st.current_revision
        && cur.update_revision == st.update_revision
        && cur.observed_generation == st.observed_generation
        && z(cur.collision_count) == z(st.collision_count)
    {
        return Ok(());
    }
    let status = json!({
        "replicas": st.replicas,
        "readyReplicas": z(st.ready_replicas),
        "availableReplicas": z(st.available_replicas),
        "currentReplicas": z(st.current_replicas),
        "updatedReplicas": z(st.updated_replicas),
        "currentRevision": st.current_revision,
        "updateRevision": st.update_revision,
        "observedGeneration": st.observed_generation,
        "collisionCount": z(st.collision_count),
    });
    Ok(patch_status(&ctx.client, set, status).await?)
}

/// Upstream `getStatefulSetRevisions`: (current, update, collision count).
async fn revisions(
    ctx: &Ctx,
    set: &StatefulSet,
    revs: &[Arc<ControllerRevision>],
) -> Result<(ControllerRevision, ControllerRevision, i32), Error> {
    let ns = set.metadata.namespace.clone().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ns);
    let mut sorted: Vec<&ControllerRevision> = revs.iter().map(|r| r.as_ref()).collect();
    sorted.sort_by_key(|r| r.revision);
    let status = set.status.as_ref();
    let collisions = status.and_then(|s| s.collision_count).unwrap_or(0);
    let template = set
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let data = history::template_patch(&template);
    let next = history::max_revision(sorted.iter().copied()) + 1;
    let equal: Vec<&ControllerRevision> = sorted
        .iter()
        .copied()
        .filter(|r| history::holds(r, &data))
        .collect();
    let update = match (equal.last(), sorted.last()) {
        (Some(e), Some(l)) if e.metadata.name == l.metadata.name => (*e).clone(),
        (Some(e), _) => {
            let name = e.metadata.name.clone().unwrap_or_default();
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"revision": next})),
            )
            .await?
        }
        (None, _) => {
            let hash = history::data_hash(&data, Some(collisions));
            let name = history::revision_name(set_name(set), &hash);
            let rev = history::new_revision(
                &set.metadata,
                "apps/v1",
                "StatefulSet",
                template.metadata.as_ref().and_then(|m| m.labels.as_ref()),
                name.clone(),
                &hash,
                data.clone(),
                next,
            );
            history::create(&ctx.client, set, &rev, collisions).await?
        }
    };
    let want = set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.clone())
        .unwrap_or_default();
    let current = sorted
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(want.as_str()))
        .map(|r| (*r).clone())
        .unwrap_or_else(|| update.clone());
    Ok((current, update, collisions))
}

async fn truncate_history(
    ctx: &Ctx,
    set: &StatefulSet,
    revs: &[Arc<ControllerRevision>],
    current: &ControllerRevision,
    update: &ControllerRevision,
    pods: &[Arc<Pod>],
) -> Result<(), Error> {
    let mut live: std::collections::HashSet<String> =
        pods.iter().map(|p| revision_of(p).to_string()).collect();
    live.extend(current.metadata.name.clone());
    live.extend(update.metadata.name.clone());
    let limit = set.spec.as_ref().and_then(|s| s.revision_history_limit);
    let refs: Vec<&ControllerRevision> = revs.iter().map(|r| r.as_ref()).collect();
    let ns = set.metadata.namespace.as_deref().unwrap_or("");
    Ok(history::prune(&ctx.client, ns, &refs, &live, limit).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::podutil::tests::{pod, ts};
    use k8s_openapi::api::apps::v1::{
        RollingUpdateStatefulSetStrategy, StatefulSetPersistentVolumeClaimRetentionPolicy,
        StatefulSetSpec, StatefulSetUpdateStrategy,
    };
    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn set(n: i32, policy: &str) -> StatefulSet {
        let labels: std::collections::BTreeMap<String, String> =
            [("app".to_string(), "db".to_string())].into();
        let mut claim = PersistentVolumeClaim::default();
        claim.metadata.name = Some("data".into());
        StatefulSet {
            metadata: crate::util::podutil::tests::meta("web", "set-uid", 4),
            spec: Some(StatefulSetSpec {
                replicas: Some(n),
                pod_management_policy: Some(policy.into()),
                service_name: Some("nginx".into()),
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec::default()),
                },
                volume_claim_templates: Some(vec![claim]),
                update_strategy: Some(StatefulSetUpdateStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateStatefulSetStrategy {
                        partition: Some(0),
                        max_unavailable: None,
                    }),
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn rev(name: &str, n: i64) -> ControllerRevision {
        let mut r = history::new_revision(
            &ObjectMeta::default(),
            "apps/v1",
            "StatefulSet",
            None,
            name.into(),
            "h",
            history::template_patch(&PodTemplateSpec::default()),
            n,
        );
        r.metadata.name = Some(name.into());
        r
    }

    /// Pods of `web` by (ordinal, revision, ready).
    fn spods(list: &[(i32, &str, bool)]) -> Vec<Pod> {
        list.iter()
            .map(|(o, r, ready)| spod(*o, r, *ready))
            .collect()
    }

    fn spod(ord: i32, rev: &str, ready: bool) -> Pod {
        let mut p = pod(
            &format!("web-{ord}"),
            if ready { "Running" } else { "Pending" },
            ready.then_some(100),
        );
        p.metadata.labels = Some(
            [
                (REVISION_LABEL.to_string(), rev.to_string()),
                (POD_NAME_LABEL.to_string(), format!("web-{ord}")),
                (POD_INDEX_LABEL.to_string(), ord.to_string()),
            ]
            .into(),
        );
        p
    }

    fn run_plan(
        s: &StatefulSet,
        pods: &[Pod],
        claims: &[PersistentVolumeClaim],
        cur: &str,
        upd: &str,
    ) -> StsPlan {
        let pr: Vec<&Pod> = pods.iter().collect();
        let cm: HashMap<String, &PersistentVolumeClaim> = claims
            .iter()
            .map(|c| (c.metadata.name.clone().unwrap(), c))
            .collect();
        let (c, u) = (rev(cur, 1), rev(upd, 2));
        plan(&StsInput {
            set: s,
            pods: &pr,
            claims: &cm,
            current: &c,
            update: &u,
            collision_count: 0,
            now: ts(1000),
        })
    }

    fn created(p: &StsPlan) -> Vec<String> {
        p.actions
            .iter()
            .filter_map(|a| match a {
                StsAction::CreatePod { pod, .. } => pod.metadata.name.clone(),
                _ => None,
            })
            .collect()
    }

    fn deleted(p: &StsPlan) -> Vec<(String, &'static str)> {
        p.actions
            .iter()
            .filter_map(|a| match a {
                StsAction::DeletePod { name, why, .. } => Some((name.clone(), *why)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time() {
        let s = set(3, "OrderedReady");
        let p = run_plan(&s, &[], &[], "r1", "r1");
        assert_eq!(created(&p), vec!["web-0"]);
        // web-0 not ready yet: nothing.
        let p = run_plan(&s, &[spod(0, "r1", false)], &[], "r1", "r1");
        assert!(created(&p).is_empty());
        let p = run_plan(&s, &[spod(0, "r1", true)], &[], "r1", "r1");
        assert_eq!(created(&p), vec!["web-1"]);
        assert_eq!(p.status.replicas, 1);
        assert_eq!(p.status.ready_replicas, Some(1));
    }

    #[test]
    fn parallel_creates_all() {
        let s = set(3, "Parallel");
        let p = run_plan(&s, &[], &[], "r1", "r1");
        assert_eq!(created(&p), vec!["web-0", "web-1", "web-2"]);
    }

    #[test]
    fn pods_have_identity_and_claims() {
        let s = set(1, "OrderedReady");
        let p = run_plan(&s, &[], &[], "web-r1", "web-r1");
        let StsAction::CreatePod { pod, claims } = &p.actions[0] else {
            panic!("expected a create");
        };
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("web-0"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let l = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(l[POD_NAME_LABEL], "web-0");
        assert_eq!(l[POD_INDEX_LABEL], "0");
        assert_eq!(l[REVISION_LABEL], "web-r1");
        let vol = &spec.volumes.as_ref().unwrap()[0];
        assert_eq!(vol.name, "data");
        assert_eq!(
            vol.persistent_volume_claim.as_ref().unwrap().claim_name,
            "data-web-0"
        );
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].metadata.name.as_deref(), Some("data-web-0"));
        assert_eq!(claims[0].metadata.labels.as_ref().unwrap()["app"], "db");
        assert!(
            claims[0].metadata.owner_references.is_none(),
            "Retain by default"
        );
        // An existing claim is not created again.
        let mut existing = PersistentVolumeClaim::default();
        existing.metadata.name = Some("data-web-0".into());
        let p = run_plan(&s, &[], &[existing], "web-r1", "web-r1");
        let StsAction::CreatePod { claims, .. } = &p.actions[0] else {
            panic!("expected a create");
        };
        assert!(claims.is_empty());
    }

    #[test]
    fn scale_down_in_reverse_one_at_a_time() {
        let (s, pods) = (
            set(1, "OrderedReady"),
            spods(&[(0, "r1", true), (1, "r1", true)]),
        );
        let pods = [pods, spods(&[(2, "r1", true)])].concat();
        let p = run_plan(&s, &pods, &[], "r1", "r1");
        assert_eq!(deleted(&p), vec![("web-2".to_string(), "condemned")]);
        // web-2 terminating: wait.
        let mut t = spod(2, "r1", true);
        t.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            ts(999),
        ));
        let p = run_plan(
            &s,
            &[spod(0, "r1", true), spod(1, "r1", true), t],
            &[],
            "r1",
            "r1",
        );
        assert!(deleted(&p).is_empty());
        // Parallel deletes all condemned at once.
        let p = run_plan(&set(1, "Parallel"), &pods, &[], "r1", "r1");
        assert_eq!(deleted(&p).len(), 2);
    }

    #[test]
    fn failed_pods_are_recreated() {
        let s = set(2, "OrderedReady");
        let mut f = spod(0, "r1", false);
        f.status.as_mut().unwrap().phase = Some("Failed".into());
        let p = run_plan(&s, &[f], &[], "r1", "r1");
        assert_eq!(deleted(&p), vec![("web-0".to_string(), "failed")]);
        assert!(created(&p).is_empty());
    }

    #[test]
    fn rolling_update_reverse_order_with_partition() {
        let s = set(3, "OrderedReady");
        let pods = spods(&[(0, "r1", true), (1, "r1", true), (2, "r1", true)]);
        let p = run_plan(&s, &pods, &[], "r1", "r2");
        assert_eq!(deleted(&p), vec![("web-2".to_string(), "update")]);
        assert_eq!(p.status.current_replicas, Some(2));
        assert_eq!(p.status.update_revision.as_deref(), Some("r2"));
        // web-2 updated but not ready: wait.
        let pods2 = spods(&[(0, "r1", true), (1, "r1", true), (2, "r2", false)]);
        let p = run_plan(&s, &pods2, &[], "r1", "r2");
        assert!(deleted(&p).is_empty());
        let pods3 = spods(&[(0, "r1", true), (1, "r1", true), (2, "r2", true)]);
        let p = run_plan(&s, &pods3, &[], "r1", "r2");
        assert_eq!(deleted(&p), vec![("web-1".to_string(), "update")]);
        // Partition 2: only web-2 is updated.
        let mut sp = s.clone();
        sp.spec
            .as_mut()
            .unwrap()
            .update_strategy
            .as_mut()
            .unwrap()
            .rolling_update
            .as_mut()
            .unwrap()
            .partition = Some(2);
        let p = run_plan(&sp, &pods3, &[], "r1", "r2");
        assert!(deleted(&p).is_empty());
        // Missing pod below the partition comes back at the current revision.
        let p = run_plan(
            &sp,
            &[spod(1, "r1", true), spod(2, "r2", true)],
            &[],
            "r1",
            "r2",
        );
        let StsAction::CreatePod { pod, .. } = &p.actions[0] else {
            panic!("expected a create");
        };
        assert_eq!(pod.metadata.labels.as_ref().unwrap()[REVISION_LABEL], "r1");
        // All updated and ready: the update completes.
        let done = spods(&[(0, "r2", true), (1, "r2", true), (2, "r2", true)]);
        let p = run_plan(&s, &done, &[], "r1", "r2");
        assert_eq!(p.status.current_revision.as_deref(), Some("r2"));
        assert_eq!(p.status.current_replicas, Some(3));
        assert_eq!(p.status.updated_replicas, Some(3));
    }

    #[test]
    fn retention_policy_owner_references() {
        let mut s = set(1, "OrderedReady");
        let p0 = spod(0, "r1", true);
        assert!(claim_owners(&s, Some(&p0), &[], false).is_empty());
        s.spec
            .as_mut()
            .unwrap()
            .persistent_volume_claim_retention_policy =
            Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some("Delete".into()),
                when_scaled: Some("Delete".into()),
            });
        let o = claim_owners(&s, Some(&p0), &[], false);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].kind, "StatefulSet");
        let o = claim_owners(&s, Some(&p0), &o, true);
        assert_eq!(
            o.len(),
            1,
            "a scaled-down pod's claim belongs to the pod only"
        );
        assert_eq!(o[0].kind, "Pod");
        // Condemned web-1 with an existing claim: its owners are fixed before it is deleted.
        let mut c = PersistentVolumeClaim::default();
        c.metadata.name = Some("data-web-1".into());
        let p = run_plan(
            &s,
            &[spod(0, "r1", true), spod(1, "r1", true)],
            &[c],
            "r1",
            "r1",
        );
        assert!(
            matches!(&p.actions[0], StsAction::SetClaimOwners { claim, owners } if claim == "data-web-1" && owners[0].kind == "Pod")
        );
        assert_eq!(deleted(&p), vec![("web-1".to_string(), "condemned")]);
    }

    #[test]
    fn ordinal_parsing() {
        assert_eq!(parent_and_ordinal("web-12"), Some(("web", 12)));
        assert_eq!(parent_and_ordinal("my-web-0"), Some(("my-web", 0)));
        assert_eq!(parent_and_ordinal("web-x"), None);
        assert_eq!(parent_and_ordinal("web"), None);
    }
}
