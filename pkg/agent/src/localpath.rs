//! The node side of the local-path provisioner: when a PersistentVolume provisioned for this
//! node is deleted (its `skiff.io/local-path-cleanup` finalizer holds it), remove its directory
//! — only ever a direct child of the node's storage base named after the volume — and then
//! drop the finalizer so the PV goes away. (The directory itself is made on first mount by
//! the hostPath `DirectoryOrCreate` volume.)

use crate::Error;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolume};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::ResourceExt;
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// The finalizer the provisioner puts on every local-path PV.
pub const CLEANUP_FINALIZER: &str = "skiff.io/local-path-cleanup";
/// The PV annotation naming the node the volume lives on.
pub const PV_SELECTED_NODE: &str = "local.path.provisioner/selected-node";
/// The Node annotation with the node's storage base directory.
pub const NODE_DIR_ANNOTATION: &str = "skiff.io/local-path-dir";
/// The storage base directory when the Node does not say.
pub const DEFAULT_DIR: &str = "/var/lib/skiff/storage";
/// How often volumes whose cleanup failed are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(10);

/// What the node does with one PV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleanup {
    /// Not ours, not being deleted, or already cleaned up.
    Nothing,
    /// Remove this directory, then the finalizer.
    Remove(PathBuf),
    /// The recorded path is not a volume directory under the storage base: leave the disk
    /// alone (say so) and drop the finalizer.
    Refuse(String),
}

/// The storage base directory of a node (its annotation when absolute, else the default).
pub fn storage_dir(node: Option<&Node>) -> PathBuf {
    node.and_then(|n| n.annotations().get(NODE_DIR_ANNOTATION).cloned())
        .filter(|d| d.starts_with('/'))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

/// Whether `path` is `<base>/<pv name>_…`: absolute, plain components only, a direct child
/// of `base`, named after the volume.
fn is_volume_dir(path: &Path, base: &Path, pv_name: &str) -> bool {
    let plain = |p: &Path| {
        p.is_absolute()
            && p.components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
    };
    if !plain(path) || !plain(base) || pv_name.is_empty() {
        return false;
    }
    // `components` hides `.` and doubled slashes: the recorded text must be plain too.
    let text = path.to_string_lossy();
    if text.contains("/./") || text.contains("//") || text.ends_with("/.") {
        return false;
    }
    let Ok(rest) = path.strip_prefix(base) else {
        return false;
    };
    let mut parts = rest.components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(name)), None) => name
            .to_str()
            .is_some_and(|n| n.starts_with(&format!("{pv_name}_"))),
        _ => false,
    }
}

/// Decides what this node does with a PV (the pure core of the cleanup loop).
pub fn plan(pv: &PersistentVolume, node_name: &str, base: &Path) -> Cleanup {
    if pv.metadata.deletion_timestamp.is_none()
        || !pv.finalizers().iter().any(|f| f == CLEANUP_FINALIZER)
        || pv.annotations().get(PV_SELECTED_NODE).map(String::as_str) != Some(node_name)
    {
        return Cleanup::Nothing;
    }
    let name = pv.name_any();
    let Some(path) = pv
        .spec
        .as_ref()
        .and_then(|s| s.host_path.as_ref().map(|h| h.path.clone()))
        .or_else(|| {
            pv.spec
                .as_ref()
                .and_then(|s| s.local.as_ref().map(|l| l.path.clone()))
        })
    else {
        return Cleanup::Refuse(format!("volume {name} has no hostPath or local path"));
    };
    let path = PathBuf::from(path);
    if is_volume_dir(&path, base, &name) {
        Cleanup::Remove(path)
    } else {
        Cleanup::Refuse(format!(
            "volume {name} points at {}, which is not a volume directory under {}",
            path.display(),
            base.display()
        ))
    }
}

/// Removes a volume directory (absent is fine).
async fn remove_dir(path: PathBuf) -> Result<(), Error> {
    let p = path.clone();
    let res = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    })
    .await
    .map_err(|e| Error::Runtime(format!("volume cleanup task failed: {e}")))?;
    res.map_err(|source| Error::Io {
        what: format!(
            "remove volume directory {} (fix its permissions; the PV stays until it is gone)",
            path.display()
        ),
        source,
    })
}

/// Drops the cleanup finalizer (with a resourceVersion precondition).
async fn release(api: &Api<PersistentVolume>, pv: &PersistentVolume) -> Result<(), Error> {
    let rest: Vec<&String> = pv
        .finalizers()
        .iter()
        .filter(|f| *f != CLEANUP_FINALIZER)
        .collect();
    let patch = serde_json::json!({"metadata": {
        "finalizers": rest,
        "resourceVersion": pv.resource_version(),
    }});
    match api
        .patch(
            &pv.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::api(
            &format!("remove the cleanup finalizer of volume {}", pv.name_any()),
            e,
        )),
    }
}

/// Cleans up one PV if it is this node's; errors leave it for a retry.
async fn handle(
    client: &kube::Client,
    pv: &PersistentVolume,
    node_name: &str,
) -> Result<(), Error> {
    if pv.metadata.deletion_timestamp.is_none()
        || pv.annotations().get(PV_SELECTED_NODE).map(String::as_str) != Some(node_name)
    {
        return Ok(());
    }
    let node = Api::<Node>::all(client.clone())
        .get_opt(node_name)
        .await
        .map_err(|e| Error::api(&format!("get node {node_name}"), e))?;
    let base = storage_dir(node.as_ref());
    let api: Api<PersistentVolume> = Api::all(client.clone());
    match plan(pv, node_name, &base) {
        Cleanup::Nothing => Ok(()),
        Cleanup::Remove(path) => {
            remove_dir(path.clone()).await?;
            tracing::info!(pv = %pv.name_any(), path = %path.display(), "removed volume directory");
            release(&api, pv).await
        }
        Cleanup::Refuse(why) => {
            tracing::warn!(pv = %pv.name_any(), "{why}: left the disk untouched");
            release(&api, pv).await
        }
    }
}

