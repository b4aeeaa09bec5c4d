//! End-to-end: Services through skiff's service proxy and ServiceLB — the seeds' first two
//! steps. A `skiff server` (node netns 1) and two `skiff agent`s (2, 3) of a [`TestNet`] on the
//! VXLAN pod network: `kubectl create deployment pagweb --image=nginx:1.27`, scale 3, expose as
//! NodePort → 60 requests from a node netns to `<node IP>:<nodePort>` reach all 3 pods; the
//! ClusterIP answers from a pod; `kubectl delete pod` during a request loop → no failed request
//! once its endpoint is gone; a Service without endpoints refuses at once; a LoadBalancer
//! Service gets the nodes' addresses as EXTERNAL-IP and spreads requests to `<node>:8080`.
//!
//! Needs root and the Debian packages named in `skiff_e2e::netns::TOOLS`; `SKIFF_E2E_NODES=0`
//! skips it with a loud message.

use skiff_e2e::images::ImageSpec;
use skiff_e2e::multinode::{MultiNode, MultiNodeSpec};
use skiff_e2e::netns::{self, node_ip, SWITCH_IP};
use skiff_e2e::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

const TOKEN: &str = "services-secret";
/// Time for 3 nodes to be Ready, and for pods to run (images pulled through the mirror).
const READY: Duration = Duration::from_secs(120);
/// Time for a Service to carry traffic once its pods run.
const CONVERGE: Duration = Duration::from_secs(45);
/// How long after its endpoint left the EndpointSlice a deleted pod may still get a request
/// (the proxy's debounce plus one nft transaction).
const PROGRAMMING: Duration = Duration::from_secs(1);

struct Cluster(MultiNode);

impl std::ops::Deref for Cluster {
    type Target = MultiNode;
    fn deref(&self) -> &MultiNode {
        &self.0
    }
}

impl Cluster {
    /// `kubectl exec POD -- wget -qO- URL`, bounded (busybox's `wget -T` is unusable here).
    fn wget_in_pod(&self, pod: &str, url: &str) -> Output {
        let c = self.kubectl_cmd(&["exec", pod, "--", "wget", "-qO-", url]);
        self.net.run(c, Duration::from_secs(8))
    }

    /// `busybox wget -qO- URL` from node `node`'s netns.
    fn wget_from_node(&self, node: usize, url: &str) -> Output {
        self.net
            .run_in(node, &["timeout", "5", "busybox", "wget", "-qO-", url])
    }
}

/// A server and two agents on the VXLAN pod network.
fn start_cluster() -> Cluster {
    let spec = MultiNodeSpec {
        nodes: 3,
        token: TOKEN,
        images: &[ImageSpec::nginx()],
        ready: READY,
        label: "services",
    };
    Cluster(MultiNode::start(&spec, |_| Vec::new()))
}

