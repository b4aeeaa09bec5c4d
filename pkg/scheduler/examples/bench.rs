//! Scheduling throughput benchmark against the cluster in `KUBECONFIG`: creates NODES Ready
//! nodes and PODS pending pods (one owner, 100m each), then starts the scheduler in-process
//! and measures how fast every pod gets bound.
//! `KUBECONFIG=kc cargo run -p skiff-scheduler --example bench -- NODES PODS`

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use std::collections::BTreeMap;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n_nodes: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let n_pods: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    let client = kube::Client::try_default().await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    let t = Instant::now();
    futures::stream::iter(0..n_nodes)
        .map(|i| {
            let nodes = nodes.clone();
            async move {
                let n: Node = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("bench-node-{i}"), "labels": {"bench": "yes"}},
                    "status": {
                        "allocatable": {"cpu": "32", "memory": "64Gi", "pods": "110"},
                        "capacity": {"cpu": "32", "memory": "64Gi", "pods": "110"},
                        "conditions": [{"type": "Ready", "status": "True"}]
                    }
                }))?;
                let created = nodes.create(&PostParams::default(), &n).await?;
                // Status is ignored on create; set it through the status subresource.
                let name = created.metadata.name.clone().unwrap_or_default();
                nodes
                    .replace_status(&name, &PostParams::default(), &{
                        let mut c = created;
                        c.status = n.status;
                        c
                    })
                    .await?;
                Ok::<_, Box<dyn std::error::Error>>(())
            }
        })
        .buffer_unordered(32)
        .for_each(|r| async move {
            if let Err(e) = r {
                eprintln!("creating a node failed: {e}");
            }
        })
        .await;
    println!("created {n_nodes} nodes in {:?}", t.elapsed());

    let t = Instant::now();
    futures::stream::iter(0..n_pods)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let p: Pod = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("bench-{i}"), "labels": {"app": "bench"},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                            "name": "bench", "uid": "bench-owner-uid", "controller": true}]},
                    "spec": {"containers": [{"name": "c", "image": "pause",
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}
                }))?;
                pods.create(&PostParams::default(), &p).await?;
                Ok::<_, Box<dyn std::error::Error>>(())
            }
        })
        .buffer_unordered(32)
        .for_each(|r| async move {
            if let Err(e) = r {
                eprintln!("creating a pod failed: {e}");
            }
        })
        .await;
    println!("created {n_pods} pods in {:?}", t.elapsed());

    let start = Instant::now();
    let sched = tokio::spawn(skiff_scheduler::run(client.clone()));
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let list = pods
            .list(&ListParams::default().labels("app=bench"))
            .await?;
        let bound = list
            .items
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
            .count();
        if bound >= n_pods {
            let secs = start.elapsed().as_secs_f64();
            println!(
                "bound {bound} pods in {secs:.3}s = {:.0} pods/s (scheduler start to all bound, incl. initial list)",
                bound as f64 / secs
            );
            let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
            for p in &list.items {
                if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
                    *per_node.entry(n).or_insert(0) += 1;
                }
            }
            let min = per_node.values().min().copied().unwrap_or(0);
            let max = per_node.values().max().copied().unwrap_or(0);
            println!(
                "nodes used: {}, pods per node min {min} max {max}",
                per_node.len()
            );
            break;
        }
        if start.elapsed().as_secs() > 600 {
            println!("timed out with {bound}/{n_pods} bound");
            break;
        }
    }
    sched.abort();
    if args.iter().any(|a| a == "--cleanup") {
        pods.delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("app=bench"),
        )
        .await?;
        nodes
            .delete_collection(
                &DeleteParams::default(),
                &ListParams::default().labels("bench=yes"),
            )
            .await?;
    }
    Ok(())
}
