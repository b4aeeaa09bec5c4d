//! The third seed's back end, end to end on real nodes: the mongo and letschat Deployments and
//! Services applied verbatim with the stock kubectl, letschat finding `mongo` by name through
//! cluster DNS, the NodePort, a scale to 10 across nodes, the node that runs mongo stopped (its
//! agent killed and its link cut) → after the toleration period mongo runs on the other node
//! and letschat reaches it again, then a scale back to 1.
//!
//! The images are busybox stand-ins built offline (tests/src/images.rs): `mongo` answers on
//! 27017 with its pod name; `sdelements/lets-chat` exits at start when `mongo:27017` does not
//! answer (as the real one does), then serves `/cgi-bin/chat`, which asks mongo on each request.
//! The server is tainted `CriticalAddonsOnly=true:NoExecute` (k3s's advice for a dedicated
//! server), so the workloads run on the two agents and stopping one never stops the API.

use skiff_e2e::images::ImageSpec;
use skiff_e2e::multinode::{MultiNode, MultiNodeSpec};
use skiff_e2e::netns::{self, node_ip};
use skiff_e2e::*;
use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

const TOKEN: &str = "letschat-secret";
/// Time for the nodes to be Ready.
const READY: Duration = Duration::from_secs(120);
/// Time for pods to run and a Service to carry traffic.
const CONVERGE: Duration = Duration::from_secs(90);
/// Time for mongo to run elsewhere once its node stops: 20 s grace + 10 s toleration +
/// scheduling, start and readiness, with room for a loaded CI machine.
const FAILOVER: Duration = Duration::from_secs(150);

const MONGO_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: mongo
  labels:
    name: mongo
spec:
  replicas: 1
  selector:
    matchLabels:
      name: mongo
  template:
    metadata:
      labels:
        name: mongo
    spec:
      containers:
      - name: mongo
        image: mongo
        ports:
          - name: mongo
            containerPort: 27017
";

const MONGO_SRV: &str = "apiVersion: v1
kind: Service
metadata:
  name: mongo
spec:
  ports:
  - name: mongo
    port: 27017
    targetPort: mongo
  selector:
    name: mongo
";

const LETSCHAT_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: letschat
  labels:
    name: letschat
spec:
  replicas: 1 
  selector:
    matchLabels:
      name: letschat
  template:
    metadata:
      labels:
        name: letschat
    spec:
      containers:
      - name: letschat
        image: sdelements/lets-chat
        ports:
          - name: http-server
            containerPort: 8080
";

const LETSCHAT_SRV: &str = "apiVersion: v1
kind: Service
metadata:
  name: letschat
spec:
  type: NodePort
  ports:
  - name: http
    port: 8080
    targetPort: http-server
  selector:
    name: letschat
";

/// The CGI letschat serves: its own name and what mongo answered.
const CHAT_CGI: &str = "#!/bin/sh
echo 'Content-Type: text/plain'
echo
echo \"$(/bin/hostname) $(/bin/busybox timeout 3 /bin/wget -qO- http://mongo:27017/)\"
";

fn mongo_image() -> ImageSpec {
    ImageSpec {
        repository: "library/mongo".into(),
        tag: "latest".into(),
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "hostname > /www/index.html && exec httpd -f -p 27017 -h /www".into(),
        ],
        exposed_ports: vec!["27017/tcp".into()],
        ..ImageSpec::nginx()
    }
}

fn letschat_image() -> ImageSpec {
    ImageSpec {
        repository: "sdelements/lets-chat".into(),
        tag: "latest".into(),
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "busybox timeout 3 wget -qO- http://mongo:27017/ >/dev/null \
             || { echo 'cannot reach mongo:27017' >&2; exit 1; }; \
             mkdir -p /www/cgi-bin && cat /www/chat.cgi > /www/cgi-bin/chat \
             && busybox chmod 755 /www/cgi-bin/chat && exec httpd -f -p 8080 -h /www"
                .into(),
        ],
        exposed_ports: vec!["8080/tcp".into()],
        files: vec![("www/chat.cgi".into(), CHAT_CGI.into())],
        ..ImageSpec::nginx()
    }
}

