//! End-to-end: cluster DNS (skiff-dns, node-local on `--cluster-dns`). A `skiff server` (node
//! netns 1) and a `skiff agent` (2) of a [`TestNet`]: from a busybox pod, `nslookup` of a
//! Service's short name, `<svc>.<ns>` and FQDN gives its ClusterIP; a headless StatefulSet pod's
//! name gives the pod IP; an unknown Service is NXDOMAIN; an ExternalName Service is a CNAME;
//! a name outside the cluster whose upstream does not answer fails fast and the server keeps
//! answering; then the third seed's back end in small: a `mongo` Deployment (busybox `nc -l`
//! on 27017) behind a ClusterIP Service, reached by name from a client pod.
//!
//! Needs root and the Debian packages named in `skiff_e2e::netns::TOOLS`; `SKIFF_E2E_NODES=0`
//! skips it with a loud message.

use skiff_e2e::images::ImageSpec;
use skiff_e2e::multinode::{MultiNode, MultiNodeSpec};
use skiff_e2e::netns::{self, node_ip};
use skiff_e2e::*;
use std::thread;
use std::time::{Duration, Instant};

const TOKEN: &str = "dns-secret";
/// Time for the nodes to be Ready, and for pods to run (images pulled through the mirror).
const READY: Duration = Duration::from_secs(120);
/// Time for a new Service or endpoint to be in every node's table and proxy rules.
const CONVERGE: Duration = Duration::from_secs(45);
/// The cluster DNS address (`--cluster-dns` default).
const CLUSTER_DNS: &str = "10.43.0.10";

struct Cluster(MultiNode);

impl std::ops::Deref for Cluster {
    type Target = MultiNode;
    fn deref(&self) -> &MultiNode {
        &self.0
    }
}

impl Cluster {
    /// `kubectl exec POD -- ARGS`, bounded.
    fn exec(&self, pod: &str, args: &[&str], timeout: Duration) -> Output {
        let mut all = vec!["exec", pod, "--"];
        all.extend_from_slice(args);
        self.net.run(self.kubectl_cmd(&all), timeout)
    }
}

/// A server and one agent; both send names outside the cluster to `resolv.conf`, whose
/// nameserver (node 2's address, where nothing listens on 53) never answers.
fn start_cluster() -> Cluster {
    let spec = MultiNodeSpec {
        nodes: 2,
        token: TOKEN,
        images: &[ImageSpec::busybox()],
        ready: READY,
        label: "dns",
    };
    Cluster(MultiNode::start(&spec, |net| {
        let resolv = net.dir().join("resolv.conf");
        std::fs::write(
            &resolv,
            format!("nameserver 127.0.0.53\nnameserver {}\n", node_ip(2)),
        )
        .unwrap();
        vec!["--resolv-conf".into(), resolv.display().to_string()]
    }))
}

fn manifest() -> String {
    let busybox = ImageSpec::busybox().docker_io_name();
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: mongo}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: mongo}}}}
  template:
    metadata: {{labels: {{app: mongo}}}}
    spec:
      nodeName: n2
      containers:
      - name: mongo
        image: {busybox}
        command: ["sh", "-c", "while true; do echo mongo-ok | nc -l -p 27017; done"]
---
apiVersion: v1
kind: Service
metadata: {{name: mongo}}
spec:
  selector: {{app: mongo}}
  ports: [{{name: mongo, port: 27017, protocol: TCP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{name: http, port: 80}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web}}
spec:
  serviceName: web
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: {busybox}
        command: ["sleep", "3600"]
---
apiVersion: v1
kind: Service
metadata: {{name: ext}}
spec:
  type: ExternalName
  externalName: mongo.default.svc.cluster.local
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeName: n1
  containers:
  - name: client
    image: {busybox}
    command: ["sleep", "3600"]
"#
    )
}

