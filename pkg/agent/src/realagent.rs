//! `skiff agent` on containerd: join with the node's own identity, start and supervise
//! containerd, register the Node with the host's facts, keep its Lease and status fresh, write
//! the CNI config once the server assigned a pod CIDR, and run the kubelet.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use tokio::sync::watch;

use crate::certrenew::{self, ClientSwitch, Renewed, ServingCert};
use crate::containerd::{self, ContainerdOptions, Paths};
use crate::cri::Cri;
use crate::eviction::EvictionThresholds;
use crate::host::{self, HostFacts};
use crate::node::{self, NodeSpec, SystemInfo, Taint};
use crate::{join, kubelet, Error};

/// `skiff agent` (and the agent `skiff server` runs) on containerd.
#[derive(Debug, Clone)]
pub struct ContainerdAgentConfig {
    /// `https://host:port` of a skiff server.
    pub server: String,
    /// A `K10…` token or a bare password.
    pub token: String,
    pub node_name: String,
    pub data_dir: PathBuf,
    /// InternalIP; default: the local address the host uses to reach the server.
    pub node_ip: Option<Ipv4Addr>,
    pub labels: Vec<(String, String)>,
    pub taints: Vec<Taint>,
    pub max_pods: u32,
    /// Reach the API through the client-side load balancer ([`crate::loadbalancer`]).
    pub apiserver_lb: bool,
    /// k3s-style `--kubelet-arg key=value`s (`eviction-hard` is implemented).
    pub kubelet_args: Vec<String>,
    /// registries.yaml (k3s format); absent is fine.
    pub private_registry: PathBuf,
    /// Use this containerd socket instead of starting containerd.
    pub container_runtime_endpoint: Option<PathBuf>,
    /// containerd binary (default: `containerd` on PATH).
    pub containerd_binary: Option<PathBuf>,
    pub cluster_dns: Vec<Ipv4Addr>,
    pub cluster_domain: String,
    /// Pod log root (CRI log directories `<ns>_<pod>_<uid>` below it).
    pub pod_log_dir: PathBuf,
    /// The kubelet API's port (`--kubelet-port`, default 10250).
    pub kubelet_port: u16,
    /// `--flannel-backend`: the pod network between nodes (vxlan, host-gw, none).
    pub flannel_backend: skiff_network::Backend,
    /// `--flannel-iface`: the interface the pod network uses (default: the node IP's).
    pub flannel_iface: Option<String>,
    /// The cluster's pod network (`--cluster-cidr`), where node pod CIDRs come from.
    pub cluster_cidr: String,
    /// Run the service proxy (skiff-proxy); `--disable-kube-proxy` turns it off.
    pub kube_proxy: bool,
    /// Serve cluster DNS on this node (skiff-dns, on `cluster_dns[0]`); the server's
    /// `--disable dns` turns it off for its own node.
    pub dns: bool,
    /// `--resolv-conf`: the node's resolvers, where names outside the cluster go.
    pub resolv_conf: PathBuf,
    /// Run the ingress proxy on ports 80/443 (skiff-ingress); the server's `--disable ingress`
    /// turns it off for its own node (and, with no `skiff` IngressClass, on every node).
    pub ingress: bool,
    /// Enforce NetworkPolicies for this node's pods (skiff-netpol); the server's `--disable
    /// network-policy` and `--disable-network-policy` turn it off.
    pub network_policy: bool,
}

/// How often the node's Lease is renewed (the kubelet's default).
const LEASE_RENEW: Duration = Duration::from_secs(10);
/// Node status is re-read this often and posted when it changed…
const STATUS_CHECK: Duration = Duration::from_secs(10);
/// …or at least this often (the kubelet's nodeStatusReportFrequency is 5 min; 1 min is cheap).
const STATUS_REPORT: Duration = Duration::from_secs(60);

/// The runtime this process uses: a supervised containerd or a user-given socket.
enum Runtime {
    Supervised(containerd::Supervisor),
    External(PathBuf),
}

