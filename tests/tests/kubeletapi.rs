//! End-to-end: kubectl logs, exec, attach, cp, port-forward and top on real pods, through the
//! API server's proxy to the kubelet API — over the agent's gRPC tunnel. `skiff server` runs
//! in node netns 1, `skiff agent` in nodes 2 and 3; node 3 drops every inbound connection to
//! the kubelet port (nftables), so only its tunnel reaches it. Driven by the stock kubectl
//! inside node 1's netns.
//!
//! Needs root and the packages `bash .ci/run` installs (tmux among them); `SKIFF_E2E_NODES=0`
//! skips these tests with a loud message.

use skiff_e2e::images::{self, ImageSpec};
use skiff_e2e::netns::{self, node_ip, NsProcess, TestNet, REGISTRY, TEST_KUBELET_ARGS};
use skiff_e2e::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock, RwLock};
use std::thread;
use std::time::{Duration, Instant};

const NODES: usize = 3;
const NODES_READY: Duration = Duration::from_secs(120);
const PODS_RUNNING: Duration = Duration::from_secs(120);
const SERVER_TOKEN: &str = "e2e-kubeletapi";
/// The namespace every test pod lives in.
const NS: &str = "kapi";
/// The node without inbound access to its kubelet port.
const WALLED: usize = 3;

struct Bed {
    net: TestNet,
    _registry: NsProcess,
    _server: NsProcess,
    _agents: Mutex<BTreeMap<usize, NsProcess>>,
    kubeconfig: PathBuf,
    /// Read by tests that use node 3's tunnel, written by the one that cuts it.
    tunnel: RwLock<()>,
}

fn skiff() -> String {
    skiff_bin().display().to_string()
}

impl Bed {
    fn kubectl_cmd(&self, args: &[&str]) -> Command {
        let mut all = vec!["kubectl"];
        all.extend_from_slice(args);
        let mut c = self.net.command_in(1, &all);
        c.env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.net.dir().join("kcache"))
            .env("HOME", self.net.dir().join("home"));
        c
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        run_command(self.kubectl_cmd(args), None, COMMAND_TIMEOUT)
    }

    fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run_command(
            self.kubectl_cmd(args),
            Some(stdin.as_bytes()),
            COMMAND_TIMEOUT,
        )
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for name in ["server", "agent-n2", "agent-n3"] {
            let text = std::fs::read_to_string(self.net.dir().join(format!("{name}.log")))
                .unwrap_or_default();
            s.push_str(&format!("--- {name} log tail ---\n{}\n", tail(&text, 30)));
        }
        s
    }

    fn apply(&self, manifest: &serde_json::Value) {
        let out = self.kubectl_stdin(&["apply", "-f", "-"], &manifest.to_string());
        assert_eq!(out.code, 0, "{out}");
    }

    /// Waits until pod `name` is Running with every container ready.
    fn wait_pod(&self, name: &str) {
        let start = Instant::now();
        loop {
            let out = self.kubectl(&[
                "get",
                "pod",
                name,
                "-n",
                NS,
                "-o",
                "jsonpath={.status.phase}/{.status.conditions[?(@.type==\"Ready\")].status}",
            ]);
            if out.stdout == "Running/True" {
                return;
            }
            assert!(
                start.elapsed() < PODS_RUNNING,
                "pod {name} not Running+Ready within {PODS_RUNNING:?}: {out}\n{}\n{}",
                self.kubectl(&["get", "pods", "-n", NS, "-o", "wide"]),
                self.logs()
            );
            thread::sleep(Duration::from_millis(250));
        }
    }
}

fn loud_skip() {
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** skiff-e2e kubeletapi tests SKIPPED: SKIFF_E2E_NODES=0 (they need root and the \
         packages `bash .ci/run` installs) ***\n"
    );
}

fn bed() -> Option<&'static Bed> {
    static BED: OnceLock<Result<Bed, String>> = OnceLock::new();
    if !netns::bed_enabled() {
        loud_skip();
        return None;
    }
    match BED.get_or_init(build_bed) {
        Ok(b) => Some(b),
        Err(e) => panic!("{e}"),
    }
}

