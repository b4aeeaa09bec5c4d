//! The garbage collector: a graph of ownerReferences over the kinds that own or are owned in
//! skiff (watched as `DynamicObject`s, no discovery), deleting dependents whose owners are gone
//! (background), deleting a `foregroundDeletion` owner's blocking dependents before removing
//! its finalizer, and stripping an `orphan` owner's references from its dependents before
//! removing that finalizer. `classify` is the pure decision core.

use crate::controller::Action as Next;
use crate::queue::{run_workers, Queue};
use crate::util::ignore_not_found;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions,
    PropagationPolicy,
};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";
const WORKERS: usize = 8;

/// Errors of the garbage collector.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// A kind the garbage collector watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

const fn k(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> Kind {
    Kind {
        group,
        version,
        kind,
        plural,
        namespaced,
    }
}

/// The kinds that can be owners or dependents in skiff (a table: one kind a line).
#[rustfmt::skip]
pub const KINDS: &[Kind] = &[
    k("", "v1", "Pod", "pods", true),
    k("apps", "v1", "ReplicaSet", "replicasets", true),
    k("apps", "v1", "Deployment", "deployments", true),
    k("apps", "v1", "DaemonSet", "daemonsets", true),
    k("apps", "v1", "StatefulSet", "statefulsets", true),
    k("apps", "v1", "ControllerRevision", "controllerrevisions", true),
    k("batch", "v1", "Job", "jobs", true),
    k("batch", "v1", "CronJob", "cronjobs", true),
    k("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true),
    k("", "v1", "Service", "services", true),
    k("", "v1", "ConfigMap", "configmaps", true),
    k("", "v1", "Secret", "secrets", true),
    k("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true),
    k("", "v1", "Node", "nodes", false),
    k("coordination.k8s.io", "v1", "Lease", "leases", true),
];

impl Kind {
    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.into(),
            version: self.version.into(),
            api_version: if self.group.is_empty() {
                self.version.into()
            } else {
                format!("{}/{}", self.group, self.version)
            },
            kind: self.kind.into(),
            plural: self.plural.into(),
        }
    }
}

/// The watched kind an ownerReference's apiVersion/kind names (any version of the group).
pub fn kind_of_ref(api_version: &str, kind: &str) -> Option<&'static Kind> {
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    KINDS.iter().find(|x| x.group == group && x.kind == kind)
}

/// What the graph knows of one object.
#[derive(Debug, Clone)]
pub struct Node {
    pub kind: &'static Kind,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub owners: Vec<OwnerReference>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl Node {
    fn from_obj(kind: &'static Kind, o: &DynamicObject) -> Option<Node> {
        Some(Node {
            kind,
            namespace: o.metadata.namespace.clone().unwrap_or_default(),
            name: o.metadata.name.clone()?,
            uid: o.metadata.uid.clone()?,
            resource_version: o.metadata.resource_version.clone().unwrap_or_default(),
            owners: o.metadata.owner_references.clone().unwrap_or_default(),
            deleting: o.metadata.deletion_timestamp.is_some(),
            finalizers: o.metadata.finalizers.clone().unwrap_or_default(),
        })
    }

    fn has(&self, fin: &str) -> bool {
        self.finalizers.iter().any(|f| f == fin)
    }

    /// Being deleted in the foreground: waiting for its blocking dependents.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.has(FOREGROUND)
    }
}

/// The state of one owner as seen from a dependent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// Exists and is not deleting its dependents.
    Solid,
    /// Gone (or replaced by an object with another uid).
    Absent,
    /// Being deleted in the foreground.
    WaitingForDependents,
}

/// A deletion propagation policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Orphan,
    Background,
    Foreground,
}

impl From<Policy> for PropagationPolicy {
    fn from(p: Policy) -> Self {
        match p {
            Policy::Orphan => Self::Orphan,
            Policy::Background => Self::Background,
            Policy::Foreground => Self::Foreground,
        }
    }
}

/// What to do with a dependent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Drop the ownerReferences with these uids (the item keeps a solid owner).
    RemoveRefs(Vec<String>),
    /// Set blockOwnerDeletion=false on refs to these uids, then delete in the foreground.
    UnblockThenDeleteForeground(Vec<String>),
    Delete(Policy),
}

