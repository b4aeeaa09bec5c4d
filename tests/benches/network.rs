//! The service, ingress and network-policy benchmark of issues 10 and 11, on the multi-node bed
//! (`skiff_e2e::multinode`: a server and two agents in network namespaces, real containerd, the
//! test registry). Run as root, with the release binary:
//! `SKIFF_BIN=target/release/skiff cargo bench -p skiff-e2e --bench network`
//! (`harness = false`, `test = false`: `cargo test` never runs it). What it measures:
//!
//! - **Request paths** (same client, same web pod, same minute): the client is this bench binary
//!   itself, re-executed inside node n2's network namespace (`nsenter`, see [`client`]) as a
//!   closed-loop HTTP/1.1 load generator on tokio + hyper; the web pod (busybox `httpd`, which
//!   closes every connection after one answer) runs on n3. Paths: straight to the pod IP (VXLAN),
//!   the ClusterIP, the NodePort on n2's and on n3's address, and the Ingress on n2's port 80
//!   (Host header) — each with a new connection per request — plus the Ingress with one
//!   keep-alive connection per client worker. Interleaved rounds, medians.
//! - **Endpoint programming**: a client in n2 polls a Service with no endpoints every 2 ms; a pod
//!   it selects is created on n3; time from the pod's Ready (seen by a `kubectl get -w`) to the
//!   first answer through the ClusterIP — with the cluster's few Services, then with 999 more
//!   Services that all have an endpoint (1,000+ in all).
//! - **NetworkPolicy cost**: busybox `wget` in a client pod (n2) to a web pod (n3): a 500 MB
//!   download and 1,000 sequential small requests with no policy and with 100 policies selecting
//!   the web pod (the allowing one last), interleaved rounds.
//! - **1,000 keep-alive connections** held open through the ingress proxy on n2: one request on
//!   each, a pause, a second request on each over the same connection.
//!
//! `NETBENCH_PHASES=paths,program,netpol,hold` (any subset) runs only the phases named.
//! Each request path has a web pod of its own (same image, same node n3): the web server closes
//! every connection, which leaves the pod's side in TIME-WAIT, and at thousands of new
//! connections a second from one node address a connection through another path would reuse
//! such a 4-tuple with another TCP timestamp offset (Linux derives the offset from the
//! original addresses, which DNAT and masquerade change), so the pod's kernel would drop its SYN
//! by PAWS (`PAWSTimewait`, a 1 s SYN retransmit) — kube-proxy's NAT has the same property. The
//! bench prints those counters per path; with one pod for every path they dominated.
//! Prints every figure and a targets table (markdown) on stdout; progress on stderr.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use skiff_e2e::images::ImageSpec;
use skiff_e2e::multinode::{MultiNode, MultiNodeSpec};
use skiff_e2e::netns::{self, node_ip};
use skiff_e2e::*;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// First argument of the re-executed binary in client mode.
const CLIENT_ARG: &str = "__skiff_netbench_client";
const TOKEN: &str = "netbench-secret";
/// Time for 3 nodes to be Ready, and for pods to run (images pulled through the mirror).
const READY: Duration = Duration::from_secs(180);
/// Time for a route (Service, Ingress, policy) to carry traffic once its pods run.
const CONVERGE: Duration = Duration::from_secs(60);
/// The client runs in node 2; the web pods run in node 3.
const CLIENT_NODE: usize = 2;
const HOST: &str = "bench.skiff.test";
/// The cluster's service CIDR (skiff's default `--service-cidr`).
const SERVICE_CIDR: &str = "10.43.0.0/16";
/// Request-path measurement: seconds per path and round, rounds, concurrent client workers.
const PATH_SECS: f64 = 4.0;
const PATH_ROUNDS: usize = 3;
const PATH_WORKERS: usize = 8;
/// Endpoint-programming repeats per Service count.
const PROGRAM_REPEATS: usize = 3;
/// The web pods of the request paths (all on n3).
const WEB_PODS: [&str; 5] = ["web-direct", "web-cip", "web-np2", "web-np3", "web"];
/// Extra Services for the 1,000-Service case.
const EXTRA_SERVICES: usize = 999;
/// NetworkPolicy rounds (each: one download + one request loop, without and with policies).
const NETPOL_ROUNDS: usize = 3;
const HOLD_CONNS: usize = 1000;
const HOLD_SECS: u64 = 10;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(CLIENT_ARG) {
        let spec = args.get(2).map(String::as_str).unwrap_or("{}");
        std::process::exit(client::main(spec));
    }
    if !args.iter().any(|a| a == "--bench") {
        eprintln!(
            "network bench: not run (run it with `SKIFF_BIN=target/release/skiff cargo bench -p \
             skiff-e2e --bench network` as root)"
        );
        return;
    }
    if !netns::bed_enabled() {
        eprintln!(
            "\n*** network bench SKIPPED: SKIFF_E2E_NODES=0 (it needs root and the bed) ***\n"
        );
        return;
    }
    if let Err(e) = netns::check_prerequisites() {
        panic!("{e}");
    }
    arm_watchdog();
    run();
}

/// One measured figure set of the load client.
#[derive(Debug, Clone, Copy)]
struct Load {
    rps: f64,
    p50: f64,
    p99: f64,
    ok: u64,
    errors: u64,
}