/// A busybox pod pinned to node `node`.
fn pod(name: &str, node: usize, containers: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
        "spec": {
            "nodeName": format!("n{node}"),
            "terminationGracePeriodSeconds": 1,
            "containers": containers
        }
    })
}

fn sh(name: &str, image: &str, script: &str) -> serde_json::Value {
    serde_json::json!({"name": name, "image": image, "command": ["sh", "-c", script]})
}

const BUSYBOX: &str = "busybox:1.36";
const NGINX: &str = "nginx:1.27";
/// Links `tar` (for kubectl cp; the test image has few applets), prints three lines, then a
/// numbered tick every 200 ms, with a small CPU loop.
const TICKER: &str = "busybox ln -sf busybox /bin/tar; echo first; echo second; echo third; i=0; while true; do echo tick $i; \
                      i=$((i+1)); j=0; while [ $j -lt 300 ]; do j=$((j+1)); done; sleep 0.2; done";

fn build_bed() -> Result<Bed, String> {
    let t0 = Instant::now();
    if !skiff_bin().is_file() {
        return Err(format!(
            "skiff binary {} not found: build it first with `cargo build -p skiff`",
            skiff_bin().display()
        ));
    }
    let net = TestNet::create(NODES)?;
    let registry = net.start_registry()?;
    net.push_images(&[ImageSpec::nginx(), ImageSpec::busybox()])?;
    let registries = net.dir().join("registries.yaml");
    std::fs::write(
        &registries,
        images::registries_yaml(&format!("http://{REGISTRY}")),
    )
    .map_err(|e| e.to_string())?;
    let kubeconfig = net.dir().join("kubeconfig");
    for sub in ["n1", "n2", "n3", "home", "kcache"] {
        std::fs::create_dir_all(net.dir().join(sub)).map_err(|e| e.to_string())?;
    }
    // Node 3 accepts no inbound connection to the kubelet port: only its tunnel reaches it.
    for rule in [
        "add table inet t9",
        "add chain inet t9 in { type filter hook input priority 0; }",
        "add rule inet t9 in iifname != lo tcp dport 10250 drop",
    ] {
        let mut args = vec!["nft"];
        args.extend(rule.split(' '));
        let out = net.run_in(WALLED, &args);
        if out.code != 0 {
            return Err(format!("nft in node {WALLED}: {out}"));
        }
    }
    let d1 = net.dir().join("n1");
    let server_args: Vec<String> = vec![
        skiff(),
        "server".into(),
        "--config".into(),
        net.dir().join("no-config.yaml").display().to_string(),
        "--data-dir".into(),
        d1.display().to_string(),
        "--node-name".into(),
        "n1".into(),
        "--node-ip".into(),
        node_ip(1),
        "--private-registry".into(),
        registries.display().to_string(),
        TEST_KUBELET_ARGS[0].into(),
        TEST_KUBELET_ARGS[1].into(),
        "--write-kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--write-kubeconfig-mode".into(),
        "0600".into(),
        "--token".into(),
        SERVER_TOKEN.into(),
    ];
    let refs: Vec<&str> = server_args.iter().map(String::as_str).collect();
    let mut server = net.spawn_in(1, "server", &refs);
    let start = Instant::now();
    loop {
        if kubeconfig.is_file() {
            let out = net.run_in(
                1,
                &[
                    "curl",
                    "-sk",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "2",
                    "https://127.0.0.1:6443/readyz",
                ],
            );
            if out.stdout.trim() == "200" {
                break;
            }
        }
        if server.exit_code().is_some() || start.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "skiff server did not become ready:\n{}",
                tail(&server.log(), 40)
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
    let mut tok = Command::new(skiff_bin());
    tok.arg("token").arg("-d").arg(&d1);
    let out = run_command(tok, None, COMMAND_TIMEOUT);
    if out.code != 0 || !out.stdout.starts_with("K10") {
        return Err(format!("skiff token did not print a K10 token:\n{out}"));
    }
    let token = out.stdout.trim().to_string();
    let mut agents = BTreeMap::new();
    for i in [2, 3] {
        let data = net.dir().join(format!("n{i}")).display().to_string();
        let args = [
            skiff(),
            "agent".into(),
            "--server".into(),
            format!("https://{}:6443", node_ip(1)),
            "--token".into(),
            token.clone(),
            "--node-name".into(),
            format!("n{i}"),
            "--node-ip".into(),
            node_ip(i),
            "--data-dir".into(),
            data,
            "--private-registry".into(),
            registries.display().to_string(),
            TEST_KUBELET_ARGS[0].into(),
            TEST_KUBELET_ARGS[1].into(),
        ];
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        agents.insert(i, net.spawn_in(i, &format!("agent-n{i}"), &refs));
    }
    let bed = Bed {
        net,
        _registry: registry,
        _server: server,
        _agents: Mutex::new(agents),
        kubeconfig,
        tunnel: RwLock::new(()),
    };
    let start = Instant::now();
    loop {
        let out = bed.kubectl(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
        ]);
        if out.stdout.lines().filter(|l| l.ends_with("=True")).count() == 3 {
            break;
        }
        if start.elapsed() > NODES_READY {
            return Err(format!("3 nodes not Ready:\n{out}\n{}", bed.logs()));
        }
        thread::sleep(Duration::from_millis(250));
    }
    let out = bed.kubectl(&["create", "namespace", NS]);
    if out.code != 0 {
        return Err(format!("{out}"));
    }
    wait_for(
        Duration::from_secs(30),
        "the default service account",
        || (bed.kubectl(&["get", "sa", "default", "-n", NS]).code == 0).then_some(()),
    );
    for node in [2, WALLED] {
        bed.apply(&pod(
            &format!("two-n{node}"),
            node,
            serde_json::json!([
                sh("main", BUSYBOX, TICKER),
                sh("side", BUSYBOX, "echo side-hello; exec sleep 3600"),
            ]),
        ));
        let mut web = pod(
            &format!("web-n{node}"),
            node,
            serde_json::json!([{"name": "web", "image": NGINX}]),
        );
        web["spec"]["containers"][0]["ports"] = serde_json::json!([{"containerPort": 80}]);
        bed.apply(&web);
    }
    bed.apply(&pod(
        "crash",
        2,
        serde_json::json!([sh(
            "c",
            BUSYBOX,
            "echo run-$(cat /proc/uptime); sleep 1; exit 1"
        )]),
    ));
    bed.apply(&serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "hello", "namespace": NS},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "hello"}},
            "template": {
                "metadata": {"labels": {"app": "hello"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "nodeSelector": {"kubernetes.io/hostname": format!("n{WALLED}")},
                    "containers": [sh("hello", BUSYBOX, "echo deploy-hello; exec sleep 3600")]
                }
            }
        }
    }));
    for node in [2, WALLED] {
        bed.wait_pod(&format!("two-n{node}"));
        bed.wait_pod(&format!("web-n{node}"));
    }
    eprintln!("bed: cluster and pods ready in {:?}", t0.elapsed());
    Ok(bed)
}