/// The Running and Ready pods of `app=pagweb`: name → (IP, node), once there are `n`.
fn wait_pagweb(c: &Cluster, n: usize) -> BTreeMap<String, (String, String)> {
    let path = "{range .items[*]}{.metadata.name} {.status.podIP} {.spec.nodeName} {.status.phase} {.status.conditions[?(@.type==\"Ready\")].status} {.metadata.deletionTimestamp}{\"\\n\"}{end}";
    let start = Instant::now();
    loop {
        let out = c.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=pagweb",
            "-o",
            &format!("jsonpath={path}"),
        ]);
        let rows: BTreeMap<String, (String, String)> = out
            .stdout
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 5 && f[3] == "Running" && f[4] == "True")
                    .then(|| (f[0].to_string(), (f[1].to_string(), f[2].to_string())))
            })
            .collect();
        if rows.len() == n && out.stdout.lines().count() == n {
            return rows;
        }
        assert!(
            start.elapsed() < READY,
            "{n} pagweb pods not Running and Ready within {READY:?}:\n{out}\n{}",
            c.logs()
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// `count` requests from node `from` to `url`: the answers (pod names) seen, with counts.
fn spread(c: &Cluster, from: usize, url: &str, count: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for i in 0..count {
        let out = c.wget_from_node(from, url);
        assert_eq!(
            out.code,
            0,
            "request {i} to {url} from n{from} failed: {out}\n{}\n{}",
            diagnose(c, from),
            c.logs()
        );
        *seen.entry(out.stdout.trim().to_string()).or_insert(0) += 1;
    }
    seen
}

/// What a failed request needs to be understood: each pod straight from `from`, the node's
/// nftables ruleset and conntrack entries.
fn diagnose(c: &Cluster, from: usize) -> String {
    let mut s = String::new();
    let ips = c.jsonpath(&["pods", "-l", "app=pagweb"], "{.items[*].status.podIP}");
    for ip in ips.split_whitespace() {
        let out = c.wget_from_node(from, &format!("http://{ip}/"));
        s.push_str(&format!("direct {ip}: code {} {}", out.code, out.stdout));
    }
    for args in [
        &["nft", "list", "ruleset"][..],
        &["conntrack", "-L"][..],
        &["ip", "route"][..],
    ] {
        let out = c.net.run_in(from, args);
        s.push_str(&format!("--- {args:?} ---\n{}{}\n", out.stdout, out.stderr));
    }
    s
}

/// Polls until a request from node `from` to `url` answers with a pagweb pod name.
fn until_served(c: &Cluster, from: usize, url: &str) {
    let start = Instant::now();
    loop {
        let out = c.wget_from_node(from, url);
        if out.code == 0 && out.stdout.starts_with("pagweb-") {
            eprintln!("{url} from n{from}: served after {:?}", start.elapsed());
            return;
        }
        assert!(
            start.elapsed() < CONVERGE,
            "{url} from n{from} not served within {CONVERGE:?}; last: {out}\n{}",
            c.logs()
        );
        thread::sleep(Duration::from_millis(250));
    }
}

fn check_seeds(c: &Cluster) {
    // The first seed.
    let out = c.kubectl(&["create", "deployment", "pagweb", "--image=nginx:1.27"]);
    assert_eq!(out.stdout, "deployment.apps/pagweb created\n", "{out}");
    let out = c.kubectl(&["scale", "deployment", "pagweb", "--replicas=3"]);
    assert_eq!(out.stdout, "deployment.apps/pagweb scaled\n", "{out}");
    let pods = wait_pagweb(c, 3);
    eprintln!("pagweb pods: {pods:?}");
    let out = c.kubectl(&[
        "expose",
        "deployment",
        "pagweb",
        "--port=80",
        "--type=NodePort",
    ]);
    assert_eq!(out.stdout, "service/pagweb exposed\n", "{out}");
    let node_port = c.jsonpath(&["svc", "pagweb"], "{.spec.ports[0].nodePort}");
    let cluster_ip = c.jsonpath(&["svc", "pagweb"], "{.spec.clusterIP}");
    assert!(
        node_port.parse::<u16>().is_ok_and(|p| p >= 30000),
        "{node_port}"
    );
    let url = format!("http://{}:{node_port}/", node_ip(1));
    until_served(c, 1, &url);
    let seen = spread(c, 1, &url, 60);
    let names: BTreeSet<&String> = seen.keys().collect();
    let want: BTreeSet<&String> = pods.keys().collect();
    assert_eq!(
        names, want,
        "60 requests to {url} reach every pod: {seen:?}"
    );
    eprintln!("NodePort {url}: {seen:?}");
    // Another node's address serves the same node port.
    let url3 = format!("http://{}:{node_port}/", node_ip(3));
    until_served(c, 1, &url3);

    // ClusterIP from a pod (every pod, so one of them also reaches itself: hairpin).
    for pod in pods.keys() {
        let start = Instant::now();
        loop {
            let out = c.wget_in_pod(pod, &format!("http://{cluster_ip}/"));
            if out.code == 0 && pods.contains_key(out.stdout.trim()) {
                break;
            }
            assert!(
                start.elapsed() < CONVERGE,
                "ClusterIP {cluster_ip} from {pod}: {out}\n{}",
                c.logs()
            );
            thread::sleep(Duration::from_millis(250));
        }
    }

    // ClusterIP from a node's own network namespace (the host, not a pod): kube-proxy's
    // output hook, with masquerade when the chosen pod is on another node. Like kube-proxy,
    // this needs a route covering the service CIDR before the hook runs — on a real host the
    // default route; the test nodes have none (no route out), so the switch stands in for
    // the service CIDR only (it forwards nothing anywhere).
    for node in [1, 2] {
        let out = c.net.run_in(
            node,
            &["ip", "route", "add", "10.43.0.0/16", "via", SWITCH_IP],
        );
        assert_eq!(out.code, 0, "{out}");
        until_served(c, node, &format!("http://{cluster_ip}/"));
    }
    // From a node, every replica answers, the ones on other nodes too.
    let seen = spread(c, 2, &format!("http://{cluster_ip}/"), 40);
    let names: BTreeSet<&String> = seen.keys().collect();
    assert_eq!(names, want, "40 requests from n2 to {cluster_ip}: {seen:?}");

    // `kubectl delete pod` during a request loop: no failure once its endpoint is gone.
    let victim = pods.keys().next().unwrap().clone();
    let victim_ip = pods[&victim].0.clone();
    let results: Mutex<Vec<(Instant, Output)>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let mut gone_at = None;
    thread::scope(|s| {
        // Set on every way out of this scope: a panic below must stop the request loop, or
        // the scope would wait for it forever.
        let _stop_on_exit = StopOnDrop(&stop);
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let out = c.wget_from_node(1, &url);
                results.lock().unwrap().push((Instant::now(), out));
            }
        });
        thread::sleep(Duration::from_secs(2));
        let out = c.kubectl(&["delete", "pod", &victim, "--wait=false"]);
        assert_eq!(out.stdout, format!("pod \"{victim}\" deleted\n"), "{out}");
        // Its endpoint leaves rotation (ready=false, terminating) in the EndpointSlice.
        let path =
            "{range .items[*].endpoints[*]}{.addresses[0]} {.conditions.ready}{\"\\n\"}{end}";
        let start = Instant::now();
        loop {
            let eps = c.jsonpath(
                &["endpointslices", "-l", "kubernetes.io/service-name=pagweb"],
                path,
            );
            if !eps.lines().any(|l| l == format!("{victim_ip} true")) {
                gone_at = Some(Instant::now());
                break;
            }
            assert!(
                start.elapsed() < CONVERGE,
                "{victim} still a ready endpoint: {eps}"
            );
            thread::sleep(Duration::from_millis(50));
        }
        wait_pagweb(c, 3);
        thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
    });
    let gone_at = gone_at.unwrap();
    let results = results.into_inner().unwrap();
    let after: Vec<&(Instant, Output)> = results
        .iter()
        .filter(|(t, _)| *t > gone_at + PROGRAMMING)
        .collect();
    assert!(
        after.len() >= 5,
        "too few requests after the endpoint went: {}",
        after.len()
    );
    for (_, out) in &after {
        assert_eq!(
            out.code, 0,
            "a request failed after {victim}'s endpoint was gone: {out}"
        );
        assert_ne!(
            out.stdout.trim(),
            victim,
            "{victim} still served after its endpoint was gone"
        );
    }
    eprintln!(
        "delete during requests: {} requests, {} after the endpoint was gone, all served",
        results.len(),
        after.len()
    );

    // A Service without endpoints refuses at once instead of hanging.
    let out = c.kubectl(&["create", "service", "clusterip", "nothing", "--tcp=80:80"]);
    assert_eq!(out.stdout, "service/nothing created\n", "{out}");
    let nothing_ip = c.jsonpath(&["svc", "nothing"], "{.spec.clusterIP}");
    let pod = wait_pagweb(c, 3).into_keys().next().unwrap();
    let start = Instant::now();
    loop {
        let t = Instant::now();
        let out = c.wget_in_pod(&pod, &format!("http://{nothing_ip}/"));
        if out.code != 0 && out.stderr.contains("refused") {
            assert!(t.elapsed() < Duration::from_secs(4), "slow refusal: {out}");
            break;
        }
        assert!(
            start.elapsed() < CONVERGE,
            "no refusal from {nothing_ip}: {out}"
        );
        thread::sleep(Duration::from_millis(250));
    }

    // The second seed: a LoadBalancer on every node's address.
    let out = c.kubectl(&[
        "expose",
        "deployment",
        "pagweb",
        "--type=LoadBalancer",
        "--port=8080",
        "--target-port",
        "80",
        "--name=pagweb-load-balancer",
    ]);
    assert_eq!(
        out.stdout, "service/pagweb-load-balancer exposed\n",
        "{out}"
    );
    let want_ips = format!("{},{},{}", node_ip(1), node_ip(2), node_ip(3));
    let start = Instant::now();
    loop {
        let out = c.kubectl(&["get", "svc", "pagweb-load-balancer"]);
        let rows = parse_table(&out.stdout);
        if rows.len() == 2 && rows[1].get(3) == Some(&want_ips) {
            assert_eq!(
                rows[0][..5],
                ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"]
            );
            assert_eq!(rows[1][1], "LoadBalancer");
            assert!(rows[1][4].starts_with("8080:3"), "{out}");
            break;
        }
        assert!(
            start.elapsed() < CONVERGE,
            "EXTERNAL-IP is not {want_ips}: {out}\n{}",
            c.logs()
        );
        thread::sleep(Duration::from_millis(250));
    }
    let pods = wait_pagweb(c, 3);
    let lb_url = format!("http://{}:8080/", node_ip(2));
    until_served(c, 1, &lb_url);
    let seen = spread(c, 1, &lb_url, 45);
    let names: BTreeSet<&String> = seen.keys().collect();
    let want: BTreeSet<&String> = pods.keys().collect();
    assert_eq!(
        names, want,
        "45 requests to {lb_url} spread over every pod: {seen:?}"
    );
    eprintln!("LoadBalancer {lb_url}: {seen:?}");

    // sessionAffinity ClientIP: one client keeps reaching one pod.
    let out = c.kubectl(&[
        "expose",
        "deployment",
        "pagweb",
        "--name=pagweb-sticky",
        "--type=NodePort",
        "--port=81",
        "--target-port=80",
        "--session-affinity=ClientIP",
    ]);
    assert_eq!(out.stdout, "service/pagweb-sticky exposed\n", "{out}");
    let sticky_port = c.jsonpath(&["svc", "pagweb-sticky"], "{.spec.ports[0].nodePort}");
    let sticky_url = format!("http://{}:{sticky_port}/", node_ip(1));
    until_served(c, 1, &sticky_url);
    let seen = spread(c, 1, &sticky_url, 20);
    assert_eq!(
        seen.len(),
        1,
        "20 requests from one client reach one pod: {seen:?}"
    );

    // A second LoadBalancer on the same port stays pending, saying why.
    let out = c.kubectl(&[
        "expose",
        "deployment",
        "pagweb",
        "--type=LoadBalancer",
        "--port=8080",
        "--target-port",
        "80",
        "--name=pagweb-second",
    ]);
    assert_eq!(out.stdout, "service/pagweb-second exposed\n", "{out}");
    wait_for(CONVERGE, "the PortInUse event", || {
        let ev = c.kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=pagweb-second,reason=PortInUse",
            "-o",
            "jsonpath={.items[*].message}",
        ]);
        ev.stdout
            .contains("default/pagweb-load-balancer")
            .then_some(())
    });
    let rows = parse_table(&c.kubectl(&["get", "svc", "pagweb-second"]).stdout);
    assert_eq!(rows[1][3], "<pending>", "{rows:?}");

    // The proxy's table is there, and kept its own name.
    let nft = c
        .net
        .run_in(2, &["nft", "list", "table", "ip", "skiff-proxy"]);
    assert_eq!(nft.code, 0, "{nft}");
    assert!(nft.stdout.contains("numgen random mod 3"), "{nft}");
    for p in &c.procs {
        assert!(
            !p.log().contains("service rules not applied"),
            "{}",
            c.logs()
        );
    }
}

#[test]
fn services_balance_node_port_cluster_ip_and_load_balancer() {
    if !netns::bed_enabled() {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** skiff-e2e services tests SKIPPED: SKIFF_E2E_NODES=0 (they need root and the \
             packages `bash .ci/run` installs) ***\n"
        );
        return;
    }
    let c = start_cluster();
    check_seeds(&c);
}

/// Sets its flag when dropped, also while unwinding.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
