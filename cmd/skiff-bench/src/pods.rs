//! The pod start benchmark (`skiff-bench --pods`): create → Running, seen by a watch, for one
//! pod at a time and for a batch at once, on a real node (`skiff agent` on containerd, in a
//! network namespace of its own with no route out), against the floor: the same containerd
//! driven directly with the same CRI calls in the same run. Also the node's Ready time after
//! `skiff agent` starts and the idle memory of agent, server, server-with-agent and containerd.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use serde::Serialize;

use crate::error::{BenchError, Result};
use crate::procs::{self, ChildGuard, MemBreakdown};
use crate::stats::{summarize, us, Summary};

/// Environment variable set on the re-executed bench inside its network namespace.
const NETNS_ENV: &str = "SKIFF_BENCH_NETNS";

/// Settings of the pod benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct PodSettings {
    pub single_runs: usize,
    pub batch: usize,
    pub idle_s: f64,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PodReport {
    pub node_ready_after_agent_start_ms: f64,
    pub node_ready_after_server_start_ms: f64,
    pub skiff_single: Summary,
    pub floor_single: Summary,
    pub skiff_batch: Summary,
    pub skiff_batch_total_ms: f64,
    pub floor_batch: Summary,
    pub floor_batch_total_ms: f64,
    pub agent_idle_rss_kib: u64,
    pub server_idle_rss_kib: u64,
    pub server_with_agent_idle_rss_kib: u64,
    pub containerd_idle_rss_kib: u64,
    /// The idle readings split into anonymous / file-backed memory, with thread counts.
    pub agent_idle: MemBreakdown,
    pub server_idle: MemBreakdown,
    pub server_with_agent_idle: MemBreakdown,
    pub containerd_idle: MemBreakdown,
    /// What ran in `skiff agent` at its idle reading, from its log (see [`parts_running`]).
    pub agent_parts: Vec<String>,
    /// The same for the server's own agent.
    pub server_agent_parts: Vec<String>,
}

impl PodReport {
    pub fn markdown(&self, s: &PodSettings, command: &str, machine: &str) -> String {
        let row = |name: &str, x: &Summary| {
            format!(
                "| {name} | {} | {:.0} | {:.0} | {:.0} | {:.0} |\n",
                x.count, x.p50_ms, x.p90_ms, x.p99_ms, x.max_ms
            )
        };
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let mut out = String::new();
        out.push_str(&format!("Command: `{command}`\n\nMachine: {machine}\n\n"));
        out.push_str("| create → Running | pods | p50 ms | p90 ms | p99 ms | max ms |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|\n");
        out.push_str(&row("skiff, one pod at a time", &self.skiff_single));
        out.push_str(&row("floor (raw CRI), one at a time", &self.floor_single));
        out.push_str(&row(
            &format!("skiff, {} at once", s.batch),
            &self.skiff_batch,
        ));
        out.push_str(&row(
            &format!("floor (raw CRI), {} at once", s.batch),
            &self.floor_batch,
        ));
        out.push_str(&format!(
            "\np99 ratio skiff/floor: one pod {:.2}x, {} pods {:.2}x. Batch wall time: skiff {:.0} ms, floor {:.0} ms.\n",
            ratio(self.skiff_single.p99_ms, self.floor_single.p99_ms),
            s.batch,
            ratio(self.skiff_batch.p99_ms, self.floor_batch.p99_ms),
            self.skiff_batch_total_ms,
            self.floor_batch_total_ms,
        ));
        out.push_str(&format!(
            "\nNode Ready {:.0} ms after `skiff agent` started; the server's own node Ready {:.0} ms after `skiff server` started.\n",
            self.node_ready_after_agent_start_ms, self.node_ready_after_server_start_ms
        ));
        out.push_str(&format!(
            "\nIdle memory (agent, server alone and containerd {} s after the last pod went; server with its agent {} s after its node was Ready):\n\n",
            s.idle_s, s.idle_s,
        ));
        out.push_str(
            "| process | RSS MiB | anon MiB | file MiB | threads |\n|---|---:|---:|---:|---:|\n",
        );
        let mib = |k: u64| k as f64 / 1024.0;
        for (name, m) in [
            ("skiff agent", &self.agent_idle),
            ("skiff server --disable-agent", &self.server_idle),
            (
                "skiff server (with its agent)",
                &self.server_with_agent_idle,
            ),
            ("containerd (agent's)", &self.containerd_idle),
        ] {
            out.push_str(&format!(
                "| {name} | {:.1} | {:.1} | {:.1} | {} |\n",
                mib(m.rss_kib),
                mib(m.anon_kib),
                mib(m.file_kib),
                m.threads
            ));
        }
        let parts = |p: &[String]| {
            if p.is_empty() {
                "none of proxy, DNS, ingress, network policy, pod network".to_string()
            } else {
                p.join(", ")
            }
        };
        out.push_str(&format!(
            "\nRunning in `skiff agent` at the reading (from its log): {}. In the server's own agent: {}.\n",
            parts(&self.agent_parts),
            parts(&self.server_agent_parts),
        ));
        out
    }
}