/// upstream's attemptToDeleteItem decision, given the state of each owner of `item` and
/// whether it has dependents (and whether one of those is itself deleting its dependents).
pub fn classify(
    item: &Node,
    owners: &[(String, OwnerState)],
    has_dependents: bool,
    a_dependent_deletes_dependents: bool,
) -> Action {
    if owners.is_empty() {
        return Action::Nothing;
    }
    let of = |s: OwnerState| -> Vec<String> {
        owners
            .iter()
            .filter(|(_, x)| *x == s)
            .map(|(u, _)| u.clone())
            .collect()
    };
    let (solid, absent, waiting) = (
        of(OwnerState::Solid),
        of(OwnerState::Absent),
        of(OwnerState::WaitingForDependents),
    );
    if !solid.is_empty() {
        let mut gone = absent;
        gone.extend(waiting);
        return if gone.is_empty() {
            Action::Nothing
        } else {
            Action::RemoveRefs(gone)
        };
    }
    if !waiting.is_empty() && has_dependents {
        if a_dependent_deletes_dependents {
            return Action::UnblockThenDeleteForeground(waiting);
        }
        return Action::Delete(Policy::Foreground);
    }
    if item.has(ORPHAN) {
        Action::Delete(Policy::Orphan)
    } else if item.has(FOREGROUND) {
        Action::Delete(Policy::Foreground)
    } else {
        Action::Delete(Policy::Background)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Task {
    /// Check whether a dependent's owners are gone.
    AttemptDelete(String),
    /// Process an owner being deleted with the orphan or foregroundDeletion finalizer.
    Owner(String),
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    fn apply(&mut self, node: Node, tasks: &mut Vec<Task>) {
        let uid = node.uid.clone();
        let old_owners: HashSet<String> = self
            .nodes
            .get(&uid)
            .map(|n| n.owners.iter().map(|o| o.uid.clone()).collect())
            .unwrap_or_default();
        let new_owners: HashSet<String> = node.owners.iter().map(|o| o.uid.clone()).collect();
        for o in old_owners.difference(&new_owners) {
            if let Some(d) = self.dependents.get_mut(o) {
                d.remove(&uid);
            }
        }
        for o in &new_owners {
            self.dependents
                .entry(o.clone())
                .or_default()
                .insert(uid.clone());
            match self.nodes.get(o) {
                None => tasks.push(Task::AttemptDelete(uid.clone())),
                Some(owner) if owner.deleting => tasks.push(Task::Owner(o.clone())),
                Some(_) => {}
            }
        }
        if node.deleting && (node.has(ORPHAN) || node.has(FOREGROUND)) {
            tasks.push(Task::Owner(uid.clone()));
            if node.has(FOREGROUND) {
                for d in self.dependents.get(&uid).into_iter().flatten() {
                    tasks.push(Task::AttemptDelete(d.clone()));
                }
            }
        }
        self.nodes.insert(uid, node);
    }

    fn delete(&mut self, uid: &str, tasks: &mut Vec<Task>) {
        let Some(node) = self.nodes.remove(uid) else {
            return;
        };
        for d in self.dependents.get(uid).into_iter().flatten() {
            tasks.push(Task::AttemptDelete(d.clone()));
        }
        if self.dependents.get(uid).is_some_and(|d| d.is_empty()) {
            self.dependents.remove(uid);
        }
        for o in &node.owners {
            if let Some(d) = self.dependents.get_mut(&o.uid) {
                d.remove(uid);
                if d.is_empty() && !self.nodes.contains_key(&o.uid) {
                    self.dependents.remove(&o.uid);
                }
            }
            if self.nodes.get(&o.uid).is_some_and(|n| n.deleting) {
                tasks.push(Task::Owner(o.uid.clone()));
            }
        }
    }

    /// Dependents of `uid` present in the graph that still reference it.
    fn dependents_of(&self, uid: &str) -> Vec<Node> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.nodes.get(d))
            .filter(|n| n.owners.iter().any(|o| o.uid == uid))
            .cloned()
            .collect()
    }
}

struct Gc {
    client: kube::Client,
    graph: Mutex<Graph>,
    queue: Arc<Queue<Task>>,
    synced: Mutex<HashSet<&'static str>>,
}

