//! Benchmark (issue 9): the kubelet API through the agent tunnel against the direct path, in
//! one run — `kubectl exec POD -- true` round trips, `kubectl logs` throughput of a 64 MB log
//! (and the same log read straight from the kubelet, the floor), and the server's RSS growth
//! with 100 concurrent `kubectl logs -f`.
//!
//! `SKIFF_BIN=target/release/skiff cargo bench -p skiff-e2e --bench kubeletapi` (as root, with
//! the packages `bash .ci/run` installs). Two nodes in network namespaces: the server's own
//! node n1, whose kubelet the API server dials directly (never through a tunnel, as k3s), and
//! agent n2, which drops every inbound connection to the kubelet port, so only its tunnel
//! reaches it. Direct and tunnel measurements alternate so load drifts hit both alike.
//! `cargo test` does not run it (a bench target with `test = false`).

use skiff_e2e::images::ImageSpec;
use skiff_e2e::multinode::{MultiNode, MultiNodeSpec};
use skiff_e2e::netns::{self, TestNet};
use skiff_e2e::*;
use std::thread;
use std::time::{Duration, Instant};

/// The namespace of the bench's pods.
const NS: &str = "kbench";
/// The server's node: reached directly.
const DIRECT: usize = 1;
/// The agent node without inbound access to its kubelet port: reached through its tunnel.
const WALLED: usize = 2;
/// One line of the big log (73 bytes with its newline).
const LOG_LINE: &str = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz";
/// Lines of the log read by `kubectl logs`: whole lines only, because a last line without its
/// newline stays in containerd's buffer while the container runs (kubelets show it only once
/// the line ends or the stream closes).
const LOG_LINES: u64 = 876_713;
/// Size of the log read by `kubectl logs` (64.0 MB).
const LOG_BYTES: u64 = LOG_LINES * (LOG_LINE.len() as u64 + 1);
/// `kubectl exec` round trips per node.
const EXEC_RUNS: usize = 31;
/// `kubectl logs` reads per path.
const LOG_RUNS: usize = 3;
/// Concurrent `kubectl logs -f` streams.
const FOLLOWERS: usize = 100;

// The targets.
const EXEC_P50_MS: f64 = 150.0;
const EXEC_RATIO: f64 = 1.2;
const LOGS_MBS: f64 = 50.0;
const FOLLOW_RSS_MB: f64 = 10.0;

fn main() {
    arm_watchdog();
    if !netns::bed_enabled() {
        eprintln!(
            "\n*** kubeletapi bench SKIPPED: SKIFF_E2E_NODES=0 (it needs root and the packages \
             `bash .ci/run` installs) ***\n"
        );
        return;
    }
    eprintln!(
        "machine: {} cores, load average {} (before the bed), skiff binary {}",
        thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
        skiff_bin().display()
    );
    let c = MultiNode::start(
        &MultiNodeSpec {
            nodes: 2,
            token: "bench-kubeletapi",
            images: &[ImageSpec::busybox()],
            ready: Duration::from_secs(120),
            label: "kubeletapi bench",
        },
        |net| {
            wall(net, WALLED);
            vec![]
        },
    );
    c.kubectl(&["create", "namespace", NS]).success();
    wait_for(
        Duration::from_secs(30),
        "the default service account",
        || (c.kubectl(&["get", "sa", "default", "-n", NS]).code == 0).then_some(()),
    );
    for node in [DIRECT, WALLED] {
        apply(&c, &pod(&format!("tick-n{node}"), node, TICKER));
        let big = format!("busybox yes {LOG_LINE} | busybox head -n {LOG_LINES}; exec sleep 3600");
        apply(&c, &pod(&format!("biglog-n{node}"), node, &big));
    }
    for node in [DIRECT, WALLED] {
        for p in ["tick", "biglog"] {
            wait_running(&c, &format!("{p}-n{node}"));
        }
    }
    let mut verdicts = Vec::new();
    exec_round_trips(&c, &mut verdicts);
    log_throughput(&c, &mut verdicts);
    follow_memory(&c, &mut verdicts);
    eprintln!("\nload average after the run: {}", load_average());
    eprintln!("targets:");
    for v in &verdicts {
        eprintln!("  {v}");
    }
}

/// A shell loop printing a numbered line every 200 ms.
const TICKER: &str = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done";

/// Node `i` drops inbound TCP to the kubelet port from anywhere but loopback.
fn wall(net: &TestNet, i: usize) {
    for rule in [
        "add table inet k9bench",
        "add chain inet k9bench in { type filter hook input priority 0; }",
        "add rule inet k9bench in iifname != lo tcp dport 10250 drop",
    ] {
        let mut args = vec!["nft"];
        args.extend(rule.split(' '));
        net.run_in(i, &args).success();
    }
}

