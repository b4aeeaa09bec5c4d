//! End-to-end: real nodes on containerd. `skiff server` in node netns 1 and `skiff agent` in
//! nodes 2 and 3 of a [`TestNet`], images pulled from the test registry through a docker.io
//! mirror, driven by the stock kubectl run inside node 1's netns.
//!
//! Needs root and the Debian packages named in `skiff_e2e::netns::TOOLS` (`bash .ci/run`
//! installs them); `SKIFF_E2E_NODES=0` skips these tests with a loud message.

use skiff_e2e::images::{self, ImageSpec};
use skiff_e2e::netns::{self, node_ip, NsProcess, TestNet, REGISTRY, SWITCH, TEST_KUBELET_ARGS};
use skiff_e2e::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock, RwLock};
use std::thread;
use std::time::{Duration, Instant};

/// Node netns 1 runs the server, 2 and 3 agents; 4 is a spare host for the refused joins.
const NODES: usize = 4;
/// How long the three nodes may take to be Ready from the server's start.
const NODES_READY: Duration = Duration::from_secs(120);
/// How long pods may take to be Running (image pulls through the mirror included).
const PODS_RUNNING: Duration = Duration::from_secs(120);
const SERVER_TOKEN: &str = "e2e-secret";

/// Test pods ignore SIGTERM as PID 1 (busybox httpd/sleep), so they get a short grace period.
const GRACE: &str = "\"terminationGracePeriodSeconds\": 2";

struct Bed {
    net: TestNet,
    _registry: NsProcess,
    _server: NsProcess,
    agents: Mutex<BTreeMap<usize, NsProcess>>,
    kubeconfig: PathBuf,
    registries: PathBuf,
    token: String,
    /// Held for reading by tests that run pods, for writing by the one that restarts an agent.
    agent_restart: RwLock<()>,
}

fn skiff() -> String {
    skiff_bin().display().to_string()
}

impl Bed {
    fn data_dir(&self, node: usize) -> PathBuf {
        self.net.dir().join(format!("n{node}"))
    }

    /// `skiff agent` args for node `index` named `name` with `token` and data dir `data`.
    fn agent_args(&self, index: usize, name: &str, token: &str, data: &str) -> Vec<String> {
        vec![
            skiff(),
            "agent".into(),
            "--server".into(),
            format!("https://{}:6443", node_ip(1)),
            "--token".into(),
            token.into(),
            "--node-name".into(),
            name.into(),
            "--node-ip".into(),
            node_ip(index),
            "--data-dir".into(),
            data.into(),
            "--private-registry".into(),
            self.registries.display().to_string(),
            TEST_KUBELET_ARGS[0].into(),
            TEST_KUBELET_ARGS[1].into(),
        ]
    }

    fn spawn_agent(&self, index: usize) -> NsProcess {
        self.spawn_agent_with(index, &[])
    }

    /// [`Bed::spawn_agent`] with more flags.
    fn spawn_agent_with(&self, index: usize, extra: &[&str]) -> NsProcess {
        let data = self.data_dir(index).display().to_string();
        let mut args = self.agent_args(index, &format!("n{index}"), &self.token, &data);
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.net.spawn_in(index, &format!("agent-n{index}"), &refs)
    }

    /// Replaces node `index`'s agent (kill -9, as a crash) by one started with `extra` flags.
    fn restart_agent_with(&self, index: usize, extra: &[&str]) {
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = agents.get_mut(&index) {
            old.kill_9();
        }
        let new = self.spawn_agent_with(index, extra);
        agents.insert(index, new);
    }

    /// kubectl inside node 1's netns with the admin kubeconfig (or another one).
    fn kubectl_as(&self, kubeconfig: &std::path::Path, args: &[&str]) -> Output {
        let mut all = vec!["kubectl"];
        all.extend_from_slice(args);
        let mut c = self.net.command_in(1, &all);
        c.env("KUBECONFIG", kubeconfig)
            .env("KUBECACHEDIR", self.net.dir().join("kcache"))
            .env("HOME", self.net.dir().join("home"));
        run_command(c, None, COMMAND_TIMEOUT)
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_as(&self.kubeconfig, args)
    }

    fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut all = vec!["kubectl"];
        all.extend_from_slice(args);
        let mut c = self.net.command_in(1, &all);
        c.env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.net.dir().join("kcache"))
            .env("HOME", self.net.dir().join("home"));
        run_command(c, Some(stdin.as_bytes()), COMMAND_TIMEOUT)
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for name in ["server", "agent-n2", "agent-n3"] {
            let text = std::fs::read_to_string(self.net.dir().join(format!("{name}.log")))
                .unwrap_or_default();
            s.push_str(&format!("--- {name} log tail ---\n{}\n", tail(&text, 25)));
        }
        s
    }

    fn namespace(&self, name: &str) {
        let out = self.kubectl(&["create", "namespace", name]);
        assert_eq!(out.stdout, format!("namespace/{name} created\n"), "{out}");
        // The service account controller creates `default`; pods need it.
        wait_for(
            Duration::from_secs(30),
            "the default service account",
            || (self.kubectl(&["get", "sa", "default", "-n", name]).code == 0).then_some(()),
        );
    }

    /// Rows of `kubectl get pods -o wide` (NAME READY STATUS RESTARTS AGE IP NODE …), keyed by
    /// name, cells by header.
    fn pod_table(&self, ns: &str, selector: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        let out = self.kubectl(&["get", "pods", "-n", ns, "-l", selector, "-o", "wide"]);
        assert_eq!(out.code, 0, "{out}");
        let rows = parse_table(out.stdout.trim_end());
        let Some((header, body)) = rows.split_first() else {
            return BTreeMap::new();
        };
        body.iter()
            .map(|r| {
                let cells: BTreeMap<String, String> =
                    header.iter().cloned().zip(r.iter().cloned()).collect();
                (r[0].clone(), cells)
            })
            .collect()
    }

    /// Waits until `n` pods match with STATUS Running and READY n/n, none terminating.
    fn wait_running(&self, ns: &str, selector: &str, n: usize, what: &str) -> Vec<PodRow> {
        let start = Instant::now();
        loop {
            let pods = pods_in(self, ns, selector);
            let running: Vec<PodRow> = pods
                .iter()
                .filter(|p| !p.deleting && p.phase == "Running" && p.ready == "True")
                .cloned()
                .collect();
            if running.len() == n && pods.iter().filter(|p| !p.deleting).count() == n {
                eprintln!("{what}: {n} pods Running in {:?}", start.elapsed());
                return running;
            }
            assert!(
                start.elapsed() < PODS_RUNNING,
                "{what}: not {n} Running+Ready pods within {PODS_RUNNING:?}: {pods:#?}\n{}\n{}",
                self.kubectl(&["get", "pods", "-n", ns, "-o", "wide"]),
                self.logs()
            );
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// `timeout 5 busybox wget -qO- URL` from node `node`'s netns.
    fn wget_from(&self, node: usize, url: &str) -> Output {
        self.net
            .run_in(node, &["timeout", "5", "busybox", "wget", "-qO-", url])
    }
}

fn pods_in(b: &Bed, ns: &str, selector: &str) -> Vec<PodRow> {
    let out = b.kubectl(&[
        "get",
        "pods",
        "-n",
        ns,
        "-l",
        selector,
        "-o",
        POD_ROWS_JSONPATH,
    ]);
    assert_eq!(out.code, 0, "{out}");
    parse_pod_rows(&out.stdout)
}

/// The node index of node name `nN`.
fn node_index(name: &str) -> usize {
    name.strip_prefix('n')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected node name {name:?}"))
}

/// The K10 token with its CA hash replaced by `hash` (keeping `::creds`).
fn with_ca_hash(token: &str, hash: &str) -> String {
    let creds = token.split_once("::").map(|(_, c)| c).unwrap_or(token);
    format!("K10{hash}::{creds}")
}

/// The K10 token with the password (after the last `:`) replaced.
fn with_password(token: &str, password: &str) -> String {
    let (head, _) = token.rsplit_once(':').unwrap_or((token, ""));
    format!("{head}:{password}")
}

/// Says on the real stderr (not the test harness's capture) that tests are skipped.
fn loud_skip(what: &str) {
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** skiff-e2e {what} SKIPPED: SKIFF_E2E_NODES=0 (they need root and the packages \
         `bash .ci/run` installs) ***\n"
    );
}

/// The shared cluster, or None (after a loud message) when `SKIFF_E2E_NODES=0`.
fn bed() -> Option<&'static Bed> {
    static BED: OnceLock<Result<Bed, String>> = OnceLock::new();
    if !netns::bed_enabled() {
        loud_skip("agent tests");
        return None;
    }
    match BED.get_or_init(build_bed) {
        Ok(b) => Some(b),
        Err(e) => panic!("{e}"),
    }
}

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
    eprintln!("bed: network, registry and images in {:?}", t0.elapsed());
    let registries = net.dir().join("registries.yaml");
    std::fs::write(
        &registries,
        images::registries_yaml(&format!("http://{REGISTRY}")),
    )
    .map_err(|e| e.to_string())?;
    let kubeconfig = net.dir().join("kubeconfig");
    let d1 = net.dir().join("n1");
    for sub in ["n1", "home", "kcache"] {
        std::fs::create_dir_all(net.dir().join(sub)).map_err(|e| e.to_string())?;
    }
    let t_server = Instant::now();
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
                "skiff server in {} did not become ready (readyz 200, kubeconfig written):\n{}",
                net.netns(1),
                tail(&server.log(), 40)
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
    eprintln!("bed: server ready in {:?}", t_server.elapsed());
    let mut tok = Command::new(skiff_bin());
    tok.arg("token").arg("-d").arg(&d1);
    let out = run_command(tok, None, COMMAND_TIMEOUT);
    if out.code != 0 || !out.stdout.starts_with("K10") {
        return Err(format!("skiff token did not print a K10 token:\n{out}"));
    }
    let token = out.stdout.trim().to_string();
    let mut bed = Bed {
        net,
        _registry: registry,
        _server: server,
        agents: Mutex::new(BTreeMap::new()),
        kubeconfig,
        registries,
        token,
        agent_restart: RwLock::new(()),
    };
    for i in [2, 3] {
        let a = bed.spawn_agent(i);
        bed.agents.get_mut().expect("agents lock").insert(i, a);
    }
    let start = Instant::now();
    loop {
        let out = bed.kubectl(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
        ]);
        let ready = out.stdout.lines().filter(|l| l.ends_with("=True")).count();
        if ready == 3 {
            break;
        }
        if start.elapsed() > NODES_READY {
            return Err(format!(
                "3 nodes not Ready within {NODES_READY:?}:\n{out}\n{}",
                bed.logs()
            ));
        }
        thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "bed: 3 nodes Ready {:?} after the server started ({:?} in all)",
        t_server.elapsed(),
        t0.elapsed()
    );
    Ok(bed)
}