impl Load {
    fn from_json(v: &serde_json::Value) -> Load {
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        Load {
            rps: f("rps"),
            p50: f("p50_ms"),
            p99: f("p99_ms"),
            ok: v["ok"].as_u64().unwrap_or(0),
            errors: v["errors"].as_u64().unwrap_or(0),
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

struct Bench {
    c: MultiNode,
    /// The markdown report, printed at the end.
    report: String,
    /// (target, measured, met).
    targets: Vec<(String, String, bool)>,
}

impl std::ops::Deref for Bench {
    type Target = MultiNode;
    fn deref(&self) -> &MultiNode {
        &self.c
    }
}

/// A process started in the background whose stdout lines arrive, stamped with the wall clock,
/// on a channel; killed (its process group) when dropped.
struct Background {
    child: Child,
    lines: Receiver<(SystemTime, String)>,
}

impl Background {
    fn spawn(mut cmd: Command) -> Background {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send((SystemTime::now(), line)).is_err() {
                    break;
                }
            }
        });
        Background { child, lines }
    }

    /// The next line that `pick` accepts, within `timeout`.
    fn wait_line(
        &self,
        timeout: Duration,
        what: &str,
        pick: impl Fn(&str) -> bool,
    ) -> (SystemTime, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((t, l)) if pick(&l) => return (t, l),
                Ok(_) => {}
                Err(_) => panic!("{what}: no such line within {timeout:?}"),
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn web_pod(ns: &str, name: &str, app: &str, node: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"{ns}","labels":{{"app":"{app}"}}}},
        "spec":{{"nodeName":"{node}","terminationGracePeriodSeconds":1,
        "containers":[{{"name":"web","image":"nginx:1.27",
          "command":["sh","-c","hostname > /www/index.html && httpd -p 8080 -h /www && exec httpd -f -p 80 -h /www"],
          "ports":[{{"name":"http","containerPort":80}},{{"name":"alt","containerPort":8080}}]}}]}}}}"#
    )
}

fn client_pod(ns: &str, name: &str, role: &str, node: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"{ns}","labels":{{"role":"{role}"}}}},
        "spec":{{"nodeName":"{node}","terminationGracePeriodSeconds":1,
        "containers":[{{"name":"c","image":"busybox:1.36","command":["sleep","3600"]}}]}}}}"#
    )
}

fn service(name: &str, app: &str, ty: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"{name}","namespace":"default"}},
        "spec":{{"type":"{ty}","selector":{{"app":"{app}"}},"ports":[{{"port":80,"targetPort":80}}]}}}}"#
    )
}

impl Bench {
    fn apply(&self, manifest: &str) {
        run_command(
            self.kubectl_cmd(&["apply", "-f", "-"]),
            Some(manifest.as_bytes()),
            COMMAND_TIMEOUT,
        )
        .success();
    }

    /// The pods of `ns`, once `n` of them run with an IP: (name, IP).
    fn wait_pods(&self, ns: &str, n: usize) -> Vec<PodRow> {
        wait_for(READY, &format!("{n} pods of {ns} running"), || {
            let out = self.kubectl(&["get", "pods", "-n", ns, "-o", POD_ROWS_JSONPATH]);
            let rows = parse_pod_rows(&out.stdout);
            (rows.len() == n
                && rows
                    .iter()
                    .all(|p| p.phase == "Running" && !p.ip.is_empty()))
            .then_some(rows)
        })
    }

    /// Runs the load client in the client node with `spec`; its JSON answer.
    fn client(&self, spec: serde_json::Value, timeout: Duration) -> serde_json::Value {
        let exe = std::env::current_exe().expect("the bench's own path");
        let exe = exe.display().to_string();
        let spec = spec.to_string();
        let out = self.net.run(
            self.net.command_in(CLIENT_NODE, &[&exe, CLIENT_ARG, &spec]),
            timeout,
        );
        assert_eq!(out.code, 0, "load client failed:\n{out}");
        serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("load client answer is not JSON ({e}):\n{out}"))
    }

    /// Polls `addr` (with `Host: host`) from the client node until it answers 200.
    fn until_served(&self, addr: &str, host: &str) {
        let v = self.client(
            serde_json::json!({"mode": "probe", "addr": addr, "host": host,
                "deadline_secs": CONVERGE.as_secs()}),
            CONVERGE + Duration::from_secs(30),
        );
        assert!(
            v["first_ok_unix_ms"].is_u64(),
            "{addr} not served: {v}\n{}",
            self.logs()
        );
    }

    /// Number of `goto service-` elements in `map` of node `node`'s proxy table.
    /// Elements of the proxy's `map` on `node` that jump to a service chain whose name holds
    /// `tag` (chain names carry `namespace/name/protocol/port`).
    fn map_elements(&self, node: usize, map: &str, tag: &str) -> usize {
        let out = self
            .net
            .run_in(node, &["nft", "list", "map", "ip", "skiff-proxy", map]);
        out.stdout
            .split("goto service-")
            .skip(1)
            .filter(|chain| {
                chain
                    .split(|c: char| c.is_whitespace() || c == ',')
                    .next()
                    .is_some_and(|name| name.contains(tag))
            })
            .count()
    }

    fn target(&mut self, name: &str, measured: String, met: bool) {
        eprintln!(
            "target {name}: {measured} → {}",
            if met { "MET" } else { "MISSED" }
        );
        self.targets.push((name.to_string(), measured, met));
    }
}