fn pod(name: &str, node: usize, script: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "nodeName": format!("n{node}"),
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "busybox:1.36", "command": ["sh", "-c", script]}]
        }
    })
}

fn apply(c: &MultiNode, manifest: &serde_json::Value) {
    let cmd = c.kubectl_cmd(&["apply", "-f", "-"]);
    run_command(cmd, Some(manifest.to_string().as_bytes()), COMMAND_TIMEOUT).success();
}

fn wait_running(c: &MultiNode, name: &str) {
    wait_for(
        Duration::from_secs(120),
        &format!("pod {name} Running"),
        || (c.jsonpath(&["pod", name, "-n", NS], "{.status.phase}") == "Running").then_some(()),
    );
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `q` quantile (0..=1) of sorted `v`.
fn quantile(v: &[f64], q: f64) -> f64 {
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

/// `kubectl exec POD -- true` against the direct node and the tunnelled node, alternating.
fn exec_round_trips(c: &MultiNode, verdicts: &mut Vec<String>) {
    let exec = |node: usize| -> f64 {
        let p = format!("tick-n{node}");
        let out = c.kubectl(&["exec", "-n", NS, &p, "--", "true"]);
        assert_eq!(out.code, 0, "{out}\n{}", c.logs());
        out.elapsed.as_secs_f64() * 1000.0
    };
    // Warm kubectl's discovery cache and both paths first.
    for _ in 0..2 {
        exec(DIRECT);
        exec(WALLED);
    }
    let (mut direct, mut tunnel) = (Vec::new(), Vec::new());
    for _ in 0..EXEC_RUNS {
        direct.push(exec(DIRECT));
        tunnel.push(exec(WALLED));
    }
    direct.sort_by(f64::total_cmp);
    tunnel.sort_by(f64::total_cmp);
    let (d50, t50) = (quantile(&direct, 0.5), quantile(&tunnel, 0.5));
    for (what, v) in [("direct", &direct), ("tunnel", &tunnel)] {
        eprintln!(
            "BENCH kubectl exec -- true, {what}: {EXEC_RUNS} runs, p50 {:.0} ms, p90 {:.0} ms, \
             min {:.0} ms",
            quantile(v, 0.5),
            quantile(v, 0.9),
            v[0]
        );
    }
    let ratio = t50 / d50;
    verdicts.push(format!(
        "exec p50 through the tunnel {t50:.0} ms < {EXEC_P50_MS} ms: {}",
        verdict(t50 < EXEC_P50_MS)
    ));
    verdicts.push(format!(
        "exec p50 tunnel/direct {ratio:.2}x <= {EXEC_RATIO}x: {}",
        verdict(ratio <= EXEC_RATIO)
    ));
}

/// Path and credentials of the admin client certificate (system:masters), which the kubelet
/// accepts like the API server's own.
fn admin_cert(c: &MultiNode) -> (String, String) {
    let tls = c.net.dir().join("n1/server/tls");
    (
        tls.join("client-admin.crt").display().to_string(),
        tls.join("client-admin.key").display().to_string(),
    )
}

/// `(bytes, seconds)` of reading `biglog-n<node>` straight from its kubelet, on the node.
fn kubelet_read(c: &MultiNode, node: usize) -> (u64, f64) {
    let url = format!("https://127.0.0.1:10250/containerLogs/{NS}/biglog-n{node}/c");
    curl_read(c, node, &url)
}

/// `(bytes, seconds)` of reading `biglog-n<node>` through the API server (curl in the server's
/// namespace): the same path as `kubectl logs` without kubectl, which writes its output one
/// line per `write(2)` (upstream's `DefaultConsumeRequest`) and so caps a log of short lines
/// at what it can write, whatever the server delivers.
fn api_read(c: &MultiNode, node: usize) -> (u64, f64) {
    let url = format!("https://127.0.0.1:6443/api/v1/namespaces/{NS}/pods/biglog-n{node}/log");
    curl_read(c, DIRECT, &url)
}

/// `(bytes, seconds)` of a GET of `url` by curl with the admin certificate, in `node`'s
/// network namespace.
fn curl_read(c: &MultiNode, node: usize, url: &str) -> (u64, f64) {
    let (cert, key) = admin_cert(c);
    let out = c.net.run_in(
        node,
        &[
            "curl",
            "-sk",
            "--cert",
            &cert,
            "--key",
            &key,
            "-o",
            "/dev/null",
            "-w",
            "%{size_download} %{time_total}",
            url,
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    let mut it = out.stdout.split_whitespace();
    let bytes = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let secs = it.next().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    (bytes, secs)
}

/// `kubectl logs` of the 64 MB log through the tunnel and directly, and the kubelet's own
/// rate on the node.
fn log_throughput(c: &MultiNode, verdicts: &mut Vec<String>) {
    for node in [DIRECT, WALLED] {
        let mut last = Instant::now();
        wait_for(
            Duration::from_secs(120),
            &format!("the whole log of biglog-n{node}"),
            || {
                let (bytes, _) = kubelet_read(c, node);
                if last.elapsed() > Duration::from_secs(10) {
                    last = Instant::now();
                    eprintln!("biglog-n{node}: {bytes} of {LOG_BYTES} bytes in the log so far");
                }
                (bytes >= LOG_BYTES).then_some(())
            },
        );
    }
    let kubectl_logs = |node: usize| -> f64 {
        let p = format!("biglog-n{node}");
        let out = c.kubectl(&["logs", "-n", NS, &p]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout.len() as u64, LOG_BYTES, "a short read of {p}");
        LOG_BYTES as f64 / 1e6 / out.elapsed.as_secs_f64()
    };
    let rate = |(bytes, secs): (u64, f64)| {
        assert_eq!(bytes, LOG_BYTES, "a short read through curl");
        bytes as f64 / 1e6 / secs
    };
    let (mut direct, mut tunnel, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    let (mut api_direct, mut api_tunnel) = (Vec::new(), Vec::new());
    for _ in 0..LOG_RUNS {
        tunnel.push(kubectl_logs(WALLED));
        direct.push(kubectl_logs(DIRECT));
        api_tunnel.push(rate(api_read(c, WALLED)));
        api_direct.push(rate(api_read(c, DIRECT)));
        floor.push(rate(kubelet_read(c, WALLED)));
    }
    for (what, v) in [
        ("kubectl logs through the tunnel", &tunnel),
        (
            "kubectl logs direct (the API server dials the kubelet)",
            &direct,
        ),
        ("curl through the API server and the tunnel", &api_tunnel),
        ("curl through the API server, direct", &api_direct),
        ("the kubelet alone (curl on the node)", &floor),
    ] {
        let runs: Vec<String> = v.iter().map(|m| format!("{m:.1}")).collect();
        eprintln!(
            "BENCH {what}: {} MB/s (median of {LOG_RUNS}: {})",
            format_args!("{:.1}", median(v.clone())),
            runs.join(", ")
        );
    }
    let (t, k) = (median(api_tunnel), median(tunnel));
    verdicts.push(format!(
        "logs through the API server and the tunnel {t:.1} MB/s >= {LOGS_MBS} MB/s (curl; kubectl itself {k:.1} MB/s, bound by its one write per line): {}",
        verdict(t >= LOGS_MBS)
    ));
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Kills the followers however the bench ends.
struct Followers(Vec<netns::NsProcess>);

impl Drop for Followers {
    fn drop(&mut self) {
        for f in &mut self.0 {
            f.kill_group();
        }
    }
}

/// The server's RSS before and with 100 `kubectl logs -f` of the tunnelled node's ticker.
fn follow_memory(c: &MultiNode, verdicts: &mut Vec<String>) {
    let server = c.procs[0].pid;
    thread::sleep(Duration::from_secs(3));
    let before = rss_kib(server);
    let p = format!("tick-n{WALLED}");
    let mut followers = Followers(Vec::new());
    for i in 0..FOLLOWERS {
        followers.0.push(c.net.spawn_cmd(
            c.kubectl_cmd(&["logs", "-n", NS, &p, "-f", "--tail", "1"]),
            &format!("bench-follow-{i}"),
        ));
    }
    let start = Instant::now();
    while followers.0.iter().any(|f| !f.log().contains("tick ")) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "not all {FOLLOWERS} followers got lines within 120 s"
        );
        thread::sleep(Duration::from_millis(500));
    }
    // Let the streams settle, then sample a few times.
    thread::sleep(Duration::from_secs(3));
    let mut during = 0;
    for _ in 0..5 {
        during = during.max(rss_kib(server));
        thread::sleep(Duration::from_millis(400));
    }
    let still = followers
        .0
        .iter_mut()
        .filter_map(|f| f.exit_code().is_none().then_some(()))
        .count();
    assert_eq!(still, FOLLOWERS, "followers ended early");
    let grew_kib = during.saturating_sub(before);
    let grew_mb = grew_kib as f64 * 1024.0 / 1e6;
    eprintln!(
        "BENCH server RSS: {before} KiB before, {during} KiB with {FOLLOWERS} logs -f through \
         the tunnel: +{grew_mb:.1} MB ({} KiB per stream)",
        grew_kib / FOLLOWERS as u64
    );
    verdicts.push(format!(
        "server RSS growth with {FOLLOWERS} logs -f {grew_mb:.1} MB < {FOLLOW_RSS_MB} MB: {}",
        verdict(grew_mb < FOLLOW_RSS_MB)
    ));
    drop(followers);
}
