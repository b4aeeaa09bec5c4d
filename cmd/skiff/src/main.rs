//! The skiff binary: CLI parsing, tracing setup, dispatch to server/agent/tools.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

mod certcmd;
mod checkconfig;
mod completion;
mod config;
mod multicall;
mod notify;
mod tokencmd;

// mimalloc instead of glibc malloc: the control plane allocates and frees many small JSON values
// across tokio worker threads, where glibc's arenas spent ~40% of server CPU (perf, 3,000-pod
// scale run) consolidating chunks. Measured in BENCHMARKS.md.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The facts `build.rs` recorded about this build, for `/version`.
fn build_info() -> skiff_apiserver::version::BuildInfo {
    skiff_apiserver::version::BuildInfo {
        git_commit: env!("SKIFF_GIT_COMMIT").into(),
        git_tree_state: env!("SKIFF_GIT_TREE_STATE").into(),
        build_date: env!("SKIFF_BUILD_DATE").into(),
        compiler_version: env!("SKIFF_RUSTC_VERSION").into(),
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "skiff",
    version,
    long_version = concat!(
        env!("CARGO_PKG_VERSION"),
        " (commit ", env!("SKIFF_GIT_COMMIT"), ", tree ", env!("SKIFF_GIT_TREE_STATE"),
        ", built ", env!("SKIFF_BUILD_DATE"), " with ", env!("SKIFF_RUSTC_VERSION"), ")"
    ),
    about = "A lightweight Kubernetes distribution in one binary"
)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. info or skiff_apiserver=debug.
    #[arg(long, global = true, env = "SKIFF_LOG", default_value = "info")]
    log: String,
    /// Log line format: text (coloured only on a terminal) or json (one object per line).
    #[arg(long, global = true, env = "SKIFF_LOG_FORMAT", default_value = "text",
          value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the control plane (API server on an embedded SQLite store).
    Server(Box<ServerArgs>),
    /// The node token of a server data dir; bootstrap tokens (create, list, delete, generate);
    /// rotate the server token.
    Token(tokencmd::TokenArgs),
    /// Run a node agent that joins a server and runs its pods on containerd.
    Agent(Box<AgentArgs>),
    /// Container images on this node's containerd: import archives, list.
    Images(ImagesArgs),
    /// Run many simulated ("hollow") nodes in one process, for scale tests.
    Hollow(HollowArgs),
    /// Check this host for what skiff needs (kernel, cgroups, containerd, runc, CNI, nftables).
    CheckConfig,
    /// Certificates of the data dir: check their expiry, rotate the leaf certificates.
    Certificate(certcmd::CertificateArgs),
    /// Shell completion script for bash or zsh (`-i` installs it).
    Completion(completion::CompletionArgs),
}

/// Where `--private-registry` points unless told otherwise.
const DEFAULT_REGISTRIES: &str = "/etc/skiff/registries.yaml";

/// Flags the agent and the server's own agent share (k3s's names).
#[derive(Args, Debug, Clone)]
struct NodeArgs {
    /// Node name (default: the host name).
    #[arg(long, env = "SKIFF_NODE_NAME")]
    node_name: Option<String>,
    /// IPv4 address to advertise (default: the address used to reach the server).
    #[arg(short = 'i', long)]
    node_ip: Option<Ipv4Addr>,
    /// Label to register the node with, key=value (repeatable).
    #[arg(long = "node-label")]
    node_label: Vec<String>,
    /// Taint to register the node with, key=value:Effect (repeatable).
    #[arg(long = "node-taint")]
    node_taint: Vec<String>,
    /// Private registry configuration (k3s registries.yaml format).
    #[arg(long, default_value = DEFAULT_REGISTRIES)]
    private_registry: PathBuf,
    /// Use this containerd socket instead of starting containerd (unix:///path or /path).
    #[arg(long)]
    container_runtime_endpoint: Option<PathBuf>,
    /// Most pods the node accepts.
    #[arg(long, default_value_t = 110)]
    max_pods: u32,
    /// Kubelet flag, key=value (repeatable, as k3s); skiff implements
    /// `eviction-hard=memory.available<100Mi,nodefs.available<10%`.
    #[arg(long = "kubelet-arg")]
    kubelet_arg: Vec<String>,
    /// Port of the node's kubelet API (logs, exec, port-forward, stats).
    #[arg(long, default_value_t = 10250)]
    kubelet_port: u16,
    /// Pod network between nodes: vxlan, host-gw or none (every node of a cluster uses the same).
    #[arg(long, default_value = "vxlan")]
    flannel_backend: String,
    /// Interface the pod network uses (default: the one holding the node IP).
    #[arg(long)]
    flannel_iface: Option<String>,
    /// Do not run the service proxy (ClusterIP/NodePort/LoadBalancer rules) on this node.
    #[arg(long)]
    disable_kube_proxy: bool,
    /// Do not enforce NetworkPolicies for this node's pods (k3s's flag; the server's
    /// `--disable network-policy` also turns it off for the server's own node).
    #[arg(long)]
    disable_network_policy: bool,
    /// The node's resolvers: cluster DNS forwards names outside the cluster to them
    /// (loopback nameservers are skipped).
    #[arg(long, default_value = "/etc/resolv.conf")]
    resolv_conf: PathBuf,
}