fn run() {
    let t0 = Instant::now();
    let load_start = loadavg();
    let spec = MultiNodeSpec {
        nodes: 3,
        token: TOKEN,
        images: &[ImageSpec::nginx(), ImageSpec::busybox()],
        ready: READY,
        label: "network bench",
    };
    let mut b = Bench {
        c: MultiNode::start(&spec, |_| Vec::new()),
        report: String::new(),
        targets: Vec::new(),
    };
    b.apply(&web_pod("default", "web", "web", "n3"));
    b.apply(&service("web", "web", "NodePort"));
    b.apply(&service("probe", "probe", "ClusterIP"));
    // One web pod per request path (see the module doc): `web` serves the Ingress paths.
    for (name, ty) in [
        ("web-direct", None),
        ("web-cip", Some("ClusterIP")),
        ("web-np2", Some("NodePort")),
        ("web-np3", Some("NodePort")),
    ] {
        b.apply(&web_pod("default", name, name, "n3"));
        if let Some(ty) = ty {
            b.apply(&service(name, name, ty));
        }
    }
    b.apply(&format!(
        r#"{{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{{"name":"web","namespace":"default"}},
        "spec":{{"ingressClassName":"skiff","rules":[{{"host":"{HOST}","http":{{"paths":[
          {{"path":"/","pathType":"Prefix","backend":{{"service":{{"name":"web","port":{{"number":80}}}}}}}}]}}}}]}}}}"#
    ));
    let rows = b.wait_pods("default", 5);
    let pod_ip = rows
        .iter()
        .find(|r| r.name == "web-direct")
        .expect("pod web-direct")
        .ip
        .clone();
    let cluster_ip = b.jsonpath(&["svc", "web-cip"], "{.spec.clusterIP}");
    let node_port = |svc: &str| b.jsonpath(&["svc", svc], "{.spec.ports[0].nodePort}");
    let (np2, np3) = (node_port("web-np2"), node_port("web-np3"));
    let paths: Vec<(&str, String, bool)> = vec![
        ("pod IP (direct)", format!("{pod_ip}:80"), false),
        ("ClusterIP", format!("{cluster_ip}:80"), false),
        (
            "NodePort, client's node (n2)",
            format!("{}:{np2}", node_ip(2)),
            false,
        ),
        (
            "NodePort, pod's node (n3)",
            format!("{}:{np3}", node_ip(3)),
            false,
        ),
        ("Ingress on n2", format!("{}:80", node_ip(2)), false),
        (
            "Ingress on n2, keep-alive",
            format!("{}:80", node_ip(2)),
            true,
        ),
    ];
    // The bed's nodes have no default route (nothing may leave the host), and a locally sent
    // packet needs a route before the proxy's output hook rewrites its destination: give the
    // client node the route a node's default route would be for the service CIDR.
    b.net
        .run_in(
            CLIENT_NODE,
            &["ip", "route", "add", SERVICE_CIDR, "dev", "eth0"],
        )
        .success();
    for (name, addr, _) in &paths {
        b.until_served(addr, HOST);
        eprintln!("{name}: {addr} serves");
    }
    eprintln!(
        "network bench: cluster and routes ready after {:?}",
        t0.elapsed()
    );

    // `NETBENCH_PHASES=paths,program,netpol,hold` (any subset, comma-separated) runs only those
    // phases; all of them by default.
    let phases = std::env::var("NETBENCH_PHASES").unwrap_or_default();
    let on = |p: &str| phases.is_empty() || phases.split(',').any(|x| x.trim() == p);
    if on("paths") {
        request_paths(&mut b, &paths);
    }
    if on("program") {
        endpoint_programming(&mut b);
    }
    if on("netpol") {
        network_policies(&mut b);
    }
    if on("hold") {
        hold_connections(&mut b);
    }

    let load_end = loadavg();
    let mut out = String::new();
    out.push_str(&format!(
        "- skiff: {} (`{}`)\n- machine: {} CPUs, kernel {}; load average (1/5/15 min) at the start {load_start}, at the end {load_end}\n- bench wall time: {:.0} s\n\n",
        skiff_bin().display(),
        Command::new(skiff_bin())
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default(),
        thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        t0.elapsed().as_secs_f64()
    ));
    out.push_str("| target | measured | result |\n|---|---|---|\n");
    for (name, measured, met) in &b.targets {
        out.push_str(&format!(
            "| {name} | {measured} | {} |\n",
            if *met { "MET" } else { "MISSED" }
        ));
    }
    out.push('\n');
    out.push_str(&b.report);
    println!("{out}");
}

