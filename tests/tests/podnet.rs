//! End-to-end: the pod network between nodes. A `skiff server` (node netns 1) and two `skiff
//! agent`s (2, 3) of a [`TestNet`], once with the default VXLAN backend and once with
//! `--flannel-backend host-gw`: a web pod on each agent node answers the other pod (`kubectl
//! exec … wget`) and a node that runs neither, with its own name.
//!
//! Needs root and the Debian packages named in `skiff_e2e::netns::TOOLS`; `SKIFF_E2E_NODES=0`
//! skips it with a loud message.

use skiff_e2e::images::{self, ImageSpec};
use skiff_e2e::multinode::{MultiNode, MultiNodeSpec};
use skiff_e2e::netns::{self, node_ip};
use skiff_e2e::*;
use std::thread;
use std::time::{Duration, Instant};

const TOKEN: &str = "podnet-secret";
/// Time for 3 nodes to be Ready, and for the pods to run (images pulled through the mirror).
const READY: Duration = Duration::from_secs(120);
/// Time for the pod network to carry a request once both pods run.
const CONVERGE: Duration = Duration::from_secs(45);

struct Cluster(MultiNode);

impl std::ops::Deref for Cluster {
    type Target = MultiNode;
    fn deref(&self) -> &MultiNode {
        &self.0
    }
}

impl Cluster {
    fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run_command(
            self.kubectl_cmd(args),
            Some(stdin.as_bytes()),
            COMMAND_TIMEOUT,
        )
    }

    /// `kubectl exec POD -- wget -qO- URL`, bounded by busybox's `timeout` (its `wget -T` is
    /// unusable here).
    fn wget_in_pod(&self, pod: &str, url: &str) -> Output {
        let c = self.kubectl_cmd(&[
            "exec",
            pod,
            "--",
            images::BUSYBOX,
            "timeout",
            "5",
            "wget",
            "-qO-",
            url,
        ]);
        self.net.run(c, COMMAND_TIMEOUT)
    }

    /// `busybox wget -qO- URL` from node `node`'s netns.
    fn wget_from_node(&self, node: usize, url: &str) -> Output {
        self.net
            .run_in(node, &["timeout", "5", "busybox", "wget", "-qO-", url])
    }
}

/// A server and two agents, every node with `--flannel-backend backend`.
fn start_cluster(backend: &str) -> Cluster {
    let spec = MultiNodeSpec {
        nodes: 3,
        token: TOKEN,
        images: &[ImageSpec::nginx()],
        ready: READY,
        label: backend,
    };
    Cluster(MultiNode::start(&spec, |_| {
        vec!["--flannel-backend".into(), backend.into()]
    }))
}

fn web_pod(name: &str, node: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","labels":{{"app":"podnet"}}}},
        "spec":{{"nodeName":"{node}","terminationGracePeriodSeconds":1,
        "containers":[{{"name":"web","image":"nginx:1.27"}}]}}}}"#
    )
}