#[test]
fn nodes_are_ready_with_containerd_and_roles() {
    let Some(b) = bed() else { return };
    let out = b.kubectl(&["get", "nodes", "-o", "wide"]);
    assert!(out.code == 0 && out.stderr.is_empty(), "{out}");
    let rows = parse_table(out.stdout.trim_end());
    assert_eq!(
        rows[0],
        [
            "NAME",
            "STATUS",
            "ROLES",
            "AGE",
            "VERSION",
            "INTERNAL-IP",
            "EXTERNAL-IP",
            "OS-IMAGE",
            "KERNEL-VERSION",
            "CONTAINER-RUNTIME"
        ],
        "{out}"
    );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let names: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, ["n1", "n2", "n3"], "{out}");
    for r in &rows[1..] {
        let i = node_index(&r[0]);
        assert_eq!(r[1], "Ready", "{out}");
        let role = if i == 1 { "control-plane" } else { "<none>" };
        assert_eq!(r[2], role, "{out}");
        assert!(is_age(&r[3]), "{out}");
        assert!(r[4].starts_with('v'), "VERSION {:?}\n{out}", r[4]);
        assert_eq!(r[5], node_ip(i), "{out}");
        assert_eq!(r[6], "<none>", "{out}");
        assert!(
            !r[7].is_empty() && r[7] != "<unknown>",
            "OS-IMAGE {:?}\n{out}",
            r[7]
        );
        assert_eq!(r[8], kernel.trim(), "{out}");
        assert!(r[9].starts_with("containerd://1."), "{out}");
    }
}