/// Drop counters of node `node`'s network namespace that explain lost SYNs: the TCP
/// extension counters of `/proc/net/netstat` (PAWS rejects, listen overflows, TIME-WAIT
/// recycling) and conntrack's per-CPU statistics summed (insert_failed, drop, …).
fn drop_counters(b: &Bench, node: usize) -> std::collections::BTreeMap<String, u64> {
    const TCPEXT: &[&str] = &[
        "PAWSActive",
        "PAWSEstab",
        "PAWSTimewait",
        "TSEcrRejected",
        "TCPSYNChallenge",
        "TCPACKSkippedPAWS",
        "TWRecycled",
        "TCPTimeWaitOverflow",
        "ListenOverflows",
        "ListenDrops",
        "TCPReqQFullDrop",
        "TCPSynRetrans",
    ];
    let mut m = std::collections::BTreeMap::new();
    let mut tcpext = |prefix: &str, netstat: &str| {
        let lines: Vec<&str> = netstat.lines().collect();
        for pair in lines.chunks(2) {
            let [names, values] = pair else { continue };
            if !names.starts_with("TcpExt:") {
                continue;
            }
            for (n, v) in names
                .split_whitespace()
                .zip(values.split_whitespace())
                .skip(1)
            {
                if TCPEXT.contains(&n) {
                    m.insert(format!("{prefix}{n}"), v.parse().unwrap_or(0));
                }
            }
        }
    };
    tcpext(
        "",
        &b.net.run_in(node, &["cat", "/proc/net/netstat"]).stdout,
    );
    // The web pods' own namespaces (on n3): where their TIME-WAIT sockets meet new SYNs.
    if node == 3 {
        for pod in WEB_PODS {
            let out = b.kubectl(&["exec", pod, "--", "cat", "/proc/net/netstat"]);
            tcpext(&format!("{pod} "), &out.stdout);
        }
    }
    let ct = b.net.run_in(node, &["conntrack", "-S"]).stdout;
    for field in ct.split_whitespace() {
        if let Some((k, v)) = field.split_once('=') {
            if matches!(
                k,
                "insert_failed" | "drop" | "early_drop" | "invalid" | "clash_resolve"
            ) {
                *m.entry(format!("conntrack {k}")).or_insert(0) += v.parse::<u64>().unwrap_or(0);
            }
        }
    }
    m
}

/// The counters of [`drop_counters`] that grew between `before` and `after`, as `name +n`.
fn counter_growth(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
) -> String {
    let grown: Vec<String> = after
        .iter()
        .filter_map(|(k, v)| {
            let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| format!("{k} +{d}"))
        })
        .collect();
    if grown.is_empty() {
        "none".into()
    } else {
        grown.join(", ")
    }
}

/// Requests/s and latency per path, [`PATH_ROUNDS`] interleaved rounds.
fn request_paths(b: &mut Bench, paths: &[(&str, String, bool)]) {
    let mut runs: Vec<Vec<Load>> = vec![Vec::new(); paths.len()];
    // Per path, the drop counters that grew on the client's node and the pod's node.
    let mut growth: Vec<Vec<String>> = vec![Vec::new(); paths.len()];
    for round in 0..PATH_ROUNDS {
        for (i, (name, addr, keepalive)) in paths.iter().enumerate() {
            let before = [drop_counters(b, CLIENT_NODE), drop_counters(b, 3)];
            let v = b.client(
                serde_json::json!({"mode": "load", "addr": addr, "host": HOST,
                    "workers": PATH_WORKERS, "secs": PATH_SECS, "keepalive": keepalive}),
                Duration::from_secs(60),
            );
            let l = Load::from_json(&v);
            let after = [drop_counters(b, CLIENT_NODE), drop_counters(b, 3)];
            let grew = format!(
                "n2: {}; n3: {}",
                counter_growth(&before[0], &after[0]),
                counter_growth(&before[1], &after[1])
            );
            eprintln!(
                "round {round} {name}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} ok, {} errors{}; counters grown: {grew}",
                l.rps,
                l.p50,
                l.p99,
                l.ok,
                l.errors,
                v["first_error"]
                    .as_str()
                    .map(|e| format!(" (first: {e})"))
                    .unwrap_or_default()
            );
            growth[i].push(format!("round {round}: {grew}"));
            runs[i].push(l);
        }
    }
    let med: Vec<Load> = runs
        .iter()
        .map(|r| Load {
            rps: median(r.iter().map(|l| l.rps).collect()),
            p50: median(r.iter().map(|l| l.p50).collect()),
            p99: median(r.iter().map(|l| l.p99).collect()),
            ok: r.iter().map(|l| l.ok).sum(),
            errors: r.iter().map(|l| l.errors).sum(),
        })
        .collect();
    let direct = med[0];
    b.report.push_str(&format!(
        "#### Request paths (client in n2's netns, web pod on n3; {PATH_WORKERS} closed-loop workers, {PATH_SECS} s per path, {PATH_ROUNDS} interleaved rounds, medians)\n\n\
         | path | req/s | p50 ms | p99 ms | req/s vs direct | p99 vs direct | requests | errors |\n|---|---|---|---|---|---|---|---|\n"
    ));
    for ((name, _, _), m) in paths.iter().zip(&med) {
        b.report.push_str(&format!(
            "| {name} | {:.0} | {:.2} | {:.2} | {:.2}x | {:.2}x | {} | {} |\n",
            m.rps,
            m.p50,
            m.p99,
            m.rps / direct.rps,
            m.p99 / direct.p99,
            m.ok,
            m.errors
        ));
    }
    b.report.push_str(
        "\nDrop counters that grew while each path ran (TCP extension counters and conntrack statistics of the client's node n2 and the pod's node n3):\n\n",
    );
    for ((name, _, _), g) in paths.iter().zip(&growth) {
        b.report.push_str(&format!("- {name}: {}\n", g.join("; ")));
    }
    b.report.push('\n');
    // "p99 ≥ 0.9x direct" read as: a path's p99 at most direct's / 0.9.
    for (i, min) in [(1, 0.9), (2, 0.9), (3, 0.9), (4, 0.5), (5, 0.5)] {
        let m = med[i];
        let name = paths[i].0;
        b.target(
            &format!("{name}: req/s ≥ {min}x direct"),
            format!(
                "{:.0} vs {:.0} req/s = {:.2}x",
                m.rps,
                direct.rps,
                m.rps / direct.rps
            ),
            m.rps >= min * direct.rps && m.errors == 0,
        );
        b.target(
            &format!("{name}: p99 ≥ {min}x direct (≤ direct / {min})"),
            format!(
                "{:.2} vs {:.2} ms = {:.2}x direct's",
                m.p99,
                direct.p99,
                direct.p99 / m.p99
            ),
            m.p99 * min <= direct.p99,
        );
    }
}

