//! Runs the DaemonSet, StatefulSet, Job and CronJob controllers against the cluster in
//! `$KUBECONFIG` (e.g. `skiff server --disable-agent --disable-controller-manager
//! --disable-scheduler`). With `--sim` it also plays scheduler and kubelet in the crudest way,
//! so workloads make progress with hand-made Node objects: pending pods are bound (daemon pods
//! to the node their affinity names, others round-robin over Ready nodes), bound pods become
//! Running and Ready, Job pods with `skiff.io/sim-exit-code: "N"` finish after
//! `skiff.io/sim-run-seconds` (default 0) as Succeeded (N = 0) or Failed (the annotations of
//! skiff's simulated agent), and deleted bound pods are confirmed gone. `--no-controllers`
//! runs only that simulation. Stop it with Ctrl-C.

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use skiff_controllers::daemonset::eligibility::target_node;
use skiff_controllers::informer::Factory;
use skiff_controllers::{cronjob, daemonset, job, statefulset, Config};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let client = kube::Client::try_default().await?;
    let cfg = Arc::new(Config::default());
    let sim = std::env::args().any(|a| a == "--sim");
    let mut tasks = tokio::task::JoinSet::new();
    if !std::env::args().any(|a| a == "--no-controllers") {
        let factory = Factory::new(client.clone());
        daemonset::start(&factory, cfg.clone());
        statefulset::start(&factory, cfg.clone());
        job::start(&factory, cfg.clone());
        cronjob::start(&factory, cfg.clone());
        factory.start();
    }
    if sim {
        let c = client.clone();
        tasks.spawn(async move {
            loop {
                if let Err(e) = simulate(&c).await {
                    tracing::warn!(error = %e, "sim step failed");
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
    }
    tokio::signal::ctrl_c().await?;
    tasks.abort_all();
    Ok(())
}

fn annotation<'a>(p: &'a Pod, key: &str) -> Option<&'a str> {
    p.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// One pass of the stand-in scheduler and kubelets.
async fn simulate(client: &kube::Client) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let ready_nodes: Vec<String> = nodes
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|n| n.metadata.name)
        .collect();
    let all: Api<Pod> = Api::all(client.clone());
    let now = Timestamp::now();
    for (i, p) in all
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .enumerate()
    {
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let name = p.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let spec = p.spec.clone().unwrap_or_default();
        let bound = spec.node_name.clone().filter(|n| !n.is_empty());
        let phase = p
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        if p.metadata.deletion_timestamp.is_some() {
            if bound.is_some() {
                let _ = api
                    .delete(
                        &name,
                        &DeleteParams {
                            grace_period_seconds: Some(0),
                            ..Default::default()
                        },
                    )
                    .await;
            }
            continue;
        }
        let Some(node) = bound else {
            let target = target_node(&spec)
                .map(str::to_string)
                .or_else(|| ready_nodes.get(i % ready_nodes.len().max(1)).cloned());
            if let Some(node) = target {
                let binding = json!({
                    "apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": name},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node},
                });
                let _ = api
                    .create_subresource::<_, serde_json::Value>(
                        "binding",
                        &name,
                        &PostParams::default(),
                        &binding,
                    )
                    .await;
            }
            continue;
        };
        let started = p
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0);
        if phase == "Pending" || phase.is_empty() {
            let status = json!({"status": {
                "phase": "Running",
                "hostIP": "10.0.0.1",
                "podIP": format!("10.42.0.{}", i % 250 + 2),
                "startTime": now,
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                    {"type": "Ready", "status": "True", "lastTransitionTime": now},
                ],
            }});
            let _ = api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await;
            tracing::info!(pod = %name, node = %node, "sim: running");
            continue;
        }
        let exit: Option<i32> =
            annotation(&p, "skiff.io/sim-exit-code").and_then(|s| s.parse().ok());
        if let (Some(code), "Running") = (exit, phase.as_str()) {
            let run: i64 = annotation(&p, "skiff.io/sim-run-seconds")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let outcome = if code == 0 { "Succeeded" } else { "Failed" };
            if started.is_some_and(|s| now.as_second() - s.as_second() >= run) {
                let status = json!({"status": {
                    "phase": outcome,
                    "conditions": [
                        {"type": "Ready", "status": "False", "lastTransitionTime": now},
                        {"type": "ContainersReady", "status": "False", "lastTransitionTime": now},
                    ],
                    "containerStatuses": spec.containers.iter().map(|c| json!({
                        "name": c.name, "image": c.image, "imageID": "", "ready": false,
                        "restartCount": 0,
                        "state": {"terminated": {"exitCode": code, "finishedAt": now, "startedAt": started}},
                    })).collect::<Vec<_>>(),
                }});
                let _ = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await;
                tracing::info!(pod = %name, outcome, "sim: finished");
            }
        }
    }
    Ok(())
}
