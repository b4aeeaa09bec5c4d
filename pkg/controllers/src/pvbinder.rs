//! The PersistentVolume binder (the binding half of upstream's PV controller): binds claims to
//! volumes (provisioned ones and static ones whose `claimRef` names the claim, or a matching
//! Available volume for claims of immediate classes), keeps both sides' `status.phase` true
//! (Pending/Bound/Lost, Available/Bound/Released), and reclaims released volumes (`Delete`
//! deletes the PV, whose finalizers keep it until the node cleaned up; `Retain` keeps it
//! Released).

use crate::controller::{Action, Controller};
use crate::endpoints::api_code;
use crate::events::Recorder;
use crate::informer::{Change as InformerChange, Factory, Store};
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// PVC annotation: the binding is complete.
pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// PVC/PV annotation: the controller (not the user) set `volumeName` / `claimRef`.
pub const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// PVC annotations naming the provisioner expected to create its volume.
pub const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";

/// A work item: a claim (`namespace`, `name`) or a volume (`name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Claim(String, String),
    Volume(String),
}

/// One write the binder makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Set the volume's `claimRef` (with the claim's uid); `by_controller` adds the
    /// bound-by-controller annotation.
    BindVolume {
        volume: String,
        claim_ref: ObjectReference,
        by_controller: bool,
    },
    /// Set the claim's `volumeName` and the bind-completed annotation.
    BindClaim { volume: String, by_controller: bool },
    /// Add annotations to the claim.
    AnnotateClaim(BTreeMap<String, String>),
    /// Set the claim's status.
    ClaimStatus {
        phase: String,
        capacity: Option<BTreeMap<String, Quantity>>,
        access_modes: Option<Vec<String>>,
    },
    /// Set a volume's status phase.
    VolumeStatus { volume: String, phase: String },
    /// Delete a released volume whose reclaim policy is Delete.
    DeleteVolume(String),
    /// Record an event on the claim.
    ClaimEvent {
        type_: String,
        reason: String,
        message: String,
    },
}