/// `kubectl logs` until `f` accepts the output (containers may still be starting to print).
fn logs_until(b: &Bed, args: &[&str], what: &str, f: impl Fn(&Output) -> bool) -> Output {
    let mut all = vec!["logs", "-n", NS];
    all.extend_from_slice(args);
    let start = Instant::now();
    loop {
        let out = b.kubectl(&all);
        if f(&out) {
            return out;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: {out}\n{}",
            b.logs()
        );
        thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn logs_plain_tail_since_container_and_deployment() {
    let Some(b) = bed() else { return };
    let _g = b.tunnel.read().unwrap_or_else(|e| e.into_inner());
    for node in [2, WALLED] {
        let p = format!("two-n{node}");
        let out = logs_until(b, &[&p, "-c", "main"], "plain logs", |o| {
            o.code == 0 && o.stdout.contains("tick 1\n")
        });
        assert!(
            out.stdout.starts_with("first\nsecond\nthird\ntick 0\n"),
            "{out}"
        );
        let out = b.kubectl(&["logs", "-n", NS, &p, "-c", "side"]);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (0, "side-hello\n"),
            "{out}"
        );
        let out = b.kubectl(&["logs", "-n", NS, &p, "-c", "main", "--tail", "2"]);
        assert_eq!(out.code, 0, "{out}");
        assert_eq!(out.stdout.lines().count(), 2, "{out}");
        assert!(out.stdout.lines().all(|l| l.starts_with("tick ")), "{out}");
        // Lines older than one second are left out; the first lines are older by now.
        thread::sleep(Duration::from_secs(2));
        let out = b.kubectl(&["logs", "-n", NS, &p, "-c", "main", "--since", "1s"]);
        assert_eq!(out.code, 0, "{out}");
        assert!(!out.stdout.contains("first"), "{out}");
        assert!(out.stdout.contains("tick "), "{out}");
        // Two containers and none named: kubectl picks the first; the API answers upstream's
        // message to a client that does not.
        let out = b.kubectl(&["logs", "-n", NS, &p]);
        assert_eq!(out.code, 0, "{out}");
        assert!(out.stdout.starts_with("first\n"), "{out}");
        assert!(
            out.stderr
                .contains("Defaulted container \"main\" out of: main, side"),
            "{out}"
        );
        let raw = format!("/api/v1/namespaces/{NS}/pods/{p}/log");
        let out = b.kubectl(&["get", "--raw", &raw]);
        assert_ne!(out.code, 0, "{out}");
        assert!(
            out.stderr.contains(&format!(
                "a container name must be specified for pod {p}, choose one of: [main side]"
            )),
            "{out}"
        );
    }
    let out = logs_until(b, &["deploy/hello"], "deployment logs", |o| o.code == 0);
    assert_eq!(out.stdout, "deploy-hello\n", "{out}");
}

#[test]
fn logs_follow_streams_new_lines() {
    let Some(b) = bed() else { return };
    let _g = b.tunnel.read().unwrap_or_else(|e| e.into_inner());
    for node in [2, WALLED] {
        let p = format!("two-n{node}");
        let mut follow = b.net.spawn_cmd(
            b.kubectl_cmd(&["logs", "-n", NS, &p, "-c", "main", "-f", "--tail", "1"]),
            &format!("follow-{p}"),
        );
        let start = Instant::now();
        // Ticks come every 200 ms: at least 5 distinct ones must arrive while following.
        let ticks = loop {
            let log = follow.log();
            let ticks: Vec<&str> = log.lines().filter(|l| l.starts_with("tick ")).collect();
            if ticks.len() >= 6 {
                break ticks.len();
            }
            assert!(
                follow.exit_code().is_none(),
                "kubectl logs -f ended early:\n{log}"
            );
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "logs -f of {p} showed no new lines:\n{log}\n{}",
                b.logs()
            );
            thread::sleep(Duration::from_millis(200));
        };
        eprintln!("logs -f {p}: {ticks} lines in {:?}", start.elapsed());
        follow.kill_group();
    }
}