/// Log lines that say a part of the agent is up, and the part's name.
const PART_MARKERS: &[(&str, &str)] = &[
    ("pod network up", "pod network"),
    (
        "service proxy synced its caches",
        "service proxy (ClusterIP/NodePort/ServiceLB)",
    ),
    ("cluster DNS listening", "cluster DNS"),
    ("ingress listening", "ingress (listening)"),
    (
        "network policy enforcement synced its caches",
        "network policy",
    ),
];

/// The parts of the agent whose start line is in `log` (an agent's or a server's log).
fn parts_running(log: &str) -> Vec<String> {
    PART_MARKERS
        .iter()
        .filter(|(line, _)| log.contains(line))
        .map(|(_, name)| name.to_string())
        .collect()
}

fn parts_in(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .map(|s| parts_running(&s))
        .unwrap_or_default()
}

fn phase(msg: impl Into<String>) -> BenchError {
    BenchError::Phase(msg.into())
}

fn run_cmd(program: &str, args: &[&str]) -> Result<()> {
    let st = std::process::Command::new(program)
        .args(args)
        .status()
        .map_err(|source| BenchError::Spawn {
            program: program.into(),
            source,
        })?;
    if !st.success() {
        return Err(phase(format!("{program} {} failed: {st}", args.join(" "))));
    }
    Ok(())
}

/// Outside the namespace: creates `skiffbench-<pid>` (loopback only, no route out), re-runs
/// this bench inside it, then deletes it. Returns the inner run's exit status.
pub fn run_in_netns() -> Result<std::process::ExitStatus> {
    let ns = format!("skiffbench-{}", std::process::id());
    run_cmd("ip", &["netns", "add", &ns])?;
    let result = (|| {
        run_cmd("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        let exe = std::env::current_exe().map_err(BenchError::io("finding this binary"))?;
        // nsenter, not `ip netns exec`: the latter remounts /sys, which hides the cgroup
        // mounts runc needs ("no cgroup mount found in mountinfo").
        std::process::Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{ns}"))
            .arg("--")
            .arg(exe)
            .args(std::env::args_os().skip(1))
            .env(NETNS_ENV, &ns)
            .status()
            .map_err(|source| BenchError::Spawn {
                program: "nsenter".into(),
                source,
            })
    })();
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", &ns])
        .status();
    result
}

/// Whether this process is the re-executed bench inside its namespace.
pub fn inside_netns() -> bool {
    std::env::var_os(NETNS_ENV).is_some()
}

async fn client_from(kubeconfig: &Path) -> Result<kube::Client> {
    let kc =
        kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| BenchError::Kubeconfig {
            path: kubeconfig.into(),
            why: e.to_string(),
        })?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .map_err(|e| BenchError::Kubeconfig {
            path: kubeconfig.into(),
            why: e.to_string(),
        })?;
    kube::Client::try_from(cfg).map_err(|e| BenchError::Kubeconfig {
        path: kubeconfig.into(),
        why: e.to_string(),
    })
}

