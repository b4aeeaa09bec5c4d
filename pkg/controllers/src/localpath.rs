//! The local-path provisioner (k3s's `rancher.io/local-path`, server side): a claim of a
//! local-path StorageClass that the scheduler tied to a node (`volume.kubernetes.io/selected-node`)
//! gets a hostPath PersistentVolume `pvc-<claim uid>` under that node's storage directory,
//! pinned to the node by nodeAffinity. The directory is made by the node when the volume is
//! first mounted (hostPath DirectoryOrCreate) and removed by the node's cleanup loop, which
//! drops the PV's cleanup finalizer afterwards.

use crate::controller::{Action, Controller};
use crate::endpoints::api_code;
use crate::events::Recorder;
use crate::informer::{Factory, Store};
use crate::util::{key_of, ObjectKey};
use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec,
    VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::ResourceExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The provisioner name of the built-in StorageClass.
pub const PROVISIONER: &str = "rancher.io/local-path";
/// The built-in StorageClass.
pub const CLASS_NAME: &str = "local-path";
/// The PVC annotation the scheduler sets to the chosen node.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The PV annotation naming the provisioner.
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The PV annotation naming the node (local-path-provisioner's own).
pub const PV_SELECTED_NODE: &str = "local.path.provisioner/selected-node";
/// The finalizer the node's cleanup removes once the directory is gone.
pub const CLEANUP_FINALIZER: &str = "skiff.io/local-path-cleanup";
/// The Node annotation with the node's storage base directory.
pub const NODE_DIR_ANNOTATION: &str = "skiff.io/local-path-dir";
/// The storage base directory when the Node does not say.
pub const DEFAULT_DIR: &str = "/var/lib/skiff/storage";
/// The node label the PV's nodeAffinity requires.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The name of the PV provisioned for a claim.
pub fn pv_name(pvc: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", pvc.metadata.uid.as_deref().unwrap_or(""))
}

/// The storage base directory of a node.
pub fn node_dir(node: Option<&Node>) -> String {
    node.and_then(|n| n.annotations().get(NODE_DIR_ANNOTATION).cloned())
        .filter(|d| d.starts_with('/'))
        .map(|d| d.trim_end_matches('/').to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| DEFAULT_DIR.to_string())
}

/// Why a claim is not provisioned (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Bound, being deleted, or not of a local-path class: nothing to do.
    NotOurs,
    /// The scheduler has not chosen a node yet.
    WaitingForNode,
    /// The PV exists already.
    Exists,
    /// The claim cannot be provisioned (reported as a `ProvisioningFailed` event).
    Invalid(String),
}

/// Plans the PV for one claim (the pure core of the provisioner). `node` is the selected
/// Node when the cache has it.
pub fn plan(
    pvc: &PersistentVolumeClaim,
    class: Option<&StorageClass>,
    node: Option<&Node>,
    pv_exists: bool,
) -> Result<PersistentVolume, Skip> {
    let spec = pvc.spec.as_ref().ok_or(Skip::NotOurs)?;
    if pvc.metadata.deletion_timestamp.is_some()
        || spec.volume_name.as_deref().is_some_and(|v| !v.is_empty())
    {
        return Err(Skip::NotOurs);
    }
    let class = class.ok_or(Skip::NotOurs)?;
    if class.provisioner != PROVISIONER
        || spec.storage_class_name.as_deref() != class.metadata.name.as_deref()
    {
        return Err(Skip::NotOurs);
    }
    let node_name = pvc
        .annotations()
        .get(SELECTED_NODE)
        .filter(|n| !n.is_empty())
        .ok_or(Skip::WaitingForNode)?
        .clone();
    if pv_exists {
        return Err(Skip::Exists);
    }
    let uid = pvc.metadata.uid.clone().unwrap_or_default();
    if uid.is_empty() {
        return Err(Skip::NotOurs);
    }
    let request = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .cloned()
        .ok_or_else(|| {
            Skip::Invalid(
                "the claim requests no storage: set spec.resources.requests.storage".into(),
            )
        })?;
    if spec.volume_mode.as_deref() == Some("Block") {
        return Err(Skip::Invalid(
            "local-path volumes are directories: use volumeMode Filesystem".into(),
        ));
    }
    let ns = pvc.namespace().unwrap_or_else(|| "default".to_string());
    let claim = pvc.name_any();
    let name = pv_name(pvc);
    let path = format!("{}/{}_{}_{}", node_dir(node), name, ns, claim);
    let hostname = node
        .and_then(|n| n.labels().get(HOSTNAME_LABEL).cloned())
        .unwrap_or_else(|| node_name.clone());
    Ok(PersistentVolume {
        metadata: ObjectMeta {
            name: Some(name),
            annotations: Some(BTreeMap::from([
                (PROVISIONED_BY.to_string(), PROVISIONER.to_string()),
                (PV_SELECTED_NODE.to_string(), node_name),
            ])),
            finalizers: Some(vec![CLEANUP_FINALIZER.to_string()]),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            access_modes: spec.access_modes.clone(),
            capacity: Some(BTreeMap::from([("storage".to_string(), request)])),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".to_string()),
                kind: Some("PersistentVolumeClaim".to_string()),
                namespace: Some(ns),
                name: Some(claim),
                uid: Some(uid),
                resource_version: pvc.metadata.resource_version.clone(),
                field_path: None,
            }),
            host_path: Some(HostPathVolumeSource {
                path,
                type_: Some("DirectoryOrCreate".to_string()),
            }),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: HOSTNAME_LABEL.to_string(),
                            operator: "In".to_string(),
                            values: Some(vec![hostname]),
                        }]),
                        match_fields: None,
                    }],
                }),
            }),
            persistent_volume_reclaim_policy: Some(
                class
                    .reclaim_policy
                    .clone()
                    .unwrap_or_else(|| "Delete".to_string()),
            ),
            storage_class_name: class.metadata.name.clone(),
            volume_mode: Some("Filesystem".to_string()),
            ..Default::default()
        }),
        status: None,
    })
}