#[test]
fn logs_previous_after_a_restart() {
    let Some(b) = bed() else { return };
    // The container exits after a second and restarts (10 s back-off after the first exit).
    let start = Instant::now();
    loop {
        let out = b.kubectl(&[
            "get",
            "pod",
            "crash",
            "-n",
            NS,
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount}",
        ]);
        if out.stdout.trim().parse::<u32>().unwrap_or(0) >= 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "crash never restarted: {out}\n{}",
            b.logs()
        );
        thread::sleep(Duration::from_millis(500));
    }
    let out = logs_until(b, &["crash", "--previous"], "previous logs", |o| {
        o.code == 0 && o.stdout.starts_with("run-")
    });
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    let out = b.kubectl(&["logs", "-n", NS, "two-n2", "-c", "side", "--previous"]);
    assert_ne!(
        out.code, 0,
        "a container that never restarted has no previous log: {out}"
    );
}

#[test]
fn exec_runs_commands_with_exit_codes_and_stdin() {
    let Some(b) = bed() else { return };
    let _g = b.tunnel.read().unwrap_or_else(|e| e.into_inner());
    for node in [2, WALLED] {
        let p = format!("two-n{node}");
        let out = b.kubectl(&["exec", "-n", NS, &p, "-c", "main", "--", "hostname"]);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (0, format!("{p}\n").as_str()),
            "{out}"
        );
        let out = b.kubectl(&[
            "exec", "-n", NS, &p, "-c", "main", "--", "sh", "-c", "exit 3",
        ]);
        assert_eq!(out.code, 3, "{out}");
        let out = b.kubectl_stdin(
            &["exec", "-i", "-n", NS, &p, "-c", "main", "--", "cat"],
            "hi\n",
        );
        assert_eq!((out.code, out.stdout.as_str()), (0, "hi\n"), "{out}");
        let out = b.kubectl(&[
            "exec",
            "-n",
            NS,
            &p,
            "-c",
            "main",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ]);
        assert_eq!((out.code, out.stdout.as_str()), (0, "out\n"), "{out}");
        assert_eq!(out.stderr, "err\n", "{out}");
        // The same over SPDY/3.1, kubectl's fallback (and what older clients speak).
        let spdy = |args: &[&str], stdin: Option<&str>| {
            let mut c = b.kubectl_cmd(args);
            c.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false");
            run_command(c, stdin.map(str::as_bytes), COMMAND_TIMEOUT)
        };
        let out = spdy(
            &[
                "exec", "-n", NS, &p, "-c", "main", "--", "sh", "-c", "exit 3",
            ],
            None,
        );
        assert_eq!(out.code, 3, "{out}");
        let out = spdy(
            &["exec", "-i", "-n", NS, &p, "-c", "main", "--", "cat"],
            Some("over spdy\n"),
        );
        assert_eq!((out.code, out.stdout.as_str()), (0, "over spdy\n"), "{out}");
    }
}