async fn wait_for<F, Fut, T>(what: &str, secs: u64, log: &Path, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(BenchError::NotReady {
                what: what.into(),
                secs,
                log: log.into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn api_client(kubeconfig: &Path, log: &Path) -> Result<kube::Client> {
    wait_for("the skiff API", 60, log, || async {
        if !kubeconfig.exists() {
            return None;
        }
        let c = client_from(kubeconfig).await.ok()?;
        c.apiserver_version().await.ok()?;
        Some(c)
    })
    .await
}

fn node_is_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn wait_node_ready(client: &kube::Client, name: &str, log: &Path) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    wait_for(&format!("node {name} Ready"), 60, log, || async {
        nodes
            .get_opt(name)
            .await
            .ok()
            .flatten()
            .filter(node_is_ready)
            .map(|_| ())
    })
    .await
}

fn bench_pod(name: &str, group: &str, image: &str) -> Result<Pod> {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": group}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": image, "imagePullPolicy": "IfNotPresent"}],
        },
    }))
    .map_err(|e| phase(format!("building the bench pod: {e}")))
}

fn is_running(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// Creates `names` at once; each latency is its create call's start → the watch event that
/// first shows it Running.
async fn skiff_pods(
    client: &kube::Client,
    names: &[String],
    group: &str,
) -> Result<(Vec<u64>, f64)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let list = pods
        .list(&ListParams::default().labels(&format!("bench={group}")))
        .await
        .map_err(|e| phase(format!("listing bench pods: {e}")))?;
    let rv = list.metadata.resource_version.unwrap_or_default();
    let mut stream = pods
        .watch(
            &WatchParams::default().labels(&format!("bench={group}")),
            &rv,
        )
        .await
        .map_err(|e| phase(format!("watching bench pods: {e}")))?
        .boxed();
    let started: HashMap<String, Instant> = HashMap::new();
    let started = std::sync::Arc::new(parking_lot::Mutex::new(started));
    let t0 = Instant::now();
    let creates = futures::stream::iter(names.iter().cloned())
        .map(|name| {
            let pods = pods.clone();
            let started = started.clone();
            async move {
                let pod = bench_pod(&name, group, skiff_agent::containerd::PAUSE_IMAGE)?;
                started.lock().insert(name.clone(), Instant::now());
                pods.create(&PostParams::default(), &pod)
                    .await
                    .map_err(|e| phase(format!("creating pod {name}: {e}")))?;
                Ok::<_, BenchError>(())
            }
        })
        .buffer_unordered(names.len().max(1))
        .try_collect::<Vec<_>>();
    let mut done: HashMap<String, u64> = HashMap::new();
    let watch = async {
        while done.len() < names.len() {
            let ev = tokio::time::timeout(Duration::from_secs(120), stream.next())
                .await
                .map_err(|_| phase("pods did not all reach Running within 120 s"))?;
            let Some(ev) = ev else {
                return Err(phase("the pod watch ended early"));
            };
            if let Ok(WatchEvent::Added(p) | WatchEvent::Modified(p)) = ev {
                let name = p.metadata.name.clone().unwrap_or_default();
                if is_running(&p) && !done.contains_key(&name) {
                    if let Some(s) = started.lock().get(&name) {
                        done.insert(name, us(s.elapsed()));
                    }
                }
            }
        }
        Ok::<_, BenchError>(())
    };
    let (c, w) = tokio::join!(creates, watch);
    c?;
    w?;
    let total = t0.elapsed().as_secs_f64() * 1000.0;
    // Clean up: delete and wait until the pods are gone.
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    pods.delete_collection(
        &dp,
        &ListParams::default().labels(&format!("bench={group}")),
    )
    .await
    .map_err(|e| phase(format!("deleting bench pods: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = pods
            .list(&ListParams::default().labels(&format!("bench={group}")))
            .await
            .map_err(|e| phase(format!("listing bench pods: {e}")))?;
        if left.items.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(phase("bench pods were not removed within 120 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((done.into_values().collect(), total))
}

/// The floor: RunPodSandbox + CreateContainer + StartContainer of the same image on the same
/// containerd and CNI network, as the kubelet issues them (no API, no watch).
async fn floor_pods(socket: &Path, log_dir: &Path, n: usize, tag: &str) -> Result<(Vec<u64>, f64)> {
    let client = skiff_agent::cri::Cri::connect_wait(socket, Duration::from_secs(10))
        .await
        .map_err(|e| phase(e.to_string()))?;
    let t0 = Instant::now();
    let results = futures::stream::iter(0..n)
        .map(|i| {
            let mut rt = client.runtime.clone();
            let log_dir = log_dir.to_path_buf();
            let tag = tag.to_string();
            async move {
                let name = format!("floor-{tag}-{i}");
                let uid = format!("floor-{tag}-{i}-{}", std::process::id());
                let labels: HashMap<String, String> = [
                    ("io.kubernetes.pod.name".to_string(), name.clone()),
                    (
                        "io.kubernetes.pod.namespace".to_string(),
                        "bench".to_string(),
                    ),
                    // Not io.kubernetes.pod.uid: the agent's kubelet shares this containerd
                    // and would remove a sandbox with that label as an orphan.
                    ("skiff-bench/uid".to_string(), uid.clone()),
                ]
                .into();
                let dir = log_dir.join(format!("bench_{name}_{uid}"));
                let _ = std::fs::create_dir_all(&dir);
                let sandbox = cri::PodSandboxConfig {
                    metadata: Some(cri::PodSandboxMetadata {
                        name: name.clone(),
                        uid: uid.clone(),
                        namespace: "bench".into(),
                        attempt: 0,
                    }),
                    hostname: name.clone(),
                    log_directory: dir.to_string_lossy().into(),
                    labels: labels.clone(),
                    linux: Some(cri::LinuxPodSandboxConfig {
                        cgroup_parent: format!("/kubepods/besteffort/pod{uid}"),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                let t = Instant::now();
                let sb = rt
                    .run_pod_sandbox(cri::RunPodSandboxRequest {
                        config: Some(sandbox.clone()),
                        runtime_handler: String::new(),
                    })
                    .await
                    .map_err(|s| phase(format!("floor RunPodSandbox: {}", s.message())))?
                    .into_inner()
                    .pod_sandbox_id;
                let ctr = rt
                    .create_container(cri::CreateContainerRequest {
                        pod_sandbox_id: sb.clone(),
                        config: Some(cri::ContainerConfig {
                            metadata: Some(cri::ContainerMetadata {
                                name: "c".into(),
                                attempt: 0,
                            }),
                            image: Some(cri::ImageSpec {
                                image: skiff_agent::containerd::PAUSE_IMAGE.into(),
                                ..Default::default()
                            }),
                            log_path: "c/0.log".into(),
                            labels,
                            ..Default::default()
                        }),
                        sandbox_config: Some(sandbox),
                    })
                    .await
                    .map_err(|s| phase(format!("floor CreateContainer: {}", s.message())))?
                    .into_inner()
                    .container_id;
                rt.start_container(cri::StartContainerRequest { container_id: ctr })
                    .await
                    .map_err(|s| phase(format!("floor StartContainer: {}", s.message())))?;
                Ok::<_, BenchError>((us(t.elapsed()), sb))
            }
        })
        .buffer_unordered(n.max(1))
        .try_collect::<Vec<_>>()
        .await?;
    let total = t0.elapsed().as_secs_f64() * 1000.0;
    let mut rt = client.runtime.clone();
    for (_, sb) in &results {
        let _ = rt
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: sb.clone(),
            })
            .await;
        let _ = rt
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: sb.clone(),
            })
            .await;
    }
    Ok((results.into_iter().map(|(l, _)| l).collect(), total))
}

/// The pid of the containerd whose config lives under `data_dir`.
fn containerd_pid(data_dir: &Path) -> Option<u32> {
    let needle = data_dir.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok())
        .find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (cmd.split_whitespace().next()?.ends_with("containerd") && cmd.contains(&needle))
                .then_some(pid)
        })
}

/// Removes every sandbox the agent's containerd still holds, then kills it.
async fn teardown_node(socket: &Path, data_dir: &Path) {
    if let Ok(c) = skiff_agent::cri::Cri::connect_wait(socket, Duration::from_secs(2)).await {
        let mut rt = c.runtime.clone();
        if let Ok(list) = rt
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
        {
            for sb in list.into_inner().items {
                let _ = rt
                    .stop_pod_sandbox(cri::StopPodSandboxRequest {
                        pod_sandbox_id: sb.id.clone(),
                    })
                    .await;
                let _ = rt
                    .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                        pod_sandbox_id: sb.id,
                    })
                    .await;
            }
        }
    }
    if let Some(pid) = containerd_pid(data_dir) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    let _ = std::process::Command::new("ip")
        .args(["link", "del", "cni0"])
        .status();
}

