//! Several servers on one external datastore, run once on PostgreSQL and once on etcd: a
//! throwaway PostgreSQL (or etcd) in the test network's switch namespace, two
//! `skiff server --datastore-endpoint …` in node namespaces 1 and 2, hollow nodes in namespace 3 joined through server 1 with the client-side load
//! balancer. Checks: both servers serve the same objects and the same CA (one kubeconfig works
//! against both), a watch on one server sees writes made through the other, `kill -9` of the
//! leader hands the controllers and the scheduler to the other within the lease duration, a
//! Deployment scaled during the outage converges, the hollow nodes keep reporting through the
//! surviving server, no acknowledged write is lost, and a server with another token is refused.

use skiff_e2e::netns::{self, node_ip, NsProcess, TestNet, SWITCH, SWITCH_IP};
use skiff_e2e::{skiff_bin, tail, wait_for, Output, COMMAND_TIMEOUT};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TOKEN: &str = "ha-e2e-shared-secret";
const PG_PORT: u16 = 5432;
/// Short lease timing so the takeover fits the test's budget; the default is 15 s / 10 s / 2 s.
const LEASE: &[&str] = &[
    "--leader-elect-lease-duration",
    "8s",
    "--leader-elect-renew-deadline",
    "5s",
    "--leader-elect-retry-period",
    "1s",
];

/// PostgreSQL run by the `postgres` user in the switch namespace, listening on the switch IP.
struct Postgres {
    _proc: NsProcess,
    password: String,
}

fn pg_bin() -> PathBuf {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: apt-get install postgresql")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort();
    let v = versions
        .last()
        .expect("no /usr/lib/postgresql/<version>: apt-get install postgresql");
    PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"))
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    fn start(net: &TestNet) -> Postgres {
        let bin = pg_bin();
        let root = net.dir().join("pg");
        std::fs::create_dir_all(&root).unwrap();
        let password = format!("pw{}", std::process::id());
        std::fs::write(root.join("pwfile"), format!("{password}\n")).unwrap();
        run_ok(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&root),
            "chown",
        );
        let data = root.join("data");
        run_ok(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", "skiff", "--pwfile"])
                .arg(root.join("pwfile"))
                .args([
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "--no-locale",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ])
                .current_dir(&root),
            "initdb",
        );
        let hba = data.join("pg_hba.conf");
        let mut text = std::fs::read_to_string(&hba).unwrap();
        text.push_str("host all all 192.0.2.0/24 scram-sha-256\n");
        std::fs::write(&hba, text).unwrap();
        let postgres = bin.join("postgres").display().to_string();
        let data_s = data.display().to_string();
        let root_s = root.display().to_string();
        let port = PG_PORT.to_string();
        let listen = format!("listen_addresses={SWITCH_IP}");
        let mut cmd = net.command_in(
            SWITCH,
            &[
                "runuser",
                "-u",
                "postgres",
                "--",
                &postgres,
                "-D",
                &data_s,
                "-p",
                &port,
                "-k",
                &root_s,
                "-c",
                &listen,
                "-c",
                "max_connections=200",
                "-c",
                "fsync=off",
            ],
        );
        cmd.current_dir(&root);
        let proc = net.spawn_cmd(cmd, "postgres");
        let probe = format!("exec 3<>/dev/tcp/{SWITCH_IP}/{PG_PORT}");
        wait_for(Duration::from_secs(30), "PostgreSQL to listen", || {
            (net.run_in(3, &["bash", "-c", &probe]).code == 0).then_some(())
        });
        Postgres {
            _proc: proc,
            password,
        }
    }

    fn url(&self) -> String {
        format!(
            "postgres://skiff:{}@{SWITCH_IP}:{PG_PORT}/postgres",
            self.password
        )
    }
}

fn server_args(net: &TestNet, i: usize, url: &str, token: &str) -> Vec<String> {
    let dir = |n: &str| net.dir().join(n).display().to_string();
    let mut args: Vec<String> = vec![
        skiff_bin().display().to_string(),
        "server".into(),
        "--config".into(),
        dir("no-config.yaml"),
        "--data-dir".into(),
        dir(&format!("n{i}")),
        "--node-name".into(),
        format!("n{i}"),
        "--node-ip".into(),
        node_ip(i),
        "--advertise-address".into(),
        node_ip(i),
        "--disable-agent".into(),
        "--write-kubeconfig".into(),
        dir(&format!("kubeconfig-{i}")),
        "--token".into(),
        token.into(),
        "--datastore-endpoint".into(),
        url.into(),
    ];
    args.extend(LEASE.iter().map(|s| s.to_string()));
    args
}