#[test]
fn nodes_proxy_reaches_the_kubelet() {
    let Some(b) = bed() else { return };
    let _g = b.tunnel.read().unwrap_or_else(|e| e.into_inner());
    for node in [2, WALLED] {
        let out = b.kubectl(&[
            "get",
            "--raw",
            &format!("/api/v1/nodes/n{node}/proxy/healthz"),
        ]);
        assert_eq!((out.code, out.stdout.as_str()), (0, "ok"), "{out}");
        let out = b.kubectl(&[
            "get",
            "--raw",
            &format!("/api/v1/nodes/n{node}/proxy/metrics/resource"),
        ]);
        assert_eq!(out.code, 0, "{out}");
        assert!(out.stdout.contains("node_cpu_usage_seconds_total"), "{out}");
    }
    let out = b.kubectl(&["get", "--raw", "/api/v1/nodes/n2:10251/proxy/healthz"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("only the kubelet port"), "{out}");
}

/// `tmux` on its own socket inside node 1's netns.
fn tmux(b: &Bed, sock: &Path, args: &[&str]) -> Output {
    let s = sock.display().to_string();
    // No status line: the pane is exactly the window size.
    let conf = b.net.dir().join("tmux.conf");
    let _ = std::fs::write(&conf, "set -g status off\n");
    let c = conf.display().to_string();
    let mut all = vec!["tmux", "-f", c.as_str(), "-S", s.as_str()];
    all.extend_from_slice(args);
    let mut c = b.net.command_in(1, &all);
    c.env("KUBECONFIG", &b.kubeconfig)
        .env("KUBECACHEDIR", b.net.dir().join("kcache"))
        .env("HOME", b.net.dir().join("home"))
        .env("TERM", "xterm");
    run_command(c, None, COMMAND_TIMEOUT)
}

fn wait_pane(b: &Bed, sock: &Path, want: &str) -> String {
    let start = Instant::now();
    loop {
        let out = tmux(b, sock, &["capture-pane", "-p", "-t", "t9"]);
        if out.stdout.contains(want) {
            return out.stdout;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "terminal never showed {want:?}:\n{out}\n{}",
            b.logs()
        );
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn exec_interactive_tty_with_resize() {
    let Some(b) = bed() else { return };
    let _g = b.tunnel.read().unwrap_or_else(|e| e.into_inner());
    let sock = b.net.dir().join("tmux.sock");
    let cmd = format!("kubectl exec -it -n {NS} two-n{WALLED} -c main -- sh");
    let out = tmux(
        b,
        &sock,
        &[
            "new-session",
            "-d",
            "-s",
            "t9",
            "-x",
            "100",
            "-y",
            "30",
            &cmd,
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    tmux(
        b,
        &sock,
        &[
            "send-keys",
            "-t",
            "t9",
            "echo $((6*7)); busybox stty size",
            "Enter",
        ],
    );
    wait_pane(b, &sock, "42");
    wait_pane(b, &sock, "30 100");
    tmux(
        b,
        &sock,
        &["resize-window", "-t", "t9", "-x", "120", "-y", "40"],
    );
    tmux(
        b,
        &sock,
        &["send-keys", "-t", "t9", "busybox stty size", "Enter"],
    );
    wait_pane(b, &sock, "40 120");
    tmux(b, &sock, &["send-keys", "-t", "t9", "exit", "Enter"]);
    let start = Instant::now();
    while tmux(b, &sock, &["has-session", "-t", "t9"]).code == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "exec -it did not end after exit"
        );
        thread::sleep(Duration::from_millis(200));
    }
    let _ = tmux(b, &sock, &["kill-server"]);
}

#[test]
fn attach_shows_the_running_output() {
    let Some(b) = bed() else { return };
    let _g = b.tunnel.read().unwrap_or_else(|e| e.into_inner());
    for node in [2, WALLED] {
        let p = format!("two-n{node}");
        let mut c = b.kubectl_cmd(&["attach", "-n", NS, &p, "-c", "main"]);
        // kubectl attach runs until interrupted: `timeout` ends it after a few ticks.
        let args: Vec<String> = std::iter::once(c.get_program().to_string_lossy().into_owned())
            .chain(c.get_args().map(|a| a.to_string_lossy().into_owned()))
            .collect();
        let mut t = Command::new("timeout");
        t.arg("4").args(&args);
        for (k, v) in c.get_envs() {
            if let Some(v) = v {
                t.env(k, v);
            }
        }
        c = t;
        let out = run_command(c, None, COMMAND_TIMEOUT);
        assert!(out.stdout.contains("tick "), "{out}\n{}", b.logs());
        assert!(
            !out.stdout.contains("first"),
            "attach shows only new output: {out}"
        );
    }
}

#[test]
fn cp_both_ways() {
    let Some(b) = bed() else { return };
    let _g = b.tunnel.read().unwrap_or_else(|e| e.into_inner());
    let dir = b.net.dir().join("cp");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("up.txt");
    let body: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&src, &body).unwrap();
    for node in [2, WALLED] {
        let p = format!("two-n{node}");
        let dest = format!("{NS}/{p}:/tmp/up.txt");
        let out = b.kubectl(&["cp", &src.display().to_string(), &dest, "-c", "main"]);
        assert_eq!(out.code, 0, "{out}");
        let out = b.kubectl(&[
            "exec",
            "-n",
            NS,
            &p,
            "-c",
            "main",
            "--",
            "wc",
            "-l",
            "/tmp/up.txt",
        ]);
        assert!(out.stdout.trim().starts_with("2000"), "{out}");
        let back = dir.join(format!("down-{p}.txt"));
        let out = b.kubectl(&["cp", &dest, &back.display().to_string(), "-c", "main"]);
        assert_eq!(out.code, 0, "{out}");
        assert_eq!(std::fs::read_to_string(&back).unwrap_or_default(), body);
    }
}

#[test]
fn port_forward_answers_http_on_loopback() {
    let Some(b) = bed() else { return };
    let _g = b.tunnel.read().unwrap_or_else(|e| e.into_inner());
    for (node, port) in [(2usize, 18080u16), (WALLED, 18081)] {
        let p = format!("web-n{node}");
        let mapping = format!("{port}:80");
        let mut pf = b.net.spawn_cmd(
            b.kubectl_cmd(&["port-forward", "-n", NS, &format!("pod/{p}"), &mapping]),
            &format!("pf-{p}"),
        );
        let url = format!("http://127.0.0.1:{port}/");
        let start = Instant::now();
        loop {
            let out = b.net.run_in(1, &["curl", "-s", "--max-time", "5", &url]);
            if out.code == 0 && out.stdout == format!("{p}\n") {
                break;
            }
            assert!(
                pf.exit_code().is_none() && start.elapsed() < Duration::from_secs(20),
                "port-forward to {p}: {out}\n{}\n{}",
                pf.log(),
                b.logs()
            );
            thread::sleep(Duration::from_millis(300));
        }
        // A second connection through the same forward works too.
        let out = b.net.run_in(1, &["curl", "-s", "--max-time", "5", &url]);
        assert_eq!(out.stdout, format!("{p}\n"), "{out}");
        pf.kill_group();
    }
    // Plain SPDY (kubectl's fallback when WebSockets are off).
    let mut c = b.kubectl_cmd(&["port-forward", "-n", NS, "pod/web-n3", "18082:80"]);
    c.env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false");
    let mut pf = b.net.spawn_cmd(c, "pf-spdy");
    let start = Instant::now();
    loop {
        let out = b.net.run_in(
            1,
            &["curl", "-s", "--max-time", "5", "http://127.0.0.1:18082/"],
        );
        if out.code == 0 && out.stdout == "web-n3\n" {
            break;
        }
        assert!(
            pf.exit_code().is_none() && start.elapsed() < Duration::from_secs(20),
            "port-forward over SPDY: {out}\n{}\n{}",
            pf.log(),
            b.logs()
        );
        thread::sleep(Duration::from_millis(300));
    }
    pf.kill_group();
}

/// `(name, cpu millicores, memory MiB)` rows of `kubectl top`.
fn top_rows(out: &Output) -> Vec<(String, u64, u64)> {
    out.stdout
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            let cpu = cells.get(1)?.strip_suffix('m')?.parse().ok()?;
            let mem_col = if cells.len() >= 5 { 3 } else { 2 };
            let mem = cells.get(mem_col)?.strip_suffix("Mi")?.parse().ok()?;
            Some((cells[0].to_string(), cpu, mem))
        })
        .collect()
}

