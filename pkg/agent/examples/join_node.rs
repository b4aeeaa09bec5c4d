//! Joins a running skiff server with a node's own identity (`join_node`) and prints what it
//! got: `cargo run -p skiff-agent --example join_node -- URL TOKEN NODE DATA_DIR [IP…]`.
//! Exits 1 with the join error (e.g. a wrong token or a node name taken by another host).

use std::path::PathBuf;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: join_node URL TOKEN NODE DATA_DIR [IP...]");
        std::process::exit(2);
    }
    let node_ips = match args[4..].iter().map(|s| s.parse()).collect() {
        Ok(ips) => ips,
        Err(e) => {
            eprintln!("invalid node IP: {e}: pass IP addresses after DATA_DIR");
            std::process::exit(2);
        }
    };
    let opts = skiff_agent::join::NodeIdentityOptions {
        server: args[0].clone(),
        token: args[1].clone(),
        node_name: args[2].clone(),
        node_ips,
        data_dir: PathBuf::from(&args[3]),
        kubeconfig_server: None,
    };
    match skiff_agent::join::join_node(&opts).await {
        Ok(j) => {
            let api = kube::Api::<k8s_openapi::api::core::v1::Node>::all(j.client.clone());
            let own = api.get_opt(&opts.node_name).await;
            println!("joined {} pinned={}", j.url, j.pinned);
            println!(
                "kubeconfig {}",
                opts.data_dir
                    .join("agent")
                    .join(skiff_agent::join::KUBELET_KUBECONFIG_FILE)
                    .display()
            );
            println!(
                "get own node: {}",
                match own {
                    Ok(Some(_)) => "found".to_string(),
                    Ok(None) => "not found (allowed)".to_string(),
                    Err(e) => format!("error: {e}"),
                }
            );
        }
        Err(e) => {
            eprintln!("join failed: {e}");
            std::process::exit(1);
        }
    }
}