/// Ready → first answer through the `probe` ClusterIP, with the cluster's own Services, then
/// with [`EXTRA_SERVICES`] more.
fn endpoint_programming(b: &mut Bench) {
    let probe_ip = b.jsonpath(&["svc", "probe"], "{.spec.clusterIP}");
    let addr = format!("{probe_ip}:80");
    let services = |b: &Bench| {
        b.kubectl(&["get", "svc", "-A", "--no-headers"])
            .stdout
            .lines()
            .count()
    };
    let few = services(b);
    let small = program_times(b, &addr);
    let mut list = String::from(r#"{"apiVersion":"v1","kind":"List","items":["#);
    for i in 0..EXTRA_SERVICES {
        if i > 0 {
            list.push(',');
        }
        list.push_str(&service(&format!("bulk-{i:03}"), "web", "ClusterIP"));
    }
    list.push_str("]}");
    // Only the bulk Services are counted: the probe Service's own element comes and goes
    // with its pod (an earlier count of every element was off by one when the probe's last
    // pod was still being deleted).
    let before = b.map_elements(CLIENT_NODE, "service-ips", "/bulk-");
    let start = Instant::now();
    run_command(
        // kubectl's client-side validation of a List needs `/openapi/v2` as protobuf.
        b.kubectl_cmd(&["create", "--validate=false", "-f", "-"]),
        Some(list.as_bytes()),
        Duration::from_secs(600),
    )
    .success();
    let created = start.elapsed();
    let mut last_report = Instant::now();
    wait_for(
        Duration::from_secs(300),
        "999 more Services programmed on n2",
        || {
            let now = b.map_elements(CLIENT_NODE, "service-ips", "/bulk-");
            if last_report.elapsed() > Duration::from_secs(10) {
                last_report = Instant::now();
                let slices = b
                    .kubectl(&["get", "endpointslices", "-n", "default", "--no-headers"])
                    .stdout
                    .lines()
                    .count();
                eprintln!(
                    "{:?}: {} of {} ClusterIPs in n2's service-ips map; {slices} EndpointSlices in default",
                    start.elapsed(),
                    now.saturating_sub(before),
                    EXTRA_SERVICES
                );
            }
            (now >= before + EXTRA_SERVICES).then_some(())
        },
    );
    let programmed = start.elapsed();
    let many = services(b);
    eprintln!(
        "{EXTRA_SERVICES} Services created in {created:?}, all with endpoints in n2's table after {programmed:?}; {many} Services in all"
    );
    let large = program_times(b, &addr);
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    b.report.push_str(&format!(
        "#### Endpoint programming (pod created on n3, its Ready seen by `kubectl get -w`, client in n2 polling the ClusterIP every 2 ms; {PROGRAM_REPEATS} repeats)\n\n\
         - {few} Services: Ready → first answer {} ms (max {:.0} ms)\n\
         - {many} Services (999 extra, each with an endpoint; `kubectl create` of the 999 took {:.1} s, all in n2's table {:.1} s after the create started): Ready → first answer {} ms (max {:.0} ms)\n\n",
        fmt(&small),
        small.iter().cloned().fold(f64::MIN, f64::max),
        created.as_secs_f64(),
        programmed.as_secs_f64(),
        fmt(&large),
        large.iter().cloned().fold(f64::MIN, f64::max),
    ));
    for (n, v) in [(few, &small), (many, &large)] {
        let max = v.iter().cloned().fold(f64::MIN, f64::max);
        b.target(
            &format!("endpoint programming < 1 s with {n} Services (max of {PROGRAM_REPEATS})"),
            format!("{max:.0} ms"),
            max < 1000.0,
        );
    }
}

/// [`PROGRAM_REPEATS`] times: Ready → first answer through `addr`, in ms.
fn program_times(b: &Bench, addr: &str) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..PROGRAM_REPEATS {
        let exe = std::env::current_exe().expect("the bench's own path");
        let exe = exe.display().to_string();
        let spec = serde_json::json!({"mode": "probe", "addr": addr, "host": HOST,
            "deadline_secs": 120, "announce": true})
        .to_string();
        let probe = Background::spawn(b.net.command_in(CLIENT_NODE, &[&exe, CLIENT_ARG, &spec]));
        probe.wait_line(
            Duration::from_secs(30),
            "probe failing before the pod",
            |l| l.contains("\"failing\""),
        );
        let watch = Background::spawn(b.kubectl_cmd(&[
            "get",
            "pods",
            "-l",
            "app=probe",
            "-w",
            "-o",
            "jsonpath={.metadata.name}|{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}",
        ]));
        // The watch has started once kubectl is connected; give it a moment.
        thread::sleep(Duration::from_millis(500));
        b.apply(&web_pod("default", "probe", "probe", "n3"));
        let (ready, _) = watch.wait_line(READY, "the probe pod Ready", |l| l == "probe|True");
        let (_, line) = probe.wait_line(Duration::from_secs(130), "the probe's answer", |l| {
            l.contains("first_ok_unix_ms") || l.contains("error")
        });
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let ok_ms = v["first_ok_unix_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("probe: {line}\n{}", b.logs()));
        let ready_ms = ready.duration_since(UNIX_EPOCH).unwrap().as_millis() as f64;
        let ms = ok_ms as f64 - ready_ms;
        eprintln!("endpoint programming: Ready → first answer {ms:.0} ms");
        out.push(ms);
        drop(watch);
        drop(probe);
        b.kubectl(&["delete", "pod", "probe", "--wait=true", "--timeout=50s"])
            .success();
    }
    out
}

/// In-pod shell loop: `n` sequential requests to `url`, output discarded.
fn request_loop(n: usize, url: &str) -> String {
    format!("i=0; while [ $i -lt {n} ]; do wget -qO /dev/null {url} || exit 1; i=$((i+1)); done")
}

/// The cost of 100 NetworkPolicies on pod → pod traffic (issue 11).
fn network_policies(b: &mut Bench) {
    b.kubectl(&["create", "namespace", "np"]).success();
    b.apply(&web_pod("np", "web", "web", "n3"));
    b.apply(&client_pod("np", "client", "client", "n2"));
    let rows = b.wait_pods("np", 2);
    let web = rows
        .iter()
        .find(|p| p.name == "web")
        .map(|p| p.ip.clone())
        .expect("np/web");
    let exec = |pod: &str, script: &str| {
        let cmd = b.kubectl_cmd(&["exec", "-n", "np", pod, "--", "sh", "-c", script]);
        b.net.run(cmd, Duration::from_secs(180))
    };
    exec("web", "head -c 500000000 /dev/zero > /www/big").success();
    let wget = |port: u16| {
        exec(
            "client",
            &format!("timeout 3 wget -qO- http://{web}:{port}/"),
        )
    };
    wait_for(CONVERGE, "np client → web", || {
        (wget(80).stdout.trim() == "web").then_some(())
    });
    let baseline = exec("client", "true").success().elapsed;
    let once = || {
        let out = exec("client", &format!("wget -qO /dev/null http://{web}/big"));
        out.success();
        let mbps = 500.0 * 8.0 / out.elapsed.saturating_sub(baseline).as_secs_f64();
        let out = exec("client", &request_loop(1000, &format!("http://{web}/")));
        out.success();
        let rate = 1000.0 / out.elapsed.saturating_sub(baseline).as_secs_f64();
        (mbps, rate)
    };
    let mut all = String::new();
    for i in 0..100 {
        // p000…p098 allow other ports; p099, last in the chain, allows the client on 80.
        let port = if i == 99 { 80 } else { 10000 + i };
        all.push_str(&format!(
            r#"{{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
            "metadata":{{"name":"p{i:03}","namespace":"np"}},
            "spec":{{"podSelector":{{"matchLabels":{{"app":"web"}}}},
              "ingress":[{{"from":[{{"podSelector":{{"matchLabels":{{"role":"client"}}}}}}],
                          "ports":[{{"port":{port}}}]}}]}}}}
"#
        ));
    }
    // Until n3's policy table has `want` port lines (100 or none).
    let programmed = |want: usize| {
        wait_for(CONVERGE, &format!("{want} policy port rules on n3"), || {
            let t = b
                .net
                .run_in(3, &["nft", "list", "table", "inet", "skiff-netpol"]);
            (t.stdout.matches("tcp dport").count() == want).then_some(())
        })
    };
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..NETPOL_ROUNDS {
        b.kubectl(&["delete", "networkpolicy", "--all", "-n", "np"])
            .success();
        programmed(0);
        without.push(once());
        run_command(
            b.kubectl_cmd(&["apply", "-f", "-"]),
            Some(all.as_bytes()),
            Duration::from_secs(180),
        )
        .success();
        programmed(100);
        let out = wget(8080);
        assert_ne!(out.code, 0, "web is isolated: 8080 refused: {out}");
        with.push(once());
        eprintln!(
            "netpol round {round}: none {:.0} Mbit/s {:.0} conn/s; 100 policies {:.0} Mbit/s {:.0} conn/s",
            without[round].0, without[round].1, with[round].0, with[round].1
        );
    }
    let m = |v: &[(f64, f64)], pick: fn(&(f64, f64)) -> f64| median(v.iter().map(pick).collect());
    let (m0, r0) = (m(&without, |p| p.0), m(&without, |p| p.1));
    let (m1, r1) = (m(&with, |p| p.0), m(&with, |p| p.1));
    let fmt = |v: &[(f64, f64)]| {
        v.iter()
            .map(|(a, r)| format!("{a:.0} Mbit/s {r:.0}/s"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    b.report.push_str(&format!(
        "#### NetworkPolicy cost (busybox wget in pod np/client on n2 → pod np/web on n3; 500 MB download and 1,000 sequential requests; {NETPOL_ROUNDS} interleaved rounds, medians)\n\n\
         | policies | download Mbit/s | new connections/s | runs |\n|---|---|---|---|\n\
         | 0 | {m0:.0} | {r0:.0} | {} |\n| 100 (allowing one last) | {m1:.0} | {r1:.0} | {} |\n\n",
        fmt(&without),
        fmt(&with)
    ));
    b.target(
        "100 NetworkPolicies cost ≤ 10% of pod → pod throughput",
        format!(
            "{:+.1}% download, {:+.1}% new connections/s",
            (m1 / m0 - 1.0) * 100.0,
            (r1 / r0 - 1.0) * 100.0
        ),
        m1 >= 0.9 * m0 && r1 >= 0.9 * r0,
    );
    b.kubectl(&["delete", "namespace", "np", "--wait=false"])
        .success();
}

/// [`HOLD_CONNS`] keep-alive connections through the ingress on n2.
fn hold_connections(b: &mut Bench) {
    let addr = format!("{}:80", node_ip(2));
    let before = [drop_counters(b, CLIENT_NODE), drop_counters(b, 3)];
    let v = b.client(
        serde_json::json!({"mode": "hold", "addr": addr, "host": HOST,
            "conns": HOLD_CONNS, "hold_secs": HOLD_SECS}),
        Duration::from_secs(240),
    );
    let after = [drop_counters(b, CLIENT_NODE), drop_counters(b, 3)];
    let grew = format!(
        "n2: {}; n3: {}",
        counter_growth(&before[0], &after[0]),
        counter_growth(&before[1], &after[1])
    );
    eprintln!("hold: {v}; counters grown: {grew}");
    let first = v["first_ok"].as_u64().unwrap_or(0);
    let second = v["second_ok"].as_u64().unwrap_or(0);
    b.report.push_str(&format!(
        "#### {HOLD_CONNS} keep-alive connections through the ingress on n2\n\n\
         - opened and answered once: {first} (in {:.2} s); after {HOLD_SECS} s idle, answered again on the same connection: {second} (in {:.2} s){}\n\
         - drop counters grown meanwhile: {grew}\n\n",
        v["first_secs"].as_f64().unwrap_or(f64::NAN),
        v["second_secs"].as_f64().unwrap_or(f64::NAN),
        v["first_error"]
            .as_str()
            .map(|e| format!("; first error: {e}"))
            .unwrap_or_default()
    ));
    b.target(
        "the ingress holds 1,000 keep-alive connections",
        format!("{second} of {HOLD_CONNS} answered twice on one connection"),
        second as usize == HOLD_CONNS,
    );
}

/// The load client: this binary re-executed inside a node's network namespace
/// (`<exe> __skiff_netbench_client '<json spec>'`). hyper's HTTP/1.1 client connection on a
/// current-thread tokio runtime; prints one JSON object (probe: also a `failing` line first).
mod client {
    use super::*;
    use hyper::client::conn::http1::SendRequest;
    use hyper_util::rt::TokioIo;
    use std::net::SocketAddr;
    use tokio::net::TcpStream;

    type Sender = SendRequest<Empty<Bytes>>;

    const CONNECT: Duration = Duration::from_secs(2);
    const REQUEST: Duration = Duration::from_secs(5);

    pub fn main(spec: &str) -> i32 {
        let v: serde_json::Value = match serde_json::from_str(spec) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("client: bad spec {spec}: {e}");
                return 2;
            }
        };
        let Some(addr) = v["addr"]
            .as_str()
            .and_then(|a| a.parse::<SocketAddr>().ok())
        else {
            eprintln!("client: no addr in {spec}");
            return 2;
        };
        let host = v["host"].as_str().unwrap_or("localhost").to_string();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let out = rt.block_on(async {
            match v["mode"].as_str() {
                Some("load") => {
                    load(
                        addr,
                        &host,
                        v["workers"].as_u64().unwrap_or(1) as usize,
                        Duration::from_secs_f64(v["secs"].as_f64().unwrap_or(1.0)),
                        v["keepalive"].as_bool().unwrap_or(false),
                    )
                    .await
                }
                Some("probe") => {
                    probe(
                        addr,
                        &host,
                        Duration::from_secs(v["deadline_secs"].as_u64().unwrap_or(30)),
                        v["announce"].as_bool().unwrap_or(false),
                    )
                    .await
                }
                Some("hold") => {
                    hold(
                        addr,
                        &host,
                        v["conns"].as_u64().unwrap_or(1) as usize,
                        Duration::from_secs(v["hold_secs"].as_u64().unwrap_or(1)),
                    )
                    .await
                }
                _ => serde_json::json!({"error": format!("unknown mode in {spec}")}),
            }
        });
        println!("{out}");
        i32::from(out.get("error").is_some())
    }

    async fn connect(addr: SocketAddr) -> Result<Sender, String> {
        let stream = tokio::time::timeout(CONNECT, TcpStream::connect(addr))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// One `GET /` with `Host: host`; Ok when the answer is a 200 read to its end.
    async fn get(sender: &mut Sender, host: &str, close: bool) -> Result<(), String> {
        let mut req = hyper::Request::get("/").header(hyper::header::HOST, host);
        if close {
            req = req.header(hyper::header::CONNECTION, "close");
        }
        let req = req.body(Empty::new()).map_err(|e| e.to_string())?;
        let run = async {
            sender
                .ready()
                .await
                .map_err(|e| format!("not ready: {e}"))?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("request: {e}"))?;
            let status = resp.status();
            resp.into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?;
            if status == 200 {
                Ok(())
            } else {
                Err(format!("status {status}"))
            }
        };
        tokio::time::timeout(REQUEST, run)
            .await
            .map_err(|_| "request timed out".to_string())?
    }

    fn millis(us: u64) -> f64 {
        us as f64 / 1000.0
    }

    /// `workers` closed loops for `secs`: each request on a new connection (`keepalive`:
    /// on the worker's connection while the server keeps it open). Latency includes connect.
    async fn load(
        addr: SocketAddr,
        host: &str,
        workers: usize,
        secs: Duration,
        keepalive: bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        let end = start + secs;
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let host = host.to_string();
            tasks.push(tokio::spawn(async move {
                let mut lat: Vec<u64> = Vec::new();
                let (mut errors, mut first_error) = (0u64, None::<String>);
                let mut conn: Option<Sender> = None;
                while Instant::now() < end {
                    let t = Instant::now();
                    let res = async {
                        let mut s = match conn.take() {
                            Some(s) if !s.is_closed() => s,
                            _ => connect(addr).await?,
                        };
                        get(&mut s, &host, !keepalive).await?;
                        if keepalive {
                            conn = Some(s);
                        }
                        Ok::<(), String>(())
                    }
                    .await;
                    match res {
                        Ok(()) => lat.push(t.elapsed().as_micros() as u64),
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                (lat, errors, first_error)
            }));
        }
        let (mut lat, mut errors, mut first_error) = (Vec::new(), 0, None);
        for t in tasks {
            let (l, e, f) = t.await.expect("worker");
            lat.extend(l);
            errors += e;
            if first_error.is_none() {
                first_error = f;
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        lat.sort_unstable();
        let pct = |p: f64| {
            if lat.is_empty() {
                f64::NAN
            } else {
                millis(lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)])
            }
        };
        serde_json::json!({
            "ok": lat.len(), "errors": errors, "secs": elapsed,
            "rps": lat.len() as f64 / elapsed,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": lat.last().map(|&u| millis(u)),
            "first_error": first_error,
        })
    }

    /// Tries `GET /` every 2 ms until one answers 200; `announce` prints `{"failing":…}` after
    /// the first failure (so the caller knows the route was closed before).
    async fn probe(
        addr: SocketAddr,
        host: &str,
        deadline: Duration,
        announce: bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        let mut failures = 0u64;
        let mut last = String::new();
        while start.elapsed() < deadline {
            let res = async {
                let mut s = tokio::time::timeout(Duration::from_millis(500), connect(addr))
                    .await
                    .map_err(|_| "connect timed out".to_string())??;
                get(&mut s, host, true).await
            }
            .await;
            match res {
                Ok(()) => {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    return serde_json::json!({"first_ok_unix_ms": now, "failures_before": failures,
                        "last_failure": last});
                }
                Err(e) => {
                    failures += 1;
                    if announce && failures == 1 {
                        println!("{}", serde_json::json!({"failing": e}));
                    }
                    last = e;
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        serde_json::json!({"error": format!("no 200 from {addr} within {deadline:?}; last: {last}")})
    }

    /// Opens `conns` keep-alive connections (100 at a time), one request on each, waits
    /// `hold`, then a second request on each over the same connection.
    async fn hold(addr: SocketAddr, host: &str, conns: usize, hold: Duration) -> serde_json::Value {
        let start = Instant::now();
        let mut senders: Vec<Option<Sender>> = Vec::new();
        let mut first_error: Option<String> = None;
        for chunk in (0..conns).collect::<Vec<_>>().chunks(100) {
            let mut tasks = Vec::new();
            for _ in chunk {
                let host = host.to_string();
                tasks.push(tokio::spawn(async move {
                    let mut s = connect(addr).await?;
                    get(&mut s, &host, false).await?;
                    Ok::<Sender, String>(s)
                }));
            }
            for t in tasks {
                match t.await.expect("connection task") {
                    Ok(s) => senders.push(Some(s)),
                    Err(e) => {
                        first_error.get_or_insert(e);
                        senders.push(None);
                    }
                }
            }
        }
        let first_secs = start.elapsed().as_secs_f64();
        let first_ok = senders.iter().filter(|s| s.is_some()).count();
        tokio::time::sleep(hold).await;
        // The second requests go in waves of 100 like the first: every one needs a new
        // connection from the proxy to the single busybox web pod, whose accept queue
        // overflows under 1,000 at once (ListenOverflows in the pod) — a backend limit, not
        // the proxy's hold on the client connections, which is what this measures.
        let start = Instant::now();
        let mut kept = Vec::new();
        let mut open: Vec<Sender> = senders.into_iter().flatten().collect();
        while !open.is_empty() {
            let wave: Vec<Sender> = open.drain(..open.len().min(100)).collect();
            let mut tasks = Vec::new();
            for s in wave {
                let host = host.to_string();
                tasks.push(tokio::spawn(async move {
                    let mut s = s;
                    if s.is_closed() {
                        return Err("closed by the server while idle".to_string());
                    }
                    get(&mut s, &host, false).await.map(|()| s)
                }));
            }
            for t in tasks {
                match t.await.expect("second request task") {
                    Ok(s) => kept.push(s),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        serde_json::json!({
            "first_ok": first_ok, "first_secs": first_secs,
            "second_ok": kept.len(), "second_secs": start.elapsed().as_secs_f64(),
            "first_error": first_error,
        })
    }
}