/// Starts `skiff agent` in the spare node 4 with `token` as `name` and waits up to 30 s until it
/// exits or its output contains every phrase in `want` (lowercased); returns (exit code, or None
/// if it was still running — retrying — when the message appeared, and its output).
fn try_join(b: &Bed, case: &str, name: &str, token: &str, want: &[&str]) -> (Option<i32>, String) {
    let data = b.net.dir().join(format!("n4-{case}"));
    let args = b.agent_args(4, name, token, &data.display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = b.net.spawn_in(4, &format!("agent-n4-{case}"), &refs);
    let start = Instant::now();
    let code = loop {
        if let Some(c) = p.exit_code() {
            break Some(c);
        }
        let log = p.log().to_lowercase();
        if want.iter().all(|w| log.contains(&w.to_lowercase()))
            || start.elapsed() > Duration::from_secs(30)
        {
            // Give a process that is about to exit a moment to do so.
            break p.wait_exit(Duration::from_secs(2));
        }
        thread::sleep(Duration::from_millis(100));
    };
    p.kill_group();
    (code, p.log())
}

#[test]
fn joins_are_refused_with_clear_messages() {
    let Some(b) = bed() else { return };
    let _g = b.agent_restart.read().unwrap_or_else(|e| e.into_inner());
    let cases = [
        (
            "hash",
            "n4",
            with_ca_hash(&b.token, &"ab".repeat(32)),
            vec!["does not match the token's CA hash"],
        ),
        (
            "password",
            "n4",
            with_password(&b.token, "not-the-password"),
            vec!["rejected the token"],
        ),
    ];
    for (case, name, token, phrases) in cases {
        let (code, log) = try_join(b, case, name, &token, &phrases);
        eprintln!("refused join ({case}): exit {code:?}\n{}", tail(&log, 5));
        assert_ne!(code, Some(0), "{case}: the agent exited 0:\n{log}");
        for p in phrases {
            assert!(
                log.contains(p),
                "{case}: no {p:?} in the agent's output:\n{log}"
            );
        }
    }
    // A second host claiming n2 (a fresh data dir, so another node password).
    let phrases = [
        "node password rejected",
        "another host already joined as node",
        "n2",
        "--node-name",
    ];
    let (code, log) = try_join(b, "name", "n2", &b.token, &phrases);
    eprintln!(
        "refused join (name n2 from node 4): exit {code:?}\n{}",
        tail(&log, 5)
    );
    assert_ne!(code, Some(0), "the agent exited 0:\n{log}");
    for p in phrases {
        assert!(
            log.contains(p),
            "reused name: no {p:?} in the agent's output:\n{log}"
        );
    }
    // n2 stays n2: still Ready, still at its own address.
    let out = b.kubectl(&[
        "get",
        "node",
        "n2",
        "-o",
        "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address} {.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    assert_eq!(out.stdout, format!("{} True", node_ip(2)), "{out}");

    // A node's own credentials cannot touch another node.
    let node_kc = b.data_dir(2).join("agent/kubelet.kubeconfig");
    assert!(node_kc.is_file(), "{} missing", node_kc.display());
    let out = b.kubectl_as(&node_kc, &["get", "node", "n2", "-o", "name"]);
    assert_eq!(out.stdout, "node/n2\n", "{out}");
    let out = b.kubectl_as(&node_kc, &["label", "node", "n3", "stolen=yes"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr.starts_with("Error from server (Forbidden)"),
        "{out}"
    );
    let out = b.kubectl(&[
        "get",
        "node",
        "n3",
        "-o",
        "jsonpath={.metadata.labels.stolen}",
    ]);
    assert_eq!(out.stdout, "", "{out}");
}

#[test]
fn deployment_pods_serve_their_own_names_and_heal_and_scale() {
    let Some(b) = bed() else { return };
    let _g = b.agent_restart.read().unwrap_or_else(|e| e.into_inner());
    let ns = "web";
    b.namespace(ns);
    let t = Instant::now();
    let out = b.kubectl(&[
        "create",
        "deployment",
        "pagweb",
        "--image=nginx:1.27",
        "--replicas=3",
        "-n",
        ns,
    ]);
    assert_eq!(out.stdout, "deployment.apps/pagweb created\n", "{out}");
    let pods = b.wait_running(ns, "app=pagweb", 3, "pagweb x3");
    eprintln!("pagweb: 3 Running {:?} after create", t.elapsed());
    let table = b.pod_table(ns, "app=pagweb");
    for p in &pods {
        let row = &table[&p.name];
        assert_eq!(row["READY"], "1/1");
        assert_eq!(row["STATUS"], "Running");
        assert_eq!(row["IP"], p.ip);
        assert!(p.ip.starts_with("10.42."), "{p:?}");
        let page = b.wget_from(node_index(&p.node), &format!("http://{}/", p.ip));
        assert_eq!(page.stdout, format!("{}\n", p.name), "{page}");
    }
    let nodes: std::collections::BTreeSet<&str> = pods.iter().map(|p| p.node.as_str()).collect();
    eprintln!("pagweb: pods on {nodes:?}");
    assert!(nodes.len() >= 2, "3 replicas on one node: {pods:#?}");

    // Delete one: a replacement runs.
    let victim = &pods[0].name;
    let t = Instant::now();
    let out = b.kubectl(&["delete", "pod", victim, "-n", ns, "--wait=false"]);
    assert_eq!(out.stdout, format!("pod \"{victim}\" deleted\n"), "{out}");
    let again = b.wait_running(ns, "app=pagweb", 3, "pagweb after delete");
    assert!(again.iter().all(|p| &p.name != victim), "{again:#?}");
    eprintln!("pagweb: replacement Running {:?} after delete", t.elapsed());
    let fresh = again
        .iter()
        .find(|p| pods.iter().all(|o| o.name != p.name))
        .expect("a new pod");
    let page = b.wget_from(node_index(&fresh.node), &format!("http://{}/", fresh.ip));
    assert_eq!(page.stdout, format!("{}\n", fresh.name), "{page}");

    // Scale to 10.
    let t = Instant::now();
    let out = b.kubectl(&["scale", "deploy", "pagweb", "--replicas=10", "-n", ns]);
    assert_eq!(out.stdout, "deployment.apps/pagweb scaled\n", "{out}");
    let ten = b.wait_running(ns, "app=pagweb", 10, "pagweb x10");
    eprintln!("pagweb: 10 Running {:?} after scale", t.elapsed());
    let ips: std::collections::BTreeSet<&str> = ten.iter().map(|p| p.ip.as_str()).collect();
    assert_eq!(ips.len(), 10, "pod IPs not unique: {ten:#?}");
    let out = b.kubectl(&["get", "deploy", "pagweb", "-n", ns]);
    let rows = parse_table(out.stdout.trim_end());
    assert_eq!(rows[1][1], "10/10", "{out}");
    let _ = b.kubectl(&["delete", "namespace", ns, "--wait=false"]);
}

#[test]
fn statefulset_volume_outlives_its_pod() {
    let Some(b) = bed() else { return };
    let _g = b.agent_restart.read().unwrap_or_else(|e| e.into_inner());
    let ns = "state";
    b.namespace(ns);
    // Each start appends a line to the volume and serves the whole file.
    let sts = format!(
        r#"{{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{{"name":"db"}},
"spec":{{"serviceName":"db","replicas":1,"selector":{{"matchLabels":{{"app":"db"}}}},
"template":{{"metadata":{{"labels":{{"app":"db"}}}},"spec":{{{GRACE},"containers":[{{"name":"db","image":"nginx:1.27",
"command":["sh","-c","echo start-$(date +%s%N) >> /data/log && cp /data/log /www/index.html && exec httpd -f -p 80 -h /www"],
"volumeMounts":[{{"name":"data","mountPath":"/data"}}]}}]}}}},
"volumeClaimTemplates":[{{"metadata":{{"name":"data"}},"spec":{{"accessModes":["ReadWriteOnce"],"storageClassName":"local-path","resources":{{"requests":{{"storage":"16Mi"}}}}}}}}]}}}}"#
    );
    let out = b.kubectl_stdin(&["apply", "-f", "-", "-n", ns], &sts);
    assert_eq!(out.stdout, "statefulset.apps/db created\n", "{out}");
    let first = b.wait_running(ns, "app=db", 1, "db-0");
    let p = &first[0];
    assert_eq!(p.name, "db-0");
    let page1 = b.wget_from(node_index(&p.node), &format!("http://{}/", p.ip));
    assert_eq!(page1.code, 0, "{page1}");
    assert_eq!(page1.stdout.lines().count(), 1, "{page1}");
    assert!(page1.stdout.starts_with("start-"), "{page1}");
    let out = b.kubectl(&[
        "get",
        "pvc",
        "data-db-0",
        "-n",
        ns,
        "-o",
        "jsonpath={.status.phase}",
    ]);
    assert_eq!(out.stdout, "Bound", "{out}");

    let out = b.kubectl(&["delete", "pod", "db-0", "-n", ns]);
    assert_eq!(out.stdout, "pod \"db-0\" deleted\n", "{out}");
    let second = b.wait_running(ns, "app=db", 1, "db-0 again");
    let q = &second[0];
    assert_eq!(q.node, p.node, "a local-path volume pins db-0 to its node");
    let page2 = b.wget_from(node_index(&q.node), &format!("http://{}/", q.ip));
    let lines: Vec<&str> = page2.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{page2}");
    assert_eq!(lines[0], page1.stdout.trim_end(), "{page2}");
    let _ = b.kubectl(&["delete", "namespace", ns, "--wait=false"]);
}

fn pod_json(name: &str, spec: &str) -> String {
    format!(r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{spec}}}"#)
}

/// Polls `kubectl get pod NAME` (the default table) until `f(row)` holds.
fn wait_pod_row(
    b: &Bed,
    ns: &str,
    name: &str,
    timeout: Duration,
    what: &str,
    f: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, String> {
    let start = Instant::now();
    loop {
        let out = b.kubectl(&["get", "pod", name, "-n", ns]);
        let rows = parse_table(out.stdout.trim_end());
        if rows.len() == 2 {
            let row: BTreeMap<String, String> = rows[0]
                .iter()
                .cloned()
                .zip(rows[1].iter().cloned())
                .collect();
            if f(&row) {
                eprintln!("{name}: {what} after {:?}: {row:?}", start.elapsed());
                return row;
            }
        }
        assert!(
            start.elapsed() < timeout,
            "{name}: not {what} within {timeout:?}:\n{out}\n{}",
            b.logs()
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// The leading number of a RESTARTS cell (`3 (5s ago)` → 3).
fn restarts(row: &BTreeMap<String, String>) -> u32 {
    row["RESTARTS"]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn crashes_probes_and_graceful_stop() {
    let Some(b) = bed() else { return };
    let _g = b.agent_restart.read().unwrap_or_else(|e| e.into_inner());
    let ns = "life";
    b.namespace(ns);
    let marker_dir = b.net.dir().join("prestop");
    let pods = [
        pod_json(
            "crash",
            &format!(
                r#"{{{GRACE},"containers":[{{"name":"c","image":"busybox:1.36","command":["sh","-c","exit 1"]}}]}}"#
            ),
        ),
        pod_json(
            "unready",
            &format!(
                r#"{{{GRACE},"containers":[{{"name":"c","image":"nginx:1.27",
"readinessProbe":{{"httpGet":{{"path":"/","port":81}},"periodSeconds":1,"failureThreshold":1}}}}]}}"#
            ),
        ),
        pod_json(
            "unlive",
            &format!(
                r#"{{{GRACE},"containers":[{{"name":"c","image":"busybox:1.36","command":["sleep","3600"],
"livenessProbe":{{"exec":{{"command":["false"]}},"periodSeconds":1,"failureThreshold":2}}}}]}}"#
            ),
        ),
        pod_json(
            "graceful",
            &format!(
                r#"{{"terminationGracePeriodSeconds":6,"containers":[{{"name":"c","image":"busybox:1.36",
"command":["sh","-c","trap '' TERM; while true; do sleep 1; done"],
"lifecycle":{{"preStop":{{"exec":{{"command":["sh","-c","echo prestop-ran > /marker/$(hostname)"]}}}}}},
"volumeMounts":[{{"name":"m","mountPath":"/marker"}}]}}],
"volumes":[{{"name":"m","hostPath":{{"path":"{}","type":"DirectoryOrCreate"}}}}]}}"#,
                marker_dir.display()
            ),
        ),
    ];
    for p in &pods {
        let out = b.kubectl_stdin(&["create", "-f", "-", "-n", ns], p);
        assert_eq!(out.code, 0, "{out}");
    }
    let long = Duration::from_secs(90);
    let crash = wait_pod_row(b, ns, "crash", long, "CrashLoopBackOff", |r| {
        r["STATUS"] == "CrashLoopBackOff" && restarts(r) >= 1
    });
    let first = restarts(&crash);
    wait_pod_row(b, ns, "crash", long, "restarting again", |r| {
        restarts(r) > first
    });

    let unlive = wait_pod_row(b, ns, "unlive", long, "restarted by liveness", |r| {
        restarts(r) >= 1
    });
    assert_ne!(unlive["STATUS"], "Pending", "{unlive:?}");

    let unready = wait_pod_row(b, ns, "unready", long, "Running", |r| {
        r["STATUS"] == "Running"
    });
    assert_eq!(unready["READY"], "0/1", "{unready:?}");
    // Still not ready after many probe periods, and never restarted (readiness does not kill).
    thread::sleep(Duration::from_secs(5));
    let unready = wait_pod_row(b, ns, "unready", long, "Running", |r| {
        r["STATUS"] == "Running"
    });
    assert_eq!(unready["READY"], "0/1", "{unready:?}");
    assert_eq!(restarts(&unready), 0, "{unready:?}");

    wait_pod_row(b, ns, "graceful", long, "Running", |r| {
        r["STATUS"] == "Running" && r["READY"] == "1/1"
    });
    let t = Instant::now();
    let out = b.kubectl(&["delete", "pod", "graceful", "-n", ns, "--timeout=60s"]);
    let took = t.elapsed();
    eprintln!("graceful: deleted in {took:?} (grace 6 s, SIGTERM ignored)");
    assert_eq!(out.stdout, "pod \"graceful\" deleted\n", "{out}");
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(30),
        "a SIGTERM-ignoring container with a 6 s grace period went in {took:?}"
    );
    let marker = std::fs::read_to_string(marker_dir.join("graceful")).unwrap_or_default();
    assert_eq!(
        marker, "prestop-ran\n",
        "the preStop hook did not write its marker"
    );
    let _ = b.kubectl(&["delete", "namespace", ns, "--wait=false"]);
}

