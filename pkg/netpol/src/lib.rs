//! skiff's NetworkPolicy enforcement (kube-router's place in k3s), in the agent: watches
//! NetworkPolicies, Pods and Namespaces with the node's client and keeps the table
//! `inet skiff-netpol` equal to [`plan::plan`] of what it sees, for the pods of this node.

pub mod nft;
pub mod plan;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Errors of the NetworkPolicy enforcement.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("nft: {0}")]
    Nft(String),
    #[error("the {0} watch stopped before it synced; restart the agent")]
    WatchStopped(&'static str),
}

/// How often the table's presence is checked (rebuilt when someone removed it).
pub const CHECK: Duration = Duration::from_secs(30);

/// Settings of the enforcement on one node.
#[derive(Debug, Clone)]
pub struct NetpolConfig {
    /// This node's name: policies are enforced for the pods bound to it.
    pub node_name: String,
    /// Changes arriving within this window are applied in one transaction.
    pub debounce: Duration,
}

impl NetpolConfig {
    pub fn new(node_name: impl Into<String>) -> Self {
        NetpolConfig {
            node_name: node_name.into(),
            debounce: Duration::from_millis(100),
        }
    }
}

/// A watch-fed cache of `K` whose every event wakes the sync loop; `strip` drops what the
/// planner never reads before the object is cached (every pod of the cluster is kept).
fn cache<K>(api: Api<K>, wake: Arc<Notify>, strip: fn(&mut K)) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(strip),
    );
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(_) => wake.notify_one(),
                Err(e) => tracing::warn!(error = %e, "network policy watch failed; retrying"),
            }
        }
    });
    reader
}

fn strip_pod(p: &mut Pod) {
    p.metadata.managed_fields = None;
    p.metadata.annotations = None;
    p.metadata.owner_references = None;
    if let Some(spec) = &mut p.spec {
        spec.volumes = None;
        spec.init_containers = None;
        for c in &mut spec.containers {
            c.env = None;
            c.env_from = None;
            c.volume_mounts = None;
            c.command = None;
            c.args = None;
        }
    }
    if let Some(status) = &mut p.status {
        status.container_statuses = None;
        status.init_container_statuses = None;
        status.conditions = None;
    }
}

fn strip_meta<K: kube::Resource>(o: &mut K) {
    o.meta_mut().managed_fields = None;
}

/// Runs the enforcement until the process ends: waits for the first list of every kind, then
/// rebuilds the table from scratch (a restart resyncs) and applies each change after a short
/// debounce. A failed apply is retried after a second.
pub async fn run(client: kube::Client, cfg: NetpolConfig) -> Result<(), Error> {
    nft::set_sysctls();
    let wake = Arc::new(Notify::new());
    let policies = cache::<NetworkPolicy>(
        Api::all(client.clone()),
        wake.clone(),
        strip_meta::<NetworkPolicy>,
    );
    let pods = cache::<Pod>(Api::all(client.clone()), wake.clone(), strip_pod);
    let namespaces = cache::<Namespace>(Api::all(client), wake.clone(), strip_meta::<Namespace>);
    policies
        .wait_until_ready()
        .await
        .map_err(|_| Error::WatchStopped("NetworkPolicy"))?;
    pods.wait_until_ready()
        .await
        .map_err(|_| Error::WatchStopped("Pod"))?;
    namespaces
        .wait_until_ready()
        .await
        .map_err(|_| Error::WatchStopped("Namespace"))?;
    tracing::info!(node = %cfg.node_name, "network policy enforcement synced its caches");
    let mut applied: Option<plan::Ruleset> = None;
    wake.notify_one();
    let mut check = tokio::time::interval(CHECK);
    check.tick().await;
    loop {
        tokio::select! {
            _ = wake.notified() => {}
            _ = check.tick() => {
                if applied.is_some() && !nft::table_present().await {
                    tracing::warn!("the network policy table is gone; rebuilding it");
                    applied = None;
                } else {
                    continue;
                }
            }
        }
        tokio::time::sleep(cfg.debounce).await;
        let (pols, all_pods, all_ns) = (policies.state(), pods.state(), namespaces.state());
        let pol_refs: Vec<&NetworkPolicy> = pols.iter().map(|p| p.as_ref()).collect();
        let pod_refs: Vec<&Pod> = all_pods.iter().map(|p| p.as_ref()).collect();
        let ns_refs: Vec<&Namespace> = all_ns.iter().map(|n| n.as_ref()).collect();
        let started = std::time::Instant::now();
        let next = plan::plan(&pol_refs, &pod_refs, &ns_refs, &cfg.node_name);
        if applied.as_ref() == Some(&next) {
            continue;
        }
        match nft::apply(&next.render()).await {
            Ok(()) => {
                tracing::debug!(
                    policies = pols.len(),
                    isolated_ingress = next.ingress.len(),
                    isolated_egress = next.egress.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "network policy rules synced"
                );
                applied = Some(next);
            }
            Err(e) => {
                tracing::warn!(error = %e, "network policy rules not applied; retrying in 1 s");
                applied = None;
                let wake = wake.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    wake.notify_one();
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the cache drops never changes the plan: labels, IP, node, phase and container
    /// ports (named ports) survive the strip.
    #[test]
    fn stripped_pods_plan_the_same() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "prod", "name": "web", "labels": {"app": "web"},
                         "annotations": {"a": "b"},
                         "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"nodeName": "n1", "volumes": [{"name": "v", "emptyDir": {}}],
                     "containers": [{"name": "c", "image": "x", "command": ["sh"],
                        "env": [{"name": "SECRET", "value": "s3cr3t"}],
                        "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": "10.42.1.2",
                       "conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap();
        let policy: NetworkPolicy = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "prod", "name": "p"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                     "ingress": [{"ports": [{"port": "http"}]}]},
        }))
        .unwrap();
        let mut stripped = pod.clone();
        strip_pod(&mut stripped);
        assert!(stripped.spec.as_ref().unwrap().containers[0].env.is_none());
        assert!(stripped.metadata.managed_fields.is_none());
        let full = plan::plan(&[&policy], &[&pod], &[], "n1");
        assert_eq!(plan::plan(&[&policy], &[&stripped], &[], "n1"), full);
        assert!(full.render().contains("tcp dport 8080 return"));
    }
}