#[test]
fn top_nodes_and_pods_show_usage() {
    let Some(b) = bed() else { return };
    let _g = b.tunnel.read().unwrap_or_else(|e| e.into_inner());
    // Two scrapes 15 s apart are needed before anything is reported.
    let start = Instant::now();
    let nodes = loop {
        let out = b.kubectl(&["top", "nodes"]);
        let rows = top_rows(&out);
        if out.code == 0 && rows.len() == 3 {
            break rows;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "kubectl top nodes: {out}\n{}",
            b.logs()
        );
        thread::sleep(Duration::from_secs(2));
    };
    for (name, cpu, mem) in &nodes {
        assert!(*cpu > 0 && *mem > 0, "node {name}: {cpu}m {mem}Mi");
    }
    let start = Instant::now();
    loop {
        let out = b.kubectl(&["top", "pods", "-n", NS]);
        let rows = top_rows(&out);
        let walled = format!("two-n{WALLED}");
        // The ticker burns a little CPU; busybox working sets are under 1 Mi (checked below).
        let ok = out.code == 0
            && rows.iter().any(|(n, c, _)| n == "two-n2" && *c > 0)
            && rows.iter().any(|(n, c, _)| *n == walled && *c > 0);
        if ok {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "kubectl top pods: {out}\n{}",
            b.logs()
        );
        thread::sleep(Duration::from_secs(2));
    }
    for node in [2, WALLED] {
        let raw = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods/two-n{node}");
        let out = b.kubectl(&["get", "--raw", &raw]);
        let pm = out.json();
        assert_eq!(pm["kind"], "PodMetrics", "{out}");
        let containers = pm["containers"].as_array().cloned().unwrap_or_default();
        assert_eq!(containers.len(), 2, "{out}");
        for c in &containers {
            let mem = c["usage"]["memory"].as_str().unwrap_or("0");
            assert!(mem != "0" && !mem.starts_with('-'), "{out}");
        }
    }
    let out = b.kubectl(&["top", "pods", "-A", "--containers"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("side"), "{out}");
}

#[test]
fn a_lost_tunnel_gives_a_503_naming_the_node_then_recovers() {
    let Some(b) = bed() else { return };
    let _g = b.tunnel.write().unwrap_or_else(|e| e.into_inner());
    let p = format!("two-n{WALLED}");
    logs_until(b, &[&p, "-c", "side"], "logs before the cut", |o| {
        o.code == 0
    });
    // Reset the agent's connections to the API port: the tunnel breaks and cannot reconnect.
    for rule in [
        "add chain inet t9 out { type filter hook output priority 0; }",
        "add rule inet t9 out tcp dport 6443 reject with tcp reset",
    ] {
        let mut args = vec!["nft"];
        args.extend(rule.split(' '));
        let out = b.net.run_in(WALLED, &args);
        assert_eq!(out.code, 0, "{out}");
    }
    let start = Instant::now();
    let out = loop {
        let t = Instant::now();
        let out = b.kubectl(&["logs", "-n", NS, &p, "-c", "side"]);
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "a request to a node without tunnel must not hang: {out}"
        );
        if out.code != 0 {
            break out;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the tunnel never went away: {out}\n{}",
            b.logs()
        );
        thread::sleep(Duration::from_millis(500));
    };
    assert!(
        out.stderr.contains("ServiceUnavailable") || out.stderr.contains("error dialing backend"),
        "{out}"
    );
    assert!(out.stderr.contains(&format!("node \"n{WALLED}\"")), "{out}");
    thread::sleep(Duration::from_secs(3));
    let out = b
        .net
        .run_in(WALLED, &["nft", "flush", "chain", "inet", "t9", "out"]);
    assert_eq!(out.code, 0, "{out}");
    let back = Instant::now();
    logs_until(
        b,
        &[&p, "-c", "side"],
        "logs after the tunnel is back",
        |o| o.code == 0 && o.stdout == "side-hello\n",
    );
    eprintln!("tunnel back after {:?}", back.elapsed());
    let agent_log = std::fs::read_to_string(b.net.dir().join(format!("agent-n{WALLED}.log")))
        .unwrap_or_default();
    assert!(
        agent_log.contains("reconnecting the tunnel"),
        "{}",
        tail(&agent_log, 40)
    );

    // A node that goes silent (packets dropped, no reset: power or network lost): the
    // server's HTTP/2 pings go unanswered and it drops the tunnel within 25 s, so requests
    // for the node no longer wait on a dead tunnel before the direct dial.
    for rule in [
        "add rule inet t9 out tcp dport 6443 drop",
        "add chain inet t9 in { type filter hook input priority 0; }",
        "add rule inet t9 in tcp sport 6443 drop",
    ] {
        let mut args = vec!["nft"];
        args.extend(rule.split(' '));
        let out = b.net.run_in(WALLED, &args);
        assert_eq!(out.code, 0, "{out}");
    }
    let silent = Instant::now();
    let out = loop {
        let out = b.kubectl(&["logs", "-n", NS, &p, "-c", "side"]);
        // Without the tunnel only the direct dial remains (5 s timeout): no second wait on
        // a dead tunnel first.
        if out.code != 0 && out.stderr.contains("no tunnel to node") {
            assert!(out.elapsed < Duration::from_secs(8), "{out}");
            break out;
        }
        assert!(
            silent.elapsed() < Duration::from_secs(60),
            "requests for a silent node still wait: {out}\n{}",
            b.logs()
        );
        thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "silent node: requests fail fast after {:?}: {}",
        silent.elapsed(),
        out.stderr.trim()
    );
    assert!(out.stderr.contains(&format!("node \"n{WALLED}\"")), "{out}");
    for chain in ["out", "in"] {
        let out = b
            .net
            .run_in(WALLED, &["nft", "flush", "chain", "inet", "t9", chain]);
        assert_eq!(out.code, 0, "{out}");
    }
    logs_until(
        b,
        &[&p, "-c", "side"],
        "logs after the silent node is back",
        |o| o.code == 0 && o.stdout == "side-hello\n",
    );
}