#[test]
fn agent_restart_adopts_running_pods() {
    let Some(b) = bed() else { return };
    let _g = b.agent_restart.write().unwrap_or_else(|e| e.into_inner());
    let ns = "adopt";
    b.namespace(ns);
    let keep = format!(
        r#"{{"apiVersion":"apps/v1","kind":"Deployment","metadata":{{"name":"keep"}},
"spec":{{"replicas":2,"selector":{{"matchLabels":{{"app":"keep"}}}},
"template":{{"metadata":{{"labels":{{"app":"keep"}}}},"spec":{{{GRACE},"nodeSelector":{{"kubernetes.io/hostname":"n2"}},
"containers":[{{"name":"c","image":"busybox:1.36","command":["sleep","3600"]}}]}}}}}}}}"#
    );
    let out = b.kubectl_stdin(&["create", "-f", "-", "-n", ns], &keep);
    assert_eq!(out.stdout, "deployment.apps/keep created\n", "{out}");
    let ids = || {
        let out = b.kubectl(&[
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            "app=keep",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.status.containerStatuses[0].containerID}={.status.containerStatuses[0].restartCount}={.spec.nodeName}{\"\\n\"}{end}",
        ]);
        assert_eq!(out.code, 0, "{out}");
        out.stdout
    };
    let start = Instant::now();
    let before = loop {
        let pods = pods_in(b, ns, "app=keep");
        let s = ids();
        if pods.len() == 2
            && pods
                .iter()
                .all(|p| p.phase == "Running" && p.node == "n2" && !p.deleting)
            && s.lines().all(|l| l.contains("=containerd://"))
        {
            break s;
        }
        assert!(
            start.elapsed() < PODS_RUNNING,
            "keep pods not Running on n2:\n{s}\n{}",
            b.logs()
        );
        thread::sleep(Duration::from_millis(250));
    };
    eprintln!("adopt: before the restart:\n{before}");

    let mut agents = b.agents.lock().unwrap_or_else(|e| e.into_inner());
    let old = agents.get_mut(&2).expect("agent n2");
    old.kill_9();
    let t = Instant::now();
    let new = b.spawn_agent(2);
    agents.insert(2, new);
    drop(agents);

    // The new agent is working once it runs a new pod on n2.
    let probe = pod_json(
        "probe",
        &format!(
            r#"{{{GRACE},"nodeName":"n2","containers":[{{"name":"c","image":"busybox:1.36","command":["sleep","3600"]}}]}}"#
        ),
    );
    let out = b.kubectl_stdin(&["create", "-f", "-", "-n", ns], &probe);
    assert_eq!(out.code, 0, "{out}");
    wait_pod_row(
        b,
        ns,
        "probe",
        PODS_RUNNING,
        "Running on the restarted n2",
        |r| r["STATUS"] == "Running" && r["READY"] == "1/1",
    );
    eprintln!(
        "adopt: restarted agent runs new pods {:?} after the kill",
        t.elapsed()
    );
    let after = ids();
    assert_eq!(
        after, before,
        "the restarted agent did not adopt the running containers"
    );
    for l in after.lines() {
        assert!(l.contains("=0=n2"), "RESTARTS not 0: {l}");
    }
    let _ = b.kubectl(&["delete", "namespace", ns, "--wait=false"]);
}