/// One pod of a `name=…` label: name, node, Running and Ready, being deleted.
#[derive(Debug, Clone)]
struct Pod {
    name: String,
    node: String,
    ready: bool,
    deleting: bool,
}

fn pods(c: &MultiNode, app: &str) -> Vec<Pod> {
    let path = "{range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase} \
                {.status.conditions[?(@.type==\"Ready\")].status} \
                {.metadata.deletionTimestamp}{\"\\n\"}{end}";
    let out = c.kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("name={app}"),
        "-o",
        &format!("jsonpath={path}"),
    ]);
    out.stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 2).then(|| Pod {
                name: f[0].to_string(),
                node: f[1].to_string(),
                ready: f.get(2) == Some(&"Running") && f.get(3) == Some(&"True"),
                deleting: f.len() > 4,
            })
        })
        .collect()
}

/// Waits for `n` Running and Ready pods of `app` that are not being deleted, none on `not_on`.
fn wait_ready(c: &MultiNode, app: &str, n: usize, not_on: &str, limit: Duration) -> Vec<Pod> {
    let start = Instant::now();
    loop {
        let all = pods(c, app);
        let live: Vec<Pod> = all
            .iter()
            .filter(|p| p.ready && !p.deleting && p.node != not_on)
            .cloned()
            .collect();
        if live.len() == n {
            eprintln!("{n} {app} ready after {:?}", start.elapsed());
            return live;
        }
        assert!(
            start.elapsed() < limit,
            "not {n} ready {app} pods off {not_on:?} within {limit:?}: {all:#?}\n{}",
            c.logs()
        );
        thread::sleep(Duration::from_millis(500));
    }
}

/// `/cgi-bin/chat` through node 1's address and the node port, from node 1's namespace.
fn chat(c: &MultiNode, node_port: &str) -> Output {
    let url = format!("http://{}:{node_port}/cgi-bin/chat", node_ip(1));
    c.net
        .run_in(1, &["timeout", "8", "busybox", "wget", "-qO-", &url])
}

/// Polls the chat page until `f(letschat, mongo)` holds for an answer.
fn until_chat(c: &MultiNode, node_port: &str, what: &str, f: impl Fn(&str, &str) -> bool) {
    let start = Instant::now();
    loop {
        let out = chat(c, node_port);
        let mut words = out.stdout.split_whitespace();
        if let (0, Some(l), Some(m)) = (out.code, words.next(), words.next()) {
            if f(l, m) {
                eprintln!("{what}: {l} → {m} after {:?}", start.elapsed());
                return;
            }
        }
        assert!(
            start.elapsed() < CONVERGE,
            "{what}: not within {CONVERGE:?}; last: {out}\n{}",
            c.logs()
        );
        thread::sleep(Duration::from_millis(500));
    }
}

fn apply(c: &MultiNode, manifest: &str, want: &str) {
    let cmd = c.kubectl_cmd(&["apply", "-f", "-"]);
    let out = run_command(cmd, Some(manifest.as_bytes()), COMMAND_TIMEOUT);
    assert_eq!(out.stdout, format!("{want} created\n"), "{out}");
}

