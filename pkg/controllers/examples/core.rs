//! Runs skiff's ReplicaSet and Deployment controllers and garbage collector against the cluster
//! in `KUBECONFIG`, for trying them with kubectl. `--mark-ready[=MS]` also plays a tiny fake
//! kubelet: every pod becomes Running and Ready MS milliseconds (default 500) after it appears,
//! and pods being deleted are removed at once.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use skiff_controllers::informer::{Change, Factory};
use skiff_controllers::{deployment, gc, replicaset, Config};
use std::sync::Arc;
use std::time::Duration;

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn fake_kubelet(factory: &Factory, delay: Duration) {
    let c = factory.client();
    factory.informer::<Pod>().add_handler(move |ch| {
        let Change::Applied { new, .. } = ch else {
            return;
        };
        let ns = new.metadata.namespace.clone().unwrap_or_default();
        let name = new.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(c.clone(), &ns);
        if new.metadata.deletion_timestamp.is_some() {
            tokio::spawn(async move {
                let dp = DeleteParams {
                    grace_period_seconds: Some(0),
                    ..Default::default()
                };
                let _ = api.delete(&name, &dp).await;
            });
        } else if !is_ready(new) {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let now = k8s_openapi::jiff::Timestamp::now();
                let patch = serde_json::json!({"status": {
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now.to_string()}],
                }});
                if let Err(e) = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    eprintln!("fake kubelet: marking {ns}/{name} ready: {e}");
                }
            });
        }
    });
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = kube::Client::try_default().await?;
    let cfg = Arc::new(Config::default());
    let mark_ready = std::env::args().find_map(|a| {
        a.strip_prefix("--mark-ready")
            .map(|rest| rest.trim_start_matches('=').parse::<u64>().unwrap_or(500))
    });
    let factory = Factory::new(client.clone());
    if let Some(ms) = mark_ready {
        fake_kubelet(&factory, Duration::from_millis(ms));
    }
    replicaset::start(&factory, Arc::clone(&cfg));
    deployment::start(&factory, Arc::clone(&cfg));
    factory.start();
    if let Err(e) = gc::run(client, cfg).await {
        eprintln!("garbage collector stopped: {e}");
    }
    Ok(())
}