/// name → IP of the two web pods once both run.
fn wait_pods(c: &Cluster) -> Vec<PodRow> {
    let start = Instant::now();
    loop {
        let out = c.kubectl(&["get", "pods", "-l", "app=podnet", "-o", POD_ROWS_JSONPATH]);
        let rows = parse_pod_rows(&out.stdout);
        if rows.len() == 2
            && rows
                .iter()
                .all(|p| p.phase == "Running" && !p.ip.is_empty())
        {
            return rows;
        }
        assert!(
            start.elapsed() < READY,
            "web pods not Running within {READY:?}:\n{out}\n{}",
            c.logs()
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// Polls `f` until its output is `want` (the network may need a resync to converge).
fn until_answer(c: &Cluster, what: &str, want: &str, f: impl Fn() -> Output) {
    let start = Instant::now();
    loop {
        let out = f();
        if out.stdout == want {
            eprintln!("{what}: answered in {:?}", start.elapsed());
            return;
        }
        assert!(
            start.elapsed() < CONVERGE,
            "{what}: no {want:?} within {CONVERGE:?}; last: {out}\n{}",
            c.logs()
        );
        thread::sleep(Duration::from_millis(500));
    }
}

fn node_annotation(c: &Cluster, node: &str, key: &str) -> String {
    let path = format!("jsonpath={{.metadata.annotations.flannel\\.alpha\\.coreos\\.com/{key}}}");
    c.kubectl(&["get", "node", node, "-o", &path]).stdout
}

fn check_backend(backend: &str) {
    let c = start_cluster(backend);
    for (name, node) in [("web-a", "n2"), ("web-b", "n3")] {
        let out = c.kubectl_stdin(&["apply", "-f", "-"], &web_pod(name, node));
        assert_eq!(out.stdout, format!("pod/{name} created\n"), "{out}");
    }
    let pods = wait_pods(&c);
    let ip = |name: &str| {
        pods.iter()
            .find(|p| p.name == name)
            .map(|p| p.ip.clone())
            .unwrap_or_else(|| panic!("no {name} in {pods:?}"))
    };
    let (a, b) = (ip("web-a"), ip("web-b"));
    eprintln!("{backend}: web-a {a} on n2, web-b {b} on n3");
    assert!(
        a.starts_with("10.42.") && b.starts_with("10.42."),
        "{pods:?}"
    );

    // Every node published flannel's annotations.
    for (i, node) in ["n1", "n2", "n3"].iter().enumerate() {
        assert_eq!(node_annotation(&c, node, "backend-type"), backend);
        assert_eq!(node_annotation(&c, node, "kube-subnet-manager"), "true");
        assert_eq!(node_annotation(&c, node, "public-ip"), node_ip(i + 1));
        // And, as flannel does, NetworkUnavailable=False with its reason.
        let path = "jsonpath={.status.conditions[?(@.type==\"NetworkUnavailable\")].status} \
                    {.status.conditions[?(@.type==\"NetworkUnavailable\")].reason}";
        let out = c.kubectl(&["get", "node", node, "-o", path]);
        assert_eq!(out.stdout, "False FlannelIsUp", "{out}");
    }

    until_answer(
        &c,
        &format!("{backend}: web-a → web-b"),
        "web-b\n",
        || c.wget_in_pod("web-a", &format!("http://{b}/")),
    );
    until_answer(
        &c,
        &format!("{backend}: web-b → web-a"),
        "web-a\n",
        || c.wget_in_pod("web-b", &format!("http://{a}/")),
    );
    // Pod → pod is never NATed: web-b's node saw web-a's own address as the source.
    let ct = c
        .net
        .run_in(3, &["conntrack", "-L", "-p", "tcp", "-s", &a, "-d", &b]);
    assert!(
        ct.stdout.contains(&format!("src={a} dst={b}")),
        "no connection from web-a's own IP on n3: {ct}"
    );
    // A node with neither pod reaches both (host → remote pod is masqueraded).
    until_answer(
        &c,
        &format!("{backend}: node n1 → web-a"),
        "web-a\n",
        || c.wget_from_node(1, &format!("http://{a}/")),
    );
    until_answer(
        &c,
        &format!("{backend}: node n2 → web-b"),
        "web-b\n",
        || c.wget_from_node(2, &format!("http://{b}/")),
    );

    // The kernel side: the nftables table, and the VXLAN device or plain routes.
    let nft = c
        .net
        .run_in(2, &["nft", "list", "table", "inet", "skiff-flannel"]);
    assert_eq!(nft.code, 0, "{nft}");
    assert!(nft.stdout.contains("masquerade"), "{nft}");
    let routes = c
        .net
        .run_in(2, &["ip", "route", "show", "root", "10.42.0.0/16"]);
    let link = c.net.run_in(2, &["ip", "-d", "link", "show", "flannel.1"]);
    let b_gw = format!("{}.0", b.rsplit_once('.').unwrap().0);
    if backend == "vxlan" {
        assert!(link.stdout.contains("vxlan id 1 "), "{link}");
        assert!(link.stdout.contains("dstport 8472"), "{link}");
        assert!(link.stdout.contains("mtu 1450"), "{link}");
        assert!(link.stdout.contains("nolearning"), "{link}");
        assert!(
            routes.stdout.contains(&format!(
                "{b_gw}/24 via {b_gw} dev flannel.1 proto static onlink"
            )),
            "{routes}"
        );
    } else {
        assert_ne!(link.code, 0, "no flannel.1 under host-gw: {link}");
        assert!(
            routes
                .stdout
                .contains(&format!("{b_gw}/24 via {} dev eth0", node_ip(3))),
            "{routes}"
        );
    }
    let ip_fwd = c.net.run_in(2, &["cat", "/proc/sys/net/ipv4/ip_forward"]);
    assert_eq!(ip_fwd.stdout.trim(), "1");
    for p in &c.procs {
        assert!(!p.log().contains("pod network failed"), "{}", c.logs());
    }
    eprintln!("{backend}: checked");
}

#[test]
fn pods_reach_each_other_across_nodes_over_vxlan_and_host_gw() {
    if !netns::bed_enabled() {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** skiff-e2e podnet tests SKIPPED: SKIFF_E2E_NODES=0 (they need root and the \
             packages `bash .ci/run` installs) ***\n"
        );
        return;
    }
    // One cluster after the other: six skiff processes at a time are enough for 2 cores.
    check_backend("vxlan");
    check_backend("host-gw");
}