#[test]
fn letschat_scales_to_ten_and_survives_the_loss_of_mongos_node() {
    if !netns::bed_enabled() {
        eprintln!("\n*** skiff-e2e letschat test SKIPPED: SKIFF_E2E_NODES=0 ***\n");
        return;
    }
    let spec = MultiNodeSpec {
        nodes: 3,
        token: TOKEN,
        images: &[mongo_image(), letschat_image()],
        ready: READY,
        label: "letschat",
    };
    let mut c = MultiNode::start_with(
        &spec,
        &[
            "--node-taint",
            "CriticalAddonsOnly=true:NoExecute",
            "--node-monitor-grace-period",
            "20s",
            "--default-not-ready-toleration-seconds",
            "10",
            "--default-unreachable-toleration-seconds",
            "10",
        ],
        |_| Vec::new(),
    );

    apply(&c, MONGO_DEPLOYMENT, "deployment.apps/mongo");
    apply(&c, MONGO_SRV, "service/mongo");
    let mongo = wait_ready(&c, "mongo", 1, "", CONVERGE).remove(0);
    apply(&c, LETSCHAT_DEPLOYMENT, "deployment.apps/letschat");
    apply(&c, LETSCHAT_SRV, "service/letschat");
    wait_ready(&c, "letschat", 1, "", CONVERGE);
    let node_port = c.jsonpath(&["svc", "letschat"], "{.spec.ports[0].nodePort}");
    assert!(
        node_port.parse::<u16>().is_ok_and(|p| p >= 30000),
        "{node_port}"
    );
    until_chat(&c, &node_port, "letschat reaches mongo by name", |_, m| {
        m == mongo.name
    });

    let out = c.kubectl(&["scale", "deploy", "letschat", "--replicas=10"]);
    assert_eq!(out.stdout, "deployment.apps/letschat scaled\n", "{out}");
    let ten = wait_ready(&c, "letschat", 10, "", CONVERGE);
    let nodes: BTreeSet<&str> = ten.iter().map(|p| p.node.as_str()).collect();
    assert_eq!(
        nodes,
        BTreeSet::from(["n2", "n3"]),
        "ten replicas spread over both agents (the server is tainted): {ten:#?}"
    );
    let mut served = BTreeSet::new();
    for _ in 0..40 {
        let out = chat(&c, &node_port);
        if let Some(l) = out.stdout.split_whitespace().next() {
            served.insert(l.to_string());
        }
    }
    assert!(
        served.len() >= 3,
        "40 requests through the node port reach several replicas: {served:?}"
    );

    // Stop the node that runs mongo: its kubelet dies and its network goes away.
    let dead = mongo.node.clone();
    let index: usize = dead.trim_start_matches('n').parse().unwrap();
    c.procs[index - 1].kill_9();
    let out = c.net.run_in(index, &["ip", "link", "set", "eth0", "down"]);
    assert_eq!(out.code, 0, "{out}");
    let stopped = Instant::now();
    let out = c.kubectl(&["get", "node", &dead]);
    eprintln!("{dead} stopped:\n{}", out.stdout);

    let moved = wait_ready(&c, "mongo", 1, &dead, FAILOVER).remove(0);
    eprintln!(
        "mongo moved from {dead} to {} ({}) after {:?}",
        moved.node,
        moved.name,
        stopped.elapsed()
    );
    assert_ne!(moved.name, mongo.name);
    let out = c.kubectl(&["get", "node", &dead]);
    let rows = parse_table(out.stdout.trim_end());
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[1][1], "NotReady", "{out}");
    let ten = wait_ready(&c, "letschat", 10, &dead, FAILOVER);
    assert!(ten.iter().all(|p| p.node != dead), "{ten:#?}");
    until_chat(
        &c,
        &node_port,
        "letschat reaches the moved mongo",
        |_, m| m == moved.name,
    );

    let out = c.kubectl(&["scale", "deploy", "letschat", "--replicas=1"]);
    assert_eq!(out.stdout, "deployment.apps/letschat scaled\n", "{out}");
    let start = Instant::now();
    loop {
        let live: Vec<Pod> = pods(&c, "letschat")
            .into_iter()
            .filter(|p| !p.deleting && p.node != dead)
            .collect();
        if live.len() == 1 && live[0].ready {
            break;
        }
        assert!(
            start.elapsed() < CONVERGE,
            "letschat did not scale back to 1: {live:#?}"
        );
        thread::sleep(Duration::from_millis(500));
    }
    until_chat(&c, &node_port, "one letschat still serves", |_, m| {
        m == moved.name
    });
}