/// Runs every phase inside the namespace. Each phase's containerd and its pods are torn down
/// whether the phase succeeded or not (a failed run leaves no shims behind).
pub async fn run(skiff_bin: &Path, tmp: &Path, s: &PodSettings) -> Result<PodReport> {
    let mut report = PodReport::default();
    let agent_dir = tmp.join("agent");
    let a = agent_phase(skiff_bin, tmp, s, &mut report).await;
    teardown_node(
        &skiff_agent::containerd::Paths::new(&agent_dir).socket,
        &agent_dir,
    )
    .await;
    a?;
    let both_dir = tmp.join("server-agent");
    let b = server_with_agent_phase(skiff_bin, tmp, s, &mut report).await;
    teardown_node(
        &skiff_agent::containerd::Paths::new(&both_dir).socket,
        &both_dir,
    )
    .await;
    b?;
    Ok(report)
}

/// Phase A: `skiff server --disable-agent` and `skiff agent` beside it: node Ready time, pod
/// start against the raw CRI floor, idle memory of each process.
async fn agent_phase(
    skiff_bin: &Path,
    tmp: &Path,
    s: &PodSettings,
    report: &mut PodReport,
) -> Result<()> {
    let names = |group: &str, n: usize| (0..n).map(|i| format!("{group}-{i}")).collect::<Vec<_>>();
    let arg = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let idle = Duration::from_secs_f64(s.idle_s);

    // Phase A: the server without an agent, and `skiff agent` beside it.
    let srv_dir = tmp.join("server");
    let agent_dir = tmp.join("agent");
    let srv_log = tmp.join("server.log");
    let agent_log = tmp.join("agent.log");
    let kc = srv_dir.join("kubeconfig.yaml");
    let mut server = ChildGuard::spawn(
        "skiff server",
        skiff_bin,
        &arg(&[
            "server",
            "--data-dir",
            &srv_dir.to_string_lossy(),
            "--disable-agent",
            "--write-kubeconfig",
            &kc.to_string_lossy(),
        ]),
        &srv_log,
    )?;
    let client = api_client(&kc, &srv_log).await?;
    server.check_alive()?;
    let token = std::fs::read_to_string(srv_dir.join("server/token"))
        .map_err(BenchError::io("reading the node token"))?;
    let agent_start = Instant::now();
    let mut agent = ChildGuard::spawn(
        "skiff agent",
        skiff_bin,
        &arg(&[
            "agent",
            "--server",
            "https://127.0.0.1:6443",
            "--token",
            token.trim(),
            "--node-name",
            "bench-node",
            "--data-dir",
            &agent_dir.to_string_lossy(),
        ]),
        &agent_log,
    )?;
    wait_node_ready(&client, "bench-node", &agent_log).await?;
    report.node_ready_after_agent_start_ms = agent_start.elapsed().as_secs_f64() * 1000.0;
    agent.check_alive()?;
    let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), "default");
    wait_for("the default service account", 30, &srv_log, || async {
        sa.get_opt("default").await.ok().flatten().map(|_| ())
    })
    .await?;

    let socket = skiff_agent::containerd::Paths::new(&agent_dir).socket;
    let floor_logs = tmp.join("floor-logs");
    // Warm both paths once (first sandbox creates the bridge; first pod warms caches).
    skiff_pods(&client, &names("warm", 1), "warm").await?;
    floor_pods(&socket, &floor_logs, 1, "warm").await?;

    let mut single = Vec::new();
    let mut floor_single = Vec::new();
    for i in 0..s.single_runs {
        // Interleaved so both see the same machine state.
        let (l, _) = skiff_pods(&client, &names(&format!("one{i}"), 1), &format!("one{i}")).await?;
        single.extend(l);
        let (l, _) = floor_pods(&socket, &floor_logs, 1, &format!("one{i}")).await?;
        floor_single.extend(l);
    }
    report.skiff_single = summarize(single);
    report.floor_single = summarize(floor_single);
    let (l, total) = skiff_pods(&client, &names("batch", s.batch), "batch").await?;
    report.skiff_batch = summarize(l);
    report.skiff_batch_total_ms = total;
    let (l, total) = floor_pods(&socket, &floor_logs, s.batch, "batch").await?;
    report.floor_batch = summarize(l);
    report.floor_batch_total_ms = total;

    tokio::time::sleep(idle).await;
    report.agent_idle = procs::mem_breakdown(agent.pid()).unwrap_or_default();
    report.server_idle = procs::mem_breakdown(server.pid()).unwrap_or_default();
    report.containerd_idle = containerd_pid(&agent_dir)
        .and_then(procs::mem_breakdown)
        .unwrap_or_default();
    report.agent_idle_rss_kib = report.agent_idle.rss_kib;
    report.server_idle_rss_kib = report.server_idle.rss_kib;
    report.containerd_idle_rss_kib = report.containerd_idle.rss_kib;
    report.agent_parts = parts_in(&agent_log);
    agent.kill();
    server.kill();
    Ok(())
}