/// Registers the provisioner on the shared informers (claims, classes, volumes, nodes) and
/// spawns its worker.
pub fn start(factory: &Factory, _cfg: Arc<crate::Config>) {
    let ctx = Arc::new(Ctx {
        storage: crate::pvbinder::Ctx::new(factory, "rancher.io/local-path_skiff"),
        nodes: factory.store::<Node>(),
    });
    let claims = ctx.claims.clone();
    Controller::new(factory, "local-path-provisioner")
        .backoff(Duration::from_millis(500), Duration::from_secs(60))
        .watches::<PersistentVolumeClaim, _>(|ch| {
            let c = ch.object();
            let unbound = c
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .unwrap_or("")
                .is_empty();
            (c.annotations().contains_key(SELECTED_NODE) && unbound).then(|| key_of(c.as_ref()))
        })
        .reads::<StorageClass>()
        .reads::<PersistentVolume>()
        .reads::<Node>()
        .workers(2)
        .resync(Duration::from_secs(30))
        .resync_keys(move || {
            claims
                .filter(|c| c.annotations().contains_key(SELECTED_NODE))
                .iter()
                .map(|c| key_of(c.as_ref()))
                .collect()
        })
        .run(ctx, reconcile);
}

/// The storage controllers' context plus the nodes (a volume's path lives on one).
struct Ctx {
    storage: crate::pvbinder::Ctx,
    nodes: Arc<Store<Node>>,
}

impl std::ops::Deref for Ctx {
    type Target = crate::pvbinder::Ctx;
    fn deref(&self) -> &Self::Target {
        &self.storage
    }
}

async fn reconcile(ctx: Arc<Ctx>, key: ObjectKey) -> Result<Action, kube::Error> {
    let Some(pvc) = ctx.claims.get(&key.namespace, &key.name) else {
        return Ok(Action::Done);
    };
    let class = pvc
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .and_then(|c| ctx.classes.get("", &c));
    let node = pvc
        .annotations()
        .get(SELECTED_NODE)
        .and_then(|n| ctx.nodes.get("", n));
    let exists = ctx.volumes.get("", &pv_name(&pvc)).is_some();
    match plan(&pvc, class.as_deref(), node.as_deref(), exists) {
        Ok(pv) => provision(&ctx.client, &ctx.recorder, &pvc, pv).await?,
        Err(Skip::Invalid(msg)) => {
            ctx.recorder
                .record(pvc.as_ref(), "Warning", "ProvisioningFailed", &msg)
                .await;
        }
        Err(_) => {}
    }
    Ok(Action::Done)
}