#[derive(Args, Debug)]
struct ImagesArgs {
    #[command(subcommand)]
    cmd: ImagesCommand,
    /// Data directory of the agent (default /var/lib/skiff as root, ~/.skiff otherwise).
    #[arg(short = 'd', long, global = true)]
    data_dir: Option<PathBuf>,
    /// containerd socket (default: the one the agent runs under the data dir).
    #[arg(long, global = true)]
    container_runtime_endpoint: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum ImagesCommand {
    /// Import image archives (OCI or docker, .tar, .tar.gz, .tar.zst) into the node's containerd.
    Import { files: Vec<PathBuf> },
    /// List the images the node's containerd holds.
    Ls,
}

/// Where `--config` points unless told otherwise (k3s: /etc/rancher/k3s/config.yaml).
const DEFAULT_CONFIG: &str = "/etc/skiff/config.yaml";

#[derive(Args, Debug)]
struct AgentArgs {
    /// Config file (YAML): every flag is a key, e.g. `node-label: [disk=ssd]`; flags win.
    #[arg(short = 'c', long, env = "SKIFF_CONFIG_FILE", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Container runtime: `containerd` (default) or `sim` (simulated pods, for scale tests).
    #[arg(long, default_value = "containerd")]
    runtime: String,
    /// Server to join, https://HOST:PORT.
    #[arg(short = 's', long, env = "SKIFF_URL")]
    server: String,
    /// Join token (K10… from `skiff token`, or a bare password).
    #[arg(short = 't', long, env = "SKIFF_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the join token.
    #[arg(long, env = "SKIFF_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Data directory (default /var/lib/skiff as root, ~/.skiff otherwise).
    #[arg(short = 'd', long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    node: NodeArgs,
    /// Talk to --server directly instead of through the client-side load balancer on
    /// 127.0.0.1:6444 that fails over between every server of the cluster.
    #[arg(long)]
    disable_apiserver_lb: bool,
    /// Cluster DNS server address pods resolve with.
    #[arg(long, default_value = "10.43.0.10")]
    cluster_dns: Ipv4Addr,
    /// Cluster domain.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// Simulated time from a pod being bound to it running, e.g. 200ms, 2s.
    #[arg(long, default_value = "200ms")]
    pod_start_delay: String,
    /// Simulated time a deleted pod takes to stop before it is removed, e.g. 200ms, 2s.
    #[arg(long, default_value = "200ms")]
    pod_stop_delay: String,
    /// Cluster pod network the node's pod CIDR is taken from.
    #[arg(long, default_value = "10.42.0.0/16")]
    cluster_cidr: String,
    /// Prefix length of the node's pod CIDR.
    #[arg(long, default_value_t = 24)]
    node_cidr_mask_size: u8,
}

#[derive(Args, Debug)]
struct HollowArgs {
    /// How many simulated nodes to run.
    #[arg(long)]
    nodes: usize,
    /// Server to join, https://HOST:PORT.
    #[arg(short = 's', long, env = "SKIFF_URL")]
    server: String,
    /// Join token (K10… from `skiff token`, or a bare password).
    #[arg(short = 't', long, env = "SKIFF_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the join token.
    #[arg(long, env = "SKIFF_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Node names are <prefix><index>.
    #[arg(long, default_value = "hollow-")]
    name_prefix: String,
    /// Simulated time from a pod being bound to it running, e.g. 200ms, 2s.
    #[arg(long, default_value = "200ms")]
    pod_start_delay: String,
    /// Simulated time a deleted pod takes to stop before it is removed, e.g. 200ms, 2s.
    #[arg(long, default_value = "200ms")]
    pod_stop_delay: String,
    /// Cluster pod network the nodes' pod CIDRs are taken from.
    #[arg(long, default_value = "10.42.0.0/16")]
    cluster_cidr: String,
    /// Prefix length of each node's pod CIDR (default: 24, smaller blocks when N /24s do not fit).
    #[arg(long)]
    node_cidr_mask_size: Option<u8>,
    /// Most API requests in flight at once, over all nodes.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Reach the API through a client-side load balancer on 127.0.0.1 that fails over
    /// between the servers the cluster lists (as agents do by default).
    #[arg(long)]
    apiserver_lb: bool,
}

fn join_token(token: &Option<String>, file: &Option<PathBuf>) -> Result<String> {
    match (token, file) {
        (Some(t), _) => Ok(t.clone()),
        (None, Some(f)) => Ok(std::fs::read_to_string(f)
            .with_context(|| format!("cannot read --token-file {}", f.display()))?
            .trim()
            .to_string()),
        _ => bail!("a token is required: pass --token or --token-file (or set SKIFF_TOKEN)"),
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_lowercase())
        .unwrap_or_default()
}

fn sim_options(
    delay: &str,
    stop_delay: &str,
    cluster_cidr: &str,
    mask: Option<u8>,
) -> Result<skiff_agent::SimOptions> {
    Ok(skiff_agent::SimOptions {
        pod_start_delay: parse_duration(delay).context("invalid --pod-start-delay")?,
        pod_stop_delay: parse_duration(stop_delay).context("invalid --pod-stop-delay")?,
        cluster_cidr: cluster_cidr.parse()?,
        node_cidr_mask: mask,
        ..Default::default()
    })
}

/// `--node-label`s and `--node-taint`s, parsed.
type NodeFlags = (Vec<(String, String)>, Vec<skiff_agent::Taint>);

fn parse_node_flags(node: &NodeArgs) -> Result<NodeFlags> {
    let labels = node
        .node_label
        .iter()
        .map(|l| skiff_agent::parse_label(l))
        .collect::<Result<Vec<_>, _>>()?;
    let taints = node
        .node_taint
        .iter()
        .map(|t| skiff_agent::parse_taint(t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((labels, taints))
}

/// Pod logs go to /var/log/pods for the default data dir, else under the data dir, so several
/// agents on one host (tests) keep their own.
fn pod_log_dir(data_dir: &std::path::Path) -> PathBuf {
    if data_dir == std::path::Path::new("/var/lib/skiff") {
        PathBuf::from("/var/log/pods")
    } else {
        data_dir.join("agent").join("logs").join("pods")
    }
}

#[allow(clippy::too_many_arguments)]
fn containerd_agent_config(
    server: String,
    token: String,
    data_dir: PathBuf,
    node: &NodeArgs,
    cluster_dns: Ipv4Addr,
    cluster_domain: &str,
) -> Result<skiff_agent::realagent::ContainerdAgentConfig> {
    let (labels, taints) = parse_node_flags(node)?;
    Ok(skiff_agent::realagent::ContainerdAgentConfig {
        server,
        token,
        node_name: node.node_name.clone().unwrap_or_else(host_name),
        pod_log_dir: pod_log_dir(&data_dir),
        data_dir,
        node_ip: node.node_ip,
        labels,
        taints,
        max_pods: node.max_pods,
        // The server's own agent talks to its server over loopback; `run_agent` turns it on.
        apiserver_lb: false,
        kubelet_args: node.kubelet_arg.clone(),
        kubelet_port: node.kubelet_port,
        private_registry: node.private_registry.clone(),
        container_runtime_endpoint: node.container_runtime_endpoint.clone(),
        containerd_binary: None,
        cluster_dns: vec![cluster_dns],
        cluster_domain: cluster_domain.to_string(),
        flannel_backend: node.flannel_backend.parse()?,
        flannel_iface: node.flannel_iface.clone(),
        // The k3s default; callers set their --cluster-cidr.
        cluster_cidr: "10.42.0.0/16".into(),
        kube_proxy: !node.disable_kube_proxy,
        // Agents serve cluster DNS; the server's own agent follows its `--disable dns`.
        dns: true,
        resolv_conf: node.resolv_conf.clone(),
        // Agents run the ingress; it listens only while the server's `skiff` IngressClass exists.
        ingress: true,
        network_policy: !node.disable_network_policy,
    })
}

async fn run_agent(args: AgentArgs) -> Result<()> {
    if args.config.is_file() {
        tracing::info!(config = %args.config.display(), "flags from the config file");
    }
    let token = join_token(&args.token, &args.token_file)?;
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    match args.runtime.as_str() {
        "containerd" => {
            let mut cfg = containerd_agent_config(
                args.server.clone(),
                token,
                data_dir,
                &args.node,
                args.cluster_dns,
                &args.cluster_domain,
            )?;
            cfg.cluster_cidr = args.cluster_cidr.clone();
            cfg.apiserver_lb = !args.disable_apiserver_lb;
            until_shutdown(skiff_agent::realagent::run(cfg)).await
        }
        "sim" => {
            let (labels, taints) = parse_node_flags(&args.node)?;
            let cfg = skiff_agent::AgentConfig {
                server: args.server.clone(),
                token,
                node_name: args.node.node_name.clone().unwrap_or_else(host_name),
                data_dir,
                node_ip: args.node.node_ip,
                labels,
                taints,
                max_pods: args.node.max_pods,
                sim: sim_options(
                    &args.pod_start_delay,
                    &args.pod_stop_delay,
                    &args.cluster_cidr,
                    Some(args.node_cidr_mask_size),
                )?,
                apiserver_lb: !args.disable_apiserver_lb,
            };
            until_shutdown(skiff_agent::run_agent(cfg)).await
        }
        other => bail!("unknown --runtime {other:?}: use containerd (the default) or sim"),
    }
}

async fn until_shutdown(
    run: impl std::future::Future<Output = Result<(), skiff_agent::Error>>,
) -> Result<()> {
    tokio::select! {
        r = run => r.map_err(Into::into),
        _ = wait_for_shutdown() => {
            tracing::info!("agent stopping: running pods keep running; heartbeats stop, the node goes NotReady after the grace period");
            Ok(())
        }
    }
}

async fn run_images(args: ImagesArgs) -> Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let socket = match &args.container_runtime_endpoint {
        Some(p) => PathBuf::from(p.to_string_lossy().trim_start_matches("unix://")),
        None => skiff_agent::containerd::Paths::new(&data_dir).socket,
    };
    let cri = skiff_agent::cri::Cri::connect_wait(&socket, Duration::from_secs(2))
        .await
        .with_context(|| {
            format!(
                "cannot reach the node's containerd at {}: is `skiff agent` (or `skiff server`) running with this --data-dir?",
                socket.display()
            )
        })?;
    match args.cmd {
        ImagesCommand::Import { files } => {
            if files.is_empty() {
                bail!(
                    "name at least one image archive to import, e.g. skiff images import nginx.tar"
                );
            }
            for f in files {
                let names = skiff_agent::containerd::import_archive(&cri, &f)
                    .await
                    .with_context(|| format!("cannot import {}", f.display()))?;
                for n in names {
                    println!("imported {n}");
                }
            }
        }
        ImagesCommand::Ls => {
            let rows = skiff_agent::containerd::list_images(&cri).await?;
            println!("{:<60} {:<15} {:>10}", "IMAGE", "IMAGE ID", "SIZE");
            for r in rows {
                let id = r.id.trim_start_matches("sha256:");
                let size = if r.size >= 1 << 20 {
                    format!("{:.1}MiB", r.size as f64 / (1u64 << 20) as f64)
                } else {
                    format!("{:.1}KiB", r.size as f64 / 1024.0)
                };
                println!(
                    "{:<60} {:<15} {:>10}",
                    r.name,
                    &id[..id.len().min(13)],
                    size
                );
            }
        }
    }
    Ok(())
}

async fn run_hollow(args: HollowArgs) -> Result<()> {
    let token = join_token(&args.token, &args.token_file)?;
    let mut sim = sim_options(
        &args.pod_start_delay,
        &args.pod_stop_delay,
        &args.cluster_cidr,
        None,
    )?;
    sim.concurrency = args.concurrency.max(1);
    let cfg = skiff_agent::HollowConfig {
        server: args.server.clone(),
        token,
        nodes: args.nodes,
        name_prefix: args.name_prefix.clone(),
        node_cidr_mask: args.node_cidr_mask_size,
        sim,
        apiserver_lb: args.apiserver_lb,
    };
    tokio::select! {
        r = skiff_agent::run_hollow(cfg) => r.map_err(Into::into),
        _ = wait_for_shutdown() => {
            tracing::info!("hollow nodes stopping");
            Ok(())
        }
    }
}

#[derive(Args, Debug)]
struct ServerArgs {
    /// Config file (YAML): every flag is a key, e.g. `https-listen-port: 7443`,
    /// `tls-san: [a, b]`; flags win.
    #[arg(short = 'c', long, env = "SKIFF_CONFIG_FILE", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Data directory (default /var/lib/skiff as root, ~/.skiff otherwise).
    #[arg(short = 'd', long)]
    data_dir: Option<PathBuf>,
    /// HTTPS port of the API.
    #[arg(long, default_value_t = 6443)]
    https_listen_port: u16,
    /// Address the API listens on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// Address advertised to the cluster (kubernetes endpoints).
    #[arg(long)]
    advertise_address: Option<IpAddr>,
    /// Extra subject alternative names of the serving certificate.
    #[arg(long = "tls-san")]
    tls_san: Vec<String>,
    /// Where to write the admin kubeconfig (default /etc/skiff/skiff.yaml as root).
    #[arg(short = 'o', long, env = "SKIFF_KUBECONFIG_OUTPUT")]
    write_kubeconfig: Option<PathBuf>,
    /// File mode of the kubeconfig, octal.
    #[arg(long, env = "SKIFF_KUBECONFIG_MODE", default_value = "0600")]
    write_kubeconfig_mode: String,
    /// Shared secret agents use to join (a full K10 token or a password).
    #[arg(short = 't', long, env = "SKIFF_TOKEN")]
    token: Option<String>,
    /// File holding the token.
    #[arg(long, env = "SKIFF_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Pod network CIDR.
    #[arg(long, default_value = "10.42.0.0/16")]
    cluster_cidr: String,
    /// Service network CIDR.
    #[arg(long, default_value = "10.43.0.0/16")]
    service_cidr: String,
    /// Cluster DNS service address (default: the tenth address of --service-cidr, 10.43.0.10).
    #[arg(long)]
    cluster_dns: Option<Ipv4Addr>,
    /// Cluster domain.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// NodePort range, LOW-HIGH.
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: String,
    /// Do not run an agent on this host.
    #[arg(long)]
    disable_agent: bool,
    #[command(flatten)]
    node: NodeArgs,
    /// Do not run the scheduler.
    #[arg(long)]
    disable_scheduler: bool,
    /// Do not run the controllers (replicaset, deployment, gc, endpoints, …).
    #[arg(long)]
    disable_controller_manager: bool,
    /// Packaged components not to run, comma-separated or repeated: servicelb, dns,
    /// network-policy.
    /// (`ingress`, or k3s's `traefik`: no built-in ingress on 80/443.)
    #[arg(long = "disable", value_delimiter = ',')]
    disable: Vec<String>,
    /// How long a node may miss heartbeats before it is marked NotReady/Unknown, e.g. 40s.
    #[arg(long, default_value = "40s")]
    node_monitor_grace_period: String,
    /// How long events are kept, e.g. 1h, 30m, 90s.
    #[arg(long, default_value = "1h")]
    event_ttl: String,
    /// Toleration seconds added to pods for the not-ready taint.
    #[arg(long, default_value_t = 300)]
    default_not_ready_toleration_seconds: i64,
    /// Toleration seconds added to pods for the unreachable taint.
    #[arg(long, default_value_t = 300)]
    default_unreachable_toleration_seconds: i64,
    /// Where the cluster state lives: empty (SQLite under the data dir), `sqlite://PATH`,
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (TLS with `?sslmode=require` or the
    /// --datastore-cafile/certfile/keyfile files), or etcd endpoints
    /// `https://HOST:2379,https://HOST2:2379` (`http://` without TLS); several servers may
    /// share PostgreSQL or etcd.
    #[arg(long, env = "SKIFF_DATASTORE_ENDPOINT", default_value = "")]
    datastore_endpoint: String,
    /// etcd over https or PostgreSQL over TLS: the CA that signed the datastore's certificate
    /// (default: the system's roots).
    #[arg(long, env = "SKIFF_DATASTORE_CAFILE")]
    datastore_cafile: Option<PathBuf>,
    /// etcd over https or PostgreSQL over TLS: the client certificate skiff presents (with
    /// --datastore-keyfile).
    #[arg(long, env = "SKIFF_DATASTORE_CERTFILE")]
    datastore_certfile: Option<PathBuf>,
    /// etcd over https or PostgreSQL over TLS: the key of --datastore-certfile.
    #[arg(long, env = "SKIFF_DATASTORE_KEYFILE")]
    datastore_keyfile: Option<PathBuf>,
    /// With an external datastore: how long another server waits on a leader-election Lease
    /// that is not renewed before it takes the controllers or the scheduler over, e.g. 15s.
    #[arg(long, default_value = "15s")]
    leader_elect_lease_duration: String,
    /// How long the leader keeps trying to renew its Lease before it stops leading.
    #[arg(long, default_value = "10s")]
    leader_elect_renew_deadline: String,
    /// How often leader-election candidates try to acquire or renew the Lease.
    #[arg(long, default_value = "2s")]
    leader_elect_retry_period: String,
}

/// `--leader-elect-*` as the elector's timing, checked as upstream checks them.
fn leader_timing(args: &ServerArgs) -> Result<skiff_apiserver::leader::Timing> {
    let timing = skiff_apiserver::leader::Timing {
        lease_duration: parse_duration(&args.leader_elect_lease_duration)?,
        renew_deadline: parse_duration(&args.leader_elect_renew_deadline)?,
        retry_period: parse_duration(&args.leader_elect_retry_period)?,
    };
    timing.validate().map_err(anyhow::Error::msg)?;
    Ok(timing)
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid() == 0
        })
        .unwrap_or(false)
}

fn default_data_dir() -> PathBuf {
    if is_root() {
        PathBuf::from("/var/lib/skiff")
    } else {
        home().join(".skiff")
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("invalid duration {s:?}: use e.g. 90s, 30m or 1h"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "ms" => Duration::from_millis(n),
        _ => bail!("invalid duration {s:?}: use e.g. 90s, 30m or 1h"),
    })
}

async fn run_server(args: ServerArgs) -> Result<()> {
    if args.config.is_file() {
        tracing::info!(config = %args.config.display(), "flags from the config file");
    }
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let (lo, hi) = args
        .service_node_port_range
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?)))
        .with_context(|| {
            format!(
                "invalid --service-node-port-range {:?}: use LOW-HIGH, e.g. 30000-32767",
                args.service_node_port_range
            )
        })?;
    let mode = u32::from_str_radix(args.write_kubeconfig_mode.trim_start_matches("0o"), 8)
        .with_context(|| {
            format!(
                "invalid --write-kubeconfig-mode {:?}: use an octal mode like 0600",
                args.write_kubeconfig_mode
            )
        })?;
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read --token-file {}", f.display()))?
                .trim()
                .to_string(),
        ),
        _ => None,
    };
    let cfg = skiff_apiserver::ServerConfig {
        data_dir: data_dir.clone(),
        bind_address: args.bind_address,
        port: args.https_listen_port,
        advertise_address: args.advertise_address,
        service_cidr: args.service_cidr.clone(),
        cluster_cidr: args.cluster_cidr.clone(),
        cluster_dns: cluster_dns_of(&args)?,
        cluster_domain: args.cluster_domain.clone(),
        dns_service: !dns_disabled(&args.disable),
        ingress_class: !ingress_disabled(&args.disable),
        node_port_range: (lo, hi),
        // The node IP is an address agents reach the server on, as in k3s.
        tls_sans: args
            .tls_san
            .iter()
            .cloned()
            .chain(args.node.node_ip.map(|ip| ip.to_string()))
            .collect(),
        event_ttl: parse_duration(&args.event_ttl)?,
        token,
        default_not_ready_toleration_seconds: args.default_not_ready_toleration_seconds,
        default_unreachable_toleration_seconds: args.default_unreachable_toleration_seconds,
        datastore_endpoint: args.datastore_endpoint.clone(),
        datastore_tls: skiff_store::DatastoreTls {
            ca_file: args.datastore_cafile.clone(),
            cert_file: args.datastore_certfile.clone(),
            key_file: args.datastore_keyfile.clone(),
        },
        build: build_info(),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let server = skiff_apiserver::start(cfg).await?;
    let kubeconfig = args.write_kubeconfig.clone().unwrap_or_else(|| {
        if is_root() {
            PathBuf::from("/etc/skiff/skiff.yaml")
        } else {
            data_dir.join("skiff.yaml")
        }
    });
    let host = match args.bind_address {
        a if a.is_unspecified() => "127.0.0.1".to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    };
    let url = format!("https://{host}:{}", server.local_addr.port());
    let pki = &server.state.pki;
    skiff_pki::write_kubeconfig(
        &kubeconfig,
        mode,
        &url,
        pki.server_ca_pem(),
        pki.admin_cert_pem(),
        pki.admin_key_pem(),
    )?;
    tracing::info!(
        url = %url,
        kubeconfig = %kubeconfig.display(),
        ready_ms = started.elapsed().as_millis() as u64,
        "skiff server is ready"
    );
    notify::ready();
    start_control_loops(&server, &url, &args).await?;
    if !args.disable_agent {
        start_own_agent(&server, &args, data_dir.clone())?;
    }
    wait_for_shutdown().await;
    tracing::info!("shutting down");
    Ok(())
}

