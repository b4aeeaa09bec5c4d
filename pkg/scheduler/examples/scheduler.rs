//! Runs skiff's scheduler loop against the cluster in `KUBECONFIG` (for trying it by hand:
//! `KUBECONFIG=kc cargo run -p skiff-scheduler --example scheduler`).

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "skiff_scheduler=info".into()),
        )
        .init();
    let client = kube::Client::try_default().await?;
    skiff_scheduler::run(client).await?;
    Ok(())
}