/// Phase B: `skiff server` with its own agent: node Ready time and idle memory.
async fn server_with_agent_phase(
    skiff_bin: &Path,
    tmp: &Path,
    s: &PodSettings,
    report: &mut PodReport,
) -> Result<()> {
    let arg = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let idle = Duration::from_secs_f64(s.idle_s);
    let both_dir = tmp.join("server-agent");
    let both_log = tmp.join("server-agent.log");
    let kc2 = both_dir.join("kubeconfig.yaml");
    let start = Instant::now();
    let mut both = ChildGuard::spawn(
        "skiff server (with agent)",
        skiff_bin,
        &arg(&[
            "server",
            "--data-dir",
            &both_dir.to_string_lossy(),
            "--https-listen-port",
            "6444",
            "--node-name",
            "bench-server",
            "--write-kubeconfig",
            &kc2.to_string_lossy(),
        ]),
        &both_log,
    )?;
    let client2 = api_client(&kc2, &both_log).await?;
    wait_node_ready(&client2, "bench-server", &both_log).await?;
    report.node_ready_after_server_start_ms = start.elapsed().as_secs_f64() * 1000.0;
    tokio::time::sleep(idle).await;
    both.check_alive()?;
    report.server_with_agent_idle = procs::mem_breakdown(both.pid()).unwrap_or_default();
    report.server_with_agent_idle_rss_kib = report.server_with_agent_idle.rss_kib;
    report.server_agent_parts = parts_in(&both_log);
    both.kill();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_pod_uses_skiffs_pause_image() {
        let p = bench_pod("x-0", "g", "img:1").unwrap();
        assert_eq!(p.metadata.labels.unwrap()["bench"], "g");
        let c = &p.spec.unwrap().containers[0];
        assert_eq!(c.image.as_deref(), Some("img:1"));
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
    }

    #[test]
    fn report_shows_ratios_against_the_floor() {
        let mut r = PodReport::default();
        r.skiff_single.p99_ms = 300.0;
        r.floor_single.p99_ms = 200.0;
        let s = PodSettings {
            single_runs: 1,
            batch: 30,
            idle_s: 1.0,
        };
        let md = r.markdown(&s, "skiff-bench --pods", "test");
        assert!(md.contains("one pod 1.50x"), "{md}");
    }

    #[test]
    fn idle_memory_is_split_by_kind_and_names_what_ran() {
        let r = PodReport {
            agent_idle: MemBreakdown {
                rss_kib: 30 * 1024,
                anon_kib: 6 * 1024,
                file_kib: 24 * 1024,
                shmem_kib: 0,
                threads: 2,
            },
            agent_parts: parts_running(
                "INFO skiff_network: pod network up backend=vxlan\n\
                 INFO skiff_dns: cluster DNS listening addr=10.43.0.10:53\n",
            ),
            ..Default::default()
        };
        let s = PodSettings {
            single_runs: 1,
            batch: 1,
            idle_s: 3.0,
        };
        let md = r.markdown(&s, "skiff-bench --pods", "test");
        assert!(
            md.contains("| skiff agent | 30.0 | 6.0 | 24.0 | 2 |"),
            "{md}"
        );
        assert!(
            md.contains("(from its log): pod network, cluster DNS."),
            "{md}"
        );
        assert!(md.contains("own agent: none of proxy"), "{md}");
    }
}