/// Runs the controllers and the scheduler in-process, each with its own client certificate,
/// talking to this server over loopback TLS like any other client. With an external datastore
/// (several servers may share it) each runs only while this server holds its Lease
/// (`kube-system/skiff-controllers`, `kube-system/skiff-scheduler`), in a runtime of its own
/// that is shut down — every task of it cancelled — when the lease is lost. With SQLite
/// (one server) they run unconditionally and no Lease is written.
async fn start_control_loops(
    server: &skiff_apiserver::Server,
    url: &str,
    args: &ServerArgs,
) -> Result<()> {
    let pki = &server.state.pki;
    let local = format!("https://127.0.0.1:{}", server.local_addr.port());
    let url = if server.local_addr.ip().is_unspecified() || server.local_addr.ip().is_loopback() {
        local.as_str()
    } else {
        url
    };
    let client_for = |cn: &str| -> Result<String> {
        let (cert, key) = pki.issue_client_cert(cn, &[])?;
        Ok(skiff_pki::render_kubeconfig(
            url,
            pki.server_ca_pem(),
            &cert,
            &key,
        )?)
    };
    let timing = leader_timing(args)?;
    let identity = format!("{}_{}", host_name(), uuid::Uuid::new_v4());
    if !args.disable_controller_manager {
        let kc = client_for(skiff_api::rbac::SKIFF_CONTROLLER_USER)?;
        let cfg = std::sync::Arc::new(skiff_controllers::Config {
            node_monitor_grace_period: parse_duration(&args.node_monitor_grace_period)?,
            ca_pem: pki.server_ca_pem().to_string(),
            cluster_cidr: args.cluster_cidr.clone(),
            service_lb: !args.disable.iter().any(|d| d.trim() == "servicelb"),
            ingress: !ingress_disabled(&args.disable),
            signer: Some(pki.clone()),
            ..Default::default()
        });
        // Auto-deploying manifests apply whatever the files hold, so (as k3s's admin client)
        // as a member of system:masters.
        let (cert, key) = pki.issue_client_cert("system:skiff-deploy", &["system:masters"])?;
        let deploy_kc = skiff_pki::render_kubeconfig(url, pki.server_ca_pem(), &cert, &key)?;
        let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
        let settings = skiff_controllers::deploy::Settings {
            dir: data_dir.join("server").join("manifests"),
            disabled: args.disable.clone(),
        };
        let start = move || {
            let (kc, deploy_kc, cfg, settings) =
                (kc.clone(), deploy_kc.clone(), cfg.clone(), settings.clone());
            async move {
                let client = skiff_controllers::client_from_kubeconfig_yaml(&kc).await?;
                skiff_controllers::spawn_all(client, cfg);
                let client = skiff_controllers::client_from_kubeconfig_yaml(&deploy_kc).await?;
                skiff_controllers::deploy::spawn(client, settings);
                Ok::<(), anyhow::Error>(())
            }
        };
        if server.shared_datastore {
            let leading = skiff_apiserver::leader::spawn(
                server.state.clone(),
                skiff_apiserver::leader::CONTROLLERS_LEASE,
                identity.clone(),
                timing,
            );
            tokio::spawn(run_while_leading("controllers", leading, start));
        } else {
            start().await?;
        }
    }
    if !args.disable_scheduler {
        let kc = client_for("system:kube-scheduler")?;
        let start = move || {
            let kc = kc.clone();
            async move {
                let client = skiff_controllers::client_from_kubeconfig_yaml(&kc).await?;
                tokio::spawn(async move {
                    loop {
                        if let Err(e) = skiff_scheduler::run(client.clone()).await {
                            tracing::warn!(error = %e, "scheduler failed, restarting");
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                });
                Ok::<(), anyhow::Error>(())
            }
        };
        if server.shared_datastore {
            let leading = skiff_apiserver::leader::spawn(
                server.state.clone(),
                skiff_apiserver::leader::SCHEDULER_LEASE,
                identity,
                timing,
            );
            tokio::spawn(run_while_leading("scheduler", leading, start));
        } else {
            start().await?;
        }
    }
    Ok(())
}

/// Starts `start` in a fresh runtime whenever `leading` turns true and shuts that runtime down
/// (cancelling every task `start` spawned) when it turns false.
async fn run_while_leading<F, Fut>(
    what: &'static str,
    mut leading: tokio::sync::watch::Receiver<bool>,
    start: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let mut running: Option<tokio::runtime::Runtime> = None;
    loop {
        let lead = *leading.borrow_and_update();
        match (lead, running.is_some()) {
            (true, false) => {
                match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(format!("skiff-{what}"))
                    // Debug builds poll the controllers' deep futures with big frames; the
                    // main thread's 8 MiB, not a worker's default 2 MiB.
                    .thread_stack_size(8 << 20)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => {
                        let fut = start();
                        rt.spawn(async move {
                            if let Err(e) = fut.await {
                                tracing::error!(component = what, error = %e, "cannot start while leading");
                            }
                        });
                        tracing::info!(component = what, "leading: started");
                        running = Some(rt);
                    }
                    Err(e) => {
                        tracing::error!(component = what, error = %e, "cannot create a runtime")
                    }
                }
            }
            (false, true) => {
                if let Some(rt) = running.take() {
                    rt.shutdown_background();
                }
                tracing::warn!(component = what, "not leading: stopped");
            }
            _ => {}
        }
        if leading.changed().await.is_err() {
            if let Some(rt) = running.take() {
                rt.shutdown_background();
            }
            return;
        }
    }
}

/// `--disable dns` (k3s calls it `coredns`; both are accepted): no kube-dns Service and no
/// cluster DNS on the server's own node.
fn dns_disabled(disable: &[String]) -> bool {
    disable
        .iter()
        .any(|d| matches!(d.trim(), "dns" | "coredns"))
}

/// `--disable ingress` (k3s calls it `traefik`; both are accepted): no `skiff` IngressClass,
/// no ingress status, and no ingress proxy on any node (agents listen only while the class exists).
fn ingress_disabled(disable: &[String]) -> bool {
    disable
        .iter()
        .any(|d| matches!(d.trim(), "ingress" | "traefik"))
}

/// The server's own agent, in this process, joining over loopback like any agent; its node gets
/// the control-plane role label from the server.
fn start_own_agent(
    server: &skiff_apiserver::Server,
    args: &ServerArgs,
    data_dir: PathBuf,
) -> Result<()> {
    let local = format!("https://127.0.0.1:{}", server.local_addr.port());
    let mut cfg = containerd_agent_config(
        local,
        server.state.token.clone(),
        data_dir,
        &args.node,
        cluster_dns_of(args)?,
        &args.cluster_domain,
    )?;
    cfg.cluster_cidr = args.cluster_cidr.clone();
    cfg.dns = !dns_disabled(&args.disable);
    cfg.ingress = !ingress_disabled(&args.disable);
    if args.disable.iter().any(|d| d.trim() == "network-policy") {
        cfg.network_policy = false;
    }
    let node_name = cfg.node_name.clone();
    server.state.kubelets.set_local_node(&node_name);
    tokio::spawn(async move {
        if let Err(e) = skiff_agent::realagent::run(cfg).await {
            tracing::error!(error = %e, "the server's agent stopped: pods on this node no longer run; fix the cause and restart skiff, or run with --disable-agent");
        }
    });
    let pki = &server.state.pki;
    let (cert, key) = pki.issue_client_cert(skiff_api::rbac::SKIFF_CONTROLLER_USER, &[])?;
    let kc = skiff_pki::render_kubeconfig(
        &format!("https://127.0.0.1:{}", server.local_addr.port()),
        pki.server_ca_pem(),
        &cert,
        &key,
    )?;
    tokio::spawn(async move {
        let client = match skiff_controllers::client_from_kubeconfig_yaml(&kc).await {
            Ok(c) => c,
            Err(e) => return tracing::warn!(error = %e, "cannot label the server's node"),
        };
        let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
        let patch = serde_json::json!({"metadata": {"labels": {
            "node-role.kubernetes.io/control-plane": "true",
        }}});
        for _ in 0..600 {
            match nodes
                .patch(
                    &node_name,
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => return,
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => tracing::debug!(error = %e, "labelling the server's node"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tracing::warn!(node = %node_name, "the server's node did not register within 2 minutes: no control-plane label");
    });
    Ok(())
}

async fn wait_for_shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The command line merged with the config file; exits like clap on a usage error or `--help`.
fn parse_cli(argv: Vec<std::ffi::OsString>) -> Cli {
    let argv = match config::merged_args::<Cli>(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    };
    Cli::parse_from(argv)
}

/// mimalloc's arena commit setting, read from the environment when the allocator starts.
#[cfg(feature = "mimalloc")]
const MI_EAGER_COMMIT: &str = "MIMALLOC_ARENA_EAGER_COMMIT";

/// `skiff agent` runs with mimalloc committing arena memory as it is used instead of eagerly
/// (about 3 MiB less idle RSS, BENCHMARKS.md). mimalloc reads its options before `main`, and
/// setting them in code needs `unsafe` FFI, so the agent re-executes itself once with the
/// variable set (same pid); a user's own setting is kept, and a failed exec just continues.
#[cfg(feature = "mimalloc")]
fn agent_allocator_settings() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(MI_EAGER_COMMIT).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let err = std::process::Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .env(MI_EAGER_COMMIT, "0")
        .exec();
    eprintln!(
        "skiff: could not re-execute {} with {MI_EAGER_COMMIT}=0 ({err}); continuing",
        exe.display()
    );
}

#[cfg(not(feature = "mimalloc"))]
fn agent_allocator_settings() {}

fn main() -> Result<()> {
    // No transparent huge pages for mimalloc's arenas: with THP every touched arena region is
    // backed by 2 MiB pages, which costs ~20 MiB of idle RSS and buys nothing at our sizes.
    // Best effort: a kernel without the prctl just keeps THP.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some((tool, args)) = multicall::dispatch(&argv) {
        let data_dir = std::env::var_os("SKIFF_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(default_data_dir);
        let err = multicall::run(tool, args, data_dir);
        eprintln!("{err:#}");
        std::process::exit(1);
    }
    let cli = parse_cli(argv);
    if matches!(cli.cmd, Command::Agent(_)) {
        agent_allocator_settings();
    }
    {
        use tracing_subscriber::layer::{Layer, SubscriberExt};
        use tracing_subscriber::util::SubscriberInitExt;
        let mut filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        // hickory-server (cluster DNS) logs every request at info: unless asked for, warnings only.
        if !cli.log.contains("hickory") {
            if let Ok(d) = "hickory_server=warn".parse() {
                filter = filter.add_directive(d);
            }
        }
        // Colours only on a terminal: files and the journal get plain lines.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let lines: Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync> =
            if cli.log_format == "json" {
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .boxed()
            } else {
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr)
                    .boxed()
            };
        // The agent's READY=1 follows its "node registered" line, whatever --log filters out.
        let registered = tracing_subscriber::filter::Targets::new()
            .with_target("skiff_agent", tracing::Level::INFO);
        tracing_subscriber::registry()
            .with(lines.with_filter(filter))
            .with(notify::AgentReadyLayer.with_filter(registered))
            .init();
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if matches!(cli.cmd, Command::Agent(_)) {
        // The agent waits on the API, containerd and the network: one worker thread keeps up
        // (pod start p99 unchanged in BENCHMARKS.md) and saves a thread and its allocator heap.
        rt.worker_threads(1);
    }
    let rt = rt
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.cmd {
        Command::Server(args) => rt.block_on(run_server(*args)),
        Command::Agent(args) => rt.block_on(run_agent(*args)),
        Command::Images(args) => rt.block_on(run_images(args)),
        Command::Hollow(args) => rt.block_on(run_hollow(args)),
        Command::Token(t) => rt.block_on(tokencmd::run(t, default_data_dir())),
        Command::CheckConfig => checkconfig::run(),
        Command::Certificate(c) => certcmd::run(c, default_data_dir()),
        Command::Completion(c) => completion::run(c, <Cli as clap::CommandFactory>::command()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_supplies_node_flags_that_were_not_given() {
        let path = std::env::temp_dir().join(format!("skiff-config-{}.yaml", std::process::id()));
        std::fs::write(
            &path,
            "node-name: edge-1\nnode-ip: 192.0.2.7\nprivate-registry: /srv/reg.yaml\n\
             node-label: [disk=ssd]\nnode-taint: ['dedicated=infra:NoSchedule']\n",
        )
        .unwrap();
        let cli = parse_with(&[
            "skiff",
            "server",
            "--config",
            path.to_str().unwrap(),
            "--node-label",
            "zone=a",
        ])
        .unwrap();
        let Command::Server(args) = cli.cmd else {
            panic!("not a server command");
        };
        std::fs::remove_file(&path).unwrap();
        assert_eq!(args.node.node_name.as_deref(), Some("edge-1"));
        assert_eq!(args.node.node_ip, Some(Ipv4Addr::new(192, 0, 2, 7)));
        assert_eq!(args.node.private_registry, PathBuf::from("/srv/reg.yaml"));
        assert_eq!(args.node.node_label, ["zone=a", "disk=ssd"]);
        assert_eq!(args.node.node_taint, ["dedicated=infra:NoSchedule"]);
        let (labels, taints) = parse_node_flags(&args.node).unwrap();
        assert_eq!(labels.len(), 2);
        assert_eq!(taints[0].effect, "NoSchedule");
    }

    /// Parses `argv` with the config file it names merged in, as `main` does.
    fn parse_with(argv: &[&str]) -> Result<Cli> {
        let argv = config::merged_args::<Cli>(argv.iter().map(Into::into).collect())?;
        Ok(Cli::try_parse_from(argv)?)
    }

    /// A config file with `text`, removed on drop.
    struct ConfigFile(PathBuf);

    impl ConfigFile {
        fn new(name: &str, text: &str) -> ConfigFile {
            let p = std::env::temp_dir()
                .join(format!("skiff-config-{}-{name}.yaml", std::process::id()));
            std::fs::write(&p, text).unwrap();
            ConfigFile(p)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for ConfigFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn server(argv: &[&str]) -> Result<Box<ServerArgs>> {
        match parse_with(argv)?.cmd {
            Command::Server(a) => Ok(a),
            other => panic!("not a server command: {other:?}"),
        }
    }

    #[test]
    fn every_server_flag_is_a_key_and_the_command_line_wins() {
        let f = ConfigFile::new(
            "port",
            "https-listen-port: 7443\ndisable-agent: true\ntls-san: [a.example, 192.0.2.1]\n\
             service-node-port-range: 31000-31999\nevent-ttl: 30m\nlog: debug\n\
             default-unreachable-toleration-seconds: 60\n",
        );
        let a = server(&["skiff", "server", "-c", f.path()]).unwrap();
        assert_eq!(a.https_listen_port, 7443);
        assert!(a.disable_agent);
        assert_eq!(a.tls_san, ["a.example", "192.0.2.1"]);
        assert_eq!(a.service_node_port_range, "31000-31999");
        assert_eq!(a.event_ttl, "30m");
        assert_eq!(a.default_unreachable_toleration_seconds, 60);
        // An explicit flag equal to the default still wins over the file.
        let a = server(&[
            "skiff",
            "server",
            "--config",
            f.path(),
            "--https-listen-port",
            "6443",
            "--tls-san=b.example",
        ])
        .unwrap();
        assert_eq!(a.https_listen_port, 6443);
        assert_eq!(a.tls_san, ["b.example", "a.example", "192.0.2.1"]);
        let cli = parse_with(&["skiff", "server", "--config", f.path()]).unwrap();
        assert_eq!(cli.log, "debug");
        let cli = parse_with(&["skiff", "--log", "warn", "server", "--config", f.path()]).unwrap();
        assert_eq!(cli.log, "warn");
    }

    #[test]
    fn a_false_switch_and_a_single_list_value_are_accepted() {
        let f = ConfigFile::new("switch", "disable-agent: false\nnode-label: disk=ssd\n");
        let a = server(&["skiff", "server", "--config", f.path()]).unwrap();
        assert!(!a.disable_agent);
        assert_eq!(a.node.node_label, ["disk=ssd"]);
    }

    #[test]
    fn unknown_keys_and_wrong_shapes_are_errors_naming_the_key() {
        for (text, want) in [
            (
                "https-listen-prot: 7443\n",
                "unknown key \"https-listen-prot\"",
            ),
            ("server: https://192.0.2.1:6443\n", "unknown key \"server\""),
            (
                "https-listen-port: [1, 2]\n",
                "key \"https-listen-port\" takes one value",
            ),
            (
                "disable-agent: maybe\n",
                "key \"disable-agent\" is a switch",
            ),
            ("token:\n", "key \"token\" has no value"),
            ("config: /etc/other.yaml\n", "key \"config\""),
            ("- a\n- b\n", "must be a mapping"),
        ] {
            let f = ConfigFile::new("bad", text);
            let err = format!(
                "{:#}",
                server(&["skiff", "server", "-c", f.path()]).unwrap_err()
            );
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.contains(f.path()), "{text:?}: {err}");
        }
        // A value of the wrong type is clap's error, as for the flag.
        let f = ConfigFile::new("type", "https-listen-port: high\n");
        assert!(server(&["skiff", "server", "-c", f.path()]).is_err());
    }

    #[test]
    fn a_missing_or_empty_config_file_changes_nothing() {
        let a = server(&["skiff", "server", "-c", "/nonexistent/skiff.yaml"]).unwrap();
        assert_eq!(a.https_listen_port, 6443);
        let f = ConfigFile::new("empty", "");
        let a = server(&["skiff", "server", "-c", f.path()]).unwrap();
        assert_eq!(a.https_listen_port, 6443);
        assert!(a.tls_san.is_empty());
    }

    #[test]
    fn the_agent_reads_the_config_file_too() {
        let f = ConfigFile::new(
            "agent",
            "server: https://192.0.2.1:6443\ntoken: K10abc::server:pw\nnode-name: edge-2\n\
             node-label: [zone=b]\nmax-pods: 50\n",
        );
        // `--server` is required: the file may supply it.
        let cli =
            parse_with(&["skiff", "agent", "--config", f.path(), "--max-pods", "20"]).unwrap();
        let Command::Agent(a) = cli.cmd else {
            panic!("not an agent command");
        };
        assert_eq!(a.server, "https://192.0.2.1:6443");
        assert_eq!(a.token.as_deref(), Some("K10abc::server:pw"));
        assert_eq!(a.node.node_name.as_deref(), Some("edge-2"));
        assert_eq!(a.node.node_label, ["zone=b"]);
        assert_eq!(a.node.max_pods, 20);
        // Server-only keys are not agent flags.
        let f = ConfigFile::new(
            "agent-bad",
            "server: https://192.0.2.1:6443\ndisable-agent: true\n",
        );
        let err = format!(
            "{:#}",
            parse_with(&["skiff", "agent", "-c", f.path()])
                .err()
                .unwrap()
        );
        assert!(err.contains("unknown key \"disable-agent\""), "{err}");
    }

    #[test]
    fn other_subcommands_ignore_the_config_file() {
        let cli = parse_with(&["skiff", "token", "-d", "/tmp/x"]).unwrap();
        assert!(matches!(cli.cmd, Command::Token(_)));
    }
}

/// `--cluster-dns`, else the tenth address of the (first) `--service-cidr`, as k3s picks it.
fn cluster_dns_of(args: &ServerArgs) -> Result<Ipv4Addr> {
    if let Some(ip) = args.cluster_dns {
        return Ok(ip);
    }
    tenth_address(&args.service_cidr)
}

/// The tenth address of the first IPv4 network in a `--service-cidr` value.
fn tenth_address(service_cidr: &str) -> Result<Ipv4Addr> {
    let first = service_cidr.split(',').next().unwrap_or("").trim();
    let (addr, len) = first.split_once('/').unwrap_or((first, "32"));
    let ip: Ipv4Addr = addr.parse().with_context(|| {
        format!("--service-cidr {service_cidr:?} is not an IPv4 network: use e.g. 10.43.0.0/16")
    })?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 30).with_context(|| {
        format!("--service-cidr {service_cidr:?} needs a prefix length up to /30")
    })?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Ok(Ipv4Addr::from((u32::from(ip) & mask) + 10))
}

#[cfg(test)]
mod cluster_dns_tests {
    use super::tenth_address;

    #[test]
    fn the_default_dns_address_is_the_tenth_of_the_service_network() {
        assert_eq!(
            tenth_address("10.43.0.0/16").unwrap().to_string(),
            "10.43.0.10"
        );
        assert_eq!(
            tenth_address("10.45.0.0/16").unwrap().to_string(),
            "10.45.0.10"
        );
        assert_eq!(
            tenth_address("10.96.3.7/12").unwrap().to_string(),
            "10.96.0.10"
        );
        assert!(tenth_address("fd00::/108").is_err());
        assert!(tenth_address("10.0.0.0/31").is_err());
    }
}