fn claim_phase(c: &PersistentVolumeClaim) -> &str {
    c.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn volume_phase(v: &PersistentVolume) -> &str {
    v.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn claim_ref(v: &PersistentVolume) -> Option<&ObjectReference> {
    v.spec.as_ref().and_then(|s| s.claim_ref.as_ref())
}

fn volume_name(c: &PersistentVolumeClaim) -> &str {
    c.spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or("")
}

/// Whether the volume's claimRef names this claim (by namespace and name, and by uid when the
/// reference carries one).
pub fn refers_to(v: &PersistentVolume, c: &PersistentVolumeClaim) -> bool {
    let Some(r) = claim_ref(v) else {
        return false;
    };
    r.namespace.as_deref() == c.metadata.namespace.as_deref()
        && r.name.as_deref() == c.metadata.name.as_deref()
        && r.uid
            .as_deref()
            .is_none_or(|u| u.is_empty() || Some(u) == c.metadata.uid.as_deref())
}

fn reference(c: &PersistentVolumeClaim) -> ObjectReference {
    crate::util::object_ref(c)
}

fn storage(q: Option<&BTreeMap<String, Quantity>>) -> Option<f64> {
    q.and_then(|m| m.get("storage"))
        .and_then(|q| skiff_api::validation::parse_quantity(&q.0))
}

/// Whether an Available static volume can serve the claim (class, size, access modes,
/// volume mode, selector-free).
fn matches_static(v: &PersistentVolume, c: &PersistentVolumeClaim) -> bool {
    let (Some(vs), Some(cs)) = (v.spec.as_ref(), c.spec.as_ref()) else {
        return false;
    };
    if vs.claim_ref.is_some() || v.metadata.deletion_timestamp.is_some() {
        return false;
    }
    if !matches!(volume_phase(v), "Available" | "") || cs.selector.is_some() {
        return false;
    }
    let vclass = vs.storage_class_name.as_deref().unwrap_or("");
    let cclass = cs.storage_class_name.as_deref().unwrap_or("");
    if vclass != cclass {
        return false;
    }
    let vmode = vs.volume_mode.as_deref().unwrap_or("Filesystem");
    let cmode = cs.volume_mode.as_deref().unwrap_or("Filesystem");
    if vmode != cmode {
        return false;
    }
    let have: Vec<&String> = vs.access_modes.iter().flatten().collect();
    if !cs.access_modes.iter().flatten().all(|m| have.contains(&m)) {
        return false;
    }
    let want = storage(cs.resources.as_ref().and_then(|r| r.requests.as_ref())).unwrap_or(0.0);
    storage(vs.capacity.as_ref()).is_some_and(|cap| cap >= want)
}

fn bound_status(c: &PersistentVolumeClaim, v: &PersistentVolume) -> Option<Change> {
    let capacity = v.spec.as_ref().and_then(|s| s.capacity.clone());
    let access_modes = v.spec.as_ref().and_then(|s| s.access_modes.clone());
    let st = c.status.as_ref();
    let same = claim_phase(c) == "Bound"
        && st.and_then(|s| s.capacity.as_ref()) == capacity.as_ref()
        && st.and_then(|s| s.access_modes.as_ref()) == access_modes.as_ref();
    (!same).then(|| Change::ClaimStatus {
        phase: "Bound".to_string(),
        capacity,
        access_modes,
    })
}

fn set_phase(c: &PersistentVolumeClaim, phase: &str) -> Option<Change> {
    (claim_phase(c) != phase).then(|| Change::ClaimStatus {
        phase: phase.to_string(),
        capacity: None,
        access_modes: None,
    })
}

fn bind_both(c: &PersistentVolumeClaim, v: &PersistentVolume, claim_by_us: bool) -> Vec<Change> {
    let mut out = Vec::new();
    let vname = v.name_any();
    let uid_known = claim_ref(v)
        .and_then(|r| r.uid.as_deref())
        .is_some_and(|u| !u.is_empty());
    if claim_ref(v).is_none() || !uid_known {
        out.push(Change::BindVolume {
            volume: vname.clone(),
            claim_ref: reference(c),
            by_controller: claim_ref(v).is_none(),
        });
    }
    if volume_phase(v) != "Bound" {
        out.push(Change::VolumeStatus {
            volume: vname.clone(),
            phase: "Bound".to_string(),
        });
    }
    let completed = c.annotations().get(BIND_COMPLETED).map(String::as_str) == Some("yes");
    if volume_name(c) != vname || !completed {
        out.push(Change::BindClaim {
            volume: vname,
            by_controller: claim_by_us,
        });
    }
    out.extend(bound_status(c, v));
    out
}

/// Plans one claim against the volumes and its class (upstream's `syncClaim`).
pub fn plan_claim(
    c: &PersistentVolumeClaim,
    volumes: &[Arc<PersistentVolume>],
    class: Option<&StorageClass>,
) -> Vec<Change> {
    if c.metadata.deletion_timestamp.is_some() {
        return Vec::new();
    }
    let vname = volume_name(c);
    if !vname.is_empty() {
        let completed = c.annotations().contains_key(BIND_COMPLETED);
        let lost = || {
            if completed {
                let mut out: Vec<Change> = set_phase(c, "Lost").into_iter().collect();
                if !out.is_empty() {
                    out.push(Change::ClaimEvent {
                        type_: "Warning".into(),
                        reason: "ClaimLost".into(),
                        message:
                            "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
                                .into(),
                    });
                }
                out
            } else {
                set_phase(c, "Pending").into_iter().collect()
            }
        };
        let Some(v) = volumes.iter().find(|v| v.name_any() == vname) else {
            return lost();
        };
        if v.metadata.deletion_timestamp.is_some() {
            return Vec::new();
        }
        if claim_ref(v).is_none() || refers_to(v, c) {
            return bind_both(c, v, false);
        }
        return lost();
    }
    // Not bound yet: a volume reserved for this claim first, then a matching static volume.
    if let Some(v) = volumes
        .iter()
        .find(|v| v.metadata.deletion_timestamp.is_none() && refers_to(v, c))
    {
        return bind_both(c, v, true);
    }
    let wait_for_consumer = class
        .and_then(|k| k.volume_binding_mode.as_deref())
        .is_some_and(|m| m == "WaitForFirstConsumer");
    if !wait_for_consumer {
        let mut best: Option<&Arc<PersistentVolume>> = None;
        for v in volumes.iter().filter(|v| matches_static(v, c)) {
            let cap = storage(v.spec.as_ref().and_then(|s| s.capacity.as_ref()));
            let best_cap =
                best.and_then(|b| storage(b.spec.as_ref().and_then(|s| s.capacity.as_ref())));
            if best.is_none() || cap < best_cap {
                best = Some(v);
            }
        }
        if let Some(v) = best {
            return bind_both(c, v, true);
        }
    }
    let mut out: Vec<Change> = set_phase(c, "Pending").into_iter().collect();
    let Some(class) = class else {
        return out;
    };
    let selected = c
        .annotations()
        .contains_key(crate::localpath::SELECTED_NODE);
    if wait_for_consumer && !selected {
        out.push(Change::ClaimEvent {
            type_: "Normal".into(),
            reason: "WaitForFirstConsumer".into(),
            message: "waiting for first consumer to be created before binding".into(),
        });
        return out;
    }
    let prov = class.provisioner.clone();
    if !prov.is_empty() && prov != "kubernetes.io/no-provisioner" {
        if c.annotations().get(STORAGE_PROVISIONER) != Some(&prov) {
            out.push(Change::AnnotateClaim(BTreeMap::from([
                (STORAGE_PROVISIONER.to_string(), prov.clone()),
                (BETA_STORAGE_PROVISIONER.to_string(), prov.clone()),
            ])));
        }
        out.push(Change::ClaimEvent {
            type_: "Normal".into(),
            reason: "ExternalProvisioning".into(),
            message: format!("Waiting for a volume to be created either by the external provisioner '{prov}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."),
        });
    }
    out
}

/// Plans one volume against the claim its `claimRef` names (upstream's `syncVolume`).
pub fn plan_volume(v: &PersistentVolume, claim: Option<&PersistentVolumeClaim>) -> Vec<Change> {
    if v.metadata.deletion_timestamp.is_some() {
        return Vec::new();
    }
    let name = v.name_any();
    let phase = volume_phase(v);
    let status = |p: &str| {
        (phase != p).then(|| Change::VolumeStatus {
            volume: name.clone(),
            phase: p.to_string(),
        })
    };
    let Some(r) = claim_ref(v) else {
        return status("Available").into_iter().collect();
    };
    let ref_uid = r.uid.as_deref().unwrap_or("");
    let gone = match claim {
        None => true,
        Some(c) => !ref_uid.is_empty() && c.metadata.uid.as_deref() != Some(ref_uid),
    };
    if gone {
        if ref_uid.is_empty() {
            // Reserved for a claim that does not exist yet.
            return status("Available").into_iter().collect();
        }
        if phase == "Failed" {
            return Vec::new();
        }
        let mut out: Vec<Change> = status("Released").into_iter().collect();
        let policy = v
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
            .unwrap_or("Retain");
        if policy == "Delete" {
            out.push(Change::DeleteVolume(name.clone()));
        }
        return out;
    }
    let Some(c) = claim else {
        return Vec::new();
    };
    if volume_name(c) == name {
        return status("Bound").into_iter().collect();
    }
    // The claim is not bound (yet): its own sync binds it.
    Vec::new()
}

/// Registers the binder on the shared informers and spawns its workers.
pub fn start(factory: &Factory, _cfg: Arc<crate::Config>) {
    let ctx = Arc::new(Ctx::new(factory, "persistentvolume-controller"));
    let (vstore, all_c, all_v) = (ctx.volumes.clone(), ctx.claims.clone(), ctx.volumes.clone());
    Controller::new(factory, "persistentvolume-binder")
        .backoff(Duration::from_millis(200), Duration::from_secs(60))
        .watches::<PersistentVolumeClaim, _>(move |ch| {
            let c = ch.object();
            let mut keys = vec![Key::Claim(c.namespace().unwrap_or_default(), c.name_any())];
            let v = volume_name(c);
            if !v.is_empty() {
                keys.push(Key::Volume(v.to_string()));
            }
            if matches!(ch, InformerChange::Deleted(_)) {
                let refs = vstore.filter(|v| refers_to(v, c));
                keys.extend(refs.iter().map(|v| Key::Volume(v.name_any())));
            }
            keys
        })
        .watches::<PersistentVolume, _>(|ch| {
            let v = ch.object();
            let claim = claim_ref(v).map(|r| {
                let ns = r.namespace.clone().unwrap_or_default();
                Key::Claim(ns, r.name.clone().unwrap_or_default())
            });
            std::iter::once(Key::Volume(v.name_any())).chain(claim)
        })
        .reads::<StorageClass>()
        .workers(2)
        .resync(Duration::from_secs(15))
        .resync_keys(move || {
            let mut keys: Vec<Key> = all_c
                .all()
                .iter()
                .map(|c| Key::Claim(c.namespace().unwrap_or_default(), c.name_any()))
                .collect();
            keys.extend(all_v.all().iter().map(|v| Key::Volume(v.name_any())));
            keys
        })
        .run(ctx, reconcile);
}

/// The context of the storage controllers (this binder and the local-path provisioner):
/// claims, volumes and classes, and events as `component`.
pub(crate) struct Ctx {
    pub client: kube::Client,
    pub recorder: Recorder,
    pub claims: Arc<Store<PersistentVolumeClaim>>,
    pub volumes: Arc<Store<PersistentVolume>>,
    pub classes: Arc<Store<StorageClass>>,
}

impl Ctx {
    pub fn new(factory: &Factory, component: &str) -> Self {
        Ctx {
            client: factory.client(),
            recorder: Recorder::new(factory.client(), component),
            claims: factory.store(),
            volumes: factory.store(),
            classes: factory.store(),
        }
    }
}

async fn reconcile(ctx: Arc<Ctx>, key: Key) -> Result<Action, kube::Error> {
    let work = match &key {
        Key::Claim(ns, name) => ctx.claims.get(ns, name).map(|c| {
            let class = c
                .spec
                .as_ref()
                .and_then(|s| s.storage_class_name.clone())
                .and_then(|k| ctx.classes.get("", &k));
            let changes = plan_claim(&c, &ctx.volumes.all(), class.as_deref());
            (Some(c), changes)
        }),
        Key::Volume(name) => ctx.volumes.get("", name).map(|v| {
            let claim = claim_ref(&v).and_then(|r| {
                ctx.claims.get(
                    r.namespace.as_deref().unwrap_or(""),
                    r.name.as_deref().unwrap_or(""),
                )
            });
            (None, plan_volume(&v, claim.as_deref()))
        }),
    };
    let Some((claim, changes)) = work else {
        return Ok(Action::Done);
    };
    apply(&ctx.client, &ctx.recorder, claim.as_deref(), changes).await?;
    Ok(Action::Done)
}

async fn apply(
    client: &kube::Client,
    recorder: &Recorder,
    claim: Option<&PersistentVolumeClaim>,
    changes: Vec<Change>,
) -> Result<(), kube::Error> {
    let pp = PatchParams::default();
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let claims: Option<Api<PersistentVolumeClaim>> =
        claim.map(|c| Api::namespaced(client.clone(), &c.namespace().unwrap_or_default()));
    let claim_name = claim.map(|c| c.name_any()).unwrap_or_default();
    // A merge patch of the claim (of its status when `status`); nothing without a claim.
    let claim_patch = |p: serde_json::Value, status: bool| {
        let (claims, claim_name, pp) = (&claims, &claim_name, &pp);
        async move {
            let Some(api) = claims else {
                return Ok(());
            };
            let p = Patch::Merge(&p);
            let r = if status {
                api.patch_status(claim_name, pp, &p).await
            } else {
                api.patch(claim_name, pp, &p).await
            };
            r.map(|_| ())
        }
    };
    for ch in changes {
        let res = match ch {
            Change::BindVolume {
                volume,
                claim_ref,
                by_controller,
            } => {
                let mut p = json!({"spec": {"claimRef": claim_ref}});
                if by_controller {
                    p["metadata"] = json!({"annotations": {BOUND_BY_CONTROLLER: "yes"}});
                }
                pvs.patch(&volume, &pp, &Patch::Merge(&p)).await.map(|_| ())
            }
            Change::VolumeStatus { volume, phase } => pvs
                .patch_status(
                    &volume,
                    &pp,
                    &Patch::Merge(&json!({"status": {"phase": phase}})),
                )
                .await
                .map(|_| ()),
            Change::DeleteVolume(volume) => {
                tracing::info!(pv = %volume, "deleting released volume (reclaim policy Delete)");
                pvs.delete(&volume, &DeleteParams::default())
                    .await
                    .map(|_| ())
            }
            Change::BindClaim {
                volume,
                by_controller,
            } => {
                let mut ann = json!({BIND_COMPLETED: "yes"});
                if by_controller {
                    ann[BOUND_BY_CONTROLLER] = json!("yes");
                }
                let p = json!({"metadata": {"annotations": ann}, "spec": {"volumeName": volume}});
                claim_patch(p, false).await
            }
            Change::AnnotateClaim(ann) => {
                claim_patch(json!({"metadata": {"annotations": ann}}), false).await
            }
            Change::ClaimStatus {
                phase,
                capacity,
                access_modes,
            } => {
                let mut st = json!({"phase": phase});
                if let Some(c) = capacity {
                    st["capacity"] = json!(c);
                }
                if let Some(m) = access_modes {
                    st["accessModes"] = json!(m);
                }
                claim_patch(json!({"status": st}), true).await
            }
            Change::ClaimEvent {
                type_,
                reason,
                message,
            } => {
                if let Some(c) = claim {
                    recorder.record(c, &type_, &reason, &message).await;
                }
                Ok(())
            }
        };
        match res {
            Ok(()) => {}
            // Gone meanwhile: the watch brings the rest.
            Err(e) if api_code(&e) == Some(404) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, PersistentVolumeSpec,
        PersistentVolumeStatus, VolumeResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn q(s: &str) -> BTreeMap<String, Quantity> {
        BTreeMap::from([("storage".to_string(), Quantity(s.into()))])
    }

    fn pvc(name: &str, class: &str, size: &str) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                storage_class_name: Some(class.into()),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(q(size)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: Some(PersistentVolumeClaimStatus {
                phase: Some("Pending".into()),
                ..Default::default()
            }),
        }
    }

    fn pv(
        name: &str,
        class: &str,
        size: &str,
        claim: Option<&PersistentVolumeClaim>,
    ) -> Arc<PersistentVolume> {
        Arc::new(PersistentVolume {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(PersistentVolumeSpec {
                access_modes: Some(vec!["ReadWriteOnce".into(), "ReadOnlyMany".into()]),
                capacity: Some(q(size)),
                storage_class_name: Some(class.into()),
                claim_ref: claim.map(reference),
                persistent_volume_reclaim_policy: Some("Delete".into()),
                ..Default::default()
            }),
            status: Some(PersistentVolumeStatus {
                phase: Some("Available".into()),
                ..Default::default()
            }),
        })
    }

    fn wffc() -> StorageClass {
        StorageClass {
            metadata: ObjectMeta {
                name: Some("local-path".into()),
                ..Default::default()
            },
            provisioner: "rancher.io/local-path".into(),
            volume_binding_mode: Some("WaitForFirstConsumer".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_provisioned_volume_binds_both_sides() {
        let c = pvc("data", "local-path", "1Gi");
        let v = pv("pvc-uid-data", "local-path", "1Gi", Some(&c));
        let got = plan_claim(&c, std::slice::from_ref(&v), Some(&wffc()));
        assert_eq!(
            got,
            vec![
                Change::VolumeStatus {
                    volume: "pvc-uid-data".into(),
                    phase: "Bound".into()
                },
                Change::BindClaim {
                    volume: "pvc-uid-data".into(),
                    by_controller: true
                },
                Change::ClaimStatus {
                    phase: "Bound".into(),
                    capacity: Some(q("1Gi")),
                    access_modes: Some(vec!["ReadWriteOnce".into(), "ReadOnlyMany".into()]),
                },
            ]
        );
        // Once done, nothing more.
        let mut done = c.clone();
        done.spec.as_mut().unwrap().volume_name = Some("pvc-uid-data".into());
        done.metadata.annotations = Some(BTreeMap::from([(BIND_COMPLETED.into(), "yes".into())]));
        done.status = Some(PersistentVolumeClaimStatus {
            phase: Some("Bound".into()),
            capacity: Some(q("1Gi")),
            access_modes: Some(vec!["ReadWriteOnce".into(), "ReadOnlyMany".into()]),
            ..Default::default()
        });
        let mut bound_v = (*v).clone();
        bound_v.status.as_mut().unwrap().phase = Some("Bound".into());
        assert!(plan_claim(&done, &[Arc::new(bound_v.clone())], Some(&wffc())).is_empty());
        assert!(plan_volume(&bound_v, Some(&done)).is_empty());
    }

    #[test]
    fn waiting_claims_stay_pending_with_upstream_events() {
        let c = pvc("data", "local-path", "1Gi");
        let got = plan_claim(&c, &[], Some(&wffc()));
        assert!(
            matches!(&got[..], [Change::ClaimEvent { reason, .. }] if reason == "WaitForFirstConsumer")
        );
        let mut sel = c.clone();
        sel.metadata.annotations = Some(BTreeMap::from([(
            crate::localpath::SELECTED_NODE.into(),
            "n1".into(),
        )]));
        let got = plan_claim(&sel, &[], Some(&wffc()));
        assert!(
            matches!(&got[0], Change::AnnotateClaim(a) if a[STORAGE_PROVISIONER] == "rancher.io/local-path")
        );
        assert!(
            matches!(&got[1], Change::ClaimEvent { reason, .. } if reason == "ExternalProvisioning")
        );
        // A static volume is not taken for a WaitForFirstConsumer claim.
        let v = pv("static", "local-path", "5Gi", None);
        assert!(!plan_claim(&c, &[v], Some(&wffc()))
            .iter()
            .any(|ch| matches!(ch, Change::BindClaim { .. })));
    }

    #[test]
    fn immediate_claims_take_the_smallest_matching_static_volume() {
        let c = pvc("data", "", "2Gi");
        let vols = vec![
            pv("small", "", "1Gi", None),
            pv("big", "", "10Gi", None),
            pv("fit", "", "3Gi", None),
            pv("other-class", "fast", "2Gi", None),
        ];
        let got = plan_claim(&c, &vols, None);
        assert_eq!(
            got[0],
            Change::BindVolume {
                volume: "fit".into(),
                claim_ref: reference(&c),
                by_controller: true
            }
        );
        assert!(got.contains(&Change::BindClaim {
            volume: "fit".into(),
            by_controller: true
        }));
    }

    #[test]
    fn a_static_volume_reserved_by_name_is_bound_and_uid_filled_in() {
        let c = pvc("data", "", "1Gi");
        let mut r = reference(&c);
        r.uid = None;
        let mut v = (*pv("reserved", "", "1Gi", None)).clone();
        v.spec.as_mut().unwrap().claim_ref = Some(r);
        let got = plan_claim(&c, &[Arc::new(v.clone())], None);
        assert!(
            matches!(&got[0], Change::BindVolume { by_controller: false, claim_ref, .. } if claim_ref.uid.as_deref() == Some("uid-data"))
        );
        // Without its claim it stays Available.
        assert!(plan_volume(&v, None).is_empty());
    }

    #[test]
    fn deleted_claims_release_and_reclaim_their_volumes() {
        let c = pvc("data", "local-path", "1Gi");
        let v = pv("pvc-uid-data", "local-path", "1Gi", Some(&c));
        assert_eq!(
            plan_volume(&v, None),
            vec![
                Change::VolumeStatus {
                    volume: "pvc-uid-data".into(),
                    phase: "Released".into()
                },
                Change::DeleteVolume("pvc-uid-data".into()),
            ]
        );
        // A new claim with the same name is not the old one.
        let mut again = c.clone();
        again.metadata.uid = Some("uid-new".into());
        assert!(
            plan_volume(&v, Some(&again)).contains(&Change::DeleteVolume("pvc-uid-data".into()))
        );
        // Retain: Released, kept.
        let mut keep = (*v).clone();
        keep.spec.as_mut().unwrap().persistent_volume_reclaim_policy = Some("Retain".into());
        assert_eq!(
            plan_volume(&keep, None),
            vec![Change::VolumeStatus {
                volume: "pvc-uid-data".into(),
                phase: "Released".into()
            }]
        );
        keep.status.as_mut().unwrap().phase = Some("Released".into());
        assert!(plan_volume(&keep, None).is_empty());
        // Being deleted: left to its finalizers.
        let mut dying = (*v).clone();
        dying.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert!(plan_volume(&dying, None).is_empty());
    }

    #[test]
    fn a_bound_claim_whose_volume_vanished_is_lost() {
        let mut c = pvc("data", "local-path", "1Gi");
        c.spec.as_mut().unwrap().volume_name = Some("gone".into());
        c.metadata.annotations = Some(BTreeMap::from([(BIND_COMPLETED.into(), "yes".into())]));
        let got = plan_claim(&c, &[], None);
        assert!(matches!(&got[0], Change::ClaimStatus { phase, .. } if phase == "Lost"));
        assert!(matches!(&got[1], Change::ClaimEvent { reason, .. } if reason == "ClaimLost"));
    }

    #[test]
    fn an_unclaimed_volume_is_available() {
        let mut v = (*pv("free", "", "1Gi", None)).clone();
        v.status = None;
        assert_eq!(
            plan_volume(&v, None),
            vec![Change::VolumeStatus {
                volume: "free".into(),
                phase: "Available".into()
            }]
        );
    }
}
