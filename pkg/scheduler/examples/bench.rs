//! Scheduling throughput benchmark against the cluster in `KUBECONFIG`: creates NODES Ready
//! nodes and PODS pending pods (one owner, 100m each), then starts the scheduler in-process
//! and measures how fast every pod gets bound.
//! `KUBECONFIG=kc cargo run -p skiff-scheduler --example bench -- NODES PODS [--cleanup]`;
//! `BIND_CONCURRENCY` overrides the bindings in flight. With `--core` it only times the pure
//! `schedule` over an in-memory cache (no server).

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
    if args.iter().any(|a| a == "--core") {
        core_only(n_nodes, n_pods)?;
        return Ok(());
    }
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

    // Watch the pods before starting the scheduler, so every binding is seen as it happens.
    let mut stream = kube::runtime::watcher::watcher(
        pods.clone(),
        kube::runtime::watcher::Config::default().labels("app=bench"),
    )
    .boxed();
    let mut bound_at: BTreeMap<String, (String, std::time::Duration)> = BTreeMap::new();
    while let Some(ev) = stream.next().await {
        if let Ok(kube::runtime::watcher::Event::InitDone) = ev {
            break;
        }
    }
    let start = Instant::now();
    let mut opts = skiff_scheduler::Options::default();
    if let Some(n) = std::env::var("BIND_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.bind_concurrency = n;
    }
    let sched = tokio::spawn(skiff_scheduler::run_with(client.clone(), opts));
    let deadline = std::time::Duration::from_secs(600);
    while bound_at.len() < n_pods && start.elapsed() < deadline {
        let ev = match tokio::time::timeout(std::time::Duration::from_secs(5), stream.next()).await
        {
            Ok(Some(Ok(ev))) => ev,
            Ok(Some(Err(e))) => {
                eprintln!("watch: {e}");
                continue;
            }
            Ok(None) => break,
            Err(_) => continue,
        };
        if let kube::runtime::watcher::Event::Apply(p)
        | kube::runtime::watcher::Event::InitApply(p) = ev
        {
            if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
                let name = p.metadata.name.clone().unwrap_or_default();
                bound_at.entry(name).or_insert((n, start.elapsed()));
            }
        }
    }
    let first = bound_at.values().map(|(_, t)| *t).min().unwrap_or_default();
    let last = bound_at.values().map(|(_, t)| *t).max().unwrap_or_default();
    let span = (last - first).as_secs_f64().max(1e-3);
    println!(
        "bound {}/{n_pods} pods: first {:.3}s, last {:.3}s after scheduler start (initial list included); \
         {:.0} pods/s from first to last binding, {:.0} pods/s overall",
        bound_at.len(),
        first.as_secs_f64(),
        last.as_secs_f64(),
        (bound_at.len().saturating_sub(1)) as f64 / span,
        bound_at.len() as f64 / last.as_secs_f64().max(1e-3),
    );
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    for (n, _) in bound_at.values() {
        *per_node.entry(n.as_str()).or_insert(0) += 1;
    }
    let min = per_node.values().min().copied().unwrap_or(0);
    let max = per_node.values().max().copied().unwrap_or(0);
    println!(
        "nodes used: {}, pods per node min {min} max {max}",
        per_node.len()
    );
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

/// Schedules `n_pods` pods of one owner onto `n_nodes` nodes in memory, adding each to the
/// cache like the loop's assume step does.
fn core_only(n_nodes: usize, n_pods: usize) -> Result<(), Box<dyn std::error::Error>> {
    use skiff_scheduler::{NodeInfo, PodInfo};
    let mut nodes = Vec::with_capacity(n_nodes);
    for i in 0..n_nodes {
        let n: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("node-{i}"), "labels": {"kubernetes.io/hostname": format!("node-{i}")}},
            "status": {
                "allocatable": {"cpu": "32", "memory": "64Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}]
            }
        }))?;
        nodes.push(NodeInfo::new(n));
    }
    let index: std::collections::HashMap<String, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name().to_string(), i))
        .collect();
    let start = Instant::now();
    for i in 0..n_pods {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("p-{i}"), "namespace": "default",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "rs", "uid": format!("rs-{}", i % 10), "controller": true}]},
            "spec": {"containers": [{"name": "c", "image": "pause",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}
        }))?;
        let node = skiff_scheduler::schedule(&p, &nodes)?;
        if let Some(&k) = index.get(&node) {
            nodes[k].add_pod(PodInfo::from_pod(&p));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let min = nodes.iter().map(|n| n.num_pods()).min().unwrap_or(0);
    let max = nodes.iter().map(|n| n.num_pods()).max().unwrap_or(0);
    println!(
        "core: {n_pods} pods on {n_nodes} nodes in {secs:.3}s = {:.0} pods/s; pods per node min {min} max {max}",
        n_pods as f64 / secs
    );
    Ok(())
}
