//! ControllerRevisions for DaemonSets and StatefulSets, as upstream's `controller/history`: a
//! revision's data is the strategic-merge patch `{"spec":{"template":{…,"$patch":"replace"}}}`
//! that `kubectl rollout undo` applies back to the owner; revision numbers grow, equal templates
//! are reused (a rollback bumps the old revision's number) and old ones are pruned.

use crate::util::{ignore_not_found, is_controlled_by, patch_status, podutil, NamespacedKind};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};

/// The label that ties pods (and revisions) to a revision.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// The revision data for a pod template (upstream `getPatch`).
pub fn template_patch(t: &PodTemplateSpec) -> Value {
    let mut tv = serde_json::to_value(t).unwrap_or(Value::Null);
    if let Some(m) = tv.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": tv}})
}

/// Whether a revision holds exactly this data.
pub fn holds(rev: &ControllerRevision, data: &Value) -> bool {
    rev.data.as_ref().is_some_and(|d| &d.0 == data)
}

/// The pod template stored in a revision.
pub fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.pointer("/spec/template")?.clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

/// Upstream `ControllerRevisionName`: `<prefix>-<hash>`, the prefix cut to 223 characters.
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let p: String = prefix.chars().take(223).collect();
    format!("{p}-{hash}")
}

/// Upstream `HashControllerRevision`: the short hash of the data (and collision count).
pub fn data_hash(data: &Value, collision_count: Option<i32>) -> String {
    podutil::short_hash(
        serde_json::to_string(data).unwrap_or_default().as_bytes(),
        collision_count.filter(|c| *c != 0),
    )
}

/// A new revision object owned (as controller) by `owner`.
#[allow(clippy::too_many_arguments)]
pub fn new_revision(
    owner: &ObjectMeta,
    api_version: &str,
    kind: &str,
    template_labels: Option<&BTreeMap<String, String>>,
    name: String,
    hash: &str,
    data: Value,
    revision: i64,
) -> ControllerRevision {
    let mut labels = template_labels.cloned().unwrap_or_default();
    labels.insert(REVISION_LABEL.to_string(), hash.to_string());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: owner.namespace.clone(),
            labels: Some(labels),
            annotations: owner.annotations.clone(),
            owner_references: Some(vec![crate::util::controller_ref(api_version, kind, owner)]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// The highest revision number among `revs` (0 for none).
pub fn max_revision<'a>(revs: impl IntoIterator<Item = &'a ControllerRevision>) -> i64 {
    revs.into_iter().map(|r| r.revision).max().unwrap_or(0)
}

/// Which non-live revisions to delete to keep at most `limit` of them, oldest first
/// (upstream `cleanupHistory` / `truncateHistory`). `live` holds names of revisions in use.
pub fn to_prune(revs: &[&ControllerRevision], live: &HashSet<String>, limit: i32) -> Vec<String> {
    let mut old: Vec<&ControllerRevision> = revs
        .iter()
        .copied()
        .filter(|r| !live.contains(r.metadata.name.as_deref().unwrap_or("")))
        .collect();
    let limit = usize::try_from(limit.max(0)).unwrap_or(0);
    if old.len() <= limit {
        return vec![];
    }
    old.sort_by_key(|r| r.revision);
    let n = old.len() - limit;
    old.into_iter()
        .take(n)
        .filter_map(|r| r.metadata.name.clone())
        .collect()
}

/// Creates `rev` for `owner` (upstream `CreateControllerRevision`). An existing revision of
/// that name holding the same data for the same owner is used instead; one with other data is
/// a hash collision: the owner's `status.collisionCount` becomes `collisions + 1` and an error
/// asks for the retry that will hash differently.
pub async fn create<K: NamespacedKind>(
    client: &kube::Client,
    owner: &K,
    rev: &ControllerRevision,
    collisions: i32,
) -> Result<ControllerRevision, crate::Error> {
    let ns = owner.meta().namespace.as_deref().unwrap_or("");
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), ns);
    let name = rev.metadata.name.clone().unwrap_or_default();
    match api.create(&PostParams::default(), rev).await {
        Ok(r) => Ok(r),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let existing = api.get(&name).await?;
            let uid = owner.meta().uid.as_deref().unwrap_or("");
            let same = rev.data.as_ref().is_some_and(|d| holds(&existing, &d.0));
            if same && is_controlled_by(&existing.metadata, uid) {
                return Ok(existing);
            }
            patch_status(client, owner, json!({"collisionCount": collisions + 1})).await?;
            Err(crate::Error::Other(format!(
                "controller revision {name} exists with other data; bumped the collision count, will retry"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes the revisions [`to_prune`] picks (upstream `cleanupHistory` / `truncateHistory`).
pub async fn prune(
    client: &kube::Client,
    ns: &str,
    revs: &[&ControllerRevision],
    live: &HashSet<String>,
    limit: Option<i32>,
) -> Result<(), kube::Error> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), ns);
    for name in to_prune(revs, live, limit.unwrap_or(10)) {
        ignore_not_found(api.delete(&name, &DeleteParams::default()).await)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(name: &str, n: i64) -> ControllerRevision {
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: None,
            revision: n,
        }
    }

    #[test]
    fn patch_round_trips_the_template() {
        let t = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "x".to_string())].into()),
                ..Default::default()
            }),
            spec: None,
        };
        let data = template_patch(&t);
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        let owner = ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("u1".into()),
            ..Default::default()
        };
        let h = data_hash(&data, None);
        let r = new_revision(
            &owner,
            "apps/v1",
            "StatefulSet",
            t.metadata.as_ref().unwrap().labels.as_ref(),
            revision_name("web", &h),
            &h,
            data.clone(),
            3,
        );
        assert!(holds(&r, &data));
        assert_eq!(template_of(&r), Some(t));
        assert_eq!(r.metadata.labels.as_ref().unwrap()[REVISION_LABEL], h);
        assert_eq!(r.metadata.labels.as_ref().unwrap()["app"], "x");
        let oref = &r.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((oref.uid.as_str(), oref.controller), ("u1", Some(true)));
        assert_eq!(
            r.metadata.name.as_deref(),
            Some(format!("web-{h}").as_str())
        );
        assert_ne!(data_hash(&data, Some(1)), h);
    }

    #[test]
    fn pruning_keeps_live_and_newest() {
        let (a, b, c, d) = (rev("a", 1), rev("b", 2), rev("c", 3), rev("d", 4));
        let all = vec![&d, &b, &a, &c];
        let live: HashSet<String> = ["d".to_string(), "a".to_string()].into();
        assert_eq!(to_prune(&all, &live, 1), vec!["b".to_string()]);
        assert_eq!(
            to_prune(&all, &live, 0),
            vec!["b".to_string(), "c".to_string()]
        );
        assert!(to_prune(&all, &live, 5).is_empty());
        assert_eq!(max_revision(all), 4);
    }
}