/// Polls `kubectl get node NAME -o jsonpath=…` until `f(output)` holds.
fn wait_node_jsonpath(b: &Bed, node: &str, path: &str, what: &str, f: impl Fn(&str) -> bool) {
    let start = Instant::now();
    loop {
        let out = b.kubectl(&["get", "node", node, "-o", &format!("jsonpath={path}")]);
        if out.code == 0 && f(&out.stdout) {
            eprintln!("{node}: {what} after {:?}: {}", start.elapsed(), out.stdout);
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{node}: not {what} within 60 s:\n{out}\n{}",
            b.logs()
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// Hard eviction: n3's agent restarted with `--kubelet-arg eviction-hard=memory.available<1Ti`
/// (always crossed on this machine) reports MemoryPressure, gets the memory-pressure taint
/// from the node lifecycle controller, and evicts a pod bound to it with upstream's status,
/// message and event; restarted without the flag, the node recovers.
#[test]
fn memory_pressure_evicts_pods() {
    let Some(b) = bed() else { return };
    let _g = b.agent_restart.write().unwrap_or_else(|e| e.into_inner());
    let ns = "evict";
    b.namespace(ns);
    b.restart_agent_with(3, &["--kubelet-arg", "eviction-hard=memory.available<1Ti"]);
    wait_node_jsonpath(
        b,
        "n3",
        "{.status.conditions[?(@.type==\"MemoryPressure\")].status} {.spec.taints[*].key}",
        "under memory pressure and tainted",
        |s| s.starts_with("True ") && s.contains("node.kubernetes.io/memory-pressure"),
    );
    let hog = pod_json(
        "hog",
        &format!(
            r#"{{{GRACE},"nodeName":"n3","tolerations":[{{"key":"node.kubernetes.io/memory-pressure","operator":"Exists","effect":"NoSchedule"}}],"containers":[{{"name":"c","image":"busybox:1.36","command":["sleep","3600"]}}]}}"#
        ),
    );
    let out = b.kubectl_stdin(&["create", "-f", "-", "-n", ns], &hog);
    assert_eq!(out.stdout, "pod/hog created\n", "{out}");
    let start = Instant::now();
    loop {
        let out = b.kubectl(&[
            "get",
            "pod",
            "hog",
            "-n",
            ns,
            "-o",
            "jsonpath={.status.phase}/{.status.reason}",
        ]);
        if out.stdout == "Failed/Evicted" {
            eprintln!("hog: evicted after {:?}", start.elapsed());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "hog not evicted within 60 s:\n{out}\n{}",
            b.logs()
        );
        thread::sleep(Duration::from_millis(250));
    }
    let out = b.kubectl(&[
        "get",
        "pod",
        "hog",
        "-n",
        ns,
        "-o",
        "jsonpath={.status.phase}|{.status.reason}|{.status.message}|{.status.conditions[?(@.type==\"DisruptionTarget\")].reason}",
    ]);
    let parts: Vec<&str> = out.stdout.split('|').collect();
    assert_eq!(parts.len(), 4, "{out}");
    assert_eq!(parts[0], "Failed", "{out}");
    assert_eq!(parts[1], "Evicted", "{out}");
    assert!(
        parts[2].starts_with(
            "The node was low on resource: memory. Threshold quantity: 1Ti, available: "
        ),
        "{out}"
    );
    assert_eq!(parts[3], "TerminationByKubelet", "{out}");
    let start = Instant::now();
    loop {
        let out = b.kubectl(&[
            "get",
            "events",
            "-n",
            ns,
            "--field-selector",
            "involvedObject.name=hog,reason=Evicted",
            "-o",
            "jsonpath={.items[*].type}",
        ]);
        if out.stdout == "Warning" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no Evicted event for hog:\n{out}"
        );
        thread::sleep(Duration::from_millis(250));
    }
    // Its container is stopped and not restarted.
    thread::sleep(Duration::from_secs(3));
    let row = wait_pod_row(b, ns, "hog", Duration::from_secs(5), "stopped", |r| {
        r["READY"] == "0/1" && r["RESTARTS"] == "0"
    });
    eprintln!("hog after the eviction: {row:?}");

    b.restart_agent_with(3, &[]);
    wait_node_jsonpath(
        b,
        "n3",
        "{.status.conditions[?(@.type==\"MemoryPressure\")].status} {.spec.taints[*].key}",
        "recovered",
        |s| s.starts_with("False") && !s.contains("memory-pressure"),
    );
    let _ = b.kubectl(&["delete", "namespace", ns, "--wait=false"]);
}

/// The bed itself, without skiff: Debian's containerd started by hand in node 1's namespaces
/// pulls `nginx:1.27` through a docker.io mirror to the test registry and runs it; node 2
/// reaches the page over the switch. Also checks that the node namespaces are isolated.
#[test]
fn bed_containerd_pulls_through_the_mirror() {
    if !netns::bed_enabled() {
        loud_skip("bed test");
        return;
    }
    let t0 = Instant::now();
    let net = TestNet::create(2).unwrap_or_else(|e| panic!("{e}"));
    let _registry = net.start_registry().unwrap_or_else(|e| panic!("{e}"));
    net.push_images(&[ImageSpec::nginx(), ImageSpec::busybox()])
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "bed: network, registry, images pushed in {:?}",
        t0.elapsed()
    );

    // No default route, and the documentation range only.
    let routes = net.run_in(1, &["ip", "route"]);
    assert_eq!(
        routes.stdout, "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.1 \n",
        "{routes}"
    );
    // /run is private per node: a file made in node 1 is invisible in node 2 and the host.
    let probe = format!("/run/skiffe2e-probe-{}", std::process::id());
    net.run_in(1, &["touch", &probe]).success();
    assert_eq!(net.run_in(2, &["test", "-e", &probe]).code, 1);
    assert!(!std::path::Path::new(&probe).exists());
    // /sys shows the node's own interfaces.
    let ifs = net.run_in(1, &["ls", "/sys/class/net"]);
    assert_eq!(ifs.stdout, "eth0\nlo\n", "{ifs}");

    let d = net.dir().join("ctrd");
    let certs = d.join("certs.d/docker.io");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(
        certs.join("hosts.toml"),
        images::hosts_toml(&format!("http://{REGISTRY}")),
    )
    .unwrap();
    let sock = d.join("containerd.sock").display().to_string();
    let config = format!(
        "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n[grpc]\n  address = \"{sock}\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\"]\n  restrict_oom_score_adj = true\n\
         [plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"{certs}\"\n",
        root = d.join("root").display(),
        state = d.join("state").display(),
        certs = d.join("certs.d").display(),
    );
    std::fs::write(d.join("config.toml"), config).unwrap();
    let cfg = d.join("config.toml").display().to_string();
    let mut ctrd = net.spawn_in(1, "containerd", &["containerd", "--config", &cfg]);
    wait_for(Duration::from_secs(30), "containerd's socket", || {
        assert!(
            ctrd.exit_code().is_none(),
            "containerd exited:\n{}",
            ctrd.log()
        );
        (net.run_in(1, &["ctr", "-a", &sock, "version"]).code == 0).then_some(())
    });
    let t = Instant::now();
    let hosts = d.join("certs.d").display().to_string();
    let pull = net.run_in(
        1,
        &[
            "ctr",
            "-a",
            &sock,
            "-n",
            "k8s.io",
            "images",
            "pull",
            "--hosts-dir",
            &hosts,
            "docker.io/library/nginx:1.27",
        ],
    );
    assert_eq!(pull.code, 0, "{pull}");
    eprintln!(
        "bed: ctr pulled nginx:1.27 through the mirror in {:?}",
        t.elapsed()
    );
    let ls = net.run_in(
        1,
        &["ctr", "-a", &sock, "-n", "k8s.io", "images", "ls", "-q"],
    );
    assert!(
        ls.stdout
            .lines()
            .any(|l| l == "docker.io/library/nginx:1.27"),
        "{ls}"
    );

    // Run it on node 1's network and fetch the page from node 2 across the switch.
    let run = net.run_in(
        1,
        &[
            "ctr",
            "-a",
            &sock,
            "-n",
            "k8s.io",
            "run",
            "-d",
            "--net-host",
            "docker.io/library/nginx:1.27",
            "web",
        ],
    );
    assert_eq!(run.code, 0, "{run}");
    let page = wait_for(Duration::from_secs(20), "the web page from node 2", || {
        let out = net.run_in(
            2,
            &[
                "timeout",
                "5",
                "busybox",
                "wget",
                "-qO-",
                &format!("http://{}/", node_ip(1)),
            ],
        );
        (out.code == 0).then_some(out.stdout)
    });
    let hostname = net.run_in(1, &["hostname"]).stdout;
    assert_eq!(page, hostname, "the page is the container's hostname");
    // The switch reaches the node too, and nothing reaches outside the test range.
    assert_eq!(
        net.run_in(SWITCH, &["busybox", "ping", "-c1", "-W1", &node_ip(2)])
            .code,
        0
    );
    let out = net.run_in(
        1,
        &[
            "timeout",
            "5",
            "busybox",
            "wget",
            "-qO-",
            "http://198.51.100.1/",
        ],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("unreachable"), "{out}");
    ctrd.kill_group();
    eprintln!("bed: whole check in {:?}", t0.elapsed());
}

#[test]
fn token_edits_keep_their_shape() {
    let t = "K10abc::server:secret";
    assert_eq!(with_ca_hash(t, "ff"), "K10ff::server:secret");
    assert_eq!(with_password(t, "x"), "K10abc::server:x");
    assert_eq!(node_index("n3"), 3);
    let row: BTreeMap<String, String> = [("RESTARTS".to_string(), "3 (5s ago)".to_string())]
        .into_iter()
        .collect();
    assert_eq!(restarts(&row), 3);
}