fn start_server(net: &TestNet, i: usize, url: &str) -> NsProcess {
    let args = server_args(net, i, url, TOKEN);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = net.spawn_in(i, &format!("server-{i}"), &refs);
    wait_for(
        Duration::from_secs(60),
        &format!("server {i}'s readyz"),
        || {
            if let Some(code) = p.exit_code() {
                panic!("server {i} exited {code}:\n{}", tail(&p.log(), 40));
            }
            let out = net.run_in(
                i,
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
            // The server answers /readyz as soon as it listens and writes its kubeconfig
            // (atomically) just after: wait for both, or a loaded machine reads no file.
            let kubeconfig = net.dir().join(format!("kubeconfig-{i}"));
            (out.stdout.trim() == "200" && kubeconfig.exists()).then_some(())
        },
    );
    p
}

/// kubectl in namespace 3 with server 1's kubeconfig, pointed at server `i`.
fn kubectl_cmd(net: &TestNet, i: usize, args: &[&str]) -> Command {
    let server = format!("--server=https://{}:6443", node_ip(i));
    let mut all = vec!["kubectl", &server];
    all.extend_from_slice(args);
    let mut c = net.command_in(3, &all);
    c.env("KUBECONFIG", net.dir().join("kubeconfig-1"))
        .env("KUBECACHEDIR", net.dir().join(format!("kcache-{i}")))
        .env("HOME", net.dir().join("home"));
    c
}

fn kubectl(net: &TestNet, i: usize, args: &[&str]) -> Output {
    net.run(kubectl_cmd(net, i, args), COMMAND_TIMEOUT)
}

fn lease_holder(net: &TestNet, via: usize, lease: &str) -> String {
    kubectl(
        net,
        via,
        &[
            "get",
            "lease",
            "-n",
            "kube-system",
            lease,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
    )
    .stdout
    .trim()
    .to_string()
}

/// A `kubectl get -w` whose lines arrive on a channel; killed on drop.
struct Watch {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Watch {
    fn start(net: &TestNet, via: usize, args: &[&str]) -> Watch {
        let mut child = kubectl_cmd(net, via, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Watch { child, lines }
    }

    fn expect(&self, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(want) => return,
                Ok(l) => seen.push(l),
                Err(_) => break,
            }
        }
        panic!("the watch did not show {want:?} within {timeout:?}; it showed {seen:?}");
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn logs(net: &TestNet) -> String {
    let mut s = String::new();
    for name in ["server-1", "server-2", "hollow", "postgres", "etcd"] {
        let text =
            std::fs::read_to_string(net.dir().join(format!("{name}.log"))).unwrap_or_default();
        s.push_str(&format!("--- {name} log tail ---\n{}\n", tail(&text, 25)));
    }
    s
}

/// The addresses of `default/kubernetes` Endpoints, as kubectl prints them.
fn kubernetes_endpoints(net: &TestNet, via: usize) -> String {
    let path = "jsonpath={.subsets[*].addresses[*].ip}";
    kubectl(net, via, &["get", "endpoints", "kubernetes", "-o", path]).stdout
}

/// The addresses of `default/kubernetes` EndpointSlice, as kubectl prints them.
fn kubernetes_slice(net: &TestNet, via: usize) -> String {
    let path = "jsonpath={.endpoints[*].addresses[*]}";
    kubectl(
        net,
        via,
        &["get", "endpointslice", "kubernetes", "-o", path],
    )
    .stdout
}

fn ready_replicas(net: &TestNet, via: usize) -> String {
    kubectl(
        net,
        via,
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
    )
    .stdout
    .trim()
    .to_string()
}

fn kubeconfig_ca(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data:"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// etcd (Debian's etcd-server) in the switch namespace, listening on the switch IP.
fn start_etcd(net: &TestNet) -> NsProcess {
    let data = net.dir().join("etcd");
    let data_s = data.display().to_string();
    let client = format!("http://{SWITCH_IP}:2379");
    let proc = net.spawn_in(
        SWITCH,
        "etcd",
        &[
            "etcd",
            "--name",
            "ha",
            "--data-dir",
            &data_s,
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
            "--listen-peer-urls",
            "http://127.0.0.1:2380",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:2380",
            "--initial-cluster",
            "ha=http://127.0.0.1:2380",
        ],
    );
    let probe = format!("exec 3<>/dev/tcp/{SWITCH_IP}/2379");
    wait_for(Duration::from_secs(30), "etcd to listen", || {
        (net.run_in(3, &["bash", "-c", &probe]).code == 0).then_some(())
    });
    proc
}

#[test]
fn two_servers_on_postgres_share_state_and_fail_over() {
    if !netns::bed_enabled() {
        eprintln!("\n*** skiff-e2e ha tests SKIPPED: SKIFF_E2E_NODES=0 ***\n");
        return;
    }
    two_servers("postgres");
}

#[test]
fn two_servers_on_etcd_share_state_and_fail_over() {
    if !netns::bed_enabled() {
        eprintln!("\n*** skiff-e2e ha tests SKIPPED: SKIFF_E2E_NODES=0 ***\n");
        return;
    }
    two_servers("etcd");
}

fn two_servers(engine: &str) {
    assert!(
        skiff_bin().is_file(),
        "skiff binary {} not found: build it first with `cargo build -p skiff`",
        skiff_bin().display()
    );
    let t0 = Instant::now();
    let net = TestNet::create(4).unwrap_or_else(|e| panic!("{e}"));
    for sub in ["home", "n1", "n2", "n3", "n4"] {
        std::fs::create_dir_all(net.dir().join(sub)).unwrap();
    }
    let (_datastore, url): (Box<dyn std::any::Any>, String) = match engine {
        "postgres" => {
            let pg = Postgres::start(&net);
            let url = pg.url();
            (Box::new(pg), url)
        }
        _ => (
            Box::new(start_etcd(&net)),
            format!("http://{SWITCH_IP}:2379"),
        ),
    };
    let mut s1 = start_server(&net, 1, &url);
    let s2 = start_server(&net, 2, &url);
    eprintln!(
        "ha {engine}: datastore and two servers up in {:?}",
        t0.elapsed()
    );

    // One CA: server 2 fetched server 1's, so kubeconfigs are interchangeable.
    let ca1 = kubeconfig_ca(&net.dir().join("kubeconfig-1"));
    assert!(!ca1.is_empty());
    assert_eq!(ca1, kubeconfig_ca(&net.dir().join("kubeconfig-2")));
    for i in [1, 2] {
        kubectl(&net, i, &["get", "ns", "kube-system"]).success();
    }

    // Server 1 started first: it holds both leases.
    let holder = wait_for(Duration::from_secs(20), "the controllers lease", || {
        Some(lease_holder(&net, 2, "skiff-controllers")).filter(|h| !h.is_empty())
    });
    assert!(
        s1.log().contains(&holder),
        "server 1 should lead ({holder}):\n{}",
        logs(&net)
    );
    let sched = lease_holder(&net, 2, "skiff-scheduler");
    assert!(s1.log().contains(&sched), "{sched}\n{}", logs(&net));

    // Hollow nodes joined through server 1, with the load balancer.
    let hollow_args = [
        skiff_bin().display().to_string(),
        "hollow".into(),
        "--nodes".into(),
        "2".into(),
        "--server".into(),
        format!("https://{}:6443", node_ip(1)),
        "--token".into(),
        TOKEN.into(),
        "--apiserver-lb".into(),
    ];
    let refs: Vec<&str> = hollow_args.iter().map(String::as_str).collect();
    let hollow = net.spawn_in(3, "hollow", &refs);
    let ready = "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}";
    wait_for(Duration::from_secs(60), "2 Ready hollow nodes", || {
        let out = kubectl(&net, 2, &["get", "nodes", "-o", ready]);
        (out.stdout.lines().filter(|l| l.ends_with("=True")).count() == 2).then_some(())
    });
    // The balancer learned server 2 from /v1-skiff/apiservers.
    let second = format!("{}:6443", node_ip(2));
    wait_for(
        Duration::from_secs(30),
        "the hollow nodes to learn server 2",
        || hollow.log().contains(&second).then_some(()),
    );

    // The `kubernetes` Service's endpoints list both servers (pods reach either).
    let both = format!("{} {}", node_ip(1), node_ip(2));
    wait_for(
        Duration::from_secs(30),
        "the kubernetes endpoints to list both servers",
        || (kubernetes_endpoints(&net, 1) == both).then_some(()),
    );
    assert_eq!(kubernetes_slice(&net, 2), both);

    // A watch on server 2 sees writes made through server 1, and the other way round.
    let watch2 = Watch::start(&net, 2, &["get", "configmaps", "-w", "-o", "name"]);
    let watch1 = Watch::start(&net, 1, &["get", "configmaps", "-w", "-o", "name"]);
    std::thread::sleep(Duration::from_secs(2));
    kubectl(&net, 1, &["create", "configmap", "via-one"]).success();
    kubectl(&net, 2, &["create", "configmap", "via-two"]).success();
    watch2.expect("configmap/via-one", Duration::from_secs(15));
    watch1.expect("configmap/via-two", Duration::from_secs(15));
    drop((watch1, watch2));

    // Acknowledged writes through both servers.
    let mut acked = Vec::new();
    for k in 0..10 {
        let name = format!("acked-{k}");
        let via = 1 + k % 2;
        kubectl(
            &net,
            via,
            &["create", "configmap", &name, "--from-literal=k=v"],
        )
        .success();
        acked.push(name);
    }

    kubectl(
        &net,
        2,
        &[
            "create",
            "deployment",
            "web",
            "--image=registry.invalid/web:1",
            "--replicas=2",
        ],
    )
    .success();
    wait_for(Duration::from_secs(60), "2 ready web replicas", || {
        (ready_replicas(&net, 2) == "2").then_some(())
    });

    // kill -9 the leader (server 1, the hollow nodes' registration server).
    let node_lease_before = kubectl(
        &net,
        2,
        &[
            "get",
            "lease",
            "-n",
            "kube-node-lease",
            "hollow-0",
            "-o",
            "jsonpath={.spec.renewTime}",
        ],
    )
    .stdout;
    s1.kill_9();
    let killed = Instant::now();
    kubectl(&net, 2, &["scale", "deployment", "web", "--replicas=4"]).success();
    let new_holder = wait_for(
        Duration::from_secs(20),
        "server 2 to take the controllers lease",
        || {
            let h = lease_holder(&net, 2, "skiff-controllers");
            (h != holder && !h.is_empty()).then_some(h)
        },
    );
    let took = killed.elapsed();
    assert!(
        s2.log().contains(&new_holder),
        "{new_holder}\n{}",
        logs(&net)
    );
    wait_for(
        Duration::from_secs(20),
        "server 2 to take the scheduler lease",
        || {
            let h = lease_holder(&net, 2, "skiff-scheduler");
            (h != sched && s2.log().contains(&h)).then_some(())
        },
    );
    assert!(
        took <= Duration::from_secs(15),
        "takeover took {took:?}:\n{}",
        logs(&net)
    );
    eprintln!("ha {engine}: server 2 leads {took:?} after kill -9 of server 1");
    wait_for(
        Duration::from_secs(60),
        "4 ready web replicas after the failover",
        || (ready_replicas(&net, 2) == "4").then_some(()),
    );

    // The hollow nodes report through server 2: their lease is renewed and they stay Ready.
    wait_for(
        Duration::from_secs(30),
        "hollow-0's lease renewed through server 2",
        || {
            let now = kubectl(
                &net,
                2,
                &[
                    "get",
                    "lease",
                    "-n",
                    "kube-node-lease",
                    "hollow-0",
                    "-o",
                    "jsonpath={.spec.renewTime}",
                ],
            )
            .stdout;
            (!now.is_empty() && now != node_lease_before).then_some(())
        },
    );
    let out = kubectl(&net, 2, &["get", "nodes", "-o", ready]);
    assert_eq!(
        out.stdout.lines().filter(|l| l.ends_with("=True")).count(),
        2,
        "{out}\n{}",
        logs(&net)
    );

    // Server 1's address leaves the kubernetes endpoints once its heartbeat is stale.
    let only_two = node_ip(2);
    wait_for(
        Duration::from_secs(40),
        "the kubernetes endpoints to drop server 1",
        || (kubernetes_endpoints(&net, 2) == only_two).then_some(()),
    );
    assert_eq!(kubernetes_slice(&net, 2), only_two);

    // No acknowledged write is lost.
    let names = kubectl(&net, 2, &["get", "configmaps", "-o", "name"]).stdout;
    for name in &acked {
        assert!(
            names.contains(&format!("configmap/{name}")),
            "{name} lost:\n{names}"
        );
    }

    // A server with another token is refused.
    let bad = server_args(&net, 4, &url, "another-token");
    let refs: Vec<&str> = bad.iter().map(String::as_str).collect();
    let mut p = net.spawn_in(4, "server-wrong-token", &refs);
    let code = p.wait_exit(Duration::from_secs(30));
    assert!(
        matches!(code, Some(c) if c != 0),
        "a server with the wrong token kept running:\n{}",
        tail(&p.log(), 20)
    );
    assert!(
        p.log().contains("the token does not match the datastore's"),
        "{}",
        tail(&p.log(), 20)
    );
    eprintln!("ha {engine}: checked in {:?}", t0.elapsed());
}