async fn provision(
    client: &kube::Client,
    recorder: &Recorder,
    pvc: &PersistentVolumeClaim,
    pv: PersistentVolume,
) -> Result<(), kube::Error> {
    let name = pv.name_any();
    let node = pv
        .annotations()
        .get(PV_SELECTED_NODE)
        .cloned()
        .unwrap_or_default();
    let ns = pvc.namespace().unwrap_or_default();
    let claim = pvc.name_any();
    recorder
        .record(
            pvc,
            "Normal",
            "Provisioning",
            &format!("External provisioner is provisioning volume for claim \"{ns}/{claim}\""),
        )
        .await;
    match Api::<PersistentVolume>::all(client.clone())
        .create(&PostParams::default(), &pv)
        .await
    {
        Ok(_) => {
            tracing::info!(pv = %name, claim = %format!("{ns}/{claim}"), node = %node, "provisioned volume");
            recorder
                .record(
                    pvc,
                    "Normal",
                    "ProvisioningSucceeded",
                    &format!("Successfully provisioned volume {name}"),
                )
                .await;
            Ok(())
        }
        Err(e) if api_code(&e) == Some(409) => Ok(()),
        Err(e) => {
            recorder
                .record(
                    pvc,
                    "Warning",
                    "ProvisioningFailed",
                    &format!(
                        "failed to provision volume with StorageClass \"{}\": {e}",
                        pvc.spec
                            .as_ref()
                            .and_then(|s| s.storage_class_name.as_deref())
                            .unwrap_or("")
                    ),
                )
                .await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, VolumeResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn class(reclaim: &str) -> StorageClass {
        StorageClass {
            metadata: ObjectMeta {
                name: Some(CLASS_NAME.into()),
                ..Default::default()
            },
            provisioner: PROVISIONER.into(),
            reclaim_policy: Some(reclaim.into()),
            volume_binding_mode: Some("WaitForFirstConsumer".into()),
            ..Default::default()
        }
    }

    fn pvc(selected: Option<&str>) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data-web-0".into()),
                namespace: Some("shop".into()),
                uid: Some("1234-abcd".into()),
                annotations: selected
                    .map(|n| BTreeMap::from([(SELECTED_NODE.to_string(), n.to_string())])),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                storage_class_name: Some(CLASS_NAME.into()),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_string(),
                        Quantity("1Gi".into()),
                    )])),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn node(name: &str, dir: Option<&str>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(BTreeMap::from([(
                    HOSTNAME_LABEL.to_string(),
                    name.to_string(),
                )])),
                annotations: dir
                    .map(|d| BTreeMap::from([(NODE_DIR_ANNOTATION.to_string(), d.to_string())])),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn a_claim_on_a_selected_node_gets_a_pinned_hostpath_volume() {
        let n = node("n1", Some("/data/skiff/storage/"));
        let pv = plan(&pvc(Some("n1")), Some(&class("Delete")), Some(&n), false).unwrap();
        assert_eq!(pv.name_any(), "pvc-1234-abcd");
        let s = pv.spec.as_ref().unwrap();
        let hp = s.host_path.as_ref().unwrap();
        assert_eq!(hp.path, "/data/skiff/storage/pvc-1234-abcd_shop_data-web-0");
        assert_eq!(hp.type_.as_deref(), Some("DirectoryOrCreate"));
        assert_eq!(s.capacity.as_ref().unwrap()["storage"].0, "1Gi");
        assert_eq!(
            s.access_modes.as_deref(),
            Some(&["ReadWriteOnce".to_string()][..])
        );
        assert_eq!(
            s.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        assert_eq!(s.storage_class_name.as_deref(), Some("local-path"));
        let cr = s.claim_ref.as_ref().unwrap();
        assert_eq!(
            (
                cr.namespace.as_deref(),
                cr.name.as_deref(),
                cr.uid.as_deref()
            ),
            (Some("shop"), Some("data-web-0"), Some("1234-abcd"))
        );
        let term = &s
            .node_affinity
            .as_ref()
            .unwrap()
            .required
            .as_ref()
            .unwrap()
            .node_selector_terms[0];
        let req = &term.match_expressions.as_ref().unwrap()[0];
        assert_eq!(
            (
                req.key.as_str(),
                req.operator.as_str(),
                req.values.as_deref()
            ),
            (
                "kubernetes.io/hostname",
                "In",
                Some(&["n1".to_string()][..])
            )
        );
        assert_eq!(pv.annotations()[PROVISIONED_BY], PROVISIONER);
        assert_eq!(pv.annotations()[PV_SELECTED_NODE], "n1");
        assert_eq!(pv.finalizers(), &[CLEANUP_FINALIZER.to_string()]);
    }

    #[test]
    fn default_directory_and_retain_policy() {
        let pv = plan(&pvc(Some("n2")), Some(&class("Retain")), None, false).unwrap();
        let s = pv.spec.unwrap();
        assert_eq!(
            s.host_path.unwrap().path,
            "/var/lib/skiff/storage/pvc-1234-abcd_shop_data-web-0"
        );
        assert_eq!(
            s.persistent_volume_reclaim_policy.as_deref(),
            Some("Retain")
        );
        // Relative paths in the annotation are not trusted.
        assert_eq!(
            node_dir(Some(&node("x", Some("relative/dir")))),
            DEFAULT_DIR
        );
    }

    #[test]
    fn claims_not_ready_or_not_ours_are_skipped() {
        let c = class("Delete");
        assert_eq!(
            plan(&pvc(None), Some(&c), None, false),
            Err(Skip::WaitingForNode)
        );
        assert_eq!(
            plan(&pvc(Some("n1")), Some(&c), None, true),
            Err(Skip::Exists)
        );
        assert_eq!(
            plan(&pvc(Some("n1")), None, None, false),
            Err(Skip::NotOurs)
        );
        let mut other = c.clone();
        other.provisioner = "example.com/nfs".into();
        assert_eq!(
            plan(&pvc(Some("n1")), Some(&other), None, false),
            Err(Skip::NotOurs)
        );
        let mut bound = pvc(Some("n1"));
        bound.spec.as_mut().unwrap().volume_name = Some("pv-x".into());
        assert_eq!(plan(&bound, Some(&c), None, false), Err(Skip::NotOurs));
        let mut block = pvc(Some("n1"));
        block.spec.as_mut().unwrap().volume_mode = Some("Block".into());
        assert!(matches!(
            plan(&block, Some(&c), None, false),
            Err(Skip::Invalid(_))
        ));
    }
}