impl Runtime {
    fn socket(&self) -> PathBuf {
        match self {
            Runtime::Supervised(s) => s.socket().to_path_buf(),
            Runtime::External(p) => p.clone(),
        }
    }
}

async fn start_runtime(cfg: &ContainerdAgentConfig) -> Result<Runtime, Error> {
    if let Some(sock) = &cfg.container_runtime_endpoint {
        let sock = PathBuf::from(
            sock.to_string_lossy()
                .trim_start_matches("unix://")
                .to_string(),
        );
        return Ok(Runtime::External(sock));
    }
    let sup = containerd::start(&ContainerdOptions {
        data_dir: cfg.data_dir.clone(),
        private_registry: cfg.private_registry.clone(),
        binary: cfg.containerd_binary.clone(),
    })
    .await?;
    Ok(Runtime::Supervised(sup))
}

/// Runs the agent until the process ends (or a fatal error).
pub async fn run(cfg: ContainerdAgentConfig) -> Result<(), Error> {
    if cfg.node_name.trim().is_empty() {
        return Err(Error::Config(
            "the node name is empty: pass --node-name or set SKIFF_NODE_NAME".into(),
        ));
    }
    let started = std::time::Instant::now();
    let thresholds = EvictionThresholds::from_kubelet_args(&cfg.kubelet_args)?;
    // containerd does not need the server: start it while the join runs.
    let runtime = {
        let cfg = cfg.clone();
        tokio::spawn(async move { start_runtime(&cfg).await })
    };
    let url = join::parse_server_url(&cfg.server)?;
    let ip = match cfg.node_ip {
        Some(ip) => ip,
        None => crate::local_ip_towards(&url).await,
    };
    let lb = match cfg.apiserver_lb {
        true => Some(crate::loadbalancer::LoadBalancer::start(&cfg.server).await?),
        false => None,
    };
    let identity = join::NodeIdentityOptions {
        server: lb.as_ref().map_or(cfg.server.clone(), |lb| lb.local_url()),
        kubeconfig_server: lb.as_ref().map(|_| cfg.server.clone()),
        token: cfg.token.clone(),
        node_name: cfg.node_name.clone(),
        node_ips: vec![IpAddr::V4(ip)],
        data_dir: cfg.data_dir.clone(),
    };
    let joined = join::join_node(&identity).await?;
    if let Some(lb) = &lb {
        lb.spawn_refresh(joined.client.clone());
    }
    tracing::info!(server = %joined.url, pinned = joined.pinned, node = %cfg.node_name,
        ms = started.elapsed().as_millis() as u64, "joined the server with the node's own certificate");
    let tunnel_cfg = crate::tunnel::TunnelConfig {
        server: joined.url.clone(),
        ca_pem: joined.ca_pem.clone(),
        cert_file: cfg.data_dir.join("agent").join(join::CLIENT_CERT_FILE),
        key_file: cfg.data_dir.join("agent").join(join::CLIENT_KEY_FILE),
        kubelet_port: cfg.kubelet_port,
    };
    // Behind the load balancer (several servers may share the datastore): a tunnel to each
    // listed server, so every server can reach this node's kubelet API.
    let tunnel = match lb.clone() {
        Some(lb) => tokio::spawn(crate::tunnel::run_to_each(
            tunnel_cfg,
            move || lb.listed(),
            crate::loadbalancer::REFRESH,
        )),
        None => tokio::spawn(crate::tunnel::run(tunnel_cfg)),
    };
    // Every loop gets a clone of `client`; the renewal task swaps the identity behind it.
    let (client, client_switch) = ClientSwitch::new(joined.client.clone());
    // The kubelet serving certificate, current (the kubelet API presents it through a
    // `certrenew::ServingCertResolver`).
    let (serving_tx, serving_cert) = watch::channel(ServingCert {
        cert_pem: joined.serving_cert_pem.clone(),
        key_pem: joined.serving_key_pem.clone(),
    });
    let renewal = tokio::spawn(certrenew::renew_loop(
        joined.client_cert_pem.clone(),
        client_switch,
        serving_tx,
        move || {
            let identity = identity.clone();
            async move {
                let j = join::join_node(&identity).await?;
                Ok(Renewed {
                    client: j.client,
                    client_cert_pem: j.client_cert_pem,
                    serving: ServingCert {
                        cert_pem: j.serving_cert_pem,
                        key_pem: j.serving_key_pem,
                    },
                })
            }
        },
    ));

    let runtime = runtime
        .await
        .map_err(|e| Error::Runtime(format!("containerd start task failed: {e}")))??;
    let mut cri = Cri::connect_wait(&runtime.socket(), Duration::from_secs(30)).await?;
    let version = cri
        .runtime
        .version(k8s_cri::v1::VersionRequest::default())
        .await
        .map_err(|s| Error::Runtime(format!("containerd CRI version: {}", s.message())))?
        .into_inner();
    let runtime_version = format!("{}://{}", version.runtime_name, version.runtime_version);
    containerd::ensure_pause_image(&cri).await?;
    tracing::info!(runtime = %runtime_version, ms = started.elapsed().as_millis() as u64,
        "container runtime ready");
    let mut api_cfg = crate::kubeletapi::KubeletApiConfig::for_node(
        &cfg.node_name,
        cfg.kubelet_port,
        cfg.pod_log_dir.clone(),
        &cfg.data_dir.join("agent"),
        &joined,
    );
    // Renewed serving certificates are presented from the next handshake on.
    api_cfg.cert_resolver = Some(std::sync::Arc::new(certrenew::ServingCertResolver::new(
        serving_cert,
    )));
    let kubelet_api = crate::kubeletapi::start(api_cfg, cri.clone(), Some(client.clone()))
        .await
        .map_err(
            |e| tracing::warn!(error = %e, "kubelet API not started: no logs, exec or stats here"),
        )
        .ok();
    let paths = Paths::new(&cfg.data_dir);
    {
        let cri = cri.clone();
        let dir = paths.images_dir.clone();
        tokio::spawn(async move {
            match containerd::import_dir(&cri, &dir).await {
                Ok(names) if !names.is_empty() => {
                    tracing::info!(images = ?names, dir = %dir.display(), "imported images")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, dir = %dir.display(), "image import failed"),
            }
        });
    }

    let spec = NodeSpec {
        name: cfg.node_name.clone(),
        ip,
        labels: cfg.labels.iter().cloned().collect(),
        taints: cfg.taints.clone(),
        max_pods: cfg.max_pods,
    };
    let sys = SystemInfo::from_host();
    let storage_dir = cfg.data_dir.join("storage");
    let uid = register(&client, &spec, &sys.architecture, &storage_dir).await?;
    let reporter = StatusReporter {
        client: client.clone(),
        cri: cri.clone(),
        spec: spec.clone(),
        sys,
        runtime_version,
        kubelet_port: cfg.kubelet_port,
        data_dir: cfg.data_dir.clone(),
        thresholds: thresholds.clone(),
    };
    reporter.post().await?;
    tracing::info!(node = %spec.name, ms = started.elapsed().as_millis() as u64, "node registered");
    let heartbeat = tokio::spawn(heartbeats(reporter, uid));

    let pod_cidr = wait_for_pod_cidr(&client, &spec.name).await?;
    let (cni_network, pod_network) = start_pod_network(&cfg, &client, ip, &pod_cidr).await?;
    containerd::write_cni_config_with(&paths, &pod_cidr, &cni_network)?;
    tracing::info!(pod_cidr = %pod_cidr, "pod network configured");

    let cleanup = tokio::spawn(crate::localpath::run_cleanup(
        client.clone(),
        spec.name.clone(),
    ));
    let service_proxy = cfg
        .kube_proxy
        .then(|| start_service_proxy(&client, &spec.name, &cfg.cluster_cidr));
    let network_policy = start_network_policy(&client, &spec.name, cfg.network_policy);
    let cluster_dns = match (cfg.dns, cfg.cluster_dns.first()) {
        (true, Some(ip)) => Some(start_cluster_dns(&client, &cfg, *ip)),
        _ => None,
    };
    let ingress = cfg.ingress.then(|| start_ingress(&client, &spec.name));
    let kcfg = kubelet::KubeletConfig {
        node_name: spec.name.clone(),
        node_ip: ip,
        root_dir: cfg.data_dir.join("agent"),
        pod_log_dir: cfg.pod_log_dir.clone(),
        cluster_dns: cfg.cluster_dns.clone(),
        cluster_domain: cfg.cluster_domain.clone(),
        eviction: thresholds,
    };
    let result = kubelet::run(client, cri, kcfg).await;
    if let Some(api) = &kubelet_api {
        api.task.abort();
    }
    renewal.abort();
    tunnel.abort();
    heartbeat.abort();
    cleanup.abort();
    if let Some(t) = pod_network {
        t.abort();
    }
    if let Some(t) = service_proxy {
        t.abort();
    }
    network_policy.abort();
    if let Some(t) = cluster_dns {
        t.abort();
    }
    if let Some(t) = ingress {
        t.abort();
    }
    if let Runtime::Supervised(s) = runtime {
        s.shutdown().await;
    }
    result
}