impl Gc {
    fn enqueue(&self, tasks: Vec<Task>) {
        for t in tasks {
            self.queue.add(t);
        }
    }

    fn api(&self, kind: &Kind, ns: &str) -> Api<DynamicObject> {
        let ar = kind.api_resource();
        if kind.namespaced {
            Api::namespaced_with(self.client.clone(), ns, &ar)
        } else {
            Api::all_with(self.client.clone(), &ar)
        }
    }

    fn node(&self, uid: &str) -> Option<Node> {
        self.graph.lock().ok()?.nodes.get(uid).cloned()
    }

    async fn owner_state(&self, item: &Node, r: &OwnerReference) -> Result<OwnerState, GcError> {
        if let Some(o) = self.node(&r.uid) {
            return Ok(if o.deleting_dependents() {
                OwnerState::WaitingForDependents
            } else {
                OwnerState::Solid
            });
        }
        let Some(kind) = kind_of_ref(&r.api_version, &r.kind) else {
            // a kind skiff does not watch: never collect on its account
            return Ok(OwnerState::Solid);
        };
        match self.api(kind, &item.namespace).get_opt(&r.name).await? {
            None => Ok(OwnerState::Absent),
            Some(o) if o.metadata.uid.as_deref() != Some(r.uid.as_str()) => Ok(OwnerState::Absent),
            Some(o) => {
                let fg = o.metadata.deletion_timestamp.is_some()
                    && o.metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == FOREGROUND);
                Ok(if fg {
                    OwnerState::WaitingForDependents
                } else {
                    OwnerState::Solid
                })
            }
        }
    }

    async fn patch_refs(&self, item: &Node, refs: Vec<OwnerReference>) -> Result<(), GcError> {
        let refs = crate::util::list_or_null(&refs);
        let meta = json!({"ownerReferences": refs, "resourceVersion": item.resource_version});
        self.patch_meta(item, meta).await
    }

    /// Merge-patches the metadata of `item` (gone meanwhile: nothing to do).
    async fn patch_meta(&self, item: &Node, meta: serde_json::Value) -> Result<(), GcError> {
        let api = self.api(item.kind, &item.namespace);
        let patch = Patch::Merge(json!({ "metadata": meta }));
        ignore_not_found(api.patch(&item.name, &PatchParams::default(), &patch).await)?;
        Ok(())
    }

    async fn delete(&self, item: &Node, policy: Policy) -> Result<(), GcError> {
        let dp = DeleteParams {
            propagation_policy: Some(policy.into()),
            preconditions: Some(Preconditions {
                uid: Some(item.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        tracing::debug!(kind = item.kind.kind, namespace = %item.namespace, name = %item.name, ?policy, "garbage collecting");
        match self
            .api(item.kind, &item.namespace)
            .delete(&item.name, &dp)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn attempt_delete(&self, uid: &str) -> Result<(), GcError> {
        let Some(item) = self.node(uid) else {
            return Ok(());
        };
        if item.deleting {
            if item.deleting_dependents() {
                self.queue.add(Task::Owner(uid.to_string()));
            }
            return Ok(());
        }
        if item.owners.is_empty() {
            return Ok(());
        }
        let mut states = Vec::new();
        for r in &item.owners {
            states.push((r.uid.clone(), self.owner_state(&item, r).await?));
        }
        let deps = self
            .graph
            .lock()
            .map(|g| g.dependents_of(uid))
            .unwrap_or_default();
        let action = classify(
            &item,
            &states,
            !deps.is_empty(),
            deps.iter().any(|d| d.deleting_dependents()),
        );
        match action {
            Action::Nothing => Ok(()),
            Action::RemoveRefs(gone) => {
                let refs = item
                    .owners
                    .iter()
                    .filter(|r| !gone.contains(&r.uid))
                    .cloned()
                    .collect();
                self.patch_refs(&item, refs).await
            }
            Action::UnblockThenDeleteForeground(waiting) => {
                let refs = item
                    .owners
                    .iter()
                    .cloned()
                    .map(|mut r| {
                        if waiting.contains(&r.uid) {
                            r.block_owner_deletion = Some(false);
                        }
                        r
                    })
                    .collect();
                self.patch_refs(&item, refs).await?;
                self.delete(&item, Policy::Foreground).await
            }
            Action::Delete(policy) => self.delete(&item, policy).await,
        }
    }

    async fn remove_finalizer(&self, owner: &Node, fin: &str) -> Result<(), GcError> {
        let rest: Vec<&String> = owner.finalizers.iter().filter(|f| *f != fin).collect();
        let fins = crate::util::list_or_null(&rest);
        let meta = json!({"finalizers": fins, "resourceVersion": owner.resource_version});
        self.patch_meta(owner, meta).await
    }

    async fn process_owner(&self, uid: &str) -> Result<(), GcError> {
        let Some(owner) = self.node(uid) else {
            return Ok(());
        };
        if !owner.deleting {
            return Ok(());
        }
        let deps = self
            .graph
            .lock()
            .map(|g| g.dependents_of(uid))
            .unwrap_or_default();
        if owner.has(ORPHAN) {
            for d in &deps {
                let refs = d.owners.iter().filter(|r| r.uid != uid).cloned().collect();
                self.patch_refs(d, refs).await?;
            }
            return self.remove_finalizer(&owner, ORPHAN).await;
        }
        if owner.has(FOREGROUND) {
            let blocking: Vec<&Node> = deps
                .iter()
                .filter(|d| {
                    d.owners
                        .iter()
                        .any(|r| r.uid == uid && r.block_owner_deletion == Some(true))
                })
                .collect();
            if blocking.is_empty() {
                return self.remove_finalizer(&owner, FOREGROUND).await;
            }
            for d in blocking {
                if !d.deleting_dependents() {
                    self.queue.add(Task::AttemptDelete(d.uid.clone()));
                }
            }
        }
        Ok(())
    }

    async fn watch_kind(self: Arc<Self>, kind: &'static Kind) {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &kind.api_resource());
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(ev) = stream.next().await {
            let mut tasks = Vec::new();
            match ev {
                Ok(Event::Apply(o)) | Ok(Event::InitApply(o)) => {
                    if let Some(n) = Node::from_obj(kind, &o) {
                        seen.insert(n.uid.clone());
                        if let Ok(mut g) = self.graph.lock() {
                            g.apply(n, &mut tasks);
                        }
                    }
                }
                Ok(Event::Delete(o)) => {
                    if let (Some(uid), Ok(mut g)) = (o.metadata.uid.as_deref(), self.graph.lock()) {
                        g.delete(uid, &mut tasks);
                    }
                }
                Ok(Event::Init) => seen.clear(),
                Ok(Event::InitDone) => {
                    if let Ok(mut g) = self.graph.lock() {
                        let stale: Vec<String> = g
                            .nodes
                            .values()
                            .filter(|n| std::ptr::eq(n.kind, kind) && !seen.contains(&n.uid))
                            .map(|n| n.uid.clone())
                            .collect();
                        for uid in stale {
                            g.delete(&uid, &mut tasks);
                        }
                    }
                    if let Ok(mut s) = self.synced.lock() {
                        s.insert(kind.plural);
                    }
                }
                Err(e) => {
                    tracing::debug!(kind = kind.kind, error = %e, "garbage collector watch failed, retrying")
                }
            }
            self.enqueue(tasks);
        }
    }
}

/// Runs the garbage collector forever.
pub async fn run(client: kube::Client, _cfg: Arc<crate::Config>) -> Result<(), crate::Error> {
    let gc = Arc::new(Gc {
        client,
        graph: Mutex::new(Graph::default()),
        queue: Queue::with_backoff(Duration::from_millis(100), Duration::from_secs(30)),
        synced: Mutex::new(HashSet::new()),
    });
    for kind in KINDS {
        tokio::spawn(Arc::clone(&gc).watch_kind(kind));
    }
    // Collect only once every kind has been listed, so owners are not mistaken for absent.
    while gc.synced.lock().map(|s| s.len()).unwrap_or(0) < KINDS.len() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::info!("garbage collector started");
    let queue = Arc::clone(&gc.queue);
    run_workers(
        "garbage-collector",
        queue,
        WORKERS,
        None,
        Vec::new,
        move |task: Task| {
            let gc = Arc::clone(&gc);
            async move {
                match &task {
                    Task::AttemptDelete(uid) => gc.attempt_delete(uid).await,
                    Task::Owner(uid) => gc.process_owner(uid).await,
                }
                .map(|()| Next::Done)
            }
        },
    )
    .await;
    Err(crate::Error::Other(
        "garbage collector workers stopped: restart skiff".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oref(uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: format!("rs-{uid}"),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(block),
        }
    }

    fn node(uid: &str, owners: Vec<OwnerReference>, deleting: bool, fins: &[&str]) -> Node {
        Node {
            kind: &KINDS[0],
            namespace: "default".into(),
            name: format!("n-{uid}"),
            uid: uid.into(),
            resource_version: "1".into(),
            owners,
            deleting,
            finalizers: fins.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn classify_like_upstream() {
        use Action::{Delete, Nothing, RemoveRefs, UnblockThenDeleteForeground as Unblock};
        use OwnerState::{Absent, Solid, WaitingForDependents as Waiting};
        use Policy::{Background, Foreground};
        let item = node("p", vec![oref("a", true), oref("b", true)], false, &[]);
        let s = |a: OwnerState, b: OwnerState| vec![("a".to_string(), a), ("b".to_string(), b)];
        let check = |a, b, deps, blocking, want: Action| {
            assert_eq!(classify(&item, &s(a, b), deps, blocking), want);
        };
        check(Solid, Solid, false, false, Nothing);
        check(Solid, Absent, false, false, RemoveRefs(vec!["b".into()]));
        check(Absent, Absent, false, false, Delete(Background));
        check(Waiting, Absent, true, false, Delete(Foreground));
        check(Waiting, Absent, true, true, Unblock(vec!["a".into()]));
        // no dependents: a plain (background) delete even when the owner waits
        check(Waiting, Absent, false, false, Delete(Background));
        let orphaning = node("p", vec![oref("a", true)], false, &[ORPHAN]);
        let absent = [("a".into(), Absent)];
        assert_eq!(
            classify(&orphaning, &absent, false, false),
            Action::Delete(Policy::Orphan)
        );
        assert_eq!(
            classify(&node("x", vec![], false, &[]), &[], false, false),
            Action::Nothing
        );
    }

    #[test]
    fn graph_tracks_dependents_and_emits_tasks() {
        let mut g = Graph::default();
        let mut t = Vec::new();
        // dependent seen before its owner: checked
        g.apply(node("pod", vec![oref("rs", true)], false, &[]), &mut t);
        assert_eq!(t, vec![Task::AttemptDelete("pod".into())]);
        t.clear();
        g.apply(node("rs", vec![], false, &[]), &mut t);
        assert!(t.is_empty());
        g.apply(node("pod", vec![oref("rs", true)], false, &[]), &mut t);
        assert!(t.is_empty());
        assert_eq!(g.dependents_of("rs").len(), 1);
        // owner enters foreground deletion: owner and its dependents are queued
        g.apply(node("rs", vec![], true, &[FOREGROUND]), &mut t);
        assert!(t.contains(&Task::Owner("rs".into())));
        assert!(t.contains(&Task::AttemptDelete("pod".into())));
        t.clear();
        // dependent goes away: the waiting owner is re-examined
        g.delete("pod", &mut t);
        assert_eq!(t, vec![Task::Owner("rs".into())]);
        assert!(g.dependents_of("rs").is_empty());
        t.clear();
        // owner deleted: its remaining dependents are checked
        g.apply(node("pod2", vec![oref("rs", false)], false, &[]), &mut t);
        t.clear();
        g.delete("rs", &mut t);
        assert_eq!(t, vec![Task::AttemptDelete("pod2".into())]);
    }

    #[test]
    fn owner_refs_map_to_watched_kinds() {
        assert_eq!(
            kind_of_ref("apps/v1", "ReplicaSet").map(|k| k.plural),
            Some("replicasets")
        );
        assert_eq!(kind_of_ref("v1", "Node").map(|k| k.namespaced), Some(false));
        assert!(kind_of_ref("example.com/v1", "Widget").is_none());
        assert_eq!(KINDS[2].api_resource().api_version, "apps/v1");
        assert_eq!(KINDS[0].api_resource().api_version, "v1");
    }
}