/// Waits until `pod` runs and is Ready; its IP.
fn wait_ready(c: &Cluster, pod: &str) -> String {
    let start = Instant::now();
    loop {
        let out = c.jsonpath(
            &["pod", pod],
            "{.status.phase} {.status.conditions[?(@.type==\"Ready\")].status} {.status.podIP}",
        );
        let f: Vec<&str> = out.split_whitespace().collect();
        if f.len() == 3 && f[0] == "Running" && f[1] == "True" {
            return f[2].to_string();
        }
        assert!(
            start.elapsed() < READY,
            "pod {pod} not Running and Ready within {READY:?}: {out}\n{}",
            c.logs()
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// `nslookup NAME` from the client pod until its output has `want` (the table follows the
/// watch within a moment; the pod's search path makes short names work).
fn lookup_until(c: &Cluster, name: &str, want: &str) -> Output {
    let start = Instant::now();
    loop {
        let out = c.exec(
            "client",
            &["busybox", "nslookup", name],
            Duration::from_secs(15),
        );
        // busybox nslookup walks the whole search list and exits 1 when any suffix was
        // NXDOMAIN, even after an answer: the answer is what counts.
        if out.stdout.contains(&format!("Address: {want}")) {
            return out;
        }
        assert!(
            start.elapsed() < CONVERGE,
            "nslookup {name} did not give {want} within {CONVERGE:?}: {out}\n{}",
            c.logs()
        );
        thread::sleep(Duration::from_millis(500));
    }
}

fn check_dns(c: &Cluster) {
    // The Service that names the address, as k3s has it, left alone by the service proxy.
    assert_eq!(
        c.jsonpath(
            &["svc", "-n", "kube-system", "kube-dns"],
            "{.spec.clusterIP}"
        ),
        CLUSTER_DNS
    );
    let file = c.net.dir().join("dns.yaml");
    std::fs::write(&file, manifest()).unwrap();
    let out = c.kubectl(&["apply", "-f", &file.display().to_string()]);
    assert_eq!(out.code, 0, "{out}");
    wait_ready(c, "client");
    let web0 = wait_ready(c, "web-0");
    let mongo_ip = wait_for(CONVERGE, "the mongo ClusterIP", || {
        let ip = c.jsonpath(&["svc", "mongo"], "{.spec.clusterIP}");
        (!ip.is_empty()).then_some(ip)
    });

    // The pod's resolv.conf points at the node-local server.
    let conf = c.exec("client", &["cat", "/etc/resolv.conf"], COMMAND_TIMEOUT);
    assert!(
        conf.stdout.contains(&format!("nameserver {CLUSTER_DNS}")),
        "{conf}"
    );

    // Short name and FQDN → the ClusterIP (busybox nslookup tries the search list only for
    // names without a dot; `<svc>.<ns>` is checked below through the libc resolver and ndots).
    for name in ["mongo", "mongo.default.svc.cluster.local"] {
        lookup_until(c, name, &mongo_ip);
    }
    // The headless StatefulSet pod's name → its IP.
    // …and `web-0.web` through the libc resolver's search path: busybox nc names the address
    // it could not connect to (nothing listens on 80).
    let start = Instant::now();
    loop {
        let out = c.exec(
            "client",
            &["sh", "-c", "nc -w 2 web-0.web 80 </dev/null 2>&1"],
            Duration::from_secs(15),
        );
        if out.stdout.contains(&format!("({web0})")) {
            break;
        }
        assert!(
            start.elapsed() < CONVERGE,
            "web-0.web did not resolve to {web0} within {CONVERGE:?}: {out}"
        );
        thread::sleep(Duration::from_millis(500));
    }
    lookup_until(c, "web-0.web.default.svc.cluster.local", &web0);
    // ExternalName → CNAME to mongo, and mongo's address.
    let out = lookup_until(c, "ext.default.svc.cluster.local", &mongo_ip);
    assert!(
        out.stdout.contains("mongo.default.svc.cluster.local"),
        "no CNAME target: {out}"
    );
    // Unknown Service: NXDOMAIN.
    let out = c.exec(
        "client",
        &["busybox", "nslookup", "nope.default.svc.cluster.local"],
        Duration::from_secs(15),
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("NXDOMAIN"),
        "{out}"
    );
    // Outside the cluster, upstream silent: an error answer in bounded time, and the server
    // still answers afterwards.
    let started = Instant::now();
    let out = c.exec(
        "client",
        &["busybox", "nslookup", "db.example.org."],
        Duration::from_secs(30),
    );
    assert_ne!(out.code, 0, "an answer without any upstream: {out}");
    assert!(started.elapsed() < Duration::from_secs(25), "{out}");
    lookup_until(c, "mongo.default.svc.cluster.local", &mongo_ip);

    // The seed's back end: the client reaches mongo:27017 by name (`mongo` and `mongo.default`
    // both through the pod's search path).
    for host in ["mongo", "mongo.default"] {
        reach_mongo(c, host);
    }
    for p in &c.procs {
        assert!(!p.log().contains("cluster DNS stopped"), "{}", c.logs());
    }
}

/// `nc HOST 27017` from the client pod until mongo's greeting comes back.
fn reach_mongo(c: &Cluster, host: &str) {
    let start = Instant::now();
    let cmd = format!("nc -w 3 {host} 27017 </dev/null");
    loop {
        let out = c.exec("client", &["sh", "-c", &cmd], Duration::from_secs(15));
        if out.stdout.contains("mongo-ok") {
            break;
        }
        assert!(
            start.elapsed() < CONVERGE,
            "{host}:27017 not reached by name within {CONVERGE:?}: {out}\n{}",
            c.logs()
        );
        thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn cluster_dns_answers_pods_by_name() {
    if !netns::bed_enabled() {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** skiff-e2e dns tests SKIPPED: SKIFF_E2E_NODES=0 (they need root and the \
             packages `bash .ci/run` installs) ***\n"
        );
        return;
    }
    let c = start_cluster();
    check_dns(&c);
}