/// Starts the node-local cluster DNS server (skiff-dns); restarted a second after it ever stops.
fn start_cluster_dns(
    client: &kube::Client,
    cfg: &ContainerdAgentConfig,
    address: Ipv4Addr,
) -> tokio::task::JoinHandle<()> {
    let client = client.clone();
    let dcfg = skiff_dns::DnsConfig::new(address, &cfg.cluster_domain, cfg.resolv_conf.clone());
    tokio::spawn(async move {
        loop {
            if let Err(e) = skiff_dns::run(client.clone(), dcfg.clone()).await {
                tracing::error!(error = %e, "cluster DNS stopped: pods on this node cannot resolve names");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// Starts NetworkPolicy enforcement (skiff-netpol), restarted a second after it ever stops;
/// when it is switched off, removes a table an earlier run left (no pod stays isolated).
fn start_network_policy(
    client: &kube::Client,
    node: &str,
    enabled: bool,
) -> tokio::task::JoinHandle<()> {
    let client = client.clone();
    let ncfg = skiff_netpol::NetpolConfig::new(node);
    tokio::spawn(async move {
        if !enabled {
            if let Err(e) = skiff_netpol::nft::remove_table().await {
                tracing::warn!(error = %e, "cannot remove the network policy table");
            }
            return;
        }
        loop {
            if let Err(e) = skiff_netpol::run(client.clone(), ncfg.clone()).await {
                tracing::error!(error = %e, "network policy enforcement stopped: this node's pods are not isolated");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// Starts the ingress proxy (skiff-ingress); restarted a second after it ever stops.
fn start_ingress(client: &kube::Client, node: &str) -> tokio::task::JoinHandle<()> {
    let client = client.clone();
    let icfg = skiff_ingress::IngressConfig::new(node);
    tokio::spawn(async move {
        loop {
            if let Err(e) = skiff_ingress::run(client.clone(), icfg.clone()).await {
                tracing::error!(error = %e, "the ingress stopped: Ingresses are not served on this node");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// Starts the service proxy (skiff-proxy); restarted a second after it ever stops.
fn start_service_proxy(
    client: &kube::Client,
    node: &str,
    cluster_cidr: &str,
) -> tokio::task::JoinHandle<()> {
    let client = client.clone();
    let pcfg = skiff_proxy::ProxyConfig::new(node, cluster_cidr);
    tokio::spawn(async move {
        loop {
            if let Err(e) = skiff_proxy::run(client.clone(), pcfg.clone()).await {
                tracing::error!(error = %e, "the service proxy stopped: Services do not reach pods from this node");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// Starts the pod network between nodes (skiff-network) and says how the CNI bridge fits it.
async fn start_pod_network(
    cfg: &ContainerdAgentConfig,
    client: &kube::Client,
    ip: Ipv4Addr,
    pod_cidr: &str,
) -> Result<(containerd::CniNetwork, Option<tokio::task::JoinHandle<()>>), Error> {
    if cfg.flannel_backend == skiff_network::Backend::None {
        return Ok((containerd::CniNetwork::default(), None));
    }
    let parse = |what: &str, s: &str| {
        s.parse::<skiff_network::Net>().map_err(|e| {
            Error::Config(format!(
                "{what} {s:?}: {e}: use an IPv4 network such as 10.42.0.0/16"
            ))
        })
    };
    let net_cfg = skiff_network::NetworkConfig {
        node_name: cfg.node_name.clone(),
        node_ip: ip,
        backend: cfg.flannel_backend,
        iface: cfg.flannel_iface.clone(),
        cluster_cidr: parse("--cluster-cidr", &cfg.cluster_cidr)?,
        pod_cidr: parse("the node's pod CIDR", pod_cidr)?,
    };
    let mtu = match skiff_network::pod_mtu_for(&net_cfg).await {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(error = %e, "cannot size the pod MTU; pods get the default");
            None
        }
    };
    let cni = containerd::CniNetwork {
        mtu,
        cluster_cidr: Some(net_cfg.cluster_cidr.trunc().to_string()),
        ip_masq: false,
    };
    let client = client.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = skiff_network::run(client, net_cfg).await {
            tracing::error!(error = %e, "the pod network stopped: pods cannot reach other nodes");
        }
    });
    Ok((cni, Some(task)))
}

/// Creates the Node (no pod CIDR: the server's IPAM assigns one) or updates its labels.
async fn register(
    client: &kube::Client,
    spec: &NodeSpec,
    arch: &str,
    storage_dir: &std::path::Path,
) -> Result<String, Error> {
    let nodes: Api<DynamicObject> = node::nodes_api(client);
    let mut obj = node::new_node_object(spec, arch, None);
    obj["metadata"]["annotations"]["skiff.io/runtime"] = json!("containerd");
    obj["metadata"]["annotations"]["skiff.io/local-path-dir"] =
        json!(storage_dir.to_string_lossy());
    let dyn_obj: DynamicObject = serde_json::from_value(obj.clone())
        .map_err(|e| Error::Config(format!("cannot build the node object: {e}")))?;
    let created = match nodes.create(&PostParams::default(), &dyn_obj).await {
        Ok(o) => o,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let patch = json!({"metadata": {
                "labels": obj["metadata"]["labels"],
                "annotations": obj["metadata"]["annotations"],
            }});
            nodes
                .patch(&spec.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::api(&format!("update node {}", spec.name), e))?
        }
        Err(e) => return Err(Error::api(&format!("create node {}", spec.name), e)),
    };
    Ok(created.metadata.uid.unwrap_or_default())
}

async fn wait_for_pod_cidr(client: &kube::Client, name: &str) -> Result<String, Error> {
    let nodes = node::nodes_api(client);
    let start = std::time::Instant::now();
    let mut warned = false;
    loop {
        match nodes.get_opt(name).await {
            Ok(Some(n)) => {
                if let Some(c) = n
                    .data
                    .pointer("/spec/podCIDR")
                    .and_then(Value::as_str)
                    .filter(|c| !c.is_empty())
                {
                    return Ok(c.to_string());
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the node object, retrying"),
        }
        if !warned && start.elapsed() > Duration::from_secs(10) {
            warned = true;
            tracing::warn!(
                node = name,
                "still waiting for the server to assign a pod CIDR: is the server's controller \
                 manager running (not --disable-controller-manager) and the cluster CIDR not full?"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct StatusReporter {
    client: kube::Client,
    cri: Cri,
    spec: NodeSpec,
    sys: SystemInfo,
    runtime_version: String,
    kubelet_port: u16,
    data_dir: PathBuf,
    thresholds: EvictionThresholds,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl StatusReporter {
    async fn runtime_not_ready(&self) -> Option<String> {
        let mut rt = self.cri.runtime.clone();
        let status = rt
            .status(k8s_cri::v1::StatusRequest { verbose: false })
            .await
            .ok()
            .and_then(|r| r.into_inner().status);
        host::runtime_not_ready(status.as_ref())
    }

    /// The status to post, from a fresh host reading and the runtime status.
    async fn status(&self, old: &Value) -> Value {
        let facts = HostFacts::read(&self.data_dir);
        let not_ready = self.runtime_not_ready().await;
        let (capacity, allocatable) = facts.resources(self.spec.max_pods, &self.thresholds);
        let machine_id = read_trimmed("/etc/machine-id");
        json!({
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": host::conditions(&facts, &self.thresholds, not_ready.as_deref(), old, Utc::now()),
            "addresses": [
                {"type": "InternalIP", "address": self.spec.ip.to_string()},
                {"type": "Hostname", "address": self.spec.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": {
                "machineID": machine_id,
                "systemUUID": read_trimmed("/sys/class/dmi/id/product_uuid"),
                "bootID": read_trimmed("/proc/sys/kernel/random/boot_id"),
                "kernelVersion": self.sys.kernel_version,
                "osImage": self.sys.os_image,
                "containerRuntimeVersion": self.runtime_version,
                "kubeletVersion": node::KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": self.sys.architecture,
            },
        })
    }

    /// Posts the full status; returns the posted condition statuses (to detect changes).
    async fn post(&self) -> Result<Vec<(String, String)>, Error> {
        let nodes = node::nodes_api(&self.client);
        let old = nodes
            .get(&self.spec.name)
            .await
            .map_err(|e| Error::api(&format!("get node {}", self.spec.name), e))?
            .data
            .get("status")
            .cloned()
            .unwrap_or(Value::Null);
        let status = self.status(&old).await;
        let summary = condition_summary(&status);
        nodes
            .patch_status(
                &self.spec.name,
                &PatchParams::default(),
                &Patch::Strategic(json!({"status": status})),
            )
            .await
            .map_err(|e| Error::api(&format!("update node {} status", self.spec.name), e))?;
        Ok(summary)
    }
}

fn condition_summary(status: &Value) -> Vec<(String, String)> {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["type"].as_str().unwrap_or_default().to_string(),
                format!(
                    "{}/{}",
                    c["status"].as_str().unwrap_or_default(),
                    c["message"]
                ),
            )
        })
        .collect()
}

async fn heartbeats(reporter: StatusReporter, uid: String) {
    let mut last_post = tokio::time::Instant::now();
    let mut last_summary: Vec<(String, String)> = Vec::new();
    let mut next_lease = tokio::time::Instant::now();
    let mut next_check = tokio::time::Instant::now();
    loop {
        let now = tokio::time::Instant::now();
        if now >= next_lease {
            if let Err(e) =
                crate::sim::renew_lease(&reporter.client, &reporter.spec.name, &uid).await
            {
                tracing::warn!(error = %e, "lease renewal failed");
            }
            next_lease = now + LEASE_RENEW;
        }
        if now >= next_check {
            let facts_changed =
                condition_summary(&reporter.status(&Value::Null).await) != last_summary;
            if facts_changed || now.duration_since(last_post) >= STATUS_REPORT {
                match reporter.post().await {
                    Ok(summary) => {
                        let ready = summary
                            .iter()
                            .any(|(t, s)| t == "Ready" && s.starts_with("True"));
                        last_summary = summary;
                        last_post = now;
                        // Until Ready, look again soon: the network comes up right after start.
                        next_check = now
                            + if ready {
                                STATUS_CHECK
                            } else {
                                Duration::from_millis(250)
                            };
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "node status update failed");
                        next_check = now + Duration::from_secs(2);
                    }
                }
            } else {
                next_check = now + STATUS_CHECK;
            }
        }
        let wake = next_lease.min(next_check);
        tokio::time::sleep_until(wake).await;
    }
}