/// Watches the PersistentVolumes and cleans up the deleted ones provisioned on `node_name`,
/// retrying failures every few seconds; runs until the task is dropped. The node needs
/// `get`, `list`, `watch` and `patch` on persistentvolumes and `get` on its own Node.
pub async fn run_cleanup(client: kube::Client, node_name: String) {
    let api: Api<PersistentVolume> = Api::all(client.clone());
    let mut stream = watcher::watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut retry: BTreeSet<String> = BTreeSet::new();
    let mut tick = tokio::time::interval(RETRY_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = stream.next() => match ev {
                Some(Ok(Event::Apply(pv) | Event::InitApply(pv))) => {
                    if let Err(e) = handle(&client, &pv, &node_name).await {
                        tracing::warn!(pv = %pv.name_any(), error = %e, "volume cleanup failed, retrying");
                        retry.insert(pv.name_any());
                    }
                }
                Some(Ok(Event::Delete(pv))) => {
                    retry.remove(&pv.name_any());
                }
                Some(Ok(Event::Init | Event::InitDone)) => {}
                Some(Err(e)) => tracing::debug!(error = %e, "persistentvolume watch failed, retrying"),
                None => return,
            },
            _ = tick.tick() => {
                for name in std::mem::take(&mut retry) {
                    let pv = match api.get_opt(&name).await {
                        Ok(Some(pv)) => pv,
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::debug!(pv = %name, error = %e, "reading volume failed");
                            retry.insert(name);
                            continue;
                        }
                    };
                    if let Err(e) = handle(&client, &pv, &node_name).await {
                        tracing::warn!(pv = %name, error = %e, "volume cleanup failed, retrying");
                        retry.insert(name);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HostPathVolumeSource, PersistentVolumeSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use std::collections::BTreeMap;

    fn pv(node: &str, path: &str, deleting: bool) -> PersistentVolume {
        PersistentVolume {
            metadata: ObjectMeta {
                name: Some("pvc-1234".into()),
                annotations: Some(BTreeMap::from([(PV_SELECTED_NODE.into(), node.into())])),
                finalizers: Some(vec![
                    "kubernetes.io/pv-protection".into(),
                    CLEANUP_FINALIZER.into(),
                ]),
                deletion_timestamp: deleting
                    .then_some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
                ..Default::default()
            },
            spec: Some(PersistentVolumeSpec {
                host_path: Some(HostPathVolumeSource {
                    path: path.into(),
                    type_: Some("DirectoryOrCreate".into()),
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn only_deleted_volumes_of_this_node_are_cleaned() {
        let base = Path::new("/data/storage");
        let good = "/data/storage/pvc-1234_shop_data-web-0";
        assert_eq!(
            plan(&pv("n1", good, true), "n1", base),
            Cleanup::Remove(PathBuf::from(good))
        );
        assert_eq!(plan(&pv("n1", good, false), "n1", base), Cleanup::Nothing);
        assert_eq!(plan(&pv("n2", good, true), "n1", base), Cleanup::Nothing);
        let mut done = pv("n1", good, true);
        done.metadata.finalizers = Some(vec![]);
        assert_eq!(plan(&done, "n1", base), Cleanup::Nothing);
    }

    #[test]
    fn paths_outside_the_storage_base_are_refused() {
        let base = Path::new("/data/storage");
        for bad in [
            "/data/storage",
            "/data/storage/",
            "/data/storage/../../etc",
            "/data/storage/pvc-1234_x/../../etc",
            "/data/storage/pvc-1234_ns_c/sub",
            "/data/storage/other-volume_ns_c",
            "/data/storagex/pvc-1234_ns_c",
            "/etc",
            "relative/pvc-1234_ns_c",
            "/data/./storage/pvc-1234_ns_c",
        ] {
            assert!(
                matches!(plan(&pv("n1", bad, true), "n1", base), Cleanup::Refuse(_)),
                "{bad}"
            );
        }
    }

    #[test]
    fn storage_dir_comes_from_the_node_annotation() {
        assert_eq!(storage_dir(None), PathBuf::from(DEFAULT_DIR));
        let mut n = Node::default();
        n.metadata.annotations = Some(BTreeMap::from([(
            NODE_DIR_ANNOTATION.to_string(),
            "/srv/skiff/storage".to_string(),
        )]));
        assert_eq!(storage_dir(Some(&n)), PathBuf::from("/srv/skiff/storage"));
        n.metadata.annotations = Some(BTreeMap::from([(
            NODE_DIR_ANNOTATION.to_string(),
            "rel".to_string(),
        )]));
        assert_eq!(storage_dir(Some(&n)), PathBuf::from(DEFAULT_DIR));
    }

    #[tokio::test]
    async fn remove_dir_removes_a_tree_and_accepts_absence() {
        let base = std::env::temp_dir().join(format!("skiff-lp-{}", std::process::id()));
        let vol = base.join("pvc-1234_ns_c");
        std::fs::create_dir_all(vol.join("deep/er")).unwrap();
        std::fs::write(vol.join("deep/er/file"), b"data").unwrap();
        remove_dir(vol.clone()).await.unwrap();
        assert!(!vol.exists());
        assert!(base.exists());
        remove_dir(vol).await.unwrap();
        std::fs::remove_dir_all(&base).unwrap();
    }
}
